//! Tests of the configuration document: writing, reading, signing, verifying, and
//! hostile input. The unwraps are on values the tests made themselves.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use reload_core::storage::AccessPolicy;
use reload_trust::{KeyType, NodeIdDigest, PrivateKey, TestCa, Validity};
use reload_wire::{DataModel, KindId, NodeId};

use super::*;

const OVERLAY: &str = "overlay.example.org";
/// A fixed "now": 2027-01-15.
const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

fn validity() -> Validity {
    Validity::starting_at(NOW - DAY, 3650 * DAY)
}

/// A root CA and a signer holding its key.
fn root_ca() -> (TestCa, ConfigSigner) {
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let signer_key = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
    let ca = TestCa::with_key(OVERLAY, key, validity()).unwrap();
    let signer = ConfigSigner::new(signer_key, vec![ca.root_der().to_vec()]).unwrap();
    (ca, signer)
}

/// A configuration using every field.
fn full_config(ca: &TestCa) -> Configuration {
    let mut c = Configuration::new(OVERLAY);
    c.sequence = 7;
    c.expiration = Some(NOW + 365 * DAY);
    c.root_certs = vec![ca.root_der().to_vec()];
    c.enrollment_servers = vec![
        "https://enroll.example.org/enroll".into(),
        "https://127.0.0.1:8443/".into(),
    ];
    c.self_signed_permitted = true;
    c.self_signed_digest = NodeIdDigest::Sha1;
    c.bootstrap_nodes = vec![
        "192.0.2.1:6084".parse().unwrap(),
        "[2001:db8::1]:7000".parse().unwrap(),
        "127.0.0.1:40000".parse().unwrap(),
    ];
    c.turn_density = Some(20);
    c.clients_permitted = false;
    c.no_ice = true;
    c.chord_update_interval = Some(400);
    c.chord_ping_interval = Some(30);
    c.chord_reactive = false;
    c.shared_secret = Some(" pass<&>word ".into());
    c.max_message_size = 4000;
    c.initial_ttl = 30;
    c.overlay_reliability_timer = 2500;
    c.link_protocols = vec![LinkProtocol::TlsTcpFhNoIce, LinkProtocol::DtlsUdpSrNoIce];
    c.configuration_signers = vec![NodeId([0x47; 16])];
    c.kind_signers = vec![NodeId([0x6e; 16])];
    c.bad_nodes = vec![NodeId([0x6b; 16]), NodeId([0x6c; 16])];
    c.mandatory_extensions = vec![NS_CHORD.into()];
    c.required_kinds = vec![
        KindSpec::registered("SIP-REGISTRATION", 16, 1024).unwrap(),
        KindSpec::registered("TURN-SERVICE", 1, 100).unwrap(),
        KindSpec::private(2000, DataModel::Array, AccessPolicy::NodeMultiple { max: 3 }, 22, 4),
    ];
    c
}

#[test]
fn a_written_document_reads_back_the_same() {
    let (ca, signer) = root_ca();
    let config = full_config(&ca);
    for signer in [None, Some(&signer)] {
        let xml = config.to_document(signer).unwrap();
        let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
        assert_eq!(doc.entries().len(), 1);
        assert_eq!(doc.entry(None).unwrap().configuration(), &config);
        assert_eq!(doc.entry(Some("OVERLAY.example.org")).unwrap().configuration(), &config);
    }
    // Defaults too.
    let plain = Configuration::new("plain.example");
    let doc = ConfigDocument::parse(plain.to_document(None).unwrap().as_bytes()).unwrap();
    assert_eq!(doc.entry(None).unwrap().configuration(), &plain);
}

#[test]
fn the_signed_bytes_are_exactly_the_configuration_element() {
    let (ca, signer) = root_ca();
    let xml = full_config(&ca).to_document(Some(&signer)).unwrap();
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    let signed = std::str::from_utf8(doc.entry(None).unwrap().signed_bytes()).unwrap();
    assert!(signed.starts_with("<configuration instance-name="), "{signed}");
    assert!(signed.ends_with("</configuration>"), "{signed}");
    let start = xml.find("<configuration").unwrap();
    let end = xml.find("</configuration>").unwrap() + "</configuration>".len();
    assert_eq!(signed, &xml[start..end]);
}

#[test]
fn a_signed_document_verifies_against_its_root() {
    let (ca, signer) = root_ca();
    let config = full_config(&ca);
    let xml = config.to_document(Some(&signer)).unwrap();
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    let roots = [ca.root_der().to_vec()];
    assert_eq!(doc.verify(None, ConfigTrust::Roots(&roots), NOW).unwrap(), config);
    // An update signed by the root verifies against the previous configuration too.
    assert_eq!(doc.verify(None, ConfigTrust::Previous(&config), NOW).unwrap(), config);
}

