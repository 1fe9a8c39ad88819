//! logkit's per-node API, literally: envelope, configs round trip, start/stop/reset, status
//! fields that move as data flows, errors, parser preview. See: issue 3 ("logkit per-node API").

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
        (status, body["code"].as_str()),
        (409, Some("L409")),
        "{body}"
    );
    node.wait_for_count("logkittest", 100);

    let (_, runners) = node.get("/logkit/runners");
    assert_eq!(runners["data"], serde_json::json!(["lk"]));
    let (_, read_back) = node.get("/logkit/configs/lk");
    assert_eq!(read_back["data"]["senders"][0]["password"], "******");
    let (_, status) = node.get("/logkit/lk/status");
    assert_eq!(status["data"]["runningStatus"], "running");
    assert_eq!(status["data"]["readDataCount"], 100);
    assert!(status["data"]["readDataSize"].as_u64().unwrap() > 0);
    assert_eq!(status["data"]["parserStats"]["success"], 100);
    assert!(status["data"]["elaspedtime"].as_f64().unwrap() > 0.0);
    assert!(
        status["data"]["readspeed"].as_f64().unwrap() > 0.0,
        "{status}"
    );

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
    assert!(errors["data"]["read_errors"].is_array());
    let preview = serde_json::json!({"type": "nginx", "sampleLog": "10.0.0.1 - - [15/Jan/2026:10:00:05 +0000] \"GET /x HTTP/1.1\" 200 5 \"-\" \"curl\""});
    let (code, parsed) = node.send("POST", "/logkit/parser/parse", &preview.to_string());
    assert_eq!(code, 200, "{parsed}");
    assert_eq!(parsed["data"]["SamplePoints"][0]["fields"]["status"], 200);
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
    assert_eq!((code, body["code"].as_str()), (404, Some("L404")));
}
