//! The key-value engine on sled: entries with revisions, transactions, prefix watch. It is the
//! Raft state machine's storage ([`super::state_machine`]), and on its own a [`ConfigStore`]
//! for unit tests.
//!
//! ```text
//! store/                 sled database (default tree)
//!   kv/<key>          -> {"value": "...", "mod_revision": n}
//!   meta/revision     -> u64 BE, the store revision
//!   meta/raft_applied -> JSON {last_applied, membership}: where the state machine is
//!   req/<id>          -> JSON {index, digest, result}: a Raft write already applied, by its
//!                        request id (a retry of it answers this result and changes nothing)
//!   reqlog/<index BE> -> <id>: the same, by Raft log index, to forget the oldest
//! ```
//!
//! A transaction's entries, the new revision and the Raft applied pointer go in one sled batch,
//! flushed before the call returns: the state machine never runs ahead of or behind its pointer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{
    BoxFuture, ConfigStore, Conflict, KvEntry, Op, StoreError, TxnResult, Watch, WatchEvent,
};

const REVISION_KEY: &[u8] = b"meta/revision";
const APPLIED_KEY: &[u8] = b"meta/raft_applied";
const KV_PREFIX: &str = "kv/";
const REQUEST_PREFIX: &str = "req/";
const REQUEST_LOG_PREFIX: &[u8] = b"reqlog/";
/// How many Raft entries a request id is remembered for: a retry comes within seconds, and
/// 10,000 config writes take hours at the busiest.
const REQUEST_WINDOW: u64 = 10_000;

/// A write with an id (an idempotency key), and the Raft log index it is applied at.
#[derive(Debug, Clone, Copy)]
pub struct RequestId<'a> {
    pub id: &'a str,
    pub index: u64,
}

/// A request id remembered with the result it was answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub id: String,
    pub index: u64,
    pub result: TxnResult,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    value: String,
    mod_revision: u64,
}

/// The whole store at one point: what a Raft snapshot carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dump {
    pub revision: u64,
    pub entries: Vec<KvEntry>,
    /// The Raft applied pointer (opaque JSON here; see `state_machine`).
    pub applied: Option<serde_json::Value>,
    /// The request ids remembered, so a node that installs the snapshot answers a retry as
    /// the others do.
    #[serde(default)]
    pub requests: Vec<Recorded>,
}

pub struct LocalStore {
    db: sled::Db,
    /// Held across "assign revision, write, publish" so watchers see revisions in order.
    write_lock: Mutex<u64>,
    events: broadcast::Sender<WatchEvent>,
    /// The revision applied, readable without `write_lock` (which is held across fsync):
    /// readers and waiters for a revision look here.
    applied_revision: tokio::sync::watch::Sender<u64>,
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        StoreError::Storage(Box::new(err))
    }
}

