//! Mixed fleets and logkit clients without tokens (issue 15): a logkit slave registers with a
//! lograft cluster and is managed through logkit's per-node API next to the lograft nodes; a
//! node may let token-less logkit clients from trusted networks act with a fixed role.
//!
//! The logkit slave is a small HTTP server started by the test that answers as the recorded
//! logkit 1.5.6 slave answers (`tests/data/logkit-1.5.6/transcript.json`: the envelope, `L200`
//! writes, `L1002` on a duplicate, its status and configs shapes) and registers as a logkit
//! slave does, again and again; it records every request lograft sends it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::Node;

/// A logkit slave as the transcript records one: runners by name, started or stopped.
pub(crate) struct FakeSlave {
    pub url: String,
    /// (method, path, body) of every request received.
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
    /// Whether it keeps registering (a slave that died stops).
    alive: Arc<AtomicBool>,
}

impl FakeSlave {
    pub fn start(master: String, tag: &str) -> FakeSlave {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let alive = Arc::new(AtomicBool::new(true));
        let runners: Arc<Mutex<BTreeMap<String, (Value, bool)>>> = Arc::default();
        {
            let (seen, runners, alive) = (seen.clone(), runners.clone(), alive.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if !alive.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let (method, path, body) = read_request(&mut stream);
                    seen.lock()
                        .unwrap()
                        .push((method.clone(), path.clone(), body.clone()));
                    let answer = answer(&runners, &method, &path, &body);
                    let text = answer.to_string();
                    let status = if answer["code"] == "L200" {
                        "200 OK"
                    } else {
                        "400 Bad Request"
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    );
                }
            });
        }
        // logkit slaves register at start and then every few seconds (15 s in logkit; 1 s
        // here), without a token.
        {
            let (alive, url, tag) = (alive.clone(), url.clone(), tag.to_string());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while alive.load(Ordering::SeqCst) {
                    let _ = client
                        .post(format!("{master}/logkit/cluster/register"))
                        .json(&json!({"url": url, "tag": tag}))
                        .send();
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
        FakeSlave { url, seen, alive }
    }

    fn saw(&self, method: &str, path: &str) -> bool {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .any(|(m, p, _)| m == method && p == path)
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> (String, String, String) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap_or(0);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap_or(());
    (method, path, String::from_utf8_lossy(&body).into_owned())
}

/// What logkit 1.5.6's per-node API answers (see the transcript, N02-N38).
fn answer(
    runners: &Mutex<BTreeMap<String, (Value, bool)>>,
    method: &str,
    path: &str,
    body: &str,
) -> Value {
    let mut runners = runners.lock().unwrap();
    let segments: Vec<&str> = path.trim_start_matches("/logkit/").split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["runners"]) => json!({"code": "L200", "data": runners.keys().collect::<Vec<_>>()}),
        ("GET", ["status"]) => {
            let status: serde_json::Map<String, Value> = runners
                .iter()
                .map(|(name, (_, running))| {
                    let state = if *running { "running" } else { "stopped" };
                    (name.clone(), json!({"name": name, "runningStatus": state, "readDataCount": 0, "readspeed": 0}))
                })
                .collect();
            json!({"code": "L200", "data": status})
        }
        ("GET", ["configs"]) => {
            let configs: serde_json::Map<String, Value> = runners
                .iter()
                .map(|(name, (config, _))| {
                    (
                        format!("/opt/logkit/.logkitconfs/{name}.conf"),
                        config.clone(),
                    )
                })
                .collect();
            json!({"code": "L200", "data": configs})
        }
        ("POST", ["configs", name]) => {
            if runners.contains_key(*name) {
                return json!({"code": "L1002", "message": format!("file {name} runner is running")});
            }
            let config: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            runners.insert(name.to_string(), (config, true));
            json!({"code": "L200"})
        }
        ("DELETE", ["configs", name]) => match runners.remove(*name) {
            Some(_) => json!({"code": "L200"}),
            None => json!({"code": "L1003", "message": format!("runner {name} not found")}),
        },
        ("POST", ["configs", name, action]) => match runners.get_mut(*name) {
            Some((_, running)) => {
                *running = *action != "stop";
                json!({"code": "L200"})
            }
            None => json!({"code": "L1004", "message": format!("runner {name} not found")}),
        },
        ("POST", ["cluster", "tag"]) => json!({"code": "L200"}),
        _ => json!({"message": "Not Found"}),
    }
}

