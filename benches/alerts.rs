//! Alert latency and burst cost, end to end: the real `patchbay run` wiring (`app::start`:
//! engine, writer, alert pipeline, outbox dispatcher, Discord courier) against real HTTP
//! upstreams that the bench flips between healthy and failing, a fake Discord
//! (`tests/common/fake_discord/`) and a real SQLite file. Everything stays on 127.0.0.1.
//!
//! # What it measures
//!
//! **Single incidents.** 200 integrations (`BENCH_INCIDENTS` for fewer), each with its own
//! upstream, checked every 500 ms with `failure_threshold = 1` and `[alerts] group_wait = "0"`.
//! One at a time: break an upstream, take the DOWN transition from `Engine::subscribe`, wait for
//! the alert's POST at the fake, heal it, and wait until the incident is resolved and its edit
//! and reply have gone out (the outbox is empty), so incidents never overlap or group. Each
//! integration has exactly one incident, so flapping detection never applies. The figure:
//!
//! - **check completion → POST**: from the end of the deciding check to the fake Discord
//!   having read the alert's `POST /channels/{id}/messages` (`Recorded.at`, taken in the fake's
//!   handler once the body has arrived). The deciding check's completion is the transition's
//!   `at` (when that check started, `model::now()`, floored to the millisecond) plus the
//!   check's own `latency_ms` (request sent to body read), read back from the stored result
//!   with that `at`, which is committed in the same transaction as the transition. The path in
//!   between: state machine, the writer's commit, the broadcast, the alert pipeline's
//!   transaction (incident, notice, outbox row), the dispatcher's wake-up, the notice's view,
//!   rendering, and the HTTP request. The same is reported for the recovery (check completion →
//!   the `PATCH` that marks the message resolved), and, for reference, from the transition's
//!   `at` (the check's start) and from the moment the bench broke the upstream (which adds the
//!   wait for the next scheduled check, up to one 500 ms interval).
//! - **Clocks.** `at` is wall-clock time (chrono) and `Recorded.at` an `Instant`. Right before
//!   each incident the bench samples the pair (`Instant::now()`, `Utc::now()`) and maps the
//!   fake's `Instant` onto the wall clock through it, so the two clocks only need to agree over
//!   the second an incident takes. `at` is floored to the millisecond, so each figure is
//!   overstated by up to 1 ms; the check's latency and the fake's arrival time are exact.
//!
//! **Single incidents beside a hanging channel.** The same, for 100 integrations
//! (`BENCH_STUCK`), while one more integration, routed to a second channel, is DOWN and every
//! request to that channel hangs at the fake until the courier's 10 s timeout (its post is
//! retried, and hangs again, throughout). The figure is the same check completion → POST: a
//! dispatcher that delivered one row at a time would make alerts wait behind the hanging
//! request.
//!
//! **Bursts.** 1,000 integrations (`BENCH_BURST` for fewer) share one upstream, checked every
//! second, which is flipped once (so all of them go DOWN within one interval), then healed.
//! Three runs, each a fresh patchbay:
//!
//! 1. the default `group_wait` (10 s): one message, edited as incidents join it;
//! 2. the same behind a proxy that limits the alert channel's message routes as Discord does
//!    (5 requests per 5 s per route and channel: `POST .../messages` is one bucket, every
//!    `PATCH .../messages/{id}` in the channel another) and answers the excess with Discord's
//!    429 (body `retry_after`, `Retry-After`, `X-RateLimit-*`). patchbay keeps no client-side
//!    rate limiter, so this shows what the 429s cost and whether it storms (keeps sending
//!    inside a 429's window);
//! 3. `group_wait = "0"`: one message per incident, with 50 integrations (`BENCH_UNGROUPED`):
//!    the dispatcher spaces edits in a channel 1.2 s apart, so the recovery's edits of 1,000
//!    separate messages would take about 20 minutes, which Discord's limit imposes anyway.
//!
//! For each phase (going down, recovering): transitions seen (time from the flip to the last),
//! requests on the alert channel (POSTs, PATCHes, 429s, requests sent inside a 429's window),
//! the most requests on one route in any 5 s (Discord allows 5), time from the flip to the
//! first request and until the outbox is drained, and what the channel ends up showing.
//! Warnings and errors logged are counted (the engine's own "state changed" lines excepted) and
//! listed under the tables by phase, start-ups (until every integration is UP) apart; single
//! incidents during which anything was logged are listed with their latencies.
//!
//! Run: `cargo bench --bench alerts` (about five minutes after the build; `BENCH_BURST=0
//! BENCH_UNGROUPED=0` measures single incidents only). `RUST_LOG` prints
//! patchbay's log to stderr as well.

