//! The edge of the node: slow or numerous clients, CPU-heavy requests, over-long lines and
//! error shapes (attack review "No input stops the appliance", items 8, 9, 13 and 18). Every
//! wait is for a condition with a generous deadline; nothing asserts a duration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::Node;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A connection from `source` (any 127.x.y.z is this machine), so a test can be several
/// clients.
async fn connect_from(source: [u8; 4], port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("binding a loopback source address");
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connecting")
}

/// Read until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Read one HTTP response's head (the connection stays open).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_health_and_search(node: &Node, context: &str) {
    let (status, body) = node.get("/health");
    assert_eq!(status, 200, "{context}: /health: {body}");
    let (status, body) = node.get("/api/v1/search?q=anything");
    assert_eq!(status, 200, "{context}: search: {body}");
}

// See: attack review item 8 (1100 half-open connections: "too many open files").
/// Connections beyond `api.max_connections_per_ip` are closed at once, so one address holding
/// its share leaves room for everyone else; the node answers `/health` and searches meanwhile.
#[test]
fn connections_beyond_the_per_address_cap_are_closed_and_others_are_served() {
    // Long timeouts: the connections the node admits stay open for the whole test.
    let mut node = Node::new(
        "",
        "[api]\nheader_read_timeout = \"300s\"\nidle_timeout = \"300s\"\nmax_connections = 500\nmax_connections_per_ip = 40\n",
    );
    node.start();
    let port = node.port;
    let runtime = runtime();
    let closed = Arc::new(AtomicUsize::new(0));
    let mut held = Vec::new();
    runtime.block_on(async {
        // 60 slowloris connections from one address: a partial request line, then nothing.
        for _ in 0..60 {
            let mut stream = connect_from([127, 0, 0, 2], port).await;
            let _ = stream
                .write_all(b"GET /api/v1/search?q=x HTTP/1.1\r\nHost: a\r\n")
                .await;
            held.push(stream);
        }
        // 60 kept-alive connections from another: one request answered, then idle.
        for _ in 0..60 {
            let mut stream = connect_from([127, 0, 0, 3], port).await;
            let _ = stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
                .await;
            held.push(stream);
        }
    });
    // Count the connections the node closes (the ones over the cap), on a thread of their own.
    let watcher = {
        let closed = closed.clone();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for mut stream in held {
                    let closed = closed.clone();
                    tasks.push(tokio::spawn(async move {
                        let _ = read_to_close(&mut stream).await;
                        closed.fetch_add(1, Ordering::SeqCst);
                        // Keep nothing open past the test's end.
                    }));
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        })
    };
    // 20 over the cap from each address.
    wait_until(
        "the node to close the 40 connections over the per-address cap",
        || closed.load(Ordering::SeqCst) >= 40,
    );
    assert_health_and_search(&node, "while 80 connections are held");

    let runtime = self::runtime();
    runtime.block_on(async {
        // Another connection from a full address is closed without an answer ...
        let mut stream = connect_from([127, 0, 0, 2], port).await;
        let _ = stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await;
        let answer = read_to_close(&mut stream).await;
        assert!(
            answer.is_empty(),
            "a 41st connection from 127.0.0.2 was served: {}",
            String::from_utf8_lossy(&answer)
        );
        // ... while one from a new address is answered.
        let mut stream = connect_from([127, 0, 0, 4], port).await;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = String::from_utf8_lossy(&read_to_close(&mut stream).await).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    });
    assert_eq!(
        closed.load(Ordering::SeqCst),
        40,
        "the admitted connections stay open until their timeout"
    );
    // Refusals are logged at most every 10 s, so the line names whichever full address was
    // refused first.
    assert!(
        node.log()
            .contains("api.max_connections_per_ip (40) reached for 127.0.0."),
        "{}",
        node.log()
    );
    node.kill();
    watcher.join().unwrap();
}

