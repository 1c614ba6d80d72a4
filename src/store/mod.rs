//! Storage: check results, rollups, integration states and transitions, behind one `Store`.
//!
//! SQLite (a file, WAL mode) is the embedded default. Queries are runtime `query().bind()`
//! calls in a portable subset of SQL (integer times, `ON CONFLICT ... DO UPDATE`, `CASE`
//! instead of `MIN`/`MAX` scalars), so the PostgreSQL backend planned for scale-out can reuse them
//! with its own `migrations/postgres/`. The backend is picked once, from the URL scheme, in
//! [`Store::open`].
//!
//! Writes arrive in batches from [`writer`]: one transaction per batch, never one per row.

mod access;
pub mod actions;
pub mod alerts;
mod api_keys;
pub mod lease;
pub mod process_leases;
pub mod restore;
pub mod rollup;
pub mod sync;
pub mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use tracing::instrument;

use crate::model::{CheckResult, IntegrationState, LastCheck, Snowflake, State, Transition};
use rollup::{Aggregate, BUCKETS};

/// Runs a storage future on tokio's blocking pool and awaits it there.
///
/// The engine's storage calls go through here, so database work never occupies the threads
/// that run checks. It also makes tests on tokio's paused clock deterministic: tokio does not
/// auto-advance a paused clock while a blocking task runs, so virtual time stands still while
/// SQLite works instead of racing ahead of it.
pub async fn offload<T, F>(work: F) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    match tokio::task::spawn_blocking(move || handle.block_on(work)).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// This build's migrations, embedded: what [`Store::migrate`] applies and what a restore
/// compares a backup's history with.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a query.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed to apply.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names a backend this build does not have.
    #[error("unsupported database URL {0:?}: use sqlite://PATH")]
    UnsupportedUrl(String),
    /// A backup could not be made.
    #[error("backup failed: {0}")]
    Backup(String),
    /// A stored value could not be read back.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// What one batch writes, in one transaction.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// New check results (also folded into the rollups).
    pub results: Vec<CheckResult>,
    /// The latest state of each integration touched.
    pub states: Vec<IntegrationState>,
    /// Transitions decided since the last batch.
    pub transitions: Vec<Transition>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty() && self.states.is_empty() && self.transitions.is_empty()
    }
}

/// The windows `/status` and `patchbay status` report on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsWindow {
    /// The last hour, from one-minute rollups.
    Hour,
    /// The last 24 hours, from one-hour rollups.
    Day,
    /// The last 7 days, from one-hour rollups.
    Week,
    /// The last 30 days, from one-hour rollups.
    Month,
}

impl StatsWindow {
    /// Every window, shortest first.
    pub const ALL: [StatsWindow; 4] = [Self::Hour, Self::Day, Self::Week, Self::Month];

    /// The window's length.
    pub fn length(self) -> Duration {
        Duration::from_secs(match self {
            Self::Hour => 3600,
            Self::Day => 86_400,
            Self::Week => 7 * 86_400,
            Self::Month => 30 * 86_400,
        })
    }

    /// The rollup resolution that answers it: minutes for the hour, hours beyond.
    fn resolution(self) -> i64 {
        match self {
            Self::Hour => rollup::MINUTE,
            _ => rollup::HOUR,
        }
    }

    /// A short label: `1h`, `24h`, `7d`, `30d`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }
}

/// Uptime and latency of one integration over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStats {
    /// The merged rollups of the window.
    pub aggregate: Aggregate,
}

impl WindowStats {
    /// Percent of checks that passed.
    pub fn uptime_pct(&self) -> Option<f64> {
        self.aggregate.uptime_pct()
    }
    /// Estimated median latency (ms).
    pub fn latency_p50_ms(&self) -> Option<f64> {
        self.aggregate.quantile(0.5)
    }
    /// Estimated 95th percentile latency (ms).
    pub fn latency_p95_ms(&self) -> Option<f64> {
        self.aggregate.quantile(0.95)
    }
}

/// How long each kind of history is kept (`[storage]`'s retentions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw check results.
    pub results: Duration,
    /// One-minute rollups (the 24-hour chart and the last hour need a day of them).
    pub minute_rollups: Duration,
    /// One-hour rollups, and transitions with them.
    pub hourly_rollups: Duration,
}

/// Rows removed by a retention pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Raw results deleted.
    pub results: u64,
    /// One-minute rollup rows deleted.
    pub minute_rollups: u64,
    /// One-hour rollup rows deleted.
    pub hourly_rollups: u64,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

const HISTOGRAM_COLUMNS: [&str; BUCKETS] = [
    "h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10", "h11", "h12", "h13",
];

