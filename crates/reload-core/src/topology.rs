//! The topology plug-in (RFC 6940 §4.5, §6.4): which peer is responsible for an
//! identifier, where to route next, which peers to keep, and where to look for
//! more. The node's message transport and its Join/Update/Leave handling drive
//! any implementation through this trait; CHORD-RELOAD ([`crate::chord::Chord`],
//! §10) is the one the RFC mandates and the one p2psip ships.
//!
//! The Update and Leave bodies on the wire are CHORD-RELOAD's (§10.7, §10.9):
//! predecessors, successors and routing entries, which the trait exposes as the
//! neighbor table and [`Topology::routing_entries`].

use rand_core::RngCore;
use reload_wire::NodeId;

use crate::chord::NeighborTable;
use crate::config::NodeConfig;
use crate::ring::Point;

/// Why a topology wants a link to a peer it has heard of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// It belongs in the neighbor table (closer than a current neighbor).
    Neighbor,
    /// It would fill a routing-table slot that is empty now.
    RoutingEntry,
    /// Not needed.
    None,
}

/// A topology plug-in: the routing table of one peer.
pub trait Topology {
    /// The topology for the node `cfg` describes.
    fn for_node(cfg: &NodeConfig) -> Self
    where
        Self: Sized;

    /// The algorithm's name in the configuration document (§11.1, registry §14.3).
    fn name(&self) -> &'static str;

    /// Adds a connected peer that is part of the overlay; true if it was new.
    fn insert(&mut self, id: NodeId) -> bool;
    /// Removes a peer; true if it was there.
    fn remove(&mut self, id: NodeId) -> bool;
    /// Whether `id` is in the routing table.
    fn contains(&self, id: NodeId) -> bool;
    /// Whether the routing table is empty (this peer is alone).
    fn is_empty(&self) -> bool;
    /// Every peer in the routing table.
    fn members(&self) -> Vec<NodeId>;

    /// Whether this peer is responsible for `k`.
    fn is_responsible(&self, k: Point) -> bool;
    /// The peer to send a message for `k` to (§6.1.2).
    fn next_hop(&self, k: Point) -> Option<NodeId>;
    /// The first known peer at or after `k`: a way forward when the usual next hop
    /// is where the message came from.
    fn successor_of(&self, k: Point) -> Option<NodeId>;
    /// The neighbor table.
    fn neighbor_table(&self) -> NeighborTable;
    /// The immediate successor.
    fn successor(&self) -> Option<NodeId>;
    /// The immediate predecessor: the lower bound of the responsible range.
    fn predecessor(&self) -> Option<NodeId>;
    /// The share of the overlay this peer is responsible for, in parts per billion (§6.4.2.5).
    fn responsible_ppb(&self) -> u32;
    /// The routing entries beyond the neighbors (CHORD-RELOAD's fingers), ascending.
    fn routing_entries(&self) -> Vec<NodeId>;
    /// Whether the link to `id` is needed for the routing table.
    fn is_needed(&self, id: NodeId) -> bool;

    /// Where a joining node attaches first: the admitting peer is responsible for it (§10.5).
    fn join_target(&self) -> Point;
    /// Whether a peer this node has heard of should be attached to.
    fn interest(&self, id: NodeId) -> Interest;
    /// Points whose responsible peers should be attached to, to fill or improve
    /// the routing table. `initial` is the search at join time.
    fn search_targets(&self, initial: bool, rng: &mut dyn RngCore) -> Vec<Point>;
}
