//! Tests of the whole crate: chains, signatures, the cache, stored data, self-signed
//! mode. The unwraps are on values the tests made themselves.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use rcgen::ExtendedKeyUsagePurpose;
use reload_wire::samples::{ALICE, ALICE_CERT_DER, OVERLAY_NAME};
use reload_wire::{
    DataValue, GenericCertificate, HashAlgorithm, KindId, NodeId, OverlayHash, ResourceId, Signature,
    SignatureAndHashAlgorithm, SignerIdentity, StoredData, StoredDataValue, TransactionId,
};

use crate::credentials::node_params;
use crate::*;

const OVERLAY: &str = "overlay.example.org";
/// 2027-01-15, a fixed "now" for every test.
const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn year() -> Validity {
    Validity::starting_at(NOW - DAY, 365 * DAY)
}

fn node(b: u8) -> NodeId {
    NodeId([b; 16])
}

/// RSA keys are slow to make: two per test binary, shared.
fn rsa_key(i: usize) -> PrivateKey {
    static KEYS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    let keys =
        KEYS.get_or_init(|| [0, 1].map(|_| PrivateKey::generate(KeyType::Rsa2048).unwrap().pkcs8_der().to_vec()));
    PrivateKey::from_pkcs8_der(&keys[i]).unwrap()
}

fn ecdsa_ca() -> TestCa {
    TestCa::new(OVERLAY, KeyType::EcdsaP256, year()).unwrap()
}

fn alice(ca: &TestCa) -> Credentials {
    ca.issue(&[node(1)], Some("alice@example.org"), KeyType::EcdsaP256, year())
        .unwrap()
}

// ---- chains -----------------------------------------------------------------

