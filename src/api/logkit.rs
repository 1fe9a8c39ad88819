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
use axum::http::StatusCode;

use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::collect::parse::{LineContext, Parser, cut_line};
use crate::collect::{RunnerConfig, RunnerStatus};

/// Success with data: `{"code":"L200","data":...}`.
pub(super) fn ok(data: Value) -> Response {
    Json(json!({"code": "L200", "data": data})).into_response()
}

/// Success without data, as logkit answers writes: `{"code":"L200"}`.
pub(super) fn done() -> Response {
    Json(json!({"code": "L200"})).into_response()
}

/// An error in logkit's envelope: `{"code":"L1002","message":"..."}`. logkit answers 400 for
/// every per-node error and 503 when a cluster-wide change failed on a slave.
#[derive(Debug)]
pub(super) struct Lk {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Lk {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Lk {
        Lk {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// lograft's own error under a logkit code: the client's mistakes are 400 as in logkit;
    /// a store or node failure keeps its status (503 when the cluster has no leader, ...).
    pub fn from_api(code: &'static str, err: ApiError) -> Lk {
        let (status, _) = err.code();
        let message = match &err {
            ApiError::Internal(_) => "internal error; see the node's log".to_string(),
            other => other.to_string(),
        };
        let status = if status.is_client_error() {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        Lk {
            status,
            code,
            message,
        }
    }
}

impl IntoResponse for Lk {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

pub(super) fn answer(result: Result<Response, Lk>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// logkit names a runner by the path of its `.conf` file (in keys of `/logkit/configs` and
/// in messages). lograft keeps configs in its replicated store, not in files; the same name
/// under the data dir stands for them.
pub(super) fn conf_path(state: &AppState, name: &str) -> String {
    format!(
        "{}/.logkitconfs/{name}.conf",
        state.config.data_dir.display()
    )
}

/// This node's tag and URL, as its logkit status reports them.
fn own_tag_and_url(state: &AppState) -> (String, String) {
    let tag = state
        .membership
        .nodes()
        .ok()
        .and_then(|nodes| {
            nodes
                .into_iter()
                .find(|n| n.name == state.membership.name())
                .map(|n| n.tag)
        })
        .unwrap_or_else(|| state.config.cluster.tag.clone());
    (tag, state.membership.url().to_string())
}

/// The sender names of a config, as logkit keys `senderStats` (a sender's `name`, else its type).
fn sender_names(config: &RunnerConfig) -> Vec<String> {
    if config.senders.is_empty() {
        return vec!["local".into()];
    }
    config
        .senders
        .iter()
        .map(|s| {
            s.options
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&s.sender_type)
                .to_string()
        })
        .collect()
}

fn stats(errors: u64, success: u64, speed: u64, trend: &str) -> Value {
    json!({"errors": errors, "success": success, "speed": speed, "trend": trend, "last_error": ""})
}

/// A runner's status in logkit's shape: the same fields and JSON types as logkit 1.5.6
/// (`readspeed` is an int: logkit's own clients decode it as one). A stopped runner is
/// reported as logkit reports one: zeros and empty strings beside its name. lograft adds
/// `state` (running, blocked, refused, ...) and `error` (why it is not running), which
/// logkit's clients ignore.
fn logkit_status(config: &RunnerConfig, status: &RunnerStatus, tag: &str, url: &str) -> Value {
    let running = matches!(
        status.state.as_str(),
        "running" | "listening" | "limited" | "blocked"
    );
    let history = errors_of(status);
    if !running {
        return json!({
            "name": config.name, "logpath": "", "readDataSize": 0, "readDataCount": 0,
            "elaspedtime": 0, "lag": {"size": 0, "sizeunit": "", "ftlags": 0, "total": 0},
            "readerStats": stats(0, 0, 0, ""), "parserStats": stats(0, 0, 0, ""),
            "senderStats": {}, "transformStats": {}, "readspeed_kb": 0, "readspeed": 0,
            "readspeedtrend_kb": "", "readspeedtrend": "", "runningStatus": "stopped",
            "tag": tag, "url": url, "history_errors": history,
            "state": status.state, "error": status.error,
        });
    }
    // Averages since the runner (re)started.
    let elapsed =
        ((chrono::Utc::now().timestamp_millis() - status.started_unix_ms).max(1)) as f64 / 1000.0;
    let speed = (status.lines_read as f64 / elapsed) as u64;
    let speed_kb = (status.bytes_read as f64 / 1024.0 / elapsed) as u64;
    let trend = if speed > 0 { "up" } else { "stable" };
    let sent = status.lines_read.saturating_sub(status.lines_filtered);
    let senders: Map<String, Value> = sender_names(config)
        .into_iter()
        .map(|name| (name, stats(0, sent, speed, trend)))
        .collect();
    let transforms: Map<String, Value> = config
        .transforms
        .iter()
        .map(|t| {
            let kind = serde_json::to_value(t)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_string))
                .unwrap_or_default();
            (kind, stats(0, sent, speed, trend))
        })
        .collect();
    json!({
        "name": config.name,
        "logpath": config.reader.log_path,
        "readDataSize": status.bytes_read,
        "readDataCount": status.lines_read,
        "elaspedtime": elapsed,
        "lag": {"size": status.lag_bytes, "sizeunit": "bytes", "ftlags": 0, "total": status.lag_bytes},
        "readerStats": stats(status.problems.len() as u64, status.lines_read, speed, trend),
        "parserStats": stats(status.parse_errors, status.lines_read.saturating_sub(status.parse_errors), speed, trend),
        "senderStats": senders,
        "transformStats": transforms,
        "readspeed_kb": speed_kb,
        "readspeed": speed,
        "readspeedtrend_kb": trend,
        "readspeedtrend": trend,
        "runningStatus": "running",
        "tag": tag,
        "url": url,
        "history_errors": history,
        "state": status.state,
        "error": status.error,
    })
}

/// What logkit fills in when it reads a config back (its defaults).
fn logkit_defaults() -> [(&'static str, Value); 12] {
    [
        ("errors_list_cap", json!(0)),
        ("createtime", json!("")),
        ("extra_info", json!(false)),
        ("log_audit", json!(false)),
        ("send_raw", json!(false)),
        ("read_time", json!(false)),
        ("internal_key_prefix", json!("")),
        ("max_line_len", json!(0)),
        ("is_block", json!(false)),
        ("meta_dir", json!("")),
        (
            "router",
            json!({"router_key_name": "", "router_match_type": "", "router_default_sender": 0, "router_routes": {}}),
        ),
        ("web_folder", json!(true)),
    ]
}

/// A config read back and written again (logkit's UI and scripts do) stores what was written,
/// not the read-back's bookkeeping: logkit's defaults and `runner_name`s are dropped, the
/// desired state is the API's.
fn strip_read_back(object: &mut Map<String, Value>, name: &str) {
    for (key, default) in logkit_defaults() {
        if object.get(key) == Some(&default) {
            object.remove(key);
        }
    }
    object.remove("createtime");
    object.remove("is_stopped");
    if let Some(reader) = object.get_mut("reader").and_then(Value::as_object_mut) {
        reader.remove("runner_name");
        if reader.get("name").and_then(Value::as_str) == Some(name) {
            reader.remove("name");
        }
    }
    if let Some(parser) = object.get_mut("parser").and_then(Value::as_object_mut) {
        parser.remove("runner_name");
    }
    for sender in object
        .get_mut("senders")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(sender) = sender.as_object_mut() {
            sender.remove("runner_name");
        }
    }
}

/// A stored config as logkit reads one back: logkit's defaults filled in, `runner_name` in
/// the reader, parser and senders, `is_stopped` on a stopped runner; lograft's own
/// bookkeeping (`stopped`, `reset_epoch`) left out; secrets masked.
pub(super) fn logkit_view(config: &RunnerConfig) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    mask_secrets(&mut value);
    let Some(object) = value.as_object_mut() else {
        return value;
    };
    object.remove("stopped");
    object.remove("reset_epoch");
    let name = Value::String(config.name.clone());
    for (key, default) in logkit_defaults() {
        object.entry(key).or_insert(default);
    }
    if config.stopped {
        object.insert("is_stopped".into(), Value::Bool(true));
    }
    if let Some(reader) = object.get_mut("reader").and_then(Value::as_object_mut) {
        reader.entry("name").or_insert(name.clone());
        reader.insert("runner_name".into(), name.clone());
    }
    let parser = object
        .entry("parser")
        .or_insert_with(|| json!({"type": "raw"}));
    if let Some(parser) = parser.as_object_mut() {
        parser.insert("runner_name".into(), name.clone());
    }
    let senders = object
        .entry("senders")
        .or_insert_with(|| json!([{"sender_type": "local"}]));
    for sender in senders.as_array_mut().into_iter().flatten() {
        if let Some(sender) = sender.as_object_mut() {
            sender.insert("runner_name".into(), name.clone());
        }
    }
    value
}

fn stored(state: &AppState, name: &str) -> Result<Option<(RunnerConfig, u64)>, ApiError> {
    let Some(entry) = state.store.get(&state.supervisor.key(name))? else {
        return Ok(None);
    };
    let config =
        serde_json::from_str(&entry.value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Some((config, entry.mod_revision)))
}

pub async fn version() -> Response {
    ok(json!({"version": format!("lograft {}", env!("CARGO_PKG_VERSION"))}))
}

pub async fn runners(State(state): State<AppState>) -> Response {
    answer((|| {
        let prefix = state.supervisor.prefix();
        let names: Vec<Value> = state
            .store
            .list(prefix)
            .map_err(|e| Lk::from_api("L1001", e.into()))?
            .into_iter()
            .map(|e| Value::String(e.key[prefix.len()..].to_string()))
            .collect();
        Ok(ok(Value::Array(names)))
    })())
}

pub async fn status_all(State(state): State<AppState>) -> Response {
    ok(status_map(&state))
}

/// This node's runners in logkit's status shape, by name.
pub(super) fn status_map(state: &AppState) -> Value {
    let (tag, url) = own_tag_and_url(state);
    let map: Map<String, Value> = state
        .supervisor
        .statuses()
        .iter()
        .map(|(config, status)| {
            (
                config.name.clone(),
                logkit_status(config, status, &tag, &url),
            )
        })
        .collect();
    Value::Object(map)
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
        None => Lk::bad("L1008", "runner does not exist").into_response(),
    }
}

/// logkit's error history: `null` for a kind without errors, else a list of
/// `{"error","unix_nano_time"}`.
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
    let parse = (status.parse_errors > 0).then(|| {
        json!([{"error": format!("{} lines could not be parsed (kept as raw text)", status.parse_errors), "unix_nano_time": now}])
    });
    json!({
        "read_errors": if read.is_empty() { Value::Null } else { Value::Array(read) },
        "parse_errors": parse.unwrap_or(Value::Null),
        "transform_errors": Value::Null,
        "send_errors": Value::Null,
    })
}

