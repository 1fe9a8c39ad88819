//! Deployments (seed 002) on a real node: the seed's literal endpoints field by field, the
//! state machine through the API, deploy / start / stop / edit / redeploy / delete with the
//! runners they write, a role the allowlist refuses, and one started deployment at a time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Node, append_lines, numbered};

/// A seed 002 call: HTTP 200 and the seed's envelope; returns the envelope.
fn seed(node: &Node, method: &str, path: &str, body: &str) -> Value {
    let (status, value) = node.send(method, path, body);
    assert_eq!(status, 200, "{method} {path}: {value}");
    assert!(value["code"].is_u64(), "{value}");
    assert!(value["message"].is_string(), "{value}");
    assert!(value.get("result").is_some(), "{value}");
    value
}

fn ok(node: &Node, method: &str, path: &str, body: &str) -> Value {
    let value = seed(node, method, path, body);
    assert_eq!(value["code"], 200, "{method} {path}: {value}");
    assert_eq!(value["message"], "ok", "{value}");
    value["result"].clone()
}

fn refused(node: &Node, method: &str, path: &str, body: &str) -> String {
    let value = seed(node, method, path, body);
    assert_eq!(
        value["code"], 500,
        "{method} {path} was not refused: {value}"
    );
    assert!(value["result"].is_null(), "{value}");
    value["message"].as_str().unwrap().to_string()
}

fn the_one(node: &Node) -> Value {
    let list = ok(node, "GET", "/api/v1/selectClusterList?page=1", "");
    list["data"][0].clone()
}

fn the_one_by_id(node: &Node, id: &str) -> Value {
    ok(
        node,
        "POST",
        "/api/v1/selectCluster",
        &json!({"id": id}).to_string(),
    )
}

fn execute(node: &Node, id: &str, execute_type: Value) {
    ok(
        node,
        "POST",
        "/api/v1/executeCluster",
        &json!({"executeType": execute_type, "clusterId": id}).to_string(),
    );
}

/// Poll the seed's signal until the execution is over (as its page does, if faster).
fn wait_over(node: &Node) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let signal = ok(node, "GET", "/api/v1/executeResultSignal", "");
        assert!(signal["singnalType"].is_string(), "{signal}");
        assert!(
            signal["success"].is_boolean() && signal["over"].is_boolean(),
            "{signal}"
        );
        if signal["over"] == true {
            return signal;
        }
        assert!(
            Instant::now() < deadline,
            "the execution never ended: {signal}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn log_lines(node: &Node) -> Vec<String> {
    let mut lines = Vec::new();
    for page in 1.. {
        let result = ok(node, "GET", &format!("/api/v1/readLog?page={page}"), "");
        assert_eq!(result["currentPage"], page);
        let data = result["data"].as_array().unwrap();
        assert!(data.len() <= 10, "10 lines a page: {result}");
        if data.is_empty() {
            assert_eq!(result["rows"].as_u64().unwrap() as usize, lines.len());
            break;
        }
        lines.extend(data.iter().map(|l| l.as_str().unwrap().to_string()));
    }
    lines
}

