//! The framing header and simple reliability of one overlay link (RFC 6940
//! §6.6.2, §6.6.3), as a sans-IO state machine shared by both link protocols.
//!
//! [`FramedLink`] does no I/O and never reads the clock: the link task hands it
//! what arrived ([`FramedLink::handle_frame`]), what the runtime wants sent
//! ([`FramedLink::send`]) and the time ([`FramedLink::handle_timeout`]), and
//! polls what to write ([`FramedLink::poll_frame`]), what happened
//! ([`FramedLink::poll_event`]) and when to wake it ([`FramedLink::poll_timeout`]).
//!
//! Two flavours, chosen by [`Reliability`]:
//!
//! - **Stream** (TLS/TCP with FH, §6.6.5): every message goes out at once in a data
//!   frame; acks measure the RTT and feed an RFC 6298 RTO, which is not used to
//!   retransmit (TCP does that) but to notice a dead link: an RTO with data
//!   outstanding and no ack makes the link suspect, and 30 seconds more without an
//!   ack fail it.
//! - **Simple reliability** (DTLS/UDP with SR, §6.6.3.1): the stop-and-wait sender.
//!   One message is unacknowledged at a time; it is retransmitted after an RTO,
//!   then after twice that and so on, each time under a new sequence number, five
//!   transmissions in all; then the link has failed. The next message waits for
//!   the ack of the previous one plus 10 ms.
//!
//! The receiving side acks every data frame with the bitmask of the 32 sequence
//! numbers received before it (§6.6.2). With simple reliability the ack goes at
//! once: the stop-and-wait sender is waiting for it. On a stream the ack waits up
//! to [`ACK_DELAY`] for a data frame going the other way and is written just before
//! it, so the answer that usually follows a request carries the request's ack; one
//! ack covers every frame that arrived meanwhile. See [`ACK_DELAY`] for why this
//! departs from §6.6.2's "SHOULD immediately send an ACK".
//!
//! Duplicates: when an ack is lost, the sender retransmits a message the receiver
//! already has, under a new sequence number, so the receiver cannot tell it from a
//! new message and delivers it again. That is by design: RELOAD's end-to-end layer
//! already copes with repeated requests and responses (§6.2.1: receivers answer a
//! retransmitted request with the same response, and a response to a finished
//! transaction is dropped by its transaction ID), so the link does not dedup.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use reload_wire::framing::DATA_FRAME_OVERHEAD;
use reload_wire::{Decode, DecodeError, FramedMessage, FramedMessageType};

/// The RTO before any RTT has been measured: RFC 6940 §6.6.3.1's default static
/// value (rather than RFC 6298's one second).
pub const DEFAULT_RTO: Duration = Duration::from_millis(500);

/// The smallest RTO the estimator gives. RFC 6298 (2.4) says one second, which
/// RFC 6940 §6.6.3.1 relaxes: the RTO is rounded up to the millisecond, and "Nodes
/// MAY use smaller values of RTO if it is known that all nodes are within the local
/// network". We take 200 ms, the floor Linux TCP uses: on a LAN or loopback the
/// measured RTO would otherwise drop to a few milliseconds, and a busy host that
/// schedules the link task a little late (a garbage-collecting peer, two cores
/// under load) would then see spurious retransmissions and false suspect signals.
pub const MIN_RTO: Duration = Duration::from_millis(200);

/// The largest RTO, and the longest a backed-off retransmission waits (RFC 6298
/// (2.5): a maximum of at least 60 seconds may be placed on the RTO).
pub const MAX_RTO: Duration = Duration::from_secs(60);

/// Transmissions of one message before the link is declared failed (§6.6.3.1:
/// "until a total of 5 requests have been sent").
pub const MAX_TRANSMISSIONS: u32 = 5;

/// Retransmissions without any ack after which the link is suspect (§6.6.3.1:
/// "wait for three retransmissions").
pub const SUSPECT_RETRANSMISSIONS: u32 = 3;

/// The pause between receiving an ack and sending the next message (§6.6.3.1:
/// "A sender MUST wait 10 ms between receipt of an ACK and transmission of the
/// next message").
pub const ACK_GAP: Duration = Duration::from_millis(10);

/// How long a suspect stream link is kept before it counts as failed (§6.6.5: "It
/// is RECOMMENDED that such a connection be retained for 30 seconds").
pub const STREAM_GRACE: Duration = Duration::from_secs(30);

/// How long a stream link holds an ack back, waiting for a data frame to write it
/// with (TCP's delayed acknowledgement, RFC 1122 §4.2.3.2, for the same reason).
///
/// §6.6.2 says a receiver SHOULD ack immediately. Over TLS/TCP the ack has one use,
/// the RTT that sets the link-failure timeout of §6.6.5, and acking at once costs a
/// write at the receiver and a wake-up at the sender for every message on every
/// hop, which on a busy host is a good part of a hop's latency. Within this delay
/// almost every request's ack rides on its answer. The delay adds at most 10 ms to
/// an RTT sample, far inside the [`MIN_RTO`] floor of 200 ms, so no link is taken
/// for suspect because of it. Simple reliability (DTLS) acks at once: there the
/// sender waits for each ack before it sends again (§6.6.3.1).
pub const ACK_DELAY: Duration = Duration::from_millis(10);

