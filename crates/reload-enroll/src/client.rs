//! The enrollment client (RFC 6940 §11.2, §11.3): fetch and verify the overlay's
//! configuration, get a certificate from its enrollment server, and write the
//! node's data directory ([`crate::identity`]).
//!
//! # What the client trusts
//!
//! - **A root given out of band** ([`ServerTrust::Roots`], `--root ROOT.crt`): the
//!   configuration server's TLS certificate must chain to it, and so must the
//!   configuration's signature ([`ConfigTrust::Roots`]).
//! - **A previous configuration**: if the data directory already holds a valid
//!   configuration and no root is given, its roots are the ones trusted and the new
//!   configuration must be a valid successor of it ([`ConfigTrust::Previous`], §11.1).
//! - **Trust on first use** ([`ServerTrust::TrustOnFirstUse`],
//!   `--trust-on-first-use`), when there is neither: the configuration is fetched
//!   from whatever server answers at the URL, and accepted if it is signed by a root
//!   certificate it itself lists. That proves only that the document is whole and
//!   was signed by the holder of that root's key — not that it is the right root.
//!   So the SHA-256 fingerprints of the roots are returned (and `p2psip enroll`
//!   prints them) for the user to compare with what the operator published. From
//!   then on the root is pinned: the password goes only to an enrollment server
//!   whose certificate chains to that root, the issued certificate must chain to
//!   it, and later runs trust the saved configuration instead of the network. An
//!   attacker who can answer the very first fetch can still substitute their own
//!   overlay (and learn the password they are then sent); comparing the fingerprint
//!   is what rules that out.
//!
//! Every connection is HTTPS (rustls, aws-lc-rs) with only those roots trusted:
//! never the system's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reload_trust::{Credentials, KeyType, PrivateKey, TrustError, unix_now};
use reqwest::header::{ACCEPT, CONTENT_TYPE as HTTP_CONTENT_TYPE};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::accounts::{AccountError, certificate_user, check_user_name};
use crate::config::{ConfigDocument, ConfigError, ConfigTrust, Configuration, MAX_DOCUMENT_SIZE};
use crate::files::{
    FileError, PEM_CERTIFICATE, PEM_PRIVATE_KEY, PRIVATE_FILE, PUBLIC_FILE, create_private_dir, pem_decode, pem_encode,
    write_atomic,
};
use crate::identity::{CERT_FILE, CONFIG_FILE, IdentityError, KEY_FILE, NodeIdentity};
use crate::server::{CERT_CONTENT_TYPE, CSR_CONTENT_TYPE};

/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest certificate or error body read.
const MAX_ANSWER: usize = 64 * 1024;

/// Which configuration server to trust (see the module documentation).
#[derive(Clone, Debug)]
pub enum ServerTrust {
    /// These root certificates (DER), obtained out of band.
    Roots(Vec<Vec<u8>>),
    /// Whatever root the first configuration fetched is signed by and lists —
    /// unless the data directory already holds a configuration, whose roots are
    /// then trusted.
    TrustOnFirstUse,
    /// Only the configuration saved in the data directory (re-enrolling); fails
    /// if there is no valid one.
    Saved,
}

/// What to enroll as, and where to put the result.
#[derive(Clone, Debug)]
pub struct EnrollOptions {
    /// The configuration document's URL (https).
    pub config_url: String,
    /// The account name.
    pub user: String,
    /// The account's password.
    pub password: String,
    /// The node's data directory (created, mode 0700).
    pub data_dir: PathBuf,
    /// Which server to trust.
    pub trust: ServerTrust,
    /// The node's key type.
    pub key_type: KeyType,
    /// How many Node-IDs to ask for.
    pub node_ids: u32,
}

/// A fetched and verified configuration document.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The document's bytes, exactly as fetched.
    pub xml: Vec<u8>,
    /// Its configuration, verified.
    pub configuration: Configuration,
    /// Whether its roots were accepted on first use (see the module documentation).
    pub trusted_on_first_use: bool,
}

/// The result of a successful enrollment.
#[derive(Debug)]
pub struct Enrolled {
    /// The node's identity, as [`NodeIdentity::load`] reads it from the data directory.
    pub identity: NodeIdentity,
    /// The SHA-256 fingerprints of the overlay's root certificates
    /// ([`fingerprint`]), to compare with the operator's.
    pub root_fingerprints: Vec<String>,
    /// Whether the roots were accepted on first use.
    pub trusted_on_first_use: bool,
    /// The enrollment server that issued the certificate.
    pub enrollment_url: String,
}

