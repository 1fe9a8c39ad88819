//! Segment merges, scheduled by lograft rather than by each tantivy writer.
//!
//! tantivy's writers merge on their own (a policy asked after every commit, four merge threads
//! per writer): with a writer per open day partition that was a dozen merges at once on a
//! 2-core machine as the index grew, starving the indexer (ingest fell from 80 k to 4 k lines/s
//! toward 30 M lines). Here every writer has [`tantivy::indexer::NoMergePolicy`] and one merge
//! thread, and after a partition commits the sink asks [`Merges::schedule`] for merges:
//!
//! * at most [`MAX_MERGES`] run at once on the whole node (the rest wait for a later commit);
//! * a log-structured policy for append-only, time-ordered data ([`plan`]): segments of similar
//!   size are merged, straight into a mature segment ([`MATURE_DOCS`] documents, never merged
//!   again) where up to [`MAX_MERGE_FACTOR`] of them reach it, else [`MERGE_FACTOR`] at a time.
//!   So a document is merged a bounded number of times whatever the size of the index (the
//!   work per line stays flat as a day's partition grows), and a merge holds fewer than
//!   `2 × MATURE_DOCS` documents (its memory stays flat too: tantivy maps every document of a
//!   merge, 8 bytes each, and more). Before, a day's partition grew through 8-way merges to
//!   4 M documents (a level took every similar segment, so one merge could take 20): at 30 M
//!   lines most lines had been merged twice, at 3 M once;
//! * merges only touch committed segments, and a merge's result replaces its inputs
//!   atomically in `meta.json` with the partition's commit payload kept, so a crash during a
//!   merge loses nothing (tantivy garbage-collects the half-written files).
//!
//! `lograft_index_merges_running` and `lograft_index_merges_peak` count them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::{IndexWriter, SegmentMeta};

use crate::metrics as names;

/// Merges running at once on the node, at most.
pub const MAX_MERGES: usize = 2;
/// Segments of a similar size merged together, when that does not make a mature segment.
pub const MERGE_FACTOR: usize = 8;
/// The most segments one merge takes: segments that reach [`MATURE_DOCS`] together, up to this
/// many, are merged at once (one merge where the factor alone would have taken two levels).
pub const MAX_MERGE_FACTOR: usize = 64;
/// A segment this large is never merged again.
pub const MATURE_DOCS: u32 = 1_000_000;
/// Segments are of a similar size when the larger has less than `2^0.75` (1.68) times the
/// documents of the smaller; below this size every segment counts as this size.
const LEVEL_LOG_SIZE: f64 = 0.75;
const MIN_LEVEL_DOCS: u32 = 10_000;

/// The merges a partition's segments (`(id, documents)`, none of them in a merge) call for.
///
/// Young segments (below [`MATURE_DOCS`]) are grouped into levels of similar size. In a level,
/// the smallest segments that reach maturity together are merged, when there are at most
/// [`MAX_MERGE_FACTOR`] of them; segments too small to reach it so are merged
/// [`MERGE_FACTOR`] at a time. Otherwise the level waits for more. So a document is merged
/// about `log64(MATURE_DOCS / fresh segment size)` times (once at the standard benchmark's
/// rate), whatever the size of the index, and
/// no merge holds more than `2 × MATURE_DOCS` documents.
pub fn plan<T: Copy>(segments: &[(T, u32)]) -> Vec<Vec<T>> {
    let mut young: Vec<(T, u32)> = segments
        .iter()
        .copied()
        .filter(|(_, docs)| *docs < MATURE_DOCS)
        .collect();
    young.sort_by_key(|(_, docs)| std::cmp::Reverse(*docs));
    let log_size = |docs: u32| f64::from(docs.max(MIN_LEVEL_DOCS)).log2();
    let mut levels: Vec<Vec<(T, u32)>> = Vec::new();
    let mut level_top = f64::MAX;
    for (id, docs) in young {
        let size = log_size(docs);
        if size < level_top - LEVEL_LOG_SIZE {
            level_top = size;
            levels.push(Vec::new());
        }
        levels
            .last_mut()
            .expect("a level was started")
            .push((id, docs));
    }
    let mut merges = Vec::new();
    for mut level in levels {
        // Largest first: merges are taken from the small end.
        while let Some(&(_, smallest)) = level.last() {
            let n = level.len();
            let mut sum = 0u64;
            let reach = (1..=n.min(MAX_MERGE_FACTOR)).find(|&k| {
                sum += u64::from(level[n - k].1);
                k >= 2 && sum >= u64::from(MATURE_DOCS)
            });
            let k = match reach {
                Some(k) => k,
                None if u64::from(smallest.max(1)) * (MAX_MERGE_FACTOR as u64)
                    < u64::from(MATURE_DOCS)
                    && n >= MERGE_FACTOR =>
                {
                    MERGE_FACTOR
                }
                None => break,
            };
            merges.push(
                level
                    .split_off(n - k)
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect(),
            );
        }
    }
    merges
}

