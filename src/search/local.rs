//! [`LocalBackend`]: this node's day partitions behind the search [`Backend`] seam.
//!
//! Every search takes a slot among `api.search_concurrency` (waiting up to
//! [`QUEUE_WAIT`], then failing as too busy) and runs on a blocking thread: tantivy searches
//! block. Live tails are served by one poller for the node ([`TailHub`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::aggregate::{self, AggParams, FieldsResponse};
use super::backend::{
    Backend, BackendError, BoxFuture, CountsRequest, Followed, Page, StatsAnswer, TailItem, TopPart,
};
use super::tail_hub::TailHub;
use super::{
    ContextParams, ContextResponse, HistogramParams, HistogramResponse, QueryBuilder, SearchError,
    SearchParams,
};
use crate::index::{IndexStore, IndexerControl};

/// How long a search waits for a slot before it is refused as too busy.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Sets its flag when dropped.
#[derive(Default)]
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[derive(Clone)]
pub struct LocalBackend {
    index: Arc<IndexStore>,
    queries: Arc<QueryBuilder>,
    permits: Arc<Semaphore>,
    /// Every live tail of this node, served by one poller.
    tails: Arc<TailHub>,
}

impl LocalBackend {
    pub fn new(
        index: Arc<IndexStore>,
        queries: Arc<QueryBuilder>,
        permits: Arc<Semaphore>,
        indexer: Arc<IndexerControl>,
    ) -> LocalBackend {
        LocalBackend {
            tails: Arc::new(TailHub::new(index.clone(), queries.clone(), indexer)),
            index,
            queries,
            permits,
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, BackendError> {
        tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| BackendError::failed("too many searches running; try again"))?
            .map_err(|_| BackendError::failed("shutting down"))
    }

    /// Run `search` on the partitions, with a slot, on a blocking thread.
    fn run<'a, T, F>(&'a self, search: F) -> BoxFuture<'a, Result<T, BackendError>>
    where
        T: Send + 'static,
        F: FnOnce(&IndexStore, &QueryBuilder) -> Result<T, SearchError> + Send + 'static,
    {
        Box::pin(async move {
            let _permit = self.permit().await?;
            let (index, queries) = (self.index.clone(), self.queries.clone());
            // Dropped with this future (its caller timed out or went away): the search stops
            // at its next partition instead of running on.
            let cancel = CancelOnDrop::default();
            let flag = cancel.0.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                super::run_cancellable(flag, || search(&index, &queries))
            })
            .await
            .map_err(|err| BackendError::failed(format!("search task failed: {err}")))?;
            drop(cancel);
            outcome.map_err(|err| match err {
                SearchError::Internal(inner) => {
                    tracing::error!(error = %inner, "local search failed");
                    BackendError::failed("internal error; see the node's log")
                }
                SearchError::Unavailable(message) => BackendError::failed(message),
                refused => BackendError::Refused(refused),
            })
        })
    }
}

impl Backend for LocalBackend {
    fn page(&self, params: SearchParams) -> BoxFuture<'_, Result<Page, BackendError>> {
        self.run(move |index, queries| {
            super::search_keyed(index, queries, &params)
                .map(|(response, sorts)| Page { response, sorts })
        })
    }

    fn histogram(
        &self,
        params: HistogramParams,
    ) -> BoxFuture<'_, Result<HistogramResponse, BackendError>> {
        self.run(move |index, queries| super::histogram(index, queries, &params))
    }

    fn top(&self, params: AggParams) -> BoxFuture<'_, Result<TopPart, BackendError>> {
        self.run(move |index, queries| {
            aggregate::top_with_bound(index, queries, &params)
                .map(|(top, bound)| TopPart { top, bound })
        })
    }

    fn counts(&self, request: CountsRequest) -> BoxFuture<'_, Result<Vec<u64>, BackendError>> {
        self.run(move |index, queries| {
            aggregate::count_values(index, queries, &request.params(), &request.values)
        })
    }

    fn stats(&self, params: AggParams) -> BoxFuture<'_, Result<StatsAnswer, BackendError>> {
        self.run(move |index, queries| {
            aggregate::stats_part(index, queries, &params)
                .map(|(field, part)| StatsAnswer { field, part })
        })
    }

    fn fields(&self, params: AggParams) -> BoxFuture<'_, Result<FieldsResponse, BackendError>> {
        self.run(move |index, queries| aggregate::fields(index, queries, &params))
    }

    fn context(
        &self,
        params: ContextParams,
    ) -> BoxFuture<'_, Result<ContextResponse, BackendError>> {
        self.run(move |index, _| super::context(index, &params))
    }

    fn follow<'a>(
        &'a self,
        q: &'a str,
        audit: bool,
        tx: &'a mpsc::Sender<TailItem>,
        _failed: &'a mut bool,
    ) -> BoxFuture<'a, Followed> {
        Box::pin(async move {
            self.tails.subscribe(q, audit, tx.clone());
            // The poller serves it from now on; this stream ends when the client leaves.
            tx.closed().await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// See: issue "No input stops the appliance", item 10 (searches that timed out kept both
    /// cores busy for minutes). A cancelled search stops at its next partition.
    #[test]
    fn a_cancelled_search_stops_at_the_next_partition() {
        let (_dir, store) = crate::search::backend::conformance::store_with_data();
        let queries = QueryBuilder::default();
        let params = SearchParams {
            q: Some("*".into()),
            ..Default::default()
        };
        let running = Arc::new(AtomicBool::new(false));
        let found = super::super::run_cancellable(running, || {
            super::super::search_keyed(&store, &queries, &params)
        });
        assert_eq!(found.unwrap().0.total, 600);
        let cancelled = Arc::new(AtomicBool::new(true));
        let stopped = super::super::run_cancellable(cancelled, || {
            super::super::search_keyed(&store, &queries, &params)
        });
        assert!(
            matches!(stopped, Err(SearchError::Unavailable(ref m)) if m.contains("cancelled")),
            "{:?}",
            stopped.map(|r| r.0.total)
        );
        let aggregate = super::super::run_cancellable(Arc::new(AtomicBool::new(true)), || {
            aggregate::top(
                &store,
                &queries,
                &AggParams {
                    field: Some("level".into()),
                    ..Default::default()
                },
            )
        });
        assert!(aggregate.is_err());
        // The flag is the running search's only: the next one on this thread runs.
        assert!(super::super::search_keyed(&store, &queries, &params).is_ok());
    }
}
