//! The web UI: its files are served with the right types and cache headers, and browser
//! scenarios (tests/ui/*.mjs, playwright-core driving Debian's Chromium) run against a real node
//! with log lines this test writes (the Cluster page: against a three-node cluster). See: issue 7.
//!
//! `scripts/test` installs Chromium and `npm ci --prefix tests/ui`; without them the browser
//! tests fail with a message saying so (they are part of CI, never skipped). Screenshots land
//! in `target/ui-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};

use crate::harness::{Node, append_lines};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The scripts time out on their own (90 s); this is the backstop if node itself hangs.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(180);

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui")
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The versioned asset folder the entry page links to (`/assets/<build id>`).
fn asset_base(node: &Node) -> String {
    let page = node
        .anonymous(Method::GET, "/")
        .send()
        .unwrap()
        .text()
        .unwrap();
    let link = "src=\"/assets/";
    let start = page
        .find(link)
        .expect("the page loads its script from /assets");
    let rest = &page[start + link.len()..];
    let id = &rest[..rest.find('/').unwrap()];
    format!("/assets/{id}")
}

#[test]
fn ui_assets_have_types_and_cache_headers() {
    let mut node = Node::new("", "");
    node.start();

    // The entry page: public, HTML, never cached without asking, with the CSP.
    let page = node.anonymous(Method::GET, "/").send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(page.headers()[CACHE_CONTROL], "no-cache");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = page.text().unwrap();
    assert!(
        !html.contains("__ASSETS__"),
        "placeholder filled in: {html}"
    );
    let base = asset_base(&node);

    // A versioned module: JavaScript, cached for good, no credentials needed.
    let module = node
        .anonymous(Method::GET, &format!("{base}/js/app.js"))
        .send()
        .unwrap();
    assert_eq!(module.status().as_u16(), 200);
    assert_eq!(
        module.headers()[CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let cache = module.headers()[CACHE_CONTROL]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cache.contains("max-age=31536000") && cache.contains("immutable"),
        "{cache}"
    );
    let etag = module.headers()[ETAG].to_str().unwrap().to_string();
    assert!(module.text().unwrap().contains("import"));
    let revalidated = node
        .anonymous(Method::GET, &format!("{base}/js/app.js"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .unwrap();
    assert_eq!(revalidated.status().as_u16(), 304);

    let style = node
        .anonymous(Method::GET, &format!("{base}/css/app.css"))
        .send()
        .unwrap();
    assert_eq!(style.status().as_u16(), 200);
    assert_eq!(style.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    let icon = node
        .anonymous(Method::GET, &format!("{base}/favicon.svg"))
        .send()
        .unwrap();
    assert_eq!(icon.headers()[CONTENT_TYPE], "image/svg+xml");

    // Without the version folder: served, but revalidated every time.
    let unversioned = node
        .anonymous(Method::GET, "/assets/js/app.js")
        .send()
        .unwrap();
    assert_eq!(unversioned.status().as_u16(), 200);
    assert_eq!(unversioned.headers()[CACHE_CONTROL], "no-cache");

    // Unknown files, another build's folder, the raw entry page, escapes: 404.
    for path in [
        format!("{base}/js/nope.js"),
        "/assets/nope.css".to_string(),
        "/assets/000000000000/js/app.js".to_string(),
        "/assets/index.html".to_string(),
        format!("{base}/index.html"),
        format!("{base}/../Cargo.toml"),
        "/assets/%2e%2e/Cargo.toml".to_string(),
    ] {
        let response = node.anonymous(Method::GET, &path).send().unwrap();
        assert_eq!(response.status().as_u16(), 404, "{path}");
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
}

/// A node for the browser, and the admin password its first start wrote.
fn ui_node() -> (Node, String) {
    let mut node = Node::new("", "");
    node.start();
    let password = std::fs::read_to_string(node.data().join("initial-admin-password"))
        .expect("the first start writes the admin password")
        .trim()
        .to_string();
    (node, password)
}

/// A JSON log line at `minutes_ago`.
fn json_line(minutes_ago: i64, level: &str, message: &str, extra: serde_json::Value) -> String {
    let ts = (Utc::now() - chrono::Duration::minutes(minutes_ago))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut line = serde_json::json!({"ts": ts, "level": level, "msg": message});
    if let serde_json::Value::Object(extra) = extra {
        line.as_object_mut().unwrap().extend(extra);
    }
    line.to_string()
}

/// Run `tests/ui/<script>` against the node; panics with its output unless it exits 0.
fn run_script(node: &Node, password: &str, script: &str, env: &[(&str, String)]) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the UI tests need Debian's Chromium \
         (apt-get install -y --no-install-recommends chromium; scripts/test does it)"
    );
    assert!(
        ui_dir().join("node_modules/playwright-core").exists(),
        "tests/ui/node_modules is missing: run `npm ci --prefix tests/ui` (scripts/test does it)"
    );
    let stdout_path = node.root.path().join(format!("{script}.stdout"));
    let stderr_path = node.root.path().join(format!("{script}.stderr"));
    let mut child = Command::new("node")
        .arg(ui_dir().join(script))
        .current_dir(ui_dir())
        .env("LOGRAFT_URL", node.url(""))
        .env("LOGRAFT_USER", "admin")
        .env("LOGRAFT_PASSWORD", password)
        .env("LOGRAFT_TOKEN", &node.token)
        .env("CHROMIUM", CHROMIUM)
        .env("SCREENSHOT_DIR", screenshot_dir())
        .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("running node (Node.js)");
    let deadline = Instant::now() + SCRIPT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = format!(
        "--- stdout\n{}\n--- stderr\n{}\n--- node log (tail)\n{}",
        std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        crate::harness::tail(&node.log(), 30)
    );
    match status {
        Some(status) if status.success() => println!("{output}"),
        Some(status) => panic!("{script} failed ({status}):\n{output}"),
        None => panic!("{script} did not finish in {SCRIPT_DEADLINE:?}:\n{output}"),
    }
}

#[test]
fn ui_search_histogram_fields_context_and_scroll() {
    let (node, password) = ui_node();
    node.add_runner(&node.runner_json("uiapp", "*.log", "json"));
    // 60 lines over the last two hours, two minutes apart, in one file (context follows it).
    let services = ["payments", "search", "auth"];
    let levels = ["info", "warn", "error", "debug"];
    let lines: Vec<String> = (0..60)
        .map(|i| {
            let service = services[i % 3];
            json_line(
                118 - 2 * i as i64,
                levels[i % 4],
                &format!("uitestmarker request {i:02} served by {service}"),
                serde_json::json!({"service": service, "latency_ms": i * 3}),
            )
        })
        .collect();
    append_lines(&node.logs().join("app.log"), lines);
    // More than two pages of another query, for infinite scroll.
    let scroll: Vec<String> = (0..230)
        .map(|i| {
            json_line(
                50,
                "info",
                &format!("uiscroll line {i:03}"),
                serde_json::json!({}),
            )
        })
        .collect();
    append_lines(&node.logs().join("scroll.log"), scroll);
    node.wait_for_count("uitestmarker", 60);
    node.wait_for_count("uiscroll", 230);
    run_script(&node, &password, "search.mjs", &[]);
}

#[test]
fn ui_live_tail_and_session_expiry() {
    let (node, password) = ui_node();
    node.add_runner(
        r#"{"name": "uitail", "reader": {"mode": "http"}, "parser": {"type": "json"}}"#,
    );
    node.add_runner(&node.runner_json("uiapp", "*.log", "json"));
    append_lines(
        &node.logs().join("app.log"),
        (0..5).map(|i| {
            json_line(
                5,
                "info",
                &format!("uisession line {i}"),
                serde_json::json!({}),
            )
        }),
    );
    node.wait_for_count("uisession", 5);
    run_script(&node, &password, "tail.mjs", &[]);
}

#[test]
fn ui_hostile_text_is_shown_as_text() {
    let (node, password) = ui_node();
    node.add_runner(&node.runner_json("uihostile", "*.log", "json"));
    let pwn = "window.__pwned=1";
    let messages = [
        format!("hostile-a <script>{pwn}</script>"),
        format!("hostile-b <img src=x onerror=\"{pwn}\">"),
        format!("hostile-c <svg onload=\"{pwn}\"></svg><iframe src=\"javascript:{pwn}\"></iframe>"),
        format!("hostile-d <a href=\"javascript:{pwn}\">click me</a> &lt;b&gt; &amp;"),
        "hostile-e \u{1b}[31mRED\u{1b}[0m \u{1b}]0;evil title\u{7} ansi \u{1b}[2J\u{1b}[H"
            .to_string(),
        "hostile-f controls \u{0}\u{1}\u{7}\u{8}\u{b}\u{c}\r\u{7f} end".to_string(),
        "hostile-g \u{202e}gpj.exe\u{202c} bidi".to_string(),
        format!("hostile-h {}", "x".repeat(20_000)),
    ];
    let mut lines: Vec<String> = messages
        .iter()
        .map(|message| json_line(1, "info", message, serde_json::json!({})))
        .collect();
    // Markup in field names, field values and the level.
    lines.push(json_line(
        1,
        &format!("<b onmouseover=\"{pwn}\">error</b>"),
        "hostile-i fields",
        serde_json::json!({
            format!("<img src=x onerror=\"{pwn}\">"): format!("<script>{pwn}</script>"),
            "payload": format!("<img src=x onerror=\"{pwn}\">"),
        }),
    ));
    append_lines(&node.logs().join("hostile.log"), lines);
    node.wait_for_count("hostile", 9);
    run_script(&node, &password, "hostile.mjs", &[]);
}

/// A `logkit` call that must succeed (HTTP 200, code L200); returns its `data`.
fn logkit_data(node: &Node, path: &str) -> serde_json::Value {
    let (status, value) = node.get(path);
    assert_eq!(status, 200, "GET {path}: {value}");
    assert_eq!(value["code"], "L200", "GET {path}: {value}");
    value["data"].clone()
}

#[test]
fn cluster_page_runner_editor_and_node_status() {
    // Three nodes: two tagged web, one db; the browser uses ui-a and its admin password.
    let mut a = Node::member("ui-a", "web", None, "");
    a.start();
    let password = std::fs::read_to_string(a.data().join("initial-admin-password"))
        .expect("the first start writes the admin password")
        .trim()
        .to_string();
    let mut b = Node::member("ui-b", "web", Some(&a), "");
    b.start();
    let mut c = Node::member("ui-c", "db", Some(&a), "");
    c.start();
    for node in [&a, &b, &c] {
        node.wait_members(3);
    }
    let nodes = serde_json::json!([
        {"name": "ui-a", "url": a.url(""), "tag": "web"},
        {"name": "ui-b", "url": b.url(""), "tag": "web"},
        {"name": "ui-c", "url": c.url(""), "tag": "db"},
    ]);
    let signals = tempfile::tempdir().unwrap();
    let env = [
        ("LOGRAFT_NODES", nodes.to_string()),
        ("LOGRAFT_VERSION", env!("CARGO_PKG_VERSION").to_string()),
        ("SIGNAL_DIR", signals.path().display().to_string()),
    ];
    // The script asks for ui-b to go down (file `kill-b`) once the runner and tag steps
    // passed; ui-b is killed here and `b-killed` tells the script to watch it go bad, then lost.
    std::thread::scope(|scope| {
        let script = scope.spawn(|| run_script(&a, &password, "cluster.mjs", &env));
        let ask = signals.path().join("kill-b");
        while !ask.exists() && !script.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if ask.exists() {
            b.kill();
            std::fs::write(signals.path().join("b-killed"), "").unwrap();
        }
        if let Err(panic) = script.join() {
            std::panic::resume_unwind(panic);
        }
    });
    assert!(
        signals.path().join("b-killed").exists(),
        "the script never asked for ui-b to go down"
    );

    // What the page did, seen through the API: the runner went to the web nodes only, the
    // tag set in the table is the cluster's, and ui-b is lost.
    let names =
        |node: &Node| logkit_data(&a, &format!("/logkit/cluster/runners?url={}", node.url("")));
    assert_eq!(names(&a), serde_json::json!(["uiweb"]));
    assert_eq!(names(&b), serde_json::json!(["uiweb"]));
    assert_eq!(names(&c), serde_json::json!([]));
    let config = logkit_data(
        &a,
        &format!("/logkit/cluster/configs/uiweb?url={}", a.url("")),
    );
    assert_eq!(config["reader"]["mode"], "http", "{config}");
    assert_eq!(config["parser"]["type"], "json", "{config}");
    let edge = logkit_data(&a, "/logkit/cluster/slaves?tag=edge");
    let urls: Vec<&str> = edge
        .as_array()
        .unwrap()
        .iter()
        .map(|slave| slave["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, [c.url("").as_str()], "{edge}");
    let slaves = logkit_data(&c, "/logkit/cluster/slaves");
    let status = |name: &str| {
        slaves
            .as_array()
            .unwrap()
            .iter()
            .find(|slave| slave["name"] == name)
            .map(|slave| slave["status"].clone())
    };
    assert_eq!(status("ui-b"), Some("lost".into()), "{slaves}");
    assert_eq!(status("ui-a"), Some("ok".into()), "{slaves}");
}

/// A logkit slave registered with the cluster is on the Cluster page, marked as logkit, with
/// its runners asked of it through logkit's API: see tests/ui/logkit.mjs.
#[test]
fn cluster_page_shows_a_registered_logkit_slave_and_its_runners() {
    let mut node = Node::new(
        "",
        "[compat.logkit]\nanonymous_role = \"operator\"\nanonymous_from = [\"127.0.0.0/8\"]\n",
    );
    node.start();
    let password = std::fs::read_to_string(node.data().join("initial-admin-password"))
        .unwrap()
        .trim()
        .to_string();
    let slave = crate::logkit_fleet::FakeSlave::start(node.url(""), "legacy");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let runner = serde_json::json!({"reader": {"mode": "file", "log_path": "/var/log/legacy.log"},
        "senders": [{"name": "s", "sender_type": "discard"}]});
    loop {
        let (status, body) = node.send(
            "POST",
            &format!("/logkit/cluster/configs/legacy-runner?url={}", slave.url),
            &runner.to_string(),
        );
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    run_script(
        &node,
        &password,
        "logkit.mjs",
        &[("LOGKIT_SLAVE_URL", slave.url.clone())],
    );
}

/// The Deploy page (seed 002) walked in Chromium: see tests/ui/deploy.mjs.
#[test]
fn deploy_page_create_plan_deploy_start_stop_delete() {
    let (node, password) = ui_node();
    let log = node.logs().join("deploy.log");
    append_lines(&log, (0..10).map(|i| format!("uideploy line {i}")));
    run_script(
        &node,
        &password,
        "deploy.mjs",
        &[("LOGRAFT_LOG_PATH", log.display().to_string())],
    );
    // What the page started read its file.
    node.wait_for_count("uideploy", 10);
}
