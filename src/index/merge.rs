//! Segment merges, scheduled by lograft rather than by each tantivy writer.
//!
//! tantivy's writers merge on their own (a policy asked after every commit, four merge threads
//! per writer): with a writer per open day partition that was a dozen merges at once on a
//! 2-core machine as the index grew, starving the indexer (ingest fell from 80 k to 4 k lines/s
//! toward 30 M lines). Here every writer has [`tantivy::indexer::NoMergePolicy`] and one merge
//! thread, and after a partition commits the sink asks [`Merges::schedule`] for merges:
//!
//! * at most [`MAX_MERGES`] run at once on the whole node (the rest wait for a later commit);
//! * a log-structured policy for append-only, time-ordered data: segments of similar size are
//!   merged once [`MERGE_FACTOR`] of them exist, and a segment of [`MATURE_DOCS`] documents or
//!   more is mature and never merged again (a day's partition ends as a few large segments, so
//!   merge work stops growing with the index);
//! * merges only touch committed segments, and a merge's result replaces its inputs
//!   atomically in `meta.json` with the partition's commit payload kept, so a crash during a
//!   merge loses nothing (tantivy garbage-collects the half-written files).
//!
//! `lograft_index_merges_running` and `lograft_index_merges_peak` count them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::indexer::{LogMergePolicy, MergePolicy};
use tantivy::{IndexWriter, SegmentMeta};

use crate::metrics as names;

/// Merges running at once on the node, at most.
pub const MAX_MERGES: usize = 2;
/// Segments of a similar size merged together.
pub const MERGE_FACTOR: usize = 8;
/// A segment this large is never merged again.
pub const MATURE_DOCS: usize = 4_000_000;

#[derive(Clone)]
pub struct Merges {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    /// Segments in a running merge (not candidates for another).
    busy: Arc<Mutex<HashSet<SegmentId>>>,
    policy: Arc<LogMergePolicy>,
}

impl Default for Merges {
    fn default() -> Self {
        let mut policy = LogMergePolicy::default();
        policy.set_min_num_segments(MERGE_FACTOR);
        policy.set_max_docs_before_merge(MATURE_DOCS);
        Merges {
            running: Arc::default(),
            peak: Arc::default(),
            busy: Arc::default(),
            policy: Arc::new(policy),
        }
    }
}

impl Merges {
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most merges that ran at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Start the merges `segments` (a partition's committed segments) call for, while fewer
    /// than [`MAX_MERGES`] run. Returns how many started.
    pub fn schedule(&self, writer: &mut IndexWriter, segments: &[SegmentMeta]) -> usize {
        if self.running() >= MAX_MERGES {
            return 0;
        }
        let free: Vec<SegmentMeta> = {
            let busy = self.busy.lock().expect("merge lock");
            segments
                .iter()
                .filter(|s| !busy.contains(&s.id()))
                .cloned()
                .collect()
        };
        let mut started = 0;
        for candidate in self.policy.compute_merge_candidates(&free) {
            let ids = candidate.0;
            if ids.len() < 2 {
                continue;
            }
            // Take a slot, or stop: the next commit asks again.
            let taken = self
                .running
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < MAX_MERGES).then_some(n + 1)
                })
                .is_ok();
            if !taken {
                break;
            }
            let now = self.running();
            self.peak.fetch_max(now, Ordering::SeqCst);
            metrics::gauge!(names::INDEX_MERGES_RUNNING).set(now as f64);
            metrics::gauge!(names::INDEX_MERGES_PEAK).set(self.peak() as f64);
            self.busy
                .lock()
                .expect("merge lock")
                .extend(ids.iter().copied());
            let future = writer.merge(&ids);
            let merges = self.clone();
            let followed = ids.clone();
            let spawned = std::thread::Builder::new()
                .name("lograft-merge".into())
                .spawn(move || {
                    let outcome = match future.wait() {
                        Ok(_) => "merged",
                        Err(err) => {
                            tracing::warn!(error = %err, "a segment merge did not complete; its segments stay as they were");
                            "failed"
                        }
                    };
                    merges.finish(&ids, outcome);
                });
            if spawned.is_err() {
                // No thread to follow it with: its slot is given back now.
                tracing::warn!("no thread to follow a segment merge");
                self.finish(&followed, "untracked");
            }
            started += 1;
        }
        started
    }

    fn finish(&self, ids: &[SegmentId], outcome: &'static str) {
        {
            let mut busy = self.busy.lock().expect("merge lock");
            for id in ids {
                busy.remove(id);
            }
        }
        let now = self.running.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!(names::INDEX_MERGES_RUNNING).set(now as f64);
        metrics::counter!(names::INDEX_MERGES, "outcome" => outcome).increment(1);
    }
}
