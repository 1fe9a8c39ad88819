//! [`Sink`]: where the indexer puts records — the seam an index engine implements.
//!
//! # Contract (every sink passes `index::sink::conformance`)
//!
//! * **Exactly once.** Records arrive with their queue sequence. A sink never holds a sequence
//!   twice: after a crash, after a failed commit, after [`Sink::rollback`], a record the sink
//!   already holds is answered [`Added::Held`] and not added again. (A failed commit may have
//!   committed part of the data: the sink must know which part.)
//! * **Durable on commit.** [`Sink::commit`] returns once everything added and the checkpoint
//!   are durable and visible to search; [`Sink::committed`] gives that checkpoint back after a
//!   restart, and the indexer resumes after its sequence.
//! * **Retention.** [`Sink::apply_retention`] drops whole time ranges under the policy.

use crate::index::{IndexCheckpoint, RetentionPolicy};
use crate::record::Record;

/// Why a sink failed. Our own type: the engine's error is the source.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {source}")]
pub struct SinkError {
    /// What was being done, e.g. "committing partition 2026-12-01".
    pub operation: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl SinkError {
    pub fn new(
        operation: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> SinkError {
        SinkError {
            operation: operation.into(),
            source: source.into(),
        }
    }
}

/// What became of one record given to [`Sink::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// The sink already holds this sequence (committed before a failure or a restart).
    Held,
    /// Given up on purpose, with the reason label of `lograft_index_dropped_total`.
    Dropped(&'static str),
}

/// Flags the indexer sets on a record beyond the record's own (`truncated`, `parse_error`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// The event time was later than arrival + grace: the record carries its arrival time.
    pub future_time: bool,
}

pub trait Sink: Send {
    /// The checkpoint of the last complete commit.
    fn committed(&self) -> Result<IndexCheckpoint, SinkError>;
    /// Add one record (visible after the next commit).
    fn add(&mut self, seq: u64, record: Record, flags: Flags) -> Result<Added, SinkError>;
    /// Make everything added durable and searchable, recording `checkpoint` with it.
    fn commit(&mut self, checkpoint: &IndexCheckpoint) -> Result<(), SinkError>;
    /// Forget what was added since the last commit (after a failure). Returns the checkpoint
    /// to resume from.
    fn rollback(&mut self) -> Result<IndexCheckpoint, SinkError>;
    /// Drop data under `policy` (what was added is committed first); returns the number of
    /// time ranges dropped.
    fn apply_retention(&mut self, policy: &RetentionPolicy) -> Result<usize, SinkError>;
    /// Background upkeep while nothing is added (the embedded index goes on merging segments
    /// after ingest stops). Nothing by default.
    fn maintain(&mut self) {}
}

/// The behaviour every [`Sink`] must show, as a reusable suite: run it against a sink factory
/// (`open(dir)` reopens the same sink from the same place, as after a restart). The embedded
/// sink runs it in CI; adapters run it against their engine.
#[cfg(test)]
pub mod conformance {
    use super::*;

    fn record(ts: i64, message: &str) -> Record {
        Record::test_line(ts, message)
    }

    fn checkpoint(seq: u64) -> IndexCheckpoint {
        IndexCheckpoint {
            seq,
            checkpoints: vec![("r/1".into(), format!("{{\"offset\":{seq}}}"))],
        }
    }

    /// What a sink holds, for the suite: the sequences it would answer with (sorted).
    pub trait Inspect {
        fn sequences(&self) -> Vec<u64>;
        /// Make the next commits fail after part of the data is committed (as a disk that
        /// fills up in the middle of a commit does), or stop doing so.
        fn break_commits(&mut self, broken: bool);
    }

    /// Run every check. `open` must reopen the sink on the same storage each time.
    pub fn run<S: Sink + Inspect>(open: &mut dyn FnMut() -> S) {
        commit_then_reopen_resumes_after_the_checkpoint(open);
        uncommitted_records_are_gone_after_a_reopen(open);
        a_rollback_never_duplicates(open);
        held_records_are_not_added_again(open);
        a_failed_commit_is_replayed_without_duplicates(open);
    }

    fn now() -> i64 {
        crate::record::now_micros()
    }

