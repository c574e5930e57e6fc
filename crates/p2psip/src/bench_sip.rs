//! `p2psip bench sip`: our SIP front end against Kamailio, in the same run.
//!
//! Our side is an overlay built in this process: a test CA
//! ([`reload_trust::TestCa`]), `--peers` nodes on TLS links over 127.0.0.1, each
//! with a certificate naming user `peerI@OVERLAY`. Each node (with its front end)
//! and each built-in phone runs on a thread of its own with a one-thread runtime,
//! as separate `p2psip peer` processes with the default `--threads 1` and separate
//! phones would.
//!
//! 1. REGISTER throughput through ONE node's front end (the last node's): it
//!    holds certificates for `--registers` extra users `u0`..`uN-1` (all issued
//!    for its Node-ID, all with one digest password), so every REGISTER is a new
//!    AOR and costs a RELOAD Store signed with that user's certificate. sipp
//!    drives it closed-loop (`-l --limit`): REGISTER, 401, REGISTER with
//!    digest credentials, 200 (`bench/register-auth.xml`, the user from an
//!    injection file).
//! 2. Call setup, INVITE to 180 as the calling built-in phone measures it:
//!    the other nodes run front ends, each with its user's phone registered;
//!    a few are callers, the rest callees. Every (caller node, callee node) pair
//!    is called once first ("fresh": AppAttach and the TLS handshake between the
//!    two nodes happen inside the call), then the further calls go over the
//!    pairs again ("reused": the SIP connection between the nodes is open). Each
//!    call is answered at once, ACKed and ended with BYE.
//!
//! Kamailio's side (Debian kamailio 5.6, skipped with `--no-kamailio` or when
//! not installed): `bench/kamailio-registrar.cfg` (in-memory usrloc, the
//! project's baseline registrar) takes the same closed-loop sipp load twice:
//! without a challenge (the baseline, `bench/register-noauth.xml`) and with the
//! same digest round trip as ours; then `bench/kamailio-proxy.cfg` (registrar
//! and stateful record-routing proxy) with two of our built-in phones registered
//! and the same calls. Kamailio runs in the foreground (`-DD -E`) with its own
//! runtime and work directory in a temporary directory, on 127.0.0.1 and a free
//! port, and is stopped by PID. The two sides run one after the other, never at
//! the same time; sipp and the servers share the machine's cores.
//!
//! CPU: ours is this whole process (all peers, the front ends and the phones),
//! Kamailio's is the sum over its processes, sipp's is read from this process's
//! reaped-children times; all from /proc. Every wait is bounded; only processes
//! started here are signalled, by PID.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use reload_core::NodeConfig;
use reload_net::runtime::{self, LinkProtocol, NodeHandle, RuntimeConfig};
use reload_net::security::LinkSecurity;
use reload_net::tls::TlsLinks;
use reload_sip::frontend::{self, Frontend, FrontendConfig};
use reload_sip::phone::{Phone, PhoneConfig, PhoneError};
use reload_sip::usage::{SipUsage, sip_registration_kind};
use reload_trust::{KeyType, TestCa, Validity};
use reload_wire::{NodeId, OverlayHash};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::bench::Latency as Lat;
use crate::bench::{clock_ticks, cpu_seconds, loadavg, round3};

/// The overlay's name: the domain of every AOR and the digest realm.
const OVERLAY: &str = "sip.bench.p2psip.invalid";
/// Every phone's (and sipp user's) digest password, ours and Kamailio's.
const PASSWORD: &str = "bench-sip-password";
/// Kamailio's registrar challenges REGISTERs for this domain only.
const KAMAILIO_AUTH_DOMAIN: &str = "auth.kamailio.bench.invalid";
/// The domain of the unchallenged Kamailio registrations and of its phones.
const KAMAILIO_DOMAIN: &str = "kamailio.bench.invalid";
/// Certificate validity, seconds.
const VALIDITY_S: i64 = 6 * 3600;
/// The Kamailio configurations and the sipp scenarios (embedded).
const KAMAILIO_REGISTRAR_CFG: &str = include_str!("../bench/kamailio-registrar.cfg");
const KAMAILIO_PROXY_CFG: &str = include_str!("../bench/kamailio-proxy.cfg");
const REGISTER_AUTH_XML: &str = include_str!("../bench/register-auth.xml");
const REGISTER_NOAUTH_XML: &str = include_str!("../bench/register-noauth.xml");
/// What to install for the Kamailio side, and for sipp.
const KAMAILIO_INSTALL: &str = "apt-get install -y kamailio";
const SIPP_INSTALL: &str = "apt-get install -y sip-tester";
/// How long one node may take to join.
const JOIN_LIMIT: Duration = Duration::from_secs(30);
/// How long one call (INVITE to the BYE's answer) may take.
const CALL_LIMIT: Duration = Duration::from_secs(15);
/// How long Kamailio may take to answer its first probe, and to stop.
const KAMAILIO_START_LIMIT: Duration = Duration::from_secs(15);
const KAMAILIO_STOP_LIMIT: Duration = Duration::from_secs(10);
/// Kamailio's shared memory (each binding costs about 1.2 KB), MB.
const KAMAILIO_SHM_MB: usize = 1024;

/// `p2psip bench sip`.
#[derive(Args, Clone, Debug)]
pub struct SipArgs {
    /// How many REGISTERs (each a new AOR, each answered 401 first) to send
    /// through our node's front end, 1 to 1,000,000.
    #[arg(long, default_value_t = 10_000)]
    registers: usize,
    /// How many peers in the overlay, 3 to 200.
    #[arg(long, default_value_t = 20)]
    peers: usize,
    /// How many calls (INVITE to 180, answered, BYE) to make, 1 to 100,000; the same
    /// number through Kamailio.
    #[arg(long, default_value_t = 200)]
    calls: usize,
    /// Only our side (also said and done when Kamailio is not installed).
    #[arg(long)]
    no_kamailio: bool,
    /// Write the results as JSON here.
    #[arg(long, value_name = "FILE.json")]
    out: Option<PathBuf>,
    /// sipp's limit of REGISTERs in flight (closed loop), 1 to 10,000.
    #[arg(long, default_value_t = 64)]
    limit: usize,
    /// How many REGISTERs to send to Kamailio in each of its two runs (it is much
    /// faster, so more, for a run of a few seconds); default: 5 x --registers,
    /// at least 20,000, at most 200,000.
    #[arg(long)]
    kamailio_registers: Option<usize>,
    /// Kamailio's UDP worker processes (the baseline: 2).
    #[arg(long, default_value_t = 2)]
    kamailio_children: usize,
    /// Seconds to let the ring settle once every node has joined.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    /// Keep the temporary directory (sipp logs, Kamailio's configuration and log).
    #[arg(long)]
    keep: bool,
}

