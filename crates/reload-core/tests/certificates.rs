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

/// Runs one request from `a` (not started: it sends everything over its one link,
/// `link` at both ends) to `b` (the first peer, responsible for everything) and
/// returns what it came to.
fn exchange(
    a: &mut Node,
    b: &mut Node,
    link: LinkId,
    body: MessageBody,
    to: Destination,
) -> Option<Result<reload_core::Answer, reload_core::Failure>> {
    let t = now();
    let req = a.request(t, to, body);
    while let Some(tx) = a.poll_transmit() {
        b.handle_message(t, link, &tx.bytes);
    }
    while let Some(tx) = b.poll_transmit() {
        a.handle_message(t, link, &tx.bytes);
    }
    answer_to(a, req)
}

/// What `a`'s request `req` came to, from the events `a` has queued.
fn answer_to(a: &mut Node, req: reload_core::RequestId) -> Option<Result<reload_core::Answer, reload_core::Failure>> {
    let mut out = None;
    while let Some(e) = a.poll_event() {
        if let Event::Response { request, result } = e {
            if request == req {
                out = Some(result);
            }
        }
    }
    out
}

/// [`exchange`] over link 1, with the answer's body (an error as its body).
fn ask(a: &mut Node, b: &mut Node, body: MessageBody, to: Destination) -> Option<MessageBody> {
    exchange(a, b, LinkId(1), body, to).map(|result| match result {
        Ok(answer) => answer.body,
        Err(reload_core::Failure::Error { error, .. }) => MessageBody::Error(error),
        Err(other) => panic!("request failed: {other:?}"),
    })
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
    let fetch_all = || {
        MessageBody::FetchReq(FetchReq {
            resource: own.clone(),
            specifiers: vec![StoredDataSpecifier {
                kind,
                generation: 0,
                model_specifier: ModelSpecifier::Array(vec![ArrayRange {
                    first: 0,
                    last: 0xffff_ffff,
                }]),
            }],
        })
    };
    match ask(&mut a, &mut b, fetch_all(), Destination::resource(own.clone())) {
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

    // Carol has never seen alice's certificate: b's answer carries it (§6.3.4), so
    // her node verifies alice's value and keeps it.
    let ic = NodeId([0x33; 16]);
    let c_creds = ca
        .issue(&[ic], None, KeyType::EcdsaP256, Validity::from_now(3600))
        .expect("c");
    // Another RNG seed than a's: the same transaction id would be taken for a's
    // retransmission and answered from b's answer cache (§6.2.1).
    let crypto = CertificateCrypto::new(c_creds, ic, ca.trust_anchors().expect("anchors")).expect("crypto");
    let mut c: Node = Node::new(
        NodeConfig::new(OverlayHash::from_overlay_name(OVERLAY), ic),
        Box::new(crypto),
        8,
    );
    c.handle_link_up(t, LinkId(2), ib, true);
    b.handle_link_up(t, LinkId(2), ic, false);
    while b.poll_transmit().is_some() || b.poll_event().is_some() || b.poll_action().is_some() {}
    let checked = exchange(
        &mut c,
        &mut b,
        LinkId(2),
        fetch_all(),
        Destination::resource(own.clone()),
    )
    .expect("answered")
    .expect("an answer");
    assert_eq!(checked.rejected_values, 0, "alice's certificate came with the answer");
    assert!(matches!(&checked.body, MessageBody::FetchAns(ans) if ans.kind_responses[0].values.len() == 1));
}

/// A malicious peer answers alice's Fetch with her genuine value, a copy whose bytes
/// it changed, and a value it signed itself at her Resource-ID. The fetcher keeps
/// only the genuine one (RFC 6940 §7.4.2, §7.3: the fetcher checks each value's
/// signature and the Kind's policy itself; it trusts no storing peer).
#[test]
fn a_fetcher_drops_forged_values_from_a_malicious_peer() {
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(86_400)).expect("ca");
    let (ia, im, ic) = (NodeId([0x11; 16]), NodeId([0x66; 16]), NodeId([0x33; 16]));
    let issue = |id: NodeId| {
        ca.issue(&[id], None, KeyType::EcdsaP256, Validity::from_now(3600))
            .expect("issued")
    };
    let (alice, mallory, carol) = (issue(ia), issue(im), issue(ic));
    let kind = KindId::CERTIFICATE_BY_NODE;
    let resource = reload_core::ring::hash_resource_name(&ia.0);
    let value = |index, bytes: &[u8]| StoredData {
        storage_time: 1_000,
        lifetime: 600,
        value: StoredDataValue::Array {
            index,
            value: DataValue::new(bytes.to_vec()),
        },
        signature: Signature::synthesized(),
    };
    let genuine = alice
        .sign_stored_data(&resource, kind, value(0, b"alice's"), &ia)
        .expect("signs");
    let mut tampered = alice
        .sign_stored_data(&resource, kind, value(1, b"alice's too"), &ia)
        .expect("signs");
    if let StoredDataValue::Array { value, .. } = &mut tampered.value {
        value.value = b"mallory's".to_vec();
    }
    // Validly signed, but NODE-MATCH (§8) lets only alice write at H(alice).
    let usurped = mallory
        .sign_stored_data(&resource, kind, value(2, b"mallory's"), &im)
        .expect("signs");
    let alice_cert = GenericCertificate::x509(alice.certificate_der().to_vec());

    // Carol fetches over her one link, which leads to mallory.
    let mut carol_node = node(carol, &ca, ic);
    let t = now();
    carol_node.handle_link_up(t, LinkId(1), im, true);
    while carol_node.poll_transmit().is_some() || carol_node.poll_event().is_some() {}
    let fetch = MessageBody::FetchReq(FetchReq {
        resource: resource.clone(),
        specifiers: vec![StoredDataSpecifier {
            kind,
            generation: 0,
            model_specifier: ModelSpecifier::Array(vec![ArrayRange { first: 0, last: 2 }]),
        }],
    });
    let request = carol_node.request(t, Destination::resource(resource.clone()), fetch);
    let sent = carol_node.poll_transmit().expect("the Fetch goes out");
    let asked = Message::decode(&sent.bytes, &WireConfig::default()).expect("decodes");

    let mallory_crypto = CertificateCrypto::new(mallory, im, ca.trust_anchors().expect("anchors")).expect("crypto");
    let mut header = ForwardingHeader::new(
        OverlayHash::from_overlay_name(OVERLAY),
        asked.header.transaction_id,
        vec![Destination::node(ic)],
    );
    header.configuration_sequence = asked.header.configuration_sequence;
    let answer = MessageBody::FetchAns(FetchAns {
        kind_responses: vec![FetchKindResponse {
            kind,
            generation: 3,
            values: vec![genuine.clone(), tampered, usurped],
        }],
    });
    let bytes = reload_core::crypto::signed_message_with(&mallory_crypto, header, answer, vec![alice_cert], 5000)
        .expect("encodes");
    carol_node.handle_message(t, LinkId(1), &bytes);
    let got = answer_to(&mut carol_node, request)
        .expect("the answer arrived")
        .expect("an answer");
    assert_eq!(got.responder, im);
    assert_eq!(got.rejected_values, 2, "the tampered and the usurped value");
    match got.body {
        MessageBody::FetchAns(ans) => assert_eq!(ans.kind_responses[0].values, vec![genuine]),
        other => panic!("expected a FetchAns, got {other:?}"),
    }
    assert_eq!(carol_node.stats().fetched_values_rejected, 2);
}

