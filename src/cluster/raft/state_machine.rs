//! The Raft state machine: the key-value engine ([`LocalStore`]) plus the applied pointer and
//! the last snapshot.
//!
//! `apply` writes each entry's transaction and the pointer in one flushed sled batch, so after
//! a crash the store is exactly at its pointer and openraft replays the log from there.
//! Snapshots are the whole store as JSON, kept (and flushed) in the `raft_snapshot` tree so a
//! restarted leader can still send one to a follower that is behind a purged log.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};

use super::{LogId, NodeId, StorageError, TypeConfig};
use crate::cluster::local::{Dump, RequestId};
use crate::cluster::{LocalStore, TxnResult};

type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// What is stored next to the data: where the state machine is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Applied {
    last_applied: Option<LogId>,
    membership: super::StoredMembership,
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: Meta,
    data: Vec<u8>,
}

#[derive(Clone)]
pub struct StateMachine {
    store: Arc<LocalStore>,
    snapshots: sled::Tree,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(&e).into()
}

impl StateMachine {
    pub fn open(store: Arc<LocalStore>) -> Result<StateMachine, sled::Error> {
        let snapshots = store.db().open_tree("raft_snapshot")?;
        Ok(StateMachine { store, snapshots })
    }

    /// Forget the data, the snapshot and the applied pointer, back to revision 0: the state
    /// of a node whose Raft log is empty (a node joining a cluster replays the cluster's log or
    /// installs its snapshot, and must end at the same revisions).
    pub fn wipe(&self) -> Result<(), crate::cluster::StoreError> {
        self.snapshots.clear()?;
        self.store.restore(&Dump {
            revision: 0,
            entries: Vec::new(),
            applied: None,
            requests: Vec::new(),
        })
    }

    fn applied(&self) -> Result<Applied, StorageError> {
        match self.store.applied().map_err(sm_err)? {
            Some(value) => serde_json::from_value(value).map_err(sm_err),
            None => Ok(Applied::default()),
        }
    }

    fn current(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        match self.snapshots.get("current").map_err(sm_err)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(sm_err),
            None => Ok(None),
        }
    }

    fn save(&self, snapshot: &StoredSnapshot) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(snapshot).map_err(sm_err)?;
        self.snapshots.insert("current", bytes).map_err(sm_err)?;
        self.snapshots.flush().map_err(sm_err)?;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let this = self.clone();
        tokio::task::block_in_place(move || {
            let dump = this.store.dump().map_err(sm_err)?;
            let applied: Applied = match &dump.applied {
                Some(value) => serde_json::from_value(value.clone()).map_err(sm_err)?,
                None => Applied::default(),
            };
            let data = serde_json::to_vec(&dump).map_err(sm_err)?;
            let snapshot_id = match applied.last_applied {
                Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, dump.revision),
                None => format!("0-0-{}", dump.revision),
            };
            let meta = Meta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership,
                snapshot_id,
            };
            let stored = StoredSnapshot { meta, data };
            this.save(&stored)?;
            Ok(Snapshot {
                meta: stored.meta,
                snapshot: Box::new(Cursor::new(stored.data)),
            })
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, super::StoredMembership), StorageError> {
        let applied = self.applied()?;
        Ok((applied.last_applied, applied.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<TxnResult>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut applied = self.applied()?;
        let mut results = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let result = tokio::task::block_in_place(|| match entry.payload {
                EntryPayload::Blank => self
                    .store
                    .set_applied(&serde_json::to_value(&applied).expect("json"))
                    .map(|_| TxnResult::default()),
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    self.store
                        .set_applied(&serde_json::to_value(&applied).expect("json"))
                        .map(|_| TxnResult::default())
                }
                EntryPayload::Normal(request) => self.store.apply_txn(
                    &request.ops,
                    Some(&serde_json::to_value(&applied).expect("json")),
                    request.id.as_deref().map(|id| RequestId {
                        id,
                        index: entry.log_id.index,
                    }),
                ),
            });
            results.push(
                result.map_err(|e| StorageError::from(StorageIOError::apply(entry.log_id, &e)))?,
            );
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut dump: Dump = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        // The pointer is the snapshot's, whatever the sender's store held.
        dump.applied = Some(
            serde_json::to_value(Applied {
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
            })
            .expect("json"),
        );
        let data = serde_json::to_vec(&dump).map_err(sm_err)?;
        tokio::task::block_in_place(|| {
            self.store.restore(&dump).map_err(sm_err)?;
            self.save(&StoredSnapshot {
                meta: meta.clone(),
                data,
            })
        })
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.current()?.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}
