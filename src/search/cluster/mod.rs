//! Search across the cluster: a planner over `dyn Backend` ([`ClusterSearch`]).
//!
//! The node that receives a search asks every backend the [`Topology`] plans for it at once
//! (this node's own partitions without HTTP, other nodes over `/internal/v1/...`), each within
//! `cluster.search_timeout`, and merges the answers (`search::merge`). A node that is `lost`
//! (heard from before, silent for `cluster.lost_after`) is not asked; a node that fails or does
//! not answer in time is reported in `nodes.failed`, and the search answers with the others:
//! partial results with a clear flag, never a failed search. Two exceptions: a query this node
//! itself refuses (a syntax error, a bad parameter) fails the request before any node is
//! asked, and when no node at all answered the search fails naming each failure ([`finish`]).
//!
//! Parameters are parsed here and sent again, with relative times resolved once (every
//! backend searches the same range) and each backend's own cursor.
//!
//! With an engine that holds every node's data (Elasticsearch), the topology plans a single
//! backend, and everything below works unchanged.

mod ops;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use ops::MergedTop;
pub use stream::{ExportMerge, TAIL_BUFFER};

use super::backend::{Backend, BackendError, BoxFuture};
use super::remote::{Peers, RemoteBackend, humantime};
use super::{QueryBuilder, SearchError, format_micros};
use crate::cluster::Membership;

/// A node that did not answer, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedNode {
    pub node: String,
    pub error: String,
}

/// `nodes` in every search response: how many nodes the search was for (this one included,
/// and those that failed), and the ones that failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodesReport {
    pub queried: usize,
    pub failed: Vec<FailedNode>,
}

/// A response with its `nodes` report.
#[derive(Debug, Serialize)]
pub struct WithNodes<T> {
    #[serde(flatten)]
    pub inner: T,
    pub nodes: NodesReport,
}

/// `?nodes=a,b`: search only these nodes (by name).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Selection {
    pub nodes: Option<String>,
}

/// A backend a search goes to, by the name it is reported under.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub backend: Arc<dyn Backend>,
}

/// The backends a search goes to, and the report so far (lost nodes are failed without
/// asking).
pub struct Plan {
    pub targets: Vec<Target>,
    pub report: NodesReport,
}

impl Plan {
    /// More than one node: cursors carry the node of their hit.
    fn spans_nodes(&self) -> bool {
        self.report.queried > 1
    }
}

/// Which backends hold the data of which nodes.
pub trait Topology: Send + Sync {
    /// The backends for `?nodes=` (every node when `None`). An unknown node name is refused.
    fn plan(&self, selection: Option<&str>) -> Result<Plan, SearchError>;
    /// Whether `node` is lost now (a tail does not retry it until it is heard from again).
    fn is_lost(&self, node: &str) -> bool;
    /// The backend of a node that was lost when a tail started, to follow it when it is back.
    fn backend_of(&self, node: &str) -> Option<Arc<dyn Backend>>;
    /// How long one backend may take to answer.
    fn timeout(&self) -> Duration;
}

/// The embedded topology: every member holds its own data; this node is searched through
/// `local`, the others through [`RemoteBackend`]s.
pub struct NodesTopology {
    membership: Arc<dyn Membership>,
    local: Arc<dyn Backend>,
    peers: Peers,
}

impl NodesTopology {
    pub fn new(
        membership: Arc<dyn Membership>,
        local: Arc<dyn Backend>,
        peers: Peers,
    ) -> NodesTopology {
        NodesTopology {
            membership,
            local,
            peers,
        }
    }

    fn backend(&self, name: &str, url: &str) -> Arc<dyn Backend> {
        if name == self.membership.name() {
            self.local.clone()
        } else {
            Arc::new(RemoteBackend::new(
                name.to_string(),
                url.to_string(),
                self.peers.clone(),
            ))
        }
    }
}

