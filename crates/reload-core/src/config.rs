//! A node's configuration: the overlay parameters of the configuration document
//! (RFC 6940 §11.1) that the core uses, and the node's own settings.

use std::time::Duration;

use reload_wire::{DataModels, IceCandidate, NodeId, OverlayHash, forwarding};

use crate::storage::KindRegistry;

/// Parameters of the overlay and of this node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The overlay's hash (§6.3.2).
    pub overlay: OverlayHash,
    /// This node's Node-ID (from its certificate).
    pub node_id: NodeId,
    /// A client (§4.2) uses the overlay but neither routes nor stores.
    pub client: bool,
    /// The configuration document's sequence number (§6.3.2.1).
    pub configuration_sequence: u16,
    /// `initial-ttl` (default 100).
    pub initial_ttl: u8,
    /// `max-message-size` (default 5000).
    pub max_message_size: usize,
    /// `overlay-reliability-timer` (default 3 s): the end-to-end retransmission timer.
    pub reliability_timer: Duration,
    /// End-to-end transmissions of a request before it fails (§6.2.1: 5).
    pub max_transmissions: u32,
    /// `chord-update-interval`: period of neighbor Updates (§10.7.4.1).
    pub update_interval: Duration,
    /// `chord-ping-interval`: period of finger refresh (§10.7.4.2).
    pub ping_interval: Duration,
    /// `chord-reactive`: send Updates as soon as the neighbor table changes (§10.7.1).
    pub reactive: bool,
    /// Successors and predecessors to keep (at least 3, §10.7).
    pub neighbors: usize,
    /// Smallest finger table (16, §10.7.4.3).
    pub min_fingers: usize,
    /// Largest finger table (128, §10.7.4.3).
    pub max_fingers: usize,
    /// Period of the partition check (§10.7.4.4).
    pub partition_check_interval: Duration,
    /// Reassembly buffer limit, in bytes, across all partial messages (§6.7).
    pub reassembly_limit: usize,
    /// Maximum request lifetime: incomplete fragments and answer caches expire after it (§6.7, §6.2.1).
    pub request_lifetime: Duration,
    /// The addresses this node accepts links on, offered in Attach (No-ICE, §6.5.1.11).
    pub candidates: Vec<IceCandidate>,
    /// Data models of the overlay's Kinds, as the codec needs them.
    pub data_models: DataModels,
    /// The Kinds this peer stores (§7.4.5, §11.1); keep `data_models` in step.
    pub kinds: KindRegistry,
    /// Report every change to the stored values as a
    /// [`StorageChange`](crate::storage::StorageChange) for the runtime to make durable
    /// (real peers); off in the simulator, which keeps everything in memory.
    pub persist_storage: bool,
}

impl NodeConfig {
    /// The RFC's defaults for a peer with `node_id` in `overlay`.
    pub fn new(overlay: OverlayHash, node_id: NodeId) -> Self {
        NodeConfig {
            overlay,
            node_id,
            client: false,
            configuration_sequence: 0,
            initial_ttl: forwarding::DEFAULT_TTL,
            max_message_size: reload_wire::message::DEFAULT_MAX_MESSAGE_SIZE,
            reliability_timer: Duration::from_millis(3000),
            max_transmissions: 5,
            update_interval: Duration::from_secs(600),
            ping_interval: Duration::from_secs(3600),
            reactive: true,
            neighbors: 3,
            min_fingers: 16,
            max_fingers: 128,
            partition_check_interval: Duration::from_secs(600),
            reassembly_limit: 256 * 1024,
            request_lifetime: Duration::from_secs(15),
            candidates: Vec::new(),
            data_models: DataModels::registered(),
            kinds: KindRegistry::builtin(),
            persist_storage: false,
        }
    }
}
