//! Search routes: hits, histogram, context, top values, stats, fields. The public routes search
//! every node of the cluster (`search::cluster::ClusterSearch`); the `/internal/v1/...` routes
//! answer another node from this node's backend only. Callers below admin never see the audit
//! trail.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;

use super::{ApiError, ApiQuery, AppState};
use crate::auth::{Principal, Role};
use crate::search::aggregate::{AggParams, FieldsResponse, StatsResponse};
use crate::search::backend::{
    Backend, BackendError, CountsRequest, CountsResponse, Page, StatsAnswer, TopPart,
};
use crate::search::cluster::{MergedTop, Selection, WithNodes};
use crate::search::{
    ContextParams, ContextResponse, HistogramParams, HistogramResponse, SearchParams,
    SearchResponse,
};

fn hide_audit(principal: &Principal) -> bool {
    principal.role < Role::Admin
}

pub async fn search(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<SearchParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<SearchResponse>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    Ok(Json(state.search.search(params, selection).await?))
}

pub async fn histogram(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<HistogramParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<HistogramResponse>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    Ok(Json(state.search.histogram(params, selection).await?))
}

/// `?node=` names the node holding the hit (a hit's `node`); this node when absent.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ContextNode {
    pub node: Option<String>,
}

pub async fn context(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ContextParams>,
    ApiQuery(node): ApiQuery<ContextNode>,
) -> Result<Json<WithNodes<ContextResponse>>, ApiError> {
    let this = state.config.node_name.clone();
    Ok(Json(state.search.context(params, node.node, &this).await?))
}

pub async fn top(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<MergedTop>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    Ok(Json(state.search.top(params, selection).await?))
}

pub async fn stats(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<StatsResponse>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    Ok(Json(state.search.stats(params, selection).await?))
}

pub async fn fields(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<FieldsResponse>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    Ok(Json(state.search.fields(params, selection).await?))
}

// ---- node-to-node: this node's backend only --------------------------------------------------
//
// These take the backend alone as their state (`Arc<dyn Backend>`, from `AppState::local`), so
// the conformance test serves a backend over HTTP exactly as a node does.

/// Flags of the node-to-node routes.
#[derive(Debug, Default, serde::Deserialize)]
pub struct InternalFlags {
    /// Include the audit trail: the asking node checked that its caller may see it.
    #[serde(default)]
    pub audit: bool,
}

/// A local backend's failure as this node's answer to another node.
fn answer<T>(outcome: Result<T, BackendError>) -> Result<Json<T>, ApiError> {
    match outcome {
        Ok(value) => Ok(Json(value)),
        Err(BackendError::Refused(err)) => Err(err.into()),
        Err(BackendError::Failed { message, .. }) => Err(ApiError::Unavailable(message)),
    }
}

pub async fn internal_search(
    State(backend): State<Arc<dyn Backend>>,
    ApiQuery(mut params): ApiQuery<SearchParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<Page>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(backend.page(params).await)
}

pub async fn internal_histogram(
    State(backend): State<Arc<dyn Backend>>,
    ApiQuery(mut params): ApiQuery<HistogramParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<HistogramResponse>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(backend.histogram(params).await)
}

pub async fn internal_top(
    State(backend): State<Arc<dyn Backend>>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<TopPart>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(backend.top(params).await)
}

pub async fn internal_top_counts(
    State(backend): State<Arc<dyn Backend>>,
    Json(request): Json<CountsRequest>,
) -> Result<Json<CountsResponse>, ApiError> {
    answer(
        backend
            .counts(request)
            .await
            .map(|counts| CountsResponse { counts }),
    )
}

pub async fn internal_stats(
    State(backend): State<Arc<dyn Backend>>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<StatsAnswer>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(backend.stats(params).await)
}

pub async fn internal_fields(
    State(backend): State<Arc<dyn Backend>>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<FieldsResponse>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(backend.fields(params).await)
}

pub async fn internal_context(
    State(backend): State<Arc<dyn Backend>>,
    ApiQuery(params): ApiQuery<ContextParams>,
) -> Result<Json<ContextResponse>, ApiError> {
    answer(backend.context(params).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::backend::conformance;
    use crate::search::local::LocalBackend;
    use crate::search::remote::{Peers, RemoteBackend};
    use axum::routing::{get, post};

    /// The same questions asked of this node's partitions directly and through the internal
    /// routes (real HTTP on loopback, as another node asks them) get the same answers.
    #[test]
    fn local_and_remote_backends_answer_alike() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (_dir, index) = conformance::store_with_data();
        let indexer = Arc::new(crate::index::IndexerControl::default());
        let local = Arc::new(LocalBackend::new(
            index,
            Arc::new(crate::search::QueryBuilder::default()),
            Arc::new(tokio::sync::Semaphore::new(4)),
            indexer,
        ));
        let served: Arc<dyn Backend> = local.clone();
        let app = axum::Router::new()
            .route("/internal/v1/search", get(internal_search))
            .route("/internal/v1/histogram", get(internal_histogram))
            .route("/internal/v1/top", get(internal_top))
            .route("/internal/v1/top/counts", post(internal_top_counts))
            .route("/internal/v1/stats", get(internal_stats))
            .route("/internal/v1/fields", get(internal_fields))
            .route("/internal/v1/context", get(internal_context))
            .with_state(served);
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let remote = RemoteBackend::new(
                "n".into(),
                url,
                Peers {
                    client: reqwest::Client::new(),
                    secret: crate::auth::ClusterSecret::new("test".into()),
                    timeout: std::time::Duration::from_secs(30),
                },
            );
            conformance::same_answers(local.as_ref(), &remote).await;
        });
    }
}
