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
//!   its runner configs.
//!
//! # Heartbeats
//!
//! Every `cluster.heartbeat_interval` each node tells every other node it is alive, with a
//! summary of its runners. What a node heard is kept in memory only; a node's status is
//! logkit's: `ok` heard within `cluster.bad_after` (30 s), `bad` within `cluster.lost_after`
//! (60 s), `lost` after that (a node not heard from since this node started counts from then).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow, bail};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

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

impl Cluster {
    /// Open the Raft state on `store`'s database and start Raft. A fresh node without
    /// `cluster.join` becomes a one-node cluster; one with it waits for [`Cluster::settle`].
    pub async fn start(
        node_name: &str,
        config: ClusterConfig,
        store: Arc<LocalStore>,
        client: reqwest::Client,
    ) -> anyhow::Result<Arc<Cluster>> {
        let local = store.db().open_tree("node")?;
        let id = match local.get("raft_id")? {
            Some(bytes) => u64::from_be_bytes(bytes.as_ref().try_into().context("raft_id")?),
            None => {
                let id = rand::random::<u64>() >> 1 | 1;
                local.insert("raft_id", &id.to_be_bytes())?;
                local.flush()?;
                id
            }
        };
        let logs = LogStore::open(store.db())?;
        let fresh = logs.is_fresh()?;
        let secret = match local.get("cluster_secret")? {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => {
                // A data dir from before the cluster kept it in the store; a joining node
                // takes its join token; a new cluster makes one.
                let secret = match (
                    store.get(crate::auth::CLUSTER_SECRET_KEY)?,
                    &config.join_token,
                ) {
                    (Some(entry), _) => serde_json::from_str(&entry.value)?,
                    (None, Some(token)) if fresh && config.join.is_some() => token.clone(),
                    _ => ClusterSecret::generate(),
                };
                local.insert("cluster_secret", secret.as_bytes())?;
                local.flush()?;
                secret
            }
        };
        let secret = ClusterSecret::new(secret);
        let sm = StateMachine::open(store.clone())?;
        if fresh {
            // Every node's state must be exactly its Raft log (a joining node replays the log
            // from the start): data from before the cluster becomes writes through Raft, like
            // offline changes, and the state machine starts empty at revision 0.
            let dump = store.dump()?;
            if !dump.entries.is_empty() || dump.revision != 0 {
                let mut ops: Vec<Op> = dump
                    .entries
                    .into_iter()
                    .map(|entry| Op::Put {
                        key: entry.key,
                        value: entry.value,
                        expected: None,
                    })
                    .collect();
                info!(
                    entries = ops.len(),
                    "moving this node's existing config into the cluster log"
                );
                ops.extend(Self::pending(&local)?);
                local.insert("pending", serde_json::to_vec(&ops)?)?;
                local.flush()?;
                sm.wipe()?;
            }
        }
        let network = Network {
            client: client.clone(),
            secret: secret.clone(),
        };
        let raft = Raft::new(
            id,
            raft_config()?,
            network.clone(),
            logs.clone(),
            sm.clone(),
        )
        .await
        .context("starting raft")?;
        let url = config.advertise_url.clone();
        if fresh && config.join.is_none() {
            let members = BTreeMap::from([(id, BasicNode { addr: url.clone() })]);
            raft.initialize(members)
                .await
                .context("initializing a one-node cluster")?;
            info!(raft_id = id, "started a new one-node cluster");
        }
        if !fresh || config.join.is_none() {
            // Let Raft load (or take) its membership before anyone asks who the members are.
            let _ = raft
                .wait(Some(Duration::from_secs(5)))
                .metrics(
                    |m| m.membership_config.membership().nodes().next().is_some(),
                    "membership loaded",
                )
                .await;
        }
        Ok(Arc::new(Cluster {
            id,
            name: node_name.to_string(),
            url,
            config,
            secret,
            client,
            store,
            logs,
            sm,
            network,
            raft: RwLock::new(raft),
            local,
            heard: Mutex::new(HashMap::new()),
            summary: Mutex::new(None),
            last_beat: Mutex::new(None),
            started: Instant::now(),
            node_scoped: RwLock::new(Vec::new()),
        }))
    }

    /// Keys `<prefix><node>/...` belong to `<node>` (see `node_scoped`).
    pub fn scope_per_node(&self, prefix: &str) {
        self.node_scoped
            .write()
            .expect("scope lock")
            .push(prefix.to_string());
    }

