//! A peer's stored values on disk: [`RedbBackend`], a [`StorageBackend`] over a redb
//! database.
//!
//! The database has one table, `records`: the bytes of a Resource-ID to the record
//! of everything held there ([`reload_core::storage::persist::encode_record`]). A
//! batch of [`StorageChange`]s is one write transaction committed with
//! [`Durability::Immediate`], so [`StorageBackend::apply`] returns only once the whole
//! batch is on disk (redb syncs the file before `commit` returns), and a crash leaves
//! either all of it or none of it.
//!
//! Replicas are the exception. [`RedbBackend::apply_lazily`] commits without the
//! sync ([`Durability::None`]), and [`RedbBackend::sync`] later makes everything
//! committed so far durable at once. The runtime uses it for batches that touch
//! only values this peer holds as a replica (RFC 6940 §10.4): their StoreAns goes
//! to the responsible peer, which holds the value durably and has already answered
//! the storing node, so the replica's sync backs no acknowledgement anyone relies
//! on. A crash loses at most the replicas taken since the last sync, as if the
//! peer had failed a little earlier, and replica maintenance (§10.7.3) stores them
//! again once the peer is back.
//!
//! After a crash redb repairs the file when it is next opened (it walks the trees and
//! checks their checksums); the last batch whose `apply` returned is there.
//!
//! # Keys that are not Resource-IDs
//!
//! A key longer than a Resource-ID may be ([`ResourceId::MAX_LEN`]) cannot come from
//! this code. [`RedbBackend::load`] skips such a record, logs it (`tracing`, warn) and
//! counts it in [`Loaded::invalid_keys`] rather than failing the whole load: one bad
//! entry should not keep a peer from restoring everything else. The entry is left in
//! the file untouched for whoever investigates.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use redb::backends::{FileBackend, InMemoryBackend};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use reload_core::storage::{StorageBackend, StorageChange};
use reload_wire::ResourceId;

/// The one table: Resource-ID bytes → record bytes.
const RECORDS: TableDefinition<'static, &'static [u8], &'static [u8]> = TableDefinition::new("records");

/// redb's page cache. Its default, 1 GiB, is far more than a peer's store needs; the
/// cache only grows to this as pages are read.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Why the storage database could not be opened, read or written. Each message names
/// the database (its path, or "in-memory") and what redb or the OS said.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedbError {
    /// The directory that should hold the database could not be created.
    #[error("cannot create the directory {} for the storage database: {cause}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// What the OS said.
        cause: io::Error,
    },
    /// The database file could not be created or opened.
    #[error("cannot open the storage database file {}: {cause}", path.display())]
    OpenFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        cause: io::Error,
    },
    /// redb refused the file: another process has it open, it is not a redb database,
    /// it is damaged beyond repair, or its format is too old.
    #[error("cannot open the storage database {location}: {cause}")]
    Open {
        /// The path, or "in-memory".
        location: String,
        /// What redb said.
        cause: redb::Error,
    },
    /// Reading the records failed.
    #[error("cannot read the storage database {location}: {cause}")]
    Read {
        /// The path, or "in-memory".
        location: String,
        /// What redb said.
        cause: redb::Error,
    },
    /// A batch of changes could not be committed. None of it is acknowledged; redb
    /// may nevertheless have made it durable, and refuses further writes until the
    /// database is reopened (which repairs it).
    #[error("cannot write to the storage database {location} (reopen it to recover): {cause}")]
    Write {
        /// The path, or "in-memory".
        location: String,
        /// What redb said.
        cause: redb::Error,
    },
}

/// What [`RedbBackend::load_all`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Every record, by Resource-ID, in key order.
    pub records: Vec<(ResourceId, Vec<u8>)>,
    /// Entries skipped because their key is not a Resource-ID (longer than
    /// [`ResourceId::MAX_LEN`]).
    pub invalid_keys: usize,
}

/// Where the database lives, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    Memory,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Memory => f.write_str("in-memory"),
        }
    }
}

/// A peer's records in a redb database (see the [module docs](self)).
pub struct RedbBackend {
    db: Database,
    location: Location,
    /// Whether something was committed lazily since the last sync.
    unsynced: bool,
}

