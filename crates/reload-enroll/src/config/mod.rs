//! The overlay configuration document (RFC 6940 §11.1).
//!
//! A document (content type `application/p2p-overlay+xml`) is an `<overlay>`
//! element holding one or more `<configuration>` elements, each followed by
//! `<signature>` elements over it:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"
//!     xmlns:chord="urn:ietf:params:xml:ns:p2p:config-chord">
//!   <configuration instance-name="overlay.example.org" sequence="1">
//!     ...
//!   </configuration>
//!   <signature>base64 SecurityBlock</signature>
//! </overlay>
//! ```
//!
//! - [`Configuration`] is the typed model: what a node needs from the document.
//!   [`Configuration::node_config`] and [`Configuration::trust_anchors`] turn it
//!   into what reload-core and reload-trust take.
//! - [`Configuration::to_document`] writes a document, signed by a
//!   [`ConfigSigner`] or unsigned.
//! - [`ConfigDocument::parse`] reads an untrusted document: it never panics, bounds
//!   its size, and says which element was wrong and why.
//!   [`ConfigDocument::verify`] checks the signatures.
//!
//! # Signatures (§11.1)
//!
//! The signature covers the exact bytes from the `<` of `<configuration` to the `>`
//! of `</configuration>`; the configuration is a binary blob that must not change,
//! not even in white space, so nothing is canonicalized. What is signed is that blob
//! and nothing else. The `<signature>` element holds a RELOAD `SecurityBlock`
//! (§6.3.4: the signer's certificates and a `Signature` with its `SignerIdentity`),
//! base64-encoded. Each `<kind>` element is signed the same way, its SecurityBlock
//! in the `<kind-signature>` beside it.
//!
//! Who may sign: §11.1 says a configuration is signed by one of the
//! `configuration-signer`s (Node-IDs) of the previous configuration, and a kind by
//! one of the `kind-signer`s of the current one. A node fetching its first
//! configuration has no previous one, only the root certificate it was given out of
//! band, and any enrolled node holds a certificate chaining to that root. So:
//!
//! - a configuration checked against roots alone ([`ConfigTrust::Roots`]) must be
//!   signed by one of those roots itself — p2psip's CA signs with its root key,
//!   which no enrolled node can impersonate;
//! - a configuration checked against the previous one ([`ConfigTrust::Previous`])
//!   may be signed by one of its roots, or by a certificate chaining to them whose
//!   Node-ID is one of its `configuration-signer`s and not a `bad-node`;
//! - a kind may be signed by a root of the configuration, or by a certificate
//!   chaining to one whose Node-ID is a `kind-signer` and not a `bad-node`.
//!
//! A root can issue a certificate with any Node-ID, so accepting its signature
//! grants it nothing it did not have.

mod parse;
mod sign;
mod write;

use std::net::SocketAddr;
use std::time::Duration;

use reload_core::NodeConfig;
use reload_core::storage::{AccessPolicy, DomainRestriction, KindDef};
use reload_trust::{NodeIdDigest, TrustAnchors, TrustError};
use reload_wire::{DataModel, KindId, NodeId, OverlayHash};

pub use sign::ConfigSigner;

