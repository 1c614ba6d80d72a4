//! Sync jobs: what patchbay keeps up to date in Notion (`[[sync]]` in the config).
//!
//! - [`Syncs::run`] runs one job once, whoever asked (a Discord member, the command line, the
//!   scheduler, an API key): it takes the job's lease in the database (one run per job at a
//!   time, across processes), records the run, does the job's work through the Notion client,
//!   tells the caller its [`Progress`] as it goes, and stores how it ended. A second run of the
//!   same job while one holds the lease is refused with the run that holds it.
//! - The lease lasts [`LEASE_TTL`] and is renewed while the run lives. A run whose process
//!   died keeps its lease until it lapses, or until a process on the same host sees that the
//!   holder's pid is gone and takes it over at once.
//! - `board.rs` is the status board (one row per integration); the incident log is fed by the
//!   alert pipeline through its outbox.
//!
//! Nothing here knows who renders the progress: the fronts do.

mod board;
pub mod incident_log;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, SyncJob, SyncKind};
use crate::metrics::Metrics;
use crate::model::Actor;
use crate::notion::{Notion, NotionError};
use crate::store::sync::{LeaseOutcome, NewRun, RunCounts, RunOutcome, SyncRun};
use crate::store::{Store, StoreError};

/// How long a run's lease lasts unless renewed; it is renewed every third of that.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Finding the database's data source.
    Resolving,
    /// Reading the schema and adding what is missing.
    Schema,
    /// Reading the rows already in Notion.
    Reading,
    /// Writing the rows that changed.
    Writing,
}

/// A run's progress, as the fronts show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The run.
    pub run: i64,
    /// Where it is.
    pub phase: Phase,
    /// Rows decided (written, or found unchanged) so far.
    pub done: u64,
    /// What it did so far (`total` is the rows it keeps, once known).
    pub counts: RunCounts,
}

impl Progress {
    /// How far the writing is, in percent of the rows (100 when there are none).
    pub fn percent(&self) -> u64 {
        (self.done.min(self.counts.total) * 100)
            .checked_div(self.counts.total)
            .unwrap_or(100)
    }
}

/// One row change a run made (or, in a dry run, would make).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowChange {
    /// The row (an integration's name).
    pub row: String,
    /// What happened to it.
    pub change: Change,
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A page was created.
    Created,
    /// The page was updated.
    Updated,
    /// The page was marked removed.
    Removed,
}

/// How a run ended: its counts, time, and what changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    /// The run's id.
    pub run: i64,
    /// The job.
    pub job: String,
    /// What the job keeps.
    pub kind: SyncKind,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// What it did.
    pub counts: RunCounts,
    /// Properties added to the schema (or that a dry run would add).
    pub schema_added: Vec<String>,
    /// The rows changed (or that a dry run would change), in the order decided.
    pub changes: Vec<RowChange>,
    /// The database's link.
    pub database_url: Option<String>,
    /// Why it stopped, when it failed.
    pub failure: Option<SyncFailure>,
}

impl SyncReport {
    /// The rows that had `change` (or, in a dry run, would have), in the order decided.
    pub fn rows_with(&self, change: Change) -> Vec<&str> {
        self.changes
            .iter()
            .filter(|c| c.change == change)
            .map(|c| c.row.as_str())
            .collect()
    }
}

/// Why a run failed, and what a person can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncFailure {
    /// The error's kind (`auth`, `setup`, `rate_limited`, `server`, ...).
    pub kind: String,
    /// Notion's error code, when it answered one.
    pub code: Option<String>,
    /// What went wrong.
    pub message: String,
    /// What to do.
    pub what_to_do: String,
    /// Notion's request id, when it answered one.
    pub request_id: Option<String>,
}

/// Why a run did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Another run of the job holds the lease.
    #[error("sync job {} is already running (run {})", .0.job, .0.id)]
    Busy(Box<SyncRun>),
    /// The run started and failed; the report says how far it got and why.
    #[error("sync failed: {}", .0.failure.as_ref().map_or("", |f| f.message.as_str()))]
    Failed(Box<SyncReport>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request to run a job.
#[derive(Debug, Clone)]
pub struct RunRequest<'a> {
    /// The job.
    pub job: &'a SyncJob,
    /// Who asks.
    pub actor: Actor,
    /// Compute and show what would change, write nothing.
    pub dry_run: bool,
    /// Where the caller shows the run's progress (told to a second trigger).
    pub progress_link: Option<String>,
}

