//! The indexer: a dedicated thread that moves durable queue batches into day partitions.
//!
//! It never runs on the async workers: tantivy's `add_document` and `commit` block. The commit
//! cycle (partitions, then `checkpoint.json`, then queue ack) is what makes indexing
//! exactly-once; see the `index` module doc.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use tantivy::schema::OwnedValue;
use tantivy::{DateTime, IndexWriter, TantivyDocument};
use tracing::{debug, error, info};

use super::retention::{self, RetentionPolicy};
use super::{IndexCheckpoint, IndexStore, day_of, payload_for, sort_key};
use crate::queue::{Queue, QueueBatch};
use crate::record::Record;

/// At most this many partitions have an open writer; a backfill spanning more days commits
/// and closes writers as it goes (each writer holds its own memory budget).
const MAX_OPEN_WRITERS: usize = 3;
/// Records taken from the queue per read.
const READ_CHUNK: usize = 4096;

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
    pub fn docs_indexed(&self) -> u64 {
        self.docs_indexed.load(Ordering::Relaxed)
    }
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("error lock").clone()
    }
}

pub struct Indexer {
    store: Arc<IndexStore>,
    queue: Arc<dyn Queue>,
    control: Arc<IndexerControl>,
    commit_interval: Duration,
    writer_memory: usize,
    writer_threads: usize,
    /// Everything at or below this sequence is committed everywhere.
    checkpoint_seq: u64,
    /// File checkpoints as of the last record added to the writers.
    checkpoints: BTreeMap<String, String>,
    writers: HashMap<NaiveDate, IndexWriter>,
    touched: BTreeSet<NaiveDate>,
    /// Highest sequence added to the writers (read from the queue).
    read_seq: u64,
    pending_since: Option<Instant>,
    /// Documents added since the last commit.
    pending_docs: u64,
    /// The last batch read said `more`: its chain continues, and a commit now would record
    /// checkpoints that do not match the documents (see `QueueBatch::more`).
    chain_open: bool,
    retention: RetentionPolicy,
    last_retention: Option<Instant>,
}

impl Indexer {
    pub fn new(
        store: Arc<IndexStore>,
        queue: Arc<dyn Queue>,
        checkpoint: IndexCheckpoint,
        commit_interval: Duration,
        writer_memory: u64,
        retention: RetentionPolicy,
    ) -> (Indexer, Arc<IndexerControl>) {
        let control = Arc::new(IndexerControl::default());
        control
            .committed_seq
            .store(checkpoint.seq, Ordering::Release);
        let writer_threads = std::thread::available_parallelism()
            .map(|n| n.get().min(2))
            .unwrap_or(1);
        let indexer = Indexer {
            store,
            queue,
            control: control.clone(),
            commit_interval,
            writer_memory: writer_memory as usize,
            writer_threads,
            checkpoint_seq: checkpoint.seq,
            checkpoints: checkpoint.checkpoints.into_iter().collect(),
            writers: HashMap::new(),
            touched: BTreeSet::new(),
            read_seq: checkpoint.seq,
            pending_since: None,
            pending_docs: 0,
            chain_open: false,
            retention,
            last_retention: None,
        };
        (indexer, control)
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
                    // Start over from the last commit: drop writers (their uncommitted
                    // documents are discarded) and re-read from the checkpoint.
                    self.writers.clear();
                    self.touched.clear();
                    self.pending_since = None;
                    self.pending_docs = 0;
                    self.chain_open = false;
                    self.read_seq = self.checkpoint_seq;
                    if let Ok(checkpoint) = self.store.read_checkpoint() {
                        self.checkpoints = checkpoint.checkpoints.into_iter().collect();
                    }
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
            .is_some_and(|since| since.elapsed() >= self.commit_interval);
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
        Ok(did_work)
    }