// See: attack review item 8.
/// Half-open connections (a partial request line), silent ones and idle kept-alive ones are
/// closed by the node after `api.header_read_timeout`; `/health` and searches are answered
/// while they are open.
#[test]
fn half_open_and_idle_connections_are_closed_after_the_header_timeout() {
    let mut node = Node::new(
        "",
        "[api]\nheader_read_timeout = \"2s\"\nidle_timeout = \"3s\"\nmax_connections = 600\nmax_connections_per_ip = 200\n",
    );
    node.start();
    let port = node.port;
    let runtime = runtime();
    let closed = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let total = 150;
    let watcher = {
        let (closed, answered) = (closed.clone(), answered.clone());
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for i in 0..total {
                    let (closed, answered) = (closed.clone(), answered.clone());
                    let mut stream = connect_from([127, 0, 0, 5], port).await;
                    tasks.push(tokio::spawn(async move {
                        match i % 3 {
                            // Slowloris: a request line and part of the headers.
                            0 => {
                                let _ = stream
                                    .write_all(b"POST /_bulk HTTP/1.1\r\nHost: a\r\nContent-")
                                    .await;
                            }
                            // Kept alive: one request answered, then silence.
                            1 => {
                                let _ = stream
                                    .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
                                    .await;
                                if read_head(&mut stream).await.starts_with("HTTP/1.1 200") {
                                    answered.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                            // Connected, never a byte.
                            _ => {}
                        }
                        let _ = read_to_close(&mut stream).await;
                        closed.fetch_add(1, Ordering::SeqCst);
                    }));
                }
                for task in tasks {
                    let _ = task.await;
                }
            });
        })
    };
    assert_health_and_search(&node, "with 150 slow connections open");
    wait_until("every slow connection to be closed by the node", || {
        closed.load(Ordering::SeqCst) == total
    });
    watcher.join().unwrap();
    assert_eq!(answered.load(Ordering::SeqCst), total / 3);
    assert_health_and_search(&node, "after the slow connections");
}

// See: attack review item 9 (two 44 KB previews with a 5000-variable log_format blocked both
// async workers for 46 s; /health was unreachable and the request timeout never fired).
/// A pattern over the limits is a 400 naming the limit; a heavy one within them runs off the
/// async workers, so `/health` answers while it runs and the request timeout fires.
#[test]
fn hostile_parser_previews_are_refused_or_bounded_and_health_answers() {
    let mut node = Node::new("", "[api]\nrequest_timeout = \"4s\"\n");
    node.start();
    let format: String = (0..5000).map(|i| format!("$v{i} ")).collect();
    let sample: String = (0..5000).map(|i| format!("{i} ")).collect();
    let hostile =
        serde_json::json!({"type": "nginx", "nginx_log_format": format, "sampleLog": sample});
    let (status, body) = node.send("POST", "/logkit/parser/parse", &hostile.to_string());
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("parser.nginx_log_format has 5000 variables; at most 128 are allowed"),
        "{body}"
    );

    // Within the limits but as costly as they allow: 128 groups of `.*`, long lines.
    let regex: String = (0..128).map(|i| format!("(?P<g{i}>.*)")).collect();
    let line = "x".repeat(60 * 1024);
    let sample = vec![line; 12].join("\n");
    let heavy =
        serde_json::json!({"type": "regex", "regex": regex, "sampleLog": sample}).to_string();
    let running = Arc::new(AtomicUsize::new(0));
    let heavy_requests: Vec<_> = (0..2)
        .map(|_| {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap();
            let (url, token, heavy, running) = (
                node.url("/logkit/parser/parse"),
                node.token.clone(),
                heavy.clone(),
                running.clone(),
            );
            std::thread::spawn(move || {
                running.fetch_add(1, Ordering::SeqCst);
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .body(heavy)
                    .send()
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().unwrap_or(Value::Null))
            })
        })
        .collect();
    wait_until("the heavy requests to be sent", || {
        running.load(Ordering::SeqCst) == 2
    });
    // /health answers while the heavy previews are still running.
    let mut answered_while_running = false;
    let finished = || heavy_requests.iter().all(|request| request.is_finished());
    while !finished() {
        let (status, _) = node.get("/health");
        assert_eq!(status, 200);
        if !finished() {
            answered_while_running = true;
            break;
        }
    }
    for request in heavy_requests {
        let (status, body) = request.join().unwrap();
        let message = body["error"]["message"]
            .as_str()
            .or(body["message"].as_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            (status == 408 && message.contains("api.request_timeout"))
                || (status == 400 && message.contains("took longer than api.request_timeout")),
            "the request timeout must end a heavy preview: {status} {body}"
        );
    }
    assert!(
        answered_while_running,
        "/health was not answered while the previews ran"
    );
    let (status, _) = node.get("/health");
    assert_eq!(status, 200);
}

