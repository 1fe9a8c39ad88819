//! `GET /api/v1/search` and `GET /api/v1/histogram`.

use axum::Json;
use axum::extract::State;

use super::{ApiError, ApiQuery, AppState, SEARCH_QUEUE_WAIT};
use crate::search::{self, HistogramParams, HistogramResponse, SearchParams, SearchResponse};

pub async fn search(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    let _permit = search_permit(&state).await?;
    // tantivy searches block: keep them off the async workers.
    let response =
        tokio::task::spawn_blocking(move || search::search(&state.index, &state.queries, &params))
            .await??;
    Ok(Json(response))
}

pub async fn histogram(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<HistogramParams>,
) -> Result<Json<HistogramResponse>, ApiError> {
    let _permit = search_permit(&state).await?;
    let response = tokio::task::spawn_blocking(move || {
        search::histogram(&state.index, &state.queries, &params)
    })
    .await??;
    Ok(Json(response))
}

/// A slot among `api.search_concurrency`; waits a little, then refuses with 503.
async fn search_permit(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    tokio::time::timeout(
        SEARCH_QUEUE_WAIT,
        state.search_permits.clone().acquire_owned(),
    )
    .await
    .map_err(|_| ApiError::Unavailable("too many searches running; try again".into()))?
    .map_err(|_| ApiError::Unavailable("shutting down".into()))
}
