//! `lograft serve`: open the stores, start the indexer, the supervisor and the HTTP server,
//! and shut them down in order.

use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use crate::api::{self, AppState, Auditor};
use crate::auth::{Auth, AuthSettings};
use crate::cluster::ConfigStore;
use crate::collect::{Allowlist, RunnerSettings, Supervisor};
use crate::config::NodeConfig;
use crate::index::{IndexStore, Indexer, RetentionPolicy};
use crate::search::QueryBuilder;
use crate::search::cluster::ClusterSearch;
use crate::search::local::LocalBackend;
use crate::search::remote::Peers;

/// Store key set once a node's first-start bootstrap (default runner) has run:
/// `meta/bootstrap/<node>` (`meta/bootstrap` before the cluster).
const BOOTSTRAP_KEY: &str = "meta/bootstrap";

pub async fn serve(config: NodeConfig) -> anyhow::Result<()> {
    let config = Arc::new(config);
    // Private whatever the caller's umask (`cli` set it to 0o077): the store holds the cluster
    // secret. A data dir of an older version is tightened.
    crate::fsutil::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    let tightened = crate::fsutil::tighten_tree(&config.data_dir)
        .with_context(|| format!("making data_dir {} private", config.data_dir.display()))?;
    if tightened > 0 {
        warn!(
            data_dir = %config.data_dir.display(),
            tightened,
            "data_dir had files or directories other local users could read; they are now 0600 and 0700"
        );
    }
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
    refuse_a_lost_config_store(&config)?;

    // The index first: what its sink committed is the ground truth the queue is checked
    // against. (The day partitions are opened, and repaired to their checkpoint, in any case:
    // this node's own status and internal search read them.)
    let (index, _) = IndexStore::open(&config.index_dir(), &config.node_name)?;
    let sink = crate::backends::open_sink(&config, &index)?;
    let checkpoint = sink.committed()?;
    // New sequences start above anything a partition holds (a partition ahead of the
    // checkpoint would otherwise take new records for ones it has).
    let seq_floor = checkpoint.seq.max(index.highest_seq());
    let disk = Arc::new(crate::fsutil::DiskGuard::new(
        &config.data_dir,
        config.queue.min_free_bytes,
    ));
    let (queue, restored) =
        crate::backends::open_queue(&config, &checkpoint, seq_floor, disk.clone())?;
    if restored && config.index.backend == crate::config::IndexBackend::Embedded {
        if index.checkpoint_was_rebuilt() {
            anyhow::bail!(
                "the queue {} was lost and the index checkpoint {} was missing too: the runners' file positions are gone, so they would read their files again and index lines twice, or skip lines. Restore checkpoint.json or the queue from a backup; to start the runners afresh anyway (lines may repeat), move the index aside",
                config.queue_dir().display(),
                config.index_dir().join("checkpoint.json").display()
            );
        }
        // The runners read their files again from the checkpoint's positions: what a
        // partition holds beyond it will come again.
        index.repair_to(checkpoint.seq)?;
    }
    let peer_client = crate::tls::peer_client(config.tls.as_ref().and_then(|t| t.ca.as_deref()))?;
    let logkit_client = peer_client.clone();
    // A node's runner configs leave with it, and stay with it when it joins another cluster.
    let control = crate::backends::start_control_plane(
        &config,
        peer_client.clone(),
        &[crate::collect::RUNNER_PREFIX],
    )
    .await?;
    let store = control.store.clone();
    let membership = control.membership.clone();

    let (indexer, indexer_control) = Indexer::new(
        sink,
        queue.clone(),
        checkpoint,
        config.index.commit_interval,
        RetentionPolicy {
            max_age_days: config.index.retention_days,
            max_bytes: config.index.retention_max_bytes,
            interval: config.index.retention_interval,
            future_grace: config.index.future_grace,
            max_partitions: config.index.max_partitions,
        },
        index.quarantine_dir(),
    );
    let indexer_thread = indexer.with_disk_guard(disk.clone()).spawn();

    let allowlist = Allowlist::new(config.collect.allowed_paths.clone())
        .context("collect.allowed_paths")?
        .protect(&config.data_dir)
        .with_writes(config.collect.write_paths.clone())
        .context("collect.write_paths")?;
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
        membership.set_summary(Box::new(move || {
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
    let heartbeat_task = tokio::spawn(membership.heartbeats(shutdown_rx));

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
    if membership.is_alone() {
        membership.settle().await;
        bootstrap(&*store, &config, &supervisor).await?;
        bootstrap_admin(&auth, &config).await?;
        ensure_cli_token(&auth, &config).await?;
    } else {
        let (membership, store, config, supervisor, auth) = (
            membership.clone(),
            store.clone(),
            config.clone(),
            supervisor.clone(),
            auth.clone(),
        );
        tokio::spawn(async move {
            membership.settle().await;
            if let Err(err) = bootstrap(&*store, &config, &supervisor).await {
                warn!(error = %format!("{err:#}"), "first-start bootstrap failed");
            }
            if let Err(err) = ensure_cli_token(&auth, &config).await {
                warn!(error = %format!("{err:#}"), "could not write the local CLI token");
            }
        });
    }
    let cluster_secret = control.secret.clone();
    let queries = Arc::new(QueryBuilder::default());
    let local = Arc::new(LocalBackend::new(
        index.clone(),
        queries.clone(),
        Arc::new(tokio::sync::Semaphore::new(config.api.search_concurrency)),
        indexer_control.clone(),
    ));
    let peers = Peers {
        client: peer_client,
        secret: cluster_secret.clone(),
        timeout: config.cluster.search_timeout,
    };
    let topology = crate::backends::search_topology(
        &config,
        membership.clone(),
        local.clone(),
        peers.clone(),
    )?;
    let search = ClusterSearch::new(topology, queries.clone());
    let deployer = Arc::new(crate::deploy::exec::Deployer {
        store: store.clone(),
        membership: membership.clone(),
        client: peers.client.clone(),
        secret: cluster_secret.clone(),
        one_started: config.deploy.one_started,
    });
    let deploy_task = tokio::spawn(deployer.clone().watch_executions(shutdown_tx.subscribe()));
    let logkit_task = config.logkit.master_url.clone().map(|master| {
        tokio::spawn(crate::api::register_with_logkit_master(
            master,
            membership.clone(),
            logkit_client.clone(),
            shutdown_tx.subscribe(),
        ))
    });
    let state = AppState {
        config: config.clone(),
        disk,
        store,
        queue: queue.clone(),
        index,
        indexer: indexer_control.clone(),
        supervisor,
        queries,
        metrics,
        auth,
        cluster_secret,
        membership: membership.clone(),
        raft: control.raft.clone(),
        local,
        search,
        peers,
        audit: Auditor::new(queue.clone()),
        deployer,
    };
    api::serve(api::app(state), &config, shutdown_signal()).await?;

    info!("shutting down: stopping runners, then the indexer");
    let _ = shutdown_tx.send(true);
    let _ = supervisor_task.await;
    let _ = heartbeat_task.await;
    let _ = deploy_task.await;
    if let Some(task) = logkit_task {
        let _ = task.await;
    }
    membership.shutdown().await;
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
    crate::fsutil::write_private_durably(path, format!("{text}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// First start: create the default runners for `collect.default_paths` if the config asks
/// for them; a glob the allowlist refuses is a WARN saying what to do (the README tour's
/// searches find nothing without it).
async fn bootstrap(
    store: &dyn ConfigStore,
    config: &NodeConfig,
    supervisor: &Supervisor,
) -> anyhow::Result<()> {
    crate::collect::migrate_runner_keys(store, &config.node_name).await?;
    let key = format!("{BOOTSTRAP_KEY}/{}", config.node_name);
    if store.get(&key)?.is_some() || store.get(BOOTSTRAP_KEY)?.is_some() {
        return Ok(());
    }
    if config.collect.default_runner {
        let (runners, refused) = crate::collect::supervisor::default_runners(
            &config.collect.default_paths,
            supervisor.allowlist(),
        );
        for (name, runner) in runners {
            store
                .put(&supervisor.key(&name), runner, Some(0))
                .await
                .ok();
            info!(runner = %name, "created a default runner");
        }
        for (path, reason) in refused {
            warn!(
                path = %path,
                allowed_paths = ?config.collect.allowed_paths,
                reason = %reason,
                "no default runner for {path}: it is outside collect.allowed_paths, so nothing is \
                 collected from it; set collect.default_paths to globs inside collect.allowed_paths \
                 (or widen allowed_paths), or add a runner (UI, POST /api/v1/runners)"
            );
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

/// A data dir whose index holds data but whose config store is gone (deleted, or a restore
/// that missed it) would start a brand-new cluster: a new admin password, no runner configs,
/// collection silently stopped. Refuse, naming the store, unless told to start a new one.
fn refuse_a_lost_config_store(config: &NodeConfig) -> anyhow::Result<()> {
    if config.cluster.backend != crate::config::ClusterBackend::Embedded
        || config.store_dir().exists()
        || std::env::var("LOGRAFT_NEW_STORE").as_deref() == Ok("1")
    {
        return Ok(());
    }
    let index = config.index_dir();
    let holds_data = index.join("checkpoint.json").exists()
        || std::fs::read_dir(&index)
            .map(|entries| {
                entries.flatten().any(|e| {
                    chrono::NaiveDate::parse_from_str(&e.file_name().to_string_lossy(), "%Y-%m-%d")
                        .is_ok()
                })
            })
            .unwrap_or(false);
    if holds_data {
        anyhow::bail!(
            "the config store {} is missing, but {} holds indexed data: starting would make a new cluster (a new admin password, no runner configs, no collection). Restore {} from a backup; or, to begin a new config store on this data on purpose, run `lograft repair` (it says what it would do; --apply does it) or start once with LOGRAFT_NEW_STORE=1",
            config.store_dir().display(),
            index.display(),
            config.store_dir().display()
        );
    }
    Ok(())
}
