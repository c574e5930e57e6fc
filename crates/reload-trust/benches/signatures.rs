//! Cost of RELOAD signatures (RFC 6940 §6.3.4): signing and verifying a ~500-byte
//! input with ECDSA P-256 and RSA-2048 (both SHA-256), and validating a node
//! certificate chain to the overlay root, uncached and through the cache.
//!
//! Run with `cargo bench -p reload-trust --bench signatures`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use reload_trust::{
    CertificateCache, Credentials, KeyType, NodeIdDigest, TestCa, TrustAnchors, Validity, verify_signature,
};
use reload_wire::NodeId;

const OVERLAY: &str = "overlay.example.org";
const NOW: i64 = 1_800_000_000;

fn validity() -> Validity {
    Validity::starting_at(NOW - 86_400, 365 * 86_400)
}

fn bench_signatures(c: &mut Criterion, name: &str, creds: &Credentials) {
    let node = creds.node_ids()[0];
    let input: Vec<u8> = (0..500u32).map(|i| (i * 31) as u8).collect();
    let signature = creds.sign(&input, &node).expect("signs");
    let info = creds.cert_info();
    let mut group = c.benchmark_group(name);
    group.bench_function("sign_500B", |b| {
        b.iter(|| creds.sign(black_box(&input), &node).expect("signs"))
    });
    group.bench_function("verify_500B", |b| {
        b.iter(|| verify_signature(black_box(&input), black_box(&signature), info).expect("verifies"))
    });
    group.finish();
}

fn signatures(c: &mut Criterion) {
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, validity()).expect("CA");
    let ecdsa = ca
        .issue(
            &[NodeId([1; 16])],
            Some("alice@example.org"),
            KeyType::EcdsaP256,
            validity(),
        )
        .expect("ECDSA node");
    let rsa = ca
        .issue(
            &[NodeId([2; 16])],
            Some("bob@example.org"),
            KeyType::Rsa2048,
            validity(),
        )
        .expect("RSA node");
    bench_signatures(c, "ecdsa_p256_sha256", &ecdsa);
    bench_signatures(c, "rsa2048_sha256", &rsa);

    let mut group = c.benchmark_group("certificate");
    // ECDSA root → ECDSA intermediate → node, and RSA root → node.
    let mid = ca.intermediate(KeyType::EcdsaP256, validity()).expect("intermediate");
    let via_mid = mid
        .issue(&[NodeId([3; 16])], None, KeyType::EcdsaP256, validity())
        .expect("node");
    let anchors = ca.trust_anchors().expect("anchors");
    group.bench_function("verify_chain_ecdsa_root_to_node", |b| {
        b.iter(|| anchors.verify(black_box(ecdsa.chain()), NOW).expect("valid"))
    });
    group.bench_function("verify_chain_ecdsa_root_intermediate_node", |b| {
        b.iter(|| anchors.verify(black_box(via_mid.chain()), NOW).expect("valid"))
    });
    let rsa_ca = TestCa::new(OVERLAY, KeyType::Rsa2048, validity()).expect("RSA CA");
    let rsa_node = rsa_ca
        .issue(&[NodeId([4; 16])], None, KeyType::EcdsaP256, validity())
        .expect("node");
    let rsa_anchors = rsa_ca.trust_anchors().expect("anchors");
    group.bench_function("verify_chain_rsa_root_to_node", |b| {
        b.iter(|| rsa_anchors.verify(black_box(rsa_node.chain()), NOW).expect("valid"))
    });
    let self_signed = Credentials::self_signed(
        reload_trust::SelfSignedNodeIds::Derived {
            count: 1,
            digest: NodeIdDigest::Sha1,
        },
        OVERLAY,
        None,
        KeyType::EcdsaP256,
        validity(),
    )
    .expect("self-signed");
    let permitted = TrustAnchors::self_signed_only(NodeIdDigest::Sha1);
    group.bench_function("verify_self_signed_ecdsa", |b| {
        b.iter(|| permitted.verify(black_box(self_signed.chain()), NOW).expect("valid"))
    });
    // What a node pays per message once the signer's certificate is known.
    let mut cache = CertificateCache::default();
    let identity = ecdsa.signer_identity(&NodeId([1; 16]));
    let block = ecdsa.certificates();
    group.bench_function("resolve_cached", |b| {
        b.iter(|| {
            cache
                .resolve(black_box(&identity), &block, &anchors, NOW)
                .map(|(_, n)| n)
                .expect("resolves")
        })
    });
    group.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