    fn add_batch(&mut self, batch: QueueBatch) -> anyhow::Result<()> {
        let first_seq = batch.first_seq;
        let last_seq = batch.last_seq();
        let more = batch.more;
        // Bound the open writers (a backfill can span many days). Only commit at a batch
        // boundary: a commit's payload must cover every document it contains.
        let new_days: BTreeSet<NaiveDate> = batch
            .records
            .iter()
            .map(|r| day_of(r.ts))
            .filter(|day| !self.writers.contains_key(day))
            .collect();
        if !self.chain_open
            && !new_days.is_empty()
            && self.writers.len() + new_days.len() > MAX_OPEN_WRITERS
        {
            self.commit()?;
            self.writers.clear();
        }
        for (i, record) in batch.records.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            if seq <= self.checkpoint_seq {
                continue; // already committed before a restart
            }
            let day = day_of(record.ts);
            let document = self.document(seq, record);
            let writer = self.writer(day)?;
            writer.add_document(document)?;
            self.touched.insert(day);
            self.pending_docs += 1;
        }
        for (key, checkpoint) in batch.checkpoints {
            match checkpoint {
                Some(json) => self.checkpoints.insert(key, json),
                None => self.checkpoints.remove(&key),
            };
        }
        self.read_seq = last_seq;
        self.chain_open = more;
        self.pending_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn writer(&mut self, day: NaiveDate) -> anyhow::Result<&mut IndexWriter> {
        if !self.writers.contains_key(&day) {
            let partition = self.store.partition(day)?;
            let writer = partition
                .index
                .writer_with_num_threads(self.writer_threads, self.writer_memory)
                .with_context(|| format!("opening a writer on partition {day}"))?;
            self.writers.insert(day, writer);
        }
        Ok(self.writers.get_mut(&day).expect("just inserted"))
    }

    fn document(&self, seq: u64, record: Record) -> TantivyDocument {
        let fields = &self.store.fields;
        let mut doc = TantivyDocument::new();
        // Parsers keep event times in range; clamp anyway, one bad record must not stop indexing.
        let ts = record.ts.clamp(0, crate::search::END_OF_TIME);
        doc.add_date(fields.ts, DateTime::from_timestamp_micros(ts));
        doc.add_u64(fields.sort, sort_key(ts, seq));
        doc.add_u64(fields.seq, seq);
        doc.add_text(fields.node, &self.store.node);
        doc.add_text(fields.runner, &record.runner);
        if !record.path.is_empty() {
            doc.add_text(fields.path, &record.path);
        }
        doc.add_u64(fields.offset, record.offset);
        if !record.level.is_empty() {
            doc.add_text(fields.level, &record.level);
        }
        doc.add_text(fields.message, &record.message);
        if record.fields.is_object() {
            doc.add_field_value(fields.fields, &OwnedValue::from(record.fields));
        }
        if record.truncated {
            doc.add_text(fields.flags, "truncated");
        }
        if record.parse_error {
            doc.add_text(fields.flags, "parse_error");
        }
        if !record.stream.is_empty() {
            doc.add_text(fields.stream, &record.stream);
        }
        doc
    }

    /// Drop partitions under the retention policy, after committing and closing their writers.
    fn apply_retention(&mut self) -> anyhow::Result<()> {
        self.last_retention = Some(Instant::now());
        self.commit()?;
        self.writers.clear();
        retention::apply(&self.store, self.retention);
        Ok(())
    }

    /// Commit every touched partition, then the checkpoint, then ack the queue.
    fn commit(&mut self) -> anyhow::Result<()> {
        if self.pending_since.is_none() {
            return Ok(());
        }
        let started = Instant::now();
        let seq = self.read_seq;
        let payload = payload_for(seq);
        let docs = std::mem::take(&mut self.pending_docs);
        for day in std::mem::take(&mut self.touched) {
            let writer = self
                .writers
                .get_mut(&day)
                .expect("touched partitions have a writer");
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared
                .commit()
                .with_context(|| format!("committing partition {day}"))?;
            self.store.partition(day)?.reader.reload()?;
        }
        self.store.write_checkpoint(&IndexCheckpoint {
            seq,
            checkpoints: self
                .checkpoints
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })?;
        self.checkpoint_seq = seq;
        self.pending_since = None;
        self.control.committed_seq.store(seq, Ordering::Release);
        self.control.commits.fetch_add(1, Ordering::Relaxed);
        self.control.docs_indexed.fetch_add(docs, Ordering::Relaxed);
        *self.control.last_error.lock().expect("error lock") = None;
        // Ack after the checkpoint: a crash before this line only re-reads batches we skip.
        self.queue.ack(seq)?;
        let elapsed = started.elapsed();
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
