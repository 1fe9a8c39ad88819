//! The cluster over HTTP: Raft's RPCs and node-to-node calls under `/internal/*` (cluster
//! secret), and the operator's view under `/api/v1/cluster/*` (nodes, tags, join, leave,
//! remove).

use axum::extract::{Path, State};
use axum::{Extension, Json};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Deserialize;
use serde_json::{Value, json};

use super::users::parse_json as parse_body;
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::cluster::raft::TypeConfig;
use crate::cluster::{ConfigStore, Heartbeat, JoinRequest, NODE_PREFIX, NodeRecord, Op};

// ---- Raft RPCs ---------------------------------------------------------------------------

/// This node's Raft, when the control plane is Raft.
fn raft(state: &AppState) -> Result<&std::sync::Arc<crate::cluster::Cluster>, ApiError> {
    state
        .raft
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this node's control plane is not Raft".into()))
}

pub async fn raft_append(
    State(state): State<AppState>,
    Json(request): Json<AppendEntriesRequest<TypeConfig>>,
) -> Result<Json<Value>, ApiError> {
    let result = raft(&state)?.raft().append_entries(request).await;
    Ok(Json(serde_json::to_value(result).expect("json")))
}

pub async fn raft_vote(
    State(state): State<AppState>,
    Json(request): Json<VoteRequest<u64>>,
) -> Result<Json<Value>, ApiError> {
    let result = raft(&state)?.raft().vote(request).await;
    Ok(Json(serde_json::to_value(result).expect("json")))
}

pub async fn raft_snapshot(
    State(state): State<AppState>,
    Json(request): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Result<Json<Value>, ApiError> {
    let result = raft(&state)?.raft().install_snapshot(request).await;
    Ok(Json(serde_json::to_value(result).expect("json")))
}

// ---- node to node --------------------------------------------------------------------------

/// A write forwarded by a follower to this node (the leader).
pub async fn store_txn(
    State(state): State<AppState>,
    Json(ops): Json<Vec<Op>>,
) -> Result<Json<Value>, ApiError> {
    let result = raft(&state)?.write(ops).await?;
    Ok(Json(serde_json::to_value(result).expect("json")))
}

/// A follower's linearizable read asks the leader (this node) which revision to reach.
pub async fn read_index(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let revision = raft(&state)?.read_index_here().await?;
    Ok(Json(json!({ "revision": revision })))
}

/// A node joins through this one (it carried the cluster secret): audited here, where the
/// membership changes.
pub async fn join(
    State(state): State<AppState>,
    Json(request): Json<JoinRequest>,
) -> Result<Json<Value>, ApiError> {
    let target = format!("{} ({})", request.name, request.url);
    let result = state.membership.admit(request).await;
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    state
        .audit
        .record("cluster", "cluster.join", &target, outcome, None)
        .await;
    result
        .map(Json)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

#[derive(Deserialize)]
pub struct RemoveBody {
    name: String,
}

pub async fn internal_remove(
    State(state): State<AppState>,
    Json(body): Json<RemoveBody>,
) -> Result<Json<Value>, ApiError> {
    remove_member(&state, "cluster", &body.name).await.map(Json)
}

pub async fn heartbeat(State(state): State<AppState>, Json(beat): Json<Heartbeat>) -> Json<Value> {
    state.membership.receive_heartbeat(beat);
    Json(json!({"ok": true}))
}

// ---- operators -----------------------------------------------------------------------------

/// `?consistent=true`: answer only once this node has applied every write acknowledged
/// anywhere in the cluster before the request (a linearizable read).
#[derive(Debug, Default, Deserialize)]
pub struct Consistency {
    #[serde(default)]
    consistent: bool,
}

pub async fn nodes(
    State(state): State<AppState>,
    super::ApiQuery(consistency): super::ApiQuery<Consistency>,
) -> Result<Json<Value>, ApiError> {
    if consistency.consistent {
        state.store.read_barrier().await?;
    }
    let nodes = state.membership.view()?;
    let leader = state.membership.leader();
    Ok(Json(json!({
        "leader": leader,
        "self": state.membership.name(),
        // The config store revision this node has applied: equal on every node once caught up.
        "revision": state.store.revision(),
        "nodes": nodes,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    tag: String,
}

/// Set a node's tag (a Raft write).
pub async fn set_tag(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let TagBody { tag } = parse_body(&body)?;
    change_tag(&state, &principal.name, &name, &tag).await?;
    Ok(Json(json!({"node": name, "tag": tag})))
}

/// Set a node's tag and audit it: every API that changes a tag goes through here.
pub async fn change_tag(
    state: &AppState,
    actor: &str,
    name: &str,
    tag: &str,
) -> Result<(), ApiError> {
    set_node_tag(&*state.store, name, tag).await?;
    state
        .audit
        .record(
            actor,
            "cluster.tag",
            &format!("{name} = {tag:?}"),
            "ok",
            None,
        )
        .await;
    Ok(())
}

/// Remove a member and audit it: every API that removes a node (or makes one leave) goes
/// through here.
pub async fn remove_member(state: &AppState, actor: &str, name: &str) -> Result<Value, ApiError> {
    let result = state.membership.remove(name).await;
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    state
        .audit
        .record(actor, "cluster.remove", name, outcome, None)
        .await;
    result.map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Set a node's tag, compare-and-set on its record.
pub async fn set_node_tag(store: &dyn ConfigStore, name: &str, tag: &str) -> Result<(), ApiError> {
    if tag.len() > 128 || tag.chars().any(|c| c.is_control()) {
        return Err(ApiError::BadRequest(
            "tag must be at most 128 characters, without control characters".into(),
        ));
    }
    let key = format!("{NODE_PREFIX}{name}");
    for _ in 0..5 {
        let entry = store
            .get(&key)?
            .ok_or_else(|| ApiError::NotFound(format!("no node named {name:?}")))?;
        let mut record: NodeRecord = serde_json::from_str(&entry.value)
            .map_err(|e| ApiError::Internal(format!("{key}: {e}")))?;
        record.tag = tag.to_string();
        let value = serde_json::to_string(&record).expect("json");
        match store.put(&key, value, Some(entry.mod_revision)).await {
            Ok(_) => return Ok(()),
            Err(crate::cluster::StoreError::Conflict { .. }) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::Conflict(format!(
        "{key} kept changing; try again"
    )))
}

pub async fn remove_node(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    remove_member(&state, &principal.name, &name)
        .await
        .map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    peer: String,
    token: String,
}

/// `lograft cluster join` against a running node that is still alone.
pub async fn join_running(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    let JoinBody { peer, token } = parse_body(&body)?;
    if !(peer.starts_with("http://") || peer.starts_with("https://")) {
        return Err(ApiError::BadRequest(format!(
            "peer {peer:?} is not a URL like \"https://10.0.0.1:7700\""
        )));
    }
    let result = state.membership.join(&peer, &token).await;
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    // This node's own audit trail (its queue) keeps the event across the join.
    state
        .audit
        .record(
            &principal.name,
            "cluster.join",
            &format!("{} -> {peer}", state.membership.name()),
            outcome,
            None,
        )
        .await;
    result.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(
        json!({"joined": peer, "node": state.membership.name()}),
    ))
}

/// `lograft cluster leave`: this node leaves (its record and runner configs go with it).
pub async fn leave(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let name = state.membership.name().to_string();
    let result = state.membership.remove(&name).await;
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    state
        .audit
        .record(&principal.name, "cluster.leave", &name, outcome, None)
        .await;
    result
        .map(Json)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}
