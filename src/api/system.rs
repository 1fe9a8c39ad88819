//! Health, metrics, node status, indexer pause/resume and the UI's entry page.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse};
use serde_json::{Value, json};

use super::{ApiError, AppState};

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct WebAssets;

pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
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
        "indexer": {
            "paused": state.indexer.is_paused(),
            "committed_seq": state.indexer.committed_seq(),
            "docs_indexed": state.indexer.docs_indexed(),
            "commits": state.indexer.commits(),
            "last_error": state.indexer.last_error(),
        },
        "index": {
            "partitions": state.index.all().iter().map(|p| p.day.to_string()).collect::<Vec<_>>(),
        },
        "runners": runners,
    }))
}

/// Stop moving records from the queue into the index (maintenance; the queue fills up and
/// runners stop reading when it is full, nothing is dropped).
pub async fn pause_indexer(State(state): State<AppState>) -> Json<Value> {
    state.indexer.pause();
    Json(json!({"paused": true}))
}

pub async fn resume_indexer(State(state): State<AppState>) -> Json<Value> {
    state.indexer.resume();
    Json(json!({"paused": false}))
}

/// The UI's entry page; Elasticsearch clients asking for JSON get the info document instead.
pub async fn index_page(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    if let Some(info) = super::ingest::es_info(&headers, &state.config.node_name) {
        return Ok(info);
    }
    let page = WebAssets::get("index.html")
        .ok_or_else(|| ApiError::Internal("index.html is not embedded".into()))?;
    Ok(Html(page.data.into_owned()).into_response())
}

pub async fn not_found(uri: Uri) -> (StatusCode, Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"error": {"code": "not_found", "message": format!("no route for {}", uri.path())}}),
        ),
    )
}

/// The cluster secret, for joining nodes (`lograft cluster token`). Admins only.
pub async fn cluster_token(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"token": state.cluster_secret.reveal()}))
}

/// Node-to-node liveness; only the cluster secret opens it.
pub async fn internal_ping(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"node": state.config.node_name, "version": env!("CARGO_PKG_VERSION")}))
}
