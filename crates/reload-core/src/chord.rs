//! CHORD-RELOAD's routing state (RFC 6940 §10): the connected ring members, and
//! the neighbor and finger tables derived from them.
//!
//! The tables are not stored separately: the successors, predecessors and fingers
//! are the members of the ordered set of connected ring peers that lie closest to
//! this node and to the finger targets. Routing over all connected members is what
//! §10.3 asks for ("the Routing Table is conceptually the union of the Neighbor
//! Table and the Finger Table"), and a derived table can never disagree with the
//! connection table.

use std::collections::BTreeMap;

use reload_wire::NodeId;

use rand_core::RngCore;

use crate::config::NodeConfig;
use crate::ring::{self, Point};
use crate::topology::{Interest, Topology};

/// The ring as one peer sees it.
#[derive(Clone, Debug)]
pub struct Chord {
    me: Point,
    neighbors: usize,
    min_fingers: usize,
    max_fingers: usize,
    /// Connected peers known to be in the ring, by position.
    members: BTreeMap<Point, NodeId>,
}

/// The neighbor table: successors and predecessors, nearest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NeighborTable {
    /// Successors, nearest first.
    pub successors: Vec<NodeId>,
    /// Predecessors, nearest first.
    pub predecessors: Vec<NodeId>,
}

impl NeighborTable {
    /// Every neighbor, successors first, without repeats.
    pub fn all(&self) -> Vec<NodeId> {
        let mut out = self.successors.clone();
        for p in &self.predecessors {
            if !out.contains(p) {
                out.push(*p);
            }
        }
        out
    }
}

impl Chord {
    /// An empty ring view for the node at `me`.
    pub fn new(me: NodeId, neighbors: usize, min_fingers: usize, max_fingers: usize) -> Self {
        Chord {
            me: ring::point(me),
            neighbors: neighbors.max(1),
            min_fingers,
            max_fingers: max_fingers.clamp(1, 128),
            members: BTreeMap::new(),
        }
    }

    /// Adds a connected ring peer; true if it was new.
    pub fn insert(&mut self, id: NodeId) -> bool {
        let p = ring::point(id);
        p != self.me && self.members.insert(p, id).is_none()
    }

    /// Removes a peer; true if it was a member.
    pub fn remove(&mut self, id: NodeId) -> bool {
        self.members.remove(&ring::point(id)).is_some()
    }

    /// Whether `id` is a known ring member.
    pub fn contains(&self, id: NodeId) -> bool {
        self.members.contains_key(&ring::point(id))
    }

