//! Path traversal: runner configs that try to read outside the allowlist or files on the
//! built-in deny list are refused with a 400 naming the path, and symlinks that only lead
//! outside once the file exists are refused when the file is opened.

use std::os::unix::fs::symlink;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Node, append_lines, numbered};

/// POST a runner config; returns the status and the error message (empty if none).
fn submit(node: &Node, config: &Value) -> (u16, String) {
    let (status, body) = node.send("POST", "/api/v1/runners", &config.to_string());
    let message = body["error"]["message"].as_str().unwrap_or("").to_string();
    (status, message)
}

fn runner(name: &str, mode: &str, path: &str) -> Value {
    json!({"name": name, "reader": {"mode": mode, "log_path": path, "read_from": "oldest"}})
}

/// Replace the harness allowlist (the node's `logs/` folder) by `allowed` before start.
fn set_allowed_paths(node: &Node, allowed: &str) {
    let config = std::fs::read_to_string(node.config_path()).unwrap();
    let harness_line = format!("allowed_paths = [\"{}/**\"]", node.logs().display());
    assert!(config.contains(&harness_line), "{config}");
    std::fs::write(
        node.config_path(),
        config.replace(&harness_line, &format!("allowed_paths = {allowed}")),
    )
    .unwrap();
}

fn assert_all_refused(node: &Node, corpus: &[(&str, String)], must_contain: &str) {
    let mut failures = Vec::new();
    for (index, (mode, path)) in corpus.iter().enumerate() {
        let (status, message) = submit(node, &runner(&format!("evil{index}"), mode, path));
        // The message names the path exactly as given (Debug-quoted, so a NUL shows as \0).
        if status != 400
            || !message.contains(&format!("{path:?}"))
            || !message.contains(must_contain)
        {
            failures.push(format!("{mode} {path:?}: {status} {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile runner configs were not refused as expected:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    let (status, list) = node.get("/api/v1/runners");
    assert_eq!(status, 200);
    assert_eq!(list, json!([]), "a refused runner was stored");
}

#[test]
fn traversal_corpus_is_refused_with_400_naming_the_path() {
    let mut node = Node::new("", "");
    let logs = node.logs().display().to_string();
    symlink("/etc", node.logs().join("etc-link")).unwrap();
    symlink("/proc/self", node.logs().join("me")).unwrap();
    symlink("/", node.logs().join("slash")).unwrap();
    symlink("/etc/passwd", node.logs().join("passwd.log")).unwrap();
    symlink(node.root.path(), node.logs().join("up")).unwrap();
    node.start();

    let corpus: Vec<(&str, String)> = vec![
        // `..` and friends.
        ("file", format!("{logs}/../../../../../../etc/passwd")),
        ("file", format!("{logs}/./../../etc/shadow")),
        ("file", format!("{logs}/../node.toml")),
        ("tailx", format!("{logs}/../data/**")),
        ("dir", format!("{logs}/..")),
        ("tailx", format!("{logs}/../*")),
        ("tailx", format!("{logs}/../../*/passwd")),
        ("file", "//etc//passwd".to_string()),
        ("file", "/../etc/passwd".to_string()),
        // Absolute paths outside.
        ("file", "/etc/passwd".to_string()),
        ("dir", "/etc".to_string()),
        ("tailx", "/etc/*.conf".to_string()),
        ("tailx", "/**".to_string()),
        ("file", "/etc/%2e%2e/passwd".to_string()),
        // /proc and /dev.
        ("file", "/proc/self/root/etc/passwd".to_string()),
        ("file", "/proc/self/environ".to_string()),
        ("file", "/proc/1/cwd/etc/passwd".to_string()),
        ("file", "/dev/zero".to_string()),
        // Symlinks inside the allowed folder that lead outside.
        ("file", format!("{logs}/etc-link/passwd")),
        ("dir", format!("{logs}/etc-link")),
        ("tailx", format!("{logs}/etc-link/**")),
        ("tailx", format!("{logs}/etc-link/not-yet/*.log")),
        ("file", format!("{logs}/me/environ")),
        ("file", format!("{logs}/me/root/etc/passwd")),
        ("dir", format!("{logs}/me/cwd")),
        ("file", format!("{logs}/slash/etc/hostname")),
        ("file", format!("{logs}/passwd.log")),
        ("file", format!("{logs}/up/node.toml")),
        ("tailx", format!("{logs}/up/data/**")),
        // NUL, empty, relative, tilde.
        ("file", format!("{logs}/a\0/../../etc/passwd")),
        ("file", "/etc/passwd\0.log".to_string()),
        ("file", String::new()),
        ("file", "x.log".to_string()),
        ("tailx", "../../etc/*".to_string()),
        ("file", "~root/.ssh/id_rsa".to_string()),
    ];
    assert!(corpus.len() >= 30);
    assert_all_refused(&node, &corpus, "runner evil");

    // Percent-encoding is never decoded: `%2e%2e` is a literal folder name inside logs/, so this
    // runner stays inside the allowlist and is (correctly) accepted.
    let (status, message) = submit(
        &node,
        &runner(
            "literal",
            "file",
            &format!("{logs}/%2e%2e/%2e%2e/etc/passwd"),
        ),
    );
    assert_eq!(status, 201, "{message}");
    let (status, _) = node.send("DELETE", "/api/v1/runners/literal", "");
    assert_eq!(status, 204);

    // The node is still fine.
    let (status, _) = node.get("/api/v1/status");
    assert_eq!(status, 200);
}

#[test]
fn deny_list_holds_with_a_root_allowlist() {
    let mut node = Node::new("", "");
    set_allowed_paths(&node, "[\"/**\"]");
    let logs = node.logs().display().to_string();
    symlink("/proc/self", node.logs().join("me")).unwrap();
    symlink("/etc", node.logs().join("etc-link")).unwrap();
    node.start();

    let corpus: Vec<(&str, String)> = vec![
        ("file", "/etc/shadow".to_string()),
        ("file", "/etc/gshadow-".to_string()),
        ("file", "/etc/sudoers".to_string()),
        ("dir", "/etc/sudoers.d".to_string()),
        ("file", "/proc/self/environ".to_string()),
        ("tailx", "/proc/*/environ".to_string()),
        ("file", "/sys/kernel/notes".to_string()),
        ("tailx", "/sys/**".to_string()),
        ("file", "/dev/zero".to_string()),
        ("file", "/etc/ssl/private/x.key".to_string()),
        ("tailx", "/etc/ssl/private/*.key".to_string()),
        ("file", "/root/.ssh/id_rsa".to_string()),
        ("tailx", "/home/*/.ssh/*".to_string()),
        ("file", "/var/log/../../etc/shadow".to_string()),
        ("file", "//etc//shadow".to_string()),
        ("file", format!("{logs}/server.pem")),
        ("tailx", format!("{logs}/**/*.key")),
        ("file", format!("{logs}/me/environ")),
        ("file", format!("{logs}/etc-link/shadow")),
    ];
    assert_all_refused(&node, &corpus, "built-in deny list");

    // With this allowlist /etc/passwd is readable (the operator asked for everything).
    let (status, message) = submit(&node, &runner("passwd", "file", "/etc/passwd"));
    assert_eq!(status, 201, "{message}");
    let (status, _) = node.send("DELETE", "/api/v1/runners/passwd", "");
    assert_eq!(status, 204);

    // Open time: a file whose canonical path is denied is refused when it appears, even though
    // the runner (a plain path inside logs/) was accepted.
    let secret = node.logs().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    append_lines(&secret.join("server.key"), numbered("denykeytoken", 0..3));
    let (status, message) = submit(&node, &runner("keylink", "file", &format!("{logs}/k.log")));
    assert_eq!(status, 201, "{message}");
    let (status, message) = submit(&node, &runner("envlink", "file", &format!("{logs}/e.log")));
    assert_eq!(status, 201, "{message}");
    symlink(secret.join("server.key"), node.logs().join("k.log")).unwrap();
    symlink("/proc/self/environ", node.logs().join("e.log")).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(node.count("denykeytoken"), 0);
    assert_eq!(node.count("runner:envlink"), 0);
    // The runner config is applied asynchronously: if that happened after the link appeared,
    // the config-time check refuses the runner (`state: refused`, `error`), otherwise the file
    // is refused when opened (`problems`). Either way the deny list is named.
    for name in ["keylink", "envlink"] {
        let status = node.runner_status(name);
        let refusal = if status["state"] == "refused" {
            status["error"].to_string()
        } else {
            status["problems"].to_string()
        };
        assert!(refusal.contains("built-in deny list"), "{name}: {status}");
    }
    let (status, _) = node.get("/api/v1/status");
    assert_eq!(status, 200);
}

#[test]
fn symlink_escape_is_refused_when_the_file_is_opened() {
    let mut node = Node::new("", "");
    node.start();
    let logs = node.logs().display().to_string();
    // A glob over the allowed folder, and a plain path that does not exist yet: both accepted.
    node.add_runner(&node.runner_json("globescape", "*.log", "raw"));
    let (status, message) = submit(
        &node,
        &runner("fileescape", "file", &format!("{logs}/later.log")),
    );
    assert_eq!(status, 201, "{message}");

    append_lines(&node.logs().join("ok.log"), numbered("escapeok", 0..5));
    node.wait_for_count("escapeok", 5);

    // Now the escapes appear.
    symlink("/etc/passwd", node.logs().join("evil.log")).unwrap();
    symlink("/etc/passwd", node.logs().join("later.log")).unwrap();
    append_lines(&node.logs().join("ok.log"), numbered("escapeok", 5..10));
    node.wait_for_count("escapeok", 10);
    std::thread::sleep(Duration::from_secs(2));

    // Nothing of /etc/passwd was indexed (it has a `root` entry on every Linux).
    assert_eq!(
        node.count("root AND (runner:globescape OR runner:fileescape)"),
        0
    );
    assert_eq!(node.count("runner:fileescape"), 0);
    assert_eq!(node.count("runner:globescape"), 10);

    // The plain-path runner reaches the open-time check and says why (or, if its config was
    // applied only after the link appeared, the config-time check refused it).
    let status = node.runner_status("fileescape");
    let refusal = if status["state"] == "refused" {
        status["error"].to_string()
    } else {
        status["problems"].to_string()
    };
    assert!(
        refusal.contains("/etc/passwd")
            || (status["state"] == "refused" && refusal.contains("later.log")),
        "{status}"
    );
    assert!(
        refusal.contains("outside this node's collect.allowed_paths"),
        "{status}"
    );
    // The glob runner does not follow symlinked files at all (walked without following links),
    // so it never opens evil.log.
    let status = node.runner_status("globescape");
    assert!(
        !status["files"].to_string().contains("evil.log"),
        "{status}"
    );
}
