//! The security block and the Signature element (RFC 6940 §6.3.4), also used for
//! stored data (§7.1).

use serde::Serialize;

use crate::codec::{Decode, Encode, Prefix, Reader, Writer};
use crate::codes::{CertificateType, HashAlgorithm, SignatureAlgorithm, SignerIdentityType};
use crate::error::{DecodeError, EncodeError};
use crate::hex;

/// `GenericCertificate`: a certificate of an RFC 6091 type, DER for X.509.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GenericCertificate {
    /// The certificate type.
    pub certificate_type: CertificateType,
    /// The encoded certificate.
    #[serde(serialize_with = "hex::serialize")]
    pub certificate: Vec<u8>,
}

impl GenericCertificate {
    /// An X.509 certificate in DER.
    pub fn x509(der: Vec<u8>) -> Self {
        GenericCertificate {
            certificate_type: CertificateType::X509,
            certificate: der,
        }
    }
}

impl Encode for GenericCertificate {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u8(self.certificate_type.0);
        w.opaque(Prefix::U16, "GenericCertificate.certificate", &self.certificate)
    }
}

impl Decode for GenericCertificate {
    const NAME: &'static str = "GenericCertificate";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GenericCertificate {
            certificate_type: CertificateType(r.u8("GenericCertificate.type")?),
            certificate: r.opaque(Prefix::U16, "GenericCertificate.certificate")?,
        })
    }
}

/// `SignatureAndHashAlgorithm` from TLS (RFC 5246 §7.4.1.4.1): hash first, then signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SignatureAndHashAlgorithm {
    /// The hash.
    pub hash: HashAlgorithm,
    /// The signature algorithm.
    pub signature: SignatureAlgorithm,
}

impl SignatureAndHashAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, which every implementation must support (§6.3.4).
    pub const RSA_SHA256: Self = SignatureAndHashAlgorithm {
        hash: HashAlgorithm::SHA256,
        signature: SignatureAlgorithm::RSA,
    };
    /// ECDSA with SHA-256.
    pub const ECDSA_SHA256: Self = SignatureAndHashAlgorithm {
        hash: HashAlgorithm::SHA256,
        signature: SignatureAlgorithm::ECDSA,
    };
    /// {none, anonymous}: only on values the storing peer synthesizes (§7.4.2.2).
    pub const NONE: Self = SignatureAndHashAlgorithm {
        hash: HashAlgorithm::NONE,
        signature: SignatureAlgorithm::ANONYMOUS,
    };
}

/// `SignerIdentity` (RFC 6940 §6.3.4): who signed, as a hash that finds the certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SignerIdentity {
    /// Hash of the DER certificate; for certificates with one Node-ID.
    CertHash {
        /// The hash algorithm.
        hash_alg: HashAlgorithm,
        /// H(certificate).
        #[serde(serialize_with = "hex::serialize")]
        certificate_hash: Vec<u8>,
    },
    /// Hash of the signing Node-ID followed by the certificate; for certificates
    /// with several Node-IDs.
    CertHashNodeId {
        /// The hash algorithm.
        hash_alg: HashAlgorithm,
        /// H(NodeId || certificate).
        #[serde(serialize_with = "hex::serialize")]
        certificate_node_id_hash: Vec<u8>,
    },
    /// No identity: synthesized values only.
    None,
    /// An identity type this implementation does not know, kept as received.
    Unknown {
        /// The type.
        identity_type: SignerIdentityType,
        /// The identity bytes.
        #[serde(serialize_with = "hex::serialize")]
        identity: Vec<u8>,
    },
}

impl SignerIdentity {
    /// The wire type of this identity.
    pub fn identity_type(&self) -> SignerIdentityType {
        match self {
            SignerIdentity::CertHash { .. } => SignerIdentityType::CERT_HASH,
            SignerIdentity::CertHashNodeId { .. } => SignerIdentityType::CERT_HASH_NODE_ID,
            SignerIdentity::None => SignerIdentityType::NONE,
            SignerIdentity::Unknown { identity_type, .. } => *identity_type,
        }
    }
}

