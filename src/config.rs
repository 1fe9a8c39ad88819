//! Node configuration: a TOML file where every key is optional.
//!
//! The file is read into [`RawConfig`] (`deny_unknown_fields`, one documented field per key),
//! then validated into [`NodeConfig`], the type the rest of the code uses. Every error names
//! the file, the key and what is wrong, e.g.
//! `lograft.toml: queue.max_bytes: "12 parsecs" is not a size (use e.g. 268435456 or "256MiB")`.
//!
//! ```toml
//! data_dir = "./lograft-data"
//! listen = "127.0.0.1:7700"
//! [collect]
//! allowed_paths = ["/var/log/**"]
//! [queue]
//! max_bytes = "64MiB"
//! [index]
//! retention_days = 7
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};

/// The node config as written in the file. Field doc comments are the user documentation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where the queue, the index and the local config store live (made 0700, its files
    /// 0600). A relative path is relative to this file's directory, so the node and the CLI
    /// find the same one from any working directory. Default `./lograft-data` (relative to
    /// the working directory).
    pub data_dir: Option<PathBuf>,
    /// Address of the HTTP API and UI. Default `127.0.0.1:7700`.
    pub listen: Option<String>,
    /// Name of this node in records and in the cluster: 1-63 characters of letters, digits,
    /// `.`, `_` and `-`. Default: the host name.
    pub node_name: Option<String>,
    #[serde(default)]
    pub collect: RawCollect,
    #[serde(default)]
    pub queue: RawQueue,
    #[serde(default)]
    pub index: RawIndex,
    #[serde(default)]
    pub api: RawApi,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub deploy: RawDeploy,
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub cluster: RawCluster,
    #[serde(default)]
    pub compat: RawCompat,
}

/// Compatibility with the tools lograft replaces.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompat {
    #[serde(default)]
    pub logkit: RawLogkit,
}

