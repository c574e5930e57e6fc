//! An overlay in one process for the SIP tests: peers on TLS links over
//! 127.0.0.1, each with a certificate for one user, that know the
//! SIP-REGISTRATION Kind.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use reload_core::NodeConfig;
use reload_core::storage::DomainRestriction;
use reload_net::runtime::{self, LinkProtocol, NodeHandle, RuntimeConfig};
use reload_net::security::LinkSecurity;
use reload_sip::usage::sip_registration_kind;
use reload_trust::{KeyType, TestCa, Validity};
use reload_wire::{NodeId, OverlayHash};

/// A distinct Node-ID for peer `n`, spread around the ring.
pub fn node_id(n: u8) -> NodeId {
    let mut id = [0u8; 16];
    id[0] = n.wrapping_mul(51);
    id[15] = n;
    NodeId(id)
}

/// A running peer and its link security (for the SIP front end's TLS).
pub struct TestPeer {
    /// The node.
    pub handle: NodeHandle,
    /// Its credentials and trust.
    pub security: LinkSecurity,
}

/// Starts peer `n` of `overlay`, whose certificate is for the user `user`;
/// the first (no bootstrap peers) creates the overlay.
pub async fn spawn(ca: &TestCa, overlay: &str, n: u8, user: &str, bootstrap: Vec<SocketAddr>) -> TestPeer {
    spawn_restricted(ca, overlay, n, user, bootstrap, DomainRestriction::Any).await
}

/// [`spawn`] for an overlay whose SIP-REGISTRATION Kind admits only the AORs
/// `restriction` admits (RFC 7904 §3.4).
pub async fn spawn_restricted(
    ca: &TestCa,
    overlay: &str,
    n: u8,
    user: &str,
    bootstrap: Vec<SocketAddr>,
    restriction: DomainRestriction,
) -> TestPeer {
    let id = node_id(n);
    let creds = ca
        .issue(&[id], Some(user), KeyType::EcdsaP256, Validity::from_now(3600))
        .unwrap();
    let security = LinkSecurity::new(creds, id, ca.trust_anchors().unwrap()).with_keylog(None);
    let mut cfg = NodeConfig::new(OverlayHash::from_overlay_name(overlay), id);
    cfg.kinds.add(sip_registration_kind(64, 1024));
    cfg.kinds
        .restrict_domains(reload_sip::usage::SIP_REGISTRATION, restriction);
    cfg.data_models = cfg.kinds.data_models();
    cfg.reliability_timer = Duration::from_millis(1000);
    let create = bootstrap.is_empty();
    let (handle, _task) = runtime::start(RuntimeConfig {
        node: cfg,
        security: security.clone(),
        protocol: LinkProtocol::Tls,
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap,
        create_overlay: create,
        storage: None,
        seed: u64::from(n),
    })
    .await
    .unwrap();
    TestPeer { handle, security }
}
