//! `GET /api/v1/search` and `GET /api/v1/histogram`.

use axum::Json;
use axum::extract::{Query, State};

use super::{ApiError, AppState};
use crate::search::{self, HistogramParams, HistogramResponse, SearchParams, SearchResponse};

pub async fn search(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchResponse>, ApiError> {
    // tantivy searches block: keep them off the async workers.
    let response =
        tokio::task::spawn_blocking(move || search::search(&state.index, &state.queries, &params))
            .await??;
    Ok(Json(response))
}

pub async fn histogram(
    State(state): State<AppState>,
    Query(params): Query<HistogramParams>,
) -> Result<Json<HistogramResponse>, ApiError> {
    let response = tokio::task::spawn_blocking(move || {
        search::histogram(&state.index, &state.queries, &params)
    })
    .await??;
    Ok(Json(response))
}
