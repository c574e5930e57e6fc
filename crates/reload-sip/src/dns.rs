//! The DNS side of RFC 3263 for the front end's shell: hickory-resolver
//! answers the questions a [`Locator`] asks, one at a time.
//!
//! Names are asked for fully qualified (a SIP domain is never relative to
//! the node's search list). Every question is bounded in time, and so is the
//! whole location; a failed question is handed to the locator as such, which
//! goes on with the next step of RFC 3263 and says what failed if nothing is
//! found.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use crate::locate::{Answer, Destination, LocateError, Locator, NaptrRecord, Query, SipTarget, SrvRecord};
use crate::proxy::Transport;

/// How long one DNS question may take, the resolver's retries included.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(4);
/// How long one whole RFC 3263 location may take. A phone's non-INVITE
/// transaction gives up after 32 s (RFC 3261 §17.1.2.2), and a server that
/// fails may cost more time after this.
pub const LOCATE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the resolver waits for one answer before it retries.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Records read from one DNS answer; the locator keeps fewer still.
const MAX_ANSWER_RECORDS: usize = 64;
/// DNS answers the resolver keeps (it honours their TTLs).
const CACHE_SIZE: u64 = 256;

/// Which nameserver the front end asks.
#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    /// Ask this nameserver (UDP, and TCP when an answer is truncated) instead
    /// of the system's (`/etc/resolv.conf`).
    pub server: Option<SocketAddr>,
}

/// The resolver could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up DNS: {0}")]
pub struct DnsSetupError(String);

/// A DNS resolver for RFC 3263.
#[derive(Clone)]
pub struct SipResolver {
    resolver: TokioResolver,
}

impl std::fmt::Debug for SipResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipResolver").finish_non_exhaustive()
    }
}

impl SipResolver {
    /// A resolver asking `cfg.server`, or the system's nameservers.
    pub fn new(cfg: &DnsConfig) -> Result<SipResolver, DnsSetupError> {
        let mut builder = match cfg.server {
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                let config = ResolverConfig::from_name_servers(vec![server]);
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            }
            None => TokioResolver::builder(TokioRuntimeProvider::default())
                .map_err(|e| DnsSetupError(format!("reading the system configuration: {e}")))?,
        };
        bound(builder.options_mut());
        let resolver = builder.build().map_err(|e| DnsSetupError(e.to_string()))?;
        Ok(SipResolver { resolver })
    }

    /// RFC 3263 §4.1 and §4.2 for `target`: the destinations in the order to
    /// try them, over the transports `supported`. `seed` drives RFC 2782's
    /// weighted choice. Takes at most [`LOCATE_TIMEOUT`]; what was found by
    /// then is used.
    pub async fn locate(
        &self,
        target: &SipTarget,
        supported: &[Transport],
        seed: u64,
    ) -> Result<Vec<Destination>, LocateError> {
        let mut locator = Locator::new(target, supported, seed);
        let deadline = tokio::time::Instant::now() + LOCATE_TIMEOUT;
        while let Some(query) = locator.next_query() {
            match tokio::time::timeout_at(deadline, self.ask(&query)).await {
                Ok(answer) => locator.answer(answer),
                Err(_) => {
                    let why = format!("out of time ({LOCATE_TIMEOUT:?} for the whole search)");
                    locator.answer(Answer::Failed(why));
                    break;
                }
            }
        }
        locator.finish()
    }

    /// One question, bounded by [`QUERY_TIMEOUT`].
    async fn ask(&self, query: &Query) -> Answer {
        let Ok(name) = Name::from_ascii(format!("{}.", query.name())) else {
            return Answer::Failed("not a DNS name".into());
        };
        let asked = async {
            match query {
                Query::Naptr(_) => self.naptr(name).await,
                Query::Srv(_) => self.srv(name).await,
                Query::Addresses(_) => self.addresses(name).await,
            }
        };
        tokio::time::timeout(QUERY_TIMEOUT, asked)
            .await
            .unwrap_or_else(|_| Answer::Failed(format!("no answer within {QUERY_TIMEOUT:?}")))
    }

    async fn naptr(&self, name: Name) -> Answer {
        match self.resolver.lookup(name, RecordType::NAPTR).await {
            Ok(lookup) => Answer::Naptr(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::NAPTR(n) => Some(NaptrRecord {
                            order: n.order,
                            preference: n.preference,
                            flags: String::from_utf8_lossy(&n.flags).into_owned(),
                            services: String::from_utf8_lossy(&n.services).into_owned(),
                            regexp: String::from_utf8_lossy(&n.regexp).into_owned(),
                            replacement: n.replacement.to_ascii(),
                        }),
                        _ => None,
                    })
                    .take(MAX_ANSWER_RECORDS)
                    .collect(),
            ),
            Err(e) => failed_or_empty(&e, Answer::Naptr(Vec::new())),
        }
    }

    async fn srv(&self, name: Name) -> Answer {
        match self.resolver.lookup(name, RecordType::SRV).await {
            Ok(lookup) => Answer::Srv(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(s) => Some(SrvRecord {
                            priority: s.priority,
                            weight: s.weight,
                            port: s.port,
                            target: s.target.to_ascii(),
                        }),
                        _ => None,
                    })
                    .take(MAX_ANSWER_RECORDS)
                    .collect(),
            ),
            Err(e) => failed_or_empty(&e, Answer::Srv(Vec::new())),
        }
    }

    async fn addresses(&self, name: Name) -> Answer {
        match self.resolver.lookup_ip(name).await {
            Ok(lookup) => Answer::Addresses(lookup.iter().take(MAX_ANSWER_RECORDS).collect()),
            Err(e) => failed_or_empty(&e, Answer::Addresses(Vec::new())),
        }
    }
}

/// NXDOMAIN and "no data" are answers (no records); anything else failed.
fn failed_or_empty(error: &NetError, empty: Answer) -> Answer {
    if error.is_no_records_found() {
        empty
    } else {
        Answer::Failed(error.to_string())
    }
}

/// Keeps the system's resolver options, but waits at most
/// [`ATTEMPT_TIMEOUT`] per try and tries twice, asks for A and AAAA records
/// both (IPv4 first, as the front end's sockets usually are), and keeps a
/// small cache.
fn bound(opts: &mut ResolverOpts) {
    opts.timeout = opts.timeout.min(ATTEMPT_TIMEOUT);
    opts.attempts = opts.attempts.clamp(1, 2);
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.cache_size = CACHE_SIZE;
}
