//! Authentication and authorization: every route refuses anonymous and too-weak callers,
//! logins are rate-limited, sessions expire, revoked tokens stop at once, secrets stay secret.
//! See: issue 5.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{COOKIE, SET_COOKIE};

use crate::harness::Node;

/// A request path for a route pattern (`{name}` filled in).
fn concrete_path(path: &str) -> String {
    path.replace("{name}", "nobody").replace("{id}", "00000000")
}

#[test]
fn every_route_refuses_anonymous_and_too_weak_callers() {
    let mut node = Node::new("", "");
    node.start();
    let reader = node.cli(
        &[
            "token",
            "create",
            "--name",
            "r",
            "--role",
            "reader",
            "--url",
            &node.url(""),
            "--token",
            &node.token,
        ],
        "",
    );
    let operator = node.cli(
        &[
            "token",
            "create",
            "--name",
            "o",
            "--role",
            "operator",
            "--url",
            &node.url(""),
            "--token",
            &node.token,
        ],
        "",
    );
    // A join token, as `lograft cluster token` prints it: not the secret, and it opens only
    // the exchange (checked below for every route).
    let join_token = node.cli(
        &[
            "cluster",
            "token",
            "--url",
            &node.url(""),
            "--token",
            &node.token,
        ],
        "",
    );
    assert!(join_token.starts_with("lgj_"), "{join_token}");
    let secret = node.cluster_secret();
    assert!(secret.starts_with("lgc_"), "{secret}");
    let table = lograft::api::route_table();
    assert!(table.len() >= 20, "the table lists every route");
    for (spec, _) in table {
        let path = concrete_path(spec.path);
        let method = Method::from_bytes(spec.method.as_str().as_bytes()).unwrap();
        if spec.access == lograft::api::Access::JoinToken {
            for (header, value) in [
                ("x-lograft-join-token", ""),
                (lograft::api::CLUSTER_SECRET_HEADER, secret.as_str()),
                ("authorization", &format!("Bearer {}", node.token)),
            ] {
                let refused = node
                    .anonymous(method.clone(), &path)
                    .header(header, value)
                    .json(&serde_json::json!({}))
                    .send()
                    .unwrap();
                assert_eq!(
                    refused.status().as_u16(),
                    401,
                    "{method} {path} with {header}"
                );
            }
            continue;
        }
        if spec.access == lograft::api::Access::Cluster {
            let with_join_token = node
                .anonymous(method.clone(), &path)
                .header("x-lograft-join-token", &join_token)
                .header(lograft::api::CLUSTER_SECRET_HEADER, &join_token)
                .send()
                .unwrap();
            assert_eq!(
                with_join_token.status().as_u16(),
                401,
                "{method} {path}: a join token is not the cluster secret"
            );
            let anonymous = node.anonymous(method.clone(), &path).send().unwrap();
            assert_eq!(
                anonymous.status().as_u16(),
                401,
                "{method} {path} without the cluster secret"
            );
            let admin = node
                .anonymous(method.clone(), &path)
                .bearer_auth(&node.token)
                .send()
                .unwrap();
            assert_eq!(
                admin.status().as_u16(),
                401,
                "{method} {path}: an admin token is not the cluster secret"
            );
            let with_secret = node
                .anonymous(method.clone(), &path)
                .header(lograft::api::CLUSTER_SECRET_HEADER, &secret)
                .send()
                .unwrap();
            // Past the door (a call without its parameters or body is refused as such).
            let status = with_secret.status().as_u16();
            assert!(
                status != 401 && status != 403 && status < 500,
                "{method} {path} with the cluster secret: {status}"
            );
            continue;
        }
        let required = spec.access.required(false);
        let anonymous = node
            .anonymous(method.clone(), &path)
            .body("{}")
            .send()
            .unwrap();
        match required {
            None => assert_ne!(
                anonymous.status().as_u16(),
                401,
                "{method} {path} is public"
            ),
            Some(role) => {
                assert_eq!(
                    anonymous.status().as_u16(),
                    401,
                    "{method} {path} without credentials"
                );
                let body: serde_json::Value = anonymous.json().unwrap();
                if path.starts_with("/logkit/") {
                    // In logkit's envelope, which logkit's clients decode.
                    assert_eq!(body["code"], "L401", "{method} {path}: {body}");
                } else {
                    assert_eq!(body["error"]["code"], "unauthorized");
                }
                let bad = node
                    .anonymous(method.clone(), &path)
                    .bearer_auth("lgr_00000000_nope")
                    .send()
                    .unwrap();
                assert_eq!(
                    bad.status().as_u16(),
                    401,
                    "{method} {path} with a forged token"
                );
                let weaker = match role {
                    lograft::auth::Role::Reader => None,
                    lograft::auth::Role::Operator => Some(&reader),
                    lograft::auth::Role::Admin => Some(&operator),
                };
                if let Some(weaker) = weaker {
                    let response = node
                        .anonymous(method.clone(), &path)
                        .bearer_auth(weaker)
                        .body("{}")
                        .send()
                        .unwrap();
                    assert_eq!(
                        response.status().as_u16(),
                        403,
                        "{method} {path} with a too-weak role"
                    );
                }
            }
        }
    }
    // Unknown routes are 404 whatever the credentials; /health answers anyone.
    assert_eq!(
        node.anonymous(Method::GET, "/health")
            .send()
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[test]
fn metrics_can_be_made_public() {
    let mut node = Node::new("", "[metrics]\npublic = true");
    node.start();
    let response = node.anonymous(Method::GET, "/metrics").send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        node.anonymous(Method::GET, "/api/v1/status")
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );
}

fn session_cookie(response: &reqwest::blocking::Response) -> String {
    let header = response
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Strict"),
        "{header}"
    );
    header.split(';').next().unwrap().to_string()
}

