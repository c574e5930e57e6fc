//! The SIP front end as a sans-IO state machine: a registrar for the node's
//! phones and a transaction-stateful proxy (RFC 3261 §16) between them and the
//! other nodes of the overlay (RFC 7904 §4–§6).
//!
//! The runtime hands it what arrived ([`Proxy::handle_message`]), the outcome
//! of what it asked for ([`Proxy::lookup_done`], [`Proxy::store_done`],
//! [`Proxy::send_failed`]) and the time ([`Proxy::handle_timeout`]), and polls
//! [`Proxy::poll_output`] and [`Proxy::poll_timeout`]. It never touches a
//! socket or the overlay itself, so every path runs in unit tests.
//!
//! Dialogs stay on the overlay path: the node record-routes twice when a
//! request crosses from a phone to the overlay or back (RFC 3261 §16.6 step 4,
//! the "double Record-Route" of a proxy between two networks), once with its
//! front-end address for its own phones and once with its Node-ID for the other
//! node. In-dialog requests then come back through both nodes, over the TLS
//! connection that both nodes' overlay certificates authenticate (RFC 7904 §5.1).

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reload_core::storage::DomainRestriction;
use reload_wire::NodeId;

use crate::digest::DigestServer;
use crate::locate::{self, Destination, LocateError, SipTarget};
use crate::message::{self, Message, Method, Request, Response, SipUri};
use crate::registrar::{Bindings, ContactUpdate, DEFAULT_EXPIRES, OverlayAction, RegisterFrom};

/// RFC 3261 §17.1.1.1 T1.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 §17.1.2.2 T2.
const T2: Duration = Duration::from_secs(4);
/// Timer B, F, H and J: 64·T1 (§17).
const TIMER_64T1: Duration = Duration::from_secs(32);
/// Timer C (§16.6 step 11): how long an INVITE may ring.
const TIMER_C: Duration = Duration::from_secs(180);
/// Retry-After for a 503 while the node is not in the overlay yet.
const RETRY_AFTER_SECS: u32 = 5;
/// The magic cookie of RFC 3261 branches (§8.1.1.7).
const COOKIE: &str = "z9hG4bK";

/// The transports the front end opens towards a conventional SIP server, for
/// RFC 3263 §4.1 ("transport protocols supported by the client"). TLS is
/// only used on a connection a phone opened (RFC 5626 §5): the front end has
/// no client configuration to check another domain's certificate (RFC 5922).
pub const OUTBOUND_TRANSPORTS: &[Transport] = &[Transport::Udp, Transport::Tcp];

/// A plain SIP transport to a phone or a conventional SIP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: requests are retransmitted (§17.1.1.2).
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP, with the front end's own server certificate (the phone
    /// does not present one).
    Tls,
}

impl Transport {
    fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// The other end of a hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A phone of this node, or a conventional SIP server, over plain SIP.
    Sip {
        /// UDP or TCP.
        transport: Transport,
        /// Its address.
        addr: SocketAddr,
    },
    /// Another node, over the TLS connection an AppAttach opened (RFC 7904 §5).
    Node(NodeId),
}

impl Peer {
    fn reliable(&self) -> bool {
        !matches!(
            self,
            Peer::Sip {
                transport: Transport::Udp,
                ..
            }
        )
    }
}

/// Why an AOR could not be resolved in the overlay (RFC 7904 §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// Nothing is registered for the AOR.
    NotFound,
    /// The node is not in the overlay (yet).
    NotReady,
    /// The overlay request failed; the text says why.
    Failed(String),
}

/// One way to reach a looked-up AOR: the node to connect to and the AOR whose
/// registration named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRoute {
    /// The AOR the registration was stored under (differs from the one asked
    /// for after an AOR indirection).
    pub aor: String,
    /// The last entry of its destination list: the node to AppAttach to.
    pub node: NodeId,
}

/// What a lookup found (RFC 7904 §4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Nodes to connect to.
    pub routes: Vec<ResolvedRoute>,
    /// AORs of domains the overlay does not serve, for conventional SIP.
    pub external: Vec<String>,
}

/// What the proxy wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a message.
    Send {
        /// To whom.
        to: Peer,
        /// The message.
        bytes: Vec<u8>,
    },
    /// Resolve an AOR in the overlay (RFC 7904 §4.2), then call [`Proxy::lookup_done`].
    Lookup {
        /// Echo in the answer.
        id: u64,
        /// The AOR.
        aor: String,
    },
    /// Store this node's SIP-REGISTRATION value for the AOR (RFC 7904 §3), then
    /// call [`Proxy::store_done`].
    Store {
        /// Echo in the answer.
        id: u64,
        /// The AOR.
        aor: String,
        /// Seconds.
        lifetime: u32,
    },
    /// Find the SIP servers of another domain (RFC 3263 §4: NAPTR, SRV, then
    /// A and AAAA records, as [`locate::Locator`] asks for them over
    /// [`OUTBOUND_TRANSPORTS`]), then call [`Proxy::located`] with them in
    /// the order to try.
    Locate {
        /// Echo in the answer.
        id: u64,
        /// What the Request-URI or Route says about the next hop.
        target: SipTarget,
    },
    /// Remove it, then call [`Proxy::store_done`].
    Remove {
        /// Echo in the answer.
        id: u64,
        /// The AOR.
        aor: String,
    },
}

/// The front end's settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// This node.
    pub node_id: NodeId,
    /// The domains whose AORs the overlay serves (RFC 7904 §3.4).
    pub domains: DomainRestriction,
    /// The front end's UDP address, for Via and Record-Route.
    pub udp: SocketAddr,
    /// The front end's TCP address.
    pub tcp: SocketAddr,
    /// The front end's TLS address for phones, if it has one.
    pub tls: Option<SocketAddr>,
    /// Where other nodes reach this node's SIP over TLS (the AppAttach answer).
    pub overlay_sip: SocketAddr,
    /// Phone accounts: AOR → password. The node holds overlay credentials for
    /// each of these AORs; a phone may register and call only as one of them.
    pub accounts: HashMap<String, String>,
    /// Conventional SIP servers trusted to send requests for overlay users
    /// (gateway mode): no digest challenge, routed like a phone's.
    pub trusted: Vec<std::net::IpAddr>,
    /// The digest realm.
    pub realm: String,
    /// Conventional SIP: where requests for other domains go.
    pub outbound_proxy: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServerKey {
    branch: String,
    method: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    branch: String,
    method: String,
}

#[derive(Debug)]
struct ServerTxn {
    request: Request,
    source: Peer,
    /// What the node last sent upstream, resent when the request is retransmitted.
    last_response: Option<Vec<u8>>,
    final_code: Option<u16>,
    /// Client branches (INVITE or other method) forked from this request.
    branches: Vec<ClientKey>,
    best: Option<Response>,
    to_tag: String,
    /// Forget it then.
    expires: Instant,
    /// Timer G (§17.2.1): retransmit a non-2xx final over UDP until the ACK.
    retransmit: Option<(Instant, Duration)>,
    /// Waiting for a lookup.
    looking_up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
}

#[derive(Debug)]
struct ClientTxn {
    server: Option<ServerKey>,
    to: Peer,
    request: Request,
    bytes: Vec<u8>,
    state: ClientState,
    /// Timer A/E.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B/F, then Timer C once ringing, then cleanup once completed.
    deadline: Instant,
    /// The ACK sent for a non-2xx final, resent when the final is retransmitted.
    ack: Option<Vec<u8>>,
    /// A CANCEL is owed once the branch answers provisionally (§9.1).
    cancel_pending: bool,
    /// The branch was cancelled: it must not fail over (RFC 3263 §4.3).
    cancelled: bool,
    /// The servers RFC 3263 found after this one, in order: the next is
    /// tried if this one fails (§4.3).
    alternates: VecDeque<Peer>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Server(String, String),
    Client(String, String),
    Registrations,
}

