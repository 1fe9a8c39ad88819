//! Deployments: seed 002's "clusters" applied to log collection. A deployment is a named,
//! versioned bundle of runner configs (its `roles`) bound to nodes, rolled out (deploy),
//! started and stopped as one unit, under seed 002's state machine.
//!
//! ```text
//! deploy/deployments/<id>   -> Deployment (JSON, seed 002's shape plus what lograft keeps)
//! deploy/executions/<id>    -> Execution: the last execution of that deployment, with its log
//! deploy/last               -> the id of the deployment whose execution ran last (readLog)
//! deploy/owned/<node>/<runner> -> "deployment:<id>@<revision>": who wrote that runner
//! leases/deploy             -> the lease of the node running an execution (one at a time)
//! ```
//!
//! Everything lives in the cluster's config store through the [`ConfigStore`] seam, so every
//! node serves the same list and any node can take an execution over.

pub mod exec;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::{ConfigStore, NodeRecord, StoreError};

pub const DEPLOY_PREFIX: &str = "deploy/";
pub const DEPLOYMENTS_PREFIX: &str = "deploy/deployments/";
pub const EXECUTIONS_PREFIX: &str = "deploy/executions/";
pub const LAST_KEY: &str = "deploy/last";
pub const OWNED_PREFIX: &str = "deploy/owned/";
/// The lease an execution is held by.
pub const LEASE: &str = "deploy";

/// Seed 002's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Prepare,
    Deploysuccess,
    Deployfailure,
    Startsuccess,
    Startfailure,
    Stopsuccess,
    Stopfailure,
    Cancel,
}

pub const STATES: [State; 8] = [
    State::Prepare,
    State::Deploysuccess,
    State::Deployfailure,
    State::Startsuccess,
    State::Startfailure,
    State::Stopsuccess,
    State::Stopfailure,
    State::Cancel,
];

/// What a user can ask of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Edit,
    Deploy,
    Start,
    Stop,
    Delete,
    Cancel,
}

pub const ACTIONS: [Action; 6] = [
    Action::Edit,
    Action::Deploy,
    Action::Start,
    Action::Stop,
    Action::Delete,
    Action::Cancel,
];

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Prepare => "prepare",
            State::Deploysuccess => "deploysuccess",
            State::Deployfailure => "deployfailure",
            State::Startsuccess => "startsuccess",
            State::Startfailure => "startfailure",
            State::Stopsuccess => "stopsuccess",
            State::Stopfailure => "stopfailure",
            State::Cancel => "cancel",
        }
    }

    /// Seed 002's permission lists (状态权限解释), with `cancel` also allowed in
    /// `deploysuccess` as its flow text says (部署成功 ... 请点击取消按钮).
    pub fn allows(self) -> &'static [Action] {
        use Action::*;
        match self {
            State::Prepare => &[Deploy, Delete],
            State::Cancel => &[Edit],
            State::Deploysuccess => &[Start, Stop, Delete, Cancel],
            State::Deployfailure => &[Deploy, Edit, Delete],
            State::Startsuccess => &[Stop],
            State::Startfailure => &[Start, Delete],
            State::Stopsuccess => &[Edit, Deploy, Delete],
            State::Stopfailure => &[Stop],
        }
    }

    /// Seed 002's 启动 (work) and 部署 (deploy) flags.
    pub fn work_status(self) -> bool {
        self == State::Startsuccess
    }

    pub fn deploy_status(self) -> bool {
        matches!(
            self,
            State::Deploysuccess
                | State::Startsuccess
                | State::Startfailure
                | State::Stopsuccess
                | State::Stopfailure
        )
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::Deploy => "deploy",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Delete => "delete",
            Action::Cancel => "cancel",
        }
    }
}

/// Why a request about deployments was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Invalid(String),
    #[error("deployment {0:?} does not exist")]
    NotFound(String),
    /// The state does not allow the action (409), or an execution runs (409).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Check `action` against `state`: the refusal names the state and what it allows.
pub fn check(state: State, action: Action) -> Result<(), DeployError> {
    if state.allows().contains(&action) {
        return Ok(());
    }
    let allowed: Vec<&str> = state.allows().iter().map(|a| a.as_str()).collect();
    Err(DeployError::Refused(format!(
        "cannot {} a deployment in state {}: it allows {}",
        action.as_str(),
        state.as_str(),
        allowed.join(", ")
    )))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Base {
    /// The lowest lograft version the target nodes must run.
    #[serde(default)]
    pub version: String,
    /// Kept and echoed (seed 002's page sends them); lograft does not use them.
    #[serde(default)]
    pub deploy_user: String,
    #[serde(default)]
    pub deploy_dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    /// The runner's name.
    pub role_name: String,
    /// The runner config (logkit's shape), validated as `/api/v1/runners` validates it.
    pub role_body: Value,
    /// Node names, node IPs or `tag:<tag>`.
    #[serde(default)]
    pub role_depend_host: Vec<String>,
}

/// A deployment as seed 002 sends and reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: Option<State>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub base: Base,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub remark: String,
    /// Content revision: raised by every edit.
    #[serde(default)]
    pub revision: u64,
    /// What the last successful deploy wrote: (node, runner) -> runner config JSON.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deployed: BTreeMap<String, BTreeMap<String, Value>>,
    /// The revision the last successful deploy rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_revision: Option<u64>,
}

