//! The proxy driven directly: no sockets, no overlay, the clock in the test's hands.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reload_wire::NodeId;

use super::*;

const DOMAIN: &str = "unit.example";

fn phone(port: u16) -> Peer {
    Peer::Sip {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

fn proxy(now: Instant) -> Proxy {
    Proxy::new(
        ProxyConfig {
            node_id: NodeId([7; 16]),
            domains: DomainRestriction::OverlayOnly(DOMAIN.to_ascii_lowercase()),
            udp: "127.0.0.1:5060".parse().expect("addr"),
            tcp: "127.0.0.1:5060".parse().expect("addr"),
            tls: None,
            overlay_sip: "127.0.0.1:5061".parse().expect("addr"),
            accounts: HashMap::from([(format!("bob@{DOMAIN}"), "pw".to_owned())]),
            trusted: vec!["127.0.0.9".parse().expect("ip")],
            realm: DOMAIN.into(),
            outbound_proxy: None,
        },
        now,
        1_700_000_000,
        [1; 32],
    )
}

fn invite(to: &str, branch: &str, max_forwards: u8) -> Vec<u8> {
    format!(
        "INVITE sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch={branch}\r\n\
         Max-Forwards: {max_forwards}\r\nFrom: <sip:bob@{DOMAIN}>;tag=b1\r\nTo: <sip:{to}>\r\n\
         Call-ID: c1@unit\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.9:5070>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn outputs(p: &mut Proxy) -> Vec<Output> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

fn sent_codes(outs: &[Output]) -> Vec<u16> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => match message::parse(bytes) {
                Ok(Message::Response(r)) => Some(r.code),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn trusted() -> Peer {
    Peer::Sip {
        transport: Transport::Udp,
        addr: "127.0.0.9:5070".parse().expect("addr"),
    }
}

#[test]
fn max_forwards_zero_is_483() {
    let now = Instant::now();
    let mut p = proxy(now);
    p.handle_message(now, trusted(), &invite(&format!("alice@{DOMAIN}"), "z9hG4bK-a", 0));
    assert_eq!(sent_codes(&outputs(&mut p)), vec![100, 483]);
}

#[test]
fn an_untrusted_stranger_is_refused_and_an_account_challenged() {
    let now = Instant::now();
    let mut p = proxy(now);
    // From bob, who is an account but did not register from this address: 407.
    p.handle_message(now, phone(6000), &invite(&format!("alice@{DOMAIN}"), "z9hG4bK-s", 70));
    let outs = outputs(&mut p);
    assert_eq!(sent_codes(&outs), vec![100, 407]);
    let challenge = outs.iter().find_map(|o| match o {
        Output::Send { bytes, .. } => String::from_utf8(bytes.clone())
            .ok()
            .filter(|t| t.contains("Proxy-Authenticate: Digest")),
        _ => None,
    });
    assert!(challenge.is_some());
}

#[test]
fn a_lookup_leads_to_the_callee_node_and_back() {
    let now = Instant::now();
    let mut p = proxy(now);
    p.handle_message(now, trusted(), &invite(&format!("alice@{DOMAIN}"), "z9hG4bK-l", 70));
    let outs = outputs(&mut p);
    assert_eq!(sent_codes(&outs), vec![100]);
    let Some(Output::Lookup { id, aor }) = outs.iter().find(|o| matches!(o, Output::Lookup { .. })).cloned() else {
        panic!("no lookup: {outs:?}");
    };
    assert_eq!(aor, format!("alice@{DOMAIN}"));
    let alice_node = NodeId([9; 16]);
    p.lookup_done(
        now,
        id,
        Ok(Resolved {
            routes: vec![ResolvedRoute {
                aor: aor.clone(),
                node: alice_node,
            }],
            external: Vec::new(),
        }),
    );
    let outs = outputs(&mut p);
    let forwarded = outs
        .iter()
        .find_map(|o| match o {
            Output::Send {
                to: Peer::Node(n),
                bytes,
            } if *n == alice_node => Some(bytes.clone()),
            _ => None,
        })
        .expect("the INVITE goes to alice's node");
    let Ok(Message::Request(req)) = message::parse(&forwarded) else {
        panic!("not a request");
    };
    assert_eq!(message::first(&req.headers, "Max-Forwards"), Some("69"));
    let rr = message::all_values(&req.headers, "Record-Route");
    assert_eq!(rr.len(), 2, "double Record-Route: {rr:?}");
    assert!(rr[0].contains("07070707070707070707070707070707@"), "{rr:?}");
    // alice's node answers 180 then 200: both reach the phone, without our Via.
    for (code, reason) in [(180, "Ringing"), (200, "OK")] {
        let resp = req.response(code, reason, Some("a1"));
        p.handle_message(now, Peer::Node(alice_node), &resp.to_bytes());
        let outs = outputs(&mut p);
        let to_phone: Vec<_> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Send { to, bytes } if *to == trusted() => Some(bytes.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(to_phone.len(), 1, "{code}: {outs:?}");
        let Ok(Message::Response(r)) = message::parse(&to_phone[0]) else {
            panic!("not a response");
        };
        assert_eq!(r.code, code);
        assert_eq!(message::all_values(&r.headers, "Via").len(), 1);
        assert_eq!(r.branch().as_deref(), Some("z9hG4bK-l"));
    }
}

#[test]
fn a_loop_through_this_node_is_482() {
    let now = Instant::now();
    let mut p = proxy(now);
    let to = format!("alice@{DOMAIN}");
    p.handle_message(now, trusted(), &invite(&to, "z9hG4bK-loop", 70));
    let Some(Output::Lookup { id, .. }) = outputs(&mut p).into_iter().find(|o| matches!(o, Output::Lookup { .. }))
    else {
        panic!("no lookup");
    };
    let other = NodeId([9; 16]);
    p.lookup_done(
        now,
        id,
        Ok(Resolved {
            routes: vec![ResolvedRoute {
                aor: to.clone(),
                node: other,
            }],
            external: Vec::new(),
        }),
    );
    let forwarded = outputs(&mut p)
        .into_iter()
        .find_map(|o| match o {
            Output::Send {
                bytes,
                to: Peer::Node(_),
            } => Some(bytes),
            _ => None,
        })
        .expect("forwarded");
    // The same request comes back to us from that node (it resolved to us).
    p.handle_message(now, Peer::Node(other), &forwarded);
    assert_eq!(sent_codes(&outputs(&mut p)), vec![100, 482]);
}

#[test]
fn not_in_the_overlay_yet_is_503_with_retry_after() {
    let now = Instant::now();
    let mut p = proxy(now);
    p.handle_message(now, trusted(), &invite(&format!("alice@{DOMAIN}"), "z9hG4bK-n", 70));
    let Some(Output::Lookup { id, .. }) = outputs(&mut p).into_iter().find(|o| matches!(o, Output::Lookup { .. }))
    else {
        panic!("no lookup");
    };
    p.lookup_done(now, id, Err(LookupError::NotReady));
    let outs = outputs(&mut p);
    assert_eq!(sent_codes(&outs), vec![503]);
    assert!(
        matches!(&outs[0], Output::Send { bytes, .. } if String::from_utf8_lossy(bytes).contains("Retry-After: 5"))
    );
}

#[test]
fn a_retransmitted_invite_gets_the_last_answer_and_a_silent_phone_408() {
    let now = Instant::now();
    let mut p = proxy(now);
    // A call for a phone of this node: registered via the bindings directly.
    let alice_phone = phone(7000);
    let _ = p.bindings.register(
        now,
        &format!("alice@{DOMAIN}"),
        &RegisterFrom {
            source: &alice_phone,
            call_id: "r",
            cseq: 1,
        },
        &[ContactUpdate {
            uri: "sip:alice@127.0.0.1:7000".into(),
            expires: 600,
        }],
        false,
    );
    let bytes = invite(&format!("alice@{DOMAIN}"), "z9hG4bK-r", 70);
    p.handle_message(now, Peer::Node(NodeId([9; 16])), &bytes);
    let outs = outputs(&mut p);
    let to_phone = outs
        .iter()
        .filter(|o| matches!(o, Output::Send { to, .. } if *to == alice_phone))
        .count();
    assert_eq!(to_phone, 1);
    // The caller's node retransmits: only the 100 again, not another branch.
    p.handle_message(now, Peer::Node(NodeId([9; 16])), &bytes);
    assert_eq!(sent_codes(&outputs(&mut p)), vec![100]);
    // The phone never answers: Timer A retransmits over UDP, Timer B ends it 408.
    let mut sends = 0;
    let mut codes = Vec::new();
    let mut t = now;
    while t < now + Duration::from_secs(40) {
        t += Duration::from_millis(250);
        p.handle_timeout(t);
        for o in outputs(&mut p) {
            if let Output::Send { to, bytes } = &o {
                if *to == alice_phone {
                    sends += 1;
                }
                if let Ok(Message::Response(r)) = message::parse(bytes) {
                    codes.push(r.code);
                }
            }
        }
    }
    assert!((5..=8).contains(&sends), "Timer A retransmissions: {sends}");
    assert_eq!(codes, vec![408]);
}

#[test]
fn another_domain_is_resolved_by_dns_for_a_phone_only() {
    let now = Instant::now();
    let mut p = proxy(now);
    p.handle_message(now, trusted(), &invite("carol@sip.elsewhere.example", "z9hG4bK-d", 70));
    let outs = outputs(&mut p);
    let Some(Output::Locate { id, target }) = outs.iter().find(|o| matches!(o, Output::Locate { .. })).cloned() else {
        panic!("no DNS: {outs:?}");
    };
    assert_eq!(
        target,
        SipTarget {
            host: "sip.elsewhere.example".into(),
            port: None,
            transport: None,
            secure: false,
        }
    );
    let server: SocketAddr = "127.0.0.3:5060".parse().expect("addr");
    p.located(now, id, Ok(vec![udp_at(server)]));
    assert!(
        outputs(&mut p)
            .iter()
            .any(|o| matches!(o, Output::Send { to: Peer::Sip { addr, .. }, .. } if *addr == server))
    );
    // The same request from another node is not relayed.
    p.handle_message(
        now,
        Peer::Node(NodeId([9; 16])),
        &invite("carol@sip.elsewhere.example", "z9hG4bK-e", 70),
    );
    assert_eq!(sent_codes(&outputs(&mut p)), vec![100, 404]);
}

// ---- RFC 3263: numeric targets, DNS outcomes, §4.3 failover ----

fn udp_at(addr: SocketAddr) -> Destination {
    Destination {
        transport: Transport::Udp,
        addr,
    }
}

fn server(n: u8, transport: Transport) -> Destination {
    Destination {
        transport,
        addr: SocketAddr::from(([127, 0, 0, 30 + n], 5060)),
    }
}

fn peer(d: Destination) -> Peer {
    Peer::Sip {
        transport: d.transport,
        addr: d.addr,
    }
}

fn message_request(to: &str, branch: &str) -> Vec<u8> {
    format!(
        "MESSAGE sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@{DOMAIN}>;tag=m1\r\nTo: <sip:{to}>\r\n\
         Call-ID: m1@unit\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Requests the proxy sent to `to`.
fn requests_to(outs: &[Output], to: &Peer) -> Vec<Request> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to: t, bytes } if t == to => match message::parse(bytes) {
                Ok(Message::Request(r)) => Some(r),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Responses the proxy sent to the trusted caller.
fn to_caller(outs: &[Output]) -> Vec<u16> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { to, bytes } if *to == trusted() => match message::parse(bytes) {
                Ok(Message::Response(r)) => Some(r.code),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// `bytes` from the trusted caller to a name of another domain, located at
/// `servers`: what the proxy did once DNS answered.
fn located_request(p: &mut Proxy, now: Instant, bytes: &[u8], servers: Vec<Destination>) -> Vec<Output> {
    p.handle_message(now, trusted(), bytes);
    let outs = outputs(p);
    let Some(id) = outs.iter().find_map(|o| match o {
        Output::Locate { id, .. } => Some(*id),
        _ => None,
    }) else {
        panic!("no DNS: {outs:?}");
    };
    p.located(now, id, Ok(servers));
    outputs(p)
}

/// Runs the clock from `from` to `until` in 250 ms steps, collecting outputs.
fn run_clock(p: &mut Proxy, from: Instant, until: Instant) -> Vec<Output> {
    let mut all = Vec::new();
    let mut t = from;
    while t < until {
        t += Duration::from_millis(250);
        p.handle_timeout(t);
        all.extend(outputs(p));
    }
    all
}

#[test]
fn a_numeric_target_goes_out_at_once_with_the_default_port_of_its_transport() {
    let now = Instant::now();
    let mut p = proxy(now);
    p.handle_message(
        now,
        trusted(),
        &invite("carol@192.0.2.5;transport=tcp", "z9hG4bK-n1", 70),
    );
    let outs = outputs(&mut p);
    let tcp = Peer::Sip {
        transport: Transport::Tcp,
        addr: "192.0.2.5:5060".parse().expect("addr"),
    };
    let sent = requests_to(&outs, &tcp);
    assert_eq!(sent.len(), 1, "{outs:?}");
    let via = message::all_values(&sent[0].headers, "Via");
    assert!(via[0].starts_with("SIP/2.0/TCP "), "{via:?}");
    // SIPS needs TLS, which this node does not open to other domains.
    p.handle_message(
        now,
        trusted(),
        &invite("carol@192.0.2.5;transport=tls", "z9hG4bK-n2", 70),
    );
    assert_eq!(sent_codes(&outputs(&mut p)), vec![100, 480]);
}

#[test]
fn dns_that_finds_nothing_or_fails_is_answered() {
    let now = Instant::now();
    let mut p = proxy(now);
    for (branch, result, code) in [
        ("z9hG4bK-f1", Ok(Vec::new()), 404),
        (
            "z9hG4bK-f2",
            Err(LocateError::NotFound {
                domain: "elsewhere.example".into(),
            }),
            404,
        ),
        (
            "z9hG4bK-f3",
            Err(LocateError::DnsFailed {
                domain: "elsewhere.example".into(),
                why: "SRV _sip._udp.elsewhere.example: timed out".into(),
            }),
            480,
        ),
    ] {
        p.handle_message(now, trusted(), &invite("carol@elsewhere.example", branch, 70));
        let Some(id) = outputs(&mut p).iter().find_map(|o| match o {
            Output::Locate { id, .. } => Some(*id),
            _ => None,
        }) else {
            panic!("no DNS");
        };
        p.located(now, id, result);
        assert_eq!(to_caller(&outputs(&mut p)), vec![code], "{branch}");
    }
}

#[test]
fn a_silent_server_is_left_for_the_next_after_timer_b() {
    let now = Instant::now();
    let mut p = proxy(now);
    let (a, b) = (server(1, Transport::Udp), server(2, Transport::Udp));
    let outs = located_request(
        &mut p,
        now,
        &invite("carol@elsewhere.example", "z9hG4bK-t", 70),
        vec![a, b],
    );
    let first = requests_to(&outs, &peer(a));
    assert_eq!(first.len(), 1);
    assert!(requests_to(&outs, &peer(b)).is_empty());
    // A never answers: Timer A retransmits to it, Timer B (64·T1) gives up and
    // B gets the request as a new transaction; the caller hears nothing yet.
    // Timer B fires at 32 s; B's own Timer A would first retransmit at 32.5 s.
    let after_b = now + Duration::from_millis(32_200);
    let outs = run_clock(&mut p, now, after_b);
    assert!(requests_to(&outs, &peer(a)).len() >= 5, "Timer A: {outs:?}");
    let second = requests_to(&outs, &peer(b));
    assert_eq!(second.len(), 1, "{outs:?}");
    assert_ne!(second[0].branch(), first[0].branch(), "§4.3: a new branch");
    assert_eq!(second[0].uri, first[0].uri, "§4: the URI is not rewritten");
    assert!(to_caller(&outs).is_empty(), "{outs:?}");
    // B answers: the caller gets it.
    let ok = second[0].response(200, "OK", Some("c1"));
    p.handle_message(after_b, peer(b), &ok.to_bytes());
    assert_eq!(to_caller(&outputs(&mut p)), vec![200]);
}

#[test]
fn a_503_is_acked_and_the_next_server_gets_the_request_on_its_own_transport() {
    let now = Instant::now();
    let mut p = proxy(now);
    let (a, b) = (server(1, Transport::Udp), server(2, Transport::Tcp));
    let outs = located_request(
        &mut p,
        now,
        &invite("carol@elsewhere.example", "z9hG4bK-5", 70),
        vec![a, b],
    );
    let first = requests_to(&outs, &peer(a)).remove(0);
    let busy = first.response(503, "Service Unavailable", Some("s1"));
    p.handle_message(now, peer(a), &busy.to_bytes());
    let outs = outputs(&mut p);
    let to_a = requests_to(&outs, &peer(a));
    assert!(to_a.iter().any(|r| r.method == Method::Ack), "§17.1.1.3 ACK: {outs:?}");
    let second = requests_to(&outs, &peer(b));
    assert_eq!(second.len(), 1, "{outs:?}");
    let via = message::all_values(&second[0].headers, "Via");
    assert!(via[0].starts_with("SIP/2.0/TCP "), "{via:?}");
    let rr = message::all_values(&second[0].headers, "Record-Route");
    assert!(rr[0].contains("transport=tcp"), "{rr:?}");
    assert!(to_caller(&outs).is_empty(), "the 503 is not passed on: {outs:?}");
    // B turns the call down: that answer is the caller's.
    let busy_here = second[0].response(486, "Busy Here", Some("s2"));
    p.handle_message(now, peer(b), &busy_here.to_bytes());
    assert_eq!(to_caller(&outputs(&mut p)), vec![486]);
}

#[test]
fn a_transport_failure_moves_on_at_once_and_the_last_failure_is_answered() {
    let now = Instant::now();
    let mut p = proxy(now);
    let servers = vec![
        server(1, Transport::Tcp),
        server(2, Transport::Tcp),
        server(3, Transport::Tcp),
    ];
    let outs = located_request(
        &mut p,
        now,
        &message_request("carol@elsewhere.example", "z9hG4bK-x"),
        servers.clone(),
    );
    assert_eq!(requests_to(&outs, &peer(servers[0])).len(), 1);
    p.send_failed(now, &peer(servers[0]), "connection refused");
    let outs = outputs(&mut p);
    assert_eq!(requests_to(&outs, &peer(servers[1])).len(), 1, "{outs:?}");
    assert!(to_caller(&outs).is_empty());
    p.send_failed(now, &peer(servers[1]), "connection refused");
    let outs = outputs(&mut p);
    assert_eq!(requests_to(&outs, &peer(servers[2])).len(), 1, "{outs:?}");
    // The last one fails too: the usual answer, once.
    p.send_failed(now, &peer(servers[2]), "connection refused");
    assert_eq!(to_caller(&outputs(&mut p)), vec![480]);
}

#[test]
fn when_every_server_answers_503_the_caller_gets_500() {
    let now = Instant::now();
    let mut p = proxy(now);
    let (a, b) = (server(1, Transport::Udp), server(2, Transport::Udp));
    let outs = located_request(
        &mut p,
        now,
        &message_request("carol@elsewhere.example", "z9hG4bK-55"),
        vec![a, b],
    );
    let first = requests_to(&outs, &peer(a)).remove(0);
    p.handle_message(now, peer(a), &first.response(503, "Busy", None).to_bytes());
    let outs = outputs(&mut p);
    let second = requests_to(&outs, &peer(b)).remove(0);
    p.handle_message(now, peer(b), &second.response(503, "Busy", None).to_bytes());
    // §16.7 step 6: a 503 is not passed on as such.
    assert_eq!(to_caller(&outputs(&mut p)), vec![500]);
}

#[test]
fn a_server_that_answered_provisionally_is_not_left_for_another() {
    let now = Instant::now();
    let mut p = proxy(now);
    let (a, b) = (server(1, Transport::Udp), server(2, Transport::Udp));
    let outs = located_request(
        &mut p,
        now,
        &message_request("carol@elsewhere.example", "z9hG4bK-p"),
        vec![a, b],
    );
    let first = requests_to(&outs, &peer(a)).remove(0);
    p.handle_message(now, peer(a), &first.response(100, "Trying", None).to_bytes());
    // Timer F ends the transaction: A was reached, so no failover (§4.3).
    let outs = run_clock(&mut p, now, now + Duration::from_secs(33));
    assert!(requests_to(&outs, &peer(b)).is_empty(), "{outs:?}");
    assert_eq!(to_caller(&outs), vec![408]);
}

#[test]
fn a_cancelled_call_does_not_move_to_the_next_server() {
    let now = Instant::now();
    let mut p = proxy(now);
    let (a, b) = (server(1, Transport::Udp), server(2, Transport::Udp));
    let invite_bytes = invite("carol@elsewhere.example", "z9hG4bK-c", 70);
    let outs = located_request(&mut p, now, &invite_bytes, vec![a, b]);
    assert_eq!(requests_to(&outs, &peer(a)).len(), 1);
    let Ok(Message::Request(inv)) = message::parse(&invite_bytes) else {
        panic!("not a request");
    };
    p.handle_message(now, trusted(), &cancel_for(&inv).to_bytes());
    assert_eq!(to_caller(&outputs(&mut p)), vec![200]);
    let outs = run_clock(&mut p, now, now + Duration::from_secs(33));
    assert!(requests_to(&outs, &peer(b)).is_empty(), "{outs:?}");
}

#[test]
fn the_ack_of_a_2xx_routed_to_a_name_is_located_too() {
    let now = Instant::now();
    let mut p = proxy(now);
    let ack = format!(
        "ACK sip:carol@192.0.2.77 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK-ack\r\n\
         Route: <sip:proxy.elsewhere.example;lr>\r\nMax-Forwards: 70\r\n\
         From: <sip:bob@{DOMAIN}>;tag=b1\r\nTo: <sip:carol@elsewhere.example>;tag=c1\r\n\
         Call-ID: a1@unit\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    p.handle_message(now, trusted(), ack.as_bytes());
    let outs = outputs(&mut p);
    let Some((id, target)) = outs.iter().find_map(|o| match o {
        Output::Locate { id, target } => Some((*id, target.clone())),
        _ => None,
    }) else {
        panic!("no DNS: {outs:?}");
    };
    assert_eq!(target.host, "proxy.elsewhere.example");
    let (a, b) = (server(1, Transport::Udp), server(2, Transport::Udp));
    p.located(now, id, Ok(vec![a, b]));
    let outs = outputs(&mut p);
    let acks = requests_to(&outs, &peer(a));
    assert_eq!(acks.len(), 1, "{outs:?}");
    assert_eq!(acks[0].method, Method::Ack);
    assert_eq!(message::first(&acks[0].headers, "Max-Forwards"), Some("69"));
    assert!(requests_to(&outs, &peer(b)).is_empty());
}
