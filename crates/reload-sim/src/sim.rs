//! The event loop: a priority queue of timed events over many nodes.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use reload_core::storage::{MemoryBackend, RestoreSummary, StorageBackend};
use reload_core::{Action, Answer, Event, Failure, LinkId, Node, NodeConfig, RequestId, StandInCrypto, Time, ring};
use reload_wire::{Destination, MessageBody, MessageCode, NodeId, OverlayHash, PingReq, RawMessage, Reader};

use crate::config::{SessionTimes, SimConfig};
use crate::network;
use crate::report::{Metrics, Report};

/// How long a connection attempt to a dead address takes to fail.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a graceful leaver lingers to send its Leaves before it is gone.
const LEAVE_LINGER: Duration = Duration::from_secs(1);
/// How long after the scripted crash every value is fetched: failure detection,
/// reactive recovery and re-replication (§10.7.3) have run by then.
const CHECK_AFTER_CRASH: Duration = Duration::from_secs(60);
/// How often live copies are counted between the scripted crash and the check.
const COPY_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Copies of a value the CHORD-RELOAD replica set keeps: the responsible peer and
/// its two successors (§10.4).
const REPLICA_SET: usize = 3;

#[derive(Debug)]
enum Ev {
    Deliver { to: usize, link: LinkId, bytes: Vec<u8> },
    Timer { node: usize },
    LinkUp { link: LinkId },
    ConnectFailed { node: usize, peer: Option<NodeId> },
    LinkDown { node: usize, link: LinkId },
    Start { node: usize },
    Restart { node: usize },
    Depart { node: usize },
    Gone { node: usize },
    Lookup,
    LookupFrom { node: usize, target: u128 },
    Leave { node: usize },
    Inject { to: usize, from: usize, bytes: Vec<u8> },
    StoreOwn { node: usize },
    StoreValue,
    CheckValues,
    FetchOwnOf { node: usize, owner: usize },
    Ticketed { node: usize, ticket: usize, req: Req },
    CopySample,
    Sample,
    ScriptedCrash,
    LinkFailure,
}

/// A ticketed request, made when its event comes up.
#[derive(Debug)]
enum Req {
    /// Any request, as built by the script.
    Raw {
        destination: Destination,
        body: MessageBody,
    },
    /// A Store whose value is signed when it is sent.
    Store(ScriptedStore),
}

struct Scheduled {
    at: Time,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct SimNode {
    node: Node,
    /// A bootstrap list and create-overlay flag fixed by a script.
    script: Option<(Vec<usize>, bool)>,
    alive: bool,
    client: bool,
    joined: bool,
    links: BTreeSet<LinkId>,
    timer: Option<Time>,
    /// What the peer has persisted (with [`SimConfig::persist`]).
    disk: Option<MemoryBackend>,
    /// Times the peer was restarted.
    restarts: u64,
}

struct SimLink {
    a: usize,
    b: usize,
    up: bool,
}

struct PendingLookup {
    started: Time,
    target: u128,
}

/// A simulation in progress.
pub struct Simulator {
    cfg: SimConfig,
    overlay: OverlayHash,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<SimNode>,
    links: HashMap<LinkId, SimLink>,
    next_link: u64,
    rng: ChaCha8Rng,
    /// Alive, joined peers by ring position: the truth the report compares against.
    ring: BTreeMap<u128, usize>,
    lookups: HashMap<(usize, RequestId), PendingLookup>,
    lookups_issued: usize,
    workload_start: Option<Time>,
    started_peers: usize,
    metrics: Metrics,
    by_id: HashMap<NodeId, usize>,
    scripted_lookups: HashMap<(usize, RequestId), u128>,
    scripted: Vec<(usize, u128, Option<usize>)>,
    lookup_txids: HashSet<reload_wire::TransactionId>,
    scripted_storage: HashMap<(usize, RequestId), bool>,
    storage_outcomes: Vec<StorageOutcome>,
    /// The value workload: stores in flight, stored Resource-IDs, fetches in flight.
    value_stores: HashMap<(usize, RequestId), reload_wire::ResourceId>,
    stored_values: Vec<reload_wire::ResourceId>,
    value_fetches: HashMap<(usize, RequestId), ()>,
    next_iteration: HashMap<usize, u8>,
    values_issued: usize,
    /// Scripted requests with a [`Ticket`]: what each came to, once answered.
    tickets: Vec<Option<Result<Answer, Failure>>>,
    ticket_requests: HashMap<(usize, RequestId), usize>,
    /// When the scripted crash happened and when the values are checked after it.
    crash_time: Option<Time>,
    check_time: Option<Time>,
    /// The stored values that kept at least one live copy through the crash.
    surviving: Vec<reload_wire::ResourceId>,
    /// What each restart loaded from the peer's persisted records.
    restores: Vec<(usize, RestoreSummary)>,
}

/// A handle on the outcome of a request made with [`Simulator::request_at`],
/// [`Simulator::store_at`] or [`Simulator::fetch_at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket(usize);

/// A Store (§7.4.1) of one value of one Kind that a scripted node makes as an
/// original store (replica number 0), the value signed by the storing node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptedStore {
    /// Where to store.
    pub resource: reload_wire::ResourceId,
    /// The Kind.
    pub kind: reload_wire::KindId,
    /// The value, in the Kind's data model.
    pub value: reload_wire::StoredDataValue,
    /// The generation counter the writer expects (§7.4.1.1); 0 stores regardless.
    pub generation_counter: u64,
    /// Seconds until the value expires (§7).
    pub lifetime: u32,
    /// The value's storage_time in milliseconds; `None` takes the simulated clock
    /// when the Store is sent (plus 1, so that it is never 0).
    pub storage_time: Option<u64>,
}

impl ScriptedStore {
    /// A Store of `value` at `resource` under `kind` that ignores the generation
    /// counter, lives a day, and is timed by the simulated clock.
    pub fn new(
        resource: reload_wire::ResourceId,
        kind: reload_wire::KindId,
        value: reload_wire::StoredDataValue,
    ) -> Self {
        ScriptedStore {
            resource,
            kind,
            value,
            generation_counter: 0,
            lifetime: 86_400,
            storage_time: None,
        }
    }
}

