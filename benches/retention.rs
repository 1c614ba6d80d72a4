//! Benchmark of the database's size under retention: 100 integrations checked every 30 s for a
//! simulated 30 days, written through the real `Store::write` and pruned by the real retention
//! pass (`app::retention_pass`, what `patchbay run` runs every hour) on simulated time.
//!
//! # What it measures
//!
//! Each integration is checked every 30 s (2,880 checks a day; 86,400 each and 8.64 million in
//! all over 30 days), one check in 200 failing with a status and a message, latencies spread
//! from 20 to 220 ms. The results go to `Store::write` in batches of 1,000 (ten rounds of checks:
//! `[storage].batch_size`'s default) with every integration's state, as the writer sends them,
//! each result carrying its own simulated time. At every simulated hour the retention pass runs
//! with that hour as `now` and `[storage]`'s defaults (raw results 30 days, one-minute rollups 7,
//! one-hour rollups 365), as the bot does once an hour.
//!
//! At the end the WAL is checkpointed (`PRAGMA wal_checkpoint(TRUNCATE)`) and the bench prints
//! the database file's size, its pages in use and free, the rows of each table, the bytes of
//! each table and index (SQLite's `dbstat`), and what a year would reach. A year is computed
//! rather than simulated (105 million results would take an hour): from day 30 on, raw results
//! and (with the new retention) minute rollups stay at the number reached, their deleted pages
//! reused by new rows; only the hourly rollups keep growing, by 2,400 rows a day. Rows are
//! projected at the bytes per rollup row measured here (both resolutions have the same shape).
//! `BENCH_MINUTE_RETENTION=365d` runs the old behaviour (minute rollups kept as long as hourly
//! ones) for the measured figure at 30 days.
//!
//! # Figures
//!
//! On the 2-core development machine (shared), 100 integrations. The file is measured; the
//! year is projected as above.
//!
//! | rollups table | minute rollups kept | file at 30 days | minute rollup rows | a year (projected) |
//! |---|---|---|---|---|
//! | clustered (migration 0009) | 7 days (the default now) | 919.5 MiB | 1,008,000 | 1,001 MiB |
//! | clustered (migration 0009) | 365 days (the old behaviour) | 1,255 MiB (projected) | 4,320,000 | 6,222 MiB |
//! | rowid, before 0009 | 7 days | 963 MiB | 1,008,000 | 1,077 MiB |
//! | rowid, before 0009 | 365 days | 1,413 MiB | 4,320,000 | 8,147 MiB |
//!
//! Every run holds 8,640,000 results (809 MiB with their two indexes: 88% of the file with the
//! new default) and 72,000 hourly rollups. A rollup row costs 106 bytes with its index in the
//! clustered table (145 to 150 bytes in the rowid table with its two indexes). Simulating 30
//! days takes 130 to 250 s (the machine was shared); a retention pass at most 87 ms. With the
//! rowid table, a 45-day run (`BENCH_DAYS=45`) grew the file from 963 to 981 MiB between day 30
//! and day 45, 1.2 MiB a day: 7 MiB in the rollups' b-trees (36,000 hourly rows), 9.5 MiB in the
//! results' table and indexes, whose pages the deletions leave part-filled. Were that rate to
//! hold all year, the file would reach about 1.3 GiB, a sixth of the old behaviour's year.
//!
//! # How to run
//!
//! ```text
//! cargo bench --bench retention
//! BENCH_MINUTE_RETENTION=365d cargo bench --bench retention   # the old behaviour
//! ```
//!
//! It takes two to three minutes once built and needs about 1 GiB of disk in the temporary
//! directory (1.4 GiB for the old behaviour). `BENCH_INTEGRATIONS=N` and `BENCH_DAYS=N` change
//! the load (figures taken so are not the benchmark's); the year's projection assumes at least
//! 30 days, so that raw results have reached their steady number.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use patchbay::app;
use patchbay::config::{self, Environment, StorageConfig};
use patchbay::model::{CheckResult, IntegrationState, LastCheck, State};
use patchbay::store::{Batch, Store};
use sqlx::Connection;

/// Seconds between two checks of one integration.
const INTERVAL: i64 = 30;
/// Rounds of checks per batch: 10 rounds of 100 integrations is `batch_size`'s 1,000.
const ROUNDS_PER_BATCH: i64 = 10;

