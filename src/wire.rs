//! What nodes say to each other, shared by the layers that speak it (`cluster` sends, `api`
//! checks): lower layers take these from here, never from `api`.

/// Header carrying the cluster secret on node-to-node calls.
pub const CLUSTER_SECRET_HEADER: &str = "x-lograft-cluster-secret";

/// Header on a write a member forwards to the leader: the forwarding member's Raft id.
pub const ORIGIN_NODE_HEADER: &str = "x-lograft-origin-node";

/// Header carrying a join token to the one route it opens (`/internal/v1/cluster/exchange`).
pub const JOIN_TOKEN_HEADER: &str = "x-lograft-join-token";
