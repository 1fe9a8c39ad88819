//! The embedded [`Sink`]: tantivy day partitions ([`IndexStore`]).
//!
//! Each record goes to the partition of its event day. A commit commits every partition it
//! touched with the payload `{"seq": N}`, then writes `checkpoint.json` (see the `index`
//! module doc). At most [`MAX_OPEN_WRITERS`] writers are open: opening another commits the
//! oldest partition alone (payload = the last sequence added), without moving the checkpoint;
//! a crash then trims it back at open ([`IndexStore::open`]), and until then the sink
//! remembers what each partition holds (`partition_seq`), so a rollback never adds a record to
//! a partition twice.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use tantivy::schema::OwnedValue;
use tantivy::{DateTime, IndexWriter, TantivyDocument};
use tracing::warn;

use super::sink::{Added, Flags, Sink, SinkError};
use super::{
    IndexCheckpoint, IndexStore, RetentionPolicy, day_of, payload_for, retention, sort_key,
};
use crate::record::Record;

/// At most this many partitions have an open writer (each holds its own memory budget).
pub const MAX_OPEN_WRITERS: usize = 3;

pub struct TantivySink {
    store: Arc<IndexStore>,
    writer_memory: usize,
    writer_threads: usize,
    max_partitions: usize,
    /// The sequence of the last complete commit (the checkpoint's).
    committed_seq: u64,
    writers: HashMap<NaiveDate, IndexWriter>,
    touched: BTreeSet<NaiveDate>,
    /// The highest sequence each known partition holds (committed): a record at or below it
    /// is [`Added::Held`].
    partition_seq: HashMap<NaiveDate, u64>,
    /// Sequence of the last record added to a writer.
    added_seq: u64,
    /// Segment merges, node-wide (see `index::merge`).
    merges: super::merge::Merges,
}

fn engine(operation: impl Into<String>) -> impl FnOnce(tantivy::TantivyError) -> SinkError {
    let operation = operation.into();
    move |err| SinkError::new(operation, err)
}

fn other(operation: impl Into<String>) -> impl FnOnce(anyhow::Error) -> SinkError {
    let operation = operation.into();
    move |err| SinkError::new(operation, format!("{err:#}"))
}

impl TantivySink {
    pub fn new(
        store: Arc<IndexStore>,
        writer_memory: u64,
        max_partitions: u32,
    ) -> Result<TantivySink, SinkError> {
        let committed_seq = store
            .read_checkpoint()
            .map_err(other("reading the index checkpoint"))?
            .seq;
        let writer_threads = std::thread::available_parallelism()
            .map(|n| n.get().min(2))
            .unwrap_or(1);
        Ok(TantivySink {
            store,
            writer_memory: writer_memory as usize,
            writer_threads,
            max_partitions: max_partitions as usize,
            committed_seq,
            writers: HashMap::new(),
            touched: BTreeSet::new(),
            partition_seq: HashMap::new(),
            added_seq: committed_seq,
            merges: super::merge::Merges::default(),
        })
    }

    /// The highest sequence partition `day` holds (see `partition_seq`).
    fn held_seq(&mut self, day: NaiveDate) -> Result<u64, SinkError> {
        if let Some(&seq) = self.partition_seq.get(&day) {
            return Ok(seq);
        }
        let committed = match self.store.existing_partition(day) {
            Some(partition) => partition
                .committed_seq()
                .map_err(other(format!("reading partition {day}")))?,
            None => 0,
        };
        let seq = committed.max(self.committed_seq);
        self.partition_seq.insert(day, seq);
        Ok(seq)
    }

    fn writer(&mut self, day: NaiveDate) -> Result<&mut IndexWriter, SinkError> {
        if !self.writers.contains_key(&day) {
            if self.writers.len() >= MAX_OPEN_WRITERS {
                let oldest = *self.writers.keys().min().expect("writers is not empty");
                self.close_writer(oldest)?;
            }
            let partition = self
                .store
                .partition(day)
                .map_err(other(format!("opening partition {day}")))?;
            // One merge thread, and no merges of tantivy's choosing: the sink schedules them
            // (`index::merge`).
            let options = tantivy::indexer::IndexWriterOptions::builder()
                .num_worker_threads(self.writer_threads)
                .memory_budget_per_thread(self.writer_memory / self.writer_threads)
                .num_merge_threads(1)
                .build();
            let writer: IndexWriter = partition
                .index
                .writer_with_options(options)
                .map_err(engine(format!("opening a writer on partition {day}")))?;
            writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
            self.writers.insert(day, writer);
        }
        Ok(self.writers.get_mut(&day).expect("just inserted"))
    }

