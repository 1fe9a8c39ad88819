//! Search across nodes: the node that receives a search asks every selected node at once (itself
//! without HTTP, the others on their `/internal/v1/...` routes with the cluster secret), each
//! within `cluster.search_timeout`, and merges the answers (`search::merge`). A node that is
//! `lost` (heard from before, silent for `cluster.lost_after`) is not asked; a node that fails or
//! does not answer in time is reported in `nodes.failed`, and the search answers 200 with the
//! others: partial results with a clear flag, never a failed search. Two exceptions: a query this
//! node itself refuses (a syntax error, a bad parameter) is a 400 before any node is asked, and
//! when no node at all answered the search is a 503 naming each failure ([`finish`]).
//!
//! Parameters are not forwarded verbatim: they are parsed here and sent again, with relative
//! times resolved once (every node searches the same range), each node's own cursor, and the
//! audit trail included only when the caller here may see it (`audit=true`; the internal routes
//! only trust the cluster secret, so the flag cannot come from a user's query string).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::search::local;
use super::{ApiError, AppState, CLUSTER_SECRET_HEADER};
use crate::search::aggregate::{
    self, AggParams, FieldsResponse, IntermediateAggregationResults, MAX_TOP, StatsResponse,
    TopResponse,
};
use crate::search::merge::{self, Cursor, HistogramPart, NodePage, TopPart};
use crate::search::{
    self, Bucket, ContextParams, ContextResponse, DEFAULT_LIMIT, HistogramParams,
    HistogramResponse, Hit, MAX_LIMIT, SearchParams, SearchResponse, format_micros, resolve_range,
};

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
#[derive(Debug, Default, Deserialize)]
pub struct Selection {
    pub nodes: Option<String>,
}

/// Flags of the node-to-node routes.
#[derive(Debug, Default, Deserialize)]
pub struct InternalFlags {
    /// Include the audit trail: the asking node checked that its caller may see it.
    #[serde(default)]
    pub audit: bool,
}

/// `/internal/v1/search`: a page with the sort key of each hit.
#[derive(Debug, Serialize, Deserialize)]
pub struct InternalPage {
    #[serde(flatten)]
    pub response: SearchResponse,
    pub sorts: Vec<u64>,
}

/// `/internal/v1/top`: top values with tantivy's error bound on their counts.
#[derive(Debug, Serialize, Deserialize)]
pub struct InternalTop {
    #[serde(flatten)]
    pub top: TopResponse,
    pub bound: u64,
}

/// `POST /internal/v1/top/counts`: count exactly these values of `field`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountsRequest {
    pub field: Option<String>,
    pub q: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    #[serde(default)]
    pub audit: bool,
    pub values: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CountsResponse {
    pub counts: Vec<u64>,
}

/// `/internal/v1/stats`: the partial result to merge (tantivy's intermediate aggregation
/// result as JSON), absent when no document has a value.
#[derive(Debug, Serialize, Deserialize)]
pub struct InternalStats {
    pub field: String,
    pub partial: Option<Value>,
}

/// Top values across nodes: `exact` says the values listed are provably the most frequent ones
/// (their counts are exact either way).
#[derive(Debug, Serialize)]
pub struct MergedTop {
    #[serde(flatten)]
    pub top: TopResponse,
    pub exact: bool,
}

/// A node a search goes to.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub url: String,
    /// This node: searched without HTTP.
    pub local: bool,
}

/// The nodes a search goes to, and the report so far (lost nodes are failed without asking).
#[derive(Debug)]
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

/// The report of a search that `answered` nodes answered. When none did, the search fails
/// with a 503 naming every failure: an empty 200 would read as "no matches" to a client that
/// does not look at `nodes` (the CLI, scripts), and a node that is too busy keeps answering 503
/// as it did alone.
fn finish(plan: &Plan, failed: Vec<FailedNode>, answered: usize) -> Result<NodesReport, ApiError> {
    let mut report = plan.report.clone();
    report.failed.extend(failed);
    if answered == 0 {
        let reasons: Vec<String> = report
            .failed
            .iter()
            .map(|f| format!("{}: {}", f.node, f.error))
            .collect();
        return Err(ApiError::Unavailable(format!(
            "no node answered ({})",
            reasons.join("; ")
        )));
    }
    Ok(report)
}

/// The nodes selected by `?nodes=` (all members when absent), with lost ones set aside: a node
/// heard from before but not for `cluster.lost_after` is not asked (it would only cost a
/// timeout). A node never heard from (this node just started, or it just joined) is asked.
pub fn plan(state: &AppState, selection: Option<&str>) -> Result<Plan, ApiError> {
    let cluster = &state.cluster;
    // (name, url, lost since)
    let mut members: Vec<(String, String, Option<String>)> = cluster
        .view()?
        .into_iter()
        .map(|view| {
            let lost = (view.status == "lost" && !view.is_self)
                .then_some(view.last_heartbeat)
                .flatten();
            (view.id, view.url, lost)
        })
        .collect();
    // This node before it is registered (joining) is still a member for its own searches.
    if !members.iter().any(|(name, _, _)| *name == cluster.name) {
        members.push((cluster.name.clone(), cluster.url.clone(), None));
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
        return Err(ApiError::BadRequest(format!(
            "invalid nodes: no node named {unknown:?} (nodes: {})",
            known.join(", ")
        )));
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
        let local = name == cluster.name;
        plan.targets.push(Target { name, url, local });
    }
    Ok(plan)
}

