//! The processes holding the database (migration `0010_process_leases.sql`): `patchbay run`
//! while it runs, `patchbay restore` while it replaces the file. A restore is refused while any
//! other process holds the database, and a bot refuses to start while a restore holds it; both
//! name the holder (host, pid, since when).
//!
//! A hold is a row renewed every third of [`PROCESS_LEASE_TTL`] by a task of its own and
//! deleted at a clean stop. A holder counts while its row has not lapsed and its process is not
//! known to be gone ([`super::lease::holder_is_dead`]: a pid that no longer exists on this
//! host), so neither a crash nor a `kill -9` leaves the database blocked: on this host not at
//! all, from another host for at most the lease's length.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use tracing::instrument;

use super::{Store, StoreError, from_millis, millis};

/// How long a hold lasts unless renewed; it is renewed every third of that.
pub const PROCESS_LEASE_TTL: Duration = Duration::from_secs(30);

/// Why a process holds the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRole {
    /// `patchbay run`: the bot.
    Run,
    /// `patchbay restore`, replacing the database file.
    Restore,
}

impl ProcessRole {
    /// As stored: `run`, `restore`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessRole::Run => "run",
            ProcessRole::Restore => "restore",
        }
    }

    fn parse(text: &str) -> Result<ProcessRole, StoreError> {
        match text {
            "run" => Ok(ProcessRole::Run),
            "restore" => Ok(ProcessRole::Restore),
            other => Err(StoreError::Corrupt(format!("process role {other:?}"))),
        }
    }

    /// Whether a process asking for this role must wait for a live holder of `other`: a
    /// restore waits for everyone, and everyone waits for a restore. Two bots do not block each
    /// other here (the one starting is told of the other).
    fn waits_for(self, other: ProcessRole) -> bool {
        self == ProcessRole::Restore || other == ProcessRole::Restore
    }
}

/// A process holding the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLease {
    /// The process: `host/boot id/pid`.
    pub holder: String,
    /// What it is doing.
    pub role: ProcessRole,
    /// Since when it holds the database.
    pub since: DateTime<Utc>,
    /// When its hold lapses unless renewed.
    pub expires: DateTime<Utc>,
}

impl ProcessLease {
    /// The host it runs on, and its pid.
    pub fn host_and_pid(&self) -> Option<(&str, u32)> {
        super::lease::host_and_pid(&self.holder)
    }
}

/// "patchbay run (pid 4242 on web-1, since 2026-12-04 14:05:01 UTC)": who holds the
/// database, in the words of a refusal.
impl std::fmt::Display for ProcessLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = self.since.format("%Y-%m-%d %H:%M:%S UTC");
        match self.host_and_pid() {
            Some((host, pid)) => write!(
                f,
                "patchbay {} (pid {pid} on {host}, since {since})",
                self.role.as_str()
            ),
            None => write!(
                f,
                "patchbay {} ({}, since {since})",
                self.role.as_str(),
                self.holder
            ),
        }
    }
}

/// What asking to hold the database gave.
#[derive(Debug)]
pub enum HoldOutcome {
    /// Held. `others` are the other live holders, none of which blocks this role (for a bot,
    /// other bots on the same database: worth a warning).
    Held {
        /// The hold, renewed until released.
        hold: DatabaseHold,
        /// Other live holders.
        others: Vec<ProcessLease>,
    },
    /// Refused: these processes hold the database.
    Refused(Vec<ProcessLease>),
}

/// This process's hold on the database, renewed by a task of its own until it is released or
/// dropped. Dropped without [`DatabaseHold::release`], its row stays until it lapses or its
/// process is gone.
#[derive(Debug)]
pub struct DatabaseHold {
    store: Store,
    /// The row; a renewal that finds it gone writes a new one.
    id: Arc<AtomicI64>,
    renewer: tokio::task::JoinHandle<()>,
}

impl DatabaseHold {
    /// Stops renewing and deletes the row: the database is free.
    pub async fn release(self) -> Result<(), StoreError> {
        self.renewer.abort();
        sqlx::query("DELETE FROM process_leases WHERE id = $1")
            .bind(self.id.load(Ordering::SeqCst))
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }
}

