//! [`RemoteBackend`]: another node's data behind the search [`Backend`] seam, over its
//! `/internal/v1/...` routes with the cluster secret.
//!
//! Parameters are sent again from the parsed request (never forwarded verbatim), and the
//! audit trail is included only when the asking node checked that its caller may see it
//! (`audit=true`; the internal routes trust only the cluster secret, so the flag cannot come
//! from a user's query string).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;

use super::aggregate::{AggParams, FieldsResponse};
use super::backend::{
    Backend, BackendError, BoxFuture, CountsRequest, CountsResponse, Followed, Page, StatsAnswer,
    TailItem, TopPart, flush_dropped, send_or_count,
};
use super::{
    ContextParams, ContextResponse, HistogramParams, HistogramResponse, Hit, SearchParams,
};
use crate::auth::ClusterSecret;
use crate::wire::CLUSTER_SECRET_HEADER;

/// A node's tail stream that sends nothing (not even a keep-alive) for this long is dead.
pub const TAIL_IDLE: Duration = Duration::from_secs(20);

/// How this node calls other nodes: the client (TLS roots), the secret, the per-call timeout.
#[derive(Clone)]
pub struct Peers {
    pub client: reqwest::Client,
    pub secret: ClusterSecret,
    pub timeout: Duration,
}

/// Another node, by its advertised URL.
#[derive(Clone)]
pub struct RemoteBackend {
    pub name: String,
    pub url: String,
    peers: Peers,
}

impl RemoteBackend {
    pub fn new(name: String, url: String, peers: Peers) -> RemoteBackend {
        RemoteBackend { name, url, peers }
    }

    fn get<'a, T: DeserializeOwned + Send + 'a>(
        &'a self,
        path: &'static str,
        pairs: Pairs,
    ) -> BoxFuture<'a, Result<T, BackendError>> {
        let request = self
            .peers
            .client
            .get(format!("{}{path}", self.url))
            .query(&pairs.0);
        self.call(request)
    }

    fn post<'a, T: DeserializeOwned + Send + 'a, B: Serialize + Send + Sync + 'a>(
        &'a self,
        path: &'static str,
        body: B,
    ) -> BoxFuture<'a, Result<T, BackendError>> {
        let request = self
            .peers
            .client
            .post(format!("{}{path}", self.url))
            .json(&body);
        self.call(request)
    }

    /// Send a node-to-node request (with the secret, within the timeout) and decode the answer.
    fn call<'a, T: DeserializeOwned + Send + 'a>(
        &'a self,
        request: reqwest::RequestBuilder,
    ) -> BoxFuture<'a, Result<T, BackendError>> {
        Box::pin(async move {
            let timeout = self.peers.timeout;
            let response = request
                .header(CLUSTER_SECRET_HEADER, self.peers.secret.reveal())
                .timeout(timeout)
                .send()
                .await
                .map_err(|err| remote_error(err, timeout))?;
            decode(response, timeout).await
        })
    }

    /// One subscription to the node's tail. `Ok` when the client went away, `Err` when the
    /// node's stream failed.
    async fn follow_once(
        &self,
        q: &str,
        audit: bool,
        tx: &mpsc::Sender<TailItem>,
        failed: &mut bool,
    ) -> Followed {
        let timeout = self.peers.timeout;
        let pairs = Pairs::default().opt("q", Some(q)).audit(audit);
        let request = self
            .peers
            .client
            .get(format!("{}/internal/v1/tail", self.url))
            .header(CLUSTER_SECRET_HEADER, self.peers.secret.reveal())
            .query(&pairs.0)
            // The stream lasts as long as the client's; idleness is watched below.
            .timeout(Duration::from_secs(365 * 86_400));
        let mut response = match tokio::time::timeout(timeout, request.send()).await {
            Ok(Ok(response)) if response.status().is_success() => response,
            Ok(Ok(response)) => return Err(status_error(response).await.message()),
            Ok(Err(err)) => return Err(remote_error(err, timeout).message()),
            Err(_) => {
                return Err(format!(
                    "no answer within {} (cluster.search_timeout)",
                    humantime(timeout)
                ));
            }
        };
        if *failed {
            *failed = false;
            if tx
                .send(TailItem::NodeBack(self.name.clone()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        let mut parser = SseParser::default();
        let mut dropped = 0u64;
        loop {
            let chunk = tokio::select! {
                _ = tx.closed() => return Ok(()),
                chunk = tokio::time::timeout(TAIL_IDLE, response.chunk()) => chunk,
            };
            let bytes = match chunk {
                Ok(Ok(Some(bytes))) => bytes,
                Ok(Ok(None)) => return Err("its tail stream ended".into()),
                Ok(Err(err)) => {
                    return Err(format!("its tail stream broke: {}", err.without_url()));
                }
                Err(_) => {
                    return Err(format!(
                        "its tail stream was silent for {}",
                        humantime(TAIL_IDLE)
                    ));
                }
            };
            for (event, data) in parser.feed(&bytes) {
                match event.as_str() {
                    "hit" => match serde_json::from_str::<Hit>(&data) {
                        Ok(hit) => {
                            if !send_or_count(tx, TailItem::Hit(Box::new(hit)), &mut dropped) {
                                return Ok(());
                            }
                        }
                        Err(err) => return Err(format!("bad answer: unreadable hit ({err})")),
                    },
                    "dropped" => dropped += data.trim().parse::<u64>().unwrap_or(0),
                    _ => {}
                }
            }
            if !flush_dropped(tx, &mut dropped) {
                return Ok(());
            }
        }
    }
}

impl Backend for RemoteBackend {
    fn page(&self, params: SearchParams) -> BoxFuture<'_, Result<Page, BackendError>> {
        let pairs = Pairs::default()
            .opt("q", params.q)
            .opt("from", params.from)
            .opt("to", params.to)
            .opt("limit", params.limit)
            .opt("cursor", params.cursor)
            .audit(!params.hide_audit);
        self.get("/internal/v1/search", pairs)
    }

    fn histogram(
        &self,
        params: HistogramParams,
    ) -> BoxFuture<'_, Result<HistogramResponse, BackendError>> {
        let pairs = Pairs::default()
            .opt("q", params.q)
            .opt("from", params.from)
            .opt("to", params.to)
            .opt("interval", params.interval)
            .audit(!params.hide_audit);
        self.get("/internal/v1/histogram", pairs)
    }

    fn top(&self, params: AggParams) -> BoxFuture<'_, Result<TopPart, BackendError>> {
        self.get("/internal/v1/top", agg_pairs(params))
    }

    fn counts(&self, request: CountsRequest) -> BoxFuture<'_, Result<Vec<u64>, BackendError>> {
        Box::pin(async move {
            let answer: CountsResponse = self.post("/internal/v1/top/counts", request).await?;
            Ok(answer.counts)
        })
    }

    fn stats(&self, params: AggParams) -> BoxFuture<'_, Result<StatsAnswer, BackendError>> {
        self.get("/internal/v1/stats", agg_pairs(params))
    }

    fn fields(&self, params: AggParams) -> BoxFuture<'_, Result<FieldsResponse, BackendError>> {
        self.get("/internal/v1/fields", agg_pairs(params))
    }

    fn context(
        &self,
        params: ContextParams,
    ) -> BoxFuture<'_, Result<ContextResponse, BackendError>> {
        let pairs = Pairs::default()
            .opt("id", params.id)
            .opt("before", params.before)
            .opt("after", params.after);
        self.get("/internal/v1/context", pairs)
    }

    fn follow<'a>(
        &'a self,
        q: &'a str,
        audit: bool,
        tx: &'a mpsc::Sender<TailItem>,
        failed: &'a mut bool,
    ) -> BoxFuture<'a, Followed> {
        Box::pin(self.follow_once(q, audit, tx, failed))
    }
}

