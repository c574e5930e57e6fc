//! # reload-wire
//!
//! Every structure of RELOAD (RFC 6940) and of its SIP usage (RFC 7904), with
//! encoders and decoders that are exact to the byte. No I/O, no clock.
//!
//! Decoding is total: any byte string gives a value or a [`DecodeError`] that names
//! the field and says what was wrong. No decoder panics, and none allocates more
//! than the bytes it was given, because every length prefix is checked against the
//! bytes that remain before it is used ([`codec::Reader`]).
//!
//! The layout follows the RFC's: the forwarding header ([`forwarding`], §6.3.2),
//! message contents ([`message`], §6.3.3), the security block ([`security`],
//! §6.3.4), then one module per method family, the link framing ([`framing`],
//! §6.6.2) and the Kinds' values ([`kinds`]).

pub mod address;
pub mod attach;
pub mod chord;
pub mod codec;
pub mod codes;
pub mod config_update;
pub mod error;
pub mod error_response;
pub mod forwarding;
pub mod framing;
pub mod hex;
pub mod ids;
pub mod kinds;
pub mod message;
pub mod ping;
pub mod probe;
pub mod samples;
pub mod security;
pub mod sip;
pub mod storage;
pub mod topology;

pub use address::IpAddressPort;
pub use attach::{AppAttach, AttachReqAns, CandidateType, IceCandidate, IceExtension};
pub use chord::{ChordLeaveData, ChordRouteQueryAns, ChordUpdate, ChordUpdateData};
pub use codec::{Decode, Encode, Prefix, Reader, Writer};
pub use codes::*;
pub use config_update::{ConfigUpdateReq, KindDescription};
pub use error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
pub use error_response::ErrorResponse;
pub use forwarding::{Destination, ForwardingHeader, ForwardingOption, Fragment};
pub use framing::FramedMessage;
pub use ids::{KindId, NODE_ID_LEN, NodeId, OverlayHash, ResourceId, TransactionId};
pub use kinds::{SipRegistration, TurnServer};
pub use message::{Message, MessageBody, MessageContents, MessageExtension, RawMessage, WireConfig};
pub use ping::{PingAns, PingReq};
pub use probe::{ProbeAns, ProbeInformation, ProbeReq};
pub use security::{GenericCertificate, SecurityBlock, Signature, SignatureAndHashAlgorithm, SignerIdentity};
pub use storage::{
    ArrayRange, DataModel, DataModels, DataValue, DictionaryKey, FetchAns, FetchKindResponse, FetchReq, FindAns,
    FindKindData, FindReq, MetaData, MetaDataValue, ModelSpecifier, StatAns, StatKindResponse, StatReq, StoreAns,
    StoreKindData, StoreKindResponse, StoreReq, StoredData, StoredDataSpecifier, StoredDataValue, StoredMetaData,
};
pub use topology::{JoinAns, JoinReq, LeaveReq, RouteQueryReq};
