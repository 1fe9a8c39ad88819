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

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobMatcher};
use walkdir::WalkDir;
use xxhash_rust::xxh3::xxh3_64;

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

/// The first newline in `rest` (which starts at file offset `start`): (index, length).
fn find_newline(rest: &[u8], start: u64, newline: Newline) -> Option<(usize, usize)> {
    let (first, second) = match newline {
        Newline::Byte => return rest.iter().position(|&c| c == b'\n').map(|i| (i, 1)),
        Newline::Utf16Le => (0x0A, 0x00),
        Newline::Utf16Be => (0x00, 0x0A),
    };
    let mut i = (start % 2) as usize;
    while i + 1 < rest.len() {
        if rest[i] == first && rest[i + 1] == second {
            return Some((i, 2));
        }
        i += 2;
    }
    None
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
pub type PathFilter = Box<dyn Fn(&Path) -> Result<(), String> + Send>;

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

impl Stream {
    fn checkpoint(&self) -> FileCheckpoint {
        FileCheckpoint {
            path: self.path.clone(),
            dev: self.dev,
            ino: self.ino,
            fingerprint: self.fingerprint,
            fingerprint_len: self.fingerprint_len,
            offset: self.offset,
            skipping_oversized: self.skipping,
        }
    }

    /// Checks that the file was not truncated or rewritten under us (size below what we read,
    /// or, with `prefix`, a changed fingerprint) and extends a short fingerprint. On mismatch
    /// the stream restarts at 0 and the `Truncated` event is returned.
    fn verify(&mut self, prefix: bool, fp_bytes: usize) -> Option<TailEvent> {
        let size = self.file.metadata().ok()?.len();
        let mut changed = size < self.read_pos;
        if !changed && prefix {
            match refresh_fp(&self.file, self.fingerprint, self.fingerprint_len, fp_bytes) {
                Ok(Some((fp, len))) => {
                    if (fp, len) != (self.fingerprint, self.fingerprint_len) {
                        (self.fingerprint, self.fingerprint_len) = (fp, len);
                        self.dirty = true;
                    }
                }
                Ok(None) => changed = true,
                Err(e) => tracing::debug!(path = ?self.path, error = %e, "fingerprint read failed"),
            }
        }
        if !changed {
            return None;
        }
        let ev = TailEvent::Truncated {
            path: self.path.clone(),
            key: self.key.clone(),
            old_offset: self.offset,
        };
        (self.fingerprint, self.fingerprint_len) = fresh_fp(&self.file, fp_bytes);
        self.offset = 0;
        self.read_pos = 0;
        self.pending.clear();
        self.skipping = false;
        self.dirty = true;
        self.last_data = Instant::now();
        Some(ev)
    }
}

/// Reads up to `limit` bytes from the start of the file (fewer at EOF).
fn read_prefix(file: &File, limit: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; limit];
    let mut got = 0;
    while got < limit {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Verifies that the first `len` bytes still hash to `fp` and returns the fingerprint extended
/// to as many bytes as available up to `limit`. `None`: the prefix changed or got shorter.
fn refresh_fp(file: &File, fp: u64, len: u32, limit: usize) -> io::Result<Option<(u64, u32)>> {
    let len = len as usize;
    if len > limit.max(1 << 20) {
        return Ok(None); // implausible (corrupt checkpoint): do not allocate it
    }
    let buf = read_prefix(file, limit.max(len))?;
    if buf.len() < len || xxh3_64(&buf[..len]) != fp {
        return Ok(None);
    }
    Ok(Some((xxh3_64(&buf), buf.len() as u32)))
}

fn fresh_fp(file: &File, limit: usize) -> (u64, u32) {
    refresh_fp(file, xxh3_64(b""), 0, limit)
        .ok()
        .flatten()
        .unwrap_or((xxh3_64(b""), 0))
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '[', '{', '\\'])
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

    /// Matching regular files, sorted by path, with their stream key.
    fn walk(&mut self, ev: &mut Vec<TailEvent>) -> Vec<(PathBuf, String)> {
        let Some(depth) = self.walk_depth else {
            return match fs::metadata(&self.root) {
                Ok(m) if m.is_file() => vec![(self.root.clone(), stream_key(m.dev(), m.ino()))],
                _ => Vec::new(),
            };
        };
        let mut walker = WalkDir::new(&self.root)
            .follow_links(false)
            .sort_by_file_name();
        if let Some(d) = depth {
            walker = walker.max_depth(d);
        }
        let mut out = Vec::new();
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let not_found = e
                        .io_error()
                        .is_some_and(|io| io.kind() == ErrorKind::NotFound);
                    if let (Some(p), false) = (e.path(), not_found)
                        && self.unreadable.insert(p.to_path_buf())
                    {
                        ev.push(TailEvent::Unreadable {
                            path: p.to_path_buf(),
                            error: e.to_string(),
                        });
                    }
                    continue;
                }
            };
            if !self.matcher.is_match(entry.path()) {
                continue;
            }
            // A symlink to a file counts as that file (logs are often symlinked); where it
            // points is checked against the allowlist when it is opened.
            let metadata = if entry.file_type().is_symlink() {
                fs::metadata(entry.path())
            } else if entry.file_type().is_file() {
                entry.metadata().map_err(io::Error::from)
            } else {
                continue;
            };
            if let Ok(m) = metadata
                && m.is_file()
            {
                out.push((entry.into_path(), stream_key(m.dev(), m.ino())));
            }
        }
        out
    }

    fn report_unreadable(&mut self, path: &Path, e: &io::Error, ev: &mut Vec<TailEvent>) {
        if self.unreadable.insert(path.to_path_buf()) {
            ev.push(TailEvent::Unreadable {
                path: path.to_path_buf(),
                error: e.to_string(),
            });
        }
    }

    /// Filter + open. `None` if refused, unreadable, vanished or not a regular file.
    fn open_checked(
        &mut self,
        path: &Path,
        ev: &mut Vec<TailEvent>,
    ) -> Option<(File, fs::Metadata)> {
        let res = fs::canonicalize(path).and_then(|canon| {
            if let Err(reason) = (self.filter)(&canon) {
                return Ok(Err(reason));
            }
            let file = File::open(&canon)?;
            let md = file.metadata()?;
            Ok(Ok((file, md)))
        });
        match res {
            Ok(Ok((file, md))) if md.is_file() => {
                self.unreadable.remove(path);
                self.refused.remove(path);
                Some((file, md))
            }
            Ok(Ok(_)) => None,
            Ok(Err(reason)) => {
                if self.refused.insert(path.to_path_buf()) {
                    ev.push(TailEvent::Refused {
                        path: path.to_path_buf(),
                        reason,
                    });
                }
                None
            }
            Err(e) if e.kind() == ErrorKind::NotFound => None, // vanished since the walk
            Err(e) => {
                self.report_unreadable(path, &e, ev);
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_stream(
        &mut self,
        path: &Path,
        file: File,
        md: &fs::Metadata,
        fp: (u64, u32),
        offset: u64,
        skipping: bool,
        draining: bool,
        dirty: bool,
    ) {
        let key = stream_key(md.dev(), md.ino());
        if self.streams.contains_key(&key) {
            return;
        }
        self.order.push(key.clone());
        self.streams.insert(
            key.clone(),
            Stream {
                key,
                path: path.to_path_buf(),
                dev: md.dev(),
                ino: md.ino(),
                file,
                fingerprint: fp.0,
                fingerprint_len: fp.1,
                offset,
                read_pos: offset,
                pending: Vec::new(),
                skipping,
                draining,
                last_data: Instant::now(),
                dirty,
            },
        );
    }

    /// A walked file with no open stream: resume its checkpoint or start a new stream.
    fn open_found(&mut self, path: &Path, newest: bool, ev: &mut Vec<TailEvent>) {
        let Some((file, md)) = self.open_checked(path, ev) else {
            return;
        };
        // Identity of what we actually opened (the path may have changed since the walk).
        let key = stream_key(md.dev(), md.ino());
        if self.streams.contains_key(&key) {
            return;
        }
        let fpb = self.opts.fingerprint_bytes;
        // A resumed checkpoint that did not change needs no new checkpoint.
        let (offset, skipping, fp, dirty) = match self.restored.remove(&key) {
            Some(cp) => match refresh_fp(&file, cp.fingerprint, cp.fingerprint_len, fpb) {
                Ok(Some(fp)) => {
                    let same = cp.path == path && fp == (cp.fingerprint, cp.fingerprint_len);
                    (cp.offset, cp.skipping_oversized, fp, !same)
                }
                Ok(None) => {
                    ev.push(if cp.path == path {
                        TailEvent::Truncated {
                            path: path.to_path_buf(),
                            key: key.clone(),
                            old_offset: cp.offset,
                        }
                    } else {
                        TailEvent::Replaced {
                            path: path.to_path_buf(),
                            key: key.clone(),
                        }
                    });
                    (0, false, fresh_fp(&file, fpb), true)
                }
                Err(e) => {
                    self.report_unreadable(path, &e, ev);
                    self.restored.insert(key, cp);
                    return;
                }
            },
            None => (
                if newest { md.len() } else { 0 },
                false,
                fresh_fp(&file, fpb),
                true,
            ),
        };
        ev.push(TailEvent::Opened {
            path: path.to_path_buf(),
            key,
            offset,
        });
        self.add_stream(path, file, &md, fp, offset, skipping, false, dirty);
    }

    /// A restored checkpoint whose file is not matched by the glob: look for the same inode
    /// in its old directory (rotated while we were down) and drain it. Returns false if the
    /// file is gone; true if resumed or to be retried (refused/unreadable).
    fn resume_rotated(&mut self, key: &str, cp: &FileCheckpoint, ev: &mut Vec<TailEvent>) -> bool {
        let Some(dir) = cp.path.parent() else {
            return false;
        };
        let Ok(rd) = fs::read_dir(dir) else {
            return false;
        };
        let found = rd.flatten().map(|e| e.path()).find(|p| {
            fs::symlink_metadata(p)
                .is_ok_and(|m| m.is_file() && m.dev() == cp.dev && m.ino() == cp.ino)
        });
        let Some(path) = found else { return false };
        let Some((file, md)) = self.open_checked(&path, ev) else {
            self.restored.insert(key.to_string(), cp.clone());
            return true;
        };
        if (md.dev(), md.ino()) != (cp.dev, cp.ino) {
            return false;
        }
        match refresh_fp(
            &file,
            cp.fingerprint,
            cp.fingerprint_len,
            self.opts.fingerprint_bytes,
        ) {
            Ok(Some(fp)) => {
                ev.push(TailEvent::Opened {
                    path: path.clone(),
                    key: key.to_string(),
                    offset: cp.offset,
                });
                ev.push(TailEvent::Rotated {
                    old_path: cp.path.clone(),
                    key: key.to_string(),
                });
                self.add_stream(
                    &path,
                    file,
                    &md,
                    fp,
                    cp.offset,
                    cp.skipping_oversized,
                    true,
                    true,
                );
                true
            }
            _ => false,
        }
    }

    /// Walks the glob, matches files to streams and detects rotation, truncation, deletion
    /// and inode reuse. Returns the events (the caller logs and counts them).
    pub fn scan(&mut self) -> Vec<TailEvent> {
        let mut ev = Vec::new();
        let found = self.walk(&mut ev);
        let newest = self.first_run && !self.scanned && self.opts.read_from == ReadFrom::Newest;
        let fpb = self.opts.fingerprint_bytes;
        // Group paths by file (hard links): one stream per (dev, ino).
        let mut by_key: HashMap<String, Vec<PathBuf>> = HashMap::new();
        let mut keys = Vec::new();
        for (path, key) in found {
            let paths = by_key.entry(key.clone()).or_default();
            if paths.is_empty() {
                keys.push(key);
            }
            paths.push(path);
        }
        // Active streams no longer found: rotated away or deleted; drain them.
        for key in &self.order {
            let s = self.streams.get_mut(key).expect("order in sync");
            if s.draining || by_key.contains_key(key) {
                continue;
            }
            let at_path = match fs::symlink_metadata(&s.path) {
                Ok(m) => Some(stream_key(m.dev(), m.ino())),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(_) => continue, // cannot tell (EACCES...): keep reading it as active
            };
            if at_path.as_deref() == Some(key.as_str()) {
                continue; // still there: the walk missed it (I/O error); do not drop it
            }
            let linked = s.file.metadata().is_ok_and(|m| m.nlink() > 0);
            ev.push(if at_path.is_some() || linked {
                TailEvent::Rotated {
                    old_path: s.path.clone(),
                    key: key.clone(),
                }
            } else {
                TailEvent::Deleted {
                    path: s.path.clone(),
                    key: key.clone(),
                }
            });
            s.draining = true;
            s.last_data = Instant::now();
        }
        for key in &keys {
            let paths = &by_key[key];
            if let Some(s) = self.streams.get_mut(key) {
                if !paths.contains(&s.path) {
                    ev.push(TailEvent::Renamed {
                        from: s.path.clone(),
                        to: paths[0].clone(),
                        key: key.clone(),
                    });
                    s.path = paths[0].clone();
                    s.dirty = true;
                }
                s.draining = false; // back under the glob: a normal active stream again
                ev.extend(s.verify(true, fpb));
            } else {
                self.open_found(&paths[0], newest, &mut ev);
            }
        }
        // Restored checkpoints not found by the glob.
        let mut unmatched: Vec<String> = self
            .restored
            .keys()
            .filter(|k| !by_key.contains_key(*k))
            .cloned()
            .collect();
        unmatched.sort();
        for key in unmatched {
            let cp = self.restored.remove(&key).expect("key from map");
            if !self.resume_rotated(&key, &cp, &mut ev) {
                ev.push(TailEvent::Lost {
                    path: cp.path,
                    key: key.clone(),
                    offset: cp.offset,
                });
                self.pending_forget.push(key);
            }
        }
        self.scanned = true;
        ev
    }

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

/// Emits one line starting at `s.offset` (strips one "\r", skips empty lines, cuts long ones).
fn emit(s: &Stream, line: &[u8], b: &mut Batch, max: usize) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return;
    }
    let truncated = line.len() > max;
    b.truncated_lines += truncated as u64;
    b.lines.push(Line {
        key: s.key.clone(),
        path: s.path.clone(),
        offset: s.offset,
        bytes: line[..line.len().min(max)].to_vec(),
        truncated,
    });
}

/// One read from one stream; parses as many lines as the limits allow and advances
/// `read_pos` by exactly the bytes consumed. Returns whether anything happened.
fn read_step(
    s: &mut Stream,
    buf: &mut [u8],
    opts: &TailOptions,
    b: &mut Batch,
    max_lines: usize,
    events: &mut Vec<TailEvent>,
) -> bool {
    let n = match s.file.read_at(buf, s.read_pos) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::Interrupted => return true,
        Err(e) => {
            tracing::warn!(path = ?s.path, error = %e, "read failed");
            return false;
        }
    };
    if n == 0 {
        // EOF: a file now shorter than what we read was truncated (copytruncate).
        return match s.verify(false, opts.fingerprint_bytes) {
            Some(e) => {
                events.push(e);
                true
            }
            None => false,
        };
    }
    s.last_data = Instant::now();
    if (s.fingerprint_len as usize) < opts.fingerprint_bytes {
        // Young file: extend the fingerprint, which also catches truncate-and-refill early.
        if let Some(e) = s.verify(true, opts.fingerprint_bytes) {
            events.push(e);
            return true;
        }
    }
    let max = opts.max_line_bytes;
    let data = &buf[..n];
    let mut pos = 0;
    while pos < n && b.lines.len() < max_lines {
        let rest = &data[pos..];
        if let Some((i, newline_len)) = find_newline(rest, s.read_pos, opts.newline) {
            if s.skipping {
                s.skipping = false;
            } else if s.pending.is_empty() {
                emit(s, &rest[..i], b, max);
            } else {
                let mut line = std::mem::take(&mut s.pending);
                line.extend_from_slice(&rest[..i]);
                emit(s, &line, b, max);
                line.clear();
                s.pending = line;
            }
            pos += i + newline_len;
            s.read_pos += (i + newline_len) as u64;
            s.offset = s.read_pos;
            s.dirty = true;
        } else {
            // A UTF-16 newline may straddle two reads: keep a lone odd byte for the next one.
            let take = match opts.newline {
                Newline::Byte => rest.len(),
                _ => rest.len() - ((s.read_pos + rest.len() as u64) % 2) as usize,
            };
            let rest = &rest[..take];
            pos += take;
            s.read_pos += rest.len() as u64;
            if s.skipping {
                s.offset = s.read_pos;
                s.dirty = true;
            } else {
                s.pending.extend_from_slice(rest);
                // Longer than max even if it ends in "\r": emit the head, discard the rest.
                if s.pending.len() > max + 1 {
                    let line = std::mem::take(&mut s.pending);
                    emit(s, &line[..max + 2], b, max); // >= max+1 bytes even without a "\r"
                    s.skipping = true;
                    s.offset = s.read_pos;
                    s.dirty = true;
                }
            }
            // No newline in the rest of this read.
            break;
        }
    }
    b.bytes_read += pos as u64;
    // Progress, unless a UTF-16 reader is waiting for the second byte of a code unit.
    pos > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::thread::sleep;

    const IDLE: Duration = Duration::from_millis(400);

    fn fast() -> TailOptions {
        TailOptions {
            partial_line_timeout: Duration::from_millis(300),
            ..TailOptions::default()
        }
    }
    fn allow() -> PathFilter {
        Box::new(|_| Ok(()))
    }
    fn tailer(
        pat: &Path,
        opts: TailOptions,
        cps: Vec<(String, FileCheckpoint)>,
        first_run: bool,
    ) -> Tailer {
        Tailer::new(pat.to_str().unwrap(), opts, cps, first_run, allow()).unwrap()
    }
    fn append(p: &Path, s: &str) {
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
            .write_all(s.as_bytes())
            .unwrap();
    }
    fn text(b: &Batch) -> Vec<String> {
        b.lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect()
    }
    /// Polls until a poll yields nothing; returns all line texts.
    fn drain(t: &mut Tailer) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let b = t.poll(1000, 1 << 20);
            if b.lines.is_empty() {
                return out;
            }
            out.extend(text(&b));
        }
    }
    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }
    fn key_of(p: &Path) -> String {
        let m = fs::metadata(p).unwrap();
        stream_key(m.dev(), m.ino())
    }

    #[test]
    fn append_and_offsets() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        append(&p, "one\n\ntwo\r\n");
        let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
        let ev = t.scan();
        assert!(
            matches!(&ev[..], [TailEvent::Opened { offset: 0, .. }]),
            "{ev:?}"
        );
        let b = t.poll(100, 1 << 20);
        assert_eq!(text(&b), v(&["one", "two"]));
        assert_eq!((b.lines[0].offset, b.lines[1].offset), (0, 5));
        assert_eq!(b.checkpoints[0].1.offset, 10);
        assert_eq!(b.bytes_read, 10);
        append(&p, "three\n");
        let b = t.poll(100, 1 << 20);
        assert_eq!(text(&b), v(&["three"]));
        assert_eq!(b.lines[0].offset, 10);
        assert_eq!(t.status()[0].state, "active");
        assert_eq!(t.watch_root(), d.path());
    }

    #[test]
    fn partial_line_held_completed_and_flushed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        append(&p, "abc\npart");
        let mut t = tailer(&p, fast(), vec![], false);
        t.scan();
        let b = t.poll(100, 1 << 20);
        assert_eq!(text(&b), v(&["abc"]));
        assert_eq!(b.checkpoints[0].1.offset, 4); // partial line not counted
        append(&p, "ial\nlast");
        let b = t.poll(100, 1 << 20);
        assert_eq!(text(&b), v(&["partial"]));
        assert_eq!(b.lines[0].offset, 4);
        assert!(t.poll(100, 1 << 20).lines.is_empty());
        sleep(IDLE);
        let b = t.poll(100, 1 << 20);
        assert_eq!(text(&b), v(&["last"]));
        assert_eq!(b.checkpoints[0].1.offset, 16);
        append(&p, "more\n");
        assert_eq!(drain(&mut t), v(&["more"]));
    }

    #[test]
    fn rename_rotation_drains_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        let mut w = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        w.write_all(b"1\n2\n").unwrap();
        let mut t = tailer(&p, fast(), vec![], false);
        t.scan();
        assert_eq!(drain(&mut t), v(&["1", "2"]));
        let old_key = key_of(&p);
        fs::rename(&p, d.path().join("app.log.1")).unwrap();
        w.write_all(b"3\n").unwrap(); // written to the old file after the rename
        append(&p, "a\n");
        let ev = t.scan();
        assert!(
            ev.contains(&TailEvent::Rotated {
                old_path: p.clone(),
                key: old_key.clone()
            }),
            "{ev:?}"
        );
        assert!(
            ev.iter()
                .any(|e| matches!(e, TailEvent::Opened { offset: 0, .. }))
        );
        let mut got = drain(&mut t);
        w.write_all(b"4\n").unwrap();
        append(&p, "b\n");
        got.extend(drain(&mut t));
        got.sort();
        assert_eq!(got, v(&["3", "4", "a", "b"]));
        assert!(t.status().iter().any(|s| s.state == "draining"));
        sleep(IDLE);
        let b = t.poll(100, 1 << 20);
        assert_eq!(b.forget, vec![old_key.clone()]);
        assert!(b.checkpoints.iter().all(|(k, _)| *k != old_key));
        assert_eq!(
            t.take_events(),
            vec![TailEvent::Closed {
                path: p.clone(),
                key: old_key
            }]
        );
        assert_eq!(t.status().len(), 1);
    }

    #[test]
    fn rotation_within_glob_is_rename() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.log");
        append(&a, "1\n2\n");
        let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
        t.scan();
        assert_eq!(drain(&mut t), v(&["1", "2"]));
        let key = key_of(&a);
        let b2 = d.path().join("b.log");
        fs::rename(&a, &b2).unwrap();
        append(&b2, "3\n");
        append(&a, "new\n");
        let ev = t.scan();
        assert!(
            ev.contains(&TailEvent::Renamed {
                from: a.clone(),
                to: b2.clone(),
                key: key.clone()
            }),
            "{ev:?}"
        );
        let mut got = drain(&mut t);
        got.sort();
        assert_eq!(got, v(&["3", "new"]));
        sleep(IDLE);
        let b = t.poll(100, 1 << 20);
        assert!(b.forget.is_empty() && b.lines.is_empty());
        assert!(t.status().iter().all(|s| s.state == "active"));
    }

    #[test]
    fn copytruncate() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, "old line 1\nold line 2\n");
        let mut t = tailer(&p, fast(), vec![], false);
        t.scan();
        assert_eq!(drain(&mut t), v(&["old line 1", "old line 2"]));
        fs::copy(&p, d.path().join("app.log.1")).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, "n1\nn2\n");
        let ev = t.scan();
        assert!(
            matches!(&ev[..], [TailEvent::Truncated { old_offset: 22, .. }]),
            "{ev:?}"
        );
        assert_eq!(drain(&mut t), v(&["n1", "n2"]));
        // Truncation noticed by poll alone (no scan).
        fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, "x\n");
        assert_eq!(drain(&mut t), v(&["x"]));
        assert!(matches!(
            &t.take_events()[..],
            [TailEvent::Truncated { old_offset: 6, .. }]
        ));
    }

    #[test]
    fn truncate_and_refill_past_offset_detected_by_fingerprint() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, "aaaa\n");
        let mut t = tailer(&p, fast(), vec![], false);
        t.scan();
        assert_eq!(drain(&mut t), v(&["aaaa"]));
        fs::write(&p, "bbbbbbbbbb\ncc\n").unwrap(); // truncate + refill past offset 5
        let ev = t.scan();
        assert!(
            matches!(&ev[..], [TailEvent::Truncated { old_offset: 5, .. }]),
            "{ev:?}"
        );
        assert_eq!(drain(&mut t), v(&["bbbbbbbbbb", "cc"]));
        // Same without a scan: caught while extending the young file's fingerprint.
        fs::write(&p, "dddddddddddddddd\nee\n").unwrap();
        assert_eq!(drain(&mut t), v(&["dddddddddddddddd", "ee"]));
    }

    #[test]
    fn deletion_drained_then_closed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        let mut w = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        w.write_all(b"1\n").unwrap();
        let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
        t.scan();
        assert_eq!(drain(&mut t), v(&["1"]));
        let key = key_of(&p);
        fs::remove_file(&p).unwrap();
        w.write_all(b"2\n3").unwrap();
        assert_eq!(
            t.scan(),
            vec![TailEvent::Deleted {
                path: p.clone(),
                key: key.clone()
            }]
        );
        assert_eq!(drain(&mut t), v(&["2"]));
        sleep(IDLE);
        let b = t.poll(100, 1 << 20);
        assert_eq!(text(&b), v(&["3"])); // partial line flushed before closing
        assert_eq!(b.forget, vec![key]);
        assert!(t.status().is_empty());
    }

    #[test]
    fn inode_reuse_reads_from_zero() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new.log");
        append(&p, "fresh\n");
        let m = fs::metadata(&p).unwrap();
        let key = stream_key(m.dev(), m.ino());
        let cp = FileCheckpoint {
            path: d.path().join("old.log"),
            dev: m.dev(),
            ino: m.ino(),
            fingerprint: xxh3_64(b"other c"),
            fingerprint_len: 7,
            offset: 3,
            skipping_oversized: false,
        };
        let mut t = tailer(
            &d.path().join("*.log"),
            fast(),
            vec![(key.clone(), cp)],
            false,
        );
        let ev = t.scan();
        assert!(
            ev.contains(&TailEvent::Replaced {
                path: p.clone(),
                key: key.clone()
            }),
            "{ev:?}"
        );
        let b = t.poll(100, 1 << 20);
        assert_eq!(text(&b), v(&["fresh"]));
        assert_eq!(b.checkpoints[0].1.fingerprint, xxh3_64(b"fresh\n"));
    }

    #[test]
    fn file_appearing_later_and_missing_root() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        let mut t = tailer(
            &sub.join("*.log"),
            TailOptions {
                read_from: ReadFrom::Newest,
                ..fast()
            },
            vec![],
            true,
        );
        assert!(t.scan().is_empty());
        assert_eq!(t.watch_root(), sub);
        fs::create_dir(&sub).unwrap();
        append(&sub.join("x.log"), "hello\n");
        append(&sub.join("x.txt"), "no\n");
        let ev = t.scan();
        assert!(
            matches!(&ev[..], [TailEvent::Opened { offset: 0, .. }]),
            "{ev:?}"
        );
        assert_eq!(drain(&mut t), v(&["hello"]));
    }

    #[test]
    fn oversized_lines_and_restart_while_skipping() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        let long = "x".repeat(10_000);
        append(&p, &format!("{long}\nshort\n{long}\r\nok\n"));
        let opts = TailOptions {
            max_line_bytes: 100,
            read_buffer_bytes: 256,
            ..fast()
        };
        let mut t = tailer(&p, opts.clone(), vec![], false);
        t.scan();
        let b = t.poll(1, 300); // stops in the middle of skipping the first long line
        assert_eq!(b.lines.len(), 1);
        assert!(b.lines[0].truncated && b.lines[0].bytes.len() == 100);
        assert_eq!(b.truncated_lines, 1);
        let cp = b.checkpoints.clone();
        assert!(
            cp[0].1.skipping_oversized && cp[0].1.offset == 256,
            "{cp:?}"
        );
        assert!(
            t.streams
                .values()
                .all(|s| s.pending.capacity() <= 100 + 2 + 256)
        );
        // Restart mid-skip: the rest of the long line is discarded, not emitted.
        let mut t = tailer(&p, opts, cp, false);
        t.scan();
        let mut lines = Vec::new();
        loop {
            let b = t.poll(1000, 1 << 20);
            if b.lines.is_empty() {
                break;
            }
            lines.extend(b.lines);
        }
        let got: Vec<_> = lines
            .iter()
            .map(|l| {
                (
                    String::from_utf8_lossy(&l.bytes).len(),
                    l.truncated,
                    l.offset,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![(5, false, 10_001), (100, true, 10_007), (2, false, 20_009)]
        );
    }

    /// Restarting after every batch (new Tailer from the merged checkpoints) must yield
    /// exactly the file's lines, with correct offsets, whatever the batch boundaries.
    #[test]
    fn utf16_newlines_at_even_offsets_even_across_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u16.log");
        // "Ċ" is U+010A: its little-endian low byte is 0x0A, which is not a newline.
        let text = "\u{feff}first Ċ line\r\nsecond 行\nthird";
        let mut bytes = Vec::new();
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        for buffer in [3, 7, 64] {
            let opts = TailOptions {
                newline: Newline::Utf16Le,
                read_buffer_bytes: buffer,
                ..fast()
            };
            let mut t = tailer(&path, opts, vec![], true);
            t.scan();
            let batch = t.poll(100, 1 << 20);
            let lines: Vec<String> = batch
                .lines
                .iter()
                .map(|l| {
                    let units: Vec<u16> = l
                        .bytes
                        .chunks(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16(&units).unwrap()
                })
                .collect();
            assert_eq!(
                lines,
                ["\u{feff}first Ċ line\r", "second 行"],
                "buffer {buffer}"
            );
            let before_second =
                text.split("second").next().unwrap().encode_utf16().count() as u64 * 2;
            assert_eq!(batch.lines[1].offset, before_second, "buffer {buffer}");
        }
    }

    #[test]
    fn restart_after_every_batch_is_exact() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        let mut content = String::new();
        for i in 0..120 {
            match i % 7 {
                0 => content.push('\n'),
                1 => content.push_str(&format!("crlf {i}\r\n")),
                _ => content.push_str(&format!("line {i} {}\n", "y".repeat(i % 23))),
            }
        }
        let (first, second) = content.split_at(content.len() / 2 + 3); // split mid-line
        let expected: Vec<String> = content
            .split('\n')
            .map(|l| l.trim_end_matches('\r').to_string())
            .filter(|l| !l.is_empty())
            .collect();
        for (max_lines, max_bytes, rbuf) in [(3, 1 << 20, 7), (1, 10, 64), (5, 33, 1)] {
            fs::write(&p, first).unwrap();
            let opts = TailOptions {
                read_buffer_bytes: rbuf,
                partial_line_timeout: Duration::from_secs(3600),
                ..fast()
            };
            let mut cps: HashMap<String, FileCheckpoint> = HashMap::new();
            let mut got = Vec::new();
            let mut appended = false;
            for _ in 0..10_000 {
                let mut t = tailer(&p, opts.clone(), cps.clone().into_iter().collect(), false);
                t.scan();
                let b = t.poll(max_lines, max_bytes);
                for l in &b.lines {
                    let at = l.offset as usize;
                    assert!(content.as_bytes()[at..].starts_with(&l.bytes));
                    got.push(String::from_utf8(l.bytes.clone()).unwrap());
                }
                let idle = b.lines.is_empty() && b.checkpoints.is_empty();
                cps.extend(b.checkpoints);
                if idle && appended {
                    break;
                }
                if idle {
                    append(&p, second);
                    appended = true;
                }
            }
            assert_eq!(
                got, expected,
                "max_lines={max_lines} max_bytes={max_bytes} rbuf={rbuf}"
            );
        }
    }

    #[test]
    fn read_from_newest_only_on_first_run() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log");
        append(&p, "old\n");
        let newest = TailOptions {
            read_from: ReadFrom::Newest,
            ..fast()
        };
        let mut t = tailer(&p, newest.clone(), vec![], true);
        assert!(matches!(
            &t.scan()[..],
            [TailEvent::Opened { offset: 4, .. }]
        ));
        append(&p, "new\n");
        let b = t.poll(100, 1 << 20);
        assert_eq!(text(&b), v(&["new"]));
        let mut t = tailer(&p, newest, vec![], false);
        t.scan();
        assert_eq!(drain(&mut t), v(&["old", "new"]));
        assert_eq!(
            serde_json::to_string(&ReadFrom::Newest).unwrap(),
            "\"newest\""
        );
    }

    #[test]
    fn filter_refusal_reported_once() {
        let d = tempfile::tempdir().unwrap();
        append(&d.path().join("secret.log"), "s\n");
        append(&d.path().join("ok.log"), "o\n");
        let filter: PathFilter = Box::new(|p| {
            if p.to_string_lossy().contains("secret") {
                Err("denied".into())
            } else {
                Ok(())
            }
        });
        let pat = d.path().join("*.log");
        let mut t = Tailer::new(pat.to_str().unwrap(), fast(), vec![], false, filter).unwrap();
        let ev = t.scan();
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(e, TailEvent::Refused { reason, .. } if reason == "denied"))
                .count(),
            1
        );
        assert!(t.scan().is_empty());
        assert_eq!(drain(&mut t), v(&["o"]));
    }

    #[test]
    fn recursive_glob() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/b")).unwrap();
        append(&d.path().join("top.log"), "top\n");
        append(&d.path().join("a/b/deep.log"), "deep\n");
        append(&d.path().join("a/skip.txt"), "no\n");
        let mut t = tailer(&d.path().join("**/*.log"), fast(), vec![], false);
        assert!(t.watch_recursive());
        assert_eq!(t.scan().len(), 2);
        let mut got = drain(&mut t);
        got.sort();
        assert_eq!(got, v(&["deep", "top"]));
        // `*` does not cross `/`.
        let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
        assert_eq!(t.scan().len(), 1);
        assert_eq!(t.watch_root(), d.path());
        // One level: the root's own events suffice (no recursive watch into unreadable dirs).
        assert!(!t.watch_recursive());
        assert!(tailer(&d.path().join("*/x.log"), fast(), vec![], false).watch_recursive());
        assert!(matches!(
            Tailer::new("rel/*.log", fast(), vec![], false, allow()),
            Err(TailError::NotAbsolute(_))
        ));
        assert!(matches!(
            Tailer::new("/x/[.log", fast(), vec![], false, allow()),
            Err(TailError::Pattern { .. })
        ));
    }

    #[test]
    fn restart_resumes_and_reports_lost() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.log");
        append(&p, "1\n2\n");
        let gone = d.path().join("gone.log");
        append(&gone, "g\n");
        let mut t = tailer(&d.path().join("*.log"), fast(), vec![], false);
        t.scan();
        let b = t.poll(100, 1 << 20);
        assert_eq!(b.lines.len(), 3);
        let cps = b.checkpoints;
        let gone_key = key_of(&gone);
        drop(t);
        // While down: gone.log deleted, app.log rotated out of the glob with one more line.
        append(&p, "3\n");
        fs::rename(&p, d.path().join("app.log.1")).unwrap();
        append(&p, "new\n");
        fs::remove_file(&gone).unwrap(); // after creating app.log, so its inode is not reused
        let mut t = tailer(&d.path().join("*.log"), fast(), cps, false);
        let ev = t.scan();
        assert!(
            ev.contains(&TailEvent::Lost {
                path: gone.clone(),
                key: gone_key.clone(),
                offset: 2
            }),
            "{ev:?}"
        );
        assert!(
            ev.iter().any(|e| matches!(e, TailEvent::Rotated { .. })),
            "{ev:?}"
        );
        let b = t.poll(100, 1 << 20);
        assert_eq!(b.forget, vec![gone_key]);
        let mut got = text(&b);
        got.sort();
        assert_eq!(got, v(&["3", "new"]));
    }
}
