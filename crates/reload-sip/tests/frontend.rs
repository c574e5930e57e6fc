//! The SIP front end over a real overlay: five peers in one process on TLS
//! links over 127.0.0.1; alice's and bob's nodes run front ends; built-in
//! phones register at them and call each other across the overlay.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::node_id;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use reload_net::tls::TlsLinks;
use reload_sip::frontend::{self, Frontend, FrontendConfig};
use reload_sip::phone::{Phone, PhoneConfig, PhoneError, PhoneEventKind};
use reload_sip::usage::{DomainRestriction, SipUsage};
use reload_trust::{KeyType, TestCa, Validity};

const OVERLAY: &str = "frontend.example.org";
const PASSWORD: &str = "correct horse";

fn aor(name: &str) -> String {
    format!("{name}@{OVERLAY}")
}

type Node = common::TestPeer;

async fn spawn(ca: &TestCa, n: u8, name: &str, bootstrap: Vec<SocketAddr>) -> Node {
    common::spawn(ca, OVERLAY, n, &aor(name), bootstrap).await
}

async fn front_end(node: &Node, user: &str) -> Frontend {
    gateway(node, user, HashMap::new(), Vec::new()).await
}

/// A front end that also registers phones of other users, with their
/// certificates, and trusts conventional SIP servers at `trusted`.
async fn gateway(
    node: &Node,
    user: &str,
    signers: HashMap<String, reload_net::runtime::UserSigner>,
    trusted: Vec<std::net::IpAddr>,
) -> Frontend {
    let mut accounts = HashMap::from([(aor(user), PASSWORD.to_owned())]);
    for other in signers.keys() {
        accounts.insert(other.clone(), PASSWORD.to_owned());
    }
    let usage = SipUsage::new(node.handle.clone(), OVERLAY, Vec::new()).unwrap();
    let tls = TlsLinks::new(node.security.clone(), 5000).unwrap();
    frontend::start(
        usage,
        tls,
        FrontendConfig {
            phones: "127.0.0.1:0".parse().unwrap(),
            overlay: "127.0.0.1:0".parse().unwrap(),
            phones_tls: Some(("127.0.0.1:0".parse().unwrap(), phone_tls())),
            accounts,
            signers,
            trusted,
            domains: DomainRestriction::OverlayOnly(OVERLAY.to_ascii_lowercase()),
            realm: OVERLAY.to_owned(),
            outbound_proxy: None,
        },
    )
    .await
    .unwrap()
}

/// A TLS server configuration for phones, with a certificate from a test CA.
fn phone_tls() -> std::sync::Arc<rustls::ServerConfig> {
    let ca = TestCa::new("phones.example", KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
    let key = reload_trust::PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    let cert = ca
        .issue_tls_server(&key, &["localhost".to_owned()], &[], Validity::from_now(3600))
        .unwrap();
    let chain = vec![rustls::pki_types::CertificateDer::from(cert)];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.pkcs8_der().to_vec().into());
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    std::sync::Arc::new(config)
}

