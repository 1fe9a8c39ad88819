//! Network inputs: `POST /api/v1/ingest/<runner>` (plain or JSON lines) and the
//! Elasticsearch-compatible `POST /_bulk` and `POST /<index>/_bulk`, so Filebeat, Vector,
//! Fluent Bit and the official Elasticsearch clients can ship to lograft unchanged.
//!
//! Each goes to a runner of `reader.mode` `http` or `bulk` (for `_bulk`, the runner named like
//! the index), parsed and transformed by that runner's config. A request is answered only
//! after its records are durable in the queue. When the queue is full the answer is 429, which
//! shippers retry: nothing accepted is lost, nothing is silently dropped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::collect::config::ReaderMode;
use crate::collect::parse::{LineContext, Parser};
use crate::collect::transform::Transforms;
use crate::collect::{RunnerConfig, RunnerStatus};
use crate::record::Record;

/// How long a request waits for room in a full queue before answering 429.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

struct Target {
    config: RunnerConfig,
    status: Arc<Mutex<RunnerStatus>>,
    parser: Parser,
    transforms: Transforms,
}

fn target(state: &AppState, name: &str, mode: ReaderMode) -> Option<Target> {
    let (config, status) = state.supervisor.target(name)?;
    if config.reader.mode != mode {
        return None;
    }
    let parser = Parser::new(&config.parser).ok()?;
    let transforms = Transforms::new(&config.transforms).ok()?;
    Some(Target {
        config,
        status,
        parser,
        transforms,
    })
}

impl Target {
    fn record(&self, line: &[u8]) -> (Option<Record>, bool) {
        let record = self.parser.parse(
            line,
            &LineContext {
                runner: &self.config.name,
                path: "",
                offset: 0,
                truncated: false,
                stream: "",
            },
        );
        let parse_error = record.parse_error;
        (self.transforms.apply(record), parse_error)
    }
}

/// Append durably, waiting a little for room; counts in the runner's status.
async fn append(
    state: &AppState,
    target: &Target,
    records: Vec<Record>,
    lines: u64,
    bytes: u64,
    parse_errors: u64,
) -> Result<(), ApiError> {
    let queue = state.queue.clone();
    let accepted = records.len() as u64;
    tokio::task::spawn_blocking(move || {
        if !queue.wait_for_room(QUEUE_WAIT) {
            return Err(ApiError::TooManyRequests(
                "the queue is full; retry later".into(),
            ));
        }
        queue
            .append(records, Vec::new())
            .map_err(|err| ApiError::Internal(err.to_string()))
    })
    .await??;
    let mut status = target.status.lock().expect("status lock");
    status.lines_read += lines;
    status.bytes_read += bytes;
    status.parse_errors += parse_errors;
    status.lines_filtered += lines - accepted;
    Ok(())
}

/// `POST /api/v1/ingest/<runner>`: one record per line of the body.
pub async fn lines(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = target(&state, &name, ReaderMode::Http).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no runner {name:?} with reader.mode \"http\" on this node"
        ))
    })?;
    let mut records = Vec::new();
    let mut lines = 0u64;
    let mut parse_errors = 0u64;
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        lines += 1;
        let (record, parse_error) = target.record(line);
        parse_errors += u64::from(parse_error);
        records.extend(record);
    }
    let accepted = records.len();
    append(
        &state,
        &target,
        records,
        lines,
        body.len() as u64,
        parse_errors,
    )
    .await?;
    Ok(
        axum::Json(json!({"accepted": accepted, "lines": lines, "parse_errors": parse_errors}))
            .into_response(),
    )
}

/// One bulk item: action, index, id, and the record to append or the error to report.
type BulkItem = (
    String,
    String,
    String,
    Result<Option<Record>, (u16, &'static str, String)>,
);

fn elastic(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

fn bulk_error(status: StatusCode, kind: &str, reason: String) -> Response {
    elastic(
        status,
        json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()}),
    )
}

