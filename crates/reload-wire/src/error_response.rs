//! The Error response (RFC 6940 §6.3.3.1) and the structured error_info that some
//! error codes carry.

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::ErrorCode;
use crate::error::{DecodeError, EncodeError};
use crate::hex;
use crate::ids::KindId;
use crate::storage::StoreAns;

/// `ErrorResponse`: the body of a message whose code is 0xffff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error_code: ErrorCode,
    /// Details: UTF-8 text unless the code defines a structure.
    #[serde(serialize_with = "hex::serialize_text")]
    pub error_info: Vec<u8>,
}

impl ErrorResponse {
    /// An error with a human-readable explanation.
    pub fn with_text(error_code: ErrorCode, text: &str) -> Self {
        ErrorResponse {
            error_code,
            error_info: text.as_bytes().to_vec(),
        }
    }

    /// Error_Unknown_Kind, whose error_info is `KindId unknown_kinds<0..2^8-1>` (§7.4.1.2).
    pub fn unknown_kinds(kinds: &[KindId]) -> Result<Self, EncodeError> {
        let mut w = Writer::new();
        w.list(Prefix::U8, "ErrorResponse.unknown_kinds", kinds)?;
        Ok(ErrorResponse {
            error_code: ErrorCode::UNKNOWN_KIND,
            error_info: w.into_vec(),
        })
    }

    /// The Kind-IDs of an Error_Unknown_Kind.
    pub fn decode_unknown_kinds(&self) -> Result<Vec<KindId>, DecodeError> {
        let mut r = Reader::new(&self.error_info);
        let kinds = r.list(Prefix::U8, "ErrorResponse.unknown_kinds", KindId::decode)?;
        r.finish("ErrorResponse.error_info")?;
        Ok(kinds)
    }

    /// Error_Generation_Counter_Too_Low, whose error_info is a StoreAns with the
    /// current generation counters and empty replica lists (§7.4.1.2).
    pub fn generation_counter_too_low(current: &StoreAns) -> Result<Self, EncodeError> {
        Ok(ErrorResponse {
            error_code: ErrorCode::GENERATION_COUNTER_TOO_LOW,
            error_info: current.to_bytes()?,
        })
    }

    /// The StoreAns of an Error_Generation_Counter_Too_Low.
    pub fn decode_generation_counters(&self) -> Result<StoreAns, DecodeError> {
        StoreAns::from_bytes(&self.error_info)
    }
}

impl Encode for ErrorResponse {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u16(self.error_code.0);
        w.opaque(Prefix::U16, "ErrorResponse.error_info", &self.error_info)
    }
}

impl Decode for ErrorResponse {
    const NAME: &'static str = "ErrorResponse";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ErrorResponse {
            error_code: ErrorCode(r.u16("ErrorResponse.error_code")?),
            error_info: r.opaque(Prefix::U16, "ErrorResponse.error_info")?,
        })
    }
}
