//! The configuration and enrollment server (RFC 6940 §11.2, §11.3), over HTTPS.
//!
//! - `GET /.well-known/reload-config` serves the CA directory's signed configuration
//!   document as `application/p2p-overlay+xml` (§11.2). The file is read on each
//!   request, so `p2psip ca config` takes effect at once.
//! - `POST /enroll` (and `POST /`) takes a `multipart/form-data` form (§11.3, RFC
//!   2388) with `username` and `password` (the account, in the clear over TLS),
//!   `nodeids` (how many Node-IDs; 1 if absent) and `csr` (a DER PKCS#10 request,
//!   `application/pkcs10`). It answers `200 OK` with `application/pkix-cert`: the
//!   bare DER certificate, nothing else (§11.3 returns "a single bare X.509
//!   certificate"). The certificate has an empty subject and, as its
//!   subjectAltName, the user's Node-IDs as `reload:` URIs and the user name
//!   `NAME@OVERLAY` as an rfc822Name ([`crate::accounts`]). The Node-IDs are random
//!   and a returning user gets the same ones.
//!
//! # Refusals
//!
//! §11.3 answers certificate processing errors with `403 Forbidden` and a
//! `text/plain` body holding one token. The token is the body's first line and an
//! explanation for people follows on the next, so a client that reads the first
//! line gets the token:
//!
//! | status | token (first line) | when |
//! | --- | --- | --- |
//! | 403 | `failed_authentication` | no such account, or the wrong password |
//! | 403 | `Node-IDs_not_available` | `nodeids` is 0 or more than the server gives (default 4) |
//! | 403 | `username_not_available` | the CSR asks for another user name than the account's |
//! | 403 | `bad_CSR` | the CSR is not PKCS#10, its signature does not verify, or its key is not ECDSA P-256 or RSA-2048+ |
//! | 400 | — | not multipart/form-data, a field missing or repeated, `nodeids` not a number, an illegal user name |
//! | 413 | — | the body is larger than the limit (64 KiB) |
//! | 429 | — | too many attempts: 10 a minute per account, 30 per client address; `Retry-After` says when to retry |
//!
//! Password checks (Argon2id) and signing run on the blocking thread pool; the
//! rate limits bound how much of it one client can use.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use reload_trust::Validity;
use reload_wire::NodeId;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::accounts::{Accounts, NodeIdStore, certificate_user, check_user_name};
use crate::ca::{ACCOUNTS_FILE, CONFIG_FILE, CaDir, CaError, NODE_IDS_FILE};
use crate::config::{CONTENT_TYPE, WELL_KNOWN_PATH};
use crate::files::pem_decode;
use crate::ratelimit::RateLimiter;

/// The content type of the certificate the server returns (§11.3, RFC 2585).
pub const CERT_CONTENT_TYPE: &str = "application/pkix-cert";
/// The content type of the `csr` form field (§11.3).
pub const CSR_CONTENT_TYPE: &str = "application/pkcs10";
/// The path enrollment requests are posted to.
pub const ENROLL_PATH: &str = "/enroll";
/// How long a connection may take to send a request's head.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long reading a request's form may take.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);
/// Most fields a form may have.
const MAX_FIELDS: usize = 16;

/// DER contents of the OID id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER contents of the OID prime256v1 (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The CA directory ([`crate::ca`]).
    pub dir: PathBuf,
    /// The address to listen on; port 0 picks one.
    pub listen: SocketAddr,
    /// The most Node-IDs one certificate gets (at least 1).
    pub max_node_ids: u32,
    /// How long issued certificates are valid.
    pub cert_lifetime: Duration,
    /// Enrollment attempts a minute per account.
    pub per_account_per_minute: u32,
    /// Enrollment attempts a minute per client address.
    pub per_ip_per_minute: u32,
    /// How many accounts and addresses the rate limits remember.
    pub max_tracked: usize,
    /// The largest request body, in bytes.
    pub max_body: usize,
}