#[test]
fn first_admin_login_sessions_csrf_rate_limit_and_expiry() {
    let mut node = Node::new(
        "",
        "[auth]\nsession_ttl = \"2s\"\nlogin_attempts_per_minute = 3",
    );
    node.start();
    let password_file = node.data().join("initial-admin-password");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&password_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&password_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(password.len() >= 16);
    assert!(node.log().contains("created the first user"));
    // The log says where the password is, never the password (journals are widely readable).
    assert!(node.log().contains("initial-admin-password"));
    assert!(
        !node.log().contains(&password),
        "the password is in the log"
    );

    let login = |user: &str, password: &str| {
        node.anonymous(Method::POST, "/api/v1/login")
            .body(serde_json::json!({"user": user, "password": password}).to_string())
            .send()
            .unwrap()
    };
    let response = login("admin", &password);
    assert_eq!(response.status().as_u16(), 200);
    let cookie = session_cookie(&response);
    let me = node
        .anonymous(Method::GET, "/api/v1/me")
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(me.status().as_u16(), 200);
    assert_eq!(me.json::<serde_json::Value>().unwrap()["role"], "admin");

    // A state-changing request with only the cookie is refused (CSRF); with the header it works.
    let body =
        serde_json::json!({"name": "ann", "role": "reader", "password": "a long enough password"})
            .to_string();
    let forged = node
        .anonymous(Method::POST, "/api/v1/users")
        .header(COOKIE, &cookie)
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    let real = node
        .anonymous(Method::POST, "/api/v1/users")
        .header(COOKIE, &cookie)
        .header("x-lograft-csrf", "1")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(real.status().as_u16(), 201);

    // Sessions expire.
    std::thread::sleep(Duration::from_millis(2500));
    let expired = node
        .anonymous(Method::GET, "/api/v1/me")
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(expired.status().as_u16(), 401);

    // Three failures, then even the right password is refused for this client.
    for _ in 0..3 {
        assert_eq!(login("ann", "wrong password here").status().as_u16(), 401);
    }
    assert_eq!(
        login("ann", "a long enough password").status().as_u16(),
        429
    );

    // Security headers on every response.
    let response = node.anonymous(Method::GET, "/").send().unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    // The audit trail saw it all, and admins can read it.
    node.wait_for_count("runner:_audit AND login", 5);
    let (status, audit) = node.get("/api/v1/audit?q=failed&limit=50");
    assert_eq!(status, 200, "{audit}");
    assert!(audit["total"].as_u64().unwrap() >= 3, "{audit}");
}

