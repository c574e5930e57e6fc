//! `p2psip ca`, `p2psip enroll-server` and `p2psip enroll`: an overlay's
//! certificate authority and configuration document (RFC 6940 §11.1), its
//! configuration and enrollment server (§11.2, §11.3), and a node's enrollment.
//! The work is reload-enroll's; this is the command line around it.

use std::io::{BufRead, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{ArgAction, Args, Subcommand, ValueEnum};
use reload_enroll::ca::{CaDir, CaInit, ROOT_CERT};
use reload_enroll::client::{EnrollOptions, ServerTrust, enroll, fingerprint};
use reload_enroll::config::{DEFAULT_BOOTSTRAP_PORT, DEFAULT_MAX_MESSAGE_SIZE, LinkProtocol, WELL_KNOWN_PATH};
use reload_enroll::files::{PEM_CERTIFICATE, pem_decode};
use reload_enroll::server::{EnrollmentServer, ServerOptions};
use reload_trust::KeyType;
use reload_wire::hex;

/// The overlay's certificate authority and configuration document.
#[derive(Args)]
pub struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Makes a CA directory: root key and certificate, the enrollment server's TLS
    /// certificate, and a signed configuration document (sequence 1).
    Init(CaInitArgs),
    /// Adds an enrollment account (or, with --replace, changes its password).
    AddUser(AddUserArgs),
    /// Changes the configuration document and signs it again with the next sequence
    /// number.
    Config(CaConfigArgs),
}

/// Overlay link protocols, by short name (RFC 6940 §6.5.1.1, §11.1).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Link {
    /// TLS-TCP-FH-NO-ICE: TLS over TCP with framing, no ICE.
    Tls,
    /// DTLS-UDP-SR-NO-ICE: DTLS over UDP with simple reliability, no ICE.
    Dtls,
    /// DTLS-UDP-SR: DTLS over UDP with simple reliability and ICE.
    DtlsIce,
}

impl Link {
    fn protocol(self) -> LinkProtocol {
        match self {
            Link::Tls => LinkProtocol::TlsTcpFhNoIce,
            Link::Dtls => LinkProtocol::DtlsUdpSrNoIce,
            Link::DtlsIce => LinkProtocol::DtlsUdpSr,
        }
    }
}

/// Key types, by short name.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Key {
    /// ECDSA on P-256 (the default).
    Ecdsa,
    /// RSA-2048 (RFC 6940's mandatory algorithm; slower).
    Rsa,
}

impl Key {
    fn key_type(self) -> KeyType {
        match self {
            Key::Ecdsa => KeyType::EcdsaP256,
            Key::Rsa => KeyType::Rsa2048,
        }
    }
}

/// A bootstrap node: `IP:PORT`, `[IPv6]:PORT`, or an IP address alone (port 6084).
/// RFC 6940 §11.1 gives bootstrap nodes as IP addresses, not host names.
fn parse_bootstrap(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_BOOTSTRAP_PORT));
    }
    Err(format!(
        "{s:?} is not IP:PORT or an IP address (RFC 6940 §11.1 bootstrap nodes are IP addresses)"
    ))
}

#[derive(Args)]
struct CaInitArgs {
    /// The overlay name (the configuration's instance-name), a DNS name.
    #[arg(long)]
    overlay: String,
    /// The CA directory to make (mode 0700).
    #[arg(long)]
    dir: PathBuf,
    /// An enrollment-server URL (https); repeatable. Default: https://localhost:8443/enroll.
    #[arg(long = "enrollment-url", value_name = "URL")]
    enrollment_urls: Vec<String>,
    /// A bootstrap node, IP:PORT; repeatable.
    #[arg(long, value_name = "IP:PORT", value_parser = parse_bootstrap)]
    bootstrap: Vec<SocketAddr>,
    /// A link protocol peers accept; repeatable. Default: tls.
    #[arg(long, value_enum)]
    link: Vec<Link>,
    /// Permit self-signed certificates (RFC 6940 §11.3.1; for tests and closed networks).
    #[arg(long)]
    self_signed_permitted: bool,
    /// Whether clients (nodes that do not route) are permitted.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    clients_permitted: bool,
    /// The root key's type.
    #[arg(long, value_enum, default_value = "ecdsa")]
    key: Key,
    /// The largest message in the overlay, in bytes.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_MESSAGE_SIZE)]
    max_message_size: u32,
    /// Another DNS name or IP address for the enrollment server's TLS certificate
    /// (besides localhost, 127.0.0.1, ::1 and the overlay name); repeatable.
    #[arg(long = "server-name", value_name = "NAME")]
    server_names: Vec<String>,
    /// An AOR domain the overlay serves besides its own name (RFC 7904 §3.4): a
    /// POSIX extended regular expression over the whole domain, such as
    /// 'dht\.example\.com' or '.*\.example\.org'; repeatable. Storing peers refuse
    /// registrations of other domains. Default: the overlay's own name only.
    #[arg(long = "sip-domain", value_name = "PATTERN")]
    sip_domains: Vec<String>,
}

