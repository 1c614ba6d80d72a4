//! Benchmark of `/status <integration>`'s chart: `ControlPlane::status_chart_at` for one
//! integration of a real SQLite store holding 10,000 integrations' history.
//!
//! # What it measures
//!
//! The store is filled as a day of one-minute checks would leave it: for each of 10,000
//! integrations, 1,440 one-minute rollups (the last 24 hours) and 168 one-hour rollups (the last
//! 7 days), about 16 million rows, plus a DOWN and a DEGRADED span each. The rows are written
//! with one `INSERT ... SELECT` over recursive counters per table, in one transaction on a
//! connection of its own (the store's writer would take minutes for 14 million results; what is
//! measured is the read, which only needs the rows there). Then, for each period (`24h` from
//! minute rollups, `7d` from hourly ones), 50 runs on 50 different integrations spread over the
//! names, each timed in three parts:
//!
//! - **read**: `service::chart_data` (the rollup rows and the transitions, on the store's pool);
//! - **render**: `chart::render_png` on the data just read (plotters and PNG encoding, on the
//!   calling thread here);
//! - **call**: `ControlPlane::status_chart_at`, the whole call a front makes (read, then render
//!   on tokio's blocking pool).
//!
//! p50 and p99 of each are printed, with PASS or MISS against the goal: the whole call under
//! 50 ms at p99. The runtime has two worker threads, as on the 2-core machine patchbay is sized
//! for; the database file's pages are in the OS cache after the fill, as they are for a store in
//! use.
//!
//! # Figures
//!
//! On the 2-core development machine, 10,000 integrations, p50 / p99 in ms. "Rowid" is the
//! rollups table before migration 0009 (rows in the order written, an index by integration),
//! "clustered" after it (`WITHOUT ROWID`, keyed by integration, resolution and bucket). Quiet:
//! nothing else running; loaded: two busy loops beside the bench (load average about 3); both
//! versions were measured one after the other in each setting.
//!
//! | | rowid, quiet | clustered, quiet | rowid, loaded | clustered, loaded |
//! | --- | --- | --- | --- | --- |
//! | fill | 68 s, 1.99 GiB | 60 s, 1.38 GiB | 90 s | 83 s |
//! | 24h read | 10.3 / 15.4 | 4.7 / 7.6 | 35.4 / 78.7 | 13.2 / 21.6 |
//! | 24h render | 7.0 / 10.0 | 6.8 / 7.8 | 11.3 / 16.7 | 10.8 / 16.0 |
//! | 24h call | 17.6 / 23.3 | 11.3 / 15.7 | 49.1 / 63.7 (MISS) | 26.3 / 37.3 (PASS) |
//! | 7d call | 4.2 / 5.0 | 3.4 / 4.1 | 8.6 / 16.3 | 3.6 / 8.5 |
//!
//! An earlier run on a machine shared with builds (load about 3.5) gave the rowid table's 24h
//! call 38 / 211 ms. The store's write rate did not change with the clustering
//! (`BENCH_ONLY=sqlite cargo bench --bench engine`: 332 and 334 batches of 1,000 results in
//! 5 s, 15.1 and 15.0 ms per batch). See ARCHITECTURE.md, Performance notes.
//!
//! # How to run
//!
//! ```text
//! cargo bench --bench chart
//! ```
//!
//! The fill takes about a minute and a half and needs about 2 GiB of disk in the temporary directory.
//! `BENCH_INTEGRATIONS=N` changes the number of integrations (figures taken so are not the
//! benchmark's).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use patchbay::chart::{ChartPeriod, ChartSize, render_png};
use patchbay::config::{self, Environment};
use patchbay::service::{ControlPlane, chart_data};
use patchbay::store::Store;
use sqlx::Connection;

/// The goal for the whole call, at p99.
const GOAL: Duration = Duration::from_millis(50);
/// Runs per period.
const RUNS: usize = 50;

