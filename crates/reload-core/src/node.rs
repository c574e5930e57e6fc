//! The RELOAD node as a state machine (sans-IO): the runtime hands it what
//! happened and polls what it wants done. The same code runs over real sockets and
//! inside the simulator.
//!
//! Inputs: [`Node::handle_link_up`], [`Node::handle_link_down`],
//! [`Node::handle_connect_failed`], [`Node::handle_message`], [`Node::handle_timeout`],
//! and the application's [`Node::start`], [`Node::request`], [`Node::leave`].
//! Outputs: [`Node::poll_transmit`], [`Node::poll_action`], [`Node::poll_event`],
//! [`Node::poll_timeout`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use reload_wire::{
    AppAttach, ApplicationId, AttachReqAns, ChordLeaveData, ChordRouteQueryAns, ChordUpdate, ChordUpdateData,
    Destination, ErrorCode, ErrorResponse, ForwardingHeader, IceCandidate, LeaveReq, Message, MessageBody, MessageCode,
    NodeId, PingAns, ProbeAns, ProbeInformation, ProbeInformationType, RawMessage, Reader, ResourceId, TransactionId,
    Writer,
};

use crate::chord::{Chord, NeighborTable};
use crate::config::NodeConfig;
use crate::crypto::MessageCrypto;
use crate::fragmentation::{self, Reassembler};
use crate::ring;
use crate::stats::Stats;
use crate::storage::{DataStore, DomainRestriction, RestoreSummary, Signer, StorageChange, StoreError, access};
use crate::time::Time;
use crate::topology::{Interest, Topology};

/// A link to another node, as the runtime numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub u64);

/// The application's handle on a request it made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Bytes to send on a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The link.
    pub link: LinkId,
    /// One RELOAD message.
    pub bytes: Vec<u8>,
}

/// Something the node wants the runtime to do about links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a link to `peer` (or, for bootstrap, to whoever answers) at one of these
    /// addresses, then report [`Node::handle_link_up`] or [`Node::handle_connect_failed`].
    Connect {
        /// The Node-ID the far end must prove, if known.
        peer: Option<NodeId>,
        /// Where it listens.
        candidates: Vec<IceCandidate>,
    },
    /// Close a link the node no longer needs.
    Close {
        /// The link.
        link: LinkId,
    },
}

/// What a request came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The node that answered (authenticated by its signature).
    pub responder: NodeId,
    /// The answer.
    pub body: MessageBody,
    /// Overlay hops the answer travelled.
    pub hops: u8,
    /// For a Fetch: values taken out of `body` because their signature did not
    /// verify or their signer may not write at that Resource-ID under the Kind's
    /// access policy (§7.3). Nonzero means the responder, or a peer on the way,
    /// served forged data.
    pub rejected_values: u32,
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No answer after every retransmission (§6.2.1).
    Timeout,
    /// The responder sent an Error.
    Error {
        /// Who sent it.
        responder: NodeId,
        /// The error.
        error: ErrorResponse,
    },
    /// The node has no link to send on.
    NoRoute,
}

/// Something that happened, for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node is part of the overlay (a peer in the ring, or an attached client).
    Joined,
    /// The neighbor table changed.
    NeighborsChanged(NeighborTable),
    /// The responsible range changed: it is now (predecessor, self].
    ResponsibleRangeChanged {
        /// The new predecessor, `None` when alone.
        predecessor: Option<NodeId>,
    },
    /// A request of the application's was answered or failed.
    Response {
        /// The request.
        request: RequestId,
        /// Its outcome.
        result: Result<Answer, Failure>,
    },
    /// The node lost its place in the overlay and is joining again.
    Rejoining,
    /// The node has left the overlay.
    Left,
}

/// Where a node is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started.
    Idle,
    /// Connecting to a bootstrap peer.
    Bootstrapping,
    /// Attached to the admitting peer, joining (§10.5).
    Joining,
    /// In the overlay.
    Joined,
    /// Gone.
    Left,
}

/// Why this node sent an Attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttachPurpose {
    /// To the admitting peer during join (§10.5 step 2), or a client's responsible peer.
    Admitting,
    /// To a peer that belongs in the neighbor table.
    Neighbor,
    /// To fill a finger.
    Finger,
}

/// Why this node sent a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    App(RequestId),
    Attach(AttachPurpose),
    Join,
    Update,
    Leave,
    /// A Ping for this node's own Node-ID routed through a bootstrap peer (§10.7.4.4).
    PartitionCheck {
        bootstrap: NodeId,
    },
    /// A Ping to a routing entry that gets no Updates, to find out that it failed
    /// (§6.5.3, §10.7.2).
    Liveness,
    /// A replica Store to a successor (§10.4).
    Replicate,
    /// A Fetch of the newer data a peer refused a replica store for (§7.4.1.1).
    Resync,
}

/// A request this node originated and awaits an answer to (§6.2.1).
#[derive(Clone, Debug)]
struct Pending {
    purpose: Purpose,
    /// The encoded request; retransmissions reuse it (same transaction id).
    bytes: Vec<u8>,
    header: ForwardingHeader,
    transmissions: u32,
    deadline: Time,
    /// For a request to a Node-ID, the node that must answer (§6.3.4 check 1).
    expected_responder: Option<NodeId>,
    /// For a Store or a Fetch, its Resource-ID: fetched values are checked against
    /// it (§7.4.2), and a failed replica store is retried for it.
    resource: Option<ResourceId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Retransmit(TransactionId),
    Stabilize,
    FingerRefresh,
    JoinCheck,
    PartitionCheck,
    Sweep,
    /// Maintenance again after a replica store failed.
    ReplicaRetry,
    /// The answerer of our Attach should have connected to us by now (§6.5.1.13).
    AttachLink(NodeId),
}

#[derive(Clone, Debug)]
struct Link {
    peer: NodeId,
    /// Whether this node asked for the link (only the asking side prunes it).
    outbound: bool,
    opened: Time,
}

/// A RELOAD node.
pub struct Node<T: Topology = Chord> {
    cfg: NodeConfig,
    crypto: Box<dyn MessageCrypto>,
    rng: ChaCha8Rng,
    state: State,
    started: Time,
    bootstrap: Vec<IceCandidate>,
    links: HashMap<LinkId, Link>,
    connections: HashMap<NodeId, LinkId>,
    topology: T,
    /// Peers known to be ring members but not (yet) connected, with who told us.
    pending: HashMap<TransactionId, Pending>,
    /// Peers we asked the runtime to connect to, and why.
    connecting: HashMap<NodeId, AttachPurpose>,
    /// Peers that asked for an Update once the link is up (send_update, §6.4.2.3).
    update_on_link: HashSet<NodeId>,
    /// Nodes whose Attach this node answered and to which it is connecting as
    /// the TLS/DTLS client (§6.5.1.13): the link is theirs, not ours to prune.
    answered_attach: HashSet<NodeId>,
    /// Answers to recent requests, so retransmissions get the same answer (§6.2.1).
    answered: HashMap<TransactionId, (Time, Vec<u8>)>,
    admitting_peer: Option<NodeId>,
    join_sent: bool,
    join_deadline: Option<Time>,
    last_neighbors: NeighborTable,
    last_predecessor: Option<NodeId>,
    timers: BinaryHeap<Reverse<(Time, Timer)>>,
    transmits: VecDeque<Transmit>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    next_request: u64,
    stats: Stats,
    reassembler: Reassembler,
    link_mtu: HashMap<LinkId, usize>,
    /// A partition check waiting for its link to a bootstrap peer.
    partition_probe_pending: bool,
    /// The values this peer holds (§7).
    store: DataStore,
    /// For each Resource-ID this peer is responsible for, the successors that have it.
    replicated_to: HashMap<ResourceId, Vec<NodeId>>,
    /// Replica Stores made while answering a Store, sent once the answer is queued
    /// (§10.4): successor, body, certificates to carry.
    replications_due: Vec<(NodeId, MessageBody, Vec<reload_wire::GenericCertificate>)>,
    /// Failed replica stores per Resource-ID since the last that succeeded.
    replica_retries: HashMap<ResourceId, u32>,
    /// Whether a [`Timer::ReplicaRetry`] is pending.
    replica_retry_scheduled: bool,
    /// The applications this node accepts AppAttach for, and where each listens
    /// (§6.5.2): set by the runtime with [`Node::offer_application`].
    applications: HashMap<ApplicationId, Vec<IceCandidate>>,
}

/// Replica stores of one Resource-ID retried after failures before giving up until
/// the neighbor table changes again.
const MAX_REPLICA_RETRIES: u32 = 5;

/// How long the sender of an Attach waits for the answerer's connection
/// (§6.5.1.13) before it counts the attach as failed: the answer's trip back
/// plus a connect whose (D)TLS handshake may take 10 s.
const ATTACH_LINK_WAIT: Duration = Duration::from_secs(12);

const PASSIVE: &[u8] = b"passive";
const ACTIVE: &[u8] = b"active";

impl<T: Topology> Node<T> {
    /// A node with its configuration, crypto and RNG seed. It does nothing until
    /// [`Node::start`].
    pub fn new(cfg: NodeConfig, crypto: Box<dyn MessageCrypto>, seed: u64) -> Self {
        let topology = T::for_node(&cfg);
        let reassembler = Reassembler::new(cfg.reassembly_limit, cfg.max_message_size, cfg.request_lifetime);
        let mut store = DataStore::new();
        if cfg.persist_storage {
            store.track_changes();
        }
        Node {
            cfg,
            crypto,
            rng: ChaCha8Rng::seed_from_u64(seed),
            state: State::Idle,
            started: Time::ZERO,
            bootstrap: Vec::new(),
            links: HashMap::new(),
            connections: HashMap::new(),
            topology,
            pending: HashMap::new(),
            connecting: HashMap::new(),
            update_on_link: HashSet::new(),
            answered_attach: HashSet::new(),
            answered: HashMap::new(),
            admitting_peer: None,
            join_sent: false,
            join_deadline: None,
            last_neighbors: NeighborTable::default(),
            last_predecessor: None,
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            next_request: 1,
            stats: Stats::default(),
            reassembler,
            link_mtu: HashMap::new(),
            partition_probe_pending: false,
            store,
            replicated_to: HashMap::new(),
            replications_due: Vec::new(),
            replica_retries: HashMap::new(),
            replica_retry_scheduled: false,
            applications: HashMap::new(),
        }
    }

    /// This node's Node-ID.
    pub fn node_id(&self) -> NodeId {
        self.cfg.node_id
    }

    /// Where the node is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the node routes for others (a joined peer).
    pub fn is_joined(&self) -> bool {
        self.state == State::Joined
    }

    /// The neighbor table.
    pub fn neighbors(&self) -> NeighborTable {
        self.topology.neighbor_table()
    }

    /// The routing state.
    pub fn topology(&self) -> &T {
        &self.topology
    }

