//! lograft: a self-contained log appliance.
//!
//! Data flow on one node (see `DESIGN.md` in the shared folder for the whole picture):
//!
//! ```text
//! files ──tail──▶ runner ──parse──▶ queue (sled) ──▶ indexer ──▶ tantivy day partitions ──▶ search
//! ```
//!
//! * [`collect`]: runners, the file tailer, parsers, the allowlist, the supervisor.
//! * [`queue`]: the durable queue, atomic with file checkpoints.
//! * [`index`]: day partitions, the indexer thread, retention, exactly-once bookkeeping.
//! * [`search`]: query parsing and local execution.
//! * [`cluster`]: the config store (single-node sled now; Raft later).
//! * [`auth`]: users, sessions, API tokens, roles.
//! * [`api`]: the HTTP routes. [`node`] wires everything together for `lograft serve`.

pub mod api;
pub mod auth;
pub mod backends;
pub mod cli;
mod cli_admin;
mod cli_local;
mod cli_search;
pub mod cluster;
pub mod collect;
pub mod config;
pub mod fsutil;
pub mod index;
pub mod metrics;
pub mod node;
pub mod queue;
pub mod record;
pub mod search;
pub mod tls;
pub mod wire;