#[test]
fn changing_any_byte_inside_the_configuration_breaks_the_signature() {
    let (ca, signer) = root_ca();
    let xml = full_config(&ca).to_document(Some(&signer)).unwrap();
    let roots = [ca.root_der().to_vec()];
    // A digit, white space, and a character of the instance name.
    for (from, to) in [
        ("<max-message-size>4000<", "<max-message-size>4001<"),
        ("<initial-ttl>30</initial-ttl>", "<initial-ttl>30</initial-ttl> "),
        (
            "instance-name=\"overlay.example.org\"",
            "instance-name=\"overlay.example.orh\"",
        ),
    ] {
        assert!(xml.contains(from));
        let tampered = xml.replacen(from, to, 1);
        let doc = ConfigDocument::parse(tampered.as_bytes()).unwrap();
        let err = doc.verify(None, ConfigTrust::Roots(&roots), NOW).unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::BadSignature {
                    problem: SignatureProblem::Verify(_),
                    ..
                }
            ),
            "{from}: {err}"
        );
    }
    // White space outside the configuration element is not signed.
    let outside = xml.replacen("</configuration>\n", "</configuration>\n\n  ", 1);
    let doc = ConfigDocument::parse(outside.as_bytes()).unwrap();
    doc.verify(None, ConfigTrust::Roots(&roots), NOW).unwrap();
}

