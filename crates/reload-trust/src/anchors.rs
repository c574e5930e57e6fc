//! Deciding whether a node certificate is good (RFC 6940 §11.3, §11.3.1, §13.3):
//! it chains to a root certificate of the overlay (or, where the overlay permits,
//! it is self-signed with Node-IDs derived from its key), it is within its validity
//! period, and it names at least one Node-ID.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{
    EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter, KeyUsage, RequiredEkuNotFoundContext,
};

use crate::cert::{CertInfo, NodeIdDigest, self_signed_node_ids};
use crate::error::TrustError;

/// Signature algorithms accepted on certificates: aws-lc-rs's ECDSA (P-256, P-384,
/// P-521) and RSA PKCS#1 v1.5 / PSS with keys of 2048 bits or more.
static CERT_SIGNATURE_ALGS: &[&dyn SignatureVerificationAlgorithm] = webpki::ALL_VERIFICATION_ALGS;

/// The overlay's trust configuration (RFC 6940 §11.1 `root-cert` and
/// `self-signed-permitted`).
#[derive(Clone, Debug)]
pub struct TrustAnchors {
    roots: Vec<Vec<u8>>,
    anchors: Vec<TrustAnchor<'static>>,
    self_signed_permitted: bool,
    self_signed_digest: NodeIdDigest,
    overlay: Option<String>,
}

impl TrustAnchors {
    /// Trust in these root certificates (DER), and in nothing self-signed.
    /// Fails if a root cannot be read.
    pub fn new(roots: Vec<Vec<u8>>) -> Result<TrustAnchors, TrustError> {
        let mut anchors = Vec::with_capacity(roots.len());
        for r in &roots {
            let der = CertificateDer::from(r.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| TrustError::Malformed(format!("root certificate: {e}")))?;
            anchors.push(anchor.to_owned());
        }
        Ok(TrustAnchors {
            roots,
            anchors,
            self_signed_permitted: false,
            self_signed_digest: NodeIdDigest::Sha1,
            overlay: None,
        })
    }

    /// No roots; self-signed certificates with Node-IDs made with `digest` (§11.3.1).
    pub fn self_signed_only(digest: NodeIdDigest) -> TrustAnchors {
        TrustAnchors {
            roots: Vec::new(),
            anchors: Vec::new(),
            self_signed_permitted: true,
            self_signed_digest: digest,
            overlay: None,
        }
    }

    /// Also accept self-signed certificates whose Node-IDs are derived from their
    /// public key with `digest` (§11.3.1: `self-signed-permitted` is true).
    pub fn permit_self_signed(mut self, digest: NodeIdDigest) -> TrustAnchors {
        self.self_signed_permitted = true;
        self.self_signed_digest = digest;
        self
    }

    /// Only accept certificates whose reload URIs all name `overlay` (compared
    /// without regard to ASCII case).
    pub fn for_overlay(mut self, overlay: &str) -> TrustAnchors {
        self.overlay = Some(overlay.to_owned());
        self
    }

    /// The root certificates, DER.
    pub fn roots(&self) -> &[Vec<u8>] {
        &self.roots
    }

    /// Whether self-signed certificates are accepted (§11.3.1).
    pub fn self_signed_permitted(&self) -> bool {
        self.self_signed_permitted
    }

    /// The digest self-signed Node-IDs are checked with.
    pub fn self_signed_digest(&self) -> NodeIdDigest {
        self.self_signed_digest
    }

