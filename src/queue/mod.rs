//! The durable queue between runners and the indexer.
//!
//! # Guarantees
//!
//! * **Atomic with offsets.** [`Queue::append`] writes a batch of records *and* the file
//!   checkpoints that batch advances to in one atomic write. After a crash either both are there
//!   or neither, so a runner restarting from its checkpoints neither skips nor repeats a line.
//! * **Durable on return.** `append` returns only after the write is flushed to disk (group
//!   commit: a flush covers every batch written before it, and runners batch many lines per
//!   append, so there is no fsync per line). Records are visible to the indexer only once
//!   durable ([`Queue::read_after`] never returns a record that a crash could take back), so the
//!   index can never hold a record the queue might forget.
//! * **Ordered.** Sequence numbers are assigned in append order, strictly increasing, never
//!   reused — also across restarts and queue rebuilds: [`open`] takes the highest sequence the
//!   index has seen as a floor.
//! * **Bounded.** The bytes waiting in the queue are capped (`queue.max_bytes`).
//!   [`Queue::wait_for_room`] blocks a runner while the queue is full: the data stays in the
//!   files, nothing is dropped.
//! * **Ack.** The indexer acknowledges a sequence once it is committed in the index; acked
//!   batches are deleted.
//!
//! # On-disk layout (sled, one tree, so that one `Batch` is atomic)
//!
//! ```text
//! queue/                      sled database
//!   b<first_seq: u64 BE>   -> header + binary QueueBatch (`codec`; JSON in queues written
//!                             before it): ~8 KiB of records; one append is a chain of these
//!                             (`more`), the last carries the checkpoint updates
//!   c<runner>/<stream key> -> checkpoint JSON of one file stream (current, not yet indexed)
//!   r<runner>              -> marker: the runner has run before (read_from applies once)
//!   m/acked                -> highest acked sequence (u64 BE)
//! ```
//!
//! # Recovery
//!
//! The index is the ground truth and sled is a cache of work in flight (sled 0.34 is frozen and
//! has reports of databases that do not reopen after a hard stop). If the queue cannot be
//! opened, [`open`] moves it aside to `queue.broken-<unix time>` and starts an empty one; the
//! node then restores runner checkpoints from the index's checkpoint (see `index`), so runners
//! re-read from the last indexed offsets: nothing lost, nothing indexed twice.

pub mod codec;
#[cfg(test)]
pub mod conformance;
pub mod kafka;
mod sled_queue;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::record::Record;

pub use sled_queue::SledQueue;

/// Checkpoint key: `<runner>/<stream key>`.
pub type CheckpointKey = String;

/// What one append carries, and what the indexer reads back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueueBatch {
    /// Sequence of `records[0]`; the batch covers `first_seq .. first_seq + len`.
    /// A batch with no records still takes one sequence number, for its checkpoint updates.
    pub first_seq: u64,
    pub records: Vec<Record>,
    /// Checkpoints this batch advances to; `None` deletes the checkpoint (file finished).
    pub checkpoints: Vec<(CheckpointKey, Option<String>)>,
    /// One append is stored as a chain of small batches; all but the last say `more`. The
    /// checkpoints travel in the last one, so a reader must only treat the end of a chain as
    /// a point where files and queue agree.
    #[serde(default)]
    pub more: bool,
    /// When the batch was appended (micros since the epoch; 0 in entries written before this
    /// was recorded): the ingest time of its records.
    #[serde(default)]
    pub appended_at: i64,
    /// Set instead of `records` when the stored entry cannot be decoded. The reader sets it
    /// aside (keeps the bytes, counts it) and moves on: one damaged entry must not stop the
    /// reader forever.
    #[serde(skip)]
    pub damaged: Option<DamagedEntry>,
}

/// A stored queue entry that could not be decoded, as [`Queue::read_after`] hands it over.
#[derive(Debug, Clone)]
pub struct DamagedEntry {
    /// Where it was stored (backend-specific, for the operator).
    pub key: String,
    pub reason: String,
    /// The entry as stored.
    pub bytes: Vec<u8>,
    /// Records it held, as far as its header says (0 when unknown).
    pub records: u64,
}

