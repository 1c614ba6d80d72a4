//! HTTP checks: one request per check, over pooled keep-alive connections, with redirects
//! followed by hand (so each hop passes the SSRF guard and the per-integration limit), the body
//! read up to a cap, and the conditions evaluated on what came back.
//!
//! Health checks are deliberately not retried: one failed check is one failure for the state
//! machine, which is where thresholds belong.
//!
//! TLS: certificates are verified against the built-in public roots (webpki-roots) and, for an
//! integration with a `ca_file`, that file's CAs as well; a failed handshake is reported as a
//! `tls` failure whose reason says what is wrong with the certificate. The server's certificate
//! is read only for integrations whose conditions ask for it (`cert.expires_in`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use reqwest::{Client, ClientBuilder, StatusCode, Url, redirect};
use tokio::time::Instant;

use crate::check::condition::{self, Observation, PeerCertificate};
use crate::check::{ssrf, tls};
use crate::config::{CaFile, HeaderValue, HttpCheck, Integration};
use crate::model::CheckResult;

/// The shared HTTP clients, each with its own connection pool, built on first use: one per
/// combination of TLS verification, SSRF guard and certificate reading, and one per `ca_file`
/// (with the same switches), so checks that trust the same file share connections.
///
/// Reading the certificate (reqwest's `tls_info`) is a switch of its own because it is not free:
/// hyper copies the server's certificate into every response's extensions (an allocation and a
/// copy of a kilobyte or two per check), and the checker then parses it. Measured on a release
/// build over loopback keep-alive, a check took 27 µs with `cert.expires_in` against 23 µs
/// without; only integrations with a `cert.` condition pay that, in a pool of their own.
#[derive(Default)]
pub struct HttpChecker {
    clients: [OnceLock<Client>; 8],
    /// Clients that also trust a `ca_file`.
    ca_clients: Mutex<HashMap<CaClientKey, CaClient>>,
}

/// A client that trusts a `ca_file`, with the certificates it was built from: a reload that
/// changes the file's contents replaces the client rather than keeping the old trust.
struct CaClient {
    certificates: Arc<[Vec<u8>]>,
    client: Client,
}

/// What a `ca_file` client is shared by: the file and the switches a client is built with.
/// Verification is always on with a `ca_file` (the config refuses `tls_verify = false` there).
#[derive(Clone, PartialEq, Eq, Hash)]
struct CaClientKey {
    path: PathBuf,
    allow_private: bool,
    read_certificate: bool,
}

/// What came back from the final request of a check.
struct Response {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    certificate: PeerCertificate,
}

/// Why a check failed before conditions could be evaluated.
struct Failure {
    kind: &'static str,
    message: String,
    status: Option<u16>,
}

impl HttpChecker {
    /// Clients are created lazily; this only allocates the slots.
    pub fn new() -> Self {
        Self::default()
    }