/// logkit's API (`/logkit/...`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogkit {
    /// What this node is to logkit's cluster API: `"both"` (default: it answers as a master
    /// and is listed among the slaves), `"master"` (answers as a master, is not a slave: cluster
    /// pushes never land here) or `"slave"` (is a slave only: `ismaster` is false and its
    /// cluster routes see no slaves, as on a logkit slave).
    pub role: Option<String>,
    /// The role of a request without credentials on `/logkit/*` from `anonymous_from`:
    /// `"reader"` or `"operator"`. Off by default (every request needs a token). The one opt-in
    /// exception to "every route needs a session or a token", for logkit clients that send
    /// none; allow only networks you trust.
    pub anonymous_role: Option<String>,
    /// Networks (CIDR, e.g. `"10.0.0.0/8"`) whose requests may use `anonymous_role`, and the
    /// only addresses a logkit slave may register from and with.
    pub anonymous_from: Option<Vec<String>>,
    /// A logkit master to register with, as a logkit slave does (e.g.
    /// `"http://10.0.0.5:3000"`): this node then registers every 15 s with its URL and tag, and
    /// answers the master's calls on its logkit API (the master sends no token: put its
    /// address in `anonymous_from` with `anonymous_role = "operator"`). For a fleet moving from
    /// logkit to lograft one node at a time.
    pub master_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// `embedded` (Raft, the default) or `etcd` (`--features etcd`).
    pub backend: Option<String>,
    /// The URL other nodes reach this node at. Default: `http(s)://<listen>`.
    pub advertise_url: Option<String>,
    /// On a fresh data dir, join the cluster of this node (a URL) instead of starting a new one.
    pub join: Option<String>,
    /// The cluster token for `join` (`lograft cluster token` on a member).
    pub join_token: Option<String>,
    /// This node's tag when it first registers (logkit's tag). Default empty.
    pub tag: Option<String>,
    /// How many nodes vote (the first ones to join); later ones are learners. 1 to 5, default 3.
    pub voters: Option<usize>,
    /// How often this node tells the others it is alive. Default `5s`.
    pub heartbeat_interval: Option<String>,
    /// A node not heard from for this long is `bad`. Default `30s`.
    pub bad_after: Option<String>,
    /// A node not heard from for this long is `lost`. Default `60s`.
    pub lost_after: Option<String>,
    /// How long a search waits for each other node. Default `10s`.
    pub search_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// Request bodies larger than this are refused with 413. Default `1MiB`.
    pub max_body_bytes: Option<SizeValue>,
    /// Request bodies of network inputs (`_bulk`, `/api/v1/ingest/...`). Default `64MiB`.
    pub max_ingest_bytes: Option<SizeValue>,
    /// Searches running at once; more wait up to 10 s, then get 503. Default 4.
    pub search_concurrency: Option<usize>,
    /// A request taking longer is answered 408. Default `30s`.
    pub request_timeout: Option<String>,
    /// A client must send a request's headers within this, or its connection is closed; it
    /// also bounds the TLS handshake and the wait for the next request on a kept-alive
    /// connection. Real clients send headers in milliseconds; slowloris clients never finish
    /// them. Default `10s`.
    pub header_read_timeout: Option<String>,
    /// A connection that moved no bytes for this long is closed when no request is being
    /// answered on it, or when its client stopped reading the answer. Default `60s`.
    pub idle_timeout: Option<String>,
    /// Open connections at most; more are closed when accepted. Lowered at start to half the
    /// open-file limit when it does not fit. Default 1024 (shippers and browsers keep a few
    /// each; a node serves tens of them).
    pub max_connections: Option<usize>,
    /// Open connections from one client address at most, so one client cannot take every
    /// slot. Default 128 (a browser opens 6, a shipper a few per worker).
    pub max_connections_per_ip: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// How long a UI login lasts. Default `12h`.
    pub session_ttl: Option<String>,
    /// Failed logins allowed per client address per minute. Default 5.
    pub login_attempts_per_minute: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeploy {
    /// At most one deployment started at a time (seed 002). Default true; false lets several
    /// run as long as no two place the same runner on the same node.
    pub one_started: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Serve `/metrics` without credentials (for a Prometheus on a trusted network). Default false.
    pub public: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain of this node.
    pub cert: PathBuf,
    /// PEM private key of this node.
    pub key: PathBuf,
    /// PEM CA that node-to-node calls verify peers against. Default: the system roots.
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCollect {
    /// Globs of the files this node may read. The only authority on what a runner may open;
    /// never replicated. Default `["/var/log/**"]`.
    pub allowed_paths: Option<Vec<String>>,
    /// Create the `default` runner on the first start, reading `default_paths`. Default true.
    pub default_runner: Option<bool>,
    /// Globs the default runner reads (one runner per glob: `default`, `default-2`, ...); each
    /// must be inside `allowed_paths`, or the node warns at start and collects nothing from
    /// it. Default `["/var/log/*.log"]`.
    pub default_paths: Option<Vec<String>>,
    /// Lines longer than this are cut, flagged `truncated` and counted. Default 1 MiB.
    pub max_line_bytes: Option<SizeValue>,
    /// A last line without newline is emitted after the file was idle this long. Default `10s`.
    pub partial_line_timeout: Option<String>,
    /// How often runners rescan their globs (file events only make them scan sooner). Default `1s`.
    pub scan_interval: Option<String>,
    /// Where runners may write (logkit's `file` sender): globs, absolute. Empty by default. A
    /// path also inside `allowed_paths` is refused: a runner must not forge the logs collected.
    pub write_paths: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueue {
    /// `embedded` (sled, the default) or `kafka` (needs a build with `--features kafka`).
    pub backend: Option<String>,
    /// Cap on the bytes waiting in the queue. When reached, runners stop reading
    /// (the data stays in the files) until the indexer catches up. Default `64MiB`.
    pub max_bytes: Option<SizeValue>,
    /// Free space kept on the data dir's disk. Below it the node stops taking data in
    /// (runners wait, HTTP inputs answer 429) and stops indexing, says `disk full` in its
    /// status and `/health`, and resumes by itself when space returns. Default `100MiB`.
    pub min_free_bytes: Option<SizeValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIndex {
    /// `embedded` (tantivy, the default) or `elasticsearch` (`--features elasticsearch`).
    pub backend: Option<String>,
    /// Commit new documents at least this often. Default `1s`.
    pub commit_interval: Option<String>,
    /// Day partitions older than this many days are dropped. Default 7; 0 keeps everything.
    pub retention_days: Option<u32>,
    /// The oldest day partitions are dropped while the index is larger. Default 0 (no limit).
    pub retention_max_bytes: Option<SizeValue>,
    /// Memory budget of the index writer. Default `128MiB`.
    pub writer_memory: Option<SizeValue>,
    /// How often retention is applied. Default `60s`.
    pub retention_interval: Option<String>,
    /// An event time later than the ingest time plus this is not believed: the record keeps
    /// its ingest time and is flagged `future_time`. Default `1d`.
    pub future_grace: Option<String>,
    /// Most day partitions the index holds; a record for a new day beyond it is counted as
    /// dropped (`reason="partition_cap"`). Default 1000. Each partition holds open files and
    /// memory maps.
    pub max_partitions: Option<u32>,
}

/// A size written as a number of bytes or a string with a unit (`"256MiB"`, `"1GB"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

/// The validated config used by the rest of the node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub node_name: String,
    pub collect: CollectConfig,
    pub queue: QueueConfig,
    pub index: IndexConfig,
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub metrics: MetricsConfig,
    pub deploy: DeployConfig,
    pub tls: Option<TlsConfig>,
    pub cluster: ClusterConfig,
    pub logkit: LogkitConfig,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeployConfig {
    pub one_started: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterConfig {
    pub backend: ClusterBackend,
    pub advertise_url: String,
    pub join: Option<String>,
    #[serde(skip_serializing)]
    pub join_token: Option<String>,
    pub tag: String,
    /// Published in this node's record (see `NodeRecord::labels`); set by the layers above,
    /// not read from the file.
    pub labels: std::collections::BTreeMap<String, String>,
    pub voters: usize,
    #[serde(with = "duration_text")]
    pub heartbeat_interval: Duration,
    #[serde(with = "duration_text")]
    pub bad_after: Duration,
    #[serde(with = "duration_text")]
    pub lost_after: Duration,
    #[serde(with = "duration_text")]
    pub search_timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiConfig {
    pub max_body_bytes: u64,
    pub max_ingest_bytes: u64,
    pub search_concurrency: usize,
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    #[serde(with = "duration_text")]
    pub header_read_timeout: Duration,
    #[serde(with = "duration_text")]
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuthConfig {
    #[serde(with = "duration_text")]
    pub session_ttl: Duration,
    pub login_attempts_per_minute: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsConfig {
    pub public: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
}

/// `[compat.logkit]`.
#[derive(Debug, Clone, Serialize)]
pub struct LogkitConfig {
    pub role: LogkitRole,
    pub anonymous_role: Option<crate::auth::Role>,
    pub anonymous_from: Vec<Cidr>,
    pub master_url: Option<String>,
}

/// See [`RawLogkit::role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogkitRole {
    Both,
    Master,
    Slave,
}

impl LogkitRole {
    pub fn as_str(self) -> &'static str {
        match self {
            LogkitRole::Both => "both",
            LogkitRole::Master => "master",
            LogkitRole::Slave => "slave",
        }
    }
}

/// An IP network: `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: std::net::IpAddr,
    pub prefix: u8,
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}/{}", self.network, self.prefix))
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: std::net::IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not a network like \"10.0.0.0/8\""))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0-{max}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.network, ip) {
            (std::net::IpAddr::V4(net), std::net::IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (std::net::IpAddr::V6(net), std::net::IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectConfig {
    pub allowed_paths: Vec<String>,
    pub write_paths: Vec<String>,
    pub default_runner: bool,
    pub default_paths: Vec<String>,
    pub max_line_bytes: u64,
    #[serde(with = "duration_text")]
    pub partial_line_timeout: Duration,
    #[serde(with = "duration_text")]
    pub scan_interval: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueConfig {
    pub backend: QueueBackend,
    pub max_bytes: u64,
    pub min_free_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexConfig {
    pub backend: IndexBackend,
    #[serde(with = "duration_text")]
    pub commit_interval: Duration,
    pub retention_days: u32,
    pub retention_max_bytes: u64,
    pub writer_memory: u64,
    #[serde(with = "duration_text")]
    pub retention_interval: Duration,
    #[serde(with = "duration_text")]
    pub future_grace: Duration,
    pub max_partitions: u32,
}

/// Which engine holds the queue (`[queue] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackend {
    #[default]
    Embedded,
    Kafka,
}

/// Which engine holds the index (`[index] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IndexBackend {
    #[default]
    Embedded,
    Elasticsearch,
}

/// Which engine holds the config store and membership (`[cluster] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClusterBackend {
    #[default]
    Embedded,
    Etcd,
}

/// One of `choices` by name; the error lists them.
fn parse_choice<T: Copy + Default>(
    value: Option<String>,
    choices: &[(&str, T)],
) -> Result<T, String> {
    let Some(value) = value else {
        return Ok(T::default());
    };
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, choice)| *choice)
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
            format!("{value:?} is not one of {}", names.join(", "))
        })
}

pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./lograft-data")
}
pub fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7700))
}
pub fn default_allowed_paths() -> Vec<String> {
    vec!["/var/log/**".to_string()]
}
pub fn default_default_paths() -> Vec<String> {
    vec!["/var/log/*.log".to_string()]
}
/// Longest `node_name`: a DNS label (it is also part of the CLI token's name).
pub const MAX_NODE_NAME_CHARS: usize = 63;
pub const DEFAULT_MAX_LINE_BYTES: u64 = 1024 * 1024;
/// The files are the real buffer (runners stop reading when the queue is full); the queue only
/// needs to hold work in flight. sled takes a few times this on disk.
pub const DEFAULT_QUEUE_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Free space kept on the data dir's disk (`queue.min_free_bytes`).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 100 * 1024 * 1024;
pub const DEFAULT_WRITER_MEMORY: u64 = 128 * 1024 * 1024;
pub const DEFAULT_RETENTION_DAYS: u32 = 7;
pub const DEFAULT_MAX_PARTITIONS: u32 = 1000;

impl Default for NodeConfig {
    fn default() -> Self {
        RawConfig::default()
            .resolve(Path::new("<defaults>"))
            .expect("embedded defaults are valid")
    }
}

impl NodeConfig {
    /// Read and validate a config file; `None` means embedded defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<NodeConfig> {
        let Some(path) = path else {
            return Ok(NodeConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read config file", path.display()))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> anyhow::Result<NodeConfig> {
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            // toml's message already names the key and the line; prefix the file.
            anyhow!("{}: {}", path.display(), err.to_string().trim_end())
        })?;
        raw.resolve(path)
    }

    pub fn queue_dir(&self) -> PathBuf {
        self.data_dir.join("queue")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }
}