/// Query pairs for a node-to-node call.
#[derive(Debug, Clone, Default)]
struct Pairs(Vec<(&'static str, String)>);

impl Pairs {
    fn opt(mut self, key: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(value) = value {
            self.0.push((key, value.to_string()));
        }
        self
    }
    fn audit(self, audit: bool) -> Self {
        self.opt("audit", audit.then_some("true"))
    }
}

fn agg_pairs(params: AggParams) -> Pairs {
    Pairs::default()
        .opt("field", params.field)
        .opt("q", params.q)
        .opt("from", params.from)
        .opt("to", params.to)
        .opt("size", params.size)
        .audit(!params.hide_audit)
}

/// `4s`, `500ms`.
pub fn humantime(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 1.0 {
        format!("{}s", secs.round() as u64)
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// A node-to-node call's error with its causes, e.g. "error sending request for url (...):
/// client error (Connect): tcp connect error: Connection refused (os error 111)".
pub fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn remote_error(err: reqwest::Error, timeout: Duration) -> BackendError {
    if err.is_timeout() {
        BackendError::failed(format!(
            "no answer within {} (cluster.search_timeout)",
            humantime(timeout)
        ))
    } else if err.is_connect() {
        BackendError::failed(format!("unreachable: {}", err.without_url()))
    } else {
        BackendError::failed(err.without_url().to_string())
    }
}

/// The error of a non-2xx answer: the message of our `{"error": {"message"}}` body.
async fn status_error(response: reqwest::Response) -> BackendError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    BackendError::Failed {
        status: Some(status),
        message,
    }
}

async fn decode<T: DeserializeOwned>(
    response: reqwest::Response,
    timeout: Duration,
) -> Result<T, BackendError> {
    if !response.status().is_success() {
        return Err(status_error(response).await);
    }
    response
        .json::<T>()
        .await
        .map_err(|err| match remote_error(err, timeout) {
            BackendError::Failed { message, .. } => {
                BackendError::failed(format!("bad answer: {message}"))
            }
            other => other,
        })
}

/// Server-Sent Events, parsed incrementally: `(event, data)` per complete event.
#[derive(Debug, Default)]
struct SseParser {
    pending: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let event = std::mem::take(&mut self.event);
                    let event = if event.is_empty() {
                        "message".to_string()
                    } else {
                        event
                    };
                    events.push((event, self.data.join("\n")));
                    self.data.clear();
                }
                self.event.clear();
            } else if let Some(name) = line.strip_prefix("event:") {
                self.event = name.trim_start().to_string();
            } else if let Some(data) = line.strip_prefix("data:") {
                self.data
                    .push(data.strip_prefix(' ').unwrap_or(data).to_string());
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_parsed_across_chunk_boundaries() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b": keep-alive\n\nevent: hit\nda").is_empty());
        let events = parser.feed(b"ta: {\"a\":1}\n\nevent: dropped\r\ndata: 5\r\n\r\ndata: x\n");
        assert_eq!(
            events,
            vec![
                ("hit".to_string(), "{\"a\":1}".to_string()),
                ("dropped".to_string(), "5".to_string())
            ]
        );
        assert_eq!(parser.feed(b"\n"), vec![("message".into(), "x".into())]);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(humantime(Duration::from_millis(4000)), "4s");
        assert_eq!(humantime(Duration::from_millis(500)), "500ms");
    }
}
