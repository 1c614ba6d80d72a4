//! A fake Retool for end-to-end tests: the webhook trigger of Retool Workflows,
//! `POST /v1/workflows/{id}/startTrigger`, on one 127.0.0.1 port, for any number of workflows,
//! each with its own API key and a scripted [`Answer`].
//!
//! # What Retool documents, and what the fake does with it
//!
//! - **The trigger** (<https://docs.retool.com/workflows/guides/webhooks>): events "must use
//!   `Content-Type: application/json`", "a JSON payload is optional", and a workflow's API key
//!   goes in the `X-Workflow-Api-Key` header or the `workflowApiKey` query parameter (Retool
//!   recommends the header: a key in the URL gets logged). The fake takes both; a key in the
//!   query string is a violation, since patchbay must never put a secret in a URL.
//! - **Synchronous and asynchronous runs**
//!   (<https://docs.retool.com/workflows/guides/blocks/response>): "Webhook-triggered
//!   workflows without a Response block immediately respond to the origin. Workflows with a
//!   Response block do not respond until this block runs, returning the specified data and
//!   HTTP status code." That is [`Answer::Sync`] (any status, any JSON body, exactly as given)
//!   and [`Answer::Async`]. The same page gives synchronous runs "a 120-second timeout per
//!   block" ([`SYNC_BLOCK_TIMEOUT`]); the limits page gives them 15 minutes up to the first
//!   Response block ([`SYNC_RUN_TIMEOUT`]).
//! - **Limits** (<https://docs.retool.com/workflows/concepts/limits>): on Retool's cloud at
//!   most 60 runs of one workflow at once ([`CONCURRENCY`]) and 200 triggered within 10
//!   seconds ([`BURST`]). The page does not say how a trigger past them is answered.
//! - **Statuses seen in the field** (not Retool's docs: the notes of a public repository whose
//!   service calls a Retool workflow): 200 for a good URL and key, 401 when no key is sent, 403
//!   for a key that is not the workflow's (there, another environment's key), 400 from the
//!   workflow itself. The same notes found that `api.retool.com` sits behind Cloudflare, which
//!   refused a bot-like `User-Agent` with 403 before Retool saw the request: the fake lists a
//!   request without a `User-Agent` as a violation (and serves it).
//!
//! # What the docs leave open, and what the fake chose
//!
//! - **The asynchronous answer's body.** No page shows it. The fake answers 200 with
//!   `{"workflowRunId": "<uuid>"}` ([`RUN_ID_FIELD`]), a fresh version 4 UUID per request:
//!   Retool's JSON names are camelCase elsewhere (`workflowApiKey`, `startTrigger`,
//!   `pathParams`), and its ids are UUIDs. A client should treat the run id as optional and
//!   never fail a run that Retool accepted because the field is missing.
//! - **Error bodies.** Not documented either. The fake writes `{"success": false,
//!   "message": "..."}`, the shape of Retool's REST API, with the statuses above: 401 without
//!   a key, 403 with a wrong key, 404 for a workflow that does not exist (or not a `POST`),
//!   400 for a body that is not JSON, 429 with `Retry-After` in whole seconds
//!   ([`Answer::RateLimited`]), 500 ([`Answer::ServerError`]).
//! - **A content type other than JSON.** Retool's API is an Express server, whose JSON body
//!   parser passes over any other content type without a word: the workflow then runs with no
//!   payload. The fake does the same (the request's [`RetoolRequest::body`] is `null`, its
//!   [`RetoolRequest::raw`] what was sent) and lists the violation.
//!
//! Checks run in the order an Express server runs them: the route (404), the JSON body (400),
//! the workflow (404), the key (401, 403), a `Retry-After` still running (429), then the
//! workflow's answer. Every request to a workflow's path is recorded under that workflow's id,
//! refused or not, known or not ([`FakeRetool::requests`]). Waiting is done on a `watch`
//! channel bumped on every change, with a 20 s deadline; nothing polls or sleeps.
//!
//! The files: `mod.rs` has the public types, the state, starting the fake, the request log,
//! violations and waiting; `wire.rs` the handler and Retool's wire format.

mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::HeaderMap;
use serde_json::Value;
use tokio::sync::watch;

