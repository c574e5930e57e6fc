//! Locating SIP servers (RFC 3263 §4) as a sans-IO state machine.
//!
//! A request for another domain names its next hop with a SIP or SIPS URI;
//! [`SipTarget`] keeps what the URI says about it (§4: TARGET is the `maddr`
//! parameter, else the host; the port; the `transport` parameter; the
//! scheme). A [`Locator`] then asks for DNS records one question at a time
//! ([`Locator::next_query`]), takes each answer ([`Locator::answer`]) and ends
//! with the (transport, address) pairs to try, in order ([`Locator::finish`]).
//! It does no I/O: the front end's shell asks a real resolver
//! (`crate::dns`), the unit tests answer by hand.
//!
//! The rules followed, in the order the RFC gives them:
//!
//! - §4.2: a numeric TARGET needs no DNS at all ([`numeric`]).
//! - §4.1: the `transport` parameter picks the transport; without it a
//!   numeric TARGET or an explicit port means UDP for a SIP URI and TCP
//!   (so TLS, RFC 3261 §26.2.2) for a SIPS URI.
//! - §4.2: with an explicit port only the A and AAAA records of the host are
//!   asked for; with a transport parameter but no port, the SRV records of
//!   that transport (`_sips` for SIPS or TLS, else `_sip`).
//! - §4.1: otherwise the domain's NAPTR records pick the transports: services
//!   `SIP+D2U`, `SIP+D2T`, `SIPS+D2T` (only `SIPS+` for a SIPS URI), the
//!   transports this node supports, in Order then Preference; once a record
//!   matches, records of another Order are not considered (RFC 3403 §4.1).
//!   Without a usable NAPTR record, the SRV records of each supported
//!   transport (`_sip._udp`, `_sip._tcp` for a SIP URI, `_sips._tcp` for a
//!   SIPS URI).
//! - §4.2: SRV records are ordered by RFC 2782 (priority, then a weighted
//!   random choice among equal priorities); a target of "." means the
//!   service is not offered. Without any SRV record, the domain's own A and
//!   AAAA records at the transport's default port.
//!
//! What to do with the list, trying the next entry when one fails (§4.3), is
//! the proxy's business.
//!
//! DNS answers are network data: every list taken from them is bounded
//! ([`MAX_NAPTR`], [`MAX_SRV`], [`MAX_HOSTS`], [`MAX_ADDRESSES_PER_HOST`],
//! [`MAX_DESTINATIONS`]), and so is the number of questions ([`MAX_QUERIES`]).

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::message::SipUri;
use crate::proxy::Transport;

/// NAPTR records taken from one answer (usable ones; others are skipped).
/// A domain has one per service, three at most that this node can use.
pub const MAX_NAPTR: usize = 16;
/// SRV records taken from one answer, after sorting by priority.
pub const MAX_SRV: usize = 16;
/// (transport, host, port) entries waiting for their addresses.
pub const MAX_HOPS: usize = 16;
/// Distinct hosts whose addresses are asked for.
pub const MAX_HOSTS: usize = 8;
/// Addresses taken from one host's A and AAAA answer.
pub const MAX_ADDRESSES_PER_HOST: usize = 4;
/// Destinations in the final list: each may cost a transaction timeout
/// (32 s, RFC 3261 §17.1.1.2) before the next is tried, so more would only
/// outlast the caller's patience.
pub const MAX_DESTINATIONS: usize = 8;
/// Questions one location asks: one NAPTR, one SRV per transport, one per host.
pub const MAX_QUERIES: usize = 1 + 3 + MAX_HOSTS;

/// The default port of SIP over UDP and TCP (RFC 3261 §19.1.1).
pub const SIP_PORT: u16 = 5060;
/// The default port of SIP over TLS (RFC 3261 §19.1.1).
pub const SIPS_PORT: u16 = 5061;

/// What a SIP or SIPS URI says about where its request goes (RFC 3263 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipTarget {
    /// TARGET: the `maddr` parameter if present, else the host; lowercase.
    /// An IPv6 reference may keep its brackets.
    pub host: String,
    /// The port, if the URI gives one.
    pub port: Option<u16>,
    /// The `transport` parameter, lowercase, if the URI has one.
    pub transport: Option<String>,
    /// Whether the scheme is `sips`.
    pub secure: bool,
}