/// Data frames a stream link receives before it acks without waiting for
/// [`ACK_DELAY`]: well inside the 32 sequence numbers one ack's bitmask reports.
const ACKS_HELD_AT_MOST: u32 = 16;

/// Messages a simple-reliability link queues behind the one in flight before
/// [`FramedLink::send`] refuses more with [`FramedError::QueueFull`].
pub const MAX_QUEUED: usize = 256;

/// The largest message a data frame can carry (`opaque message<0..2^24-1>`).
pub const MAX_FRAME_MESSAGE: usize = 0xff_ffff;

/// How many past sequence numbers the receiver remembers for the ack bitmask (§6.6.2).
const RECEIVED_HISTORY: usize = 32;

/// How many recent data frames' send times the sender keeps for RTT samples.
const SEND_TIMES: usize = 64;

/// Frames (acks) waiting to be written beyond which new acks are dropped, so that
/// a link task that stopped writing cannot make the queue grow from network data.
/// A dropped ack only costs the far end a retransmission.
const MAX_PENDING_FRAMES: usize = 1024;

/// Events waiting to be polled beyond which new RTT samples are dropped.
const MAX_PENDING_EVENTS: usize = 256;

/// How a link provides reliability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reliability {
    /// TLS/TCP with FH (§6.6.5): acks measure RTT; no retransmission; an RTO without
    /// acks makes the link suspect, and 30 s more without acks fails it.
    Stream,
    /// DTLS/UDP with SR (§6.6.3.1): stop-and-wait, retransmit with doubling RTO, 5
    /// transmissions, fail the link after that.
    SimpleReliability,
}

/// Something the link's owner should know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramedEvent {
    /// An ack measured a round trip (§6.6.2, §6.6.3.1).
    Rtt(Duration),
    /// The link is likely failing and should leave the routing table (§6.6: "a
    /// mechanism that quickly signals a likely failure").
    Suspect,
    /// Acks resumed on a suspect link; it may return to the routing table (§6.6.3.1).
    Recovered,
    /// The link has failed; close it. Nothing more is sent or accepted.
    Failed(LinkFailure),
}

/// Why a link failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkFailure {
    /// A message was sent [`MAX_TRANSMISSIONS`] times and never acknowledged
    /// (§6.6.3.1: "If all retransmissions for a message fail, then the sending node
    /// SHOULD close the connection").
    Unacknowledged,
    /// A stream link stayed without acks for [`STREAM_GRACE`] after it became
    /// suspect (§6.6.5).
    Silent,
}

/// Why a frame or a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum FramedError {
    /// The message is larger than the overlay's `max-message-size` (§6.6), or
    /// than a data frame can carry.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The frame is not a `FramedMessage` (§6.6.2).
    #[error("malformed frame: {0}")]
    Malformed(#[from] DecodeError),
    /// [`MAX_QUEUED`] messages already wait behind the one in flight.
    #[error("send queue full")]
    QueueFull,
    /// The link has failed; see [`FramedEvent::Failed`].
    #[error("the link has failed")]
    Failed,
}

/// The retransmission timeout of RFC 6298 section 2 with RFC 6940's changes: a
/// 500 ms initial value, rounding up to the millisecond (§6.6.3.1), and a floor of
/// [`MIN_RTO`].
#[derive(Clone, Debug)]
pub struct RtoEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
}

impl Default for RtoEstimator {
    fn default() -> Self {
        RtoEstimator::new()
    }
}

impl RtoEstimator {
    /// Clock granularity G of RFC 6298: we round to the millisecond.
    const G: Duration = Duration::from_millis(1);

    /// No measurement yet: the RTO is [`DEFAULT_RTO`].
    pub fn new() -> Self {
        RtoEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: DEFAULT_RTO,
        }
    }

    /// Takes one RTT measurement R. The first sets SRTT = R and RTTVAR = R/2 (RFC
    /// 6298 (2.2)); later ones set RTTVAR = 3/4 RTTVAR plus 1/4 |SRTT - R|, then SRTT =
    /// 7/8 SRTT plus 1/8 R (2.3, alpha = 1/8, beta = 1/4). Either way RTO = SRTT plus
    /// max(G, K * RTTVAR) with K = 4, rounded up to the millisecond (RFC 6940
    /// §6.6.3.1) and kept within [`MIN_RTO`]..=[`MAX_RTO`].
    pub fn observe(&mut self, r: Duration) {
        let r = r.min(MAX_RTO);
        let srtt = match self.srtt {
            None => {
                self.rttvar = r / 2;
                r
            }
            Some(srtt) => {
                let deviation = srtt.abs_diff(r);
                self.rttvar = self.rttvar * 3 / 4 + deviation / 4;
                srtt * 7 / 8 + r / 8
            }
        };
        self.srtt = Some(srtt);
        let rto = srtt + (self.rttvar * 4).max(Self::G);
        self.rto = ceil_ms(rto).clamp(MIN_RTO, MAX_RTO);
    }

    /// The current RTO.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// The smoothed RTT, once something was measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The RTT variation (zero before the first measurement).
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

/// `d` rounded up to a whole number of milliseconds.
fn ceil_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The message in flight on a simple-reliability link (§6.6.3.1).
#[derive(Debug)]
struct InFlight {
    message: Vec<u8>,
    /// The sequence numbers of its transmissions: an ack of any of them acks it.
    sequences: Vec<u32>,
    transmissions: u32,
    /// The current wait, doubled after each retransmission.
    wait: Duration,
    deadline: Instant,
}

