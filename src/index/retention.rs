//! Retention: drop whole day partitions by age and by total size.
//!
//! Runs on the indexer thread (after a commit), so a partition is never dropped under an open
//! writer.

use chrono::{Duration as ChronoDuration, NaiveDate, Utc};
use tracing::{info, warn};

use super::IndexStore;

#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    /// 0 keeps every day.
    pub max_age_days: u32,
    /// 0 means no size limit.
    pub max_bytes: u64,
    /// How often the policy is applied.
    pub interval: std::time::Duration,
    /// Event times later than ingest + this are replaced by the ingest time (and flagged).
    pub future_grace: std::time::Duration,
    /// Most day partitions kept; records for a new day beyond it are dropped and counted.
    pub max_partitions: u32,
}

/// Where a record's event time puts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Placement {
    /// Indexed at `ts`; `future_time` says its own time was not believed and `ts` is the time
    /// it arrived.
    Keep { ts: i64, future_time: bool },
    /// Older than the age limit: retention would drop it at once (counted, never re-dated).
    TooOld,
}

impl RetentionPolicy {
    /// The oldest day the age limit keeps on `today` (`None`: every day is kept).
    pub fn oldest_day_kept(&self, today: NaiveDate) -> Option<NaiveDate> {
        (self.max_age_days > 0)
            .then(|| today - ChronoDuration::days(i64::from(self.max_age_days) - 1))
    }

    /// Place a record with event time `ts` (µs) that arrived at `ingest` (µs) on `today`.
    ///
    /// An event time later than `ingest + future_grace` is not believed: it would open a day
    /// partition of its own, and size retention would drop today's data for it. It keeps its
    /// arrival time instead, flagged. Backfilled times inside the age window are kept as they
    /// are. So every kept record lands between the oldest day kept and the day of
    /// `ingest + future_grace`: the partitions any input can open are bounded.
    pub fn place(&self, ts: i64, ingest: i64, today: NaiveDate) -> Placement {
        let newest_believed = ingest.saturating_add(self.future_grace.as_micros() as i64);
        let (ts, future_time) = if ts > newest_believed {
            (ingest, true)
        } else {
            (ts, false)
        };
        match self.oldest_day_kept(today) {
            Some(oldest) if super::day_of(ts) < oldest => Placement::TooOld,
            _ => Placement::Keep { ts, future_time },
        }
    }
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            max_age_days: 0,
            max_bytes: 0,
            interval: std::time::Duration::from_secs(60),
            future_grace: std::time::Duration::from_secs(86_400),
            max_partitions: crate::config::DEFAULT_MAX_PARTITIONS,
        }
    }
}

/// What retention knows of a partition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionInfo {
    pub day: NaiveDate,
    pub bytes: u64,
    /// The queue sequence its last commit covers: sequences grow in ingest order, so this
    /// says how recently the partition received data, whatever its event day.
    pub seq: u64,
}

/// Days to drop under `policy`, oldest first. By age: days before the window. By size: the
/// partitions that received data least recently (lowest committed sequence) go first, so a
/// backfill of old days or a burst of odd event dates never pushes out what arrived after it;
/// the partition that received data last is never dropped for size, so a too-small limit
/// cannot empty the index.
pub fn partitions_to_drop(
    partitions: &[PartitionInfo],
    policy: RetentionPolicy,
    today: NaiveDate,
) -> Vec<NaiveDate> {
    let oldest = policy.oldest_day_kept(today);
    let (mut doomed, mut kept): (Vec<PartitionInfo>, Vec<PartitionInfo>) = partitions
        .iter()
        .partition(|p| oldest.is_some_and(|oldest| p.day < oldest));
    let mut doomed: Vec<NaiveDate> = doomed.drain(..).map(|p| p.day).collect();
    if policy.max_bytes > 0 {
        kept.sort_by_key(|p| (p.seq, p.day));
        let mut total: u64 = kept.iter().map(|p| p.bytes).sum();
        for p in kept.iter().take(kept.len().saturating_sub(1)) {
            if total <= policy.max_bytes {
                break;
            }
            doomed.push(p.day);
            total -= p.bytes;
        }
    }
    doomed.sort();
    doomed
}

