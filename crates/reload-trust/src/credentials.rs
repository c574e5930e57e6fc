//! A node's own credentials: its private key and certificate chain (RFC 6940 §11.3),
//! and the signatures it makes with them (§6.3.4, §7.1).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SerialNumber,
};
use reload_wire::{
    GenericCertificate, KindId, NodeId, OverlayHash, ResourceId, Signature, SignerIdentity, StoredData, TransactionId,
};
use time::OffsetDateTime;

use crate::cert::{CertInfo, NodeIdDigest, self_signed_node_ids};
use crate::error::TrustError;
use crate::key::{KeyType, PrivateKey};
use crate::signature::{message_signature_input, signer_identity, stored_data_signature_input};
use crate::uri::reload_uri;

/// A certificate's validity period, in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Validity {
    /// notBefore.
    pub not_before: i64,
    /// notAfter.
    pub not_after: i64,
}

impl Validity {
    /// From `not_before` to `not_after`.
    pub fn new(not_before: i64, not_after: i64) -> Validity {
        Validity { not_before, not_after }
    }

    /// From `now` for `lifetime_secs` seconds.
    pub fn starting_at(now: i64, lifetime_secs: i64) -> Validity {
        Validity {
            not_before: now,
            not_after: now.saturating_add(lifetime_secs),
        }
    }

    /// From an hour ago (to tolerate clocks that are a little behind) to
    /// `lifetime_secs` from now, reading the system clock.
    pub fn from_now(lifetime_secs: i64) -> Validity {
        let now = unix_now();
        Validity {
            not_before: now.saturating_sub(3600),
            not_after: now.saturating_add(lifetime_secs),
        }
    }
}

/// The system clock in Unix seconds (0 if it is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Which Node-IDs a self-signed certificate gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelfSignedNodeIds {
    /// These, whatever the key (for tests; an overlay that checks §11.3.1 refuses them).
    Given(Vec<NodeId>),
    /// `count` Node-IDs derived from the public key with `digest`, as RFC 6940
    /// §11.3.1 requires ([`self_signed_node_ids`]).
    Derived {
        /// How many (at least 1).
        count: u32,
        /// The configuration's `self-signed-permitted` digest.
        digest: NodeIdDigest,
    },
}

/// A node's private key with its certificate chain.
#[derive(Debug)]
pub struct Credentials {
    key: PrivateKey,
    chain: Vec<Vec<u8>>,
    info: CertInfo,
}

impl Credentials {
    /// Joins a key and its chain (end-entity certificate first, then intermediates;
    /// the root may be left out). Fails if the chain is empty or malformed, or the
    /// key is not the certificate's.
    pub fn new(key: PrivateKey, chain: Vec<Vec<u8>>) -> Result<Credentials, TrustError> {
        let first = chain.first().ok_or(TrustError::EmptyChain)?;
        let info = CertInfo::parse(first)?;
        if info.public_key.key != key.public_key_bytes() {
            return Err(TrustError::KeyMismatch);
        }
        for c in &chain[1..] {
            CertInfo::parse(c)?;
        }
        Ok(Credentials { key, chain, info })
    }

    /// From a PKCS#8 DER private key and a DER chain, end-entity first.
    pub fn from_pkcs8_der(key_der: &[u8], chain: Vec<Vec<u8>>) -> Result<Credentials, TrustError> {
        Credentials::new(PrivateKey::from_pkcs8_der(key_der)?, chain)
    }

    /// A new key and a self-signed certificate for it (RFC 6940 §11.3.1), for overlays
    /// that permit them and for tests. The subject is empty, like an enrolled
    /// certificate's (§11.3).
    pub fn self_signed(
        node_ids: SelfSignedNodeIds,
        overlay: &str,
        user: Option<&str>,
        key_type: KeyType,
        validity: Validity,
    ) -> Result<Credentials, TrustError> {
        Credentials::self_signed_with_key(PrivateKey::generate(key_type)?, node_ids, overlay, user, validity)
    }

    /// [`Credentials::self_signed`] with a key the caller already has.
    pub fn self_signed_with_key(
        key: PrivateKey,
        node_ids: SelfSignedNodeIds,
        overlay: &str,
        user: Option<&str>,
        validity: Validity,
    ) -> Result<Credentials, TrustError> {
        let ids = match node_ids {
            SelfSignedNodeIds::Given(ids) => ids,
            SelfSignedNodeIds::Derived { count, digest } => self_signed_node_ids(&key.spki_der()?, count, digest),
        };
        let params = node_params(&ids, overlay, user, validity)?;
        let der = params.self_signed(&key.rcgen_key()?)?.der().to_vec();
        Credentials::new(key, vec![der])
    }