#[test]
fn a_signature_by_a_key_that_is_not_a_root_is_refused() {
    let (ca, _) = root_ca();
    let (other_ca, other_signer) = root_ca();
    // Signed by another CA's root, but listing this one's root.
    let config = full_config(&ca);
    let xml = config.to_document(Some(&other_signer)).unwrap();
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    let roots = [ca.root_der().to_vec()];
    let err = doc.verify(None, ConfigTrust::Roots(&roots), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::BadSignature {
                problem: SignatureProblem::UntrustedRoot,
                ..
            }
        ),
        "{err}"
    );
    // Against the other root the configuration's signature verifies, but its kinds
    // must be signed by a root the document itself lists, and they are not.
    let other_roots = [other_ca.root_der().to_vec()];
    let err = doc.verify(None, ConfigTrust::Roots(&other_roots), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::BadKindSignature {
                problem: SignatureProblem::UntrustedRoot,
                ..
            }
        ),
        "{err}"
    );
    // No roots at all.
    let err = doc.verify(None, ConfigTrust::Roots(&[]), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::BadSignature {
                problem: SignatureProblem::NoRoots,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_enrolled_node_cannot_sign_a_first_configuration() {
    let (ca, _) = root_ca();
    // A node certificate issued by the root, listing itself as configuration-signer.
    let node = NodeId([9; 16]);
    let creds = ca
        .issue(
            &[node],
            Some("mallory@overlay.example.org"),
            KeyType::EcdsaP256,
            validity(),
        )
        .unwrap();
    let signer = ConfigSigner::new(
        PrivateKey::from_pkcs8_der(creds.private_key().pkcs8_der()).unwrap(),
        creds.chain().to_vec(),
    )
    .unwrap();
    let mut forged = full_config(&ca);
    forged.configuration_signers = vec![node];
    forged.kind_signers = vec![node];
    let xml = forged.to_document(Some(&signer)).unwrap();
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    let roots = [ca.root_der().to_vec()];
    let err = doc.verify(None, ConfigTrust::Roots(&roots), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::BadSignature { problem: SignatureProblem::NotAuthorized { node: n, .. }, .. } if *n == node
        ),
        "{err}"
    );
}

#[test]
fn a_configuration_signer_of_the_previous_configuration_may_sign_the_next() {
    let (ca, root_signer) = root_ca();
    let node = NodeId([0x51; 16]);
    let creds = ca.issue(&[node], None, KeyType::EcdsaP256, validity()).unwrap();
    let signer = ConfigSigner::new(
        PrivateKey::from_pkcs8_der(creds.private_key().pkcs8_der()).unwrap(),
        creds.chain().to_vec(),
    )
    .unwrap();
    let mut previous = full_config(&ca);
    previous.configuration_signers = vec![node];
    previous.kind_signers = vec![node];
    previous.bad_nodes = vec![];
    let roots = [ca.root_der().to_vec()];
    let doc = ConfigDocument::parse(previous.to_document(Some(&root_signer)).unwrap().as_bytes()).unwrap();
    let previous = doc.verify(None, ConfigTrust::Roots(&roots), NOW).unwrap();

    let mut next = previous.clone();
    next.sequence += 1;
    next.max_message_size = 6000;
    let xml = next.to_document(Some(&signer)).unwrap();
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    assert_eq!(doc.verify(None, ConfigTrust::Previous(&previous), NOW).unwrap(), next);

    // Not listed in the previous one: refused.
    let mut unlisted = previous.clone();
    unlisted.configuration_signers.clear();
    let err = doc.verify(None, ConfigTrust::Previous(&unlisted), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::BadSignature {
                problem: SignatureProblem::NotAuthorized { .. },
                ..
            }
        ),
        "{err}"
    );
    // Listed, but a bad-node.
    let mut revoked = previous.clone();
    revoked.bad_nodes = vec![node];
    let err = doc.verify(None, ConfigTrust::Previous(&revoked), NOW).unwrap_err();
    assert!(
        matches!(&err, ConfigError::BadSignature { problem: SignatureProblem::BadNode(n), .. } if *n == node),
        "{err}"
    );
    // The configuration may sign, but the kinds need a kind-signer of the new one.
    let mut no_kind_signer = next.clone();
    no_kind_signer.kind_signers.clear();
    let doc = ConfigDocument::parse(no_kind_signer.to_document(Some(&signer)).unwrap().as_bytes()).unwrap();
    let err = doc.verify(None, ConfigTrust::Previous(&previous), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::BadKindSignature {
                problem: SignatureProblem::NotAuthorized {
                    role: "kind-signer",
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    // Sequence must not go back; the overlay must stay the same.
    let mut older = next.clone();
    older.sequence = previous.sequence - 1;
    let doc = ConfigDocument::parse(older.to_document(Some(&signer)).unwrap().as_bytes()).unwrap();
    assert!(matches!(
        doc.verify(None, ConfigTrust::Previous(&previous), NOW),
        Err(ConfigError::SequenceWentBack { .. })
    ));
    let mut renamed = next.clone();
    renamed.instance_name = "other.example.org".into();
    let doc = ConfigDocument::parse(renamed.to_document(Some(&signer)).unwrap().as_bytes()).unwrap();
    assert!(matches!(
        doc.verify(None, ConfigTrust::Previous(&previous), NOW),
        Err(ConfigError::WrongInstance { .. })
    ));
}

#[test]
fn unsigned_and_expired_configurations_are_refused() {
    let (ca, signer) = root_ca();
    let roots = [ca.root_der().to_vec()];
    let config = full_config(&ca);
    let doc = ConfigDocument::parse(config.to_document(None).unwrap().as_bytes()).unwrap();
    assert!(matches!(
        doc.verify(None, ConfigTrust::Roots(&roots), NOW),
        Err(ConfigError::Unsigned { .. })
    ));
    let doc = ConfigDocument::parse(config.to_document(Some(&signer)).unwrap().as_bytes()).unwrap();
    let later = NOW + 366 * DAY;
    assert!(matches!(
        doc.verify(None, ConfigTrust::Roots(&roots), later),
        Err(ConfigError::Expired { .. })
    ));
}

#[test]
fn a_kind_signature_from_elsewhere_is_refused() {
    let (ca, signer) = root_ca();
    let (_, other_signer) = root_ca();
    let roots = [ca.root_der().to_vec()];
    let config = full_config(&ca);
    let good = config.to_document(Some(&signer)).unwrap();
    let other = config.to_document(Some(&other_signer)).unwrap();
    // Take the other document's kind-signature for the first kind, then re-sign the
    // configuration element, so that only the kind's signature is wrong.
    let sig = |xml: &str| {
        let start = xml.find("<kind-signature>").unwrap();
        let end = xml.find("</kind-signature>").unwrap();
        xml[start..end].to_owned()
    };
    let spliced = good.replacen(&sig(&good), &sig(&other), 1);
    let start = spliced.find("<configuration").unwrap();
    let end = spliced.find("</configuration>").unwrap() + "</configuration>".len();
    let block = signer.security_block(&spliced.as_bytes()[start..end], &roots).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(block);
    let head = &spliced[..end];
    let resigned = format!("{head}\n  <signature>{b64}</signature>\n</overlay>\n");
    let doc = ConfigDocument::parse(resigned.as_bytes()).unwrap();
    let err = doc.verify(None, ConfigTrust::Roots(&roots), NOW).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::BadKindSignature {
                kind: 1,
                problem: SignatureProblem::UntrustedRoot
            }
        ),
        "{err}"
    );
}

#[test]
fn node_config_and_trust_anchors_follow_the_document() {
    let (ca, _) = root_ca();
    let config = full_config(&ca);
    let node = NodeId([3; 16]);
    let nc = config.node_config(node);
    assert_eq!(nc.node_id, node);
    assert_eq!(nc.overlay, reload_wire::OverlayHash::from_overlay_name(OVERLAY));
    assert!(!nc.client);
    assert_eq!(nc.configuration_sequence, 7);
    assert_eq!(nc.initial_ttl, 30);
    assert_eq!(nc.max_message_size, 4000);
    assert_eq!(nc.reliability_timer, Duration::from_millis(2500));
    assert_eq!(nc.update_interval, Duration::from_secs(400));
    assert_eq!(nc.ping_interval, Duration::from_secs(30));
    assert!(!nc.reactive);
    let sip = nc.kinds.get(KindId::SIP_REGISTRATION).unwrap();
    assert_eq!(
        (sip.model, sip.policy, sip.max_count, sip.max_size),
        (DataModel::Dictionary, AccessPolicy::UserNodeMatch, 16, 1024)
    );
    let private = nc.kinds.get(KindId(2000)).unwrap();
    assert_eq!(private.policy, AccessPolicy::NodeMultiple { max: 3 });
    assert!(
        nc.kinds.get(KindId::CERTIFICATE_BY_NODE).is_some(),
        "built-in Kinds stay"
    );
    assert_eq!(nc.data_models.get(KindId(2000)), Some(DataModel::Array));

    let anchors = config.trust_anchors().unwrap();
    assert_eq!(anchors.roots(), &[ca.root_der().to_vec()][..]);
    assert!(anchors.self_signed_permitted());
    assert_eq!(anchors.self_signed_digest(), NodeIdDigest::Sha1);
    let creds = ca.issue(&[node], None, KeyType::EcdsaP256, validity()).unwrap();
    anchors.verify(creds.chain(), NOW).unwrap();
    let stranger = TestCa::new("other.example.org", KeyType::EcdsaP256, validity()).unwrap();
    let creds = stranger.issue(&[node], None, KeyType::EcdsaP256, validity()).unwrap();
    assert!(anchors.verify(creds.chain(), NOW).is_err());
}

// ---- reading what others wrote ---------------------------------------------

/// A minimal valid document with `inner` inside the configuration.
fn doc_with(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<overlay xmlns=\"{NS_BASE}\" xmlns:chord=\"{NS_CHORD}\" \
         xmlns:ext=\"urn:example:ext\">\n<configuration instance-name=\"x.example\">{inner}</configuration>\n</overlay>\n"
    )
}