    /// The client for a check: shared by every check with the same trust and switches.
    fn client(&self, spec: &HttpCheck, read_certificate: bool) -> Result<Client, Failure> {
        let Some(ca_file) = &spec.ca_file else {
            let index = usize::from(spec.tls_verify) * 4
                + usize::from(spec.allow_private) * 2
                + usize::from(read_certificate);
            return Ok(self.clients[index]
                .get_or_init(|| {
                    builder(spec, read_certificate)
                        .build()
                        .expect("the HTTP client configuration is valid")
                })
                .clone());
        };
        let key = CaClientKey {
            path: ca_file.path.clone(),
            allow_private: spec.allow_private,
            read_certificate,
        };
        let mut clients = self
            .ca_clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cached) = clients.get(&key)
            && cached.certificates == ca_file.certificates
        {
            return Ok(cached.client.clone());
        }
        let client = ca_client(spec, ca_file, read_certificate)?;
        clients.insert(
            key,
            CaClient {
                certificates: ca_file.certificates.clone(),
                client: client.clone(),
            },
        );
        Ok(client)
    }

    /// Runs one check of `integration` (an HTTP one) and returns its result; never panics and
    /// never takes longer than the integration's timeout.
    pub async fn check(&self, integration: &Integration, spec: &HttpCheck) -> CheckResult {
        let at = crate::model::now();
        let started = Instant::now();
        let read_certificate = integration
            .conditions
            .iter()
            .any(condition::Condition::uses_certificate);
        let outcome = tokio::time::timeout(
            integration.timeout,
            self.exchange(spec, read_certificate, at),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Failure {
                kind: "timeout",
                message: format!(
                    "no complete response within {}",
                    crate::duration::compact(integration.timeout)
                ),
                status: None,
            })
        });
        let latency = started.elapsed();
        result_of(integration, at, latency, outcome)
    }

    async fn exchange(
        &self,
        spec: &HttpCheck,
        read_certificate: bool,
        at: DateTime<Utc>,
    ) -> Result<Response, Failure> {
        let client = self.client(spec, read_certificate)?;
        let mut url = spec.url.clone();
        let mut method = spec.method.clone();
        let mut body = spec.body.clone();
        let mut redirects = 0;
        // Once a redirect leaves the configured origin, credentials stay behind for good, as
        // curl and browsers do: an upstream must not be able to collect a token by redirecting.
        let mut crossed_origin = false;
        loop {
            crossed_origin |= url.origin() != spec.url.origin();
            let mut request = client.request(method.clone(), url.clone());
            for (name, value) in &spec.headers {
                if crossed_origin && is_credential(name, value) {
                    continue;
                }
                request = request.header(name, value.expose());
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let response = request.send().await.map_err(transport_failure)?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                if redirects >= spec.max_redirects {
                    return Err(Failure {
                        kind: "bad_response",
                        message: format!("more than {} redirects", spec.max_redirects),
                        status: Some(status.as_u16()),
                    });
                }
                redirects += 1;
                url = next_url(&url, location, spec.allow_private).map_err(|message| Failure {
                    kind: "bad_response",
                    message,
                    status: Some(status.as_u16()),
                })?;
                // As the Fetch standard says: 301/302 turn a POST into a GET, 303 turns anything
                // but HEAD into a GET; 307/308 repeat the request as it was.
                let to_get = match status {
                    StatusCode::SEE_OTHER => method != reqwest::Method::HEAD,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => {
                        method == reqwest::Method::POST
                    }
                    _ => false,
                };
                if to_get {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            let headers = response.headers().clone();
            let certificate = if read_certificate {
                peer_certificate(&response, at)
            } else {
                PeerCertificate::None
            };
            let bytes = read_capped(response, spec.max_body_bytes).await?;
            return Ok(Response {
                status,
                headers,
                body: bytes,
                certificate,
            });
        }
    }
}

/// The settings every check client shares, with the check's TLS and SSRF switches.
fn builder(spec: &HttpCheck, read_certificate: bool) -> ClientBuilder {
    let mut builder = Client::builder()
        .redirect(redirect::Policy::none())
        .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .danger_accept_invalid_certs(!spec.tls_verify)
        .tls_info(read_certificate);
    if !spec.allow_private {
        builder = builder.dns_resolver(ssrf::resolver());
    }
    builder
}

/// A client that trusts a `ca_file`'s CAs on top of the built-in public roots, so a host that
/// moves from a private CA to a public one keeps passing. The config loader has already checked
/// that rustls accepts every certificate, so this fails only if that check and reqwest disagree.
fn ca_client(
    spec: &HttpCheck,
    ca_file: &CaFile,
    read_certificate: bool,
) -> Result<Client, Failure> {
    let setup_failed = |err: reqwest::Error| Failure {
        kind: "tls",
        message: format!(
            "TLS setup failed: the CA certificates of {} are not usable: {}",
            ca_file.path.display(),
            err.without_url()
        ),
        status: None,
    };
    let mut builder = builder(spec, read_certificate);
    for der in ca_file.certificates.iter() {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_der(der).map_err(setup_failed)?);
    }
    builder.build().map_err(setup_failed)
}

