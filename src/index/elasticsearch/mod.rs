//! The index and search on Elasticsearch (`[index] backend = "elasticsearch"`), built with `--features elasticsearch`.
//!
//! ripgrep's pattern: `enabled.rs` and `disabled.rs` have the same signatures; a build
//! without the feature gets `disabled.rs`, which refuses a config that asks for it with a
//! message that says how to rebuild. The adapter registers in `crate::backends` only.

#[cfg(feature = "elasticsearch")]
mod enabled;
#[cfg(feature = "elasticsearch")]
pub use enabled::*;

#[cfg(not(feature = "elasticsearch"))]
mod disabled;
#[cfg(not(feature = "elasticsearch"))]
pub use disabled::*;