    /// Every key that belongs to node `name`.
    fn keys_of_node(&self, name: &str) -> Result<Vec<KvEntry>, StoreError> {
        let prefixes = self.node_scoped.read().expect("scope lock").clone();
        let mut entries = Vec::new();
        for prefix in prefixes {
            entries.extend(self.list(&format!("{prefix}{name}/"))?);
        }
        Ok(entries)
    }

    pub fn raft(&self) -> Raft {
        self.raft.read().expect("raft lock").clone()
    }

    /// Voters and learners of the current membership.
    pub fn members(&self) -> (BTreeSet<NodeId>, BTreeSet<NodeId>) {
        let metrics = self.raft().metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
        (voters, learners)
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft().metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.raft().metrics().borrow().state == ServerState::Leader
    }

    /// Whether this node is the only member (a one-node cluster, or not joined yet).
    pub fn is_alone(&self) -> bool {
        let (voters, learners) = self.members();
        voters
            .iter()
            .chain(learners.iter())
            .all(|id| *id == self.id)
    }

    /// Become a working member: join if asked to and not done yet, wait for a leader, replay
    /// offline writes, migrate old keys and (re)write this node's record. Retries until done.
    pub async fn settle(self: &Arc<Self>) {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.try_settle().await {
                Ok(()) => return,
                Err(err) => {
                    warn!(error = %format!("{err:#}"), "not a working cluster member yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn try_settle(self: &Arc<Self>) -> anyhow::Result<()> {
        let (voters, learners) = self.members();
        if !voters.contains(&self.id) && !learners.contains(&self.id) {
            let Some(peer) = self.config.join.clone() else {
                bail!(
                    "this node is in no cluster (it was removed?): start it on a fresh data dir or with cluster.join"
                );
            };
            self.send_join(&peer).await?;
        } else if let Some(peers) = self.address_changed().filter(|_| !self.is_leader()) {
            // (A leader records its own new address in `register`.)
            // The others would keep sending Raft messages to the old address: tell them the
            // new one through any member (it forwards to the leader).
            let mut last = anyhow!("no other member to tell");
            let mut told = false;
            for peer in peers {
                match self.send_join(&peer).await {
                    Ok(()) => {
                        told = true;
                        break;
                    }
                    Err(err) => last = err,
                }
            }
            if !told {
                return Err(last.context("announcing this node's new address"));
            }
        }
        self.raft()
            .wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|e| anyhow!("no leader yet: {e}"))?;
        self.replay_offline_writes().await?;
        self.register().await?;
        Ok(())
    }

    /// The other members' URLs when the membership has this node at another address than
    /// `cluster.advertise_url` (its listen address or advertised URL changed).
    fn address_changed(&self) -> Option<Vec<String>> {
        let metrics = self.raft().metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let recorded = membership.get_node(&self.id)?;
        if recorded.addr == self.url {
            return None;
        }
        let peers: Vec<String> = membership
            .nodes()
            .filter(|(id, _)| **id != self.id)
            .map(|(_, node)| node.addr.clone())
            .collect();
        // Alone, this node is its own leader and updates itself (`register`).
        (!peers.is_empty()).then_some(peers)
    }

    /// Write `nodes/<name>` if it is missing or out of date (URL, version; the tag is kept).
    async fn register(&self) -> anyhow::Result<()> {
        let recorded = self
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&self.id)
            .map(|n| n.addr.clone());
        if self.is_leader() && recorded.is_some_and(|addr| addr != self.url) {
            let node = BasicNode {
                addr: self.url.clone(),
            };
            self.raft()
                .change_membership(
                    ChangeMembers::SetNodes(BTreeMap::from([(self.id, node)])),
                    true,
                )
                .await
                .map_err(|e| anyhow!("recording this node's new address: {e}"))?;
        }
        let key = format!("{NODE_PREFIX}{}", self.name);
        let existing = self.get(&key)?;
        let mut record = NodeRecord {
            id: self.id,
            name: self.name.clone(),
            url: self.url.clone(),
            tag: self.config.tag.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        if let Some(entry) = &existing {
            let stored: NodeRecord = serde_json::from_str(&entry.value)?;
            record.tag = stored.tag.clone();
            if stored == record {
                return Ok(());
            }
        }
        let value = serde_json::to_string(&record)?;
        let revision = existing.map(|e| e.mod_revision).unwrap_or(0);
        match self.put(&key, value, Some(revision)).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    // ---- offline writes ------------------------------------------------------------------

    fn pending(local: &sled::Tree) -> anyhow::Result<Vec<Op>> {
        Ok(match local.get("pending")? {
            Some(bytes) => serde_json::from_slice(&bytes).context("pending offline writes")?,
            None => Vec::new(),
        })
    }

    /// Writes made by the CLI while the node was stopped go through Raft now, so every node
    /// sees them.
    async fn replay_offline_writes(&self) -> anyhow::Result<()> {
        let ops = Self::pending(&self.local)?;
        if ops.is_empty() {
            return Ok(());
        }
        let count = ops.len();
        self.txn(ops).await?;
        self.local.remove("pending")?;
        self.local.flush()?;
        info!(writes = count, "applied the changes made offline");
        Ok(())
    }

    // ---- writes --------------------------------------------------------------------------

    /// A transaction through Raft: on the leader directly, else forwarded to it. Waits for
    /// this node's state machine to have it too, so a reader here sees its own write.
    pub async fn write(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last_error;
        loop {
            match self.raft().client_write(Request { ops: ops.clone() }).await {
                Ok(response) => return Ok(response.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    match forward.leader_node {
                        Some(leader) => match self.forward(&leader.addr, &ops).await {
                            Ok(result) => {
                                if let Some(revision) = result.revision {
                                    self.wait_applied(revision).await;
                                }
                                return Ok(result);
                            }
                            Err(err) => last_error = err,
                        },
                        None => last_error = "no leader elected yet".to_string(),
                    }
                }
                Err(err) => last_error = err.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(unavailable(last_error));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn forward(&self, leader: &str, ops: &[Op]) -> Result<TxnResult, String> {
        let url = format!("{leader}/internal/v1/store/txn");
        let response = self
            .client
            .post(&url)
            .header(CLUSTER_SECRET_HEADER, self.secret.reveal())
            .json(ops)
            .send()
            .await
            .map_err(|e| format!("forwarding to the leader {leader}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("the leader {leader} answered {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("the leader's answer: {e}"))
    }

    /// Raft's read index: every write committed before the call is applied here when this
    /// returns (the leader confirms its leadership with a quorum; a follower asks the leader
    /// for the revision to reach and waits for its own state machine to reach it).
    pub async fn read_barrier(&self) -> Result<u64, StoreError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last_error;
        loop {
            match self.raft().ensure_linearizable().await {
                Ok(_) => return Ok(self.store.revision()),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                    match forward.leader_node {
                        Some(leader) => match self.leader_revision(&leader.addr).await {
                            Ok(revision) => {
                                self.wait_applied(revision).await;
                                if self.store.revision() >= revision {
                                    return Ok(self.store.revision());
                                }
                                last_error = format!(
                                    "this node did not catch up with revision {revision} of the leader"
                                );
                            }
                            Err(err) => last_error = err,
                        },
                        None => last_error = "no leader elected yet".to_string(),
                    }
                }
                Err(err) => last_error = err.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(unavailable(last_error));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// On the leader: the revision a linearizable read must reach (`/internal/v1/store/read_index`).
    pub async fn read_index_here(&self) -> Result<u64, StoreError> {
        self.raft()
            .ensure_linearizable()
            .await
            .map_err(|err| unavailable(format!("not the leader: {err}")))?;
        Ok(self.store.revision())
    }

    async fn leader_revision(&self, leader: &str) -> Result<u64, String> {
        let url = format!("{leader}/internal/v1/store/read_index");
        let response = self
            .client
            .post(&url)
            .header(CLUSTER_SECRET_HEADER, self.secret.reveal())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("asking the leader {leader} for its read index: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("the leader {leader} answered {status}: {text}"));
        }
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["revision"].as_u64())
            .ok_or_else(|| format!("the leader's answer has no revision: {text}"))
    }

    async fn wait_applied(&self, revision: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.store.revision() < revision && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    // ---- membership ----------------------------------------------------------------------

    /// A node on another machine cannot reach this one at a loopback address.
    fn check_advertised(&self, peer: &str) -> anyhow::Result<()> {
        if is_loopback(&self.url) && !is_loopback(peer) {
            bail!(
                "this node would tell {peer} to reach it at {}, a loopback address: set cluster.advertise_url (and listen) to an address the other nodes can reach",
                self.url
            );
        }
        Ok(())
    }

    /// Ask `peer` (any member) to add this node; it forwards to the leader.
    async fn send_join(&self, peer: &str) -> anyhow::Result<()> {
        self.check_advertised(peer)?;
        let request = JoinRequest {
            id: self.id,
            name: self.name.clone(),
            url: self.url.clone(),
            tag: self.config.tag.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        info!(peer, "asking to join the cluster");
        let response = self
            .client
            .post(format!("{peer}/internal/v1/cluster/join"))
            .header(CLUSTER_SECRET_HEADER, self.secret.reveal())
            .timeout(Duration::from_secs(60))
            .json(&request)
            .send()
            .await
            .with_context(|| format!("cannot reach {peer}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{peer} refused the join: {status}: {text}");
        }
        info!(peer, "joined the cluster");
        Ok(())
    }

    /// On a member: add a node (forwarded to the leader when this node is not it).
    pub async fn handle_join(&self, request: JoinRequest) -> anyhow::Result<Value> {
        if !self.is_leader() {
            return self
                .on_leader(
                    "/internal/v1/cluster/join",
                    &serde_json::to_value(&request)?,
                )
                .await;
        }
        if request.name.is_empty() || request.name.contains('/') {
            bail!("node name {:?} is empty or contains '/'", request.name);
        }
        let (voters, learners) = self.members();
        let key = format!("{NODE_PREFIX}{}", request.name);
        let mut tag = request.tag.clone();
        if let Some(entry) = self.get(&key)? {
            let existing: NodeRecord = serde_json::from_str(&entry.value)?;
            if existing.id == request.id {
                // A member announcing itself again (new address): its tag stays as set.
                tag = existing.tag.clone();
            }
            if existing.id != request.id
                && (voters.contains(&existing.id) || learners.contains(&existing.id))
            {
                bail!(
                    "a node named {:?} is already a member ({}); remove it first or give this node another node_name",
                    request.name,
                    existing.url
                );
            }
        }
        let raft = self.raft();
        let node = BasicNode {
            addr: request.url.clone(),
        };
        if voters.contains(&request.id) || learners.contains(&request.id) {
            // Already a member: only its address may have changed (a new IP or port).
            let known = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&request.id)
                .map(|n| n.addr.clone());
            if known.as_deref() != Some(request.url.as_str()) {
                raft.change_membership(
                    ChangeMembers::SetNodes(BTreeMap::from([(request.id, node)])),
                    true,
                )
                .await
                .map_err(|e| anyhow!("changing the address of {}: {e}", request.name))?;
                info!(node = %request.name, url = %request.url, "a member's address changed");
            }
        } else {
            raft.add_learner(request.id, node, true)
                .await
                .map_err(|e| anyhow!("adding {} as a learner: {e}", request.name))?;
        }
        let record = NodeRecord {
            id: request.id,
            name: request.name.clone(),
            url: request.url.clone(),
            tag,
            version: request.version.clone(),
        };
        self.put(&key, serde_json::to_string(&record)?, None)
            .await?;
        let role = if voters.len() < self.config.voters && !voters.contains(&request.id) {
            raft.change_membership(
                ChangeMembers::AddVoterIds(BTreeSet::from([request.id])),
                true,
            )
            .await
            .map_err(|e| anyhow!("making {} a voter: {e}", request.name))?;
            "voter"
        } else if voters.contains(&request.id) {
            "voter"
        } else {
            "learner"
        };
        info!(node = %request.name, url = %request.url, role, "a node joined");
        Ok(serde_json::json!({"joined": request.name, "role": role}))
    }

    /// Remove a node from the cluster: membership, record and runner configs.
    pub async fn remove_node(&self, name: &str) -> anyhow::Result<Value> {
        if !self.is_leader() {
            return self
                .on_leader(
                    "/internal/v1/cluster/remove",
                    &serde_json::json!({"name": name}),
                )
                .await;
        }
        let key = format!("{NODE_PREFIX}{name}");
        let entry = self
            .get(&key)?
            .ok_or_else(|| anyhow!("no node named {name:?} in this cluster"))?;
        let record: NodeRecord = serde_json::from_str(&entry.value)?;
        let (voters, learners) = self.members();
        let raft = self.raft();
        if voters.contains(&record.id) {
            if voters.len() == 1 {
                bail!("{name} is the last voter: a cluster cannot remove its last voter");
            }
            let mut remaining = voters.clone();
            remaining.remove(&record.id);
            // Keep the voter count: promote a learner if there is one.
            if let Some(learner) = learners.iter().find(|id| **id != record.id) {
                remaining.insert(*learner);
            }
            raft.change_membership(ChangeMembers::ReplaceAllVoters(remaining), true)
                .await
                .map_err(|e| anyhow!("removing {name} from the voters: {e}"))?;
        }
        if voters.contains(&record.id) || learners.contains(&record.id) {
            raft.change_membership(
                ChangeMembers::RemoveNodes(BTreeSet::from([record.id])),
                false,
            )
            .await
            .map_err(|e| anyhow!("removing {name} from the cluster: {e}"))?;
        }
        let mut ops = vec![Op::Delete {
            key,
            expected: None,
        }];
        for owned in self.keys_of_node(name)? {
            ops.push(Op::Delete {
                key: owned.key,
                expected: None,
            });
        }
        // The removed leader's writes may fail once it is out; another member retries.
        self.txn(ops).await?;
        self.heard.lock().expect("heard lock").remove(name);
        info!(node = name, "node removed from the cluster");
        Ok(serde_json::json!({"removed": name}))
    }

    /// Send a membership call to the leader.
    async fn on_leader(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let leader = self
            .leader()
            .ok_or_else(|| anyhow!("no leader elected yet; try again in a few seconds"))?;
        let addr = self
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
            .ok_or_else(|| anyhow!("the leader's address is unknown"))?;
        let response = self
            .client
            .post(format!("{addr}{path}"))
            .header(CLUSTER_SECRET_HEADER, self.secret.reveal())
            .timeout(Duration::from_secs(60))
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach the leader at {addr}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            bail!("{message}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `lograft cluster join` on a running node that is still alone: drop its one-node
    /// history, take the cluster's, and keep its own runner configs.
    pub async fn join_running(self: &Arc<Self>, peer: &str, token: &str) -> anyhow::Result<()> {
        let peer = peer.trim_end_matches('/');
        if !self.is_alone() || self.list(NODE_PREFIX)?.len() > 1 {
            bail!(
                "this node is already in a cluster of several nodes: `lograft cluster leave` first"
            );
        }
        // Check the addresses, the peer and the token before dropping anything.
        self.check_advertised(peer)?;
        let response = self
            .client
            .get(format!("{peer}/internal/v1/ping"))
            .header(CLUSTER_SECRET_HEADER, token)
            .send()
            .await
            .with_context(|| format!("cannot reach {peer}"))?;
        if !response.status().is_success() {
            bail!(
                "{peer} refused the token ({}): check `lograft cluster token` on a member",
                response.status()
            );
        }
        let own_runners = self.keys_of_node(&self.name)?;
        let old = self.raft();
        old.shutdown().await.ok();
        self.logs.wipe()?;
        self.sm.wipe()?;
        let raft = Raft::new(
            self.id,
            raft_config()?,
            self.network.clone(),
            self.logs.clone(),
            self.sm.clone(),
        )
        .await
        .context("restarting raft")?;
        *self.raft.write().expect("raft lock") = raft;
        self.secret.set(token.to_string());
        self.local.insert("cluster_secret", token.as_bytes())?;
        self.local.flush()?;
        self.send_join(peer).await?;
        self.settle().await;
        for entry in own_runners {
            match self.put(&entry.key, entry.value, Some(0)).await {
                Ok(_) | Err(StoreError::Conflict { .. }) => {}
                Err(err) => warn!(key = %entry.key, error = %err, "could not keep a runner config"),
            }
        }
        Ok(())
    }

    // ---- registry and heartbeats ---------------------------------------------------------

    pub fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.list(NODE_PREFIX)?
            .into_iter()
            .map(|entry| {
                serde_json::from_str(&entry.value).map_err(|e| StoreError::Corrupt {
                    key: entry.key.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    pub fn set_summary(&self, summary: Summary) {
        *self.summary.lock().expect("summary lock") = Some(summary);
    }

    /// This node's heartbeat. `advance` moves the ingest-rate window (when it is sent).
    fn own_beat(&self, advance: bool) -> Heartbeat {
        let (runners, lines, refused) = match &*self.summary.lock().expect("summary lock") {
            Some(summary) => summary(),
            None => (0, 0, BTreeMap::new()),
        };
        let now = Instant::now();
        let mut last = self.last_beat.lock().expect("beat lock");
        let ingest_rate = match *last {
            Some((at, before)) if now > at => {
                lines.saturating_sub(before) as f64 / (now - at).as_secs_f64()
            }
            _ => 0.0,
        };
        // Keep the window at least one interval long.
        if advance && last.is_none_or(|(at, _)| now - at >= self.config.heartbeat_interval) {
            *last = Some((now, lines));
        }
        Heartbeat {
            name: self.name.clone(),
            id: self.id,
            url: self.url.clone(),
            runners,
            ingest_rate,
            refused,
        }
    }

    pub fn receive_heartbeat(&self, beat: Heartbeat) {
        self.heard.lock().expect("heard lock").insert(
            beat.name.clone(),
            Heard {
                at: Instant::now(),
                wall: SystemTime::now(),
                beat,
            },
        );
    }

    /// Send heartbeats until `shutdown`.
    pub async fn heartbeats(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(self.config.heartbeat_interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            self.export_metrics();
            let Ok(nodes) = self.nodes() else { continue };
            let beat = self.own_beat(true);
            let sends = nodes.into_iter().filter(|n| n.name != self.name).map(|node| {
                let request = self
                    .client
                    .post(format!("{}/internal/v1/heartbeat", node.url))
                    .header(CLUSTER_SECRET_HEADER, self.secret.reveal())
                    .timeout(self.config.heartbeat_interval.max(Duration::from_secs(1)))
                    .json(&beat);
                async move {
                    if let Err(err) = request.send().await.and_then(|r| r.error_for_status()) {
                        tracing::debug!(node = %node.name, error = %err, "heartbeat not delivered");
                    }
                }
            });
            futures_util::future::join_all(sends).await;
        }
    }

    /// Cluster gauges for `/metrics`, refreshed with every heartbeat.
    fn export_metrics(&self) {
        use crate::metrics as m;
        let metrics = self.raft().metrics().borrow().clone();
        metrics::gauge!(m::RAFT_LEADER).set(if metrics.state == ServerState::Leader {
            1.0
        } else {
            0.0
        });
        metrics::gauge!(m::RAFT_TERM).set(metrics.current_term as f64);
        metrics::gauge!(m::CONFIG_REVISION).set(self.store.revision() as f64);
        if let Ok(nodes) = self.nodes() {
            for status in ["ok", "bad", "lost"] {
                let count = nodes
                    .iter()
                    .filter(|n| self.status_of(&n.name) == status)
                    .count();
                metrics::gauge!(m::CLUSTER_NODES, "status" => status).set(count as f64);
            }
        }
    }

    /// `ok`, `bad` or `lost` for a node, as logkit defines it.
    pub fn status_of(&self, name: &str) -> &'static str {
        if name == self.name {
            return "ok";
        }
        self.status_from(self.heard.lock().expect("heard lock").get(name))
    }

    fn status_from(&self, heard: Option<&Heard>) -> &'static str {
        let silent = heard.map_or(self.started, |h| h.at).elapsed();
        if silent < self.config.bad_after {
            "ok"
        } else if silent < self.config.lost_after {
            "bad"
        } else {
            "lost"
        }
    }

    /// Every node with its status, role and last heartbeat.
    pub fn view(&self) -> Result<Vec<NodeView>, StoreError> {
        let (voters, learners) = self.members();
        let leader = self.leader();
        let own = self.own_beat(false);
        let heard = self.heard.lock().expect("heard lock");
        let mut views = Vec::new();
        for record in self.nodes()? {
            let is_self = record.name == self.name;
            let role = if Some(record.id) == leader {
                "leader"
            } else if voters.contains(&record.id) {
                "voter"
            } else if learners.contains(&record.id) {
                "learner"
            } else {
                "removed"
            };
            let (beat, last) = if is_self {
                (Some(own.clone()), Some(SystemTime::now()))
            } else {
                match heard.get(&record.name) {
                    Some(h) => (Some(h.beat.clone()), Some(h.wall)),
                    None => (None, None),
                }
            };
            let status = if is_self {
                "ok"
            } else {
                self.status_from(heard.get(&record.name))
            };
            let beat = beat.unwrap_or_default();
            views.push(NodeView {
                id: record.name.clone(),
                raft_id: record.id,
                url: record.url.clone(),
                tag: record.tag.clone(),
                version: record.version.clone(),
                status,
                role,
                last_heartbeat: last.map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339()),
                runners: beat.runners,
                ingest_rate: beat.ingest_rate,
                refused: beat.refused,
                is_self,
            });
        }
        Ok(views)
    }

    pub async fn shutdown(&self) {
        let _ = self.raft().shutdown().await;
    }
}

impl ConfigStore for Cluster {
    fn get(&self, key: &str) -> Result<Option<KvEntry>, StoreError> {
        self.store.get(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, StoreError> {
        self.store.list(prefix)
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        expected_revision: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let op = Op::Put {
                key: key.to_string(),
                value,
                expected: expected_revision,
            };
            let result = self.write(vec![op]).await?.into_result()?;
            result.ok_or_else(|| unavailable("the put changed nothing"))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let op = Op::Delete {
                key: key.to_string(),
                expected: None,
            };
            self.write(vec![op]).await?.into_result()
        })
    }

    fn txn<'a>(&'a self, ops: Vec<Op>) -> BoxFuture<'a, Result<TxnResult, StoreError>> {
        Box::pin(self.write(ops))
    }

    fn watch(&self, prefix: &str) -> Result<Watch, StoreError> {
        self.store.watch(prefix)
    }

    fn revision(&self) -> u64 {
        self.store.revision()
    }

    fn read_barrier(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(Cluster::read_barrier(self))
    }
}

/// The config store for the CLI while the node is stopped: reads see the node's state with
/// the offline changes on top; writes are kept in the node's local tree and go through Raft
/// when the node next starts ([`Cluster::settle`]), so every member sees them.
pub struct OfflineStore {
    store: Arc<LocalStore>,
    local: sled::Tree,
    lock: Mutex<()>,
}

impl OfflineStore {
    pub fn open(store: Arc<LocalStore>) -> anyhow::Result<OfflineStore> {
        let local = store.db().open_tree("node")?;
        Ok(OfflineStore {
            store,
            local,
            lock: Mutex::new(()),
        })
    }

    /// The cluster secret as this node knows it.
    pub fn cluster_secret(&self) -> anyhow::Result<Option<String>> {
        if let Some(bytes) = self.local.get("cluster_secret")? {
            return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
        }
        Ok(match self.store.get(crate::auth::CLUSTER_SECRET_KEY)? {
            Some(entry) => Some(serde_json::from_str(&entry.value)?),
            None => None,
        })
    }

    fn pending(&self) -> Result<Vec<Op>, StoreError> {
        Cluster::pending(&self.local).map_err(|e| StoreError::Corrupt {
            key: "pending".into(),
            reason: e.to_string(),
        })
    }

    /// The offline view of one key: `Some(Some(value))` put, `Some(None)` deleted.
    fn overlay(&self) -> Result<BTreeMap<String, Option<String>>, StoreError> {
        let mut view = BTreeMap::new();
        for op in self.pending()? {
            match op {
                Op::Put { key, value, .. } => view.insert(key, Some(value)),
                Op::Delete { key, .. } => view.insert(key, None),
            };
        }
        Ok(view)
    }

    fn offline_revision(&self) -> u64 {
        self.store.revision() + 1
    }
}

impl ConfigStore for OfflineStore {
    fn get(&self, key: &str) -> Result<Option<KvEntry>, StoreError> {
        match self.overlay()?.remove(key) {
            Some(Some(value)) => Ok(Some(KvEntry {
                key: key.to_string(),
                value,
                mod_revision: self.offline_revision(),
            })),
            Some(None) => Ok(None),
            None => self.store.get(key),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, StoreError> {
        let mut entries: BTreeMap<String, KvEntry> = self
            .store
            .list(prefix)?
            .into_iter()
            .map(|e| (e.key.clone(), e))
            .collect();
        for (key, value) in self.overlay()? {
            if !key.starts_with(prefix) {
                continue;
            }
            match value {
                Some(value) => {
                    entries.insert(
                        key.clone(),
                        KvEntry {
                            key,
                            value,
                            mod_revision: self.offline_revision(),
                        },
                    );
                }
                None => {
                    entries.remove(&key);
                }
            }
        }
        Ok(entries.into_values().collect())
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        expected_revision: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().expect("offline lock");
            if let Some(expected) = expected_revision {
                let found = self.get(key)?.map(|e| e.mod_revision).unwrap_or(0);
                if found != expected {
                    return Err(StoreError::Conflict {
                        key: key.to_string(),
                        expected,
                        found,
                    });
                }
            }
            let mut ops = self.pending()?;
            ops.push(Op::Put {
                key: key.to_string(),
                value,
                expected: None,
            });
            self.local
                .insert("pending", serde_json::to_vec(&ops).expect("json"))?;
            self.local.flush()?;
            Ok(self.offline_revision())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().expect("offline lock");
            if self.get(key)?.is_none() {
                return Ok(None);
            }
            let mut ops = self.pending()?;
            ops.push(Op::Delete {
                key: key.to_string(),
                expected: None,
            });
            self.local
                .insert("pending", serde_json::to_vec(&ops).expect("json"))?;
            self.local.flush()?;
            Ok(Some(self.offline_revision()))
        })
    }

    fn txn<'a>(&'a self, ops: Vec<Op>) -> BoxFuture<'a, Result<TxnResult, StoreError>> {
        Box::pin(async move {
            let mut revision = None;
            for op in ops {
                revision = match op {
                    Op::Put {
                        key,
                        value,
                        expected,
                    } => Some(self.put(&key, value, expected).await?),
                    Op::Delete { key, .. } => self.delete(&key).await?.or(revision),
                };
            }
            Ok(TxnResult {
                revision,
                conflict: None,
            })
        })
    }

    fn watch(&self, _prefix: &str) -> Result<Watch, StoreError> {
        Err(unavailable("the offline store cannot be watched"))
    }

    fn revision(&self) -> u64 {
        self.store.revision()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls() {
        assert!(is_loopback("http://127.0.0.1:7700"));
        assert!(is_loopback("https://localhost:7700"));
        assert!(is_loopback("http://[::1]:7700"));
        assert!(!is_loopback("https://10.0.0.2:7700"));
        assert!(!is_loopback("https://logs.example.com"));
    }

    fn config() -> ClusterConfig {
        crate::config::NodeConfig::default().cluster
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_raft_store_passes_the_config_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let cluster = Cluster::start("n1", config(), store, reqwest::Client::new())
            .await
            .unwrap();
        cluster.settle().await;
        crate::cluster::conformance::run(cluster.as_ref()).await;
        cluster.shutdown().await;
    }

    /// A data dir from before the cluster: runner configs under `runners/<name>` and the secret
    /// in the store. Opening it makes a one-node cluster that keeps both.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_single_node_data_dir_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let old = LocalStore::open(dir.path()).unwrap();
            old.put("runners/web", "{\"name\":\"web\"}".into(), None)
                .await
                .unwrap();
            old.put("auth/users/admin", "{}".into(), None)
                .await
                .unwrap();
            old.put(crate::auth::CLUSTER_SECRET_KEY, "\"lgc_old\"".into(), None)
                .await
                .unwrap();
        }
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let cluster = Cluster::start("n1", config(), store, reqwest::Client::new())
            .await
            .unwrap();
        assert!(cluster.is_alone());
        cluster.settle().await;
        crate::collect::migrate_runner_keys(cluster.as_ref(), "n1")
            .await
            .unwrap();
        assert_eq!(cluster.secret.reveal(), "lgc_old");
        assert!(cluster.get("runners/web").unwrap().is_none());
        assert_eq!(
            cluster.get("runners/n1/web").unwrap().unwrap().value,
            "{\"name\":\"web\"}"
        );
        assert!(cluster.get("auth/users/admin").unwrap().is_some());
        let record: NodeRecord =
            serde_json::from_str(&cluster.get("nodes/n1").unwrap().unwrap().value).unwrap();
        assert_eq!(record.id, cluster.id);
        // Writes go through Raft and land in the state machine.
        let revision = cluster.put("x", "1".into(), Some(0)).await.unwrap();
        assert_eq!(cluster.get("x").unwrap().unwrap().mod_revision, revision);
        cluster.shutdown().await;
    }
}