/// The name of the run id in the answer to an asynchronous run (see the module docs: chosen,
/// not documented by Retool).
pub const RUN_ID_FIELD: &str = "workflowRunId";
/// How long one block of a synchronous run may take before Retool times it out.
pub const SYNC_BLOCK_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a synchronous run may take to reach its first Response block.
pub const SYNC_RUN_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How many runs of one workflow Retool's cloud runs at once.
pub const CONCURRENCY: usize = 60;
/// How many runs of one workflow Retool's cloud lets start within [`BURST_WINDOW`].
pub const BURST: usize = 200;
/// The window of [`BURST`].
pub const BURST_WINDOW: Duration = Duration::from_secs(10);

const DEADLINE: Duration = Duration::from_secs(20);

/// How a workflow answers its trigger: what its blocks would make Retool say.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A workflow with a Response block: that status and that JSON body, as given.
    Sync { status: u16, body: Value },
    /// No Response block: 200 at once with a fresh run id under [`RUN_ID_FIELD`].
    Async,
    /// A synchronous workflow that takes this long: 200 `{"ok": true}` after it.
    Slow(Duration),
    /// Answers `then` only after [`FakeRetool::release`] is called for the workflow (a call
    /// made before the request arrived does not count), or when the fake is dropped (503).
    Hold { then: Box<Answer> },
    /// The next `times` requests get 429 with `Retry-After: retry_after_secs`, the ones after
    /// them `then`. A request that comes before the `Retry-After` has passed is answered 429
    /// again (not counted in `times`) and is a violation.
    RateLimited {
        retry_after_secs: u64,
        times: usize,
        then: Box<Answer>,
    },
    /// 500 with Retool's error body: the run failed on Retool's side.
    ServerError,
}

impl Answer {
    /// Panics on a status no HTTP answer can carry, so that a bad script fails where it is
    /// written rather than in the handler.
    fn check(&self) {
        match self {
            Answer::Sync { status, .. } => assert!(
                (100..=599).contains(status),
                "fake Retool: Answer::Sync takes a status from 100 to 599, got {status}"
            ),
            Answer::Hold { then } | Answer::RateLimited { then, .. } => then.check(),
            Answer::Async | Answer::Slow(_) | Answer::ServerError => {}
        }
    }
}

/// One request to a workflow's trigger, as the fake received it, and how it was answered.
#[derive(Debug, Clone)]
pub struct RetoolRequest {
    pub method: String,
    pub headers: HeaderMap,
    /// The JSON the workflow received (`startTrigger.data`): `null` when no body was sent or
    /// Retool would have passed over it (a content type other than JSON).
    pub body: Value,
    /// The body as it arrived (lossy UTF-8).
    pub raw: String,
    pub received: Instant,
    /// The status answered; `None` while the answer has not gone out.
    pub status: Option<u16>,
    /// When the answer was handed to the server to send; `None` until then.
    pub answered: Option<Instant>,
    /// The run id answered to an asynchronous run.
    pub run_id: Option<String>,
}

impl RetoolRequest {
    /// Header `name` as text, when it was sent and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct Workflow {
    api_key: String,
    /// The script, counted down as it is used ([`Answer::RateLimited`]'s `times`).
    answer: Answer,
    /// Until when the last 429's `Retry-After` keeps requests out, and what it said.
    retry_after: Option<(Instant, u64)>,
    /// How many times [`FakeRetool::release`] was called.
    releases: u64,
    /// Requests waiting for a release now.
    held: usize,
}

struct St {
    workflows: HashMap<String, Workflow>,
    /// Workflow id → its requests in arrival order (unknown ids included).
    requests: HashMap<String, Vec<RetoolRequest>>,
    violations: Vec<String>,
    /// Set when the last handle is dropped: held requests end then.
    closed: bool,
}

struct Inner {
    port: u16,
    state: Mutex<St>,
    changed: watch::Sender<u64>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, St> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }
}

/// Stops the server and ends held requests when the last [`FakeRetool`] handle goes.
struct Guard {
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.server.abort();
        self.inner.lock().closed = true;
        self.inner.bump();
    }
}

/// The fake Retool: one 127.0.0.1 port, any number of workflows, state under one lock.
/// Clones are handles to the same fake.
#[derive(Clone)]
pub struct FakeRetool {
    inner: Arc<Inner>,
    _guard: Arc<Guard>,
}

