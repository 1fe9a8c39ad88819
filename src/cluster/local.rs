//! [`ConfigStore`] on sled, for a single node.
//!
//! ```text
//! store/            sled database
//!   kv/<key>     -> {"value": "...", "mod_revision": n}
//!   meta/revision -> u64 BE, the store revision
//! ```

use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{BoxFuture, ConfigStore, KvEntry, StoreError, Watch, WatchEvent};

const REVISION_KEY: &[u8] = b"meta/revision";
const KV_PREFIX: &str = "kv/";

#[derive(Serialize, Deserialize)]
struct Stored {
    value: String,
    mod_revision: u64,
}

pub struct LocalStore {
    db: sled::Db,
    /// Held across "assign revision, write, publish" so watchers see revisions in order.
    write_lock: Mutex<u64>,
    events: broadcast::Sender<WatchEvent>,
}

impl LocalStore {
    pub fn open(dir: &Path) -> anyhow::Result<LocalStore> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(8 * 1024 * 1024)
            .open()
            .with_context(|| format!("opening config store {}", dir.display()))?;
        let revision = db
            .get(REVISION_KEY)?
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0);
        let (events, _) = broadcast::channel(1024);
        Ok(LocalStore {
            db,
            write_lock: Mutex::new(revision),
            events,
        })
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

    fn write(
        &self,
        key: &str,
        value: Option<String>,
        expected: Option<u64>,
    ) -> Result<Option<u64>, StoreError> {
        let mut revision = self.write_lock.lock().expect("store lock");
        let db_key = format!("{KV_PREFIX}{key}");
        let current = match self.db.get(&db_key)? {
            Some(bytes) => Some(Self::decode(db_key.as_bytes(), &bytes)?),
            None => None,
        };
        if let Some(expected) = expected {
            let found = current.as_ref().map(|e| e.mod_revision).unwrap_or(0);
            if found != expected {
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                    expected,
                    found,
                });
            }
        }
        if value.is_none() && current.is_none() {
            return Ok(None);
        }
        let next = *revision + 1;
        let mut batch = sled::Batch::default();
        batch.insert(REVISION_KEY, &next.to_be_bytes());
        let event = match value {
            Some(value) => {
                let stored = serde_json::to_vec(&Stored {
                    value: value.clone(),
                    mod_revision: next,
                })
                .expect("stored entry serializes");
                batch.insert(db_key.as_bytes(), stored);
                WatchEvent::Put(KvEntry {
                    key: key.to_string(),
                    value,
                    mod_revision: next,
                })
            }
            None => {
                batch.remove(db_key.as_bytes());
                WatchEvent::Delete {
                    key: key.to_string(),
                    revision: next,
                }
            }
        };
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        *revision = next;
        // No receivers is fine: nobody is watching yet.
        let _ = self.events.send(event);
        Ok(Some(next))
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
            let revision =
                tokio::task::block_in_place(|| self.write(key, Some(value), expected_revision))?;
            Ok(revision.expect("a put always writes"))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move { tokio::task::block_in_place(|| self.write(key, None, None)) })
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
        *self.write_lock.lock().expect("store lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