#[derive(Debug)]
enum Waiting {
    Lookup(ServerKey),
    /// RFC 3263 for a transaction's next hop.
    Locate(ServerKey),
    /// RFC 3263 for the next hop of the ACK of a 2xx (its own transaction,
    /// RFC 3263 §4), sent to the first server found.
    LocateAck(Request),
    Register {
        server: ServerKey,
        aor: String,
        ok: Response,
        lifetime: Option<u32>,
    },
    Expired {
        aor: String,
    },
}

/// Counters for status and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Requests received.
    pub requests: u64,
    /// Responses received.
    pub responses: u64,
    /// Messages that did not parse.
    pub malformed: u64,
    /// REGISTERs answered 200.
    pub registered: u64,
    /// Overlay stores asked for.
    pub stores: u64,
}

/// The SIP front end of one node.
pub struct Proxy {
    cfg: ProxyConfig,
    digest: DigestServer,
    bindings: Bindings,
    servers: HashMap<ServerKey, ServerTxn>,
    clients: HashMap<ClientKey, ClientTxn>,
    timers: BinaryHeap<std::cmp::Reverse<(Instant, TimerKey)>>,
    waiting: HashMap<u64, Waiting>,
    next_id: u64,
    outputs: VecDeque<Output>,
    stats: ProxyStats,
    /// When the registration sweep timer is set for.
    sweep_at: Option<Instant>,
    /// Wall-clock seconds at `epoch`, for digest nonces.
    epoch: (Instant, u64),
}

impl Proxy {
    /// A front end. `unix_now` is the wall clock in seconds when `now` was read
    /// (digest nonces carry wall-clock time); `secret` keys the nonces.
    pub fn new(cfg: ProxyConfig, now: Instant, unix_now: u64, secret: [u8; 32]) -> Proxy {
        let digest = DigestServer::new(cfg.realm.clone(), secret);
        Proxy {
            cfg,
            digest,
            bindings: Bindings::default(),
            servers: HashMap::new(),
            clients: HashMap::new(),
            timers: BinaryHeap::new(),
            waiting: HashMap::new(),
            next_id: 1,
            outputs: VecDeque::new(),
            stats: ProxyStats::default(),
            sweep_at: None,
            epoch: (now, unix_now),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }

    /// The live contacts registered here for `aor`.
    pub fn contacts(&self, aor: &str, now: Instant) -> Vec<String> {
        self.bindings.contacts(aor, now).into_iter().map(|b| b.uri).collect()
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Proxy::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|std::cmp::Reverse((t, _))| *t)
    }

    fn unix_secs(&self, now: Instant) -> u64 {
        self.epoch.1 + now.saturating_duration_since(self.epoch.0).as_secs()
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, to: &Peer, bytes: Vec<u8>) {
        self.outputs.push_back(Output::Send { to: to.clone(), bytes });
    }

    fn timer(&mut self, at: Instant, key: TimerKey) {
        self.timers.push(std::cmp::Reverse((at, key)));
    }

