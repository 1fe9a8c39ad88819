//! The control plane: the key-value store (runner configs, node records, users and tokens,
//! the cluster secret) with revisions and prefix watch — the subset of etcd the seeds use —
//! and the cluster's membership.
//!
//! Two seams, each with a conformance suite (`cluster::conformance` for the store):
//! * [`ConfigStore`] is what the rest of the node sees of the store: get/list, put with
//!   compare-and-set, all-or-nothing transactions, prefix watch, a read barrier for
//!   linearizable reads, and leases. [`Cluster`] implements it with Raft: reads come from this
//!   node's state machine (a [`LocalStore`], the key-value engine on sled), writes go through
//!   the Raft log. [`OfflineStore`] is the CLI's view while the node is stopped.
//! * [`Membership`] is who is in the cluster: records, join/leave/remove, heartbeats and
//!   status, leader and roles ([`RaftMembership`]).
//!
//! The `etcd` feature puts both on a real etcd (`cluster::etcd`, registered in `backends`).
//!
//! # Semantics
//!
//! * Every write gets a new, strictly increasing store revision; an entry remembers the
//!   revision that last modified it (`mod_revision`).
//! * Writes are durable (flushed) before they return.
//! * [`ConfigStore::watch`] returns the current entries under a prefix, the revision they are
//!   as of, and a receiver of every later change under that prefix, with no gap between the
//!   two. A receiver that lags behind gets `RecvError::Lagged` and must watch again.

#[cfg(test)]
pub mod conformance;
pub mod etcd;
pub mod join_token;
mod local;
mod member;
mod membership;
pub mod raft;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use local::{Dump, LocalStore};
pub use member::{
    Agent, Cluster, FORWARDABLE_PREFIXES, Heartbeat, JoinRequest, NODE_PREFIX, NodeRecord,
    NodeView, OfflineStore, Summary, is_forwardable, with_client_key,
};
pub use membership::{Membership, MembershipError, RaftMembership};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    /// A JSON document.
    pub value: String,
    pub mod_revision: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    Put(KvEntry),
    Delete {
        key: String,
        revision: u64,
    },
    /// The whole store was replaced (a Raft snapshot was installed, e.g. when this node joined
    /// a cluster): watchers must list again.
    Reset {
        revision: u64,
    },
}

impl WatchEvent {
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(entry) => &entry.key,
            WatchEvent::Delete { key, .. } => key,
            WatchEvent::Reset { .. } => "",
        }
    }
    pub fn revision(&self) -> u64 {
        match self {
            WatchEvent::Put(entry) => entry.mod_revision,
            WatchEvent::Delete { revision, .. } | WatchEvent::Reset { revision } => *revision,
        }
    }
}

pub struct Watch {
    pub entries: Vec<KvEntry>,
    pub revision: u64,
    pub prefix: String,
    pub events: broadcast::Receiver<WatchEvent>,
}

impl Watch {
    /// Next event under the watched prefix.
    pub async fn next(&mut self) -> Result<WatchEvent, broadcast::error::RecvError> {
        loop {
            let event = self.events.recv().await?;
            if matches!(event, WatchEvent::Reset { .. }) {
                return Ok(event);
            }
            if event.key().starts_with(&self.prefix) && event.revision() > self.revision {
                return Ok(event);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine under the store failed (its own error as the source).
    #[error("config store storage error: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("config store entry {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("revision conflict on {key}: expected {expected}, found {found}")]
    Conflict {
        key: String,
        expected: u64,
        found: u64,
    },
    /// The cluster could not take the write (no leader reachable, not a member yet, ...).
    #[error("the cluster cannot take this write now: {0}")]
    Unavailable(String),
}

/// One operation of a transaction ([`ConfigStore::txn`]). `expected` is a compare-and-set
/// condition on the key's `mod_revision` (0 = the key must not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    Put {
        key: String,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<u64>,
    },
    Delete {
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<u64>,
    },
}

impl Op {
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }
    pub fn expected(&self) -> Option<u64> {
        match self {
            Op::Put { expected, .. } | Op::Delete { expected, .. } => *expected,
        }
    }
}

