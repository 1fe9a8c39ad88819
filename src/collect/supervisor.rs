//! The supervisor: keeps the running runners equal to the runner configs in the store.
//!
//! It watches `runners/` in the [`ConfigStore`] and reconciles on every change: a new config
//! starts a runner, a changed one restarts it (from its checkpoints: nothing re-read, nothing
//! skipped), a deleted one stops it and forgets its checkpoints. No process restart is needed.
//! A config this node refuses (outside its allowlist) is kept with state `refused` and the
//! reason, so the operator sees why it does not run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;
use tracing::{error, info, warn};

use super::allowlist::Allowlist;
use super::config::RunnerConfig;
use super::runner::{RunnerHandle, RunnerSettings, RunnerStatus};
use crate::cluster::{ConfigStore, WatchEvent};
use crate::queue::Queue;

/// Store prefix of runner configs: `runners/<node>/<name>`.
pub const RUNNER_PREFIX: &str = "runners/";

/// The store prefix of one node's runner configs.
pub fn node_runner_prefix(node: &str) -> String {
    format!("{RUNNER_PREFIX}{node}/")
}

pub fn runner_key(node: &str, name: &str) -> String {
    format!("{RUNNER_PREFIX}{node}/{name}")
}

/// Runner configs from before the cluster were `runners/<name>`: they become `node`'s
/// (`runners/<node>/<name>`), in one transaction. Run once the store takes writes.
pub async fn migrate_runner_keys(
    store: &dyn crate::cluster::ConfigStore,
    node: &str,
) -> Result<usize, crate::cluster::StoreError> {
    use crate::cluster::Op;
    let old: Vec<crate::cluster::KvEntry> = store
        .list(RUNNER_PREFIX)?
        .into_iter()
        .filter(|e| !e.key[RUNNER_PREFIX.len()..].contains('/'))
        .collect();
    if old.is_empty() {
        return Ok(0);
    }
    let mut ops = Vec::new();
    for entry in &old {
        let name = &entry.key[RUNNER_PREFIX.len()..];
        ops.push(Op::Delete {
            key: entry.key.clone(),
            expected: Some(entry.mod_revision),
        });
        ops.push(Op::Put {
            key: runner_key(node, name),
            value: entry.value.clone(),
            expected: None,
        });
    }
    store.txn(ops).await?.into_result()?;
    tracing::info!(
        runners = old.len(),
        node,
        "moved runner configs under this node's name"
    );
    Ok(old.len())
}

/// The default runners of a first start (`collect.default_paths`): `default` for the first
/// glob, `default-2`, `default-3`... for the others, each tailing its glob from the oldest
/// line. Returns the (name, config JSON) of those this node's allowlist permits, and the
/// globs it refuses with the reason.
pub fn default_runners(
    paths: &[String],
    allowlist: &Allowlist,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let name = match index {
            0 => "default".to_string(),
            n => format!("default-{}", n + 1),
        };
        let config = serde_json::json!({
            "name": name,
            "reader": {"mode": "tailx", "log_path": path, "read_from": "oldest"},
            "parser": {"type": "raw"}
        })
        .to_string();
        match RunnerConfig::parse(&config, allowlist) {
            Ok(_) => allowed.push((name, config)),
            Err(err) => refused.push((path.clone(), err.to_string())),
        }
    }
    (allowed, refused)
}

pub struct Supervisor {
    store: Arc<dyn ConfigStore>,
    queue: Arc<dyn Queue>,
    /// `runners/<this node>/`: the configs this node runs.
    prefix: String,
    allowlist: Allowlist,
    settings: RunnerSettings,
    runners: Mutex<BTreeMap<String, RunnerHandle>>,
}

impl Supervisor {
    pub fn new(
        node: &str,
        store: Arc<dyn ConfigStore>,
        queue: Arc<dyn Queue>,
        allowlist: Allowlist,
        settings: RunnerSettings,
    ) -> Arc<Supervisor> {
        Arc::new(Supervisor {
            store,
            queue,
            prefix: node_runner_prefix(node),
            allowlist,
            settings,
            runners: Mutex::new(BTreeMap::new()),
        })
    }

    /// The store prefix of this node's runner configs.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The store key of this node's runner `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// Reconcile until `shutdown` fires, then stop every runner.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        'watch: loop {
            let mut watch = match self.store.watch(&self.prefix) {
                Ok(watch) => watch,
                Err(err) => {
                    error!(error = %err, "cannot watch runner configs; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            let desired: BTreeMap<String, String> = watch
                .entries
                .drain(..)
                .map(|entry| (entry.key[self.prefix.len()..].to_string(), entry.value))
                .collect();
            let this = self.clone();
            let _ = tokio::task::spawn_blocking(move || this.reconcile_all(desired)).await;
            loop {
                tokio::select! {
                    event = watch.next() => match event {
                        Ok(WatchEvent::Put(entry)) => {
                            let name = entry.key[self.prefix.len()..].to_string();
                            let this = self.clone();
                            let _ = tokio::task::spawn_blocking(move || this.apply(&name, Some(entry.value))).await;
                        }
                        Ok(WatchEvent::Delete { key, .. }) => {
                            let name = key[self.prefix.len()..].to_string();
                            let this = self.clone();
                            let _ = tokio::task::spawn_blocking(move || this.apply(&name, None)).await;
                        }
                        Ok(WatchEvent::Reset { .. }) => {
                            info!("the config store was replaced (snapshot installed); reconciling from a fresh list");
                            continue 'watch;
                        }
                        Err(RecvError::Lagged(missed)) => {
                            warn!(missed, "runner config watch lagged; reconciling from a fresh list");
                            continue 'watch;
                        }
                        Err(RecvError::Closed) => break 'watch,
                    },
                    _ = shutdown.changed() => break 'watch,
                }
            }
        }
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || this.stop_all()).await;
    }