    /// Commit one partition with what it holds so far and drop its writer.
    fn close_writer(&mut self, day: NaiveDate) -> Result<(), SinkError> {
        if let Some(mut writer) = self.writers.remove(&day)
            && self.touched.remove(&day)
        {
            let seq = self.added_seq;
            self.commit_partition(day, &mut writer, seq)?;
        }
        Ok(())
    }

    fn commit_partition(
        &mut self,
        day: NaiveDate,
        writer: &mut IndexWriter,
        seq: u64,
    ) -> Result<(), SinkError> {
        let operation = format!("committing partition {day}");
        let mut prepared = writer.prepare_commit().map_err(engine(&operation))?;
        prepared.set_payload(&payload_for(seq));
        prepared.commit().map_err(engine(&operation))?;
        // From here the partition holds everything up to `seq`, whatever happens next.
        self.partition_seq.insert(day, seq);
        self.store
            .partition(day)
            .map_err(other(&operation))?
            .reader
            .reload()
            .map_err(engine(format!("reloading partition {day}")))?;
        Ok(())
    }

    /// After a commit: the merges partition `day` calls for, within the node's merge slots.
    fn schedule_merges(&self, day: NaiveDate, writer: &mut IndexWriter) {
        let Some(partition) = self.store.existing_partition(day) else {
            return;
        };
        match partition.index.searchable_segment_metas() {
            Ok(segments) => {
                self.merges.schedule(writer, &segments);
            }
            Err(err) => warn!(partition = %day, error = %err, "reading segments to merge"),
        }
    }

    /// The document of `record`, for a partition whose schema is `layout`.
    fn document(
        &self,
        seq: u64,
        mut record: Record,
        flags: Flags,
        layout: Layout,
    ) -> TantivyDocument {
        let fields = &self.store.fields;
        let ids = if layout.ids {
            super::identifiers::split(&mut record.fields)
        } else {
            None
        };
        // The bytes the document will hold (each value is its bytes and a few of framing), so
        // it is written without growing: `new()` reserves 1 KiB, three times a log line, and
        // every document queued for tantivy's threads holds that.
        let text_bytes = self.store.node.len()
            + record.runner.len()
            + record.path.len()
            + record.level.len()
            + record.message.len()
            + record.stream.len();
        // Plus the few values of `fields_terms` (numbers, strings the line does not hold).
        let value_bytes = value_bytes(&record.fields) + ids.as_ref().map_or(0, value_bytes) + 64;
        let mut doc = TantivyDocument::with_capacity(text_bytes + value_bytes + 96);
        // Parsers keep event times in range; clamp anyway, one bad record must not stop indexing.
        let ts = record.ts.clamp(0, crate::record::END_OF_TIME);
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
            if layout.fields_stored {
                let stored = super::stored_fields::encode(&record.fields, &record.message);
                doc.add_bytes(fields.fields_stored, &stored);
            }
            let parsed = OwnedValue::from(record.fields);
            // The values a search cannot find through the message (identifiers have left for
            // their column, which is always read).
            if layout.fields_terms
                && let Some(terms) = super::parsed_terms::terms(&parsed, &record.message)
            {
                doc.add_field_value(fields.fields_terms, &terms);
            }
            doc.add_field_value(fields.fields, &parsed);
        }
        if let Some(ids) = ids {
            doc.add_field_value(fields.ids, &OwnedValue::from(ids));
        }
        if record.truncated {
            doc.add_text(fields.flags, "truncated");
        }
        if record.parse_error {
            doc.add_text(fields.flags, "parse_error");
        }
        if flags.future_time {
            doc.add_text(fields.flags, "future_time");
        }
        if !record.stream.is_empty() {
            doc.add_text(fields.stream, &record.stream);
        }
        doc
    }
}