/// Runs `p2psip bench sip`.
pub fn run(args: SipArgs) -> Result<()> {
    check_args(&args)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let sipp = find_program("sipp").ok_or_else(|| anyhow!("sipp is not installed (as root: {SIPP_INSTALL})"))?;
    let kamailio_plan: Result<Kamailio, String> = if args.no_kamailio {
        Err("--no-kamailio".to_owned())
    } else {
        Kamailio::find()
    };
    if let Err(why) = &kamailio_plan
        && !args.no_kamailio
    {
        eprintln!("note: the Kamailio side is skipped: {why}");
    }
    let tmp = tempfile::Builder::new()
        .prefix("p2psip-bench-sip-")
        .tempdir()
        .context("making a temporary directory")?;
    let dir = tmp.path().to_owned();
    let ticks = clock_ticks();
    let loadavg_start = loadavg();
    let started = Instant::now();

    let ours = {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let r = runtime.block_on(run_ours(&args, &dir, &sipp, ticks));
        // The overlay's tasks end with the runtime, before Kamailio starts.
        runtime.shutdown_timeout(Duration::from_secs(3));
        r
    };
    let ours = match ours {
        Ok(r) => r,
        Err(e) => {
            keep_dir(tmp, args.keep);
            return Err(e);
        }
    };

    let mut kamailio_error = kamailio_plan.as_ref().err().cloned();
    let kamailio = match &kamailio_plan {
        Ok(k) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let r = runtime.block_on(run_kamailio(&args, k, &dir, &sipp, ticks));
            runtime.shutdown_timeout(Duration::from_secs(3));
            match r {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("note: the Kamailio side failed: {e:#}");
                    kamailio_error = Some(format!("{e:#}"));
                    None
                }
            }
        }
        Err(_) => None,
    };

    let ratios = kamailio.as_ref().map(|k| ratios(&ours, k));
    let goals = goals(&ours, kamailio.as_ref());
    let report = json!({
        "config": {
            "peers": args.peers,
            "registers": args.registers,
            "calls": args.calls,
            "sipp_limit_in_flight": args.limit,
            "kamailio_registers": kamailio_registers(&args),
            "kamailio_children": args.kamailio_children,
            "link": "tls",
            "settle_s": args.settle,
        },
        "host": {
            "nproc": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg(),
            "total_s": round3(started.elapsed().as_secs_f64()),
            "release_build": !cfg!(debug_assertions),
            "sipp": program_version(&sipp, "-v"),
        },
        "p2psip": ours,
        "kamailio": kamailio,
        "kamailio_skipped": kamailio_error,
        "ratios_p2psip_over_kamailio": ratios,
        "goals": goals,
    });
    print!("{}", table(&args, &ours, kamailio.as_ref(), &goals));
    if cfg!(debug_assertions) {
        println!("(a debug build: use a release build for figures)");
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        println!("results: {}", out.display());
    }
    keep_dir(tmp, args.keep);
    Ok(())
}

fn keep_dir(tmp: tempfile::TempDir, keep: bool) {
    if keep {
        eprintln!("kept {}", tmp.keep().display());
    }
}

fn check_args(args: &SipArgs) -> Result<()> {
    if !(1..=1_000_000).contains(&args.registers) {
        bail!("--registers must be 1 to 1000000");
    }
    if !(3..=200).contains(&args.peers) {
        bail!("--peers must be 3 to 200 (a registrar node, a caller and a callee at least)");
    }
    if !(1..=100_000).contains(&args.calls) {
        bail!("--calls must be 1 to 100000");
    }
    if !(1..=10_000).contains(&args.limit) {
        bail!("--limit must be 1 to 10000");
    }
    if !(1..=16).contains(&args.kamailio_children) {
        bail!("--kamailio-children must be 1 to 16");
    }
    if args.kamailio_registers.is_some_and(|k| !(1..=1_000_000).contains(&k)) {
        bail!("--kamailio-registers must be 1 to 1000000");
    }
    if !args.settle.is_finite() || !(0.0..=600.0).contains(&args.settle) {
        bail!("--settle must be 0 to 600 seconds");
    }
    Ok(())
}

fn kamailio_registers(args: &SipArgs) -> usize {
    args.kamailio_registers
        .unwrap_or_else(|| (args.registers * 5).clamp(20_000, 200_000))
}

// ---------------------------------------------------------------------------------
// Small helpers: programs, /proc, latency summaries.

/// `name` on PATH, or in the sbin directories (Kamailio lives in /usr/sbin).
fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The first line a program prints for `flag` (its version).
fn program_version(program: &Path, flag: &str) -> Option<String> {
    let out = std::process::Command::new(program)
        .arg(flag)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
}

/// CPU seconds of this process's reaped children (cutime + cstime).
fn children_cpu_seconds(ticks: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 0, utime 11, stime 12, cutime 13, cstime 14.
    let get = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    round3((get(13) + get(14)) as f64 / ticks)
}

/// The PIDs whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).ok().and_then(|s| {
                let (_, rest) = s.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            }) == Some(pid)
        })
        .collect()
}

/// A UDP port on 127.0.0.1 that is free now.
fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")
        .context("finding a free UDP port")?
        .local_addr()?
        .port())
}

