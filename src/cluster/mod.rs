//! The control plane's key-value store: runner configs (and later node records, users,
//! deployments) with revisions and prefix watch — the subset of etcd the seeds use.
//!
//! [`ConfigStore`] is what the rest of the node sees. This issue implements it on sled for a
//! single node ([`LocalStore`]); the Raft store replaces it in a cluster, and an etcd adapter
//! can sit behind the same trait.
//!
//! # Semantics
//!
//! * Every write gets a new, strictly increasing store revision; an entry remembers the
//!   revision that last modified it (`mod_revision`).
//! * Writes are durable (flushed) before they return.
//! * [`ConfigStore::watch`] returns the current entries under a prefix, the revision they are
//!   as of, and a receiver of every later change under that prefix, with no gap between the
//!   two. A receiver that lags behind gets `RecvError::Lagged` and must watch again.

mod local;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use local::LocalStore;

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
    Delete { key: String, revision: u64 },
}

impl WatchEvent {
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(entry) => &entry.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }
    pub fn revision(&self) -> u64 {
        match self {
            WatchEvent::Put(entry) => entry.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
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
            if event.key().starts_with(&self.prefix) && event.revision() > self.revision {
                return Ok(event);
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("config store storage error: {0}")]
    Storage(#[from] sled::Error),
    #[error("config store entry {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("revision conflict on {key}: expected {expected}, found {found}")]
    Conflict {
        key: String,
        expected: u64,
        found: u64,
    },
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
    fn watch(&self, prefix: &str) -> Result<Watch, StoreError>;
    fn revision(&self) -> u64;
}