/// This node's configs in logkit's shape, keyed by [`conf_path`].
pub(super) fn config_map(state: &AppState) -> Result<Value, ApiError> {
    let mut map = Map::new();
    for entry in state.store.list(state.supervisor.prefix())? {
        let Ok(config) = serde_json::from_str::<RunnerConfig>(&entry.value) else {
            continue;
        };
        map.insert(conf_path(state, &config.name), logkit_view(&config));
    }
    Ok(Value::Object(map))
}

pub async fn configs(State(state): State<AppState>) -> Response {
    match config_map(&state) {
        Ok(map) => ok(map),
        Err(err) => Lk::from_api("L1001", err).into_response(),
    }
}

/// Node to node: this node's configs as [`configs`] answers them.
pub async fn internal_configs(State(state): State<AppState>) -> Response {
    match config_map(&state) {
        Ok(map) => Json(map).into_response(),
        Err(err) => err.into_response(),
    }
}

pub async fn config(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    answer(match stored(&state, &name) {
        Ok(Some((config, _))) => Ok(ok(logkit_view(&config))),
        Ok(None) => Err(Lk::bad("L1001", format!("config {name} is not found"))),
        Err(err) => Err(Lk::from_api("L1001", err)),
    })
}

/// A runner config body as logkit takes it: the name from the path; `senders: []` refused.
pub(super) fn logkit_body(body: &str, name: &str) -> Result<Value, String> {
    let mut value: Value =
        serde_json::from_str(body).map_err(|err| format!("invalid runner config: {err}"))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "invalid runner config: expected a JSON object".to_string())?;
    object.insert("name".into(), Value::String(name.to_string()));
    strip_read_back(object, name);
    // Without `senders`, lograft's default (the local index); an empty list is refused, as
    // logkit refuses it.
    let no_senders = object
        .get("senders")
        .is_some_and(|s| s.as_array().is_some_and(Vec::is_empty) || s.is_null());
    if no_senders {
        return Err(format!(
            "forkRunner {name} error NewRunner({name}) failed: senders can not be nil"
        ));
    }
    Ok(value)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let result = async {
        let value = logkit_body(&body, &name).map_err(|m| Lk::bad("L1002", m))?;
        let config = parse_runner(&state, value.to_string())
            .await
            .map_err(|e| Lk::from_api("L1002", e))?;
        let json = serde_json::to_string(&config).expect("config serializes");
        state
            .store
            .put(&state.supervisor.key(&name), json, Some(0))
            .await
            .map_err(|err| match err {
                crate::cluster::StoreError::Conflict { .. } => {
                    Lk::bad("L1002", format!("file {name} runner is running"))
                }
                other => Lk::from_api("L1002", other.into()),
            })?;
        state
            .audit
            .record(&principal.name, "runner.create", &name, "ok", None)
            .await;
        Ok(done())
    };
    answer(result.await)
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: String,
) -> Response {
    let result = async {
        let (old, revision) = stored(&state, &name)
            .map_err(|e| Lk::from_api("L1007", e))?
            .ok_or_else(|| Lk::bad("L1007", format!("runner {name} not found")))?;
        let mut new = logkit_body(&body, &name).map_err(|m| Lk::bad("L1007", m))?;
        keep_masked_secrets(&mut new, &serde_json::to_value(&old).unwrap_or_default());
        let mut config = parse_runner(&state, new.to_string())
            .await
            .map_err(|e| Lk::from_api("L1007", e))?;
        config.carry_state_from(&old, &new);
        let json = serde_json::to_string(&config).expect("config serializes");
        state
            .store
            .put(&state.supervisor.key(&name), json, Some(revision))
            .await
            .map_err(|e| Lk::from_api("L1007", e.into()))?;
        state
            .audit
            .record(&principal.name, "runner.replace", &name, "ok", None)
            .await;
        Ok(done())
    };
    answer(result.await)
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let result = async {
        match state
            .store
            .delete(&state.supervisor.key(&name))
            .await
            .map_err(|e| Lk::from_api("L1003", e.into()))?
        {
            Some(_) => {
                state
                    .audit
                    .record(&principal.name, "runner.delete", &name, "ok", None)
                    .await;
                Ok(done())
            }
            None => Err(Lk::bad("L1003", format!("runner {name} not found"))),
        }
    };
    answer(result.await)
}