#[test]
fn a_chain_to_the_root_is_accepted_and_read() {
    let ca = ecdsa_ca();
    let creds = alice(&ca);
    let info = ca.trust_anchors().unwrap().verify(creds.chain(), NOW).unwrap();
    assert_eq!(info.node_ids, vec![node(1)]);
    assert_eq!(info.user.as_deref(), Some("alice@example.org"));
    assert_eq!(info.overlays, vec![OVERLAY.to_owned()]);
    assert_eq!((info.not_before, info.not_after), (NOW - DAY, NOW + 364 * DAY));
    assert!(!info.self_signed);
    assert_eq!(info.public_key.algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(&info, creds.cert_info());
}

#[test]
fn a_chain_through_an_intermediate_is_accepted_only_with_the_intermediate() {
    let root = ecdsa_ca();
    let mid = root.intermediate(KeyType::EcdsaP256, year()).unwrap();
    let creds = alice(&mid);
    assert_eq!(creds.chain().len(), 2);
    let anchors = root.trust_anchors().unwrap();
    assert_eq!(anchors.verify(creds.chain(), NOW).unwrap().node_ids, vec![node(1)]);
    assert_eq!(anchors.verify(&creds.chain()[..1], NOW), Err(TrustError::UnknownIssuer));
}

#[test]
fn rsa_roots_and_rsa_nodes_are_accepted() {
    let ca = TestCa::with_key(OVERLAY, rsa_key(0), year()).unwrap();
    let creds = ca.issue_with_key(rsa_key(1), &[node(2)], None, year()).unwrap();
    let info = ca.trust_anchors().unwrap().verify(creds.chain(), NOW).unwrap();
    assert_eq!(info.public_key.algorithm, KeyAlgorithm::Rsa { bits: 2048 });
    assert_eq!(info.user, None);
}

#[test]
fn a_certificate_from_another_root_is_refused() {
    let creds = alice(&ecdsa_ca());
    let other = ecdsa_ca().trust_anchors().unwrap();
    assert_eq!(other.verify(creds.chain(), NOW), Err(TrustError::UnknownIssuer));
    // Nor does permitting self-signed certificates let a CA-issued one through.
    let lax = other.permit_self_signed(NodeIdDigest::Sha1);
    assert_eq!(lax.verify(creds.chain(), NOW), Err(TrustError::UnknownIssuer));
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let ca = ecdsa_ca();
    let anchors = ca.trust_anchors().unwrap();
    let old = ca
        .issue(
            &[node(1)],
            None,
            KeyType::EcdsaP256,
            Validity::new(NOW - 10 * DAY, NOW - DAY),
        )
        .unwrap();
    assert_eq!(
        anchors.verify(old.chain(), NOW),
        Err(TrustError::Expired {
            not_after: NOW - DAY,
            now: NOW
        })
    );
    let early = ca
        .issue(
            &[node(1)],
            None,
            KeyType::EcdsaP256,
            Validity::new(NOW + DAY, NOW + 10 * DAY),
        )
        .unwrap();
    assert_eq!(
        anchors.verify(early.chain(), NOW),
        Err(TrustError::NotYetValid {
            not_before: NOW + DAY,
            now: NOW
        })
    );
    // The same certificates are fine at a time inside their validity.
    assert!(anchors.verify(old.chain(), NOW - 5 * DAY).is_ok());
    assert!(anchors.verify(early.chain(), NOW + 5 * DAY).is_ok());
}

#[test]
fn an_expired_intermediate_breaks_the_chain() {
    let root = ecdsa_ca();
    let mid = root
        .intermediate(KeyType::EcdsaP256, Validity::new(NOW - 10 * DAY, NOW - DAY))
        .unwrap();
    let creds = alice(&mid);
    assert!(root.trust_anchors().unwrap().verify(creds.chain(), NOW).is_err());
}

#[test]
fn a_tampered_certificate_is_refused() {
    let ca = ecdsa_ca();
    let anchors = ca.trust_anchors().unwrap();
    let der = alice(&ca).certificate_der().to_vec();

    // Another Node-ID in the subjectAltName: still well-formed, no longer signed.
    let uri = reload_uri(&node(1), OVERLAY);
    let at = der.windows(uri.len()).position(|w| w == uri.as_bytes()).unwrap();
    let mut forged = der.clone();
    forged[at + uri.len() - OVERLAY.len() - 3] = b'2'; // last hex digit of the Node-ID
    let info = CertInfo::parse(&forged).unwrap();
    let mut changed = [0x01; 16];
    changed[15] = 0x02;
    assert_eq!(info.node_ids, vec![NodeId(changed)]);
    assert_eq!(anchors.verify(&[forged], NOW), Err(TrustError::BadSignature));

    // Truncated: malformed.
    assert!(matches!(
        anchors.verify(&[der[..der.len() - 1].to_vec()], NOW),
        Err(TrustError::Malformed(_))
    ));

    // Every single-bit change anywhere is refused, and nothing panics.
    for i in 0..der.len() {
        for bit in [0x01, 0x80] {
            let mut bad = der.clone();
            bad[i] ^= bit;
            assert!(anchors.verify(&[bad], NOW).is_err(), "byte {i} bit {bit:#x} accepted");
        }
    }
}

#[test]
fn garbage_is_malformed_not_a_panic() {
    let anchors = ecdsa_ca().trust_anchors().unwrap();
    for bytes in [&[][..], &[0x30], &[0x30, 0x82, 0xff, 0xff], &[0u8; 64]] {
        assert!(matches!(CertInfo::parse(bytes), Err(TrustError::Malformed(_))));
        assert!(anchors.verify(&[bytes.to_vec()], NOW).is_err());
    }
    assert_eq!(anchors.verify(&[], NOW), Err(TrustError::EmptyChain));
    assert!(TrustAnchors::new(vec![vec![1, 2, 3]]).is_err());
    assert!(PrivateKey::from_pkcs8_der(&[0x30, 0x00]).is_err());
}

#[test]
fn a_certificate_without_a_node_id_is_refused() {
    let ca = ecdsa_ca();
    let creds = ca
        .issue(&[], Some("alice@example.org"), KeyType::EcdsaP256, year())
        .unwrap();
    assert_eq!(
        ca.trust_anchors().unwrap().verify(creds.chain(), NOW),
        Err(TrustError::NoNodeId)
    );
}

#[test]
fn a_certificate_for_another_overlay_is_refused() {
    let ca = TestCa::new("other.example.net", KeyType::EcdsaP256, year()).unwrap();
    let creds = alice(&ca);
    let anchors = TrustAnchors::new(vec![ca.root_der().to_vec()]).unwrap();
    assert!(anchors.verify(creds.chain(), NOW).is_ok());
    assert_eq!(
        anchors.for_overlay(OVERLAY).verify(creds.chain(), NOW),
        Err(TrustError::WrongOverlay {
            expected: OVERLAY.into(),
            found: "other.example.net".into()
        })
    );
}

#[test]
fn extended_key_usage_must_allow_tls() {
    let ca = ecdsa_ca();
    let anchors = ca.trust_anchors().unwrap();
    let mut params = node_params(&[node(1)], OVERLAY, None, year()).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let creds = ca
        .issue_with_params(PrivateKey::generate(KeyType::EcdsaP256).unwrap(), params.clone())
        .unwrap();
    assert_eq!(anchors.verify(creds.chain(), NOW), Err(TrustError::KeyUsage));
    for ekus in [
        vec![],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        vec![ExtendedKeyUsagePurpose::ServerAuth],
        vec![ExtendedKeyUsagePurpose::Any],
    ] {
        params.extended_key_usages = ekus;
        let creds = ca
            .issue_with_params(PrivateKey::generate(KeyType::EcdsaP256).unwrap(), params.clone())
            .unwrap();
        assert!(anchors.verify(creds.chain(), NOW).is_ok());
    }
}

#[test]
fn the_sample_certificate_reads_as_alice() {
    let info = CertInfo::parse(ALICE_CERT_DER).unwrap();
    assert_eq!(info.node_ids, vec![ALICE]);
    assert_eq!(info.user.as_deref(), Some("alice@example.org"));
    assert_eq!(info.overlays, vec![OVERLAY_NAME.to_owned()]);
    assert!(info.self_signed);
}

// ---- credentials and CSRs ----------------------------------------------------

#[test]
fn a_certificate_is_issued_from_a_csr_with_the_servers_names() {
    let ca = ecdsa_ca();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let csr = key.certificate_request(Some("mallory@example.org")).unwrap();
    let der = ca
        .issue_from_csr(&csr, &[node(7), node(8)], Some("alice@example.org"), year())
        .unwrap();
    let creds = Credentials::new(key, ca.chain_for(der)).unwrap();
    let info = ca.trust_anchors().unwrap().verify(creds.chain(), NOW).unwrap();
    assert_eq!(info.node_ids, vec![node(7), node(8)]);
    assert_eq!(info.user.as_deref(), Some("alice@example.org"));

    let mut bad = csr.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        ca.issue_from_csr(&bad, &[node(7)], None, year()),
        Err(TrustError::Malformed(_))
    ));
}

