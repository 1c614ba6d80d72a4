//! HTTPS checks against a real TLS upstream on 127.0.0.1 (`common::tls_upstream`): certificate
//! verification and the reasons it gives, `tls_verify = false`, a private CA trusted through
//! `ca_file`, expired certificates, and the `cert.expires_in` condition.
//!
//! Every integration is loaded from a config file written into a temporary directory, through
//! `patchbay::config::load`, so `ca_file` paths resolve the way they do for a user; checks run
//! through the real `HttpChecker`, and one test drives the engine to a DOWN transition.

mod common;

use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::response::Redirect;
use axum::routing::any;
use chrono::{DateTime, TimeDelta, Utc};
use common::tls_upstream::{Leaf, TestCa, TlsUpstream};
use common::upstream::Upstream;
use patchbay::config::{self, CheckSpec, Environment, HttpCheck, Integration};
use patchbay::model::{CheckResult, State};
use patchbay::monitor::http_check::HttpChecker;
use patchbay::monitor::{Engine, EngineParts};
use patchbay::store::Store;

/// What a check against a certificate from an unknown CA reports.
const UNKNOWN_ISSUER: &str = "TLS certificate not trusted: unknown issuer (self-signed or from a \
                              private CA; set ca_file to trust that CA)";

/// Writes `toml` as `dir/patchbay.toml`, loads it through the real loader and returns its
/// integrations, failing the test with the loader's report when the file is rejected.
fn load(dir: &Path, toml: &str) -> Vec<Integration> {
    let path = dir.join("patchbay.toml");
    std::fs::write(&path, toml).unwrap();
    match config::load(&path, true, &Environment::default()) {
        Ok(config) => config.integrations,
        Err(errors) => panic!("the test config is invalid:\n{errors}"),
    }
}

/// Loads a config of one integration named `api` that checks `url`, with `extra` keys.
fn integration(dir: &Path, url: &str, extra: &str) -> Integration {
    let mut all = load(
        dir,
        &format!("[[integration]]\nname = \"api\"\nurl = \"{url}\"\n{extra}\n"),
    );
    assert_eq!(all.len(), 1);
    all.remove(0)
}

/// Runs one check of `integration` with `checker`.
async fn check(checker: &HttpChecker, integration: &Integration) -> CheckResult {
    checker.check(integration, spec(integration)).await
}

/// The HTTP part of an integration.
fn spec(integration: &Integration) -> &HttpCheck {
    let CheckSpec::Http(spec) = &integration.check else {
        panic!("an http check")
    };
    spec
}

/// Asserts a check passed with a 200.
#[track_caller]
fn assert_up(result: &CheckResult) {
    assert!(result.success, "expected a success, got {result:?}");
    assert_eq!(result.status, Some(200), "{result:?}");
    assert_eq!(result.message, None, "{result:?}");
}

/// Asserts a check failed with this kind and exactly this reason.
#[track_caller]
fn assert_down(result: &CheckResult, kind: &str, message: &str) {
    assert!(!result.success, "expected a failure, got {result:?}");
    assert_eq!(result.error_kind.as_deref(), Some(kind), "{result:?}");
    assert_eq!(result.message.as_deref(), Some(message), "{result:?}");
}

/// A certificate date as reasons show it.
fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("patchbay test CA");
    let signed = TlsUpstream::start(&ca.leaf(TimeDelta::days(90))).await;
    let self_signed = TlsUpstream::start(&Leaf::self_signed(TimeDelta::days(90))).await;
    let checker = HttpChecker::new();

    for upstream in [&signed, &self_signed] {
        let api = integration(dir.path(), &upstream.url("/health"), "");
        assert!(spec(&api).tls_verify, "verification is on by default");
        let result = check(&checker, &api).await;
        assert_down(&result, "tls", UNKNOWN_ISSUER);
        assert_eq!(result.status, None);
        // The client refused the handshake, so no request was ever served.
        assert_eq!(upstream.handshakes(), 0);
    }
}

#[tokio::test]
async fn tls_verify_false_accepts_any_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("patchbay test CA");
    let checker = HttpChecker::new();
    for leaf in [
        ca.leaf(TimeDelta::days(90)),
        Leaf::self_signed(TimeDelta::days(90)),
        ca.expired_leaf(TimeDelta::days(3)),
    ] {
        let upstream = TlsUpstream::start(&leaf).await;
        let api = integration(dir.path(), &upstream.url("/health"), "tls_verify = false");
        assert_up(&check(&checker, &api).await);
        assert_eq!(upstream.handshakes(), 1);
    }
}