/// The sync jobs of one process.
pub struct Syncs {
    store: Store,
    notion: Arc<Notion>,
    metrics: Option<Arc<Metrics>>,
    holder: String,
    lease_ttl: Duration,
}

impl Syncs {
    /// Sync jobs writing through `notion`'s clients and recording runs in `store`.
    pub fn new(store: Store, notion: Arc<Notion>, metrics: Option<Arc<Metrics>>) -> Syncs {
        Syncs {
            store,
            notion,
            metrics,
            holder: crate::store::lease::holder_id(),
            lease_ttl: LEASE_TTL,
        }
    }

    /// The same, with leases of `ttl` (tests of a lapsed lease).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Syncs {
        self.lease_ttl = ttl;
        self
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `request.job` once, telling `progress` where it is; see the module docs.
    pub async fn run(
        &self,
        config: &Config,
        request: RunRequest<'_>,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<SyncReport, SyncError> {
        let job = request.job;
        let started_at = crate::model::now();
        let started = tokio::time::Instant::now();
        let lease = self
            .store
            .start_run(
                NewRun {
                    job: &job.name,
                    kind: job.kind.as_str(),
                    actor: &request.actor,
                    dry_run: request.dry_run,
                    holder: &self.holder,
                    ttl: self.lease_ttl,
                    now: started_at,
                },
                crate::store::lease::holder_is_dead,
            )
            .await?;
        let run = match lease {
            LeaseOutcome::Held(running) => return Err(SyncError::Busy(running)),
            LeaseOutcome::Acquired(run) => run,
        };
        if let Some(link) = &request.progress_link {
            self.store.set_progress_link(run, link).await?;
        }
        tracing::info!(job = %job.name, run, actor = %request.actor.parts().2,
            dry_run = request.dry_run, "sync run started");

        let lost = Arc::new(AtomicBool::new(false));
        // Dropped with this future, so a caller that gives up on the run stops the renewals
        // and the lease lapses.
        let renewer = AbortOnDrop(self.renew_while_running(&job.name, run, lost.clone()));
        let client = self.notion.client(&job.token);
        let mut work = Work {
            run,
            job,
            config,
            store: &self.store,
            client: &client,
            dry_run: request.dry_run,
            now: started_at,
            lost: &lost,
            progress,
            counts: RunCounts::default(),
            schema_added: Vec::new(),
            changes: Vec::new(),
            database_url: None,
        };
        let outcome = match job.kind {
            SyncKind::NotionStatusBoard => board::run(&mut work).await,
            SyncKind::NotionIncidentLog => incident_log::run(&mut work).await,
        };
        drop(renewer);
        work.counts.requests = client.requests_used();
        let failure = outcome.err().map(|error| SyncFailure {
            kind: error.kind().to_string(),
            code: error.code().map(str::to_string),
            message: error.to_string(),
            what_to_do: error.what_to_do(client.token_variable()),
            request_id: error.request_id().map(str::to_string),
        });
        let report = SyncReport {
            run,
            job: job.name.clone(),
            kind: job.kind,
            dry_run: request.dry_run,
            started_at,
            duration: started.elapsed(),
            counts: work.counts,
            schema_added: work.schema_added,
            changes: work.changes,
            database_url: work.database_url,
            failure,
        };
        let (outcome, error) = match &report.failure {
            None => (RunOutcome::Ok, None),
            Some(failure) => (
                RunOutcome::Failed,
                Some((
                    failure.kind.as_str(),
                    format!("{}; {}", failure.message, failure.what_to_do),
                )),
            ),
        };
        self.store
            .finish_run(
                &job.name,
                run,
                outcome,
                &report.counts,
                error
                    .as_ref()
                    .map(|(kind, message)| (*kind, message.as_str())),
                crate::model::now(),
            )
            .await?;
        if let Some(metrics) = &self.metrics {
            let label = if report.failure.is_some() {
                "failed"
            } else {
                "ok"
            };
            metrics
                .sync_runs
                .with_label_values(&[&job.name, label])
                .inc();
        }
        match &report.failure {
            None => {
                tracing::info!(job = %job.name, run, created = report.counts.created,
                    updated = report.counts.updated, unchanged = report.counts.unchanged,
                    removed = report.counts.removed, requests = report.counts.requests,
                    "sync run finished");
                Ok(report)
            }
            Some(failure) => {
                tracing::warn!(job = %job.name, run, kind = %failure.kind,
                    request_id = failure.request_id.as_deref().unwrap_or("none"),
                    "sync run failed: {}", failure.message);
                Err(SyncError::Failed(Box::new(report)))
            }
        }
    }

