//! The monitoring engine: runs every enabled integration's check at its interval, feeds results
//! to the state machine, stores them through the batching writer, and publishes transitions.
//!
//! - Each integration has one task. Its first check is offset by a hash of its name within the
//!   interval, so 10,000 integrations spread evenly instead of firing at once, and the offset
//!   survives reloads and restarts. A shared semaphore bounds the checks in flight.
//! - A slow upstream only holds its own task (and one semaphore permit, for at most its timeout).
//! - A transition is committed to the database *before* it is logged and published, so after a
//!   crash the engine never announces a transition it already announced, nor loses one it did.
//! - [`Engine::apply`] reloads: unchanged integrations keep running untouched, changed ones
//!   restart with their state, removed ones stop.

pub mod http_check;
pub mod notion_check;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use tokio::sync::{Notify, Semaphore, broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{CheckSpec, Config, Integration};
use crate::metrics::Metrics;
use crate::model::{CheckResult, IntegrationState, State, Transition};
use crate::notion::Notion;
use crate::store::Store;
use crate::store::writer::WriterHandle;
use state::Machine;

/// Something that can run one check of an integration. [`http_check::HttpChecker`] is the real
/// one; the scheduler's paused-clock tests use a scripted one, because a paused clock and real
/// sockets do not mix.
pub trait Probe: Send + Sync + 'static {
    /// Runs one check; must return within the integration's timeout.
    fn check<'a>(&'a self, integration: &'a Integration) -> BoxFuture<'a, CheckResult>;
}

/// The real checks of every kind: HTTP requests, and Notion's API through the Notion client.
pub struct Checkers {
    http: http_check::HttpChecker,
    notion: Arc<Notion>,
}

impl Checkers {
    /// The checkers; Notion checks use `notion`'s clients (and their shared quotas).
    pub fn new(notion: Arc<Notion>) -> Checkers {
        Checkers {
            http: http_check::HttpChecker::new(),
            notion,
        }
    }
}

impl Probe for Checkers {
    fn check<'a>(&'a self, integration: &'a Integration) -> BoxFuture<'a, CheckResult> {
        Box::pin(async move {
            match &integration.check {
                CheckSpec::Http(spec) => self.http.check(integration, spec).await,
                CheckSpec::Notion(spec) => {
                    notion_check::check(&self.notion, integration, spec).await
                }
            }
        })
    }
}

/// What [`Engine::start`] builds an engine from. [`EngineParts::from_config`] gives the parts
/// `patchbay run` uses; a caller names only what it changes and takes the rest from there, as
/// the scheduler tests do with their scripted probe:
/// `Engine::start(EngineParts { probe: script, concurrency, integrations, ..parts })`.
pub struct EngineParts {
    /// Where the stored states are loaded from.
    pub store: Store,
    /// The batching writer every result, state and transition goes through.
    pub writer: WriterHandle,
    /// Where checks, states and lateness are counted (shared with `/metrics`).
    pub metrics: Arc<Metrics>,
    /// What runs one check: the real HTTP checker, or a scripted one in tests.
    pub probe: Arc<dyn Probe>,
    /// The most checks in flight at once (`[scheduler] concurrency`).
    pub concurrency: usize,
    /// The integrations to check from the start.
    pub integrations: Vec<Integration>,
    /// The Notion clients (one per token), shared by Notion checks and the sync jobs.
    pub notion: Arc<Notion>,
}

