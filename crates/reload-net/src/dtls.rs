//! DTLS/UDP with simple reliability, No-ICE (RFC 6940 §6.6.4, §6.6.6): the link
//! protocol of overlays whose configuration says `DTLS-UDP-SR-NO-ICE`.
//!
//! One [`DtlsEndpoint`] per node owns one UDP socket bound to the node's address.
//! Datagrams are sorted by source address to per-peer DTLS 1.2 sessions (RFC 6347),
//! each in its own tokio task. OpenSSL does the DTLS; it is driven without unsafe
//! code through an in-memory datagram adapter ([`DatagramPipe`]): the task pushes
//! each received datagram into it, lets OpenSSL read, and sends whatever OpenSSL
//! wrote, one datagram per write.
//!
//! Authentication is mutual (§6.6, §6.5.1.13: "The server MUST request TLS client
//! authentication"): each end presents its overlay certificate and checks that the
//! other's chains to the overlay's root and carries the Node-ID it expects. OpenSSL
//! has no trust store of ours; the check is [`LinkSecurity::verify_peer`], run in
//! the handshake (so a refused peer sees a fatal alert, not a link that closes at
//! once) and again on the finished session's certificates before a link is handed
//! to the runtime.
//!
//! Once the handshake is done, RELOAD messages travel in the framing header with
//! the stop-and-wait sender of §6.6.3.1 ([`FramedLink`] with
//! [`Reliability::SimpleReliability`]): one data frame per DTLS record. A message
//! larger than the link MTU still goes in one record (and IP fragments it); the core
//! fragments per §6.7 because each [`LinkConn`] reports its MTU. A record carries at
//! most 2^14 bytes, so messages above [`MAX_LINK_MESSAGE`] cannot cross a DTLS
//! link unfragmented at all.
//!
//! Choices:
//! - DTLS 1.2 only (OpenSSL 3.0 has no DTLS 1.3), ECDHE key exchange with AEAD
//!   suites, ECDSA or RSA certificates; no session resumption, so that every link
//!   presents and checks a certificate.
//! - Cookies (RFC 6347 §4.2.1): the server answers a ClientHello with a
//!   HelloVerifyRequest carrying a keyed hash of the client's address, so a spoofed
//!   source address cannot make us send our certificate flight to a victim. The
//!   session state already exists at that point, which the limits below bound.
//! - Handshake retransmission is OpenSSL's own timer (1 s, doubling), which fires
//!   inside `SSL_do_handshake` once expired; handshaking sessions are poked every
//!   [`HANDSHAKE_TICK`].
//! - A ClientHello of epoch 0 on an address whose session is established is a new
//!   association from a restarted peer (RFC 6347 §4.2.8). It gets a second session;
//!   the old one lives until the new handshake completes (so a spoofed ClientHello
//!   cannot break a link), then closes as [`LinkClosed::Remote`].
//! - Bounded everything: [`MAX_SESSIONS`], [`MAX_HANDSHAKING`], datagrams of at
//!   most 65535 bytes, a bounded queue per session (datagrams beyond it are
//!   dropped, as the network would).
//! - No keepalives (§6.6.6): an idle link to a vanished peer is noticed when the
//!   next message is not acknowledged.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslRef, SslSessionCacheMode, SslStream,
    SslVerifyMode, SslVersion,
};
use openssl::x509::{X509, X509StoreContextRef};
use reload_wire::NodeId;
use reload_wire::framing::DATA_FRAME_OVERHEAD;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::framed::{FramedError, FramedEvent, FramedLink, Reliability};
use crate::keylog::KeyLogFile;
use crate::link::{LinkClosed, LinkConn, LinkError, LinkEvent, SEND_QUEUE};
use crate::security::{LinkSecurity, PeerAuthError};

/// How long a DTLS handshake (and the peer check) may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a handshaking session lets OpenSSL's retransmission timer fire.
pub const HANDSHAKE_TICK: Duration = Duration::from_millis(100);

/// The largest UDP payload a handshake flight is cut to (OpenSSL's DTLS MTU): fits
/// the IPv6 minimum MTU of 1280 less the IPv6 and UDP headers.
pub const DTLS_MTU: usize = 1200;

/// What a DTLS 1.2 record adds to its content with the suites we allow: 13 bytes of
/// header, and for AES-GCM an 8-byte explicit nonce and a 16-byte tag (ChaCha20-
/// Poly1305 needs 16 in all).
pub const RECORD_OVERHEAD: usize = 13 + 8 + 16;

/// The MTU a DTLS link reports in [`LinkConn::mtu`]: the largest RELOAD message that
/// fits one datagram of [`DTLS_MTU`] with its record and data-frame headers. The
/// core fragments larger messages to this size (§6.7).
pub const LINK_MTU: usize = DTLS_MTU - RECORD_OVERHEAD - DATA_FRAME_OVERHEAD;

