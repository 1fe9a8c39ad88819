//! Join tokens: what an operator hands to a new node so it can join.
//!
//! A join token is not the cluster secret. It opens exactly one route,
//! `/internal/v1/cluster/exchange`, which trades it for the secret once the node joins; it
//! expires (default one hour), is used up after its number of uses (default one) and can be
//! revoked before that. A token seen later in a config file or a shell history is worth
//! nothing. The store keeps only its SHA-256, under `cluster/join_tokens/<id>`, so every
//! member can check and spend it (spending is a compare-and-set through Raft: two nodes
//! racing for a one-use token cannot both win).
//!
//! Format: `lgj_<id>_<secret>` (12 and 32 hex digits).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigStore, StoreError};

pub const JOIN_TOKEN_PREFIX: &str = "cluster/join_tokens/";
/// How long a token lives unless told otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The longest life a token may be given.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 86_400);
/// The most uses one token may be given.
pub const MAX_USES: u32 = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinTokenRecord {
    pub id: String,
    /// SHA-256 of the secret part, hex.
    pub hash: String,
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub uses_left: u32,
}

/// A token just made: the only time its secret part is known.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: String,
    pub record: JoinTokenRecord,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinTokenError {
    #[error(
        "not a join token (they look like lgj_<id>_<secret>; mint one with `lograft cluster token` on a member)"
    )]
    Malformed,
    #[error(
        "join token {0} is unknown, used up or revoked: mint a new one with `lograft cluster token` on a member"
    )]
    Unknown(String),
    #[error("join token {0} expired: mint a new one with `lograft cluster token` on a member")]
    Expired(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hash(secret: &str) -> String {
    crate::auth::sha256_hex(secret)
}

/// Delete `key` if it is still at `revision`.
async fn delete_at(store: &dyn ConfigStore, key: &str, revision: u64) -> Result<(), StoreError> {
    store
        .txn(vec![super::Op::Delete {
            key: key.to_string(),
            expected: Some(revision),
        }])
        .await
        .map(|_| ())
}

/// Whether `text` has the shape of a join token (not whether it is valid).
pub fn is_join_token(text: &str) -> bool {
    parse(text).is_some()
}

fn parse(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("lgj_")?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 12) && hex(secret, 32)).then_some((id, secret))
}

/// Make a token valid for `ttl` and `uses` joins.
pub async fn mint(
    store: &dyn ConfigStore,
    created_by: &str,
    ttl: Duration,
    uses: u32,
) -> Result<MintedToken, JoinTokenError> {
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(JoinTokenError::Invalid(format!(
            "ttl must be more than 0 and at most {} days",
            MAX_TTL.as_secs() / 86_400
        )));
    }
    if uses == 0 || uses > MAX_USES {
        return Err(JoinTokenError::Invalid(format!(
            "uses must be between 1 and {MAX_USES}"
        )));
    }
    let id = crate::auth::random_hex(6);
    let secret = crate::auth::random_hex(16);
    let created_at = now();
    let record = JoinTokenRecord {
        id: id.clone(),
        hash: hash(&secret),
        created_by: created_by.to_string(),
        created_at,
        expires_at: created_at + ttl.as_secs() as i64,
        uses_left: uses,
    };
    let value = serde_json::to_string(&record).expect("record serializes");
    store
        .put(&format!("{JOIN_TOKEN_PREFIX}{id}"), value, Some(0))
        .await?;
    Ok(MintedToken {
        token: format!("lgj_{id}_{secret}"),
        record,
    })
}

/// Tokens not expired (expired ones are listed too until they are pruned, marked by time).
pub fn list(store: &dyn ConfigStore) -> Result<Vec<JoinTokenRecord>, StoreError> {
    let mut records = Vec::new();
    for entry in store.list(JOIN_TOKEN_PREFIX)? {
        if let Ok(record) = serde_json::from_str::<JoinTokenRecord>(&entry.value) {
            records.push(record);
        }
    }
    records.sort_by_key(|r| r.created_at);
    Ok(records)
}

/// What the API and the CLI show of a token (never its secret part).
pub fn describe(record: &JoinTokenRecord) -> serde_json::Value {
    let time = |unix: i64| chrono::DateTime::from_timestamp(unix, 0).map(|t| t.to_rfc3339());
    serde_json::json!({
        "id": record.id,
        "created_by": record.created_by,
        "created_at": time(record.created_at),
        "expires_at": time(record.expires_at),
        "expired": record.expires_at <= now(),
        "uses_left": record.uses_left,
    })
}

