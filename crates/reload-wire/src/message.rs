//! A whole RELOAD message (RFC 6940 §6.3): forwarding header, message contents
//! and security block.

use serde::Serialize;

use crate::attach::{AppAttach, AttachReqAns};
use crate::chord::{ChordRouteQueryAns, ChordUpdate};
use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::{MessageCode, MessageExtensionType};
use crate::config_update::ConfigUpdateReq;
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::error_response::ErrorResponse;
use crate::forwarding::ForwardingHeader;
use crate::hex;
use crate::ids::{OverlayHash, TransactionId};
use crate::ping::{PingAns, PingReq};
use crate::probe::{ProbeAns, ProbeReq};
use crate::security::{SecurityBlock, SignerIdentity};
use crate::storage::{DataModels, FetchAns, FetchReq, FindAns, FindReq, StatAns, StatReq, StoreAns, StoreReq};
use crate::topology::{JoinAns, JoinReq, LeaveReq, RouteQueryReq};

/// The default `max-message-size` of the configuration document (RFC 6940 §11.1).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 5000;

/// What a decoder needs beyond the bytes: the size limit and the Kinds' data models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireConfig {
    /// Largest message accepted, in bytes (`max-message-size`).
    pub max_message_size: usize,
    /// Data model of each Kind the overlay defines.
    pub data_models: DataModels,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            data_models: DataModels::registered(),
        }
    }
}

/// `MessageExtension` (RFC 6940 §6.3.3). None is defined beyond the experimental one,
/// so extensions are kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageExtension {
    /// The extension type.
    pub extension_type: MessageExtensionType,
    /// Whether a receiver that does not understand it must answer Error_Unknown_Extension.
    pub critical: bool,
    /// The contents.
    #[serde(serialize_with = "hex::serialize")]
    pub extension_contents: Vec<u8>,
}

impl Encode for MessageExtension {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u16(self.extension_type.0);
        w.boolean(self.critical);
        w.opaque(
            Prefix::U32,
            "MessageExtension.extension_contents",
            &self.extension_contents,
        )
    }
}

impl Decode for MessageExtension {
    const NAME: &'static str = "MessageExtension";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MessageExtension {
            extension_type: MessageExtensionType(r.u16("MessageExtension.type")?),
            critical: r.boolean("MessageExtension.critical")?,
            extension_contents: r.opaque(Prefix::U32, "MessageExtension.extension_contents")?,
        })
    }
}

/// The message body, typed by the message code (RFC 6940 §6.3.3: "a message_code
/// value of join_req means that the structure named JoinReq is inserted").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "method", content = "body", rename_all = "snake_case")]
pub enum MessageBody {
    /// §6.4.2.5.1
    ProbeReq(ProbeReq),
    /// §6.4.2.5.2
    ProbeAns(ProbeAns),
    /// §6.5.1.1
    AttachReq(AttachReqAns),
    /// §6.5.1.2
    AttachAns(AttachReqAns),
    /// §7.4.1.1
    StoreReq(StoreReq),
    /// §7.4.1.2
    StoreAns(StoreAns),
    /// §7.4.2.1
    FetchReq(FetchReq),
    /// §7.4.2.2
    FetchAns(FetchAns),
    /// §7.4.4.1
    FindReq(FindReq),
    /// §7.4.4.2
    FindAns(FindAns),
    /// §6.4.2.1
    JoinReq(JoinReq),
    /// §6.4.2.1
    JoinAns(JoinAns),
    /// §6.4.2.2 with §10.9
    LeaveReq(LeaveReq),
    /// §6.4.2.2: empty.
    LeaveAns,
    /// §6.4.2.3 with §10.7
    UpdateReq(ChordUpdate),
    /// §6.4.2.3: empty.
    UpdateAns,
    /// §6.4.2.4.1
    RouteQueryReq(RouteQueryReq),
    /// §6.4.2.4.2 with §10.8
    RouteQueryAns(ChordRouteQueryAns),
    /// §6.5.3.1
    PingReq(PingReq),
    /// §6.5.3.2
    PingAns(PingAns),
    /// §7.4.3.1
    StatReq(StatReq),
    /// §7.4.3.2
    StatAns(StatAns),
    /// §6.5.2.1
    AppAttachReq(AppAttach),
    /// §6.5.2.2
    AppAttachAns(AppAttach),
    /// §6.5.4.1
    ConfigUpdateReq(ConfigUpdateReq),
    /// §6.5.4.2: empty.
    ConfigUpdateAns,
    /// §6.3.3.1
    Error(ErrorResponse),
    /// A code without a defined body (experimental, unassigned or reserved), kept as received.
    Other {
        /// The message code.
        code: MessageCode,
        /// The body bytes.
        #[serde(serialize_with = "hex::serialize")]
        body: Vec<u8>,
    },
}