fn humantime(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 1.0 {
        format!("{}s", secs.round() as u64)
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// Why a node did not give an answer.
#[derive(Debug)]
pub enum Failure {
    /// This node refused the query itself: the whole request fails with it.
    Refused(ApiError),
    /// The node failed: reported in `nodes.failed`.
    Node {
        status: Option<u16>,
        message: String,
    },
}

impl Failure {
    fn node(message: impl Into<String>) -> Failure {
        Failure::Node {
            status: None,
            message: message.into(),
        }
    }

    /// A failure of this node's own search: a refused query stays a refusal.
    fn local(err: ApiError) -> Failure {
        match err {
            ApiError::BadRequest(_) => Failure::Refused(err),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "local part of a cluster search failed");
                Failure::node("internal error; see the node's log")
            }
            other => Failure::node(other.to_string()),
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Refused(err) => err.to_string(),
            Failure::Node {
                status: Some(status),
                message,
            } => format!("HTTP {status}: {message}"),
            Failure::Node {
                status: None,
                message,
            } => message.clone(),
        }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// This node's own part of a cluster call: the blocking search on this node's index (with its
/// concurrency slot); a query it refuses stays a refusal.
fn here<'a, T, F>(state: &AppState, search: F) -> BoxFuture<'a, Result<T, Failure>>
where
    T: Send + 'static,
    F: FnOnce(
            &crate::index::IndexStore,
            &crate::search::QueryBuilder,
        ) -> Result<T, crate::search::SearchError>
        + Send
        + 'static,
{
    let state = state.clone();
    Box::pin(async move { local(state, search).await.map_err(Failure::local) })
}

/// Ask every target at once, each within the search timeout. Returns the answers (in target
/// order) and the nodes that failed; a query this node refuses is the request's error.
async fn gather<'a, T: Send + 'a>(
    timeout: Duration,
    targets: &'a [Target],
    ask: impl Fn(&'a Target) -> BoxFuture<'a, Result<T, Failure>>,
) -> Result<(Vec<(&'a Target, T)>, Vec<FailedNode>), ApiError> {
    let calls = targets.iter().map(|target| {
        let call = ask(target);
        async move {
            let outcome = match tokio::time::timeout(timeout, call).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Failure::node(format!(
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
            Err(Failure::Refused(err)) => return Err(err),
            Err(failure) => failed.push(FailedNode {
                node: target.name.clone(),
                error: failure.message(),
            }),
        }
    }
    Ok((answers, failed))
}

/// Query pairs for a node-to-node call.
#[derive(Debug, Clone, Default)]
struct Pairs(Vec<(&'static str, String)>);

impl Pairs {
    fn opt(mut self, key: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(value) = value {
            self.0.push((key, value.to_string()));
        }
        self
    }
    fn audit(self, audit: bool) -> Self {
        self.opt("audit", audit.then_some("true"))
    }
}

/// A node-to-node call's error with its causes, e.g. "error sending request for url (...):
/// client error (Connect): tcp connect error: Connection refused (os error 111)".
pub fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn remote_error(err: reqwest::Error, timeout: Duration) -> Failure {
    if err.is_timeout() {
        Failure::node(format!(
            "no answer within {} (cluster.search_timeout)",
            humantime(timeout)
        ))
    } else if err.is_connect() {
        Failure::node(format!("unreachable: {}", err.without_url()))
    } else {
        Failure::node(err.without_url().to_string())
    }
}

/// The error of a non-2xx answer: the message of our `{"error": {"message"}}` body.
async fn status_error(response: reqwest::Response) -> Failure {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    Failure::Node {
        status: Some(status),
        message,
    }
}

async fn decode<T: DeserializeOwned>(
    response: reqwest::Response,
    timeout: Duration,
) -> Result<T, Failure> {
    if !response.status().is_success() {
        return Err(status_error(response).await);
    }
    response
        .json::<T>()
        .await
        .map_err(|err| match remote_error(err, timeout) {
            Failure::Node { message, .. } => Failure::node(format!("bad answer: {message}")),
            other => other,
        })
}

fn remote_get<'a, T: DeserializeOwned + Send + 'a>(
    state: &'a AppState,
    target: &'a Target,
    path: &'static str,
    pairs: Pairs,
) -> BoxFuture<'a, Result<T, Failure>> {
    Box::pin(async move {
        let timeout = state.cluster.config.search_timeout;
        let response = state
            .cluster
            .client
            .get(format!("{}{path}", target.url))
            .header(CLUSTER_SECRET_HEADER, state.cluster.secret.reveal())
            .query(&pairs.0)
            .timeout(timeout)
            .send()
            .await
            .map_err(|err| remote_error(err, timeout))?;
        decode(response, timeout).await
    })
}

fn remote_post<'a, T: DeserializeOwned + Send + 'a, B: Serialize + Sync + 'a>(
    state: &'a AppState,
    target: &'a Target,
    path: &'static str,
    body: &'a B,
) -> BoxFuture<'a, Result<T, Failure>> {
    Box::pin(async move {
        let timeout = state.cluster.config.search_timeout;
        let response = state
            .cluster
            .client
            .post(format!("{}{path}", target.url))
            .header(CLUSTER_SECRET_HEADER, state.cluster.secret.reveal())
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|err| remote_error(err, timeout))?;
        decode(response, timeout).await
    })
}

/// `from`/`to` as sent to nodes: the resolved instant when given (relative times are resolved
/// once, here), absent when not.
fn absolute(text: &Option<String>, micros: i64) -> Option<String> {
    text.as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(|_| format_micros(micros))
}

// ---- search --------------------------------------------------------------------------------

pub async fn search(
    state: AppState,
    params: SearchParams,
    selection: Selection,
) -> Result<WithNodes<SearchResponse>, ApiError> {
    let started = Instant::now();
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    state.queries.parse(params.q.as_deref().unwrap_or(""))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let cursor = params
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(Cursor::parse)
        .transpose()?;
    let plan = plan(&state, selection.nodes.as_deref())?;
    let base = SearchParams {
        q: params.q.clone(),
        from: absolute(&params.from, from),
        to: absolute(&params.to, to),
        limit: Some(limit),
        cursor: None,
        hide_audit: params.hide_audit,
    };
    let (answers, failed) = gather(
        state.cluster.config.search_timeout,
        &plan.targets,
        |target| {
            let mut node_params = base.clone();
            node_params.cursor = cursor
                .as_ref()
                .map(|c| c.bound_for(&target.name).to_string());
            page(&state, target, node_params)
        },
    )
    .await?;
    let report = finish(&plan, failed, answers.len())?;
    let pages = answers
        .into_iter()
        .map(|(target, page)| node_page(target, page))
        .collect();
    let merged = merge::merge_pages(pages, limit);
    Ok(WithNodes {
        inner: SearchResponse {
            total: merged.total,
            hits: merged.hits,
            cursor: merged.cursor.map(|c| c.format(plan.spans_nodes())),
            from: format_micros(from),
            to: format_micros(to),
            took_ms: started.elapsed().as_millis() as u64,
        },
        nodes: report,
    })
}

/// One node's page (its own cursor in `params`).
fn page<'a>(
    state: &'a AppState,
    target: &'a Target,
    params: SearchParams,
) -> BoxFuture<'a, Result<InternalPage, Failure>> {
    if target.local {
        return here(state, move |index, queries| {
            search::search_keyed(index, queries, &params)
                .map(|(response, sorts)| InternalPage { response, sorts })
        });
    }
    let pairs = Pairs::default()
        .opt("q", params.q)
        .opt("from", params.from)
        .opt("to", params.to)
        .opt("limit", params.limit)
        .opt("cursor", params.cursor)
        .audit(!params.hide_audit);
    remote_get(state, target, "/internal/v1/search", pairs)
}

fn node_page(target: &Target, page: InternalPage) -> NodePage {
    NodePage {
        node: target.name.clone(),
        total: page.response.total,
        hits: page.sorts.into_iter().zip(page.response.hits).collect(),
    }
}

// ---- histogram -----------------------------------------------------------------------------

pub async fn histogram(
    state: AppState,
    params: HistogramParams,
    selection: Selection,
) -> Result<WithNodes<HistogramResponse>, ApiError> {
    let started = Instant::now();
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    state.queries.parse(params.q.as_deref().unwrap_or(""))?;
    let requested = match params.interval.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => Some(search::parse_interval(text).map_err(|reason| {
            ApiError::BadRequest(format!("invalid interval {text:?}: {reason}"))
        })?),
        None => None,
    };
    let plan = plan(&state, selection.nodes.as_deref())?;
    let base = HistogramParams {
        q: params.q.clone(),
        from: absolute(&params.from, from),
        to: absolute(&params.to, to),
        interval: params.interval.clone(),
        hide_audit: params.hide_audit,
    };
    let (answers, mut failed) = gather(
        state.cluster.config.search_timeout,
        &plan.targets,
        |target| node_histogram(&state, target, base.clone()),
    )
    .await?;
    let mut parts: Vec<(&Target, HistogramPart)> = Vec::new();
    for (target, response) in answers {
        match histogram_part(&response) {
            Some(part) => parts.push((target, part)),
            None => failed.push(FailedNode {
                node: target.name.clone(),
                error: format!("bad answer: unreadable histogram {:?}", response.interval),
            }),
        }
    }
    let all: Vec<HistogramPart> = parts.iter().map(|(_, p)| p.clone()).collect();
    let interval = merge::merged_interval(&all, requested)
        .unwrap_or_else(|| search::auto_interval(3_600_000_000));
    // Nodes whose buckets do not nest in the merged ones are asked again with its interval.
    let again: Vec<Target> = parts
        .iter()
        .filter(|(_, part)| !merge::nests(part, interval))
        .map(|(target, _)| (*target).clone())
        .collect();
    let mut parts: Vec<HistogramPart> = parts
        .into_iter()
        .filter(|(_, part)| merge::nests(part, interval))
        .map(|(_, part)| part)
        .collect();
    if !again.is_empty() {
        let mut fixed = base.clone();
        fixed.interval = Some(search::format_interval(interval));
        let (answers, more_failed) =
            gather(state.cluster.config.search_timeout, &again, |target| {
                node_histogram(&state, target, fixed.clone())
            })
            .await?;
        failed.extend(more_failed);
        for (target, response) in answers {
            match histogram_part(&response).filter(|part| merge::nests(part, interval)) {
                Some(part) => parts.push(part),
                None => failed.push(FailedNode {
                    node: target.name.clone(),
                    error: format!(
                        "bad answer: histogram in {:?}, asked for {}",
                        response.interval,
                        search::format_interval(interval)
                    ),
                }),
            }
        }
    }
    let report = finish(&plan, failed, parts.len())?;
    let buckets = merge::merge_histograms(&parts, interval);
    Ok(WithNodes {
        inner: HistogramResponse {
            interval: search::format_interval(interval),
            total: buckets.iter().map(|(_, count)| count).sum(),
            buckets: buckets
                .into_iter()
                .map(|(start, count)| Bucket {
                    ts: format_micros(start),
                    count,
                })
                .collect(),
            took_ms: started.elapsed().as_millis() as u64,
        },
        nodes: report,
    })
}

fn node_histogram<'a>(
    state: &'a AppState,
    target: &'a Target,
    params: HistogramParams,
) -> BoxFuture<'a, Result<HistogramResponse, Failure>> {
    if target.local {
        return here(state, move |index, queries| {
            search::histogram(index, queries, &params)
        });
    }
    let pairs = Pairs::default()
        .opt("q", params.q)
        .opt("from", params.from)
        .opt("to", params.to)
        .opt("interval", params.interval)
        .audit(!params.hide_audit);
    remote_get(state, target, "/internal/v1/histogram", pairs)
}

