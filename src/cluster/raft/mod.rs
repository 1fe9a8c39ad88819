//! Raft for the config store: the type config, the log storage, the state machine and the
//! HTTP network, all on openraft 0.9 (`storage-v2`).
//!
//! * The **log** (entries, vote, committed pointer, purge pointer) lives in two sled trees next
//!   to the state machine, flushed (fsync) before openraft is told an append or a vote is
//!   durable ([`log_store`]).
//! * The **state machine** is the key-value engine [`LocalStore`](super::LocalStore): an entry is
//!   a transaction of puts and deletes with compare-and-set; its data and the applied pointer
//!   are written in one flushed sled batch ([`state_machine`]). A snapshot is the whole store
//!   as JSON — configs are small.
//! * The **network** sends the three RPCs as JSON over the node's own HTTP(S) port under
//!   `/internal/raft/*`, with the cluster secret ([`network`]).

// openraft's `StorageError` is large and its traits return it: helpers return it too.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod state_machine;

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use super::{Op, TxnResult};

/// A Raft entry's payload: one transaction, with the id its writer gave it. A writer that
/// retries (its answer was lost: a timeout, a leader change) sends the same id, and the
/// state machine applies the transaction once ([`crate::cluster::local::RequestId`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub ops: Vec<Op>,
    /// Entries written before ids existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Request,
        R = TxnResult,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use openraft::testing::{StoreBuilder, Suite};

    use super::log_store::LogStore;
    use super::state_machine::StateMachine;
    use super::{StorageError, TypeConfig};
    use crate::cluster::LocalStore;

    /// A fresh sled store in a temp dir per test; the dir lives as long as the stores.
    struct SledBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for SledBuilder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Arc::new(LocalStore::open(dir.path()).expect("store"));
            let logs = LogStore::open(store.db()).expect("log store");
            let sm = StateMachine::open(store).expect("state machine");
            Ok((dir, logs, sm))
        }
    }

    /// openraft's storage conformance suite against the sled log and state machine.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(SledBuilder).expect("storage suite");
    }
}