/// A phone over TLS gets the registrar's challenge on its connection.
async fn register_over_tls(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    #[derive(Debug)]
    struct AnyServer;
    impl rustls::client::danger::ServerCertVerifier for AnyServer {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(AnyServer))
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let local = tls.get_ref().0.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:{OVERLAY} SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bK-tls1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{a}>;tag=t1\r\nTo: <sip:{a}>\r\nCall-ID: tls-1\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:alice@{local};transport=tls>\r\nContent-Length: 0\r\n\r\n",
        a = aor("alice")
    );
    tls.write_all(register.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_register_and_call_across_the_overlay() {
    let test = async {
        let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
        let names = ["alice", "bob", "carol", "dave", "erin"];
        let first = spawn(&ca, 1, names[0], Vec::new()).await;
        first.handle.joined(Duration::from_secs(5)).await.unwrap();
        let boot = vec![first.handle.local_addr()];
        let mut nodes = vec![first];
        for (i, name) in names.iter().enumerate().skip(1) {
            let n = spawn(&ca, u8::try_from(i + 1).unwrap(), name, boot.clone()).await;
            n.handle.joined(Duration::from_secs(20)).await.unwrap();
            nodes.push(n);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let alice_fe = front_end(&nodes[0], "alice").await;
        let bob_fe = front_end(&nodes[1], "bob").await;

        let (alice, mut alice_events) = Phone::start(PhoneConfig::new(aor("alice"), PASSWORD, alice_fe.udp_addr()))
            .await
            .unwrap();
        let (bob, _bob_events) = Phone::start(PhoneConfig::new(aor("bob"), PASSWORD, bob_fe.udp_addr()))
            .await
            .unwrap();

        // Registration: challenged, then 200 with the contact and a RELOAD GRUU.
        let reg = alice.register(600).await.unwrap();
        assert!(reg.challenged, "the registrar must challenge");
        assert_eq!(reg.contacts.len(), 1, "{reg:?}");
        let gruu = reg.gruu.clone().expect("a GRUU");
        assert!(gruu.contains(";gr="), "{gruu}");
        bob.register(600).await.unwrap();
        assert_eq!(alice_fe.contacts(&aor("alice")).await.len(), 1);

        // Phones may use TLS to their node (RFC 3261 §26.2).
        let tls_answer = register_over_tls(alice_fe.tls_addr().expect("a TLS address")).await;
        assert!(tls_answer.starts_with("SIP/2.0 401 "), "{tls_answer}");

        // A phone cannot register an AOR its node holds no credentials for.
        let (mallory, _) = Phone::start(PhoneConfig::new(aor("carol"), PASSWORD, alice_fe.udp_addr()))
            .await
            .unwrap();
        match mallory.register(600).await {
            Err(PhoneError::Status(403, _)) => {}
            other => panic!("expected 403, got {other:?}"),
        }

        // bob calls alice: INVITE, 180, 200, ACK, MESSAGE, BYE.
        let mut call = bob.call(&format!("sip:{}", aor("alice"))).await.unwrap();
        assert!(call.timings.ringing.is_some(), "no 180 came through");
        assert!(!call.route_set.is_empty(), "the nodes must record-route");
        bob.message(&mut call, "hello alice").await.unwrap();
        bob.bye(&mut call).await.unwrap();
        let mut seen = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), alice_events.recv()).await {
            seen.push(e.kind.clone());
            if matches!(e.kind, PhoneEventKind::Bye { .. }) {
                break;
            }
        }
        assert!(
            seen.iter().any(|k| matches!(k, PhoneEventKind::IncomingCall { .. })),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|k| matches!(k, PhoneEventKind::Acked { .. })),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .any(|k| matches!(k, PhoneEventKind::Message { text, .. } if text == "hello alice")),
            "{seen:?}"
        );

        // A MESSAGE outside any dialog (RFC 3428 pager mode) is looked up and
        // proxied like an INVITE.
        bob.message_to(&format!("sip:{}", aor("alice")), "page for alice")
            .await
            .unwrap();
        let mut paged = false;
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), alice_events.recv()).await {
            if matches!(&e.kind, PhoneEventKind::Message { text, .. } if text == "page for alice") {
                paged = true;
                break;
            }
        }
        assert!(paged, "the page did not reach alice's phone");

        // Calling the GRUU reaches alice's node without a Fetch.
        let mut call = bob.call(&gruu).await.unwrap();
        bob.bye(&mut call).await.unwrap();

        // Nobody registered as carol: 404.
        match bob.call(&format!("sip:{}", aor("carol"))).await {
            Err(PhoneError::Status(404, _)) => {}
            other => panic!("expected 404, got {other:?}"),
        }

        // RFC 7904 §3.1: carol forwards her AOR to alice's; a call to carol rings alice.
        let carol_usage = SipUsage::new(nodes[2].handle.clone(), OVERLAY, Vec::new()).unwrap();
        carol_usage
            .register_uri(&aor("carol"), &aor("alice"), 600)
            .await
            .unwrap();
        let mut call = bob.call(&format!("sip:{}", aor("carol"))).await.unwrap();
        bob.bye(&mut call).await.unwrap();
        let mut rang = false;
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), alice_events.recv()).await {
            if matches!(&e.kind, PhoneEventKind::IncomingCall { call_id, .. } if *call_id == call.call_id) {
                rang = true;
            }
            if matches!(&e.kind, PhoneEventKind::Bye { call_id } if *call_id == call.call_id) {
                break;
            }
        }
        assert!(rang, "the call to carol did not reach alice's phone");
        carol_usage.unregister(&aor("carol")).await.unwrap();

        // Parallel forking (RFC 3261 §16.7): a second phone registers as alice; both
        // ring, the first to answer wins and the other is cancelled.
        let mut slow = PhoneConfig::new(aor("alice"), PASSWORD, alice_fe.udp_addr());
        slow.answer_delay = Duration::from_secs(3);
        let (alice2, mut alice2_events) = Phone::start(slow).await.unwrap();
        alice2.register(600).await.unwrap();
        assert_eq!(alice_fe.contacts(&aor("alice")).await.len(), 2);
        let mut call = bob.call(&format!("sip:{}", aor("alice"))).await.unwrap();
        let mut second = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(3), alice2_events.recv()).await {
            let end = matches!(e.kind, PhoneEventKind::Cancelled { .. });
            second.push(e.kind);
            if end {
                break;
            }
        }
        assert!(
            second.iter().any(|k| matches!(k, PhoneEventKind::IncomingCall { .. })),
            "the second contact did not ring: {second:?}"
        );
        assert!(
            second.iter().any(|k| matches!(k, PhoneEventKind::Cancelled { .. })),
            "the second contact was not cancelled: {second:?}"
        );
        bob.bye(&mut call).await.unwrap();
        alice2.register(0).await.unwrap();

        // CANCEL across the overlay (RFC 3261 §9, §16.10): frank's phone rings for
        // 3 s; bob cancels once it rings; the INVITE ends 487 and frank's phone
        // sees the CANCEL.
        let mut ringing_long = PhoneConfig::new(aor("alice"), PASSWORD, alice_fe.udp_addr());
        ringing_long.answer_delay = Duration::from_secs(3);
        let (alice3, mut alice3_events) = Phone::start(ringing_long).await.unwrap();
        alice.register(0).await.unwrap();
        alice3.register(600).await.unwrap();
        let mut outgoing = bob.invite(&format!("sip:{}", aor("alice"))).await.unwrap();
        assert!(outgoing.ringing().await.unwrap(), "no 180 before the CANCEL");
        let cancelled = outgoing.cancel().await.unwrap();
        assert_eq!(cancelled.cancel_status, Some(200));
        assert_eq!(cancelled.invite_status, 487);
        let mut saw_cancel = false;
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), alice3_events.recv()).await {
            if matches!(e.kind, PhoneEventKind::Cancelled { .. }) {
                saw_cancel = true;
                break;
            }
        }
        assert!(saw_cancel, "the callee's phone did not see the CANCEL");
        alice3.register(0).await.unwrap();
        alice.register(600).await.unwrap();

        // An office gateway (RFC 7904 §3.3): erin's node also holds frank's
        // certificate; frank's phone registers there, signed as frank, and bob
        // reaches it. The gateway trusts a conventional SIP server at 127.0.0.2,
        // whose calls for overlay users go into the overlay unchallenged.
        let frank_creds = ca
            .issue(
                &[node_id(99)],
                Some(&aor("frank")),
                KeyType::EcdsaP256,
                Validity::from_now(3600),
            )
            .unwrap();
        let frank_signer = nodes[4].handle.user_signer(frank_creds).unwrap();
        let erin_fe = gateway(
            &nodes[4],
            "erin",
            HashMap::from([(aor("frank"), frank_signer)]),
            vec!["127.0.0.2".parse().unwrap()],
        )
        .await;
        let (frank, mut frank_events) = Phone::start(PhoneConfig::new(aor("frank"), PASSWORD, erin_fe.udp_addr()))
            .await
            .unwrap();
        frank.register(600).await.unwrap();
        let mut call = bob.call(&format!("sip:{}", aor("frank"))).await.unwrap();
        bob.bye(&mut call).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(2), frank_events.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(first.kind, PhoneEventKind::IncomingCall { .. }), "{first:?}");
        let mut outside = PhoneConfig::new("pbx@elsewhere.example", "unused", erin_fe.udp_addr());
        outside.bind = "127.0.0.2:0".parse().unwrap();
        let (pbx, _) = Phone::start(outside).await.unwrap();
        let mut call = pbx.call(&format!("sip:{}", aor("alice"))).await.unwrap();
        pbx.bye(&mut call).await.unwrap();
        // Not trusted: a phone of another domain is refused.
        let (stranger, _) = Phone::start(PhoneConfig::new("x@elsewhere.example", "unused", erin_fe.udp_addr()))
            .await
            .unwrap();
        match stranger.call(&format!("sip:{}", aor("alice"))).await {
            Err(PhoneError::Status(403, _)) => {}
            other => panic!("expected 403, got {other:?}"),
        }

        // alice unregisters: her node still holds nothing for her, callers get 404.
        alice.register(0).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        match bob.call(&format!("sip:{}", aor("alice"))).await {
            Err(PhoneError::Status(code, _)) => assert!(code == 404 || code == 480, "{code}"),
            other => panic!("expected 404 or 480, got {other:?}"),
        }
    };
    tokio::time::timeout(Duration::from_secs(120), test).await.unwrap();
}
