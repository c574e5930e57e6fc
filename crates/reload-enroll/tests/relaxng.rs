//! The configuration documents p2psip writes validate against the RELAX NG grammar
//! of RFC 6940 §11.1.1, with RFC 7904 §3.4's `<sip:domain-restriction>`
//! (grammar/reload-config.rng), checked by xmllint; broken documents do not. Needs xmllint (Debian package libxml2-utils).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use reload_core::storage::AccessPolicy;
use reload_enroll::config::{
    ConfigDocument, ConfigSigner, Configuration, DomainRestrictionSpec, KindSpec, LinkProtocol, NS_BASE, NS_SIP,
};
use reload_trust::{KeyType, NodeIdDigest, PrivateKey, TestCa, Validity};
use reload_wire::{DataModel, NodeId};

const GRAMMAR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/grammar/reload-config.rng");

/// Runs `xmllint --noout --relaxng GRAMMAR file`: Ok if it validates, Err with
/// xmllint's report if not. Fails the test if xmllint is missing.
fn xmllint(file: &Path) -> Result<(), String> {
    let out = match Command::new("xmllint")
        .args(["--noout", "--relaxng", GRAMMAR])
        .arg(file)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run xmllint ({e}): install it with `apt-get install libxml2-utils` \
             (the grammar check needs it; it is never skipped)"
        ),
    };
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() { Ok(()) } else { Err(report) }
}

fn write(dir: &Path, name: &str, xml: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, xml).unwrap();
    path
}

fn ca() -> (TestCa, ConfigSigner) {
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let signer_key = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
    let ca = TestCa::with_key("overlay.example.org", key, Validity::from_now(86_400)).unwrap();
    let signer = ConfigSigner::new(signer_key, vec![ca.root_der().to_vec()]).unwrap();
    (ca, signer)
}

/// SIP-REGISTRATION with an RFC 7904 §3.4 `<sip:domain-restriction>`.
fn sip_registration(enable: bool, patterns: &[&str]) -> KindSpec {
    let mut k = KindSpec::registered("SIP-REGISTRATION", 16, 1024).unwrap();
    k.domain_restriction = Some(DomainRestrictionSpec {
        enable,
        patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
    });
    k
}

fn base(ca: &TestCa) -> Configuration {
    let mut c = Configuration::new("overlay.example.org");
    c.sequence = 1;
    c.expiration = Some(1_900_000_000);
    c.root_certs = vec![ca.root_der().to_vec()];
    c.enrollment_servers = vec!["https://127.0.0.1:8443/enroll".into()];
    c.bootstrap_nodes = vec!["127.0.0.1:6084".parse().unwrap()];
    c
}