    /// Counters of what the node did and refused.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Links the node has, with the peer at the far end.
    pub fn links(&self) -> impl Iterator<Item = (LinkId, NodeId)> + '_ {
        self.links.iter().map(|(l, k)| (*l, k.peer))
    }

    /// Whether this node is responsible for `resource` (never for a client or a
    /// node that has not joined).
    pub fn is_responsible(&self, resource: &ResourceId) -> bool {
        self.state == State::Joined && !self.cfg.client && self.topology.is_responsible(ring::resource_point(resource))
    }

    /// Starts the node: joins through the `bootstrap` peers, or, with none, starts a
    /// new overlay as its first peer.
    ///
    /// `bootstrap` is the configuration document's bootstrap list; it is also where
    /// the partition check looks for the rest of the overlay (§10.7.4.4). With
    /// `create_overlay` the node starts the overlay as its first peer instead of
    /// joining (§6.4.2.1: "a configuration flag or setting").
    pub fn start(&mut self, now: Time, bootstrap: Vec<IceCandidate>, create_overlay: bool) {
        self.started = now;
        self.bootstrap = bootstrap;
        self.schedule(now + self.cfg.request_lifetime, Timer::Sweep);
        if (create_overlay || self.bootstrap.is_empty()) && !self.cfg.client {
            self.become_joined(now);
        } else {
            self.begin_bootstrap();
        }
    }

    fn begin_bootstrap(&mut self) {
        self.state = State::Bootstrapping;
        self.join_sent = false;
        self.admitting_peer = None;
        self.actions.push_back(Action::Connect {
            peer: None,
            candidates: self.bootstrap.clone(),
        });
    }

    /// Drops the current join attempt and bootstraps again after a reliability timer.
    fn restart_join_later(&mut self, now: Time) {
        self.state = State::Bootstrapping;
        self.join_sent = false;
        self.admitting_peer = None;
        self.join_deadline = Some(now + self.cfg.reliability_timer);
        self.schedule(now + self.cfg.reliability_timer, Timer::JoinCheck);
    }

    fn become_joined(&mut self, now: Time) {
        self.state = State::Joined;
        self.join_deadline = None;
        self.events.push_back(Event::Joined);
        if self.cfg.client {
            return;
        }
        let jitter = self.jitter(self.cfg.update_interval);
        self.schedule(now + jitter, Timer::Stabilize);
        let jitter = self.jitter(self.cfg.ping_interval);
        self.schedule(now + jitter, Timer::FingerRefresh);
        if !self.bootstrap.is_empty() {
            let jitter = self.jitter(self.cfg.partition_check_interval);
            self.schedule(now + jitter, Timer::PartitionCheck);
        }
        self.send_neighbor_updates(now);
        self.search_fingers(now, true);
        self.note_table_changes(now);
    }

    /// Sends a request on behalf of the application; its outcome arrives as
    /// [`Event::Response`].
    pub fn request(&mut self, now: Time, destination: Destination, body: MessageBody) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        if !body.code().is_request() {
            self.events.push_back(Event::Response {
                request: id,
                result: Err(Failure::Error {
                    responder: self.cfg.node_id,
                    error: ErrorResponse::with_text(ErrorCode::INVALID_MESSAGE, "not a request"),
                }),
            });
            return id;
        }
        self.send_request(now, vec![destination], body, Purpose::App(id));
        id
    }

    /// [`Node::request`] signed with `signer` instead of this node's own
    /// credentials: a node that holds the credentials of more than one user (an
    /// office gateway, RFC 7904 §3.3) stores each user's values in a request signed
    /// as that user, because §7.4.1.1 wants an original Store signed by a
    /// credential that may write at the Resource-ID. The security block carries
    /// `signer`'s certificates (§6.3.4). The answer is checked as any other.
    pub fn request_signed_by(
        &mut self,
        now: Time,
        destination: Destination,
        body: MessageBody,
        signer: &dyn MessageCrypto,
    ) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        if !body.code().is_request() {
            self.events.push_back(Event::Response {
                request: id,
                result: Err(Failure::Error {
                    responder: self.cfg.node_id,
                    error: ErrorResponse::with_text(ErrorCode::INVALID_MESSAGE, "not a request"),
                }),
            });
            return id;
        }
        self.send_request_signed(now, vec![destination], body, Vec::new(), Purpose::App(id), Some(signer));
        id
    }

    // ----- AppAttach (§6.5.2) -----

    /// Accepts AppAttach requests for `application` from now on, answering with
    /// `candidates` (where the application listens; under No-ICE, host candidates,
    /// §6.5.1.11). Replaces an earlier offer of the same application.
    pub fn offer_application(&mut self, application: ApplicationId, candidates: Vec<IceCandidate>) {
        self.applications.insert(application, candidates);
    }

    /// Stops accepting AppAttach for `application`: requests get Error_Not_Found
    /// again (§6.5.2.2).
    pub fn withdraw_application(&mut self, application: ApplicationId) {
        self.applications.remove(&application);
    }

    /// The candidates `application` is offered with, if it is.
    pub fn offered_application(&self, application: ApplicationId) -> Option<&[IceCandidate]> {
        self.applications.get(&application).map(Vec::as_slice)
    }

    /// Sends an AppAttachReq for `application` to `node` (§6.5.2.1), with a fresh
    /// ICE ufrag and password, role "active" and this node's own candidates for the
    /// application if it offers it (none otherwise). The AppAttachAns (or the
    /// error) arrives as [`Event::Response`]; its candidates say where to connect.
    pub fn app_attach(&mut self, now: Time, node: NodeId, application: ApplicationId) -> RequestId {
        let body = MessageBody::AppAttachReq(AppAttach {
            ufrag: self.random_token(8),
            password: self.random_token(22),
            application,
            // §6.5.2 leaves the roles open (unlike Attach, §6.5.1.1). Under No-ICE
            // the requester opens the connection to the answerer's candidates, so it
            // is RFC 4145's "active" and the answerer "passive".
            role: ACTIVE.to_vec(),
            candidates: self.applications.get(&application).cloned().unwrap_or_default(),
        });
        self.request(now, Destination::node(node), body)
    }

    /// §6.5.2.2: an AppAttach for an application this node offers is answered with
    /// the application's candidates; any other gets Error_Not_Found.
    fn on_app_attach_request(&mut self, req: &AppAttach) -> Result<AppAttach, ErrorResponse> {
        let Some(candidates) = self.applications.get(&req.application).cloned() else {
            return Err(ErrorResponse::with_text(
                ErrorCode::NOT_FOUND,
                "the application is not offered on this node",
            ));
        };
        Ok(AppAttach {
            ufrag: self.random_token(8),
            password: self.random_token(22),
            application: req.application,
            role: PASSIVE.to_vec(),
            candidates,
        })
    }

    /// Leaves the overlay gracefully (§6.4.2.2, §10.9): a Leave to every neighbor.
    pub fn leave(&mut self, now: Time) {
        if self.state == State::Joined && !self.cfg.client {
            let table = self.topology.neighbor_table();
            for s in &table.successors {
                let data = ChordLeaveData::FromPred {
                    predecessors: table.predecessors.clone(),
                };
                self.send_leave(now, *s, data);
            }
            for p in &table.predecessors {
                if table.successors.contains(p) {
                    continue;
                }
                let data = ChordLeaveData::FromSucc {
                    successors: table.successors.clone(),
                };
                self.send_leave(now, *p, data);
            }
        }
        self.state = State::Left;
        self.events.push_back(Event::Left);
    }

    fn send_leave(&mut self, now: Time, to: NodeId, data: ChordLeaveData) {
        let body = MessageBody::LeaveReq(LeaveReq {
            leaving_peer_id: self.cfg.node_id,
            chord: Some(data),
        });
        self.send_request(now, vec![Destination::node(to)], body, Purpose::Leave);
    }

    // ----- inputs from the runtime -----

    /// A link is up; `peer` is the Node-ID the far end proved (TLS/DTLS).
    /// `outbound` says whether this node opened the connection (as the TLS or
    /// DTLS client).
    pub fn handle_link_up(&mut self, now: Time, link: LinkId, peer: NodeId, outbound: bool) {
        if self.state == State::Left {
            self.actions.push_back(Action::Close { link });
            return;
        }
        let purpose = self.connecting.remove(&peer);
        // Whether this node asked for the link: its own connection (to a bootstrap
        // peer, or to an Attach answerer that offered no candidates), or the
        // connection the answerer of its Attach opened to it (§6.5.1.13), which
        // may arrive before the answer itself. A connection this node opened
        // because it answered an Attach is the requester's.
        let answering = self.answered_attach.remove(&peer);
        let answers_ours = !outbound && self.attaching_to(peer);
        let outbound = (outbound && !answering) || purpose.is_some() || answers_ours;
        if let Some(old) = self.connections.insert(peer, link) {
            if old != link {
                self.links.remove(&old);
                self.actions.push_back(Action::Close { link: old });
            }
        }
        self.links.insert(
            link,
            Link {
                peer,
                outbound,
                opened: now,
            },
        );
        match self.state {
            State::Bootstrapping if outbound && purpose.is_none() => {
                // The bootstrap peer: a ring member by definition (§11.4).
                if !self.cfg.client {
                    self.topology.insert(peer);
                }
                self.state = State::Joining;
                self.send_attach(now, self.admitting_target(), None, AttachPurpose::Admitting, true);
            }
            State::Joined if outbound && purpose.is_none() && self.partition_probe_pending => {
                // §10.7.4.4: Ping our own Node-ID through the bootstrap peer.
                self.partition_probe_pending = false;
                let list = vec![
                    Destination::node(peer),
                    Destination::resource(ResourceId::from(self.cfg.node_id)),
                ];
                let body = MessageBody::PingReq(reload_wire::PingReq::default());
                self.send_request(now, list, body, Purpose::PartitionCheck { bootstrap: peer });
            }
            _ => match purpose {
                Some(AttachPurpose::Admitting) => self.admitted_by(now, peer),
                Some(AttachPurpose::Neighbor | AttachPurpose::Finger) if !self.cfg.client => {
                    self.topology.insert(peer);
                    if self.state == State::Joined {
                        // §10.7 peer_ready: "a node which has Attached is a peer".
                        self.send_update(now, peer, ChordUpdateData::PeerReady);
                    }
                    self.note_table_changes(now);
                    if self.state == State::Joining {
                        // §10.5 step 5: Join once the neighbors are attached.
                        self.maybe_send_join(now, false);
                    }
                }
                _ => {}
            },
        }
        if self.update_on_link.remove(&peer) && self.state == State::Joined && !self.cfg.client {
            let data = self.full_update();
            self.send_update(now, peer, data);
        }
    }

    /// The largest message the link carries in one piece (a DTLS link's path MTU);
    /// larger messages are fragmented (§6.7). Links without a value are not.
    pub fn set_link_mtu(&mut self, link: LinkId, mtu: usize) {
        self.link_mtu.insert(link, mtu);
    }

    /// A link went down (closed, failed, or the peer vanished).
    pub fn handle_link_down(&mut self, now: Time, link: LinkId) {
        self.link_mtu.remove(&link);
        let Some(l) = self.links.remove(&link) else { return };
        if self.connections.get(&l.peer) == Some(&link) {
            self.connections.remove(&l.peer);
        }
        self.peer_lost(now, l.peer);
    }

    /// The runtime could not connect to `peer` (or to a bootstrap address if `None`).
    pub fn handle_connect_failed(&mut self, now: Time, peer: Option<NodeId>) {
        match peer {
            None => {
                if self.state == State::Bootstrapping {
                    self.stats.bootstrap_failures += 1;
                    // Try again after a reliability timer.
                    self.join_deadline = Some(now + self.cfg.reliability_timer);
                    self.schedule(now + self.cfg.reliability_timer, Timer::JoinCheck);
                }
            }
            Some(p) => {
                self.connecting.remove(&p);
                self.answered_attach.remove(&p);
                self.stats.connect_failures += 1;
                if self.state == State::Joining {
                    self.maybe_send_join(now, false);
                }
            }
        }
    }

    fn peer_lost(&mut self, now: Time, peer: NodeId) {
        let was_member = self.topology.remove(peer);
        let lost_admitting = self.admitting_peer == Some(peer);
        if self.cfg.client {
            if lost_admitting && self.state != State::Left {
                // §4.2: a client whose peer is gone reconnects through the bootstrap list.
                self.events.push_back(Event::Rejoining);
                self.begin_bootstrap();
            }
            return;
        }
        match self.state {
            State::Joined if was_member => {
                self.stats.neighbor_failures += 1;
                if self.topology.is_empty() && !self.bootstrap.is_empty() {
                    // §10.7.1: every successor lost; behave as if joining.
                    self.events.push_back(Event::Rejoining);
                    self.begin_bootstrap();
                    return;
                }
                self.note_table_changes(now);
                // §10.7.2: search for a replacement finger right away (reactive).
                if self.cfg.reactive {
                    self.search_fingers(now, false);
                }
            }
            State::Joining | State::Bootstrapping if lost_admitting || self.links.is_empty() => {
                self.events.push_back(Event::Rejoining);
                self.begin_bootstrap();
            }
            _ => {}
        }
    }

    /// A RELOAD message arrived on `link`.
    pub fn handle_message(&mut self, now: Time, link: LinkId, bytes: &[u8]) {
        self.stats.received += 1;
        let Some(prev_hop) = self.links.get(&link).map(|l| l.peer) else {
            self.stats.dropped_unknown_link += 1;
            return;
        };
        if self.state == State::Left {
            return;
        }
        let raw = match RawMessage::split(bytes, self.cfg.max_message_size) {
            Ok(r) => r,
            Err(_) => {
                // Without a readable header there is nobody to answer (§6.1).
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        let mut header = raw.header.clone();
        let payload = raw.payload;
        let is_request = peek_code(payload).is_some_and(|c| c.is_request());
        if header.overlay != self.cfg.overlay || header.version != reload_wire::forwarding::VERSION {
            // §6.1: discard; tell the sender of a request why (§6.3.3.1).
            self.stats.dropped_incompatible += 1;
            if is_request {
                self.reply_error(
                    now,
                    &header,
                    prev_hop,
                    ErrorCode::INCOMPATIBLE_WITH_OVERLAY,
                    "another overlay or RELOAD version",
                );
            }
            return;
        }
        if header.ttl > self.cfg.initial_ttl {
            // §6.3.2: discard and send Error_TTL_Exceeded.
            self.stats.dropped_ttl += 1;
            if is_request {
                self.reply_error(now, &header, prev_hop, ErrorCode::TTL_EXCEEDED, "TTL above initial-ttl");
            }
            return;
        }
        loop {
            let Some(first) = header.destination_list.first().cloned() else {
                self.stats.dropped_malformed += 1;
                return;
            };
            match first {
                Destination::Node { node_id } if node_id == self.cfg.node_id => {
                    header.destination_list.remove(0);
                    if header.destination_list.is_empty() {
                        return self.deliver(now, prev_hop, header, bytes, payload);
                    }
                }
                Destination::Node { node_id } if node_id.is_wildcard() => {
                    return self.deliver(now, prev_hop, header, bytes, payload);
                }
                Destination::Resource { resource_id } if self.is_responsible(&resource_id) => {
                    if header.destination_list.len() != 1 {
                        // §6.1.1: a Resource-ID must be the only entry.
                        self.stats.dropped_malformed += 1;
                        return;
                    }
                    return self.deliver(now, prev_hop, header, bytes, payload);
                }
                Destination::Node { node_id } => {
                    let owns = self.is_joined() && self.topology.is_responsible(ring::point(node_id));
                    if owns && !self.connections.contains_key(&node_id) {
                        // §6.1.1: our own region, but no such node attached to us.
                        self.stats.dropped_no_route += 1;
                        return;
                    }
                    return self.forward(now, prev_hop, header, payload, is_request);
                }
                Destination::Resource { .. } => return self.forward(now, prev_hop, header, payload, is_request),
                Destination::OpaqueId { .. } | Destination::Compressed { .. } | Destination::Unknown { .. } => {
                    // This node never compresses lists, so it cannot expand one (§6.1.3).
                    self.stats.dropped_no_route += 1;
                    return;
                }
            }
        }
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, timer))) = self.timers.pop() else {
                break;
            };
            self.run_timer(now, timer);
        }
    }

    // ----- outputs -----

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next link action.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The changes to stored values since the last call (with
    /// [`NodeConfig::persist_storage`]). The runtime must make them durable before it
    /// sends the transmits queued with them: a StoreAns then never acknowledges a
    /// value that a crash could still lose. Taking them all at once lets the runtime
    /// commit them in one transaction.
    pub fn take_storage_changes(&mut self) -> Vec<StorageChange> {
        self.store.take_changes()
    }

    /// Loads the records of an earlier run into the store, before [`Node::start`].
    /// Values that expired meanwhile are purged (§7: lifetime). Once the node has
    /// joined, the usual replica maintenance reconciles with the neighbors (§10.7.3):
    /// what this peer is responsible for goes to its successors, what another peer now
    /// owns is handed to it, and newer values from the neighbors replace older ones by
    /// storage time (§7.4.1.1), so nothing is lost and nothing is kept twice.
    pub fn restore_storage(
        &mut self,
        now: Time,
        records: impl IntoIterator<Item = (ResourceId, Vec<u8>)>,
    ) -> RestoreSummary {
        self.store.restore(now, &self.cfg.kinds, records)
    }

    /// Requests this node sent and still awaits answers to: a leaving runtime waits
    /// for its Leave requests before it closes the links.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// When [`Node::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    // ----- routing -----

    /// The link towards the first entry of `destination_list` (§6.1.2, §10.3).
    fn route(&self, destination_list: &[Destination]) -> Option<LinkId> {
        let first = destination_list.first()?;
        if let Destination::Node { node_id } = first {
            if let Some(l) = self.connections.get(node_id) {
                return Some(*l);
            }
        }
        let target = match first {
            Destination::Node { node_id } => ring::point(*node_id),
            Destination::Resource { resource_id } => ring::resource_point(resource_id),
            _ => return None,
        };
        if self.cfg.client || self.state != State::Joined {
            // A client or a joining node sends everything through the peer it is
            // attached to (§4.2.1), or the bootstrap peer.
            return self.uplink();
        }
        self.topology
            .next_hop(target)
            .and_then(|id| self.connections.get(&id).copied())
    }

    /// Whether a request to `destination_list` is for this node itself.
    fn is_local(&self, destination_list: &[Destination]) -> bool {
        match destination_list {
            [Destination::Node { node_id }] => *node_id == self.cfg.node_id || node_id.is_wildcard(),
            [Destination::Resource { resource_id }] => self.is_responsible(resource_id),
            _ => false,
        }
    }

    /// Handles a request this node sent to itself, and the answer it makes.
    fn deliver_local(&mut self, now: Time, bytes: &[u8]) {
        let me = self.cfg.node_id;
        let Ok(msg) = Message::decode(bytes, &self.wire_config()) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        let header = msg.header.clone();
        self.stats.local_deliveries += 1;
        // The signer is whoever signed the request, checked like any other
        // (§6.3.4): this node, or a user it signs for (`request_signed_by`). Its
        // user name matters to a Store under USER-MATCH or USER-NODE-MATCH (§7.3).
        let Some(sender) = self.verify(now, &msg, bytes) else {
            self.stats.dropped_bad_signature += 1;
            return;
        };
        self.handle_request(now, me, sender, header, msg);
    }

    /// A way forward that is not `avoid`: the first member at or after the target.
    fn detour(&self, destination_list: &[Destination], avoid: NodeId) -> Option<LinkId> {
        let target = match destination_list.first()? {
            Destination::Node { node_id } => ring::point(*node_id),
            Destination::Resource { resource_id } => ring::resource_point(resource_id),
            _ => return None,
        };
        let id = self.topology.successor_of(target).filter(|id| *id != avoid)?;
        self.connections.get(&id).copied()
    }

    fn uplink(&self) -> Option<LinkId> {
        self.admitting_peer
            .and_then(|p| self.connections.get(&p).copied())
            .or_else(|| {
                self.topology
                    .members()
                    .into_iter()
                    .find_map(|m| self.connections.get(&m).copied())
            })
            .or_else(|| self.links.keys().min().copied())
    }

    fn forward(&mut self, now: Time, prev_hop: NodeId, mut header: ForwardingHeader, payload: &[u8], is_request: bool) {
        if self.cfg.client && self.state == State::Joined {
            // Clients never route for others (§4.2).
            self.stats.dropped_no_route += 1;
            return;
        }
        if is_request {
            if let Some((_, code)) = header.refused_option(true, |_| false) {
                self.reply_error(now, &header, prev_hop, code, "critical forwarding option not supported");
                return;
            }
        }
        if is_request && header.via_list.iter().any(|d| d.node_id() == Some(self.cfg.node_id)) {
            // This node already forwarded the request: a routing loop (§13.6.5).
            // (A request that comes back to its destination is not one: the
            // partition check sends a request to this node through others.)
            self.stats.dropped_loop += 1;
            return;
        }
        if header.ttl == 0 {
            self.stats.dropped_ttl += 1;
            if is_request {
                self.reply_error(now, &header, prev_hop, ErrorCode::TTL_EXCEEDED, "TTL exceeded");
            }
            return;
        }
        header.ttl -= 1;
        if is_request {
            // §6.1.2: append the node the request came from to the via list.
            header.via_list.push(Destination::node(prev_hop));
        }
        let Some(mut link) = self.route(&header.destination_list) else {
            self.stats.dropped_no_route += 1;
            return;
        };
        if self.links.get(&link).map(|l| l.peer) == Some(prev_hop) && is_request {
            // The previous hop thinks this node is closer, this node thinks the previous
            // hop is: their tables disagree (the ring is still converging). Send it on
            // to the member that follows the target instead of back (loose routing).
            match self.detour(&header.destination_list, prev_hop) {
                Some(l) => {
                    self.stats.detours += 1;
                    link = l;
                }
                None => {
                    self.stats.dropped_loop += 1;
                    return;
                }
            }
        }
        let mut w = Writer::with_capacity(payload.len() + 64);
        let total = match header.encoded_len() {
            Ok(n) => n + payload.len(),
            Err(_) => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        if total > self.cfg.max_message_size || header.encode(&mut w, total as u32).is_err() {
            self.stats.dropped_malformed += 1;
            if is_request {
                self.reply_error(
                    now,
                    &header,
                    prev_hop,
                    ErrorCode::MESSAGE_TOO_LARGE,
                    "message too large",
                );
            }
            return;
        }
        w.bytes(payload);
        self.stats.forwarded += 1;
        self.push_transmit(link, w.into_vec());
    }

    // ----- consuming messages -----

    /// A message for this node: reassembled first if it is a fragment (§6.7).
    fn deliver(&mut self, now: Time, prev_hop: NodeId, header: ForwardingHeader, bytes: &[u8], payload: &[u8]) {
        if header.fragment.is_whole() {
            return self.consume(now, prev_hop, header, bytes);
        }
        self.stats.fragments_received += 1;
        match self.reassembler.add(now, &header, payload) {
            Ok(Some(whole)) => {
                let Ok(whole_raw) = RawMessage::split(&whole, self.cfg.max_message_size) else {
                    self.stats.dropped_malformed += 1;
                    return;
                };
                // The answer follows the first fragment's via list, as the header says.
                self.consume(now, prev_hop, whole_raw.header, &whole);
            }
            Ok(None) => {}
            Err(_) => self.stats.dropped_reassembly += 1,
        }
    }

    fn consume(&mut self, now: Time, prev_hop: NodeId, header: ForwardingHeader, bytes: &[u8]) {
        let msg = match Message::decode(bytes, &self.wire_config()) {
            Ok(m) => m,
            Err(e) => {
                self.stats.dropped_malformed += 1;
                if peek_code(RawMessage::split(bytes, usize::MAX).map(|r| r.payload).unwrap_or(&[]))
                    .is_some_and(|c| c.is_request())
                {
                    let code = match e.kind {
                        reload_wire::DecodeErrorKind::UnknownKinds(ref kinds) => {
                            if let Ok(err) = ErrorResponse::unknown_kinds(kinds) {
                                self.send_response(now, &header, prev_hop, MessageBody::Error(err));
                            }
                            return;
                        }
                        _ => ErrorCode::INVALID_MESSAGE,
                    };
                    self.reply_error(now, &header, prev_hop, code, &e.to_string());
                }
                return;
            }
        };
        let Some(signer) = self.verify(now, &msg, bytes) else {
            // §6.3.4: a bad signature means drop, and never process.
            self.stats.dropped_bad_signature += 1;
            return;
        };
        if msg.contents.code().is_response() {
            self.handle_response(now, signer.node_id, msg);
        } else {
            self.handle_request(now, prev_hop, signer, header, msg);
        }
    }

    fn verify(&mut self, now: Time, msg: &Message, bytes: &[u8]) -> Option<Signer> {
        let raw = RawMessage::split(bytes, usize::MAX).ok()?;
        let (contents, _) = raw.contents_and_security().ok()?;
        let input = reload_wire::message::message_signature_input(
            msg.header.overlay,
            msg.header.transaction_id,
            contents,
            &msg.security.signature.identity,
        )
        .ok()?;
        // Real runtimes count Time from the Unix epoch (see `Time`).
        let now_unix = i64::try_from(now.as_micros() / 1_000_000).unwrap_or(i64::MAX);
        self.crypto
            .verify(&input, &msg.security.signature, &msg.security.certificates, now_unix)
    }

    fn handle_request(&mut self, now: Time, prev_hop: NodeId, sender: Signer, header: ForwardingHeader, msg: Message) {
        let signer = sender.node_id;
        self.stats.requests_answered += 1;
        if let Some((_, bytes)) = self.answered.get(&header.transaction_id) {
            // A retransmission: the same answer again (§6.2.1).
            let bytes = bytes.clone();
            if let Some(link) = self.connections.get(&prev_hop).copied() {
                self.push_transmit(link, bytes);
            }
            return;
        }
        if header.refused_option(false, |_| false).is_some() {
            return self.reply_error(
                now,
                &header,
                prev_hop,
                ErrorCode::UNSUPPORTED_FORWARDING_OPTION,
                "unsupported option",
            );
        }
        if let Some((code, text)) = self.configuration_mismatch(&header, msg.contents.code()) {
            return self.reply_error(now, &header, prev_hop, code, text);
        }
        if msg.contents.unknown_critical_extension(|_| false).is_some() {
            return self.reply_error(
                now,
                &header,
                prev_hop,
                ErrorCode::UNKNOWN_EXTENSION,
                "unknown critical extension",
            );
        }
        let direct = prev_hop == signer && header.via_list.is_empty();
        let answer = match msg.contents.body {
            MessageBody::PingReq(_) => MessageBody::PingAns(PingAns {
                response_id: self.rng.next_u64(),
                time: now.as_micros() / 1000,
            }),
            MessageBody::ProbeReq(p) => MessageBody::ProbeAns(self.probe(now, &p.requested_info)),
            MessageBody::AttachReq(a) => match self.on_attach_request(signer, a) {
                Ok(ans) => MessageBody::AttachAns(ans),
                Err(e) => MessageBody::Error(e),
            },
            MessageBody::JoinReq(j) => match self.on_join(now, signer, direct, j.joining_peer_id) {
                Ok(()) => MessageBody::JoinAns(reload_wire::JoinAns::default()),
                Err(e) => MessageBody::Error(e),
            },
            MessageBody::LeaveReq(l) => match self.on_leave(now, signer, direct, l) {
                Ok(()) => MessageBody::LeaveAns,
                Err(e) => MessageBody::Error(e),
            },
            MessageBody::UpdateReq(u) => match self.on_update(now, signer, u) {
                Ok(()) => MessageBody::UpdateAns,
                Err(e) => MessageBody::Error(e),
            },
            MessageBody::RouteQueryReq(q) => self.on_route_query(now, signer, q),
            MessageBody::AppAttachReq(a) => match self.on_app_attach_request(&a) {
                Ok(ans) => MessageBody::AppAttachAns(ans),
                Err(e) => MessageBody::Error(e),
            },
            MessageBody::ConfigUpdateReq(_) => MessageBody::Error(ErrorResponse::with_text(
                ErrorCode::FORBIDDEN,
                "configuration updates are not accepted by this node",
            )),
            MessageBody::StoreReq(req) => self.on_store(now, &sender, &msg.security.certificates, req),
            MessageBody::FetchReq(req) => self.on_fetch(now, req, false),
            MessageBody::StatReq(req) => self.on_fetch(now, req, true),
            MessageBody::FindReq(req) => self.on_find(req),
            _ => MessageBody::Error(ErrorResponse::with_text(ErrorCode::INVALID_MESSAGE, "unknown request")),
        };
        let cache = !matches!(answer, MessageBody::PingAns(_));
        if let Some(bytes) = self.send_response(now, &header, prev_hop, answer) {
            if cache {
                self.answered
                    .insert(header.transaction_id, (now + self.cfg.request_lifetime, bytes));
            }
        }
        // §10.4: "return a success response. It MUST then send a Store request to
        // its successor": the answer is queued first, so it leaves first.
        for (succ, body, certs) in std::mem::take(&mut self.replications_due) {
            self.stats.replica_stores_sent += 1;
            self.send_request_with(now, vec![Destination::node(succ)], body, certs, Purpose::Replicate);
        }
        // An Attach with send_update from a node already linked to us (a joining
        // node whose bootstrap peer is its admitting peer): no new link will come
        // up to carry the Update (§6.5.1.1), so send it now, after the answer.
        if self.connections.contains_key(&signer)
            && self.state == State::Joined
            && !self.cfg.client
            && self.update_on_link.remove(&signer)
        {
            let data = self.full_update();
            self.send_update(now, signer, data);
        }
    }

    /// §6.3.2.1: a request made under another configuration document is refused,
    /// older or newer by sequence-number arithmetic modulo 2^16, except a
    /// ConfigUpdate with sequence 65535.
    fn configuration_mismatch(
        &self,
        header: &ForwardingHeader,
        code: MessageCode,
    ) -> Option<(ErrorCode, &'static str)> {
        let theirs = header.configuration_sequence;
        let ours = self.cfg.configuration_sequence;
        if theirs == ours || (theirs == u16::MAX && code == MessageCode::CONFIG_UPDATE_REQ) {
            return None;
        }
        if (theirs.wrapping_sub(ours) as i16) < 0 {
            Some((
                ErrorCode::CONFIG_TOO_OLD,
                "the request's configuration sequence is older than ours",
            ))
        } else {
            Some((
                ErrorCode::CONFIG_TOO_NEW,
                "the request's configuration sequence is newer than ours",
            ))
        }
    }

    fn handle_response(&mut self, now: Time, signer: NodeId, msg: Message) {
        let txid = msg.header.transaction_id;
        let Some(p) = self.pending.get(&txid) else {
            self.stats.dropped_unexpected_response += 1;
            return;
        };
        // §6.3.4: the answer to a request for a Node-ID must come from that node.
        if p.expected_responder.is_some_and(|e| e != signer) {
            self.stats.dropped_wrong_responder += 1;
            return;
        }
        let Some(p) = self.pending.remove(&txid) else { return };
        // Each hop took one off the TTL the responder started with; an answer this
        // node gave itself travelled no hop at all.
        let hops = if signer == self.cfg.node_id {
            0
        } else {
            self.cfg.initial_ttl.saturating_sub(msg.header.ttl).saturating_add(1)
        };
        let mut body = msg.contents.body;
        match p.purpose {
            Purpose::App(request) => {
                let mut rejected_values = 0;
                if let (Some(resource), MessageBody::FetchAns(ans)) = (&p.resource, &mut body) {
                    rejected_values = self.check_fetched(now, resource, ans, &msg.security.certificates);
                }
                let result = match body {
                    MessageBody::Error(error) => Err(Failure::Error {
                        responder: signer,
                        error,
                    }),
                    body => Ok(Answer {
                        responder: signer,
                        body,
                        hops,
                        rejected_values,
                    }),
                };
                self.events.push_back(Event::Response { request, result });
            }
            Purpose::Attach(purpose) => match body {
                MessageBody::AttachAns(ans) => self.on_attach_answer(now, signer, purpose, ans),
                _ => {
                    self.stats.attach_refused += 1;
                    // The admitting peer refused us (say, Error_In_Progress while it
                    // still tries to reach this Node-ID's previous incarnation): try
                    // again after a reliability timer rather than wait forever.
                    if purpose == AttachPurpose::Admitting && self.state != State::Joined {
                        self.restart_join_later(now);
                    }
                }
            },
            Purpose::Join => match body {
                MessageBody::JoinAns(_) => {
                    // §10.5 step 9: the joining node updates its neighbors.
                    self.become_joined(now);
                }
                _ => {
                    // The admitting peer would not have us (it may have lost its own
                    // place): start over from a bootstrap peer.
                    self.stats.join_refused += 1;
                    self.restart_join_later(now);
                }
            },
            Purpose::PartitionCheck { bootstrap } => {
                // The peer responsible for our own Node-ID is us, unless the bootstrap
                // peer lives in another partition of the overlay: then join them up by
                // attaching to its answer and letting stabilization merge the rings.
                if signer != self.cfg.node_id
                    && !self.topology.contains(signer)
                    && !self.connections.contains_key(&signer)
                {
                    self.stats.partitions_detected += 1;
                    self.send_attach(
                        now,
                        Destination::node(signer),
                        Some(bootstrap),
                        AttachPurpose::Neighbor,
                        true,
                    );
                }
            }
            Purpose::Replicate => {
                let Some(resource) = p.resource else { return };
                match body {
                    MessageBody::StoreAns(_) => {
                        self.replica_retries.remove(&resource);
                    }
                    // The peer holds something newer than this copy: take it (§7.4.1.1).
                    MessageBody::Error(e)
                        if [ErrorCode::DATA_TOO_OLD, ErrorCode::GENERATION_COUNTER_TOO_LOW].contains(&e.error_code) =>
                    {
                        self.fetch_newer(now, resource, signer);
                    }
                    // Not (yet) a neighbor of ours, or not joined yet: the tables converge, try again.
                    MessageBody::Error(e) => {
                        let transient = [ErrorCode::FORBIDDEN, ErrorCode::NOT_FOUND].contains(&e.error_code);
                        self.replica_store_failed(now, resource, Some(signer), transient);
                    }
                    _ => self.replica_store_failed(now, resource, Some(signer), false),
                }
            }
            Purpose::Resync => {
                if let (Some(resource), MessageBody::FetchAns(mut ans)) = (p.resource, body) {
                    self.take_newer(now, resource, signer, &mut ans, &msg.security.certificates);
                }
            }
            Purpose::Update | Purpose::Leave | Purpose::Liveness => {}
        }
    }

    /// §7.4.1.1: `peer` refused a replica store of `resource` because it holds
    /// newer data; fetch all of it, every Kind this peer holds there.
    fn fetch_newer(&mut self, now: Time, resource: ResourceId, peer: NodeId) {
        let specifiers: Vec<reload_wire::StoredDataSpecifier> = self
            .store
            .kinds_at(&resource)
            .into_iter()
            .filter_map(|kind| {
                let model_specifier = match self.cfg.kinds.get(kind)?.model {
                    reload_wire::DataModel::Single => reload_wire::ModelSpecifier::Single,
                    reload_wire::DataModel::Array => {
                        reload_wire::ModelSpecifier::Array(vec![reload_wire::ArrayRange {
                            first: 0,
                            last: reload_wire::storage::ARRAY_APPEND,
                        }])
                    }
                    reload_wire::DataModel::Dictionary => reload_wire::ModelSpecifier::Dictionary(Vec::new()),
                };
                Some(reload_wire::StoredDataSpecifier {
                    kind,
                    generation: 0,
                    model_specifier,
                })
            })
            .collect();
        if specifiers.is_empty() {
            return;
        }
        self.stats.resyncs += 1;
        let body = MessageBody::FetchReq(reload_wire::FetchReq {
            resource: resource.clone(),
            specifiers,
        });
        self.send_request(now, vec![Destination::node(peer)], body, Purpose::Resync);
    }

    /// The answer to [`Node::fetch_newer`]: check every value as a fetcher does,
    /// take the newer ones, and, if this peer is responsible, bring its other
    /// replica up to date too.
    fn take_newer(
        &mut self,
        now: Time,
        resource: ResourceId,
        peer: NodeId,
        ans: &mut reload_wire::FetchAns,
        certificates: &[reload_wire::GenericCertificate],
    ) {
        self.check_fetched(now, &resource, ans, certificates);
        let taken = self.store.merge(now, &self.cfg.kinds, &resource, &ans.kind_responses);
        if taken == 0 {
            return;
        }
        if self.topology.is_responsible(ring::resource_point(&resource)) {
            self.replicated_to.insert(resource, vec![peer]);
            if !self.replica_retry_scheduled {
                self.replica_retry_scheduled = true;
                self.schedule(now, Timer::ReplicaRetry);
            }
        }
    }

    // ----- storage (§7.4) -----

    /// The values this peer holds.
    pub fn data_store(&self) -> &DataStore {
        &self.store
    }

    /// §7.4.1.1: a Store is taken only by the responsible peer (replica number 0)
    /// or by a replica whose sender is one of its predecessors; every value must be
    /// signed by a signer the Kind's policy admits, and for an original store so
    /// must the request.
    fn on_store(
        &mut self,
        now: Time,
        sender: &Signer,
        certificates: &[reload_wire::GenericCertificate],
        req: reload_wire::StoreReq,
    ) -> MessageBody {
        let forbidden = |why: &str| MessageBody::Error(ErrorResponse::with_text(ErrorCode::FORBIDDEN, why));
        let replica = req.replica_number > 0;
        // §10.5 step 6: the admitting peer stores what a joining node will be
        // responsible for before it answers the Join.
        let from_admitting_peer =
            replica && self.state == State::Joining && self.admitting_peer == Some(sender.node_id);
        if !(self.is_joined() || from_admitting_peer) || self.cfg.client {
            return MessageBody::Error(ErrorResponse::with_text(ErrorCode::NOT_FOUND, "not a joined peer"));
        }
        if !replica && !self.is_responsible(&req.resource) {
            return MessageBody::Error(ErrorResponse::with_text(
                ErrorCode::NOT_FOUND,
                "this peer is not responsible for the Resource-ID",
            ));
        }
        // §7.4.1.1, §10.4: replica stores come from the replica set (a predecessor
        // that is responsible, or a successor handing over data it was responsible for).
        if replica && !from_admitting_peer && !self.topology.neighbor_table().all().contains(&sender.node_id) {
            return forbidden("replica stores are taken only from a neighbor");
        }
        let now_unix = i64::try_from(now.as_micros() / 1_000_000).unwrap_or(i64::MAX);
        let mut signers: Vec<&reload_wire::SignerIdentity> = Vec::new();
        for kd in &req.kind_data {
            let Some(policy) = self.cfg.kinds.get(kd.kind).map(|d| d.policy) else {
                continue;
            };
            for v in &kd.values {
                if v.signature.is_anonymous() {
                    return forbidden("stored values must be signed");
                }
                let Ok(input) = reload_trust::stored_data_signature_input(
                    &req.resource,
                    kd.kind,
                    v.storage_time,
                    &v.value,
                    &v.signature.identity,
                ) else {
                    return forbidden("the value cannot be signed over");
                };
                let Some(value_signer) = self.crypto.verify(&input, &v.signature, certificates, now_unix) else {
                    return forbidden("a value's signature does not verify");
                };
                if !access::permits(policy, &req.resource, &v.value, &value_signer) {
                    return forbidden("the value's signer may not write here (access policy)");
                }
                // RFC 7904 §3.3: the AOR, the user name the policy tied to the
                // Resource-ID, must be in a domain the overlay serves (§3.4).
                let restriction = self.cfg.kinds.domain_restriction(kd.kind);
                if *restriction != DomainRestriction::Any
                    && !value_signer.user.as_deref().is_some_and(|u| restriction.admits_name(u))
                {
                    return forbidden("the AOR's domain is not one this overlay serves (RFC 7904 §3.4)");
                }
                if !replica && !access::permits(policy, &req.resource, &v.value, sender) {
                    return forbidden("the request's signer may not write here (access policy)");
                }
                if !signers.contains(&&v.signature.identity) {
                    signers.push(&v.signature.identity);
                }
            }
        }
        match self
            .store
            .store(now, &self.cfg.kinds, &req.resource, &req.kind_data, replica)
        {
            Ok(generations) => {
                // Keep what verified the values, to serve and replicate them with it.
                for identity in signers {
                    let certificates = self.crypto.certificates_for(identity);
                    self.store.remember_signer(identity, certificates);
                }
                let replicas = if replica {
                    Vec::new()
                } else {
                    let to = self.replicate(now, &req, &generations, certificates);
                    self.replicated_to.insert(req.resource.clone(), to.clone());
                    to
                };
                MessageBody::StoreAns(reload_wire::StoreAns {
                    kind_responses: generations
                        .into_iter()
                        .map(|(kind, generation_counter)| reload_wire::StoreKindResponse {
                            kind,
                            generation_counter,
                            replicas: replicas.clone(),
                        })
                        .collect(),
                })
            }
            Err(e) => MessageBody::Error(store_error(e)),
        }
    }

    /// §7.4.2, §7.3: the fetcher trusts no peer with the data. Every value in a
    /// FetchAns must carry a signature that verifies (with the certificates of the
    /// answer's security block or ones this node knows) by a signer the Kind's access
    /// policy admits at `resource`; values that fail are removed and counted. The
    /// values a responder synthesizes for absent entries (§7.4.2.2: exists false,
    /// unsigned, storage time 0) pass, as they claim nothing.
    fn check_fetched(
        &mut self,
        now: Time,
        resource: &ResourceId,
        ans: &mut reload_wire::FetchAns,
        certificates: &[reload_wire::GenericCertificate],
    ) -> u32 {
        let now_unix = i64::try_from(now.as_micros() / 1_000_000).unwrap_or(i64::MAX);
        let mut rejected = 0u32;
        for kr in &mut ans.kind_responses {
            let policy = self.cfg.kinds.get(kr.kind).map(|d| d.policy);
            let crypto = &mut self.crypto;
            kr.values.retain(|v| {
                if crate::storage::store::is_synthesized(v) {
                    return true;
                }
                // A Kind this node does not define has no policy to check against.
                let Some(policy) = policy else {
                    rejected += 1;
                    return false;
                };
                let ok = reload_trust::stored_data_signature_input(
                    resource,
                    kr.kind,
                    v.storage_time,
                    &v.value,
                    &v.signature.identity,
                )
                .ok()
                .and_then(|input| crypto.verify(&input, &v.signature, certificates, now_unix))
                .is_some_and(|signer| access::permits(policy, resource, &v.value, &signer));
                if !ok {
                    rejected += 1;
                }
                ok
            });
        }
        self.stats.fetched_values_rejected += u64::from(rejected);
        rejected
    }

    /// §10.4: the responsible peer stores what it took on its two successors, with
    /// replica numbers 1 and 2 and its own generation counters, carrying the value
    /// signers' certificates along. Returns the replicas.
    fn replicate(
        &mut self,
        now: Time,
        req: &reload_wire::StoreReq,
        generations: &[(reload_wire::KindId, u64)],
        certificates: &[reload_wire::GenericCertificate],
    ) -> Vec<NodeId> {
        let successors: Vec<NodeId> = self.topology.neighbor_table().successors.into_iter().take(2).collect();
        let appended = |kd: &reload_wire::StoreKindData| {
            kd.values.iter().any(|v| {
                matches!(v.value, reload_wire::StoredDataValue::Array { index, .. } if index == reload_wire::storage::ARRAY_APPEND)
            })
        };
        // Only an append needs the array as held (exporting clones every value).
        let held = if req.kind_data.iter().any(appended) {
            self.store.export(now, &req.resource)
        } else {
            Vec::new()
        };
        let kind_data: Vec<reload_wire::StoreKindData> = req
            .kind_data
            .iter()
            .filter_map(|kd| {
                let generation = generations.iter().find(|(k, _)| *k == kd.kind)?.1;
                // An append (index 0xffffffff) would land wherever each replica's own
                // array ends; send the array as this peer holds it, with the indexes
                // it gave the new entries, so the replicas mirror it exactly.
                let values = if appended(kd) {
                    held.iter().find(|(k, _, _)| *k == kd.kind)?.2.clone()
                } else {
                    kd.values.clone()
                };
                Some(reload_wire::StoreKindData {
                    kind: kd.kind,
                    generation_counter: generation,
                    values,
                })
            })
            .collect();
        for (i, succ) in successors.iter().enumerate() {
            let kind_data = kind_data.clone();
            let body = MessageBody::StoreReq(reload_wire::StoreReq {
                resource: req.resource.clone(),
                replica_number: (i + 1) as u8,
                kind_data,
            });
            self.replications_due.push((*succ, body, certificates.to_vec()));
        }
        successors
    }

    /// Fetch (§7.4.2) or, with `stat`, Stat (§7.4.3): answered from what this peer holds.
    fn on_fetch(&mut self, now: Time, req: reload_wire::FetchReq, stat: bool) -> MessageBody {
        if stat {
            MessageBody::StatAns(reload_wire::StatAns {
                kind_responses: req
                    .specifiers
                    .iter()
                    .map(|s| self.store.stat(now, &req.resource, s))
                    .collect(),
            })
        } else {
            MessageBody::FetchAns(reload_wire::FetchAns {
                kind_responses: req
                    .specifiers
                    .iter()
                    .map(|s| self.store.fetch(now, &req.resource, s))
                    .collect(),
            })
        }
    }

    /// Find (§7.4.4).
    fn on_find(&mut self, req: reload_wire::FindReq) -> MessageBody {
        if !self.is_responsible(&req.resource) {
            return MessageBody::Error(ErrorResponse::with_text(
                ErrorCode::NOT_FOUND,
                "this peer is not responsible for the Resource-ID",
            ));
        }
        let mut seen = HashSet::new();
        if req.kinds.iter().any(|k| !seen.insert(*k)) {
            return MessageBody::Error(ErrorResponse::with_text(
                ErrorCode::INVALID_MESSAGE,
                "a Kind-ID appears twice",
            ));
        }
        MessageBody::FindAns(reload_wire::FindAns {
            results: self.store.find(&req.resource, &req.kinds),
        })
    }

    fn probe(&self, now: Time, wanted: &[ProbeInformationType]) -> ProbeAns {
        let uptime = u32::try_from(now.since(self.started).as_secs()).unwrap_or(u32::MAX);
        ProbeAns {
            probe_info: wanted
                .iter()
                .filter_map(|t| match *t {
                    ProbeInformationType::RESPONSIBLE_SET => {
                        Some(ProbeInformation::ResponsibleSet(self.topology.responsible_ppb()))
                    }
                    ProbeInformationType::NUM_RESOURCES => {
                        Some(ProbeInformation::NumResources(self.store.resource_count() as u32))
                    }
                    ProbeInformationType::UPTIME => Some(ProbeInformation::Uptime(uptime)),
                    _ => None,
                })
                .collect(),
        }
    }

    // ----- Attach (§6.5.1) -----

    fn admitting_target(&self) -> Destination {
        if self.cfg.client {
            // A client attaches to the peer responsible for its own Node-ID (§4.2.1).
            Destination::resource(ResourceId::from(self.cfg.node_id))
        } else {
            // §10.5 step 2: Attach to the admitting peer (for Chord, responsible for n+1).
            Destination::resource(ring::resource_at(self.topology.join_target()))
        }
    }

    fn send_attach(
        &mut self,
        now: Time,
        target: Destination,
        source_route: Option<NodeId>,
        purpose: AttachPurpose,
        send_update: bool,
    ) {
        let body = MessageBody::AttachReq(AttachReqAns {
            ufrag: self.random_token(8),
            password: self.random_token(22),
            role: PASSIVE.to_vec(),
            candidates: self.cfg.candidates.clone(),
            send_update,
        });
        let mut list = Vec::with_capacity(2);
        if let Some(via) = source_route {
            // §10.6: Attach to a new neighbor through the peer that named it.
            list.push(Destination::node(via));
        }
        list.push(target);
        self.send_request(now, list, body, Purpose::Attach(purpose));
        self.stats.attaches_sent += 1;
    }

    fn on_attach_request(&mut self, signer: NodeId, req: AttachReqAns) -> Result<AttachReqAns, ErrorResponse> {
        // Our own Attach to the signer was answered already: a connection between
        // us is being made (the signer's, as answerer), and it serves theirs too.
        let expecting = self.connecting.contains_key(&signer)
            && !self.attaching_to(signer)
            && !self.answered_attach.contains(&signer);
        let answer = self.answer_attach(signer, &req, expecting)?;
        if !expecting
            && !req.candidates.is_empty()
            && !self.connections.contains_key(&signer)
            && !self.answered_attach.contains(&signer)
        {
            // §6.5.1.13: the answerer is the TLS (DTLS) client; it connects to the
            // requester's candidates once its answer is on the way, and must find
            // the requester's Node-ID in the certificate it is shown.
            self.answered_attach.insert(signer);
            self.actions.push_back(Action::Connect {
                peer: Some(signer),
                candidates: req.candidates,
            });
        }
        Ok(answer)
    }

    /// Checks an Attach request from `signer` and makes its answer (§6.5.1.2).
    /// With `expecting`, a connection between the two is already on its way, and
    /// the request is answered without a tie-break.
    fn answer_attach(
        &mut self,
        signer: NodeId,
        req: &AttachReqAns,
        expecting: bool,
    ) -> Result<AttachReqAns, ErrorResponse> {
        if signer == self.cfg.node_id {
            return Err(ErrorResponse::with_text(ErrorCode::INVALID_MESSAGE, "attach to self"));
        }
        if self.state != State::Joined && !self.cfg.client {
            return Err(ErrorResponse::with_text(ErrorCode::NOT_FOUND, "not joined yet"));
        }
        // §6.5.1.2 tie-break: both sides attaching at once; the larger Node-ID wins.
        let crossing = !expecting && (self.connecting.contains_key(&signer) || self.attaching_to(signer));
        if crossing && ring::point(self.cfg.node_id) > ring::point(signer) {
            return Err(ErrorResponse::with_text(ErrorCode::IN_PROGRESS, "attach in progress"));
        }
        if crossing {
            // Ours loses (§6.5.1.2): stop retransmitting it and take theirs.
            self.stats.attach_tie_breaks += 1;
            let purpose = self
                .cancel_attach_to(signer)
                .or_else(|| self.connecting.remove(&signer));
            if let Some(p) = purpose {
                // Remember why we wanted the peer, for when the link comes up.
                self.connecting.insert(signer, p);
            }
        }
        if req.send_update {
            self.update_on_link.insert(signer);
        }
        Ok(AttachReqAns {
            ufrag: self.random_token(8),
            password: self.random_token(22),
            role: ACTIVE.to_vec(),
            candidates: self.cfg.candidates.clone(),
            send_update: false,
        })
    }

    fn on_attach_answer(&mut self, now: Time, peer: NodeId, purpose: AttachPurpose, ans: AttachReqAns) {
        if peer == self.cfg.node_id {
            return;
        }
        if self.connections.contains_key(&peer) {
            // Already linked: treat as if the link had just come up for this purpose.
            match purpose {
                AttachPurpose::Admitting => self.admitted_by(now, peer),
                AttachPurpose::Neighbor | AttachPurpose::Finger => {
                    if !self.cfg.client && self.topology.insert(peer) {
                        self.note_table_changes(now);
                    }
                }
            }
            return;
        }
        if self.connecting.contains_key(&peer) {
            return;
        }
        self.connecting.insert(peer, purpose);
        if self.cfg.candidates.is_empty() {
            // We offered nowhere to connect to (a node that does not listen): the
            // answerer cannot be the TLS client, so this node connects instead.
            self.actions.push_back(Action::Connect {
                peer: Some(peer),
                candidates: ans.candidates,
            });
        } else {
            // §6.5.1.13: "The node that sent the Attach request MUST be the TLS
            // server": the answerer connects to our candidates, and the link comes
            // up as an inbound one from it. Give up on it after a while.
            self.schedule(now + ATTACH_LINK_WAIT, Timer::AttachLink(peer));
        }
    }

    fn admitted_by(&mut self, now: Time, peer: NodeId) {
        self.admitting_peer = Some(peer);
        if self.cfg.client {
            // §4.2.1: a client keeps one link, to the peer responsible for its Node-ID.
            let mut others: Vec<LinkId> = self
                .links
                .iter()
                .filter(|(_, l)| l.peer != peer)
                .map(|(id, _)| *id)
                .collect();
            others.sort();
            for link in others {
                if let Some(l) = self.links.remove(&link) {
                    self.connections.remove(&l.peer);
                }
                self.actions.push_back(Action::Close { link });
            }
            if self.state != State::Joined {
                self.become_joined(now);
            }
            return;
        }
        self.topology.insert(peer);
        // Wait for the admitting peer's Update (send_update) and the neighbor
        // attaches it triggers, then Join (§10.5 steps 3-5).
        let deadline = now + self.cfg.reliability_timer;
        self.join_deadline = Some(deadline);
        self.schedule(deadline, Timer::JoinCheck);
    }

    fn maybe_send_join(&mut self, now: Time, deadline_passed: bool) {
        if self.state != State::Joining || self.join_sent {
            return;
        }
        let Some(ap) = self.admitting_peer else { return };
        let neighbor_attaches = self
            .pending
            .values()
            .any(|p| p.purpose == Purpose::Attach(AttachPurpose::Neighbor))
            || self.connecting.values().any(|p| *p == AttachPurpose::Neighbor);
        if neighbor_attaches && !deadline_passed {
            return;
        }
        self.join_sent = true;
        let body = MessageBody::JoinReq(reload_wire::JoinReq {
            joining_peer_id: self.cfg.node_id,
            overlay_specific_data: Vec::new(),
        });
        self.send_request(now, vec![Destination::node(ap)], body, Purpose::Join);
    }

    // ----- Join, Leave, Update, RouteQuery (§6.4.2, §10) -----

    fn on_join(&mut self, now: Time, signer: NodeId, direct: bool, joining: NodeId) -> Result<(), ErrorResponse> {
        // §6.4.2.1: signed by the joining Node-ID, over a link bound to it.
        if signer != joining || !direct || !self.connections.contains_key(&joining) {
            return Err(ErrorResponse::with_text(
                ErrorCode::FORBIDDEN,
                "Join must come directly from the joining node",
            ));
        }
        if self.state != State::Joined || self.cfg.client {
            return Err(ErrorResponse::with_text(ErrorCode::NOT_FOUND, "not a joined peer"));
        }
        // §10.5 steps 7-8: JN becomes our predecessor; tell it and our neighbors.
        self.topology.insert(joining);
        self.stats.joins_admitted += 1;
        self.note_table_changes(now);
        let data = self.neighbors_update();
        self.send_update(now, joining, data);
        Ok(())
    }

    fn on_leave(&mut self, now: Time, signer: NodeId, direct: bool, req: LeaveReq) -> Result<(), ErrorResponse> {
        if signer != req.leaving_peer_id || !direct {
            return Err(ErrorResponse::with_text(
                ErrorCode::FORBIDDEN,
                "Leave must come directly from the leaving node",
            ));
        }
        // §10.9: learn the leaving peer's neighbors, then act as on a failure.
        let learned = match req.chord {
            Some(ChordLeaveData::FromSucc { successors }) => successors,
            Some(ChordLeaveData::FromPred { predecessors }) => predecessors,
            None => Vec::new(),
        };
        self.topology.remove(signer);
        self.stats.leaves_received += 1;
        for id in learned {
            if id != self.cfg.node_id && self.topology.interest(id) == Interest::Neighbor {
                self.send_attach(now, Destination::node(id), None, AttachPurpose::Neighbor, false);
            }
        }
        self.note_table_changes(now);
        Ok(())
    }

    fn on_update(&mut self, now: Time, sender: NodeId, update: ChordUpdate) -> Result<(), ErrorResponse> {
        if !self.connections.contains_key(&sender) {
            return Err(ErrorResponse::with_text(
                ErrorCode::FORBIDDEN,
                "Update from a node without a link",
            ));
        }
        if self.cfg.client {
            return Ok(());
        }
        // The sender says it is a peer in the ring.
        let mut changed = self.topology.insert(sender);
        let (lists, fingers): (Vec<NodeId>, Vec<NodeId>) = match update.data {
            ChordUpdateData::PeerReady => (Vec::new(), Vec::new()),
            ChordUpdateData::Neighbors {
                predecessors,
                successors,
            } => (predecessors.into_iter().chain(successors).collect(), Vec::new()),
            ChordUpdateData::Full {
                predecessors,
                successors,
                fingers,
            } => (predecessors.into_iter().chain(successors).collect(), fingers),
        };
        // The sender counts this node among its neighbors.
        let lists_us = lists.contains(&self.cfg.node_id);
        // §10.7.3: attach to peers that belong in our neighbor table, source-routed
        // through the sender (§10.6); and, while joining, to useful fingers.
        for id in lists {
            if id == self.cfg.node_id || self.connections.contains_key(&id) {
                if id != self.cfg.node_id && !self.topology.contains(id) && self.state == State::Joined {
                    changed |= self.topology.insert(id);
                }
                continue;
            }
            if self.topology.interest(id) == Interest::Neighbor
                && !self.connecting.contains_key(&id)
                && !self.attaching_to(id)
            {
                self.send_attach(now, Destination::node(id), Some(sender), AttachPurpose::Neighbor, false);
            }
        }
        for id in fingers {
            if id != self.cfg.node_id
                && !self.connections.contains_key(&id)
                && !self.connecting.contains_key(&id)
                && self.topology.interest(id) == Interest::RoutingEntry
                && !self.attaching_to(id)
            {
                self.send_attach(now, Destination::node(id), None, AttachPurpose::Finger, false);
            }
        }
        if changed {
            self.note_table_changes(now);
        }
        if self.state == State::Joined && lists_us && !self.topology.neighbor_table().all().contains(&sender) {
            // The sender counts us as a neighbor but we know peers between it and
            // us: its view is stale, and nobody else will tell it (Updates go to
            // neighbors, §10.7.4.1). Our table lets it attach to the closer ones
            // (§10.7.3), as Chord's stabilization would.
            let data = self.neighbors_update();
            self.send_update(now, sender, data);
        }
        if self.state == State::Joining {
            self.maybe_send_join(now, false);
        }
        Ok(())
    }

    /// Drops a pending Attach to `id`; returns its purpose.
    fn cancel_attach_to(&mut self, id: NodeId) -> Option<AttachPurpose> {
        // The smallest matching id, so the choice does not depend on hash order.
        let txid = self
            .pending
            .iter()
            .filter(|(_, p)| {
                matches!(p.purpose, Purpose::Attach(_))
                    && p.header.destination_list.last() == Some(&Destination::node(id))
            })
            .map(|(t, _)| *t)
            .min()?;
        match self.pending.remove(&txid)?.purpose {
            Purpose::Attach(p) => Some(p),
            _ => None,
        }
    }

    fn attaching_to(&self, id: NodeId) -> bool {
        self.pending.values().any(|p| {
            matches!(p.purpose, Purpose::Attach(_)) && p.header.destination_list.last() == Some(&Destination::node(id))
        })
    }

    fn on_route_query(&mut self, now: Time, sender: NodeId, q: reload_wire::RouteQueryReq) -> MessageBody {
        let target = match &q.destination {
            Destination::Node { node_id } => ring::point(*node_id),
            Destination::Resource { resource_id } => ring::resource_point(resource_id),
            _ => {
                return MessageBody::Error(ErrorResponse::with_text(
                    ErrorCode::NOT_FOUND,
                    "opaque destinations are not answered",
                ));
            }
        };
        let next_peer = if self.is_joined() && self.topology.is_responsible(target) {
            self.cfg.node_id
        } else {
            self.topology.next_hop(target).unwrap_or(self.cfg.node_id)
        };
        if q.send_update && self.is_joined() {
            let data = self.full_update();
            self.send_update(now, sender, data);
        }
        MessageBody::RouteQueryAns(ChordRouteQueryAns { next_peer })
    }

    fn uptime(&self, now: Time) -> u32 {
        u32::try_from(now.since(self.started).as_secs()).unwrap_or(u32::MAX)
    }

    fn neighbors_update(&self) -> ChordUpdateData {
        let t = self.topology.neighbor_table();
        ChordUpdateData::Neighbors {
            predecessors: t.predecessors,
            successors: t.successors,
        }
    }

    fn full_update(&self) -> ChordUpdateData {
        let t = self.topology.neighbor_table();
        ChordUpdateData::Full {
            predecessors: t.predecessors,
            successors: t.successors,
            fingers: self.topology.routing_entries(),
        }
    }

    fn send_update(&mut self, now: Time, to: NodeId, data: ChordUpdateData) {
        let body = MessageBody::UpdateReq(ChordUpdate {
            uptime: self.uptime(now),
            data,
        });
        self.stats.updates_sent += 1;
        self.send_request(now, vec![Destination::node(to)], body, Purpose::Update);
    }

    fn send_neighbor_updates(&mut self, now: Time) {
        let data = self.neighbors_update();
        for n in self.topology.neighbor_table().all() {
            self.send_update(now, n, data.clone());
        }
    }

    /// Compares the tables with what was last announced; on a change, tells the
    /// application and (reactive recovery, §10.7.3) the neighbors.
    fn note_table_changes(&mut self, now: Time) {
        if self.state != State::Joined || self.cfg.client {
            return;
        }
        let table = self.topology.neighbor_table();
        if table != self.last_neighbors {
            self.last_neighbors = table.clone();
            self.events.push_back(Event::NeighborsChanged(table));
            // New neighbors: replica stores that gave up may succeed now.
            self.replica_retries.clear();
            if self.cfg.reactive {
                self.send_neighbor_updates(now);
            }
        }
        let pred = self.topology.predecessor();
        if pred != self.last_predecessor {
            self.last_predecessor = pred;
            self.events
                .push_back(Event::ResponsibleRangeChanged { predecessor: pred });
        }
        self.maintain_replicas(now);
    }

    /// §10.7.3, §6.4.2.3: for each Resource-ID held — if this peer is responsible,
    /// make sure its two successors have the data; if a new peer took it over, hand
    /// the data to that peer; if this peer is no longer even a replica (three
    /// predecessors lie between it and the resource), drop it.
    fn maintain_replicas(&mut self, now: Time) {
        if self.state != State::Joined || self.cfg.client || self.store.resource_count() == 0 {
            return;
        }
        let table = self.topology.neighbor_table();
        let successors: Vec<NodeId> = table.successors.iter().take(2).copied().collect();
        let me = ring::point(self.cfg.node_id);
        let third = table.predecessors.get(2).map(|p| ring::point(*p));
        let resources: Vec<ResourceId> = self.store.resources().cloned().collect();
        for r in resources {
            let k = ring::resource_point(&r);
            if self.topology.is_responsible(k) {
                let known = self.replicated_to.get(&r).cloned().unwrap_or_default();
                for (i, s) in successors.iter().enumerate() {
                    if !known.contains(s) {
                        self.send_replica(now, &r, *s, (i + 1) as u8);
                    }
                }
                self.replicated_to.insert(r, successors.clone());
            } else if let Some(owner) = self.topology.successor_of(k) {
                // Someone else is responsible now. If we were, it may not have the data.
                if self.replicated_to.remove(&r).is_some() && table.predecessors.contains(&owner) {
                    self.send_replica(now, &r, owner, 1);
                }
                if third.is_some_and(|p3| !ring::in_half_open(k, p3, me)) {
                    self.stats.resources_dropped += 1;
                    self.store.remove(&r);
                }
            }
        }
    }

    /// Sends everything held at `resource` to `to` as replica number `number`,
    /// with lifetimes lowered by the time already held (§7.4.1.1).
    fn send_replica(&mut self, now: Time, resource: &ResourceId, to: NodeId, number: u8) {
        let kind_data: Vec<reload_wire::StoreKindData> = self
            .store
            .export(now, resource)
            .into_iter()
            .filter(|(_, generation, values)| *generation > 0 && !values.is_empty())
            .map(|(kind, generation_counter, values)| reload_wire::StoreKindData {
                kind,
                generation_counter,
                values,
            })
            .collect();
        if kind_data.is_empty() {
            return;
        }
        let body = MessageBody::StoreReq(reload_wire::StoreReq {
            resource: resource.clone(),
            replica_number: number,
            kind_data,
        });
        self.stats.replica_stores_sent += 1;
        self.send_request(now, vec![Destination::node(to)], body, Purpose::Replicate);
    }

    /// A replica store to `peer` was refused or went unanswered: mark `peer` as
    /// not having the data so that maintenance sends it again, soon, unless the
    /// refusal cannot change (the peer's limits) or it failed too often.
    fn replica_store_failed(&mut self, now: Time, resource: ResourceId, peer: Option<NodeId>, retry: bool) {
        self.stats.replica_stores_failed += 1;
        let attempts = self.replica_retries.entry(resource.clone()).or_insert(0);
        *attempts += 1;
        if !retry || *attempts > MAX_REPLICA_RETRIES || !self.store.holds(&resource) {
            return;
        }
        // An empty entry also makes a peer that was handing the data over try again.
        let known = self.replicated_to.entry(resource).or_default();
        if let Some(peer) = peer {
            known.retain(|n| *n != peer);
        }
        if !self.replica_retry_scheduled {
            self.replica_retry_scheduled = true;
            self.schedule(now + self.cfg.reliability_timer, Timer::ReplicaRetry);
        }
    }

    /// Asks the topology where to look for routing entries (§10.7.4.2) and attaches
    /// to the peers responsible for those points.
    fn search_fingers(&mut self, now: Time, all: bool) {
        for target in self.topology.search_targets(all, &mut self.rng) {
            self.send_attach(
                now,
                Destination::resource(ring::resource_at(target)),
                None,
                AttachPurpose::Finger,
                false,
            );
        }
    }

    /// Pings the routing-table peers that are not neighbors: neighbors hear Updates,
    /// but a finger (or any peer routed through) that died silently is only found
    /// out by a request that fails.
    fn ping_routing_entries(&mut self, now: Time) {
        let neighbors = self.topology.neighbor_table().all();
        for f in self.topology.members() {
            if !neighbors.contains(&f) {
                let body = MessageBody::PingReq(reload_wire::PingReq::default());
                self.send_request(now, vec![Destination::node(f)], body, Purpose::Liveness);
            }
        }
    }

    /// Closes outbound links to peers that are no longer neighbors or fingers.
    fn prune_links(&mut self, now: Time) {
        let grace = self.cfg.update_interval.min(Duration::from_secs(60));
        let doomed: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| {
                l.outbound
                    && now.since(l.opened) > grace
                    && Some(l.peer) != self.admitting_peer
                    && self.topology.contains(l.peer)
                    && !self.topology.is_needed(l.peer)
            })
            .map(|(id, _)| *id)
            .collect();
        let mut doomed = doomed;
        // Hash order must not decide the order of actions: runs must repeat exactly.
        doomed.sort();
        for link in doomed {
            if let Some(l) = self.links.remove(&link) {
                self.connections.remove(&l.peer);
                self.topology.remove(l.peer);
                self.stats.links_pruned += 1;
            }
            self.actions.push_back(Action::Close { link });
        }
    }

    // ----- sending -----

    fn push_transmit(&mut self, link: LinkId, bytes: Vec<u8>) {
        match self.link_mtu.get(&link) {
            Some(mtu) if bytes.len() > *mtu => {
                let pieces = fragmentation::fragment(&bytes, *mtu);
                self.stats.fragments_sent += pieces.len() as u64;
                for bytes in pieces {
                    self.transmits.push_back(Transmit { link, bytes });
                }
            }
            _ => self.transmits.push_back(Transmit { link, bytes }),
        }
    }

    fn wire_config(&self) -> reload_wire::WireConfig {
        reload_wire::WireConfig {
            max_message_size: self.cfg.max_message_size,
            data_models: self.cfg.data_models.clone(),
        }
    }

    fn build(&mut self, header: ForwardingHeader, body: MessageBody) -> Option<Vec<u8>> {
        self.build_with(header, body, Vec::new())
    }

    fn build_with(
        &mut self,
        header: ForwardingHeader,
        body: MessageBody,
        certificates: Vec<reload_wire::GenericCertificate>,
    ) -> Option<Vec<u8>> {
        self.build_signed(header, body, certificates, None)
    }

    /// Builds a message signed by `signer`, or by this node when `None`.
    fn build_signed(
        &mut self,
        header: ForwardingHeader,
        body: MessageBody,
        certificates: Vec<reload_wire::GenericCertificate>,
        signer: Option<&dyn MessageCrypto>,
    ) -> Option<Vec<u8>> {
        let max = self.cfg.max_message_size;
        let mut certificates = certificates;
        // §6.3.4: the security block carries what verifies every signature inside,
        // so stored values travel with their signers' certificates.
        for c in self.value_certificates(&body) {
            if !certificates.contains(&c) {
                certificates.push(c);
            }
        }
        let crypto = signer.unwrap_or(self.crypto.as_ref());
        match crate::crypto::signed_message_with(crypto, header, body, certificates, max) {
            Ok(b) => Some(b),
            Err(_) => {
                self.stats.send_too_large += 1;
                None
            }
        }
    }

    /// The certificates of the signers of the stored values `body` carries (a Store
    /// or a FetchAns), as far as this node knows them.
    fn value_certificates(&self, body: &MessageBody) -> Vec<reload_wire::GenericCertificate> {
        let values: Vec<&reload_wire::StoredData> = match body {
            MessageBody::StoreReq(req) => req.kind_data.iter().flat_map(|k| &k.values).collect(),
            MessageBody::FetchAns(ans) => ans.kind_responses.iter().flat_map(|k| &k.values).collect(),
            _ => return Vec::new(),
        };
        let mut identities: Vec<&reload_wire::SignerIdentity> = Vec::new();
        for v in values {
            if !v.signature.is_anonymous() && !identities.contains(&&v.signature.identity) {
                identities.push(&v.signature.identity);
            }
        }
        let own = self.crypto.identity();
        identities
            .into_iter()
            .filter(|i| **i != own)
            .flat_map(|i| match self.store.signer_certificates(i) {
                [] => self.crypto.certificates_for(i),
                kept => kept.to_vec(),
            })
            .collect()
    }

    fn send_request(&mut self, now: Time, destination_list: Vec<Destination>, body: MessageBody, purpose: Purpose) {
        self.send_request_with(now, destination_list, body, Vec::new(), purpose);
    }

    fn send_request_with(
        &mut self,
        now: Time,
        destination_list: Vec<Destination>,
        body: MessageBody,
        certificates: Vec<reload_wire::GenericCertificate>,
        purpose: Purpose,
    ) {
        self.send_request_signed(now, destination_list, body, certificates, purpose, None);
    }

    /// [`Node::send_request_with`], signed by `signer` (this node when `None`).
    fn send_request_signed(
        &mut self,
        now: Time,
        destination_list: Vec<Destination>,
        body: MessageBody,
        certificates: Vec<reload_wire::GenericCertificate>,
        purpose: Purpose,
        signer: Option<&dyn MessageCrypto>,
    ) {
        let txid = TransactionId(self.rng.next_u64());
        let expected_responder = match destination_list.last() {
            Some(Destination::Node { node_id }) if !node_id.is_wildcard() => Some(*node_id),
            _ => None,
        };
        let resource = match &body {
            MessageBody::StoreReq(req) => Some(req.resource.clone()),
            MessageBody::FetchReq(req) => Some(req.resource.clone()),
            _ => None,
        };
        let mut header = ForwardingHeader::new(self.cfg.overlay, txid, destination_list);
        header.ttl = self.cfg.initial_ttl;
        header.configuration_sequence = self.cfg.configuration_sequence;
        let Some(bytes) = self.build_signed(header.clone(), body, certificates, signer) else {
            if let Purpose::App(request) = purpose {
                self.events.push_back(Event::Response {
                    request,
                    result: Err(Failure::Error {
                        responder: self.cfg.node_id,
                        error: ErrorResponse::with_text(ErrorCode::MESSAGE_TOO_LARGE, "request too large"),
                    }),
                });
            }
            return;
        };
        let deadline = now + self.cfg.reliability_timer;
        self.pending.insert(
            txid,
            Pending {
                purpose,
                bytes,
                header,
                transmissions: 0,
                deadline,
                expected_responder,
                resource,
            },
        );
        self.transmit_pending(now, txid);
    }

    fn transmit_pending(&mut self, now: Time, txid: TransactionId) {
        let Some(p) = self.pending.get(&txid) else { return };
        if self.is_local(&p.header.destination_list) {
            // This node is the destination itself: answer without the network.
            let bytes = p.bytes.clone();
            return self.deliver_local(now, &bytes);
        }
        let link = self.route(&p.header.destination_list);
        let Some(p) = self.pending.get_mut(&txid) else { return };
        p.transmissions += 1;
        p.deadline = now + self.cfg.reliability_timer;
        let deadline = p.deadline;
        if let Some(link) = link {
            self.stats.sent += 1;
            let bytes = p.bytes.clone();
            self.push_transmit(link, bytes);
        } else {
            self.stats.send_no_route += 1;
        }
        self.schedule(deadline, Timer::Retransmit(txid));
    }

    /// Sends an answer back along the reversed via list (§6.2.2) and returns its bytes.
    fn send_response(
        &mut self,
        now: Time,
        request: &ForwardingHeader,
        prev_hop: NodeId,
        body: MessageBody,
    ) -> Option<Vec<u8>> {
        // §6.1.2: the response leaves with destination list = [previous hop] ++ reversed via.
        let mut destination_list: Vec<Destination> = request.via_list.iter().rev().cloned().collect();
        destination_list.insert(0, Destination::node(prev_hop));
        // The first entry is the neighbor the request came from; send straight to it.
        let mut header = ForwardingHeader::new(self.cfg.overlay, request.transaction_id, destination_list);
        header.ttl = self.cfg.initial_ttl;
        header.configuration_sequence = self.cfg.configuration_sequence;
        header.options = request.options_for_response();
        let is_error = matches!(body, MessageBody::Error(_));
        let mut bytes = self.build(header.clone(), body)?;
        let limit = request.max_response_length as usize;
        if limit != 0 && bytes.len() > limit && !is_error {
            // §6.3.2: the requester cannot take an answer this large.
            self.stats.errors_sent += 1;
            let error = ErrorResponse::with_text(ErrorCode::RESPONSE_TOO_LARGE, "answer exceeds max_response_length");
            bytes = self.build(header, MessageBody::Error(error))?;
        }
        if prev_hop == self.cfg.node_id {
            // The answer to this node's own request.
            if let Ok(msg) = Message::decode(&bytes, &self.wire_config()) {
                self.handle_response(now, prev_hop, msg);
            }
            return Some(bytes);
        }
        let link = self.connections.get(&prev_hop).copied();
        match link {
            Some(link) => {
                self.stats.sent += 1;
                self.push_transmit(link, bytes.clone());
            }
            None => self.stats.send_no_route += 1,
        }
        Some(bytes)
    }

    fn reply_error(&mut self, now: Time, request: &ForwardingHeader, prev_hop: NodeId, code: ErrorCode, text: &str) {
        self.stats.errors_sent += 1;
        self.send_response(
            now,
            request,
            prev_hop,
            MessageBody::Error(ErrorResponse::with_text(code, text)),
        );
    }

    // ----- timers -----

    fn schedule(&mut self, at: Time, timer: Timer) {
        self.timers.push(Reverse((at, timer)));
    }

    fn jitter(&mut self, period: Duration) -> Duration {
        // Uniform in [period/2, 3·period/2) so peers do not act in lockstep (§10.7.4.1).
        let micros = u64::try_from(period.as_micros()).unwrap_or(u64::MAX).max(2);
        Duration::from_micros(micros / 2 + self.rng.next_u64() % micros)
    }

    fn run_timer(&mut self, now: Time, timer: Timer) {
        match timer {
            Timer::Retransmit(txid) => {
                let Some(p) = self.pending.get(&txid) else { return };
                if p.deadline > now {
                    return;
                }
                if p.transmissions < self.cfg.max_transmissions {
                    self.stats.retransmissions += 1;
                    self.transmit_pending(now, txid);
                } else if let Some(p) = self.pending.remove(&txid) {
                    self.request_failed(now, p);
                }
            }
            Timer::Stabilize => {
                if self.state == State::Joined && !self.cfg.client {
                    self.send_neighbor_updates(now);
                    self.ping_routing_entries(now);
                    self.maintain_replicas(now);
                    self.prune_links(now);
                    let next = self.jitter(self.cfg.update_interval);
                    self.schedule(now + next, Timer::Stabilize);
                }
            }
            Timer::FingerRefresh => {
                if self.state == State::Joined && !self.cfg.client {
                    self.search_fingers(now, false);
                    let next = self.jitter(self.cfg.ping_interval);
                    self.schedule(now + next, Timer::FingerRefresh);
                }
            }
            Timer::JoinCheck => match self.state {
                State::Joining if self.join_deadline.is_some_and(|d| d <= now) => {
                    if self.admitting_peer.is_some() {
                        self.maybe_send_join(now, true);
                    } else {
                        self.begin_bootstrap();
                    }
                }
                State::Bootstrapping if self.join_deadline.is_some_and(|d| d <= now) => {
                    self.join_deadline = None;
                    self.begin_bootstrap();
                }
                _ => {}
            },
            Timer::PartitionCheck => {
                if self.state == State::Joined && !self.cfg.client && !self.bootstrap.is_empty() {
                    // §10.7.4.4: find a bootstrap peer again, as at join.
                    let pick = (self.rng.next_u32() as usize) % self.bootstrap.len();
                    self.partition_probe_pending = true;
                    self.actions.push_back(Action::Connect {
                        peer: None,
                        candidates: vec![self.bootstrap[pick].clone()],
                    });
                    let next = self.jitter(self.cfg.partition_check_interval);
                    self.schedule(now + next, Timer::PartitionCheck);
                }
            }
            Timer::ReplicaRetry => {
                self.replica_retry_scheduled = false;
                self.maintain_replicas(now);
            }
            Timer::AttachLink(peer) => {
                if !self.connections.contains_key(&peer) && self.connecting.contains_key(&peer) {
                    // The answerer never connected: as if our own connect had failed.
                    self.handle_connect_failed(now, Some(peer));
                }
            }
            Timer::Sweep => {
                self.answered.retain(|_, (expiry, _)| *expiry > now);
                self.reassembler.expire(now);
                self.store.expire(now);
                let store = &self.store;
                self.replicated_to.retain(|r, _| store.holds(r));
                self.replica_retries.retain(|r, _| store.holds(r));
                self.schedule(now + self.cfg.request_lifetime, Timer::Sweep);
            }
        }
    }

    fn request_failed(&mut self, now: Time, p: Pending) {
        self.stats.requests_failed += 1;
        match p.purpose {
            Purpose::App(request) => self.events.push_back(Event::Response {
                request,
                result: Err(Failure::Timeout),
            }),
            Purpose::Attach(AttachPurpose::Admitting) | Purpose::Join => {
                if matches!(self.state, State::Joining | State::Bootstrapping) {
                    self.events.push_back(Event::Rejoining);
                    self.begin_bootstrap();
                }
            }
            Purpose::Attach(AttachPurpose::Neighbor) => self.maybe_send_join(now, false),
            Purpose::Update | Purpose::Liveness => {
                // §10.7.1, §10.7.2: a neighbor or finger that does not answer has failed.
                if let Some(peer) = p.expected_responder {
                    if let Some(link) = self.connections.remove(&peer) {
                        self.links.remove(&link);
                        self.actions.push_back(Action::Close { link });
                    }
                    self.peer_lost(now, peer);
                }
            }
            Purpose::Replicate => {
                if let Some(resource) = p.resource {
                    self.replica_store_failed(now, resource, p.expected_responder, true);
                }
            }
            Purpose::Attach(AttachPurpose::Finger)
            | Purpose::Leave
            | Purpose::PartitionCheck { .. }
            | Purpose::Resync => {}
        }
    }

    fn random_token(&mut self, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len)
            .map(|_| ALPHABET[(self.rng.next_u32() as usize) % ALPHABET.len()])
            .collect()
    }
}

