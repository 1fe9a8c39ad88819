//! Runner configs in logkit's JSON shape, and their validation.
//!
//! ```json
//! {"name": "nginx",
//!  "reader": {"mode": "file", "log_path": "/var/log/nginx/access.log", "read_from": "oldest"},
//!  "parser": {"type": "raw"},
//!  "senders": [{"sender_type": "local"}]}
//! ```
//!
//! `reader.mode` is `file` (one path), `dir` (the files of a folder matching
//! `valid_file_pattern`, default `*`) or `tailx` (a glob with `*`, `?`, `[..]` and `**`).
//! Keys that lograft does not act on (logkit's `batch_len`, reader `expire`, ...) are kept,
//! echoed back when the config is read, and listed in the runner's status as ignored
//! ([`RunnerConfig::ignored_keys`]): never silently dropped, never a reason to refuse a
//! config written for logkit.
//!
//! Senders: `local` (the node's index, the default), `discard` (read and count, keep nothing)
//! and `file` (append each record as a JSON line to `file_send_path`, a path inside
//! `collect.write_paths`; see `collect::sender`).

use serde::{Deserialize, Serialize};

use super::allowlist::{Allowlist, Refusal};
use super::tail::ReadFrom;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerConfig {
    pub name: String,
    pub reader: ReaderConfig,
    #[serde(default)]
    pub parser: ParserConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub senders: Vec<SenderConfig>,
    /// Lines and bytes per second this runner may read; see `collect::limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<super::limit::RateLimitConfig>,
    /// Applied in order after parsing; see `collect::transform`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<super::transform::TransformConfig>,
    /// Desired state (logkit's stop/start): a stopped runner keeps its config and checkpoints.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// logkit's reset: raising it makes the runner forget its checkpoints and read again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reset_epoch: u64,
    /// logkit's batch flush interval in seconds; accepted for compatibility, lograft flushes
    /// each read batch at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_interval: Option<serde_json::Value>,
    /// When the config was last written (RFC 3339), as logkit's `createtime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub createtime: Option<String>,
    /// Keys lograft does not act on, kept as written.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Runner keys logkit fills in when it reads a config back; lograft keeps them as written
/// and lists none of them as ignored (they describe logkit's own bookkeeping).
const LOGKIT_BOOKKEEPING: &[&str] = &["runner_name", "is_stopped", "web_folder", "createtime"];

fn is_zero(value: &u64) -> bool {
    *value == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReaderMode {
    File,
    Dir,
    Tailx,
    /// Lines POSTed to `/api/v1/ingest/<runner>`.
    Http,
    /// Documents sent to the Elasticsearch-compatible `/_bulk` for index `<runner>`.
    Bulk,
    /// Syslog messages on UDP and TCP at `reader.listen`.
    Syslog,
}

impl ReaderMode {
    /// Whether the runner tails files (and so needs `log_path` and the allowlist).
    pub fn reads_files(self) -> bool {
        matches!(self, ReaderMode::File | ReaderMode::Dir | ReaderMode::Tailx)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReaderConfig {
    pub mode: ReaderMode,
    /// The file, folder or glob to read (file modes only).
    #[serde(default)]
    pub log_path: String,
    #[serde(default)]
    pub read_from: ReadFrom,
    /// For `dir`: which files of the folder to read. Default `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_file_pattern: Option<String>,
    /// `syslog` mode: the address to listen on, UDP and TCP (e.g. `"0.0.0.0:514"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Multiline records: a regex that starts a new record; following lines that do not match
    /// are joined to it (stack traces). Records close on the next head, or when idle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_pattern: Option<String>,
    /// Character encoding of the files: `utf-8` (default), `gbk`, `gb18030`, `shift_jis`,
    /// `big5`, `euc-kr`, `windows-1252`... Invalid bytes become U+FFFD and are counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// logkit's offset file; accepted and ignored (offsets live in the queue and the index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_path: Option<String>,
    /// Keys lograft does not act on (`expire`, `stat_interval`, `ignore_hidden`...), kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParserType {
    #[default]
    Raw,
    Json,
    Logfmt,
    Regex,
    Nginx,
    Apache,
    Syslog,
    Csv,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParserConfig {
    #[serde(rename = "type", default)]
    pub parser_type: ParserType,
    /// logkit's parser name; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `regex`: a pattern whose named groups become fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// `nginx`/`apache`: an nginx `log_format` string. Default: the combined format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_log_format: Option<String>,
    /// `csv`: the columns, `"name type, name type"` (string, long, float, bool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_schema: Option<String>,
    /// `csv`: the separator. Default `,`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_splitter: Option<String>,
    /// Field holding the event time (default: `ts`, `time`, `timestamp`, `@timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_key: Option<String>,
    /// strftime layouts tried in order, e.g. `"%Y-%m-%d %H:%M:%S"`; RFC 3339 and epoch
    /// seconds/milliseconds are always understood.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeformat_layouts: Option<Vec<String>>,
    /// Zone of times without one: `UTC` (default) or an offset like `+08:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Field holding the level. Default `level`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_key: Option<String>,
    /// Keys lograft does not act on, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SenderConfig {
    pub sender_type: String,
    #[serde(flatten)]
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// The sender types this build has.
pub const SENDER_TYPES: &[&str] = &["local", "discard", "file"];

impl SenderConfig {
    /// The options a sender of this type acts on; the rest are listed as ignored.
    fn known_options(&self) -> &'static [&'static str] {
        match self.sender_type.as_str() {
            "file" => &["name", "file_send_path"],
            _ => &["name"],
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid runner config: {0}")]
    Syntax(String),
    #[error("runner name {0:?} must be 1-64 characters of letters, digits, '-', '_' or '.'")]
    Name(String),
    #[error("runner {runner}: reader.log_path {path:?} must be an absolute path")]
    NotAbsolute { runner: String, path: String },
    #[error("runner {runner}: {reason}")]
    Invalid { runner: String, reason: String },
    #[error(
        "runner {runner}: reader.log_path {path:?} is outside this node's collect.allowed_paths {allowed:?}"
    )]
    NotAllowed {
        runner: String,
        path: String,
        allowed: Vec<String>,
    },
    /// On the built-in deny list (`allowlist::DENIED_PATHS`), whatever the allowlist says.
    #[error("runner {runner}: reader.log_path {path:?} is refused: {reason}")]
    Denied {
        runner: String,
        path: String,
        reason: String,
    },
}

impl RunnerConfig {
    /// Parse and validate a runner config (JSON text).
    pub fn parse(json: &str, allowlist: &Allowlist) -> Result<RunnerConfig, ConfigError> {
        let config: RunnerConfig =
            serde_json::from_str(json).map_err(|err| ConfigError::Syntax(err.to_string()))?;
        config.validate(allowlist)?;
        Ok(config)
    }

    pub fn validate(&self, allowlist: &Allowlist) -> Result<(), ConfigError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
            && self.name.trim() == self.name
            && self.name != "."
            && self.name != "..";
        if !name_ok {
            return Err(ConfigError::Name(self.name.clone()));
        }
        for sender in &self.senders {
            if !SENDER_TYPES.contains(&sender.sender_type.as_str()) {
                return Err(ConfigError::Invalid {
                    runner: self.name.clone(),
                    reason: format!(
                        "senders: unknown sender_type {:?} (this build has {})",
                        sender.sender_type,
                        SENDER_TYPES.join(", ")
                    ),
                });
            }
            if sender.sender_type == "file" {
                let path = sender
                    .options
                    .get("file_send_path")
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                let normalized = super::allowlist::normalize_lexically(path)
                    .filter(|_| path.starts_with('/'))
                    .ok_or_else(|| ConfigError::Invalid {
                        runner: self.name.clone(),
                        reason: format!(
                            "senders: the file sender's file_send_path {path:?} must be an absolute path"
                        ),
                    })?;
                allowlist
                    .allows_write(std::path::Path::new(&normalized))
                    .map_err(|reason| ConfigError::Invalid {
                        runner: self.name.clone(),
                        reason: format!("senders: file_send_path: {reason}"),
                    })?;
            }
        }
        if !self.reader.mode.reads_files()
            && let Some(sender) = self.senders.iter().find(|s| s.sender_type != "local")
        {
            return Err(ConfigError::Invalid {
                runner: self.name.clone(),
                reason: format!(
                    "senders: sender_type {:?} is for file readers (file, dir, tailx); reader.mode {:?} sends to the node's index",
                    sender.sender_type, self.reader.mode
                ),
            });
        }
        if self.reader.log_path.contains('\0') {
            return Err(ConfigError::Invalid {
                runner: self.name.clone(),
                reason: format!(
                    "reader.log_path {:?} contains a NUL byte",
                    self.reader.log_path
                ),
            });
        }
        let reads_files = self.reader.mode.reads_files();
        if reads_files && !self.reader.log_path.starts_with('/') {
            return Err(ConfigError::NotAbsolute {
                runner: self.name.clone(),
                path: self.reader.log_path.clone(),
            });
        }
        super::parse::Parser::new(&self.parser).map_err(|reason| ConfigError::Invalid {
            runner: self.name.clone(),
            reason,
        })?;
        if let Some(pattern) = &self.reader.head_pattern {
            // Within the same limits as every other user pattern.
            super::parse::compile_regex("reader.head_pattern", pattern).map_err(|reason| {
                ConfigError::Invalid {
                    runner: self.name.clone(),
                    reason,
                }
            })?;
        }
        self.encoding().map_err(|reason| ConfigError::Invalid {
            runner: self.name.clone(),
            reason,
        })?;
        if let Some(limit) = &self.rate_limit {
            limit.validate().map_err(|reason| ConfigError::Invalid {
                runner: self.name.clone(),
                reason,
            })?;
        }
        super::transform::Transforms::new(&self.transforms).map_err(|reason| {
            ConfigError::Invalid {
                runner: self.name.clone(),
                reason,
            }
        })?;
        if self.reader.mode == ReaderMode::Syslog {
            let listen = self.reader.listen.as_deref().unwrap_or("");
            if listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::Invalid {
                    runner: self.name.clone(),
                    reason: format!(
                        "reader.listen {listen:?} must be an address like \"0.0.0.0:514\""
                    ),
                });
            }
        }
        if !reads_files {
            return Ok(());
        }
        let pattern = self.pattern().map_err(|reason| ConfigError::Invalid {
            runner: self.name.clone(),
            reason,
        })?;
        match allowlist.covers_pattern(&pattern) {
            Ok(()) => Ok(()),
            Err(Refusal::NotAllowed { .. }) => Err(ConfigError::NotAllowed {
                runner: self.name.clone(),
                path: self.reader.log_path.clone(),
                allowed: allowlist.patterns().to_vec(),
            }),
            Err(refusal @ Refusal::Denied { .. }) => Err(ConfigError::Denied {
                runner: self.name.clone(),
                path: self.reader.log_path.clone(),
                reason: refusal.to_string(),
            }),
            Err(Refusal::Invalid(reason)) => Err(ConfigError::Invalid {
                runner: self.name.clone(),
                reason: format!("reader.log_path {:?}: {reason}", self.reader.log_path),
            }),
        }
    }

    /// A full replace keeps the desired state (`stopped`) and the reset epoch of the config it
    /// replaces, unless the new body (`written`) sets `stopped` itself.
    pub fn carry_state_from(&mut self, old: &RunnerConfig, written: &serde_json::Value) {
        self.stopped = match written.get("stopped") {
            Some(value) => value == true,
            None => old.stopped,
        };
        self.reset_epoch = self.reset_epoch.max(old.reset_epoch);
    }

    /// The keys of this config that lograft keeps but does not act on, as dotted paths
    /// (`batch_len`, `reader.expire`, `senders[0].ft_strategy`), for the runner's status.
    pub fn ignored_keys(&self) -> Vec<String> {
        let keep = |key: &&String| !LOGKIT_BOOKKEEPING.contains(&key.as_str());
        let mut keys: Vec<String> = self.extra.keys().filter(keep).cloned().collect();
        if self.batch_interval.is_some() {
            keys.push("batch_interval".into());
        }
        keys.extend(
            self.reader
                .extra
                .keys()
                .filter(|k| keep(k) && k.as_str() != "name")
                .map(|k| format!("reader.{k}")),
        );
        keys.extend(
            self.parser
                .extra
                .keys()
                .filter(keep)
                .map(|k| format!("parser.{k}")),
        );
        for (i, sender) in self.senders.iter().enumerate() {
            let known = sender.known_options();
            keys.extend(
                sender
                    .options
                    .keys()
                    .filter(|k| keep(k) && !known.contains(&k.as_str()))
                    .map(|k| format!("senders[{i}].{k}")),
            );
        }
        keys
    }

    /// The decoder of `reader.encoding` (UTF-8 when absent).
    pub fn encoding(&self) -> Result<&'static encoding_rs::Encoding, String> {
        let label = self.reader.encoding.as_deref().unwrap_or("utf-8");
        let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
            .ok_or_else(|| format!("reader.encoding {label:?} is not a known encoding (e.g. utf-8, gbk, gb18030, shift_jis)"))?;
        Ok(encoding)
    }

    /// The absolute glob this runner follows, with `.` and `..` resolved.
    pub fn pattern(&self) -> Result<String, String> {
        let log_path = super::allowlist::normalize_lexically(&self.reader.log_path)
            .ok_or_else(|| format!("reader.log_path {:?} leaves the root", self.reader.log_path))?;
        let pattern = match self.reader.mode {
            ReaderMode::File => globset::escape(&log_path),
            ReaderMode::Dir => {
                let file_pattern = self.reader.valid_file_pattern.as_deref().unwrap_or("*");
                if file_pattern.contains('/') {
                    return Err(format!(
                        "reader.valid_file_pattern {file_pattern:?} must be a file name pattern without '/'"
                    ));
                }
                format!(
                    "{}/{}",
                    globset::escape(log_path.trim_end_matches('/')),
                    file_pattern
                )
            }
            ReaderMode::Tailx => log_path,
            ReaderMode::Http | ReaderMode::Bulk | ReaderMode::Syslog => {
                return Err(format!("reader.mode {:?} reads no files", self.reader.mode));
            }
        };
        globset::Glob::new(&pattern).map_err(|err| format!("reader.log_path: {err}"))?;
        Ok(pattern)
    }
}

// ---- secrets ---------------------------------------------------------------------------

/// What a secret looks like when a config is read back.
pub const SECRET_MASK: &str = "******";

/// Words that name a secret wherever they appear in a key (`sender_password`,
/// `pandora_secret`, `api_token`, `kafkaPassword`).
const SECRET_SUBSTRINGS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "apikey",
    "accesskey",
    "privatekey",
];

