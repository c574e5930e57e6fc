//! Unmodified SIP phones against the SIP front ends of a real overlay: ten
//! `p2psip peer` processes over TLS, three of them (alice's, bob's and carol's
//! nodes) running the registrar and proxy for phones, and sipp playing the
//! phones (scenarios in `tests/sipp/`).
//!
//! 1. REGISTER is challenged (401, digest with qop=auth, realm = overlay) and
//!    then accepted with the node's GRUU; a REGISTER for an AOR the node holds
//!    no certificate for gets 403.
//! 2. A phone registered at bob's node calls alice, whose phone is registered
//!    at alice's node: the INVITE crosses both nodes, the dialog's ACK and BYE
//!    follow the record-routed path back through them.
//! 3. A call to an AOR registered nowhere gets 404, both from a registered
//!    caller and from one that answers the 407 challenge instead.
//! 4. A ringing call is cancelled: 200 for the CANCEL, 487 for the INVITE.
//!    Then a call to carol's GRUU that carol hangs up (her BYE travels the
//!    route set the other way), and a call from a TCP connection bob did not
//!    register from (407, then credentials, TCP Record-Route).
//! 5. alice's node is killed with SIGKILL; a call to alice must end within
//!    bounded time with 480 or 408 (the overlay still holds her registration).
//!
//! Last, every response a phone received through the nodes must carry the
//! Status-Line its sender gave it.
//!
//! sipp is not optional: `.ci/run` installs it (Debian sip-tester). With
//! `P2PSIP_SIPP_LOGS=DIR` the sipp message logs and node logs are kept in DIR.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Overlay, Proc, free_port};
use serde_json::json;

/// The overlay's name: the domain of every AOR and the digest realm.
const OVERLAY: &str = "sipp.test";
/// The phones' digest password (`--sip-password`), unrelated to enrollment.
const SIP_PASSWORD: &str = "phone-pw-7";
/// The enrolled users, one peer each; peer 0 is the bootstrap peer.
const USERS: [&str; 10] = [
    "erin", "alice", "bob", "carol", "dave", "frank", "grace", "heidi", "ivan", "judy",
];
/// The users whose nodes run a SIP front end.
const FRONT_ENDS: [&str; 3] = ["alice", "bob", "carol"];
/// How long a call to a dead node may take to fail (measured and asserted).
const DEAD_NODE_LIMIT: Duration = Duration::from_secs(60);

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

/// A UDP port on 127.0.0.1 that is free now (bound, read, released).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One sipp run: a phone on 127.0.0.1:`port` playing `scenario` once.
struct Sipp {
    label: String,
    scenario: &'static str,
    port: u16,
    /// The front end to send to; none for a phone that only answers.
    remote: Option<SocketAddr>,
    /// `-s`: the user part of the Request-URI (the callee, or the registering user).
    service: String,
    /// `-key NAME VALUE` (besides `domain`): `caller`, `target`.
    keys: Vec<(String, String)>,
    /// `-au USER -ap PASSWORD`.
    auth: Option<String>,
    /// `-recv_timeout`.
    recv_timeout: Duration,
    /// `-t`: u1 (UDP, one socket) or t1 (TCP, one connection).
    transport: &'static str,
}

impl Sipp {
    fn new(label: &str, scenario: &'static str, port: u16, service: &str) -> Sipp {
        Sipp {
            label: label.to_owned(),
            scenario,
            port,
            remote: None,
            service: service.to_owned(),
            keys: Vec::new(),
            auth: None,
            recv_timeout: Duration::from_secs(15),
            transport: "u1",
        }
    }

    fn to(mut self, remote: SocketAddr) -> Sipp {
        self.remote = Some(remote);
        self
    }

    fn key(mut self, name: &str, value: &str) -> Sipp {
        self.keys.push((name.to_owned(), value.to_owned()));
        self
    }

    fn caller(self, user: &str) -> Sipp {
        self.key("caller", user)
    }

    fn auth(mut self, user: &str) -> Sipp {
        self.auth = Some(user.to_owned());
        self
    }

    fn tcp(mut self) -> Sipp {
        self.transport = "t1";
        self
    }

    fn recv_timeout(mut self, t: Duration) -> Sipp {
        self.recv_timeout = t;
        self
    }