/// Latency figures in milliseconds, none without samples.
fn latency(samples_ms: &[f64]) -> Option<Lat> {
    (!samples_ms.is_empty()).then(|| Lat::of(samples_ms))
}

// ---------------------------------------------------------------------------------
// sipp.

/// A REGISTER load run, as sipp counted it.
#[derive(Clone, Debug, Default, Serialize)]
struct RegisterRun {
    /// Registrations asked for (sipp "calls").
    registrations: usize,
    /// REGISTER requests per registration (2 with the digest round trip).
    requests_per_registration: usize,
    limit_in_flight: usize,
    ok: u64,
    failed: u64,
    retransmissions: u64,
    success_rate: f64,
    sipp_exit: Option<i32>,
    wall_s: f64,
    /// Successful registrations per wall-clock second (sipp start to exit).
    registrations_per_s: f64,
    /// REGISTER requests per second: registrations/s times requests per
    /// registration (without retransmissions).
    register_requests_per_s: f64,
    /// sipp's mean response time, first REGISTER to the 200, ms.
    sipp_mean_response_ms: Option<f64>,
    /// The server's CPU (ours: this whole process), seconds, and per registration.
    server_cpu_s: f64,
    server_cpu_us_per_registration: f64,
    sipp_cpu_s: f64,
    /// The first lines of sipp's error log, if anything failed.
    sipp_errors: Vec<String>,
}

/// Whose side sipp runs against (for file names).
struct SippLoad<'a> {
    tag: &'a str,
    scenario: &'a Path,
    users: &'a Path,
    domain: &'a str,
    remote: SocketAddr,
    registrations: usize,
    requests_per_registration: usize,
    limit: usize,
}

