//! logkit's cluster API (seed 000), literally: `/logkit/cluster/...` with the `tag` and `url`
//! filters and the `{"code":"L200","data":...}` envelope.
//!
//! logkit's masters are stateless and slaves register by heartbeat; here every node is a
//! master (voters answer `ismaster: true`), the slaves are the cluster's nodes, and every change
//! is a Raft write: a config applied to a tag is written for every node with that tag in one
//! Raft entry. Each node then reconciles its own runners, and refuses what its allowlist does
//! not permit (visible in `/logkit/cluster/status`).
//!
//! Differences a logkit user may notice, all on purpose:
//! * `register` only updates the tag of a node that is already a member (a node becomes a
//!   member by joining: `lograft cluster join`).
//! * `DELETE /logkit/cluster/slaves` removes nodes from the cluster for good (a removed node
//!   comes back by joining again, not by its next heartbeat).

use std::time::Duration;

use axum::Extension;
use axum::extract::{MatchedPath, Path, Query, State};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::logkit::{body_with_name, fail, ok, respond, status_map};
use super::runners::{keep_masked_secrets, mask_secrets};
use super::{ApiError, AppState, CLUSTER_SECRET_HEADER};
use crate::auth::Principal;
use crate::cluster::{NodeRecord, Op};
use crate::collect::{Allowlist, RunnerConfig, runner_key};

/// logkit's slave filters: empty means any.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    tag: String,
    #[serde(default)]
    url: String,
}

impl Filter {
    fn matches(&self, node: &NodeRecord) -> bool {
        (self.tag.is_empty() || node.tag == self.tag)
            && (self.url.is_empty()
                || node.url.trim_end_matches('/') == self.url.trim_end_matches('/'))
    }

    fn describe(&self) -> String {
        format!("tag={:?} url={:?}", self.tag, self.url)
    }
}

fn nodes(state: &AppState, filter: &Filter) -> Result<Vec<NodeRecord>, ApiError> {
    Ok(state
        .membership
        .nodes()?
        .into_iter()
        .filter(|n| filter.matches(n))
        .collect())
}

/// Nodes for a change: at least one must match.
fn targets(state: &AppState, filter: &Filter) -> Result<Vec<NodeRecord>, ApiError> {
    let nodes = nodes(state, filter)?;
    if nodes.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no node matches {}",
            filter.describe()
        )));
    }
    Ok(nodes)
}

pub async fn is_master(State(state): State<AppState>) -> axum::response::Response {
    ok(Value::Bool(state.membership.is_voter()))
}

#[derive(Deserialize)]
struct RegisterBody {
    url: String,
    #[serde(default)]
    tag: String,
}

