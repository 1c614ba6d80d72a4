//! Storage on real SQLite files: batched writes, rollups and the uptime/percentile queries,
//! retention, state persistence across reopen, a writer that dies without flushing, and a backup
//! taken while writes go on.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use patchbay::metrics::Metrics;
use patchbay::model::{CheckResult, IntegrationState, LastCheck, State, Transition};
use patchbay::store::{Batch, Pruned, Retention, StatsWindow, Store, rollup, writer};

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("patchbay.db").display())
}

fn result(integration: &str, at: DateTime<Utc>, success: bool, latency_ms: f64) -> CheckResult {
    CheckResult {
        integration: integration.into(),
        at,
        success,
        latency_ms,
        status: Some(if success { 200 } else { 500 }),
        error_kind: (!success).then(|| "conditions".into()),
        message: (!success).then(|| "status == 200 failed: got 500".into()),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

#[tokio::test]
async fn creates_the_file_in_wal_mode_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    assert!(dir.path().join("patchbay.db").exists());
    assert!(dir.path().join("patchbay.db-wal").exists(), "WAL mode");
    // A second open applies nothing new.
    assert_eq!(store.migrate().await.unwrap(), 0);
    store.integrity_check().await.unwrap();
}

#[tokio::test]
async fn the_writer_batches_results_into_few_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    let (handle, task) =
        writer::spawn(store.clone(), 500, Duration::from_secs(60), metrics.clone());
    for i in 0..2000 {
        let at = t0() + chrono::Duration::milliseconds(i);
        let name = format!("i{}", i % 10);
        let state = IntegrationState::new(name.clone(), at);
        handle
            .record(result(&name, at, true, 5.0), state)
            .await
            .unwrap();
    }
    handle.flush().await.unwrap();
    assert_eq!(store.count_results(None).await.unwrap(), 2000);
    let batches = metrics.storage_batches.get();
    // 2000 results with a batch size of 500 and no timer flush: four full batches, plus at most
    // a small one for the explicit flush; far from one transaction per row.
    assert!((4..=5).contains(&batches), "{batches} batches");
    assert_eq!(metrics.storage_rows.get(), 2000);
    drop(handle);
    task.await.unwrap();
}

#[tokio::test]
async fn rollups_answer_uptime_and_percentiles_per_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let now = t0();
    let mut results = Vec::new();
    // Over the last hour: 60 checks, one a minute; 3 fail; latencies 10..=69 ms.
    for minute in 0..60 {
        let at = now - chrono::Duration::minutes(minute);
        results.push(result("api", at, minute % 20 != 5, 10.0 + minute as f64));
    }
    // Three days ago: 100 slow failures, outside the hour and the day, inside the week.
    for i in 0..100 {
        let at = now - chrono::Duration::days(3) + chrono::Duration::seconds(i);
        results.push(result("api", at, false, 2000.0));
    }
    // Another integration, to show the per-integration filter.
    results.push(result("other", now, true, 1.0));
    // Written in two batches, so the rollup upsert has to merge into existing rows.
    let (first, second) = results.split_at(70);
    for part in [first, second] {
        store
            .write(&Batch {
                results: part.to_vec(),
                ..Batch::default()
            })
            .await
            .unwrap();
    }
    let hour = store
        .window_stats(Some("api"), StatsWindow::Hour, now)
        .await
        .unwrap();
    let hour = &hour["api"];
    assert_eq!(hour.aggregate.count, 60);
    assert_eq!(hour.aggregate.failures, 3);
    assert_eq!(hour.uptime_pct(), Some(95.0));
    let p50 = hour.latency_p50_ms().unwrap();
    let p95 = hour.latency_p95_ms().unwrap();
    // True p50 is 39-40 ms and p95 is 66-67 ms; estimates stay inside their histogram buckets
    // (25-50 ms and 50-100 ms, clamped to the observed 10..69 ms).
    assert!((25.0..=50.0).contains(&p50), "p50 {p50}");
    assert!((50.0..=69.0).contains(&p95), "p95 {p95}");
    let day = store
        .window_stats(None, StatsWindow::Day, now)
        .await
        .unwrap();
    assert_eq!(day["api"].aggregate.count, 60);
    assert_eq!(day["other"].aggregate.count, 1);
    let week = store
        .window_stats(Some("api"), StatsWindow::Week, now)
        .await
        .unwrap();
    assert_eq!(week["api"].aggregate.count, 160);
    assert_eq!(week["api"].aggregate.failures, 103);
    assert!(week["api"].latency_p95_ms().unwrap() >= 1000.0);
    assert!(!week.contains_key("other"));
}

