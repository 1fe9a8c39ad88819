//! [`Backend`]: the seam a search engine implements — what the API needs of "the data of one
//! node" (or, for an engine that holds every node's data, of all of them).
//!
//! Requests are the public parameter types with times already resolved (absolute), so every
//! backend of one cluster-wide query searches the same range. Answers are in wire forms of our
//! own, made to be merged (`search::merge`, [`StatsPart`]): a page of hits with the sort key of
//! each, histogram buckets, top values with an error bound, exact counts, stats with a
//! percentile sketch, a sample of fields, the lines around a hit, and a live tail.
//!
//! Implementations: [`super::local::LocalBackend`] (this node's tantivy partitions) and
//! [`super::remote::RemoteBackend`] (another node over `/internal/v1/...`). Cluster-wide search
//! (`search::cluster`) plans over `dyn Backend` and never knows which is which.
//!
//! Conformance: `search::backend::conformance` asks the same questions of two backends over the
//! same data and compares the answers; it runs against the local backend and against a remote
//! node in CI.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::aggregate::{AggParams, FieldsResponse, TopResponse};
use super::sketch::StatsPart;
use super::{
    ContextParams, ContextResponse, HistogramParams, HistogramResponse, Hit, SearchError,
    SearchParams, SearchResponse,
};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a backend gave no answer.
#[derive(Debug)]
pub enum BackendError {
    /// The request itself is wrong (a query or parameter this node refuses): the whole
    /// cluster-wide request fails with it, before or instead of partial results.
    Refused(SearchError),
    /// The backend failed, was too busy, or could not be reached: reported in
    /// `nodes.failed`, the others still answer. `status` is the HTTP status of a remote one.
    Failed {
        status: Option<u16>,
        message: String,
    },
}

impl BackendError {
    pub fn failed(message: impl Into<String>) -> BackendError {
        BackendError::Failed {
            status: None,
            message: message.into(),
        }
    }

    /// How the failure reads in `nodes.failed`.
    pub fn message(&self) -> String {
        match self {
            BackendError::Refused(err) => err.to_string(),
            BackendError::Failed {
                status: Some(status),
                message,
            } => format!("HTTP {status}: {message}"),
            BackendError::Failed {
                status: None,
                message,
            } => message.clone(),
        }
    }
}

/// A page of hits, newest first, with the sort key of each hit (`sorts[i]` is `hits[i]`'s):
/// what merging pages of several backends orders by. On the wire (`/internal/v1/search`) the
/// page's fields with `sorts` beside them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page {
    #[serde(flatten)]
    pub response: SearchResponse,
    pub sorts: Vec<u64>,
}

/// Top values with the upper bound of the error on their counts (0: every count is exact).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopPart {
    #[serde(flatten)]
    pub top: TopResponse,
    pub bound: u64,
}

/// Count exactly these values of `field` (the second phase of cluster-wide top values).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountsRequest {
    pub field: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Include the audit trail.
    #[serde(default)]
    pub audit: bool,
    pub values: Vec<Value>,
}

