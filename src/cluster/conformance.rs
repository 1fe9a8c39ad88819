//! The behaviour every [`ConfigStore`] shows, as a suite generic over the trait. CI runs it
//! against the sled KV engine ([`super::LocalStore`]) and the Raft store ([`super::Cluster`],
//! one node); the etcd adapter runs it against a real etcd.

use std::time::Duration;

use super::{ConfigStore, KvEntry, Op, StoreError, WatchEvent};

/// Run every check on an empty store.
pub async fn run(store: &dyn ConfigStore) {
    revisions_increase_and_entries_remember_theirs(store).await;
    compare_and_set(store).await;
    a_transaction_is_all_or_nothing(store).await;
    a_watch_sees_every_change_after_its_listing(store).await;
    leases_have_one_holder_until_they_expire(store).await;
    a_read_after_the_barrier_sees_every_acknowledged_write(store).await;
}

async fn revisions_increase_and_entries_remember_theirs(store: &dyn ConfigStore) {
    let start = store.revision();
    let r1 = store.put("suite/a", "1".into(), None).await.unwrap();
    let r2 = store.put("suite/b", "2".into(), None).await.unwrap();
    let r3 = store.put("suite/a", "3".into(), None).await.unwrap();
    assert!(start < r1 && r1 < r2 && r2 < r3, "{start} {r1} {r2} {r3}");
    assert_eq!(store.revision(), r3);
    let a = store.get("suite/a").unwrap().unwrap();
    assert_eq!((a.value.as_str(), a.mod_revision), ("3", r3));
    let listed: Vec<String> = store
        .list("suite/")
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(listed, ["suite/a", "suite/b"]);
    let deleted = store.delete("suite/b").await.unwrap().unwrap();
    assert!(deleted > r3);
    assert_eq!(store.get("suite/b").unwrap(), None);
    assert_eq!(
        store.delete("suite/b").await.unwrap(),
        None,
        "deleting nothing"
    );
}

async fn compare_and_set(store: &dyn ConfigStore) {
    let created = store.put("cas/k", "v1".into(), Some(0)).await.unwrap();
    let again = store.put("cas/k", "v2".into(), Some(0)).await;
    assert!(
        matches!(again, Err(StoreError::Conflict { expected: 0, found, .. }) if found == created),
        "{again:?}"
    );
    let stale = store.put("cas/k", "v2".into(), Some(created + 100)).await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    let updated = store
        .put("cas/k", "v2".into(), Some(created))
        .await
        .unwrap();
    assert_eq!(store.get("cas/k").unwrap().unwrap().mod_revision, updated);
}

async fn a_transaction_is_all_or_nothing(store: &dyn ConfigStore) {
    let base = store.put("txn/x", "x".into(), None).await.unwrap();
    let before = store.revision();
    let failing = vec![
        Op::Put {
            key: "txn/new".into(),
            value: "n".into(),
            expected: Some(0),
        },
        Op::Put {
            key: "txn/x".into(),
            value: "changed".into(),
            expected: Some(base + 50),
        },
    ];
    let result = store.txn(failing).await.unwrap();
    assert!(result.conflict.is_some(), "{result:?}");
    assert_eq!(
        store.revision(),
        before,
        "a failed transaction takes no revision"
    );
    assert_eq!(
        store.get("txn/new").unwrap(),
        None,
        "nothing of it was written"
    );
    assert_eq!(store.get("txn/x").unwrap().unwrap().value, "x");
    let ok = vec![
        Op::Put {
            key: "txn/new".into(),
            value: "n".into(),
            expected: Some(0),
        },
        Op::Delete {
            key: "txn/x".into(),
            expected: Some(base),
        },
    ];
    let result = store.txn(ok).await.unwrap();
    let revision = result.revision.expect("applied");
    assert_eq!(
        store.get("txn/new").unwrap().unwrap().mod_revision,
        revision,
        "every operation at one revision"
    );
    assert_eq!(store.get("txn/x").unwrap(), None);
}