#[path = "../tests/common/fake_discord/mod.rs"]
#[allow(dead_code)]
mod fake_discord;
#[path = "../tests/common/upstream.rs"]
#[allow(dead_code)]
mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{DateTime, Utc};
use fake_discord::FakeDiscord;
use patchbay::app::{self, Running};
use patchbay::config::{self, Environment};
use patchbay::model::{State, Transition};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use upstream::Upstream;

const ALERTS: u64 = fake_discord::ALERT_CHANNEL_ID;
/// The single-incident integrations' interval (and timeout).
const SINGLE_INTERVAL: &str = "500ms";
/// The burst integrations' interval: all of them see the flip within one.
const BURST_INTERVAL: &str = "1s";
/// Discord's limit on one message route in one channel: 5 requests per 5 s.
const DISCORD_LIMIT: u32 = 5;
const DISCORD_WINDOW: Duration = Duration::from_secs(5);
/// The p99 goal for a single incident.
const GOAL: Duration = Duration::from_millis(250);
/// How long a burst may take to drain before the bench gives up.
const BURST_DEADLINE: Duration = Duration::from_secs(600);

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
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Starting patchbay
// ---------------------------------------------------------------------------------------------

struct Bench {
    running: Running,
    fake: FakeDiscord,
    proxy: Option<Arc<Limiter>>,
    _dir: tempfile::TempDir,
}

/// Starts patchbay with a bot token whose REST calls go to `fake` (through a rate-limiting
/// proxy when `limited`), `alerts` under `[alerts]`, and `integrations`.
async fn start(alerts: &str, integrations: &str, limited: bool) -> Bench {
    let fake = FakeDiscord::start().await;
    let proxy = if limited {
        Some(Limiter::start(fake.api_base()).await)
    } else {
        None
    };
    let api_base = proxy.as_ref().map_or_else(|| fake.api_base(), |p| p.base());
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[bot]\nguilds = [\"{guild}\"]\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [storage]\nurl = \"sqlite://{db}\"\n\
         [alerts]\nchannel = \"{ALERTS}\"\n{alerts}\n{integrations}",
        guild = fake_discord::GUILD_ID,
        db = dir.path().join("bench.db").display(),
    );
    let env = Environment::from_pairs([
        ("DISCORD_TOKEN", "fake-token".to_string()),
        ("DISCORD_API_BASE", api_base),
    ]);
    // Written out too, so the config has a source like a real one.
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, &text).unwrap();
    let config = config::parse(&text, "bench.toml", Some(&path), &env).unwrap();
    let running = app::start(config).await.unwrap();
    fake.wait_ready().await;
    Bench {
        running,
        fake,
        proxy,
        _dir: dir,
    }
}

fn integration(name: &str, url: &str, interval: &str) -> String {
    format!(
        "[[integration]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"{interval}\"\n\
         timeout = \"{interval}\"\nfailure_threshold = 1\nsuccess_threshold = 1\n"
    )
}

/// Waits until every one of the `n` integrations is UP (their first checks passed).
async fn all_up(running: &Running, n: usize) {
    let engine = running.engine();
    let mut transitions = engine.subscribe();
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let up = engine
                .snapshot()
                .iter()
                .filter(|s| s.state == State::Up)
                .count();
            if up == n {
                return;
            }
            match transitions.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the engine stopped"),
            }
        }
    })
    .await
    .expect("every integration is UP within 120 s");
}

/// Waits until exactly `open` incidents are open and the outbox is empty (every delivery they
/// caused went out); returns when that was seen. Woken by each delivery.
async fn settled(running: &Running, open: usize, deadline: Duration) -> Instant {
    settled_with(running, open, 0, deadline).await
}