    fn reconcile_all(&self, desired: BTreeMap<String, String>) {
        let running: Vec<String> = self
            .runners
            .lock()
            .expect("runners lock")
            .keys()
            .cloned()
            .collect();
        for name in running {
            if !desired.contains_key(&name) {
                self.apply(&name, None);
            }
        }
        for (name, json) in desired {
            self.apply(&name, Some(json));
        }
    }

    /// Bring one runner to its desired config (`None`: deleted). Blocking: joins threads.
    fn apply(&self, name: &str, json: Option<String>) {
        let Some(json) = json else {
            let removed = self.runners.lock().expect("runners lock").remove(name);
            if let Some(handle) = removed {
                handle.stop();
                info!(runner = name, "runner deleted");
            }
            if let Err(err) = self.queue.checkpoints().forget_runner(name) {
                error!(runner = name, error = %err, "could not forget the checkpoints of a deleted runner");
            }
            return;
        };
        let parsed = serde_json::from_str::<RunnerConfig>(&json)
            .map_err(|err| err.to_string())
            .and_then(|config| match config.validate(&self.allowlist) {
                Ok(()) => Ok(config),
                Err(err) => Err(err.to_string()),
            });
        let existing = self.runners.lock().expect("runners lock").remove(name);
        if let (Some(handle), Ok(config)) = (&existing, &parsed)
            && &handle.config == config
            && handle.status().state != "refused"
        {
            self.runners
                .lock()
                .expect("runners lock")
                .insert(name.to_string(), existing.expect("checked"));
            return;
        }
        let previous_epoch = existing.as_ref().map(|handle| handle.config.reset_epoch);
        if let Some(handle) = existing {
            handle.stop();
            info!(runner = name, "runner config changed; restarting it");
        }
        if let (Some(previous), Ok(config)) = (previous_epoch, &parsed)
            && config.reset_epoch > previous
        {
            // logkit's reset: forget where the runner was, so it reads its files again.
            info!(runner = name, "runner reset: forgetting its checkpoints");
            if let Err(err) = self.queue.checkpoints().forget_runner(name) {
                error!(runner = name, error = %err, "could not reset the runner's checkpoints");
            }
        }
        let handle = match parsed {
            Ok(config) if config.stopped => RunnerHandle::stopped(config),
            Ok(config) if config.reader.mode == crate::collect::config::ReaderMode::Syslog => {
                RunnerHandle::listening(config, self.queue.clone(), self.settings.max_line_bytes)
            }
            Ok(config) if !config.reader.mode.reads_files() => RunnerHandle::passive(config),
            Ok(config) => RunnerHandle::start(
                config,
                self.queue.clone(),
                self.allowlist.clone(),
                self.settings.clone(),
            ),
            Err(reason) => {
                warn!(runner = name, reason = %reason, "runner config refused on this node");
                let config = serde_json::from_str::<RunnerConfig>(&json)
                    .unwrap_or_else(|_| placeholder(name));
                RunnerHandle::refused(config, reason)
            }
        };
        self.runners
            .lock()
            .expect("runners lock")
            .insert(name.to_string(), handle);
    }

    pub fn stop_all(&self) {
        let runners = std::mem::take(&mut *self.runners.lock().expect("runners lock"));
        for (_, handle) in runners {
            handle.stop();
        }
    }

    pub fn statuses(&self) -> Vec<(RunnerConfig, RunnerStatus)> {
        self.runners
            .lock()
            .expect("runners lock")
            .values()
            .map(|handle| (handle.config.clone(), handle.status()))
            .collect()
    }

    /// The config and live status of a runner, for the network inputs that ingest for it.
    pub fn target(&self, name: &str) -> Option<(RunnerConfig, Arc<Mutex<RunnerStatus>>)> {
        self.runners
            .lock()
            .expect("runners lock")
            .get(name)
            .filter(|handle| handle.status().state != "refused")
            .map(|handle| (handle.config.clone(), handle.status.clone()))
    }

    pub fn status(&self, name: &str) -> Option<(RunnerConfig, RunnerStatus)> {
        self.runners
            .lock()
            .expect("runners lock")
            .get(name)
            .map(|handle| (handle.config.clone(), handle.status()))
    }
}

fn placeholder(name: &str) -> RunnerConfig {
    serde_json::from_value(serde_json::json!({
        "name": name, "reader": {"mode": "file", "log_path": "/"}
    }))
    .expect("placeholder config parses")
}
