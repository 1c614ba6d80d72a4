//! How fast the REST API lists every integration, and how much time patchbay itself adds to an
//! action's round trip, with 10,000 integrations configured and a day of history stored.
//! Patchbay is started as `patchbay run` starts it (`app::start`), with the Discord front
//! against the fake Discord and the action's workflow on the fake Retool.
//!
//! - **List**: `GET /api/v1/integrations` (the full table, 2.3 MB of JSON) from 8
//!   connections at once, each sending its next request as soon as the last answer's body has
//!   arrived, 2,000 requests each (`BENCH_REQUESTS` for fewer per connection,
//!   `BENCH_CONNECTIONS` for another number of connections). Reports the
//!   throughput and the p50, p99 and max latency (request sent to body read), goal p99 < 50 ms.
//!   The load client runs in the same process, on the same 2 cores as patchbay.
//! - **Action overhead**: `/action run` of an action with `confirm = false` on a workflow that
//!   answers at once, 200 runs one after another (`BENCH_ACTIONS` for fewer; runs of one action
//!   are single flight). Reports patchbay's own time: (a) from the fake Discord writing
//!   INTERACTION_CREATE to the fake Retool receiving the POST (the deferral's round trip to
//!   Discord included), (b) from the fake Retool answering to the fake Discord receiving the
//!   PATCH of `@original`, and (a)+(b), goal p99 < 20 ms.
//!
//! Figures on the 2-core development machine (release build). The first three columns were
//! measured with other builds running beside; the last two on a quiet machine, one after the
//! other (load average under 2.4), the shared body's before at adc6ad8:
//!
//! | | aggregating | kept figures | kept figures (quiet) | shared body (quiet) |
//! | --- | --- | --- | --- | --- |
//! | list, 8 connections: p50 / p99 / max | 2,198 / 4,836 / 4,836 ms (40 requests) | 58.1 / 117.9 / 1,743 ms | 45.7 / 109.6 / 647 ms | 3.83 / 8.29 / 26.0 ms (goal met) |
//! | list, 8 connections: throughput | 3.0 req/s | 130.1 req/s | 159.5 req/s | 1,993.5 req/s |
//! | action (a)+(b) p50 / p99 | 2.26 / 7.05 ms | 2.23 / 5.38 ms | 1.96 / 6.41 ms | 2.30 / 6.34 ms (goal met) |
//!
//! - Aggregating: every list aggregated a day of rollups for every integration in SQLite.
//! - Kept figures: the plane keeps the 24-hour figures (`service/figures.rs`), states are read
//!   in place, and the list is serialized into one buffer. Each answer still cost about 15 ms
//!   of a core (10,000 rows and 2.3 MB of JSON), so 8 requests in flight on 2 cores queued
//!   behind each other.
//! - Shared body: the REST front keeps the rendered list (`http::api::ListCache`) and serves it
//!   to every caller for up to a second while nothing but last-check times and figures changed
//!   (`ControlPlane::status_list_stamp`: transitions, reloads, open incidents); each caller is
//!   still checked, rate limited and audited. What is left per request is the key check, the
//!   audit row, the stamp's read of the open incidents and the 2.3 MB copy through loopback.
//!
//! //! Run: `cargo bench --bench api`. Everything stays on 127.0.0.1.

#[path = "../tests/common/fake_discord/mod.rs"]
#[allow(dead_code)]
mod fake_discord;
#[path = "../tests/common/fake_retool/mod.rs"]
#[allow(dead_code)]
mod fake_retool;
#[path = "../tests/common/history.rs"]
#[allow(dead_code)]
mod history;
#[path = "../tests/common/stack.rs"]
#[allow(dead_code)]
mod stack;
#[path = "../tests/common/upstream.rs"]
#[allow(dead_code)]
mod upstream;

use std::time::{Duration, Instant};

use fake_discord::{FakeDiscord, FakeMember};
use fake_retool::{Answer, FakeRetool};
use patchbay::model::Actor;
use serde_json::{Value, json};

