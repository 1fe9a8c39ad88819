//! The etcd adapter. Its issue fills this in: it implements the seam's trait and passes the
//! seam's conformance suite against a real etcd.

use crate::backends::BackendError;
use crate::config::NodeConfig;

/// Whether `config` can be served: the adapter is declared but not written yet.
pub fn check(_config: &NodeConfig) -> Result<(), BackendError> {
    Err(BackendError::NotWritten { feature: "etcd" })
}

/// The config store and membership on etcd (see `backends::start_control_plane`).
pub async fn start(
    _config: &NodeConfig,
    _peer_client: reqwest::Client,
    _node_scoped: &[&str],
) -> Result<crate::backends::ControlPlane, BackendError> {
    Err(BackendError::NotWritten { feature: "etcd" })
}
