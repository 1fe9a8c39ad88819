//! The Elasticsearch adapter. Its issue fills this in: it implements the seam's trait and passes the
//! seam's conformance suite against a real Elasticsearch.

use crate::backends::BackendError;
use crate::config::NodeConfig;

/// Whether `config` can be served: the adapter is declared but not written yet.
pub fn check(_config: &NodeConfig) -> Result<(), BackendError> {
    Err(BackendError::NotWritten {
        feature: "elasticsearch",
    })
}

/// The index sink on Elasticsearch (see `backends::open_sink`).
pub fn open_sink(_config: &NodeConfig) -> Result<Box<dyn crate::index::Sink>, BackendError> {
    Err(BackendError::NotWritten {
        feature: "elasticsearch",
    })
}

/// Search on Elasticsearch: one backend holding every node's data (see
/// `backends::search_topology`).
pub fn topology(
    _config: &NodeConfig,
    _membership: std::sync::Arc<dyn crate::cluster::Membership>,
) -> Result<std::sync::Arc<dyn crate::search::cluster::Topology>, BackendError> {
    Err(BackendError::NotWritten {
        feature: "elasticsearch",
    })
}