    /// What the end-entity certificate says.
    pub fn cert_info(&self) -> &CertInfo {
        &self.info
    }

    /// The end-entity certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.info.der
    }

    /// The chain: end-entity first, then intermediates.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The certificate's Node-IDs.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.info.node_ids
    }

    /// The certificate's user name.
    pub fn user(&self) -> Option<&str> {
        self.info.user.as_deref()
    }

    /// The chain as a security block carries it (§6.3.4).
    pub fn certificates(&self) -> Vec<GenericCertificate> {
        self.chain.iter().map(|c| GenericCertificate::x509(c.clone())).collect()
    }

    /// The identity to sign with as `node_id` (§6.3.4): `cert_hash` if the
    /// certificate has one Node-ID, `cert_hash_node_id` if it has several.
    pub fn signer_identity(&self, node_id: &NodeId) -> SignerIdentity {
        signer_identity(&self.info, node_id)
    }

    fn check_node_id(&self, node_id: &NodeId) -> Result<(), TrustError> {
        if self.info.has_node_id(node_id) {
            Ok(())
        } else {
            Err(TrustError::NodeIdNotInCertificate(*node_id))
        }
    }

    /// Signs `input` as `node_id`, with {sha256, ecdsa} or {sha256, rsa} and the
    /// identity of [`Credentials::signer_identity`]. RELOAD signature inputs end with
    /// that identity, so build `input` with the same one; [`Credentials::sign_message`]
    /// and [`Credentials::sign_stored_data`] do.
    pub fn sign(&self, input: &[u8], node_id: &NodeId) -> Result<Signature, TrustError> {
        self.check_node_id(node_id)?;
        Ok(Signature {
            algorithm: self.key.signature_algorithm(),
            identity: self.signer_identity(node_id),
            signature_value: self.key.sign(input)?,
        })
    }

    /// Signs a message as `node_id` (§6.3.4): over `overlay || transaction_id ||
    /// MessageContents || SignerIdentity`, `contents` being the encoded MessageContents.
    pub fn sign_message(
        &self,
        overlay: OverlayHash,
        transaction_id: TransactionId,
        contents: &[u8],
        node_id: &NodeId,
    ) -> Result<Signature, TrustError> {
        self.check_node_id(node_id)?;
        let input = message_signature_input(overlay, transaction_id, contents, &self.signer_identity(node_id))?;
        self.sign(&input, node_id)
    }

    /// `data` with its signature replaced by this node's over resource, kind,
    /// storage time, value and identity (§7.1; see [`stored_data_signature_input`]).
    pub fn sign_stored_data(
        &self,
        resource: &ResourceId,
        kind: KindId,
        mut data: StoredData,
        node_id: &NodeId,
    ) -> Result<StoredData, TrustError> {
        self.check_node_id(node_id)?;
        let identity = self.signer_identity(node_id);
        let input = stored_data_signature_input(resource, kind, data.storage_time, &data.value, &identity)?;
        data.signature = self.sign(&input, node_id)?;
        Ok(data)
    }
}

/// The parameters of a node certificate (RFC 6940 §11.3): an empty subject, the
/// Node-IDs as reload URIs and the user name as an rfc822Name in the subjectAltName,
/// not a CA, usable for TLS server and client authentication (a node is both).
pub(crate) fn node_params(
    node_ids: &[NodeId],
    overlay: &str,
    user: Option<&str>,
    validity: Validity,
) -> Result<CertificateParams, TrustError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    for n in node_ids {
        p.subject_alt_names
            .push(SanType::URI(reload_uri(n, overlay).try_into()?));
    }
    if let Some(u) = user {
        p.subject_alt_names.push(SanType::Rfc822Name(u.to_owned().try_into()?));
    }
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    set_common(&mut p, validity)?;
    Ok(p)
}

/// Validity, a random serial and the authority key identifier.
pub(crate) fn set_common(p: &mut CertificateParams, validity: Validity) -> Result<(), TrustError> {
    let time = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t).map_err(|e| TrustError::Issue(format!("validity time {t}: {e}")))
    };
    p.not_before = time(validity.not_before)?;
    p.not_after = time(validity.not_after)?;
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| TrustError::Issue("no randomness for a serial number".into()))?;
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x01; // and 16 bytes long
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.use_authority_key_identifier_extension = true;
    Ok(())
}