impl SipTarget {
    /// The target of `uri` (RFC 3263 §4: `maddr` overrides the host).
    pub fn from_uri(uri: &SipUri) -> SipTarget {
        let host = match uri.param("maddr") {
            Some(Some(maddr)) if !maddr.is_empty() => maddr.to_ascii_lowercase(),
            _ => uri.host.to_ascii_lowercase(),
        };
        let transport = match uri.param("transport") {
            Some(Some(t)) => Some(t.to_ascii_lowercase()),
            _ => None,
        };
        SipTarget {
            host,
            port: uri.port,
            transport,
            secure: uri.scheme.eq_ignore_ascii_case("sips"),
        }
    }

    /// The TARGET as an IP address, if it is numeric.
    fn ip(&self) -> Option<IpAddr> {
        let bare = self.host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        bare.unwrap_or(&self.host).parse().ok()
    }

    /// The TARGET as a domain name: lowercase, no trailing dot.
    fn domain(&self) -> String {
        normalize(&self.host)
    }
}

/// One place to send the request: a transport and an address (RFC 3263 §4:
/// "an IP address, port and transport protocol").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The transport.
    pub transport: Transport,
    /// The address and port.
    pub addr: SocketAddr,
}

/// A DNS question. Names are lowercase, without the trailing dot; they are
/// fully qualified (the resolver should not try search domains).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Query {
    /// The NAPTR records of a domain (§4.1).
    Naptr(String),
    /// The SRV records of an owner name such as `_sip._udp.example.com` (§4.1, §4.2).
    Srv(String),
    /// The A and AAAA records of a host (§4.2).
    Addresses(String),
}

impl Query {
    /// The name asked about.
    pub fn name(&self) -> &str {
        match self {
            Query::Naptr(n) | Query::Srv(n) | Query::Addresses(n) => n,
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Query::Naptr(n) => write!(f, "NAPTR {n}"),
            Query::Srv(n) => write!(f, "SRV {n}"),
            Query::Addresses(n) => write!(f, "A/AAAA {n}"),
        }
    }
}

/// A NAPTR record (RFC 3403 §4.1), its strings as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    /// Order: lower first, and only one Order is used.
    pub order: u16,
    /// Preference among records of the same Order: lower first.
    pub preference: u16,
    /// Flags; RFC 3263 uses "s" (the replacement names SRV records).
    pub flags: String,
    /// Service, e.g. `SIP+D2U`.
    pub services: String,
    /// Regular expression; RFC 3263 uses none.
    pub regexp: String,
    /// Replacement: the SRV owner name.
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Priority: lower first.
    pub priority: u16,
    /// Weight among records of the same priority.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host; "." means the service is not offered.
    pub target: String,
}

/// The answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NAPTR records (empty for NXDOMAIN or no data).
    Naptr(Vec<NaptrRecord>),
    /// SRV records (empty for NXDOMAIN or no data).
    Srv(Vec<SrvRecord>),
    /// Addresses (empty for NXDOMAIN or no data).
    Addresses(Vec<IpAddr>),
    /// The question got no answer (timeout, SERVFAIL, refused, a name DNS
    /// cannot carry). Taken as "no records", and the reason is kept for the
    /// error should nothing be found at all.
    Failed(String),
}

/// Why no destination was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    /// The URI's `transport` parameter names a transport this node cannot use.
    #[error("the URI asks for transport \"{0}\", which this node cannot use towards another domain")]
    UnsupportedTransport(String),
    /// A SIPS URI needs TLS (RFC 3261 §26.2.2), which this node cannot open.
    #[error("a SIPS URI needs TLS, which this node cannot open towards another domain")]
    SipsNeedsTls,
    /// A SIPS URI with `transport=udp`: TLS does not run over UDP.
    #[error("a SIPS URI cannot use UDP (TLS runs over TCP)")]
    SipsOverUdp,
    /// DNS answered, but names no SIP server this node can use.
    #[error("DNS names no SIP server for {domain} that this node can use")]
    NotFound {
        /// The domain.
        domain: String,
    },
    /// DNS did not answer well enough to find a server.
    #[error("DNS failed for {domain} ({why})")]
    DnsFailed {
        /// The domain.
        domain: String,
        /// The last failure.
        why: String,
    },
}

