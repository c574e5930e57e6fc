//! Certificates already verified, found again by the signer identities that name
//! them (RFC 6940 §6.3.4), so that each certificate's chain is checked once rather
//! than on every message. Bounded: the oldest entry makes room for a new one.

use std::collections::{BTreeMap, HashMap};

use reload_wire::{CertificateType, GenericCertificate, HashAlgorithm, NodeId, SignerIdentity};

use crate::anchors::TrustAnchors;
use crate::cert::{CertInfo, cert_hash, cert_hash_node_id};
use crate::error::TrustError;
use crate::signature::{identity_names, signer_node_id};

/// How many certificates a [`CertificateCache::default`] holds.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

#[derive(Debug)]
struct Entry {
    info: CertInfo,
    /// Position in the eviction order.
    seq: u64,
    /// Its `cert_hash_node_id` keys, to remove them with it.
    node_keys: Vec<[u8; 32]>,
}

/// Verified certificates keyed by SHA-256 `cert_hash`, and by `cert_hash_node_id`
/// for each of their Node-IDs (§6.3.4).
///
/// Holds at most `capacity` certificates. Inserting into a full cache evicts the
/// entry inserted (or re-inserted) longest ago, so what the network sends can
/// never make it grow past its bound. A certificate is at most 64 KiB (the
/// GenericCertificate length field) and its Node-IDs fit in it, so memory is bounded
/// too. Only SHA-256 identities are indexed; [`CertificateCache::resolve`] also
/// finds others among the certificates a message carries.
#[derive(Debug)]
pub struct CertificateCache {
    capacity: usize,
    by_hash: HashMap<[u8; 32], Entry>,
    by_node_hash: HashMap<[u8; 32], ([u8; 32], NodeId)>,
    order: BTreeMap<u64, [u8; 32]>,
    next_seq: u64,
}

impl Default for CertificateCache {
    fn default() -> Self {
        CertificateCache::new(DEFAULT_CACHE_CAPACITY)
    }
}

impl CertificateCache {
    /// An empty cache holding up to `capacity` certificates (at least one).
    pub fn new(capacity: usize) -> CertificateCache {
        CertificateCache {
            capacity: capacity.max(1),
            by_hash: HashMap::new(),
            by_node_hash: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
        }
    }

    /// The most certificates it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many certificates it holds.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.by_hash.clear();
        self.by_node_hash.clear();
        self.order.clear();
    }

    /// Stores a certificate that [`TrustAnchors::verify`] accepted. Storing one that
    /// is already there makes it the newest. Returns its `cert_hash`.
    pub fn insert_verified(&mut self, info: CertInfo) -> [u8; 32] {
        let key = cert_hash(&info.der);
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(e) = self.by_hash.get_mut(&key) {
            self.order.remove(&e.seq);
            e.seq = seq;
            self.order.insert(seq, key);
            return key;
        }
        while self.by_hash.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(old) = self.by_hash.remove(&oldest) {
                for k in old.node_keys {
                    self.by_node_hash.remove(&k);
                }
            }
        }
        let mut node_keys = Vec::with_capacity(info.node_ids.len());
        for n in &info.node_ids {
            let k = cert_hash_node_id(n, &info.der);
            self.by_node_hash.insert(k, (key, *n));
            node_keys.push(k);
        }
        self.order.insert(seq, key);
        self.by_hash.insert(key, Entry { info, seq, node_keys });
        key
    }

    /// The certificate `identity` names, if it is here: by SHA-256 `cert_hash`, or
    /// by SHA-256 `cert_hash_node_id` (see [`CertificateCache::find_signer`] for the
    /// Node-ID that one names).
    pub fn find(&self, identity: &SignerIdentity) -> Option<&CertInfo> {
        self.find_signer(identity).map(|(c, _)| c)
    }

    /// The certificate `identity` names and the Node-ID it signs as: for
    /// `cert_hash_node_id`, the Node-ID hashed into it; for `cert_hash`, the
    /// certificate's only Node-ID (`None` if it has several).
    pub fn find_signer(&self, identity: &SignerIdentity) -> Option<(&CertInfo, Option<NodeId>)> {
        match identity {
            SignerIdentity::CertHash {
                hash_alg: HashAlgorithm::SHA256,
                certificate_hash: h,
            } => {
                let info = &self.by_hash.get(h.as_slice())?.info;
                let node = match info.node_ids.as_slice() {
                    [only] => Some(*only),
                    _ => None,
                };
                Some((info, node))
            }
            SignerIdentity::CertHashNodeId {
                hash_alg: HashAlgorithm::SHA256,
                certificate_node_id_hash: h,
            } => {
                let (key, node) = self.by_node_hash.get(h.as_slice())?;
                Some((&self.by_hash.get(key)?.info, Some(*node)))
            }
            _ => None,
        }
    }

    /// The certificate `identity` names, from the cache or else from `certificates`
    /// (a security block's, §6.3.4), checked with `anchors` at `now_unix` and then
    /// cached; and the Node-ID it signs as. A cached certificate's validity period
    /// is checked again at `now_unix` (§7.1).
    ///
    /// The other certificates of the block serve as intermediates. Fails with
    /// [`TrustError::AnonymousSignature`] for the `none` identity,
    /// [`TrustError::UnknownSigner`] if no certificate matches, or whatever
    /// [`TrustAnchors::verify`] finds wrong with the matching one.
    pub fn resolve(
        &mut self,
        identity: &SignerIdentity,
        certificates: &[GenericCertificate],
        anchors: &TrustAnchors,
        now_unix: i64,
    ) -> Result<(&CertInfo, Option<NodeId>), TrustError> {
        if matches!(identity, SignerIdentity::None) {
            return Err(TrustError::AnonymousSignature);
        }
        let cached = match self.find_signer(identity) {
            Some((info, node)) => {
                info.check_validity(now_unix)?;
                Some((cert_hash(&info.der), node))
            }
            None => None,
        };
        let (key, node) = match cached {
            Some(found) => found,
            None => {
                let x509: Vec<&GenericCertificate> = certificates
                    .iter()
                    .filter(|c| c.certificate_type == CertificateType::X509)
                    .collect();
                let i = x509
                    .iter()
                    .position(|c| names_der(identity, &c.certificate))
                    .ok_or(TrustError::UnknownSigner)?;
                let mut chain = Vec::with_capacity(x509.len());
                chain.push(x509[i].certificate.clone());
                chain.extend(
                    x509.iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, c)| c.certificate.clone()),
                );
                let info = anchors.verify(&chain, now_unix)?;
                let node = signer_node_id(identity, &info);
                (self.insert_verified(info), node)
            }
        };
        let info = &self.by_hash.get(&key).ok_or(TrustError::UnknownSigner)?.info;
        Ok((info, node))
    }
}

/// Whether `identity` names the certificate `der`. A `cert_hash` is compared without
/// parsing; a `cert_hash_node_id` needs the certificate's Node-IDs.
fn names_der(identity: &SignerIdentity, der: &[u8]) -> bool {
    match identity {
        SignerIdentity::CertHash {
            hash_alg: HashAlgorithm::SHA256,
            certificate_hash: h,
        } => cert_hash(der).as_slice() == h.as_slice(),
        _ => CertInfo::parse(der).is_ok_and(|info| identity_names(identity, &info)),
    }
}
