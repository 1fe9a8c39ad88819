//! lograft: a self-contained log appliance.
//!
//! Data flow on one node (see `DESIGN.md` in the shared folder for the whole picture):
//!
//! ```text
//! files ──tail──▶ runner ──parse──▶ queue (sled) ──▶ indexer ──▶ tantivy day partitions ──▶ search
//! ```
//!
//! * [`collect`]: runners, the file tailer, parsers, senders (local, discard, file), the
//!   allowlist (what runners may read, and write), the supervisor.
//! * [`queue`]: the durable queue, atomic with file checkpoints (`Queue` seam; sled).
//! * [`index`]: the indexer thread, the `Sink` seam and its tantivy day partitions, merges
//!   (scheduled node-wide, at most two at once), retention.
//! * [`search`]: the query language, the search `Backend` seam (this node, another node), and
//!   cluster-wide search planned over it.
//! * [`cluster`]: the `ConfigStore` and `Membership` seams, on Raft (openraft) with sled.
//! * [`backends`]: which engine serves each seam; the one place an adapter registers.
//! * [`deploy`]: deployments (seed 002): bundles of runner configs rolled out to nodes under a
//!   state machine, executed one at a time under a lease in the config store.
//! * [`repair`]: `lograft repair`, what a stopped node's data dir holds that it would refuse.
//! * [`auth`]: users, sessions, API tokens, roles.
//! * [`api`]: the HTTP routes (thin: they call the layers above), lograft's own and logkit's
//!   (`api::logkit*`: per-node, cluster, plugin descriptions). [`node`] wires everything
//!   together for `lograft serve`.
//!
//! Layers only depend downwards: nothing imports from `api`; constants two layers share live
//! in [`record`] (audit runner, end of time) and [`wire`] (node-to-node headers).

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
pub mod deploy;
pub mod fsutil;
pub mod index;
pub mod metrics;
pub mod node;
pub mod queue;
pub mod record;
pub mod repair;
pub mod search;
#[cfg(test)]
mod testutil;
pub mod tls;
pub mod wire;