#[test]
fn revoked_tokens_and_deleted_users_stop_at_once() {
    let mut node = Node::new("", "");
    node.start();
    let url = node.url("");
    let token = node.cli(
        &[
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "reader",
            "--url",
            &url,
            "--token",
            &node.token,
        ],
        "",
    );
    assert!(token.starts_with("lgr_"));
    let ok = node
        .anonymous(Method::GET, "/api/v1/status")
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    // Basic auth with the token as password works too (for ES shippers).
    let basic = node
        .anonymous(Method::GET, "/api/v1/status")
        .basic_auth("filebeat", Some(&token))
        .send()
        .unwrap();
    assert_eq!(basic.status().as_u16(), 200);
    let listed = node.cli(
        &["token", "list", "--url", &url, "--token", &node.token],
        "",
    );
    let id = listed
        .lines()
        .find(|l| l.contains("\tci\t"))
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    assert!(!listed.contains(&token[13..]), "secrets are never listed");
    node.cli(
        &[
            "token",
            "revoke",
            &id,
            "--url",
            &url,
            "--token",
            &node.token,
        ],
        "",
    );
    let revoked = node
        .anonymous(Method::GET, "/api/v1/status")
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 401);

    node.cli(
        &[
            "user",
            "add",
            "carol",
            "--role",
            "operator",
            "--url",
            &url,
            "--token",
            &node.token,
        ],
        "carol's long password\n",
    );
    assert!(
        node.cli(&["user", "list", "--url", &url, "--token", &node.token], "")
            .contains("carol\toperator")
    );
    let login = || {
        node.anonymous(Method::POST, "/api/v1/login")
            .body(r#"{"user":"carol","password":"carol's long password"}"#)
            .send()
            .unwrap()
    };
    let cookie = session_cookie(&login());
    node.cli(
        &[
            "user",
            "del",
            "carol",
            "--url",
            &url,
            "--token",
            &node.token,
        ],
        "",
    );
    let after = node
        .anonymous(Method::GET, "/api/v1/me")
        .header(COOKIE, &cookie)
        .send()
        .unwrap();
    assert_eq!(
        after.status().as_u16(),
        401,
        "a deleted user's session ends"
    );

    // Offline on a stopped node's data dir.
    node.stop();
    node.cli(
        &["user", "add", "dave", "--role", "reader", "--config"],
        "dave's long password\n",
    );
    assert!(
        node.cli(&["user", "list", "--config"], "")
            .contains("dave\treader")
    );
}

#[test]
fn secrets_are_masked_and_never_logged_or_audited() {
    let mut node = Node::new("", "");
    node.start();
    let canary = "canary-7f3a9c1e-secret";
    let config = serde_json::json!({
        "name": "withsecret",
        "reader": {"mode": "file", "log_path": node.logs().join("x.log")},
        "senders": [{"sender_type": "local", "password": canary}]
    });
    let (status, body) = node.send("POST", "/api/v1/runners", &config.to_string());
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(canary), "{body}");
    assert_eq!(body["config"]["senders"][0]["password"], "******");
    let (_, list) = node.get("/api/v1/runners");
    assert!(!list.to_string().contains(canary));
    // Writing back what was read keeps the secret (it is not replaced by the mask).
    let mut read_back = list[0]["config"].clone();
    read_back["reader"]["read_from"] = serde_json::json!("newest");
    let (status, _) = node.send("PUT", "/api/v1/runners/withsecret", &read_back.to_string());
    assert_eq!(status, 200);
    let stored = node.cli(
        &[
            "token",
            "list",
            "--url",
            &node.url(""),
            "--token",
            &node.token,
        ],
        "",
    );
    assert!(!stored.contains(canary));
    node.wait_for_count("runner:_audit AND withsecret", 2);
    let (_, audit) = node.get("/api/v1/audit?limit=100");
    assert!(!audit.to_string().contains(canary));
    assert_eq!(node.count(canary), 0);
    node.stop();
    assert!(
        !node.log().contains(canary),
        "the node's log never shows the secret"
    );
}

#[test]
fn oversized_bodies_get_413_and_bad_logins_a_clear_error() {
    let mut node = Node::new("", "[api]\nmax_body_bytes = \"64KiB\"");
    node.start();
    let big = format!(
        r#"{{"name":"big","reader":{{"mode":"file","log_path":"/x"}},"pad":"{}"}}"#,
        "x".repeat(80_000)
    );
    let (status, _) = node.send("POST", "/api/v1/runners", &big);
    assert_eq!(status, 413);
    let huge_login = format!(r#"{{"user":"admin","password":"{}"}}"#, "p".repeat(20_000));
    let response = node
        .anonymous(Method::POST, "/api/v1/login")
        .body(huge_login)
        .send()
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        413,
        "login bodies have their own, smaller cap"
    );
    let response = node
        .anonymous(Method::POST, "/api/v1/login")
        .body("not json")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid request body"),
        "{body}"
    );
}

/// The audit trail is for admins: readers do not find it through search, top values or export.
#[test]
fn readers_do_not_see_the_audit_trail() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("app", "a.log", "raw"));
    node.wait_for_count("runner:_audit", 1);
    let reader = node.cli(
        &[
            "token",
            "create",
            "--name",
            "r",
            "--role",
            "reader",
            "--url",
            &node.url(""),
            "--token",
            &node.token,
        ],
        "",
    );
    let as_reader = |path: &str| -> serde_json::Value {
        node.anonymous(Method::GET, path)
            .bearer_auth(&reader)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(as_reader("/api/v1/search?q=runner:_audit")["total"], 0);
    assert_eq!(as_reader("/api/v1/search")["total"], 0);
    assert_eq!(
        as_reader("/api/v1/top?field=runner")["values"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let export = node
        .anonymous(Method::GET, "/api/v1/export")
        .bearer_auth(&reader)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!export.contains("_audit"), "{export}");
    assert_eq!(node.count("runner:_audit"), 1, "admins still search it");
}
