//! The config store and membership on etcd (`[cluster] backend = "etcd"`), built with `--features etcd`.
//!
//! ripgrep's pattern: `enabled.rs` and `disabled.rs` have the same signatures; a build
//! without the feature gets `disabled.rs`, which refuses a config that asks for it with a
//! message that says how to rebuild. The adapter registers in `crate::backends` only.

#[cfg(feature = "etcd")]
mod enabled;
#[cfg(feature = "etcd")]
pub use enabled::*;

#[cfg(not(feature = "etcd"))]
mod disabled;
#[cfg(not(feature = "etcd"))]
pub use disabled::*;
