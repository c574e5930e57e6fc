//! A CA directory: everything an overlay's operator keeps (RFC 6940 §11.1, §11.3).
//!
//! ```text
//! DIR/                 mode 0700
//!   root.key           the root CA's private key, PKCS#8 PEM, mode 0600
//!   root.crt           the root certificate, PEM: the configuration's root-cert
//!   server.key         the HTTPS server's private key, PKCS#8 PEM, mode 0600
//!   server.crt         its certificate, PEM, issued by the root for localhost,
//!                      127.0.0.1, ::1, the overlay name and any --server-name
//!   reload-config.xml  the configuration document, signed with the root key
//!   accounts.toml      user name -> Argon2id password hash, mode 0600 (ca add-user)
//!   nodeids.toml       user name -> Node-IDs given, mode 0600 (the server writes it)
//! ```
//!
//! The root key signs the configuration and its kinds (see [`crate::config`] for
//! why) and issues every node certificate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use reload_core::storage::AccessPolicy;
use reload_trust::{KeyType, PrivateKey, TestCa, TrustError, Validity, unix_now};
use reload_wire::{DataModel, KindId};

use crate::accounts::{AccountError, Accounts};
use crate::config::{
    ConfigDocument, ConfigError, ConfigSigner, ConfigTrust, Configuration, DomainRestrictionSpec, KindSpec,
    LinkProtocol, MAX_DOCUMENT_SIZE,
};
use crate::files::{
    FileError, PEM_CERTIFICATE, PEM_PRIVATE_KEY, PRIVATE_FILE, PUBLIC_FILE, create_private_dir, pem_encode,
    read_limited, read_pem, write_atomic,
};

/// The root CA's private key.
pub const ROOT_KEY: &str = "root.key";
/// The root certificate.
pub const ROOT_CERT: &str = "root.crt";
/// The HTTPS server's private key.
pub const SERVER_KEY: &str = "server.key";
/// The HTTPS server's certificate.
pub const SERVER_CERT: &str = "server.crt";
/// The signed configuration document.
pub const CONFIG_FILE: &str = "reload-config.xml";
/// The accounts.
pub const ACCOUNTS_FILE: &str = "accounts.toml";
/// The Node-IDs given to users.
pub const NODE_IDS_FILE: &str = "nodeids.toml";

/// How long the root certificate is valid: ten years.
const ROOT_LIFETIME: i64 = 10 * 365 * 86_400;
/// How long the HTTPS server's certificate is valid: two years.
const SERVER_LIFETIME: i64 = 2 * 365 * 86_400;
/// How long a configuration is valid (its `expiration`): a year; `ca config`
/// renews it.
const CONFIG_LIFETIME: i64 = 365 * 86_400;
/// The enrollment URL when none is given: the server's default address.
pub const DEFAULT_ENROLLMENT_URL: &str = "https://localhost:8443/enroll";

