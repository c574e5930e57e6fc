//! The tokio runtime around [`reload_core::Node`]: it owns the node, its links and
//! its storage, feeds the node what happens and carries out what it asks for.
//! Every line of protocol logic stays in reload-core, which the simulator drives
//! too; this module only moves bytes, keeps time and makes storage durable.
//!
//! One task owns the node. Links run in tasks of their own ([`crate::link`]) and
//! report to it over channels; the application talks to it through a
//! [`NodeHandle`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reload_core::storage::{RestoreSummary, StorageBackend};
use reload_core::{
    Action, Answer, CertificateCrypto, Event, Failure, LinkId, NeighborTable, Node, NodeConfig, RequestId, State,
    Stats, Time,
};
use reload_wire::{
    ApplicationId, CandidateType, Destination, IceCandidate, KindId, MessageBody, NodeId, OverlayLinkType, ResourceId,
    StoreKindData, StoreReq, StoredData, StoredDataValue,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::dtls::DtlsEndpoint;
use crate::link::{LinkConn, LinkError, LinkEvent};
use crate::persist::{RedbBackend, RedbError};
use crate::security::LinkSecurity;
use crate::tls::TlsLinks;

/// The link protocol of the overlay (the configuration's `overlay-link-protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkProtocol {
    /// `TLS-TCP-FH-NO-ICE` (§6.6.5).
    Tls,
    /// `DTLS-UDP-SR-NO-ICE` (§6.6.6).
    Dtls,
}

impl LinkProtocol {
    /// The OverlayLinkType its candidates carry (§6.5.1.1).
    pub fn overlay_link(self) -> OverlayLinkType {
        match self {
            LinkProtocol::Tls => OverlayLinkType::TLS_TCP_FH_NO_ICE,
            LinkProtocol::Dtls => OverlayLinkType::DTLS_UDP_SR_NO_ICE,
        }
    }
}

