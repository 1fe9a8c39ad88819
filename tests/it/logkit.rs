//! logkit's per-node API: envelope, configs round trip, start/stop/reset, status fields that
//! move as data flows, errors, parser preview; logkit's keys kept, its senders, its error codes
//! for every bad input. See: issue 3 ("logkit per-node API") and issue 15 (the answers compared
//! with the real logkit's are in `logkit_transcript.rs`).

use std::time::Duration;

use crate::harness::{Node, append_lines, numbered};

#[test]
fn logkit_runner_api_round_trip() {
    let mut node = Node::new("", "");
    node.start();
    let path = node.logs().join("lk.log");
    append_lines(&path, numbered("logkittest", 0..100));
    let config = serde_json::json!({
        "reader": {"mode": "file", "log_path": path, "read_from": "oldest"},
        "parser": {"type": "raw"},
        "senders": [{"sender_type": "local", "password": "s3cret-canary"}]
    });
    let (status, body) = node.send("POST", "/logkit/configs/lk", &config.to_string());
    assert_eq!(
        (status, body["code"].as_str()),
        (200, Some("L200")),
        "{body}"
    );
    let (status, body) = node.send("POST", "/logkit/configs/lk", &config.to_string());
    assert_eq!(
        (status, body["code"].as_str(), body["message"].as_str()),
        (400, Some("L1002"), Some("file lk runner is running")),
        "{body}"
    );
    node.wait_for_count("logkittest", 100);

    let (_, runners) = node.get("/logkit/runners");
    assert_eq!(runners["data"], serde_json::json!(["lk"]));
    let (_, read_back) = node.get("/logkit/configs/lk");
    assert_eq!(read_back["data"]["senders"][0]["password"], "******");
    let (_, all) = node.get("/logkit/status");
    let status = serde_json::json!({"data": all["data"]["lk"].clone()});
    assert_eq!(status["data"]["runningStatus"], "running");
    assert_eq!(status["data"]["readDataCount"], 100);
    assert!(status["data"]["readDataSize"].as_u64().unwrap() > 0);
    assert_eq!(status["data"]["parserStats"]["success"], 100);
    assert!(status["data"]["elaspedtime"].as_f64().unwrap() > 0.0);
    // Integers, as logkit's own clients decode them.
    assert!(status["data"]["readspeed"].is_u64(), "{status}");
    assert!(status["data"]["readspeed_kb"].is_u64(), "{status}");

    // Stop: new lines are not read; start: they are.
    let (code, body) = node.send("POST", "/logkit/configs/lk/stop", "");
    assert_eq!(code, 200, "{body}");
    std::thread::sleep(Duration::from_millis(500));
    let (_, status) = node.get("/logkit/status");
    assert_eq!(status["data"]["lk"]["runningStatus"], "stopped");
    append_lines(&path, numbered("logkittest", 100..150));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(node.count("logkittest"), 100);
    node.send("POST", "/logkit/configs/lk/start", "");
    node.wait_for_count("logkittest", 150);

    // Full replace (the masked secret is kept), then reset: the file is read again.
    let mut replaced = read_back["data"].clone();
    replaced["parser"] = serde_json::json!({"type": "raw", "name": "p"});
    let (code, body) = node.send("PUT", "/logkit/configs/lk", &replaced.to_string());
    assert_eq!(code, 200, "{body}");
    let (code, body) = node.send("POST", "/logkit/configs/lk/reset", "");
    assert_eq!(code, 200, "{body}");
    node.wait_for_count("logkittest", 300);

    // Errors and parser preview.
    let (_, errors) = node.get("/logkit/errors/lk");
    assert_eq!(errors["code"], "L200");
    assert!(errors["data"]["read_errors"].is_null() || errors["data"]["read_errors"].is_array());
    let preview = serde_json::json!({"type": "nginx", "sampleLog": "10.0.0.1 - - [15/Jan/2026:10:00:05 +0000] \"GET /x HTTP/1.1\" 200 5 \"-\" \"curl\""});
    let (code, parsed) = node.send("POST", "/logkit/parser/parse", &preview.to_string());
    assert_eq!(code, 200, "{parsed}");
    assert_eq!(parsed["data"]["SamplePoints"][0]["status"], 200, "{parsed}");
    let (code, checked) = node.send("POST", "/logkit/parser/check", r#"{"type":"regex"}"#);
    assert_eq!(code, 400, "{checked}");
    assert!(
        checked["message"]
            .as_str()
            .unwrap()
            .contains("parser.regex"),
        "{checked}"
    );
    let (code, checked) = node.send(
        "POST",
        "/logkit/reader/check",
        r#"{"mode":"file","log_path":"/etc/shadow"}"#,
    );
    assert_eq!(code, 400, "{checked}");
    let (_, usages) = node.get("/logkit/parser/usages");
    assert!(usages["data"].as_array().unwrap().len() >= 8);
    let (_, version) = node.get("/logkit/version");
    assert!(
        version["data"]["version"]
            .as_str()
            .unwrap()
            .starts_with("lograft")
    );

    let (code, _) = node.send("DELETE", "/logkit/configs/lk", "");
    assert_eq!(code, 200);
    let (code, body) = node.get("/logkit/configs/lk");
    assert_eq!(
        (code, body["code"].as_str(), body["message"].as_str()),
        (400, Some("L1001"), Some("config lk is not found"))
    );
}

/// A config written for logkit: the keys lograft does not act on are kept, read back and
/// listed in the runner's status as ignored; `discard` reads and counts, `file` appends JSON
/// lines to a path inside `collect.write_paths` (and nowhere else).
#[test]
fn logkit_keys_are_kept_and_discard_and_file_senders_work() {
    let out = tempfile::tempdir().unwrap();
    let mut node = Node::new(
        &format!("write_paths = [\"{}/*.out\"]", out.path().display()),
        "",
    );
    node.start();
    let path = node.logs().join("k.log");
    append_lines(&path, numbered("keptkeys", 0..20));
    let config = serde_json::json!({
        "reader": {"mode": "file", "log_path": path, "read_from": "oldest", "expire": "24h",
                   "ignore_hidden": true},
        "parser": {"name": "p", "type": "raw", "disable_record_errdata": "true"},
        "senders": [{"name": "d", "sender_type": "discard", "ft_strategy": "always_save"}],
        "batch_len": 100, "batch_size": 2097152
    });
    let (code, body) = node.send("POST", "/logkit/configs/kept", &config.to_string());
    assert_eq!(code, 200, "{body}");
    let (_, read_back) = node.get("/logkit/configs/kept");
    let data = &read_back["data"];
    assert_eq!(data["batch_len"], 100, "{read_back}");
    assert_eq!(data["reader"]["expire"], "24h");
    assert_eq!(data["reader"]["runner_name"], "kept");
    assert_eq!(data["senders"][0]["ft_strategy"], "always_save");
    assert!(
        data["createtime"].as_str().is_some_and(|t| t.len() > 10),
        "{read_back}"
    );
    let status = node.runner_status("kept");
    let ignored: Vec<String> = serde_json::from_value(status["ignored_keys"].clone()).unwrap();
    for key in [
        "batch_len",
        "batch_size",
        "reader.expire",
        "reader.ignore_hidden",
        "parser.disable_record_errdata",
        "senders[0].ft_strategy",
    ] {
        assert!(ignored.contains(&key.to_string()), "{key} in {ignored:?}");
    }
    // Discarded: read and counted, not indexed.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while node
        .metrics()
        .lines()
        .all(|l| !(l.contains("discard_sender") && l.contains("kept") && l.ends_with(" 20")))
    {
        assert!(std::time::Instant::now() < deadline, "{}", node.metrics());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(node.count("keptkeys"), 0);

    // The file sender: JSON lines in the file, nothing indexed.
    let target = out.path().join("copy.out");
    let file = serde_json::json!({
        "reader": {"mode": "file", "log_path": path, "read_from": "oldest"},
        "senders": [{"name": "f", "sender_type": "file", "file_send_path": target}]
    });
    let (code, body) = node.send("POST", "/logkit/configs/tofile", &file.to_string());
    assert_eq!(code, 200, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let lines = loop {
        let text = std::fs::read_to_string(&target).unwrap_or_default();
        if text.lines().count() >= 20 {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{text}\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert!(
        first["raw"].as_str().unwrap().contains("keptkeys"),
        "{first}"
    );

    // Not outside collect.write_paths, not where runners read, not the node's own files.
    for (target, says) in [
        (node.logs().join("forged.log"), "collect.write_paths"),
        (node.data().join("x.out"), "write"),
        (
            std::path::PathBuf::from("/etc/passwd.out"),
            "collect.write_paths",
        ),
    ] {
        let bad = serde_json::json!({
            "reader": {"mode": "file", "log_path": path},
            "senders": [{"sender_type": "file", "file_send_path": target}]
        });
        let (code, body) = node.send("POST", "/logkit/configs/badfile", &bad.to_string());
        assert_eq!(
            (code, body["code"].as_str()),
            (400, Some("L1002")),
            "{body}"
        );
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
}

/// Every bad input on the logkit routes gets logkit's code and a message naming the problem.
#[test]
fn logkit_bad_inputs_get_logkit_codes_and_name_the_problem() {
    let mut node = Node::new("", "");
    node.start();
    let path = node.logs().join("b.log");
    append_lines(&path, numbered("bad", 0..1));
    let good = serde_json::json!({
        "reader": {"mode": "file", "log_path": path},
        "senders": [{"sender_type": "local"}]
    })
    .to_string();
    let (code, _) = node.send("POST", "/logkit/configs/b", &good);
    assert_eq!(code, 200);
    let outside = serde_json::json!({"reader": {"mode": "file", "log_path": "/etc/hostname"}, "senders": [{"sender_type": "local"}]}).to_string();
    let unknown_sender = serde_json::json!({"reader": {"mode": "file", "log_path": path}, "senders": [{"sender_type": "pandora"}]}).to_string();
    let no_senders =
        serde_json::json!({"reader": {"mode": "file", "log_path": path}, "senders": []})
            .to_string();
    let cases: &[(&str, &str, &str, u16, &str, &str)] = &[
        (
            "POST",
            "/logkit/configs/b",
            &good,
            400,
            "L1002",
            "file b runner is running",
        ),
        (
            "POST",
            "/logkit/configs/x",
            "{not json",
            400,
            "L1002",
            "invalid runner config",
        ),
        (
            "POST",
            "/logkit/configs/x",
            &outside,
            400,
            "L1002",
            "collect.allowed_paths",
        ),
        (
            "POST",
            "/logkit/configs/x",
            &unknown_sender,
            400,
            "L1002",
            "\"pandora\"",
        ),
        (
            "POST",
            "/logkit/configs/x",
            &no_senders,
            400,
            "L1002",
            "senders can not be nil",
        ),
        (
            "POST",
            "/logkit/configs/a%2Fb",
            &good,
            400,
            "L1002",
            "runner name",
        ),
        (
            "GET",
            "/logkit/configs/nosuch",
            "",
            400,
            "L1001",
            "config nosuch is not found",
        ),
        (
            "PUT",
            "/logkit/configs/nosuch",
            &good,
            400,
            "L1007",
            "runner nosuch not found",
        ),
        (
            "DELETE",
            "/logkit/configs/nosuch",
            "",
            400,
            "L1003",
            "runner nosuch not found",
        ),
        (
            "POST",
            "/logkit/configs/nosuch/start",
            "",
            400,
            "L1004",
            "runner nosuch not found",
        ),
        (
            "POST",
            "/logkit/configs/nosuch/stop",
            "",
            400,
            "L1005",
            "runner nosuch not found",
        ),
        (
            "POST",
            "/logkit/configs/nosuch/reset",
            "",
            400,
            "L1006",
            "runner nosuch not found",
        ),
        (
            "POST",
            "/logkit/configs/b/start",
            "",
            400,
            "L1004",
            "has already started",
        ),
        (
            "GET",
            "/logkit/errors/nosuch",
            "",
            400,
            "L1008",
            "runner does not exist",
        ),
        (
            "POST",
            "/logkit/parser/parse",
            r#"{"type":"json","sampleLog":"not json"}"#,
            400,
            "L1201",
            "line 1",
        ),
        (
            "POST",
            "/logkit/parser/parse",
            r#"{"type":"nosuch","sampleLog":"x"}"#,
            400,
            "L1201",
            "parser type unsupported: nosuch",
        ),
        (
            "POST",
            "/logkit/parser/check",
            r#"{"type":"nosuch"}"#,
            400,
            "L1201",
            "parser type unsupported: nosuch",
        ),
        (
            "POST",
            "/logkit/reader/check",
            r#"{"mode":"nosuch"}"#,
            400,
            "L1101",
            "reader type unsupported : nosuch",
        ),
        (
            "POST",
            "/logkit/reader/check",
            r#"{"mode":"file","log_path":"/etc/shadow"}"#,
            400,
            "L1101",
            "deny list",
        ),
        (
            "POST",
            "/logkit/cluster/configs/x?tag=nosuch",
            &good,
            400,
            "L2006",
            "the slaves(tag = 'nosuch', url = '') is not found",
        ),
        (
            "POST",
            "/logkit/cluster/register",
            r#"{"url":"http://10.9.9.9:3000","tag":"x"}"#,
            400,
            "L2004",
            "compat.logkit.anonymous_from",
        ),
        (
            "POST",
            "/logkit/cluster/register",
            r#"{"url":"http://10.9.9.9:3000/admin?x=1","tag":"x"}"#,
            400,
            "L2004",
            "a logkit slave's address",
        ),
        (
            "POST",
            "/logkit/cluster/register",
            r#"{"url":"http://example.com:3000","tag":"x"}"#,
            400,
            "L2004",
            "IP address",
        ),
        (
            "POST",
            "/logkit/cluster/register",
            "{not json",
            400,
            "L2004",
            "invalid register body",
        ),
    ];
    for (method, route, body, status, code, says) in cases {
        let (got, answer) = node.send(method, route, body);
        assert_eq!(
            (got, answer["code"].as_str()),
            (*status, Some(*code)),
            "{method} {route}: {answer}"
        );
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{method} {route}: {message:?} should say {says:?}"
        );
    }
    // A route logkit does not have: its framework's answer.
    let (got, answer) = node.get("/logkit/b/status");
    assert_eq!(
        (got, answer),
        (404, serde_json::json!({"message": "Not Found"}))
    );
}