    fn command(&self, dir: &Path) -> Command {
        let mut c = Command::new("sipp");
        c.current_dir(dir)
            .arg("-sf")
            .arg(scenario(self.scenario))
            .args([
                "-i",
                "127.0.0.1",
                "-t",
                self.transport,
                "-m",
                "1",
                "-l",
                "1",
                "-nostdin",
            ])
            .args(["-p", &self.port.to_string()])
            .args(["-s", &self.service])
            .args(["-key", "domain", OVERLAY])
            .args(["-recv_timeout", &format!("{}", self.recv_timeout.as_millis())])
            // The global limit, a failure when reached.
            .args(["-timeout", &format!("{}s", self.recv_timeout.as_secs() + 20)])
            .arg("-timeout_error")
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.join(format!("{}.errors.log", self.label)))
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.join(format!("{}.messages.log", self.label)));
        for (name, value) in &self.keys {
            c.args(["-key", name, value]);
        }
        if let Some(user) = &self.auth {
            c.args(["-au", user, "-ap", SIP_PASSWORD]);
        }
        if let Some(remote) = self.remote {
            c.arg(remote.to_string());
        }
        c.stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("{}.stdout.log", self.label))).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{}.stderr.log", self.label))).unwrap());
        c
    }

    fn spawn(&self, dir: &Path) -> Child {
        match self.command(dir).spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "sipp is not installed, and this test needs it: `.ci/run` installs it \
                 (apt-get install sip-tester). It is never skipped."
            ),
            Err(e) => panic!("running sipp for {}: {e}", self.label),
        }
    }

    /// Runs to the end; returns the exit status and how long it took.
    fn run(&self, dir: &Path) -> (ExitStatus, Duration) {
        let t = Instant::now();
        let mut child = self.spawn(dir);
        let status = wait_bounded(&mut child, self.recv_timeout + Duration::from_secs(30));
        (status, t.elapsed())
    }

    /// What sipp left behind, for failure messages.
    fn report(&self, dir: &Path) -> String {
        let mut out = String::new();
        for kind in ["stderr", "errors", "messages"] {
            let path = dir.join(format!("{}.{kind}.log", self.label));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: String = text
                .chars()
                .rev()
                .take(6000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            out.push_str(&format!("---- sipp {} {kind} ----\n{tail}\n", self.label));
        }
        out
    }
}

/// The status lines of the responses a phone received (`received`) or sent,
/// from its `-trace_msg` log.
fn status_lines(dir: &Path, label: &str, received: bool) -> Vec<String> {
    let log = std::fs::read_to_string(dir.join(format!("{label}.messages.log"))).unwrap_or_default();
    let marker = if received { "message received" } else { "message sent" };
    let mut out = Vec::new();
    let mut lines = log.lines();
    while let Some(line) = lines.next() {
        if line.contains(marker) {
            // A blank line, then the message.
            if let Some(first) = lines.by_ref().find(|l| !l.trim().is_empty())
                && first.starts_with("SIP/2.0 ")
            {
                out.push(first.trim_end().to_owned());
            }
        }
    }
    out
}

/// Responses that reached phone `label` with another Status-Line than the one
/// the phone `from` sent them with (same status code), or with no reason
/// phrase at all. A proxy forwards a response as it came, changing only Via
/// and Record-Route (RFC 3261 section 16.7 steps 3, 4 and 9), and a
/// Reason-Phrase is text, no quotes (section 25.1).
fn altered_status_lines(dir: &Path, label: &str, from: Option<&str>) -> Vec<String> {
    let sent = from.map(|f| status_lines(dir, f, false)).unwrap_or_default();
    let code = |l: &str| l.split(' ').nth(1).unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for line in status_lines(dir, label, true) {
        let reason = line.splitn(3, ' ').nth(2).unwrap_or_default().trim().to_owned();
        let sent_same_code: Vec<&String> = sent.iter().filter(|s| code(s) == code(&line)).collect();
        if reason.is_empty() {
            out.push(format!("{label} received {line:?}: no Reason-Phrase"));
        } else if !sent_same_code.is_empty() && !sent_same_code.contains(&&line) {
            out.push(format!(
                "{label} received {line:?}, but {from:?} sent {sent_same_code:?}"
            ));
        }
    }
    out
}

