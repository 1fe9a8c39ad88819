//! The queue is a cache of work in flight: losing it loses nothing. And a full queue makes
//! runners wait, it does not drop. See: issue 2 ("Queue", "Index").

use std::time::Duration;

use crate::harness::{Node, append_lines, assert_exactly_once, numbered};

fn queue_dir(node: &Node) -> std::path::PathBuf {
    node.data().join("queue")
}

#[test]
fn deleted_queue_is_rebuilt_from_the_index_checkpoint() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "app.log", "raw"));
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("losttest", 0..500));
    node.wait_for_count("losttest", 500);

    // Lines in the queue but not yet indexed when the node dies with its queue.
    node.send("POST", "/api/v1/indexer/pause", "");
    append_lines(&path, numbered("losttest", 500..800));
    std::thread::sleep(Duration::from_millis(1500));
    node.kill();
    std::fs::remove_dir_all(queue_dir(&node)).unwrap();
    append_lines(&path, numbered("losttest", 800..900));

    node.start();
    node.wait_for_count("losttest", 900);
    std::thread::sleep(Duration::from_millis(1500));
    assert_exactly_once(&node.search_all("losttest"), &numbered("losttest", 0..900));
}

#[test]
fn corrupted_queue_is_moved_aside_and_nothing_is_lost() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "app.log", "raw"));
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("corrupttest", 0..400));
    node.wait_for_count("corrupttest", 400);
    node.send("POST", "/api/v1/indexer/pause", "");
    append_lines(&path, numbered("corrupttest", 400..600));
    std::thread::sleep(Duration::from_millis(1500));
    node.kill();
    for entry in std::fs::read_dir(queue_dir(&node)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::write(entry.path(), vec![0x5Au8; 8192]).unwrap();
        }
    }
    node.start();
    node.wait_for_count("corrupttest", 600);
    std::thread::sleep(Duration::from_millis(1500));
    assert_exactly_once(
        &node.search_all("corrupttest"),
        &numbered("corrupttest", 0..600),
    );
    let moved_aside = std::fs::read_dir(node.data()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("queue.broken-")
    });
    assert!(moved_aside, "the broken queue is kept aside for inspection");
    assert!(node.metrics().contains("lograft_queue_rebuilds_total 1"));
}

#[test]
fn full_queue_stops_the_runner_and_it_resumes_without_loss() {
    let mut node = Node::new("", "[queue]\nmax_bytes = 8192");
    node.start();
    node.send("POST", "/api/v1/indexer/pause", "");
    node.add_runner(&node.runner_json("app", "app.log", "raw"));
    let path = node.logs().join("app.log");
    let lines = numbered("backpressuretest", 0..20_000);
    append_lines(&path, lines.clone());
    let file_size = std::fs::metadata(&path).unwrap().len();

    // The runner fills the queue, then waits: it has read only a part of the file.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = node.runner_status("app");
        if status["state"] == "blocked" {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "runner never blocked: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let bytes_read = status["bytes_read"].as_u64().unwrap();
    assert!(
        bytes_read < file_size,
        "read {bytes_read} of {file_size} bytes while the queue was full"
    );
    let (_, node_status) = node.get("/api/v1/status");
    let queued = node_status["queue"]["bytes"].as_u64().unwrap();
    // One batch may overshoot the cap; the runner then waits.
    assert!(
        queued < 8192 + 6 * 1024 * 1024,
        "queue holds {queued} bytes"
    );
    assert_eq!(node.count("backpressuretest"), 0);

    node.send("POST", "/api/v1/indexer/resume", "");
    node.wait_for_count("backpressuretest", 20_000);
    assert_exactly_once(&node.search_all("backpressuretest"), &lines);
    node.stop();
}

#[test]
fn retention_drops_whole_day_partitions_by_age_and_by_size() {
    use chrono::{Duration as Days, Utc};
    let mut node = Node::new(
        "",
        "[index]\nretention_days = 7\nretention_interval = \"500ms\"",
    );
    node.start();
    node.add_runner(&node.runner_json("app", "app.jsonl", "json"));
    let line = |days_ago: i64, i: usize| {
        let ts = (Utc::now() - Days::days(days_ago)).to_rfc3339();
        serde_json::json!({"ts": ts, "msg": format!("retentiontest d{days_ago} n{i}")}).to_string()
    };
    let mut lines: Vec<String> = (0..20).map(|i| line(30, i)).collect();
    lines.extend((0..20).map(|i| line(2, i)));
    lines.extend((0..20).map(|i| line(0, i)));
    append_lines(&node.logs().join("app.jsonl"), lines);
    node.wait_for_count("retentiontest AND d0", 20);
    node.wait_for_count("retentiontest AND d2", 20);
    // Lines 30 days old are outside the window: the indexer counts them as dropped by
    // retention instead of opening a partition that retention would drop next.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !node
        .metrics()
        .contains("lograft_index_dropped_total{reason=\"retention\"} 20")
    {
        assert!(std::time::Instant::now() < deadline, "{}", node.metrics());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(node.count("retentiontest AND d30"), 0);
    assert_eq!(node.count("retentiontest"), 40);
    let (_, status) = node.get("/api/v1/status");
    assert_eq!(status["indexer"]["dropped"]["retention"], 20, "{status}");
    assert_eq!(status["index"]["partitions"].as_array().unwrap().len(), 2);

    // A size limit below one partition keeps only the newest day.
    node.stop();
    let config = std::fs::read_to_string(node.config_path()).unwrap();
    std::fs::write(
        node.config_path(),
        config.replace(
            "retention_days = 7",
            "retention_days = 7\nretention_max_bytes = 1",
        ),
    )
    .unwrap();
    node.start();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while node.count("retentiontest AND d2") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "partition over the size limit was not dropped"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(node.count("retentiontest AND d0"), 20);
}

/// A second node on the same data dir must fail clearly, and must not mistake the locked
/// queue for a broken one (moving it aside would lose the first node's work in flight).
#[test]
fn a_second_node_on_the_same_data_dir_is_refused() {
    let mut node = Node::new("", "");
    node.start();
    let config = std::fs::read_to_string(node.config_path()).unwrap();
    let other = node.root.path().join("other.toml");
    let port = crate::harness::free_port();
    std::fs::write(
        &other,
        config.replace(&format!(":{}\"", node.port), &format!(":{port}\"")),
    )
    .unwrap();
    let output = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--config"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
    let moved = std::fs::read_dir(node.data()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("queue.broken-")
    });
    assert!(!moved, "the first node's queue stays where it is");
    let (status, _) = node.get("/api/v1/status");
    assert_eq!(status, 200);
}

/// A day partition's directory under the index dir.
fn first_partition(index: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(index)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("20"))
        .unwrap()
        .path()
}

