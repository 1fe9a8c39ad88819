//! The HTTP API: one table of every route with the role it needs ([`route_table`]), handlers
//! per resource, and one error type that maps every failure to a status code and a JSON body
//! `{"error": {"code", "message"}}`.
//!
//! Every route needs a session cookie or an API token except `/health`, the login call and the
//! UI's entry page and assets (and `/metrics` when `metrics.public = true`). The router is built from the
//! table, so a route cannot exist without a declared role; a test walks the table.

mod access;
mod audit;
mod cluster;
mod deploy;
mod ingest;
mod logkit;
mod logkit_cluster;
mod logkit_describe;
mod runners;
mod search;
mod server;
mod stream;
mod system;
mod users;
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::error;

pub use access::{Access, CLUSTER_SECRET_HEADER, SESSION_COOKIE};
pub use audit::{AUDIT_RUNNER, Auditor};
pub use logkit_cluster::register_with_logkit_master;
pub use server::{ConnectionLimits, serve};

use crate::auth::{Auth, AuthError, Role};
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
    /// The data dir's free-space reserve: below it the node takes no data in (`/health` says).
    pub disk: Arc<crate::fsutil::DiskGuard>,
    pub store: Arc<dyn ConfigStore>,
    pub queue: Arc<dyn Queue>,
    pub index: Arc<IndexStore>,
    pub indexer: Arc<IndexerControl>,
    pub supervisor: Arc<Supervisor>,
    pub queries: Arc<QueryBuilder>,
    pub metrics: PrometheusHandle,
    pub auth: Arc<Auth>,
    pub audit: Auditor,
    pub cluster_secret: crate::auth::ClusterSecret,
    /// Who is in the cluster.
    pub membership: Arc<dyn crate::cluster::Membership>,
    /// The Raft cluster itself, for its RPCs and forwarded writes only (`None` when the control
    /// plane is another engine: those routes then answer 404).
    pub raft: Option<Arc<crate::cluster::Cluster>>,
    /// This node's data (searches take a slot among `api.search_concurrency`).
    pub local: Arc<crate::search::local::LocalBackend>,
    /// Search across the cluster.
    pub search: crate::search::cluster::ClusterSearch,
    /// How this node calls other nodes (client, cluster secret, timeout).
    pub peers: crate::search::remote::Peers,
    /// Deployments (seed 002): their executions run here or on another node.
    pub deployer: Arc<crate::deploy::exec::Deployer>,
}

/// The node-to-node search routes take this node's backend alone.
impl axum::extract::FromRef<AppState> for Arc<dyn crate::search::backend::Backend> {
    fn from_ref(state: &AppState) -> Self {
        state.local.clone()
    }
}

