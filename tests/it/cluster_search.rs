//! Search across the nodes of a cluster (real node processes on loopback): hits merged by time
//! with node names, totals and histograms summed, top values exact across nodes, cursor pages
//! that return every line once, context from the node that holds the hit, export and live tail
//! over every node, `?nodes=`, and a killed node that yields partial results flagged in
//! `nodes.failed`, never a failed search (a 503 only when no node at all could answer), and
//! that comes back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Node, append_lines, assert_exactly_once};

/// The first node, then the others joining it; every node sees all of them. No retention: the
/// corpus has fixed, old timestamps.
fn cluster(names: &[&str]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for name in names {
        let mut node = Node::member(name, "t", nodes.first(), "[index]\nretention_days = 0");
        node.start();
        nodes.push(node);
    }
    for node in &nodes {
        node.wait_members(nodes.len());
    }
    nodes
}

/// One JSON line of `node`'s corpus: `fanline <node> n<i>` with a host and a latency.
fn line(node: &str, i: usize, host: &str) -> (String, Value) {
    let minute = i % 50;
    let second = (i * 7) % 60;
    let ts = format!("2026-02-01T10:{minute:02}:{second:02}Z");
    let value = json!({"ts": ts, "level": "info", "msg": format!("fanline {node} n{i}"),
                       "host": host, "latency_ms": (i * 13 % 97) as f64});
    (ts, value)
}

/// Hosts per node, chosen so that the cluster's top values are not any node's own top:
/// a: y=20 x=15 z=1; b: z=18 y=5; c: z=18 x=12; plus 20 values seen once on each node.
fn hosts(node: &str) -> Vec<String> {
    let heavy: &[(&str, usize)] = match node {
        "a" => &[("y", 20), ("x", 15), ("z", 1)],
        "b" => &[("z", 18), ("y", 5)],
        _ => &[("z", 18), ("x", 12)],
    };
    let mut hosts: Vec<String> = heavy
        .iter()
        .flat_map(|(h, n)| std::iter::repeat_n(h.to_string(), *n))
        .collect();
    hosts.extend((0..20).map(|i| format!("{node}-once-{i:02}")));
    hosts
}

