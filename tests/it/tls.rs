//! HTTPS with rustls, and clients that verify the node against a CA. See: issue 5 ("TLS").

use std::process::Command;

use reqwest::Method;

use crate::harness::{BIN, Node};

#[test]
fn serves_https_and_clients_verify_it_against_the_ca() {
    let mut node = Node::new("", "");
    node.enable_tls();
    node.start();
    assert!(node.url("").starts_with("https://"));
    let (status, body) = node.get("/api/v1/status");
    assert_eq!(status, 200, "{body}");

    // Plain HTTP to the HTTPS port gets no answer.
    let plain = reqwest::blocking::get(format!("http://127.0.0.1:{}/health", node.port));
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // The CLI verifies the node against --ca, and refuses it without.
    let ca = node.root.path().join("ca.pem");
    let with_ca = Command::new(BIN)
        .args([
            "search",
            "",
            "--url",
            &node.url(""),
            "--token",
            &node.token,
            "--ca",
        ])
        .arg(&ca)
        .output()
        .unwrap();
    assert!(
        with_ca.status.success(),
        "{}",
        String::from_utf8_lossy(&with_ca.stderr)
    );
    let without = Command::new(BIN)
        .args(["search", "", "--url", &node.url(""), "--token", &node.token])
        .output()
        .unwrap();
    assert!(!without.status.success(), "an unknown CA must be refused");

    // Session cookies are Secure over TLS.
    let password = std::fs::read_to_string(node.data().join("initial-admin-password")).unwrap();
    let login = node
        .anonymous(Method::POST, "/api/v1/login")
        .body(serde_json::json!({"user": "admin", "password": password.trim()}).to_string())
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
    node.stop();
}

#[test]
fn tls_config_errors_name_the_file() {
    let node = Node::new(
        "",
        "[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"",
    );
    let output = Command::new(BIN)
        .args(["config", "check"])
        .arg(node.config_path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("tls.cert") && err.contains("/nonexistent/cert.pem"),
        "{err}"
    );
}
