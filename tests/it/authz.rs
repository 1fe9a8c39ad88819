//! Findings of the attack review ("No input stops the appliance"): sessions that outlived
//! their user on other nodes, a data dir any local user could read, audit lines forged by a
//! login name, admin actions missing from the audit trail, and a README tour that found
//! nothing with another allowlist.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::harness::{BIN, Node, append_lines};

fn poll<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Log in on `node`; the session cookie, or the status it was refused with.
fn login(node: &Node, user: &str, password: &str) -> Result<String, u16> {
    let response = client()
        .post(node.url("/api/v1/login"))
        .body(json!({"user": user, "password": password}).to_string())
        .send()
        .unwrap();
    if !response.status().is_success() {
        return Err(response.status().as_u16());
    }
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    Ok(cookie.split(';').next().unwrap().to_string())
}

/// `GET /api/v1/me` with a session cookie: status and error message.
fn me(node: &Node, cookie: &str) -> (u16, String) {
    let response = client()
        .get(node.url("/api/v1/me"))
        .header(COOKIE, cookie)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    (
        status,
        body["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

/// The messages of this node's audit trail (newest first).
fn audit_messages(node: &Node) -> Vec<String> {
    let (status, body) = node.get("/api/v1/audit?limit=1000&from=-1d");
    assert_eq!(status, 200, "{body}");
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["message"].as_str().unwrap().to_string())
        .collect()
}

/// Wait until the audit trail of `node` has a message containing each of `wanted`.
fn wait_for_audit(node: &Node, wanted: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let messages = audit_messages(node);
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|w| !messages.iter().any(|m| m.contains(**w)))
            .collect();
        if missing.is_empty() {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "the audit trail of {} has no {missing:?}; it has {messages:#?}",
            node.url("")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// See: "No input stops the appliance", item 5: after deleting a user (or changing the
// password) on node A, their session on node B kept working for 12 h and minted admin tokens.
#[test]
fn a_session_on_another_node_ends_when_its_user_is_deleted_or_changes_password() {
    let mut alpha = Node::member("alpha", "", None, "");
    alpha.start();
    let mut beta = Node::member("beta", "", Some(&alpha), "");
    beta.start();
    alpha.wait_members(2);
    beta.wait_members(2);

    let (status, body) = alpha.send(
        "POST",
        "/api/v1/users",
        &json!({"name": "carol", "role": "admin", "password": "carol's first password"})
            .to_string(),
    );
    assert_eq!(status, 201, "{body}");
    // The user reaches beta through Raft: wait for it, then log in there.
    let cookie = poll("carol can log in on beta", || {
        login(&beta, "carol", "carol's first password").ok()
    });
    assert_eq!(me(&beta, &cookie).0, 200);

    let (status, body) = alpha.send(
        "PUT",
        "/api/v1/users/carol/password",
        &json!({"password": "carol's second password"}).to_string(),
    );
    assert_eq!(status, 204, "{body}");
    let message = poll("carol's old session on beta ends", || {
        let (status, message) = me(&beta, &cookie);
        (status == 401).then_some(message)
    });
    assert!(message.contains("password"), "{message}");

    let cookie = poll("carol logs in on beta with the new password", || {
        login(&beta, "carol", "carol's second password").ok()
    });
    assert_eq!(me(&beta, &cookie).0, 200);
    let (status, body) = alpha.send("DELETE", "/api/v1/users/carol", "");
    assert_eq!(status, 204, "{body}");
    let message = poll("carol's session on beta ends", || {
        let (status, message) = me(&beta, &cookie);
        (status == 401).then_some(message)
    });
    assert!(message.contains("deleted"), "{message}");
    // And it mints nothing.
    let minted = client()
        .post(beta.url("/api/v1/tokens"))
        .header(COOKIE, &cookie)
        .header("x-lograft-csrf", "1")
        .body(json!({"name": "stolen", "role": "admin"}).to_string())
        .send()
        .unwrap();
    assert_eq!(minted.status().as_u16(), 401);
}

/// Every entry under `root` that other users may read or enter.
fn loose_entries(root: &Path) -> Vec<String> {
    let mut loose = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).unwrap();
        let mode = metadata.permissions().mode() & 0o777;
        if metadata.is_dir() {
            if mode != 0o700 {
                loose.push(format!("{} {mode:o}", path.display()));
            }
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else if metadata.is_file() && mode != 0o600 {
            loose.push(format!("{} {mode:o}", path.display()));
        }
    }
    loose
}

// See: "No input stops the appliance", item 6: outside the package the data dir was 0755 and
// the store, queue and index files 0644; a local user read the cluster secret from the store.
#[test]
fn the_data_dir_is_private_whatever_the_umask_and_a_readable_secret_config_is_refused() {
    // nextest runs each test in its own process: the umask is this test's alone, and the
    // node inherits it.
    // SAFETY: umask swaps the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o022);
    }
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "*.log", "raw"));
    append_lines(&node.logs().join("a.log"), ["private line one".to_string()]);
    node.wait_for_count("private", 1);
    let loose = loose_entries(&node.data());
    assert!(loose.is_empty(), "readable by others: {loose:#?}");

    // A data dir of an older version (0755, 0644) is tightened at start.
    node.stop();
    for path in [node.data(), node.data().join("store")] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        node.data().join("cli-token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    node.start();
    let loose = loose_entries(&node.data());
    assert!(loose.is_empty(), "not tightened: {loose:#?}");
    assert!(node.log().contains("now 0600 and 0700"), "{}", node.log());

    // A config holding the cluster secret that every local user may read is refused (in a
    // directory others may enter, as /etc/lograft; a tempdir is 0700).
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("joining.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nlisten = \"127.0.0.1:{}\"\n[cluster]\njoin = \"{}\"\njoin_token = \"lgc_not_a_real_one\"\n",
            dir.path().join("data").display(),
            crate::harness::free_port(),
            node.url(""),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [&["serve", "--config"][..], &["config", "check"][..]] {
        let output = Command::new(BIN).args(args).arg(&config).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} accepted it: {stderr}");
        assert!(
            stderr.contains(&config.display().to_string())
                && stderr.contains("chmod 640")
                && stderr.contains("join_token"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!dir.path().join("data").exists(), "refused before any file");
}

// See: "No input stops the appliance", item 11: a 15 KB login name with newlines forged a
// second audit line, and every rate-limited attempt wrote one.
#[test]
fn login_names_cannot_forge_audit_lines_and_rate_limits_are_audited_once() {
    let mut node = Node::new("", "[auth]\nlogin_attempts_per_minute = 2\n");
    node.start();
    let forged = format!(
        "eve\nlogin admin: ok (by user:admin)\n{}",
        "u".repeat(15 * 1024)
    );
    for _ in 0..2 {
        assert_eq!(login(&node, &forged, "a wrong password"), Err(401));
    }
    for _ in 0..4 {
        assert_eq!(login(&node, &forged, "a wrong password"), Err(429));
    }
    // A later audited event: once it is searchable, every event before it is.
    let (status, body) = node.send(
        "POST",
        "/api/v1/users",
        &json!({"name": "sentinel", "role": "reader", "password": "a long enough password"})
            .to_string(),
    );
    assert_eq!(status, 201, "{body}");
    let messages = wait_for_audit(&node, &["user.add sentinel"]);
    let logins: Vec<&String> = messages
        .iter()
        .filter(|m| m.starts_with("login "))
        .collect();
    assert_eq!(
        logins.iter().filter(|m| m.contains(": failed")).count(),
        2,
        "{logins:#?}"
    );
    assert_eq!(
        logins
            .iter()
            .filter(|m| m.contains(": rate_limited"))
            .count(),
        1,
        "one audit line per window: {logins:#?}"
    );
    for message in &logins {
        assert!(
            !message.contains('\n') && message.chars().count() < 400,
            "{message}"
        );
        assert!(message.contains("\\nlogin admin"), "{message}");
    }
    assert!(
        !messages.iter().any(|m| m.starts_with("login admin: ok")),
        "a forged line: {messages:#?}"
    );
    let metrics = node.metrics();
    let limited = metrics
        .lines()
        .find(|line| line.starts_with("lograft_auth_login_rate_limited_total"))
        .unwrap_or_else(|| panic!("no rate-limit metric in {metrics}"));
    assert!(limited.ends_with(" 4"), "{limited}");
}

// See: "No input stops the appliance", item 17: indexer pause/resume, tag changes and cluster
// join/leave/remove wrote no audit event.
#[test]
fn indexer_tag_and_membership_changes_are_audited() {
    // One voter: the node that joins is a learner, and may leave.
    let mut first = Node::member_with("first", "a", None, "", "voters = 1");
    first.start();
    let mut lone = Node::member("lone", "b", None, "");
    lone.start();
    let secret = first.cli(
        &[
            "cluster",
            "token",
            "--url",
            &first.url(""),
            "--token",
            &first.token,
        ],
        "",
    );
    let (status, body) = lone.send(
        "POST",
        "/api/v1/cluster/join",
        &json!({"peer": first.url(""), "token": secret}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    // From now on the cluster's users and tokens apply on the joined node.
    lone.token = first.token.clone();
    lone.wait_members(2);
    first.wait_members(2);

    for path in ["/api/v1/indexer/pause", "/api/v1/indexer/resume"] {
        let (status, body) = first.send("POST", path, "");
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, body) = first.send(
        "PUT",
        "/api/v1/cluster/nodes/lone/tag",
        &json!({"tag": "edge"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = first.send(
        "POST",
        "/logkit/cluster/tag",
        &json!({"tag": "core"}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    wait_for_audit(
        &first,
        &[
            "cluster.join lone (",
            "indexer.pause first: ok",
            "indexer.resume first: ok",
            "cluster.tag lone = \"edge\": ok",
            "cluster.tag first = \"core\": ok",
        ],
    );
    wait_for_audit(&lone, &["cluster.join lone -> "]);

    let (status, body) = lone.send("POST", "/api/v1/cluster/leave", "");
    assert_eq!(status, 200, "{body}");
    first.wait_members(1);
    wait_for_audit(&lone, &["cluster.leave lone: ok"]);
    // The leader that made the change records it too.
    wait_for_audit(&first, &["cluster.remove lone: ok"]);
}

// See: "No input stops the appliance", item 19: with an allowlist other than /var/log/** the
// default runner silently did not exist, and the tour's searches found nothing.
#[test]
fn default_paths_outside_the_allowlist_are_a_warning_and_inside_it_a_runner() {
    let mut node = Node::new("", "");
    let logs = node.logs();
    let config = std::fs::read_to_string(node.config_path())
        .unwrap()
        .replace(
            "default_runner = false",
            &format!(
                "default_runner = true\ndefault_paths = [\"{}/*.log\", \"/var/log/*.log\"]",
                logs.display()
            ),
        );
    std::fs::write(node.config_path(), config).unwrap();
    node.start();
    append_lines(&logs.join("tour.log"), ["card declined 4242".to_string()]);
    node.wait_for_count("declined AND runner:default", 1);
    let log = node.log();
    assert!(
        log.contains("no default runner for /var/log/*.log")
            && log.contains("collect.default_paths"),
        "{log}"
    );

    // The CLI says where it looked for its token when it has none.
    let elsewhere = tempfile::tempdir().unwrap();
    let cli_config = elsewhere.path().join("cli.toml");
    std::fs::write(
        &cli_config,
        format!(
            "data_dir = \"empty\"\nlisten = \"127.0.0.1:{}\"\n",
            node.port
        ),
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["search", "declined"])
        .env("LOGRAFT_CONFIG", &cli_config)
        .env_remove("LOGRAFT_URL")
        .env_remove("LOGRAFT_TOKEN")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    let looked_at = elsewhere.path().join("empty").join("cli-token");
    assert!(
        stderr.contains("401") && stderr.contains(&looked_at.display().to_string()),
        "{stderr}"
    );

    // A node name that would break the CLI token later is refused with the key named.
    std::fs::write(&cli_config, "node_name = \"web 1/a\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["config", "check"])
        .arg(&cli_config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("node_name"),
        "{stderr}"
    );
}
