//! logkit's per-node runner API, with logkit's envelope: `{"code":"L200","data":...}` on
//! success, `{"code":"<code>","message":"..."}` on errors. Changes go to the config store like
//! `/api/v1/runners`, so they survive restarts (and replicate once Raft is in).

use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::runners::{keep_masked_secrets, mask_secrets, parse_runner};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::collect::parse::{LineContext, Parser, cut_line};
use crate::collect::{RunnerConfig, RunnerStatus};

pub(super) fn ok(data: Value) -> Response {
    Json(json!({"code": "L200", "data": data})).into_response()
}

/// logkit-style errors: an `L<status>` code and a message.
pub(super) fn fail(err: ApiError) -> Response {
    let (status, _) = err.code();
    let message = match &err {
        ApiError::Internal(_) => "internal error; see the node's log".to_string(),
        other => other.to_string(),
    };
    (
        status,
        Json(json!({"code": format!("L{}", status.as_u16()), "message": message})),
    )
        .into_response()
}

pub(super) fn respond(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(data) => ok(data),
        Err(err) => fail(err),
    }
}

/// A runner's status in logkit's field names.
fn logkit_status(config: &RunnerConfig, status: &RunnerStatus) -> Value {
    let running = matches!(
        status.state.as_str(),
        "running" | "listening" | "limited" | "blocked"
    );
    let lagging_files = status.files.iter().filter(|f| f.offset < f.size).count();
    // Averages since the runner (re)started.
    let elapsed =
        ((chrono::Utc::now().timestamp_millis() - status.started_unix_ms).max(1)) as f64 / 1000.0;
    json!({
        "name": config.name,
        "runningStatus": if running { "running" } else { "stopped" },
        "state": status.state,
        "logpath": config.reader.log_path,
        "readDataSize": status.bytes_read,
        "readDataCount": status.lines_read,
        "elaspedtime": elapsed,
        "readspeed": status.lines_read as f64 / elapsed,
        "readspeed_kb": status.bytes_read as f64 / 1024.0 / elapsed,
        "lag": {"size": status.lag_bytes, "files": lagging_files, "ftlags": 0},
        "parserStats": {
            "errors": status.parse_errors,
            "success": status.lines_read.saturating_sub(status.parse_errors),
            "last_error": "",
        },
        "senderStats": {"local": {
            "errors": 0,
            "success": status.lines_read.saturating_sub(status.lines_filtered),
        }},
        "error": status.error,
    })
}

