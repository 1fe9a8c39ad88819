//! Search routes: hits, histogram, context, top values, stats, fields. The public routes search
//! every node of the cluster (`fanout`); the `/internal/v1/...` routes answer another node from
//! this node's index only. Each local search takes a slot among `api.search_concurrency` and
//! runs off the async workers (tantivy searches block); callers below admin never see the audit
//! trail.

use axum::Extension;
use axum::Json;
use axum::extract::State;

use super::fanout::{
    self, CountsRequest, CountsResponse, InternalFlags, InternalPage, InternalStats, InternalTop,
    MergedTop, Selection, WithNodes,
};
use super::{ApiError, ApiQuery, AppState, SEARCH_QUEUE_WAIT};
use crate::auth::{Principal, Role};
use crate::index::IndexStore;
use crate::search::aggregate::{self, AggParams, FieldsResponse, StatsResponse};
use crate::search::{
    self, ContextParams, ContextResponse, HistogramParams, HistogramResponse, QueryBuilder,
    SearchError, SearchParams, SearchResponse,
};

/// A slot among `api.search_concurrency`; waits a little, then refuses with 503.
pub(super) async fn search_permit(
    state: &AppState,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    tokio::time::timeout(
        SEARCH_QUEUE_WAIT,
        state.search_permits.clone().acquire_owned(),
    )
    .await
    .map_err(|_| ApiError::Unavailable("too many searches running; try again".into()))?
    .map_err(|_| ApiError::Unavailable("shutting down".into()))
}

/// Run one search function on this node's index, with a permit, on a blocking thread.
pub(super) async fn local<T, F>(state: AppState, search: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&IndexStore, &QueryBuilder) -> Result<T, SearchError> + Send + 'static,
{
    let _permit = search_permit(&state).await?;
    Ok(tokio::task::spawn_blocking(move || search(&state.index, &state.queries)).await??)
}

async fn run<T, F>(state: AppState, search: F) -> Result<Json<T>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&IndexStore, &QueryBuilder) -> Result<T, SearchError> + Send + 'static,
{
    local(state, search).await.map(Json)
}

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
    fanout::search(state, params, selection).await.map(Json)
}

pub async fn histogram(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<HistogramParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<HistogramResponse>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    fanout::histogram(state, params, selection).await.map(Json)
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
    fanout::context(state, params, node.node).await.map(Json)
}

pub async fn top(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<MergedTop>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    fanout::top(state, params, selection).await.map(Json)
}

pub async fn stats(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<StatsResponse>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    fanout::stats(state, params, selection).await.map(Json)
}

pub async fn fields(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(selection): ApiQuery<Selection>,
) -> Result<Json<WithNodes<FieldsResponse>>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    fanout::fields(state, params, selection).await.map(Json)
}

// ---- node-to-node: this node's index only ---------------------------------------------------

pub async fn internal_search(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<SearchParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<InternalPage>, ApiError> {
    params.hide_audit = !flags.audit;
    let (response, sorts) = local(state, move |index, queries| {
        search::search_keyed(index, queries, &params)
    })
    .await?;
    Ok(Json(InternalPage { response, sorts }))
}

pub async fn internal_histogram(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<HistogramParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<HistogramResponse>, ApiError> {
    params.hide_audit = !flags.audit;
    run(state, move |index, queries| {
        search::histogram(index, queries, &params)
    })
    .await
}

pub async fn internal_top(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<InternalTop>, ApiError> {
    params.hide_audit = !flags.audit;
    let (top, bound) = local(state, move |index, queries| {
        aggregate::top_with_bound(index, queries, &params)
    })
    .await?;
    Ok(Json(InternalTop { top, bound }))
}

pub async fn internal_top_counts(
    State(state): State<AppState>,
    Json(request): Json<CountsRequest>,
) -> Result<Json<CountsResponse>, ApiError> {
    let counts = local(state, move |index, queries| {
        aggregate::count_values(
            index,
            queries,
            &fanout::counts_params(&request),
            &request.values,
        )
    })
    .await?;
    Ok(Json(CountsResponse { counts }))
}

pub async fn internal_stats(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<InternalStats>, ApiError> {
    params.hide_audit = !flags.audit;
    run(state, move |index, queries| {
        fanout::internal_stats(index, queries, &params)
    })
    .await
}

pub async fn internal_fields(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<FieldsResponse>, ApiError> {
    params.hide_audit = !flags.audit;
    run(state, move |index, queries| {
        aggregate::fields(index, queries, &params)
    })
    .await
}

pub async fn internal_context(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ContextParams>,
) -> Result<Json<ContextResponse>, ApiError> {
    run(state, move |index, _| search::context(index, &params)).await
}