/// The injection file: SEQUENTIAL, then `user;[authentication ...]` per line.
fn write_users(path: &Path, prefix: &str, count: usize) -> Result<()> {
    let mut text = String::with_capacity(count * 64 + 16);
    text.push_str("SEQUENTIAL\n");
    for i in 0..count {
        let _ = writeln!(
            text,
            "{prefix}{i};[authentication username={prefix}{i} password={PASSWORD}]"
        );
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The header and the last row of sipp's statistics file, as a map.
fn sipp_stats(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() < 2 {
        return HashMap::new();
    }
    let header = lines[0].split(';');
    let last = lines[lines.len() - 1].split(';');
    header.zip(last).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// sipp's `HH:MM:SS:micro` as milliseconds.
fn sipp_duration_ms(s: &str) -> Option<f64> {
    let parts: Vec<f64> = s.split(':').map(|p| p.parse::<f64>().ok()).collect::<Option<_>>()?;
    match parts.as_slice() {
        [h, m, sec, us] => Some(((h * 60.0 + m) * 60.0 + sec) * 1000.0 + us / 1000.0),
        _ => None,
    }
}

/// Runs sipp closed-loop against `load.remote`, bounded in time; `server_pids` are
/// the processes whose CPU counts as the server's.
async fn run_sipp(
    sipp: &Path,
    dir: &Path,
    load: &SippLoad<'_>,
    server_pids: &[u32],
    ticks: f64,
) -> Result<RegisterRun> {
    let stat = dir.join(format!("sipp-{}-stat.csv", load.tag));
    let errors = dir.join(format!("sipp-{}-errors.log", load.tag));
    let log = dir.join(format!("sipp-{}.log", load.tag));
    let port = free_udp_port()?;
    // The worst case we wait for: 20 registrations per second, plus a minute.
    let limit_s = 60 + load.registrations / 20;
    let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(sipp);
    command
        .arg(load.remote.to_string())
        .arg("-sf")
        .arg(load.scenario)
        .arg("-inf")
        .arg(load.users)
        .args(["-key", "domain", load.domain])
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", &load.registrations.to_string()])
        .args(["-r", "100000", "-l", &load.limit.to_string()])
        .args(["-nostdin", "-trace_stat", "-fd", "1", "-trace_err"])
        .arg("-stf")
        .arg(&stat)
        .arg("-error_file")
        .arg(&errors)
        .args(["-timeout", &format!("{limit_s}s")])
        .args(["-max_recv_loops", "10000", "-max_sched_loops", "10000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true);
    let cpu0 = cpu_seconds(server_pids, ticks);
    let child_cpu0 = children_cpu_seconds(ticks);
    let t = Instant::now();
    let mut child = command.spawn().context("starting sipp")?;
    let status = match tokio::time::timeout(Duration::from_secs(limit_s as u64 + 30), child.wait()).await {
        Ok(s) => s.context("waiting for sipp")?,
        Err(_) => {
            // Our own child, by its handle.
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            bail!("sipp ({}) did not finish in {limit_s} s", load.tag);
        }
    };
    let wall = t.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(server_pids, ticks) - cpu0;
    let sipp_cpu = children_cpu_seconds(ticks) - child_cpu0;
    let st = sipp_stats(&stat);
    let num = |k: &str| st.get(k).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    let ok = num("SuccessfulCall(C)");
    if st.is_empty() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        bail!("sipp ({}) wrote no statistics ({status}): {}", load.tag, text.trim());
    }
    let sipp_errors = if ok < load.registrations as u64 {
        std::fs::read_to_string(&errors)
            .unwrap_or_default()
            .split("\n\n")
            .map(|l| l.chars().take(300).collect::<String>())
            .filter(|l| !l.trim().is_empty())
            .take(5)
            .collect()
    } else {
        Vec::new()
    };
    let rate = if wall > 0.0 { ok as f64 / wall } else { 0.0 };
    Ok(RegisterRun {
        registrations: load.registrations,
        requests_per_registration: load.requests_per_registration,
        limit_in_flight: load.limit,
        ok,
        failed: num("FailedCall(C)"),
        retransmissions: num("Retransmissions(C)"),
        success_rate: round3(ok as f64 / load.registrations as f64),
        sipp_exit: status.code(),
        wall_s: round3(wall),
        registrations_per_s: round3(rate),
        register_requests_per_s: round3(rate * load.requests_per_registration as f64),
        sipp_mean_response_ms: st.get("ResponseTime1(C)").and_then(|v| sipp_duration_ms(v)).map(round3),
        server_cpu_s: round3(server_cpu),
        server_cpu_us_per_registration: if ok > 0 {
            round3(server_cpu * 1e6 / ok as f64)
        } else {
            0.0
        },
        sipp_cpu_s: round3(sipp_cpu),
        sipp_errors,
    })
}

// ---------------------------------------------------------------------------------
// Calls.

/// How the calls went.
#[derive(Clone, Debug, Default, Serialize)]
struct CallRun {
    attempted: usize,
    ok: usize,
    failed: usize,
    success_rate: f64,
    /// INVITE to 180, all calls.
    ringing: Option<Lat>,
    /// INVITE to 180, first call between two nodes (AppAttach, TLS inside).
    fresh: Option<Lat>,
    /// INVITE to 180, later calls between the same two nodes.
    reused: Option<Lat>,
    /// INVITE to 200, all calls.
    answered: Option<Lat>,
    /// Calls whose INVITE was challenged (407) first: their timing includes it.
    challenged: usize,
    wall_s: f64,
    server_cpu_s: f64,
    errors: Vec<String>,
}

/// One call: INVITE, 180, 200 (ACKed), BYE. Returns (INVITE→180, INVITE→200, challenged).
async fn one_call(caller: &Phone, target: &str) -> Result<(Duration, Duration, bool)> {
    let attempt = async {
        let mut outgoing = caller.invite(target).await?;
        outgoing.ringing().await?;
        let mut call = outgoing.answered().await?;
        let t = call.timings;
        caller.bye(&mut call).await?;
        Ok::<_, PhoneError>(t)
    };
    let t = tokio::time::timeout(CALL_LIMIT, attempt)
        .await
        .map_err(|_| anyhow!("the call took over {CALL_LIMIT:?}"))??;
    let ringing = t.ringing.ok_or_else(|| anyhow!("no 180 before the 200"))?;
    let answered = t.answered.ok_or_else(|| anyhow!("no 200"))?;
    Ok((ringing, answered, t.challenged))
}

/// Makes `calls` calls; call i goes from `callers[p / callees]` to
/// `callees[p % callees]`, p = i mod pairs, so every pair is called once before
/// any is called again. `fresh(i)` says whether call i is a pair's first.
async fn make_calls(callers: &[Phone], callees: &[String], calls: usize, pids: &[u32], ticks: f64) -> CallRun {
    let mut run = CallRun::default();
    let (mut ringing, mut fresh, mut reused, mut answered) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    let pairs = callers.len() * callees.len();
    let cpu0 = cpu_seconds(pids, ticks);
    let t = Instant::now();
    for i in 0..calls {
        let p = i % pairs;
        let (a, b) = (p / callees.len(), p % callees.len());
        let first = seen.insert((a, b));
        run.attempted += 1;
        match one_call(&callers[a], &callees[b]).await {
            Ok((r, ans, challenged)) => {
                run.ok += 1;
                let ms = r.as_secs_f64() * 1000.0;
                ringing.push(ms);
                answered.push(ans.as_secs_f64() * 1000.0);
                if first {
                    fresh.push(ms);
                } else {
                    reused.push(ms);
                }
                run.challenged += usize::from(challenged);
            }
            Err(e) => {
                run.failed += 1;
                if run.errors.len() < 10 {
                    run.errors.push(format!("call {i} to {}: {e:#}", callees[b]));
                }
            }
        }
    }
    run.wall_s = round3(t.elapsed().as_secs_f64());
    run.server_cpu_s = round3(cpu_seconds(pids, ticks) - cpu0);
    run.success_rate = round3(run.ok as f64 / run.attempted.max(1) as f64);
    run.ringing = latency(&ringing);
    run.fresh = latency(&fresh);
    run.reused = latency(&reused);
    run.answered = latency(&answered);
    run
}

/// A phone that answers at once (180, then 200 without delay).
async fn phone(aor: String, proxy: SocketAddr) -> Result<Phone> {
    let mut cfg = PhoneConfig::new(aor, PASSWORD, proxy);
    cfg.answer_delay = Duration::ZERO;
    cfg.call_timeout = CALL_LIMIT;
    // A phone is a device of its own: its own thread and runtime.
    let (phone, _events) = own_thread("phone")?
        .spawn(Phone::start(cfg))
        .await
        .context("the phone's thread")?
        .context("starting a phone")?;
    Ok(phone)
}

/// A new thread running a one-thread runtime, as `p2psip peer` runs a node by
/// default (`--threads 1`): what is spawned on the returned handle runs on that
/// thread. The thread lives as long as the process, as a node's process would;
/// the bench's nodes and phones each get one, so that they share the cores the
/// way separate processes do rather than one runtime's two worker threads.
fn own_thread(name: &str) -> Result<tokio::runtime::Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(
            move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => {
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(std::future::pending::<()>());
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            },
        )
        .context("starting a thread")?;
    rx.recv()
        .context("the new thread ended at once")?
        .context("starting a thread's runtime")
}

// ---------------------------------------------------------------------------------
// Our side.

/// Our side's results.
#[derive(Debug, Serialize)]
struct OurSide {
    peers: usize,
    overlay_start_s: f64,
    /// Time to issue the users' certificates (not part of any rate).
    issue_certificates_s: f64,
    register: RegisterRun,
    /// The registrar node's front end's counters after the run.
    frontend: Value,
    call_nodes: Value,
    calls: CallRun,
    process_rss_kib: Option<u64>,
}

/// Node number `i`'s Node-ID: spread over the ring (splitmix64 of `i`).
fn node_id(i: usize) -> NodeId {
    let mut state = (i as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut id = [0u8; 16];
    for chunk in id.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_be_bytes()[..chunk.len()]);
    }
    NodeId(id)
}

fn aor(user: &str) -> String {
    format!("{user}@{OVERLAY}")
}

struct Node {
    handle: NodeHandle,
    security: LinkSecurity,
    /// The node's own thread ([`own_thread`]).
    rt: tokio::runtime::Handle,
}

async fn spawn_node(ca: &TestCa, i: usize, bootstrap: Vec<SocketAddr>) -> Result<Node> {
    let id = node_id(i);
    let creds = ca
        .issue(
            &[id],
            Some(&aor(&format!("peer{i}"))),
            KeyType::EcdsaP256,
            Validity::from_now(VALIDITY_S),
        )
        .context("issuing a node certificate")?;
    let security = LinkSecurity::new(creds, id, ca.trust_anchors()?).with_keylog(None);
    let mut cfg = NodeConfig::new(OverlayHash::from_overlay_name(OVERLAY), id);
    cfg.kinds.add(sip_registration_kind(64, 1024));
    cfg.data_models = cfg.kinds.data_models();
    cfg.reliability_timer = Duration::from_millis(1000);
    let create = bootstrap.is_empty();
    let rt = own_thread(&format!("node{i}"))?;
    let (handle, _task) = rt
        .spawn(runtime::start(RuntimeConfig {
            node: cfg,
            security: security.clone(),
            protocol: LinkProtocol::Tls,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrap,
            create_overlay: create,
            storage: None,
            seed: i as u64 + 1,
        }))
        .await
        .context("the node's thread")?
        .with_context(|| format!("starting node {i}"))?;
    handle
        .joined(JOIN_LIMIT)
        .await
        .with_context(|| format!("node {i} did not join"))?;
    Ok(Node { handle, security, rt })
}

/// A front end on `node` for its own user and the `signers`' users, all with
/// [`PASSWORD`].
async fn front_end(
    node: &Node,
    own: &str,
    signers: HashMap<String, reload_net::runtime::UserSigner>,
) -> Result<Frontend> {
    let mut accounts: HashMap<String, String> = signers.keys().map(|k| (k.clone(), PASSWORD.to_owned())).collect();
    accounts.insert(own.to_owned(), PASSWORD.to_owned());
    let usage = SipUsage::new(node.handle.clone(), OVERLAY, Vec::new()).map_err(|e| anyhow!("{e}"))?;
    let tls = TlsLinks::new(node.security.clone(), 64 * 1024).context("TLS for SIP between nodes")?;
    // On the node's own thread, as `p2psip peer --sip` runs it.
    node.rt
        .spawn(frontend::start(
            usage,
            tls,
            FrontendConfig {
                phones: SocketAddr::from(([127, 0, 0, 1], 0)),
                phones_tls: None,
                overlay: SocketAddr::from(([127, 0, 0, 1], 0)),
                accounts,
                signers,
                trusted: Vec::new(),
                domains: reload_sip::usage::DomainRestriction::OverlayOnly(OVERLAY.to_ascii_lowercase()),
                realm: OVERLAY.to_owned(),
                outbound_proxy: None,
            },
        ))
        .await
        .context("the node's thread")?
        .context("starting a front end")
}

async fn run_ours(args: &SipArgs, dir: &Path, sipp: &Path, ticks: f64) -> Result<OurSide> {
    let me = [std::process::id()];
    let ca = TestCa::new(OVERLAY, KeyType::EcdsaP256, Validity::from_now(VALIDITY_S)).context("making the CA")?;

    // The overlay.
    let t = Instant::now();
    let first = spawn_node(&ca, 0, Vec::new()).await?;
    let boot = vec![first.handle.local_addr()];
    let mut nodes = vec![first];
    for i in 1..args.peers {
        nodes.push(spawn_node(&ca, i, boot.clone()).await?);
        if (i + 1) % 10 == 0 || i + 1 == args.peers {
            eprintln!(
                "p2psip: {} of {} nodes joined ({:.1} s)",
                i + 1,
                args.peers,
                t.elapsed().as_secs_f64()
            );
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let overlay_start_s = round3(t.elapsed().as_secs_f64());

    // 1. REGISTER throughput through the last node's front end.
    let registrar = &nodes[args.peers - 1];
    let registrar_id = node_id(args.peers - 1);
    eprintln!(
        "p2psip: issuing {} user certificates for node {}",
        args.registers,
        args.peers - 1
    );
    let t = Instant::now();
    let mut signers = HashMap::with_capacity(args.registers);
    for i in 0..args.registers {
        let user = aor(&format!("u{i}"));
        let creds = ca
            .issue(
                &[registrar_id],
                Some(&user),
                KeyType::EcdsaP256,
                Validity::from_now(VALIDITY_S),
            )
            .context("issuing a user certificate")?;
        let signer = registrar
            .handle
            .user_signer(creds)
            .map_err(|e| anyhow!("a user signer: {e}"))?;
        signers.insert(user, signer);
        if i % 1000 == 999 {
            // Let the overlay's tasks run between the batches.
            tokio::task::yield_now().await;
        }
    }
    let issue_certificates_s = round3(t.elapsed().as_secs_f64());
    let front = front_end(registrar, &aor(&format!("peer{}", args.peers - 1)), signers).await?;
    let scenario = dir.join("register-auth.xml");
    std::fs::write(&scenario, REGISTER_AUTH_XML)?;
    let users = dir.join("users-p2psip.csv");
    write_users(&users, "u", args.registers)?;
    eprintln!(
        "p2psip: {} REGISTERs (new AOR each, digest) through one front end, sipp -l {}",
        args.registers, args.limit
    );
    let register = run_sipp(
        sipp,
        dir,
        &SippLoad {
            tag: "p2psip",
            scenario: &scenario,
            users: &users,
            domain: OVERLAY,
            remote: front.udp_addr(),
            registrations: args.registers,
            requests_per_registration: 2,
            limit: args.limit,
        },
        &me,
        ticks,
    )
    .await?;
    let frontend_stats = match front.stats().await {
        Some(s) => json!({
            "requests": s.requests,
            "responses": s.responses,
            "malformed": s.malformed,
            "registered": s.registered,
            "stores": s.stores,
        }),
        None => Value::Null,
    };

    // 2. Calls between the other nodes' phones.
    let call_nodes = &nodes[..args.peers - 1];
    let n_callers = (call_nodes.len() / 5).max(1);
    let mut callers = Vec::new();
    let mut callees = Vec::new();
    for (i, node) in call_nodes.iter().enumerate() {
        let user = aor(&format!("peer{i}"));
        let front = front_end(node, &user, HashMap::new()).await?;
        let phone = phone(user.clone(), front.udp_addr()).await?;
        phone
            .register(3600)
            .await
            .with_context(|| format!("registering {user}'s phone"))?;
        if i < n_callers {
            callers.push(phone);
        } else {
            callees.push((phone, format!("sip:{user}")));
        }
    }
    let targets: Vec<String> = callees.iter().map(|(_, t)| t.clone()).collect();
    eprintln!(
        "p2psip: {} calls from {} caller nodes to {} callee nodes ({} node pairs)",
        args.calls,
        callers.len(),
        targets.len(),
        callers.len() * targets.len()
    );
    let calls = make_calls(&callers, &targets, args.calls, &me, ticks).await;
    let process_rss_kib = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    });
    for node in &nodes {
        let _ = node.handle.leave(Duration::from_millis(200)).await;
    }
    Ok(OurSide {
        peers: args.peers,
        overlay_start_s,
        issue_certificates_s,
        register,
        frontend: frontend_stats,
        call_nodes: json!({ "callers": callers.len(), "callees": targets.len() }),
        calls,
        process_rss_kib,
    })
}

// ---------------------------------------------------------------------------------
// Kamailio's side.

/// An installed Kamailio.
struct Kamailio {
    program: PathBuf,
    kamcmd: Option<PathBuf>,
    modules: PathBuf,
    version: Option<String>,
}

impl Kamailio {
    /// Kamailio and its module directory, or why not.
    fn find() -> Result<Kamailio, String> {
        let program = find_program("kamailio")
            .ok_or_else(|| format!("kamailio is not installed (as root: {KAMAILIO_INSTALL})"))?;
        let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path().join("kamailio/modules"))
                    .collect()
            })
            .unwrap_or_default();
        candidates.extend(
            [
                "/usr/lib/kamailio/modules",
                "/usr/lib64/kamailio/modules",
                "/usr/local/lib64/kamailio/modules",
                "/usr/local/lib/kamailio/modules",
            ]
            .map(PathBuf::from),
        );
        let modules = candidates
            .into_iter()
            .find(|d| d.join("registrar.so").is_file() && d.join("tm.so").is_file())
            .ok_or_else(|| "Kamailio's modules (registrar.so, tm.so) are not found".to_owned())?;
        Ok(Kamailio {
            version: program_version(&program, "-v"),
            kamcmd: find_program("kamcmd"),
            program,
            modules,
        })
    }
}

