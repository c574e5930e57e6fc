//! `p2psip bench overlay`: latency, success and memory of a real overlay of
//! `p2psip peer` processes on 127.0.0.1, and the same workload on OpenDHT in the
//! same run, side by side.
//!
//! Our side: a CA and an in-process enrollment server in a temporary directory,
//! N enrolled peers started as processes of this very binary (the first on the
//! bootstrap address), each waited for until it has joined (its control channel
//! answers `{"op":"status"}` once joined). The putter and the getter are clients
//! (RFC 6940 §4.2, what a phone's node would be) run in this process; neither
//! stores anything, so every get is answered by a peer that did not take the
//! value from the getter. The data Kind ([`DATA_KIND`]) is NODE-MULTIPLE with at
//! most 255 Resource-IDs per Node-ID, so the puts come from as many putter
//! identities as the values need (4 for 1,000 values), each its own client node
//! with one Node-ID; value v goes to putter v / 255 at iteration v % 255 + 1.
//! (One certificate with 4 Node-IDs and a client node per Node-ID does not work
//! yet: a peer names an inbound link by the certificate's first Node-ID, so the
//! second node of the same certificate is taken for the first and never attaches.)
//! The puts run one after
//! another, then the gets; each latency is request to answer (for a put the
//! signature of the value is included), a get counting as found only when it
//! returns exactly the bytes put. RSS (`VmRSS`) and PSS (`Pss` of
//! `smaps_rollup`) of every peer process are read once joined, after the puts
//! and after the gets.
//!
//! OpenDHT's side: `bench/opendht_bench.py` (the baseline's method, embedded in
//! this binary) with `/usr/bin/python3`, N `dhtnode` processes and two OpenDHT
//! nodes in the Python process, inside `unshare -n` when permitted.
//!
//! Every wait is bounded; only processes started here are signalled, by PID; the
//! temporary directory is removed at the end (unless `--keep`).

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use reload_core::ring::hash_resource_name;
use reload_enroll::ca::{CaDir, CaInit, DATA_KIND};
use reload_enroll::client::{EnrollOptions, ServerTrust, enroll};
use reload_enroll::identity::NodeIdentity;
use reload_enroll::server::{EnrollmentServer, ServerOptions};
use reload_net::runtime::{self, LinkProtocol, NodeHandle, RuntimeConfig};
use reload_net::security::LinkSecurity;
use reload_trust::KeyType;
use reload_wire::{
    DataValue, Destination, FetchReq, MessageBody, ModelSpecifier, NodeId, ResourceId, StoredDataSpecifier,
    StoredDataValue,
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The OpenDHT side of the benchmark, adapted from the project's OpenDHT baseline.
const OPENDHT_SCRIPT: &str = include_str!("../bench/opendht_bench.py");
/// The Debian interpreter that sees python3-opendht.
const SYSTEM_PYTHON: &str = "/usr/bin/python3";
/// What to install for the OpenDHT side.
const OPENDHT_INSTALL: &str = "apt-get install -y dhtnode python3-opendht";
/// Resource-IDs one Node-ID has under NODE-MULTIPLE (the data Kind's maximum i).
const PER_NODE_ID: usize = 255;
/// Node-IDs one certificate may carry (the enrollment server's default maximum).
const NODE_IDS_PER_CERT: usize = 4;
/// Lifetime of the stored values, seconds.
const LIFETIME: u32 = 3600;
/// The overlay's name.
const OVERLAY: &str = "bench.p2psip.invalid";
/// The enrollment accounts' password.
const PASSWORD: &str = "bench-password";
/// How long one peer may take to print its address, and to join.
const PEER_START_LIMIT: Duration = Duration::from_secs(20);
const PEER_JOIN_LIMIT: Duration = Duration::from_secs(75);
/// How long the peers may take to leave once asked.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(15);

/// `p2psip bench`: benchmarks.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Sequential puts then gets through a real overlay of `p2psip peer` processes on
    /// 127.0.0.1, from client nodes that store nothing: latency (median, p95, p99),
    /// success, RSS and PSS per peer; and the same workload on OpenDHT (Debian's
    /// dhtnode) in the same run, as ratios.
    Overlay(OverlayArgs),
    /// REGISTER throughput through one node's SIP front end (sipp, a new AOR per
    /// REGISTER) and call setup time (INVITE to 180) across an in-process overlay,
    /// against Kamailio (in-memory registrar, proxy) in the same run, as ratios.
    Sip(crate::bench_sip::SipArgs),
}

/// The kind of node the gets come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Getter {
    /// A client (RFC 6940 §4.2): its requests go through its admitting peer.
    Client,
    /// A peer that joins the ring before the puts.
    Peer,
}

/// Link protocols, by short name.
#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Link {
    /// TLS over TCP with framing, no ICE.
    Tls,
    /// DTLS over UDP with simple reliability, no ICE.
    Dtls,
}

