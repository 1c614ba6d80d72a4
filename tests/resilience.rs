//! End-to-end tests of the resilience layer against real local HTTP servers.
//!
//! Each test starts the common upstream (`common::upstream`) on 127.0.0.1:0, with the replies
//! it scripts or a router of its own, and counts the requests that reached it, with their
//! arrival times, so assertions are about what actually reached the wire.

mod common;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;
use common::upstream::{Reply, Upstream as Server};
use futures::StreamExt;
use patchbay::resilience::{
    BreakerConfig, Call, CircuitState, Holding, Idempotency, RateLimit, RetryPolicy, Unanswered,
    Upstream, UpstreamConfig, UpstreamError,
};

/// Starts a server that answers `first`, in order, then `then` to every request after them.
async fn serve(first: impl IntoIterator<Item = Reply>, then: Reply) -> (SocketAddr, Server) {
    let server = Server::start().await;
    server.set_reply(then);
    server.queue(first);
    (server.addr(), server)
}

fn plain(status: u16) -> Reply {
    Reply::status(status).body("body")
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
        body_limit: 64 * 1024,
        holding: Holding::RetryAfter,
        wait_out_holds: false,
    }
}

#[tokio::test]
async fn idempotent_send_retries_500s_and_succeeds_on_third_attempt() {
    let (addr, seen) = serve([plain(500), plain(500)], plain(200)).await;
    let upstream = Upstream::new("flaky", config());
    let client = client();
    let answer = upstream
        .send(Idempotency::Idempotent, || {
            client.get(format!("http://{addr}/items"))
        })
        .await
        .expect("third attempt succeeds");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "body");
    assert_eq!(seen.hits(), 3);
    assert_eq!(upstream.circuit_state(), CircuitState::Closed);
}

#[tokio::test]
async fn non_idempotent_post_to_500_is_sent_once() {
    let (addr, seen) = serve([], plain(500)).await;
    let upstream = Upstream::new("webhook", config());
    let client = client();
    let err = upstream
        .send(Idempotency::NonIdempotent, || {
            client.post(format!("http://{addr}/hook")).body("hello")
        })
        .await
        .unwrap_err();
    assert_eq!(err, UpstreamError::Server { status: 500 });
    assert_eq!(seen.hits(), 1);
}

#[tokio::test]
async fn rate_limited_waits_for_retry_after() {
    let limited = Reply::status(429)
        .header("retry-after", "1")
        .body("slow down");
    let (addr, seen) = serve([limited], plain(200)).await;
    let upstream = Upstream::new("limited", config());
    let client = client();
    let answer = upstream
        .send(Idempotency::Idempotent, || {
            client.get(format!("http://{addr}/"))
        })
        .await
        .expect("retry after the wait succeeds");
    assert_eq!(answer.status, 200);
    let arrivals = seen.arrivals();
    assert_eq!(arrivals.len(), 2);
    let gap = arrivals[1] - arrivals[0];
    assert!(gap >= Duration::from_secs(1), "retried after only {gap:?}");
}

#[tokio::test]
async fn retry_after_longer_than_max_delay_gives_up_at_once() {
    let limited = Reply::status(429).header("retry-after", "120").body("");
    let (addr, seen) = serve([], limited).await;
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
    assert_eq!(seen.hits(), 1);
}

#[tokio::test]
async fn unauthorized_is_auth_after_one_request() {
    let (addr, seen) = serve([], plain(401)).await;
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
    assert_eq!(seen.hits(), 1);
    assert_eq!(upstream.circuit_state(), CircuitState::Closed);
}

#[tokio::test]
async fn slow_handler_times_out() {
    // Slower than the client's timeout; the test never waits for it.
    let slow = Reply::status(200)
        .body("too late")
        .delay(Duration::from_secs(5));
    let (addr, seen) = serve([], slow).await;
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
    assert_eq!(seen.hits(), 1);
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
    let (addr, seen) = serve([], plain(502)).await;
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
    assert_eq!(seen.hits(), 3);
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
    assert_eq!(seen.hits(), 3, "an open breaker must not reach the server");
}

