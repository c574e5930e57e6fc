//! RFC 3263 end to end: a small authoritative DNS server on 127.0.0.1 serves
//! NAPTR, SRV and A records for test domains; the front end's resolver asks
//! it, and a phone's request for `sip:bob@<domain>` reaches a SIP server the
//! test runs on 127.0.0.1 at the port the SRV record names — past a dead
//! server first, when DNS lists one (§4.3).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, NAPTR, SRV};
use hickory_proto::rr::{Name, RData, Record};
use reload_net::tls::TlsLinks;
use reload_sip::dns::{DnsConfig, SipResolver};
use reload_sip::framing::{Frame, StreamFramer};
use reload_sip::frontend::{self, Frontend, FrontendConfig};
use reload_sip::locate::{Destination, LocateError, SipTarget};
use reload_sip::message::{self, Message as SipMessage, Request, SipUri};
use reload_sip::phone::{Phone, PhoneConfig};
use reload_sip::proxy::{OUTBOUND_TRANSPORTS, Transport};
use reload_sip::usage::{DomainRestriction, SipUsage};
use reload_trust::{KeyType, TestCa, Validity};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;

const OVERLAY: &str = "locate.example.org";
const PASSWORD: &str = "correct horse";
/// How long a test's DNS and SIP servers live at most.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);
/// How long a whole test may take.
const TEST_LIMIT: Duration = Duration::from_secs(90);

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn naptr(owner: &str, order: u16, services: &str, replacement: &str) -> Record {
    let rdata = NAPTR::new(
        order,
        10,
        b"s".to_vec().into_boxed_slice(),
        services.as_bytes().to_vec().into_boxed_slice(),
        Vec::new().into_boxed_slice(),
        name(replacement),
    );
    Record::from_rdata(name(owner), 60, RData::NAPTR(rdata))
}

fn srv(owner: &str, priority: u16, port: u16, target: &str) -> Record {
    Record::from_rdata(name(owner), 60, RData::SRV(SRV::new(priority, 0, port, name(target))))
}

fn a(owner: &str, ip: Ipv4Addr) -> Record {
    Record::from_rdata(name(owner), 60, RData::A(A(ip)))
}