#[derive(Args)]
struct Password {
    /// The password (visible to other local users in the process list; prefer
    /// --password-stdin).
    #[arg(long, conflicts_with = "password_stdin", required_unless_present = "password_stdin")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

impl Password {
    fn read(&self) -> Result<String> {
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let p = line.trim_end_matches(['\n', '\r']).to_owned();
        if p.is_empty() {
            bail!("no password on standard input");
        }
        Ok(p)
    }
}

#[derive(Args)]
struct AddUserArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// The account name: 1 to 64 of a-z, 0-9, '.', '_', '-'; certificates name the
    /// user NAME@OVERLAY.
    #[arg(long)]
    user: String,
    #[command(flatten)]
    password: Password,
    /// Replace the password of an existing account.
    #[arg(long)]
    replace: bool,
}

#[derive(Args)]
struct CaConfigArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// Replace the bootstrap nodes with these (IP:PORT); repeatable.
    #[arg(long, value_name = "IP:PORT", value_parser = parse_bootstrap)]
    bootstrap: Vec<SocketAddr>,
    /// Remove every bootstrap node.
    #[arg(long, conflicts_with = "bootstrap")]
    no_bootstrap: bool,
    /// Replace the link protocols with these; repeatable.
    #[arg(long, value_enum)]
    link: Vec<Link>,
    /// Replace the enrollment-server URLs with these; repeatable.
    #[arg(long = "enrollment-url", value_name = "URL")]
    enrollment_urls: Vec<String>,
    /// Whether self-signed certificates are permitted.
    #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
    self_signed_permitted: Option<bool>,
    /// Whether clients are permitted.
    #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
    clients_permitted: Option<bool>,
    /// The largest message in the overlay, in bytes.
    #[arg(long, value_name = "N")]
    max_message_size: Option<u32>,
}

/// Runs `p2psip ca ...`.
pub fn run_ca(args: CaArgs) -> Result<()> {
    match args.command {
        CaCommand::Init(a) => ca_init(a),
        CaCommand::AddUser(a) => {
            let ca = CaDir::open(&a.dir).with_context(|| format!("opening the CA in {}", a.dir.display()))?;
            let password = a.password.read()?;
            ca.add_user(&a.user, &password, a.replace)?;
            println!(
                "{} user {} (certificates name {}@{})",
                if a.replace { "updated" } else { "added" },
                a.user,
                a.user,
                ca.overlay()
            );
            Ok(())
        }
        CaCommand::Config(a) => {
            let ca = CaDir::open(&a.dir).with_context(|| format!("opening the CA in {}", a.dir.display()))?;
            let config = ca.update_configuration(|c| {
                if !a.bootstrap.is_empty() || a.no_bootstrap {
                    c.bootstrap_nodes = a.bootstrap.clone();
                }
                if !a.link.is_empty() {
                    c.link_protocols = a.link.iter().map(|l| l.protocol()).collect();
                    c.no_ice = c.link_protocols.iter().all(LinkProtocol::is_no_ice);
                }
                if !a.enrollment_urls.is_empty() {
                    c.enrollment_servers = a.enrollment_urls.clone();
                }
                if let Some(v) = a.self_signed_permitted {
                    c.self_signed_permitted = v;
                }
                if let Some(v) = a.clients_permitted {
                    c.clients_permitted = v;
                }
                if let Some(v) = a.max_message_size {
                    c.max_message_size = v;
                }
            })?;
            println!(
                "wrote {} (sequence {}, signed by the root)",
                ca.path(reload_enroll::ca::CONFIG_FILE).display(),
                config.sequence
            );
            Ok(())
        }
    }
}

fn ca_init(a: CaInitArgs) -> Result<()> {
    let init = CaInit {
        overlay: a.overlay,
        enrollment_urls: a.enrollment_urls,
        bootstrap: a.bootstrap,
        links: a.link.iter().map(|l| l.protocol()).collect(),
        self_signed_permitted: a.self_signed_permitted,
        clients_permitted: a.clients_permitted,
        key_type: a.key.key_type(),
        max_message_size: a.max_message_size,
        server_names: a.server_names,
        sip_domains: a.sip_domains,
    };
    let ca = CaDir::init(&a.dir, &init)?;
    let config = ca.configuration()?;
    println!("made the CA for overlay {} in {}", ca.overlay(), ca.dir().display());
    println!("  root certificate: {}", ca.path(ROOT_CERT).display());
    println!("  root SHA-256 fingerprint: {}", fingerprint(ca.root_der()));
    println!("  enrollment server(s): {}", config.enrollment_servers.join(", "));
    println!(
        "next: p2psip ca add-user --dir {} --user NAME --password-stdin",
        ca.dir().display()
    );
    Ok(())
}