fn parse_err(xml: &str) -> ConfigError {
    ConfigDocument::parse(xml.as_bytes()).unwrap_err()
}

#[test]
fn extensions_are_skipped_and_defaults_apply() {
    let xml = doc_with(
        "<ext:thing a=\"1\"><deep><deeper/></deep></ext:thing> <max-message-size> 7000 </max-message-size>\
         <bootstrap-node address=\" 2001:DB8::1 \" ext:note=\"x\"/><!-- a comment --><no-ice>1</no-ice>",
    );
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    let c = doc.entry(None).unwrap().configuration();
    assert_eq!(c.max_message_size, 7000);
    assert_eq!(
        c.bootstrap_nodes,
        vec!["[2001:db8::1]:6084".parse::<SocketAddr>().unwrap()]
    );
    assert!(c.no_ice);
    assert!(c.clients_permitted);
    assert_eq!(c.initial_ttl, DEFAULT_INITIAL_TTL);
    assert!(c.effective_link_protocols() == vec![LinkProtocol::Tls]);
}

#[test]
fn malformed_documents_get_errors_that_say_what_is_wrong() {
    let cases: Vec<(String, &str)> = vec![
        ("not xml at all".into(), "not well-formed"),
        (
            format!("<overlay xmlns=\"{NS_BASE}\"><configuration/></overlay>"),
            "lacks its instance-name attribute",
        ),
        (format!("<overlay xmlns=\"{NS_BASE}\"></overlay>"), "no <configuration>"),
        (
            "<overlay><configuration instance-name=\"a\"/></overlay>".into(),
            "not <overlay> in namespace",
        ),
        (
            doc_with("<max-message-size>lots</max-message-size>"),
            "<max-message-size>: \"lots\" is not an integer",
        ),
        (doc_with("<no-ice>maybe</no-ice>"), "not true, false, 1 or 0"),
        (doc_with("<initial-ttl>300</initial-ttl>"), "<initial-ttl>"),
        (
            doc_with("<overlay-reliability-timer>100</overlay-reliability-timer>"),
            "at least 200 ms",
        ),
        (
            doc_with("<topology-plugin>PASTRY</topology-plugin>"),
            "only CHORD-RELOAD",
        ),
        (doc_with("<node-id-length>20</node-id-length>"), "only 16-byte Node-IDs"),
        (doc_with("<node-id-length>4</node-id-length>"), "not between 16 and 20"),
        (doc_with("<root-cert>!!!</root-cert>"), "<root-cert>: not base64"),
        (
            doc_with("<root-cert>YmFkIGNlcnQK</root-cert>"),
            "<root-cert>: not a certificate",
        ),
        (
            doc_with("<enrollment-server>http://x.example/</enrollment-server>"),
            "not an https: URL",
        ),
        (
            doc_with("<bootstrap-node address=\"example.org\"/>"),
            "not an IPv4 or IPv6 address",
        ),
        (
            doc_with("<bootstrap-node address=\"192.0.2.1\" port=\"70000\"/>"),
            "port \"70000\"",
        ),
        (doc_with("<bootstrap-node port=\"1\"/>"), "lacks its address attribute"),
        (
            doc_with("<self-signed-permitted>true</self-signed-permitted>"),
            "lacks its digest attribute",
        ),
        (
            doc_with("<self-signed-permitted digest=\"md5\">true</self-signed-permitted>"),
            "md5",
        ),
        (doc_with("<kind-signer>abc</kind-signer>"), "not a Node-ID"),
        (
            doc_with("<mandatory-extension>urn:example:ext</mandatory-extension>"),
            "does not support",
        ),
        (
            doc_with("<no-ice>true</no-ice><no-ice>true</no-ice>"),
            "<no-ice> appears more than once",
        ),
        (doc_with("<frobnicate/>"), "unexpected element <frobnicate>"),
        (
            doc_with("<chord:chord-frob>1</chord:chord-frob>"),
            "unexpected element <chord-frob>",
        ),
        (doc_with("stray text"), "unexpected text \"stray text\""),
        (doc_with("<max-size>1</max-size>"), "unexpected element <max-size>"),
        (
            doc_with(
                "<required-kinds><kind-block><kind name=\"SIP-REGISTRATION\"><max-count>1</max-count><max-size>1</max-size><access-control>USER-NODE-MATCH</access-control></kind></kind-block></required-kinds>",
            ),
            "lacks its <data-model>",
        ),
        (
            doc_with(
                "<required-kinds><kind-block><kind name=\"FOO\"><data-model>SINGLE</data-model><access-control>USER-MATCH</access-control><max-count>1</max-count><max-size>1</max-size></kind></kind-block></required-kinds>",
            ),
            "Kind \"FOO\" is not a registered Kind",
        ),
        (
            doc_with(
                "<required-kinds><kind-block><kind id=\"4000\"><data-model>SINGLE</data-model><access-control>NODE-MULTIPLE</access-control><max-count>1</max-count><max-size>1</max-size></kind></kind-block></required-kinds>",
            ),
            "max-node-multiple",
        ),
        (
            doc_with(
                "<required-kinds><kind-block><kind id=\"4000\" name=\"TURN-SERVICE\"><data-model>SINGLE</data-model><access-control>USER-MATCH</access-control><max-count>1</max-count><max-size>1</max-size></kind></kind-block></required-kinds>",
            ),
            "both a name and an id",
        ),
        (
            doc_with(
                "<required-kinds><kind-block><kind id=\"4000\"><data-model>SINGLE</data-model><access-control>USER-MATCH</access-control><max-count>-1</max-count><max-size>1</max-size></kind></kind-block></required-kinds>",
            ),
            "-1 is not between 0 and 2^31-1",
        ),
        (
            format!("<overlay xmlns=\"{NS_BASE}\"><signature>AAAA</signature></overlay>"),
            "<signature> before any <configuration>",
        ),
        (
            format!(
                "<!DOCTYPE overlay [<!ENTITY a \"b\">]><overlay xmlns=\"{NS_BASE}\"><configuration instance-name=\"a\"/></overlay>"
            ),
            "not well-formed",
        ),
    ];
    for (xml, expected) in cases {
        let err = parse_err(&xml).to_string();
        assert!(
            err.contains(expected),
            "for {xml}\n  got: {err}\n  expected it to say: {expected}"
        );
    }
    assert!(matches!(
        ConfigDocument::parse(b"<overlay \xff\xfe/>"),
        Err(ConfigError::NotUtf8(_))
    ));
}

