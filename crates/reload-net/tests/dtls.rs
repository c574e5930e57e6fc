//! DTLS/UDP links with simple reliability (RFC 6940 §6.6.4, §6.6.6) between
//! endpoints on 127.0.0.1: messages flow both ways; peers with certificates the
//! overlay does not accept are refused; lost handshake flights are retransmitted;
//! a dead link is noticed; a restarted peer can reconnect from the same address.
//! Some tests put a UDP relay in the path that loses datagrams on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reload_net::dtls::{DtlsEndpoint, LINK_MTU};
use reload_net::link::{LinkClosed, LinkConn, LinkError, LinkEvent};
use reload_net::security::{LinkSecurity, PeerAuthError};
use reload_trust::{Credentials, KeyType, TestCa, Validity, unix_now};
use reload_wire::NodeId;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

const OVERLAY: &str = "dtls-test.example.org";
const MAX_MESSAGE: usize = 5000;

fn ca(key: KeyType) -> TestCa {
    TestCa::new(OVERLAY, key, Validity::from_now(3600)).expect("CA")
}

fn new_node_id() -> NodeId {
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut id = [0x5a; 16];
    id[0] = n;
    id[15] = std::process::id().to_be_bytes()[3];
    NodeId(id)
}

fn issue(ca: &TestCa, node: NodeId, key: KeyType, validity: Validity) -> Credentials {
    ca.issue(&[node], Some(&format!("alice@{OVERLAY}")), key, validity)
        .expect("certificate")
}

/// A node's link security: a certificate from `issuer`, trusting `trusted`.
fn security_from(issuer: &TestCa, trusted: &TestCa, key: KeyType, validity: Validity) -> LinkSecurity {
    let node = new_node_id();
    LinkSecurity::new(
        issue(issuer, node, key, validity),
        node,
        trusted.trust_anchors().expect("anchors"),
    )
    .with_keylog(None)
}

fn security(ca: &TestCa) -> LinkSecurity {
    security_from(ca, ca, KeyType::EcdsaP256, Validity::from_now(3600))
}

async fn endpoint(security: LinkSecurity) -> (DtlsEndpoint, mpsc::Receiver<LinkConn>) {
    DtlsEndpoint::bind("127.0.0.1:0".parse().expect("addr"), security, MAX_MESSAGE)
        .await
        .expect("bind")
}

async fn accept(rx: &mut mpsc::Receiver<LinkConn>) -> LinkConn {
    timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("an inbound link in time")
        .expect("the endpoint is open")
}

/// Waits for the next message, skipping RTT reports.
async fn next_message(conn: &mut LinkConn) -> Vec<u8> {
    loop {
        match timeout(Duration::from_secs(15), conn.events.recv()).await {
            Ok(Some(LinkEvent::Message(m))) => return m,
            Ok(Some(LinkEvent::Rtt(_) | LinkEvent::Suspect)) => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// Waits for the link to close, returning the reason and whether it was
/// suspected first.
async fn closed(events: &mut mpsc::Receiver<LinkEvent>, within: Duration) -> (LinkClosed, bool) {
    let mut suspected = false;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(LinkEvent::Closed(reason))) => return (reason, suspected),
            Ok(Some(LinkEvent::Suspect)) => suspected = true,
            Ok(Some(_)) => {}
            Ok(None) => panic!("events ended without Closed"),
            Err(_) => panic!("link not closed within {within:?}"),
        }
    }
}

async fn no_inbound(rx: &mut mpsc::Receiver<LinkConn>) {
    if let Ok(Some(conn)) = timeout(Duration::from_millis(1500), rx.recv()).await {
        panic!("a refused peer got a link: {:?}", conn.peer);
    }
}