/// One row of the route table.
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// Every route, with the access it needs. The router is built from this table. Request bodies
/// are capped by `api.max_body_bytes`, and tighter per route where a row says so.
#[rustfmt::skip]
pub fn route_table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Access::{Cluster, JoinToken, Metrics, Public, Role as R};
    use Role::{Admin, Operator, Reader};
    let row = |method: Method, path: &'static str, access: Access, handler: MethodRouter<AppState>| {
        (RouteSpec { method, path, access }, handler)
    };
    vec![
        row(Method::GET,    "/health",                         Public,      get(system::health)),
        row(Method::GET,    "/",                               Public,      get(web::index_page)),
        // The UI's scripts and styles carry no data; its data comes from the API.
        row(Method::GET,    "/assets/{*path}",                 Public,      get(web::asset)),
        row(Method::POST,   "/api/v1/login",                   Public,      post(users::login).layer(DefaultBodyLimit::max(LOGIN_BODY_LIMIT as usize))),
        row(Method::GET,    "/metrics",                        Metrics,     get(system::metrics)),
        row(Method::POST,   "/api/v1/logout",                  R(Reader),   post(users::logout)),
        row(Method::GET,    "/api/v1/me",                      R(Reader),   get(users::me)),
        row(Method::GET,    "/api/v1/status",                  R(Reader),   get(system::status)),
        row(Method::GET,    "/api/v1/search",                  R(Reader),   get(search::search)),
        row(Method::GET,    "/api/v1/histogram",               R(Reader),   get(search::histogram)),
        row(Method::GET,    "/api/v1/top",                     R(Reader),   get(search::top)),
        row(Method::GET,    "/api/v1/stats",                   R(Reader),   get(search::stats)),
        row(Method::GET,    "/api/v1/fields",                  R(Reader),   get(search::fields)),
        row(Method::GET,    "/api/v1/context",                 R(Reader),   get(search::context)),
        row(Method::GET,    "/api/v1/export",                  R(Reader),   get(stream::export)),
        row(Method::GET,    "/api/v1/tail",                    R(Reader),   get(stream::tail)),
        row(Method::GET,    "/api/v1/runners",                 R(Reader),   get(runners::list)),
        row(Method::GET,    "/api/v1/runners/{name}",          R(Reader),   get(runners::get)),
        row(Method::POST,   "/api/v1/runners",                 R(Operator), post(runners::create)),
        row(Method::PUT,    "/api/v1/runners/{name}",          R(Operator), put(runners::replace)),
        row(Method::DELETE, "/api/v1/runners/{name}",          R(Operator), delete(runners::delete)),
        row(Method::POST,   "/api/v1/indexer/pause",           R(Operator), post(system::pause_indexer)),
        row(Method::POST,   "/api/v1/indexer/resume",          R(Operator), post(system::resume_indexer)),
        row(Method::GET,    "/api/v1/users",                   R(Admin),    get(users::list_users)),
        row(Method::POST,   "/api/v1/users",                   R(Admin),    post(users::add_user)),
        row(Method::PUT,    "/api/v1/users/{name}/password",   R(Admin),    put(users::set_password)),
        row(Method::DELETE, "/api/v1/users/{name}",            R(Admin),    delete(users::delete_user)),
        row(Method::GET,    "/api/v1/tokens",                  R(Admin),    get(users::list_tokens)),
        row(Method::POST,   "/api/v1/tokens",                  R(Admin),    post(users::create_token)),
        row(Method::DELETE, "/api/v1/tokens/{id}",             R(Admin),    delete(users::revoke_token)),
        row(Method::GET,    "/api/v1/audit",                   R(Admin),    get(audit::list)),
        row(Method::POST,   "/api/v1/cluster/join-tokens",     R(Admin),    post(cluster::create_join_token)),
        row(Method::GET,    "/api/v1/cluster/join-tokens",     R(Admin),    get(cluster::list_join_tokens)),
        row(Method::DELETE, "/api/v1/cluster/join-tokens/{id}", R(Admin),   delete(cluster::revoke_join_token)),
        row(Method::GET,    "/internal/v1/ping",               Cluster,     get(system::internal_ping)),
        // Search across nodes: another node asks this node's index (`search::cluster`).
        row(Method::GET,    "/internal/v1/search",             Cluster,     get(search::internal_search)),
        row(Method::GET,    "/internal/v1/histogram",          Cluster,     get(search::internal_histogram)),
        row(Method::GET,    "/internal/v1/top",                Cluster,     get(search::internal_top)),
        row(Method::POST,   "/internal/v1/top/counts",         Cluster,     post(search::internal_top_counts)),
        row(Method::GET,    "/internal/v1/stats",              Cluster,     get(search::internal_stats)),
        row(Method::GET,    "/internal/v1/fields",             Cluster,     get(search::internal_fields)),
        row(Method::GET,    "/internal/v1/context",            Cluster,     get(search::internal_context)),
        row(Method::GET,    "/internal/v1/tail",               Cluster,     get(stream::internal_tail)),
        row(Method::POST,   "/internal/raft/append",           Cluster,     post(cluster::raft_append).layer(internal_limit())),
        row(Method::POST,   "/internal/raft/vote",             Cluster,     post(cluster::raft_vote)),
        row(Method::POST,   "/internal/raft/snapshot",         Cluster,     post(cluster::raft_snapshot).layer(internal_limit())),
        row(Method::POST,   "/internal/v1/store/txn",          Cluster,     post(cluster::store_txn)),
        row(Method::POST,   "/internal/v1/store/read_index",   Cluster,     post(cluster::read_index)),
        row(Method::POST,   "/internal/v1/cluster/join",       Cluster,     post(cluster::join)),
        row(Method::POST,   "/internal/v1/cluster/exchange",   JoinToken,   post(cluster::exchange)),
        row(Method::POST,   "/internal/v1/cluster/remove",     Cluster,     post(cluster::internal_remove)),
        row(Method::POST,   "/internal/v1/heartbeat",          Cluster,     post(cluster::heartbeat)),
        // Deployments (seed 002): lograft's REST routes, then the seed's literal endpoints.
        row(Method::GET,    "/api/v1/deployments",             R(Reader),   get(deploy::list)),
        row(Method::POST,   "/api/v1/deployments",             R(Operator), post(deploy::create)),
        row(Method::GET,    "/api/v1/deployments/{id}",        R(Reader),   get(deploy::get)),
        row(Method::PUT,    "/api/v1/deployments/{id}",        R(Operator), put(deploy::update)),
        row(Method::DELETE, "/api/v1/deployments/{id}",        R(Operator), delete(deploy::delete)),
        row(Method::POST,   "/api/v1/deployments/{id}/execute", R(Operator), post(deploy::execute_one)),
        row(Method::GET,    "/api/v1/deployments/{id}/log",    R(Reader),   get(deploy::log)),
        row(Method::GET,    "/api/v1/deployments/{id}/signal", R(Reader),   get(deploy::signal)),
        row(Method::GET,    "/api/v1/deployments/{id}/plan",   R(Operator), get(deploy::plan)),
        row(Method::POST,   "/api/v1/createCluster",           R(Operator), post(deploy::create_cluster)),
        row(Method::POST,   "/api/v1/deleteCluster",           R(Operator), post(deploy::delete_cluster)),
        row(Method::POST,   "/api/v1/selectCluster",           R(Reader),   post(deploy::select_cluster)),
        row(Method::GET,    "/api/v1/selectClusterList",       R(Reader),   get(deploy::select_cluster_list)),
        row(Method::POST,   "/api/v1/executeCluster",          R(Operator), post(deploy::execute_cluster)),
        row(Method::GET,    "/api/v1/readLog",                 R(Reader),   get(deploy::read_log)),
        row(Method::GET,    "/api/v1/executeResultSignal",     R(Reader),   get(deploy::execute_result_signal)),
        row(Method::POST,   "/internal/v1/deploy/probe",       Cluster,     post(deploy::probe)),
        row(Method::GET,    "/api/v1/cluster/nodes",           R(Reader),   get(cluster::nodes)),
        row(Method::PUT,    "/api/v1/cluster/nodes/{name}/tag", R(Operator), put(cluster::set_tag)),
        row(Method::DELETE, "/api/v1/cluster/nodes/{name}",    R(Admin),    delete(cluster::remove_node)),
        row(Method::POST,   "/api/v1/cluster/join",            R(Admin),    post(cluster::join_running)),
        row(Method::POST,   "/api/v1/cluster/leave",           R(Admin),    post(cluster::leave)),
        row(Method::POST,   "/api/v1/ingest/{runner}",         R(Operator), post(ingest::lines)),
        row(Method::GET,    "/logkit/version",                 R(Reader),   get(logkit::version)),
        row(Method::GET,    "/logkit/runners",                 R(Reader),   get(logkit::runners)),
        row(Method::GET,    "/logkit/status",                  R(Reader),   get(logkit::status_all)),
        row(Method::GET,    "/logkit/errors",                  R(Reader),   get(logkit::errors_all)),
        row(Method::GET,    "/logkit/errors/{name}",           R(Reader),   get(logkit::errors_one)),
        row(Method::GET,    "/logkit/configs",                 R(Reader),   get(logkit::configs)),
        row(Method::GET,    "/logkit/configs/{name}",          R(Reader),   get(logkit::config)),
        row(Method::POST,   "/logkit/configs/{name}",          R(Operator), post(logkit::create)),
        row(Method::PUT,    "/logkit/configs/{name}",          R(Operator), put(logkit::replace)),
        row(Method::DELETE, "/logkit/configs/{name}",          R(Operator), delete(logkit::delete)),
        row(Method::POST,   "/logkit/configs/{name}/start",    R(Operator), post(logkit::start)),
        row(Method::POST,   "/logkit/configs/{name}/stop",     R(Operator), post(logkit::stop)),
        row(Method::POST,   "/logkit/configs/{name}/reset",    R(Operator), post(logkit::reset)),
        row(Method::POST,   "/api/v1/parse",                   R(Reader),   post(logkit::preview)),
        row(Method::POST,   "/logkit/parser/parse",            R(Reader),   post(logkit::parse)),
        row(Method::POST,   "/logkit/parser/check",            R(Reader),   post(logkit::parser_check)),
        row(Method::POST,   "/logkit/reader/check",            R(Reader),   post(logkit::reader_check)),
        row(Method::POST,   "/logkit/reader/read",             R(Reader),   post(logkit::reader_read)),
        row(Method::GET,    "/logkit/errorcode",               R(Reader),   get(logkit_describe::error_codes)),
        row(Method::GET,    "/logkit/parser/usages",           R(Reader),   get(logkit_describe::parser_usages)),
        row(Method::GET,    "/logkit/parser/options",          R(Reader),   get(logkit_describe::parser_options)),
        row(Method::GET,    "/logkit/parser/tooltips",         R(Reader),   get(logkit_describe::parser_tooltips)),
        row(Method::GET,    "/logkit/parser/samplelogs",       R(Reader),   get(logkit_describe::sample_logs)),
        row(Method::GET,    "/logkit/reader/usages",           R(Reader),   get(logkit_describe::reader_usages)),
        row(Method::GET,    "/logkit/reader/options",          R(Reader),   get(logkit_describe::reader_options)),
        row(Method::GET,    "/logkit/reader/tooltips",         R(Reader),   get(logkit_describe::reader_tooltips)),
        row(Method::GET,    "/logkit/sender/usages",           R(Reader),   get(logkit_describe::sender_usages)),
        row(Method::GET,    "/logkit/sender/options",          R(Reader),   get(logkit_describe::sender_options)),
        row(Method::GET,    "/logkit/sender/tooltips",         R(Reader),   get(logkit_describe::sender_tooltips)),
        row(Method::GET,    "/logkit/transformer/usages",      R(Reader),   get(logkit_describe::transformer_usages)),
        row(Method::GET,    "/logkit/transformer/options",     R(Reader),   get(logkit_describe::transformer_options)),
        row(Method::GET,    "/logkit/transformer/tooltips",    R(Reader),   get(logkit_describe::transformer_tooltips)),
        row(Method::GET,    "/logkit/metric/keys",             R(Reader),   get(logkit_describe::metric_keys)),
        row(Method::GET,    "/logkit/cleaner/options",         R(Reader),   get(logkit_describe::cleaner_options)),
        row(Method::GET,    "/logkit/cluster/ping",            R(Reader),   get(logkit_cluster::ping)),
        row(Method::GET,    "/logkit/cluster/ismaster",        R(Reader),   get(logkit_cluster::is_master)),
        row(Method::POST,   "/logkit/cluster/register",        R(Operator), post(logkit_cluster::register)),
        row(Method::GET,    "/logkit/cluster/slaves",          R(Reader),   get(logkit_cluster::slaves)),
        row(Method::DELETE, "/logkit/cluster/slaves",          R(Admin),    delete(logkit_cluster::delete_slaves)),
        row(Method::POST,   "/logkit/cluster/slaves/tag",      R(Operator), post(logkit_cluster::slaves_tag)),
        row(Method::POST,   "/logkit/cluster/tag",             R(Operator), post(logkit_cluster::own_tag)),
        row(Method::GET,    "/logkit/cluster/runners",         R(Reader),   get(logkit_cluster::runners)),
        row(Method::GET,    "/logkit/cluster/status",          R(Reader),   get(logkit_cluster::status)),
        row(Method::GET,    "/logkit/cluster/configs",         R(Reader),   get(logkit_cluster::configs)),
        row(Method::GET,    "/logkit/cluster/configs/{name}",  R(Reader),   get(logkit_cluster::config)),
        row(Method::POST,   "/logkit/cluster/configs/{name}",  R(Operator), post(logkit_cluster::create)),
        row(Method::PUT,    "/logkit/cluster/configs/{name}",  R(Operator), put(logkit_cluster::replace)),
        row(Method::DELETE, "/logkit/cluster/configs/{name}",  R(Operator), delete(logkit_cluster::delete)),
        row(Method::POST,   "/logkit/cluster/configs/{name}/start", R(Operator), post(logkit_cluster::set_state)),
        row(Method::POST,   "/logkit/cluster/configs/{name}/stop",  R(Operator), post(logkit_cluster::set_state)),
        row(Method::POST,   "/logkit/cluster/configs/{name}/reset", R(Operator), post(logkit_cluster::set_state)),
        row(Method::GET,    "/internal/v1/logkit/configs",     Cluster,     get(logkit::internal_configs)),
        row(Method::GET,    "/internal/v1/logkit/status",      Cluster,     get(logkit_cluster::internal_status)),
        row(Method::POST,   "/_bulk",                          R(Operator), post(ingest::bulk)),
        row(Method::POST,   "/{index}/_bulk",                  R(Operator), post(ingest::bulk)),
        row(Method::PUT,    "/_bulk",                          R(Operator), put(ingest::bulk)),
        row(Method::PUT,    "/{index}/_bulk",                  R(Operator), put(ingest::bulk)),
    ]
}