/// The answer to one DNS query from `zone`: the records of the asked name
/// and type; NXDOMAIN for a name the zone does not hold; `None` for bytes
/// that are not a query.
fn answer(zone: &[Record], query: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let question = query.queries.first()?.clone();
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    let known = zone.iter().any(|r| r.name == question.name);
    reply.add_answers(
        zone.iter()
            .filter(|r| r.name == question.name && r.record_type() == question.query_type)
            .cloned(),
    );
    if !known {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply.add_query(question);
    reply.to_vec().ok()
}

/// Serves `zone` over UDP on 127.0.0.1 until [`SERVER_LIFETIME`] is over.
async fn dns_server(zone: Vec<Record>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let end = tokio::time::Instant::now() + SERVER_LIFETIME;
        let mut buf = vec![0u8; 4096];
        while let Ok(Ok((n, from))) = tokio::time::timeout_at(end, socket.recv_from(&mut buf)).await {
            if let Some(reply) = answer(&zone, &buf[..n]) {
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    addr
}

fn target(uri: &str) -> SipTarget {
    SipTarget::from_uri(&SipUri::parse(uri).unwrap())
}

fn dest(transport: Transport, addr: &str) -> Destination {
    Destination {
        transport,
        addr: addr.parse().unwrap(),
    }
}

#[tokio::test]
async fn the_resolver_follows_naptr_then_srv_then_a_records() {
    let lo = |last: u8| Ipv4Addr::new(127, 0, 0, last);
    let zone = vec![
        // TLS first, but the front end does not open TLS to other domains:
        // TCP (order 20, preference 10) and UDP (preference 20) remain.
        naptr("example.test.", 10, "SIPS+D2T", "_sips._tcp.example.test."),
        naptr("example.test.", 20, "SIP+D2T", "_sip._tcp.example.test."),
        naptr("example.test.", 20, "SIP+D2U", "_sip._udp.example.test."),
        srv("_sips._tcp.example.test.", 0, 5061, "tls.example.test."),
        srv("_sip._tcp.example.test.", 2, 5072, "tcp2.example.test."),
        srv("_sip._tcp.example.test.", 1, 5071, "tcp1.example.test."),
        srv("_sip._udp.example.test.", 1, 5073, "udp.example.test."),
        a("tls.example.test.", lo(9)),
        a("tcp1.example.test.", lo(1)),
        a("tcp2.example.test.", lo(2)),
        a("udp.example.test.", lo(3)),
        // No NAPTR: the SRV records of each transport.
        srv("_sip._tcp.nonaptr.test.", 0, 5080, "host.nonaptr.test."),
        a("host.nonaptr.test.", lo(4)),
        // Neither NAPTR nor SRV: the domain itself at 5060.
        a("plain.test.", lo(5)),
    ];
    let dns = SipResolver::new(&DnsConfig {
        server: Some(dns_server(zone).await),
    })
    .unwrap();
    let locate = |uri: &'static str| {
        let dns = dns.clone();
        async move { dns.locate(&target(uri), OUTBOUND_TRANSPORTS, 1).await }
    };
    let test = async {
        assert_eq!(
            locate("sip:bob@example.test").await,
            Ok(vec![
                dest(Transport::Tcp, "127.0.0.1:5071"),
                dest(Transport::Tcp, "127.0.0.2:5072"),
                dest(Transport::Udp, "127.0.0.3:5073"),
            ])
        );
        assert_eq!(
            locate("sip:bob@nonaptr.test").await,
            Ok(vec![dest(Transport::Tcp, "127.0.0.4:5080")])
        );
        assert_eq!(
            locate("sip:bob@plain.test").await,
            Ok(vec![dest(Transport::Udp, "127.0.0.5:5060")])
        );
        // An explicit port: A records only, at that port.
        assert_eq!(
            locate("sip:bob@tcp1.example.test:5999;transport=tcp").await,
            Ok(vec![dest(Transport::Tcp, "127.0.0.1:5999")])
        );
        assert_eq!(
            locate("sip:bob@missing.test").await,
            Err(LocateError::NotFound {
                domain: "missing.test".into()
            })
        );
    };
    tokio::time::timeout(TEST_LIMIT, test).await.unwrap();
}

#[tokio::test]
async fn without_a_nameserver_answering_the_location_fails_in_bounded_time() {
    // A UDP socket that never answers stands for a dead nameserver.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dns = SipResolver::new(&DnsConfig {
        server: Some(silent.local_addr().unwrap()),
    })
    .unwrap();
    let started = tokio::time::Instant::now();
    let result = dns
        .locate(&target("sip:bob@example.test"), OUTBOUND_TRANSPORTS, 1)
        .await;
    assert!(
        matches!(&result, Err(LocateError::DnsFailed { domain, .. }) if domain == "example.test"),
        "{result:?}"
    );
    assert!(
        started.elapsed() <= reload_sip::dns::LOCATE_TIMEOUT + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// One node that creates its own overlay, and its front end, which asks
/// `dns` for other domains' servers.
async fn front_end(dns: SocketAddr) -> (common::TestPeer, Frontend) {
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
    let alice = format!("alice@{OVERLAY}");
    let node = common::spawn(&ca, OVERLAY, 1, &alice, Vec::new()).await;
    node.handle.joined(Duration::from_secs(10)).await.unwrap();
    let usage = SipUsage::new(node.handle.clone(), OVERLAY, Vec::new()).unwrap();
    let tls = TlsLinks::new(node.security.clone(), 5000).unwrap();
    let cfg = FrontendConfig {
        phones: "127.0.0.1:0".parse().unwrap(),
        overlay: "127.0.0.1:0".parse().unwrap(),
        phones_tls: None,
        accounts: HashMap::from([(alice, PASSWORD.to_owned())]),
        signers: HashMap::new(),
        trusted: Vec::new(),
        domains: DomainRestriction::OverlayOnly(OVERLAY.to_ascii_lowercase()),
        realm: OVERLAY.to_owned(),
        outbound_proxy: None,
    };
    let fe = frontend::start_with_dns(usage, tls, cfg, DnsConfig { server: Some(dns) })
        .await
        .unwrap();
    (node, fe)
}

/// alice's phone at the front end.
async fn phone(fe: &Frontend) -> Phone {
    let (phone, _events) = Phone::start(PhoneConfig::new(format!("alice@{OVERLAY}"), PASSWORD, fe.udp_addr()))
        .await
        .unwrap();
    phone
}

/// A SIP server over UDP that answers the first request 200 and hands it over.
async fn udp_sip_server() -> (u16, oneshot::Receiver<Request>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        let received = tokio::time::timeout(SERVER_LIFETIME, socket.recv_from(&mut buf)).await;
        let Ok(Ok((n, from))) = received else { return };
        let Ok(SipMessage::Request(req)) = message::parse(&buf[..n]) else {
            return;
        };
        let ok = req.response(200, "OK", Some("server"));
        let _ = socket.send_to(&ok.to_bytes(), from).await;
        let _ = tx.send(req);
    });
    (port, rx)
}

