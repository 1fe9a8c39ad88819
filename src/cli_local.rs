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

/// The local node's config, if it can be read, and which file (or the defaults) it came from.
fn local_config() -> (Result<NodeConfig, String>, String) {
    let path = match std::env::var_os("LOGRAFT_CONFIG") {
        Some(path) => Some(PathBuf::from(path)),
        None => Path::new(PACKAGE_CONFIG)
            .exists()
            .then(|| PathBuf::from(PACKAGE_CONFIG)),
    };
    let source = match &path {
        Some(path) => path.display().to_string(),
        None => format!("the embedded defaults (no LOGRAFT_CONFIG, no {PACKAGE_CONFIG})"),
    };
    let config = NodeConfig::load(path.as_deref()).map_err(|err| format!("{err:#}"));
    (config, source)
}

/// Fill in what the caller did not give: with no `url`, the local node's URL, and then its
/// token and CA unless given. A token is never sent to a URL the caller chose.
///
/// Returns, when the token was to come from the local node, a sentence saying where it was
/// read or looked for: the CLI adds it to a 401 or a "no token" error.
pub fn fill(
    url: &mut Option<String>,
    token: &mut Option<String>,
    ca: &mut Option<PathBuf>,
) -> Option<String> {
    if url.is_some() {
        return None;
    }
    let (config, source) = local_config();
    let config = match config {
        Ok(config) => config,
        Err(reason) => {
            *url = Some("http://127.0.0.1:7700".into());
            return token.is_none().then(|| {
                format!(
                    "no local token: cannot read the node config {source} ({reason}); run as root \
                     or a member of group lograft, or give --token (LOGRAFT_TOKEN)"
                )
            });
        }
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
    let mut hint = None;
    if token.is_none() {
        let token_path = config.data_dir.join(CLI_TOKEN_FILE);
        // Say the absolute path: a relative default data_dir is relative to where this runs.
        let shown = std::path::absolute(&token_path).unwrap_or(token_path.clone());
        match std::fs::read_to_string(&token_path) {
            Ok(text) if !text.trim().is_empty() => {
                *token = Some(text.trim().to_string());
                hint = Some(format!(
                    "the local token came from {} (data_dir of {source})",
                    shown.display()
                ));
            }
            Ok(_) => {
                hint = Some(format!(
                    "no local token: {} is empty (data_dir of {source}); give --token (LOGRAFT_TOKEN)",
                    shown.display()
                ))
            }
            Err(err) => {
                hint = Some(format!(
                    "no local token: cannot read {} ({err}; data_dir of {source}); set \
                     LOGRAFT_CONFIG to the node's config, or give --token (LOGRAFT_TOKEN)",
                    shown.display()
                ))
            }
        }
    }
    if ca.is_none() {
        *ca = config.tls.and_then(|tls| tls.ca);
    }
    hint
}
