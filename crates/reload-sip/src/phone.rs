//! A minimal built-in SIP phone (user agent) over UDP.
//!
//! `p2psip demo` and the tests use it to play alice and bob against a local
//! SIP registrar/proxy: it registers (answering Digest challenges, RFC 3261
//! §22), places calls (INVITE with an SDP offer, ACK, in-dialog MESSAGE and
//! BYE, CANCEL) and answers calls by itself (180 Ringing, then 200 OK with an
//! SDP answer after [`PhoneConfig::answer_delay`]). It sends no media.
//!
//! Every request goes to the configured outbound proxy
//! ([`PhoneConfig::proxy`], RFC 3261 §8.1.2); responses go back to where the
//! request came from (RFC 3261 §18.2.2 with `rport`, RFC 3581). Messages are
//! written as text here and parsed with `rsipstack::sip`; URIs taken from
//! the network are copied verbatim and never re-serialized.
//!
//! One background task reads the socket. Responses are matched to client
//! transactions by top Via `branch` and CSeq method (RFC 3261 §17.1.3);
//! requests to server transactions by top Via `branch` and method (§17.2.3).
//! UDP retransmissions follow RFC 3261 §17 with T1 = 500 ms and T2 = 4 s.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rsipstack::sip::{Headers, Method, Request, Response, SipMessage};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::digest::{self, DigestError};

/// RFC 3261 §17.1.1.1: the round-trip time estimate, 500 ms.
pub const T1: Duration = Duration::from_millis(500);
/// RFC 3261 §17.1.2.2: the longest retransmission interval for non-INVITE
/// requests and INVITE responses, 4 s.
pub const T2: Duration = Duration::from_secs(4);
/// Timers B, F, H and the 2xx retransmission limit: 64*T1 (RFC 3261 §17).
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_millis(500 * 64);

/// What the phone calls itself in `User-Agent` / `Server`.
const USER_AGENT: &str = "p2psip-phone";
/// The methods the phone answers (RFC 3261 §20.5).
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, INFO, UPDATE";
/// How many events may wait unread before new ones are dropped.
const EVENT_QUEUE: usize = 1024;

/// How a [`Phone`] is set up.
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// The address of record without scheme, e.g. `alice@overlay.test`
    /// (a leading `sip:` is tolerated).
    pub aor: String,
    /// The Digest password.
    pub password: String,
    /// The Digest user name; `None` means the user part of the AOR.
    pub auth_user: Option<String>,
    /// The outbound proxy and registrar: every request is sent here.
    pub proxy: SocketAddr,
    /// The local address to bind, usually `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// The display name put in `From`.
    pub display: Option<String>,
    /// When answering a call: the time between 180 Ringing and 200 OK.
    pub answer_delay: Duration,
    /// The longest an outgoing INVITE may stay unanswered once a
    /// provisional response came (before one, Timer B applies).
    pub call_timeout: Duration,
}

impl PhoneConfig {
    /// A configuration for `aor` with `password` that uses `proxy`, binding
    /// `127.0.0.1:0`, answering after 100 ms and giving up on unanswered
    /// calls after 60 s.
    pub fn new(aor: impl Into<String>, password: impl Into<String>, proxy: SocketAddr) -> Self {
        Self {
            aor: aor.into(),
            password: password.into(),
            auth_user: None,
            proxy,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            display: None,
            answer_delay: Duration::from_millis(100),
            call_timeout: Duration::from_secs(60),
        }
    }
}

/// Something that happened at the phone, and when.
#[derive(Debug, Clone)]
pub struct PhoneEvent {
    /// When the phone saw it (the datagram's arrival, or the send).
    pub at: Instant,
    /// What happened.
    pub kind: PhoneEventKind,
}

/// The kinds of [`PhoneEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneEventKind {
    /// A new INVITE arrived and 180 Ringing went back.
    IncomingCall {
        /// The Call-ID.
        call_id: String,
        /// The caller's URI from the `From` header.
        from: String,
    },
    /// The phone answered an incoming call with 200 OK.
    Answered {
        /// The Call-ID.
        call_id: String,
    },
    /// The ACK for our 200 OK arrived: the call is up.
    Acked {
        /// The Call-ID.
        call_id: String,
    },
    /// No ACK came for our 200 OK within 64*T1; the phone sent BYE
    /// (RFC 3261 §13.3.1.4).
    AckTimeout {
        /// The Call-ID.
        call_id: String,
    },
    /// A MESSAGE arrived (in a dialog or not) and got 200.
    Message {
        /// The Call-ID.
        call_id: String,
        /// The sender's URI from the `From` header.
        from: String,
        /// The body, as text.
        text: String,
    },
    /// Another request the phone answered with 200 (OPTIONS, INFO, UPDATE,
    /// re-INVITE).
    Request {
        /// The method.
        method: String,
        /// The Call-ID.
        call_id: String,
    },
    /// The other side hung up with BYE (in a call placed or answered here).
    Bye {
        /// The Call-ID.
        call_id: String,
    },
    /// A ringing incoming call was CANCELled; the INVITE got 487.
    Cancelled {
        /// The Call-ID.
        call_id: String,
    },
}

/// Why a phone operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// No final response came in time (Timer B/F, or the call timeout).
    #[error("{0} timed out")]
    Timeout(String),
    /// The final response was not a 2xx.
    #[error("{0} {1}")]
    Status(u16, String),
    /// A challenge could not be answered.
    #[error("digest: {0}")]
    Digest(#[from] DigestError),
    /// A response was unusable.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The phone's background task is gone.
    #[error("phone stopped")]
    Closed,
}

/// The outcome of a successful [`Phone::register`].
#[derive(Debug, Clone)]
pub struct Registered {
    /// The final status code (2xx).
    pub status: u16,
    /// Its reason phrase.
    pub reason: String,
    /// All Contact entries of the 200, verbatim: the bindings the registrar
    /// holds for the AOR (RFC 3261 §10.2.4).
    pub contacts: Vec<String>,
    /// The expiry granted for our contact (its `expires` parameter, else the
    /// `Expires` header).
    pub expires: Option<u32>,
    /// The public GRUU of our contact (`pub-gruu`, RFC 5627 §5.1), if any.
    pub gruu: Option<String>,
    /// The temporary GRUU of our contact (`temp-gruu`), if any.
    pub temp_gruu: Option<String>,
    /// Whether the registrar challenged first.
    pub challenged: bool,
}

/// How long the steps of an outgoing call took, measured from the first
/// INVITE's sending.
#[derive(Debug, Clone, Copy)]
pub struct CallTimings {
    /// When the first INVITE was sent (for an answered call: when it came).
    pub sent: Instant,
    /// Until the first 100 Trying.
    pub trying: Option<Duration>,
    /// Until the first 180 Ringing.
    pub ringing: Option<Duration>,
    /// Until the 2xx.
    pub answered: Option<Duration>,
    /// Whether the INVITE was challenged (401/407) and sent again.
    pub challenged: bool,
}

/// An established call: the dialog state (RFC 3261 §12) and timings.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
    /// The `From` value of our requests (our URI with our tag).
    pub local_header: String,
    /// The `To` value of our requests (the peer's URI with its tag).
    pub remote_header: String,
    /// The CSeq number of the last request we sent in the dialog.
    pub local_cseq: u32,
    /// The peer's Contact URI: the Request-URI of our requests.
    pub remote_target: String,
    /// The route set: Route header values for our requests, in order.
    pub route_set: Vec<String>,
    /// The peer's SDP.
    pub remote_sdp: String,
    /// Timings of the call set-up.
    pub timings: CallTimings,
    /// Credentials the INVITE carried, repeated in the 2xx ACK.
    auth: Option<(String, String)>,
}

/// How [`OutgoingCall::cancel`] ended.
#[derive(Debug, Clone)]
pub struct CancelOutcome {
    /// The final status of the CANCEL (`None` if none was sent because the
    /// INVITE had already ended).
    pub cancel_status: Option<u16>,
    /// The final status of the INVITE: 487 normally; a 2xx if the callee
    /// answered first, in which case the phone ACKed and sent BYE.
    pub invite_status: u16,
    /// Until the first provisional ≥ 180, from the first INVITE.
    pub ringing: Option<Duration>,
}

