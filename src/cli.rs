//! Command-line interface.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::config::NodeConfig;
use crate::search::SearchResponse;

#[derive(Debug, Parser)]
#[command(
    name = "lograft",
    version,
    about = "A self-contained log appliance: tail, queue, index, search"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance: tail files, index them, serve the API and UI.
    Serve {
        /// Node config (TOML). Every key is optional; without a file, embedded defaults apply.
        #[arg(long, short, env = "LOGRAFT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Search the logs of a running node and print the hits, newest first.
    Search {
        /// Query, e.g. `error AND runner:nginx` (empty: everything).
        #[arg(default_value = "")]
        query: String,
        /// Start of the time range: RFC 3339, a date, or relative (`-15m`, `now-1d`).
        #[arg(long, allow_hyphen_values = true)]
        from: Option<String>,
        /// End of the time range (default: now and later).
        #[arg(long, allow_hyphen_values = true)]
        to: Option<String>,
        /// Maximum hits to print.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the API response as JSON.
        #[arg(long)]
        json: bool,
        /// Node to ask.
        #[arg(long, env = "LOGRAFT_URL", default_value = "http://127.0.0.1:7700")]
        url: String,
        /// API token (`lograft token create`).
        #[arg(long, env = "LOGRAFT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// PEM CA to verify an https:// node against (besides the system roots).
        #[arg(long, env = "LOGRAFT_CA")]
        ca: Option<PathBuf>,
    },
    /// Manage users (on a running node with --url/--token, or offline with --config).
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        target: Target,
    },
    /// Cluster commands (more with the cluster issue).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
        #[command(flatten)]
        target: Target,
    },
    /// Manage API tokens (on a running node with --url/--token, or offline with --config).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        target: Target,
    },
    /// Work with node config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

/// Where a management command acts: a running node, or the data dir of a stopped one.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Act offline on the data dir of this node config (the node must be stopped).
    #[arg(long, global = true, conflicts_with = "url")]
    pub config: Option<PathBuf>,
    /// Act offline on this data dir (the node must be stopped).
    #[arg(long, global = true, conflicts_with_all = ["url", "config"])]
    pub data_dir: Option<PathBuf>,
    /// Act on a running node.
    #[arg(long, global = true, env = "LOGRAFT_URL")]
    pub url: Option<String>,
    /// Admin API token for --url.
    #[arg(long, global = true, env = "LOGRAFT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA to verify an https:// node against (besides the system roots).
    #[arg(long, global = true, env = "LOGRAFT_CA")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long, default_value = "reader")]
        role: String,
    },
    /// Change a user's password (read from standard input).
    Passwd { name: String },
    /// Delete a user.
    Del { name: String },
    /// List users.
    List,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Print the cluster secret that node-to-node calls carry (for joining nodes).
    Token,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (once: only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "reader")]
        role: String,
    },
    /// List tokens (ids, names, roles; never the secrets).
    List,
    /// Revoke a token by id; it stops working at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print the resolved config (defaults filled in).
    Check { file: PathBuf },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config } => {
            let config = NodeConfig::load(config.as_deref())?;
            init_logging();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("lograft-worker")
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(crate::node::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Search {
            query,
            from,
            to,
            limit,
            json,
            url,
            token,
            ca,
        } => search(
            &url,
            token.as_deref(),
            ca.as_deref(),
            &query,
            from,
            to,
            limit,
            json,
        ),
        Command::User { command, target } => crate::cli_admin::user(command, target),
        Command::Token { command, target } => crate::cli_admin::token(command, target),
        Command::Cluster { command, target } => crate::cli_admin::cluster(command, target),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let resolved = crate::config::check_file(&file)?;
            println!("# {}: OK\n{resolved}", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGRAFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

#[allow(clippy::too_many_arguments)]
fn search(
    url: &str,
    token: Option<&str>,
    ca: Option<&std::path::Path>,
    query: &str,
    from: Option<String>,
    to: Option<String>,
    limit: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let endpoint = format!("{}/api/v1/search", url.trim_end_matches('/'));
    let mut params = vec![("q", query.to_string()), ("limit", limit.to_string())];
    if let Some(from) = from {
        params.push(("from", from));
    }
    if let Some(to) = to {
        params.push(("to", to));
    }
    let client = crate::tls::blocking_client(ca)?;
    let mut request = client.get(&endpoint).query(&params);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .with_context(|| format!("cannot reach lograft at {url}"))?;
    let status = response.status();
    let body = response.text().context("reading the response")?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{status}: {message}");
    }
    if json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let result: SearchResponse = serde_json::from_str(&body).context("unexpected response")?;
    let colour = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    for hit in &result.hits {
        let level = if hit.level.is_empty() {
            "-"
        } else {
            &hit.level
        };
        let (start, end) = match (colour, level) {
            (true, "error" | "fatal" | "critical") => ("\x1b[31m", "\x1b[0m"),
            (true, "warn" | "warning") => ("\x1b[33m", "\x1b[0m"),
            (true, _) => ("\x1b[2m", "\x1b[0m"),
            _ => ("", ""),
        };
        // Log text is data: strip control characters so a line cannot drive the terminal.
        let message: String = hit
            .message
            .chars()
            .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
            .collect();
        writeln!(
            out,
            "{start}{} {} {} {level}{end} {message}",
            hit.ts, hit.node, hit.runner
        )?;
    }
    writeln!(
        out,
        "-- {} of {} matches ({} ms)",
        result.hits.len(),
        result.total,
        result.took_ms
    )?;
    Ok(ExitCode::SUCCESS)
}
