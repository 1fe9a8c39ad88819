//! Single inputs that used to stop the node (issue "No input stops the appliance"): each test
//! sends what an attacker sent and checks the node still answers and still indexes.

use std::net::UdpSocket;
use std::time::Duration;

use serde_json::Value;

use crate::harness::Node;

fn get_query(node: &Node, path: &str, q: &str) -> (u16, Value) {
    let mut url = reqwest::Url::parse(&node.url(path)).unwrap();
    let path = url.path().to_string();
    url.query_pairs_mut().append_pair("q", q);
    let path = format!("{path}?{}", url.query().unwrap());
    let response = node.request(reqwest::Method::GET, &path).send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Critical 1: 3000 nested parentheses overflowed the stack in query parsing and aborted the
/// process; so did groups after an unterminated quote (the `query` fuzz target). Every route
/// that parses a query answers 400 naming the limit; the node lives.
#[test]
fn a_deeply_nested_query_is_a_400_not_a_crash() {
    let mut node = Node::new("", "");
    node.start();
    let queries = [
        (
            format!("{}a{}", "(".repeat(3000), ")".repeat(3000)),
            "3000 groups and NOTs; at most 256",
        ),
        (
            format!("{}a", "NOT ".repeat(3000)),
            "3000 groups and NOTs; at most 256",
        ),
        (
            format!("level:vvv\"{}a", "(x OR ".repeat(200)),
            "levels deep",
        ),
        (format!("{}a", "NOT ".repeat(40)), "40 levels deep"),
    ];
    for path in [
        "/api/v1/search",
        "/api/v1/histogram",
        "/api/v1/stats?field=fields.n",
        "/api/v1/fields",
        "/api/v1/export",
        "/api/v1/tail",
    ] {
        for (q, says) in &queries {
            let (status, body) = get_query(&node, path, q);
            assert_eq!(status, 400, "{path}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(says), "{path}: {body}");
        }
    }
    let (status, body) = get_query(&node, "/api/v1/search", &"x ".repeat(20_000));
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("bytes long"), "{body}");
    let (status, _) = node.get("/health");
    assert_eq!(status, 200, "the node is alive; log:\n{}", node.log());
}

fn syslog_node(extra_config: &str) -> (Node, UdpSocket, u16) {
    let mut node = Node::new("", extra_config);
    node.start();
    let port = node.add_syslog_runner("json");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    (node, socket, port)
}

/// Critical 2: one JSON line nested ~126 levels deep was accepted into the queue but could not
/// be decoded back, and indexing stopped for good (across restarts). Now the deep part is kept
/// as text, the line is searchable, and everything after it is indexed, also after a restart.
#[test]
fn a_deeply_nested_json_line_does_not_halt_indexing() {
    let (mut node, socket, _) = syslog_node("");
    let deep = format!(
        "{{\"msg\":\"deepline\",\"a\":{}1{}}}",
        "[".repeat(125),
        "]".repeat(125)
    );
    socket.send(deep.as_bytes()).unwrap();
    socket.send(br#"{"msg":"afterdeep one"}"#).unwrap();
    node.wait_for_count("afterdeep", 1);
    assert_eq!(node.count("deepline"), 1);
    node.stop();
    node.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while node.runner_status("sys")["state"] != "listening" {
        assert!(std::time::Instant::now() < deadline, "{}", node.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    socket.send(br#"{"msg":"afterdeep two"}"#).unwrap();
    node.wait_for_count("afterdeep", 2);
    let (_, status) = node.get("/api/v1/status");
    assert_eq!(status["indexer"]["last_error"], Value::Null, "{status}");
}

/// Critical 3: unauthenticated datagrams with distinct future dates opened a partition each
/// (memory maps exhausted, crash loop), and dates in 2199 made size retention delete today's
/// data. Future dates now keep their arrival time (flagged `future_time`), dates before the
/// retention window are counted as dropped, and today's data survives size retention.
#[test]
fn forged_event_times_open_no_partitions_and_never_push_out_today() {
    let (node, socket, port) = syslog_node(
        "[index]\nretention_days = 7\nretention_max_bytes = 1\nretention_interval = \"1s\"\n",
    );
    socket.send(br#"{"msg":"realline today"}"#).unwrap();
    node.wait_for_count("realline", 1);
    // Over TCP (newline framing), so that none is lost on the way on a loaded machine.
    let mut lines = String::new();
    for i in 0..300 {
        let day = 1 + i % 28;
        let year = 2100 + i % 100;
        lines.push_str(&format!(
            "{{\"msg\":\"forged future {i}\",\"time\":\"{year}-03-{day:02}T10:00:00Z\"}}\n"
        ));
        let year = 2000 + i % 25;
        lines.push_str(&format!(
            "{{\"msg\":\"forged ancient {i}\",\"time\":\"{year}-05-{day:02}T10:00:00Z\"}}\n"
        ));
    }
    lines.push_str("{\"msg\":\"realline after\"}\n");
    {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(lines.as_bytes()).unwrap();
    }
    node.wait_for_count("realline", 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let (_, status) = node.get("/api/v1/status");
        let dropped = status["indexer"]["dropped"]["retention"].as_u64().unwrap();
        if node.count("forged") == 300 && dropped == 300 {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let partitions = status["index"]["partitions"].as_array().unwrap();
    assert!(partitions.len() <= 2, "{status}");
    assert_eq!(node.count("forged AND future AND flags:future_time"), 300);
    assert_eq!(status["indexer"]["future_times"], 300, "{status}");
    assert_eq!(node.count("forged AND ancient"), 0);
    assert!(
        node.metrics()
            .contains("lograft_index_dropped_total{reason=\"retention\"} 300"),
        "{}",
        node.metrics()
    );
    // Size retention (1 byte) ran every second meanwhile; the partition that received data
    // last is today's, and it stays.
    assert_eq!(node.count("realline"), 2, "{}", node.log());
}

/// High 4: the allowlist checked a path and then opened it, so a symlink swapped in between
/// won (`/etc/shadow` and the node's own cli-token were read, 3 runs of 3 in 60 s). Now the
/// file is opened first and what was opened is checked. For 60 s a file inside the allowlist
/// is swapped, as fast as the test can, between a plain log file and a symlink to a file the
/// test itself owns outside the allowlist (so the test cannot pass merely because the node
/// lacks permission): not one byte of it is indexed. A hard link to the node's own secret file
/// is refused too.
#[test]
fn a_symlink_swapped_in_after_the_check_reads_nothing() {
    use std::time::Instant;
    let mut node = Node::new("", "");
    node.start();
    let outside = node.root.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "TOPSECRETTOKEN sensitive line\n".repeat(50)).unwrap();
    let logs = node.logs();
    node.add_runner(&node.runner_json("swap", "*.log", "raw"));
    let target = logs.join("swap.log");
    let staging = logs.join("staging.tmp");
    let link = logs.join("link.tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut swaps = 0u64;
    while Instant::now() < deadline {
        // A plain file with benign lines...
        std::fs::write(&staging, format!("benign line {swaps}\n")).unwrap();
        std::fs::rename(&staging, &target).unwrap();
        // ...replaced by a symlink to the secret, atomically.
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        std::fs::rename(&link, &target).unwrap();
        swaps += 1;
    }
    // A hard link to the node's own CLI token, inside the allowlist.
    let token_file = node.data().join("cli-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    std::fs::hard_link(&token_file, logs.join("token.log")).unwrap();
    std::fs::write(&staging, "benign final line\n").unwrap();
    std::fs::rename(&staging, logs.join("final.log")).unwrap();
    node.wait_for_count("\"benign final line\"", 1);
    assert!(swaps > 100, "only {swaps} swaps");
    assert_eq!(node.count("TOPSECRETTOKEN"), 0, "the secret was read");
    let token_id = token.trim().split('_').nth(1).unwrap().to_string();
    assert_eq!(node.count(&token_id), 0, "the token was read");
    assert_eq!(
        node.count(&format!("\"{}\"", token.trim())),
        0,
        "the token was read"
    );
    let status = node.runner_status("swap");
    let problems = status.to_string();
    assert!(
        problems.contains("outside this node's collect.allowed_paths")
            || problems.contains("own data_dir"),
        "the refusal is reported: {status}"
    );
}
