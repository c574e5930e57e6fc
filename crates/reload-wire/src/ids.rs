//! Identifiers: Node-ID, Resource-ID, Kind-ID, transaction id and the overlay hash.

use std::fmt;

use serde::{Serialize, Serializer};
use sha1::{Digest, Sha1};

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::hex;

/// Length of a Node-ID in bytes. RFC 6940 §6.3.1.1 lets an overlay pick 16 to 20
/// bytes; CHORD-RELOAD, the mandatory topology, uses 128-bit Node-IDs (§10).
pub const NODE_ID_LEN: usize = 16;

/// `typedef opaque NodeId[NodeIdLength]` (RFC 6940 §6.3.1.1): fixed length, no prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; NODE_ID_LEN]);

impl NodeId {
    /// The wildcard Node-ID, all ones (RFC 6940 §3, §6.1.1): "deliver to the first peer".
    pub const WILDCARD: NodeId = NodeId([0xff; NODE_ID_LEN]);
    /// All zeros, reserved (RFC 6940 §3).
    pub const ZERO: NodeId = NodeId([0; NODE_ID_LEN]);

    /// The Node-ID as bytes, most significant first.
    pub fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }

    /// Whether this is the wildcard Node-ID.
    pub fn is_wildcard(&self) -> bool {
        *self == NodeId::WILDCARD
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Option<NodeId> {
        let v = hex::decode(s)?;
        Some(NodeId(v.try_into().ok()?))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", hex::encode(&self.0))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl Encode for NodeId {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.bytes(&self.0);
        Ok(())
    }
}

impl Decode for NodeId {
    const NAME: &'static str = "NodeId";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NodeId(r.array("NodeId")?))
    }
}

/// `typedef opaque ResourceId<0..2^8-1>` (RFC 6940 §6.3.1.1): up to 255 bytes
/// behind a one-byte length. CHORD-RELOAD's Resource-IDs are 16 bytes (§10.2).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ResourceId(Vec<u8>);

impl ResourceId {
    /// The longest Resource-ID the one-byte prefix allows.
    pub const MAX_LEN: usize = 255;

    /// Wraps bytes; `None` if longer than [`ResourceId::MAX_LEN`].
    pub fn new(bytes: Vec<u8>) -> Option<ResourceId> {
        (bytes.len() <= Self::MAX_LEN).then_some(ResourceId(bytes))
    }

    /// The Resource-ID's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<NodeId> for ResourceId {
    fn from(n: NodeId) -> Self {
        ResourceId(n.0.to_vec())
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceId({})", hex::encode(&self.0))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl Encode for ResourceId {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.opaque(Prefix::U8, "ResourceId", &self.0)
    }
}

impl Decode for ResourceId {
    const NAME: &'static str = "ResourceId";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ResourceId(r.opaque(Prefix::U8, "ResourceId")?))
    }
}

/// `typedef uint32 KindId` (RFC 6940 §6.5.4.1, registry §14.6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct KindId(pub u32);

impl KindId {
    /// RFC 7904 §9.1.
    pub const SIP_REGISTRATION: KindId = KindId(0x1);
    /// RFC 6940 §9.
    pub const TURN_SERVICE: KindId = KindId(0x2);
    /// RFC 6940 §8.
    pub const CERTIFICATE_BY_NODE: KindId = KindId(0x3);
    /// RFC 6940 §8.
    pub const CERTIFICATE_BY_USER: KindId = KindId(0x10);

    /// The registered name, if this Kind-ID is one of the above.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            KindId::SIP_REGISTRATION => "SIP-REGISTRATION",
            KindId::TURN_SERVICE => "TURN-SERVICE",
            KindId::CERTIFICATE_BY_NODE => "CERTIFICATE_BY_NODE",
            KindId::CERTIFICATE_BY_USER => "CERTIFICATE_BY_USER",
            _ => return None,
        })
    }
}

impl fmt::Debug for KindId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "KindId({:#x})", self.0),
        }
    }
}

impl Encode for KindId {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u32(self.0);
        Ok(())
    }
}

impl Decode for KindId {
    const NAME: &'static str = "KindId";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(KindId(r.u32("KindId")?))
    }
}

/// The forwarding header's 64-bit transaction id (RFC 6940 §6.3.2); random per request.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TransactionId(pub u64);

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId({:#018x})", self.0)
    }
}

/// The forwarding header's `overlay` field: the low 32 bits of SHA-1 of the overlay
/// name (RFC 6940 §6.3.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct OverlayHash(pub u32);

impl OverlayHash {
    /// Hashes an overlay name as §6.3.2 says: the lower 32 bits of its SHA-1.
    pub fn from_overlay_name(name: &str) -> OverlayHash {
        let digest = Sha1::digest(name.as_bytes());
        let mut low = [0u8; 4];
        low.copy_from_slice(&digest[16..20]);
        OverlayHash(u32::from_be_bytes(low))
    }
}

impl fmt::Debug for OverlayHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OverlayHash({:#010x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_hash_is_low_32_bits_of_sha1() {
        // SHA-1("overlay.example.org") ends in ...; computed independently below.
        let digest = Sha1::digest(b"overlay.example.org");
        let want = u32::from_be_bytes([digest[16], digest[17], digest[18], digest[19]]);
        assert_eq!(OverlayHash::from_overlay_name("overlay.example.org").0, want);
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d (FIPS 180 test vector).
        assert_eq!(OverlayHash::from_overlay_name("abc").0, 0x9cd0_d89d);
    }

    #[test]
    fn resource_id_length_is_bounded() {
        assert!(ResourceId::new(vec![0; 255]).is_some());
        assert!(ResourceId::new(vec![0; 256]).is_none());
    }
}
