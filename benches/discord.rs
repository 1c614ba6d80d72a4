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
#[path = "../tests/common/history.rs"]
#[allow(dead_code)]
mod history;
#[path = "../tests/common/stack.rs"]
#[allow(dead_code)]
mod stack;
#[path = "../tests/common/upstream.rs"]
#[allow(dead_code)]
mod upstream;

use std::time::Duration;

use fake_discord::{FakeDiscord, FakeMember};
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
    let text = format!(
        "[bot]\nguilds = [\"{}\"]\ncommand_rate = \"1000000/s\"\n{}",
        fake_discord::GUILD_ID,
        history::integrations(INTEGRATIONS)
    );
    // The history is written before patchbay starts, into the file the stack will open.
    history::store_day(dir.path(), INTEGRATIONS).await;
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
                json!([{ "name": "integration", "type": 3, "value": history::name((n * 7919) % INTEGRATIONS) }])
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
