//! The NSS key log file (what `SSLKEYLOGFILE` names): one line per secret, so that
//! Wireshark or tshark can decrypt a capture of our TLS and DTLS links. Shared by
//! both link protocols; lines are appended under a lock so that concurrent
//! handshakes do not interleave.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// An open key log file.
#[derive(Debug)]
pub struct KeyLogFile {
    file: Mutex<Option<File>>,
}

impl KeyLogFile {
    /// Opens `path` for appending, creating it readable by its owner only (the
    /// secrets decrypt every link). If it cannot be opened, logging is off and a
    /// warning says why; the links work regardless.
    pub fn open(path: &Path) -> Self {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = match options.open(path) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open the TLS key log file");
                None
            }
        };
        KeyLogFile { file: Mutex::new(file) }
    }

    /// Appends one line as OpenSSL formats it (`LABEL <client random hex> <secret hex>`).
    ///
    /// The line and its newline go out in one write: every node of a process (and
    /// every process) that logs to the same file appends on its own handle, and
    /// `writeln!` may split a line into several writes, between which another
    /// node's line could land and spoil both.
    pub fn write_line(&self, line: &str) {
        let Ok(mut guard) = self.file.lock() else { return };
        if let Some(f) = guard.as_mut() {
            let mut whole = String::with_capacity(line.len() + 1);
            whole.push_str(line);
            whole.push('\n');
            let _ = f.write_all(whole.as_bytes());
        }
    }
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.write_line(&format!("{label} {} {}", hex(client_random), hex(secret)));
    }
}

fn hex(bytes: &[u8]) -> String {
    reload_wire::hex::encode(bytes)
}