/// A response the UAS sends, before encoding (see `Inner::response`).
#[derive(Debug, Clone, Copy)]
struct Reply<'a> {
    code: u16,
    reason: &'a str,
    /// The To tag to add when the request's To has none.
    tag: Option<&'a str>,
    /// Whether the response creates a dialog: Record-Route and Contact.
    dialog: bool,
    /// Whether to list the methods we allow.
    allow: bool,
    /// Content type and body.
    body: Option<(&'a str, &'a [u8])>,
}

impl<'a> Reply<'a> {
    fn new(code: u16, reason: &'a str) -> Self {
        Reply {
            code,
            reason,
            tag: None,
            dialog: false,
            allow: false,
            body: None,
        }
    }

    /// 481 (RFC 3261 §12.2.2).
    fn no_dialog() -> Self {
        Reply::new(481, "Call/Transaction Does Not Exist")
    }

    fn tag(self, tag: &'a str) -> Self {
        Reply { tag: Some(tag), ..self }
    }

    fn dialog(self) -> Self {
        Reply { dialog: true, ..self }
    }

    fn allow(self) -> Self {
        Reply { allow: true, ..self }
    }

    fn body(self, content_type: &'a str, body: &'a [u8]) -> Self {
        Reply {
            body: Some((content_type, body)),
            ..self
        }
    }
}

/// A request as received, with what the handlers need first.
struct Received {
    req: Request,
    branch: String,
    call_id: String,
    peer: SocketAddr,
    at: Instant,
}

/// What a handler decided to do once the state lock is released.
enum Action {
    /// Send a datagram.
    Send(Vec<u8>, SocketAddr),
    /// Report an event.
    Emit(Instant, PhoneEventKind),
    /// Retransmit the final response of an INVITE server transaction while
    /// it stays in this state.
    Retransmit(String, ServerInviteState),
    /// Answer the ringing INVITE with this branch after the answer delay.
    Answer(String),
}

/// A request this phone sends, before encoding.
#[derive(Debug, Clone)]
struct OutRequest {
    method: String,
    ruri: String,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    branch: String,
    routes: Vec<String>,
    contact: Option<String>,
    auth: Option<(String, String)>,
    extra: Vec<(String, String)>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// The state of an INVITE server transaction (RFC 3261 §17.2.1, with the
/// §13.3.1.4 2xx retransmission folded in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerInviteState {
    /// 180 sent, not answered yet.
    Proceeding,
    /// 2xx sent, waiting for the ACK.
    Accepted,
    /// A non-2xx final (487, 481) sent, waiting for the ACK.
    Rejected,
    /// ACKed, or given up.
    Done,
}

#[derive(Debug)]
struct ServerInvite {
    call_id: String,
    state: ServerInviteState,
    /// The request, for building the later responses.
    request: Request,
    /// Our To tag.
    tag: String,
    /// The last response sent, resent on retransmissions.
    last: Vec<u8>,
    peer: SocketAddr,
    created: Instant,
}

#[derive(Debug)]
struct Dialog {
    call: Call,
    /// For a dialog we answered: the branch of its INVITE.
    invite_branch: Option<String>,
}

type TxKey = (String, String);
type ResponseTx = mpsc::UnboundedSender<(Response, Instant)>;

#[derive(Default)]
struct State {
    /// Client transactions waiting for responses, by (branch, method).
    pending: HashMap<TxKey, ResponseTx>,
    /// ACKs sent for INVITE finals, by INVITE branch: resent when the final
    /// is retransmitted (RFC 3261 §13.2.2.4, §17.1.1.2).
    acks: HashMap<String, (Vec<u8>, Instant)>,
    /// INVITE server transactions by branch.
    server_invites: HashMap<String, ServerInvite>,
    /// Non-INVITE server transactions: the final response, resent on
    /// retransmissions (RFC 3261 §17.2.2).
    server_other: HashMap<TxKey, (Vec<u8>, Instant)>,
    /// Dialogs by Call-ID.
    dialogs: HashMap<String, Dialog>,
    /// The CSeq of the last REGISTER (RFC 3261 §10.2: one Call-ID, rising
    /// CSeq).
    reg_cseq: u32,
}

struct Inner {
    cfg: PhoneConfig,
    /// The AOR without scheme.
    aor: String,
    user: String,
    domain: String,
    /// Our `sip:user@ip:port`.
    contact: String,
    instance: String,
    reg_call_id: String,
    socket: UdpSocket,
    local: SocketAddr,
    events: mpsc::Sender<PhoneEvent>,
    state: Mutex<State>,
}

/// A SIP phone; see the [module docs](self).
pub struct Phone {
    inner: Arc<Inner>,
    reader: JoinHandle<()>,
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("aor", &self.inner.aor)
            .field("local", &self.inner.local)
            .finish()
    }
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn new_branch() -> String {
    // RFC 3261 §8.1.1.7: the magic cookie marks an RFC 3261 branch.
    format!("z9hG4bK{}", random_hex())
}

/// `"Display" <uri>` with the display name quoted (RFC 3261 §25.1).
fn name_addr(display: Option<&str>, uri: &str) -> String {
    match display {
        Some(d) => {
            let escaped: String = d
                .chars()
                .filter(|c| *c != '\r' && *c != '\n')
                .flat_map(|c| {
                    let esc = (c == '"' || c == '\\').then_some('\\');
                    esc.into_iter().chain(std::iter::once(c))
                })
                .collect();
            format!("\"{escaped}\" <{uri}>")
        }
        None => format!("<{uri}>"),
    }
}

