//! Search: the query model, time parsing, local execution over the day partitions, the
//! [`backend::Backend`] seam, and cluster-wide search over it.
//!
//! * [`query`](QueryBuilder): query text to a tantivy query (limits, wildcards, negations).
//! * `exec`, [`aggregate`]: searching this node's partitions (hits, context, tail, histogram;
//!   top values, stats, fields).
//! * [`backend`]: what a search engine answers, in wire forms of our own ([`sketch`] for
//!   stats); [`local`] (this node's partitions) and [`remote`] (another node) implement it.
//! * [`cluster`]: plans which backends to ask, asks them within a timeout, merges ([`merge`]),
//!   reports the ones that failed. The HTTP routes only call it.
//!
//! A query is tantivy's Lucene-like syntax over `message` by default, with `level:`, `runner:`,
//! `path:`, `node:`, `flags:` and `fields.<name>:`; terms are ANDed unless `OR` is written.
//! The time range is applied as a fast-field range on `ts` and only partitions that overlap it
//! are opened. Hits come newest first (by the `sort` fast field); the cursor of a page is the
//! sort key of its last hit, so pages stay stable while new data arrives.

pub mod aggregate;
pub mod backend;
pub mod cluster;
mod exec;
pub mod local;
pub mod merge;
mod newest;
mod query;
pub mod remote;
pub mod sketch;
pub mod tail_hub;
mod time;
pub mod time_range;

pub use exec::{context, histogram, indexed_after, search, search_keyed};
pub use query::QueryBuilder;

use chrono::{DateTime as ChronoDateTime, Utc};
use serde::{Deserialize, Serialize};

pub use time::{auto_interval, format_interval, parse_interval, parse_time};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 10_000;
pub use crate::record::END_OF_TIME;
/// At most this many histogram buckets.
pub const MAX_BUCKETS: i64 = 2000;
/// Longest query text accepted (bytes). Long lists of IDs fit; a query is not a data upload.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Deepest nesting accepted: groups `(...)` plus chained `NOT`s, as the query's tree holds them.
/// The rewrites below, tantivy's query building and its scorers all recurse once per level, so
/// this bound is what keeps any query from exhausting a thread's stack (3000 levels aborted
/// the process).
pub const MAX_QUERY_DEPTH: usize = 32;
/// Most `(` and `NOT`s accepted in one query, nested or not, quoted or not. The grammar
/// recurses once for each before it knows the tree (`((a))` is the leaf `a`), and its work
/// grows with them faster than with the query's length.
pub const MAX_QUERY_GROUPS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid query {query:?}: {reason}")]
    BadQuery { query: String, reason: String },
    #[error("invalid {param} {value:?}: {reason}")]
    BadParam {
        param: &'static str,
        value: String,
        reason: String,
    },
    /// Another node refused the request, with its message.
    #[error("{0}")]
    Refused(String),
    /// What the request names does not exist (a hit another node does not hold).
    #[error("{0}")]
    NotFound(String),
    /// No backend could answer (every node failed, or this one is too busy).
    #[error("{0}")]
    Unavailable(String),
    /// The engine failed (its own error as the source).
    #[error("search failed: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

thread_local! {
    /// The cancellation flag of the search running on this thread (see [`run_cancellable`]).
    static CANCELLED: std::cell::RefCell<Option<std::sync::Arc<std::sync::atomic::AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
}

/// Run `search` with `flag` as this thread's cancellation flag: the search loops check it
/// ([`check_cancelled`]) before each partition, so a search whose caller gave up (a timeout,
/// a client gone) stops instead of keeping the cores busy.
pub fn run_cancellable<T>(
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    search: impl FnOnce() -> T,
) -> T {
    CANCELLED.with(|cell| *cell.borrow_mut() = Some(flag));
    let result = search();
    CANCELLED.with(|cell| *cell.borrow_mut() = None);
    result
}

/// `Err` when the search running on this thread was cancelled.
pub fn check_cancelled() -> Result<(), SearchError> {
    let cancelled = CANCELLED.with(|cell| {
        cell.borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::Relaxed))
    });
    if cancelled {
        Err(SearchError::Unavailable(
            "the search was cancelled: its caller stopped waiting".into(),
        ))
    } else {
        Ok(())
    }
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(err: tantivy::TantivyError) -> Self {
        SearchError::Internal(Box::new(err))
    }
}

/// Parameters of `GET /api/v1/search` (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchParams {
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// Leave out the audit trail (runner `_audit`): set by the API for non-admins, never
    /// from the query string.
    #[serde(skip)]
    pub hide_audit: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistogramParams {
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// `30s`, `5m`, `1h`, `1d`; chosen from the range when absent.
    pub interval: Option<String>,
    /// Leave out the audit trail (runner `_audit`): set by the API for non-admins, never
    /// from the query string.
    #[serde(skip)]
    pub hide_audit: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    /// `<day>/<seq>`: unique on this node.
    pub id: String,
    pub ts: String,
    pub node: String,
    pub runner: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    pub offset: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub level: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub fields: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// The file stream the line came from (`/api/v1/context` follows it through rotations).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stream: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Matches in the whole time range (not only this page).
    pub total: u64,
    pub hits: Vec<Hit>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub from: String,
    pub to: String,
    pub took_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    pub ts: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistogramResponse {
    pub interval: String,
    pub total: u64,
    pub buckets: Vec<Bucket>,
    pub took_ms: u64,
}

/// The resolved time range `[from, to)` in micros; defaults to everything.
pub(crate) fn resolve_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(i64, i64), SearchError> {
    let now = Utc::now();
    let from = match from.filter(|s| !s.trim().is_empty()) {
        Some(text) => parse_time(text, now).map_err(|reason| SearchError::BadParam {
            param: "from",
            value: text.to_string(),
            reason,
        })?,
        None => 0,
    };
    let to = match to.filter(|s| !s.trim().is_empty()) {
        Some(text) => parse_time(text, now).map_err(|reason| SearchError::BadParam {
            param: "to",
            value: text.to_string(),
            reason,
        })?,
        // Far future: clocks of the machines that wrote the logs may be ahead.
        None => END_OF_TIME,
    };
    let (from, to) = (from.clamp(0, END_OF_TIME), to.clamp(0, END_OF_TIME));
    if to <= from {
        return Err(SearchError::BadParam {
            param: "to",
            value: format_micros(to),
            reason: format!("must be after from ({})", format_micros(from)),
        });
    }
    Ok((from, to))
}

pub fn format_micros(micros: i64) -> String {
    ChronoDateTime::<Utc>::from_timestamp_micros(micros)
        .map(|dt| dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_else(|| micros.to_string())
}

/// Parse a cursor returned by a previous page (the sort key of its last hit).
pub fn parse_cursor(text: &str) -> Result<u64, SearchError> {
    text.parse::<u64>().map_err(|_| SearchError::BadParam {
        param: "cursor",
        value: text.to_string(),
        reason: "not a cursor returned by a previous page".into(),
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContextParams {
    /// A hit's `id` (`<day>/<seq>`).
    pub id: Option<String>,
    pub before: Option<usize>,
    pub after: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContextResponse {
    pub id: String,
    /// The lines around the hit from the same file, in file order; the hit included.
    pub lines: Vec<Hit>,
    /// Position of the hit in `lines`.
    pub hit_index: usize,
}
