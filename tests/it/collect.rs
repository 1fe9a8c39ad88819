//! Parsers and transforms end to end, on the fixtures under tests/data. See: issue 3.

use crate::harness::Node;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn nginx_and_syslog_fixtures_with_transforms() {
    let mut node = Node::new("", "[index]\nretention_days = 0");
    node.start();
    std::fs::write(node.logs().join("access.log"), fixture("nginx-access.log")).unwrap();
    std::fs::write(node.logs().join("syslog"), fixture("syslog")).unwrap();
    let nginx = serde_json::json!({
        "name": "nginx",
        "reader": {"mode": "file", "log_path": node.logs().join("access.log")},
        "parser": {"type": "nginx"},
        "transforms": [
            {"type": "label", "key": "env", "value": "prod"},
            {"type": "filter", "pattern": "^192\\.0\\.2\\."},
            {"type": "mask", "pattern": "alice", "replacement": "[user]"}
        ]
    });
    node.add_runner(&nginx.to_string());
    node.add_runner(
        &serde_json::json!({
            "name": "syslog",
            "reader": {"mode": "file", "log_path": node.logs().join("syslog")},
            "parser": {"type": "syslog"}
        })
        .to_string(),
    );
    // 4 lines, one filtered out, one kept raw (parse error).
    node.wait_for_count("runner:nginx", 3);
    node.wait_for_count("runner:syslog", 5);

    // Parsed event times: the 10:00:05-10:00:06 window of 2026-01-15, as numbers and keywords.
    let (_, body) = node.get("/api/v1/search?q=runner:nginx%20AND%20fields.status:[200%20TO%20399]&from=2026-01-15T09:00:00Z&to=2026-01-15T11:00:00Z");
    assert_eq!(body["total"], 2, "{body}");
    assert_eq!(
        node.count("runner:nginx AND fields.env:prod AND fields.request_method:GET"),
        1
    );
    assert_eq!(node.count("runner:nginx AND flags:parse_error"), 1);
    assert_eq!(
        node.count("runner:nginx AND alice"),
        0,
        "masked before indexing"
    );
    assert_eq!(
        node.count("runner:nginx AND fields.remote_user:\"[user]\""),
        1
    );
    let status = node.runner_status("nginx");
    assert_eq!(status["lines_filtered"], 1, "{status}");
    assert_eq!(status["parse_errors"], 1, "{status}");

    // Syslog: severity becomes the level, the program a field.
    assert_eq!(
        node.count("runner:syslog AND fields.appname:sshd AND \"failed password\""),
        1
    );
    assert_eq!(node.count("runner:syslog AND level:notice"), 1);
    let (_, top) = node.get("/api/v1/top?field=fields.appname&q=runner:syslog&from=2026-01-01");
    assert_eq!(top["values"].as_array().unwrap().len(), 5, "{top}");
}

#[test]
fn bad_parser_and_transform_configs_get_400s() {
    let mut node = Node::new("", "");
    node.start();
    let path = node.logs().join("x.log");
    for (parser, transforms, expected) in [
        (
            serde_json::json!({"type": "regex"}),
            serde_json::json!([]),
            "parser.regex is required",
        ),
        (
            serde_json::json!({"type": "csv", "csv_schema": "a blob"}),
            serde_json::json!([]),
            "unknown type",
        ),
        (
            serde_json::json!({"type": "raw"}),
            serde_json::json!([{"type": "keep", "pattern": "(x"}]),
            "transforms[0].pattern",
        ),
        (
            serde_json::json!({"type": "raw"}),
            serde_json::json!([{"type": "explode"}]),
            "unknown variant `explode`",
        ),
    ] {
        let config = serde_json::json!({"name": "x", "reader": {"mode": "file", "log_path": path}, "parser": parser, "transforms": transforms});
        let (status, body) = node.send("POST", "/api/v1/runners", &config.to_string());
        assert_eq!(status, 400, "{config}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{expected}: {body}"
        );
    }
}