impl Phone {
    /// Binds [`PhoneConfig::bind`] and starts the task that reads the
    /// socket. Events arrive on the returned receiver; when it is not read,
    /// events beyond a queue of 1024 are dropped.
    pub async fn start(cfg: PhoneConfig) -> io::Result<(Phone, mpsc::Receiver<PhoneEvent>)> {
        let aor = cfg
            .aor
            .trim()
            .trim_start_matches("sip:")
            .trim_start_matches("SIP:")
            .to_string();
        let (user, domain) = match aor.split_once('@') {
            Some((u, d)) if !u.is_empty() && !d.is_empty() => (u.to_string(), d.to_string()),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("AOR {aor:?} is not user@domain"),
                ));
            }
        };
        let socket = UdpSocket::bind(cfg.bind).await?;
        let mut local = socket.local_addr()?;
        if local.ip().is_unspecified() {
            // Advertise the address that routes to the proxy.
            let probe = std::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0))?;
            probe.connect(cfg.proxy)?;
            local.set_ip(probe.local_addr()?.ip());
        }
        let host = match local.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let contact = format!("sip:{user}@{host}:{}", local.port());
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        let state = State {
            reg_cseq: rand::random::<u32>() % 10_000,
            ..State::default()
        };
        let r = random_hex();
        let instance = format!(
            "urn:uuid:{}-{}-4{}-a{}-{}",
            &r[..8],
            &r[8..12],
            &r[13..16],
            &random_hex()[..3],
            &random_hex()[..12]
        );
        let inner = Arc::new(Inner {
            aor,
            user,
            domain,
            contact,
            instance,
            reg_call_id: format!("{}@{host}", random_hex()),
            socket,
            local,
            events,
            state: Mutex::new(state),
            cfg,
        });
        let reader = tokio::spawn(reader(inner.clone()));
        Ok((Phone { inner, reader }, rx))
    }

    /// The address the phone's socket is bound to (as advertised).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// Our contact URI, `sip:user@ip:port`.
    pub fn contact(&self) -> &str {
        &self.inner.contact
    }

    /// The AOR, `user@domain`.
    pub fn aor(&self) -> &str {
        &self.inner.aor
    }

    /// The `+sip.instance` URN sent in REGISTER (RFC 5626 §4.1, RFC 5627).
    pub fn instance_id(&self) -> &str {
        &self.inner.instance
    }

    /// REGISTERs our contact for `expires` seconds (0 removes it) at
    /// `sip:DOMAIN` (RFC 3261 §10.2), answering one 401/407 challenge.
    /// Asks for a GRUU (`Supported: gruu` and `+sip.instance`, RFC 5627 §4.1).
    pub async fn register(&self, expires: u32) -> Result<Registered, PhoneError> {
        let inner = &self.inner;
        let cseq = {
            let mut st = inner.state();
            st.reg_cseq = st.reg_cseq.wrapping_add(1);
            st.reg_cseq
        };
        let aor_uri = format!("sip:{}", inner.aor);
        let req = OutRequest {
            method: "REGISTER".into(),
            ruri: format!("sip:{}", inner.domain),
            from: format!(
                "{};tag={}",
                name_addr(inner.cfg.display.as_deref(), &aor_uri),
                random_hex()
            ),
            to: name_addr(None, &aor_uri),
            call_id: inner.reg_call_id.clone(),
            cseq,
            branch: new_branch(),
            routes: Vec::new(),
            contact: Some(format!("<{}>;+sip.instance=\"<{}>\"", inner.contact, inner.instance)),
            auth: None,
            extra: vec![
                ("Expires".into(), expires.to_string()),
                ("Supported".into(), "gruu, path".into()),
            ],
            content_type: None,
            body: Vec::new(),
        };
        let (resp, sent, challenged) = inner.request(req).await?;
        {
            let mut st = inner.state();
            st.reg_cseq = st.reg_cseq.max(sent.cseq);
        }
        let (code, reason) = status(&resp);
        if !(200..300).contains(&code) {
            return Err(PhoneError::Status(code, reason));
        }
        let contacts: Vec<String> = hvals(&resp.headers, "Contact")
            .into_iter()
            .flat_map(split_list)
            .map(str::to_string)
            .collect();
        let ours = contacts
            .iter()
            .find(|c| parse_addr(c).0.eq_ignore_ascii_case(&inner.contact))
            .or_else(|| contacts.first());
        let expires = ours
            .and_then(|c| header_param(c, "expires"))
            .and_then(|e| e.trim().parse().ok())
            .or_else(|| hval(&resp.headers, "Expires").and_then(|e| e.trim().parse().ok()));
        let gruu = ours.and_then(|c| header_param(c, "pub-gruu"));
        let temp_gruu = ours.and_then(|c| header_param(c, "temp-gruu"));
        Ok(Registered {
            status: code,
            reason,
            contacts,
            expires,
            gruu,
            temp_gruu,
            challenged,
        })
    }

    /// Sends an INVITE with an SDP offer to `target` (e.g.
    /// `sip:bob@overlay.test`) and returns at once; the returned handle
    /// waits for the answer or cancels. A background task retransmits the
    /// INVITE (Timer A, RFC 3261 §17.1.1.2) until a provisional response,
    /// gives up after Timer B (64*T1) without one or after
    /// [`PhoneConfig::call_timeout`] with one, answers one 401/407 with
    /// Digest (new CSeq and branch, RFC 3261 §22.2), ACKs non-2xx finals
    /// (§17.1.1.3) and the 2xx (§13.2.2.4).
    pub async fn invite(&self, target: &str) -> Result<OutgoingCall, PhoneError> {
        let inner = &self.inner;
        let target = target.trim();
        if target.is_empty() || target.contains(['\r', '\n', '<', '>']) {
            return Err(PhoneError::Protocol(format!("bad target {target:?}")));
        }
        let call_id = format!("{}@{}", random_hex(), inner.local.ip());
        let req = OutRequest {
            method: "INVITE".into(),
            ruri: target.to_string(),
            from: format!(
                "{};tag={}",
                name_addr(inner.cfg.display.as_deref(), &format!("sip:{}", inner.aor)),
                random_hex()
            ),
            to: name_addr(None, target),
            call_id: call_id.clone(),
            cseq: 1 + rand::random::<u32>() % 10_000,
            branch: new_branch(),
            routes: Vec::new(),
            contact: Some(format!("<{}>", inner.contact)),
            auth: None,
            extra: vec![("Allow".into(), ALLOW.into()), ("Supported".into(), "gruu".into())],
            content_type: Some("application/sdp".into()),
            body: inner.sdp(),
        };
        let current = Arc::new(Mutex::new(req));
        let (tx, rx) = mpsc::unbounded_channel();
        let sent = Instant::now();
        // The driver finishes the transaction (and ACKs) even if the handle
        // is dropped.
        tokio::spawn(drive_invite(self.inner.clone(), current.clone(), tx, sent));
        Ok(OutgoingCall {
            inner: self.inner.clone(),
            call_id,
            updates: rx,
            current,
            sent,
            ringing: None,
            provisional: false,
            final_update: None,
        })
    }

    /// Places a call to `target` and waits until it is answered and ACKed;
    /// see [`invite`](Self::invite). A non-2xx final gives
    /// [`PhoneError::Status`].
    pub async fn call(&self, target: &str) -> Result<Call, PhoneError> {
        self.invite(target).await?.answered().await
    }

    /// Sends MESSAGE with `text` (`text/plain`) in the dialog of `call`
    /// (RFC 3428, RFC 3261 §12.2.1.1), following its route set with the
    /// next CSeq.
    pub async fn message(&self, call: &mut Call, text: &str) -> Result<(), PhoneError> {
        let req = self.inner.in_dialog(call, "MESSAGE", text.as_bytes());
        let (resp, sent, _) = self.inner.request(req).await?;
        call.local_cseq = sent.cseq;
        ok_or_status(&resp)
    }

    /// Sends MESSAGE with `text` outside any dialog to `target` (pager mode,
    /// RFC 3428 §4).
    pub async fn message_to(&self, target: &str, text: &str) -> Result<(), PhoneError> {
        let inner = &self.inner;
        let target = target.trim();
        if target.is_empty() || target.contains(['\r', '\n', '<', '>']) {
            return Err(PhoneError::Protocol(format!("bad target {target:?}")));
        }
        let req = OutRequest {
            method: "MESSAGE".into(),
            ruri: target.to_string(),
            from: format!(
                "{};tag={}",
                name_addr(inner.cfg.display.as_deref(), &format!("sip:{}", inner.aor)),
                random_hex()
            ),
            to: name_addr(None, target),
            call_id: format!("{}@{}", random_hex(), inner.local.ip()),
            cseq: 1,
            branch: new_branch(),
            routes: Vec::new(),
            contact: None,
            auth: None,
            extra: Vec::new(),
            content_type: Some("text/plain".into()),
            body: text.as_bytes().to_vec(),
        };
        let (resp, _, _) = inner.request(req).await?;
        ok_or_status(&resp)
    }

    /// Hangs up `call` with BYE (RFC 3261 §15.1.1), following its route set
    /// with the next CSeq. The dialog ends whatever the answer.
    pub async fn bye(&self, call: &mut Call) -> Result<(), PhoneError> {
        let req = self.inner.in_dialog(call, "BYE", b"");
        self.inner.state().dialogs.remove(&call.call_id);
        let (resp, sent, _) = self.inner.request(req).await?;
        call.local_cseq = sent.cseq;
        ok_or_status(&resp)
    }

    /// A snapshot of the dialog with `call_id`, placed or answered here, to
    /// send [`message`](Self::message) or [`bye`](Self::bye) in it. For an
    /// answered call the CSeq starts afresh in each snapshot: keep using one.
    pub fn dialog(&self, call_id: &str) -> Option<Call> {
        self.inner.state().dialogs.get(call_id).map(|d| d.call.clone())
    }
}

fn status(resp: &Response) -> (u16, String) {
    let code = resp.status_code.code();
    let reason = resp
        .wire_reason
        .clone()
        .unwrap_or_else(|| resp.status_code.text().to_string());
    (code, reason)
}

fn ok_or_status(resp: &Response) -> Result<(), PhoneError> {
    let (code, reason) = status(resp);
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(PhoneError::Status(code, reason))
    }
}

/// A call being set up: see [`Phone::invite`].
#[derive(Debug)]
pub struct OutgoingCall {
    inner: Arc<Inner>,
    call_id: String,
    updates: mpsc::UnboundedReceiver<InviteUpdate>,
    /// The INVITE in flight (after a challenge: the authenticated one).
    current: Arc<Mutex<OutRequest>>,
    sent: Instant,
    ringing: Option<Duration>,
    provisional: bool,
    final_update: Option<InviteUpdate>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("aor", &self.aor).finish()
    }
}