#[tokio::test]
async fn rate_limiter_spaces_requests() {
    let (addr, seen) = serve([], plain(200)).await;
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
        let answer = upstream
            .send(Idempotency::Idempotent, || {
                client.get(format!("http://{addr}/"))
            })
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
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

/// The answer comes back whatever its status, body included, so a client can read what the
/// upstream says about the error (Notion's `code`, Discord's error code).
#[tokio::test]
async fn exchange_returns_a_refusal_with_its_body() {
    let refusal = Reply::status(404)
        .header("content-type", "application/json")
        .body(r#"{"object": "error", "code": "object_not_found"}"#);
    let (addr, seen) = serve([], refusal).await;
    let upstream = Upstream::new("notion", config());
    let client = client();
    let answer = upstream
        .exchange(Call::idempotent(), || {
            client.get(format!("http://{addr}/pages/1"))
        })
        .await
        .expect("an answer");
    assert_eq!(answer.status, 404);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(
        answer.json::<serde_json::Value>().unwrap()["code"],
        "object_not_found"
    );
    assert_eq!(answer.error(), Some(UpstreamError::Client { status: 404 }));
    // A refusal is final: one request, and it proves the upstream is up.
    assert_eq!(seen.hits(), 1);
    assert_eq!(upstream.circuit_state(), CircuitState::Closed);
}

/// An idempotent call is retried on 5xx like `send`, and when the attempts run out the last
/// answer is returned, body and all.
#[tokio::test]
async fn exchange_retries_and_returns_the_last_answer() {
    let early = Reply::status(503).body("early");
    let (addr, seen) = serve([early.clone(), early], Reply::status(502).body("last")).await;
    let upstream = Upstream::new("flaky", config());
    let client = client();
    let answer = upstream
        .exchange(Call::idempotent(), || client.get(format!("http://{addr}/")))
        .await
        .expect("an answer");
    assert_eq!(
        (answer.status, answer.text()),
        (StatusCode::BAD_GATEWAY, "last".into())
    );
    assert_eq!(seen.hits(), 3);
}

/// A 429 holds the bucket its call named: the next call in that bucket fails fast without
/// reaching the server, a call in another bucket goes on. With `Holding::Caller` the layer
/// leaves the hold to the client.
#[tokio::test]
async fn a_429_holds_its_bucket_and_only_its_bucket() {
    let limited = Reply::status(429)
        .header("retry-after", "30")
        .body("slow down");
    let (addr, seen) = serve([limited], plain(200)).await;
    let upstream = Upstream::new("notion", config());
    let client = client();
    let get = |bucket: &'static str| {
        let upstream = upstream.clone();
        let client = client.clone();
        async move {
            upstream
                .exchange(Call::idempotent().in_bucket(bucket), || {
                    client.get(format!("http://{addr}/{bucket}"))
                })
                .await
        }
    };
    // 30 s is longer than the policy's max_delay: the 429 comes back at once.
    let limited = get("pages").await.expect("the 429 itself");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.text(), "slow down");
    let held = get("pages").await.unwrap_err();
    let Unanswered {
        error: UpstreamError::RateLimited {
            retry_after: Some(wait),
        },
        never_sent: true,
    } = held
    else {
        panic!("the bucket is held, nothing sent: {held:?}");
    };
    assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30));
    assert_eq!(seen.hits(), 1, "a held call reaches nobody");
    assert_eq!(get("databases").await.unwrap().status, 200);
    assert_eq!(seen.hits(), 2);

    // The caller holds: the layer returns the 429 and keeps nothing back.
    let (addr, seen) = serve([plain(429)], plain(200)).await;
    let upstream = Upstream::new(
        "discord",
        UpstreamConfig {
            holding: Holding::Caller,
            retry: RetryPolicy {
                max_attempts: 1,
                ..config().retry
            },
            ..config()
        },
    );
    for expected in [429, 200] {
        let answer = upstream
            .exchange(Call::non_idempotent().in_bucket("messages"), || {
                client.post(format!("http://{addr}/messages"))
            })
            .await
            .unwrap();
        assert_eq!(answer.status, expected);
    }
    assert_eq!(seen.hits(), 2);
    upstream.hold(Some("messages"), Duration::from_secs(5));
    let held = upstream
        .exchange(Call::idempotent().in_bucket("messages"), || {
            client.get(format!("http://{addr}/messages"))
        })
        .await
        .unwrap_err();
    assert_eq!(held.error.kind(), "rate_limited");
    assert_eq!(seen.hits(), 2);
}

/// Whether an unanswered request may have left: a refused connection provably did not, so
/// even a non-idempotent call may be repeated; a body that stalls after the headers ends at
/// the per-attempt timeout, and the request may have taken effect.
#[tokio::test]
async fn unanswered_calls_say_whether_the_request_left() {
    let once = RetryPolicy {
        max_attempts: 1,
        ..config().retry
    };
    let client = client();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let upstream = Upstream::new(
        "gone",
        UpstreamConfig {
            retry: once,
            ..config()
        },
    );
    let refused = upstream
        .exchange(Call::non_idempotent(), || {
            client.post(format!("http://127.0.0.1:{port}/hook"))
        })
        .await
        .unwrap_err();
    assert_eq!(refused.error.kind(), "connect");
    assert!(refused.never_sent, "{refused:?}");

    // Headers and a first chunk, then nothing: the timeout covers the body too.
    let app = Router::new().fallback(any(|| async {
        let first = futures::stream::once(async { Ok::<_, std::io::Error>("{\"id\":") });
        let body = axum::body::Body::from_stream(first.chain(futures::stream::pending()));
        (StatusCode::OK, body)
    }));
    let seen = Server::serve(app).await;
    let addr = seen.addr();
    let upstream = Upstream::new(
        "stalling",
        UpstreamConfig {
            timeout: Duration::from_millis(300),
            retry: once,
            ..config()
        },
    );
    let started = Instant::now();
    let stalled = upstream
        .exchange(Call::non_idempotent(), || {
            client.post(format!("http://{addr}/hook"))
        })
        .await
        .unwrap_err();
    assert_eq!(
        stalled,
        Unanswered {
            error: UpstreamError::Timeout,
            never_sent: false,
        }
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(seen.hits(), 1);
}

/// A body longer than the limit is cut there and says so; parsing it is a bad response, not a
/// confusing JSON error.
#[tokio::test]
async fn bodies_are_read_up_to_the_limit() {
    let (addr, _seen) = serve([], Reply::status(200).body("x".repeat(200 * 1024))).await;
    let upstream = Upstream::new("large", config());
    let client = client();
    let answer = upstream
        .exchange(Call::idempotent(), || client.get(format!("http://{addr}/")))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.truncated);
    assert_eq!(answer.body.len(), config().body_limit);
    let err = answer.json::<serde_json::Value>().unwrap_err();
    assert_eq!(err.kind(), "bad_response");
    assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
}
