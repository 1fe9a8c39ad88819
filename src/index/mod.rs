//! The full-text index: tantivy, one index per UTC day.
//!
//! # Guarantees
//!
//! * **Searchable within a commit interval.** The indexer commits at least every
//!   `index.commit_interval` (1 s) while new records arrive; a record becomes visible to search
//!   when the commit that contains it has been reloaded by the partition's reader.
//! * **Exactly once.** Every document carries the queue sequence number of its record (`seq`).
//!   A commit cycle commits each partition it touched with the payload `{"seq": N}`, then writes
//!   the index checkpoint `checkpoint.json` (sequence `N` plus every runner's file checkpoints as
//!   of `N`) atomically, and only then acks the queue up to `N`. At startup
//!   ([`IndexStore::open`]) any partition whose payload is ahead of the checkpoint (a crash in
//!   the middle of a cycle) has its documents with `seq > checkpoint` deleted, so every
//!   partition agrees with the checkpoint, and the indexer resumes after it.
//! * **Ground truth for the queue.** If the queue is lost, the runners restart from the file
//!   checkpoints in `checkpoint.json`, which match exactly what is indexed.
//!
//! # On-disk layout
//!
//! ```text
//! index/
//!   checkpoint.json         {"seq": N, "checkpoints": [["runner/stream", "<file checkpoint>"], ...]}
//!   2026-01-15/             one tantivy index per UTC day of the event time
//!     meta.json             tantivy's; its payload is {"seq": N}
//!     *.idx *.pos *.store *.fast ...
//! ```
//!
//! # Retention
//!
//! Whole day partitions are dropped: those older than `index.retention_days`, then the oldest
//! while the total size exceeds `index.retention_max_bytes`.

pub mod elasticsearch;
mod indexer;
mod retention;
pub mod sink;
mod tantivy_sink;
pub mod tokenizer;

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tantivy::indexer::NoMergePolicy;
use tantivy::query::RangeQuery;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, JsonObjectOptions, STORED,
    Schema, TextFieldIndexing, TextOptions,
};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::{Index, IndexReader, IndexSettings, ReloadPolicy, Term};
use tracing::{info, warn};

pub use indexer::{Indexer, IndexerControl};
pub use retention::{Placement, RetentionPolicy};
pub use sink::{Added, Flags, Sink, SinkError};
pub use tantivy_sink::{MAX_OPEN_WRITERS, TantivySink};

/// Log lines repeat themselves: larger blocks and a higher zstd level shrink the doc store a
/// lot, at the cost of decompressing a block per hit fetched (hits are fetched 100 at a time).
const DOCSTORE_ZSTD_LEVEL: i32 = 3;
const DOCSTORE_BLOCK_BYTES: usize = 256 * 1024;

/// Field handles of the schema shared by every partition.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Event time (date, millisecond precision, fast): range queries and histograms.
    pub ts: Field,
    /// Total order for "newest first" and cursors: `ts_millis << 22 | seq & 0x3F_FFFF`.
    pub sort: Field,
    /// Queue sequence number: the record's identity (fast, for exactly-once repair).
    pub seq: Field,
    pub node: Field,
    pub runner: Field,
    pub path: Field,
    pub offset: Field,
    pub level: Field,
    pub message: Field,
    pub fields: Field,
    /// `truncated` when the line was cut at `max_line_bytes`.
    pub flags: Field,
    /// The file stream of the line (`<runner>/<dev>:<inode>`): context lookups.
    pub stream: Field,
}

