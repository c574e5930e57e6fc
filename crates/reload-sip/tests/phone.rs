//! The built-in phone against a tiny stateless test proxy and a test
//! registrar: call set-up, in-dialog MESSAGE and BYE, CANCEL, REGISTER with
//! Digest.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reload_sip::digest::DigestServer;
use reload_sip::phone::{Phone, PhoneConfig, PhoneError, PhoneEvent, PhoneEventKind};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::Receiver;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The value of the first header `name` in a text message.
fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    let head = msg.split("\r\n\r\n").next()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// A response to the request `req` with Via/From/To/Call-ID/CSeq copied and
/// a To tag added.
fn reply(req: &str, status: &str, extra: &[String]) -> String {
    let head = req.split("\r\n\r\n").next().unwrap();
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in head.split("\r\n").skip(1) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("Via")
            || name.eq_ignore_ascii_case("From")
            || name.eq_ignore_ascii_case("Call-ID")
            || name.eq_ignore_ascii_case("CSeq")
        {
            out.push_str(line);
            out.push_str("\r\n");
        }
        if name.eq_ignore_ascii_case("To") {
            out.push_str(line);
            if !line.contains(";tag=") {
                out.push_str(";tag=srv1");
            }
            out.push_str("\r\n");
        }
    }
    for e in extra {
        out.push_str(e);
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// A stateless proxy (RFC 3261 §16.11) that Record-Routes, finds users in a
/// table, and optionally challenges INVITEs with 407.
struct TestProxy {
    addr: SocketAddr,
    users: Arc<Mutex<HashMap<String, SocketAddr>>>,
    /// Start lines of everything forwarded.
    log: Arc<Mutex<Vec<String>>>,
}

impl TestProxy {
    async fn start(mut challenge: Option<(DigestServer, String)>) -> TestProxy {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        let users: Arc<Mutex<HashMap<String, SocketAddr>>> = Arc::default();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (u, l) = (users.clone(), log.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            let mut challenged: HashSet<String> = HashSet::new();
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(msg) = std::str::from_utf8(&buf[..n]) else {
                    continue;
                };
                let Some((head, body)) = msg.split_once("\r\n\r\n") else {
                    continue;
                };
                let mut lines: Vec<String> = head.split("\r\n").map(str::to_string).collect();
                let start = lines[0].clone();
                if start.starts_with("SIP/2.0") {
                    // Response: pop our Via, send to the next one's sent-by.
                    let Some(i) = lines.iter().position(|l| l.starts_with("Via:")) else {
                        continue;
                    };
                    lines.remove(i);
                    let Some(next) = lines.iter().find(|l| l.starts_with("Via:")) else {
                        continue;
                    };
                    let sent_by = next["Via:".len()..].split_whitespace().nth(1).unwrap_or_default();
                    let Ok(to) = sent_by.split(';').next().unwrap_or_default().parse::<SocketAddr>() else {
                        continue;
                    };
                    l.lock().unwrap().push(start);
                    let out = format!("{}\r\n\r\n{body}", lines.join("\r\n"));
                    let _ = sock.send_to(out.as_bytes(), to).await;
                    continue;
                }
                let mut parts = start.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let ruri = parts.next().unwrap_or_default().to_string();
                let top_branch = header(msg, "Via")
                    .and_then(|v| v.split(";branch=").nth(1))
                    .map(|b| b.split(';').next().unwrap_or_default().to_string())
                    .unwrap_or_default();
                if let Some((server, password)) = &mut challenge {
                    if method == "ACK" && challenged.contains(&top_branch) {
                        // The ACK for our 407 ends here (RFC 3261 §17.2.1).
                        l.lock().unwrap().push("ACK (absorbed)".into());
                        continue;
                    }
                    if method == "INVITE" {
                        let ok = header(msg, "Proxy-Authorization").is_some_and(|v| {
                            server
                                .verify("INVITE", v, |u| (u == "alice").then(|| password.clone()), unix_now())
                                .is_ok()
                        });
                        if !ok {
                            challenged.insert(top_branch.clone());
                            let r = reply(
                                msg,
                                "407 Proxy Authentication Required",
                                &[format!("Proxy-Authenticate: {}", server.challenge(unix_now(), false))],
                            );
                            l.lock().unwrap().push("407 (sent)".into());
                            let _ = sock.send_to(r.as_bytes(), from).await;
                            continue;
                        }
                    }
                }
                // Our own Route entry is removed (RFC 3261 §16.4).
                let me = format!("sip:{addr}");
                lines.retain(|line| !(line.starts_with("Route:") && line.contains(&me)));
                // The target: an IP:port Request-URI, or a user in the table.
                let host = ruri.trim_start_matches("sip:");
                let host = host.split(';').next().unwrap_or_default();
                let (user, hostport) = host.split_once('@').unwrap_or(("", host));
                let target = hostport
                    .parse::<SocketAddr>()
                    .ok()
                    .or_else(|| u.lock().unwrap().get(user).copied());
                let Some(target) = target else {
                    continue;
                };
                let i = lines.iter().position(|l| l.starts_with("Via:")).unwrap_or(1);
                // RFC 3261 §16.11: a branch that a CANCEL or ACK for a
                // non-2xx reproduces.
                lines.insert(i, format!("Via: SIP/2.0/UDP {addr};branch=z9hG4bKsp{top_branch}"));
                if method == "INVITE" {
                    lines.insert(i + 1, format!("Record-Route: <sip:{addr};lr>"));
                }
                l.lock().unwrap().push(start);
                let out = format!("{}\r\n\r\n{body}", lines.join("\r\n"));
                let _ = sock.send_to(out.as_bytes(), target).await;
            }
        });
        TestProxy { addr, users, log }
    }

    fn add(&self, user: &str, phone: &Phone) {
        self.users.lock().unwrap().insert(user.into(), phone.local_addr());
    }

    fn forwarded(&self, prefix: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

/// Reads events until one matches, keeping all of them in `seen`.
async fn wait_for(
    rx: &mut Receiver<PhoneEvent>,
    seen: &mut Vec<PhoneEvent>,
    pred: impl Fn(&PhoneEventKind) -> bool,
) -> PhoneEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let e = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out; seen {seen:?}"))
            .expect("phone gone");
        seen.push(e.clone());
        if pred(&e.kind) {
            return e;
        }
    }
}

