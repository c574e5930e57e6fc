//! Fragmentation and reassembly (RFC 6940 §6.7).
//!
//! Any node may split a message that does not fit the next link; only the final
//! destination puts it back together. Every fragment carries a full copy of the
//! forwarding header; the `fragment` field holds the offset of the piece in the
//! message body (the bytes after the forwarding header) and the last-fragment bit.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reload_wire::{ForwardingHeader, Fragment, RawMessage, TransactionId, Writer};

use crate::time::Time;

/// Room left in each fragment for the via list to grow on later hops (§6.7: "no
/// larger than the Path MTU ... minus 32 bytes").
pub const VIA_ROOM: usize = 32;

/// The smallest body share a fragment may carry (§6.7: "at least 256 bytes").
pub const MIN_FRAGMENT_BODY: usize = 256;

/// Splits an encoded message into equal fragments that fit `mtu`. A message that
/// fits is returned whole; one whose header leaves no room for 256 body bytes is
/// returned whole too, for IP-layer fragmentation to deal with (§6.7).
pub fn fragment(message: &[u8], mtu: usize) -> Vec<Vec<u8>> {
    if message.len() <= mtu {
        return vec![message.to_vec()];
    }
    let Ok(raw) = RawMessage::split(message, usize::MAX) else {
        return vec![message.to_vec()];
    };
    let header_len = message.len() - raw.payload.len();
    let room = mtu.saturating_sub(header_len + VIA_ROOM);
    if room < MIN_FRAGMENT_BODY {
        return vec![message.to_vec()];
    }
    let body = raw.payload;
    let count = body.len().div_ceil(room);
    let size = body.len().div_ceil(count);
    // A message that is itself a fragment is split within its own range.
    let base = raw.header.fragment.offset() as usize;
    let was_last = raw.header.fragment.is_last();
    let mut out = Vec::with_capacity(count);
    for (i, piece) in body.chunks(size).enumerate() {
        let last = was_last && i + 1 == count;
        let Some(f) = u32::try_from(base + i * size).ok().and_then(|o| Fragment::new(o, last)) else {
            return vec![message.to_vec()];
        };
        let mut header = raw.header.clone();
        header.fragment = f;
        let mut w = Writer::with_capacity(header_len + piece.len());
        let total = (header_len + piece.len()) as u32;
        if header.encode(&mut w, total).is_err() {
            return vec![message.to_vec()];
        }
        w.bytes(piece);
        out.push(w.into_vec());
    }
    out
}

/// A message being put back together.
struct Partial {
    header: ForwardingHeader,
    pieces: BTreeMap<u32, Vec<u8>>,
    end: Option<u32>,
    bytes: usize,
    expires: Time,
}

impl Partial {
    /// The body, once every byte from 0 to the end has arrived.
    fn complete(&self) -> Option<Vec<u8>> {
        let end = self.end?;
        let mut body = Vec::with_capacity(end as usize);
        for (offset, piece) in &self.pieces {
            let offset = *offset as usize;
            if offset > body.len() {
                return None;
            }
            let skip = body.len() - offset;
            if skip < piece.len() {
                body.extend_from_slice(&piece[skip..]);
            }
        }
        (body.len() == end as usize).then_some(body)
    }
}

/// Why a fragment was not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Out of reassembly memory: the whole message is dropped (§6.7).
    OutOfMemory,
    /// The pieces would make a message larger than max-message-size.
    TooLarge,
}

/// Reassembly buffers with a memory bound and an expiry.
pub struct Reassembler {
    partials: HashMap<TransactionId, Partial>,
    held: usize,
    limit: usize,
    max_message: usize,
    lifetime: Duration,
}

impl Reassembler {
    /// Holds at most `limit` bytes of partial messages, each at most `max_message`
    /// bytes, for `lifetime` after their first fragment.
    pub fn new(limit: usize, max_message: usize, lifetime: Duration) -> Self {
        Reassembler {
            partials: HashMap::new(),
            held: 0,
            limit,
            max_message,
            lifetime,
        }
    }

