//! `/sync run|list|history`, `patchbay sync run|list` and the schedule: the sync jobs of the
//! config, run through [`crate::sync::Syncs`]. Answers are values ([`SyncReport`],
//! [`JobSummary`], [`SyncHistory`]); a run that could not start or failed is a
//! [`CommandError`] carrying the facts (the run holding the lease, the failed run's report).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{CommandError, ControlPlane, Invalid, Invocation};
use crate::access::{Caller, Permission};
use crate::config::{Config, SyncKind};
use crate::model::Actor;
use crate::store::sync::SyncRun;
use crate::sync::{Progress, RunRequest, SyncError, SyncReport, Syncs};

/// Runs shown per page of `/sync history`.
pub const HISTORY_PAGE: usize = 10;

/// One job as `/sync list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    /// The job.
    pub name: String,
    /// What it keeps.
    pub kind: SyncKind,
    /// Its schedule; `None`: on demand only.
    pub every: Option<Duration>,
    /// Its latest run.
    pub last_run: Option<SyncRun>,
}

/// A page of a job's runs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncHistory {
    /// The job.
    pub job: String,
    /// The runs of this page.
    pub runs: Vec<SyncRun>,
    /// This page, from 0.
    pub page: usize,
    /// How many pages there are (at least 1).
    pub pages: usize,
    /// How many runs there are.
    pub total: usize,
}

impl ControlPlane {
    /// Adds the sync jobs, for `/sync` and the schedule.
    pub fn with_syncs(mut self, syncs: Arc<Syncs>) -> ControlPlane {
        self.syncs = Some(syncs);
        self
    }

    fn syncs(&self) -> Result<&Syncs, CommandError> {
        self.syncs
            .as_deref()
            .ok_or(CommandError::Invalid(Invalid::NoSyncs))
    }

    /// The names of the configured jobs that start with or contain `partial`, for
    /// autocomplete.
    pub fn suggest_jobs(&self, partial: &str, limit: usize) -> Vec<String> {
        let config = self.config();
        let partial = partial.trim().to_ascii_lowercase();
        let mut names: Vec<(u8, String)> = config
            .sync
            .iter()
            .filter_map(|job| {
                if job.name.starts_with(&partial) {
                    Some((0, job.name.clone()))
                } else if job.name.contains(&partial) {
                    Some((1, job.name.clone()))
                } else {
                    None
                }
            })
            .collect();
        names.sort();
        names.into_iter().take(limit).map(|(_, n)| n).collect()
    }

    /// `/sync run`: runs job `name` for `actor` (who the run is recorded as started by),
    /// telling `progress` where it is. `progress_link` is where the caller shows progress, told
    /// to anyone who triggers the job while it runs.
    pub async fn sync_run(
        &self,
        name: &str,
        actor: Actor,
        dry_run: bool,
        progress_link: Option<String>,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<SyncReport, CommandError> {
        let syncs = self.syncs()?;
        let config = self.config();
        let job = find_job(&config, name)?;
        let request = RunRequest {
            job,
            actor,
            dry_run,
            progress_link,
        };
        match syncs.run(&config, request, progress).await {
            Ok(report) => Ok(report),
            Err(SyncError::Busy(run)) => Err(CommandError::Busy(run)),
            Err(SyncError::Failed(report)) => Err(CommandError::SyncFailed(report)),
            Err(SyncError::Store(err)) => Err(err.into()),
        }
    }

    /// `/sync list`: every job with its schedule and latest run.
    pub async fn sync_list(&self) -> Result<Vec<JobSummary>, CommandError> {
        let config = self.config();
        let mut last = self.store.last_runs().await?;
        Ok(config
            .sync
            .iter()
            .map(|job| JobSummary {
                name: job.name.clone(),
                kind: job.kind,
                every: job.every,
                last_run: last.remove(&job.name),
            })
            .collect())
    }

    /// `/sync history`: page `page` (from 0) of job `name`'s runs, newest first.
    pub async fn sync_history(&self, name: &str, page: usize) -> Result<SyncHistory, CommandError> {
        let config = self.config();
        let job = find_job(&config, name)?;
        let (runs, total) = self
            .store
            .sync_runs(&job.name, page * HISTORY_PAGE, HISTORY_PAGE)
            .await?;
        if runs.is_empty() && page > 0 {
            return Err(Invalid::NoOlderEntries.into());
        }
        Ok(SyncHistory {
            job: job.name.clone(),
            runs,
            page,
            pages: total.div_ceil(HISTORY_PAGE).max(1),
            total,
        })
    }

    /// One run of any job, by id (the REST API follows a run it started so).
    pub async fn sync_run_record(&self, id: i64) -> Result<SyncRun, CommandError> {
        self.store
            .sync_run(id)
            .await?
            .ok_or_else(|| Invalid::UnknownRun { run: id }.into())
    }

    /// Runs every job that has a schedule when it is due, as the scheduler, through
    /// [`ControlPlane::invoke`] (so each run is audited), until `stop`. A job is due `every`
    /// after its latest run started (at once when it never ran); a job already running is
    /// skipped until its next turn. The config is read again every turn, so a reload takes.
    pub async fn run_schedules(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let config = self.config();
            let now = crate::model::now();
            let last = match self.store.last_runs().await {
                Ok(last) => last,
                Err(err) => {
                    tracing::warn!(error = %err, "could not read the sync runs; trying again");
                    std::collections::HashMap::default()
                }
            };
            let mut next_wake = Duration::from_secs(60);
            for job in &config.sync {
                let Some(every) = job.every else { continue };
                let due_in = last.get(&job.name).map_or(Duration::ZERO, |run| {
                    let due = run.started_at
                        + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
                    (due - now).to_std().unwrap_or(Duration::ZERO)
                });
                if due_in.is_zero() {
                    let plane = self.clone();
                    let name = job.name.clone();
                    tokio::spawn(async move { plane.scheduled_run(&name).await });
                    next_wake = next_wake.min(every);
                } else {
                    next_wake = next_wake.min(due_in);
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(next_wake.max(Duration::from_secs(1))) => {}
            }
        }
    }

    async fn scheduled_run(&self, name: &str) {
        let actor = Actor::Scheduler {
            job: name.to_string(),
        };
        let invocation = Invocation {
            actor: actor.clone(),
            caller: Caller::Local,
            channel: None,
            command: "sync run".into(),
            permission: Some(Permission::SyncRun),
            options: vec![crate::audit::InvocationOption::new(
                "job",
                crate::audit::OptionValue::Text(name.to_string()),
            )],
            received: std::time::Instant::now(),
        };
        let outcome = self
            .invoke(&invocation, || {
                self.sync_run(name, actor.clone(), false, None, &|_| {})
            })
            .await;
        match outcome {
            Ok(_) | Err(CommandError::SyncFailed(_)) => {}
            Err(CommandError::Busy(run)) => tracing::info!(job = %name, run = run.id,
                "scheduled sync skipped: the job is already running"),
            Err(err) => tracing::warn!(job = %name, error = %err, "scheduled sync did not run"),
        }
    }
}

fn find_job<'a>(
    config: &'a Config,
    name: &str,
) -> Result<&'a crate::config::SyncJob, CommandError> {
    config.sync_job(name.trim()).ok_or_else(|| {
        let names: Vec<&str> = config.sync.iter().map(|job| job.name.as_str()).collect();
        CommandError::Invalid(Invalid::UnknownJob {
            name: name.to_string(),
            suggestions: crate::suggest::closest(name, &names)
                .map(|close| vec![close.to_string()])
                .unwrap_or_default(),
            known: names.iter().map(|n| (*n).to_string()).collect(),
        })
    })
}
