//! # reload-trust
//!
//! Certificates and signatures for RELOAD (RFC 6940): what a node certificate says
//! (its Node-IDs and user name, §11.3), whether to trust it (a chain to the
//! overlay's root, or a self-signed certificate where the overlay permits one,
//! §11.3.1), and the signatures every message (§6.3.4) and every stored value
//! (§7.1) carries.
//!
//! - [`reload_uri`] / [`parse_reload_uri`]: the `reload:` URI that puts a Node-ID in
//!   a certificate (§14.15).
//! - [`CertInfo`]: a parsed certificate. [`TrustAnchors::verify`] validates a chain.
//! - [`Credentials`]: a private key ([`PrivateKey`], ECDSA P-256 or RSA-2048) with
//!   its chain; it signs messages and stored data.
//! - [`verify_signature`], [`verify_message`], [`verify_stored_data`]: checking.
//! - [`CertificateCache`]: verified certificates by the signer identities that name
//!   them, bounded.
//! - [`TestCa`]: a certificate authority for tests and tools.
//!
//! All cryptography is aws-lc-rs; chain validation is rustls-webpki. Nothing here
//! panics on bad input: every failure is a [`TrustError`].
//!
//! ```
//! use reload_trust::{CertificateCache, KeyType, TestCa, Validity, verify_signature};
//! use reload_wire::NodeId;
//!
//! # fn main() -> Result<(), reload_trust::TrustError> {
//! let now = 1_800_000_000;
//! let validity = Validity::starting_at(now - 60, 86_400);
//! let ca = TestCa::new("overlay.example.org", KeyType::EcdsaP256, validity)?;
//! let alice = NodeId([1; 16]);
//! let creds = ca.issue(&[alice], Some("alice@example.org"), KeyType::EcdsaP256, validity)?;
//!
//! // Alice signs; the receiver finds her certificate in the security block,
//! // validates it against the overlay root once, and checks the signature.
//! let signature = creds.sign(b"input", &alice)?;
//! let mut cache = CertificateCache::default();
//! let anchors = ca.trust_anchors()?;
//! let (cert, signer) = cache.resolve(&signature.identity, &creds.certificates(), &anchors, now)?;
//! verify_signature(b"input", &signature, cert)?;
//! assert_eq!(signer, Some(alice));
//! # Ok(())
//! # }
//! ```

mod anchors;
mod cache;
mod cert;
mod credentials;
mod error;
mod key;
mod signature;
mod test_ca;
mod uri;

pub use anchors::TrustAnchors;
pub use cache::{CertificateCache, DEFAULT_CACHE_CAPACITY};
pub use cert::{CertInfo, KeyAlgorithm, NodeIdDigest, PublicKey, cert_hash, cert_hash_node_id, self_signed_node_ids};
pub use credentials::{Credentials, SelfSignedNodeIds, Validity, unix_now};
pub use error::TrustError;
pub use key::{KeyType, PrivateKey};
pub use signature::{
    identity_names, message_signature_input, signer_identity, signer_node_id, stored_data_signature_input,
    verify_message, verify_signature, verify_stored_data,
};
pub use test_ca::TestCa;
pub use uri::{ReloadUri, is_reload_uri, parse_reload_uri, reload_uri};

#[cfg(test)]
mod tests;
