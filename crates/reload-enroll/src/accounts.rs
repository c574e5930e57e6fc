//! Enrollment accounts (RFC 6940 §11.3): user names, their argon2 password hashes,
//! and the Node-IDs each user was given.
//!
//! # User names
//!
//! §11.3 puts one user name in each certificate, as an rfc822Name, and asks the
//! enrollment server to allow only legal characters. p2psip's rule: an account name
//! is 1 to 64 characters of `a-z`, `0-9`, `.`, `_` and `-`, beginning with a letter
//! or digit; the certificate's user name is `NAME@OVERLAY`. So the name is a valid
//! local part of an e-mail address and of a SIP AOR (RFC 7904), and two accounts can
//! never map to one certificate name.
//!
//! # Files
//!
//! `accounts.toml` holds the password hashes (PHC strings, Argon2id); only the CA
//! tool writes it. `nodeids.toml` holds the Node-IDs given to each user; only the
//! enrollment server writes it. Keeping the writers apart lets `ca add-user` run
//! while the server runs. Both files are mode 0600 and replaced atomically.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use reload_wire::{NodeId, hex};
use serde::{Deserialize, Serialize};

use crate::files::{FileError, PRIVATE_FILE, read_limited, write_atomic};

/// The longest account name.
pub const MAX_USER_LEN: usize = 64;
/// The longest password accepted (bytes).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// The largest accounts or Node-ID file read.
const MAX_FILE: usize = 16 * 1024 * 1024;

/// What is wrong with an account operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The user name breaks the rule (see the module documentation).
    #[error(
        "illegal user name {0:?}: use 1 to {MAX_USER_LEN} characters of a-z, 0-9, '.', '_' and '-', beginning with a letter or digit"
    )]
    IllegalUserName(String),
    /// The password is empty or too long.
    #[error("the password must be 1 to {MAX_PASSWORD_LEN} bytes long")]
    IllegalPassword,
    /// Adding a user that exists, without asking to replace it.
    #[error("user {0:?} already exists (replace its password explicitly to change it)")]
    Exists(String),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A file is not what it should be.
    #[error("{file}: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// No randomness for Node-IDs.
    #[error("no randomness available for Node-IDs")]
    Random,
}

/// Checks an account name against the rule in the module documentation.
pub fn check_user_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USER_LEN
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AccountError::IllegalUserName(name.chars().take(80).collect()))
    }
}

/// The user name a certificate for account `name` carries: `name@overlay` (§11.3).
pub fn certificate_user(name: &str, overlay: &str) -> String {
    format!("{name}@{}", overlay.to_ascii_lowercase())
}

