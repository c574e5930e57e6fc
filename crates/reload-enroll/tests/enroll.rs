//! The enrollment server and client over real HTTPS on 127.0.0.1 (RFC 6940 §11.2,
//! §11.3): a CA in a temporary directory, the server on an ephemeral port, and
//! enrollments that succeed and that are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use reload_enroll::ca::{CaDir, CaInit};
use reload_enroll::client::{ClientError, EnrollOptions, ServerTrust, enroll, fetch_configuration, fingerprint};
use reload_enroll::config::{ConfigError, WELL_KNOWN_PATH};
use reload_enroll::identity::NodeIdentity;
use reload_enroll::server::{EnrollmentServer, ServerOptions};
use reload_trust::{KeyType, PrivateKey, TestCa, Validity, unix_now};

const OVERLAY: &str = "test.p2psip.example";

/// A CA with users alice and bob, and its server on an ephemeral port, with the
/// configuration's enrollment URL pointing at it.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: Vec<u8>,
    ca_dir: std::path::PathBuf,
    data: std::path::PathBuf,
    server: EnrollmentServer,
}

impl Fixture {
    async fn start(tune: impl FnOnce(&mut ServerOptions)) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let ca_dir = tmp.path().join("ca");
        let ca = CaDir::init(&ca_dir, &CaInit::new(OVERLAY)).unwrap();
        ca.add_user("alice", "alice's password", false).unwrap();
        ca.add_user("bob", "bob's password", false).unwrap();
        let mut options = ServerOptions::new(&ca_dir);
        options.listen = "127.0.0.1:0".parse().unwrap();
        tune(&mut options);
        let server = EnrollmentServer::start(options).await.unwrap();
        let url = format!("{}/enroll", server.url());
        ca.update_configuration(|c| c.enrollment_servers = vec![url]).unwrap();
        Fixture {
            root: ca.root_der().to_vec(),
            data: tmp.path().join("nodes"),
            ca_dir,
            _tmp: tmp,
            server,
        }
    }

    fn config_url(&self) -> String {
        format!("{}{WELL_KNOWN_PATH}", self.server.url())
    }

    fn options(&self, user: &str, password: &str, dir: &str) -> EnrollOptions {
        EnrollOptions {
            config_url: self.config_url(),
            user: user.into(),
            password: password.into(),
            data_dir: self.data.join(dir),
            trust: ServerTrust::Roots(vec![self.root.clone()]),
            key_type: KeyType::EcdsaP256,
            node_ids: 1,
        }
    }

    fn enroll_url(&self) -> String {
        format!("{}/enroll", self.server.url())
    }

    /// A plain HTTPS client trusting the root, for hand-made requests.
    fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_der(&self.root).unwrap()])
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// Posts a hand-made enrollment form; returns the status, body and Retry-After.
    async fn post(&self, fields: &[(&str, Vec<u8>)]) -> (u16, String, Option<String>) {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.part(name.to_string(), reqwest::multipart::Part::bytes(value.clone()));
        }
        let r = self
            .http()
            .post(self.enroll_url())
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        (status, r.text().await.unwrap(), retry)
    }
}

fn csr_for(user: &str) -> Vec<u8> {
    let key = PrivateKey::generate(KeyType::EcdsaP256).unwrap();
    key.certificate_request(Some(&format!("{user}@{OVERLAY}"))).unwrap()
}

