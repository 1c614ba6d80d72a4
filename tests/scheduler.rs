//! The scheduler on tokio's paused clock: first checks spread over the interval, intervals
//! held exactly, a hanging upstream delays nobody else, reloads keep state, transitions are
//! stored before they are published, and a restart continues without re-announcing.
//!
//! The network is replaced by a scripted probe (the real HTTP checker is tested over real
//! sockets in `http_check.rs`), because a paused clock jumps ahead whenever the runtime waits on
//! I/O, which would make real sockets time out. Storage stays real: a SQLite file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use patchbay::config::{self, Environment, Integration};
use patchbay::model::{CheckResult, State};
use patchbay::monitor::{Engine, EngineParts, Probe};
use patchbay::store::{Store, offload};
use tokio::time::Instant;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Behaviour {
    Pass,
    Fail,
    /// Hangs until the integration's timeout, like an upstream that never answers.
    Hang,
}

/// A probe that answers from a script and records when each check started.
#[derive(Default)]
struct Script {
    behaviours: Mutex<HashMap<String, Behaviour>>,
    calls: Mutex<Vec<(String, Instant)>>,
}

impl Script {
    fn set(&self, name: &str, behaviour: Behaviour) {
        self.behaviours
            .lock()
            .unwrap()
            .insert(name.to_string(), behaviour);
    }

    fn calls_of(&self, name: &str) -> Vec<Instant> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, at)| *at)
            .collect()
    }
}

impl Probe for Script {
    fn check<'a>(&'a self, integration: &'a Integration) -> BoxFuture<'a, CheckResult> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push((integration.name.clone(), Instant::now()));
            let behaviour = self
                .behaviours
                .lock()
                .unwrap()
                .get(&integration.name)
                .copied()
                .unwrap_or(Behaviour::Pass);
            let started = Instant::now();
            if behaviour == Behaviour::Hang {
                tokio::time::sleep(integration.timeout).await;
            }
            let success = behaviour == Behaviour::Pass;
            CheckResult {
                integration: integration.name.clone(),
                at: patchbay::model::now(),
                success,
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                status: Some(if success { 200 } else { 503 }),
                error_kind: (!success).then(|| "conditions".into()),
                message: (!success).then(|| "status == 200 failed: got 503".into()),
            }
        })
    }
}

/// `[[integration]]` tables for `(name, interval, extra lines)`.
fn integrations(specs: &[(&str, &str, &str)]) -> Vec<Integration> {
    let text: String = specs
        .iter()
        .map(|(name, interval, extra)| {
            format!(
                "[[integration]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"{interval}\"\ntimeout = \"{interval}\"\n{extra}\n"
            )
        })
        .collect();
    config::parse(&text, "test.toml", None, &Environment::default())
        .unwrap()
        .integrations
}