#[test]
fn a_saved_root_issues_certificates_that_chain_to_it() {
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let pkcs8 = key.pkcs8_der().to_vec();
    let ca = TestCa::with_key(OVERLAY, key, year()).unwrap();
    let root = ca.root_der().to_vec();

    // Loaded again from what a CA tool saves: the key and the certificate.
    let loaded = TestCa::from_root(OVERLAY, PrivateKey::from_pkcs8_der(&pkcs8).unwrap(), root.clone()).unwrap();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let csr = key.certificate_request(None).unwrap();
    let der = loaded
        .issue_from_csr(&csr, &[node(3)], Some("bob@example.org"), year())
        .unwrap();
    let creds = Credentials::new(key, vec![der]).unwrap();
    let info = ca.trust_anchors().unwrap().verify(creds.chain(), NOW).unwrap();
    assert_eq!(info.node_ids, vec![node(3)]);

    // Another key with this certificate is refused; so is a certificate that is not a root.
    let other = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    assert_eq!(
        TestCa::from_root(OVERLAY, other, root).unwrap_err(),
        TrustError::KeyMismatch
    );
    let node_key = PrivateKey::from_pkcs8_der(creds.private_key().pkcs8_der()).unwrap();
    assert!(TestCa::from_root(OVERLAY, node_key, creds.certificate_der().to_vec()).is_err());
}

#[test]
fn a_tls_server_certificate_names_hosts_and_no_node() {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ca = ecdsa_ca();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    let der = ca
        .issue_tls_server(&key, &["localhost".to_owned()], &ips, year())
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let names = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .len();
    assert_eq!(names, 3);
    assert!(CertInfo::parse(&der).unwrap().node_ids.is_empty());
    // Not usable as a node certificate: it names no Node-ID.
    let anchors = ca.trust_anchors().unwrap();
    assert_eq!(anchors.verify(&[der], NOW).unwrap_err(), TrustError::NoNodeId);
    assert!(ca.issue_tls_server(&key, &[], &[], year()).is_err());
}

