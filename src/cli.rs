//! Command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::NodeConfig;

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
    /// Search the logs of a running node: hits newest first, or --top/--histogram/--fields.
    Search(crate::cli_search::SearchArgs),
    /// Follow the lines matching a query as they are indexed.
    Tail(crate::cli_search::TailArgs),
    /// Manage users (on a running node with --url/--token, or offline with --config).
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        target: Target,
    },
    /// The cluster: status, join, leave, remove, tag, token.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Manage API tokens (on a running node with --url/--token, or offline with --config).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        target: Target,
    },
    /// Deployments (seed 002): list, show, create, plan, deploy, start, stop, log.
    Deploy {
        #[command(subcommand)]
        command: DeployCommand,
        #[command(flatten)]
        target: Target,
    },
    /// Work with node config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// What a stopped node's data dir holds that it would refuse or set aside at start, and
    /// what can be done (a dry run unless --apply; nothing indexed is deleted).
    Repair {
        #[arg(long, short, env = "LOGRAFT_CONFIG")]
        config: Option<PathBuf>,
        /// Do what the dry run lists: move damaged files aside, begin a new config store.
        #[arg(long)]
        apply: bool,
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
    /// Mint a join token and print it (once): a new node joins with it. It expires (--ttl,
    /// default 1h, at most 7d), is used up after --uses joins (default 1) and can be revoked;
    /// the joining node trades it for the cluster secret, which is never printed.
    Token {
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        uses: Option<u32>,
        #[command(flatten)]
        target: Target,
    },
    /// List the join tokens not used up yet (ids, expiry, uses left; never the secrets).
    Tokens {
        #[command(flatten)]
        target: Target,
    },
    /// Revoke a join token by id before it is used.
    RevokeToken {
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Nodes with their role, status, tag, version and last heartbeat.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Make the running node at --url (still alone) join the cluster of PEER. Its one-node
    /// state is replaced by the cluster's; its own runner configs are kept. (A node that has
    /// not started yet joins with `[cluster] join` and `join_token` in its config instead.)
    Join {
        /// URL of any member, e.g. https://10.0.0.1:7700.
        #[arg(long)]
        peer: String,
        /// A join token (`lograft cluster token` on a member).
        #[arg(long, env = "LOGRAFT_JOIN_TOKEN", hide_env_values = true)]
        token: String,
        /// The node that joins. Default http://127.0.0.1:7700.
        #[arg(long, env = "LOGRAFT_URL")]
        url: Option<String>,
        /// An admin API token of the node that joins.
        #[arg(long, env = "LOGRAFT_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// PEM CA to verify an https:// node against (besides the system roots).
        #[arg(long, env = "LOGRAFT_CA")]
        ca: Option<PathBuf>,
    },
    /// The node at --url leaves the cluster (its runner configs are deleted).
    Leave {
        #[command(flatten)]
        target: Target,
    },
    /// Remove a node (e.g. a dead one) from the cluster.
    Remove {
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Set a node's tag (default: the node at --url).
    Tag {
        tag: String,
        #[arg(long)]
        node: Option<String>,
        #[command(flatten)]
        target: Target,
    },
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
pub enum DeployCommand {
    /// Every deployment: id, state, name.
    List,
    /// One deployment as JSON.
    Show { id: String },
    /// Create a deployment from a JSON file (seed 002's shape); prints its id.
    Create {
        #[arg(long, short)]
        file: PathBuf,
    },
    /// Replace a deployment's content from a JSON file (in a state that allows edit).
    Edit {
        id: String,
        #[arg(long, short)]
        file: PathBuf,
    },
    /// What a deploy would do: the files each node matches now, and the diff.
    Plan { id: String },
    /// Deploy (or update), and wait for the result.
    Deploy { id: String },
    /// Start, and wait for the result.
    Start { id: String },
    /// Stop, and wait for the result.
    Stop { id: String },
    /// The log of the deployment's last execution.
    Log { id: String },
    /// Delete a deployment (and the runners it wrote).
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print the resolved config (defaults filled in).
    Check { file: PathBuf },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Before any thread or file exists: everything the node (or an offline `user`/`token`
    // command on its data dir) creates is private to its user.
    crate::fsutil::restrict_umask();
    match cli.command {
        Command::Serve {
            config: config_path,
        } => {
            let config = NodeConfig::load(config_path.as_deref())?;
            if let Some(path) = &config_path {
                crate::config::check_file_mode(path, &config)?;
            }
            init_logging();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("lograft-worker")
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(crate::node::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Search(args) => crate::cli_search::search(args),
        Command::Tail(args) => crate::cli_search::tail(args),
        Command::User { command, target } => crate::cli_admin::user(command, target),
        Command::Token { command, target } => crate::cli_admin::token(command, target),
        Command::Cluster { command } => crate::cli_admin::cluster(command),
        Command::Deploy { command, target } => crate::cli_admin::deploy(command, target),
        Command::Repair { config, apply } => {
            let config = NodeConfig::load(config.as_deref())?;
            crate::repair::run(&config, apply)?;
            Ok(ExitCode::SUCCESS)
        }
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
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}
