//! The Notion sync jobs through the real client, store and lease, against the fake Notion in
//! `tests/common/fake_notion/` (its wire format, validation, rate limit and faults): the status
//! board's first and steady runs, one change, a property of the wrong type, a wiped database, a
//! removed integration, databases with several data sources or not shared, a bad token, a
//! concurrent trigger, a dry run, and 300 rows at Notion's rate through 429s and 529s.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_notion::{FakeNotion, Fault};
use patchbay::config::{self, Config, Environment};
use patchbay::model::{Actor, IntegrationState, LastCheck, State};
use patchbay::notion::Notion;
use patchbay::store::{Batch, Store};
use patchbay::sync::{Phase, Progress, RunRequest, SyncError, SyncReport, Syncs};

const TOKEN: &str = "secret_test_token";

/// A config of `integrations` (names `svc-000`...) and one status-board job on `database`.
fn config_of(fake: &FakeNotion, names: &[String], database: &str, extra: &str) -> Config {
    let mut text = String::new();
    for name in names {
        text.push_str(&format!(
            "[[integration]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:9/\"\ntags = [\"core\"]\n"
        ));
    }
    text.push_str(&format!(
        "[[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{database}\"\n{extra}"
    ));
    config::parse(
        &text,
        "test.toml",
        None,
        &Environment::from_pairs([
            ("NOTION_TOKEN", TOKEN.to_string()),
            ("NOTION_API_BASE", fake.api_base()),
        ]),
    )
    .unwrap()
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("svc-{i:03}")).collect()
}

struct Harness {
    fake: FakeNotion,
    store: Store,
    syncs: Syncs,
    database: String,
    data_source: String,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let fake = FakeNotion::start(TOKEN).await;
    let (database, data_source) = fake.add_database_with_title_property("Status board", "Name");
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "patchbay.db").await;
    let notion = Arc::new(Notion::new(fake.api_base().parse().unwrap(), None));
    let syncs = Syncs::new(store.clone(), notion, None);
    Harness {
        fake,
        store,
        syncs,
        database,
        data_source,
        _dir: dir,
    }
}

async fn open(dir: &tempfile::TempDir, file: &str) -> Store {
    Store::open(&format!("sqlite://{}", dir.path().join(file).display()))
        .await
        .unwrap()
}

async fn run(
    syncs: &Syncs,
    config: &Config,
    dry_run: bool,
) -> (Result<SyncReport, SyncError>, Vec<Progress>) {
    let seen = std::sync::Mutex::new(Vec::new());
    let job = config.sync_job("board").unwrap();
    let outcome = syncs
        .run(
            config,
            RunRequest {
                job,
                actor: Actor::Cli {
                    user: "tester".into(),
                },
                dry_run,
                progress_link: None,
            },
            &|p: &Progress| seen.lock().unwrap().push(p.clone()),
        )
        .await;
    (outcome, seen.into_inner().unwrap())
}

