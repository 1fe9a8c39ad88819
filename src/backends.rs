//! Which engine serves each seam, and the one place an adapter registers.
//!
//! | seam | embedded | adapter (cargo feature, config line) |
//! |---|---|---|
//! | queue | sled ([`crate::queue::SledQueue`]) | `kafka`: `[queue] backend = "kafka"` |
//! | index and search | tantivy day partitions ([`crate::index::IndexStore`]) | `elasticsearch`: `[index] backend = "elasticsearch"` |
//! | config store and membership | Raft ([`crate::cluster::Cluster`]) | `etcd`: `[cluster] backend = "etcd"` |
//!
//! An adapter is a module with `enabled.rs` / `disabled.rs` (see `queue/kafka/`) plus its arm
//! in [`check`] (and, once it opens, in the matching open function of `node`).

use crate::config::{ClusterBackend, IndexBackend, NodeConfig, QueueBackend};

/// Why a configured backend cannot run. Our own type: no engine's error leaks through it.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "this lograft was built without the {feature} feature: rebuild with --features {feature}"
    )]
    NotBuilt { feature: &'static str },
    #[error(
        "this lograft was built with the {feature} feature, but its adapter is not written yet: use the embedded backend"
    )]
    NotWritten { feature: &'static str },
    #[error("{backend}: {source}")]
    Failed {
        backend: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Check that this build can serve every backend `config` asks for; the error names the
/// config key. `config check` and `serve` both call it (through config resolution).
pub fn check(config: &NodeConfig) -> Result<(), (&'static str, BackendError)> {
    match config.queue.backend {
        QueueBackend::Embedded => {}
        QueueBackend::Kafka => {
            crate::queue::kafka::check(config).map_err(|e| ("queue.backend", e))?
        }
    }
    match config.index.backend {
        IndexBackend::Embedded => {}
        IndexBackend::Elasticsearch => {
            crate::index::elasticsearch::check(config).map_err(|e| ("index.backend", e))?
        }
    }
    match config.cluster.backend {
        ClusterBackend::Embedded => {}
        ClusterBackend::Etcd => {
            crate::cluster::etcd::check(config).map_err(|e| ("cluster.backend", e))?
        }
    }
    Ok(())
}