/// What a partition's schema holds beyond the first one's: fields are only ever appended, so
/// a field exists when the schema has that many.
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// Identifiers go to `ids` ([`identifiers`](super::identifiers)); else they stay in
    /// `fields`.
    ids: bool,
    /// The doc store keeps `fields_stored` ([`stored_fields`](super::stored_fields)); else it
    /// keeps `fields`.
    fields_stored: bool,
    /// `fields` is a column and the values the message cannot find are terms of
    /// `fields_terms` ([`parsed_terms`](super::parsed_terms)); else `fields` is indexed.
    fields_terms: bool,
}

impl Layout {
    fn of(schema: &tantivy::schema::Schema, fields: &super::Fields) -> Layout {
        let has = |field: tantivy::schema::Field| schema.num_fields() > field.field_id() as usize;
        Layout {
            ids: has(fields.ids),
            fields_stored: has(fields.fields_stored),
            fields_terms: has(fields.fields_terms),
        }
    }
}

/// About the bytes a JSON value takes in a tantivy document: its strings and keys, and a few
/// bytes of framing per value. Record fields are depth-bounded ([`Record::bound_depth`]).
fn value_bytes(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::String(text) => text.len() + 4,
        serde_json::Value::Array(items) => 4 + items.iter().map(value_bytes).sum::<usize>(),
        serde_json::Value::Object(map) => {
            4 + map
                .iter()
                .map(|(key, value)| key.len() + 4 + value_bytes(value))
                .sum::<usize>()
        }
        _ => 9,
    }
}

impl Sink for TantivySink {
    fn committed(&self) -> Result<IndexCheckpoint, SinkError> {
        self.store
            .read_checkpoint()
            .map_err(other("reading the index checkpoint"))
    }

    fn add(&mut self, seq: u64, record: Record, flags: Flags) -> Result<Added, SinkError> {
        let day = day_of(record.ts);
        if seq <= self.held_seq(day)? {
            return Ok(Added::Held);
        }
        if self.store.existing_partition(day).is_none()
            && self.store.partition_count() >= self.max_partitions
        {
            warn!(
                partition = %day, max_partitions = self.max_partitions,
                "dropping a record: a new day partition would exceed index.max_partitions"
            );
            return Ok(Added::Dropped("partition_cap"));
        }
        let layout = Layout::of(&self.writer(day)?.index().schema(), &self.store.fields);
        let document = self.document(seq, record, flags, layout);
        self.writer(day)?
            .add_document(document)
            .map_err(engine(format!("adding to partition {day}")))?;
        self.touched.insert(day);
        self.added_seq = seq;
        Ok(Added::Added)
    }

    fn commit(&mut self, checkpoint: &IndexCheckpoint) -> Result<(), SinkError> {
        for day in std::mem::take(&mut self.touched) {
            let mut writer = self
                .writers
                .remove(&day)
                .expect("touched partitions have a writer");
            let committed = self.commit_partition(day, &mut writer, checkpoint.seq);
            if committed.is_ok() {
                self.schedule_merges(day, &mut writer);
            }
            self.writers.insert(day, writer);
            committed?;
        }
        self.store
            .write_checkpoint(checkpoint)
            .map_err(other("writing the index checkpoint"))?;
        self.committed_seq = checkpoint.seq;
        self.added_seq = self.added_seq.max(checkpoint.seq);
        Ok(())
    }

    fn rollback(&mut self) -> Result<IndexCheckpoint, SinkError> {
        // Writers' uncommitted documents are discarded with them. What each partition holds is
        // what it committed: `partition_seq` keeps that (a partition may have committed before
        // another one failed), so replaying from the checkpoint skips it.
        self.writers.clear();
        self.touched.clear();
        let checkpoint = self.committed()?;
        self.committed_seq = checkpoint.seq;
        self.added_seq = checkpoint.seq;
        Ok(checkpoint)
    }

