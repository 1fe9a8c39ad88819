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