/// What a node needs to run.
#[derive(Debug)]
pub struct RuntimeConfig {
    /// The node's parameters (from the configuration document). Its candidates are
    /// filled in from the bound address.
    pub node: NodeConfig,
    /// Its certificate and the overlay's trust.
    pub security: LinkSecurity,
    /// TLS or DTLS.
    pub protocol: LinkProtocol,
    /// Where to listen (port 0 picks one). A client listens too: the peers it
    /// attaches to connect back to it under No-ICE.
    pub listen: SocketAddr,
    /// Where the overlay's bootstrap peers listen (§11.4). This node's own address
    /// is left out when connecting.
    pub bootstrap: Vec<SocketAddr>,
    /// Start a new overlay instead of joining, if no bootstrap peer answers (the
    /// first peer of an overlay, §6.4.2.1).
    pub create_overlay: bool,
    /// The redb file for stored values; `None` keeps them in memory.
    pub storage: Option<PathBuf>,
    /// Seed of the node's random choices (transaction ids, jitter).
    pub seed: u64,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The link security could not be set up.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The store could not be opened or read.
    #[error(transparent)]
    Storage(#[from] RedbError),
    /// The node's own certificate does not carry its Node-ID.
    #[error("credentials: {0}")]
    Credentials(#[from] reload_trust::TrustError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The node did not join (or attach) within the time allowed.
    #[error("not joined after {0:?}: no bootstrap peer reachable, or the admitting peer did not answer")]
    JoinTimeout(Duration),
}

/// A snapshot of the node, for `stat`-like output.
#[derive(Clone, Debug)]
pub struct Status {
    /// The node's Node-ID.
    pub node_id: NodeId,
    /// Where it is in its life.
    pub state: State,
    /// Its neighbors.
    pub neighbors: NeighborTable,
    /// Its open links: peer and address.
    pub links: Vec<(NodeId, SocketAddr)>,
    /// Its counters.
    pub stats: Stats,
    /// Resource-IDs it stores.
    pub stored_resources: usize,
}

enum Command {
    Request {
        destination: Destination,
        body: MessageBody,
        reply: oneshot::Sender<Result<Answer, Failure>>,
    },
    Status {
        reply: oneshot::Sender<Status>,
    },
    Leave {
        reply: oneshot::Sender<()>,
    },
    /// A request signed with other credentials than the node's (a gateway's user).
    RequestSignedBy {
        destination: Destination,
        body: MessageBody,
        signer: std::sync::Arc<CertificateCrypto>,
        reply: oneshot::Sender<Result<Answer, Failure>>,
    },
    OfferApplication {
        application: ApplicationId,
        candidates: Vec<IceCandidate>,
    },
    WithdrawApplication {
        application: ApplicationId,
    },
    AppAttach {
        node: NodeId,
        application: ApplicationId,
        reply: oneshot::Sender<Result<Answer, Failure>>,
    },
}

/// Credentials of a user other than the node's own, that the node signs for: an
/// office gateway holding the certificates of several users (RFC 7904 §3.3: each
/// user's SIP registration must be signed with that user's certificate, and by
/// RFC 6940 §7.4.1.1 so must the Store request that carries it). Made with
/// [`NodeHandle::user_signer`].
#[derive(Clone)]
pub struct UserSigner {
    crypto: std::sync::Arc<CertificateCrypto>,
    node_id: NodeId,
    user: Option<String>,
}

impl UserSigner {
    /// The Node-ID the signatures name: the node's own if the certificate carries
    /// it, else the certificate's first. It is the dictionary key a USER-NODE-MATCH
    /// value signed this way must be stored under (RFC 6940 §7.3.3).
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The certificate's user name (rfc822Name), if it has one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

impl std::fmt::Debug for UserSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSigner")
            .field("node_id", &self.node_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The application's handle on a running node. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    signer: std::sync::Arc<CertificateCrypto>,
    anchors: reload_trust::TrustAnchors,
    user: Option<String>,
    state: watch::Receiver<State>,
    node_id: NodeId,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("node_id", &self.node_id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// The node's Node-ID.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The user name (rfc822Name) of the node's certificate, if it has one: the only
    /// user whose USER-MATCH and USER-NODE-MATCH values it can sign itself (§7.3).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Sends a request into the overlay and waits for its outcome (the node
    /// retransmits end to end, §6.2.1, so this returns within about
    /// `max_transmissions × reliability_timer`).
    pub async fn request(&self, destination: Destination, body: MessageBody) -> Result<Answer, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request {
                destination,
                body,
                reply,
            })
            .await
            .map_err(|_| RequestError::Stopped)?;
        answer
            .await
            .map_err(|_| RequestError::Stopped)?
            .map_err(RequestError::Failed)
    }

    /// `value` signed by this node for `resource` and `kind` (§7.1), stored now for
    /// `lifetime` seconds.
    pub fn sign_value(
        &self,
        resource: &ResourceId,
        kind: KindId,
        value: StoredDataValue,
        lifetime: u32,
    ) -> Result<StoredData, reload_wire::EncodeError> {
        sign_with(&self.signer, resource, kind, value, lifetime)
    }

    /// Stores `values` of `kind` at `resource`, signed by this node (§7.4.1), with
    /// generation counter 0 (no check). Returns the responsible peer's answer.
    pub async fn store(
        &self,
        resource: ResourceId,
        kind: KindId,
        values: Vec<StoredDataValue>,
        lifetime: u32,
    ) -> Result<Answer, RequestError> {
        let body = store_body(&self.signer, &resource, kind, values, lifetime)?;
        self.request(Destination::resource(resource), body).await
    }

    /// Signs for another user with `credentials` (see [`UserSigner`]). The
    /// certificate must chain to the overlay's root like the node's own; it
    /// signs as this node's Node-ID if the certificate carries it, else as the
    /// certificate's first Node-ID.
    pub fn user_signer(&self, credentials: reload_trust::Credentials) -> Result<UserSigner, reload_trust::TrustError> {
        let node_id = if credentials.node_ids().contains(&self.node_id) {
            self.node_id
        } else {
            *credentials
                .node_ids()
                .first()
                .ok_or(reload_trust::TrustError::NodeIdNotInCertificate(self.node_id))?
        };
        let user = credentials.user().map(str::to_owned);
        let crypto = CertificateCrypto::new(credentials, node_id, self.anchors.clone())?;
        Ok(UserSigner {
            crypto: std::sync::Arc::new(crypto),
            node_id,
            user,
        })
    }

    /// [`NodeHandle::sign_value`] with `signer`'s credentials instead of the node's.
    pub fn sign_value_as(
        &self,
        signer: &UserSigner,
        resource: &ResourceId,
        kind: KindId,
        value: StoredDataValue,
        lifetime: u32,
    ) -> Result<StoredData, reload_wire::EncodeError> {
        sign_with(&signer.crypto, resource, kind, value, lifetime)
    }

    /// [`NodeHandle::request`] with the message signed by `signer` instead of the
    /// node; its certificate travels in the security block (§6.3.4).
    pub async fn request_signed_as(
        &self,
        signer: &UserSigner,
        destination: Destination,
        body: MessageBody,
    ) -> Result<Answer, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::RequestSignedBy {
                destination,
                body,
                signer: signer.crypto.clone(),
                reply,
            })
            .await
            .map_err(|_| RequestError::Stopped)?;
        answer
            .await
            .map_err(|_| RequestError::Stopped)?
            .map_err(RequestError::Failed)
    }

