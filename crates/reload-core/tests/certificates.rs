//! Two nodes with real certificates (reload-trust): signed messages from the
//! overlay's CA are accepted; messages signed under another root, or by an
//! expired certificate, are dropped and counted (RFC 6940 §6.3.4, §13.3).

use reload_core::{CertificateCrypto, Event, LinkId, Node, NodeConfig, Time};
use reload_trust::{Credentials, KeyType, TestCa, Validity, unix_now};
use reload_wire::*;

const OVERLAY: &str = "certs.example.org";

fn now() -> Time {
    Time(u64::try_from(unix_now()).unwrap_or(0) * 1_000_000)
}

fn node(creds: Credentials, anchors_from: &TestCa, id: NodeId) -> Node {
    let crypto = CertificateCrypto::new(creds, id, anchors_from.trust_anchors().expect("anchors")).expect("crypto");
    Node::new(
        NodeConfig::new(OverlayHash::from_overlay_name(OVERLAY), id),
        Box::new(crypto),
        7,
    )
}

/// Starts `a` as the first peer, links it to `b` and pings `b` from `a`; returns
/// whether `a` got `b`'s answer, and `b`'s bad-signature count.
fn ping_between(mut a: Node, mut b: Node) -> (bool, u64) {
    let t = now();
    a.start(t, Vec::new(), true);
    b.start(t, Vec::new(), true);
    let (ia, ib) = (a.node_id(), b.node_id());
    a.handle_link_up(t, LinkId(1), ib, true);
    b.handle_link_up(t, LinkId(1), ia, false);
    while a.poll_transmit().is_some() || a.poll_event().is_some() || a.poll_action().is_some() {}
    while b.poll_transmit().is_some() || b.poll_event().is_some() || b.poll_action().is_some() {}
    let req = a.request(t, Destination::node(ib), MessageBody::PingReq(PingReq::default()));
    while let Some(tx) = a.poll_transmit() {
        b.handle_message(t, LinkId(1), &tx.bytes);
    }
    while let Some(tx) = b.poll_transmit() {
        a.handle_message(t, LinkId(1), &tx.bytes);
    }
    let mut answered = false;
    while let Some(e) = a.poll_event() {
        if let Event::Response {
            request,
            result: Ok(answer),
        } = e
        {
            answered |= request == req && answer.responder == ib;
        }
    }
    (answered, b.stats().dropped_bad_signature)
}

#[test]
fn nodes_of_one_overlay_accept_each_others_signatures() {
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(86_400)).expect("ca");
    let (ia, ib) = (NodeId([0x11; 16]), NodeId([0x99; 16]));
    let a = ca
        .issue(
            &[ia],
            Some("alice@example.org"),
            KeyType::EcdsaP256,
            Validity::from_now(3600),
        )
        .expect("a");
    let b = ca
        .issue(
            &[ib],
            Some("bob@example.org"),
            KeyType::EcdsaP256,
            Validity::from_now(3600),
        )
        .expect("b");
    let (answered, bad) = ping_between(node(a, &ca, ia), node(b, &ca, ib));
    assert!(answered, "a signed Ping is answered and the answer verified");
    assert_eq!(bad, 0);
}

#[test]
fn a_certificate_from_another_root_is_refused() {
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(86_400)).expect("ca");
    let rogue = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(86_400)).expect("rogue");
    let (ia, ib) = (NodeId([0x11; 16]), NodeId([0x99; 16]));
    let a = rogue
        .issue(&[ia], None, KeyType::EcdsaP256, Validity::from_now(3600))
        .expect("a");
    let b = ca
        .issue(&[ib], None, KeyType::EcdsaP256, Validity::from_now(3600))
        .expect("b");
    let (answered, bad) = ping_between(node(a, &rogue, ia), node(b, &ca, ib));
    assert!(!answered);
    assert_eq!(bad, 1, "b dropped the rogue's message and counted it");
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(86_400)).expect("ca");
    let (ia, ib) = (NodeId([0x11; 16]), NodeId([0x99; 16]));
    let t = unix_now();
    let a = ca
        .issue(&[ia], None, KeyType::EcdsaP256, Validity::new(t - 7200, t - 3600))
        .expect("a");
    let b = ca
        .issue(&[ib], None, KeyType::EcdsaP256, Validity::from_now(3600))
        .expect("b");
    let (answered, bad) = ping_between(node(a, &ca, ia), node(b, &ca, ib));
    assert!(!answered);
    assert_eq!(bad, 1);
}

#[test]
fn rsa_certificates_work_too() {
    let ca = TestCa::new(OVERLAY, KeyType::Rsa2048, Validity::from_now(86_400)).expect("ca");
    let (ia, ib) = (NodeId([0x11; 16]), NodeId([0x99; 16]));
    let a = ca
        .issue(&[ia], None, KeyType::Rsa2048, Validity::from_now(3600))
        .expect("a");
    let b = ca
        .issue(&[ib], None, KeyType::EcdsaP256, Validity::from_now(3600))
        .expect("b");
    let (answered, bad) = ping_between(node(a, &ca, ia), node(b, &ca, ib));
    assert!(answered);
    assert_eq!(bad, 0);
}
