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
