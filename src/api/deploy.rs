//! Deployments over HTTP: lograft's REST routes under `/api/v1/deployments`, seed 002's
//! literal endpoints (`createCluster`, `deleteCluster`, `selectCluster`, `selectClusterList`,
//! `executeCluster`, `readLog`, `executeResultSignal`) with its
//! `{"code": 200, "message": "ok", "result": ...}` envelope, and the node-to-node probe an
//! execution asks every target (`/internal/v1/deploy/probe`). The machinery is `crate::deploy`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiQuery, AppState};
use crate::auth::Principal;
use crate::deploy::exec::{Kind, ProbeAnswer};
use crate::deploy::{self as model, DeployError, Deployment};

/// Deployments and log lines per page (seed 002's log pages hold 10 lines).
const PAGE: usize = 10;

impl From<DeployError> for ApiError {
    fn from(err: DeployError) -> Self {
        match err {
            DeployError::Invalid(message) => ApiError::BadRequest(message),
            DeployError::NotFound(_) => ApiError::NotFound(err.to_string()),
            DeployError::Refused(message) => ApiError::Conflict(message),
            DeployError::Store(err) => err.into(),
        }
    }
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    page: Option<usize>,
}

fn page_of<T: Clone>(items: &[T], page: Option<usize>) -> (usize, Vec<T>) {
    let page = page.unwrap_or(1).max(1);
    let start = (page - 1).saturating_mul(PAGE);
    (page, items.iter().skip(start).take(PAGE).cloned().collect())
}

async fn audit(state: &AppState, principal: &Principal, action: &str, id: &str, ok: bool) {
    state
        .audit
        .record(
            &principal.name,
            action,
            id,
            if ok { "ok" } else { "refused" },
            None,
        )
        .await;
}

async fn save(
    state: &AppState,
    principal: &Principal,
    body: &str,
    id: Option<&str>,
) -> Result<Deployment, ApiError> {
    let mut incoming = model::parse(body)?;
    if let Some(id) = id {
        incoming.id = id.to_string();
    }
    let action = match (incoming.id.is_empty(), incoming.status) {
        (true, _) => "deployment.create",
        (false, Some(model::State::Cancel)) => "deployment.cancel_or_edit",
        (false, _) => "deployment.edit",
    };
    let result = state.deployer.save(incoming).await;
    let target = result.as_ref().map(|d| d.id.clone()).unwrap_or_default();
    audit(state, principal, action, &target, result.is_ok()).await;
    Ok(result?)
}

async fn execute(
    state: &AppState,
    principal: &Principal,
    id: &str,
    execute_type: &Value,
) -> Result<Kind, ApiError> {
    let kind = Kind::from_execute_type(execute_type)?;
    let result = state.deployer.execute(id, kind).await;
    audit(
        state,
        principal,
        &format!("deployment.{}", kind.as_str()),
        id,
        result.is_ok(),
    )
    .await;
    result?;
    Ok(kind)
}

async fn delete_one(state: &AppState, principal: &Principal, id: &str) -> Result<(), ApiError> {
    let result = state.deployer.delete(id).await;
    audit(state, principal, "deployment.delete", id, result.is_ok()).await;
    Ok(result?)
}

/// Every deployment as the API shows it (a linearizable read).
async fn views(state: &AppState) -> Result<Vec<Value>, ApiError> {
    state.store.read_barrier().await?;
    Ok(model::list(&*state.store)?
        .iter()
        .map(Deployment::view)
        .collect())
}

fn log_page(lines: &[String], page: Option<usize>) -> Value {
    let (page, data) = page_of(lines, page);
    json!({"currentPage": page, "rows": lines.len(), "data": data})
}

// ---- lograft's REST routes ----------------------------------------------------------------

pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let all = views(&state).await?;
    let (page, data) = page_of(&all, query.page);
    Ok(Json(
        json!({"page": page, "total": all.len(), "deployments": data}),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut incoming: Value = serde_json::from_str(&body)
        .map_err(|err| ApiError::BadRequest(format!("invalid deployment: {err}")))?;
    if incoming.get("id").is_some() {
        return Err(ApiError::BadRequest(
            "id: a new deployment gets its id from lograft; PUT /api/v1/deployments/{id} changes one".into(),
        ));
    }
    incoming.as_object_mut().map(|o| o.remove("status"));
    let deployment = save(&state, &principal, &incoming.to_string(), None).await?;
    Ok((StatusCode::CREATED, Json(deployment.view())))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.store.read_barrier().await?;
    Ok(Json(model::load(&*state.store, &id)?.0.view()))
}

pub async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: String,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        save(&state, &principal, &body, Some(&id)).await?.view(),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete_one(&state, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteBody {
    execute_type: Value,
    #[serde(default)]
    cluster_id: Option<String>,
}

pub async fn execute_one(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: String,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: ExecuteBody = super::users::parse_json(&body)?;
    let _ = body.cluster_id;
    let kind = execute(&state, &principal, &id, &body.execute_type).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"deployment": id, "execution": kind.as_str()})),
    ))
}

pub async fn log(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    state.store.read_barrier().await?;
    model::load(&*state.store, &id)?;
    let lines = state
        .deployer
        .execution(&id)?
        .map(|e| e.log)
        .unwrap_or_default();
    Ok(Json(log_page(&lines, query.page)))
}

pub async fn signal(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.store.read_barrier().await?;
    model::load(&*state.store, &id)?;
    match state.deployer.execution(&id)? {
        Some(execution) => Ok(Json(execution.signal())),
        None => Err(ApiError::NotFound(format!(
            "deployment {id:?} has not been executed yet"
        ))),
    }
}

