//! Network inputs: HTTP lines and the Elasticsearch `_bulk` API (with curl-like requests and
//! the official Python client). See: issue 3 ("Network inputs").

use std::process::Command;

use reqwest::Method;

use crate::harness::Node;

fn node_with(runners: &[serde_json::Value]) -> Node {
    let mut node = Node::new("", "");
    node.start();
    for runner in runners {
        node.add_runner(&runner.to_string());
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    node
}

#[test]
fn http_lines_are_durable_before_the_answer() {
    let node = node_with(&[
        serde_json::json!({"name": "web", "reader": {"mode": "http"}, "parser": {"type": "json"}}),
    ]);
    let body = "{\"msg\":\"httpingest one\",\"level\":\"warn\"}\nnot json httpingest two\n\n";
    let response = node
        .request(Method::POST, "/api/v1/ingest/web")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: serde_json::Value = response.json().unwrap();
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["parse_errors"], 1);
    node.wait_for_count("httpingest", 2);
    assert_eq!(node.count("httpingest AND level:warn"), 1);
    assert_eq!(node.runner_status("web")["lines_read"], 2);
    let (status, body) = node.send("POST", "/api/v1/ingest/nosuch", "x\n");
    assert_eq!(status, 404, "{body}");
    // Reading a file through an http runner is not possible: it has no path to check.
    assert_eq!(node.runner_status("web")["state"], "listening");
}

#[test]
fn bulk_api_answers_like_elasticsearch() {
    let node = node_with(&[
        serde_json::json!({"name": "app-logs", "reader": {"mode": "bulk"}, "parser": {"type": "json"}}),
    ]);
    // An event time of its own, inside the retention window (older ones are dropped).
    let when = (chrono::Utc::now() - chrono::Duration::days(2)).format("%Y-%m-%dT10:00:00");
    let body = format!(
        "{}{}{}{}{}{}{}",
        "{\"index\":{\"_index\":\"app-logs\",\"_id\":\"1\"}}\n",
        format_args!(
            "{{\"@timestamp\":\"{when}Z\",\"message\":\"bulktest first\",\"service\":\"api\"}}\n"
        ),
        "{\"create\":{}}\n",
        "{\"message\":\"bulktest second\"}\n",
        "{\"index\":{\"_index\":\"missing\"}}\n",
        "{\"message\":\"bulktest lost?\"}\n",
        "{\"delete\":{\"_index\":\"app-logs\",\"_id\":\"1\"}}\n"
    );
    let response = node
        .request(Method::POST, "/app-logs/_bulk")
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
    let answer: serde_json::Value = response.json().unwrap();
    assert_eq!(answer["errors"], true);
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["index"]["status"], 201);
    assert_eq!(items[0]["index"]["_id"], "1");
    assert_eq!(items[1]["create"]["status"], 201);
    assert_eq!(items[2]["index"]["status"], 404);
    assert_eq!(
        items[2]["index"]["error"]["type"],
        "index_not_found_exception"
    );
    assert_eq!(items[3]["delete"]["status"], 400);
    node.wait_for_count("bulktest", 2);
    assert_eq!(node.count("bulktest AND fields.service:api"), 1);
    let (_, hits) = node.get("/api/v1/search?q=bulktest%20AND%20first");
    assert_eq!(hits["hits"][0]["ts"], format!("{when}.000000Z"));

    // The same with curl, as an operator would (basic auth with the token as password).
    let curl = Command::new("curl")
        .args([
            "-sS",
            "-u",
            &format!("curl:{}", node.token),
            "-H",
            "Content-Type: application/x-ndjson",
        ])
        .args([
            "-X",
            "POST",
            &node.url("/app-logs/_bulk"),
            "--data-binary",
            "@-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = curl.stdin.as_ref().unwrap();
        stdin
            .write_all(b"{\"index\":{}}\n{\"message\":\"bulktest from curl\"}\n")
            .unwrap();
    }
    let output = curl.wait_with_output().unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["errors"], false, "{answer}");
    node.wait_for_count("bulktest AND curl", 1);

    // A bulk body larger than the general 1 MiB cap is fine (network inputs have their own).
    let big: String = (0..5000)
        .map(|i| {
            format!(
                "{{\"index\":{{}}}}\n{{\"message\":\"bulkbig {i} {}\"}}\n",
                "x".repeat(300)
            )
        })
        .collect();
    assert!(big.len() > 1 << 20);
    let response = node
        .request(Method::POST, "/app-logs/_bulk")
        .body(big)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    node.wait_for_count("bulkbig", 5000);

    let unterminated = node
        .request(Method::POST, "/_bulk")
        .body("{\"index\":{}}")
        .send()
        .unwrap();
    assert_eq!(unterminated.status().as_u16(), 400);
    let error: serde_json::Value = unterminated.json().unwrap();
    assert!(
        error["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("terminated by a newline")
    );
    let anonymous = node
        .anonymous(Method::POST, "/_bulk")
        .body("\n")
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

#[test]
fn the_official_python_client_ships_documents() {
    let node = node_with(&[
        serde_json::json!({"name": "pylogs", "reader": {"mode": "bulk"}, "parser": {"type": "json"}}),
    ]);
    let script = r#"
import sys
from elasticsearch import Elasticsearch, helpers
es = Elasticsearch(sys.argv[1], basic_auth=("shipper", sys.argv[2]), request_timeout=30)
docs = ({"_index": "pylogs", "_source": {"message": f"pyclient doc {i}", "level": "info", "n": i}} for i in range(500))
ok, errors = helpers.bulk(es, docs, chunk_size=100)
print(ok, errors)
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(node.url(""))
        .arg(&node.token)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python client: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "500 []");
    node.wait_for_count("pyclient", 500);
    let status = node.runner_status("pylogs");
    assert_eq!(status["lines_read"], 500, "{status}");
    assert!(
        status["bytes_read"].as_u64().unwrap() > 500 * 20,
        "{status}"
    );
    assert_eq!(node.count("pyclient AND fields.n:[100 TO 199]"), 100);
}