/// `start`, `stop` and `reset`: a change of the stored desired state. Starting a started
/// runner or stopping a stopped one fails, as in logkit.
async fn set_state(
    state: &AppState,
    principal: &Principal,
    name: &str,
    action: &str,
) -> Result<Response, Lk> {
    let code = match action {
        "start" => "L1004",
        "stop" => "L1005",
        _ => "L1006",
    };
    let (mut config, revision) = stored(state, name)
        .map_err(|e| Lk::from_api(code, e))?
        .ok_or_else(|| Lk::bad(code, format!("runner {name} not found")))?;
    match action {
        "start" if !config.stopped => {
            return Err(Lk::bad(
                code,
                format!("runner {} has already started", conf_path(state, name)),
            ));
        }
        "stop" if config.stopped => {
            return Err(Lk::bad(
                code,
                format!("runner {} has already stopped", conf_path(state, name)),
            ));
        }
        "start" => config.stopped = false,
        "stop" => config.stopped = true,
        _ => config.reset_epoch += 1,
    }
    let json = serde_json::to_string(&config).expect("config serializes");
    state
        .store
        .put(&state.supervisor.key(name), json, Some(revision))
        .await
        .map_err(|e| Lk::from_api(code, e.into()))?;
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
    Ok(done())
}

pub async fn start(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    answer(set_state(&state, &p, &name, "start").await)
}