impl QueueBatch {
    /// The last sequence number this batch takes.
    pub fn last_seq(&self) -> u64 {
        let len = self
            .damaged
            .as_ref()
            .map_or(self.records.len() as u64, |damaged| damaged.records);
        self.first_seq + len.max(1) - 1
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The engine under the queue failed (its own error as the source).
    #[error("queue storage error: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("queue entry {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("queue is closed")]
    Closed,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueStats {
    /// Records waiting to be indexed.
    pub depth: u64,
    /// Encoded bytes waiting to be indexed.
    pub bytes: u64,
    pub max_bytes: u64,
    /// Highest sequence that is durable.
    pub durable_seq: u64,
    pub acked_seq: u64,
}

/// The queue as the rest of the node sees it. Implemented on sled; a segment-file WAL or Kafka
/// could replace it.
pub trait Queue: Send + Sync + 'static {
    /// Append records and the checkpoints they advance to, atomically and durably. Returns the
    /// sequence range assigned. Does not wait for room: call [`Queue::wait_for_room`] first.
    fn append(
        &self,
        records: Vec<Record>,
        checkpoints: Vec<(CheckpointKey, Option<String>)>,
    ) -> Result<(u64, u64), QueueError>;
    /// Blocks until the queue is below its byte cap, or `timeout` passed. True if there is room.
    fn wait_for_room(&self, timeout: Duration) -> bool;
    /// Why there is no room, for a status or an answer: the queue is at its cap, or the disk
    /// is below its reserve.
    fn full_reason(&self) -> String {
        "the queue is full".into()
    }
    /// Durable batches whose last sequence is after `after_seq`, in order, up to about
    /// `max_records` records. An entry that cannot be decoded comes back as a batch with
    /// [`QueueBatch::damaged`] set, never as an error: errors are for the storage itself.
    fn read_after(&self, after_seq: u64, max_records: usize)
    -> Result<Vec<QueueBatch>, QueueError>;
    /// Delete every batch whose last sequence is at most `seq`.
    fn ack(&self, seq: u64) -> Result<(), QueueError>;
    /// Where this queue keeps the checkpoints its appends advance. They belong to the queue
    /// because `append` must move them atomically with the records (sled: the same batch; a
    /// Kafka queue: inside its own records).
    fn checkpoints(&self) -> &dyn CheckpointStore;
    /// Highest sequence ever assigned (0 for a new queue).
    fn last_seq(&self) -> u64;
    fn stats(&self) -> QueueStats;
    /// Wake up every waiter (shutdown).
    /// Why the queue's storage cannot take writes now (it failed, and heals by itself when
    /// it can), for `/health`; `None` when it works.
    fn storage_problem(&self) -> Option<String> {
        None
    }
    fn close(&self);
    /// Whether [`Queue::close`] was called: appends fail from then on, so a producer waiting
    /// for room stops waiting.
    fn is_closed(&self) -> bool;
}

/// Runners' read positions and "has run" markers. A checkpoint is opaque text per stream
/// (`<runner>/<stream key>`): the file tailer stores JSON offsets and fingerprints, other
/// inputs (journald cursors, Kafka offsets) store what they need. Written by
/// [`Queue::append`], read and reset here.
pub trait CheckpointStore: Send + Sync {
    /// Current checkpoints of one runner: `(stream key, checkpoint)`.
    fn of_runner(&self, runner: &str) -> Result<Vec<(String, String)>, QueueError>;
    /// Replace all checkpoints (used when restoring from the index after a queue rebuild).
    fn restore(&self, checkpoints: &[(CheckpointKey, String)]) -> Result<(), QueueError>;
    /// Forget a runner: its checkpoints and its "has run" marker.
    fn forget_runner(&self, runner: &str) -> Result<(), QueueError>;
    /// Whether the runner has run before (and mark it as having run).
    fn mark_runner_seen(&self, runner: &str) -> Result<bool, QueueError>;
    /// The last reset epoch applied to the runner (0: never reset). Forgetting the runner
    /// forgets it too.
    fn reset_epoch(&self, runner: &str) -> Result<u64, QueueError>;
    fn set_reset_epoch(&self, runner: &str, epoch: u64) -> Result<(), QueueError>;
    /// Every runner this store holds checkpoints, a "has run" marker or a reset epoch of.
    fn runners(&self) -> Result<Vec<String>, QueueError>;
}

/// Open the queue under `dir`, moving a queue that cannot be opened aside. `seq_floor` is the
/// highest sequence the index has committed: new sequences start above it. The flag says
/// whether the queue was rebuilt (the caller then restores checkpoints from the index).
pub fn open(dir: &Path, max_bytes: u64, seq_floor: u64) -> anyhow::Result<(SledQueue, bool)> {
    SledQueue::open_or_rebuild(dir, max_bytes, seq_floor)
}
