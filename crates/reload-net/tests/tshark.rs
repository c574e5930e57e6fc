//! Wireshark decrypts our links and decodes what runs in them.
//!
//! For each link protocol a small overlay (three nodes, `reload_net::runtime`) runs
//! in this process on 127.0.0.1 while dumpcap captures the loopback. The nodes log
//! their (D)TLS secrets to a key log file (`LinkSecurity::with_keylog`); tshark,
//! given that file (`-o tls.keylog_file:`, which the DTLS dissector reads too),
//! must decrypt the records and its RELOAD dissector must decode the messages in
//! them (DESIGN.md: "Wireshark's RELOAD dissector must decode what we send"):
//! - at least one Attach, Join, Update, Store and Fetch request and answer, and a
//!   Leave, which our traffic makes;
//! - every framed DATA message is a RELOAD message tshark decodes, or a fragment
//!   (§6.7: the core fragments messages larger than a DTLS link's MTU) that tshark
//!   reassembles with the others of its message;
//! - at least as many framed messages as the nodes counted received (so none
//!   stayed encrypted or went uncaptured);
//! - nothing flagged malformed, and no expert info at warning or error level in a
//!   frame that carries RELOAD (TCP's own "Connection reset" when the nodes leave
//!   is in frames without RELOAD).
//!
//! How tshark is told that the payload is RELOAD:
//! - DTLS: the reload-framing dissector registers a heuristic on the `dtls` table,
//!   which tries every decrypted DTLS record; `-d udp.port==P,dtls` only makes sure
//!   the datagrams of our (random) ports are read as DTLS.
//! - TLS: tshark 4.0 has no RELOAD heuristic on the `tls` table, and refuses
//!   `-d tls.port==P,reload-framing` ("isn't valid for layer type tls.port":
//!   reload-framing never registers itself in `tls.port`, so Decode As does not
//!   offer it there). A four-line Lua script, loaded with `-X lua_script:`, adds to
//!   the `tls.port` table, for our ports, the dissector tshark has on `tcp.port`
//!   6084 (reload-framing with TCP-style reassembly, so that frames split over
//!   records or packed several to a record are found too). That is what Decode As
//!   would do if it allowed it: tshark still decrypts the records and dissects
//!   them with its own C dissectors.
//!
//! Each capture only counts the ports of its own nodes, so that other tests on `lo`
//! at the same time do not count (and the two tests capture TCP and UDP apart).
//! Set `RELOAD_TSHARK_KEEP` to keep the captures and key logs (the path is printed).
//!
//! Needs tshark and dumpcap (Debian package tshark, which `.ci/run` installs) and
//! the right to capture on `lo` (CI runs as root). Never skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{KIND, TestNode, node_multiple_resource};
use reload_net::runtime::{LinkProtocol, NodeHandle};
use reload_trust::{KeyType, TestCa, Validity};
use reload_wire::{
    DataValue, Destination, FetchReq, MessageBody, MessageCode, ModelSpecifier, NodeId, StoredDataSpecifier,
    StoredDataValue,
};

const OVERLAY: &str = "tshark-test.example.org";
/// Wireshark's expert severities: PI_CHAT < PI_NOTE < PI_WARN < PI_ERROR.
const PI_WARN: u64 = 0x0060_0000;

// ---------------------------------------------------------------------------
// The overlay
// ---------------------------------------------------------------------------

async fn spawn(ca: &TestCa, n: u8, bootstrap: Vec<SocketAddr>, protocol: LinkProtocol, keylog: &Path) -> NodeHandle {
    let mut id = [0u8; 16];
    id[0] = n.wrapping_mul(67);
    id[15] = n;
    TestNode {
        ca,
        overlay: OVERLAY,
        node_id: NodeId(id),
        user: None,
        bootstrap,
        protocol,
        keylog: Some(keylog.to_path_buf()),
        reliability_timer: Duration::from_millis(500),
        seed: u64::from(n),
    }
    .start()
    .await
}