fn flags(hit: &Value) -> Vec<String> {
    hit["flags"]
        .as_array()
        .map(|flags| {
            flags
                .iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn only_hit(node: &Node, q: &str) -> Value {
    node.wait_for_count(q, 1);
    let (status, body) = node.get(&format!("/api/v1/search?q={q}&limit=10"));
    assert_eq!(status, 200, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{body}");
    hits[0].clone()
}

// See: attack review item 13 (ingested lines were not cut at max_line_bytes; one search
// answered 314 MB).
/// A line over the cap is cut, flagged `truncated` and counted on every network input: HTTP
/// lines and `_bulk` at `collect.max_line_bytes`, syslog over TCP at its 64 KiB message cap
/// (newline and octet-counted framing, which stays in step after a cut frame).
#[test]
fn over_long_lines_are_cut_and_flagged_on_every_input() {
    let mut node = Node::new("max_line_bytes = 1024\n", "");
    node.start();
    let syslog_port = crate::harness::free_port();
    for runner in [
        serde_json::json!({"name": "web", "reader": {"mode": "http"}, "parser": {"type": "raw"}}),
        serde_json::json!({"name": "big", "reader": {"mode": "bulk"}, "parser": {"type": "json"}}),
        serde_json::json!({"name": "sys", "reader": {"mode": "syslog", "listen": format!("127.0.0.1:{syslog_port}")}, "parser": {"type": "raw"}}),
    ] {
        node.add_runner(&runner.to_string());
    }
    wait_until("the syslog runner to listen", || {
        node.runner_status("sys")["state"] == "listening"
    });

    let body = format!("httplongline {}\nhttpshortline\n", "y".repeat(5000));
    let (status, answer) = node.send("POST", "/api/v1/ingest/web", &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
    assert_eq!(answer["truncated"], 1, "{answer}");
    let hit = only_hit(&node, "httplongline");
    assert_eq!(hit["message"].as_str().unwrap().len(), 1024, "{hit}");
    assert!(flags(&hit).contains(&"truncated".to_string()), "{hit}");
    assert!(!flags(&only_hit(&node, "httpshortline")).contains(&"truncated".to_string()));
    assert_eq!(node.runner_status("web")["lines_truncated"], 1);

    let body = format!(
        "{{\"index\":{{}}}}\n{{\"message\":\"bulklongline {}\"}}\n{{\"index\":{{}}}}\n{{\"message\":\"bulkshortline\"}}\n",
        "z".repeat(5000)
    );
    let response = node
        .request(Method::POST, "/big/_bulk")
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().unwrap();
    assert_eq!(answer["errors"], false, "{answer}");
    let hit = only_hit(&node, "bulklongline");
    assert_eq!(hit["message"].as_str().unwrap().len(), 1024, "{hit}");
    let hit_flags = flags(&hit);
    // Cut JSON is no longer JSON: kept as text, flagged both ways.
    assert!(
        hit_flags.contains(&"truncated".to_string())
            && hit_flags.contains(&"parse_error".to_string()),
        "{hit}"
    );
    only_hit(&node, "bulkshortline");
    assert_eq!(node.runner_status("big")["lines_truncated"], 1);

    {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", syslog_port)).unwrap();
        let long = format!("syslonglinenl {}\nsysshortlinenl\n", "s".repeat(100_000));
        stream.write_all(long.as_bytes()).unwrap();
        // Octet-counted frames carry a syslog message, which starts with its PRI.
        let frame = format!("<13>sysframelong {}", "f".repeat(100_000));
        let short = "<13>sysshortframe";
        let framed = format!("{} {frame}{} {short}", frame.len(), short.len());
        stream.write_all(framed.as_bytes()).unwrap();
    }
    for q in ["syslonglinenl", "sysframelong"] {
        let hit = only_hit(&node, q);
        // The line cap holds on the syslog input too.
        assert_eq!(hit["message"].as_str().unwrap().len(), 1024, "{q}");
        assert!(flags(&hit).contains(&"truncated".to_string()), "{q}: {hit}");
    }
    only_hit(&node, "sysshortlinenl");
    only_hit(&node, "sysshortframe");
    assert_eq!(node.runner_status("sys")["lines_truncated"], 2);
    let metrics = node.metrics();
    for runner in ["web", "big", "sys"] {
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("lograft_runner_dropped_total")
                    && line.contains("reason=\"line_truncated\"")
                    && line.contains(&format!("runner=\"{runner}\""))),
            "{runner}: {metrics}"
        );
    }
}

// See: attack review item 13 (a 60 MB `_bulk` raised RSS by 1.1 GB).
/// A `_bulk` body of many batches is streamed and appended batch by batch: every document is
/// accepted and searchable, once.
#[test]
fn a_large_bulk_is_accepted_and_every_document_is_searchable() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(
        &serde_json::json!({"name": "bulkbig", "reader": {"mode": "bulk"}, "parser": {"type": "json"}})
            .to_string(),
    );
    let docs = 30_000;
    let padding = "p".repeat(300);
    let mut body = String::new();
    for i in 0..docs {
        body.push_str("{\"create\":{}}\n");
        body.push_str(&format!(
            "{{\"message\":\"largebulk doc{i} {padding}\",\"n\":{i}}}\n"
        ));
    }
    assert!(body.len() > 10 * 1024 * 1024, "more than two batches");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let response = client
        .post(node.url("/bulkbig/_bulk"))
        .bearer_auth(&node.token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().unwrap();
    assert_eq!(answer["errors"], false);
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), docs);
    assert!(items.iter().all(|item| item["create"]["status"] == 201));
    node.wait_for_count("largebulk", docs as u64);
    assert_eq!(node.count("largebulk AND doc29999"), 1);
    assert_eq!(node.count("largebulk AND doc0"), 1);
    assert_eq!(node.runner_status("bulkbig")["lines_read"], docs);
}

/// A request written by hand with only its headers; returns the status and the JSON body.
fn raw_request(node: &Node, request_line: &str, headers: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    write!(
        stream,
        "{request_line} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {}\r\nConnection: close\r\n{headers}\r\n",
        node.token
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer[9..12].parse().unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    let body: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("a {status} answer is not JSON: {answer:?}"));
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, body)
}

