//! Writes through Raft: to the leader, forwarded from a follower, then waited for here;
//! the read barrier; the `ConfigStore` of a running node; writes made while stopped.

use super::*;

/// The keys a member may write through the leader: what the API and the housekeeping of any
/// member write (runner configs, node records, users, API tokens, leases, join tokens, the
/// bootstrap markers). Never the cluster secret, Raft's own records or an unknown key.
/// (The layers above own these prefixes; a test checks the literals against them.)
pub const FORWARDABLE_PREFIXES: &[&str] = &[
    "runners/",
    NODE_PREFIX,
    "auth/users/",
    "auth/tokens/",
    crate::cluster::LEASE_PREFIX,
    crate::cluster::join_token::JOIN_TOKEN_PREFIX,
    "meta/bootstrap/",
];

pub fn is_forwardable(key: &str) -> bool {
    !key.contains("..")
        && FORWARDABLE_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
}

impl Cluster {
    // ---- offline writes ------------------------------------------------------------------

    pub(super) fn pending(local: &sled::Tree) -> anyhow::Result<Vec<Op>> {
        Ok(match local.get("pending")? {
            Some(bytes) => serde_json::from_slice(&bytes).context("pending offline writes")?,
            None => Vec::new(),
        })
    }

    /// Writes made by the CLI while the node was stopped go through Raft now, so every node
    /// sees them.
    pub(super) async fn replay_offline_writes(&self) -> anyhow::Result<()> {
        let mut ops = Self::pending(&self.local)?;
        if ops.is_empty() {
            return Ok(());
        }
        if !self.is_leader() {
            // A follower's writes are forwarded, and the leader takes only member keys: a key
            // of this node's own from before it joined (its old cluster secret) stays behind.
            ops.retain(|op| {
                let keep = is_forwardable(op.key());
                if !keep {
                    warn!(
                        key = op.key(),
                        "not carried into the cluster: a key of this node only"
                    );
                }
                keep
            });
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

    pub(super) async fn forward(&self, leader: &str, ops: &[Op]) -> Result<TxnResult, String> {
        let url = format!("{leader}/internal/v1/store/txn");
        let response = self
            .client
            .post(&url)
            .header(CLUSTER_SECRET_HEADER, self.secret.reveal())
            .header(crate::wire::ORIGIN_NODE_HEADER, self.id.to_string())
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

    /// On the leader: a write another member forwarded (`/internal/v1/store/txn`). Only a
    /// current member may forward, only keys of [`FORWARDABLE_PREFIXES`] may be written this
    /// way, and only the leader applies it (no second hop). Returns the forwarding member's
    /// name for the audit trail.
    pub fn check_forwarded(&self, origin: Option<NodeId>, ops: &[Op]) -> Result<String, String> {
        let origin = origin.ok_or("a forwarded write names the member that forwards it")?;
        let (voters, learners) = self.members();
        if origin == self.id || !(voters.contains(&origin) || learners.contains(&origin)) {
            return Err(format!(
                "node {origin} is not another member of this cluster"
            ));
        }
        if let Some(op) = ops.iter().find(|op| !is_forwardable(op.key())) {
            return Err(format!(
                "key {:?} cannot be written through another member",
                op.key()
            ));
        }
        if !self.is_leader() {
            return Err("this node is not the leader; forward to the leader".into());
        }
        let name = self
            .list(NODE_PREFIX)
            .ok()
            .and_then(|entries| {
                entries.into_iter().find_map(|entry| {
                    serde_json::from_str::<NodeRecord>(&entry.value)
                        .ok()
                        .filter(|record| record.id == origin)
                        .map(|record| record.name)
                })
            })
            .unwrap_or_else(|| origin.to_string());
        Ok(name)
    }

    /// Apply a forwarded write here, as the leader, or fail: never forward it again.
    pub async fn write_as_leader(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        match self.raft().client_write(Request { ops }).await {
            Ok(response) => Ok(response.data),
            Err(err) => Err(unavailable(format!("not applied on this node: {err}"))),
        }
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

    pub(super) async fn leader_revision(&self, leader: &str) -> Result<u64, String> {
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

    pub(super) async fn wait_applied(&self, revision: u64) {
        self.store
            .wait_for_revision(revision, Duration::from_secs(5))
            .await;
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
