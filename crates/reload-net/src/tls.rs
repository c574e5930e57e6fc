//! TLS/TCP with the framing header, No-ICE (RFC 6940 §6.6.5): the link protocol
//! of overlays whose configuration says `TLS-TCP-FH-NO-ICE`.
//!
//! Both ends present their overlay certificate; each checks that the other's
//! chains to the overlay's root and carries the Node-ID it expects (§6.6, §11.3).
//! rustls does the TLS (1.3, or 1.2 if the far end wants it), with our own
//! certificate verifiers because RELOAD certificates name Node-IDs in `reload:`
//! URIs, not host names. With `SSLKEYLOGFILE` set, secrets are logged so that a
//! capture can be decrypted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reload_wire::{FramedMessage, NodeId};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::framed::{FramedEvent, FramedLink, Reliability};
use crate::link::{LinkClosed, LinkConn, LinkError, LinkEvent, SEND_QUEUE};
use crate::security::LinkSecurity;

/// How long a TCP connect plus TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most inbound TLS handshakes in progress at once (as for DTLS,
/// [`crate::dtls::MAX_HANDSHAKING`]).
pub const MAX_HANDSHAKING: usize = crate::dtls::MAX_HANDSHAKING;

/// The name a TLS client puts in SNI. RELOAD peers are named by Node-ID, which the
/// verifier checks; the host name means nothing (§6.6).
const SERVER_NAME: &str = "reload.invalid";

/// rustls's view of the overlay's trust: the chain must validate against the
/// overlay's anchors; which Node-ID it must carry is checked once the handshake is
/// done (the same verifier serves every connection).
#[derive(Debug)]
struct OverlayVerifier {
    security: LinkSecurity,
    algorithms: WebPkiSupportedAlgorithms,
}

impl OverlayVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        let chain: Vec<Vec<u8>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        self.security
            .verify_peer(&chain, None)
            .map(|_| ())
            .map_err(|e| rustls::Error::General(e.to_string()))
    }
}

impl ServerCertVerifier for OverlayVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for OverlayVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The TLS side of one node: a client and a server configuration that both present
/// the node's certificate and demand the peer's.
#[derive(Clone)]
pub struct TlsLinks {
    security: LinkSecurity,
    connector: TlsConnector,
    acceptor: TlsAcceptor,
    max_message_size: usize,
}

