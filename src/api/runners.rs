//! `/api/v1/runners`: create, list, read, replace and delete runner configs.
//!
//! A change is a write to the config store; the supervisor picks it up and starts, restarts or
//! stops the runner (no process restart). Configs are validated against this node's allowlist
//! before they are stored, so a refused config gets a 400 naming the path and the allowlist.
//! Secrets in configs (keys like `password`, `secret`, `token`, `auth`, `key`, whatever their
//! value's type, and passwords inside URLs) are stored and used, but read back as `"******"`;
//! sending the masked value back keeps the stored secret (`collect::config::mask_secrets`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::Value;

use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::collect::{RunnerConfig, RunnerStatus};

#[derive(Serialize)]
pub struct RunnerView {
    pub name: String,
    pub config: Value,
    pub status: Option<RunnerStatus>,
}

/// The one masking function (and its inverse for write-back), shared by every API that reads
/// runner configs back: see `collect::config::mask_secrets`.
pub use crate::collect::config::{keep_masked_secrets, mask_secrets};

fn view(state: &AppState, name: &str, config_json: &str) -> RunnerView {
    let mut config = serde_json::from_str(config_json).unwrap_or(Value::Null);
    mask_secrets(&mut config);
    RunnerView {
        name: name.to_string(),
        config,
        status: state.supervisor.status(name).map(|(_, status)| status),
    }
}

pub(super) fn parse_body(state: &AppState, body: &str) -> Result<RunnerConfig, ApiError> {
    let mut config = RunnerConfig::parse(body, state.supervisor.allowlist())
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    // logkit's `createtime`: when this version of the config was written.
    config.createtime =
        Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
    if config.name.starts_with('_') {
        return Err(ApiError::BadRequest(format!(
            "runner names starting with '_' are reserved for lograft ({:?})",
            config.name
        )));
    }
    Ok(config)
}

/// [`parse_body`] off the async workers: validating a config compiles its patterns.
pub(super) async fn parse_runner(state: &AppState, body: String) -> Result<RunnerConfig, ApiError> {
    let state = state.clone();
    super::cpu_bound(move || parse_body(&state, &body)).await?
}

pub async fn list(
    State(state): State<AppState>,
    super::ApiQuery(consistency): super::ApiQuery<super::cluster::Consistency>,
) -> Result<Json<Vec<RunnerView>>, ApiError> {
    super::cluster::read_barrier(&state, &consistency).await?;
    let entries = state.store.list(state.supervisor.prefix())?;
    let views = entries
        .iter()
        .map(|entry| {
            view(
                &state,
                &entry.key[state.supervisor.prefix().len()..],
                &entry.value,
            )
        })
        .collect();
    Ok(Json(views))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    super::ApiQuery(consistency): super::ApiQuery<super::cluster::Consistency>,
) -> Result<Json<RunnerView>, ApiError> {
    super::cluster::read_barrier(&state, &consistency).await?;
    match state.store.get(&state.supervisor.key(&name))? {
        Some(entry) => Ok(Json(view(&state, &name, &entry.value))),
        None => Err(ApiError::NotFound(format!(
            "runner {name:?} does not exist"
        ))),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<(StatusCode, Json<RunnerView>), ApiError> {
    let config = parse_runner(&state, body).await?;
    let json = serde_json::to_string(&config).expect("config serializes");
    // Compare-and-set on "absent": two creates of the same name cannot both win.
    state
        .store
        .put(&state.supervisor.key(&config.name), json.clone(), Some(0))
        .await
        .map_err(|err| match err {
            crate::cluster::StoreError::Conflict { .. } => ApiError::Conflict(format!(
                "runner {:?} already exists; use PUT to change it",
                config.name
            )),
            other => other.into(),
        })?;
    state
        .audit
        .record(&principal.name, "runner.create", &config.name, "ok", None)
        .await;
    Ok((StatusCode::CREATED, Json(view(&state, &config.name, &json))))
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<RunnerView>, ApiError> {
    let mut body_json: Value = serde_json::from_str(&body)
        .map_err(|err| ApiError::BadRequest(format!("invalid runner config: {err}")))?;
    if let Some(stored) = state.store.get(&state.supervisor.key(&name))? {
        let stored: Value = serde_json::from_str(&stored.value).unwrap_or_default();
        keep_masked_secrets(&mut body_json, &stored);
    }
    let config = parse_runner(&state, body_json.to_string()).await?;
    if config.name != name {
        return Err(ApiError::BadRequest(format!(
            "the body names runner {:?} but the URL names {name:?}",
            config.name
        )));
    }
    let json = serde_json::to_string(&config).expect("config serializes");
    state
        .store
        .put(&state.supervisor.key(&name), json.clone(), None)
        .await?;
    state
        .audit
        .record(&principal.name, "runner.replace", &name, "ok", None)
        .await;
    Ok(Json(view(&state, &name, &json)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.store.delete(&state.supervisor.key(&name)).await? {
        Some(_) => {
            state
                .audit
                .record(&principal.name, "runner.delete", &name, "ok", None)
                .await;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::NotFound(format!(
            "runner {name:?} does not exist"
        ))),
    }
}
