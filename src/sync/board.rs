//! The status board (`notion-status-board`): one row per configured integration, kept in a
//! Notion data source.
//!
//! A run resolves the database's data source, reads its schema and adds the properties that
//! are missing (one PATCH; a property of another type is an error, never retyped), reads every
//! row already there (one query page per 100 rows), then writes only the rows whose values
//! changed since the last write (a hash per row, kept in the database), creating a page only
//! for an integration with no page: its kept page if it still exists, else a row with its name
//! as title. Integrations removed from the config get Status "Removed" and are never deleted.
//!
//! What changes a row: status, p95 latency (two significant figures), 24-hour uptime (to 0.01%,
//! rounded down), the open incident and the tags. "Last checked" is written with them: a row
//! whose status holds still is not rewritten for every check, so a steady board costs only its
//! query.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::{Change, Phase, RowChange, Work};
use crate::config::Integration;
use crate::model::State;
use crate::notion::NotionError;
use crate::notion::wire::{
    Page, date_value, multi_select_value, number_value, rich_text_value, select_value, title_value,
};
use crate::store::StatsWindow;

/// The properties the board writes besides the title, with their type and configuration.
const STATUS: &str = "Status";
const LATENCY: &str = "Latency p95 ms";
const UPTIME: &str = "Uptime 24h %";
const LAST_CHECKED: &str = "Last checked";
const OPEN_INCIDENT: &str = "Open incident";
const TAGS: &str = "Tags";

/// The board's statuses with their colours in Notion.
const STATUSES: [(&str, &str); 6] = [
    ("Up", "green"),
    ("Degraded", "yellow"),
    ("Down", "red"),
    ("Paused", "gray"),
    ("Unknown", "default"),
    ("Removed", "brown"),
];

/// Writes in flight at once: enough to keep Notion's 3 requests per second busy while each
/// takes a few hundred milliseconds, few enough to stop soon after an error.
const WRITES_IN_FLIGHT: usize = 3;

/// The schema the board needs: (name, type, the configuration sent when adding it).
fn wanted_properties() -> Vec<super::Wanted> {
    let options: Vec<Value> = STATUSES
        .iter()
        .map(|(name, color)| json!({ "name": name, "color": color }))
        .collect();
    vec![
        (
            STATUS,
            "select",
            json!({ "select": { "options": options } }),
        ),
        (
            LATENCY,
            "number",
            json!({ "number": { "format": "number" } }),
        ),
        (
            UPTIME,
            "number",
            json!({ "number": { "format": "number" } }),
        ),
        (LAST_CHECKED, "date", json!({ "date": {} })),
        (OPEN_INCIDENT, "rich_text", json!({ "rich_text": {} })),
        (TAGS, "multi_select", json!({ "multi_select": {} })),
    ]
}

/// One row as it should be.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Row {
    name: String,
    status: &'static str,
    latency_p95_ms: Option<f64>,
    uptime_pct: Option<f64>,
    last_checked: Option<String>,
    open_incident: String,
    tags: Vec<String>,
}

impl Row {
    /// The hash of what makes the row change (everything but "Last checked").
    fn hash(&self) -> String {
        let canonical = json!([
            self.name,
            self.status,
            self.latency_p95_ms,
            self.uptime_pct,
            self.open_incident,
            self.tags
        ]);
        fnv1a(canonical.to_string().as_bytes())
    }

    /// The page properties, with the title in the data source's title property.
    fn properties(&self, title: &str) -> Value {
        let mut properties = serde_json::Map::new();
        properties.insert(title.to_string(), title_value(&self.name));
        properties.insert(STATUS.into(), select_value(Some(self.status)));
        properties.insert(LATENCY.into(), number_value(self.latency_p95_ms));
        properties.insert(UPTIME.into(), number_value(self.uptime_pct));
        properties.insert(
            LAST_CHECKED.into(),
            date_value(self.last_checked.as_deref()),
        );
        properties.insert(OPEN_INCIDENT.into(), rich_text_value(&self.open_incident));
        properties.insert(TAGS.into(), multi_select_value(&self.tags));
        Value::Object(properties)
    }
}

/// The hash a removed row is marked with, so it is marked once.
const REMOVED_HASH: &str = "removed";