    /// Number of ring members known.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no ring member is known.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.values().copied()
    }

    /// Members clockwise from (and excluding) `from`, wrapping around once.
    fn clockwise(&self, from: Point) -> impl Iterator<Item = (&Point, &NodeId)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        self.members
            .range((Excluded(from), Unbounded))
            .chain(self.members.range((Unbounded, Included(from))))
    }

    /// Members counter-clockwise from (and excluding) `from`, wrapping around once.
    fn counter_clockwise(&self, from: Point) -> impl Iterator<Item = (&Point, &NodeId)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        self.members
            .range((Unbounded, Excluded(from)))
            .rev()
            .chain(self.members.range((Included(from), Unbounded)).rev())
    }

    /// The first member at or after `p` (its successor in the ring of members).
    pub fn successor_of(&self, p: Point) -> Option<NodeId> {
        self.members
            .get(&p)
            .copied()
            .or_else(|| self.clockwise(p).map(|(_, id)| *id).next())
    }

    /// The neighbor table (§10.7): up to `neighbors` successors and predecessors.
    pub fn neighbor_table(&self) -> NeighborTable {
        let k = self.neighbors;
        NeighborTable {
            successors: self.clockwise(self.me).take(k).map(|(_, id)| *id).collect(),
            predecessors: self.counter_clockwise(self.me).take(k).map(|(_, id)| *id).collect(),
        }
    }

    /// The immediate predecessor, which bounds the responsible range.
    pub fn predecessor(&self) -> Option<NodeId> {
        self.counter_clockwise(self.me).next().map(|(_, id)| *id)
    }

    /// The immediate successor.
    pub fn successor(&self) -> Option<NodeId> {
        self.clockwise(self.me).next().map(|(_, id)| *id)
    }

    /// Whether this peer is responsible for `k`: k in (predecessor, me] (§10.1).
    /// A peer that knows no other member is responsible for the whole ring.
    pub fn is_responsible(&self, k: Point) -> bool {
        match self.predecessor() {
            Some(p) => ring::in_half_open(k, ring::point(p), self.me),
            None => true,
        }
    }

    /// The fraction of the ring this peer is responsible for, in parts per billion.
    pub fn responsible_ppb(&self) -> u32 {
        let span = match self.predecessor() {
            Some(p) => ring::distance(ring::point(p), self.me),
            None => return 1_000_000_000,
        };
        let ppb = (span >> 64) as u128 * 1_000_000_000 / (1u128 << 64);
        u32::try_from(ppb).unwrap_or(u32::MAX)
    }

    /// The next hop towards `k` (§10.3): the member with the largest Node-ID in
    /// (me, k); if there is none, the member with the smallest Node-ID after k.
    ///
    /// Before that rule, one shortcut: the neighbor table lists peers that are
    /// adjacent in the ring, so when k falls between two consecutive successors
    /// (or predecessors) the peer responsible for k is known exactly, and the
    /// message goes straight to it instead of to the peer before it.
    pub fn next_hop(&self, k: Point) -> Option<NodeId> {
        if let Some(id) = self.members.get(&k) {
            return Some(*id);
        }
        if let Some(owner) = self.known_owner(k) {
            return Some(owner);
        }
        match self.counter_clockwise(k).next() {
            Some((p, id)) if ring::in_open(*p, self.me, k) => Some(*id),
            _ => self.clockwise(k).next().map(|(_, id)| *id),
        }
    }

    /// The peer responsible for `k`, if the neighbor table pins it down: k lies in
    /// (a, b] for two ring-adjacent entries a, b of the table.
    fn known_owner(&self, k: Point) -> Option<NodeId> {
        let t = self.neighbor_table();
        let chain: Vec<Point> = t
            .predecessors
            .iter()
            .rev()
            .map(|p| ring::point(*p))
            .chain(std::iter::once(self.me))
            .chain(t.successors.iter().map(|s| ring::point(*s)))
            .collect();
        chain.windows(2).find_map(|w| {
            let (a, b) = (w[0], w[1]);
            (a != b && b != self.me && ring::in_half_open(k, a, b))
                .then(|| self.members.get(&b).copied())
                .flatten()
        })
    }

    /// The number of fingers to keep (§10.7.4.3): at least `min_fingers`, and
    /// enough that the smallest finger interval reaches no further than the last successor.
    pub fn finger_count(&self) -> usize {
        let last = self
            .neighbor_table()
            .successors
            .last()
            .map(|s| ring::distance(self.me, ring::point(*s)));
        let needed = match last {
            Some(d) if d > 0 => 128 - (127 - d.leading_zeros() as usize),
            _ => self.min_fingers,
        };
        needed.clamp(self.min_fingers, self.max_fingers)
    }

    /// Finger i's target, me + 2^(128-i), for i in 1..=128 (§10.5).
    pub fn finger_target(&self, i: usize) -> Point {
        let shift = 128 - i.clamp(1, 128);
        self.me.wrapping_add(1u128 << shift)
    }

    /// Finger i's valid interval [me+2^(128-i), me+2^(129-i)-1] (§10.7.4.2), as
    /// (start, length).
    pub fn finger_interval(&self, i: usize) -> (Point, u128) {
        let shift = 128 - i.clamp(1, 128);
        (self.finger_target(i), 1u128 << shift)
    }

    /// Finger i: the member in its valid interval closest to the target, if any.
    pub fn finger(&self, i: usize) -> Option<NodeId> {
        let (start, len) = self.finger_interval(i);
        let id = self.successor_of(start)?;
        (ring::distance(start, ring::point(id)) < len).then_some(id)
    }

    /// The finger table: finger i for i in 1..=count, `None` where invalid.
    pub fn fingers(&self) -> Vec<Option<NodeId>> {
        (1..=self.finger_count()).map(|i| self.finger(i)).collect()
    }

    /// Whether adding `id` would change the neighbor table.
    pub fn would_be_neighbor(&self, id: NodeId) -> bool {
        let p = ring::point(id);
        if p == self.me || self.members.contains_key(&p) {
            return false;
        }
        let t = self.neighbor_table();
        let closer = |list: &[NodeId], dist: &dyn Fn(Point) -> u128| {
            list.len() < self.neighbors || list.last().is_some_and(|last| dist(p) < dist(ring::point(*last)))
        };
        closer(&t.successors, &|x| ring::distance(self.me, x))
            || closer(&t.predecessors, &|x| ring::distance(x, self.me))
    }

    /// Whether `id` would fill a finger interval that no member fills now.
    pub fn would_fill_finger(&self, id: NodeId) -> bool {
        let p = ring::point(id);
        (1..=self.finger_count()).any(|i| {
            let (start, len) = self.finger_interval(i);
            ring::distance(start, p) < len && self.finger(i).is_none()
        })
    }

    /// Whether the peer at `id` is needed: a neighbor or a finger.
    pub fn is_needed(&self, id: NodeId) -> bool {
        let t = self.neighbor_table();
        t.successors.contains(&id) || t.predecessors.contains(&id) || self.fingers().contains(&Some(id))
    }
}