impl CountsRequest {
    /// The aggregation parameters of this request.
    pub fn params(&self) -> AggParams {
        AggParams {
            field: self.field.clone(),
            q: self.q.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            size: None,
            hide_audit: !self.audit,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountsResponse {
    pub counts: Vec<u64>,
}

/// `/internal/v1/stats`: a backend's stats part, absent when no match has a value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsAnswer {
    pub field: String,
    pub part: Option<StatsPart>,
}

/// What a live tail carries into the one channel of a client.
#[derive(Debug)]
pub enum TailItem {
    Hit(Box<Hit>),
    /// Lines skipped because the client fell behind.
    Dropped(u64),
    /// First event of a tail over several nodes.
    Nodes(super::cluster::NodesReport),
    /// A node's stream ended (or could not start); it is retried while it is not lost.
    NodeFailed(super::cluster::FailedNode),
    /// A failed node's stream is back.
    NodeBack(String),
}

/// A tail subscription's end: `Ok` when the client went away, `Err(why)` when the backend's
/// stream failed (the caller retries).
pub type Followed = Result<(), String>;

pub trait Backend: Send + Sync {
    /// A page of hits (`params.cursor` is this backend's own cursor).
    fn page(&self, params: SearchParams) -> BoxFuture<'_, Result<Page, BackendError>>;
    fn histogram(
        &self,
        params: HistogramParams,
    ) -> BoxFuture<'_, Result<HistogramResponse, BackendError>>;
    fn top(&self, params: AggParams) -> BoxFuture<'_, Result<TopPart, BackendError>>;
    /// Exact counts of the requested values, in their order.
    fn counts(&self, request: CountsRequest) -> BoxFuture<'_, Result<Vec<u64>, BackendError>>;
    fn stats(&self, params: AggParams) -> BoxFuture<'_, Result<StatsAnswer, BackendError>>;
    fn fields(&self, params: AggParams) -> BoxFuture<'_, Result<FieldsResponse, BackendError>>;
    /// The lines around a hit this backend holds. A hit it does not hold is
    /// `Failed { status: Some(404) }` (remote) or `Refused` (local).
    fn context(
        &self,
        params: ContextParams,
    ) -> BoxFuture<'_, Result<ContextResponse, BackendError>>;
    /// Send matching lines into `tx` as they become searchable, until the client goes away.
    /// `failed` says the caller reported this backend failed: a backend whose stream works
    /// again sends [`TailItem::NodeBack`] and clears it.
    fn follow<'a>(
        &'a self,
        q: &'a str,
        audit: bool,
        tx: &'a mpsc::Sender<TailItem>,
        failed: &'a mut bool,
    ) -> BoxFuture<'a, Followed>;
}

/// Send without waiting; a full channel counts the line as dropped. `false` when the client
/// went away.
pub fn send_or_count(tx: &mpsc::Sender<TailItem>, item: TailItem, dropped: &mut u64) -> bool {
    if !flush_dropped(tx, dropped) {
        return false;
    }
    match tx.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            *dropped += 1;
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Tell the client how many lines it missed, as soon as it has room. `false` when it went away.
pub fn flush_dropped(tx: &mpsc::Sender<TailItem>, dropped: &mut u64) -> bool {
    if *dropped == 0 {
        return true;
    }
    match tx.try_send(TailItem::Dropped(*dropped)) {
        Ok(()) => {
            *dropped = 0;
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// The behaviour every [`Backend`] shows: asked the same questions over the same data, two
/// backends give the same answers (`took_ms` aside). CI runs it with this node's partitions
/// against the same partitions served over the internal routes (`api::search` tests); an
/// adapter runs it against its engine loaded with [`records`].
#[cfg(test)]
pub mod conformance {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::index::{IndexStore, Sink, TantivySink};
    use crate::record::Record;

    /// 600 records over three days: nginx-like fields, two files (streams) for context, and
    /// audit records a reader must not see.
    pub fn records() -> Vec<Record> {
        let day = 86_400_000_000i64;
        let start = crate::record::now_micros() - 2 * day;
        (0..600u64)
            .map(|i| {
                let audit = i % 50 == 7;
                Record {
                    ts: start + (i as i64) * (day / 220),
                    runner: if audit { "_audit".into() } else { "web".into() },
                    path: format!("/var/log/app{}.log", i % 2),
                    offset: i * 100,
                    level: ["info", "warn", "error"][(i % 3) as usize].into(),
                    message: format!("request {i} from host{} took {} ms", i % 7, i % 13),
                    fields: json!({"status": 200 + (i % 4) * 100, "ms": (i % 97) as f64 * 1.5,
                                   "host": format!("host{}", i % 7)}),
                    truncated: false,
                    parse_error: false,
                    stream: format!("web/1:{}", i % 2),
                }
            })
            .collect()
    }

    /// A store holding [`records`], written through the sink as the indexer writes.
    pub fn store_with_data() -> (tempfile::TempDir, Arc<IndexStore>) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = IndexStore::open(&dir.path().join("index"), "n").unwrap();
        let mut sink = TantivySink::new(store.clone(), 64_000_000, 1000).unwrap();
        let records = records();
        let count = records.len() as u64;
        for (i, record) in records.into_iter().enumerate() {
            sink.add(i as u64 + 1, record, Default::default()).unwrap();
        }
        sink.commit(&crate::index::IndexCheckpoint {
            seq: count,
            checkpoints: Vec::new(),
        })
        .unwrap();
        (dir, store)
    }

    /// An answer as JSON without what may differ between two runs (`took_ms`).
    fn comparable(value: impl serde::Serialize) -> Value {
        fn strip(value: &mut Value) {
            match value {
                Value::Object(map) => {
                    map.remove("took_ms");
                    map.values_mut().for_each(strip);
                }
                Value::Array(items) => items.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut value = serde_json::to_value(value).unwrap();
        strip(&mut value);
        value
    }

    fn ok<T>(outcome: Result<T, BackendError>) -> T {
        outcome.unwrap_or_else(|err| panic!("backend failed: {}", err.message()))
    }

    /// Ask `a` and `b` the same questions; every answer must be equal.
    pub async fn same_answers(a: &dyn Backend, b: &dyn Backend) {
        let search = |q: &str, cursor: Option<String>, hide_audit: bool| SearchParams {
            q: Some(q.to_string()),
            from: None,
            to: None,
            limit: Some(25),
            cursor,
            hide_audit,
        };
        // Pages, followed by their cursors to the end.
        for (q, hide) in [("*", true), ("*", false), ("host3 AND level:error", true)] {
            let (mut cursor_a, mut cursor_b, mut pages) = (None, None, 0);
            loop {
                let page_a = ok(a.page(search(q, cursor_a.clone(), hide)).await);
                let page_b = ok(b.page(search(q, cursor_b.clone(), hide)).await);
                assert_eq!(comparable(&page_a), comparable(&page_b), "page of {q:?}");
                assert_eq!(page_a.sorts.len(), page_a.response.hits.len());
                pages += 1;
                match page_a.response.cursor {
                    Some(next) => {
                        cursor_a = Some(next);
                        cursor_b = page_b.response.cursor;
                    }
                    None => break,
                }
                assert!(pages < 100, "cursors do not end");
            }
        }
        let all = ok(a.page(search("*", None, false)).await);
        let visible = ok(a.page(search("*", None, true)).await);
        assert_eq!(all.response.total, 600);
        assert_eq!(
            visible.response.total, 588,
            "readers do not see the audit trail"
        );

        let histogram = |interval: Option<&str>| HistogramParams {
            q: Some("level:warn".into()),
            from: None,
            to: None,
            interval: interval.map(str::to_string),
            hide_audit: true,
        };
        for interval in [None, Some("1h"), Some("1d")] {
            assert_eq!(
                comparable(ok(a.histogram(histogram(interval)).await)),
                comparable(ok(b.histogram(histogram(interval)).await)),
                "histogram {interval:?}"
            );
        }

        let agg = |field: &str, size: Option<usize>| AggParams {
            field: Some(field.into()),
            q: Some("*".into()),
            from: None,
            to: None,
            size,
            hide_audit: true,
        };
        for field in ["level", "fields.status", "fields.host", "path"] {
            let top_a = ok(a.top(agg(field, Some(3))).await);
            assert_eq!(
                comparable(&top_a),
                comparable(ok(b.top(agg(field, Some(3))).await))
            );
            assert!(!top_a.top.values.is_empty(), "top {field}");
        }
        let counts = CountsRequest {
            field: Some("fields.status".into()),
            q: None,
            from: None,
            to: None,
            audit: false,
            values: vec![json!(200), json!(300.0), json!("nope")],
        };
        let counts_a = ok(a.counts(counts.clone()).await);
        assert_eq!(counts_a, ok(b.counts(counts).await));
        assert_eq!(counts_a[2], 0);
        assert!(counts_a[0] > 0 && counts_a[1] > 0);

        for field in ["fields.ms", "fields.status", "fields.nothing"] {
            let stats_a = ok(a.stats(agg(field, None)).await);
            assert_eq!(
                comparable(&stats_a),
                comparable(ok(b.stats(agg(field, None)).await)),
                "stats {field}"
            );
            assert_eq!(stats_a.part.is_some(), field != "fields.nothing");
        }
        assert_eq!(
            comparable(ok(a.fields(agg("", None)).await)),
            comparable(ok(b.fields(agg("", None)).await))
        );

        let id = all.response.hits[10].id.clone();
        let context = |id: &str| ContextParams {
            id: Some(id.to_string()),
            before: Some(3),
            after: Some(3),
        };
        let context_a = ok(a.context(context(&id)).await);
        assert_eq!(
            comparable(&context_a),
            comparable(ok(b.context(context(&id)).await))
        );
        assert_eq!(context_a.lines.len(), 7);
        // A hit neither holds: both refuse (locally a refusal, remotely an HTTP 400).
        assert!(a.context(context("2001-01-01/1")).await.is_err());
        assert!(b.context(context("2001-01-01/1")).await.is_err());
    }
}
