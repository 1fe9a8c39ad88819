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

/// A write another member forwards to this node (the leader). Only a current member may
/// forward (it names itself), only member keys may be written this way (never the cluster
/// secret or an unknown key), only the leader applies it; users, API tokens and join tokens
/// written this way, and every refusal, go to the audit trail here.
pub async fn store_txn(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(ops): Json<Vec<Op>>,
) -> Result<Json<Value>, ApiError> {
    let cluster = raft(&state)?;
    let origin = headers
        .get(crate::wire::ORIGIN_NODE_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let keys = ops.iter().map(Op::key).collect::<Vec<_>>().join(",");
    let origin_name = match cluster.check_forwarded(origin, &ops) {
        Ok(name) => name,
        Err(reason) => {
            let actor = format!(
                "node:{}",
                origin.map(|id| id.to_string()).unwrap_or_default()
            );
            state
                .audit
                .record(&actor, "store.forwarded_write", &keys, "refused", None)
                .await;
            return Err(if reason.contains("not the leader") {
                ApiError::Unavailable(reason)
            } else {
                ApiError::Forbidden(reason)
            });
        }
    };
    let sensitive = ops
        .iter()
        .any(|op| op.key().starts_with("auth/") || op.key().starts_with("cluster/"));
    let id = headers
        .get(crate::wire::REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    if let Some(id) = &id
        && !crate::wire::is_request_id(id)
    {
        return Err(ApiError::BadRequest(format!(
            "{} must be 1 to 200 characters of letters, digits and :_.-",
            crate::wire::REQUEST_ID_HEADER
        )));
    }
    let result = cluster.write_as_leader(ops, id).await;
    if sensitive {
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        state
            .audit
            .record(
                &format!("node:{origin_name}"),
                "store.forwarded_write",
                &keys,
                outcome,
                None,
            )
            .await;
    }
    Ok(Json(serde_json::to_value(result?).expect("json")))
}

#[derive(Deserialize)]
pub struct ExchangeBody {
    /// The node that joins (for the audit trail).
    #[serde(default)]
    name: String,
}

/// A node about to join trades its join token for the cluster secret. The token is spent
/// (one use) whatever happens next; the exchange is audited.
pub async fn exchange(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(body): Json<ExchangeBody>,
) -> Result<Json<Value>, ApiError> {
    use crate::cluster::join_token::{self, JoinTokenError};
    let token = headers
        .get(crate::wire::JOIN_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let id = token.get(4..16).unwrap_or("?").to_string();
    let result = join_token::redeem(state.store.as_ref(), token).await;
    let outcome = if result.is_ok() { "ok" } else { "refused" };
    state
        .audit
        .record(
            &format!("node:{}", body.name),
            "cluster.join_token.redeem",
            &id,
            outcome,
            None,
        )
        .await;
    match result {
        Ok(_) => Ok(Json(json!({"secret": state.cluster_secret.reveal()}))),
        Err(JoinTokenError::Store(err)) => Err(err.into()),
        Err(err) => Err(ApiError::Unauthorized(err.to_string())),
    }
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MintBody {
    /// How long the token lives, e.g. "30m", "1h" (default), "2d"; at most 7 days.
    ttl: Option<String>,
    /// How many nodes may join with it (default 1).
    uses: Option<u32>,
}

/// `lograft cluster token`: a join token (printed once; the store keeps its hash).
pub async fn create_join_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    use crate::cluster::join_token;
    let body: MintBody = if body.trim().is_empty() {
        MintBody::default()
    } else {
        parse_body(&body)?
    };
    let ttl = match &body.ttl {
        Some(text) => crate::config::parse_duration(text)
            .map_err(|reason| ApiError::BadRequest(format!("ttl: {reason}")))?,
        None => join_token::DEFAULT_TTL,
    };
    let result = join_token::mint(
        state.store.as_ref(),
        &principal.name,
        ttl,
        body.uses.unwrap_or(1),
    )
    .await;
    let target = result
        .as_ref()
        .map(|minted| minted.record.id.clone())
        .unwrap_or_default();
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    state
        .audit
        .record(
            &principal.name,
            "cluster.join_token.create",
            &target,
            outcome,
            None,
        )
        .await;
    let minted = result.map_err(|err| match err {
        join_token::JoinTokenError::Store(err) => ApiError::from(err),
        other => ApiError::BadRequest(other.to_string()),
    })?;
    Ok(Json(json!({
        "token": minted.token,
        "id": minted.record.id,
        "expires_at": chrono::DateTime::from_timestamp(minted.record.expires_at, 0).map(|t| t.to_rfc3339()),
        "uses": minted.record.uses_left,
    })))
}

/// Join tokens not used up yet (never their secret part).
pub async fn list_join_tokens(
    State(state): State<AppState>,
    super::ApiQuery(consistency): super::ApiQuery<Consistency>,
) -> Result<Json<Value>, ApiError> {
    read_barrier(&state, &consistency).await?;
    let tokens: Vec<Value> = crate::cluster::join_token::list(state.store.as_ref())?
        .iter()
        .map(crate::cluster::join_token::describe)
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

pub async fn revoke_join_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let revoked = crate::cluster::join_token::revoke(state.store.as_ref(), &id).await;
    let outcome = match &revoked {
        Ok(true) => "ok",
        Ok(false) => "not_found",
        Err(_) => "failed",
    };
    state
        .audit
        .record(
            &principal.name,
            "cluster.join_token.revoke",
            &id,
            outcome,
            None,
        )
        .await;
    if !revoked? {
        return Err(ApiError::NotFound(format!("no join token {id:?}")));
    }
    Ok(Json(json!({ "revoked": id })))
}

/// Reads of cluster state are linearizable by default, as etcd's are: answered only once this
/// node has applied every write acknowledged anywhere in the cluster before the request
/// (Raft's read index). `?consistent=false` reads this node's own copy, which may be behind.
#[derive(Debug, Deserialize)]
pub struct Consistency {
    #[serde(default = "linearizable")]
    consistent: bool,
}

fn linearizable() -> bool {
    true
}

impl Default for Consistency {
    fn default() -> Self {
        Consistency { consistent: true }
    }
}

/// How long a read waits to confirm it sees every acknowledged write.
const READ_BARRIER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The read index for a linearizable read, or why there is none (no leader, no quorum).
pub async fn read_barrier(state: &AppState, consistency: &Consistency) -> Result<(), ApiError> {
    if !consistency.consistent {
        return Ok(());
    }
    match tokio::time::timeout(READ_BARRIER_WAIT, state.store.read_barrier()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(ApiError::Unavailable(format!(
            "cannot confirm this read sees every acknowledged change ({err}); ?consistent=false reads this node's own copy, which may be behind"
        ))),
        Err(_) => Err(ApiError::Unavailable(
            "cannot confirm this read sees every acknowledged change (no leader or no quorum reachable); ?consistent=false reads this node's own copy, which may be behind".into(),
        )),
    }
}

/// For logkit's cluster reads, which have no way to ask for a stale read: linearizable when a
/// quorum confirms it within the wait, else this node's own copy (as logkit itself answers).
pub async fn read_barrier_if_possible(state: &AppState) {
    if let Err(err) = read_barrier(state, &Consistency::default()).await {
        tracing::debug!(error = %err, "answering a logkit cluster read from this node's copy");
    }
}

/// The nodes. When the read cannot be confirmed (this node is cut off, or the cluster has no
/// quorum) the answer is still this node's view, marked `consistent: false` with the reason,
/// and no leader: a node that cannot reach a quorum cannot say who leads.
pub async fn nodes(
    State(state): State<AppState>,
    super::ApiQuery(consistency): super::ApiQuery<Consistency>,
) -> Result<Json<Value>, ApiError> {
    let confirmed = read_barrier(&state, &consistency).await;
    let nodes = state.membership.view()?;
    let (leader, read_error) = match &confirmed {
        Ok(()) => (state.membership.leader(), None),
        Err(err) => (None, Some(err.to_string())),
    };
    Ok(Json(json!({
        "leader": leader,
        "self": state.membership.name(),
        // The config store revision this node has applied: equal on every node once caught up.
        "revision": state.store.revision(),
        "consistent": consistency.consistent && confirmed.is_ok(),
        "read_error": read_error,
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