/// The days `policy` drops now (and the index size, published as a gauge on the way).
pub fn plan(store: &IndexStore, policy: RetentionPolicy) -> Vec<NaiveDate> {
    let sizes: Vec<PartitionInfo> = store
        .all()
        .iter()
        .map(|p| PartitionInfo {
            day: p.day,
            bytes: p.disk_bytes(),
            seq: p.committed_seq().unwrap_or(0),
        })
        .collect();
    let total: u64 = sizes.iter().map(|p| p.bytes).sum();
    metrics::gauge!(crate::metrics::INDEX_BYTES).set(total as f64);
    partitions_to_drop(&sizes, policy, Utc::now().date_naive())
}

/// Drop `days` (from [`plan`]); the caller has closed their writers.
pub fn drop_days(store: &IndexStore, days: &[NaiveDate], policy: RetentionPolicy) {
    for day in days {
        match store.drop_partition(*day) {
            Ok(()) => {
                info!(partition = %day, ?policy, "retention dropped partition");
                metrics::counter!(crate::metrics::INDEX_PARTITIONS_DROPPED).increment(1);
            }
            Err(err) => {
                warn!(partition = %day, error = format!("{err:#}"), "retention could not drop partition")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn info(d: &str, bytes: u64, seq: u64) -> PartitionInfo {
        PartitionInfo {
            day: day(d),
            bytes,
            seq,
        }
    }

    fn policy(max_age_days: u32, max_bytes: u64) -> RetentionPolicy {
        RetentionPolicy {
            max_age_days,
            max_bytes,
            ..RetentionPolicy::default()
        }
    }

    #[test]
    fn drops_by_age_keeping_the_window() {
        let days = [
            info("2026-01-01", 10, 1),
            info("2026-01-05", 10, 2),
            info("2026-01-07", 10, 3),
        ];
        // Keeping 3 days on the 7th keeps the 5th, 6th and 7th.
        assert_eq!(
            partitions_to_drop(&days, policy(3, 0), day("2026-01-07")),
            vec![day("2026-01-01")]
        );
        assert!(partitions_to_drop(&days, policy(0, 0), day("2030-01-01")).is_empty());
    }

    #[test]
    fn drops_oldest_by_size_but_never_the_newest() {
        let days = [
            info("2026-01-01", 100, 1),
            info("2026-01-02", 100, 2),
            info("2026-01-03", 100, 3),
        ];
        assert_eq!(
            partitions_to_drop(&days, policy(0, 150), day("2026-01-03")),
            vec![day("2026-01-01"), day("2026-01-02")]
        );
        assert_eq!(
            partitions_to_drop(&days, policy(0, 1), day("2026-01-03")).len(),
            2
        );
    }

    #[test]
    fn size_retention_goes_by_arrival_not_by_event_day() {
        // A partition dated 2199 (a forged event time) holds the oldest data by arrival:
        // it goes first, and today's data, which arrived last, stays.
        let days = [
            info("2026-01-03", 100, 900),
            info("2199-01-01", 100, 10),
            info("2026-01-02", 100, 500),
        ];
        assert_eq!(
            partitions_to_drop(&days, policy(0, 150), day("2026-01-03")),
            vec![day("2026-01-02"), day("2199-01-01")]
        );
        // A backfill of an old day that arrived last is kept over yesterday's data.
        let days = [info("2025-12-01", 100, 1000), info("2026-01-02", 100, 500)];
        assert_eq!(
            partitions_to_drop(&days, policy(0, 150), day("2026-01-03")),
            vec![day("2026-01-02")]
        );
    }
}
