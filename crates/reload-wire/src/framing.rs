//! The per-hop framing header (RFC 6940 §6.6.2): data frames with a sequence number
//! and acknowledgements with the 32-bit received bitmask.

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::FramedMessageType;
use crate::error::{DecodeError, EncodeError};
use crate::hex;

/// `FramedMessage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FramedMessage {
    /// A message on the link.
    Data {
        /// Per-connection sequence number, from zero, one more per frame sent.
        sequence: u32,
        /// The RELOAD message, `opaque<0..2^24-1>`.
        #[serde(serialize_with = "hex::serialize")]
        message: Vec<u8>,
    },
    /// An acknowledgement.
    Ack {
        /// The sequence number acknowledged.
        ack_sequence: u32,
        /// Bit `N-M` set when frame M (N-32 < M < N) is among the last 32 received.
        received: u32,
    },
}

/// Bytes before the message in a data frame: type, sequence, 24-bit length.
pub const DATA_FRAME_OVERHEAD: usize = 8;

/// Bytes of an ack frame.
pub const ACK_FRAME_LEN: usize = 9;

impl FramedMessage {
    /// How many bytes the frame at the start of `buf` needs in all, once its header
    /// has arrived; `None` while fewer bytes than the header are buffered. Lets a
    /// stream transport cut frames without copying. Fails on an unknown frame type.
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
        let Some(&ty) = buf.first() else { return Ok(None) };
        match FramedMessageType(ty) {
            FramedMessageType::DATA => Ok(buf
                .get(5..8)
                .map(|l| DATA_FRAME_OVERHEAD + (usize::from(l[0]) << 16 | usize::from(l[1]) << 8 | usize::from(l[2])))),
            FramedMessageType::ACK => Ok(Some(ACK_FRAME_LEN)),
            other => Err(DecodeError::invalid(
                "FramedMessage.type",
                other.0.into(),
                "data (128) or ack (129)",
            )),
        }
    }

    /// The ack for data frame `sequence` (N), given the sequence numbers of frames
    /// received before it (§6.6.2): for each earlier M with N-32 < M < N, bit N-M of
    /// `received` is set, counting bit 0 as the least significant. Bit 0 (M = N) is
    /// never set; older frames are simply not reported.
    pub fn ack_for(sequence: u32, previously_received: impl IntoIterator<Item = u32>) -> FramedMessage {
        let mut received = 0u32;
        for m in previously_received {
            let back = sequence.wrapping_sub(m);
            if (1..32).contains(&back) {
                received |= 1 << back;
            }
        }
        FramedMessage::Ack {
            ack_sequence: sequence,
            received,
        }
    }

    /// The sequence numbers an ack reports as received: the acknowledged one, then
    /// those its bitmask marks, most recent first. Empty for a data frame.
    pub fn acknowledged(&self) -> Vec<u32> {
        match self {
            FramedMessage::Data { .. } => Vec::new(),
            FramedMessage::Ack { ack_sequence, received } => std::iter::once(*ack_sequence)
                .chain(
                    (1..32)
                        .filter(|b| received & (1 << b) != 0)
                        .map(|b| ack_sequence.wrapping_sub(b)),
                )
                .collect(),
        }
    }
}

impl Encode for FramedMessage {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            FramedMessage::Data { sequence, message } => {
                w.u8(FramedMessageType::DATA.0);
                w.u32(*sequence);
                w.opaque(Prefix::U24, "FramedMessage.message", message)
            }
            FramedMessage::Ack { ack_sequence, received } => {
                w.u8(FramedMessageType::ACK.0);
                w.u32(*ack_sequence);
                w.u32(*received);
                Ok(())
            }
        }
    }
}

impl Decode for FramedMessage {
    const NAME: &'static str = "FramedMessage";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match FramedMessageType(r.u8("FramedMessage.type")?) {
            FramedMessageType::DATA => Ok(FramedMessage::Data {
                sequence: r.u32("FramedMessage.sequence")?,
                message: r.opaque(Prefix::U24, "FramedMessage.message")?,
            }),
            FramedMessageType::ACK => Ok(FramedMessage::Ack {
                ack_sequence: r.u32("FramedMessage.ack_sequence")?,
                received: r.u32("FramedMessage.received")?,
            }),
            other => Err(DecodeError::invalid(
                "FramedMessage.type",
                other.0.into(),
                "data (128) or ack (129)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_bitmask_marks_n_minus_m() {
        // N = 40; received 39 (bit 1), 35 (bit 5), 9 (bit 31); 8 is 32 back and 40 is N itself.
        let ack = FramedMessage::ack_for(40, [39, 35, 9, 8, 40, 41]);
        assert_eq!(
            ack,
            FramedMessage::Ack {
                ack_sequence: 40,
                received: (1 << 1) | (1 << 5) | (1 << 31),
            }
        );
        assert_eq!(ack.acknowledged(), vec![40, 39, 35, 9]);
    }

    #[test]
    fn bitmask_wraps_around_the_sequence_space() {
        let ack = FramedMessage::ack_for(1, [0, u32::MAX]);
        assert_eq!(ack.acknowledged(), vec![1, 0, u32::MAX]);
    }

    #[test]
    fn frame_len_cuts_a_stream() {
        let data = FramedMessage::Data {
            sequence: 1,
            message: vec![7; 300],
        }
        .to_bytes()
        .expect("encodes");
        assert_eq!(FramedMessage::frame_len(&data[..4]), Ok(None));
        assert_eq!(FramedMessage::frame_len(&data), Ok(Some(308)));
        assert_eq!(FramedMessage::frame_len(&[0x81]), Ok(Some(ACK_FRAME_LEN)));
        assert!(FramedMessage::frame_len(&[0x7f]).is_err());
    }
}
