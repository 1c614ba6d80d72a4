//! `patchbay restore`: replaces the SQLite database with a backup (one `patchbay backup` made,
//! or any copy of a patchbay database), so that a crash at any point leaves a usable database
//! at the configured path: the old one or the new one, never a mix.
//!
//! The steps, in order:
//!
//! 1. Hold the database being replaced ([`ProcessRole::Restore`]): refused, naming the holder,
//!    while a bot or another restore holds it; a bot starting meanwhile refuses to start. A
//!    database that cannot be read (damaged, or not SQLite: what a restore is often for) or
//!    that predates process records cannot be held; the restore goes on and says so.
//! 2. Check the backup, opened read-only: SQLite's `integrity_check`, then its migration
//!    history against this build's: a migration this build does not know (a newer patchbay),
//!    one whose checksum differs (another build, or an edited file) or one that failed
//!    partway is refused.
//! 3. Copy it beside the database (`VACUUM INTO` a temporary file in the same directory, which
//!    also folds in a WAL the backup may carry), migrate the copy to this build's schema, clear
//!    the process records it carries (the processes that held the backup's source do not hold
//!    this database), and fsync it. The copy is written in rollback-journal mode, so it has no
//!    `-wal` of its own; the bot switches it to WAL when it opens it.
//! 4. Put the old database aside: checkpoint its WAL into the main file and close it, link the
//!    main file to `<database>.replaced-<UTC time>`, and move its `-wal` and `-shm` files to
//!    that name too (a WAL left at the database's path would be replayed into the restored
//!    file). Then rename the copy over the database (atomic) and fsync the directory.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection};

use super::process_leases::{HoldOutcome, ProcessLease, ProcessRole};
use super::{MIGRATOR, Store, StoreError, lease};

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup restored.
    pub from: PathBuf,
    /// The database file it became.
    pub database: PathBuf,
    /// The backup's schema version: its newest migration.
    pub backup_version: i64,
    /// The schema version now: this build's newest migration.
    pub version: i64,
    /// Migrations applied to bring the backup to it.
    pub applied: usize,
    /// Where the replaced database was kept; `None` when there was none.
    pub kept: Option<PathBuf>,
    /// Why the replaced database's holders could not be checked, when they could not.
    pub unchecked: Option<String>,
}

/// Why a restore was refused or failed. Nothing was replaced in any case.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The backup does not exist.
    #[error("{0}: no such file")]
    Missing(PathBuf),
    /// The backup is a directory or another kind of non-file.
    #[error("{0}: not a file")]
    NotAFile(PathBuf),
    /// The database URL is not a file (an in-memory database).
    #[error("{0}: not a database file; a backup can be restored into a sqlite:// file only")]
    NotAFileDatabase(String),
    /// The backup is the database itself.
    #[error("{0} is the database itself: name a backup to restore from")]
    SameFile(PathBuf),
    /// The backup is not a SQLite database.
    #[error("{path}: not a SQLite database ({detail})")]
    NotSqlite {
        /// The backup.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// A SQLite database, but not one patchbay made.
    #[error("{0}: a SQLite database, but not patchbay's: it has no migration history")]
    NotPatchbay(PathBuf),
    /// SQLite's integrity check found problems.
    #[error("{path}: damaged; SQLite's integrity check says: {}", .problems.join("; "))]
    Damaged {
        /// The backup.
        path: PathBuf,
        /// The first problems reported.
        problems: Vec<String>,
    },
    /// The backup has a migration this build does not know.
    #[error(
        "{path}: made by a newer patchbay (its migration {version} {description:?} is unknown to this one): upgrade patchbay first, then restore"
    )]
    Newer {
        /// The backup.
        path: PathBuf,
        /// The unknown migration.
        version: i64,
        /// Its description.
        description: String,
    },
    /// A migration of the backup differs from this build's.
    #[error(
        "{path}: its migration {version} {description:?} differs from this patchbay's (checksum mismatch): it was made by another build of patchbay, or changed by hand"
    )]
    Mismatch {
        /// The backup.
        path: PathBuf,
        /// The migration.
        version: i64,
        /// Its description.
        description: String,
    },
    /// A migration of the backup failed partway.
    #[error(
        "{path}: its migration {version} {description:?} failed partway, so its schema is incomplete: restore another backup"
    )]
    Dirty {
        /// The backup.
        path: PathBuf,
        /// The migration.
        version: i64,
        /// Its description.
        description: String,
    },
    /// Other processes hold the database.
    #[error("{} is in use by {}: stop it first, then restore", .database.display(), named(.holders))]
    Held {
        /// The database.
        database: PathBuf,
        /// Who holds it.
        holders: Vec<ProcessLease>,
    },
    /// A file operation failed.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        error: std::io::Error,
    },
    /// A database operation failed.
    #[error("{what}: {error}")]
    Database {
        /// What was being done.
        what: String,
        /// Why it failed.
        error: StoreError,
    },
}