/// A 64-bit FNV-1a hash in hex: stable across builds and Rust versions, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Two significant figures: 123.4 → 120, 1_234 → 1_200, 0.456 → 0.46.
fn two_figures(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 0.0;
    }
    let magnitude = 10f64.powi(value.log10().floor() as i32 - 1);
    (value / magnitude).round() * magnitude
}

/// What one write does.
#[derive(Debug, Clone)]
enum Write {
    Create { key: String, row: Row },
    Update { key: String, page: String, row: Row },
    Remove { key: String, page: String },
}

/// How long a check of the database (its data source and schema) is trusted: runs within it
/// go straight to the query, so a steady board costs only its query pages.
const CHECK_TRUSTED_FOR: chrono::Duration = chrono::Duration::hours(1);

pub(super) async fn run(work: &mut Work<'_>) -> Result<(), NotionError> {
    work.report(Phase::Resolving);
    let setting = work.job.data_source.clone().unwrap_or_default();
    let checked = work
        .store
        .checked_target(&work.job.name)
        .await?
        .filter(|checked| {
            checked.database_id == work.job.database_id.as_str()
                && checked.data_source_setting == setting
                && work.now - checked.checked_at < CHECK_TRUSTED_FOR
                && !work.dry_run
        });
    let (data_source, title) = if let Some(checked) = checked {
        work.database_url.clone_from(&checked.database_url);
        (checked.data_source_id, checked.title_property)
    } else {
        let (data_source, title) = check_database(work).await?;
        if !work.dry_run {
            let checked = crate::store::sync::CheckedTarget {
                database_id: work.job.database_id.as_str().to_string(),
                data_source_setting: setting,
                data_source_id: data_source.clone(),
                title_property: title.clone(),
                database_url: work.database_url.clone(),
                checked_at: work.now,
            };
            work.store
                .set_checked_target(&work.job.name, Some(&checked))
                .await?;
        }
        (data_source, title)
    };
    let outcome = sync_rows(work, &data_source, &title).await;
    if let Err(error) = &outcome
        && matches!(error.code(), Some("validation_error" | "object_not_found"))
    {
        // The database changed under the job (a property deleted, the database unshared):
        // check it again next time.
        let _ = work.store.set_checked_target(&work.job.name, None).await;
    }
    outcome
}

/// Resolves the job's data source and completes its schema: its id and title property.
async fn check_database(work: &mut Work<'_>) -> Result<(String, String), NotionError> {
    let target = work
        .client
        .resolve(&work.job.database_id, work.job.data_source.as_deref())
        .await?;
    work.database_url.clone_from(&target.database.url);
    let data_source = target.data_source.id.clone();

    work.report(Phase::Schema);
    let schema = work.client.data_source(&data_source).await?;
    let (title, missing) = super::plan_schema(&schema, &wanted_properties())?;
    if !missing.is_empty() {
        work.schema_added = missing.iter().map(|(name, _)| name.clone()).collect();
        if !work.dry_run {
            let properties: serde_json::Map<String, Value> = missing.into_iter().collect();
            work.client
                .update_data_source(&data_source, Value::Object(properties))
                .await?;
        }
    }
    Ok((data_source, title))
}

/// Reads the rows in Notion and writes those that changed.
async fn sync_rows(work: &mut Work<'_>, data_source: &str, title: &str) -> Result<(), NotionError> {
    let rows = desired_rows(work).await?;
    work.counts.total = rows.len() as u64;
    work.report(Phase::Reading);
    let pages = work.client.query(data_source, None, |_| {}).await?;
    let kept = work.store.kept_pages(data_source).await?;
    let writes = plan_writes(rows, &pages, title, &kept, &mut work.counts);
    work.counts.total += writes
        .iter()
        .filter(|w| matches!(w, Write::Remove { .. }))
        .count() as u64;
    work.report(Phase::Writing);

    if work.dry_run {
        for write in &writes {
            let (key, change) = describe(write);
            super::count_change(&mut work.counts, change);
            work.changes.push(RowChange {
                row: key.to_string(),
                change,
            });
        }
        work.report(Phase::Writing);
        return Ok(());
    }

    let client = work.client;
    let store = work.store;
    let now = work.now;
    let lost = work.lost;
    let mut results = futures::stream::iter(writes.into_iter().map(|write| async move {
        if lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(NotionError::Setup(
                "the run lost its lease; another run took over".into(),
            ));
        }
        let (key, page, hash, change) = match &write {
            Write::Create { key, row } => {
                let page = client
                    .create_page(data_source, row.properties(title), Vec::new())
                    .await?;
                (key, page.id, row.hash(), Change::Created)
            }
            Write::Update { key, page, row } => {
                client.update_page(page, row.properties(title)).await?;
                (key, page.clone(), row.hash(), Change::Updated)
            }
            Write::Remove { key, page } => {
                client
                    .update_page(page, json!({ STATUS: select_value(Some("Removed")) }))
                    .await?;
                (key, page.clone(), REMOVED_HASH.to_string(), Change::Removed)
            }
        };
        // Kept at once: a run killed after this write neither repeats nor duplicates it.
        store
            .keep_page(data_source, key, &page, Some(&hash), now)
            .await?;
        Ok::<_, NotionError>(RowChange {
            row: key.clone(),
            change,
        })
    }))
    .buffer_unordered(WRITES_IN_FLIGHT);
    while let Some(change) = results.try_next().await? {
        super::count_change(&mut work.counts, change.change);
        work.changes.push(change);
        work.still_leased()?;
        work.report(Phase::Writing);
    }
    Ok(())
}