/// The namespace of the base configuration elements (§11.1).
pub const NS_BASE: &str = "urn:ietf:params:xml:ns:p2p:config-base";
/// The namespace of CHORD-RELOAD's configuration elements (§11.1, §10).
pub const NS_CHORD: &str = "urn:ietf:params:xml:ns:p2p:config-chord";
/// The namespace of the SIP usage's configuration elements (RFC 7904 §3.4, §8.2):
/// `<sip:domain-restriction>`, a kind-parameter of SIP-REGISTRATION.
pub const NS_SIP: &str = "urn:ietf:params:xml:ns:p2p:config-base:sip";
/// The content type of a configuration document (§11.1, §14.5).
pub const CONTENT_TYPE: &str = "application/p2p-overlay+xml";
/// The path a configuration server serves the document at (§11.2).
pub const WELL_KNOWN_PATH: &str = "/.well-known/reload-config";
/// The largest document [`ConfigDocument::parse`] reads. Real ones are a few
/// kilobytes; the limit keeps a hostile one from costing much memory.
pub const MAX_DOCUMENT_SIZE: usize = 1024 * 1024;
/// The bootstrap port when `bootstrap-node` gives none (§11.1).
pub const DEFAULT_BOOTSTRAP_PORT: u16 = 6084;
/// The only topology plug-in this implementation runs (§10).
pub const TOPOLOGY_PLUGIN: &str = "CHORD-RELOAD";
/// `node-id-length`: p2psip's Node-IDs are 128 bits (§11.1 allows 16 to 20 bytes).
pub const NODE_ID_LENGTH: usize = reload_wire::NODE_ID_LEN;
/// `max-message-size` when the document gives none (§11.1).
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 5000;
/// `initial-ttl` when the document gives none (§11.1).
pub const DEFAULT_INITIAL_TTL: u8 = 100;
/// `overlay-reliability-timer`, in milliseconds, when the document gives none (§11.1).
pub const DEFAULT_RELIABILITY_TIMER_MS: u32 = 3000;
/// The smallest `overlay-reliability-timer` allowed, in milliseconds (§11.1).
pub const MIN_RELIABILITY_TIMER_MS: u32 = 200;
/// Extension namespaces a configuration may name as `mandatory-extension` and still
/// be accepted here: the two this module implements.
pub const SUPPORTED_EXTENSIONS: &[&str] = &[NS_BASE, NS_CHORD, NS_SIP];

/// An overlay link protocol (`overlay-link-protocol`, §11.1, §6.6.1).
///
/// The IANA registry (§14.11) holds only `TLS`, meaning TLS and DTLS links with
/// ICE. p2psip also names the exact link types of §6.5.1.1 (`OverlayLinkType`) so
/// that an overlay can say which one its peers accept, including the No-ICE ones
/// (§6.5.1.11); the grammar types the element as a string, so these are valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LinkProtocol {
    /// `TLS`: the registered value, TLS or DTLS (§14.11).
    Tls,
    /// `TLS-TCP-FH-NO-ICE`: TLS over TCP with framing, no ICE.
    TlsTcpFhNoIce,
    /// `DTLS-UDP-SR-NO-ICE`: DTLS over UDP with simple reliability, no ICE.
    DtlsUdpSrNoIce,
    /// `DTLS-UDP-SR`: DTLS over UDP with simple reliability, with ICE.
    DtlsUdpSr,
    /// Any other name, kept as written.
    Other(String),
}

impl LinkProtocol {
    /// The name as the document writes it.
    pub fn name(&self) -> &str {
        match self {
            LinkProtocol::Tls => "TLS",
            LinkProtocol::TlsTcpFhNoIce => "TLS-TCP-FH-NO-ICE",
            LinkProtocol::DtlsUdpSrNoIce => "DTLS-UDP-SR-NO-ICE",
            LinkProtocol::DtlsUdpSr => "DTLS-UDP-SR",
            LinkProtocol::Other(s) => s,
        }
    }

    /// Reads a name (compared exactly, as the registry's strings are).
    pub fn from_name(name: &str) -> LinkProtocol {
        match name {
            "TLS" => LinkProtocol::Tls,
            "TLS-TCP-FH-NO-ICE" => LinkProtocol::TlsTcpFhNoIce,
            "DTLS-UDP-SR-NO-ICE" => LinkProtocol::DtlsUdpSrNoIce,
            "DTLS-UDP-SR" => LinkProtocol::DtlsUdpSr,
            other => LinkProtocol::Other(other.to_owned()),
        }
    }

    /// Whether it is one of the No-ICE link types (§6.5.1.11).
    pub fn is_no_ice(&self) -> bool {
        matches!(self, LinkProtocol::TlsTcpFhNoIce | LinkProtocol::DtlsUdpSrNoIce)
    }
}

