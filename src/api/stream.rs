//! Streaming responses: `GET /api/v1/export` (every match as NDJSON or CSV) and
//! `GET /api/v1/tail` (matches as they are indexed, as Server-Sent Events), over every node of
//! the cluster (`search::cluster`); `/internal/v1/tail` is one node's tail for another node.

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::search::InternalFlags;
use super::{ApiError, ApiQuery, AppState};
use crate::auth::{Principal, Role};
use crate::search::backend::{Backend, TailItem};
use crate::search::cluster::{Selection, TAIL_BUFFER};
use crate::search::{Hit, SearchParams};

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

/// Every match, newest first, from every selected node (`?nodes=`), merged by time. Nodes that
/// fail at the start are named in the `x-lograft-nodes-failed` header (JSON, like `nodes.failed`
/// in searches) and left out; a node that fails in the middle ends the stream with an error, so
/// an incomplete export never looks complete.
pub async fn export(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(params): ApiQuery<ExportParams>,
    ApiQuery(selection): ApiQuery<Selection>,
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
    let search = SearchParams {
        q: params.q,
        from: params.from,
        to: params.to,
        limit: None,
        cursor: None,
        hide_audit: principal.role < Role::Admin,
    };
    // The first page of every node is fetched before answering, so a bad query is a 400, not a
    // broken stream.
    let (mut merge, report) = state.search.export(search, selection).await?;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut chunk = String::new();
        if csv {
            chunk.push_str("ts,node,runner,path,level,message,fields\r\n");
        }
        loop {
            match merge.next().await {
                Ok(Some(hit)) => {
                    if csv {
                        chunk.push_str(&csv_row(&hit));
                    } else {
                        chunk.push_str(&serde_json::to_string(&hit).expect("hit serializes"));
                        chunk.push('\n');
                    }
                    // A client that went away ends the export.
                    if chunk.len() >= EXPORT_CHUNK
                        && tx
                            .send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {
                    if !chunk.is_empty() {
                        let _ = tx.send(Ok(Bytes::from(chunk))).await;
                    }
                    return;
                }
                Err(err) => {
                    if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                        return;
                    }
                    let _ = tx.send(Err(std::io::Error::other(err))).await;
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
    let failed = serde_json::to_string(&report.failed).expect("failures serialize");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (
                HeaderName::from_static("x-lograft-nodes-queried"),
                report.queried.to_string(),
            ),
            (
                HeaderName::from_static("x-lograft-nodes-failed"),
                header_text(&failed),
            ),
        ],
        body,
    )
        .into_response())
}

/// Bytes of export rows sent at once.
const EXPORT_CHUNK: usize = 256 * 1024;

/// Text safe in a header value: visible ASCII and spaces (other characters become `?`).
fn header_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .take(4096)
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct TailParams {
    pub q: Option<String>,
}

/// Live tail: `event: hit` per matching line as it is indexed, on every selected node
/// (`?nodes=`). A client that reads too slowly misses lines and gets `event: dropped` with how
/// many; it never slows ingestion (the tail only reads committed index data, and never waits on
/// the client). Over several nodes, the first event is `nodes` (`{queried, failed}`, as in
/// searches); a node whose stream fails later is announced by `node_failed` (`{node, error}`),
/// followed again while it is not lost, and `node_back` (`{node}`) says it is back.
pub async fn tail(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(params): ApiQuery<TailParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let q = params.q.unwrap_or_default();
    let slot = TailSlot::take(Some(&principal.name))?;
    let (tx, rx) = mpsc::channel::<TailItem>(TAIL_BUFFER);
    // A bad query is a 400 before the stream starts.
    state
        .search
        .tail(q, principal.role >= Role::Admin, selection, tx)?;
    Ok(Sse::new(tail_events(rx, slot)).keep_alive(KeepAlive::default()))
}

/// Live tails open at once on this node, in all and per user: each one polls and holds a
/// buffer, and clients that never read took both cores and +500 MB.
pub const MAX_TAILS: usize = 64;
pub const MAX_TAILS_PER_USER: usize = 8;

