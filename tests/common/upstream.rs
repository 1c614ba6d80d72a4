//! A real HTTP upstream on 127.0.0.1 that tests flip between healthy and failing, count hits
//! on, and hold (requests wait, unanswered, until released), to drive checks without mocks.
//!
//! Waiting is done on a `watch` channel bumped on every hit, with a 20 s deadline; nothing
//! polls or sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::any;
use tokio::sync::watch;

const DEADLINE: Duration = Duration::from_secs(20);

struct Shared {
    status: AtomicU16,
    hits: AtomicUsize,
    /// Bumped on every hit.
    seen: watch::Sender<usize>,
    /// While true, requests wait before answering.
    held: watch::Sender<bool>,
}

/// The upstream; dropping it stops the server.
pub struct Upstream {
    port: u16,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(shared): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    let hits = shared.hits.fetch_add(1, Ordering::SeqCst) + 1;
    shared.seen.send_replace(hits);
    let mut held = shared.held.subscribe();
    // Ignore the error: the sender lives as long as the server.
    let _ = held.wait_for(|held| !*held).await;
    let status = StatusCode::from_u16(shared.status.load(Ordering::SeqCst))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, if status.is_success() { "ok" } else { "failing" })
}

impl Upstream {
    /// Starts a healthy upstream (200 on every path).
    pub async fn start() -> Upstream {
        let shared = Arc::new(Shared {
            status: AtomicU16::new(200),
            hits: AtomicUsize::new(0),
            seen: watch::channel(0).0,
            held: watch::channel(false).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .fallback(any(answer))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Upstream {
            port,
            shared,
            server,
        }
    }

    /// The URL of its health endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }

    /// Answers every request from now on with `status`.
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Answers 200 from now on.
    pub fn heal(&self) {
        self.set_status(200);
    }

    /// Answers 500 from now on.
    pub fn break_it(&self) {
        self.set_status(500);
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests have arrived.
    pub async fn wait_hits(&self, n: usize) {
        let mut seen = self.shared.seen.subscribe();
        tokio::time::timeout(DEADLINE, seen.wait_for(|hits| *hits >= n))
            .await
            .unwrap_or_else(|_| panic!("upstream: {} hits after 20 s, wanted {n}", self.hits()))
            .expect("the upstream is running");
    }

    /// Holds every request, unanswered, until [`Upstream::release`].
    pub fn hold(&self) {
        self.shared.held.send_replace(true);
    }

    /// Answers the held requests and stops holding.
    pub fn release(&self) {
        self.shared.held.send_replace(false);
    }
}
