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
    let role = |name: &str, path: &str| {
        json!({"roleName": name,
               "roleBody": {"reader": {"mode": "file", "log_path": path, "read_from": "oldest"},
                            "parser": {"type": "raw"}},
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
}

/// A role whose path this node's allowlist refuses fails the deploy, naming the node and
/// the path; nothing is written. A role over a runner made by hand is refused too.
#[test]
fn a_deploy_the_node_refuses_writes_nothing() {
    let mut node = Node::new("", "");
    node.start();
    node.add_runner(&node.runner_json("manual", "manual.log", "raw"));
    let outside = node.root.path().join("elsewhere").join("x.log");
    let body = json!({"name": "bad", "roles": [
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