fn describe(write: &Write) -> (&str, Change) {
    match write {
        Write::Create { key, .. } => (key, Change::Created),
        Write::Update { key, .. } => (key, Change::Updated),
        Write::Remove { key, .. } => (key, Change::Removed),
    }
}

/// Every configured integration's row as it should be now.
async fn desired_rows(work: &Work<'_>) -> Result<Vec<Row>, NotionError> {
    let states: HashMap<String, crate::model::IntegrationState> = work
        .store
        .load_states()
        .await?
        .into_iter()
        .map(|s| (s.integration.clone(), s))
        .collect();
    let stats = work
        .store
        .window_stats(None, StatsWindow::Day, work.now)
        .await?;
    let mut open: HashMap<String, (i64, chrono::DateTime<chrono::Utc>)> = HashMap::new();
    for incident in work.store.open_incidents().await? {
        let number = incident.notice.unwrap_or(incident.id);
        open.entry(incident.integration.clone())
            .and_modify(|e| {
                if incident.opened_at < e.1 {
                    *e = (number, incident.opened_at);
                }
            })
            .or_insert((number, incident.opened_at));
    }
    Ok(work
        .config
        .integrations
        .iter()
        .map(|integration| {
            row_of(
                integration,
                states.get(&integration.name),
                stats.get(&integration.name),
                open.get(&integration.name).copied(),
                work.now,
            )
        })
        .collect())
}