async fn pair(
    proxy: &TestProxy,
    bob_delay: Duration,
) -> ((Phone, Receiver<PhoneEvent>), (Phone, Receiver<PhoneEvent>)) {
    let mut a = PhoneConfig::new("alice@overlay.test", "alice-pw", proxy.addr);
    a.display = Some("Alice \"A\"".into());
    let alice = Phone::start(a).await.unwrap();
    let mut b = PhoneConfig::new("sip:bob@overlay.test", "bob-pw", proxy.addr);
    b.answer_delay = bob_delay;
    let bob = Phone::start(b).await.unwrap();
    proxy.add("alice", &alice.0);
    proxy.add("bob", &bob.0);
    (alice, bob)
}

#[tokio::test]
async fn call_message_bye_through_a_challenging_proxy() {
    let proxy = TestProxy::start(Some((
        DigestServer::new("overlay.test", b"proxy-secret".to_vec()),
        "alice-pw".to_string(),
    )))
    .await;
    let ((alice, mut a_rx), (bob, mut b_rx)) = pair(&proxy, Duration::from_millis(300)).await;
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());

    let mut call = alice.call("sip:bob@overlay.test").await.unwrap();
    let t = call.timings;
    assert!(t.challenged, "the proxy asked for credentials");
    let ringing = t.ringing.expect("180 seen");
    let answered = t.answered.expect("200 seen");
    assert!(answered >= ringing + Duration::from_millis(250), "{t:?}");
    assert_eq!(call.route_set, vec![format!("<sip:{};lr>", proxy.addr)]);
    assert_eq!(call.remote_target, bob.contact());
    assert!(call.remote_sdp.contains("m=audio"));
    assert!(!call.remote_tag.is_empty());
    assert_eq!(proxy.forwarded("ACK (absorbed)"), 1, "the 407 was ACKed");

    let incoming = wait_for(&mut b_rx, &mut b_seen, |k| {
        matches!(k, PhoneEventKind::IncomingCall { .. })
    })
    .await;
    assert_eq!(
        incoming.kind,
        PhoneEventKind::IncomingCall {
            call_id: call.call_id.clone(),
            from: "sip:alice@overlay.test".into()
        }
    );
    let ok = wait_for(&mut b_rx, &mut b_seen, |k| matches!(k, PhoneEventKind::Answered { .. })).await;
    let acked = wait_for(&mut b_rx, &mut b_seen, |k| matches!(k, PhoneEventKind::Acked { .. })).await;
    assert!(incoming.at <= ok.at && ok.at <= acked.at);
    assert!(ok.at - incoming.at >= Duration::from_millis(250));

    // In-dialog MESSAGE both ways; the callee uses its own dialog state.
    alice.message(&mut call, "hello bob").await.unwrap();
    let m = wait_for(&mut b_rx, &mut b_seen, |k| matches!(k, PhoneEventKind::Message { .. })).await;
    assert_eq!(
        m.kind,
        PhoneEventKind::Message {
            call_id: call.call_id.clone(),
            from: "sip:alice@overlay.test".into(),
            text: "hello bob".into()
        }
    );
    let mut bob_side = bob.dialog(&call.call_id).expect("bob keeps the dialog");
    assert_eq!(bob_side.remote_tag, call.local_tag);
    assert_eq!(bob_side.local_tag, call.remote_tag);
    assert_eq!(bob_side.route_set, call.route_set);
    bob.message(&mut bob_side, "hi alice").await.unwrap();
    let m = wait_for(&mut a_rx, &mut a_seen, |k| matches!(k, PhoneEventKind::Message { .. })).await;
    assert!(matches!(m.kind, PhoneEventKind::Message { ref text, .. } if text == "hi alice"));

    let before = call.local_cseq;
    alice.bye(&mut call).await.unwrap();
    assert!(call.local_cseq > before);
    let bye = wait_for(&mut b_rx, &mut b_seen, |k| matches!(k, PhoneEventKind::Bye { .. })).await;
    assert_eq!(
        bye.kind,
        PhoneEventKind::Bye {
            call_id: call.call_id.clone()
        }
    );
    assert!(bob.dialog(&call.call_id).is_none());
    // A second BYE names a dialog that is gone.
    match alice.bye(&mut call).await {
        Err(PhoneError::Status(481, _)) => {}
        other => panic!("expected 481, got {other:?}"),
    }
    // ACK, MESSAGE and BYE went through the proxy (the route set).
    assert!(proxy.forwarded("ACK sip:bob@") >= 1);
    assert!(proxy.forwarded("BYE sip:bob@") >= 1);
    assert!(proxy.forwarded("MESSAGE sip:alice@") >= 1);
}

