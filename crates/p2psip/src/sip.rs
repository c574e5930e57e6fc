//! The SIP front end of `p2psip peer` and `p2psip client` (RFC 7904 with a
//! registrar and proxy for unmodified phones, crate reload-sip).

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{Context, anyhow};
use clap::Args;
use reload_net::runtime::NodeHandle;
use reload_net::security::LinkSecurity;
use reload_net::tls::TlsLinks;
use reload_sip::frontend::{self, Frontend, FrontendConfig};
use reload_sip::usage::{DomainRestriction, SipUsage};

/// The SIP front end's settings.
#[derive(Args, Clone, Debug, Default)]
pub struct SipArgs {
    /// Run the SIP front end for phones on this address, UDP and TCP (without a
    /// value: 127.0.0.1:5060). Phones use it as registrar and outbound proxy.
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:5060", value_name = "ADDR")]
    pub sip: Option<SocketAddr>,
    /// Where other nodes' SIP connections arrive (TLS, offered by AppAttach);
    /// default: the node's own IP address, any free port.
    #[arg(long, value_name = "ADDR")]
    pub sip_overlay: Option<SocketAddr>,
    /// The digest password phones use to register and call as this node's user
    /// (the AOR in its certificate).
    #[arg(long, env = "P2PSIP_SIP_PASSWORD", hide_env_values = true)]
    pub sip_password: Option<String>,
    /// Conventional SIP: where requests for domains the overlay does not serve go.
    #[arg(long, value_name = "ADDR")]
    pub outbound_proxy: Option<SocketAddr>,
    /// Another user this node registers phones for (an office gateway): the
    /// user's enrolled data directory and the password of the user's phone,
    /// as DIR=PASSWORD. Registrations are signed with that user's certificate.
    #[arg(long = "sip-user", value_name = "DIR=PASSWORD")]
    pub sip_users: Vec<String>,
    /// Also take phones over TLS on this address (RFC 3261 §26.2), with the
    /// certificate of --sip-tls-cert and --sip-tls-key.
    #[arg(long, value_name = "ADDR", requires_all = ["sip_tls_cert", "sip_tls_key"])]
    pub sip_tls: Option<SocketAddr>,
    /// The front end's TLS certificate chain for phones (PEM).
    #[arg(long, value_name = "FILE")]
    pub sip_tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub sip_tls_key: Option<std::path::PathBuf>,
    /// A conventional SIP server (IP address) whose requests for overlay users
    /// are routed into the overlay without a digest challenge (gateway mode).
    #[arg(long = "sip-trusted", value_name = "IP")]
    pub sip_trusted: Vec<std::net::IpAddr>,
}

/// Starts the front end for a running node, if `args` asks for one.
pub async fn start(
    args: &SipArgs,
    handle: &NodeHandle,
    security: LinkSecurity,
    configuration: &reload_enroll::config::Configuration,
) -> anyhow::Result<Option<Frontend>> {
    let Some(phones) = args.sip else {
        return Ok(None);
    };
    let user = handle
        .user()
        .ok_or_else(|| anyhow!("this node's certificate names no user, so it cannot register phones"))?
        .to_owned();
    let password = args.sip_password.clone().ok_or_else(|| {
        anyhow!("--sip needs --sip-password (or P2PSIP_SIP_PASSWORD): the password of {user}'s phone")
    })?;
    let mut accounts = HashMap::from([(user, password)]);
    let mut signers = HashMap::new();
    for spec in &args.sip_users {
        let (dir, pw) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--sip-user wants DIR=PASSWORD, not {spec:?}"))?;
        let identity = reload_enroll::identity::NodeIdentity::load(std::path::Path::new(dir))
            .with_context(|| format!("loading the user enrolled in {dir}"))?;
        let aor = identity
            .user()
            .ok_or_else(|| anyhow!("the certificate in {dir} names no user"))?
            .to_owned();
        let signer = handle
            .user_signer(identity.credentials)
            .map_err(|e| anyhow!("the credentials in {dir}: {e}"))?;
        accounts.insert(aor.clone(), pw.to_owned());
        signers.insert(aor, signer);
    }
    let overlay = &configuration.instance_name;
    let domains = served_domains(configuration)?;
    let usage = SipUsage::with_restriction(handle.clone(), domains.clone());
    let max = usize::try_from(configuration.max_message_size).unwrap_or(usize::MAX);
    let tls = TlsLinks::new(security, max).context("setting up TLS for SIP between nodes")?;
    let phones_tls = match (&args.sip_tls, &args.sip_tls_cert, &args.sip_tls_key) {
        (Some(addr), Some(cert), Some(key)) => Some((*addr, phone_tls_config(cert, key)?)),
        _ => None,
    };
    let front = frontend::start(
        usage,
        tls,
        FrontendConfig {
            phones,
            overlay: args
                .sip_overlay
                .unwrap_or_else(|| SocketAddr::new(handle.local_addr().ip(), 0)),
            phones_tls,
            accounts,
            signers,
            trusted: args.sip_trusted.clone(),
            domains,
            realm: overlay.clone(),
            outbound_proxy: args.outbound_proxy,
        },
    )
    .await?;
    Ok(Some(front))
}

/// The AOR domains the overlay serves, as its configuration document's
/// SIP-REGISTRATION Kind says (RFC 7904 §3.4): without a `<sip:domain-restriction>`
/// element, any; with `enable="false"`, the overlay's own name; with
/// `enable="true"`, the domains its patterns match.
fn served_domains(configuration: &reload_enroll::config::Configuration) -> anyhow::Result<DomainRestriction> {
    let element = configuration
        .required_kinds
        .iter()
        .find(|k| k.id == reload_sip::usage::SIP_REGISTRATION)
        .and_then(|k| k.domain_restriction.as_ref())
        .map(|r| (r.enable, r.patterns.as_slice()));
    DomainRestriction::from_config(element, &configuration.instance_name)
        .map_err(|e| anyhow!("the configuration's SIP domain restriction: {e}"))
}

/// The TLS server configuration phones see: a certificate chain and key from
/// PEM files (a certificate phones trust, not the overlay's).
fn phone_tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<std::sync::Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("reading certificates from {}: {e}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow!("reading a private key from {}: {e}", key.display()))?;
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the phone TLS certificate and key")?;
    Ok(std::sync::Arc::new(config))
}
