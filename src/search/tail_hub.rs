//! Live tails of this node: one poller for all of them.
//!
//! Each open tail (a client's, or another node's for its own client) is a subscriber with its
//! query and the last sequence it was sent. One task per node looks at the indexer's committed
//! sequence every [`TAIL_POLL`]; when something was committed it runs, on one blocking thread,
//! one search per distinct query (tails asking the same question share it) over what is new,
//! and hands each subscriber its lines. So tails cost one thread at most, however many are
//! open; idle tails cost nothing; a client that does not read misses lines (counted, and told
//! how many) and never slows anything (attack review item 12: clients that never read took
//! both cores and +500 MB when each tail polled on its own).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::backend::{TailItem, flush_dropped, send_or_count};
use super::{Hit, QueryBuilder};
use crate::index::{IndexStore, IndexerControl};

/// How often the poller looks for newly committed lines.
pub const TAIL_POLL: Duration = Duration::from_millis(250);
/// Lines one query takes per look.
pub const TAIL_BATCH: usize = 1000;

struct Subscriber {
    q: String,
    /// Admins' tails include the audit trail.
    audit: bool,
    /// Every line up to this sequence was looked at for this subscriber.
    after: u64,
    tx: mpsc::Sender<TailItem>,
    /// Lines it missed, not told yet.
    dropped: u64,
}

pub struct TailHub {
    index: Arc<IndexStore>,
    queries: Arc<QueryBuilder>,
    indexer: Arc<IndexerControl>,
    subscribers: Mutex<Vec<Subscriber>>,
    started: AtomicBool,
    /// Searches the poller ran (one per distinct query per look).
    searches: AtomicU64,
}

impl TailHub {
    pub fn new(
        index: Arc<IndexStore>,
        queries: Arc<QueryBuilder>,
        indexer: Arc<IndexerControl>,
    ) -> TailHub {
        TailHub {
            index,
            queries,
            indexer,
            subscribers: Mutex::new(Vec::new()),
            started: AtomicBool::new(false),
            searches: AtomicU64::new(0),
        }
    }

    /// Follow `q` from now on: lines committed from here go to `tx` until it is closed.
    /// Call within a Tokio runtime (the poller starts with the first subscriber).
    pub fn subscribe(self: &Arc<Self>, q: &str, audit: bool, tx: mpsc::Sender<TailItem>) {
        let after = self.indexer.committed_seq();
        self.subscribers
            .lock()
            .expect("subscribers lock")
            .push(Subscriber {
                q: q.to_string(),
                audit,
                after,
                tx,
                dropped: 0,
            });
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().poll());
        }
    }

    /// Tails open now.
    pub fn subscribers(&self) -> usize {
        self.subscribers.lock().expect("subscribers lock").len()
    }

    /// Searches run for tails so far.
    pub fn searches(&self) -> u64 {
        self.searches.load(Ordering::Relaxed)
    }

    async fn poll(self: Arc<Self>) {
        loop {
            tokio::time::sleep(TAIL_POLL).await;
            let committed = self.indexer.committed_seq();
            // What to search: each distinct question from the oldest position any of its
            // subscribers is at. Subscribers that left are forgotten here.
            let work: Vec<((String, bool), u64)> = {
                let mut subscribers = self.subscribers.lock().expect("subscribers lock");
                subscribers.retain_mut(|s| flush_dropped(&s.tx, &mut s.dropped));
                let mut groups: BTreeMap<(String, bool), u64> = BTreeMap::new();
                for s in subscribers.iter().filter(|s| s.after < committed) {
                    let from = groups.entry((s.q.clone(), s.audit)).or_insert(s.after);
                    *from = (*from).min(s.after);
                }
                groups.into_iter().collect()
            };
            if work.is_empty() {
                continue;
            }
            let hub = self.clone();
            let found = tokio::task::spawn_blocking(move || {
                work.into_iter()
                    .map(|((q, audit), after)| {
                        hub.searches.fetch_add(1, Ordering::Relaxed);
                        let hits = super::indexed_after(
                            &hub.index,
                            &hub.queries,
                            &q,
                            after,
                            TAIL_BATCH,
                            !audit,
                        )
                        .unwrap_or_default();
                        ((q, audit), hits)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            let Ok(found) = found else { continue };
            let found: BTreeMap<(String, bool), Vec<(u64, Hit)>> = found.into_iter().collect();
            let mut subscribers = self.subscribers.lock().expect("subscribers lock");
            subscribers.retain_mut(|s| {
                let Some(hits) = found.get(&(s.q.clone(), s.audit)) else {
                    return !s.tx.is_closed();
                };
                deliver(s, hits, committed)
            });
        }
    }
}

/// Hand a subscriber the lines after its position; `false` when it went away.
fn deliver(s: &mut Subscriber, hits: &[(u64, Hit)], committed: u64) -> bool {
    let start = s.after;
    for (seq, hit) in hits.iter().filter(|(seq, _)| *seq > start) {
        s.after = s.after.max(*seq);
        if !send_or_count(&s.tx, TailItem::Hit(Box::new(hit.clone())), &mut s.dropped) {
            return false;
        }
    }
    // Everything committed before the search was looked at, matching or not, unless the
    // answer was cut at its limit (then the next look goes on from the last line sent).
    if hits.len() < TAIL_BATCH {
        s.after = s.after.max(committed);
    }
    flush_dropped(&s.tx, &mut s.dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twenty tails, two distinct questions: every tail gets every line of its question, and
    /// the node runs one search per question per look, not one per tail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_search_per_question_for_all_tails() {
        let (_dir, index) = crate::search::backend::conformance::store_with_data();
        let indexer = Arc::new(IndexerControl::default());
        let hub = Arc::new(TailHub::new(
            index,
            Arc::new(QueryBuilder::default()),
            indexer.clone(),
        ));
        let mut everything = Vec::new();
        let mut errors = Vec::new();
        for i in 0..20 {
            let (tx, rx) = mpsc::channel(1000);
            if i % 2 == 0 {
                hub.subscribe("", false, tx);
                everything.push(rx);
            } else {
                hub.subscribe("level:error", false, tx);
                errors.push(rx);
            }
        }
        assert_eq!(hub.subscribers(), 20);
        // The 600 lines of the store become visible at once.
        indexer.mark_committed(600);
        let expect = |rx: &mut mpsc::Receiver<TailItem>, n: usize| {
            let mut hits = 0;
            while hits < n {
                match rx.blocking_recv() {
                    Some(TailItem::Hit(_)) => hits += 1,
                    Some(other) => panic!("unexpected {other:?}"),
                    None => panic!("closed after {hits}"),
                }
            }
        };
        tokio::task::spawn_blocking(move || {
            // 12 of the 600 are audit lines, hidden from these (non-admin) tails.
            for rx in &mut everything {
                expect(rx, 588);
            }
            for rx in &mut errors {
                expect(rx, 196);
            }
        })
        .await
        .unwrap();
        assert_eq!(hub.searches(), 2, "one search per question");
    }
}
