//! Overlay links (RFC 6940 §6.6) as the runtime sees them: one authenticated
//! connection to one peer, over which whole RELOAD messages go both ways.
//!
//! Each link protocol (TLS/TCP with the framing header, §6.6.5; DTLS/UDP with
//! simple reliability, §6.6.4 and §6.6.6) runs in its own tokio task and hands the
//! runtime a [`LinkConn`]: a sender for outgoing messages and a receiver of
//! [`LinkEvent`]s. The runtime does not know which protocol is underneath; an ICE
//! agent (the NAT traversal work) slots in below the same interface.

use std::net::SocketAddr;
use std::time::Duration;

use reload_wire::NodeId;
use tokio::sync::mpsc;

/// Messages a link's send queue holds before the runtime has to wait.
pub const SEND_QUEUE: usize = 256;

/// An established, authenticated link.
#[derive(Debug)]
pub struct LinkConn {
    /// The far end's Node-ID, proven by its certificate (§6.6: the peer's Node-ID
    /// must be in the certificate it presented).
    pub peer: NodeId,
    /// The far end's transport address.
    pub remote: SocketAddr,
    /// Whether this side opened the link.
    pub outbound: bool,
    /// Whole RELOAD messages to send. Dropping the sender closes the link.
    pub send: mpsc::Sender<Vec<u8>>,
    /// What arrives on the link; ends with [`LinkEvent::Closed`].
    pub events: mpsc::Receiver<LinkEvent>,
    /// The largest message the link carries unfragmented (a DTLS link's path MTU
    /// less the record and framing overhead), `None` for a stream.
    pub mtu: Option<usize>,
}

/// Something that happened on a link.
#[derive(Debug)]
pub enum LinkEvent {
    /// A whole RELOAD message arrived.
    Message(Vec<u8>),
    /// The link measured a round trip (from the framing header's acks, §6.6.2).
    Rtt(Duration),
    /// The link is likely failing: no acks for an RTO and three retransmissions
    /// (§6.6.3.1), or no acks on a stream for longer than its RTO allows (§6.6.5).
    /// It stays open; [`LinkEvent::Closed`] follows if it does not recover.
    Suspect,
    /// The link is gone; nothing more will arrive.
    Closed(LinkClosed),
}

/// Why a link closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkClosed {
    /// This side closed it (the sender was dropped).
    Local,
    /// The far end closed it (close_notify, FIN).
    Remote,
    /// Every retransmission of a message failed (§6.6.3.1).
    Unreachable,
    /// The far end sent more than `max-message-size` in one message or frame (§6.6).
    TooLarge,
    /// The far end broke the framing or the (D)TLS protocol.
    Protocol(String),
    /// An I/O error on the socket.
    Io(String),
}

/// Why a link could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The socket failed (connection refused, address unreachable ...).
    #[error("connect failed: {0}")]
    Io(#[from] std::io::Error),
    /// The (D)TLS handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The far end's certificate was refused.
    #[error(transparent)]
    PeerAuth(#[from] crate::security::PeerAuthError),
    /// Connect and handshake took longer than allowed.
    #[error("connect timed out")]
    Timeout,
    /// This node's own TLS or DTLS setup is unusable (say, a key the library refuses).
    #[error("link setup: {0}")]
    Setup(String),
}

/// Sleeps until `deadline`, or forever without one: the timer arm of a link task's
/// or the runtime's `select!`, whose state machine may have nothing scheduled.
pub async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