impl MessageBody {
    /// The message code this body travels under.
    pub fn code(&self) -> MessageCode {
        use MessageBody as B;
        match self {
            B::ProbeReq(_) => MessageCode::PROBE_REQ,
            B::ProbeAns(_) => MessageCode::PROBE_ANS,
            B::AttachReq(_) => MessageCode::ATTACH_REQ,
            B::AttachAns(_) => MessageCode::ATTACH_ANS,
            B::StoreReq(_) => MessageCode::STORE_REQ,
            B::StoreAns(_) => MessageCode::STORE_ANS,
            B::FetchReq(_) => MessageCode::FETCH_REQ,
            B::FetchAns(_) => MessageCode::FETCH_ANS,
            B::FindReq(_) => MessageCode::FIND_REQ,
            B::FindAns(_) => MessageCode::FIND_ANS,
            B::JoinReq(_) => MessageCode::JOIN_REQ,
            B::JoinAns(_) => MessageCode::JOIN_ANS,
            B::LeaveReq(_) => MessageCode::LEAVE_REQ,
            B::LeaveAns => MessageCode::LEAVE_ANS,
            B::UpdateReq(_) => MessageCode::UPDATE_REQ,
            B::UpdateAns => MessageCode::UPDATE_ANS,
            B::RouteQueryReq(_) => MessageCode::ROUTE_QUERY_REQ,
            B::RouteQueryAns(_) => MessageCode::ROUTE_QUERY_ANS,
            B::PingReq(_) => MessageCode::PING_REQ,
            B::PingAns(_) => MessageCode::PING_ANS,
            B::StatReq(_) => MessageCode::STAT_REQ,
            B::StatAns(_) => MessageCode::STAT_ANS,
            B::AppAttachReq(_) => MessageCode::APP_ATTACH_REQ,
            B::AppAttachAns(_) => MessageCode::APP_ATTACH_ANS,
            B::ConfigUpdateReq(_) => MessageCode::CONFIG_UPDATE_REQ,
            B::ConfigUpdateAns => MessageCode::CONFIG_UPDATE_ANS,
            B::Error(_) => MessageCode::ERROR,
            B::Other { code, .. } => *code,
        }
    }

    /// Writes the body's bytes (without the message code or length).
    pub fn encode_body(&self, w: &mut Writer) -> Result<(), EncodeError> {
        use MessageBody as B;
        match self {
            B::ProbeReq(b) => b.encode(w),
            B::ProbeAns(b) => b.encode(w),
            B::AttachReq(b) | B::AttachAns(b) => b.encode(w),
            B::StoreReq(b) => b.encode(w),
            B::StoreAns(b) => b.encode(w),
            B::FetchReq(b) | B::StatReq(b) => b.encode(w),
            B::FetchAns(b) => b.encode(w),
            B::FindReq(b) => b.encode(w),
            B::FindAns(b) => b.encode(w),
            B::JoinReq(b) => b.encode(w),
            B::JoinAns(b) => b.encode(w),
            B::LeaveReq(b) => b.encode(w),
            B::UpdateReq(b) => b.encode(w),
            B::RouteQueryReq(b) => b.encode(w),
            B::RouteQueryAns(b) => b.encode(w),
            B::PingReq(b) => b.encode(w),
            B::PingAns(b) => b.encode(w),
            B::StatAns(b) => b.encode(w),
            B::AppAttachReq(b) | B::AppAttachAns(b) => b.encode(w),
            B::ConfigUpdateReq(b) => b.encode(w),
            B::Error(b) => b.encode(w),
            B::LeaveAns | B::UpdateAns | B::ConfigUpdateAns => Ok(()),
            B::Other { code, body } => {
                if code.0 == 0 || Self::has_defined_body(*code) {
                    return Err(EncodeError::invalid(
                        "MessageContents.message_code",
                        "a defined code needs its typed body, and 0 is invalid",
                    ));
                }
                w.bytes(body);
                Ok(())
            }
        }
    }

    fn has_defined_body(code: MessageCode) -> bool {
        code.name().is_some()
            && !matches!(
                code,
                MessageCode::EXP_A_REQ | MessageCode::EXP_A_ANS | MessageCode::EXP_B_REQ | MessageCode::EXP_B_ANS
            )
    }