    /// Bytes held now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Adds a fragment; returns the whole message once its last missing piece arrives.
    pub fn add(&mut self, now: Time, header: &ForwardingHeader, payload: &[u8]) -> Result<Option<Vec<u8>>, Refused> {
        let txid = header.transaction_id;
        let offset = header.fragment.offset();
        let end = offset as usize + payload.len();
        if end > self.max_message {
            self.drop_partial(txid);
            return Err(Refused::TooLarge);
        }
        if self.held + payload.len() > self.limit {
            self.drop_partial(txid);
            return Err(Refused::OutOfMemory);
        }
        let lifetime = self.lifetime;
        let p = self.partials.entry(txid).or_insert_with(|| Partial {
            header: header.clone(),
            pieces: BTreeMap::new(),
            end: None,
            bytes: 0,
            expires: now + lifetime,
        });
        if offset == 0 {
            // The first fragment's header is the one the whole message keeps.
            p.header = header.clone();
        }
        if header.fragment.is_last() {
            p.end = Some(end as u32);
        }
        if let Some(old) = p.pieces.insert(offset, payload.to_vec()) {
            p.bytes -= old.len();
            self.held -= old.len();
        }
        p.bytes += payload.len();
        self.held += payload.len();
        let Some(body) = p.complete() else { return Ok(None) };
        let mut header = p.header.clone();
        header.fragment = Fragment::UNFRAGMENTED;
        self.drop_partial(txid);
        let Ok(header_len) = header.encoded_len() else {
            return Ok(None);
        };
        let mut w = Writer::with_capacity(header_len + body.len());
        if header.encode(&mut w, (header_len + body.len()) as u32).is_err() {
            return Ok(None);
        }
        w.bytes(&body);
        Ok(Some(w.into_vec()))
    }

    fn drop_partial(&mut self, txid: TransactionId) {
        if let Some(p) = self.partials.remove(&txid) {
            self.held -= p.bytes;
        }
    }

    /// Forgets partial messages older than the lifetime; returns how many.
    pub fn expire(&mut self, now: Time) -> usize {
        let before = self.partials.len();
        let mut gone: Vec<TransactionId> = self
            .partials
            .iter()
            .filter(|(_, p)| p.expires <= now)
            .map(|(t, _)| *t)
            .collect();
        gone.sort();
        for t in gone {
            self.drop_partial(t);
        }
        before - self.partials.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reload_wire::{Message, MessageBody, PingReq, WireConfig, samples};

    fn big_ping(padding: usize) -> Vec<u8> {
        let mut m = samples::all()
            .into_iter()
            .find(|s| s.name == "ping_req")
            .expect("sample")
            .message;
        m.contents.body = MessageBody::PingReq(PingReq {
            padding: vec![0x5a; padding],
        });
        m.encode().expect("encodes")
    }

    fn reassemble(frags: &[Vec<u8>], r: &mut Reassembler) -> Option<Vec<u8>> {
        let mut whole = None;
        for f in frags {
            let raw = RawMessage::split(f, usize::MAX).expect("fragment header");
            if let Some(m) = r.add(Time::ZERO, &raw.header, raw.payload).expect("kept") {
                whole = Some(m);
            }
        }
        whole
    }

    #[test]
    fn fragments_fit_and_reassemble_in_any_order() {
        let msg = big_ping(3000);
        let frags = fragment(&msg, 1200);
        assert!(frags.len() >= 3);
        assert!(frags.iter().all(|f| f.len() <= 1200 - VIA_ROOM));
        let mut r = Reassembler::new(64 * 1024, 5000, Duration::from_secs(15));
        let mut reversed = frags.clone();
        reversed.reverse();
        let whole = reassemble(&reversed, &mut r).expect("complete");
        assert_eq!(whole, msg);
        assert_eq!(r.held(), 0);
        Message::decode(&whole, &WireConfig::default()).expect("a whole message again");
    }

    #[test]
    fn small_messages_and_tiny_mtus_are_left_whole() {
        let msg = big_ping(10);
        assert_eq!(fragment(&msg, 1500), vec![msg.clone()]);
        let big = big_ping(3000);
        // No room for 256 body bytes: leave it to IP fragmentation.
        assert_eq!(fragment(&big, 300), vec![big.clone()]);
    }

    #[test]
    fn memory_is_bounded_and_partials_expire() {
        let msg = big_ping(4000);
        let frags = fragment(&msg, 1000);
        assert!(frags.len() >= 4);
        let share = RawMessage::split(&frags[0], usize::MAX).expect("header").payload.len();
        // Room for two fragments' bodies, not three.
        let mut r = Reassembler::new(2 * share + 1, 5000, Duration::from_secs(15));
        let raw = RawMessage::split(&frags[0], usize::MAX).expect("header");
        assert_eq!(r.add(Time::ZERO, &raw.header, raw.payload), Ok(None));
        let raw = RawMessage::split(&frags[1], usize::MAX).expect("header");
        assert_eq!(r.add(Time::ZERO, &raw.header, raw.payload), Ok(None));
        let raw = RawMessage::split(&frags[2], usize::MAX).expect("header");
        assert_eq!(r.add(Time::ZERO, &raw.header, raw.payload), Err(Refused::OutOfMemory));
        assert_eq!(r.held(), 0, "the whole message is dropped");
        let raw = RawMessage::split(&frags[0], usize::MAX).expect("header");
        r.add(Time::ZERO, &raw.header, raw.payload).expect("kept");
        assert_eq!(r.expire(Time::ZERO + Duration::from_secs(16)), 1);
        assert_eq!(r.held(), 0);
    }
}