#[tokio::test]
async fn retention_prunes_raw_results_before_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let now = t0();
    let old = now - chrono::Duration::days(40);
    let ancient = now - chrono::Duration::days(400);
    store
        .write(&Batch {
            results: vec![
                result("api", now, true, 5.0),
                result("api", old, true, 5.0),
                result("api", ancient, true, 5.0),
            ],
            ..Batch::default()
        })
        .await
        .unwrap();
    let pruned = store.prune(now, &defaults()).await.unwrap();
    assert_eq!(pruned.results, 2, "the 40- and 400-day-old results");
    // Each result made one minute and one hour rollup: the minute rollups of the 40- and
    // 400-day-old results go (kept 7 days), and only the 400-day-old hour rollup.
    assert_eq!((pruned.minute_rollups, pruned.hourly_rollups), (2, 1));
    assert_eq!(store.count_results(Some("api")).await.unwrap(), 1);
    let month = store
        .window_stats(Some("api"), StatsWindow::Month, now)
        .await
        .unwrap();
    assert_eq!(month["api"].aggregate.count, 1);
}

/// `[storage]`'s default retentions: raw results 30 days, minute rollups 7, hourly ones 365.
fn defaults() -> Retention {
    Retention {
        results: Duration::from_secs(30 * 86_400),
        minute_rollups: Duration::from_secs(7 * 86_400),
        hourly_rollups: Duration::from_secs(365 * 86_400),
    }
}

#[tokio::test]
async fn minute_rollups_go_after_their_own_retention_and_hourly_ones_of_the_same_age_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let now = t0();
    // Results 3 days, 25 hours and 1 hour old, each folded into a minute and an hour rollup.
    let ages = [72, 25, 1].map(|hours| now - chrono::Duration::hours(hours));
    store
        .write(&Batch {
            results: ages
                .iter()
                .map(|&at| result("api", at, true, 5.0))
                .collect(),
            ..Batch::default()
        })
        .await
        .unwrap();
    let retention = Retention {
        minute_rollups: Duration::from_secs(86_400),
        ..defaults()
    };
    let pruned = store.prune(now, &retention).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            results: 0,
            minute_rollups: 2,
            hourly_rollups: 0
        },
        "the minute rollups older than a day, and nothing else"
    );
    let minutes = store
        .rollups(
            "api",
            rollup::MINUTE,
            (now - chrono::Duration::days(30)).timestamp(),
        )
        .await
        .unwrap();
    assert_eq!(
        minutes
            .iter()
            .map(|(bucket, _)| *bucket)
            .collect::<Vec<_>>(),
        [ages[2].timestamp() / 60 * 60],
        "only the last day's minute rollup is left"
    );
    let hours = store
        .rollups(
            "api",
            rollup::HOUR,
            (now - chrono::Duration::days(30)).timestamp(),
        )
        .await
        .unwrap();
    assert_eq!(hours.len(), 3, "hourly rollups of the same ages stay");
    let week = store
        .window_stats(Some("api"), StatsWindow::Week, now)
        .await
        .unwrap();
    assert_eq!(
        week["api"].aggregate.count, 3,
        "the week still sees every check"
    );
    // A second pass finds nothing more to delete.
    assert_eq!(
        store.prune(now, &retention).await.unwrap(),
        Pruned::default()
    );
}

