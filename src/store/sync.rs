//! Storage of sync runs, the lease that keeps one run per job at a time across processes, and
//! the Notion pages patchbay keeps per data source row (migration `0006_sync.sql`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use tracing::instrument;

use super::{Store, StoreError, from_millis, millis};
use crate::model::Actor;

/// How a run ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Still running (or its process died and no run has taken its lease since).
    Running,
    /// Finished: every row is as it should be.
    Ok,
    /// Stopped by an error (stored with the run).
    Failed,
    /// Its process died; a later run took the lease over.
    Abandoned,
}

impl RunOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Running => "running",
            RunOutcome::Ok => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Abandoned => "abandoned",
        }
    }

    fn parse(text: &str) -> Result<RunOutcome, StoreError> {
        Ok(match text {
            "running" => RunOutcome::Running,
            "ok" => RunOutcome::Ok,
            "failed" => RunOutcome::Failed,
            "abandoned" => RunOutcome::Abandoned,
            other => return Err(StoreError::Corrupt(format!("sync run outcome {other:?}"))),
        })
    }
}

/// What a run did to the rows of its data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RunCounts {
    /// Rows the job keeps.
    pub total: u64,
    /// Pages created.
    pub created: u64,
    /// Pages updated.
    pub updated: u64,
    /// Rows already as they should be.
    pub unchanged: u64,
    /// Rows marked removed (their integration left the config).
    pub removed: u64,
    /// Requests sent to Notion, retries included.
    pub requests: u64,
}

/// One stored run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncRun {
    /// Its id.
    pub id: i64,
    /// The job.
    pub job: String,
    /// Who started it.
    pub actor: Actor,
    /// Whether it only computed what would change.
    pub dry_run: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// What it did.
    pub counts: RunCounts,
    /// The error's kind (`auth`, `setup`, `rate_limited`, ...), when it failed.
    pub error_kind: Option<String>,
    /// The error and what to do, when it failed.
    pub error: Option<String>,
    /// Where its live progress shows.
    pub progress_link: Option<String>,
}

/// A run the lease went to, or the run that holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOutcome {
    /// The lease is ours: the new run's id.
    Acquired(i64),
    /// Another run holds it.
    Held(Box<SyncRun>),
}

/// A request to start a run.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// The job.
    pub job: &'a str,
    /// Its kind (`notion-status-board`, ...).
    pub kind: &'a str,
    /// Who starts it.
    pub actor: &'a Actor,
    /// Whether nothing is written.
    pub dry_run: bool,
    /// The process asking (`host/boot id/pid`).
    pub holder: &'a str,
    /// How long the lease lasts unless renewed.
    pub ttl: std::time::Duration,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A page patchbay keeps for one row, and the hash of what it last wrote there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptPage {
    /// The Notion page.
    pub page_id: String,
    /// The hash of the values last written, if known.
    pub content_hash: Option<String>,
}

const RUN_COLUMNS: &str = "id, job, actor_kind, actor_id, actor_name, dry_run, started_at_ms, \
     finished_at_ms, outcome, total, created, updated, unchanged, removed, requests, \
     error_kind, error, progress_link";

/// The incident log's writer holding a job's lease, shown as a run of the schedule.
fn writer_turn(job: &str, expires: i64) -> SyncRun {
    let now = crate::model::now();
    SyncRun {
        id: 0,
        job: job.to_string(),
        actor: Actor::Scheduler {
            job: job.to_string(),
        },
        dry_run: false,
        started_at: from_millis(expires).map_or(now, |expires| expires.min(now)),
        finished_at: None,
        outcome: RunOutcome::Running,
        counts: RunCounts::default(),
        error_kind: None,
        error: None,
        progress_link: None,
    }
}