/// A SIP server over TCP that answers the first request on the first
/// connection 200 and hands it over.
async fn tcp_sip_server() -> (u16, oneshot::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let serve = async {
            let (mut stream, _) = listener.accept().await.ok()?;
            let mut framer = StreamFramer::default();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = stream.read(&mut buf).await.ok().filter(|n| *n > 0)?;
                framer.push(&buf[..n]);
                while let Ok(Some(frame)) = framer.next_frame() {
                    let Frame::Message(bytes) = frame else { continue };
                    let Ok(SipMessage::Request(req)) = message::parse(&bytes) else {
                        return None;
                    };
                    let ok = req.response(200, "OK", Some("server"));
                    stream.write_all(&ok.to_bytes()).await.ok()?;
                    return Some(req);
                }
            }
        };
        if let Ok(Some(req)) = tokio::time::timeout(SERVER_LIFETIME, serve).await {
            let _ = tx.send(req);
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_reaches_the_server_dns_names_for_another_domain() {
    let test = async {
        let (port, received) = udp_sip_server().await;
        let zone = vec![
            naptr("example.test.", 10, "SIP+D2U", "_sip._udp.example.test."),
            srv("_sip._udp.example.test.", 0, port, "sip.example.test."),
            a("sip.example.test.", Ipv4Addr::LOCALHOST),
        ];
        let (_node, fe) = front_end(dns_server(zone).await).await;
        let alice = phone(&fe).await;
        alice.message_to("sip:bob@example.test", "hello bob").await.unwrap();
        let req = received.await.unwrap();
        assert_eq!(req.uri, "sip:bob@example.test", "RFC 3263 §4: the URI is not rewritten");
        assert_eq!(req.body, b"hello bob");
        let via = message::all_values(&req.headers, "Via");
        assert!(via[0].starts_with("SIP/2.0/UDP "), "{via:?}");
    };
    tokio::time::timeout(TEST_LIMIT, test).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_first_server_is_passed_over_for_the_next() {
    let test = async {
        // A port nobody listens on: the connection is refused at once.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_port = dead.local_addr().unwrap().port();
        drop(dead);
        let (live_port, received) = tcp_sip_server().await;
        let zone = vec![
            naptr("failover.test.", 10, "SIP+D2T", "_sip._tcp.failover.test."),
            srv("_sip._tcp.failover.test.", 1, dead_port, "dead.failover.test."),
            srv("_sip._tcp.failover.test.", 2, live_port, "live.failover.test."),
            a("dead.failover.test.", Ipv4Addr::LOCALHOST),
            a("live.failover.test.", Ipv4Addr::LOCALHOST),
        ];
        let (_node, fe) = front_end(dns_server(zone).await).await;
        let alice = phone(&fe).await;
        alice
            .message_to("sip:bob@failover.test", "second time lucky")
            .await
            .unwrap();
        let req = received.await.unwrap();
        assert_eq!(req.uri, "sip:bob@failover.test");
        let via = message::all_values(&req.headers, "Via");
        assert!(via[0].starts_with("SIP/2.0/TCP "), "{via:?}");
    };
    tokio::time::timeout(TEST_LIMIT, test).await.unwrap();
}