#[derive(Clone, Default)]
pub struct Merges {
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    /// Segments in a running merge (not candidates for another).
    busy: Arc<Mutex<HashSet<SegmentId>>>,
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
        let free: Vec<(SegmentId, u32)> = {
            let busy = self.busy.lock().expect("merge lock");
            segments
                .iter()
                .filter(|s| !busy.contains(&s.id()))
                .map(|s| (s.id(), s.num_docs()))
                .collect()
        };
        let mut started = 0;
        for ids in plan(&free) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(merges: &[Vec<usize>], segments: &[(usize, u32)]) -> Vec<Vec<u32>> {
        merges
            .iter()
            .map(|m| m.iter().map(|&i| segments[i].1).collect())
            .collect()
    }

    #[test]
    fn segments_too_small_to_mature_together_are_merged_the_factor_at_a_time() {
        // 20 segments that 64 would not take to maturity: two merges of 8, 4 wait.
        let segments: Vec<(usize, u32)> = (0..20).map(|i| (i, 10_000 + i as u32 * 100)).collect();
        let merges = plan(&segments);
        assert_eq!(merges.len(), 2);
        assert!(merges.iter().all(|m| m.len() == MERGE_FACTOR));
        // The smallest go first.
        assert!(merges[0].iter().all(|&i| i < 8), "{merges:?}");
        // Seven are not enough.
        assert!(plan(&segments[..7]).is_empty());
    }

    #[test]
    fn segments_that_mature_together_are_merged_at_once() {
        // 80 k documents each: thirteen make a mature segment, in one merge.
        let segments: Vec<(usize, u32)> = (0..20).map(|i| (i, 80_000)).collect();
        assert_eq!(sizes(&plan(&segments), &segments), vec![vec![80_000; 13]]);
        // Twelve wait for the thirteenth, rather than make a segment that is merged again.
        assert!(plan(&segments[..12]).is_empty());
    }

    #[test]
    fn mature_segments_are_never_merged_and_sizes_do_not_mix() {
        let mut segments: Vec<(usize, u32)> = Vec::new();
        // Ten mature segments, seven of 600 k documents, eight small ones.
        segments.extend((0..10).map(|i| (i, MATURE_DOCS + i as u32)));
        segments.extend((10..17).map(|i| (i, 600_000)));
        segments.extend((17..25).map(|i| (i, 10_000)));
        let merges = plan(&segments);
        assert_eq!(
            sizes(&merges, &segments),
            vec![
                vec![600_000; 2],
                vec![600_000; 2],
                vec![600_000; 2],
                vec![10_000; 8]
            ]
        );
        // Below the smallest level size, every segment counts as one level.
        let tiny: Vec<(usize, u32)> = (0..8).map(|i| (i, 1 + i as u32 * 1000)).collect();
        assert_eq!(plan(&tiny).len(), 1);
    }

    /// A day fed at any rate: every document is merged a bounded number of times, no merge
    /// holds more than `2 × MATURE_DOCS` documents, and the partition ends as mature segments
    /// plus a few young ones per level.
    #[test]
    fn work_per_document_is_bounded_whatever_the_index_size() {
        for fresh in [300u32, 5_000, 20_000, 40_000, 85_000, 400_000] {
            let mut segments: Vec<(usize, u32)> = Vec::new();
            let mut next = 0usize;
            let mut merged_docs = 0u64;
            let total = 30_000_000u64;
            let mut added = 0u64;
            let mut at_3m = None;
            while added < total {
                if added >= 3_000_000 && at_3m.is_none() {
                    at_3m = Some(merged_docs as f64 / added as f64);
                }
                segments.push((next, fresh));
                next += 1;
                added += u64::from(fresh);
                for merge in plan(&segments.clone()) {
                    let inputs: Vec<_> = segments
                        .iter()
                        .filter(|s| merge.contains(&s.0))
                        .copied()
                        .collect();
                    segments.retain(|s| !merge.contains(&s.0));
                    let docs: u32 = inputs.iter().map(|s| s.1).sum();
                    assert!(docs < 2 * MATURE_DOCS, "fresh {fresh}: a merge of {docs}");
                    merged_docs += u64::from(docs);
                    segments.push((next, docs));
                    next += 1;
                }
            }
            let young = segments.iter().filter(|s| s.1 < MATURE_DOCS).count();
            assert!(
                young < 6 * MERGE_FACTOR,
                "fresh {fresh}: {young} young segments"
            );
            // About log8(MATURE_DOCS / fresh) merges per document: 5.3 for segments of 300
            // documents (a node that commits 300 lines at a time), 3 for 5 k, 1 from 15.6 k.
            assert!(merged_docs <= 6 * total, "fresh {fresh}: {merged_docs}");
            // And the same at 3 M documents as at 30 M: the work per line does not grow with
            // the partition.
            let at_30m = merged_docs as f64 / total as f64;
            let at_3m = at_3m.expect("3 M documents were added");
            assert!(
                at_30m - at_3m < 0.35,
                "fresh {fresh}: {at_3m} merges per document at 3 M, {at_30m} at 30 M"
            );
            if fresh >= MATURE_DOCS / MAX_MERGE_FACTOR as u32 {
                // Fresh segments reach maturity in one merge: one merge per document.
                assert!(merged_docs <= total, "fresh {fresh}: {merged_docs}");
            }
        }
    }
}