impl std::fmt::Debug for TlsLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLinks")
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl TlsLinks {
    /// TLS configurations for `security`; messages over `max_message_size` are refused.
    pub fn new(security: LinkSecurity, max_message_size: usize) -> Result<Self, LinkError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(OverlayVerifier {
            security: security.clone(),
            algorithms: provider.signature_verification_algorithms,
        });
        let chain: Vec<CertificateDer<'static>> = security
            .credentials()
            .chain()
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        let key = || {
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                security.credentials().private_key().pkcs8_der().to_vec(),
            ))
        };
        let keylog: Option<Arc<dyn rustls::KeyLog>> = security
            .keylog_path()
            .map(|p| Arc::new(crate::keylog::KeyLogFile::open(p)) as Arc<dyn rustls::KeyLog>);

        let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_setup)?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_auth_cert(chain.clone(), key())
            .map_err(tls_setup)?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_setup)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key())
            .map_err(tls_setup)?;
        // Resumption for as many peers as a peer has links, not rustls's default of
        // 256 (the caches are allocated whole, and a peer has dozens of links).
        client.resumption = rustls::client::Resumption::in_memory_sessions(SESSION_CACHE);
        server.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
        server.send_tls13_tickets = 1;
        if let Some(k) = keylog {
            client.key_log = k.clone();
            server.key_log = k;
        }
        Ok(TlsLinks {
            security,
            connector: TlsConnector::from(Arc::new(client)),
            acceptor: TlsAcceptor::from(Arc::new(server)),
            max_message_size,
        })
    }

    /// The link security: credentials and trust anchors.
    pub fn security(&self) -> &LinkSecurity {
        &self.security
    }

    /// The TLS client that presents this node's certificate and checks the far
    /// end's against the overlay, for connections that carry something other
    /// than RELOAD (an AppAttach's application, RFC 6940 §6.5.2). Check the
    /// Node-ID after the handshake with [`LinkSecurity::verify_peer`].
    pub fn connector(&self) -> &TlsConnector {
        &self.connector
    }

    /// The TLS server side of [`TlsLinks::connector`].
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Opens a link to `remote`, whose certificate must carry `expected` when given.
    pub async fn connect(&self, remote: SocketAddr, expected: Option<NodeId>) -> Result<LinkConn, LinkError> {
        let attempt = async {
            let tcp = TcpStream::connect(remote).await.map_err(LinkError::Io)?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(SERVER_NAME).map_err(|e| LinkError::Handshake(e.to_string()))?;
            let tls = self
                .connector
                .connect(name, tcp)
                .await
                .map_err(|e| LinkError::Handshake(e.to_string()))?;
            let chain = peer_chain(tls.get_ref().1.peer_certificates());
            // Checked again although the verifier ran: a resumed session (TLS 1.3
            // PSK) carries the certificates of the first handshake unverified.
            let (_, peer) = self.security.verify_peer(&chain, expected)?;
            Ok(self.spawn_link(tls, peer, remote, true))
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt)
            .await
            .map_err(|_| LinkError::Timeout)?
    }

    /// Accepts links on `listener` until it fails; each authenticated link goes to
    /// `inbound`. Handshakes run concurrently, each bounded in time.
    pub async fn serve(&self, listener: TcpListener, inbound: mpsc::Sender<LinkConn>) {
        // Each handshake holds a permit: connections opened faster than they
        // authenticate wait in the kernel's backlog instead of piling up tasks.
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKING));
        loop {
            let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                return;
            };
            let (tcp, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "TLS listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let links = self.clone();
            let inbound = inbound.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, links.acceptor.accept(tcp)).await;
                drop(permit);
                let tls = match handshake {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::info!(%remote, error = %e, "TLS link refused");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%remote, "TLS handshake timed out");
                        return;
                    }
                };
                let chain = peer_chain(tls.get_ref().1.peer_certificates());
                // Again after the verifier: see `connect` (resumed sessions).
                match links.security.verify_peer(&chain, None) {
                    Ok((_, peer)) => {
                        let conn = links.spawn_link(tls, peer, remote, false);
                        let _ = inbound.send(conn).await;
                    }
                    Err(e) => tracing::info!(%remote, error = %e, "TLS link refused"),
                }
            });
        }
    }

    fn spawn_link<S>(&self, stream: S, peer: NodeId, remote: SocketAddr, outbound: bool) -> LinkConn
    where
        S: RecordStream + Send + 'static,
    {
        let (send_tx, send_rx) = mpsc::channel(SEND_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(SEND_QUEUE);
        let max = self.max_message_size;
        tokio::spawn(async move {
            let reason = run_stream(stream, max, send_rx, &event_tx).await;
            let _ = event_tx.send(LinkEvent::Closed(reason)).await;
        });
        LinkConn {
            peer,
            remote,
            outbound,
            send: send_tx,
            events: event_rx,
            mtu: None,
        }
    }
}

fn tls_setup(e: rustls::Error) -> LinkError {
    LinkError::Setup(e.to_string())
}

fn peer_chain(certs: Option<&[CertificateDer<'static>]>) -> Vec<Vec<u8>> {
    certs.unwrap_or_default().iter().map(|c| c.as_ref().to_vec()).collect()
}

/// TLS sessions remembered for resumption, each way.
const SESSION_CACHE: usize = 64;

/// Bytes a link reads at a time (rustls's own read size).
const READ_SIZE: usize = 4096;

thread_local! {
    /// The buffer every link on this thread reads its plaintext into before
    /// keeping just the bytes that came. A peer holds dozens of mostly idle links;
    /// one read buffer per link would be idle memory on each of them.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_SIZE]);
}

/// Reads what `stream` has (up to [`READ_SIZE`] bytes) and appends it to `buf`;
/// `Ok(0)` at the end of the stream. The thread's [`READ_BUF`] is borrowed only
/// within one poll, so links never hold it across an await.
async fn read_into<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    std::future::poll_fn(|cx| {
        READ_BUF.with_borrow_mut(|scratch| {
            let mut read = tokio::io::ReadBuf::new(scratch);
            match std::pin::Pin::new(&mut *stream).poll_read(cx, &mut read) {
                std::task::Poll::Ready(Ok(())) => {
                    buf.extend_from_slice(read.filled());
                    std::task::Poll::Ready(Ok(read.filled().len()))
                }
                std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => std::task::Poll::Pending,
            }
        })
    })
    .await
}

/// Messages queued for a link that are framed and written together at most.
const BATCH: usize = 32;

