//! Users, sessions, API tokens and roles.
//!
//! * **Users** have an Argon2id password hash. On the first start with no users, `admin` is
//!   created with a random password written to `data_dir/initial-admin-password` (mode 0600):
//!   there is no default password anywhere.
//! * **Sessions** (UI login) live in memory with an expiry; the cookie is HttpOnly and
//!   SameSite=Strict. Failed logins are rate-limited per client address.
//! * **API tokens** are `lgr_<id>_<secret>`: 256 random bits, shown once, stored as SHA-256.
//!   Every request looks the token up, so a revoked token stops working at once.
//! * **Roles** are ordered: `reader` (search, read status) < `operator` (+ runners,
//!   deployments) < `admin` (+ users, tokens, membership, audit).
//!
//! Users and tokens live in the [`ConfigStore`] (`auth/users/<name>`, `auth/tokens/<id>`), so
//! in a cluster they are replicated with the rest of the control plane.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cluster::{ConfigStore, StoreError};

pub const USER_PREFIX: &str = "auth/users/";
/// Store key of the cluster secret (replicated: every node of a cluster shares it).
pub const CLUSTER_SECRET_KEY: &str = "cluster/secret";

/// The secret that node-to-node and Raft calls carry. Generated on the first start.
#[derive(Clone)]
pub struct ClusterSecret(Arc<String>);

impl ClusterSecret {
    /// Load the secret from the store, creating it on the first start.
    pub async fn load_or_create(store: &dyn ConfigStore) -> Result<ClusterSecret, AuthError> {
        if let Some(entry) = store.get(CLUSTER_SECRET_KEY)? {
            let secret: String = serde_json::from_str(&entry.value).map_err(|e| {
                AuthError::Invalid(format!("stored cluster secret is corrupt: {e}"))
            })?;
            return Ok(ClusterSecret(Arc::new(secret)));
        }
        let secret = format!("lgc_{}", random_hex(32));
        let json = serde_json::to_string(&secret).expect("secret serializes");
        match store.put(CLUSTER_SECRET_KEY, json, Some(0)).await {
            Ok(_) => Ok(ClusterSecret(Arc::new(secret))),
            // Created meanwhile by someone else: use theirs.
            Err(StoreError::Conflict { .. }) => Box::pin(Self::load_or_create(store)).await,
            Err(err) => Err(err.into()),
        }
    }

    pub fn matches(&self, presented: &str) -> bool {
        !presented.is_empty() && constant_time_eq(presented.as_bytes(), self.0.as_bytes())
    }

    /// The secret itself (`lograft cluster token`).
    pub fn reveal(&self) -> &str {
        &self.0
    }
}
pub const TOKEN_PREFIX: &str = "auth/tokens/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reader,
    Operator,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Role, String> {
        match text {
            "reader" => Ok(Role::Reader),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (use reader, operator or admin)"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Principal {
    /// `user:<name>` or `token:<name>`.
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub secret_sha256: String,
    pub created: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many failed logins from {0}; try again in a minute")]
    RateLimited(IpAddr),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("user {0:?} does not exist")]
    NoSuchUser(String),
    #[error("token {0:?} does not exist")]
    NoSuchToken(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Session {
    principal: Principal,
    expires: Instant,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub session_ttl: Duration,
    /// Failed logins allowed per client address per minute.
    pub login_attempts_per_minute: usize,
}

pub struct Auth {
    store: Arc<dyn ConfigStore>,
    settings: AuthSettings,
    sessions: Mutex<HashMap<String, Session>>,
    failed_logins: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Equal without an early exit, so the time taken does not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Invalid(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Invalid(e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub fn validate_name(kind: &str, name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "{kind} name {name:?} must be 1-64 characters of letters, digits, '-', '_', '.' or '@'"
        )))
    }
}

fn validate_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < 12 {
        return Err(AuthError::Invalid(
            "passwords must have at least 12 characters".into(),
        ));
    }
    Ok(())
}

impl Auth {
    pub fn new(store: Arc<dyn ConfigStore>, settings: AuthSettings) -> Auth {
        Auth {
            store,
            settings,
            sessions: Mutex::new(HashMap::new()),
            failed_logins: Mutex::new(HashMap::new()),
        }
    }

    pub fn session_ttl(&self) -> Duration {
        self.settings.session_ttl
    }

