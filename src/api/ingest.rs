//! Network inputs: `POST /api/v1/ingest/<runner>` (plain or JSON lines) and the
//! Elasticsearch-compatible `POST /_bulk` and `POST /<index>/_bulk`, so Filebeat, Vector,
//! Fluent Bit and the official Elasticsearch clients can ship to lograft unchanged.
//!
//! Each goes to a runner of `reader.mode` `http` or `bulk` (for `_bulk`, the runner named like
//! the index), parsed and transformed by that runner's config. A request is answered only
//! after its records are durable in the queue. When the queue is full the answer is 429, which
//! shippers retry: nothing accepted is lost, nothing is silently dropped.
//!
//! Bodies are streamed, never held whole (see: attack review item 13, a 60 MB `_bulk` raised
//! RSS by 1.1 GB): the async handler only forwards the body's chunks to one blocking thread
//! per request ([`read_lines`]), which cuts lines at `collect.max_line_bytes` (flagged
//! `truncated`, counted as dropped `line_truncated`, like the file tailer), parses them and
//! appends them to the queue in batches of [`BATCH_RECORDS`] records or [`BATCH_BYTES`] bytes.
//! Memory per request is one batch plus a few bytes per bulk item for the answer.
//!
//! A body that fits in one batch is all-or-nothing, as in Elasticsearch: a malformed action
//! line anywhere refuses the request before anything is appended. In a larger body, the
//! batches before a malformed line are already durable; the 400 says how many items that is.
//! When the queue stays full, `_bulk` answers the items not yet appended with a per-item 429
//! (`es_rejected_execution_exception`), which shippers retry item by item.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{ApiError, AppState};
use crate::collect::bulk::{BulkError, BulkLine, BulkReader, LineSplitter};
use crate::collect::config::ReaderMode;
use crate::collect::parse::{LineContext, Parser};
use crate::collect::transform::Transforms;
use crate::collect::{RunnerConfig, RunnerStatus};
use crate::record::Record;

/// How long a request waits for room in a full queue before answering 429.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Records appended to the queue at once (one durable queue transaction).
const BATCH_RECORDS: usize = 2000;
/// Raw line bytes gathered before a batch is appended, whatever its record count.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Body chunks in flight between the async handler and the blocking thread.
const CHUNKS_IN_FLIGHT: usize = 8;

struct Target {
    config: RunnerConfig,
    status: Arc<Mutex<RunnerStatus>>,
    parser: Parser,
    transforms: Transforms,
}

/// Compiles the runner's parser and transforms: call it on a blocking thread.
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

/// What one batch did to one runner's counters; added to its status once the batch is durable.
#[derive(Default, Clone, Copy)]
struct Counts {
    lines: u64,
    bytes: u64,
    parse_errors: u64,
    filtered: u64,
    truncated: u64,
}

impl Target {
    /// Parse and transform one line (already cut); `None` when a transform removed it.
    fn record(&self, line: &[u8], truncated: bool, counts: &mut Counts) -> Option<Record> {
        let record = self.parser.parse(
            line,
            &LineContext {
                runner: &self.config.name,
                path: "",
                offset: 0,
                truncated,
                stream: "",
            },
        );
        counts.lines += 1;
        counts.bytes += line.len() as u64 + 1;
        counts.parse_errors += u64::from(record.parse_error);
        counts.truncated += u64::from(truncated);
        let record = self.transforms.apply(record);
        counts.filtered += u64::from(record.is_none());
        record
    }

    /// Add a durable batch's counts to the runner's status and metrics.
    fn count(&self, counts: Counts) {
        use crate::metrics as names;
        let name = self.config.name.clone();
        metrics::counter!(names::LINES_READ, "runner" => name.clone()).increment(counts.lines);
        metrics::counter!(names::BYTES_READ, "runner" => name.clone()).increment(counts.bytes);
        if counts.truncated > 0 {
            metrics::counter!(names::DROPPED, "runner" => name.clone(), "reason" => "line_truncated")
                .increment(counts.truncated);
        }
        if counts.filtered > 0 {
            metrics::counter!(names::DROPPED, "runner" => name.clone(), "reason" => "filtered")
                .increment(counts.filtered);
        }
        if counts.parse_errors > 0 {
            metrics::counter!(names::PARSE_ERRORS, "runner" => name).increment(counts.parse_errors);
        }
        let mut status = self.status.lock().expect("status lock");
        status.lines_read += counts.lines;
        status.bytes_read += counts.bytes;
        status.parse_errors += counts.parse_errors;
        status.lines_filtered += counts.filtered;
        status.lines_truncated += counts.truncated;
    }
}

