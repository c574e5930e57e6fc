//! Several nodes in one process on real TLS or DTLS links over 127.0.0.1: they join
//! through one bootstrap peer, store values through one node and fetch them
//! through others, and refuse a node whose certificate another overlay issued.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{KIND, TestNode, node_multiple_resource};
use reload_net::runtime::{LinkProtocol, NodeHandle};
use reload_net::security::LinkSecurity;
use reload_trust::{KeyType, TestCa, Validity};
use reload_wire::{
    DataValue, Destination, FetchReq, MessageBody, ModelSpecifier, NodeId, OverlayHash, ResourceId,
    StoredDataSpecifier, StoredDataValue,
};

const OVERLAY: &str = "tls-test.example.org";

async fn spawn(ca: &TestCa, n: u8, bootstrap: Vec<SocketAddr>) -> NodeHandle {
    spawn_with(ca, n, bootstrap, LinkProtocol::Tls).await
}

async fn spawn_with(ca: &TestCa, n: u8, bootstrap: Vec<SocketAddr>, protocol: LinkProtocol) -> NodeHandle {
    let mut id = [0u8; 16];
    id[0] = n.wrapping_mul(37);
    id[15] = n;
    TestNode {
        ca,
        overlay: OVERLAY,
        node_id: NodeId(id),
        user: Some(format!("user{n}@{OVERLAY}")),
        bootstrap,
        protocol,
        keylog: None,
        reliability_timer: Duration::from_millis(1000),
        seed: u64::from(n),
    }
    .start()
    .await
}

fn resource(node: NodeId, i: u8) -> ResourceId {
    node_multiple_resource(node, i)
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
    join_store_and_fetch(LinkProtocol::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_join_store_and_fetch_over_dtls() {
    join_store_and_fetch(LinkProtocol::Dtls).await;
}

async fn join_store_and_fetch(protocol: LinkProtocol) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let test = async {
        let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
        let first = spawn_with(&ca, 1, Vec::new(), protocol).await;
        first.joined(Duration::from_secs(5)).await.unwrap();
        let boot = vec![first.local_addr()];
        let mut nodes = vec![first];
        for n in 2..=6 {
            let h = spawn_with(&ca, n, boot.clone(), protocol).await;
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

/// A raw TLS link to `to`, presenting a certificate for `node_id` from `ca`.
async fn raw_link(
    ca: &TestCa,
    node_id: NodeId,
    validity: Validity,
    to: &NodeHandle,
) -> Result<reload_net::link::LinkConn, reload_net::link::LinkError> {
    let creds = ca.issue(&[node_id], None, KeyType::EcdsaP256, validity).unwrap();
    let security = LinkSecurity::new(creds, node_id, ca.trust_anchors().unwrap()).with_keylog(None);
    let links = reload_net::tls::TlsLinks::new(security, 5000).unwrap();
    links.connect(to.local_addr(), Some(to.node_id())).await
}

/// A Ping to `to`, signed by `node_id`'s credentials from `ca`.
fn signed_ping(ca: &TestCa, node_id: NodeId, to: NodeId, txid: u64) -> Vec<u8> {
    let creds = ca
        .issue(&[node_id], None, KeyType::EcdsaP256, Validity::from_now(3600))
        .unwrap();
    let crypto = reload_core::CertificateCrypto::new(creds, node_id, ca.trust_anchors().unwrap()).unwrap();
    let header = reload_wire::ForwardingHeader::new(
        OverlayHash::from_overlay_name(OVERLAY),
        reload_wire::TransactionId(txid),
        vec![Destination::node(to)],
    );
    let body = MessageBody::PingReq(reload_wire::PingReq::default());
    reload_core::crypto::signed_message(&crypto, header, body, 5000).unwrap()
}

async fn next_message(conn: &mut reload_net::link::LinkConn, limit: Duration) -> Option<Vec<u8>> {
    let wait = async {
        while let Some(ev) = conn.events.recv().await {
            match ev {
                reload_net::link::LinkEvent::Message(m) => return Some(m),
                reload_net::link::LinkEvent::Closed(_) => return None,
                _ => {}
            }
        }
        None
    };
    tokio::time::timeout(limit, wait).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificates_bad_signatures_and_oversized_messages_are_refused() {
    let test = async {
        let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
        let peer = spawn(&ca, 1, Vec::new()).await;
        peer.joined(Duration::from_secs(5)).await.unwrap();
        let me = NodeId([0x77; 16]);

        // An expired certificate: no link.
        let now = reload_trust::unix_now();
        let expired = Validity::new(now - 7200, now - 3600);
        // (Under TLS 1.3 the client finishes before the server has judged its
        // certificate, so the refusal shows as a link that closes unanswered.)
        if let Ok(mut conn) = raw_link(&ca, me, expired, &peer).await {
            let _ = conn.send.send(signed_ping(&ca, me, peer.node_id(), 9)).await;
            assert_eq!(
                next_message(&mut conn, Duration::from_secs(3)).await,
                None,
                "an expired certificate was accepted"
            );
        }

        // A valid certificate and a well-signed Ping: answered.
        let mut conn = raw_link(&ca, me, Validity::from_now(3600), &peer).await.unwrap();
        conn.send.send(signed_ping(&ca, me, peer.node_id(), 1)).await.unwrap();
        let answer = next_message(&mut conn, Duration::from_secs(5))
            .await
            .expect("no answer to a good Ping");
        let decoded = reload_wire::Message::decode(&answer, &reload_wire::WireConfig::default()).unwrap();
        assert!(matches!(decoded.contents.body, MessageBody::PingAns(_)), "{decoded:?}");

        // The same Ping with one byte of its signature flipped: dropped and counted.
        let mut forged = signed_ping(&ca, me, peer.node_id(), 2);
        let last = forged.len() - 1;
        forged[last] ^= 0x01;
        conn.send.send(forged).await.unwrap();
        assert_eq!(
            next_message(&mut conn, Duration::from_secs(2)).await,
            None,
            "a forged Ping was answered"
        );
        assert_eq!(peer.status().await.unwrap().stats.dropped_bad_signature, 1);

        // A message over max-message-size (5000 here): the peer closes the link
        // (§6.6). Our own links refuse to send one, so this link has a larger limit.
        let big = vec![0u8; 6000];
        let creds = ca
            .issue(&[me], None, KeyType::EcdsaP256, Validity::from_now(3600))
            .unwrap();
        let security = LinkSecurity::new(creds, me, ca.trust_anchors().unwrap()).with_keylog(None);
        let loose = reload_net::tls::TlsLinks::new(security, 1 << 20).unwrap();
        let mut conn = loose.connect(peer.local_addr(), Some(peer.node_id())).await.unwrap();
        conn.send.send(big).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(ev) = conn.events.recv().await {
                if let reload_net::link::LinkEvent::Closed(reason) = ev {
                    return Some(reason);
                }
            }
            None
        })
        .await
        .expect("the peer kept a link that sent an oversized message");
        assert!(closed.is_some());
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("test took too long");
}