    /// First start: create `admin` with a random password if there are no users. Returns the
    /// password so the caller can write it to the 0600 file and log it once.
    pub async fn bootstrap_admin(&self) -> Result<Option<String>, AuthError> {
        if !self.store.list(USER_PREFIX)?.is_empty() {
            return Ok(None);
        }
        let password = random_hex(16);
        self.add_user("admin", Role::Admin, &password).await?;
        Ok(Some(password))
    }

    pub async fn add_user(&self, name: &str, role: Role, password: &str) -> Result<(), AuthError> {
        validate_name("user", name)?;
        validate_password(password)?;
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| AuthError::Invalid(e.to_string()))??;
        let record = UserRecord {
            name: name.to_string(),
            role,
            password_hash: hash,
            created: chrono::Utc::now().to_rfc3339(),
        };
        let json = serde_json::to_string(&record).expect("user serializes");
        match self
            .store
            .put(&format!("{USER_PREFIX}{name}"), json, Some(0))
            .await
        {
            Err(StoreError::Conflict { .. }) => Err(AuthError::UserExists(name.to_string())),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), AuthError> {
        validate_password(password)?;
        let key = format!("{USER_PREFIX}{name}");
        let entry = self
            .store
            .get(&key)?
            .ok_or_else(|| AuthError::NoSuchUser(name.to_string()))?;
        let mut record: UserRecord = serde_json::from_str(&entry.value)
            .map_err(|e| AuthError::Invalid(format!("stored user {name:?} is corrupt: {e}")))?;
        let password = password.to_string();
        record.password_hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| AuthError::Invalid(e.to_string()))??;
        let json = serde_json::to_string(&record).expect("user serializes");
        self.store.put(&key, json, Some(entry.mod_revision)).await?;
        // Existing sessions of this user end: a password change is often a response to a leak.
        self.sessions
            .lock()
            .expect("sessions lock")
            .retain(|_, session| session.principal.name != format!("user:{name}"));
        Ok(())
    }

    pub async fn delete_user(&self, name: &str) -> Result<(), AuthError> {
        match self.store.delete(&format!("{USER_PREFIX}{name}")).await? {
            Some(_) => {
                self.sessions
                    .lock()
                    .expect("sessions lock")
                    .retain(|_, session| session.principal.name != format!("user:{name}"));
                Ok(())
            }
            None => Err(AuthError::NoSuchUser(name.to_string())),
        }
    }

    pub fn users(&self) -> Result<Vec<(String, Role)>, AuthError> {
        Ok(self
            .store
            .list(USER_PREFIX)?
            .into_iter()
            .filter_map(|entry| serde_json::from_str::<UserRecord>(&entry.value).ok())
            .map(|user| (user.name, user.role))
            .collect())
    }

    /// Create a token; the returned secret string is shown once and never stored.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
    ) -> Result<(TokenRecord, String), AuthError> {
        validate_name("token", name)?;
        let id = random_hex(4);
        let secret = random_hex(32);
        let record = TokenRecord {
            id: id.clone(),
            name: name.to_string(),
            role,
            secret_sha256: sha256_hex(&secret),
            created: chrono::Utc::now().to_rfc3339(),
        };
        let json = serde_json::to_string(&record).expect("token serializes");
        self.store
            .put(&format!("{TOKEN_PREFIX}{id}"), json, Some(0))
            .await?;
        Ok((record, format!("lgr_{id}_{secret}")))
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), AuthError> {
        match self.store.delete(&format!("{TOKEN_PREFIX}{id}")).await? {
            Some(_) => Ok(()),
            None => Err(AuthError::NoSuchToken(id.to_string())),
        }
    }

    pub fn tokens(&self) -> Result<Vec<TokenRecord>, AuthError> {
        Ok(self
            .store
            .list(TOKEN_PREFIX)?
            .into_iter()
            .filter_map(|entry| serde_json::from_str::<TokenRecord>(&entry.value).ok())
            .collect())
    }

    /// The principal of an API token, if it exists (looked up on every call: revocation is
    /// immediate).
    pub fn verify_token(&self, token: &str) -> Option<Principal> {
        let rest = token.strip_prefix("lgr_")?;
        let (id, secret) = rest.split_once('_')?;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let entry = self.store.get(&format!("{TOKEN_PREFIX}{id}")).ok()??;
        let record: TokenRecord = serde_json::from_str(&entry.value).ok()?;
        constant_time_eq(
            sha256_hex(secret).as_bytes(),
            record.secret_sha256.as_bytes(),
        )
        .then(|| Principal {
            name: format!("token:{}", record.name),
            role: record.role,
        })
    }

    /// Check a user's password (Argon2: call off the async workers).
    pub fn verify_user(&self, name: &str, password: &str) -> Option<Principal> {
        let entry = self.store.get(&format!("{USER_PREFIX}{name}")).ok()??;
        let record: UserRecord = serde_json::from_str(&entry.value).ok()?;
        verify_password(password, &record.password_hash).then(|| Principal {
            name: format!("user:{}", record.name),
            role: record.role,
        })
    }

    /// Log in: check the rate limit, then the password; returns a new session id.
    pub fn login(
        &self,
        client: IpAddr,
        name: &str,
        password: &str,
    ) -> Result<(String, Principal), AuthError> {
        let window = Duration::from_secs(60);
        {
            let mut failed = self.failed_logins.lock().expect("login lock");
            let attempts = failed.entry(client).or_default();
            while attempts.front().is_some_and(|at| at.elapsed() > window) {
                attempts.pop_front();
            }
            if attempts.len() >= self.settings.login_attempts_per_minute {
                return Err(AuthError::RateLimited(client));
            }
        }
        match self.verify_user(name, password) {
            Some(principal) => {
                let id = random_hex(32);
                self.sessions.lock().expect("sessions lock").insert(
                    id.clone(),
                    Session {
                        principal: principal.clone(),
                        expires: Instant::now() + self.settings.session_ttl,
                    },
                );
                Ok((id, principal))
            }
            None => {
                self.failed_logins
                    .lock()
                    .expect("login lock")
                    .entry(client)
                    .or_default()
                    .push_back(Instant::now());
                Err(AuthError::BadCredentials)
            }
        }
    }

    pub fn session(&self, id: &str) -> Option<Principal> {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        match sessions.get(id) {
            Some(session) if session.expires > Instant::now() => Some(session.principal.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn logout(&self, id: &str) {
        self.sessions.lock().expect("sessions lock").remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_tokens_sessions_and_rate_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ConfigStore> =
            Arc::new(crate::cluster::LocalStore::open(dir.path()).unwrap());
        let auth = Auth::new(
            store,
            AuthSettings {
                session_ttl: Duration::from_millis(300),
                login_attempts_per_minute: 3,
            },
        );
        let password = auth
            .bootstrap_admin()
            .await
            .unwrap()
            .expect("first start creates admin");
        assert!(auth.bootstrap_admin().await.unwrap().is_none(), "only once");
        assert!(auth.add_user("bob", Role::Reader, "short").await.is_err());
        auth.add_user("bob", Role::Reader, "correct horse battery")
            .await
            .unwrap();
        assert!(matches!(
            auth.add_user("bob", Role::Reader, "another long one").await,
            Err(AuthError::UserExists(_))
        ));

        let client: IpAddr = "127.0.0.9".parse().unwrap();
        let (session, principal) = auth.login(client, "admin", &password).unwrap();
        assert_eq!(principal.role, Role::Admin);
        assert_eq!(auth.session(&session).unwrap().name, "user:admin");
        std::thread::sleep(Duration::from_millis(400));
        assert!(auth.session(&session).is_none(), "sessions expire");

        for _ in 0..3 {
            assert!(matches!(
                auth.login(client, "bob", "wrong password!!"),
                Err(AuthError::BadCredentials)
            ));
        }
        assert!(matches!(
            auth.login(client, "bob", "correct horse battery"),
            Err(AuthError::RateLimited(_))
        ));
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        assert!(auth.login(other, "bob", "correct horse battery").is_ok());

        let (record, token) = auth.create_token("ci", Role::Operator).await.unwrap();
        assert_eq!(auth.verify_token(&token).unwrap().role, Role::Operator);
        assert!(
            auth.verify_token(&token.replace(&record.id, "00000000"))
                .is_none()
        );
        assert!(auth.verify_token(&format!("{token}x")).is_none());
        assert!(
            !serde_json::to_string(&auth.tokens().unwrap())
                .unwrap()
                .contains(&token[13..])
        );
        auth.revoke_token(&record.id).await.unwrap();
        assert!(
            auth.verify_token(&token).is_none(),
            "revocation is immediate"
        );
    }
}
