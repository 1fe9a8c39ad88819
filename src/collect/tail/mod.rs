//! File tailer: follows every file matching one absolute glob and turns it into complete lines
//! with exact byte offsets plus per-file checkpoints.
//!
//! # Identity
//! A *stream* is one file, not one path: it is keyed by `(dev, ino)` ([`stream_key`]) because
//! paths move during rotation while the inode stays. Inodes are recycled, though, so each stream
//! also carries a fingerprint: xxh3 of the first `fingerprint_len` bytes (at most
//! `fingerprint_bytes`; it is extended while a young file grows). A known inode whose prefix no
//! longer hashes to the stored fingerprint (or that became shorter than it) is a different file
//! content: either a copytruncate/rewrite of the same file (`Truncated`) or inode reuse
//! (`Replaced`); both restart at offset 0. A file truncated and refilled with an identical first
//! `fingerprint_len` bytes cannot be told apart (the same limit as every fingerprinting tailer).
//!
//! # Rotation
//! [`Tailer::scan`] is the source of truth; fs events only make the caller scan sooner. When a
//! stream's (dev, ino) is no longer found by the glob, its path either points to a new file or
//! is gone: the stream keeps its open handle and becomes *draining* (`Rotated`/`Deleted`), so
//! lines written to the old file just after the rename are still read. Once it has been at EOF
//! with no new bytes for `partial_line_timeout`, its partial line is flushed, the handle is
//! closed (`Closed`) and its key goes into [`Batch::forget`]. If the same inode shows up under
//! another matching name it is simply `Renamed` and continues where it was: no duplicates.
//!
//! # Offsets and checkpoints
//! `FileCheckpoint::offset` only ever covers bytes that were emitted as lines (or deliberately
//! skipped: empty lines, the tail of an over-long line). A partial last line lives in memory
//! only, so a restart re-reads it. Checkpoints in a [`Batch`] are deltas: the caller must store
//! them atomically with the batch's lines (and delete `forget` keys, which never also appear in
//! `checkpoints`); restoring them gives exactly-once lines across restarts. A batch may carry
//! checkpoints without lines (skipped bytes, newly opened files) and must be persisted too.
//! On restart a checkpoint whose file left the glob (e.g. rotated to `app.log.1` while we were
//! down) is looked up by (dev, ino) in its old directory and drained; otherwise it is `Lost`.

mod discovery;
mod framing;
mod identity;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobMatcher};
use walkdir::WalkDir;
use xxhash_rust::xxh3::xxh3_64;

use discovery::has_glob_chars;
use framing::{emit, read_step};
use identity::{fresh_fp, refresh_fp};

/// Where files start on the very first run (no stored state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    #[default]
    Oldest,
    Newest,
}

#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Longer lines are cut to this many bytes (`Line::truncated`) and the rest is discarded.
    pub max_line_bytes: usize,
    /// A partial last line is emitted after the file has been idle this long; also how long a
    /// rotated/deleted file must stay idle at EOF before it is closed.
    pub partial_line_timeout: Duration,
    /// Number of leading bytes hashed to verify a file's identity.
    pub fingerprint_bytes: usize,
    /// Applies only on the first run, to files present at the first scan.
    pub read_from: ReadFrom,
    /// Size of one read (and of the shared read buffer).
    pub read_buffer_bytes: usize,
    /// What ends a line: the byte `\n`, or a UTF-16 newline at an even offset.
    pub newline: Newline,
}

/// How lines end in the file's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Newline {
    /// The byte `\n` (UTF-8 and every ASCII-compatible encoding).
    #[default]
    Byte,
    /// `0A 00` at an even offset.
    Utf16Le,
    /// `00 0A` at an even offset.
    Utf16Be,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            max_line_bytes: 1 << 20,
            partial_line_timeout: Duration::from_secs(10),
            fingerprint_bytes: 256,
            read_from: ReadFrom::Oldest,
            read_buffer_bytes: 64 << 10,
            newline: Newline::Byte,
        }
    }
}

