//! The incident log (`notion-incident-log`): one Notion page per incident, its properties kept
//! up to date and its timeline appended as the incident changes.
//!
//! The alert pipeline writes every change of an incident to `incident_events` in the same
//! transaction as the change itself; that table is the outbox. Each incident-log job follows
//! it with a cursor in the database and moves the cursor only once Notion confirmed: a Notion
//! outage delays entries and loses none, a restart neither repeats nor skips one. Events are
//! taken in order; consecutive events of one incident go in one append (at most 100 blocks a
//! request). An incident without a page gets one, with a summary callout and its whole
//! timeline so far; a create whose answer was lost is found again by its title before another
//! is made. An append whose answer was lost is checked against the page's last blocks before
//! it is sent again.
//!
//! A grouped Discord alert is still one page per incident: the log follows incidents, not
//! messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, SyncJob, SyncKind};
use crate::notion::wire::{
    callout_block, date_value, plain_text, rich_text_value, select_value, text_block, title_value,
};
use crate::notion::{Client, Notion, NotionError};
use crate::resilience::RetryPolicy;
use crate::store::Store;
use crate::store::sync::{IncidentRecord, LogEvent};

const INTEGRATION: &str = "Integration";
const SEVERITY: &str = "Severity";
const STATUS: &str = "Status";
const STARTED: &str = "Started";
const RESOLVED: &str = "Resolved";
const DURATION: &str = "Duration";

/// Events read per turn.
const BATCH: usize = 200;
/// How long a refusal (a database not shared, a wrong property) waits before the next try: it
/// needs a person, and is logged each time.
const REFUSED_RETRY: Duration = Duration::from_secs(600);
/// How often the log looks for new events when nothing wakes it.
const IDLE_WAKE: Duration = Duration::from_secs(30);

/// The schema an incident log needs besides its title: (name, type, configuration).
fn wanted_properties() -> Vec<super::Wanted> {
    let options = |names: &[(&str, &str)]| -> Value {
        Value::Array(
            names
                .iter()
                .map(|(name, color)| json!({ "name": name, "color": color }))
                .collect(),
        )
    };
    vec![
        (INTEGRATION, "rich_text", json!({ "rich_text": {} })),
        (
            SEVERITY,
            "select",
            json!({ "select": { "options": options(&[("critical", "red"), ("warning", "yellow")]) } }),
        ),
        (
            STATUS,
            "select",
            json!({ "select": { "options": options(&[("Open", "red"), ("Acknowledged", "yellow"), ("Resolved", "green")]) } }),
        ),
        (STARTED, "date", json!({ "date": {} })),
        (RESOLVED, "date", json!({ "date": {} })),
        (DURATION, "rich_text", json!({ "rich_text": {} })),
    ]
}

/// A job's data source, checked and completed once per process (again after an error).
#[derive(Debug, Clone)]
struct Ready {
    data_source: String,
    title: String,
}

/// The incident logs of one process.
pub struct IncidentLog {
    store: Store,
    notion: Arc<Notion>,
    config: std::sync::RwLock<Arc<Config>>,
    changes: watch::Receiver<u64>,
    holder: String,
}

impl IncidentLog {
    /// Incident logs for the `[[sync]]` jobs of kind `notion-incident-log` in `config`, woken by
    /// `changes` (bumped by the alert pipeline whenever it commits).
    pub fn new(
        store: Store,
        notion: Arc<Notion>,
        config: &Config,
        changes: watch::Receiver<u64>,
    ) -> IncidentLog {
        IncidentLog {
            store,
            notion,
            config: std::sync::RwLock::new(Arc::new(config.clone())),
            changes,
            holder: crate::store::lease::holder_id(),
        }
    }

    /// Takes a reloaded config: jobs added or removed follow it.
    pub fn reload(&self, config: &Config) {
        *self.config.write().expect("config lock") = Arc::new(config.clone());
    }

    fn jobs(&self) -> Vec<SyncJob> {
        self.config
            .read()
            .expect("config lock")
            .sync
            .iter()
            .filter(|job| job.kind == SyncKind::NotionIncidentLog)
            .cloned()
            .collect()
    }

