//! Message signatures as the core needs them (RFC 6940 §6.3.4): sign what it sends,
//! and learn the authenticated Node-ID of what it receives.
//!
//! Real nodes use certificates (the trust crate); the simulator plugs in
//! [`StandInCrypto`], which is cheap and deterministic and offers no security.

use crate::storage::Signer;
use reload_wire::{
    Encode, EncodeError, ForwardingHeader, GenericCertificate, HashAlgorithm, Message, MessageBody, MessageContents,
    NodeId, SecurityBlock, Signature, SignatureAndHashAlgorithm, SignerIdentity,
};

/// Encodes a message with `body`, signed by `crypto` over
/// `overlay || transaction_id || MessageContents || SignerIdentity` (RFC 6940 §6.3.4),
/// and refuses it if it is longer than `max_size`.
pub fn signed_message(
    crypto: &dyn MessageCrypto,
    header: ForwardingHeader,
    body: MessageBody,
    max_size: usize,
) -> Result<Vec<u8>, EncodeError> {
    signed_message_with(crypto, header, body, Vec::new(), max_size)
}

/// [`signed_message`] with more certificates in the security block: those of the
/// signers of values the message carries (§6.3.4: "all the certificates necessary
/// to verify every signature in both the message and the internal message objects").
pub fn signed_message_with(
    crypto: &dyn MessageCrypto,
    header: ForwardingHeader,
    body: MessageBody,
    extra_certificates: Vec<GenericCertificate>,
    max_size: usize,
) -> Result<Vec<u8>, EncodeError> {
    let contents = MessageContents::new(body);
    let identity = crypto.identity();
    let input = reload_wire::message::message_signature_input(
        header.overlay,
        header.transaction_id,
        &contents.to_bytes()?,
        &identity,
    )?;
    Message {
        header,
        contents,
        security: SecurityBlock {
            certificates: {
                let mut certs = crypto.certificates();
                for c in extra_certificates {
                    if !certs.contains(&c) {
                        certs.push(c);
                    }
                }
                certs
            },
            signature: crypto.sign(&input),
        },
    }
    .encode_limited(max_size)
}

/// Signs a value for storage (§7.1) with `crypto`'s identity: over resource, kind,
/// storage time, value (array index zeroed) and identity.
pub fn sign_stored_data(
    crypto: &dyn MessageCrypto,
    resource: &reload_wire::ResourceId,
    kind: reload_wire::KindId,
    mut data: reload_wire::StoredData,
) -> Result<reload_wire::StoredData, EncodeError> {
    let identity = crypto.identity();
    let input = reload_trust::stored_data_signature_input(resource, kind, data.storage_time, &data.value, &identity)?;
    data.signature = crypto.sign(&input);
    Ok(data)
}

/// Signs and verifies messages.
pub trait MessageCrypto: Send {
    /// Signs `input` (the §6.3.4 signature input, built with `identity`) as this node.
    fn sign(&self, input: &[u8]) -> Signature;
    /// The identity this node signs with; part of the signature input.
    fn identity(&self) -> SignerIdentity;
    /// Certificates to send in security blocks.
    fn certificates(&self) -> Vec<GenericCertificate>;
    /// Checks a signature over `input` (a message's or a stored value's, §6.3.4,
    /// §7.1) at `now_unix` (seconds since the Unix epoch, for the certificate's
    /// validity) and returns who signed: the Node-ID the identity names and the
    /// certificate's user.
    fn verify(
        &mut self,
        input: &[u8],
        signature: &Signature,
        certificates: &[GenericCertificate],
        now_unix: i64,
    ) -> Option<Signer>;
    /// The certificates that verify signatures by `identity`, if this node knows
    /// them: its own, or one it verified earlier. A peer serving or replicating
    /// stored values sends these along so the receiver can check each value (§6.3.4).
    fn certificates_for(&self, identity: &SignerIdentity) -> Vec<GenericCertificate> {
        let _ = identity;
        Vec::new()
    }
    /// Whether this is the insecure stand-in (reports say so).
    fn is_stand_in(&self) -> bool {
        false
    }
}

