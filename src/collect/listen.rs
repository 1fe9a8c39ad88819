//! The syslog network input (`reader.mode = "syslog"`): UDP datagrams and TCP streams with
//! newline or octet-counted (RFC 6587) framing, on `reader.listen`. Each message becomes a
//! line for the runner's parser (use `"parser": {"type": "syslog"}`) and is appended to the
//! queue; a message is never acknowledged before it is durable (TCP applies backpressure by
//! not reading while the queue is full).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tracing::{info, warn};

use super::RunnerConfig;
use super::parse::{LineContext, Parser};
use super::runner::RunnerStatus;
use super::transform::Transforms;
use crate::queue::Queue;

/// Largest message kept (UDP datagrams cannot be larger). Longer TCP frames and lines are cut
/// here while they are read (the rest is skipped, never buffered), flagged `truncated` and
/// counted as dropped (`reason="line_truncated"`).
const MAX_MESSAGE: usize = 64 * 1024;

struct Sink {
    config: RunnerConfig,
    parser: Parser,
    transforms: Transforms,
    queue: Arc<dyn Queue>,
    status: Arc<Mutex<RunnerStatus>>,
}

impl Sink {
    /// Queue one message; `cut` says it was already cut at [`MAX_MESSAGE`] while it was read.
    async fn deliver(&self, message: &[u8], cut: bool, peer: SocketAddr) {
        let message = message.strip_suffix(b"\n").unwrap_or(message);
        let message = message.strip_suffix(b"\r").unwrap_or(message);
        if message.is_empty() {
            return;
        }
        let (message, cut_here) = super::parse::cut_line(message, MAX_MESSAGE);
        let truncated = cut || cut_here;
        let cut = message;
        let peer = peer.to_string();
        let record = self.parser.parse(
            cut,
            &LineContext {
                runner: &self.config.name,
                path: &peer,
                offset: 0,
                truncated,
                stream: "",
            },
        );
        let parse_error = record.parse_error;
        let record = self.transforms.apply(record);
        let queue = self.queue.clone();
        let filtered = record.is_none();
        if let Some(record) = record {
            let appended = tokio::task::spawn_blocking(move || {
                while !queue.wait_for_room(std::time::Duration::from_millis(500)) {}
                queue.append(vec![record], Vec::new())
            })
            .await;
            if !matches!(appended, Ok(Ok(_))) {
                warn!(runner = %self.config.name, "could not queue a syslog message");
                return;
            }
        }
        let mut status = self.status.lock().expect("status lock");
        status.lines_read += 1;
        status.bytes_read += message.len() as u64;
        status.parse_errors += u64::from(parse_error);
        status.lines_filtered += u64::from(filtered);
        status.lines_truncated += u64::from(truncated);
        drop(status);
        if truncated {
            metrics::counter!(crate::metrics::DROPPED, "runner" => self.config.name.clone(), "reason" => "line_truncated")
                .increment(1);
        }
    }
}

/// Read up to `delimiter` (consumed, not kept), keeping at most `max` bytes of the frame in
/// `out` and skipping the rest, so a client that never sends the delimiter costs `max` bytes,
/// not unbounded memory. `None` at the end of the stream; else whether the frame was cut.
async fn read_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    delimiter: u8,
    max: usize,
    out: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut truncated = false;
    let mut read_any = false;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(read_any.then_some(truncated));
        }
        read_any = true;
        let (content, consumed, done) = match buffer.iter().position(|b| *b == delimiter) {
            Some(at) => (at, at + 1, true),
            None => (buffer.len(), buffer.len(), false),
        };
        let room = max.saturating_sub(out.len());
        truncated |= content > room;
        out.extend_from_slice(&buffer[..content.min(room)]);
        reader.consume(consumed);
        if done {
            return Ok(Some(truncated));
        }
    }
}

/// Start the listeners of a syslog runner; returns the tasks to abort when it stops.
pub fn start(
    config: RunnerConfig,
    queue: Arc<dyn Queue>,
    status: Arc<Mutex<RunnerStatus>>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let listen: SocketAddr = config
        .reader
        .listen
        .as_deref()
        .ok_or("reader.listen is required for mode syslog (e.g. \"127.0.0.1:5514\")")?
        .parse()
        .map_err(|_| "reader.listen must be an address like \"0.0.0.0:514\"".to_string())?;
    let sink = Arc::new(Sink {
        parser: Parser::new(&config.parser)?,
        transforms: Transforms::new(&config.transforms)?,
        config,
        queue,
        status: status.clone(),
    });
    let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
    // Bind both now, so a port in use is reported as the runner's error.
    let udp = std::net::UdpSocket::bind(listen)
        .map_err(|err| format!("reader.listen {listen} (udp): {err}"))?;
    let tcp = std::net::TcpListener::bind(listen)
        .map_err(|err| format!("reader.listen {listen} (tcp): {err}"))?;
    udp.set_nonblocking(true).map_err(|e| e.to_string())?;
    tcp.set_nonblocking(true).map_err(|e| e.to_string())?;
    let _guard = runtime.enter();
    let udp = UdpSocket::from_std(udp).map_err(|e| e.to_string())?;
    let tcp = TcpListener::from_std(tcp).map_err(|e| e.to_string())?;
    info!(runner = %sink.config.name, %listen, "syslog input listening on UDP and TCP");
    let udp_sink = sink.clone();
    let udp_task = runtime.spawn(async move {
        let mut buffer = vec![0u8; MAX_MESSAGE];
        loop {
            match udp.recv_from(&mut buffer).await {
                Ok((len, peer)) => udp_sink.deliver(&buffer[..len], false, peer).await,
                Err(err) => warn!(error = %err, "syslog udp receive failed"),
            }
        }
    });
    let tcp_task = runtime.spawn(async move {
        loop {
            let Ok((stream, peer)) = tcp.accept().await else {
                continue;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                loop {
                    // RFC 6587: "<length> <message>" when the frame starts with a digit,
                    // else one message per line.
                    let starts_with_digit = match reader.fill_buf().await {
                        Ok([]) | Err(_) => return,
                        Ok(buffer) => buffer[0].is_ascii_digit(),
                    };
                    let mut message = Vec::new();
                    let truncated;
                    if starts_with_digit {
                        // At most 10 digits: a frame length, not a stream of digits.
                        let mut length = Vec::new();
                        match read_capped(&mut reader, b' ', 10, &mut length).await {
                            Ok(Some(false)) => {}
                            _ => return,
                        }
                        let Ok(length) = String::from_utf8_lossy(&length).trim().parse::<u64>()
                        else {
                            return;
                        };
                        // Keep the head of the frame, skip the rest, stay in step with
                        // the framing.
                        let kept = length.min(MAX_MESSAGE as u64);
                        message.resize(kept as usize, 0);
                        if reader.read_exact(&mut message).await.is_err() {
                            return;
                        }
                        let rest = length - kept;
                        let mut skipped = (&mut reader).take(rest);
                        match tokio::io::copy(&mut skipped, &mut tokio::io::sink()).await {
                            Ok(n) if n == rest => {}
                            _ => return,
                        }
                        truncated = rest > 0;
                    } else {
                        match read_capped(&mut reader, b'\n', MAX_MESSAGE, &mut message).await {
                            Ok(Some(cut)) => truncated = cut,
                            _ => return,
                        }
                    }
                    sink.deliver(&message, truncated, peer).await;
                }
            });
        }
    });
    Ok(vec![udp_task, tcp_task])
}