fn histogram_part(response: &HistogramResponse) -> Option<HistogramPart> {
    let interval = search::parse_interval(&response.interval).ok()?;
    let buckets = response
        .buckets
        .iter()
        .map(|bucket| {
            chrono::DateTime::parse_from_rfc3339(&bucket.ts)
                .ok()
                .map(|ts| (ts.timestamp_micros(), bucket.count))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(HistogramPart { interval, buckets })
}

// ---- top values ----------------------------------------------------------------------------

/// Top values, exact for counts: phase 1 asks every node for its top list, longer than asked
/// (`2 × size + 10`); phase 2 asks the nodes whose list was cut for the exact counts of the
/// candidates they could not vouch for (`merge::counts_needed`), and `merge::merge_top` sums.
/// A node that fails either phase is left out entirely (its counts would be partial).
pub async fn top(
    state: AppState,
    params: AggParams,
    selection: Selection,
) -> Result<WithNodes<MergedTop>, ApiError> {
    let started = Instant::now();
    let field = aggregate::field_path(params.field.as_deref())?;
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    state.queries.parse(params.q.as_deref().unwrap_or(""))?;
    let size = params.size.unwrap_or(10).clamp(1, MAX_TOP);
    let plan = plan(&state, selection.nodes.as_deref())?;
    let base = AggParams {
        field: Some(field.clone()),
        q: params.q.clone(),
        from: absolute(&params.from, from),
        to: absolute(&params.to, to),
        size: Some((size * 2 + 10).min(MAX_TOP)),
        hide_audit: params.hide_audit,
    };
    let (answers, mut failed) = gather(
        state.cluster.config.search_timeout,
        &plan.targets,
        |target| node_top(&state, target, base.clone()),
    )
    .await?;
    let mut parts: Vec<TopPart> = answers
        .iter()
        .map(|(target, answer)| TopPart {
            node: target.name.clone(),
            values: answer.top.values.clone(),
            other: answer.top.other,
            bound: answer.bound,
        })
        .collect();
    let candidates = merge::top_candidates(&parts);
    let asks: HashMap<String, Vec<usize>> = parts
        .iter()
        .map(|part| (part.node.clone(), merge::counts_needed(part, &candidates)))
        .filter(|(_, needed)| !needed.is_empty())
        .collect();
    let mut exact: HashMap<String, Vec<(usize, u64)>> = HashMap::new();
    if !asks.is_empty() {
        let second: Vec<Target> = plan
            .targets
            .iter()
            .filter(|t| asks.contains_key(&t.name))
            .cloned()
            .collect();
        let requests: HashMap<String, CountsRequest> = asks
            .iter()
            .map(|(node, needed)| {
                let request = CountsRequest {
                    field: base.field.clone(),
                    q: base.q.clone(),
                    from: base.from.clone(),
                    to: base.to.clone(),
                    audit: !base.hide_audit,
                    values: needed.iter().map(|&i| candidates[i].clone()).collect(),
                };
                (node.clone(), request)
            })
            .collect();
        let (answers, more_failed) =
            gather(state.cluster.config.search_timeout, &second, |target| {
                node_counts(&state, target, &requests[&target.name])
            })
            .await?;
        for (target, counts) in answers {
            let needed = &asks[&target.name];
            if counts.counts.len() != needed.len() {
                failed.push(FailedNode {
                    node: target.name.clone(),
                    error: "bad answer: wrong number of counts".into(),
                });
                continue;
            }
            exact.insert(
                target.name.clone(),
                needed.iter().copied().zip(counts.counts).collect(),
            );
        }
        // Nodes without exact counts are left out: their lists alone would be wrong.
        parts.retain(|part| !asks.contains_key(&part.node) || exact.contains_key(&part.node));
        failed.extend(more_failed);
    }
    let report = finish(&plan, failed, parts.len())?;
    let merged = merge::merge_top(&parts, &candidates, &exact, size);
    Ok(WithNodes {
        inner: MergedTop {
            top: TopResponse {
                field,
                values: merged.values,
                other: merged.other,
                took_ms: started.elapsed().as_millis() as u64,
            },
            exact: merged.exact,
        },
        nodes: report,
    })
}

fn node_top<'a>(
    state: &'a AppState,
    target: &'a Target,
    params: AggParams,
) -> BoxFuture<'a, Result<InternalTop, Failure>> {
    if target.local {
        return here(state, move |index, queries| {
            aggregate::top_with_bound(index, queries, &params)
                .map(|(top, bound)| InternalTop { top, bound })
        });
    }
    remote_get(state, target, "/internal/v1/top", agg_pairs(params))
}

