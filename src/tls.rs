//! TLS helpers: HTTP clients that verify servers against a configured CA (node-to-node calls
//! with `tls.ca`, and the CLI's `--ca`). Serving HTTPS lives in `node`.

use std::path::Path;

use anyhow::Context;

fn load_ca(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).with_context(|| format!("reading CA {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A blocking client (CLI) that trusts `ca` in addition to the system roots.
pub fn blocking_client(ca: Option<&Path>) -> anyhow::Result<reqwest::blocking::Client> {
    install_provider();
    let mut builder = reqwest::blocking::Client::builder();
    if let Some(ca) = ca {
        for cert in load_ca(ca)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the HTTP client")
}

/// The client for node-to-node calls: verifies peers against `tls.ca` when configured.
pub fn peer_client(ca: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    install_provider();
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
    if let Some(ca) = ca {
        for cert in load_ca(ca)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().context("building the node-to-node client")
}
