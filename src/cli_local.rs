//! The node on this machine, for CLI calls given no `--url`: its URL, CA and local admin token
//! come from its config (`LOGRAFT_CONFIG`, else `/etc/lograft/lograft.toml` when present, else
//! the embedded defaults) and from the token file the node keeps in its data dir.
//!
//! The node writes `<data_dir>/cli-token` (mode 0600, readable by the node's user and root)
//! holding an admin API token named `local-cli-<node>`, so `lograft search error` works on the
//! node's machine without flags.

use std::path::{Path, PathBuf};

use crate::config::NodeConfig;

/// The token file in a data dir.
pub const CLI_TOKEN_FILE: &str = "cli-token";

const PACKAGE_CONFIG: &str = "/etc/lograft/lograft.toml";

/// The local node's config, if it can be read.
fn local_config() -> Option<NodeConfig> {
    let path = match std::env::var_os("LOGRAFT_CONFIG") {
        Some(path) => Some(PathBuf::from(path)),
        None => Path::new(PACKAGE_CONFIG)
            .exists()
            .then(|| PathBuf::from(PACKAGE_CONFIG)),
    };
    NodeConfig::load(path.as_deref()).ok()
}

/// Fill in what the caller did not give: with no `url`, the local node's URL, and then its
/// token and CA unless given. A token is never sent to a URL the caller chose.
pub fn fill(url: &mut Option<String>, token: &mut Option<String>, ca: &mut Option<PathBuf>) {
    if url.is_some() {
        return;
    }
    let Some(config) = local_config() else {
        *url = Some("http://127.0.0.1:7700".into());
        return;
    };
    let host = if config.listen.ip().is_unspecified() {
        std::net::SocketAddr::new([127, 0, 0, 1].into(), config.listen.port())
    } else {
        config.listen
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    *url = Some(format!("{scheme}://{host}"));
    if token.is_none() {
        *token = std::fs::read_to_string(config.data_dir.join(CLI_TOKEN_FILE))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
    }
    if ca.is_none() {
        *ca = config.tls.and_then(|tls| tls.ca);
    }
}