/// Append durably, waiting a little for room. Call it on a blocking thread.
fn append_blocking(state: &AppState, records: Vec<Record>) -> Result<(), ApiError> {
    if records.is_empty() {
        return Ok(());
    }
    if !state.queue.wait_for_room(QUEUE_WAIT) {
        return Err(ApiError::TooManyRequests(format!(
            "{}; retry later",
            state.queue.full_reason()
        )));
    }
    state
        .queue
        .append(records, Vec::new())
        .map(|_| ())
        .map_err(|err| match err {
            // A storage failure (a disk that filled faster than the reserve was watched) is
            // retryable: the queue opens itself again when there is room.
            crate::queue::QueueError::Storage(_) | crate::queue::QueueError::Closed => {
                ApiError::Unavailable(format!(
                    "the queue could not store these lines ({err}); retry later"
                ))
            }
            other => ApiError::Internal(other.to_string()),
        })
}

/// A piece of a request body on its way to the blocking thread.
enum Chunk {
    Data(Bytes),
    /// The body ended normally.
    End,
    /// The body could not be read (too large, client error).
    Failed(ApiError),
}

/// How reading a body's lines ended.
enum BodyEnd {
    /// The whole body was read; `rest` is a last line without a newline (cut, and whether it
    /// was cut).
    Complete { rest: Vec<u8>, rest_truncated: bool },
    /// `on_line` asked to stop.
    Stopped,
    /// The body could not be read.
    Failed(ApiError),
    /// The request went away (client gone, or the request timeout answered): stop without
    /// appending anything more.
    Aborted,
}

/// Feed the lines of a streamed body to `on_line`, each cut at `max_line_bytes` (the rest of
/// a longer line is skipped without being kept) with a trailing `\r` removed. Memory is
/// one line, whatever the body's size. Runs on a blocking thread.
fn read_lines(
    chunks: &mut mpsc::Receiver<Chunk>,
    max_line_bytes: usize,
    on_line: &mut dyn FnMut(&[u8], bool) -> ControlFlow<()>,
) -> BodyEnd {
    let mut splitter = LineSplitter::new(max_line_bytes);
    loop {
        let data = match chunks.blocking_recv() {
            Some(Chunk::Data(data)) => data,
            Some(Chunk::End) => {
                let (rest, rest_truncated) = splitter.finish();
                return BodyEnd::Complete {
                    rest,
                    rest_truncated,
                };
            }
            Some(Chunk::Failed(err)) => return BodyEnd::Failed(err),
            None => return BodyEnd::Aborted,
        };
        if splitter.push(&data, on_line).is_break() {
            return BodyEnd::Stopped;
        }
    }
}

/// Forward a request body to the blocking thread, refusing it past `limit` bytes.
async fn forward_body(body: Body, limit: u64, setting: &str, chunks: mpsc::Sender<Chunk>) {
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(frame) = stream.next().await {
        let message = match frame {
            Ok(data) => {
                total += data.len() as u64;
                if total > limit {
                    Chunk::Failed(too_large(limit, setting))
                } else {
                    Chunk::Data(data)
                }
            }
            Err(err) => Chunk::Failed(ApiError::BadRequest(format!(
                "could not read the request body: {err}"
            ))),
        };
        let too_large = total > limit;
        let last = !matches!(message, Chunk::Data(_));
        // A closed channel: the blocking side has its answer and reads no further.
        if chunks.send(message).await.is_err() || last {
            if too_large {
                super::linger(&mut stream).await;
            }
            return;
        }
    }
    let _ = chunks.send(Chunk::End).await;
}

fn too_large(limit: u64, setting: &str) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the request body is larger than {limit} bytes ({setting})"
    ))
}

/// Stream `body` to `work` on a blocking thread and return what it returns. A declared
/// length over the limit is refused before anything is read.
async fn stream_body<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    work: impl FnOnce(&mut mpsc::Receiver<Chunk>) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let limit = state.config.api.max_ingest_bytes;
    let setting = "api.max_ingest_bytes";
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > limit) {
        if length <= limit + super::LINGER_BYTES {
            super::linger(&mut body.into_data_stream()).await;
        }
        return Err(too_large(limit, setting));
    }
    let (sender, mut receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let worker = tokio::task::spawn_blocking(move || work(&mut receiver));
    forward_body(body, limit, setting, sender).await;
    Ok(worker.await?)
}

/// `POST /api/v1/ingest/<runner>`: one record per line of the body.
pub async fn lines(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let worker_state = state.clone();
    let answer = stream_body(&state, &headers, body, move |chunks| {
        ingest_lines(&worker_state, &name, chunks)
    })
    .await??;
    Ok(axum::Json(answer).into_response())
}