impl LocalStore {
    pub fn open(dir: &Path) -> anyhow::Result<LocalStore> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(8 * 1024 * 1024);
        // sled 0.34 can panic instead of erroring on a damaged file; treat both the same.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::fsutil::open_sled(&config)
        }))
        .unwrap_or_else(|_| {
            Err(sled::Error::Unsupported(
                "sled panicked while reading it".into(),
            ))
        });
        let db = match opened {
            Ok(db) => db,
            Err(sled::Error::Io(io)) if crate::fsutil::is_lock_error(&io) => {
                return Err(anyhow::Error::new(sled::Error::Io(io))
                    .context(format!("opening config store {}", dir.display())));
            }
            // Garbage makes sled say odd things ("created using a sled version earlier than
            // 0.29"): say what it means and what to do.
            Err(err) => anyhow::bail!(
                "the config store {dir} is damaged and cannot be opened ({err}). In a cluster of several nodes: stop this node, move {dir} aside, and start it with [cluster] join (and a join token) to take the cluster's state again; on a single node, restore {dir} from a backup (`lograft repair` says what it can do)",
                dir = dir.display()
            ),
        };
        let revision = db
            .get(REVISION_KEY)?
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0);
        let (events, _) = broadcast::channel(1024);
        Ok(LocalStore {
            db,
            write_lock: Mutex::new(revision),
            events,
            applied_revision: tokio::sync::watch::Sender::new(revision),
        })
    }

    /// The sled database, for the Raft log trees that live next to the state machine.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    fn decode(key: &[u8], value: &[u8]) -> Result<KvEntry, StoreError> {
        let key = String::from_utf8_lossy(&key[KV_PREFIX.len()..]).into_owned();
        let stored: Stored = serde_json::from_slice(value).map_err(|err| StoreError::Corrupt {
            key: key.clone(),
            reason: err.to_string(),
        })?;
        Ok(KvEntry {
            key,
            value: stored.value,
            mod_revision: stored.mod_revision,
        })
    }

    fn encode(value: &str, mod_revision: u64) -> Vec<u8> {
        serde_json::to_vec(&Stored {
            value: value.to_string(),
            mod_revision,
        })
        .expect("stored entry serializes")
    }

    /// The Raft applied pointer stored with the data.
    pub fn applied(&self) -> Result<Option<serde_json::Value>, StoreError> {
        match self.db.get(APPLIED_KEY)? {
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|err| StoreError::Corrupt {
                        key: "meta/raft_applied".into(),
                        reason: err.to_string(),
                    })
            }
            None => Ok(None),
        }
    }

    /// Apply a transaction: every compare-and-set is checked first; then all operations are
    /// written at one new revision (or nothing if a check fails), together with `applied`
    /// (the Raft pointer) when given, in one flushed batch.
    ///
    /// With a `request` id that was applied before, nothing changes (but the pointer) and the
    /// result recorded then is returned: a write retried after its answer was lost is applied
    /// once. The id names one write: a retry may differ in its bytes (a new password salt, a
    /// new timestamp) and still answers the first result.
    pub fn apply_txn(
        &self,
        ops: &[Op],
        applied: Option<&serde_json::Value>,
        request: Option<RequestId<'_>>,
    ) -> Result<TxnResult, StoreError> {
        let mut revision = self.write_lock.lock().expect("store lock");
        let mut batch = sled::Batch::default();
        if let Some(applied) = applied {
            batch.insert(APPLIED_KEY, serde_json::to_vec(applied).expect("json"));
        }
        if let Some(request) = request
            && let Some(recorded) = self.recorded(request.id)?
        {
            self.db.apply_batch(batch)?;
            self.db.flush()?;
            return Ok(recorded.result);
        }
        let remember = |batch: &mut sled::Batch, result: &TxnResult| -> Result<(), StoreError> {
            if let Some(request) = request {
                self.remember(
                    batch,
                    &Recorded {
                        id: request.id.to_string(),
                        index: request.index,
                        result: result.clone(),
                    },
                )?;
            }
            Ok(())
        };
        // Current values, with earlier operations of this transaction visible to later ones.
        let mut current: BTreeMap<&str, Option<u64>> = BTreeMap::new();
        for op in ops {
            let key = op.key();
            let found = match current.get(key) {
                Some(found) => *found,
                None => self.get(key)?.map(|e| e.mod_revision),
            };
            if let Some(expected) = op.expected()
                && found.unwrap_or(0) != expected
            {
                let conflict = Conflict {
                    key: key.to_string(),
                    expected,
                    found: found.unwrap_or(0),
                };
                let result = TxnResult {
                    revision: None,
                    conflict: Some(conflict),
                };
                remember(&mut batch, &result)?;
                self.db.apply_batch(batch)?;
                self.db.flush()?;
                return Ok(result);
            }
            let after = match op {
                Op::Put { .. } => Some(u64::MAX),
                Op::Delete { .. } => None,
            };
            current.insert(key, after);
        }
        let next = *revision + 1;
        let mut events = Vec::new();
        let mut exists: BTreeMap<&str, bool> = BTreeMap::new();
        for op in ops {
            let key = op.key();
            let db_key = format!("{KV_PREFIX}{key}");
            let existed = match exists.get(key) {
                Some(existed) => *existed,
                None => self.db.contains_key(&db_key)?,
            };
            match op {
                Op::Put { value, .. } => {
                    batch.insert(db_key.as_bytes(), Self::encode(value, next));
                    exists.insert(key, true);
                    events.push(WatchEvent::Put(KvEntry {
                        key: key.to_string(),
                        value: value.clone(),
                        mod_revision: next,
                    }));
                }
                Op::Delete { .. } => {
                    if existed {
                        batch.remove(db_key.as_bytes());
                        exists.insert(key, false);
                        events.push(WatchEvent::Delete {
                            key: key.to_string(),
                            revision: next,
                        });
                    }
                }
            }
        }
        if events.is_empty() {
            remember(&mut batch, &TxnResult::default())?;
            self.db.apply_batch(batch)?;
            self.db.flush()?;
            return Ok(TxnResult::default());
        }
        batch.insert(REVISION_KEY, &next.to_be_bytes());
        remember(
            &mut batch,
            &TxnResult {
                revision: Some(next),
                conflict: None,
            },
        )?;
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        *revision = next;
        self.applied_revision.send_replace(next);
        for event in events {
            // No receivers is fine: nobody is watching yet.
            let _ = self.events.send(event);
        }
        Ok(TxnResult {
            revision: Some(next),
            conflict: None,
        })
    }

    fn recorded(&self, id: &str) -> Result<Option<Recorded>, StoreError> {
        match self.db.get(format!("{REQUEST_PREFIX}{id}"))? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            None => Ok(None),
        }
    }

    /// Put `recorded` in `batch`, and forget the ids older than [`REQUEST_WINDOW`] entries
    /// (by log index, so every replica forgets the same ones).
    fn remember(&self, batch: &mut sled::Batch, recorded: &Recorded) -> Result<(), StoreError> {
        Self::insert_recorded(batch, recorded);
        let horizon = recorded.index.saturating_sub(REQUEST_WINDOW);
        for item in self.db.scan_prefix(REQUEST_LOG_PREFIX) {
            let (key, id) = item?;
            let index = key[REQUEST_LOG_PREFIX.len()..]
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if index >= horizon {
                break;
            }
            batch.remove(key);
            batch.remove([REQUEST_PREFIX.as_bytes(), &id].concat());
        }
        Ok(())
    }

    /// A remembered request id, under both of its keys.
    fn insert_recorded(batch: &mut sled::Batch, recorded: &Recorded) {
        batch.insert(
            format!("{REQUEST_PREFIX}{}", recorded.id).as_bytes(),
            serde_json::to_vec(recorded).expect("json"),
        );
        batch.insert(
            [REQUEST_LOG_PREFIX, &recorded.index.to_be_bytes()].concat(),
            recorded.id.as_bytes(),
        );
    }

    fn requests(&self) -> Result<Vec<Recorded>, StoreError> {
        self.db
            .scan_prefix(REQUEST_PREFIX)
            .map(|item| {
                let (key, value) = item?;
                serde_json::from_slice(&value).map_err(|err| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: err.to_string(),
                })
            })
            .collect()
    }

    /// Record the Raft pointer alone (membership entries and blanks change no data).
    pub fn set_applied(&self, applied: &serde_json::Value) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().expect("store lock");
        self.db
            .insert(APPLIED_KEY, serde_json::to_vec(applied).expect("json"))?;
        self.db.flush()?;
        Ok(())
    }

    /// Everything, consistently (for a Raft snapshot).
    pub fn dump(&self) -> Result<Dump, StoreError> {
        let revision = self.write_lock.lock().expect("store lock");
        Ok(Dump {
            revision: *revision,
            entries: self.list("")?,
            applied: self.applied()?,
            requests: self.requests()?,
        })
    }

    /// Replace everything with `dump` (a Raft snapshot being installed); watchers get
    /// [`WatchEvent::Reset`].
    pub fn restore(&self, dump: &Dump) -> Result<(), StoreError> {
        let mut revision = self.write_lock.lock().expect("store lock");
        let mut batch = sled::Batch::default();
        for prefix in [
            KV_PREFIX.as_bytes(),
            REQUEST_PREFIX.as_bytes(),
            REQUEST_LOG_PREFIX,
        ] {
            for item in self.db.scan_prefix(prefix) {
                let (key, _) = item?;
                batch.remove(key);
            }
        }
        for recorded in &dump.requests {
            Self::insert_recorded(&mut batch, recorded);
        }
        for entry in &dump.entries {
            batch.insert(
                format!("{KV_PREFIX}{}", entry.key).as_bytes(),
                Self::encode(&entry.value, entry.mod_revision),
            );
        }
        batch.insert(REVISION_KEY, &dump.revision.to_be_bytes());
        match &dump.applied {
            Some(applied) => batch.insert(APPLIED_KEY, serde_json::to_vec(applied).expect("json")),
            None => batch.remove(APPLIED_KEY),
        }
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        *revision = dump.revision;
        self.applied_revision.send_replace(dump.revision);
        let _ = self.events.send(WatchEvent::Reset {
            revision: dump.revision,
        });
        Ok(())
    }
}