#[tokio::test]
async fn ca_file_trusts_a_private_ca_with_verification_on() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("patchbay test CA");
    ca.write_pem(dir.path(), "ca.pem");
    TestCa::new("some other CA").write_pem(dir.path(), "other-ca.pem");
    let upstream = TlsUpstream::start(&ca.leaf(TimeDelta::days(90))).await;
    let checker = HttpChecker::new();

    // The path is relative, so it is taken from the config file's directory (the temporary
    // one), not from the working directory the tests run in.
    let trusted = integration(dir.path(), &upstream.url("/health"), "ca_file = \"ca.pem\"");
    let ca_file = spec(&trusted).ca_file.as_ref().expect("ca_file is set");
    assert_eq!(ca_file.path, dir.path().join("ca.pem"));
    assert_eq!(ca_file.certificates.len(), 1);
    assert!(spec(&trusted).tls_verify);
    assert_up(&check(&checker, &trusted).await);
    // By name as well as by address: the certificate names both.
    let by_name = integration(
        dir.path(),
        &upstream.localhost_url("/health"),
        "ca_file = \"ca.pem\"",
    );
    assert_up(&check(&checker, &by_name).await);

    // The same certificate without ca_file, or with another CA's file, is refused.
    let untrusted = integration(dir.path(), &upstream.url("/health"), "");
    assert_down(&check(&checker, &untrusted).await, "tls", UNKNOWN_ISSUER);
    let other = integration(
        dir.path(),
        &upstream.url("/health"),
        "ca_file = \"other-ca.pem\"",
    );
    assert_down(&check(&checker, &other).await, "tls", UNKNOWN_ISSUER);
}

#[tokio::test]
async fn a_bundle_of_several_cas_trusts_each_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestCa::new("first CA");
    let second = TestCa::new("second CA");
    std::fs::write(
        dir.path().join("bundle.pem"),
        format!("# Our CAs.\n{}\n{}", first.pem(), second.pem()),
    )
    .unwrap();
    let checker = HttpChecker::new();
    for ca in [&first, &second] {
        let upstream = TlsUpstream::start(&ca.leaf(TimeDelta::days(90))).await;
        let api = integration(
            dir.path(),
            &upstream.url("/health"),
            "ca_file = \"bundle.pem\"",
        );
        assert_eq!(spec(&api).ca_file.as_ref().unwrap().certificates.len(), 2);
        assert_up(&check(&checker, &api).await);
    }
}

#[tokio::test]
async fn an_expired_certificate_is_down_naming_the_date() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("patchbay test CA");
    ca.write_pem(dir.path(), "ca.pem");
    let leaf = ca.expired_leaf(TimeDelta::days(3));
    let upstream = TlsUpstream::start(&leaf).await;
    let api = integration(dir.path(), &upstream.url("/health"), "ca_file = \"ca.pem\"");

    let result = check(&HttpChecker::new(), &api).await;

    // Expired three days ago to the second, checked a moment later: "3 days ago" whatever the
    // time of day.
    assert_down(
        &result,
        "tls",
        &format!(
            "TLS certificate expired on {} (3 days ago)",
            date(leaf.not_after)
        ),
    );
}

#[tokio::test]
async fn cert_expires_in_passes_with_90_days_left_and_fails_with_5() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("patchbay test CA");
    ca.write_pem(dir.path(), "ca.pem");
    let long = TlsUpstream::start(&ca.leaf(TimeDelta::days(90))).await;
    // Five and a half days, so the whole days left are 5 at any moment of the test.
    let short_leaf = ca.leaf(TimeDelta::days(5) + TimeDelta::hours(12));
    let short = TlsUpstream::start(&short_leaf).await;
    let checker = HttpChecker::new();
    let keys = "ca_file = \"ca.pem\"\nconditions = [\"status == 200\", \"cert.expires_in > 14d\"]";

    assert_up(&check(&checker, &integration(dir.path(), &long.url("/"), keys)).await);
    let result = check(&checker, &integration(dir.path(), &short.url("/"), keys)).await;
    assert_down(
        &result,
        "conditions",
        &format!(
            "cert.expires_in > 14d failed: 5 days left (the certificate expires on {})",
            date(short_leaf.not_after)
        ),
    );
    // The response itself was fine: the certificate is the only complaint.
    assert_eq!(result.status, Some(200));
}