    fn commit_then_reopen_resumes_after_the_checkpoint<S: Sink + Inspect>(
        open: &mut dyn FnMut() -> S,
    ) {
        let mut sink = open();
        let base = sink.committed().unwrap().seq;
        for seq in base + 1..=base + 5 {
            assert_eq!(
                sink.add(seq, record(now(), "a"), Flags::default()).unwrap(),
                Added::Added
            );
        }
        sink.commit(&checkpoint(base + 5)).unwrap();
        drop(sink);
        let sink = open();
        let committed = sink.committed().unwrap();
        assert_eq!(committed.seq, base + 5);
        assert_eq!(committed.checkpoints, checkpoint(base + 5).checkpoints);
        assert!(sink.sequences().ends_with(&[base + 4, base + 5]));
    }

    fn uncommitted_records_are_gone_after_a_reopen<S: Sink + Inspect>(open: &mut dyn FnMut() -> S) {
        let mut sink = open();
        let base = sink.committed().unwrap().seq;
        let before = sink.sequences();
        sink.add(base + 1, record(now(), "lost"), Flags::default())
            .unwrap();
        drop(sink);
        let sink = open();
        assert_eq!(sink.committed().unwrap().seq, base);
        assert_eq!(sink.sequences(), before);
    }

    fn a_rollback_never_duplicates<S: Sink + Inspect>(open: &mut dyn FnMut() -> S) {
        let mut sink = open();
        let base = sink.committed().unwrap().seq;
        // Records over many days (a backfill): the sink may commit parts early.
        for i in 1..=20u64 {
            let ts = now() - (i as i64 % 5) * 86_400_000_000;
            sink.add(base + i, record(ts, "b"), Flags::default())
                .unwrap();
        }
        let resume = sink.rollback().unwrap();
        assert_eq!(resume.seq, base);
        // Replayed from the checkpoint, as the indexer does.
        for i in 1..=20u64 {
            let ts = now() - (i as i64 % 5) * 86_400_000_000;
            let added = sink
                .add(base + i, record(ts, "b"), Flags::default())
                .unwrap();
            assert!(matches!(added, Added::Added | Added::Held), "{added:?}");
        }
        sink.commit(&checkpoint(base + 20)).unwrap();
        let seqs = sink.sequences();
        let mut unique = seqs.clone();
        unique.dedup();
        assert_eq!(seqs, unique, "a sequence is held twice");
        for i in 1..=20u64 {
            assert!(seqs.contains(&(base + i)), "sequence {} missing", base + i);
        }
    }

    /// See: issue "Faults lose nothing", item 1 (a failed commit indexed documents twice).
    fn a_failed_commit_is_replayed_without_duplicates<S: Sink + Inspect>(
        open: &mut dyn FnMut() -> S,
    ) {
        let mut sink = open();
        let base = sink.committed().unwrap().seq;
        let ts = |i: u64| now() - (i as i64 % 2) * 86_400_000_000;
        for i in 1..=10u64 {
            sink.add(base + i, record(ts(i), "d"), Flags::default())
                .unwrap();
        }
        sink.break_commits(true);
        assert!(sink.commit(&checkpoint(base + 10)).is_err());
        sink.break_commits(false);
        let resume = sink.rollback().unwrap();
        assert_eq!(
            resume.seq, base,
            "a failed commit does not move the checkpoint"
        );
        for i in 1..=10u64 {
            sink.add(base + i, record(ts(i), "d"), Flags::default())
                .unwrap();
        }
        sink.commit(&checkpoint(base + 10)).unwrap();
        let check = |sink: &S| {
            let seqs = sink.sequences();
            let mut unique = seqs.clone();
            unique.dedup();
            assert_eq!(seqs, unique, "a sequence is held twice");
            for i in 1..=10u64 {
                assert!(seqs.contains(&(base + i)), "sequence {} missing", base + i);
            }
        };
        check(&sink);
        drop(sink);
        check(&open());
    }

    fn held_records_are_not_added_again<S: Sink + Inspect>(open: &mut dyn FnMut() -> S) {
        let mut sink = open();
        let base = sink.committed().unwrap().seq;
        sink.add(base + 1, record(now(), "c"), Flags::default())
            .unwrap();
        sink.commit(&checkpoint(base + 1)).unwrap();
        assert_eq!(
            sink.add(base + 1, record(now(), "c"), Flags::default())
                .unwrap(),
            Added::Held
        );
        drop(sink);
        let mut sink = open();
        assert_eq!(
            sink.add(base + 1, record(now(), "c"), Flags::default())
                .unwrap(),
            Added::Held
        );
    }
}