    /// Reads the body of a message with `code`; `body` must be consumed exactly.
    pub fn decode(code: MessageCode, body: &[u8], models: &DataModels) -> Result<Self, DecodeError> {
        use MessageBody as B;
        let mut r = Reader::new(body);
        let r = &mut r;
        let parsed = match code {
            MessageCode::PROBE_REQ => B::ProbeReq(ProbeReq::decode(r)?),
            MessageCode::PROBE_ANS => B::ProbeAns(ProbeAns::decode(r)?),
            MessageCode::ATTACH_REQ => B::AttachReq(AttachReqAns::decode(r)?),
            MessageCode::ATTACH_ANS => B::AttachAns(AttachReqAns::decode(r)?),
            MessageCode::STORE_REQ => B::StoreReq(StoreReq::decode(r, models)?),
            MessageCode::STORE_ANS => B::StoreAns(StoreAns::decode(r)?),
            MessageCode::FETCH_REQ => B::FetchReq(FetchReq::decode(r, models)?),
            MessageCode::FETCH_ANS => B::FetchAns(FetchAns::decode(r, models)?),
            MessageCode::FIND_REQ => B::FindReq(FindReq::decode(r)?),
            MessageCode::FIND_ANS => B::FindAns(FindAns::decode(r)?),
            MessageCode::JOIN_REQ => B::JoinReq(JoinReq::decode(r)?),
            MessageCode::JOIN_ANS => B::JoinAns(JoinAns::decode(r)?),
            MessageCode::LEAVE_REQ => B::LeaveReq(LeaveReq::decode(r)?),
            MessageCode::LEAVE_ANS => B::LeaveAns,
            MessageCode::UPDATE_REQ => B::UpdateReq(ChordUpdate::decode(r)?),
            MessageCode::UPDATE_ANS => B::UpdateAns,
            MessageCode::ROUTE_QUERY_REQ => B::RouteQueryReq(RouteQueryReq::decode(r)?),
            MessageCode::ROUTE_QUERY_ANS => B::RouteQueryAns(ChordRouteQueryAns::decode(r)?),
            MessageCode::PING_REQ => B::PingReq(PingReq::decode(r)?),
            MessageCode::PING_ANS => B::PingAns(PingAns::decode(r)?),
            MessageCode::STAT_REQ => B::StatReq(FetchReq::decode(r, models)?),
            MessageCode::STAT_ANS => B::StatAns(StatAns::decode(r, models)?),
            MessageCode::APP_ATTACH_REQ => B::AppAttachReq(AppAttach::decode(r)?),
            MessageCode::APP_ATTACH_ANS => B::AppAttachAns(AppAttach::decode(r)?),
            MessageCode::CONFIG_UPDATE_REQ => B::ConfigUpdateReq(ConfigUpdateReq::decode(r)?),
            MessageCode::CONFIG_UPDATE_ANS => B::ConfigUpdateAns,
            MessageCode::ERROR => B::Error(ErrorResponse::decode(r)?),
            MessageCode(0) => {
                return Err(DecodeError::invalid(
                    "MessageContents.message_code",
                    0,
                    "a valid message code",
                ));
            }
            code => B::Other {
                code,
                body: r.take_rest().to_vec(),
            },
        };
        r.finish("MessageContents.message_body")?;
        Ok(parsed)
    }
}

/// `MessageContents` (RFC 6940 §6.3.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageContents {
    /// The body; it determines `message_code`.
    #[serde(flatten)]
    pub body: MessageBody,
    /// Extensions.
    pub extensions: Vec<MessageExtension>,
}

impl MessageContents {
    /// Contents with no extensions.
    pub fn new(body: MessageBody) -> Self {
        MessageContents {
            body,
            extensions: Vec::new(),
        }
    }

    /// The message code.
    pub fn code(&self) -> MessageCode {
        self.body.code()
    }

    /// Reads contents, typing the body with `models` for the storage methods.
    pub fn decode(r: &mut Reader<'_>, models: &DataModels) -> Result<Self, DecodeError> {
        let code = MessageCode(r.u16("MessageContents.message_code")?);
        let body = r.vector(Prefix::U32, "MessageContents.message_body")?;
        let body = MessageBody::decode(code, body.rest(), models)?;
        let extensions = r.list(Prefix::U32, "MessageContents.extensions", MessageExtension::decode)?;
        Ok(MessageContents { body, extensions })
    }

