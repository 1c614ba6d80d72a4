//! A real HTTP upstream on 127.0.0.1, the one the tests and benches check against (no mocks):
//!
//! - [`Upstream::start`] answers every request with a scripted [`Reply`] (status, headers,
//!   body, and a delay before answering): a standing one that a test flips
//!   ([`Upstream::break_it`], [`Upstream::heal`], [`Upstream::set_reply`]), after any replies
//!   queued for the next requests ([`Upstream::queue`]). It can also hold requests, unanswered,
//!   until released.
//! - [`Upstream::serve`] serves a router of the test's own, for what a script cannot say
//!   (redirect chains, bodies that stall or never end, answers that depend on the request), and
//!   keeps every request in full ([`Upstream::requests`]: method, path, headers, body, peer),
//!   so that assertions are about what reached the wire, even for a request never answered.
//!   The scripted upstream keeps only arrival times: the alert bench sends it hundreds of
//!   thousands of checks.
//! - [`Upstream::start_sync`] is [`Upstream::start`] for a test that runs without a runtime
//!   (the process tests): it serves from a runtime of its own.
//!
//! Both count hits with their arrival times. Waiting is done on a `watch` channel bumped on
//! every hit, with a 20 s deadline; nothing polls or sleeps.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tokio::sync::watch;

const DEADLINE: Duration = Duration::from_secs(20);

/// What the scripted upstream answers one request with.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    /// `status`, with the body `ok` for a success and `failing` for anything else.
    pub fn status(status: u16) -> Reply {
        let success = (200..300).contains(&status);
        Reply {
            status,
            headers: Vec::new(),
            body: if success { "ok" } else { "failing" }.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// This body instead (sent as `text/plain` unless a header says otherwise).
    pub fn body(mut self, body: impl Into<String>) -> Reply {
        self.body = body.into();
        self
    }

    /// With this header too.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Answered only after `delay` (a slow upstream; a client may time out first).
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.body).into_response();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
            let value = HeaderValue::from_str(value).expect("a valid header value");
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// One request as the upstream received it (kept by [`Upstream::serve`]).
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The client's address: distinct peers are distinct connections.
    pub peer: SocketAddr,
}

struct Shared {
    /// What a request is answered with when nothing is queued.
    reply: Mutex<Reply>,
    /// What the next requests are answered with, in order.
    queue: Mutex<VecDeque<Reply>>,
    /// When each request arrived, in order.
    arrivals: Mutex<Vec<Instant>>,
    /// Every request in full, when the upstream keeps them ([`Upstream::serve`]).
    requests: Option<Mutex<Vec<Seen>>>,
    /// Bumped on every hit.
    seen: watch::Sender<usize>,
    /// While true, scripted requests wait before answering.
    held: watch::Sender<bool>,
}

/// The upstream; dropping it stops the server.
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    /// The runtime a [`Upstream::start_sync`] upstream is served from.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Counts the hit (and keeps the request, when asked) before the request is routed, so a
/// request whose answer never comes is seen too.
async fn record(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let arrived = Instant::now();
    let request = match &shared.requests {
        None => request,
        Some(requests) => {
            let (parts, body) = request.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("the test client sends a readable body");
            requests.lock().unwrap().push(Seen {
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                headers: parts.headers.clone(),
                body: bytes.to_vec(),
                peer,
            });
            Request::from_parts(parts, Body::from(bytes))
        }
    };
    let hits = {
        let mut arrivals = shared.arrivals.lock().unwrap();
        arrivals.push(arrived);
        arrivals.len()
    };
    shared.seen.send_replace(hits);
    next.run(request).await
}

/// The scripted answer: after any hold, the next queued reply or the standing one.
async fn answer(State(shared): State<Arc<Shared>>) -> Reply {
    let mut held = shared.held.subscribe();
    // Ignore the error: the sender lives as long as the server.
    let _ = held.wait_for(|held| !*held).await;
    let queued = shared.queue.lock().unwrap().pop_front();
    let reply = queued.unwrap_or_else(|| shared.reply.lock().unwrap().clone());
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    reply
}

impl Upstream {
    /// Starts a healthy scripted upstream (200 `ok` on every path).
    pub async fn start() -> Upstream {
        let shared = Upstream::shared(false);
        let app = Router::new()
            .fallback(any(answer))
            .with_state(shared.clone());
        Upstream::listen(shared, app).await
    }

    /// Serves `app`, keeping every request it receives (see [`Upstream::requests`]).
    pub async fn serve(app: Router) -> Upstream {
        Upstream::listen(Upstream::shared(true), app).await
    }

    /// [`Upstream::start`] for code without a runtime: the upstream is served from a runtime of
    /// its own, which stops when the upstream is dropped. Its waits need a runtime.
    pub fn start_sync() -> Upstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut upstream = runtime.block_on(Upstream::start());
        upstream.runtime = Some(runtime);
        upstream
    }

    fn shared(keep_requests: bool) -> Arc<Shared> {
        Arc::new(Shared {
            reply: Mutex::new(Reply::status(200)),
            queue: Mutex::new(VecDeque::new()),
            arrivals: Mutex::new(Vec::new()),
            requests: keep_requests.then(|| Mutex::new(Vec::new())),
            seen: watch::channel(0).0,
            held: watch::channel(false).0,
        })
    }

    async fn listen(shared: Arc<Shared>, app: Router) -> Upstream {
        let app = app.layer(middleware::from_fn_with_state(shared.clone(), record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Upstream {
            addr,
            shared,
            server,
            runtime: None,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on it (`/health` for a health endpoint).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers every request from now on (after those queued) with `reply`.
    pub fn set_reply(&self, reply: Reply) {
        *self.shared.reply.lock().unwrap() = reply;
    }

    /// Answers every request from now on with `status` (see [`Reply::status`]).
    pub fn set_status(&self, status: u16) {
        self.set_reply(Reply::status(status));
    }

    /// Answers 200 from now on.
    pub fn heal(&self) {
        self.set_status(200);
    }

    /// Answers 500 from now on.
    pub fn break_it(&self) {
        self.set_status(500);
    }

    /// Answers the next requests with `replies`, in order, before the standing reply.
    pub fn queue(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.queue.lock().unwrap().extend(replies);
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.shared.arrivals.lock().unwrap().len()
    }

    /// When each request arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.shared.arrivals.lock().unwrap().clone()
    }

    /// Every request received so far, in arrival order (an upstream made by
    /// [`Upstream::serve`]; a scripted one keeps only [`Upstream::arrivals`]).
    pub fn requests(&self) -> Vec<Seen> {
        let requests = self.shared.requests.as_ref();
        let requests = requests.expect("only Upstream::serve keeps whole requests");
        requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived.
    pub async fn wait_hits(&self, n: usize) {
        let mut seen = self.shared.seen.subscribe();
        tokio::time::timeout(DEADLINE, seen.wait_for(|hits| *hits >= n))
            .await
            .unwrap_or_else(|_| panic!("upstream: {} hits after 20 s, wanted {n}", self.hits()))
            .expect("the upstream is running");
    }

    /// Holds every scripted request, unanswered, until [`Upstream::release`].
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Answers the held requests and stops holding.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }
}
