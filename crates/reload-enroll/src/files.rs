//! Files a CA and a node keep: private directories, atomic writes, PEM.
//!
//! Keys are written with mode 0600 inside directories of mode 0700; every write
//! goes to a temporary file that is synced and then renamed over the old one, so a
//! crash leaves either the old file or the new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Mode of a file that holds a secret (a private key, password hashes).
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of a file anyone may read (certificates, the configuration).
pub const PUBLIC_FILE: u32 = 0o644;
/// Mode of a directory holding secrets.
pub const PRIVATE_DIR: u32 = 0o700;

/// An I/O error with the file it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file or directory.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: io::Error,
}

impl FileError {
    /// Wraps `source` with `path`.
    pub fn new(path: &Path, source: io::Error) -> FileError {
        FileError {
            path: path.to_owned(),
            source,
        }
    }

    /// An error of kind `InvalidData` saying `reason`.
    pub fn invalid(path: &Path, reason: impl Into<String>) -> FileError {
        FileError::new(path, io::Error::new(io::ErrorKind::InvalidData, reason.into()))
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// The permission bits of `path` (always 0o600 where there are none).
pub fn mode_of(path: &Path) -> Result<u32, FileError> {
    let meta = fs::metadata(path).map_err(|e| FileError::new(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(PRIVATE_FILE)
    }
}

/// Creates `dir` (and its parents) if needed and makes it mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), FileError> {
    fs::create_dir_all(dir).map_err(|e| FileError::new(dir, e))?;
    set_mode(dir, PRIVATE_DIR).map_err(|e| FileError::new(dir, e))
}

/// Writes `bytes` to `path` atomically with permission bits `mode`: a temporary
/// file beside it (created with `mode`, so a secret is never readable by others),
/// synced, renamed over `path`, and the directory synced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let name = path
        .file_name()
        .ok_or_else(|| FileError::invalid(path, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut f = options.open(&tmp)?;
        set_mode(&tmp, mode)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable once the directory is synced.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| FileError::new(path, e))
}

/// Reads `path`, refusing files larger than `max` bytes.
pub fn read_limited(path: &Path, max: usize) -> Result<Vec<u8>, FileError> {
    let f = File::open(path).map_err(|e| FileError::new(path, e))?;
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    f.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| FileError::new(path, e))?;
    if buf.len() > max {
        return Err(FileError::invalid(path, format!("larger than {max} bytes")));
    }
    Ok(buf)
}

/// The PEM tag of a certificate.
pub const PEM_CERTIFICATE: &str = "CERTIFICATE";
/// The PEM tag of a PKCS#8 private key.
pub const PEM_PRIVATE_KEY: &str = "PRIVATE KEY";

/// `der` as PEM with `tag`, lines ending in LF.
pub fn pem_encode(tag: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(tag, der.to_vec()), config)
}

/// Every PEM block of `tag` in `text`, in order, as DER. Fails if the text is not
/// PEM; blocks of other tags are skipped.
pub fn pem_decode(text: &[u8], tag: &str) -> Result<Vec<Vec<u8>>, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("not PEM: {e}"))?;
    Ok(blocks
        .into_iter()
        .filter(|b| b.tag() == tag)
        .map(|b| b.into_contents())
        .collect())
}

/// Reads a PEM file holding at least one block of `tag`, and returns the blocks.
pub fn read_pem(path: &Path, tag: &str) -> Result<Vec<Vec<u8>>, FileError> {
    let text = read_limited(path, 1024 * 1024)?;
    let blocks = pem_decode(&text, tag).map_err(|e| FileError::invalid(path, e))?;
    if blocks.is_empty() {
        return Err(FileError::invalid(path, format!("holds no PEM block \"{tag}\"")));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn atomic_writes_replace_files_with_the_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_private_dir(&sub).unwrap();
        assert_eq!(mode_of(&sub).unwrap(), PRIVATE_DIR);
        let f = sub.join("key.pem");
        write_atomic(&f, b"one", PRIVATE_FILE).unwrap();
        write_atomic(&f, b"two", PRIVATE_FILE).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(mode_of(&f).unwrap(), PRIVATE_FILE);
        assert_eq!(fs::read_dir(&sub).unwrap().count(), 1, "no temporary file left");
        assert!(read_limited(&f, 2).is_err());
    }

    #[test]
    fn pem_round_trips() {
        let text = format!(
            "{}{}",
            pem_encode(PEM_CERTIFICATE, b"abc"),
            pem_encode(PEM_PRIVATE_KEY, b"k")
        );
        assert_eq!(
            pem_decode(text.as_bytes(), PEM_CERTIFICATE).unwrap(),
            vec![b"abc".to_vec()]
        );
        assert_eq!(
            pem_decode(text.as_bytes(), PEM_PRIVATE_KEY).unwrap(),
            vec![b"k".to_vec()]
        );
        assert!(pem_decode(b"-----BEGIN X-----\n!!\n-----END X-----\n", "X").is_err());
    }
}
