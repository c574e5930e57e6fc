//! A small certificate authority for tests and tools: it makes an overlay root (and
//! intermediates) and issues node certificates as an enrollment server would
//! (RFC 6940 §11.3), with whatever Node-IDs, user name, validity and key type the
//! caller chooses — including ones a real enrollment server must never issue
//! (no Node-ID, chosen Node-IDs, expired). Not an enrollment server: it keeps no
//! records and checks no passwords.

use std::fmt;
use std::net::IpAddr;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, SanType,
};
use reload_wire::{NodeId, hex};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};

use crate::anchors::TrustAnchors;
use crate::cert::CertInfo;
use crate::credentials::{Credentials, Validity, node_params, set_common};
use crate::error::TrustError;
use crate::key::{KeyType, PrivateKey};

/// A certificate authority for one overlay, for tests and tools.
pub struct TestCa {
    overlay: String,
    issuer: Issuer<'static, rcgen::KeyPair>,
    cert_der: Vec<u8>,
    /// What an end-entity certificate this CA issues sends after itself: this CA's
    /// certificate and those above it, up to but not including the root.
    chain_above: Vec<Vec<u8>>,
    root_der: Vec<u8>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("overlay", &self.overlay)
            .field("depth", &self.chain_above.len())
            .finish_non_exhaustive()
    }
}

/// A CA certificate's parameters. The name gets a random suffix: path building
/// matches issuers by name, so two test CAs with one name would make a certificate
/// of the one look like a forgery by the other (BadSignature) rather than a
/// stranger (UnknownIssuer).
fn ca_params(name: &str, validity: Validity) -> Result<CertificateParams, TrustError> {
    let mut p = CertificateParams::default();
    let mut tag = [0u8; 4];
    SystemRandom::new()
        .fill(&mut tag)
        .map_err(|_| TrustError::Issue("no randomness for a CA name".into()))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{name} {}", hex::encode(&tag)));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_common(&mut p, validity)?;
    Ok(p)
}

impl TestCa {
    /// A new root CA for `overlay`, named "`overlay` test root" and a random tag.
    pub fn new(overlay: &str, key_type: KeyType, validity: Validity) -> Result<TestCa, TrustError> {
        TestCa::with_key(overlay, PrivateKey::generate(key_type)?, validity)
    }

    /// A new root CA for `overlay` with a key the caller already has.
    pub fn with_key(overlay: &str, key: PrivateKey, validity: Validity) -> Result<TestCa, TrustError> {
        let params = ca_params(&format!("{overlay} test root"), validity)?;
        let key = key.rcgen_key()?;
        let cert_der = params.self_signed(&key)?.der().to_vec();
        Ok(TestCa {
            overlay: overlay.to_owned(),
            issuer: Issuer::new(params, key),
            root_der: cert_der.clone(),
            cert_der,
            chain_above: Vec::new(),
        })
    }

