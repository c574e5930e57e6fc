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
    let Some(Output::ResolveHost { id, host, port }) =
        outs.iter().find(|o| matches!(o, Output::ResolveHost { .. })).cloned()
    else {
        panic!("no DNS: {outs:?}");
    };
    assert_eq!((host.as_str(), port), ("sip.elsewhere.example", 5060));
    let server: SocketAddr = "127.0.0.3:5060".parse().expect("addr");
    p.host_resolved(now, id, Ok(vec![server]));
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