    /// [`NodeHandle::store`] as another user: the values and the Store request are
    /// both signed by `signer` (§7.4.1.1: for an original store, both must be by a
    /// credential that may write at `resource`).
    pub async fn store_signed_as(
        &self,
        signer: &UserSigner,
        resource: ResourceId,
        kind: KindId,
        values: Vec<StoredDataValue>,
        lifetime: u32,
    ) -> Result<Answer, RequestError> {
        let body = store_body(&signer.crypto, &resource, kind, values, lifetime)?;
        self.request_signed_as(signer, Destination::resource(resource), body)
            .await
    }

    /// Accepts AppAttach requests for `application` (RFC 6940 §6.5.2) from now on,
    /// answering with a host candidate for `addr`, where the application listens.
    /// The candidate's link type is TLS/TCP (No-ICE): applications such as SIPS
    /// (RFC 7904 §5.1) run over TLS on TCP. Replaces an earlier offer.
    pub async fn offer_application(
        &self,
        application: impl Into<ApplicationId>,
        addr: SocketAddr,
    ) -> Result<(), RuntimeError> {
        self.commands
            .send(Command::OfferApplication {
                application: application.into(),
                candidates: vec![host_candidate(addr, LinkProtocol::Tls)],
            })
            .await
            .map_err(|_| RuntimeError::Stopped)
    }

    /// Stops accepting AppAttach for `application`; requests get Error_Not_Found.
    pub async fn withdraw_application(&self, application: impl Into<ApplicationId>) -> Result<(), RuntimeError> {
        self.commands
            .send(Command::WithdrawApplication {
                application: application.into(),
            })
            .await
            .map_err(|_| RuntimeError::Stopped)
    }