#[test]
fn our_documents_validate_against_the_rfc_grammar() {
    let (ca, signer) = ca();
    let dir = tempfile::tempdir().unwrap();

    let mut tls = base(&ca);
    tls.link_protocols = vec![LinkProtocol::TlsTcpFhNoIce];
    tls.no_ice = true;

    let mut dtls = base(&ca);
    dtls.link_protocols = vec![LinkProtocol::DtlsUdpSrNoIce, LinkProtocol::DtlsUdpSr];

    let mut self_signed = Configuration::new("closed.example");
    self_signed.self_signed_permitted = true;
    self_signed.self_signed_digest = NodeIdDigest::Sha1;
    self_signed.bootstrap_nodes = vec!["[::1]:6084".parse().unwrap()];

    let mut self_signed_256 = base(&ca);
    self_signed_256.self_signed_permitted = true;
    self_signed_256.self_signed_digest = NodeIdDigest::Sha256;

    let mut bootstrap = base(&ca);
    bootstrap.bootstrap_nodes = vec![
        "127.0.0.1:40001".parse().unwrap(),
        "127.0.0.1:40002".parse().unwrap(),
        "192.0.2.7:6084".parse().unwrap(),
        "[2001:db8::1]:6084".parse().unwrap(),
    ];

    let mut kinds = base(&ca);
    kinds.required_kinds = vec![
        KindSpec::registered("SIP-REGISTRATION", 16, 1024).unwrap(),
        KindSpec::registered("CERTIFICATE_BY_NODE", 10, 8192).unwrap(),
        KindSpec::registered("CERTIFICATE_BY_USER", 10, 8192).unwrap(),
        KindSpec::registered("TURN-SERVICE", 1, 100).unwrap(),
        KindSpec::private(4000, DataModel::Dictionary, AccessPolicy::UserMatch, 5, 300),
        KindSpec::private(4001, DataModel::Array, AccessPolicy::NodeMultiple { max: 3 }, 22, 4),
    ];

    let mut everything = kinds.clone();
    everything.link_protocols = vec![LinkProtocol::Tls, LinkProtocol::TlsTcpFhNoIce];
    everything.turn_density = Some(20);
    everything.clients_permitted = false;
    everything.chord_update_interval = Some(60);
    everything.chord_ping_interval = Some(30);
    everything.chord_reactive = false;
    everything.shared_secret = Some("s3cret & <more>".into());
    everything.max_message_size = 4000;
    everything.initial_ttl = 30;
    everything.overlay_reliability_timer = 2000;
    everything.configuration_signers = vec![NodeId([1; 16])];
    everything.kind_signers = vec![NodeId([2; 16])];
    everything.bad_nodes = vec![NodeId([3; 16])];
    everything.mandatory_extensions = vec![NS_BASE.into()];
    everything.required_kinds[0] = sip_registration(true, &[r"dht\.example\.com", r"[a-z]+&<co>\.example"]);

    let mut restricted = base(&ca);
    restricted.required_kinds = vec![
        sip_registration(true, &[r"dht\.example\.com", r".*\.my\.example"]),
        KindSpec::registered("TURN-SERVICE", 1, 100).unwrap(),
    ];

    let mut restricted_to_overlay = base(&ca);
    restricted_to_overlay.required_kinds = vec![sip_registration(false, &[])];

    let mut enabled_without_patterns = base(&ca);
    enabled_without_patterns.required_kinds = vec![sip_registration(true, &[])];

    let documents = [
        ("tls.xml", tls.to_document(Some(&signer)).unwrap()),
        ("dtls.xml", dtls.to_document(Some(&signer)).unwrap()),
        ("self-signed.xml", self_signed.to_document(None).unwrap()),
        (
            "self-signed-sha256.xml",
            self_signed_256.to_document(Some(&signer)).unwrap(),
        ),
        ("bootstrap.xml", bootstrap.to_document(Some(&signer)).unwrap()),
        ("kinds.xml", kinds.to_document(Some(&signer)).unwrap()),
        ("kinds-unsigned.xml", kinds.to_document(None).unwrap()),
        ("everything.xml", everything.to_document(Some(&signer)).unwrap()),
        ("domain-restriction.xml", restricted.to_document(Some(&signer)).unwrap()),
        ("domain-restriction-unsigned.xml", restricted.to_document(None).unwrap()),
        (
            "domain-restriction-overlay-only.xml",
            restricted_to_overlay.to_document(Some(&signer)).unwrap(),
        ),
        (
            "domain-restriction-no-patterns.xml",
            enabled_without_patterns.to_document(Some(&signer)).unwrap(),
        ),
    ];
    for (name, xml) in &documents {
        let path = write(dir.path(), name, xml);
        if let Err(report) = xmllint(&path) {
            panic!("{name} does not validate:\n{report}\n{xml}");
        }
        // And we read back what we wrote.
        ConfigDocument::parse(xml.as_bytes()).unwrap();
    }
    // The RFC's own example document validates too (it exercises the extension
    // points: foreign attributes and elements, two configurations).
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc6940-example.xml");
    xmllint(&example).unwrap();
}

#[test]
fn broken_documents_fail_the_grammar() {
    let (ca, signer) = ca();
    let dir = tempfile::tempdir().unwrap();
    let mut kinds = base(&ca);
    kinds.required_kinds = vec![KindSpec::registered("SIP-REGISTRATION", 16, 1024).unwrap()];
    let good = kinds.to_document(Some(&signer)).unwrap();
    let path = write(dir.path(), "good.xml", &good);
    xmllint(&path).unwrap();

    let broken = [
        (
            "no-instance-name",
            good.replacen(" instance-name=\"overlay.example.org\"", "", 1),
        ),
        ("unknown-element", good.replacen("<no-ice>", "<frobnicate/><no-ice>", 1)),
        (
            "not-a-boolean",
            good.replacen("<no-ice>false</no-ice>", "<no-ice>maybe</no-ice>", 1),
        ),
        (
            "not-a-number",
            good.replacen("<max-message-size>5000", "<max-message-size>lots", 1),
        ),
        (
            "kind-without-max-count",
            good.replacen("<max-count>16</max-count>", "", 1),
        ),
        (
            "wrong-root",
            good.replacen("<overlay ", "<overlays ", 1)
                .replacen("</overlay>", "</overlays>", 1),
        ),
        (
            "bootstrap-without-address",
            good.replacen("<bootstrap-node address=\"127.0.0.1\"", "<bootstrap-node", 1),
        ),
        (
            "no-configuration",
            format!("<?xml version=\"1.0\"?>\n<overlay xmlns=\"{NS_BASE}\"><signature>AAAA</signature></overlay>\n"),
        ),
    ];
    refused_by_grammar_and_parser(dir.path(), &good, &broken);
}