/// A Kind the overlay requires (§11.1 `required-kinds`): the `<kind>` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSpec {
    /// The Kind-ID: the IANA one for a named Kind, else the `id` attribute.
    pub id: KindId,
    /// The IANA name, for Kinds written `<kind name="...">`.
    pub name: Option<String>,
    /// `data-model`. For a registered Kind the registration's model, whatever the
    /// document says (§11.1: clients ignore the document's in favor of IANA's).
    pub data_model: DataModel,
    /// `access-control`, with `max-node-multiple` for NODE-MULTIPLE.
    pub access_control: AccessPolicy,
    /// `max-count`: most values per Resource-ID.
    pub max_count: u32,
    /// `max-size`: largest value, in bytes.
    pub max_size: u32,
    /// RFC 7904 §3.4: the `<sip:domain-restriction>` kind-parameter, which only the
    /// SIP-REGISTRATION Kind may have. `None` when the element is absent, which
    /// RFC 7904 says means any AOR is accepted.
    pub domain_restriction: Option<DomainRestrictionSpec>,
}

/// RFC 7904 §3.4: `<sip:domain-restriction>`, the kind-parameter (namespace
/// [`NS_SIP`]) of the SIP-REGISTRATION Kind that restricts which AOR domains the
/// overlay stores registrations for:
///
/// ```text
/// Kind-parameter &= element sip:domain-restriction {
///     attribute enable { xsd:boolean }
///     element sip:pattern { xsd:string }*
/// }?
/// ```
///
/// "If the element is included and the enable attribute is not set or set to
/// false, the overlay MUST only accept AORs that match the domain name of the
/// overlay. If the element is included and the enable attribute is set to true,
/// the overlay MUST only accept AORs that match patterns specified in the
/// <domain-restrictions> element." A `<pattern>` "MAY be present if the enable
/// attribute of its parent element is set to true", so the parser refuses
/// patterns under `enable="false"`, and the writer refuses to write them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainRestrictionSpec {
    /// The `enable` attribute: true, only AORs whose domain matches a pattern; false, only the overlay's own name.
    pub enable: bool,
    /// The `<sip:pattern>` elements, as written (POSIX extended regular expressions over the domain).
    pub patterns: Vec<String>,
}

/// The Kinds registered with IANA that this implementation knows, with their data
/// model and access policy (RFC 6940 §8, §9, §14.6; RFC 7904 §7). TURN-SERVICE's
/// NODE-MULTIPLE bound comes from `max-node-multiple`; 20 is its default here.
const REGISTERED_KINDS: &[(&str, KindId, DataModel, AccessPolicy)] = &[
    (
        "SIP-REGISTRATION",
        KindId::SIP_REGISTRATION,
        DataModel::Dictionary,
        AccessPolicy::UserNodeMatch,
    ),
    (
        "TURN-SERVICE",
        KindId::TURN_SERVICE,
        DataModel::Single,
        AccessPolicy::NodeMultiple { max: 20 },
    ),
    (
        "CERTIFICATE_BY_NODE",
        KindId::CERTIFICATE_BY_NODE,
        DataModel::Array,
        AccessPolicy::NodeMatch,
    ),
    (
        "CERTIFICATE_BY_USER",
        KindId::CERTIFICATE_BY_USER,
        DataModel::Array,
        AccessPolicy::UserMatch,
    ),
];

/// A registered Kind by name.
fn registered_by_name(name: &str) -> Option<&'static (&'static str, KindId, DataModel, AccessPolicy)> {
    REGISTERED_KINDS.iter().find(|k| k.0 == name)
}

/// A registered Kind by Kind-ID.
fn registered_by_id(id: KindId) -> Option<&'static (&'static str, KindId, DataModel, AccessPolicy)> {
    REGISTERED_KINDS.iter().find(|k| k.1 == id)
}

impl KindSpec {
    /// A Kind registered with IANA, by its name (`SIP-REGISTRATION`, `TURN-SERVICE`,
    /// `CERTIFICATE_BY_NODE`, `CERTIFICATE_BY_USER`), with the registration's data
    /// model and access policy and these limits. `None` for other names.
    pub fn registered(name: &str, max_count: u32, max_size: u32) -> Option<KindSpec> {
        let &(name, id, data_model, access_control) = registered_by_name(name)?;
        Some(KindSpec {
            id,
            name: Some(name.to_owned()),
            data_model,
            access_control,
            max_count,
            max_size,
            domain_restriction: None,
        })
    }

