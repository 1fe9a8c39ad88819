//! What nodes say to each other, shared by the layers that speak it (`cluster` sends, `api`
//! checks): lower layers take these from here, never from `api`.

/// Header carrying the cluster secret on node-to-node calls.
pub const CLUSTER_SECRET_HEADER: &str = "x-lograft-cluster-secret";

/// Header on a write a member forwards to the leader: the forwarding member's Raft id.
pub const ORIGIN_NODE_HEADER: &str = "x-lograft-origin-node";

/// Header on a forwarded write: its request id, the same on every retry, so the leader's
/// state machine applies it once (at most 200 characters of `[A-Za-z0-9:_.-]`).
pub const REQUEST_ID_HEADER: &str = "x-lograft-request-id";

/// Whether `id` is a request id (or an idempotency key) lograft takes.
pub fn is_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.-".contains(&b))
}

/// Header carrying a join token to the one route it opens (`/internal/v1/cluster/exchange`).
pub const JOIN_TOKEN_HEADER: &str = "x-lograft-join-token";