fn runner_state(node: &Node, name: &str) -> Option<(bool, String)> {
    let (status, value) = node.get(&format!("/api/v1/runners/{name}"));
    (status == 200).then(|| {
        (
            value["config"]["stopped"] == true,
            value["status"]["state"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    })
}

#[test]
fn a_deployment_goes_through_seed_002s_states_with_its_runners() {
    let mut node = Node::new("", "");
    node.start();
    let log = node.logs().join("app.log");
    append_lines(&log, numbered("deployline", 0..50));
    // A secret in a role (a sender's password): read back masked, kept when the masked
    // value is sent back (the redeploys below find the role unchanged).
    let role = |name: &str, path: &str| {
        json!({"roleName": name,
               "roleBody": {"reader": {"mode": "file", "log_path": path, "read_from": "oldest"},
                            "parser": {"type": "raw"},
                            "senders": [{"sender_type": "local", "password": "hunter2-secret"}]},
               "roleDependHost": ["127.0.0.1"]})
    };
    let body = json!({
        "name": "<b>web</b> logs",
        "hosts": ["test-node"],
        "base": {"version": "0.1.0", "deployUser": "easy", "deployDir": "/home/easy/ds"},
        "roles": [role("app", &log.display().to_string())],
        "remark": "<script>alert(1)</script>",
    });

    // Bad input names the field: the seed's own request (a mysql roleBody), an unknown host,
    // a runner used twice, a bad executeType.
    let seed_request = json!({"name": "myTest1", "hosts": ["192.167.8.141"],
        "base": {"version": "1.2.0", "deployUser": "easy", "deployDir": "/home/easy/ds"},
        "roles": [{"roleName": "database", "roleBody": {"databaseType": "mysql",
            "databaseName": "dolphinscheduler", "account": "easy", "password": "easy"},
            "roleDependHost": ["192.167.8.141"]}], "remark": "ansible test 1"});
    let why = refused(
        &node,
        "POST",
        "/api/v1/createCluster",
        &seed_request.to_string(),
    );
    assert!(
        why.contains("roles[0].roleBody") && why.contains("database"),
        "{why}"
    );
    let mut unknown = body.clone();
    unknown["hosts"] = json!(["192.167.8.141"]);
    let why = refused(&node, "POST", "/api/v1/createCluster", &unknown.to_string());
    assert!(
        why.contains("hosts") && why.contains("192.167.8.141"),
        "{why}"
    );
    let mut twice = body.clone();
    twice["roles"] = json!([role("app", "/x"), role("app", "/y")]);
    let why = refused(&node, "POST", "/api/v1/createCluster", &twice.to_string());
    assert!(
        why.contains("roles[1].roleName") && why.contains("twice"),
        "{why}"
    );

    // Create: the seed's envelope with a null result; the list and selectCluster give it
    // back in the seed's shape, with workStatus and deployStatus.
    assert!(ok(&node, "POST", "/api/v1/createCluster", &body.to_string()).is_null());
    let list = ok(&node, "GET", "/api/v1/selectClusterList?page=1", "");
    assert_eq!(list["currentPage"], 1);
    assert_eq!(list["total"], 1);
    let created = list["data"][0].clone();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(
        id.len() == 8 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(created["name"], "<b>web</b> logs");
    assert_eq!(created["remark"], "<script>alert(1)</script>");
    assert_eq!(created["status"], "prepare");
    assert_eq!(created["workStatus"], false);
    assert_eq!(created["deployStatus"], false);
    assert_eq!(created["hosts"], json!(["test-node"]));
    assert_eq!(created["base"], body["base"]);
    assert_eq!(created["roles"][0]["roleName"], "app");
    assert_eq!(
        created["roles"][0]["roleBody"]["senders"][0]["password"], "******",
        "secrets are masked on read"
    );
    assert!(!created.to_string().contains("hunter2"), "{created}");
    assert_eq!(created["roles"][0]["roleDependHost"], json!(["127.0.0.1"]));
    let selected = ok(
        &node,
        "POST",
        "/api/v1/selectCluster",
        &json!({"id": id}).to_string(),
    );
    assert_eq!(selected, created);
    let why = refused(
        &node,
        "POST",
        "/api/v1/selectCluster",
        r#"{"id": "00000000"}"#,
    );
    assert!(why.contains("00000000"), "{why}");
    let (_, empty) = node.get("/api/v1/selectClusterList?page=2");
    assert_eq!(empty["result"]["data"], json!([]));

    // prepare allows deploy and delete only.
    let why = refused(
        &node,
        "POST",
        "/api/v1/executeCluster",
        &json!({"executeType": 0, "clusterId": id}).to_string(),
    );
    assert!(
        why.contains("prepare") && why.contains("deploy, delete"),
        "{why}"
    );
    let mut edit = created.clone();
    edit["remark"] = json!("edited");
    let why = refused(&node, "POST", "/api/v1/createCluster", &edit.to_string());
    assert!(
        why.contains("cannot edit") && why.contains("prepare"),
        "{why}"
    );
    let why = refused(
        &node,
        "POST",
        "/api/v1/executeCluster",
        &json!({"executeType": "7", "clusterId": id}).to_string(),
    );
    assert!(why.contains("executeType"), "{why}");

    // The plan: the files the node's glob matches now, and what the deploy adds.
    let (status, plan) = node.get(&format!("/api/v1/deployments/{id}/plan"));
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        plan["nodes"]["test-node"]["files"]["app"],
        json!([log.display().to_string()])
    );
    assert_eq!(plan["diff"]["added"]["test-node"], json!(["app"]));

    // Deploy (executeType as a string, as the seed's table says): the runner is written,
    // stopped; the log pages hold what happened.
    execute(&node, &id, json!("2"));
    let signal = wait_over(&node);
    assert_eq!(
        signal,
        json!({"singnalType": "deployupdate", "success": true, "over": true})
    );
    let deployed = the_one(&node);
    assert_eq!(deployed["status"], "deploysuccess");
    assert_eq!(deployed["deployStatus"], true);
    assert_eq!(deployed["workStatus"], false);
    let lines = log_lines(&node);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("node test-node | runner app: added")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("matches 1 file(s)")),
        "{lines:?}"
    );
    assert!(
        lines[0].len() > 23 && lines[0].as_bytes()[4] == b'-' && lines[0].as_bytes()[19] == b',',
        "timestamped like the seed's log: {}",
        lines[0]
    );
    assert_eq!(runner_state(&node, "app").map(|r| r.0), Some(true));

    // deploysuccess → cancel (the whole JSON with status cancel) → edit → prepare.
    let mut cancel = deployed.clone();
    cancel["status"] = json!("cancel");
    ok(&node, "POST", "/api/v1/createCluster", &cancel.to_string());
    assert_eq!(the_one(&node)["status"], "cancel");
    let why = refused(
        &node,
        "POST",
        "/api/v1/executeCluster",
        &json!({"executeType": 2, "clusterId": id}).to_string(),
    );
    assert!(why.contains("cancel") && why.contains("edit"), "{why}");
    let mut edited = the_one(&node);
    edited["remark"] = json!("second revision");
    ok(&node, "POST", "/api/v1/createCluster", &edited.to_string());
    let edited = the_one(&node);
    assert_eq!(edited["status"], "prepare");
    assert_eq!(edited["remark"], "second revision");

    // Redeploy: nothing changed in the roles, so nothing is touched; then start.
    execute(&node, &id, json!(2));
    assert_eq!(wait_over(&node)["success"], true);
    assert!(
        log_lines(&node)
            .iter()
            .any(|l| l.contains("runner app: unchanged"))
    );
    execute(&node, &id, json!(0));
    assert_eq!(
        wait_over(&node),
        json!({"singnalType": "start", "success": true, "over": true})
    );
    let started = the_one(&node);
    assert_eq!(started["status"], "startsuccess");
    assert_eq!(started["workStatus"], true);
    let (stopped, state) = runner_state(&node, "app").unwrap();
    assert!(!stopped && state == "running", "{state}");
    node.wait_for_count("deployline", 50);

    // A started deployment cannot be deleted or edited.
    let why = refused(
        &node,
        "POST",
        "/api/v1/deleteCluster",
        &json!({"id": id}).to_string(),
    );
    assert!(
        why.contains("startsuccess") && why.contains("stop"),
        "{why}"
    );

    // A second deployment cannot start while this one runs (one started at a time).
    let other = json!({"name": "other", "hosts": [], "roles": [
        {"roleName": "side", "roleBody": {"reader": {"mode": "http"}, "parser": {"type": "raw"}},
         "roleDependHost": ["test-node"]}]});
    let (status, second) = node.send("POST", "/api/v1/deployments", &other.to_string());
    assert_eq!(status, 201, "{second}");
    let second_id = second["id"].as_str().unwrap().to_string();
    let (status, _) = node.send(
        "POST",
        &format!("/api/v1/deployments/{second_id}/execute"),
        r#"{"executeType": 2}"#,
    );
    assert_eq!(status, 202);
    assert_eq!(wait_over(&node)["success"], true);
    let (status, refusal) = node.send(
        "POST",
        &format!("/api/v1/deployments/{second_id}/execute"),
        r#"{"executeType": 0}"#,
    );
    assert_eq!(status, 409, "{refusal}");
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("is started") && message.contains("stop it first"),
        "{message}"
    );

    // Stop, edit (a second role), redeploy: only the new runner is added.
    execute(&node, &id, json!(1));
    assert_eq!(wait_over(&node)["singnalType"], "stop");
    assert_eq!(the_one(&node)["status"], "stopsuccess");
    assert_eq!(runner_state(&node, "app").map(|r| r.0), Some(true));
    let mut grown = ok(
        &node,
        "POST",
        "/api/v1/selectCluster",
        &json!({"id": id}).to_string(),
    );
    grown["roles"].as_array_mut().unwrap().push(
        json!({"roleName": "api", "roleBody": {"reader": {"mode": "http"}},
                     "roleDependHost": ["test-node"]}),
    );
    ok(&node, "POST", "/api/v1/createCluster", &grown.to_string());
    execute(&node, &id, json!(2));
    assert_eq!(wait_over(&node)["success"], true);
    let lines = log_lines(&node);
    assert!(
        lines.iter().any(|l| l.contains("runner api: added")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("runner app: unchanged")),
        "{lines:?}"
    );
    assert!(runner_state(&node, "api").is_some());

    // Cancel, drop the role, redeploy: exactly that runner is removed.
    let mut cancel = the_one_by_id(&node, &id);
    cancel["status"] = json!("cancel");
    ok(&node, "POST", "/api/v1/createCluster", &cancel.to_string());
    let mut shrunk = the_one_by_id(&node, &id);
    shrunk["roles"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["roleName"] != "api");
    ok(&node, "POST", "/api/v1/createCluster", &shrunk.to_string());
    execute(&node, &id, json!(2));
    assert_eq!(wait_over(&node)["success"], true);
    let lines = log_lines(&node);
    assert!(
        lines.iter().any(|l| l.contains("runner api: removed")),
        "{lines:?}"
    );
    assert!(runner_state(&node, "api").is_none());
    assert!(runner_state(&node, "app").is_some());

    // A runner made by hand stays when the deployment goes.
    node.add_runner(&node.runner_json("manual", "manual.log", "raw"));

    // Delete: the deployment and the runners it owns go.
    ok(
        &node,
        "POST",
        "/api/v1/deleteCluster",
        &json!({"id": id}).to_string(),
    );
    assert!(runner_state(&node, "app").is_none());
    assert!(runner_state(&node, "api").is_none());
    assert!(runner_state(&node, "manual").is_some());
    let list = ok(&node, "GET", "/api/v1/selectClusterList?page=1", "");
    assert_eq!(list["total"], 1);

    // Every change is in the audit trail (written through the queue: wait for it).
    for wanted in [
        format!("deployment.create {id}: ok"),
        format!("deployment.deployupdate {id}: ok"),
        format!("deployment.start {id}: ok"),
        format!("deployment.stop {id}: ok"),
        format!("deployment.delete {id}: ok"),
        format!("deployment.start {second_id}: refused"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = node.get("/api/v1/audit?limit=1000&from=-1d");
            let found = status == 200
                && body["hits"].as_array().is_some_and(|hits| {
                    hits.iter()
                        .any(|hit| hit["message"].as_str().unwrap_or("").contains(&wanted))
                });
            if found {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the audit has no {wanted:?}: {body}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A role whose path this node's allowlist refuses fails the deploy, naming the node and
/// the path; nothing is written. A role over a runner made by hand, and a node older than
/// `base.version`, are refused too.
#[test]
fn a_deploy_the_node_refuses_writes_nothing() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("manual", "manual.log", "raw"));
    let outside = node.root.path().join("elsewhere").join("x.log");
    let body = json!({"name": "bad", "base": {"version": "99.0.0"}, "roles": [
        {"roleName": "outside", "roleBody": {"reader": {"mode": "file", "log_path": outside}},
         "roleDependHost": ["test-node"]},
        {"roleName": "manual", "roleBody": {"reader": {"mode": "http"}},
         "roleDependHost": ["test-node"]}]});
    let (status, created) = node.send("POST", "/api/v1/deployments", &body.to_string());
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (status, _) = node.send(
        "POST",
        &format!("/api/v1/deployments/{id}/execute"),
        r#"{"executeType": 2}"#,
    );
    assert_eq!(status, 202);
    let signal = wait_over(&node);
    assert_eq!(signal["success"], false, "{signal}");
    let (_, got) = node.get(&format!("/api/v1/deployments/{id}"));
    assert_eq!(got["status"], "deployfailure");
    let (_, log) = node.get(&format!("/api/v1/deployments/{id}/log?page=1"));
    let text = log["data"].to_string();
    assert!(
        text.contains("node test-node refuses runner outside")
            && text.contains(&outside.display().to_string()),
        "{text}"
    );
    assert!(
        text.contains("runner manual that this deployment does not own"),
        "{text}"
    );
    assert!(text.contains("base.version asks for 99.0.0"), "{text}");
    assert!(
        runner_state(&node, "outside").is_none(),
        "nothing was written"
    );
    // The CLI says the same.
    let url = node.url("");
    let cli = |args: &[&str]| {
        node.cli(
            &[
                &["deploy"][..],
                args,
                &["--url", &url, "--token", &node.token],
            ]
            .concat(),
            "",
        )
    };
    let listed = cli(&["list"]);
    assert!(
        listed.contains(&id) && listed.contains("deployfailure"),
        "{listed}"
    );
    let logged = cli(&["log", &id]);
    assert!(logged.contains("refuses runner outside"), "{logged}");
    let (_, manual) = node.get("/api/v1/runners/manual");
    assert_eq!(
        manual["config"]["reader"]["mode"], "tailx",
        "the hand-made runner is untouched"
    );
}

/// Three nodes that may all read `shared/**` too.
fn cluster3(shared: &std::path::Path) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for (name, tag) in [("alpha", "web"), ("beta", "web"), ("gamma", "db")] {
        let mut node = Node::member(name, tag, nodes.first(), "");
        node.allow_also(&format!("{}/**", shared.display()));
        node.start();
        nodes.push(node);
    }
    for node in &nodes {
        node.wait_members(3);
    }
    nodes
}