    /// A Kind of the private range, written `<kind id="...">`.
    pub fn private(
        id: u32,
        data_model: DataModel,
        access_control: AccessPolicy,
        max_count: u32,
        max_size: u32,
    ) -> Self {
        KindSpec {
            id: KindId(id),
            name: None,
            data_model,
            access_control,
            max_count,
            max_size,
            domain_restriction: None,
        }
    }

    /// The definition reload-core's storage takes.
    pub fn kind_def(&self) -> KindDef {
        KindDef {
            id: self.id,
            name: self.name.clone().unwrap_or_else(|| format!("kind {}", self.id.0)),
            model: self.data_model,
            policy: self.access_control,
            max_count: self.max_count,
            max_size: self.max_size,
        }
    }
}

/// One overlay's configuration (RFC 6940 §11.1): the `<configuration>` element.
///
/// `topology-plugin` is always CHORD-RELOAD and `node-id-length` always 16 here:
/// the parser refuses others, and the writer writes these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Configuration {
    /// `instance-name`: the overlay name.
    pub instance_name: String,
    /// `sequence`: increases with each new version (0 to 2^16-2).
    pub sequence: u16,
    /// `expiration`, Unix seconds (UTC): the configuration is not valid after it.
    pub expiration: Option<i64>,
    /// `root-cert`: the overlay's root certificates, DER.
    pub root_certs: Vec<Vec<u8>>,
    /// `enrollment-server`: https URLs of enrollment servers (§11.3).
    pub enrollment_servers: Vec<String>,
    /// `self-signed-permitted` (§11.3.1).
    pub self_signed_permitted: bool,
    /// Its `digest` attribute: how self-signed Node-IDs are made.
    pub self_signed_digest: NodeIdDigest,
    /// `bootstrap-node`s (§11.4).
    pub bootstrap_nodes: Vec<SocketAddr>,
    /// `turn-density`.
    pub turn_density: Option<u8>,
    /// `clients-permitted` (default true).
    pub clients_permitted: bool,
    /// `no-ice`: nodes must use the No-ICE link protocols (default false).
    pub no_ice: bool,
    /// `chord:chord-update-interval`, in seconds (§10.7.4.1).
    pub chord_update_interval: Option<u32>,
    /// `chord:chord-ping-interval`, in seconds (§10.7.4.2).
    pub chord_ping_interval: Option<u32>,
    /// `chord:chord-reactive` (default true, §10.7.1).
    pub chord_reactive: bool,
    /// `shared-secret` (§13.4), as written.
    pub shared_secret: Option<String>,
    /// `max-message-size` in bytes (default 5000).
    pub max_message_size: u32,
    /// `initial-ttl` (default 100).
    pub initial_ttl: u8,
    /// `overlay-reliability-timer` in milliseconds (default 3000, at least 200).
    pub overlay_reliability_timer: u32,
    /// `overlay-link-protocol`s; none means the default, `TLS`.
    pub link_protocols: Vec<LinkProtocol>,
    /// `configuration-signer`s: Node-IDs that may sign the next configuration.
    pub configuration_signers: Vec<NodeId>,
    /// `kind-signer`s: Node-IDs that may sign Kinds.
    pub kind_signers: Vec<NodeId>,
    /// `bad-node`s: Node-IDs whose certificates are not valid.
    pub bad_nodes: Vec<NodeId>,
    /// `mandatory-extension`s: namespaces a node must support.
    pub mandatory_extensions: Vec<String>,
    /// `required-kinds`.
    pub required_kinds: Vec<KindSpec>,
}