/// `p2psip bench overlay`.
#[derive(Args, Clone)]
struct OverlayArgs {
    /// How many peer processes (and dhtnode processes), 1 to 500.
    #[arg(long)]
    peers: usize,
    /// How many values to put and get, 1 to 100,000.
    #[arg(long, default_value_t = 1000)]
    values: usize,
    /// Bytes per value (a SIP contact record is about 100-300), 1 to 4096.
    #[arg(long, default_value_t = 200)]
    value_size: usize,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE.json")]
    out: Option<PathBuf>,
    /// Do not run OpenDHT.
    #[arg(long)]
    no_opendht: bool,
    /// Fail (exit non-zero) when OpenDHT cannot be run.
    #[arg(long, conflicts_with = "no_opendht")]
    require_opendht: bool,
    /// Compare with this OpenDHT result (a JSON file the OpenDHT script wrote, e.g.
    /// an earlier run's) instead of running OpenDHT.
    #[arg(long, value_name = "FILE.json", conflicts_with = "no_opendht")]
    opendht_result: Option<PathBuf>,
    /// The overlay's link protocol.
    #[arg(long, value_enum, default_value = "tls")]
    link: Link,
    /// Seconds to let the ring settle once every peer has joined.
    #[arg(long, default_value_t = 5.0)]
    settle: f64,
    /// OpenDHT's warm-up, seconds (default: the baseline's, 30 up to 50 nodes, else 60).
    #[arg(long)]
    opendht_warmup: Option<f64>,
    /// How many peers start together; the next batch starts once all of them joined.
    #[arg(long, default_value_t = 10)]
    join_batch: usize,
    /// Milliseconds between two peer starts.
    #[arg(long, default_value_t = 50)]
    spawn_gap_ms: u64,
    /// RUST_LOG of the peer processes (their logs go to the temporary directory).
    #[arg(long, default_value = "warn")]
    peer_log: String,
    /// Seconds one put or get may take before it counts as timed out.
    #[arg(long, default_value_t = 15.0)]
    op_timeout: f64,
    /// What node gets the values: a client (as a phone's node would be), or a
    /// peer in the ring, as OpenDHT's getter is a full DHT node. A peer's gets of
    /// values it is responsible for itself are counted as found but left out of
    /// the latencies, as OpenDHT's method leaves out the keys its getter stores.
    #[arg(long, value_enum, default_value = "client")]
    getter: Getter,
    /// Seed of the values' bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the temporary directory (CA, data directories, peer logs) and print its path.
    #[arg(long)]
    keep: bool,
}

/// Runs `p2psip bench ...`.
pub fn run(args: BenchArgs) -> Result<()> {
    match args.command {
        BenchCommand::Overlay(a) => run_overlay(a),
        BenchCommand::Sip(a) => crate::bench_sip::run(a),
    }
}

// ---------------------------------------------------------------------------------
// Statistics and /proc.

/// Latency figures of one kind of operation, milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Latency {
    pub(crate) n: usize,
    pub(crate) min_ms: f64,
    pub(crate) median_ms: f64,
    pub(crate) mean_ms: f64,
    pub(crate) p95_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// The p-th percentile with linear interpolation (as the OpenDHT script computes it).
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = (sorted.len() - 1) as f64 * p / 100.0;
    let f = k.floor() as usize;
    let c = (f + 1).min(sorted.len() - 1);
    sorted[f] + (sorted[c] - sorted[f]) * (k - f as f64)
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Latency {
    /// The figures of `samples_ms` (all zero when there are none).
    pub(crate) fn of(samples_ms: &[f64]) -> Latency {
        if samples_ms.is_empty() {
            return Latency::default();
        }
        let mut s = samples_ms.to_vec();
        s.sort_by(f64::total_cmp);
        Latency {
            n: s.len(),
            min_ms: round3(s[0]),
            median_ms: round3(percentile(&s, 50.0)),
            mean_ms: round3(s.iter().sum::<f64>() / s.len() as f64),
            p95_ms: round3(percentile(&s, 95.0)),
            p99_ms: round3(percentile(&s, 99.0)),
            max_ms: round3(s[s.len() - 1]),
        }
    }
}

/// Memory of a set of processes, KiB.
#[derive(Clone, Debug, Default, Serialize)]
struct Memory {
    alive: usize,
    rss_kib_median: f64,
    rss_kib_max: u64,
    rss_kib_sum: u64,
    pss_kib_median: f64,
    pss_kib_max: u64,
    pss_kib_sum: u64,
}

/// The first number after `key` in a /proc file's lines.
fn proc_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// (VmRSS, Pss) of a process in KiB, if it is alive.
fn process_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some((proc_field(&status, "VmRSS:")?, proc_field(&rollup, "Pss:")?))
}

fn median_u64(values: &mut [u64]) -> f64 {
    values.sort_unstable();
    let sorted: Vec<f64> = values.iter().map(|v| *v as f64).collect();
    percentile(&sorted, 50.0)
}

fn memory_of(pids: &[u32]) -> Memory {
    let (mut rss, mut pss): (Vec<u64>, Vec<u64>) = pids.iter().filter_map(|p| process_memory(*p)).unzip();
    Memory {
        alive: rss.len(),
        rss_kib_max: rss.iter().copied().max().unwrap_or(0),
        rss_kib_sum: rss.iter().sum(),
        pss_kib_max: pss.iter().copied().max().unwrap_or(0),
        pss_kib_sum: pss.iter().sum(),
        rss_kib_median: median_u64(&mut rss),
        pss_kib_median: median_u64(&mut pss),
    }
}

/// Clock ticks per second of /proc/PID/stat's times.
pub(crate) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// User plus system CPU seconds of the processes.
pub(crate) fn cpu_seconds(pids: &[u32], ticks: f64) -> f64 {
    let total: u64 = pids
        .iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After ')': state is field 0, utime 11, stime 12.
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    round3(total as f64 / ticks)
}

pub(crate) fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect()
}

/// Deterministic value bytes (splitmix64).
fn values(count: usize, size: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|_| {
            let mut v = Vec::with_capacity(size + 8);
            while v.len() < size {
                v.extend_from_slice(&next().to_le_bytes());
            }
            v.truncate(size);
            v
        })
        .collect()
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("finding a free port")?
        .local_addr()?
        .port())
}