/// The runners a node has, with whether each is stopped.
fn runners_of(node: &Node) -> std::collections::BTreeMap<String, bool> {
    let (_, value) = node.get("/api/v1/runners");
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["config"]["stopped"] == true,
            )
        })
        .collect()
}

fn wait_signal(node: &Node, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let (status, signal) = node.get(&format!("/api/v1/deployments/{id}/signal"));
        if status == 200 && signal["over"] == true {
            return signal;
        }
        assert!(
            Instant::now() < deadline,
            "the execution never ended: {signal}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Three nodes: a role for a tag and one for a named node land on exactly those nodes, are
/// started and searched, stopped, edited and redeployed (only the changed runner is touched),
/// and deleted. Then the node running a start is killed midway: another node fails the
/// execution (its log says why) and the deployment is in a state the table allows.
#[test]
fn three_nodes_deploy_by_tag_and_name_and_a_killed_executor_is_taken_over() {
    // One file at one path, as on a fleet of machines (here they share it: each node that
    // runs the role reads it, and its lines carry that node's name).
    let shared = tempfile::tempdir().unwrap();
    let web_log = shared.path().join("web.log");
    append_lines(&web_log, numbered("fleetline", 0..20));
    let pattern = web_log.display().to_string();
    let mut nodes = cluster3(shared.path());
    let body = json!({"name": "fleet", "hosts": ["tag:web", "gamma"], "roles": [
        {"roleName": "weblog", "roleBody": {"reader": {"mode": "tailx", "log_path": pattern,
            "read_from": "oldest"}, "parser": {"type": "raw"}}, "roleDependHost": ["tag:web"]},
        {"roleName": "dbin", "roleBody": {"reader": {"mode": "http"}, "parser": {"type": "raw"}},
         "roleDependHost": ["gamma"]}]});
    let (status, created) = nodes[0].send("POST", "/api/v1/deployments", &body.to_string());
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // Any node serves the same deployment; the plan lists each node's own file.
    let (_, from_gamma) = nodes[2].get(&format!("/api/v1/deployments/{id}"));
    assert_eq!(from_gamma["name"], "fleet");
    let (status, plan) = nodes[1].get(&format!("/api/v1/deployments/{id}/plan"));
    assert_eq!(status, 200, "{plan}");
    for name in ["alpha", "beta"] {
        let files = &plan["nodes"][name]["files"]["weblog"];
        assert_eq!(files, &json!([pattern]), "{plan}");
    }
    assert!(
        plan["nodes"]["gamma"]["files"].get("weblog").is_none(),
        "{plan}"
    );

    // Deploy through beta, start through gamma: the runners run exactly where they belong.
    let execute = |node: &Node, execute_type: u8| {
        let (status, answer) = node.send(
            "POST",
            &format!("/api/v1/deployments/{id}/execute"),
            &json!({"executeType": execute_type}).to_string(),
        );
        assert_eq!(status, 202, "{answer}");
    };
    execute(&nodes[1], 2);
    assert_eq!(wait_signal(&nodes[0], &id)["success"], true);
    execute(&nodes[2], 0);
    assert_eq!(wait_signal(&nodes[2], &id)["success"], true);
    // For the record (no assertion on time): the start's log, with its timestamps.
    let (_, start_log) = nodes[2].get(&format!("/api/v1/deployments/{id}/log?page=1"));
    eprintln!("start log: {:#}", start_log["data"]);
    let expected = |node: usize| -> Vec<&str> {
        match node {
            0 | 1 => vec!["weblog"],
            _ => vec!["dbin"],
        }
    };
    for (i, node) in nodes.iter().enumerate() {
        let have = runners_of(node);
        assert_eq!(
            have.keys().map(String::as_str).collect::<Vec<_>>(),
            expected(i),
            "{}",
            node.url("")
        );
        assert!(have.values().all(|stopped| !stopped));
    }
    // Searched from gamma: the lines from alpha and from beta, none from gamma.
    nodes[2].wait_for_count("fleetline", 40);
    for (name, count) in [("alpha", 20), ("beta", 20), ("gamma", 0)] {
        let (_, found) = nodes[2].get(&format!("/api/v1/search?q=fleetline&nodes={name}&limit=1"));
        assert_eq!(found["total"], count, "{name}: {found}");
    }

    // Stop, edit the tag role, redeploy: only weblog is touched, dbin is unchanged.
    execute(&nodes[0], 1);
    assert_eq!(wait_signal(&nodes[0], &id)["success"], true);
    let (_, mut current) = nodes[0].get(&format!("/api/v1/deployments/{id}"));
    current["roles"][0]["roleBody"]["reader"]["read_from"] = json!("newest");
    let (status, edited) = nodes[0].send(
        "PUT",
        &format!("/api/v1/deployments/{id}"),
        &current.to_string(),
    );
    assert_eq!(status, 200, "{edited}");
    execute(&nodes[1], 2);
    assert_eq!(wait_signal(&nodes[1], &id)["success"], true);
    let mut lines = Vec::new();
    for page in 1.. {
        let (_, log) = nodes[1].get(&format!("/api/v1/deployments/{id}/log?page={page}"));
        let data = log["data"].as_array().unwrap().clone();
        if data.is_empty() {
            break;
        }
        lines.extend(data.into_iter().map(|l| l.as_str().unwrap().to_string()));
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("node alpha | runner weblog: changed")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("node beta | runner weblog: changed")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("node gamma | runner dbin: unchanged")),
        "{lines:?}"
    );

    // The node running an execution dies midway: beta is down, so a start through gamma
    // waits for it; gamma is killed and beta comes back (a quorum again); another node
    // fails the execution with the reason.
    nodes[1].kill();
    execute(&nodes[2], 0);
    // While it runs, every other action on every deployment is refused, naming it.
    let (status, refusal) = nodes[0].send(
        "POST",
        "/api/v1/deployments",
        &json!({"name": "meanwhile", "roles": []}).to_string(),
    );
    assert_eq!(status, 409, "{refusal}");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("an execution runs: start of deployment")),
        "{refusal}"
    );
    nodes[2].kill();
    nodes[1].start();
    let signal = wait_signal(&nodes[0], &id);
    assert_eq!(signal["over"], true);
    assert_eq!(signal["success"], false, "{signal}");
    let (_, after) = nodes[0].get(&format!("/api/v1/deployments/{id}"));
    assert_eq!(after["status"], "startfailure", "{after}");
    let (_, log) = nodes[0].get(&format!("/api/v1/deployments/{id}/log?page=1"));
    eprintln!("taken-over start log: {:#}", log["data"]);
    let text = log.to_string();
    assert!(
        text.contains("node gamma, which ran this execution, stopped"),
        "{text}"
    );
    // startfailure allows start and delete: the deployment is deleted, with its runners.
    nodes[2].start();
    for node in &nodes {
        node.wait_members(3);
    }
    let (status, answer) = nodes[0].send("DELETE", &format!("/api/v1/deployments/{id}"), "");
    assert_eq!(status, 204, "{answer}");
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !runners_of(node).is_empty() {
            assert!(
                Instant::now() < deadline,
                "runners left on {}",
                node.url("")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Every (state, action) pair of seed 002 through the API: a deployment is put in each state
/// (written into the config store as a member would), then each action is asked of it; it is
/// refused (409, naming the state and what it allows) exactly when seed 002's list says so.
#[test]
fn every_state_and_action_through_the_api_follows_seed_002() {
    let mut alpha = Node::member("alpha", "t", None, "[deploy]\none_started = false\n");
    alpha.start();
    let mut beta = Node::member("beta", "t", Some(&alpha), "[deploy]\none_started = false\n");
    beta.start();
    let view = alpha.wait_members(2);
    beta.wait_members(2);
    let raft_id = |name: &str| crate::harness::raft_id(&view, name);
    let (alpha_id, beta_id) = (raft_id("alpha"), raft_id("beta"));
    let secret = alpha.cluster_secret();
    // Written through the leader's member route, naming the other member as the origin
    // (whichever node leads now: leadership may move on a loaded machine).
    let put_in_state = |id: &str, state: &str| {
        let record = json!({"id": id, "name": format!("table {id}"), "status": state,
            "hosts": [], "base": {"version": "", "deployUser": "", "deployDir": ""},
            "roles": [], "remark": "", "revision": 1});
        let ops = json!([{"op": "put", "key": format!("deploy/deployments/{id}"),
                          "value": record.to_string()}]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for (target, origin) in [(&alpha, beta_id), (&beta, alpha_id)] {
                let written = reqwest::blocking::Client::new()
                    .post(target.url("/internal/v1/store/txn"))
                    .header("x-lograft-cluster-secret", &secret)
                    .header("x-lograft-origin-node", origin.to_string())
                    .json(&ops)
                    .send()
                    .is_ok_and(|response| response.status() == 200);
                if written {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no leader took the write");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let table: [(&str, &[&str]); 8] = [
        ("prepare", &["deploy", "delete"]),
        ("cancel", &["edit"]),
        ("deploysuccess", &["start", "stop", "delete", "cancel"]),
        ("deployfailure", &["deploy", "edit", "delete"]),
        ("startsuccess", &["stop"]),
        ("startfailure", &["start", "delete"]),
        ("stopsuccess", &["edit", "deploy", "delete"]),
        ("stopfailure", &["stop"]),
    ];
    let actions = ["edit", "deploy", "start", "stop", "delete", "cancel"];
    let mut n = 0;
    for (state, allowed) in table {
        for action in actions {
            n += 1;
            let id = format!("{n:08x}");
            put_in_state(&id, state);
            let node = if n % 2 == 0 { &alpha } else { &beta };
            let path = format!("/api/v1/deployments/{id}");
            // Reads are linearizable: the record is there on either node.
            let (status, got) = node.get(&path);
            assert_eq!(
                (status, got["status"].as_str()),
                (200, Some(state)),
                "{got}"
            );
            let body = |status: &str| {
                json!({"name": format!("table {id}"), "status": status, "roles": []}).to_string()
            };
            let (status, answer) = match action {
                "edit" => node.send("PUT", &path, &body(state)),
                "cancel" => node.send("PUT", &path, &body("cancel")),
                "delete" => node.send("DELETE", &path, ""),
                execute => {
                    let kind = match execute {
                        "start" => 0,
                        "stop" => 1,
                        _ => 2,
                    };
                    node.send(
                        "POST",
                        &format!("{path}/execute"),
                        &json!({"executeType": kind}).to_string(),
                    )
                }
            };
            // In `cancel`, the page's whole JSON with `status: "cancel"` is the edit that
            // cancel allows (seed 002 sends the same shape for both).
            let expect_allowed =
                allowed.contains(&action) || (state == "cancel" && action == "cancel");
            if expect_allowed {
                assert!(
                    (200..300).contains(&status),
                    "{action} in {state} is allowed: {status} {answer}"
                );
            } else {
                assert_eq!(status, 409, "{action} in {state} is refused: {answer}");
                let message = answer["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains(state) && allowed.iter().all(|a| message.contains(a)),
                    "{message}"
                );
            }
            if matches!(action, "deploy" | "start" | "stop") && expect_allowed {
                let signal = wait_signal(node, &id);
                assert_eq!(signal["success"], true, "{action} in {state}: {signal}");
            }
        }
    }
}