/// A UDP relay between one client and one server that can lose datagrams.
struct Relay {
    addr: SocketAddr,
    state: Arc<Mutex<RelayState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct RelayState {
    /// Client-to-server datagrams still to drop.
    drop_up: usize,
    /// Server-to-client datagrams still to drop.
    drop_down: usize,
    /// Drop everything.
    blackhole: bool,
    /// Server-to-client datagrams seen so far, and which of them (counting from
    /// one) to drop.
    down_seen: usize,
    drop_down_nth: Vec<usize>,
}

impl Relay {
    async fn start(server: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let back = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        back.connect(server).await.expect("connect");
        let addr = front.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(RelayState::default()));
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let mut client: Option<SocketAddr> = None;
            let mut up = vec![0u8; 65535];
            let mut down = vec![0u8; 65535];
            loop {
                tokio::select! {
                    r = front.recv_from(&mut up) => {
                        let Ok((n, from)) = r else { continue };
                        client = Some(from);
                        let pass = {
                            let mut s = st.lock().unwrap();
                            if s.blackhole { false } else if s.drop_up > 0 { s.drop_up -= 1; false } else { true }
                        };
                        if pass {
                            let _ = back.send(&up[..n]).await;
                        }
                    }
                    r = back.recv(&mut down) => {
                        let Ok(n) = r else { continue };
                        let pass = {
                            let mut s = st.lock().unwrap();
                            s.down_seen += 1;
                            let nth = s.down_seen;
                            if s.blackhole || s.drop_down_nth.contains(&nth) {
                                false
                            } else if s.drop_down > 0 {
                                s.drop_down -= 1;
                                false
                            } else {
                                true
                            }
                        };
                        if let (true, Some(c)) = (pass, client) {
                            let _ = front.send_to(&down[..n], c).await;
                        }
                    }
                }
            }
        });
        Relay { addr, state, task }
    }

    fn set(&self, f: impl FnOnce(&mut RelayState)) {
        f(&mut self.state.lock().unwrap());
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Two linked endpoints: `b` connected to `a`.
struct Pair {
    a: DtlsEndpoint,
    b: DtlsEndpoint,
    a_id: NodeId,
    b_id: NodeId,
    at_a: LinkConn,
    at_b: LinkConn,
    /// `a`'s inbound links after the first (an endpoint refuses ClientHellos once
    /// nobody takes its inbound links).
    a_in: mpsc::Receiver<LinkConn>,
}

async fn pair(sa: LinkSecurity, sb: LinkSecurity) -> Pair {
    let (a_id, b_id) = (sa.node_id(), sb.node_id());
    let (a, mut a_in) = endpoint(sa).await;
    let (b, _b_in) = endpoint(sb).await;
    let at_b = b.connect(a.local_addr(), Some(a_id)).await.expect("link up");
    let at_a = accept(&mut a_in).await;
    Pair {
        a,
        b,
        a_id,
        b_id,
        at_a,
        at_b,
        a_in,
    }
}

#[tokio::test]
async fn messages_flow_both_ways() {
    timeout(Duration::from_secs(90), async {
        let ca = ca(KeyType::EcdsaP256);
        let mut p = pair(security(&ca), security(&ca)).await;
        assert_eq!(p.at_b.peer, p.a_id);
        assert_eq!(p.at_a.peer, p.b_id);
        assert!(p.at_b.outbound && !p.at_a.outbound);
        assert_eq!(p.at_b.remote, p.a.local_addr());
        assert_eq!(p.at_a.remote, p.b.local_addr());
        assert_eq!(p.at_a.mtu, Some(LINK_MTU));

        // 1,000 messages, 500 each way at once. Stop-and-wait with the 10 ms gap
        // after each ack (§6.6.3.1) allows about 100 messages a second per direction.
        const EACH: u32 = 500;
        let message = |from: u8, i: u32| {
            let mut m = vec![from];
            m.extend_from_slice(&i.to_be_bytes());
            m.resize(16 + usize::try_from(i % 1000).unwrap(), from);
            m
        };
        let (send_a, send_b) = (p.at_a.send.clone(), p.at_b.send.clone());
        let senders = tokio::spawn(async move {
            let a = async {
                for i in 0..EACH {
                    send_a.send(message(b'a', i)).await.expect("link open");
                }
            };
            let b = async {
                for i in 0..EACH {
                    send_b.send(message(b'b', i)).await.expect("link open");
                }
            };
            tokio::join!(a, b);
        });
        let started = Instant::now();
        let (mut got_at_a, mut got_at_b) = (HashSet::new(), HashSet::new());
        while got_at_a.len() < EACH as usize || got_at_b.len() < EACH as usize {
            tokio::select! {
                m = next_message(&mut p.at_a), if got_at_a.len() < EACH as usize => { got_at_a.insert(m); }
                m = next_message(&mut p.at_b), if got_at_b.len() < EACH as usize => { got_at_b.insert(m); }
            }
        }
        senders.await.expect("senders");
        assert_eq!(got_at_a, (0..EACH).map(|i| message(b'b', i)).collect());
        assert_eq!(got_at_b, (0..EACH).map(|i| message(b'a', i)).collect());
        eprintln!("1000 messages in {:?}", started.elapsed());

        // A message larger than the MTU still crosses in one record.
        let big = vec![0xab; 4000];
        p.at_b.send.send(big.clone()).await.expect("open");
        assert_eq!(next_message(&mut p.at_a).await, big);

        // Closing one side sends close_notify; the other side sees it at once.
        drop(p.at_b.send);
        let (reason, _) = closed(&mut p.at_a.events, Duration::from_secs(5)).await;
        assert_eq!(reason, LinkClosed::Remote);
        let (reason, _) = closed(&mut p.at_b.events, Duration::from_secs(5)).await;
        assert_eq!(reason, LinkClosed::Local);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn rsa_keys_work() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::Rsa2048);
        let sa = security_from(&ca, &ca, KeyType::Rsa2048, Validity::from_now(3600));
        let sb = security_from(&ca, &ca, KeyType::EcdsaP256, Validity::from_now(3600));
        let mut p = pair(sa, sb).await;
        p.at_a.send.send(b"over RSA".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut p.at_b).await, b"over RSA");
        p.at_b.send.send(b"and back".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut p.at_a).await, b"and back");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn chains_with_an_intermediate_work() {
    timeout(Duration::from_secs(60), async {
        let root = ca(KeyType::EcdsaP256);
        let sub = root
            .intermediate(KeyType::EcdsaP256, Validity::from_now(3600))
            .expect("intermediate");
        let sa = security_from(&sub, &root, KeyType::EcdsaP256, Validity::from_now(3600));
        let sb = security_from(&sub, &root, KeyType::EcdsaP256, Validity::from_now(3600));
        let mut p = pair(sa, sb).await;
        p.at_b.send.send(b"hi".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut p.at_a).await, b"hi");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    timeout(Duration::from_secs(60), async {
        let ours = ca(KeyType::EcdsaP256);
        let theirs = ca(KeyType::EcdsaP256);
        let (a, mut a_in) = endpoint(security(&ours)).await;

        // The stranger trusts our root, so it accepts our certificate; we refuse its.
        let (c, _c_in) = endpoint(security_from(
            &theirs,
            &ours,
            KeyType::EcdsaP256,
            Validity::from_now(3600),
        ))
        .await;
        let err = c.connect(a.local_addr(), None).await.expect_err("refused");
        assert!(matches!(err, LinkError::Handshake(_)), "{err:?}");
        no_inbound(&mut a_in).await;

        // A stranger that trusts only its own root refuses us.
        let (d, _d_in) = endpoint(security(&theirs)).await;
        let err = d.connect(a.local_addr(), None).await.expect_err("refused");
        assert!(
            matches!(err, LinkError::PeerAuth(PeerAuthError::Untrusted(_))),
            "{err:?}"
        );
        no_inbound(&mut a_in).await;
        // Refused handshakes leave nothing behind.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(a.session_count(), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_unexpected_node_id_is_refused() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::EcdsaP256);
        let (a, mut a_in) = endpoint(security(&ca)).await;
        let (b, _b_in) = endpoint(security(&ca)).await;
        let someone_else = new_node_id();
        let err = b
            .connect(a.local_addr(), Some(someone_else))
            .await
            .expect_err("refused");
        match err {
            LinkError::PeerAuth(PeerAuthError::WrongNodeId { expected, .. }) => assert_eq!(expected, someone_else),
            other => panic!("{other:?}"),
        }
        no_inbound(&mut a_in).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::EcdsaP256);
        let now = unix_now();
        let expired = Validity::new(now - 7200, now - 3600);
        let (a, mut a_in) = endpoint(security(&ca)).await;

        // An expired client is refused by the server.
        let (b, _b_in) = endpoint(security_from(&ca, &ca, KeyType::EcdsaP256, expired)).await;
        assert!(b.connect(a.local_addr(), None).await.is_err());
        no_inbound(&mut a_in).await;

        // An expired server is refused by the client.
        let (e, mut e_in) = endpoint(security_from(&ca, &ca, KeyType::EcdsaP256, expired)).await;
        let err = a.connect(e.local_addr(), None).await.expect_err("refused");
        assert!(
            matches!(err, LinkError::PeerAuth(PeerAuthError::Untrusted(_))),
            "{err:?}"
        );
        no_inbound(&mut e_in).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn secrets_go_to_the_key_log() {
    timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.log");
        let ca = ca(KeyType::EcdsaP256);
        let sa = security(&ca).with_keylog(Some(path.clone()));
        let mut p = pair(sa, security(&ca)).await;
        p.at_b.send.send(b"secret".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut p.at_a).await, b"secret");
        let log = std::fs::read_to_string(&path).expect("key log written");
        let lines: Vec<&str> = log.lines().collect();
        assert!(!lines.is_empty());
        for line in &lines {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 3, "{line}");
            assert_eq!(fields[0], "CLIENT_RANDOM", "{line}");
            assert_eq!(fields[1].len(), 64, "{line}");
            assert_eq!(fields[2].len(), 96, "{line}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn lost_handshake_flights_are_retransmitted() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::EcdsaP256);
        let (sa, sb) = (security(&ca), security(&ca));
        let a_id = sa.node_id();
        let (a, mut a_in) = endpoint(sa).await;
        let (b, _b_in) = endpoint(sb).await;
        let relay = Relay::start(a.local_addr()).await;
        // Lose the first ClientHello and the server's first answer.
        relay.set(|s| {
            s.drop_up = 1;
            s.drop_down = 1;
        });
        let started = Instant::now();
        let mut at_b = b.connect(relay.addr, Some(a_id)).await.expect("link up despite losses");
        let mut at_a = accept(&mut a_in).await;
        // OpenSSL's first retransmission comes after a second.
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        at_b.send.send(b"made it".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut at_a).await, b"made it");
        at_a.send.send(b"so did I".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut at_b).await, b"so did I");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_lost_last_server_flight_is_sent_again() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::EcdsaP256);
        let (sa, sb) = (security(&ca), security(&ca));
        let a_id = sa.node_id();
        let (a, mut a_in) = endpoint(sa).await;
        let (b, _b_in) = endpoint(sb).await;
        let relay = Relay::start(a.local_addr()).await;
        // The server sends HelloVerifyRequest, then its hello flight, then
        // ChangeCipherSpec and Finished: lose the last. The server's handshake is
        // complete; the client's is not until the server answers its retransmission.
        relay.set(|s| s.drop_down_nth = vec![3]);
        let mut at_b = b.connect(relay.addr, Some(a_id)).await.expect("link up");
        let mut at_a = accept(&mut a_in).await;
        at_b.send.send(b"after all".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut at_a).await, b"after all");
        at_a.send.send(b"indeed".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut at_b).await, b"indeed");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_dead_link_is_detected() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::EcdsaP256);
        let (sa, sb) = (security(&ca), security(&ca));
        let a_id = sa.node_id();
        let (a, mut a_in) = endpoint(sa).await;
        let (b, _b_in) = endpoint(sb).await;
        let relay = Relay::start(a.local_addr()).await;
        let mut at_b = b.connect(relay.addr, Some(a_id)).await.expect("link up");
        let mut at_a = accept(&mut a_in).await;
        for i in 0..5u8 {
            at_b.send.send(vec![i; 10]).await.expect("open");
            assert_eq!(next_message(&mut at_a).await, vec![i; 10]);
        }
        // The network dies. The next message is sent five times over RTO, 2, 4, 8
        // and 16 RTO (the RTO is at its 200 ms floor on loopback), then the link
        // is given up: about 6.2 s; suspect at the third retransmission.
        relay.set(|s| s.blackhole = true);
        let started = Instant::now();
        at_b.send.send(b"into the void".to_vec()).await.expect("open");
        let (reason, suspected) = closed(&mut at_b.events, Duration::from_secs(30)).await;
        assert_eq!(reason, LinkClosed::Unreachable);
        assert!(suspected);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(6) && took < Duration::from_secs(20),
            "{took:?}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_restarted_peer_reconnects_from_the_same_address() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::EcdsaP256);
        let sa = security(&ca);
        let a_id = sa.node_id();
        let (a, mut a_in) = endpoint(sa).await;
        let relay = Relay::start(a.local_addr()).await;

        let (b, _b_in) = endpoint(security(&ca)).await;
        let at_b = b.connect(relay.addr, Some(a_id)).await.expect("link up");
        let mut old_at_a = accept(&mut a_in).await;
        at_b.send.send(b"first life".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut old_at_a).await, b"first life");

        // b crashes: its close_notify never arrives. A new b comes up and reaches a
        // through the same relay, so a sees the same source address.
        relay.set(|s| s.blackhole = true);
        drop(at_b);
        drop(b);
        tokio::time::sleep(Duration::from_millis(100)).await;
        relay.set(|s| s.blackhole = false);
        let sb2 = security(&ca);
        let b2_id = sb2.node_id();
        let (b2, _b2_in) = endpoint(sb2).await;
        let mut at_b2 = b2.connect(relay.addr, Some(a_id)).await.expect("new link up");
        let mut new_at_a = accept(&mut a_in).await;
        assert_eq!(new_at_a.peer, b2_id);
        assert_eq!(new_at_a.remote, old_at_a.remote);
        // The old link gives way to the new association.
        let (reason, _) = closed(&mut old_at_a.events, Duration::from_secs(5)).await;
        assert_eq!(reason, LinkClosed::Remote);
        at_b2.send.send(b"second life".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut new_at_a).await, b"second life");
        new_at_a.send.send(b"welcome back".to_vec()).await.expect("open");
        assert_eq!(next_message(&mut at_b2).await, b"welcome back");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn dropping_the_endpoint_closes_its_links() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::EcdsaP256);
        let mut p = pair(security(&ca), security(&ca)).await;
        drop(p.b);
        let (reason, _) = closed(&mut p.at_b.events, Duration::from_secs(5)).await;
        assert_eq!(reason, LinkClosed::Local);
        let (reason, _) = closed(&mut p.at_a.events, Duration::from_secs(5)).await;
        assert_eq!(reason, LinkClosed::Remote);
        // A second connect to a live address is refused while a link exists.
        let (c, _c_in) = endpoint(security(&ca)).await;
        let _link = c.connect(p.a.local_addr(), None).await.expect("link up");
        let _inbound = accept(&mut p.a_in).await;
        assert!(c.connect(p.a.local_addr(), None).await.is_err());
        // Nobody takes a's inbound links any more: new peers are ignored.
        drop(p.a_in);
        let (d, _d_in) = endpoint(security(&ca)).await;
        let started = Instant::now();
        assert!(matches!(
            d.connect(p.a.local_addr(), None).await,
            Err(LinkError::Timeout)
        ));
        assert!(started.elapsed() >= Duration::from_secs(9));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn oversized_messages_are_not_sent() {
    timeout(Duration::from_secs(60), async {
        let ca = ca(KeyType::EcdsaP256);
        let mut p = pair(security(&ca), security(&ca)).await;
        p.at_b.send.send(vec![1; MAX_MESSAGE + 1]).await.expect("open");
        p.at_b.send.send(vec![2; MAX_MESSAGE]).await.expect("open");
        // The oversized one is dropped; the link carries on.
        assert_eq!(next_message(&mut p.at_a).await, vec![2; MAX_MESSAGE]);
    })
    .await
    .expect("test timed out");
}
