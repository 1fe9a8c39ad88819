//! The queue on Kafka (`[queue] backend = "kafka"`), built with `--features kafka`.
//!
//! ripgrep's pattern: `enabled.rs` and `disabled.rs` have the same signatures; a build
//! without the feature gets `disabled.rs`, which refuses a config that asks for it with a
//! message that says how to rebuild. The adapter registers in `crate::backends` only.

#[cfg(feature = "kafka")]
mod enabled;
#[cfg(feature = "kafka")]
pub use enabled::*;

#[cfg(not(feature = "kafka"))]
mod disabled;
#[cfg(not(feature = "kafka"))]
pub use disabled::*;