/// The message code of a payload, read without parsing the body.
fn peek_code(payload: &[u8]) -> Option<MessageCode> {
    Reader::new(payload)
        .u16("MessageContents.message_code")
        .ok()
        .map(MessageCode)
}

impl Node<Chord> {
    /// The finger table (`None` for invalid entries).
    pub fn fingers(&self) -> Vec<Option<NodeId>> {
        self.topology.fingers()
    }
}

/// The Error response for a refused Store (§7.4.1.2).
fn store_error(e: StoreError) -> ErrorResponse {
    match e {
        StoreError::UnknownKinds(kinds) => ErrorResponse::unknown_kinds(&kinds)
            .unwrap_or_else(|_| ErrorResponse::with_text(ErrorCode::UNKNOWN_KIND, "unknown Kinds")),
        StoreError::GenerationCounterTooLow(current) => {
            let ans = reload_wire::StoreAns {
                kind_responses: current
                    .into_iter()
                    .map(|(kind, generation_counter)| reload_wire::StoreKindResponse {
                        kind,
                        generation_counter,
                        replicas: Vec::new(),
                    })
                    .collect(),
            };
            ErrorResponse::generation_counter_too_low(&ans).unwrap_or_else(|_| {
                ErrorResponse::with_text(ErrorCode::GENERATION_COUNTER_TOO_LOW, "generation counter too low")
            })
        }
        StoreError::DataTooLarge(why) => ErrorResponse::with_text(ErrorCode::DATA_TOO_LARGE, why),
        StoreError::Invalid(why) => ErrorResponse::with_text(ErrorCode::INVALID_MESSAGE, why),
        StoreError::DataTooOld => ErrorResponse::with_text(ErrorCode::DATA_TOO_OLD, "older than the stored value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::StandInCrypto;
    use reload_wire::{CandidateType, IpAddressPort, OverlayHash, OverlayLinkType};

    fn node(id: NodeId) -> Node {
        let cfg = NodeConfig::new(OverlayHash::from_overlay_name("appattach.example"), id);
        Node::new(cfg, Box::new(StandInCrypto::new(id)), u64::from(id.0[0]))
    }

    /// Two started nodes linked to each other over link 1.
    fn pair() -> (Node, Node) {
        let (mut a, mut b) = (node(NodeId([0x11; 16])), node(NodeId([0x99; 16])));
        a.start(Time::ZERO, Vec::new(), true);
        b.start(Time::ZERO, Vec::new(), true);
        let (ia, ib) = (a.node_id(), b.node_id());
        a.handle_link_up(Time::ZERO, LinkId(1), ib, true);
        b.handle_link_up(Time::ZERO, LinkId(1), ia, false);
        for n in [&mut a, &mut b] {
            while n.poll_transmit().is_some() || n.poll_event().is_some() || n.poll_action().is_some() {}
        }
        (a, b)
    }

    /// Carries `a`'s messages to `b` and back, and returns what `req` came to.
    fn outcome(a: &mut Node, b: &mut Node, req: RequestId) -> Option<Result<Answer, Failure>> {
        while let Some(tx) = a.poll_transmit() {
            b.handle_message(Time::ZERO, LinkId(1), &tx.bytes);
        }
        while let Some(tx) = b.poll_transmit() {
            a.handle_message(Time::ZERO, LinkId(1), &tx.bytes);
        }
        let mut out = None;
        while let Some(e) = a.poll_event() {
            if let Event::Response { request, result } = e
                && request == req
            {
                out = Some(result);
            }
        }
        out
    }

    fn candidate(port: u16) -> IceCandidate {
        IceCandidate {
            addr_port: IpAddressPort::from(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
            overlay_link: OverlayLinkType::TLS_TCP_FH_NO_ICE,
            foundation: b"1".to_vec(),
            priority: 1,
            candidate_type: CandidateType::Host,
            extensions: Vec::new(),
        }
    }

    fn error_code(r: Option<Result<Answer, Failure>>) -> Option<ErrorCode> {
        match r {
            Some(Err(Failure::Error { error, .. })) => Some(error.error_code),
            _ => None,
        }
    }

    /// a — b — c: three started nodes with candidates, a and c each linked to b
    /// (links 1 and 2), not to each other.
    fn chain() -> (Node, Node, Node) {
        let make = |id: u8, port: u16| {
            let mut cfg = NodeConfig::new(OverlayHash::from_overlay_name("appattach.example"), NodeId([id; 16]));
            cfg.candidates = vec![candidate(port)];
            let mut n = Node::new(cfg, Box::new(StandInCrypto::new(NodeId([id; 16]))), u64::from(id));
            n.start(Time::ZERO, Vec::new(), true);
            n
        };
        let (mut a, mut b, mut c) = (make(0x11, 7001), make(0x55, 7002), make(0x99, 7003));
        let (ia, ib, ic) = (a.node_id(), b.node_id(), c.node_id());
        a.handle_link_up(Time::ZERO, LinkId(1), ib, true);
        b.handle_link_up(Time::ZERO, LinkId(1), ia, false);
        c.handle_link_up(Time::ZERO, LinkId(2), ib, true);
        b.handle_link_up(Time::ZERO, LinkId(2), ic, false);
        for n in [&mut a, &mut b, &mut c] {
            while n.poll_transmit().is_some() || n.poll_event().is_some() || n.poll_action().is_some() {}
        }
        (a, b, c)
    }

    /// Carries messages along the chain until none is left.
    fn settle(a: &mut Node, b: &mut Node, c: &mut Node) {
        for _ in 0..10 {
            let mut moved = false;
            while let Some(tx) = a.poll_transmit() {
                b.handle_message(Time::ZERO, LinkId(1), &tx.bytes);
                moved = true;
            }
            while let Some(tx) = c.poll_transmit() {
                b.handle_message(Time::ZERO, LinkId(2), &tx.bytes);
                moved = true;
            }
            while let Some(tx) = b.poll_transmit() {
                match tx.link {
                    LinkId(1) => a.handle_message(Time::ZERO, LinkId(1), &tx.bytes),
                    _ => c.handle_message(Time::ZERO, LinkId(2), &tx.bytes),
                }
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    /// a sends an Attach for a finger to c, source-routed through b, and the
    /// messages are carried until none is left.
    fn attach_a_to_c(a: &mut Node, b: &mut Node, c: &mut Node) {
        let (ib, ic) = (b.node_id(), c.node_id());
        a.send_attach(
            Time::ZERO,
            Destination::node(ic),
            Some(ib),
            AttachPurpose::Finger,
            false,
        );
        settle(a, b, c);
    }

    fn connects(n: &mut Node) -> Vec<(Option<NodeId>, Vec<IceCandidate>)> {
        std::iter::from_fn(|| n.poll_action())
            .filter_map(|a| match a {
                Action::Connect { peer, candidates } => Some((peer, candidates)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_sender_of_an_attach_is_the_tls_server() {
        let (mut a, mut b, mut c) = chain();
        let (ia, ic) = (a.node_id(), c.node_id());
        attach_a_to_c(&mut a, &mut b, &mut c);
        // §6.5.1.13: the answerer is the TLS client: it connects to the requester's
        // candidates and expects the requester's Node-ID...
        assert_eq!(connects(&mut c), vec![(Some(ia), vec![candidate(7001)])]);
        // ...and the requester, the TLS server, opens nothing and waits.
        assert_eq!(connects(&mut a), vec![]);
        assert!(a.connecting.contains_key(&ic));
        // The connection arrives at a as an inbound link, and it counts as the link a
        // asked for (a may prune it later; c, which only answered, does not).
        a.handle_link_up(Time::ZERO, LinkId(3), ic, false);
        c.handle_link_up(Time::ZERO, LinkId(3), ia, true);
        assert!(a.links[&LinkId(3)].outbound);
        assert!(!c.links[&LinkId(3)].outbound);
        assert!(a.topology.contains(ic), "the finger a attached to is in its table");
        assert!(!a.connecting.contains_key(&ic));
    }

    #[test]
    fn an_answerers_connection_that_overtakes_its_answer_is_the_requesters_link() {
        let (mut a, mut b, mut c) = chain();
        let (ia, ic) = (a.node_id(), c.node_id());
        a.send_attach(
            Time::ZERO,
            Destination::node(ic),
            Some(b.node_id()),
            AttachPurpose::Finger,
            false,
        );
        // The request reaches c; c's answer is held back.
        while let Some(tx) = a.poll_transmit() {
            b.handle_message(Time::ZERO, LinkId(1), &tx.bytes);
        }
        while let Some(tx) = b.poll_transmit() {
            c.handle_message(Time::ZERO, LinkId(2), &tx.bytes);
        }
        assert_eq!(connects(&mut c), vec![(Some(ia), vec![candidate(7001)])]);
        a.handle_link_up(Time::ZERO, LinkId(3), ic, false);
        assert!(a.links[&LinkId(3)].outbound, "a asked for this link: a may prune it");
        // The answer then finds the link up and puts c in a's table.
        settle(&mut a, &mut b, &mut c);
        assert!(a.topology.contains(ic));
    }

    #[test]
    fn an_attach_whose_answerer_never_connects_fails_after_a_wait() {
        let (mut a, mut b, mut c) = chain();
        let ic = c.node_id();
        attach_a_to_c(&mut a, &mut b, &mut c);
        assert!(a.connecting.contains_key(&ic));
        a.handle_timeout(Time::ZERO + ATTACH_LINK_WAIT - Duration::from_millis(1));
        assert!(a.connecting.contains_key(&ic), "still waiting");
        a.handle_timeout(Time::ZERO + ATTACH_LINK_WAIT);
        assert!(!a.connecting.contains_key(&ic), "given up: a new Attach may try again");
        assert_eq!(a.stats.connect_failures, 1);
    }

    #[test]
    fn a_requester_without_candidates_connects_itself() {
        let (mut a, mut b, mut c) = chain();
        a.cfg.candidates.clear();
        let ic = c.node_id();
        attach_a_to_c(&mut a, &mut b, &mut c);
        // Nowhere to connect to: c cannot be the client, so a connects to c's candidates.
        assert_eq!(connects(&mut c), vec![]);
        assert_eq!(connects(&mut a), vec![(Some(ic), vec![candidate(7003)])]);
    }

    #[test]
    fn an_offered_application_is_answered_with_its_candidates() {
        let (mut a, mut b) = pair();
        b.offer_application(ApplicationId::SIPS, vec![candidate(5061)]);
        a.offer_application(ApplicationId::SIPS, vec![candidate(6061)]);
        let req = a.app_attach(Time::ZERO, b.node_id(), ApplicationId::SIPS);
        // The request carries the requester's own offer and the "active" role.
        let sent = a.transmits.front().map(|t| t.bytes.clone()).unwrap_or_default();
        let msg = Message::decode(&sent, &reload_wire::WireConfig::default()).expect("decodes");
        let MessageBody::AppAttachReq(r) = msg.contents.body else {
            panic!("an AppAttachReq")
        };
        assert_eq!(r.role, ACTIVE);
        assert_eq!(r.candidates, vec![candidate(6061)]);
        assert_eq!(r.ufrag.len(), 8);

        let answer = outcome(&mut a, &mut b, req).expect("answered").expect("not an error");
        assert_eq!(answer.responder, b.node_id());
        let MessageBody::AppAttachAns(ans) = answer.body else {
            panic!("an AppAttachAns, got {:?}", answer.body)
        };
        // §6.5.2.2: same layout as the request, for the same application.
        assert_eq!(ans.application, ApplicationId::SIPS);
        assert_eq!(ans.role, PASSIVE);
        assert_eq!(ans.candidates, vec![candidate(5061)]);
        assert_eq!((ans.ufrag.len(), ans.password.len()), (8, 22));
        assert_ne!(ans.ufrag, r.ufrag, "each side has its own ICE credentials");
    }

    #[test]
    fn an_application_not_offered_gets_error_not_found() {
        let (mut a, mut b) = pair();
        b.offer_application(ApplicationId::SIPS, vec![candidate(5061)]);
        // §6.5.2.2: "If the Application ID is not supported, the peer MUST reply
        // with an Error_Not_Found error."
        let req = a.app_attach(Time::ZERO, b.node_id(), ApplicationId::SIP);
        assert_eq!(error_code(outcome(&mut a, &mut b, req)), Some(ErrorCode::NOT_FOUND));

        b.withdraw_application(ApplicationId::SIPS);
        assert!(b.offered_application(ApplicationId::SIPS).is_none());
        let req = a.app_attach(Time::ZERO, b.node_id(), ApplicationId::SIPS);
        assert_eq!(error_code(outcome(&mut a, &mut b, req)), Some(ErrorCode::NOT_FOUND));
    }

    #[test]
    fn a_store_this_node_answers_itself_is_checked_against_the_real_signer() {
        // A peer responsible for its own user's Resource-ID stores to itself: the
        // request's signer must still carry the certificate's user name (§7.3.3).
        use crate::storage::{AccessPolicy, KindDef};
        use reload_trust::{KeyType, TestCa, Validity, unix_now};
        use reload_wire::{DataModel, DataValue, KindId, StoreKindData, StoreReq, StoredData, StoredDataValue};
        const OVERLAY: &str = "local.example.org";
        let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).expect("ca");
        let id = NodeId([0x42; 16]);
        let user = "alice@local.example.org";
        let creds = ca
            .issue(&[id], Some(user), KeyType::EcdsaP256, Validity::from_now(3600))
            .expect("credentials");
        let kind = KindId(0xF000_0010);
        let mut cfg = NodeConfig::new(OverlayHash::from_overlay_name(OVERLAY), id);
        cfg.kinds.add(KindDef {
            id: kind,
            name: "USER-NODE".into(),
            model: DataModel::Dictionary,
            policy: AccessPolicy::UserNodeMatch,
            max_count: 4,
            max_size: 100,
        });
        cfg.data_models = cfg.kinds.data_models();
        // The value is signed with the node's own key and certificate.
        let signer = crate::crypto::CertificateCrypto::new(
            reload_trust::Credentials::from_pkcs8_der(creds.private_key().pkcs8_der(), creds.chain().to_vec())
                .expect("credentials"),
            id,
            ca.trust_anchors().expect("anchors"),
        )
        .expect("crypto");
        let crypto =
            crate::crypto::CertificateCrypto::new(creds, id, ca.trust_anchors().expect("anchors")).expect("crypto");
        let mut n: Node = Node::new(cfg, Box::new(crypto), 1);
        let now = Time(u64::try_from(unix_now()).unwrap_or(0) * 1_000_000);
        n.start(now, Vec::new(), true);
        while n.poll_transmit().is_some() || n.poll_event().is_some() || n.poll_action().is_some() {}
        let resource = crate::ring::hash_resource_name(user.as_bytes());
        let value = StoredData {
            storage_time: 1,
            lifetime: 60,
            value: StoredDataValue::Dictionary {
                key: id.0.to_vec(),
                value: DataValue::new(b"v".to_vec()),
            },
            signature: reload_wire::Signature::synthesized(),
        };
        let value = crate::crypto::sign_stored_data(&signer, &resource, kind, value).expect("signs");
        let body = MessageBody::StoreReq(StoreReq {
            resource: resource.clone(),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind,
                generation_counter: 0,
                values: vec![value],
            }],
        });
        let req = n.request(now, Destination::resource(resource), body);
        let mut result = None;
        while let Some(e) = n.poll_event() {
            if let Event::Response { request, result: r } = e
                && request == req
            {
                result = Some(r);
            }
        }
        match result {
            Some(Ok(answer)) => assert!(matches!(answer.body, MessageBody::StoreAns(_)), "{answer:?}"),
            other => panic!("the store to itself was refused: {other:?}"),
        }
    }

    #[test]
    fn a_request_can_be_signed_by_other_credentials() {
        // A gateway signing as one of its users (RFC 7904 §3.3): the answerer sees
        // the other signer, and the answer still reaches the requester.
        let (mut a, mut b) = pair();
        b.offer_application(ApplicationId::SIP, vec![candidate(5060)]);
        let other = StandInCrypto::new(NodeId([0x22; 16]));
        let body = MessageBody::AppAttachReq(AppAttach {
            ufrag: b"u".to_vec(),
            password: b"p".to_vec(),
            application: ApplicationId::SIP,
            role: ACTIVE.to_vec(),
            candidates: Vec::new(),
        });
        let req = a.request_signed_by(Time::ZERO, Destination::node(b.node_id()), body, &other);
        let sent = a.transmits.front().map(|t| t.bytes.clone()).unwrap_or_default();
        let msg = Message::decode(&sent, &reload_wire::WireConfig::default()).expect("decodes");
        assert_eq!(msg.security.signature.identity, other.identity());
        let answer = outcome(&mut a, &mut b, req).expect("answered").expect("not an error");
        assert!(matches!(answer.body, MessageBody::AppAttachAns(_)));
    }
}