/// Raft appends and snapshots carry whole config stores: the ingest cap, not the API's.
fn internal_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(INTERNAL_BODY_LIMIT as usize)
}

/// Login bodies are a name and a password.
const LOGIN_BODY_LIMIT: u64 = 16 * 1024;
/// Raft appends and snapshots (see [`internal_limit`]).
const INTERNAL_BODY_LIMIT: u64 = 64 * 1024 * 1024;

/// Network inputs (`_bulk`, `/api/v1/ingest/...`) take `api.max_ingest_bytes`.
fn is_ingest_path(path: &str) -> bool {
    path.ends_with("/_bulk") || path.starts_with("/api/v1/ingest/")
}

/// The body cap of a request path and the setting it comes from, for the router and for the
/// 413 message (one source, so the message names the limit that refused the body).
fn body_limit_of(path: &str, api: &crate::config::ApiConfig) -> (u64, &'static str) {
    if path == "/api/v1/login" {
        (LOGIN_BODY_LIMIT, "the login body limit")
    } else if path == "/internal/raft/append" || path == "/internal/raft/snapshot" {
        (INTERNAL_BODY_LIMIT, "the Raft message limit")
    } else if is_ingest_path(path) {
        (api.max_ingest_bytes, "api.max_ingest_bytes")
    } else {
        (api.max_body_bytes, "api.max_body_bytes")
    }
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for (spec, handler) in route_table() {
        // Shippers send large bulk requests; everything else gets the general cap. A row's
        // own, tighter cap (login) sits inside this one and wins.
        let body_limit = if is_ingest_path(spec.path) {
            state.config.api.max_ingest_bytes
        } else {
            state.config.api.max_body_bytes
        };
        let guarded = handler
            .layer(DefaultBodyLimit::max(body_limit as usize))
            .route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), spec.access),
                access::authorize,
            ));
        router = router.route(spec.path, guarded);
    }
    let limits = &state.config.api;
    router
        .fallback(system::not_found)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // Outside the timeout, so its 408 is rewritten too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            errors_as_json,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// CPU-heavy work on untrusted input (parsing request bodies, compiling user patterns) runs