/// See: issue 3 ("Rate limit"): a limited runner's measured rate stays within 10% of its limit,
/// it lags instead of dropping, and every line arrives.
#[test]
fn rate_limited_runner_lags_and_loses_nothing() {
    use std::time::{Duration, Instant};
    let mut node = Node::new("", "");
    node.start();
    let lines = crate::harness::numbered("ratetest", 0..14_000);
    crate::harness::append_lines(&node.logs().join("r.log"), lines.clone());
    node.add_runner(
        &serde_json::json!({
            "name": "limited",
            "reader": {"mode": "file", "log_path": node.logs().join("r.log")},
            "rate_limit": {"lines_per_second": 2000}
        })
        .to_string(),
    );
    let sample = || {
        let status = node.runner_status("limited");
        (
            Instant::now(),
            status["lines_read"].as_u64().unwrap_or(0),
            status,
        )
    };
    std::thread::sleep(Duration::from_millis(1500));
    let (t1, read1, status1) = sample();
    assert_eq!(status1["state"], "limited", "{status1}");
    assert!(
        status1["lag_bytes"].as_u64().unwrap() > 0,
        "a limited runner lags: {status1}"
    );
    std::thread::sleep(Duration::from_millis(3000));
    let (t2, read2, _) = sample();
    let rate = (read2 - read1) as f64 / t2.duration_since(t1).as_secs_f64();
    assert!(
        (1800.0..=2200.0).contains(&rate),
        "measured {rate:.0} lines/s against a limit of 2000"
    );
    node.wait_for_count("ratetest", 14_000);
    crate::harness::assert_exactly_once(&node.search_all("ratetest"), &lines);
}

/// See: issue 3 ("encoding"): a GBK file with Chinese text is searchable by word; invalid
/// bytes are replaced and counted, never a crash; unknown encodings are refused by name.
#[test]
fn gbk_file_is_decoded_and_invalid_bytes_are_counted() {
    let mut node = Node::new("", "");
    node.start();
    let mut bytes = std::fs::read(format!(
        "{}/tests/data/gbk-app.log",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    bytes.extend_from_slice(b"broken \xff\xfe bytes gbkbroken\n");
    std::fs::write(node.logs().join("gbk.log"), bytes).unwrap();
    node.add_runner(
        &serde_json::json!({
            "name": "gbk",
            "reader": {"mode": "file", "log_path": node.logs().join("gbk.log"), "encoding": "GBK"}
        })
        .to_string(),
    );
    node.wait_for_count("runner:gbk", 3);
    assert_eq!(
        node.search_all("连接"),
        vec!["2026-01-15 10:00:00 数据库连接失败，请检查配置".to_string()]
    );
    assert_eq!(node.count("登录 AND alice"), 1);
    let broken = node.search_all("gbkbroken");
    assert_eq!(broken.len(), 1);
    assert!(broken[0].contains('\u{fffd}'), "{broken:?}");
    assert_eq!(node.runner_status("gbk")["lines_with_invalid_bytes"], 1);

    // UTF-16, both byte orders (a BOM on the little-endian file, CRLF line ends).
    let utf16 = |text: &str, little: bool| -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|u| {
                if little {
                    u.to_le_bytes()
                } else {
                    u.to_be_bytes()
                }
            })
            .collect()
    };
    std::fs::write(
        node.logs().join("le.log"),
        utf16("\u{feff}utf16test 小端 one\r\nutf16test two\r\n", true),
    )
    .unwrap();
    std::fs::write(
        node.logs().join("be.log"),
        utf16("utf16test 大端 three\n", false),
    )
    .unwrap();
    for (name, encoding) in [("le", "utf-16le"), ("be", "utf-16be")] {
        node.add_runner(
            &serde_json::json!({"name": name, "reader": {"mode": "file", "log_path": node.logs().join(format!("{name}.log")), "encoding": encoding}})
                .to_string(),
        );
    }
    node.wait_for_count("utf16test", 3);
    let mut found = node.search_all("utf16test");
    found.sort();
    assert_eq!(
        found,
        [
            "utf16test two",
            "utf16test 大端 three",
            "utf16test 小端 one"
        ]
    );

    {
        let (encoding, expected) = ("klingon", "not a known encoding");
        let config = serde_json::json!({"name": "e", "reader": {"mode": "file", "log_path": node.logs().join("x"), "encoding": encoding}});
        let (status, body) = node.send("POST", "/api/v1/runners", &config.to_string());
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{body}"
        );
    }
}