// ---------------------------------------------------------------------------
// dumpcap and tshark
// ---------------------------------------------------------------------------

fn missing(name: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        format!(
            "{name} is not installed, and this test needs it: `.ci/run` installs it \
             (apt-get install tshark). It is never skipped."
        )
    } else {
        format!("running {name}: {e}")
    }
}

/// A running dumpcap, interrupted however the test ends.
struct Dumpcap {
    child: Child,
    /// dumpcap's standard error, line by line.
    stderr: mpsc::Receiver<String>,
    running: bool,
}

impl Dumpcap {
    /// Starts capturing `filter` on `lo` into `pcap` and returns once dumpcap says
    /// it captures.
    fn start(pcap: &Path, filter: &str) -> Dumpcap {
        let mut child = Command::new("dumpcap")
            .args(["-q", "-i", "lo", "-f", filter, "-w"])
            .arg(pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}", missing("dumpcap", &e)));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads until dumpcap exits, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut dumpcap = Dumpcap {
            child,
            stderr: rx,
            running: true,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut said = Vec::new();
        loop {
            match dumpcap
                .stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.starts_with("Capturing on") => {
                    dumpcap.wait_for_canary(pcap);
                    return dumpcap;
                }
                Ok(line) => said.push(line),
                Err(_) => {
                    dumpcap.interrupt(Duration::from_secs(5));
                    panic!(
                        "dumpcap did not start capturing on lo within 10 s (capturing needs root or \
                         CAP_NET_RAW): {said:?}"
                    );
                }
            }
        }
    }

    /// dumpcap says "Capturing on" a little before it captures: sends loopback
    /// packets that match either filter (a TCP connection, a UDP datagram; they are
    /// on no node's port, so the dissection ignores them) until the capture file
    /// grows, so that the overlay's first handshake is not missed.
    fn wait_for_canary(&mut self, pcap: &Path) {
        let size = || std::fs::metadata(pcap).map_or(0, |m| m.len());
        let empty = size();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let _ = std::net::TcpStream::connect(listener.local_addr().unwrap());
            let _ = udp.send_to(b"canary", udp.local_addr().unwrap());
            std::thread::sleep(Duration::from_millis(50));
            if size() > empty {
                return;
            }
        }
        self.interrupt(Duration::from_secs(5));
        panic!("dumpcap captured none of the canary packets on lo within 10 s");
    }

    /// SIGINT, by PID, so that dumpcap writes out the file and exits; SIGKILL if it
    /// has not within `limit`. Returns whether it exited on SIGINT.
    fn interrupt(&mut self, limit: Duration) -> bool {
        if !self.running {
            return true;
        }
        self.running = false;
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
        if wait_bounded(&mut self.child, limit).is_some() {
            return true;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// Stops the capture; returns what dumpcap said on standard error (its packet
    /// counts).
    fn stop(mut self) -> Vec<String> {
        assert!(
            self.interrupt(Duration::from_secs(10)),
            "dumpcap did not stop within 10 s of SIGINT"
        );
        // dumpcap has exited: the reader thread sees the end of the pipe.
        let mut said = Vec::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            said.push(line);
        }
        said
    }
}