fn node_counts<'a>(
    state: &'a AppState,
    target: &'a Target,
    request: &'a CountsRequest,
) -> BoxFuture<'a, Result<CountsResponse, Failure>> {
    if target.local {
        let request = request.clone();
        return here(state, move |index, queries| {
            aggregate::count_values(index, queries, &counts_params(&request), &request.values)
                .map(|counts| CountsResponse { counts })
        });
    }
    remote_post(state, target, "/internal/v1/top/counts", request)
}

/// The aggregation parameters of a counts request.
pub fn counts_params(request: &CountsRequest) -> AggParams {
    AggParams {
        field: request.field.clone(),
        q: request.q.clone(),
        from: request.from.clone(),
        to: request.to.clone(),
        size: None,
        hide_audit: !request.audit,
    }
}

fn agg_pairs(params: AggParams) -> Pairs {
    Pairs::default()
        .opt("field", params.field)
        .opt("q", params.q)
        .opt("from", params.from)
        .opt("to", params.to)
        .opt("size", params.size)
        .audit(!params.hide_audit)
}

/// Validated parameters for a node: field checked, times resolved once.
fn agg_base(state: &AppState, params: &AggParams) -> Result<AggParams, ApiError> {
    let field = aggregate::field_path(params.field.as_deref())?;
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    state.queries.parse(params.q.as_deref().unwrap_or(""))?;
    Ok(AggParams {
        field: Some(field),
        q: params.q.clone(),
        from: absolute(&params.from, from),
        to: absolute(&params.to, to),
        size: params.size,
        hide_audit: params.hide_audit,
    })
}