fn setting(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn name(index: i64) -> String {
    format!("integration-{index:03}")
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

fn main() {
    let integrations = setting("BENCH_INTEGRATIONS", 100);
    let days = setting("BENCH_DAYS", 30);
    let minute_retention =
        std::env::var("BENCH_MINUTE_RETENTION").unwrap_or_else(|_| "7d".to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(integrations, days, &minute_retention));
}

/// The result of integration `index`'s check in round `round` (at `t0 + round × 30 s`, each
/// integration at its own offset within the round).
fn check(t0: DateTime<Utc>, index: i64, round: i64, integrations: i64) -> CheckResult {
    let spread = index * INTERVAL * 1000 / integrations;
    let at = t0 + chrono::Duration::milliseconds(round * INTERVAL * 1000 + spread);
    let mix = (index * 7919 + round * 104_729) % 1000;
    let success = mix % 200 != 0;
    CheckResult {
        integration: name(index),
        at,
        success,
        latency_ms: 20.0 + (mix % 200) as f64 + (mix % 7) as f64 / 10.0,
        status: Some(if success { 200 } else { 503 }),
        error_kind: (!success).then(|| "conditions".to_string()),
        message: (!success).then(|| "status == 200 failed: got 503".to_string()),
    }
}

async fn run(integrations: i64, days: i64, minute_retention: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("retention-bench.db");
    let url = format!("sqlite://{}", path.display());
    // `[storage]` as a config file would give it: the defaults but for the minute rollups'
    // retention, validated like any config.
    let config = config::parse(
        &format!("[storage]\nurl = \"{url}\"\nminute_rollup_retention = \"{minute_retention}\"\nrollup_retention = \"365d\"\n"),
        "bench.toml",
        None,
        &Environment::default(),
    )
    .unwrap_or_else(|errors| panic!("{errors}"));
    let storage: StorageConfig = config.storage;
    println!(
        "retention: {integrations} integrations every {INTERVAL} s for {days} days; results kept {}, minute rollups {}, hourly rollups {}",
        patchbay::duration::compact(storage.retention),
        patchbay::duration::compact(storage.minute_rollup_retention),
        patchbay::duration::compact(storage.rollup_retention),
    );
    let store = Store::open(&url).await.unwrap();

    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let rounds = days * 86_400 / INTERVAL;
    let started = Instant::now();
    let (mut next_prune, mut prunes, mut slowest_prune) = (t0, 0u32, std::time::Duration::ZERO);
    let mut pruned = [0u64; 3];
    let mut first = 0;
    while first < rounds {
        let last = (first + ROUNDS_PER_BATCH).min(rounds);
        let mut results = Vec::with_capacity(((last - first) * integrations) as usize);
        for round in first..last {
            for index in 0..integrations {
                results.push(check(t0, index, round, integrations));
            }
        }
        let states = (0..integrations)
            .map(|index| {
                let latest = check(t0, index, last - 1, integrations);
                IntegrationState {
                    integration: latest.integration.clone(),
                    state: State::Up,
                    since: t0,
                    consecutive_failures: 0,
                    consecutive_successes: 3,
                    last_check: Some(LastCheck {
                        at: latest.at,
                        success: latest.success,
                        latency_ms: latest.latency_ms,
                        message: latest.message,
                    }),
                }
            })
            .collect();
        // The bot prunes when it starts and every hour after: here, at each simulated hour,
        // before the batch that passes it is written.
        let batch_start = t0 + chrono::Duration::seconds(first * INTERVAL);
        while next_prune <= batch_start {
            let at = Instant::now();
            if let Some(done) = app::retention_pass(&store, &storage, next_prune).await {
                pruned[0] += done.results;
                pruned[1] += done.minute_rollups;
                pruned[2] += done.hourly_rollups;
            }
            slowest_prune = slowest_prune.max(at.elapsed());
            prunes += 1;
            next_prune += chrono::Duration::hours(1);
        }
        store
            .write(&Batch {
                results,
                states,
                transitions: Vec::new(),
            })
            .await
            .unwrap();
        if last * INTERVAL / 86_400 != first * INTERVAL / 86_400 {
            let day = last * INTERVAL / 86_400;
            eprintln!(
                "[bench] day {day:>3}: {:>6.1} s, file {}",
                started.elapsed().as_secs_f64(),
                mib(std::fs::metadata(&path).map_or(0, |m| m.len()))
            );
        }
        first = last;
    }
    // The last hour's pass, at the simulation's end.
    let end = t0 + chrono::Duration::seconds(rounds * INTERVAL);
    if let Some(done) = app::retention_pass(&store, &storage, end).await {
        pruned[0] += done.results;
        pruned[1] += done.minute_rollups;
        pruned[2] += done.hourly_rollups;
    }
    let elapsed = started.elapsed();
    store.close().await;

    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut db)
        .await
        .unwrap();
    let scalar = |sql: &'static str| sqlx::query_scalar::<sqlx::Sqlite, i64>(sql);
    let page_size = scalar("PRAGMA page_size").fetch_one(&mut db).await.unwrap();
    let pages = scalar("PRAGMA page_count")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let free = scalar("PRAGMA freelist_count")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let mut rows = BTreeMap::new();
    for (label, sql) in [
        ("check_results", "SELECT COUNT(*) FROM check_results"),
        (
            "rollups (minute)",
            "SELECT COUNT(*) FROM rollups WHERE resolution = 60",
        ),
        (
            "rollups (hour)",
            "SELECT COUNT(*) FROM rollups WHERE resolution = 3600",
        ),
        (
            "integration_states",
            "SELECT COUNT(*) FROM integration_states",
        ),
        ("transitions", "SELECT COUNT(*) FROM transitions"),
    ] {
        rows.insert(label, scalar(sql).fetch_one(&mut db).await.unwrap());
    }
    // Bytes per table and index, when this SQLite has the dbstat table (the bundled one does).
    let btrees: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY SUM(pgsize) DESC",
    )
    .fetch_all(&mut db)
    .await
    .unwrap_or_default();
    db.close().await.unwrap();
    let file = std::fs::metadata(&path).unwrap().len();

    println!(
        "simulated {days} days in {:.1} s: {prunes} retention passes (slowest {:.0} ms) deleted {} results, {} minute and {} hourly rollups",
        elapsed.as_secs_f64(),
        slowest_prune.as_secs_f64() * 1000.0,
        pruned[0],
        pruned[1],
        pruned[2]
    );
    println!(
        "database file after a checkpoint: {} ({file} bytes): {pages} pages of {page_size} bytes, {free} free",
        mib(file)
    );
    println!();
    println!("| table | rows |");
    println!("|---|---|");
    for (table, count) in &rows {
        println!("| {table} | {count} |");
    }
    println!();
    println!("| table or index | size |");
    println!("|---|---|");
    for (btree, bytes) in &btrees {
        if *bytes >= 1 << 20 {
            println!("| {btree} | {} |", mib(*bytes as u64));
        }
    }

    // A year: raw results and minute rollups as now (deleted pages are reused), hourly
    // rollups grown to 365 days, all rollup rows at the bytes per row measured here.
    let rollup_bytes: i64 = btrees
        .iter()
        // The table and every index on it, whatever the schema names them.
        .filter(|(name, _)| {
            name.starts_with("rollups") || name.starts_with("sqlite_autoindex_rollups")
        })
        .map(|(_, bytes)| bytes)
        .sum();
    let rollup_rows = rows["rollups (minute)"] + rows["rollups (hour)"];
    if rollup_bytes > 0 && rollup_rows > 0 {
        let per_row = rollup_bytes as f64 / rollup_rows as f64;
        let other = file as f64 - rollup_bytes as f64;
        let hourly_year = (integrations * 24 * 365) as f64;
        let minute_kept = |retention_days: f64| integrations as f64 * 1440.0 * retention_days;
        let year = |minute_rows: f64| other + per_row * (minute_rows + hourly_year);
        let new_days = storage.minute_rollup_retention.as_secs_f64() / 86_400.0;
        println!();
        println!(
            "rollups: {} in {rollup_rows} rows, {per_row:.0} bytes a row (table and its indexes); the rest of the file: {}",
            mib(rollup_bytes as u64),
            mib(other as u64)
        );
        println!(
            "a year, projected: {} (minute rollups kept {new_days} days)",
            mib(year(minute_kept(new_days.min(365.0))) as u64),
        );
        if new_days < 365.0 {
            println!(
                "the old behaviour (minute rollups kept 365 days), projected from the same rows: {} at {days} days, {} at a year",
                mib((other
                    + per_row * (minute_kept(days as f64) + (integrations * 24 * days) as f64))
                    as u64),
                mib(year(minute_kept(365.0)) as u64),
            );
        }
    }
}
