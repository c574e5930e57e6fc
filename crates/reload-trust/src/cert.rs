//! What a node certificate says (RFC 6940 §11.3): its Node-IDs, its user name, its
//! validity and its public key.

use aws_lc_rs::digest;
use reload_wire::{NODE_ID_LEN, NodeId};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as ParsedKey;

use crate::error::TrustError;
use crate::uri::{is_reload_uri, parse_reload_uri};

/// DER of the OID id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of the OID prime256v1 (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the OID secp384r1 (1.3.132.0.34).
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of the OID rsaEncryption (1.2.840.113549.1.1.1).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The kind of public key a certificate carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 (the default for p2psip nodes).
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
    /// RSA, with the modulus size in bits (RFC 6940 §6.3.4's mandatory algorithm).
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// Anything else, named by its algorithm OID (and curve OID, if any), in dotted form.
    Other(String),
}

/// A certificate's subject public key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The subjectPublicKey bits: an uncompressed EC point, or a PKCS#1 RSAPublicKey.
    pub key: Vec<u8>,
    /// The whole SubjectPublicKeyInfo in DER, which self-signed Node-IDs hash (§11.3.1).
    pub spki_der: Vec<u8>,
}

/// What RELOAD reads from a node certificate (RFC 6940 §11.3).
///
/// [`CertInfo::parse`] only reads; it trusts nothing. A `CertInfo` returned by
/// [`TrustAnchors::verify`](crate::TrustAnchors::verify) has also been validated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertInfo {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The Node-IDs of the `reload:` URIs in the subjectAltName, in order, without
    /// repeats (§11.3).
    pub node_ids: Vec<NodeId>,
    /// The user name: the first rfc822Name in the subjectAltName (§11.3).
    pub user: Option<String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Whether the certificate is self-issued (issuer name equal to subject name).
    /// Whether its signature also checks with its own key is decided by
    /// [`TrustAnchors::verify`](crate::TrustAnchors::verify).
    pub self_signed: bool,
    /// The overlay names of the `reload:` URIs, in order, without repeats.
    pub overlays: Vec<String>,
    /// The subject public key.
    pub public_key: PublicKey,
}

impl CertInfo {
    /// Reads a DER X.509 certificate. Fails with [`TrustError::Malformed`] on
    /// anything that is not exactly one well-formed certificate, or whose
    /// subjectAltName holds an ill-formed `reload:` URI.
    pub fn parse(der: &[u8]) -> Result<CertInfo, TrustError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| TrustError::Malformed(format!("certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(TrustError::Malformed(format!(
                "certificate: {} bytes after the end",
                rest.len()
            )));
        }
        let mut node_ids = Vec::new();
        let mut overlays: Vec<String> = Vec::new();
        let mut user = None;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| TrustError::Malformed(format!("subjectAltName: {e}")))?;
        for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
            match name {
                GeneralName::URI(uri) if is_reload_uri(uri) => {
                    let u = parse_reload_uri(uri)?;
                    if !node_ids.contains(&u.node_id) {
                        node_ids.push(u.node_id);
                    }
                    if !overlays.iter().any(|o| o.eq_ignore_ascii_case(&u.overlay)) {
                        overlays.push(u.overlay);
                    }
                }
                GeneralName::RFC822Name(name) if user.is_none() => user = Some((*name).to_owned()),
                _ => {}
            }
        }
        let validity = cert.validity();
        let spki = cert.public_key();
        let public_key = PublicKey {
            algorithm: key_algorithm(spki),
            key: spki.subject_public_key.data.to_vec(),
            spki_der: spki.raw.to_vec(),
        };
        Ok(CertInfo {
            der: der.to_vec(),
            node_ids,
            user,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            self_signed: cert.issuer().as_raw() == cert.subject().as_raw(),
            overlays,
            public_key,
        })
    }

    /// SHA-256 of the DER certificate: the `cert_hash` signer identity (§6.3.4).
    pub fn cert_hash(&self) -> [u8; 32] {
        cert_hash(&self.der)
    }

    /// SHA-256 of `node_id || certificate`: the `cert_hash_node_id` identity (§6.3.4).
    pub fn cert_hash_node_id(&self, node_id: &NodeId) -> [u8; 32] {
        cert_hash_node_id(node_id, &self.der)
    }

    /// Whether the certificate carries `node_id`.
    pub fn has_node_id(&self, node_id: &NodeId) -> bool {
        self.node_ids.contains(node_id)
    }

    /// Checks the validity period against `now_unix` (RFC 6940 §7.1: every
    /// signature check compares the current time with it).
    pub fn check_validity(&self, now_unix: i64) -> Result<(), TrustError> {
        if now_unix < self.not_before {
            Err(TrustError::NotYetValid {
                not_before: self.not_before,
                now: now_unix,
            })
        } else if now_unix > self.not_after {
            Err(TrustError::Expired {
                not_after: self.not_after,
                now: now_unix,
            })
        } else {
            Ok(())
        }
    }
}