/// The outcome of a transaction that was applied (possibly as a no-op).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TxnResult {
    /// The revision of the transaction; `None` when it changed nothing (deletes of absent keys).
    pub revision: Option<u64>,
    /// Set when a compare-and-set failed: then nothing was written.
    pub conflict: Option<Conflict>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub key: String,
    pub expected: u64,
    pub found: u64,
}

impl TxnResult {
    pub fn into_result(self) -> Result<Option<u64>, StoreError> {
        match self.conflict {
            Some(Conflict {
                key,
                expected,
                found,
            }) => Err(StoreError::Conflict {
                key,
                expected,
                found,
            }),
            None => Ok(self.revision),
        }
    }
}

pub trait ConfigStore: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<KvEntry>, StoreError>;
    fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, StoreError>;
    /// Put a value. With `expected_revision`, only if the key's `mod_revision` is that
    /// (0 = the key must not exist): compare-and-set.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        expected_revision: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
    /// Delete a key; returns the revision of the delete, or `None` if the key did not exist.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>>;
    /// Apply all operations atomically at one revision, or none of them if a compare-and-set
    /// fails.
    fn txn<'a>(&'a self, ops: Vec<Op>) -> BoxFuture<'a, Result<TxnResult, StoreError>>;
    fn watch(&self, prefix: &str) -> Result<Watch, StoreError>;
    fn revision(&self) -> u64;

    /// Wait until this node has applied every write committed before the call (Raft's read
    /// index); returns the revision it has then. A read after it sees every acknowledged
    /// write, on any node. Stores with one writer return at once.
    fn read_barrier(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        let revision = self.revision();
        Box::pin(async move { Ok(revision) })
    }

    /// A linearizable read: [`ConfigStore::read_barrier`], then [`ConfigStore::get`].
    fn get_linearizable<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<KvEntry>, StoreError>> {
        Box::pin(async move {
            self.read_barrier().await?;
            self.get(key)
        })
    }

    /// Take or renew the lease `name` for `holder` for `ttl`: `Some` when `holder` holds it
    /// now (it was free, expired, or already `holder`'s), `None` when another holder has it.
    /// A holder keeps it by renewing before it expires; a node that stops renewing loses it
    /// after `ttl`. Expiry is judged by the clock of the node that asks, so clocks must agree
    /// to well within `ttl`. Built on compare-and-set; an engine with native leases (etcd)
    /// overrides it.
    fn acquire_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<Lease>, StoreError>> {
        Box::pin(async move {
            let key = format!("{LEASE_PREFIX}{name}");
            let now = lease_now();
            let current = self.get_linearizable(&key).await?;
            let expected = match &current {
                None => 0,
                Some(entry) => {
                    let lease: Lease =
                        serde_json::from_str(&entry.value).map_err(|err| StoreError::Corrupt {
                            key: key.clone(),
                            reason: err.to_string(),
                        })?;
                    if lease.holder != holder && lease.expires_unix_ms > now {
                        return Ok(None);
                    }
                    entry.mod_revision
                }
            };
            let lease = Lease {
                name: name.to_string(),
                holder: holder.to_string(),
                expires_unix_ms: now + ttl.as_millis() as u64,
            };
            let value = serde_json::to_string(&lease).expect("lease serializes");
            match self.put(&key, value, Some(expected)).await {
                Ok(_) => Ok(Some(lease)),
                // Someone else took or renewed it between the read and the write.
                Err(StoreError::Conflict { .. }) => Ok(None),
                Err(err) => Err(err),
            }
        })
    }

    /// Give the lease up if `holder` holds it (another holder's lease is left alone).
    fn release_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let key = format!("{LEASE_PREFIX}{name}");
            let Some(entry) = self.get_linearizable(&key).await? else {
                return Ok(());
            };
            let held_by_us = serde_json::from_str::<Lease>(&entry.value)
                .map(|lease| lease.holder == holder)
                .unwrap_or(false);
            if held_by_us {
                let ops = vec![Op::Delete {
                    key,
                    expected: Some(entry.mod_revision),
                }];
                self.txn(ops).await?;
            }
            Ok(())
        })
    }
}

/// Where leases live in the store: `leases/<name>`.
pub const LEASE_PREFIX: &str = "leases/";

/// A lease held in the store (see [`ConfigStore::acquire_lease`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub expires_unix_ms: u64,
}

fn lease_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