#[test]
fn the_rfc_example_document_is_refused_with_a_clear_reason() {
    // RFC 6940 §11.1's example: it is valid against the grammar, but its second
    // root-cert is the base64 of "bad cert", among other placeholders.
    let xml = include_str!("../../tests/data/rfc6940-example.xml");
    let err = ConfigDocument::parse(xml.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("<root-cert>: not a certificate"), "{err}");
}

#[test]
fn hostile_documents_are_errors_not_panics() {
    // Huge: refused before parsing.
    let huge = doc_with(&format!("<root-cert>{}</root-cert>", "A".repeat(MAX_DOCUMENT_SIZE)));
    assert!(matches!(parse_err(&huge), ConfigError::TooLarge { .. }));
    // Large, just under the limit, and not a certificate.
    let big = doc_with(&format!("<root-cert>{}</root-cert>", "QUFB".repeat(200_000)));
    assert!(parse_err(&big).to_string().contains("not a certificate"));
    // Deep nesting inside an extension element parses (the walk never descends
    // into it); too many nodes are an error.
    let deep = doc_with(&format!("{}{}", "<ext:a>".repeat(60_000), "</ext:a>".repeat(60_000)));
    ConfigDocument::parse(deep.as_bytes()).unwrap();
    let wide = doc_with(&"<ext:a/>".repeat(120_000));
    assert!(matches!(parse_err(&wide), ConfigError::Xml(_)));
    // Deep nesting of our own elements.
    let ours = doc_with(&format!(
        "{}{}",
        "<required-kinds>".repeat(10_000),
        "</required-kinds>".repeat(10_000)
    ));
    assert!(ConfigDocument::parse(ours.as_bytes()).is_err());
    // Entity expansion is refused outright (no DTD).
    let laughs = format!(
        "<!DOCTYPE overlay [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>\
         <overlay xmlns=\"{NS_BASE}\"><configuration instance-name=\"&b;\"/></overlay>"
    );
    assert!(matches!(parse_err(&laughs), ConfigError::Xml(_)));
    // A real signed document, truncated at every length and with bytes flipped:
    // never a panic.
    let (ca, signer) = root_ca();
    let xml = full_config(&ca).to_document(Some(&signer)).unwrap().into_bytes();
    let roots = [ca.root_der().to_vec()];
    for len in 0..xml.len() {
        if let Ok(doc) = ConfigDocument::parse(&xml[..len]) {
            let _ = doc.verify(None, ConfigTrust::Roots(&roots), NOW);
        }
    }
    let mut state = 0x2545_f491_u32;
    for _ in 0..3000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let mut bad = xml.clone();
        let i = state as usize % bad.len();
        bad[i] ^= 1 << (state >> 29);
        if let Ok(doc) = ConfigDocument::parse(&bad) {
            let _ = doc.verify(None, ConfigTrust::Roots(&roots), NOW);
        }
    }
}