/// here, on tokio's blocking threads, never on the async workers that answer `/health` and
/// every other request (see: attack review item 9, two parse previews held both workers for
/// 46 s). At most one job per core runs at once, so a flood of them cannot take every core
/// either. The job itself holds its permit: when the request timeout answers 408 and drops
/// the request, the permit is released only when the work stops, which the work's own limits
/// (pattern size and groups, line cap, a deadline between lines) bound.
pub(crate) async fn cpu_bound<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    static PERMITS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
        std::sync::LazyLock::new(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            Arc::new(tokio::sync::Semaphore::new(cores))
        });
    let permit = PERMITS
        .clone()
        .acquire_owned()
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await?)
}

/// Every error an API call can end in.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Any other status a layer or an extractor answered with (e.g. 422 from a JSON body
    /// of the wrong shape).
    #[error("{1}")]
    Other(StatusCode, String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Other(status, _) if status.is_server_error() => (*status, "internal"),
            ApiError::Other(status, _) => (*status, "invalid_request"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The error for a bare status that some layer or extractor answered with.
    fn from_status(status: StatusCode, message: String) -> ApiError {
        match status {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(message),
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized(message),
            StatusCode::FORBIDDEN => ApiError::Forbidden(message),
            StatusCode::NOT_FOUND => ApiError::NotFound(message),
            StatusCode::CONFLICT => ApiError::Conflict(message),
            StatusCode::TOO_MANY_REQUESTS => ApiError::TooManyRequests(message),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(message),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(message),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(message),
            StatusCode::REQUEST_TIMEOUT => ApiError::RequestTimeout(message),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(message),
            other => ApiError::Other(other, message),
        }
    }
}

/// The one place where every error the API answers with becomes JSON: handlers return
/// [`ApiError`] (or their compatibility envelope, which is JSON too), but axum's extractor
/// rejections (413 body limit, invalid UTF-8, a JSON body of the wrong shape, a bad path
/// parameter), the method router's 405 and the timeout layer's 408 are plain text or empty.
/// Any error response that is not already JSON is rebuilt as an [`ApiError`] with a message
/// that names the problem (and the limit, for 413), keeping headers such as `Allow`.
async fn errors_as_json(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // A declared length over the route's cap is refused here, before any extractor waits for
    // the body (and whatever the route, so the 413 has one shape and names its limit).
    let (limit, setting) = body_limit_of(&path, &state.config.api);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > limit) {
        if length <= limit + LINGER_BYTES {
            linger(&mut request.into_body().into_data_stream()).await;
        }
        return ApiError::PayloadTooLarge(format!(
            "the request body is larger than {limit} bytes ({setting})"
        ))
        .into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if is_json {
        return response;
    }
    if path.starts_with("/logkit/") && status == StatusCode::METHOD_NOT_ALLOWED {
        // logkit's framework's answer.
        return (
            status,
            axum::Json(serde_json::json!({"message": "Method Not Allowed"})),
        )
            .into_response();
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are a line; anything longer is not one, and is not echoed.
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            let (limit, setting) = body_limit_of(&path, &state.config.api);
            format!("the request body is larger than {limit} bytes ({setting})")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            format!("method {method} is not allowed on {path} (allowed: {allowed})")
        }
        StatusCode::REQUEST_TIMEOUT => format!(
            "the request took longer than api.request_timeout ({}s)",
            state.config.api.request_timeout.as_secs_f64()
        ),
        StatusCode::NOT_FOUND if text.is_empty() => format!("no route for {path}"),
        _ if text.contains("valid UTF-8") => {
            let detail = text.split_once(": ").map_or("", |(_, detail)| detail);
            format!("the request body is not valid UTF-8: {detail}")
        }
        _ if text.is_empty() || status.is_server_error() => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
        _ => lowercase_first(&text),
    };
    let mut rebuilt = ApiError::from_status(status, message).into_response();
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            rebuilt.headers_mut().insert(name, value.clone());
        }
    }
    rebuilt
}