#[test]
fn credentials_refuse_a_key_that_is_not_the_certificates() {
    let creds = alice(&ecdsa_ca());
    let other = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    assert_eq!(
        Credentials::from_pkcs8_der(other.pkcs8_der(), creds.chain().to_vec()).unwrap_err(),
        TrustError::KeyMismatch
    );
    let same = Credentials::from_pkcs8_der(creds.private_key().pkcs8_der(), creds.chain().to_vec()).unwrap();
    assert_eq!(same.cert_info(), creds.cert_info());
    assert_eq!(Credentials::new(other, vec![]).unwrap_err(), TrustError::EmptyChain);
}

// ---- signatures ----------------------------------------------------------------

fn check_signatures(creds: &Credentials, algorithm: SignatureAndHashAlgorithm) {
    let n = creds.node_ids()[0];
    let input: Vec<u8> = (0..500u32).map(|i| (i * 7) as u8).collect();
    let sig = creds.sign(&input, &n).unwrap();
    assert_eq!(sig.algorithm, algorithm);
    let info = creds.cert_info();
    verify_signature(&input, &sig, info).unwrap();

    let mut changed = input.clone();
    changed[123] ^= 0x04;
    assert_eq!(verify_signature(&changed, &sig, info), Err(TrustError::BadSignature));
    let mut bent = sig.clone();
    let at = bent.signature_value.len() / 2;
    bent.signature_value[at] ^= 0x01;
    assert_eq!(verify_signature(&input, &bent, info), Err(TrustError::BadSignature));
    let mut short = sig.clone();
    short.signature_value.pop();
    assert_eq!(verify_signature(&input, &short, info), Err(TrustError::BadSignature));
}

#[test]
fn ecdsa_signatures_verify_and_one_bit_breaks_them() {
    check_signatures(&alice(&ecdsa_ca()), SignatureAndHashAlgorithm::ECDSA_SHA256);
}

#[test]
fn rsa_signatures_verify_and_one_bit_breaks_them() {
    let ca = ecdsa_ca();
    let creds = ca.issue_with_key(rsa_key(0), &[node(3)], None, year()).unwrap();
    check_signatures(&creds, SignatureAndHashAlgorithm::RSA_SHA256);
}

#[test]
fn a_signature_is_checked_against_the_certificate_it_names() {
    let ca = ecdsa_ca();
    let a = alice(&ca);
    let b = ca.issue(&[node(2)], None, KeyType::EcdsaP256, year()).unwrap();
    let sig = a.sign(b"hello", &node(1)).unwrap();
    assert_eq!(
        verify_signature(b"hello", &sig, b.cert_info()),
        Err(TrustError::SignerMismatch)
    );
    // An algorithm that does not fit the key.
    let mut rsa = sig.clone();
    rsa.algorithm = SignatureAndHashAlgorithm::RSA_SHA256;
    assert!(matches!(
        verify_signature(b"hello", &rsa, a.cert_info()),
        Err(TrustError::UnsupportedAlgorithm(_))
    ));
    // Signing as a Node-ID the certificate does not carry.
    assert_eq!(
        a.sign(b"hello", &node(9)),
        Err(TrustError::NodeIdNotInCertificate(node(9)))
    );
}

#[test]
fn anonymous_signatures_are_refused() {
    let creds = alice(&ecdsa_ca());
    let info = creds.cert_info();
    let real = creds.sign(b"x", &node(1)).unwrap();
    let mut none_identity = real.clone();
    none_identity.identity = SignerIdentity::None;
    let mut none_algorithm = real.clone();
    none_algorithm.algorithm = SignatureAndHashAlgorithm::NONE;
    for sig in [Signature::synthesized(), none_identity, none_algorithm] {
        assert_eq!(verify_signature(b"x", &sig, info), Err(TrustError::AnonymousSignature));
        let data = StoredData {
            storage_time: 1,
            lifetime: 60,
            value: StoredDataValue::Single {
                value: DataValue::new(b"x".to_vec()),
            },
            signature: sig,
        };
        assert_eq!(
            verify_stored_data(&ResourceId::from(node(5)), KindId(99), &data, info),
            Err(TrustError::AnonymousSignature)
        );
    }
    let mut cache = CertificateCache::default();
    let anchors = TrustAnchors::self_signed_only(NodeIdDigest::Sha1);
    assert_eq!(
        cache
            .resolve(&SignerIdentity::None, &creds.certificates(), &anchors, NOW)
            .unwrap_err(),
        TrustError::AnonymousSignature
    );
}