/// An insecure stand-in for simulation: the "signature" is a keyless 64-bit hash
/// of the input and the signer's identity names its Node-ID in the clear.
#[derive(Clone, Debug)]
pub struct StandInCrypto {
    node_id: NodeId,
}

impl StandInCrypto {
    /// The stand-in for `node_id`.
    pub fn new(node_id: NodeId) -> Self {
        StandInCrypto { node_id }
    }

    fn digest(input: &[u8]) -> [u8; 8] {
        // FNV-1a: cheap, deterministic, no security.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in input {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h.to_be_bytes()
    }
}

impl MessageCrypto for StandInCrypto {
    fn sign(&self, input: &[u8]) -> Signature {
        Signature {
            algorithm: SignatureAndHashAlgorithm {
                hash: HashAlgorithm::NONE,
                signature: reload_wire::SignatureAlgorithm(0xfe),
            },
            identity: self.identity(),
            signature_value: Self::digest(input).to_vec(),
        }
    }

    fn identity(&self) -> SignerIdentity {
        SignerIdentity::CertHashNodeId {
            hash_alg: HashAlgorithm::NONE,
            certificate_node_id_hash: self.node_id.0.to_vec(),
        }
    }

    fn certificates(&self) -> Vec<GenericCertificate> {
        Vec::new()
    }

    fn verify(&mut self, input: &[u8], signature: &Signature, _: &[GenericCertificate], _: i64) -> Option<Signer> {
        let SignerIdentity::CertHashNodeId {
            certificate_node_id_hash: id,
            ..
        } = &signature.identity
        else {
            return None;
        };
        let node_id = NodeId(id.as_slice().try_into().ok()?);
        // The stand-in has no certificates, so no user names either.
        (signature.signature_value == Self::digest(input)).then_some(Signer { node_id, user: None })
    }

    fn is_stand_in(&self) -> bool {
        true
    }
}

/// Real message security (RFC 6940 §6.3.4, §13.3): signs with the node's
/// certificate and key, and accepts only signatures by certificates that chain to
/// the overlay's root (or self-signed ones where the configuration permits),
/// valid at the time of receipt.
pub struct CertificateCrypto {
    credentials: reload_trust::Credentials,
    node_id: NodeId,
    anchors: reload_trust::TrustAnchors,
    cache: reload_trust::CertificateCache,
}

impl CertificateCrypto {
    /// Signs as `node_id` (one of the certificate's Node-IDs) and verifies against `anchors`.
    pub fn new(
        credentials: reload_trust::Credentials,
        node_id: NodeId,
        anchors: reload_trust::TrustAnchors,
    ) -> Result<Self, reload_trust::TrustError> {
        if !credentials.node_ids().contains(&node_id) {
            return Err(reload_trust::TrustError::NodeIdNotInCertificate(node_id));
        }
        Ok(CertificateCrypto {
            credentials,
            node_id,
            anchors,
            cache: reload_trust::CertificateCache::default(),
        })
    }
}

impl MessageCrypto for CertificateCrypto {
    fn sign(&self, input: &[u8]) -> Signature {
        // Signing with a key that matches its certificate cannot fail; if the
        // library ever does, the empty signature is refused by every receiver.
        self.credentials
            .sign(input, &self.node_id)
            .unwrap_or_else(|_| Signature::synthesized())
    }

    fn identity(&self) -> SignerIdentity {
        self.credentials.signer_identity(&self.node_id)
    }

    fn certificates(&self) -> Vec<GenericCertificate> {
        self.credentials.certificates()
    }

    fn certificates_for(&self, identity: &SignerIdentity) -> Vec<GenericCertificate> {
        if *identity == self.identity() {
            return self.certificates();
        }
        self.cache
            .find(identity)
            .map(|c| vec![GenericCertificate::x509(c.der.clone())])
            .unwrap_or_default()
    }

    fn verify(
        &mut self,
        input: &[u8],
        signature: &Signature,
        certificates: &[GenericCertificate],
        now_unix: i64,
    ) -> Option<Signer> {
        let (cert, node) = self
            .cache
            .resolve(&signature.identity, certificates, &self.anchors, now_unix)
            .ok()?;
        reload_trust::verify_signature(input, signature, cert).ok()?;
        Some(Signer {
            node_id: node?,
            user: cert.user.clone(),
        })
    }
}