/// The default port of a transport (RFC 3261 §19.1.1).
pub fn default_port(transport: Transport) -> u16 {
    match transport {
        Transport::Tls => SIPS_PORT,
        Transport::Udp | Transport::Tcp => SIP_PORT,
    }
}

/// RFC 3263 §4.1 and §4.2 for a numeric TARGET: the one destination, with no
/// DNS; `None` when the TARGET is a name.
pub fn numeric(target: &SipTarget, supported: &[Transport]) -> Option<Result<Destination, LocateError>> {
    let ip = target.ip()?;
    Some(chosen_transport(target, supported).map(|transport| Destination {
        transport,
        addr: SocketAddr::new(ip, target.port.unwrap_or(default_port(transport))),
    }))
}

/// §4.1 when the URI decides: its `transport` parameter, else UDP for SIP and
/// TLS over TCP for SIPS. It must be one this node supports.
fn chosen_transport(target: &SipTarget, supported: &[Transport]) -> Result<Transport, LocateError> {
    let transport = match target.transport.as_deref() {
        Some(param) => param_transport(param, target.secure)?,
        None if target.secure => Transport::Tls,
        None => Transport::Udp,
    };
    if supported.contains(&transport) {
        Ok(transport)
    } else if transport == Transport::Tls {
        Err(LocateError::SipsNeedsTls)
    } else {
        Err(LocateError::UnsupportedTransport(transport_name(transport).to_owned()))
    }
}

/// The transport a `transport` parameter names. A SIPS URI's TCP is TLS
/// (RFC 3261 §26.2.2); `tls` is the older spelling of the same.
fn param_transport(param: &str, secure: bool) -> Result<Transport, LocateError> {
    match (param, secure) {
        ("udp", false) => Ok(Transport::Udp),
        ("udp", true) => Err(LocateError::SipsOverUdp),
        ("tcp", false) => Ok(Transport::Tcp),
        ("tcp", true) | ("tls", _) => Ok(Transport::Tls),
        (other, _) => Err(LocateError::UnsupportedTransport(other.to_owned())),
    }
}

fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

/// The SRV owner name for a transport (§4.2): `_sips._tcp` for TLS, else
/// `_sip._udp` or `_sip._tcp`.
fn srv_name(transport: Transport, domain: &str) -> String {
    match transport {
        Transport::Udp => format!("_sip._udp.{domain}"),
        Transport::Tcp => format!("_sip._tcp.{domain}"),
        Transport::Tls => format!("_sips._tcp.{domain}"),
    }
}

/// A DNS name as compared here: lowercase, without the trailing dot (the
/// root, ".", becomes empty).
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The transport a NAPTR record offers, if RFC 3263 §4.1 lets this client
/// use it: flag "s" (its replacement names SRV records), no regular
/// expression, a replacement, a service of SIP (or SIPS only, for a SIPS URI)
/// over a transport this node supports. `SIPS+D2U` is never usable (no TLS
/// over UDP), nor is SCTP (`D2S`), which this node does not speak.
fn naptr_transport(record: &NaptrRecord, secure: bool, supported: &[Transport]) -> Option<Transport> {
    if !record.flags.eq_ignore_ascii_case("s") || !record.regexp.is_empty() || normalize(&record.replacement).is_empty()
    {
        return None;
    }
    let transport = match record.services.to_ascii_uppercase().as_str() {
        "SIP+D2U" if !secure => Transport::Udp,
        "SIP+D2T" if !secure => Transport::Tcp,
        "SIPS+D2T" => Transport::Tls,
        _ => return None,
    };
    supported.contains(&transport).then_some(transport)
}

