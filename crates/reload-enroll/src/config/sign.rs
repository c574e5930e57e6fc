//! Signatures over the configuration and kind elements (RFC 6940 §11.1): a RELOAD
//! SecurityBlock (§6.3.4) over the element's exact bytes.

use std::fmt;

use reload_trust::{
    CertInfo, PrivateKey, TrustAnchors, TrustError, identity_names, signer_identity, signer_node_id, verify_signature,
};
use reload_wire::{CertificateType, Decode, Encode, GenericCertificate, NodeId, SecurityBlock, Signature};

use super::{ConfigError, SignatureProblem};

/// A key that signs configuration documents, with its certificate chain (signer
/// first). p2psip's CA signs with its root key and the root certificate; a
/// certificate chaining to a root, whose Node-ID the configuration lists as a
/// `configuration-signer` and `kind-signer`, works too (§11.1).
pub struct ConfigSigner {
    key: PrivateKey,
    chain: Vec<Vec<u8>>,
    info: CertInfo,
}

impl fmt::Debug for ConfigSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSigner")
            .field("node_ids", &self.info.node_ids)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ConfigSigner {
    /// A signer from its key and chain (signer's certificate first, then any
    /// intermediates). Fails if the chain is empty or malformed, or the key is not
    /// the certificate's.
    pub fn new(key: PrivateKey, chain: Vec<Vec<u8>>) -> Result<ConfigSigner, TrustError> {
        let first = chain.first().ok_or(TrustError::EmptyChain)?;
        let info = CertInfo::parse(first)?;
        if info.public_key.key != key.public_key_bytes() {
            return Err(TrustError::KeyMismatch);
        }
        Ok(ConfigSigner { key, chain, info })
    }

    /// The signer's certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.info.der
    }

    /// The SecurityBlock, encoded, that signs `blob`: the signer's chain less any
    /// certificate already among `roots` (§6.3.4: the bucket need not repeat the
    /// configuration's root-certs), and a signature over exactly `blob`, identified
    /// by the certificate's hash (`cert_hash`; `cert_hash_node_id` with its first
    /// Node-ID if it has several).
    pub(super) fn security_block(&self, blob: &[u8], roots: &[Vec<u8>]) -> Result<Vec<u8>, ConfigError> {
        let node = self.info.node_ids.first().copied().unwrap_or(NodeId::ZERO);
        let signature = Signature {
            algorithm: self.key.signature_algorithm(),
            identity: signer_identity(&self.info, &node),
            signature_value: self.key.sign(blob).map_err(ConfigError::Sign)?,
        };
        let block = SecurityBlock {
            certificates: self
                .chain
                .iter()
                .filter(|c| !roots.contains(c))
                .map(|c| GenericCertificate::x509(c.clone()))
                .collect(),
            signature,
        };
        block.to_bytes().map_err(|e| ConfigError::Sign(TrustError::Encode(e)))
    }
}

/// Checks an encoded SecurityBlock over `blob`: its signer must be one of `roots`,
/// or a certificate in the block that chains to them (at `now`) whose Node-ID is in
/// `signers` (the `role` named in errors) and not in `bad`.
pub(super) fn verify(
    blob: &[u8],
    encoded: &[u8],
    roots: &[Vec<u8>],
    signers: &[NodeId],
    bad: &[NodeId],
    role: &'static str,
    now: i64,
) -> Result<(), SignatureProblem> {
    let block = SecurityBlock::from_bytes(encoded).map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
    let signature = &block.signature;
    if roots.is_empty() {
        return Err(SignatureProblem::NoRoots);
    }
    for root in roots {
        let Ok(info) = CertInfo::parse(root) else { continue };
        if identity_names(&signature.identity, &info) {
            info.check_validity(now).map_err(SignatureProblem::Certificate)?;
            return verify_signature(blob, signature, &info).map_err(SignatureProblem::Verify);
        }
    }
    let certs: Vec<&Vec<u8>> = block
        .certificates
        .iter()
        .filter(|c| c.certificate_type == CertificateType::X509)
        .map(|c| &c.certificate)
        .collect();
    for (i, cert) in certs.iter().enumerate() {
        let Ok(info) = CertInfo::parse(cert) else { continue };
        if !identity_names(&signature.identity, &info) {
            continue;
        }
        if info.node_ids.is_empty() {
            // A CA certificate (no Node-ID) that is not one of the roots.
            return Err(SignatureProblem::UntrustedRoot);
        }
        // The signer's certificate first, then the rest of the bucket as
        // candidate intermediates.
        let mut chain = vec![(*cert).clone()];
        chain.extend(
            certs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| (*c).clone()),
        );
        let anchors = TrustAnchors::new(roots.to_vec()).map_err(SignatureProblem::Certificate)?;
        let info = anchors.verify(&chain, now).map_err(SignatureProblem::Certificate)?;
        let node = signer_node_id(&signature.identity, &info).ok_or(SignatureProblem::UnknownSigner)?;
        if bad.contains(&node) {
            return Err(SignatureProblem::BadNode(node));
        }
        if !signers.contains(&node) {
            return Err(SignatureProblem::NotAuthorized { node, role });
        }
        return verify_signature(blob, signature, &info).map_err(SignatureProblem::Verify);
    }
    Err(SignatureProblem::UnknownSigner)
}