    /// A root CA saved earlier, from its key and its self-signed certificate (DER),
    /// as a CA tool keeps them on disk between runs. Fails if the certificate is
    /// malformed, is not self-issued, or is not the key's ([`TrustError::KeyMismatch`]).
    pub fn from_root(overlay: &str, key: PrivateKey, cert_der: Vec<u8>) -> Result<TestCa, TrustError> {
        let info = CertInfo::parse(&cert_der)?;
        if info.public_key.key != key.public_key_bytes() {
            return Err(TrustError::KeyMismatch);
        }
        if !info.self_signed {
            return Err(TrustError::Malformed(
                "a root CA certificate must be self-issued".into(),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key.rcgen_key()?)?;
        Ok(TestCa {
            overlay: overlay.to_owned(),
            issuer,
            root_der: cert_der.clone(),
            cert_der,
            chain_above: Vec::new(),
        })
    }

    /// A CA whose certificate this one issues, for chains with intermediates.
    pub fn intermediate(&self, key_type: KeyType, validity: Validity) -> Result<TestCa, TrustError> {
        let depth = self.chain_above.len() + 1;
        let params = ca_params(&format!("{} test intermediate {depth}", self.overlay), validity)?;
        let key = PrivateKey::generate(key_type)?.rcgen_key()?;
        let cert_der = params.signed_by(&key, &self.issuer)?.der().to_vec();
        let mut chain_above = vec![cert_der.clone()];
        chain_above.extend(self.chain_above.iter().cloned());
        Ok(TestCa {
            overlay: self.overlay.clone(),
            issuer: Issuer::new(params, key),
            cert_der,
            chain_above,
            root_der: self.root_der.clone(),
        })
    }

    /// The overlay name its certificates' reload URIs carry.
    pub fn overlay(&self) -> &str {
        &self.overlay
    }

    /// The root certificate, DER: the configuration's `root-cert` (§11.1).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// This CA's own certificate, DER (the root's, for a root CA).
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Trust anchors holding this CA's root, for this overlay.
    pub fn trust_anchors(&self) -> Result<TrustAnchors, TrustError> {
        Ok(TrustAnchors::new(vec![self.root_der.clone()])?.for_overlay(&self.overlay))
    }

    /// The chain an end-entity certificate issued here is sent with: the
    /// certificate, then the intermediates up to (not including) the root.
    pub fn chain_for(&self, cert_der: Vec<u8>) -> Vec<Vec<u8>> {
        let mut chain = Vec::with_capacity(1 + self.chain_above.len());
        chain.push(cert_der);
        chain.extend(self.chain_above.iter().cloned());
        chain
    }

    /// New credentials: a fresh key of `key_type` and a certificate for it with these
    /// Node-IDs (none, for tests of refusal) and user name.
    pub fn issue(
        &self,
        node_ids: &[NodeId],
        user: Option<&str>,
        key_type: KeyType,
        validity: Validity,
    ) -> Result<Credentials, TrustError> {
        self.issue_with_key(PrivateKey::generate(key_type)?, node_ids, user, validity)
    }

    /// Credentials for a key the caller already has (say, one RSA key reused across
    /// tests, since RSA key generation is slow).
    pub fn issue_with_key(
        &self,
        key: PrivateKey,
        node_ids: &[NodeId],
        user: Option<&str>,
        validity: Validity,
    ) -> Result<Credentials, TrustError> {
        self.issue_with_params(key, node_params(node_ids, &self.overlay, user, validity)?)
    }

    /// Credentials from hand-made certificate parameters (for tests of refusal).
    pub(crate) fn issue_with_params(
        &self,
        key: PrivateKey,
        params: CertificateParams,
    ) -> Result<Credentials, TrustError> {
        let der = params.signed_by(&key.rcgen_key()?, &self.issuer)?.der().to_vec();
        Credentials::new(key, self.chain_for(der))
    }

    /// Issues a TLS server certificate for `key` with these DNS names and IP
    /// addresses as its subjectAltName, for the HTTPS servers around an overlay
    /// (the configuration and enrollment server, RFC 6940 §11.2, §11.3), whose
    /// certificate must match the name clients connect to. It carries no Node-ID, so
    /// it can never pass as a node certificate. Returns the certificate, DER.
    pub fn issue_tls_server(
        &self,
        key: &PrivateKey,
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Validity,
    ) -> Result<Vec<u8>, TrustError> {
        if dns_names.is_empty() && ips.is_empty() {
            return Err(TrustError::Issue(
                "a TLS server certificate needs at least one name".into(),
            ));
        }
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(first) = dns_names.first() {
            dn.push(DnType::CommonName, first.as_str());
        }
        p.distinguished_name = dn;
        for name in dns_names {
            p.subject_alt_names.push(SanType::DnsName(name.clone().try_into()?));
        }
        for ip in ips {
            p.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_common(&mut p, validity)?;
        Ok(p.signed_by(&key.rcgen_key()?, &self.issuer)?.der().to_vec())
    }

    /// Issues a certificate for the key in a PKCS#10 request (DER), as the
    /// enrollment server does (§11.3): the request's signature is checked, but
    /// the names come from the caller, not the request — these Node-IDs as reload
    /// URIs and this user name, with an empty subject. Returns the certificate, DER;
    /// [`TestCa::chain_for`] adds any intermediates.
    pub fn issue_from_csr(
        &self,
        csr_der: &[u8],
        node_ids: &[NodeId],
        user: Option<&str>,
        validity: Validity,
    ) -> Result<Vec<u8>, TrustError> {
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
            .map_err(|e| TrustError::Malformed(format!("certificate signing request: {e}")))?;
        let request = CertificateSigningRequestParams {
            params: node_params(node_ids, &self.overlay, user, validity)?,
            public_key: csr.public_key,
        };
        Ok(request.signed_by(&self.issuer)?.der().to_vec())
    }
}