    /// Sends an AppAttach for `application` to `node` (RFC 6940 §6.5.2), carrying
    /// this node's own candidates for the application if it offers it, and returns
    /// the addresses of the candidates in the answer, in the answer's order. The
    /// caller connects to one of them itself, and must check that the far end's
    /// certificate carries `node` (RFC 7904 §5.1). An answer for another
    /// application, or without usable candidates, is an error.
    pub async fn app_attach(
        &self,
        node: NodeId,
        application: impl Into<ApplicationId>,
    ) -> Result<Vec<SocketAddr>, RequestError> {
        let application = application.into();
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::AppAttach {
                node,
                application,
                reply,
            })
            .await
            .map_err(|_| RequestError::Stopped)?;
        let answer = answer
            .await
            .map_err(|_| RequestError::Stopped)?
            .map_err(RequestError::Failed)?;
        let MessageBody::AppAttachAns(ans) = answer.body else {
            return Err(RequestError::UnexpectedAnswer(format!(
                "{} answered an AppAttach with {:?}",
                answer.responder,
                answer.body.code()
            )));
        };
        if ans.application != application {
            return Err(RequestError::UnexpectedAnswer(format!(
                "{} answered an AppAttach for application {} with application {}",
                answer.responder, application.0, ans.application.0
            )));
        }
        let addrs: Vec<SocketAddr> = ans
            .candidates
            .iter()
            .filter_map(|c| c.addr_port.socket_addr())
            .collect();
        if addrs.is_empty() {
            return Err(RequestError::UnexpectedAnswer(format!(
                "{} answered an AppAttach without a usable candidate",
                answer.responder
            )));
        }
        Ok(addrs)
    }

    /// The node's state, neighbors, links and counters.
    pub async fn status(&self) -> Result<Status, RuntimeError> {
        let (reply, status) = oneshot::channel();
        self.commands
            .send(Command::Status { reply })
            .await
            .map_err(|_| RuntimeError::Stopped)?;
        status.await.map_err(|_| RuntimeError::Stopped)
    }

    /// Whether the node is in the overlay now (a peer in the ring, or an attached
    /// client): requests before that fail or wait for a route.
    pub fn is_joined(&self) -> bool {
        *self.state.borrow() == State::Joined
    }

    /// Waits until the node has joined (or, for a client, attached), for at most `limit`.
    pub async fn joined(&self, limit: Duration) -> Result<(), RuntimeError> {
        let mut state = self.state.clone();
        let wait = state.wait_for(|s| *s == State::Joined || *s == State::Left);
        match tokio::time::timeout(limit, wait).await {
            Ok(Ok(s)) if *s == State::Joined => Ok(()),
            Ok(_) => Err(RuntimeError::Stopped),
            Err(_) => Err(RuntimeError::JoinTimeout(limit)),
        }
    }

    /// Leaves the overlay (a Leave to each neighbor, §6.4.2.2) and stops the node
    /// once the Leaves are out, within `limit`.
    pub async fn leave(&self, limit: Duration) -> Result<(), RuntimeError> {
        let (reply, done) = oneshot::channel();
        self.commands
            .send(Command::Leave { reply })
            .await
            .map_err(|_| RuntimeError::Stopped)?;
        let _ = tokio::time::timeout(limit, done).await;
        Ok(())
    }
}

/// `value` signed by `crypto` for `resource` and `kind` (§7.1), stored now for
/// `lifetime` seconds.
fn sign_with(
    crypto: &CertificateCrypto,
    resource: &ResourceId,
    kind: KindId,
    value: StoredDataValue,
    lifetime: u32,
) -> Result<StoredData, reload_wire::EncodeError> {
    let data = StoredData {
        storage_time: unix_millis(),
        lifetime,
        value,
        signature: reload_wire::Signature::synthesized(),
    };
    reload_core::crypto::sign_stored_data(crypto, resource, kind, data)
}

/// An original Store (replica 0, no generation check, §7.4.1) of `values`
/// signed by `crypto`.
fn store_body(
    crypto: &CertificateCrypto,
    resource: &ResourceId,
    kind: KindId,
    values: Vec<StoredDataValue>,
    lifetime: u32,
) -> Result<MessageBody, RequestError> {
    let values = values
        .into_iter()
        .map(|v| sign_with(crypto, resource, kind, v, lifetime))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RequestError::Encode(e.to_string()))?;
    Ok(MessageBody::StoreReq(StoreReq {
        resource: resource.clone(),
        replica_number: 0,
        kind_data: vec![StoreKindData {
            kind,
            generation_counter: 0,
            values,
        }],
    }))
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The overlay answered with an error, or not at all.
    #[error("{}", describe_failure(.0))]
    Failed(Failure),
    /// The request could not be encoded (a value too large for its field).
    #[error("cannot encode the request: {0}")]
    Encode(String),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The answer was not what the request calls for.
    #[error("unexpected answer: {0}")]
    UnexpectedAnswer(String),
}

/// Milliseconds since the Unix epoch: a value's storage time (§7.4.1.1).
fn unix_millis() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn describe_failure(f: &Failure) -> String {
    match f {
        Failure::Timeout => "no answer after every retransmission".into(),
        Failure::NoRoute => "no link to send on (not connected to the overlay)".into(),
        Failure::Error { responder, error } => {
            let text = String::from_utf8_lossy(&error.error_info);
            format!("{responder} answered {:?}: {text}", error.error_code)
        }
    }
}

/// The link side of the runtime: TLS or DTLS.
#[derive(Clone)]
enum Links {
    Tls(TlsLinks),
    Dtls(std::sync::Arc<DtlsEndpoint>),
}