#[tokio::test]
async fn cert_expires_in_reads_the_certificate_without_verification_too() {
    let dir = tempfile::tempdir().unwrap();
    let long = TlsUpstream::start(&Leaf::self_signed(TimeDelta::days(90))).await;
    let short_leaf = Leaf::self_signed(TimeDelta::days(5) + TimeDelta::hours(12));
    let short = TlsUpstream::start(&short_leaf).await;
    let expired_leaf = TestCa::new("gone CA").expired_leaf(TimeDelta::days(3));
    let expired = TlsUpstream::start(&expired_leaf).await;
    let checker = HttpChecker::new();
    let keys = "tls_verify = false\nconditions = [\"cert.expires_in > 14d\"]";

    assert_up(&check(&checker, &integration(dir.path(), &long.url("/"), keys)).await);
    assert_down(
        &check(&checker, &integration(dir.path(), &short.url("/"), keys)).await,
        "conditions",
        &format!(
            "cert.expires_in > 14d failed: 5 days left (the certificate expires on {})",
            date(short_leaf.not_after)
        ),
    );
    // Only without verification does a check get as far as an expired certificate's
    // conditions.
    assert_down(
        &check(&checker, &integration(dir.path(), &expired.url("/"), keys)).await,
        "conditions",
        &format!(
            "cert.expires_in > 14d failed: the certificate expired on {} (3 days ago)",
            date(expired_leaf.not_after)
        ),
    );
}

#[tokio::test]
async fn cert_expires_in_fails_when_a_redirect_leads_to_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Upstream::start().await;
    let target = plain.url("/health");
    let redirecting = TlsUpstream::serve(
        &Leaf::self_signed(TimeDelta::days(90)),
        Router::new().fallback(any(move || {
            let target = target.clone();
            async move { Redirect::temporary(&target) }
        })),
    )
    .await;
    let api = integration(
        dir.path(),
        &redirecting.url("/"),
        "tls_verify = false\nconditions = [\"status == 200\", \"cert.expires_in > 14d\"]",
    );

    let result = check(&HttpChecker::new(), &api).await;

    assert_down(
        &result,
        "conditions",
        "cert.expires_in > 14d failed: no TLS certificate: the final URL is not https",
    );
    assert_eq!(
        plain.hits(),
        1,
        "the redirect was followed to the plain upstream"
    );
}

#[tokio::test]
async fn an_https_url_on_a_plain_http_port_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Upstream::start().await;
    let url = plain.url("/health").replacen("http://", "https://", 1);
    let api = integration(dir.path(), &url, "");

    assert_down(
        &check(&HttpChecker::new(), &api).await,
        "tls",
        "TLS handshake failed: the server did not answer in TLS (is this port plain http?)",
    );
}

#[tokio::test]
async fn checks_that_trust_the_same_ca_file_share_one_client() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("patchbay test CA");
    ca.write_pem(dir.path(), "ca.pem");
    let upstream = TlsUpstream::start(&ca.leaf(TimeDelta::days(90))).await;
    let url = upstream.url("/health");
    let both = load(
        dir.path(),
        &format!(
            "[[integration]]\nname = \"a\"\nurl = \"{url}\"\nca_file = \"ca.pem\"\n\
             [[integration]]\nname = \"b\"\nurl = \"{url}\"\nca_file = \"ca.pem\"\n"
        ),
    );
    let checker = HttpChecker::new();

    for integration in [&both[0], &both[1], &both[0], &both[1]] {
        assert_up(&check(&checker, integration).await);
    }

    // One client per file keeps one pooled connection: a client per check, or per
    // integration, would have opened a connection (and a handshake) each time.
    assert_eq!(upstream.handshakes(), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_takes_the_integration_down_through_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("patchbay test CA");
    let upstream = TlsUpstream::start(&ca.leaf(TimeDelta::days(90))).await;
    let api = integration(
        dir.path(),
        &upstream.url("/health"),
        "interval = \"1m\"\nfailure_threshold = 1",
    );
    let store = Store::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .unwrap();
    let config = config::parse("", "test.toml", None, &Environment::default()).unwrap();
    let (parts, _writer) = EngineParts::from_config(store, &config);
    let engine = Engine::start(parts).await.unwrap();
    // Subscribed before the integration exists, so even a scheduled check that beats the
    // re-check cannot publish its transition unseen.
    let mut events = engine.subscribe();
    engine.apply(vec![api]).await;

    let result = engine.recheck("api").await.unwrap();
    assert_down(&result, "tls", UNKNOWN_ISSUER);
    let down = tokio::time::timeout(Duration::from_secs(20), events.recv())
        .await
        .expect("a transition within 20 s")
        .unwrap();

    assert_eq!((down.integration.as_str(), down.to), ("api", State::Down));
    assert!(down.reason.ends_with(UNKNOWN_ISSUER), "{}", down.reason);
    assert_eq!(engine.state("api").unwrap().state, State::Down);
    engine.shutdown(Duration::from_secs(1)).await;
}
