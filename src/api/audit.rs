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
use crate::search::{SearchParams, SearchResponse};

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
        // Names come from requests (a login's user name is whatever was typed): one event is
        // one line of bounded size, whatever they hold.
        let (actor, target) = (audit_text(actor), audit_text(target));
        let client = client.as_deref().map(audit_text);
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

/// Longest name (user, target, actor) an audit event carries, in characters.
pub const AUDIT_TEXT_MAX_CHARS: usize = 128;

/// A request-supplied name as an audit event carries it: control characters (and Unicode line
/// separators and direction overrides) escaped, so it cannot forge a line or reorder text;
/// at most [`AUDIT_TEXT_MAX_CHARS`] characters, an ellipsis and the original length after.
pub fn audit_text(text: &str) -> String {
    let mut out = String::new();
    let mut written = 0;
    for (index, c) in text.chars().enumerate() {
        let piece: String = if c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            c.escape_default().collect()
        } else if c == '\\' {
            "\\\\".into()
        } else {
            c.to_string()
        };
        let width = piece.chars().count();
        if written + width > AUDIT_TEXT_MAX_CHARS {
            let total = text.chars().count();
            out.push_str(&format!(
                "… ({total} characters, {} not shown)",
                total - index
            ));
            return out;
        }
        written += width;
        out.push_str(&piece);
    }
    out
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
    // This node's trail, through its search backend (whatever engine holds the index).
    use crate::search::backend::{Backend, BackendError};
    match state.local.page(search_params).await {
        Ok(page) => Ok(Json(page.response)),
        Err(BackendError::Refused(err)) => Err(err.into()),
        Err(BackendError::Failed { message, .. }) => Err(ApiError::Unavailable(message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // See: "No input stops the appliance", item 11.
    #[test]
    fn audit_text_escapes_control_characters_and_caps_the_length() {
        assert_eq!(audit_text("alice"), "alice");
        let forged = "x\nlogin admin: ok (by user:admin)";
        let text = audit_text(forged);
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(text, "x\\nlogin admin: ok (by user:admin)");
        assert_eq!(
            audit_text("a\rb\u{1b}[31m\u{2028}\u{202e}"),
            "a\\rb\\u{1b}[31m\\u{2028}\\u{202e}"
        );
        // A backslash is escaped too, so an escaped newline and a typed "\n" differ.
        assert_eq!(audit_text("a\\nb"), "a\\\\nb");
        let long = format!("{}\n{}", "u".repeat(15_000), "v".repeat(100));
        let text = audit_text(&long);
        assert!(
            text.starts_with(&"u".repeat(AUDIT_TEXT_MAX_CHARS)),
            "{text}"
        );
        assert!(
            text.ends_with("… (15101 characters, 14973 not shown)"),
            "{text}"
        );
        assert!(text.chars().count() < AUDIT_TEXT_MAX_CHARS + 64, "{text}");
        assert!(!text.contains('\n'));
        // Escapes count towards the cap.
        let text = audit_text(&"\n".repeat(1000));
        assert!(text.chars().count() < AUDIT_TEXT_MAX_CHARS + 64, "{text}");
    }
}
