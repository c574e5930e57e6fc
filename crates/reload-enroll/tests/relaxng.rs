//! The configuration documents p2psip writes validate against the RELAX NG grammar
//! of RFC 6940 §11.1.1 (grammar/reload-config.rng), checked by xmllint; broken
//! documents do not. Needs xmllint (Debian package libxml2-utils).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use reload_core::storage::AccessPolicy;
use reload_enroll::config::{ConfigDocument, ConfigSigner, Configuration, KindSpec, LinkProtocol, NS_BASE};
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
    for (name, xml) in &broken {
        assert_ne!(xml, &good, "{name}: the edit did not apply");
        let path = write(dir.path(), &format!("{name}.xml"), xml);
        assert!(xmllint(&path).is_err(), "{name} validated but must not:\n{xml}");
        // Our parser refuses each of them too.
        assert!(
            ConfigDocument::parse(xml.as_bytes()).is_err(),
            "{name} parsed but must not"
        );
    }
}