    /// Validates a certificate chain, end-entity first, then any intermediates, at
    /// `now_unix` (Unix seconds), and returns what the end-entity certificate says.
    ///
    /// The certificate must
    /// - be well-formed and name at least one Node-ID ([`TrustError::NoNodeId`]),
    ///   and only this overlay if one was set ([`TrustError::WrongOverlay`]);
    /// - be within its validity period ([`TrustError::Expired`],
    ///   [`TrustError::NotYetValid`]);
    /// - chain to one of the roots, with webpki's PKIX checks (signatures, validity
    ///   and BasicConstraints of every certificate, §11.3), and without any DNS name
    ///   check: RELOAD names nodes by Node-ID. An end-entity certificate that has an
    ///   extended key usage extension must allow TLS server or client authentication
    ///   (or any purpose), since a node uses one certificate for both ends of its
    ///   links; one without the extension is accepted;
    /// - or, if self-signed certificates are permitted, be self-signed (its signature
    ///   checks with its own key) with Node-IDs derived from its public key as
    ///   §11.3.1 says ([`TrustError::NodeIdMismatch`]). If they are not permitted, a
    ///   self-signed certificate that is not a root gets
    ///   [`TrustError::SelfSignedNotPermitted`].
    pub fn verify(&self, chain: &[Vec<u8>], now_unix: i64) -> Result<CertInfo, TrustError> {
        let ee = chain.first().ok_or(TrustError::EmptyChain)?;
        let info = CertInfo::parse(ee)?;
        if info.node_ids.is_empty() {
            return Err(TrustError::NoNodeId);
        }
        if let Some(expected) = &self.overlay
            && let Some(found) = info.overlays.iter().find(|o| !o.eq_ignore_ascii_case(expected))
        {
            return Err(TrustError::WrongOverlay {
                expected: expected.clone(),
                found: found.clone(),
            });
        }
        info.check_validity(now_unix)?;
        let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now_unix).unwrap_or(0)));
        let ee_der = CertificateDer::from(ee.as_slice());
        let cert = EndEntityCert::try_from(&ee_der).map_err(|e| map_webpki(e, &info, now_unix))?;
        let intermediates: Vec<CertificateDer<'_>> =
            chain[1..].iter().map(|c| CertificateDer::from(c.as_slice())).collect();
        let chained = if self.anchors.is_empty() {
            Err(TrustError::UnknownIssuer)
        } else {
            cert.verify_for_usage(
                CERT_SIGNATURE_ALGS,
                &self.anchors,
                &intermediates,
                time,
                NodeUsage,
                None,
                None,
            )
            .map(|_| ())
            .map_err(|e| map_webpki(e, &info, now_unix))
        };
        match chained {
            Ok(()) => Ok(info),
            Err(TrustError::UnknownIssuer) if info.self_signed => {
                if !self.self_signed_permitted {
                    return Err(TrustError::SelfSignedNotPermitted);
                }
                self.verify_self_signed(&cert, &ee_der, info, time, now_unix)
            }
            Err(e) => Err(e),
        }
    }

    /// §11.3.1: the certificate is its own anchor, and its Node-IDs are its key's hash.
    fn verify_self_signed(
        &self,
        cert: &EndEntityCert<'_>,
        der: &CertificateDer<'_>,
        info: CertInfo,
        time: UnixTime,
        now_unix: i64,
    ) -> Result<CertInfo, TrustError> {
        let own = webpki::anchor_from_trusted_cert(der).map_err(|e| map_webpki(e, &info, now_unix))?;
        cert.verify_for_usage(CERT_SIGNATURE_ALGS, &[own], &[], time, NodeUsage, None, None)
            .map_err(|e| match map_webpki(e, &info, now_unix) {
                // The only issuer on offer is the certificate itself.
                TrustError::UnknownIssuer => TrustError::BadSignature,
                other => other,
            })?;
        let count = u32::try_from(info.node_ids.len()).map_err(|_| TrustError::NodeIdMismatch)?;
        let mut want = self_signed_node_ids(&info.public_key.spki_der, count, self.self_signed_digest);
        let mut have = info.node_ids.clone();
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            return Err(TrustError::NodeIdMismatch);
        }
        Ok(info)
    }
}

/// DER contents of id-kp-serverAuth (1.3.6.1.5.5.7.3.1).
const EKU_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// DER contents of id-kp-clientAuth (1.3.6.1.5.5.7.3.2).
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
/// DER contents of anyExtendedKeyUsage (2.5.29.37.0).
const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// The extended key usage a RELOAD node certificate needs: none stated, or one of
/// TLS server authentication, TLS client authentication, any purpose.
struct NodeUsage;

impl ExtendedKeyUsageValidator for NodeUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let wanted = [EKU_SERVER_AUTH, EKU_CLIENT_AUTH, EKU_ANY].map(KeyPurposeId::new);
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if wanted.contains(&id) {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        if present.is_empty() {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFoundContext(RequiredEkuNotFoundContext {
                required: KeyUsage::server_auth(),
                present,
            }))
        }
    }
}

// The deprecated unit variants are matched too, in case a webpki version returns them.
#[allow(deprecated)]
fn map_webpki(e: webpki::Error, info: &CertInfo, now: i64) -> TrustError {
    use webpki::Error as E;
    match e {
        E::CertExpired { .. } => TrustError::Expired {
            not_after: info.not_after,
            now,
        },
        E::CertNotValidYet { .. } => TrustError::NotYetValid {
            not_before: info.not_before,
            now,
        },
        E::UnknownIssuer => TrustError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => TrustError::BadSignature,
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            TrustError::UnsupportedAlgorithm(format!("certificate signature: {e}"))
        }
        E::CaUsedAsEndEntity => TrustError::NotEndEntity,
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => TrustError::KeyUsage,
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidSerialNumber
        | E::InvalidCertValidity
        | E::UnsupportedCertVersion
        | E::UnsupportedCriticalExtension => TrustError::Malformed(format!("certificate: {e}")),
        other => TrustError::Rejected(other.to_string()),
    }
}
