//! The search API and CLI: time ranges, histogram, cursor pages, the `lograft search` command.

use std::process::Command;

use crate::harness::{BIN, Node, append_lines};

fn json_line(ts: &str, level: &str, msg: &str) -> String {
    serde_json::json!({"ts": ts, "level": level, "msg": msg, "service": "api"}).to_string()
}

fn node_with_events() -> Node {
    let mut node = Node::new("", "[index]\nretention_days = 0");
    node.start();
    node.add_runner(&node.runner_json("app", "app.jsonl", "json"));
    append_lines(
        &node.logs().join("app.jsonl"),
        vec![
            json_line("2026-01-15T10:00:05Z", "INFO", "searchtest alpha one"),
            json_line("2026-01-15T10:30:00Z", "ERROR", "searchtest alpha two"),
            json_line("2026-01-15T11:15:00.500Z", "INFO", "searchtest beta three"),
            json_line("2026-01-16T00:00:01Z", "WARN", "searchtest beta four"),
        ],
    );
    node.wait_for_count("searchtest", 4);
    node
}

#[test]
fn time_ranges_histogram_and_cursor_pages() {
    let node = node_with_events();
    // Range [10:00, 11:00) holds two events; newest first.
    let (status, body) =
        node.get("/api/v1/search?q=searchtest&from=2026-01-15T10:00:00Z&to=2026-01-15T11:00:00Z");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 2);
    let messages: Vec<&str> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        vec!["searchtest alpha two", "searchtest alpha one"]
    );
    assert_eq!(body["hits"][0]["level"], "error");
    assert_eq!(body["hits"][0]["fields"]["service"], "api");
    assert_eq!(body["hits"][0]["ts"], "2026-01-15T10:30:00.000000Z");

    // Fields and levels, across two day partitions.
    assert_eq!(node.count("searchtest AND level:info"), 2);
    assert_eq!(node.count("fields.service:api AND beta"), 2);
    assert_eq!(node.count("\"alpha two\""), 1);
    assert_eq!(node.count("searchtest AND NOT alpha"), 2);

    // Histogram: hourly buckets over the 15th.
    let (status, body) =
        node.get("/api/v1/histogram?q=searchtest&from=2026-01-15T09:00:00Z&to=2026-01-15T12:00:00Z&interval=1h");
    assert_eq!(status, 200, "{body}");
    let counts: Vec<u64> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![0, 2, 1]);
    assert_eq!(body["buckets"][1]["ts"], "2026-01-15T10:00:00.000000Z");
    assert_eq!(body["total"], 3);
    let (status, body) = node.get("/api/v1/histogram?from=2026-01-15&to=2026-01-17&interval=1s");
    assert_eq!(status, 400, "too many buckets is refused: {body}");

    // Cursor pages: one hit per page, newest first, each exactly once.
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/search?q=searchtest&limit=1&cursor={c}"),
            None => "/api/v1/search?q=searchtest&limit=1".to_string(),
        };
        let (_, body) = node.get(&path);
        assert_eq!(body["total"], 4);
        pages.extend(
            body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["message"].as_str().unwrap().to_string()),
        );
        match body["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages.len() <= 4, "cursor does not end: {pages:?}");
    }
    assert_eq!(
        pages,
        vec![
            "searchtest beta four",
            "searchtest beta three",
            "searchtest alpha two",
            "searchtest alpha one"
        ]
    );
}

