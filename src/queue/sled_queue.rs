//! [`Queue`] on sled. See the module doc of `queue` for guarantees and layout.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::{error, info, warn};

use super::codec::{self, Prepared};
use super::{
    CheckpointKey, CheckpointStore, DamagedEntry, Queue, QueueBatch, QueueError, QueueStats,
};
use crate::record::Record;

const BATCH_PREFIX: u8 = b'b';
const CHECKPOINT_PREFIX: u8 = b'c';
const RUNNER_PREFIX: u8 = b'r';
const EPOCH_PREFIX: u8 = b'e';
const ACKED_KEY: &[u8] = b"m/acked";
/// Target size of one stored value. sled rewrites whole leaves (up to 17 values) and moves
/// pages over `segment_size / 4` into blob files that it never reclaims, so values stay small.
const CHUNK_BYTES: usize = 8 * 1024;
const SEGMENT_SIZE: usize = 1024 * 1024;
/// Free space needed before a queue whose storage failed is opened again.
const HEAL_MIN_FREE_BYTES: u64 = 16 * SEGMENT_SIZE as u64;

pub struct SledQueue {
    /// `None` only while it is being opened again ([`SledQueue::heal`]).
    db: RwLock<Option<sled::Db>>,
    dir: PathBuf,
    /// Why the storage failed: sled keeps an I/O error (a full disk) and fails every later
    /// call with it, so the queue is opened again in place once the disk has room.
    broken: Mutex<Option<String>>,
    healing: Mutex<()>,
    /// Serialises sequence assignment with the write that uses it, so batches land in order.
    next_seq: Mutex<u64>,
    durable_seq: AtomicU64,
    acked_seq: AtomicU64,
    bytes: AtomicU64,
    depth: AtomicU64,
    max_bytes: u64,
    room: Condvar,
    room_lock: Mutex<()>,
    closed: AtomicBool,
    /// No room while the disk is below its reserve (appends would hit ENOSPC).
    disk: Option<Arc<crate::fsutil::DiskGuard>>,
    /// The stored data ends below the index's sequence: the queue lost data (deleted or
    /// rebuilt) and runner checkpoints must be restored from the index.
    behind_index: bool,
}

fn batch_key(first_seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = BATCH_PREFIX;
    key[1..].copy_from_slice(&first_seq.to_be_bytes());
    key
}

fn checkpoint_key(key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(CHECKPOINT_PREFIX);
    out.extend_from_slice(key.as_bytes());
    out
}

fn runner_key(runner: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(runner.len() + 1);
    out.push(RUNNER_PREFIX);
    out.extend_from_slice(runner.as_bytes());
    out
}

fn epoch_key(runner: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(runner.len() + 1);
    out.push(EPOCH_PREFIX);
    out.extend_from_slice(runner.as_bytes());
    out
}

fn decode_header(key: &[u8], value: &[u8]) -> Result<u64, QueueError> {
    codec::header(value)
        .map(|(count, _format)| count)
        .map_err(|reason| QueueError::Corrupt {
            key: format!("{key:?}"),
            reason,
        })
}

/// The batch stored under `key`; an entry that does not decode comes back marked damaged,
/// with its bytes.
fn decode_batch(key: &[u8], value: &[u8]) -> QueueBatch {
    let first_seq = key
        .get(1..9)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    match codec::decode(value) {
        Ok(batch) => batch,
        Err(reason) => {
            let records = decode_header(key, value).unwrap_or(0);
            QueueBatch {
                first_seq,
                damaged: Some(DamagedEntry {
                    key: format!("b{first_seq}"),
                    reason: format!("queue entry {key:?} is corrupt: {reason}"),
                    bytes: value.to_vec(),
                    records,
                }),
                ..QueueBatch::default()
            }
        }
    }
}

impl From<sled::Error> for QueueError {
    fn from(err: sled::Error) -> Self {
        QueueError::Storage(Box::new(err))
    }
}

/// Whether an open failed because another process holds sled's file lock.
pub(crate) fn is_locked(err: &anyhow::Error) -> bool {
    // sled reports its lock as an `Other` I/O error with this text around the OS error.
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<sled::Error>(), Some(sled::Error::Io(io))
            if crate::fsutil::is_lock_error(io))
    })
}