/// A running Kamailio of ours.
struct KamailioProc {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    ctl: PathBuf,
    log: PathBuf,
}

impl KamailioProc {
    /// Writes `template` with its names filled in and starts Kamailio on it in the
    /// foreground; waits until it answers a probe.
    async fn start(k: &Kamailio, template: &str, name: &str, dir: &Path, children: usize) -> Result<KamailioProc> {
        let work = dir.join(name);
        std::fs::create_dir_all(&work)?;
        let port = free_udp_port()?;
        let ctl = work.join("ctl.sock");
        let cfg_text = template
            .replace("@CHILDREN@", &children.to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@MPATH@", &format!("{}/", k.modules.display()))
            .replace("@CTL@", &ctl.display().to_string())
            .replace("@AUTH_DOMAIN@", KAMAILIO_AUTH_DOMAIN)
            .replace("@PASSWORD@", PASSWORD);
        let cfg = work.join(format!("{name}.cfg"));
        std::fs::write(&cfg, cfg_text)?;
        let log = work.join("kamailio.log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(&k.program)
            .args(["-DD", "-E", "-f"])
            .arg(&cfg)
            .args(["-m", &KAMAILIO_SHM_MB.to_string(), "-M", "16", "-Y"])
            .arg(&work)
            .arg("-w")
            .arg(&work)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .context("starting kamailio")?;
        let pid = child.id().ok_or_else(|| anyhow!("kamailio exited at once"))?;
        let mut me = KamailioProc {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            ctl,
            log,
        };
        if let Err(e) = me.wait_ready().await {
            let tail = me.log_tail();
            me.stop().await;
            return Err(e.context(tail));
        }
        Ok(me)
    }

    /// Sends OPTIONS until any answer comes, within [`KAMAILIO_START_LIMIT`].
    async fn wait_ready(&mut self) -> Result<()> {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let local = socket.local_addr()?;
        let deadline = Instant::now() + KAMAILIO_START_LIMIT;
        let mut buf = vec![0u8; 4096];
        for n in 0.. {
            if Instant::now() > deadline {
                break;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("kamailio exited ({status})");
            }
            let probe = format!(
                "OPTIONS sip:{} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe{n};rport\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:probe@{KAMAILIO_DOMAIN}>;tag=p{n}\r\nTo: <sip:{}>\r\n\
                 Call-ID: probe-{n}@bench\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                self.addr, self.addr
            );
            socket.send_to(probe.as_bytes(), self.addr).await?;
            if let Ok(Ok((len, _))) = tokio::time::timeout(Duration::from_millis(250), socket.recv_from(&mut buf)).await
                && buf[..len].starts_with(b"SIP/2.0 ")
            {
                return Ok(());
            }
        }
        bail!("kamailio did not answer within {KAMAILIO_START_LIMIT:?}")
    }

    /// The main process and its children.
    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid];
        pids.extend(children_of(self.pid));
        pids
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "kamailio log ({}):\n{}",
            self.log.display(),
            lines[lines.len().saturating_sub(15)..].join("\n")
        )
    }

    /// `kamcmd stats.get_statistics usrloc:` as a map.
    async fn usrloc(&self, k: &Kamailio) -> Value {
        let Some(kamcmd) = &k.kamcmd else {
            return Value::Null;
        };
        let out = tokio::time::timeout(
            Duration::from_secs(10),
            Command::new(kamcmd)
                .arg("-s")
                .arg(format!("unix:{}", self.ctl.display()))
                .args(["stats.get_statistics", "usrloc:"])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await;
        let Ok(Ok(out)) = out else { return Value::Null };
        let map: serde_json::Map<String, Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                Some((k.trim().to_owned(), json!(v.trim().parse::<u64>().ok()?)))
            })
            .collect();
        Value::Object(map)
    }

    /// SIGTERM by PID (the main process stops its children), then SIGKILL by handle.
    async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdin(Stdio::null())
            .status()
            .await;
        if tokio::time::timeout(KAMAILIO_STOP_LIMIT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        }
    }
}