/// On the node's machine the CLI needs no flags: it reads the node's config (here through
/// LOGRAFT_CONFIG; packages use /etc/lograft/lograft.toml) and the token the node keeps in its
/// data dir. That token file is private to the node's user.
#[test]
fn cli_on_the_nodes_machine_needs_no_flags() {
    use std::os::unix::fs::PermissionsExt;
    let node = node_with_events();
    let token_file = node.data().join("cli-token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "cli-token mode {mode:o}");
    let run = |args: &[&str]| {
        Command::new(BIN)
            .env("LOGRAFT_CONFIG", node.config_path())
            .env_remove("LOGRAFT_URL")
            .env_remove("LOGRAFT_TOKEN")
            .args(args)
            .output()
            .unwrap()
    };
    let output = run(&[
        "search",
        "alpha",
        "--from",
        "2026-01-15",
        "--to",
        "2026-01-16",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 of 2 matches"), "{stdout}");
    let output = run(&["token", "list"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("local-cli-test-node"));
    // The local token is never sent to a node the caller names.
    let output = run(&[
        "search",
        "alpha",
        "--url",
        &node.url(""),
        "--from",
        "2026-01-15",
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn cli_search_prints_hits_and_reports_errors() {
    let node = node_with_events();
    let url = node.url("");
    let output = Command::new(BIN)
        .env("LOGRAFT_TOKEN", &node.token)
        .args([
            "search",
            "alpha",
            "--url",
            &url,
            "--from",
            "2026-01-15",
            "--to",
            "2026-01-16",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("searchtest alpha two") && stdout.contains("searchtest alpha one"),
        "{stdout}"
    );
    assert!(stdout.contains("2 of 2 matches"), "{stdout}");

    // Relative times start with '-': they are values, not flags.
    let output = Command::new(BIN)
        .env("LOGRAFT_TOKEN", &node.token)
        .args([
            "search",
            "alpha",
            "--url",
            &url,
            "--token",
            &node.token,
            "--from",
            "-100000d",
            "--to",
            "now",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 of 2 matches"));

    let output = Command::new(BIN)
        .env("LOGRAFT_TOKEN", &node.token)
        .args([
            "search",
            "beta",
            "--url",
            &url,
            "--token",
            &node.token,
            "--json",
            "--from",
            "2026-01-01",
        ])
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["total"], 2);

    let output = Command::new(BIN)
        .env("LOGRAFT_TOKEN", &node.token)
        .args(["search", "level:(", "--url", &url])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("invalid query"),
        "{stderr}"
    );
}

#[test]
fn top_values_stats_fields_and_numeric_ranges() {
    let mut node = Node::new("", "[index]\nretention_days = 0");
    node.start();
    node.add_runner(&node.runner_json("app", "agg.jsonl", "json"));
    // A deterministic corpus whose counts the test works out on its own.
    let hosts = ["web-1", "web-2", "db-1", "web-1", "web-1", "db-1"];
    let mut lines = Vec::new();
    let mut expected_hosts: std::collections::BTreeMap<&str, u64> = Default::default();
    let mut latencies = Vec::new();
    for i in 0..300u64 {
        let host = hosts[(i * 7 % 6) as usize];
        let latency = (i * 37 % 500) as f64;
        *expected_hosts.entry(host).or_default() += 1;
        latencies.push(latency);
        lines.push(
            serde_json::json!({"ts": format!("2026-02-01T10:{:02}:{:02}Z", i / 60, i % 60), "level": "info",
                               "msg": format!("aggtest n{i}"), "host": host, "latency_ms": latency,
                               "http": {"status": 200 + (i % 4) * 100}})
            .to_string(),
        );
    }
    append_lines(&node.logs().join("agg.jsonl"), lines);
    node.wait_for_count("aggtest", 300);

    let (status, top) = node.get("/api/v1/top?field=fields.host&q=aggtest&size=2");
    assert_eq!(status, 200, "{top}");
    let mut expected: Vec<(&str, u64)> = expected_hosts.iter().map(|(h, c)| (*h, *c)).collect();
    expected.sort_by_key(|e| std::cmp::Reverse(e.1));
    let values: Vec<(String, u64)> = top["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_string(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        values,
        expected[..2]
            .iter()
            .map(|(h, c)| (h.to_string(), *c))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        top["other"].as_u64().unwrap(),
        expected[2..].iter().map(|(_, c)| c).sum::<u64>()
    );

    let (status, stats) = node.get("/api/v1/stats?field=fields.latency_ms&q=aggtest");
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["count"], 300);
    let max = latencies.iter().cloned().fold(f64::MIN, f64::max);
    let sum: f64 = latencies.iter().sum();
    assert_eq!(stats["max"].as_f64().unwrap(), max);
    assert!(
        (stats["avg"].as_f64().unwrap() - sum / 300.0).abs() < 1e-6,
        "{stats}"
    );
    let p50 = stats["percentiles"]["50"].as_f64().unwrap();
    assert!(p50 > 150.0 && p50 < 350.0, "{stats}");

    // Numbers are numbers: ranges on parsed fields, nested objects by dotted path.
    let over_400 = latencies.iter().filter(|l| **l >= 400.0).count() as u64;
    assert_eq!(
        node.count("aggtest AND fields.latency_ms:[400 TO *]"),
        over_400
    );
    assert_eq!(node.count("fields.http.status:[500 TO 599]"), 75);
    assert_eq!(node.count("fields.http.status:{400 TO 500}"), 0);
    assert_eq!(node.count("fields.http.status:{300 TO 500]"), 150);
    let (status, bad) = node.get("/api/v1/top?field=message");
    assert_eq!(status, 400, "{bad}");

    let (status, fields) = node.get("/api/v1/fields?q=aggtest");
    assert_eq!(status, 200, "{fields}");
    let names: Vec<(&str, &str)> = fields["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    for expected in [
        ("fields.host", "keyword"),
        ("fields.latency_ms", "number"),
        ("fields.http.status", "number"),
        ("level", "keyword"),
    ] {
        assert!(names.contains(&expected), "{expected:?} in {names:?}");
    }

    // The same from the command line.
    let cli = |args: &[&str]| {
        let output = Command::new(BIN)
            .env("LOGRAFT_TOKEN", &node.token)
            .args(args)
            .args(["--url", &node.url(""), "--from", "2026-01-01"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let top_cli = cli(&["search", "aggtest", "--top", "fields.host", "--limit", "1"]);
    assert!(
        top_cli.contains(expected[0].0) && top_cli.contains(&expected[0].1.to_string()),
        "{top_cli}"
    );
    let histogram_cli = cli(&[
        "search",
        "aggtest",
        "--histogram",
        "--interval",
        "1h",
        "--to",
        "2026-02-02",
    ]);
    assert!(
        histogram_cli.contains("2026-02-01T10:00:00") && histogram_cli.contains("300 matches"),
        "{histogram_cli}"
    );
    let fields_cli = cli(&["search", "aggtest", "--fields"]);
    assert!(
        fields_cli.contains("fields.latency_ms") && fields_cli.contains("number"),
        "{fields_cli}"
    );

    // Histogram buckets add up to the total of the same query and range.
    let (_, histogram) = node.get(
        "/api/v1/histogram?q=aggtest&from=2026-02-01T10:00:00Z&to=2026-02-01T11:00:00Z&interval=1m",
    );
    let bucket_sum: u64 = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(bucket_sum, 300);
    assert_eq!(histogram["total"], 300);
}

/// See: issue 4 ("Context"): the neighbours of a hit come from the same file, in file order,
/// also when the file was renamed (rotated) in between.
#[test]
fn context_follows_the_file_across_a_rotation() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "app.log", "raw"));
    let path = node.logs().join("app.log");
    append_lines(&path, crate::harness::numbered("ctxtest", 0..10));
    node.wait_for_count("ctxtest", 10);
    std::fs::rename(&path, node.logs().join("app.log.1")).unwrap();
    append_lines(
        &node.logs().join("app.log.1"),
        crate::harness::numbered("ctxtest", 10..15),
    );
    append_lines(&path, crate::harness::numbered("ctxtest other", 0..5));
    node.wait_for_count("ctxtest", 20);

    let (_, found) = node.get("/api/v1/search?q=ctxtest%20AND%20n9%20AND%20NOT%20other");
    let id = found["hits"][0]["id"].as_str().unwrap().to_string();
    let (status, context) = node.get(&format!("/api/v1/context?id={id}&before=3&after=3"));
    assert_eq!(status, 200, "{context}");
    let lines: Vec<&str> = context["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "ctxtest n6",
            "ctxtest n7",
            "ctxtest n8",
            "ctxtest n9",
            "ctxtest n10",
            "ctxtest n11",
            "ctxtest n12"
        ]
    );
    assert_eq!(context["hit_index"], 3);
    let (status, _) = node.get("/api/v1/context?id=yesterday");
    assert_eq!(status, 400);
}
