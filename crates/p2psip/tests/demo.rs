//! `p2psip demo`, the README's main command: it builds an overlay from nothing
//! and exits 0 only if bob's call to alice completed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::OsStr;
use std::time::{Duration, Instant};

#[test]
fn the_demo_completes_a_call() {
    let started = Instant::now();
    let (status, stdout, stderr) = common::run_bounded(&[OsStr::new("demo")], Duration::from_secs(120));
    eprintln!("{stdout}");
    assert!(status.success(), "demo failed:\n{stdout}\n{stderr}");
    for step in [
        "180 Ringing",
        "200 OK",
        "ACK sent",
        "MESSAGE      200",
        "BYE          200",
        "call completed",
    ] {
        assert!(stdout.contains(step), "no {step:?} in:\n{stdout}");
    }
    assert!(stdout.contains("AppAttach(5061) answered by alice's node"), "{stdout}");
    eprintln!("demo took {:?}", started.elapsed());
}
