//! Private keys: ECDSA P-256 (the default) or RSA (RFC 6940 §6.3.4's mandatory
//! RSASSA-PKCS1-v1_5 with SHA-256).

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use rcgen::{CertificateParams, DistinguishedName, SanType};
use reload_wire::SignatureAndHashAlgorithm;
use rustls_pki_types::PrivatePkcs8KeyDer;

use crate::error::TrustError;

/// Which kind of key to generate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// ECDSA on P-256, signing with SHA-256: small and fast; the p2psip default.
    #[default]
    EcdsaP256,
    /// RSA with a 2048-bit modulus, signing with RSASSA-PKCS1-v1_5 and SHA-256, the
    /// algorithm every RELOAD implementation must support (§6.3.4). Generation is slow
    /// (tens to hundreds of milliseconds).
    Rsa2048,
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key that signs RELOAD messages and stored values.
///
/// Holds the PKCS#8 encoding too, for TLS configuration and for storing the key.
/// `Debug` shows the algorithm only, never key material.
pub struct PrivateKey {
    inner: Inner,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.signature_algorithm())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Generates a new key.
    pub fn generate(key_type: KeyType) -> Result<PrivateKey, TrustError> {
        let failed = |_| TrustError::Key(format!("could not generate a {key_type:?} key"));
        match key_type {
            KeyType::EcdsaP256 => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                    .map_err(failed)?;
                PrivateKey::from_pkcs8_der(doc.as_ref())
            }
            KeyType::Rsa2048 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
                let der = pair.as_der().map_err(failed)?;
                Ok(PrivateKey {
                    pkcs8: der.as_ref().to_vec(),
                    inner: Inner::Rsa(pair),
                })
            }
        }
    }

    /// Reads a PKCS#8 DER private key: ECDSA P-256, or RSA of 2048 bits or more.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, TrustError> {
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Ok(PrivateKey {
                inner: Inner::Ecdsa(pair),
                pkcs8: der.to_vec(),
            });
        }
        match RsaKeyPair::from_pkcs8(der) {
            Ok(pair) if pair.public_modulus_len() >= 256 => Ok(PrivateKey {
                inner: Inner::Rsa(pair),
                pkcs8: der.to_vec(),
            }),
            Ok(_) => Err(TrustError::UnsupportedAlgorithm(
                "RSA keys shorter than 2048 bits".into(),
            )),
            Err(e) => Err(TrustError::Key(format!(
                "not a PKCS#8 ECDSA P-256 or RSA private key: {e}"
            ))),
        }
    }

    /// The key in PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The {hash, signature} pair this key signs with (§6.3.4): {sha256, ecdsa} or
    /// {sha256, rsa}.
    pub fn signature_algorithm(&self) -> SignatureAndHashAlgorithm {
        match self.inner {
            Inner::Ecdsa(_) => SignatureAndHashAlgorithm::ECDSA_SHA256,
            Inner::Rsa(_) => SignatureAndHashAlgorithm::RSA_SHA256,
        }
    }

    /// The public key as a certificate's subjectPublicKey holds it: the uncompressed
    /// EC point, or the PKCS#1 RSAPublicKey.
    pub fn public_key_bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Ecdsa(p) => p.public_key().as_ref(),
            Inner::Rsa(p) => p.public_key().as_ref(),
        }
    }

    /// The DER SubjectPublicKeyInfo, as it appears in a certificate for this key (and
    /// as self-signed Node-IDs hash it, §11.3.1).
    pub fn spki_der(&self) -> Result<Vec<u8>, TrustError> {
        use rcgen::PublicKeyData;
        Ok(self.rcgen_key()?.subject_public_key_info())
    }

    /// Signs `message` (ECDSA signatures are ASN.1 DER, RSA ones PKCS#1 v1.5).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, TrustError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ecdsa(p) => p
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| TrustError::Key("ECDSA signing failed".into())),
            Inner::Rsa(p) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| TrustError::Key("RSA signing failed".into()))?;
                Ok(sig)
            }
        }
    }

    /// A PKCS#10 certificate signing request for this key, as a node sends it to
    /// the enrollment server (RFC 6940 §11.3). The subject is empty (the server
    /// chooses the names); the requested user name, if any, is an rfc822Name in the
    /// requested subjectAltName.
    pub fn certificate_request(&self, user: Option<&str>) -> Result<Vec<u8>, TrustError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        if let Some(user) = user {
            params.subject_alt_names = vec![SanType::Rfc822Name(user.to_owned().try_into()?)];
        }
        let csr = params.serialize_request(&self.rcgen_key()?)?;
        Ok(csr.der().to_vec())
    }

    /// The same key as rcgen wants it, to sign certificates and requests.
    pub(crate) fn rcgen_key(&self) -> Result<rcgen::KeyPair, TrustError> {
        let alg = match self.inner {
            Inner::Ecdsa(_) => &rcgen::PKCS_ECDSA_P256_SHA256,
            Inner::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
        };
        Ok(rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(self.pkcs8.as_slice()),
            alg,
        )?)
    }
}
