//! Each rotation mode, with a line-by-line account: every line written is found exactly once.
//! See: issue 2 ("Tailing").

use std::time::Duration;

use crate::harness::{Node, append_lines, assert_exactly_once, numbered};

fn node_with_runner(glob: &str) -> Node {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", glob, "raw"));
    node
}

#[test]
fn append_and_file_appearing_later() {
    let node = node_with_runner("*.log");
    let path = node.logs().join("late.log");
    std::thread::sleep(Duration::from_millis(500));
    // The file does not exist when the runner starts.
    append_lines(&path, numbered("appendtest", 0..500));
    append_lines(&path, numbered("appendtest", 500..1000));
    node.wait_for_count("appendtest", 1000);
    assert_exactly_once(
        &node.search_all("appendtest"),
        &numbered("appendtest", 0..1000),
    );
}

#[test]
fn rename_and_create_rotation_finishes_the_old_file() {
    let node = node_with_runner("app.log");
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("renametest", 0..300));
    node.wait_for_count("renametest", 300);
    // logrotate's default: rename, then the application writes a bit more to the old file
    // (it still holds it open) before it reopens the new one.
    std::fs::rename(&path, node.logs().join("app.log.1")).unwrap();
    append_lines(
        &node.logs().join("app.log.1"),
        numbered("renametest", 300..400),
    );
    append_lines(&path, numbered("renametest", 400..700));
    node.wait_for_count("renametest", 700);
    std::thread::sleep(Duration::from_millis(1500));
    assert_exactly_once(
        &node.search_all("renametest"),
        &numbered("renametest", 0..700),
    );
}

#[test]
fn rotation_into_a_name_the_glob_also_matches_is_not_reread() {
    let node = node_with_runner("app.log*");
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("globrotate", 0..300));
    node.wait_for_count("globrotate", 300);
    std::fs::rename(&path, node.logs().join("app.log.1")).unwrap();
    append_lines(&path, numbered("globrotate", 300..600));
    node.wait_for_count("globrotate", 600);
    std::thread::sleep(Duration::from_millis(1500));
    assert_exactly_once(
        &node.search_all("globrotate"),
        &numbered("globrotate", 0..600),
    );
}

#[test]
fn copytruncate_reads_the_new_content_from_zero() {
    let node = node_with_runner("app.log");
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("trunctest", 0..400));
    node.wait_for_count("trunctest", 400);
    // logrotate copytruncate: copy away (not matched by the glob), truncate in place.
    std::fs::copy(&path, node.logs().join("app.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append_lines(&path, numbered("trunctest", 400..450));
    node.wait_for_count("trunctest", 450);
    std::thread::sleep(Duration::from_millis(1000));
    assert_exactly_once(
        &node.search_all("trunctest"),
        &numbered("trunctest", 0..450),
    );
}

#[test]
fn deleted_and_recreated_file_inode_reuse() {
    let node = node_with_runner("*.log");
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("deltest", 0..200));
    node.wait_for_count("deltest", 200);
    std::fs::remove_file(&path).unwrap();
    // A new file, often on the very inode just freed: must be read from 0, not from the old offset.
    append_lines(&path, numbered("deltest", 200..210));
    node.wait_for_count("deltest", 210);
    std::thread::sleep(Duration::from_millis(1000));
    assert_exactly_once(&node.search_all("deltest"), &numbered("deltest", 0..210));
}

#[test]
fn partial_line_waits_for_its_newline_and_long_lines_are_cut_and_counted() {
    let mut node = Node::new("max_line_bytes = 1024", "");
    node.start();
    node.add_runner(&node.runner_json("app", "app.log", "raw"));
    let path = node.logs().join("app.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    use std::io::Write;
    file.write_all(b"partialtest first half").unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    file.write_all(b" second half\n").unwrap();
    let long_line = format!("longlinetest {}", "x".repeat(5000));
    file.write_all(long_line.as_bytes()).unwrap();
    file.write_all(b"\npartialtest after\n").unwrap();
    file.flush().unwrap();
    node.wait_for_count("partialtest", 2);
    node.wait_for_count("longlinetest", 1);
    let found = node.search_all("partialtest");
    assert_exactly_once(
        &found,
        &[
            "partialtest first half second half".to_string(),
            "partialtest after".to_string(),
        ],
    );
    let (_, body) = node.get("/api/v1/search?q=flags:truncated");
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{body}");
    assert_eq!(hits[0]["message"].as_str().unwrap().len(), 1024);
    assert_eq!(node.runner_status("app")["lines_truncated"], 1);
    assert!(
        node.metrics()
            .contains("lograft_runner_dropped_total{runner=\"app\",reason=\"line_truncated\"} 1"),
        "{}",
        node.metrics()
    );
}