const INTEGRATIONS: usize = 10_000;
/// Connections the load client keeps open to the API, each with one request in flight
/// (`BENCH_CONNECTIONS` for another number).
fn connections() -> usize {
    env_count("BENCH_CONNECTIONS", 8).max(1)
}
const LIST_GOAL: Duration = Duration::from_millis(50);
const ACTION_GOAL: Duration = Duration::from_millis(20);
/// The workflow's API key (given to patchbay through the environment, as in production).
const RETOOL_KEY: &str = "retool_wk_bench_key";
/// The action and its workflow.
const ACTION: &str = "bench";

/// A count from the environment, or `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// p50, p99 and max of `latencies` (sorted here).
fn spread(mut latencies: Vec<Duration>) -> (Duration, Duration, Duration) {
    latencies.sort();
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    )
}

fn verdict(p99: Duration, goal: Duration) -> &'static str {
    if p99 < goal { "PASS" } else { "MISS" }
}

/// The config: the bot in the fake's guild, no command or API rate limit to speak of,
/// `action.run` for the ops role, the integrations, and the action on the fake Retool.
fn config(retool: &FakeRetool) -> String {
    format!(
        "[bot]\nguilds = [\"{guild}\"]\ncommand_rate = \"1000000/s\"\n\
         [api]\nrate = \"1000000/s\"\n\
         [[grant]]\nrole = \"{ops}\"\npermissions = [\"action.run\"]\n\
         [[action]]\nname = \"{ACTION}\"\nkind = \"retool-workflow\"\ndescription = \"Answers at once\"\n\
         url = \"{url}\"\napi_key = \"env:RETOOL_KEY\"\nconfirm = false\n\
         {integrations}",
        guild = fake_discord::GUILD_ID,
        ops = fake_discord::OPS_ROLE,
        url = retool.workflow_url(ACTION),
        integrations = history::integrations(INTEGRATIONS),
    )
}

/// Checks once that the list is whole and carries the 24-hour figures, so the load below
/// measures the real answer.
async fn check_list(url: &str, key: &str) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rows: Vec<Value> = response.json().await.unwrap();
    assert_eq!(rows.len(), INTEGRATIONS);
    assert_eq!(rows[0]["state"], "DOWN", "worst first: {}", rows[0]);
    let with_figures = rows
        .iter()
        .filter(|row| row["uptime_24h"].is_f64() && row["latency_p95_ms"].is_f64())
        .count();
    assert_eq!(
        with_figures, INTEGRATIONS,
        "every row has its 24-hour figures"
    );
}

