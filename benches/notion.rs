//! The Notion status board against the fake Notion (`tests/common/fake_notion/`) with its rate
//! limit on (Notion's average of 3 requests per second): the real client, store, lease and job.
//! Everything stays on 127.0.0.1.
//!
//! # What it measures
//!
//! 1,000 integrations (`BENCH_ROWS` for another number), one `notion-status-board` job on a
//! fresh database:
//!
//! - **First sync**: the schema is completed and 1,000 rows are created. Figures: requests
//!   (counted by the client, and seen by the fake), wall time, and wall time against the
//!   rate-limit bound, requests ÷ 3 per second. Goal: within 10% of the bound.
//! - **Steady state**: the same job again with nothing changed. Figures: requests and wall time.
//!   Goal: at most 1 request per 100 rows (10 for 1,000).
//! - **One change**: one integration changes state; requests (one query page per 100 rows, plus
//!   the one page update).
//!
//! Run with `cargo bench --bench notion`. The first sync takes about 1,000 ÷ 3 ≈ 6 minutes by
//! design: that is Notion's rate.

#[path = "../tests/common/fake_notion/mod.rs"]
#[allow(dead_code)]
mod fake_notion;

use std::sync::Arc;
use std::time::Instant;

use fake_notion::{FakeNotion, RateLimit};
use patchbay::config::{self, Environment};
use patchbay::model::{Actor, IntegrationState, State};
use patchbay::notion::Notion;
use patchbay::store::{Batch, Store};
use patchbay::sync::{RunRequest, SyncReport, Syncs};

const TOKEN: &str = "secret_bench";

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let fake = FakeNotion::start(TOKEN).await;
    fake.set_rate_limit(Some(RateLimit::notion()));
    let (database, data_source) = fake.add_database_with_title_property("Board", "Name");
    let mut text = String::new();
    for i in 0..rows {
        text.push_str(&format!(
            "[[integration]]\nname = \"svc-{i:04}\"\nurl = \"http://127.0.0.1:9/\"\n"
        ));
    }
    text.push_str(&format!(
        "[[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{database}\"\n"
    ));
    let config = config::parse(
        &text,
        "bench.toml",
        None,
        &Environment::from_pairs([
            ("NOTION_TOKEN", TOKEN.to_string()),
            ("NOTION_API_BASE", fake.api_base()),
        ]),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .unwrap();
    let notion = Arc::new(Notion::new(fake.api_base().parse().unwrap(), None));
    let syncs = Syncs::new(store.clone(), notion, None);
    let job = config.sync_job("board").unwrap();
    let run = || async {
        let seen_before = fake.requests().len();
        let started = Instant::now();
        let report: SyncReport = syncs
            .run(
                &config,
                RunRequest {
                    job,
                    actor: Actor::Cli {
                        user: "bench".into(),
                    },
                    dry_run: false,
                    progress_link: None,
                },
                &|_| {},
            )
            .await
            .unwrap();
        let wall = started.elapsed();
        (report, wall, fake.requests().len() - seen_before)
    };

    println!("notion status board, {rows} integrations, fake Notion at 3 requests/s");
    let (first, wall, seen) = run().await;
    let bound = first.counts.requests as f64 / 3.0;
    println!(
        "first sync:   {:>5} requests (fake saw {seen}), {:>7.1} s wall, bound {:>7.1} s, {:+.1}% over the bound; created {}",
        first.counts.requests,
        wall.as_secs_f64(),
        bound,
        (wall.as_secs_f64() / bound - 1.0) * 100.0,
        first.counts.created
    );
    assert_eq!(fake.pages(&data_source).len(), rows);

    let (steady, wall, seen) = run().await;
    println!(
        "steady state: {:>5} requests (fake saw {seen}), {:>7.2} s wall; unchanged {}; goal ≤ {}",
        steady.counts.requests,
        wall.as_secs_f64(),
        steady.counts.unchanged,
        rows.div_ceil(100)
    );

    let mut state = IntegrationState::new("svc-0001".to_string(), patchbay::model::now());
    state.state = State::Down;
    store
        .write(&Batch {
            states: vec![state],
            ..Batch::default()
        })
        .await
        .unwrap();
    let (one, wall, seen) = run().await;
    println!(
        "one change:   {:>5} requests (fake saw {seen}), {:>7.2} s wall; updated {}",
        one.counts.requests,
        wall.as_secs_f64(),
        one.counts.updated
    );
    let violations = fake.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}