impl Deployment {
    pub fn state(&self) -> State {
        self.status.unwrap_or(State::Prepare)
    }

    /// Seed 002's JSON plus `workStatus` and `deployStatus`, with secrets masked.
    pub fn view(&self) -> Value {
        let mut roles = Vec::new();
        for role in &self.roles {
            let mut body = role.role_body.clone();
            crate::collect::config::mask_secrets(&mut body);
            roles.push(serde_json::json!({
                "roleName": role.role_name,
                "roleBody": body,
                "roleDependHost": role.role_depend_host,
            }));
        }
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "status": self.state().as_str(),
            "hosts": self.hosts,
            "base": self.base,
            "roles": roles,
            "remark": self.remark,
            "workStatus": self.state().work_status(),
            "deployStatus": self.state().deploy_status(),
            "revision": self.revision,
            "deployedRevision": self.deployed_revision,
        })
    }
}

/// A new deployment id: 8 hex characters, as seed 002's examples.
pub fn new_id() -> String {
    let mut bytes = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse a deployment body (seed 002's shape). Unknown fields are refused by name.
pub fn parse(body: &str) -> Result<Deployment, DeployError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Incoming {
        #[serde(default)]
        id: Option<String>,
        name: String,
        #[serde(default)]
        status: Option<State>,
        #[serde(default)]
        hosts: Vec<String>,
        #[serde(default)]
        base: Base,
        #[serde(default)]
        roles: Vec<Role>,
        #[serde(default)]
        remark: String,
        // Read-only fields the page sends back as it got them.
        #[serde(default)]
        work_status: Option<bool>,
        #[serde(default)]
        deploy_status: Option<bool>,
        #[serde(default)]
        revision: Option<u64>,
        #[serde(default)]
        deployed_revision: Option<Option<u64>>,
    }
    let incoming: Incoming = serde_json::from_str(body)
        .map_err(|err| DeployError::Invalid(format!("invalid deployment: {err}")))?;
    let _ = (
        incoming.work_status,
        incoming.deploy_status,
        incoming.revision,
        incoming.deployed_revision,
    );
    let name = incoming.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(DeployError::Invalid(
            "name: 1 to 128 characters are needed".into(),
        ));
    }
    if incoming.remark.chars().count() > 4096 {
        return Err(DeployError::Invalid(
            "remark: at most 4096 characters".into(),
        ));
    }
    if !incoming.base.version.is_empty() && parse_version(&incoming.base.version).is_none() {
        return Err(DeployError::Invalid(format!(
            "base.version {:?} is not a version like 0.1.0",
            incoming.base.version
        )));
    }
    let mut names = BTreeSet::new();
    for (i, role) in incoming.roles.iter().enumerate() {
        if !names.insert(role.role_name.clone()) {
            return Err(DeployError::Invalid(format!(
                "roles[{i}].roleName: runner {:?} is used twice",
                role.role_name
            )));
        }
        if role.role_depend_host.is_empty() {
            return Err(DeployError::Invalid(format!(
                "roles[{i}].roleDependHost: role {:?} names no node (node names, IPs or tag:<tag>)",
                role.role_name
            )));
        }
    }
    Ok(Deployment {
        id: incoming.id.unwrap_or_default(),
        name,
        status: incoming.status,
        hosts: incoming.hosts,
        base: incoming.base,
        roles: incoming.roles,
        remark: incoming.remark,
        revision: 0,
        deployed: BTreeMap::new(),
        deployed_revision: None,
    })
}

/// `1.2.3` as numbers (a `-suffix` is ignored).
pub fn parse_version(version: &str) -> Option<Vec<u64>> {
    let core = version.split(['-', '+']).next()?;
    core.split('.')
        .map(|part| part.parse().ok())
        .collect::<Option<Vec<u64>>>()
        .filter(|parts| !parts.is_empty())
}