impl Encode for SignerIdentity {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let ty = self.identity_type();
        if matches!(self, SignerIdentity::Unknown { .. }) && (ty.0 == 0 || ty.name().is_some()) {
            return Err(EncodeError::invalid(
                "SignerIdentity.identity_type",
                "an unknown type is 4..255",
            ));
        }
        w.u8(ty.0);
        w.vector(Prefix::U16, "SignerIdentity.identity", |w| match self {
            SignerIdentity::CertHash {
                hash_alg,
                certificate_hash: h,
            }
            | SignerIdentity::CertHashNodeId {
                hash_alg,
                certificate_node_id_hash: h,
            } => {
                w.u8(hash_alg.0);
                w.opaque(Prefix::U8, "SignerIdentity.certificate_hash", h)
            }
            SignerIdentity::None => Ok(()),
            SignerIdentity::Unknown { identity, .. } => {
                w.bytes(identity);
                Ok(())
            }
        })
    }
}

impl Decode for SignerIdentity {
    const NAME: &'static str = "SignerIdentity";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ty = SignerIdentityType(r.u8("SignerIdentity.identity_type")?);
        let mut v = r.vector(Prefix::U16, "SignerIdentity.length")?;
        let id = match ty {
            SignerIdentityType::CERT_HASH => SignerIdentity::CertHash {
                hash_alg: HashAlgorithm(v.u8("SignerIdentity.hash_alg")?),
                certificate_hash: v.opaque(Prefix::U8, "SignerIdentity.certificate_hash")?,
            },
            SignerIdentityType::CERT_HASH_NODE_ID => SignerIdentity::CertHashNodeId {
                hash_alg: HashAlgorithm(v.u8("SignerIdentity.hash_alg")?),
                certificate_node_id_hash: v.opaque(Prefix::U8, "SignerIdentity.certificate_node_id_hash")?,
            },
            SignerIdentityType::NONE => SignerIdentity::None,
            SignerIdentityType(0) => {
                return Err(DecodeError::invalid(
                    "SignerIdentity.identity_type",
                    0,
                    "cert_hash, cert_hash_node_id or none",
                ));
            }
            identity_type => SignerIdentity::Unknown {
                identity_type,
                identity: v.take_rest().to_vec(),
            },
        };
        v.finish("SignerIdentity.identity")?;
        Ok(id)
    }
}

/// `Signature` (RFC 6940 §6.3.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Signature {
    /// The algorithms.
    pub algorithm: SignatureAndHashAlgorithm,
    /// The signer.
    pub identity: SignerIdentity,
    /// The signature.
    #[serde(serialize_with = "hex::serialize")]
    pub signature_value: Vec<u8>,
}

impl Signature {
    /// The empty signature of a value the storing peer synthesizes (§7.4.2.2):
    /// {none, anonymous}, identity none, no signature bytes.
    pub fn synthesized() -> Self {
        Signature {
            algorithm: SignatureAndHashAlgorithm::NONE,
            identity: SignerIdentity::None,
            signature_value: Vec::new(),
        }
    }

    /// Whether this is the synthesized empty signature, which a Store must refuse (§7.4.1.1).
    pub fn is_anonymous(&self) -> bool {
        self.identity == SignerIdentity::None || self.algorithm == SignatureAndHashAlgorithm::NONE
    }
}

impl Encode for Signature {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.u8(self.algorithm.hash.0);
        w.u8(self.algorithm.signature.0);
        self.identity.encode(w)?;
        w.opaque(Prefix::U16, "Signature.signature_value", &self.signature_value)
    }
}

impl Decode for Signature {
    const NAME: &'static str = "Signature";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature {
            algorithm: SignatureAndHashAlgorithm {
                hash: HashAlgorithm(r.u8("Signature.algorithm.hash")?),
                signature: SignatureAlgorithm(r.u8("Signature.algorithm.signature")?),
            },
            identity: SignerIdentity::decode(r)?,
            signature_value: r.opaque(Prefix::U16, "Signature.signature_value")?,
        })
    }
}

/// `SecurityBlock` (RFC 6940 §6.3.4): the certificates needed to check the message
/// and the signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecurityBlock {
    /// Certificates for every signature in the message.
    pub certificates: Vec<GenericCertificate>,
    /// The message signature, over `overlay || transaction_id || MessageContents || SignerIdentity`.
    pub signature: Signature,
}

impl Encode for SecurityBlock {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.list(Prefix::U16, "SecurityBlock.certificates", &self.certificates)?;
        self.signature.encode(w)
    }
}

impl Decode for SecurityBlock {
    const NAME: &'static str = "SecurityBlock";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SecurityBlock {
            certificates: r.list(Prefix::U16, "SecurityBlock.certificates", GenericCertificate::decode)?,
            signature: Signature::decode(r)?,
        })
    }
}