impl EngineParts {
    /// The parts `patchbay run` starts from `config`: fresh metrics, a writer with `[storage]`'s
    /// batch size and flush interval, the real HTTP checker and `[scheduler] concurrency`. No
    /// integrations: the caller hands them over (moved, so a large list is not held twice).
    /// Also returns the writer's task, which ends after its final flush once the last engine
    /// handle is dropped.
    pub fn from_config(store: Store, config: &Config) -> (EngineParts, JoinHandle<()>) {
        let metrics = Arc::new(Metrics::new());
        let (writer, writer_task) = crate::store::writer::spawn(
            store.clone(),
            config.storage.batch_size,
            config.storage.flush_interval,
            metrics.clone(),
        );
        let notion = Arc::new(Notion::new(
            config.notion_api_base.clone(),
            Some(metrics.clone()),
        ));
        let parts = EngineParts {
            store,
            writer,
            metrics,
            probe: Arc::new(Checkers::new(notion.clone())),
            concurrency: config.scheduler.concurrency,
            integrations: Vec::new(),
            notion,
        };
        (parts, writer_task)
    }
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
    probe: Arc<dyn Probe>,
    permits: Arc<Semaphore>,
    states: Mutex<HashMap<String, IntegrationState>>,
    events: broadcast::Sender<Transition>,
    /// Transitions announced since the start (see [`Engine::transitions_announced`]).
    announced: std::sync::atomic::AtomicU64,
    tasks: tokio::sync::Mutex<HashMap<String, Running>>,
    stopping: CancellationToken,
    /// Callers waiting for a re-check, by integration; served by the integration's task.
    rechecks: Mutex<HashMap<String, Vec<oneshot::Sender<CheckResult>>>>,
    /// The instant every schedule counts from, so integrations that share a slot (see
    /// [`spread`]) share a wakeup, whenever their task started.
    epoch: Instant,
}

struct Running {
    integration: Arc<Integration>,
    cancel: CancellationToken,
    handle: Option<JoinHandle<()>>,
    /// Wakes the task for a re-check; kept across restarts so a pending wakeup survives one.
    wake: Arc<Notify>,
}

/// Why [`Engine::recheck`] ran no check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecheckError {
    /// No integration by that name is configured.
    #[error("no such integration")]
    Unknown,
    /// The integration is disabled.
    #[error("the integration is paused")]
    Paused,
    /// The integration was removed, or the engine stopped, before its check ran.
    #[error("the integration stopped before its check ran")]
    Stopped,
}

/// How many transitions a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 4096;

