//! The values stored under the registered Kinds: TURN-SERVICE's TurnServer
//! (RFC 6940 §9), RFC 7904's SipRegistration (§3.2), and the certificate store
//! (RFC 6940 §8), whose values are DER X.509 certificates as they are.

use serde::Serialize;

use crate::address::IpAddressPort;
use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::SipRegistrationType;
use crate::error::{DecodeError, EncodeError};
use crate::forwarding::Destination;
use crate::hex;

/// `TurnServer` (RFC 6940 §9): a peer offering TURN, stored under TURN-SERVICE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TurnServer {
    /// The `d` of the Resource Name (Node-ID || d) it is stored under.
    pub iteration: u8,
    /// Where the TURN server listens.
    pub server_address: IpAddressPort,
}

impl Encode for TurnServer {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u8(self.iteration);
        self.server_address.encode(w)
    }
}

impl Decode for TurnServer {
    const NAME: &'static str = "TurnServer";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TurnServer {
            iteration: r.u8("TurnServer.iteration")?,
            server_address: IpAddressPort::decode(r)?,
        })
    }
}

/// `SipRegistration` (RFC 7904 §3.2), stored in the SIP-REGISTRATION dictionary
/// keyed by the storing peer's Node-ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SipRegistration {
    /// `sip_registration_uri`: dereference this AOR instead.
    Uri {
        /// The AOR.
        #[serde(serialize_with = "hex::serialize_text")]
        uri: Vec<u8>,
    },
    /// `sip_registration_route`: connect along this destination list.
    Route {
        /// RFC 3840 contact predicate, e.g. `(sip.schemes=SIPS)`.
        #[serde(serialize_with = "hex::serialize_text")]
        contact_prefs: Vec<u8>,
        /// The path to the registered peer; at least 3 bytes (`<3..2^16-1>`).
        destination_list: Vec<Destination>,
    },
    /// A registration type this implementation does not know, kept as received.
    Unknown {
        /// The type.
        registration_type: SipRegistrationType,
        /// The data.
        #[serde(serialize_with = "hex::serialize")]
        data: Vec<u8>,
    },
}

impl Encode for SipRegistration {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let ty = match self {
            SipRegistration::Uri { .. } => SipRegistrationType::URI,
            SipRegistration::Route { .. } => SipRegistrationType::ROUTE,
            SipRegistration::Unknown { registration_type, .. } => {
                if matches!(*registration_type, SipRegistrationType(0..=2)) {
                    return Err(EncodeError::invalid(
                        "SipRegistration.type",
                        "an unknown type is 3..255",
                    ));
                }
                *registration_type
            }
        };
        w.u8(ty.0);
        w.vector(Prefix::U16, "SipRegistration.length", |w| match self {
            SipRegistration::Uri { uri } => w.opaque(Prefix::U16, "SipRegistration.uri", uri),
            SipRegistration::Route {
                contact_prefs,
                destination_list,
            } => {
                w.opaque(Prefix::U16, "SipRegistration.contact_prefs", contact_prefs)?;
                let at = w.len();
                w.list(Prefix::U16, "SipRegistration.destination_list", destination_list)?;
                if w.len() - at - 2 < 3 {
                    return Err(EncodeError::invalid(
                        "SipRegistration.destination_list",
                        "at least 3 bytes (<3..2^16-1>): one destination",
                    ));
                }
                Ok(())
            }
            SipRegistration::Unknown { data, .. } => {
                w.bytes(data);
                Ok(())
            }
        })
    }
}

impl Decode for SipRegistration {
    const NAME: &'static str = "SipRegistration";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ty = SipRegistrationType(r.u8("SipRegistration.type")?);
        let mut v = r.vector(Prefix::U16, "SipRegistration.length")?;
        let reg = match ty {
            SipRegistrationType::URI => SipRegistration::Uri {
                uri: v.opaque(Prefix::U16, "SipRegistration.uri")?,
            },
            SipRegistrationType::ROUTE => {
                let contact_prefs = v.opaque(Prefix::U16, "SipRegistration.contact_prefs")?;
                let mut list = v.vector(Prefix::U16, "SipRegistration.destination_list")?;
                if list.remaining() < 3 {
                    return Err(DecodeError::invalid(
                        "SipRegistration.destination_list",
                        list.remaining() as u64,
                        "at least 3 bytes (<3..2^16-1>)",
                    ));
                }
                let mut destination_list = Vec::new();
                while !list.is_empty() {
                    destination_list.push(Destination::decode(&mut list)?);
                }
                SipRegistration::Route {
                    contact_prefs,
                    destination_list,
                }
            }
            SipRegistrationType(0) => {
                return Err(DecodeError::invalid(
                    "SipRegistration.type",
                    0,
                    "sip_registration_uri or sip_registration_route",
                ));
            }
            registration_type => SipRegistration::Unknown {
                registration_type,
                data: v.take_rest().to_vec(),
            },
        };
        v.finish("SipRegistration")?;
        Ok(reg)
    }
}