#[test]
fn values_that_cannot_be_written_are_refused() {
    let mut c = Configuration::new("bad name");
    assert!(c.to_document(None).unwrap_err().to_string().contains("instance-name"));
    c = Configuration::new("ok.example");
    c.enrollment_servers = vec!["http://ok.example/".into()];
    assert!(c.to_document(None).unwrap_err().to_string().contains("https"));
    c = Configuration::new("ok.example");
    c.overlay_reliability_timer = 10;
    assert!(c.to_document(None).is_err());
    c = Configuration::new("ok.example");
    c.shared_secret = Some("a\u{1}b".into());
    assert!(c.to_document(None).is_err());
    c = Configuration::new("ok.example");
    c.required_kinds = vec![KindSpec::registered("TURN-SERVICE", 1, 1).unwrap(); 2];
    assert!(c.to_document(None).unwrap_err().to_string().contains("twice"));
}

// ---- RFC 7904 §3.4: <sip:domain-restriction> --------------------------------

/// SIP-REGISTRATION with the restriction of RFC 7904 §3.4's example.
fn sip_registration_restricted(enable: bool, patterns: &[&str]) -> KindSpec {
    let mut k = KindSpec::registered("SIP-REGISTRATION", 16, 1024).unwrap();
    k.domain_restriction = Some(DomainRestrictionSpec {
        enable,
        patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
    });
    k
}

/// A document whose only kind is `<kind {attrs}>` with the four required
/// parameters and `extra` after them.
fn kind_doc(attrs: &str, extra: &str) -> String {
    doc_with(&format!(
        "<required-kinds><kind-block><kind {attrs}><data-model>DICTIONARY</data-model>\
         <access-control>USER-NODE-MATCH</access-control><max-count>1</max-count><max-size>100</max-size>{extra}\
         </kind></kind-block></required-kinds>"
    ))
}

/// The `<sip:domain-restriction>` element, declaring its prefix, around `inner`.
fn restriction(attrs: &str, inner: &str) -> String {
    format!("<sip:domain-restriction xmlns:sip=\"{NS_SIP}\" {attrs}>{inner}</sip:domain-restriction>")
}

/// The only kind of a parsed document.
fn only_kind(xml: &str) -> KindSpec {
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    let kinds = &doc.entry(None).unwrap().configuration().required_kinds;
    assert_eq!(kinds.len(), 1);
    kinds[0].clone()
}

#[test]
fn a_domain_restriction_with_patterns_reads_back_the_same() {
    let (ca, signer) = root_ca();
    let mut config = full_config(&ca);
    config.required_kinds[0] = sip_registration_restricted(true, &[r"dht\.example\.com", r".*\.my\.example"]);
    let roots = [ca.root_der().to_vec()];
    for signer in [None, Some(&signer)] {
        let xml = config.to_document(signer).unwrap();
        assert!(
            xml.contains(&format!(
                "          <sip:domain-restriction xmlns:sip=\"{NS_SIP}\" enable=\"true\">\n            \
                 <sip:pattern>dht\\.example\\.com</sip:pattern>\n            \
                 <sip:pattern>.*\\.my\\.example</sip:pattern>\n          </sip:domain-restriction>\n        </kind>"
            )),
            "{xml}"
        );
        let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
        let read = doc.entry(None).unwrap().configuration();
        assert_eq!(read, &config);
        assert_eq!(
            read.required_kinds[0].domain_restriction,
            Some(DomainRestrictionSpec {
                enable: true,
                patterns: vec![r"dht\.example\.com".into(), r".*\.my\.example".into()],
            })
        );
        // The other kinds have none.
        assert!(read.required_kinds[1..].iter().all(|k| k.domain_restriction.is_none()));
        // Written again, the same bytes.
        assert_eq!(read.to_document(None).unwrap(), config.to_document(None).unwrap());
        if signer.is_some() {
            // The element is inside the signed kind: the signature still verifies,
            // and changing a pattern breaks it.
            assert_eq!(doc.verify(None, ConfigTrust::Roots(&roots), NOW).unwrap(), config);
            let tampered = xml.replacen(r"<sip:pattern>.*\.my\.example<", r"<sip:pattern>.*<", 1);
            assert_ne!(tampered, xml);
            let doc = ConfigDocument::parse(tampered.as_bytes()).unwrap();
            assert!(doc.verify(None, ConfigTrust::Roots(&roots), NOW).is_err());
        }
    }
}

#[test]
fn a_disabled_domain_restriction_reads_back_the_same() {
    let mut config = Configuration::new(OVERLAY);
    config.required_kinds = vec![sip_registration_restricted(false, &[])];
    let xml = config.to_document(None).unwrap();
    assert!(
        xml.contains(&format!(
            "<sip:domain-restriction xmlns:sip=\"{NS_SIP}\" enable=\"false\"/>"
        )),
        "{xml}"
    );
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    let read = doc.entry(None).unwrap().configuration();
    assert_eq!(read, &config);
    assert_eq!(
        read.required_kinds[0].domain_restriction,
        Some(DomainRestrictionSpec {
            enable: false,
            patterns: vec![]
        })
    );
}