/// What the INVITE driver reports to the [`OutgoingCall`].
#[derive(Debug)]
enum InviteUpdate {
    /// A provisional response: its code and arrival.
    Provisional(u16, Instant),
    /// The 2xx, already ACKed.
    Answered(Box<Call>),
    /// A non-2xx final, already ACKed.
    Rejected(u16, String),
    /// The transaction failed.
    Failed(PhoneError),
}

impl OutgoingCall {
    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Waits for the next update; keeps the first final one.
    async fn next(&mut self) -> Result<(), PhoneError> {
        if self.final_update.is_some() {
            return Ok(());
        }
        match self.updates.recv().await {
            Some(InviteUpdate::Provisional(code, at)) => {
                self.provisional = true;
                if code >= 180 && self.ringing.is_none() {
                    self.ringing = Some(at.saturating_duration_since(self.sent));
                }
                Ok(())
            }
            Some(u) => {
                self.final_update = Some(u);
                Ok(())
            }
            None => Err(PhoneError::Closed),
        }
    }

    /// Waits for 180 Ringing (or any provisional ≥ 180): `true` then,
    /// `false` if the final response came first (it is kept for
    /// [`answered`](Self::answered)).
    pub async fn ringing(&mut self) -> Result<bool, PhoneError> {
        while self.ringing.is_none() && self.final_update.is_none() {
            self.next().await?;
        }
        Ok(self.ringing.is_some())
    }

    /// Waits for the final response: the ACKed call on 2xx,
    /// [`PhoneError::Status`] otherwise.
    pub async fn answered(mut self) -> Result<Call, PhoneError> {
        while self.final_update.is_none() {
            self.next().await?;
        }
        match self.final_update.take() {
            Some(InviteUpdate::Answered(call)) => Ok(*call),
            Some(InviteUpdate::Rejected(code, reason)) => Err(PhoneError::Status(code, reason)),
            Some(InviteUpdate::Failed(e)) => Err(e),
            Some(InviteUpdate::Provisional(..)) | None => Err(PhoneError::Closed),
        }
    }