/// Kamailio's results.
#[derive(Debug, Serialize)]
struct KamailioSide {
    version: Option<String>,
    children: usize,
    processes: usize,
    /// The baseline: no challenge, one REGISTER per registration.
    register_noauth: RegisterRun,
    /// With the digest round trip, as ours.
    register_auth: RegisterRun,
    usrloc_after: Value,
    calls: CallRun,
}

async fn run_kamailio(args: &SipArgs, k: &Kamailio, dir: &Path, sipp: &Path, ticks: f64) -> Result<KamailioSide> {
    let count = kamailio_registers(args);
    let kam = KamailioProc::start(
        k,
        KAMAILIO_REGISTRAR_CFG,
        "kamailio-registrar",
        dir,
        args.kamailio_children,
    )
    .await?;
    let result = async {
        let pids = kam.pids();
        let noauth_xml = dir.join("register-noauth.xml");
        std::fs::write(&noauth_xml, REGISTER_NOAUTH_XML)?;
        let auth_xml = dir.join("register-auth.xml");
        std::fs::write(&auth_xml, REGISTER_AUTH_XML)?;
        // Distinct user names per run: usrloc keys by user name only.
        let plain_users = dir.join("users-kamailio-plain.csv");
        write_users(&plain_users, "n", count)?;
        let auth_users = dir.join("users-kamailio-auth.csv");
        write_users(&auth_users, "a", count)?;
        eprintln!(
            "kamailio: {count} REGISTERs without a challenge, then {count} with digest, sipp -l {}",
            args.limit
        );
        let noauth = run_sipp(
            sipp,
            dir,
            &SippLoad {
                tag: "kamailio-noauth",
                scenario: &noauth_xml,
                users: &plain_users,
                domain: KAMAILIO_DOMAIN,
                remote: kam.addr,
                registrations: count,
                requests_per_registration: 1,
                limit: args.limit,
            },
            &pids,
            ticks,
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let auth = run_sipp(
            sipp,
            dir,
            &SippLoad {
                tag: "kamailio-auth",
                scenario: &auth_xml,
                users: &auth_users,
                domain: KAMAILIO_AUTH_DOMAIN,
                remote: kam.addr,
                registrations: count,
                requests_per_registration: 2,
                limit: args.limit,
            },
            &pids,
            ticks,
        )
        .await?;
        let usrloc = kam.usrloc(k).await;
        anyhow::Ok((pids.len(), noauth, auth, usrloc))
    }
    .await;
    let tail = kam.log_tail();
    kam.stop().await;
    let (processes, noauth, auth, usrloc) = result.map_err(|e| e.context(tail))?;

    let proxy = KamailioProc::start(k, KAMAILIO_PROXY_CFG, "kamailio-proxy", dir, args.kamailio_children).await?;
    let calls = async {
        let pids = proxy.pids();
        let alice = phone(format!("alice@{KAMAILIO_DOMAIN}"), proxy.addr).await?;
        let bob = phone(format!("bob@{KAMAILIO_DOMAIN}"), proxy.addr).await?;
        alice.register(3600).await.context("registering alice at Kamailio")?;
        bob.register(3600).await.context("registering bob at Kamailio")?;
        eprintln!("kamailio: {} calls through the proxy", args.calls);
        let target = vec![format!("sip:bob@{KAMAILIO_DOMAIN}")];
        anyhow::Ok(make_calls(std::slice::from_ref(&alice), &target, args.calls, &pids, ticks).await)
    }
    .await;
    let tail = proxy.log_tail();
    proxy.stop().await;
    let calls = calls.map_err(|e| e.context(tail))?;
    Ok(KamailioSide {
        version: k.version.clone(),
        children: args.kamailio_children,
        processes,
        register_noauth: noauth,
        register_auth: auth,
        usrloc_after: usrloc,
        calls,
    })
}

// ---------------------------------------------------------------------------------
// Report.

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(round3(a / b)),
        _ => None,
    }
}

