//! The query language on a fixture corpus: CJK words and phrases, boolean operators, fields.
//! See: issue 4 ("Query language", "CJK").

use crate::harness::{Node, append_lines};

const CORPUS: &[&str] = &[
    "querytest 数据库连接失败，请检查配置 code=E1001",
    "querytest 用户登录成功 user=alice",
    "querytest 支付服务超时 timeout=30s service=payments",
    "querytest ログイン失敗 user=bob",
    "querytest 연결 실패 host=db1",
    "querytest connection reset by peer upstream=db1",
    "querytest trace 7f3a9c1e0b2d4f6a8c9e1b3d5f7a9c1e finished",
];

#[test]
fn cjk_words_phrases_and_the_rest_of_the_syntax() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "q.log", "raw"));
    append_lines(
        &node.logs().join("q.log"),
        CORPUS.iter().map(|s| s.to_string()),
    );
    node.wait_for_count("querytest", CORPUS.len() as u64);

    let expect = |q: &str, expected: &[usize]| {
        let mut found: Vec<String> = node.search_all(q);
        found.sort();
        let mut wanted: Vec<String> = expected.iter().map(|&i| CORPUS[i].to_string()).collect();
        wanted.sort();
        assert_eq!(found, wanted, "query {q:?}");
    };
    // A two-character Chinese word inside a longer sentence.
    expect("连接", &[0]);
    expect("失败", &[0]);
    expect("登录", &[1]);
    // A longer word is a phrase of bigrams; a phrase of words matches in order only.
    expect("数据库", &[0]);
    expect("\"连接失败\"", &[0]);
    expect("\"失败连接\"", &[]);
    // Japanese and Korean.
    expect("ログイン", &[3]);
    expect("실패", &[4]);
    // Mixed with Latin words and fields of the text.
    expect("超时 AND timeout", &[2]);
    expect("db1", &[4, 5]);
    expect("db1 AND NOT 실패", &[5]);
    expect("\"connection reset by peer\"", &[5]);
    expect("alice OR bob", &[1, 3]);
    expect("db1 -실패", &[5]);
    let path = node.logs().join("q.log").display().to_string();
    assert_eq!(
        node.search_all(&format!("path:\"{path}\" AND runner:app AND 超时"))
            .len(),
        1
    );
    // Wildcards on words and keyword fields.
    expect("connect*", &[5]);
    expect("conn?ction AND reset", &[5]);
    expect("querytest AND runner:ap*", &[0, 1, 2, 3, 4, 5, 6]);
    expect("querytest AND runner:x*", &[]);
    let (status, body) = node.get("/api/v1/search?q=fields.service:pay*");
    assert_eq!(
        status, 400,
        "wildcards on parsed fields are refused, not silently empty: {body}"
    );
    // Long tokens (trace ids) are indexed whole.
    expect("7f3a9c1e0b2d4f6a8c9e1b3d5f7a9c1e", &[6]);
}

#[test]
fn invalid_queries_get_a_400_with_the_position() {
    let mut node = Node::new("", "");
    node.start();
    for (q, position) in [
        ("level:(error", "position"),
        ("\"unclosed phrase", "position"),
        ("a AND (b OR", "position"),
    ] {
        let (status, body) = node.get(&format!("/api/v1/search?q={}", urlencode(q)));
        assert_eq!(status, 400, "{q}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("invalid query") && message.contains(position),
            "{q}: {message}"
        );
    }
    let (status, body) = node.get("/api/v1/search?q=nosuchfield:x");
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nosuchfield"),
        "{body}"
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// See: issue 4 ("Pagination"): the cursor is the sort key of the last hit, and new lines sort
/// above every cursor handed out, so paging is stable while data arrives.
#[test]
fn paging_through_10000_hits_while_lines_arrive_returns_each_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "p.log", "raw"));
    let old = crate::harness::numbered("pagetest old", 0..10_000);
    append_lines(&node.logs().join("p.log"), old.clone());
    node.wait_for_count("pagetest AND old", 10_000);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), node.logs().join("p.log"));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                append_lines(&path, crate::harness::numbered("pagetest new", i..i + 50));
                i += 50;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/search?q=pagetest&limit=700&cursor={c}"),
            None => "/api/v1/search?q=pagetest&limit=700".to_string(),
        };
        let (status, body) = node.get(&path);
        assert_eq!(status, 200, "{body}");
        pages.extend(
            body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["message"].as_str().unwrap().to_string()),
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
        match body["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    let mut unique = pages.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        pages.len(),
        "no hit appears twice across pages"
    );
    let found_old: Vec<String> = pages.into_iter().filter(|m| m.contains(" old ")).collect();
    crate::harness::assert_exactly_once(&found_old, &old);
}