fn error_of(response: reqwest::blocking::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("a {status} answer is not JSON: {text:?}"));
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{status}: {body}"
    );
    (status, body, headers)
}

// See: attack review item 18 (413, invalid UTF-8, 405 were plain text or empty; `bearer` in
// lower case was refused).
/// Every error is `{"error":{"code","message"}}`, and the Authorization scheme is read
/// without regard to case (RFC 7235).
#[test]
fn every_error_is_json_and_auth_schemes_ignore_case() {
    let mut node = Node::new("", "[api]\nmax_ingest_bytes = \"64KiB\"\n");
    node.start();
    node.add_runner(
        &serde_json::json!({"name": "small", "reader": {"mode": "bulk"}, "parser": {"type": "raw"}})
            .to_string(),
    );

    // Declared too large: refused before the body is read (so it is not sent here; a client
    // still sending when the node closes would read a reset, not the answer).
    let (status, body) = raw_request(
        &node,
        "POST /api/v1/runners",
        &format!("Content-Length: {}\r\n", 2 * 1024 * 1024),
    );
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than 1048576 bytes (api.max_body_bytes)"),
        "{body}"
    );
    // An ingest body over its own cap, declared and streamed (chunked, no length).
    let big = "{\"index\":{}}\n{\"message\":\"x\"}\n".repeat(4000);
    let (status, body) = raw_request(
        &node,
        "POST /small/_bulk",
        &format!("Content-Length: {}\r\n", big.len()),
    );
    assert_eq!(status, 413, "{body}");
    assert!(
        body.to_string()
            .contains("65536 bytes (api.max_ingest_bytes)"),
        "{body}"
    );
    let (status, body, _) = error_of(
        node.request(Method::POST, "/small/_bulk")
            .body(reqwest::blocking::Body::new(std::io::Cursor::new(big)))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 413, "{body}");

    let (status, body, _) = error_of(
        node.request(Method::POST, "/api/v1/runners")
            .body(vec![b'{', 0xff, 0xfe, b'}'])
            .send()
            .unwrap(),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not valid UTF-8"),
        "{body}"
    );

    let (status, body, _) = error_of(node.request(Method::GET, "/no/such/route").send().unwrap());
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    let (status, body, headers) = error_of(
        node.request(Method::DELETE, "/api/v1/status")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("method DELETE is not allowed on /api/v1/status"),
        "{body}"
    );
    assert!(headers.contains_key("allow"));

    // A JSON extractor's rejection (no JSON content type) on a node-to-node route.
    let secret = node.cluster_secret();
    let (status, body, _) = error_of(
        node.anonymous(Method::POST, "/internal/v1/heartbeat")
            .header("x-lograft-cluster-secret", &secret)
            .body("{}")
            .send()
            .unwrap(),
    );
    assert_eq!(status, 415, "{body}");

    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = node
            .anonymous(Method::GET, "/api/v1/me")
            .header("authorization", format!("{scheme} {}", node.token))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("shipper:{}", node.token));
    for scheme in ["basic", "BASIC"] {
        let response = node
            .anonymous(Method::GET, "/api/v1/me")
            .header("authorization", format!("{scheme} {basic}"))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
    }
    let (status, body, _) = error_of(
        node.anonymous(Method::GET, "/api/v1/me")
            .header("authorization", format!("Token {}", node.token))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 401, "{body}");
}
