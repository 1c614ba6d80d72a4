//! How fast `/status` answers: the time from the fake Discord sending INTERACTION_CREATE to
//! receiving the bot's callback POST, over the real serenity/poise front, with 10,000
//! integrations configured and a day of history stored. 1,000 invocations each of `/status`
//! and `/status <integration>` (`BENCH_INVOCATIONS` for fewer); reports p50/p99 against the
//! goal (p99 under 25 ms).
//!
//! Run: `cargo bench --bench discord`. Everything stays on 127.0.0.1.

#[path = "../tests/common/fake_discord/mod.rs"]
#[allow(dead_code)]
mod fake_discord;
#[path = "../tests/common/stack.rs"]
#[allow(dead_code)]
mod stack;
#[path = "../tests/common/upstream.rs"]
#[allow(dead_code)]
mod upstream;

use std::time::Duration;

use fake_discord::{FakeDiscord, FakeMember};
use patchbay::model::{CheckResult, IntegrationState, State};
use patchbay::store::{Batch, Store};
use serde_json::json;

const INTEGRATIONS: usize = 10_000;
/// The figure is over 1,000 invocations; `BENCH_INVOCATIONS` takes fewer for a quick
/// look (the overview at 10,000 integrations is slow, see the closing notes).
fn invocations() -> usize {
    std::env::var("BENCH_INVOCATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = format!(
        "[bot]\nguilds = [\"{}\"]\ncommand_rate = \"1000000/s\"\n",
        fake_discord::GUILD_ID
    );
    for i in 0..INTEGRATIONS {
        // Long intervals: the engine runs but does not check during the measurement.
        text.push_str(&format!(
            "[[integration]]\nname = \"svc-{i}\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"24h\"\ntags = [\"bench\"]\n"
        ));
    }
    // The history is written before patchbay starts, into the file the stack will open.
    let store = Store::open(&format!(
        "sqlite://{}",
        stack::db_path(dir.path()).display()
    ))
    .await
    .unwrap();

    // A day of history: one result per integration per hour, and a state for each.
    let now = patchbay::model::now();
    eprintln!("[bench] storing 24 h of history for {INTEGRATIONS} integrations ...");
    for hour in 0..24 {
        let results: Vec<CheckResult> = (0..INTEGRATIONS)
            .map(|i| CheckResult {
                integration: format!("svc-{i}"),
                at: now - chrono::Duration::hours(hour),
                success: !(i + hour as usize).is_multiple_of(17),
                latency_ms: 5.0 + (i % 200) as f64,
                status: Some(200),
                error_kind: None,
                message: None,
            })
            .collect();
        let states = if hour == 0 {
            (0..INTEGRATIONS)
                .map(|i| {
                    let mut state = IntegrationState::new(format!("svc-{i}"), now);
                    state.state = if i % 97 == 0 { State::Down } else { State::Up };
                    state
                })
                .collect()
        } else {
            Vec::new()
        };
        store
            .write(&Batch {
                results,
                states,
                transitions: Vec::new(),
            })
            .await
            .unwrap();
    }

    store.close().await;
    // Started as `patchbay run` starts (`app::start`): the engine, the HTTP server, the alert
    // pipeline and the Discord front.
    let bench = stack::start_text(fake, dir, &text, true, Vec::new()).await;
    let fake = &bench.fake;

    let mut report = Vec::new();
    // `BENCH_ONLY=detail` skips the overview, which is slow at this size (see the notes).
    let only_detail = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "detail");
    for (label, with_argument) in [("/status", false), ("/status <integration>", true)] {
        if only_detail && !with_argument {
            continue;
        }
        let mut latencies = Vec::with_capacity(invocations());
        for n in 0..invocations() {
            let options = if with_argument {
                json!([{ "name": "integration", "type": 3, "value": format!("svc-{}", (n * 7919) % INTEGRATIONS) }])
            } else {
                json!([])
            };
            let id = fake.command("status", options, FakeMember::NOBODY).await;
            let reply = fake.callback_for(id).await;
            assert_eq!(reply["type"], 4, "{reply}");
            latencies.push(fake.callback_latency(id).expect("a callback was received"));
        }
        latencies.sort();
        report.push((
            label,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1],
        ));
    }
    println!("\n| command | p50 | p99 | max | goal p99 < 25 ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, p50, p99, max) in report {
        println!(
            "| {label} | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            if p99 < Duration::from_millis(25) {
                "PASS"
            } else {
                "MISS"
            }
        );
    }
    println!(
        "({INTEGRATIONS} integrations, {} invocations each, one at a time)",
        invocations()
    );
    bench.stop().await;
}
