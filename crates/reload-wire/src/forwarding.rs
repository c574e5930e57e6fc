//! The forwarding header (RFC 6940 §6.3.2): what every hop reads to route a message.

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::{DestinationType, ErrorCode, ForwardingOptionType};
use crate::error::{DecodeError, EncodeError};
use crate::hex;
use crate::ids::{NODE_ID_LEN, NodeId, OverlayHash, ResourceId, TransactionId};

/// `relo_token`: "RELO" with the high bit of the first byte set.
pub const RELO_TOKEN: u32 = 0xd245_4c4f;

/// RELOAD 1.0, as `version` carries it (times ten).
pub const VERSION: u8 = 0x0a;

/// The initial TTL the RFC recommends (§6.3.2), also the default `initial-ttl`.
pub const DEFAULT_TTL: u8 = 100;

/// Bytes of the fixed part of the forwarding header, before the three lists.
pub const FIXED_HEADER_LEN: usize = 38;

/// One entry of a destination or via list (RFC 6940 §6.3.2.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Destination {
    /// A Node-ID.
    Node {
        /// The node.
        node_id: NodeId,
    },
    /// A Resource-ID; only ever last in a destination list.
    Resource {
        /// The resource. At most 254 bytes here: the TLV length must also cover
        /// the Resource-ID's own length byte.
        resource_id: ResourceId,
    },
    /// An opaque id (`opaque_id_type`), meaningful only to the peer that made it.
    OpaqueId {
        /// The id's bytes.
        #[serde(serialize_with = "hex::serialize")]
        opaque_id: Vec<u8>,
    },
    /// The 16-bit compressed form: an opaque id of two bytes whose top bit is set.
    Compressed {
        /// The 16 bits, top bit set.
        id: u16,
    },
    /// A destination type this implementation does not know, kept as received.
    Unknown {
        /// The type, below 128 and not a known type.
        destination_type: DestinationType,
        /// The destination_data bytes.
        #[serde(serialize_with = "hex::serialize")]
        data: Vec<u8>,
    },
}

impl Destination {
    /// A Node-ID destination.
    pub fn node(node_id: NodeId) -> Self {
        Destination::Node { node_id }
    }

    /// A Resource-ID destination.
    pub fn resource(resource_id: ResourceId) -> Self {
        Destination::Resource { resource_id }
    }

    /// The Node-ID, if this is a node destination.
    pub fn node_id(&self) -> Option<NodeId> {
        match self {
            Destination::Node { node_id } => Some(*node_id),
            _ => None,
        }
    }
}

impl Encode for Destination {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        const FIELD: &str = "Destination.destination_data";
        let ty = match self {
            Destination::Compressed { id } => {
                if id & 0x8000 == 0 {
                    return Err(EncodeError::invalid(
                        "Destination.opaque_id",
                        "the 16-bit form must have its top bit set",
                    ));
                }
                w.u16(*id);
                return Ok(());
            }
            Destination::Node { .. } => DestinationType::NODE,
            Destination::Resource { .. } => DestinationType::RESOURCE,
            Destination::OpaqueId { .. } => DestinationType::OPAQUE_ID,
            Destination::Unknown { destination_type, .. } => {
                if destination_type.0 == 0 || destination_type.0 >= 0x80 || destination_type.name().is_some() {
                    return Err(EncodeError::invalid(
                        "Destination.type",
                        "an unknown destination type is 4..127",
                    ));
                }
                *destination_type
            }
        };
        w.u8(ty.0);
        // The TLV length covers the whole destination_data, including the inner
        // length byte of a Resource-ID or opaque id (§6.3.2.2).
        w.vector(Prefix::U8, FIELD, |w| match self {
            Destination::Node { node_id } => node_id.encode(w),
            Destination::Resource { resource_id } => resource_id.encode(w),
            Destination::OpaqueId { opaque_id } => w.opaque(Prefix::U8, "Destination.opaque_id", opaque_id),
            Destination::Unknown { data, .. } => {
                w.bytes(data);
                Ok(())
            }
            Destination::Compressed { .. } => Ok(()),
        })
    }
}