/// Why enrollment failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// An option is unusable.
    #[error("{0}")]
    Options(String),
    /// The user name is illegal.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The server could not be reached or the TLS handshake failed.
    #[error("{url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong, with its causes.
        reason: String,
    },
    /// The configuration server answered with an error.
    #[error("{url}: the server answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// An answer was larger than expected.
    #[error("{url}: the answer is larger than {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        max: usize,
    },
    /// The configuration document was refused.
    #[error("the configuration document: {0}")]
    Config(#[from] ConfigError),
    /// The configuration names no enrollment server.
    #[error("the configuration names no enrollment-server to get a certificate from")]
    NoEnrollmentServer,
    /// The enrollment server refused (§11.3).
    #[error("{url}: enrollment refused ({status}{}): {detail}", token.as_deref().map(|t| format!(", {t}")).unwrap_or_default())]
    Refused {
        /// The enrollment server.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The §11.3 token, for a 403.
        token: Option<String>,
        /// The explanation.
        detail: String,
    },
    /// The enrollment server's answer is not a certificate.
    #[error("{url}: the answer is not a certificate: {reason}")]
    NotACertificate {
        /// The enrollment server.
        url: String,
        /// Why.
        reason: String,
    },
    /// The issued certificate is not acceptable (§11.3: it must chain to a root of
    /// the configuration and carry the Node-IDs).
    #[error("the issued certificate is not acceptable: {0}")]
    Certificate(TrustError),
    /// The certificate carries another number of Node-IDs than asked for.
    #[error("the issued certificate has {got} Node-IDs; {asked} were asked for")]
    NodeIdCount {
        /// Asked for.
        asked: u32,
        /// Received.
        got: usize,
    },
    /// Making the key or request.
    #[error("making the key or request: {0}")]
    Key(TrustError),
    /// Writing the data directory.
    #[error(transparent)]
    File(#[from] FileError),
    /// Reading back the data directory.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// The SHA-256 fingerprint of a certificate, as colon-separated uppercase hex
/// (the form browsers and `openssl x509 -fingerprint -sha256` show).
pub fn fingerprint(der: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A server certificate verifier that accepts any certificate (trust on first use
/// of the configuration server only) but still checks the handshake signatures.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An HTTPS client trusting only `roots`, or any server if `roots` is `None`.
fn http_client(roots: Option<&[Vec<u8>]>) -> Result<reqwest::Client, ClientError> {
    let provider = crate::crypto_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Options(format!("TLS setup: {e}")))?;
    let mut tls = match roots {
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store
                    .add(CertificateDer::from(r.clone()))
                    .map_err(|e| ClientError::Options(format!("a root certificate is not usable for TLS: {e}")))?;
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
            .with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .https_only(true)
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| ClientError::Options(format!("HTTP client setup: {}", error_chain(&e))))
}

/// An error with its causes, as one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

fn http_error(url: &str, e: &reqwest::Error) -> ClientError {
    ClientError::Http {
        url: url.to_owned(),
        reason: error_chain(e),
    }
}

/// Reads a body of at most `max` bytes.
async fn read_body(url: &str, mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| http_error(url, &e))? {
        if body.len() + chunk.len() > max {
            return Err(ClientError::TooLarge {
                url: url.to_owned(),
                max,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How to check the fetched configuration.
enum Check<'a> {
    Roots(&'a [Vec<u8>]),
    Previous(&'a Configuration),
    FirstUse,
}

async fn fetch(url: &str, check: Check<'_>) -> Result<Fetched, ClientError> {
    let tls_roots = match &check {
        Check::Roots(r) => Some(*r),
        Check::Previous(p) => Some(p.root_certs.as_slice()),
        Check::FirstUse => None,
    };
    let client = http_client(tls_roots)?;
    let response = client
        .get(url)
        .header(ACCEPT, crate::config::CONTENT_TYPE)
        .send()
        .await
        .map_err(|e| http_error(url, &e))?;
    let status = response.status();
    if !status.is_success() {
        let body = read_body(url, response, MAX_ANSWER).await.unwrap_or_default();
        return Err(ClientError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).chars().take(200).collect(),
        });
    }
    let xml = read_body(url, response, MAX_DOCUMENT_SIZE).await?;
    let doc = ConfigDocument::parse(&xml)?;
    let entry = doc.entry(None)?;
    let now = unix_now();
    let configuration = match check {
        Check::Roots(roots) => entry.verify(ConfigTrust::Roots(roots), now)?,
        Check::Previous(previous) => entry.verify(ConfigTrust::Previous(previous), now)?,
        Check::FirstUse => {
            let own = entry.configuration().root_certs.clone();
            entry.verify(ConfigTrust::Roots(&own), now)?
        }
    };
    Ok(Fetched {
        xml,
        configuration,
        trusted_on_first_use: matches!(check, Check::FirstUse),
    })
}

/// Fetches the configuration document at `url` and verifies it (§11.2, §11.1):
/// against `trust`'s roots, or, on first use, against the roots it lists.
pub async fn fetch_configuration(url: &str, trust: &ServerTrust) -> Result<Fetched, ClientError> {
    match trust {
        ServerTrust::Roots(roots) => fetch(url, Check::Roots(roots)).await,
        ServerTrust::TrustOnFirstUse => fetch(url, Check::FirstUse).await,
        ServerTrust::Saved => Err(ClientError::Options(
            "a configuration saved in a data directory is only used by enroll".into(),
        )),
    }
}

/// The configuration already in the data directory, if there is a valid one.
fn saved_configuration(options: &EnrollOptions) -> Option<Configuration> {
    let xml = std::fs::read(options.data_dir.join(CONFIG_FILE)).ok()?;
    let doc = ConfigDocument::parse(&xml).ok()?;
    let entry = doc.entry(None).ok()?;
    let roots = entry.configuration().root_certs.clone();
    entry.verify(ConfigTrust::Roots(&roots), unix_now()).ok()
}

/// Posts the enrollment form (§11.3) and returns the certificate, DER.
async fn request_certificate(
    client: &reqwest::Client,
    url: &str,
    options: &EnrollOptions,
    csr: Vec<u8>,
) -> Result<Vec<u8>, ClientError> {
    let csr = reqwest::multipart::Part::bytes(csr)
        .mime_str(CSR_CONTENT_TYPE)
        .map_err(|e| http_error(url, &e))?;
    let form = reqwest::multipart::Form::new()
        .text("username", options.user.clone())
        .text("password", options.password.clone())
        .text("nodeids", options.node_ids.to_string())
        .part("csr", csr);
    let response = client
        .post(url)
        .header(ACCEPT, CERT_CONTENT_TYPE)
        .multipart(form)
        .send()
        .await
        .map_err(|e| http_error(url, &e))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(HTTP_CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = read_body(url, response, MAX_ANSWER).await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("").trim().to_owned();
        let rest: String = lines.collect::<Vec<_>>().join(" ").trim().chars().take(500).collect();
        // §11.3: a 403's body is a token; ours adds an explanation on the next line.
        let (token, detail) = if status == reqwest::StatusCode::FORBIDDEN {
            let explained = match first.as_str() {
                "failed_authentication" => "the user name or password is wrong",
                "username_not_available" => "the requested user name is not acceptable",
                "Node-IDs_not_available" => "the number of Node-IDs asked for is not acceptable",
                "bad_CSR" => "the certificate request was not acceptable",
                _ => "refused for a reason the server did not name in a known way",
            };
            let detail = if rest.is_empty() { explained.to_owned() } else { rest };
            (Some(first.chars().take(60).collect()), detail)
        } else {
            (None, text.trim().chars().take(500).collect())
        };
        return Err(ClientError::Refused {
            url: url.to_owned(),
            status: status.as_u16(),
            token,
            detail,
        });
    }
    if !content_type.starts_with(CERT_CONTENT_TYPE) {
        return Err(ClientError::NotACertificate {
            url: url.to_owned(),
            reason: format!("its content type is {content_type:?}, not {CERT_CONTENT_TYPE}"),
        });
    }
    // A bare DER certificate (§11.3); PEM is accepted too.
    if body.starts_with(b"-----BEGIN") {
        return pem_decode(&body, PEM_CERTIFICATE)
            .ok()
            .and_then(|v| v.into_iter().next())
            .ok_or_else(|| ClientError::NotACertificate {
                url: url.to_owned(),
                reason: "PEM without a CERTIFICATE".into(),
            });
    }
    Ok(body)
}

/// Enrolls (§11.3): fetches and verifies the configuration, makes a key and a
/// certificate request for `USER@OVERLAY`, posts it to the configuration's
/// enrollment servers in turn until one answers, checks the certificate (it chains
/// to the configuration's roots, names this overlay and the Node-IDs asked for, and
/// is for the key made), and writes the data directory.
pub async fn enroll(options: &EnrollOptions) -> Result<Enrolled, ClientError> {
    check_user_name(&options.user)?;
    if options.node_ids == 0 {
        return Err(ClientError::Options("ask for at least one Node-ID".into()));
    }
    let saved = saved_configuration(options);
    let fetched = match (&options.trust, &saved) {
        (ServerTrust::Roots(roots), _) => fetch(&options.config_url, Check::Roots(roots)).await?,
        (ServerTrust::TrustOnFirstUse, Some(previous)) => fetch(&options.config_url, Check::Previous(previous)).await?,
        (ServerTrust::TrustOnFirstUse, None) => fetch(&options.config_url, Check::FirstUse).await?,
        (ServerTrust::Saved, Some(previous)) => fetch(&options.config_url, Check::Previous(previous)).await?,
        (ServerTrust::Saved, None) => {
            return Err(ClientError::Options(format!(
                "{} holds no valid configuration to trust; give the overlay's root certificate",
                options.data_dir.display()
            )));
        }
    };
    let config = &fetched.configuration;
    if config.enrollment_servers.is_empty() {
        return Err(ClientError::NoEnrollmentServer);
    }
    let key_type = options.key_type;
    let key = tokio::task::spawn_blocking(move || PrivateKey::generate(key_type))
        .await
        .map_err(|e| ClientError::Options(format!("key generation stopped: {e}")))?
        .map_err(ClientError::Key)?;
    let user = certificate_user(&options.user, &config.instance_name);
    let csr = key.certificate_request(Some(&user)).map_err(ClientError::Key)?;

    // §11.3: the enrollment server's certificate must chain to the overlay's roots.
    let client = http_client(Some(&config.root_certs))?;
    let mut issued = None;
    let mut unreachable = None;
    for url in &config.enrollment_servers {
        match request_certificate(&client, url, options, csr.clone()).await {
            Ok(der) => {
                issued = Some((der, url.clone()));
                break;
            }
            Err(e @ ClientError::Http { .. }) => {
                tracing::warn!(error = %e, "enrollment server unreachable; trying the next");
                unreachable = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    let Some((der, enrollment_url)) = issued else {
        return Err(unreachable.unwrap_or(ClientError::NoEnrollmentServer));
    };

    let pkcs8 = key.pkcs8_der().to_vec();
    let credentials = Credentials::new(key, vec![der.clone()]).map_err(ClientError::Certificate)?;
    let now = unix_now();
    let anchors = config.trust_anchors()?;
    let info = anchors
        .verify(credentials.chain(), now)
        .map_err(ClientError::Certificate)?;
    if info.node_ids.len() != options.node_ids as usize {
        return Err(ClientError::NodeIdCount {
            asked: options.node_ids,
            got: info.node_ids.len(),
        });
    }

    let dir = &options.data_dir;
    create_private_dir(dir)?;
    write_atomic(
        &dir.join(KEY_FILE),
        pem_encode(PEM_PRIVATE_KEY, &pkcs8).as_bytes(),
        PRIVATE_FILE,
    )?;
    write_atomic(
        &dir.join(CERT_FILE),
        pem_encode(PEM_CERTIFICATE, &der).as_bytes(),
        PUBLIC_FILE,
    )?;
    write_atomic(&dir.join(CONFIG_FILE), &fetched.xml, PUBLIC_FILE)?;
    let identity = NodeIdentity::load_at(dir, now)?;
    Ok(Enrolled {
        root_fingerprints: config.root_certs.iter().map(|r| fingerprint(r)).collect(),
        trusted_on_first_use: fetched.trusted_on_first_use,
        enrollment_url,
        identity,
    })
}