/// The holders, one after the other.
fn named(holders: &[ProcessLease]) -> String {
    holders
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let what = what.into();
    move |error| RestoreError::Io { what, error }
}

fn database(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> RestoreError {
    let what = what.into();
    move |error| RestoreError::Database {
        what,
        error: StoreError::Database(error),
    }
}

/// SQLite's primary result code of a database error (`SQLITE_CORRUPT` is 11, `SQLITE_NOTADB`
/// 26), from the extended code sqlx reports.
fn primary_code(err: &sqlx::Error) -> Option<i32> {
    let sqlx::Error::Database(db) = err else {
        return None;
    };
    db.code()?.parse::<i32>().ok().map(|code| code & 0xff)
}

const SQLITE_CORRUPT: i32 = 11;
const SQLITE_NOTADB: i32 = 26;

/// Whether an error says the file is damaged or not a database at all (as opposed to locked,
/// unreadable or missing).
fn unreadable(err: &sqlx::Error) -> bool {
    matches!(primary_code(err), Some(SQLITE_CORRUPT | SQLITE_NOTADB))
}

/// `path` with `suffix` appended to its file name (`patchbay.db` and `-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Restores `backup` into the database at `url` (see the module's documentation for the steps).
/// `now` names the replaced database's new name.
pub async fn restore(
    backup: &Path,
    url: &str,
    now: DateTime<Utc>,
) -> Result<Restored, RestoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|_| RestoreError::NotAFileDatabase(url.to_string()))?;
    let target = options.get_filename().to_path_buf();
    if url.contains(":memory:") || url.contains("mode=memory") || target.as_os_str().is_empty() {
        return Err(RestoreError::NotAFileDatabase(url.to_string()));
    }
    match std::fs::metadata(backup) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(RestoreError::NotAFile(backup.to_path_buf())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(RestoreError::Missing(backup.to_path_buf()));
        }
        Err(err) => return Err(io(format!("reading {}", backup.display()))(err)),
    }
    let directory = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !directory.is_dir() {
        return Err(io(format!("{}", directory.display()))(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such directory",
        )));
    }
    if target.exists() && std::fs::canonicalize(backup).ok() == std::fs::canonicalize(&target).ok()
    {
        return Err(RestoreError::SameFile(backup.to_path_buf()));
    }

    // 1. Hold the database being replaced, so no bot runs on it or starts meanwhile.
    let current = if target.exists() {
        Some(Current::hold(url, &target, now).await?)
    } else {
        None
    };
    // 2. Check the backup; 3. a migrated copy beside the database.
    let copy = Scratch(with_suffix(&target, ".restoring"));
    let prepared = async {
        let backup_version = inspect(backup).await?;
        copy.clear()?;
        let applied = prepare_copy(backup, &copy.0).await?;
        Ok::<_, RestoreError>((backup_version, applied))
    }
    .await;
    let (backup_version, applied) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            if let Some(current) = current {
                current.release().await;
            }
            return Err(err);
        }
    };
    // 4. The old database aside, the copy in its place.
    let (kept, unchecked) = match current {
        Some(current) => {
            let unchecked = current.unchecked.clone();
            (Some(current.put_aside(&target, now).await?), unchecked)
        }
        None => (None, None),
    };
    std::fs::rename(&copy.0, &target).map_err(io(format!(
        "moving the restored copy to {}",
        target.display()
    )))?;
    std::fs::File::open(&directory)
        .and_then(|dir| dir.sync_all())
        .map_err(io(format!("syncing {}", directory.display())))?;
    Ok(Restored {
        from: backup.to_path_buf(),
        database: target,
        backup_version,
        version: MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0),
        applied,
        kept,
        unchecked,
    })
}

/// The database being replaced, held (when it can be) until it is put aside.
struct Current {
    /// Open, when it could be opened.
    store: Option<Store>,
    /// This restore's hold; `None` when it could not be taken.
    hold: Option<super::process_leases::DatabaseHold>,
    /// Why it could not be held.
    unchecked: Option<String>,
}

