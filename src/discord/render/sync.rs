//! How `/sync` shows a run: its progress (a bar and counts), its summary or failure, the list of
//! jobs and a job's history.

use super::{Embed, Reply, actor};
use crate::duration;
use crate::model::echo;
use crate::service::{JobSummary, SyncHistory};
use crate::store::sync::{RunCounts, RunOutcome, SyncRun};
use crate::sync::{Change, Phase, Progress, SyncReport};

/// Cells in a progress bar.
const BAR_CELLS: u64 = 10;
/// Rows named in a summary before "and N more".
const NAMED_ROWS: usize = 10;

/// `▰▰▰▱▱` for a percentage.
fn bar(percent: u64) -> String {
    let filled = percent.min(100) * BAR_CELLS / 100;
    "▰".repeat(filled as usize) + &"▱".repeat((BAR_CELLS - filled) as usize)
}

/// The counts, as `2 created · 5 updated · 29 unchanged` (parts that are zero left out, except
/// unchanged).
fn counts_line(counts: &RunCounts, dry_run: bool) -> String {
    let (created, updated, removed) = if dry_run {
        ("to create", "to update", "to mark removed")
    } else {
        ("created", "updated", "marked removed")
    };
    let mut parts = Vec::new();
    if counts.created > 0 {
        parts.push(format!("{} {created}", counts.created));
    }
    if counts.updated > 0 {
        parts.push(format!("{} {updated}", counts.updated));
    }
    if counts.removed > 0 {
        parts.push(format!("{} {removed}", counts.removed));
    }
    parts.push(format!("{} unchanged", counts.unchanged));
    parts.join(" · ")
}

/// A run's progress: `🔄 status-board · ▰▰▰▱▱ 60% · 36/60 rows · 2 created · ...`.
pub fn sync_progress(job: &str, dry_run: bool, progress: &Progress) -> String {
    let what = if dry_run { "Dry run of" } else { "Syncing" };
    let head = format!("🔄 {what} **{}**", echo(job).trim_matches('"'));
    match progress.phase {
        Phase::Resolving => format!("{head} · finding the database…"),
        Phase::Schema => format!("{head} · reading the schema…"),
        Phase::Reading => format!(
            "{head} · reading the {} rows in Notion…",
            progress.counts.total
        ),
        Phase::Writing => {
            let total = progress.counts.total;
            let percent = progress.percent();
            format!(
                "{head}\n{} {percent}% · {}/{total} rows · {}",
                bar(percent),
                progress.done.min(total),
                counts_line(&progress.counts, dry_run)
            )
        }
    }
}

/// The end of a run: the summary, or the failure and what to do, with the database's link.
pub fn sync_report(report: &SyncReport) -> Reply {
    let took = duration::compact(report.duration);
    let counts = &report.counts;
    let mut lines = Vec::new();
    match (&report.failure, report.dry_run) {
        (Some(failure), _) => {
            lines.push(format!(
                "❌ **{}** failed after {took}: {}",
                report.job, failure.message
            ));
            lines.push(format!("**What to do:** {}", failure.what_to_do));
            if let Some(id) = &failure.request_id {
                lines.push(format!("Notion request id: `{id}`"));
            }
            let done = counts.created + counts.updated + counts.removed + counts.unchanged;
            lines.push(format!(
                "Before it stopped: {done}/{} rows · {} · {} Notion requests",
                counts.total,
                counts_line(counts, false),
                counts.requests
            ));
        }
        (None, true) => {
            lines.push(format!(
                "🧪 Dry run of **{}** ({took}): nothing was written.",
                report.job
            ));
            lines.push(format!(
                "{} rows · {}",
                counts.total,
                counts_line(counts, true)
            ));
            if !report.schema_added.is_empty() {
                lines.push(format!(
                    "Would add properties: {}",
                    report.schema_added.join(", ")
                ));
            }
            lines.extend(changed_rows(report));
            lines.push(format!("{} Notion requests", counts.requests));
        }
        (None, false) => {
            lines.push(format!("✅ **{}** synced in {took}", report.job));
            lines.push(format!(
                "{} rows · {} · {} Notion requests",
                counts.total,
                counts_line(counts, false),
                counts.requests
            ));
            if !report.schema_added.is_empty() {
                lines.push(format!(
                    "Added properties: {}",
                    report.schema_added.join(", ")
                ));
            }
            lines.extend(changed_rows(report));
        }
    }
    if let Some(url) = &report.database_url {
        lines.push(format!("[Open the database in Notion]({url})"));
    }
    Reply::text(lines.join("\n"))
}

