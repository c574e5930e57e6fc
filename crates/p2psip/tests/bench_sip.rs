//! `p2psip bench sip` on a small in-process overlay (5 peers, 200 REGISTERs
//! through sipp, 5 calls, no Kamailio): every registration and every call
//! succeeds and the figures in its JSON are plausible. Needs sipp (Debian
//! sip-tester, which CI installs); Kamailio is not needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsStr;
use std::time::Duration;

#[test]
fn bench_sip_smoke_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench-sip.json");
    let args = [
        "bench",
        "sip",
        "--registers",
        "200",
        "--calls",
        "5",
        "--peers",
        "5",
        "--no-kamailio",
        "--out",
    ];
    let mut args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    args.push(out.as_os_str());
    let (status, stdout, stderr) = common::run_bounded(&args, Duration::from_secs(180));
    assert!(status.success(), "bench failed: {stdout}\n{stderr}");
    assert!(stdout.contains("registrations/s"), "no table: {stdout}");

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(report["kamailio"].is_null(), "{report}");
    assert_eq!(report["kamailio_skipped"], "--no-kamailio", "{report}");

    let reg = &report["p2psip"]["register"];
    assert_eq!(reg["registrations"], 200, "{reg}");
    assert_eq!(reg["ok"], 200, "{reg}");
    assert_eq!(reg["failed"], 0, "{reg}");
    assert_eq!(reg["success_rate"], 1.0, "{reg}");
    for key in ["registrations_per_s", "register_requests_per_s", "wall_s"] {
        assert!(reg[key].as_f64().unwrap() > 0.0, "{key}: {reg}");
    }
    let per_s = reg["registrations_per_s"].as_f64().unwrap();
    assert!(
        (reg["register_requests_per_s"].as_f64().unwrap() - 2.0 * per_s).abs() < 0.01 * per_s + 0.01,
        "{reg}"
    );
    // Every REGISTER reached the front end twice (401, then with credentials) and
    // every registration was stored in the overlay.
    let front = &report["p2psip"]["frontend"];
    assert_eq!(front["registered"], 200, "{front}");
    assert_eq!(front["stores"], 200, "{front}");

    let calls = &report["p2psip"]["calls"];
    assert_eq!(calls["attempted"], 5, "{calls}");
    assert_eq!(calls["ok"], 5, "{calls}");
    assert_eq!(calls["success_rate"], 1.0, "{calls}");
    // One caller node, three callee nodes: three first calls, two over open connections.
    assert_eq!(calls["fresh"]["n"], 3, "{calls}");
    assert_eq!(calls["reused"]["n"], 2, "{calls}");
    for phase in ["fresh", "reused", "ringing"] {
        let p50 = calls[phase]["median_ms"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 < 15_000.0, "{phase}: {calls}");
    }
    assert_eq!(report["goals"]["success_100_percent"], true, "{report}");
}
