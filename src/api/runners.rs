//! `/api/v1/runners`: create, list, read, replace and delete runner configs.
//!
//! A change is a write to the config store; the supervisor picks it up and starts, restarts or
//! stops the runner (no process restart). Configs are validated against this node's allowlist
//! before they are stored, so a refused config gets a 400 naming the path and the allowlist.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::{ApiError, AppState};
use crate::collect::{RunnerConfig, RunnerStatus, runner_key};

#[derive(Serialize)]
pub struct RunnerView {
    pub name: String,
    pub config: serde_json::Value,
    pub status: Option<RunnerStatus>,
}

fn view(state: &AppState, name: &str, config_json: &str) -> RunnerView {
    RunnerView {
        name: name.to_string(),
        config: serde_json::from_str(config_json).unwrap_or(serde_json::Value::Null),
        status: state.supervisor.status(name).map(|(_, status)| status),
    }
}

fn parse_body(state: &AppState, body: &str) -> Result<RunnerConfig, ApiError> {
    RunnerConfig::parse(body, state.supervisor.allowlist())
        .map_err(|err| ApiError::BadRequest(err.to_string()))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<RunnerView>>, ApiError> {
    let entries = state.store.list(crate::collect::RUNNER_PREFIX)?;
    let views = entries
        .iter()
        .map(|entry| {
            view(
                &state,
                &entry.key[crate::collect::RUNNER_PREFIX.len()..],
                &entry.value,
            )
        })
        .collect();
    Ok(Json(views))
}

pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<RunnerView>, ApiError> {
    match state.store.get(&runner_key(&name))? {
        Some(entry) => Ok(Json(view(&state, &name, &entry.value))),
        None => Err(ApiError::NotFound(format!(
            "runner {name:?} does not exist"
        ))),
    }
}

pub async fn create(
    State(state): State<AppState>,
    body: String,
) -> Result<(StatusCode, Json<RunnerView>), ApiError> {
    let config = parse_body(&state, &body)?;
    let json = serde_json::to_string(&config).expect("config serializes");
    // Compare-and-set on "absent": two creates of the same name cannot both win.
    state
        .store
        .put(&runner_key(&config.name), json.clone(), Some(0))
        .await
        .map_err(|err| match err {
            crate::cluster::StoreError::Conflict { .. } => ApiError::Conflict(format!(
                "runner {:?} already exists; use PUT to change it",
                config.name
            )),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(view(&state, &config.name, &json))))
}

pub async fn replace(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<RunnerView>, ApiError> {
    let config = parse_body(&state, &body)?;
    if config.name != name {
        return Err(ApiError::BadRequest(format!(
            "the body names runner {:?} but the URL names {name:?}",
            config.name
        )));
    }
    let json = serde_json::to_string(&config).expect("config serializes");
    state
        .store
        .put(&runner_key(&name), json.clone(), None)
        .await?;
    Ok(Json(view(&state, &name, &json)))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.store.delete(&runner_key(&name)).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::NotFound(format!(
            "runner {name:?} does not exist"
        ))),
    }
}