/// `per_connection` requests on each of [`connections`] connections; every latency, the bytes
/// read and the wall time of the whole load.
async fn list_load(
    url: &str,
    key: &str,
    per_connection: usize,
) -> (Vec<Duration>, usize, Duration) {
    let started = Instant::now();
    let workers: Vec<_> = (0..connections())
        .map(|_| {
            let (url, key) = (url.to_string(), key.to_string());
            tokio::spawn(async move {
                // One connection per worker: a pool of one, kept alive between requests.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                let mut latencies = Vec::with_capacity(per_connection);
                let mut bytes = 0;
                for _ in 0..per_connection {
                    let sent = Instant::now();
                    let mut response = client.get(&url).bearer_auth(&key).send().await.unwrap();
                    assert_eq!(response.status(), 200);
                    // Read and dropped chunk by chunk, as wrk does: the client's own copying
                    // would count in the latency measured.
                    while let Some(chunk) = response.chunk().await.unwrap() {
                        bytes += chunk.len();
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, bytes)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(connections() * per_connection);
    let mut bytes = 0;
    for worker in workers {
        let (some, read) = worker.await.unwrap();
        latencies.extend(some);
        bytes += read;
    }
    (latencies, bytes, started.elapsed())
}

/// Patchbay's own time in `runs` runs of the action: (a) interaction to Retool's POST, (b)
/// Retool's answer to the edit of `@original`.
async fn action_overhead(
    fake: &FakeDiscord,
    retool: &FakeRetool,
    runs: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let options = json!([{ "type": 1, "name": "run", "options": [
        { "type": 3, "name": "name", "value": ACTION }
    ]}]);
    let (mut to_retool, mut to_discord) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for n in 0..runs {
        let id = fake
            .command("action", options.clone(), FakeMember::OPS)
            .await;
        let token = fake.interaction_token(id).expect("the interaction exists");
        let original = format!("/{token}/messages/@original");
        let edit = fake
            .wait_for_request("the outcome in @original", |r| {
                r.method == "PATCH" && r.path.ends_with(&original)
            })
            .await;
        let shown = edit.body.as_ref().map(Value::to_string).unwrap_or_default();
        assert!(shown.contains("HTTP 200"), "the run succeeded: {shown}");
        let requests = retool.requests(ACTION);
        assert_eq!(requests.len(), n + 1, "one POST per run");
        let request = &requests[n];
        let sent = fake
            .interaction_sent_at(id)
            .expect("INTERACTION_CREATE was written");
        let answered = request.answered.expect("the fake answered");
        to_retool.push(request.received.saturating_duration_since(sent));
        to_discord.push(edit.at.saturating_duration_since(answered));
    }
    (to_retool, to_discord)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let retool = FakeRetool::start().await;
    retool.add_workflow(
        ACTION,
        RETOOL_KEY,
        Answer::Sync {
            status: 200,
            body: json!({"ok": true}),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    history::store_day(dir.path(), INTEGRATIONS).await;
    let bench = stack::start_text(
        FakeDiscord::start().await,
        dir,
        &config(&retool),
        true,
        vec![("RETOOL_KEY", RETOOL_KEY.to_string())],
    )
    .await;
    let key = bench
        .plane()
        .create_api_key("bench", "status.view", &Actor::cli())
        .await
        .unwrap()
        .secret
        .expose()
        .to_string();
    let url = format!("http://{}/api/v1/integrations", bench.running().address());

    check_list(&url, &key).await;
    let per_connection = env_count("BENCH_REQUESTS", 2_000).max(1);
    eprintln!(
        "[bench] GET /api/v1/integrations: {} connections x {per_connection} requests ...",
        connections()
    );
    let (latencies, bytes, took) = list_load(&url, &key, per_connection).await;
    let requests = latencies.len();
    let (list_p50, list_p99, list_max) = spread(latencies);

    let runs = env_count("BENCH_ACTIONS", 200).max(1);
    eprintln!("[bench] /action run {ACTION}: {runs} runs, one at a time ...");
    let (to_retool, to_discord) = action_overhead(&bench.fake, &retool, runs).await;
    let both: Vec<Duration> = to_retool
        .iter()
        .zip(&to_discord)
        .map(|(a, b)| *a + *b)
        .collect();
    assert!(retool.violations().is_empty(), "{:?}", retool.violations());

    println!(
        "\n| GET /api/v1/integrations | req/s | p50 | p99 | max | goal p99 < 50 ms |\n\
         | --- | --- | --- | --- | --- | --- |\n\
         | {requests} requests, {} connections, {:.1} MB each | {:.1} | {} | {} | {} | {} |",
        connections(),
        bytes as f64 / requests as f64 / 1e6,
        requests as f64 / took.as_secs_f64(),
        ms(list_p50),
        ms(list_p99),
        ms(list_max),
        verdict(list_p99, LIST_GOAL),
    );
    println!(
        "\n| action overhead ({runs} runs) | p50 | p99 | max | goal p99 < 20 ms |\n| --- | --- | --- | --- | --- |"
    );
    for (label, latencies) in [
        ("(a) interaction to Retool POST", to_retool),
        ("(b) Retool answer to @original edit", to_discord),
        ("(a)+(b)", both),
    ] {
        let (p50, p99, max) = spread(latencies);
        println!(
            "| {label} | {} | {} | {} | {} |",
            ms(p50),
            ms(p99),
            ms(max),
            verdict(p99, ACTION_GOAL)
        );
    }
    println!("({INTEGRATIONS} integrations, a day of history)");
    bench.stop().await;
}