impl ServerOptions {
    /// Defaults for the CA in `dir`: 127.0.0.1:8443, at most 4 Node-IDs, one-year
    /// certificates, 10 attempts a minute per account and 30 per address, bodies
    /// up to 64 KiB.
    pub fn new(dir: impl Into<PathBuf>) -> ServerOptions {
        ServerOptions {
            dir: dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            max_node_ids: 4,
            cert_lifetime: Duration::from_secs(365 * 86_400),
            per_account_per_minute: 10,
            per_ip_per_minute: 30,
            max_tracked: 10_000,
            max_body: 64 * 1024,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The CA directory.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The TLS configuration.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// Listening.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving.
    #[error("the server stopped: {0}")]
    Serve(String),
}

struct AppState {
    ca: CaDir,
    options: ServerOptions,
    per_ip: RateLimiter<IpAddr>,
    per_account: RateLimiter<String>,
    /// Serializes the read-modify-write of nodeids.toml.
    node_ids: Mutex<()>,
}

/// A running server.
#[derive(Debug)]
pub struct EnrollmentServer {
    local_addr: SocketAddr,
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl EnrollmentServer {
    /// Opens the CA directory, binds the address and starts serving on the current
    /// tokio runtime. Returns once the socket is bound.
    pub async fn start(options: ServerOptions) -> Result<EnrollmentServer, ServerError> {
        let ca = CaDir::open(&options.dir)?;
        let (chain, key) = ca.server_tls()?;
        let mut tls = rustls::ServerConfig::builder_with_provider(crate::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ServerError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(
                chain.into_iter().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let listen = options.listen;
        let listener =
            std::net::TcpListener::bind(listen).map_err(|source| ServerError::Listen { addr: listen, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| ServerError::Listen { addr: listen, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Listen { addr: listen, source })?;

        let overlay = ca.overlay().to_owned();
        let state = Arc::new(AppState {
            per_ip: RateLimiter::new(options.per_ip_per_minute, options.max_tracked),
            per_account: RateLimiter::new(options.per_account_per_minute, options.max_tracked),
            node_ids: Mutex::new(()),
            ca,
            options: options.clone(),
        });
        let app = Router::new()
            .route(WELL_KNOWN_PATH, get(serve_configuration))
            .route(ENROLL_PATH, post(enroll))
            .route("/", post(enroll))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(options.max_body))
            .with_state(state);

        let handle = Handle::new();
        let mut server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(tls)))
            .map_err(|source| ServerError::Listen { addr: listen, source })?
            .handle(handle.clone())
            // A client that connects and sends nothing, or sends its headers
            // slowly, is dropped rather than holding a connection forever.
            .first_request_timeout(REQUEST_HEAD_TIMEOUT);
        server.http_builder().http1().header_read_timeout(REQUEST_HEAD_TIMEOUT);
        let task = tokio::spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
        tracing::info!(%local_addr, overlay, "configuration and enrollment server listening");
        Ok(EnrollmentServer {
            local_addr,
            handle,
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https://ADDRESS`.
    pub fn url(&self) -> String {
        format!("https://{}", self.local_addr)
    }

    /// Something that stops the server from elsewhere (a signal handler) while
    /// [`EnrollmentServer::wait`] waits.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        ShutdownTrigger(self.handle.clone())
    }

    /// Serves until the server fails or is shut down.
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ServerError::Serve(e.to_string())),
            Err(e) => Err(ServerError::Serve(e.to_string())),
        }
    }

    /// Stops accepting, closes the connections, and waits for the server to end.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.handle.shutdown();
        self.wait().await
    }
}

/// Stops an [`EnrollmentServer`] ([`EnrollmentServer::shutdown_trigger`]).
#[derive(Clone, Debug)]
pub struct ShutdownTrigger(Handle<SocketAddr>);

impl ShutdownTrigger {
    /// Stops accepting and closes the connections; [`EnrollmentServer::wait`] then
    /// returns.
    pub fn shutdown(&self) {
        self.0.shutdown();
    }
}

/// A refusal, as the client sees it.
#[derive(Debug)]
enum Refusal {
    /// 400: the request is malformed.
    BadRequest(String),
    /// 403 with a §11.3 token.
    Forbidden { token: &'static str, detail: String },
    /// 413: the body is too large.
    TooLarge(String),
    /// 429: try again after this long.
    TooMany(Duration, &'static str),
    /// 500.
    Internal(String),
}

impl Refusal {
    fn forbidden(token: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal::Forbidden {
            token,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let text = |status: StatusCode, body: String| {
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                )],
                body,
            )
                .into_response()
        };
        match self {
            Refusal::BadRequest(d) => text(StatusCode::BAD_REQUEST, format!("{d}\n")),
            Refusal::Forbidden { token, detail } => text(StatusCode::FORBIDDEN, format!("{token}\n{detail}\n")),
            Refusal::TooLarge(d) => text(StatusCode::PAYLOAD_TOO_LARGE, format!("{d}\n")),
            Refusal::TooMany(wait, what) => {
                let secs = wait.as_secs().saturating_add(1);
                let mut r = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many enrollment attempts for this {what}; retry in {secs} s\n"),
                );
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            Refusal::Internal(d) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{d}\n")),
        }
    }
}

async fn not_found() -> Response {
    let mut r = Refusal::BadRequest(format!(
        "nothing here: GET {WELL_KNOWN_PATH} for the configuration, POST {ENROLL_PATH} to enroll"
    ))
    .into_response();
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// `GET /.well-known/reload-config` (§11.2).
async fn serve_configuration(State(st): State<Arc<AppState>>) -> Response {
    match tokio::fs::read(st.ca.path(CONFIG_FILE)).await {
        Ok(xml) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            xml,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the configuration document");
            Refusal::Internal("the configuration document cannot be read".into()).into_response()
        }
    }
}

/// The enrollment form's fields (§11.3).
struct Form {
    username: String,
    password: String,
    nodeids: Option<String>,
    csr: Vec<u8>,
}

fn form_error(e: MultipartError) -> Refusal {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Refusal::TooLarge("the request body is too large".into())
    } else {
        Refusal::BadRequest(format!("malformed multipart/form-data body: {}", e.body_text()))
    }
}

async fn read_form(mut multipart: Multipart) -> Result<Form, Refusal> {
    let mut username = None;
    let mut password = None;
    let mut nodeids = None;
    let mut csr = None;
    let mut fields = 0;
    while let Some(field) = multipart.next_field().await.map_err(form_error)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(Refusal::BadRequest(format!(
                "the form has more than {MAX_FIELDS} fields"
            )));
        }
        let name = field.name().unwrap_or("").to_owned();
        let data = field.bytes().await.map_err(form_error)?;
        let slot = match name.as_str() {
            "username" => &mut username,
            "password" => &mut password,
            "nodeids" => &mut nodeids,
            "csr" => &mut csr,
            _ => continue,
        };
        if slot.is_some() {
            return Err(Refusal::BadRequest(format!("the form field {name:?} appears twice")));
        }
        *slot = Some(data.to_vec());
    }
    let text = |v: Option<Vec<u8>>, name: &str| -> Result<Option<String>, Refusal> {
        v.map(|b| {
            String::from_utf8(b).map_err(|_| Refusal::BadRequest(format!("the form field {name:?} is not UTF-8")))
        })
        .transpose()
    };
    let missing = |name: &str| Refusal::BadRequest(format!("the form has no {name:?} field (RFC 6940 §11.3)"));
    Ok(Form {
        username: text(username, "username")?.ok_or_else(|| missing("username"))?,
        password: text(password, "password")?.ok_or_else(|| missing("password"))?,
        nodeids: text(nodeids, "nodeids")?,
        csr: csr.ok_or_else(|| missing("csr"))?,
    })
}