/// `lograft serve` on `node`'s config, expected to refuse: its stderr.
fn refused_start(node: &Node) -> String {
    let output = std::process::Command::new(crate::harness::BIN)
        .args(["serve", "--config"])
        .arg(node.config_path())
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "the node was expected to refuse to start"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fault review (issue 13) item 3, the damaged-files suite: for each damaged or missing file
/// the node recovers with nothing lost and says what it did, or refuses to start naming the
/// file and what to do; it never deletes indexed data on its own. (The queue's cases are the
/// tests above.)
#[test]
fn damaged_files_are_recovered_or_refused_and_nothing_indexed_is_deleted() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "app.log", "raw"));
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("damagetest", 0..300));
    node.wait_for_count("damagetest", 300);
    node.stop();
    let index = node.data().join("index");

    // checkpoint.json lost: rebuilt from the partitions' commits; nothing deleted or doubled.
    std::fs::remove_file(index.join("checkpoint.json")).unwrap();
    node.start();
    append_lines(&path, numbered("damagetest", 300..400));
    node.wait_for_count("damagetest", 400);
    assert_exactly_once(
        &node.search_all("damagetest"),
        &numbered("damagetest", 0..400),
    );
    assert!(
        node.log().contains("checkpoint.json is missing"),
        "{}",
        node.log()
    );
    node.stop();

    // checkpoint.json damaged: refused, naming it and `lograft repair`. The repair's dry run
    // says what it would do and changes nothing; --apply moves the file aside (kept), and
    // the node starts with nothing lost or doubled.
    std::fs::write(index.join("checkpoint.json"), b"{\"seq\":").unwrap();
    let stderr = refused_start(&node);
    assert!(
        stderr.contains("checkpoint.json is damaged") && stderr.contains("lograft repair"),
        "{stderr}"
    );
    let dry = node.cli(&["repair", "--config"], "");
    assert!(
        dry.contains("problem:")
            && dry.contains("checkpoint.json is damaged")
            && dry.contains("would: move"),
        "{dry}"
    );
    assert_eq!(
        std::fs::read(index.join("checkpoint.json")).unwrap(),
        b"{\"seq\":",
        "a dry run changes nothing"
    );
    let applied = node.cli(&["repair", "--apply", "--config"], "");
    assert!(applied.contains("done: move"), "{applied}");
    let kept = std::fs::read_dir(&index).unwrap().flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with("checkpoint.json.damaged-")
    });
    assert!(kept, "the damaged checkpoint is kept aside");
    node.start();
    append_lines(&path, numbered("damagetest", 400..450));
    node.wait_for_count("damagetest", 450);
    assert_exactly_once(
        &node.search_all("damagetest"),
        &numbered("damagetest", 0..450),
    );
    node.stop();
    let after = node.cli(&["repair", "--config"], "");
    assert!(
        after.contains("ok: ") && after.contains("checkpoint.json at sequence"),
        "{after}"
    );

    // The config store gone: refused, naming it (a new cluster would stop collection).
    let store = node.data().join("store");
    let kept = node.data().join("store.kept");
    std::fs::rename(&store, &kept).unwrap();
    let stderr = refused_start(&node);
    assert!(
        stderr.contains("config store")
            && stderr.contains("store")
            && stderr.contains("LOGRAFT_NEW_STORE")
            && stderr.contains("lograft repair"),
        "{stderr}"
    );
    let dry = node.cli(&["repair", "--config"], "");
    assert!(
        dry.contains("is missing") && dry.contains("would: begin a new config store"),
        "{dry}"
    );
    assert!(!store.exists(), "a dry run changes nothing");
    std::fs::rename(&kept, &store).unwrap();

    // The config store damaged: refused, naming it and what to do (sled alone would blame a
    // version "earlier than 0.29").
    let copy = node.root.path().join("store.copy");
    std::process::Command::new("cp")
        .args(["-a"])
        .arg(&store)
        .arg(&copy)
        .status()
        .unwrap();
    for entry in std::fs::read_dir(&store).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            std::fs::write(entry.path(), vec![0x5Au8; 4096]).unwrap();
        }
    }
    let stderr = refused_start(&node);
    assert!(
        stderr.contains("config store") && stderr.contains("is damaged") && stderr.contains("join"),
        "{stderr}"
    );
    let dry = node.cli(&["repair", "--config"], "");
    assert!(
        dry.contains("is damaged") && dry.contains("would: move") && dry.contains("store.damaged-"),
        "{dry}"
    );
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::rename(&copy, &store).unwrap();

    // A partition's meta.json lost: the partition is set aside (moved, reported), the node
    // runs, and the segments are all still on disk.
    let partition = first_partition(&index);
    let segment_bytes = |dir: &std::path::Path| -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != "meta.json")
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    let before = segment_bytes(&partition);
    std::fs::remove_file(partition.join("meta.json")).unwrap();
    node.start();
    let (_, status) = node.get("/api/v1/status");
    let aside = status["index"]["set_aside"].as_array().unwrap();
    assert_eq!(aside.len(), 1, "{status}");
    assert!(
        aside[0].as_str().unwrap().contains("no meta.json"),
        "{status}"
    );
    let moved = std::fs::read_dir(index.join("aside"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    assert_eq!(segment_bytes(&moved), before, "set aside, not deleted");
    assert_eq!(
        node.count("damagetest"),
        0,
        "its lines are not searchable meanwhile"
    );
}

/// Fault review item 3, a damaged segment file: the node starts, says which partition is
/// damaged, and the rest answers.
#[test]
fn a_damaged_segment_file_is_reported_and_the_rest_answers() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "app.log", "raw"));
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("segmenttest", 0..200));
    node.wait_for_count("segmenttest", 200);
    node.stop();
    let index = node.data().join("index");
    let partition = first_partition(&index);
    for entry in std::fs::read_dir(&partition).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".store") || name.ends_with(".idx") || name.ends_with(".term") {
            let len = entry.metadata().unwrap().len() as usize;
            std::fs::write(entry.path(), vec![0x5Au8; len.max(16)]).unwrap();
        }
    }
    node.start();
    let (_, status) = node.get("/api/v1/status");
    let aside = status["index"]["set_aside"].as_array().unwrap();
    assert_eq!(aside.len(), 1, "{status}");
    assert!(
        aside[0].as_str().unwrap().contains("cannot be opened"),
        "{status}"
    );
    assert!(
        std::fs::read_dir(index.join("aside")).unwrap().count() == 1,
        "moved, not deleted"
    );
    // Searches answer, and new lines are indexed.
    let (code, body) = node.get("/api/v1/search?q=segmenttest");
    assert_eq!(code, 200, "{body}");
    append_lines(&path, numbered("segmentafter", 0..50));
    node.wait_for_count("segmentafter", 50);
    assert_eq!(node.get("/health").0, 200);
}