/// The framing header and its reliability for one link (§6.6.2, §6.6.3).
#[derive(Debug)]
pub struct FramedLink {
    reliability: Reliability,
    max_message_size: usize,
    /// The next data frame's sequence number: zero first, one more per data frame
    /// sent, retransmissions included (§6.6.2, §6.6.3.1).
    next_sequence: u32,
    /// Sequence numbers of the last 32 data frames received, oldest first (§6.6.2).
    received: VecDeque<u32>,
    /// Recent data frames not yet acked: sequence number and when sent, for RTT.
    sent: VecDeque<(u32, Instant)>,
    estimator: RtoEstimator,
    frames: VecDeque<Vec<u8>>,
    events: VecDeque<FramedEvent>,
    failed: bool,
    suspect: bool,
    // Simple reliability.
    queue: VecDeque<Vec<u8>>,
    in_flight: Option<InFlight>,
    /// No new message before this: the last ack plus [`ACK_GAP`].
    send_not_before: Instant,
    retransmissions_since_ack: u32,
    // Stream.
    /// When the oldest data frame not known to be acked was sent (or, if acks came
    /// since, when the last ack came).
    awaiting_since: Option<Instant>,
    last_sent_sequence: Option<u32>,
    suspect_since: Option<Instant>,
    /// The ack held back ([`ACK_DELAY`]): when it is due and how many data frames
    /// it will cover. The ack itself is made when sent, for the newest frame.
    held_ack: Option<(Instant, u32)>,
}

impl FramedLink {
    /// A link that has sent and received nothing yet. Messages larger than
    /// `max_message_size` (the overlay's `max-message-size`, §6.6) are refused
    /// both ways; the limit is capped at what a data frame can carry.
    pub fn new(reliability: Reliability, max_message_size: usize, now: Instant) -> Self {
        FramedLink {
            reliability,
            max_message_size: max_message_size.min(MAX_FRAME_MESSAGE),
            next_sequence: 0,
            received: VecDeque::with_capacity(RECEIVED_HISTORY),
            sent: VecDeque::new(),
            estimator: RtoEstimator::new(),
            frames: VecDeque::new(),
            events: VecDeque::new(),
            failed: false,
            suspect: false,
            queue: VecDeque::new(),
            in_flight: None,
            send_not_before: now,
            retransmissions_since_ack: 0,
            awaiting_since: None,
            last_sent_sequence: None,
            suspect_since: None,
            held_ack: None,
        }
    }

    /// Which reliability this link uses.
    pub fn reliability(&self) -> Reliability {
        self.reliability
    }

    /// The largest message sent or accepted.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Queues a RELOAD message. On a stream it is framed at once; with simple
    /// reliability it waits its turn behind the message in flight (§6.6.3.1).
    pub fn send(&mut self, now: Instant, message: Vec<u8>) -> Result<(), FramedError> {
        if self.failed {
            return Err(FramedError::Failed);
        }
        if message.len() > self.max_message_size {
            return Err(FramedError::TooLarge {
                size: message.len(),
                max: self.max_message_size,
            });
        }
        match self.reliability {
            Reliability::Stream => {
                let sequence = self.push_data(now, &message);
                self.last_sent_sequence = Some(sequence);
                // §6.6.5: the RTO counts from the first frame still unacknowledged.
                self.awaiting_since.get_or_insert(now);
            }
            Reliability::SimpleReliability => {
                if self.queue.len() >= MAX_QUEUED {
                    return Err(FramedError::QueueFull);
                }
                self.queue.push_back(message);
                self.pump(now);
            }
        }
        Ok(())
    }