/// Starts the tracing subscriber for the server's logs, on standard error.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// The configuration and enrollment server.
#[derive(Args)]
pub struct EnrollServerArgs {
    /// The CA directory.
    #[arg(long)]
    dir: PathBuf,
    /// The address to listen on (port 0 picks a free one; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The most Node-IDs one certificate gets.
    #[arg(long, value_name = "N", default_value_t = 4)]
    max_nodeids: u32,
    /// How long issued certificates are valid, in days.
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    cert_days: u64,
}

/// Runs `p2psip enroll-server`: serves until interrupted (SIGINT or SIGTERM).
pub fn run_enroll_server(args: EnrollServerArgs) -> Result<()> {
    init_logging();
    let mut options = ServerOptions::new(&args.dir);
    options.listen = args.listen;
    options.max_node_ids = args.max_nodeids.max(1);
    options.cert_lifetime = Duration::from_secs(args.cert_days.max(1).saturating_mul(86_400));
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let server = EnrollmentServer::start(options).await?;
        // One line on standard output, for scripts and tests to read the port from.
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on https://{}", server.local_addr())?;
        out.flush()?;
        drop(out);
        let trigger = server.shutdown_trigger();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping");
            trigger.shutdown();
        });
        server.wait().await?;
        Ok(())
    })
}

/// Waits for SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Enrolls this node in an overlay.
#[derive(Args)]
pub struct EnrollArgs {
    /// The configuration document's URL, e.g. https://HOST:8443/.well-known/reload-config.
    #[arg(long, value_name = "URL")]
    config_url: String,
    /// The account name.
    #[arg(long)]
    user: String,
    #[command(flatten)]
    password: Password,
    /// The node's data directory (made mode 0700): reload-config.xml, key.pem, cert.pem.
    #[arg(long)]
    data_dir: PathBuf,
    /// The overlay's root certificate (PEM or DER), obtained out of band.
    #[arg(long, value_name = "ROOT.crt", conflicts_with = "trust_on_first_use")]
    root: Option<PathBuf>,
    /// Without --root: accept the root certificate the first configuration names
    /// and prints its fingerprint to compare with the operator's (trust on first
    /// use); later runs trust the saved configuration.
    #[arg(long)]
    trust_on_first_use: bool,
    /// The node's key type.
    #[arg(long, value_enum, default_value = "ecdsa")]
    key: Key,
    /// How many Node-IDs to ask for.
    #[arg(long, value_name = "N", default_value_t = 1)]
    nodeids: u32,
}

/// Reads a root certificate, PEM or DER.
fn read_root(path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"-----BEGIN") {
        pem_decode(&bytes, PEM_CERTIFICATE)
            .map_err(anyhow::Error::msg)?
            .into_iter()
            .next()
            .with_context(|| format!("{} holds no CERTIFICATE", path.display()))
    } else {
        Ok(bytes)
    }
}

/// Runs `p2psip enroll`.
pub fn run_enroll(args: EnrollArgs) -> Result<()> {
    let trust = match (&args.root, args.trust_on_first_use) {
        (Some(path), _) => ServerTrust::Roots(vec![read_root(path)?]),
        (None, true) => ServerTrust::TrustOnFirstUse,
        (None, false) => {
            if !args.data_dir.join(reload_enroll::identity::CONFIG_FILE).exists() {
                bail!(
                    "give the overlay's root certificate with --root ROOT.crt, or --trust-on-first-use \
                     to accept the one the configuration names"
                );
            }
            // Re-enrolling: the saved configuration's roots are trusted.
            ServerTrust::Saved
        }
    };
    if !args.config_url.contains("/.well-known/") {
        eprintln!("note: configuration servers serve the document at {WELL_KNOWN_PATH} (RFC 6940 §11.2)");
    }
    let options = EnrollOptions {
        config_url: args.config_url,
        user: args.user,
        password: args.password.read()?,
        data_dir: args.data_dir,
        trust,
        key_type: args.key.key_type(),
        node_ids: args.nodeids,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let enrolled = runtime.block_on(enroll(&options))?;
    let id = &enrolled.identity;
    println!(
        "enrolled as {} in overlay {}",
        id.user().unwrap_or("(no user name)"),
        id.configuration.instance_name
    );
    for n in id.node_ids() {
        println!("  Node-ID: {}", hex::encode(n.as_bytes()));
    }
    println!(
        "  certificate valid until {} (Unix time)",
        id.credentials.cert_info().not_after
    );
    println!("  data directory: {}", options.data_dir.display());
    for f in &enrolled.root_fingerprints {
        println!("  root SHA-256 fingerprint: {f}");
    }
    if enrolled.trusted_on_first_use {
        println!(
            "  the root was trusted on first use: compare its fingerprint with the one the overlay's operator \
             published before relying on it"
        );
    }
    Ok(())
}
