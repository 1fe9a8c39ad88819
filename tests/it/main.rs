//! Integration tests: the real `lograft` binary on loopback ports, real sled and tantivy.
//! One test binary with a module per area (build time on two cores).

mod harness;

mod attack;
mod auth;
mod authz;
mod cluster;
mod cluster_search;
mod collect;
mod crash;
mod deploy;
mod diskfull;
mod edge;
mod errors;
mod hostile;
mod ingest;
mod logkit;
mod logkit_fleet;
mod logkit_transcript;
mod merge;
mod partition;
mod query;
mod recovery;
mod rotation;
mod search;
mod security_paths;
mod stream;
mod tls;
mod ui;