/// logkit slaves register with their URL and tag; lograft nodes join instead, so this sets the
/// tag of the member at that URL.
pub async fn register(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> axum::response::Response {
    let result = async {
        let RegisterBody { url, tag } = serde_json::from_str(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid register body: {e}")))?;
        let filter = Filter {
            tag: String::new(),
            url: url.clone(),
        };
        let node = nodes(&state, &filter)?.into_iter().next().ok_or_else(|| {
            ApiError::NotFound(format!(
                "no member at {url:?}: a node becomes a member with `lograft cluster join`"
            ))
        })?;
        super::cluster::change_tag(&state, &principal.name, &node.name, &tag).await?;
        Ok(Value::Null)
    };
    respond(result.await)
}

pub async fn slaves(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> axum::response::Response {
    super::cluster::read_barrier_if_possible(&state).await;
    respond((|| {
        let views = state.membership.view()?;
        let list: Vec<Value> = nodes(&state, &filter)?
            .iter()
            .filter_map(|node| views.iter().find(|v| v.id == node.name))
            .map(|v| {
                json!({
                    "url": v.url, "tag": v.tag, "status": v.status,
                    "last_touch": v.last_heartbeat, "name": v.id,
                })
            })
            .collect();
        Ok(Value::Array(list))
    })())
}

pub async fn delete_slaves(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<Filter>,
) -> axum::response::Response {
    let result = async {
        for node in targets(&state, &filter)? {
            super::cluster::remove_member(&state, &principal.name, &node.name).await?;
        }
        Ok(Value::Null)
    };
    respond(result.await)
}

/// The union of the runner names of the matching nodes.
pub async fn runners(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> axum::response::Response {
    super::cluster::read_barrier_if_possible(&state).await;
    respond((|| {
        let mut names = std::collections::BTreeSet::new();
        for node in nodes(&state, &filter)? {
            let prefix = crate::collect::node_runner_prefix(&node.name);
            for entry in state.store.list(&prefix)? {
                names.insert(entry.key[prefix.len()..].to_string());
            }
        }
        Ok(json!(names))
    })())
}

/// Each matching node's runner status, asked of that node (lost nodes are not asked).
pub async fn status(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> axum::response::Response {
    let nodes = match nodes(&state, &filter) {
        Ok(nodes) => nodes,
        Err(err) => return fail(err),
    };
    let asks = nodes.into_iter().map(|node| {
        let state = state.clone();
        async move {
            let (status, error) = node_status(&state, &node).await;
            (
                node.url.clone(),
                json!({"status": status, "tag": node.tag, "error": error, "name": node.name}),
            )
        }
    });
    let map: Map<String, Value> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .collect();
    ok(Value::Object(map))
}

async fn node_status(state: &AppState, node: &NodeRecord) -> (Value, String) {
    if node.name == state.membership.name() {
        return (status_map(state), String::new());
    }
    if state.membership.status_of(&node.name) == "lost" {
        return (
            Value::Object(Map::new()),
            format!("node {} is lost: no heartbeat recently", node.name),
        );
    }
    let call = state
        .peers
        .client
        .get(format!("{}/internal/v1/logkit/status", node.url))
        .header(CLUSTER_SECRET_HEADER, state.peers.secret.reveal())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .and_then(|r| r.error_for_status());
    match call {
        Ok(response) => match response.json::<Value>().await {
            Ok(value) => (value, String::new()),
            Err(err) => (
                Value::Object(Map::new()),
                crate::search::remote::describe(&err),
            ),
        },
        Err(err) => (
            Value::Object(Map::new()),
            crate::search::remote::describe(&err),
        ),
    }
}

/// Node to node: this node's runner status map.
pub async fn internal_status(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(status_map(&state))
}

fn masked(value: &str) -> Value {
    let mut config: Value = serde_json::from_str(value).unwrap_or(Value::Null);
    mask_secrets(&mut config);
    config
}

/// The config `name` of the first matching node that has it.
pub async fn config(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
) -> axum::response::Response {
    super::cluster::read_barrier_if_possible(&state).await;
    respond((|| {
        for node in nodes(&state, &filter)? {
            if let Some(entry) = state.store.get(&runner_key(&node.name, &name))? {
                return Ok(masked(&entry.value));
            }
        }
        Err(ApiError::NotFound(format!(
            "no node matching {} has a runner {name:?}",
            filter.describe()
        )))
    })())
}

pub async fn configs(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> axum::response::Response {
    super::cluster::read_barrier_if_possible(&state).await;
    respond((|| {
        let mut map = Map::new();
        for node in nodes(&state, &filter)? {
            let prefix = crate::collect::node_runner_prefix(&node.name);
            let configs: Map<String, Value> = state
                .store
                .list(&prefix)?
                .into_iter()
                .map(|e| (e.key[prefix.len()..].to_string(), masked(&e.value)))
                .collect();
            map.insert(
                node.url.clone(),
                json!({"configs": configs, "tag": node.tag, "error": "", "name": node.name}),
            );
        }
        Ok(Value::Object(map))
    })())
}

/// [`validate`] off the async workers: it compiles the config's patterns.
async fn validate_blocking(body: String, name: String) -> Result<(Value, RunnerConfig), ApiError> {
    super::cpu_bound(move || validate(&body, &name)).await?
}

/// Check a config's shape here; each target node checks its own allowlist when it applies it.
fn validate(body: &str, name: &str) -> Result<(Value, RunnerConfig), ApiError> {
    let value = body_with_name(body, name)?;
    let anywhere = Allowlist::new(vec!["/**".into()]).expect("valid glob");
    let config = RunnerConfig::parse(&value.to_string(), &anywhere)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if config.name.starts_with('_') {
        return Err(ApiError::BadRequest(format!(
            "runner names starting with '_' are reserved for lograft ({name:?})"
        )));
    }
    Ok((value, config))
}

async fn audit(state: &AppState, principal: &Principal, action: &str, name: &str, filter: &Filter) {
    state
        .audit
        .record(
            &principal.name,
            &format!("cluster.runner.{action}"),
            &format!("{name} ({})", filter.describe()),
            "ok",
            None,
        )
        .await;
}

/// Add runner `name` to every matching node, in one Raft entry; refused if any has it.
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
    body: String,
) -> axum::response::Response {
    let result = async {
        let (_, config) = validate_blocking(body, name.clone()).await?;
        let json = serde_json::to_string(&config).expect("config serializes");
        let ops = targets(&state, &filter)?
            .iter()
            .map(|node| Op::Put {
                key: runner_key(&node.name, &name),
                value: json.clone(),
                expected: Some(0),
            })
            .collect();
        state
            .store
            .txn(ops)
            .await?
            .into_result()
            .map_err(|err| match err {
                crate::cluster::StoreError::Conflict { key, .. } => {
                    ApiError::Conflict(format!("runner {name:?} already exists ({key})"))
                }
                other => other.into(),
            })?;
        audit(&state, &principal, "create", &name, &filter).await;
        Ok(Value::Null)
    };
    respond(result.await)
}

/// Change runner `name` on every matching node that has it (all or none).
async fn change_each(
    state: &AppState,
    filter: &Filter,
    name: &str,
    change: impl Fn(RunnerConfig) -> Result<RunnerConfig, ApiError>,
) -> Result<(), ApiError> {
    let mut ops = Vec::new();
    let mut missing = Vec::new();
    for node in targets(state, filter)? {
        let key = runner_key(&node.name, name);
        match state.store.get(&key)? {
            Some(entry) => {
                let old: RunnerConfig = serde_json::from_str(&entry.value)
                    .map_err(|e| ApiError::Internal(format!("{key}: {e}")))?;
                let new = change(old)?;
                ops.push(Op::Put {
                    key,
                    value: serde_json::to_string(&new).expect("config serializes"),
                    expected: Some(entry.mod_revision),
                });
            }
            None => missing.push(node.name),
        }
    }
    if ops.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no node matching {} has a runner {name:?}",
            filter.describe()
        )));
    }
    if !missing.is_empty() {
        tracing::info!(runner = name, nodes = ?missing, "runner absent on some matching nodes; changed where present");
    }
    state.store.txn(ops).await?.into_result()?;
    Ok(())
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
    body: String,
) -> axum::response::Response {
    let result = async {
        let (value, _) = validate_blocking(body, name.clone()).await?;
        change_each(&state, &filter, &name, |old| {
            let mut new = value.clone();
            keep_masked_secrets(&mut new, &serde_json::to_value(&old).unwrap_or_default());
            let mut config: RunnerConfig = serde_json::from_value(new.clone())
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            config.stopped = new.get("stopped").is_some_and(|v| v == true)
                || (new.get("stopped").is_none() && old.stopped);
            config.reset_epoch = config.reset_epoch.max(old.reset_epoch);
            Ok(config)
        })
        .await?;
        audit(&state, &principal, "replace", &name, &filter).await;
        Ok(Value::Null)
    };
    respond(result.await)
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
) -> axum::response::Response {
    let result = async {
        let ops: Vec<Op> = targets(&state, &filter)?
            .iter()
            .map(|node| Op::Delete {
                key: runner_key(&node.name, &name),
                expected: None,
            })
            .collect();
        let outcome = state.store.txn(ops).await?.into_result()?;
        if outcome.is_none() {
            return Err(ApiError::NotFound(format!(
                "no node matching {} has a runner {name:?}",
                filter.describe()
            )));
        }
        audit(&state, &principal, "delete", &name, &filter).await;
        Ok(Value::Null)
    };
    respond(result.await)
}

/// `start`, `stop` and `reset` (the last segment of the route): a change of the desired
/// state on every matching node that has the runner.
pub async fn set_state(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    matched: MatchedPath,
    Path(name): Path<String>,
    Query(filter): Query<Filter>,
) -> axum::response::Response {
    let action = matched
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let result = async {
        change_each(&state, &filter, &name, |mut config| {
            match action.as_str() {
                "start" => config.stopped = false,
                "stop" => config.stopped = true,
                "reset" => config.reset_epoch += 1,
                other => return Err(ApiError::NotFound(format!("no action {other:?}"))),
            }
            Ok(config)
        })
        .await?;
        audit(&state, &principal, &action, &name, &filter).await;
        Ok(Value::Null)
    };
    respond(result.await)
}

#[derive(Deserialize)]
struct TagBody {
    tag: String,
}

/// Master API: set the tag of the matching nodes.
pub async fn slaves_tag(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Query(filter): Query<Filter>,
    body: String,
) -> axum::response::Response {
    let result = async {
        let TagBody { tag } = serde_json::from_str(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
        for node in targets(&state, &filter)? {
            super::cluster::change_tag(&state, &principal.name, &node.name, &tag).await?;
        }
        Ok(Value::Null)
    };
    respond(result.await)
}

/// Slave API: set this node's tag.
pub async fn own_tag(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> axum::response::Response {
    let result = async {
        let TagBody { tag } = serde_json::from_str(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid body: {e}")))?;
        let own_name = state.membership.name().to_string();
        super::cluster::change_tag(&state, &principal.name, &own_name, &tag).await?;
        Ok(Value::Null)
    };
    respond(result.await)
}
