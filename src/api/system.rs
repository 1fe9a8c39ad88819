//! Health, metrics, node status and indexer pause/resume.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::AppState;
use crate::auth::Principal;

/// Liveness and what keeps the node from taking data in: 200 `ok`, or 503 `degraded` with
/// the problems (the disk below its reserve). The node still answers searches when degraded.
pub async fn health(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let problems: Vec<String> = state
        .disk
        .full()
        .into_iter()
        .chain(state.queue.storage_problem())
        .collect();
    let version = env!("CARGO_PKG_VERSION");
    if problems.is_empty() {
        Json(json!({"status": "ok", "version": version})).into_response()
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "problems": problems, "version": version})),
        )
            .into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Sampled at scrape time: walking a few dozen index files is cheap, and exact.
    let index = state.index.clone();
    let bytes = tokio::task::spawn_blocking(move || index.disk_bytes())
        .await
        .unwrap_or(0);
    metrics::gauge!(crate::metrics::INDEX_BYTES).set(bytes as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let runners: Vec<Value> = state
        .supervisor
        .statuses()
        .into_iter()
        .map(|(_, status)| serde_json::to_value(status).unwrap_or(Value::Null))
        .collect();
    Json(json!({
        "node": state.config.node_name,
        "version": env!("CARGO_PKG_VERSION"),
        "queue": state.queue.stats(),
        // Set while the data dir's disk is below queue.min_free_bytes (no data is taken in).
        "disk_full": state.disk.full(),
        "indexer": {
            "paused": state.indexer.is_paused(),
            "committed_seq": state.indexer.committed_seq(),
            "docs_indexed": state.indexer.docs_indexed(),
            "commits": state.indexer.commits(),
            "last_error": state.indexer.last_error(),
            "quarantined": state.indexer.quarantined(),
            "future_times": state.indexer.future_times(),
            "dropped": {
                "retention": state.indexer.dropped().0,
                "partition_cap": state.indexer.dropped().1,
            },
        },
        "index": {
            "partitions": state.index.all().iter().map(|p| p.day.to_string()).collect::<Vec<_>>(),
            // Damaged partitions moved aside at start (not searchable, not deleted).
            "set_aside": state.index.set_aside_partitions(),
        },
        "runners": runners,
    }))
}

/// Stop moving records from the queue into the index (maintenance; the queue fills up and
/// runners stop reading when it is full, nothing is dropped).
pub async fn pause_indexer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    state.indexer.pause();
    // The event waits in the queue until the indexer resumes, like every other record.
    state
        .audit
        .record(
            &principal.name,
            "indexer.pause",
            &state.config.node_name,
            "ok",
            None,
        )
        .await;
    Json(json!({"paused": true}))
}

pub async fn resume_indexer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Json<Value> {
    state.indexer.resume();
    state
        .audit
        .record(
            &principal.name,
            "indexer.resume",
            &state.config.node_name,
            "ok",
            None,
        )
        .await;
    Json(json!({"paused": false}))
}

pub async fn not_found(uri: Uri) -> (StatusCode, Json<Value>) {
    // logkit's own answer to a route it does not have (its HTTP framework's), for clients
    // that tell a missing route from a missing runner by it.
    if uri.path().starts_with("/logkit/") {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"})));
    }
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"error": {"code": "not_found", "message": format!("no route for {}", uri.path())}}),
        ),
    )
}

/// The cluster secret, for joining nodes (`lograft cluster token`). Admins only.
/// Node-to-node liveness; only the cluster secret opens it.
pub async fn internal_ping(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"node": state.config.node_name, "version": env!("CARGO_PKG_VERSION")}))
}
