//! Streaming responses: `GET /api/v1/export` (every match as NDJSON or CSV) and
//! `GET /api/v1/tail` (matches as they are indexed, as Server-Sent Events).

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{ApiError, ApiQuery, AppState};
use crate::auth::{Principal, Role};
use crate::search::{self, Hit, SearchParams};

#[derive(Debug, Deserialize)]
pub struct ExportParams {
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `ndjson` (default) or `csv`.
    pub format: Option<String>,
}

/// A CSV cell: quoted, and defused when a spreadsheet would read it as a formula.
fn csv_cell(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

fn csv_row(hit: &Hit) -> String {
    let fields = if hit.fields.is_null() {
        String::new()
    } else {
        hit.fields.to_string()
    };
    [
        &hit.ts,
        &hit.node,
        &hit.runner,
        &hit.path,
        &hit.level,
        &hit.message,
        &fields,
    ]
    .iter()
    .map(|cell| csv_cell(cell))
    .collect::<Vec<_>>()
    .join(",")
        + "\r\n"
}

pub async fn export(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let csv = match params.format.as_deref().unwrap_or("ndjson") {
        "ndjson" => false,
        "csv" => true,
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid format {other:?}: use ndjson or csv"
            )));
        }
    };
    let permit = super::search::search_permit(&state).await?;
    let mut page = SearchParams {
        q: params.q,
        from: params.from,
        to: params.to,
        limit: Some(2000),
        cursor: None,
        hide_audit: principal.role < Role::Admin,
    };
    // The first page is fetched before answering, so a bad query is a 400, not a broken stream.
    let first = {
        let (state, page) = (state.clone(), page.clone());
        tokio::task::spawn_blocking(move || search::search(&state.index, &state.queries, &page))
            .await??
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut current = first;
        if csv {
            let header = "ts,node,runner,path,level,message,fields\r\n";
            if tx.blocking_send(Ok(Bytes::from(header))).is_err() {
                return;
            }
        }
        loop {
            let mut chunk = String::new();
            for hit in &current.hits {
                if csv {
                    chunk.push_str(&csv_row(hit));
                } else {
                    chunk.push_str(&serde_json::to_string(hit).expect("hit serializes"));
                    chunk.push('\n');
                }
            }
            // A client that went away ends the export.
            if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                return;
            }
            let Some(cursor) = current.cursor.take() else {
                return;
            };
            page.cursor = Some(cursor);
            match search::search(&state.index, &state.queries, &page) {
                Ok(next) => current = next,
                Err(err) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(err.to_string())));
                    return;
                }
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let (content_type, file) = if csv {
        ("text/csv; charset=utf-8", "lograft-export.csv")
    } else {
        ("application/x-ndjson", "lograft-export.ndjson")
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct TailParams {
    pub q: Option<String>,
}

/// Events a tail client can be behind by before lines are skipped for it.
const TAIL_BUFFER: usize = 256;
const TAIL_POLL: Duration = Duration::from_millis(250);

/// Live tail: `event: hit` per matching line as it is indexed. A client that reads too slowly
/// misses lines and gets `event: dropped` with how many; it never slows ingestion (the tail
/// only reads committed index data, and never waits on the client).
pub async fn tail(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(params): ApiQuery<TailParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let q = params.q.unwrap_or_default();
    state.queries.parse(&q)?; // a bad query is a 400 before the stream starts
    let (tx, rx) = mpsc::channel::<Event>(TAIL_BUFFER);
    let mut after = state.indexer.committed_seq();
    let hide_audit = principal.role < Role::Admin;
    tokio::spawn(async move {
        let mut dropped = 0u64;
        loop {
            tokio::time::sleep(TAIL_POLL).await;
            if tx.is_closed() {
                return;
            }
            let (inner, query) = (state.clone(), q.clone());
            let found = tokio::task::spawn_blocking(move || {
                search::indexed_after(
                    &inner.index,
                    &inner.queries,
                    &query,
                    after,
                    1000,
                    hide_audit,
                )
            })
            .await;
            let Ok(Ok(found)) = found else { continue };
            // Tell the client what it missed as soon as it has room again.
            let flush_dropped = |dropped: &mut u64| {
                if *dropped == 0 {
                    return true;
                }
                match tx.try_send(Event::default().event("dropped").data(dropped.to_string())) {
                    Ok(()) => {
                        *dropped = 0;
                        true
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            };
            if !flush_dropped(&mut dropped) {
                return;
            }
            for (seq, hit) in found {
                after = after.max(seq);
                if !flush_dropped(&mut dropped) {
                    return;
                }
                let event = Event::default()
                    .event("hit")
                    .data(serde_json::to_string(&hit).expect("hit serializes"));
                match tx.try_send(event) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            if !flush_dropped(&mut dropped) {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "\"plain\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1+2"), "\"'-1+2\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
    }
}
