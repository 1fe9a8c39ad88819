//! Collection: runners (logkit's word for a collection job = reader + parser + senders),
//! the file tailer, parsers, the node allowlist, and the supervisor that keeps the running
//! runners equal to the configs in the store.

pub mod allowlist;
pub mod bulk;
pub mod config;
pub mod framing;
pub mod limit;
pub mod listen;
pub mod multiline;
pub mod parse;
pub mod runner;
pub mod sender;
pub mod supervisor;
pub mod tail;
pub mod transform;

pub use allowlist::Allowlist;
pub use config::RunnerConfig;
pub use runner::{RunnerSettings, RunnerStatus};
pub use supervisor::{
    RUNNER_PREFIX, Supervisor, migrate_runner_keys, node_runner_prefix, runner_key,
};