    /// Renews `run`'s lease every third of its length until aborted; a renewal that finds the
    /// lease gone sets `lost`, and the run stops before its next write.
    fn renew_while_running(
        &self,
        job: &str,
        run: i64,
        lost: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let job = job.to_string();
        let ttl = self.lease_ttl;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                let until = crate::model::now()
                    + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30));
                match store.renew_lease(&job, run, until).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %job, run, "sync run lost its lease");
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(err) => tracing::warn!(job = %job, run, error = %err,
                        "could not renew a sync lease; trying again"),
                }
            }
        })
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one run works with, and what it has done so far.
struct Work<'a> {
    run: i64,
    job: &'a SyncJob,
    config: &'a Config,
    store: &'a Store,
    client: &'a crate::notion::Client,
    dry_run: bool,
    now: DateTime<Utc>,
    lost: &'a AtomicBool,
    progress: &'a (dyn Fn(&Progress) + Send + Sync),
    counts: RunCounts,
    schema_added: Vec<String>,
    changes: Vec<RowChange>,
    database_url: Option<String>,
}

impl Work<'_> {
    /// Tells the caller where the run is.
    fn report(&mut self, phase: Phase) {
        self.counts.requests = self.client.requests_used();
        let done =
            self.counts.created + self.counts.updated + self.counts.unchanged + self.counts.removed;
        (self.progress)(&Progress {
            run: self.run,
            phase,
            done,
            counts: self.counts,
        });
    }

    /// Fails when another run took the lease over (this process stalled past its lease).
    fn still_leased(&self) -> Result<(), NotionError> {
        if self.lost.load(Ordering::SeqCst) {
            Err(NotionError::Setup(
                "the run lost its lease (this process stalled longer than the lease); another run took over"
                    .into(),
            ))
        } else {
            Ok(())
        }
    }
}

/// A run stopped by patchbay's own database is reported like a setup problem, with the
/// database's error.
impl From<StoreError> for NotionError {
    fn from(err: StoreError) -> Self {
        NotionError::Setup(format!("patchbay's database failed: {err}"))
    }
}

/// A property a job needs: its name, its type, and the configuration sent when adding it.
type Wanted = (&'static str, &'static str, serde_json::Value);

/// Checks a data source's schema against what a job writes: the title property's name (the
/// one every data source has, whatever it is called) and the properties to add, in `wanted`'s
/// order; a property that exists with another type is an error naming it, since retyping it
/// would lose what people wrote there.
fn plan_schema(
    schema: &crate::notion::wire::DataSource,
    wanted: &[Wanted],
) -> Result<(String, Vec<(String, serde_json::Value)>), NotionError> {
    let title = schema
        .title_property()
        .ok_or_else(|| NotionError::Setup("the data source has no title property".into()))?
        .to_string();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (name, kind, configuration) in wanted {
        match schema.properties.get(*name) {
            Some(existing) if existing.kind == *kind => {}
            Some(existing) => wrong.push(format!(
                "\"{name}\" is a {} property in Notion, patchbay writes a {} there",
                existing.kind.replace('_', " "),
                kind.replace('_', " ")
            )),
            None => missing.push(((*name).to_string(), configuration.clone())),
        }
    }
    if wrong.is_empty() {
        Ok((title, missing))
    } else {
        Err(NotionError::Setup(format!(
            "{}: rename or delete it in Notion (patchbay then adds its own), or point the job at another database; nothing was written",
            wrong.join("; ")
        )))
    }
}

/// Counts one change.
fn count_change(counts: &mut RunCounts, change: Change) {
    match change {
        Change::Created => counts.created += 1,
        Change::Updated => counts.updated += 1,
        Change::Removed => counts.removed += 1,
    }
}