/// Moves frames between a byte stream and the link's channels until either side
/// ends; returns why.
async fn run_stream<S>(
    mut stream: S,
    max_message_size: usize,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    events: &mpsc::Sender<LinkEvent>,
) -> LinkClosed
where
    S: RecordStream,
{
    let mut framed = FramedLink::new(Reliability::Stream, max_message_size, Instant::now());
    // Bytes read but not yet cut into frames: usually none between reads, as a
    // read mostly brings whole frames. It grows only as far as the frame being
    // read needs and gives the space back once empty: a peer holds dozens of
    // mostly idle links, so what each keeps idle is most of a peer's memory.
    let mut buf: Vec<u8> = Vec::new();
    // The largest frame a well-behaved peer sends (§6.6: max-message-size).
    let max_frame = max_message_size + reload_wire::framing::DATA_FRAME_OVERHEAD;
    loop {
        if let Err(e) = write_frames(&mut stream, &mut framed).await {
            return LinkClosed::Io(e.to_string());
        }
        while let Some(ev) = framed.poll_event() {
            match ev {
                FramedEvent::Rtt(rtt) => {
                    let _ = events.try_send(LinkEvent::Rtt(rtt));
                }
                FramedEvent::Suspect => {
                    let _ = events.try_send(LinkEvent::Suspect);
                }
                FramedEvent::Recovered => {}
                FramedEvent::Failed(_) => return LinkClosed::Unreachable,
            }
        }
        let deadline = framed.poll_timeout().map(tokio::time::Instant::from_std);
        let timer = crate::link::sleep_until(deadline);
        if buf.is_empty() {
            buf = Vec::new();
        }
        tokio::select! {
            msg = outgoing.recv() => match msg {
                Some(m) => {
                    // Take what else is already queued too, so it goes out in one write.
                    let now = Instant::now();
                    for m in std::iter::once(m).chain(std::iter::from_fn(|| outgoing.try_recv().ok()).take(BATCH)) {
                        if let Err(e) = framed.send(now, m) {
                            tracing::debug!(error = %e, "message not sent");
                        }
                    }
                }
                None => {
                    let _ = stream.shutdown().await;
                    return LinkClosed::Local;
                }
            },
            read = read_into(&mut stream, &mut buf) => match read {
                Ok(0) => return LinkClosed::Remote,
                Ok(_) => {
                    if let Err(reason) = cut_frames(&mut buf, max_frame, &mut framed, events).await {
                        return reason;
                    }
                }
                Err(e) => return LinkClosed::Io(e.to_string()),
            },
            () = timer => framed.handle_timeout(Instant::now()),
        }
    }
}

/// A TLS stream whose session takes records to send without writing each to the
/// socket at once, so that several go out in one write.
pub(crate) trait RecordStream: AsyncRead + AsyncWrite + Unpin {
    /// Encrypts what it can of `data` into the session's outgoing buffer as
    /// records of their own, without writing to the socket; returns how many bytes
    /// it took, 0 when the buffer is full (rustls holds at most 64 KiB).
    fn queue_records(&mut self, data: &[u8]) -> std::io::Result<usize>;
}

impl<IO: AsyncRead + AsyncWrite + Unpin> RecordStream for tokio_rustls::client::TlsStream<IO> {
    fn queue_records(&mut self, data: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut self.get_mut().1.writer(), data)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> RecordStream for tokio_rustls::server::TlsStream<IO> {
    fn queue_records(&mut self, data: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut self.get_mut().1.writer(), data)
    }
}

/// Writes whatever the framing layer queued (data frames and acks) in one system
/// call where it can: a held ack and the answer it rides with reach the far end
/// together and wake it once. Each frame is a TLS record of its own, because
/// Wireshark's RELOAD dissector reads one frame from each record.
async fn write_frames<S: RecordStream>(stream: &mut S, framed: &mut FramedLink) -> std::io::Result<()> {
    let mut queued = false;
    while let Some(frame) = framed.poll_frame() {
        let mut rest = frame.as_slice();
        while !rest.is_empty() {
            match stream.queue_records(rest)? {
                // The session's buffer is full: write it out, then go on.
                0 => stream.flush().await?,
                n => rest = &rest[n..],
            }
            queued = true;
        }
    }
    if queued {
        stream.flush().await?;
    }
    Ok(())
}

/// Takes every whole frame off the front of `buf` and hands its message up.
async fn cut_frames(
    buf: &mut Vec<u8>,
    max_frame: usize,
    framed: &mut FramedLink,
    events: &mpsc::Sender<LinkEvent>,
) -> Result<(), LinkClosed> {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let len = match FramedMessage::frame_len(rest) {
            Ok(Some(len)) => len,
            Ok(None) => break,
            Err(e) => return Err(LinkClosed::Protocol(e.to_string())),
        };
        // §6.6: a message over max-message-size closes the link; we know from the
        // header alone, before the body arrives.
        if len > max_frame {
            return Err(LinkClosed::TooLarge);
        }
        if rest.len() < len {
            break;
        }
        match framed.handle_frame(Instant::now(), &rest[..len]) {
            Ok(Some(message)) => {
                if events.send(LinkEvent::Message(message)).await.is_err() {
                    return Err(LinkClosed::Local);
                }
            }
            Ok(None) => {}
            Err(e) => return Err(LinkClosed::Protocol(e.to_string())),
        }
        start += len;
    }
    buf.drain(..start);
    Ok(())
}