#[test]
fn pattern_text_is_escaped_and_read_back() {
    let mut config = Configuration::new(OVERLAY);
    let odd = "a&b<c>d\"e]]>f";
    config.required_kinds = vec![sip_registration_restricted(true, &[odd, "x\ty"])];
    let xml = config.to_document(None).unwrap();
    assert!(
        xml.contains("<sip:pattern>a&amp;b&lt;c&gt;d\"e]]&gt;f</sip:pattern>"),
        "{xml}"
    );
    let doc = ConfigDocument::parse(xml.as_bytes()).unwrap();
    assert_eq!(doc.entry(None).unwrap().configuration(), &config);
}

#[test]
fn a_kind_without_a_domain_restriction_has_none() {
    let k = only_kind(&kind_doc("name=\"SIP-REGISTRATION\"", ""));
    assert_eq!(k.id, KindId::SIP_REGISTRATION);
    assert_eq!(k.domain_restriction, None);
    // And the Kinds the constructors make have none either.
    assert_eq!(
        KindSpec::registered("SIP-REGISTRATION", 1, 1)
            .unwrap()
            .domain_restriction,
        None
    );
    assert_eq!(
        KindSpec::private(4000, DataModel::Single, AccessPolicy::UserMatch, 1, 1).domain_restriction,
        None
    );
}

#[test]
fn domain_restrictions_written_by_others_are_read() {
    let cases: Vec<(String, DomainRestrictionSpec)> = vec![
        // Any prefix, or the default namespace, names the namespace.
        (
            kind_doc(
                "name=\"SIP-REGISTRATION\"",
                &format!(
                    "<s:domain-restriction xmlns:s=\"{NS_SIP}\" enable=\"1\"><s:pattern>  dht\\.example\\.com\n</s:pattern>\
                     <!-- c --> <s:pattern>.*\\.my\\.example</s:pattern></s:domain-restriction>"
                ),
            ),
            DomainRestrictionSpec {
                enable: true,
                patterns: vec![r"dht\.example\.com".into(), r".*\.my\.example".into()],
            },
        ),
        (
            kind_doc(
                "id=\"1\"",
                &format!(
                    "<domain-restriction xmlns=\"{NS_SIP}\" enable=\" true \"><pattern>x</pattern></domain-restriction>"
                ),
            ),
            DomainRestrictionSpec {
                enable: true,
                patterns: vec!["x".into()],
            },
        ),
        // enable="true" with no patterns: §3.4 allows zero.
        (
            kind_doc("name=\"SIP-REGISTRATION\"", &restriction("enable=\"true\"", "")),
            DomainRestrictionSpec {
                enable: true,
                patterns: vec![],
            },
        ),
        (
            kind_doc("name=\"SIP-REGISTRATION\"", &restriction("enable=\"0\"", " ")),
            DomainRestrictionSpec {
                enable: false,
                patterns: vec![],
            },
        ),
        // §3.4: "the enable attribute is not set or set to false".
        (
            kind_doc("name=\"SIP-REGISTRATION\"", &restriction("", "")),
            DomainRestrictionSpec {
                enable: false,
                patterns: vec![],
            },
        ),
        // Attributes of other namespaces are extensions.
        (
            kind_doc(
                "name=\"SIP-REGISTRATION\"",
                &restriction("enable=\"false\" ext:x=\"1\"", ""),
            ),
            DomainRestrictionSpec {
                enable: false,
                patterns: vec![],
            },
        ),
    ];
    for (xml, expected) in cases {
        assert_eq!(only_kind(&xml).domain_restriction, Some(expected), "{xml}");
    }
}