impl Decode for Destination {
    const NAME: &'static str = "Destination";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let first = r.u8("Destination.type")?;
        if first & 0x80 != 0 {
            let second = r.u8("Destination.opaque_id")?;
            return Ok(Destination::Compressed {
                id: u16::from_be_bytes([first, second]),
            });
        }
        let mut data = r.vector(Prefix::U8, "Destination.length")?;
        let dest = match DestinationType(first) {
            DestinationType::NODE => {
                if data.remaining() != NODE_ID_LEN {
                    return Err(DecodeError::invalid(
                        "Destination.length",
                        data.remaining() as u64,
                        "16, the length of a CHORD-RELOAD Node-ID",
                    ));
                }
                Destination::Node {
                    node_id: NodeId::decode(&mut data)?,
                }
            }
            DestinationType::RESOURCE => Destination::Resource {
                resource_id: ResourceId::decode(&mut data)?,
            },
            DestinationType::OPAQUE_ID => Destination::OpaqueId {
                opaque_id: data.opaque(Prefix::U8, "Destination.opaque_id")?,
            },
            DestinationType(0) => {
                return Err(DecodeError::invalid(
                    "Destination.type",
                    0,
                    "node, resource or opaque_id_type",
                ));
            }
            destination_type => Destination::Unknown {
                destination_type,
                data: data.take_rest().to_vec(),
            },
        };
        data.finish("Destination.destination_data")?;
        Ok(dest)
    }
}

/// Flags of a forwarding option (RFC 6940 §6.3.2.3).
pub mod option_flags {
    /// A forwarding peer that does not understand the option must refuse the request.
    pub const FORWARD_CRITICAL: u8 = 0x01;
    /// The responding node must refuse the request if it does not understand the option.
    pub const DESTINATION_CRITICAL: u8 = 0x02;
    /// The responder copies the option into the response, flags cleared.
    pub const RESPONSE_COPY: u8 = 0x04;
}

/// A forwarding header option (RFC 6940 §6.3.2.3). No option is defined beyond the
/// experimental one, so every option is kept as type, flags and raw value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForwardingOption {
    /// The option's type.
    pub option_type: ForwardingOptionType,
    /// [`option_flags`] bits.
    pub flags: u8,
    /// The option's value.
    #[serde(serialize_with = "hex::serialize")]
    pub value: Vec<u8>,
}

impl ForwardingOption {
    /// Whether a forwarding peer must refuse the request if it does not understand this option.
    pub fn forward_critical(&self) -> bool {
        self.flags & option_flags::FORWARD_CRITICAL != 0
    }

    /// Whether the responding node must refuse the request if it does not understand this option.
    pub fn destination_critical(&self) -> bool {
        self.flags & option_flags::DESTINATION_CRITICAL != 0
    }

    /// Whether the responder copies the option into its response.
    pub fn response_copy(&self) -> bool {
        self.flags & option_flags::RESPONSE_COPY != 0
    }

    /// The copy that goes into the response: same option, the three flags cleared (§6.3.2.3).
    pub fn copy_for_response(&self) -> ForwardingOption {
        ForwardingOption {
            flags: self.flags
                & !(option_flags::FORWARD_CRITICAL | option_flags::DESTINATION_CRITICAL | option_flags::RESPONSE_COPY),
            ..self.clone()
        }
    }
}

impl Encode for ForwardingOption {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u8(self.option_type.0);
        w.u8(self.flags);
        w.opaque(Prefix::U16, "ForwardingOption.option", &self.value)
    }
}

impl Decode for ForwardingOption {
    const NAME: &'static str = "ForwardingOption";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ForwardingOption {
            option_type: ForwardingOptionType(r.u8("ForwardingOption.type")?),
            flags: r.u8("ForwardingOption.flags")?,
            value: r.opaque(Prefix::U16, "ForwardingOption.length")?,
        })
    }
}

/// The forwarding header's `fragment` field (RFC 6940 §6.3.2, §6.7).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Fragment(pub u32);

impl Fragment {
    /// An unfragmented message: high bit, last-fragment bit, offset 0.
    pub const UNFRAGMENTED: Fragment = Fragment(0xc000_0000);
    const HIGH: u32 = 0x8000_0000;
    const LAST: u32 = 0x4000_0000;
    const OFFSET: u32 = 0x00ff_ffff;