/// §4.1: the SRV owner names NAPTR records lead to, in the order to use
/// them. Only the first usable Order counts (RFC 3403 §4.1: "once a match is
/// found the client MUST NOT consider records with a different Order"); its
/// records go by Preference. Empty when no record is usable.
pub fn select_naptr(records: &[NaptrRecord], secure: bool, supported: &[Transport]) -> Vec<(String, Transport)> {
    let mut usable: Vec<(&NaptrRecord, Transport)> = records
        .iter()
        .filter_map(|r| naptr_transport(r, secure, supported).map(|t| (r, t)))
        .take(MAX_NAPTR)
        .collect();
    usable.sort_by_key(|(r, _)| (r.order, r.preference));
    let Some(order) = usable.first().map(|(r, _)| r.order) else {
        return Vec::new();
    };
    let mut names: Vec<(String, Transport)> = Vec::new();
    for (record, transport) in usable.into_iter().filter(|(r, _)| r.order == order) {
        let entry = (normalize(&record.replacement), transport);
        if !names.contains(&entry) {
            names.push(entry);
        }
    }
    names
}

/// §4.1 without NAPTR records: the SRV names of each transport this node
/// supports, `_sip` for a SIP URI and `_sips` for a SIPS URI. UDP comes
/// before TCP because §4.1 makes UDP the default for a SIP URI.
fn srv_without_naptr(domain: &str, secure: bool, supported: &[Transport]) -> VecDeque<(String, Transport)> {
    let candidates: &[Transport] = if secure {
        &[Transport::Tls]
    } else {
        &[Transport::Udp, Transport::Tcp]
    };
    candidates
        .iter()
        .filter(|t| supported.contains(t))
        .map(|t| (srv_name(*t, domain), *t))
        .collect()
}

/// RFC 2782 "Usage rules": lowest priority first; among equal priorities, a
/// weighted random order (weight-0 records first in the running sum, so they
/// are picked only when the random number is 0). At most [`MAX_SRV`] records
/// are kept. The "." records stay in; the caller drops them.
pub fn order_srv(mut records: Vec<SrvRecord>, rng: &mut impl Rng) -> Vec<SrvRecord> {
    records.sort_by_key(|r| r.priority);
    records.truncate(MAX_SRV);
    let mut ordered = Vec::with_capacity(records.len());
    for group in records.chunk_by(|a, b| a.priority == b.priority) {
        let mut left: Vec<SrvRecord> = group.to_vec();
        left.sort_by_key(|r| r.weight != 0);
        while !left.is_empty() {
            let index = pick_by_weight(&left, rng);
            ordered.push(left.remove(index));
        }
    }
    ordered
}

/// RFC 2782: a random number in 0..=sum of the weights (inclusive, as the
/// RFC says, which gives the first record one extra chance in sum+1: that is
/// how a weight-0 record keeps "a very small chance of being selected"); the
/// first record whose running sum reaches it.
fn pick_by_weight(records: &[SrvRecord], rng: &mut impl Rng) -> usize {
    let total: u32 = records.iter().map(|r| u32::from(r.weight)).sum();
    let pick = rng.random_range(0..=total);
    let mut running = 0u32;
    records
        .iter()
        .position(|r| {
            running += u32::from(r.weight);
            running >= pick
        })
        .unwrap_or(0)
}

/// A server still to be resolved to addresses.
#[derive(Debug, Clone)]
struct Hop {
    transport: Transport,
    host: String,
    port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Naptr,
    Srv,
    Hosts,
    Done,
}

/// One RFC 3263 location in progress: see the module documentation.
#[derive(Debug)]
pub struct Locator {
    domain: String,
    secure: bool,
    supported: Vec<Transport>,
    rng: StdRng,
    stage: Stage,
    /// The question asked and not answered yet.
    pending: Option<Query>,
    /// SRV owner names still to ask, each with its transport.
    srv: VecDeque<(String, Transport)>,
    /// Whether any SRV record (even ".") was found: then the domain's own
    /// A and AAAA records are not used (§4.2).
    srv_found: bool,
    /// The transport for the domain's own addresses when no SRV record is
    /// found (§4.2, last paragraph).
    fallback: Option<Transport>,
    hops: VecDeque<Hop>,
    /// Hosts asked about and their addresses (a host may serve two transports).
    resolved: Vec<(String, Vec<IpAddr>)>,
    found: Vec<Destination>,
    queries: usize,
    /// The last question that failed, and why.
    failure: Option<String>,
    /// Decided before any question: the URI itself cannot be served.
    error: Option<LocateError>,
}