fn p50(l: &Option<Lat>) -> Option<f64> {
    l.as_ref().map(|l| l.median_ms)
}

fn p95(l: &Option<Lat>) -> Option<f64> {
    l.as_ref().map(|l| l.p95_ms)
}

fn ratios(ours: &OurSide, k: &KamailioSide) -> Value {
    let r = &ours.register;
    json!({
        "registrations_per_s_vs_noauth": ratio(Some(r.registrations_per_s), Some(k.register_noauth.registrations_per_s)),
        "registrations_per_s_vs_auth": ratio(Some(r.registrations_per_s), Some(k.register_auth.registrations_per_s)),
        "register_requests_per_s_vs_noauth": ratio(Some(r.register_requests_per_s), Some(k.register_noauth.register_requests_per_s)),
        "register_requests_per_s_vs_auth": ratio(Some(r.register_requests_per_s), Some(k.register_auth.register_requests_per_s)),
        "cpu_per_registration_vs_auth": ratio(Some(r.server_cpu_us_per_registration), Some(k.register_auth.server_cpu_us_per_registration)),
        "ringing_p50_fresh": ratio(p50(&ours.calls.fresh), p50(&k.calls.ringing)),
        "ringing_p95_fresh": ratio(p95(&ours.calls.fresh), p95(&k.calls.ringing)),
        "ringing_p50_reused": ratio(p50(&ours.calls.reused), p50(&k.calls.ringing)),
        "ringing_p95_reused": ratio(p95(&ours.calls.reused), p95(&k.calls.ringing)),
    })
}