#[test]
fn bad_domain_restrictions_are_refused_with_the_reason() {
    let sip = "name=\"SIP-REGISTRATION\"";
    let cases: Vec<(String, &str)> = vec![
        (
            kind_doc(
                sip,
                &restriction(
                    "enable=\"true\"",
                    "<sip:pattern>x</sip:pattern><sip:pattern> </sip:pattern>",
                ),
            ),
            "<pattern>: is empty",
        ),
        (
            kind_doc(sip, &restriction("enable=\"true\"", "<sip:pattern/>")),
            "<pattern>: is empty",
        ),
        (
            kind_doc(
                sip,
                &format!(
                    "{}{}",
                    restriction("enable=\"true\"", ""),
                    restriction("enable=\"false\"", "")
                ),
            ),
            "<domain-restriction> appears more than once in <kind>",
        ),
        (
            kind_doc(sip, &restriction("enable=\"false\"", "<sip:pattern>x</sip:pattern>")),
            "has 1 <pattern> element(s) but enable is false",
        ),
        (
            kind_doc(sip, &restriction("", "<sip:pattern>x</sip:pattern>")),
            "but enable is false or absent",
        ),
        (
            kind_doc(sip, &restriction("enable=\"maybe\"", "")),
            "enable \"maybe\" is not true, false, 1 or 0",
        ),
        (
            kind_doc(sip, &restriction("enable=\"true\"", "<sip:frob/>")),
            "<domain-restriction>: holds element <frob> of namespace urn:ietf:params:xml:ns:p2p:config-base:sip; \
             RFC 7904 §3.4 allows only <sip:pattern>",
        ),
        (
            kind_doc(sip, &restriction("enable=\"true\"", "<pattern>x</pattern>")),
            "holds element <pattern> of namespace urn:ietf:params:xml:ns:p2p:config-base;",
        ),
        (
            kind_doc(sip, &restriction("enable=\"true\"", "<pattern xmlns=\"\">x</pattern>")),
            "holds element <pattern> in no namespace",
        ),
        (
            kind_doc(sip, &restriction("enable=\"true\"", "<ext:pattern>x</ext:pattern>")),
            "holds element <pattern> of namespace urn:example:ext",
        ),
        (
            kind_doc(sip, &restriction("enable=\"true\"", "dht.example.com")),
            "holds text \"dht.example.com\"",
        ),
        (
            kind_doc(
                sip,
                &restriction(
                    "enable=\"true\"",
                    "<sip:pattern>a<sip:pattern>b</sip:pattern></sip:pattern>",
                ),
            ),
            "<pattern>: holds element <pattern> where text was expected",
        ),
        (
            kind_doc(sip, &restriction("enable=\"true\" mode=\"x\"", "")),
            "unexpected attribute mode in <domain-restriction>",
        ),
        // Only SIP-REGISTRATION may have one.
        (
            kind_doc("name=\"TURN-SERVICE\"", &restriction("enable=\"false\"", "")),
            "<domain-restriction>: RFC 7904 §3.4 defines it for the SIP-REGISTRATION Kind (Kind-ID 1) only, \
             not for TURN-SERVICE (Kind-ID 2)",
        ),
        (
            kind_doc(
                "id=\"4000\"",
                &restriction("enable=\"true\"", "<sip:pattern>x</sip:pattern>"),
            ),
            "defines it for the SIP-REGISTRATION Kind (Kind-ID 1) only, not for kind 4000",
        ),
        // Other elements of the sip namespace are not extensions.
        (
            kind_doc(sip, &format!("<sip:frob xmlns:sip=\"{NS_SIP}\"/>")),
            "unexpected element <frob> of namespace urn:ietf:params:xml:ns:p2p:config-base:sip in <kind>",
        ),
        (
            doc_with(&restriction("enable=\"true\"", "")),
            "unexpected element <domain-restriction> of namespace urn:ietf:params:xml:ns:p2p:config-base:sip in \
             <configuration>",
        ),
    ];
    for (xml, expected) in cases {
        let err = parse_err(&xml).to_string();
        assert!(
            err.contains(expected),
            "for {xml}\n  got: {err}\n  expected it to say: {expected}"
        );
    }
}

#[test]
fn domain_restrictions_that_cannot_be_written_are_refused() {
    let cases: Vec<(KindSpec, &str)> = vec![
        (
            {
                let mut k = KindSpec::registered("TURN-SERVICE", 1, 100).unwrap();
                k.domain_restriction = sip_registration_restricted(false, &[]).domain_restriction;
                k
            },
            "only SIP-REGISTRATION may have a sip:domain-restriction",
        ),
        (
            sip_registration_restricted(false, &["x"]),
            "has patterns but enable is false",
        ),
        (sip_registration_restricted(true, &[""]), "sip:pattern \"\""),
        (sip_registration_restricted(true, &[" x"]), "sip:pattern \" x\""),
        (sip_registration_restricted(true, &["x\n"]), "sip:pattern \"x\\n\""),
        (sip_registration_restricted(true, &["a\u{1}b"]), "sip:pattern"),
    ];
    for (kind, expected) in cases {
        let mut c = Configuration::new(OVERLAY);
        c.required_kinds = vec![kind];
        let err = c.to_document(None).unwrap_err().to_string();
        assert!(err.contains(expected), "got: {err}\n  expected it to say: {expected}");
    }
}

#[test]
fn a_pattern_the_storing_peers_cannot_use_is_refused() {
    let xml = kind_doc(
        "name=\"SIP-REGISTRATION\"",
        &restriction("enable=\"true\"", "<sip:pattern>(dht|sip)\\.example</sip:pattern>"),
    );
    let err = ConfigDocument::parse(xml.as_bytes()).unwrap_err().to_string();
    assert!(
        err.contains("<pattern>: cannot be used: groups and bounds are not supported"),
        "{err}"
    );
}

#[test]
fn storing_peers_get_the_domain_restriction() {
    let (ca, _) = root_ca();
    let mut config = full_config(&ca);
    config.required_kinds[0] = sip_registration_restricted(true, &[r"dht\.example\.com"]);
    let sip = KindId::SIP_REGISTRATION;
    let node = config.node_config(NodeId([1; 16]));
    let r = node.kinds.domain_restriction(sip);
    assert!(r.admits_name("alice@dht.example.com"));
    assert!(!r.admits_name("alice@other.example"));
    // enable="false": the overlay's own name only.
    config.required_kinds[0] = sip_registration_restricted(false, &[]);
    let node = config.node_config(NodeId([1; 16]));
    let own = format!("alice@{}", config.instance_name);
    assert!(node.kinds.domain_restriction(sip).admits_name(&own));
    assert!(!node.kinds.domain_restriction(sip).admits_name("alice@dht.example.com"));
    // No element: any AOR.
    config.required_kinds[0].domain_restriction = None;
    let node = config.node_config(NodeId([1; 16]));
    assert!(node.kinds.domain_restriction(sip).admits_name("alice@anywhere.example"));
}