impl Configuration {
    /// A configuration for `instance_name` with every value at the RFC's default and
    /// no roots, servers, bootstrap nodes or Kinds.
    pub fn new(instance_name: &str) -> Configuration {
        Configuration {
            instance_name: instance_name.to_owned(),
            sequence: 0,
            expiration: None,
            root_certs: Vec::new(),
            enrollment_servers: Vec::new(),
            self_signed_permitted: false,
            self_signed_digest: NodeIdDigest::Sha256,
            bootstrap_nodes: Vec::new(),
            turn_density: None,
            clients_permitted: true,
            no_ice: false,
            chord_update_interval: None,
            chord_ping_interval: None,
            chord_reactive: true,
            shared_secret: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            initial_ttl: DEFAULT_INITIAL_TTL,
            overlay_reliability_timer: DEFAULT_RELIABILITY_TIMER_MS,
            link_protocols: Vec::new(),
            configuration_signers: Vec::new(),
            kind_signers: Vec::new(),
            bad_nodes: Vec::new(),
            mandatory_extensions: Vec::new(),
            required_kinds: Vec::new(),
        }
    }

    /// The overlay's hash, which every message carries (§6.3.2).
    pub fn overlay_hash(&self) -> OverlayHash {
        OverlayHash::from_overlay_name(&self.instance_name)
    }

    /// The link protocols in force: the listed ones, or `TLS` if none are (§11.1).
    pub fn effective_link_protocols(&self) -> Vec<LinkProtocol> {
        if self.link_protocols.is_empty() {
            vec![LinkProtocol::Tls]
        } else {
            self.link_protocols.clone()
        }
    }

    /// The core's configuration for a peer with `node_id` in this overlay: the
    /// overlay hash, sequence, TTL, message size, reliability timer, the CHORD-RELOAD
    /// timers, and the Kinds — RFC 6940's built-in ones, with the limits (and, for
    /// private Kinds, the model and policy) of `required-kinds` over them. The node
    /// is a peer (`client` false); everything else keeps reload-core's defaults.
    pub fn node_config(&self, node_id: NodeId) -> NodeConfig {
        let mut c = NodeConfig::new(self.overlay_hash(), node_id);
        c.client = false;
        c.configuration_sequence = self.sequence;
        c.initial_ttl = self.initial_ttl;
        c.max_message_size = usize::try_from(self.max_message_size).unwrap_or(usize::MAX);
        c.reliability_timer = Duration::from_millis(u64::from(self.overlay_reliability_timer));
        if let Some(s) = self.chord_update_interval {
            c.update_interval = Duration::from_secs(u64::from(s));
        }
        if let Some(s) = self.chord_ping_interval {
            c.ping_interval = Duration::from_secs(u64::from(s));
        }
        c.reactive = self.chord_reactive;
        for kind in &self.required_kinds {
            c.kinds.add(kind.kind_def());
            c.data_models.insert(kind.id, kind.data_model);
            // RFC 7904 §3.3: storing peers check AOR domains (§3.4). The parser
            // checked every pattern, so none fails here; one that did would admit
            // nothing rather than everything.
            if let Some(r) = &kind.domain_restriction {
                let element = Some((r.enable, r.patterns.as_slice()));
                let restriction = DomainRestriction::from_config(element, &self.instance_name)
                    .unwrap_or_else(|_| DomainRestriction::Patterns(Vec::new()));
                c.kinds.restrict_domains(kind.id, restriction);
            }
        }
        c
    }

    /// The overlay's trust configuration (§11.1 `root-cert`, `self-signed-permitted`;
    /// §11.3, §11.3.1): its roots, self-signed certificates if permitted, and only
    /// certificates naming this overlay.
    pub fn trust_anchors(&self) -> Result<TrustAnchors, ConfigError> {
        let anchors = if self.root_certs.is_empty() && self.self_signed_permitted {
            TrustAnchors::self_signed_only(self.self_signed_digest)
        } else {
            let a = TrustAnchors::new(self.root_certs.clone()).map_err(ConfigError::RootCertificate)?;
            if self.self_signed_permitted {
                a.permit_self_signed(self.self_signed_digest)
            } else {
                a
            }
        };
        Ok(anchors.for_overlay(&self.instance_name))
    }
}