    /// CANCELs the INVITE (RFC 3261 §9.1): waits for a provisional response
    /// first (a CANCEL must not be sent before one), then sends CANCEL with
    /// the INVITE's Request-URI, Call-ID, From, To, CSeq number, Route and
    /// top Via branch, and waits for the INVITE's final response (487,
    /// ACKed by the transaction). If the callee answered first, the call is
    /// ACKed and ended with BYE.
    pub async fn cancel(mut self) -> Result<CancelOutcome, PhoneError> {
        while !self.provisional && self.final_update.is_none() {
            self.next().await?;
        }
        let mut cancel_status = None;
        if self.final_update.is_none() {
            let invite = lock(&self.current).clone();
            let cancel = OutRequest {
                method: "CANCEL".into(),
                contact: None,
                auth: None,
                extra: Vec::new(),
                content_type: None,
                body: Vec::new(),
                ..invite
            };
            // RFC 3261 §9.1: CANCEL is not challenged or resubmitted.
            match self.inner.non_invite_tx(&cancel).await {
                Ok((resp, _)) => cancel_status = Some(resp.status_code.code()),
                Err(PhoneError::Timeout(_)) => {}
                Err(e) => return Err(e),
            }
            // RFC 3261 §9.1: after 64*T1 without a final response to the
            // INVITE, the client transaction is given up.
            let wait = tokio::time::timeout(TRANSACTION_TIMEOUT, async {
                while self.final_update.is_none() {
                    self.next().await?;
                }
                Ok::<(), PhoneError>(())
            })
            .await;
            match wait {
                Ok(r) => r?,
                Err(_) => return Err(PhoneError::Timeout("INVITE after CANCEL".into())),
            }
        }
        let ringing = self.ringing;
        let invite_status = match self.final_update.take() {
            Some(InviteUpdate::Answered(call)) => {
                let mut call = *call;
                let code = 200;
                let phone_inner = self.inner.clone();
                let req = phone_inner.in_dialog(&mut call, "BYE", b"");
                phone_inner.state().dialogs.remove(&call.call_id);
                let _ = phone_inner.request(req).await;
                code
            }
            Some(InviteUpdate::Rejected(code, _)) => code,
            Some(InviteUpdate::Failed(e)) => return Err(e),
            Some(InviteUpdate::Provisional(..)) | None => return Err(PhoneError::Closed),
        };
        Ok(CancelOutcome {
            cancel_status,
            invite_status,
            ringing,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a client transaction's entry when the waiting side is done.
struct PendingGuard<'a> {
    inner: &'a Inner,
    key: TxKey,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.inner.state().pending.remove(&self.key);
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn emit(&self, at: Instant, kind: PhoneEventKind) {
        if self.events.try_send(PhoneEvent { at, kind }).is_err() {
            tracing::debug!("phone {}: event queue full or closed", self.aor);
        }
    }

    async fn send_to(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.send_to(bytes, to).await {
            tracing::debug!("phone {}: send to {to} failed: {e}", self.aor);
        }
    }

    /// A tiny SDP (RFC 4566) offering or accepting PCMU audio.
    fn sdp(&self) -> Vec<u8> {
        let (net, ip) = match self.local.ip() {
            IpAddr::V4(ip) => ("IP4", ip.to_string()),
            IpAddr::V6(ip) => ("IP6", ip.to_string()),
        };
        // No media is sent; the port just has to be a plausible even one.
        let port = (self.local.port() & !1).saturating_add(2).max(2);
        let sess = rand::random::<u32>();
        format!(
            "v=0\r\no=- {sess} {sess} IN {net} {ip}\r\ns=-\r\nc=IN {net} {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        .into_bytes()
    }

    /// The wire form of `r` (RFC 3261 §8.1.1, §20).
    fn encode(&self, r: &OutRequest) -> Vec<u8> {
        let host = match self.local.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let mut s = format!("{} {} SIP/2.0\r\n", r.method, r.ruri);
        // RFC 3581: ask for the response to come back to our source port.
        s.push_str(&format!(
            "Via: SIP/2.0/UDP {host}:{};branch={};rport\r\n",
            self.local.port(),
            r.branch
        ));
        s.push_str("Max-Forwards: 70\r\n");
        for route in &r.routes {
            s.push_str(&format!("Route: {route}\r\n"));
        }
        s.push_str(&format!("From: {}\r\n", r.from));
        s.push_str(&format!("To: {}\r\n", r.to));
        s.push_str(&format!("Call-ID: {}\r\n", r.call_id));
        s.push_str(&format!("CSeq: {} {}\r\n", r.cseq, r.method));
        if let Some(c) = &r.contact {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some((name, value)) = &r.auth {
            s.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in &r.extra {
            s.push_str(&format!("{name}: {value}\r\n"));
        }
        s.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
        if let Some(ct) = &r.content_type {
            s.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n", r.body.len()));
        let mut bytes = s.into_bytes();
        bytes.extend_from_slice(&r.body);
        bytes
    }

    /// A response to `req` (RFC 3261 §8.2.6): Via, From, Call-ID and CSeq
    /// copied, To copied with `tag` added when it has none; for a
    /// dialog-creating response also Record-Route (§12.1.1) and Contact.
    fn response(&self, req: &Request, reply: Reply<'_>) -> Vec<u8> {
        let Reply {
            code,
            reason,
            tag,
            dialog,
            allow,
            body,
        } = reply;
        let mut s = format!("SIP/2.0 {code} {reason}\r\n");
        for via in hvals(&req.headers, "Via") {
            s.push_str(&format!("Via: {via}\r\n"));
        }
        if dialog {
            for rr in hvals(&req.headers, "Record-Route") {
                s.push_str(&format!("Record-Route: {rr}\r\n"));
            }
        }
        if let Some(from) = hval(&req.headers, "From") {
            s.push_str(&format!("From: {from}\r\n"));
        }
        if let Some(to) = hval(&req.headers, "To") {
            match tag {
                Some(t) if header_param(to, "tag").is_none() => {
                    s.push_str(&format!("To: {to};tag={t}\r\n"));
                }
                _ => s.push_str(&format!("To: {to}\r\n")),
            }
        }
        if let Some(id) = hval(&req.headers, "Call-ID") {
            s.push_str(&format!("Call-ID: {id}\r\n"));
        }
        if let Some(cseq) = hval(&req.headers, "CSeq") {
            s.push_str(&format!("CSeq: {cseq}\r\n"));
        }
        if dialog {
            s.push_str(&format!("Contact: <{}>\r\n", self.contact));
        }
        if allow {
            s.push_str(&format!("Allow: {ALLOW}\r\n"));
        }
        s.push_str(&format!("Server: {USER_AGENT}\r\n"));
        let body = match body {
            Some((ct, b)) => {
                s.push_str(&format!("Content-Type: {ct}\r\n"));
                b
            }
            None => &[],
        };
        s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = s.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// A request in the dialog of `call` with the next CSeq (RFC 3261
    /// §12.2.1.1): Request-URI the remote target and Route the route set,
    /// or, when the first route is a strict router (no `lr`), Request-URI
    /// that route and the remote target appended to the rest.
    fn in_dialog(&self, call: &mut Call, method: &str, body: &[u8]) -> OutRequest {
        call.local_cseq = call.local_cseq.wrapping_add(1);
        self.dialog_request(call, method, call.local_cseq, new_branch(), body)
    }

    fn dialog_request(&self, call: &Call, method: &str, cseq: u32, branch: String, body: &[u8]) -> OutRequest {
        let (ruri, routes) = match call.route_set.first() {
            Some(first) if !is_loose_route(first) => {
                let mut routes: Vec<String> = call.route_set[1..].to_vec();
                routes.push(format!("<{}>", call.remote_target));
                (parse_addr(first).0.to_string(), routes)
            }
            _ => (call.remote_target.clone(), call.route_set.clone()),
        };
        OutRequest {
            method: method.into(),
            ruri,
            from: call.local_header.clone(),
            to: call.remote_header.clone(),
            call_id: call.call_id.clone(),
            cseq,
            branch,
            routes,
            contact: None,
            auth: None,
            extra: Vec::new(),
            content_type: (!body.is_empty()).then(|| "text/plain".to_string()),
            body: body.to_vec(),
        }
    }

    fn register_pending(&self, r: &OutRequest) -> (PendingGuard<'_>, mpsc::UnboundedReceiver<(Response, Instant)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let key = (r.branch.clone(), r.method.clone());
        self.state().pending.insert(key.clone(), tx);
        (PendingGuard { inner: self, key }, rx)
    }

    /// A non-INVITE client transaction over UDP (RFC 3261 §17.1.2.2):
    /// retransmits at T1 doubling up to T2 (at T2 once a provisional came),
    /// fails after Timer F = 64*T1. Returns the final response and its
    /// arrival.
    async fn non_invite_tx(&self, r: &OutRequest) -> Result<(Response, Instant), PhoneError> {
        let bytes = self.encode(r);
        let (_guard, mut rx) = self.register_pending(r);
        let start = Instant::now();
        let deadline = tokio::time::Instant::from_std(start + TRANSACTION_TIMEOUT);
        self.send_to(&bytes, self.cfg.proxy).await;
        let mut interval = T1;
        let mut proceeding = false;
        let mut next = tokio::time::Instant::now() + interval;
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Some((resp, at)) => {
                        if resp.status_code.code() >= 200 {
                            return Ok((resp, at));
                        }
                        proceeding = true;
                    }
                    None => return Err(PhoneError::Closed),
                },
                _ = tokio::time::sleep_until(next.min(deadline)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(PhoneError::Timeout(r.method.clone()));
                    }
                    self.send_to(&bytes, self.cfg.proxy).await;
                    interval = if proceeding { T2 } else { (interval * 2).min(T2) };
                    next = tokio::time::Instant::now() + interval;
                }
            }
        }
    }

    /// The Authorization / Proxy-Authorization header answering the
    /// challenge in a 401 / 407 to `r` (RFC 3261 §22.2, §22.3), if any.
    fn answer_challenge(&self, resp: &Response, r: &OutRequest) -> Result<Option<(String, String)>, PhoneError> {
        let (challenge_name, auth_name) = match resp.status_code.code() {
            401 => ("WWW-Authenticate", "Authorization"),
            407 => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => return Ok(None),
        };
        let Some(challenge) = hval(&resp.headers, challenge_name) else {
            return Ok(None);
        };
        let user = self.cfg.auth_user.as_deref().unwrap_or(&self.user);
        let value = digest::authorization(challenge, &r.method, &r.ruri, user, &self.cfg.password, &random_hex())?;
        Ok(Some((auth_name.to_string(), value)))
    }

    /// A non-INVITE request with one Digest retry (new CSeq and branch,
    /// RFC 3261 §22.2). Returns the final response, the request as last
    /// sent, and whether it was challenged.
    async fn request(&self, mut r: OutRequest) -> Result<(Response, OutRequest, bool), PhoneError> {
        let mut challenged = false;
        loop {
            let (resp, _) = self.non_invite_tx(&r).await?;
            if !challenged && let Some(auth) = self.answer_challenge(&resp, &r)? {
                challenged = true;
                r.auth = Some(auth);
                r.cseq = r.cseq.wrapping_add(1);
                r.branch = new_branch();
                continue;
            }
            return Ok((resp, r, challenged));
        }
    }

    /// Builds and sends the ACK for a non-2xx final to INVITE `r`
    /// (RFC 3261 §17.1.1.3), remembered for retransmitted finals.
    async fn ack_non_2xx(&self, r: &OutRequest, resp: &Response) {
        let ack = OutRequest {
            method: "ACK".into(),
            to: hval(&resp.headers, "To").unwrap_or(&r.to).to_string(),
            contact: None,
            auth: None,
            extra: Vec::new(),
            content_type: None,
            body: Vec::new(),
            ..r.clone()
        };
        let bytes = self.encode(&ack);
        self.state()
            .acks
            .insert(r.branch.clone(), (bytes.clone(), Instant::now()));
        self.send_to(&bytes, self.cfg.proxy).await;
    }

    /// Carries out what a handler decided, in order.
    async fn run(self: &Arc<Self>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Answer(branch) => {
                    let weak = Arc::downgrade(self);
                    let delay = self.cfg.answer_delay;
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        if let Some(inner) = weak.upgrade() {
                            let actions = inner.answer(&branch);
                            inner.run_basic(actions).await;
                        }
                    });
                }
                other => self.run_basic(vec![other]).await,
            }
        }
    }

