//! Attach and AppAttach (RFC 6940 §6.5.1, §6.5.2): ICE parameters and candidates.

use serde::Serialize;

use crate::address::IpAddressPort;
use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::{ApplicationId, CandType, OverlayLinkType};
use crate::error::{DecodeError, EncodeError};
use crate::hex;

/// `IceExtension`: a name and value from the ICE candidate's extension attributes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceExtension {
    /// The extension name.
    #[serde(serialize_with = "hex::serialize")]
    pub name: Vec<u8>,
    /// The extension value.
    #[serde(serialize_with = "hex::serialize")]
    pub value: Vec<u8>,
}

impl Encode for IceExtension {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.opaque(Prefix::U16, "IceExtension.name", &self.name)?;
        w.opaque(Prefix::U16, "IceExtension.value", &self.value)
    }
}

impl Decode for IceExtension {
    const NAME: &'static str = "IceExtension";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(IceExtension {
            name: r.opaque(Prefix::U16, "IceExtension.name")?,
            value: r.opaque(Prefix::U16, "IceExtension.value")?,
        })
    }
}

/// The candidate type and, for reflexive and relayed candidates, the related address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CandidateType {
    /// A host candidate.
    Host,
    /// A server-reflexive candidate and the base it was learned from.
    Srflx {
        /// `rel_addr_port`.
        rel_addr_port: IpAddressPort,
    },
    /// A relayed candidate and the reflexive address it was allocated from.
    Relay {
        /// `rel_addr_port`.
        rel_addr_port: IpAddressPort,
    },
}

/// `IceCandidate` (RFC 6940 §6.5.1.1). The component is always 1 and not sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceCandidate {
    /// The candidate's address.
    pub addr_port: IpAddressPort,
    /// The overlay link protocol.
    pub overlay_link: OverlayLinkType,
    /// ICE foundation.
    #[serde(serialize_with = "hex::serialize")]
    pub foundation: Vec<u8>,
    /// ICE priority.
    pub priority: u32,
    /// Type and related address.
    pub candidate_type: CandidateType,
    /// ICE extensions.
    pub extensions: Vec<IceExtension>,
}

impl Encode for IceCandidate {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.addr_port.encode(w)?;
        w.u8(self.overlay_link.0);
        w.opaque(Prefix::U8, "IceCandidate.foundation", &self.foundation)?;
        w.u32(self.priority);
        match &self.candidate_type {
            CandidateType::Host => w.u8(CandType::HOST.0),
            CandidateType::Srflx { rel_addr_port } => {
                w.u8(CandType::SRFLX.0);
                rel_addr_port.encode(w)?;
            }
            CandidateType::Relay { rel_addr_port } => {
                w.u8(CandType::RELAY.0);
                rel_addr_port.encode(w)?;
            }
        }
        w.list(Prefix::U16, "IceCandidate.extensions", &self.extensions)
    }
}

impl Decode for IceCandidate {
    const NAME: &'static str = "IceCandidate";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let addr_port = IpAddressPort::decode(r)?;
        let overlay_link = OverlayLinkType(r.u8("IceCandidate.overlay_link")?);
        let foundation = r.opaque(Prefix::U8, "IceCandidate.foundation")?;
        let priority = r.u32("IceCandidate.priority")?;
        let candidate_type = match CandType(r.u8("IceCandidate.type")?) {
            CandType::HOST => CandidateType::Host,
            CandType::SRFLX => CandidateType::Srflx {
                rel_addr_port: IpAddressPort::decode(r)?,
            },
            CandType::RELAY => CandidateType::Relay {
                rel_addr_port: IpAddressPort::decode(r)?,
            },
            // No length follows the type, so an unknown type cannot be skipped (§6.3.1.1).
            other => {
                return Err(DecodeError::invalid(
                    "IceCandidate.type",
                    other.0.into(),
                    "host, srflx or relay",
                ));
            }
        };
        Ok(IceCandidate {
            addr_port,
            overlay_link,
            foundation,
            priority,
            candidate_type,
            extensions: r.list(Prefix::U16, "IceCandidate.extensions", IceExtension::decode)?,
        })
    }
}

/// `AttachReqAns` (RFC 6940 §6.5.1.1): the body of both the Attach request and answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachReqAns {
    /// ICE username fragment.
    #[serde(serialize_with = "hex::serialize_text")]
    pub ufrag: Vec<u8>,
    /// ICE password.
    #[serde(serialize_with = "hex::serialize_text")]
    pub password: Vec<u8>,
    /// "passive" for the offerer, "active" for the answerer.
    #[serde(serialize_with = "hex::serialize_text")]
    pub role: Vec<u8>,
    /// The candidates.
    pub candidates: Vec<IceCandidate>,
    /// Ask the other side for an Update once connected.
    pub send_update: bool,
}

impl Encode for AttachReqAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.opaque(Prefix::U8, "AttachReqAns.ufrag", &self.ufrag)?;
        w.opaque(Prefix::U8, "AttachReqAns.password", &self.password)?;
        w.opaque(Prefix::U8, "AttachReqAns.role", &self.role)?;
        w.list(Prefix::U16, "AttachReqAns.candidates", &self.candidates)?;
        w.boolean(self.send_update);
        Ok(())
    }
}

impl Decode for AttachReqAns {
    const NAME: &'static str = "AttachReqAns";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AttachReqAns {
            ufrag: r.opaque(Prefix::U8, "AttachReqAns.ufrag")?,
            password: r.opaque(Prefix::U8, "AttachReqAns.password")?,
            role: r.opaque(Prefix::U8, "AttachReqAns.role")?,
            candidates: r.list(Prefix::U16, "AttachReqAns.candidates", IceCandidate::decode)?,
            send_update: r.boolean("AttachReqAns.send_update")?,
        })
    }
}

/// `AppAttachReq` and `AppAttachAns` (RFC 6940 §6.5.2), which have the same layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppAttach {
    /// ICE username fragment.
    #[serde(serialize_with = "hex::serialize_text")]
    pub ufrag: Vec<u8>,
    /// ICE password.
    #[serde(serialize_with = "hex::serialize_text")]
    pub password: Vec<u8>,
    /// The application that will run over the connection.
    pub application: ApplicationId,
    /// RFC 4145 role.
    #[serde(serialize_with = "hex::serialize_text")]
    pub role: Vec<u8>,
    /// The candidates.
    pub candidates: Vec<IceCandidate>,
}

impl Encode for AppAttach {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.opaque(Prefix::U8, "AppAttach.ufrag", &self.ufrag)?;
        w.opaque(Prefix::U8, "AppAttach.password", &self.password)?;
        w.u16(self.application.0);
        w.opaque(Prefix::U8, "AppAttach.role", &self.role)?;
        w.list(Prefix::U16, "AppAttach.candidates", &self.candidates)
    }
}

impl Decode for AppAttach {
    const NAME: &'static str = "AppAttach";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AppAttach {
            ufrag: r.opaque(Prefix::U8, "AppAttach.ufrag")?,
            password: r.opaque(Prefix::U8, "AppAttach.password")?,
            application: ApplicationId(r.u16("AppAttach.application")?),
            role: r.opaque(Prefix::U8, "AppAttach.role")?,
            candidates: r.list(Prefix::U16, "AppAttach.candidates", IceCandidate::decode)?,
        })
    }
}