fn u64_value(value: &[u8]) -> u64 {
    value.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

impl SledQueue {
    /// Open, or move a broken queue aside and start a new one. See `queue::open`.
    pub fn open_or_rebuild(
        dir: &Path,
        max_bytes: u64,
        seq_floor: u64,
    ) -> anyhow::Result<(SledQueue, bool)> {
        match Self::open(dir, max_bytes, seq_floor) {
            Ok(queue) => Ok((queue, false)),
            // Locked by another process: not broken, and must not be moved aside.
            Err(err) if is_locked(&err) => Err(err.context(format!(
                "the queue {} is in use by another process (is another lograft running on this data_dir?)",
                dir.display()
            ))),
            Err(err) => {
                let aside =
                    dir.with_file_name(format!("queue.broken-{}", chrono::Utc::now().timestamp()));
                error!(
                    queue = %dir.display(), moved_to = %aside.display(), error = %err,
                    "queue cannot be opened; moving it aside and rebuilding from the index checkpoint"
                );
                metrics::counter!(crate::metrics::QUEUE_REBUILDS).increment(1);
                std::fs::rename(dir, &aside)
                    .with_context(|| format!("moving broken queue {} aside", dir.display()))?;
                let queue = Self::open(dir, max_bytes, seq_floor)
                    .with_context(|| format!("creating a new queue in {}", dir.display()))?;
                Ok((queue, true))
            }
        }
    }

    fn open_db(dir: &Path) -> anyhow::Result<sled::Db> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024)
            .segment_size(SEGMENT_SIZE)
            .mode(sled::Mode::LowSpace);
        // sled 0.34 can panic instead of erroring on a damaged file; treat both the same.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            crate::fsutil::open_sled(&config)
        }))
        .map_err(|_| anyhow::anyhow!("sled panicked while opening {}", dir.display()))?
        .with_context(|| format!("opening queue {}", dir.display()))
    }

    /// Walk the batches once: validates every header and counts what is waiting.
    /// Returns (records, bytes, last sequence, acked sequence).
    fn count(db: &sled::Db) -> anyhow::Result<(u64, u64, u64, u64)> {
        let mut depth = 0u64;
        let mut bytes = 0u64;
        let mut last_seq = 0u64;
        for item in db.scan_prefix([BATCH_PREFIX]) {
            let (key, value) = item?;
            let count = decode_header(&key, &value)?;
            let first_seq = u64::from_be_bytes(key[1..9].try_into().context("batch key")?);
            depth += count;
            bytes += value.len() as u64;
            last_seq = last_seq.max(first_seq + count.max(1) - 1);
        }
        let acked = db.get(ACKED_KEY)?.map(|v| u64_value(&v)).unwrap_or(0);
        Ok((depth, bytes, last_seq.max(acked), acked))
    }

    pub fn open(dir: &Path, max_bytes: u64, seq_floor: u64) -> anyhow::Result<SledQueue> {
        let db = Self::open_db(dir)?;
        let (depth, bytes, last_seq, acked) = Self::count(&db)?;

        let queue = SledQueue {
            db: RwLock::new(Some(db)),
            dir: dir.to_path_buf(),
            broken: Mutex::new(None),
            healing: Mutex::new(()),
            next_seq: Mutex::new(last_seq.max(seq_floor) + 1),
            durable_seq: AtomicU64::new(last_seq.max(seq_floor)),
            acked_seq: AtomicU64::new(acked),
            bytes: AtomicU64::new(bytes),
            depth: AtomicU64::new(depth),
            max_bytes,
            room: Condvar::new(),
            room_lock: Mutex::new(()),
            closed: AtomicBool::new(false),
            disk: None,
            behind_index: last_seq < seq_floor,
        };
        queue.publish_gauges();
        Ok(queue)
    }

    /// See the `behind_index` field.
    pub fn behind_index(&self) -> bool {
        self.behind_index
    }

    fn publish_gauges(&self) {
        metrics::gauge!(crate::metrics::QUEUE_DEPTH).set(self.depth.load(Ordering::Relaxed) as f64);
        metrics::gauge!(crate::metrics::QUEUE_BYTES).set(self.bytes.load(Ordering::Relaxed) as f64);
    }

    fn flush(&self) -> Result<(), QueueError> {
        let started = Instant::now();
        let flushed = self.db()?.flush();
        self.check(flushed)?;
        metrics::histogram!(crate::metrics::QUEUE_FLUSH_SECONDS)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// The database handle (a cheap clone).
    fn db(&self) -> Result<sled::Db, QueueError> {
        self.db
            .read()
            .expect("queue db lock")
            .clone()
            .ok_or_else(|| {
                QueueError::Storage(
                    format!("the queue {} is being opened again", self.dir.display()).into(),
                )
            })
    }

    /// A write's result: an I/O error marks the storage broken (see `broken`).
    fn check<T>(&self, result: Result<T, sled::Error>) -> Result<T, QueueError> {
        result.map_err(|err| {
            if matches!(err, sled::Error::Io(_)) {
                let mut broken = self.broken.lock().expect("broken lock");
                if broken.is_none() {
                    error!(
                        queue = %self.dir.display(), error = %err,
                        "the queue's storage failed; intake waits, and the queue is opened again when the disk has room"
                    );
                    metrics::counter!(crate::metrics::QUEUE_REOPENS, "outcome" => "failed")
                        .increment(1);
                }
                *broken = Some(err.to_string());
            }
            QueueError::from(err)
        })
    }

    fn broken(&self) -> Option<String> {
        self.broken.lock().expect("broken lock").clone()
    }

    /// After the storage failed, open the queue again in place, once the disk is above its
    /// reserve: true when it is whole again. What was flushed is there; what was not was
    /// never acknowledged (its append failed, and the runner restarts from the checkpoints
    /// stored with its last good append), so nothing accepted is lost or doubled.
    fn heal(&self) -> bool {
        if self.broken().is_none() {
            return true;
        }
        if self.disk.as_ref().is_some_and(|disk| disk.full().is_some()) {
            return false;
        }
        // Whatever the reserve: sled writes at open (a snapshot, the log's tail), and an open
        // on a full disk would leave those damaged too.
        if crate::fsutil::free_bytes(&self.dir).unwrap_or(0) < HEAL_MIN_FREE_BYTES {
            return false;
        }
        let Ok(_healing) = self.healing.try_lock() else {
            return false;
        };
        // No append meanwhile: sequences are assigned again from what is stored.
        let mut next_seq = self.next_seq.lock().expect("queue lock");
        // Drop this handle; sled closes (and frees its lock) when in-flight readers finish.
        *self.db.write().expect("queue db lock") = None;
        let reopened =
            Self::open_db(&self.dir).and_then(|db| Self::count(&db).map(|counts| (db, counts)));
        match reopened {
            Ok((db, (depth, bytes, last_seq, acked))) => {
                let last_seq = last_seq.max(self.durable_seq.load(Ordering::Acquire));
                *next_seq = last_seq + 1;
                self.durable_seq.store(last_seq, Ordering::Release);
                self.acked_seq.fetch_max(acked, Ordering::AcqRel);
                self.depth.store(depth, Ordering::Relaxed);
                self.bytes.store(bytes, Ordering::Relaxed);
                *self.db.write().expect("queue db lock") = Some(db);
                *self.broken.lock().expect("broken lock") = None;
                metrics::counter!(crate::metrics::QUEUE_REOPENS, "outcome" => "reopened")
                    .increment(1);
                info!(queue = %self.dir.display(), last_seq, depth, "the queue was opened again after its storage failed; intake goes on");
                self.publish_gauges();
                true
            }
            Err(err) => {
                warn!(queue = %self.dir.display(), error = format!("{err:#}"), "the queue could not be opened again yet; retrying");
                false
            }
        }
    }
}

