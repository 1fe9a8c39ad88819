//! Streams across the cluster: export (every match, merged newest first) and live tail (every
//! backend's new lines into one channel).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{ClusterSearch, FailedNode, NodesReport, Selection, Target, absolute, finish, gather};
use crate::search::backend::{Backend, TailItem};
use crate::search::merge;
use crate::search::remote::humantime;
use crate::search::{Hit, SearchError, SearchParams, resolve_range};

/// Rows per page fetched from each backend during an export.
const EXPORT_PAGE: usize = 2000;
/// Events a tail client can be behind by before lines are skipped for it.
pub const TAIL_BUFFER: usize = 256;
/// Wait between attempts to follow a backend's tail again.
const TAIL_RETRY: Duration = Duration::from_secs(2);

/// One backend's part of an export: its buffered page and its own cursor.
struct ExportSource {
    target: Target,
    buffer: VecDeque<(u64, Hit)>,
    /// The cursor of its next page; `None` when it has no more.
    next: Option<String>,
}

/// Every match of a query on every selected backend, merged newest first (the order of a
/// single-node export) with one page per backend in memory at a time.
pub struct ExportMerge {
    timeout: Duration,
    params: SearchParams,
    sources: Vec<ExportSource>,
}

impl ClusterSearch {
    /// Start an export: the first page of every backend is fetched now, so a bad query fails
    /// before the body, and backends that fail at the start are reported.
    pub async fn export(
        &self,
        params: SearchParams,
        selection: Selection,
    ) -> Result<(ExportMerge, NodesReport), SearchError> {
        let (from, to) = resolve_range(params.from.as_deref(), params.to.as_deref())?;
        self.check_query(params.q.as_deref())?;
        let plan = self.plan(&selection)?;
        let base = SearchParams {
            q: params.q.clone(),
            from: absolute(&params.from, from),
            to: absolute(&params.to, to),
            limit: Some(EXPORT_PAGE),
            cursor: None,
            hide_audit: params.hide_audit,
        };
        let timeout = self.topology.timeout();
        let (answers, failed) = gather(timeout, &plan.targets, |target| {
            target.backend.page(base.clone())
        })
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
                timeout,
                params: base,
                sources,
            },
            report,
        ))
    }

    /// Follow every selected backend's new lines into `tx` until the client goes away. Over
    /// several nodes, the first item is [`TailItem::Nodes`]; a backend whose stream fails is
    /// announced ([`TailItem::NodeFailed`]) and followed again while it is not lost, and lost
    /// nodes are followed from the moment they are heard from again.
    pub fn tail(
        &self,
        q: String,
        audit: bool,
        selection: Selection,
        tx: mpsc::Sender<TailItem>,
    ) -> Result<(), SearchError> {
        self.check_query(Some(&q))?;
        let plan = self.plan(&selection)?;
        if plan.report.queried > 1 {
            let _ = tx.try_send(TailItem::Nodes(plan.report.clone()));
        }
        for target in plan.targets {
            self.spawn_follow(target, q.clone(), audit, tx.clone(), false);
        }
        for failed in &plan.report.failed {
            if let Some(backend) = self.topology.backend_of(&failed.node) {
                let target = Target {
                    name: failed.node.clone(),
                    backend,
                };
                self.spawn_follow(target, q.clone(), audit, tx.clone(), true);
            }
        }
        Ok(())
    }

    fn spawn_follow(
        &self,
        target: Target,
        q: String,
        audit: bool,
        tx: mpsc::Sender<TailItem>,
        already_failed: bool,
    ) {
        let topology = self.topology.clone();
        tokio::spawn(async move {
            let backend: Arc<dyn Backend> = target.backend.clone();
            let mut failed = already_failed;
            loop {
                if tx.is_closed() {
                    return;
                }
                if !(failed && topology.is_lost(&target.name)) {
                    match backend.follow(&q, audit, &tx, &mut failed).await {
                        Ok(()) => return,
                        Err(error) if !failed => {
                            failed = true;
                            let item = TailItem::NodeFailed(FailedNode {
                                node: target.name.clone(),
                                error,
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
}

impl ExportMerge {
    /// The next hit in order, fetching a backend's next page when its buffer runs out. A
    /// backend that fails now ends the export with an error: a truncated export must not look
    /// complete.
    pub async fn next(&mut self) -> Result<Option<Hit>, String> {
        for source in &mut self.sources {
            if !source.buffer.is_empty() {
                continue;
            }
            let Some(cursor) = source.next.take() else {
                continue;
            };
            let mut params = self.params.clone();
            params.cursor = Some(cursor);
            let call = source.target.backend.page(params);
            let page = match tokio::time::timeout(self.timeout, call).await {
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
                        humantime(self.timeout)
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