impl Drop for Dumpcap {
    fn drop(&mut self) {
        self.interrupt(Duration::from_secs(5));
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs tshark with `args` for at most 60 s; returns its standard output.
fn tshark(dir: &Path, args: &[String]) -> String {
    let out_path = dir.join("tshark.out");
    let err_path = dir.join("tshark.err");
    let mut child = Command::new("tshark")
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{}", missing("tshark", &e)));
    let Some(status) = wait_bounded(&mut child, Duration::from_secs(60)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("tshark {args:?} did not finish within 60 s");
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "tshark {args:?} failed ({status}):\n{stderr}");
    // Shown if the test fails: a Lua error, for one, does not make tshark fail.
    for line in stderr.lines().filter(|l| !l.starts_with("Running as user")) {
        eprintln!("tshark: {line}");
    }
    std::fs::read_to_string(&out_path).unwrap()
}

// ---------------------------------------------------------------------------
// Capturing a run
// ---------------------------------------------------------------------------

struct Capture {
    protocol: LinkProtocol,
    dir: PathBuf,
    pcap: PathBuf,
    keylog: PathBuf,
    /// Where the three nodes listen.
    ports: Vec<u16>,
    /// RELOAD messages (fragments counting one each) the nodes' links delivered to
    /// them (`Stats::received`), counted before they left: tshark must find at
    /// least as many framed messages.
    received: u64,
}

/// Three nodes join, one stores five values and another fetches them, then all
/// leave. Returns the nodes' ports and how many messages they received before
/// leaving.
async fn overlay_traffic(protocol: LinkProtocol, keylog: &Path) -> (Vec<u16>, u64) {
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(3600)).unwrap();
    let a = spawn(&ca, 1, Vec::new(), protocol, keylog).await;
    a.joined(Duration::from_secs(5)).await.unwrap();
    let b = spawn(&ca, 2, vec![a.local_addr()], protocol, keylog).await;
    b.joined(Duration::from_secs(10)).await.unwrap();
    let c = spawn(&ca, 3, vec![a.local_addr()], protocol, keylog).await;
    c.joined(Duration::from_secs(10)).await.unwrap();
    for i in 1..=5u8 {
        let r = node_multiple_resource(c.node_id(), i);
        let v = StoredDataValue::Single {
            value: DataValue::new(vec![i; 40]),
        };
        c.store(r.clone(), KIND, vec![v], 60).await.unwrap();
        let body = MessageBody::FetchReq(FetchReq {
            resource: r.clone(),
            specifiers: vec![StoredDataSpecifier {
                kind: KIND,
                generation: 0,
                model_specifier: ModelSpecifier::Single,
            }],
        });
        b.request(Destination::resource(r), body).await.unwrap();
    }
    let mut received = 0;
    for n in [&a, &b, &c] {
        received += n.status().await.unwrap().stats.received;
    }
    let ports = vec![a.local_addr().port(), b.local_addr().port(), c.local_addr().port()];
    for n in [c, b, a] {
        n.leave(Duration::from_secs(2)).await.unwrap();
    }
    (ports, received)
}

fn capture(dir: &Path, protocol: LinkProtocol) -> Capture {
    let (name, filter) = match protocol {
        LinkProtocol::Tls => ("tls", "tcp and host 127.0.0.1"),
        LinkProtocol::Dtls => ("dtls", "udp and host 127.0.0.1"),
    };
    let pcap = dir.join(format!("{name}.pcapng"));
    let keylog = dir.join(format!("{name}.keys"));
    let dumpcap = Dumpcap::start(&pcap, filter);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ports, received) = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), overlay_traffic(protocol, &keylog))
            .await
            .expect("the overlay's traffic took more than 60 s")
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    // Let the last segments reach the capture.
    std::thread::sleep(Duration::from_millis(300));
    for line in dumpcap.stop() {
        eprintln!("dumpcap: {line}");
    }
    let keys = std::fs::read_to_string(&keylog).unwrap_or_default();
    assert!(
        keys.lines().count() >= 3,
        "the key log {} has too few lines for three links:\n{keys}",
        keylog.display()
    );
    Capture {
        protocol,
        dir: dir.to_path_buf(),
        pcap,
        keylog,
        ports,
        received,
    }
}

// ---------------------------------------------------------------------------
// What tshark makes of it
// ---------------------------------------------------------------------------