pub async fn stop(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    answer(set_state(&state, &p, &name, "stop").await)
}

pub async fn reset(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    answer(set_state(&state, &p, &name, "reset").await)
}

/// Sample lines are cut here (or at `collect.max_line_bytes` if smaller): a preview needs no
/// more, and a regex with many groups costs about a second per 64 KiB of line in the worst
/// case (measured: 128 `(.*)` groups on a 1 MiB line took 20 s).
const PREVIEW_LINE_BYTES: usize = 64 * 1024;

/// `POST /logkit/parser/parse`: `{"sampleLog": "...", "type": "nginx", ...}` → logkit's flat
/// `SamplePoints` (the parsed fields; `raw` parses the whole sample as one record, as logkit
/// does). A line the parser cannot parse is a 400 L1201 naming the line. The parser is
/// compiled and the sample parsed off the async workers ([`super::cpu_bound`]); lines are cut
/// at `collect.max_line_bytes` as on ingest, and parsing stops at the request timeout, so a
/// hostile sample ends with that request.
pub async fn parse(State(state): State<AppState>, body: String) -> Response {
    let max_line_bytes = (state.config.collect.max_line_bytes as usize).min(PREVIEW_LINE_BYTES);
    let deadline = Instant::now() + state.config.api.request_timeout;
    let result = super::cpu_bound(move || parse_sample(&body, max_line_bytes, deadline)).await;
    answer(match result {
        Ok(Ok(points)) => Ok(ok(json!({"SamplePoints": points}))),
        Ok(Err(message)) => Err(Lk::bad("L1201", message)),
        Err(err) => Err(Lk::from_api("L1201", err)),
    })
}

