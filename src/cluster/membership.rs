//! [`Membership`]: who is in the cluster — the seam the membership engine implements (Raft
//! here; etcd leases behind the `etcd` feature). Handlers, the logkit cluster API and the
//! cluster-wide search use this trait, never the Raft cluster itself.
//!
//! A member is a [`NodeRecord`] (name, advertised URL, tag, version) kept in the config store
//! under `nodes/<name>`; liveness comes from heartbeats (`ok` within `cluster.bad_after`,
//! `bad` until `cluster.lost_after`, then `lost`, as logkit defines it).

use std::sync::Arc;

use serde_json::Value;

use super::{
    BoxFuture, Cluster, Heartbeat, JoinRequest, NodeRecord, NodeView, StoreError, Summary,
};

/// Why a membership change was refused or failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MembershipError(pub String);

impl From<anyhow::Error> for MembershipError {
    fn from(err: anyhow::Error) -> Self {
        MembershipError(format!("{err:#}"))
    }
}

pub trait Membership: Send + Sync {
    /// This node's name.
    fn name(&self) -> &str;
    /// The URL other nodes reach this node at.
    fn url(&self) -> &str;
    /// Every member's record.
    fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError>;
    /// Every member with its status and role as this node sees them.
    fn view(&self) -> Result<Vec<NodeView>, StoreError>;
    /// `ok`, `bad` or `lost`.
    fn status_of(&self, name: &str) -> &'static str;
    /// The name of the member that takes writes now, if known.
    fn leader(&self) -> Option<String>;
    /// Whether this node votes (logkit's `ismaster`).
    fn is_voter(&self) -> bool;
    /// A heartbeat from another member.
    fn receive_heartbeat(&self, beat: Heartbeat);
    /// A node asks to join (on a member; forwarded to the leader when needed).
    fn admit(&self, request: JoinRequest) -> BoxFuture<'_, Result<Value, MembershipError>>;
    /// This running node, still alone, joins the cluster of `peer` with its join token.
    fn join<'a>(
        &'a self,
        peer: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), MembershipError>>;
    /// Remove a member for good (its record and runner configs go with it).
    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Value, MembershipError>>;

    // ---- this node's life as a member ----

    /// Whether this node is a member on its own (it can settle without the network).
    fn is_alone(&self) -> bool;
    /// Become a working member: join or announce a new address if needed, wait for a leader,
    /// replay offline writes, register this node's record. Retries until it works.
    fn settle(&self) -> BoxFuture<'_, ()>;
    /// What this node's heartbeats say of its runners.
    fn set_summary(&self, summary: Summary);
    /// Tell the others this node is alive until `shutdown` turns true.
    fn heartbeats(&self, shutdown: tokio::sync::watch::Receiver<bool>) -> BoxFuture<'static, ()>;
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Membership by Raft: [`Cluster`].
pub struct RaftMembership(pub Arc<Cluster>);

impl Membership for RaftMembership {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn url(&self) -> &str {
        &self.0.url
    }

    fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.0.nodes()
    }

    fn view(&self) -> Result<Vec<NodeView>, StoreError> {
        self.0.view()
    }

    fn status_of(&self, name: &str) -> &'static str {
        self.0.status_of(name)
    }

    fn leader(&self) -> Option<String> {
        let leader = self.0.leader()?;
        self.0
            .nodes()
            .ok()?
            .into_iter()
            .find(|n| n.id == leader)
            .map(|n| n.name)
    }

    fn is_voter(&self) -> bool {
        self.0.members().0.contains(&self.0.id)
    }

    fn receive_heartbeat(&self, beat: Heartbeat) {
        self.0.receive_heartbeat(beat)
    }

    fn admit(&self, request: JoinRequest) -> BoxFuture<'_, Result<Value, MembershipError>> {
        Box::pin(async move { Ok(self.0.handle_join(request).await?) })
    }

    fn join<'a>(
        &'a self,
        peer: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), MembershipError>> {
        Box::pin(async move { Ok(self.0.join_running(peer, token).await?) })
    }

    fn remove<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Value, MembershipError>> {
        Box::pin(async move { Ok(self.0.remove_node(name).await?) })
    }

    fn is_alone(&self) -> bool {
        self.0.is_alone() && self.0.members().0.contains(&self.0.id)
    }

    fn settle(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.settle())
    }

    fn set_summary(&self, summary: Summary) {
        self.0.set_summary(summary)
    }

    fn heartbeats(&self, shutdown: tokio::sync::watch::Receiver<bool>) -> BoxFuture<'static, ()> {
        Box::pin(self.0.clone().heartbeats(shutdown))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.shutdown())
    }
}