    /// Takes one whole frame off the link. A data frame's message comes back and
    /// its ack is queued for [`FramedLink::poll_frame`]: at once with simple
    /// reliability, on a stream with the next data frame sent or after
    /// [`ACK_DELAY`] ([`FramedLink::poll_timeout`] says when). An ack gives `None`.
    /// A message sent again under a new sequence number is returned again (see the
    /// module documentation).
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8]) -> Result<Option<Vec<u8>>, FramedError> {
        if self.failed {
            return Err(FramedError::Failed);
        }
        // Refuse an oversized message before copying it (§6.6).
        if frame.first() == Some(&FramedMessageType::DATA.0)
            && frame.len() > DATA_FRAME_OVERHEAD + self.max_message_size
        {
            return Err(FramedError::TooLarge {
                size: frame.len().saturating_sub(DATA_FRAME_OVERHEAD),
                max: self.max_message_size,
            });
        }
        match FramedMessage::from_bytes(frame)? {
            FramedMessage::Data { sequence, message } => {
                if self.received.len() == RECEIVED_HISTORY {
                    self.received.pop_front();
                }
                self.received.push_back(sequence);
                match (self.reliability, self.held_ack) {
                    // §6.6.2: ack at once; the sender waits for it (§6.6.3.1).
                    (Reliability::SimpleReliability, _) => self.push_ack(),
                    (Reliability::Stream, None) => self.held_ack = Some((now + ACK_DELAY, 1)),
                    (Reliability::Stream, Some((due, held))) if held + 1 < ACKS_HELD_AT_MOST => {
                        self.held_ack = Some((due, held + 1));
                    }
                    (Reliability::Stream, Some(_)) => self.push_ack(),
                }
                Ok(Some(message))
            }
            ack @ FramedMessage::Ack { ack_sequence, .. } => {
                self.on_ack(now, ack_sequence, &ack.acknowledged());
                Ok(None)
            }
        }
    }

    /// Queues the ack of the newest data frame received, with the bitmask of the
    /// 32 received before it (§6.6.2), and drops any held ack it replaces.
    fn push_ack(&mut self) {
        self.held_ack = None;
        let Some(&newest) = self.received.back() else { return };
        let earlier = self.received.iter().take(self.received.len() - 1).copied();
        let ack = FramedMessage::ack_for(newest, earlier);
        if self.frames.len() < MAX_PENDING_FRAMES {
            self.frames.push_back(encode_ack(&ack));
        }
    }

    /// The next encoded frame to write, in order.
    pub fn poll_frame(&mut self) -> Option<Vec<u8>> {
        self.frames.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<FramedEvent> {
        self.events.pop_front()
    }

    /// When [`FramedLink::handle_timeout`] should next be called; `None` while
    /// nothing is pending. It may lie in the past.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.failed {
            return None;
        }
        match self.reliability {
            Reliability::SimpleReliability => match &self.in_flight {
                Some(f) => Some(f.deadline),
                None if !self.queue.is_empty() => Some(self.send_not_before),
                None => None,
            },
            Reliability::Stream => {
                let link = match (self.suspect_since, self.awaiting_since) {
                    (Some(since), _) => Some(since + STREAM_GRACE),
                    (None, Some(since)) => Some(since + self.estimator.rto()),
                    (None, None) => None,
                };
                let ack = self.held_ack.map(|(due, _)| due);
                link.into_iter().chain(ack).min()
            }
        }
    }

    /// Lets time pass: retransmits, sends what waited for the ack gap, and notices
    /// suspect and failed links.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.failed {
            return;
        }
        match self.reliability {
            Reliability::SimpleReliability => {
                self.retransmit_if_due(now);
                if !self.failed {
                    self.pump(now);
                }
            }
            Reliability::Stream => {
                if self.held_ack.is_some_and(|(due, _)| now >= due) {
                    self.push_ack();
                }
                if let (false, Some(since)) = (self.suspect, self.awaiting_since)
                    && now >= since + self.estimator.rto()
                {
                    // §6.6.5: the RTO is "a timeout to indicate when the link SHOULD be
                    // removed from the Routing Table".
                    self.suspect = true;
                    self.suspect_since = Some(now);
                    self.events.push_back(FramedEvent::Suspect);
                }
                if let Some(since) = self.suspect_since
                    && now >= since + STREAM_GRACE
                {
                    self.fail(LinkFailure::Silent);
                }
            }
        }
    }

    /// The current retransmission timeout.
    pub fn rto(&self) -> Duration {
        self.estimator.rto()
    }

    /// The smoothed RTT, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.estimator.srtt()
    }

    /// Feeds an RTT measured elsewhere into the estimator: §6.6.3.1 uses "the RTT of
    /// a successful STUN transaction from the ICE stage" as the first measurement.
    pub fn observe_rtt(&mut self, rtt: Duration) {
        self.estimator.observe(rtt);
    }

    /// Messages not yet acknowledged: the one in flight and those queued (simple
    /// reliability); zero on a stream, which hands every message over at once.
    pub fn queued(&self) -> usize {
        self.queue.len() + usize::from(self.in_flight.is_some())
    }

    /// Whether the link is currently suspect.
    pub fn is_suspect(&self) -> bool {
        self.suspect
    }

    /// Whether the link has failed.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Frames `message` under the next sequence number and queues it for writing.
    fn push_data(&mut self, now: Instant, message: &[u8]) -> u32 {
        if self.held_ack.is_some() {
            // The held ack goes out with this frame, in the same write.
            self.push_ack();
        }
        let sequence = self.next_sequence;
        self.next_sequence = sequence.wrapping_add(1);
        self.frames.push_back(encode_data(sequence, message));
        if self.sent.len() == SEND_TIMES {
            self.sent.pop_front();
        }
        self.sent.push_back((sequence, now));
        sequence
    }

    /// Sends the next queued message if nothing is in flight and the ack gap is
    /// over (§6.6.3.1).
    fn pump(&mut self, now: Instant) {
        if self.in_flight.is_some() || now < self.send_not_before {
            return;
        }
        let Some(message) = self.queue.pop_front() else { return };
        let sequence = self.push_data(now, &message);
        let wait = self.estimator.rto();
        self.in_flight = Some(InFlight {
            message,
            sequences: vec![sequence],
            transmissions: 1,
            wait,
            deadline: now + wait,
        });
    }

    /// §6.6.3.1: after each RTO without an ack, send the message again under a new
    /// sequence number and double the wait; after five transmissions, fail.
    fn retransmit_if_due(&mut self, now: Instant) {
        let Some(mut f) = self.in_flight.take() else { return };
        if now < f.deadline {
            self.in_flight = Some(f);
            return;
        }
        if f.transmissions >= MAX_TRANSMISSIONS {
            self.fail(LinkFailure::Unacknowledged);
            return;
        }
        let sequence = self.push_data(now, &f.message);
        f.sequences.push(sequence);
        f.transmissions += 1;
        f.wait = (f.wait * 2).min(MAX_RTO);
        f.deadline = now + f.wait;
        self.in_flight = Some(f);
        self.retransmissions_since_ack += 1;
        // §6.6.3.1: the first retransmission shows that a whole RTO passed without
        // an ack; by the third the link is likely failing.
        if self.retransmissions_since_ack >= SUSPECT_RETRANSMISSIONS && !self.suspect {
            self.suspect = true;
            self.events.push_back(FramedEvent::Suspect);
        }
    }

    fn on_ack(&mut self, now: Instant, ack_sequence: u32, acked: &[u32]) {
        // RTT from the frame the ack is for; the bitmask reports frames whose own
        // acks came (or were lost) earlier, so their timing says nothing. Every
        // transmission has its own sequence number, so there is no ambiguity and
        // every ack counts (§6.6.3.1).
        if let Some(i) = self.sent.iter().position(|&(s, _)| s == ack_sequence) {
            let sample = now.saturating_duration_since(self.sent[i].1);
            self.estimator.observe(sample);
            if self.events.len() < MAX_PENDING_EVENTS {
                self.events.push_back(FramedEvent::Rtt(sample));
            }
        }
        self.sent.retain(|(s, _)| !acked.contains(s));
        if self.suspect {
            self.suspect = false;
            self.suspect_since = None;
            self.events.push_back(FramedEvent::Recovered);
        }
        match self.reliability {
            Reliability::SimpleReliability => {
                self.retransmissions_since_ack = 0;
                self.send_not_before = now + ACK_GAP;
                if self
                    .in_flight
                    .as_ref()
                    .is_some_and(|f| f.sequences.iter().any(|s| acked.contains(s)))
                {
                    self.in_flight = None;
                }
                self.pump(now);
            }
            Reliability::Stream => {
                // TCP delivers in order, so an ack of the last frame sent acks all.
                if self.last_sent_sequence.is_some_and(|s| acked.contains(&s)) {
                    self.awaiting_since = None;
                } else if self.awaiting_since.is_some() {
                    // The link is alive; what is still outstanding gets a fresh RTO.
                    self.awaiting_since = Some(now);
                }
            }
        }
    }

    fn fail(&mut self, why: LinkFailure) {
        self.failed = true;
        self.in_flight = None;
        self.queue.clear();
        self.events.push_back(FramedEvent::Failed(why));
    }
}