/// The parser config of a check or preview body; an unknown `type` is named as logkit names it.
fn parser_config(value: Value) -> Result<crate::collect::config::ParserConfig, String> {
    let kind = value.get("type").and_then(Value::as_str).unwrap_or("raw");
    let known = serde_json::from_value::<crate::collect::config::ParserType>(Value::String(
        kind.to_string(),
    ))
    .is_ok();
    if !known {
        return Err(format!("parser type unsupported: {kind}"));
    }
    serde_json::from_value(value).map_err(|err| format!("invalid parser config: {err}"))
}

/// A preview's parser and its lines, each with its record.
type Parsed = (
    crate::collect::config::ParserConfig,
    Vec<(Vec<u8>, crate::record::Record)>,
);

/// The parser a preview body names, and each sample line parsed by it (the whole sample as one
/// line when `whole_for_raw` and the parser is `raw`, as logkit's preview does). Lines are cut
/// at `max_line_bytes`; parsing stops at `deadline`.
fn parse_lines(
    body: &str,
    max_line_bytes: usize,
    deadline: Instant,
    whole_for_raw: bool,
) -> Result<Parsed, String> {
    let mut value: Value =
        serde_json::from_str(body).map_err(|err| format!("invalid request body: {err}"))?;
    let sample = value
        .as_object_mut()
        .and_then(|o| o.remove("sampleLog"))
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| "sampleLog is required (the text to parse)".to_string())?;
    let config = parser_config(value).map_err(|e| format!("parser error {e}"))?;
    let parser = Parser::new(&config)?;
    let whole = whole_for_raw && config.parser_type == crate::collect::config::ParserType::Raw;
    let lines: Vec<&str> = if whole {
        vec![sample.as_str()]
    } else {
        sample.lines().filter(|line| !line.is_empty()).collect()
    };
    let mut parsed = Vec::new();
    for line in lines {
        if Instant::now() > deadline {
            return Err(
                "parsing the sample took longer than api.request_timeout; send fewer or shorter lines"
                    .into(),
            );
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
        parsed.push((line.to_vec(), record));
    }
    Ok((config, parsed))
}