fn form(user: &str, password: &str, nodeids: &str, csr: Vec<u8>) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("username", user.as_bytes().to_vec()),
        ("password", password.as_bytes().to_vec()),
        ("nodeids", nodeids.as_bytes().to_vec()),
        ("csr", csr),
    ]
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn two_users_enroll_and_get_certificates_that_chain_to_the_root() {
    let f = Fixture::start(|_| {}).await;

    // alice, with the root given out of band.
    let alice = enroll(&f.options("alice", "alice's password", "alice")).await.unwrap();
    assert!(!alice.trusted_on_first_use);
    assert_eq!(alice.enrollment_url, f.enroll_url());
    let id = &alice.identity;
    assert_eq!(id.node_ids().len(), 1);
    assert_eq!(id.user(), Some("alice@test.p2psip.example"));
    assert_eq!(id.configuration.instance_name, OVERLAY);
    assert_eq!(id.configuration.root_certs, vec![f.root.clone()]);
    let info = id.trust_anchors.verify(id.credentials.chain(), unix_now()).unwrap();
    assert_eq!(info.node_ids, id.node_ids());
    // §11.3: the subject is empty; the only names are the Node-ID and the user.
    let (_, cert) = x509_parser::parse_x509_certificate(id.credentials.certificate_der()).unwrap();
    assert_eq!(cert.subject().iter().count(), 0);
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(sans.value.general_names.len(), 2);
    // Another overlay's root does not accept it.
    let other = TestCa::new("other.example", KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
    assert!(
        other
            .trust_anchors()
            .unwrap()
            .verify(id.credentials.chain(), unix_now())
            .is_err()
    );

    // The data directory is private and loads again.
    let dir = f.data.join("alice");
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("key.pem")), 0o600);
    }
    let loaded = NodeIdentity::load(&dir).unwrap();
    assert_eq!(loaded.node_ids(), alice.identity.node_ids());
    assert_eq!(loaded.node_config().node_id, alice.identity.node_id());
    assert_eq!(
        loaded.node_config().overlay,
        reload_wire::OverlayHash::from_overlay_name(OVERLAY)
    );

    // bob, with an RSA key, three Node-IDs, trusting on first use.
    let mut options = f.options("bob", "bob's password", "bob");
    options.trust = ServerTrust::TrustOnFirstUse;
    options.key_type = KeyType::Rsa2048;
    options.node_ids = 3;
    let bob = enroll(&options).await.unwrap();
    assert!(bob.trusted_on_first_use);
    assert_eq!(bob.root_fingerprints, vec![fingerprint(&f.root)]);
    assert_eq!(bob.identity.node_ids().len(), 3);
    assert_eq!(bob.identity.user(), Some("bob@test.p2psip.example"));
    assert!(
        bob.identity
            .node_ids()
            .iter()
            .all(|n| !alice.identity.node_ids().contains(n))
    );
    // Enrolling again into the same directory trusts the saved configuration.
    let again = enroll(&options).await.unwrap();
    assert!(!again.trusted_on_first_use);
    assert_eq!(again.identity.node_ids(), bob.identity.node_ids());

    // §11.3: the same user gets the same Node-IDs again, and more when asked.
    let alice2 = enroll(&f.options("alice", "alice's password", "alice2")).await.unwrap();
    assert_eq!(alice2.identity.node_ids(), alice.identity.node_ids());
    let mut more = f.options("alice", "alice's password", "alice3");
    more.node_ids = 2;
    let alice3 = enroll(&more).await.unwrap();
    assert_eq!(alice3.identity.node_ids()[0], alice.identity.node_ids()[0]);
    assert_eq!(alice3.identity.node_ids().len(), 2);
    // The server remembers them across restarts: they are in nodeids.toml.
    let saved = std::fs::read_to_string(f.ca_dir.join("nodeids.toml")).unwrap();
    assert!(saved.contains(&reload_wire::hex::encode(alice.identity.node_id().as_bytes())));

    f.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusals_say_why() {
    let f = Fixture::start(|_| {}).await;

    // Wrong password, unknown user: 403 failed_authentication, through the client.
    for (user, password) in [("alice", "wrong"), ("carol", "alice's password")] {
        match enroll(&f.options(user, password, "x")).await {
            Err(ClientError::Refused { status: 403, token, .. }) => {
                assert_eq!(token.as_deref(), Some("failed_authentication"));
            }
            other => panic!("{user}: expected a 403, got {other:?}"),
        }
    }
    assert!(!f.data.join("x").exists(), "nothing is written on failure");

    // Hand-made requests for what the client would not send.
    let (status, body, _) = f.post(&form("Bad User", "x", "1", csr_for("alice"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("illegal user name"), "{body}");

    let (status, body, _) = f.post(&form("alice", "alice's password", "5", csr_for("alice"))).await;
    assert_eq!(
        (status, body.lines().next()),
        (403, Some("Node-IDs_not_available")),
        "{body}"
    );
    assert!(body.contains("1 to 4"), "{body}");
    let (status, body, _) = f.post(&form("alice", "alice's password", "0", csr_for("alice"))).await;
    assert_eq!(
        (status, body.lines().next()),
        (403, Some("Node-IDs_not_available")),
        "{body}"
    );

    let (status, body, _) = f
        .post(&form("alice", "alice's password", "1", b"garbage".to_vec()))
        .await;
    assert_eq!((status, body.lines().next()), (403, Some("bad_CSR")), "{body}");
    let mut tampered = csr_for("alice");
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (status, body, _) = f.post(&form("alice", "alice's password", "1", tampered)).await;
    assert_eq!((status, body.lines().next()), (403, Some("bad_CSR")), "{body}");

    let (status, body, _) = f.post(&form("alice", "alice's password", "1", csr_for("bob"))).await;
    assert_eq!(
        (status, body.lines().next()),
        (403, Some("username_not_available")),
        "{body}"
    );

    let (status, body, _) = f
        .post(&form("alice", "alice's password", "many", csr_for("alice")))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nodeids"), "{body}");

    let mut no_csr = form("alice", "alice's password", "1", vec![]);
    no_csr.pop();
    let (status, body, _) = f.post(&no_csr).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("no \"csr\" field"), "{body}");

    let r = f
        .http()
        .post(f.enroll_url())
        .body("username=alice&password=x")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("multipart/form-data"));

    let big = form("alice", "alice's password", "1", vec![0u8; 200 * 1024]);
    let (status, _, _) = f.post(&big).await;
    assert_eq!(status, 413);

    // A well-formed request by hand gets a bare DER certificate.
    let r = f
        .http()
        .post(f.enroll_url())
        .header("accept", "application/pkix-cert")
        .multipart(
            reqwest::multipart::Form::new()
                .text("username", "alice")
                .text("password", "alice's password")
                .part(
                    "csr",
                    reqwest::multipart::Part::bytes(csr_for("alice"))
                        .mime_str("application/pkcs10")
                        .unwrap(),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/pkix-cert");
    let der = r.bytes().await.unwrap();
    x509_parser::parse_x509_certificate(&der).unwrap();

    f.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn attempts_are_rate_limited_per_account_and_per_address() {
    let f = Fixture::start(|o| {
        o.per_account_per_minute = 3;
        o.per_ip_per_minute = 6;
    })
    .await;
    for _ in 0..3 {
        let (status, _, _) = f.post(&form("alice", "wrong", "1", csr_for("alice"))).await;
        assert_eq!(status, 403);
    }
    let (status, body, retry) = f.post(&form("alice", "alice's password", "1", csr_for("alice"))).await;
    assert_eq!(status, 429, "{body}");
    let retry: u64 = retry.expect("a Retry-After header").parse().unwrap();
    assert!((1..=21).contains(&retry), "{retry}");
    assert!(body.contains("account"), "{body}");
    // Another account from the same address still gets through, until the
    // address's own limit (6 a minute; 4 used so far).
    let (status, _, _) = f.post(&form("bob", "bob's password", "1", csr_for("bob"))).await;
    assert_eq!(status, 200);
    let (status, _, _) = f.post(&form("bob", "bob's password", "1", csr_for("bob"))).await;
    assert_eq!(status, 200);
    let (status, body, retry) = f.post(&form("bob", "bob's password", "1", csr_for("bob"))).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("client address") && retry.is_some(), "{body}");
    f.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_configuration_is_verified_and_a_tampered_one_is_refused() {
    let f = Fixture::start(|_| {}).await;
    let roots = ServerTrust::Roots(vec![f.root.clone()]);

    let r = f.http().get(f.config_url()).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/p2p-overlay+xml");
    let fetched = fetch_configuration(&f.config_url(), &roots).await.unwrap();
    assert_eq!(fetched.configuration.instance_name, OVERLAY);
    assert_eq!(fetched.configuration.sequence, 2);
    assert_eq!(fetched.xml, std::fs::read(f.ca_dir.join("reload-config.xml")).unwrap());

    // A root that is not the overlay's: the TLS handshake already fails.
    let stranger = TestCa::new("stranger.example", KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
    let err = fetch_configuration(&f.config_url(), &ServerTrust::Roots(vec![stranger.root_der().to_vec()]))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Http { .. }), "{err}");

    // Change one byte inside <configuration> on the server.
    let path = f.ca_dir.join("reload-config.xml");
    let xml = std::fs::read_to_string(&path).unwrap();
    let tampered = xml.replacen("<max-message-size>5000<", "<max-message-size>9000<", 1);
    assert_ne!(tampered, xml);
    std::fs::write(&path, tampered).unwrap();
    for trust in [roots.clone(), ServerTrust::TrustOnFirstUse] {
        let err = fetch_configuration(&f.config_url(), &trust).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Config(ConfigError::BadSignature { .. })),
            "{err}"
        );
    }
    let err = enroll(&f.options("alice", "alice's password", "alice"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Config(ConfigError::BadSignature { .. })),
        "{err}"
    );
    assert!(!f.data.join("alice").exists());

    // A configuration signed by another key that lists that key's root: refused
    // against the real root, accepted on first use only as what it is (and the
    // fingerprint then shows a stranger).
    let forged_ca = tempfile::tempdir().unwrap();
    let forged = CaDir::init(&forged_ca.path().join("ca"), &CaInit::new(OVERLAY)).unwrap();
    std::fs::write(&path, forged.configuration_xml().unwrap()).unwrap();
    let err = fetch_configuration(&f.config_url(), &roots).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Config(ConfigError::BadSignature { .. })),
        "{err}"
    );
    let tofu = fetch_configuration(&f.config_url(), &ServerTrust::TrustOnFirstUse)
        .await
        .unwrap();
    assert_ne!(fingerprint(&tofu.configuration.root_certs[0]), fingerprint(&f.root));
    f.server.shutdown().await.unwrap();
}
