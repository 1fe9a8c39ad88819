//! The cluster-wide operations: ask every planned backend, merge (`search::merge`).

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use super::{ClusterSearch, FailedNode, Selection, Target, WithNodes, absolute, finish, gather};
use crate::search::aggregate::{
    self, AggParams, FieldsResponse, MAX_TOP, StatsResponse, TopResponse,
};
use crate::search::backend::{BackendError, CountsRequest, Page};
use crate::search::merge::{self, Cursor, HistogramPart, NodePage, TopPart};
use crate::search::sketch::StatsPart;
use crate::search::{
    self, Bucket, ContextParams, ContextResponse, DEFAULT_LIMIT, HistogramParams,
    HistogramResponse, MAX_LIMIT, SearchError, SearchParams, SearchResponse, format_micros,
    resolve_range,
};

/// Top values across nodes: `exact` says the values listed are provably the most frequent ones
/// (their counts are exact either way).
#[derive(Debug, Serialize)]
pub struct MergedTop {
    #[serde(flatten)]
    pub top: TopResponse,
    pub exact: bool,
}

pub(super) fn node_page(target: &Target, page: Page) -> NodePage {
    NodePage {
        node: target.name.clone(),
        total: page.response.total,
        hits: page.sorts.into_iter().zip(page.response.hits).collect(),
    }
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

impl ClusterSearch {
    /// Validated aggregation parameters for backends: field checked, times resolved once.
    fn agg_base(&self, params: &AggParams) -> Result<AggParams, SearchError> {
        let field = aggregate::field_path(params.field.as_deref())?;
        let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
        self.check_query(params.q.as_deref())?;
        Ok(AggParams {
            field: Some(field),
            q: params.q.clone(),
            from: absolute(&params.from, from),
            to: absolute(&params.to, to),
            size: params.size,
            hide_audit: params.hide_audit,
        })
    }

    pub async fn search(
        &self,
        params: SearchParams,
        selection: Selection,
    ) -> Result<WithNodes<SearchResponse>, SearchError> {
        let started = Instant::now();
        let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
        self.check_query(params.q.as_deref())?;
        let limit = params.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let cursor = params
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(Cursor::parse)
            .transpose()?;
        let plan = self.plan(&selection)?;
        let base = SearchParams {
            q: params.q.clone(),
            from: absolute(&params.from, from),
            to: absolute(&params.to, to),
            limit: Some(limit),
            cursor: None,
            hide_audit: params.hide_audit,
        };
        let (answers, failed) = gather(self.topology.timeout(), &plan.targets, |target| {
            let mut node_params = base.clone();
            node_params.cursor = cursor
                .as_ref()
                .map(|c| c.bound_for(&target.name).to_string());
            target.backend.page(node_params)
        })
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

    pub async fn histogram(
        &self,
        params: HistogramParams,
        selection: Selection,
    ) -> Result<WithNodes<HistogramResponse>, SearchError> {
        let started = Instant::now();
        let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
        self.check_query(params.q.as_deref())?;
        let requested = match params.interval.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => {
                Some(
                    search::parse_interval(text).map_err(|reason| SearchError::BadParam {
                        param: "interval",
                        value: text.to_string(),
                        reason,
                    })?,
                )
            }
            None => None,
        };
        let plan = self.plan(&selection)?;
        let base = HistogramParams {
            q: params.q.clone(),
            from: absolute(&params.from, from),
            to: absolute(&params.to, to),
            interval: params.interval.clone(),
            hide_audit: params.hide_audit,
        };
        let timeout = self.topology.timeout();
        let (answers, mut failed) = gather(timeout, &plan.targets, |target| {
            target.backend.histogram(base.clone())
        })
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
        // Backends whose buckets do not nest in the merged ones are asked again with its
        // interval.
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
            let (answers, more_failed) = gather(timeout, &again, |target| {
                target.backend.histogram(fixed.clone())
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

    /// Top values, exact for counts: phase 1 asks every backend for its top list, longer than
    /// asked (`2 × size + 10`); phase 2 asks the backends whose list was cut for the exact
    /// counts of the candidates they could not vouch for (`merge::counts_needed`), and
    /// `merge::merge_top` sums. A backend that fails either phase is left out entirely (its
    /// counts would be partial).
    pub async fn top(
        &self,
        params: AggParams,
        selection: Selection,
    ) -> Result<WithNodes<MergedTop>, SearchError> {
        let started = Instant::now();
        let mut base = self.agg_base(&params)?;
        let field = base.field.clone().unwrap_or_default();
        let size = params.size.unwrap_or(10).clamp(1, MAX_TOP);
        base.size = Some((size * 2 + 10).min(MAX_TOP));
        let plan = self.plan(&selection)?;
        let timeout = self.topology.timeout();
        let (answers, mut failed) = gather(timeout, &plan.targets, |target| {
            target.backend.top(base.clone())
        })
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
            let request_for = |node: &str| CountsRequest {
                field: base.field.clone(),
                q: base.q.clone(),
                from: base.from.clone(),
                to: base.to.clone(),
                audit: !base.hide_audit,
                values: asks[node].iter().map(|&i| candidates[i].clone()).collect(),
            };
            let (answers, more_failed) = gather(timeout, &second, |target| {
                target.backend.counts(request_for(&target.name))
            })
            .await?;
            for (target, counts) in answers {
                let needed = &asks[&target.name];
                if counts.len() != needed.len() {
                    failed.push(FailedNode {
                        node: target.name.clone(),
                        error: "bad answer: wrong number of counts".into(),
                    });
                    continue;
                }
                exact.insert(
                    target.name.clone(),
                    needed.iter().copied().zip(counts).collect(),
                );
            }
            // Backends without exact counts are left out: their lists alone would be wrong.
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

    /// Numeric stats: every backend's [`StatsPart`] merged, so the stats are those of one
    /// index holding all the data.
    pub async fn stats(
        &self,
        params: AggParams,
        selection: Selection,
    ) -> Result<WithNodes<StatsResponse>, SearchError> {
        let started = Instant::now();
        let base = self.agg_base(&params)?;
        let field = base.field.clone().unwrap_or_default();
        let plan = self.plan(&selection)?;
        let (answers, failed) = gather(self.topology.timeout(), &plan.targets, |target| {
            target.backend.stats(base.clone())
        })
        .await?;
        let report = finish(&plan, failed, answers.len())?;
        let parts = answers.into_iter().filter_map(|(_, a)| a.part).collect();
        let mut stats = StatsPart::merge(&field, parts);
        stats.took_ms = started.elapsed().as_millis() as u64;
        Ok(WithNodes {
            inner: stats,
            nodes: report,
        })
    }

    /// Fields present: each backend samples its newest matches; the samples are pooled.
    pub async fn fields(
        &self,
        params: AggParams,
        selection: Selection,
    ) -> Result<WithNodes<FieldsResponse>, SearchError> {
        let started = Instant::now();
        let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
        self.check_query(params.q.as_deref())?;
        let base = AggParams {
            from: absolute(&params.from, from),
            to: absolute(&params.to, to),
            ..params.clone()
        };
        let plan = self.plan(&selection)?;
        let (answers, failed) = gather(self.topology.timeout(), &plan.targets, |target| {
            target.backend.fields(base.clone())
        })
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

    /// The lines around a hit, from the node that holds it (`node`; `this_node` when absent).
    /// Its refusals (no such hit) are this request's; when it cannot answer, the request
    /// fails saying why.
    pub async fn context(
        &self,
        params: ContextParams,
        node: Option<String>,
        this_node: &str,
    ) -> Result<WithNodes<ContextResponse>, SearchError> {
        let name = node
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| this_node.to_string());
        let plan = self.topology.plan(Some(&name))?;
        let Some(target) = plan.targets.first() else {
            return Err(finish(&plan, Vec::new(), 0).expect_err("nobody answered"));
        };
        let outcome = tokio::time::timeout(self.topology.timeout(), target.backend.context(params))
            .await
            .unwrap_or_else(|_| Err(BackendError::failed(self.timed_out())));
        match outcome {
            Ok(context) => Ok(WithNodes {
                inner: context,
                nodes: finish(&plan, Vec::new(), 1)?,
            }),
            Err(BackendError::Refused(err)) => Err(err),
            // The node refused: no such hit, a bad id.
            Err(BackendError::Failed {
                status: Some(400),
                message,
            }) => Err(SearchError::Refused(message)),
            Err(BackendError::Failed {
                status: Some(404),
                message,
            }) => Err(SearchError::NotFound(message)),
            Err(failure) => {
                let failed = vec![FailedNode {
                    node: target.name.clone(),
                    error: failure.message(),
                }];
                Err(finish(&plan, failed, 0).expect_err("nobody answered"))
            }
        }
    }
}
