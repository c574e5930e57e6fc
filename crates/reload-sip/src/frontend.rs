//! The SIP front end's runtime: sockets for the node's phones (UDP and TCP),
//! TLS connections to other nodes opened by AppAttach (RFC 7904 §5), and the
//! overlay operations of the SIP usage, all around one [`Proxy`].
//!
//! One task owns the proxy. Socket readers, overlay operations and DNS
//! (RFC 3263, [`crate::dns`]) run in their own tasks and report back on a
//! channel, so a slow AppAttach, Fetch or DNS answer never holds up other
//! calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reload_core::storage::DomainRestriction;
use reload_net::tls::TlsLinks;
use reload_wire::NodeId;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

pub use crate::dns::DnsConfig;
use crate::dns::SipResolver;
use crate::framing::{Frame, PING, PONG, StreamFramer};
use crate::locate::{Destination, LocateError, SipTarget};
use crate::proxy::{
    LookupError, OUTBOUND_TRANSPORTS, Output, Peer, Proxy, ProxyConfig, ProxyStats, Resolved, ResolvedRoute, Transport,
};
use crate::usage::{APP_SIPS, SipUsage};

/// How often an idle connection to another node sends a keep-alive ping
/// (RFC 5626 §4.4.1 suggests 95–120 s for TCP; a shorter period finds a dead
/// node sooner).
const KEEPALIVE: Duration = Duration::from_secs(30);
/// Messages queued for a connection or a node being connected.
const QUEUE: usize = 256;
/// How long connecting to another node may take, AppAttach included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// The contact preference this node publishes: it takes SIPS only (RFC 7904 §3.2, §5.1).
const CONTACT_PREFS: &str = "(sip.schemes=SIPS)";

/// Where the front end listens.
#[derive(Debug, Clone)]
pub struct FrontendConfig {
    /// UDP and TCP address for phones (default 127.0.0.1:5060).
    pub phones: SocketAddr,
    /// TLS address for other nodes' SIP, offered in AppAttach answers.
    pub overlay: SocketAddr,
    /// TLS for phones: the address and the server configuration (the front
    /// end's own certificate, which phones check as usual; no client
    /// certificate is asked for).
    pub phones_tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    /// Phone accounts: AOR → password. The node's own user is one; others need
    /// a signer in `signers`.
    pub accounts: HashMap<String, String>,
    /// Credentials of other users this node registers for (an office gateway,
    /// RFC 7904 §3.3): their registrations are signed with their certificates.
    pub signers: HashMap<String, reload_net::runtime::UserSigner>,
    /// Conventional SIP servers whose requests for overlay users are routed into
    /// the overlay without a digest challenge (gateway mode).
    pub trusted: Vec<std::net::IpAddr>,
    /// The domains the overlay serves.
    pub domains: DomainRestriction,
    /// The digest realm (the overlay's name).
    pub realm: String,
    /// Where requests for other domains go.
    pub outbound_proxy: Option<SocketAddr>,
}

/// Why the front end could not start.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// The node the front end belongs to has stopped.
    #[error("the node has stopped")]
    NodeStopped,
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

enum Input {
    Message {
        from: Peer,
        bytes: Vec<u8>,
    },
    Connected {
        peer: Peer,
        writer: mpsc::Sender<Vec<u8>>,
    },
    Closed {
        peer: Peer,
        writer: mpsc::Sender<Vec<u8>>,
    },
    ConnectFailed {
        peer: Peer,
        why: String,
    },
    Lookup {
        id: u64,
        result: Result<Resolved, LookupError>,
    },
    Located {
        id: u64,
        result: Result<Vec<Destination>, LocateError>,
    },
    Stored {
        id: u64,
        result: Result<(), String>,
    },
    Stats {
        reply: oneshot::Sender<ProxyStats>,
    },
    Contacts {
        aor: String,
        reply: oneshot::Sender<Vec<String>>,
    },
}

/// A running front end. Dropping it does not stop it; the task ends with the
/// runtime.
#[derive(Debug, Clone)]
pub struct Frontend {
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: Option<SocketAddr>,
    overlay: SocketAddr,
    inputs: mpsc::Sender<Input>,
}

