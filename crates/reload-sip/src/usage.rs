//! The SIP usage of RELOAD (RFC 7904) on top of a running node
//! ([`reload_net::runtime::NodeHandle`]): register an AOR (a SIP-REGISTRATION
//! dictionary entry keyed by the registering node's Node-ID, §3), resolve an AOR
//! to the destination lists of the nodes that registered it (§4.2), and learn
//! where to open a SIP or SIPS connection to such a node with AppAttach (§5.1).
//!
//! AORs are written the way RFC 7904 §2 and §7 want them in the overlay: no
//! scheme, %-escapes decoded, no URI parameters or headers, so that they equal
//! the user name (rfc822Name) of the owner's certificate; [`aor_of`] makes one
//! from a SIP URI. The Resource-ID is the hash of the AOR's bytes
//! ([`aor_resource`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reload_core::Failure;
use reload_core::ring::hash_resource_name;
use reload_core::storage::{AccessPolicy, KindDef};
pub use reload_core::storage::{DomainPattern, DomainRestriction, PatternError};
use reload_net::runtime::{NodeHandle, RequestError, RuntimeError, UserSigner};
use reload_wire::{
    ApplicationId, DataModel, DataValue, Decode, Destination, Encode, FetchReq, KindId, MessageBody, ModelSpecifier,
    NodeId, ResourceId, SipRegistration, StoredDataSpecifier, StoredDataValue,
};

use crate::gruu::{GruuError, gruu_destinations};

/// The SIP-REGISTRATION Kind (RFC 7904 §9.1).
pub const SIP_REGISTRATION: KindId = KindId(1);
/// Application-ID of SIP over an AppAttach connection (RFC 7904 §5.1).
pub const APP_SIP: u16 = 5060;
/// Application-ID of SIPS over an AppAttach connection (RFC 7904 §5.1).
pub const APP_SIPS: u16 = 5061;

/// Most AOR-to-AOR indirections [`SipUsage::resolve`] follows from the AOR it
/// was asked for (RFC 7904 §8.2.1: the caller sees every retargeting and limits it).
pub const MAX_INDIRECTIONS: usize = 8;
/// Most Fetches one resolution makes, whatever the shape of the indirections.
pub const MAX_FETCHES: usize = 32;

/// How long a deletion (a nonexistent value, RFC 6940 §7.4.1.3) is kept at
/// least: the RFC wants at least the rest of the deleted value's lifetime, and
/// this usage may not know it (registered by an earlier run).
pub const MIN_TOMBSTONE_LIFETIME: u32 = 3600;

/// The SIP-REGISTRATION Kind as a node's configuration declares it (RFC 7904 §7):
/// a dictionary under USER-NODE-MATCH, with the overlay's limits. Nodes that use
/// this module need it in their [`reload_core::NodeConfig::kinds`]: a fetched
/// value of a Kind the node does not know is dropped as unverifiable.
pub fn sip_registration_kind(max_count: u32, max_size: u32) -> KindDef {
    KindDef {
        id: SIP_REGISTRATION,
        name: "SIP-REGISTRATION".into(),
        model: DataModel::Dictionary,
        policy: AccessPolicy::UserNodeMatch,
        max_count,
        max_size,
    }
}

// ----- AORs (RFC 7904 §2, §7) -----

/// Why a string is not an AOR.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AorError {
    /// Nothing to read.
    #[error("empty AOR")]
    Empty,
    /// A `<` without its `>`.
    #[error("'<' without '>'")]
    Unterminated,
    /// A scheme other than sip or sips (tel URIs need more specification, RFC 7904 §1).
    #[error("unsupported URI scheme {0:?}: only sip and sips")]
    UnsupportedScheme(String),
    /// No `user@`: an AOR is matched against a certificate's rfc822Name (§7).
    #[error("no user part (user@domain)")]
    NoUser,
    /// No host after the `@`.
    #[error("no domain after '@'")]
    NoHost,
    /// A bad %-escape, or escapes that do not decode to UTF-8.
    #[error("bad %-escape in the user part")]
    BadEscape,
    /// A character that has no place there (white space, a control character,
    /// or a host character outside letters, digits, '-', '.' and IPv6 brackets).
    #[error("invalid character {0:?}")]
    InvalidCharacter(char),
}