/// The GRUU (`pub-gruu`) a phone's REGISTER got in its 200 (RFC 5627 section 4.2).
fn pub_gruu(dir: &Path, label: &str) -> String {
    let log = std::fs::read_to_string(dir.join(format!("{label}.messages.log"))).unwrap_or_default();
    log.split("pub-gruu=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{label}: no pub-gruu in the 200 to the REGISTER"))
        .to_owned()
}

/// Waits for a child at most `limit`, then kills it (by its own handle).
fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sipp phone running in the background, killed if the test ends early.
struct Background {
    child: Option<Child>,
}

impl Background {
    fn wait(mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        wait_bounded(&mut child, limit)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// With `P2PSIP_SIPP_LOGS=DIR`, the sipp and node logs are copied into DIR
/// when the test ends, passed or failed (the overlay's directory is removed).
struct KeepLogs {
    from: PathBuf,
}

impl Drop for KeepLogs {
    fn drop(&mut self) {
        let Some(to) = std::env::var_os("P2PSIP_SIPP_LOGS") else {
            return;
        };
        let to = PathBuf::from(to);
        let _ = std::fs::create_dir_all(&to);
        for entry in std::fs::read_dir(&self.from).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let _ = std::fs::copy(&path, to.join(entry.file_name()));
            }
        }
    }
}

/// The running overlay and its phones' front ends.
struct Net {
    ov: Overlay,
    peers: Vec<Option<Proc>>,
    /// The SIP front end of each user that has one.
    fronts: Vec<(String, SocketAddr)>,
}