async fn a_watch_sees_every_change_after_its_listing(store: &dyn ConfigStore) {
    store.put("watch/0", "before".into(), None).await.unwrap();
    let mut watch = store.watch("watch/").unwrap();
    let listed: Vec<KvEntry> = watch.entries.clone();
    assert_eq!(listed.len(), 1);
    let mut written = Vec::new();
    for i in 1..=20 {
        written.push(
            store
                .put(&format!("watch/{i}"), i.to_string(), None)
                .await
                .unwrap(),
        );
        store.put("elsewhere/x", i.to_string(), None).await.unwrap();
    }
    let deleted = store.delete("watch/3").await.unwrap().unwrap();
    written.push(deleted);
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .expect("watch events arrive")
            .expect("no lag");
        match event {
            WatchEvent::Reset { .. } => panic!("unexpected reset"),
            event => {
                assert!(event.key().starts_with("watch/"), "{event:?}");
                assert!(
                    event.revision() > watch.revision,
                    "only changes after the listing"
                );
                seen.push(event.revision());
            }
        }
    }
    assert_eq!(seen, written, "every change, in order, none missing");
    assert!(matches!(
        watch
            .next()
            .now_or_never_after(Duration::from_millis(50))
            .await,
        None
    ));
}

async fn leases_have_one_holder_until_they_expire(store: &dyn ConfigStore) {
    let ttl = Duration::from_millis(800);
    let a = store
        .acquire_lease("executor", "node-a", ttl)
        .await
        .unwrap();
    assert_eq!(a.as_ref().map(|l| l.holder.as_str()), Some("node-a"));
    assert_eq!(
        store
            .acquire_lease("executor", "node-b", ttl)
            .await
            .unwrap(),
        None
    );
    // The holder renews.
    let renewed = store
        .acquire_lease("executor", "node-a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(renewed.expires_unix_ms >= a.unwrap().expires_unix_ms);
    // Released, another takes it.
    store.release_lease("executor", "node-b").await.unwrap();
    assert_eq!(
        store
            .acquire_lease("executor", "node-b", ttl)
            .await
            .unwrap(),
        None
    );
    store.release_lease("executor", "node-a").await.unwrap();
    let b = store
        .acquire_lease("executor", "node-b", ttl)
        .await
        .unwrap();
    assert_eq!(b.map(|l| l.holder), Some("node-b".to_string()));
    // node-b stops renewing: after the ttl, node-a gets it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(lease) = store
            .acquire_lease("executor", "node-a", ttl)
            .await
            .unwrap()
        {
            assert_eq!(lease.holder, "node-a");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_read_after_the_barrier_sees_every_acknowledged_write(store: &dyn ConfigStore) {
    let revision = store.put("barrier/k", "v".into(), None).await.unwrap();
    let reached = store.read_barrier().await.unwrap();
    assert!(reached >= revision);
    let entry = store.get_linearizable("barrier/k").await.unwrap().unwrap();
    assert_eq!(entry.mod_revision, revision);
}

/// When the whole store is replaced under a watch (a Raft snapshot installed; an etcd
/// compaction past the watch), the watcher gets `Reset` and lists again, seeing the new state.
/// `replace` replaces everything with one entry `reset/k`.
pub async fn a_reset_tells_watchers_to_list_again(
    store: &dyn ConfigStore,
    replace: &(dyn Fn() + Sync),
) {
    store.put("reset/old", "1".into(), None).await.unwrap();
    let mut watch = store.watch("reset/").unwrap();
    replace();
    let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("an event")
        .expect("no lag");
    assert!(matches!(event, WatchEvent::Reset { .. }), "{event:?}");
    let keys: Vec<String> = store
        .watch("reset/")
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["reset/k"]);
}

/// `next()` that gives up after `wait` (the suite checks no stray events arrive).
trait NowOrNever {
    async fn now_or_never_after(self, wait: Duration) -> Option<()>;
}

impl<F: std::future::Future> NowOrNever for F {
    async fn now_or_never_after(self, wait: Duration) -> Option<()> {
        tokio::time::timeout(wait, self).await.ok().map(|_| ())
    }
}