    /// [`run`](Self::run) for everything but [`Action::Answer`].
    async fn run_basic(self: &Arc<Self>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(bytes, to) => self.send_to(&bytes, to).await,
                Action::Emit(at, kind) => self.emit(at, kind),
                Action::Retransmit(branch, state) => spawn_final_retransmit(self, branch, state),
                Action::Answer(_) => {}
            }
        }
    }

    /// Handles a received response: to its client transaction, or — a
    /// retransmitted INVITE final whose transaction is over — answered with
    /// the ACK again (RFC 3261 §13.2.2.4, §17.1.1.2).
    fn on_response(&self, resp: Response, at: Instant) -> Vec<Action> {
        let (Some(branch), Some((_, method))) = (top_via_branch(&resp.headers), cseq(&resp.headers)) else {
            return Vec::new();
        };
        let mut st = self.state();
        if let Some(tx) = st.pending.get(&(branch.clone(), method.clone())) {
            let _ = tx.send((resp, at));
            return Vec::new();
        }
        st.acks.retain(|_, (_, t)| t.elapsed() < TRANSACTION_TIMEOUT);
        if method == "INVITE"
            && resp.status_code.code() >= 200
            && let Some((ack, _)) = st.acks.get(&branch)
        {
            return vec![Action::Send(ack.clone(), self.cfg.proxy)];
        }
        Vec::new()
    }

    /// Handles a received request as the UAS.
    fn on_request(&self, req: Request, peer: SocketAddr, at: Instant) -> Vec<Action> {
        let (Some(branch), Some(call_id), Some(_), Some(_), Some((_, cseq_method))) = (
            top_via_branch(&req.headers),
            hval(&req.headers, "Call-ID").map(str::to_string),
            hval(&req.headers, "From"),
            hval(&req.headers, "To"),
            cseq(&req.headers),
        ) else {
            tracing::debug!("phone {}: request without Via/Call-ID/From/To/CSeq", self.aor);
            return Vec::new();
        };
        if cseq_method != req.method.to_string() {
            return Vec::new();
        }
        let rx = Received {
            req,
            branch,
            call_id,
            peer,
            at,
        };
        match rx.req.method {
            Method::Invite => self.on_invite(rx),
            Method::Ack => self.on_ack(&rx),
            Method::Cancel => self.on_cancel(rx),
            _ => self.on_other(rx),
        }
    }

    fn on_invite(&self, rx: Received) -> Vec<Action> {
        let Received {
            req,
            branch,
            call_id,
            peer,
            at,
        } = rx;
        let to = hval(&req.headers, "To").unwrap_or_default().to_string();
        let from = hval(&req.headers, "From").unwrap_or_default().to_string();
        let mut st = self.state();
        if let Some(si) = st.server_invites.get(&branch) {
            // A retransmission (RFC 3261 §17.2.1): the last response again.
            return vec![Action::Send(si.last.clone(), peer)];
        }
        st.server_invites.retain(|_, si| {
            si.state == ServerInviteState::Proceeding || si.created.elapsed() < 4 * TRANSACTION_TIMEOUT
        });
        if let Some(to_tag) = header_param(&to, "tag") {
            // A re-INVITE (RFC 3261 §14.2): accepted with our SDP.
            let known = st.dialogs.get(&call_id).is_some_and(|d| d.call.local_tag == to_tag);
            let (bytes, state) = if known {
                let sdp = self.sdp();
                let ok = Reply::new(200, "OK").dialog().allow().body("application/sdp", &sdp);
                (self.response(&req, ok), ServerInviteState::Accepted)
            } else {
                (self.response(&req, Reply::no_dialog()), ServerInviteState::Rejected)
            };
            st.server_invites.insert(
                branch.clone(),
                ServerInvite {
                    call_id: call_id.clone(),
                    state,
                    request: req,
                    tag: to_tag,
                    last: bytes.clone(),
                    peer,
                    created: at,
                },
            );
            let mut actions = vec![Action::Send(bytes, peer)];
            if known {
                actions.push(Action::Emit(
                    at,
                    PhoneEventKind::Request {
                        method: "INVITE".into(),
                        call_id,
                    },
                ));
            }
            actions.push(Action::Retransmit(branch, state));
            return actions;
        }
        // A new call: an early dialog until the 2xx (RFC 3261 §12.1.1), with
        // the route set from Record-Route in order and the remote target
        // from Contact.
        let tag = random_hex();
        let remote_target = hval(&req.headers, "Contact")
            .and_then(|c| split_list(c).first().map(|c| parse_addr(c).0.to_string()))
            .unwrap_or_default();
        let route_set: Vec<String> = hvals(&req.headers, "Record-Route")
            .into_iter()
            .flat_map(split_list)
            .map(str::to_string)
            .collect();
        let call = Call {
            call_id: call_id.clone(),
            local_tag: tag.clone(),
            remote_tag: header_param(&from, "tag").unwrap_or_default(),
            local_header: format!("{to};tag={tag}"),
            remote_header: from.clone(),
            local_cseq: rand::random::<u32>() % 10_000,
            remote_target,
            route_set,
            remote_sdp: String::from_utf8_lossy(&req.body).into_owned(),
            timings: CallTimings {
                sent: at,
                trying: None,
                ringing: Some(Duration::ZERO),
                answered: None,
                challenged: false,
            },
            auth: None,
        };
        st.dialogs.insert(
            call_id.clone(),
            Dialog {
                call,
                invite_branch: Some(branch.clone()),
            },
        );
        let ringing = self.response(&req, Reply::new(180, "Ringing").tag(&tag).dialog());
        st.server_invites.insert(
            branch.clone(),
            ServerInvite {
                call_id: call_id.clone(),
                state: ServerInviteState::Proceeding,
                request: req,
                tag,
                last: ringing.clone(),
                peer,
                created: at,
            },
        );
        let from = parse_addr(&from).0.to_string();
        vec![
            Action::Send(ringing, peer),
            Action::Emit(at, PhoneEventKind::IncomingCall { call_id, from }),
            Action::Answer(branch),
        ]
    }

    /// Answers a ringing INVITE with 200 OK and an SDP answer, then keeps
    /// retransmitting it until the ACK (RFC 3261 §13.3.1.4).
    fn answer(&self, branch: &str) -> Vec<Action> {
        let mut st = self.state();
        let sdp = self.sdp();
        let Some(si) = st.server_invites.get_mut(branch) else {
            return Vec::new();
        };
        if si.state != ServerInviteState::Proceeding {
            return Vec::new();
        }
        let ok = Reply::new(200, "OK")
            .tag(&si.tag)
            .dialog()
            .allow()
            .body("application/sdp", &sdp);
        let bytes = self.response(&si.request, ok);
        si.state = ServerInviteState::Accepted;
        si.last = bytes.clone();
        let (peer, call_id) = (si.peer, si.call_id.clone());
        if let Some(d) = st.dialogs.get_mut(&call_id) {
            d.call.timings.answered = Some(d.call.timings.sent.elapsed());
        }
        vec![
            Action::Send(bytes, peer),
            Action::Emit(Instant::now(), PhoneEventKind::Answered { call_id }),
            Action::Retransmit(branch.to_string(), ServerInviteState::Accepted),
        ]
    }

    fn on_ack(&self, rx: &Received) -> Vec<Action> {
        let mut st = self.state();
        // The ACK for a non-2xx final shares the INVITE's branch (RFC 3261
        // §17.2.1); it is absorbed.
        if let Some(si) = st.server_invites.get_mut(&rx.branch)
            && si.state == ServerInviteState::Rejected
        {
            si.state = ServerInviteState::Done;
            return Vec::new();
        }
        // The ACK for a 2xx is its own transaction, matched through the
        // dialog (RFC 3261 §13.3.1.4) — for the dialog's INVITE or a
        // re-INVITE of it.
        let call_id = rx.call_id.as_str();
        let first = st.dialogs.get(call_id).and_then(|d| d.invite_branch.clone());
        let mut acked_first = false;
        for (b, si) in st.server_invites.iter_mut() {
            if si.call_id == call_id && si.state == ServerInviteState::Accepted {
                si.state = ServerInviteState::Done;
                acked_first |= first.as_deref() == Some(b.as_str());
            }
        }
        if acked_first {
            vec![Action::Emit(
                rx.at,
                PhoneEventKind::Acked {
                    call_id: call_id.to_string(),
                },
            )]
        } else {
            Vec::new()
        }
    }

    fn on_cancel(&self, rx: Received) -> Vec<Action> {
        let key = (rx.branch.clone(), "CANCEL".to_string());
        let mut st = self.state();
        if let Some((cached, _)) = st.server_other.get(&key) {
            return vec![Action::Send(cached.clone(), rx.peer)];
        }
        let mut actions = Vec::new();
        let mut cancelled = false;
        // RFC 3261 §9.2: the CANCEL matches the INVITE by its branch.
        let reply = match st.server_invites.get_mut(&rx.branch) {
            None => self.response(&rx.req, Reply::no_dialog().tag(&random_hex())),
            Some(si) => {
                // The To tag SHOULD be the one of the INVITE's responses (§9.2).
                let ok = self.response(&rx.req, Reply::new(200, "OK").tag(&si.tag));
                if si.state == ServerInviteState::Proceeding {
                    let terminated = self.response(&si.request, Reply::new(487, "Request Terminated").tag(&si.tag));
                    si.state = ServerInviteState::Rejected;
                    si.last = terminated.clone();
                    actions.push(Action::Send(terminated, si.peer));
                    cancelled = true;
                }
                ok
            }
        };
        st.server_other.insert(key, (reply.clone(), rx.at));
        actions.insert(0, Action::Send(reply, rx.peer));
        if cancelled {
            st.dialogs.remove(&rx.call_id);
            actions.push(Action::Emit(
                rx.at,
                PhoneEventKind::Cancelled {
                    call_id: rx.call_id.clone(),
                },
            ));
            // Timer G: the 487 is retransmitted until its ACK (§17.2.1).
            actions.push(Action::Retransmit(rx.branch, ServerInviteState::Rejected));
        }
        actions
    }

    fn on_other(&self, rx: Received) -> Vec<Action> {
        let method = rx.req.method.to_string();
        let key = (rx.branch.clone(), method.clone());
        let to = hval(&rx.req.headers, "To").unwrap_or_default();
        let from = hval(&rx.req.headers, "From").unwrap_or_default();
        let mut st = self.state();
        if let Some((cached, _)) = st.server_other.get(&key) {
            // A retransmission (RFC 3261 §17.2.2).
            return vec![Action::Send(cached.clone(), rx.peer)];
        }
        st.server_other.retain(|_, (_, t)| t.elapsed() < TRANSACTION_TIMEOUT);
        let to_tag = header_param(to, "tag");
        let in_dialog = to_tag
            .as_ref()
            .is_some_and(|t| st.dialogs.get(&rx.call_id).is_some_and(|d| d.call.local_tag == *t));
        // Out of a dialog, the response gets a fresh To tag (§8.2.6.2).
        let fresh = random_hex();
        let call_id = rx.call_id.clone();
        let (reply, event) = match rx.req.method {
            // RFC 3261 §12.2.2: a request naming an unknown dialog.
            _ if to_tag.is_some() && !in_dialog => (Reply::no_dialog(), None),
            Method::Bye if !in_dialog => (Reply::no_dialog(), None),
            Method::Bye => {
                // RFC 3261 §15.1.2.
                st.dialogs.remove(&rx.call_id);
                (Reply::new(200, "OK"), Some(PhoneEventKind::Bye { call_id }))
            }
            Method::Message => (
                Reply::new(200, "OK"),
                Some(PhoneEventKind::Message {
                    call_id,
                    from: parse_addr(from).0.to_string(),
                    text: String::from_utf8_lossy(&rx.req.body).into_owned(),
                }),
            ),
            Method::Options | Method::Info | Method::Update => (
                Reply::new(200, "OK").allow(),
                Some(PhoneEventKind::Request { method, call_id }),
            ),
            _ => (Reply::new(501, "Not Implemented").allow(), None),
        };
        // Out of a dialog the To tag is added; in one it is already there.
        let bytes = self.response(&rx.req, reply.tag(&fresh));
        st.server_other.insert(key, (bytes.clone(), rx.at));
        let mut actions = vec![Action::Send(bytes, rx.peer)];
        if let Some(e) = event {
            actions.push(Action::Emit(rx.at, e));
        }
        actions
    }
}