impl Net {
    fn front(&self, user: &str) -> SocketAddr {
        self.fronts
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("{user} has no front end"))
    }

    fn dir(&self) -> &Path {
        self.ov.dir.path()
    }

    /// The node logs of the front-end users, for failure messages.
    fn node_logs(&self) -> String {
        let mut out = String::new();
        for user in FRONT_ENDS {
            let log = self.ov.log(user);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            out.push_str(&format!("---- node {user} (last lines) ----\n"));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Runs a phone to the end and asserts that its call succeeded (exit 0).
    fn expect_ok(&self, sipp: &Sipp) -> Duration {
        self.expect_ok_with(sipp, &[])
    }

    /// Like [`Net::expect_ok`]; a failure also shows what `companions` (the
    /// phones on the other end) saw.
    fn expect_ok_with(&self, sipp: &Sipp, companions: &[&Sipp]) -> Duration {
        let (status, took) = sipp.run(self.dir());
        assert!(
            status.success(),
            "sipp {} ({}) failed with {status} after {took:?}\n{}{}\n{}",
            sipp.label,
            sipp.scenario,
            sipp.report(self.dir()),
            companions.iter().map(|c| c.report(self.dir())).collect::<String>(),
            self.node_logs()
        );
        eprintln!("sipp {:<18} {:>8.2?}  ok", sipp.label, took);
        took
    }
}

/// Ten peers, peer 0 on the bootstrap address; the front-end users' peers run
/// `--sip 127.0.0.1:0`. Each must answer status Joined before the next starts.
fn start_overlay() -> Net {
    let t = Instant::now();
    let ov = Overlay::new(OVERLAY, "tls");
    let data: Vec<_> = USERS.iter().map(|u| ov.enroll(u)).collect();
    eprintln!("{} users enrolled in {:?}", USERS.len(), t.elapsed());
    let t = Instant::now();
    let mut peers = Vec::new();
    let mut fronts = Vec::new();
    for (i, (user, d)) in USERS.iter().zip(&data).enumerate() {
        let listen = if i == 0 {
            ov.bootstrap.to_string()
        } else {
            "127.0.0.1:0".to_owned()
        };
        let front = FRONT_ENDS.contains(user);
        let extra: &[&str] = if front {
            &["--sip", "127.0.0.1:0", "--sip-password", SIP_PASSWORD]
        } else {
            &[]
        };
        let mut p = ov.peer_with(user, d, &listen, extra);
        p.listening();
        if front {
            let line = p.line(Duration::from_secs(20));
            let addr: SocketAddr = line
                .strip_prefix("sip front end listening on ")
                .and_then(|a| a.trim().parse().ok())
                .unwrap_or_else(|| panic!("{user}: unexpected second line {line:?}\n{}", ov.log(user)));
            fronts.push(((*user).to_owned(), addr));
        }
        let status = p.ask(&json!({"op": "status"}));
        assert_eq!(status["ok"], json!(true), "{user} status: {status}");
        assert_eq!(
            status["detail"]["state"],
            json!("Joined"),
            "{user}: {status}\n{}",
            ov.log(user)
        );
        peers.push(Some(p));
    }
    eprintln!("{} peers joined in {:?}", USERS.len(), t.elapsed());
    Net { ov, peers, fronts }
}

#[test]
fn sipp_phones_call_through_the_overlay() {
    let started = Instant::now();
    let mut net = start_overlay();
    let dir = net.dir().to_owned();
    let _keep = KeepLogs { from: dir.clone() };
    let (alice_front, bob_front, carol_front) = (net.front("alice"), net.front("bob"), net.front("carol"));
    // Each phone keeps its port: the registrar sends requests for the AOR to
    // the address the REGISTER came from.
    let (alice_port, bob_port, carol_port) = (free_udp_port(), free_udp_port(), free_udp_port());

    // 1. Registration: 401 challenge, then 200 with the GRUU; 403 for an AOR
    //    of another node.
    let t = Instant::now();
    net.expect_ok(
        &Sipp::new("register-alice", "register.xml", alice_port, "alice")
            .to(alice_front)
            .auth("alice"),
    );
    net.expect_ok(
        &Sipp::new("register-bob", "register.xml", bob_port, "bob")
            .to(bob_front)
            .auth("bob@sipp.test"),
    );
    net.expect_ok(
        &Sipp::new("register-carol", "register.xml", carol_port, "carol")
            .to(carol_front)
            .auth("carol"),
    );
    net.expect_ok(&Sipp::new("register-foreign", "register_forbidden.xml", free_udp_port(), "bob").to(alice_front));
    eprintln!("registrations in {:?}", t.elapsed());

    // 2. bob (at bob's node) calls alice (at alice's node): INVITE, 180, 200,
    //    ACK and BYE along the record-routed path.
    let t = Instant::now();
    let callee = Sipp::new("uas-alice", "uas.xml", alice_port, "alice");
    let uas = Background {
        child: Some(callee.spawn(&dir)),
    };
    std::thread::sleep(Duration::from_millis(300));
    net.expect_ok_with(
        &Sipp::new("call-bob-alice", "uac.xml", bob_port, "alice")
            .to(bob_front)
            .caller("bob"),
        &[&callee],
    );
    let status = uas.wait(Duration::from_secs(20));
    assert!(
        status.success(),
        "the callee's sipp failed with {status}\n{}\n{}",
        callee.report(&dir),
        net.node_logs()
    );
    eprintln!("call across two nodes in {:?}", t.elapsed());

    // 3. An AOR registered nowhere (dave is enrolled, his node runs no front
    //    end): 404, from a registered caller and from one answering 407.
    let t = Instant::now();
    net.expect_ok(
        &Sipp::new("call-bob-dave", "uac_404.xml", bob_port, "dave")
            .to(bob_front)
            .caller("bob"),
    );
    net.expect_ok(
        &Sipp::new("call-carol-dave-407", "uac_auth_404.xml", free_udp_port(), "dave")
            .to(carol_front)
            .caller("carol")
            .auth("carol"),
    );
    eprintln!("calls to an unregistered AOR in {:?}", t.elapsed());

    // 4. bob calls carol, whose phone rings and never answers; bob cancels.
    let t = Instant::now();
    let callee = Sipp::new("uas-carol-ringing", "uas_ringing.xml", carol_port, "carol");
    let uas = Background {
        child: Some(callee.spawn(&dir)),
    };
    std::thread::sleep(Duration::from_millis(300));
    net.expect_ok_with(
        &Sipp::new("cancel-bob-carol", "uac_cancel.xml", bob_port, "carol")
            .to(bob_front)
            .caller("bob"),
        &[&callee],
    );
    let status = uas.wait(Duration::from_secs(20));
    assert!(
        status.success(),
        "the ringing callee's sipp failed with {status}\n{}\n{}",
        callee.report(&dir),
        net.node_logs()
    );
    eprintln!("cancelled call in {:?}", t.elapsed());

    // 4b. bob calls carol's GRUU (no Fetch: it names carol's node); carol
    //     answers and hangs up, her BYE following the route set back.
    let t = Instant::now();
    let gruu = pub_gruu(&dir, "register-carol");
    assert!(gruu.contains(";gr="), "not a RELOAD GRUU: {gruu}");
    let callee = Sipp::new("uas-carol-hangup", "uas_hangup.xml", carol_port, "carol");
    let uas = Background {
        child: Some(callee.spawn(&dir)),
    };
    std::thread::sleep(Duration::from_millis(300));
    net.expect_ok_with(
        &Sipp::new("gruu-bob-carol", "uac_gruu_hangup.xml", bob_port, "carol")
            .to(bob_front)
            .caller("bob")
            .key("target", &gruu),
        &[&callee],
    );
    let status = uas.wait(Duration::from_secs(20));
    assert!(
        status.success(),
        "the hanging-up callee's sipp failed with {status}\n{}\n{}",
        callee.report(&dir),
        net.node_logs()
    );
    eprintln!("call to a GRUU, callee hangs up, in {:?}", t.elapsed());

    // 4c. bob calls carol from a TCP connection he did not register from:
    //     407, then the call with credentials; the route set starts with his
    //     node's TCP Record-Route.
    let t = Instant::now();
    let callee = Sipp::new("uas-carol-tcp", "uas.xml", carol_port, "carol");
    let uas = Background {
        child: Some(callee.spawn(&dir)),
    };
    std::thread::sleep(Duration::from_millis(300));
    net.expect_ok_with(
        &Sipp::new("tcp-bob-carol", "uac_tcp_auth.xml", free_port(), "carol")
            .to(bob_front)
            .tcp()
            .caller("bob")
            .auth("bob"),
        &[&callee],
    );
    let status = uas.wait(Duration::from_secs(20));
    assert!(
        status.success(),
        "the callee of the TCP caller failed with {status}\n{}\n{}",
        callee.report(&dir),
        net.node_logs()
    );
    eprintln!("authenticated call over TCP in {:?}", t.elapsed());

    // 5. alice's node dies; her registration is still in the overlay. A call
    //    to her must fail with 480 or 408, within bounded time.
    let alice = USERS.iter().position(|u| *u == "alice").unwrap();
    net.peers[alice].take().unwrap().kill9();
    let dead = Sipp::new("call-bob-dead-alice", "uac_unreachable.xml", bob_port, "alice")
        .to(bob_front)
        .caller("bob")
        .recv_timeout(DEAD_NODE_LIMIT + Duration::from_secs(10));
    let took = net.expect_ok(&dead);
    let answer = status_lines(&dir, "call-bob-dead-alice", true)
        .pop()
        .unwrap_or_default();
    eprintln!("call to a dead node answered {answer:?} after {took:?}");
    assert!(
        took < DEAD_NODE_LIMIT,
        "a call to a dead node took {took:?} to fail (limit {DEAD_NODE_LIMIT:?})"
    );

    eprintln!("whole sipp test in {:?}", started.elapsed());

    // What the phones received through the nodes, checked last so that one
    // such defect does not hide the others.
    let mut problems = Vec::new();
    for (label, from) in [
        ("register-alice", None),
        ("call-bob-alice", Some("uas-alice")),
        ("uas-alice", Some("call-bob-alice")),
        ("call-bob-dave", None),
        ("call-carol-dave-407", None),
        ("cancel-bob-carol", Some("uas-carol-ringing")),
        ("uas-carol-ringing", Some("cancel-bob-carol")),
        ("gruu-bob-carol", Some("uas-carol-hangup")),
        ("uas-carol-hangup", Some("gruu-bob-carol")),
        ("tcp-bob-carol", Some("uas-carol-tcp")),
        ("uas-carol-tcp", Some("tcp-bob-carol")),
        ("call-bob-dead-alice", None),
    ] {
        problems.extend(altered_status_lines(&dir, label, from));
    }
    assert!(
        problems.is_empty(),
        "responses relayed by the nodes arrived with another Status-Line than they were sent \
         with:\n{}",
        problems.join("\n")
    );
}
