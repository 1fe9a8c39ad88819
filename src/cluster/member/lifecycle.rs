//! Starting, settling and stopping the Raft node.

use super::*;

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
                // learns it when it joins, in exchange for its join token; a new cluster
                // makes one.
                let joining = fresh && config.join.is_some();
                let secret = match (
                    store.get(crate::auth::CLUSTER_SECRET_KEY)?,
                    &config.join_token,
                ) {
                    (Some(entry), _) => serde_json::from_str(&entry.value)?,
                    (None, Some(token)) if joining && join_token::is_join_token(token) => {
                        String::new() // learnt in `settle`, kept then
                    }
                    (None, Some(token)) if joining => {
                        warn!(
                            "cluster.join_token holds the cluster secret itself; it works, but a \
                             join token (`lograft cluster token` on a member) expires and is \
                             used up, the secret is forever"
                        );
                        token.clone()
                    }
                    _ => ClusterSecret::generate(),
                };
                if !secret.is_empty() {
                    local.insert("cluster_secret", secret.as_bytes())?;
                    local.flush()?;
                }
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
    pub(super) fn keys_of_node(&self, name: &str) -> Result<Vec<KvEntry>, StoreError> {
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

    pub(super) async fn try_settle(self: &Arc<Self>) -> anyhow::Result<()> {
        let (voters, learners) = self.members();
        if !voters.contains(&self.id) && !learners.contains(&self.id) {
            let Some(peer) = self.config.join.clone() else {
                bail!(
                    "this node is in no cluster (it was removed?): start it on a fresh data dir or with cluster.join"
                );
            };
            if self.secret.reveal().is_empty() {
                let token = self.config.join_token.clone().unwrap_or_default();
                let secret = self.exchange_join_token(&peer, &token).await?;
                self.local.insert("cluster_secret", secret.as_bytes())?;
                self.local.flush()?;
                self.secret.set(secret);
            }
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
    pub(super) fn address_changed(&self) -> Option<Vec<String>> {
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
    pub(super) async fn register(&self) -> anyhow::Result<()> {
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
            agent: Agent::Lograft,
            labels: self.config.labels.clone(),
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
}
