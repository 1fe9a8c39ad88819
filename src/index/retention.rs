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
}

/// Days to drop under `policy`, oldest first. The newest partition is never dropped for size,
/// so a too-small size limit cannot empty the index.
pub fn partitions_to_drop(
    days_with_sizes: &[(NaiveDate, u64)],
    policy: RetentionPolicy,
    today: NaiveDate,
) -> Vec<NaiveDate> {
    let mut doomed = Vec::new();
    let mut kept: Vec<(NaiveDate, u64)> = Vec::new();
    for &(day, size) in days_with_sizes {
        let too_old = policy.max_age_days > 0
            && day < today - ChronoDuration::days(i64::from(policy.max_age_days) - 1);
        if too_old {
            doomed.push(day)
        } else {
            kept.push((day, size))
        }
    }
    if policy.max_bytes > 0 {
        kept.sort();
        let mut total: u64 = kept.iter().map(|(_, size)| size).sum();
        for (day, size) in kept.iter().take(kept.len().saturating_sub(1)) {
            if total <= policy.max_bytes {
                break;
            }
            doomed.push(*day);
            total -= size;
        }
    }
    doomed.sort();
    doomed
}

/// Apply the policy to the store; returns the days dropped.
pub fn apply(store: &IndexStore, policy: RetentionPolicy) -> Vec<NaiveDate> {
    let sizes: Vec<(NaiveDate, u64)> = store
        .all()
        .iter()
        .map(|p| (p.day, p.disk_bytes()))
        .collect();
    let total: u64 = sizes.iter().map(|(_, size)| size).sum();
    metrics::gauge!(crate::metrics::INDEX_BYTES).set(total as f64);
    let doomed = partitions_to_drop(&sizes, policy, Utc::now().date_naive());
    for day in &doomed {
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
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn drops_by_age_keeping_the_window() {
        let days = [
            (day("2026-01-01"), 10),
            (day("2026-01-05"), 10),
            (day("2026-01-07"), 10),
        ];
        let policy = RetentionPolicy {
            max_age_days: 3,
            max_bytes: 0,
            interval: Default::default(),
        };
        // Keeping 3 days on the 7th keeps the 5th, 6th and 7th.
        assert_eq!(
            partitions_to_drop(&days, policy, day("2026-01-07")),
            vec![day("2026-01-01")]
        );
        let keep_all = RetentionPolicy {
            max_age_days: 0,
            max_bytes: 0,
            interval: Default::default(),
        };
        assert!(partitions_to_drop(&days, keep_all, day("2030-01-01")).is_empty());
    }

    #[test]
    fn drops_oldest_by_size_but_never_the_newest() {
        let days = [
            (day("2026-01-01"), 100),
            (day("2026-01-02"), 100),
            (day("2026-01-03"), 100),
        ];
        let policy = RetentionPolicy {
            max_age_days: 0,
            max_bytes: 150,
            interval: Default::default(),
        };
        assert_eq!(
            partitions_to_drop(&days, policy, day("2026-01-03")),
            vec![day("2026-01-01"), day("2026-01-02")]
        );
        let tiny = RetentionPolicy {
            max_age_days: 0,
            max_bytes: 1,
            interval: Default::default(),
        };
        assert_eq!(partitions_to_drop(&days, tiny, day("2026-01-03")).len(), 2);
    }
}