/// What can go wrong with a CA directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// `ca init` on a directory that already holds a CA.
    #[error("{} already holds a CA (it has {ROOT_KEY}); use another directory", .0.display())]
    Exists(PathBuf),
    /// The overlay name cannot be used.
    #[error(
        "overlay name {0:?}: use a DNS name (letters, digits, '-' and '.', labels of 1 to 63 characters), since it goes into certificates and reload: URIs"
    )]
    OverlayName(String),
    /// A server name cannot be used.
    #[error("server name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    /// A SIP domain pattern that storing peers could not use (RFC 7904 §3.4).
    #[error(transparent)]
    SipDomain(#[from] reload_core::storage::PatternError),
    /// The configuration document.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Keys and certificates.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// Accounts.
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// The settings of a new CA and its first configuration (`p2psip ca init`).
#[derive(Clone, Debug)]
pub struct CaInit {
    /// The overlay name (`instance-name`).
    pub overlay: String,
    /// `enrollment-server` URLs; [`DEFAULT_ENROLLMENT_URL`] if none.
    pub enrollment_urls: Vec<String>,
    /// `bootstrap-node`s.
    pub bootstrap: Vec<SocketAddr>,
    /// `overlay-link-protocol`s; none means TLS-TCP-FH-NO-ICE.
    pub links: Vec<LinkProtocol>,
    /// `self-signed-permitted` (with the sha256 digest).
    pub self_signed_permitted: bool,
    /// `clients-permitted`.
    pub clients_permitted: bool,
    /// The root key's type.
    pub key_type: KeyType,
    /// `max-message-size`.
    pub max_message_size: u32,
    /// More DNS names or IP addresses for the HTTPS server's certificate.
    pub server_names: Vec<String>,
    /// AOR domains the overlay serves besides its own name, as RFC 7904 §3.4
    /// patterns (POSIX extended regular expressions over the whole domain). None:
    /// the overlay's own name only (`enable="false"`).
    pub sip_domains: Vec<String>,
}

impl CaInit {
    /// Defaults for `overlay`: ECDSA P-256, TLS over TCP without ICE, clients
    /// permitted, no self-signed certificates, the RFC's message size.
    pub fn new(overlay: &str) -> CaInit {
        CaInit {
            overlay: overlay.to_owned(),
            enrollment_urls: Vec::new(),
            bootstrap: Vec::new(),
            links: Vec::new(),
            self_signed_permitted: false,
            clients_permitted: true,
            key_type: KeyType::EcdsaP256,
            max_message_size: crate::config::DEFAULT_MAX_MESSAGE_SIZE,
            server_names: Vec::new(),
            sip_domains: Vec::new(),
        }
    }
}

/// Whether `name` is a DNS name p2psip accepts as an overlay name.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The Kind-ID of p2psip's general data Kind, from the private-use range
/// (RFC 6940 §14.6: 0xF0000001 to 0xFFFFFFFE, defined by the configuration
/// document): single values of up to 4 KiB, written under NODE-MULTIPLE (§7.3.4)
/// so that each node has 255 Resource-IDs of its own — what `p2psip put` uses.
pub const DATA_KIND: KindId = KindId(0xF000_0001);

/// The Kinds every p2psip overlay requires: SIP-REGISTRATION (RFC 7904), RFC
/// 6940's own, and the general data Kind ([`DATA_KIND`]), with the limits p2psip uses.
/// SIP-REGISTRATION admits AORs of the overlay's own name only
/// (`<sip:domain-restriction enable="false"/>`, RFC 7904 §3.4): users are enrolled
/// as `user@overlay`, and other domains go to conventional SIP.
pub fn default_kinds() -> Vec<KindSpec> {
    let mut kinds: Vec<KindSpec> = [
        ("SIP-REGISTRATION", 16, 2048),
        ("CERTIFICATE_BY_NODE", 10, 8192),
        ("CERTIFICATE_BY_USER", 10, 8192),
        ("TURN-SERVICE", 1, 100),
    ]
    .into_iter()
    .filter_map(|(name, count, size)| KindSpec::registered(name, count, size))
    .collect();
    for kind in kinds.iter_mut().filter(|k| k.id == KindId::SIP_REGISTRATION) {
        kind.domain_restriction = Some(DomainRestrictionSpec {
            enable: false,
            patterns: Vec::new(),
        });
    }
    kinds.push(KindSpec::private(
        DATA_KIND.0,
        DataModel::Single,
        AccessPolicy::NodeMultiple { max: 255 },
        1,
        4096,
    ));
    kinds
}

/// An opened CA directory.
pub struct CaDir {
    dir: PathBuf,
    overlay: String,
    ca: TestCa,
    signer: ConfigSigner,
}

impl std::fmt::Debug for CaDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaDir")
            .field("dir", &self.dir)
            .field("overlay", &self.overlay)
            .finish_non_exhaustive()
    }
}