/// [`settled`], with `pending` deliveries that never go out (a channel whose requests hang).
async fn settled_with(running: &Running, open: usize, pending: i64, deadline: Duration) -> Instant {
    let mut delivered = running.alerts().delivered();
    let store = running.store();
    tokio::time::timeout(deadline, async {
        loop {
            delivered.borrow_and_update();
            // Incidents first: an incident and its outbox row are written in one transaction,
            // so once it is open, an empty outbox means its delivery went out.
            if store.open_incidents().await.unwrap().len() == open
                && store.pending_deliveries().await.unwrap() == pending
            {
                return Instant::now();
            }
            delivered.changed().await.expect("the pipeline is running");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{open} incidents open and the outbox drained within {deadline:?}"))
}

/// The next transition of `integration` to `to`.
async fn transition_to(
    transitions: &mut broadcast::Receiver<Transition>,
    integration: &str,
    to: State,
) -> Transition {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match transitions.recv().await {
                Ok(t) if t.integration == integration && t.to == to => return t,
                Ok(_) => {}
                Err(err) => panic!("transitions: {err}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{integration} went {to} within 20 s"))
}

/// When the check that decided `t` completed: its start (`t.at`) plus its own latency, from
/// the result stored with the transition.
async fn completion(running: &Running, t: &Transition) -> DateTime<Utc> {
    let results = running
        .store()
        .recent_results(&t.integration, t.at)
        .await
        .unwrap();
    let result = results
        .iter()
        .find(|r| r.at == t.at)
        .expect("the deciding result is stored with its transition");
    t.at + chrono::Duration::microseconds((result.latency_ms * 1000.0).round() as i64)
}

/// Maps `Instant`s onto the wall clock through one sample of both.
#[derive(Clone, Copy)]
struct ClockPair {
    instant: Instant,
    wall: DateTime<Utc>,
}

impl ClockPair {
    fn now() -> ClockPair {
        ClockPair {
            instant: Instant::now(),
            wall: Utc::now(),
        }
    }

    fn wall(&self, at: Instant) -> DateTime<Utc> {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.wall + chrono::Duration::from_std(after).unwrap(),
            None => self.wall - chrono::Duration::from_std(self.instant - at).unwrap(),
        }
    }
}

fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

fn title(body: &Value) -> &str {
    body["embeds"][0]["title"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Single incidents
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Singles {
    /// Check completion → POST, per incident.
    alert: Vec<Duration>,
    /// Check start (`transition.at`) → POST.
    from_start: Vec<Duration>,
    /// Upstream broken → POST (includes waiting for the next check).
    from_break: Vec<Duration>,
    /// Recovery: check completion → the PATCH showing it resolved.
    resolved: Vec<Duration>,
    /// Incidents during which a warning or error was logged: the incident, its alert and
    /// resolution latencies, and how many lines.
    troubled: Vec<(String, Duration, Duration, usize)>,
}

/// `n` single incidents, one at a time, measured. With `stuck`, one more integration is routed
/// to a second channel whose every request hangs at the fake until the courier's timeout: its
/// incident is open before the first measured one and its post is retried (and hangs again)
/// throughout, which is what head-of-line blocking would make every other alert wait for.
async fn single_incidents(n: usize, stuck: bool) -> (Singles, Vec<String>) {
    let mut upstreams = Vec::with_capacity(n);
    let stuck_upstream = Upstream::start().await;
    let mut tables = String::new();
    if stuck {
        tables.push_str(&format!(
            "[[alerts.route]]\nmatch = {{ integrations = [\"stuck\"] }}\nchannel = \"{}\"\n",
            fake_discord::ROUTE_CHANNEL_ID
        ));
        tables.push_str(&integration(
            "stuck",
            &stuck_upstream.url("/health"),
            SINGLE_INTERVAL,
        ));
    }
    for i in 0..n {
        let upstream = Upstream::start().await;
        tables.push_str(&integration(
            &format!("svc-{i:03}"),
            &upstream.url("/health"),
            SINGLE_INTERVAL,
        ));
        upstreams.push(upstream);
    }
    let bench = start("group_wait = \"0\"\n", &tables, false).await;
    let running = &bench.running;
    let fake = &bench.fake;
    all_up(running, n + usize::from(stuck)).await;
    if stuck {
        let stuck_route = format!("/channels/{}", fake_discord::ROUTE_CHANNEL_ID);
        fake.inject(fake_discord::Fault::Hang, "POST", &stuck_route, usize::MAX);
        fake.inject(fake_discord::Fault::Hang, "PATCH", &stuck_route, usize::MAX);
        stuck_upstream.break_it();
        fake.wait_for_attempts("POST", &stuck_route, 1).await;
    }
    let (open, pending) = if stuck { (1, 1) } else { (0, 0) };
    let mut notes: Vec<String> = take_log()
        .into_iter()
        .map(|line| format!("(start-up) {line}"))
        .collect();
    let posts = format!("/api/v10/channels/{ALERTS}/messages");
    let mut singles = Singles::default();
    let mut transitions = running.engine().subscribe();
    for (i, upstream) in upstreams.iter().enumerate() {
        let name = format!("svc-{i:03}");
        let logged_before = logged();
        let clock = ClockPair::now();
        upstream.break_it();
        let down = transition_to(&mut transitions, &name, State::Down).await;
        let down_title = format!("{name} is DOWN");
        let post = fake
            .wait_for_request(&format!("the alert for {name}"), |r| {
                r.method == "POST"
                    && r.path == posts
                    && r.body
                        .as_ref()
                        .is_some_and(|b| title(b).contains(&down_title))
            })
            .await;
        assert_eq!(post.status, Some(200), "the alert POST was accepted");
        let arrived = clock.wall(post.at);
        singles
            .alert
            .push(between(completion(running, &down).await, arrived));
        singles.from_start.push(between(down.at, arrived));
        singles.from_break.push(post.at - clock.instant);

        let clock = ClockPair::now();
        upstream.heal();
        let up = transition_to(&mut transitions, &name, State::Up).await;
        let resolved_title = format!("{name} resolved");
        let edit = fake
            .wait_for_request(&format!("the resolution of {name}"), |r| {
                r.method == "PATCH"
                    && r.path.starts_with(&posts)
                    && r.body
                        .as_ref()
                        .is_some_and(|b| title(b).contains(&resolved_title))
            })
            .await;
        singles
            .resolved
            .push(between(completion(running, &up).await, clock.wall(edit.at)));
        // The edit and the "resolved after" reply have gone out: the next incident starts on
        // a quiet pipeline.
        settled_with(running, open, pending, Duration::from_secs(20)).await;
        if logged() > logged_before {
            singles.troubled.push((
                name,
                singles.alert[i],
                singles.resolved[i],
                logged() - logged_before,
            ));
        }
    }
    notes.extend(take_log());
    let violations = fake.violations();
    if !violations.is_empty() {
        notes.push(format!("fake Discord violations: {violations:?}"));
    }
    bench.running.shutdown().await;
    (singles, notes)
}

// ---------------------------------------------------------------------------------------------
// Bursts
// ---------------------------------------------------------------------------------------------

/// One request on the alert channel's message routes, as the fake or the proxy saw it.
#[derive(Clone)]
struct Attempt {
    at: Instant,
    method: String,
    /// The rate-limit route: `POST messages` or `PATCH messages/{id}`.
    route: String,
    status: u16,
    /// Sent while a 429 on its route said to wait.
    early: bool,
}

/// The alert channel's message route a request belongs to, if any, as Discord buckets them
/// (by route and channel; every message of the channel shares the edit bucket).
fn alert_route(method: &str, path: &str) -> Option<String> {
    let rest = path
        .strip_prefix("/api/v10")
        .unwrap_or(path)
        .strip_prefix(&format!("/channels/{ALERTS}/messages"))?;
    if rest.is_empty() {
        Some(format!("{method} messages"))
    } else if rest.starts_with('/') {
        Some(format!("{method} messages/{{id}}"))
    } else {
        None
    }
}

fn attempts_from_fake(fake: &FakeDiscord, since: usize) -> Vec<Attempt> {
    fake.requests()
        .into_iter()
        .skip(since)
        .filter_map(|r| {
            Some(Attempt {
                route: alert_route(&r.method, &r.path)?,
                at: r.at,
                method: r.method,
                status: r.status.unwrap_or(0),
                early: false,
            })
        })
        .collect()
}

struct Phase {
    label: String,
    /// Flip → the last of the integrations' transitions received.
    transitions: (usize, Duration),
    posts: usize,
    patches: usize,
    limited: usize,
    early: usize,
    /// The most requests on one route within any 5 s.
    peak: usize,
    first: Option<Duration>,
    drained: Duration,
    showing: String,
    notes: Vec<String>,
}

/// Counts `to` transitions of the burst's integrations until `n`; returns how many and when
/// the last arrived.
fn watch_transitions(
    running: &Running,
    to: State,
    n: usize,
) -> tokio::task::JoinHandle<(usize, Instant)> {
    let mut transitions = running.engine().subscribe();
    tokio::spawn(async move {
        let mut seen = 0;
        let mut last = Instant::now();
        while seen < n {
            match transitions.recv().await {
                Ok(t) if t.to == to => {
                    seen += 1;
                    last = Instant::now();
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        (seen, last)
    })
}

fn peak(mut times: Vec<Instant>, window: Duration) -> usize {
    times.sort();
    let (mut start, mut best) = (0, 0);
    for end in 0..times.len() {
        while times[end] - times[start] >= window {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// What the alert channel shows: the latest version of each alert message's title (not the
/// replies), summarised.
fn showing(fake: &FakeDiscord) -> String {
    let messages: Vec<Value> = fake
        .channel_messages(ALERTS)
        .into_iter()
        .filter(|m| m["message_reference"].is_null())
        .collect();
    let replies = fake.channel_messages(ALERTS).len() - messages.len();
    match messages.as_slice() {
        [] => "no message".into(),
        [one] => format!("1 message, \"{}\", {replies} replies", title(one)),
        many => {
            let mut titles: HashMap<String, usize> = HashMap::new();
            for m in many {
                // "🔴 burst-0007 is DOWN" → "🔴 … is DOWN"
                let t = title(m);
                let shape = t
                    .split(' ')
                    .map(|w| if w.starts_with("burst-") { "…" } else { w })
                    .collect::<Vec<_>>()
                    .join(" ");
                *titles.entry(shape).or_default() += 1;
            }
            let mut titles: Vec<_> = titles.into_iter().collect();
            titles.sort();
            let titles: Vec<String> = titles
                .into_iter()
                .map(|(t, c)| format!("{c}× \"{t}\""))
                .collect();
            format!(
                "{} messages ({}), {replies} replies",
                many.len(),
                titles.join(", ")
            )
        }
    }
}

async fn phase(bench: &Bench, label: String, n: usize, to: State, flip: impl FnOnce()) -> Phase {
    let running = &bench.running;
    let since = bench.fake.requests().len();
    if let Some(proxy) = &bench.proxy {
        proxy.take();
    }
    let watcher = watch_transitions(running, to, n);
    let open = if to == State::Down { n } else { 0 };
    let t0 = Instant::now();
    flip();
    let drained = settled(running, open, BURST_DEADLINE).await - t0;
    let (seen, last) = watcher.await.unwrap();
    let attempts = match &bench.proxy {
        Some(proxy) => proxy.take(),
        None => attempts_from_fake(&bench.fake, since),
    };
    let mut by_route: HashMap<&str, Vec<Instant>> = HashMap::new();
    for a in &attempts {
        by_route.entry(&a.route).or_default().push(a.at);
    }
    let mut notes = take_log();
    let violations = bench.fake.violations();
    if !violations.is_empty() {
        notes.push(format!("fake Discord violations: {violations:?}"));
    }
    let failed = attempts
        .iter()
        .filter(|a| !(200..300).contains(&a.status) && a.status != 429)
        .count();
    if failed > 0 {
        notes.push(format!("{failed} requests answered other than 2xx/429"));
    }
    Phase {
        label,
        transitions: (seen, last.saturating_duration_since(t0)),
        posts: attempts.iter().filter(|a| a.method == "POST").count(),
        patches: attempts.iter().filter(|a| a.method == "PATCH").count(),
        limited: attempts.iter().filter(|a| a.status == 429).count(),
        early: attempts.iter().filter(|a| a.early).count(),
        peak: by_route
            .into_values()
            .map(|times| peak(times, DISCORD_WINDOW))
            .max()
            .unwrap_or(0),
        first: attempts.iter().map(|a| a.at).min().map(|at| at - t0),
        drained,
        showing: showing(&bench.fake),
        notes,
    }
}

async fn burst(n: usize, group_wait: &str, limited: bool) -> Vec<Phase> {
    let upstream = Upstream::start().await;
    let mut tables = String::new();
    for i in 0..n {
        tables.push_str(&integration(
            &format!("burst-{i:04}"),
            &upstream.url("/health"),
            BURST_INTERVAL,
        ));
    }
    let alerts = format!("group_wait = \"{group_wait}\"\n");
    let bench = start(&alerts, &tables, limited).await;
    all_up(&bench.running, n).await;
    let setting = format!(
        "group_wait {group_wait}{}",
        if limited { ", 5/5 s limit" } else { "" }
    );
    for line in take_log() {
        STARTUP.lock().unwrap().push(format!("({setting}) {line}"));
    }
    let down = phase(&bench, format!("down, {setting}"), n, State::Down, || {
        upstream.break_it();
    })
    .await;
    let up = phase(&bench, format!("recovery, {setting}"), n, State::Up, || {
        upstream.heal();
    })
    .await;
    bench.running.shutdown().await;
    vec![down, up]
}

// ---------------------------------------------------------------------------------------------
// A Discord-like rate limit in front of the fake
// ---------------------------------------------------------------------------------------------

/// A proxy that forwards everything to the fake Discord, except that the alert channel's
/// message routes get Discord's bucket: 5 requests per 5 s per route, the window starting with
/// the first request after a reset, the excess answered 429 as Discord answers it.
struct Limiter {
    port: u16,
    fake: String,
    client: reqwest::Client,
    state: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    buckets: HashMap<String, Bucket>,
    attempts: Vec<Attempt>,
}

struct Bucket {
    reset_at: Instant,
    used: u32,
    /// Until when the last 429 on this route said to wait.
    limited_until: Option<Instant>,
}

impl Limiter {
    async fn start(fake: String) -> Arc<Limiter> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let limiter = Arc::new(Limiter {
            port: listener.local_addr().unwrap().port(),
            fake,
            client: reqwest::Client::new(),
            state: Mutex::new(LimiterState::default()),
        });
        let app = Router::new()
            .fallback(any(forward))
            .with_state(limiter.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        limiter
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The attempts recorded since the last call.
    fn take(&self) -> Vec<Attempt> {
        std::mem::take(&mut self.state.lock().unwrap().attempts)
    }

    /// Admits a request on `route` now, or returns how long until its bucket resets.
    fn admit(&self, route: &str, method: &str, now: Instant) -> Result<usize, Duration> {
        let mut st = self.state.lock().unwrap();
        let bucket = st.buckets.entry(route.to_string()).or_insert(Bucket {
            reset_at: now + DISCORD_WINDOW,
            used: 0,
            limited_until: None,
        });
        if now >= bucket.reset_at {
            bucket.reset_at = now + DISCORD_WINDOW;
            bucket.used = 0;
        }
        let early = bucket.limited_until.is_some_and(|until| now < until);
        let admitted = bucket.used < DISCORD_LIMIT;
        let wait = bucket.reset_at - now;
        if admitted {
            bucket.used += 1;
        } else {
            bucket.limited_until = Some(bucket.reset_at);
        }
        st.attempts.push(Attempt {
            at: now,
            method: method.to_string(),
            route: route.to_string(),
            status: if admitted { 0 } else { 429 },
            early,
        });
        if admitted {
            Ok(st.attempts.len() - 1)
        } else {
            Err(wait)
        }
    }
}

async fn forward(
    AxumState(limiter): AxumState<Arc<Limiter>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let mut slot = None;
    if let Some(route) = alert_route(method.as_str(), uri.path()) {
        match limiter.admit(&route, method.as_str(), now) {
            Ok(index) => slot = Some(index),
            Err(wait) => return rate_limited(&route, wait),
        }
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = limiter
        .client
        .request(method, format!("{}{path}", limiter.fake))
        .body(body);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    let status = answer.status();
    if let Some(index) = slot {
        limiter.state.lock().unwrap().attempts[index].status = status.as_u16();
    }
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(axum::body::Body::from(body)).unwrap()
}

/// Discord's 429 for an exhausted per-route bucket.
fn rate_limited(route: &str, wait: Duration) -> Response {
    let retry_after = (wait.as_secs_f64() * 1000.0).ceil() / 1000.0;
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": false,
        })),
    )
        .into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    };
    set("retry-after", (retry_after.ceil() as u64).to_string());
    set("x-ratelimit-limit", DISCORD_LIMIT.to_string());
    set("x-ratelimit-remaining", "0".into());
    set("x-ratelimit-reset-after", format!("{retry_after:.3}"));
    set("x-ratelimit-bucket", format!("{:x}", route.len() * 7919));
    set("x-ratelimit-scope", "user".into());
    response
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

/// What was logged while the burst runs started (their integrations' first checks).
static STARTUP: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Warnings and errors logged, by level, target and message.
static LOGGED: Mutex<Vec<(tracing::Level, String, String)>> = Mutex::new(Vec::new());

struct LogCounter;

impl<S: tracing::Subscriber> Layer<S> for LogCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        /// The message, then the other fields as `key=value` (the error is in a field).
        struct Message(String, Vec<String>);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                } else {
                    self.1.push(format!("{}={value:?}", field.name()));
                }
            }
        }
        let meta = event.metadata();
        let mut message = Message(String::new(), Vec::new());
        event.record(&mut message);
        // The engine logs every DOWN transition as a warning: expected here, not a problem.
        if meta.target() == "patchbay::alert" && message.0 == "state changed" {
            return;
        }
        LOGGED.lock().unwrap().push((
            *meta.level(),
            meta.target().to_string(),
            if message.1.is_empty() {
                message.0
            } else {
                format!("{} ({})", message.0, message.1.join(", "))
            },
        ));
    }
}

/// How many warnings and errors were logged since the last [`take_log`].
fn logged() -> usize {
    LOGGED.lock().unwrap().len()
}

/// The warnings and errors logged since the last call, counted by message.
fn take_log() -> Vec<String> {
    let logged = std::mem::take(&mut *LOGGED.lock().unwrap());
    let mut counts: Vec<((tracing::Level, String, String), usize)> = Vec::new();
    for entry in logged {
        match counts.iter_mut().find(|(e, _)| *e == entry) {
            Some((_, count)) => *count += 1,
            None => counts.push((entry, 1)),
        }
    }
    counts
        .into_iter()
        .map(|((level, target, message), count)| format!("{count}× {level} {target}: {message}"))
        .collect()
}

fn init_logging() {
    let print = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(print),
        )
        .with(LogCounter.with_filter(tracing_subscriber::filter::LevelFilter::WARN))
        .init();
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    init_logging();
    let incidents = env_count("BENCH_INCIDENTS", 200);
    let burst_size = env_count("BENCH_BURST", 1000);

    let stuck_incidents = env_count("BENCH_STUCK", 100);
    eprintln!("[bench] {incidents} single incidents, one at a time ...");
    let (mut singles, single_notes) = single_incidents(incidents, false).await;
    eprintln!(
        "[bench] {stuck_incidents} single incidents while another channel's requests hang ..."
    );
    let (mut stuck, stuck_notes) = single_incidents(stuck_incidents, true).await;
    let mut phases = Vec::new();
    // Ungrouped, every incident is its own message in one channel, and the dispatcher spaces
    // edits 1.2 s apart per channel (Discord allows 5 per 5 s): 1,000 recoveries would take
    // about 20 minutes to drain, as Discord's own limit would impose. A smaller burst shows the
    // same behaviour in a minute.
    let ungrouped = env_count("BENCH_UNGROUPED", 50);
    for (size, group_wait, limited) in [
        (burst_size, "10s", false),
        (burst_size, "10s", true),
        (ungrouped, "0", false),
    ] {
        if size == 0 {
            continue;
        }
        eprintln!(
            "[bench] burst of {size}, group_wait {group_wait}{} ...",
            if limited { ", rate-limited" } else { "" }
        );
        phases.extend(burst(size, group_wait, limited).await);
    }

    println!(
        "\n### Single incidents ({incidents}, one at a time, interval {SINGLE_INTERVAL}, group_wait 0)\n"
    );
    println!("| from → to | p50 | p99 | max | goal p99 < 250 ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, samples, goal) in [
        (
            "deciding check's completion → alert POST at the fake",
            &mut singles.alert,
            true,
        ),
        (
            "deciding check's completion → resolution PATCH at the fake",
            &mut singles.resolved,
            false,
        ),
        (
            "deciding check's start (`transition.at`) → alert POST",
            &mut singles.from_start,
            false,
        ),
        (
            "upstream broken → alert POST (includes the wait for the next check)",
            &mut singles.from_break,
            false,
        ),
    ] {
        samples.sort();
        let p99 = percentile(samples, 0.99);
        println!(
            "| {label} | {} | {} | {} | {} |",
            ms(percentile(samples, 0.5)),
            ms(p99),
            ms(samples[samples.len() - 1]),
            match (goal, p99 < GOAL) {
                (false, _) => "",
                (true, true) => "PASS",
                (true, false) => "MISS",
            }
        );
    }

    println!(
        "\n### Single incidents ({stuck_incidents}) while every request to another channel hangs until the 10 s timeout\n"
    );
    println!("| from → to | p50 | p99 | max | goal p99 < 250 ms |");
    println!("| --- | --- | --- | --- | --- |");
    stuck.alert.sort();
    let p99 = percentile(&stuck.alert, 0.99);
    println!(
        "| deciding check's completion → alert POST at the fake | {} | {} | {} | {} |",
        ms(percentile(&stuck.alert, 0.5)),
        ms(p99),
        ms(stuck.alert[stuck.alert.len() - 1]),
        if p99 < GOAL { "PASS" } else { "MISS" }
    );

    if singles.troubled.is_empty() {
        println!("\nNo warning or error was logged during any of the incidents.");
    } else {
        println!(
            "\nIncidents during which a warning or error was logged (name: alert, resolution latency, lines):"
        );
        for (name, alert, resolved, lines) in &singles.troubled {
            println!("- {name}: {}, {}, {lines}", ms(*alert), ms(*resolved));
        }
    }

    println!(
        "\n### Bursts ({burst_size} integrations on one upstream, {ungrouped} for group_wait 0; interval {BURST_INTERVAL}, flipped once)\n"
    );
    println!(
        "| phase | transitions (flip → last) | POSTs | PATCHes | 429s | sent inside a 429 window | most on one route in 5 s | flip → first request | flip → outbox drained | the channel shows |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for p in &phases {
        println!(
            "| {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.label,
            p.transitions.0,
            secs(p.transitions.1),
            p.posts,
            p.patches,
            p.limited,
            p.early,
            p.peak,
            p.first.map_or_else(|| "-".into(), secs),
            secs(p.drained),
            p.showing,
        );
    }
    println!(
        "\nDiscord allows {DISCORD_LIMIT} requests per {}s on each message route of a channel; the unlimited runs show how many patchbay would send.",
        DISCORD_WINDOW.as_secs()
    );
    println!("\nWarnings and errors logged (the engine's \"state changed\" lines excepted):\n");
    println!("- single incidents: {}", listed(&single_notes));
    println!(
        "- single incidents beside a hanging channel: {}",
        listed(&stuck_notes)
    );
    for p in &phases {
        println!("- {}: {}", p.label, listed(&p.notes));
    }
    println!(
        "- burst runs' start-up (until every integration was UP): {}",
        listed(&STARTUP.lock().unwrap())
    );
}

fn listed(notes: &[String]) -> String {
    if notes.is_empty() {
        "none".into()
    } else {
        notes.join("; ")
    }
}
