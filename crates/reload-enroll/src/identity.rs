//! A node's data directory: what `p2psip enroll` writes and a peer reads when it
//! starts (RFC 6940 §11.3).
//!
//! ```text
//! DIR/                 mode 0700
//!   reload-config.xml  the overlay's configuration document, signed, as fetched
//!   key.pem            the node's private key, PKCS#8 PEM, mode 0600
//!   cert.pem           its certificate (then any intermediates), PEM
//! ```

use std::path::{Path, PathBuf};

use reload_core::NodeConfig;
use reload_trust::{Credentials, TrustAnchors, TrustError, unix_now};
use reload_wire::{NodeId, OverlayHash};

use crate::config::{ConfigDocument, ConfigError, ConfigTrust, Configuration, MAX_DOCUMENT_SIZE};
use crate::files::{FileError, PEM_CERTIFICATE, PEM_PRIVATE_KEY, mode_of, read_limited, read_pem};

/// The configuration document in a data directory.
pub const CONFIG_FILE: &str = "reload-config.xml";
/// The private key in a data directory.
pub const KEY_FILE: &str = "key.pem";
/// The certificate chain in a data directory.
pub const CERT_FILE: &str = "cert.pem";

/// Why a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// The configuration document is malformed, unsigned, badly signed or expired.
    #[error("{}: {source}", path.display())]
    Config {
        /// The document.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: ConfigError,
    },
    /// The key or certificate is unusable, or the certificate is not the overlay's
    /// (expired, another root, another overlay, no Node-ID).
    #[error("{}: {source} (enroll again with `p2psip enroll`)", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: TrustError,
    },
    /// The configuration lists the certificate's Node-ID as a bad-node (§11.1).
    #[error("the configuration revokes this node's Node-ID {0} (bad-node)")]
    Revoked(NodeId),
    /// The private key is readable by others.
    #[error("{}: mode {mode:o} lets others read the private key; make it 0600 (chmod 600)", path.display())]
    InsecureKey {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// A node's identity in an overlay: the verified configuration, its credentials,
/// and the trust anchors to check other nodes with.
#[derive(Debug)]
pub struct NodeIdentity {
    /// The overlay's configuration, its signature verified.
    pub configuration: Configuration,
    /// The node's private key and certificate chain.
    pub credentials: Credentials,
    /// The overlay's trust anchors ([`Configuration::trust_anchors`]).
    pub trust_anchors: TrustAnchors,
    /// The configuration document's bytes, as signed.
    pub configuration_xml: Vec<u8>,
}

impl NodeIdentity {
    /// Reads the data directory `dir` and checks it now (see [`NodeIdentity::load_at`]).
    pub fn load(dir: &Path) -> Result<NodeIdentity, IdentityError> {
        NodeIdentity::load_at(dir, unix_now())
    }

    /// Reads the data directory `dir` and checks, at `now` (Unix seconds): the
    /// configuration's signature (against the root certificates it lists — the
    /// document was verified against the pinned root when it was fetched, and the
    /// directory is private, so this catches damage, not an attacker who can write
    /// it) and its expiration; that the key is private (mode 0600 or stricter) and
    /// is the certificate's; that the certificate chains to the overlay's roots,
    /// names this overlay, is valid, and is not a bad-node.
    pub fn load_at(dir: &Path, now: i64) -> Result<NodeIdentity, IdentityError> {
        let config_path = dir.join(CONFIG_FILE);
        let configuration_xml = read_limited(&config_path, MAX_DOCUMENT_SIZE)?;
        let config_err = |source| IdentityError::Config {
            path: config_path.clone(),
            source,
        };
        let doc = ConfigDocument::parse(&configuration_xml).map_err(config_err)?;
        let entry = doc.entry(None).map_err(config_err)?;
        let roots = entry.configuration().root_certs.clone();
        let configuration = entry.verify(ConfigTrust::Roots(&roots), now).map_err(config_err)?;

        let key_path = dir.join(KEY_FILE);
        let mode = mode_of(&key_path)?;
        if mode & 0o077 != 0 {
            return Err(IdentityError::InsecureKey { path: key_path, mode });
        }
        let key = read_pem(&key_path, PEM_PRIVATE_KEY)?
            .into_iter()
            .next()
            .ok_or_else(|| FileError::invalid(&key_path, "holds no private key"))?;
        let cert_path = dir.join(CERT_FILE);
        let chain = read_pem(&cert_path, PEM_CERTIFICATE)?;
        let cert_err = |source| IdentityError::Certificate {
            path: cert_path.clone(),
            source,
        };
        let credentials = Credentials::from_pkcs8_der(&key, chain).map_err(cert_err)?;
        let trust_anchors = configuration.trust_anchors().map_err(config_err)?;
        let info = trust_anchors.verify(credentials.chain(), now).map_err(cert_err)?;
        if let Some(bad) = info.node_ids.iter().find(|n| configuration.bad_nodes.contains(n)) {
            return Err(IdentityError::Revoked(*bad));
        }
        Ok(NodeIdentity {
            configuration,
            credentials,
            trust_anchors,
            configuration_xml,
        })
    }

    /// The certificate's Node-IDs (at least one).
    pub fn node_ids(&self) -> &[NodeId] {
        self.credentials.node_ids()
    }

    /// The first Node-ID, the one a node with one identity uses.
    pub fn node_id(&self) -> NodeId {
        self.node_ids().first().copied().unwrap_or(NodeId::ZERO)
    }

    /// The certificate's user name.
    pub fn user(&self) -> Option<&str> {
        self.credentials.user()
    }

    /// The overlay's hash.
    pub fn overlay(&self) -> OverlayHash {
        self.configuration.overlay_hash()
    }

    /// The core's configuration for this node as a peer
    /// ([`Configuration::node_config`] with [`NodeIdentity::node_id`]).
    pub fn node_config(&self) -> NodeConfig {
        self.configuration.node_config(self.node_id())
    }
}
