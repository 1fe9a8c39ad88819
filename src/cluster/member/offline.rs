//! The config store for the CLI while the node is stopped.

use super::*;

/// The config store for the CLI while the node is stopped: reads see the node's state with
/// the offline changes on top; writes are kept in the node's local tree and go through Raft
/// when the node next starts ([`Cluster::settle`]), so every member sees them.
pub struct OfflineStore {
    store: Arc<LocalStore>,
    local: sled::Tree,
    lock: Mutex<()>,
}

impl OfflineStore {
    pub fn open(store: Arc<LocalStore>) -> anyhow::Result<OfflineStore> {
        let local = store.db().open_tree("node")?;
        Ok(OfflineStore {
            store,
            local,
            lock: Mutex::new(()),
        })
    }

    /// The cluster secret as this node knows it.
    pub fn cluster_secret(&self) -> anyhow::Result<Option<String>> {
        if let Some(bytes) = self.local.get("cluster_secret")? {
            return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
        }
        Ok(match self.store.get(crate::auth::CLUSTER_SECRET_KEY)? {
            Some(entry) => Some(serde_json::from_str(&entry.value)?),
            None => None,
        })
    }

    fn pending(&self) -> Result<Vec<Op>, StoreError> {
        Cluster::pending(&self.local).map_err(|e| StoreError::Corrupt {
            key: "pending".into(),
            reason: e.to_string(),
        })
    }

    /// The offline view of one key: `Some(Some(value))` put, `Some(None)` deleted.
    fn overlay(&self) -> Result<BTreeMap<String, Option<String>>, StoreError> {
        let mut view = BTreeMap::new();
        for op in self.pending()? {
            match op {
                Op::Put { key, value, .. } => view.insert(key, Some(value)),
                Op::Delete { key, .. } => view.insert(key, None),
            };
        }
        Ok(view)
    }

    fn offline_revision(&self) -> u64 {
        self.store.revision() + 1
    }
}

impl ConfigStore for OfflineStore {
    fn get(&self, key: &str) -> Result<Option<KvEntry>, StoreError> {
        match self.overlay()?.remove(key) {
            Some(Some(value)) => Ok(Some(KvEntry {
                key: key.to_string(),
                value,
                mod_revision: self.offline_revision(),
            })),
            Some(None) => Ok(None),
            None => self.store.get(key),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, StoreError> {
        let mut entries: BTreeMap<String, KvEntry> = self
            .store
            .list(prefix)?
            .into_iter()
            .map(|e| (e.key.clone(), e))
            .collect();
        for (key, value) in self.overlay()? {
            if !key.starts_with(prefix) {
                continue;
            }
            match value {
                Some(value) => {
                    entries.insert(
                        key.clone(),
                        KvEntry {
                            key,
                            value,
                            mod_revision: self.offline_revision(),
                        },
                    );
                }
                None => {
                    entries.remove(&key);
                }
            }
        }
        Ok(entries.into_values().collect())
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: String,
        expected_revision: Option<u64>,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().expect("offline lock");
            if let Some(expected) = expected_revision {
                let found = self.get(key)?.map(|e| e.mod_revision).unwrap_or(0);
                if found != expected {
                    return Err(StoreError::Conflict {
                        key: key.to_string(),
                        expected,
                        found,
                    });
                }
            }
            let mut ops = self.pending()?;
            ops.push(Op::Put {
                key: key.to_string(),
                value,
                expected: None,
            });
            self.local
                .insert("pending", serde_json::to_vec(&ops).expect("json"))?;
            self.local.flush()?;
            Ok(self.offline_revision())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let _guard = self.lock.lock().expect("offline lock");
            if self.get(key)?.is_none() {
                return Ok(None);
            }
            let mut ops = self.pending()?;
            ops.push(Op::Delete {
                key: key.to_string(),
                expected: None,
            });
            self.local
                .insert("pending", serde_json::to_vec(&ops).expect("json"))?;
            self.local.flush()?;
            Ok(Some(self.offline_revision()))
        })
    }

    fn txn<'a>(&'a self, ops: Vec<Op>) -> BoxFuture<'a, Result<TxnResult, StoreError>> {
        Box::pin(async move {
            let mut revision = None;
            for op in ops {
                revision = match op {
                    Op::Put {
                        key,
                        value,
                        expected,
                    } => Some(self.put(&key, value, expected).await?),
                    Op::Delete { key, .. } => self.delete(&key).await?.or(revision),
                };
            }
            Ok(TxnResult {
                revision,
                conflict: None,
            })
        })
    }

    fn watch(&self, _prefix: &str) -> Result<Watch, StoreError> {
        Err(unavailable("the offline store cannot be watched"))
    }

    fn revision(&self) -> u64 {
        self.store.revision()
    }
}