/// tshark's reading of the RELOAD frames on the nodes' ports.
#[derive(Debug, Default)]
struct Decoded {
    /// Framed DATA messages (FramedMessageType 128).
    data: usize,
    /// Framed ACKs (129).
    acks: usize,
    /// RELOAD messages decoded inside the DATA frames, by message code.
    codes: BTreeMap<u16, usize>,
    /// Fragments other than the last of a fragmented message (§6.7), which carry
    /// no message of their own.
    fragments_held: usize,
    /// Messages tshark reassembled from fragments, and the fragments it used.
    reassembled: usize,
    fragments_used: usize,
    /// Malformed frames and expert info at warning level or above, one line each.
    problems: Vec<String>,
}

impl Decoded {
    fn messages(&self) -> usize {
        self.codes.values().sum()
    }

    fn count(&self, code: MessageCode) -> usize {
        self.codes.get(&code.0).copied().unwrap_or(0)
    }

    fn summary(&self) -> String {
        let codes: Vec<String> = self
            .codes
            .iter()
            .map(|(c, n)| format!("{} {n}", MessageCode(*c)))
            .collect();
        format!(
            "{} DATA frames, {} ACKs, {} RELOAD messages ({}), {} of them reassembled from {} fragments",
            self.data,
            self.acks,
            self.messages(),
            codes.join(", "),
            self.reassembled,
            self.fragments_used,
        )
    }
}

/// Decrypts and dissects the capture with tshark.
fn dissect(c: &Capture) -> Decoded {
    let ports: Vec<String> = c.ports.iter().map(u16::to_string).collect();
    let mut args: Vec<String> = vec!["-n".into(), "-r".into(), c.pcap.display().to_string()];
    // The DTLS dissector reads the TLS key log preference too.
    args.extend(["-o".into(), format!("tls.keylog_file:{}", c.keylog.display())]);
    let transport = match c.protocol {
        LinkProtocol::Tls => {
            // tshark refuses `-d tls.port==P,reload-framing`: add to `tls.port` the
            // dissector tshark uses for RELOAD over TCP port 6084 (reload-framing with
            // TCP reassembly, so that a frame split over records, or several frames
            // in one record, are found too).
            let script = c.dir.join("reload-over-tls.lua");
            std::fs::write(
                &script,
                format!(
                    "local framing = DissectorTable.get(\"tcp.port\"):get_dissector(6084)\n\
                     assert(framing and tostring(framing) == \"RELOAD FRAMING\", \
                     \"tcp.port 6084 is not RELOAD framing: \" .. tostring(framing))\n\
                     local tls = DissectorTable.get(\"tls.port\")\n\
                     for _, port in ipairs({{{}}}) do tls:add(port, framing) end\n",
                    ports.join(", ")
                ),
            )
            .unwrap();
            args.extend(["-X".into(), format!("lua_script:{}", script.display())]);
            for p in &ports {
                args.extend(["-d".into(), format!("tcp.port=={p},tls")]);
            }
            "tcp"
        }
        LinkProtocol::Dtls => {
            // reload-framing's heuristic on the `dtls` table finds RELOAD in the
            // decrypted records.
            for p in &ports {
                args.extend(["-d".into(), format!("udp.port=={p},dtls")]);
            }
            "udp"
        }
    };
    let ours = format!("{transport}.port in {{{}}}", ports.join(", "));
    args.extend([
        "-Y".into(),
        format!("{ours} && (reload-framing || reload || _ws.malformed)"),
    ]);
    args.extend(
        [
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=\u{1f}",
            "-e",
            "frame.number",
            "-e",
            "reload_framing.type",
            "-e",
            "reload.message.code",
            "-e",
            "reload.forwarding.fragment.last",
            "-e",
            "reload.fragment.count",
            "-e",
            "_ws.malformed",
            "-e",
            "_ws.expert.severity",
            "-e",
            "_ws.expert.message",
        ]
        .map(String::from),
    );
    let text = tshark(&c.dir, &args);
    let mut d = Decoded::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 8, "unexpected tshark line {line:?}");
        let values = |s: &str| -> Vec<u64> {
            s.split('\u{1f}')
                .filter(|v| !v.is_empty())
                .map(|v| parse_num(v).unwrap_or_else(|| panic!("frame {}: {v:?} is not a number", f[0])))
                .collect()
        };
        for t in values(f[1]) {
            match t {
                128 => d.data += 1,
                129 => d.acks += 1,
                other => d.problems.push(format!("frame {}: FramedMessageType {other}", f[0])),
            }
        }
        for code in values(f[2]) {
            let code = u16::try_from(code).unwrap_or_else(|_| panic!("frame {}: message code {code}", f[0]));
            *d.codes.entry(code).or_default() += 1;
        }
        // A message the core fragmented (§6.7): tshark decodes it once, in the
        // frame of its last fragment, and lists how many fragments made it.
        d.fragments_held += values(f[3]).into_iter().filter(|last| *last == 0).count();
        for count in values(f[4]) {
            d.reassembled += 1;
            d.fragments_used += usize::try_from(count).unwrap();
        }
        if !f[5].is_empty() {
            d.problems.push(format!("frame {}: malformed ({})", f[0], f[5]));
        }
        let messages: Vec<&str> = f[7].split('\u{1f}').collect();
        for (i, severity) in values(f[6]).into_iter().enumerate() {
            if severity >= PI_WARN {
                let message = messages.get(i).copied().unwrap_or("?");
                d.problems.push(format!(
                    "frame {}: expert info at severity {severity:#x} (warning or error): {message}",
                    f[0]
                ));
            }
        }
    }
    d
}