fn key_algorithm(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> KeyAlgorithm {
    let alg = &spki.algorithm;
    let oid = alg.algorithm.as_bytes();
    if oid == OID_RSA {
        if let Ok(ParsedKey::RSA(rsa)) = spki.parsed() {
            return KeyAlgorithm::Rsa { bits: rsa.key_size() };
        }
    } else if oid == OID_EC_PUBLIC_KEY {
        let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
        match curve.as_ref().map(|c| c.as_bytes()) {
            Some(OID_P256) => return KeyAlgorithm::EcdsaP256,
            Some(OID_P384) => return KeyAlgorithm::EcdsaP384,
            _ => {
                let curve = curve.map(|c| c.to_id_string()).unwrap_or_default();
                return KeyAlgorithm::Other(format!("{} {curve}", alg.algorithm.to_id_string()));
            }
        }
    }
    KeyAlgorithm::Other(alg.algorithm.to_id_string())
}

/// SHA-256 of a DER certificate (the `cert_hash` identity, RFC 6940 §6.3.4).
pub fn cert_hash(der: &[u8]) -> [u8; 32] {
    sha256(&[der])
}

/// SHA-256 of `node_id || certificate`, the Node-ID raw with no length (the
/// `cert_hash_node_id` identity, RFC 6940 §6.3.4).
pub fn cert_hash_node_id(node_id: &NodeId, der: &[u8]) -> [u8; 32] {
    sha256(&[node_id.as_bytes(), der])
}

pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The digest a self-signed certificate's Node-IDs are made with: the `digest`
/// attribute of the configuration's `self-signed-permitted` element (RFC 6940 §11.1;
/// implementations must support both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NodeIdDigest {
    /// SHA-1, `digest="sha1"` (the RFC's example).
    #[default]
    Sha1,
    /// SHA-256, `digest="sha256"`.
    Sha256,
}

impl NodeIdDigest {
    /// Reads the configuration's attribute value (`sha1` or `sha256`, any case).
    pub fn from_config_name(name: &str) -> Option<NodeIdDigest> {
        if name.eq_ignore_ascii_case("sha1") {
            Some(NodeIdDigest::Sha1)
        } else if name.eq_ignore_ascii_case("sha256") {
            Some(NodeIdDigest::Sha256)
        } else {
            None
        }
    }

    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            NodeIdDigest::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            NodeIdDigest::Sha256 => &digest::SHA256,
        }
    }
}

/// The Node-IDs a self-signed certificate with this public key must carry
/// (RFC 6940 §11.3.1): with one Node-ID, the high-order bytes of H(SubjectPublicKeyInfo);
/// with several, the i-th (i from 1) is H(i as a 4-byte big-endian integer ||
/// SubjectPublicKeyInfo). `count` 0 gives none.
pub fn self_signed_node_ids(spki_der: &[u8], count: u32, digest: NodeIdDigest) -> Vec<NodeId> {
    let one = |prefix: Option<u32>| {
        let mut ctx = digest::Context::new(digest.algorithm());
        if let Some(i) = prefix {
            ctx.update(&i.to_be_bytes());
        }
        ctx.update(spki_der);
        let d = ctx.finish();
        let mut id = [0u8; NODE_ID_LEN];
        // SHA-1 gives 20 bytes and SHA-256 32, both longer than a Node-ID.
        id.copy_from_slice(&d.as_ref()[..NODE_ID_LEN]);
        NodeId(id)
    };
    match count {
        0 => Vec::new(),
        1 => vec![one(None)],
        n => (1..=n).map(|i| one(Some(i))).collect(),
    }
}