    /// A message from `from`. Keep-alive pings are the runtime's business
    /// (RFC 5626 §3.5.1); this is one whole SIP message.
    pub fn handle_message(&mut self, now: Instant, from: Peer, bytes: &[u8]) {
        match message::parse(bytes) {
            Ok(Message::Request(r)) => {
                self.stats.requests += 1;
                self.on_request(now, from, r);
            }
            Ok(Message::Response(r)) => {
                self.stats.responses += 1;
                self.on_response(now, r);
            }
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(error = %e, ?from, "malformed SIP message");
                self.answer_malformed(&from, bytes, &e);
            }
        }
    }

    /// A request we cannot parse still gets a 400 when its transaction headers
    /// can be read (RFC 3261 §8.2 and §16.3 step 1); a response is dropped.
    fn answer_malformed(&mut self, from: &Peer, bytes: &[u8], error: &message::ParseError) {
        // A response, or a request whose headers cannot be read, gets nothing.
        if bytes.starts_with(b"SIP/") {
            return;
        }
        // Headers with bytes that are not UTF-8 are read lossily, only to answer.
        let lossy = String::from_utf8_lossy(bytes).into_owned().into_bytes();
        let Ok((headers, _)) = message::parse_headers(&lossy) else {
            return;
        };
        let method = bytes
            .split(|b| *b == b' ')
            .next()
            .and_then(|m| std::str::from_utf8(m).ok())
            .unwrap_or_default();
        // The response needs a Via to go anywhere; it copies what else there is.
        if method == "ACK" || message::first(&headers, "Via").is_none() {
            return;
        }
        let partial = Request {
            method: Method::from_token(method),
            uri: String::new(),
            headers,
            body: Vec::new(),
        };
        let (code, reason) = match error {
            message::ParseError::Version(_) => (505, "Version Not Supported".to_owned()),
            message::ParseError::TooLarge(_) => (513, "Message Too Large".to_owned()),
            _ => (400, format!("Bad Request ({error})")),
        };
        let reason = reason.replace(['\r', '\n'], " ");
        let resp = partial.response(code, &reason, Some(&random_token()));
        self.send(from, resp.to_bytes());
    }

    fn on_request(&mut self, now: Instant, from: Peer, mut req: Request) {
        if let Peer::Sip { addr, .. } = &from {
            message::stamp_received(&mut req.headers, *addr);
        }
        let Some(branch) = req.branch() else {
            let resp = req.response(400, "Bad Request (no Via branch)", Some(&random_token()));
            self.send(&from, resp.to_bytes());
            return;
        };
        if req.method == Method::Ack {
            return self.on_ack(now, from, req, branch);
        }
        if req.method == Method::Cancel {
            return self.on_cancel(now, from, req, branch);
        }
        let key = ServerKey {
            branch,
            method: req.method.to_string(),
        };
        if let Some(txn) = self.servers.get(&key) {
            // A retransmission (§17.2.1, §17.2.2): repeat the last answer.
            if let Some(bytes) = txn.last_response.clone() {
                self.send(&from, bytes);
            }
            return;
        }
        let txn = ServerTxn {
            request: req.clone(),
            source: from.clone(),
            last_response: None,
            final_code: None,
            branches: Vec::new(),
            best: None,
            to_tag: random_token(),
            expires: now + TIMER_C + TIMER_64T1,
            retransmit: None,
            looking_up: false,
        };
        self.servers.insert(key.clone(), txn);
        self.timer(
            now + TIMER_C + TIMER_64T1,
            TimerKey::Server(key.branch.clone(), key.method.clone()),
        );
        if req.method == Method::Invite {
            self.respond(now, &key, 100, "Trying", &[]);
        }
        if req.method == Method::Register {
            return self.on_register(now, &key, &from, &req);
        }
        self.proxy_request(now, &key, &from, req);
    }

    /// Sends a response this node makes itself for the server transaction.
    fn respond(&mut self, now: Instant, key: &ServerKey, code: u16, reason: &str, extra: &[(&str, String)]) {
        let Some(txn) = self.servers.get(key) else {
            return;
        };
        let tag = (code > 100).then(|| txn.to_tag.clone());
        let mut resp = txn.request.response(code, reason, tag.as_deref());
        for (name, value) in extra {
            resp = resp.with_header(name, value.clone());
        }
        self.send_upstream(now, key, resp);
    }

    /// Sends a response upstream on the server transaction, keeping what the
    /// transaction needs to absorb retransmissions (§17.2).
    fn send_upstream(&mut self, now: Instant, key: &ServerKey, resp: Response) {
        let Some(txn) = self.servers.get_mut(key) else {
            return;
        };
        if let Some(code) = txn.final_code
            && !(txn.request.method == Method::Invite && (200..300).contains(&resp.code) && (200..300).contains(&code))
        {
            // Only further 2xx to an INVITE pass a sent final (§16.7 step 5).
            return;
        }
        let bytes = resp.to_bytes();
        txn.last_response = Some(bytes.clone());
        let source = txn.source.clone();
        if resp.code >= 200 {
            txn.final_code = Some(resp.code);
            let linger = if txn.request.method == Method::Invite || !source.reliable() {
                TIMER_64T1
            } else {
                Duration::ZERO
            };
            txn.expires = now + linger;
            if txn.request.method == Method::Invite && resp.code >= 300 && !source.reliable() {
                txn.retransmit = Some((now + T1, T1));
                self.timer(now + T1, TimerKey::Server(key.branch.clone(), key.method.clone()));
            }
            self.timer(now + linger, TimerKey::Server(key.branch.clone(), key.method.clone()));
        }
        self.send(&source, bytes);
    }

    // ---- registrar (RFC 3261 §10.3) ----

    fn on_register(&mut self, now: Instant, key: &ServerKey, from: &Peer, req: &Request) {
        let to_uri = message::first(&req.headers, "To")
            .map(message::uri_of)
            .unwrap_or_default();
        let Some(aor) = aor_of_uri(&to_uri) else {
            return self.respond(now, key, 400, "Bad Request (To is not a SIP URI)", &[]);
        };
        let domain = aor.rsplit('@').next().unwrap_or_default().to_owned();
        if !self.serves(&domain) {
            return self.respond(now, key, 403, "Forbidden (domain not served by this overlay)", &[]);
        }
        if !self.cfg.accounts.contains_key(&aor) {
            // RFC 7904 §3.3: the node can only store what a certificate it holds
            // may sign.
            return self.respond(
                now,
                key,
                403,
                "Forbidden (this node holds no credentials for the AOR)",
                &[],
            );
        }
        if let Err(challenge) = self.authenticate(now, req, "Authorization", &aor) {
            return self.respond(now, key, 401, "Unauthorized", &[("WWW-Authenticate", challenge)]);
        }
        let Some((cseq, _)) = message::cseq(&req.headers) else {
            return self.respond(now, key, 400, "Bad Request", &[]);
        };
        let call_id = message::first(&req.headers, "Call-ID").unwrap_or_default().to_owned();
        let default_expires = message::first(&req.headers, "Expires")
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(DEFAULT_EXPIRES);
        let mut contacts = Vec::new();
        let mut remove_all = false;
        for value in message::all_values(&req.headers, "Contact") {
            if value.trim() == "*" {
                if default_expires != 0 || message::all_values(&req.headers, "Contact").len() > 1 {
                    return self.respond(now, key, 400, "Bad Request (Contact: * needs Expires: 0 alone)", &[]);
                }
                remove_all = true;
                continue;
            }
            let uri = message::uri_of(&value);
            if SipUri::parse(&uri).is_none() {
                return self.respond(now, key, 400, "Bad Request (Contact is not a SIP URI)", &[]);
            }
            let expires = message::param(&value, "expires")
                .and_then(|e| e.parse::<u32>().ok())
                .unwrap_or(default_expires);
            contacts.push(ContactUpdate { uri, expires });
        }
        let action = match self.bindings.register(
            now,
            &aor,
            &RegisterFrom {
                source: from,
                call_id: &call_id,
                cseq,
            },
            &contacts,
            remove_all,
        ) {
            Ok(a) => a,
            Err(e) => return self.respond(now, key, 500, &format!("Server Internal Error ({e})"), &[]),
        };
        let ok = self.register_ok(now, key, &aor);
        match action {
            OverlayAction::None => {
                self.stats.registered += 1;
                self.send_upstream(now, key, ok);
            }
            OverlayAction::Store(lifetime) => {
                let id = self.id();
                self.stats.stores += 1;
                self.waiting.insert(
                    id,
                    Waiting::Register {
                        server: key.clone(),
                        aor: aor.clone(),
                        ok,
                        lifetime: Some(lifetime),
                    },
                );
                self.outputs.push_back(Output::Store { id, aor, lifetime });
            }
            OverlayAction::Remove => {
                let id = self.id();
                self.waiting.insert(
                    id,
                    Waiting::Register {
                        server: key.clone(),
                        aor: aor.clone(),
                        ok,
                        lifetime: None,
                    },
                );
                self.outputs.push_back(Output::Remove { id, aor });
            }
        }
        self.schedule_expiry();
    }

    /// Keeps one sweep timer at the earliest contact expiry.
    fn schedule_expiry(&mut self) {
        let Some(at) = self.bindings.next_expiry() else {
            return;
        };
        if self.sweep_at.is_none_or(|t| at < t) {
            self.sweep_at = Some(at);
            self.timer(at, TimerKey::Registrations);
        }
    }

    /// The 200 to a REGISTER: every current contact with its expiry and the
    /// RELOAD GRUU of this node for the AOR (RFC 7904 §6, RFC 5627 §4.2).
    fn register_ok(&self, now: Instant, key: &ServerKey, aor: &str) -> Response {
        let Some(txn) = self.servers.get(key) else {
            return Response {
                code: 500,
                reason: "Server Internal Error".into(),
                headers: Default::default(),
                body: Vec::new(),
            };
        };
        let mut ok = txn.request.response(200, "OK", Some(&txn.to_tag));
        let gruu = crate::gruu::gruu_uri(aor, &[self.cfg.node_id]);
        for b in self.bindings.contacts(aor, now) {
            let secs = b.expires_at.saturating_duration_since(now).as_secs();
            ok = ok.with_header("Contact", format!("<{}>;expires={secs};pub-gruu=\"{gruu}\"", b.uri));
        }
        ok
    }

    /// Checks the digest credentials in `header` for `aor`'s account (RFC 3261
    /// §22); on failure, the challenge to send.
    fn authenticate(&mut self, now: Instant, req: &Request, header: &str, aor: &str) -> Result<(), String> {
        let unix = self.unix_secs(now);
        let Some(value) = message::first(&req.headers, header) else {
            return Err(self.digest.challenge(unix, false));
        };
        let accounts = &self.cfg.accounts;
        let lookup = |user: &str| -> Option<String> {
            // The digest user name is the AOR or its user part.
            accounts
                .get(user)
                .or_else(|| {
                    let (u, _) = aor.split_once('@')?;
                    (u == user).then(|| accounts.get(aor)).flatten()
                })
                .cloned()
        };
        match self.digest.verify(req.method.to_string().as_str(), value, lookup, unix) {
            Ok(user) if user == aor || aor.split_once('@').is_some_and(|(u, _)| u == user) => Ok(()),
            Ok(_) => Err(self.digest.challenge(unix, false)),
            Err(e) if e.is_stale() => Err(self.digest.challenge(unix, true)),
            Err(_) => Err(self.digest.challenge(unix, false)),
        }
    }

    fn serves(&self, domain: &str) -> bool {
        self.cfg.domains.admits_domain(domain)
    }

    /// The outcome of an [`Output::Store`] or [`Output::Remove`].
    pub fn store_done(&mut self, now: Instant, id: u64, result: Result<(), String>) {
        match self.waiting.remove(&id) {
            Some(Waiting::Register {
                server,
                aor,
                ok,
                lifetime,
            }) => match result {
                Ok(()) => {
                    match lifetime {
                        Some(l) => self.bindings.stored(&aor, now, l),
                        None => self.bindings.removed(&aor),
                    }
                    self.stats.registered += 1;
                    self.send_upstream(now, &server, ok);
                }
                Err(e) => {
                    tracing::warn!(%aor, error = %e, "storing the registration in the overlay failed");
                    let reason = format!("Service Unavailable (overlay store failed: {e})").replace(['\r', '\n'], " ");
                    self.respond(
                        now,
                        &server,
                        503,
                        &reason,
                        &[("Retry-After", RETRY_AFTER_SECS.to_string())],
                    );
                }
            },
            Some(Waiting::Expired { aor }) => {
                if result.is_ok() {
                    self.bindings.removed(&aor);
                }
            }
            Some(Waiting::Lookup(_) | Waiting::Locate(_) | Waiting::LocateAck(_)) | None => {}
        }
    }

    // ---- proxying (RFC 3261 §16) ----

    fn proxy_request(&mut self, now: Instant, key: &ServerKey, from: &Peer, mut req: Request) {
        // §16.3 step 3: Max-Forwards.
        let max_forwards = message::first(&req.headers, "Max-Forwards")
            .and_then(|m| m.trim().parse::<u8>().ok())
            .unwrap_or(70);
        if max_forwards == 0 {
            return self.respond(now, key, 483, "Too Many Hops", &[]);
        }
        // §16.3 step 5: this proxy supports no extension a request may require.
        let required = message::all_values(&req.headers, "Proxy-Require");
        if !required.is_empty() {
            let tags = required.join(", ");
            return self.respond(now, key, 420, "Bad Extension", &[("Unsupported", tags)]);
        }
        // §16.3 step 4: a Via of ours with this request's loop hash means a loop.
        let hash = loop_hash(&req);
        let mine = format!("{COOKIE}-{}-{hash}-", self.branch_prefix());
        if message::all_values(&req.headers, "Via")
            .iter()
            .filter_map(|v| message::param(v, "branch"))
            .any(|b| b.starts_with(&mine))
        {
            return self.respond(now, key, 482, "Loop Detected", &[]);
        }
        if let Peer::Sip { addr, .. } = from
            && !self.cfg.trusted.contains(&addr.ip())
            && !self.is_registered_phone(now, &req, from)
        {
            let aor = message::first(&req.headers, "From")
                .map(message::uri_of)
                .and_then(|u| aor_of_uri(&u))
                .unwrap_or_default();
            if !self.cfg.accounts.contains_key(&aor) {
                return self.respond(
                    now,
                    key,
                    403,
                    "Forbidden (the caller is not an account of this node)",
                    &[],
                );
            }
            if let Err(challenge) = self.authenticate(now, &req, "Proxy-Authorization", &aor) {
                return self.respond(
                    now,
                    key,
                    407,
                    "Proxy Authentication Required",
                    &[("Proxy-Authenticate", challenge)],
                );
            }
        }
        // §16.4: Route entries that name this node are done.
        self.pop_own_routes(&mut req);
        message::set(&mut req.headers, "Max-Forwards", (max_forwards - 1).to_string());
        if let Some(txn) = self.servers.get_mut(key) {
            txn.request = req.clone();
        }
        match self.target(now, from, &req) {
            Target::Forward(peer) => {
                self.fork(now, key, vec![(peer, None)]);
            }
            Target::Contacts(list) => {
                self.fork(now, key, list.into_iter().map(|(p, u)| (p, Some(u))).collect());
            }
            Target::Lookup(aor) => {
                let id = self.id();
                if let Some(txn) = self.servers.get_mut(key) {
                    txn.looking_up = true;
                }
                self.waiting.insert(id, Waiting::Lookup(key.clone()));
                self.outputs.push_back(Output::Lookup { id, aor });
            }
            Target::Locate(target) => {
                let id = self.id();
                if let Some(txn) = self.servers.get_mut(key) {
                    txn.looking_up = true;
                }
                self.waiting.insert(id, Waiting::Locate(key.clone()));
                self.outputs.push_back(Output::Locate { id, target });
            }
            Target::Unreachable(e) => self.not_located(now, key, &e),
            Target::Reject(code, reason) => self.respond(now, key, code, reason, &[]),
        }
    }

    /// The outcome of an [`Output::Locate`]: the servers of another domain in
    /// the order to try them (RFC 3263 §4.2). The request goes to the first;
    /// each of the others is tried in turn if the one before fails (§4.3). At
    /// most [`locate::MAX_DESTINATIONS`] are used.
    pub fn located(&mut self, now: Instant, id: u64, result: Result<Vec<Destination>, LocateError>) {
        match self.waiting.remove(&id) {
            Some(Waiting::Locate(key)) => self.locate_done(now, &key, result),
            Some(Waiting::LocateAck(req)) => match result.as_deref() {
                Ok([first, ..]) => self.send_ack(&sip_peer(*first), req),
                _ => tracing::debug!("the ACK's next hop was not found; it is dropped"),
            },
            // Not a location: leave it for its own answer.
            Some(other) => {
                self.waiting.insert(id, other);
            }
            None => {}
        }
    }

    fn locate_done(&mut self, now: Instant, key: &ServerKey, result: Result<Vec<Destination>, LocateError>) {
        let Some(txn) = self.servers.get_mut(key) else {
            return;
        };
        txn.looking_up = false;
        if txn.final_code.is_some() {
            // Answered meanwhile (a CANCEL got its 487).
            return;
        }
        let mut peers: VecDeque<Peer> = match result {
            Ok(list) => list.into_iter().take(locate::MAX_DESTINATIONS).map(sip_peer).collect(),
            Err(e) => return self.not_located(now, key, &e),
        };
        let Some(first) = peers.pop_front() else {
            let domain = txn.request.uri.clone();
            return self.not_located(now, key, &LocateError::NotFound { domain });
        };
        if let Some(branch) = self.fork(now, key, vec![(first, None)]).first()
            && let Some(client) = self.clients.get_mut(branch)
        {
            client.alternates = peers;
        }
    }

    /// The answer when RFC 3263 found no server: 404 when DNS says there is
    /// none (RFC 3261 §21.4.5: the domain cannot be served), 480 when DNS
    /// failed or the URI needs what this node lacks (it may work later, or
    /// elsewhere).
    fn not_located(&mut self, now: Instant, key: &ServerKey, error: &LocateError) {
        let code = match error {
            LocateError::NotFound { .. } => 404,
            _ => 480,
        };
        let reason = match code {
            404 => format!("Not Found ({error})"),
            _ => format!("Temporarily Unavailable ({error})"),
        };
        self.respond(now, key, code, &reason.replace(['\r', '\n'], " "), &[]);
    }

    /// A request from a phone that registered from the same address needs no
    /// further proof: requests for its AOR go to that address too.
    fn is_registered_phone(&self, now: Instant, req: &Request, from: &Peer) -> bool {
        let Some(aor) = message::first(&req.headers, "From")
            .map(message::uri_of)
            .and_then(|u| aor_of_uri(&u))
        else {
            return false;
        };
        self.bindings.contacts(&aor, now).iter().any(|b| &b.source == from)
    }

    fn branch_prefix(&self) -> String {
        self.cfg.node_id.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn node_hex(&self) -> String {
        self.cfg.node_id.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether a Route URI names this node (either of its Record-Route entries).
    fn is_own_route(&self, uri: &SipUri) -> bool {
        if uri
            .user
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(&self.node_hex()))
        {
            return true;
        }
        uri.socket_addr().is_some_and(|a| {
            a == self.cfg.udp || a == self.cfg.tcp || a == self.cfg.overlay_sip || Some(a) == self.cfg.tls
        })
    }

    fn pop_own_routes(&self, req: &mut Request) {
        while let Some(top) = message::all_values(&req.headers, "Route").into_iter().next() {
            match SipUri::parse(&message::uri_of(&top)) {
                Some(u) if self.is_own_route(&u) => message::remove_value(&mut req.headers, "Route", &top),
                _ => break,
            }
        }
    }

    /// Where a request goes (§16.4, §16.5; RFC 7904 §4.1 and §6).
    fn target(&self, now: Instant, from: &Peer, req: &Request) -> Target {
        if let Some(top) = message::all_values(&req.headers, "Route").into_iter().next() {
            let Some(uri) = SipUri::parse(&message::uri_of(&top)) else {
                return Target::Reject(400, "Bad Request (Route is not a SIP URI)");
            };
            if let Some(node) = overlay_route_node(&uri) {
                return Target::Forward(Peer::Node(node));
            }
            return match from {
                // Conventional SIP routes are followed for the node's own phones
                // only; §16.6 step 7: the next hop is the Route's URI, found by
                // RFC 3263.
                Peer::Sip { .. } => conventional(&uri),
                Peer::Node(_) => Target::Reject(404, "Not Found (Route leads nowhere this node can reach)"),
            };
        }
        let Some(ruri) = SipUri::parse(&req.uri) else {
            return Target::Reject(416, "Unsupported URI Scheme");
        };
        // The last hop of an in-dialog request: one of our phones' contacts.
        if let Some(b) = self.bindings.by_contact(|b| same_contact(&b.uri, &ruri), now) {
            return Target::Contacts(vec![(b.source, b.uri)]);
        }
        if !self.serves(&ruri.host) {
            // Conventional SIP (RFC 7904 §4.1): the outbound proxy, or the
            // domain's own servers found by RFC 3263 — for this node's phones
            // only, so that other nodes cannot relay through it.
            return match (self.cfg.outbound_proxy, from) {
                (Some(addr), _) => Target::Forward(Peer::Sip {
                    transport: Transport::Udp,
                    addr,
                }),
                (None, Peer::Node(_)) => Target::Reject(404, "Not Found (domain not served by this overlay)"),
                (None, Peer::Sip { .. }) => conventional(&ruri),
            };
        }
        let Some(aor) = aor_of_uri(&req.uri) else {
            return Target::Reject(404, "Not Found");
        };
        // RFC 7904 §6: a GRUU names its node; no Fetch is needed.
        if let Some(Some(gr)) = ruri.param("gr") {
            return match crate::gruu::parse_gruu_param(gr).ok().and_then(|d| last_node(&d)) {
                Some(node) if node == self.cfg.node_id => self.local_contacts(now, &aor),
                Some(node) => Target::Forward(Peer::Node(node)),
                None => Target::Reject(404, "Not Found (GRUU does not decode)"),
            };
        }
        match from {
            // The caller's node resolved the AOR to this node.
            Peer::Node(_) => self.local_contacts(now, &aor),
            Peer::Sip { .. } => Target::Lookup(aor),
        }
    }

    fn local_contacts(&self, now: Instant, aor: &str) -> Target {
        let contacts = self.bindings.contacts(aor, now);
        if contacts.is_empty() {
            return Target::Reject(
                480,
                "Temporarily Unavailable (no phone registered for the AOR at its node)",
            );
        }
        Target::Contacts(contacts.into_iter().map(|b| (b.source, b.uri)).collect())
    }

    /// The outcome of an [`Output::Lookup`]: destination lists of the AOR.
    pub fn lookup_done(&mut self, now: Instant, id: u64, result: Result<Resolved, LookupError>) {
        let Some(Waiting::Lookup(key)) = self.waiting.remove(&id) else {
            return;
        };
        let Some(txn) = self.servers.get_mut(&key) else {
            return;
        };
        txn.looking_up = false;
        if txn.final_code.is_some() {
            return;
        }
        let requested = aor_of_uri(&txn.request.uri).unwrap_or_default();
        match result {
            Ok(resolved) => {
                let mut branches: Vec<(Peer, Option<String>)> = Vec::new();
                for route in resolved.routes {
                    // An AOR reached through another (RFC 7904 §3.1, §4.2 step 2) is
                    // retargeted: the callee's node knows the final AOR only.
                    let retarget = (route.aor != requested).then(|| format!("sip:{}", route.aor));
                    if route.node == self.cfg.node_id {
                        if let Target::Contacts(c) = self.local_contacts(now, &route.aor) {
                            branches.extend(c.into_iter().map(|(p, u)| (p, Some(u))));
                        }
                    } else {
                        branches.push((Peer::Node(route.node), retarget));
                    }
                }
                // §4.2 step 3: AORs outside the overlay go to conventional SIP.
                if let Some(proxy) = self.cfg.outbound_proxy {
                    for aor in resolved.external {
                        let to = Peer::Sip {
                            transport: Transport::Udp,
                            addr: proxy,
                        };
                        branches.push((to, Some(format!("sip:{aor}"))));
                    }
                }
                branches.dedup();
                if branches.is_empty() {
                    return self.respond(now, &key, 480, "Temporarily Unavailable", &[]);
                }
                self.fork(now, &key, branches);
            }
            Err(LookupError::NotFound) => {
                self.respond(now, &key, 404, "Not Found (no registration in the overlay)", &[])
            }
            Err(LookupError::NotReady) => self.respond(
                now,
                &key,
                503,
                "Service Unavailable (not in the overlay yet)",
                &[("Retry-After", RETRY_AFTER_SECS.to_string())],
            ),
            Err(LookupError::Failed(e)) => {
                let reason = format!("Temporarily Unavailable (lookup failed: {e})").replace(['\r', '\n'], " ");
                self.respond(now, &key, 480, &reason, &[])
            }
        }
    }

    /// Forwards the server transaction's request on one branch per target
    /// (§16.6), the Request-URI set to the contact where one is given.
    /// Returns the branches started.
    fn fork(&mut self, now: Instant, key: &ServerKey, targets: Vec<(Peer, Option<String>)>) -> Vec<ClientKey> {
        let Some(txn) = self.servers.get(key) else {
            return Vec::new();
        };
        let base = txn.request.clone();
        let inbound = txn.source.clone();
        let hash = loop_hash(&base);
        let (mut started, mut too_large) = (Vec::new(), false);
        for (to, contact) in targets {
            let mut req = base.clone();
            if let Some(uri) = contact {
                req.uri = uri;
            }
            if creates_dialog(&req.method) {
                self.record_route(&mut req, &inbound, &to);
            }
            let branch = format!("{COOKIE}-{}-{hash}-{}", self.branch_prefix(), random_token());
            let via = self.via(&to, &branch);
            message::push_front(&mut req.headers, "Via", via);
            if req.to_bytes().len() > message::MAX_MESSAGE_SIZE {
                // What this node adds would push it past what the next hop
                // accepts (§16.6, §21.5.11): answer 513 instead.
                too_large = true;
                continue;
            }
            started.push(self.start_client(now, Some(key.clone()), to, req, branch));
        }
        if too_large && started.is_empty() {
            self.respond(now, key, 513, "Message Too Large", &[]);
        }
        started
    }

    /// The front end's address for phones on `transport`.
    fn local_addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Udp => self.cfg.udp,
            Transport::Tcp => self.cfg.tcp,
            Transport::Tls => self.cfg.tls.unwrap_or(self.cfg.tcp),
        }
    }

    /// This node's Via for a request sent to `to` (§18.1.1).
    fn via(&self, to: &Peer, branch: &str) -> String {
        match to {
            Peer::Sip { transport, .. } => format!(
                "SIP/2.0/{} {};branch={branch};rport",
                transport.via_name(),
                self.local_addr(*transport)
            ),
            Peer::Node(_) => format!("SIP/2.0/TLS {};branch={branch}", self.cfg.overlay_sip),
        }
    }

    /// Record-Route (§16.6 step 4): the node's entry for the side the request
    /// leaves on, and for the side it came in on when the two differ, so each
    /// side's in-dialog requests reach the node by an address it can use.
    fn record_route(&self, req: &mut Request, inbound: &Peer, outbound: &Peer) {
        let side = |p: &Peer| match p {
            Peer::Sip { transport, .. } => format!(
                "<sip:{};transport={};lr>",
                self.local_addr(*transport),
                transport.via_name().to_ascii_lowercase()
            ),
            Peer::Node(_) => format!("<sip:{}@{};transport=tls;lr>", self.node_hex(), self.cfg.overlay_sip),
        };
        let (inner, outer) = (side(inbound), side(outbound));
        if inner != outer {
            message::push_front(&mut req.headers, "Record-Route", inner);
        }
        message::push_front(&mut req.headers, "Record-Route", outer);
    }

    fn start_client(
        &mut self,
        now: Instant,
        server: Option<ServerKey>,
        to: Peer,
        req: Request,
        branch: String,
    ) -> ClientKey {
        let key = ClientKey {
            branch: branch.clone(),
            method: req.method.to_string(),
        };
        let bytes = req.to_bytes();
        let retransmit = (!to.reliable()).then_some((now + T1, T1));
        let txn = ClientTxn {
            server: server.clone(),
            to: to.clone(),
            request: req,
            bytes: bytes.clone(),
            state: ClientState::Calling,
            retransmit,
            deadline: now + TIMER_64T1,
            ack: None,
            cancel_pending: false,
            cancelled: false,
            alternates: VecDeque::new(),
        };
        if let Some(s) = server.and_then(|s| self.servers.get_mut(&s)) {
            s.branches.push(key.clone());
        }
        self.clients.insert(key.clone(), txn);
        if let Some((at, _)) = retransmit {
            self.timer(at, TimerKey::Client(key.branch.clone(), key.method.clone()));
        }
        self.timer(
            now + TIMER_64T1,
            TimerKey::Client(key.branch.clone(), key.method.clone()),
        );
        self.send(&to, bytes);
        key
    }

    fn on_ack(&mut self, now: Instant, from: Peer, mut req: Request, branch: String) {
        // The ACK of a non-2xx final this node sent belongs to that transaction
        // (§17.2.1) and goes no further.
        let key = ServerKey {
            branch,
            method: "INVITE".into(),
        };
        if let Some(txn) = self.servers.get_mut(&key)
            && txn.final_code.is_some_and(|c| c >= 300)
        {
            txn.retransmit = None;
            return;
        }
        // The ACK of a 2xx is a request of its own, routed like any in-dialog
        // request and forwarded without a transaction (§16.6, §13.2.2.4).
        self.pop_own_routes(&mut req);
        let mf = message::first(&req.headers, "Max-Forwards")
            .and_then(|m| m.trim().parse::<u8>().ok())
            .unwrap_or(70);
        if mf == 0 {
            return;
        }
        message::set(&mut req.headers, "Max-Forwards", (mf - 1).to_string());
        match self.target(now, &from, &req) {
            Target::Forward(to) => self.send_ack(&to, req),
            Target::Contacts(mut c) if c.len() == 1 => {
                let (to, uri) = c.remove(0);
                req.uri = uri;
                self.send_ack(&to, req);
            }
            Target::Locate(target) => {
                let id = self.id();
                self.waiting.insert(id, Waiting::LocateAck(req));
                self.outputs.push_back(Output::Locate { id, target });
            }
            _ => {}
        }
    }

    /// Sends an ACK of a 2xx on with this node's Via.
    fn send_ack(&mut self, to: &Peer, mut req: Request) {
        let branch = format!("{COOKIE}-{}-ack-{}", self.branch_prefix(), random_token());
        let via = self.via(to, &branch);
        message::push_front(&mut req.headers, "Via", via);
        self.send(to, req.to_bytes());
    }

    fn on_cancel(&mut self, now: Instant, from: Peer, req: Request, branch: String) {
        let invite = ServerKey {
            branch: branch.clone(),
            method: "INVITE".into(),
        };
        if !self.servers.contains_key(&invite) {
            // §9.2: no transaction to cancel.
            let resp = req.response(481, "Call/Transaction Does Not Exist", Some(&random_token()));
            self.send(&from, resp.to_bytes());
            return;
        }
        let ok = req.response(200, "OK", Some(&random_token()));
        self.send(&from, ok.to_bytes());
        let Some(txn) = self.servers.get(&invite) else {
            return;
        };
        if txn.final_code.is_some() {
            return;
        }
        let branches = txn.branches.clone();
        let looking_up = txn.looking_up;
        for b in branches {
            self.cancel_branch(now, &b);
        }
        if looking_up || self.servers.get(&invite).is_some_and(|t| t.branches.is_empty()) {
            self.respond(now, &invite, 487, "Request Terminated", &[]);
        }
    }

    /// CANCELs a pending INVITE branch (§9.1, §16.10): at once if it answered
    /// provisionally, when it does otherwise.
    fn cancel_branch(&mut self, now: Instant, key: &ClientKey) {
        let Some(txn) = self.clients.get_mut(key) else {
            return;
        };
        if txn.state != ClientState::Completed {
            txn.cancelled = true;
        }
        match txn.state {
            ClientState::Completed => {}
            ClientState::Calling if !txn.to.reliable() => txn.cancel_pending = true,
            _ => {
                let cancel = cancel_for(&txn.request);
                let to = txn.to.clone();
                let branch = key.branch.clone();
                self.start_client(now, None, to, cancel, branch);
            }
        }
    }

    fn on_response(&mut self, now: Instant, mut resp: Response) {
        let (Some(branch), Some(method)) = (resp.branch(), resp.cseq_method()) else {
            return;
        };
        let key = ClientKey {
            branch,
            method: method.to_ascii_uppercase(),
        };
        let Some(txn) = self.clients.get_mut(&key) else {
            return;
        };
        let is_invite = txn.request.method == Method::Invite;
        let was_completed = txn.state == ClientState::Completed;
        let mut timer = None;
        let mut cancel = None;
        let mut ack = None;
        if resp.code < 200 {
            if txn.state == ClientState::Calling {
                txn.state = ClientState::Proceeding;
                if is_invite {
                    // Timer A stops; Timer C guards the ringing (§16.6 step 11).
                    txn.retransmit = None;
                    txn.deadline = now + TIMER_C;
                    timer = Some(now + TIMER_C);
                } else if let Some((_, interval)) = txn.retransmit {
                    txn.retransmit = Some((now + T2.max(interval), T2));
                }
            }
            if txn.cancel_pending {
                txn.cancel_pending = false;
                cancel = Some((txn.to.clone(), cancel_for(&txn.request)));
            }
        } else {
            txn.state = ClientState::Completed;
            txn.retransmit = None;
            txn.deadline = now + TIMER_64T1;
            timer = Some(now + TIMER_64T1);
            if is_invite && resp.code >= 300 {
                // §17.1.1.3: the ACK of a non-2xx is hop by hop.
                let bytes = txn
                    .ack
                    .get_or_insert_with(|| ack_for(&txn.request, &resp).to_bytes())
                    .clone();
                ack = Some((txn.to.clone(), bytes));
            }
        }
        if let Some(at) = timer {
            self.timer(at, TimerKey::Client(key.branch.clone(), key.method.clone()));
        }
        if let Some((to, req)) = cancel {
            self.start_client(now, None, to, req, key.branch.clone());
        }
        if let Some((to, bytes)) = ack {
            self.send(&to, bytes);
        }
        // RFC 3263 §4.3: a 503 is a failure of this server; the next is tried.
        if resp.code == 503 && !was_completed && self.fail_over(now, &key) {
            return;
        }
        let Some(server) = self.clients.get(&key).and_then(|t| t.server.clone()) else {
            return;
        };
        if was_completed && !(is_invite && (200..300).contains(&resp.code)) {
            return;
        }
        // §16.7 step 3: our Via goes.
        if let Some(i) = resp
            .headers
            .0
            .iter()
            .position(|h| matches!(h, rsipstack::sip::Header::Via(_)))
        {
            let first = resp.headers.0[i].value().to_owned();
            let mut rest = message::split_list(&first);
            if rest.len() > 1 {
                rest.remove(0);
                resp.headers.0[i] = rsipstack::sip::headers::make_header("Via", rest.join(", "));
            } else {
                resp.headers.0.remove(i);
            }
        }
        self.relay_response(now, &server, &key, resp);
    }

    /// Response context (§16.7 steps 4–10).
    fn relay_response(&mut self, now: Instant, server: &ServerKey, branch: &ClientKey, resp: Response) {
        let code = resp.code;
        if code == 100 {
            return;
        }
        if code < 200 {
            return self.send_upstream(now, server, resp);
        }
        let Some(txn) = self.servers.get_mut(server) else {
            return;
        };
        if (200..300).contains(&code) {
            let others: Vec<ClientKey> = txn.branches.iter().filter(|b| *b != branch).cloned().collect();
            self.send_upstream(now, server, resp);
            if server.method == "INVITE" {
                for b in others {
                    self.cancel_branch(now, &b);
                }
            }
            return;
        }
        if txn.best.as_ref().is_none_or(|b| better(code, b.code)) {
            txn.best = Some(resp);
        }
        if code >= 600 && server.method == "INVITE" {
            let others: Vec<ClientKey> = txn.branches.iter().filter(|b| *b != branch).cloned().collect();
            for b in others {
                self.cancel_branch(now, &b);
            }
        }
        self.finish_if_done(now, server);
    }

    /// Sends the best final once no branch is pending (§16.7 step 6).
    fn finish_if_done(&mut self, now: Instant, server: &ServerKey) {
        let Some(txn) = self.servers.get(server) else {
            return;
        };
        if txn.final_code.is_some() || txn.looking_up {
            return;
        }
        let pending = txn
            .branches
            .iter()
            .any(|b| self.clients.get(b).is_some_and(|c| c.state != ClientState::Completed));
        if pending {
            return;
        }
        let Some(mut best) = txn.best.clone() else {
            return;
        };
        if best.code == 503 {
            // §16.7 step 6: a 503 is not passed on as such.
            best.code = 500;
            best.reason = "Server Internal Error (next hop unavailable)".into();
        }
        self.send_upstream(now, server, best);
    }

    /// The runtime could not reach `to` (no AppAttach answer, TLS refused, the
    /// Node-ID did not match, the TCP connect failed): every pending branch
    /// towards it ends as if it had answered 480 or 503.
    pub fn send_failed(&mut self, now: Instant, to: &Peer, why: &str) {
        let keys: Vec<ClientKey> = self
            .clients
            .iter()
            .filter(|(_, t)| &t.to == to && t.state != ClientState::Completed)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.fail_branch(now, &key, 480, &format!("Temporarily Unavailable ({why})"));
        }
    }

    /// A branch ends without an answer from its next hop: the transport
    /// failed or Timer B, F or C fired. `code` stands for the missing answer.
    fn fail_branch(&mut self, now: Instant, key: &ClientKey, code: u16, reason: &str) {
        let Some(txn) = self.clients.get_mut(key) else {
            return;
        };
        // RFC 3263 §4.3: failing before any response, provisional or final,
        // means the server was never reached; the next one is tried.
        let unanswered = txn.state == ClientState::Calling;
        txn.state = ClientState::Completed;
        txn.retransmit = None;
        if unanswered && self.fail_over(now, key) {
            return;
        }
        let Some(txn) = self.clients.get(key) else {
            return;
        };
        let Some(server) = txn.server.clone() else {
            return;
        };
        let mut resp = txn
            .request
            .response(code, &reason.replace(['\r', '\n'], " "), Some(&random_token()));
        // Strip our own Via, as if it had come back through us.
        let our = message::all_values(&resp.headers, "Via").into_iter().next();
        if let Some(v) = our {
            message::remove_value(&mut resp.headers, "Via", &v);
        }
        self.relay_response(now, &server, key, resp);
    }

    /// RFC 3263 §4.3: the branch `key` failed (a 503, a transport failure, or
    /// a timeout before any response); if RFC 3263 found another server, the
    /// request goes there as a new transaction (a new Via branch, and a Via
    /// and Record-Route for the new transport) and the failure is not passed
    /// on. Returns whether the failure was taken care of so.
    fn fail_over(&mut self, now: Instant, key: &ClientKey) -> bool {
        let Some(txn) = self.clients.get_mut(key) else {
            return false;
        };
        // A cancelled branch ends as it is; so does one without a server
        // transaction (a CANCEL of this node's).
        if txn.cancelled {
            return false;
        }
        let Some(server) = txn.server.clone() else {
            return false;
        };
        let Some(next) = txn.alternates.pop_front() else {
            return false;
        };
        let rest = std::mem::take(&mut txn.alternates);
        let failed = txn.to.clone();
        if self.servers.get(&server).is_none_or(|s| s.final_code.is_some()) {
            return false;
        }
        tracing::info!(?failed, ?next, "RFC 3263 §4.3: the server failed, trying the next");
        let started = self.fork(now, &server, vec![(next, None)]);
        match started.first().and_then(|k| self.clients.get_mut(k)) {
            Some(client) => client.alternates = rest,
            // Not sent (it grew too large): fork answered the request itself.
            None => return self.servers.get(&server).is_some_and(|s| s.final_code.is_some()),
        }
        true
    }

    /// Timers fire (§17).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(std::cmp::Reverse((at, key))) = self.timers.peek().cloned() {
            if at > now {
                break;
            }
            self.timers.pop();
            match key {
                TimerKey::Server(branch, method) => self.server_timer(now, ServerKey { branch, method }),
                TimerKey::Client(branch, method) => self.client_timer(now, ClientKey { branch, method }),
                TimerKey::Registrations => {
                    if self.sweep_at.is_some_and(|t| t <= now) {
                        self.sweep_at = None;
                    }
                    for aor in self.bindings.expire(now) {
                        let id = self.id();
                        self.waiting.insert(id, Waiting::Expired { aor: aor.clone() });
                        self.outputs.push_back(Output::Remove { id, aor });
                    }
                    self.schedule_expiry();
                }
            }
        }
    }

    fn server_timer(&mut self, now: Instant, key: ServerKey) {
        let Some(txn) = self.servers.get_mut(&key) else {
            return;
        };
        if let Some((at, interval)) = txn.retransmit
            && at <= now
        {
            let next = (interval * 2).min(T2);
            txn.retransmit = Some((now + next, next));
            let (to, bytes) = (txn.source.clone(), txn.last_response.clone());
            self.timer(now + next, TimerKey::Server(key.branch.clone(), key.method.clone()));
            if let Some(b) = bytes {
                self.send(&to, b);
            }
        }
        let Some(txn) = self.servers.get(&key) else {
            return;
        };
        if txn.expires <= now {
            if txn.final_code.is_none() {
                // Nothing answered within Timer C: give up (§16.8).
                let branches = txn.branches.clone();
                for b in &branches {
                    self.cancel_branch(now, b);
                }
                self.respond(now, &key, 408, "Request Timeout", &[]);
                return;
            }
            let branches = txn.branches.clone();
            self.servers.remove(&key);
            for b in branches {
                if self.clients.get(&b).is_some_and(|c| c.state == ClientState::Completed) {
                    self.clients.remove(&b);
                }
            }
        }
    }

    fn client_timer(&mut self, now: Instant, key: ClientKey) {
        let Some(txn) = self.clients.get_mut(&key) else {
            return;
        };
        if let Some((at, interval)) = txn.retransmit
            && at <= now
        {
            let next = if txn.request.method == Method::Invite {
                interval * 2
            } else {
                (interval * 2).min(T2)
            };
            txn.retransmit = Some((now + next, next));
            let (to, bytes) = (txn.to.clone(), txn.bytes.clone());
            self.timer(now + next, TimerKey::Client(key.branch.clone(), key.method.clone()));
            self.send(&to, bytes);
        }
        let Some(txn) = self.clients.get(&key) else {
            return;
        };
        if txn.deadline <= now {
            match txn.state {
                ClientState::Completed => {
                    if txn.server.as_ref().is_none_or(|s| !self.servers.contains_key(s)) {
                        self.clients.remove(&key);
                    }
                }
                ClientState::Proceeding if txn.request.method == Method::Invite => {
                    // Timer C: CANCEL, and answer 408 for the branch (§16.8).
                    self.cancel_branch(now, &key);
                    self.fail_branch(now, &key, 408, "Request Timeout");
                }
                _ => self.fail_branch(now, &key, 408, "Request Timeout"),
            }
        }
    }
}

