//! A full disk, for real: the node's data dir is a small tmpfs mounted in a mount namespace of
//! its own (`unshare -Urm`, rootless), with a ballast file that the test deletes to give the
//! space back. See: fault review (issue 13) item 2 ("ENOSPC wedges the node until restart").

use std::time::{Duration, Instant};

use crate::harness::{Node, append_lines, assert_exactly_once, numbered};

/// Whether this machine can mount a tmpfs in a user and mount namespace. Under `CI=true` it
/// must: a skip there is a failure.
fn namespaces_work() -> bool {
    let works = std::process::Command::new("unshare")
        .args(["-Urm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"])
        .status()
        .is_ok_and(|status| status.success());
    if !works {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "unshare -Urm with a tmpfs mount does not work here, and CI=true: the disk-full test must run"
        );
        eprintln!("skipping: unshare -Urm cannot mount a tmpfs on this machine");
    }
    works
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// JSON lines dated yesterday and today (two day partitions), `tag` and numbered.
fn dated_lines(tag: &str, range: std::ops::Range<usize>) -> (String, Vec<String>) {
    let now = chrono::Utc::now();
    let mut body = String::new();
    let mut messages = Vec::new();
    for i in range {
        let day = if i % 2 == 0 {
            now - chrono::Duration::days(1)
        } else {
            now
        };
        // Padding that compresses poorly, so the disk fills in a few thousand lines.
        let pad: String = (0..300)
            .map(|k| char::from(b'a' + ((i * 7919 + k * 104_729) % 26) as u8))
            .collect();
        let message = format!("{tag} n{i} {pad}");
        body.push_str(&format!(
            "{{\"time\":\"{}\",\"msg\":\"{message}\"}}\n",
            day.to_rfc3339()
        ));
        messages.push(message);
    }
    (body, messages)
}

/// Start the node with its two runners: `web` (HTTP, JSON with a time) and `app` (a file).
fn start_with_runners(node: &mut Node) {
    node.start();
    node.add_runner(
        &serde_json::json!({"name": "web", "reader": {"mode": "http"},
            "parser": {"type": "json", "timestamp_key": "time"}})
        .to_string(),
    );
    node.add_runner(&node.runner_json("app", "app.log", "raw"));
}

/// Send dated lines tagged `tag` to the `web` HTTP runner, 500 a request, until one is
/// refused: the lines accepted, the next line number, and the refusal (status, answer).
fn fill_until_refused(node: &Node, tag: &str) -> (Vec<String>, usize, (u16, serde_json::Value)) {
    let mut accepted = Vec::new();
    let mut next = 0;
    loop {
        let (body, messages) = dated_lines(tag, next..next + 500);
        next += 500;
        let response = node
            .request(reqwest::Method::POST, "/api/v1/ingest/web")
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().unwrap_or_default();
        if status != 200 {
            return (accepted, next, (status, answer));
        }
        accepted.extend(messages);
        assert!(next < 400_000, "the disk never filled");
    }
}

/// A node whose data dir is a 64 MiB tmpfs in a mount namespace of its own, with a ballast
/// file of `ballast_mib` (the test deletes it to give space back).
fn node_on_a_small_disk(min_free_bytes: &str, ballast_mib: u32) -> Node {
    let mut node = Node::new(
        "",
        &format!(
            "[queue]\nmin_free_bytes = \"{min_free_bytes}\"\n[index]\ncommit_interval = \"200ms\"\nretention_days = 0\n"
        ),
    );
    let data = node.data();
    let stage = node.root.path().join("stage");
    // The data dir as the offline commands left it is copied onto the tmpfs.
    let script = format!(
        "set -e; mkdir -p '{data}' '{stage}'; cp -a '{data}/.' '{stage}/'; \
         mount -t tmpfs -o size=64m tmpfs '{data}'; cp -a '{stage}/.' '{data}/'; \
         fallocate -l {ballast_mib}m '{data}/ballast' || dd if=/dev/zero of='{data}/ballast' bs=1M count={ballast_mib} status=none; \
         exec \"$@\"",
        data = data.display(),
        stage = stage.display(),
    );
    node.wrapper = vec![
        "unshare".into(),
        "-Urm".into(),
        "sh".into(),
        "-c".into(),
        script,
        "lograft".into(),
    ];
    node
}

