//! Metric names, in one place. Rendered in Prometheus text format at `/metrics`.
//!
//! Per-runner metrics carry a `runner` label; dropped data carries a `reason` label.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const LINES_READ: &str = "lograft_runner_lines_read_total";
pub const BYTES_READ: &str = "lograft_runner_bytes_read_total";
/// Data given up on purpose, by `reason`: `line_truncated` (a line over
/// `collect.max_line_bytes`: its head is kept and flagged `truncated`, its tail dropped) and
/// `file_lost` (a checkpointed file vanished before it was read to the end) and `filtered` (removed by a
/// `keep`/`filter` transform). Nothing is dropped
/// silently.
pub const DROPPED: &str = "lograft_runner_dropped_total";
/// Datagrams the kernel dropped on a syslog runner's UDP socket (its buffer was full).
pub const SYSLOG_UDP_KERNEL_DROPS: &str = "lograft_syslog_udp_kernel_drops_total";
/// Lines kept as raw text because the parser failed (flagged `parse_error`).
pub const PARSE_ERRORS: &str = "lograft_runner_parse_errors_total";
pub const FILE_EVENTS: &str = "lograft_runner_file_events_total";
pub const RUNNER_BLOCKED_SECONDS: &str = "lograft_runner_backpressure_seconds_total";
pub const QUEUE_DEPTH: &str = "lograft_queue_depth_records";
pub const QUEUE_BYTES: &str = "lograft_queue_bytes";
pub const QUEUE_FLUSH_SECONDS: &str = "lograft_queue_flush_seconds";
pub const QUEUE_REBUILDS: &str = "lograft_queue_rebuilds_total";
/// The queue opened again in place after its storage failed (`outcome`: failed, reopened).
pub const QUEUE_REOPENS: &str = "lograft_queue_reopens_total";
pub const INDEX_DOCS: &str = "lograft_index_docs_total";
pub const INDEX_COMMITS: &str = "lograft_index_commits_total";
pub const INDEX_COMMIT_SECONDS: &str = "lograft_index_commit_seconds";
/// Segment merges the index ran, by `outcome` (`merged`, `failed`: a failed merge leaves the
/// segments as they were, to be merged later).
pub const INDEX_MERGES: &str = "lograft_index_merges_total";
/// Segment merges running now, and the most that ever ran at once since the node started
/// (`index::merge`: at most `MAX_MERGES`).
pub const INDEX_MERGES_RUNNING: &str = "lograft_index_merges_running";
pub const INDEX_MERGES_PEAK: &str = "lograft_index_merges_peak";
pub const INDEX_PARTITIONS: &str = "lograft_index_partitions";
pub const INDEX_BYTES: &str = "lograft_index_bytes";
pub const INDEX_PARTITIONS_DROPPED: &str = "lograft_index_partitions_dropped_total";
/// Records the index gave up on purpose, by `reason`: `retention` (event time older than the
/// retention window: dropping it at once is what retention would do next) and
/// `partition_cap` (a new day partition would exceed `index.max_partitions`).
pub const INDEX_DROPPED: &str = "lograft_index_dropped_total";
/// Records whose event time was later than ingest time + `index.future_grace`: indexed with
/// the ingest time and flagged `future_time`.
pub const INDEX_FUTURE_TIMES: &str = "lograft_index_future_times_total";
/// Queue entries that could not be decoded, set aside in `<data_dir>/quarantine/`.
pub const QUEUE_QUARANTINED: &str = "lograft_queue_quarantined_total";
pub const SEARCH_REQUESTS: &str = "lograft_search_requests_total";
/// Cluster nodes by `status` (`ok`, `bad`, `lost`) as this node sees them.
pub const CLUSTER_NODES: &str = "lograft_cluster_nodes";
/// 1 on the Raft leader, 0 elsewhere.
pub const RAFT_LEADER: &str = "lograft_raft_is_leader";
pub const RAFT_TERM: &str = "lograft_raft_term";
/// The config store revision this node has applied (equal on every node once caught up).
pub const CONFIG_REVISION: &str = "lograft_config_revision";

/// Install the process-wide recorder. Safe to call more than once (later calls reuse it).
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}