#[tokio::test]
async fn callee_hangs_up() {
    let proxy = TestProxy::start(None).await;
    let ((alice, mut a_rx), (bob, mut b_rx)) = pair(&proxy, Duration::from_millis(10)).await;
    let (mut a_seen, mut b_seen) = (Vec::new(), Vec::new());
    let call = alice.call("sip:bob@overlay.test").await.unwrap();
    assert!(!call.timings.challenged);
    wait_for(&mut b_rx, &mut b_seen, |k| matches!(k, PhoneEventKind::Acked { .. })).await;
    let mut bob_side = bob.dialog(&call.call_id).unwrap();
    bob.bye(&mut bob_side).await.unwrap();
    let e = wait_for(&mut a_rx, &mut a_seen, |k| matches!(k, PhoneEventKind::Bye { .. })).await;
    assert_eq!(
        e.kind,
        PhoneEventKind::Bye {
            call_id: call.call_id.clone()
        }
    );
    assert!(alice.dialog(&call.call_id).is_none());
}

#[tokio::test]
async fn cancel_a_ringing_call() {
    let proxy = TestProxy::start(None).await;
    let ((alice, _a_rx), (_bob, mut b_rx)) = pair(&proxy, Duration::from_secs(30)).await;
    let mut b_seen = Vec::new();
    let mut out = alice.invite("sip:bob@overlay.test").await.unwrap();
    let call_id = out.call_id().to_string();
    assert!(out.ringing().await.unwrap());
    let outcome = out.cancel().await.unwrap();
    assert_eq!(outcome.cancel_status, Some(200));
    assert_eq!(outcome.invite_status, 487);
    assert!(outcome.ringing.is_some());
    wait_for(&mut b_rx, &mut b_seen, |k| {
        matches!(k, PhoneEventKind::Cancelled { .. })
    })
    .await;
    assert!(b_seen.iter().any(|e| e.kind
        == PhoneEventKind::IncomingCall {
            call_id: call_id.clone(),
            from: "sip:alice@overlay.test".into()
        }));
    // The 487 was ACKed through the proxy, and bob never answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(proxy.forwarded("CANCEL"), 1);
    assert_eq!(proxy.forwarded("ACK"), 1);
    assert!(proxy.forwarded("SIP/2.0 487") >= 1);
    while let Ok(e) = b_rx.try_recv() {
        assert!(!matches!(e.kind, PhoneEventKind::Answered { .. }), "{e:?}");
    }
}