/// The largest content of one DTLS record (2^14, RFC 6347 §4.1 by way of RFC 5246
/// §6.2.1).
pub const MAX_RECORD_PAYLOAD: usize = 1 << 14;

/// The largest RELOAD message a DTLS link carries: one data frame per record.
pub const MAX_LINK_MESSAGE: usize = MAX_RECORD_PAYLOAD - DATA_FRAME_OVERHEAD;

/// The most sessions (handshaking or established) an endpoint keeps.
pub const MAX_SESSIONS: usize = 4096;

/// The most sessions an endpoint lets handshake at once.
pub const MAX_HANDSHAKING: usize = 256;

/// The largest datagram read off the socket.
pub const MAX_DATAGRAM: usize = 65535;

/// Datagrams a session's queue holds; beyond that they are dropped.
const SESSION_QUEUE: usize = 64;

/// Inbound links waiting for the runtime to take them.
const ACCEPT_QUEUE: usize = 64;

/// Messages a link takes from the runtime's queue into its own (the rest wait in
/// the bounded [`LinkConn::send`] channel, which pushes back on the runtime).
const LOCAL_QUEUE: usize = 8;

/// Records read in one go before the task looks at its other duties.
const MAX_READS_PER_WAKE: usize = 64;

/// The ECDHE suites with AEAD ciphers, for ECDSA and RSA certificates.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
                       ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
                       ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// An in-memory datagram transport for OpenSSL: reads take the datagrams the
/// session received, one per read; each write is one datagram to send.
#[derive(Debug, Default)]
pub struct DatagramPipe {
    incoming: VecDeque<Vec<u8>>,
    outgoing: Vec<Vec<u8>>,
}

impl DatagramPipe {
    /// Queues a received datagram for OpenSSL to read.
    pub fn push_incoming(&mut self, datagram: Vec<u8>) {
        self.incoming.push_back(datagram);
    }

    /// Takes the datagrams OpenSSL wrote, in order.
    pub fn take_outgoing(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outgoing)
    }
}

impl Read for DatagramPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // A datagram longer than OpenSSL's buffer is cut, as a datagram socket
        // would; the record then fails its MAC and is dropped.
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

impl Write for DatagramPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A DTLS/UDP endpoint: one socket, any number of links.
///
/// Dropping it closes every link (each sends close_notify and reports
/// [`LinkClosed::Local`]) and stops accepting new ones.
#[derive(Debug)]
pub struct DtlsEndpoint {
    shared: Arc<Shared>,
    recv_task: JoinHandle<()>,
}

struct Shared {
    socket: UdpSocket,
    local_addr: SocketAddr,
    security: LinkSecurity,
    max_message_size: usize,
    client_ctx: SslContext,
    server_ctx: SslContext,
    addr_index: Index<Ssl, SocketAddr>,
    demux: Mutex<Demux>,
    handshaking: AtomicUsize,
    next_id: AtomicU64,
    accepted: mpsc::Sender<LinkConn>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("local_addr", &self.local_addr)
            .field("handshaking", &self.handshaking)
            .finish_non_exhaustive()
    }
}

/// The sessions, by the far end's address.
#[derive(Default)]
struct Demux {
    sessions: HashMap<SocketAddr, Entry>,
    closed: bool,
}

struct Entry {
    main: Handle,
    /// A new association from the same address while `main` is established
    /// (RFC 6347 §4.2.8).
    candidate: Option<Handle>,
}

struct Handle {
    tx: mpsc::Sender<Vec<u8>>,
    state: Arc<SessionState>,
}

impl Handle {
    fn is_open(&self) -> bool {
        !self.tx.is_closed()
    }
}

#[derive(Debug)]
struct SessionState {
    id: u64,
    established: AtomicBool,
    superseded: AtomicBool,
}

/// What a session is for.
enum Role {
    /// `connect`: hand the link (or the error) back to the caller.
    Outbound {
        expected: Option<NodeId>,
        reply: oneshot::Sender<Result<LinkConn, LinkError>>,
    },
    /// A ClientHello from a new address: hand the link to the accept queue.
    Inbound,
    /// A ClientHello on an address with an established session: replace that
    /// session once the handshake completes.
    Candidate,
}

/// The first record header of a datagram (RFC 6347 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RecordHeader {
    content_type: u8,
    epoch: u16,
    /// The handshake message type, for a handshake record with a body.
    handshake_type: Option<u8>,
}

impl RecordHeader {
    const HANDSHAKE: u8 = 22;
    const CLIENT_HELLO: u8 = 1;