impl Drop for DatabaseHold {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn lease_of(row: &sqlx::sqlite::SqliteRow) -> Result<ProcessLease, StoreError> {
    Ok(ProcessLease {
        holder: row.try_get("holder")?,
        role: ProcessRole::parse(&row.try_get::<String, _>("role")?)?,
        since: from_millis(row.try_get("started_at_ms")?)?,
        expires: from_millis(row.try_get("expires_at_ms")?)?,
    })
}

fn ttl() -> chrono::Duration {
    chrono::Duration::from_std(PROCESS_LEASE_TTL).expect("30 s fits")
}

impl Store {
    /// Holds the database for `role` as `holder` (`host/boot id/pid`) unless a live holder
    /// blocks it (see [`ProcessRole`]), in one transaction: rows that lapsed or whose process
    /// `is_dead` says is gone are deleted, and this hold's row is written. Holders with this
    /// very `holder` name (this process) are neither blocking nor reported.
    #[instrument(skip_all)]
    pub async fn hold_database(
        &self,
        role: ProcessRole,
        holder: &str,
        now: DateTime<Utc>,
        is_dead: impl Fn(&str) -> bool + Send,
    ) -> Result<HoldOutcome, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT id, holder, role, started_at_ms, expires_at_ms FROM process_leases ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        let (mut blocking, mut others) = (Vec::new(), Vec::new());
        for row in &rows {
            let lease = lease_of(row)?;
            if lease.expires <= now || is_dead(&lease.holder) {
                sqlx::query("DELETE FROM process_leases WHERE id = $1")
                    .bind(row.try_get::<i64, _>("id")?)
                    .execute(&mut *tx)
                    .await?;
            } else if lease.holder == holder {
                // This process (a restart within it): neither in the way nor news.
            } else if role.waits_for(lease.role) {
                blocking.push(lease);
            } else {
                others.push(lease);
            }
        }
        if !blocking.is_empty() {
            // Nothing was written but the deletion of stale rows, which can wait.
            return Ok(HoldOutcome::Refused(blocking));
        }
        let id: i64 = sqlx::query(
            "INSERT INTO process_leases (holder, role, started_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(holder)
        .bind(role.as_str())
        .bind(millis(now))
        .bind(millis(now + ttl()))
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        tx.commit().await?;
        let id = Arc::new(AtomicI64::new(id));
        let renewer = tokio::spawn(renew(
            self.clone(),
            id.clone(),
            holder.to_string(),
            role,
            now,
        ));
        Ok(HoldOutcome::Held {
            hold: DatabaseHold {
                store: self.clone(),
                id,
                renewer,
            },
            others,
        })
    }

    /// The live holders of the database at `now` (rows that have not lapsed, of processes
    /// `is_dead` does not say are gone), oldest first.
    #[instrument(skip_all)]
    pub async fn process_leases(
        &self,
        now: DateTime<Utc>,
        is_dead: impl Fn(&str) -> bool + Send,
    ) -> Result<Vec<ProcessLease>, StoreError> {
        let rows = sqlx::query(
            "SELECT holder, role, started_at_ms, expires_at_ms FROM process_leases \
             WHERE expires_at_ms > $1 ORDER BY id",
        )
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await?;
        let mut live = Vec::with_capacity(rows.len());
        for row in &rows {
            let lease = lease_of(row)?;
            if !is_dead(&lease.holder) {
                live.push(lease);
            }
        }
        Ok(live)
    }
}

/// Renews hold `id` every third of [`PROCESS_LEASE_TTL`] until aborted. A renewal that finds
/// the row gone (this process was stalled past the lease, and another process cleared it)
/// says so and writes a new one.
async fn renew(
    store: Store,
    id: Arc<AtomicI64>,
    holder: String,
    role: ProcessRole,
    since: DateTime<Utc>,
) {
    loop {
        tokio::time::sleep(PROCESS_LEASE_TTL / 3).await;
        let until = millis(crate::model::now() + ttl());
        let current = id.load(Ordering::SeqCst);
        let renewed = sqlx::query(
            "UPDATE process_leases SET expires_at_ms = $1 WHERE id = $2 AND holder = $3",
        )
        .bind(until)
        .bind(current)
        .bind(&holder)
        .execute(&store.pool)
        .await;
        match renewed {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => {
                tracing::warn!(
                    role = role.as_str(),
                    "this process's hold on the database lapsed (it was not renewed in time); holding it again"
                );
                let again = sqlx::query_scalar(
                    "INSERT INTO process_leases (holder, role, started_at_ms, expires_at_ms) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&holder)
                .bind(role.as_str())
                .bind(millis(since))
                .bind(until)
                .fetch_one(&store.pool)
                .await;
                match again {
                    Ok(new_id) => id.store(new_id, Ordering::SeqCst),
                    Err(err) => {
                        tracing::warn!(error = %err, "could not hold the database again; trying again");
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not renew this process's hold on the database; trying again");
            }
        }
    }
}
