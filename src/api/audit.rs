//! The audit trail: logins, user and token changes, runner changes. Each event is a record of
//! runner `_audit` appended to the queue like any log line, so it is durable, indexed,
//! searchable (`runner:_audit`) and append-only. `GET /api/v1/audit` lists it for admins.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::json;
use tracing::error;

use super::{ApiError, ApiQuery, AppState};
use crate::queue::Queue;
use crate::record::{Record, now_micros};
use crate::search::{self, SearchParams, SearchResponse};

pub use crate::record::AUDIT_RUNNER;

#[derive(Clone)]
pub struct Auditor {
    queue: Arc<dyn Queue>,
}

impl Auditor {
    pub fn new(queue: Arc<dyn Queue>) -> Auditor {
        Auditor { queue }
    }

    /// Record an event. Never carries secrets: callers pass names, never passwords or configs.
    pub async fn record(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        client: Option<String>,
    ) {
        let message = format!("{action} {target}: {outcome} (by {actor})");
        let record = Record {
            ts: now_micros(),
            runner: AUDIT_RUNNER.to_string(),
            path: String::new(),
            offset: 0,
            level: if outcome == "ok" {
                "info".into()
            } else {
                "warn".into()
            },
            message,
            fields: json!({"actor": actor, "action": action, "target": target, "outcome": outcome, "client": client}),
            truncated: false,
            parse_error: false,
            stream: String::new(),
        };
        let queue = self.queue.clone();
        let result =
            tokio::task::spawn_blocking(move || queue.append(vec![record], Vec::new())).await;
        if !matches!(result, Ok(Ok(_))) {
            error!(action, target, "could not write an audit event");
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    let q = match params.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => format!("runner:{AUDIT_RUNNER} AND ({q})"),
        None => format!("runner:{AUDIT_RUNNER}"),
    };
    let search_params = SearchParams {
        q: Some(q),
        from: params.from,
        to: params.to,
        limit: params.limit,
        cursor: params.cursor,
        hide_audit: false,
    };
    let response = tokio::task::spawn_blocking(move || {
        search::search(&state.index, &state.queries, &search_params)
    })
    .await??;
    Ok(Json(response))
}