/// The schema of new partitions. Changes must only append fields: `Field` ids are positions,
/// and older partitions keep the schema they were created with.
pub fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // No field norms anywhere: hits are ordered by time, not by BM25 length normalisation, and
    // norms cost a byte per document per field.
    let keyword = |tokenizer: &str, record: IndexRecordOption| {
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record)
            .set_fieldnorms(false)
    };
    let keyword_field = TextOptions::default()
        .set_stored()
        .set_indexing_options(keyword("raw", IndexRecordOption::Basic));
    // Parsed fields are keywords: `fields.service:payments` matches the whole value exactly,
    // and without positions they cost little. Numbers are indexed as numbers.
    // Fast too: top values, stats and numeric ranges (`fields.status:[500 TO 599]`) read columns.
    let keyword_json = JsonObjectOptions::default()
        .set_stored()
        .set_fast("raw")
        .set_indexing_options(keyword("raw", IndexRecordOption::Basic));
    // Positions, for phrase queries.
    let message = TextOptions::default()
        .set_stored()
        .set_indexing_options(keyword(
            tokenizer::MESSAGE_TOKENIZER,
            IndexRecordOption::WithFreqsAndPositions,
        ));
    // `ts` and `seq` are read back from their fast fields, not stored twice.
    let date_options = DateOptions::from(FAST).set_precision(DateTimePrecision::Milliseconds);
    let fields = Fields {
        ts: builder.add_date_field("ts", date_options),
        sort: builder.add_u64_field("sort", FAST),
        seq: builder.add_u64_field("seq", FAST),
        node: builder.add_text_field("node", keyword_field.clone().set_fast("raw")),
        runner: builder.add_text_field("runner", keyword_field.clone().set_fast("raw")),
        path: builder.add_text_field("path", keyword_field.clone().set_fast("raw")),
        offset: builder.add_u64_field("offset", STORED),
        level: builder.add_text_field("level", keyword_field.clone().set_fast("raw")),
        message: builder.add_text_field("message", message),
        fields: builder.add_json_field("fields", keyword_json),
        flags: builder.add_text_field("flags", keyword_field.clone()),
        stream: builder.add_text_field("stream", keyword_field),
    };
    (builder.build(), fields)
}

/// The sort key of a document: newest first by time, ties broken by queue order.
pub fn sort_key(ts_micros: i64, seq: u64) -> u64 {
    let millis = (ts_micros / 1000).clamp(0, (1i64 << 42) - 1) as u64;
    (millis << 22) | (seq & 0x3F_FFFF)
}

/// The UTC day of an event time.
pub fn day_of(ts_micros: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_micros(ts_micros)
        .unwrap_or_default()
        .date_naive()
}

fn day_start_micros(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros()
}

/// One day of the index.
pub struct Partition {
    pub day: NaiveDate,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
}

impl Partition {
    /// Micros range `[start, end)` this partition covers.
    pub fn time_range(&self) -> (i64, i64) {
        let start = day_start_micros(self.day);
        (start, start + 86_400_000_000)
    }

    /// The sequence this partition's last commit covers (0 when never committed).
    pub fn committed_seq(&self) -> anyhow::Result<u64> {
        let metas = self.index.load_metas()?;
        Ok(parse_payload(metas.payload.as_deref()))
    }

    pub fn disk_bytes(&self) -> u64 {
        dir_size(&self.dir)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    seq: u64,
}

fn parse_payload(payload: Option<&str>) -> u64 {
    payload
        .and_then(|text| serde_json::from_str::<Payload>(text).ok())
        .map(|p| p.seq)
        .unwrap_or(0)
}

pub fn payload_for(seq: u64) -> String {
    serde_json::to_string(&Payload { seq }).expect("payload serializes")
}

/// `checkpoint.json`: the sequence every partition agrees on, and the file checkpoints as of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexCheckpoint {
    pub seq: u64,
    /// `(runner/stream key, checkpoint JSON)`, sorted by key.
    pub checkpoints: Vec<(String, String)>,
}

/// All partitions, shared between the indexer (writes), search (reads) and retention (drops).
pub struct IndexStore {
    dir: PathBuf,
    schema: Schema,
    pub fields: Fields,
    pub node: String,
    partitions: RwLock<BTreeMap<NaiveDate, Arc<Partition>>>,
}

