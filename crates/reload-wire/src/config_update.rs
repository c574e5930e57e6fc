//! ConfigUpdate (RFC 6940 §6.5.4): push a newer configuration document or Kind
//! descriptions.

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::ConfigUpdateType;
use crate::error::{DecodeError, EncodeError};
use crate::hex;

/// `ConfigUpdateReq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConfigUpdateReq {
    /// A whole configuration document (XML, signed per §11.1).
    Config {
        /// `config_data<0..2^24-1>`.
        #[serde(serialize_with = "hex::serialize_text")]
        config_data: Vec<u8>,
    },
    /// `kind-block` XML productions.
    Kind {
        /// `KindDescription kinds<0..2^24-1>`, each `opaque<0..2^16-1>`.
        kinds: Vec<KindDescription>,
    },
    /// A type this implementation does not know, kept as received.
    Unknown {
        /// The type.
        update_type: ConfigUpdateType,
        /// The bytes after the 32-bit length.
        #[serde(serialize_with = "hex::serialize")]
        data: Vec<u8>,
    },
}

/// `typedef opaque KindDescription<0..2^16-1>`: one kind-block in UTF-8 XML.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct KindDescription(#[serde(serialize_with = "hex::serialize_text")] pub Vec<u8>);

impl Encode for KindDescription {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.opaque(Prefix::U16, "KindDescription", &self.0)
    }
}

impl Decode for KindDescription {
    const NAME: &'static str = "KindDescription";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(KindDescription(r.opaque(Prefix::U16, "KindDescription")?))
    }
}

impl Encode for ConfigUpdateReq {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let ty = match self {
            ConfigUpdateReq::Config { .. } => ConfigUpdateType::CONFIG,
            ConfigUpdateReq::Kind { .. } => ConfigUpdateType::KIND,
            ConfigUpdateReq::Unknown { update_type, .. } => {
                if matches!(*update_type, ConfigUpdateType(0..=2)) {
                    return Err(EncodeError::invalid(
                        "ConfigUpdateReq.type",
                        "an unknown type is 3..255",
                    ));
                }
                *update_type
            }
        };
        w.u8(ty.0);
        // The 32-bit `length` covers the rest of the message (§6.5.4.1).
        w.vector(Prefix::U32, "ConfigUpdateReq.length", |w| match self {
            ConfigUpdateReq::Config { config_data } => {
                w.opaque(Prefix::U24, "ConfigUpdateReq.config_data", config_data)
            }
            ConfigUpdateReq::Kind { kinds } => w.list(Prefix::U24, "ConfigUpdateReq.kinds", kinds),
            ConfigUpdateReq::Unknown { data, .. } => {
                w.bytes(data);
                Ok(())
            }
        })
    }
}

impl Decode for ConfigUpdateReq {
    const NAME: &'static str = "ConfigUpdateReq";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ty = ConfigUpdateType(r.u8("ConfigUpdateReq.type")?);
        let mut v = r.vector(Prefix::U32, "ConfigUpdateReq.length")?;
        let req = match ty {
            ConfigUpdateType::CONFIG => ConfigUpdateReq::Config {
                config_data: v.opaque(Prefix::U24, "ConfigUpdateReq.config_data")?,
            },
            ConfigUpdateType::KIND => ConfigUpdateReq::Kind {
                kinds: v.list(Prefix::U24, "ConfigUpdateReq.kinds", KindDescription::decode)?,
            },
            ConfigUpdateType(0) => {
                return Err(DecodeError::invalid("ConfigUpdateReq.type", 0, "config or kind"));
            }
            update_type => ConfigUpdateReq::Unknown {
                update_type,
                data: v.take_rest().to_vec(),
            },
        };
        v.finish("ConfigUpdateReq")?;
        Ok(req)
    }
}
