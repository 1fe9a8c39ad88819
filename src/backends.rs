//! Which engine serves each seam, and the one place an adapter registers.
//!
//! | seam | embedded | adapter (cargo feature, config line) |
//! |---|---|---|
//! | queue ([`crate::queue::Queue`]) | sled | `kafka`: `[queue] backend = "kafka"` |
//! | index ([`crate::index::Sink`]) and search ([`crate::search::cluster::Topology`]) | tantivy day partitions | `elasticsearch`: `[index] backend = "elasticsearch"` |
//! | config store and membership ([`crate::cluster::ConfigStore`], [`crate::cluster::Membership`]) | Raft | `etcd`: `[cluster] backend = "etcd"` |
//!
//! An adapter is a module with `enabled.rs` / `disabled.rs` of the same signatures (see
//! `queue/kafka/`), plus its arm in each `match` below. `node` opens every seam through this
//! module and never names an engine.

use std::sync::Arc;

use tracing::warn;

use crate::auth::ClusterSecret;
use crate::cluster::{Cluster, ConfigStore, LocalStore, Membership, RaftMembership};
use crate::config::{ClusterBackend, IndexBackend, NodeConfig, QueueBackend};
use crate::index::{IndexCheckpoint, IndexStore, Sink, TantivySink};
use crate::queue::Queue;
use crate::search::backend::Backend;
use crate::search::cluster::{NodesTopology, Topology};
use crate::search::remote::Peers;

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

/// The queue, and whether it was restored. `index` is what the index holds (the ground
/// truth): a queue that lost work in flight (rebuilt, or behind the index) restarts its
/// runners from the index's checkpoints; its sequences start above `seq_floor`.
pub fn open_queue(
    config: &NodeConfig,
    index: &IndexCheckpoint,
    seq_floor: u64,
    disk: Arc<crate::fsutil::DiskGuard>,
) -> anyhow::Result<(Arc<dyn Queue>, bool)> {
    match config.queue.backend {
        QueueBackend::Embedded => {
            let (queue, rebuilt) =
                crate::queue::open(&config.queue_dir(), config.queue.max_bytes, seq_floor)?;
            let restored = rebuilt || queue.behind_index();
            if restored {
                warn!(
                    index_seq = index.seq,
                    streams = index.checkpoints.len(),
                    "queue is behind the index; restoring runner checkpoints from the index"
                );
                queue.checkpoints().restore(&index.checkpoints)?;
            }
            Ok((Arc::new(queue.with_disk_guard(disk)), restored))
        }
        QueueBackend::Kafka => Ok((crate::queue::kafka::open(config, index)?, false)),
    }
}

/// Where the indexer writes.
pub fn open_sink(config: &NodeConfig, store: &Arc<IndexStore>) -> anyhow::Result<Box<dyn Sink>> {
    match config.index.backend {
        IndexBackend::Embedded => Ok(Box::new(TantivySink::new(
            store.clone(),
            config.index.writer_memory,
            config.index.max_partitions,
        )?)),
        IndexBackend::Elasticsearch => Ok(crate::index::elasticsearch::open_sink(config)?),
    }
}

/// Which backends a cluster-wide search asks: every member for its own partitions (this
/// node through `local`), or one engine holding every node's data.
pub fn search_topology(
    config: &NodeConfig,
    membership: Arc<dyn Membership>,
    local: Arc<dyn Backend>,
    peers: Peers,
) -> anyhow::Result<Arc<dyn Topology>> {
    match config.index.backend {
        IndexBackend::Embedded => Ok(Arc::new(NodesTopology::new(membership, local, peers))),
        IndexBackend::Elasticsearch => {
            Ok(crate::index::elasticsearch::topology(config, membership)?)
        }
    }
}

/// The control plane as the node uses it.
pub struct ControlPlane {
    pub store: Arc<dyn ConfigStore>,
    pub membership: Arc<dyn Membership>,
    /// What node-to-node calls carry.
    pub secret: ClusterSecret,
    /// Raft itself, for its RPC routes; `None` on an engine without them.
    pub raft: Option<Arc<Cluster>>,
}

/// Start the config store and membership. `node_scoped`: prefixes whose `<prefix><node>/`
/// keys belong to a node (removed with it).
pub async fn start_control_plane(
    config: &NodeConfig,
    peer_client: reqwest::Client,
    node_scoped: &[&str],
) -> anyhow::Result<ControlPlane> {
    match config.cluster.backend {
        ClusterBackend::Embedded => {
            let local_store = Arc::new(LocalStore::open(&config.store_dir())?);
            let cluster = Cluster::start(
                &config.node_name,
                config.cluster.clone(),
                local_store,
                peer_client,
            )
            .await?;
            for prefix in node_scoped {
                cluster.scope_per_node(prefix);
            }
            Ok(ControlPlane {
                store: cluster.clone(),
                membership: Arc::new(RaftMembership(cluster.clone())),
                secret: cluster.secret.clone(),
                raft: Some(cluster),
            })
        }
        ClusterBackend::Etcd => {
            Ok(crate::cluster::etcd::start(config, peer_client, node_scoped).await?)
        }
    }
}