    /// A fragment whose data starts `offset` bytes after the forwarding header.
    /// `None` if the offset does not fit 24 bits.
    pub fn new(offset: u32, last: bool) -> Option<Fragment> {
        (offset <= Self::OFFSET).then_some(Fragment(Self::HIGH | if last { Self::LAST } else { 0 } | offset))
    }

    /// Whether this is the last (or only) fragment.
    pub fn is_last(self) -> bool {
        self.0 & Self::LAST != 0
    }

    /// Byte offset of the fragment's data in the whole message body.
    pub fn offset(self) -> u32 {
        self.0 & Self::OFFSET
    }

    /// Whether this is a whole message rather than a piece of one.
    pub fn is_whole(self) -> bool {
        self.is_last() && self.offset() == 0
    }
}

impl std::fmt::Debug for Fragment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Fragment({:#010x}: last={}, offset={})",
            self.0,
            self.is_last(),
            self.offset()
        )
    }
}

/// `ForwardingHeader` (RFC 6940 §6.3.2) without its `length` field, which is a
/// property of the encoded message and is written by [`crate::Message`] or
/// [`ForwardingHeader::encode`], and checked on decode.
///
/// The codec reads `version` and `ttl` as they are; refusing another version or a
/// TTL above initial-ttl (§6.3.2) is the node's decision, with the error response
/// the RFC names, so the header must decode to be answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForwardingHeader {
    /// Low 32 bits of SHA-1 of the overlay name.
    pub overlay: OverlayHash,
    /// Sequence number of the sender's configuration document (§6.3.2.1).
    pub configuration_sequence: u16,
    /// Protocol version times ten; [`VERSION`] for RELOAD 1.0.
    pub version: u8,
    /// Hops left.
    pub ttl: u8,
    /// Fragmentation state.
    pub fragment: Fragment,
    /// The transaction this message belongs to.
    pub transaction_id: TransactionId,
    /// Largest acceptable response, 0 for no limit.
    pub max_response_length: u32,
    /// Where the message has been.
    pub via_list: Vec<Destination>,
    /// Where the message is going; the first entry is the next hop.
    pub destination_list: Vec<Destination>,
    /// Forwarding options.
    pub options: Vec<ForwardingOption>,
}

impl ForwardingHeader {
    /// A header for a new, unfragmented message to `destination_list`.
    pub fn new(overlay: OverlayHash, transaction_id: TransactionId, destination_list: Vec<Destination>) -> Self {
        ForwardingHeader {
            overlay,
            configuration_sequence: 0,
            version: VERSION,
            ttl: DEFAULT_TTL,
            fragment: Fragment::UNFRAGMENTED,
            transaction_id,
            max_response_length: 0,
            via_list: Vec::new(),
            destination_list,
            options: Vec::new(),
        }
    }

