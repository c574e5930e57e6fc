//! Counters of what a node did and what it refused, so that nothing is dropped
//! without a trace.

/// Per-node counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Messages received.
    pub received: u64,
    /// Messages this node originated (requests and answers), first transmissions.
    pub sent: u64,
    /// Requests this node sent to itself and answered without the network.
    pub local_deliveries: u64,
    /// Messages forwarded for others.
    pub forwarded: u64,
    /// End-to-end retransmissions (§6.2.1).
    pub retransmissions: u64,
    /// Requests that failed after every retransmission.
    pub requests_failed: u64,
    /// Requests answered.
    pub requests_answered: u64,
    /// Error responses sent.
    pub errors_sent: u64,
    /// Updates sent.
    pub updates_sent: u64,
    /// Attaches sent.
    pub attaches_sent: u64,
    /// Attaches refused by the other side.
    pub attach_refused: u64,
    /// Simultaneous attaches resolved by the Node-ID tie-break (§6.5.1.2).
    pub attach_tie_breaks: u64,
    /// Joins this peer admitted.
    pub joins_admitted: u64,
    /// Joins of this node that were refused.
    pub join_refused: u64,
    /// Leaves received.
    pub leaves_received: u64,
    /// Neighbors or fingers lost.
    pub neighbor_failures: u64,
    /// Replica Stores sent to successors (§10.4) and hand-overs (§10.7.3).
    pub replica_stores_sent: u64,
    /// Replica stores refused or unanswered (retried while the tables converge).
    pub replica_stores_failed: u64,
    /// Fetches of newer data after a replica store was refused as too old (§7.4.1.1).
    pub resyncs: u64,
    /// Resource-IDs dropped because this peer left their replica set (§10.7.3).
    pub resources_dropped: u64,
    /// Partitions found by the partition check (§10.7.4.4).
    pub partitions_detected: u64,
    /// Links closed because no table needed them.
    pub links_pruned: u64,
    /// Bootstrap connection attempts that failed.
    pub bootstrap_failures: u64,
    /// Connection attempts to peers that failed.
    pub connect_failures: u64,
    /// Fragments sent (§6.7).
    pub fragments_sent: u64,
    /// Fragments received for this node.
    pub fragments_received: u64,
    /// Dropped: a fragmented message over the reassembly limits.
    pub dropped_reassembly: u64,
    /// Dropped: could not be parsed.
    pub dropped_malformed: u64,
    /// Dropped: another overlay or version.
    pub dropped_incompatible: u64,
    /// Dropped: TTL exhausted or above initial-ttl.
    pub dropped_ttl: u64,
    /// Dropped: a routing loop.
    pub dropped_loop: u64,
    /// Requests sent on to the target's successor because the next hop was the
    /// previous hop (tables still converging).
    pub detours: u64,
    /// Dropped: nowhere to route.
    pub dropped_no_route: u64,
    /// Dropped: the signature did not verify.
    pub dropped_bad_signature: u64,
    /// Dropped: arrived on a link the node does not know.
    pub dropped_unknown_link: u64,
    /// Dropped: an answer to no pending request.
    pub dropped_unexpected_response: u64,
    /// Dropped: an answer from the wrong node (§6.3.4).
    pub dropped_wrong_responder: u64,
    /// Fetched values dropped from an answer: their signature did not verify or
    /// their signer may not write there (a forged or tampered answer, §7.4.2).
    pub fetched_values_rejected: u64,
    /// Messages not sent: no link towards the destination.
    pub send_no_route: u64,
    /// Messages not sent: over max-message-size.
    pub send_too_large: u64,
}