/// Persisted per-file state (the caller stores it as JSON next to the lines, in one transaction).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileCheckpoint {
    /// Last path the file was seen at.
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// xxh3_64 of the first `fingerprint_len` bytes.
    pub fingerprint: u64,
    pub fingerprint_len: u32,
    /// Every byte before this has been emitted (or deliberately skipped).
    pub offset: u64,
    /// In the middle of discarding the rest of an over-long line.
    pub skipping_oversized: bool,
}

/// Key of a file stream in the checkpoint map.
pub fn stream_key(dev: u64, ino: u64) -> String {
    format!("{dev:x}:{ino:x}")
}

#[derive(Debug, Clone)]
pub struct Line {
    /// Stream key.
    pub key: String,
    pub path: PathBuf,
    /// Byte offset of the first byte of the line in the file.
    pub offset: u64,
    /// Line content without the trailing "\n" (and without a trailing "\r").
    pub bytes: Vec<u8>,
    /// Cut at `max_line_bytes`.
    pub truncated: bool,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub lines: Vec<Line>,
    /// New state of every stream whose state changed since the previous batch.
    pub checkpoints: Vec<(String, FileCheckpoint)>,
    /// Stream keys whose checkpoints can be deleted (file finished and gone, or lost).
    pub forget: Vec<String>,
    /// Bytes consumed from files in this batch.
    pub bytes_read: u64,
    /// Lines cut at `max_line_bytes`.
    pub truncated_lines: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TailEvent {
    /// New file, or restored from a checkpoint; `offset` is where reading starts.
    Opened {
        path: PathBuf,
        key: String,
        offset: u64,
    },
    /// The path now points to another file (or the file left the glob); old one is drained then closed.
    Rotated { old_path: PathBuf, key: String },
    /// Same file found under another matching name.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        key: String,
    },
    /// Copytruncate or rewrite: reading restarts at 0.
    Truncated {
        path: PathBuf,
        key: String,
        old_offset: u64,
    },
    /// Same (dev, ino) but different fingerprint: inode reuse; read from 0.
    Replaced { path: PathBuf, key: String },
    /// File gone from disk; drained through the open handle then closed.
    Deleted { path: PathBuf, key: String },
    /// Rotated/deleted file fully drained and closed.
    Closed { path: PathBuf, key: String },
    /// A checkpointed file no longer exists anywhere: its unread tail is lost.
    Lost {
        path: PathBuf,
        key: String,
        offset: u64,
    },
    /// The path filter refused the file.
    Refused { path: PathBuf, reason: String },
    /// open/stat failed (permission denied...): reported once, retried at later scans.
    Unreadable { path: PathBuf, error: String },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FileStatus {
    pub path: PathBuf,
    pub key: String,
    pub offset: u64,
    pub size: u64,
    /// "active" | "draining"
    pub state: &'static str,
}

/// Called with the canonicalized path before a file is opened; `Err(reason)` refuses it.
/// Vets a file the tailer has opened: the path it really is (resolved from the open
/// descriptor, so no symlink swapped in after a check can win) and its metadata (device and
/// inode: hard links have no target to check). `Err` says why it is refused; it is closed
/// unread.
pub type PathFilter = Box<dyn Fn(&Path, &fs::Metadata) -> Result<(), String> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("invalid glob pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("log path must be absolute: {0:?}")]
    NotAbsolute(String),
}

/// One open file.
struct Stream {
    key: String,
    path: PathBuf,
    dev: u64,
    ino: u64,
    file: File,
    fingerprint: u64,
    fingerprint_len: u32,
    /// Checkpoint offset: start of the current (partial) line.
    offset: u64,
    /// Next byte to read: `offset + pending.len()`, or further while skipping.
    read_pos: u64,
    /// Bytes of the incomplete current line (bounded by max_line_bytes + one read).
    pending: Vec<u8>,
    skipping: bool,
    draining: bool,
    /// Last time new bytes were read (or the stream was opened / started draining).
    last_data: Instant,
    /// State changed since the last batch.
    dirty: bool,
}

/// Follows all files matching one absolute glob. See the module docs.
pub struct Tailer {
    matcher: GlobMatcher,
    /// Walk root (glob) or the file itself (plain path).
    root: PathBuf,
    /// `None` for a plain path; `Some(max_depth)` (None = unlimited, for `**`) for a glob.
    walk_depth: Option<Option<usize>>,
    opts: TailOptions,
    filter: PathFilter,
    first_run: bool,
    scanned: bool,
    streams: HashMap<String, Stream>,
    /// Round-robin order of `streams`.
    order: Vec<String>,
    rr: usize,
    /// Restored checkpoints not yet matched to a file.
    restored: HashMap<String, FileCheckpoint>,
    pending_forget: Vec<String>,
    refused: HashSet<PathBuf>,
    unreadable: HashSet<PathBuf>,
    events: Vec<TailEvent>,
    buf: Vec<u8>,
}

/// The regular files `pattern` matches now that `allowlist` lets this node read (at most
/// `limit`, by path): what a runner with that pattern would tail. Nothing is opened; the
/// allowlist is judged by the canonical path (a runner checks the opened file again).
pub fn matching_files(
    pattern: &str,
    allowlist: &super::allowlist::Allowlist,
    limit: usize,
) -> Result<Vec<PathBuf>, TailError> {
    let mut tailer = Tailer::new(
        pattern,
        TailOptions::default(),
        Vec::new(),
        false,
        Box::new(|_, _| Ok(())),
    )?;
    let mut events = Vec::new();
    let mut out = Vec::new();
    for (path, _) in tailer.walk(&mut events) {
        let allowed = fs::canonicalize(&path)
            .and_then(|real| fs::metadata(&real).map(|md| (real, md)))
            .is_ok_and(|(real, md)| allowlist.allows_opened(&real, &md).is_ok());
        if allowed {
            out.push(path);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

impl Tailer {
    /// `checkpoints`: what the caller restored. `first_run`: no stored state exists; then
    /// `read_from = Newest` starts files present at the first scan at their end (files found
    /// later always start at 0). `filter` vets the canonical path before a file is opened.
    pub fn new(
        pattern: &str,
        opts: TailOptions,
        checkpoints: Vec<(String, FileCheckpoint)>,
        first_run: bool,
        filter: PathFilter,
    ) -> Result<Self, TailError> {
        if !Path::new(pattern).is_absolute() {
            return Err(TailError::NotAbsolute(pattern.to_string()));
        }
        // Normalize "//" and trailing "/" so walked paths and the glob agree.
        let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
        let norm = format!("/{}", comps.join("/"));
        let matcher = GlobBuilder::new(&norm)
            .literal_separator(true)
            .build()
            .map_err(|e| TailError::Pattern {
                pattern: pattern.to_string(),
                reason: e.to_string(),
            })?
            .compile_matcher();
        let (root, walk_depth) = match comps.iter().position(|c| has_glob_chars(c)) {
            None => (PathBuf::from(&norm), None),
            Some(i) => {
                let depth = if comps[i..].iter().any(|c| c.contains("**")) {
                    None
                } else {
                    Some(comps.len() - i)
                };
                (
                    PathBuf::from(format!("/{}", comps[..i].join("/"))),
                    Some(depth),
                )
            }
        };
        let mut opts = opts;
        opts.max_line_bytes = opts.max_line_bytes.max(1);
        opts.read_buffer_bytes = opts.read_buffer_bytes.max(1);
        let buf = vec![0u8; opts.read_buffer_bytes];
        Ok(Tailer {
            matcher,
            root,
            walk_depth,
            opts,
            filter,
            first_run,
            scanned: false,
            streams: HashMap::new(),
            order: Vec::new(),
            rr: 0,
            restored: checkpoints.into_iter().collect(),
            pending_forget: Vec::new(),
            refused: HashSet::new(),
            unreadable: HashSet::new(),
            events: Vec::new(),
            buf,
        })
    }

    /// Directory to watch with inotify: the literal, non-glob prefix dir of the pattern
    /// (existing or not); for a plain path, its parent.
    /// Whether file events must be watched below the root's own entries (a glob with `**` or
    /// several levels). `/var/log/*.log` needs only `/var/log` itself, and a recursive watch
    /// there would fail on directories the node may not read (`/var/log/private`).
    pub fn watch_recursive(&self) -> bool {
        matches!(self.walk_depth, Some(None)) || matches!(self.walk_depth, Some(Some(d)) if d > 1)
    }

    pub fn watch_root(&self) -> PathBuf {
        match self.walk_depth {
            Some(_) => self.root.clone(),
            None => self.root.parent().unwrap_or(Path::new("/")).to_path_buf(),
        }
    }
}

impl Tailer {
    /// Reads available data from open files, round-robin, until `max_lines` or `max_bytes`
    /// or nothing more to read. `max_bytes` is soft: no new read starts once it is reached,
    /// so a batch may exceed it by up to one read buffer (a line shorter than the buffer is
    /// never split across batches by it). Also flushes partial lines idle for `partial_line_timeout`
    /// and closes drained rotated/deleted files (key in `forget`, `Closed` via take_events()).
    pub fn poll(&mut self, max_lines: usize, max_bytes: usize) -> Batch {
        let mut b = Batch {
            forget: std::mem::take(&mut self.pending_forget),
            ..Batch::default()
        };
        let (max_lines, max_bytes) = (max_lines.max(1), max_bytes.max(1) as u64);
        let keys = self.order.clone();
        let n = keys.len();
        if n > 0 {
            let start = self.rr % n;
            self.rr = self.rr.wrapping_add(1);
            'outer: loop {
                let mut progress = false;
                for i in 0..n {
                    if b.lines.len() >= max_lines || b.bytes_read >= max_bytes {
                        break 'outer;
                    }
                    let s = self
                        .streams
                        .get_mut(&keys[(start + i) % n])
                        .expect("order in sync");
                    progress |= read_step(
                        s,
                        &mut self.buf,
                        &self.opts,
                        &mut b,
                        max_lines,
                        &mut self.events,
                    );
                }
                if !progress {
                    break;
                }
            }
        }
        // Idle streams: flush partial lines, close drained rotated/deleted files.
        for key in keys {
            let s = self.streams.get_mut(&key).expect("order in sync");
            if s.last_data.elapsed() < self.opts.partial_line_timeout {
                continue;
            }
            match s.file.metadata() {
                Ok(m) if m.len() == s.read_pos => {}
                _ => continue, // unread data (or truncation): handled by the next read
            }
            if !s.pending.is_empty() {
                if b.lines.len() >= max_lines {
                    continue;
                }
                let line = std::mem::take(&mut s.pending);
                emit(s, &line, &mut b, self.opts.max_line_bytes);
                s.offset = s.read_pos;
                s.dirty = true;
            }
            if s.draining {
                let s = self.streams.remove(&key).expect("present");
                self.order.retain(|k| *k != key);
                self.events.push(TailEvent::Closed {
                    path: s.path,
                    key: key.clone(),
                });
                b.forget.push(key);
            }
        }
        for key in &self.order {
            let s = self.streams.get_mut(key).expect("order in sync");
            if s.dirty {
                s.dirty = false;
                b.checkpoints.push((key.clone(), s.checkpoint()));
            }
        }
        b
    }

    /// Events produced during poll() (truncation noticed while reading, Closed).
    pub fn take_events(&mut self) -> Vec<TailEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn status(&self) -> Vec<FileStatus> {
        self.order
            .iter()
            .map(|k| {
                let s = &self.streams[k];
                FileStatus {
                    path: s.path.clone(),
                    key: k.clone(),
                    offset: s.offset,
                    size: s.file.metadata().map(|m| m.len()).unwrap_or(0),
                    state: if s.draining { "draining" } else { "active" },
                }
            })
            .collect()
    }
}