    /// Writes the header with `length` as the message's total length.
    pub fn encode(&self, w: &mut Writer, length: u32) -> Result<(), EncodeError> {
        if self.fragment.0 & Fragment::HIGH == 0 {
            return Err(EncodeError::invalid(
                "ForwardingHeader.fragment",
                "the high bit MUST be set (RFC 6940 §6.7)",
            ));
        }
        let at = w.len();
        w.u32(RELO_TOKEN);
        w.u32(self.overlay.0);
        w.u16(self.configuration_sequence);
        w.u8(self.version);
        w.u8(self.ttl);
        w.u32(self.fragment.0);
        w.u32(length);
        w.u64(self.transaction_id.0);
        w.u32(self.max_response_length);
        let lengths_at = w.len();
        w.u16(0);
        w.u16(0);
        w.u16(0);
        // The three list lengths precede the lists (§6.3.2); patch them afterwards.
        let mut write_list = |i: usize, field: &'static str, items: &mut dyn Iterator<Item = &dyn Encode>| {
            let start = w.len();
            for item in items {
                item.encode(w)?;
            }
            let n = w.len() - start;
            if n > 0xffff {
                return Err(EncodeError::too_long(field, n, 0xffff));
            }
            w.patch(lengths_at + 2 * i, 2, n);
            Ok(())
        };
        write_list(
            0,
            "ForwardingHeader.via_list",
            &mut self.via_list.iter().map(|d| d as &dyn Encode),
        )?;
        write_list(
            1,
            "ForwardingHeader.destination_list",
            &mut self.destination_list.iter().map(|d| d as &dyn Encode),
        )?;
        write_list(
            2,
            "ForwardingHeader.options",
            &mut self.options.iter().map(|o| o as &dyn Encode),
        )?;
        debug_assert!(w.len() - at >= FIXED_HEADER_LEN);
        Ok(())
    }

    /// Reads a header; returns it with the `length` field it declared.
    pub fn decode(r: &mut Reader<'_>) -> Result<(ForwardingHeader, u32), DecodeError> {
        let token = r.u32("ForwardingHeader.relo_token")?;
        if token != RELO_TOKEN {
            return Err(DecodeError::invalid(
                "ForwardingHeader.relo_token",
                token.into(),
                "0xd2454c4f (\"RELO\" with the high bit set)",
            ));
        }
        let overlay = OverlayHash(r.u32("ForwardingHeader.overlay")?);
        let configuration_sequence = r.u16("ForwardingHeader.configuration_sequence")?;
        let version = r.u8("ForwardingHeader.version")?;
        let ttl = r.u8("ForwardingHeader.ttl")?;
        let fragment = Fragment(r.u32("ForwardingHeader.fragment")?);
        if fragment.0 & Fragment::HIGH == 0 {
            // §6.7: "implementations SHOULD discard any message with it set to 0".
            return Err(DecodeError::invalid(
                "ForwardingHeader.fragment",
                fragment.0.into(),
                "the high bit set (RFC 6940 §6.7)",
            ));
        }
        let length = r.u32("ForwardingHeader.length")?;
        let transaction_id = TransactionId(r.u64("ForwardingHeader.transaction_id")?);
        let max_response_length = r.u32("ForwardingHeader.max_response_length")?;
        let via_len = usize::from(r.u16("ForwardingHeader.via_list_length")?);
        let dest_len = usize::from(r.u16("ForwardingHeader.destination_list_length")?);
        let opt_len = usize::from(r.u16("ForwardingHeader.options_length")?);
        let via_list = decode_all(r.take(via_len, "ForwardingHeader.via_list")?, Destination::decode)?;
        let destination_list = decode_all(
            r.take(dest_len, "ForwardingHeader.destination_list")?,
            Destination::decode,
        )?;
        let options = decode_all(r.take(opt_len, "ForwardingHeader.options")?, ForwardingOption::decode)?;
        Ok((
            ForwardingHeader {
                overlay,
                configuration_sequence,
                version,
                ttl,
                fragment,
                transaction_id,
                max_response_length,
                via_list,
                destination_list,
                options,
            },
            length,
        ))
    }

    /// The length of this header once encoded.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let mut w = Writer::new();
        self.encode(&mut w, 0)?;
        Ok(w.len())
    }

    /// RFC 6940 §6.3.2.3: the first option that obliges this node to refuse the request
    /// with [`ErrorCode::UNSUPPORTED_FORWARDING_OPTION`]. `forwarding` says whether the
    /// node is about to forward the message (else it is the one responding);
    /// `understood` says which option types the node implements.
    pub fn refused_option(
        &self,
        forwarding: bool,
        understood: impl Fn(ForwardingOptionType) -> bool,
    ) -> Option<(&ForwardingOption, ErrorCode)> {
        self.options
            .iter()
            .find(|o| {
                let critical = if forwarding {
                    o.forward_critical()
                } else {
                    o.destination_critical()
                };
                critical && !understood(o.option_type)
            })
            .map(|o| (o, ErrorCode::UNSUPPORTED_FORWARDING_OPTION))
    }

    /// The options a response must carry: those of the request flagged RESPONSE_COPY,
    /// with their flags cleared (§6.3.2.3).
    pub fn options_for_response(&self) -> Vec<ForwardingOption> {
        self.options
            .iter()
            .filter(|o| o.response_copy())
            .map(ForwardingOption::copy_for_response)
            .collect()
    }
}

/// Decodes back-to-back elements filling all of `bytes`.
fn decode_all<T>(
    bytes: &[u8],
    mut element: impl FnMut(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(element(&mut r)?);
    }
    Ok(out)
}
