//! Node records, heartbeats and status (`ok`, `bad`, `lost`), as logkit defines them.

use super::*;

impl Cluster {
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
    pub(super) fn own_beat(&self, advance: bool) -> Heartbeat {
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
    pub(super) fn export_metrics(&self) {
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

    pub(super) fn status_from(&self, heard: Option<&Heard>) -> &'static str {
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