/// How far to trust a configuration document's signer (see the module
/// documentation).
#[derive(Clone, Copy, Debug)]
pub enum ConfigTrust<'a> {
    /// Root certificates (DER) the node got out of band, for its first
    /// configuration: only one of these roots may have signed it.
    Roots(&'a [Vec<u8>]),
    /// The configuration in force: a new one must be for the same overlay, must not
    /// go back in sequence, and must be signed by one of its roots or
    /// `configuration-signer`s (§11.1).
    Previous(&'a Configuration),
}

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// The element's content is not a base64 RELOAD SecurityBlock.
    #[error("not a base64-encoded RELOAD SecurityBlock (RFC 6940 §6.3.4): {0}")]
    Malformed(String),
    /// No root certificate to check against (none were given or listed).
    #[error("there is no root certificate to check it against")]
    NoRoots,
    /// The SignerIdentity names no root and no certificate in the SecurityBlock.
    #[error("it was made by a key whose certificate is neither a trusted root nor in the signature's SecurityBlock")]
    UnknownSigner,
    /// Signed by a CA certificate (one naming no Node-ID) that is not a trusted root.
    #[error("it was made by a certificate authority that is not one of the trusted roots")]
    UntrustedRoot,
    /// The signer's certificate was not accepted.
    #[error("the signer's certificate: {0}")]
    Certificate(TrustError),
    /// The signer is not allowed to sign this.
    #[error("the signer, Node-ID {node}, is not a {role} of the configuration, nor a root")]
    NotAuthorized {
        /// The signer's Node-ID.
        node: NodeId,
        /// `configuration-signer` or `kind-signer`.
        role: &'static str,
    },
    /// The signer's Node-ID is a `bad-node`.
    #[error("the signer, Node-ID {0}, is listed as a bad-node")]
    BadNode(NodeId),
    /// The signature does not verify.
    #[error("{0}")]
    Verify(TrustError),
}

