//! The indexer: a dedicated thread that moves durable queue batches into the index [`Sink`].
//!
//! It never runs on the async workers: sinks block (tantivy's `add_document` and `commit`).
//! The commit cycle (sink commit with the checkpoint, then queue ack) is what makes indexing
//! exactly-once; see the `index` module doc. What does not depend on the engine lives here:
//! which event times are believed, what retention drops on arrival, the quarantine of queue
//! entries that cannot be decoded, and the retry loop.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::{debug, error, info};

use super::IndexCheckpoint;
use super::retention::Placement;
use super::retention::RetentionPolicy;
use super::sink::{Added, Flags, Sink};
use crate::queue::{Queue, QueueBatch};

/// Records taken from the queue per read.
const READ_CHUNK: usize = 4096;

/// How often an idle indexer gives the sink time for upkeep (merges that ingest left to do).
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Shared handle to observe and steer the indexer (API, tests, shutdown).
#[derive(Default)]
pub struct IndexerControl {
    paused: AtomicBool,
    stop: AtomicBool,
    /// Highest sequence committed and visible to search.
    committed_seq: AtomicU64,
    docs_indexed: AtomicU64,
    commits: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Queue entries that could not be decoded and were set aside (see [`Indexer::quarantine`]).
    quarantined: AtomicU64,
    /// Records dropped on purpose, by reason (also in `lograft_index_dropped_total`).
    dropped_retention: AtomicU64,
    dropped_partition_cap: AtomicU64,
    /// Records whose event time was later than ingest + grace (kept with the ingest time).
    future_times: AtomicU64,
}

impl IndexerControl {
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
    }
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq.load(Ordering::Acquire)
    }
    /// Everything up to `seq` is committed and visible to search.
    pub(crate) fn mark_committed(&self, seq: u64) {
        self.committed_seq.store(seq, Ordering::Release);
    }
    pub fn docs_indexed(&self) -> u64 {
        self.docs_indexed.load(Ordering::Relaxed)
    }
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("error lock").clone()
    }
    pub fn quarantined(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
    }
    /// `(older than the retention window, beyond index.max_partitions)`.
    pub fn dropped(&self) -> (u64, u64) {
        (
            self.dropped_retention.load(Ordering::Relaxed),
            self.dropped_partition_cap.load(Ordering::Relaxed),
        )
    }
    pub fn future_times(&self) -> u64 {
        self.future_times.load(Ordering::Relaxed)
    }
}

pub struct Indexer {
    sink: Box<dyn Sink>,
    queue: Arc<dyn Queue>,
    control: Arc<IndexerControl>,
    commit_interval: Duration,
    /// Everything at or below this sequence is committed.
    checkpoint_seq: u64,
    /// File checkpoints as of the last record added.
    checkpoints: BTreeMap<String, String>,
    /// Highest sequence read from the queue and given to the sink.
    read_seq: u64,
    /// When the oldest record not yet committed entered the queue (not when the indexer read
    /// it): `commit_interval` counts from there.
    pending_since: Option<Instant>,
    /// What recent commits took (a moving average, at most half the interval): a commit
    /// starts that much early, so a record is searchable within `commit_interval` of its
    /// arrival rather than that plus the commit.
    commit_cost: Duration,
    /// When the last commit ended: the interval never counts from before it, so a backlog
    /// (records that waited in the queue longer than the interval) does not make every read
    /// a commit.
    last_commit: Option<Instant>,
    /// Records added since the last commit.
    pending_docs: u64,
    /// The last batch read said `more`: its chain continues, and a commit now would record
    /// checkpoints that do not match the documents (see `QueueBatch::more`).
    chain_open: bool,
    retention: RetentionPolicy,
    last_retention: Option<Instant>,
    /// When the sink was last given time for upkeep ([`Sink::maintain`]).
    last_upkeep: Option<Instant>,
    /// Where undecodable queue entries are kept (`<data_dir>/quarantine`).
    quarantine_dir: PathBuf,
    /// Below the free-space reserve nothing is indexed (the records wait in the queue).
    disk: Option<Arc<crate::fsutil::DiskGuard>>,
    /// The indexer is waiting for disk space (its `last_error` says so).
    disk_full: bool,
}