struct Harness {
    engine: Engine,
    script: Arc<Script>,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn start(list: Vec<Integration>, concurrency: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    start_on(dir, &url, list, concurrency, Arc::new(Script::default())).await
}

async fn start_on(
    dir: tempfile::TempDir,
    url: &str,
    list: Vec<Integration>,
    concurrency: usize,
    script: Arc<Script>,
) -> Harness {
    let url = url.to_string();
    let store = offload(async move { Store::open(&url).await })
        .await
        .unwrap();
    // Small batches written every 50 ms: results reach the database soon after their check.
    let storage = "[storage]\nbatch_size = 100\nflush_interval = \"50ms\"\n";
    let config = config::parse(storage, "test.toml", None, &Environment::default()).unwrap();
    let (parts, _writer) = EngineParts::from_config(store.clone(), &config);
    let engine = Engine::start(EngineParts {
        probe: script.clone(),
        concurrency,
        integrations: list,
        ..parts
    })
    .await
    .unwrap();
    Harness {
        engine,
        script,
        store,
        _dir: dir,
    }
}

fn state_of(engine: &Engine, name: &str) -> patchbay::model::IntegrationState {
    engine
        .snapshot()
        .into_iter()
        .find(|s| s.integration == name)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn first_checks_spread_over_the_interval() {
    let names: Vec<String> = (0..1000).map(|i| format!("svc-{i}")).collect();
    let specs: Vec<(&str, &str, &str)> = names.iter().map(|n| (n.as_str(), "10s", "")).collect();
    let started = Instant::now();
    let h = start(integrations(&specs), 512).await;
    tokio::time::sleep(Duration::from_millis(9_999)).await;
    let calls = h.script.calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        1000,
        "every integration ran once in its first interval"
    );
    let mut per_second = [0usize; 10];
    for (_, at) in &calls {
        per_second[(*at - started).as_secs() as usize] += 1;
    }
    // An even spread puts 100 in each second; never all at once.
    for (second, count) in per_second.iter().enumerate() {
        assert!(
            (60..=140).contains(count),
            "second {second}: {count} checks ({per_second:?})"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn each_interval_is_held_exactly() {
    let h = start(
        integrations(&[("fast", "1s", ""), ("mid", "2s", ""), ("slow", "5s", "")]),
        8,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    for (name, interval) in [("fast", 1), ("mid", 2), ("slow", 5)] {
        let calls = h.script.calls_of(name);
        assert!(
            calls.len() >= 30 / interval - 1,
            "{name}: {} calls",
            calls.len()
        );
        for pair in calls.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                Duration::from_secs(interval as u64),
                "{name}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_upstream_does_not_delay_others() {
    let h = start(
        integrations(&[
            ("hang-1", "5s", ""),
            ("hang-2", "5s", ""),
            ("hang-3", "5s", ""),
            ("fast", "1s", ""),
        ]),
        4,
    )
    .await;
    for name in ["hang-1", "hang-2", "hang-3"] {
        h.script.set(name, Behaviour::Hang);
    }
    tokio::time::sleep(Duration::from_secs(20)).await;
    let fast = h.script.calls_of("fast");
    assert!(fast.len() >= 19, "{} fast checks", fast.len());
    for pair in fast.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_secs(1));
    }
    // The hanging ones failed by timeout and went DOWN after three failures.
    assert_eq!(state_of(&h.engine, "hang-1").state, State::Down);
    assert_eq!(state_of(&h.engine, "fast").state, State::Up);
}

#[tokio::test(start_paused = true)]
async fn transitions_are_stored_before_they_are_published() {
    let h = start(integrations(&[("api", "1s", "")]), 4).await;
    let mut events = h.engine.subscribe();
    let up = events.recv().await.unwrap();
    assert_eq!((up.from, up.to), (State::Unknown, State::Up));
    h.script.set("api", Behaviour::Fail);
    let down = events.recv().await.unwrap();
    assert_eq!((down.from, down.to), (State::Up, State::Down));
    assert_eq!(
        down.reason,
        "3 failures in a row: status == 200 failed: got 503"
    );
    // Published means committed: both are in the database already.
    let store = h.store.clone();
    let stored = offload(async move { store.transitions(Some("api"), 10).await })
        .await
        .unwrap();
    assert_eq!(stored, vec![down, up]);
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_state_and_cadence_of_unchanged_integrations() {
    let h = start(
        integrations(&[("keep", "1s", ""), ("change", "1s", ""), ("drop", "1s", "")]),
        8,
    )
    .await;
    h.script.set("keep", Behaviour::Fail);
    h.script.set("change", Behaviour::Fail);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let keep_before = state_of(&h.engine, "keep");
    let change_before = state_of(&h.engine, "change");
    assert_eq!(keep_before.state, State::Down);
    assert_eq!(change_before.state, State::Down);

    h.engine
        .apply(integrations(&[
            ("keep", "1s", ""),
            ("change", "2s", ""),
            ("new", "1s", ""),
        ]))
        .await;
    tokio::time::sleep(Duration::from_secs(10)).await;

    // Unchanged: same task, same one-second cadence across the reload, failures still counted.
    let keep_calls = h.script.calls_of("keep");
    for pair in keep_calls.windows(2) {
        assert_eq!(pair[1] - pair[0], Duration::from_secs(1));
    }
    let keep_after = state_of(&h.engine, "keep");
    assert_eq!(keep_after.state, State::Down);
    assert_eq!(keep_after.since, keep_before.since, "no new transition");
    assert!(keep_after.consecutive_failures >= keep_before.consecutive_failures + 9);
    // Changed: restarted with its state (still DOWN since the same moment), now every 2 s.
    let change_after = state_of(&h.engine, "change");
    assert_eq!(change_after.state, State::Down);
    assert_eq!(change_after.since, change_before.since);
    let change_calls = h.script.calls_of("change");
    let last = &change_calls[change_calls.len() - 3..];
    assert_eq!(last[2] - last[1], Duration::from_secs(2));
    // Added and removed.
    assert_eq!(state_of(&h.engine, "new").state, State::Up);
    assert!(h.engine.snapshot().iter().all(|s| s.integration != "drop"));
    let drop_calls = h.script.calls_of("drop").len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        h.script.calls_of("drop").len(),
        drop_calls,
        "removed means not checked"
    );
}

#[tokio::test(start_paused = true)]
async fn disabling_pauses_and_enabling_resumes() {
    let h = start(integrations(&[("api", "1s", "")]), 4).await;
    let mut events = h.engine.subscribe();
    assert_eq!(events.recv().await.unwrap().to, State::Up);
    h.engine
        .apply(integrations(&[("api", "1s", "enabled = false")]))
        .await;
    let paused = events.recv().await.unwrap();
    assert_eq!(
        (paused.to, paused.reason.as_str()),
        (State::Paused, "disabled in the config")
    );
    let calls = h.script.calls_of("api").len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        h.script.calls_of("api").len(),
        calls,
        "paused means not checked"
    );
    h.engine.apply(integrations(&[("api", "1s", "")])).await;
    assert_eq!(events.recv().await.unwrap().to, State::Unknown);
    assert_eq!(events.recv().await.unwrap().to, State::Up);
}

#[tokio::test(start_paused = true)]
async fn a_restart_continues_without_reannouncing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let list = integrations(&[("api", "1s", "")]);
    let script = Arc::new(Script::default());
    script.set("api", Behaviour::Fail);
    let first = start_on(
        tempfile::tempdir().unwrap(),
        &url,
        list.clone(),
        4,
        script.clone(),
    )
    .await;
    let mut events = first.engine.subscribe();
    let down = events.recv().await.unwrap();
    assert_eq!(down.to, State::Down);
    first.engine.shutdown(Duration::from_secs(5)).await;
    let store = first.store.clone();
    let before = offload(async move { store.load_states().await })
        .await
        .unwrap();

    let second = start_on(dir, &url, list, 4, script.clone()).await;
    // Before any new check, the state is what was stored: DOWN since the same moment.
    let restored = state_of(&second.engine, "api");
    assert_eq!(restored.state, State::Down);
    assert_eq!(restored.since, before[0].since);
    let mut events = second.engine.subscribe();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        events.try_recv().is_err(),
        "still failing after the restart must not announce DOWN again"
    );
    let store = second.store.clone();
    let stored = offload(async move { store.transitions(Some("api"), 10).await })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    // Recovery after the restart is announced once.
    script.set("api", Behaviour::Pass);
    let up = events.recv().await.unwrap();
    assert_eq!((up.from, up.to), (State::Down, State::Up));
}