/// Reads the rollup columns (`count`, `failures`, `latency_*`, `h0`..`h13`) of a row.
fn aggregate_of(row: &sqlx::sqlite::SqliteRow) -> Result<Aggregate, StoreError> {
    let mut histogram = [0i64; BUCKETS];
    for (slot, column) in histogram.iter_mut().zip(HISTOGRAM_COLUMNS) {
        *slot = row.try_get(column)?;
    }
    Ok(Aggregate {
        count: row.try_get("count")?,
        failures: row.try_get("failures")?,
        latency_sum: row.try_get("latency_sum")?,
        latency_min: row.try_get("latency_min")?,
        latency_max: row.try_get("latency_max")?,
        histogram,
    })
}

/// Reads a `transitions` row (`integration`, `from_state`, `to_state`, `reason`, `at_ms`).
fn transition_of(row: &sqlx::sqlite::SqliteRow) -> Result<Transition, StoreError> {
    let from: String = row.try_get("from_state")?;
    let to: String = row.try_get("to_state")?;
    Ok(Transition {
        integration: row.try_get("integration")?,
        from: State::from_str(&from).map_err(StoreError::Corrupt)?,
        to: State::from_str(&to).map_err(StoreError::Corrupt)?,
        reason: row.try_get("reason")?,
        at: from_millis(row.try_get("at_ms")?)?,
    })
}

/// A Discord id as the database stores it (BIGINT). Snowflakes stay below 2^63: their top bits
/// are a timestamp.
pub(crate) fn id(value: Snowflake) -> i64 {
    value.0 as i64
}

/// A stored BIGINT id back as a Discord id.
pub(crate) fn snowflake(value: i64) -> Snowflake {
    Snowflake(value as u64)
}