#[test]
fn message_signatures_round_trip() {
    let creds = alice(&ecdsa_ca());
    let overlay = OverlayHash::from_overlay_name(OVERLAY);
    let contents = b"some MessageContents bytes".to_vec();
    let sig = creds
        .sign_message(overlay, TransactionId(42), &contents, &node(1))
        .unwrap();
    let info = creds.cert_info();
    assert_eq!(
        verify_message(overlay, TransactionId(42), &contents, &sig, info),
        Ok(Some(node(1)))
    );
    assert_eq!(
        verify_message(overlay, TransactionId(43), &contents, &sig, info),
        Err(TrustError::BadSignature)
    );
    assert_eq!(
        verify_message(OverlayHash(overlay.0 ^ 1), TransactionId(42), &contents, &sig, info),
        Err(TrustError::BadSignature)
    );
}

// ---- identities and the cache ----------------------------------------------------

#[test]
fn cert_hash_round_trips_through_the_cache() {
    let creds = alice(&ecdsa_ca());
    let id = creds.signer_identity(&node(1));
    assert_eq!(
        id,
        SignerIdentity::CertHash {
            hash_alg: HashAlgorithm::SHA256,
            certificate_hash: cert_hash(creds.certificate_der()).to_vec()
        }
    );
    let mut cache = CertificateCache::new(8);
    assert_eq!(cache.find(&id), None);
    cache.insert_verified(creds.cert_info().clone());
    assert_eq!(cache.find(&id), Some(creds.cert_info()));
    assert_eq!(cache.find_signer(&id), Some((creds.cert_info(), Some(node(1)))));
    assert_eq!(signer_node_id(&id, creds.cert_info()), Some(node(1)));
}

#[test]
fn cert_hash_node_id_round_trips_through_the_cache() {
    let ca = ecdsa_ca();
    let creds = ca
        .issue(&[node(1), node(2), node(3)], None, KeyType::EcdsaP256, year())
        .unwrap();
    let mut cache = CertificateCache::new(8);
    cache.insert_verified(creds.cert_info().clone());
    for n in [node(1), node(2), node(3)] {
        let id = creds.signer_identity(&n);
        let SignerIdentity::CertHashNodeId {
            certificate_node_id_hash: h,
            ..
        } = &id
        else {
            panic!("{id:?}");
        };
        assert_eq!(h.as_slice(), cert_hash_node_id(&n, creds.certificate_der()));
        assert_eq!(cache.find_signer(&id), Some((creds.cert_info(), Some(n))));
        assert_eq!(signer_node_id(&id, creds.cert_info()), Some(n));
    }
    // Signed as node 2, verified as node 2.
    let sig = creds.sign(b"m", &node(2)).unwrap();
    verify_signature(b"m", &sig, creds.cert_info()).unwrap();
    assert_eq!(signer_node_id(&sig.identity, creds.cert_info()), Some(node(2)));
    // A cert_hash identity on a several-Node-ID certificate names the certificate
    // but no Node-ID.
    let plain = SignerIdentity::CertHash {
        hash_alg: HashAlgorithm::SHA256,
        certificate_hash: creds.cert_info().cert_hash().to_vec(),
    };
    assert_eq!(cache.find_signer(&plain), Some((creds.cert_info(), None)));
    assert_eq!(signer_node_id(&plain, creds.cert_info()), None);
}

#[test]
fn the_cache_stays_within_its_bound() {
    let ca = ecdsa_ca();
    let all: Vec<Credentials> = (0..6)
        .map(|i| {
            ca.issue(&[node(i), node(100 + i)], None, KeyType::EcdsaP256, year())
                .unwrap()
        })
        .collect();
    let mut cache = CertificateCache::new(3);
    for c in &all {
        cache.insert_verified(c.cert_info().clone());
        assert!(cache.len() <= 3);
    }
    assert_eq!(cache.len(), 3);
    for (i, c) in all.iter().enumerate() {
        let id = c.signer_identity(&node(i as u8));
        assert_eq!(cache.find(&id).is_some(), i >= 3, "certificate {i}");
    }
    // Re-inserting makes an entry the newest, so the next eviction spares it.
    cache.insert_verified(all[3].cert_info().clone());
    cache.insert_verified(all[0].cert_info().clone());
    assert!(cache.find(&all[3].signer_identity(&node(3))).is_some());
    assert!(cache.find(&all[4].signer_identity(&node(4))).is_none());
    assert_eq!(cache.len(), 3);
    assert_eq!(CertificateCache::new(0).capacity(), 1);
}