static TAILS: std::sync::LazyLock<
    std::sync::Mutex<(usize, std::collections::HashMap<String, usize>)>,
> = std::sync::LazyLock::new(Default::default);

/// One open tail, counted until the stream ends (the client went away).
pub struct TailSlot(Option<String>);

impl TailSlot {
    /// A slot for `user` (`None`: another node's tail, counted in the total only), or a 429
    /// naming the limit.
    fn take(user: Option<&str>) -> Result<TailSlot, ApiError> {
        let mut tails = TAILS.lock().expect("tails lock");
        if tails.0 >= MAX_TAILS {
            return Err(ApiError::TooManyRequests(format!(
                "too many live tails on this node ({MAX_TAILS} open); close one and try again"
            )));
        }
        if let Some(user) = user {
            let open = tails.1.get(user).copied().unwrap_or(0);
            if open >= MAX_TAILS_PER_USER {
                return Err(ApiError::TooManyRequests(format!(
                    "{user} has {open} live tails open, at most {MAX_TAILS_PER_USER}: close one and try again"
                )));
            }
            tails.1.insert(user.to_string(), open + 1);
        }
        tails.0 += 1;
        Ok(TailSlot(user.map(str::to_string)))
    }
}

impl Drop for TailSlot {
    fn drop(&mut self) {
        let mut tails = TAILS.lock().expect("tails lock");
        tails.0 = tails.0.saturating_sub(1);
        if let Some(user) = &self.0
            && let Some(open) = tails.1.get_mut(user)
        {
            *open = open.saturating_sub(1);
            if *open == 0 {
                tails.1.remove(user);
            }
        }
    }
}

/// `/internal/v1/tail`: this node's lines only, for another node's tail. Keep-alives are
/// frequent so the follower notices a dead stream (`search::remote::TAIL_IDLE`).
pub async fn internal_tail(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<TailParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let q = params.q.unwrap_or_default();
    state.queries.parse(&q)?;
    let slot = TailSlot::take(None)?;
    let (tx, rx) = mpsc::channel::<TailItem>(TAIL_BUFFER);
    tokio::spawn(async move {
        let mut failed = false;
        let _ = state.local.follow(&q, flags.audit, &tx, &mut failed).await;
    });
    Ok(Sse::new(tail_events(rx, slot))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5))))
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("serializes")
}

/// The events of a tail; `slot` is released when the stream is dropped (the client left).
fn tail_events(
    rx: mpsc::Receiver<TailItem>,
    slot: TailSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((rx, slot), |(mut rx, slot)| async move {
        let item = rx.recv().await?;
        let event = match item {
            TailItem::Hit(hit) => Event::default().event("hit").data(json(&hit)),
            TailItem::Dropped(count) => Event::default().event("dropped").data(count.to_string()),
            TailItem::Nodes(report) => Event::default().event("nodes").data(json(&report)),
            TailItem::NodeFailed(failed) => {
                Event::default().event("node_failed").data(json(&failed))
            }
            TailItem::NodeBack(node) => Event::default()
                .event("node_back")
                .data(json(&serde_json::json!({ "node": node }))),
        };
        Some((Ok(event), (rx, slot)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// See: issue "No input stops the appliance", item 12 (tails that never read took both
    /// cores). Tails are counted per user and in all, and released when their stream ends.
    #[test]
    fn live_tails_are_capped_per_user_and_released() {
        let user = "tail-cap-test-user";
        let slots: Vec<TailSlot> = (0..MAX_TAILS_PER_USER)
            .map(|_| TailSlot::take(Some(user)).unwrap())
            .collect();
        let refused = TailSlot::take(Some(user)).err().expect("over the cap");
        assert!(refused.to_string().contains("at most 8"), "{refused}");
        let other = TailSlot::take(Some("another-user")).expect("another user may");
        drop(slots);
        drop(other);
        let again = TailSlot::take(Some(user)).expect("released when the streams end");
        drop(again);
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "\"plain\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1+2"), "\"'-1+2\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
    }
}
