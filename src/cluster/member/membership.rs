//! Joining, leaving and removing members.

use super::*;

impl Cluster {
    // ---- membership ----------------------------------------------------------------------

    /// A node on another machine cannot reach this one at a loopback address.
    pub(super) fn check_advertised(&self, peer: &str) -> anyhow::Result<()> {
        if is_loopback(&self.url) && !is_loopback(peer) {
            bail!(
                "this node would tell {peer} to reach it at {}, a loopback address: set cluster.advertise_url (and listen) to an address the other nodes can reach",
                self.url
            );
        }
        Ok(())
    }

    /// Ask `peer` (any member) to add this node; it forwards to the leader.
    /// Trade a join token for the cluster secret at `peer` (any member).
    pub(super) async fn exchange_join_token(
        &self,
        peer: &str,
        token: &str,
    ) -> anyhow::Result<String> {
        self.check_advertised(peer)?;
        let answer = self
            .post_json(
                &format!("{peer}/internal/v1/cluster/exchange"),
                (crate::wire::JOIN_TOKEN_HEADER, token),
                &serde_json::json!({"name": self.name}),
                Duration::from_secs(30),
            )
            .await
            .map_err(|err| anyhow!("{peer} refused the join token: {err:#}"))?;
        let secret = answer["secret"]
            .as_str()
            .filter(|secret| !secret.is_empty())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{peer} answered the exchange without a secret: {answer}"))?;
        info!(peer, "join token exchanged for the cluster secret");
        Ok(secret)
    }

    pub(super) async fn send_join(&self, peer: &str) -> anyhow::Result<()> {
        self.check_advertised(peer)?;
        let request = JoinRequest {
            id: self.id,
            name: self.name.clone(),
            url: self.url.clone(),
            tag: self.config.tag.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            agent: Agent::Lograft,
            labels: self.config.labels.clone(),
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
            agent: request.agent,
            labels: request.labels.clone(),
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
    pub(super) async fn on_leader(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
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
        let secret = self.secret.reveal();
        self.post_json(
            &format!("{addr}{path}"),
            (CLUSTER_SECRET_HEADER, &secret),
            body,
            Duration::from_secs(60),
        )
        .await
    }

    /// POST `body` to another node with one credential header; its JSON answer, or an error
    /// with the message of its JSON error (or its text).
    async fn post_json(
        &self,
        url: &str,
        (header, credential): (&str, &str),
        body: &Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(url)
            .header(header, credential)
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            bail!("{status}: {message}");
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
        let secret = if join_token::is_join_token(token) {
            self.exchange_join_token(peer, token).await?
        } else {
            let response = self
                .client
                .get(format!("{peer}/internal/v1/ping"))
                .header(CLUSTER_SECRET_HEADER, token)
                .send()
                .await
                .with_context(|| format!("cannot reach {peer}"))?;
            if !response.status().is_success() {
                bail!(
                    "{peer} refused the token ({}): mint a join token with `lograft cluster token` on a member",
                    response.status()
                );
            }
            token.to_string()
        };
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
        self.secret.set(secret.clone());
        self.local.insert("cluster_secret", secret.as_bytes())?;
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
}