impl Indexer {
    pub fn new(
        sink: Box<dyn Sink>,
        queue: Arc<dyn Queue>,
        checkpoint: IndexCheckpoint,
        commit_interval: Duration,
        retention: RetentionPolicy,
        quarantine_dir: PathBuf,
    ) -> (Indexer, Arc<IndexerControl>) {
        let control = Arc::new(IndexerControl::default());
        control
            .committed_seq
            .store(checkpoint.seq, Ordering::Release);
        let indexer = Indexer {
            sink,
            queue,
            control: control.clone(),
            commit_interval,
            checkpoint_seq: checkpoint.seq,
            checkpoints: checkpoint.checkpoints.into_iter().collect(),
            read_seq: checkpoint.seq,
            pending_since: None,
            commit_cost: Duration::ZERO,
            last_commit: None,
            pending_docs: 0,
            chain_open: false,
            retention,
            last_retention: None,
            last_upkeep: None,
            quarantine_dir,
            disk: None,
            disk_full: false,
        };
        (indexer, control)
    }

    /// Index nothing while `disk` is below its reserve.
    pub fn with_disk_guard(mut self, disk: Arc<crate::fsutil::DiskGuard>) -> Indexer {
        self.disk = Some(disk);
        self
    }

    /// Run on a dedicated thread until [`IndexerControl::stop`].
    pub fn spawn(self) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || self.run())
            .expect("spawning the indexer thread")
    }

    fn run(mut self) {
        info!(resume_after_seq = self.checkpoint_seq, "indexer started");
        let mut backoff = Duration::from_millis(100);
        while !self.control.stop.load(Ordering::Acquire) {
            // A panic in one round (a bug, a poisoned record) must not silently end indexing:
            // it is handled like an error, visible in the status, and retried with backoff.
            let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step()))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(anyhow::anyhow!("indexer panicked: {message}"))
                });
            match round {
                Ok(true) => backoff = Duration::from_millis(100),
                Ok(false) => std::thread::sleep(Duration::from_millis(20)),
                Err(err) => {
                    error!(error = format!("{err:#}"), "indexing failed; retrying");
                    *self.control.last_error.lock().expect("error lock") = Some(format!("{err:#}"));
                    // Start over from the last commit: the sink forgets what it did not commit
                    // (and remembers what it did), and the queue is re-read from there.
                    self.pending_since = None;
                    self.pending_docs = 0;
                    self.chain_open = false;
                    match self.sink.rollback() {
                        Ok(checkpoint) => {
                            self.checkpoint_seq = checkpoint.seq;
                            self.checkpoints = checkpoint.checkpoints.into_iter().collect();
                        }
                        Err(err) => error!(error = %err, "index rollback failed; retrying"),
                    }
                    self.read_seq = self.checkpoint_seq;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        if self.chain_open {
            // Half a chain must not be committed; it is re-read from the queue at the next start.
            info!(
                read_seq = self.read_seq,
                "stopping in the middle of a chain; not committing it"
            );
        } else if let Err(err) = self.commit() {
            error!(error = format!("{err:#}"), "final commit failed");
        }
        info!(committed_seq = self.checkpoint_seq, "indexer stopped");
    }

    /// One round: read what is durable, add it, commit when due. True when it did work.
    fn step(&mut self) -> anyhow::Result<bool> {
        // A full disk is a wait, not an error: nothing is read or committed until space
        // returns, and then indexing goes on by itself from where it was.
        match self.disk.as_ref().and_then(|disk| disk.full()) {
            Some(why) => {
                if !self.disk_full {
                    *self.control.last_error.lock().expect("error lock") = Some(why);
                    self.disk_full = true;
                }
                std::thread::sleep(Duration::from_millis(200));
                return Ok(false);
            }
            None if self.disk_full => {
                self.disk_full = false;
                *self.control.last_error.lock().expect("error lock") = None;
            }
            None => {}
        }
        if self.control.is_paused() {
            if self.pending_since.is_some() && !self.chain_open {
                self.commit()?;
            }
            return Ok(false);
        }
        let batches = self.queue.read_after(self.read_seq, READ_CHUNK)?;
        let did_work = !batches.is_empty();
        for batch in batches {
            self.add_batch(batch)?;
        }
        let commit_due = self
            .pending_since
            .is_some_and(|since| since.elapsed() + self.commit_cost >= self.commit_interval);
        if commit_due && !self.chain_open {
            self.commit()?;
        }
        if !self.chain_open
            && self
                .last_retention
                .is_none_or(|at| at.elapsed() >= self.retention.interval)
        {
            self.apply_retention()?;
        }
        if !did_work
            && !self.chain_open
            && self.pending_since.is_none()
            && self
                .last_upkeep
                .is_none_or(|at| at.elapsed() >= UPKEEP_INTERVAL)
        {
            self.last_upkeep = Some(Instant::now());
            self.sink.maintain();
        }
        Ok(did_work)
    }

    fn count_dropped(&self, reason: &'static str) {
        let counter = match reason {
            "retention" => &self.control.dropped_retention,
            _ => &self.control.dropped_partition_cap,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::INDEX_DROPPED, "reason" => reason).increment(1);
    }

    fn add_batch(&mut self, mut batch: QueueBatch) -> anyhow::Result<()> {
        let first_seq = batch.first_seq;
        let last_seq = batch.last_seq();
        let more = batch.more;
        if let Some(damaged) = batch.damaged.take() {
            self.quarantine(first_seq, last_seq, &damaged)?;
        }
        // Records carry their event time; the queue knows when they arrived.
        let ingest = if batch.appended_at > 0 {
            batch.appended_at
        } else {
            crate::record::now_micros()
        };
        let today = chrono::Utc::now().date_naive();
        for (i, mut record) in batch.records.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            if seq <= self.checkpoint_seq {
                continue; // already committed before a restart
            }
            let future_time = match self.retention.place(record.ts, ingest, today) {
                Placement::Keep { ts, future_time } => {
                    record.ts = ts;
                    future_time
                }
                Placement::TooOld => {
                    self.count_dropped("retention");
                    continue;
                }
            };
            match self.sink.add(seq, record, Flags { future_time })? {
                Added::Added => {
                    self.pending_docs += 1;
                    if future_time {
                        self.control.future_times.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!(crate::metrics::INDEX_FUTURE_TIMES).increment(1);
                    }
                }
                Added::Held => {}
                Added::Dropped(reason) => self.count_dropped(reason),
            }
        }
        for (key, checkpoint) in batch.checkpoints {
            match checkpoint {
                Some(json) => self.checkpoints.insert(key, json),
                None => self.checkpoints.remove(&key),
            };
        }
        self.read_seq = last_seq;
        self.chain_open = more;
        // The batch waited in the queue for `age` already (never counted as more than the
        // interval: a clock step must not make every batch due at once).
        let age = (crate::record::now_micros() - ingest)
            .clamp(0, self.commit_interval.as_micros() as i64);
        let arrived = Instant::now()
            .checked_sub(Duration::from_micros(age as u64))
            .unwrap_or_else(Instant::now);
        let arrived = self.last_commit.map_or(arrived, |last| arrived.max(last));
        self.pending_since = Some(
            self.pending_since
                .map_or(arrived, |since| since.min(arrived)),
        );
        Ok(())
    }

    /// Keep a queue entry that cannot be decoded in `<data_dir>/quarantine/`, durably, and
    /// count it; indexing goes on after it. The file is named by the sequences it held.
    fn quarantine(
        &mut self,
        first_seq: u64,
        last_seq: u64,
        damaged: &crate::queue::DamagedEntry,
    ) -> anyhow::Result<()> {
        crate::fsutil::create_private_dir(&self.quarantine_dir)?;
        let path = self
            .quarantine_dir
            .join(format!("queue-{first_seq}-{last_seq}.bin"));
        crate::fsutil::write_private_durably(&path, &damaged.bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        error!(
            entry = %damaged.key, first_seq, last_seq, records = damaged.records,
            reason = %damaged.reason, kept_in = %path.display(),
            "a queue entry cannot be decoded; it is set aside and indexing goes on"
        );
        self.control.quarantined.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::QUEUE_QUARANTINED).increment(1);
        Ok(())
    }

    /// Drop data under the retention policy, after committing.
    fn apply_retention(&mut self) -> anyhow::Result<()> {
        self.last_retention = Some(Instant::now());
        self.commit()?;
        self.sink.apply_retention(&self.retention)?;
        Ok(())
    }

    /// Commit the sink with the checkpoint, then ack the queue.
    fn commit(&mut self) -> anyhow::Result<()> {
        if self.pending_since.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let seq = self.read_seq;
        let docs = self.pending_docs;
        self.sink.commit(&IndexCheckpoint {
            seq,
            checkpoints: self
                .checkpoints
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })?;
        self.pending_docs = 0;
        self.checkpoint_seq = seq;
        self.pending_since = None;
        self.control.mark_committed(seq);
        self.control.commits.fetch_add(1, Ordering::Relaxed);
        self.control.docs_indexed.fetch_add(docs, Ordering::Relaxed);
        *self.control.last_error.lock().expect("error lock") = None;
        // Ack after the checkpoint: a crash before this line only re-reads batches we skip.
        self.queue.ack(seq)?;
        let elapsed = started.elapsed();
        self.commit_cost = ((self.commit_cost * 3 + elapsed) / 4).min(self.commit_interval / 2);
        self.last_commit = Some(Instant::now());
        metrics::counter!(crate::metrics::INDEX_COMMITS).increment(1);
        metrics::counter!(crate::metrics::INDEX_DOCS).increment(docs);
        metrics::histogram!(crate::metrics::INDEX_COMMIT_SECONDS).record(elapsed.as_secs_f64());
        debug!(
            seq,
            docs,
            elapsed_ms = elapsed.as_millis() as u64,
            "index commit"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexStore;
    use crate::index::day_of;
    use crate::queue::SledQueue;
    use crate::record::Record;
    use chrono::NaiveDate;
    use std::collections::BTreeSet;
    use tantivy::collector::Count;
    use tantivy::query::AllQuery;

    const DAY: i64 = 86_400_000_000;

    fn record(ts: i64, message: &str) -> Record {
        Record::test_line(ts, message)
    }

    struct Rig {
        _dir: tempfile::TempDir,
        store: Arc<IndexStore>,
        queue: Arc<SledQueue>,
        control: Arc<IndexerControl>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Rig {
        fn new(policy: RetentionPolicy) -> Rig {
            let dir = tempfile::tempdir().unwrap();
            let (store, checkpoint) = IndexStore::open(&dir.path().join("index"), "n").unwrap();
            let queue = Arc::new(SledQueue::open(&dir.path().join("queue"), 1 << 30, 0).unwrap());
            let sink =
                super::super::TantivySink::new(store.clone(), 64_000_000, policy.max_partitions)
                    .unwrap();
            let (indexer, control) = Indexer::new(
                Box::new(sink),
                queue.clone(),
                checkpoint,
                Duration::from_millis(50),
                policy,
                store.quarantine_dir(),
            );
            let thread = Some(indexer.spawn());
            Rig {
                _dir: dir,
                store,
                queue,
                control,
                thread,
            }
        }

        fn wait_committed(&self, seq: u64) {
            let deadline = Instant::now() + Duration::from_secs(60);
            while self.control.committed_seq() < seq {
                assert!(
                    Instant::now() < deadline,
                    "indexer stuck at {} (want {seq}): {:?}",
                    self.control.committed_seq(),
                    self.control.last_error()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        fn docs(&self) -> usize {
            self.store
                .all()
                .iter()
                .map(|p| {
                    p.reader.reload().unwrap();
                    p.reader.searcher().search(&AllQuery, &Count).unwrap()
                })
                .sum()
        }
    }

    impl Drop for Rig {
        fn drop(&mut self) {
            self.control.stop();
            if let Some(thread) = self.thread.take() {
                thread.join().unwrap();
            }
        }
    }

    /// An entry that does not decode used to stop indexing for good (retried forever, across
    /// restarts). It is set aside, kept byte for byte, counted, and what follows is indexed.
    #[test]
    fn an_undecodable_entry_is_quarantined_and_indexing_goes_on() {
        let rig = Rig::new(RetentionPolicy::default());
        let now = crate::record::now_micros();
        rig.queue
            .append(vec![record(now, "before")], Vec::new())
            .unwrap();
        let damaged = rig.queue.append_undecodable(3);
        let (_, last) = rig
            .queue
            .append(
                vec![record(now, "after"), record(now, "after 2")],
                Vec::new(),
            )
            .unwrap();
        rig.wait_committed(last);
        assert_eq!(rig.docs(), 3);
        assert_eq!(rig.control.quarantined(), 1);
        let kept = rig
            .store
            .quarantine_dir()
            .join(format!("queue-{damaged}-{}.bin", damaged + 2));
        let bytes = std::fs::read(&kept).unwrap();
        assert_eq!(&bytes[..4], &3u32.to_be_bytes());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(kept.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        // Acked like any other entry: the queue is empty.
        let deadline = Instant::now() + Duration::from_secs(30);
        while rig.queue.stats().depth > 0 {
            assert!(Instant::now() < deadline, "{:?}", rig.queue.stats());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Forged event times: far-future dates keep the arrival time (flagged), dates older than
    /// the window are counted as dropped, backfill inside the window keeps its own day, and
    /// thousands of distinct dates open no more than the window's partitions.
    #[test]
    fn event_times_outside_the_window_open_no_partitions() {
        let rig = Rig::new(RetentionPolicy {
            max_age_days: 7,
            ..RetentionPolicy::default()
        });
        let now = crate::record::now_micros();
        let mut records = Vec::new();
        for i in 0..2000i64 {
            records.push(record(now + (i + 2) * DAY, "future")); // 2..2001 days ahead
            records.push(record(now - (i + 8) * DAY, "ancient")); // before the window
        }
        records.push(record(now - 3 * DAY, "backfill"));
        records.push(record(now + DAY / 2, "clock skew within grace"));
        let (_, last) = rig.queue.append(records, Vec::new()).unwrap();
        rig.wait_committed(last);
        assert_eq!(rig.docs(), 2002);
        assert_eq!(rig.control.future_times(), 2000);
        assert_eq!(rig.control.dropped(), (2000, 0));
        let days: BTreeSet<NaiveDate> = rig.store.all().iter().map(|p| p.day).collect();
        let today = chrono::Utc::now().date_naive();
        assert!(days.len() <= 3, "{days:?}");
        assert!(
            days.contains(&day_of(now - 3 * DAY)),
            "backfill keeps its day: {days:?}"
        );
        assert!(
            days.iter().all(|d| *d <= today + chrono::Duration::days(1)),
            "{days:?}"
        );
    }

    /// With no age limit, a backfill over many days keeps at most MAX_OPEN_WRITERS writers
    /// open, indexes each record exactly once, and stops at `max_partitions`.
    #[test]
    fn a_backfill_over_many_days_is_bounded_and_exactly_once() {
        let rig = Rig::new(RetentionPolicy {
            max_partitions: 40,
            ..RetentionPolicy::default()
        });
        let now = crate::record::now_micros();
        // Days interleaved, so writers must be closed and reopened within one batch.
        let records: Vec<Record> = (0..300i64)
            .map(|i| record(now - (i % 50) * DAY, "old"))
            .collect();
        let (_, last) = rig.queue.append(records, Vec::new()).unwrap();
        rig.wait_committed(last);
        assert_eq!(rig.store.partition_count(), 40);
        assert_eq!(rig.control.dropped(), (0, 60));
        assert_eq!(rig.docs(), 240);
        // Every sequence once.
        let mut seqs = Vec::new();
        for p in rig.store.all() {
            let searcher = p.reader.searcher();
            for segment in searcher.segment_readers() {
                let column = segment.fast_fields().u64("seq").unwrap();
                for doc in 0..segment.max_doc() {
                    seqs.extend(column.values_for_doc(doc));
                }
            }
        }
        seqs.sort();
        let before = seqs.len();
        seqs.dedup();
        assert_eq!(before, seqs.len(), "no sequence indexed twice");
    }
}