/// Bytes of a refused body read and discarded before answering, and for how long at most.
const LINGER_BYTES: u64 = 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Read a little of what is left of a refused body before answering: a client still sending
/// when the connection closes reads a reset instead of the 413 (nginx's lingering close).
/// Bounded, so a refused body costs at most [`LINGER_BYTES`] and [`LINGER_TIME`].
async fn linger(stream: &mut axum::body::BodyDataStream) {
    use futures_util::StreamExt;
    let drain = async {
        let mut discarded = 0u64;
        while let Some(Ok(data)) = stream.next().await {
            discarded += data.len() as u64;
            if discarded > LINGER_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Our messages are lowercase (they get chained); axum's rejections start with a capital.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
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
            SearchError::NotFound(message) => ApiError::NotFound(message),
            SearchError::Unavailable(message) => ApiError::Unavailable(message),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { .. } => ApiError::Conflict(err.to_string()),
            StoreError::Unavailable(_) => ApiError::Unavailable(err.to_string()),
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

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::BadCredentials => ApiError::Unauthorized(err.to_string()),
            AuthError::RateLimited(_) => ApiError::TooManyRequests(err.to_string()),
            AuthError::UserExists(_) => ApiError::Conflict(err.to_string()),
            AuthError::NoSuchUser(_) | AuthError::NoSuchToken(_) => {
                ApiError::NotFound(err.to_string())
            }
            AuthError::Invalid(_) => ApiError::BadRequest(err.to_string()),
            AuthError::Store(inner) => inner.into(),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        ApiError::Internal(err.to_string())
    }
}