/// `POST /enroll` (§11.3).
async fn enroll(
    State(st): State<Arc<AppState>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match enroll_inner(st, client, multipart).await {
        Ok((der, user, ids)) => {
            tracing::info!(%client, user, node_ids = ?ids, "issued a certificate");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, HeaderValue::from_static(CERT_CONTENT_TYPE))],
                der,
            )
                .into_response()
        }
        Err(refusal) => {
            tracing::warn!(%client, ?refusal, "refused an enrollment");
            refusal.into_response()
        }
    }
}

async fn enroll_inner(
    st: Arc<AppState>,
    client: SocketAddr,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(Vec<u8>, String, Vec<NodeId>), Refusal> {
    st.per_ip
        .check(&client.ip(), Instant::now())
        .map_err(|wait| Refusal::TooMany(wait, "client address"))?;
    let multipart = multipart.map_err(|e| {
        Refusal::BadRequest(format!(
            "the request must be multipart/form-data (RFC 6940 §11.3): {}",
            e.body_text()
        ))
    })?;
    let form = tokio::time::timeout(FORM_TIMEOUT, read_form(multipart))
        .await
        .map_err(|_| Refusal::BadRequest("the request body took too long to arrive".into()))??;
    check_user_name(&form.username).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    st.per_account
        .check(&form.username, Instant::now())
        .map_err(|wait| Refusal::TooMany(wait, "account"))?;
    let count = match &form.nodeids {
        None => 1,
        Some(n) => n.trim().parse::<u32>().map_err(|_| {
            Refusal::BadRequest(format!(
                "the nodeids field must be a decimal number of Node-IDs, not {:?}",
                n.chars().take(20).collect::<String>()
            ))
        })?,
    };
    tokio::task::spawn_blocking(move || issue(&st, form, count))
        .await
        .map_err(|e| Refusal::Internal(format!("the request failed: {e}")))?
}

/// Authenticates, checks the request, gives Node-IDs and issues the certificate.
/// Runs on the blocking pool: Argon2 and signing are CPU work.
fn issue(st: &AppState, form: Form, count: u32) -> Result<(Vec<u8>, String, Vec<NodeId>), Refusal> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "enrollment failed");
        Refusal::Internal("the server could not complete the enrollment".into())
    };
    let accounts = Accounts::load(&st.ca.path(ACCOUNTS_FILE)).map_err(|e| internal(&e))?;
    if !accounts.authenticate(&form.username, &form.password) {
        return Err(Refusal::forbidden(
            "failed_authentication",
            "the user name and password do not match an account",
        ));
    }
    let max = st.options.max_node_ids.max(1);
    if count == 0 || count > max {
        return Err(Refusal::forbidden(
            "Node-IDs_not_available",
            format!("asked for {count} Node-IDs; this server gives 1 to {max}"),
        ));
    }
    let user = certificate_user(&form.username, st.ca.overlay());
    let csr = check_csr(&form.csr, &user)?;
    let ids = {
        let _guard = st.node_ids.lock().unwrap_or_else(|e| e.into_inner());
        let path = st.ca.path(NODE_IDS_FILE);
        let mut store = NodeIdStore::load(&path).map_err(|e| internal(&e))?;
        let (ids, added) = store.assign(&form.username, count as usize).map_err(|e| internal(&e))?;
        if added {
            store.save(&path).map_err(|e| internal(&e))?;
        }
        ids
    };
    let lifetime = i64::try_from(st.options.cert_lifetime.as_secs()).unwrap_or(i64::MAX);
    let der = st
        .ca
        .ca()
        .issue_from_csr(&csr, &ids, Some(&user), Validity::from_now(lifetime))
        .map_err(|e| Refusal::forbidden("bad_CSR", format!("the request cannot be signed: {e}")))?;
    Ok((der, user, ids))
}