/// Each of `broken` (a name and an edited copy of `good`) fails xmllint against
/// the grammar, and our parser refuses it too.
fn refused_by_grammar_and_parser(dir: &Path, good: &str, broken: &[(&str, String)]) {
    for (name, xml) in broken {
        assert_ne!(xml, good, "{name}: the edit did not apply");
        let path = write(dir, &format!("{name}.xml"), xml);
        assert!(xmllint(&path).is_err(), "{name} validated but must not:\n{xml}");
        assert!(
            ConfigDocument::parse(xml.as_bytes()).is_err(),
            "{name} parsed but must not"
        );
    }
}

#[test]
fn broken_domain_restrictions_fail_the_grammar() {
    let (ca, signer) = ca();
    let dir = tempfile::tempdir().unwrap();
    let mut restricted = base(&ca);
    restricted.required_kinds = vec![
        sip_registration(true, &[r"dht\.example\.com", r".*\.my\.example"]),
        KindSpec::registered("TURN-SERVICE", 1, 100).unwrap(),
    ];
    let good = restricted.to_document(Some(&signer)).unwrap();
    let path = write(dir.path(), "good.xml", &good);
    xmllint(&path).unwrap();
    let open = format!("<sip:domain-restriction xmlns:sip=\"{NS_SIP}\" enable=\"true\">");
    assert!(good.contains(&open), "{good}");

    let broken = [
        (
            "enable-not-a-boolean",
            good.replacen("enable=\"true\"", "enable=\"maybe\"", 1),
        ),
        (
            "unknown-child",
            good.replacen("<sip:pattern>", "<sip:frob/><sip:pattern>", 1),
        ),
        (
            "pattern-in-base-namespace",
            good.replacen("<sip:pattern>dht", "<pattern>dht", 1)
                .replacen(r"com</sip:pattern>", "com</pattern>", 1),
        ),
        (
            "text-in-restriction",
            good.replacen(&open, &format!("{open}dht.example.com"), 1),
        ),
        (
            "twice",
            good.replacen(
                "</max-size>\n",
                &format!("</max-size>\n<sip:domain-restriction xmlns:sip=\"{NS_SIP}\" enable=\"false\"/>\n"),
                1,
            ),
        ),
        (
            "unknown-sip-element-in-kind",
            good.replacen(
                "</max-size>\n",
                &format!("</max-size>\n<sip:frob xmlns:sip=\"{NS_SIP}\"/>\n"),
                1,
            ),
        ),
        (
            "sip-element-in-configuration",
            good.replacen(
                "<no-ice>",
                &format!("<sip:domain-restriction xmlns:sip=\"{NS_SIP}\" enable=\"false\"/><no-ice>"),
                1,
            ),
        ),
    ];
    refused_by_grammar_and_parser(dir.path(), &good, &broken);

    // Valid against the grammar, refused by the reader: RFC 7904 §3.4 gives the
    // element to SIP-REGISTRATION only, and patterns only under enable="true".
    let on_turn = good
        .replacen(&open, "", 1)
        .replacen("</sip:domain-restriction>", "", 1)
        .replacen(r"<sip:pattern>dht\.example\.com</sip:pattern>", "", 1)
        .replacen(r"<sip:pattern>.*\.my\.example</sip:pattern>", "", 1)
        .replacen(
            "<max-node-multiple>",
            &format!("<sip:domain-restriction xmlns:sip=\"{NS_SIP}\" enable=\"false\"/><max-node-multiple>"),
            1,
        );
    let patterns_when_disabled = good.replacen("enable=\"true\"", "enable=\"false\"", 1);
    for (name, xml, reason) in [
        ("on-turn-service", on_turn, "not for TURN-SERVICE"),
        ("patterns-when-disabled", patterns_when_disabled, "but enable is false"),
    ] {
        assert_ne!(xml, good, "{name}: the edit did not apply");
        let path = write(dir.path(), &format!("{name}.xml"), &xml);
        if let Err(report) = xmllint(&path) {
            panic!("{name} does not validate:\n{report}\n{xml}");
        }
        let err = ConfigDocument::parse(xml.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(reason), "{name}: {err}\n{xml}");
    }

    // The RFC's grammar requires enable; its text reads a missing one as false, and
    // so does the reader.
    let no_enable = good
        .replacen(" enable=\"true\"", "", 1)
        .replacen(r"<sip:pattern>dht\.example\.com</sip:pattern>", "", 1)
        .replacen(r"<sip:pattern>.*\.my\.example</sip:pattern>", "", 1);
    let path = write(dir.path(), "no-enable.xml", &no_enable);
    assert!(xmllint(&path).is_err(), "no-enable validated:\n{no_enable}");
    let doc = ConfigDocument::parse(no_enable.as_bytes()).unwrap();
    let kinds = &doc.entry(None).unwrap().configuration().required_kinds;
    assert_eq!(
        kinds[0].domain_restriction,
        Some(DomainRestrictionSpec {
            enable: false,
            patterns: vec![]
        })
    );
}