// ---- stats ---------------------------------------------------------------------------------

/// Numeric stats: every node's partial result (count, sum, min, max, percentile sketch) merged
/// as tantivy merges partitions, so the stats are those of one index holding all the data.
pub async fn stats(
    state: AppState,
    params: AggParams,
    selection: Selection,
) -> Result<WithNodes<StatsResponse>, ApiError> {
    let started = Instant::now();
    let base = agg_base(&state, &params)?;
    let field = base.field.clone().unwrap_or_default();
    let plan = plan(&state, selection.nodes.as_deref())?;
    let (answers, mut failed) = gather(
        state.cluster.config.search_timeout,
        &plan.targets,
        |target| node_stats(&state, target, base.clone()),
    )
    .await?;
    let mut answered = answers.len();
    let mut partials: Vec<(&Target, StatsPartial)> = Vec::new();
    for (target, answer) in answers {
        if let Some(partial) = answer {
            partials.push((target, partial));
        }
    }
    let partials: Vec<IntermediateAggregationResults> = match partials.as_slice() {
        // This node alone: its partial as it is (exactly the single-node stats).
        [(_, StatsPartial::Local(_))] => match partials.remove(0).1 {
            StatsPartial::Local(partial) => vec![partial],
            StatsPartial::Remote(_) => unreachable!(),
        },
        // Every partial goes through JSON, this node's too: percentile sketches merge only
        // when their configurations compare equal, which they do when decoded the same way.
        _ => {
            let mut decoded = Vec::new();
            for (target, partial) in partials {
                let json = match partial {
                    StatsPartial::Local(partial) => serde_json::to_value(partial)
                        .map_err(|err| ApiError::Internal(err.to_string()))?,
                    StatsPartial::Remote(json) => json,
                };
                match serde_json::from_value::<IntermediateAggregationResults>(json) {
                    Ok(partial) => decoded.push(partial),
                    Err(err) => {
                        answered -= 1;
                        failed.push(FailedNode {
                            node: target.name.clone(),
                            error: format!(
                                "bad answer: unreadable stats ({err}); is it another version?"
                            ),
                        });
                    }
                }
            }
            decoded
        }
    };
    let report = finish(&plan, failed, answered)?;
    let mut stats = aggregate::stats_merged(&field, partials)?;
    stats.took_ms = started.elapsed().as_millis() as u64;
    Ok(WithNodes {
        inner: stats,
        nodes: report,
    })
}