/// What is wrong with a configuration document.
///
/// Parse errors name the element and the line it is on (1-based; 0 when unknown).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Larger than [`MAX_DOCUMENT_SIZE`].
    #[error("the configuration document is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not UTF-8 (§11.1: the file MUST use UTF-8).
    #[error("the configuration document is not UTF-8 (RFC 6940 §11.1 requires UTF-8): {0}")]
    NotUtf8(String),
    /// Not well-formed XML, or it has a DTD, or too many nodes.
    #[error("the configuration document is not well-formed XML: {0}")]
    Xml(String),
    /// The root element is not `<overlay>` in the base namespace.
    #[error("the root element is {found}, not <overlay> in namespace {NS_BASE} (RFC 6940 §11.1)")]
    NotAnOverlay {
        /// What it is.
        found: String,
    },
    /// The document holds no `<configuration>`.
    #[error("the document holds no <configuration> element")]
    NoConfiguration,
    /// Several configurations and no overlay name to choose by.
    #[error("the document holds {0} configurations; name the overlay to use")]
    SeveralConfigurations(usize),
    /// No configuration for the overlay asked for.
    #[error("the document holds no configuration for overlay {0:?}")]
    NoSuchInstance(String),
    /// A required element or attribute is missing.
    #[error("line {line}: <{parent}> lacks its {what} (RFC 6940 §11.1)")]
    Missing {
        /// The element or attribute, as `<name>` or `name="..."`.
        what: String,
        /// The element it belongs in.
        parent: String,
        /// The parent's line.
        line: u32,
    },
    /// An element that may appear once appears again.
    #[error("line {line}: <{element}> appears more than once in <{parent}>")]
    Duplicate {
        /// The element.
        element: String,
        /// Its parent.
        parent: String,
        /// The line of the second one.
        line: u32,
    },
    /// An element or attribute of the RELOAD namespaces that §11.1 does not define
    /// there (elements of other namespaces are extensions, and ignored).
    #[error("line {line}: unexpected {what} in <{parent}> (RFC 6940 §11.1 defines no such thing there)")]
    Unexpected {
        /// The element, attribute or text.
        what: String,
        /// Where it is.
        parent: String,
        /// Its line.
        line: u32,
    },
    /// A value is ill-formed or out of range.
    #[error("line {line}: <{element}>: {reason}")]
    Invalid {
        /// The element (or `element attribute="..."`).
        element: String,
        /// Its line.
        line: u32,
        /// What is wrong.
        reason: String,
    },
    /// A well-formed value this implementation does not support.
    #[error("line {line}: <{element}>: {reason}")]
    Unsupported {
        /// The element.
        element: String,
        /// Its line.
        line: u32,
        /// What is not supported.
        reason: String,
    },
    /// A configuration has no `<signature>`.
    #[error("the configuration for {instance:?} is not signed (RFC 6940 §11.1: recipients MUST verify the signature)")]
    Unsigned {
        /// The overlay name.
        instance: String,
    },
    /// Its signature was not accepted.
    #[error("the signature over the configuration for {instance:?} is not accepted: {problem}")]
    BadSignature {
        /// The overlay name.
        instance: String,
        /// Why.
        problem: SignatureProblem,
    },
    /// A kind-block has no `<kind-signature>` (§11.1: it MUST have one).
    #[error("kind {kind} has no kind-signature (RFC 6940 §11.1: every kind-block MUST be signed)")]
    UnsignedKind {
        /// The Kind-ID.
        kind: u32,
    },
    /// A kind's signature was not accepted.
    #[error("the kind-signature of kind {kind} is not accepted: {problem}")]
    BadKindSignature {
        /// The Kind-ID.
        kind: u32,
        /// Why.
        problem: SignatureProblem,
    },
    /// The configuration is past its `expiration`.
    #[error("the configuration for {instance:?} expired at {expiration} (Unix seconds); it is now {now}")]
    Expired {
        /// The overlay name.
        instance: String,
        /// Its expiration.
        expiration: i64,
        /// The time it was checked at.
        now: i64,
    },
    /// An update is for another overlay than the configuration in force.
    #[error("the new configuration is for overlay {found:?}, the one in force for {expected:?}")]
    WrongInstance {
        /// The overlay of the configuration in force.
        expected: String,
        /// The new one's.
        found: String,
    },
    /// An update has a lower sequence number than the configuration in force.
    #[error("the new configuration has sequence {found}, lower than {current} of the one in force (RFC 6940 §11.1)")]
    SequenceWentBack {
        /// The sequence of the configuration in force.
        current: u16,
        /// The new one's.
        found: u16,
    },
    /// A `root-cert` is not usable as a trust anchor.
    #[error("a root-cert is not usable as a trust anchor: {0}")]
    RootCertificate(TrustError),
    /// The model cannot be written as a valid document.
    #[error("cannot write the configuration: {0}")]
    Write(String),
    /// Signing failed.
    #[error("cannot sign the configuration: {0}")]
    Sign(TrustError),
}

/// One `<configuration>` of a parsed document, with what its signatures cover.
#[derive(Clone, Debug)]
pub struct SignedConfiguration {
    configuration: Configuration,
    /// The exact bytes of the `<configuration>` element.
    signed: Vec<u8>,
    /// The decoded contents of the `<signature>` elements after it.
    signatures: Vec<Vec<u8>>,
    kinds: Vec<SignedKind>,
}

/// One kind-block: the `<kind>` element's exact bytes and its signature.
#[derive(Clone, Debug)]
struct SignedKind {
    id: KindId,
    signed: Vec<u8>,
    signature: Option<Vec<u8>>,
}

impl SignedConfiguration {
    /// The configuration, not yet verified.
    pub fn configuration(&self) -> &Configuration {
        &self.configuration
    }