impl SledQueue {
    /// No room while `disk` is below its reserve.
    pub fn with_disk_guard(mut self, disk: Arc<crate::fsutil::DiskGuard>) -> SledQueue {
        self.disk = Some(disk);
        self
    }

    /// Store an entry that claims `records` records but does not decode, as a damaged disk or
    /// an old bug would leave it (tests of the reader's quarantine).
    #[cfg(test)]
    pub(crate) fn append_undecodable(&self, records: u32) -> u64 {
        let mut next_seq = self.next_seq.lock().expect("queue lock");
        let first_seq = *next_seq;
        let mut value = records.to_be_bytes().to_vec();
        value.extend_from_slice(&[0u8; 4]);
        value.extend_from_slice(b"{\"first_seq\":");
        value.extend_from_slice(&[0xff, 0xfe, b'[', b'[']);
        self.db()
            .unwrap()
            .insert(batch_key(first_seq), value)
            .unwrap();
        self.db().unwrap().flush().unwrap();
        *next_seq = first_seq + u64::from(records.max(1));
        self.durable_seq.fetch_max(*next_seq - 1, Ordering::AcqRel);
        first_seq
    }
}

impl Queue for SledQueue {
    fn append(
        &self,
        mut records: Vec<Record>,
        checkpoints: Vec<(CheckpointKey, Option<String>)>,
    ) -> Result<(u64, u64), QueueError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(QueueError::Closed);
        }
        if !self.heal() {
            return Err(QueueError::Storage(self.full_reason().into()));
        }
        let count = records.len() as u64;
        // What goes in must come out: bound the nesting below what the codec reads back.
        for record in &mut records {
            record.bound_depth();
        }
        // Encode outside the lock where it costs: each record's fields become JSON once.
        let prepared: Vec<Prepared<'_>> = records.iter().map(Prepared::prepare).collect();
        let appended_at = crate::record::now_micros();
        let last_seq;
        let mut encoded_len = 0u64;
        {
            let mut next_seq = self.next_seq.lock().expect("queue lock");
            let first_seq = *next_seq;
            let mut write = sled::Batch::default();
            // One append becomes a chain of small values (see CHUNK_BYTES), all in one
            // atomic sled batch; only the last one carries the checkpoints.
            let mut chunk_first = first_seq;
            let mut start = 0usize;
            while start < prepared.len() || (start == 0 && prepared.is_empty()) {
                let mut end = start;
                let mut size = 0usize;
                while end < prepared.len()
                    && (end == start || size + prepared[end].size() <= CHUNK_BYTES)
                {
                    size += prepared[end].size();
                    end += 1;
                }
                let last_chunk = end >= prepared.len();
                let value = codec::encode_chunk(
                    chunk_first,
                    &prepared[start..end],
                    if last_chunk { &checkpoints } else { &[] },
                    !last_chunk,
                    appended_at,
                );
                encoded_len += value.len() as u64;
                write.insert(&batch_key(chunk_first), value);
                chunk_first += (end - start).max(1) as u64;
                start = end;
                if last_chunk {
                    break;
                }
            }
            last_seq = chunk_first - 1;
            for (key, checkpoint) in &checkpoints {
                match checkpoint {
                    Some(json) => write.insert(checkpoint_key(key), json.as_bytes()),
                    None => write.remove(checkpoint_key(key)),
                }
            }
            let applied = self.db()?.apply_batch(write);
            self.check(applied)?;
            *next_seq = last_seq + 1;
        }
        self.bytes.fetch_add(encoded_len, Ordering::Relaxed);
        self.depth.fetch_add(count, Ordering::Relaxed);
        // Group commit: this flush also covers every batch applied before it.
        self.flush()?;
        self.durable_seq.fetch_max(last_seq, Ordering::AcqRel);
        self.publish_gauges();
        Ok((last_seq + 1 - count.max(1), last_seq))
    }

    fn full_reason(&self) -> String {
        if let Some(why) = self.disk.as_ref().and_then(|disk| disk.full()) {
            return why;
        }
        match self.storage_problem() {
            Some(why) => why,
            None => format!(
                "the queue is full ({} of queue.max_bytes {} bytes wait to be indexed)",
                self.bytes.load(Ordering::Relaxed),
                self.max_bytes
            ),
        }
    }

    fn wait_for_room(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.room_lock.lock().expect("room lock");
        loop {
            let bytes = self.bytes.load(Ordering::Relaxed);
            let disk_full =
                self.disk.as_ref().is_some_and(|disk| disk.full().is_some()) || !self.heal();
            if !disk_full && (bytes < self.max_bytes || self.depth.load(Ordering::Relaxed) == 0) {
                return true;
            }
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // A full disk frees up without an ack to wake us: look again soon.
            let wait = if disk_full {
                (deadline - now).min(Duration::from_millis(250))
            } else {
                deadline - now
            };
            guard = self.room.wait_timeout(guard, wait).expect("room lock").0;
        }
    }

    fn read_after(
        &self,
        after_seq: u64,
        max_records: usize,
    ) -> Result<Vec<QueueBatch>, QueueError> {
        let durable = self.durable_seq.load(Ordering::Acquire);
        let mut out = Vec::new();
        let mut taken = 0usize;
        let start = batch_key(after_seq.saturating_add(1));
        let db = self.db()?;
        for item in db.range(start.as_slice()..) {
            let (key, value) = item?;
            if key.first() != Some(&BATCH_PREFIX) {
                break;
            }
            let batch = decode_batch(&key, &value);
            if batch.last_seq() > durable {
                break;
            }
            taken += batch.records.len();
            out.push(batch);
            if taken >= max_records {
                break;
            }
        }
        Ok(out)
    }

    fn ack(&self, seq: u64) -> Result<(), QueueError> {
        let mut write = sled::Batch::default();
        let mut freed_bytes = 0u64;
        let mut freed_records = 0u64;
        let db = self.db()?;
        for item in db.scan_prefix([BATCH_PREFIX]) {
            let (key, value) = item?;
            // A damaged header counts as one sequence: it was set aside by the reader.
            let count = decode_header(&key, &value).unwrap_or(0);
            let first_seq = u64::from_be_bytes(key[1..9].try_into().expect("8 bytes"));
            if first_seq + count.max(1) - 1 > seq {
                break;
            }
            freed_bytes += value.len() as u64;
            freed_records += count;
            write.remove(key);
        }
        write.insert(ACKED_KEY, &seq.to_be_bytes());
        self.check(db.apply_batch(write))?;
        // No flush needed: losing an ack only means re-reading batches the index skips.
        self.acked_seq.fetch_max(seq, Ordering::AcqRel);
        self.bytes.fetch_sub(
            freed_bytes.min(self.bytes.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.depth.fetch_sub(
            freed_records.min(self.depth.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.publish_gauges();
        let _guard = self.room_lock.lock().expect("room lock");
        self.room.notify_all();
        Ok(())
    }

    fn checkpoints(&self) -> &dyn CheckpointStore {
        self
    }

    fn last_seq(&self) -> u64 {
        *self.next_seq.lock().expect("queue lock") - 1
    }

    fn stats(&self) -> QueueStats {
        QueueStats {
            depth: self.depth.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            max_bytes: self.max_bytes,
            durable_seq: self.durable_seq.load(Ordering::Acquire),
            acked_seq: self.acked_seq.load(Ordering::Acquire),
        }
    }

    fn storage_problem(&self) -> Option<String> {
        self.broken().map(|why| {
            format!("the queue's storage failed ({why}); it is opened again when the disk has room")
        })
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _guard = self.room_lock.lock().expect("room lock");
        self.room.notify_all();
    }
}

/// Checkpoints live in the queue's own sled tree, so an append moves them in the same batch.
impl CheckpointStore for SledQueue {
    fn of_runner(&self, runner: &str) -> Result<Vec<(String, String)>, QueueError> {
        let prefix = checkpoint_key(&format!("{runner}/"));
        let mut out = Vec::new();
        for item in self.db()?.scan_prefix(&prefix) {
            let (key, value) = item?;
            let stream = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            match String::from_utf8(value.to_vec()) {
                Ok(json) => out.push((stream, json)),
                Err(_) => warn!(runner, stream, "ignoring a checkpoint that is not UTF-8"),
            }
        }
        Ok(out)
    }

    fn restore(&self, checkpoints: &[(CheckpointKey, String)]) -> Result<(), QueueError> {
        let mut write = sled::Batch::default();
        let db = self.db()?;
        for item in db.scan_prefix([CHECKPOINT_PREFIX]) {
            let (key, _) = item?;
            write.remove(key);
        }
        for (key, json) in checkpoints {
            write.insert(checkpoint_key(key), json.as_bytes());
            if let Some((runner, _)) = key.split_once('/') {
                write.insert(runner_key(runner), &[1u8][..]);
            }
        }
        self.check(db.apply_batch(write))?;
        self.flush()
    }

    fn forget_runner(&self, runner: &str) -> Result<(), QueueError> {
        // Deleting the checkpoints through an append carries the deletion to the index
        // checkpoint too, so a queue rebuild cannot bring them back.
        let deletes: Vec<(CheckpointKey, Option<String>)> = self
            .of_runner(runner)?
            .into_iter()
            .map(|(stream, _)| (format!("{runner}/{stream}"), None))
            .collect();
        if !deletes.is_empty() {
            self.append(Vec::new(), deletes)?;
        }
        let db = self.db()?;
        self.check(db.remove(runner_key(runner)))?;
        self.check(db.remove(epoch_key(runner)))?;
        self.flush()
    }

    fn reset_epoch(&self, runner: &str) -> Result<u64, QueueError> {
        Ok(self
            .db()?
            .get(epoch_key(runner))?
            .map(|value| u64_value(&value))
            .unwrap_or(0))
    }

    fn set_reset_epoch(&self, runner: &str, epoch: u64) -> Result<(), QueueError> {
        let inserted = self.db()?.insert(epoch_key(runner), &epoch.to_be_bytes());
        self.check(inserted)?;
        self.flush()
    }

    fn runners(&self) -> Result<Vec<String>, QueueError> {
        let mut runners = std::collections::BTreeSet::new();
        let db = self.db()?;
        for prefix in [RUNNER_PREFIX, EPOCH_PREFIX] {
            for item in db.scan_prefix([prefix]) {
                let (key, _) = item?;
                runners.insert(String::from_utf8_lossy(&key[1..]).into_owned());
            }
        }
        for item in db.scan_prefix([CHECKPOINT_PREFIX]) {
            let (key, _) = item?;
            let key = String::from_utf8_lossy(&key[1..]).into_owned();
            if let Some((runner, _)) = key.split_once('/') {
                runners.insert(runner.to_string());
            }
        }
        Ok(runners.into_iter().collect())
    }

    fn mark_runner_seen(&self, runner: &str) -> Result<bool, QueueError> {
        let key = runner_key(runner);
        let db = self.db()?;
        if db.get(&key)?.is_some() {
            return Ok(true);
        }
        self.check(db.insert(key, &[1u8][..]))?;
        self.flush()?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(message: &str) -> Record {
        Record::test_line(1, message)
    }

    /// The queue suite (a model test with reopenings, checkpoints, bounds, deep records).
    #[test]
    fn sled_passes_the_queue_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue");
        crate::queue::conformance::run(&mut |max_bytes| {
            // sled's background flusher can hold the lock a moment after a drop.
            for _ in 0..100 {
                match SledQueue::open(&path, max_bytes, 0) {
                    Ok(queue) => return Box::new(queue) as Box<dyn Queue>,
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
            panic!("the queue stayed locked")
        });
    }

    #[test]
    fn a_large_append_is_a_chain_of_small_values_with_checkpoints_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let queue = SledQueue::open(&dir.path().join("q"), 1 << 30, 0).unwrap();
        let records: Vec<Record> = (0..1000).map(|i| record(&format!("{i:0>100}"))).collect();
        let (first, last) = queue
            .append(records, vec![("r/1".into(), Some("{}".into()))])
            .unwrap();
        assert_eq!((first, last), (1, 1000));
        let batches = queue.read_after(0, usize::MAX).unwrap();
        assert!(batches.len() > 10, "{} chunks", batches.len());
        for (i, batch) in batches.iter().enumerate() {
            let is_last = i == batches.len() - 1;
            assert_eq!(batch.more, !is_last);
            assert_eq!(batch.checkpoints.is_empty(), !is_last);
        }
        let messages: Vec<String> = batches
            .into_iter()
            .flat_map(|b| b.records.into_iter().map(|r| r.message))
            .collect();
        assert_eq!(messages.len(), 1000);
        assert_eq!(messages[999], format!("{:0>100}", 999));
        assert!(
            !dir.path().join("q/blobs").exists()
                || std::fs::read_dir(dir.path().join("q/blobs"))
                    .unwrap()
                    .count()
                    == 0
        );
    }

    /// A queue written by a version before the binary codec (JSON entries, as that version's
    /// `encode_chunk` wrote them, with its checkpoint and acked keys) opens, drains in order,
    /// and takes new binary appends after its last sequence.
    #[test]
    fn a_queue_written_in_the_json_format_opens_and_drains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue");
        {
            let db = SledQueue::open_db(&path).unwrap();
            let json_chunk = |first_seq: u64, records: &[Record], checkpoints: &str, more| {
                let mut value = (records.len() as u32).to_be_bytes().to_vec();
                value.extend_from_slice(&[0u8; 4]);
                value.extend_from_slice(
                    format!(
                        "{{\"first_seq\":{first_seq},\"more\":{more},\"appended_at\":5,\"records\":["
                    )
                    .as_bytes(),
                );
                let encoded: Vec<String> = records
                    .iter()
                    .map(|r| serde_json::to_string(r).unwrap())
                    .collect();
                value.extend_from_slice(encoded.join(",").as_bytes());
                value.extend_from_slice(b"],\"checkpoints\":");
                value.extend_from_slice(checkpoints.as_bytes());
                value.push(b'}');
                value
            };
            let mut fielded = record("with fields");
            fielded.fields = serde_json::json!({"status": 503});
            fielded.path = "/var/log/a.log".into();
            fielded.level = "error".into();
            // Sequence 1 was indexed and acked (its entry deleted).
            db.insert(
                batch_key(2),
                json_chunk(2, &[record("two"), record("three")], "[]", true),
            )
            .unwrap();
            db.insert(
                batch_key(4),
                json_chunk(
                    4,
                    &[fielded.clone()],
                    r#"[["r/1:2","{\"offset\":99}"]]"#,
                    false,
                ),
            )
            .unwrap();
            db.insert(checkpoint_key("r/1:2"), b"{\"offset\":99}".as_slice())
                .unwrap();
            db.insert(ACKED_KEY, 1u64.to_be_bytes().as_slice()).unwrap();
            db.flush().unwrap();
        }
        let queue = SledQueue::open(&path, 1 << 30, 0).unwrap();
        assert_eq!(queue.last_seq(), 4);
        assert_eq!(queue.stats().depth, 3);
        let batches = queue.read_after(1, usize::MAX).unwrap();
        let messages: Vec<&str> = batches
            .iter()
            .flat_map(|b| b.records.iter().map(|r| r.message.as_str()))
            .collect();
        assert_eq!(messages, ["two", "three", "with fields"]);
        assert!(batches[0].more && !batches[1].more);
        assert_eq!(
            batches[1].records[0].fields,
            serde_json::json!({"status": 503})
        );
        assert_eq!(batches[1].records[0].level, "error");
        assert_eq!(
            batches[1].checkpoints,
            vec![("r/1:2".to_string(), Some("{\"offset\":99}".to_string()))]
        );
        assert!(batches.iter().all(|b| b.damaged.is_none()));
        let (first, _) = queue.append(vec![record("binary")], vec![]).unwrap();
        assert_eq!(first, 5);
        let value = queue.db().unwrap().get(batch_key(5)).unwrap().unwrap();
        assert_eq!(value[4], codec::FORMAT_RANGES, "new entries are binary");
        let after: Vec<String> = queue
            .read_after(4, usize::MAX)
            .unwrap()
            .into_iter()
            .flat_map(|b| b.records.into_iter().map(|r| r.message))
            .collect();
        assert_eq!(after, ["binary"]);
        queue.ack(4).unwrap();
        assert_eq!(queue.stats().depth, 1);
        assert_eq!(
            queue.checkpoints().of_runner("r").unwrap(),
            vec![("1:2".to_string(), "{\"offset\":99}".to_string())]
        );
    }

    #[test]
    fn sequences_start_above_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let queue = SledQueue::open(&dir.path().join("q"), 1 << 20, 41).unwrap();
        let (first, _) = queue.append(vec![record("a")], vec![]).unwrap();
        assert_eq!(first, 42);
    }

    #[test]
    fn full_queue_blocks_until_acked() {
        let dir = tempfile::tempdir().unwrap();
        let queue = SledQueue::open(&dir.path().join("q"), 4096, 0).unwrap();
        let big = "x".repeat(5000);
        let (_, last) = queue.append(vec![record(&big)], vec![]).unwrap();
        assert!(!queue.wait_for_room(Duration::from_millis(50)));
        queue.ack(last).unwrap();
        assert!(queue.wait_for_room(Duration::from_millis(50)));
    }

    #[test]
    fn garbage_queue_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue");
        {
            let queue = SledQueue::open(&path, 1 << 20, 0).unwrap();
            queue.append(vec![record("a")], vec![]).unwrap();
        }
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::write(entry.path(), vec![0xA5u8; 4096]).unwrap();
            }
        }
        let (queue, rebuilt) = SledQueue::open_or_rebuild(&path, 1 << 20, 7).unwrap();
        assert!(rebuilt);
        assert_eq!(queue.last_seq(), 7);
        let aside = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("queue.broken-")
            })
            .count();
        assert_eq!(aside, 1);
    }
}
