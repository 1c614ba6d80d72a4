//! `patchbay sync list` and `patchbay sync run <job> [--dry-run]`: the sync jobs from the
//! command line, for cron and headless installs. A run goes through the control plane like
//! `/sync run` (same lease, same audit entry, recorded as started by the OS user), prints a
//! progress line on standard error and the summary on standard output, and exits 0 on success,
//! 1 on failure (a refused or failed run included).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::access::{Caller, Permission};
use crate::audit::{InvocationOption, OptionValue};
use crate::config::Config;
use crate::duration;
use crate::model::Actor;
use crate::notion::Notion;
use crate::service::{CommandError, ControlPlane, Invocation};
use crate::store::Store;
use crate::store::sync::{RunCounts, RunOutcome, SyncRun};
use crate::sync::{Change, Phase, Progress, SyncReport, Syncs};

/// The last progress line printed (when, in which phase), and the latest one not printed yet.
type Printed = (Option<(Instant, Phase)>, Option<String>);

/// How often a progress line is printed when standard error is not a terminal.
const LOG_PROGRESS_EVERY: Duration = Duration::from_secs(5);

async fn plane(config: &Config) -> anyhow::Result<(ControlPlane, Store)> {
    let store = Store::open(&config.storage.url).await?;
    let notion = Arc::new(Notion::new(config.notion_api_base.clone(), None));
    let syncs = Arc::new(Syncs::new(store.clone(), notion, None));
    let plane = ControlPlane::new(config, store.clone(), None)
        .await?
        .with_syncs(syncs);
    Ok((plane, store))
}

fn cli_actor() -> Actor {
    Actor::Cli {
        user: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into()),
    }
}

fn invocation(command: &str, permission: Permission, options: Vec<InvocationOption>) -> Invocation {
    Invocation {
        actor: cli_actor(),
        caller: Caller::Local,
        channel: None,
        command: command.into(),
        permission: Some(permission),
        options,
        received: std::time::Instant::now(),
    }
}