/// The outcome of a scripted Store or Fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOutcome {
    /// A Store was answered with StoreAns naming these many replicas.
    Stored {
        /// The node that stored.
        node: usize,
        /// Replicas the responsible peer named.
        replicas: usize,
    },
    /// A Fetch was answered with this many existing values.
    Fetched {
        /// The node that fetched.
        node: usize,
        /// Values that exist.
        values: usize,
    },
    /// The request failed (error or timeout).
    Failed {
        /// The node that asked.
        node: usize,
        /// What went wrong.
        why: String,
    },
}

impl Simulator {
    /// A simulator for `cfg`, with nothing run yet.
    pub fn new(cfg: SimConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        Simulator {
            overlay: OverlayHash::from_overlay_name("sim.p2psip.invalid"),
            now: Time::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::new(),
            links: HashMap::new(),
            next_link: 1,
            rng,
            ring: BTreeMap::new(),
            lookups: HashMap::new(),
            lookups_issued: 0,
            workload_start: None,
            started_peers: 0,
            metrics: Metrics::default(),
            by_id: HashMap::new(),
            scripted_lookups: HashMap::new(),
            scripted: Vec::new(),
            lookup_txids: HashSet::new(),
            scripted_storage: HashMap::new(),
            storage_outcomes: Vec::new(),
            value_stores: HashMap::new(),
            stored_values: Vec::new(),
            value_fetches: HashMap::new(),
            next_iteration: HashMap::new(),
            values_issued: 0,
            tickets: Vec::new(),
            ticket_requests: HashMap::new(),
            crash_time: None,
            check_time: None,
            surviving: Vec::new(),
            restores: Vec::new(),
            cfg,
        }
    }

    /// Runs to the end and returns the report. `progress` is called now and then
    /// with the fraction done.
    pub fn run(mut self, mut progress: impl FnMut(f64)) -> Report {
        let wall = Instant::now();
        // Build the ring by joins: the first peer starts the overlay, the rest join.
        let gap = Duration::from_secs_f64(1.0 / self.cfg.join_rate.max(1e-3));
        for i in 0..self.cfg.nodes {
            let idx = self.add_node(false);
            self.push(Time::ZERO + gap * i as u32, Ev::Start { node: idx });
        }
        for i in 0..self.cfg.clients {
            let idx = self.add_node(true);
            self.push(Time::ZERO + gap * (self.cfg.nodes + i) as u32, Ev::Start { node: idx });
        }
        let build_deadline = Time::ZERO + gap * (self.cfg.nodes + self.cfg.clients) as u32 + self.cfg.settle;
        self.push(Time::ZERO + self.cfg.sample_interval, Ev::Sample);
        let mut last_progress = 0.0;
        while let Some(Reverse(s)) = self.queue.pop() {
            self.now = s.at;
            if self.workload_start.is_none() && self.now >= build_deadline {
                self.start_workload();
            }
            self.dispatch(s.ev);
            let done = self.fraction_done(build_deadline);
            if done - last_progress >= 0.01 {
                last_progress = done;
                progress(done);
            }
            if self.finished() {
                break;
            }
        }
        progress(1.0);
        self.report(wall.elapsed())
    }

    // ----- scripted use, for tests and experiments -----

    /// Adds a peer (or client) that starts joining at `at`; returns its index.
    pub fn spawn(&mut self, at: Time, client: bool) -> usize {
        let idx = self.add_node(client);
        self.push(at, Ev::Start { node: idx });
        idx
    }

    /// Adds a peer with a fixed bootstrap list (node indices, tried in order) that
    /// starts at `at`; with `create` it starts an overlay of its own instead of joining.
    pub fn spawn_with(&mut self, at: Time, bootstrap: Vec<usize>, create: bool) -> usize {
        let idx = self.add_node(false);
        self.nodes[idx].script = Some((bootstrap, create));
        self.push(at, Ev::Start { node: idx });
        idx
    }

    /// Crashes node `idx` at `at`: no Leave, its links die silently.
    pub fn crash_at(&mut self, idx: usize, at: Time) {
        self.push(at, Ev::Gone { node: idx });
    }

    /// Starts crashed peer `idx` again at `at`, with the same Node-ID and, with
    /// [`SimConfig::persist`], the values it had persisted.
    pub fn restart_at(&mut self, idx: usize, at: Time) {
        self.push(at, Ev::Restart { node: idx });
    }

    /// What each restart loaded from its peer's persisted records, in order.
    pub fn restores(&self) -> &[(usize, RestoreSummary)] {
        &self.restores
    }

    /// Makes node `idx` leave gracefully at `at`.
    pub fn leave_at(&mut self, idx: usize, at: Time) {
        self.push(at, Ev::Leave { node: idx });
    }

    /// Sends a lookup (a Ping to Resource-ID `target`) from node `idx` at `at`.
    pub fn lookup_at(&mut self, idx: usize, target: u128, at: Time) {
        self.push(at, Ev::LookupFrom { node: idx, target });
    }

    /// Feeds raw bytes to node `idx` as if they arrived on its link to `from` at `at`.
    pub fn inject_at(&mut self, idx: usize, from: usize, bytes: Vec<u8>, at: Time) {
        self.push(at, Ev::Inject { to: idx, from, bytes });
    }

    /// Node `idx` stores a CERTIFICATE_BY_NODE value at the hash of its own Node-ID
    /// (NODE-MATCH, §8) at `at`, signed by the stand-in.
    pub fn store_own_at(&mut self, idx: usize, at: Time) {
        self.push(at, Ev::StoreOwn { node: idx });
    }

    /// Node `idx` fetches what `owner` stored with [`Simulator::store_own_at`].
    pub fn fetch_own_of_at(&mut self, idx: usize, owner: usize, at: Time) {
        self.push(at, Ev::FetchOwnOf { node: idx, owner });
    }

    /// Outcomes of scripted stores and fetches, in completion order.
    pub fn storage_outcomes(&self) -> &[StorageOutcome] {
        &self.storage_outcomes
    }

    /// Adds a peer with Node-ID `node_id` (which no other node may have) that starts
    /// joining at `at` through a few live peers; returns its index.
    pub fn spawn_with_id(&mut self, at: Time, node_id: NodeId) -> usize {
        let idx = self.add_node_with_id(false, node_id);
        self.push(at, Ev::Start { node: idx });
        idx
    }

    /// Node `idx` sends `body` to `destination` at `at` as an application request
    /// (signed by its stand-in, §6.3.4); [`Simulator::outcome`] tells what it came to.
    /// Nothing is sent if the node is not alive then.
    pub fn request_at(&mut self, idx: usize, at: Time, destination: Destination, body: MessageBody) -> Ticket {
        let ticket = self.new_ticket();
        let req = Req::Raw { destination, body };
        self.push(
            at,
            Ev::Ticketed {
                node: idx,
                ticket: ticket.0,
                req,
            },
        );
        ticket
    }