/// The rows a run changed, by change, named up to [`NAMED_ROWS`] each.
fn changed_rows(report: &SyncReport) -> Vec<String> {
    let mut lines = Vec::new();
    for (change, label) in [
        (Change::Created, "Created"),
        (Change::Updated, "Updated"),
        (Change::Removed, "Marked removed"),
    ] {
        let rows = report.rows_with(change);
        if rows.is_empty() {
            continue;
        }
        let label = if report.dry_run {
            format!("Would be {}", label.to_lowercase())
        } else {
            label.to_string()
        };
        let mut named = rows
            .iter()
            .take(NAMED_ROWS)
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if rows.len() > NAMED_ROWS {
            named.push_str(&format!(" and {} more", rows.len() - NAMED_ROWS));
        }
        lines.push(format!("{label}: {named}"));
    }
    lines
}

/// A run in one line: when, by whom, how it ended, its counts.
fn run_line(run: &SyncRun) -> String {
    let outcome = match run.outcome {
        RunOutcome::Running => "🔄 running".to_string(),
        RunOutcome::Ok if run.dry_run => "🧪 dry run".to_string(),
        RunOutcome::Ok => "✅ ok".to_string(),
        RunOutcome::Failed => format!(
            "❌ failed ({})",
            run.error_kind.as_deref().unwrap_or("error")
        ),
        RunOutcome::Abandoned => "⚠️ abandoned (its process stopped)".to_string(),
    };
    let took = run.finished_at.map_or(String::new(), |end| {
        format!(
            " in {}",
            duration::compact((end - run.started_at).to_std().unwrap_or_default())
        )
    });
    format!(
        "<t:{}:f> by {}: {outcome}{took} · {} rows · {} · {} requests",
        run.started_at.timestamp(),
        actor(&run.actor),
        run.counts.total,
        counts_line(&run.counts, run.dry_run),
        run.counts.requests
    )
}

/// `/sync list`: each job with its kind, schedule and last run.
pub fn sync_list(jobs: &[JobSummary], now: chrono::DateTime<chrono::Utc>) -> Reply {
    if jobs.is_empty() {
        return Reply::text(
            "No sync jobs are configured: add a [[sync]] table to the config (see patchbay.example.toml).",
        );
    }
    let mut embed = Embed::new("Sync jobs");
    for job in jobs {
        let schedule = job.every.map_or("on demand".to_string(), |every| {
            format!("every {}", duration::compact(every))
        });
        let last = job
            .last_run
            .as_ref()
            .map_or("never run".to_string(), run_line);
        let next = match (job.every, &job.last_run) {
            (Some(every), Some(run)) => {
                let due = run.started_at
                    + chrono::Duration::from_std(every).unwrap_or(chrono::Duration::zero());
                if due > now {
                    format!("\nnext <t:{}:R>", due.timestamp())
                } else {
                    "\nnext: due now".to_string()
                }
            }
            _ => String::new(),
        };
        embed = embed.field(
            format!("{} · {} · {schedule}", job.name, job.kind.as_str()),
            format!("{last}{next}"),
            false,
        );
    }
    Reply::embed(embed)
}

/// `/sync history`: a page of a job's runs.
pub fn sync_history(history: &SyncHistory) -> Reply {
    if history.runs.is_empty() {
        return Reply::text(format!(
            "**{}** has not run yet: `/sync run job:{}` runs it.",
            history.job, history.job
        ));
    }
    let lines: Vec<String> = history.runs.iter().map(run_line).collect();
    let mut footer = format!(
        "Page {} of {} · {} runs",
        history.page + 1,
        history.pages,
        history.total
    );
    if history.page + 1 < history.pages {
        footer.push_str(&format!(" · page:{} shows older ones", history.page + 2));
    }
    Reply::embed(
        Embed::new(format!("Runs of {}", history.job))
            .description(lines.join("\n"))
            .footer(footer),
    )
}

/// "Already running": who started it, how long ago, and where to watch it.
pub(super) fn busy_text(run: &SyncRun) -> String {
    let ago = (crate::model::now() - run.started_at)
        .to_std()
        .unwrap_or_default();
    let watch = run
        .progress_link
        .as_ref()
        .map_or(String::new(), |link| format!(": watch it at {link}"));
    format!(
        "⏳ **{}** is already running, started by {} {} ago{watch}",
        run.job,
        actor(&run.actor),
        duration::human(ago)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_rows_done() {
        assert_eq!(bar(0), "▱▱▱▱▱▱▱▱▱▱");
        assert_eq!(bar(60), "▰▰▰▰▰▰▱▱▱▱");
        assert_eq!(bar(100), "▰▰▰▰▰▰▰▰▰▰");
        assert_eq!(bar(250), "▰▰▰▰▰▰▰▰▰▰");
    }

    #[test]
    fn progress_reads_like_the_issue_asks() {
        let progress = Progress {
            run: 1,
            phase: Phase::Writing,
            done: 36,
            counts: RunCounts {
                total: 60,
                created: 2,
                updated: 5,
                unchanged: 29,
                removed: 0,
                requests: 9,
            },
        };
        assert_eq!(
            sync_progress("status-board", false, &progress),
            "🔄 Syncing **status-board**\n▰▰▰▰▰▰▱▱▱▱ 60% · 36/60 rows · 2 created · 5 updated · 29 unchanged"
        );
    }
}