/// An Argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(AccountError::IllegalPassword);
    }
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| AccountError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (false if `phc` is malformed).
/// §11.3: passwords are compared as binary objects, so no normalization.
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, checked against when a user does not exist, so
/// that a refusal takes as long for an unknown user as for a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut secret = [0u8; 16];
        let _ = SystemRandom::new().fill(&mut secret);
        hash_password(&hex::encode(&secret)).unwrap_or_default()
    })
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AccountsFile {
    #[serde(default)]
    users: BTreeMap<String, AccountEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccountEntry {
    /// The Argon2id hash, as a PHC string.
    password: String,
}

/// The accounts of `accounts.toml`.
#[derive(Debug, Default)]
pub struct Accounts {
    file: AccountsFile,
}

impl Accounts {
    /// Reads `path`; a missing file is no accounts.
    pub fn load(path: &Path) -> Result<Accounts, AccountError> {
        if !path.exists() {
            return Ok(Accounts::default());
        }
        let bytes = read_limited(path, MAX_FILE)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(path, e))?;
        let file: AccountsFile = toml::from_str(text).map_err(|e| corrupt(path, e))?;
        Ok(Accounts { file })
    }

    /// Writes `path` atomically, mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), AccountError> {
        let body = toml::to_string(&self.file).map_err(|e| AccountError::Hash(e.to_string()))?;
        let text = format!(
            "# p2psip enrollment accounts (RFC 6940 §11.3): user name -> Argon2id password hash.\n\
             # Written by `p2psip ca add-user`.\n{body}"
        );
        write_atomic(path, text.as_bytes(), PRIVATE_FILE)?;
        Ok(())
    }

    /// Adds `name` with `password` (hashed), or replaces its password if `replace`.
    pub fn add(&mut self, name: &str, password: &str, replace: bool) -> Result<(), AccountError> {
        check_user_name(name)?;
        if !replace && self.file.users.contains_key(name) {
            return Err(AccountError::Exists(name.to_owned()));
        }
        let password = hash_password(password)?;
        self.file.users.insert(name.to_owned(), AccountEntry { password });
        Ok(())
    }

    /// Whether `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.file.users.contains_key(name)
    }

    /// The account names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.file.users.keys().map(String::as_str)
    }

    /// Whether `name` exists and `password` is its password. Costs one Argon2
    /// verification either way.
    pub fn authenticate(&self, name: &str, password: &str) -> bool {
        match self.file.users.get(name) {
            Some(entry) => verify_password(&entry.password, password),
            None => {
                let _ = verify_password(decoy_hash(), password);
                false
            }
        }
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> AccountError {
    AccountError::Corrupt {
        file: path.display().to_string(),
        reason: e.to_string(),
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct NodeIdsFile {
    /// User name -> Node-IDs in hexadecimal, in the order they were given.
    #[serde(default)]
    users: BTreeMap<String, Vec<String>>,
}

/// The Node-IDs given to each user (`nodeids.toml`), so that a returning user gets
/// the same ones again (§11.3).
#[derive(Debug, Default)]
pub struct NodeIdStore {
    users: BTreeMap<String, Vec<NodeId>>,
}

impl NodeIdStore {
    /// Reads `path`; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<NodeIdStore, AccountError> {
        if !path.exists() {
            return Ok(NodeIdStore::default());
        }
        let bytes = read_limited(path, MAX_FILE)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(path, e))?;
        let file: NodeIdsFile = toml::from_str(text).map_err(|e| corrupt(path, e))?;
        let mut users = BTreeMap::new();
        for (user, ids) in file.users {
            let ids = ids
                .iter()
                .map(|h| NodeId::from_hex(h).ok_or_else(|| corrupt(path, format!("{user}: {h:?} is not a Node-ID"))))
                .collect::<Result<Vec<_>, _>>()?;
            users.insert(user, ids);
        }
        Ok(NodeIdStore { users })
    }

    /// Writes `path` atomically, mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), AccountError> {
        let file = NodeIdsFile {
            users: self
                .users
                .iter()
                .map(|(u, ids)| (u.clone(), ids.iter().map(|n| hex::encode(n.as_bytes())).collect()))
                .collect(),
        };
        let body = toml::to_string(&file).map_err(|e| AccountError::Hash(e.to_string()))?;
        let text = format!(
            "# p2psip enrollment server: the Node-IDs given to each user (RFC 6940 §11.3).\n\
             # Written by `p2psip enroll-server`; a returning user gets the same ones.\n{body}"
        );
        write_atomic(path, text.as_bytes(), PRIVATE_FILE)?;
        Ok(())
    }

    /// The Node-IDs of `user`.
    pub fn get(&self, user: &str) -> &[NodeId] {
        self.users.get(user).map_or(&[], Vec::as_slice)
    }

    /// `count` Node-IDs for `user`: the ones given before, then new ones —
    /// cryptographically random (§11.3), never the all-zero or all-one IDs, never
    /// one given to anybody before. Returns them and whether any are new.
    pub fn assign(&mut self, user: &str, count: usize) -> Result<(Vec<NodeId>, bool), AccountError> {
        let have = self.get(user).len();
        let mut fresh = Vec::new();
        let rng = SystemRandom::new();
        while have + fresh.len() < count {
            let mut b = [0u8; reload_wire::NODE_ID_LEN];
            rng.fill(&mut b).map_err(|_| AccountError::Random)?;
            let id = NodeId(b);
            let taken = id == NodeId::ZERO
                || id.is_wildcard()
                || fresh.contains(&id)
                || self.users.values().any(|ids| ids.contains(&id));
            if !taken {
                fresh.push(id);
            }
        }
        let added = !fresh.is_empty();
        let ids = self.users.entry(user.to_owned()).or_default();
        ids.extend(fresh);
        Ok((ids.iter().take(count).copied().collect(), added))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn user_names_follow_the_rule() {
        for ok in ["alice", "a", "bob.smith", "x_1-2", &"a".repeat(64)] {
            check_user_name(ok).unwrap();
        }
        for bad in [
            "",
            "Alice",
            "-x",
            ".x",
            "a b",
            "a@b",
            "a\0b",
            "é",
            &"a".repeat(65),
            "a/b",
        ] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            certificate_user("alice", "Overlay.Example.org"),
            "alice@overlay.example.org"
        );
    }

    #[test]
    fn passwords_are_hashed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.toml");
        let mut a = Accounts::load(&path).unwrap();
        a.add("alice", "correct horse", false).unwrap();
        assert!(matches!(a.add("alice", "x", false), Err(AccountError::Exists(_))));
        assert!(matches!(
            a.add("Bad", "x", false),
            Err(AccountError::IllegalUserName(_))
        ));
        assert!(matches!(a.add("bob", "", false), Err(AccountError::IllegalPassword)));
        a.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("$argon2id$") && !text.contains("correct horse"));
        let a = Accounts::load(&path).unwrap();
        assert!(a.authenticate("alice", "correct horse"));
        assert!(!a.authenticate("alice", "correct horse "));
        assert!(!a.authenticate("nobody", "correct horse"));
    }

    #[test]
    fn a_user_gets_the_same_node_ids_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodeids.toml");
        let mut s = NodeIdStore::load(&path).unwrap();
        let (one, added) = s.assign("alice", 1).unwrap();
        assert!(added);
        let (two, added) = s.assign("alice", 2).unwrap();
        assert!(added);
        assert_eq!(two[0], one[0]);
        let (bob, _) = s.assign("bob", 2).unwrap();
        assert!(!bob.contains(&one[0]) && !bob.contains(&two[1]));
        s.save(&path).unwrap();
        let mut s = NodeIdStore::load(&path).unwrap();
        let (again, added) = s.assign("alice", 2).unwrap();
        assert!(!added);
        assert_eq!(again, two);
        assert_eq!(s.assign("alice", 1).unwrap().0, one);
    }
}
