//! The Raft log on sled.
//!
//! ```text
//! raft_log tree:   u64 BE index -> JSON entry
//! raft_meta tree:  "vote" -> JSON vote, "committed" -> JSON log id,
//!                  "last_purged" -> JSON log id
//! ```
//!
//! Every write is flushed (sled `flush_async`, an fsync) before it is reported durable: an
//! append calls openraft's callback only after the flush, a vote returns only after it.

use std::fmt::Debug;
use std::ops::RangeBounds;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, RaftLogReader, StorageIOError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{LogId, StorageError, TypeConfig, Vote};

#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl LogStore {
    pub fn open(db: &sled::Db) -> Result<LogStore, sled::Error> {
        Ok(LogStore {
            db: db.clone(),
            log: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
        })
    }

    /// Whether this node has any Raft state (a vote or a log): a fresh node has none.
    pub fn is_fresh(&self) -> Result<bool, sled::Error> {
        Ok(self.meta.get("vote")?.is_none() && self.log.is_empty())
    }

    /// Forget everything (a node joining a cluster drops its one-node history).
    pub fn wipe(&self) -> Result<(), sled::Error> {
        self.log.clear()?;
        self.meta.clear()?;
        self.db.flush()?;
        Ok(())
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        let Some(bytes) = self
            .meta
            .get(key)
            .map_err(|e| StorageIOError::read_logs(&e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), sled::Error> {
        self.meta
            .insert(key, serde_json::to_vec(value).expect("json"))?;
        self.meta.flush_async().await?;
        Ok(())
    }

    /// Remove a range of entries and flush.
    async fn remove(&self, range: impl RangeBounds<[u8; 8]>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(range) {
            let (key, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(key);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.log
            .flush_async()
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Entry<TypeConfig>, StorageError> {
        serde_json::from_slice(bytes).map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        use std::ops::Bound;
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        for item in self.log.range(start.to_be_bytes()..) {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            let index = u64::from_be_bytes(key.as_ref().try_into().expect("8-byte key"));
            if !range.contains(&index) {
                break;
            }
            entries.push(Self::decode(&value)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta("last_purged")?;
        let last = self
            .log
            .last()
            .map_err(|e| StorageIOError::read_logs(&e))?
            .map(|(_, value)| Self::decode(&value))
            .transpose()?
            .map(|entry| entry.log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta("vote", vote)
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta("vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.put_meta("committed", &committed)
            .await
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>("committed")?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            batch.insert(&entry.log_id.index.to_be_bytes(), bytes);
        }
        self.log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        let flushed = self.log.flush_async().await;
        callback.log_io_completed(flushed.map(|_| ()).map_err(std::io::Error::other));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove(log_id.index.to_be_bytes()..).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The pointer first: a crash between the two leaves extra entries, never a hole.
        self.put_meta("last_purged", &log_id)
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.remove(..=log_id.index.to_be_bytes()).await
    }
}