/// See: issue 3: `logger` (util-linux) over UDP and TCP, newline and octet-counted framing.
#[test]
fn syslog_from_logger_over_udp_and_tcp() {
    let port = crate::harness::free_port();
    let node = node_with(&[serde_json::json!({
        "name": "sys",
        "reader": {"mode": "syslog", "listen": format!("127.0.0.1:{port}")},
        "parser": {"type": "syslog"}
    })]);
    let status = node.runner_status("sys");
    assert_eq!(status["state"], "listening", "{status}");
    let send = |args: &[&str], message: &str| {
        let output = Command::new("logger")
            .args([
                "--server",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--tag",
                "payments",
                "-p",
                "user.err",
            ])
            .args(args)
            .arg(message)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "logger: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    send(&["--udp"], "syslogtest over udp");
    send(&["--tcp"], "syslogtest over tcp");
    send(&["--tcp", "--octet-count"], "syslogtest octet counted");
    send(&["--udp", "--rfc3164"], "syslogtest bsd format");
    node.wait_for_count("syslogtest", 4);
    assert_eq!(
        node.count("syslogtest AND fields.appname:payments AND level:error"),
        4
    );
    assert_eq!(node.count("\"syslogtest octet counted\""), 1);
    assert_eq!(node.runner_status("sys")["lines_read"], 4);

    let (status, body) = node.send(
        "POST",
        "/api/v1/runners",
        &serde_json::json!({"name": "bad", "reader": {"mode": "syslog", "listen": "everywhere"}})
            .to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reader.listen"),
        "{body}"
    );
}

/// Syslog over TCP keeps its framing whatever a peer sends (issue 13 item 4, issue 12 item 13):
/// an octet frame longer than the cap is cut and skipped to its end, a line that starts with
/// digits stays a line, a line longer than `collect.max_line_bytes` is cut there, and every
/// valid message around them arrives.
#[test]
fn syslog_tcp_framing_survives_hostile_frames() {
    use std::io::Write;
    let mut node = Node::new("max_line_bytes = 200", "");
    node.start();
    let port = node.add_syslog_runner("raw");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let big = format!("<13>framingbig {}", "x".repeat(100_000));
    let mut sent = Vec::new();
    sent.extend_from_slice(format!("{} {big}", big.len()).as_bytes());
    let after = "<13>framingok after big";
    sent.extend_from_slice(format!("{} {after}", after.len()).as_bytes());
    sent.extend_from_slice(b"2026-12-01 framingok dated line\n");
    sent.extend_from_slice(b"404 framingok status line\n");
    sent.extend_from_slice(format!("<13>framinglong {}\n", "y".repeat(5000)).as_bytes());
    sent.extend_from_slice(b"<13>framingok last\n");
    // In small pieces, as a slow peer would send them.
    for piece in sent.chunks(977) {
        stream.write_all(piece).unwrap();
    }
    drop(stream);
    node.wait_for_count("framingok", 4);
    node.wait_for_count("framingbig OR framinglong", 2);
    assert_eq!(node.count("framingok AND after"), 1);
    assert_eq!(node.count("framingok AND dated"), 1);
    assert_eq!(node.count("framingok AND status"), 1);
    let status = node.runner_status("sys");
    assert_eq!(status["lines_read"], 6, "{status}");
    assert_eq!(status["lines_truncated"], 2, "{status}");
    for hit in node.search_all("framingbig OR framinglong") {
        assert!(
            hit.len() <= 200,
            "cut at max_line_bytes: {} bytes",
            hit.len()
        );
    }
}

/// Fault review (issue 13) item 5: a `_bulk` spanning two bulk runners, refused for a full
/// queue, is refused item by item with nothing appended (one append per batch, whatever the
/// runners), so the shipper's retry of the failed items adds each document exactly once.
#[test]
fn a_bulk_over_two_runners_refused_for_a_full_queue_is_retried_exactly_once() {
    let mut node = Node::new("", "[queue]\nmax_bytes = 4096");
    node.start();
    for name in ["bulka", "bulkb"] {
        node.add_runner(
            &serde_json::json!({"name": name, "reader": {"mode": "bulk"}, "parser": {"type": "json"}})
                .to_string(),
        );
    }
    let bulk = |body: &str| -> serde_json::Value {
        let response = node
            .request(Method::POST, "/_bulk")
            .header("content-type", "application/x-ndjson")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().unwrap()
    };
    // Fill the queue while the indexer is paused.
    node.send("POST", "/api/v1/indexer/pause", "");
    let filler: String = (0..20)
        .map(|i| {
            format!(
                "{{\"index\":{{\"_index\":\"bulka\"}}}}\n{{\"msg\":\"filler {i} {}\"}}\n",
                "x".repeat(400)
            )
        })
        .collect();
    bulk(&filler);
    let mut body = String::new();
    for i in 0..10 {
        let index = if i % 2 == 0 { "bulka" } else { "bulkb" };
        body.push_str(&format!(
            "{{\"index\":{{\"_index\":\"{index}\",\"_id\":\"d{i}\"}}}}\n{{\"msg\":\"retrytest doc{i}\"}}\n"
        ));
    }
    let answer = bulk(&body);
    assert_eq!(answer["errors"], true, "{answer}");
    let statuses: Vec<u64> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["index"]["status"].as_u64().unwrap())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 429),
        "every item refused alike: {statuses:?}"
    );

    // Room again; the shipper retries what failed until everything is created.
    node.send("POST", "/api/v1/indexer/resume", "");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let answer = bulk(&body);
        if answer["errors"] == false {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{answer}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    node.wait_for_count("retrytest", 10);
    let hits = node.search_all("retrytest");
    assert_eq!(hits.len(), 10, "each document once: {hits:?}");
}