impl Links {
    async fn connect(&self, remote: SocketAddr, expected: Option<NodeId>) -> Result<LinkConn, LinkError> {
        match self {
            Links::Tls(t) => t.connect(remote, expected).await,
            Links::Dtls(d) => d.connect(remote, expected).await,
        }
    }
}

/// Binds the node's socket, restores its stored values and starts it. Returns at
/// once; the node joins in the background ([`NodeHandle::joined`] waits for it).
pub async fn start(cfg: RuntimeConfig) -> Result<(NodeHandle, tokio::task::JoinHandle<()>), RuntimeError> {
    let max = cfg.node.max_message_size;
    let (inbound_tx, inbound_rx) = mpsc::channel::<LinkConn>(64);
    let (links, local_addr) = match cfg.protocol {
        LinkProtocol::Tls => {
            let tls = TlsLinks::new(cfg.security.clone(), max)?;
            let listener = tokio::net::TcpListener::bind(cfg.listen)
                .await
                .map_err(|source| RuntimeError::Listen {
                    addr: cfg.listen,
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| RuntimeError::Listen {
                addr: cfg.listen,
                source,
            })?;
            let server = tls.clone();
            tokio::spawn(async move { server.serve(listener, inbound_tx).await });
            (Links::Tls(tls), local)
        }
        LinkProtocol::Dtls => {
            let (endpoint, mut accepted) = DtlsEndpoint::bind(cfg.listen, cfg.security.clone(), max)
                .await
                .map_err(|source| RuntimeError::Listen {
                    addr: cfg.listen,
                    source,
                })?;
            let local = endpoint.local_addr();
            tokio::spawn(async move {
                while let Some(conn) = accepted.recv().await {
                    if inbound_tx.send(conn).await.is_err() {
                        break;
                    }
                }
            });
            (Links::Dtls(std::sync::Arc::new(endpoint)), local)
        }
    };

    let credentials = reload_trust::Credentials::from_pkcs8_der(
        cfg.security.credentials().private_key().pkcs8_der(),
        cfg.security.credentials().chain().to_vec(),
    )?;
    let node_id = cfg.security.node_id();
    let anchors = cfg.security.anchors().clone();
    let user = cfg.security.credentials().user().map(str::to_owned);
    let crypto = CertificateCrypto::new(credentials, node_id, cfg.security.anchors().clone())?;
    let signer = std::sync::Arc::new(CertificateCrypto::new(
        reload_trust::Credentials::from_pkcs8_der(
            cfg.security.credentials().private_key().pkcs8_der(),
            cfg.security.credentials().chain().to_vec(),
        )?,
        node_id,
        cfg.security.anchors().clone(),
    )?);

    let mut node_cfg = cfg.node;
    node_cfg.node_id = node_id;
    node_cfg.candidates = vec![host_candidate(local_addr, cfg.protocol)];
    node_cfg.persist_storage = cfg.storage.is_some();
    let mut node: Node = Node::new(node_cfg, Box::new(crypto), cfg.seed);

    let clock = Clock::new();
    let backend = match &cfg.storage {
        Some(path) => {
            let backend = RedbBackend::open(path)?;
            let loaded = backend.load_all()?;
            let summary: RestoreSummary = node.restore_storage(clock.now(), loaded.records);
            tracing::info!(
                resources = summary.resources,
                values = summary.values,
                expired = summary.expired,
                unreadable = summary.unreadable + loaded.invalid_keys,
                "restored stored values"
            );
            Some(backend)
        }
        None => None,
    };

    let bootstrap: Vec<IceCandidate> = cfg
        .bootstrap
        .iter()
        .filter(|a| **a != local_addr && !(a.ip().is_unspecified() && a.port() == local_addr.port()))
        .map(|a| host_candidate(*a, cfg.protocol))
        .collect();
    let create = cfg.create_overlay || bootstrap.is_empty();
    node.start(clock.now(), bootstrap, create);
    tracing::info!(node_id = %node_id, addr = %local_addr, create_overlay = create, "node started");

    let (commands_tx, commands_rx) = mpsc::channel(256);
    let (state_tx, state_rx) = watch::channel(node.state());
    let driver = Driver {
        node,
        clock,
        links,
        backend,
        open: HashMap::new(),
        next_link: 1,
        replies: HashMap::new(),
        state: state_tx,
        leaving: None,
        sync_due: None,
    };
    let task = tokio::spawn(driver.run(commands_rx, inbound_rx));
    Ok((
        NodeHandle {
            commands: commands_tx,
            signer,
            anchors,
            user,
            state: state_rx,
            node_id,
            local_addr,
        },
        task,
    ))
}

/// A host candidate for a No-ICE link (§6.5.1.11: the address the node listens on).
pub fn host_candidate(addr: SocketAddr, protocol: LinkProtocol) -> IceCandidate {
    IceCandidate {
        addr_port: addr.into(),
        overlay_link: protocol.overlay_link(),
        foundation: b"1".to_vec(),
        priority: 2_130_706_431,
        candidate_type: CandidateType::Host,
        extensions: Vec::new(),
    }
}

/// The node's clock: Unix time in microseconds (the core reads certificate validity
/// and storage times off it), advancing with the monotonic clock so that a step of
/// the wall clock does not fire or stall timers.
struct Clock {
    base_unix_micros: u64,
    base: Instant,
}

impl Clock {
    fn new() -> Self {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Clock {
            base_unix_micros: u64::try_from(unix.as_micros()).unwrap_or(u64::MAX),
            base: Instant::now(),
        }
    }

    fn now(&self) -> Time {
        let since = u64::try_from(self.base.elapsed().as_micros()).unwrap_or(u64::MAX);
        Time(self.base_unix_micros.saturating_add(since))
    }

    fn instant(&self, t: Time) -> tokio::time::Instant {
        let micros = t.0.saturating_sub(self.base_unix_micros);
        tokio::time::Instant::from_std(self.base + Duration::from_micros(micros))
    }
}

/// An open link as the driver keeps it.
struct OpenLink {
    peer: NodeId,
    remote: SocketAddr,
    send: mpsc::Sender<Vec<u8>>,
}

/// What link tasks and connect attempts report to the driver.
enum Report {
    Link(LinkId, LinkEvent),
    Connected(LinkConn),
    ConnectFailed(Option<NodeId>),
}

struct Driver {
    node: Node,
    clock: Clock,
    links: Links,
    backend: Option<RedbBackend>,
    open: HashMap<LinkId, OpenLink>,
    next_link: u64,
    replies: HashMap<RequestId, oneshot::Sender<Result<Answer, Failure>>>,
    state: watch::Sender<State>,
    leaving: Option<(oneshot::Sender<()>, tokio::time::Instant)>,
    /// When lazily committed replicas are to be synced.
    sync_due: Option<tokio::time::Instant>,
}

/// How long replicas committed lazily wait at most for their sync.
const REPLICA_SYNC: Duration = Duration::from_secs(1);

/// How long a leaving node waits for its Leave requests to be answered.
const LEAVE_GRACE: Duration = Duration::from_secs(2);

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut inbound: mpsc::Receiver<LinkConn>) {
        let (report_tx, mut reports) = mpsc::channel::<Report>(1024);
        let mut commands_open = true;
        loop {
            if !self.flush(&report_tx) {
                break;
            }
            if let Some((_, deadline)) = &self.leaving {
                let pending_leaves = self.node.pending_requests() > 0 && tokio::time::Instant::now() < *deadline;
                if !pending_leaves || self.open.is_empty() {
                    break;
                }
            }
            let deadline = self.node.poll_timeout().map(|t| self.clock.instant(t));
            let leave_deadline = self.leaving.as_ref().map(|(_, d)| *d);
            let wake = [deadline, leave_deadline, self.sync_due].into_iter().flatten().min();
            let timer = crate::link::sleep_until(wake);
            tokio::select! {
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => {
                        // Every handle is gone: leave quietly.
                        commands_open = false;
                        self.node.leave(self.clock.now());
                        self.leaving_without_reply();
                    }
                },
                Some(conn) = inbound.recv() => self.link_up(conn, &report_tx),
                Some(report) = reports.recv() => self.report(report, &report_tx),
                () = timer => {
                    if self.sync_due.is_some_and(|due| tokio::time::Instant::now() >= due) && !self.sync_storage() {
                        break;
                    }
                    self.node.handle_timeout(self.clock.now());
                }
            }
        }
        self.sync_storage();
        if let Some((reply, _)) = self.leaving.take() {
            let _ = reply.send(());
        }
        let _ = self.state.send(State::Left);
        tracing::info!(node_id = %self.node.node_id(), "node stopped");
    }

    fn leaving_without_reply(&mut self) {
        let (tx, _) = oneshot::channel();
        self.leaving = Some((tx, tokio::time::Instant::now() + LEAVE_GRACE));
    }

    fn command(&mut self, cmd: Command) {
        let now = self.clock.now();
        match cmd {
            Command::Request {
                destination,
                body,
                reply,
            } => {
                let id = self.node.request(now, destination, body);
                self.replies.insert(id, reply);
            }
            Command::Status { reply } => {
                let links = self.open.values().map(|l| (l.peer, l.remote)).collect();
                let _ = reply.send(Status {
                    node_id: self.node.node_id(),
                    state: self.node.state(),
                    neighbors: self.node.neighbors(),
                    links,
                    stats: self.node.stats().clone(),
                    stored_resources: self.node.data_store().resource_count(),
                });
            }
            Command::Leave { reply } => {
                self.node.leave(now);
                self.leaving = Some((reply, tokio::time::Instant::now() + LEAVE_GRACE));
            }
            Command::RequestSignedBy {
                destination,
                body,
                signer,
                reply,
            } => {
                let id = self.node.request_signed_by(now, destination, body, &*signer);
                self.replies.insert(id, reply);
            }
            Command::OfferApplication {
                application,
                candidates,
            } => self.node.offer_application(application, candidates),
            Command::WithdrawApplication { application } => self.node.withdraw_application(application),
            Command::AppAttach {
                node,
                application,
                reply,
            } => {
                let id = self.node.app_attach(now, node, application);
                self.replies.insert(id, reply);
            }
        }
    }

    /// Carries out what the node queued: storage first (made durable before
    /// anything that acknowledges it leaves, reload-net's rule), then transmits,
    /// link actions and events. Returns false if the node must stop.
    fn flush(&mut self, reports: &mpsc::Sender<Report>) -> bool {
        // Actions can give the node more to send (a link that comes up again at
        // once, a link closed): go round until nothing is left.
        loop {
            if !self.persist() {
                return false;
            }
            while let Some(t) = self.node.poll_transmit() {
                let Some(link) = self.open.get(&t.link) else { continue };
                // A full queue drops the message; end-to-end retransmission (§6.2.1) covers it.
                if link.send.try_send(t.bytes).is_err() {
                    tracing::debug!(peer = %link.peer, "link send queue full; message dropped");
                }
            }
            let mut acted = false;
            while let Some(action) = self.node.poll_action() {
                acted = true;
                match action {
                    Action::Connect { peer, candidates } => self.connect(peer, candidates, reports),
                    Action::Close { link } => {
                        // Dropping the sender closes the link; its task reports Closed.
                        self.open.remove(&link);
                        self.node.handle_link_down(self.clock.now(), link);
                    }
                }
            }
            if !acted {
                break;
            }
        }
        while let Some(event) = self.node.poll_event() {
            self.event(event);
        }
        true
    }

    /// Commits the node's storage changes. A batch that touches a value this peer
    /// is responsible for is synced before anything goes out; a batch of replicas
    /// only (§10.4) is committed lazily and synced within [`REPLICA_SYNC`] (see
    /// reload-net's persist module for why). False if the node must stop.
    fn persist(&mut self) -> bool {
        let changes = self.node.take_storage_changes();
        let Some(backend) = self.backend.as_mut().filter(|_| !changes.is_empty()) else {
            return true;
        };
        let primary = changes.iter().any(|c| self.node.is_responsible(c.resource()));
        let result = if primary {
            backend.apply(&changes)
        } else {
            backend.apply_lazily(&changes)
        };
        if let Err(e) = result {
            // Sending the acknowledgements now could lose acknowledged data.
            tracing::error!(error = %e, "cannot persist stored values; stopping");
            return false;
        }
        if backend.has_unsynced() {
            self.sync_due
                .get_or_insert_with(|| tokio::time::Instant::now() + REPLICA_SYNC);
        } else {
            self.sync_due = None;
        }
        true
    }

    /// Makes lazily committed replicas durable. False if the node must stop.
    fn sync_storage(&mut self) -> bool {
        self.sync_due = None;
        match self.backend.as_mut().map(RedbBackend::sync) {
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot persist stored values; stopping");
                false
            }
            _ => true,
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Response { request, result } => {
                if let Some(reply) = self.replies.remove(&request) {
                    let _ = reply.send(result);
                }
            }
            Event::Joined => {
                tracing::info!(node_id = %self.node.node_id(), "joined the overlay");
                let _ = self.state.send(State::Joined);
            }
            Event::Rejoining => {
                tracing::warn!(node_id = %self.node.node_id(), "lost the overlay; joining again");
                let _ = self.state.send(self.node.state());
            }
            Event::Left => {
                let _ = self.state.send(State::Left);
            }
            Event::NeighborsChanged(table) => {
                tracing::debug!(?table, "neighbors changed");
            }
            Event::ResponsibleRangeChanged { predecessor } => {
                tracing::debug!(?predecessor, "responsible range changed");
            }
        }
    }

    /// Tries the candidates in turn (No-ICE: the first that completes the handshake
    /// wins, §6.5.1.11) in a task of its own.
    fn connect(&mut self, peer: Option<NodeId>, candidates: Vec<IceCandidate>, reports: &mpsc::Sender<Report>) {
        let own = self.node.node_id();
        let links = self.links.clone();
        let reports = reports.clone();
        let addrs: Vec<SocketAddr> = candidates.iter().filter_map(|c| c.addr_port.socket_addr()).collect();
        if peer.is_none() {
            // A bootstrap peer this node is still linked to (a join that starts
            // over): the link serves again. DTLS allows one session per address
            // pair, so a second connect would fail for as long as the link lives.
            let existing = self
                .open
                .iter()
                .filter(|(_, l)| addrs.contains(&l.remote))
                .map(|(id, l)| (*id, l.peer))
                .min();
            if let Some((id, linked)) = existing {
                let now = self.clock.now();
                self.node.handle_link_up(now, id, linked, true);
                return;
            }
        }
        tokio::spawn(async move {
            for addr in addrs {
                match links.connect(addr, peer).await {
                    Ok(conn) if conn.peer == own => {
                        tracing::debug!(%addr, "candidate is this node itself");
                    }
                    Ok(conn) => {
                        let _ = reports.send(Report::Connected(conn)).await;
                        return;
                    }
                    Err(e) => tracing::info!(%addr, ?peer, error = %e, "connect failed"),
                }
            }
            let _ = reports.send(Report::ConnectFailed(peer)).await;
        });
    }

    fn link_up(&mut self, conn: LinkConn, reports: &mpsc::Sender<Report>) {
        let id = LinkId(self.next_link);
        self.next_link += 1;
        let LinkConn {
            peer,
            remote,
            outbound,
            send,
            mut events,
            mtu,
        } = conn;
        tracing::debug!(%peer, %remote, outbound, "link up");
        self.open.insert(id, OpenLink { peer, remote, send });
        let reports = reports.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let closed = matches!(ev, LinkEvent::Closed(_));
                if reports.send(Report::Link(id, ev)).await.is_err() || closed {
                    return;
                }
            }
        });
        let now = self.clock.now();
        self.node.handle_link_up(now, id, peer, outbound);
        if let Some(mtu) = mtu {
            self.node.set_link_mtu(id, mtu);
        }
    }

    fn report(&mut self, report: Report, reports: &mpsc::Sender<Report>) {
        let now = self.clock.now();
        match report {
            Report::Connected(conn) => self.link_up(conn, reports),
            Report::ConnectFailed(peer) => self.node.handle_connect_failed(now, peer),
            Report::Link(id, LinkEvent::Message(bytes)) => self.node.handle_message(now, id, &bytes),
            Report::Link(_, LinkEvent::Rtt(_) | LinkEvent::Suspect) => {}
            Report::Link(id, LinkEvent::Closed(reason)) => {
                if let Some(link) = self.open.remove(&id) {
                    tracing::debug!(peer = %link.peer, ?reason, "link closed");
                    self.node.handle_link_down(now, id);
                }
            }
        }
    }
}