    fn parse(datagram: &[u8]) -> Option<RecordHeader> {
        let header = datagram.get(..13)?;
        // Content types 20..=25 (RFC 5246, RFC 6520) and DTLS major version 254.
        if !(20..=25).contains(&header[0]) || header[1] != 254 {
            return None;
        }
        Some(RecordHeader {
            content_type: header[0],
            epoch: u16::from_be_bytes([header[3], header[4]]),
            handshake_type: datagram.get(13).copied().filter(|_| header[0] == Self::HANDSHAKE),
        })
    }

    /// An unencrypted ClientHello: the start of a new association.
    fn is_client_hello(&self) -> bool {
        self.content_type == Self::HANDSHAKE && self.epoch == 0 && self.handshake_type == Some(Self::CLIENT_HELLO)
    }
}

/// The Ssl ex-data slot holding the far end's address (for cookies). One per
/// process: OpenSSL's ex-data indices are never freed.
fn addr_index() -> Result<Index<Ssl, SocketAddr>, ErrorStack> {
    static INDEX: OnceLock<Result<Index<Ssl, SocketAddr>, ErrorStack>> = OnceLock::new();
    INDEX.get_or_init(Ssl::new_ex_index::<SocketAddr>).clone()
}

/// The cookie for `addr` (RFC 6347 §4.2.1): SHA-256 over a per-endpoint secret and
/// the address, so only whoever receives at that address can echo it.
fn cookie(secret: &[u8; 32], addr: &SocketAddr) -> [u8; 32] {
    let mut input = Vec::with_capacity(32 + 18);
    input.extend_from_slice(secret);
    match addr {
        SocketAddr::V4(a) => input.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => input.extend_from_slice(&a.ip().octets()),
    }
    input.extend_from_slice(&addr.port().to_be_bytes());
    openssl::sha::sha256(&input)
}

/// The OpenSSL context for one role, with our credentials, DTLS 1.2, the cipher
/// suites, no resumption, and key logging if asked for.
fn context(security: &LinkSecurity, server: bool, keylog: Option<&Arc<KeyLogFile>>) -> Result<SslContext, LinkError> {
    let setup = |what: &str, e: ErrorStack| LinkError::Setup(format!("DTLS {what}: {e}"));
    let mut b = SslContextBuilder::new(SslMethod::dtls()).map_err(|e| setup("context", e))?;
    b.set_min_proto_version(Some(SslVersion::DTLS1_2))
        .map_err(|e| setup("version", e))?;
    b.set_max_proto_version(Some(SslVersion::DTLS1_2))
        .map_err(|e| setup("version", e))?;
    b.set_cipher_list(CIPHERS).map_err(|e| setup("ciphers", e))?;
    let credentials = security.credentials();
    let key =
        PKey::private_key_from_pkcs8(credentials.private_key().pkcs8_der()).map_err(|e| setup("private key", e))?;
    b.set_private_key(&key).map_err(|e| setup("private key", e))?;
    let mut chain = credentials.chain().iter();
    let leaf = chain
        .next()
        .ok_or_else(|| LinkError::Setup("no certificate in our credentials".into()))?;
    let leaf = X509::from_der(leaf).map_err(|e| setup("certificate", e))?;
    b.set_certificate(&leaf).map_err(|e| setup("certificate", e))?;
    for der in chain {
        let cert = X509::from_der(der).map_err(|e| setup("chain certificate", e))?;
        b.add_extra_chain_cert(cert)
            .map_err(|e| setup("chain certificate", e))?;
    }
    b.check_private_key().map_err(|e| setup("key and certificate", e))?;
    // Every link presents and checks a certificate: no resumption (§6.6).
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    // We set the MTU ourselves; the adapter has no path MTU to tell.
    let mut options = SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET;
    if server {
        options |= SslOptions::COOKIE_EXCHANGE;
        let mut secret = [0u8; 32];
        openssl::rand::rand_bytes(&mut secret).map_err(|e| setup("cookie secret", e))?;
        let index = addr_index().map_err(|e| setup("ex data", e))?;
        b.set_cookie_generate_cb(move |ssl, out| {
            let addr = ssl.ex_data(index).ok_or_else(ErrorStack::get)?;
            let c = cookie(&secret, addr);
            out.get_mut(..c.len()).ok_or_else(ErrorStack::get)?.copy_from_slice(&c);
            Ok(c.len())
        });
        b.set_cookie_verify_cb(move |ssl, received| {
            ssl.ex_data(index)
                .is_some_and(|addr| received.len() == 32 && openssl::memcmp::eq(&cookie(&secret, addr), received))
        });
    }
    b.set_options(options);
    if let Some(log) = keylog {
        let log = Arc::clone(log);
        b.set_keylog_callback(move |_, line| log.write_line(line));
    }
    Ok(b.build())
}