impl ConfigStore for LocalStore {
    fn get(&self, key: &str) -> Result<Option<KvEntry>, StoreError> {
        let db_key = format!("{KV_PREFIX}{key}");
        match self.db.get(&db_key)? {
            Some(bytes) => Ok(Some(Self::decode(db_key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, StoreError> {
        self.db
            .scan_prefix(format!("{KV_PREFIX}{prefix}"))
            .map(|item| {
                let (key, value) = item?;
                Self::decode(&key, &value)
            })
            .collect()
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        expected_revision: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let op = Op::Put {
                key: key.to_string(),
                value,
                expected: expected_revision,
            };
            let result = tokio::task::block_in_place(|| self.apply_txn(&[op], None, None))?;
            Ok(result.into_result()?.expect("a put always writes"))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let op = Op::Delete {
                key: key.to_string(),
                expected: None,
            };
            tokio::task::block_in_place(|| self.apply_txn(&[op], None, None))?.into_result()
        })
    }

    fn txn<'a>(&'a self, ops: Vec<Op>) -> BoxFuture<'a, Result<TxnResult, StoreError>> {
        Box::pin(async move { tokio::task::block_in_place(|| self.apply_txn(&ops, None, None)) })
    }

    fn watch(&self, prefix: &str) -> Result<Watch, StoreError> {
        let revision = self.write_lock.lock().expect("store lock");
        let events = self.events.subscribe();
        let entries = self.list(prefix)?;
        Ok(Watch {
            entries,
            revision: *revision,
            prefix: prefix.to_string(),
            events,
        })
    }

    fn revision(&self) -> u64 {
        *self.applied_revision.borrow()
    }
}

impl LocalStore {
    /// Wait (without polling) until the applied revision is at least `revision`, or
    /// `timeout` passed; true if it was reached.
    pub async fn wait_for_revision(&self, revision: u64, timeout: std::time::Duration) -> bool {
        let mut applied = self.applied_revision.subscribe();
        tokio::time::timeout(timeout, applied.wait_for(|applied| *applied >= revision))
            .await
            .is_ok_and(|reached| reached.is_ok())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_kv_engine_passes_the_config_store_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        crate::cluster::conformance::run(&store).await;
        let replacement = Dump {
            revision: store.revision() + 1,
            entries: vec![KvEntry {
                key: "reset/k".into(),
                value: "v".into(),
                mod_revision: store.revision() + 1,
            }],
            applied: None,
            requests: Vec::new(),
        };
        crate::cluster::conformance::a_reset_tells_watchers_to_list_again(&store, &|| {
            store.restore(&replacement).unwrap()
        })
        .await;
    }