enum Target {
    Forward(Peer),
    Contacts(Vec<(Peer, String)>),
    Lookup(String),
    /// A conventional SIP server to find by RFC 3263.
    Locate(SipTarget),
    /// RFC 3263 refused the URI before any DNS question.
    Unreachable(LocateError),
    Reject(u16, &'static str),
}

/// The next hop towards a conventional SIP URI (RFC 3263 §4): a numeric
/// TARGET at once (§4.2), a name after DNS.
fn conventional(uri: &SipUri) -> Target {
    let target = SipTarget::from_uri(uri);
    match locate::numeric(&target, OUTBOUND_TRANSPORTS) {
        Some(Ok(destination)) => Target::Forward(sip_peer(destination)),
        Some(Err(e)) => Target::Unreachable(e),
        None => Target::Locate(target),
    }
}

fn sip_peer(destination: Destination) -> Peer {
    Peer::Sip {
        transport: destination.transport,
        addr: destination.addr,
    }
}

/// Which final response wins (§16.7 step 6): 6xx, then the lowest class; a
/// 487 is kept over others of its class so a cancelled call reads cancelled.
fn better(new: u16, old: u16) -> bool {
    let rank = |c: u16| match c {
        600..=699 => 0,
        487 => 1,
        _ => c / 100 * 10 + 2,
    };
    rank(new) < rank(old)
}

fn creates_dialog(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
    )
}

