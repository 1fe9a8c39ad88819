//! The access check in front of every route: who is calling (token, basic auth with a token as
//! the password, or session cookie) and whether their role is enough.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use base64::Engine;

use super::{ApiError, AppState};
use crate::auth::{Principal, Role};

pub const SESSION_COOKIE: &str = "lograft_session";
/// Browsers cannot add a custom header to a cross-site form post, so requiring it on
/// state-changing cookie requests stops cross-site request forgery.
pub const CSRF_HEADER: &str = "x-lograft-csrf";
pub use crate::wire::CLUSTER_SECRET_HEADER;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// `/metrics`: public when `metrics.public = true`, else `reader`.
    Metrics,
    /// At least this role.
    Role(Role),
    /// Node-to-node and Raft routes (`/internal/...`): only the cluster secret opens them;
    /// no user or token does.
    Cluster,
    /// `/internal/v1/cluster/exchange` alone: a join token opens it (and nothing else).
    JoinToken,
}

impl Access {
    /// The role needed, given the node config (`None`: public or cluster-only).
    pub fn required(self, metrics_public: bool) -> Option<Role> {
        match self {
            Access::Public | Access::Cluster | Access::JoinToken => None,
            Access::Metrics if metrics_public => None,
            Access::Metrics => Some(Role::Reader),
            Access::Role(role) => Some(role),
        }
    }
}

/// The session id in the request's cookies, if any.
pub fn session_cookie(request_headers: &axum::http::HeaderMap) -> Option<String> {
    request_headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

fn principal_of(state: &AppState, request: &Request) -> Result<Option<Principal>, ApiError> {
    let headers = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
        // RFC 7235: the scheme is case-insensitive (`bearer`, `BEARER`, `basic` are common).
        let (scheme, credentials) = value.trim_start().split_once(' ').unwrap_or((value, ""));
        let principal = if scheme.eq_ignore_ascii_case("bearer") {
            state.auth.verify_token(credentials.trim())
        } else if scheme.eq_ignore_ascii_case("basic") {
            let encoded = credentials;
            // Shippers that only speak basic auth send `user:token`; the token decides.
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|pair| pair.split_once(':').map(|(_, secret)| secret.to_string()))
                .and_then(|secret| state.auth.verify_token(&secret))
        } else {
            return Err(ApiError::Unauthorized(
                "unsupported Authorization scheme; use Bearer <token> or Basic user:<token>".into(),
            ));
        };
        return principal
            .map(Some)
            .ok_or_else(|| ApiError::Unauthorized("invalid or revoked API token".into()));
    }
    if let Some(session) = session_cookie(headers) {
        let principal = match state.auth.session(&session) {
            Ok(principal) => principal,
            Err(crate::auth::SessionError::Store(reason)) => {
                return Err(ApiError::Unavailable(format!(
                    "cannot check the session: {reason}"
                )));
            }
            Err(ended) => return Err(ApiError::Unauthorized(ended.to_string())),
        };
        let safe = matches!(*request.method(), Method::GET | Method::HEAD);
        if !safe && !headers.contains_key(CSRF_HEADER) {
            return Err(ApiError::Forbidden(format!(
                "state-changing requests with a session cookie need the {CSRF_HEADER} header"
            )));
        }
        return Ok(Some(principal));
    }
    Ok(None)
}

pub async fn authorize(
    State((state, access)): State<(AppState, Access)>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if access == Access::Cluster {
        let presented = request
            .headers()
            .get(CLUSTER_SECRET_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if !state.cluster_secret.matches(presented) {
            return Err(ApiError::Unauthorized(
                "node-to-node calls need the cluster secret".into(),
            ));
        }
        return Ok(next.run(request).await);
    }
    if access == Access::JoinToken {
        let presented = request
            .headers()
            .get(crate::wire::JOIN_TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if !crate::cluster::join_token::is_join_token(presented) {
            return Err(ApiError::Unauthorized(format!(
                "this route takes a join token in {} (`lograft cluster token` on a member)",
                crate::wire::JOIN_TOKEN_HEADER
            )));
        }
        return Ok(next.run(request).await);
    }
    let Some(required) = access.required(state.config.metrics.public) else {
        return Ok(next.run(request).await);
    };
    let logkit_route = request.uri().path().starts_with("/logkit/");
    let principal = match principal_of(&state, &request) {
        Ok(Some(principal)) => principal,
        Ok(None) => match logkit_anonymous(&state, &request) {
            Some(principal) => principal,
            None => {
                return Ok(refusal(
                    logkit_route,
                    ApiError::Unauthorized(
                        "log in or send an API token (Authorization: Bearer ...)".into(),
                    ),
                ));
            }
        },
        Err(err) => return Ok(refusal(logkit_route, err)),
    };
    if principal.role < required {
        return Ok(refusal(
            logkit_route,
            ApiError::Forbidden(format!(
                "{} has role {}; this needs {required}",
                principal.name, principal.role
            )),
        ));
    }
    // A client that retries a write sends the same Idempotency-Key: the writes the request
    // makes are applied once, and the retry gets the first answer (see
    // `cluster::with_client_key`). Keys are per principal.
    let key = match request.headers().get(IDEMPOTENCY_KEY) {
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|key| key.len() <= 128 && crate::wire::is_request_id(key))
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key must be 1 to 128 characters of letters, digits and :_.-"
                            .into(),
                    )
                })?;
            Some(format!("{}:{key}", principal_key(&principal.name)))
        }
        None => None,
    };
    request.extensions_mut().insert(principal);
    Ok(match key {
        Some(key) => crate::cluster::with_client_key(key, next.run(request)).await,
        None => next.run(request).await,
    })
}

/// `[compat.logkit] anonymous_role`: a request without credentials on `/logkit/*` from a
/// network in `anonymous_from` acts with that role (never admin), as `logkit@<address>`. Off
/// unless configured: the one exception to "every route needs a session or a token", for
/// logkit clients that send none.
fn logkit_anonymous(state: &AppState, request: &Request) -> Option<Principal> {
    let role = state.config.logkit.anonymous_role?;
    if !request.uri().path().starts_with("/logkit/") {
        return None;
    }
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()?
        .0
        .ip();
    state
        .config
        .logkit
        .anonymous_from
        .iter()
        .any(|net| net.contains(peer))
        .then(|| Principal {
            name: format!("logkit@{peer}"),
            role,
        })
}

/// A refusal on `/logkit/*` in logkit's envelope (`{"code","message"}`), which logkit's own
/// clients decode; elsewhere lograft's.
fn refusal(logkit_route: bool, err: ApiError) -> Response {
    if !logkit_route {
        return err.into_response();
    }
    let (status, _) = err.code();
    let mut response = (
        status,
        axum::Json(serde_json::json!({"code": format!("L{}", status.as_u16()), "message": err.to_string()})),
    )
        .into_response();
    if status == axum::http::StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// The header a client sends to make a retried write safe (as Stripe's and the IETF draft's).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A short, id-safe name for a principal (its name may hold any character).
fn principal_key(name: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(name.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