impl RawConfig {
    pub fn resolve(self, file: &Path) -> anyhow::Result<NodeConfig> {
        let config = self.resolve_keys(file)?;
        crate::backends::check(&config)
            .map_err(|(key, reason)| anyhow!("{}: {key}: {reason}", file.display()))?;
        Ok(config)
    }

    fn resolve_keys(self, file: &Path) -> anyhow::Result<NodeConfig> {
        let err = |key: &str, reason: String| anyhow!("{}: {key}: {reason}", file.display());

        let listen = match self.listen {
            None => default_listen(),
            Some(text) => text.parse().map_err(|_| {
                err(
                    "listen",
                    format!("{text:?} is not an address like \"127.0.0.1:7700\""),
                )
            })?,
        };
        let node_name = match self.node_name {
            Some(name) if name.trim().is_empty() => {
                return Err(err("node_name", "must not be empty".into()));
            }
            Some(name) => name,
            None => hostname(),
        };
        if let Err(reason) = validate_node_name(&node_name) {
            return Err(err("node_name", reason));
        }

        let allowed_paths = self
            .collect
            .allowed_paths
            .unwrap_or_else(default_allowed_paths);
        check_globs(&allowed_paths).map_err(|reason| err("collect.allowed_paths", reason))?;
        let max_line_bytes = parse_size_opt(self.collect.max_line_bytes, DEFAULT_MAX_LINE_BYTES)
            .map_err(|reason| err("collect.max_line_bytes", reason))?;
        if max_line_bytes < 64 {
            return Err(err(
                "collect.max_line_bytes",
                "must be at least 64 bytes".into(),
            ));
        }
        let default_paths = self
            .collect
            .default_paths
            .unwrap_or_else(default_default_paths);
        check_globs(&default_paths).map_err(|reason| err("collect.default_paths", reason))?;
        let write_paths = self.collect.write_paths.unwrap_or_default();
        check_globs(&write_paths).map_err(|reason| err("collect.write_paths", reason))?;
        let collect = CollectConfig {
            allowed_paths,
            write_paths,
            default_runner: self.collect.default_runner.unwrap_or(true),
            default_paths,
            max_line_bytes,
            partial_line_timeout: parse_duration_opt(
                self.collect.partial_line_timeout,
                Duration::from_secs(10),
            )
            .map_err(|reason| err("collect.partial_line_timeout", reason))?,
            scan_interval: parse_duration_opt(self.collect.scan_interval, Duration::from_secs(1))
                .map_err(|reason| err("collect.scan_interval", reason))?,
        };
        if collect.scan_interval.is_zero() {
            return Err(err(
                "collect.scan_interval",
                "must be greater than 0".into(),
            ));
        }

        let queue = QueueConfig {
            backend: parse_choice(
                self.queue.backend,
                &[
                    ("embedded", QueueBackend::Embedded),
                    ("kafka", QueueBackend::Kafka),
                ],
            )
            .map_err(|reason| err("queue.backend", reason))?,
            max_bytes: parse_size_opt(self.queue.max_bytes, DEFAULT_QUEUE_MAX_BYTES)
                .map_err(|reason| err("queue.max_bytes", reason))?,
            min_free_bytes: parse_size_opt(self.queue.min_free_bytes, DEFAULT_MIN_FREE_BYTES)
                .map_err(|reason| err("queue.min_free_bytes", reason))?,
        };
        if queue.max_bytes < 4096 {
            return Err(err("queue.max_bytes", "must be at least 4096 bytes".into()));
        }

        let index = IndexConfig {
            backend: parse_choice(
                self.index.backend,
                &[
                    ("embedded", IndexBackend::Embedded),
                    ("elasticsearch", IndexBackend::Elasticsearch),
                ],
            )
            .map_err(|reason| err("index.backend", reason))?,
            commit_interval: parse_duration_opt(self.index.commit_interval, Duration::from_secs(1))
                .map_err(|reason| err("index.commit_interval", reason))?,
            retention_days: self.index.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            retention_max_bytes: parse_size_opt(self.index.retention_max_bytes, 0)
                .map_err(|reason| err("index.retention_max_bytes", reason))?,
            writer_memory: parse_size_opt(self.index.writer_memory, DEFAULT_WRITER_MEMORY)
                .map_err(|reason| err("index.writer_memory", reason))?,
            retention_interval: parse_duration_opt(
                self.index.retention_interval,
                Duration::from_secs(60),
            )
            .map_err(|reason| err("index.retention_interval", reason))?,
            future_grace: parse_duration_opt(self.index.future_grace, Duration::from_secs(86_400))
                .map_err(|reason| err("index.future_grace", reason))?,
            max_partitions: self.index.max_partitions.unwrap_or(DEFAULT_MAX_PARTITIONS),
        };
        if index.max_partitions == 0 {
            return Err(err("index.max_partitions", "must be at least 1".into()));
        }
        if index.retention_interval.is_zero() {
            return Err(err(
                "index.retention_interval",
                "must be greater than 0".into(),
            ));
        }
        if index.commit_interval.is_zero() || index.commit_interval > Duration::from_secs(60) {
            return Err(err(
                "index.commit_interval",
                "must be between 1ms and 60s (data becomes searchable at each commit)".into(),
            ));
        }
        if index.writer_memory < 16 * 1024 * 1024 {
            return Err(err("index.writer_memory", "must be at least 16MiB".into()));
        }

        let api = ApiConfig {
            max_body_bytes: parse_size_opt(self.api.max_body_bytes, 1024 * 1024)
                .map_err(|reason| err("api.max_body_bytes", reason))?,
            max_ingest_bytes: parse_size_opt(self.api.max_ingest_bytes, 64 * 1024 * 1024)
                .map_err(|reason| err("api.max_ingest_bytes", reason))?,
            search_concurrency: self.api.search_concurrency.unwrap_or(4),
            request_timeout: parse_duration_opt(self.api.request_timeout, Duration::from_secs(30))
                .map_err(|reason| err("api.request_timeout", reason))?,
            header_read_timeout: parse_duration_opt(
                self.api.header_read_timeout,
                Duration::from_secs(10),
            )
            .map_err(|reason| err("api.header_read_timeout", reason))?,
            idle_timeout: parse_duration_opt(self.api.idle_timeout, Duration::from_secs(60))
                .map_err(|reason| err("api.idle_timeout", reason))?,
            max_connections: self.api.max_connections.unwrap_or(1024),
            max_connections_per_ip: self.api.max_connections_per_ip.unwrap_or(128),
        };
        for (key, value) in [
            ("api.header_read_timeout", api.header_read_timeout),
            ("api.idle_timeout", api.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(err(key, "must be greater than 0".into()));
            }
        }
        if api.max_connections == 0 {
            return Err(err("api.max_connections", "must be at least 1".into()));
        }
        if api.max_connections_per_ip == 0 || api.max_connections_per_ip > api.max_connections {
            return Err(err(
                "api.max_connections_per_ip",
                format!(
                    "must be between 1 and api.max_connections ({})",
                    api.max_connections
                ),
            ));
        }
        if api.search_concurrency == 0 {
            return Err(err("api.search_concurrency", "must be at least 1".into()));
        }
        if api.max_body_bytes < 1024 {
            return Err(err("api.max_body_bytes", "must be at least 1KiB".into()));
        }
        if api.request_timeout.is_zero() {
            return Err(err("api.request_timeout", "must be greater than 0".into()));
        }
        let cluster = resolve_cluster(self.cluster, &listen, self.tls.is_some())
            .map_err(|(key, reason)| err(&format!("cluster.{key}"), reason))?;
        let auth = AuthConfig {
            session_ttl: parse_duration_opt(self.auth.session_ttl, Duration::from_secs(12 * 3600))
                .map_err(|reason| err("auth.session_ttl", reason))?,
            login_attempts_per_minute: self.auth.login_attempts_per_minute.unwrap_or(5),
        };
        if auth.session_ttl.is_zero() {
            return Err(err("auth.session_ttl", "must be greater than 0".into()));
        }
        if auth.login_attempts_per_minute == 0 {
            return Err(err(
                "auth.login_attempts_per_minute",
                "must be at least 1".into(),
            ));
        }
        let tls = match self.tls {
            None => None,
            Some(raw) => {
                for (key, path) in [("tls.cert", &raw.cert), ("tls.key", &raw.key)] {
                    if !path.is_file() {
                        return Err(err(
                            key,
                            format!("{} is not a readable file", path.display()),
                        ));
                    }
                }
                if let Some(ca) = &raw.ca
                    && !ca.is_file()
                {
                    return Err(err(
                        "tls.ca",
                        format!("{} is not a readable file", ca.display()),
                    ));
                }
                Some(TlsConfig {
                    cert: raw.cert,
                    key: raw.key,
                    ca: raw.ca,
                })
            }
        };

        let logkit = LogkitConfig {
            role: match self.compat.logkit.role.as_deref() {
                None | Some("both") => LogkitRole::Both,
                Some("master") => LogkitRole::Master,
                Some("slave") => LogkitRole::Slave,
                Some(other) => {
                    return Err(err(
                        "compat.logkit.role",
                        format!("{other:?} is not \"both\", \"master\" or \"slave\""),
                    ));
                }
            },
            anonymous_role: match self.compat.logkit.anonymous_role.as_deref() {
                None => None,
                Some(text) => match text.parse::<crate::auth::Role>() {
                    Ok(role @ (crate::auth::Role::Reader | crate::auth::Role::Operator)) => {
                        Some(role)
                    }
                    _ => {
                        return Err(err(
                            "compat.logkit.anonymous_role",
                            format!(
                                "{text:?} is not \"reader\" or \"operator\" (an anonymous request never gets admin)"
                            ),
                        ));
                    }
                },
            },
            anonymous_from: self
                .compat
                .logkit
                .anonymous_from
                .unwrap_or_default()
                .iter()
                .map(|text| text.parse())
                .collect::<Result<_, String>>()
                .map_err(|reason| err("compat.logkit.anonymous_from", reason))?,
            master_url: match self.compat.logkit.master_url {
                None => None,
                Some(url) => {
                    let parsed = reqwest::Url::parse(&url)
                        .map_err(|e| err("compat.logkit.master_url", format!("{url:?}: {e}")))?;
                    if !matches!(parsed.scheme(), "http" | "https") {
                        return Err(err(
                            "compat.logkit.master_url",
                            format!("{url:?} must be an http:// or https:// URL"),
                        ));
                    }
                    Some(url.trim_end_matches('/').to_string())
                }
            },
        };
        if logkit.anonymous_role.is_some() && logkit.anonymous_from.is_empty() {
            return Err(err(
                "compat.logkit.anonymous_role",
                "needs compat.logkit.anonymous_from: the networks it applies to".into(),
            ));
        }
        let mut cluster = cluster;
        if logkit.role != LogkitRole::Both {
            cluster
                .labels
                .insert("logkit_role".into(), logkit.role.as_str().into());
        }
        Ok(NodeConfig {
            api,
            auth,
            cluster,
            logkit,
            metrics: MetricsConfig {
                public: self.metrics.public.unwrap_or(false),
            },
            deploy: DeployConfig {
                one_started: self.deploy.one_started.unwrap_or(true),
            },
            tls,
            data_dir: match self.data_dir {
                // Relative to the file, not to wherever the node or the CLI was started.
                Some(dir) if dir.is_relative() => file
                    .parent()
                    .map_or(dir.clone(), |parent| parent.join(&dir)),
                Some(dir) => dir,
                None => default_data_dir(),
            },
            listen,
            node_name,
            collect,
            queue,
            index,
        })
    }
}

