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

/// A Raft entry's payload: one transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub ops: Vec<Op>,
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
