//! This build has no Elasticsearch adapter.

use crate::backends::BackendError;
use crate::config::NodeConfig;

/// Whether `config` can be served by this build: never, it lacks the feature.
pub fn check(_config: &NodeConfig) -> Result<(), BackendError> {
    Err(BackendError::NotBuilt {
        feature: "elasticsearch",
    })
}

/// The index sink on Elasticsearch (see `backends::open_sink`).
pub fn open_sink(_config: &NodeConfig) -> Result<Box<dyn crate::index::Sink>, BackendError> {
    Err(BackendError::NotBuilt {
        feature: "elasticsearch",
    })
}

/// Search on Elasticsearch: one backend holding every node's data (see
/// `backends::search_topology`).
pub fn topology(
    _config: &NodeConfig,
    _membership: std::sync::Arc<dyn crate::cluster::Membership>,
) -> Result<std::sync::Arc<dyn crate::search::cluster::Topology>, BackendError> {
    Err(BackendError::NotBuilt {
        feature: "elasticsearch",
    })
}
