//! Signatures (RFC 6940 §6.3.4) over messages and stored data (§7.1): who signed,
//! what the input is, and checking them.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use reload_wire::{
    Encode, EncodeError, HashAlgorithm, KindId, NodeId, OverlayHash, ResourceId, Signature, SignatureAlgorithm,
    SignerIdentity, StoredData, StoredDataValue, TransactionId, Writer,
};

use crate::cert::{CertInfo, KeyAlgorithm};
use crate::error::TrustError;

/// The identity a certificate signs with as `node_id` (RFC 6940 §6.3.4): `cert_hash`
/// (SHA-256 of the DER certificate) when the certificate has at most one Node-ID,
/// `cert_hash_node_id` (SHA-256 of `node_id || certificate`) when it has several.
pub fn signer_identity(cert: &CertInfo, node_id: &NodeId) -> SignerIdentity {
    if cert.node_ids.len() <= 1 {
        SignerIdentity::CertHash {
            hash_alg: HashAlgorithm::SHA256,
            certificate_hash: cert.cert_hash().to_vec(),
        }
    } else {
        SignerIdentity::CertHashNodeId {
            hash_alg: HashAlgorithm::SHA256,
            certificate_node_id_hash: cert.cert_hash_node_id(node_id).to_vec(),
        }
    }
}

/// H(parts...) for the hash a SignerIdentity names; `None` for hashes not supported
/// here (none, MD5, SHA-224 and unknown values).
fn identity_hash(alg: HashAlgorithm, parts: &[&[u8]]) -> Option<Vec<u8>> {
    let alg = match alg {
        HashAlgorithm::SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlgorithm::SHA256 => &digest::SHA256,
        HashAlgorithm::SHA384 => &digest::SHA384,
        HashAlgorithm::SHA512 => &digest::SHA512,
        _ => return None,
    };
    let mut ctx = digest::Context::new(alg);
    for p in parts {
        ctx.update(p);
    }
    Some(ctx.finish().as_ref().to_vec())
}

/// The Node-ID `identity` signs as, if it names `cert` (RFC 6940 §6.3.4):
/// for `cert_hash`, the certificate's Node-ID when it has exactly one; for
/// `cert_hash_node_id`, the certificate's Node-ID whose `H(NodeId || certificate)`
/// matches. `None` if the identity does not name this certificate, is `none`, uses
/// an unsupported hash, or (for `cert_hash` on a certificate with several Node-IDs)
/// does not say which Node-ID.
pub fn signer_node_id(identity: &SignerIdentity, cert: &CertInfo) -> Option<NodeId> {
    match identity {
        SignerIdentity::CertHash { .. } => match cert.node_ids.as_slice() {
            [only] if identity_names(identity, cert) => Some(*only),
            _ => None,
        },
        SignerIdentity::CertHashNodeId {
            hash_alg,
            certificate_node_id_hash: h,
        } => cert
            .node_ids
            .iter()
            .find(|n| identity_hash(*hash_alg, &[n.as_bytes(), &cert.der]).as_deref() == Some(h.as_slice()))
            .copied(),
        SignerIdentity::None | SignerIdentity::Unknown { .. } => None,
    }
}

/// Whether `identity` names `cert` (for `cert_hash_node_id`, with one of its Node-IDs).
pub fn identity_names(identity: &SignerIdentity, cert: &CertInfo) -> bool {
    match identity {
        SignerIdentity::CertHash {
            hash_alg,
            certificate_hash: h,
        } => identity_hash(*hash_alg, &[&cert.der]).as_deref() == Some(h.as_slice()),
        SignerIdentity::CertHashNodeId { .. } => signer_node_id(identity, cert).is_some(),
        SignerIdentity::None | SignerIdentity::Unknown { .. } => false,
    }
}

/// The aws-lc-rs verification algorithm for a signature's {hash, signature} pair and
/// the certificate's key.
fn verification_algorithm(
    signature: &Signature,
    key: &KeyAlgorithm,
) -> Result<&'static dyn VerificationAlgorithm, TrustError> {
    let hash = signature.algorithm.hash;
    let alg: Option<&'static dyn VerificationAlgorithm> = match (signature.algorithm.signature, key) {
        (SignatureAlgorithm::RSA, KeyAlgorithm::Rsa { .. }) => match hash {
            HashAlgorithm::SHA256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            HashAlgorithm::SHA384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            HashAlgorithm::SHA512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            _ => None,
        },
        (SignatureAlgorithm::ECDSA, KeyAlgorithm::EcdsaP256) => match hash {
            HashAlgorithm::SHA256 => Some(&sig::ECDSA_P256_SHA256_ASN1),
            HashAlgorithm::SHA384 => Some(&sig::ECDSA_P256_SHA384_ASN1),
            HashAlgorithm::SHA512 => Some(&sig::ECDSA_P256_SHA512_ASN1),
            _ => None,
        },
        (SignatureAlgorithm::ECDSA, KeyAlgorithm::EcdsaP384) => match hash {
            HashAlgorithm::SHA256 => Some(&sig::ECDSA_P384_SHA256_ASN1),
            HashAlgorithm::SHA384 => Some(&sig::ECDSA_P384_SHA384_ASN1),
            HashAlgorithm::SHA512 => Some(&sig::ECDSA_P384_SHA512_ASN1),
            _ => None,
        },
        _ => None,
    };
    alg.ok_or_else(|| {
        TrustError::UnsupportedAlgorithm(format!(
            "{{{}, {}}} signature with a {key:?} key",
            hash.name().unwrap_or("unknown hash"),
            signature.algorithm.signature.name().unwrap_or("unknown signature"),
        ))
    })
}