fn ingest_lines(
    state: &AppState,
    name: &str,
    chunks: &mut mpsc::Receiver<Chunk>,
) -> Result<Value, ApiError> {
    let target = target(state, name, ReaderMode::Http).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no runner {name:?} with reader.mode \"http\" on this node"
        ))
    })?;
    let max_line_bytes = state.config.collect.max_line_bytes as usize;
    let mut batch: Vec<Record> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut counts = Counts::default();
    let mut total = Counts::default();
    let mut accepted = 0usize;
    let mut failure: Option<ApiError> = None;
    let mut flush = |batch: &mut Vec<Record>, counts: &mut Counts| -> Result<(), ApiError> {
        let records = std::mem::take(batch);
        let appended = records.len();
        append_blocking(state, records)?;
        target.count(*counts);
        accepted += appended;
        add(&mut total, counts);
        *counts = Counts::default();
        Ok(())
    };
    let mut on_line = |line: &[u8], truncated: bool| {
        if line.is_empty() {
            return ControlFlow::Continue(());
        }
        batch_bytes += line.len();
        batch.extend(target.record(line, truncated, &mut counts));
        if batch.len() >= BATCH_RECORDS || batch_bytes >= BATCH_BYTES {
            batch_bytes = 0;
            if let Err(err) = flush(&mut batch, &mut counts) {
                failure = Some(err);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    };
    let end = read_lines(chunks, max_line_bytes, &mut on_line);
    if let BodyEnd::Complete {
        rest,
        rest_truncated,
    } = &end
    {
        let _ = on_line(rest, *rest_truncated);
    }
    let partial = |err: ApiError, accepted: usize| match err {
        ApiError::TooManyRequests(message) if accepted > 0 => ApiError::TooManyRequests(format!(
            "{message} (the first {accepted} lines of the body were accepted; send the rest again)"
        )),
        other => other,
    };
    if let Some(err) = failure {
        return Err(partial(err, accepted));
    }
    match end {
        BodyEnd::Complete { .. } => {}
        BodyEnd::Stopped => {}
        BodyEnd::Failed(err) => return Err(partial(err, accepted)),
        BodyEnd::Aborted => return Err(ApiError::BadRequest("the request ended early".into())),
    }
    if let Err(err) = flush(&mut batch, &mut counts) {
        return Err(partial(err, accepted));
    }
    Ok(json!({
        "accepted": accepted,
        "lines": total.lines,
        "parse_errors": total.parse_errors,
        "truncated": total.truncated,
    }))
}

fn add(total: &mut Counts, counts: &Counts) {
    total.lines += counts.lines;
    total.bytes += counts.bytes;
    total.parse_errors += counts.parse_errors;
    total.filtered += counts.filtered;
    total.truncated += counts.truncated;
}

fn elastic(status: StatusCode, body: impl IntoResponse) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

fn bulk_error(status: StatusCode, kind: &str, reason: String) -> Response {
    elastic(
        status,
        axum::Json(json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()})),
    )
}

/// One bulk item, kept until the answer is written: a few words, not the document.
struct BulkItem {
    action: &'static str,
    index: Arc<str>,
    id: Option<String>,
    outcome: Outcome,
}