    /// Writes every job's new events until `stop`, retrying failures with backoff (refusals
    /// every 10 minutes), never skipping one.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut changes = self.changes.clone();
        let mut ready: HashMap<String, Ready> = HashMap::new();
        let mut failing: HashMap<String, (u32, tokio::time::Instant)> = HashMap::new();
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        };
        loop {
            let mut next_wake = IDLE_WAKE;
            for job in self.jobs() {
                if let Some((_, until)) = failing.get(&job.name)
                    && *until > tokio::time::Instant::now()
                {
                    next_wake = next_wake.min(*until - tokio::time::Instant::now());
                    continue;
                }
                match self.write_job(&job, &mut ready).await {
                    Ok(more) => {
                        failing.remove(&job.name);
                        if more {
                            next_wake = Duration::ZERO;
                        }
                    }
                    Err(error) => {
                        ready.remove(&job.name);
                        let failures = failing.get(&job.name).map_or(0, |(n, _)| *n);
                        let wait =
                            if matches!(error.kind(), "setup" | "auth" | "client" | "bad_response")
                            {
                                REFUSED_RETRY
                            } else {
                                policy
                                    .delay_for(failures.min(16), None)
                                    .unwrap_or(policy.max_delay)
                                    .max(Duration::from_millis(200))
                            };
                        tracing::warn!(
                            job = %job.name,
                            kind = error.kind(),
                            request_id = error.request_id().unwrap_or("none"),
                            retry_in_ms = wait.as_millis() as u64,
                            "the incident log could not write to Notion: {error}; {}",
                            error.what_to_do(&job.token.variable)
                        );
                        failing.insert(
                            job.name.clone(),
                            (failures + 1, tokio::time::Instant::now() + wait),
                        );
                        next_wake = next_wake.min(wait);
                    }
                }
            }
            if next_wake.is_zero() {
                if stop.is_cancelled() {
                    return;
                }
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                _ = changes.changed() => {}
                () = tokio::time::sleep(next_wake) => {}
            }
        }
    }

    /// Writes the next events of `job` while holding its lease (a run of the job, here or in
    /// another process, makes this turn wait); true when more may be waiting.
    async fn write_job(
        &self,
        job: &SyncJob,
        ready: &mut HashMap<String, Ready>,
    ) -> Result<bool, NotionError> {
        let held = self
            .store
            .hold_lease(
                &job.name,
                &self.holder,
                super::LEASE_TTL,
                crate::model::now(),
                crate::store::lease::holder_is_dead,
            )
            .await?;
        if !held {
            return Ok(false);
        }
        let client = self.notion.client(&job.token);
        let mut target = ready.get(&job.name).cloned();
        let outcome = next_batch(&self.store, &client, job, &mut target, &mut |_| {}).await;
        if let Some(target) = target {
            ready.insert(job.name.clone(), target);
        }
        if let Err(err) = self.store.release_lease(&job.name, &self.holder).await {
            tracing::warn!(job = %job.name, error = %err, "could not release a sync lease");
        }
        outcome
    }
}

/// `/sync run` of an incident log: writes every event waiting, now, and counts the pages
/// created and updated.
pub(super) async fn run(work: &mut super::Work<'_>) -> Result<(), NotionError> {
    work.report(super::Phase::Resolving);
    let mut target = None;
    if work.dry_run {
        let cursor = work.store.log_cursor(&work.job.name).await?;
        let waiting = work
            .store
            .events_after(cursor.after_event, usize::MAX >> 1)
            .await?;
        let resolved = prepare(work.client, work.job, true).await?;
        work.schema_added = resolved.1;
        work.counts.total = waiting.len() as u64;
        work.report(super::Phase::Writing);
        return Ok(());
    }
    loop {
        work.still_leased()?;
        let mut changes = Vec::new();
        let more = next_batch(
            work.store,
            work.client,
            work.job,
            &mut target,
            &mut |change| changes.push(change),
        )
        .await?;
        for (incident, change) in changes {
            super::count_change(&mut work.counts, change);
            work.counts.total += 1;
            work.changes.push(super::RowChange {
                row: format!("incident {incident}"),
                change,
            });
        }
        work.report(super::Phase::Writing);
        if !more {
            return Ok(());
        }
    }
}

