//! This build has no etcd adapter.

use crate::backends::BackendError;
use crate::config::NodeConfig;

/// Whether `config` can be served by this build: never, it lacks the feature.
pub fn check(_config: &NodeConfig) -> Result<(), BackendError> {
    Err(BackendError::NotBuilt { feature: "etcd" })
}

/// The config store and membership on etcd (see `backends::start_control_plane`).
pub async fn start(
    _config: &NodeConfig,
    _peer_client: reqwest::Client,
    _node_scoped: &[&str],
) -> Result<crate::backends::ControlPlane, BackendError> {
    Err(BackendError::NotBuilt { feature: "etcd" })
}