/// `patchbay sync list`.
pub async fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let (plane, store) = plane(config).await?;
    let invocation = invocation("sync list", Permission::StatusView, Vec::new());
    let jobs = plane.invoke(&invocation, || plane.sync_list()).await;
    store.close().await;
    let jobs = jobs.map_err(|err| anyhow::anyhow!("{err}"))?;
    if jobs.is_empty() {
        println!("No sync jobs are configured: add a [[sync]] table (see patchbay.example.toml).");
        return Ok(ExitCode::SUCCESS);
    }
    for job in jobs {
        let schedule = job.every.map_or("on demand".to_string(), |every| {
            format!("every {}", duration::compact(every))
        });
        println!("{}  {}  {schedule}", job.name, job.kind.as_str());
        match &job.last_run {
            Some(run) => println!("  last run: {}", run_line(run)),
            None => println!("  last run: never"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `patchbay sync run <job> [--dry-run]`.
pub async fn run(config: &Config, job: &str, dry_run: bool) -> anyhow::Result<ExitCode> {
    let (plane, store) = plane(config).await?;
    let invocation = invocation(
        "sync run",
        Permission::SyncRun,
        vec![
            InvocationOption::new("job", OptionValue::Text(job.to_string())),
            InvocationOption::new("dry_run", OptionValue::Boolean(dry_run)),
        ],
    );
    let terminal = std::io::stderr().is_terminal();
    let last: Mutex<Printed> = Mutex::new((None, None));
    let progress = |progress: &Progress| {
        let mut last = last.lock().expect("progress lock");
        let line = progress_line(job, dry_run, progress);
        if terminal {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
        } else if last
            .0
            .is_none_or(|(at, phase)| phase != progress.phase || at.elapsed() >= LOG_PROGRESS_EVERY)
        {
            eprintln!("{line}");
            *last = (Some((Instant::now(), progress.phase)), None);
        } else {
            last.1 = Some(line);
        }
    };
    let actor = invocation.actor.clone();
    let answer = plane
        .invoke(&invocation, || {
            plane.sync_run(job, actor.clone(), dry_run, None, &progress)
        })
        .await;
    if terminal {
        eprintln!();
    } else if let Some(line) = last.lock().expect("progress lock").1.take() {
        // Where the run ended, even within the interval.
        eprintln!("{line}");
    }
    store.close().await;
    match answer {
        Ok(report) => {
            println!("{}", summary(&report));
            Ok(ExitCode::SUCCESS)
        }
        Err(CommandError::SyncFailed(report)) => {
            println!("{}", summary(&report));
            Ok(ExitCode::FAILURE)
        }
        Err(CommandError::Busy(run)) => {
            let ago = (crate::model::now() - run.started_at)
                .to_std()
                .unwrap_or_default();
            eprintln!(
                "{} is already running, started by {} {} ago{}",
                run.job,
                who(&run.actor),
                duration::human(ago),
                run.progress_link
                    .as_ref()
                    .map_or(String::new(), |link| format!(" (progress: {link})"))
            );
            Ok(ExitCode::FAILURE)
        }
        Err(err) => {
            eprintln!("error: {err}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn counts_text(counts: &RunCounts, dry_run: bool) -> String {
    let verb = |done: &'static str, planned: &'static str| if dry_run { planned } else { done };
    format!(
        "{} {} · {} {} · {} {} · {} unchanged",
        counts.created,
        verb("created", "to create"),
        counts.updated,
        verb("updated", "to update"),
        counts.removed,
        verb("marked removed", "to mark removed"),
        counts.unchanged
    )
}

fn progress_line(job: &str, dry_run: bool, progress: &Progress) -> String {
    let what = if dry_run { "dry run of" } else { "syncing" };
    match progress.phase {
        Phase::Resolving => format!("{what} {job}: finding the database"),
        Phase::Schema => format!("{what} {job}: reading the schema"),
        Phase::Reading => format!(
            "{what} {job}: reading the rows in Notion ({} to keep)",
            progress.counts.total
        ),
        Phase::Writing => {
            let total = progress.counts.total;
            format!(
                "{what} {job}: {}% · {}/{total} rows · {} · {} requests",
                progress.percent(),
                progress.done.min(total),
                counts_text(&progress.counts, dry_run),
                progress.counts.requests
            )
        }
    }
}

fn summary(report: &SyncReport) -> String {
    let took = duration::compact(report.duration);
    let counts = &report.counts;
    let mut lines = Vec::new();
    match &report.failure {
        Some(failure) => {
            lines.push(format!(
                "{} failed after {took}: {}",
                report.job, failure.message
            ));
            lines.push(format!("what to do: {}", failure.what_to_do));
            if let Some(id) = &failure.request_id {
                lines.push(format!("Notion request id: {id}"));
            }
        }
        None if report.dry_run => lines.push(format!(
            "dry run of {} ({took}): nothing was written",
            report.job
        )),
        None => lines.push(format!("{} synced in {took}", report.job)),
    }
    lines.push(format!(
        "{} rows · {} · {} Notion requests",
        counts.total,
        counts_text(counts, report.dry_run),
        counts.requests
    ));
    if !report.schema_added.is_empty() {
        let verb = if report.dry_run { "would add" } else { "added" };
        lines.push(format!(
            "{verb} properties: {}",
            report.schema_added.join(", ")
        ));
    }
    for (change, label) in [
        (Change::Created, "created"),
        (Change::Updated, "updated"),
        (Change::Removed, "marked removed"),
    ] {
        let rows = report.rows_with(change);
        if !rows.is_empty() {
            let label = if report.dry_run {
                format!("would be {label}")
            } else {
                label.to_string()
            };
            lines.push(format!("{label}: {}", rows.join(", ")));
        }
    }
    if let Some(url) = &report.database_url {
        lines.push(format!("database: {url}"));
    }
    lines.join("\n")
}

fn who(actor: &Actor) -> String {
    match actor {
        Actor::Discord { name, .. } => format!("{name} (Discord)"),
        Actor::ApiKey { key } => format!("API key {key}"),
        Actor::Scheduler { .. } => "the schedule".into(),
        Actor::Cli { user } => format!("{user} (command line)"),
    }
}

fn run_line(run: &SyncRun) -> String {
    let outcome = match run.outcome {
        RunOutcome::Running => "running".to_string(),
        RunOutcome::Ok if run.dry_run => "ok (dry run)".to_string(),
        RunOutcome::Ok => "ok".to_string(),
        RunOutcome::Failed => format!("failed ({})", run.error_kind.as_deref().unwrap_or("error")),
        RunOutcome::Abandoned => "abandoned".to_string(),
    };
    format!(
        "{} by {}: {outcome} · {} rows · {} · {} requests",
        run.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        who(&run.actor),
        run.counts.total,
        counts_text(&run.counts, run.dry_run),
        run.counts.requests
    )
}