/// Globs of paths in the config: each absolute, each a valid glob.
fn check_globs(patterns: &[String]) -> Result<(), String> {
    for pattern in patterns {
        if !pattern.starts_with('/') {
            return Err(format!("{pattern:?} must be an absolute path or glob"));
        }
        globset::Glob::new(pattern).map_err(|e| format!("{pattern:?}: {e}"))?;
    }
    Ok(())
}

/// `node_name`: 1-63 of `[A-Za-z0-9._-]` (it names records, the cluster member and the local
/// CLI token `local-cli-<node>`).
fn validate_node_name(name: &str) -> Result<(), String> {
    let length = name.chars().count();
    let bad_char = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
    if let Some(c) = bad_char {
        return Err(format!(
            "{name:?} has {c:?}; use only letters, digits, '.', '_' and '-' (set node_name when the host name has others)"
        ));
    }
    if length > MAX_NODE_NAME_CHARS || name == "." || name == ".." {
        return Err(format!(
            "{name:?} must be 1-{MAX_NODE_NAME_CHARS} characters of letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn parse_size_opt(value: Option<SizeValue>, default: u64) -> Result<u64, String> {
    match value {
        None => Ok(default),
        Some(SizeValue::Bytes(n)) => Ok(n),
        Some(SizeValue::Text(text)) => parse_size(&text),
    }
}

/// `"256MiB"`, `"1GB"`, `"4096"`, `"64 KiB"`. Units are binary for `KiB/MiB/GiB` and `K/M/G`,
/// decimal for `KB/MB/GB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a size (use e.g. 268435456 or \"256MiB\")");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    number.checked_mul(multiplier).ok_or_else(bad)
}

fn resolve_cluster(
    raw: RawCluster,
    listen: &SocketAddr,
    tls: bool,
) -> Result<ClusterConfig, (&'static str, String)> {
    let check_url = |key: &'static str, url: String| -> Result<String, (&'static str, String)> {
        let url = url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Err((
                key,
                format!("{url:?} is not a URL like \"https://10.0.0.2:7700\""),
            ));
        }
        Ok(url)
    };
    let advertise_url = match raw.advertise_url {
        Some(url) => check_url("advertise_url", url)?,
        None => {
            let scheme = if tls { "https" } else { "http" };
            if listen.ip().is_unspecified() {
                return Err((
                    "advertise_url",
                    format!(
                        "listen is {listen}, which other nodes cannot dial: set cluster.advertise_url to this node's reachable URL"
                    ),
                ));
            }
            format!("{scheme}://{listen}")
        }
    };
    let join = raw.join.map(|url| check_url("join", url)).transpose()?;
    if join.is_some() && raw.join_token.as_deref().unwrap_or("").is_empty() {
        return Err((
            "join_token",
            "cluster.join needs cluster.join_token (`lograft cluster token` on a member)".into(),
        ));
    }
    if let Some(token) = raw.join_token.as_deref().filter(|t| !t.is_empty())
        && !crate::cluster::join_token::is_join_token(token)
        && !token.starts_with("lgc_")
    {
        return Err((
            "join_token",
            "is not a join token (lgj_<id>_<secret>): mint one with `lograft cluster token` on a member"
                .into(),
        ));
    }
    let voters = raw.voters.unwrap_or(3);
    if !(1..=5).contains(&voters) {
        return Err(("voters", format!("{voters} is not between 1 and 5")));
    }
    let duration = |key: &'static str, value: Option<String>, default: u64| {
        let value =
            parse_duration_opt(value, Duration::from_secs(default)).map_err(|r| (key, r))?;
        if value.is_zero() {
            return Err((key, "must be greater than 0".to_string()));
        }
        Ok(value)
    };
    let heartbeat_interval = duration("heartbeat_interval", raw.heartbeat_interval, 5)?;
    let bad_after = duration("bad_after", raw.bad_after, 30)?;
    let lost_after = duration("lost_after", raw.lost_after, 60)?;
    if lost_after <= bad_after {
        return Err(("lost_after", "must be longer than cluster.bad_after".into()));
    }
    let backend = parse_choice(
        raw.backend,
        &[
            ("embedded", ClusterBackend::Embedded),
            ("etcd", ClusterBackend::Etcd),
        ],
    )
    .map_err(|reason| ("backend", reason))?;
    Ok(ClusterConfig {
        backend,
        advertise_url,
        join,
        join_token: raw.join_token,
        tag: raw.tag.unwrap_or_default(),
        labels: Default::default(),
        voters,
        heartbeat_interval,
        bad_after,
        lost_after,
        search_timeout: duration("search_timeout", raw.search_timeout, 10)?,
    })
}

