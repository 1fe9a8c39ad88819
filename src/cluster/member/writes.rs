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
    "deploy/",
    "compat/",
];

pub fn is_forwardable(key: &str) -> bool {
    !key.contains("..")
        && FORWARDABLE_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
}

tokio::task_local! {
    /// The `Idempotency-Key` of the API request being served ([`with_client_key`]).
    static CLIENT_KEY: ClientKey;
}

struct ClientKey {
    key: String,
    writes: std::sync::atomic::AtomicU32,
}

/// Run `work` (an API request) with the client's idempotency key: its writes get the ids
/// `client:<key>:0`, `:1`, ... in the order it makes them, so the same request sent again
/// makes the same writes with the same ids, and the store applies each once. `key` should
/// name who sent it (the caller prefixes the principal), so two clients' keys never meet.
pub async fn with_client_key<F: std::future::Future>(key: String, work: F) -> F::Output {
    CLIENT_KEY
        .scope(
            ClientKey {
                key,
                writes: std::sync::atomic::AtomicU32::new(0),
            },
            work,
        )
        .await
}

/// The id of a new write: from the client's idempotency key, or 128 random bits. A retry
/// of the write (after a timeout or a leader change) reuses it.
fn new_request_id() -> String {
    CLIENT_KEY
        .try_with(|client| {
            let n = client
                .writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("client:{}:{n}", client.key)
        })
        .unwrap_or_else(|_| {
            let mut bytes = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        })
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
    ///
    /// Every attempt carries the same request id: an attempt whose answer was lost (the
    /// leader committed, then the forward timed out or leadership moved) and the retry that
    /// follows it are applied once, and the retry answers what the first did.
    pub async fn write(&self, ops: Vec<Op>) -> Result<TxnResult, StoreError> {
        let id = new_request_id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last_error;
        loop {
            let request = Request {
                ops: ops.clone(),
                id: Some(id.clone()),
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A leader cut off from the others cannot commit: stop waiting at the deadline
            // (the entry may still commit later; a retry with the same id is applied once).
            let attempt = tokio::time::timeout(
                remaining.max(Duration::from_millis(100)),
                self.raft().client_write(request),
            )
            .await;
            let Ok(attempt) = attempt else {
                return Err(unavailable(
                    "the write was not committed within 10 s: this node may be cut off from a quorum of the cluster",
                ));
            };
            match attempt {
                Ok(response) => return Ok(response.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    match forward.leader_node {
                        Some(leader) => match self.forward(&leader.addr, &ops, &id).await {
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

    pub(super) async fn forward(
        &self,
        leader: &str,
        ops: &[Op],
        id: &str,
    ) -> Result<TxnResult, String> {
        let url = format!("{leader}/internal/v1/store/txn");
        let response = self
            .client
            .post(&url)
            .header(CLUSTER_SECRET_HEADER, self.secret.reveal())
            .header(crate::wire::ORIGIN_NODE_HEADER, self.id.to_string())
            .header(crate::wire::REQUEST_ID_HEADER, id)
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

    /// Apply a forwarded write here, as the leader, or fail: never forward it again. `id` is
    /// the forwarding member's request id (a retry of the same write carries the same one).
    pub async fn write_as_leader(
        &self,
        ops: Vec<Op>,
        id: Option<String>,
    ) -> Result<TxnResult, StoreError> {
        let id = id.unwrap_or_else(new_request_id);
        match self
            .raft()
            .client_write(Request { ops, id: Some(id) })
            .await
        {
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