/// Stores `state` for `name`, as the engine would.
async fn set_state(store: &Store, name: &str, state: State) {
    let now = patchbay::model::now();
    let mut stored = IntegrationState::new(name.to_string(), now);
    stored.state = state;
    stored.last_check = Some(LastCheck {
        at: now,
        success: state == State::Up,
        latency_ms: 12.0,
        message: None,
    });
    store
        .write(&Batch {
            states: vec![stored],
            ..Batch::default()
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_first_run_adds_the_schema_and_creates_rows_and_a_second_writes_nothing() {
    let h = harness().await;
    let config = config_of(&h.fake, &names(5), &h.database, "");
    set_state(&h.store, "svc-001", State::Down).await;

    let (report, progress) = run(&h.syncs, &config, false).await;
    let report = report.unwrap();
    assert_eq!(
        (
            report.counts.total,
            report.counts.created,
            report.counts.updated,
            report.counts.unchanged
        ),
        (5, 5, 0, 0)
    );
    assert_eq!(
        report.schema_added,
        [
            "Status",
            "Latency p95 ms",
            "Uptime 24h %",
            "Last checked",
            "Open incident",
            "Tags"
        ]
    );
    // Resolve, schema, one PATCH of the schema, one query, five creates.
    assert_eq!(report.counts.requests, 9, "{:#?}", h.fake.requests());
    assert!(
        progress
            .iter()
            .any(|p| p.phase == Phase::Writing && p.done == 5)
    );
    let schema = h.fake.schema(&h.data_source);
    assert_eq!(schema["properties"]["Status"]["type"], "select");
    assert_eq!(schema["properties"]["Tags"]["type"], "multi_select");
    let pages = h.fake.pages(&h.data_source);
    let mut titles: Vec<String> = pages
        .iter()
        .map(common::fake_notion::FakePage::title)
        .collect();
    titles.sort();
    assert_eq!(titles, names(5));
    let down = pages.iter().find(|p| p.title() == "svc-001").unwrap();
    assert_eq!(down.prop_text("Status").as_deref(), Some("Down"));
    assert_eq!(down.prop_text("Tags").as_deref(), Some("core"));
    let unknown = pages.iter().find(|p| p.title() == "svc-000").unwrap();
    assert_eq!(unknown.prop_text("Status").as_deref(), Some("Unknown"));

    let writes_before = writes(&h.fake);
    let (second, _) = run(&h.syncs, &config, false).await;
    let second = second.unwrap();
    assert_eq!(
        (
            second.counts.created,
            second.counts.updated,
            second.counts.unchanged
        ),
        (0, 0, 5)
    );
    // Steady state: the database was checked within the hour, so one query page and nothing
    // else.
    assert_eq!(second.counts.requests, 1);
    assert_eq!(
        writes(&h.fake),
        writes_before,
        "the second run wrote nothing"
    );
    assert!(h.fake.violations().is_empty(), "{:#?}", h.fake.violations());

    // The runs are stored with who started them.
    let (runs, total) = h.store.sync_runs("board", 0, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(runs[0].counts.unchanged, 5);
    assert_eq!(runs[1].counts.created, 5);
    assert_eq!(
        runs[0].actor,
        Actor::Cli {
            user: "tester".into()
        }
    );
}

/// Requests that write: page creates and updates, schema changes, block appends.
fn writes(fake: &FakeNotion) -> usize {
    fake.requests()
        .iter()
        .filter(|r| (r.method == "POST" && r.path == "/v1/pages") || (r.method == "PATCH"))
        .count()
}

#[tokio::test]
async fn one_changed_integration_costs_exactly_one_page_patch() {
    let h = harness().await;
    let config = config_of(&h.fake, &names(4), &h.database, "");
    run(&h.syncs, &config, false).await.0.unwrap();
    set_state(&h.store, "svc-002", State::Degraded).await;
    let before = h.fake.requests().len();
    let report = run(&h.syncs, &config, false).await.0.unwrap();
    assert_eq!((report.counts.updated, report.counts.unchanged), (1, 3));
    let patched: Vec<_> = h.fake.requests()[before..]
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path.clone())
        .collect();
    let page = h
        .fake
        .pages(&h.data_source)
        .into_iter()
        .find(|p| p.title() == "svc-002")
        .unwrap();
    assert_eq!(patched, [format!("/v1/pages/{}", page.id)]);
    assert_eq!(page.prop_text("Status").as_deref(), Some("Degraded"));
}

#[tokio::test]
async fn a_property_of_the_wrong_type_is_named_and_nothing_is_written() {
    let h = harness().await;
    h.fake.set_property(
        &h.data_source,
        "Status",
        serde_json::json!({ "number": {} }),
    );
    let config = config_of(&h.fake, &names(3), &h.database, "");
    let (outcome, _) = run(&h.syncs, &config, false).await;
    let Err(SyncError::Failed(report)) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    let failure = report.failure.unwrap();
    assert_eq!(failure.kind, "setup");
    assert!(
        failure
            .message
            .contains("\"Status\" is a number property in Notion, patchbay writes a select there"),
        "{}",
        failure.message
    );
    assert_eq!(writes(&h.fake), 0, "{:#?}", h.fake.requests());
    assert!(h.fake.pages(&h.data_source).is_empty());
    let (runs, _) = h.store.sync_runs("board", 0, 1).await.unwrap();
    assert_eq!(runs[0].error_kind.as_deref(), Some("setup"));
}

#[tokio::test]
async fn a_wiped_database_finds_the_rows_by_title_and_duplicates_none() {
    let h = harness().await;
    let config = config_of(&h.fake, &names(6), &h.database, "");
    run(&h.syncs, &config, false).await.0.unwrap();
    // A fresh local database: no kept pages, no hashes.
    let dir = tempfile::tempdir().unwrap();
    let fresh = open(&dir, "fresh.db").await;
    let notion = Arc::new(Notion::new(h.fake.api_base().parse().unwrap(), None));
    let syncs = Syncs::new(fresh.clone(), notion, None);
    let report = run(&syncs, &config, false).await.0.unwrap();
    assert_eq!(report.counts.created, 0, "found by title");
    assert_eq!(report.counts.updated, 6);
    assert_eq!(h.fake.pages(&h.data_source).len(), 6);
    // Kept again: the next run writes nothing.
    let report = run(&syncs, &config, false).await.0.unwrap();
    assert_eq!(report.counts.unchanged, 6);
}

#[tokio::test]
async fn an_integration_removed_from_the_config_is_marked_removed_once() {
    let h = harness().await;
    run(
        &h.syncs,
        &config_of(&h.fake, &names(3), &h.database, ""),
        false,
    )
    .await
    .0
    .unwrap();
    let fewer = config_of(&h.fake, &names(2), &h.database, "");
    let report = run(&h.syncs, &fewer, false).await.0.unwrap();
    assert_eq!((report.counts.removed, report.counts.unchanged), (1, 2));
    let pages = h.fake.pages(&h.data_source);
    assert_eq!(pages.len(), 3, "never deleted");
    let gone = pages.iter().find(|p| p.title() == "svc-002").unwrap();
    assert_eq!(gone.prop_text("Status").as_deref(), Some("Removed"));
    let report = run(&h.syncs, &fewer, false).await.0.unwrap();
    assert_eq!((report.counts.removed, report.counts.unchanged), (0, 3));
}

#[tokio::test]
async fn a_dry_run_shows_what_would_change_and_writes_nothing() {
    let h = harness().await;
    let config = config_of(&h.fake, &names(3), &h.database, "");
    let report = run(&h.syncs, &config, true).await.0.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.counts.created, 3);
    assert_eq!(report.schema_added.len(), 6);
    assert_eq!(report.changes.len(), 3);
    assert_eq!(writes(&h.fake), 0);
    assert!(h.fake.pages(&h.data_source).is_empty());
}

#[tokio::test]
async fn setup_problems_say_what_to_do() {
    let h = harness().await;
    // Several data sources and none named.
    let second = h.fake.add_data_source(&h.database, "Archive");
    let config = config_of(&h.fake, &names(1), &h.database, "");
    let failure = failure_of(run(&h.syncs, &config, false).await.0);
    assert!(
        failure.message.contains("has 2 data sources") && failure.message.contains("\"Archive\""),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("data_source = "),
        "{}",
        failure.message
    );
    // Named, it works and writes to that one.
    let config = config_of(
        &h.fake,
        &names(1),
        &h.database,
        "data_source = \"Archive\"\n",
    );
    run(&h.syncs, &config, false).await.0.unwrap();
    assert_eq!(h.fake.pages(&second).len(), 1);
    assert!(h.fake.pages(&h.data_source).is_empty());

    // A database not shared with the integration.
    let unshared = h.fake.add_unshared_database();
    let config = config_of(&h.fake, &names(1), &unshared, "");
    let failure = failure_of(run(&h.syncs, &config, false).await.0);
    assert_eq!(failure.code.as_deref(), Some("object_not_found"));
    assert!(
        failure.what_to_do.contains("Connections"),
        "{}",
        failure.what_to_do
    );
    assert!(failure.request_id.is_some(), "Notion's request id is kept");

    // A token Notion refuses.
    let bad = config::parse(
        &format!(
            "[[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{}\"\n",
            h.database
        ),
        "test.toml",
        None,
        &Environment::from_pairs([
            ("NOTION_TOKEN", "secret_wrong".to_string()),
            ("NOTION_API_BASE", h.fake.api_base()),
        ]),
    )
    .unwrap();
    let failure = failure_of(run(&h.syncs, &bad, false).await.0);
    assert_eq!(failure.kind, "auth");
    assert!(
        failure.what_to_do.contains("check NOTION_TOKEN"),
        "{}",
        failure.what_to_do
    );
}

fn failure_of(outcome: Result<SyncReport, SyncError>) -> patchbay::sync::SyncFailure {
    match outcome {
        Err(SyncError::Failed(report)) => report.failure.unwrap(),
        other => panic!("expected a failed run, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_trigger_while_a_run_holds_the_lease_is_refused_with_who_runs_it() {
    let h = harness().await;
    let config = config_of(&h.fake, &names(2), &h.database, "");
    // The first run's first call to Notion waits long enough for a second trigger.
    h.fake
        .inject("/v1/databases/", Fault::Delay(Duration::from_secs(2)), 1);
    let job = config.sync_job("board").unwrap();
    let started = tokio::sync::Notify::new();
    // The first progress report comes once the run holds the lease.
    let report = |_: &Progress| started.notify_one();
    let first = h.syncs.run(
        &config,
        RunRequest {
            job,
            actor: Actor::Cli {
                user: "first".into(),
            },
            dry_run: false,
            progress_link: Some("https://example.com/progress".into()),
        },
        &report,
    );
    let second = async {
        started.notified().await;
        run(&h.syncs, &config, false).await
    };
    let (first, (second, _)) = tokio::join!(first, second);
    first.unwrap();
    match second {
        Err(SyncError::Busy(running)) => {
            assert_eq!(running.job, "board");
            assert_eq!(
                running.actor,
                Actor::Cli {
                    user: "first".into()
                }
            );
            assert_eq!(
                running.progress_link.as_deref(),
                Some("https://example.com/progress")
            );
        }
        other => panic!("expected busy, got {other:?}"),
    }
    // Once the first ended, a run goes through.
    run(&h.syncs, &config, false).await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_rows_keep_to_notions_rate_through_429s_and_529s() {
    let h = harness().await;
    h.fake
        .set_rate_limit(Some(common::fake_notion::RateLimit::notion()));
    h.fake.inject(
        "/v1/pages",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        2,
    );
    // At most three faults for any one call, which has four attempts: three writes are in
    // flight, and any of them may meet all of the faults injected on its route.
    h.fake.inject("/v1/pages", Fault::Overloaded, 1);
    h.fake.inject(
        &format!("/v1/data_sources/{}/query", h.data_source),
        Fault::Overloaded,
        1,
    );
    let config = config_of(&h.fake, &names(300), &h.database, "");
    let report = run(&h.syncs, &config, false).await.0.unwrap();
    assert_eq!(report.counts.created, 300);
    let pages = h.fake.pages(&h.data_source);
    assert_eq!(pages.len(), 300, "no duplicates after the retried creates");
    let requests = h.fake.requests();
    assert_eq!(
        requests.iter().filter(|r| r.status == 429).count(),
        2,
        "the 429s were met"
    );
    assert_eq!(
        requests.iter().filter(|r| r.status == 529).count(),
        2,
        "the 529s were met"
    );
    let first = requests.first().unwrap().at;
    let last = requests.last().unwrap().at;
    let rate = (requests.len() - 1) as f64 / (last - first).as_secs_f64();
    assert!(rate <= 3.05, "{rate:.2} requests/s on average");
    assert!(h.fake.violations().is_empty(), "{:#?}", h.fake.violations());
}

#[tokio::test]
async fn reads_are_retried_after_5xx_and_writes_are_not_but_say_so() {
    let h = harness().await;
    let config = config_of(&h.fake, &names(2), &h.database, "");
    // A 503 and a 504 on the query: retried, the run succeeds.
    h.fake.inject(
        &format!("/v1/data_sources/{}/query", h.data_source),
        Fault::Status(503),
        1,
    );
    h.fake.inject(
        &format!("/v1/data_sources/{}/query", h.data_source),
        Fault::Status(504),
        1,
    );
    h.fake.inject("/v1/pages", Fault::Status(500), 1);
    let (outcome, _) = run(&h.syncs, &config, false).await;
    // The create that met the 500 is not repeated: it may have happened.
    let failure = failure_of(outcome);
    assert_eq!(failure.kind, "server");
    assert!(
        failure.what_to_do.contains("Notion is having trouble"),
        "{}",
        failure.what_to_do
    );
    let creates = h.fake.count("POST", "/v1/pages");
    assert_eq!(
        h.fake
            .count("POST", &format!("/v1/data_sources/{}/query", h.data_source)),
        3
    );
    // The next run finishes the board without duplicates.
    run(&h.syncs, &config, false).await.0.unwrap();
    assert_eq!(h.fake.pages(&h.data_source).len(), 2);
    assert!(h.fake.count("POST", "/v1/pages") <= creates + 2);
}

#[tokio::test]
async fn a_missing_capability_and_refused_values_name_what_to_change() {
    let h = harness().await;
    let config = config_of(&h.fake, &names(1), &h.database, "");
    h.fake.set_insert_capability(false);
    let failure = failure_of(run(&h.syncs, &config, false).await.0);
    assert_eq!(failure.code.as_deref(), Some("restricted_resource"));
    assert!(
        failure.what_to_do.contains("Insert content"),
        "{}",
        failure.what_to_do
    );
    h.fake.set_insert_capability(true);
    run(&h.syncs, &config, false).await.0.unwrap();
    // A value Notion refuses (a property re-typed by a person since the check): the
    // property and the reason are named, and the next run checks the database again.
    h.fake.set_property(
        &h.data_source,
        "Uptime 24h %",
        serde_json::json!({ "rich_text": {} }),
    );
    set_state(&h.store, "svc-000", State::Down).await;
    let failure = failure_of(run(&h.syncs, &config, false).await.0);
    assert_eq!(failure.code.as_deref(), Some("validation_error"));
    assert!(
        failure
            .what_to_do
            .contains("Uptime 24h % is expected to be rich_text"),
        "{}",
        failure.what_to_do
    );
    let failure = failure_of(run(&h.syncs, &config, false).await.0);
    assert_eq!(failure.kind, "setup", "checked again: {}", failure.message);
    assert!(
        failure
            .message
            .contains("\"Uptime 24h %\" is a rich text property"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn an_incident_log_run_catches_up_on_the_waiting_entries() {
    use patchbay::model::Severity;
    use patchbay::store::alerts::NewIncident;
    let h = harness().await;
    let config = config::parse(
        &format!(
            "[[sync]]\nname = \"log\"\nkind = \"notion-incident-log\"\ndatabase_id = \"{}\"\n",
            h.database
        ),
        "test.toml",
        None,
        &Environment::from_pairs([
            ("NOTION_TOKEN", TOKEN.to_string()),
            ("NOTION_API_BASE", h.fake.api_base()),
        ]),
    )
    .unwrap();
    // Two open incidents, the first acknowledged, as the alert pipeline writes them.
    let now = patchbay::model::now();
    let mut tx = h.store.alert_tx().await.unwrap();
    for name in ["api", "db"] {
        let id = tx
            .insert_incident(
                &NewIncident {
                    integration: name,
                    severity: Severity::Critical,
                    state: State::Down,
                    reason: "connection refused",
                    at: now,
                },
                None,
                None,
                None,
            )
            .await
            .unwrap();
        if name == "api" {
            tx.event(id, now, "acknowledged", "by bob (cli bob)")
                .await
                .unwrap();
        }
    }
    tx.commit().await.unwrap();
    let job = config.sync_job("log").unwrap();
    let run = |dry_run| {
        h.syncs.run(
            &config,
            RunRequest {
                job,
                actor: Actor::Cli {
                    user: "tester".into(),
                },
                dry_run,
                progress_link: None,
            },
            &|_| {},
        )
    };
    let dry = run(true).await.unwrap();
    assert_eq!(dry.counts.total, 3, "three entries waiting");
    assert!(
        h.fake.pages(&h.data_source).is_empty(),
        "a dry run writes nothing"
    );
    let report = run(false).await.unwrap();
    assert_eq!((report.counts.created, report.counts.updated), (2, 0));
    let pages = h.fake.pages(&h.data_source);
    assert_eq!(pages.len(), 2);
    let api = pages
        .iter()
        .find(|p| p.title().starts_with("[DOWN] api — "))
        .unwrap();
    let entries: Vec<String> = h
        .fake
        .children(&api.id)
        .iter()
        .filter(|b| b["type"] == "bulleted_list_item")
        .map(|b| {
            b["bulleted_list_item"]["rich_text"][0]["plain_text"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        entries[0].contains("Opened: DOWN: connection refused"),
        "{entries:?}"
    );
    assert!(entries[1].contains("Acknowledged by bob"), "{entries:?}");
    // Caught up: the next run has nothing to write.
    let again = run(false).await.unwrap();
    assert_eq!((again.counts.created, again.counts.updated), (0, 0));
    assert!(h.fake.violations().is_empty(), "{:#?}", h.fake.violations());
}
