//! The full-text index: tantivy, one index per UTC day.
//!
//! # Guarantees
//!
//! * **Searchable within a commit interval.** The indexer commits so that a record is
//!   searchable within `index.commit_interval` (1 s) of entering the queue: the interval
//!   counts from the oldest uncommitted record's arrival, and a commit starts early by what
//!   recent commits took. A record becomes visible to search when the commit that contains it
//!   has been reloaded by the partition's reader.
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
pub mod identifiers;
mod indexer;
pub mod merge;
pub mod parsed_terms;
mod retention;
pub mod sink;
pub mod stored_fields;
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
use tracing::{error, info, warn};

pub use indexer::{Indexer, IndexerControl};
pub use retention::{Placement, RetentionPolicy};
pub use sink::{Added, Flags, Sink, SinkError};
pub use tantivy_sink::{MAX_OPEN_WRITERS, TantivySink};

/// Log lines repeat themselves: larger blocks and a higher zstd level shrink the doc store a
/// lot, at the cost of decompressing a block per hit fetched (hits are fetched 100 at a time).
const DOCSTORE_ZSTD_LEVEL: i32 = 3;
pub(crate) const DOCSTORE_BLOCK_BYTES: usize = 256 * 1024;
/// Decompressed doc store blocks a searcher keeps per segment. tantivy's default, 100, is up
/// to 25 MiB per segment at [`DOCSTORE_BLOCK_BYTES`], held as long as the searcher lives: on
/// a node that is not ingesting (no reload), what an operator browsed stayed resident, growing
/// with the number of segments. Hits are fetched in time order, which is doc order within a
/// segment, so one request reads each block once and a few blocks suffice.
pub(crate) const DOCSTORE_CACHE_BLOCKS: usize = 4;

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
    /// Identifiers among the parsed fields, stored and in columns, not indexed
    /// ([`identifiers`]). Partitions created before it have no such field.
    pub ids: Field,
    /// The parsed fields as the doc store keeps them, strings as ranges of the message where
    /// they are in it ([`stored_fields`]); `fields` itself is then not stored. Partitions
    /// created before it have no such field and store `fields`.
    pub fields_stored: Field,
    /// The parsed values a search cannot find through the message ([`parsed_terms`]): numbers,
    /// booleans, and strings not cut from the message at word boundaries. Indexed, nothing
    /// else. In partitions that have it, `fields` is a column only; older partitions index
    /// `fields` itself.
    pub fields_terms: Field,
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
    // Where a line came from repeats on every document: a column (one ordinal per document, a
    // dictionary per segment) holds it in a few bits, where the doc store paid ~9 compressed
    // bytes a line for it (a quarter of the store on nginx lines). Hits read it from there.
    let source_field = TextOptions::default()
        .set_fast("raw")
        .set_indexing_options(keyword("raw", IndexRecordOption::Basic));
    // Parsed fields are keywords: `fields.service:payments` matches the whole value exactly.
    // They are columns: top values, stats, numeric ranges (`fields.status:[500 TO 599]`), and
    // the check of a value found through the message ([`parsed_terms`]). Not indexed: the
    // values a search cannot find through the message are terms of `fields_terms`. Not
    // stored: `fields_stored` holds them, most of them as ranges of the message.
    let parsed_column = JsonObjectOptions::default().set_fast("raw");
    let keyword_json =
        JsonObjectOptions::default().set_indexing_options(keyword("raw", IndexRecordOption::Basic));
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
        node: builder.add_text_field("node", source_field.clone()),
        runner: builder.add_text_field("runner", source_field.clone()),
        path: builder.add_text_field("path", source_field.clone()),
        offset: builder.add_u64_field("offset", FAST),
        level: builder.add_text_field("level", source_field.clone()),
        message: builder.add_text_field("message", message),
        fields: builder.add_json_field("fields", parsed_column),
        flags: builder.add_text_field("flags", keyword_field),
        stream: builder.add_text_field("stream", source_field),
        ids: builder.add_json_field(
            "ids",
            JsonObjectOptions::default().set_stored().set_fast("raw"),
        ),
        fields_stored: builder.add_bytes_field("fields_stored", STORED),
        fields_terms: builder.add_json_field("fields_terms", keyword_json),
    };
    (builder.build(), fields)
}