/// The AOR of a SIP URI as RFC 7904 stores it (§2, §7): no scheme, the user
/// part %-decoded (RFC 3986), no password, port, URI parameters or headers,
/// the host in lower case (the user part keeps its case). Accepts
/// `sip:alice@example.com;transport=udp`, `"Alice" <sips:Alice%40x@example.com>`
/// and a bare `alice@example.com`.
pub fn aor_of(uri: &str) -> Result<String, AorError> {
    let mut s = uri.trim();
    if let Some(start) = s.find('<') {
        let rest = &s[start + 1..];
        let end = rest.find('>').ok_or(AorError::Unterminated)?;
        s = rest[..end].trim();
    }
    if s.is_empty() {
        return Err(AorError::Empty);
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(AorError::InvalidCharacter(c));
    }
    let rest = match split_scheme(s) {
        Some((scheme, rest)) => {
            if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
                rest
            } else {
                return Err(AorError::UnsupportedScheme(scheme.to_ascii_lowercase()));
            }
        }
        None => s,
    };
    // RFC 3261 §25.1: '@' appears unescaped only between userinfo and host.
    let (userinfo, hostport) = rest.split_once('@').ok_or(AorError::NoUser)?;
    let user = userinfo.split(':').next().unwrap_or_default();
    if user.is_empty() {
        return Err(AorError::NoUser);
    }
    let user = percent_decode(user)?;
    if let Some(c) = user.chars().find(|c| c.is_control()) {
        return Err(AorError::InvalidCharacter(c));
    }
    let hostport = hostport.split([';', '?']).next().unwrap_or_default();
    let host = if hostport.starts_with('[') {
        // An IPv6 reference keeps its brackets; a port may follow.
        match hostport.find(']') {
            Some(end) => &hostport[..=end],
            None => return Err(AorError::Unterminated),
        }
    } else {
        hostport.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err(AorError::NoHost);
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '[' | ']' | ':' | '_')))
    {
        return Err(AorError::InvalidCharacter(c));
    }
    Ok(format!("{user}@{}", host.to_ascii_lowercase()))
}

/// `scheme:rest` if `s` starts with a URI scheme (RFC 3986 §3.1) before any '@'.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (valid && !scheme.contains('@')).then_some((scheme, rest))
}

fn percent_decode(s: &str) -> Result<String, AorError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(AorError::BadEscape)?;
            let hex = std::str::from_utf8(hex).map_err(|_| AorError::BadEscape)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(AorError::BadEscape);
            }
            out.push(u8::from_str_radix(hex, 16).map_err(|_| AorError::BadEscape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| AorError::BadEscape)
}

/// The domain of an AOR: what follows its last '@' (a decoded user part may
/// hold '@' itself).
pub fn domain_of(aor: &str) -> &str {
    aor.rsplit_once('@').map_or(aor, |(_, d)| d)
}

/// The Resource-ID an AOR's registrations are stored at (RFC 7904 §7): the hash
/// of the AOR's bytes, as [`aor_of`] writes it.
pub fn aor_resource(aor: &str) -> ResourceId {
    hash_resource_name(aor.as_bytes())
}

// ----- errors -----