fn run_of(row: &sqlx::sqlite::SqliteRow) -> Result<SyncRun, StoreError> {
    let kind: String = row.try_get("actor_kind")?;
    let id: String = row.try_get("actor_id")?;
    let name: String = row.try_get("actor_name")?;
    let count = |column: &str| -> Result<u64, StoreError> {
        Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
    };
    Ok(SyncRun {
        id: row.try_get("id")?,
        job: row.try_get("job")?,
        actor: Actor::from_parts(&kind, &id, &name).map_err(StoreError::Corrupt)?,
        dry_run: row.try_get::<i64, _>("dry_run")? != 0,
        started_at: from_millis(row.try_get("started_at_ms")?)?,
        finished_at: row
            .try_get::<Option<i64>, _>("finished_at_ms")?
            .map(from_millis)
            .transpose()?,
        outcome: RunOutcome::parse(&row.try_get::<String, _>("outcome")?)?,
        counts: RunCounts {
            total: count("total")?,
            created: count("created")?,
            updated: count("updated")?,
            unchanged: count("unchanged")?,
            removed: count("removed")?,
            requests: count("requests")?,
        },
        error_kind: row.try_get("error_kind")?,
        error: row.try_get("error")?,
        progress_link: row.try_get("progress_link")?,
    })
}

impl Store {
    /// Starts a run of `new.job` if no live run holds its lease: records the run, takes the
    /// lease and marks a run whose lease lapsed (or whose process `is_dead` says died) as
    /// abandoned, in one transaction. Otherwise returns the run that holds it.
    #[instrument(skip_all)]
    pub async fn start_run(
        &self,
        new: NewRun<'_>,
        is_dead: impl Fn(&str) -> bool + Send,
    ) -> Result<LeaseOutcome, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = millis(new.now);
        let lease =
            sqlx::query("SELECT run_id, holder, expires_at_ms FROM sync_leases WHERE job = $1")
                .bind(new.job)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(lease) = lease {
            let run_id: i64 = lease.try_get("run_id")?;
            let holder: String = lease.try_get("holder")?;
            let expires: i64 = lease.try_get("expires_at_ms")?;
            if expires > now && !is_dead(&holder) {
                if run_id == 0 {
                    // The incident log's writer, between two appends: not a run of its own.
                    return Ok(LeaseOutcome::Held(Box::new(writer_turn(new.job, expires))));
                }
                let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(run_id)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(LeaseOutcome::Held(Box::new(run_of(&row)?)));
            }
            sqlx::query(
                "UPDATE sync_runs SET outcome = 'abandoned', finished_at_ms = $1 \
                 WHERE id = $2 AND outcome = 'running'",
            )
            .bind(now)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        }
        let (kind, id, name) = new.actor.parts();
        let run_id: i64 = sqlx::query(
            "INSERT INTO sync_runs (job, kind, actor_kind, actor_id, actor_name, dry_run, \
             started_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(new.job)
        .bind(new.kind)
        .bind(kind)
        .bind(id)
        .bind(name)
        .bind(i64::from(new.dry_run))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        sqlx::query(
            "INSERT INTO sync_leases (job, run_id, holder, expires_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job) DO UPDATE SET run_id = excluded.run_id, holder = excluded.holder, \
             expires_at_ms = excluded.expires_at_ms",
        )
        .bind(new.job)
        .bind(run_id)
        .bind(new.holder)
        .bind(now + new.ttl.as_millis() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LeaseOutcome::Acquired(run_id))
    }