impl Engine {
    /// Loads the stored states and starts checking `parts.integrations`.
    pub async fn start(parts: EngineParts) -> Result<Engine, crate::store::StoreError> {
        let EngineParts {
            store,
            writer,
            metrics,
            probe,
            concurrency,
            integrations,
            notion: _,
        } = parts;
        let loading = store.clone();
        let states = crate::store::offload(async move { loading.load_states().await })
            .await?
            .into_iter()
            .map(|state| (state.integration.clone(), state))
            .collect();
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                writer,
                metrics,
                probe,
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
                states: Mutex::new(states),
                events: broadcast::channel(EVENT_BUFFER).0,
                announced: std::sync::atomic::AtomicU64::new(0),
                tasks: tokio::sync::Mutex::new(HashMap::new()),
                stopping: CancellationToken::new(),
                rechecks: Mutex::new(HashMap::new()),
                epoch: Instant::now(),
            }),
        };
        engine.apply(integrations).await;
        Ok(engine)
    }

    /// Receives every transition from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Transition> {
        self.inner.events.subscribe()
    }

    /// The current state of every configured integration, sorted by name.
    pub fn snapshot(&self) -> Vec<IntegrationState> {
        let states = self.inner.states.lock().expect("state lock");
        let mut out: Vec<_> = states.values().cloned().collect();
        out.sort_by(|a, b| a.integration.cmp(&b.integration));
        out
    }

    /// Runs `f` over every current state without copying them (the overview sorts 10,000
    /// states; cloning them all cost more than the rest of its answer). Holds the state lock
    /// while `f` runs, so `f` must be quick.
    pub fn with_states<R>(&self, f: impl FnOnce(&HashMap<String, IntegrationState>) -> R) -> R {
        f(&self.inner.states.lock().expect("state lock"))
    }

    /// How many transitions were announced since the engine started: a caller that keeps
    /// something derived from the states (the REST list's rendered body) knows by it whether a
    /// state changed since. Counted before the transition is published.
    pub fn transitions_announced(&self) -> u64 {
        self.inner
            .announced
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current state of one integration.
    pub fn state(&self, name: &str) -> Option<IntegrationState> {
        self.inner
            .states
            .lock()
            .expect("state lock")
            .get(name)
            .cloned()
    }

    /// Runs a check of `name` now, out of its cadence, and returns its result. The result counts
    /// like any scheduled check (it feeds the state machine and is stored), and the cadence is
    /// kept. Callers that ask while a check runs share the next check, which starts after
    /// their request.
    pub async fn recheck(&self, name: &str) -> Result<CheckResult, RecheckError> {
        let (reply, result) = oneshot::channel();
        {
            let tasks = self.inner.tasks.lock().await;
            let running = tasks.get(name).ok_or(RecheckError::Unknown)?;
            if running.handle.is_none() {
                return Err(RecheckError::Paused);
            }
            self.inner
                .rechecks
                .lock()
                .expect("recheck lock")
                .entry(name.to_string())
                .or_default()
                .push(reply);
            running.wake.notify_one();
        }
        result.await.map_err(|_| RecheckError::Stopped)
    }

    /// Whether the scheduler is running (not shutting down).
    pub fn is_running(&self) -> bool {
        !self.inner.stopping.is_cancelled()
    }

    /// Applies a (re)loaded list of integrations; see the module docs.
    pub async fn apply(&self, integrations: Vec<Integration>) {
        let inner = &self.inner;
        let mut tasks = inner.tasks.lock().await;
        let wanted: HashSet<&str> = integrations.iter().map(|i| i.name.as_str()).collect();
        let removed: Vec<String> = tasks
            .keys()
            .filter(|name| !wanted.contains(name.as_str()))
            .cloned()
            .collect();
        for name in removed {
            if let Some(running) = tasks.remove(&name) {
                running.cancel.cancel();
            }
            // Dropping the waiters tells them the integration is gone.
            inner.rechecks.lock().expect("recheck lock").remove(&name);
            inner.states.lock().expect("state lock").remove(&name);
            inner.metrics.remove_integration(&name);
            tracing::info!(integration = %name, "integration removed; its checks stopped");
        }
        for integration in integrations {
            let (previous, wake) = match tasks.remove(&integration.name) {
                Some(running) if *running.integration == integration => {
                    tasks.insert(integration.name.clone(), running);
                    continue;
                }
                Some(running) => {
                    running.cancel.cancel();
                    tracing::info!(integration = %integration.name, "integration changed; restarting its checks");
                    (running.handle, running.wake)
                }
                None => (None, Arc::new(Notify::new())),
            };
            let name = integration.name.clone();
            let current = {
                let mut states = inner.states.lock().expect("state lock");
                states
                    .entry(name.clone())
                    .or_insert_with(|| IntegrationState::new(name.clone(), crate::model::now()))
                    .clone()
            };
            inner.metrics.set_state(&name, current.state);
            let cancel = inner.stopping.child_token();
            let integration = Arc::new(integration);
            let handle = if integration.enabled {
                if current.state == State::Paused {
                    inner
                        .change_state(&name, State::Unknown, "enabled in the config".into(), None)
                        .await;
                }
                Some(tokio::spawn(run(
                    self.inner.clone(),
                    integration.clone(),
                    cancel.clone(),
                    wake.clone(),
                    previous,
                )))
            } else {
                // Nobody will check a paused integration: tell waiters so.
                inner.rechecks.lock().expect("recheck lock").remove(&name);
                if current.state != State::Paused {
                    inner
                        .change_state(&name, State::Paused, "disabled in the config".into(), None)
                        .await;
                }
                None
            };
            tasks.insert(
                name,
                Running {
                    integration,
                    cancel,
                    handle,
                    wake,
                },
            );
        }
    }

    /// Stops scheduling, waits up to `grace` for checks in flight to finish and record, then
    /// flushes the writer. Returns the number of checks that had to be abandoned.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let inner = &self.inner;
        inner.stopping.cancel();
        let handles: Vec<JoinHandle<()>> = inner
            .tasks
            .lock()
            .await
            .drain()
            .filter_map(|(_, running)| running.handle)
            .collect();
        let deadline = Instant::now() + grace;
        let mut abandoned = 0;
        for handle in handles {
            let abort = handle.abort_handle();
            if tokio::time::timeout_at(deadline, handle).await.is_err() {
                abort.abort();
                abandoned += 1;
            }
        }
        if let Err(err) = inner.writer.flush().await {
            tracing::error!(error = %err, "final flush failed");
        }
        abandoned
    }
}

