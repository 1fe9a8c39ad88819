//! A small test DSL: start the real `lograft` binary on a loopback port with a temp data dir,
//! talk HTTP to it, kill it, restart it.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_lograft");

/// A node's files: data dir, a logs dir it may read, its config.
pub struct Node {
    pub root: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    client: reqwest::blocking::Client,
    /// Admin API token, created offline before the first start.
    pub token: String,
    /// `https` after [`Node::enable_tls`].
    scheme: &'static str,
    /// A command the node runs under (the binary and its arguments follow), e.g. a script
    /// that mounts a small disk for it in a namespace of its own.
    pub wrapper: Vec<String>,
    /// The address it listens on and the tests dial: 127.0.0.1 unless [`Node::set_host`].
    host: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Node {
    /// A node whose allowlist is its own `logs/` folder. `extra_config` is appended to the TOML
    /// (sections `[queue]`, `[index]` ... may be given; `[collect]` keys go in `collect_extra`).
    pub fn new(collect_extra: &str, extra_config: &str) -> Node {
        Node::named("test-node", collect_extra, extra_config)
    }

    /// A node of a test cluster: named `name`, tagged `tag`, with short heartbeat intervals
    /// (`ok` within 3 s, `bad` within 6 s, `lost` after: wide enough for a loaded CI machine). With `join`, it joins that member's
    /// cluster on its first start and uses that member's admin token.
    pub fn member(name: &str, tag: &str, join: Option<&Node>, extra_config: &str) -> Node {
        Node::member_with(name, tag, join, extra_config, "")
    }

    /// [`Node::member`] with more `[cluster]` keys (e.g. `voters = 1`).
    pub fn member_with(
        name: &str,
        tag: &str,
        join: Option<&Node>,
        extra_config: &str,
        cluster_keys: &str,
    ) -> Node {
        let mut cluster = format!(
            "[cluster]\ntag = \"{tag}\"\nheartbeat_interval = \"500ms\"\nbad_after = \"3s\"\nlost_after = \"6s\"\n{cluster_keys}\n"
        );
        let mut token = String::new();
        if let Some(member) = join {
            let secret = member.cli(
                &[
                    "cluster",
                    "token",
                    "--url",
                    &member.url(""),
                    "--token",
                    &member.token,
                ],
                "",
            );
            cluster.push_str(&format!(
                "join = \"{}\"\njoin_token = \"{secret}\"\n",
                member.url("")
            ));
            token = member.token.clone();
        }
        let mut node = Node::named(name, "", &format!("{extra_config}\n{cluster}"));
        // It may hold the cluster secret: lograft refuses such a file readable by every user.
        std::fs::set_permissions(
            node.config_path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        node.token = token;
        node
    }

    /// Wait until this node's API answers with the cluster's admin token and lists `members`
    /// nodes (a joining node has caught up).
    pub fn wait_members(&self, members: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self
                .request(reqwest::Method::GET, "/api/v1/cluster/nodes")
                .send()
                && response.status().is_success()
            {
                let value: Value = response.json().unwrap();
                if value["nodes"].as_array().map(Vec::len) == Some(members)
                    && value["leader"].is_string()
                {
                    return value;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} did not see {members} members; log:\n{}",
                self.url(""),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn named(name: &str, collect_extra: &str, extra_config: &str) -> Node {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("logs")).unwrap();
        let port = free_port();
        let config = format!(
            "data_dir = \"{data}\"\nlisten = \"127.0.0.1:{port}\"\nnode_name = \"{name}\"\n\
             [collect]\nallowed_paths = [\"{logs}/**\"]\ndefault_runner = false\n\
             partial_line_timeout = \"1s\"\nscan_interval = \"200ms\"\n{collect_extra}\n{extra_config}\n",
            data = root.path().join("data").display(),
            logs = root.path().join("logs").display(),
        );
        std::fs::write(root.path().join("node.toml"), config).unwrap();
        Node {
            root,
            port,
            child: None,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            token: String::new(),
            scheme: "http",
            wrapper: Vec::new(),
            host: "127.0.0.1".into(),
        }
    }

    /// Serve HTTPS with a certificate for 127.0.0.1 signed by a test CA (`ca.pem` in the
    /// node's root), made with the openssl command line; the test client trusts that CA.
    pub fn enable_tls(&mut self) {
        let dir = self.root.path();
        let run = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=lograft test CA",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "node.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat());
        std::fs::write(
            dir.join("node.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "node.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "node.ext",
        ]);
        let mut config = std::fs::read_to_string(self.config_path()).unwrap();
        config.push_str(&format!(
            "\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display(),
            dir.join("ca.pem").display()
        ));
        std::fs::write(self.config_path(), config).unwrap();
        let ca =
            reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
        self.client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .add_root_certificate(ca)
            .build()
            .unwrap();
        self.scheme = "https";
    }

    pub fn logs(&self) -> PathBuf {
        self.root.path().join("logs")
    }

    pub fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.path().join("node.toml")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}:{}{path}", self.scheme, self.host, self.port)
    }