/// The runner config a role stands for, named after the role: its body with `name` set.
pub fn runner_body(role: &Role, index: usize) -> Result<String, DeployError> {
    let mut body = match &role.role_body {
        Value::Object(map) => map.clone(),
        other => {
            return Err(DeployError::Invalid(format!(
                "roles[{index}].roleBody: role {:?} must be a runner config object, not {}",
                role.role_name,
                match other {
                    Value::Null => "null",
                    Value::Array(_) => "an array",
                    _ => "a scalar",
                }
            )));
        }
    };
    if let Some(name) = body.get("name")
        && name != &Value::String(role.role_name.clone())
    {
        return Err(DeployError::Invalid(format!(
            "roles[{index}].roleBody.name: {name} differs from roleName {:?}",
            role.role_name
        )));
    }
    body.insert("name".into(), Value::String(role.role_name.clone()));
    Ok(Value::Object(body).to_string())
}

/// Check the role bodies as runner configs (fields and values; paths are each node's to
/// judge): the first error names the role and the field.
pub fn validate_roles(deployment: &Deployment) -> Result<(), DeployError> {
    let any_path =
        crate::collect::allowlist::Allowlist::new(vec!["/**".into()]).expect("a valid glob");
    for (i, role) in deployment.roles.iter().enumerate() {
        let body = runner_body(role, i)?;
        crate::collect::RunnerConfig::parse(&body, &any_path).map_err(|err| {
            DeployError::Invalid(format!(
                "roles[{i}].roleBody (role {:?}): {err}",
                role.role_name
            ))
        })?;
    }
    Ok(())
}

/// The node names `targets` (node names, IPs or `tag:<tag>`) stand for; unknown ones are an
/// error naming `field`.
pub fn resolve(
    field: &str,
    targets: &[String],
    nodes: &[NodeRecord],
) -> Result<BTreeSet<String>, DeployError> {
    let mut out = BTreeSet::new();
    for target in targets {
        let matched: Vec<&NodeRecord> = if let Some(tag) = target.strip_prefix("tag:") {
            nodes.iter().filter(|n| n.tag == tag).collect()
        } else {
            nodes
                .iter()
                .filter(|n| n.name == *target || host_of(&n.url) == Some(target.as_str()))
                .collect()
        };
        if matched.is_empty() {
            return Err(DeployError::Invalid(format!(
                "{field}: {target:?} is no node of this cluster (give node names, node IPs or tag:<tag>)"
            )));
        }
        out.extend(matched.into_iter().map(|n| n.name.clone()));
    }
    Ok(out)
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.split("://").nth(1)?;
    let authority = rest.split('/').next()?;
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next(),
        None => authority
            .rsplit_once(':')
            .map(|(host, _)| host)
            .or(Some(authority)),
    }
}

/// (node, runner) -> runner config JSON: what the deployment places where.
pub type Placement = BTreeMap<String, BTreeMap<String, Value>>;

/// Where every role goes. Role bodies must be valid (see [`validate_roles`]).
pub fn placement(deployment: &Deployment, nodes: &[NodeRecord]) -> Result<Placement, DeployError> {
    let hosts = resolve("hosts", &deployment.hosts, nodes)?;
    let mut out: Placement = BTreeMap::new();
    for (i, role) in deployment.roles.iter().enumerate() {
        let targets = resolve(
            &format!("roles[{i}].roleDependHost"),
            &role.role_depend_host,
            nodes,
        )?;
        if !deployment.hosts.is_empty()
            && let Some(outside) = targets.iter().find(|t| !hosts.contains(*t))
        {
            return Err(DeployError::Invalid(format!(
                "roles[{i}].roleDependHost: node {outside:?} is not among the deployment's hosts"
            )));
        }
        let body: Value = serde_json::from_str(&runner_body(role, i)?).expect("valid json");
        for node in targets {
            out.entry(node)
                .or_default()
                .insert(role.role_name.clone(), body.clone());
        }
    }
    Ok(out)
}

/// What a deploy would change against what is deployed, per node.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    pub added: BTreeMap<String, Vec<String>>,
    pub removed: BTreeMap<String, Vec<String>>,
    pub changed: BTreeMap<String, Vec<String>>,
    pub unchanged: BTreeMap<String, Vec<String>>,
}

pub fn diff(deployed: &Placement, planned: &Placement) -> Diff {
    let mut diff = Diff::default();
    let nodes: BTreeSet<&String> = deployed.keys().chain(planned.keys()).collect();
    let empty = BTreeMap::new();
    for node in nodes {
        let old = deployed.get(node).unwrap_or(&empty);
        let new = planned.get(node).unwrap_or(&empty);
        for (name, body) in new {
            let bucket = match old.get(name) {
                None => &mut diff.added,
                Some(before) if before != body => &mut diff.changed,
                Some(_) => &mut diff.unchanged,
            };
            bucket.entry(node.clone()).or_default().push(name.clone());
        }
        for name in old.keys().filter(|n| !new.contains_key(*n)) {
            diff.removed
                .entry(node.clone())
                .or_default()
                .push(name.clone());
        }
    }
    diff
}