impl CaDir {
    /// Makes a new CA in `dir` (created, mode 0700): the root key and certificate,
    /// the HTTPS server's key and certificate, and the first configuration
    /// (sequence 1), signed. Refuses a directory that already holds a CA.
    pub fn init(dir: &Path, init: &CaInit) -> Result<CaDir, CaError> {
        let overlay = init.overlay.to_ascii_lowercase();
        if !is_dns_name(&overlay) {
            return Err(CaError::OverlayName(init.overlay.clone()));
        }
        if dir.join(ROOT_KEY).exists() {
            return Err(CaError::Exists(dir.to_owned()));
        }
        for p in &init.sip_domains {
            reload_core::storage::DomainPattern::new(p)?;
        }
        let mut dns = vec!["localhost".to_owned(), overlay.clone()];
        let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
        for name in &init.server_names {
            if let Ok(ip) = name.parse::<IpAddr>() {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            } else if is_dns_name(name) {
                let name = name.to_ascii_lowercase();
                if !dns.contains(&name) {
                    dns.push(name);
                }
            } else {
                return Err(CaError::ServerName(name.clone()));
            }
        }
        create_private_dir(dir)?;

        let root_key = PrivateKey::generate(init.key_type)?;
        let root_pkcs8 = root_key.pkcs8_der().to_vec();
        let ca = TestCa::with_key(&overlay, root_key, Validity::from_now(ROOT_LIFETIME))?;
        let root_der = ca.root_der().to_vec();
        let server_key = PrivateKey::generate(KeyType::EcdsaP256)?;
        let server_der = ca.issue_tls_server(&server_key, &dns, &ips, Validity::from_now(SERVER_LIFETIME))?;

        write_atomic(
            &dir.join(ROOT_KEY),
            pem_encode(PEM_PRIVATE_KEY, &root_pkcs8).as_bytes(),
            PRIVATE_FILE,
        )?;
        write_atomic(
            &dir.join(ROOT_CERT),
            pem_encode(PEM_CERTIFICATE, &root_der).as_bytes(),
            PUBLIC_FILE,
        )?;
        write_atomic(
            &dir.join(SERVER_KEY),
            pem_encode(PEM_PRIVATE_KEY, server_key.pkcs8_der()).as_bytes(),
            PRIVATE_FILE,
        )?;
        write_atomic(
            &dir.join(SERVER_CERT),
            pem_encode(PEM_CERTIFICATE, &server_der).as_bytes(),
            PUBLIC_FILE,
        )?;

        let signer = ConfigSigner::new(PrivateKey::from_pkcs8_der(&root_pkcs8)?, vec![root_der.clone()])?;
        let ca_dir = CaDir {
            dir: dir.to_owned(),
            overlay: overlay.clone(),
            ca,
            signer,
        };

        let mut config = Configuration::new(&overlay);
        config.sequence = 1;
        config.root_certs = vec![root_der];
        config.enrollment_servers = if init.enrollment_urls.is_empty() {
            vec![DEFAULT_ENROLLMENT_URL.to_owned()]
        } else {
            init.enrollment_urls.clone()
        };
        config.bootstrap_nodes = init.bootstrap.clone();
        config.link_protocols = if init.links.is_empty() {
            vec![LinkProtocol::TlsTcpFhNoIce]
        } else {
            init.links.clone()
        };
        config.no_ice = config.link_protocols.iter().all(LinkProtocol::is_no_ice);
        config.self_signed_permitted = init.self_signed_permitted;
        config.clients_permitted = init.clients_permitted;
        config.max_message_size = init.max_message_size;
        // reload-core's defaults, written out so the document says what peers do.
        config.chord_update_interval = Some(600);
        config.chord_ping_interval = Some(3600);
        config.required_kinds = default_kinds();
        if !init.sip_domains.is_empty() {
            // enable="true" admits only what the patterns match, so the overlay's own
            // name, the domain of the users this CA enrolls, is the first pattern.
            let mut patterns = vec![init.overlay.to_ascii_lowercase().replace('.', "\\.")];
            patterns.extend(init.sip_domains.iter().map(|p| p.trim().to_owned()));
            for kind in config
                .required_kinds
                .iter_mut()
                .filter(|k| k.id == KindId::SIP_REGISTRATION)
            {
                kind.domain_restriction = Some(DomainRestrictionSpec {
                    enable: true,
                    patterns: patterns.clone(),
                });
            }
        }
        ca_dir.write_configuration(&mut config)?;
        Ok(ca_dir)
    }