impl Locator {
    /// Starts locating `target` over the transports this node `supported`s.
    /// `seed` drives the RFC 2782 weighted choice (a fixed seed gives a fixed
    /// order, for tests).
    pub fn new(target: &SipTarget, supported: &[Transport], seed: u64) -> Locator {
        let domain = target.domain();
        let mut locator = Locator {
            domain: domain.clone(),
            secure: target.secure,
            supported: supported.to_vec(),
            rng: StdRng::seed_from_u64(seed),
            stage: Stage::Done,
            pending: None,
            srv: VecDeque::new(),
            srv_found: false,
            fallback: None,
            hops: VecDeque::new(),
            resolved: Vec::new(),
            found: Vec::new(),
            queries: 0,
            failure: None,
            error: None,
        };
        if let Some(result) = numeric(target, supported) {
            match result {
                Ok(destination) => locator.found.push(destination),
                Err(e) => locator.error = Some(e),
            }
            return locator;
        }
        if domain.is_empty() {
            locator.error = Some(LocateError::NotFound { domain });
            return locator;
        }
        let explicit = target.port.is_some() || target.transport.is_some();
        if !explicit {
            locator.start_naptr();
            return locator;
        }
        match (chosen_transport(target, supported), target.port) {
            (Err(e), _) => locator.error = Some(e),
            // §4.2: an explicit port means the host's A and AAAA records only.
            (Ok(transport), Some(port)) => {
                locator.hops.push_back(Hop {
                    transport,
                    host: domain,
                    port,
                });
                locator.stage = Stage::Hosts;
            }
            // §4.2: a transport parameter means that transport's SRV records.
            (Ok(transport), None) => {
                locator.srv.push_back((srv_name(transport, &domain), transport));
                locator.fallback = Some(transport);
                locator.stage = Stage::Srv;
            }
        }
        locator
    }

    /// §4.1: NAPTR first, unless no transport of the URI's scheme is usable.
    fn start_naptr(&mut self) {
        if self.secure && !self.supported.contains(&Transport::Tls) {
            self.error = Some(LocateError::SipsNeedsTls);
            return;
        }
        self.stage = Stage::Naptr;
    }

    /// The next question to answer with [`Locator::answer`], or `None` when
    /// the location is over and [`Locator::finish`] has the result. Until it
    /// is answered, the same question is returned again.
    pub fn next_query(&mut self) -> Option<Query> {
        if let Some(pending) = &self.pending {
            return Some(pending.clone());
        }
        loop {
            match self.stage {
                Stage::Naptr => return self.ask(Query::Naptr(self.domain.clone())),
                Stage::Srv => match self.srv.front() {
                    Some((name, _)) => return self.ask(Query::Srv(name.clone())),
                    None => self.srv_done(),
                },
                Stage::Hosts => match self.next_host() {
                    Some(host) => return self.ask(Query::Addresses(host)),
                    None => self.stage = Stage::Done,
                },
                Stage::Done => return None,
            }
        }
    }

    fn ask(&mut self, query: Query) -> Option<Query> {
        if self.queries >= MAX_QUERIES {
            self.stage = Stage::Done;
            return None;
        }
        self.queries += 1;
        self.pending = Some(query.clone());
        Some(query)
    }

    /// The answer to the question [`Locator::next_query`] returned. An answer
    /// of the wrong kind counts as a failed question; an answer with no
    /// question outstanding is ignored.
    pub fn answer(&mut self, answer: Answer) {
        let Some(query) = self.pending.take() else {
            return;
        };
        let answer = match answer {
            Answer::Failed(why) => {
                self.failure = Some(format!("{query}: {why}"));
                None
            }
            other => Some(other),
        };
        match (query, answer) {
            (Query::Naptr(_), Some(Answer::Naptr(records))) => self.naptr_answered(records),
            (Query::Srv(_), Some(Answer::Srv(records))) => self.srv_answered(records),
            (Query::Addresses(host), Some(Answer::Addresses(addrs))) => self.addresses_answered(host, addrs),
            (query, other) => {
                if let Some(other) = other {
                    self.failure = Some(format!("{query}: got an answer of another kind ({other:?})"));
                }
                self.unanswered(query);
            }
        }
    }