/// `POST /_bulk` and `POST /<index>/_bulk`: Elasticsearch's bulk API, per-item results.
pub async fn bulk(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let default_index = index.map(|Path(index)| index);
    if !body.is_empty() && !body.ends_with(b"\n") {
        return bulk_error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]".into(),
        );
    }
    let mut lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    // Per item: (action, index, id, Ok(record) | Err((status, type, reason))).
    let mut items: Vec<BulkItem> = Vec::new();
    let mut doc_bytes: std::collections::HashMap<String, u64> = Default::default();
    let mut targets: std::collections::HashMap<String, Option<Target>> = Default::default();
    while let Some(action_line) = lines.next() {
        let action: Value = match serde_json::from_slice(action_line) {
            Ok(action) => action,
            Err(err) => {
                return bulk_error(
                    StatusCode::BAD_REQUEST,
                    "x_content_parse_exception",
                    format!("malformed action line: {err}"),
                );
            }
        };
        let Some((kind, meta)) = action.as_object().and_then(|o| o.iter().next()) else {
            return bulk_error(
                StatusCode::BAD_REQUEST,
                "illegal_argument_exception",
                "empty action line".into(),
            );
        };
        let kind = kind.clone();
        let index = meta["_index"]
            .as_str()
            .map(str::to_string)
            .or_else(|| default_index.clone())
            .unwrap_or_default();
        let id = meta["_id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:x}", rand_id()));
        let outcome = match kind.as_str() {
            "index" | "create" => {
                let Some(doc) = lines.next() else {
                    return bulk_error(
                        StatusCode::BAD_REQUEST,
                        "illegal_argument_exception",
                        format!("{kind} action without a document"),
                    );
                };
                *doc_bytes.entry(index.clone()).or_default() += doc.len() as u64 + 1;
                let target = targets
                    .entry(index.clone())
                    .or_insert_with(|| target(&state, &index, ReaderMode::Bulk));
                match target {
                    None => Err((
                        404,
                        "index_not_found_exception",
                        format!(
                            "no such index [{index}] (no runner with reader.mode \"bulk\" of that name)"
                        ),
                    )),
                    Some(target) => {
                        let (record, _) = target.record(doc);
                        Ok(record)
                    }
                }
            }
            "update" => {
                lines.next();
                Err((
                    400,
                    "action_request_validation_exception",
                    "lograft is append-only: update is not supported".into(),
                ))
            }
            "delete" => Err((
                400,
                "action_request_validation_exception",
                "lograft is append-only: delete is not supported".into(),
            )),
            other => {
                return bulk_error(
                    StatusCode::BAD_REQUEST,
                    "illegal_argument_exception",
                    format!("unknown bulk action [{other}]"),
                );
            }
        };
        items.push((kind, index, id, outcome));
    }
    // Append per target runner, durably, before answering.
    let mut by_index: std::collections::HashMap<String, Vec<Record>> = Default::default();
    for (_, index, _, outcome) in &mut items {
        if let Ok(record) = outcome
            && let Some(record) = record.take()
        {
            by_index.entry(index.clone()).or_default().push(record);
        }
    }
    for (index, records) in by_index {
        let Some(Some(target)) = targets.get(&index) else {
            continue;
        };
        let count = records.len() as u64;
        let bytes = doc_bytes.get(&index).copied().unwrap_or(0);
        if let Err(err) = append(&state, target, records, count, bytes, 0).await {
            let status = match err {
                ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return bulk_error(status, "es_rejected_execution_exception", err.to_string());
        }
    }
    let mut errors = false;
    let items: Vec<Value> = items
        .into_iter()
        .map(|(kind, index, id, outcome)| {
            let body = match outcome {
                Ok(_) => json!({"_index": index, "_id": id, "_version": 1, "result": "created", "status": 201,
                                "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1}),
                Err((status, kind, reason)) => {
                    errors = true;
                    json!({"_index": index, "_id": id, "status": status, "error": {"type": kind, "reason": reason}})
                }
            };
            json!({ kind: body })
        })
        .collect();
    elastic(
        StatusCode::OK,
        json!({"took": started.elapsed().as_millis() as u64, "errors": errors, "items": items}),
    )
}

fn rand_id() -> u128 {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    u128::from_le_bytes(bytes)
}

/// `GET /` for Elasticsearch clients (they ask for JSON): the info document they check.
pub fn es_info(headers: &HeaderMap, node: &str) -> Option<Response> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    if !accept.contains("json") {
        return None;
    }
    Some(elastic(
        StatusCode::OK,
        json!({
            "name": node, "cluster_name": "lograft", "cluster_uuid": "lograft",
            "version": {"number": "8.11.0", "build_flavor": "default", "lucene_version": "9.8.0",
                        "minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
            "tagline": "You Know, for Search"
        }),
    ))
}