enum Outcome {
    /// Parsed, waiting in the current batch.
    Pending,
    Created,
    Failed(u16, &'static str, Arc<str>),
}

/// A refusal of the whole `_bulk` request, in Elasticsearch's shape.
struct BulkRefusal(StatusCode, &'static str, String);

/// The state of one `_bulk` request on its blocking thread.
struct Bulk<'a> {
    state: &'a AppState,
    default_index: Option<String>,
    targets: HashMap<Arc<str>, Option<Target>>,
    /// Index name → the error its items get when it has no runner.
    missing: HashMap<Arc<str>, Arc<str>>,
    items: Vec<BulkItem>,
    /// The shape of the body: which line is an action, which a document.
    reader: BulkReader,
    /// The current batch: its records, the items they belong to, each runner's counts.
    batch: Vec<Record>,
    batch_items: Vec<usize>,
    batch_counts: HashMap<Arc<str>, Counts>,
    batch_bytes: usize,
    /// Items already durable (for the message of a refusal after some batches).
    durable: usize,
    /// Once appending failed, every later item gets this answer without waiting again.
    rejected: Option<(u16, &'static str, Arc<str>)>,
    refusal: Option<BulkRefusal>,
}

impl Bulk<'_> {
    fn line(&mut self, line: &[u8], truncated: bool) -> ControlFlow<()> {
        match self.reader.line(line, truncated) {
            Ok(BulkLine::Action(action)) => self.action(action),
            Ok(BulkLine::Document { line, truncated }) => {
                // The document belongs to the last item.
                self.document(self.items.len() - 1, line, truncated)
            }
            Ok(BulkLine::Blank) => {}
            Err(BulkError { kind, reason }) => {
                return self.refuse(StatusCode::BAD_REQUEST, kind, reason);
            }
        }
        if self.batch.len() >= BATCH_RECORDS || self.batch_bytes >= BATCH_BYTES {
            self.flush();
        }
        ControlFlow::Continue(())
    }

    fn refuse(
        &mut self,
        status: StatusCode,
        kind: &'static str,
        reason: String,
    ) -> ControlFlow<()> {
        let reason = if self.durable > 0 {
            format!(
                "{reason} (the {} items before it were already accepted)",
                self.durable
            )
        } else {
            reason
        };
        self.refusal = Some(BulkRefusal(status, kind, reason));
        ControlFlow::Break(())
    }

    fn action(&mut self, action: crate::collect::bulk::BulkAction) {
        let index_name = action
            .index
            .or_else(|| self.default_index.clone())
            .unwrap_or_default();
        let index = self.resolve(&index_name);
        let outcome = match action.action {
            "update" | "delete" => Outcome::Failed(
                400,
                "action_request_validation_exception",
                format!("lograft is append-only: {} is not supported", action.action).into(),
            ),
            _ => Outcome::Pending,
        };
        self.items.push(BulkItem {
            action: action.action,
            index,
            id: action.id,
            outcome,
        });
    }

    /// The interned index name, with its target compiled on first use.
    fn resolve(&mut self, name: &str) -> Arc<str> {
        if let Some((key, _)) = self.targets.get_key_value(name) {
            return key.clone();
        }
        let key: Arc<str> = Arc::from(name);
        let target = target(self.state, name, ReaderMode::Bulk);
        if target.is_none() {
            self.missing.insert(
                key.clone(),
                format!(
                    "no such index [{name}] (no runner with reader.mode \"bulk\" of that name)"
                )
                .into(),
            );
        }
        self.targets.insert(key.clone(), target);
        key
    }

    fn document(&mut self, item: usize, line: &[u8], truncated: bool) {
        if !matches!(self.items[item].outcome, Outcome::Pending) {
            return; // update: its document is skipped
        }
        if let Some((status, kind, reason)) = &self.rejected {
            self.items[item].outcome = Outcome::Failed(*status, kind, reason.clone());
            return;
        }
        let index = self.items[item].index.clone();
        let Some(Some(target)) = self.targets.get(&index) else {
            let reason = self.missing.get(&index).cloned().unwrap_or_default();
            self.items[item].outcome = Outcome::Failed(404, "index_not_found_exception", reason);
            return;
        };
        let counts = self.batch_counts.entry(index).or_default();
        self.batch_bytes += line.len();
        match target.record(line, truncated, counts) {
            Some(record) => {
                self.batch.push(record);
                self.batch_items.push(item);
            }
            // Removed by a keep/filter transform: counted, and the item is done.
            None => self.items[item].outcome = Outcome::Created,
        }
    }

    /// Append the current batch durably and settle its items.
    fn flush(&mut self) {
        let records = std::mem::take(&mut self.batch);
        let items = std::mem::take(&mut self.batch_items);
        let counts = std::mem::take(&mut self.batch_counts);
        self.batch_bytes = 0;
        let appended = match &self.rejected {
            Some(rejected) => Err(rejected.clone()),
            None => append_blocking(self.state, records).map_err(|err| match err {
                ApiError::TooManyRequests(message) => (
                    429,
                    "es_rejected_execution_exception",
                    Arc::from(message.as_str()),
                ),
                other => {
                    tracing::error!(error = %other, "a _bulk batch could not be queued");
                    (
                        500,
                        "exception",
                        Arc::from("internal error; see the node's log"),
                    )
                }
            }),
        };
        match appended {
            Ok(()) => {
                for (index, counts) in counts {
                    if let Some(Some(target)) = self.targets.get(&index) {
                        target.count(counts);
                    }
                }
                for item in items {
                    self.items[item].outcome = Outcome::Created;
                }
                self.durable = self.items.len();
            }
            Err((status, kind, reason)) => {
                for item in items {
                    self.items[item].outcome = Outcome::Failed(status, kind, reason.clone());
                }
                self.rejected = Some((status, kind, reason));
            }
        }
    }

    /// The answer: Elasticsearch's per-item results, written item by item.
    fn answer(self, started: Instant) -> Response {
        let errors = self
            .items
            .iter()
            .any(|item| !matches!(item.outcome, Outcome::Created));
        let mut out = Vec::with_capacity(64 + self.items.len() * 120);
        out.extend_from_slice(
            format!(
                "{{\"took\":{},\"errors\":{errors},\"items\":[",
                started.elapsed().as_millis()
            )
            .as_bytes(),
        );
        for (n, item) in self.items.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            let id = item
                .id
                .clone()
                .unwrap_or_else(|| format!("{:x}", rand_id()));
            let body = match &item.outcome {
                Outcome::Created => {
                    json!({"_index": &*item.index, "_id": id, "_version": 1, "result": "created", "status": 201,
                                "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1})
                }
                Outcome::Failed(status, kind, reason) => {
                    json!({"_index": &*item.index, "_id": id, "status": status, "error": {"type": kind, "reason": &**reason}})
                }
                Outcome::Pending => unreachable!("every item is settled before the answer"),
            };
            serde_json::to_writer(&mut out, &json!({ item.action: body }))
                .expect("writing JSON to memory");
        }
        out.extend_from_slice(b"]}");
        elastic(
            StatusCode::OK,
            ([(header::CONTENT_TYPE, "application/json")], out),
        )
    }
}

/// `POST /_bulk` and `POST /<index>/_bulk`: Elasticsearch's bulk API, per-item results.
pub async fn bulk(
    State(state): State<AppState>,
    index: Option<Path<String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let default_index = index.map(|Path(index)| index);
    let worker_state = state.clone();
    let answer = stream_body(&state, &headers, body, move |chunks| {
        ingest_bulk(&worker_state, default_index, chunks, started)
    })
    .await;
    match answer {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

fn ingest_bulk(
    state: &AppState,
    default_index: Option<String>,
    chunks: &mut mpsc::Receiver<Chunk>,
    started: Instant,
) -> Response {
    let mut bulk = Bulk {
        state,
        default_index,
        targets: HashMap::new(),
        missing: HashMap::new(),
        items: Vec::new(),
        reader: BulkReader::default(),
        batch: Vec::new(),
        batch_items: Vec::new(),
        batch_counts: HashMap::new(),
        batch_bytes: 0,
        durable: 0,
        rejected: None,
        refusal: None,
    };
    let max_line_bytes = state.config.collect.max_line_bytes as usize;
    let end = read_lines(chunks, max_line_bytes, &mut |line, truncated| {
        bulk.line(line, truncated)
    });
    match end {
        BodyEnd::Complete { rest, .. } => {
            if let Err(BulkError { kind, reason }) = bulk.reader.finish(&rest) {
                let _ = bulk.refuse(StatusCode::BAD_REQUEST, kind, reason);
            }
        }
        BodyEnd::Stopped => {}
        BodyEnd::Failed(err) => return already_accepted(err, bulk.durable).into_response(),
        BodyEnd::Aborted => {
            return ApiError::BadRequest("the request ended early".into()).into_response();
        }
    }
    if let Some(BulkRefusal(status, kind, reason)) = bulk.refusal {
        return bulk_error(status, kind, reason);
    }
    bulk.flush();
    bulk.answer(started)
}

/// A body that failed after some batches were appended says how many items are durable.
fn already_accepted(err: ApiError, durable: usize) -> ApiError {
    if durable == 0 {
        return err;
    }
    let suffix = format!(" (the first {durable} items were already accepted)");
    match err {
        ApiError::PayloadTooLarge(message) => ApiError::PayloadTooLarge(message + &suffix),
        ApiError::BadRequest(message) => ApiError::BadRequest(message + &suffix),
        other => other,
    }
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
        axum::Json(json!({
            "name": node, "cluster_name": "lograft", "cluster_uuid": "lograft",
            "version": {"number": "8.11.0", "build_flavor": "default", "lucene_version": "9.8.0",
                        "minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
            "tagline": "You Know, for Search"
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_request_stops_reading() {
        let (sender, mut receiver) = mpsc::channel(2);
        sender
            .try_send(Chunk::Data(Bytes::from_static(b"a\nb")))
            .unwrap();
        drop(sender);
        let mut seen = 0;
        let end = read_lines(&mut receiver, 64, &mut |_, _| {
            seen += 1;
            ControlFlow::Continue(())
        });
        assert!(matches!(end, BodyEnd::Aborted));
        assert_eq!(seen, 1);
    }
}
