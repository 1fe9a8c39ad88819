//! What nodes say to each other, shared by the layers that speak it (`cluster` sends, `api`
//! checks): lower layers take these from here, never from `api`.

/// Header carrying the cluster secret on node-to-node calls.
pub const CLUSTER_SECRET_HEADER: &str = "x-lograft-cluster-secret";
