//! Errors of the codec: what was wrong, and in which field.

use std::fmt;

use crate::ids::KindId;

/// Why bytes could not be decoded. Always names the field being read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct DecodeError {
    /// The structure and field being read, as the RFC names them (`StoredData.lifetime`).
    pub field: &'static str,
    /// What was wrong with it.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error of `kind` in `field`.
    pub fn new(field: &'static str, kind: DecodeErrorKind) -> Self {
        DecodeError { field, kind }
    }

    /// A value outside what the RFC allows for `field`.
    pub fn invalid(field: &'static str, value: u64, expected: &'static str) -> Self {
        DecodeError::new(field, DecodeErrorKind::InvalidValue { value, expected })
    }
}

/// The reasons decoding can fail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// A fixed field or a length prefix asks for more bytes than remain.
    #[error("needs {needed} bytes but only {remaining} remain")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the enclosing structure.
        remaining: usize,
    },
    /// A structure ended before the bytes allotted to it did.
    #[error("{0} bytes left over after the end of the structure")]
    TrailingBytes(usize),
    /// A field holds a value the RFC does not allow there.
    #[error("value {value:#x} is not allowed: expected {expected}")]
    InvalidValue {
        /// The value found.
        value: u64,
        /// What the RFC allows.
        expected: &'static str,
    },
    /// A length field disagrees with the bytes actually present.
    #[error("declared length {declared} but {actual} bytes are present")]
    LengthMismatch {
        /// The length the field declares.
        declared: u64,
        /// The length found.
        actual: u64,
    },
    /// The message is larger than the overlay's max-message-size.
    #[error("message of {size} bytes exceeds the maximum message size of {max} bytes")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// Kinds whose data model this node does not know, so their values cannot be
    /// parsed (RFC 6940 §7.4.1.2: the answer is Error_Unknown_Kind listing them).
    #[error("unknown Kind-IDs {}", KindList(.0))]
    UnknownKinds(Vec<KindId>),
    /// The message is a fragment (RFC 6940 §6.7) and must be reassembled first.
    #[error("message is a fragment (offset {offset}, last {last}); reassemble it first")]
    Fragment {
        /// Byte offset of this fragment's data.
        offset: u32,
        /// Whether it is the last fragment.
        last: bool,
    },
}

struct KindList<'a>(&'a [KindId]);

impl fmt::Display for KindList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{:#x}", k.0)?;
        }
        Ok(())
    }
}

/// Why a structure could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct EncodeError {
    /// The field that could not be written.
    pub field: &'static str,
    /// What was wrong with it.
    pub kind: EncodeErrorKind,
}

/// The reasons encoding can fail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeErrorKind {
    /// The content is longer than its length prefix can say.
    #[error("{len} bytes do not fit a vector of at most {max} bytes")]
    TooLong {
        /// Bytes of content.
        len: usize,
        /// The prefix's limit.
        max: usize,
    },
    /// The value breaks a rule of the RFC that the type alone cannot enforce.
    #[error("{0}")]
    Invalid(&'static str),
}

impl EncodeError {
    /// Content of `len` bytes in a field that holds at most `max`.
    pub fn too_long(field: &'static str, len: usize, max: usize) -> Self {
        EncodeError {
            field,
            kind: EncodeErrorKind::TooLong { len, max },
        }
    }

    /// A value that breaks an RFC rule.
    pub fn invalid(field: &'static str, why: &'static str) -> Self {
        EncodeError {
            field,
            kind: EncodeErrorKind::Invalid(why),
        }
    }
}