    /// The exact bytes the signature covers: the `<configuration>` element.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// Checks the configuration's signature and every kind's (see the module
    /// documentation for who may sign), and its expiration at `now` (Unix seconds).
    pub fn verify(&self, trust: ConfigTrust<'_>, now: i64) -> Result<Configuration, ConfigError> {
        let config = &self.configuration;
        let instance = config.instance_name.clone();
        let (roots, signers, bad): (&[Vec<u8>], &[NodeId], &[NodeId]) = match trust {
            ConfigTrust::Roots(roots) => (roots, &[], &[]),
            ConfigTrust::Previous(prev) => {
                if !prev.instance_name.eq_ignore_ascii_case(&config.instance_name) {
                    return Err(ConfigError::WrongInstance {
                        expected: prev.instance_name.clone(),
                        found: config.instance_name.clone(),
                    });
                }
                if config.sequence < prev.sequence {
                    return Err(ConfigError::SequenceWentBack {
                        current: prev.sequence,
                        found: config.sequence,
                    });
                }
                (&prev.root_certs, &prev.configuration_signers, &prev.bad_nodes)
            }
        };
        if self.signatures.is_empty() {
            return Err(ConfigError::Unsigned { instance });
        }
        let mut first_problem = None;
        for block in &self.signatures {
            match sign::verify(&self.signed, block, roots, signers, bad, "configuration-signer", now) {
                Ok(()) => {
                    first_problem = None;
                    break;
                }
                Err(p) => {
                    first_problem.get_or_insert(p);
                }
            }
        }
        if let Some(problem) = first_problem {
            return Err(ConfigError::BadSignature { instance, problem });
        }
        if let Some(expiration) = config.expiration
            && now > expiration
        {
            return Err(ConfigError::Expired {
                instance,
                expiration,
                now,
            });
        }
        // §11.1: kinds are signed by a kind-signer of the current configuration.
        for kind in &self.kinds {
            let block = kind
                .signature
                .as_ref()
                .ok_or(ConfigError::UnsignedKind { kind: kind.id.0 })?;
            sign::verify(
                &kind.signed,
                block,
                &config.root_certs,
                &config.kind_signers,
                &config.bad_nodes,
                "kind-signer",
                now,
            )
            .map_err(|problem| ConfigError::BadKindSignature {
                kind: kind.id.0,
                problem,
            })?;
        }
        Ok(config.clone())
    }
}

/// A parsed configuration document (§11.1): its configurations, unverified.
#[derive(Clone, Debug)]
pub struct ConfigDocument {
    entries: Vec<SignedConfiguration>,
}

impl ConfigDocument {
    /// Reads a document. Never panics: anything malformed is a [`ConfigError`] that
    /// names the element and line. Elements and attributes of other namespaces are
    /// extensions and are skipped; unknown ones in the RELOAD namespaces (base,
    /// chord, and RFC 7904's [`NS_SIP`]) are errors.
    /// Refuses `mandatory-extension`s other than [`SUPPORTED_EXTENSIONS`], topology
    /// plug-ins other than CHORD-RELOAD, Node-ID lengths other than 16, and Kinds it
    /// cannot identify.
    pub fn parse(bytes: &[u8]) -> Result<ConfigDocument, ConfigError> {
        Ok(ConfigDocument {
            entries: parse::parse_document(bytes)?,
        })
    }

    /// Every configuration in the document, in order.
    pub fn entries(&self) -> &[SignedConfiguration] {
        &self.entries
    }

    /// The configuration for `instance` (compared without regard to ASCII case), or
    /// the only one if `instance` is `None`.
    pub fn entry(&self, instance: Option<&str>) -> Result<&SignedConfiguration, ConfigError> {
        match instance {
            Some(name) => self
                .entries
                .iter()
                .find(|e| e.configuration.instance_name.eq_ignore_ascii_case(name))
                .ok_or_else(|| ConfigError::NoSuchInstance(name.to_owned())),
            None => match self.entries.as_slice() {
                [only] => Ok(only),
                [] => Err(ConfigError::NoConfiguration),
                many => Err(ConfigError::SeveralConfigurations(many.len())),
            },
        }
    }

    /// [`SignedConfiguration::verify`] of [`ConfigDocument::entry`].
    pub fn verify(
        &self,
        instance: Option<&str>,
        trust: ConfigTrust<'_>,
        now: i64,
    ) -> Result<Configuration, ConfigError> {
        self.entry(instance)?.verify(trust, now)
    }
}

#[cfg(test)]
mod tests;
