//! Clear errors for bad config, bad runners and bad queries; runner changes without restart.

use std::process::Command;
use std::time::Duration;

use crate::harness::{BIN, Node, append_lines, assert_exactly_once, numbered};

fn config_check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(BIN)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn config_check_names_file_key_and_reason() {
    let (ok, out) = config_check("[queue]\nmax_bytes = \"lots\"\n");
    assert!(!ok);
    assert!(
        out.contains("node.toml: queue.max_bytes") && out.contains("not a size"),
        "{out}"
    );

    let (ok, out) =
        config_check("listen = \"127.0.0.1:7700\"\n[collect]\nallowed_path = [\"/var/log/**\"]\n");
    assert!(!ok);
    assert!(
        out.contains("node.toml") && out.contains("unknown field `allowed_path`"),
        "{out}"
    );

    let (ok, out) = config_check("[index]\nretention_days = -3\n");
    assert!(!ok);
    assert!(out.contains("retention_days"), "{out}");

    let (ok, out) = config_check("[index]\nretention_days = 30\n");
    assert!(ok, "{out}");
    assert!(
        out.contains("retention_days = 30") && out.contains("data_dir = \"./lograft-data\""),
        "{out}"
    );
}

#[test]
fn serve_refuses_a_bad_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"nowhere\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("bad.toml: listen") && err.contains("not an address"),
        "{err}"
    );
}

#[test]
fn runner_outside_the_allowlist_and_bad_queries_get_clear_400s() {
    let mut node = Node::new("", "");
    node.start();
    let (status, body) = node.send(
        "POST",
        "/api/v1/runners",
        r#"{"name":"sneaky","reader":{"mode":"file","log_path":"/etc/passwd"}}"#,
    );
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("/etc/passwd")
            && message.contains("outside this node's collect.allowed_paths"),
        "{message}"
    );

    // A symlink inside the allowed folder pointing outside is refused when the file is opened.
    std::os::unix::fs::symlink("/etc", node.logs().join("etc-link")).unwrap();
    let (status, body) = node.send(
        "POST",
        "/api/v1/runners",
        &serde_json::json!({"name":"link","reader":{"mode":"file","log_path": node.logs().join("etc-link/passwd")}}).to_string(),
    );
    assert_eq!(status, 400, "{body}");

    let (status, body) = node.send(
        "POST",
        "/api/v1/runners",
        r#"{"name":"x","reader":{"mode":"socket","log_path":"/x"}}"#,
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown variant `socket`"),
        "{body}"
    );

    let (status, body) = node.get("/api/v1/search?q=level:(error");
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid query"),
        "{body}"
    );
    let (status, body) = node.get("/api/v1/search?q=x&from=yesterday");
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid from \"yesterday\""),
        "{body}"
    );
    let (status, body) = node.get("/api/v1/search?limit=lots");
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("limit"),
        "{body}"
    );
    let (status, body) = node.get("/api/v1/search?cursor=abc");
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cursor"),
        "{body}"
    );
    let (status, _) = node.get("/api/v1/runners/nope");
    assert_eq!(status, 404);
}

#[test]
fn runner_config_change_is_picked_up_without_restart() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "first.log", "raw"));
    append_lines(
        &node.logs().join("first.log"),
        numbered("reloadfirst", 0..100),
    );
    node.wait_for_count("reloadfirst", 100);

    // Point the runner at another file and switch its parser to JSON.
    let (status, body) = node.send(
        "PUT",
        "/api/v1/runners/app",
        &node.runner_json("app", "second.log", "json"),
    );
    assert_eq!(status, 200, "{body}");
    let lines: Vec<String> = (0..50)
        .map(|i| {
            serde_json::json!({"msg": format!("reloadsecond n{i}"), "level": "WARN", "order": i})
                .to_string()
        })
        .collect();
    append_lines(&node.logs().join("second.log"), lines);
    node.wait_for_count("reloadsecond", 50);
    assert_eq!(
        node.count("reloadsecond AND level:warn AND fields.order:7"),
        1
    );
    // The old file is no longer followed (after its unread tail was drained and it was closed,
    // which takes partial_line_timeout = 1s of idleness).
    std::thread::sleep(Duration::from_millis(2500));
    append_lines(
        &node.logs().join("first.log"),
        numbered("reloadfirst", 100..110),
    );
    std::thread::sleep(Duration::from_millis(2000));
    assert_exactly_once(
        &node.search_all("reloadfirst"),
        &numbered("reloadfirst", 0..100),
    );

    // Deleting the runner stops it.
    let (status, _) = node.send("DELETE", "/api/v1/runners/app", "");
    assert_eq!(status, 204);
    let (_, list) = node.get("/api/v1/runners");
    assert_eq!(list.as_array().unwrap().len(), 0);
}

/// A backend this build lacks is refused at `config check` and at start, with the rebuild
/// command; an unknown backend names the choices. (CI also builds with every feature.)
#[test]
fn a_backend_this_build_lacks_is_refused_with_the_rebuild_command() {
    for (section, backend, feature) in [
        ("queue", "kafka", "kafka"),
        ("index", "elasticsearch", "elasticsearch"),
        ("cluster", "etcd", "etcd"),
    ] {
        let text = format!("[{section}]\nbackend = \"{backend}\"\n");
        let (ok, out) = config_check(&text);
        assert!(!ok, "{out}");
        let built = match feature {
            "kafka" => cfg!(feature = "kafka"),
            "elasticsearch" => cfg!(feature = "elasticsearch"),
            _ => cfg!(feature = "etcd"),
        };
        let expected = if built {
            format!(
                "this lograft was built with the {feature} feature, but its adapter is not written yet"
            )
        } else {
            format!(
                "this lograft was built without the {feature} feature: rebuild with --features {feature}"
            )
        };
        assert!(
            out.contains(&format!("node.toml: {section}.backend: {expected}")),
            "{out}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, &text).unwrap();
        let output = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&expected), "{stderr}");
    }
    let (ok, out) = config_check("[queue]\nbackend = \"rabbitmq\"\n");
    assert!(!ok);
    assert!(
        out.contains("queue.backend: \"rabbitmq\" is not one of \"embedded\", \"kafka\""),
        "{out}"
    );
    let (ok, out) = config_check(
        "[queue]\nbackend = \"embedded\"\n[index]\nbackend = \"embedded\"\n[cluster]\nbackend = \"embedded\"\n",
    );
    assert!(ok, "{out}");
}