/// A node's partial stats: this node's as computed, another's as it came (JSON).
enum StatsPartial {
    Local(IntermediateAggregationResults),
    Remote(Value),
}

fn node_stats<'a>(
    state: &'a AppState,
    target: &'a Target,
    params: AggParams,
) -> BoxFuture<'a, Result<Option<StatsPartial>, Failure>> {
    if target.local {
        return here(state, move |index, queries| {
            aggregate::stats_partial(index, queries, &params)
                .map(|(_, partial)| partial.map(StatsPartial::Local))
        });
    }
    Box::pin(async move {
        let answer: InternalStats =
            remote_get(state, target, "/internal/v1/stats", agg_pairs(params)).await?;
        Ok(answer.partial.map(StatsPartial::Remote))
    })
}

/// This node's answer to `/internal/v1/stats`.
pub fn internal_stats(
    index: &crate::index::IndexStore,
    queries: &crate::search::QueryBuilder,
    params: &AggParams,
) -> Result<InternalStats, crate::search::SearchError> {
    let (field, partial) = aggregate::stats_partial(index, queries, params)?;
    Ok(InternalStats {
        field,
        partial: partial.and_then(|p| serde_json::to_value(p).ok()),
    })
}

// ---- fields --------------------------------------------------------------------------------

/// Fields present: each node samples its newest matches; the samples are pooled.
pub async fn fields(
    state: AppState,
    params: AggParams,
    selection: Selection,
) -> Result<WithNodes<FieldsResponse>, ApiError> {
    let started = Instant::now();
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    state.queries.parse(params.q.as_deref().unwrap_or(""))?;
    let base = AggParams {
        from: absolute(&params.from, from),
        to: absolute(&params.to, to),
        ..params.clone()
    };
    let plan = plan(&state, selection.nodes.as_deref())?;
    let (answers, failed) = gather(
        state.cluster.config.search_timeout,
        &plan.targets,
        |target| node_fields(&state, target, base.clone()),
    )
    .await?;
    let report = finish(&plan, failed, answers.len())?;
    let mut parts: Vec<FieldsResponse> = answers.into_iter().map(|(_, f)| f).collect();
    let mut merged = if parts.len() == 1 {
        parts.remove(0)
    } else {
        merge::merge_fields(&parts)
    };
    merged.took_ms = started.elapsed().as_millis() as u64;
    Ok(WithNodes {
        inner: merged,
        nodes: report,
    })
}

fn node_fields<'a>(
    state: &'a AppState,
    target: &'a Target,
    params: AggParams,
) -> BoxFuture<'a, Result<FieldsResponse, Failure>> {
    if target.local {
        return here(state, move |index, queries| {
            aggregate::fields(index, queries, &params)
        });
    }
    remote_get(state, target, "/internal/v1/fields", agg_pairs(params))
}

// ---- context -------------------------------------------------------------------------------

/// The lines around a hit, from the node that holds it (`node`, this node when absent). Its
/// refusals (no such hit) are this request's; when it cannot answer, a 503 says why.
pub async fn context(
    state: AppState,
    params: ContextParams,
    node: Option<String>,
) -> Result<WithNodes<ContextResponse>, ApiError> {
    let name = node
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| state.cluster.name.clone());
    let plan = plan(&state, Some(&name))?;
    let Some(target) = plan.targets.first() else {
        return Err(finish(&plan, Vec::new(), 0).expect_err("nobody answered"));
    };
    let timeout = state.cluster.config.search_timeout;
    let call: BoxFuture<'_, Result<ContextResponse, Failure>> = if target.local {
        let (state, params) = (state.clone(), params.clone());
        Box::pin(async move {
            local(state, move |index, _| search::context(index, &params))
                .await
                .map_err(Failure::local)
        })
    } else {
        let pairs = Pairs::default()
            .opt("id", params.id.clone())
            .opt("before", params.before)
            .opt("after", params.after);
        remote_get(&state, target, "/internal/v1/context", pairs)
    };
    let outcome = tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(Failure::node(format!(
                "no answer within {} (cluster.search_timeout)",
                humantime(timeout)
            )))
        });
    match outcome {
        Ok(context) => Ok(WithNodes {
            inner: context,
            nodes: finish(&plan, Vec::new(), 1)?,
        }),
        Err(Failure::Refused(err)) => Err(err),
        // The node refused: no such hit, a bad id.
        Err(Failure::Node {
            status: Some(400),
            message,
        }) => Err(ApiError::BadRequest(message)),
        Err(Failure::Node {
            status: Some(404),
            message,
        }) => Err(ApiError::NotFound(message)),
        Err(failure) => {
            let failed = vec![FailedNode {
                node: target.name.clone(),
                error: failure.message(),
            }];
            Err(finish(&plan, failed, 0).expect_err("nobody answered"))
        }
    }
}

// ---- export --------------------------------------------------------------------------------

/// Rows per page fetched from each node during an export.
const EXPORT_PAGE: usize = 2000;

/// One node's part of an export: its buffered page and its own cursor.
struct ExportSource {
    target: Target,
    buffer: VecDeque<(u64, Hit)>,
    /// The cursor of its next page; `None` when it has no more.
    next: Option<String>,
}