/// Why a registration (or an AppAttach) failed.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The AOR could not be read.
    #[error("not an AOR: {0}")]
    Aor(#[from] AorError),
    /// The overlay does not serve the AOR's domain (RFC 7904 §3.3, §3.4).
    #[error("the overlay does not serve the domain {0:?}")]
    DomainNotServed(String),
    /// A target that looks like a GRUU but whose `gr` parameter is not a destination list.
    #[error(transparent)]
    Gruu(#[from] GruuError),
    /// The signing certificate's user name is not the AOR, so the storing peer
    /// would refuse the value under USER-NODE-MATCH (RFC 7904 §3.3).
    #[error("cannot register {aor:?}: the certificate is for {user:?}")]
    NotOurUser {
        /// The AOR.
        aor: String,
        /// The certificate's user name, if any.
        user: Option<String>,
    },
    /// The value could not be encoded.
    #[error("cannot encode the registration: {0}")]
    Encode(String),
    /// The node is not in the overlay (yet, or any more): nothing to send the
    /// request through.
    #[error("the node is not in the overlay")]
    NotReady,
    /// The overlay refused the request or did not answer.
    #[error(transparent)]
    Overlay(#[from] RequestError),
    /// The node has stopped.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Why an AOR could not be resolved (RFC 7904 §4).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The AOR could not be read.
    #[error("not an AOR: {0}")]
    Aor(#[from] AorError),
    /// A GRUU whose `gr` parameter is not a destination list.
    #[error(transparent)]
    Gruu(#[from] GruuError),
    /// The overlay does not serve the AOR's domain (§4.1: look elsewhere, such as DNS).
    #[error("the overlay does not serve the domain {0:?}")]
    DomainNotServed(String),
    /// Nothing is registered for the AOR (nor for the AORs it points to).
    #[error("nothing is registered for the AOR")]
    NotFound,
    /// The node is not in the overlay (yet, or any more): nothing to send the
    /// Fetch through.
    #[error("the node is not in the overlay")]
    NotReady,
    /// A Fetch failed: the responsible peer refused or did not answer.
    #[error(transparent)]
    Overlay(RequestError),
    /// The AOR-to-AOR mappings lead back to an AOR already visited, and nowhere else.
    #[error("the registrations loop back to {0}")]
    Loop(String),
    /// The AOR-to-AOR mappings go on past [`MAX_INDIRECTIONS`] (or [`MAX_FETCHES`]).
    #[error("more than {0} AOR-to-AOR indirections")]
    TooDeep(usize),
}

// ----- resolution results -----

/// One way to reach a user: a destination list from a registration or a GRUU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The path to the node; its last entry is the node to AppAttach to.
    pub destination_list: Vec<Destination>,
    /// The registrant's RFC 3840 contact predicate, e.g. `(sip.schemes=SIPS)`;
    /// empty for a GRUU.
    pub contact_prefs: String,
    /// The AOR whose registration (or GRUU) gave this route.
    pub aor: String,
}

impl Route {
    /// The destination list as Node-IDs, if every entry is one.
    pub fn node_ids(&self) -> Option<Vec<NodeId>> {
        self.destination_list.iter().map(Destination::node_id).collect()
    }

    /// The node at the end of the list, to AppAttach to (RFC 7904 §5.1).
    pub fn target(&self) -> Option<NodeId> {
        self.destination_list.last().and_then(Destination::node_id)
    }

    /// Whether the registrant prefers SIPS (RFC 7904 §3.2, §5.1: the caller SHOULD
    /// follow the preference).
    pub fn prefers_sips(&self) -> bool {
        self.contact_prefs
            .to_ascii_lowercase()
            .replace(' ', "")
            .contains("sip.schemes=sips")
    }
}

/// What an AOR resolved to (RFC 7904 §4.2 step 3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Destination lists and GRUUs, duplicates removed, in the order found.
    pub routes: Vec<Route>,
    /// AORs in domains this overlay does not serve that a registration pointed
    /// to: to be reached some other way (§4.1, §4.2 step 3).
    pub external: Vec<String>,
}

// ----- the usage -----

/// The SIP usage on a running node. Cheap to clone; clones share the record of
/// what this node registered.
#[derive(Clone, Debug)]
pub struct SipUsage {
    handle: NodeHandle,
    restriction: DomainRestriction,
    /// When this usage's registrations expire, by AOR and dictionary key, so that
    /// a deletion outlives what it deletes (RFC 6940 §7.4.1.3).
    expiries: Arc<Mutex<HashMap<(String, NodeId), Instant>>>,
}

impl SipUsage {
    /// The usage for `overlay` (its name, the domain of its users' AORs, RFC 6940
    /// §11.3) on `handle`. `domains` lists the admissible AOR domains, each an
    /// exact domain or a [`DomainPattern`]; empty means the overlay's own name
    /// only (RFC 7904 §3.4 with `enable="false"`).
    pub fn new(handle: NodeHandle, overlay: &str, domains: Vec<String>) -> Result<Self, PatternError> {
        let restriction = if domains.is_empty() {
            DomainRestriction::OverlayOnly(overlay.to_ascii_lowercase())
        } else {
            DomainRestriction::Patterns(
                domains
                    .iter()
                    .map(|d| DomainPattern::new(d))
                    .collect::<Result<_, _>>()?,
            )
        };
        Ok(Self::with_restriction(handle, restriction))
    }

    /// The usage with an explicit [`DomainRestriction`], as the configuration
    /// document's SIP-REGISTRATION Kind states it.
    pub fn with_restriction(handle: NodeHandle, restriction: DomainRestriction) -> Self {
        SipUsage {
            handle,
            restriction,
            expiries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The node this usage runs on.
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// Whether the overlay serves AORs of `domain` (RFC 7904 §3.4, §4.1).
    pub fn serves_domain(&self, domain: &str) -> bool {
        self.restriction.admits_domain(domain)
    }

    /// The domains this usage admits (RFC 7904 §3.4).
    pub fn restriction(&self) -> &DomainRestriction {
        &self.restriction
    }

    /// Reads `aor` and checks that the overlay serves its domain (§3.3: "Before
    /// issuing a Store request ... any Peer SHOULD verify ...").
    fn served_aor(&self, aor: &str) -> Result<String, UsageError> {
        let aor = aor_of(aor)?;
        let domain = domain_of(&aor);
        if !self.serves_domain(domain) {
            return Err(UsageError::DomainNotServed(domain.to_owned()));
        }
        Ok(aor)
    }

    fn check_user(aor: &str, user: Option<&str>) -> Result<(), UsageError> {
        // USER-NODE-MATCH (RFC 7904 §3.3, RFC 6940 §7.3.3): the storing peer hashes
        // the certificate's user name and compares it with the Resource-ID.
        if user == Some(aor) {
            Ok(())
        } else {
            Err(UsageError::NotOurUser {
                aor: aor.to_owned(),
                user: user.map(str::to_owned),
            })
        }
    }

    /// Registers `aor` at this node (RFC 7904 §3.1, first mapping): the
    /// dictionary entry keyed by this node's Node-ID whose value is a route to
    /// it, with `contact_prefs` (e.g. `(sip.schemes=SIPS)`, or empty), for
    /// `lifetime` seconds. The node's certificate must be the AOR's user.
    pub async fn register(&self, aor: &str, contact_prefs: &str, lifetime: u32) -> Result<(), UsageError> {
        let aor = self.served_aor(aor)?;
        Self::check_user(&aor, self.handle.user())?;
        let own = self.handle.node_id();
        let value = SipRegistration::route_to_node(contact_prefs.as_bytes(), own);
        self.put(&aor, None, own, Some(value), lifetime).await
    }

    /// Registers `aor` as pointing to `target` (RFC 7904 §3.1, second mapping:
    /// "to contact me, dereference this AOR"), such as a secretary's AOR for call
    /// forwarding. `target` may be in a domain the overlay does not serve, or a
    /// GRUU (kept as written).
    pub async fn register_uri(&self, aor: &str, target: &str, lifetime: u32) -> Result<(), UsageError> {
        let aor = self.served_aor(aor)?;
        Self::check_user(&aor, self.handle.user())?;
        let target = match gruu_destinations(target) {
            Some(gruu) => {
                gruu?;
                target.trim().to_owned()
            }
            None => aor_of(target)?,
        };
        let own = self.handle.node_id();
        self.put(&aor, None, own, Some(SipRegistration::uri(target)), lifetime)
            .await
    }

    /// Removes this node's registration of `aor` (RFC 6940 §7.4.1.3: a
    /// nonexistent value stored over it, kept at least as long as what it
    /// replaces, and at least [`MIN_TOMBSTONE_LIFETIME`]).
    pub async fn unregister(&self, aor: &str) -> Result<(), UsageError> {
        let aor = self.served_aor(aor)?;
        Self::check_user(&aor, self.handle.user())?;
        let own = self.handle.node_id();
        let lifetime = self.tombstone_lifetime(&aor, own);
        self.put(&aor, None, own, None, lifetime).await
    }

    /// [`SipUsage::register`] for another user whose credentials this node holds
    /// (an office gateway, RFC 7904 §3.3): the entry is keyed by the Node-ID
    /// `signer` signs as and routes to this node; value and Store are signed with
    /// the user's certificate.
    pub async fn register_as(
        &self,
        signer: &UserSigner,
        aor: &str,
        contact_prefs: &str,
        lifetime: u32,
    ) -> Result<(), UsageError> {
        let aor = self.served_aor(aor)?;
        Self::check_user(&aor, signer.user())?;
        let value = SipRegistration::route_to_node(contact_prefs.as_bytes(), self.handle.node_id());
        self.put(&aor, Some(signer), signer.node_id(), Some(value), lifetime)
            .await
    }

    /// [`SipUsage::unregister`] for a user registered with [`SipUsage::register_as`].
    pub async fn unregister_as(&self, signer: &UserSigner, aor: &str) -> Result<(), UsageError> {
        let aor = self.served_aor(aor)?;
        Self::check_user(&aor, signer.user())?;
        let lifetime = self.tombstone_lifetime(&aor, signer.node_id());
        self.put(&aor, Some(signer), signer.node_id(), None, lifetime).await
    }

    fn tombstone_lifetime(&self, aor: &str, key: NodeId) -> u32 {
        let left = self
            .expiries
            .lock()
            .ok()
            .and_then(|m| m.get(&(aor.to_owned(), key)).copied())
            .map_or(0, |t| t.saturating_duration_since(Instant::now()).as_secs());
        u32::try_from(left).unwrap_or(u32::MAX).max(MIN_TOMBSTONE_LIFETIME)
    }

    /// Stores the dictionary entry `key` of `aor` (a deletion when `value` is None).
    async fn put(
        &self,
        aor: &str,
        signer: Option<&UserSigner>,
        key: NodeId,
        value: Option<SipRegistration>,
        lifetime: u32,
    ) -> Result<(), UsageError> {
        let data = match &value {
            Some(v) => DataValue::new(v.to_bytes().map_err(|e| UsageError::Encode(e.to_string()))?),
            None => DataValue::absent(),
        };
        let entry = StoredDataValue::Dictionary {
            key: key.0.to_vec(),
            value: data,
        };
        if !self.handle.is_joined() {
            return Err(UsageError::NotReady);
        }
        let resource = aor_resource(aor);
        let answer = match signer {
            None => {
                self.handle
                    .store(resource, SIP_REGISTRATION, vec![entry], lifetime)
                    .await?
            }
            Some(s) => {
                self.handle
                    .store_signed_as(s, resource, SIP_REGISTRATION, vec![entry], lifetime)
                    .await?
            }
        };
        if !matches!(answer.body, MessageBody::StoreAns(_)) {
            return Err(UsageError::Overlay(RequestError::UnexpectedAnswer(format!(
                "{} answered a Store with {:?}",
                answer.responder,
                answer.body.code()
            ))));
        }
        if let Ok(mut m) = self.expiries.lock() {
            let k = (aor.to_owned(), key);
            if value.is_some() {
                m.insert(k, Instant::now() + Duration::from_secs(u64::from(lifetime)));
            } else {
                m.remove(&k);
            }
        }
        Ok(())
    }

    /// The registrations stored for `aor` (RFC 7904 §4.2 step 1: a Fetch of every
    /// dictionary key), each with its key. Deleted entries and values that do not
    /// decode are left out; values whose signature or access check failed were
    /// removed by the node already (§7.4.2).
    pub async fn fetch_registrations(&self, aor: &str) -> Result<Vec<(NodeId, SipRegistration)>, RequestError> {
        let resource = aor_resource(aor);
        let body = MessageBody::FetchReq(FetchReq {
            resource: resource.clone(),
            specifiers: vec![StoredDataSpecifier {
                kind: SIP_REGISTRATION,
                generation: 0,
                model_specifier: ModelSpecifier::Dictionary(Vec::new()),
            }],
        });
        let answer = self.handle.request(Destination::resource(resource), body).await?;
        if answer.rejected_values > 0 {
            tracing::warn!(
                aor,
                responder = %answer.responder,
                rejected = answer.rejected_values,
                "fetched SIP registrations failed their signature or access check"
            );
        }
        let MessageBody::FetchAns(ans) = answer.body else {
            return Err(RequestError::UnexpectedAnswer(format!(
                "{} answered a Fetch with {:?}",
                answer.responder,
                answer.body.code()
            )));
        };
        let mut out = Vec::new();
        for kr in ans.kind_responses.into_iter().filter(|k| k.kind == SIP_REGISTRATION) {
            for v in kr.values {
                let StoredDataValue::Dictionary { key, value } = v.value else {
                    continue;
                };
                if !value.exists {
                    continue;
                }
                let Ok(key) = <[u8; 16]>::try_from(key.as_slice()) else {
                    continue;
                };
                match SipRegistration::from_bytes(&value.value) {
                    Ok(reg) => out.push((NodeId(key), reg)),
                    Err(e) => tracing::debug!(aor, error = %e, "undecodable SIP registration skipped"),
                }
            }
        }
        Ok(out)
    }

    /// Every way to reach `aor` (RFC 7904 §4.2): its registrations, following
    /// AOR-to-AOR mappings (at most [`MAX_INDIRECTIONS`] deep, each AOR once),
    /// duplicates removed. A GRUU resolves to its own destination list without a
    /// Fetch (§4.1, §6). A Fetch that fails after some routes were found is
    /// skipped; one that fails before is the error.
    pub async fn resolve_routes(&self, aor: &str) -> Result<Resolution, ResolveError> {
        if let Some(gruu) = gruu_destinations(aor) {
            let destination_list = gruu?;
            return Ok(Resolution {
                routes: vec![Route {
                    destination_list,
                    contact_prefs: String::new(),
                    aor: aor_of(aor)?,
                }],
                external: Vec::new(),
            });
        }
        let start = aor_of(aor)?;
        let domain = domain_of(&start);
        if !self.serves_domain(domain) {
            return Err(ResolveError::DomainNotServed(domain.to_owned()));
        }
        if !self.handle.is_joined() {
            return Err(ResolveError::NotReady);
        }
        let mut out = Resolution::default();
        let mut visited: HashSet<String> = HashSet::from([start.clone()]);
        let mut queue: VecDeque<(String, usize)> = VecDeque::from([(start.clone(), 0)]);
        let mut looped: Option<String> = None;
        let mut too_deep = false;
        let mut failure: Option<RequestError> = None;
        let mut fetches = 0;
        while let Some((current, depth)) = queue.pop_front() {
            if fetches == MAX_FETCHES {
                too_deep = true;
                break;
            }
            fetches += 1;
            let registrations = match self.fetch_registrations(&current).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(aor = %current, error = %e, "fetch failed while resolving");
                    failure.get_or_insert(e);
                    continue;
                }
            };
            for (_key, reg) in registrations {
                match reg {
                    SipRegistration::Route {
                        contact_prefs,
                        destination_list,
                    } => push_route(
                        &mut out.routes,
                        Route {
                            destination_list,
                            contact_prefs: String::from_utf8_lossy(&contact_prefs).into_owned(),
                            aor: current.clone(),
                        },
                    ),
                    SipRegistration::Uri { uri } => {
                        let Ok(uri) = String::from_utf8(uri) else { continue };
                        // §4.2 step 3: GRUUs are kept as they are.
                        if let Some(gruu) = gruu_destinations(&uri) {
                            if let (Ok(destination_list), Ok(aor)) = (gruu, aor_of(&uri)) {
                                push_route(
                                    &mut out.routes,
                                    Route {
                                        destination_list,
                                        contact_prefs: String::new(),
                                        aor,
                                    },
                                );
                            }
                            continue;
                        }
                        let Ok(next) = aor_of(&uri) else { continue };
                        if !self.serves_domain(domain_of(&next)) {
                            if !out.external.contains(&next) {
                                out.external.push(next);
                            }
                        } else if visited.contains(&next) {
                            looped.get_or_insert(next);
                        } else if depth + 1 > MAX_INDIRECTIONS {
                            too_deep = true;
                        } else {
                            visited.insert(next.clone());
                            // §4.2 step 2: repeat the Fetch for that AOR.
                            queue.push_back((next, depth + 1));
                        }
                    }
                    SipRegistration::Unknown { .. } => {}
                }
            }
        }
        if !out.routes.is_empty() || !out.external.is_empty() {
            return Ok(out);
        }
        if let Some(e) = failure {
            return Err(match e {
                RequestError::Failed(Failure::NoRoute) | RequestError::Stopped => ResolveError::NotReady,
                e => ResolveError::Overlay(e),
            });
        }
        if let Some(aor) = looped {
            return Err(ResolveError::Loop(aor));
        }
        if too_deep {
            return Err(ResolveError::TooDeep(MAX_INDIRECTIONS));
        }
        Err(ResolveError::NotFound)
    }

    /// The destination lists (as Node-IDs) `aor` resolves to (RFC 7904 §4.2),
    /// duplicates removed; lists with other kinds of destination are left out.
    /// `NotFound` when there are none.
    pub async fn resolve(&self, aor: &str) -> Result<Vec<Vec<NodeId>>, ResolveError> {
        let resolution = self.resolve_routes(aor).await?;
        let mut lists: Vec<Vec<NodeId>> = Vec::new();
        for route in &resolution.routes {
            if let Some(ids) = route.node_ids()
                && !ids.is_empty()
                && !lists.contains(&ids)
            {
                lists.push(ids);
            }
        }
        if lists.is_empty() {
            return Err(ResolveError::NotFound);
        }
        Ok(lists)
    }

    /// Offers SIP (5060) or SIPS (5061) on this node: AppAttach requests for
    /// `app` are answered with `addr`, where the SIP front end listens for the
    /// connection (RFC 7904 §5.1).
    pub async fn offer(&self, app: u16, addr: SocketAddr) -> Result<(), UsageError> {
        Ok(self.handle.offer_application(ApplicationId(app), addr).await?)
    }

    /// Where to open a SIP (5060) or SIPS (5061) connection to `node`: AppAttach
    /// (RFC 7904 §5.1). The caller must check that the far end's certificate
    /// carries `node` before using the connection.
    pub async fn connect_addresses(&self, node: NodeId, app: u16) -> Result<Vec<SocketAddr>, UsageError> {
        Ok(self.handle.app_attach(node, ApplicationId(app)).await?)
    }
}

/// Adds `route` unless a route with the same destination list is there already
/// (§4.2 step 3: duplicates removed).
fn push_route(routes: &mut Vec<Route>, route: Route) {
    if route.destination_list.is_empty() || routes.iter().any(|r| r.destination_list == route.destination_list) {
        return;
    }
    routes.push(route);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aors_from_sip_uris() {
        let ok = |s: &str| aor_of(s).expect(s);
        assert_eq!(ok("sip:alice@example.com;transport=udp"), "alice@example.com");
        assert_eq!(ok("<sips:Alice%40x@example.com>"), "Alice@x@example.com");
        assert_eq!(ok("alice@example.com"), "alice@example.com");
        assert_eq!(
            ok("\"Alice\" <SIP:alice@Example.COM:5061;lr?Subject=hi>;tag=1"),
            "alice@example.com"
        );
        assert_eq!(ok("sip:alice:secret@example.com"), "alice@example.com");
        assert_eq!(ok("sip:bob@[2001:db8::1]:5060"), "bob@[2001:db8::1]");
        assert_eq!(ok("sip:%61lice@example.com"), "alice@example.com");
    }

    #[test]
    fn not_aors() {
        assert_eq!(aor_of(""), Err(AorError::Empty));
        assert_eq!(aor_of("sip:example.com"), Err(AorError::NoUser));
        assert_eq!(aor_of("sip:@example.com"), Err(AorError::NoUser));
        assert_eq!(aor_of("sip:alice@"), Err(AorError::NoHost));
        assert_eq!(aor_of("sip:alice@;x"), Err(AorError::NoHost));
        assert_eq!(aor_of("tel:+123@x"), Err(AorError::UnsupportedScheme("tel".into())));
        assert_eq!(aor_of("<sip:alice@example.com"), Err(AorError::Unterminated));
        assert_eq!(aor_of("sip:al%4@example.com"), Err(AorError::BadEscape));
        assert_eq!(aor_of("sip:al%ff@example.com"), Err(AorError::BadEscape));
        assert_eq!(
            aor_of("sip:al%0aice@example.com"),
            Err(AorError::InvalidCharacter('\n'))
        );
        assert_eq!(aor_of("sip:alice@exa mple.com"), Err(AorError::InvalidCharacter(' ')));
        assert_eq!(aor_of("sip:alice@exa/mple.com"), Err(AorError::InvalidCharacter('/')));
    }

    #[test]
    fn the_resource_is_the_hash_of_the_aor() {
        assert_eq!(
            aor_resource("alice@example.com"),
            hash_resource_name(b"alice@example.com")
        );
        assert_eq!(domain_of("a@b@example.com"), "example.com");
    }

    #[test]
    fn domain_patterns() {
        let p = |s: &str| DomainPattern::new(s).expect(s);
        // RFC 7904 §3.4's examples.
        assert!(p("dht\\.example\\.com").matches("dht.example.com"));
        assert!(!p("dht\\.example\\.com").matches("dhtxexample.com"));
        assert!(!p("dht\\.example\\.com").matches("a.dht.example.com"));
        assert!(p(".*\\.my\\.example").matches("phones.my.example"));
        assert!(p(".*\\.my\\.example").matches("A.B.MY.EXAMPLE"));
        assert!(!p(".*\\.my\\.example").matches("my.example"));
        // Exact and glob.
        assert!(p("Example.org").matches("example.org"));
        assert!(!p("example.org").matches("examplexorg"));
        assert!(p("*.example.org").matches("a.example.org"));
        assert!(!p("*.example.org").matches("example.org"));
        // More ERE.
        assert!(p("^[a-c]+[0-9]?\\.net$").matches("abc1.net"));
        assert!(!p("[^a]x").matches("ax"));
        assert!(p("a\\.org|b\\.org").matches("b.org"));
        assert!(DomainPattern::new("(a|b)\\.org").is_err());
        assert!(DomainPattern::new("*x").is_err());
        assert!(DomainPattern::new("[a-").is_err());
        assert!(DomainPattern::new("").is_err());
        // No blow-up on a pathological pattern.
        let evil = p("a*a*a*a*a*a*a*a*a*a*b");
        assert!(!evil.matches(&"a".repeat(200)));
    }

    #[test]
    fn routes_know_their_target_and_preference() {
        let r = Route {
            destination_list: vec![Destination::node(NodeId([1; 16])), Destination::node(NodeId([2; 16]))],
            contact_prefs: "(sip.schemes=SIPS)".into(),
            aor: "a@b".into(),
        };
        assert_eq!(r.target(), Some(NodeId([2; 16])));
        assert_eq!(r.node_ids(), Some(vec![NodeId([1; 16]), NodeId([2; 16])]));
        assert!(r.prefers_sips());
    }
}