/// logkit's `SamplePoints`: flat records; a line that does not parse is an error.
fn parse_sample(
    body: &str,
    max_line_bytes: usize,
    deadline: Instant,
) -> Result<Vec<Value>, String> {
    let (config, parsed) = parse_lines(body, max_line_bytes, deadline, true)?;
    let mut points = Vec::new();
    for (number, (line, record)) in parsed.into_iter().enumerate() {
        if record.parse_error {
            return Err(format!(
                "line {} of the sample is not {:?}: {}",
                number + 1,
                config.parser_type,
                clip(&String::from_utf8_lossy(&line))
            ));
        }
        let point = match config.parser_type {
            crate::collect::config::ParserType::Raw => json!({
                "raw": String::from_utf8_lossy(&line),
                "timestamp": crate::search::format_micros(record.ts),
            }),
            // The object as written, with what lograft lifted out of it put back.
            crate::collect::config::ParserType::Json => serde_json::from_slice(&line)
                .unwrap_or_else(|_| Value::Object(crate::collect::sender::point(&record))),
            _ => Value::Object(crate::collect::sender::point(&record)),
        };
        points.push(point);
    }
    Ok(points)
}

/// `POST /api/v1/parse`: lograft's own preview for the runner editor's "try it": each line as
/// the runner would index it (`ts`, `level`, `message`, `fields`), a line the parser cannot
/// parse kept raw and marked `parse_error`, as on ingest. Same limits as [`parse`].
pub async fn preview(State(state): State<AppState>, body: String) -> Response {
    let max_line_bytes = (state.config.collect.max_line_bytes as usize).min(PREVIEW_LINE_BYTES);
    let deadline = Instant::now() + state.config.api.request_timeout;
    let result = super::cpu_bound(move || preview_records(&body, max_line_bytes, deadline)).await;
    match result.and_then(|r| r) {
        Ok(records) => Json(json!({"records": records})).into_response(),
        Err(err) => err.into_response(),
    }
}

fn preview_records(
    body: &str,
    max_line_bytes: usize,
    deadline: Instant,
) -> Result<Vec<Value>, ApiError> {
    let (_, parsed) =
        parse_lines(body, max_line_bytes, deadline, false).map_err(ApiError::BadRequest)?;
    Ok(parsed
        .into_iter()
        .map(|(_, record)| {
            json!({"ts": crate::search::format_micros(record.ts), "level": record.level,
                   "message": record.message, "fields": record.fields,
                   "parse_error": record.parse_error, "truncated": record.truncated})
        })
        .collect())
}

/// A body for a check: a JSON object, or logkit's error code with the parse error.
fn object_body(body: &str, code: &'static str) -> Result<Value, Lk> {
    let value: Value = serde_json::from_str(body)
        .map_err(|err| Lk::bad(code, format!("invalid request body: {err}")))?;
    if !value.is_object() {
        return Err(Lk::bad(
            code,
            "invalid request body: expected a JSON object",
        ));
    }
    Ok(value)
}