/// Every match of a query on every selected node, merged newest first (the order of a
/// single-node export) with one page per node in memory at a time.
pub struct ExportMerge {
    state: AppState,
    params: SearchParams,
    sources: Vec<ExportSource>,
}

/// Start an export: the first page of every node is fetched now, so a bad query is a 400 and
/// nodes that fail at the start are reported (in the response headers) before the body.
pub async fn export(
    state: AppState,
    params: SearchParams,
    selection: Selection,
) -> Result<(ExportMerge, NodesReport), ApiError> {
    let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
    state.queries.parse(params.q.as_deref().unwrap_or(""))?;
    let plan = plan(&state, selection.nodes.as_deref())?;
    let base = SearchParams {
        q: params.q.clone(),
        from: absolute(&params.from, from),
        to: absolute(&params.to, to),
        limit: Some(EXPORT_PAGE),
        cursor: None,
        hide_audit: params.hide_audit,
    };
    let (answers, failed) = gather(
        state.cluster.config.search_timeout,
        &plan.targets,
        |target| page(&state, target, base.clone()),
    )
    .await?;
    let report = finish(&plan, failed, answers.len())?;
    let sources = answers
        .into_iter()
        .map(|(target, first)| ExportSource {
            target: target.clone(),
            next: first.response.cursor.clone(),
            buffer: first.sorts.into_iter().zip(first.response.hits).collect(),
        })
        .collect();
    Ok((
        ExportMerge {
            state,
            params: base,
            sources,
        },
        report,
    ))
}

impl ExportMerge {
    /// The next hit in order, fetching a node's next page when its buffer runs out. A node that
    /// fails now ends the export with an error: a truncated export must not look complete.
    pub async fn next(&mut self) -> Result<Option<Hit>, String> {
        let timeout = self.state.cluster.config.search_timeout;
        for source in &mut self.sources {
            if !source.buffer.is_empty() {
                continue;
            }
            let Some(cursor) = source.next.take() else {
                continue;
            };
            let mut params = self.params.clone();
            params.cursor = Some(cursor);
            let call = page(&self.state, &source.target, params);
            let page = match tokio::time::timeout(timeout, call).await {
                Ok(Ok(page)) => page,
                Ok(Err(failure)) => {
                    return Err(format!(
                        "node {} failed during the export: {}",
                        source.target.name,
                        failure.message()
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "node {} did not answer within {} during the export",
                        source.target.name,
                        humantime(timeout)
                    ));
                }
            };
            source.next = page.response.cursor.clone();
            source.buffer = page.sorts.into_iter().zip(page.response.hits).collect();
        }
        let heads = self.sources.iter().map(|s| {
            (
                s.target.name.as_str(),
                s.buffer.front().map(|(sort, _)| *sort),
            )
        });
        let Some(index) = merge::next_in_order(heads) else {
            return Ok(None);
        };
        Ok(self.sources[index].buffer.pop_front().map(|(_, hit)| hit))
    }
}

// ---- live tail -----------------------------------------------------------------------------

/// What a tail stream carries, from every node into one channel.
#[derive(Debug)]
pub enum TailItem {
    Hit(Box<Hit>),
    /// Lines skipped because the client fell behind.
    Dropped(u64),
    /// First event of a tail over several nodes.
    Nodes(NodesReport),
    /// A node's stream ended (or could not start); it is retried while it is not lost.
    NodeFailed(FailedNode),
    /// A failed node's stream is back.
    NodeBack(String),
}

/// Wait between attempts to follow a node's tail again.
const TAIL_RETRY: Duration = Duration::from_secs(2);
/// A node's tail stream that sends nothing (not even a keep-alive) for this long is dead.
pub const TAIL_IDLE: Duration = Duration::from_secs(20);