/// Revoke a token before it is used up; false if there was none of that id.
pub async fn revoke(store: &dyn ConfigStore, id: &str) -> Result<bool, StoreError> {
    let key = format!("{JOIN_TOKEN_PREFIX}{id}");
    if store.get(&key)?.is_none() {
        return Ok(false);
    }
    store.delete(&key).await?;
    Ok(true)
}

/// Spend one use of `token`: it must be known, unexpired and not used up. Expired and used-up
/// tokens are deleted on the way.
pub async fn redeem(
    store: &dyn ConfigStore,
    token: &str,
) -> Result<JoinTokenRecord, JoinTokenError> {
    let (id, secret) = parse(token).ok_or(JoinTokenError::Malformed)?;
    let key = format!("{JOIN_TOKEN_PREFIX}{id}");
    loop {
        let entry = store
            .get(&key)?
            .ok_or_else(|| JoinTokenError::Unknown(id.to_string()))?;
        let mut record: JoinTokenRecord = serde_json::from_str(&entry.value)
            .map_err(|_| JoinTokenError::Unknown(id.to_string()))?;
        if !crate::auth::constant_time_eq(hash(secret).as_bytes(), record.hash.as_bytes()) {
            return Err(JoinTokenError::Unknown(id.to_string()));
        }
        if record.expires_at <= now() {
            let _ = delete_at(store, &key, entry.mod_revision).await;
            return Err(JoinTokenError::Expired(id.to_string()));
        }
        if record.uses_left == 0 {
            return Err(JoinTokenError::Unknown(id.to_string()));
        }
        record.uses_left -= 1;
        let spent = if record.uses_left == 0 {
            delete_at(store, &key, entry.mod_revision).await
        } else {
            let value = serde_json::to_string(&record).expect("record serializes");
            store
                .put(&key, value, Some(entry.mod_revision))
                .await
                .map(|_| ())
        };
        match spent {
            Ok(()) => return Ok(record),
            // Someone else spent a use at the same moment: look again.
            Err(StoreError::Conflict { .. }) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::LocalStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_expire_are_used_up_and_can_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let one = mint(&store, "user:admin", DEFAULT_TTL, 1).await.unwrap();
        assert!(is_join_token(&one.token));
        assert!(!is_join_token("lgc_0123"));
        // The store holds no secret part.
        let stored = store
            .get(&format!("{JOIN_TOKEN_PREFIX}{}", one.record.id))
            .unwrap()
            .unwrap();
        assert!(!stored.value.contains(one.token.rsplit('_').next().unwrap()));

        redeem(&store, &one.token).await.unwrap();
        assert!(matches!(
            redeem(&store, &one.token).await,
            Err(JoinTokenError::Unknown(_))
        ));

        let two = mint(&store, "user:admin", DEFAULT_TTL, 2).await.unwrap();
        // The right id with a wrong secret is refused and spends nothing.
        let forged = format!("lgj_{}_{}", two.record.id, "0".repeat(32));
        assert!(matches!(
            redeem(&store, &forged).await,
            Err(JoinTokenError::Unknown(_))
        ));
        assert_eq!(redeem(&store, &two.token).await.unwrap().uses_left, 1);
        assert!(revoke(&store, &two.record.id).await.unwrap());
        assert!(matches!(
            redeem(&store, &two.token).await,
            Err(JoinTokenError::Unknown(_))
        ));

        let old = mint(&store, "user:admin", DEFAULT_TTL, 1).await.unwrap();
        let key = format!("{JOIN_TOKEN_PREFIX}{}", old.record.id);
        let mut record = old.record.clone();
        record.expires_at = now() - 1;
        store
            .put(&key, serde_json::to_string(&record).unwrap(), None)
            .await
            .unwrap();
        assert!(matches!(
            redeem(&store, &old.token).await,
            Err(JoinTokenError::Expired(_))
        ));
        assert!(
            store.get(&key).unwrap().is_none(),
            "an expired token is pruned"
        );

        assert!(matches!(
            redeem(&store, "lgc_secret").await,
            Err(JoinTokenError::Malformed)
        ));
        assert!(mint(&store, "x", Duration::ZERO, 1).await.is_err());
        assert!(mint(&store, "x", DEFAULT_TTL, 0).await.is_err());
    }
}
