//! The real `p2psip` binary: `ca init`, `ca add-user`, `enroll-server` on an
//! ephemeral port of 127.0.0.1, `ca config` to point the configuration at it, and
//! `enroll`. Every command has a deadline; the server is killed by its PID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reload_enroll::identity::NodeIdentity;

const BIN: &str = env!("CARGO_BIN_EXE_p2psip");
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `p2psip ARGS` with `stdin`, killing it if it outlives the deadline.
fn p2psip(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start p2psip");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "p2psip {args:?} ran over {DEADLINE:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ok(args: &[&str], stdin: &str) -> String {
    let out = p2psip(args, stdin);
    assert!(
        out.status.success(),
        "p2psip {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The server process, killed by its PID when dropped (also when a test fails).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn ca_server_and_enrollment_through_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    let node = tmp.path().join("node");

    let out = ok(
        &[
            "ca",
            "init",
            "--overlay",
            "cli.p2psip.example",
            "--dir",
            s(&ca),
            "--link",
            "tls",
        ],
        "",
    );
    assert!(out.contains("root SHA-256 fingerprint"), "{out}");
    for f in ["root.key", "root.crt", "server.key", "server.crt", "reload-config.xml"] {
        assert!(ca.join(f).exists(), "{f}");
    }
    ok(
        &["ca", "add-user", "--dir", s(&ca), "--user", "alice", "--password-stdin"],
        "open sesame\n",
    );
    let refused = p2psip(
        &["ca", "add-user", "--dir", s(&ca), "--user", "Alice!", "--password", "x"],
        "",
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("illegal user name"));

    let mut child = Command::new(BIN)
        .args(["enroll-server", "--dir", s(&ca), "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the enrollment server");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DEADLINE).expect("the server prints its address");
    let addr = line
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let enroll_url = format!("https://{addr}/enroll");
    let out = ok(
        &[
            "ca",
            "config",
            "--dir",
            s(&ca),
            "--enrollment-url",
            &enroll_url,
            "--bootstrap",
            "127.0.0.1:40001",
            "--bootstrap",
            "127.0.0.1:40002",
        ],
        "",
    );
    assert!(out.contains("sequence 2"), "{out}");

    let config_url = format!("https://{addr}/.well-known/reload-config");
    let root = ca.join("root.crt");
    let out = ok(
        &[
            "enroll",
            "--config-url",
            &config_url,
            "--user",
            "alice",
            "--password-stdin",
            "--data-dir",
            s(&node),
            "--root",
            s(&root),
            "--nodeids",
            "2",
        ],
        "open sesame\n",
    );
    assert!(out.contains("enrolled as alice@cli.p2psip.example"), "{out}");
    assert_eq!(out.matches("Node-ID: ").count(), 2, "{out}");

    // What a peer will load.
    let identity = NodeIdentity::load(&node).unwrap();
    assert_eq!(identity.node_ids().len(), 2);
    assert_eq!(identity.user(), Some("alice@cli.p2psip.example"));
    assert_eq!(identity.configuration.sequence, 2);
    assert_eq!(
        identity.configuration.bootstrap_nodes,
        vec!["127.0.0.1:40001".parse().unwrap(), "127.0.0.1:40002".parse().unwrap()]
    );

    // A wrong password: refused with the RFC's token, nothing overwritten.
    let before = std::fs::read(node.join("cert.pem")).unwrap();
    let out = p2psip(
        &[
            "enroll",
            "--config-url",
            &config_url,
            "--user",
            "alice",
            "--password",
            "wrong",
            "--data-dir",
            s(&node),
            "--root",
            s(&root),
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed_authentication"));
    assert_eq!(std::fs::read(node.join("cert.pem")).unwrap(), before);

    drop(server);
}
