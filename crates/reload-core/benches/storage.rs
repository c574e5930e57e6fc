//! Cost of a Store at the responsible peer (parse, verify the message and value
//! signatures, check the access policy, store, and sign two replica Stores) and of
//! a Fetch, with ECDSA P-256 and RSA-2048 certificates.
//!
//! Run with `cargo bench -p reload-core --bench storage`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use reload_core::crypto::signed_message;
use reload_core::{CertificateCrypto, LinkId, Node, NodeConfig, Time, ring};
use reload_trust::{Credentials, KeyType, TestCa, Validity, unix_now};
use reload_wire::*;

const OVERLAY: &str = "bench.example.org";

fn now() -> Time {
    Time(u64::try_from(unix_now()).unwrap_or(0) * 1_000_000)
}

fn crypto(ca: &TestCa, creds: Credentials, id: NodeId) -> CertificateCrypto {
    CertificateCrypto::new(creds, id, ca.trust_anchors().expect("anchors")).expect("crypto")
}

/// A joined peer responsible for everything but its two successors' ranges, with
/// links to a storing client and to two successors (so every Store is replicated).
fn responsible_peer(ca: &TestCa, key: KeyType) -> Node {
    let me = NodeId([0x80; 16]);
    let creds = ca.issue(&[me], None, key, Validity::from_now(86_400)).expect("peer");
    let mut node = Node::new(
        NodeConfig::new(OverlayHash::from_overlay_name(OVERLAY), me),
        Box::new(crypto(ca, creds, me)),
        1,
    );
    let t = now();
    node.start(t, Vec::new(), true);
    for (link, id) in [(2u64, NodeId([0x90; 16])), (3, NodeId([0xa0; 16]))] {
        node.handle_link_up(t, LinkId(link), id, false);
        // The successor announces itself as a peer (§10.7 peer_ready).
        let creds = ca
            .issue(&[id], None, KeyType::EcdsaP256, Validity::from_now(86_400))
            .expect("succ");
        let c = crypto(ca, creds, id);
        let header = ForwardingHeader::new(
            OverlayHash::from_overlay_name(OVERLAY),
            TransactionId(link),
            vec![Destination::node(me)],
        );
        let body = MessageBody::UpdateReq(ChordUpdate {
            uptime: 1,
            data: ChordUpdateData::PeerReady,
        });
        let bytes = signed_message(&c, header, body, 5000).expect("update");
        node.handle_message(t, LinkId(link), &bytes);
    }
    node.handle_link_up(t, LinkId(1), NodeId([0x11; 16]), false);
    while node.poll_transmit().is_some() || node.poll_event().is_some() || node.poll_action().is_some() {}
    node
}

fn bench_key(c: &mut Criterion, name: &str, key: KeyType) {
    let ca = TestCa::new(OVERLAY, key, Validity::from_now(86_400)).expect("ca");
    let client = NodeId([0x11; 16]);
    let client_creds = ca
        .issue(&[client], None, key, Validity::from_now(86_400))
        .expect("client");
    let client_der = client_creds.certificate_der().to_vec();
    let client_crypto = crypto(&ca, client_creds, client);
    let resource = ring::hash_resource_name(&client.0);
    let kind = KindId::CERTIFICATE_BY_NODE;
    let mut node = responsible_peer(&ca, key);
    let mut time = 1u64;
    let mut txid = 100u64;
    let store_message = |time: u64, txid: u64| {
        let data = StoredData {
            storage_time: time,
            lifetime: 3600,
            value: StoredDataValue::Array {
                index: 0,
                value: DataValue::new(client_der.clone()),
            },
            signature: Signature::synthesized(),
        };
        let data = reload_core::crypto::sign_stored_data(&client_crypto, &resource, kind, data).expect("signs");
        let header = ForwardingHeader::new(
            OverlayHash::from_overlay_name(OVERLAY),
            TransactionId(txid),
            vec![Destination::resource(resource.clone())],
        );
        let body = MessageBody::StoreReq(StoreReq {
            resource: resource.clone(),
            replica_number: 0,
            kind_data: vec![StoreKindData {
                kind,
                generation_counter: 0,
                values: vec![data],
            }],
        });
        signed_message(&client_crypto, header, body, 5000).expect("store")
    };
    // One store first, so the Fetch has something to return.
    let first = store_message(time, txid);
    node.handle_message(now(), LinkId(1), &first);
    let mut answered = false;
    while let Some(tx) = node.poll_transmit() {
        let m = Message::decode(&tx.bytes, &WireConfig::default()).expect("decodes");
        answered |= matches!(m.contents.body, MessageBody::StoreAns(_));
    }
    assert!(answered, "the first store was refused");
    let t = now();
    c.bench_function(&format!("{name}/store_at_responsible_peer"), |b| {
        b.iter_batched(
            || {
                time += 1;
                txid += 1;
                store_message(time, txid)
            },
            |bytes| {
                node.handle_message(t, LinkId(1), black_box(&bytes));
                // The StoreAns and the two replica Stores.
                let mut sent = 0;
                while node.poll_transmit().is_some() {
                    sent += 1;
                }
                assert_eq!(sent, 3);
            },
            BatchSize::SmallInput,
        )
    });
    let fetch = {
        let header = ForwardingHeader::new(
            OverlayHash::from_overlay_name(OVERLAY),
            TransactionId(7),
            vec![Destination::resource(resource.clone())],
        );
        let body = MessageBody::FetchReq(FetchReq {
            resource: resource.clone(),
            specifiers: vec![StoredDataSpecifier {
                kind,
                generation: 0,
                model_specifier: ModelSpecifier::Array(vec![ArrayRange {
                    first: 0,
                    last: 0xffff_ffff,
                }]),
            }],
        });
        signed_message(&client_crypto, header, body, 5000).expect("fetch")
    };
    c.bench_function(&format!("{name}/fetch_at_responsible_peer"), |b| {
        b.iter(|| {
            node.handle_message(t, LinkId(1), black_box(&fetch));
            node.poll_transmit().expect("a FetchAns")
        })
    });
}

fn storage(c: &mut Criterion) {
    bench_key(c, "ecdsa_p256", KeyType::EcdsaP256);
    bench_key(c, "rsa_2048", KeyType::Rsa2048);
}

criterion_group!(benches, storage);
criterion_main!(benches);