impl Current {
    /// Opens the database at `url` and holds it for the restore, refusing while another
    /// process holds it.
    async fn hold(url: &str, target: &Path, now: DateTime<Utc>) -> Result<Current, RestoreError> {
        let unreadable_current = |err: &sqlx::Error| Current {
            store: None,
            hold: None,
            unchecked: Some(format!(
                "it could not be read ({err}), so whether a patchbay runs on it was not checked"
            )),
        };
        let store = match Store::connect(url).await {
            Ok(store) => store,
            Err(StoreError::Database(err)) if unreadable(&err) => {
                return Ok(unreadable_current(&err));
            }
            Err(error) => {
                return Err(RestoreError::Database {
                    what: format!("opening {}", target.display()),
                    error,
                });
            }
        };
        // Which tables it has is SQLite's catalogue: this step is SQLite's alone.
        let recorded = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'process_leases'",
        )
        .fetch_one(&store.pool)
        .await;
        let recorded = match recorded {
            Ok(count) => count > 0,
            Err(err) if unreadable(&err) => {
                store.close().await;
                return Ok(unreadable_current(&err));
            }
            Err(err) => return Err(database(format!("reading {}", target.display()))(err)),
        };
        if !recorded {
            return Ok(Current {
                store: Some(store),
                hold: None,
                unchecked: Some(
                    "it predates patchbay's process records, so whether an older patchbay runs on it was not checked"
                        .into(),
                ),
            });
        }
        let outcome = store
            .hold_database(
                ProcessRole::Restore,
                &lease::holder_id(),
                now,
                lease::holder_is_dead,
            )
            .await
            .map_err(|error| RestoreError::Database {
                what: format!("holding {}", target.display()),
                error,
            })?;
        match outcome {
            HoldOutcome::Held { hold, .. } => Ok(Current {
                store: Some(store),
                hold: Some(hold),
                unchecked: None,
            }),
            HoldOutcome::Refused(holders) => {
                store.close().await;
                Err(RestoreError::Held {
                    database: target.to_path_buf(),
                    holders,
                })
            }
        }
    }

    /// Lets the database go untouched: a restore that was refused or failed.
    async fn release(self) {
        if let Some(hold) = self.hold
            && let Err(err) = hold.release().await
        {
            tracing::warn!(error = %err, "could not release the restore's hold on the database");
        }
        if let Some(store) = self.store {
            store.close().await;
        }
    }

    /// Checkpoints and closes the database, then keeps it as `<target>.replaced-<now>` with
    /// its `-wal` and `-shm` files; `target` itself stays in place (a second name of the same
    /// file) until the restored copy is renamed over it. Returns the kept name.
    async fn put_aside(self, target: &Path, now: DateTime<Utc>) -> Result<PathBuf, RestoreError> {
        // The hold's row stays in the kept file; it names this process, gone once it exits.
        drop(self.hold);
        if let Some(store) = self.store {
            // Everything committed goes into the main file, so the WAL is empty (or absent once
            // the last connection closes). Should another process still have it open, the WAL
            // moves with the file below and the kept database stays whole.
            let checkpoint = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&store.pool)
                .await;
            store.close().await;
            if let Err(err) = checkpoint
                && !unreadable(&err)
            {
                return Err(database(format!("checkpointing {}", target.display()))(err));
            }
        }
        let stamp = now.format("%Y%m%dT%H%M%SZ");
        let mut kept = with_suffix(target, &format!(".replaced-{stamp}"));
        let mut attempt = 1;
        while kept.exists() || with_suffix(&kept, "-wal").exists() {
            attempt += 1;
            kept = with_suffix(target, &format!(".replaced-{stamp}-{attempt}"));
        }
        // A second name for the old file: the database's own path holds it until the copy
        // replaces it in one rename. Where the file system has no hard links, it is moved.
        if std::fs::hard_link(target, &kept).is_err() {
            std::fs::rename(target, &kept).map_err(io(format!(
                "keeping {} as {}",
                target.display(),
                kept.display()
            )))?;
        }
        for suffix in ["-wal", "-shm"] {
            let file = with_suffix(target, suffix);
            if file.exists() {
                std::fs::rename(&file, with_suffix(&kept, suffix)).map_err(io(format!(
                    "moving {} beside {}",
                    file.display(),
                    kept.display()
                )))?;
            }
        }
        Ok(kept)
    }
}