impl fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbBackend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl RedbBackend {
    /// Opens the database at `path`, creating it (and its directory) if need be.
    ///
    /// On Unix a new file is created with mode 0600 (owner read and write only), and
    /// an existing file that others may read is restricted to that.
    ///
    /// Every open checks the whole file (redb's integrity check: the checksum of every
    /// page, and the allocator state rebuilt), so a file damaged outside redb is
    /// refused with an error where a plain redb open may panic; after a crash the
    /// same pass repairs the file. It reads the whole file once, which a peer's store
    /// (megabytes) makes cheap.
    ///
    /// Only one `RedbBackend` may have a file open at a time: a second open, in this
    /// process or another, fails with [`RedbError::Open`] ("already open").
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RedbError> {
        let path = path.as_ref().to_path_buf();
        let location = Location::File(path.clone());
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            fs::create_dir_all(dir).map_err(|cause| RedbError::CreateDir {
                dir: dir.to_path_buf(),
                cause,
            })?;
        }
        let (file, created) = open_file(&path).map_err(|cause| RedbError::OpenFile {
            path: path.clone(),
            cause,
        })?;
        if created {
            // The new directory entry must outlive a power cut as well as the data.
            sync_dir(dir.unwrap_or(Path::new("."))).map_err(|cause| RedbError::OpenFile {
                path: path.clone(),
                cause,
            })?;
        } else {
            restrict_to_owner(&file, &path);
        }
        let open_err = |cause: redb::Error| RedbError::Open {
            location: location.to_string(),
            cause,
        };
        let backend = FileBackend::new(file).map_err(|e| open_err(e.into()))?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create_with_backend(backend)
            .map_err(|e| open_err(e.into()))?;
        Self::with_database(db, location)
    }

    /// A database in memory (redb's `InMemoryBackend`), for tests: the same code
    /// paths as a file, without the disk. Its records go when it is dropped.
    pub fn in_memory() -> Result<Self, RedbError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(InMemoryBackend::new())
            .map_err(|e| RedbError::Open {
                location: Location::Memory.to_string(),
                cause: e.into(),
            })?;
        Self::with_database(db, Location::Memory)
    }

    /// Creates the table if the database is new, so that reads never find it missing.
    fn with_database(db: Database, location: Location) -> Result<Self, RedbError> {
        let backend = RedbBackend {
            db,
            location,
            unsynced: false,
        };
        backend.write(Durability::Immediate, |_| Ok(()))?;
        Ok(backend)
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::File(p) => Some(p),
            Location::Memory => None,
        }
    }

    /// Every record, with a count of the entries skipped because their key is not a
    /// Resource-ID (each is also logged). [`StorageBackend::load`] is this without
    /// the count.
    pub fn load_all(&self) -> Result<Loaded, RedbError> {
        let read_err = |cause: redb::Error| RedbError::Read {
            location: self.location.to_string(),
            cause,
        };
        let txn = self.db.begin_read().map_err(|e| read_err(e.into()))?;
        let table = txn.open_table(RECORDS).map_err(|e| read_err(e.into()))?;
        let mut loaded = Loaded::default();
        for entry in table.iter().map_err(|e| read_err(e.into()))? {
            let (key, value) = entry.map_err(|e| read_err(e.into()))?;
            let key = key.value();
            match ResourceId::new(key.to_vec()) {
                Some(resource) => loaded.records.push((resource, value.value().to_vec())),
                None => {
                    loaded.invalid_keys += 1;
                    tracing::warn!(
                        database = %self.location,
                        key_len = key.len(),
                        "skipping a stored record whose key is not a Resource-ID (longer than {} bytes)",
                        ResourceId::MAX_LEN
                    );
                }
            }
        }
        Ok(loaded)
    }

    /// Applies the batch in one write transaction without syncing it to disk: it is
    /// seen by reads at once and becomes durable with the next [`RedbBackend::sync`]
    /// or durable [`StorageBackend::apply`]. For replicas only (see the
    /// [module docs](self)).
    pub fn apply_lazily(&mut self, changes: &[StorageChange]) -> Result<(), RedbError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.write(Durability::None, |table| put_all(table, changes))?;
        self.unsynced = true;
        Ok(())
    }

    /// Makes everything committed so far durable; does nothing (and costs no sync)
    /// when nothing was committed lazily since the last sync.
    pub fn sync(&mut self) -> Result<(), RedbError> {
        if self.unsynced {
            // A durable commit makes the lazy commits before it durable too.
            self.write(Durability::Immediate, |_| Ok(()))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Whether lazily committed changes wait for [`RedbBackend::sync`].
    pub fn has_unsynced(&self) -> bool {
        self.unsynced
    }

    /// Runs `f` on the table in one write transaction and commits it with
    /// `durability`. Anything `f` did is rolled back if it fails.
    fn write<F>(&self, durability: Durability, f: F) -> Result<(), RedbError>
    where
        F: FnOnce(&mut redb::Table<'_, &'static [u8], &'static [u8]>) -> Result<(), redb::StorageError>,
    {
        let write_err = |cause: redb::Error| RedbError::Write {
            location: self.location.to_string(),
            cause,
        };
        let mut txn = self.db.begin_write().map_err(|e| write_err(e.into()))?;
        // Immediate is redb's default; say so, since acknowledgements depend on it.
        txn.set_durability(durability).map_err(|e| write_err(e.into()))?;
        {
            let mut table = txn.open_table(RECORDS).map_err(|e| write_err(e.into()))?;
            // On error the transaction is dropped unfinished, which aborts it.
            f(&mut table).map_err(|e| write_err(e.into()))?;
        }
        txn.commit().map_err(|e| write_err(e.into()))
    }
}

impl StorageBackend for RedbBackend {
    type Error = RedbError;

    /// Every record. Entries whose key is not a Resource-ID are skipped and logged
    /// (see the [module docs](self)); [`RedbBackend::load_all`] also counts them.
    fn load(&self) -> Result<Vec<(ResourceId, Vec<u8>)>, RedbError> {
        self.load_all().map(|l| l.records)
    }

    /// Applies the batch in one write transaction, synced to disk before it returns.
    /// An empty batch does nothing (and costs no sync).
    fn apply(&mut self, changes: &[StorageChange]) -> Result<(), RedbError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.write(Durability::Immediate, |table| put_all(table, changes))?;
        // The sync covered the lazy commits before it too.
        self.unsynced = false;
        Ok(())
    }
}

/// Writes `changes` into `table`, in order.
fn put_all(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    changes: &[StorageChange],
) -> Result<(), redb::StorageError> {
    for change in changes {
        match change {
            StorageChange::Put { resource, record } => {
                table.insert(resource.as_bytes(), record.as_slice())?;
            }
            StorageChange::Remove { resource } => {
                table.remove(resource.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// Opens `path` for reading and writing, creating it (mode 0600 on Unix) if it does
/// not exist; says whether it was created.
fn open_file(path: &Path) -> io::Result<(File, bool)> {
    let mut create = OpenOptions::new();
    create.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        create.mode(0o600);
    }
    match create.open(path) {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let file = OpenOptions::new().read(true).write(true).open(path)?;
            Ok((file, false))
        }
        Err(e) => Err(e),
    }
}

/// Restricts an existing file that group or others may access to its owner. A
/// failure (the file belongs to someone else) is logged, not fatal: the file can be
/// used all the same.
fn restrict_to_owner(file: &File, path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match file.metadata() {
            Ok(m) => m.permissions().mode(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the storage database's permissions");
                return;
            }
        };
        if mode & 0o077 != 0
            && let Err(e) = file.set_permissions(fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{:o}", mode & 0o777),
                error = %e,
                "cannot restrict the storage database to its owner (mode 0600)"
            );
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
    }
}

/// Syncs a directory, so that a file just created in it survives a power cut.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Windows cannot open a directory as a file; NTFS journals the entry.
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(n: u8) -> ResourceId {
        ResourceId::new(vec![n; 16]).expect("16 bytes")
    }

    fn put(n: u8, record: &[u8]) -> StorageChange {
        StorageChange::Put {
            resource: rid(n),
            record: record.to_vec(),
        }
    }

    fn remove(n: u8) -> StorageChange {
        StorageChange::Remove { resource: rid(n) }
    }

    #[test]
    fn put_remove_load_round_trip() {
        let mut b = RedbBackend::in_memory().expect("in-memory database");
        assert!(b.load().expect("load").is_empty(), "a new database is empty");
        b.apply(&[put(1, b"one"), put(2, b"two"), put(3, b"three")])
            .expect("apply");
        b.apply(&[remove(2), put(1, b"one again")]).expect("apply");
        b.apply(&[remove(9)]).expect("removing what is absent is fine");
        assert_eq!(
            b.load().expect("load"),
            vec![(rid(1), b"one again".to_vec()), (rid(3), b"three".to_vec())]
        );
    }

    #[test]
    fn later_changes_in_a_batch_win() {
        let mut b = RedbBackend::in_memory().expect("in-memory database");
        b.apply(&[put(1, b"a"), remove(1), put(2, b"b"), put(2, b"c")])
            .expect("apply");
        assert_eq!(b.load().expect("load"), vec![(rid(2), b"c".to_vec())]);
    }

    #[test]
    fn an_empty_batch_changes_nothing() {
        let mut b = RedbBackend::in_memory().expect("in-memory database");
        b.apply(&[put(1, b"a")]).expect("apply");
        b.apply(&[]).expect("apply nothing");
        assert_eq!(b.load().expect("load"), vec![(rid(1), b"a".to_vec())]);
    }

    #[test]
    fn a_failing_batch_leaves_nothing_behind() {
        let mut b = RedbBackend::in_memory().expect("in-memory database");
        b.apply(&[put(1, b"before")]).expect("apply");
        // Make a batch fail half-way, in the code path `apply` uses.
        let failed = b.write(Durability::Immediate, |table| {
            table.insert(rid(1).as_bytes(), b"changed".as_slice())?;
            table.insert(rid(2).as_bytes(), b"new".as_slice())?;
            Err(redb::StorageError::Corrupted("injected failure".into()))
        });
        let err = failed.expect_err("the batch fails");
        assert!(err.to_string().contains("in-memory"), "{err}");
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert_eq!(
            b.load().expect("load"),
            vec![(rid(1), b"before".to_vec())],
            "none of the failed batch is visible"
        );
        b.apply(&[put(3, b"after")])
            .expect("writes go on after an aborted batch");
        assert_eq!(b.load().expect("load").len(), 2);
    }

    #[test]
    fn reopening_the_file_sees_the_data() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("nested").join("store.redb");
        {
            let mut b = RedbBackend::open(&path).expect("create");
            assert_eq!(b.path(), Some(path.as_path()));
            b.apply(&[put(1, b"one"), put(2, b"two")]).expect("apply");
            b.apply(&[remove(1)]).expect("apply");
        }
        let mut b = RedbBackend::open(&path).expect("reopen");
        assert_eq!(b.load().expect("load"), vec![(rid(2), b"two".to_vec())]);
        b.apply(&[put(3, b"three")]).expect("apply after reopening");
        drop(b);
        let b = RedbBackend::open(&path).expect("reopen again");
        assert_eq!(b.load().expect("load").len(), 2);
    }

    #[test]
    fn lazy_commits_are_read_at_once_and_kept_once_synced() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.redb");
        {
            let mut b = RedbBackend::open(&path).expect("create");
            assert!(!b.has_unsynced());
            b.apply_lazily(&[put(1, b"replica")]).expect("lazy apply");
            assert!(b.has_unsynced());
            assert_eq!(b.load().expect("load"), vec![(rid(1), b"replica".to_vec())]);
            b.sync().expect("sync");
            assert!(!b.has_unsynced());
            b.apply_lazily(&[put(2, b"second")]).expect("lazy apply");
            // A durable batch makes the lazy ones before it durable as well.
            b.apply(&[put(3, b"primary")]).expect("apply");
            assert!(!b.has_unsynced());
            b.apply_lazily(&[]).expect("empty");
            assert!(!b.has_unsynced(), "an empty batch leaves nothing to sync");
        }
        let b = RedbBackend::open(&path).expect("reopen");
        let keys: Vec<_> = b.load().expect("load").into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![rid(1), rid(2), rid(3)]);
    }

    #[test]
    fn a_file_is_open_once() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.redb");
        let _first = RedbBackend::open(&path).expect("create");
        let err = RedbBackend::open(&path).expect_err("a second open is refused");
        assert!(matches!(err, RedbError::Open { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.to_lowercase().contains("already open"), "{text}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.redb");
        fs::write(&path, vec![0x5a; 64 * 1024]).expect("write junk");
        let err = RedbBackend::open(&path).expect_err("junk is refused");
        assert!(matches!(err, RedbError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn a_directory_in_the_way_is_explained() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"not a directory").expect("write");
        let err = RedbBackend::open(blocker.join("store.redb")).expect_err("cannot create the directory");
        assert!(
            matches!(err, RedbError::CreateDir { .. } | RedbError::OpenFile { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&blocker.display().to_string()), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.redb");
        drop(RedbBackend::open(&path).expect("create"));
        let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        drop(RedbBackend::open(&path).expect("reopen"));
        assert_eq!(mode(&path), 0o600, "an existing file is restricted too");
    }

    #[test]
    fn a_key_that_is_not_a_resource_id_is_skipped_and_counted() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("store.redb");
        {
            let mut b = RedbBackend::open(&path).expect("create");
            b.apply(&[put(1, b"one"), put(2, b"two")]).expect("apply");
            // Something other than this code wrote a 300-byte key.
            b.write(Durability::Immediate, |table| {
                table.insert([7u8; 300].as_slice(), b"stray".as_slice())?;
                Ok(())
            })
            .expect("write the stray entry");
        }
        let b = RedbBackend::open(&path).expect("reopen");
        let loaded = b.load_all().expect("the load succeeds");
        assert_eq!(loaded.invalid_keys, 1);
        assert_eq!(
            loaded.records,
            vec![(rid(1), b"one".to_vec()), (rid(2), b"two".to_vec())]
        );
        assert_eq!(b.load().expect("load"), loaded.records);
        // The stray entry is left where it was.
        assert_eq!(b.load_all().expect("load").invalid_keys, 1);
    }

    #[test]
    fn in_memory_databases_are_separate() {
        let mut a = RedbBackend::in_memory().expect("a");
        let b = RedbBackend::in_memory().expect("b");
        assert_eq!(a.path(), None);
        a.apply(&[put(1, b"x")]).expect("apply");
        assert_eq!(a.load().expect("load").len(), 1);
        assert!(b.load().expect("load").is_empty());
    }
}