#[test]
fn resolve_verifies_a_security_blocks_certificate_once_and_caches_it() {
    let root = ecdsa_ca();
    let mid = root.intermediate(KeyType::EcdsaP256, year()).unwrap();
    let creds = alice(&mid);
    let anchors = root.trust_anchors().unwrap();
    let id = creds.signer_identity(&node(1));
    let mut cache = CertificateCache::default();

    // The block lists the intermediate first: resolve finds the signer's own.
    let mut block = creds.certificates();
    block.reverse();
    block.push(GenericCertificate {
        certificate_type: reload_wire::CertificateType::OPENPGP,
        certificate: vec![1, 2, 3],
    });
    let (info, n) = cache.resolve(&id, &block, &anchors, NOW).unwrap();
    assert_eq!((info, n), (creds.cert_info(), Some(node(1))));
    assert_eq!(cache.len(), 1);
    // Cached now: found without the block, and its validity is checked again.
    assert!(cache.resolve(&id, &[], &anchors, NOW).is_ok());
    assert!(matches!(
        cache.resolve(&id, &[], &anchors, NOW + 400 * DAY),
        Err(TrustError::Expired { .. })
    ));
    // Unknown signers and bad chains.
    let stranger = alice(&ecdsa_ca());
    assert_eq!(
        cache
            .resolve(&stranger.signer_identity(&node(1)), &block, &anchors, NOW)
            .unwrap_err(),
        TrustError::UnknownSigner
    );
    assert_eq!(
        cache
            .resolve(
                &stranger.signer_identity(&node(1)),
                &stranger.certificates(),
                &anchors,
                NOW
            )
            .unwrap_err(),
        TrustError::UnknownIssuer
    );
}

// ---- stored data -------------------------------------------------------------

fn sample_data(value: StoredDataValue) -> StoredData {
    StoredData {
        storage_time: 1_700_000_000_123,
        lifetime: 3600,
        value,
        signature: Signature::synthesized(),
    }
}

#[test]
fn the_stored_data_signature_covers_resource_kind_time_value_and_identity() {
    let ca = ecdsa_ca();
    let creds = ca.issue(&[node(1), node(2)], None, KeyType::EcdsaP256, year()).unwrap();
    let info = creds.cert_info();
    let resource = ResourceId::from(node(0x3a));
    let kind = KindId::SIP_REGISTRATION;
    let value = StoredDataValue::Dictionary {
        key: node(1).0.to_vec(),
        value: DataValue::new(b"sip:alice@192.0.2.1".to_vec()),
    };
    let signed = creds
        .sign_stored_data(&resource, kind, sample_data(value.clone()), &node(1))
        .unwrap();
    assert_eq!(verify_stored_data(&resource, kind, &signed, info), Ok(Some(node(1))));

    let bad = Err(TrustError::BadSignature);
    assert_eq!(
        verify_stored_data(&ResourceId::from(node(0x3b)), kind, &signed, info),
        bad
    );
    assert_eq!(verify_stored_data(&resource, KindId(0x2), &signed, info), bad);
    let mut later = signed.clone();
    later.storage_time += 1;
    assert_eq!(verify_stored_data(&resource, kind, &later, info), bad);
    let mut other_value = signed.clone();
    other_value.value = StoredDataValue::Dictionary {
        key: node(1).0.to_vec(),
        value: DataValue::new(b"sip:alice@192.0.2.2".to_vec()),
    };
    assert_eq!(verify_stored_data(&resource, kind, &other_value, info), bad);
    let mut other_key = signed.clone();
    other_key.value = StoredDataValue::Dictionary {
        key: node(2).0.to_vec(),
        value: DataValue::new(b"sip:alice@192.0.2.1".to_vec()),
    };
    assert_eq!(verify_stored_data(&resource, kind, &other_key, info), bad);
    let mut deleted = signed.clone();
    deleted.value = StoredDataValue::Dictionary {
        key: node(1).0.to_vec(),
        value: DataValue {
            exists: false,
            value: b"sip:alice@192.0.2.1".to_vec(),
        },
    };
    assert_eq!(verify_stored_data(&resource, kind, &deleted, info), bad);
    // The identity is part of the input: the same certificate, another of its
    // Node-IDs, and the signature no longer holds.
    let mut other_identity = signed.clone();
    other_identity.signature.identity = creds.signer_identity(&node(2));
    assert_eq!(verify_stored_data(&resource, kind, &other_identity, info), bad);
    // The lifetime is not signed (§7.1 lists what is).
    let mut longer = signed.clone();
    longer.lifetime *= 2;
    assert_eq!(verify_stored_data(&resource, kind, &longer, info), Ok(Some(node(1))));
}