/// The certificate of the connection that carried `response`, as the conditions see it.
fn peer_certificate(response: &reqwest::Response, at: DateTime<Utc>) -> PeerCertificate {
    // reqwest attaches `TlsInfo` only to responses that came over TLS.
    let Some(info) = response.extensions().get::<reqwest::tls::TlsInfo>() else {
        return PeerCertificate::None;
    };
    match info.peer_certificate().map(tls::not_after) {
        Some(Ok(not_after)) => PeerCertificate::Leaf {
            not_after,
            checked_at: at,
        },
        Some(Err(reason)) => PeerCertificate::Unreadable(reason),
        None => PeerCertificate::Unreadable("the server sent no certificate".into()),
    }
}

/// Whether a header carries credentials: any value read from the environment, and the
/// standard credential headers.
fn is_credential(name: &str, value: &HeaderValue) -> bool {
    matches!(value, HeaderValue::Env { .. })
        || ["authorization", "proxy-authorization", "cookie"]
            .iter()
            .any(|credential| name.eq_ignore_ascii_case(credential))
}

/// Resolves a `Location` against the current URL and applies the guard to literal addresses.
fn next_url(
    current: &Url,
    location: &reqwest::header::HeaderValue,
    allow_private: bool,
) -> Result<Url, String> {
    let location = location
        .to_str()
        .map_err(|_| "redirect Location is not text".to_string())?;
    let next = current
        .join(location)
        .map_err(|err| format!("redirect to an invalid URL: {err}"))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(format!("redirect to a {} URL", next.scheme()));
    }
    if !allow_private {
        let ip = match next.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = ip
            && ssrf::is_blocked(ip)
        {
            return Err(format!(
                "redirect to {ip}, a link-local or metadata address (set allow_private = true to allow)"
            ));
        }
    }
    Ok(next)
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, Failure> {
    let status = Some(response.status().as_u16());
    let too_large = || Failure {
        kind: "bad_response",
        message: format!("response body larger than {cap} bytes"),
        status,
    };
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport_failure(err: reqwest::Error) -> Failure {
    // A refused certificate or a failed handshake gets its own kind and a reason in words; the
    // raw rustls text ("invalid peer certificate: UnknownIssuer") is for developers.
    if let Some(message) = tls::handshake_failure(&err) {
        return Failure {
            kind: "tls",
            message,
            status: None,
        };
    }
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_decode() || err.is_body() {
        "bad_response"
    } else {
        "connect"
    };
    // The error's Display carries the URL; the source chain has the cause without it, and the
    // URL may hold a token in its query string.
    let mut cause = std::error::Error::source(&err);
    let mut message = String::new();
    while let Some(inner) = cause {
        message = inner.to_string();
        cause = inner.source();
    }
    if message.is_empty() {
        message = err.without_url().to_string();
    }
    Failure {
        kind,
        message: format!("{kind}: {message}"),
        status: None,
    }
}

fn result_of(
    integration: &Integration,
    at: DateTime<Utc>,
    latency: Duration,
    outcome: Result<Response, Failure>,
) -> CheckResult {
    let latency_ms = latency.as_secs_f64() * 1000.0;
    match outcome {
        Ok(Response {
            status,
            headers,
            body,
            certificate,
        }) => {
            let observation = Observation::new(status.as_u16(), latency, &headers, &body)
                .with_certificate(certificate);
            let failures = if integration.conditions.is_empty() {
                // Without conditions, any final status below 400 counts as healthy.
                if status.as_u16() < 400 {
                    Vec::new()
                } else {
                    vec![format!(
                        "status {} is an error (no conditions configured)",
                        status.as_u16()
                    )]
                }
            } else {
                condition::evaluate_all(&integration.conditions, &observation)
            };
            let success = failures.is_empty();
            CheckResult {
                integration: integration.name.clone(),
                at,
                success,
                latency_ms,
                status: Some(status.as_u16()),
                error_kind: (!success).then(|| "conditions".to_string()),
                message: (!success).then(|| failures.join("; ")),
            }
        }
        Err(failure) => CheckResult {
            integration: integration.name.clone(),
            at,
            success: false,
            latency_ms,
            status: failure.status,
            error_kind: Some(failure.kind.to_string()),
            message: Some(failure.message),
        },
    }
}