fn stored(state: &AppState, name: &str) -> Result<(RunnerConfig, u64), ApiError> {
    let entry = state
        .store
        .get(&state.supervisor.key(name))?
        .ok_or_else(|| ApiError::NotFound(format!("runner {name:?} does not exist")))?;
    let config =
        serde_json::from_str(&entry.value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((config, entry.mod_revision))
}

pub async fn version() -> Response {
    ok(json!({"version": format!("lograft {}", env!("CARGO_PKG_VERSION"))}))
}

pub async fn runners(State(state): State<AppState>) -> Response {
    respond((|| {
        let names: Vec<Value> = state
            .store
            .list(state.supervisor.prefix())?
            .into_iter()
            .map(|e| Value::String(e.key[state.supervisor.prefix().len()..].to_string()))
            .collect();
        Ok(Value::Array(names))
    })())
}

pub async fn status_all(State(state): State<AppState>) -> Response {
    ok(status_map(&state))
}

/// This node's runners in logkit's status shape, by name.
pub(super) fn status_map(state: &AppState) -> Value {
    let map: Map<String, Value> = state
        .supervisor
        .statuses()
        .iter()
        .map(|(config, status)| (config.name.clone(), logkit_status(config, status)))
        .collect();
    Value::Object(map)
}

pub async fn status_one(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.supervisor.status(&name) {
        Some((config, status)) => ok(logkit_status(&config, &status)),
        None => fail(ApiError::NotFound(format!(
            "runner {name:?} does not exist"
        ))),
    }
}

pub async fn errors_all(State(state): State<AppState>) -> Response {
    let map: Map<String, Value> = state
        .supervisor
        .statuses()
        .iter()
        .map(|(config, status)| (config.name.clone(), errors_of(status)))
        .collect();
    ok(Value::Object(map))
}

pub async fn errors_one(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.supervisor.status(&name) {
        Some((_, status)) => ok(errors_of(&status)),
        None => fail(ApiError::NotFound(format!(
            "runner {name:?} does not exist"
        ))),
    }
}

fn errors_of(status: &RunnerStatus) -> Value {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let mut read: Vec<Value> = status
        .problems
        .iter()
        .map(|p| json!({"error": p, "unix_nano_time": now}))
        .collect();
    if let Some(error) = &status.error {
        read.push(json!({"error": error, "unix_nano_time": now}));
    }
    json!({"read_errors": read, "parse_errors": {"count": status.parse_errors}, "send_errors": []})
}

pub async fn configs(State(state): State<AppState>) -> Response {
    respond((|| {
        let mut map = Map::new();
        for entry in state.store.list(state.supervisor.prefix())? {
            let mut config: Value = serde_json::from_str(&entry.value).unwrap_or(Value::Null);
            mask_secrets(&mut config);
            map.insert(
                entry.key[state.supervisor.prefix().len()..].to_string(),
                config,
            );
        }
        Ok(Value::Object(map))
    })())
}

pub async fn config(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    respond(stored(&state, &name).map(|(config, _)| {
        let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
        mask_secrets(&mut value);
        value
    }))
}

/// The body with `name` taken from the path (logkit sends it either way).
pub(super) fn body_with_name(body: &str, name: &str) -> Result<Value, ApiError> {
    let mut value: Value = serde_json::from_str(body)
        .map_err(|err| ApiError::BadRequest(format!("invalid runner config: {err}")))?;
    match value.as_object_mut() {
        Some(object) => {
            object.insert("name".into(), Value::String(name.to_string()));
            Ok(value)
        }
        None => Err(ApiError::BadRequest(
            "a runner config is a JSON object".into(),
        )),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let result = async {
        let config = parse_runner(&state, body_with_name(&body, &name)?.to_string()).await?;
        let json = serde_json::to_string(&config).expect("config serializes");
        state
            .store
            .put(&state.supervisor.key(&name), json, Some(0))
            .await
            .map_err(|err| match err {
                crate::cluster::StoreError::Conflict { .. } => {
                    ApiError::Conflict(format!("runner {name:?} already exists"))
                }
                other => other.into(),
            })?;
        state
            .audit
            .record(&principal.name, "runner.create", &name, "ok", None)
            .await;
        Ok(Value::Null)
    };
    respond(result.await)
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let result = async {
        let (old, revision) = stored(&state, &name)?;
        let mut new = body_with_name(&body, &name)?;
        keep_masked_secrets(&mut new, &serde_json::to_value(&old).unwrap_or_default());
        let mut config = parse_runner(&state, new.to_string()).await?;
        // A full replace keeps the desired state and reset epoch unless the body sets them.
        config.stopped = new.get("stopped").is_some_and(|v| v == true)
            || (new.get("stopped").is_none() && old.stopped);
        config.reset_epoch = config.reset_epoch.max(old.reset_epoch);
        let json = serde_json::to_string(&config).expect("config serializes");
        state
            .store
            .put(&state.supervisor.key(&name), json, Some(revision))
            .await?;
        state
            .audit
            .record(&principal.name, "runner.replace", &name, "ok", None)
            .await;
        Ok(Value::Null)
    };
    respond(result.await)
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let result = async {
        match state.store.delete(&state.supervisor.key(&name)).await? {
            Some(_) => {
                state
                    .audit
                    .record(&principal.name, "runner.delete", &name, "ok", None)
                    .await;
                Ok(Value::Null)
            }
            None => Err(ApiError::NotFound(format!(
                "runner {name:?} does not exist"
            ))),
        }
    };
    respond(result.await)
}

/// `start`, `stop` and `reset`: a change of the stored desired state.
async fn set_state(
    state: &AppState,
    principal: &Principal,
    name: &str,
    action: &str,
) -> Result<Value, ApiError> {
    let (mut config, revision) = stored(state, name)?;
    match action {
        "start" => config.stopped = false,
        "stop" => config.stopped = true,
        _ => config.reset_epoch += 1,
    }
    let json = serde_json::to_string(&config).expect("config serializes");
    state
        .store
        .put(&state.supervisor.key(name), json, Some(revision))
        .await?;
    state
        .audit
        .record(
            &principal.name,
            &format!("runner.{action}"),
            name,
            "ok",
            None,
        )
        .await;
    Ok(Value::Null)
}

pub async fn start(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    respond(set_state(&state, &p, &name, "start").await)
}

pub async fn stop(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    respond(set_state(&state, &p, &name, "stop").await)
}

pub async fn reset(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    respond(set_state(&state, &p, &name, "reset").await)
}

/// Sample lines are cut here (or at `collect.max_line_bytes` if smaller): a preview needs no
/// more, and a regex with many groups costs about a second per 64 KiB of line in the worst
/// case (measured: 128 `(.*)` groups on a 1 MiB line took 20 s).
const PREVIEW_LINE_BYTES: usize = 64 * 1024;

/// `POST /logkit/parser/parse`: `{"sampleLog": "...", "type": "nginx", ...}` → parsed records.
/// The parser is compiled and the sample parsed off the async workers ([`super::cpu_bound`]);
/// lines are cut at `collect.max_line_bytes` as on ingest, and parsing stops at the request
/// timeout, so a hostile sample ends with that request.
pub async fn parse(State(state): State<AppState>, body: String) -> Response {
    let max_line_bytes = (state.config.collect.max_line_bytes as usize).min(PREVIEW_LINE_BYTES);
    let deadline = Instant::now() + state.config.api.request_timeout;
    let result = super::cpu_bound(move || parse_sample(&body, max_line_bytes, deadline)).await;
    respond(result.and_then(|parsed| parsed))
}

fn parse_sample(body: &str, max_line_bytes: usize, deadline: Instant) -> Result<Value, ApiError> {
    let mut value: Value = serde_json::from_str(body)
        .map_err(|err| ApiError::BadRequest(format!("invalid request body: {err}")))?;
    let sample = value
        .as_object_mut()
        .and_then(|o| o.remove("sampleLog"))
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| ApiError::BadRequest("sampleLog is required".into()))?;
    let config = serde_json::from_value(value)
        .map_err(|err| ApiError::BadRequest(format!("invalid parser config: {err}")))?;
    let parser = Parser::new(&config).map_err(ApiError::BadRequest)?;
    let mut records = Vec::new();
    for line in sample.lines().filter(|line| !line.is_empty()) {
        if Instant::now() > deadline {
            return Err(ApiError::BadRequest(
                "parsing the sample took longer than api.request_timeout; send fewer or shorter lines"
                    .into(),
            ));
        }
        let (line, truncated) = cut_line(line.as_bytes(), max_line_bytes);
        let context = LineContext {
            runner: "sample",
            path: "",
            offset: 0,
            truncated,
            stream: "",
        };
        let record = parser.parse(line, &context);
        records.push(json!({"ts": crate::search::format_micros(record.ts), "level": record.level, "message": record.message,
               "fields": record.fields, "parse_error": record.parse_error, "truncated": record.truncated}));
    }
    Ok(json!({"SamplePoints": records}))
}

pub async fn usages() -> Response {
    ok(json!([
        {"key": "raw", "value": "one record per line, as text"},
        {"key": "json", "value": "JSON objects: ts/time/@timestamp, level, msg/message; other keys become fields"},
        {"key": "logfmt", "value": "key=value pairs"},
        {"key": "regex", "value": "a regex whose named groups become fields (parser.regex)"},
        {"key": "nginx", "value": "nginx access logs: combined, or parser.nginx_log_format"},
        {"key": "apache", "value": "Apache combined access logs"},
        {"key": "syslog", "value": "syslog: RFC 3164, RFC 5424 and rsyslog's file formats"},
        {"key": "csv", "value": "CSV with parser.csv_schema (\"name type, ...\") and parser.csv_splitter"},
    ]))
}

/// `POST /logkit/reader/check` and `/logkit/parser/check`: validate a runner config's part.
pub async fn check(State(state): State<AppState>, body: String) -> Response {
    let result = async {
        let mut value: Value = serde_json::from_str(&body)
            .map_err(|err| ApiError::BadRequest(format!("invalid request body: {err}")))?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| ApiError::BadRequest("expected a JSON object".into()))?;
        // Either a whole runner config, or only its reader or parser part.
        if !object.contains_key("reader") && object.contains_key("mode") {
            value = json!({"name": "check", "reader": value});
        } else if !object.contains_key("reader") && object.contains_key("type") {
            value = json!({"name": "check", "reader": {"mode": "http"}, "parser": value});
        } else if !object.contains_key("name") {
            object.insert("name".into(), Value::String("check".into()));
        }
        parse_runner(&state, value.to_string()).await?;
        Ok(Value::Null)
    };
    respond(result.await)
}
