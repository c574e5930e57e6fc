//! `p2psip demo`, the README's main command: it builds an overlay from nothing
//! and exits 0 only if bob's call to alice completed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_demo_completes_a_call() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_p2psip"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run p2psip demo");
    // Bounded: kill our own child if it hangs.
    let limit = Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() || started.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
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