/// The schema queries are parsed against: [`schema`] with `fields` indexed as keywords, as
/// partitions before `fields_terms` index it (tantivy's parser builds no term for a field
/// that is not indexed). Every term of `fields` is then routed per partition
/// ([`crate::search::query`]).
pub fn query_schema() -> (Schema, Fields) {
    let (schema, fields) = schema();
    let mut builder = Schema::builder();
    for (field, entry) in schema.fields() {
        if field == fields.fields {
            let indexing = TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false);
            let options = JsonObjectOptions::default()
                .set_fast("raw")
                .set_indexing_options(indexing);
            builder.add_json_field(entry.name(), options);
        } else {
            builder.add_field(entry.clone());
        }
    }
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
    /// Damaged partitions moved aside at open (see [`IndexStore::set_aside_partitions`]).
    set_aside: std::sync::Mutex<Vec<String>>,
    rebuilt_checkpoint: std::sync::Mutex<bool>,
}

/// Whether a partition directory without `meta.json` holds no segment: only tantivy's lock
/// and bookkeeping files (names starting with a dot).
fn holds_no_segments(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .all(|e| e.file_name().to_string_lossy().starts_with('.'))
        })
        .unwrap_or(false)
}

impl IndexStore {
    /// Open every partition under `dir`. Nothing indexed is deleted: a damaged partition is
    /// set aside (moved, reported), a missing `checkpoint.json` is rebuilt from the partitions'
    /// commits, a partition ahead of the checkpoint is kept (see [`IndexStore::repair_to`]).
    /// Returns the store and the checkpoint to resume from.
    pub fn open(dir: &Path, node: &str) -> anyhow::Result<(Arc<IndexStore>, IndexCheckpoint)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (schema, fields) = schema();
        let store = IndexStore {
            dir: dir.to_path_buf(),
            schema,
            fields,
            node: node.to_string(),
            partitions: RwLock::new(BTreeMap::new()),
            set_aside: std::sync::Mutex::new(Vec::new()),
            rebuilt_checkpoint: std::sync::Mutex::new(false),
        };
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(day) = NaiveDate::parse_from_str(&name, "%Y-%m-%d") else {
                continue;
            };
            if !entry.path().join("meta.json").exists() {
                if holds_no_segments(&entry.path()) {
                    // Created but never committed (only tantivy's lock files): it holds nothing.
                    info!(partition = %entry.path().display(), "removing an index partition that was never committed");
                    std::fs::remove_dir_all(entry.path()).ok();
                } else {
                    store.set_aside(&entry.path(), "it has segment files but no meta.json")?;
                }
                continue;
            }
            match store.open_partition(day, false) {
                Ok(partition) => {
                    store
                        .partitions
                        .write()
                        .expect("partitions lock")
                        .insert(day, Arc::new(partition));
                }
                Err(err) => {
                    store.set_aside(&entry.path(), &format!("it cannot be opened: {err:#}"))?
                }
            }
        }
        let checkpoint = match store.read_checkpoint_file()? {
            Some(checkpoint) => checkpoint,
            None if store.partition_count() > 0 => {
                // What the partitions' own commits prove: each holds everything up to its
                // payload, so the lowest payload is a point every partition has reached.
                // Replaying from there adds nothing twice (the sink skips what a partition
                // holds) and loses nothing.
                let seq = store
                    .all()
                    .iter()
                    .map(|p| p.committed_seq().unwrap_or(0))
                    .min()
                    .unwrap_or(0);
                warn!(
                    checkpoint = %store.checkpoint_path().display(), seq,
                    "checkpoint.json is missing; rebuilt its sequence from the partitions' commits (nothing was deleted; runners' file positions come from the queue)"
                );
                let rebuilt = IndexCheckpoint {
                    seq,
                    checkpoints: Vec::new(),
                };
                store.write_checkpoint(&rebuilt)?;
                *store.rebuilt_checkpoint.lock().expect("lock") = true;
                rebuilt
            }
            None => IndexCheckpoint::default(),
        };
        metrics::gauge!(crate::metrics::INDEX_PARTITIONS).set(store.partition_count() as f64);
        Ok((Arc::new(store), checkpoint))
    }

    /// Move a damaged partition out of the way (never delete it): into `aside/` under the
    /// index dir, reported in the status and the log with what to do.
    fn set_aside(&self, path: &Path, reason: &str) -> anyhow::Result<()> {
        let aside_dir = self.dir.join("aside");
        std::fs::create_dir_all(&aside_dir)
            .with_context(|| format!("creating {}", aside_dir.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = aside_dir.join(format!(
            "{name}.{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        ));
        std::fs::rename(path, &target)
            .with_context(|| format!("moving the damaged partition {} aside", path.display()))?;
        error!(
            partition = %path.display(), moved_to = %target.display(), reason,
            "an index partition is damaged and was set aside; the node runs without it (its documents are not searchable). Restore the partition from a backup into the index dir, or delete the moved copy once it is not needed"
        );
        self.set_aside.lock().expect("lock").push(format!(
            "{} ({reason}): moved to {}",
            path.display(),
            target.display()
        ));
        Ok(())
    }

    /// Partitions set aside when the store was opened, with why and where they are.
    pub fn set_aside_partitions(&self) -> Vec<String> {
        self.set_aside.lock().expect("lock").clone()
    }

    /// Whether `checkpoint.json` was missing and rebuilt from the partitions at open.
    pub fn checkpoint_was_rebuilt(&self) -> bool {
        *self.rebuilt_checkpoint.lock().expect("lock")
    }

    /// The highest sequence any partition's commit holds: a new queue's sequences must
    /// start above it, or a partition would take new records for ones it holds.
    pub fn highest_seq(&self) -> u64 {
        self.all()
            .iter()
            .map(|p| p.committed_seq().unwrap_or(0))
            .max()
            .unwrap_or(0)
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }

    pub fn read_checkpoint(&self) -> anyhow::Result<IndexCheckpoint> {
        Ok(self.read_checkpoint_file()?.unwrap_or_default())
    }

    /// `checkpoint.json`, `None` if there is none. A damaged one is an error that names it:
    /// guessing would either lose or duplicate lines.
    fn read_checkpoint_file(&self) -> anyhow::Result<Option<IndexCheckpoint>> {
        let path = self.checkpoint_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
                format!(
                    "{} is damaged; restore it from a backup, or run `lograft repair` to see what it would do (it moves the file aside, and lograft rebuilds its sequence from the partitions; the runners' file positions then come from the queue)",
                    path.display()
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
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
    /// Only when the queue was lost and rebuilt: the runners then read their files again from
    /// the checkpoint's positions, and would add those documents a second time. With the queue
    /// intact nothing is trimmed (the sink skips what a partition holds).
    pub fn repair_to(&self, seq: u64) -> anyhow::Result<()> {
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
            .doc_store_cache_num_blocks(DOCSTORE_CACHE_BLOCKS)
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

    fn count(partition: &Partition) -> usize {
        partition
            .reader
            .searcher()
            .search(&AllQuery, &Count)
            .unwrap()
    }

    /// Ten committed documents in partition `day` (payload 10).
    fn partition_with_ten(store: &IndexStore, day: NaiveDate) {
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
        partition.reader.reload().unwrap();
    }

    /// Fault review (issue 13) item 3: opening never deletes indexed data. A partition with
    /// segments but no `meta.json`, or one that cannot be opened, is set aside (moved and
    /// reported) and the others open; a missing `checkpoint.json` is rebuilt from the
    /// partitions' commits; a partition ahead of a (stale) checkpoint is kept.
    #[test]
    fn opening_sets_damage_aside_and_deletes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let days: Vec<NaiveDate> = (15..=18)
            .map(|d| NaiveDate::from_ymd_opt(2026, 1, d).unwrap())
            .collect();
        {
            let (store, _) = IndexStore::open(dir.path(), "n").unwrap();
            for day in &days {
                partition_with_ten(&store, *day);
            }
            // A stale checkpoint (a restored backup): the partitions hold more.
            store
                .write_checkpoint(&IndexCheckpoint {
                    seq: 4,
                    checkpoints: Vec::new(),
                })
                .unwrap();
        }
        let part = |day: &NaiveDate| dir.path().join(day.format("%Y-%m-%d").to_string());
        std::fs::remove_file(part(&days[0]).join("meta.json")).unwrap();
        std::fs::write(part(&days[1]).join("meta.json"), b"garbage").unwrap();
        // A partition created but never committed holds only tantivy's lock files.
        let empty = dir.path().join("2026-01-20");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join(".tantivy-writer.lock"), b"").unwrap();

        let (store, checkpoint) = IndexStore::open(dir.path(), "n").unwrap();
        assert_eq!(checkpoint.seq, 4);
        assert_eq!(store.partition_count(), 2, "the two sound partitions open");
        for day in &days[2..] {
            assert_eq!(
                count(&store.partition(*day).unwrap()),
                10,
                "nothing trimmed"
            );
        }
        let aside = store.set_aside_partitions();
        assert_eq!(aside.len(), 2, "{aside:?}");
        assert!(
            aside.iter().any(|a| a.contains("no meta.json")),
            "{aside:?}"
        );
        assert!(
            aside.iter().any(|a| a.contains("cannot be opened")),
            "{aside:?}"
        );
        // Moved, not deleted: the segments are still there.
        let moved: Vec<_> = std::fs::read_dir(dir.path().join("aside"))
            .unwrap()
            .collect();
        assert_eq!(moved.len(), 2);
        assert!(!empty.exists(), "the never-committed partition is gone");
        drop(store);

        // checkpoint.json lost: rebuilt from what the partitions committed.
        std::fs::remove_file(dir.path().join("checkpoint.json")).unwrap();
        let (store, checkpoint) = IndexStore::open(dir.path(), "n").unwrap();
        assert_eq!(checkpoint.seq, 10);
        assert!(store.checkpoint_was_rebuilt());
        assert_eq!(store.highest_seq(), 10);
        for day in &days[2..] {
            assert_eq!(
                count(&store.partition(*day).unwrap()),
                10,
                "nothing deleted"
            );
        }
        drop(store);
        // A damaged checkpoint.json is refused with what to do.
        std::fs::write(dir.path().join("checkpoint.json"), b"{").unwrap();
        let err = IndexStore::open(dir.path(), "n").err().unwrap();
        assert!(
            format!("{err:#}").contains("checkpoint.json is damaged"),
            "{err:#}"
        );
    }

    /// A crash after a partition committed but before `checkpoint.json` was written leaves the
    /// partition ahead; when the queue was lost too, the runners read their files again from
    /// the checkpoint, so `repair_to` trims the partition back (the node calls it then only).
    #[test]
    fn partition_ahead_of_the_checkpoint_is_trimmed_by_repair() {
        let dir = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
        {
            let (store, checkpoint) = IndexStore::open(dir.path(), "n").unwrap();
            assert_eq!(checkpoint.seq, 0);
            partition_with_ten(&store, day);
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
        assert_eq!(
            count(&store.partition(day).unwrap()),
            10,
            "open trims nothing"
        );
        store.repair_to(checkpoint.seq).unwrap();
        let partition = store.partition(day).unwrap();
        assert_eq!(partition.committed_seq().unwrap(), 6);
        assert_eq!(count(&partition), 6);
    }

    #[test]
    fn sort_key_orders_by_time_then_sequence() {
        assert!(sort_key(2_000, 1) > sort_key(1_000, 5));
        assert!(sort_key(1_000, 6) > sort_key(1_000, 5));
        assert_eq!(day_of(0), NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
    }
}