/// Writes the next consecutive events of one incident for `job`; true when more may be
/// waiting. `target` is the job's checked data source, resolved when `None`.
async fn next_batch(
    store: &Store,
    client: &Client,
    job: &SyncJob,
    target: &mut Option<Ready>,
    on_change: &mut (dyn FnMut((i64, super::Change)) + Send),
) -> Result<bool, NotionError> {
    let cursor = store.log_cursor(&job.name).await?;
    let events = store.events_after(cursor.after_event, BATCH).await?;
    let Some(first) = events.first() else {
        return Ok(false);
    };
    let ready = if let Some(ready) = target {
        ready.clone()
    } else {
        let ready = prepare(client, job, false).await?.0;
        *target = Some(ready.clone());
        ready
    };
    // Consecutive events of one incident go together.
    let incident = first.incident;
    let batch: Vec<&LogEvent> = events
        .iter()
        .take_while(|event| event.incident == incident)
        .collect();
    let last = batch.last().map_or(first.id, |event| event.id);
    let writer = Writer {
        store,
        client,
        target: &ready,
        job: &job.name,
    };
    if let Some(change) = writer
        .write(incident, &batch, cursor.sending_through)
        .await?
    {
        on_change((incident, change));
    }
    store.advance_log(&job.name, last).await?;
    Ok(batch.len() < events.len() || events.len() == BATCH)
}

/// Resolves a job's data source and completes its schema (unless `dry_run`); also returns the
/// properties added (or that would be).
async fn prepare(
    client: &Client,
    job: &SyncJob,
    dry_run: bool,
) -> Result<(Ready, Vec<String>), NotionError> {
    let target = client
        .resolve(&job.database_id, job.data_source.as_deref())
        .await?;
    let schema = client.data_source(&target.data_source.id).await?;
    let (title, missing) = super::plan_schema(&schema, &wanted_properties())?;
    let added: Vec<String> = missing.iter().map(|(name, _)| name.clone()).collect();
    if !missing.is_empty() && !dry_run {
        tracing::info!(job = %job.name, properties = ?added,
            "adding the incident log's properties to the Notion database");
        client
            .update_data_source(
                &target.data_source.id,
                Value::Object(missing.into_iter().collect()),
            )
            .await?;
    }
    Ok((
        Ready {
            data_source: target.data_source.id,
            title,
        },
        added,
    ))
}

struct Writer<'a> {
    store: &'a Store,
    client: &'a Client,
    target: &'a Ready,
    job: &'a str,
}