    /// Node `idx` makes `store` at `at`, routed to the Resource-ID; the value is
    /// signed by the node's stand-in (§7.1) when the Store is sent.
    pub fn store_at(&mut self, idx: usize, at: Time, store: ScriptedStore) -> Ticket {
        let ticket = self.new_ticket();
        self.push(
            at,
            Ev::Ticketed {
                node: idx,
                ticket: ticket.0,
                req: Req::Store(store),
            },
        );
        ticket
    }

    /// Node `idx` fetches (§7.4.2) `specifiers` at `resource` at `at`.
    pub fn fetch_at(
        &mut self,
        idx: usize,
        at: Time,
        resource: reload_wire::ResourceId,
        specifiers: Vec<reload_wire::StoredDataSpecifier>,
    ) -> Ticket {
        let body = MessageBody::FetchReq(reload_wire::FetchReq {
            resource: resource.clone(),
            specifiers,
        });
        self.request_at(idx, at, Destination::resource(resource), body)
    }

    /// What a ticketed request came to: `None` while unanswered (or if its node
    /// was not alive to send it).
    pub fn outcome(&self, ticket: Ticket) -> Option<&Result<Answer, Failure>> {
        self.tickets.get(ticket.0).and_then(Option::as_ref)
    }

    /// The Resource-ID H(Node-ID || i) that node `idx` may write under TURN-SERVICE
    /// (NODE-MULTIPLE, §7.3.4, §9).
    pub fn node_multiple_resource(&self, idx: usize, iteration: u8) -> reload_wire::ResourceId {
        let mut name = self.nodes[idx].node.node_id().0.to_vec();
        name.push(iteration);
        ring::hash_resource_name(&name)
    }

    /// `data` signed for `resource` and `kind` by node `idx`'s stand-in (§7.1), as
    /// that node would store it; `None` if it cannot be encoded.
    pub fn sign_value(
        &self,
        idx: usize,
        resource: &reload_wire::ResourceId,
        kind: reload_wire::KindId,
        data: reload_wire::StoredData,
    ) -> Option<reload_wire::StoredData> {
        let crypto = StandInCrypto::new(self.nodes[idx].node.node_id());
        reload_core::crypto::sign_stored_data(&crypto, resource, kind, data).ok()
    }

    /// The live ring peers that hold anything at `resource`, in ring order.
    pub fn holders(&self, resource: &reload_wire::ResourceId) -> Vec<usize> {
        self.ring
            .values()
            .copied()
            .filter(|idx| self.nodes[*idx].node.data_store().holds(resource))
            .collect()
    }

    /// Runs every event up to and including `until`.
    pub fn run_until(&mut self, until: Time) {
        while let Some(Reverse(s)) = self.queue.peek() {
            if s.at > until {
                break;
            }
            let Some(Reverse(s)) = self.queue.pop() else { break };
            self.now = s.at;
            self.dispatch(s.ev);
        }
        self.now = self.now.max(until);
    }

    /// The current simulated time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Node `idx`.
    pub fn node(&self, idx: usize) -> &Node {
        &self.nodes[idx].node
    }

    /// Whether node `idx` is alive.
    pub fn is_alive(&self, idx: usize) -> bool {
        self.nodes[idx].alive
    }

    /// Live joined peers, in ring order.
    pub fn ring_members(&self) -> Vec<usize> {
        self.ring.values().copied().collect()
    }

    /// Checks the ring against the truth: every live joined peer's successor and
    /// predecessor are right. Returns the peers that are wrong.
    pub fn ring_errors(&self) -> Vec<usize> {
        let members: Vec<usize> = self.ring_members();
        let n = members.len();
        let mut wrong = Vec::new();
        for (k, idx) in members.iter().enumerate() {
            let chord = self.nodes[*idx].node.topology();
            let ok = if n == 1 {
                chord.successor().is_none() && chord.predecessor().is_none()
            } else {
                let want_succ = self.nodes[members[(k + 1) % n]].node.node_id();
                let want_pred = self.nodes[members[(k + n - 1) % n]].node.node_id();
                chord.successor() == Some(want_succ) && chord.predecessor() == Some(want_pred)
            };
            if !ok {
                wrong.push(*idx);
            }
        }
        wrong
    }

    /// The live peer truly responsible for `target`.
    pub fn owner_of(&self, target: u128) -> Option<usize> {
        self.responsible_for(target)
    }

    /// Outcomes of lookups made with [`Simulator::lookup_at`], in completion order:
    /// (origin, target, responder index if answered).
    pub fn lookup_outcomes(&self) -> &[(usize, u128, Option<usize>)] {
        &self.scripted
    }

    fn fraction_done(&self, build_deadline: Time) -> f64 {
        let build = (self.now.as_micros() as f64 / build_deadline.as_micros().max(1) as f64).min(1.0);
        match self.workload_start {
            None => 0.3 * build,
            Some(t0) => {
                let by_lookups = if self.cfg.lookups > 0 {
                    self.lookups_issued as f64 / self.cfg.lookups as f64
                } else {
                    1.0
                };
                let by_time = if self.cfg.duration > Duration::ZERO {
                    self.now.since(t0).as_secs_f64() / self.cfg.duration.as_secs_f64()
                } else {
                    1.0
                };
                0.3 + 0.7 * by_lookups.min(by_time).min(1.0)
            }
        }
    }

    fn finished(&self) -> bool {
        let Some(t0) = self.workload_start else { return false };
        let lookups_done = self.lookups_issued >= self.cfg.lookups
            && self.lookups.is_empty()
            && (self.cfg.values == 0 || (self.metrics.values_stored > 0 && self.value_fetches.is_empty()));
        let time_done = self.now.since(t0) >= self.cfg.duration;
        lookups_done && time_done
    }

