//! `GET /api/v1/search` and `GET /api/v1/histogram`.

use axum::Extension;
use axum::Json;
use axum::extract::State;

use super::{ApiError, ApiQuery, AppState, SEARCH_QUEUE_WAIT};
use crate::auth::{Principal, Role};
use crate::search::aggregate::{self, AggParams, FieldsResponse, StatsResponse, TopResponse};
use crate::search::{self, HistogramParams, HistogramResponse, SearchParams, SearchResponse};

pub async fn search(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    params.hide_audit = principal.role < Role::Admin;
    let _permit = search_permit(&state).await?;
    // tantivy searches block: keep them off the async workers.
    let response =
        tokio::task::spawn_blocking(move || search::search(&state.index, &state.queries, &params))
            .await??;
    Ok(Json(response))
}

pub async fn histogram(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<HistogramParams>,
) -> Result<Json<HistogramResponse>, ApiError> {
    params.hide_audit = principal.role < Role::Admin;
    let _permit = search_permit(&state).await?;
    let response = tokio::task::spawn_blocking(move || {
        search::histogram(&state.index, &state.queries, &params)
    })
    .await??;
    Ok(Json(response))
}

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

pub async fn context(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<search::ContextParams>,
) -> Result<Json<search::ContextResponse>, ApiError> {
    let _permit = search_permit(&state).await?;
    let response =
        tokio::task::spawn_blocking(move || search::context(&state.index, &params)).await??;
    Ok(Json(response))
}

pub async fn top(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
) -> Result<Json<TopResponse>, ApiError> {
    params.hide_audit = principal.role < Role::Admin;
    let _permit = search_permit(&state).await?;
    let response =
        tokio::task::spawn_blocking(move || aggregate::top(&state.index, &state.queries, &params))
            .await??;
    Ok(Json(response))
}

pub async fn stats(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
) -> Result<Json<StatsResponse>, ApiError> {
    params.hide_audit = principal.role < Role::Admin;
    let _permit = search_permit(&state).await?;
    let response = tokio::task::spawn_blocking(move || {
        aggregate::stats(&state.index, &state.queries, &params)
    })
    .await??;
    Ok(Json(response))
}

pub async fn fields(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(mut params): ApiQuery<AggParams>,
) -> Result<Json<FieldsResponse>, ApiError> {
    params.hide_audit = principal.role < Role::Admin;
    let _permit = search_permit(&state).await?;
    let response = tokio::task::spawn_blocking(move || {
        aggregate::fields(&state.index, &state.queries, &params)
    })
    .await??;
    Ok(Json(response))
}