/// Follow `target`'s `/internal/v1/tail` into `tx` until the client goes away: lines as they
/// come, a `NodeFailed` when the stream fails, a `NodeBack` when it works again.
pub fn spawn_remote_tail(
    state: AppState,
    target: Target,
    q: String,
    audit: bool,
    tx: mpsc::Sender<TailItem>,
    already_failed: bool,
) {
    tokio::spawn(async move {
        let mut failed = already_failed;
        loop {
            if tx.is_closed() {
                return;
            }
            let lost = state.cluster.status_of(&target.name) == "lost";
            if !(failed && lost) {
                match follow(&state, &target, &q, audit, &tx, &mut failed).await {
                    Ok(()) => return,
                    Err(failure) if !failed => {
                        failed = true;
                        let item = TailItem::NodeFailed(FailedNode {
                            node: target.name.clone(),
                            error: failure,
                        });
                        if tx.send(item).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(TAIL_RETRY) => {}
            }
        }
    });
}

/// One subscription to a node's tail. `Ok` when the client went away, `Err` when the node's
/// stream failed.
async fn follow(
    state: &AppState,
    target: &Target,
    q: &str,
    audit: bool,
    tx: &mpsc::Sender<TailItem>,
    failed: &mut bool,
) -> Result<(), String> {
    let timeout = state.cluster.config.search_timeout;
    let pairs = Pairs::default().opt("q", Some(q)).audit(audit);
    let request = state
        .cluster
        .client
        .get(format!("{}/internal/v1/tail", target.url))
        .header(CLUSTER_SECRET_HEADER, state.cluster.secret.reveal())
        .query(&pairs.0)
        // The stream lasts as long as the client's; idleness is watched below.
        .timeout(Duration::from_secs(365 * 86_400));
    let mut response = match tokio::time::timeout(timeout, request.send()).await {
        Ok(Ok(response)) if response.status().is_success() => response,
        Ok(Ok(response)) => return Err(status_error(response).await.message()),
        Ok(Err(err)) => return Err(remote_error(err, timeout).message()),
        Err(_) => {
            return Err(format!(
                "no answer within {} (cluster.search_timeout)",
                humantime(timeout)
            ));
        }
    };
    if *failed {
        *failed = false;
        if tx
            .send(TailItem::NodeBack(target.name.clone()))
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    let mut parser = SseParser::default();
    let mut dropped = 0u64;
    loop {
        let chunk = tokio::select! {
            _ = tx.closed() => return Ok(()),
            chunk = tokio::time::timeout(TAIL_IDLE, response.chunk()) => chunk,
        };
        let bytes = match chunk {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) => return Err("its tail stream ended".into()),
            Ok(Err(err)) => return Err(format!("its tail stream broke: {}", err.without_url())),
            Err(_) => {
                return Err(format!(
                    "its tail stream was silent for {}",
                    humantime(TAIL_IDLE)
                ));
            }
        };
        for (event, data) in parser.feed(&bytes) {
            match event.as_str() {
                "hit" => match serde_json::from_str::<Hit>(&data) {
                    Ok(hit) => {
                        if !send_or_count(tx, TailItem::Hit(Box::new(hit)), &mut dropped) {
                            return Ok(());
                        }
                    }
                    Err(err) => return Err(format!("bad answer: unreadable hit ({err})")),
                },
                "dropped" => dropped += data.trim().parse::<u64>().unwrap_or(0),
                _ => {}
            }
        }
        if !flush_dropped(tx, &mut dropped) {
            return Ok(());
        }
    }
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

/// Server-Sent Events, parsed incrementally: `(event, data)` per complete event.
#[derive(Debug, Default)]
struct SseParser {
    pending: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let event = std::mem::take(&mut self.event);
                    let event = if event.is_empty() {
                        "message".to_string()
                    } else {
                        event
                    };
                    events.push((event, self.data.join("\n")));
                    self.data.clear();
                }
                self.event.clear();
            } else if let Some(name) = line.strip_prefix("event:") {
                self.event = name.trim_start().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                self.data
                    .push(data.strip_prefix(' ').unwrap_or(data).to_string());
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_parsed_across_chunk_boundaries() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b": keep-alive\n\nevent: hit\nda").is_empty());
        let events = parser.feed(b"ta: {\"a\":1}\n\nevent: dropped\r\ndata: 5\r\n\r\ndata: x\n");
        assert_eq!(
            events,
            vec![
                ("hit".to_string(), "{\"a\":1}".to_string()),
                ("dropped".to_string(), "5".to_string())
            ]
        );
        assert_eq!(parser.feed(b"\n"), vec![("message".into(), "x".into())]);
    }

    #[test]
    fn failures_read_well() {
        let refused = Failure::local(ApiError::BadRequest("bad".into()));
        assert!(matches!(refused, Failure::Refused(_)));
        let busy = Failure::local(ApiError::Unavailable("too many searches".into()));
        assert_eq!(busy.message(), "too many searches");
        let remote = Failure::Node {
            status: Some(503),
            message: "shutting down".into(),
        };
        assert_eq!(remote.message(), "HTTP 503: shutting down");
        assert_eq!(humantime(Duration::from_millis(4000)), "4s");
        assert_eq!(humantime(Duration::from_millis(500)), "500ms");
    }

    fn targets() -> Vec<Target> {
        ["a", "b", "c"]
            .iter()
            .map(|name| Target {
                name: name.to_string(),
                url: String::new(),
                local: *name == "a",
            })
            .collect()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn dead_and_silent_nodes_are_failed_entries_and_the_others_answer() {
        let targets = targets();
        let (answers, failed) = runtime()
            .block_on(gather(Duration::from_millis(50), &targets, |target| {
                Box::pin(async move {
                    match target.name.as_str() {
                        "a" => Ok(1),
                        "b" => Err(Failure::node("unreachable: connection refused")),
                        // Never answers: cut at the timeout.
                        _ => std::future::pending().await,
                    }
                })
            }))
            .unwrap();
        let answered: Vec<(&str, i32)> =
            answers.iter().map(|(t, v)| (t.name.as_str(), *v)).collect();
        assert_eq!(answered, [("a", 1)]);
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
    fn a_query_this_node_refuses_fails_the_request() {
        let targets = targets();
        let outcome = runtime().block_on(gather(Duration::from_secs(5), &targets, |target| {
            Box::pin(async move {
                if target.local {
                    Err(Failure::local(ApiError::BadRequest("invalid query".into())))
                } else {
                    Ok(1)
                }
            })
        }));
        assert!(matches!(outcome, Err(ApiError::BadRequest(_))));
    }
}