    /// Takes `job`'s lease for a turn of work that is not a run of its own (the incident log's
    /// writer): true when it is free, lapsed, held by a dead process, or already this
    /// holder's. Released with [`Store::release_lease`].
    #[instrument(skip_all)]
    pub async fn hold_lease(
        &self,
        job: &str,
        holder: &str,
        ttl: std::time::Duration,
        now: DateTime<Utc>,
        is_dead: impl Fn(&str) -> bool + Send,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now_ms = millis(now);
        let lease =
            sqlx::query("SELECT run_id, holder, expires_at_ms FROM sync_leases WHERE job = $1")
                .bind(job)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(lease) = lease {
            let run_id: i64 = lease.try_get("run_id")?;
            let other: String = lease.try_get("holder")?;
            let expires: i64 = lease.try_get("expires_at_ms")?;
            let ours = run_id == 0 && other == holder;
            if !ours && expires > now_ms && !is_dead(&other) {
                return Ok(false);
            }
            if run_id != 0 {
                sqlx::query(
                    "UPDATE sync_runs SET outcome = 'abandoned', finished_at_ms = $1 \
                     WHERE id = $2 AND outcome = 'running'",
                )
                .bind(now_ms)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO sync_leases (job, run_id, holder, expires_at_ms) VALUES ($1, 0, $2, $3) \
             ON CONFLICT (job) DO UPDATE SET run_id = 0, holder = excluded.holder, \
             expires_at_ms = excluded.expires_at_ms",
        )
        .bind(job)
        .bind(holder)
        .bind(now_ms + ttl.as_millis() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Releases a lease taken with [`Store::hold_lease`].
    #[instrument(skip_all)]
    pub async fn release_lease(&self, job: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sync_leases WHERE job = $1 AND holder = $2 AND run_id = 0")
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Extends run `run`'s lease of `job` to `until`; false when the run no longer holds it.
    #[instrument(skip_all)]
    pub async fn renew_lease(
        &self,
        job: &str,
        run: i64,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let renewed =
            sqlx::query("UPDATE sync_leases SET expires_at_ms = $1 WHERE job = $2 AND run_id = $3")
                .bind(millis(until))
                .bind(job)
                .bind(run)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    /// Records where run `run`'s progress shows.
    #[instrument(skip_all)]
    pub async fn set_progress_link(&self, run: i64, link: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_runs SET progress_link = $1 WHERE id = $2")
            .bind(link)
            .bind(run)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends run `run` of `job` with `outcome`, its counts and error, and releases its lease.
    #[instrument(skip_all)]
    pub async fn finish_run(
        &self,
        job: &str,
        run: i64,
        outcome: RunOutcome,
        counts: &RunCounts,
        error: Option<(&str, &str)>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "UPDATE sync_runs SET outcome = $1, finished_at_ms = $2, total = $3, created = $4, \
             updated = $5, unchanged = $6, removed = $7, requests = $8, error_kind = $9, \
             error = $10 WHERE id = $11",
        )
        .bind(outcome.as_str())
        .bind(millis(at))
        .bind(counts.total as i64)
        .bind(counts.created as i64)
        .bind(counts.updated as i64)
        .bind(counts.unchanged as i64)
        .bind(counts.removed as i64)
        .bind(counts.requests as i64)
        .bind(error.map(|(kind, _)| kind))
        .bind(error.map(|(_, message)| message))
        .bind(run)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sync_leases WHERE job = $1 AND run_id = $2")
            .bind(job)
            .bind(run)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Run `id`.
    #[instrument(skip_all)]
    pub async fn sync_run(&self, id: i64) -> Result<Option<SyncRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_of).transpose()
    }

    /// The runs of `job`, newest first: `limit` of them after skipping `offset`, and how many
    /// there are in all.
    #[instrument(skip_all)]
    pub async fn sync_runs(
        &self,
        job: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<SyncRun>, usize), StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE job = $1 ORDER BY id DESC \
             LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(job)
            .bind(limit as i64)
            .bind(offset as i64)
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sync_runs WHERE job = $1")
            .bind(job)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let runs = rows.iter().map(run_of).collect::<Result<_, _>>()?;
        Ok((runs, total.max(0) as usize))
    }

    /// The latest run of each job.
    #[instrument(skip_all)]
    pub async fn last_runs(&self) -> Result<HashMap<String, SyncRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id IN \
             (SELECT MAX(id) FROM sync_runs GROUP BY job)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| run_of(row).map(|run| (run.job.clone(), run)))
            .collect()
    }

    /// The pages kept for the rows of `data_source`, by row key.
    #[instrument(skip_all)]
    pub async fn kept_pages(
        &self,
        data_source: &str,
    ) -> Result<HashMap<String, KeptPage>, StoreError> {
        let rows = sqlx::query(
            "SELECT row_key, page_id, content_hash FROM notion_pages WHERE data_source_id = $1",
        )
        .bind(data_source)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    row.try_get("row_key")?,
                    KeptPage {
                        page_id: row.try_get("page_id")?,
                        content_hash: row.try_get("content_hash")?,
                    },
                ))
            })
            .collect()
    }

    /// Records that row `key` of `data_source` is page `page` holding values hashed `hash`.
    #[instrument(skip_all)]
    pub async fn keep_page(
        &self,
        data_source: &str,
        key: &str,
        page: &str,
        hash: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO notion_pages (data_source_id, row_key, page_id, content_hash, \
             written_at_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (data_source_id, row_key) DO UPDATE SET page_id = excluded.page_id, \
             content_hash = excluded.content_hash, written_at_ms = excluded.written_at_ms",
        )
        .bind(data_source)
        .bind(key)
        .bind(page)
        .bind(hash)
        .bind(millis(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// One change of an incident, as the incident log writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Its id (the order of the timeline).
    pub id: i64,
    /// The incident.
    pub incident: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// What (`opened`, `changed`, `acknowledged`, `silenced`, `notified`, `resolved`).
    pub kind: String,
    /// The details, as the alert pipeline wrote them.
    pub detail: String,
}

/// An incident as its Notion page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRecord {
    /// Its id.
    pub id: i64,
    /// The incident number people see (its notice), when it was notified.
    pub notice: Option<i64>,
    /// The integration.
    pub integration: String,
    /// `critical` or `warning`.
    pub severity: String,
    /// The state it opened (or changed) to: `DOWN`, `DEGRADED`.
    pub state: String,
    /// Why.
    pub reason: String,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
}

/// Where an incident-log job is: the last event written, and the last one an append in flight
/// carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor {
    /// Events up to this id are in Notion.
    pub after_event: i64,
    /// An append carrying events up to this id may have reached Notion.
    pub sending_through: Option<i64>,
}

