//! `p2psip bench overlay` on a small overlay (5 peer processes, 50 values, no
//! OpenDHT): every put and get succeeds and the figures in its JSON are plausible.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsStr;
use std::time::Duration;

#[test]
fn bench_overlay_runs_a_small_overlay() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let args = [
        "bench",
        "overlay",
        "--peers",
        "5",
        "--values",
        "50",
        "--no-opendht",
        "--out",
    ];
    let mut args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    args.push(out.as_os_str());
    let (status, stdout, stderr) = common::run_bounded(&args, Duration::from_secs(90));
    assert!(status.success(), "bench failed: {stdout}\n{stderr}");
    assert!(stdout.contains("put median"), "no table: {stdout}");

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let ours = &report["p2psip"];
    assert_eq!(ours["peers_joined"], 5, "{ours}");
    for phase in ["put", "get"] {
        let p = &ours[phase];
        assert_eq!(p["attempted"], 50, "{phase}: {p}");
        assert_eq!(p["ok"], 50, "{phase}: {p}");
        assert_eq!(p["success_rate"], 1.0, "{phase}: {p}");
        let median = p["latency_ok"]["median_ms"].as_f64().unwrap();
        let p99 = p["latency_ok"]["p99_ms"].as_f64().unwrap();
        assert!(median > 0.0 && median <= p99 && p99 < 5_000.0, "{phase}: {p}");
        assert!(p["hops_mean"].as_f64().unwrap() >= 1.0, "{phase}: {p}");
    }
    let mem = &ours["mem_after_puts"];
    assert_eq!(mem["alive"], 5, "{mem}");
    let rss = mem["rss_kib_median"].as_f64().unwrap();
    let pss = mem["pss_kib_median"].as_f64().unwrap();
    assert!(pss > 100.0 && pss <= rss && rss < 1_000_000.0, "{mem}");
    assert_eq!(report["goals"]["success_100_percent"], true);
    assert!(report["opendht"].is_null());
}