/// A `check_results` row (integration, at_ms, success, latency_ms, status, error_kind,
/// message) as a result.
fn check_result_of(row: &sqlx::sqlite::SqliteRow) -> Result<CheckResult, StoreError> {
    Ok(CheckResult {
        integration: row.try_get("integration")?,
        at: from_millis(row.try_get("at_ms")?)?,
        success: row.try_get("success")?,
        latency_ms: row.try_get("latency_ms")?,
        status: row.try_get::<Option<i64>, _>("status")?.map(|s| s as u16),
        error_kind: row.try_get("error_kind")?,
        message: row.try_get("message")?,
    })
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    #[instrument(skip_all)]
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating (for `patchbay migrate`, which reports what it does).
    #[instrument(skip_all)]
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable across process crashes in WAL mode; only a power loss can drop
            // the last transactions, which the monitoring data can afford.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // The batch statements are built per batch size and not cached (`persistent(false)`);
            // the fixed queries fit in a small cache. Each cached statement holds SQLite memory
            // on every connection, which at 10,000 integrations cost tens of MiB.
            .statement_cache_capacity(32);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Store { pool })
    }

    /// Applies pending migrations; returns how many were applied.
    #[instrument(skip_all)]
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let before = self.applied_migrations().await.unwrap_or(0);
        MIGRATOR.run(&self.pool).await?;
        Ok(self.applied_migrations().await?.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> Result<usize, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(count as usize)
    }

    /// A cheap query, for readiness.
    #[instrument(skip_all)]
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    #[instrument(skip_all)]
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Writes one batch in one transaction: results, their rollups, states and transitions.
    #[instrument(skip_all, fields(results = batch.results.len()))]
    pub async fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // SQLite allows 32,766 bound parameters per statement; 7 per row keeps chunks well inside.
        for chunk in batch.results.chunks(2000) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO check_results (integration, at_ms, success, latency_ms, status, error_kind, message) ",
            );
            insert.push_values(chunk, |mut row, result| {
                row.push_bind(&result.integration)
                    .push_bind(millis(result.at))
                    .push_bind(result.success)
                    .push_bind(result.latency_ms)
                    .push_bind(result.status.map(i64::from))
                    .push_bind(&result.error_kind)
                    .push_bind(&result.message);
            });
            insert.build().persistent(false).execute(&mut *tx).await?;
        }
        let aggregates: Vec<_> = rollup::aggregate(&batch.results).into_iter().collect();
        for chunk in aggregates.chunks(1000) {
            let mut upsert: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "INSERT INTO rollups (integration, resolution, bucket, count, failures, latency_sum, latency_min, latency_max, {}) ",
                HISTOGRAM_COLUMNS.join(", ")
            ));
            upsert.push_values(
                chunk,
                |mut row, ((integration, resolution, bucket), agg)| {
                    row.push_bind(integration)
                        .push_bind(*resolution)
                        .push_bind(*bucket)
                        .push_bind(agg.count)
                        .push_bind(agg.failures)
                        .push_bind(agg.latency_sum)
                        .push_bind(agg.latency_min)
                        .push_bind(agg.latency_max);
                    for count in agg.histogram {
                        row.push_bind(count);
                    }
                },
            );
            let mut merge = String::from(
                " ON CONFLICT (integration, resolution, bucket) DO UPDATE SET \
                 count = rollups.count + excluded.count, \
                 failures = rollups.failures + excluded.failures, \
                 latency_sum = rollups.latency_sum + excluded.latency_sum, \
                 latency_min = CASE WHEN excluded.latency_min < rollups.latency_min THEN excluded.latency_min ELSE rollups.latency_min END, \
                 latency_max = CASE WHEN excluded.latency_max > rollups.latency_max THEN excluded.latency_max ELSE rollups.latency_max END",
            );
            for column in HISTOGRAM_COLUMNS {
                merge.push_str(&format!(
                    ", {column} = rollups.{column} + excluded.{column}"
                ));
            }
            upsert.push(merge);
            upsert.build().persistent(false).execute(&mut *tx).await?;
        }
        for chunk in batch.states.chunks(3000) {
            let mut upsert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO integration_states (integration, state, since_ms, consecutive_failures, consecutive_successes, last_at_ms, last_success, last_latency_ms, last_message) ",
            );
            upsert.push_values(chunk, |mut row, state| {
                let last = state.last_check.as_ref();
                row.push_bind(&state.integration)
                    .push_bind(state.state.as_str())
                    .push_bind(millis(state.since))
                    .push_bind(i64::from(state.consecutive_failures))
                    .push_bind(i64::from(state.consecutive_successes))
                    .push_bind(last.map(|l| millis(l.at)))
                    .push_bind(last.map(|l| l.success))
                    .push_bind(last.map(|l| l.latency_ms))
                    .push_bind(last.and_then(|l| l.message.clone()));
            });
            upsert.push(
                " ON CONFLICT (integration) DO UPDATE SET state = excluded.state, since_ms = excluded.since_ms, \
                 consecutive_failures = excluded.consecutive_failures, consecutive_successes = excluded.consecutive_successes, \
                 last_at_ms = excluded.last_at_ms, last_success = excluded.last_success, \
                 last_latency_ms = excluded.last_latency_ms, last_message = excluded.last_message",
            );
            upsert.build().persistent(false).execute(&mut *tx).await?;
        }
        for transition in &batch.transitions {
            sqlx::query(
                "INSERT INTO transitions (integration, from_state, to_state, reason, at_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&transition.integration)
            .bind(transition.from.as_str())
            .bind(transition.to.as_str())
            .bind(&transition.reason)
            .bind(millis(transition.at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every stored integration state.
    #[instrument(skip_all)]
    pub async fn load_states(&self) -> Result<Vec<IntegrationState>, StoreError> {
        let rows = sqlx::query(
            "SELECT integration, state, since_ms, consecutive_failures, consecutive_successes, \
             last_at_ms, last_success, last_latency_ms, last_message FROM integration_states",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                let last_at: Option<i64> = row.try_get("last_at_ms")?;
                let last_check = match last_at {
                    Some(at) => Some(LastCheck {
                        at: from_millis(at)?,
                        success: row
                            .try_get::<Option<bool>, _>("last_success")?
                            .unwrap_or(false),
                        latency_ms: row
                            .try_get::<Option<f64>, _>("last_latency_ms")?
                            .unwrap_or(0.0),
                        message: row.try_get("last_message")?,
                    }),
                    None => None,
                };
                Ok(IntegrationState {
                    integration: row.try_get("integration")?,
                    state: State::from_str(&state).map_err(StoreError::Corrupt)?,
                    since: from_millis(row.try_get("since_ms")?)?,
                    consecutive_failures: row.try_get::<i64, _>("consecutive_failures")? as u32,
                    consecutive_successes: row.try_get::<i64, _>("consecutive_successes")? as u32,
                    last_check,
                })
            })
            .collect()
    }

    /// Results of one integration since `since`, oldest first (to seed degraded windows).
    #[instrument(skip_all)]
    pub async fn recent_results(
        &self,
        integration: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<CheckResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT integration, at_ms, success, latency_ms, status, error_kind, message \
             FROM check_results WHERE integration = $1 AND at_ms >= $2 ORDER BY at_ms",
        )
        .bind(integration)
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(check_result_of).collect()
    }

    /// The latest `limit` results of one integration, newest first.
    #[instrument(skip_all)]
    pub async fn latest_results(
        &self,
        integration: &str,
        limit: u32,
    ) -> Result<Vec<CheckResult>, StoreError> {
        let rows = sqlx::query(
            "SELECT integration, at_ms, success, latency_ms, status, error_kind, message \
             FROM check_results WHERE integration = $1 ORDER BY at_ms DESC LIMIT $2",
        )
        .bind(integration)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(check_result_of).collect()
    }

    /// Number of raw results stored (all, or of one integration).
    #[instrument(skip_all)]
    pub async fn count_results(&self, integration: Option<&str>) -> Result<i64, StoreError> {
        let count = match integration {
            Some(name) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM check_results WHERE integration = $1")
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_scalar("SELECT COUNT(*) FROM check_results")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(count)
    }

    /// The newest transitions, newest first (all integrations, or one).
    #[instrument(skip_all)]
    pub async fn transitions(
        &self,
        integration: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Transition>, StoreError> {
        // Two statements rather than `$1 IS NULL OR ...`: PostgreSQL cannot infer the type of a
        // parameter that is only compared with NULL.
        let rows = match integration {
            Some(name) => {
                sqlx::query(
                    "SELECT integration, from_state, to_state, reason, at_ms FROM transitions \
                     WHERE integration = $1 ORDER BY at_ms DESC, id DESC LIMIT $2",
                )
                .bind(name)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT integration, from_state, to_state, reason, at_ms FROM transitions \
                     ORDER BY at_ms DESC, id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(transition_of).collect()
    }

    /// Uptime and latency over `window` ending at `now`, per integration (all, or one), answered
    /// from the rollups alone.
    #[instrument(skip_all)]
    pub async fn window_stats(
        &self,
        integration: Option<&str>,
        window: StatsWindow,
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, WindowStats>, StoreError> {
        let resolution = window.resolution();
        // The bucket holding `now - window` is included whole: the window is at most one
        // bucket longer than asked, which keeps the query to whole rollup rows.
        let from = rollup::bucket_of(millis(now) - window.length().as_millis() as i64, resolution);
        let sums = self
            .rollup_sums(integration, resolution, from..i64::MAX)
            .await?;
        Ok(sums
            .into_iter()
            .map(|(name, aggregate)| (name, WindowStats { aggregate }))
            .collect())
    }

    /// Every integration's hourly rollups whose bucket (start, Unix seconds) is in `buckets`,
    /// merged per integration: the pieces a caller keeps to answer a window without reading
    /// all of it again.
    #[instrument(skip_all)]
    pub async fn hourly_sums(
        &self,
        buckets: std::ops::Range<i64>,
    ) -> Result<HashMap<String, Aggregate>, StoreError> {
        self.rollup_sums(None, rollup::HOUR, buckets).await
    }

    /// The rollups of `resolution` in `buckets`, merged per integration (all, or one).
    async fn rollup_sums(
        &self,
        integration: Option<&str>,
        resolution: i64,
        buckets: std::ops::Range<i64>,
    ) -> Result<HashMap<String, Aggregate>, StoreError> {
        let sums: Vec<String> = HISTOGRAM_COLUMNS
            .iter()
            .map(|c| format!("SUM({c}) AS {c}"))
            .collect();
        let filter = if integration.is_some() {
            "AND integration = $4"
        } else {
            ""
        };
        // Built only from the constant column names above and a constant filter: no user text.
        let sql = format!(
            "SELECT integration, SUM(count) AS count, SUM(failures) AS failures, \
             SUM(latency_sum) AS latency_sum, MIN(latency_min) AS latency_min, \
             MAX(latency_max) AS latency_max, {} FROM rollups \
             WHERE resolution = $1 AND bucket >= $2 AND bucket < $3 {filter} GROUP BY integration",
            sums.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(resolution)
            .bind(buckets.start)
            .bind(buckets.end);
        if let Some(name) = integration {
            query = query.bind(name);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            out.insert(row.try_get("integration")?, aggregate_of(&row)?);
        }
        Ok(out)
    }

    /// Deletes raw results, one-minute rollups, one-hour rollups and transitions older than
    /// their `retention`. Each rollup resolution is deleted by its own range of the primary key
    /// `(resolution, bucket, integration)`.
    #[instrument(skip_all)]
    pub async fn prune(
        &self,
        now: DateTime<Utc>,
        retention: &Retention,
    ) -> Result<Pruned, StoreError> {
        let before = |kept: Duration| millis(now) - kept.as_millis() as i64;
        let results = sqlx::query("DELETE FROM check_results WHERE at_ms < $1")
            .bind(before(retention.results))
            .execute(&self.pool)
            .await?
            .rows_affected();
        let minute_rollups = self
            .prune_rollups(rollup::MINUTE, before(retention.minute_rollups))
            .await?;
        let hourly_rollups = self
            .prune_rollups(rollup::HOUR, before(retention.hourly_rollups))
            .await?;
        sqlx::query("DELETE FROM transitions WHERE at_ms < $1")
            .bind(before(retention.hourly_rollups))
            .execute(&self.pool)
            .await?;
        Ok(Pruned {
            results,
            minute_rollups,
            hourly_rollups,
        })
    }

    /// Deletes the rollups of `resolution` whose bucket started before `before_ms`.
    async fn prune_rollups(&self, resolution: i64, before_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM rollups WHERE resolution = $1 AND bucket < $2")
                .bind(resolution)
                .bind(before_ms.div_euclid(1000))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Writes a consistent copy of the database to `dest` while it is in use (`VACUUM INTO`
    /// reads one snapshot, so concurrent writers neither block nor tear the copy).
    #[instrument(skip_all)]
    pub async fn backup(&self, dest: &Path) -> Result<(), StoreError> {
        if dest.exists() {
            return Err(StoreError::Backup(format!(
                "{} already exists; choose a new file name",
                dest.display()
            )));
        }
        let dest = dest
            .to_str()
            .ok_or_else(|| StoreError::Backup("the path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Runs SQLite's integrity check; `Ok(())` when it reports `ok`.
    #[instrument(skip_all)]
    pub async fn integrity_check(&self) -> Result<(), StoreError> {
        let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt(verdict))
        }
    }
}

impl Store {
    /// One integration's hourly rollups for the `hours` hours ending with the current one,
    /// oldest first; hours without checks are `None` (for sparklines).
    #[instrument(skip_all)]
    pub async fn hourly(
        &self,
        integration: &str,
        hours: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<Aggregate>>, StoreError> {
        let current = rollup::bucket_of(millis(now), rollup::HOUR);
        let first = current - i64::from(hours.saturating_sub(1)) * rollup::HOUR;
        let mut series = vec![None; hours as usize];
        for (bucket, aggregate) in self.rollups(integration, rollup::HOUR, first).await? {
            let slot = ((bucket - first) / rollup::HOUR) as usize;
            if let Some(entry) = series.get_mut(slot) {
                *entry = Some(aggregate);
            }
        }
        Ok(series)
    }

    /// One integration's rollup rows of `resolution` ([`rollup::MINUTE`] or [`rollup::HOUR`])
    /// from bucket `first` (Unix seconds) on, oldest first, each with its bucket's start; buckets
    /// without checks have no row. One range scan of the table itself, which is kept in
    /// (integration, resolution, bucket) order (migration 0009), so a day's 1,440 minute rows
    /// lie side by side (`benches/chart.rs`).
    #[instrument(skip_all)]
    pub async fn rollups(
        &self,
        integration: &str,
        resolution: i64,
        first: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let columns = HISTOGRAM_COLUMNS.join(", ");
        // Built only from constant column names: no user text.
        let sql = format!(
            "SELECT bucket, count, failures, latency_sum, latency_min, latency_max, {columns} \
             FROM rollups WHERE integration = $1 AND resolution = $2 AND bucket >= $3 ORDER BY bucket"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(integration)
            .bind(resolution)
            .bind(first)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("bucket")?, aggregate_of(row)?)))
            .collect()
    }

    /// What `integration`'s state did from `from` to `until`: the state it was in at `from`
    /// (the newest earlier transition's, `None` without one) and its transitions in between,
    /// oldest first. Two statements on `transitions_by_integration`.
    #[instrument(skip_all)]
    pub async fn state_history(
        &self,
        integration: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<(Option<State>, Vec<Transition>), StoreError> {
        let before: Option<String> = sqlx::query_scalar(
            "SELECT to_state FROM transitions WHERE integration = $1 AND at_ms < $2 \
             ORDER BY at_ms DESC, id DESC LIMIT 1",
        )
        .bind(integration)
        .bind(millis(from))
        .fetch_optional(&self.pool)
        .await?;
        let before = before
            .map(|state| State::from_str(&state).map_err(StoreError::Corrupt))
            .transpose()?;
        let rows = sqlx::query(
            "SELECT integration, from_state, to_state, reason, at_ms FROM transitions \
             WHERE integration = $1 AND at_ms >= $2 AND at_ms <= $3 ORDER BY at_ms, id",
        )
        .bind(integration)
        .bind(millis(from))
        .bind(millis(until))
        .fetch_all(&self.pool)
        .await?;
        let transitions = rows
            .iter()
            .map(transition_of)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((before, transitions))
    }
}