fn parse_duration_opt(value: Option<String>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(text) => parse_duration(&text),
    }
}

/// `"500ms"`, `"10s"`, `"5m"`, `"2h"`, `"1d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (use e.g. \"500ms\", \"10s\", \"5m\")");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(bad)?;
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let millis = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

fn format_duration(d: &Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1000)
    }
}

mod duration_text {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(d))
    }
}

/// Refuse a config file that every local user may read when it holds a secret
/// (`cluster.join_token` is the cluster secret): readable by others (mode & 0o004) in
/// directories others may enter. The package installs it 0640 root:lograft.
pub fn check_file_mode(path: &Path, config: &NodeConfig) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if config.cluster.join_token.is_none() {
        return Ok(());
    }
    let mode_of = |path: &Path| -> anyhow::Result<u32> {
        Ok(std::fs::metadata(path)
            .with_context(|| format!("{}: cannot read its mode", path.display()))?
            .permissions()
            .mode())
    };
    let mode = mode_of(path)?;
    if mode & 0o004 == 0 {
        return Ok(());
    }
    // A directory others cannot enter (a private temp dir, a 0700 home) keeps the file private.
    let absolute = std::fs::canonicalize(path)
        .with_context(|| format!("{}: cannot resolve its path", path.display()))?;
    for dir in absolute.ancestors().skip(1) {
        if mode_of(dir)? & 0o001 == 0 {
            return Ok(());
        }
    }
    anyhow::bail!(
        "{path}: holds cluster.join_token (the cluster secret) but every local user can read it \
         (mode {mode:04o}); run `chmod 640 {path}` (and `chgrp lograft {path}` for the package's \
         user), or remove join_token once the node has joined",
        path = path.display(),
        mode = mode & 0o7777,
    );
}