/// `POST /logkit/parser/check`: a parser config (or a whole runner config) is valid.
pub async fn parser_check(State(state): State<AppState>, body: String) -> Response {
    let result = async {
        let value = object_body(&body, "L1201")?;
        let parser = value.get("parser").cloned().unwrap_or(value);
        let config = parser_config(parser).map_err(|m| Lk::bad("L1201", m))?;
        let runner = json!({"name": "check", "reader": {"mode": "http"}, "parser": config});
        parse_runner(&state, runner.to_string())
            .await
            .map_err(|e| Lk::from_api("L1201", e))?;
        Ok(done())
    };
    answer(result.await)
}

/// The reader part of a body (`{"mode": ...}` alone or inside a runner config).
fn reader_of(value: Value) -> Result<Value, Lk> {
    let reader = value.get("reader").cloned().unwrap_or(value);
    let mode = reader.get("mode").and_then(Value::as_str).unwrap_or("");
    let known = serde_json::from_value::<crate::collect::config::ReaderMode>(Value::String(
        mode.to_string(),
    ))
    .is_ok();
    if !known {
        return Err(Lk::bad(
            "L1101",
            format!("reader type unsupported : {mode}"),
        ));
    }
    Ok(reader)
}

/// `POST /logkit/reader/check`: a reader config is valid here (allowlist included).
pub async fn reader_check(State(state): State<AppState>, body: String) -> Response {
    let result = async {
        let reader = reader_of(object_body(&body, "L1101")?)?;
        let runner = json!({"name": "check", "reader": reader});
        parse_runner(&state, runner.to_string())
            .await
            .map_err(|e| Lk::from_api("L1101", e))?;
        Ok(done())
    };
    answer(result.await)
}

/// Lines and bytes `reader/read` returns at most.
const READ_SAMPLE_LINES: usize = 100;
const READ_SAMPLE_BYTES: u64 = 64 * 1024;

/// `POST /logkit/reader/read`: the first lines of the first file a reader config matches, for
/// the UI's preview (with their newlines, as logkit returns them). The file is checked
/// against the allowlist when opened, as a runner's files are.
pub async fn reader_read(State(state): State<AppState>, body: String) -> Response {
    let result = async {
        let reader = reader_of(object_body(&body, "L1101")?)?;
        let runner = json!({"name": "read", "reader": reader});
        let config = parse_runner(&state, runner.to_string())
            .await
            .map_err(|e| Lk::from_api("L1101", e))?;
        let allowlist = state.supervisor.allowlist().clone();
        let lines = tokio::task::spawn_blocking(move || first_lines(&config, &allowlist))
            .await
            .map_err(|e| Lk::from_api("L1101", ApiError::Internal(e.to_string())))?
            .map_err(|m| Lk::bad("L1101", m))?;
        Ok(ok(json!(lines)))
    };
    answer(result.await)
}

fn first_lines(
    config: &RunnerConfig,
    allowlist: &crate::collect::Allowlist,
) -> Result<Vec<String>, String> {
    use std::io::{BufRead, Read};
    let pattern = config.pattern()?;
    let files =
        crate::collect::tail::matching_files(&pattern, allowlist, 1).map_err(|e| e.to_string())?;
    let path = files
        .first()
        .ok_or_else(|| format!("no file matches {pattern}"))?;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let opened = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ))
    .unwrap_or_else(|_| path.clone());
    let md = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    allowlist.allows_opened(&opened, &md)?;
    let mut lines = Vec::new();
    let mut reader = std::io::BufReader::new(file.take(READ_SAMPLE_BYTES));
    let mut line = Vec::new();
    while lines.len() < READ_SAMPLE_LINES {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?
            == 0
        {
            break;
        }
        lines.push(String::from_utf8_lossy(&line).into_owned());
    }
    Ok(lines)
}

/// A line quoted in a message: at most 120 characters.
fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(120).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}