impl IndexStore {
    /// Open every partition under `dir` and repair any partition that is ahead of the
    /// checkpoint (see the module doc). Returns the store and the checkpoint to resume from.
    pub fn open(dir: &Path, node: &str) -> anyhow::Result<(Arc<IndexStore>, IndexCheckpoint)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (schema, fields) = schema();
        let store = IndexStore {
            dir: dir.to_path_buf(),
            schema,
            fields,
            node: node.to_string(),
            partitions: RwLock::new(BTreeMap::new()),
        };
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(day) = NaiveDate::parse_from_str(&name, "%Y-%m-%d") else {
                continue;
            };
            if !entry.path().join("meta.json").exists() {
                // A partition created but never committed holds nothing.
                std::fs::remove_dir_all(entry.path()).ok();
                continue;
            }
            let partition = store
                .open_partition(day, false)
                .with_context(|| format!("opening index partition {}", entry.path().display()))?;
            store
                .partitions
                .write()
                .expect("partitions lock")
                .insert(day, Arc::new(partition));
        }
        let checkpoint = store.read_checkpoint()?;
        store.repair_to(checkpoint.seq)?;
        metrics::gauge!(crate::metrics::INDEX_PARTITIONS).set(store.partition_count() as f64);
        Ok((Arc::new(store), checkpoint))
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }

    pub fn read_checkpoint(&self) -> anyhow::Result<IndexCheckpoint> {
        let path = self.checkpoint_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is corrupt", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Ok(IndexCheckpoint::default())
            }
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Write the checkpoint atomically: temp file, fsync, rename, fsync the directory.
    pub fn write_checkpoint(&self, checkpoint: &IndexCheckpoint) -> anyhow::Result<()> {
        let path = self.checkpoint_path();
        let tmp = self.dir.join("checkpoint.json.tmp");
        {
            let mut file = std::fs::File::create(&tmp)?;
            serde_json::to_writer(&mut file, checkpoint)?;
            file.flush()?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    /// Delete documents with `seq > seq` from partitions whose last commit is ahead of `seq`.
    fn repair_to(&self, seq: u64) -> anyhow::Result<()> {
        for partition in self.all() {
            let committed = partition.committed_seq()?;
            if committed <= seq {
                continue;
            }
            warn!(
                partition = %partition.day, partition_seq = committed, checkpoint_seq = seq,
                "partition is ahead of the index checkpoint (crash during a commit); removing the extra documents"
            );
            let mut writer = partition
                .index
                .writer_with_num_threads::<tantivy::TantivyDocument>(1, 15_000_000)?;
            writer.set_merge_policy(Box::new(NoMergePolicy));
            writer.delete_query(Box::new(RangeQuery::new(
                Bound::Excluded(Term::from_field_u64(self.fields.seq, seq)),
                Bound::Unbounded,
            )))?;
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(&payload_for(seq));
            prepared.commit()?;
            writer.wait_merging_threads()?;
            partition.reader.reload()?;
        }
        Ok(())
    }

    fn open_partition(&self, day: NaiveDate, create: bool) -> anyhow::Result<Partition> {
        let dir = self.dir.join(day.format("%Y-%m-%d").to_string());
        let index = if dir.join("meta.json").exists() {
            Index::open_in_dir(&dir)?
        } else if create {
            std::fs::create_dir_all(&dir)?;
            let settings = IndexSettings {
                docstore_compression: Compressor::Zstd(ZstdCompressor {
                    compression_level: Some(DOCSTORE_ZSTD_LEVEL),
                }),
                docstore_blocksize: DOCSTORE_BLOCK_BYTES,
                ..IndexSettings::default()
            };
            Index::builder()
                .schema(self.schema.clone())
                .settings(settings)
                .create_in_dir(&dir)?
        } else {
            anyhow::bail!("partition {} does not exist", dir.display());
        };
        tokenizer::register(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Partition {
            day,
            dir,
            index,
            reader,
        })
    }

    /// The partition of `day`, created if needed.
    pub fn partition(&self, day: NaiveDate) -> anyhow::Result<Arc<Partition>> {
        if let Some(partition) = self.partitions.read().expect("partitions lock").get(&day) {
            return Ok(partition.clone());
        }
        let mut partitions = self.partitions.write().expect("partitions lock");
        if let Some(partition) = partitions.get(&day) {
            return Ok(partition.clone());
        }
        let partition = Arc::new(self.open_partition(day, true)?);
        info!(partition = %day, "created index partition");
        partitions.insert(day, partition.clone());
        metrics::gauge!(crate::metrics::INDEX_PARTITIONS).set(partitions.len() as f64);
        Ok(partition)
    }

    /// The partition of `day` if it exists (never creates one).
    pub fn existing_partition(&self, day: NaiveDate) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .get(&day)
            .cloned()
    }

    /// The directory holding the partitions and `checkpoint.json`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where queue entries that cannot be decoded are kept: `<data_dir>/quarantine`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.dir.with_file_name("quarantine")
    }

    /// Partitions that overlap `[from, to)` (micros), newest first.
    pub fn overlapping(&self, from: i64, to: i64) -> Vec<Arc<Partition>> {
        let partitions = self.partitions.read().expect("partitions lock");
        partitions
            .values()
            .rev()
            .filter(|p| {
                let (start, end) = p.time_range();
                start < to && from < end
            })
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.read().expect("partitions lock").len()
    }

    /// Remove a partition from the registry and delete its files. Searches that already hold
    /// it finish on the open files (tantivy mmaps; unlinked files stay readable).
    pub fn drop_partition(&self, day: NaiveDate) -> anyhow::Result<()> {
        let removed = self
            .partitions
            .write()
            .expect("partitions lock")
            .remove(&day);
        if let Some(partition) = removed {
            std::fs::remove_dir_all(&partition.dir)
                .with_context(|| format!("deleting {}", partition.dir.display()))?;
            metrics::gauge!(crate::metrics::INDEX_PARTITIONS).set(self.partition_count() as f64);
        }
        Ok(())
    }

    pub fn disk_bytes(&self) -> u64 {
        dir_size(&self.dir)
    }
}

fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::TantivyDocument;
    use tantivy::collector::Count;
    use tantivy::query::AllQuery;

    /// A crash after a partition committed but before `checkpoint.json` was written leaves the
    /// partition ahead; reopening trims it back so the replay from the queue cannot duplicate.
    #[test]
    fn partition_ahead_of_the_checkpoint_is_trimmed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
        {
            let (store, checkpoint) = IndexStore::open(dir.path(), "n").unwrap();
            assert_eq!(checkpoint.seq, 0);
            let partition = store.partition(day).unwrap();
            let mut writer = partition
                .index
                .writer_with_num_threads(1, 15_000_000)
                .unwrap();
            for seq in 1..=10u64 {
                let mut doc = TantivyDocument::new();
                doc.add_u64(store.fields.seq, seq);
                doc.add_text(store.fields.message, format!("line {seq}"));
                writer.add_document(doc).unwrap();
            }
            let mut prepared = writer.prepare_commit().unwrap();
            prepared.set_payload(&payload_for(10));
            prepared.commit().unwrap();
            store
                .write_checkpoint(&IndexCheckpoint {
                    seq: 6,
                    checkpoints: vec![("r/1".into(), "{}".into())],
                })
                .unwrap();
        }
        let (store, checkpoint) = IndexStore::open(dir.path(), "n").unwrap();
        assert_eq!(checkpoint.seq, 6);
        assert_eq!(checkpoint.checkpoints.len(), 1);
        let partition = store.partition(day).unwrap();
        assert_eq!(partition.committed_seq().unwrap(), 6);
        let count = partition
            .reader
            .searcher()
            .search(&AllQuery, &Count)
            .unwrap();
        assert_eq!(count, 6);
    }

    #[test]
    fn sort_key_orders_by_time_then_sequence() {
        assert!(sort_key(2_000, 1) > sort_key(1_000, 5));
        assert!(sort_key(1_000, 6) > sort_key(1_000, 5));
        assert_eq!(day_of(0), NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
    }
}