/// Validate a config file and render the resolved config (`lograft config check FILE`).
pub fn check_file(path: &Path) -> anyhow::Result<String> {
    let config = NodeConfig::load(Some(path))?;
    check_file_mode(path, &config)?;
    let text = toml::to_string_pretty(&config).context("rendering the resolved config")?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<NodeConfig> {
        NodeConfig::parse(text, Path::new("node.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.data_dir, PathBuf::from("./lograft-data"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:7700");
        assert_eq!(config.collect.allowed_paths, vec!["/var/log/**"]);
        assert_eq!(config.queue.max_bytes, 64 << 20);
        assert_eq!(config.collect.max_line_bytes, 1 << 20);
    }

    #[test]
    fn compat_logkit_settings_are_checked_and_name_the_key() {
        let config = parse(
            "[compat.logkit]\nrole = \"slave\"\nanonymous_role = \"operator\"\nanonymous_from = [\"10.0.0.0/8\", \"::1\"]\nmaster_url = \"http://10.0.0.5:3000/\"\n",
        )
        .unwrap();
        assert_eq!(config.logkit.role, LogkitRole::Slave);
        assert_eq!(
            config.cluster.labels.get("logkit_role").map(String::as_str),
            Some("slave")
        );
        assert_eq!(
            config.logkit.master_url.as_deref(),
            Some("http://10.0.0.5:3000")
        );
        let trusted = &config.logkit.anonymous_from;
        assert!(trusted[0].contains("10.200.3.4".parse().unwrap()));
        assert!(!trusted[0].contains("11.0.0.1".parse().unwrap()));
        assert!(
            trusted[0].contains("::ffff:10.0.0.1".parse().unwrap()),
            "v4-mapped"
        );
        assert!(trusted[1].contains("::1".parse().unwrap()));
        assert!(
            parse("").unwrap().cluster.labels.is_empty(),
            "role both publishes nothing"
        );
        for (text, says) in [
            ("role = \"boss\"", "compat.logkit.role"),
            (
                "anonymous_role = \"admin\"\nanonymous_from = [\"10.0.0.0/8\"]",
                "never gets admin",
            ),
            (
                "anonymous_role = \"operator\"",
                "needs compat.logkit.anonymous_from",
            ),
            ("anonymous_from = [\"10.0.0.0/33\"]", "prefix length"),
            ("anonymous_from = [\"ten\"]", "compat.logkit.anonymous_from"),
            ("master_url = \"ftp://x\"", "compat.logkit.master_url"),
        ] {
            let err = parse(&format!("[compat.logkit]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
        let err = parse("[collect]\nwrite_paths = [\"out/*\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("collect.write_paths"), "{err}");
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let err = parse("[queue]\nmax_bites = 5\n").unwrap_err().to_string();
        assert!(err.starts_with("node.toml:"), "{err}");
        assert!(err.contains("max_bites"), "{err}");
    }

    #[test]
    fn bad_values_name_key_and_reason() {
        let err = parse("[queue]\nmax_bytes = \"12 parsecs\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("node.toml: queue.max_bytes"), "{err}");
        assert!(err.contains("not a size"), "{err}");
        let err = parse("listen = \"everywhere\"\n").unwrap_err().to_string();
        assert!(
            err.contains("listen") && err.contains("not an address"),
            "{err}"
        );
        let err = parse("[collect]\nallowed_paths = [\"var/log\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("collect.allowed_paths") && err.contains("absolute"),
            "{err}"
        );
        let err = parse("[index]\ncommit_interval = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("index.commit_interval") && err.contains("not a duration"),
            "{err}"
        );
    }

    #[test]
    fn connection_limits_are_validated() {
        let config = parse("").unwrap();
        assert_eq!(config.api.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.api.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.api.max_connections, 1024);
        assert_eq!(config.api.max_connections_per_ip, 128);
        let err = parse("[api]\nheader_read_timeout = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node.toml: api.header_read_timeout: must be greater than 0"),
            "{err}"
        );
        let err = parse("[api]\nmax_connections = 10\nmax_connections_per_ip = 20\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "api.max_connections_per_ip: must be between 1 and api.max_connections (10)"
            ),
            "{err}"
        );
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("-1").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("10").is_err());
    }

    // See: "No input stops the appliance", item 19.
    #[test]
    fn node_name_is_checked_and_names_the_key() {
        for bad in [
            "bad name",
            "node/1",
            "ünïcode",
            "x\ny",
            "..",
            &"n".repeat(64),
        ] {
            let text = format!("node_name = {}\n", toml::Value::String(bad.to_string()));
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains("node.toml: node_name"), "{bad:?}: {err}");
        }
        for good in ["alpha", "node-1.example_2", &"n".repeat(63)] {
            let text = format!("node_name = \"{good}\"\n");
            assert_eq!(parse(&text).unwrap().node_name, good);
        }
    }

    // See: "No input stops the appliance", item 19: `lograft search` found the token only
    // from the directory the node was started in.
    #[test]
    fn a_relative_data_dir_is_relative_to_the_config_file() {
        let config = NodeConfig::parse(
            "data_dir = \"data\"\n",
            Path::new("/etc/lograft/lograft.toml"),
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/etc/lograft/data"));
        let config = NodeConfig::parse(
            "data_dir = \"/srv/x\"\n",
            Path::new("/etc/lograft/lograft.toml"),
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/srv/x"));
    }

    #[test]
    fn default_paths_are_globs() {
        assert_eq!(
            parse("").unwrap().collect.default_paths,
            vec!["/var/log/*.log"]
        );
        let config =
            parse("[collect]\ndefault_paths = [\"/srv/logs/*.log\", \"/opt/app/*.out\"]\n")
                .unwrap();
        assert_eq!(config.collect.default_paths.len(), 2);
        let err = parse("[collect]\ndefault_paths = [\"logs/*.log\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("collect.default_paths") && err.contains("absolute"),
            "{err}"
        );
    }

    // See: "No input stops the appliance", item 6.
    #[test]
    fn a_config_holding_the_join_token_must_not_be_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // tempdir is 0700: open it, as /etc/lograft is.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "[cluster]\njoin = \"http://10.0.0.1:7700\"\njoin_token = \"lgc_x\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = check_file(&path).unwrap_err().to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("chmod 640"),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        check_file(&path).unwrap();
        // In a directory others cannot enter, the file is private whatever its mode.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        check_file(&path).unwrap();
        // Without a secret, a readable file is fine (the package's default config).
        std::fs::write(&path, "listen = \"127.0.0.1:7700\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_file(&path).unwrap();
    }
}
