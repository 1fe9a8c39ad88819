//! The HTTP API: one router listing every route, handlers per resource, and one error type
//! that maps every failure to a status code and a JSON body `{"error": {"code", "message"}}`.
//!
//! Authentication comes with the security issue; until then the node listens on loopback by
//! default.

mod runners;
mod search;
mod system;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tracing::error;

use crate::cluster::{ConfigStore, StoreError};
use crate::collect::Supervisor;
use crate::config::NodeConfig;
use crate::index::{IndexStore, IndexerControl};
use crate::queue::Queue;
use crate::search::{QueryBuilder, SearchError};

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<NodeConfig>,
    pub store: Arc<dyn ConfigStore>,
    pub queue: Arc<dyn Queue>,
    pub index: Arc<IndexStore>,
    pub indexer: Arc<IndexerControl>,
    pub supervisor: Arc<Supervisor>,
    pub queries: Arc<QueryBuilder>,
    pub metrics: PrometheusHandle,
}

/// Request bodies above this are refused with 413.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/api/v1/status", get(system::status))
        .route("/api/v1/indexer/pause", post(system::pause_indexer))
        .route("/api/v1/indexer/resume", post(system::resume_indexer))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/histogram", get(search::histogram))
        .route("/api/v1/runners", get(runners::list).post(runners::create))
        .route(
            "/api/v1/runners/{name}",
            get(runners::get)
                .put(runners::replace)
                .delete(runners::delete),
        )
        .route("/", get(system::index_page))
        .fallback(system::not_found)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Every error an API call can end in.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.code();
        let message = match &self {
            ApiError::Internal(detail) => {
                // Internals go to the log, not to the client.
                error!(error = %detail, "request failed");
                "internal error; see the node's log".to_string()
            }
            other => other.to_string(),
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    }
}

impl From<SearchError> for ApiError {
    fn from(err: SearchError) -> Self {
        match err {
            SearchError::Internal(inner) => ApiError::Internal(inner.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { .. } => ApiError::Conflict(err.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// `Query<T>` whose rejection (e.g. `limit=abc`) is a JSON [`ApiError`] like every other error.
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        ApiError::Internal(err.to_string())
    }
}