#[test]
fn the_stored_data_signature_ignores_the_array_index() {
    let creds = alice(&ecdsa_ca());
    let resource = ResourceId::from(node(0x44));
    let kind = KindId(0xf000_0001);
    let appended = StoredDataValue::Array {
        index: 0xffff_ffff,
        value: DataValue::new(b"entry".to_vec()),
    };
    let signed = creds
        .sign_stored_data(&resource, kind, sample_data(appended), &node(1))
        .unwrap();
    // The storing peer puts it at index 17 (§7.4.2.2): still valid.
    let mut stored = signed.clone();
    stored.value = StoredDataValue::Array {
        index: 17,
        value: DataValue::new(b"entry".to_vec()),
    };
    assert_eq!(
        verify_stored_data(&resource, kind, &stored, creds.cert_info()),
        Ok(Some(node(1)))
    );
    let id = creds.signer_identity(&node(1));
    let zero = |index| {
        stored_data_signature_input(
            &resource,
            kind,
            5,
            &StoredDataValue::Array {
                index,
                value: DataValue::new(vec![9]),
            },
            &id,
        )
        .unwrap()
    };
    assert_eq!(zero(0), zero(12345));
}

#[test]
fn the_stored_data_signature_input_is_the_concatenation_of_the_wire_forms() {
    let resource = ResourceId::new(vec![0xaa, 0xbb]).unwrap();
    let id = SignerIdentity::CertHash {
        hash_alg: HashAlgorithm::SHA256,
        certificate_hash: vec![0xcc; 2],
    };
    let input = stored_data_signature_input(
        &resource,
        KindId(0x0102_0304),
        0x1122_3344_5566_7788,
        &StoredDataValue::Single {
            value: DataValue::new(vec![0xdd]),
        },
        &id,
    )
    .unwrap();
    #[rustfmt::skip]
    let want = [
        2, 0xaa, 0xbb,                                   // ResourceId<0..2^8-1>
        1, 2, 3, 4,                                      // KindId
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,  // storage_time
        1, 0, 0, 0, 1, 0xdd,                             // DataValue: exists, value<0..2^32-1>
        1, 0, 4, 4, 2, 0xcc, 0xcc,                       // SignerIdentity: cert_hash, length, sha256, hash
    ];
    assert_eq!(input, want);
}

// ---- self-signed mode (§11.3.1) ---------------------------------------------------

#[test]
fn self_signed_certificates_are_accepted_only_when_permitted() {
    let derived = SelfSignedNodeIds::Derived {
        count: 1,
        digest: NodeIdDigest::Sha1,
    };
    let creds =
        Credentials::self_signed(derived, OVERLAY, Some("alice@example.org"), KeyType::EcdsaP256, year()).unwrap();
    let info = creds.cert_info();
    assert!(info.self_signed);
    assert_eq!(
        info.node_ids,
        self_signed_node_ids(&info.public_key.spki_der, 1, NodeIdDigest::Sha1)
    );
    assert_eq!(info.public_key.spki_der, creds.private_key().spki_der().unwrap());

    let permitted = TrustAnchors::self_signed_only(NodeIdDigest::Sha1);
    assert_eq!(permitted.verify(creds.chain(), NOW).as_ref(), Ok(info));
    // Permitted alongside a root, too.
    let ca = ecdsa_ca();
    let both = ca.trust_anchors().unwrap().permit_self_signed(NodeIdDigest::Sha1);
    assert!(both.verify(creds.chain(), NOW).is_ok());
    assert!(both.verify(alice(&ca).chain(), NOW).is_ok());
    // Not permitted.
    assert_eq!(
        ca.trust_anchors().unwrap().verify(creds.chain(), NOW),
        Err(TrustError::SelfSignedNotPermitted)
    );
    assert_eq!(
        TrustAnchors::new(vec![]).unwrap().verify(creds.chain(), NOW),
        Err(TrustError::SelfSignedNotPermitted)
    );
    // Permitted, but the validity still counts.
    assert!(matches!(
        permitted.verify(creds.chain(), NOW + 400 * DAY),
        Err(TrustError::Expired { .. })
    ));
}