/// Checks the backup read-only: integrity, then its migrations against this build's. Returns
/// its schema version (its newest migration).
async fn inspect(path: &Path) -> Result<i64, RestoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    let classify = |err: sqlx::Error| match primary_code(&err) {
        Some(SQLITE_NOTADB) => RestoreError::NotSqlite {
            path: path.to_path_buf(),
            detail: db_message(&err),
        },
        Some(SQLITE_CORRUPT) => RestoreError::Damaged {
            path: path.to_path_buf(),
            problems: vec![db_message(&err)],
        },
        _ => database(format!("reading {}", path.display()))(err),
    };
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(classify)?;
    // At most 10 problems: the first ones say enough.
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check(10)")
        .fetch_all(&mut conn)
        .await
        .map_err(classify)?;
    if verdict != ["ok"] {
        return Err(RestoreError::Damaged {
            path: path.to_path_buf(),
            problems: verdict,
        });
    }
    let has_history: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(classify)?;
    if has_history == 0 {
        return Err(RestoreError::NotPatchbay(path.to_path_buf()));
    }
    let rows = sqlx::query(
        "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(classify)?;
    conn.close().await.ok();
    let mut version = None;
    for row in &rows {
        let number: i64 = row.try_get("version").map_err(classify)?;
        let description: String = row.try_get("description").map_err(classify)?;
        let success: bool = row.try_get("success").map_err(classify)?;
        let checksum: Vec<u8> = row.try_get("checksum").map_err(classify)?;
        let path = path.to_path_buf();
        let Some(ours) = MIGRATOR.iter().find(|m| m.version == number) else {
            return Err(RestoreError::Newer {
                path,
                version: number,
                description,
            });
        };
        if ours.checksum.as_ref() != checksum.as_slice() {
            return Err(RestoreError::Mismatch {
                path,
                version: number,
                description,
            });
        }
        if !success {
            return Err(RestoreError::Dirty {
                path,
                version: number,
                description,
            });
        }
        version = Some(number);
    }
    version.ok_or_else(|| RestoreError::NotPatchbay(path.to_path_buf()))
}

/// SQLite's own message of a database error, without sqlx's code prefix.
fn db_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

/// Copies `backup` to `copy` and brings the copy to this build's schema; returns how many
/// migrations that applied.
async fn prepare_copy(backup: &Path, copy: &Path) -> Result<usize, RestoreError> {
    let what = || format!("copying {} to {}", backup.display(), copy.display());
    let destination = copy
        .to_str()
        .ok_or_else(|| io(what())(std::io::Error::other("the path is not UTF-8")))?;
    let mut source = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(backup)
            .read_only(true)
            .create_if_missing(false),
    )
    .await
    .map_err(database(what()))?;
    sqlx::query("VACUUM INTO $1")
        .bind(destination)
        .execute(&mut source)
        .await
        .map_err(database(what()))?;
    source.close().await.ok();

    let what = || format!("migrating the restored copy {}", copy.display());
    // Rollback-journal mode and full syncs: every commit is in the file when it returns, and
    // no `-wal` is left to travel with it.
    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(copy)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Delete)
            .synchronous(SqliteSynchronous::Full),
    )
    .await
    .map_err(database(what()))?;
    let before = migration_count(&mut conn).await.map_err(database(what()))?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|error| RestoreError::Database {
            what: what(),
            error: StoreError::Migrate(error),
        })?;
    let after = migration_count(&mut conn).await.map_err(database(what()))?;
    // The processes that held the backup's source do not hold this database.
    sqlx::query("DELETE FROM process_leases")
        .execute(&mut conn)
        .await
        .map_err(database(what()))?;
    conn.close().await.map_err(database(what()))?;
    std::fs::File::open(copy)
        .and_then(|file| file.sync_all())
        .map_err(io(format!("syncing {}", copy.display())))?;
    Ok(usize::try_from(after - before).unwrap_or(0))
}

/// How many migrations a database has applied.
async fn migration_count(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(conn)
        .await
}

/// A temporary file of the restore, removed (with its journal) unless it was renamed into
/// place.
struct Scratch(PathBuf);

impl Scratch {
    /// Removes what a restore that died midway may have left under this name.
    fn clear(&self) -> Result<(), RestoreError> {
        for file in [self.0.clone(), with_suffix(&self.0, "-journal")] {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(io(format!("removing {}", file.display()))(err)),
            }
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // After the rename there is nothing under this name; before it, the copy is discarded.
        let _ = self.clear();
    }
}
