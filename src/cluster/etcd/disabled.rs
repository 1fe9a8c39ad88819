//! This build has no etcd adapter.

use crate::backends::BackendError;
use crate::config::NodeConfig;

/// Whether `config` can be served by this build: never, it lacks the feature.
pub fn check(_config: &NodeConfig) -> Result<(), BackendError> {
    Err(BackendError::NotBuilt { feature: "etcd" })
}