/// A number as tshark prints it: decimal or `0x` hex.
fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Runs the overlay on `protocol` under capture and checks tshark's dissection.
fn check(protocol: LinkProtocol) {
    let dir = tempfile::tempdir().unwrap();
    let c = capture(dir.path(), protocol);
    if std::env::var_os("RELOAD_TSHARK_KEEP").is_some() {
        eprintln!("capture and key log kept in {}", dir.keep().display());
    }
    let d = dissect(&c);
    let name = format!("{protocol:?}");
    eprintln!(
        "{name}: tshark decrypted and decoded {}; the nodes received {} messages",
        d.summary(),
        c.received
    );
    assert!(
        d.problems.is_empty(),
        "{name}: tshark reports problems in RELOAD frames ({}):\n{}",
        d.summary(),
        d.problems.join("\n")
    );
    // Every framed message is a RELOAD message tshark decodes, or a fragment of
    // one that it reassembles...
    assert_eq!(
        d.messages() + d.fragments_held,
        d.data,
        "{name}: framed DATA messages that tshark's RELOAD dissector did not decode: {}",
        d.summary()
    );
    assert_eq!(
        d.fragments_used,
        d.reassembled + d.fragments_held,
        "{name}: fragments that tshark did not reassemble: {}",
        d.summary()
    );
    // ...and every message (or fragment) a node received is among them: none was
    // left encrypted or missed.
    assert!(
        d.data as u64 >= c.received,
        "{name}: tshark found fewer framed messages than the nodes received ({}): {}",
        c.received,
        d.summary()
    );
    assert!(d.acks > 0, "{name}: no framing ACKs: {}", d.summary());
    for code in [
        MessageCode::ATTACH_REQ,
        MessageCode::ATTACH_ANS,
        MessageCode::JOIN_REQ,
        MessageCode::JOIN_ANS,
        MessageCode::UPDATE_REQ,
        MessageCode::UPDATE_ANS,
        MessageCode::STORE_REQ,
        MessageCode::STORE_ANS,
        MessageCode::FETCH_REQ,
        MessageCode::FETCH_ANS,
        MessageCode::LEAVE_REQ,
    ] {
        assert!(
            d.count(code) > 0,
            "{name}: tshark decoded no {code} on the links: {}",
            d.summary()
        );
    }
}

#[test]
fn tshark_decrypts_and_decodes_tls_links() {
    check(LinkProtocol::Tls);
}

#[test]
fn tshark_decrypts_and_decodes_dtls_links() {
    check(LinkProtocol::Dtls);
}
