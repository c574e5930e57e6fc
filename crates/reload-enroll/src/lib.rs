//! # reload-enroll
//!
//! How a node gets into a RELOAD overlay (RFC 6940 §11): the overlay configuration
//! document, the certificate authority that signs it, the enrollment server that
//! turns a password and a certificate request into a node certificate, and the
//! client that fetches both.
//!
//! - [`config`]: the configuration document (§11.1) — a typed model, the XML it is
//!   written as, a parser for untrusted documents, and the signatures over the
//!   `<configuration>` and `<kind>` elements. `grammar/reload-config.rng` is the
//!   RELAX NG grammar of §11.1.1 that the documents validate against.
//! - [`ca`]: a CA directory — root key and certificate, the enrollment server's TLS
//!   certificate, the signed configuration, the accounts.
//! - [`server`]: the configuration and enrollment server (§11.2, §11.3) over HTTPS.
//! - [`client`]: fetch and verify the configuration, enroll, and write a node's data
//!   directory.
//! - [`identity`]: [`NodeIdentity::load`](identity::NodeIdentity::load), what a peer
//!   reads from its data directory when it starts.
//! - [`accounts`]: the user-name rule, Argon2id password hashes, and the Node-IDs
//!   each user was given; [`files`]: private directories, atomic writes, PEM.
//!
//! All TLS uses rustls with the aws-lc-rs provider; all other cryptography is
//! reload-trust's (aws-lc-rs). Nothing here panics on what comes off the network.

pub mod accounts;
pub mod ca;
pub mod client;
pub mod config;
pub mod files;
pub mod identity;
pub mod server;

mod ratelimit;

pub use ca::{CaDir, CaError, CaInit};
pub use client::{
    ClientError, EnrollOptions, Enrolled, Fetched, ServerTrust, enroll, fetch_configuration, fingerprint,
};
pub use config::{
    ConfigDocument, ConfigError, ConfigSigner, ConfigTrust, Configuration, KindSpec, LinkProtocol, SignatureProblem,
};
pub use identity::{IdentityError, NodeIdentity};
pub use server::{EnrollmentServer, ServerError, ServerOptions};

/// The rustls crypto provider every TLS connection here uses: aws-lc-rs, the one
/// reload-trust's signatures already use, so only one is ever linked in.
pub fn crypto_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