/// The Resource-ID of NODE-MULTIPLE iteration `i` of `node` (§7.3.4).
fn node_multiple(node: NodeId, i: u8) -> ResourceId {
    let mut name = node.0.to_vec();
    name.push(i);
    hash_resource_name(&name)
}

// ---------------------------------------------------------------------------------
// Peer processes.

/// A `p2psip peer --control` process of ours.
struct PeerProc {
    index: usize,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    pid: u32,
    log: PathBuf,
}

impl PeerProc {
    /// Starts peer `index` and waits for its "peer ID listening on ADDR" line.
    async fn spawn(exe: &Path, index: usize, data: &Path, listen: SocketAddr, log_level: &str) -> Result<PeerProc> {
        let log = data.with_extension("log");
        let stderr = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(exe)
            .arg("peer")
            .arg("--data-dir")
            .arg(data)
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--control")
            .env("RUST_LOG", log_level)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting peer {index}"))?;
        let pid = child.id().ok_or_else(|| anyhow!("peer {index} exited at once"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("peer {index}: no stdout"))?;
        let mut peer = PeerProc {
            index,
            stdin: child.stdin.take(),
            child,
            lines: BufReader::new(stdout).lines(),
            pid,
            log,
        };
        let first = peer.line(PEER_START_LIMIT).await?;
        if !first.contains("listening on") {
            bail!("peer {index}: unexpected first line {first:?}{}", peer.log_tail());
        }
        Ok(peer)
    }

    async fn line(&mut self, limit: Duration) -> Result<String> {
        match tokio::time::timeout(limit, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => bail!("peer {} closed its output{}", self.index, self.log_tail()),
            Ok(Err(e)) => bail!("peer {}: reading its output: {e}", self.index),
            Err(_) => bail!("peer {}: no answer within {limit:?}{}", self.index, self.log_tail()),
        }
    }

    /// Asks for the status (answered once the peer has joined); fails unless joined.
    async fn wait_joined(&mut self, limit: Duration) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("peer {}: stdin closed", self.index))?;
        stdin.write_all(b"{\"op\":\"status\"}\n").await?;
        stdin.flush().await?;
        let deadline = Instant::now() + limit;
        // A failed join is reported first (a failed "status" outcome), the status follows.
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.line(left).await?;
            let answer: Value =
                serde_json::from_str(&line).with_context(|| format!("peer {}: answer {line:?}", self.index))?;
            if answer["detail"]["state"] == json!("Joined") {
                return Ok(());
            }
            if answer["detail"]["state"].is_string() {
                bail!("peer {} did not join: {answer}{}", self.index, self.log_tail());
            }
        }
        bail!("peer {} did not join{}", self.index, self.log_tail())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(10)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!("\n--- {} (end) ---\n{tail}", self.log.display())
        }
    }
}

/// Starts every peer: the first on the bootstrap address, the others in batches,
/// `gap` apart, each batch waited for until all of it has joined.
async fn start_peers(exe: &Path, data: &[PathBuf], bootstrap: SocketAddr, args: &OverlayArgs) -> Result<Vec<PeerProc>> {
    let mut first = PeerProc::spawn(exe, 0, &data[0], bootstrap, &args.peer_log).await?;
    first.wait_joined(PEER_JOIN_LIMIT).await?;
    let mut peers = vec![first];
    let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let gap = Duration::from_millis(args.spawn_gap_ms);
    let indices: Vec<usize> = (1..data.len()).collect();
    let started = Instant::now();
    for batch in indices.chunks(args.join_batch.max(1)) {
        let mut set = tokio::task::JoinSet::new();
        for &i in batch {
            let (exe, dir, level) = (exe.to_owned(), data[i].clone(), args.peer_log.clone());
            set.spawn(async move {
                let mut p = PeerProc::spawn(&exe, i, &dir, any, &level).await?;
                p.wait_joined(PEER_JOIN_LIMIT).await?;
                anyhow::Ok(p)
            });
            tokio::time::sleep(gap).await;
        }
        let mut failure = None;
        while let Some(done) = set.join_next().await {
            match done {
                Ok(Ok(p)) => peers.push(p),
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(e) => failure = failure.or(Some(anyhow!("a peer start task failed: {e}"))),
            }
        }
        if let Some(e) = failure {
            stop_peers(peers).await;
            return Err(e);
        }
        eprintln!(
            "  {} of {} peers joined ({:.1} s)",
            peers.len(),
            data.len(),
            started.elapsed().as_secs_f64()
        );
    }
    peers.sort_by_key(|p| p.index);
    Ok(peers)
}

/// Closes every peer's control input (it then leaves the overlay), waits for the
/// exits within [`SHUTDOWN_LIMIT`], and kills (by its own child handle) any left.
async fn stop_peers(mut peers: Vec<PeerProc>) {
    for p in &mut peers {
        drop(p.stdin.take());
    }
    let deadline = tokio::time::Instant::now() + SHUTDOWN_LIMIT;
    for p in &mut peers {
        if tokio::time::timeout_at(deadline, p.child.wait()).await.is_err() {
            let _ = p.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), p.child.wait()).await;
        }
    }
}

// ---------------------------------------------------------------------------------
// Our side.

/// How one phase went.
#[derive(Debug, Default, Serialize)]
struct Phase {
    attempted: usize,
    ok: usize,
    failed: usize,
    timed_out: usize,
    success_rate: f64,
    latency_ok: Latency,
    hops_mean: f64,
    hops_max: u8,
    wall_s: f64,
    ops_per_s: f64,
    cpu_s_peers: f64,
    /// Found at the getter itself (a peer getter responsible for the value):
    /// counted in success, left out of the latencies.
    answered_locally: usize,
    errors: Vec<String>,
}