/// The loop-detection part of a branch (§16.6 step 8): a hash of what makes
/// the request this request.
fn loop_hash(req: &Request) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.uri.hash(&mut h);
    for name in ["Call-ID", "CSeq"] {
        message::first(&req.headers, name)
            .unwrap_or_default()
            .trim()
            .hash(&mut h);
    }
    for name in ["From", "To"] {
        message::first(&req.headers, name)
            .and_then(|v| message::param(v, "tag"))
            .unwrap_or_default()
            .hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The AOR a SIP URI names (RFC 7904 §2: no scheme, unescaped, user@host).
pub fn aor_of_uri(uri: &str) -> Option<String> {
    let u = SipUri::parse(uri)?;
    let user = percent_decode(u.user.as_deref()?)?;
    Some(format!("{user}@{}", u.host))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A Record-Route entry of another node: `sip:<Node-ID hex>@host;transport=tls;lr`.
fn overlay_route_node(uri: &SipUri) -> Option<NodeId> {
    if uri.transport() != "tls" {
        return None;
    }
    NodeId::from_hex(uri.user.as_deref()?)
}

fn same_contact(registered: &str, ruri: &SipUri) -> bool {
    SipUri::parse(registered).is_some_and(|c| {
        c.host == ruri.host && c.port.unwrap_or(5060) == ruri.port.unwrap_or(5060) && c.user == ruri.user
    })
}

fn last_node(list: &[reload_wire::Destination]) -> Option<NodeId> {
    match list.last()? {
        reload_wire::Destination::Node { node_id } => Some(*node_id),
        _ => None,
    }
}

/// The CANCEL of a request this node sent (§9.1): same Request-URI, Call-ID,
/// From, To, CSeq number and top Via; Route kept.
fn cancel_for(req: &Request) -> Request {
    let mut headers = rsipstack::sip::Headers::default();
    for h in req.headers.iter() {
        let name = h.name();
        if ["From", "To", "Call-ID", "Route", "Max-Forwards"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            headers.push(h.clone());
        }
    }
    if let Some(via) = message::all_values(&req.headers, "Via").into_iter().next() {
        message::push_front(&mut headers, "Via", via);
    }
    let number = message::cseq(&req.headers).map_or(1, |(n, _)| n);
    headers.push(rsipstack::sip::headers::make_header("CSeq", format!("{number} CANCEL")));
    headers.push(rsipstack::sip::headers::make_header("Content-Length", "0".into()));
    Request {
        method: Method::Cancel,
        uri: req.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

/// The ACK of a non-2xx final (§17.1.1.3): To from the response.
fn ack_for(req: &Request, resp: &Response) -> Request {
    let mut ack = cancel_for(req);
    ack.method = Method::Ack;
    message::remove_all(&mut ack.headers, "CSeq");
    message::remove_all(&mut ack.headers, "Content-Length");
    let number = message::cseq(&req.headers).map_or(1, |(n, _)| n);
    ack.headers
        .push(rsipstack::sip::headers::make_header("CSeq", format!("{number} ACK")));
    if let Some(to) = message::first(&resp.headers, "To") {
        message::set(&mut ack.headers, "To", to.to_owned());
    }
    ack.headers
        .push(rsipstack::sip::headers::make_header("Content-Length", "0".into()));
    ack
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
