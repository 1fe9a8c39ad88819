//! Login, logout, users and API tokens.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::session_cookie;
use super::{ApiError, AppState, SESSION_COOKIE};
use crate::auth::{AuthError, Principal, Role};

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    serde_json::from_str(body)
        .map_err(|err| ApiError::BadRequest(format!("invalid request body: {err}")))
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    text.parse().map_err(ApiError::BadRequest)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    user: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: String,
) -> Result<Response, ApiError> {
    let LoginBody { user, password } = parse_json(&body)?;
    let auth = state.auth.clone();
    let name = user.clone();
    // Argon2 takes tens of milliseconds of CPU: not on the async workers.
    let result =
        tokio::task::spawn_blocking(move || auth.login(client.ip(), &name, &password)).await?;
    let client_text = Some(client.ip().to_string());
    match result {
        Ok((session, principal)) => {
            state
                .audit
                .record(&principal.name, "login", &user, "ok", client_text)
                .await;
            let secure = if state.config.tls.is_some() {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
                state.auth.session_ttl().as_secs()
            );
            Ok((
                [(header::SET_COOKIE, cookie)],
                Json(json!({"user": user, "role": principal.role})),
            )
                .into_response())
        }
        Err(err @ AuthError::RateLimited(_)) => {
            // One audit line per client and window; every refused attempt is counted in
            // the metric (a flood of guesses must not flood the audit trail).
            if state.auth.rate_limit_audit_due(client.ip()) {
                state
                    .audit
                    .record("anonymous", "login", &user, "rate_limited", client_text)
                    .await;
            }
            Err(err.into())
        }
        Err(err) => {
            state
                .audit
                .record("anonymous", "login", &user, "failed", client_text)
                .await;
            Err(err.into())
        }
    }
}

pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(session) = session_cookie(&headers) {
        state.auth.logout(&session);
    }
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], StatusCode::NO_CONTENT).into_response()
}

pub async fn me(Extension(principal): Extension<Principal>) -> Json<Principal> {
    Json(principal)
}

pub async fn list_users(
    State(state): State<AppState>,
    super::ApiQuery(consistency): super::ApiQuery<super::cluster::Consistency>,
) -> Result<Json<Value>, ApiError> {
    super::cluster::read_barrier(&state, &consistency).await?;
    let users: Vec<Value> = state
        .auth
        .users()?
        .into_iter()
        .map(|(name, role)| json!({"name": name, "role": role}))
        .collect();
    Ok(Json(Value::Array(users)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
    password: String,
}

pub async fn add_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let NewUser {
        name,
        role,
        password,
    } = parse_json(&body)?;
    let role = parse_role(&role)?;
    state.auth.add_user(&name, role, &password).await?;
    state
        .audit
        .record(&principal.name, "user.add", &name, "ok", None)
        .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": name, "role": role})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

pub async fn set_password(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: String,
) -> Result<StatusCode, ApiError> {
    let NewPassword { password } = parse_json(&body)?;
    state.auth.set_password(&name, &password).await?;
    state
        .audit
        .record(&principal.name, "user.passwd", &name, "ok", None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.delete_user(&name).await?;
    state
        .audit
        .record(&principal.name, "user.delete", &name, "ok", None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_tokens(
    State(state): State<AppState>,
    super::ApiQuery(consistency): super::ApiQuery<super::cluster::Consistency>,
) -> Result<Json<Value>, ApiError> {
    super::cluster::read_barrier(&state, &consistency).await?;
    let tokens: Vec<Value> = state
        .auth
        .tokens()?
        .into_iter()
        .map(|t| json!({"id": t.id, "name": t.name, "role": t.role, "created": t.created}))
        .collect();
    Ok(Json(Value::Array(tokens)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
}

pub async fn create_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let NewToken { name, role } = parse_json(&body)?;
    let role = parse_role(&role)?;
    let (record, token) = state.auth.create_token(&name, role).await?;
    state
        .audit
        .record(
            &principal.name,
            "token.create",
            &format!("{} ({})", record.name, record.id),
            "ok",
            None,
        )
        .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": record.id, "name": record.name, "role": record.role, "token": token})),
    ))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.revoke_token(&id).await?;
    state
        .audit
        .record(&principal.name, "token.revoke", &id, "ok", None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