    /// A question that failed counts as one with no records, so the next
    /// step of §4.1 or §4.2 still runs.
    fn unanswered(&mut self, query: Query) {
        match query {
            Query::Naptr(_) => self.naptr_answered(Vec::new()),
            Query::Srv(_) => self.srv_answered(Vec::new()),
            Query::Addresses(host) => self.addresses_answered(host, Vec::new()),
        }
    }

    /// §4.1: usable NAPTR records give the SRV names; none (or a failed
    /// query) means the SRV names of each supported transport.
    fn naptr_answered(&mut self, records: Vec<NaptrRecord>) {
        let selected = select_naptr(&records, self.secure, &self.supported);
        if let Some((_, first)) = selected.first() {
            // §4.2: "the transport protocol determined previously".
            self.fallback = Some(*first);
            self.srv = selected.into_iter().collect();
        } else {
            self.srv = srv_without_naptr(&self.domain, self.secure, &self.supported);
            self.fallback = self.srv.front().map(|(_, t)| *t);
        }
        self.stage = Stage::Srv;
    }

    /// §4.2: the records of one SRV name, ordered by RFC 2782, become hops.
    fn srv_answered(&mut self, records: Vec<SrvRecord>) {
        let Some((_, transport)) = self.srv.pop_front() else {
            return;
        };
        if records.is_empty() {
            return;
        }
        self.srv_found = true;
        for record in order_srv(records, &mut self.rng) {
            let host = normalize(&record.target);
            // RFC 2782: a target of "." means "decidedly not available".
            if host.is_empty() || self.hops.len() >= MAX_HOPS {
                continue;
            }
            self.hops.push_back(Hop {
                transport,
                host,
                port: record.port,
            });
        }
    }

    /// After the SRV questions: with no SRV record at all, the domain's own
    /// addresses at the default port (§4.2, last paragraph).
    fn srv_done(&mut self) {
        if !self.srv_found
            && let Some(transport) = self.fallback
        {
            self.hops.push_back(Hop {
                transport,
                host: self.domain.clone(),
                port: default_port(transport),
            });
        }
        self.stage = Stage::Hosts;
    }

    /// Turns hops whose addresses are known into destinations; returns the
    /// next host to ask about, if any.
    fn next_host(&mut self) -> Option<String> {
        while let Some(hop) = self.hops.front().cloned() {
            if self.found.len() >= MAX_DESTINATIONS {
                self.hops.clear();
                return None;
            }
            let known = match hop.host.parse::<IpAddr>() {
                // An SRV target should be a name, but an address needs no question.
                Ok(ip) => Some(vec![ip]),
                Err(_) => self
                    .resolved
                    .iter()
                    .find(|(h, _)| *h == hop.host)
                    .map(|(_, a)| a.clone()),
            };
            match known {
                Some(addrs) => {
                    self.hops.pop_front();
                    self.add(hop.transport, hop.port, &addrs);
                }
                None if self.resolved.len() >= MAX_HOSTS => {
                    self.hops.pop_front();
                }
                None => return Some(hop.host),
            }
        }
        None
    }

    fn addresses_answered(&mut self, host: String, mut addrs: Vec<IpAddr>) {
        addrs.truncate(MAX_ADDRESSES_PER_HOST);
        self.resolved.push((host, addrs));
    }

    fn add(&mut self, transport: Transport, port: u16, addrs: &[IpAddr]) {
        for ip in addrs {
            let destination = Destination {
                transport,
                addr: SocketAddr::new(*ip, port),
            };
            if self.found.len() < MAX_DESTINATIONS && !self.found.contains(&destination) {
                self.found.push(destination);
            }
        }
    }

    /// The destinations in the order to try them (§4.3 tries the next when
    /// one fails). May be called before [`Locator::next_query`] returns
    /// `None` (say, when time is up): then it gives what was found so far.
    pub fn finish(self) -> Result<Vec<Destination>, LocateError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.found.is_empty() {
            return Ok(self.found);
        }
        Err(match self.failure {
            Some(why) => LocateError::DnsFailed {
                domain: self.domain,
                why,
            },
            None => LocateError::NotFound { domain: self.domain },
        })
    }
}

#[cfg(test)]
#[path = "locate_tests.rs"]
mod tests;