fn trusting(role: &str) -> String {
    format!(
        "[compat.logkit]\nrole = \"{role}\"\nanonymous_role = \"operator\"\nanonymous_from = [\"127.0.0.0/8\"]\n"
    )
}

fn wait_until(what: &str, mut probe: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe() {
            None => return,
            Some(last) if Instant::now() > deadline => panic!("{what}: {last}"),
            Some(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[test]
fn a_logkit_slave_registers_and_is_managed_next_to_lograft_nodes() {
    let mut master = Node::member("m", "", None, &trusting("master"));
    master.start();
    let mut web = Node::member("s1", "web", Some(&master), &trusting("slave"));
    web.start();
    master.wait_members(2);
    let legacy = FakeSlave::start(master.url(""), "web");

    // Listed next to the lograft node, as logkit lists slaves.
    wait_until("the logkit slave is listed", || {
        let (_, slaves) = master.get("/logkit/cluster/slaves?tag=web");
        let urls: Vec<&str> = slaves["data"]
            .as_array()?
            .iter()
            .filter_map(|s| s["url"].as_str())
            .collect();
        (urls != [web.url("").as_str(), legacy.url.as_str()]).then(|| slaves.to_string())
    });
    let (_, slaves) = master.get(&format!("/logkit/cluster/slaves?url={}", legacy.url));
    assert_eq!(slaves["data"][0]["status"], "ok", "{slaves}");
    assert_eq!(slaves["data"][0]["tag"], "web");
    // The replicated registry: every node sees it (the slave node has no slaves of its own
    // in logkit's API, so ask lograft's store through the master's view only).
    let runner = json!({
        "reader": {"mode": "file", "log_path": web.logs().join("x.log"), "read_from": "oldest"},
        "parser": {"type": "raw"},
        "senders": [{"name": "s", "sender_type": "discard"}]
    });

    // A push by tag reaches both: the lograft node through Raft, the logkit slave through
    // logkit's per-node API.
    let (code, body) = master.send(
        "POST",
        "/logkit/cluster/configs/both?tag=web",
        &runner.to_string(),
    );
    assert_eq!(code, 200, "{body}");
    assert!(legacy.saw("POST", "/logkit/configs/both"));
    let (_, names) = web.get("/logkit/runners");
    assert_eq!(names["data"], json!(["both"]));
    let (_, runners) = master.get("/logkit/cluster/runners?tag=web");
    assert_eq!(runners["data"], json!(["both"]));
    // A duplicate fails on the slaves that have it: 503 with each one's error.
    let (code, body) = master.send(
        "POST",
        "/logkit/cluster/configs/both?tag=web",
        &runner.to_string(),
    );
    assert_eq!(
        (code, body["code"].as_str()),
        (503, Some("L2006")),
        "{body}"
    );
    // Status and configs are asked of each slave, keyed by its URL.
    wait_until("status of both", || {
        let (_, status) = master.get("/logkit/cluster/status?tag=web");
        let legacy_state = &status["data"][&legacy.url]["status"]["both"]["runningStatus"];
        let own_state = &status["data"][web.url("")]["status"]["both"]["runningStatus"];
        (legacy_state != "running" || own_state != "running").then(|| status.to_string())
    });
    let (_, configs) = master.get("/logkit/cluster/configs?tag=web");
    assert!(
        configs["data"][&legacy.url]["configs"]["/opt/logkit/.logkitconfs/both.conf"].is_object(),
        "{configs}"
    );
    // Stop and delete reach it too.
    let (code, body) = master.send("POST", "/logkit/cluster/configs/both/stop?tag=web", "");
    assert_eq!(code, 200, "{body}");
    assert!(legacy.saw("POST", "/logkit/configs/both/stop"));
    let (code, body) = master.send("DELETE", "/logkit/cluster/configs/both?tag=web", "");
    assert_eq!(code, 200, "{body}");
    assert!(legacy.saw("DELETE", "/logkit/configs/both"));

    // A registration cannot point lograft anywhere outside anonymous_from.
    let (code, body) = master.send(
        "POST",
        "/logkit/cluster/register",
        r#"{"url":"http://192.0.2.7:3000","tag":"web"}"#,
    );
    assert_eq!(
        (code, body["code"].as_str()),
        (400, Some("L2004")),
        "{body}"
    );

    // A slave that stops registering goes bad, then lost; DELETE forgets it.
    legacy.alive.store(false, Ordering::SeqCst);
    wait_until("the dead logkit slave is lost", || {
        let (_, slaves) = master.get(&format!("/logkit/cluster/slaves?url={}", legacy.url));
        (slaves["data"][0]["status"] != "lost").then(|| slaves.to_string())
    });
    let (code, body) = master.send(
        "DELETE",
        &format!("/logkit/cluster/slaves?url={}", legacy.url),
        "",
    );
    assert_eq!(code, 200, "{body}");
    let (_, slaves) = master.get("/logkit/cluster/slaves");
    assert_eq!(slaves["data"].as_array().map(Vec::len), Some(1), "{slaves}");
}

#[test]
fn token_less_logkit_clients_act_only_from_trusted_networks_and_only_on_logkit_routes() {
    // Off by default: refused, in logkit's envelope.
    let mut closed = Node::new("", "");
    closed.start();
    let response = closed
        .anonymous(reqwest::Method::GET, "/logkit/runners")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().unwrap();
    assert_eq!(body["code"], "L401", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("token"),
        "{body}"
    );

    // Trusted: loopback may manage runners without a token, as an operator.
    let mut open = Node::new("", &trusting("both"));
    open.start();
    let path = open.logs().join("a.log");
    let runner = json!({"reader": {"mode": "file", "log_path": path}, "senders": [{"sender_type": "local"}]});
    let response = open
        .anonymous(reqwest::Method::POST, "/logkit/configs/anon")
        .body(runner.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (_, names) = open.get("/logkit/runners");
    assert_eq!(names["data"], json!(["anon"]));
    // Never more than the role: an admin route is refused.
    let response = open
        .anonymous(reqwest::Method::DELETE, "/logkit/cluster/slaves")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let body: Value = response.json().unwrap();
    assert_eq!(body["code"], "L403", "{body}");
    // Only on /logkit/*: lograft's own API still needs a token.
    let response = open
        .anonymous(reqwest::Method::GET, "/api/v1/runners")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    // And it is audited under the client's address.
    wait_until("the anonymous create in the audit trail", || {
        let (_, audit) = open.get("/api/v1/audit");
        (!audit.to_string().contains("logkit@127.0.0.1")).then(|| audit.to_string())
    });

    // A network not trusted gets no such role (the setting needs its networks).
    let mut other = Node::new(
        "",
        "[compat.logkit]\nanonymous_role = \"operator\"\nanonymous_from = [\"10.0.0.0/8\"]\n",
    );
    other.start();
    let response = other
        .anonymous(reqwest::Method::GET, "/logkit/runners")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

/// A lograft node joins a logkit cluster as a slave (`[compat.logkit] master_url`): it
/// registers with the logkit master as logkit slaves do, and answers the master's token-less
/// calls from the master's address.
#[test]
fn a_lograft_node_registers_with_a_logkit_master_and_answers_its_calls() {
    // The master: records registrations, answers L200 as logkit's master does (C51).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let master_url = format!("http://{}", listener.local_addr().unwrap());
    let registrations: Arc<Mutex<Vec<Value>>> = Arc::default();
    {
        let registrations = registrations.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (method, path, body) = read_request(&mut stream);
                if method == "POST" && path == "/logkit/cluster/register" {
                    registrations
                        .lock()
                        .unwrap()
                        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                }
                let text = r#"{"code":"L200"}"#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
    }
    let mut node = Node::member(
        "lk-slave",
        "web",
        None,
        &format!("{}master_url = \"{master_url}\"\n", trusting("slave")),
    );
    node.start();
    wait_until("a registration", || {
        let seen = registrations.lock().unwrap().clone();
        let expected = json!({"url": node.url(""), "tag": "web"});
        (!seen.contains(&expected)).then(|| format!("{seen:?}"))
    });
    // The master's calls carry no token.
    let path = node.logs().join("m.log");
    let runner = json!({"reader": {"mode": "file", "log_path": path}, "parser": {"type": "raw"},
                        "senders": [{"name": "s", "sender_type": "discard"}]});
    let response = node
        .anonymous(reqwest::Method::POST, "/logkit/configs/from-master")
        .body(runner.to_string())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    wait_until("the runner in the slave's status", || {
        let response = node
            .anonymous(reqwest::Method::GET, "/logkit/status")
            .send()
            .ok()?;
        let status: Value = response.json().ok()?;
        (status["data"]["from-master"]["runningStatus"] != "running").then(|| status.to_string())
    });
    let response = node
        .anonymous(reqwest::Method::GET, "/logkit/cluster/ismaster")
        .send()
        .unwrap();
    let answer: Value = response.json().unwrap();
    assert_eq!(answer, json!({"code": "L200", "data": false}));
}
