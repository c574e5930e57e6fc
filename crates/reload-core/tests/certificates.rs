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

/// Runs one request from `a` (not started: it sends everything over its one link)
/// to `b` (the first peer, responsible for everything) and returns the answer body.
fn ask(a: &mut Node, b: &mut Node, body: MessageBody, to: Destination) -> Option<MessageBody> {
    let t = now();
    let req = a.request(t, to, body);
    while let Some(tx) = a.poll_transmit() {
        b.handle_message(t, LinkId(1), &tx.bytes);
    }
    while let Some(tx) = b.poll_transmit() {
        a.handle_message(t, LinkId(1), &tx.bytes);
    }
    let mut out = None;
    while let Some(e) = a.poll_event() {
        if let Event::Response { request, result } = e {
            if request == req {
                out = Some(match result {
                    Ok(answer) => answer.body,
                    Err(reload_core::Failure::Error { error, .. }) => MessageBody::Error(error),
                    Err(other) => panic!("request failed: {other:?}"),
                });
            }
        }
    }
    out
}

fn error_code(body: &Option<MessageBody>) -> Option<ErrorCode> {
    match body {
        Some(MessageBody::Error(e)) => Some(e.error_code),
        _ => None,
    }
}

#[test]
fn stores_are_checked_against_signatures_and_policies() {
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(86_400)).expect("ca");
    let (ia, ib) = (NodeId([0x11; 16]), NodeId([0x99; 16]));
    let a_creds = ca
        .issue(
            &[ia],
            Some("alice@example.org"),
            KeyType::EcdsaP256,
            Validity::from_now(3600),
        )
        .expect("a");
    let b_creds = ca
        .issue(&[ib], None, KeyType::EcdsaP256, Validity::from_now(3600))
        .expect("b");
    // CERTIFICATE_BY_NODE is NODE-MATCH (§8): alice's certificate at H(her Node-ID).
    let kind = KindId::CERTIFICATE_BY_NODE;
    let cert_der = a_creds.certificate_der().to_vec();
    let value = |index| StoredData {
        storage_time: 1_000,
        lifetime: 600,
        value: StoredDataValue::Array {
            index,
            value: DataValue::new(cert_der.clone()),
        },
        signature: Signature::synthesized(),
    };
    let own = reload_core::ring::hash_resource_name(&ia.0);
    let other = reload_core::ring::hash_resource_name(&[0x22; 16]);
    let signed = a_creds
        .sign_stored_data(&own, kind, value(reload_wire::storage::ARRAY_APPEND), &ia)
        .expect("signs");
    let misplaced = a_creds.sign_stored_data(&other, kind, value(0), &ia).expect("signs");
    let (mut a, mut b) = (node(a_creds, &ca, ia), node(b_creds, &ca, ib));
    let t = now();
    b.start(t, Vec::new(), true);
    a.handle_link_up(t, LinkId(1), ib, true);
    b.handle_link_up(t, LinkId(1), ia, false);
    while b.poll_transmit().is_some() || b.poll_event().is_some() || b.poll_action().is_some() {}

    let store = |resource: &ResourceId, data: StoredData| {
        MessageBody::StoreReq(StoreReq {
            resource: resource.clone(),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind,
                generation_counter: 0,
                values: vec![data],
            }],
        })
    };
    let answer = ask(
        &mut a,
        &mut b,
        store(&own, signed.clone()),
        Destination::resource(own.clone()),
    );
    match answer {
        Some(MessageBody::StoreAns(ans)) => assert_eq!(ans.kind_responses[0].generation_counter, 1),
        other => panic!("expected a StoreAns, got {other:?}"),
    }

    // The same kind of value, claimed for another node's Resource-ID: the policy refuses it.
    let answer = ask(
        &mut a,
        &mut b,
        store(&other, misplaced),
        Destination::resource(other.clone()),
    );
    assert_eq!(error_code(&answer), Some(ErrorCode::FORBIDDEN));

    // A value whose bytes were changed after signing: the signature fails.
    let mut forged = signed.clone();
    forged.storage_time += 1;
    let answer = ask(&mut a, &mut b, store(&own, forged), Destination::resource(own.clone()));
    assert_eq!(error_code(&answer), Some(ErrorCode::FORBIDDEN));

    // An unsigned value is refused too.
    let answer = ask(
        &mut a,
        &mut b,
        store(&own, value(0)),
        Destination::resource(own.clone()),
    );
    assert_eq!(error_code(&answer), Some(ErrorCode::FORBIDDEN));

    // Only the first store took: a Fetch returns exactly it, at index 0.
    let fetch = MessageBody::FetchReq(FetchReq {
        resource: own.clone(),
        specifiers: vec![StoredDataSpecifier {
            kind,
            generation: 0,
            model_specifier: ModelSpecifier::Array(vec![ArrayRange {
                first: 0,
                last: 0xffff_ffff,
            }]),
        }],
    });
    match ask(&mut a, &mut b, fetch, Destination::resource(own.clone())) {
        Some(MessageBody::FetchAns(ans)) => {
            let values = &ans.kind_responses[0].values;
            assert_eq!(values.len(), 1);
            assert_eq!(values[0].value.data_value().value, cert_der);
            assert_eq!(ans.kind_responses[0].generation, 1);
            // The fetcher can check the value itself (§7.4.2.2).
            let info = reload_trust::CertInfo::parse(&cert_der).expect("cert");
            assert_eq!(
                reload_trust::verify_stored_data(&own, kind, &values[0], &info)
                    .ok()
                    .flatten(),
                Some(ia)
            );
        }
        other => panic!("expected a FetchAns, got {other:?}"),
    }
    assert_eq!(b.data_store().resource_count(), 1);
}