impl Chord {
    /// §10.7.4.2: where to look for fingers. At join every finger is searched at its
    /// target. Later an invalid finger is searched with probability 1/2 at a random
    /// point of its interval, as the RFC describes, and a valid one with probability
    /// 1/4 at its target, which finds a closer peer once the ring has grown past the
    /// one the finger was filled with (§10.7.4: "search for better peers").
    fn finger_search(&self, initial: bool, rng: &mut dyn RngCore) -> Vec<Point> {
        if self.is_empty() {
            // Alone in the ring: every finger would be this node.
            return Vec::new();
        }
        let successor = self.successor();
        let mut out = Vec::new();
        for i in 1..=self.finger_count() {
            let (start, len) = self.finger_interval(i);
            if successor.is_some_and(|s| ring::distance(start, ring::point(s)) < len) {
                // The successor itself is this finger: nothing closer exists.
                continue;
            }
            let roll = rng.next_u32();
            let target = match (initial, self.finger(i)) {
                (true, _) => start,
                (false, None) if roll & 1 == 1 => start.wrapping_add(random_below(rng, len)),
                (false, Some(f)) if roll & 3 == 0 && ring::point(f) != start => start,
                _ => continue,
            };
            out.push(target);
        }
        out
    }
}

/// A uniform random number below `bound`.
fn random_below(rng: &mut dyn RngCore, bound: u128) -> u128 {
    if bound <= 1 {
        return 0;
    }
    let r = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    r % bound
}

impl Topology for Chord {
    fn for_node(cfg: &NodeConfig) -> Self {
        Chord::new(cfg.node_id, cfg.neighbors, cfg.min_fingers, cfg.max_fingers)
    }