    use super::*;

    fn create(key: &str, value: &str) -> Vec<Op> {
        vec![Op::Put {
            key: key.into(),
            value: value.into(),
            expected: Some(0),
        }]
    }

    /// A write retried with its request id (the forward timed out after the leader committed)
    /// is applied once and answers what the first attempt answered, not a conflict; the ids
    /// travel in snapshots, and old ones are forgotten by log index on every replica alike.
    #[test]
    fn a_retried_request_is_applied_once_and_answers_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let request = |index| Some(RequestId { id: "w-1", index });
        let first = store
            .apply_txn(&create("runners/a", "1"), None, request(5))
            .unwrap();
        assert_eq!(first.revision, Some(1));
        let retry = store
            .apply_txn(&create("runners/a", "1"), None, request(6))
            .unwrap();
        assert_eq!(retry, first, "the retry answers the first result");
        assert_eq!(store.revision(), 1, "and writes nothing");
        // Without an id, the same create is a conflict: what a retry answered before.
        let plain = store
            .apply_txn(&create("runners/a", "1"), None, None)
            .unwrap();
        assert!(plain.conflict.is_some(), "{plain:?}");
        // The id names the write: a retry whose bytes differ (a new salt) answers the same.
        let resalted = store
            .apply_txn(&create("runners/a", "1b"), None, request(7))
            .unwrap();
        assert_eq!(resalted, first);
        let other = store
            .apply_txn(
                &create("runners/b", "2"),
                None,
                Some(RequestId {
                    id: "w-3",
                    index: 7,
                }),
            )
            .unwrap();
        assert_eq!(other.revision, Some(2));