#[tokio::test]
async fn rejected_call_is_a_status_error() {
    // Nobody is called "carol": the proxy drops the INVITE, so use a
    // registrar-like socket that answers 486 instead.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let acks = Arc::new(Mutex::new(0));
    let acks2 = acks.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.starts_with("INVITE") {
                let r = reply(&msg, "486 Busy Here", &[]);
                let _ = sock.send_to(r.as_bytes(), from).await;
            } else if msg.starts_with("ACK") {
                *acks2.lock().unwrap() += 1;
            }
        }
    });
    let (alice, _rx) = Phone::start(PhoneConfig::new("alice@overlay.test", "pw", addr))
        .await
        .unwrap();
    match alice.call("sip:carol@overlay.test").await {
        Err(PhoneError::Status(486, reason)) => assert_eq!(reason, "Busy Here"),
        other => panic!("expected 486, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*acks.lock().unwrap(), 1);
}

/// A registrar that challenges, then checks the digest with DigestServer.
async fn test_registrar() -> (SocketAddr, Arc<Mutex<Vec<(String, String)>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let seen2 = seen.clone();
    let mut server = DigestServer::new("overlay.test", b"registrar-secret".to_vec());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !msg.starts_with("REGISTER sip:overlay.test SIP/2.0\r\n") {
                continue;
            }
            let call_id = header(&msg, "Call-ID").unwrap_or_default().to_string();
            let cseq = header(&msg, "CSeq").unwrap_or_default().to_string();
            seen2.lock().unwrap().push((call_id, cseq));
            let r = match header(&msg, "Authorization") {
                None => reply(
                    &msg,
                    "401 Unauthorized",
                    &[format!("WWW-Authenticate: {}", server.challenge(unix_now(), false))],
                ),
                Some(auth) => {
                    match server.verify(
                        "REGISTER",
                        auth,
                        |u| (u == "alice").then(|| "alice-pw".into()),
                        unix_now(),
                    ) {
                        Ok(_) => {
                            let contact = header(&msg, "Contact").unwrap_or_default();
                            let uri = contact.split('>').next().unwrap_or_default().trim_start_matches('<');
                            let expires = header(&msg, "Expires").unwrap_or("3600");
                            reply(
                                &msg,
                                "200 OK",
                                &[format!(
                                    "Contact: <{uri}>;expires={expires};pub-gruu=\"sip:alice@overlay.test;gr=urn:uuid:00000000-0000-4000-8000-000000000001\""
                                )],
                            )
                        }
                        Err(_) => reply(&msg, "403 Forbidden", &[]),
                    }
                }
            };
            let _ = sock.send_to(r.as_bytes(), from).await;
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn register_answers_the_digest_challenge() {
    let (registrar, seen) = test_registrar().await;
    let (alice, _rx) = Phone::start(PhoneConfig::new("alice@overlay.test", "alice-pw", registrar))
        .await
        .unwrap();
    let started = Instant::now();
    let reg = alice.register(600).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(reg.status, 200);
    assert!(reg.challenged);
    assert_eq!(reg.expires, Some(600));
    assert_eq!(
        reg.gruu.as_deref(),
        Some("sip:alice@overlay.test;gr=urn:uuid:00000000-0000-4000-8000-000000000001")
    );
    assert_eq!(reg.contacts.len(), 1);
    assert!(reg.contacts[0].contains(alice.contact()));
    // Refresh: same Call-ID, rising CSeq (RFC 3261 §10.2).
    alice.register(0).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|(id, _)| *id == seen[0].0));
    let nums: Vec<u32> = seen
        .iter()
        .map(|(_, c)| c.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(nums.windows(2).all(|w| w[1] > w[0]), "{nums:?}");

    let (eve, _rx) = Phone::start(PhoneConfig::new("alice@overlay.test", "wrong", registrar))
        .await
        .unwrap();
    match eve.register(600).await {
        Err(PhoneError::Status(403, _)) => {}
        other => panic!("expected 403, got {other:?}"),
    }
}

#[tokio::test]
async fn register_times_out_without_a_registrar() {
    // Timer F (64*T1 = 32 s) is long; just check the request is retransmitted
    // and the call can be abandoned.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (alice, _rx) = Phone::start(PhoneConfig::new("alice@overlay.test", "pw", sock.local_addr().unwrap()))
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_millis(1700), alice.register(60)).await;
    assert!(r.is_err(), "no answer, no result");
    // T1 = 500 ms doubling: sent at 0, 0.5 and 1.5 s.
    let mut buf = vec![0u8; 65535];
    let mut count = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(10), sock.recv_from(&mut buf)).await {
        count += 1;
    }
    assert_eq!(count, 3);
}