/// The far end's chain as the finished session has it, end entity first. OpenSSL
/// includes the end entity in the chain on a client but not on a server.
fn peer_chain(ssl: &SslRef) -> Vec<Vec<u8>> {
    let mut chain: Vec<Vec<u8>> = Vec::new();
    if let Some(der) = ssl.peer_certificate().and_then(|c| c.to_der().ok()) {
        chain.push(der);
    }
    for der in ssl
        .peer_cert_chain()
        .into_iter()
        .flatten()
        .filter_map(|c| c.to_der().ok())
    {
        if chain.first() != Some(&der) {
            chain.push(der);
        }
    }
    chain
}

/// OpenSSL's verify callback: OpenSSL knows nothing of our anchors, so whatever
/// it thinks of the chain is ignored, and at the end entity (depth 0, the last
/// call) the chain it built from what the peer sent is checked against the
/// overlay's trust and the expected Node-ID. A refusal aborts the handshake with an
/// alert and leaves its reason in `refusal`.
fn verify_in_handshake(
    security: &LinkSecurity,
    expected: Option<NodeId>,
    refusal: &Mutex<Option<PeerAuthError>>,
    ctx: &X509StoreContextRef,
) -> bool {
    if ctx.error_depth() != 0 {
        return true;
    }
    let mut chain: Vec<Vec<u8>> = ctx
        .chain()
        .into_iter()
        .flatten()
        .filter_map(|c| c.to_der().ok())
        .collect();
    if chain.is_empty()
        && let Some(der) = ctx.current_cert().and_then(|c| c.to_der().ok())
    {
        chain.push(der);
    }
    match security.verify_peer(&chain, expected) {
        Ok(_) => true,
        Err(e) => {
            if let Ok(mut slot) = refusal.lock() {
                *slot = Some(e);
            }
            false
        }
    }
}