    fn push(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at, seq: self.seq, ev }));
    }

    fn random_node_id(&mut self) -> NodeId {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        NodeId(b)
    }

    fn add_node(&mut self, client: bool) -> usize {
        let id = self.random_node_id();
        self.add_node_with_id(client, id)
    }

    fn add_node_with_id(&mut self, client: bool, id: NodeId) -> usize {
        let idx = self.nodes.len();
        let node = self.new_node(idx, client, id, 0);
        self.by_id.insert(id, idx);
        self.nodes.push(SimNode {
            node,
            script: None,
            alive: false,
            client,
            joined: false,
            links: BTreeSet::new(),
            timer: None,
            disk: self.cfg.persist.then(MemoryBackend::new),
            restarts: 0,
        });
        idx
    }

    /// Node `idx` as it starts for the `incarnation`-th time.
    fn new_node(&self, idx: usize, client: bool, id: NodeId, incarnation: u64) -> Node {
        let mut cfg = NodeConfig::new(self.overlay, id);
        cfg.client = client;
        cfg.update_interval = self.cfg.update_interval;
        cfg.ping_interval = self.cfg.ping_interval;
        cfg.reliability_timer = self.cfg.reliability_timer;
        cfg.partition_check_interval = self.cfg.partition_check_interval;
        cfg.candidates = vec![network::candidate(idx)];
        cfg.persist_storage = self.cfg.persist;
        let seed = network::mix(self.cfg.seed, idx as u64, 0x5eed ^ incarnation);
        Node::new(cfg, Box::new(StandInCrypto::new(id)), seed)
    }

    /// A crashed peer comes back as a new process with the same Node-ID: it loads
    /// what it persisted and joins again.
    fn restart(&mut self, idx: usize) {
        if self.nodes[idx].alive {
            return;
        }
        let n = &self.nodes[idx];
        let incarnation = n.restarts + 1;
        let mut node = self.new_node(idx, n.client, n.node.node_id(), incarnation);
        if let Some(disk) = &n.disk {
            let records = disk.load().unwrap_or_else(|never| match never {});
            let summary = node.restore_storage(self.now, records);
            self.restores.push((idx, summary));
        }
        let n = &mut self.nodes[idx];
        n.node = node;
        n.restarts = incarnation;
        n.links.clear();
        n.timer = None;
        n.joined = false;
        self.start_node(idx);
    }

    fn start_workload(&mut self) {
        self.workload_start = Some(self.now);
        self.metrics.build_time = self.now;
        self.metrics.joined_at_build = self.ring.len();
        self.metrics.memory_per_node = crate::report::resident_bytes().map(|b| b / self.nodes.len().max(1) as u64);
        self.metrics.reset_traffic(self.now);
        if self.cfg.lookups > 0 {
            self.push(self.now, Ev::Lookup);
        }
        // Values are stored at 200 per second; a scripted crash waits for them.
        let storing = Duration::from_secs_f64(self.cfg.values as f64 / 200.0);
        if self.cfg.values > 0 {
            self.push(self.now, Ev::StoreValue);
        }
        if self.cfg.crash_fraction > 0.0 {
            let crash = self.now + storing + self.cfg.crash_at;
            self.push(crash, Ev::ScriptedCrash);
            if self.cfg.values > 0 {
                // Failure detection, reactive recovery, then every value is fetched.
                self.check_time = Some(crash + CHECK_AFTER_CRASH);
                self.push(crash + CHECK_AFTER_CRASH, Ev::CheckValues);
            }
        } else if self.cfg.values > 0 {
            self.push(self.now + storing + Duration::from_secs(30), Ev::CheckValues);
        }
        if self.cfg.link_failures_per_hour > 0.0 {
            self.schedule_link_failure();
        }
        if self.cfg.churn.is_some() {
            let peers: Vec<usize> = self.ring.values().copied().collect();
            for idx in peers {
                let life = self.session_length();
                self.push(self.now + life, Ev::Depart { node: idx });
            }
        }
    }

    /// Schedules the next link failure: exponential gaps at the network-wide rate.
    fn schedule_link_failure(&mut self) {
        let up = self.links.values().filter(|l| l.up).count().max(1) as f64;
        let rate_per_s = self.cfg.link_failures_per_hour * up / 3600.0;
        let u = ((self.rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let gap = Duration::from_secs_f64((-u.ln() / rate_per_s).clamp(1e-6, 1e9));
        self.push(self.now + gap, Ev::LinkFailure);
    }

    /// Breaks a random live link; both ends notice after failure detection.
    fn fail_random_link(&mut self) {
        let mut up: Vec<LinkId> = self.links.iter().filter(|(_, l)| l.up).map(|(id, _)| *id).collect();
        up.sort();
        if up.is_empty() {
            return;
        }
        let link = up[(self.rng.next_u64() as usize) % up.len()];
        let Some(l) = self.links.get_mut(&link) else { return };
        l.up = false;
        let (a, b) = (l.a, l.b);
        self.metrics.link_failures += 1;
        for node in [a, b] {
            self.push(self.now + self.cfg.failure_detection, Ev::LinkDown { node, link });
        }
    }

    fn session_length(&mut self) -> Duration {
        let Some(churn) = &self.cfg.churn else {
            return Duration::MAX;
        };
        let u = ((self.rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let secs = match churn.sessions {
            // Exponential: median m means rate ln2/m.
            SessionTimes::Exponential { median_s } => -u.ln() * median_s / std::f64::consts::LN_2,
            // Pareto with scale x_m so that the median is m: x_m = m / 2^(1/alpha).
            SessionTimes::Pareto { median_s, alpha } => {
                let xm = median_s / 2f64.powf(1.0 / alpha);
                xm / u.powf(1.0 / alpha)
            }
        };
        Duration::from_secs_f64(secs.clamp(0.001, 1e9))
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { to, link, bytes } => {
                if self.nodes[to].alive && self.links.get(&link).is_some_and(|l| l.up) {
                    self.nodes[to].node.handle_message(self.now, link, &bytes);
                    self.drain(to);
                }
            }
            Ev::Timer { node } => {
                let n = &mut self.nodes[node];
                n.timer = None;
                if n.alive {
                    n.node.handle_timeout(self.now);
                    self.drain(node);
                }
            }
            Ev::LinkUp { link } => self.link_up(link),
            Ev::ConnectFailed { node, peer } => {
                if self.nodes[node].alive {
                    self.nodes[node].node.handle_connect_failed(self.now, peer);
                    self.drain(node);
                }
            }
            Ev::LinkDown { node, link } => self.link_down(node, link),
            Ev::Start { node } => self.start_node(node),
            Ev::Restart { node } => self.restart(node),
            Ev::Depart { node } => self.depart(node),
            Ev::Gone { node } => self.crash(node),
            Ev::Lookup => self.lookup(),
            Ev::LookupFrom { node, target } => {
                if self.nodes[node].alive {
                    let request = self.nodes[node].node.request(
                        self.now,
                        Destination::resource(ring::resource_at(target)),
                        MessageBody::PingReq(PingReq {
                            padding: vec![0; self.cfg.ping_padding],
                        }),
                    );
                    self.scripted_lookups.insert((node, request), target);
                    self.drain(node);
                }
            }
            Ev::StoreOwn { node } => self.store_own(node),
            Ev::StoreValue => self.store_value(),
            Ev::CheckValues => self.check_values(),
            Ev::FetchOwnOf { node, owner } => {
                if self.nodes[node].alive {
                    let resource = ring::hash_resource_name(&self.nodes[owner].node.node_id().0);
                    let spec = reload_wire::StoredDataSpecifier {
                        kind: reload_wire::KindId::CERTIFICATE_BY_NODE,
                        generation: 0,
                        model_specifier: reload_wire::ModelSpecifier::Array(vec![reload_wire::ArrayRange {
                            first: 0,
                            last: 0xffff_ffff,
                        }]),
                    };
                    let body = MessageBody::FetchReq(reload_wire::FetchReq {
                        resource: resource.clone(),
                        specifiers: vec![spec],
                    });
                    let request = self.nodes[node]
                        .node
                        .request(self.now, Destination::resource(resource), body);
                    self.scripted_storage.insert((node, request), false);
                    self.drain(node);
                }
            }
            Ev::Ticketed { node, ticket, req } => {
                if self.nodes[node].alive {
                    let request = match req {
                        Req::Raw { destination, body } => {
                            Some(self.nodes[node].node.request(self.now, destination, body))
                        }
                        Req::Store(store) => self.send_signed_store(node, &store),
                    };
                    if let Some(request) = request {
                        self.ticket_requests.insert((node, request), ticket);
                    }
                    self.drain(node);
                }
            }
            Ev::CopySample => {
                self.copy_sample();
                let next = self.now + COPY_SAMPLE_INTERVAL;
                // The check takes the last sample itself.
                if self.check_time.is_some_and(|c| next < c) {
                    self.push(next, Ev::CopySample);
                }
            }
            Ev::Leave { node } => {
                if self.nodes[node].alive {
                    self.nodes[node].node.leave(self.now);
                    self.drain(node);
                    self.remove_from_ring(node);
                    self.push(self.now + LEAVE_LINGER, Ev::Gone { node });
                }
            }
            Ev::Inject { to, from, bytes } => {
                let link = self.nodes[to]
                    .links
                    .iter()
                    .copied()
                    .find(|l| self.links.get(l).is_some_and(|x| x.a == from || x.b == from));
                if let (Some(link), true) = (link, self.nodes[to].alive) {
                    self.nodes[to].node.handle_message(self.now, link, &bytes);
                    self.drain(to);
                }
            }
            Ev::Sample => {
                self.sample();
                self.push(self.now + self.cfg.sample_interval, Ev::Sample);
            }
            Ev::LinkFailure => {
                self.fail_random_link();
                self.schedule_link_failure();
            }
            Ev::ScriptedCrash => {
                let mut peers: Vec<usize> = self.ring.values().copied().collect();
                let k = ((peers.len() as f64) * self.cfg.crash_fraction).round() as usize;
                // Partial Fisher-Yates: the first k are a uniform sample.
                for i in 0..k.min(peers.len()) {
                    let j = i + (self.rng.next_u64() as usize) % (peers.len() - i);
                    peers.swap(i, j);
                }
                for idx in peers.into_iter().take(k) {
                    self.crash(idx);
                }
                if self.cfg.values > 0 && self.crash_time.is_none() {
                    self.watch_recovery();
                }
            }
        }
    }

    fn start_node(&mut self, idx: usize) {
        self.nodes[idx].alive = true;
        if let Some((list, create)) = self.nodes[idx].script.clone() {
            self.started_peers += usize::from(!self.nodes[idx].client);
            let bootstrap = list.into_iter().map(network::candidate).collect();
            self.nodes[idx].node.start(self.now, bootstrap, create);
            self.drain(idx);
            return;
        }
        // Like a configuration document's bootstrap list: a few peers, any of which will do.
        let mut bootstrap = Vec::new();
        for _ in 0..5 {
            if let Some(b) = self.random_ring_member() {
                let c = network::candidate(b);
                if !bootstrap.contains(&c) {
                    bootstrap.push(c);
                }
            }
        }
        if !self.nodes[idx].client {
            self.started_peers += 1;
        }
        let create = bootstrap.is_empty();
        self.nodes[idx].node.start(self.now, bootstrap, create);
        self.drain(idx);
    }

    /// One value of the workload: a random peer stores at H(its Node-ID || i) under
    /// TURN-SERVICE (NODE-MULTIPLE, up to 20 per peer, §9).
    fn store_value(&mut self) {
        if self.values_issued >= self.cfg.values {
            return;
        }
        self.push(self.now + Duration::from_millis(5), Ev::StoreValue);
        // A peer that has stored its 20 is passed over for another within the same
        // tick: the values go out at 200 per second as planned, all of them before
        // the scripted crash (which is timed for that rate).
        let mut pick = None;
        for _ in 0..64 {
            let Some(idx) = self.random_ring_member() else { return };
            if self.next_iteration.get(&idx).is_none_or(|i| *i < 20) {
                pick = Some(idx);
                break;
            }
        }
        let Some(idx) = pick else { return };
        let i = self.next_iteration.entry(idx).or_insert(0);
        *i += 1;
        let iteration = *i;
        self.values_issued += 1;
        let resource = self.node_multiple_resource(idx, iteration);
        let value = reload_wire::StoredDataValue::Single {
            value: reload_wire::DataValue::new(vec![iteration; 8]),
        };
        let store = ScriptedStore::new(resource.clone(), reload_wire::KindId::TURN_SERVICE, value);
        if let Some(request) = self.send_signed_store(idx, &store) {
            self.value_stores.insert((idx, request), resource);
        }
        self.drain(idx);
    }

    /// Live copies of each of `values`, in order. One pass over what every live
    /// ring peer holds (peers × resources held), not a look-up per value and peer.
    fn live_copies(&self, values: &[reload_wire::ResourceId]) -> Vec<usize> {
        let mut counts: HashMap<&reload_wire::ResourceId, usize> = values.iter().map(|r| (r, 0)).collect();
        for idx in self.ring.values() {
            for r in self.nodes[*idx].node.data_store().resources() {
                if let Some(c) = counts.get_mut(r) {
                    *c += 1;
                }
            }
        }
        values.iter().map(|r| counts.get(r).copied().unwrap_or(0)).collect()
    }

    /// Copies a value should have: the replica set (§10.4), or one per live peer
    /// when fewer peers are left.
    fn copy_target(&self) -> usize {
        self.ring.len().min(REPLICA_SET)
    }

    /// Right after the scripted crash: remembers which stored values kept a live
    /// copy, and counts their copies now and once a second until the check.
    fn watch_recovery(&mut self) {
        self.crash_time = Some(self.now);
        let copies = self.live_copies(&self.stored_values);
        self.surviving = self
            .stored_values
            .iter()
            .zip(copies)
            .filter(|(_, c)| *c > 0)
            .map(|(r, _)| r.clone())
            .collect();
        self.metrics.values_surviving = self.surviving.len() as u64;
        self.metrics.values_stored_before_crash = Some(self.stored_values.len() as u64);
        self.copy_sample();
        let next = self.now + COPY_SAMPLE_INTERVAL;
        if self.check_time.is_some_and(|c| next < c) {
            self.push(next, Ev::CopySample);
        }
    }

    /// Counts the live copies of the values that survived the crash.
    fn copy_sample(&mut self) {
        let Some(t0) = self.crash_time else { return };
        let target = self.copy_target();
        let copies = self.live_copies(&self.surviving);
        let at_target = copies.iter().filter(|c| **c >= target).count() as u64;
        let without = copies.iter().filter(|c| **c == 0).count() as u64;
        self.metrics
            .copy_sample(self.now.since(t0), at_target, without, self.surviving.len() as u64);
    }

    /// After the crash: which values still have a live copy, and fetch every one.
    fn check_values(&mut self) {
        let live: Vec<usize> = self.ring.values().copied().collect();
        let values = self.stored_values.clone();
        let copies = self.live_copies(&values);
        let with_copy = copies.iter().filter(|c| **c > 0).count();
        self.metrics.values_stored = values.len() as u64;
        self.metrics.values_with_live_copy = with_copy as u64;
        self.metrics.live_copies = copies.iter().sum::<usize>() as u64;
        if self.crash_time.is_some() {
            // The last sample of the recovery: its state at the check.
            self.copy_sample();
        } else {
            // No crash: every value with a live copy should be at the replica set.
            let target = self.copy_target();
            self.metrics.values_surviving = with_copy as u64;
            self.metrics.at_target_at_check = Some(copies.iter().filter(|c| **c >= target).count() as u64);
        }
        for (k, resource) in values.into_iter().enumerate() {
            let Some(&asker) = live.get(k % live.len().max(1)) else {
                return;
            };
            let spec = reload_wire::StoredDataSpecifier {
                kind: reload_wire::KindId::TURN_SERVICE,
                generation: 0,
                model_specifier: reload_wire::ModelSpecifier::Single,
            };
            let body = MessageBody::FetchReq(reload_wire::FetchReq {
                resource: resource.clone(),
                specifiers: vec![spec],
            });
            let request = self.nodes[asker]
                .node
                .request(self.now, Destination::resource(resource), body);
            self.value_fetches.insert((asker, request), ());
            self.drain(asker);
        }
    }

    /// Node `idx` makes `store`, the value signed by its stand-in (§7.1), as an
    /// original store; returns the request to watch.
    fn send_signed_store(&mut self, idx: usize, store: &ScriptedStore) -> Option<RequestId> {
        let data = reload_wire::StoredData {
            storage_time: store.storage_time.unwrap_or(self.now.as_micros() / 1000 + 1),
            lifetime: store.lifetime,
            value: store.value.clone(),
            signature: reload_wire::Signature::synthesized(),
        };
        let data = self.sign_value(idx, &store.resource, store.kind, data)?;
        let body = MessageBody::StoreReq(reload_wire::StoreReq {
            resource: store.resource.clone(),
            replica_number: 0,
            kind_data: vec![reload_wire::StoreKindData {
                kind: store.kind,
                generation_counter: store.generation_counter,
                values: vec![data],
            }],
        });
        let request = self.nodes[idx]
            .node
            .request(self.now, Destination::resource(store.resource.clone()), body);
        // The caller registers the request before draining: its answer may come at once.
        Some(request)
    }

    fn store_own(&mut self, idx: usize) {
        if !self.nodes[idx].alive {
            return;
        }
        let id = self.nodes[idx].node.node_id();
        let value = reload_wire::StoredDataValue::Array {
            index: reload_wire::storage::ARRAY_APPEND,
            value: reload_wire::DataValue::new(id.0.to_vec()),
        };
        let store = ScriptedStore::new(
            ring::hash_resource_name(&id.0),
            reload_wire::KindId::CERTIFICATE_BY_NODE,
            value,
        );
        if let Some(request) = self.send_signed_store(idx, &store) {
            self.scripted_storage.insert((idx, request), true);
        }
        self.drain(idx);
    }

    fn new_ticket(&mut self) -> Ticket {
        self.tickets.push(None);
        Ticket(self.tickets.len() - 1)
    }

    fn random_ring_member(&mut self) -> Option<usize> {
        if self.ring.is_empty() {
            return None;
        }
        let point = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
        self.ring
            .range(point..)
            .next()
            .or_else(|| self.ring.iter().next())
            .map(|(_, i)| *i)
    }

    fn depart(&mut self, idx: usize) {
        if !self.nodes[idx].alive {
            return;
        }
        let graceful = self
            .cfg
            .churn
            .as_ref()
            .is_some_and(|c| ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < c.graceful_fraction);
        if graceful {
            self.metrics.leaves += 1;
            self.nodes[idx].node.leave(self.now);
            self.drain(idx);
            self.remove_from_ring(idx);
            self.push(self.now + LEAVE_LINGER, Ev::Gone { node: idx });
        } else {
            self.crash(idx);
        }
        // A newcomer keeps the population steady.
        let fresh = self.add_node(false);
        self.push(self.now, Ev::Start { node: fresh });
        let life = self.session_length();
        self.push(self.now + life, Ev::Depart { node: fresh });
    }

    fn remove_from_ring(&mut self, idx: usize) {
        let p = ring::point(self.nodes[idx].node.node_id());
        if self.ring.get(&p) == Some(&idx) {
            self.ring.remove(&p);
        }
    }

    fn crash(&mut self, idx: usize) {
        if !self.nodes[idx].alive {
            return;
        }
        self.metrics.crashes += 1;
        self.nodes[idx].alive = false;
        self.remove_from_ring(idx);
        // The far ends notice after the link layer's failure detection time.
        let links: Vec<LinkId> = self.nodes[idx].links.iter().copied().collect();
        for link in links {
            if let Some(l) = self.links.get(&link) {
                let other = if l.a == idx { l.b } else { l.a };
                self.push(
                    self.now + self.cfg.failure_detection,
                    Ev::LinkDown { node: other, link },
                );
            }
        }
        // Lookups this node started can no longer be answered to anyone.
        let abandoned: Vec<(usize, RequestId)> = self.lookups.keys().filter(|(n, _)| *n == idx).copied().collect();
        for k in abandoned {
            self.lookups.remove(&k);
            self.metrics.lookups_abandoned += 1;
        }
    }

    fn link_up(&mut self, link: LinkId) {
        let Some(l) = self.links.get_mut(&link) else { return };
        let (a, b) = (l.a, l.b);
        if !self.nodes[a].alive {
            self.links.remove(&link);
            return;
        }
        if !self.nodes[b].alive {
            self.links.remove(&link);
            let peer = Some(self.nodes[b].node.node_id());
            self.push(self.now + CONNECT_TIMEOUT, Ev::ConnectFailed { node: a, peer });
            return;
        }
        l.up = true;
        if let Some(mtu) = self.cfg.mtu {
            self.nodes[a].node.set_link_mtu(link, mtu);
            self.nodes[b].node.set_link_mtu(link, mtu);
        }
        self.nodes[a].links.insert(link);
        self.nodes[b].links.insert(link);
        let (ida, idb) = (self.nodes[a].node.node_id(), self.nodes[b].node.node_id());
        self.nodes[a].node.handle_link_up(self.now, link, idb, true);
        self.nodes[b].node.handle_link_up(self.now, link, ida, false);
        self.drain(a);
        self.drain(b);
    }

    fn link_down(&mut self, node: usize, link: LinkId) {
        let Some(l) = self.links.get(&link) else { return };
        let other = if l.a == node { l.b } else { l.a };
        self.nodes[node].links.remove(&link);
        if !self.nodes[other].links.contains(&link) || !self.nodes[other].alive {
            self.links.remove(&link);
        }
        if self.nodes[node].alive {
            self.nodes[node].node.handle_link_down(self.now, link);
            self.drain(node);
        }
    }

    /// Carries out everything a node asked for after an input.
    fn drain(&mut self, idx: usize) {
        // What a real runtime does: changes are durable before anything is sent.
        let n = &mut self.nodes[idx];
        if let Some(disk) = n.disk.as_mut() {
            let changes = n.node.take_storage_changes();
            if !changes.is_empty() {
                disk.apply(&changes).unwrap_or_else(|never| match never {});
            }
        }
        while let Some(t) = self.nodes[idx].node.poll_transmit() {
            self.send(idx, t.link, t.bytes);
        }
        while let Some(a) = self.nodes[idx].node.poll_action() {
            match a {
                Action::Connect { peer, candidates } => self.connect(idx, peer, &candidates),
                Action::Close { link } => {
                    if let Some(l) = self.links.get_mut(&link) {
                        l.up = false;
                        let other = if l.a == idx { l.b } else { l.a };
                        self.nodes[idx].links.remove(&link);
                        // The far end sees the close one latency later.
                        let delay = network::latency(&self.cfg.latency, self.cfg.seed, idx, other);
                        self.push(self.now + delay, Ev::LinkDown { node: other, link });
                    }
                }
            }
        }
        while let Some(e) = self.nodes[idx].node.poll_event() {
            self.event(idx, e);
        }
        if let Some(t) = self.nodes[idx].node.poll_timeout() {
            let n = &mut self.nodes[idx];
            if n.timer.is_none_or(|s| t < s) {
                n.timer = Some(t);
                let at = t.max(self.now);
                self.push(at, Ev::Timer { node: idx });
            }
        }
    }

    fn send(&mut self, from: usize, link: LinkId, bytes: Vec<u8>) {
        let Some(l) = self.links.get(&link) else {
            self.metrics.sent_on_closed_link += 1;
            return;
        };
        let (to, up) = (if l.a == from { l.b } else { l.a }, l.up);
        let lookup = self.is_lookup_traffic(&bytes);
        self.metrics.count_traffic(lookup, bytes.len());
        if !up || !self.nodes[to].alive {
            self.metrics.lost_to_dead += 1;
            return;
        }
        if self.cfg.loss > 0.0 && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < self.cfg.loss {
            self.metrics.lost += 1;
            return;
        }
        let mut delay = network::latency(&self.cfg.latency, self.cfg.seed, from, to);
        if self.cfg.jitter_ms > 0.0 {
            let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            delay += Duration::from_micros((u * self.cfg.jitter_ms * 1000.0) as u64);
        }
        self.push(self.now + delay, Ev::Deliver { to, link, bytes });
    }

    /// Lookups are Pings to a Resource-ID; their answers share the transaction id.
    /// Pings to a Node-ID are the nodes' own liveness checks: maintenance.
    fn is_lookup_traffic(&mut self, bytes: &[u8]) -> bool {
        let Ok(raw) = RawMessage::split(bytes, usize::MAX) else {
            return false;
        };
        let txid = raw.header.transaction_id;
        match Reader::new(raw.payload).u16("code").map(MessageCode) {
            Ok(MessageCode::PING_REQ) => {
                let lookup = matches!(raw.header.destination_list.last(), Some(Destination::Resource { .. }));
                if lookup {
                    self.lookup_txids.insert(txid);
                }
                lookup
            }
            Ok(MessageCode::PING_ANS) => self.lookup_txids.contains(&txid),
            _ => false,
        }
    }

    fn connect(&mut self, from: usize, peer: Option<NodeId>, candidates: &[reload_wire::IceCandidate]) {
        // The runtime tries the candidates in turn and takes the first that answers.
        let mut ok = candidates
            .iter()
            .filter_map(|c| network::index_of(&c.addr_port))
            .find(|t| {
                *t < self.nodes.len()
                    && self.nodes[*t].alive
                    && *t != from
                    && peer.is_none_or(|p| p == self.nodes[*t].node.node_id())
            });
        if ok.is_none() && peer.is_none() {
            // Every bootstrap peer the node knew is gone: a real node fetches the
            // configuration document again (§11.2) and gets today's bootstrap peers.
            ok = self.random_ring_member().filter(|t| *t != from);
        }
        match ok {
            Some(to) => {
                let link = LinkId(self.next_link);
                self.next_link += 1;
                self.links.insert(
                    link,
                    SimLink {
                        a: from,
                        b: to,
                        up: false,
                    },
                );
                // TCP handshake and TLS: about one and a half round trips.
                let rtt = network::latency(&self.cfg.latency, self.cfg.seed, from, to) * 2;
                self.push(self.now + rtt + rtt / 2, Ev::LinkUp { link });
            }
            None => self.push(self.now + CONNECT_TIMEOUT, Ev::ConnectFailed { node: from, peer }),
        }
    }

    fn event(&mut self, idx: usize, e: Event) {
        match e {
            Event::Joined => {
                let n = &mut self.nodes[idx];
                n.joined = true;
                if !n.client {
                    self.ring.insert(ring::point(n.node.node_id()), idx);
                    self.metrics.joins += 1;
                }
            }
            Event::Rejoining => {
                self.nodes[idx].joined = false;
                self.remove_from_ring(idx);
                self.metrics.rejoins += 1;
            }
            Event::Response { request, result } => {
                if let Some(ticket) = self.ticket_requests.remove(&(idx, request)) {
                    if let Some(slot) = self.tickets.get_mut(ticket) {
                        *slot = Some(result);
                    }
                    return;
                }
                if let Some(resource) = self.value_stores.remove(&(idx, request)) {
                    if matches!(
                        result,
                        Ok(Answer {
                            body: MessageBody::StoreAns(_),
                            ..
                        })
                    ) {
                        self.stored_values.push(resource);
                    }
                    return;
                }
                if self.value_fetches.remove(&(idx, request)).is_some() {
                    let found = matches!(&result, Ok(Answer { body: MessageBody::FetchAns(a), .. })
                        if a.kind_responses.iter().flat_map(|k| &k.values).any(|v| v.value.data_value().exists));
                    self.metrics.values_fetchable += u64::from(found);
                    return;
                }
                if let Some(is_store) = self.scripted_storage.remove(&(idx, request)) {
                    let outcome = match result {
                        Ok(Answer {
                            body: MessageBody::StoreAns(a),
                            ..
                        }) if is_store => StorageOutcome::Stored {
                            node: idx,
                            replicas: a.kind_responses.first().map_or(0, |k| k.replicas.len()),
                        },
                        Ok(Answer {
                            body: MessageBody::FetchAns(a),
                            ..
                        }) => StorageOutcome::Fetched {
                            node: idx,
                            values: a
                                .kind_responses
                                .iter()
                                .flat_map(|k| &k.values)
                                .filter(|v| v.value.data_value().exists)
                                .count(),
                        },
                        other => StorageOutcome::Failed {
                            node: idx,
                            why: format!("{other:?}"),
                        },
                    };
                    self.storage_outcomes.push(outcome);
                    return;
                }
                if let Some(target) = self.scripted_lookups.remove(&(idx, request)) {
                    let responder = result.ok().and_then(|a| self.by_id.get(&a.responder).copied());
                    self.scripted.push((idx, target, responder));
                    return;
                }
                let Some(l) = self.lookups.remove(&(idx, request)) else {
                    return;
                };
                let latency = self.now.since(l.started);
                match result {
                    Ok(answer) => {
                        let truth = self.responsible_for(l.target);
                        let correct = truth.is_some_and(|t| self.nodes[t].node.node_id() == answer.responder);
                        self.metrics.lookup_ok(self.now, answer.hops, latency, correct);
                    }
                    Err(Failure::Timeout) | Err(Failure::NoRoute) => self.metrics.lookup_failed(self.now, false),
                    Err(Failure::Error { .. }) => self.metrics.lookup_failed(self.now, true),
                }
            }
            Event::NeighborsChanged(_) | Event::ResponsibleRangeChanged { .. } | Event::Left => {}
        }
    }

    fn responsible_for(&self, target: u128) -> Option<usize> {
        self.ring
            .range(target..)
            .next()
            .or_else(|| self.ring.iter().next())
            .map(|(_, i)| *i)
    }

    fn lookup(&mut self) {
        if self.lookups_issued >= self.cfg.lookups {
            return;
        }
        self.lookups_issued += 1;
        let gap = Duration::from_secs_f64(1.0 / self.cfg.lookup_rate.max(1e-3));
        self.push(self.now + gap, Ev::Lookup);
        let Some(origin) = self.random_ring_member() else {
            return;
        };
        let target = (u128::from(self.rng.next_u64()) << 64) | u128::from(self.rng.next_u64());
        let request = self.nodes[origin].node.request(
            self.now,
            Destination::resource(ring::resource_at(target)),
            MessageBody::PingReq(PingReq {
                padding: vec![0; self.cfg.ping_padding],
            }),
        );
        self.lookups.insert(
            (origin, request),
            PendingLookup {
                started: self.now,
                target,
            },
        );
        self.drain(origin);
    }

    fn sample(&mut self) {
        let members: Vec<(u128, usize)> = self.ring.iter().map(|(p, i)| (*p, *i)).collect();
        if members.is_empty() {
            return;
        }
        let n = members.len();
        let mut right = 0usize;
        for (k, (_, idx)) in members.iter().enumerate() {
            let want_succ = self.nodes[members[(k + 1) % n].1].node.node_id();
            let want_pred = self.nodes[members[(k + n - 1) % n].1].node.node_id();
            let chord = self.nodes[*idx].node.topology();
            let (succ, pred) = (chord.successor(), chord.predecessor());
            let ok = if n == 1 {
                succ.is_none() && pred.is_none()
            } else {
                succ == Some(want_succ) && pred == Some(want_pred)
            };
            right += usize::from(ok);
        }
        self.metrics.ring_sample(self.now, right as f64 / n as f64, n);
    }

    fn report(mut self, wall: Duration) -> Report {
        self.sample();
        let mut totals = reload_core::Stats::default();
        for n in &self.nodes {
            crate::report::add_stats(&mut totals, n.node.stats());
        }
        let end = self.now;
        Report::new(&self.cfg, self.metrics, totals, end, wall, self.nodes.len())
    }
}
