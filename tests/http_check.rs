//! End-to-end tests of the HTTP checker against real local HTTP servers.
//!
//! Every integration is built from TOML text through `patchbay::config::parse`, so the tests go
//! through the same config path as the bot. Every test server is the common upstream serving a
//! router of the test's own (`common::upstream::Upstream::serve`), which records each request it
//! receives (method, path, headers, body and the peer address) before its handler runs, so
//! assertions are about what actually reached the wire, including requests whose handler never
//! answers.

mod common;

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use common::upstream::Upstream;
use futures::StreamExt;
use patchbay::config::{self, CheckSpec, Environment, HttpCheck, Integration};
use patchbay::model::CheckResult;
use patchbay::monitor::http_check::HttpChecker;

/// Parses a whole config file through the real loader, failing the test with the loader's own
/// report when the text is rejected.
fn integrations(toml: &str, env: &[(&str, &str)]) -> Vec<Integration> {
    let env = Environment::from_pairs(env.iter().copied());
    match config::parse(toml, "test.toml", None, &env) {
        Ok(config) => config.integrations,
        Err(errors) => panic!("the test config is invalid:\n{errors}"),
    }
}

/// Parses a config holding exactly one integration.
fn integration(toml: &str, env: &[(&str, &str)]) -> Integration {
    let mut all = integrations(toml, env);
    assert_eq!(all.len(), 1, "the test config defines one integration");
    all.remove(0)
}

/// The TOML for one HTTP integration named `name` that requests `url`, plus `extra` keys.
fn http(name: &str, url: &str, extra: &str) -> String {
    format!("[[integration]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n")
}

/// The HTTP part of an integration (the only kind this release has).
fn spec(integration: &Integration) -> &HttpCheck {
    #[allow(irrefutable_let_patterns)]
    let CheckSpec::Http(spec) = &integration.check else {
        panic!("{} is not an HTTP integration", integration.name)
    };
    spec
}

/// Runs one check with a fresh checker, returning its result and how long it took.
async fn check_once(integration: &Integration) -> (CheckResult, Duration) {
    let checker = HttpChecker::new();
    let started = Instant::now();
    let result = checker.check(integration, spec(integration)).await;
    (result, started.elapsed())
}

/// Asserts a check failed with exactly this kind, status and message.
#[track_caller]
fn assert_failed(result: &CheckResult, kind: &str, status: Option<u16>, message: &str) {
    assert!(!result.success, "expected a failure, got {result:?}");
    assert_eq!(result.error_kind.as_deref(), Some(kind), "{result:?}");
    assert_eq!(result.status, status, "{result:?}");
    assert_eq!(result.message.as_deref(), Some(message), "{result:?}");
}

/// Asserts a check passed with this final status and carries no failure details.
#[track_caller]
fn assert_passed(result: &CheckResult, status: u16) {
    assert!(result.success, "expected a success, got {result:?}");
    assert_eq!(result.status, Some(status), "{result:?}");
    assert_eq!(result.error_kind, None, "{result:?}");
    assert_eq!(result.message, None, "{result:?}");
}

/// A handler that always answers with `status` and a fixed JSON body.
fn json_reply(status: StatusCode, body: &'static str) -> Router {
    Router::new().fallback(any(move || async move {
        (status, [(CONTENT_TYPE, "application/json")], body)
    }))
}

/// A response redirecting with `status` to `location`.
fn redirect(status: StatusCode, location: String) -> Response {
    (status, [(LOCATION, location)]).into_response()
}

#[tokio::test]
async fn healthy_json_endpoint_is_up() {
    let server = Upstream::serve(json_reply(StatusCode::OK, r#"{"status":"ok"}"#)).await;
    let api = integration(
        &http(
            "api",
            &server.url("/health"),
            r#"conditions = ['status == 200', 'body.status == "ok"', 'latency < 5s']"#,
        ),
        &[],
    );

    let (result, _) = check_once(&api).await;

    assert_passed(&result, 200);
    assert_eq!(result.integration, "api");
    // A real round trip over a socket always takes some measurable time.
    assert!(result.latency_ms > 0.0, "{result:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, Method::GET);
    assert_eq!(requests[0].path, "/health");
}

#[tokio::test]
async fn server_error_fails_the_status_condition() {
    let server = Upstream::serve(json_reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"status":"down"}"#,
    ))
    .await;
    let api = integration(
        &http(
            "api",
            &server.url("/health"),
            "conditions = ['status == 200']",
        ),
        &[],
    );

    let (result, _) = check_once(&api).await;

    assert_failed(
        &result,
        "conditions",
        Some(500),
        "status == 200 failed: got 500",
    );
}

#[tokio::test]
async fn every_failed_condition_is_reported_in_order() {
    let server = Upstream::serve(json_reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"status":"down"}"#,
    ))
    .await;
    let api = integration(
        &http(
            "api",
            &server.url("/health"),
            r#"conditions = ['status == 200', 'body.status == "ok"']"#,
        ),
        &[],
    );

    let (result, _) = check_once(&api).await;

    // Both explanations are kept, so a user sees every reason at once rather than one per fix.
    assert_failed(
        &result,
        "conditions",
        Some(500),
        r#"status == 200 failed: got 500; body.status == "ok" failed: got "down""#,
    );
}

