//! A runner's senders, logkit's word for where records go: `local` (the node's queue and
//! index, the default when a config names none), `discard` (records are read, parsed and
//! counted, then dropped: `lograft_runner_dropped_total{reason="discard_sender"}`) and `file`
//! (each record appended as one JSON line to `file_send_path`).
//!
//! The file sender writes before the batch's checkpoints are committed, so after a crash the
//! lines of the last batch may be written again: it is at-least-once, where the local sender
//! is exactly-once. Its path was checked against `collect.write_paths` when the config was
//! accepted; it is checked again on the opened file (symlinks resolved), as reads are.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::allowlist::Allowlist;
use super::config::RunnerConfig;
use crate::record::Record;

pub struct Senders {
    /// Whether records go to the node's queue.
    pub local: bool,
    files: Vec<FileSender>,
}

struct FileSender {
    path: PathBuf,
    file: Option<File>,
}

impl Senders {
    pub fn new(config: &RunnerConfig) -> Senders {
        let local =
            config.senders.is_empty() || config.senders.iter().any(|s| s.sender_type == "local");
        let files = config
            .senders
            .iter()
            .filter(|s| s.sender_type == "file")
            .filter_map(|s| s.options.get("file_send_path").and_then(Value::as_str))
            .map(|path| FileSender {
                path: PathBuf::from(
                    super::allowlist::normalize_lexically(path).unwrap_or_else(|| path.into()),
                ),
                file: None,
            })
            .collect();
        Senders { local, files }
    }

    /// Send `records` to the file senders. An error stops the batch (the runner restarts from
    /// its checkpoints and sends it again).
    pub fn send_to_files(
        &mut self,
        records: &[Record],
        allowlist: &Allowlist,
    ) -> anyhow::Result<()> {
        if self.files.is_empty() || records.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for record in records {
            serde_json::to_writer(&mut text, &Value::Object(point(record)))?;
            text.push(b'\n');
        }
        for sender in &mut self.files {
            if sender.file.is_none() {
                sender.file = Some(open_for_append(&sender.path, allowlist)?);
            }
            let file = sender.file.as_mut().expect("opened above");
            if let Err(err) = file.write_all(&text).and_then(|()| file.sync_data()) {
                sender.file = None;
                anyhow::bail!("file sender {}: {err}", sender.path.display());
            }
        }
        Ok(())
    }
}

/// Open `path` to append, refusing a symlink as the last component, and check the file it
/// really is against `collect.write_paths`.
fn open_for_append(path: &Path, allowlist: &Allowlist) -> anyhow::Result<File> {
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| anyhow::anyhow!("file sender {}: {err}", path.display()))?;
    let real = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ))
    .unwrap_or_else(|_| path.to_path_buf());
    allowlist
        .allows_write(&real)
        .map_err(|reason| anyhow::anyhow!("file sender: {reason}"))?;
    Ok(file)
}

/// A record as one flat object, as logkit's senders and parser preview show it: the parsed
/// fields, with the message (`raw` for unparsed text), level and time beside them.
pub fn point(record: &Record) -> Map<String, Value> {
    let mut point = match &record.fields {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    if !record.message.is_empty() && !point.contains_key("message") {
        let key = if point.is_empty() { "raw" } else { "message" };
        point.insert(key.into(), Value::String(record.message.clone()));
    }
    if !record.level.is_empty() && !point.contains_key("level") {
        point.insert("level".into(), Value::String(record.level.clone()));
    }
    if !point.contains_key("timestamp") {
        point.insert(
            "timestamp".into(),
            Value::String(crate::search::format_micros(record.ts)),
        );
    }
    point
}