    /// Let the node read `glob` too (besides its own `logs/`); before the first start.
    pub fn allow_also(&self, glob: &str) {
        let own = format!("allowed_paths = [\"{}/**\"]", self.logs().display());
        let config = std::fs::read_to_string(self.config_path()).unwrap();
        assert!(config.contains(&own), "{config}");
        let both = format!(
            "allowed_paths = [\"{}/**\", \"{glob}\"]",
            self.logs().display()
        );
        std::fs::write(self.config_path(), config.replace(&own, &both)).unwrap();
    }

    /// Listen on `host` instead of 127.0.0.1 (e.g. the node's address in a network namespace
    /// of its own); before the first start.
    pub fn set_host(&mut self, host: &str) {
        let from = format!("listen = \"{}:{}\"", self.host, self.port);
        let config = std::fs::read_to_string(self.config_path()).unwrap();
        assert!(config.contains(&from), "{config}");
        let config = config.replace(&from, &format!("listen = \"{host}:{}\"", self.port));
        std::fs::write(self.config_path(), config).unwrap();
        self.host = host.to_string();
    }

    /// Start the binary and wait until `/health` answers.
    pub fn start(&mut self) -> &mut Self {
        assert!(self.child.is_none(), "node already running");
        if self.token.is_empty() {
            self.token = self.cli(
                &[
                    "token", "create", "--name", "harness", "--role", "admin", "--config",
                ],
                "",
            );
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("node.log"))
            .unwrap();
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(["serve", "--config"])
            .arg(self.config_path())
            .env("LOGRAFT_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting lograft");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self.client.get(self.url("/health")).send()
                && response.status().is_success()
            {
                break;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "lograft exited during startup ({status}); log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "lograft did not become healthy; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self
    }

    /// Run a `lograft` command with this node's config (appended as the last argument when the
    /// args end with `--config`), feeding `stdin`; returns stdout, panics on failure.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        let mut command = Command::new(BIN);
        command.args(args);
        if args.last() == Some(&"--config") {
            command.arg(self.config_path());
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "lograft {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// A request with the admin token.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// A request without credentials.
    pub fn anonymous(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("node.log")).unwrap_or_default()
    }

    /// The running node's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node running").id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "lograft did not exit cleanly: {status}; log:\n{}",
                self.log()
            );
        }
    }

    /// The cluster secret, as a joining node learns it: a join token minted by the admin,
    /// traded at `/internal/v1/cluster/exchange` (the API never shows the secret itself).
    pub fn cluster_secret(&self) -> String {
        let (status, minted) = self.send("POST", "/api/v1/cluster/join-tokens", "{}");
        assert_eq!(status, 200, "{minted}");
        let response = self
            .anonymous(reqwest::Method::POST, "/internal/v1/cluster/exchange")
            .header("x-lograft-join-token", minted["token"].as_str().unwrap())
            .json(&serde_json::json!({"name": "test"}))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().unwrap();
        body["secret"].as_str().unwrap().to_string()
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let response = self.request(reqwest::Method::GET, path).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    pub fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let request = self.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            path,
        );
        let response = request.body(body.to_string()).send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    /// Create a runner; panics unless the node accepts it.
    pub fn add_runner(&self, json: &str) {
        let (status, body) = self.send("POST", "/api/v1/runners", json);
        assert_eq!(status, 201, "creating runner {json}: {body}");
    }

    /// Runner config tailing `logs/<glob>`.
    pub fn runner_json(&self, name: &str, glob: &str, parser: &str) -> String {
        serde_json::json!({
            "name": name,
            "reader": {"mode": "tailx", "log_path": self.logs().join(glob), "read_from": "oldest"},
            "parser": {"type": parser}
        })
        .to_string()
    }

    /// Add a syslog runner `sys` with `parser` on a free port and wait until it listens; the port.
    pub fn add_syslog_runner(&self, parser: &str) -> u16 {
        let port = free_port();
        self.add_runner(
            &serde_json::json!({
                "name": "sys",
                "reader": {"mode": "syslog", "listen": format!("127.0.0.1:{port}")},
                "parser": {"type": parser}
            })
            .to_string(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.runner_status("sys")["state"] != "listening" {
            assert!(Instant::now() < deadline, "{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        port
    }

    pub fn runner_status(&self, name: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/runners/{name}"));
        assert_eq!(status, 200, "{body}");
        body["status"].clone()
    }

    /// Every message matching `q`, walking all pages.
    pub fn search_all(&self, q: &str) -> Vec<String> {
        let mut messages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&self.url("/api/v1/search")).unwrap();
            url.query_pairs_mut()
                .append_pair("q", q)
                .append_pair("limit", "5000");
            if let Some(cursor) = &cursor {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            let response = self
                .client
                .get(url)
                .bearer_auth(&self.token)
                .send()
                .unwrap();
            assert!(
                response.status().is_success(),
                "search {q}: {}",
                response.text().unwrap()
            );
            let body: Value = response.json().unwrap();
            for hit in body["hits"].as_array().unwrap() {
                messages.push(hit["message"].as_str().unwrap().to_string());
            }
            match body["cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        messages
    }

    pub fn count(&self, q: &str) -> u64 {
        let mut url = reqwest::Url::parse(&self.url("/api/v1/search")).unwrap();
        url.query_pairs_mut()
            .append_pair("q", q)
            .append_pair("limit", "1");
        let body: Value = self
            .client
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        body["total"].as_u64().unwrap()
    }

    /// Wait until `count(q) >= n` (or fail with what was found).
    pub fn wait_for_count(&self, q: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let found = self.count(q);
            if found >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} hits of {q:?}, found {found}; status: {}\nlog tail:\n{}",
                self.get("/api/v1/status").1,
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn metrics(&self) -> String {
        self.request(reqwest::Method::GET, "/metrics")
            .send()
            .unwrap()
            .text()
            .unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The Raft id of member `name` in a `/api/v1/cluster/nodes` answer.
pub fn raft_id(view: &Value, name: &str) -> u64 {
    view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {view}"))["raft_id"]
        .as_u64()
        .unwrap()
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Append lines to a file (creating it), each with its own write, flushed.
pub fn append_lines(path: &Path, lines: impl IntoIterator<Item = String>) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        file.write_all(line.as_bytes()).unwrap();
        file.write_all(b"\n").unwrap();
    }
    file.flush().unwrap();
}

/// Assert every expected message occurs exactly once among `found`.
pub fn assert_exactly_once(found: &[String], expected: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for message in found {
        *counts.entry(message.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|m| !counts.contains_key(m.as_str()))
        .collect();
    let duplicated: Vec<(&&str, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    let expected_set: std::collections::BTreeSet<&str> =
        expected.iter().map(String::as_str).collect();
    let unexpected: Vec<&&str> = counts
        .keys()
        .filter(|m| !expected_set.contains(**m))
        .collect();
    assert!(
        missing.is_empty() && duplicated.is_empty() && unexpected.is_empty(),
        "{} missing (first: {:?}), {} duplicated (first: {:?}), {} unexpected (first: {:?}) out of {} expected",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        duplicated.len(),
        duplicated.iter().take(5).collect::<Vec<_>>(),
        unexpected.len(),
        unexpected.iter().take(5).collect::<Vec<_>>(),
        expected.len()
    );
}

/// Messages `"{tag} {i}"` for `range`.
pub fn numbered(tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{tag} n{i}")).collect()
}

/// xorshift: a reproducible random source (the seed is printed by the tests).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