/// The issue's goals, checked (None where a figure is missing).
fn goals(ours: &OurSide, k: Option<&KamailioSide>) -> Value {
    let reg = k.and_then(|k| {
        ratio(
            Some(ours.register.registrations_per_s),
            Some(k.register_noauth.registrations_per_s),
        )
    });
    json!({
        "registrations_per_s_at_least_half_of_kamailio": reg.map(|r| r >= 0.5),
        "ringing_p50_fresh_at_most_5_ms": p50(&ours.calls.fresh).map(|x| x <= 5.0),
        "ringing_p50_reused_at_most_1_ms": p50(&ours.calls.reused).map(|x| x <= 1.0),
        "success_100_percent": ours.register.success_rate == 1.0 && ours.calls.success_rate == 1.0,
    })
}

fn rate(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |x| format!("{x:.0}/s"))
}

fn ms(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |x| format!("{x:.3} ms"))
}

fn times(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |x| format!("{x:.3}x"))
}

fn table(args: &SipArgs, ours: &OurSide, k: Option<&KamailioSide>, goals: &Value) -> String {
    let mut s = String::new();
    let r = &ours.register;
    let (kn, ka) = (k.map(|k| &k.register_noauth), k.map(|k| &k.register_auth));
    let _ = writeln!(
        s,
        "REGISTER, new AOR each, sipp closed loop -l {}:\n{:<28} {:>16} {:>16} {:>16} {:>12} {:>12}",
        args.limit, "", "p2psip (digest)", "Kamailio plain", "Kamailio digest", "vs plain", "vs digest"
    );
    let rows = [
        (
            "registrations/s",
            Some(r.registrations_per_s),
            kn.map(|x| x.registrations_per_s),
            ka.map(|x| x.registrations_per_s),
        ),
        (
            "REGISTER requests/s",
            Some(r.register_requests_per_s),
            kn.map(|x| x.register_requests_per_s),
            ka.map(|x| x.register_requests_per_s),
        ),
        (
            "server CPU us/registration",
            Some(r.server_cpu_us_per_registration),
            kn.map(|x| x.server_cpu_us_per_registration),
            ka.map(|x| x.server_cpu_us_per_registration),
        ),
    ];
    for (i, (name, a, b, c)) in rows.into_iter().enumerate() {
        let fmt = |x: Option<f64>| {
            if i == 2 {
                x.map_or("-".to_owned(), |x| format!("{x:.1}"))
            } else {
                rate(x)
            }
        };
        let _ = writeln!(
            s,
            "{name:<28} {:>16} {:>16} {:>16} {:>12} {:>12}",
            fmt(a),
            fmt(b),
            fmt(c),
            times(ratio(a, b)),
            times(ratio(a, c))
        );
    }
    let counts = |x: &RegisterRun| format!("{}/{}/{}", x.ok, x.failed, x.retransmissions);
    let _ = writeln!(
        s,
        "{:<28} {:>16} {:>16} {:>16}",
        "ok/failed/retransmissions",
        counts(r),
        kn.map_or("-".to_owned(), counts),
        ka.map_or("-".to_owned(), counts)
    );
    let _ = writeln!(
        s,
        "{:<28} {:>16} {:>16} {:>16}",
        "wall s (server CPU s)",
        format!("{:.2} ({:.2})", r.wall_s, r.server_cpu_s),
        kn.map_or("-".to_owned(), |x| format!("{:.2} ({:.2})", x.wall_s, x.server_cpu_s)),
        ka.map_or("-".to_owned(), |x| format!("{:.2} ({:.2})", x.wall_s, x.server_cpu_s)),
    );
    let c = &ours.calls;
    let kc = k.map(|k| &k.calls);
    let _ = writeln!(
        s,
        "\nCall setup, INVITE to 180 at the calling phone ({} peers; Kamailio: one proxy):\n{:<28} {:>12} {:>12} {:>8} {:>12} {:>12}",
        args.peers, "", "p50", "p95", "n", "p50 vs K", "p95 vs K"
    );
    let krow = kc.and_then(|k| k.ringing.as_ref());
    for (name, l) in [
        ("p2psip, fresh connection", &c.fresh),
        ("p2psip, reused connection", &c.reused),
    ] {
        let _ = writeln!(
            s,
            "{name:<28} {:>12} {:>12} {:>8} {:>12} {:>12}",
            ms(p50(l)),
            ms(p95(l)),
            l.as_ref().map_or(0, |l| l.n),
            times(ratio(p50(l), krow.map(|k| k.median_ms))),
            times(ratio(p95(l), krow.map(|k| k.p95_ms))),
        );
    }
    let _ = writeln!(
        s,
        "{:<28} {:>12} {:>12} {:>8}",
        "Kamailio proxy",
        ms(krow.map(|k| k.median_ms)),
        ms(krow.map(|k| k.p95_ms)),
        krow.map_or(0, |k| k.n)
    );
    let _ = writeln!(
        s,
        "calls ok/failed: p2psip {}/{}{}",
        c.ok,
        c.failed,
        kc.map_or(String::new(), |k| format!(", Kamailio {}/{}", k.ok, k.failed))
    );
    crate::bench::write_goals(
        &mut s,
        goals,
        &[
            (
                "registrations/s >= 0.5x Kamailio (plain): ",
                "registrations_per_s_at_least_half_of_kamailio",
            ),
            (
                "call setup p50 <= 5 ms, fresh connection:",
                "ringing_p50_fresh_at_most_5_ms",
            ),
            (
                "call setup p50 <= 1 ms, reused:          ",
                "ringing_p50_reused_at_most_1_ms",
            ),
            ("100 % success (ours):                    ", "success_100_percent"),
        ],
    );
    s
}
