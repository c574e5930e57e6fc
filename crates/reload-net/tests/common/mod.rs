//! What the in-process overlay tests share: a node of a test overlay on
//! 127.0.0.1 with a test data Kind, run by the real runtime over real links.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reload_core::NodeConfig;
use reload_core::storage::{AccessPolicy, KindDef};
use reload_net::runtime::{self, LinkProtocol, NodeHandle, RuntimeConfig};
use reload_net::security::LinkSecurity;
use reload_trust::{KeyType, TestCa, Validity};
use reload_wire::{DataModel, KindId, NodeId, OverlayHash, ResourceId};

/// The test data Kind: single values under NODE-MULTIPLE, as p2psip's data Kind.
pub const KIND: KindId = KindId(0xF000_0001);

/// A test node: its Node-ID and certificate (from `ca`), where it bootstraps,
/// its link protocol and its key log.
pub struct TestNode<'a> {
    pub ca: &'a TestCa,
    pub overlay: &'a str,
    pub node_id: NodeId,
    pub user: Option<String>,
    pub bootstrap: Vec<SocketAddr>,
    pub protocol: LinkProtocol,
    pub keylog: Option<PathBuf>,
    pub reliability_timer: Duration,
    pub seed: u64,
}

impl TestNode<'_> {
    /// Starts the node; the first (no bootstrap peers) creates the overlay.
    pub async fn start(self) -> NodeHandle {
        let creds = self
            .ca
            .issue(
                &[self.node_id],
                self.user.as_deref(),
                KeyType::EcdsaP256,
                Validity::from_now(3600),
            )
            .unwrap();
        let security =
            LinkSecurity::new(creds, self.node_id, self.ca.trust_anchors().unwrap()).with_keylog(self.keylog);
        let mut cfg = NodeConfig::new(OverlayHash::from_overlay_name(self.overlay), self.node_id);
        cfg.kinds.add(KindDef {
            id: KIND,
            name: "TEST-DATA".into(),
            model: DataModel::Single,
            policy: AccessPolicy::NodeMultiple { max: 255 },
            max_count: 1,
            max_size: 1024,
        });
        cfg.data_models = cfg.kinds.data_models();
        cfg.reliability_timer = self.reliability_timer;
        let create = self.bootstrap.is_empty();
        let (handle, _task) = runtime::start(RuntimeConfig {
            node: cfg,
            security,
            protocol: self.protocol,
            listen: "127.0.0.1:0".parse().unwrap(),
            bootstrap: self.bootstrap,
            create_overlay: create,
            storage: None,
            seed: self.seed,
        })
        .await
        .unwrap();
        handle
    }
}

/// The Resource-ID of `node`'s NODE-MULTIPLE iteration `i` (§7.3.4).
pub fn node_multiple_resource(node: NodeId, i: u8) -> ResourceId {
    let mut name = node.0.to_vec();
    name.push(i);
    reload_core::ring::hash_resource_name(&name)
}