/// One integration's row from its stored state, its 24-hour figures and its open incident.
pub(super) fn row_of(
    integration: &Integration,
    state: Option<&crate::model::IntegrationState>,
    stats: Option<&crate::store::WindowStats>,
    open: Option<(i64, chrono::DateTime<chrono::Utc>)>,
    now: chrono::DateTime<chrono::Utc>,
) -> Row {
    let status = if integration.enabled {
        match state.map_or(State::Unknown, |s| s.state) {
            State::Up => "Up",
            State::Degraded => "Degraded",
            State::Down => "Down",
            State::Paused => "Paused",
            State::Unknown => "Unknown",
        }
    } else {
        "Paused"
    };
    let open_incident = match open {
        Some((number, since)) if since.date_naive() == now.date_naive() => {
            format!("#{number} since {} UTC", since.format("%H:%M"))
        }
        Some((number, since)) => format!("#{number} since {} UTC", since.format("%Y-%m-%d %H:%M")),
        None => String::new(),
    };
    Row {
        name: integration.name.clone(),
        status,
        latency_p95_ms: stats
            .and_then(crate::store::WindowStats::latency_p95_ms)
            .map(two_figures),
        uptime_pct: stats
            .and_then(crate::store::WindowStats::uptime_pct)
            .map(|u| (u * 100.0).floor() / 100.0),
        last_checked: state
            .and_then(|s| s.last_check.as_ref())
            .map(|c| c.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        open_incident,
        tags: integration.tags.clone(),
    }
}

/// What to write: each row's page (kept, else found by title, else created) unless its hash
/// is the one last written; kept pages of integrations no longer configured are marked
/// removed. Counts the unchanged rows.
fn plan_writes(
    rows: Vec<Row>,
    pages: &[Page],
    title: &str,
    kept: &HashMap<String, crate::store::sync::KeptPage>,
    counts: &mut crate::store::sync::RunCounts,
) -> Vec<Write> {
    let live: HashMap<&str, &Page> = pages
        .iter()
        .filter(|p| !p.in_trash && !p.archived)
        .map(|p| (p.id.as_str(), p))
        .collect();
    // The oldest page of each title: Notion lists a query's results oldest first when unsorted
    // is not guaranteed, so the first one seen wins and later duplicates are left alone.
    let mut by_title: HashMap<String, &str> = HashMap::new();
    for page in pages.iter().filter(|p| !p.in_trash && !p.archived) {
        by_title.entry(page.text(title)).or_insert(page.id.as_str());
    }
    let mut writes = Vec::new();
    let configured: std::collections::HashSet<String> =
        rows.iter().map(|r| r.name.clone()).collect();
    for row in rows {
        let kept_page = kept
            .get(&row.name)
            .filter(|k| live.contains_key(k.page_id.as_str()));
        match kept_page {
            Some(k) if k.content_hash.as_deref() == Some(row.hash().as_str()) => {
                counts.unchanged += 1;
            }
            Some(k) => writes.push(Write::Update {
                key: row.name.clone(),
                page: k.page_id.clone(),
                row,
            }),
            None => match by_title.get(&row.name) {
                Some(page) => writes.push(Write::Update {
                    key: row.name.clone(),
                    page: (*page).to_string(),
                    row,
                }),
                None => writes.push(Write::Create {
                    key: row.name.clone(),
                    row,
                }),
            },
        }
    }
    let mut removed: Vec<(&String, &crate::store::sync::KeptPage)> = kept
        .iter()
        .filter(|(key, page)| {
            !configured.contains(key.as_str()) && live.contains_key(page.page_id.as_str())
        })
        .collect();
    removed.sort_by(|a, b| a.0.cmp(b.0));
    for (key, page) in removed {
        if page.content_hash.as_deref() == Some(REMOVED_HASH) {
            counts.unchanged += 1;
            counts.total += 1;
        } else {
            writes.push(Write::Remove {
                key: key.clone(),
                page: page.page_id.clone(),
            });
        }
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notion::wire::DataSource;
    use crate::sync::plan_schema;

    #[test]
    fn figures_are_rounded_so_noise_does_not_rewrite_rows() {
        assert!((two_figures(123.4) - 120.0).abs() < 1e-9);
        assert!((two_figures(1234.0) - 1200.0).abs() < 1e-9);
        assert!((two_figures(0.456) - 0.46).abs() < 1e-9);
        assert!((two_figures(9.96) - 10.0).abs() < 1e-9);
        assert!(two_figures(0.0).abs() < f64::EPSILON);
    }

    #[test]
    fn the_hash_ignores_last_checked_and_follows_everything_else() {
        let row = Row {
            name: "api".into(),
            status: "Up",
            latency_p95_ms: Some(120.0),
            uptime_pct: Some(99.95),
            last_checked: Some("2026-12-04T10:00:00Z".into()),
            open_incident: String::new(),
            tags: vec!["core".into()],
        };
        let later = Row {
            last_checked: Some("2026-12-04T10:00:30Z".into()),
            ..row.clone()
        };
        assert_eq!(row.hash(), later.hash());
        let down = Row {
            status: "Down",
            ..row.clone()
        };
        assert_ne!(row.hash(), down.hash());
        assert_eq!(fnv1a(b""), "cbf29ce484222325");
    }

    #[test]
    fn a_property_of_another_type_is_named_and_nothing_is_planned() {
        let schema: DataSource = serde_json::from_value(json!({
            "id": "ds",
            "properties": {
                "Service": {"id": "title", "type": "title"},
                "Status": {"id": "a", "type": "number"},
                "Tags": {"id": "b", "type": "multi_select"}
            }
        }))
        .unwrap();
        let err = plan_schema(&schema, &wanted_properties())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"Status\" is a number property in Notion, patchbay writes a select"),
            "{err}"
        );
        let fine: DataSource = serde_json::from_value(json!({
            "id": "ds",
            "properties": {"Service": {"id": "title", "type": "title"}, "Tags": {"id": "b", "type": "multi_select"}}
        }))
        .unwrap();
        let (title, missing) = plan_schema(&fine, &wanted_properties()).unwrap();
        assert_eq!(title, "Service");
        let names: Vec<&str> = missing.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Status",
                "Latency p95 ms",
                "Uptime 24h %",
                "Last checked",
                "Open incident"
            ]
        );
    }
}