        // A snapshot carries the ids: a node that installs it answers the retry alike.
        let dump = store.dump().unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        let replica = LocalStore::open(dir2.path()).unwrap();
        replica.restore(&dump).unwrap();
        let retry = replica
            .apply_txn(
                &create("runners/b", "2"),
                None,
                Some(RequestId {
                    id: "w-3",
                    index: 8,
                }),
            )
            .unwrap();
        assert_eq!(retry, other);
        assert_eq!(replica.revision(), 2);

        // Ids older than the window (by log index) are forgotten.
        store
            .apply_txn(
                &create("runners/c", "3"),
                None,
                Some(RequestId {
                    id: "w-2",
                    index: 7 + REQUEST_WINDOW + 1,
                }),
            )
            .unwrap();
        assert!(store.recorded("w-1").unwrap().is_none());
        assert!(store.recorded("w-3").unwrap().is_none());
        assert!(store.recorded("w-2").unwrap().is_some());
        assert_eq!(store.requests().unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn put_get_watch_and_revisions_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LocalStore::open(dir.path()).unwrap();
            let r1 = store.put("runners/a", "{}".into(), None).await.unwrap();
            let mut watch = store.watch("runners/").unwrap();
            assert_eq!(watch.entries.len(), 1);
            assert_eq!(watch.revision, r1);
            store.put("other/x", "1".into(), None).await.unwrap();
            let r3 = store
                .put("runners/b", "{\"x\":1}".into(), Some(0))
                .await
                .unwrap();
            let event = watch.next().await.unwrap();
            assert_eq!(event.key(), "runners/b");
            assert_eq!(event.revision(), r3);
            let conflict = store
                .put("runners/b", "{}".into(), Some(r1))
                .await
                .unwrap_err();
            assert!(
                matches!(conflict, StoreError::Conflict { .. }),
                "{conflict}"
            );
            assert_eq!(store.delete("runners/a").await.unwrap(), Some(r3 + 1));
            assert_eq!(store.delete("runners/a").await.unwrap(), None);
        }
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(store.revision(), 4);
        let keys: Vec<String> = store
            .list("runners/")
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, vec!["runners/b"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_is_all_or_nothing_at_one_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let r1 = store.put("a", "1".into(), None).await.unwrap();
        let put = |key: &str, expected| Op::Put {
            key: key.into(),
            value: "2".into(),
            expected,
        };
        // One failed check: nothing written.
        let result = store
            .txn(vec![put("b", Some(0)), put("a", Some(r1 + 7))])
            .await
            .unwrap();
        assert_eq!(result.conflict.unwrap().key, "a");
        assert!(store.get("b").unwrap().is_none());
        assert_eq!(store.revision(), r1);
        // All checks pass: one revision for all.
        let result = store
            .txn(vec![put("b", Some(0)), put("a", Some(r1))])
            .await
            .unwrap();
        let revision = result.revision.unwrap();
        assert_eq!(revision, r1 + 1);
        assert_eq!(store.get("a").unwrap().unwrap().mod_revision, revision);
        assert_eq!(store.get("b").unwrap().unwrap().mod_revision, revision);
        // Dump and restore into another store: same entries, same revisions.
        let dump = store.dump().unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = LocalStore::open(other_dir.path()).unwrap();
        other.put("stale", "x".into(), None).await.unwrap();
        let mut watch = other.watch("").unwrap();
        other.restore(&dump).unwrap();
        assert!(matches!(
            watch.next().await.unwrap(),
            WatchEvent::Reset { .. }
        ));
        assert_eq!(other.list("").unwrap(), store.list("").unwrap());
        assert_eq!(other.revision(), revision);
    }
}
