//! This build has no Kafka adapter.

use crate::backends::BackendError;
use crate::config::NodeConfig;

/// Whether `config` can be served by this build: never, it lacks the feature.
pub fn check(_config: &NodeConfig) -> Result<(), BackendError> {
    Err(BackendError::NotBuilt { feature: "kafka" })
}

/// The queue on Kafka (see `backends::open_queue`).
pub fn open(
    _config: &NodeConfig,
    _index: &crate::index::IndexCheckpoint,
) -> Result<std::sync::Arc<dyn crate::queue::Queue>, BackendError> {
    Err(BackendError::NotBuilt { feature: "kafka" })
}
