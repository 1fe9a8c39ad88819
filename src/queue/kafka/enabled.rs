//! The Kafka adapter. Its issue fills this in: it implements the seam's trait and passes the
//! seam's conformance suite against a real Kafka.

use crate::backends::BackendError;
use crate::config::NodeConfig;

/// Whether `config` can be served: the adapter is declared but not written yet.
pub fn check(_config: &NodeConfig) -> Result<(), BackendError> {
    Err(BackendError::NotWritten { feature: "kafka" })
}

/// The queue on Kafka (see `backends::open_queue`).
pub fn open(
    _config: &NodeConfig,
    _index: &crate::index::IndexCheckpoint,
) -> Result<std::sync::Arc<dyn crate::queue::Queue>, BackendError> {
    Err(BackendError::NotWritten { feature: "kafka" })
}