/// The disk fills while lines come in over HTTP and from a file, across two UTC days: intake
/// stops with a clear status (429 naming the disk, the runner `blocked: disk full`, `/health`
/// degraded), nothing accepted is lost, and when space returns everything goes on by itself,
/// with no restart: every line exactly once at the end.
#[test]
fn a_full_disk_is_backpressure_and_the_node_resumes_when_space_returns() {
    if !namespaces_work() {
        return;
    }
    // The ballast leaves a few MiB above the reserve.
    let mut node = node_on_a_small_disk("24MiB", 34);
    let data = node.data();
    start_with_runners(&mut node);
    let (status, health) = node.get("/health");
    assert_eq!(status, 200, "{health}");

    // Fill the disk through the HTTP input until it refuses.
    let (mut accepted, next, (status, refusal)) = fill_until_refused(&node, "diskfull");
    assert_eq!(status, 429, "{refusal}");
    let reason = refusal["error"]["message"].as_str().unwrap().to_string();
    assert!(reason.contains("disk full on"), "{reason}");
    assert!(reason.contains("min_free_bytes"), "{reason}");

    // Meanwhile: /health is degraded, the status says why, a file runner waits.
    let (status, health) = node.get("/health");
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded");
    assert!(
        health["problems"][0]
            .as_str()
            .unwrap()
            .contains("disk full"),
        "{health}"
    );
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("diskfile", 0..2000));
    wait_until("the file runner to wait for the disk", || {
        let status = node.runner_status("app");
        status["state"] == "blocked"
            && status["error"]
                .as_str()
                .is_some_and(|e| e.contains("disk full"))
    });
    let (_, status) = node.get("/api/v1/status");
    assert!(status["disk_full"].as_str().is_some(), "{status}");
    // Searches still answer.
    let (code, _) = node.get("/api/v1/search?q=diskfull&limit=1");
    assert_eq!(code, 200);

    // Space returns (the ballast goes, seen through the node's own mount namespace).
    let ballast = format!("/proc/{}/root{}/ballast", node.pid(), data.display());
    std::fs::remove_file(&ballast).unwrap();
    wait_until("/health to be ok again", || node.get("/health").0 == 200);
    let (body, messages) = dated_lines("diskfull", next..next + 1000);
    let (code, answer) = node.send("POST", "/api/v1/ingest/web", &body);
    assert_eq!(code, 200, "{answer}");
    accepted.extend(messages);
    append_lines(&path, numbered("diskfile", 2000..2500));

    node.wait_for_count("diskfull", accepted.len() as u64);
    node.wait_for_count("diskfile", 2500);
    assert_exactly_once(&node.search_all("diskfull"), &accepted);
    assert_exactly_once(&node.search_all("diskfile"), &numbered("diskfile", 0..2500));
    let (_, status) = node.get("/api/v1/status");
    assert!(status["disk_full"].is_null(), "{status}");
    assert!(status["indexer"]["last_error"].is_null(), "{status}");
    assert_eq!(
        status["index"]["partitions"].as_array().unwrap().len(),
        2,
        "{status}"
    );
}

/// The disk fills with no reserve to see it coming (`min_free_bytes = 0`, as when another
/// process fills the disk between two looks): sled and tantivy hit ENOSPC for real. Intake
/// fails with a clear error, and when space returns the node opens its queue again in place
/// and goes on by itself: every line accepted, from HTTP and from the file, exactly once, with
/// no restart. See: fault review item 2 ("the error stuck ... until restart").
#[test]
fn enospc_without_a_reserve_heals_in_place_when_space_returns() {
    if !namespaces_work() {
        return;
    }
    // A few MiB free, and nothing watching them.
    let mut node = node_on_a_small_disk("0", 54);
    let data = node.data();
    start_with_runners(&mut node);
    let path = node.logs().join("app.log");
    append_lines(&path, numbered("enospcfile", 0..1000));

    let (mut accepted, next, refusal) = fill_until_refused(&node, "enospc");
    assert!(
        refusal.0 == 429 || refusal.0 == 503,
        "a full disk is a retryable refusal: {refusal:?}"
    );
    assert!(
        refusal.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("No space left") || m.contains("disk")),
        "{refusal:?}"
    );
    // Meanwhile /health says what is wrong.
    let (status, health) = node.get("/health");
    assert_eq!(status, 503, "{health}");
    assert!(
        health["problems"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p.as_str().unwrap().contains("storage failed"))),
        "{health}"
    );
    append_lines(&path, numbered("enospcfile", 1000..2000));
    // The last bytes go too (a filler grows until ENOSPC). A config write then is either
    // acknowledged (sled writes into log segments it already holds) or refused as
    // unavailable, never half-applied; the config store takes writes once space returns.
    let filler = format!("/proc/{}/root{}/filler", node.pid(), data.display());
    {
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while std::io::Write::write_all(&mut file, &block).is_ok() {}
    }
    let runner = |name: &str| {
        serde_json::json!({"name": name, "reader": {"mode": "http"}, "parser": {"type": "raw"}})
            .to_string()
    };
    let (during, answer) = node.send("POST", "/api/v1/runners", &runner("during"));
    assert!(during == 201 || during == 503, "{during} {answer}");
    std::fs::remove_file(&filler).unwrap();

    let ballast = format!("/proc/{}/root{}/ballast", node.pid(), data.display());
    std::fs::remove_file(&ballast).unwrap();
    // Intake works again by itself: a retry of a refused request is accepted.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (body, _) = dated_lines("probe", 0..1);
        let (code, answer) = node.send("POST", "/api/v1/ingest/web", &body);
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the HTTP input did not take lines again ({code} {answer}); log:\n{}",
            crate::harness::tail(&node.log(), 60)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (body, messages) = dated_lines("enospc", next..next + 500);
    let (code, answer) = node.send("POST", "/api/v1/ingest/web", &body);
    assert_eq!(code, 200, "{answer}");
    accepted.extend(messages);
    append_lines(&path, numbered("enospcfile", 2000..2500));
    // The config store takes writes again.
    let (code, answer) = node.send("POST", "/api/v1/runners", &runner("after"));
    assert_eq!(
        code,
        201,
        "{answer}; log:\n{}",
        crate::harness::tail(&node.log(), 40)
    );
    if during == 201 {
        assert_eq!(node.get("/api/v1/runners/during").0, 200);
    }

    node.wait_for_count("enospc", accepted.len() as u64);
    node.wait_for_count("enospcfile", 2500);
    assert_exactly_once(&node.search_all("enospc"), &accepted);
    assert_exactly_once(
        &node.search_all("enospcfile"),
        &numbered("enospcfile", 0..2500),
    );
    wait_until("the indexer's error to clear", || {
        node.get("/api/v1/status").1["indexer"]["last_error"].is_null()
    });
    assert!(
        node.metrics()
            .contains("lograft_queue_reopens_total{outcome=\"reopened\"}"),
        "the queue was opened again in place"
    );
}
