//! `lograft serve`: open the stores, start the indexer, the supervisor and the HTTP server,
//! and shut them down in order.

use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use crate::api::{self, AppState, Auditor};
use crate::auth::{Auth, AuthSettings};
use crate::cluster::{Cluster, ConfigStore, LocalStore};
use crate::collect::{Allowlist, RunnerConfig, RunnerSettings, Supervisor};
use crate::config::NodeConfig;
use crate::index::{IndexStore, Indexer, RetentionPolicy};
use crate::queue::{self, Queue};
use crate::search::QueryBuilder;

/// Store key set once a node's first-start bootstrap (default runner) has run:
/// `meta/bootstrap/<node>` (`meta/bootstrap` before the cluster).
const BOOTSTRAP_KEY: &str = "meta/bootstrap";

pub async fn serve(config: NodeConfig) -> anyhow::Result<()> {
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    // One node per data dir: a second one must not touch the first one's queue and index.
    let lock_path = config.data_dir.join("lograft.lock");
    let data_dir_lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    if data_dir_lock.try_lock().is_err() {
        anyhow::bail!(
            "data_dir {} is in use by another process (is another lograft running on it?)",
            config.data_dir.display()
        );
    }
    let metrics = crate::metrics::install();

    // The index first: its checkpoint is the ground truth the queue is checked against.
    let (index, checkpoint) = IndexStore::open(&config.index_dir(), &config.node_name)?;
    let (queue, rebuilt) =
        queue::open(&config.queue_dir(), config.queue.max_bytes, checkpoint.seq)?;
    if rebuilt || queue.behind_index() {
        warn!(
            index_seq = checkpoint.seq,
            streams = checkpoint.checkpoints.len(),
            "queue is behind the index; restoring runner checkpoints from the index"
        );
        queue.checkpoints().restore(&checkpoint.checkpoints)?;
    }
    let queue: Arc<dyn Queue> = Arc::new(queue);
    let local_store = Arc::new(LocalStore::open(&config.store_dir())?);
    let peer_client = crate::tls::peer_client(config.tls.as_ref().and_then(|t| t.ca.as_deref()))?;
    let cluster = Cluster::start(
        &config.node_name,
        config.cluster.clone(),
        local_store,
        peer_client,
    )
    .await?;
    let store: Arc<dyn ConfigStore> = cluster.clone();

    let (indexer, indexer_control) = Indexer::new(
        index.clone(),
        queue.clone(),
        checkpoint,
        config.index.commit_interval,
        config.index.writer_memory,
        RetentionPolicy {
            max_age_days: config.index.retention_days,
            max_bytes: config.index.retention_max_bytes,
            interval: config.index.retention_interval,
            future_grace: config.index.future_grace,
            max_partitions: config.index.max_partitions,
        },
    );
    let indexer_thread = indexer.spawn();

    let allowlist =
        Allowlist::new(config.collect.allowed_paths.clone()).context("collect.allowed_paths")?;
    let supervisor = Supervisor::new(
        &config.node_name,
        store.clone(),
        queue.clone(),
        allowlist,
        RunnerSettings {
            max_line_bytes: config.collect.max_line_bytes as usize,
            partial_line_timeout: config.collect.partial_line_timeout,
            scan_interval: config.collect.scan_interval,
        },
    );
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let supervisor_task = tokio::spawn(supervisor.clone().run(shutdown_rx.clone()));
    {
        let supervisor = supervisor.clone();
        cluster.set_summary(Box::new(move || {
            let statuses = supervisor.statuses();
            let lines = statuses.iter().map(|(_, s)| s.lines_read).sum();
            let refused = statuses
                .iter()
                .filter(|(_, s)| s.state == "refused" || s.state == "error")
                .map(|(c, s)| (c.name.clone(), s.error.clone().unwrap_or_default()))
                .collect();
            (statuses.len(), lines, refused)
        }));
    }
    let heartbeat_task = tokio::spawn(cluster.clone().heartbeats(shutdown_rx));

    let auth = Arc::new(Auth::new(
        store.clone(),
        AuthSettings {
            session_ttl: config.auth.session_ttl,
            login_attempts_per_minute: config.auth.login_attempts_per_minute,
        },
    ));
    // A node that is alone settles on its own (no network needed) before it serves, so its
    // first requests find the admin and the offline changes; a member of a larger cluster (or
    // one joining) needs the network, so it settles in the background.
    if cluster.is_alone() && cluster.members().0.contains(&cluster.id) {
        cluster.settle().await;
        bootstrap(&*store, &config, &supervisor).await?;
        bootstrap_admin(&auth, &config).await?;
        ensure_cli_token(&auth, &config).await?;
    } else {
        let (cluster, store, config, supervisor, auth) = (
            cluster.clone(),
            store.clone(),
            config.clone(),
            supervisor.clone(),
            auth.clone(),
        );
        tokio::spawn(async move {
            cluster.settle().await;
            if let Err(err) = bootstrap(&*store, &config, &supervisor).await {
                warn!(error = %format!("{err:#}"), "first-start bootstrap failed");
            }
            if let Err(err) = ensure_cli_token(&auth, &config).await {
                warn!(error = %format!("{err:#}"), "could not write the local CLI token");
            }
        });
    }
    let cluster_secret = cluster.secret.clone();
    let state = AppState {
        config: config.clone(),
        store,
        queue: queue.clone(),
        index,
        indexer: indexer_control.clone(),
        supervisor,
        queries: Arc::new(QueryBuilder::default()),
        metrics,
        auth,
        cluster_secret,
        cluster: cluster.clone(),
        audit: Auditor::new(queue.clone()),
        search_permits: Arc::new(tokio::sync::Semaphore::new(config.api.search_concurrency)),
    };
    api::serve(api::app(state), &config, shutdown_signal()).await?;

    info!("shutting down: stopping runners, then the indexer");
    let _ = shutdown_tx.send(true);
    let _ = supervisor_task.await;
    let _ = heartbeat_task.await;
    cluster.shutdown().await;
    indexer_control.stop();
    queue.close();
    tokio::task::spawn_blocking(move || indexer_thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("indexer thread panicked"))?;
    info!("stopped");
    Ok(())
}

