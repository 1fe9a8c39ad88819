//! `GET /api/v1/search` and `GET /api/v1/histogram`.

use axum::Json;
use axum::extract::State;

use super::{ApiError, ApiQuery, AppState};
use crate::search::{self, HistogramParams, HistogramResponse, SearchParams, SearchResponse};

pub async fn search(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
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
    let response = tokio::task::spawn_blocking(move || {
        search::histogram(&state.index, &state.queries, &params)
    })
    .await??;
    Ok(Json(response))
}