    fn name(&self) -> &'static str {
        "CHORD-RELOAD"
    }

    fn insert(&mut self, id: NodeId) -> bool {
        Chord::insert(self, id)
    }

    fn remove(&mut self, id: NodeId) -> bool {
        Chord::remove(self, id)
    }

    fn contains(&self, id: NodeId) -> bool {
        Chord::contains(self, id)
    }

    fn is_empty(&self) -> bool {
        Chord::is_empty(self)
    }

    fn members(&self) -> Vec<NodeId> {
        Chord::members(self).collect()
    }

    fn is_responsible(&self, k: Point) -> bool {
        Chord::is_responsible(self, k)
    }

    fn next_hop(&self, k: Point) -> Option<NodeId> {
        Chord::next_hop(self, k)
    }

    fn successor_of(&self, k: Point) -> Option<NodeId> {
        Chord::successor_of(self, k)
    }

    fn neighbor_table(&self) -> NeighborTable {
        Chord::neighbor_table(self)
    }

    fn successor(&self) -> Option<NodeId> {
        Chord::successor(self)
    }

    fn predecessor(&self) -> Option<NodeId> {
        Chord::predecessor(self)
    }

    fn responsible_ppb(&self) -> u32 {
        Chord::responsible_ppb(self)
    }

    fn routing_entries(&self) -> Vec<NodeId> {
        let mut fingers: Vec<NodeId> = self.fingers().into_iter().flatten().collect();
        fingers.sort_by_key(|f| ring::point(*f));
        fingers.dedup();
        fingers
    }

    fn is_needed(&self, id: NodeId) -> bool {
        Chord::is_needed(self, id)
    }

    fn join_target(&self) -> Point {
        // §10.5 step 2: the peer responsible for n+1.
        self.me.wrapping_add(1)
    }

    fn interest(&self, id: NodeId) -> Interest {
        if self.would_be_neighbor(id) {
            Interest::Neighbor
        } else if self.would_fill_finger(id) {
            Interest::RoutingEntry
        } else {
            Interest::None
        }
    }

    fn search_targets(&self, initial: bool, rng: &mut dyn RngCore) -> Vec<Point> {
        self.finger_search(initial, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::node_at;

    fn chord(me: u128, others: &[u128]) -> Chord {
        let mut c = Chord::new(node_at(me), 3, 16, 128);
        for o in others {
            c.insert(node_at(*o));
        }
        c
    }

    #[test]
    fn neighbor_table_wraps() {
        let c = chord(100, &[10, 50, 150, 200, u128::MAX]);
        let t = c.neighbor_table();
        assert_eq!(t.successors, vec![node_at(150), node_at(200), node_at(u128::MAX)]);
        assert_eq!(t.predecessors, vec![node_at(50), node_at(10), node_at(u128::MAX)]);
    }

    #[test]
    fn responsibility_is_predecessor_exclusive_self_inclusive() {
        let c = chord(100, &[50, 200]);
        assert!(c.is_responsible(100));
        assert!(c.is_responsible(51));
        assert!(!c.is_responsible(50));
        assert!(!c.is_responsible(101));
        assert!(chord(100, &[]).is_responsible(7), "alone, a peer owns everything");
    }

    #[test]
    fn next_hop_is_closest_preceding_member_else_successor_of_target() {
        let c = chord(0, &[100, 200, 300, 400, 500, 600, 700, 800]);
        assert_eq!(c.next_hop(450), Some(node_at(400)), "closest preceding member (§10.3)");
        assert_eq!(
            c.next_hop(300),
            Some(node_at(300)),
            "a connected node is reached directly"
        );
        assert_eq!(
            c.next_hop(50),
            Some(node_at(100)),
            "nothing in (0, 50): the smallest after 50"
        );
    }

    #[test]
    fn next_hop_goes_straight_to_an_owner_the_neighbor_table_pins_down() {
        let c = chord(0, &[100, 200, 300, 400, 500, 600, 700, 800]);
        // 250 lies between successors 200 and 300, so 300 owns it.
        assert_eq!(c.next_hop(250), Some(node_at(300)));
        // 650 lies between predecessors 600 and 700, so 700 owns it.
        assert_eq!(c.next_hop(650), Some(node_at(700)));
    }

    #[test]
    fn fingers_are_members_in_their_interval() {
        let half = 1u128 << 127;
        let c = chord(0, &[half + 5, (1u128 << 126) + 1]);
        assert_eq!(c.finger(1), Some(node_at(half + 5)));
        assert_eq!(c.finger(2), Some(node_at((1u128 << 126) + 1)));
        assert_eq!(c.finger(3), None);
    }
}