    /// Opens the CA in `dir`: reads the root key and certificate and the overlay name
    /// from the configuration, and checks that they belong together.
    pub fn open(dir: &Path) -> Result<CaDir, CaError> {
        let key_der = first_block(&dir.join(ROOT_KEY), PEM_PRIVATE_KEY)?;
        let root_der = first_block(&dir.join(ROOT_CERT), PEM_CERTIFICATE)?;
        let xml = read_limited(&dir.join(CONFIG_FILE), MAX_DOCUMENT_SIZE)?;
        let config = verify_own(&xml, &root_der)?;
        let overlay = config.instance_name.to_ascii_lowercase();
        let ca = TestCa::from_root(&overlay, PrivateKey::from_pkcs8_der(&key_der)?, root_der.clone())?;
        let signer = ConfigSigner::new(PrivateKey::from_pkcs8_der(&key_der)?, vec![root_der])?;
        Ok(CaDir {
            dir: dir.to_owned(),
            overlay,
            ca,
            signer,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The overlay name.
    pub fn overlay(&self) -> &str {
        &self.overlay
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        self.ca.root_der()
    }

    /// The certificate authority, to issue node certificates with.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The path of a file in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The configuration document as saved (the exact bytes the server serves).
    pub fn configuration_xml(&self) -> Result<Vec<u8>, CaError> {
        Ok(read_limited(&self.path(CONFIG_FILE), MAX_DOCUMENT_SIZE)?)
    }

    /// The current configuration, verified against the root. Checked without
    /// regard to its expiration, so that an expired one can be renewed.
    pub fn configuration(&self) -> Result<Configuration, CaError> {
        verify_own(&self.configuration_xml()?, self.root_der())
    }

    /// Changes the configuration with `change`, then writes it with the next
    /// sequence number and a renewed expiration, signed (`p2psip ca config`).
    pub fn update_configuration(&self, change: impl FnOnce(&mut Configuration)) -> Result<Configuration, CaError> {
        let mut config = self.configuration()?;
        change(&mut config);
        // §11.1: the sequence increases, up to 2^16-2.
        config.sequence = config.sequence.saturating_add(1).min(u16::MAX - 1);
        self.write_configuration(&mut config)?;
        Ok(config)
    }

    /// Signs `config` (renewing its expiration) and writes it atomically.
    fn write_configuration(&self, config: &mut Configuration) -> Result<(), CaError> {
        config.expiration = Some(unix_now().saturating_add(CONFIG_LIFETIME));
        let xml = config.to_document(Some(&self.signer))?;
        write_atomic(&self.path(CONFIG_FILE), xml.as_bytes(), PUBLIC_FILE)?;
        Ok(())
    }

    /// Adds an account (`p2psip ca add-user`), or replaces its password if `replace`.
    pub fn add_user(&self, user: &str, password: &str, replace: bool) -> Result<(), CaError> {
        let path = self.path(ACCOUNTS_FILE);
        let mut accounts = Accounts::load(&path)?;
        accounts.add(user, password, replace)?;
        accounts.save(&path)?;
        Ok(())
    }

    /// The HTTPS server's certificate chain (DER, the server's first) and its
    /// PKCS#8 private key.
    pub fn server_tls(&self) -> Result<(Vec<Vec<u8>>, Vec<u8>), CaError> {
        let chain = read_pem(&self.path(SERVER_CERT), PEM_CERTIFICATE)?;
        let key = first_block(&self.path(SERVER_KEY), PEM_PRIVATE_KEY)?;
        Ok((chain, key))
    }
}

/// The CA's own configuration document, verified against its root but not against
/// the clock, so that an expired one can still be opened and renewed.
fn verify_own(xml: &[u8], root_der: &[u8]) -> Result<Configuration, CaError> {
    let roots = [root_der.to_vec()];
    let doc = ConfigDocument::parse(xml)?;
    let entry = doc.entry(None)?;
    let when = entry
        .configuration()
        .expiration
        .map_or(unix_now(), |e| e.min(unix_now()));
    Ok(entry.verify(ConfigTrust::Roots(&roots), when)?)
}

/// The first PEM block of `tag` in `path`.
fn first_block(path: &Path, tag: &str) -> Result<Vec<u8>, FileError> {
    read_pem(path, tag)?
        .into_iter()
        .next()
        .ok_or_else(|| FileError::invalid(path, format!("holds no PEM block \"{tag}\"")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::files::mode_of;

    #[test]
    fn sip_domains_become_the_domain_restriction() {
        let tmp = tempfile::tempdir().unwrap();
        let sip = KindId::SIP_REGISTRATION;
        let node = reload_wire::NodeId([3; 16]);
        // By default the overlay's own name only (RFC 7904 §3.4, enable="false").
        let ca = CaDir::init(&tmp.path().join("a"), &CaInit::new("overlay.example.org")).unwrap();
        let c = ca.configuration().unwrap();
        let r = c.node_config(node).kinds.domain_restriction(sip).clone();
        assert!(r.admits_name("alice@overlay.example.org"));
        assert!(!r.admits_name("alice@dht.example.com"));
        // --sip-domain: the overlay's name and the patterns (enable="true").
        let mut init = CaInit::new("overlay.example.org");
        init.sip_domains = vec![r"dht\.example\.com".into(), r".*\.example\.net".into()];
        let ca = CaDir::init(&tmp.path().join("b"), &init).unwrap();
        let c = CaDir::open(ca.dir()).unwrap().configuration().unwrap();
        let spec = c.required_kinds.iter().find(|k| k.id == sip).unwrap();
        assert_eq!(
            spec.domain_restriction,
            Some(DomainRestrictionSpec {
                enable: true,
                patterns: vec![
                    r"overlay\.example\.org".into(),
                    r"dht\.example\.com".into(),
                    r".*\.example\.net".into()
                ],
            })
        );
        let r = c.node_config(node).kinds.domain_restriction(sip).clone();
        for ok in [
            "alice@overlay.example.org",
            "bob@dht.example.com",
            "carol@a.example.net",
        ] {
            assert!(r.admits_name(ok), "{ok}");
        }
        assert!(!r.admits_name("mallory@overlayxexample.org"));
        // A pattern storing peers could not use is refused before anything is made.
        init.sip_domains = vec!["(dht|sip)\\.example".into()];
        assert!(matches!(
            CaDir::init(&tmp.path().join("c"), &init),
            Err(CaError::SipDomain(_))
        ));
        assert!(!tmp.path().join("c").exists());
    }

    #[test]
    fn init_makes_a_ca_that_opens_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let mut init = CaInit::new("Overlay.Example.org");
        init.bootstrap = vec!["127.0.0.1:6084".parse().unwrap()];
        init.server_names = vec!["enroll.example.org".into(), "192.0.2.9".into()];
        let ca = CaDir::init(&dir, &init).unwrap();
        assert_eq!(ca.overlay(), "overlay.example.org");
        assert_eq!(mode_of(&dir).unwrap(), 0o700);
        assert_eq!(mode_of(&dir.join(ROOT_KEY)).unwrap(), 0o600);
        assert_eq!(mode_of(&dir.join(SERVER_KEY)).unwrap(), 0o600);

        let ca = CaDir::open(&dir).unwrap();
        let c = ca.configuration().unwrap();
        assert_eq!(c.sequence, 1);
        assert_eq!(c.instance_name, "overlay.example.org");
        assert_eq!(c.enrollment_servers, vec![DEFAULT_ENROLLMENT_URL.to_owned()]);
        assert_eq!(c.link_protocols, vec![LinkProtocol::TlsTcpFhNoIce]);
        assert!(c.no_ice);
        assert_eq!(c.required_kinds.len(), 5);
        assert!(c.required_kinds.iter().any(|k| k.id == DATA_KIND));

        let c = ca
            .update_configuration(|c| c.bootstrap_nodes = vec!["127.0.0.1:7000".parse().unwrap()])
            .unwrap();
        assert_eq!(c.sequence, 2);
        assert_eq!(CaDir::open(&dir).unwrap().configuration().unwrap(), c);

        assert!(matches!(CaDir::init(&dir, &init), Err(CaError::Exists(_))));
        assert!(matches!(
            CaDir::init(&tmp.path().join("x"), &CaInit::new("bad name")),
            Err(CaError::OverlayName(_))
        ));

        ca.add_user("alice", "pw", false).unwrap();
        assert!(matches!(
            ca.add_user("alice", "pw", false),
            Err(CaError::Account(AccountError::Exists(_)))
        ));
        assert!(matches!(
            ca.add_user("Alice", "pw", false),
            Err(CaError::Account(AccountError::IllegalUserName(_)))
        ));
        assert_eq!(mode_of(&dir.join(ACCOUNTS_FILE)).unwrap(), 0o600);
    }
}