impl Frontend {
    /// The UDP address phones send to.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    /// The TCP address phones connect to.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp
    }

    /// The TLS address phones connect to, if the front end has one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// The TLS address other nodes connect to.
    pub fn overlay_addr(&self) -> SocketAddr {
        self.overlay
    }

    /// The proxy's counters.
    pub async fn stats(&self) -> Option<ProxyStats> {
        let (reply, rx) = oneshot::channel();
        self.inputs.send(Input::Stats { reply }).await.ok()?;
        rx.await.ok()
    }

    /// The contacts registered here for `aor`.
    pub async fn contacts(&self, aor: &str) -> Vec<String> {
        let (reply, rx) = oneshot::channel();
        if self
            .inputs
            .send(Input::Contacts {
                aor: aor.to_owned(),
                reply,
            })
            .await
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

/// Starts the front end of a node: binds the sockets, offers SIPS (5061) in
/// AppAttach answers (RFC 7904 §5.1), and runs until the tokio runtime ends.
/// Servers of other domains are found with the system's DNS configuration.
pub async fn start(usage: SipUsage, tls: TlsLinks, cfg: FrontendConfig) -> Result<Frontend, FrontendError> {
    start_with_dns(usage, tls, cfg, DnsConfig::default()).await
}

/// [`start`], finding servers of other domains (RFC 3263) with the
/// nameserver `dns` names. Without DNS (no system configuration, say) the
/// front end still runs: requests for other domains are answered 480.
pub async fn start_with_dns(
    usage: SipUsage,
    tls: TlsLinks,
    cfg: FrontendConfig,
    dns: DnsConfig,
) -> Result<Frontend, FrontendError> {
    let bind_err = |addr| move |source| FrontendError::Bind { addr, source };
    let (udp, tcp) = bind_phone_sockets(cfg.phones).await?;
    let udp_addr = udp.local_addr().map_err(bind_err(cfg.phones))?;
    let tcp_addr = tcp.local_addr().map_err(bind_err(cfg.phones))?;
    let tls_listener = TcpListener::bind(cfg.overlay).await.map_err(bind_err(cfg.overlay))?;
    let overlay_addr = tls_listener.local_addr().map_err(bind_err(cfg.overlay))?;
    let phones_tls = match &cfg.phones_tls {
        Some((addr, config)) => {
            let listener = TcpListener::bind(addr).await.map_err(bind_err(*addr))?;
            let local = listener.local_addr().map_err(bind_err(*addr))?;
            Some((listener, local, tokio_rustls::TlsAcceptor::from(config.clone())))
        }
        None => None,
    };
    let tls_addr = phones_tls.as_ref().map(|(_, a, _)| *a);
    usage
        .handle()
        .offer_application(APP_SIPS, overlay_addr)
        .await
        .map_err(|_| FrontendError::NodeStopped)?;

    let node_id = usage.handle().node_id();
    let proxy = Proxy::new(
        ProxyConfig {
            node_id,
            domains: cfg.domains.clone(),
            udp: udp_addr,
            tcp: tcp_addr,
            tls: tls_addr,
            overlay_sip: overlay_addr,
            accounts: cfg.accounts.clone(),
            trusted: cfg.trusted.clone(),
            realm: cfg.realm.clone(),
            outbound_proxy: cfg.outbound_proxy,
        },
        Instant::now(),
        unix_now(),
        rand::random(),
    );
    let (inputs, rx) = mpsc::channel(4096);
    let udp = Arc::new(udp);
    tokio::spawn(read_udp(udp.clone(), inputs.clone()));
    tokio::spawn(accept_tcp(tcp, inputs.clone()));
    tokio::spawn(accept_tls(tls_listener, tls.clone(), inputs.clone()));
    if let Some((listener, _, acceptor)) = phones_tls {
        tokio::spawn(accept_phones_tls(listener, acceptor, inputs.clone()));
    }
    let dns = SipResolver::new(&dns).map_err(|e| {
        tracing::warn!(error = %e, "no DNS: requests for other domains will fail");
        e.to_string()
    });
    let shell = Shell {
        proxy,
        dns,
        signers: Arc::new(cfg.signers),
        usage,
        tls,
        udp,
        inputs: inputs.clone(),
        conns: HashMap::new(),
        connecting: HashMap::new(),
    };
    tokio::spawn(shell.run(rx));
    Ok(Frontend {
        udp: udp_addr,
        tcp: tcp_addr,
        tls: tls_addr,
        overlay: overlay_addr,
        inputs,
    })
}

/// UDP and TCP on the same port, as phones expect (RFC 3261 §18). With port 0
/// the kernel picks the UDP port, which TCP may already use: try a few.
async fn bind_phone_sockets(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), FrontendError> {
    let err = |addr| move |source| FrontendError::Bind { addr, source };
    let mut attempt = 1;
    loop {
        let udp = UdpSocket::bind(addr).await.map_err(err(addr))?;
        let port = udp.local_addr().map_err(err(addr))?.port();
        let tcp_addr = SocketAddr::new(addr.ip(), port);
        match TcpListener::bind(tcp_addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() != 0 || attempt == 16 => return Err(err(tcp_addr)(e)),
            Err(_) => attempt += 1,
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Shell {
    proxy: Proxy,
    /// RFC 3263's DNS, or why there is none.
    dns: Result<SipResolver, String>,
    signers: Arc<HashMap<String, reload_net::runtime::UserSigner>>,
    usage: SipUsage,
    tls: TlsLinks,
    udp: Arc<UdpSocket>,
    inputs: mpsc::Sender<Input>,
    /// Open stream connections: TCP phones by address, nodes by Node-ID.
    conns: HashMap<Peer, mpsc::Sender<Vec<u8>>>,
    /// Messages waiting for a connection being opened.
    connecting: HashMap<Peer, Vec<Vec<u8>>>,
}

impl Shell {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>) {
        loop {
            let deadline = self.proxy.poll_timeout();
            let input = tokio::select! {
                i = rx.recv() => i,
                () = sleep_until(deadline) => {
                    self.proxy.handle_timeout(Instant::now());
                    self.drain().await;
                    continue;
                }
            };
            let Some(input) = input else { return };
            self.handle(input);
            self.drain().await;
        }
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Message { from, bytes } => self.proxy.handle_message(now, from, &bytes),
            Input::Connected { peer, writer } => {
                for bytes in self.connecting.remove(&peer).unwrap_or_default() {
                    let _ = writer.try_send(bytes);
                }
                self.conns.insert(peer, writer);
            }
            Input::Closed { peer, writer } => {
                if self.conns.get(&peer).is_some_and(|w| w.same_channel(&writer)) {
                    self.conns.remove(&peer);
                }
            }
            Input::ConnectFailed { peer, why } => {
                self.connecting.remove(&peer);
                tracing::info!(?peer, %why, "SIP connection failed");
                self.proxy.send_failed(now, &peer, &why);
            }
            Input::Lookup { id, result } => self.proxy.lookup_done(now, id, result),
            Input::Stored { id, result } => self.proxy.store_done(now, id, result),
            Input::Located { id, result } => self.proxy.located(now, id, result),
            Input::Stats { reply } => {
                let _ = reply.send(self.proxy.stats().clone());
            }
            Input::Contacts { aor, reply } => {
                let _ = reply.send(self.proxy.contacts(&aor, now));
            }
        }
    }

    async fn drain(&mut self) {
        while let Some(out) = self.proxy.poll_output() {
            match out {
                Output::Send { to, bytes } => self.send(to, bytes).await,
                Output::Lookup { id, aor } => {
                    let (usage, inputs) = (self.usage.clone(), self.inputs.clone());
                    tokio::spawn(async move {
                        let result = usage.resolve_routes(&aor).await.map(resolved).map_err(lookup_error);
                        let _ = inputs.send(Input::Lookup { id, result }).await;
                    });
                }
                Output::Store { id, aor, lifetime } => {
                    let (usage, inputs, signers) = (self.usage.clone(), self.inputs.clone(), self.signers.clone());
                    tokio::spawn(async move {
                        let result = match signers.get(&aor) {
                            Some(signer) => usage.register_as(signer, &aor, CONTACT_PREFS, lifetime).await,
                            None => usage.register(&aor, CONTACT_PREFS, lifetime).await,
                        };
                        let result = result.map_err(|e| e.to_string());
                        let _ = inputs.send(Input::Stored { id, result }).await;
                    });
                }
                Output::Locate { id, target } => self.locate(id, target),
                Output::Remove { id, aor } => {
                    let (usage, inputs, signers) = (self.usage.clone(), self.inputs.clone(), self.signers.clone());
                    tokio::spawn(async move {
                        let result = match signers.get(&aor) {
                            Some(signer) => usage.unregister_as(signer, &aor).await,
                            None => usage.unregister(&aor).await,
                        };
                        let result = result.map_err(|e| e.to_string());
                        let _ = inputs.send(Input::Stored { id, result }).await;
                    });
                }
            }
        }
    }

    /// RFC 3263 in a task of its own (it is bounded by
    /// [`crate::dns::LOCATE_TIMEOUT`]); the answer comes back as an input.
    fn locate(&self, id: u64, target: SipTarget) {
        let inputs = self.inputs.clone();
        let dns = self.dns.clone();
        tokio::spawn(async move {
            let result = match dns {
                Ok(dns) => dns.locate(&target, OUTBOUND_TRANSPORTS, rand::random()).await,
                Err(why) => Err(LocateError::DnsFailed {
                    domain: target.host.clone(),
                    why,
                }),
            };
            let _ = inputs.send(Input::Located { id, result }).await;
        });
    }

    async fn send(&mut self, to: Peer, bytes: Vec<u8>) {
        if let Peer::Sip {
            transport: Transport::Udp,
            addr,
        } = to
        {
            if let Err(e) = self.udp.send_to(&bytes, addr).await {
                // A transport failure (RFC 3263 §4.3: the next server, if any,
                // is tried), such as an IPv6 address from an IPv4 socket.
                tracing::debug!(%addr, error = %e, "UDP send failed");
                self.proxy
                    .send_failed(Instant::now(), &to, &format!("UDP send failed: {e}"));
            }
            return;
        }
        if let Some(w) = self.conns.get(&to) {
            if w.try_send(bytes).is_ok() {
                return;
            }
            self.conns.remove(&to);
            let why = "connection closed or congested".to_owned();
            self.proxy.send_failed(Instant::now(), &to, &why);
            return;
        }
        if let Some(queue) = self.connecting.get_mut(&to) {
            if queue.len() < QUEUE {
                queue.push(bytes);
            }
            return;
        }
        if let Peer::Sip {
            transport: Transport::Tls,
            ..
        } = to
        {
            // A phone's TLS connection is the phone's to open (RFC 5626 §5).
            let why = "no TLS connection from the phone".to_owned();
            self.proxy.send_failed(Instant::now(), &to, &why);
            return;
        }
        self.connecting.insert(to.clone(), vec![bytes]);
        let inputs = self.inputs.clone();
        match to {
            Peer::Sip { addr, .. } => {
                tokio::spawn(async move {
                    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                        Ok(Ok(stream)) => {
                            let _ = stream.set_nodelay(true);
                            spawn_stream(stream, to, inputs, false, None);
                        }
                        Ok(Err(e)) => fail(&inputs, to, e.to_string()).await,
                        Err(_) => fail(&inputs, to, "TCP connect timed out".into()).await,
                    }
                });
            }
            Peer::Node(node) => {
                let (usage, tls) = (self.usage.clone(), self.tls.clone());
                tokio::spawn(async move {
                    let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect_node(&usage, &tls, node)).await;
                    match attempt {
                        Ok(Ok(stream)) => spawn_stream(stream, to, inputs, true, None),
                        Ok(Err(why)) => fail(&inputs, to, why).await,
                        Err(_) => fail(&inputs, to, "connecting to the node timed out".into()).await,
                    }
                });
            }
        }
    }
}

