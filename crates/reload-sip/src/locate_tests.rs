//! RFC 3263 §4.1/§4.2 and RFC 2782 ordering, with DNS answered from a table.

use std::collections::HashMap;
use std::net::IpAddr;

use super::*;

const ALL: &[Transport] = &[Transport::Udp, Transport::Tcp, Transport::Tls];
const PLAIN: &[Transport] = &[Transport::Udp, Transport::Tcp];

fn target(uri: &str) -> SipTarget {
    SipTarget::from_uri(&SipUri::parse(uri).expect("a SIP URI"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

fn dest(transport: Transport, addr: &str) -> Destination {
    Destination {
        transport,
        addr: addr.parse().expect("a socket address"),
    }
}

fn naptr(order: u16, preference: u16, services: &str, replacement: &str) -> NaptrRecord {
    NaptrRecord {
        order,
        preference,
        flags: "s".into(),
        services: services.into(),
        regexp: String::new(),
        replacement: replacement.into(),
    }
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

/// A DNS that answers from a table; a question not in it has no records.
#[derive(Default)]
struct Dns(HashMap<Query, Answer>);

impl Dns {
    fn naptr(mut self, name: &str, records: Vec<NaptrRecord>) -> Dns {
        self.0.insert(Query::Naptr(name.into()), Answer::Naptr(records));
        self
    }
    fn srv(mut self, name: &str, records: Vec<SrvRecord>) -> Dns {
        self.0.insert(Query::Srv(name.into()), Answer::Srv(records));
        self
    }
    fn host(mut self, name: &str, addrs: &[&str]) -> Dns {
        let addrs = addrs.iter().map(|a| ip(a)).collect();
        self.0.insert(Query::Addresses(name.into()), Answer::Addresses(addrs));
        self
    }
    fn fail(mut self, query: Query, why: &str) -> Dns {
        self.0.insert(query, Answer::Failed(why.into()));
        self
    }
    fn ask(&self, query: &Query) -> Answer {
        self.0.get(query).cloned().unwrap_or_else(|| match query {
            Query::Naptr(_) => Answer::Naptr(Vec::new()),
            Query::Srv(_) => Answer::Srv(Vec::new()),
            Query::Addresses(_) => Answer::Addresses(Vec::new()),
        })
    }
}

/// Runs a location to its end: the questions asked and the result.
fn locate(uri: &str, supported: &[Transport], dns: &Dns) -> (Vec<Query>, Result<Vec<Destination>, LocateError>) {
    let mut locator = Locator::new(&target(uri), supported, 7);
    let mut asked = Vec::new();
    while let Some(query) = locator.next_query() {
        assert!(
            asked.len() < MAX_QUERIES,
            "more than {MAX_QUERIES} questions: {asked:?}"
        );
        locator.answer(dns.ask(&query));
        asked.push(query);
    }
    (asked, locator.finish())
}

// ---- numeric TARGET (§4.1, §4.2) ----

#[test]
fn a_numeric_target_needs_no_dns_and_takes_the_default_port_of_its_transport() {
    let dns = Dns::default();
    for (uri, expected) in [
        ("sip:bob@192.0.2.1", dest(Transport::Udp, "192.0.2.1:5060")),
        ("sip:bob@192.0.2.1:5070", dest(Transport::Udp, "192.0.2.1:5070")),
        (
            "sip:bob@192.0.2.1;transport=tcp",
            dest(Transport::Tcp, "192.0.2.1:5060"),
        ),
        (
            "sip:bob@192.0.2.1;transport=TLS",
            dest(Transport::Tls, "192.0.2.1:5061"),
        ),
        ("sips:bob@192.0.2.1", dest(Transport::Tls, "192.0.2.1:5061")),
        (
            "sips:bob@[2001:db8::1]:5071",
            dest(Transport::Tls, "[2001:db8::1]:5071"),
        ),
        ("sip:[2001:db8::1]", dest(Transport::Udp, "[2001:db8::1]:5060")),
    ] {
        let (asked, result) = locate(uri, ALL, &dns);
        assert!(asked.is_empty(), "{uri}: {asked:?}");
        assert_eq!(result, Ok(vec![expected]), "{uri}");
        assert_eq!(numeric(&target(uri), ALL), Some(Ok(expected)), "{uri}");
    }
    assert_eq!(numeric(&target("sip:bob@example.com"), ALL), None);
}

#[test]
fn maddr_overrides_the_host() {
    let t = target("sip:bob@example.com;maddr=192.0.2.7");
    assert_eq!(t.host, "192.0.2.7");
    assert_eq!(numeric(&t, ALL), Some(Ok(dest(Transport::Udp, "192.0.2.7:5060"))));
}

#[test]
fn a_transport_this_node_cannot_use_is_refused_before_any_question() {
    let dns = Dns::default();
    for (uri, error) in [
        (
            "sip:bob@192.0.2.1;transport=sctp",
            LocateError::UnsupportedTransport("sctp".into()),
        ),
        (
            "sip:bob@example.com;transport=ws",
            LocateError::UnsupportedTransport("ws".into()),
        ),
        ("sips:bob@example.com;transport=udp", LocateError::SipsOverUdp),
        ("sips:bob@192.0.2.1", LocateError::SipsNeedsTls),
        ("sips:bob@example.com", LocateError::SipsNeedsTls),
        ("sips:bob@example.com:5061", LocateError::SipsNeedsTls),
        ("sip:bob@example.com;transport=tls", LocateError::SipsNeedsTls),
    ] {
        let (asked, result) = locate(uri, PLAIN, &dns);
        assert!(asked.is_empty(), "{uri}: {asked:?}");
        assert_eq!(result, Err(error), "{uri}");
    }
    // Over UDP only, TCP is as foreign as SCTP.
    let (_, result) = locate("sip:bob@192.0.2.1;transport=tcp", &[Transport::Udp], &dns);
    assert_eq!(result, Err(LocateError::UnsupportedTransport("tcp".into())));
}

// ---- explicit port (§4.2) ----

#[test]
fn an_explicit_port_asks_only_for_the_host_addresses() {
    let dns = Dns::default()
        .host("sip.example.com", &["192.0.2.1", "2001:db8::1"])
        // Never asked: an explicit port skips NAPTR and SRV.
        .srv("_sip._udp.sip.example.com", vec![srv(0, 0, 9999, "other.example.com")]);
    let (asked, result) = locate("sip:bob@sip.example.com:5080", ALL, &dns);
    assert_eq!(asked, vec![Query::Addresses("sip.example.com".into())]);
    assert_eq!(
        result,
        Ok(vec![
            dest(Transport::Udp, "192.0.2.1:5080"),
            dest(Transport::Udp, "[2001:db8::1]:5080")
        ])
    );
    // A SIPS URI: TLS to the same port; a transport parameter: that transport.
    let (_, result) = locate("sips:bob@sip.example.com:5080", ALL, &dns);
    assert_eq!(result.expect("found")[0], dest(Transport::Tls, "192.0.2.1:5080"));
    let (_, result) = locate("sip:bob@sip.example.com:5080;transport=tcp", ALL, &dns);
    assert_eq!(result.expect("found")[0], dest(Transport::Tcp, "192.0.2.1:5080"));
    // The trailing dot of a fully qualified name changes nothing.
    let (asked, _) = locate("sip:bob@SIP.example.com.:5080", ALL, &dns);
    assert_eq!(asked, vec![Query::Addresses("sip.example.com".into())]);
}

// ---- transport parameter (§4.2) ----

#[test]
fn a_transport_parameter_asks_for_the_srv_records_of_that_transport() {
    for (uri, name) in [
        ("sip:bob@example.com;transport=udp", "_sip._udp.example.com"),
        ("sip:bob@example.com;transport=tcp", "_sip._tcp.example.com"),
        // §4.2: a SIP URI over TLS and a SIPS URI use "_sips".
        ("sip:bob@example.com;transport=tls", "_sips._tcp.example.com"),
        ("sips:bob@example.com;transport=tcp", "_sips._tcp.example.com"),
    ] {
        let dns = Dns::default()
            .srv(name, vec![srv(0, 0, 7000, "a.example.com")])
            .host("a.example.com", &["192.0.2.10"]);
        let (asked, result) = locate(uri, ALL, &dns);
        assert_eq!(asked[0], Query::Srv(name.into()), "{uri}");
        assert_eq!(asked.len(), 2, "{uri}: {asked:?}");
        assert_eq!(result.expect("found")[0].addr, "192.0.2.10:7000".parse().expect("addr"));
    }
}

#[test]
fn a_transport_parameter_without_srv_records_uses_the_domain_at_the_default_port() {
    let dns = Dns::default().host("example.com", &["192.0.2.20"]);
    let (asked, result) = locate("sip:bob@example.com;transport=tcp", ALL, &dns);
    assert_eq!(
        asked,
        vec![
            Query::Srv("_sip._tcp.example.com".into()),
            Query::Addresses("example.com".into())
        ]
    );
    assert_eq!(result, Ok(vec![dest(Transport::Tcp, "192.0.2.20:5060")]));
    let (_, result) = locate("sips:bob@example.com;transport=tcp", ALL, &dns);
    assert_eq!(result, Ok(vec![dest(Transport::Tls, "192.0.2.20:5061")]));
}

// ---- NAPTR (§4.1) ----

/// RFC 3263 §4.1's example: SIPS+D2T (order 50), SIP+D2T (90), SIP+D2U (100).
fn rfc_example() -> Vec<NaptrRecord> {
    vec![
        naptr(100, 50, "SIP+D2U", "_sip._udp.example.com."),
        naptr(50, 50, "SIPS+D2T", "_sips._tcp.example.com."),
        naptr(90, 50, "SIP+D2T", "_sip._tcp.example.com"),
    ]
}

#[test]
fn naptr_picks_the_lowest_usable_order_and_no_other() {
    // "Since the client supports TCP and UDP, TCP will be used" (§4.1).
    assert_eq!(
        select_naptr(&rfc_example(), false, PLAIN),
        vec![("_sip._tcp.example.com".to_owned(), Transport::Tcp)]
    );
    // A client with TLS takes SIPS+D2T, and nothing of a higher Order.
    assert_eq!(
        select_naptr(&rfc_example(), false, ALL),
        vec![("_sips._tcp.example.com".to_owned(), Transport::Tls)]
    );
    // Within one Order, Preference ranks the records; both are kept.
    let same_order = vec![
        naptr(10, 20, "SIP+D2U", "_sip._udp.example.com"),
        naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com"),
        naptr(20, 0, "SIPS+D2T", "_sips._tcp.example.com"),
    ];
    assert_eq!(
        select_naptr(&same_order, false, ALL),
        vec![
            ("_sip._tcp.example.com".to_owned(), Transport::Tcp),
            ("_sip._udp.example.com".to_owned(), Transport::Udp)
        ]
    );
}

#[test]
fn a_sips_uri_keeps_only_sips_services() {
    let records = vec![
        naptr(10, 10, "SIP+D2T", "_sip._tcp.example.com"),
        naptr(10, 20, "SIP+D2U", "_sip._udp.example.com"),
        // TLS over UDP does not exist: never usable.
        naptr(15, 10, "SIPS+D2U", "_sips._udp.example.com"),
        naptr(20, 10, "SIPS+D2T", "_sips._tcp.example.com"),
    ];
    assert_eq!(
        select_naptr(&records, true, ALL),
        vec![("_sips._tcp.example.com".to_owned(), Transport::Tls)]
    );
    assert_eq!(select_naptr(&records, true, PLAIN), Vec::new());
}

#[test]
fn naptr_records_rfc_3263_cannot_use_are_skipped() {
    let mut no_flag = naptr(1, 1, "SIP+D2U", "_sip._udp.example.com");
    no_flag.flags = String::new();
    let mut a_flag = naptr(1, 1, "SIP+D2U", "_sip._udp.example.com");
    a_flag.flags = "A".into();
    let mut regexp = naptr(1, 1, "SIP+D2U", "_sip._udp.example.com");
    regexp.regexp = "!^.*$!sip:x@example.com!".into();
    let records = vec![
        no_flag,
        a_flag,
        regexp,
        naptr(1, 1, "SIP+D2S", "_sip._sctp.example.com"),
        naptr(1, 1, "E2U+sip", "_sip._udp.example.com"),
        naptr(1, 1, "SIP+D2U", "."),
        naptr(5, 1, "sip+d2t", "_sip._tcp.example.com"),
    ];
    // Only the last one (services compare without case) is usable, though its
    // Order is higher than all the others'.
    assert_eq!(
        select_naptr(&records, false, ALL),
        vec![("_sip._tcp.example.com".to_owned(), Transport::Tcp)]
    );
}

#[test]
fn naptr_then_srv_then_addresses_in_order() {
    let dns = Dns::default()
        .naptr("example.com", rfc_example())
        .srv(
            "_sip._tcp.example.com",
            vec![srv(2, 0, 5062, "b.example.com."), srv(1, 0, 5060, "a.example.com.")],
        )
        .host("a.example.com", &["192.0.2.1"])
        .host("b.example.com", &["192.0.2.2", "192.0.2.3"]);
    let (asked, result) = locate("sip:alice@example.com", PLAIN, &dns);
    assert_eq!(
        asked,
        vec![
            Query::Naptr("example.com".into()),
            Query::Srv("_sip._tcp.example.com".into()),
            Query::Addresses("a.example.com".into()),
            Query::Addresses("b.example.com".into()),
        ]
    );
    assert_eq!(
        result,
        Ok(vec![
            dest(Transport::Tcp, "192.0.2.1:5060"),
            dest(Transport::Tcp, "192.0.2.2:5062"),
            dest(Transport::Tcp, "192.0.2.3:5062"),
        ])
    );
}

#[test]
fn a_host_serving_two_transports_is_asked_for_once() {
    let dns = Dns::default()
        .naptr(
            "example.com",
            vec![
                naptr(10, 1, "SIP+D2T", "_sip._tcp.example.com"),
                naptr(10, 2, "SIP+D2U", "_sip._udp.example.com"),
            ],
        )
        .srv("_sip._tcp.example.com", vec![srv(0, 0, 5060, "sip.example.com")])
        .srv("_sip._udp.example.com", vec![srv(0, 0, 5060, "sip.example.com")])
        .host("sip.example.com", &["192.0.2.1"]);
    let (asked, result) = locate("sip:alice@example.com", ALL, &dns);
    let address_questions = asked.iter().filter(|q| matches!(q, Query::Addresses(_))).count();
    assert_eq!(address_questions, 1, "{asked:?}");
    assert_eq!(
        result,
        Ok(vec![
            dest(Transport::Tcp, "192.0.2.1:5060"),
            dest(Transport::Udp, "192.0.2.1:5060")
        ])
    );
}

// ---- no NAPTR, no SRV (§4.1, §4.2) ----

#[test]
fn without_naptr_the_srv_records_of_each_supported_transport_are_asked_for() {
    let dns = Dns::default()
        .srv("_sip._udp.example.com", vec![srv(0, 0, 5060, "u.example.com")])
        .srv("_sip._tcp.example.com", vec![srv(0, 0, 5070, "t.example.com")])
        .host("u.example.com", &["192.0.2.1"])
        .host("t.example.com", &["192.0.2.2"]);
    let (asked, result) = locate("sip:alice@example.com", ALL, &dns);
    assert_eq!(
        asked[..3],
        [
            Query::Naptr("example.com".into()),
            Query::Srv("_sip._udp.example.com".into()),
            Query::Srv("_sip._tcp.example.com".into()),
        ]
    );
    assert_eq!(
        result,
        Ok(vec![
            dest(Transport::Udp, "192.0.2.1:5060"),
            dest(Transport::Tcp, "192.0.2.2:5070")
        ])
    );
    // A SIPS URI asks for "_sips" only.
    let (asked, _) = locate("sips:alice@example.com", ALL, &dns);
    assert_eq!(asked[1], Query::Srv("_sips._tcp.example.com".into()));
    assert!(!asked.iter().any(|q| q.name().starts_with("_sip.")), "{asked:?}");
    // Unsupported transports are not asked for.
    let (asked, _) = locate("sip:alice@example.com", &[Transport::Tcp], &dns);
    assert_eq!(asked[1], Query::Srv("_sip._tcp.example.com".into()));
    assert!(
        !asked.contains(&Query::Srv("_sip._udp.example.com".into())),
        "{asked:?}"
    );
}

#[test]
fn without_srv_the_domain_itself_is_used_at_the_default_port() {
    let dns = Dns::default().host("example.com", &["192.0.2.30"]);
    let (asked, result) = locate("sip:alice@example.com", ALL, &dns);
    assert_eq!(asked.last(), Some(&Query::Addresses("example.com".into())));
    // UDP for a SIP URI (§4.1, "If no SRV records are found").
    assert_eq!(result, Ok(vec![dest(Transport::Udp, "192.0.2.30:5060")]));
    let (_, result) = locate("sips:alice@example.com", ALL, &dns);
    assert_eq!(result, Ok(vec![dest(Transport::Tls, "192.0.2.30:5061")]));
    // NAPTR chose TCP but its SRV name has no records: TCP to the domain.
    let dns = dns.naptr("example.com", vec![naptr(1, 1, "SIP+D2T", "_sip._tcp.example.com")]);
    let (_, result) = locate("sip:alice@example.com", ALL, &dns);
    assert_eq!(result, Ok(vec![dest(Transport::Tcp, "192.0.2.30:5060")]));
}

#[test]
fn an_srv_target_of_dot_means_no_service_and_no_fallback() {
    let dns = Dns::default()
        .srv("_sip._udp.example.com", vec![srv(0, 0, 0, ".")])
        .host("example.com", &["192.0.2.30"]);
    let (asked, result) = locate("sip:alice@example.com", &[Transport::Udp], &dns);
    assert!(!asked.contains(&Query::Addresses("example.com".into())), "{asked:?}");
    assert_eq!(
        result,
        Err(LocateError::NotFound {
            domain: "example.com".into()
        })
    );
}

#[test]
fn failed_questions_fall_through_to_the_next_step_and_explain_an_empty_result() {
    let dns = Dns::default()
        .fail(Query::Naptr("example.com".into()), "SERVFAIL")
        .fail(Query::Srv("_sip._udp.example.com".into()), "timed out")
        .host("example.com", &["192.0.2.40"]);
    let (_, result) = locate("sip:alice@example.com", PLAIN, &dns);
    assert_eq!(result, Ok(vec![dest(Transport::Udp, "192.0.2.40:5060")]));
    let dns = dns.fail(Query::Addresses("example.com".into()), "timed out");
    let (_, result) = locate("sip:alice@example.com", PLAIN, &dns);
    match result {
        Err(LocateError::DnsFailed { domain, why }) => {
            assert_eq!(domain, "example.com");
            assert!(why.contains("A/AAAA example.com: timed out"), "{why}");
        }
        other => panic!("expected DnsFailed, got {other:?}"),
    }
    let (_, result) = locate("sip:alice@nowhere.example", PLAIN, &Dns::default());
    assert_eq!(
        result,
        Err(LocateError::NotFound {
            domain: "nowhere.example".into()
        })
    );
}

#[test]
fn answers_of_the_wrong_kind_or_unasked_are_not_taken() {
    let mut locator = Locator::new(&target("sip:alice@example.com"), PLAIN, 1);
    // Nothing asked yet: ignored.
    locator.answer(Answer::Addresses(vec![ip("192.0.2.1")]));
    assert_eq!(locator.next_query(), Some(Query::Naptr("example.com".into())));
    // The same question until it is answered.
    assert_eq!(locator.next_query(), Some(Query::Naptr("example.com".into())));
    locator.answer(Answer::Addresses(vec![ip("192.0.2.1")]));
    // Taken as a failed NAPTR question: on to SRV.
    assert_eq!(locator.next_query(), Some(Query::Srv("_sip._udp.example.com".into())));
}

#[test]
fn finishing_early_gives_what_was_found() {
    let mut locator = Locator::new(&target("sip:alice@example.com;transport=udp"), PLAIN, 1);
    assert!(matches!(locator.next_query(), Some(Query::Srv(_))));
    locator.answer(Answer::Srv(vec![
        srv(0, 0, 5060, "a.example.com"),
        srv(1, 0, 5060, "b.example.com"),
    ]));
    assert_eq!(locator.next_query(), Some(Query::Addresses("a.example.com".into())));
    locator.answer(Answer::Addresses(vec![ip("192.0.2.1")]));
    assert_eq!(locator.next_query(), Some(Query::Addresses("b.example.com".into())));
    // Time is up: b is never answered.
    assert_eq!(locator.finish(), Ok(vec![dest(Transport::Udp, "192.0.2.1:5060")]));
}

// ---- RFC 2782 ordering ----

#[test]
fn srv_records_go_by_priority_first() {
    let mut rng = StdRng::seed_from_u64(3);
    let ordered = order_srv(
        vec![
            srv(20, 100, 1, "c"),
            srv(10, 0, 2, "a"),
            srv(30, 5, 3, "d"),
            srv(10, 0, 4, "b"),
        ],
        &mut rng,
    );
    let priorities: Vec<u16> = ordered.iter().map(|r| r.priority).collect();
    assert_eq!(priorities, vec![10, 10, 20, 30]);
    // Weight 0 everywhere: the records keep their order.
    let targets: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets[..2], ["a", "b"]);
}

#[test]
fn srv_weights_share_out_the_first_place() {
    let mut heavy_first = 0;
    let mut zero_first = 0;
    for seed in 0..2000 {
        let mut rng = StdRng::seed_from_u64(seed);
        let ordered = order_srv(vec![srv(1, 1, 1, "light"), srv(1, 3, 2, "heavy")], &mut rng);
        assert_eq!(ordered.len(), 2);
        if ordered[0].target == "heavy" {
            heavy_first += 1;
        }
        let ordered = order_srv(vec![srv(1, 10, 1, "ten"), srv(1, 0, 2, "zero")], &mut rng);
        if ordered[0].target == "zero" {
            zero_first += 1;
        }
    }
    // RFC 2782 draws from 0..=4 and "light" (running sum 1) takes 0 and 1:
    // "heavy" comes first 3 times in 5, about 1200 of 2000.
    assert!((1080..1320).contains(&heavy_first), "{heavy_first}");
    // Weight 0 against 10: only when the draw is 0, about 1 in 11.
    assert!((100..300).contains(&zero_first), "{zero_first}");
}

#[test]
fn the_seed_fixes_the_order() {
    let records = || (0..8).map(|i| srv(1, 10 + i, i, &format!("h{i}"))).collect::<Vec<_>>();
    let once = order_srv(records(), &mut StdRng::seed_from_u64(42));
    let again = order_srv(records(), &mut StdRng::seed_from_u64(42));
    assert_eq!(once, again);
    let dns = Dns::default().srv(
        "_sip._udp.example.com",
        (0..4).map(|i| srv(1, 10, 5060 + i, "h.example.com")).collect(),
    );
    let dns = dns.host("h.example.com", &["192.0.2.1"]);
    let (_, first) = locate("sip:a@example.com;transport=udp", PLAIN, &dns);
    let (_, second) = locate("sip:a@example.com;transport=udp", PLAIN, &dns);
    assert_eq!(first, second);
}

// ---- bounds ----

#[test]
fn big_answers_are_cut_to_the_bounds() {
    let many_naptr: Vec<NaptrRecord> = (0..200)
        .map(|i| naptr(1, i, "SIP+D2U", &format!("_sip._udp.n{i}.example.com")))
        .collect();
    assert_eq!(select_naptr(&many_naptr, false, ALL).len(), MAX_NAPTR);

    let mut rng = StdRng::seed_from_u64(1);
    let many_srv: Vec<SrvRecord> = (0..500).map(|i| srv(i % 7, i, 5060, "h")).collect();
    assert_eq!(order_srv(many_srv, &mut rng).len(), MAX_SRV);

    // 50 SRV targets, each with 50 addresses: bounded questions and results.
    let mut dns = Dns::default().srv(
        "_sip._udp.example.com",
        (0..50)
            .map(|i| srv(1, 1, 6000 + i, &format!("h{i}.example.com")))
            .collect(),
    );
    let fifty: Vec<String> = (0..50).map(|i| format!("192.0.2.{i}")).collect();
    let fifty: Vec<&str> = fifty.iter().map(String::as_str).collect();
    for i in 0..50 {
        dns = dns.host(&format!("h{i}.example.com"), &fifty);
    }
    let (asked, result) = locate("sip:a@example.com;transport=udp", PLAIN, &dns);
    assert!(asked.len() <= MAX_QUERIES, "{}", asked.len());
    assert_eq!(result.expect("found").len(), MAX_DESTINATIONS);

    // Hosts with no address cannot make it ask for more than MAX_HOSTS.
    let dns = Dns::default().srv(
        "_sip._udp.example.com",
        (0..50)
            .map(|i| srv(1, 1, 6000 + i, &format!("h{i}.example.com")))
            .collect(),
    );
    let (asked, result) = locate("sip:a@example.com;transport=udp", PLAIN, &dns);
    let hosts = asked.iter().filter(|q| matches!(q, Query::Addresses(_))).count();
    assert_eq!(hosts, MAX_HOSTS);
    assert!(result.is_err());
}
