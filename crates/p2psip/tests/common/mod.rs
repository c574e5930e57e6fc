//! Running `p2psip` processes in tests: an overlay's CA and enrollment server,
//! enrolled data directories, peers and clients driven through their JSON-lines
//! control channel. Every process is killed by its PID when dropped, and every
//! wait is bounded.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_p2psip")
}

/// Runs `p2psip ARGS` to completion and returns its stdout; panics with its stderr on failure.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().expect("run p2psip");
    assert!(
        out.status.success(),
        "p2psip {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `p2psip ARGS` and returns (success, stdout, stderr).
pub fn try_run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).args(args).output().expect("run p2psip");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A long-running `p2psip` process whose stdout lines arrive on a channel.
pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `p2psip ARGS` with stdin, stdout piped; stderr goes to `log`.
    pub fn spawn(name: &str, args: &[&str], log: &Path) -> Proc {
        let stderr = std::fs::File::create(log).unwrap();
        let mut child = Command::new(bin())
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("P2PSIP_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn p2psip");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The next stdout line, within `limit`.
    pub fn line(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("{}: no output line within {limit:?}: {e}", self.name))
    }

    /// Waits for the "... listening on ADDR" line; returns (Node-ID hex, address).
    pub fn listening(&self) -> (String, SocketAddr) {
        let line = self.line(Duration::from_secs(20));
        let mut words = line.split_whitespace();
        let _role = words.next();
        let id = words.next().unwrap_or_default().to_owned();
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.trim_start_matches("https://").parse().ok())
            .unwrap_or_else(|| panic!("{}: unexpected first line {line:?}", self.name));
        (id, addr)
    }

    /// Sends one control request and returns its JSON answer.
    pub fn ask(&mut self, request: &serde_json::Value) -> serde_json::Value {
        let stdin = self.stdin.as_mut().expect("control stdin");
        writeln!(stdin, "{request}").unwrap();
        stdin.flush().unwrap();
        let line = self.line(Duration::from_secs(40));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: bad answer {line:?}: {e}", self.name))
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and reap.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes stdin (a controlled node then leaves) and waits for the exit, at most `limit`.
    pub fn finish(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Only our own child, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test overlay: a CA directory, its enrollment server, and a scratch directory.
pub struct Overlay {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server: Proc,
    pub url: String,
    pub bootstrap: SocketAddr,
}

impl Overlay {
    /// Makes a CA for `overlay` whose configuration names one bootstrap peer on a
    /// free port and `link` (tls or dtls), and starts its enrollment server.
    pub fn new(overlay: &str, link: &str) -> Overlay {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let port = free_port();
        let bootstrap: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let ca_s = ca.to_str().unwrap();
        run(&[
            "ca",
            "init",
            "--overlay",
            overlay,
            "--dir",
            ca_s,
            "--link",
            link,
            "--bootstrap",
            &bootstrap.to_string(),
        ]);
        let server = Proc::spawn(
            "enroll-server",
            &["enroll-server", "--dir", ca_s, "--listen", "127.0.0.1:0"],
            &dir.path().join("enroll-server.log"),
        );
        let (_, addr) = server.listening();
        let url = format!("https://{addr}/.well-known/reload-config");
        // The server's port is known only now: name it in the configuration.
        run(&[
            "ca",
            "config",
            "--dir",
            ca_s,
            "--enrollment-url",
            &format!("https://{addr}/enroll"),
        ]);
        Overlay {
            dir,
            ca,
            server,
            url,
            bootstrap,
        }
    }

    /// Adds an account and enrolls a data directory for it; returns the directory.
    pub fn enroll(&self, user: &str) -> PathBuf {
        let ca_s = self.ca.to_str().unwrap();
        run(&[
            "ca",
            "add-user",
            "--dir",
            ca_s,
            "--user",
            user,
            "--password",
            "secret-pw",
        ]);
        let data = self.dir.path().join(user);
        let root = self.ca.join("root.crt");
        run(&[
            "enroll",
            "--config-url",
            &self.url,
            "--user",
            user,
            "--password",
            "secret-pw",
            "--data-dir",
            data.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ]);
        data
    }

    /// Starts a peer on `listen` with a control channel.
    pub fn peer(&self, name: &str, data: &Path, listen: &str) -> Proc {
        Proc::spawn(
            name,
            &[
                "peer",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                listen,
                "--control",
            ],
            &self.dir.path().join(format!("{name}.log")),
        )
    }

    /// Starts a client with a control channel.
    pub fn client(&self, name: &str, data: &Path) -> Proc {
        Proc::spawn(
            name,
            &["client", "--data-dir", data.to_str().unwrap()],
            &self.dir.path().join(format!("{name}.log")),
        )
    }

    /// The log file of process `name`, for failure messages.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Overlay {
    /// Starts a peer on `listen` with a control channel and `extra` arguments
    /// (for instance `--sip 127.0.0.1:0 --sip-password PW`).
    pub fn peer_with(&self, name: &str, data: &Path, listen: &str, extra: &[&str]) -> Proc {
        let mut args = vec![
            "peer",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            listen,
            "--control",
        ];
        args.extend_from_slice(extra);
        Proc::spawn(name, &args, &self.dir.path().join(format!("{name}.log")))
    }
}

/// Runs `p2psip ARGS` to the end, at most `limit` (then our own child is killed
/// and the test fails), reading its output while it runs so that a full pipe
/// cannot stall it. Returns the exit status, standard output and standard error.
pub fn run_bounded(args: &[&std::ffi::OsStr], limit: Duration) -> (std::process::ExitStatus, String, String) {
    use std::io::Read;
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start p2psip");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("p2psip {args:?} took over {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status, out.join().unwrap(), err.join().unwrap())
}