/// Checks `signature` over `input` with `cert`'s key (RFC 6940 §6.3.4).
///
/// Refuses the `none` identity and the {none, anonymous} algorithm
/// ([`TrustError::AnonymousSignature`], §7.4.1.1), an identity that does not name
/// `cert` ([`TrustError::SignerMismatch`]), and algorithms that do not fit the key.
/// It does not look at the certificate's validity period: a caller holding a cached
/// [`CertInfo`] checks it with [`CertInfo::check_validity`] (§7.1).
pub fn verify_signature(input: &[u8], signature: &Signature, cert: &CertInfo) -> Result<(), TrustError> {
    if signature.is_anonymous() {
        return Err(TrustError::AnonymousSignature);
    }
    if !identity_names(&signature.identity, cert) {
        return Err(TrustError::SignerMismatch);
    }
    let alg = verification_algorithm(signature, &cert.public_key.algorithm)?;
    UnparsedPublicKey::new(alg, &cert.public_key.key)
        .verify(input, &signature.signature_value)
        .map_err(|_| TrustError::BadSignature)
}

/// The input to a message signature (RFC 6940 §6.3.4):
/// `overlay || transaction_id || MessageContents || SignerIdentity`, with
/// `contents` the encoded MessageContents exactly as sent.
pub fn message_signature_input(
    overlay: OverlayHash,
    transaction_id: TransactionId,
    contents: &[u8],
    identity: &SignerIdentity,
) -> Result<Vec<u8>, EncodeError> {
    reload_wire::message::message_signature_input(overlay, transaction_id, contents, identity)
}

/// Checks a message signature (RFC 6940 §6.3.4) made over `overlay`,
/// `transaction_id` and the encoded MessageContents `contents`, and returns the
/// Node-ID that signed, if the identity says which.
pub fn verify_message(
    overlay: OverlayHash,
    transaction_id: TransactionId,
    contents: &[u8],
    signature: &Signature,
    cert: &CertInfo,
) -> Result<Option<NodeId>, TrustError> {
    let input = message_signature_input(overlay, transaction_id, contents, &signature.identity)?;
    verify_signature(&input, signature, cert)?;
    Ok(signer_node_id(&signature.identity, cert))
}

/// The input to a stored-data signature (RFC 6940 §7.1):
/// `resource_id || kind || storage_time || StoredDataValue || SignerIdentity`.
///
/// Each part is its wire encoding, concatenated with nothing between:
/// - `resource_id` as a `ResourceId` is encoded, `opaque<0..2^8-1>`, so with its
///   one-byte length (the RFC names the type without saying whether the prefix is
///   included; the encoded type is what every other RELOAD structure uses);
/// - `kind` as a `uint32` and `storage_time` as a `uint64`, big-endian;
/// - the `StoredDataValue` as encoded in the StoredData (single: the DataValue;
///   array: index then DataValue; dictionary: the key with its two-byte length, then
///   the DataValue), except that an array index is written as 0 (§7.4.2.2: an
///   appended value's index changes when it is stored, so it is not signed);
/// - the `SignerIdentity` as encoded (type, length, value).
pub fn stored_data_signature_input(
    resource: &ResourceId,
    kind: KindId,
    storage_time: u64,
    value: &StoredDataValue,
    identity: &SignerIdentity,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::with_capacity(64 + value.data_value().value.len());
    resource.encode(&mut w)?;
    kind.encode(&mut w)?;
    w.u64(storage_time);
    match value {
        // ArrayEntry with its index zeroed (§7.4.2.2).
        StoredDataValue::Array { value, .. } => {
            w.u32(0);
            value.encode(&mut w)?;
        }
        other => other.encode(&mut w)?,
    }
    identity.encode(&mut w)?;
    Ok(w.into_vec())
}

/// Checks the signature of a stored value at `resource` of `kind` (RFC 6940 §7.1)
/// with the owner's certificate, and returns the Node-ID that signed, if the
/// identity says which. Refuses the synthesized {none, anonymous} signature
/// ([`TrustError::AnonymousSignature`]); a Fetch answer's synthesized values
/// (§7.4.2.2) are recognized by [`Signature::is_anonymous`] before calling this.
pub fn verify_stored_data(
    resource: &ResourceId,
    kind: KindId,
    data: &StoredData,
    cert: &CertInfo,
) -> Result<Option<NodeId>, TrustError> {
    if data.signature.is_anonymous() {
        return Err(TrustError::AnonymousSignature);
    }
    let input = stored_data_signature_input(resource, kind, data.storage_time, &data.value, &data.signature.identity)?;
    verify_signature(&input, &data.signature, cert)?;
    Ok(signer_node_id(&data.signature.identity, cert))
}