fn get_ok(node: &Node, path: &str) -> Value {
    let (status, body) = node.get(path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn failed_nodes(body: &Value) -> BTreeSet<String> {
    body["nodes"]["failed"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes.failed in {body}"))
        .iter()
        .map(|f| f["node"].as_str().unwrap().to_string())
        .collect()
}

/// Every hit of `q`, page by page with `limit`, as (node, message, ts).
fn pages(node: &Node, q: &str, limit: usize, extra: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut url = reqwest::Url::parse(&node.url("/api/v1/search")).unwrap();
        url.query_pairs_mut()
            .append_pair("q", q)
            .append_pair("limit", &limit.to_string());
        if let Some(cursor) = &cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        let path = format!("{}?{}{extra}", url.path(), url.query().unwrap());
        let body = get_ok(node, &path);
        assert!(failed_nodes(&body).is_empty(), "{body}");
        for hit in body["hits"].as_array().unwrap() {
            found.push((
                hit["node"].as_str().unwrap().to_string(),
                hit["message"].as_str().unwrap().to_string(),
                hit["ts"].as_str().unwrap().to_string(),
            ));
        }
        match body["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return found,
        }
    }
    panic!("pagination did not end");
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

/// Wait for an event satisfying `want`, collecting the hits seen on the way.
fn until_event(
    events: &mpsc::Receiver<(String, String)>,
    hits: &mut Vec<Value>,
    mut want: impl FnMut(&str, &Value, &[Value]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (event, data) = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("tail: timed out; hits so far: {hits:?}"));
        let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        if event == "hit" {
            hits.push(value.clone());
        }
        if want(&event, &value, hits) {
            return;
        }
    }
}

#[test]
fn search_fans_out_to_every_node_and_survives_a_dead_one() {
    let mut nodes = cluster(&["a", "b", "c"]);
    let names = ["a", "b", "c"];

    // Each node collects its own file (its runner API manages its own runners).
    let mut expected: BTreeMap<&str, Vec<(String, Value)>> = BTreeMap::new();
    for (node, name) in nodes.iter().zip(names) {
        node.add_runner(&node.runner_json("app", "*.jsonl", "json"));
        let lines: Vec<(String, Value)> = hosts(name)
            .iter()
            .enumerate()
            .map(|(i, host)| line(name, i, host))
            .collect();
        append_lines(
            &node.logs().join("app.jsonl"),
            lines.iter().map(|(_, v)| v.to_string()),
        );
        expected.insert(name, lines);
    }
    let per_node: BTreeMap<&str, u64> = expected
        .iter()
        .map(|(n, lines)| (*n, lines.len() as u64))
        .collect();
    let total: u64 = per_node.values().sum();
    let all_messages: Vec<String> = expected
        .values()
        .flatten()
        .map(|(_, v)| v["msg"].as_str().unwrap().to_string())
        .collect();
    // Counts through the cluster search itself: every node's lines become visible.
    nodes[0].wait_for_count("fanline", total);

    // Any node finds every line once, with the node it came from, and the summed total.
    for node in &nodes {
        let body = get_ok(node, "/api/v1/search?q=fanline&limit=1000");
        assert_eq!(body["total"], total, "{body}");
        assert_eq!(body["nodes"], json!({"queried": 3, "failed": []}));
        let hits = body["hits"].as_array().unwrap();
        let messages: Vec<String> = hits
            .iter()
            .map(|h| h["message"].as_str().unwrap().to_string())
            .collect();
        assert_exactly_once(&messages, &all_messages);
        for hit in hits {
            let message = hit["message"].as_str().unwrap();
            assert_eq!(
                Some(hit["node"].as_str().unwrap()),
                message.split(' ').nth(1),
                "{hit}"
            );
        }
        // Newest first across nodes.
        let ts: Vec<&str> = hits.iter().map(|h| h["ts"].as_str().unwrap()).collect();
        assert!(ts.windows(2).all(|w| w[0] >= w[1]), "not newest first");
    }

    // Small pages: every line exactly once, in order, on any node.
    for (node, limit) in nodes.iter().zip([7, 1, 50]) {
        let found = pages(node, "fanline", limit, "");
        let messages: Vec<String> = found.iter().map(|(_, m, _)| m.clone()).collect();
        assert_exactly_once(&messages, &all_messages);
        assert!(
            found.windows(2).all(|w| w[0].2 >= w[1].2),
            "pages out of order"
        );
    }

    // ?nodes= restricts the search.
    let body = get_ok(&nodes[2], "/api/v1/search?q=fanline&limit=1&nodes=a,b");
    assert_eq!(body["total"], per_node["a"] + per_node["b"]);
    assert_eq!(body["nodes"]["queried"], 2);
    let only_b = pages(&nodes[0], "fanline", 10, "&nodes=b");
    assert!(only_b.iter().all(|(n, _, _)| n == "b"));
    assert_eq!(only_b.len() as u64, per_node["b"]);
    let (status, body) = nodes[0].get("/api/v1/search?q=fanline&nodes=a,nope");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("nope"),
        "{body}"
    );
    // A bad query is this node's 400, not three failures.
    let (status, body) = nodes[1].get("/api/v1/search?q=level:(");
    assert_eq!(status, 400, "{body}");

    // Histogram: bucket counts summed over nodes.
    let body = get_ok(
        &nodes[1],
        "/api/v1/histogram?q=fanline&from=2026-02-01T10:00:00Z&to=2026-02-01T11:00:00Z&interval=1m",
    );
    assert_eq!(body["total"], total, "{body}");
    assert_eq!(body["interval"], "1m");
    let mut per_minute: BTreeMap<String, u64> = BTreeMap::new();
    for (ts, _) in expected.values().flatten() {
        *per_minute
            .entry(format!("{}:00.000000Z", &ts[..16]))
            .or_default() += 1;
    }
    let got: BTreeMap<String, u64> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["count"].as_u64().unwrap() > 0)
        .map(|b| {
            (
                b["ts"].as_str().unwrap().to_string(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, per_minute);
    // Without an interval, nodes agree on one.
    let body = get_ok(&nodes[0], "/api/v1/histogram?q=fanline");
    let sum: u64 = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, total, "{body}");

    // Nodes whose data spans very different ranges pick different intervals on their own; the
    // merged histogram still has one interval, aligned buckets, and every line.
    append_lines(
        &nodes[1].logs().join("app.jsonl"),
        [json!({"ts": "2023-01-01T00:00:00Z", "msg": "histline b"}).to_string()],
    );
    append_lines(
        &nodes[0].logs().join("app.jsonl"),
        [json!({"ts": "2026-02-01T10:00:00Z", "msg": "histline a"}).to_string()],
    );
    nodes[2].wait_for_count("histline", 2);
    let body = get_ok(&nodes[2], "/api/v1/histogram?q=histline");
    assert_eq!(body["total"], 2, "{body}");
    assert!(failed_nodes(&body).is_empty(), "{body}");
    let starts: Vec<i64> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            chrono::DateTime::parse_from_rfc3339(b["ts"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    let interval = starts[1] - starts[0];
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] == interval) && starts[0] % interval == 0,
        "buckets not aligned on one interval: {body}"
    );
    let filled: Vec<u64> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .filter(|count| *count > 0)
        .collect();
    assert_eq!(filled, [1, 1], "{body}");

    // Top values: exact counts across nodes, although no node has the cluster's top two as
    // its own (a's top is y and x; z is nearly absent there).
    let top = |node: &Node, extra: &str| -> (Vec<(String, u64)>, u64, Value) {
        let body = get_ok(
            node,
            &format!("/api/v1/top?field=fields.host&q=fanline&size=2{extra}"),
        );
        let values = body["values"]
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
        (values, body["other"].as_u64().unwrap(), body)
    };
    for node in &nodes {
        let (values, other, body) = top(node, "");
        assert_eq!(
            values,
            [("z".to_string(), 37), ("x".to_string(), 27)],
            "{body}"
        );
        assert_eq!(other, total - 64, "{body}");
        assert_eq!(body["nodes"]["queried"], 3);
    }
    let (values, _, _) = top(&nodes[1], "&nodes=a");
    assert_eq!(values, [("y".to_string(), 20), ("x".to_string(), 15)]);

    // Stats over every node's values.
    let latencies: Vec<f64> = expected
        .values()
        .flatten()
        .map(|(_, v)| v["latency_ms"].as_f64().unwrap())
        .collect();
    let body = get_ok(&nodes[2], "/api/v1/stats?field=fields.latency_ms&q=fanline");
    assert_eq!(body["count"], total, "{body}");
    assert_eq!(
        body["max"].as_f64().unwrap(),
        latencies.iter().cloned().fold(f64::MIN, f64::max)
    );
    assert_eq!(
        body["min"].as_f64().unwrap(),
        latencies.iter().cloned().fold(f64::MAX, f64::min)
    );
    let sum: f64 = latencies.iter().sum();
    assert!((body["sum"].as_f64().unwrap() - sum).abs() < 1e-6, "{body}");
    let p50 = body["percentiles"]["50"].as_f64().unwrap();
    assert!(p50 > 20.0 && p50 < 80.0, "{body}");

    // Fields: present in every node's sample.
    let body = get_ok(&nodes[0], "/api/v1/fields?q=fanline");
    assert_eq!(body["sampled"], total, "{body}");
    let host = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "fields.host")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(host["share"], 1.0);

    // Context comes from the node holding the hit.
    let body = get_ok(&nodes[0], "/api/v1/search?q=fanline+AND+n5+AND+node:b");
    let hit = &body["hits"][0];
    assert_eq!(hit["node"], "b", "{body}");
    let context = get_ok(
        &nodes[0],
        &format!(
            "/api/v1/context?id={}&node=b&before=2&after=2",
            hit["id"].as_str().unwrap()
        ),
    );
    let index = context["hit_index"].as_u64().unwrap() as usize;
    assert_eq!(
        context["lines"][index]["message"], "fanline b n5",
        "{context}"
    );
    assert_eq!(context["lines"].as_array().unwrap().len(), 5, "{context}");
    assert!(
        context["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["node"] == "b")
    );

    // Export: every node's lines, newest first, as one NDJSON stream.
    let response = nodes[1]
        .request(reqwest::Method::GET, "/api/v1/export?q=fanline")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["x-lograft-nodes-queried"], "3");
    assert_eq!(response.headers()["x-lograft-nodes-failed"], "[]");
    let text = response.text().unwrap();
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<String> = rows
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect();
    assert_exactly_once(&messages, &all_messages);
    assert!(
        rows.windows(2)
            .all(|w| w[0]["ts"].as_str() >= w[1]["ts"].as_str())
    );

    // Live tail over every node: lines from each arrive, with their node.
    let events = subscribe(&nodes[0], "fantail");
    let mut hits = Vec::new();
    until_event(&events, &mut hits, |event, data, _| {
        event == "nodes" && data["queried"] == 3
    });
    std::thread::sleep(Duration::from_millis(500));
    for (node, name) in nodes.iter().zip(names) {
        append_lines(
            &node.logs().join("app.jsonl"),
            [json!({"msg": format!("fantail {name}")}).to_string()],
        );
    }
    until_event(&events, &mut hits, |_, _, hits| {
        let from: BTreeSet<&str> = hits.iter().filter_map(|h| h["node"].as_str()).collect();
        from.len() == 3
    });
    for hit in &hits {
        assert_eq!(
            hit["message"],
            format!("fantail {}", hit["node"].as_str().unwrap())
        );
    }

    // Node c dies: searches answer 200 with a's and b's lines, and say c failed.
    nodes[2].kill();
    for node in &nodes[..2] {
        let body = get_ok(node, "/api/v1/search?q=fanline&limit=1000");
        assert_eq!(body["total"], per_node["a"] + per_node["b"], "{body}");
        assert_eq!(body["nodes"]["queried"], 3);
        assert_eq!(failed_nodes(&body), BTreeSet::from(["c".to_string()]));
        assert!(
            body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["node"] != "c")
        );
    }
    // The tail says so too.
    until_event(&events, &mut hits, |event, data, _| {
        event == "node_failed" && data["node"] == "c"
    });
    // Once c is lost it is not even asked: the failure says why.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = get_ok(&nodes[0], "/api/v1/search?q=fanline&limit=1");
        let error = body["nodes"]["failed"][0]["error"]
            .as_str()
            .unwrap()
            .to_string();
        if error.starts_with("lost") {
            break;
        }
        assert!(Instant::now() < deadline, "c never lost: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every kind of search answers with the survivors.
    let (values, _, body) = top(&nodes[1], "");
    assert_eq!(
        values,
        [("y".to_string(), 25), ("z".to_string(), 19)],
        "{body}"
    );
    assert_eq!(failed_nodes(&body), BTreeSet::from(["c".to_string()]));
    for path in [
        "/api/v1/histogram?q=fanline",
        "/api/v1/stats?field=fields.latency_ms&q=fanline",
        "/api/v1/fields?q=fanline",
    ] {
        let body = get_ok(&nodes[0], path);
        assert_eq!(
            failed_nodes(&body),
            BTreeSet::from(["c".to_string()]),
            "{path}"
        );
    }
    let body = get_ok(&nodes[0], "/api/v1/histogram?q=fanline");
    assert_eq!(body["total"], per_node["a"] + per_node["b"]);
    // Only the dead node: nothing answered, which is not "no matches" but a 503 saying why.
    let (status, body) = nodes[1].get("/api/v1/search?q=fanline&nodes=c");
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("c: lost"), "{body}");
    let (status, body) = nodes[0].get("/api/v1/context?id=2026-02-01/5&node=c");
    assert_eq!(status, 503, "{body}");
    // The export leaves it out and says so in its headers.
    let response = nodes[0]
        .request(reqwest::Method::GET, "/api/v1/export?q=fanline")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let failed: Value = serde_json::from_str(
        response.headers()["x-lograft-nodes-failed"]
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(failed[0]["node"], "c", "{failed}");
    assert_eq!(
        response.text().unwrap().lines().count() as u64,
        per_node["a"] + per_node["b"]
    );

    // c comes back: the tail follows it again, and searches find its lines.
    nodes[2].start();
    until_event(&events, &mut hits, |event, data, _| {
        event == "node_back" && data["node"] == "c"
    });
    append_lines(
        &nodes[2].logs().join("app.jsonl"),
        [json!({"msg": "fantail c again"}).to_string()],
    );
    until_event(&events, &mut hits, |event, data, _| {
        event == "hit" && data["message"] == "fantail c again"
    });
    let body = get_ok(&nodes[0], "/api/v1/search?q=fanline&limit=1");
    assert_eq!(body["total"], total, "{body}");
    assert!(failed_nodes(&body).is_empty(), "{body}");
}