/// The dry run of a deploy: where each runner would go, what every node says of it (refused,
/// the files it matches now), and what changes against the deployed revision.
pub async fn plan(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.store.read_barrier().await?;
    let (deployment, _) = model::load(&*state.store, &id)?;
    model::validate_roles(&deployment)?;
    let nodes = state.membership.nodes()?;
    let placement = model::placement(&deployment, &nodes)?;
    let mut per_node = serde_json::Map::new();
    for (node, runners) in &placement {
        let bodies: Vec<Value> = runners.values().cloned().collect();
        let answer = match state.deployer.probe(node, &bodies, &[]).await {
            Ok(answer) => json!({"status": state.membership.status_of(node),
                "version": answer.version, "refused": answer.refused, "files": answer.files}),
            Err(reason) => json!({"status": state.membership.status_of(node), "error": reason}),
        };
        per_node.insert(node.clone(), answer);
    }
    Ok(Json(json!({
        "deployment": id,
        "revision": deployment.revision,
        "deployedRevision": deployment.deployed_revision,
        "nodes": per_node,
        "diff": model::diff(&deployment.deployed, &placement),
    })))
}

// ---- seed 002's literal endpoints -----------------------------------------------------------

/// Seed 002's envelope: `code` 200 with the result, or `code` 500 and what went wrong.
fn seed(result: Result<Value, ApiError>, failed: &str) -> Json<Value> {
    match result {
        Ok(value) => Json(json!({"code": 200, "message": "ok", "result": value})),
        Err(err) => Json(
            json!({"code": 500, "message": format!("{failed}: {}", err.to_string()), "result": null}),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdBody {
    id: String,
}

pub async fn create_cluster(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Json<Value> {
    let result = save(&state, &principal, &body, None)
        .await
        .map(|_| Value::Null);
    seed(result, "create failed")
}

pub async fn delete_cluster(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Json<Value> {
    let result = async {
        let IdBody { id } = super::users::parse_json(&body)?;
        delete_one(&state, &principal, &id).await?;
        Ok(Value::Null)
    }
    .await;
    seed(result, "delete failed")
}

pub async fn select_cluster(State(state): State<AppState>, body: String) -> Json<Value> {
    let result = async {
        let IdBody { id } = super::users::parse_json(&body)?;
        state.store.read_barrier().await?;
        Ok(model::load(&*state.store, &id)?.0.view())
    }
    .await;
    seed(result, "query failed")
}

pub async fn select_cluster_list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Json<Value> {
    let result = async {
        let all = views(&state).await?;
        let (page, data) = page_of(&all, query.page);
        Ok(json!({"currentPage": page, "total": all.len(), "data": data}))
    }
    .await;
    seed(result, "query failed")
}

pub async fn execute_cluster(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: String,
) -> Json<Value> {
    let result = async {
        let body: ExecuteBody = super::users::parse_json(&body)?;
        let id = body.cluster_id.ok_or_else(|| {
            ApiError::BadRequest("clusterId: the deployment's id is needed".into())
        })?;
        execute(&state, &principal, &id, &body.execute_type).await?;
        Ok(Value::Null)
    }
    .await;
    seed(result, "execute failed")
}

pub async fn read_log(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Json<Value> {
    let result = async {
        state.store.read_barrier().await?;
        let lines = state.deployer.last()?.map(|e| e.log).unwrap_or_default();
        Ok(log_page(&lines, query.page))
    }
    .await;
    seed(result, "reading the log failed")
}

pub async fn execute_result_signal(State(state): State<AppState>) -> Json<Value> {
    let result = async {
        state.store.read_barrier().await?;
        match state.deployer.last()? {
            Some(execution) => Ok(execution.signal()),
            None => Err(ApiError::NotFound("nothing has been executed yet".into())),
        }
    }
    .await;
    seed(result, "query failed")
}

// ---- node to node -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeBody {
    #[serde(default)]
    check: Vec<Value>,
    #[serde(default)]
    states: Vec<String>,
}

/// What this node says of runner configs it might be given (refused by its allowlist or not,
/// the files they match now) and of its runners' states.
pub async fn probe(
    State(state): State<AppState>,
    Json(body): Json<ProbeBody>,
) -> Result<Json<ProbeAnswer>, ApiError> {
    let answer = super::cpu_bound(move || {
        let mut answer = ProbeAnswer {
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..ProbeAnswer::default()
        };
        for config in body.check.iter().take(1000) {
            let name = config["name"].as_str().unwrap_or_default().to_string();
            match super::runners::parse_body(&state, &config.to_string()) {
                Err(err) => {
                    answer.refused.insert(name, err.to_string());
                }
                Ok(config) if config.reader.mode.reads_files() => {
                    let files = config
                        .pattern()
                        .ok()
                        .and_then(|pattern| {
                            crate::collect::tail::matching_files(
                                &pattern,
                                state.supervisor.allowlist(),
                                100,
                            )
                            .ok()
                        })
                        .unwrap_or_default();
                    answer.files.insert(
                        name,
                        files.iter().map(|p| p.display().to_string()).collect(),
                    );
                }
                Ok(_) => {}
            }
        }
        for name in body.states.iter().take(1000) {
            let runner_state = state
                .supervisor
                .status(name)
                .map(|(_, status)| status.state)
                .unwrap_or_else(|| "absent".into());
            answer.states.insert(name.clone(), runner_state);
        }
        answer
    })
    .await?;
    Ok(Json(answer))
}
