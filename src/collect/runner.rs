//! One runner: a thread that tails its glob, parses lines and appends them to the queue
//! together with the file checkpoints they advance to.
//!
//! The runner owns no durable state of its own: it starts from the checkpoints in the queue and
//! its in-memory read positions are only trusted after an append succeeded. On any queue error
//! it starts over from the persisted checkpoints, so a failure can delay lines, never skip them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use tracing::{info, warn};

use super::allowlist::Allowlist;
use super::config::RunnerConfig;
use super::limit::RateLimiter;
use super::multiline::Joiner;
use super::parse::{LineContext, Parser};
use super::tail::{FileCheckpoint, FileStatus, Newline, TailEvent, TailOptions, Tailer};
use super::transform::Transforms;
use crate::metrics as names;
use crate::queue::Queue;

/// Lines and bytes per append: large enough to amortise the flush, small enough to keep the
/// time to searchable low.
const BATCH_MAX_LINES: usize = 4096;
const BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;
/// How long to wait for new data before polling the open files again.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Recent problems kept in the status.
const MAX_PROBLEMS: usize = 20;

#[derive(Debug, Clone, Serialize, Default)]
pub struct RunnerStatus {
    pub name: String,
    /// `starting`, `running`, `blocked` (queue full: waiting, not dropping), `stopped`,
    /// `refused` (config not allowed on this node) or `error`.
    pub state: String,
    pub error: Option<String>,
    pub lines_read: u64,
    pub bytes_read: u64,
    pub lines_truncated: u64,
    pub parse_errors: u64,
    /// Lines with bytes invalid in the reader's encoding (replaced by U+FFFD, kept).
    pub lines_with_invalid_bytes: u64,
    /// Lines removed on purpose by a `keep`/`filter` transform.
    pub lines_filtered: u64,
    /// Files that vanished before they were read to the end (their unread tail is lost).
    pub files_lost: u64,
    /// Syslog over UDP: datagrams the kernel dropped because the socket's buffer was full
    /// (the socket's own counter; also `lograft_syslog_udp_kernel_drops_total`).
    pub udp_kernel_drops: u64,
    pub files: Vec<FileStatus>,
    /// Bytes in the followed files not read yet (a rate-limited or blocked runner lags).
    pub lag_bytes: u64,
    /// When this runner (re)started, Unix milliseconds.
    pub started_unix_ms: i64,
    /// Unreadable or refused files and other recent problems, newest last.
    pub problems: VecDeque<String>,
    /// Config keys kept but not acted on (logkit's `batch_len`, `reader.expire`, ...).
    pub ignored_keys: Vec<String>,
}

impl RunnerStatus {
    fn problem(&mut self, text: String) {
        if self.problems.contains(&text) {
            return;
        }
        if self.problems.len() >= MAX_PROBLEMS {
            self.problems.pop_front();
        }
        self.problems.push_back(text);
    }
}

#[derive(Debug, Clone)]
pub struct RunnerSettings {
    pub max_line_bytes: usize,
    pub partial_line_timeout: Duration,
    pub scan_interval: Duration,
}