#[tokio::test]
async fn states_and_transitions_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let at = t0();
    let state = IntegrationState {
        integration: "api".into(),
        state: State::Down,
        since: at,
        consecutive_failures: 4,
        consecutive_successes: 0,
        last_check: Some(LastCheck {
            at,
            success: false,
            latency_ms: 12.5,
            message: Some("status == 200 failed: got 503".into()),
        }),
    };
    let transition = Transition {
        integration: "api".into(),
        from: State::Up,
        to: State::Down,
        reason: "3 failures in a row: status == 200 failed: got 503".into(),
        at,
    };
    {
        let store = Store::open(&url(&dir)).await.unwrap();
        store
            .write(&Batch {
                results: vec![],
                states: vec![state.clone()],
                transitions: vec![transition.clone()],
            })
            .await
            .unwrap();
        store.close().await;
    }
    let store = Store::open(&url(&dir)).await.unwrap();
    assert_eq!(store.load_states().await.unwrap(), vec![state]);
    assert_eq!(
        store.transitions(Some("api"), 10).await.unwrap(),
        vec![transition]
    );
    assert!(
        store
            .transitions(Some("other"), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_writer_killed_before_flushing_loses_only_its_pending_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let metrics = Arc::new(Metrics::new());
    // A long flush interval keeps the second group pending until the task is killed.
    let (handle, task) = writer::spawn(store.clone(), 10_000, Duration::from_secs(3600), metrics);
    for i in 0..300 {
        let at = t0() + chrono::Duration::seconds(i);
        handle
            .record(
                result("api", at, true, 3.0),
                IntegrationState::new("api", at),
            )
            .await
            .unwrap();
    }
    handle.flush().await.unwrap();
    for i in 300..500 {
        let at = t0() + chrono::Duration::seconds(i);
        handle
            .record(
                result("api", at, true, 3.0),
                IntegrationState::new("api", at),
            )
            .await
            .unwrap();
    }
    // The crash: the writer task is aborted with 200 results pending, and the pool is dropped
    // without closing.
    task.abort();
    let _ = task.await;
    drop(handle);
    drop(store);

    let reopened = Store::open(&url(&dir)).await.unwrap();
    reopened.integrity_check().await.unwrap();
    assert_eq!(reopened.count_results(Some("api")).await.unwrap(), 300);
    let stats = reopened
        .window_stats(
            Some("api"),
            StatsWindow::Hour,
            t0() + chrono::Duration::seconds(300),
        )
        .await
        .unwrap();
    assert_eq!(stats["api"].aggregate.count, 300, "rollups match the rows");
}

#[tokio::test]
async fn backup_is_consistent_while_writes_continue() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let (first_written, mut started) = tokio::sync::watch::channel(false);
    let writing = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..50 {
                if round == 5 {
                    first_written.send_replace(true);
                }
                let results = (0..200)
                    .map(|i| {
                        result(
                            "api",
                            t0() + chrono::Duration::seconds(round * 200 + i),
                            true,
                            1.0,
                        )
                    })
                    .collect();
                store
                    .write(&Batch {
                        results,
                        ..Batch::default()
                    })
                    .await
                    .unwrap();
            }
        })
    };
    // Back up once some batches are in, while the rest are still being written.
    started.wait_for(|&yes| yes).await.unwrap();
    let copy = dir.path().join("backup.db");
    store.backup(&copy).await.unwrap();
    writing.await.unwrap();
    let backup = Store::open(&format!("sqlite://{}", copy.display()))
        .await
        .unwrap();
    backup.integrity_check().await.unwrap();
    let rows = backup.count_results(None).await.unwrap();
    // The copy holds whole batches only: a snapshot between two transactions.
    assert_eq!(
        rows % 200,
        0,
        "{rows} rows is not a whole number of batches"
    );
    assert!(
        rows >= 1000,
        "the backup started after five batches, yet holds {rows} rows"
    );
    let hour = backup
        .window_stats(
            None,
            StatsWindow::Month,
            t0() + chrono::Duration::seconds(10_000),
        )
        .await
        .unwrap();
    assert_eq!(hour.get("api").map_or(0, |s| s.aggregate.count), rows);
    // Refuses to overwrite.
    assert!(store.backup(&copy).await.is_err());
}

#[tokio::test]
async fn postgres_urls_are_refused_until_supported() {
    let err = Store::open("postgres://127.0.0.1/test").await.unwrap_err();
    assert!(err.to_string().contains("use sqlite://PATH"), "{err}");
}

#[tokio::test]
async fn grants_are_stored_per_guild_and_revocable() {
    use patchbay::access::{GrantSource, Permission};
    use patchbay::model::Snowflake;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let (guild, other, role, admin) = (Snowflake(1), Snowflake(2), Snowflake(10), Snowflake(99));
    assert!(
        store
            .add_grant(guild, role, Permission::SyncRun, admin, t0())
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_grant(guild, role, Permission::SyncRun, admin, t0())
            .await
            .unwrap(),
        "granting twice is a no-op"
    );
    assert!(
        store
            .add_grant(other, role, Permission::AuditView, admin, t0())
            .await
            .unwrap()
    );
    let grants = store.command_grants().await.unwrap();
    assert_eq!(grants.len(), 2);
    assert_eq!(grants[0].permission, Permission::SyncRun);
    assert_eq!(grants[0].source, GrantSource::Command { guild, by: admin });
    assert!(
        store
            .remove_grant(guild, role, Permission::SyncRun)
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_grant(guild, role, Permission::SyncRun)
            .await
            .unwrap()
    );
    let left = store.command_grants().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].source,
        GrantSource::Command {
            guild: other,
            by: admin
        }
    );
}