impl Inner {
    /// Commits a state change (with the result that caused it), then announces it.
    async fn change_state(
        &self,
        name: &str,
        to: State,
        reason: String,
        result: Option<CheckResult>,
    ) {
        let (state, transition) = {
            let mut states = self.states.lock().expect("state lock");
            let Some(state) = states.get_mut(name) else {
                return;
            };
            let at = result.as_ref().map_or_else(crate::model::now, |r| r.at);
            let transition = Transition {
                integration: name.to_string(),
                from: state.state,
                to,
                reason,
                at,
            };
            state.state = to;
            state.since = at;
            state.consecutive_failures = 0;
            state.consecutive_successes = 0;
            (state.clone(), transition)
        };
        self.commit_and_announce(result, state, transition).await;
    }

    async fn commit_and_announce(
        &self,
        result: Option<CheckResult>,
        state: IntegrationState,
        transition: Transition,
    ) {
        if let Err(err) = self
            .writer
            .commit_transition(result, state, transition.clone())
            .await
        {
            // Announcing an unstored transition would be re-announced differently after a
            // restart; log the failure instead and let the next check decide again.
            tracing::error!(integration = %transition.integration, error = %err, "could not store a transition");
            return;
        }
        self.announce(&transition);
    }

    fn announce(&self, t: &Transition) {
        self.announced
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        self.metrics
            .transitions_total
            .with_label_values(&[t.to.as_str()])
            .inc();
        self.metrics.set_state(&t.integration, t.to);
        // The field names and their rendering (`reason` quoted in pretty logs, a plain JSON string
        // in json logs) are a contract: scripts parse these lines.
        let reason = t.reason.as_str();
        match t.to {
            State::Down | State::Degraded => tracing::warn!(
                target: "patchbay::alert",
                integration = %t.integration, from = %t.from, to = %t.to, reason,
                "state changed"
            ),
            _ => tracing::info!(
                target: "patchbay::alert",
                integration = %t.integration, from = %t.from, to = %t.to, reason,
                "state changed"
            ),
        }
        let _ = self.events.send(t.clone());
    }

    /// Feeds one result to the machine and stores it; transitions are committed and announced.
    async fn record(&self, machine: &mut Machine, result: CheckResult) {
        self.metrics
            .record_check(&result.integration, result.success);
        self.metrics
            .check_duration
            .observe(result.latency_ms / 1000.0);
        let (state, transition) = {
            let mut states = self.states.lock().expect("state lock");
            let Some(state) = states.get_mut(&result.integration) else {
                return;
            };
            let transition = machine.apply(state, &result);
            (state.clone(), transition)
        };
        match transition {
            Some(transition) => {
                self.commit_and_announce(Some(result), state, transition)
                    .await;
            }
            None => {
                if self.writer.record(result, state).await.is_err() {
                    tracing::error!("the storage writer stopped; a result was not stored");
                }
            }
        }
    }
}

/// The offset of an integration's checks within its interval, from a hash of its name.
///
/// Offsets are rounded down to slots of `interval / 200` (between 1 ms and 100 ms), so at
/// 10,000 integrations about 50 checks share each wakeup instead of each waking the runtime on
/// its own. Measured with `benches/engine.rs`, shared wakeups cut CPU per check by a third at
/// 10,000 integrations and by half at 1,000, at no cost in lateness. A 10 s interval still
/// spreads over 200 slots, so checks never fire all at once.
pub fn spread(name: &str, interval: Duration) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    let fraction = (hasher.finish() % 1_000_000) as f64 / 1_000_000.0;
    let offset = interval.mul_f64(fraction);
    let slot = (interval / 200).clamp(Duration::from_millis(1), Duration::from_millis(100));
    slot * (offset.as_nanos() / slot.as_nanos()) as u32
}

/// The first due instant of a schedule with `offset` and `interval` counted from `epoch`
/// that is not in the past.
fn first_due(epoch: Instant, offset: Duration, interval: Duration, now: Instant) -> Instant {
    let start = epoch + offset;
    if start >= now {
        return start;
    }
    let behind = now - start;
    let periods = behind.as_nanos().div_ceil(interval.as_nanos()) as u32;
    start + interval * periods
}

