//! This node as a member of the cluster: the Raft instance, the [`ConfigStore`] every other
//! part of the node uses (reads from the local state machine, writes through Raft, forwarded
//! to the leader when this node is not it), membership (start, join, leave, remove), the node
//! registry (`nodes/<name>`) and heartbeats.
//!
//! # Membership
//!
//! * A fresh data dir without `cluster.join` is a one-node cluster: Raft is initialized with
//!   this node alone.
//! * With `cluster.join` (or `lograft cluster join` on a running node that is still alone), the
//!   node asks a member (forwarded to the leader) to add it: the leader adds it as a learner,
//!   waits until it has caught up, records it under `nodes/<name>`, and makes it a voter while
//!   there are fewer than `cluster.voters`.
//! * Removing a node takes it out of the voters and the membership and deletes its record and
//!   the keys that belong to it (the prefixes registered with `Cluster::scope_per_node`: its
//!   runner configs).
//!
//! # Heartbeats
//!
//! Every `cluster.heartbeat_interval` each node tells every other node it is alive, with a
//! summary of its runners. What a node heard is kept in memory only; a node's status is
//! logkit's: `ok` heard within `cluster.bad_after` (30 s), `bad` within `cluster.lost_after`
//! (60 s), `lost` after that (a node not heard from since this node started counts from then).

mod lifecycle;
mod membership;
mod offline;
mod registry;
#[cfg(test)]
mod tests;
mod writes;

pub use offline::OfflineStore;
pub use writes::{FORWARDABLE_PREFIXES, is_forwardable, with_client_key};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow, bail};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use super::join_token;
use super::raft::log_store::LogStore;
use super::raft::network::Network;
use super::raft::state_machine::StateMachine;
use super::raft::{NodeId, Raft, Request};
use super::{BoxFuture, ConfigStore, KvEntry, LocalStore, Op, StoreError, TxnResult, Watch};
use crate::auth::ClusterSecret;
use crate::config::ClusterConfig;
use crate::wire::CLUSTER_SECRET_HEADER;

/// Store prefix of node records: `nodes/<name>`.
pub const NODE_PREFIX: &str = "nodes/";

/// A node as recorded in Raft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: NodeId,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub version: String,
    /// What runs there: a lograft node, or a foreign member that registers over HTTP and takes
    /// no part in Raft (a logkit slave, for a fleet migrating one node at a time).
    #[serde(default, skip_serializing_if = "Agent::is_lograft")]
    pub agent: Agent,
    /// What the node publishes of itself from its config (`cluster.labels`, and labels the
    /// layers above set, e.g. `logkit_role`), for the other nodes to read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The software of a member (see [`NodeRecord::agent`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agent {
    #[default]
    Lograft,
    Logkit,
}

impl Agent {
    fn is_lograft(&self) -> bool {
        *self == Agent::Lograft
    }
}

/// What a node says of itself in a heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    pub name: String,
    pub id: NodeId,
    pub url: String,
    #[serde(default)]
    pub runners: usize,
    /// Lines per second read by its runners since the last heartbeat.
    #[serde(default)]
    pub ingest_rate: f64,
    /// Runners this node refuses to run (outside its allowlist, invalid): name → reason.
    #[serde(default)]
    pub refused: BTreeMap<String, String>,
}

/// A join request (sent by the joining node to any member) is the record it asks for.
pub type JoinRequest = NodeRecord;

/// A node as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub id: String,
    pub raft_id: NodeId,
    pub url: String,
    pub tag: String,
    pub version: String,
    /// `ok`, `bad` or `lost`.
    pub status: &'static str,
    /// `leader`, `voter` or `learner` (`removed` for a record no longer in the membership).
    pub role: &'static str,
    pub last_heartbeat: Option<String>,
    pub runners: usize,
    pub ingest_rate: f64,
    pub refused: BTreeMap<String, String>,
    #[serde(rename = "self")]
    pub is_self: bool,
}

struct Heard {
    at: Instant,
    wall: SystemTime,
    beat: Heartbeat,
}

/// Gives the heartbeat's runner summary: (runners, total lines read, refused runners).
pub type Summary = Box<dyn Fn() -> (usize, u64, BTreeMap<String, String>) + Send + Sync>;

pub struct Cluster {
    pub id: NodeId,
    pub name: String,
    pub url: String,
    pub config: ClusterConfig,
    pub secret: ClusterSecret,
    pub client: reqwest::Client,
    store: Arc<LocalStore>,
    logs: LogStore,
    sm: StateMachine,
    network: Network,
    raft: RwLock<Raft>,
    /// Node-local state, not replicated: raft id, cluster secret, offline writes.
    local: sled::Tree,
    heard: Mutex<HashMap<String, Heard>>,
    summary: Mutex<Option<Summary>>,
    /// (when, total lines) of the last heartbeat, for the ingest rate.
    last_beat: Mutex<Option<(Instant, u64)>>,
    /// When this node started: a node it has not heard from yet counts as heard then (it
    /// is not `lost` merely because this node just started).
    started: Instant,
    /// Key prefixes whose `<prefix><node>/...` keys belong to a node (its runner configs):
    /// removed with the node, kept by a node that joins another cluster. Registered by the
    /// layers that own them ([`Cluster::scope_per_node`]); the cluster knows no key layout.
    node_scoped: RwLock<Vec<String>>,
}

fn raft_config() -> anyhow::Result<Arc<openraft::Config>> {
    let config = openraft::Config {
        cluster_name: "lograft".into(),
        heartbeat_interval: 250,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        install_snapshot_timeout: 10_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 200,
        ..Default::default()
    };
    Ok(Arc::new(config.validate().context("raft config")?))
}

/// Whether a URL's host is a loopback address (or `localhost`).
fn is_loopback(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}
