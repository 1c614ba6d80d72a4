//! End-to-end tests of the resilience layer against real local HTTP servers.
//!
//! Each test starts an axum server on 127.0.0.1:0 whose handler records every
//! request it sees, so assertions are about what actually reached the wire.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use patchbay::resilience::{
    BreakerConfig, CircuitState, Idempotency, RateLimit, RetryPolicy, Upstream, UpstreamConfig,
    UpstreamError,
};

/// What a test server saw: the arrival time of every request.
#[derive(Clone, Default)]
struct Seen {
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Seen {
    /// Records a request and returns its 1-based number.
    fn hit(&self) -> usize {
        let mut arrivals = self.arrivals.lock().unwrap();
        arrivals.push(Instant::now());
        arrivals.len()
    }

    fn count(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

/// A handler's reply for the n-th request (1-based).
type Reply = fn(usize) -> (StatusCode, HeaderMap, &'static str);

/// Starts a server whose every route replies with `reply(n)` for request n.
async fn serve(reply: Reply) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .fallback(any(move |State(seen): State<Seen>| async move {
            reply(seen.hit())
        }))
        .with_state(seen.clone());
    spawn(app).await.map(|addr| (addr, seen)).unwrap()
}

async fn spawn(app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn plain(status: StatusCode) -> (StatusCode, HeaderMap, &'static str) {
    (status, HeaderMap::new(), "body")
}

/// A client that ignores proxy environment variables, so requests to
/// 127.0.0.1 go straight to the test server.
fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A config with fast retries so the suite stays quick.
fn config() -> UpstreamConfig {
    UpstreamConfig {
        timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
        },
        breaker: BreakerConfig {
            failure_threshold: 10,
            open_duration: Duration::from_secs(30),
        },
        rate_limit: None,
    }
}

#[tokio::test]
async fn idempotent_send_retries_500s_and_succeeds_on_third_attempt() {
    let (addr, seen) = serve(|n| {
        plain(if n <= 2 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        })
    })
    .await;
    let upstream = Upstream::new("flaky", config());
    let client = client();
    let response = upstream
        .send(Idempotency::Idempotent, || {
            client.get(format!("http://{addr}/items"))
        })
        .await
        .expect("third attempt succeeds");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "body");
    assert_eq!(seen.count(), 3);
    assert_eq!(upstream.circuit_state(), CircuitState::Closed);
}

#[tokio::test]
async fn non_idempotent_post_to_500_is_sent_once() {
    let (addr, seen) = serve(|_| plain(StatusCode::INTERNAL_SERVER_ERROR)).await;
    let upstream = Upstream::new("webhook", config());
    let client = client();
    let err = upstream
        .send(Idempotency::NonIdempotent, || {
            client.post(format!("http://{addr}/hook")).body("hello")
        })
        .await
        .unwrap_err();
    assert_eq!(err, UpstreamError::Server { status: 500 });
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn rate_limited_waits_for_retry_after() {
    let (addr, seen) = serve(|n| {
        if n == 1 {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", "1".parse().unwrap());
            (StatusCode::TOO_MANY_REQUESTS, headers, "slow down")
        } else {
            plain(StatusCode::OK)
        }
    })
    .await;
    let upstream = Upstream::new("limited", config());
    let client = client();
    let response = upstream
        .send(Idempotency::Idempotent, || {
            client.get(format!("http://{addr}/"))
        })
        .await
        .expect("retry after the wait succeeds");
    assert_eq!(response.status(), 200);
    let arrivals = seen.arrivals();
    assert_eq!(arrivals.len(), 2);
    let gap = arrivals[1] - arrivals[0];
    assert!(gap >= Duration::from_secs(1), "retried after only {gap:?}");
}

#[tokio::test]
async fn retry_after_longer_than_max_delay_gives_up_at_once() {
    let (addr, seen) = serve(|_| {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "120".parse().unwrap());
        (StatusCode::TOO_MANY_REQUESTS, headers, "")
    })
    .await;
    let upstream = Upstream::new("limited", config());
    let client = client();
    let err = upstream
        .send(Idempotency::Idempotent, || {
            client.get(format!("http://{addr}/"))
        })
        .await
        .unwrap_err();
    assert_eq!(
        err,
        UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn unauthorized_is_auth_after_one_request() {
    let (addr, seen) = serve(|_| plain(StatusCode::UNAUTHORIZED)).await;
    let upstream = Upstream::new("notion", config());
    let client = client();
    let err = upstream
        .send(Idempotency::Idempotent, || {
            client.get(format!("http://{addr}/"))
        })
        .await
        .unwrap_err();
    assert_eq!(err, UpstreamError::Auth { status: 401 });
    assert_eq!(err.kind(), "auth");
    assert_eq!(seen.count(), 1);
    assert_eq!(upstream.circuit_state(), CircuitState::Closed);
}

#[tokio::test]
async fn slow_handler_times_out() {
    let seen = Seen::default();
    let app = Router::new()
        .fallback(any(|State(seen): State<Seen>| async move {
            seen.hit();
            // Slower than the client's timeout; the test never waits for it.
            tokio::time::sleep(Duration::from_secs(5)).await;
            "too late"
        }))
        .with_state(seen.clone());
    let addr = spawn(app).await.unwrap();
    let upstream = Upstream::new(
        "slow",
        UpstreamConfig {
            timeout: Duration::from_millis(200),
            retry: RetryPolicy {
                max_attempts: 1,
                ..config().retry
            },
            ..config()
        },
    );
    let client = client();
    let started = Instant::now();
    let err = upstream
        .send(Idempotency::Idempotent, || {
            client.get(format!("http://{addr}/"))
        })
        .await
        .unwrap_err();
    assert_eq!(err, UpstreamError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn closed_port_is_connect_and_never_leaks_the_query_string() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let upstream = Upstream::new("gone", config());
    let client = client();
    let built = AtomicUsize::new(0);
    let err = upstream
        .send(Idempotency::NonIdempotent, || {
            built.fetch_add(1, Ordering::SeqCst);
            client.post(format!("http://127.0.0.1:{port}/hook?token=hunter2"))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Connect(_)), "{err:?}");
    assert_eq!(err.kind(), "connect");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    // A refused connection provably never sent the request, so even a
    // non-idempotent call is retried up to the attempt budget.
    assert_eq!(built.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn breaker_opens_after_repeated_500s_then_fails_fast() {
    let (addr, seen) = serve(|_| plain(StatusCode::BAD_GATEWAY)).await;
    let upstream = Upstream::new(
        "retool",
        UpstreamConfig {
            retry: RetryPolicy {
                max_attempts: 1,
                ..config().retry
            },
            breaker: BreakerConfig {
                failure_threshold: 3,
                open_duration: Duration::from_secs(30),
            },
            ..config()
        },
    );
    let client = client();
    let call = || {
        upstream.send(Idempotency::Idempotent, || {
            client.get(format!("http://{addr}/"))
        })
    };
    for _ in 0..3 {
        assert_eq!(
            call().await.unwrap_err(),
            UpstreamError::Server { status: 502 }
        );
    }
    assert_eq!(seen.count(), 3);
    assert_eq!(upstream.circuit_state(), CircuitState::Open);

    for _ in 0..5 {
        match call().await.unwrap_err() {
            UpstreamError::CircuitOpen { upstream, retry_in } => {
                assert_eq!(upstream, "retool");
                assert!(retry_in > Duration::from_secs(25) && retry_in <= Duration::from_secs(30));
            }
            other => panic!("expected circuit_open, got {other:?}"),
        }
    }
    assert_eq!(seen.count(), 3, "an open breaker must not reach the server");
}

#[tokio::test]
async fn rate_limiter_spaces_requests() {
    let (addr, seen) = serve(|_| plain(StatusCode::OK)).await;
    let client = client();
    // Open the pooled connection first so that connection setup does not
    // skew the first measured arrival.
    client
        .get(format!("http://{addr}/warmup"))
        .send()
        .await
        .unwrap();
    let upstream = Upstream::new(
        "polled",
        UpstreamConfig {
            rate_limit: Some(RateLimit {
                per_second: NonZeroU32::new(5).unwrap(),
                burst: NonZeroU32::new(1).unwrap(),
            }),
            ..config()
        },
    );
    let started = Instant::now();
    for _ in 0..3 {
        let response = upstream
            .send(Idempotency::Idempotent, || {
                client.get(format!("http://{addr}/"))
            })
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // 5/s with a burst of 1 admits the 3rd call no earlier than 400 ms after
    // the 1st; the client-side measurement is exact, the server-side one
    // allows for scheduling noise between arrival stamps.
    assert!(started.elapsed() >= Duration::from_millis(400));
    let arrivals = seen.arrivals();
    assert_eq!(arrivals.len(), 4);
    let span = arrivals[3] - arrivals[1];
    assert!(
        span >= Duration::from_millis(380),
        "3 requests took only {span:?}"
    );
}
