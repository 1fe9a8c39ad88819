//! Search routes: hits, histogram, context, top values, stats, fields. The public routes search
//! every node of the cluster (`search::cluster::ClusterSearch`); the `/internal/v1/...` routes
//! answer another node from this node's backend only. Callers below admin never see the audit
//! trail.

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
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<SearchParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<Page>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(state.local.page(params).await)
}

pub async fn internal_histogram(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<HistogramParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<HistogramResponse>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(state.local.histogram(params).await)
}

pub async fn internal_top(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<TopPart>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(state.local.top(params).await)
}

pub async fn internal_top_counts(
    State(state): State<AppState>,
    Json(request): Json<CountsRequest>,
) -> Result<Json<CountsResponse>, ApiError> {
    answer(
        state
            .local
            .counts(request)
            .await
            .map(|counts| CountsResponse { counts }),
    )
}

pub async fn internal_stats(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<StatsAnswer>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(state.local.stats(params).await)
}

pub async fn internal_fields(
    State(state): State<AppState>,
    ApiQuery(mut params): ApiQuery<AggParams>,
    ApiQuery(flags): ApiQuery<InternalFlags>,
) -> Result<Json<FieldsResponse>, ApiError> {
    params.hide_audit = !flags.audit;
    answer(state.local.fields(params).await)
}

pub async fn internal_context(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ContextParams>,
) -> Result<Json<ContextResponse>, ApiError> {
    answer(state.local.context(params).await)
}
