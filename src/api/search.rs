//! Search routes: hits, histogram, context, top values, stats, fields. Each takes a slot among
//! `api.search_concurrency` and runs off the async workers (tantivy searches block); callers
//! below admin never see the audit trail.

use axum::Extension;
use axum::Json;
use axum::extract::State;

use super::{ApiError, ApiQuery, AppState, SEARCH_QUEUE_WAIT};
use crate::auth::{Principal, Role};
use crate::index::IndexStore;
use crate::search::aggregate::{self, AggParams, FieldsResponse, StatsResponse, TopResponse};
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

/// Run one search function with a permit, on a blocking thread.
async fn run<T, F>(state: AppState, search: F) -> Result<Json<T>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&IndexStore, &QueryBuilder) -> Result<T, SearchError> + Send + 'static,
{
    let _permit = search_permit(&state).await?;
    let response =
        tokio::task::spawn_blocking(move || search(&state.index, &state.queries)).await??;
    Ok(Json(response))
}

fn hide_audit(principal: &Principal) -> bool {
    principal.role < Role::Admin
}

pub async fn search(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    run(state, move |index, queries| {
        search::search(index, queries, &params)
    })
    .await
}

pub async fn histogram(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<HistogramParams>,
) -> Result<Json<HistogramResponse>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    run(state, move |index, queries| {
        search::histogram(index, queries, &params)
    })
    .await
}

pub async fn context(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ContextParams>,
) -> Result<Json<ContextResponse>, ApiError> {
    run(state, move |index, _| search::context(index, &params)).await
}

pub async fn top(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
) -> Result<Json<TopResponse>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    run(state, move |index, queries| {
        aggregate::top(index, queries, &params)
    })
    .await
}

pub async fn stats(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
) -> Result<Json<StatsResponse>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    run(state, move |index, queries| {
        aggregate::stats(index, queries, &params)
    })
    .await
}

pub async fn fields(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
) -> Result<Json<FieldsResponse>, ApiError> {
    params.hide_audit = hide_audit(&principal);
    run(state, move |index, queries| {
        aggregate::fields(index, queries, &params)
    })
    .await
}
