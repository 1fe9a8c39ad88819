//! Multiline records (`reader.head_pattern`): a line matching the pattern starts a record, the
//! lines after it (a stack trace) are joined to it with `\n`.
//!
//! The joiner sits between the tailer and the parser, per file stream. A record still open at
//! the end of a batch stays in memory, so the checkpoint written for that stream points at the
//! *start* of the open record, not at what was read: after a crash the record is read again
//! whole, never half-indexed. An open record is closed by the next head line, by its file
//! being closed, or after `idle` without new lines; it is capped at `max_bytes` (cut, flagged).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use regex::Regex;

use super::tail::{Batch, FileCheckpoint, Line};

struct Open {
    path: PathBuf,
    offset: u64,
    bytes: Vec<u8>,
    truncated: bool,
    last: Instant,
}

pub struct Joiner {
    head: Regex,
    max_bytes: usize,
    idle: Duration,
    open: HashMap<String, Open>,
    /// The newest checkpoint the tailer reported per stream.
    latest: HashMap<String, FileCheckpoint>,
}

impl Joiner {
    pub fn new(head_pattern: &str, max_bytes: usize, idle: Duration) -> Result<Joiner, String> {
        let head = super::parse::compile_regex("reader.head_pattern", head_pattern)?;
        Ok(Joiner {
            head,
            max_bytes,
            idle,
            open: HashMap::new(),
            latest: HashMap::new(),
        })
    }

    fn close(&mut self, key: &str, out: &mut Vec<Line>) {
        if let Some(open) = self.open.remove(key) {
            out.push(Line {
                key: key.to_string(),
                path: open.path,
                offset: open.offset,
                bytes: open.bytes,
                truncated: open.truncated,
            });
        }
    }

    /// The checkpoint to store for a stream: the tailer's, rewound to an open record's start.
    fn checkpoint(&self, key: &str) -> Option<(String, FileCheckpoint)> {
        let mut checkpoint = self.latest.get(key)?.clone();
        if let Some(open) = self.open.get(key) {
            checkpoint.offset = open.offset;
            checkpoint.skipping_oversized = false;
        }
        Some((key.to_string(), checkpoint))
    }

    /// Join the lines of a tailer batch into records.
    pub fn push(&mut self, batch: Batch) -> Batch {
        let mut out = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        for (key, checkpoint) in batch.checkpoints {
            touched.push(key.clone());
            self.latest.insert(key, checkpoint);
        }
        for line in batch.lines {
            let text = String::from_utf8_lossy(&line.bytes);
            let starts_record = self.head.is_match(&text);
            if !touched.contains(&line.key) {
                touched.push(line.key.clone());
            }
            match self.open.get_mut(&line.key) {
                Some(open) if !starts_record => {
                    if open.bytes.len() + 1 + line.bytes.len() > self.max_bytes {
                        open.truncated = true;
                        let room = self.max_bytes.saturating_sub(open.bytes.len() + 1);
                        if room > 0 {
                            open.bytes.push(b'\n');
                            open.bytes
                                .extend_from_slice(&line.bytes[..room.min(line.bytes.len())]);
                        }
                    } else {
                        open.bytes.push(b'\n');
                        open.bytes.extend_from_slice(&line.bytes);
                    }
                    open.truncated |= line.truncated;
                    open.last = Instant::now();
                }
                _ => {
                    self.close(&line.key, &mut out);
                    self.open.insert(
                        line.key.clone(),
                        Open {
                            path: line.path,
                            offset: line.offset,
                            bytes: line.bytes,
                            truncated: line.truncated,
                            last: Instant::now(),
                        },
                    );
                }
            }
        }
        for key in &batch.forget {
            self.close(key, &mut out);
            self.latest.remove(key);
        }
        let checkpoints = touched
            .iter()
            .filter(|key| !batch.forget.contains(key))
            .filter_map(|key| self.checkpoint(key))
            .collect();
        Batch {
            lines: out,
            checkpoints,
            forget: batch.forget,
            bytes_read: batch.bytes_read,
            truncated_lines: batch.truncated_lines,
        }
    }

    /// Close records that saw no new line for `idle`; their streams' checkpoints move forward.
    pub fn flush_idle(&mut self) -> Batch {
        let idle: Vec<String> = self
            .open
            .iter()
            .filter(|(_, open)| open.last.elapsed() >= self.idle)
            .map(|(key, _)| key.clone())
            .collect();
        let mut lines = Vec::new();
        for key in &idle {
            self.close(key, &mut lines);
        }
        let checkpoints = idle.iter().filter_map(|key| self.checkpoint(key)).collect();
        Batch {
            lines,
            checkpoints,
            ..Batch::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(offset: u64, text: &str) -> Line {
        Line {
            key: "s".into(),
            path: "/x".into(),
            offset,
            bytes: text.as_bytes().to_vec(),
            truncated: false,
        }
    }

    fn checkpoint(offset: u64) -> FileCheckpoint {
        FileCheckpoint {
            path: "/x".into(),
            dev: 1,
            ino: 2,
            fingerprint: 3,
            fingerprint_len: 4,
            offset,
            skipping_oversized: false,
        }
    }

    #[test]
    fn joins_continuations_and_holds_the_checkpoint_at_the_open_record() {
        let mut joiner = Joiner::new(r"^\d{4}-", 1 << 20, Duration::from_millis(50)).unwrap();
        let out = joiner.push(Batch {
            lines: vec![
                line(0, "2026-01-15 ERROR boom"),
                line(22, "  at a.b(C.java:1)"),
                line(41, "2026-01-15 INFO next"),
            ],
            checkpoints: vec![("s".into(), checkpoint(62))],
            ..Batch::default()
        });
        assert_eq!(out.lines.len(), 1);
        assert_eq!(
            out.lines[0].bytes,
            b"2026-01-15 ERROR boom\n  at a.b(C.java:1)"
        );
        assert_eq!(
            out.checkpoints[0].1.offset, 41,
            "rewound to the open record"
        );
        std::thread::sleep(Duration::from_millis(60));
        let flushed = joiner.flush_idle();
        assert_eq!(flushed.lines[0].bytes, b"2026-01-15 INFO next");
        assert_eq!(
            flushed.checkpoints[0].1.offset, 62,
            "everything read is now emitted"
        );
    }

    #[test]
    fn records_are_capped() {
        let mut joiner = Joiner::new("^START", 20, Duration::from_secs(1)).unwrap();
        joiner.push(Batch {
            lines: vec![line(0, "START 1234567890"), line(17, "continuation line")],
            ..Batch::default()
        });
        let out = joiner.push(Batch {
            lines: vec![line(35, "START next")],
            ..Batch::default()
        });
        assert_eq!(out.lines[0].bytes.len(), 20);
        assert!(out.lines[0].truncated);
    }
}