#[tokio::test]
async fn the_audit_log_filters_newest_first_and_prunes() {
    use patchbay::access::{Allowed, GrantSource, Permission};
    use patchbay::audit::{AuditEntry, AuditQuery, InvocationOption, OptionValue, Outcome, redact};
    use patchbay::model::{Actor, Snowflake};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let entry = |minute: i64, user: u64, command: &str, outcome: Outcome| AuditEntry {
        at: t0() + chrono::Duration::minutes(minute),
        guild: Some(Snowflake(1)),
        channel: Some(Snowflake(2)),
        actor: Actor::Discord {
            user: Snowflake(user),
            name: format!("user{user}"),
        },
        command: command.into(),
        options: redact(&[
            InvocationOption::new("integration", OptionValue::Text("payments-api".into())),
            InvocationOption {
                name: "token".into(),
                value: OptionValue::Text("hunter2".into()),
                secret: true,
            },
        ]),
        permission: Some(Permission::StatusView),
        allowed: (outcome == Outcome::Ok).then_some(Allowed::Role {
            role: Snowflake(10),
            source: GrantSource::Config,
        }),
        outcome,
        latency_ms: 12.5,
        error_kind: (outcome == Outcome::Failed).then(|| "timeout".into()),
    };
    let entries = [
        entry(0, 7, "status", Outcome::Ok),
        entry(1, 8, "perms grant", Outcome::Denied),
        entry(2, 7, "status", Outcome::Failed),
        entry(3, 7, "audit", Outcome::RateLimited),
    ];
    for e in &entries {
        store.record_audit(e).await.unwrap();
    }
    let all = store
        .audit_entries(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], entries[3], "newest first, and read back unchanged");
    assert_eq!(all[0].options["token"], "[redacted]");
    let by_user = store
        .audit_entries(&AuditQuery {
            actor_id: Some("7".into()),
            command: Some("status".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_user, vec![entries[2].clone(), entries[0].clone()]);
    let denied = store
        .audit_entries(&AuditQuery {
            outcome: Some(Outcome::Denied),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(denied, vec![entries[1].clone()]);
    let limited = store
        .audit_entries(&AuditQuery {
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
    // 365 days of retention, measured from a year and two minutes later: the first two go.
    let later = t0() + chrono::Duration::days(365) + chrono::Duration::minutes(2);
    assert_eq!(
        store
            .prune_audit(later, Duration::from_secs(365 * 86_400))
            .await
            .unwrap(),
        2
    );
}

/// A critical DOWN incident of `integration` opening at `at`.
fn down(integration: &str, at: DateTime<Utc>) -> patchbay::store::alerts::NewIncident<'_> {
    patchbay::store::alerts::NewIncident {
        integration,
        severity: patchbay::model::Severity::Critical,
        state: State::Down,
        reason: "down",
        at,
    }
}

#[tokio::test]
async fn alert_retention_keeps_what_is_open_or_undelivered() {
    use patchbay::model::Snowflake;
    use patchbay::store::alerts::DeliveryKind;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&url(&dir)).await.unwrap();
    let old = t0();
    let mut tx = store.alert_tx().await.unwrap();
    // An old outage, resolved and delivered.
    let resolved = tx
        .insert_notice(Some(Snowflake(1)), &[], old, false)
        .await
        .unwrap();
    let incident = tx
        .insert_incident(&down("a", old), Some(resolved), None, None)
        .await
        .unwrap();
    tx.resolve_incident(incident, State::Up, "up", old)
        .await
        .unwrap();
    tx.resolve_notice(resolved, old).await.unwrap();
    tx.enqueue(resolved, DeliveryKind::Post, None, &[], old)
        .await
        .unwrap();
    // An old outage still open, with a delivery not yet confirmed.
    let open = tx
        .insert_notice(Some(Snowflake(1)), &[], old, false)
        .await
        .unwrap();
    tx.insert_incident(&down("b", old), Some(open), None, None)
        .await
        .unwrap();
    tx.enqueue(open, DeliveryKind::Post, None, &[], old)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rows = store
        .due_deliveries(old, 10, &patchbay::store::alerts::DueFilter::default())
        .await
        .unwrap();
    let delivered = rows.iter().find(|r| r.notice == resolved).unwrap();
    store
        .delivery_done(delivered, None, old, delivered.id, false)
        .await
        .unwrap();

    let later = old + chrono::Duration::days(400);
    let deleted = store
        .prune_alerts(
            later - chrono::Duration::days(30),
            later - chrono::Duration::days(365),
        )
        .await
        .unwrap();
    // The delivered row, the resolved incident with its two events, and its notice.
    assert_eq!(deleted, 5);
    assert!(store.notice_view(resolved).await.unwrap().is_none());
    assert!(store.notice_view(open).await.unwrap().is_some());
    assert_eq!(store.pending_deliveries().await.unwrap(), 1);
    assert_eq!(store.open_incidents().await.unwrap().len(), 1);
}