impl Phase {
    fn finish(&mut self, latencies: &[f64], hops: &[u8], wall: Duration, cpu: f64) {
        self.success_rate = if self.attempted == 0 {
            0.0
        } else {
            self.ok as f64 / self.attempted as f64
        };
        self.latency_ok = Latency::of(latencies);
        self.hops_mean = if hops.is_empty() {
            0.0
        } else {
            round3(hops.iter().map(|h| f64::from(*h)).sum::<f64>() / hops.len() as f64)
        };
        self.hops_max = hops.iter().copied().max().unwrap_or(0);
        self.wall_s = round3(wall.as_secs_f64());
        self.ops_per_s = if wall.is_zero() {
            0.0
        } else {
            round3(self.attempted as f64 / wall.as_secs_f64())
        };
        self.cpu_s_peers = round3(cpu);
    }

    fn error(&mut self, e: String) {
        if self.errors.len() < 10 {
            self.errors.push(e);
        }
    }
}

/// Our side's results.
#[derive(Debug, Serialize)]
struct OurResults {
    enroll_s: f64,
    peers_start_s: f64,
    peers_joined: usize,
    put: Phase,
    get: Phase,
    mem_after_join: Memory,
    mem_after_puts: Memory,
    mem_after_gets: Memory,
    bench_process_rss_kib: u64,
}

/// Makes the CA, enrolls the peers and the clients through an in-process
/// enrollment server; returns the peers' and the clients' data directories.
async fn make_overlay(
    dir: &Path,
    peers: usize,
    putter_ids: &[u32],
    link: Link,
    bootstrap: SocketAddr,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>, PathBuf)> {
    let enroll_port = free_port()?;
    let mut init = CaInit::new(OVERLAY);
    init.enrollment_urls = vec![format!("https://127.0.0.1:{enroll_port}/enroll")];
    init.bootstrap = vec![bootstrap];
    init.links = vec![match link {
        Link::Tls => reload_enroll::config::LinkProtocol::TlsTcpFhNoIce,
        Link::Dtls => reload_enroll::config::LinkProtocol::DtlsUdpSrNoIce,
    }];
    let ca_dir = dir.join("ca");
    let ca = CaDir::init(&ca_dir, &init).context("making the CA")?;
    let peer_names: Vec<String> = (0..peers).map(|i| format!("peer{i}")).collect();
    let putter_names: Vec<String> = (0..putter_ids.len()).map(|i| format!("putter{i}")).collect();
    let mut accounts: Vec<(String, u32)> = peer_names.iter().map(|n| (n.clone(), 1)).collect();
    accounts.extend(putter_names.iter().cloned().zip(putter_ids.iter().copied()));
    accounts.push(("getter".to_owned(), 1));
    for (name, _) in &accounts {
        ca.add_user(name, PASSWORD, false)
            .with_context(|| format!("adding account {name}"))?;
    }
    let root = ca.root_der().to_vec();
    drop(ca);

    let mut options = ServerOptions::new(&ca_dir);
    options.listen = SocketAddr::from(([127, 0, 0, 1], enroll_port));
    options.max_node_ids = NODE_IDS_PER_CERT as u32;
    options.per_ip_per_minute = 100_000;
    options.per_account_per_minute = 100;
    let server = EnrollmentServer::start(options)
        .await
        .context("starting the enrollment server")?;
    let url = format!("https://{}/.well-known/reload-config", server.local_addr());
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut set = tokio::task::JoinSet::new();
    for (name, ids) in accounts {
        let options = EnrollOptions {
            config_url: url.clone(),
            user: name.clone(),
            password: PASSWORD.to_owned(),
            data_dir: dir.join(&name),
            trust: ServerTrust::Roots(vec![root.clone()]),
            key_type: KeyType::EcdsaP256,
            node_ids: ids,
        };
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            tokio::time::timeout(Duration::from_secs(60), enroll(&options))
                .await
                .map_err(|_| anyhow!("enrolling {name} took over 60 s"))?
                .with_context(|| format!("enrolling {name}"))?;
            anyhow::Ok(())
        });
    }
    let mut failure = None;
    while let Some(done) = set.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(e) => failure = failure.or(Some(anyhow!("an enrollment task failed: {e}"))),
        }
    }
    server.shutdown_trigger().shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(5), server.wait()).await;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok((
        peer_names.iter().map(|n| dir.join(n)).collect(),
        putter_names.iter().map(|n| dir.join(n)).collect(),
        dir.join("getter"),
    ))
}

/// Starts a client node (in this process) as Node-ID number `index` of the
/// identity in `data`, and waits until it is attached.
async fn start_client(data: &Path, index: usize, protocol: LinkProtocol, seed: u64) -> Result<NodeHandle> {
    start_node(data, index, protocol, seed, true).await
}

