//! What both link protocols need to authenticate a peer (RFC 6940 §6.6, §11.3,
//! §13.3): this node's credentials, the overlay's trust anchors, and the check
//! that the far end's certificate chains to them and names the Node-ID expected.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use reload_trust::{CertInfo, Credentials, TrustAnchors, TrustError, unix_now};
use reload_wire::NodeId;

/// Why a peer's certificate was refused.
#[derive(Debug, thiserror::Error)]
pub enum PeerAuthError {
    /// The chain does not lead to the overlay's root, is expired, or is malformed.
    #[error("peer certificate refused: {0}")]
    Untrusted(#[from] TrustError),
    /// The certificate is valid but is not for the Node-ID this side expected
    /// (the Attach or the routing table named another node).
    #[error("peer certificate is for {found:?}, expected Node-ID {expected}")]
    WrongNodeId {
        /// The Node-ID this side meant to reach.
        expected: NodeId,
        /// The Node-IDs the certificate carries.
        found: Vec<NodeId>,
    },
    /// The certificate carries no Node-ID at all (a user-only certificate cannot
    /// hold an overlay link).
    #[error("peer certificate carries no Node-ID")]
    NoNodeId,
    /// The far end sent no certificate.
    #[error("peer sent no certificate")]
    NoCertificate,
}

/// This node's identity on links and the overlay's trust, shared by every link.
#[derive(Clone)]
pub struct LinkSecurity {
    inner: Arc<Inner>,
    keylog: Option<PathBuf>,
}

struct Inner {
    credentials: Credentials,
    node_id: NodeId,
    anchors: TrustAnchors,
}

impl std::fmt::Debug for LinkSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSecurity")
            .field("node_id", &self.inner.node_id)
            .field("keylog", &self.keylog)
            .finish_non_exhaustive()
    }
}

impl LinkSecurity {
    /// Links that present `credentials` as `node_id` and accept peers whose
    /// certificates `anchors` validate. Key logging follows `SSLKEYLOGFILE`.
    pub fn new(credentials: Credentials, node_id: NodeId, anchors: TrustAnchors) -> Self {
        let keylog = std::env::var_os("SSLKEYLOGFILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        LinkSecurity {
            inner: Arc::new(Inner {
                credentials,
                node_id,
                anchors,
            }),
            keylog,
        }
    }

    /// This node's credentials (key and certificate chain).
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// The Node-ID this node uses.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The overlay's trust anchors.
    pub fn anchors(&self) -> &TrustAnchors {
        &self.inner.anchors
    }

    /// The same, logging (D)TLS secrets to `path` whatever `SSLKEYLOGFILE` says
    /// (`None`: no key log).
    pub fn with_keylog(mut self, path: Option<PathBuf>) -> Self {
        self.keylog = path;
        self
    }

    /// Whether (D)TLS secrets are logged, so that a capture can be decrypted.
    pub fn keylog(&self) -> bool {
        self.keylog.is_some()
    }

    /// The file (D)TLS secrets go to, in the NSS key log format Wireshark reads:
    /// the one `SSLKEYLOGFILE` named when the security was made, or the one given
    /// to [`LinkSecurity::with_keylog`].
    pub fn keylog_path(&self) -> Option<&Path> {
        self.keylog.as_deref()
    }

    /// Checks the far end's chain (end entity first, DER) now: it must validate
    /// against the overlay's anchors and, when `expected` is given, carry that
    /// Node-ID. Returns the certificate and the Node-ID the link belongs to.
    pub fn verify_peer(
        &self,
        chain: &[Vec<u8>],
        expected: Option<NodeId>,
    ) -> Result<(CertInfo, NodeId), PeerAuthError> {
        if chain.is_empty() {
            return Err(PeerAuthError::NoCertificate);
        }
        let info = self.inner.anchors.verify(chain, unix_now())?;
        let node = link_node_id(&info, expected)?;
        Ok((info, node))
    }
}

/// The Node-ID of `info` a link belongs to: `expected` if the certificate carries
/// it; with nothing expected, the first (a certificate may carry several, §11.3).
fn link_node_id(info: &CertInfo, expected: Option<NodeId>) -> Result<NodeId, PeerAuthError> {
    match expected {
        Some(expected) if info.has_node_id(&expected) => Ok(expected),
        Some(expected) => Err(PeerAuthError::WrongNodeId {
            expected,
            found: info.node_ids.clone(),
        }),
        None => info.node_ids.first().copied().ok_or(PeerAuthError::NoNodeId),
    }
}