/// A peer that restarts from its persisted records knows nothing of the signers
/// (its certificate cache is empty), yet serves their values with their
/// certificates, so a fetcher that never met them verifies every value.
#[test]
fn a_restarted_peer_serves_values_with_their_signers_certificates() {
    use reload_core::storage::{MemoryBackend, StorageBackend};
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(86_400)).expect("ca");
    let (ia, ib, ic) = (NodeId([0x11; 16]), NodeId([0x99; 16]), NodeId([0x33; 16]));
    let issue = |id: NodeId| {
        ca.issue(&[id], None, KeyType::EcdsaP256, Validity::from_now(3600))
            .expect("issued")
    };
    let peer = |id: NodeId, seed: u64| {
        let crypto = CertificateCrypto::new(issue(id), id, ca.trust_anchors().expect("anchors")).expect("crypto");
        let mut cfg = NodeConfig::new(OverlayHash::from_overlay_name(OVERLAY), id);
        cfg.persist_storage = true;
        Node::new(cfg, Box::new(crypto), seed)
    };
    let alice = issue(ia);
    let kind = KindId::CERTIFICATE_BY_NODE;
    let resource = reload_core::ring::hash_resource_name(&ia.0);
    let value = alice
        .sign_stored_data(
            &resource,
            kind,
            StoredData {
                storage_time: 1_000,
                lifetime: 600,
                value: StoredDataValue::Array {
                    index: 0,
                    value: DataValue::new(b"alice's".to_vec()),
                },
                signature: Signature::synthesized(),
            },
            &ia,
        )
        .expect("signs");
    let t = now();
    let mut disk = MemoryBackend::new();
    {
        let mut a = node(alice, &ca, ia);
        let mut b = peer(ib, 1);
        b.start(t, Vec::new(), true);
        a.handle_link_up(t, LinkId(1), ib, true);
        b.handle_link_up(t, LinkId(1), ia, false);
        while b.poll_transmit().is_some() || b.poll_event().is_some() || b.poll_action().is_some() {}
        let store = MessageBody::StoreReq(StoreReq {
            resource: resource.clone(),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind,
                generation_counter: 0,
                values: vec![value.clone()],
            }],
        });
        let answer = ask(&mut a, &mut b, store, Destination::resource(resource.clone()));
        assert!(matches!(answer, Some(MessageBody::StoreAns(_))), "{answer:?}");
        disk.apply(&b.take_storage_changes()).expect("memory");
    }
    assert_eq!(disk.len(), 1);

    let mut b = peer(ib, 2);
    let summary = b.restore_storage(t, disk.load().expect("memory"));
    assert_eq!((summary.resources, summary.values), (1, 1));
    b.start(t, Vec::new(), true);
    let mut c = peer(ic, 3);
    c.handle_link_up(t, LinkId(1), ib, true);
    b.handle_link_up(t, LinkId(1), ic, false);
    while b.poll_transmit().is_some() || b.poll_event().is_some() || b.poll_action().is_some() {}
    let fetch = MessageBody::FetchReq(FetchReq {
        resource: resource.clone(),
        specifiers: vec![StoredDataSpecifier {
            kind,
            generation: 0,
            model_specifier: ModelSpecifier::Array(vec![ArrayRange { first: 0, last: 0 }]),
        }],
    });
    let got = exchange(
        &mut c,
        &mut b,
        LinkId(1),
        fetch,
        Destination::resource(resource.clone()),
    )
    .expect("answered")
    .expect("an answer");
    assert_eq!(got.rejected_values, 0);
    match got.body {
        MessageBody::FetchAns(ans) => assert_eq!(ans.kind_responses[0].values, vec![value]),
        other => panic!("expected a FetchAns, got {other:?}"),
    }
}