impl Topology for NodesTopology {
    /// The nodes selected by `?nodes=` (all members when absent), with lost ones set aside: a
    /// node heard from before but not for `cluster.lost_after` is not asked (it would only
    /// cost a timeout). A node never heard from (this node just started, or it just joined)
    /// is asked.
    fn plan(&self, selection: Option<&str>) -> Result<Plan, SearchError> {
        let this = self.membership.name().to_string();
        // (name, url, lost since)
        let mut members: Vec<(String, String, Option<String>)> = self
            .membership
            .view()
            .map_err(|err| SearchError::Unavailable(err.to_string()))?
            .into_iter()
            .map(|view| {
                let lost = (view.status == "lost" && !view.is_self)
                    .then_some(view.last_heartbeat)
                    .flatten();
                (view.id, view.url, lost)
            })
            .collect();
        // This node before it is registered (joining) is still a member for its own searches.
        if !members.iter().any(|(name, _, _)| *name == this) {
            members.push((this.clone(), self.membership.url().to_string(), None));
        }
        members.sort();
        let wanted: Option<Vec<String>> = selection
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|names| !names.is_empty());
        if let Some(names) = &wanted
            && let Some(unknown) = names
                .iter()
                .find(|n| !members.iter().any(|(m, _, _)| m == *n))
        {
            let known: Vec<&str> = members.iter().map(|(m, _, _)| m.as_str()).collect();
            return Err(SearchError::BadParam {
                param: "nodes",
                value: unknown.clone(),
                reason: format!("no node named {unknown:?} (nodes: {})", known.join(", ")),
            });
        }
        let mut plan = Plan {
            targets: Vec::new(),
            report: NodesReport::default(),
        };
        for (name, url, lost) in members {
            if wanted.as_ref().is_some_and(|names| !names.contains(&name)) {
                continue;
            }
            plan.report.queried += 1;
            if let Some(last) = lost {
                plan.report.failed.push(FailedNode {
                    node: name,
                    error: format!("lost: no heartbeat since {last}"),
                });
                continue;
            }
            let backend = self.backend(&name, &url);
            plan.targets.push(Target { name, backend });
        }
        Ok(plan)
    }

    fn is_lost(&self, node: &str) -> bool {
        self.membership.status_of(node) == "lost"
    }

    fn backend_of(&self, node: &str) -> Option<Arc<dyn Backend>> {
        let record = self
            .membership
            .nodes()
            .ok()?
            .into_iter()
            .find(|n| n.name == node)?;
        Some(self.backend(&record.name, &record.url))
    }

    fn timeout(&self) -> Duration {
        self.peers.timeout
    }
}

/// Cluster-wide search: plans with a [`Topology`], asks, merges.
#[derive(Clone)]
pub struct ClusterSearch {
    topology: Arc<dyn Topology>,
    queries: Arc<QueryBuilder>,
}

impl ClusterSearch {
    pub fn new(topology: Arc<dyn Topology>, queries: Arc<QueryBuilder>) -> ClusterSearch {
        ClusterSearch { topology, queries }
    }

    /// Refuse a query this node cannot parse before any backend is asked.
    fn check_query(&self, q: Option<&str>) -> Result<(), SearchError> {
        self.queries.parse(q.unwrap_or("")).map(|_| ())
    }

    fn plan(&self, selection: &Selection) -> Result<Plan, SearchError> {
        self.topology.plan(selection.nodes.as_deref())
    }

    fn timed_out(&self) -> String {
        format!(
            "no answer within {} (cluster.search_timeout)",
            humantime(self.topology.timeout())
        )
    }
}

/// The report of a search that `answered` backends answered. When none did, the search fails
/// naming every failure: an empty answer would read as "no matches" to a client that does not
/// look at `nodes` (the CLI, scripts), and a node that is too busy keeps answering 503 as it
/// did alone.
fn finish(
    plan: &Plan,
    failed: Vec<FailedNode>,
    answered: usize,
) -> Result<NodesReport, SearchError> {
    let mut report = plan.report.clone();
    report.failed.extend(failed);
    if answered == 0 {
        let reasons: Vec<String> = report
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.node, f.error))
            .collect();
        return Err(SearchError::Unavailable(format!(
            "no node answered ({})",
            reasons.join("; ")
        )));
    }
    Ok(report)
}