/// Retransmits the final response of the INVITE server transaction
/// `branch` while it stays in `state`: a 2xx until its ACK (RFC 3261
/// §13.3.1.4), a non-2xx per Timer G (§17.2.1); T1 doubling up to T2, for
/// at most 64*T1. A 2xx never ACKed ends the call with BYE (§13.3.1.4).
fn spawn_final_retransmit(inner: &Arc<Inner>, branch: String, state: ServerInviteState) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    tokio::spawn(async move {
        let start = Instant::now();
        let mut interval = T1;
        loop {
            tokio::time::sleep(interval).await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let (resend, give_up) = {
                let mut st = inner.state();
                let Some(si) = st.server_invites.get_mut(&branch) else {
                    return;
                };
                if si.state != state {
                    return;
                }
                if start.elapsed() >= TRANSACTION_TIMEOUT {
                    si.state = ServerInviteState::Done;
                    let call_id = si.call_id.clone();
                    let call = (state == ServerInviteState::Accepted)
                        .then(|| st.dialogs.remove(&call_id))
                        .flatten();
                    (None, Some(call))
                } else {
                    (Some((si.last.clone(), si.peer)), None)
                }
            };
            if let Some((bytes, peer)) = resend {
                inner.send_to(&bytes, peer).await;
                interval = (interval * 2).min(T2);
                continue;
            }
            if let Some(Some(d)) = give_up {
                let mut call = d.call;
                inner.emit(
                    Instant::now(),
                    PhoneEventKind::AckTimeout {
                        call_id: call.call_id.clone(),
                    },
                );
                let bye = inner.in_dialog(&mut call, "BYE", b"");
                let _ = inner.request(bye).await;
            }
            return;
        }
    });
}

/// Drives an outgoing INVITE client transaction (RFC 3261 §17.1.1.2) and
/// reports to the [`OutgoingCall`].
async fn drive_invite(
    inner: Arc<Inner>,
    current: Arc<Mutex<OutRequest>>,
    updates: mpsc::UnboundedSender<InviteUpdate>,
    first_sent: Instant,
) {
    let report = |u: InviteUpdate| {
        let _ = updates.send(u);
    };
    let mut challenged = false;
    let mut trying: Option<Duration> = None;
    let mut ringing: Option<Duration> = None;
    loop {
        let req = lock(&current).clone();
        let bytes = inner.encode(&req);
        let (guard, mut rx) = inner.register_pending(&req);
        inner.send_to(&bytes, inner.cfg.proxy).await;
        let t0 = tokio::time::Instant::now();
        let mut interval = T1;
        let mut next_retransmit = Some(t0 + interval);
        // Timer B until a provisional response, then the call timeout.
        let mut deadline = t0 + TRANSACTION_TIMEOUT;
        let (resp, at) = loop {
            let wake = next_retransmit.map_or(deadline, |n| n.min(deadline));
            tokio::select! {
                got = rx.recv() => match got {
                    Some((resp, at)) => {
                        let code = resp.status_code.code();
                        if code >= 200 {
                            break (resp, at);
                        }
                        let since = at.saturating_duration_since(first_sent);
                        if code == 100 && trying.is_none() {
                            trying = Some(since);
                        }
                        if code >= 180 && ringing.is_none() {
                            ringing = Some(since);
                        }
                        if next_retransmit.take().is_some() {
                            deadline = tokio::time::Instant::from_std(first_sent + inner.cfg.call_timeout);
                        }
                        report(InviteUpdate::Provisional(code, at));
                    }
                    None => {
                        report(InviteUpdate::Failed(PhoneError::Closed));
                        return;
                    }
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = tokio::time::Instant::now();
                    if now >= deadline {
                        report(InviteUpdate::Failed(PhoneError::Timeout("INVITE".into())));
                        return;
                    }
                    inner.send_to(&bytes, inner.cfg.proxy).await;
                    interval *= 2;
                    next_retransmit = Some(now + interval);
                }
            }
        };
        let (code, reason) = status(&resp);
        if code >= 300 {
            // The transaction ACKs every non-2xx final itself (§17.1.1.3).
            inner.ack_non_2xx(&req, &resp).await;
            drop(guard);
            if !challenged {
                match inner.answer_challenge(&resp, &req) {
                    Ok(Some(auth)) => {
                        challenged = true;
                        let mut cur = lock(&current);
                        cur.auth = Some(auth);
                        cur.cseq = cur.cseq.wrapping_add(1);
                        cur.branch = new_branch();
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        report(InviteUpdate::Failed(e));
                        return;
                    }
                }
            }
            report(InviteUpdate::Rejected(code, reason));
            return;
        }
        // 2xx: the dialog is created from the response (RFC 3261 §12.1.2).
        let to = hval(&resp.headers, "To").unwrap_or(&req.to).to_string();
        let remote_target = hval(&resp.headers, "Contact")
            .and_then(|c| split_list(c).first().map(|c| parse_addr(c).0.to_string()))
            .unwrap_or_else(|| req.ruri.clone());
        let mut route_set: Vec<String> = hvals(&resp.headers, "Record-Route")
            .into_iter()
            .flat_map(split_list)
            .map(str::to_string)
            .collect();
        route_set.reverse();
        let call = Call {
            call_id: req.call_id.clone(),
            local_tag: header_param(&req.from, "tag").unwrap_or_default(),
            remote_tag: header_param(&to, "tag").unwrap_or_default(),
            local_header: req.from.clone(),
            remote_header: to,
            local_cseq: req.cseq,
            remote_target,
            route_set,
            remote_sdp: String::from_utf8_lossy(&resp.body).into_owned(),
            timings: CallTimings {
                sent: first_sent,
                trying,
                ringing,
                answered: Some(at.saturating_duration_since(first_sent)),
                challenged,
            },
            auth: req.auth.clone(),
        };
        // The ACK: built like an in-dialog request, but with the INVITE's
        // CSeq number and credentials (RFC 3261 §13.2.2.4).
        let mut ack = inner.dialog_request(&call, "ACK", req.cseq, new_branch(), b"");
        ack.auth = call.auth.clone();
        let ack_bytes = inner.encode(&ack);
        {
            let mut st = inner.state();
            st.acks.insert(req.branch.clone(), (ack_bytes.clone(), Instant::now()));
            st.dialogs.insert(
                call.call_id.clone(),
                Dialog {
                    call: call.clone(),
                    invite_branch: None,
                },
            );
        }
        drop(guard);
        inner.send_to(&ack_bytes, inner.cfg.proxy).await;
        report(InviteUpdate::Answered(Box::new(call)));
        return;
    }
}