/// Short words that name a secret only as a whole word of a key (`pwd`, `basic_auth`,
/// `api_key`), so that `author` or `keyword` are not secrets.
const SECRET_WORDS: &[&str] = &["pwd", "auth", "authorization", "sk", "ak"];

/// Words that, before `key`, make it a secret (`api_key`, `private_key`, `sender_sk`); any
/// other `*_key` (`timestamp_key`, `new_key`) names a field.
const SECRET_KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "private",
    "secret",
    "signing",
    "encryption",
    "client",
    "ssh",
    "master",
    "auth",
    "license",
    "shared",
];

/// The words of a key: split at `_`, `-`, `.` and lower-to-upper case changes, lowercased.
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            previous_lower = false;
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_uppercase() && previous_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Whether a config key names a secret. `key` alone is one, except where `key` names a field
/// (inside `transforms`, see `collect::transform`).
pub fn is_secret_key(key: &str, key_names_a_field: bool) -> bool {
    let words = key_words(key);
    let joined: String = words.concat();
    if SECRET_SUBSTRINGS.iter().any(|word| joined.contains(word)) {
        return true;
    }
    if words
        .iter()
        .any(|word| SECRET_WORDS.contains(&word.as_str()))
    {
        return true;
    }
    match words.as_slice() {
        [only] if only == "key" => !key_names_a_field,
        [.., qualifier, last] if last == "key" || last == "keys" => {
            SECRET_KEY_QUALIFIERS.contains(&qualifier.as_str())
        }
        _ => false,
    }
}