fn event_of(row: &sqlx::sqlite::SqliteRow) -> Result<LogEvent, StoreError> {
    Ok(LogEvent {
        id: row.try_get("id")?,
        incident: row.try_get("incident_id")?,
        at: from_millis(row.try_get("at_ms")?)?,
        kind: row.try_get("kind")?,
        detail: row.try_get("detail")?,
    })
}

impl Store {
    /// Where incident-log job `job` is; a job seen for the first time starts at the first
    /// event of the incidents open now (they get their pages), or after the last event.
    #[instrument(skip_all)]
    pub async fn log_cursor(&self, job: &str) -> Result<LogCursor, StoreError> {
        if let Some(cursor) = self.stored_log_cursor(job).await? {
            return Ok(cursor);
        }
        sqlx::query(
            "INSERT INTO notion_log_cursors (job, after_event) VALUES ($1, COALESCE(\
             (SELECT MIN(e.id) - 1 FROM incident_events e JOIN incidents i \
             ON i.id = e.incident_id WHERE i.resolved_at_ms IS NULL), \
             (SELECT MAX(id) FROM incident_events), 0)) ON CONFLICT (job) DO NOTHING",
        )
        .bind(job)
        .execute(&self.pool)
        .await?;
        self.stored_log_cursor(job)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no log cursor for {job:?}")))
    }