async fn fail(inputs: &mpsc::Sender<Input>, peer: Peer, why: String) {
    let _ = inputs.send(Input::ConnectFailed { peer, why }).await;
}

/// The routes of a resolution whose destination list ends in a Node-ID.
fn resolved(r: crate::usage::Resolution) -> Resolved {
    Resolved {
        routes: r
            .routes
            .into_iter()
            .filter_map(|route| {
                Some(ResolvedRoute {
                    node: route.target()?,
                    aor: route.aor,
                })
            })
            .collect(),
        external: r.external,
    }
}

fn lookup_error(e: crate::usage::ResolveError) -> LookupError {
    use crate::usage::ResolveError as R;
    match e {
        R::NotFound => LookupError::NotFound,
        R::NotReady => LookupError::NotReady,
        other => LookupError::Failed(other.to_string()),
    }
}

/// AppAttach to `node` for SIPS, then TLS to an address it answered with; the
/// certificate must carry `node` or the connection is not used (RFC 7904 §5.1).
async fn connect_node(
    usage: &SipUsage,
    tls: &TlsLinks,
    node: NodeId,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let addrs = usage
        .connect_addresses(node, APP_SIPS)
        .await
        .map_err(|e| format!("AppAttach failed: {e}"))?;
    let mut last = String::from("the AppAttach answer has no address");
    for addr in addrs {
        let tcp = match TcpStream::connect(addr).await {
            Ok(t) => t,
            Err(e) => {
                last = format!("{addr}: {e}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Ok(name) = ServerName::try_from("reload.invalid") else {
            return Err("server name".into());
        };
        let stream = match tls.connector().connect(name, tcp).await {
            Ok(s) => s,
            Err(e) => {
                last = format!("{addr}: TLS: {e}");
                continue;
            }
        };
        let chain = peer_chain(stream.get_ref().1.peer_certificates());
        match tls.security().verify_peer(&chain, Some(node)) {
            Ok(_) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// The far end's certificate chain, DER, end entity first. Checked after the
/// handshake by `verify_peer`: a resumed TLS 1.3 session skips the verifier.
fn peer_chain(certs: Option<&[rustls::pki_types::CertificateDer<'static>]>) -> Vec<Vec<u8>> {
    certs.unwrap_or_default().iter().map(|c| c.as_ref().to_vec()).collect()
}

async fn read_udp(socket: Arc<UdpSocket>, inputs: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; crate::message::MAX_MESSAGE_SIZE];
    loop {
        let Ok((n, addr)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        // Stray CRLFs are not messages; STUN keep-alives get their answer here
        // (RFC 5626 §3.5.2, §4.4.2).
        if buf[..n].iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            continue;
        }
        if crate::keepalive::is_stun(&buf[..n]) {
            if let Some(resp) = crate::keepalive::binding_response(&buf[..n], addr) {
                let _ = socket.send_to(&resp, addr).await;
            }
            continue;
        }
        let from = Peer::Sip {
            transport: Transport::Udp,
            addr,
        };
        if inputs
            .send(Input::Message {
                from,
                bytes: buf[..n].to_vec(),
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn accept_tcp(listener: TcpListener, inputs: mpsc::Sender<Input>) {
    let limit = inbound_limit();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, addr)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer::Sip {
            transport: Transport::Tcp,
            addr,
        };
        spawn_stream(stream, peer, inputs.clone(), false, Some(permit));
    }
}

/// Phones over TLS (RFC 3261 §26.2): the front end's certificate, no client
/// certificate; the phone proves who it is with digest authentication.
async fn accept_phones_tls(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor, inputs: mpsc::Sender<Input>) {
    let limit = inbound_limit();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let Ok((tcp, addr)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (acceptor, inputs) = (acceptor.clone(), inputs.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let peer = Peer::Sip {
                        transport: Transport::Tls,
                        addr,
                    };
                    spawn_stream(stream, peer, inputs, false, Some(permit));
                }
                _ => tracing::debug!(%addr, "phone TLS handshake failed"),
            }
        });
    }
}

async fn accept_tls(listener: TcpListener, tls: TlsLinks, inputs: mpsc::Sender<Input>) {
    let limit = inbound_limit();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let Ok((tcp, remote)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (tls, inputs) = (tls.clone(), inputs.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let handshake = tokio::time::timeout(Duration::from_secs(10), tls.acceptor().accept(tcp)).await;
            let Ok(Ok(stream)) = handshake else {
                tracing::debug!(%remote, "SIP TLS handshake failed");
                return;
            };
            let chain = peer_chain(stream.get_ref().1.peer_certificates());
            match tls.security().verify_peer(&chain, None) {
                Ok((_, node)) => spawn_stream(stream, Peer::Node(node), inputs, true, Some(permit)),
                Err(e) => tracing::info!(%remote, error = %e, "SIP TLS peer refused"),
            }
        });
    }
}

/// Most inbound connections (phones on TCP, phones on TLS, other nodes) open
/// at once, each; more wait in the kernel's backlog until one closes.
const MAX_INBOUND: usize = 1024;

type Permit = tokio::sync::OwnedSemaphorePermit;

fn inbound_limit() -> Arc<tokio::sync::Semaphore> {
    Arc::new(tokio::sync::Semaphore::new(MAX_INBOUND))
}

/// Runs a connection: a reader that frames messages for the proxy and answers
/// pings, a writer fed by a channel that pings when idle (`keepalive`).
fn spawn_stream<S>(stream: S, peer: Peer, inputs: mpsc::Sender<Input>, keepalive: bool, permit: Option<Permit>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let pong = tx.clone();
    let closed = tx.clone();
    let (p, i) = (peer.clone(), inputs.clone());
    tokio::spawn(async move {
        // An inbound connection counts against the front end's limit while it lives.
        let _permit = permit;
        let _ = i
            .send(Input::Connected {
                peer: p.clone(),
                writer: tx,
            })
            .await;
        let mut framer = StreamFramer::default();
        let mut buf = vec![0u8; 16 * 1024];
        'read: loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            loop {
                match framer.next_frame() {
                    Ok(Some(Frame::Message(bytes))) => {
                        if i.send(Input::Message { from: p.clone(), bytes }).await.is_err() {
                            break 'read;
                        }
                    }
                    Ok(Some(Frame::Ping)) => {
                        let _ = pong.try_send(PONG.to_vec());
                    }
                    Ok(Some(Frame::Pong)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(peer = ?p, error = %e, "closing SIP connection");
                        break 'read;
                    }
                }
            }
        }
        let _ = i
            .send(Input::Closed {
                peer: p,
                writer: closed,
            })
            .await;
    });
    tokio::spawn(async move {
        loop {
            let next = if keepalive {
                match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => Some(PING.to_vec()),
                }
            } else {
                rx.recv().await
            };
            let Some(bytes) = next else { break };
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