/// `https://user:pass@host/...` with the password masked (every URL in `text`); `None` when
/// there is none.
pub fn mask_url_passwords(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let authority_len = after
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == ',')
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(at) if authority[..at].contains(':') => {
                let colon = authority[..at].find(':').expect("checked");
                out.push_str(&authority[..=colon]);
                out.push_str(SECRET_MASK);
                out.push_str(&authority[at..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Mask every secret of a runner config (or any JSON) before it is read back: the value of a
/// secret key, whatever its type (`"password": ["x"]`, `"token": {"value": "x"}`), becomes
/// [`SECRET_MASK`], and the password of every URL in a string becomes [`SECRET_MASK`].
pub fn mask_secrets(value: &mut serde_json::Value) {
    mask_value(value, false);
}

fn mask_value(value: &mut serde_json::Value, key_names_a_field: bool) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if is_secret_key(key, key_names_a_field) {
                    if !inner.is_null() {
                        *inner = Value::String(SECRET_MASK.into());
                    }
                } else {
                    mask_value(inner, key_names_a_field || key == "transforms");
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| mask_value(item, key_names_a_field)),
        Value::String(text) => {
            if let Some(masked) = mask_url_passwords(text) {
                *text = masked;
            }
        }
        _ => {}
    }
}

/// A config sent back as it was read (masked) keeps the stored secrets: a secret key whose
/// value is [`SECRET_MASK`] takes the stored value, and a string equal to the stored one with
/// its URL passwords masked takes the stored one (read, edit, write back).
pub fn keep_masked_secrets(new: &mut serde_json::Value, old: &serde_json::Value) {
    keep_masked(new, old, false);
}

fn keep_masked(new: &mut serde_json::Value, old: &serde_json::Value, key_names_a_field: bool) {
    use serde_json::Value;
    match (new, old) {
        (Value::Object(new_map), Value::Object(old_map)) => {
            for (key, inner) in new_map.iter_mut() {
                let Some(old_inner) = old_map.get(key) else {
                    continue;
                };
                if is_secret_key(key, key_names_a_field) && inner.as_str() == Some(SECRET_MASK) {
                    *inner = old_inner.clone();
                } else {
                    keep_masked(inner, old_inner, key_names_a_field || key == "transforms");
                }
            }
        }
        (Value::Array(new_items), Value::Array(old_items)) => {
            for (inner, old_inner) in new_items.iter_mut().zip(old_items) {
                keep_masked(inner, old_inner, key_names_a_field);
            }
        }
        (Value::String(new_text), Value::String(old_text)) => {
            if new_text.contains(SECRET_MASK)
                && mask_url_passwords(old_text).as_deref() == Some(new_text.as_str())
            {
                *new_text = old_text.clone();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(patterns: &[&str]) -> Allowlist {
        Allowlist::new(patterns.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn logkit_shape_parses() {
        let config = RunnerConfig::parse(
            r#"{"name":"nginx","reader":{"mode":"dir","log_path":"/var/log/nginx","read_from":"newest",
                "valid_file_pattern":"*.log","meta_path":"./meta"},"parser":{"type":"json","name":"p"},
                "senders":[{"sender_type":"local"}],"batch_interval":"5"}"#,
            &allow(&["/var/log/**"]),
        )
        .unwrap();
        assert_eq!(config.pattern().unwrap(), "/var/log/nginx/*.log");
        assert_eq!(config.reader.read_from, ReadFrom::Newest);
        assert_eq!(config.parser.parser_type, ParserType::Json);
    }

    #[test]
    fn outside_allowlist_is_refused_with_reason() {
        let allowlist = allow(&["/var/log/**"]);
        for path in ["/etc/passwd", "/var/log/../../etc/passwd", "/var/**"] {
            let json = format!(r#"{{"name":"x","reader":{{"mode":"tailx","log_path":"{path}"}}}}"#);
            let err = RunnerConfig::parse(&json, &allowlist)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("outside this node's collect.allowed_paths"),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn deny_list_is_refused_with_its_own_reason() {
        let allowlist = allow(&["/**"]);
        for (mode, path) in [
            ("file", "/etc/shadow"),
            ("file", "/var/log/../../etc/shadow"),
            ("file", "/proc/self/environ"),
            ("tailx", "/sys/**"),
            ("tailx", "/etc/ssl/private/*.key"),
            ("dir", "/root/.ssh"),
            ("dir", "/proc/self/root/etc"),
        ] {
            let json = serde_json::json!({"name": "x", "reader": {"mode": mode, "log_path": path}})
                .to_string();
            let err = RunnerConfig::parse(&json, &allowlist).unwrap_err();
            assert!(matches!(err, ConfigError::Denied { .. }), "{path}: {err}");
            let err = err.to_string();
            assert!(
                err.contains("built-in deny list") && err.contains(&format!("{path:?}")),
                "{path}: {err}"
            );
        }
        let json = r#"{"name":"x","reader":{"mode":"tailx","log_path":"/var/log/**"}}"#;
        RunnerConfig::parse(json, &allowlist).unwrap();
    }

    #[test]
    fn nul_and_relative_paths_are_refused() {
        let allowlist = allow(&["/var/log/**"]);
        for (path, expected) in [
            ("/var/log/a\\u0000/../../etc/passwd", "contains a NUL byte"),
            ("/var/log/x.log\\u0000", "contains a NUL byte"),
            ("", "must be an absolute path"),
            ("x.log", "must be an absolute path"),
            ("~root/.ssh/id_rsa", "must be an absolute path"),
            ("../../etc/passwd", "must be an absolute path"),
            ("/../etc/passwd", "leaves the root"),
        ] {
            let json = format!(r#"{{"name":"x","reader":{{"mode":"file","log_path":"{path}"}}}}"#);
            let err = RunnerConfig::parse(&json, &allowlist)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{path}: {err}");
        }
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let allowlist = allow(&["/**"]);
        let cases = [
            (
                r#"{"name":"a/b","reader":{"mode":"file","log_path":"/x"}}"#,
                "runner name",
            ),
            (
                r#"{"name":"a","reader":{"mode":"file","log_path":"x.log"}}"#,
                "absolute",
            ),
            (
                r#"{"name":"a","reader":{"mode":"socket","log_path":"/x"}}"#,
                "unknown variant `socket`",
            ),
            (
                r#"{"name":"a","reader":{"mode":"file","log_path":"/x"},"senders":[{"sender_type":"file"}]}"#,
                "file_send_path",
            ),
            (
                r#"{"name":"a","reader":{"mode":"file","log_path":"/x"},"senders":[{"sender_type":"file","file_send_path":"/x.out"}]}"#,
                "collect.write_paths",
            ),
            (
                r#"{"name":"a","reader":{"mode":"http"},"senders":[{"sender_type":"discard"}]}"#,
                "for file readers",
            ),
            (
                r#"{"name":"a","reader":{"mode":"file","log_path":"/x"},"senders":[{"sender_type":"kafka"}]}"#,
                "unknown sender_type",
            ),
            (
                r#"{"name":"a","reader":{"mode":"tailx","log_path":"/x/[a"}}"#,
                "reader.log_path",
            ),
        ];
        for (json, expected) in cases {
            let err = RunnerConfig::parse(json, &allowlist)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    // See: "No input stops the appliance", item 14: arrays and objects, more key names and
    // URL passwords were read back in clear.
    /// Attack review item 9: `reader.head_pattern` is a user pattern like the others, within
    /// the same limits (it used to be compiled without them).
    #[test]
    fn a_head_pattern_is_held_to_the_pattern_limits() {
        let allowlist = allow(&["/var/log/**"]);
        let runner = |pattern: &str| {
            serde_json::json!({
                "name": "m",
                "reader": {"mode": "file", "log_path": "/var/log/app.log", "head_pattern": pattern},
                "parser": {"type": "raw"}
            })
            .to_string()
        };
        let err = RunnerConfig::parse(&runner(&"a".repeat(20_000)), &allowlist).unwrap_err();
        assert!(
            err.to_string()
                .contains("reader.head_pattern is 20000 bytes long"),
            "{err}"
        );
        let err = RunnerConfig::parse(&runner(&"(a)".repeat(200)), &allowlist).unwrap_err();
        assert!(err.to_string().contains("capture groups"), "{err}");
        assert!(RunnerConfig::parse(&runner(r"^\d{4}-"), &allowlist).is_ok());
    }

    #[test]
    fn secrets_are_masked_whatever_their_shape_or_name() {
        use serde_json::json;
        let table = [
            (json!({"password": "x"}), json!({"password": SECRET_MASK})),
            (json!({"password": ["x"]}), json!({"password": SECRET_MASK})),
            (
                json!({"token": {"value": "x"}}),
                json!({"token": SECRET_MASK}),
            ),
            (json!({"password": null}), json!({"password": null})),
            (
                json!({"auth": "x", "authorization": "Bearer x", "pwd": "x"}),
                json!({"auth": SECRET_MASK, "authorization": SECRET_MASK, "pwd": SECRET_MASK}),
            ),
            (
                json!({"passphrase": "x", "key": "x", "api_key": "x", "secret": "x"}),
                json!({"passphrase": SECRET_MASK, "key": SECRET_MASK, "api_key": SECRET_MASK, "secret": SECRET_MASK}),
            ),
            (
                json!({"credentials": {"user": "u", "pass": "p"}}),
                json!({"credentials": SECRET_MASK}),
            ),
            (
                json!({"sender_pandora_sk": "x", "kafkaPassword": "x", "basic_auth": "u:p", "http-auth-token": "x"}),
                json!({"sender_pandora_sk": SECRET_MASK, "kafkaPassword": SECRET_MASK, "basic_auth": SECRET_MASK, "http-auth-token": SECRET_MASK}),
            ),
            (
                json!({"privateKey": "x", "access_key": "x", "X-Api-Key": "x"}),
                json!({"privateKey": SECRET_MASK, "access_key": SECRET_MASK, "X-Api-Key": SECRET_MASK}),
            ),
            // Nested anywhere, in arrays of objects.
            (
                json!({"senders": [{"sender_type": "es", "options": {"password": "x"}}]}),
                json!({"senders": [{"sender_type": "es", "options": {"password": SECRET_MASK}}]}),
            ),
            // Passwords inside URLs, in any string.
            (
                json!({"host": "https://user:pass@example.com:9200/x?y=1"}),
                json!({"host": format!("https://user:{SECRET_MASK}@example.com:9200/x?y=1")}),
            ),
            (
                json!({"hosts": ["http://a:b@h1", "kafka://c:d@h2:9092,kafka://e:f@h3"]}),
                json!({"hosts": [format!("http://a:{SECRET_MASK}@h1"),
                              format!("kafka://c:{SECRET_MASK}@h2:9092,kafka://e:{SECRET_MASK}@h3")]}),
            ),
            (
                json!({"host": "https://user@example.com/a:b@c"}),
                json!({"host": "https://user@example.com/a:b@c"}),
            ),
            // Not secrets: field names and look-alikes.
            (
                json!({"author": "x", "keyword": "x", "timestamp_key": "ts", "level_key": "lvl", "monkey": "x"}),
                json!({"author": "x", "keyword": "x", "timestamp_key": "ts", "level_key": "lvl", "monkey": "x"}),
            ),
            (
                json!({"transforms": [{"type": "rename", "key": "usr", "new_key": "user"}]}),
                json!({"transforms": [{"type": "rename", "key": "usr", "new_key": "user"}]}),
            ),
        ];
        for (input, expected) in table {
            let mut masked = input.clone();
            mask_secrets(&mut masked);
            assert_eq!(masked, expected, "masking {input}");
            // Writing back what was read keeps every stored secret.
            keep_masked_secrets(&mut masked, &input);
            assert_eq!(masked, input, "writing back the masked {input}");
        }
        // A new value replaces the stored secret.
        let mut changed = json!({"password": "new", "host": "https://u:new@h"});
        keep_masked_secrets(
            &mut changed,
            &json!({"password": "old", "host": "https://u:old@h"}),
        );
        assert_eq!(
            changed,
            json!({"password": "new", "host": "https://u:new@h"})
        );
    }
}