impl Writer<'_> {
    /// Writes `events` (all of `incident`, in order) to its page, creating the page first.
    async fn write(
        &self,
        incident: i64,
        events: &[&LogEvent],
        sending: Option<i64>,
    ) -> Result<Option<super::Change>, NotionError> {
        let Some(record) = self.store.incident_record(incident).await? else {
            // Retention removed it: there is nothing left to write.
            return Ok(None);
        };
        let key = format!("incident:{incident}");
        let last = events.last().map_or(0, |e| e.id);
        let kept = self.store.kept_page(&self.target.data_source, &key).await?;
        let title = page_title(&record);
        let page = if let Some(page) = kept {
            page.page_id
        } else {
            let Some(page) = self.find_by_title(&title).await? else {
                self.create(&record, &key, &title, last).await?;
                return Ok(Some(super::Change::Created));
            };
            // An earlier create whose answer was lost made it.
            self.keep(&key, &page).await?;
            page
        };
        let mut entries: Vec<String> = events.iter().map(|e| entry(&record, e)).collect();
        if sending.is_some_and(|through| through >= events.first().map_or(0, |e| e.id)) {
            // The last append's answer was lost: drop what already reached the page.
            let present: std::collections::HashSet<String> = self
                .client
                .children(&page)
                .await?
                .iter()
                .map(block_text)
                .collect();
            entries.retain(|text| !present.contains(text));
        }
        if !entries.is_empty() {
            self.store.set_log_sending(self.job, Some(last)).await?;
            let blocks: Vec<Value> = entries
                .iter()
                .map(|text| text_block("bulleted_list_item", text))
                .collect();
            self.client.append_children(&page, &blocks).await?;
        }
        self.client
            .update_page(&page, self.properties(&record, None))
            .await?;
        Ok(Some(super::Change::Updated))
    }

    /// Creates `record`'s page holding its whole timeline up to event `last`.
    async fn create(
        &self,
        record: &IncidentRecord,
        key: &str,
        title: &str,
        last: i64,
    ) -> Result<(), NotionError> {
        let timeline = self.store.events_of(record.id, last).await?;
        let mut children = vec![callout_block(summary_emoji(record), &summary(record))];
        children.push(text_block("heading_3", "Timeline"));
        children.extend(
            timeline
                .iter()
                .map(|e| text_block("bulleted_list_item", &entry(record, e))),
        );
        // A page takes at most 100 blocks when created; the rest are appended.
        let rest = if children.len() > crate::notion::MAX_BLOCKS_PER_APPEND {
            children.split_off(crate::notion::MAX_BLOCKS_PER_APPEND)
        } else {
            Vec::new()
        };
        // Should the answer be lost, the next try finds the page by its title and reads it
        // back before appending anything.
        self.store.set_log_sending(self.job, Some(last)).await?;
        let created = self
            .client
            .create_page(
                &self.target.data_source,
                self.properties(record, Some(title)),
                children,
            )
            .await?;
        self.keep(key, &created.id).await?;
        if !rest.is_empty() {
            self.client.append_children(&created.id, &rest).await?;
        }
        Ok(())
    }

    async fn keep(&self, key: &str, page: &str) -> Result<(), NotionError> {
        self.store
            .keep_page(
                &self.target.data_source,
                key,
                page,
                None,
                crate::model::now(),
            )
            .await?;
        Ok(())
    }

    /// The page of an earlier create whose answer was lost, by its title.
    async fn find_by_title(&self, title: &str) -> Result<Option<String>, NotionError> {
        let filter = json!({ "property": self.target.title, "title": { "equals": crate::notion::wire::fit_text(title) } });
        let pages = self
            .client
            .query(&self.target.data_source, Some(filter), |_| {})
            .await?;
        Ok(pages
            .into_iter()
            .find(|p| !p.in_trash && !p.archived)
            .map(|p| p.id))
    }

    /// The page's properties; the title only when creating.
    fn properties(&self, record: &IncidentRecord, title: Option<&str>) -> Value {
        let mut properties = serde_json::Map::new();
        if let Some(title) = title {
            properties.insert(self.target.title.clone(), title_value(title));
        }
        properties.insert(INTEGRATION.into(), rich_text_value(&record.integration));
        properties.insert(SEVERITY.into(), select_value(Some(&record.severity)));
        let status = match (&record.resolved_at, &record.acked_by) {
            (Some(_), _) => "Resolved",
            (None, Some(_)) => "Acknowledged",
            (None, None) => "Open",
        };
        properties.insert(STATUS.into(), select_value(Some(status)));
        properties.insert(STARTED.into(), date_value(Some(&rfc3339(record.opened_at))));
        properties.insert(
            RESOLVED.into(),
            date_value(record.resolved_at.map(rfc3339).as_deref()),
        );
        let duration = record.resolved_at.map_or(String::new(), |end| {
            crate::duration::human((end - record.opened_at).to_std().unwrap_or_default())
        });
        properties.insert(DURATION.into(), rich_text_value(&duration));
        Value::Object(properties)
    }
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `[DOWN] payments-api — 2026-11-22 10:03 UTC`.
pub(super) fn page_title(record: &IncidentRecord) -> String {
    let state = if record.resolved_at.is_some() || record.state == "UP" {
        // A page made after the fact still names what the incident was.
        if record.severity == "warning" {
            "DEGRADED"
        } else {
            "DOWN"
        }
    } else {
        record.state.as_str()
    };
    format!(
        "[{state}] {} — {} UTC",
        record.integration,
        record.opened_at.format("%Y-%m-%d %H:%M")
    )
}

