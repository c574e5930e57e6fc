//! What can go wrong with certificates, keys and signatures.

use reload_wire::{EncodeError, NodeId};

/// Why a certificate, key or signature was refused, or could not be made.
///
/// Each variant says what was wrong; none carries secret material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The bytes are not a well-formed certificate, key, request or URI.
    #[error("malformed: {0}")]
    Malformed(String),
    /// No certificate was given where a chain was expected.
    #[error("no certificate was given")]
    EmptyChain,
    /// The current time is after the certificate's notAfter (RFC 6940 §7.1: the
    /// current time must be compared with the validity period).
    #[error("certificate expired: not after {not_after}, now {now} (Unix seconds)")]
    Expired {
        /// The certificate's notAfter, Unix seconds.
        not_after: i64,
        /// The time it was checked at, Unix seconds.
        now: i64,
    },
    /// The current time is before the certificate's notBefore.
    #[error("certificate not yet valid: not before {not_before}, now {now} (Unix seconds)")]
    NotYetValid {
        /// The certificate's notBefore, Unix seconds.
        not_before: i64,
        /// The time it was checked at, Unix seconds.
        now: i64,
    },
    /// The chain does not lead to any root certificate of the overlay (RFC 6940 §11.3).
    #[error("certificate does not chain to a root certificate of the overlay")]
    UnknownIssuer,
    /// A signature (on a certificate, a message or a stored value) does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The certificate carries no `reload:` URI naming a Node-ID (RFC 6940 §11.3).
    #[error("certificate names no Node-ID (RFC 6940 §11.3 requires at least one reload URI)")]
    NoNodeId,
    /// A self-signed certificate where the overlay does not permit them (RFC 6940 §11.3.1).
    #[error("self-signed certificates are not permitted in this overlay (RFC 6940 §11.3.1)")]
    SelfSignedNotPermitted,
    /// A self-signed certificate whose Node-IDs are not the hash of its public key
    /// (RFC 6940 §11.3.1: "nodes MUST check that the Node-ID and public keys match").
    #[error("the self-signed certificate's Node-IDs are not derived from its public key (RFC 6940 §11.3.1)")]
    NodeIdMismatch,
    /// The certificate's reload URIs name another overlay.
    #[error("certificate is for overlay {found:?}, not {expected:?}")]
    WrongOverlay {
        /// The overlay this node belongs to.
        expected: String,
        /// The overlay the certificate names.
        found: String,
    },
    /// A key, signature or hash algorithm this implementation does not support, or
    /// one that does not fit the certificate's key.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A CA certificate was presented as the end-entity certificate.
    #[error("a CA certificate was presented as a node certificate")]
    NotEndEntity,
    /// The certificate's extended key usage allows neither TLS server nor client
    /// authentication, which RELOAD links need.
    #[error("the certificate's extended key usage allows neither TLS server nor client authentication")]
    KeyUsage,
    /// Chain validation failed for another reason, named in the text.
    #[error("certificate rejected: {0}")]
    Rejected(String),
    /// The `none` identity or the {none, anonymous} algorithm where a real signature
    /// is required (RFC 6940 §7.4.1.1; they are allowed only on values the storing
    /// peer synthesizes, §7.4.2.2).
    #[error("anonymous signature where a signature is required (RFC 6940 §7.4.1.1)")]
    AnonymousSignature,
    /// The signature's SignerIdentity does not name the certificate it was checked against.
    #[error("the signer identity does not name this certificate")]
    SignerMismatch,
    /// No known certificate matches the signer identity.
    #[error("no known certificate matches the signer identity")]
    UnknownSigner,
    /// Signing as a Node-ID that the credentials' certificate does not carry.
    #[error("Node-ID {0} is not in this certificate")]
    NodeIdNotInCertificate(NodeId),
    /// The private key is not the one the certificate certifies.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// A key could not be generated, read or used.
    #[error("key: {0}")]
    Key(String),
    /// A certificate or request could not be made.
    #[error("certificate issuance failed: {0}")]
    Issue(String),
    /// The signature input could not be encoded.
    #[error("encoding the signature input: {0}")]
    Encode(#[from] EncodeError),
}

impl From<rcgen::Error> for TrustError {
    fn from(e: rcgen::Error) -> Self {
        TrustError::Issue(e.to_string())
    }
}