    async fn stored_log_cursor(&self, job: &str) -> Result<Option<LogCursor>, StoreError> {
        let row = sqlx::query(
            "SELECT after_event, sending_through FROM notion_log_cursors WHERE job = $1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(LogCursor {
                after_event: row.try_get("after_event")?,
                sending_through: row.try_get("sending_through")?,
            })
        })
        .transpose()
    }

    /// Records that an append carrying events up to `through` is on its way (`None`: none).
    #[instrument(skip_all)]
    pub async fn set_log_sending(&self, job: &str, through: Option<i64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE notion_log_cursors SET sending_through = $1 WHERE job = $2")
            .bind(through)
            .bind(job)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves job `job` past event `to` (written), clearing the append in flight.
    #[instrument(skip_all)]
    pub async fn advance_log(&self, job: &str, to: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE notion_log_cursors SET after_event = $1, sending_through = NULL WHERE job = $2",
        )
        .bind(to)
        .bind(job)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Up to `limit` incident events after `after`, oldest first.
    #[instrument(skip_all)]
    pub async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LogEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_id, at_ms, kind, detail FROM incident_events WHERE id > $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_of).collect()
    }

    /// Incident `incident`'s events up to `through`, oldest first.
    #[instrument(skip_all)]
    pub async fn events_of(
        &self,
        incident: i64,
        through: i64,
    ) -> Result<Vec<LogEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_id, at_ms, kind, detail FROM incident_events \
             WHERE incident_id = $1 AND id <= $2 ORDER BY id",
        )
        .bind(incident)
        .bind(through)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_of).collect()
    }

    /// Incident `incident` as its page shows it; `None` once retention removed it.
    #[instrument(skip_all)]
    pub async fn incident_record(
        &self,
        incident: i64,
    ) -> Result<Option<IncidentRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT i.id, i.notice_id, i.integration, i.severity, i.state, i.reason, \
             i.opened_at_ms, i.resolved_at_ms, n.acked_name FROM incidents i \
             LEFT JOIN notices n ON n.id = i.notice_id WHERE i.id = $1",
        )
        .bind(incident)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(IncidentRecord {
                id: row.try_get("id")?,
                notice: row.try_get("notice_id")?,
                integration: row.try_get("integration")?,
                severity: row.try_get("severity")?,
                state: row.try_get("state")?,
                reason: row.try_get("reason")?,
                opened_at: from_millis(row.try_get("opened_at_ms")?)?,
                resolved_at: row
                    .try_get::<Option<i64>, _>("resolved_at_ms")?
                    .map(from_millis)
                    .transpose()?,
                acked_by: row.try_get("acked_name")?,
            })
        })
        .transpose()
    }

    /// The page kept for row `key` of `data_source`.
    #[instrument(skip_all)]
    pub async fn kept_page(
        &self,
        data_source: &str,
        key: &str,
    ) -> Result<Option<KeptPage>, StoreError> {
        let row = sqlx::query(
            "SELECT page_id, content_hash FROM notion_pages \
             WHERE data_source_id = $1 AND row_key = $2",
        )
        .bind(data_source)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(KeptPage {
                page_id: row.try_get("page_id")?,
                content_hash: row.try_get("content_hash")?,
            })
        })
        .transpose()
    }
}

/// What a job learnt of its database at its last check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTarget {
    /// The database, as configured then.
    pub database_id: String,
    /// The job's `data_source` setting then (empty when unset).
    pub data_source_setting: String,
    /// The data source it writes to.
    pub data_source_id: String,
    /// The data source's title property.
    pub title_property: String,
    /// The database's link.
    pub database_url: Option<String>,
    /// When it was checked.
    pub checked_at: DateTime<Utc>,
}

impl Store {
    /// What job `job` learnt of its database at its last check.
    #[instrument(skip_all)]
    pub async fn checked_target(&self, job: &str) -> Result<Option<CheckedTarget>, StoreError> {
        let row = sqlx::query(
            "SELECT database_id, data_source_setting, data_source_id, title_property, \
             database_url, checked_at_ms FROM notion_targets WHERE job = $1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(CheckedTarget {
                database_id: row.try_get("database_id")?,
                data_source_setting: row.try_get("data_source_setting")?,
                data_source_id: row.try_get("data_source_id")?,
                title_property: row.try_get("title_property")?,
                database_url: row.try_get("database_url")?,
                checked_at: from_millis(row.try_get("checked_at_ms")?)?,
            })
        })
        .transpose()
    }

    /// Records what job `job` learnt of its database (`None`: forget it).
    #[instrument(skip_all)]
    pub async fn set_checked_target(
        &self,
        job: &str,
        target: Option<&CheckedTarget>,
    ) -> Result<(), StoreError> {
        let Some(target) = target else {
            sqlx::query("DELETE FROM notion_targets WHERE job = $1")
                .bind(job)
                .execute(&self.pool)
                .await?;
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO notion_targets (job, database_id, data_source_setting, data_source_id, \
             title_property, database_url, checked_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (job) DO UPDATE SET database_id = excluded.database_id, \
             data_source_setting = excluded.data_source_setting, \
             data_source_id = excluded.data_source_id, title_property = excluded.title_property, \
             database_url = excluded.database_url, checked_at_ms = excluded.checked_at_ms",
        )
        .bind(job)
        .bind(&target.database_id)
        .bind(&target.data_source_setting)
        .bind(&target.data_source_id)
        .bind(&target.title_property)
        .bind(&target.database_url)
        .bind(millis(target.checked_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
