use super::*;

#[test]
fn loopback_urls() {
    assert!(is_loopback("http://127.0.0.1:7700"));
    assert!(is_loopback("https://localhost:7700"));
    assert!(is_loopback("http://[::1]:7700"));
    assert!(!is_loopback("https://10.0.0.2:7700"));
    assert!(!is_loopback("https://logs.example.com"));
}

fn config() -> ClusterConfig {
    crate::config::NodeConfig::default().cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_raft_store_passes_the_config_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    let cluster = Cluster::start("n1", config(), store, reqwest::Client::new())
        .await
        .unwrap();
    cluster.settle().await;
    crate::cluster::conformance::run(cluster.as_ref()).await;
    cluster.shutdown().await;
}

/// A data dir from before the cluster: runner configs under `runners/<name>` and the secret
/// in the store. Opening it makes a one-node cluster that keeps both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_data_dir_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let old = LocalStore::open(dir.path()).unwrap();
        old.put("runners/web", "{\"name\":\"web\"}".into(), None)
            .await
            .unwrap();
        old.put("auth/users/admin", "{}".into(), None)
            .await
            .unwrap();
        old.put(crate::auth::CLUSTER_SECRET_KEY, "\"lgc_old\"".into(), None)
            .await
            .unwrap();
    }
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    let cluster = Cluster::start("n1", config(), store, reqwest::Client::new())
        .await
        .unwrap();
    assert!(cluster.is_alone());
    cluster.settle().await;
    crate::collect::migrate_runner_keys(cluster.as_ref(), "n1")
        .await
        .unwrap();
    assert_eq!(cluster.secret.reveal(), "lgc_old");
    assert!(cluster.get("runners/web").unwrap().is_none());
    assert_eq!(
        cluster.get("runners/n1/web").unwrap().unwrap().value,
        "{\"name\":\"web\"}"
    );
    assert!(cluster.get("auth/users/admin").unwrap().is_some());
    let record: NodeRecord =
        serde_json::from_str(&cluster.get("nodes/n1").unwrap().unwrap().value).unwrap();
    assert_eq!(record.id, cluster.id);
    // Writes go through Raft and land in the state machine.
    let revision = cluster.put("x", "1".into(), Some(0)).await.unwrap();
    assert_eq!(cluster.get("x").unwrap().unwrap().mod_revision, revision);
    cluster.shutdown().await;
}

/// The keys a member may forward are the prefixes their owners (above this layer) use.
#[test]
fn forwardable_prefixes_are_the_owners_prefixes() {
    for prefix in [
        crate::collect::supervisor::RUNNER_PREFIX,
        crate::auth::USER_PREFIX,
        crate::auth::TOKEN_PREFIX,
        crate::cluster::join_token::JOIN_TOKEN_PREFIX,
        crate::deploy::DEPLOY_PREFIX,
    ] {
        assert!(FORWARDABLE_PREFIXES.contains(&prefix), "{prefix}");
    }
    assert!(is_forwardable("runners/n1/web"));
    assert!(!is_forwardable(crate::auth::CLUSTER_SECRET_KEY));
    assert!(!is_forwardable("meta/raft_applied"));
    assert!(!is_forwardable("runners/../cluster/secret"));
}