    /// RFC 6940 §6.3.3: the first critical extension not in `understood`, which
    /// obliges the receiver to answer Error_Unknown_Extension.
    pub fn unknown_critical_extension(
        &self,
        understood: impl Fn(MessageExtensionType) -> bool,
    ) -> Option<&MessageExtension> {
        self.extensions
            .iter()
            .find(|e| e.critical && !understood(e.extension_type))
    }
}

impl Encode for MessageContents {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u16(self.code().0);
        w.vector(Prefix::U32, "MessageContents.message_body", |w| {
            self.body.encode_body(w)
        })?;
        w.list(Prefix::U32, "MessageContents.extensions", &self.extensions)
    }
}

/// The input to a message signature (RFC 6940 §6.3.4):
/// `overlay || transaction_id || MessageContents || SignerIdentity`.
pub fn message_signature_input(
    overlay: OverlayHash,
    transaction_id: TransactionId,
    contents: &[u8],
    signer: &SignerIdentity,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::with_capacity(12 + contents.len() + 40);
    w.u32(overlay.0);
    w.u64(transaction_id.0);
    w.bytes(contents);
    signer.encode(&mut w)?;
    Ok(w.into_vec())
}

/// A message split at its three parts without parsing the contents, as a peer that
/// only forwards needs it, and as the signature check needs the exact contents bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage<'a> {
    /// The forwarding header.
    pub header: ForwardingHeader,
    /// Everything after the header: for a whole message, the contents and the
    /// security block; for a fragment, its share of them (§6.7).
    pub payload: &'a [u8],
}

impl<'a> RawMessage<'a> {
    /// Reads the header and checks the size limit and the header's `length` field.
    pub fn split(bytes: &'a [u8], max_message_size: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_message_size {
            return Err(DecodeError::new(
                "ForwardingHeader.length",
                DecodeErrorKind::MessageTooLarge {
                    size: bytes.len(),
                    max: max_message_size,
                },
            ));
        }
        let mut r = Reader::new(bytes);
        let (header, length) = ForwardingHeader::decode(&mut r)?;
        if u64::from(length) != bytes.len() as u64 {
            return Err(DecodeError::new(
                "ForwardingHeader.length",
                DecodeErrorKind::LengthMismatch {
                    declared: length.into(),
                    actual: bytes.len() as u64,
                },
            ));
        }
        Ok(RawMessage {
            header,
            payload: r.rest(),
        })
    }

    /// Splits a whole message's payload into the contents bytes (exactly as signed)
    /// and the security block bytes.
    pub fn contents_and_security(&self) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
        if !self.header.fragment.is_whole() {
            return Err(DecodeError::new(
                "ForwardingHeader.fragment",
                DecodeErrorKind::Fragment {
                    offset: self.header.fragment.offset(),
                    last: self.header.fragment.is_last(),
                },
            ));
        }
        let mut r = Reader::new(self.payload);
        r.u16("MessageContents.message_code")?;
        r.vector(Prefix::U32, "MessageContents.message_body")?;
        r.vector(Prefix::U32, "MessageContents.extensions")?;
        let split = self.payload.len() - r.remaining();
        Ok(self.payload.split_at(split))
    }
}

/// A whole RELOAD message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    /// The forwarding header.
    pub header: ForwardingHeader,
    /// The contents.
    pub contents: MessageContents,
    /// The security block.
    pub security: SecurityBlock,
}

impl Message {
    /// Encodes the message, filling in the header's `length`.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::with_capacity(256);
        self.header.encode(&mut w, 0)?;
        self.contents.encode(&mut w)?;
        self.security.encode(&mut w)?;
        let len = u32::try_from(w.len())
            .map_err(|_| EncodeError::too_long("ForwardingHeader.length", w.len(), u32::MAX as usize))?;
        w.patch(16, 4, len as usize);
        Ok(w.into_vec())
    }

    /// Encodes the message and refuses it if it exceeds `max_message_size`.
    pub fn encode_limited(&self, max_message_size: usize) -> Result<Vec<u8>, EncodeError> {
        let bytes = self.encode()?;
        if bytes.len() > max_message_size {
            return Err(EncodeError::too_long("Message", bytes.len(), max_message_size));
        }
        Ok(bytes)
    }

    /// Decodes a whole (unfragmented) message under `config`'s limits.
    pub fn decode(bytes: &[u8], config: &WireConfig) -> Result<Message, DecodeError> {
        let raw = RawMessage::split(bytes, config.max_message_size)?;
        let (contents, security) = raw.contents_and_security()?;
        Ok(Message {
            contents: MessageContents::decode(&mut Reader::new(contents), &config.data_models)?,
            security: SecurityBlock::from_bytes(security)?,
            header: raw.header,
        })
    }
}