fn summary_emoji(record: &IncidentRecord) -> &'static str {
    if record.severity == "warning" {
        "🟡"
    } else {
        "🔴"
    }
}

fn summary(record: &IncidentRecord) -> String {
    let number = record
        .notice
        .map_or(String::new(), |n| format!(" Incident #{n} in patchbay."));
    format!(
        "{} went {} at {} UTC: {}. Severity {}.{number}",
        record.integration,
        page_title(record)
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("DOWN"),
        record.opened_at.format("%Y-%m-%d %H:%M:%S"),
        record.reason,
        record.severity
    )
}

/// One timeline entry: `2026-11-22 10:03:12 UTC · Opened: DOWN: connection refused`.
pub(super) fn entry(record: &IncidentRecord, event: &LogEvent) -> String {
    let what = match event.kind.as_str() {
        "opened" => format!("Opened: {}", event.detail),
        "changed" if event.detail.starts_with("DOWN") => {
            format!("Escalated to {}", event.detail)
        }
        "changed" => format!("Now {}", event.detail),
        "acknowledged" => format!("Acknowledged {}", event.detail),
        "silenced" => format!("Silenced: {}", event.detail),
        "notified" => format!("Notified: {}", event.detail),
        "resolved" => format!(
            "Resolved after {}: {}",
            crate::duration::human((event.at - record.opened_at).to_std().unwrap_or_default()),
            event.detail
        ),
        other => format!("{other}: {}", event.detail),
    };
    crate::notion::wire::fit_text(&format!(
        "{} UTC · {what}",
        event.at.format("%Y-%m-%d %H:%M:%S")
    ))
}

/// The text of a block as Notion returns it.
fn block_text(block: &Value) -> String {
    let kind = block["type"].as_str().unwrap_or_default();
    let rich = &block[kind]["rich_text"];
    plain_text(&json!({ "type": "rich_text", "rich_text": rich }))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn record(resolved: bool) -> IncidentRecord {
        let opened = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 3, 0)
            .unwrap();
        IncidentRecord {
            id: 7,
            notice: Some(12),
            integration: "payments-api".into(),
            severity: "critical".into(),
            state: if resolved { "UP".into() } else { "DOWN".into() },
            reason: "connection refused".into(),
            opened_at: opened,
            resolved_at: resolved.then(|| opened + chrono::Duration::minutes(27)),
            acked_by: None,
        }
    }

    fn event(kind: &str, detail: &str, minutes: i64) -> LogEvent {
        LogEvent {
            id: 1,
            incident: 7,
            at: record(false).opened_at + chrono::Duration::minutes(minutes),
            kind: kind.into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn titles_and_entries_read_as_the_issue_shows_them() {
        assert_eq!(
            page_title(&record(false)),
            "[DOWN] payments-api — 2026-11-22 10:03 UTC"
        );
        // A page made after the resolution still names what the incident was.
        assert_eq!(
            page_title(&record(true)),
            "[DOWN] payments-api — 2026-11-22 10:03 UTC"
        );
        let r = record(true);
        assert_eq!(
            entry(&r, &event("opened", "DOWN: connection refused", 0)),
            "2026-11-22 10:03:00 UTC · Opened: DOWN: connection refused"
        );
        assert_eq!(
            entry(&r, &event("changed", "DOWN: timeout", 2)),
            "2026-11-22 10:05:00 UTC · Escalated to DOWN: timeout"
        );
        assert_eq!(
            entry(&r, &event("acknowledged", "by alice (cli alice)", 3)),
            "2026-11-22 10:06:00 UTC · Acknowledged by alice (cli alice)"
        );
        assert_eq!(
            entry(&r, &event("resolved", "UP: checks pass", 27)),
            "2026-11-22 10:30:00 UTC · Resolved after 27m: UP: checks pass"
        );
        let long = "x".repeat(3000);
        assert!(entry(&r, &event("opened", &long, 0)).encode_utf16().count() <= 2000);
    }
}