    /// Merges ingest left to do, in the partitions with an open writer (committed segments
    /// only; within the node's merge slots). Searchers are reloaded too: a merge that ended since shows, and the segments it
    /// replaced are let go (their disk space returns).
    fn maintain(&mut self) {
        let days: Vec<NaiveDate> = self.writers.keys().copied().collect();
        for day in days {
            if let Some(partition) = self.store.existing_partition(day)
                && let Err(err) = partition.reader.reload()
            {
                warn!(partition = %day, error = %err, "reloading a partition's searcher");
            }
            if self.merges.running() >= super::merge::MAX_MERGES {
                continue;
            }
            if let Some(mut writer) = self.writers.remove(&day) {
                self.schedule_merges(day, &mut writer);
                self.writers.insert(day, writer);
            }
        }
    }

    fn apply_retention(&mut self, policy: &RetentionPolicy) -> Result<usize, SinkError> {
        // Callers commit first. Only the writers of the partitions dropped are closed: closing
        // a writer kills the merges it runs, and retention runs every minute.
        let dropped = retention::plan(&self.store, *policy);
        for day in &dropped {
            self.writers.remove(day);
            self.touched.remove(day);
        }
        retention::drop_days(&self.store, &dropped, *policy);
        for day in &dropped {
            self.partition_seq.remove(day);
        }
        Ok(dropped.len())
    }
}

#[cfg(test)]
impl super::sink::conformance::Inspect for TantivySink {
    fn sequences(&self) -> Vec<u64> {
        let mut seqs = Vec::new();
        for partition in self.store.all() {
            partition.reader.reload().unwrap();
            let searcher = partition.reader.searcher();
            for segment in searcher.segment_readers() {
                let column = segment.fast_fields().u64("seq").unwrap();
                let alive = segment.alive_bitset();
                for doc in 0..segment.max_doc() {
                    if alive.is_some_and(|bits| !bits.is_alive(doc)) {
                        continue;
                    }
                    seqs.extend(column.values_for_doc(doc));
                }
            }
        }
        seqs.sort();
        seqs
    }

    fn break_commits(&mut self, broken: bool) {
        // The checkpoint is written through `checkpoint.json.tmp`: a directory there makes the
        // write fail after every partition committed.
        let tmp = self.store.dir().join("checkpoint.json.tmp");
        if broken {
            std::fs::create_dir_all(&tmp).unwrap();
        } else {
            std::fs::remove_dir_all(&tmp).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partitions_pass_the_sink_suite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        super::super::sink::conformance::run(&mut || {
            let (store, _) = IndexStore::open(&path, "n").unwrap();
            TantivySink::new(store, 64_000_000, 1000).unwrap()
        });
    }

    /// Retention runs every minute: it must leave the writers of the partitions it keeps open
    /// (closing a writer kills the merges it runs), and close those it drops.
    #[test]
    fn retention_closes_only_the_writers_of_dropped_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = IndexStore::open(&dir.path().join("index"), "n").unwrap();
        let mut sink = TantivySink::new(store.clone(), 64_000_000, 1000).unwrap();
        let day_micros = 86_400_000_000i64;
        let now = crate::record::now_micros();
        let recent = now - day_micros;
        let old = now - 400 * day_micros;
        for (seq, ts) in [(1, recent), (2, old), (3, recent)] {
            let added = sink
                .add(seq, Record::test_line(ts, "line"), Flags::default())
                .unwrap();
            assert_eq!(added, Added::Added);
        }
        sink.commit(&IndexCheckpoint {
            seq: 3,
            checkpoints: Vec::new(),
        })
        .unwrap();
        assert_eq!(sink.writers.len(), 2);
        let keep_all = RetentionPolicy::default();
        assert_eq!(sink.apply_retention(&keep_all).unwrap(), 0);
        assert_eq!(
            sink.writers.len(),
            2,
            "nothing dropped, every writer stays open"
        );
        let month = RetentionPolicy {
            max_age_days: 30,
            ..RetentionPolicy::default()
        };
        assert_eq!(sink.apply_retention(&month).unwrap(), 1);
        assert_eq!(
            sink.writers.keys().copied().collect::<Vec<_>>(),
            vec![day_of(recent)],
            "only the dropped partition's writer is closed"
        );
        assert_eq!(store.all().len(), 1);
    }
}