/// A data frame (§6.6.2): type, sequence, 24-bit length, message. `message` is at
/// most [`MAX_FRAME_MESSAGE`] bytes (checked by [`FramedLink::send`]).
fn encode_data(sequence: u32, message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(DATA_FRAME_OVERHEAD + message.len());
    frame.push(FramedMessageType::DATA.0);
    frame.extend_from_slice(&sequence.to_be_bytes());
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes();
    frame.extend_from_slice(&len[1..]);
    frame.extend_from_slice(message);
    frame
}

/// An ack frame (§6.6.2).
fn encode_ack(ack: &FramedMessage) -> Vec<u8> {
    let mut frame = Vec::with_capacity(reload_wire::framing::ACK_FRAME_LEN);
    if let FramedMessage::Ack { ack_sequence, received } = ack {
        frame.push(FramedMessageType::ACK.0);
        frame.extend_from_slice(&ack_sequence.to_be_bytes());
        frame.extend_from_slice(&received.to_be_bytes());
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use reload_wire::Encode;

    const MAX: usize = 5000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn decode(frame: &[u8]) -> FramedMessage {
        FramedMessage::from_bytes(frame).expect("our own frames decode")
    }

    fn data_seq(frame: &[u8]) -> (u32, Vec<u8>) {
        match decode(frame) {
            FramedMessage::Data { sequence, message } => (sequence, message),
            other => panic!("expected a data frame, got {other:?}"),
        }
    }

    fn ack(seq: u32, received: u32) -> Vec<u8> {
        FramedMessage::Ack {
            ack_sequence: seq,
            received,
        }
        .to_bytes()
        .expect("encodes")
    }

    fn data(seq: u32, message: &[u8]) -> Vec<u8> {
        FramedMessage::Data {
            sequence: seq,
            message: message.to_vec(),
        }
        .to_bytes()
        .expect("encodes")
    }

    fn events(link: &mut FramedLink) -> Vec<FramedEvent> {
        std::iter::from_fn(|| link.poll_event()).collect()
    }

    fn frames(link: &mut FramedLink) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| link.poll_frame()).collect()
    }

    #[test]
    fn frames_match_the_wire_codec() {
        assert_eq!(encode_data(7, b"hello"), data(7, b"hello"));
        assert_eq!(encode_data(u32::MAX, b""), data(u32::MAX, b""));
        let a = FramedMessage::Ack {
            ack_sequence: 9,
            received: 0x8000_0002,
        };
        assert_eq!(encode_ack(&a), a.to_bytes().expect("encodes"));
    }

    #[test]
    fn receiver_acks_with_the_bitmask_of_earlier_frames() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        // Frames 0, 1, 3 arrive (2 lost), then 5.
        for seq in [0u32, 1, 3, 5] {
            let got = link.handle_frame(t0, &data(seq, b"m")).expect("valid");
            assert_eq!(got.as_deref(), Some(&b"m"[..]));
        }
        let acks: Vec<_> = frames(&mut link).iter().map(|f| decode(f)).collect();
        assert_eq!(
            acks,
            vec![
                FramedMessage::Ack {
                    ack_sequence: 0,
                    received: 0
                },
                FramedMessage::Ack {
                    ack_sequence: 1,
                    received: 1 << 1
                },
                FramedMessage::Ack {
                    ack_sequence: 3,
                    received: (1 << 2) | (1 << 3)
                },
                FramedMessage::Ack {
                    ack_sequence: 5,
                    received: (1 << 2) | (1 << 4) | (1 << 5)
                },
            ]
        );
    }

    #[test]
    fn receiver_remembers_only_the_last_32() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::Stream, MAX, t0);
        for seq in 0..40u32 {
            link.handle_frame(t0, &data(seq, b"")).expect("valid");
        }
        link.handle_timeout(t0 + ACK_DELAY);
        let last = frames(&mut link).pop().expect("the held ack");
        // Frame 39's ack reports 38 down to 8 (bits 1..=31); 7 is 32 back.
        assert_eq!(
            decode(&last),
            FramedMessage::Ack {
                ack_sequence: 39,
                received: !1
            }
        );
    }

    #[test]
    fn stream_holds_the_ack_for_the_next_data_frame() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::Stream, MAX, t0);
        link.handle_frame(t0, &data(0, b"request")).expect("valid");
        assert!(frames(&mut link).is_empty(), "no ack written on its own yet");
        assert_eq!(link.poll_timeout(), Some(t0 + ACK_DELAY));
        link.send(t0 + ms(2), b"answer".to_vec()).expect("sent");
        let out = frames(&mut link);
        assert_eq!(
            out,
            vec![ack(0, 0), data(0, b"answer")],
            "the ack rides ahead of the data"
        );
        // Nothing held any more: only the RTO of the answer is pending.
        assert_eq!(link.poll_timeout(), Some(t0 + ms(2) + DEFAULT_RTO));
    }

    #[test]
    fn stream_acks_after_the_delay_with_one_ack_for_all_frames() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::Stream, MAX, t0);
        for (i, seq) in [0u32, 1, 2].into_iter().enumerate() {
            link.handle_frame(t0 + ms(i as u64), &data(seq, b"m")).expect("valid");
        }
        // The delay counts from the first frame held.
        assert_eq!(link.poll_timeout(), Some(t0 + ACK_DELAY));
        link.handle_timeout(t0 + ACK_DELAY - ms(1));
        assert!(frames(&mut link).is_empty());
        link.handle_timeout(t0 + ACK_DELAY);
        assert_eq!(frames(&mut link), vec![ack(2, (1 << 1) | (1 << 2))]);
        assert_eq!(link.poll_timeout(), None);
        link.handle_timeout(t0 + ACK_DELAY * 2);
        assert!(frames(&mut link).is_empty(), "an ack is sent once");
    }

    #[test]
    fn stream_acks_without_waiting_once_16_frames_are_held() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::Stream, MAX, t0);
        for seq in 0..15u32 {
            link.handle_frame(t0, &data(seq, b"")).expect("valid");
        }
        assert!(frames(&mut link).is_empty());
        link.handle_frame(t0, &data(15, b"")).expect("valid");
        // Frames 0..=14 are bits 15..=1 of frame 15's ack.
        assert_eq!(frames(&mut link), vec![ack(15, 0xffff & !1)]);
        assert_eq!(link.poll_timeout(), None);
    }

    #[test]
    fn rto_follows_rfc_6298() {
        let mut e = RtoEstimator::new();
        assert_eq!(e.rto(), DEFAULT_RTO);
        // First sample R: SRTT = R, RTTVAR = R/2, RTO = R + 4 * R/2.
        e.observe(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        assert_eq!(e.rto(), ms(300));
        // Same again: RTTVAR = 3/4 * 50 = 37.5, SRTT stays, RTO = 100 + 150.
        e.observe(ms(100));
        assert_eq!(e.rttvar(), Duration::from_micros(37_500));
        assert_eq!(e.rto(), ms(250));
        // A slower sample: RTTVAR = 3/4 * 37.5 + 1/4 * 100 = 53.125; SRTT = 87.5 + 25.
        e.observe(ms(200));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rttvar(), Duration::from_micros(53_125));
        assert_eq!(e.rto(), Duration::from_micros(112_500 + 212_500));
    }

    #[test]
    fn rto_rounds_up_to_the_millisecond_and_stays_in_bounds() {
        let mut e = RtoEstimator::new();
        // 100.3 ms: RTO = 100.3 + 200.6 = 300.9 ms, rounded up to 301 ms (§6.6.3.1).
        e.observe(Duration::from_micros(100_300));
        assert_eq!(e.rto(), ms(301));
        let mut lan = RtoEstimator::new();
        lan.observe(Duration::from_micros(150));
        assert_eq!(lan.rto(), MIN_RTO);
        let mut slow = RtoEstimator::new();
        slow.observe(Duration::from_secs(3600));
        assert_eq!(slow.rto(), MAX_RTO);
    }

    #[test]
    fn sr_retransmits_at_0_500_1500_3500_7500_with_fresh_sequences_then_fails() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        link.send(t0, b"hello".to_vec()).expect("queued");
        let mut sent = Vec::new();
        let mut now = t0;
        let mut evs = Vec::new();
        while let Some(deadline) = link.poll_timeout() {
            for f in frames(&mut link) {
                sent.push((now - t0, data_seq(&f)));
            }
            now = deadline;
            link.handle_timeout(now);
            evs.extend(events(&mut link).into_iter().map(|e| (now - t0, e)));
        }
        for f in frames(&mut link) {
            sent.push((now - t0, data_seq(&f)));
        }
        let expected: Vec<_> = [0u64, 500, 1500, 3500, 7500]
            .iter()
            .zip(0u32..)
            .map(|(&t, seq)| (ms(t), (seq, b"hello".to_vec())))
            .collect();
        assert_eq!(sent, expected);
        // Suspect at the third retransmission; failed once the fifth transmission's
        // doubled wait (8 s) is over.
        assert_eq!(
            evs,
            vec![
                (ms(3500), FramedEvent::Suspect),
                (ms(15_500), FramedEvent::Failed(LinkFailure::Unacknowledged)),
            ]
        );
        assert!(link.is_failed());
        assert!(matches!(link.send(now, vec![1]), Err(FramedError::Failed)));
        assert!(matches!(link.handle_frame(now, &ack(0, 0)), Err(FramedError::Failed)));
    }

    #[test]
    fn an_ack_of_any_transmission_completes_the_message() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        link.send(t0, b"one".to_vec()).expect("queued");
        link.send(t0, b"two".to_vec()).expect("queued");
        assert_eq!(frames(&mut link).len(), 1, "stop and wait: one message in flight");
        link.handle_timeout(t0 + ms(500));
        assert_eq!(data_seq(&frames(&mut link)[0]), (1, b"one".to_vec()));
        // The late ack of the first transmission (sequence 0) acks the message.
        link.handle_frame(t0 + ms(600), &ack(0, 0)).expect("valid");
        assert_eq!(events(&mut link), vec![FramedEvent::Rtt(ms(600))]);
        assert_eq!(link.queued(), 1);
        // The next message waits 10 ms after the ack.
        assert!(frames(&mut link).is_empty());
        assert_eq!(link.poll_timeout(), Some(t0 + ms(610)));
        link.handle_timeout(t0 + ms(609));
        assert!(frames(&mut link).is_empty());
        link.handle_timeout(t0 + ms(610));
        assert_eq!(data_seq(&frames(&mut link)[0]), (2, b"two".to_vec()));
        // Its RTO comes from the measurement: 600 + 4 * 300 = 1800 ms.
        assert_eq!(link.rto(), ms(1800));
        assert_eq!(link.poll_timeout(), Some(t0 + ms(610) + ms(1800)));
    }

    #[test]
    fn stop_and_wait_paces_messages_by_ack_and_gap() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        for i in 0..3u8 {
            link.send(t0, vec![i]).expect("queued");
        }
        let mut now = t0;
        for i in 0..3u8 {
            let f = frames(&mut link);
            assert_eq!(f.len(), 1);
            let (seq, m) = data_seq(&f[0]);
            assert_eq!((seq, m), (u32::from(i), vec![i]));
            now += ms(20);
            link.handle_frame(now, &ack(seq, 0)).expect("valid");
            assert!(frames(&mut link).is_empty(), "nothing within 10 ms of the ack");
            assert_eq!(link.poll_timeout(), (i < 2).then_some(now + ACK_GAP));
            now += ACK_GAP;
            link.handle_timeout(now);
        }
        assert_eq!(link.queued(), 0);
        assert_eq!(link.poll_timeout(), None);
        // An idle link sends a new message at once once the gap is over.
        link.send(now, vec![9]).expect("queued");
        assert_eq!(data_seq(&frames(&mut link)[0]), (3, vec![9]));
    }

    #[test]
    fn sr_suspect_then_recovered() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        link.send(t0, b"x".to_vec()).expect("queued");
        for t in [500, 1500, 3500] {
            link.handle_timeout(t0 + ms(t));
        }
        assert!(link.is_suspect());
        assert_eq!(events(&mut link), vec![FramedEvent::Suspect]);
        // The fourth transmission (sequence 3) is acked.
        link.handle_frame(t0 + ms(3510), &ack(3, 0)).expect("valid");
        assert_eq!(
            events(&mut link),
            vec![FramedEvent::Rtt(ms(10)), FramedEvent::Recovered]
        );
        assert!(!link.is_suspect());
        assert_eq!(link.queued(), 0);
    }

    #[test]
    fn stream_sends_at_once_and_measures_rtt() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::Stream, MAX, t0);
        for i in 0..3u8 {
            link.send(t0, vec![i]).expect("sent");
        }
        let seqs: Vec<_> = frames(&mut link).iter().map(|f| data_seq(f).0).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
        assert_eq!(link.queued(), 0);
        assert_eq!(link.poll_timeout(), Some(t0 + DEFAULT_RTO));
        link.handle_frame(t0 + ms(40), &ack(0, 0)).expect("valid");
        link.handle_frame(t0 + ms(50), &ack(1, 1 << 1)).expect("valid");
        assert_eq!(
            events(&mut link),
            vec![FramedEvent::Rtt(ms(40)), FramedEvent::Rtt(ms(50))]
        );
        // Still waiting for frame 2: a fresh RTO from the last ack.
        assert_eq!(link.poll_timeout(), Some(t0 + ms(50) + link.rto()));
        link.handle_frame(t0 + ms(60), &ack(2, (1 << 1) | (1 << 2)))
            .expect("valid");
        assert_eq!(link.poll_timeout(), None);
        // No retransmissions on a stream, ever.
        link.handle_timeout(t0 + ms(100_000));
        assert!(frames(&mut link).is_empty());
    }

    #[test]
    fn stream_without_acks_is_suspect_after_an_rto_and_fails_30_s_later() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::Stream, MAX, t0);
        link.send(t0, b"a".to_vec()).expect("sent");
        link.handle_timeout(t0 + ms(499));
        assert!(events(&mut link).is_empty());
        link.handle_timeout(t0 + ms(500));
        assert_eq!(events(&mut link), vec![FramedEvent::Suspect]);
        assert_eq!(link.poll_timeout(), Some(t0 + ms(500) + STREAM_GRACE));
        link.handle_timeout(t0 + ms(500) + STREAM_GRACE);
        assert_eq!(events(&mut link), vec![FramedEvent::Failed(LinkFailure::Silent)]);
        assert_eq!(link.poll_timeout(), None);
    }

    #[test]
    fn stream_recovers_when_acks_resume() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::Stream, MAX, t0);
        link.send(t0, b"a".to_vec()).expect("sent");
        link.handle_timeout(t0 + ms(600));
        assert!(link.is_suspect());
        link.handle_frame(t0 + ms(2000), &ack(0, 0)).expect("valid");
        assert_eq!(
            events(&mut link),
            vec![FramedEvent::Suspect, FramedEvent::Rtt(ms(2000)), FramedEvent::Recovered]
        );
        assert_eq!(link.poll_timeout(), None);
        link.handle_timeout(t0 + ms(60_000));
        assert!(!link.is_failed());
    }

    #[test]
    fn oversize_messages_are_refused_both_ways() {
        let t0 = Instant::now();
        for reliability in [Reliability::Stream, Reliability::SimpleReliability] {
            let mut link = FramedLink::new(reliability, 100, t0);
            assert!(link.send(t0, vec![0; 100]).is_ok());
            assert!(matches!(
                link.send(t0, vec![0; 101]),
                Err(FramedError::TooLarge { size: 101, max: 100 })
            ));
            assert!(matches!(
                link.handle_frame(t0, &data(0, &[0; 101])),
                Err(FramedError::TooLarge { size: 101, max: 100 })
            ));
            assert!(link.handle_frame(t0, &data(0, &[0; 100])).is_ok());
        }
        let huge = FramedLink::new(Reliability::Stream, usize::MAX, t0);
        assert_eq!(huge.max_message_size(), MAX_FRAME_MESSAGE);
    }

    #[test]
    fn the_sr_queue_is_bounded() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        for _ in 0..=MAX_QUEUED {
            link.send(t0, vec![1]).expect("room");
        }
        assert_eq!(link.queued(), MAX_QUEUED + 1);
        assert!(matches!(link.send(t0, vec![1]), Err(FramedError::QueueFull)));
    }

    #[test]
    fn malformed_frames_are_errors() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        let mut long_ack = ack(1, 0);
        long_ack.push(0);
        let mut short_data = data(1, b"abc");
        short_data.pop();
        for bad in [
            &[][..],
            &[0x7f, 0, 0, 0, 0][..],
            &[0x80, 0, 0][..],
            &[0x81, 0, 0, 0, 1, 0, 0][..],
            &long_ack[..],
            &short_data[..],
        ] {
            assert!(
                matches!(link.handle_frame(t0, bad), Err(FramedError::Malformed(_))),
                "{bad:?}"
            );
        }
        // Errors leave the link usable.
        assert!(link.handle_frame(t0, &data(0, b"ok")).is_ok());
        assert!(!link.is_failed());
    }

    #[test]
    fn acks_of_unknown_frames_are_harmless() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        link.send(t0, b"x".to_vec()).expect("queued");
        link.handle_frame(t0 + ms(5), &ack(1000, u32::MAX)).expect("valid");
        assert!(events(&mut link).is_empty());
        assert_eq!(link.queued(), 1, "still in flight");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::Stream, MAX, t0);
        link.next_sequence = u32::MAX;
        link.send(t0, vec![]).expect("sent");
        link.send(t0, vec![]).expect("sent");
        let seqs: Vec<_> = frames(&mut link).iter().map(|f| data_seq(f).0).collect();
        assert_eq!(seqs, vec![u32::MAX, 0]);
        link.handle_frame(t0 + ms(1), &ack(0, 1 << 1)).expect("valid");
        assert_eq!(link.poll_timeout(), None);
    }

    #[test]
    fn observe_rtt_seeds_the_estimator() {
        let t0 = Instant::now();
        let mut link = FramedLink::new(Reliability::SimpleReliability, MAX, t0);
        link.observe_rtt(ms(100));
        assert_eq!(link.srtt(), Some(ms(100)));
        assert_eq!(link.rto(), ms(300));
    }
}