#[test]
fn self_signed_node_ids_must_be_the_hash_of_the_key() {
    let permitted = TrustAnchors::self_signed_only(NodeIdDigest::Sha1);
    // Chosen Node-IDs: Node-ID theft, refused.
    let chosen = Credentials::self_signed(
        SelfSignedNodeIds::Given(vec![node(1)]),
        OVERLAY,
        None,
        KeyType::EcdsaP256,
        year(),
    )
    .unwrap();
    assert_eq!(permitted.verify(chosen.chain(), NOW), Err(TrustError::NodeIdMismatch));

    // Several Node-IDs, SHA-256: each is H(i || SPKI), i from 1.
    let sha256 = TrustAnchors::self_signed_only(NodeIdDigest::Sha256);
    let three = Credentials::self_signed(
        SelfSignedNodeIds::Derived {
            count: 3,
            digest: NodeIdDigest::Sha256,
        },
        OVERLAY,
        None,
        KeyType::EcdsaP256,
        year(),
    )
    .unwrap();
    let spki = &three.cert_info().public_key.spki_der;
    let mut first = crate::cert::sha256(&[&1u32.to_be_bytes(), spki]).to_vec();
    first.truncate(16);
    assert_eq!(three.node_ids()[0].0.to_vec(), first);
    assert_eq!(three.node_ids().len(), 3);
    assert!(sha256.verify(three.chain(), NOW).is_ok());
    // The wrong digest for this overlay.
    assert_eq!(permitted.verify(three.chain(), NOW), Err(TrustError::NodeIdMismatch));

    // A "self-signed" certificate that is signed by some other key is refused.
    let ca = ecdsa_ca();
    let mut params = node_params(&[], OVERLAY, None, year()).unwrap();
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::URI(
        reload_uri(
            &self_signed_node_ids(&key.spki_der().unwrap(), 1, NodeIdDigest::Sha1)[0],
            OVERLAY,
        )
        .try_into()
        .unwrap(),
    )];
    let forged = ca.issue_with_params(key, params).unwrap();
    // Issued by the CA, whose name differs from the empty subject: not self-issued,
    // so it is judged as a CA-issued certificate.
    assert!(!forged.cert_info().self_signed);
    assert_eq!(permitted.verify(forged.chain(), NOW), Err(TrustError::UnknownIssuer));

    // Self-issued (issuer and subject both empty) but signed by another key.
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let ids = self_signed_node_ids(&key.spki_der().unwrap(), 1, NodeIdDigest::Sha1);
    let params = node_params(&ids, OVERLAY, None, year()).unwrap();
    let other = PrivateKey::generate(KeyType::EcdsaP256).unwrap().rcgen_key().unwrap();
    let issuer = rcgen::Issuer::new(params.clone(), other);
    let der = params
        .signed_by(&key.rcgen_key().unwrap(), &issuer)
        .unwrap()
        .der()
        .to_vec();
    assert!(CertInfo::parse(&der).unwrap().self_signed);
    assert_eq!(permitted.verify(&[der], NOW), Err(TrustError::BadSignature));
}

#[test]
fn rsa_self_signed_certificates_work_too() {
    let creds = Credentials::self_signed_with_key(
        rsa_key(1),
        SelfSignedNodeIds::Derived {
            count: 1,
            digest: NodeIdDigest::Sha1,
        },
        OVERLAY,
        None,
        year(),
    )
    .unwrap();
    let info = TrustAnchors::self_signed_only(NodeIdDigest::Sha1)
        .verify(creds.chain(), NOW)
        .unwrap();
    let sig = creds.sign(b"abc", &info.node_ids[0]).unwrap();
    verify_signature(b"abc", &sig, &info).unwrap();
}