fn name(index: usize) -> String {
    format!("integration-{index:05}")
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn main() {
    let integrations: usize = std::env::var("BENCH_INTEGRATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(integrations));
}

async fn run(integrations: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chart-bench.sqlite");
    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url).await.unwrap();
    // The last whole minute, so every period ends on a bucket boundary.
    let now = DateTime::from_timestamp(Utc::now().timestamp() / 60 * 60, 0).unwrap();

    let started = Instant::now();
    fill(&url, integrations, now).await;
    let fill_time = started.elapsed();
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "fill: {integrations} integrations, {} minute and {} hourly rollups in {:.1} s ({:.2} GiB)",
        integrations * 1440,
        integrations * 168,
        fill_time.as_secs_f64(),
        size as f64 / (1u64 << 30) as f64
    );

    let text: String = (0..integrations)
        .map(|i| {
            format!(
                "[[integration]]\nname = \"{}\"\nurl = \"http://127.0.0.1:9/\"\n",
                name(i)
            )
        })
        .collect();
    let config = config::parse(&text, "bench.toml", None, &Environment::default()).unwrap();
    let plane = ControlPlane::new(&config, store.clone(), None)
        .await
        .unwrap();

    println!();
    println!("| period | part | p50 | p99 | goal |");
    println!("|---|---|---|---|---|");
    let mut passed = true;
    for period in ChartPeriod::ALL {
        let (mut read, mut render, mut call) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..RUNS {
            // A different integration each run, spread over the whole table.
            let integration = name(run * 7919 % integrations);
            let at = Instant::now();
            let data = chart_data(&config, &store, &integration, period, now)
                .await
                .unwrap();
            read.push(at.elapsed());
            assert!(!data.points.is_empty() && !data.incidents.is_empty());
            let at = Instant::now();
            let png = render_png(&data, ChartSize::STANDARD).unwrap();
            render.push(at.elapsed());
            let other = name((run * 7919 + 1) % integrations);
            let at = Instant::now();
            let chart = plane.status_chart_at(&other, period, now).await.unwrap();
            call.push(at.elapsed());
            assert!(png.len() > 1000 && chart.png.len() > 1000);
        }
        for (part, times) in [
            ("read", &mut read),
            ("render", &mut render),
            ("call", &mut call),
        ] {
            times.sort();
            let p99 = percentile(times, 0.99);
            let verdict = if part == "call" {
                let pass = p99 < GOAL;
                passed &= pass;
                format!("{} (< {})", if pass { "PASS" } else { "MISS" }, ms(GOAL))
            } else {
                String::new()
            };
            println!(
                "| {period} | {part} | {} | {} | {verdict} |",
                ms(percentile(times, 0.5)),
                ms(p99)
            );
        }
    }
    println!();
    println!(
        "{}",
        if passed {
            "chart: every goal met"
        } else {
            "chart: a goal was missed"
        }
    );
    store.close().await;
}

/// Writes the history: minute rollups for the last 24 hours and hourly ones for the last 7
/// days for every integration (latencies between 26 and 49 ms, one check in 400 failed), and
/// for each a DEGRADED span two days ago and a DOWN span five hours ago.
async fn fill(url: &str, integrations: usize, now: DateTime<Utc>) {
    let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
    // A big page cache for the fill only: the secondary index is written out of order.
    sqlx::query("PRAGMA cache_size = -2000000")
        .execute(&mut db)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    let now_s = now.timestamp();
    let last = integrations as i64 - 1;
    for (resolution, buckets, count) in [(60i64, 1440i64, 1i64), (3600, 168, 60)] {
        let first = (now_s - buckets * resolution).div_euclid(resolution) * resolution + resolution;
        // Histogram column h5 holds latencies in (25, 50] ms: every check here.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1), \
             m(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM m WHERE k < $2) \
             INSERT INTO rollups (integration, resolution, bucket, count, failures, latency_sum, \
             latency_min, latency_max, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13) \
             SELECT printf('integration-%05d', i), $3, $4 + k * $3, $5, \
             CASE WHEN (i * 31 + k) % 400 = 0 THEN 1 ELSE 0 END, \
             $5 * (26 + (i * 7 + k * 13) % 24), 26, 26 + (i * 7 + k * 13) % 24, \
             0, 0, 0, 0, 0, $5, 0, 0, 0, 0, 0, 0, 0, 0 \
             FROM m, n",
        )
        .bind(last)
        .bind(buckets - 1)
        .bind(resolution)
        .bind(first)
        .bind(count)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    let ms = now_s * 1000;
    let hour = 3_600_000i64;
    for (hours_ago, from, to) in [
        (8 * 24, "UNKNOWN", "UP"),
        (49, "UP", "DEGRADED"),
        (47, "DEGRADED", "UP"),
        (5, "UP", "DOWN"),
        (4, "DOWN", "UP"),
    ] {
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO transitions (integration, from_state, to_state, reason, at_ms) \
             SELECT printf('integration-%05d', i), $2, $3, 'bench', $4 FROM n",
        )
        .bind(last)
        .bind(from)
        .bind(to)
        .bind(ms - hours_ago * hour)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    db.close().await.unwrap();
}
