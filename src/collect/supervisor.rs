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
        // Runners deleted while this node was down (or in a snapshot it installed) leave
        // checkpoints behind; a runner re-created with the same name must start afresh.
        match self.queue.checkpoints().runners() {
            Ok(known) => {
                for name in known {
                    if !desired.contains_key(&name) && !name.starts_with('_') {
                        info!(runner = %name, "forgetting the checkpoints of a runner no longer configured");
                        if let Err(err) = self.queue.checkpoints().forget_runner(&name) {
                            error!(runner = %name, error = %err, "could not forget a deleted runner's checkpoints");
                        }
                    }
                }
            }
            Err(err) => error!(error = %err, "could not list the runners with checkpoints"),
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
        if let Some(handle) = existing {
            handle.stop();
            info!(runner = name, "runner config changed; restarting it");
        }
        if let Ok(config) = &parsed {
            // logkit's reset: forget where the runner was, so it reads its files again. The
            // epoch applied is kept with the checkpoints, so a reset issued while this node
            // was down (or this runner stopped) is applied when it comes back.
            let applied = self
                .queue
                .checkpoints()
                .reset_epoch(name)
                .unwrap_or_else(|err| {
                    error!(runner = name, error = %err, "could not read the runner's reset epoch");
                    config.reset_epoch
                });
            if config.reset_epoch > applied {
                info!(
                    runner = name,
                    epoch = config.reset_epoch,
                    "runner reset: forgetting its checkpoints"
                );
                let checkpoints = self.queue.checkpoints();
                if let Err(err) = checkpoints
                    .forget_runner(name)
                    .and_then(|()| checkpoints.set_reset_epoch(name, config.reset_epoch))
                {
                    error!(runner = name, error = %err, "could not reset the runner's checkpoints");
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::LocalStore;
    use crate::queue::SledQueue;
    use std::time::{Duration, Instant};

    /// Records in the queue whose message is `message`.
    fn count(queue: &dyn Queue, message: &str) -> usize {
        queue
            .read_after(0, usize::MAX)
            .unwrap()
            .iter()
            .flat_map(|batch| batch.records.iter())
            .filter(|record| record.message == message)
            .count()
    }

    fn wait(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fault review (issue 13) item 6: what changed while the node was down is honoured when
    /// it starts: a reset (its epoch is kept with the checkpoints, not only in the running
    /// runner) and a deleted runner (its checkpoints go, so a re-created runner of that name
    /// starts afresh).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resets_and_deletions_made_while_down_are_applied_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("logs/app.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "one\ntwo\nthree\n").unwrap();
        let store: Arc<dyn ConfigStore> =
            Arc::new(LocalStore::open(&dir.path().join("store")).unwrap());
        let queue: Arc<dyn Queue> =
            Arc::new(SledQueue::open(&dir.path().join("queue"), 1 << 30, 0).unwrap());
        let allowlist = Allowlist::new(vec![format!("{}/logs/**", dir.path().display())]).unwrap();
        let settings = RunnerSettings {
            max_line_bytes: 1 << 20,
            partial_line_timeout: Duration::from_secs(1),
            scan_interval: Duration::from_millis(100),
        };
        let config = |epoch: u64| {
            serde_json::json!({
                "name": "web",
                "reader": {"mode": "file", "log_path": log, "read_from": "oldest"},
                "parser": {"type": "raw"},
                "reset_epoch": epoch,
            })
            .to_string()
        };
        store
            .put(&runner_key("n1", "web"), config(0), None)
            .await
            .unwrap();
        let start = || {
            let supervisor = Supervisor::new(
                "n1",
                store.clone(),
                queue.clone(),
                allowlist.clone(),
                settings.clone(),
            );
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(supervisor.run(stopped));
            (stop, task)
        };
        let (stop, task) = start();
        let q = queue.clone();
        tokio::task::spawn_blocking(move || {
            wait("the three lines", || count(q.as_ref(), "three") == 1);
            wait("a checkpoint", || {
                !q.checkpoints().of_runner("web").unwrap().is_empty()
            });
        })
        .await
        .unwrap();
        stop.send(true).unwrap();
        task.await.unwrap();

        // While down: the runner is reset, and another one (with checkpoints here) deleted.
        store
            .put(&runner_key("n1", "web"), config(1), None)
            .await
            .unwrap();
        queue
            .append(Vec::new(), vec![("gone/x.log".into(), Some("{}".into()))])
            .unwrap();

        let (stop, task) = start();
        let q = queue.clone();
        tokio::task::spawn_blocking(move || {
            wait("the file read again after the reset", || {
                count(q.as_ref(), "three") == 2
            });
            wait("the deleted runner forgotten", || {
                q.checkpoints().of_runner("gone").unwrap().is_empty()
            });
        })
        .await
        .unwrap();
        assert_eq!(queue.checkpoints().reset_epoch("web").unwrap(), 1);
        stop.send(true).unwrap();
        task.await.unwrap();
        // Started again at the same epoch: no second reset.
        std::fs::write(&log, "one\ntwo\nthree\nfour\n").unwrap();
        let (stop, task) = start();
        let q = queue.clone();
        tokio::task::spawn_blocking(move || {
            wait("the runner to resume with the new line", || {
                count(q.as_ref(), "four") == 1
            })
        })
        .await
        .unwrap();
        stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(count(queue.as_ref(), "one"), 2, "no second reset");
    }
}