/// Reads the socket until the phone is dropped.
async fn reader(inner: Arc<Inner>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, peer) = match inner.socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("phone {}: recv failed: {e}", inner.aor);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let at = Instant::now();
        let data = &buf[..n];
        // RFC 5626 §3.5.1: CRLF keep-alives.
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let actions = match SipMessage::try_from(data) {
            Ok(SipMessage::Request(req)) => inner.on_request(req, peer, at),
            Ok(SipMessage::Response(resp)) => inner.on_response(resp, at),
            Err(e) => {
                tracing::debug!("phone {}: unparsable datagram from {peer}: {e}", inner.aor);
                Vec::new()
            }
        };
        inner.run(actions).await;
    }
}

/// The values of every `name` header, in order (names compared
/// case-insensitively; compact forms are already expanded by the parser).
fn hvals<'a>(headers: &'a Headers, name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value())
        .collect()
}

/// The value of the first `name` header.
fn hval<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value())
}

/// The `branch` of the topmost Via (RFC 3261 §17.1.3, §17.2.3).
fn top_via_branch(headers: &Headers) -> Option<String> {
    let top = split_list(hval(headers, "Via")?).into_iter().next()?;
    header_param(top, "branch").filter(|b| !b.is_empty())
}

/// The CSeq number and method.
fn cseq(headers: &Headers) -> Option<(u32, String)> {
    let v = hval(headers, "CSeq")?;
    let mut parts = v.split_whitespace();
    let num = parts.next()?.parse().ok()?;
    let method = parts.next()?.to_ascii_uppercase();
    Some((num, method))
}

/// Splits a header value at commas outside quotes and `<>` (RFC 3261
/// §7.3.1).
fn split_list(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in v.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                let part = v[start..i].trim();
                if !part.is_empty() {
                    out.push(part);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let part = v[start..].trim();
    if !part.is_empty() {
        out.push(part);
    }
    out
}

/// Splits a name-addr / addr-spec header value (RFC 3261 §20.10) into the
/// URI and the header parameters (starting at their `;`). Without `<>`, the
/// parameters start at the first `;`.
fn parse_addr(v: &str) -> (&str, &str) {
    let v = v.trim();
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in v.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => {
                let rest = &v[i + 1..];
                return match rest.find('>') {
                    Some(r) => (rest[..r].trim(), &rest[r + 1..]),
                    None => (rest.trim(), ""),
                };
            }
            ';' if !quoted => return (v[..i].trim(), &v[i..]),
            _ => {}
        }
    }
    (v, "")
}

/// The header parameter `name` of a header value (RFC 3261 §7.3.1),
/// unquoted; a flag parameter gives `""`.
fn header_param(v: &str, name: &str) -> Option<String> {
    let params = parse_addr(v).1;
    let (mut quoted, mut escaped) = (false, false);
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in params.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&params[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&params[start..]);
    parts.into_iter().find_map(|p| {
        let (n, val) = match p.split_once('=') {
            Some((n, val)) => (n.trim(), val.trim()),
            None => (p.trim(), ""),
        };
        if !n.eq_ignore_ascii_case(name) {
            return None;
        }
        Some(unquote(val))
    })
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// Whether a Route/Record-Route entry is a loose router (`lr` URI
/// parameter, RFC 3261 §19.1.1).
fn is_loose_route(entry: &str) -> bool {
    parse_addr(entry).0.split(';').skip(1).any(|p| {
        let name = p.split('=').next().unwrap_or_default().trim();
        name.eq_ignore_ascii_case("lr")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addr_and_params() {
        let v = r#""Bob \"B\" <x>" <sip:bob@b.example;transport=udp>;tag=a6c85cf;expires=60"#;
        assert_eq!(parse_addr(v).0, "sip:bob@b.example;transport=udp");
        assert_eq!(header_param(v, "tag").as_deref(), Some("a6c85cf"));
        assert_eq!(header_param(v, "EXPIRES").as_deref(), Some("60"));
        assert_eq!(header_param(v, "transport"), None);
        let spec = "sip:alice@a.example;tag=1928301774";
        assert_eq!(parse_addr(spec).0, "sip:alice@a.example");
        assert_eq!(header_param(spec, "tag").as_deref(), Some("1928301774"));
        let via = "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK77;rport";
        assert_eq!(header_param(via, "branch").as_deref(), Some("z9hG4bK77"));
        assert_eq!(header_param(via, "rport").as_deref(), Some(""));
        let gruu = r#"<sip:a@1.2.3.4:5>;pub-gruu="sip:a@x;gr=urn:uuid:1";expires=3600"#;
        assert_eq!(header_param(gruu, "pub-gruu").as_deref(), Some("sip:a@x;gr=urn:uuid:1"));
    }

    #[test]
    fn lists_and_routes() {
        let v = r#"<sip:p1.example;lr>, "a,b" <sip:p2.example>,<sip:p3;lr;x=1,2>"#;
        let parts = split_list(v);
        assert_eq!(parts.len(), 3);
        assert!(is_loose_route(parts[0]));
        assert!(!is_loose_route(parts[1]));
        assert!(is_loose_route(parts[2]));
    }

    #[test]
    fn strict_route_in_dialog() {
        // RFC 3261 §12.2.1.1: the strict router becomes the Request-URI.
        let call = Call {
            call_id: "c".into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local_header: "<sip:a@x>;tag=l".into(),
            remote_header: "<sip:b@x>;tag=r".into(),
            local_cseq: 1,
            remote_target: "sip:b@1.2.3.4:5060".into(),
            route_set: vec!["<sip:strict.example>".into(), "<sip:p2;lr>".into()],
            remote_sdp: String::new(),
            timings: CallTimings {
                sent: Instant::now(),
                trying: None,
                ringing: None,
                answered: None,
                challenged: false,
            },
            auth: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (phone, _rx) = Phone::start(PhoneConfig::new("a@x", "p", "127.0.0.1:9".parse().unwrap()))
                .await
                .unwrap();
            let r = phone.inner.dialog_request(&call, "BYE", 2, new_branch(), b"");
            assert_eq!(r.ruri, "sip:strict.example");
            assert_eq!(r.routes, vec!["<sip:p2;lr>", "<sip:b@1.2.3.4:5060>"]);
            let text = String::from_utf8(phone.inner.encode(&r)).unwrap();
            assert!(text.starts_with("BYE sip:strict.example SIP/2.0\r\n"));
            assert!(text.contains("CSeq: 2 BYE\r\n"));
            let parsed = SipMessage::try_from(text.as_str()).unwrap();
            assert!(parsed.is_request());
        });
    }

    proptest! {
        #[test]
        fn header_helpers_never_panic(s in ".{0,200}") {
            let _ = split_list(&s);
            let _ = parse_addr(&s);
            let _ = header_param(&s, "tag");
            let _ = is_loose_route(&s);
            let _ = unquote(&s);
        }
    }
}