#[tokio::test]
async fn without_conditions_a_success_status_is_up_and_an_error_status_is_down() {
    let app = Router::new()
        .route("/empty", any(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/unavailable",
            any(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        );
    let server = Upstream::serve(app).await;
    let toml = format!(
        "{}{}",
        http("empty", &server.url("/empty"), ""),
        http("unavailable", &server.url("/unavailable"), "")
    );
    let all = integrations(&toml, &[]);
    assert!(all.iter().all(|i| i.conditions.is_empty()));

    let (empty, _) = check_once(&all[0]).await;
    let (unavailable, _) = check_once(&all[1]).await;

    assert_passed(&empty, 204);
    assert_failed(
        &unavailable,
        "conditions",
        Some(503),
        "status 503 is an error (no conditions configured)",
    );
}

#[tokio::test]
async fn a_handler_that_never_answers_times_out_at_the_integration_timeout() {
    let app = Router::new().fallback(any(std::future::pending::<StatusCode>));
    let server = Upstream::serve(app).await;
    let slow = integration(&http("slow", &server.url("/"), "timeout = \"200ms\""), &[]);
    assert_eq!(slow.timeout, Duration::from_millis(200));

    let (result, elapsed) = check_once(&slow).await;

    assert_failed(
        &result,
        "timeout",
        None,
        "no complete response within 200ms",
    );
    // The check must give up at its own timeout, not wait for the server, and not give up early.
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
    assert!(result.latency_ms >= 200.0, "{result:?}");
    // The request did reach the server, so this was a slow response and not a failed connect.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_long_sleep_in_the_handler_is_cut_off_by_the_timeout() {
    let app = Router::new().fallback(any(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        StatusCode::OK
    }));
    let server = Upstream::serve(app).await;
    let slow = integration(&http("slow", &server.url("/"), "timeout = \"200ms\""), &[]);

    let (result, elapsed) = check_once(&slow).await;

    assert_failed(
        &result,
        "timeout",
        None,
        "no complete response within 200ms",
    );
    assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_times_out() {
    // The headers and a first chunk arrive at once, then the body never ends: the timeout covers
    // the whole response, not just the wait for the headers.
    let app = Router::new().fallback(any(|| async {
        let stream = futures::stream::once(async { Ok::<_, Infallible>(Bytes::from_static(b"{")) })
            .chain(futures::stream::pending());
        Body::from_stream(stream)
    }));
    let server = Upstream::serve(app).await;
    let stalled = integration(
        &http(
            "stalled",
            &server.url("/"),
            "timeout = \"200ms\"\nconditions = ['status == 200']",
        ),
        &[],
    );

    let (result, elapsed) = check_once(&stalled).await;

    assert_failed(
        &result,
        "timeout",
        None,
        "no complete response within 200ms",
    );
    assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    // Binding and dropping a listener yields a port that nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed = integration(
        &http("closed", &format!("http://127.0.0.1:{port}/"), ""),
        &[],
    );

    let (result, elapsed) = check_once(&closed).await;

    let refused = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
    assert_failed(&result, "connect", None, &format!("connect: {refused}"));
    // A refused connection is reported at once rather than after the 10s default timeout.
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn a_json_condition_on_a_body_that_is_not_json_fails() {
    let app = Router::new().fallback(any(|| async {
        ([(CONTENT_TYPE, "text/plain")], "not json {")
    }));
    let server = Upstream::serve(app).await;
    let api = integration(
        &http("api", &server.url("/"), "conditions = ['body.x == 1']"),
        &[],
    );

    let (result, _) = check_once(&api).await;

    assert_failed(
        &result,
        "conditions",
        Some(200),
        "body.x == 1 failed: body is not JSON",
    );
}

#[tokio::test]
async fn a_body_past_the_cap_with_content_length_is_refused() {
    let app = Router::new().fallback(any(|| async { vec![b'x'; 1001] }));
    let server = Upstream::serve(app).await;
    let big = integration(&http("big", &server.url("/"), "max_body_bytes = 1000"), &[]);
    assert_eq!(spec(&big).max_body_bytes, 1000);

    let (result, _) = check_once(&big).await;

    assert_failed(
        &result,
        "bad_response",
        Some(200),
        "response body larger than 1000 bytes",
    );
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_off_at_the_cap() {
    // The stream never ends, so only the cap can stop the read before the timeout does; a
    // `timeout` result here would mean the checker kept reading past the cap.
    let app = Router::new().fallback(any(|| async {
        let chunks =
            futures::stream::repeat_with(|| Ok::<_, Infallible>(Bytes::from_static(&[b'x'; 1024])));
        Body::from_stream(chunks)
    }));
    let server = Upstream::serve(app).await;
    let endless = integration(
        &http(
            "endless",
            &server.url("/"),
            "max_body_bytes = 10000\ntimeout = \"5s\"",
        ),
        &[],
    );

    let (result, _) = check_once(&endless).await;

    assert_failed(
        &result,
        "bad_response",
        Some(200),
        "response body larger than 10000 bytes",
    );
}

#[tokio::test]
async fn a_body_of_exactly_the_cap_is_accepted() {
    let app = Router::new()
        .route("/sized", any(|| async { vec![b'x'; 1000] }))
        .route(
            "/chunked",
            any(|| async {
                let chunks = futures::stream::iter(
                    (0..4).map(|_| Ok::<_, Infallible>(Bytes::from_static(&[b'x'; 250]))),
                );
                Body::from_stream(chunks)
            }),
        );
    let server = Upstream::serve(app).await;
    let toml = format!(
        "{}{}",
        http("sized", &server.url("/sized"), "max_body_bytes = 1000"),
        http("chunked", &server.url("/chunked"), "max_body_bytes = 1000")
    );
    let all = integrations(&toml, &[]);

    let (sized, _) = check_once(&all[0]).await;
    let (chunked, _) = check_once(&all[1]).await;

    // The cap is the largest body allowed, not the first size refused.
    assert_passed(&sized, 200);
    assert_passed(&chunked, 200);
}

#[tokio::test]
async fn a_head_check_is_not_refused_for_the_length_it_announces() {
    // A HEAD response announces the GET body's length but carries no body, so it must not count
    // against the cap.
    let app = Router::new().fallback(any(|| async {
        ([(CONTENT_LENGTH, "5000000")], Body::empty())
    }));
    let server = Upstream::serve(app).await;
    let head = integration(
        &http(
            "head",
            &server.url("/"),
            "method = \"HEAD\"\nmax_body_bytes = 1000",
        ),
        &[],
    );

    let (result, _) = check_once(&head).await;

    assert_passed(&result, 200);
    assert_eq!(server.requests()[0].method, Method::HEAD);
}

#[tokio::test]
async fn a_redirect_loop_stops_at_max_redirects() {
    let app = Router::new()
        .route(
            "/a",
            any(|| async { redirect(StatusCode::FOUND, "/b".into()) }),
        )
        .route(
            "/b",
            any(|| async { redirect(StatusCode::FOUND, "/a".into()) }),
        );
    let server = Upstream::serve(app).await;
    let looping = integration(
        &http("looping", &server.url("/a"), "max_redirects = 3"),
        &[],
    );

    let (result, _) = check_once(&looping).await;

    assert_failed(&result, "bad_response", Some(302), "more than 3 redirects");
    // The first request plus three followed redirects; the fourth redirect is refused.
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/a", "/b", "/a", "/b"]);
}

#[tokio::test]
async fn a_single_redirect_to_a_healthy_page_succeeds() {
    let app = Router::new()
        .route(
            "/old",
            any(|| async { redirect(StatusCode::FOUND, "/healthy".into()) }),
        )
        .route(
            "/healthy",
            any(|| async { ([(CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#) }),
        );
    let server = Upstream::serve(app).await;
    let moved = integration(
        &http(
            "moved",
            &server.url("/old"),
            r#"conditions = ['status == 200', 'body.status == "ok"']"#,
        ),
        &[],
    );

    let (result, _) = check_once(&moved).await;

    // Conditions apply to the final response, not to the redirect.
    assert_passed(&result, 200);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/old", "/healthy"]);
}

#[tokio::test]
async fn a_303_after_post_becomes_a_get_without_body() {
    let app = Router::new()
        .route("/submit", any(|| async { Redirect::to("/done") }))
        .route("/done", any(|| async { StatusCode::OK }));
    let server = Upstream::serve(app).await;
    let post = integration(
        &http(
            "post",
            &server.url("/submit"),
            "method = \"POST\"\nbody = \"payload\"",
        ),
        &[],
    );

    let (result, _) = check_once(&post).await;

    assert_passed(&result, 200);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (&requests[0].method, requests[0].body.as_slice()),
        (&Method::POST, &b"payload"[..])
    );
    assert_eq!(
        (&requests[1].method, requests[1].body.as_slice()),
        (&Method::GET, &b""[..])
    );
}

#[tokio::test]
async fn a_307_after_post_repeats_the_post_with_its_body() {
    let app = Router::new()
        .route("/submit", any(|| async { Redirect::temporary("/done") }))
        .route("/done", any(|| async { StatusCode::OK }));
    let server = Upstream::serve(app).await;
    let post = integration(
        &http(
            "post",
            &server.url("/submit"),
            "method = \"POST\"\nbody = \"payload\"",
        ),
        &[],
    );

    let (result, _) = check_once(&post).await;

    assert_passed(&result, 200);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path, "/done");
    assert_eq!(
        (&requests[1].method, requests[1].body.as_slice()),
        (&Method::POST, &b"payload"[..])
    );
}

#[tokio::test]
async fn a_head_check_stays_head_across_a_redirect() {
    // Browsers and the Fetch standard only rewrite POST (301/302) or non-GET/HEAD methods (303)
    // into GET; a HEAD check that became a GET would download the whole body it meant to avoid.
    let app = Router::new()
        .route(
            "/old",
            any(|| async { redirect(StatusCode::MOVED_PERMANENTLY, "/new".into()) }),
        )
        .route("/new", any(|| async { StatusCode::OK }));
    let server = Upstream::serve(app).await;
    let head = integration(&http("head", &server.url("/old"), "method = \"HEAD\""), &[]);

    let (result, _) = check_once(&head).await;

    assert_passed(&result, 200);
    let seen: Vec<(Method, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        seen,
        [
            (Method::HEAD, "/old".to_string()),
            (Method::HEAD, "/new".to_string())
        ]
    );
}

#[tokio::test]
async fn header_conditions_find_present_headers_and_report_missing_ones() {
    let server = Upstream::serve(json_reply(StatusCode::OK, r#"{"status":"ok"}"#)).await;
    let toml = format!(
        "{}{}",
        http(
            "typed",
            &server.url("/"),
            r#"conditions = ['header.content-type contains "json"']"#
        ),
        http(
            "missing",
            &server.url("/"),
            r#"conditions = ['header.x-missing == "a"']"#
        )
    );
    let all = integrations(&toml, &[]);

    let (typed, _) = check_once(&all[0]).await;
    let (missing, _) = check_once(&all[1]).await;

    assert_passed(&typed, 200);
    assert_failed(
        &missing,
        "conditions",
        Some(200),
        r#"header.x-missing == "a" failed: header.x-missing not found"#,
    );
}

#[tokio::test]
async fn headers_from_the_environment_are_sent_but_never_printed() {
    const TOKEN: &str = "Bearer s3cr3t-token-value";
    let app = Router::new().fallback(any(|headers: HeaderMap| async move {
        // The server itself insists on the token, so a check that forgot it would fail.
        match headers.get("authorization") {
            Some(value) if value == TOKEN => StatusCode::OK,
            _ => StatusCode::UNAUTHORIZED,
        }
    }));
    let server = Upstream::serve(app).await;
    let api = integration(
        &http(
            "api",
            &server.url("/"),
            "headers = { Authorization = \"env:PATCHBAY_TEST_TOKEN\", X-Plain = \"visible\" }\n\
             conditions = ['status == 200']",
        ),
        &[("PATCHBAY_TEST_TOKEN", TOKEN)],
    );

    let (result, _) = check_once(&api).await;

    assert_passed(&result, 200);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].headers["authorization"], TOKEN);
    assert_eq!(requests[0].headers["x-plain"], "visible");
    // Debug output ends up in logs and panics, so it must name the variable, never its value.
    let printed = format!("{api:?}");
    assert!(!printed.contains("s3cr3t"), "{printed}");
    assert!(printed.contains("env:PATCHBAY_TEST_TOKEN"), "{printed}");
    assert!(printed.contains("visible"), "{printed}");
}

#[tokio::test]
async fn secret_headers_are_not_forwarded_to_another_origin() {
    // A redirect to another origin (here another port, as curl and reqwest define it) must not
    // carry credentials: otherwise any upstream can collect the token by redirecting the check.
    let other = Upstream::serve(Router::new().fallback(any(|| async { StatusCode::OK }))).await;
    let target = other.url("/landing");
    let app = Router::new().route(
        "/go",
        any(move || {
            let target = target.clone();
            async move { redirect(StatusCode::FOUND, target) }
        }),
    );
    let server = Upstream::serve(app).await;
    let api = integration(
        &http(
            "api",
            &server.url("/go"),
            "headers = { Authorization = \"env:PATCHBAY_TEST_TOKEN\", \
             X-Api-Key = \"env:PATCHBAY_TEST_KEY\", Accept = \"application/json\" }",
        ),
        &[
            ("PATCHBAY_TEST_TOKEN", "Bearer s3cr3t"),
            ("PATCHBAY_TEST_KEY", "k3y"),
        ],
    );

    let (result, _) = check_once(&api).await;

    assert_passed(&result, 200);
    let first = &server.requests()[0];
    assert_eq!(first.headers["authorization"], "Bearer s3cr3t");
    assert_eq!(first.headers["x-api-key"], "k3y");
    let landed = other.requests();
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].path, "/landing");
    assert_eq!(landed[0].headers.get("authorization"), None);
    assert_eq!(landed[0].headers.get("x-api-key"), None);
    // Headers that carry no secret still describe the request and keep being sent.
    assert_eq!(landed[0].headers["accept"], "application/json");
}

/// A server whose `/go` redirects to the cloud metadata address.
fn metadata_redirect_app() -> Router {
    Router::new().route(
        "/go",
        any(|| async { redirect(StatusCode::FOUND, "http://169.254.169.254/".into()) }),
    )
}

#[tokio::test]
async fn a_redirect_to_the_metadata_address_is_refused() {
    let server = Upstream::serve(metadata_redirect_app()).await;
    let api = integration(&http("api", &server.url("/go"), "timeout = \"300ms\""), &[]);

    let (result, _) = check_once(&api).await;

    assert_failed(
        &result,
        "bad_response",
        Some(302),
        "redirect to 169.254.169.254, a link-local or metadata address \
         (set allow_private = true to allow)",
    );
    // The refusal happens before any further request, and the check does not retry.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn allow_private_lets_a_redirect_to_the_metadata_address_through() {
    let server = Upstream::serve(metadata_redirect_app()).await;
    let api = integration(
        &http(
            "api",
            &server.url("/go"),
            "timeout = \"300ms\"\nallow_private = true",
        ),
        &[],
    );
    assert!(spec(&api).allow_private);

    let (result, elapsed) = check_once(&api).await;

    // What happens at 169.254.169.254 depends on the machine (no route, a timeout, or a sandbox
    // that answers in its place); what matters is that the guard let the hop be attempted.
    let message = result.message.clone().unwrap_or_default();
    assert!(!message.contains("link-local"), "{result:?}");
    assert!(!message.contains("metadata"), "{result:?}");
    assert_ne!(
        result.error_kind.as_deref(),
        Some("bad_response"),
        "{result:?}"
    );
    assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn sequential_checks_reuse_one_keep_alive_connection() {
    let server = Upstream::serve(json_reply(StatusCode::OK, r#"{"status":"ok"}"#)).await;
    let api = integration(
        &http(
            "api",
            &server.url("/health"),
            "conditions = ['status == 200']",
        ),
        &[],
    );
    let checker = HttpChecker::new();

    for round in 0..50 {
        let result = checker.check(&api, spec(&api)).await;
        assert!(result.success, "check {round}: {result:?}");
    }

    let requests = server.requests();
    assert_eq!(requests.len(), 50);
    // Each new TCP connection has its own client port, so distinct peers count connections.
    let connections: HashSet<SocketAddr> = requests.iter().map(|r| r.peer).collect();
    assert!(
        connections.len() <= 2,
        "50 checks opened {} connections",
        connections.len()
    );
}