/// Ask every target at once, each within `timeout`. Returns the answers (in target order) and
/// the targets that failed; a request a backend refuses is the request's error.
async fn gather<'a, T: Send + 'a>(
    timeout: Duration,
    targets: &'a [Target],
    ask: impl Fn(&'a Target) -> BoxFuture<'a, Result<T, BackendError>>,
) -> Result<(Vec<(&'a Target, T)>, Vec<FailedNode>), SearchError> {
    let calls = targets.iter().map(|target| {
        let call = ask(target);
        async move {
            let outcome = match tokio::time::timeout(timeout, call).await {
                Ok(outcome) => outcome,
                Err(_) => Err(BackendError::failed(format!(
                    "no answer within {} (cluster.search_timeout)",
                    humantime(timeout)
                ))),
            };
            (target, outcome)
        }
    });
    let mut answers = Vec::new();
    let mut failed = Vec::new();
    for (target, outcome) in futures_util::future::join_all(calls).await {
        match outcome {
            Ok(answer) => answers.push((target, answer)),
            Err(BackendError::Refused(err)) => return Err(err),
            Err(failure) => failed.push(FailedNode {
                node: target.name.clone(),
                error: failure.message(),
            }),
        }
    }
    Ok((answers, failed))
}

/// `from`/`to` as sent to backends: the resolved instant when given (relative times are
/// resolved once, here), absent when not.
fn absolute(text: &Option<String>, micros: i64) -> Option<String> {
    text.as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|_| format_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::aggregate::{AggParams, FieldsResponse};
    use crate::search::backend::{CountsRequest, Followed, Page, StatsAnswer, TailItem, TopPart};
    use crate::search::{
        ContextParams, ContextResponse, HistogramParams, HistogramResponse, SearchParams,
    };

    /// A backend that answers `page` with `answer` (or never).
    struct Fake(Option<Result<u64, &'static str>>);

    impl Backend for Fake {
        fn page(&self, _: SearchParams) -> BoxFuture<'_, Result<Page, BackendError>> {
            unimplemented!()
        }
        fn histogram(
            &self,
            _: HistogramParams,
        ) -> BoxFuture<'_, Result<HistogramResponse, BackendError>> {
            unimplemented!()
        }
        fn top(&self, _: AggParams) -> BoxFuture<'_, Result<TopPart, BackendError>> {
            unimplemented!()
        }
        fn counts(&self, _: CountsRequest) -> BoxFuture<'_, Result<Vec<u64>, BackendError>> {
            let answer = self.0;
            Box::pin(async move {
                match answer {
                    Some(Ok(n)) => Ok(vec![n]),
                    Some(Err("refuse")) => Err(BackendError::Refused(SearchError::BadQuery {
                        query: "x".into(),
                        reason: "invalid".into(),
                    })),
                    Some(Err(message)) => Err(BackendError::failed(message)),
                    None => std::future::pending().await,
                }
            })
        }
        fn stats(&self, _: AggParams) -> BoxFuture<'_, Result<StatsAnswer, BackendError>> {
            unimplemented!()
        }
        fn fields(&self, _: AggParams) -> BoxFuture<'_, Result<FieldsResponse, BackendError>> {
            unimplemented!()
        }
        fn context(
            &self,
            _: ContextParams,
        ) -> BoxFuture<'_, Result<ContextResponse, BackendError>> {
            unimplemented!()
        }
        fn follow<'a>(
            &'a self,
            _: &'a str,
            _: bool,
            _: &'a tokio::sync::mpsc::Sender<TailItem>,
            _: &'a mut bool,
        ) -> BoxFuture<'a, Followed> {
            unimplemented!()
        }
    }

    fn targets(answers: [Option<Result<u64, &'static str>>; 3]) -> Vec<Target> {
        ["a", "b", "c"]
            .iter()
            .zip(answers)
            .map(|(name, answer)| Target {
                name: name.to_string(),
                backend: Arc::new(Fake(answer)),
            })
            .collect()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    fn ask(target: &Target) -> BoxFuture<'_, Result<Vec<u64>, BackendError>> {
        target.backend.counts(CountsRequest {
            field: None,
            q: None,
            from: None,
            to: None,
            audit: false,
            values: Vec::new(),
        })
    }

    #[test]
    fn dead_and_silent_nodes_are_failed_entries_and_the_others_answer() {
        let targets = targets([
            Some(Ok(1)),
            Some(Err("unreachable: connection refused")),
            None,
        ]);
        let (answers, failed) = runtime()
            .block_on(gather(Duration::from_millis(50), &targets, ask))
            .unwrap();
        let answered: Vec<(&str, Vec<u64>)> = answers
            .iter()
            .map(|(t, v)| (t.name.as_str(), v.clone()))
            .collect();
        assert_eq!(answered, [("a", vec![1])]);
        assert_eq!(failed.len(), 2);
        assert_eq!(
            failed[0],
            FailedNode {
                node: "b".into(),
                error: "unreachable: connection refused".into()
            }
        );
        assert_eq!(failed[1].node, "c");
        assert!(failed[1].error.contains("no answer within"), "{failed:?}");
        let json = serde_json::to_value(WithNodes {
            inner: serde_json::json!({"total": 1}),
            nodes: NodesReport { queried: 3, failed },
        })
        .unwrap();
        assert_eq!(json["total"], 1);
        assert_eq!(json["nodes"]["queried"], 3);
        assert_eq!(json["nodes"]["failed"][0]["node"], "b");
    }

    #[test]
    fn a_query_a_backend_refuses_fails_the_request() {
        let targets = targets([Some(Err("refuse")), Some(Ok(1)), Some(Ok(2))]);
        let outcome = runtime().block_on(gather(Duration::from_secs(5), &targets, ask));
        assert!(matches!(outcome, Err(SearchError::BadQuery { .. })));
    }

    #[test]
    fn failures_read_well() {
        let remote = BackendError::Failed {
            status: Some(503),
            message: "shutting down".into(),
        };
        assert_eq!(remote.message(), "HTTP 503: shutting down");
        assert_eq!(BackendError::failed("busy").message(), "busy");
    }
}