pub struct RunnerHandle {
    pub config: RunnerConfig,
    pub status: Arc<Mutex<RunnerStatus>>,
    stop: Arc<AtomicBool>,
    wake: SyncSender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Listener tasks of a network runner.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunnerHandle {
    pub fn start(
        config: RunnerConfig,
        queue: Arc<dyn Queue>,
        allowlist: Allowlist,
        settings: RunnerSettings,
    ) -> RunnerHandle {
        let status = Arc::new(Mutex::new(RunnerStatus {
            name: config.name.clone(),
            state: "starting".into(),
            started_unix_ms: chrono::Utc::now().timestamp_millis(),
            ..RunnerStatus::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, wake_rx) = std::sync::mpsc::sync_channel(1);
        let runner = Runner {
            config: config.clone(),
            queue,
            allowlist,
            settings,
            status: status.clone(),
            stop: stop.clone(),
            wake_tx: wake.clone(),
            wake: wake_rx,
        };
        let thread = std::thread::Builder::new()
            .name(format!("runner-{}", config.name))
            .spawn(move || runner.run())
            .expect("spawning a runner thread");
        RunnerHandle {
            config,
            status,
            stop,
            wake,
            thread: Some(thread),
            tasks: Vec::new(),
        }
    }

    /// A handle for a config this node refuses to run; it only carries the status.
    pub fn refused(config: RunnerConfig, reason: String) -> RunnerHandle {
        let status = RunnerStatus {
            name: config.name.clone(),
            state: "refused".into(),
            started_unix_ms: chrono::Utc::now().timestamp_millis(),
            error: Some(reason),
            ..RunnerStatus::default()
        };
        let (wake, _) = std::sync::mpsc::sync_channel(1);
        RunnerHandle {
            config,
            status: Arc::new(Mutex::new(status)),
            stop: Arc::new(AtomicBool::new(true)),
            wake,
            thread: None,
            tasks: Vec::new(),
        }
    }

    /// A handle for a network runner (`http`, `bulk`): no thread, the API ingests for it and
    /// counts in its status.
    pub fn passive(config: RunnerConfig) -> RunnerHandle {
        let mut handle = RunnerHandle::refused(config, String::new());
        {
            let mut status = handle.status.lock().expect("status lock");
            status.state = "listening".into();
            status.error = None;
        }
        handle.stop = Arc::new(AtomicBool::new(false));
        handle
    }

    /// A runner whose desired state is stopped (config and checkpoints kept).
    pub fn stopped(config: RunnerConfig) -> RunnerHandle {
        let handle = RunnerHandle::refused(config, String::new());
        {
            let mut status = handle.status.lock().expect("status lock");
            status.state = "stopped".into();
            status.error = None;
        }
        handle
    }

    /// A syslog runner: its listeners run as tasks on the async runtime.
    pub fn listening(
        config: RunnerConfig,
        queue: Arc<dyn Queue>,
        max_line_bytes: usize,
    ) -> RunnerHandle {
        let mut handle = RunnerHandle::passive(config.clone());
        match super::listen::start(config, queue, handle.status.clone(), max_line_bytes) {
            Ok(tasks) => handle.tasks = tasks,
            Err(reason) => {
                let mut status = handle.status.lock().expect("status lock");
                status.state = "error".into();
                status.error = Some(reason);
            }
        }
        handle
    }

    /// Stop the thread and wait for it (it finishes its current append first).
    pub fn stop(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.try_send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.status.lock().expect("status lock").state = "stopped".into();
    }

    pub fn status(&self) -> RunnerStatus {
        let mut status = self.status.lock().expect("status lock").clone();
        status.ignored_keys = self.config.ignored_keys();
        status
    }
}

struct Runner {
    config: RunnerConfig,
    queue: Arc<dyn Queue>,
    allowlist: Allowlist,
    settings: RunnerSettings,
    status: Arc<Mutex<RunnerStatus>>,
    stop: Arc<AtomicBool>,
    /// Capacity 1: a wake-up is a hint, extra ones are dropped.
    wake_tx: SyncSender<()>,
    wake: Receiver<()>,
}

impl Runner {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn set_state(&self, state: &str, error: Option<String>) {
        let mut status = self.status.lock().expect("status lock");
        status.state = state.into();
        status.error = error;
    }

    fn run(self) {
        let mut backoff = Duration::from_millis(200);
        while !self.stopping() {
            match self.run_once() {
                Ok(()) => return,
                Err(err) => {
                    let message = format!("{err:#}");
                    warn!(runner = %self.config.name, error = %message, "runner failed; restarting from its checkpoints");
                    self.set_state("error", Some(message));
                    let _ = self.wake.recv_timeout(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Tail until stopped. Returns `Err` to be restarted from the persisted checkpoints.
    fn run_once(&self) -> anyhow::Result<()> {
        let name = &self.config.name;
        let pattern = self.config.pattern().map_err(anyhow::Error::msg)?;
        let checkpoints = self.load_checkpoints()?;
        let seen_before = self.queue.checkpoints().mark_runner_seen(name)?;
        let encoding = self.config.encoding().map_err(anyhow::Error::msg)?;
        let options = TailOptions {
            max_line_bytes: self.settings.max_line_bytes,
            partial_line_timeout: self.settings.partial_line_timeout,
            read_from: self.config.reader.read_from,
            newline: if encoding == encoding_rs::UTF_16LE {
                Newline::Utf16Le
            } else if encoding == encoding_rs::UTF_16BE {
                Newline::Utf16Be
            } else {
                Newline::Byte
            },
            ..TailOptions::default()
        };
        let allowlist = self.allowlist.clone();
        let filter = Box::new(move |opened: &std::path::Path, md: &std::fs::Metadata| {
            allowlist.allows_opened(opened, md)
        });
        let mut tailer = Tailer::new(&pattern, options, checkpoints, !seen_before, filter)?;
        let _watcher = self.watch(tailer.watch_root(), tailer.watch_recursive());
        self.set_state("running", None);
        info!(runner = %name, pattern = %pattern, "runner started");

        let parser = Parser::new(&self.config.parser).map_err(anyhow::Error::msg)?;
        let transforms = Transforms::new(&self.config.transforms).map_err(anyhow::Error::msg)?;
        let mut limiter = RateLimiter::new(self.config.rate_limit.unwrap_or_default());
        let mut senders = super::sender::Senders::new(&self.config);
        let mut joiner = match &self.config.reader.head_pattern {
            Some(pattern) => Some(
                Joiner::new(
                    pattern,
                    self.settings.max_line_bytes,
                    self.settings.partial_line_timeout,
                )
                .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        let mut last_scan: Option<Instant> = None;
        while !self.stopping() {
            if last_scan.is_none_or(|at| at.elapsed() >= self.settings.scan_interval) {
                let events = tailer.scan();
                self.handle_events(events);
                last_scan = Some(Instant::now());
            }
            // Backpressure: wait for room before reading, so the data stays in the files.
            if !self.queue.wait_for_room(Duration::from_millis(200)) {
                // Why: the queue at its cap (the indexer is behind) or the disk full.
                self.set_state("blocked", Some(self.queue.full_reason()));
                metrics::counter!(names::RUNNER_BLOCKED_SECONDS, "runner" => name.clone())
                    .increment(0); // registered; time is accounted below
                let blocked_since = Instant::now();
                while !self.stopping() && !self.queue.wait_for_room(Duration::from_millis(200)) {}
                metrics::counter!(names::RUNNER_BLOCKED_SECONDS, "runner" => name.clone())
                    .increment(blocked_since.elapsed().as_secs());
                self.set_state("running", None);
                continue;
            }
            let wait = limiter.wait();
            if !wait.is_zero() {
                self.set_state("limited", None);
                self.update_files(&tailer);
                let _ = self.wake.recv_timeout(wait.min(Duration::from_millis(500)));
                continue;
            }
            let (max_lines, max_bytes) = limiter.allowance(BATCH_MAX_LINES, BATCH_MAX_BYTES);
            let mut batch = tailer.poll(max_lines, max_bytes);
            limiter.spend(batch.lines.len() as u64, batch.bytes_read);
            if let Some(joiner) = &mut joiner {
                batch = joiner.push(batch);
                if batch.lines.is_empty() && batch.checkpoints.is_empty() && batch.forget.is_empty()
                {
                    batch = joiner.flush_idle();
                }
            }
            let events = tailer.take_events();
            self.handle_events(events);
            let idle =
                batch.lines.is_empty() && batch.checkpoints.is_empty() && batch.forget.is_empty();
            if idle {
                // Caught up: no longer held back by the rate limit.
                if self.status.lock().expect("status lock").state == "limited" {
                    self.set_state("running", None);
                }
                self.update_files(&tailer);
                match self.wake.recv_timeout(IDLE_POLL) {
                    // A file event: scan now rather than at the next interval.
                    Ok(()) => last_scan = None,
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
                }
                continue;
            }

            let lines = batch.lines.len() as u64;
            let mut parse_errors = 0u64;
            let mut invalid_lines = 0u64;
            let records: Vec<_> = batch
                .lines
                .iter()
                .filter_map(|line| {
                    let path = line.path.to_string_lossy();
                    let stream = format!("{name}/{}", line.key);
                    // Decode to UTF-8 first; replaced bytes are counted, never a reason to drop.
                    // A byte order mark counts only at the start of a file: a line in the
                    // middle that begins with FF FE is text, not a switch to UTF-16.
                    let (decoded, had_errors) = if line.offset == 0 {
                        let (decoded, _, had_errors) = encoding.decode(&line.bytes);
                        (decoded, had_errors)
                    } else {
                        encoding.decode_without_bom_handling(&line.bytes)
                    };
                    let decoded = match decoded.strip_suffix('\r') {
                        Some(trimmed) => std::borrow::Cow::Owned(trimmed.to_string()),
                        None => decoded,
                    };
                    invalid_lines += u64::from(had_errors);
                    let record = parser.parse(
                        decoded.as_bytes(),
                        &LineContext {
                            runner: name,
                            path: &path,
                            offset: line.offset,
                            truncated: line.truncated,
                            stream: &stream,
                        },
                    );
                    parse_errors += u64::from(record.parse_error);
                    transforms.apply(record)
                })
                .collect();
            let filtered = lines - records.len() as u64;
            let mut checkpoint_updates: Vec<(String, Option<String>)> = batch
                .checkpoints
                .iter()
                .map(|(key, checkpoint)| {
                    let json = serde_json::to_string(checkpoint).expect("checkpoint serializes");
                    (format!("{name}/{key}"), Some(json))
                })
                .collect();
            checkpoint_updates.extend(
                batch
                    .forget
                    .iter()
                    .map(|key| (format!("{name}/{key}"), None)),
            );
            senders.send_to_files(&records, &self.allowlist)?;
            let records = if senders.local {
                records
            } else {
                if !records.is_empty() {
                    metrics::counter!(names::DROPPED, "runner" => name.clone(), "reason" => "discard_sender")
                        .increment(records.len() as u64);
                }
                Vec::new()
            };
            self.queue.append(records, checkpoint_updates)?;

            metrics::counter!(names::LINES_READ, "runner" => name.clone()).increment(lines);
            metrics::counter!(names::BYTES_READ, "runner" => name.clone())
                .increment(batch.bytes_read);
            if batch.truncated_lines > 0 {
                metrics::counter!(names::DROPPED, "runner" => name.clone(), "reason" => "line_truncated")
                    .increment(batch.truncated_lines);
            }
            if filtered > 0 {
                metrics::counter!(names::DROPPED, "runner" => name.clone(), "reason" => "filtered")
                    .increment(filtered);
            }
            if parse_errors > 0 {
                metrics::counter!(names::PARSE_ERRORS, "runner" => name.clone())
                    .increment(parse_errors);
            }
            {
                let mut status = self.status.lock().expect("status lock");
                status.lines_read += lines;
                status.bytes_read += batch.bytes_read;
                status.lines_truncated += batch.truncated_lines;
                status.parse_errors += parse_errors;
                status.lines_filtered += filtered;
                status.lines_with_invalid_bytes += invalid_lines;
            }
            self.update_files(&tailer);
        }
        Ok(())
    }

    fn load_checkpoints(&self) -> anyhow::Result<Vec<(String, FileCheckpoint)>> {
        let mut out = Vec::new();
        for (key, json) in self.queue.checkpoints().of_runner(&self.config.name)? {
            match serde_json::from_str::<FileCheckpoint>(&json) {
                Ok(checkpoint) => out.push((key, checkpoint)),
                Err(err) => {
                    warn!(runner = %self.config.name, stream = %key, error = %err, "ignoring an unreadable checkpoint")
                }
            }
        }
        Ok(out)
    }

    fn update_files(&self, tailer: &Tailer) {
        let files = tailer.status();
        let lag: u64 = files.iter().map(|f| f.size.saturating_sub(f.offset)).sum();
        let mut status = self.status.lock().expect("status lock");
        status.files = files;
        status.lag_bytes = lag;
    }

    fn handle_events(&self, events: Vec<TailEvent>) {
        let name = &self.config.name;
        for event in events {
            let kind = match &event {
                TailEvent::Opened { path, offset, .. } => {
                    info!(runner = %name, path = %path.display(), offset, "file opened");
                    "opened"
                }
                TailEvent::Rotated { old_path, .. } => {
                    info!(runner = %name, path = %old_path.display(), "file rotated; draining the old file");
                    "rotated"
                }
                TailEvent::Renamed { from, to, .. } => {
                    info!(runner = %name, from = %from.display(), to = %to.display(), "file renamed");
                    "renamed"
                }
                TailEvent::Truncated {
                    path, old_offset, ..
                } => {
                    info!(runner = %name, path = %path.display(), old_offset, "file truncated; reading from the start");
                    "truncated"
                }
                TailEvent::Replaced { path, .. } => {
                    info!(runner = %name, path = %path.display(), "file replaced (inode reused); reading from the start");
                    "replaced"
                }
                TailEvent::Deleted { path, .. } => {
                    info!(runner = %name, path = %path.display(), "file deleted; draining it");
                    "deleted"
                }
                TailEvent::Closed { path, .. } => {
                    info!(runner = %name, path = %path.display(), "file finished and closed");
                    "closed"
                }
                TailEvent::Lost { path, offset, .. } => {
                    warn!(runner = %name, path = %path.display(), offset, "file vanished before it was read to the end");
                    metrics::counter!(names::DROPPED, "runner" => name.clone(), "reason" => "file_lost")
                        .increment(1);
                    let mut status = self.status.lock().expect("status lock");
                    status.files_lost += 1;
                    status.problem(format!(
                        "{} vanished before it was read past offset {offset}: its unread tail is lost",
                        path.display()
                    ));
                    "lost"
                }
                TailEvent::Refused { path, reason } => {
                    warn!(runner = %name, path = %path.display(), reason = %reason, "file refused");
                    self.status
                        .lock()
                        .expect("status lock")
                        .problem(format!("refused: {reason}"));
                    "refused"
                }
                TailEvent::Unreadable { path, error } => {
                    warn!(runner = %name, path = %path.display(), error = %error, "file unreadable");
                    self.status
                        .lock()
                        .expect("status lock")
                        .problem(format!("cannot read {}: {error}", path.display()));
                    "unreadable"
                }
            };
            metrics::counter!(names::FILE_EVENTS, "runner" => name.clone(), "event" => kind)
                .increment(1);
        }
    }

    /// File events only make the runner scan sooner; the periodic scan stays the truth.
    fn watch(&self, root: PathBuf, recursive: bool) -> Option<notify::RecommendedWatcher> {
        let wake = self.wake_tx.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Our own reads raise access events: waking on them would spin the runner.
                let wants_scan = event.is_ok_and(|event| {
                    matches!(
                        event.kind,
                        notify::EventKind::Create(_)
                            | notify::EventKind::Modify(_)
                            | notify::EventKind::Remove(_)
                    )
                });
                if wants_scan {
                    let _ = wake.try_send(());
                }
            })
            .ok()?;
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        match watcher.watch(&root, mode) {
            Ok(()) => Some(watcher),
            Err(err) => {
                info!(runner = %self.config.name, root = %root.display(), error = %err, "no file events; relying on the periodic scan");
                None
            }
        }
    }
}