impl DtlsEndpoint {
    /// Binds a UDP socket to `addr` and starts serving DTLS on it. The receiver
    /// yields inbound links once their handshake completed and the client's
    /// certificate was verified. Messages above `max_message_size` (the overlay's
    /// `max-message-size`, capped at [`MAX_LINK_MESSAGE`]) are refused both ways.
    pub async fn bind(
        addr: SocketAddr,
        security: LinkSecurity,
        max_message_size: usize,
    ) -> io::Result<(DtlsEndpoint, mpsc::Receiver<LinkConn>)> {
        let keylog = security.keylog_path().map(|p| Arc::new(KeyLogFile::open(p)));
        let invalid = |e: LinkError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let client_ctx = context(&security, false, keylog.as_ref()).map_err(invalid)?;
        let server_ctx = context(&security, true, keylog.as_ref()).map_err(invalid)?;
        let addr_index = addr_index().map_err(io::Error::other)?;
        let socket = UdpSocket::bind(addr).await?;
        let local_addr = socket.local_addr()?;
        let (accepted, accept_rx) = mpsc::channel(ACCEPT_QUEUE);
        let shared = Arc::new(Shared {
            socket,
            local_addr,
            security,
            max_message_size: max_message_size.min(MAX_LINK_MESSAGE),
            client_ctx,
            server_ctx,
            addr_index,
            demux: Mutex::new(Demux::default()),
            handshaking: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            accepted,
        });
        let recv_task = tokio::spawn(recv_loop(Arc::clone(&shared)));
        tracing::debug!(%local_addr, "DTLS endpoint bound");
        Ok((DtlsEndpoint { shared, recv_task }, accept_rx))
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Opens a link to `remote` as the DTLS client: handshake (within
    /// [`HANDSHAKE_TIMEOUT`]), then the server's certificate must validate and,
    /// if `expected` is given, carry that Node-ID. At most one session exists per
    /// far address: a second `connect` to an address already linked fails (§6.5.1.13
    /// settles who connects: the node that sent the Attach request is the server).
    pub async fn connect(&self, remote: SocketAddr, expected: Option<NodeId>) -> Result<LinkConn, LinkError> {
        let (reply, reply_rx) = oneshot::channel();
        {
            let mut demux = self.shared.lock_demux();
            if demux.sessions.get(&remote).is_some_and(|e| e.main.is_open()) {
                return Err(LinkError::Handshake(format!(
                    "a DTLS session with {remote} already exists"
                )));
            }
            let handle = Shared::start_session(
                &self.shared,
                &mut demux,
                remote,
                Role::Outbound { expected, reply },
                None,
            )?;
            demux.sessions.insert(
                remote,
                Entry {
                    main: handle,
                    candidate: None,
                },
            );
        }
        // The session enforces the handshake timeout; this one only guards against
        // a session that vanished without answering.
        match tokio::time::timeout(HANDSHAKE_TIMEOUT + Duration::from_secs(1), reply_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(LinkError::Handshake("the DTLS session ended".into())),
            Err(_) => Err(LinkError::Timeout),
        }
    }

    /// Sessions currently kept (handshaking or established).
    pub fn session_count(&self) -> usize {
        let demux = self.shared.lock_demux();
        demux
            .sessions
            .values()
            .map(|e| usize::from(e.main.is_open()) + e.candidate.as_ref().map_or(0, |c| usize::from(c.is_open())))
            .sum()
    }
}

impl Drop for DtlsEndpoint {
    fn drop(&mut self) {
        self.recv_task.abort();
        let sessions = {
            let mut demux = self.shared.lock_demux();
            demux.closed = true;
            std::mem::take(&mut demux.sessions)
        };
        // Dropping the senders tells every session to close.
        drop(sessions);
    }
}

/// Reads the socket and hands each datagram to its session.
async fn recv_loop(shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match shared.socket.recv_from(&mut buf).await {
            Ok((n, from)) => shared.dispatch(from, &buf[..n]),
            Err(e) => {
                // UDP sockets report some ICMP errors on receive; none is fatal.
                tracing::debug!(error = %e, "DTLS socket receive error");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// Decrements the count of handshaking sessions when a handshake ends either way.
struct HandshakeSlot(Arc<Shared>);

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.0.handshaking.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shared {
    fn lock_demux(&self) -> MutexGuard<'_, Demux> {
        // A panic elsewhere while holding the lock leaves the map consistent (every
        // change is a single insert or remove), so a poisoned lock is still usable.
        self.demux.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Routes one datagram from `from`.
    fn dispatch(self: &Arc<Self>, from: SocketAddr, datagram: &[u8]) {
        let Some(header) = RecordHeader::parse(datagram) else {
            return; // not DTLS
        };
        let mut demux = self.lock_demux();
        if demux.closed {
            return;
        }
        if let Some(entry) = demux.sessions.get_mut(&from) {
            if entry.candidate.as_ref().is_some_and(|c| !c.is_open()) {
                entry.candidate = None;
            }
            if !entry.main.is_open() {
                match entry.candidate.take() {
                    Some(c) => entry.main = c,
                    None => {
                        demux.sessions.remove(&from);
                    }
                }
            }
        }
        let role = match demux.sessions.get(&from) {
            None if header.is_client_hello() => Role::Inbound,
            None => return,
            Some(entry) if entry.main.state.established.load(Ordering::Acquire) && header.epoch == 0 => {
                // Epoch 0 after the handshake: a ClientHello starts a new association
                // (RFC 6347 §4.2.8), which then gets the epoch-0 records. Other epoch-0
                // records are the client's last flight again, because our own last
                // flight was lost: the session answers it by sending that flight again.
                match &entry.candidate {
                    Some(c) => {
                        let _ = c.tx.try_send(datagram.to_vec());
                        return;
                    }
                    None if header.is_client_hello() => Role::Candidate,
                    None => {
                        let _ = entry.main.tx.try_send(datagram.to_vec());
                        return;
                    }
                }
            }
            Some(entry) => {
                // Records of later epochs go to the session and to a new association
                // in progress; each drops what it cannot authenticate.
                let _ = entry.main.tx.try_send(datagram.to_vec());
                if let Some(c) = &entry.candidate {
                    let _ = c.tx.try_send(datagram.to_vec());
                }
                return;
            }
        };
        if self.accepted.is_closed() {
            return; // nobody takes inbound links
        }
        let candidate = matches!(role, Role::Candidate);
        match Shared::start_session(self, &mut demux, from, role, Some(datagram.to_vec())) {
            Ok(handle) if candidate => {
                if let Some(entry) = demux.sessions.get_mut(&from) {
                    entry.candidate = Some(handle);
                }
            }
            Ok(handle) => {
                demux.sessions.insert(
                    from,
                    Entry {
                        main: handle,
                        candidate: None,
                    },
                );
            }
            Err(e) => tracing::debug!(%from, error = %e, "DTLS handshake not started"),
        }
    }

    /// Creates a session for `remote` and spawns its task; the caller files the
    /// handle. Refuses beyond [`MAX_SESSIONS`] and [`MAX_HANDSHAKING`].
    fn start_session(
        this: &Arc<Self>,
        demux: &mut Demux,
        remote: SocketAddr,
        role: Role,
        first: Option<Vec<u8>>,
    ) -> Result<Handle, LinkError> {
        if demux.closed {
            return Err(LinkError::Setup("the DTLS endpoint is closed".into()));
        }
        if demux.sessions.len() >= MAX_SESSIONS {
            demux
                .sessions
                .retain(|_, e| e.main.is_open() || e.candidate.as_ref().is_some_and(Handle::is_open));
            if demux.sessions.len() >= MAX_SESSIONS {
                return Err(LinkError::Setup(format!("{MAX_SESSIONS} DTLS sessions already")));
            }
        }
        if this.handshaking.load(Ordering::Acquire) >= MAX_HANDSHAKING {
            return Err(LinkError::Setup(format!("{MAX_HANDSHAKING} DTLS handshakes already")));
        }
        let expected = match &role {
            Role::Outbound { expected, .. } => *expected,
            Role::Inbound | Role::Candidate => None,
        };
        let refusal = Arc::new(Mutex::new(None));
        let server = !matches!(role, Role::Outbound { .. });
        let mut stream = this
            .new_stream(remote, server, expected, Arc::clone(&refusal))
            .map_err(|e| LinkError::Setup(format!("DTLS session: {e}")))?;
        if let Some(d) = first {
            stream.get_mut().push_incoming(d);
        }
        this.handshaking.fetch_add(1, Ordering::AcqRel);
        let slot = HandshakeSlot(Arc::clone(this));
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let state = Arc::new(SessionState {
            id: this.next_id.fetch_add(1, Ordering::Relaxed),
            established: AtomicBool::new(false),
            superseded: AtomicBool::new(false),
        });
        let session = Session {
            shared: Arc::clone(this),
            remote,
            stream,
            rx,
            state: Arc::clone(&state),
        };
        tokio::spawn(session.run(role, slot, refusal));
        Ok(Handle { tx, state })
    }

    fn new_stream(
        &self,
        remote: SocketAddr,
        server: bool,
        expected: Option<NodeId>,
        refusal: Arc<Mutex<Option<PeerAuthError>>>,
    ) -> Result<SslStream<DatagramPipe>, ErrorStack> {
        let mut ssl = Ssl::new(if server { &self.server_ctx } else { &self.client_ctx })?;
        ssl.set_mtu(u32::try_from(DTLS_MTU).unwrap_or(1200))?;
        ssl.set_ex_data(self.addr_index, remote);
        let security = self.security.clone();
        ssl.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            move |_preverified, ctx| verify_in_handshake(&security, expected, &refusal, ctx),
        );
        if server {
            ssl.set_accept_state();
        } else {
            ssl.set_connect_state();
        }
        SslStream::new(ssl, DatagramPipe::default())
    }

    /// Makes a finished candidate the address's session; the one it replaces
    /// closes. False if the candidate is no longer filed.
    fn promote(&self, remote: SocketAddr, id: u64) -> bool {
        let old = {
            let mut demux = self.lock_demux();
            let Some(entry) = demux.sessions.get_mut(&remote) else {
                return false;
            };
            if entry.main.state.id == id {
                return true; // already promoted (the old session had ended)
            }
            if entry.candidate.as_ref().is_none_or(|c| c.state.id != id) {
                return false;
            }
            let Some(candidate) = entry.candidate.take() else {
                return false;
            };
            std::mem::replace(&mut entry.main, candidate)
        };
        old.state.superseded.store(true, Ordering::Release);
        true
    }
}

/// One DTLS session: its OpenSSL state and the datagrams routed to it.
struct Session {
    shared: Arc<Shared>,
    remote: SocketAddr,
    stream: SslStream<DatagramPipe>,
    rx: mpsc::Receiver<Vec<u8>>,
    state: Arc<SessionState>,
}

impl Session {
    async fn run(mut self, role: Role, slot: HandshakeSlot, refusal: Arc<Mutex<Option<PeerAuthError>>>) {
        let handshake = self.handshake(Instant::now() + HANDSHAKE_TIMEOUT).await;
        drop(slot);
        let expected = match &role {
            Role::Outbound { expected, .. } => *expected,
            Role::Inbound | Role::Candidate => None,
        };
        let verified = match handshake {
            Ok(()) => self
                .shared
                .security
                .verify_peer(&peer_chain(self.stream.ssl()), expected)
                .map_err(LinkError::PeerAuth),
            Err(e) => {
                let refused = refusal.lock().ok().and_then(|mut r| r.take());
                Err(refused.map_or(e, LinkError::PeerAuth))
            }
        };
        let peer = match verified {
            Ok((_, peer)) => peer,
            Err(e) => {
                tracing::debug!(remote = %self.remote, error = %e, "DTLS link refused");
                if handshake_done(&self.stream) {
                    self.close_notify().await;
                }
                if let Role::Outbound { reply, .. } = role {
                    let _ = reply.send(Err(e));
                }
                return;
            }
        };
        self.state.established.store(true, Ordering::Release);
        let (send, outgoing) = mpsc::channel(SEND_QUEUE);
        let (events, events_rx) = mpsc::channel(SEND_QUEUE);
        let conn = LinkConn {
            peer,
            remote: self.remote,
            outbound: matches!(role, Role::Outbound { .. }),
            send,
            events: events_rx,
            mtu: Some(LINK_MTU),
        };
        let handed = match role {
            Role::Outbound { reply, .. } => reply.send(Ok(conn)).is_ok(),
            Role::Inbound => self.hand_over(conn).await,
            Role::Candidate => self.shared.promote(self.remote, self.state.id) && self.hand_over(conn).await,
        };
        if !handed {
            self.close_notify().await;
            return;
        }
        tracing::debug!(remote = %self.remote, %peer, "DTLS link up");
        let reason = self.run_link(outgoing, &events).await;
        tracing::debug!(remote = %self.remote, %peer, ?reason, "DTLS link closed");
        let _ = events.send(LinkEvent::Closed(reason)).await;
    }

    /// Gives an inbound link to the runtime; false if it does not take it in time.
    async fn hand_over(&self, conn: LinkConn) -> bool {
        matches!(
            tokio::time::timeout(HANDSHAKE_TIMEOUT, self.shared.accepted.send(conn)).await,
            Ok(Ok(()))
        )
    }

    /// Runs the handshake until it completes, fails, or `deadline` passes.
    async fn handshake(&mut self, deadline: Instant) -> Result<(), LinkError> {
        let mut tick = tokio::time::interval(HANDSHAKE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let deadline = tokio::time::Instant::from_std(deadline);
        loop {
            let step = self.stream.do_handshake();
            self.flush().await;
            match step {
                Ok(()) => return Ok(()),
                Err(e) if e.code() == ErrorCode::WANT_READ => {}
                Err(e) => return Err(LinkError::Handshake(e.to_string())),
            }
            tokio::select! {
                d = self.rx.recv() => match d {
                    Some(d) => self.stream.get_mut().push_incoming(d),
                    None => return Err(LinkError::Handshake("the DTLS endpoint closed".into())),
                },
                // OpenSSL retransmits a flight from inside do_handshake once its
                // timer has expired.
                _ = tick.tick() => {}
                () = tokio::time::sleep_until(deadline) => return Err(LinkError::Timeout),
            }
        }
    }

    /// Carries RELOAD messages until the link ends; returns why.
    async fn run_link(
        &mut self,
        mut outgoing: mpsc::Receiver<Vec<u8>>,
        events: &mpsc::Sender<LinkEvent>,
    ) -> LinkClosed {
        let mut framed = FramedLink::new(
            Reliability::SimpleReliability,
            self.shared.max_message_size,
            Instant::now(),
        );
        let mut record = vec![0u8; MAX_RECORD_PAYLOAD + 1];
        loop {
            // One data frame (or ack) per record (§6.6.4).
            while let Some(frame) = framed.poll_frame() {
                if let Err(e) = self.stream.ssl_write(&frame) {
                    return LinkClosed::Protocol(e.to_string());
                }
            }
            self.flush().await;
            while let Some(event) = framed.poll_event() {
                match event {
                    FramedEvent::Rtt(rtt) => {
                        let _ = events.try_send(LinkEvent::Rtt(rtt));
                    }
                    FramedEvent::Suspect => {
                        if events.send(LinkEvent::Suspect).await.is_err() {
                            self.close_notify().await;
                            return LinkClosed::Local;
                        }
                    }
                    // The link interface has no "recovered" event yet; the runtime
                    // sees acks resume as messages flowing again.
                    FramedEvent::Recovered => {}
                    FramedEvent::Failed(why) => {
                        tracing::debug!(remote = %self.remote, ?why, "DTLS link failed");
                        // §6.6.3.1: "the sending node SHOULD close the connection".
                        self.close_notify().await;
                        return LinkClosed::Unreachable;
                    }
                }
            }
            let timer = framed.poll_timeout().map(tokio::time::Instant::from_std);
            let sleep = crate::link::sleep_until(timer);
            tokio::select! {
                d = self.rx.recv() => match d {
                    Some(d) => {
                        self.stream.get_mut().push_incoming(d);
                        if let Err(reason) = self.read_records(&mut framed, &mut record, events).await {
                            if reason == LinkClosed::Local {
                                self.close_notify().await;
                            }
                            return reason;
                        }
                    }
                    None if self.state.superseded.load(Ordering::Acquire) => {
                        // The peer made a new association from the same address.
                        return LinkClosed::Remote;
                    }
                    None => {
                        // The endpoint was dropped.
                        self.close_notify().await;
                        return LinkClosed::Local;
                    }
                },
                m = outgoing.recv(), if framed.queued() < LOCAL_QUEUE => match m {
                    Some(m) => match framed.send(Instant::now(), m) {
                        Ok(()) => {}
                        Err(FramedError::TooLarge { size, max }) => {
                            tracing::warn!(remote = %self.remote, size, max, "message too large for a DTLS link; dropped");
                        }
                        Err(e) => tracing::debug!(remote = %self.remote, error = %e, "message not sent"),
                    },
                    None => {
                        self.close_notify().await;
                        return LinkClosed::Local;
                    }
                },
                () = sleep => framed.handle_timeout(Instant::now()),
            }
        }
    }

    /// Reads every record OpenSSL can now decrypt and hands their frames to the
    /// framing layer; messages go up to the runtime.
    async fn read_records(
        &mut self,
        framed: &mut FramedLink,
        record: &mut [u8],
        events: &mpsc::Sender<LinkEvent>,
    ) -> Result<(), LinkClosed> {
        for _ in 0..MAX_READS_PER_WAKE {
            let n = match self.stream.ssl_read(record) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.code() == ErrorCode::WANT_READ => return Ok(()),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => return Err(LinkClosed::Remote),
                Err(e) => return Err(LinkClosed::Protocol(e.to_string())),
            };
            match framed.handle_frame(Instant::now(), &record[..n]) {
                Ok(Some(message)) => {
                    if events.send(LinkEvent::Message(message)).await.is_err() {
                        return Err(LinkClosed::Local);
                    }
                }
                Ok(None) => {}
                // §6.6: a message over max-message-size closes the session.
                Err(FramedError::TooLarge { .. }) => return Err(LinkClosed::TooLarge),
                Err(FramedError::Failed) => return Err(LinkClosed::Unreachable),
                Err(e) => return Err(LinkClosed::Protocol(e.to_string())),
            }
        }
        Ok(())
    }

    /// Sends close_notify (RFC 6347 §4.1: the DTLS end of a connection).
    async fn close_notify(&mut self) {
        let _ = self.stream.shutdown();
        self.flush().await;
    }

    /// Sends what OpenSSL wrote. UDP is best effort: a failed send is a lost
    /// datagram, which the handshake and simple reliability already cope with.
    async fn flush(&mut self) {
        for datagram in self.stream.get_mut().take_outgoing() {
            if let Err(e) = self.shared.socket.send_to(&datagram, self.remote).await {
                tracing::debug!(remote = %self.remote, error = %e, "DTLS datagram not sent");
            }
        }
    }
}

/// Whether the session finished its handshake (so close_notify means something).
fn handshake_done(stream: &SslStream<DatagramPipe>) -> bool {
    stream.ssl().is_init_finished()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_headers_are_recognised() {
        // A ClientHello record: handshake, DTLS 1.0 record version, epoch 0.
        let mut hello = vec![22, 254, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 1];
        hello.resize(53, 0);
        let h = RecordHeader::parse(&hello).expect("DTLS");
        assert!(h.is_client_hello());
        // Application data in epoch 1.
        let data = [23, 254, 253, 0, 1, 0, 0, 0, 0, 0, 5, 0, 10];
        let h = RecordHeader::parse(&data).expect("DTLS");
        assert_eq!(h.epoch, 1);
        assert!(!h.is_client_hello());
        // Not DTLS: STUN, TLS, short.
        assert_eq!(
            RecordHeader::parse(&[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0]),
            None
        );
        assert_eq!(RecordHeader::parse(&[22, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(RecordHeader::parse(&hello[..12]), None);
    }

    #[test]
    fn the_pipe_is_one_datagram_per_call() {
        let mut pipe = DatagramPipe::default();
        let mut buf = [0u8; 4];
        assert_eq!(
            pipe.read(&mut buf).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        pipe.push_incoming(vec![1, 2]);
        pipe.push_incoming(vec![3, 4, 5, 6, 7]);
        assert_eq!(pipe.read(&mut buf).ok(), Some(2));
        assert_eq!(pipe.read(&mut buf).ok(), Some(4));
        assert_eq!(buf, [3, 4, 5, 6]);
        pipe.write_all(&[9]).expect("writes");
        pipe.write_all(&[8, 8]).expect("writes");
        assert_eq!(pipe.take_outgoing(), vec![vec![9], vec![8, 8]]);
        assert!(pipe.take_outgoing().is_empty());
    }

    #[test]
    fn cookies_depend_on_the_address() {
        let secret = [7u8; 32];
        let a: SocketAddr = "192.0.2.1:6084".parse().expect("addr");
        let b: SocketAddr = "192.0.2.1:6085".parse().expect("addr");
        assert_eq!(cookie(&secret, &a), cookie(&secret, &a));
        assert_ne!(cookie(&secret, &a), cookie(&secret, &b));
        assert_ne!(cookie(&secret, &a), cookie(&[8u8; 32], &a));
    }

    #[test]
    fn the_link_mtu_leaves_room_for_headers() {
        assert_eq!(LINK_MTU, 1155);
        assert_eq!(MAX_LINK_MESSAGE, 16376);
    }
}