/// Checks a PKCS#10 request (DER, or PEM): well-formed, self-signed by the key it
/// names, an ECDSA P-256 or RSA (2048 bits or more) key, and asking for no user
/// name but `user`. Returns the DER.
fn check_csr(data: &[u8], user: &str) -> Result<Vec<u8>, Refusal> {
    let bad = |d: String| Refusal::forbidden("bad_CSR", d);
    let der = if data.starts_with(b"-----BEGIN") {
        pem_decode(data, "CERTIFICATE REQUEST")
            .ok()
            .and_then(|v| v.into_iter().next())
            .ok_or_else(|| bad("the csr field is PEM but holds no CERTIFICATE REQUEST".into()))?
    } else {
        data.to_vec()
    };
    let (rest, csr) = X509CertificationRequest::from_der(&der).map_err(|e| {
        bad(format!(
            "the csr field is not a PKCS#10 certificate signing request: {e}"
        ))
    })?;
    if !rest.is_empty() {
        return Err(bad(format!(
            "{} bytes follow the certificate signing request",
            rest.len()
        )));
    }
    csr.verify_signature()
        .map_err(|_| bad("the request's signature does not verify with the key it names".into()))?;
    let spki = &csr.certification_request_info.subject_pki;
    let key_ok = match spki.parsed() {
        Ok(PublicKey::EC(_)) => {
            spki.algorithm.algorithm.as_bytes() == OID_EC_PUBLIC_KEY
                && spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .is_some_and(|oid| oid.as_bytes() == OID_P256)
        }
        Ok(PublicKey::RSA(rsa)) => rsa.key_size() >= 2048,
        _ => false,
    };
    if !key_ok {
        return Err(bad("the key must be ECDSA P-256 or RSA of 2048 bits or more".into()));
    }
    if let Some(extensions) = csr.requested_extensions() {
        for ext in extensions {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    if let GeneralName::RFC822Name(asked) = name
                        && *asked != user
                    {
                        return Err(Refusal::forbidden(
                            "username_not_available",
                            format!(
                                "the request asks for user name {:?}; this account's is {user:?}",
                                asked.chars().take(80).collect::<String>()
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(der)
}
