//! Export (NDJSON, CSV safe against formula injection) and live tail (Server-Sent Events).
//! See: issue 4 ("Live tail", "Export").

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::Method;

use crate::harness::{Node, append_lines, numbered};

#[test]
fn export_streams_every_match_as_ndjson_and_csv() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "e.log", "raw"));
    let mut lines = numbered("exporttest", 0..4500);
    lines.push("exporttest =cmd|' /C calc'!A0".to_string());
    append_lines(&node.logs().join("e.log"), lines.clone());
    node.wait_for_count("exporttest", lines.len() as u64);

    let ndjson = node
        .request(Method::GET, "/api/v1/export?q=exporttest")
        .send()
        .unwrap();
    assert_eq!(ndjson.status().as_u16(), 200);
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let body = ndjson.text().unwrap();
    let mut messages: Vec<String> = body
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    messages.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(messages, expected, "every match once, across export pages");

    let csv = node
        .request(Method::GET, "/api/v1/export?q=exporttest&format=csv")
        .send()
        .unwrap()
        .text()
        .unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(rows[0], "ts,node,runner,path,level,message,fields");
    assert_eq!(rows.len(), lines.len() + 1);
    let formula = rows.iter().find(|r| r.contains("calc")).unwrap();
    assert!(
        formula.contains("\"'exporttest =cmd") || !formula.contains(",\"=cmd"),
        "{formula}"
    );

    let (status, body) = node.get("/api/v1/export?format=xml");
    assert_eq!(status, 400, "{body}");
    let (status, _) = node.get("/api/v1/export?q=level:(");
    assert_eq!(status, 400);
}

/// Read SSE events (`event`, `data`) from a tail subscription on a thread.
fn subscribe(node: &Node, q: &str) -> mpsc::Receiver<(String, String)> {
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap();
    let response = client
        .get(node.url(&format!("/api/v1/tail?q={q}")))
        .bearer_auth(&node.token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ")
                && tx.send((event.clone(), data.to_string())).is_err()
            {
                return;
            }
        }
    });
    rx
}

#[test]
fn live_tail_delivers_new_lines_and_a_slow_client_does_not_slow_ingestion() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "t.log", "raw"));
    append_lines(
        &node.logs().join("t.log"),
        numbered("tailtest before", 0..50),
    );
    node.wait_for_count("tailtest", 50);

    // Lines written after the subscription arrive; lines from before do not.
    let events = subscribe(&node, "tailtest");
    std::thread::sleep(Duration::from_millis(500));
    append_lines(
        &node.logs().join("t.log"),
        numbered("tailtest after", 0..100),
    );
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 100 {
        let (event, data) = events
            .recv_timeout(deadline - Instant::now())
            .expect("tail events");
        assert_eq!(event, "hit");
        let hit: serde_json::Value = serde_json::from_str(&data).unwrap();
        seen.push(hit["message"].as_str().unwrap().to_string());
    }
    let mut expected = numbered("tailtest after", 0..100);
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);

    // A subscriber that never reads: ingestion still indexes every line (our own accounting:
    // the count reaches the number written), and the subscriber is told what it missed.
    let slow = subscribe(&node, "slowtest");
    std::thread::sleep(Duration::from_millis(500));
    let total = 60_000;
    append_lines(
        &node.logs().join("t.log"),
        numbered(&format!("slowtest {}", "x".repeat(200)), 0..total),
    );
    node.wait_for_count("slowtest", total as u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut hits = 0u64;
    let mut dropped = 0u64;
    while hits + dropped < total as u64 && Instant::now() < deadline {
        match slow.recv_timeout(Duration::from_secs(5)) {
            Ok((event, data)) if event == "dropped" => dropped += data.parse::<u64>().unwrap(),
            Ok(_) => hits += 1,
            Err(_) => break,
        }
    }
    assert!(
        dropped > 0,
        "a slow client is told about skipped lines ({hits} hits)"
    );
    assert_eq!(
        hits + dropped,
        total as u64,
        "every line is either delivered or counted as dropped"
    );
}

#[test]
fn cli_tail_follows_new_lines() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "c.log", "raw"));
    let mut child = std::process::Command::new(crate::harness::BIN)
        .args([
            "tail",
            "clitail",
            "--url",
            &node.url(""),
            "--token",
            &node.token,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(700));
    append_lines(&node.logs().join("c.log"), numbered("clitail", 0..5));
    let mut got = Vec::new();
    while got.len() < 5 {
        got.push(
            rx.recv_timeout(Duration::from_secs(30))
                .expect("tail output"),
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for i in 0..5 {
        assert!(
            got.iter().any(|l| l.ends_with(&format!("clitail n{i}"))),
            "{got:?}"
        );
    }
}