/// Starts a node (in this process, storing in memory) as Node-ID number `index`
/// of the identity in `data`, a client or a peer, and waits until it has
/// attached or joined.
async fn start_node(data: &Path, index: usize, protocol: LinkProtocol, seed: u64, client: bool) -> Result<NodeHandle> {
    let identity = NodeIdentity::load(data).with_context(|| format!("loading the identity in {}", data.display()))?;
    let node_id = *identity
        .node_ids()
        .get(index)
        .ok_or_else(|| anyhow!("{} has no Node-ID number {index}", data.display()))?;
    let mut node = identity.configuration.node_config(node_id);
    node.client = client;
    let NodeIdentity {
        configuration,
        credentials,
        trust_anchors,
        ..
    } = identity;
    let security = LinkSecurity::new(credentials, node_id, trust_anchors);
    let (handle, _task) = runtime::start(RuntimeConfig {
        node,
        security,
        protocol,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        bootstrap: configuration.bootstrap_nodes.clone(),
        create_overlay: false,
        storage: None,
        seed,
    })
    .await
    .context("starting a node in the bench process")?;
    handle
        .joined(Duration::from_secs(30))
        .await
        .with_context(|| format!("node {node_id} could not attach or join"))?;
    Ok(handle)
}

/// The single value a Fetch answer carries, if any.
fn fetched_value(body: &MessageBody) -> Option<&[u8]> {
    match body {
        MessageBody::FetchAns(ans) => ans
            .kind_responses
            .iter()
            .flat_map(|k| &k.values)
            .find_map(|v| match &v.value {
                StoredDataValue::Single { value } if value.exists => Some(value.value.as_slice()),
                _ => None,
            }),
        _ => None,
    }
}

/// Our side, start to end: overlay, puts, gets, memory; stops every process it started.
async fn run_ours(args: &OverlayArgs, dir: &Path, ticks: f64) -> Result<OurResults> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let bootstrap = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    // One identity of one Node-ID per 255 values (see the module documentation for
    // why not one certificate with several Node-IDs).
    let putter_ids: Vec<u32> = vec![1; args.values.div_ceil(PER_NODE_ID)];
    let t = Instant::now();
    let (peer_dirs, putter_dirs, getter_dir) = make_overlay(dir, args.peers, &putter_ids, args.link, bootstrap).await?;
    let enroll_s = round3(t.elapsed().as_secs_f64());
    eprintln!(
        "p2psip: CA made, {} identities enrolled in {enroll_s:.1} s",
        args.peers + putter_ids.len() + 1
    );

    let t = Instant::now();
    let peers = start_peers(&exe, &peer_dirs, bootstrap, args).await?;
    let peers_start_s = round3(t.elapsed().as_secs_f64());
    let pids: Vec<u32> = peers.iter().map(|p| p.pid).collect();
    eprintln!("p2psip: {} peers joined in {peers_start_s:.1} s", peers.len());
    let result = measure(args, &pids, &putter_dirs, &putter_ids, &getter_dir, ticks).await;
    let peers_joined = peers.len();
    stop_peers(peers).await;
    let mut r = result?;
    r.enroll_s = enroll_s;
    r.peers_start_s = peers_start_s;
    r.peers_joined = peers_joined;
    Ok(r)
}

async fn measure(
    args: &OverlayArgs,
    pids: &[u32],
    putter_dirs: &[PathBuf],
    putter_ids: &[u32],
    getter_dir: &Path,
    ticks: f64,
) -> Result<OurResults> {
    let protocol = match args.link {
        Link::Tls => LinkProtocol::Tls,
        Link::Dtls => LinkProtocol::Dtls,
    };
    let mut putters = Vec::new();
    for (dir, ids) in putter_dirs.iter().zip(putter_ids) {
        for k in 0..*ids as usize {
            putters.push(start_client(dir, k, protocol, args.seed ^ (putters.len() as u64 + 100)).await?);
        }
    }
    let getter = start_node(getter_dir, 0, protocol, args.seed ^ 99, args.getter == Getter::Client).await?;
    tokio::time::sleep(Duration::from_secs_f64(args.settle.clamp(0.0, 600.0))).await;
    let mem_after_join = memory_of(pids);
    let data = values(args.values, args.value_size, args.seed);
    let resources: Vec<ResourceId> = (0..args.values)
        .map(|v| {
            let node = putters[v / PER_NODE_ID].node_id();
            node_multiple(node, (v % PER_NODE_ID + 1) as u8)
        })
        .collect();
    let op_timeout = Duration::from_secs_f64(args.op_timeout.clamp(0.1, 120.0));

    eprintln!("p2psip: {} sequential puts", args.values);
    let mut put = Phase::default();
    let (mut lat, mut hops) = (Vec::new(), Vec::new());
    let cpu0 = cpu_seconds(pids, ticks);
    let t = Instant::now();
    for (v, (resource, bytes)) in resources.iter().zip(&data).enumerate() {
        let putter = &putters[v / PER_NODE_ID];
        let value = StoredDataValue::Single {
            value: DataValue::new(bytes.clone()),
        };
        put.attempted += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            op_timeout,
            putter.store(resource.clone(), DATA_KIND, vec![value], LIFETIME),
        )
        .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(Ok(answer)) if matches!(answer.body, MessageBody::StoreAns(_)) => {
                put.ok += 1;
                lat.push(ms);
                hops.push(answer.hops);
            }
            Ok(Ok(answer)) => {
                put.failed += 1;
                put.error(format!("put {v}: unexpected answer {:?}", answer.body.code()));
            }
            Ok(Err(e)) => {
                put.failed += 1;
                put.error(format!("put {v}: {e}"));
            }
            Err(_) => put.timed_out += 1,
        }
    }
    put.finish(&lat, &hops, t.elapsed(), cpu_seconds(pids, ticks) - cpu0);
    let mem_after_puts = memory_of(pids);

    eprintln!("p2psip: {} sequential gets", args.values);
    let mut get = Phase::default();
    let (mut lat, mut hops) = (Vec::new(), Vec::new());
    let cpu0 = cpu_seconds(pids, ticks);
    let t = Instant::now();
    for (v, (resource, bytes)) in resources.iter().zip(&data).enumerate() {
        let body = MessageBody::FetchReq(FetchReq {
            resource: resource.clone(),
            specifiers: vec![StoredDataSpecifier {
                kind: DATA_KIND,
                generation: 0,
                model_specifier: ModelSpecifier::Single,
            }],
        });
        get.attempted += 1;
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            op_timeout,
            getter.request(Destination::resource(resource.clone()), body),
        )
        .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(Ok(answer)) if fetched_value(&answer.body) == Some(bytes.as_slice()) => {
                get.ok += 1;
                if answer.hops == 0 {
                    // A peer getter answered itself: found, but no overlay latency.
                    get.answered_locally += 1;
                } else {
                    lat.push(ms);
                    hops.push(answer.hops);
                }
            }
            Ok(Ok(answer)) => {
                get.failed += 1;
                get.error(format!(
                    "get {v}: the answer ({:?}, {} rejected values) lacks the value put",
                    answer.body.code(),
                    answer.rejected_values
                ));
            }
            Ok(Err(e)) => {
                get.failed += 1;
                get.error(format!("get {v}: {e}"));
            }
            Err(_) => get.timed_out += 1,
        }
    }
    get.finish(&lat, &hops, t.elapsed(), cpu_seconds(pids, ticks) - cpu0);
    let mem_after_gets = memory_of(pids);
    let bench_process_rss_kib = process_memory(std::process::id()).map_or(0, |m| m.0);

    for node in putters.iter().chain(std::iter::once(&getter)) {
        let _ = node.leave(Duration::from_secs(1)).await;
    }
    Ok(OurResults {
        enroll_s: 0.0,
        peers_start_s: 0.0,
        peers_joined: 0,
        put,
        get,
        mem_after_join,
        mem_after_puts,
        mem_after_gets,
        bench_process_rss_kib,
    })
}