async fn recv_text(sock: &UdpSocket, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn uas_retransmits_200_until_ack_and_absorbs_retransmissions() {
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = raw.local_addr().unwrap();
    let mut cfg = PhoneConfig::new("bob@overlay.test", "pw", me);
    cfg.answer_delay = Duration::ZERO;
    let (bob, mut rx) = Phone::start(cfg).await.unwrap();
    let mut seen = Vec::new();
    let to_bob = bob.local_addr();
    let req = |method: &str, branch: &str, cseq: u32, to_tag: &str, body: &str| {
        let to_tag = if to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={to_tag}")
        };
        format!(
            "{method} sip:bob@overlay.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:carol@example.test>;tag=c1\r\nTo: <sip:bob@overlay.test>{to_tag}\r\n\
             Call-ID: raw-1\r\nCSeq: {cseq} {method}\r\nContact: <sip:carol@{me}>\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let invite = req("INVITE", "z9hG4bKraw1", 7, "", "");
    raw.send_to(invite.as_bytes(), to_bob).await.unwrap();
    let ringing = recv_text(&raw, Duration::from_secs(2)).await.unwrap();
    assert!(ringing.starts_with("SIP/2.0 180 "), "{ringing}");
    let to = header(&ringing, "To").unwrap().to_string();
    let tag = to.split(";tag=").nth(1).unwrap().to_string();
    let ok = recv_text(&raw, Duration::from_secs(2)).await.unwrap();
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}");
    assert_eq!(header(&ok, "To").unwrap(), to);
    assert_eq!(header(&ok, "Contact").unwrap(), format!("<{}>", bob.contact()));
    assert!(ok.contains("\r\nm=audio ") && ok.contains("c=IN IP4 127.0.0.1"));
    // A retransmitted INVITE gets the 200 again, and without an ACK the 200
    // is retransmitted after T1 (RFC 3261 §13.3.1.4).
    raw.send_to(invite.as_bytes(), to_bob).await.unwrap();
    assert!(
        recv_text(&raw, Duration::from_millis(300))
            .await
            .unwrap()
            .starts_with("SIP/2.0 200 ")
    );
    assert!(
        recv_text(&raw, Duration::from_millis(900))
            .await
            .unwrap()
            .starts_with("SIP/2.0 200 ")
    );
    let ack = req("ACK", "z9hG4bKraw2", 7, &tag, "");
    raw.send_to(ack.as_bytes(), to_bob).await.unwrap();
    wait_for(&mut rx, &mut seen, |k| matches!(k, PhoneEventKind::Acked { .. })).await;
    // Allow one retransmission already in flight, then silence.
    let mut late = 0;
    while let Some(m) = recv_text(&raw, Duration::from_millis(1300)).await {
        assert!(m.starts_with("SIP/2.0 200 "));
        late += 1;
    }
    assert!(late <= 1);

    // A retransmitted MESSAGE gets the same answer and one event.
    let msg = req("MESSAGE", "z9hG4bKraw3", 8, &tag, "ping");
    raw.send_to(msg.as_bytes(), to_bob).await.unwrap();
    let r1 = recv_text(&raw, Duration::from_secs(2)).await.unwrap();
    raw.send_to(msg.as_bytes(), to_bob).await.unwrap();
    let r2 = recv_text(&raw, Duration::from_secs(2)).await.unwrap();
    assert!(r1.starts_with("SIP/2.0 200 ") && r1 == r2);
    assert_eq!(header(&r1, "To").unwrap(), to);
    wait_for(&mut rx, &mut seen, |k| matches!(k, PhoneEventKind::Message { .. })).await;

    // OPTIONS outside the dialog: 200 with Allow and a To tag.
    let options = req("OPTIONS", "z9hG4bKraw4", 1, "", "").replace("Call-ID: raw-1", "Call-ID: raw-2");
    raw.send_to(options.as_bytes(), to_bob).await.unwrap();
    let r = recv_text(&raw, Duration::from_secs(2)).await.unwrap();
    assert!(r.starts_with("SIP/2.0 200 "), "{r}");
    assert!(header(&r, "Allow").unwrap().contains("MESSAGE"));
    assert!(header(&r, "To").unwrap().contains(";tag="));

    // BYE naming another tag: 481; with ours: 200 and the call ends.
    let bad = req("BYE", "z9hG4bKraw5", 9, "nope", "");
    raw.send_to(bad.as_bytes(), to_bob).await.unwrap();
    assert!(
        recv_text(&raw, Duration::from_secs(2))
            .await
            .unwrap()
            .starts_with("SIP/2.0 481 ")
    );
    let bye = req("BYE", "z9hG4bKraw6", 10, &tag, "");
    raw.send_to(bye.as_bytes(), to_bob).await.unwrap();
    assert!(
        recv_text(&raw, Duration::from_secs(2))
            .await
            .unwrap()
            .starts_with("SIP/2.0 200 ")
    );
    wait_for(&mut rx, &mut seen, |k| matches!(k, PhoneEventKind::Bye { .. })).await;
    let messages = seen
        .iter()
        .filter(|e| matches!(e.kind, PhoneEventKind::Message { .. }))
        .count();
    assert_eq!(messages, 1);
    assert!(bob.dialog("raw-1").is_none());
}

#[tokio::test]
async fn pager_mode_message() {
    let proxy = TestProxy::start(None).await;
    let ((alice, _a_rx), (_bob, mut b_rx)) = pair(&proxy, Duration::from_millis(10)).await;
    let mut seen = Vec::new();
    alice.message_to("sip:bob@overlay.test", "pager hello").await.unwrap();
    let e = wait_for(&mut b_rx, &mut seen, |k| matches!(k, PhoneEventKind::Message { .. })).await;
    assert!(matches!(e.kind, PhoneEventKind::Message { ref text, ref from, .. }
        if text == "pager hello" && from == "sip:alice@overlay.test"));
}