/// See: issue 3 ("head_pattern multiline"): a Java stack trace is one record; the record still
/// open at the end of the file is flushed when idle; a restart in between re-reads it whole.
#[test]
fn java_stack_traces_are_one_record_through_a_restart() {
    let mut node = Node::new("", "");
    // Records must not close on idleness during this test: only the next head closes them.
    let config = std::fs::read_to_string(node.config_path()).unwrap();
    std::fs::write(
        node.config_path(),
        config.replace(
            "partial_line_timeout = \"1s\"",
            "partial_line_timeout = \"60s\"",
        ),
    )
    .unwrap();
    node.start();
    let fixture = fixture("java-app.log");
    let path = node.logs().join("java.log");
    // Write up to the middle of the stack trace, then kill -9 the node, then the rest.
    let (first, rest) = fixture.split_at(fixture.find("Caused by").unwrap());
    std::fs::write(&path, first).unwrap();
    node.add_runner(
        &serde_json::json!({
            "name": "java",
            "reader": {"mode": "file", "log_path": path, "head_pattern": "^\\d{4}-\\d{2}-\\d{2} "}
        })
        .to_string(),
    );
    node.wait_for_count("runner:java AND starting", 1);
    node.kill();
    crate::harness::append_lines(
        &path,
        [
            rest.trim_end().to_string(),
            "2026-01-15 10:00:03,004 INFO done".to_string(),
        ],
    );
    node.start();
    node.wait_for_count("runner:java", 3);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // The last record stays open (no head after it, not idle long enough): three are closed.
    let records = node.search_all("runner:java");
    assert_eq!(records.len(), 3, "{records:#?}");
    let trace = records
        .iter()
        .find(|r| r.contains("payment failed"))
        .unwrap();
    assert!(
        trace.contains("Caused by: java.net.SocketTimeoutException")
            && trace.ends_with("... 12 more"),
        "{trace}"
    );
    assert_eq!(
        node.count("\"SocketTimeoutException\" AND \"payment failed\""),
        1
    );
}

/// Fault review (issue 13) item 9: a line in the middle of a file that starts with the bytes
/// FF FE is text with two bad bytes, not UTF-16 (a byte order mark counts only at the start
/// of a file); a UTF-8 BOM at the start of a file is removed.
#[test]
fn a_bom_counts_only_at_the_start_of_a_file() {
    let mut node = Node::new("", "");
    node.start();
    let mut bytes = b"\xEF\xBB\xBFbomfirst line one\n".to_vec();
    bytes.extend_from_slice(b"\xFF\xFEbomvisible line two\n");
    bytes.extend_from_slice(b"bomlast line three\n");
    std::fs::write(node.logs().join("bom.log"), bytes).unwrap();
    node.add_runner(
        &serde_json::json!({
            "name": "bom",
            "reader": {"mode": "file", "log_path": node.logs().join("bom.log")},
            "parser": {"type": "raw"}
        })
        .to_string(),
    );
    node.wait_for_count("runner:bom", 3);
    assert_eq!(node.count("bomvisible"), 1, "the line's text is searchable");
    let first = node.search_all("bomfirst");
    assert_eq!(first.len(), 1);
    assert!(first[0].starts_with("bomfirst"), "{:?}", first[0]);
}