impl FakeRetool {
    /// Binds 127.0.0.1:0 and serves the trigger there, with no workflow yet.
    pub async fn start() -> FakeRetool {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a local address").port();
        let inner = Arc::new(Inner {
            port,
            state: Mutex::new(St {
                workflows: HashMap::new(),
                requests: HashMap::new(),
                violations: Vec::new(),
                closed: false,
            }),
            changed: watch::channel(0).0,
        });
        let app = wire::router(Arc::clone(&inner));
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake Retool serves");
        });
        let guard = Arc::new(Guard {
            inner: Arc::clone(&inner),
            server,
        });
        FakeRetool {
            inner,
            _guard: guard,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    /// The trigger URL of workflow `id`, as Retool shows it:
    /// `{base}/v1/workflows/{id}/startTrigger`.
    pub fn workflow_url(&self, id: &str) -> String {
        format!("{}/v1/workflows/{id}/startTrigger", self.base_url())
    }

    /// Adds (or replaces) workflow `id`, whose trigger takes only `api_key`.
    pub fn add_workflow(&self, id: &str, api_key: &str, answer: Answer) {
        answer.check();
        self.inner.lock().workflows.insert(
            id.to_string(),
            Workflow {
                api_key: api_key.to_string(),
                answer,
                retry_after: None,
                releases: 0,
                held: 0,
            },
        );
        self.inner.bump();
    }

    /// Gives workflow `id` a new answer (a `Retry-After` still running stays).
    pub fn set_answer(&self, id: &str, answer: Answer) {
        answer.check();
        let mut st = self.inner.lock();
        let workflow = st
            .workflows
            .get_mut(id)
            .unwrap_or_else(|| panic!("fake Retool: set_answer on unknown workflow {id:?}"));
        workflow.answer = answer;
        drop(st);
        self.inner.bump();
    }

    /// Lets the requests that [`Answer::Hold`] holds on workflow `id` now give their answer.
    /// Requests that arrive later are held until the next release.
    pub fn release(&self, id: &str) {
        let mut st = self.inner.lock();
        let workflow = st
            .workflows
            .get_mut(id)
            .unwrap_or_else(|| panic!("fake Retool: release on unknown workflow {id:?}"));
        workflow.releases += 1;
        drop(st);
        self.inner.bump();
    }

    /// How many requests to workflow `id` are waiting for [`FakeRetool::release`] now.
    pub fn held(&self, id: &str) -> usize {
        self.inner.lock().workflows.get(id).map_or(0, |w| w.held)
    }

    /// Every request that reached workflow `id`'s trigger, in arrival order, refused ones
    /// included (a workflow that does not exist has its requests here too).
    pub fn requests(&self, id: &str) -> Vec<RetoolRequest> {
        self.inner
            .lock()
            .requests
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// Awaits at least `n` requests to workflow `id` (answered or not) and returns them all.
    pub async fn wait_for_requests(&self, id: &str, n: usize) -> Vec<RetoolRequest> {
        self.wait_for(&format!("{n} requests to workflow {id}"), |fake| {
            let requests = fake.requests(id);
            (requests.len() >= n).then_some(requests)
        })
        .await
    }

    /// Awaits at least `n` answered requests to workflow `id` and returns the answered ones.
    pub async fn wait_for_answered(&self, id: &str, n: usize) -> Vec<RetoolRequest> {
        self.wait_for(&format!("{n} answered requests to workflow {id}"), |fake| {
            let answered: Vec<RetoolRequest> = fake
                .requests(id)
                .into_iter()
                .filter(|r| r.status.is_some())
                .collect();
            (answered.len() >= n).then_some(answered)
        })
        .await
    }

    /// What real Retool would have refused or silently dropped, and what patchbay must not
    /// do to reach it (a key in the URL, no `User-Agent`, a request inside a `Retry-After`).
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().violations.clone()
    }

    /// Awaits `f` returning `Some`, looked at after every change to the fake, for up to 20 s;
    /// panics with the request log and the violations when it does not come.
    pub async fn wait_for<T>(&self, what: &str, mut f: impl FnMut(&FakeRetool) -> Option<T>) -> T {
        let mut changed = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            changed.borrow_and_update();
            if let Some(found) = f(self) {
                return found;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => self.give_up(what),
            }
        }
    }

    fn give_up(&self, what: &str) -> ! {
        let st = self.inner.lock();
        let mut log: Vec<String> = Vec::new();
        for (id, requests) in &st.requests {
            for r in requests {
                let raw: String = r.raw.chars().take(300).collect();
                log.push(format!("  {id}: {:?} {} {raw}", r.status, r.method));
            }
        }
        panic!(
            "fake Retool: timed out after {DEADLINE:?} waiting for {what}\nviolations: {:#?}\n\
             requests:\n{}",
            st.violations,
            log.join("\n")
        );
    }
}

/// A new run id: a random UUID (version 4), dashed.
fn new_run_id() -> String {
    let n = (rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
