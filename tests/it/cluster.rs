//! The cluster with real node processes on loopback: join, runner configs by tag through the
//! logkit cluster API, a killed leader, a restart of every node, a node that goes down, a
//! config a node refuses, and joining a running node from the CLI.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::Node;

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

/// The first node, then the others joining it; every node sees all of them.
fn cluster(specs: &[(&str, &str)]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for (name, tag) in specs {
        let mut node = Node::member(name, tag, nodes.first(), "");
        node.start();
        nodes.push(node);
    }
    for node in &nodes {
        node.wait_members(nodes.len());
    }
    nodes
}

fn logkit(node: &Node, method: &str, path: &str, body: &str) -> Value {
    let (status, value) = node.send(method, path, body);
    assert_eq!(status, 200, "{method} {path}: {value}");
    assert_eq!(value["code"], "L200", "{method} {path}: {value}");
    value
}

fn names(value: &Value) -> BTreeSet<String> {
    value["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The runners a node has started (its own per-node logkit API).
fn running(node: &Node) -> BTreeSet<String> {
    let (_, value) = node.get("/logkit/status");
    value["data"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ingest(node: &Node, runner: &str, lines: &str) -> u16 {
    node.send("POST", &format!("/api/v1/ingest/{runner}"), lines)
        .0
}

#[test]
fn three_nodes_runners_by_tag_refusals_and_search_from_any_node() {
    let nodes = cluster(&[("alpha", "web"), ("beta", "web"), ("gamma", "db")]);
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);

    // One leader, two voters; logkit says every voter is a master.
    let view = a.wait_members(3);
    let roles: Vec<&str> = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles.iter().filter(|r| **r == "leader").count(),
        1,
        "{view}"
    );
    assert_eq!(roles.iter().filter(|r| **r == "voter").count(), 2, "{view}");
    assert_eq!(
        logkit(c, "GET", "/logkit/cluster/ismaster", "")["data"],
        true
    );
    let slaves = logkit(b, "GET", "/logkit/cluster/slaves?tag=web", "");
    let urls: BTreeSet<String> = slaves["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls, set(&[&a.url(""), &b.url("")]));

    // Configs by tag (sent to a follower or the leader alike) and by URL.
    let http_runner = json!({"reader": {"mode": "http"}, "parser": {"type": "raw"}}).to_string();
    logkit(
        b,
        "POST",
        "/logkit/cluster/configs/web-in?tag=web",
        &http_runner,
    );
    let c_file = json!({
        "reader": {"mode": "file", "log_path": c.logs().join("db.log").to_str().unwrap(), "read_from": "oldest"},
        "parser": {"type": "raw"},
    })
    .to_string();
    logkit(
        a,
        "POST",
        &format!("/logkit/cluster/configs/db-file?url={}", c.url("")),
        &c_file,
    );
    // A path only alpha's allowlist permits, applied to both web nodes: beta refuses it.
    let a_file = json!({
        "reader": {"mode": "file", "log_path": a.logs().join("web.log").to_str().unwrap()},
        "parser": {"type": "raw"},
    })
    .to_string();
    logkit(
        c,
        "POST",
        "/logkit/cluster/configs/web-file?tag=web",
        &a_file,
    );
    // A second create of the same name is refused, and nothing is half-written.
    let (status, value) = c.send(
        "POST",
        "/logkit/cluster/configs/web-in?tag=web",
        &http_runner,
    );
    // As logkit: the change failed on a slave, 503 with that slave's error.
    assert_eq!(status, 503, "{value}");
    assert_eq!(value["code"], "L2006", "{value}");
    let (status, value) = c.send(
        "POST",
        "/logkit/cluster/configs/x?tag=nosuchtag",
        &http_runner,
    );
    assert_eq!(
        (status, value["message"].as_str()),
        (
            400,
            Some("the slaves(tag = 'nosuchtag', url = '') is not found")
        ),
        "{value}"
    );

    assert_eq!(
        names(&logkit(a, "GET", "/logkit/cluster/runners?tag=web", "")),
        set(&["web-file", "web-in"])
    );
    assert_eq!(
        names(&logkit(a, "GET", "/logkit/cluster/runners?tag=db", "")),
        set(&["db-file"])
    );
    // Each node starts exactly its own runners.
    poll("alpha's runners", || {
        (running(a) == set(&["web-file", "web-in"])).then_some(())
    });
    poll("beta's runners", || {
        (running(b) == set(&["web-file", "web-in"])).then_some(())
    });
    poll("gamma's runners", || {
        (running(c) == set(&["db-file"])).then_some(())
    });

    // Beta refuses web-file, and the cluster status says so and why.
    let refusal = poll("beta's refusal in cluster status", || {
        let status = logkit(
            c,
            "GET",
            &format!("/logkit/cluster/status?url={}", b.url("")),
            "",
        );
        let runner = status["data"][b.url("")]["status"]["web-file"].clone();
        (runner["state"] == "refused").then_some(runner)
    });
    assert!(
        refusal["error"].as_str().unwrap().contains("allow"),
        "{refusal}"
    );
    let status = logkit(b, "GET", "/logkit/cluster/status?tag=web", "");
    assert_eq!(
        status["data"][a.url("")]["status"]["web-file"]["state"],
        "running",
        "{status}"
    );
    let config = logkit(a, "GET", "/logkit/cluster/configs/db-file?tag=db", "");
    assert_eq!(config["data"]["name"], "db-file");
    let configs = logkit(a, "GET", "/logkit/cluster/configs?tag=db", "");
    assert!(
        configs["data"][c.url("")]["configs"]
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k.ends_with("/.logkitconfs/db-file.conf"))),
        "{configs}"
    );

    // Logs written on each node, found by a search on any node.
    assert_eq!(ingest(a, "web-in", "clusterline from-alpha\n"), 200);
    assert_eq!(ingest(b, "web-in", "clusterline from-beta\n"), 200);
    assert_eq!(
        ingest(c, "web-in", "clusterline nowhere\n"),
        404,
        "gamma has no web-in runner"
    );
    std::fs::write(c.logs().join("db.log"), "clusterline from-gamma\n").unwrap();
    std::fs::write(a.logs().join("web.log"), "clusterline from-alpha-file\n").unwrap();
    for node in &nodes {
        node.wait_for_count("clusterline", 4);
        let mut lines = node.search_all("clusterline");
        lines.sort();
        assert_eq!(
            lines,
            vec![
                "clusterline from-alpha",
                "clusterline from-alpha-file",
                "clusterline from-beta",
                "clusterline from-gamma"
            ]
        );
    }

    // Stop, start, reset and delete by tag.
    logkit(a, "POST", "/logkit/cluster/configs/web-in/stop?tag=web", "");
    poll("web-in stopped on beta", || {
        let (_, value) = b.get("/logkit/status");
        (value["data"]["web-in"]["runningStatus"] == "stopped").then_some(())
    });
    logkit(
        a,
        "POST",
        "/logkit/cluster/configs/web-in/start?tag=web",
        "",
    );
    poll("web-in running again on beta", || {
        let (_, value) = b.get("/logkit/status");
        (value["data"]["web-in"]["runningStatus"] == "running").then_some(())
    });
    logkit(b, "DELETE", "/logkit/cluster/configs/web-file?tag=web", "");
    poll("web-file gone from alpha", || {
        (running(a) == set(&["web-in"])).then_some(())
    });

    // Tags: by the master API and by the slave API.
    logkit(
        a,
        "POST",
        &format!("/logkit/cluster/slaves/tag?url={}", c.url("")),
        r#"{"tag":"web"}"#,
    );
    logkit(b, "POST", "/logkit/cluster/tag", r#"{"tag":"edge"}"#);
    // A read on a third node sees both tag writes at once: reads of cluster state are
    // linearizable by default (Raft's read index: a follower asks the leader which revision
    // to reach and waits for it), no polling.
    let (status, nodes) = c.get("/api/v1/cluster/nodes");
    assert_eq!(status, 200, "{nodes}");
    assert_eq!(nodes["consistent"], true, "{nodes}");
    let tag_of = |name: &str| {
        nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == name)
            .map(|n| n["tag"].as_str().unwrap().to_string())
    };
    assert_eq!(tag_of("beta").as_deref(), Some("edge"), "{nodes}");
    let slaves = logkit(c, "GET", "/logkit/cluster/slaves?tag=web", "");
    let urls: BTreeSet<String> = slaves["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(urls, set(&[&a.url(""), &c.url("")]));

    // Fault review (issue 13) item 8: a write through one node is visible at once on another,
    // every time, without asking for it (a stale local read failed this on a loaded machine).
    for i in 0..10 {
        let name = format!("lin{i}");
        logkit(
            a,
            "POST",
            &format!("/logkit/cluster/configs/{name}?url={}", c.url("")),
            &json!({"name": name, "reader": {"mode": "http"}, "parser": {"type": "raw"}})
                .to_string(),
        );
        let (status, runners) = c.get("/api/v1/runners");
        assert_eq!(status, 200, "{runners}");
        assert!(
            runners
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == name.as_str()),
            "{name} is listed on {} right after the write: {runners}",
            c.url("")
        );
    }
}

fn leader(node: &Node) -> String {
    poll("a leader", || {
        let (status, value) = node.get("/api/v1/cluster/nodes");
        (status == 200)
            .then(|| value["leader"].as_str().map(str::to_string))
            .flatten()
    })
}

/// Create http runner `name` on `node` through its own runner API; true when acknowledged.
/// Retries carry one Idempotency-Key, so a retry of a write that did land answers 201 again.
fn write(node: &Node, name: &str) -> bool {
    let body = json!({"name": name, "reader": {"mode": "http"}, "parser": {"type": "raw"}});
    for _ in 0..50 {
        let status = node
            .request(reqwest::Method::POST, "/api/v1/runners")
            .header("Idempotency-Key", format!("create-{name}"))
            .body(body.to_string())
            .send()
            .map(|response| response.status().as_u16())
            .unwrap_or(0);
        match status {
            201 => return true,
            409 => panic!("a retry of {name} with its Idempotency-Key answered 409"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    false
}

fn runner_names(node: &Node, of: &Node) -> BTreeSet<String> {
    let (_, value) = node.get(&format!("/logkit/cluster/runners?url={}", of.url("")));
    value["data"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn leader_killed_then_every_node_restarted_and_no_acknowledged_write_is_lost() {
    let mut nodes = cluster(&[("n1", "t"), ("n2", "t"), ("n3", "t")]);
    let mut acknowledged = BTreeSet::new();
    for i in 0..10 {
        let node = &nodes[i % 3];
        let name = format!("w{i}");
        assert!(write(node, &name), "write {name} before the kill");
        acknowledged.insert(name);
    }

    // SIGKILL the leader; a new one is elected and writes continue through the survivors.
    let old = leader(&nodes[0]);
    let old_index = ["n1", "n2", "n3"].iter().position(|n| *n == old).unwrap();
    nodes[old_index].kill();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != old_index).collect();
    let new = poll("a new leader", || {
        let (status, value) = nodes[survivors[0]].get("/api/v1/cluster/nodes");
        let leader = value["leader"].as_str().unwrap_or("").to_string();
        (status == 200 && !leader.is_empty() && leader != old).then_some(leader)
    });
    assert_ne!(new, old);
    for i in 10..20 {
        let node = &nodes[survivors[i % 2]];
        let name = format!("w{i}");
        if write(node, &name) {
            acknowledged.insert(name);
        }
    }
    assert_eq!(acknowledged.len(), 20, "every write was acknowledged");

    // The old leader comes back and catches up.
    nodes[old_index].start();
    poll("the old leader caught up", || {
        let mut have = BTreeSet::new();
        for node in &nodes {
            have.extend(runner_names(&nodes[old_index], node));
        }
        have.is_superset(&acknowledged).then_some(())
    });

    // Every node restarted: configs and membership survive.
    for node in nodes.iter_mut() {
        node.stop();
    }
    // n3 comes back on another port: it tells the others its new address.
    let (old_port, new_port) = (nodes[2].port, crate::harness::free_port());
    let config = std::fs::read_to_string(nodes[2].config_path())
        .unwrap()
        .replace(
            &format!("127.0.0.1:{old_port}"),
            &format!("127.0.0.1:{new_port}"),
        );
    std::fs::write(nodes[2].config_path(), config).unwrap();
    nodes[2].port = new_port;
    for node in nodes.iter_mut() {
        node.start();
    }
    // A restarted node applies what was committed once the leader tells it the commit index:
    // every acknowledged write shows up on every node.
    for node in &nodes {
        node.wait_members(3);
        poll("every acknowledged write after the restart", || {
            let mut have = BTreeSet::new();
            for other in &nodes {
                have.extend(runner_names(node, other));
            }
            have.is_superset(&acknowledged).then_some(())
        });
    }
    let view = nodes[0].wait_members(3);
    let n3 = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "n3")
        .unwrap()
        .clone();
    assert_eq!(n3["url"], nodes[2].url(""), "{view}");
    // Still writable after the restart (also through the moved node), and every node ends at
    // the same revision with the same entries.
    assert!(write(&nodes[1], "after-restart"));
    assert!(write(&nodes[2], "after-move"));
    poll("the same revision everywhere", || {
        let revisions: BTreeSet<u64> = nodes
            .iter()
            .map(|n| {
                n.get("/api/v1/cluster/nodes").1["revision"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        (revisions.len() == 1).then_some(())
    });
    let configs: Vec<Value> = nodes
        .iter()
        .map(|n| n.get("/logkit/cluster/configs").1["data"].clone())
        .collect();
    assert_eq!(configs[0], configs[1]);
    assert_eq!(configs[1], configs[2]);
}

#[test]
fn a_stopped_node_goes_bad_then_lost() {
    let mut nodes = cluster(&[("s1", "x"), ("s2", "x"), ("s3", "x")]);
    let status_of = |node: &Node, name: &str| -> String {
        let value = logkit(node, "GET", "/logkit/cluster/slaves", "");
        value["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["status"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    poll("s3 ok", || {
        (status_of(&nodes[0], "s3") == "ok").then_some(())
    });
    nodes[2].kill();
    poll("s3 bad", || {
        (status_of(&nodes[0], "s3") == "bad").then_some(())
    });
    poll("s3 lost", || {
        (status_of(&nodes[1], "s3") == "lost").then_some(())
    });
    // Its runner status is reported as unreachable, not as a failure of the whole call.
    let status = logkit(&nodes[0], "GET", "/logkit/cluster/status", "");
    assert!(
        status["data"][nodes[2].url("")]["error"]
            .as_str()
            .unwrap()
            .contains("lost"),
        "{status}"
    );
    // And /metrics counts it.
    poll("lost in metrics", || {
        nodes[0]
            .metrics()
            .contains("lograft_cluster_nodes{status=\"lost\"} 1")
            .then_some(())
    });
    // Removing the dead node takes it out of the membership.
    let (code, value) = nodes[0].send("DELETE", "/api/v1/cluster/nodes/s3", "");
    assert_eq!(code, 200, "{value}");
    nodes[0].wait_members(2);
    nodes[1].wait_members(2);

    // Fault review item 8: a node that cannot reach a quorum does not claim a leader and does
    // not serve a stale read as a consistent one.
    nodes[1].kill();
    let view = poll("s1 to see it cannot confirm reads", || {
        let (status, view) = nodes[0].get("/api/v1/cluster/nodes");
        (status == 200 && view["consistent"] == false).then_some(view)
    });
    assert!(view["leader"].is_null(), "{view}");
    assert!(
        view["read_error"]
            .as_str()
            .unwrap()
            .contains("consistent=false"),
        "{view}"
    );
    let (status, body) = nodes[0].get("/api/v1/runners");
    assert_eq!(status, 503, "{body}");
    let (status, body) = nodes[0].get("/api/v1/runners?consistent=false");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_running_lone_node_joins_from_the_cli_and_keeps_its_runners() {
    // One voter: the node that joins is a learner.
    let mut first = Node::member_with("first", "a", None, "", "voters = 1");
    first.start();
    let mut lone = Node::member("lone", "b", None, "");
    lone.start();
    lone.add_runner(
        &json!({"name": "mine", "reader": {"mode": "http"}, "parser": {"type": "raw"}}).to_string(),
    );
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
    let out = lone.cli(
        &[
            "cluster",
            "join",
            "--peer",
            &first.url(""),
            "--token",
            &secret,
            "--url",
            &lone.url(""),
            "--admin-token",
            &lone.token,
        ],
        "",
    );
    assert!(out.contains("joined"), "{out}");
    // From now on the cluster's users and tokens apply on the joined node.
    lone.token = first.token.clone();
    let view = lone.wait_members(2);
    let role = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "lone")
        .map(|n| n["role"].clone())
        .unwrap();
    assert_eq!(role, "learner", "{view}");
    poll("lone keeps its runner", || {
        (runner_names(&first, &lone) == set(&["mine"])).then_some(())
    });
    poll("lone runs it", || {
        (running(&lone) == set(&["mine"])).then_some(())
    });
    let status = first.cli(
        &[
            "cluster",
            "status",
            "--url",
            &first.url(""),
            "--token",
            &first.token,
        ],
        "",
    );
    assert!(
        status.contains("lone") && status.contains("learner"),
        "{status}"
    );
    // Tag from the CLI (a learner's write is forwarded to the leader), then leave.
    lone.cli(
        &[
            "cluster",
            "tag",
            "edge",
            "--url",
            &lone.url(""),
            "--token",
            &lone.token,
        ],
        "",
    );
    poll("lone tagged edge on first", || {
        let value = logkit(&first, "GET", "/logkit/cluster/slaves?tag=edge", "");
        (value["data"].as_array().unwrap().len() == 1).then_some(())
    });
    lone.cli(
        &[
            "cluster",
            "leave",
            "--url",
            &lone.url(""),
            "--token",
            &lone.token,
        ],
        "",
    );
    first.wait_members(1);
    assert!(
        runner_names(&first, &lone).is_empty(),
        "its runner configs went with it"
    );
}

fn audit_has(node: &Node, wanted: &str) -> bool {
    let (status, body) = node.get("/api/v1/audit?limit=1000&from=-1d");
    status == 200
        && body["hits"].as_array().is_some_and(|hits| {
            hits.iter()
                .any(|hit| hit["message"].as_str().unwrap_or("").contains(wanted))
        })
}

fn exchange(node: &Node, token: &str) -> (u16, Value) {
    let response = node
        .anonymous(reqwest::Method::POST, "/internal/v1/cluster/exchange")
        .header("x-lograft-join-token", token)
        .json(&json!({"name": "probe"}))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Attack review item 7: a join token is not the cluster secret. It opens only the exchange,
/// expires, is used up and can be revoked; the store-write route takes only member writes of
/// member keys, on the leader, and audits them.
#[test]
fn join_tokens_expire_are_used_up_revoked_and_open_nothing_else() {
    let mut first = Node::member("first", "a", None, "");
    first.start();
    let cli = |args: &[&str]| {
        let url = first.url("");
        let mut all = args.to_vec();
        all.extend(["--url", &url, "--token", &first.token]);
        first.cli(&all, "")
    };
    let unused = cli(&["cluster", "token", "--uses", "1"]);
    assert!(unused.starts_with("lgj_"), "{unused}");
    // It opens no node-to-node route.
    let ping = first
        .anonymous(reqwest::Method::GET, "/internal/v1/ping")
        .header("x-lograft-cluster-secret", &unused)
        .send()
        .unwrap();
    assert_eq!(ping.status().as_u16(), 401);

    // A node joins with one (minted by the harness like this one); then it is used up.
    let mut second = Node::member("second", "b", Some(&first), "");
    let config = std::fs::read_to_string(second.config_path()).unwrap();
    let token = config
        .lines()
        .find_map(|line| line.strip_prefix("join_token = \""))
        .map(|rest| rest.trim_end_matches('"').to_string())
        .unwrap();
    assert!(token.starts_with("lgj_"), "{token}");
    second.start();
    let view = second.wait_members(2);
    let (status, body) = exchange(&first, &token);
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("used up"),
        "{body}"
    );

    // Revoked and expired tokens are refused, saying which.
    let revoked = cli(&["cluster", "token"]);
    let id = &revoked[4..16];
    assert!(cli(&["cluster", "tokens"]).contains(id));
    assert!(cli(&["cluster", "revoke-token", id]).contains("revoked"));
    assert!(!cli(&["cluster", "tokens"]).contains(id));
    let (status, _) = exchange(&first, &revoked);
    assert_eq!(status, 401);
    let short = cli(&["cluster", "token", "--ttl", "1s"]);
    let short_id = short[4..16].to_string();
    poll("the 1 s token to expire", || {
        let (_, listed) = first.get("/api/v1/cluster/join-tokens");
        listed["tokens"]
            .as_array()?
            .iter()
            .any(|t| t["id"] == short_id.as_str() && t["expired"] == true)
            .then_some(())
    });
    let (status, body) = exchange(&first, &short);
    assert_eq!(status, 401);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    poll("the token events in the audit trail", || {
        (audit_has(&first, "cluster.join_token.create")
            && audit_has(&first, "cluster.join_token.redeem")
            && audit_has(&first, "cluster.join_token.revoke"))
        .then_some(())
    });

    // The store-write route: a member's write of member keys, on the leader, audited.
    let secret = first.cluster_secret();
    let raft_id = |name: &str| {
        view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == name)
            .map(|n| n["raft_id"].to_string())
            .unwrap()
    };
    let txn = |node: &Node, origin: Option<&str>, key: &str| {
        let mut request = node
            .anonymous(reqwest::Method::POST, "/internal/v1/store/txn")
            .header("x-lograft-cluster-secret", &secret)
            .json(&json!([{"op": "put", "key": key, "value": "{}"}]));
        if let Some(origin) = origin {
            request = request.header("x-lograft-origin-node", origin);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.text().unwrap())
    };
    let leader_name = leader(&first);
    let (leader_node, follower_node, follower_name) = if leader_name == "first" {
        (&first, &second, "second")
    } else {
        (&second, &first, "first")
    };
    let follower_id = raft_id(follower_name);
    let leader_id = raft_id(&leader_name);
    let (status, body) = txn(leader_node, None, "auth/tokens/forged");
    assert_eq!(status, 403, "no origin: {body}");
    let (status, body) = txn(leader_node, Some("12345"), "auth/tokens/forged");
    assert_eq!(status, 403, "not a member: {body}");
    let (status, body) = txn(leader_node, Some(&follower_id), "cluster/secret");
    assert_eq!(status, 403, "not a member key: {body}");
    assert!(body.contains("cluster/secret"), "{body}");
    let (status, body) = txn(follower_node, Some(&leader_id), "runners/x/y");
    assert_eq!(status, 503, "a follower does not forward again: {body}");
    let (status, body) = txn(leader_node, Some(&follower_id), "auth/tokens/probe");
    assert_eq!(status, 200, "{body}");
    poll("forwarded writes in the leader's audit trail", || {
        (audit_has(leader_node, "store.forwarded_write")).then_some(())
    });
}
