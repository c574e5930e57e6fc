//! Several nodes in one process on real TLS links over 127.0.0.1: they join
//! through one bootstrap peer, store values through one node and fetch them
//! through others, and refuse a node whose certificate another overlay issued.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use reload_core::NodeConfig;
use reload_core::storage::{AccessPolicy, KindDef};
use reload_net::runtime::{self, LinkProtocol, NodeHandle, RuntimeConfig};
use reload_net::security::LinkSecurity;
use reload_trust::{KeyType, TestCa, Validity};
use reload_wire::{
    DataModel, DataValue, Destination, FetchReq, KindId, MessageBody, ModelSpecifier, NodeId, OverlayHash, ResourceId,
    StoredDataSpecifier, StoredDataValue,
};

const OVERLAY: &str = "tls-test.example.org";
const KIND: KindId = KindId(0xF000_0001);

fn node_config() -> NodeConfig {
    let mut cfg = NodeConfig::new(OverlayHash::from_overlay_name(OVERLAY), NodeId::default());
    cfg.kinds.add(KindDef {
        id: KIND,
        name: "TEST-DATA".into(),
        model: DataModel::Single,
        policy: AccessPolicy::NodeMultiple { max: 255 },
        max_count: 1,
        max_size: 1024,
    });
    cfg.data_models = cfg.kinds.data_models();
    cfg.reliability_timer = Duration::from_millis(1000);
    cfg
}

async fn spawn(ca: &TestCa, n: u8, bootstrap: Vec<SocketAddr>) -> NodeHandle {
    let mut id = [0u8; 16];
    id[0] = n.wrapping_mul(37);
    id[15] = n;
    let node_id = NodeId(id);
    let creds = ca
        .issue(
            &[node_id],
            Some(&format!("user{n}@{OVERLAY}")),
            KeyType::EcdsaP256,
            Validity::from_now(3600),
        )
        .unwrap();
    let security = LinkSecurity::new(creds, node_id, ca.trust_anchors().unwrap()).with_keylog(None);
    let create = bootstrap.is_empty();
    let (handle, _task) = runtime::start(RuntimeConfig {
        node: node_config(),
        security,
        protocol: LinkProtocol::Tls,
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap,
        create_overlay: create,
        storage: None,
        seed: u64::from(n),
    })
    .await
    .unwrap();
    handle
}

fn resource(node: NodeId, i: u8) -> ResourceId {
    let mut name = node.0.to_vec();
    name.push(i);
    reload_core::ring::hash_resource_name(&name)
}

async fn fetch(from: &NodeHandle, resource: ResourceId) -> Option<Vec<u8>> {
    let body = MessageBody::FetchReq(FetchReq {
        resource: resource.clone(),
        specifiers: vec![StoredDataSpecifier {
            kind: KIND,
            generation: 0,
            model_specifier: ModelSpecifier::Single,
        }],
    });
    let answer = from.request(Destination::resource(resource), body).await.ok()?;
    match answer.body {
        MessageBody::FetchAns(a) => a
            .kind_responses
            .into_iter()
            .flat_map(|k| k.values)
            .find_map(|v| match v.value {
                StoredDataValue::Single { value } if value.exists => Some(value.value),
                _ => None,
            }),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_join_store_and_fetch_over_tls() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let test = async {
        let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
        let first = spawn(&ca, 1, Vec::new()).await;
        first.joined(Duration::from_secs(5)).await.unwrap();
        let boot = vec![first.local_addr()];
        let mut nodes = vec![first];
        for n in 2..=6 {
            let h = spawn(&ca, n, boot.clone()).await;
            h.joined(Duration::from_secs(20)).await.unwrap();
            nodes.push(h);
        }
        // Let the ring settle (reactive Updates).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let writer = &nodes[2];
        for i in 1..=20u8 {
            let r = resource(writer.node_id(), i);
            let value = StoredDataValue::Single {
                value: DataValue::new(format!("value {i}").into_bytes()),
            };
            writer.store(r, KIND, vec![value], 600).await.unwrap();
        }
        for i in 1..=20u8 {
            let reader = &nodes[usize::from(i) % nodes.len()];
            let got = fetch(reader, resource(writer.node_id(), i)).await;
            assert_eq!(
                got,
                Some(format!("value {i}").into_bytes()),
                "value {i} through node {}",
                reader.node_id()
            );
        }
        let leaving: Vec<_> = nodes
            .into_iter()
            .map(|n| tokio::spawn(async move { n.leave(Duration::from_secs(2)).await }))
            .collect();
        for l in leaving {
            l.await.unwrap().unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_overlay_is_refused() {
    let test = async {
        let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
        let stranger_ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
        let first = spawn(&ca, 1, Vec::new()).await;
        first.joined(Duration::from_secs(5)).await.unwrap();
        let stranger = spawn(&stranger_ca, 9, vec![first.local_addr()]).await;
        assert!(
            stranger.joined(Duration::from_secs(4)).await.is_err(),
            "a stranger joined"
        );
        let status = first.status().await.unwrap();
        assert!(
            status.links.is_empty(),
            "the first peer holds a link to a stranger: {:?}",
            status.links
        );
    };
    tokio::time::timeout(Duration::from_secs(30), test)
        .await
        .expect("test took too long");
}