// ---------------------------------------------------------------------------------
// OpenDHT's side.

/// Why OpenDHT cannot run here, if it cannot.
fn opendht_missing() -> Option<String> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("dhtnode").is_file()))
        .unwrap_or(false);
    if !on_path {
        return Some(format!("dhtnode is not installed (as root: {OPENDHT_INSTALL})"));
    }
    let module = std::process::Command::new(SYSTEM_PYTHON)
        .args(["-c", "import opendht"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match module {
        Ok(s) if s.success() => None,
        _ => Some(format!(
            "{SYSTEM_PYTHON} cannot import opendht (as root: {OPENDHT_INSTALL})"
        )),
    }
}

/// Whether `unshare -n` works here (root, or user namespaces).
fn can_unshare() -> bool {
    std::process::Command::new("unshare")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the OpenDHT script with the same workload; returns its JSON result.
async fn run_opendht(args: &OverlayArgs, dir: &Path) -> Result<Value> {
    let script = dir.join("opendht_bench.py");
    std::fs::write(&script, OPENDHT_SCRIPT).with_context(|| format!("writing {}", script.display()))?;
    let out = dir.join("opendht.json");
    let log = dir.join("opendht.log");
    let warmup = args
        .opendht_warmup
        .unwrap_or(if args.peers <= 50 { 30.0 } else { 60.0 })
        .clamp(0.0, 600.0);
    let script_args: Vec<String> = vec![
        "--nodes".into(),
        args.peers.to_string(),
        "--keys".into(),
        args.values.to_string(),
        "--value-size".into(),
        args.value_size.to_string(),
        "--warmup".into(),
        warmup.to_string(),
        "--op-timeout".into(),
        args.op_timeout.clamp(0.1, 120.0).to_string(),
        "--phase-timeout".into(),
        "300".into(),
        "--seed".into(),
        args.seed.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    let mut command = if can_unshare() {
        let mut c = Command::new("unshare");
        c.args(["-n", "--", "/bin/sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
            .arg(SYSTEM_PYTHON)
            .arg(&script);
        c
    } else {
        eprintln!("opendht: unshare -n not permitted; running in this network namespace (traffic to 127.0.0.1)");
        let mut c = Command::new(SYSTEM_PYTHON);
        c.arg(&script);
        c
    };
    let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = command
        .args(&script_args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()
        .context("starting the OpenDHT script")?;
    let pid = child.id().ok_or_else(|| anyhow!("the OpenDHT script exited at once"))?;
    let limit = Duration::from_secs_f64(warmup + 900.0);
    eprintln!(
        "opendht: {} dhtnode processes, {} keys (warm-up {warmup} s; log {})",
        args.peers,
        args.values,
        log.display()
    );
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(s) => s?,
        Err(_) => {
            // SIGTERM (the script then stops its own dhtnodes), then SIGKILL; ours only, by PID.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            match tokio::time::timeout(Duration::from_secs(20), child.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                }
            }
            bail!("the OpenDHT run took over {limit:?} and was stopped");
        }
    };
    let text = std::fs::read_to_string(&out).map_err(|e| {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = tail.lines().collect();
        anyhow!(
            "the OpenDHT script ({status}) wrote no result ({e}):\n{}",
            lines[lines.len().saturating_sub(15)..].join("\n")
        )
    })?;
    serde_json::from_str(&text).context("reading the OpenDHT result")
}

// ---------------------------------------------------------------------------------
// Report.

/// The figures compared, ours and OpenDHT's.
#[derive(Debug, Default, Serialize)]
struct Figures {
    put_median_ms: Option<f64>,
    put_p95_ms: Option<f64>,
    put_p99_ms: Option<f64>,
    put_success: Option<f64>,
    get_median_ms: Option<f64>,
    get_p95_ms: Option<f64>,
    get_p99_ms: Option<f64>,
    get_success: Option<f64>,
    rss_kib_per_peer: Option<f64>,
    pss_kib_per_peer: Option<f64>,
}

impl Figures {
    fn ours(r: &OurResults) -> Figures {
        Figures {
            put_median_ms: Some(r.put.latency_ok.median_ms),
            put_p95_ms: Some(r.put.latency_ok.p95_ms),
            put_p99_ms: Some(r.put.latency_ok.p99_ms),
            put_success: Some(r.put.success_rate),
            get_median_ms: Some(r.get.latency_ok.median_ms),
            get_p95_ms: Some(r.get.latency_ok.p95_ms),
            get_p99_ms: Some(r.get.latency_ok.p99_ms),
            get_success: Some(r.get.success_rate),
            rss_kib_per_peer: Some(r.mem_after_puts.rss_kib_median),
            pss_kib_per_peer: Some(r.mem_after_puts.pss_kib_median),
        }
    }

    /// OpenDHT's: put = put() to done(ok); get = get() to the first callback with
    /// the exact bytes, over the keys the getter node does not store itself.
    fn opendht(v: &Value) -> Figures {
        let f = |x: &Value| x.as_f64();
        let rate = |ok: &Value, all: &Value| match (ok.as_f64(), all.as_f64()) {
            (Some(o), Some(a)) if a > 0.0 => Some(o / a),
            _ => None,
        };
        let get_lat = &v["get"]["first_value_latency_remote_keys"];
        Figures {
            put_median_ms: f(&v["put"]["latency_ok"]["median_ms"]),
            put_p95_ms: f(&v["put"]["latency_ok"]["p95_ms"]),
            put_p99_ms: f(&v["put"]["latency_ok"]["p99_ms"]),
            put_success: rate(&v["put"]["ok"], &v["put"]["attempted"]),
            get_median_ms: f(&get_lat["median_ms"]),
            get_p95_ms: f(&get_lat["p95_ms"]),
            get_p99_ms: f(&get_lat["p99_ms"]),
            get_success: rate(&v["get"]["found_correct_value"], &v["get"]["attempted"]),
            rss_kib_per_peer: f(&v["mem_after_ops"]["rss_kib_median"]),
            pss_kib_per_peer: f(&v["mem_after_ops"]["pss_kib_median"]),
        }
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(round3(a / b)),
        _ => None,
    }
}

fn ratios(ours: &Figures, theirs: &Figures) -> Value {
    json!({
        "put_median": ratio(ours.put_median_ms, theirs.put_median_ms),
        "put_p95": ratio(ours.put_p95_ms, theirs.put_p95_ms),
        "put_p99": ratio(ours.put_p99_ms, theirs.put_p99_ms),
        "get_median": ratio(ours.get_median_ms, theirs.get_median_ms),
        "get_p95": ratio(ours.get_p95_ms, theirs.get_p95_ms),
        "get_p99": ratio(ours.get_p99_ms, theirs.get_p99_ms),
        "rss_per_peer": ratio(ours.rss_kib_per_peer, theirs.rss_kib_per_peer),
        "pss_per_peer": ratio(ours.pss_kib_per_peer, theirs.pss_kib_per_peer),
    })
}

/// The goals of the issue, checked (None where OpenDHT's figure is missing).
fn goals(ours: &Figures, theirs: Option<&Figures>) -> Value {
    let le = |r: Option<f64>, max: f64| r.map(|r| r <= max);
    let all_ok = ours.put_success == Some(1.0) && ours.get_success == Some(1.0);
    json!({
        "get_median_at_most_half_of_opendht": theirs.and_then(|t| le(ratio(ours.get_median_ms, t.get_median_ms), 0.5)),
        "put_median_at_most_opendht": theirs.and_then(|t| le(ratio(ours.put_median_ms, t.put_median_ms), 1.0)),
        "success_100_percent": all_ok,
        "pss_per_peer_at_most_opendht": theirs.and_then(|t| le(ratio(ours.pss_kib_per_peer, t.pss_kib_per_peer), 1.0)),
    })
}

fn cell(x: Option<f64>, unit: &str) -> String {
    match (x, unit) {
        (None, _) => "-".to_owned(),
        (Some(x), "%") => format!("{:.1} %", x * 100.0),
        (Some(x), "MiB") => format!("{:.2} MiB", x / 1024.0),
        (Some(x), _) => format!("{x:.3} ms"),
    }
}

fn table(peers: usize, ours: &Figures, theirs: Option<&Figures>, goals: &Value) -> String {
    let none = Figures::default();
    let t = theirs.unwrap_or(&none);
    let rows: [(&str, Option<f64>, Option<f64>, &str); 10] = [
        ("put median", ours.put_median_ms, t.put_median_ms, "ms"),
        ("put p95", ours.put_p95_ms, t.put_p95_ms, "ms"),
        ("put p99", ours.put_p99_ms, t.put_p99_ms, "ms"),
        ("put success", ours.put_success, t.put_success, "%"),
        ("get median", ours.get_median_ms, t.get_median_ms, "ms"),
        ("get p95", ours.get_p95_ms, t.get_p95_ms, "ms"),
        ("get p99", ours.get_p99_ms, t.get_p99_ms, "ms"),
        ("get success", ours.get_success, t.get_success, "%"),
        (
            "RSS per peer (median)",
            ours.rss_kib_per_peer,
            t.rss_kib_per_peer,
            "MiB",
        ),
        (
            "PSS per peer (median)",
            ours.pss_kib_per_peer,
            t.pss_kib_per_peer,
            "MiB",
        ),
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>16} {:>16} {:>14}",
        "",
        format!("p2psip N={peers}"),
        format!("OpenDHT N={peers}"),
        "p2psip/OpenDHT"
    );
    for (name, a, b, unit) in rows {
        let r = if unit == "%" {
            "-".to_owned()
        } else {
            ratio(a, b).map_or("-".to_owned(), |r| format!("{r:.2}x"))
        };
        let _ = writeln!(s, "{name:<24} {:>16} {:>16} {r:>14}", cell(a, unit), cell(b, unit));
    }
    write_goals(
        &mut s,
        goals,
        &[
            ("get median <= 0.5x OpenDHT:", "get_median_at_most_half_of_opendht"),
            ("put median <= 1.0x OpenDHT:", "put_median_at_most_opendht"),
            ("100 % success:            ", "success_100_percent"),
            ("PSS per peer <= OpenDHT:   ", "pss_per_peer_at_most_opendht"),
        ],
    );
    s
}

fn check_args(args: &OverlayArgs) -> Result<()> {
    if !(1..=500).contains(&args.peers) {
        bail!("--peers must be 1 to 500");
    }
    if !(1..=100_000).contains(&args.values) {
        bail!("--values must be 1 to 100000");
    }
    if !(1..=4096).contains(&args.value_size) {
        bail!("--value-size must be 1 to 4096 (the data Kind's largest value)");
    }
    if !args.settle.is_finite() || !args.op_timeout.is_finite() {
        bail!("--settle and --op-timeout must be numbers of seconds");
    }
    Ok(())
}

fn run_overlay(args: OverlayArgs) -> Result<()> {
    check_args(&args)?;
    // The in-process client nodes log to standard error (RUST_LOG, default warn).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let tmp = tempfile::Builder::new()
        .prefix("p2psip-bench-")
        .tempdir()
        .context("making a temporary directory")?;
    let dir = tmp.path().to_owned();
    let ticks = clock_ticks();
    let loadavg_start = loadavg();
    let started = Instant::now();
    // One thread, as `p2psip client` runs by default: the putter and the getter
    // are the client nodes a phone's node would be.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    // OpenDHT first checked, so that a missing install is said before the long run.
    let opendht_plan: Result<Option<()>, String> = if args.no_opendht || args.opendht_result.is_some() {
        Ok(None)
    } else {
        match opendht_missing() {
            None => Ok(Some(())),
            Some(why) => Err(why),
        }
    };
    if let Err(why) = &opendht_plan {
        if args.require_opendht {
            bail!("OpenDHT cannot run: {why}");
        }
        eprintln!("note: OpenDHT side skipped: {why}");
    }

    let ours = runtime.block_on(run_ours(&args, &dir, ticks));
    let ours = match ours {
        Ok(r) => r,
        Err(e) => {
            if args.keep {
                eprintln!("keeping {}", tmp.keep().display());
            }
            return Err(e);
        }
    };

    let mut opendht_error = opendht_plan.as_ref().err().cloned();
    let opendht: Option<Value> = if let Some(path) = &args.opendht_result {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Some(serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?)
    } else if matches!(opendht_plan, Ok(Some(()))) {
        match runtime.block_on(run_opendht(&args, &dir)) {
            Ok(v) => Some(v),
            Err(e) => {
                if args.require_opendht {
                    return Err(e);
                }
                eprintln!("note: the OpenDHT side failed: {e:#}");
                opendht_error = Some(format!("{e:#}"));
                None
            }
        }
    } else {
        None
    };
    drop(runtime);

    let our_figures = Figures::ours(&ours);
    let their_figures = opendht.as_ref().map(Figures::opendht);
    let goals = goals(&our_figures, their_figures.as_ref());
    let report = json!({
        "config": {
            "peers": args.peers,
            "values": args.values,
            "value_size": args.value_size,
            "link": args.link,
            "settle_s": args.settle,
            "join_batch": args.join_batch,
            "spawn_gap_ms": args.spawn_gap_ms,
            "op_timeout_s": args.op_timeout,
            "seed": args.seed,
            "putter_and_getter": "in the bench process; ceil(values/255) putters, clients (RFC 6940 §4.2) \
                                  storing nothing, of one Node-ID each; one getter, a client or a peer (getter)",
            "getter": args.getter,
        },
        "host": {
            "nproc": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg(),
            "total_s": round3(started.elapsed().as_secs_f64()),
            "release_build": !cfg!(debug_assertions),
        },
        "p2psip": ours,
        "opendht": opendht,
        "opendht_skipped": opendht_error,
        "figures": { "p2psip": our_figures, "opendht": their_figures },
        "ratios_p2psip_over_opendht": their_figures.as_ref().map(|t| ratios(&our_figures, t)),
        "goals": goals,
    });
    print!("{}", table(args.peers, &our_figures, their_figures.as_ref(), &goals));
    if cfg!(debug_assertions) {
        println!("(a debug build: use a release build for figures)");
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        println!("results: {}", out.display());
    }
    if args.keep {
        println!("kept {}", tmp.keep().display());
    }
    Ok(())
}

/// Writes a benchmark's goals, each as met, NOT met, or n/a when the figure
/// to compare with is missing.
pub(crate) fn write_goals(s: &mut String, goals: &Value, rows: &[(&str, &str)]) {
    let _ = writeln!(s, "goals:");
    for (label, key) in rows {
        let verdict = match goals[*key].as_bool() {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "n/a",
        };
        let _ = writeln!(s, "  {label} {verdict}");
    }
}