/// First start: create `admin` with a random password, written to a 0600 file and logged once.
async fn bootstrap_admin(auth: &Auth, config: &NodeConfig) -> anyhow::Result<()> {
    let Some(password) = auth.bootstrap_admin().await? else {
        return Ok(());
    };
    let path = config.data_dir.join("initial-admin-password");
    write_private(&path, &password)?;
    warn!(
        user = "admin",
        file = %path.display(),
        "created the first user `admin`; its password is in {} (mode 0600, read it as root or \
         the node's user); log in with it, then change it with `lograft user passwd admin`",
        path.display()
    );
    Ok(())
}

/// Keep an admin token for the CLI on this machine in `<data_dir>/cli-token` (0600), so
/// `lograft search ...` needs no flags here. A token the cluster no longer knows (after a join,
/// a revocation) is replaced, and older ones of this node are revoked.
async fn ensure_cli_token(auth: &Auth, config: &NodeConfig) -> anyhow::Result<()> {
    let path = config.data_dir.join(crate::cli_local::CLI_TOKEN_FILE);
    if let Ok(text) = std::fs::read_to_string(&path)
        && auth.verify_token(text.trim()).is_some()
    {
        return Ok(());
    }
    let name = format!("local-cli-{}", config.node_name);
    for stale in auth.tokens()?.into_iter().filter(|t| t.name == name) {
        auth.revoke_token(&stale.id).await.ok();
    }
    let (_, secret) = auth.create_token(&name, crate::auth::Role::Admin).await?;
    write_private(&path, &secret)?;
    Ok(())
}

/// Write a secret to a file only its owner can read, durably.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{text}")?;
    file.sync_all()?;
    Ok(())
}

/// First start: create the `default` runner for `/var/log/*.log` if the config asks for it and
/// the allowlist permits it.
async fn bootstrap(
    store: &dyn ConfigStore,
    config: &NodeConfig,
    supervisor: &Supervisor,
) -> anyhow::Result<()> {
    let key = format!("{BOOTSTRAP_KEY}/{}", config.node_name);
    if store.get(&key)?.is_some() || store.get(BOOTSTRAP_KEY)?.is_some() {
        return Ok(());
    }
    let allowlist = supervisor.allowlist();
    if config.collect.default_runner {
        let default = serde_json::json!({
            "name": "default",
            "reader": {"mode": "tailx", "log_path": "/var/log/*.log", "read_from": "oldest"},
            "parser": {"type": "raw"}
        })
        .to_string();
        match RunnerConfig::parse(&default, allowlist) {
            Ok(_) => {
                store
                    .put(&supervisor.key("default"), default, Some(0))
                    .await
                    .ok();
                info!("created the default runner for /var/log/*.log");
            }
            Err(err) => info!(reason = %err, "not creating the default runner"),
        }
    }
    store.put(&key, "{\"done\":true}".into(), None).await?;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}