async fn run(
    inner: Arc<Inner>,
    integration: Arc<Integration>,
    cancel: CancellationToken,
    wake: Arc<Notify>,
    previous: Option<JoinHandle<()>>,
) {
    // A changed integration's old task may still be finishing a check; let it record first so
    // results stay in order.
    if let Some(previous) = previous {
        let _ = previous.await;
    }
    let mut machine = Machine::new(&integration);
    Box::pin(seed_window(&inner, &integration, &mut machine)).await;
    let interval = integration.interval;
    let mut due = first_due(
        inner.epoch,
        spread(&integration.name, interval),
        interval,
        Instant::now(),
    );
    loop {
        let asked = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = wake.notified() => true,
            () = tokio::time::sleep_until(due) => false,
        };
        // The callers this check answers: those who asked before it started.
        let waiters = if asked {
            inner
                .rechecks
                .lock()
                .expect("recheck lock")
                .remove(&integration.name)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let permit = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            permit = inner.permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let started = Instant::now();
        if !asked {
            inner
                .metrics
                .scheduler_lateness
                .observe(started.saturating_duration_since(due).as_secs_f64());
        }
        inner.metrics.checks_in_flight.inc();
        let result = inner.probe.check(&integration).await;
        inner.metrics.checks_in_flight.dec();
        drop(permit);
        // Boxed: a task's future is as large as its largest await point, and 10,000 tasks
        // spend nearly all their time asleep; recording (with its commit path) would otherwise
        // size every sleeping task.
        if asked {
            Box::pin(inner.record(&mut machine, result.clone())).await;
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
            // A re-check keeps the cadence: the next scheduled check stays where it was.
            continue;
        }
        Box::pin(inner.record(&mut machine, result)).await;
        due += interval;
        let now = Instant::now();
        if now >= due + interval {
            // A whole tick was missed (the runtime stalled): skip the missed ticks, keeping the
            // phase, rather than run them back to back. A check that merely ran long (up to its
            // timeout, which is at most the interval) starts its next check at once instead.
            let behind = now - due;
            let skip = (behind.as_nanos() / interval.as_nanos()) as u32;
            due += interval * skip;
        }
    }
}

/// Fills a degraded window with the results stored before a restart or reload.
async fn seed_window(inner: &Inner, integration: &Integration, machine: &mut Machine) {
    let Some(window) = machine.wants_history() else {
        return;
    };
    let since = Utc::now() - chrono::Duration::from_std(window).unwrap_or_default();
    let (store, name) = (inner.store.clone(), integration.name.clone());
    match crate::store::offload(async move { store.recent_results(&name, since).await }).await {
        Ok(results) => machine.seed(&results),
        Err(err) => {
            tracing::warn!(integration = %integration.name, error = %err, "could not load recent results; the degraded window starts empty");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_fall_on_slots_within_the_interval() {
        let interval = Duration::from_secs(10);
        let slot = Duration::from_millis(50);
        let mut slots = HashSet::new();
        for i in 0..2000 {
            let offset = spread(&format!("svc-{i}"), interval);
            assert!(offset < interval);
            assert_eq!(offset.as_nanos() % slot.as_nanos(), 0, "{offset:?}");
            slots.insert(offset);
        }
        // 2,000 names over 200 slots use nearly all of them.
        assert!(slots.len() > 180, "{} slots used", slots.len());
        // Short intervals keep 1 ms slots.
        assert_eq!(
            spread("x", Duration::from_millis(100)).as_nanos() % 1_000_000,
            0
        );
    }

    #[test]
    fn late_starters_join_their_phase() {
        let epoch = Instant::now();
        let interval = Duration::from_secs(10);
        let offset = Duration::from_secs(3);
        assert_eq!(first_due(epoch, offset, interval, epoch), epoch + offset);
        assert_eq!(
            first_due(epoch, offset, interval, epoch + Duration::from_secs(4)),
            epoch + Duration::from_secs(13)
        );
        assert_eq!(
            first_due(epoch, offset, interval, epoch + Duration::from_secs(13)),
            epoch + Duration::from_secs(13)
        );
    }
}
