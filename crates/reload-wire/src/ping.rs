//! Ping (RFC 6940 §6.5.3).

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::hex;

/// `PingReq`: only padding, up to 65 535 bytes, to probe path MTU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct PingReq {
    /// Padding.
    #[serde(serialize_with = "hex::serialize")]
    pub padding: Vec<u8>,
}

impl Encode for PingReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.opaque(Prefix::U16, "PingReq.padding", &self.padding)
    }
}

impl Decode for PingReq {
    const NAME: &'static str = "PingReq";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PingReq {
            padding: r.opaque(Prefix::U16, "PingReq.padding")?,
        })
    }
}

/// `PingAns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PingAns {
    /// A random id telling answers apart.
    pub response_id: u64,
    /// When the answer was made, milliseconds since the Unix epoch.
    pub time: u64,
}

impl Encode for PingAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u64(self.response_id);
        w.u64(self.time);
        Ok(())
    }
}

impl Decode for PingAns {
    const NAME: &'static str = "PingAns";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PingAns {
            response_id: r.u64("PingAns.response_id")?,
            time: r.u64("PingAns.time")?,
        })
    }
}
