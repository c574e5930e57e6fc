//! Probe (RFC 6940 §6.4.2.5): ask a peer about itself.

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::ProbeInformationType;
use crate::error::{DecodeError, EncodeError};
use crate::hex;

/// `ProbeReq`: the information wanted, in the order wanted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeReq {
    /// The requested information types.
    pub requested_info: Vec<ProbeInformationType>,
}

impl Encode for ProbeReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.vector(Prefix::U8, "ProbeReq.requested_info", |w| {
            self.requested_info.iter().for_each(|t| w.u8(t.0));
            Ok(())
        })
    }
}

impl Decode for ProbeReq {
    const NAME: &'static str = "ProbeReq";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProbeReq {
            requested_info: r.list(Prefix::U8, "ProbeReq.requested_info", |r| {
                Ok(ProbeInformationType(r.u8("ProbeReq.requested_info")?))
            })?,
        })
    }
}

/// `ProbeInformation`: one answered item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum ProbeInformation {
    /// Fraction of the overlay the peer is responsible for, in parts per billion.
    ResponsibleSet(u32),
    /// Number of resources the peer stores.
    NumResources(u32),
    /// Seconds the peer has been up.
    Uptime(u32),
    /// An information type this implementation does not know, kept as received.
    Unknown {
        /// The type.
        info_type: ProbeInformationType,
        /// Its value.
        #[serde(serialize_with = "hex::serialize")]
        value: Vec<u8>,
    },
}

impl ProbeInformation {
    /// The wire type.
    pub fn info_type(&self) -> ProbeInformationType {
        match self {
            ProbeInformation::ResponsibleSet(_) => ProbeInformationType::RESPONSIBLE_SET,
            ProbeInformation::NumResources(_) => ProbeInformationType::NUM_RESOURCES,
            ProbeInformation::Uptime(_) => ProbeInformationType::UPTIME,
            ProbeInformation::Unknown { info_type, .. } => *info_type,
        }
    }
}

impl Encode for ProbeInformation {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u8(self.info_type().0);
        match self {
            ProbeInformation::ResponsibleSet(v) | ProbeInformation::NumResources(v) | ProbeInformation::Uptime(v) => {
                w.u8(4);
                w.u32(*v);
                Ok(())
            }
            ProbeInformation::Unknown { info_type, value } => {
                if matches!(*info_type, ProbeInformationType(0) | ProbeInformationType(1..=3)) {
                    return Err(EncodeError::invalid(
                        "ProbeInformation.type",
                        "an unknown type is 4..255",
                    ));
                }
                w.opaque(Prefix::U8, "ProbeInformation.value", value)
            }
        }
    }
}

impl Decode for ProbeInformation {
    const NAME: &'static str = "ProbeInformation";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ty = ProbeInformationType(r.u8("ProbeInformation.type")?);
        let mut v = r.vector(Prefix::U8, "ProbeInformation.length")?;
        let known = |v: &mut Reader<'_>| -> Result<u32, DecodeError> {
            let n = v.u32("ProbeInformation.value")?;
            v.finish("ProbeInformation.value")?;
            Ok(n)
        };
        Ok(match ty {
            ProbeInformationType::RESPONSIBLE_SET => ProbeInformation::ResponsibleSet(known(&mut v)?),
            ProbeInformationType::NUM_RESOURCES => ProbeInformation::NumResources(known(&mut v)?),
            ProbeInformationType::UPTIME => ProbeInformation::Uptime(known(&mut v)?),
            ProbeInformationType(0) => {
                return Err(DecodeError::invalid(
                    "ProbeInformation.type",
                    0,
                    "responsible_set, num_resources or uptime",
                ));
            }
            info_type => ProbeInformation::Unknown {
                info_type,
                value: v.take_rest().to_vec(),
            },
        })
    }
}

/// `ProbeAns`: the answered items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProbeAns {
    /// The answers, in the requested order.
    pub probe_info: Vec<ProbeInformation>,
}

impl Encode for ProbeAns {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.list(Prefix::U16, "ProbeAns.probe_info", &self.probe_info)
    }
}

impl Decode for ProbeAns {
    const NAME: &'static str = "ProbeAns";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ProbeAns {
            probe_info: r.list(Prefix::U16, "ProbeAns.probe_info", ProbeInformation::decode)?,
        })
    }
}