/// The stored deployment `id`, with its store revision.
pub fn load(store: &dyn ConfigStore, id: &str) -> Result<(Deployment, u64), DeployError> {
    let entry = store
        .get(&format!("{DEPLOYMENTS_PREFIX}{id}"))?
        .ok_or_else(|| DeployError::NotFound(id.to_string()))?;
    let deployment = serde_json::from_str(&entry.value).map_err(|err| StoreError::Corrupt {
        key: entry.key.clone(),
        reason: err.to_string(),
    })?;
    Ok((deployment, entry.mod_revision))
}

/// Every deployment, by name then id.
pub fn list(store: &dyn ConfigStore) -> Result<Vec<Deployment>, DeployError> {
    let mut out: Vec<Deployment> = store
        .list(DEPLOYMENTS_PREFIX)?
        .into_iter()
        .filter_map(|entry| serde_json::from_str(&entry.value).ok())
        .collect();
    out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    Ok(out)
}

pub fn owner_tag(deployment: &Deployment) -> String {
    format!("deployment:{}@{}", deployment.id, deployment.revision)
}

pub fn owned_key(node: &str, runner: &str) -> String {
    format!("{OWNED_PREFIX}{node}/{runner}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (state, action) pair against seed 002's lists (状态权限解释), with `cancel` in
    /// `deploysuccess` as its flow text says.
    #[test]
    fn every_state_allows_exactly_seed_002s_actions() {
        let table: [(State, &[&str]); 8] = [
            (State::Prepare, &["deploy", "delete"]),
            (State::Cancel, &["edit"]),
            (State::Deploysuccess, &["start", "stop", "delete", "cancel"]),
            (State::Deployfailure, &["deploy", "edit", "delete"]),
            (State::Startsuccess, &["stop"]),
            (State::Startfailure, &["start", "delete"]),
            (State::Stopsuccess, &["edit", "deploy", "delete"]),
            (State::Stopfailure, &["stop"]),
        ];
        for (state, allowed) in table {
            for action in ACTIONS {
                let result = check(state, action);
                assert_eq!(
                    result.is_ok(),
                    allowed.contains(&action.as_str()),
                    "{} in {}",
                    action.as_str(),
                    state.as_str()
                );
                if let Err(err) = result {
                    let message = err.to_string();
                    assert!(message.contains(state.as_str()), "{message}");
                    for name in allowed {
                        assert!(message.contains(name), "{message}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_seeds_own_request_is_refused_naming_the_role_and_the_field() {
        let seed = r#"{"name": "myTest1", "hosts": ["192.167.8.141"],
            "base": {"version": "1.2.0", "deployUser": "easy", "deployDir": "/home/easy/ds"},
            "roles": [{"roleName": "database", "roleBody": {"databaseType": "mysql",
                "databaseName": "dolphinscheduler", "account": "easy", "password": "easy"},
                "roleDependHost": ["192.167.8.141"]}],
            "remark": "ansible test 1"}"#;
        let deployment = parse(seed).unwrap();
        let err = validate_roles(&deployment).unwrap_err().to_string();
        assert!(err.contains("roles[0].roleBody"), "{err}");
        assert!(err.contains("database"), "{err}");
        assert!(
            err.contains("databaseType") || err.contains("reader"),
            "{err}"
        );
    }

    #[test]
    fn targets_are_names_ips_or_tags_and_the_diff_says_what_changes() {
        let node = |name: &str, ip: &str, tag: &str| NodeRecord {
            id: 1,
            name: name.into(),
            url: format!("http://{ip}:7700"),
            tag: tag.into(),
            version: "0.1.0".into(),
            agent: Default::default(),
            labels: Default::default(),
        };
        let nodes = vec![
            node("alpha", "10.0.0.1", "web"),
            node("beta", "10.0.0.2", "web"),
            node("gamma", "10.0.0.3", "db"),
        ];
        let got = resolve("hosts", &["tag:web".into(), "10.0.0.3".into()], &nodes).unwrap();
        assert_eq!(got.len(), 3);
        let err = resolve("hosts", &["delta".into()], &nodes).unwrap_err();
        assert!(err.to_string().contains("\"delta\""), "{err}");

        let body = |path: &str| serde_json::json!({"name": "x", "reader": {"mode": "file", "log_path": path}});
        let old: Placement = [(
            "alpha".to_string(),
            [("x".to_string(), body("/a")), ("y".to_string(), body("/y"))].into(),
        )]
        .into();
        let new: Placement = [
            ("alpha".to_string(), [("x".to_string(), body("/b"))].into()),
            ("beta".to_string(), [("x".to_string(), body("/b"))].into()),
        ]
        .into();
        let d = diff(&old, &new);
        assert_eq!(d.changed["alpha"], vec!["x"]);
        assert_eq!(d.removed["alpha"], vec!["y"]);
        assert_eq!(d.added["beta"], vec!["x"]);
    }
}
