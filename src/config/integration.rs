//! `[[integration]]` tables and the `[defaults]` they fall back on: the typed settings of one
//! monitored integration ([`Integration`], its [`HttpCheck`]) and how each part of its table is
//! read and checked. Reading one integration is a sequence of parts, each in its own function:
//! the kind, the schedule and thresholds, what is requested (URL, method, headers), the
//! conditions, the degraded limits, the alerting keys, and the HTTP options (body, TLS, redirect
//! and size limits). Dependencies are checked once every integration is read, because one may
//! name another defined later in the file.
//!
//! The parts are read in the order the errors of one line are listed (errors are sorted by line
//! only), so keep that order when adding a key.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use super::error::Diagnostics;
use super::raw::{Table, read_name};
use super::sync::NotionToken;
use super::{Environment, alerts};
use crate::check::condition::Condition;
use crate::check::{ssrf, tls};
use crate::duration;
use crate::model::{Severity, Snowflake};
use crate::secret::Secret;
use crate::suggest;

/// One monitored integration.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    /// Unique name, `[a-z0-9-_]`.
    pub name: String,
    /// What is checked and how.
    pub check: CheckSpec,
    /// Time between checks.
    pub interval: Duration,
    /// Longest one check may take.
    pub timeout: Duration,
    /// Failures in a row before DOWN.
    pub failure_threshold: u32,
    /// Successes in a row before UP again.
    pub success_threshold: u32,
    /// Conditions every response must meet.
    pub conditions: Vec<Condition>,
    /// Limits that make a passing integration DEGRADED.
    pub degraded: Option<DegradedLimits>,
    /// Free-form labels for routing and filtering.
    pub tags: Vec<String>,
    /// Integrations this one depends on.
    pub depends_on: Vec<String>,
    /// Disabled integrations are PAUSED and not checked.
    pub enabled: bool,
    /// The severity of every alert about this integration, DOWN and DEGRADED alike; `None`
    /// keeps the defaults (see [`Integration::alert_severity`]).
    pub severity: Option<Severity>,
    /// The channel for this integration's alerts, overriding `[[alerts.route]]` and
    /// `[alerts].channel`.
    pub channel: Option<Snowflake>,
}

/// What a check does, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckSpec {
    /// An HTTP request.
    Http(HttpCheck),
    /// Notion's API, through patchbay's Notion client (`GET /v1/users/me` with the token).
    Notion(NotionCheck),
}

impl CheckSpec {
    /// The `kind` as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Http(_) => "http",
            CheckSpec::Notion(_) => "notion",
        }
    }
}

/// A check of Notion's API with a token: is the token accepted, and how fast does Notion
/// answer. It spends the token's quota like the sync jobs that share it.
#[derive(Debug, Clone, PartialEq)]
pub struct NotionCheck {
    /// The token checked.
    pub token: NotionToken,
}

/// The keys that only an `http` integration takes.
const HTTP_ONLY_KEYS: &[&str] = &[
    "url",
    "method",
    "headers",
    "body",
    "conditions",
    "tls_verify",
    "ca_file",
    "max_redirects",
    "max_body_bytes",
    "allow_private",
];

/// An HTTP check.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// The URL requested.
    pub url: Url,
    /// The request method.
    pub method: reqwest::Method,
    /// Request headers; values from `env:` references are secrets.
    pub headers: Vec<(String, HeaderValue)>,
    /// Optional request body.
    pub body: Option<String>,
    /// Verify TLS certificates (on by default).
    pub tls_verify: bool,
    /// CA certificates trusted for this integration besides the built-in public roots.
    pub ca_file: Option<CaFile>,
    /// Most redirects followed.
    pub max_redirects: usize,
    /// Largest body read; a larger one fails the check.
    pub max_body_bytes: usize,
    /// Allow link-local and cloud metadata addresses.
    pub allow_private: bool,
}

/// `ca_file`: a PEM file of CA certificates an integration trusts besides the public roots, for
/// hosts whose certificates come from a private CA. Read and checked when the config loads (and
/// so again on every reload); checks use what was read then.
#[derive(Clone, PartialEq, Eq)]
pub struct CaFile {
    /// The file, taken from the config file's directory when the config gave a relative path.
    pub path: PathBuf,
    /// Its certificates, DER-encoded, in file order; at least one.
    pub certificates: Arc<[Vec<u8>]>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The certificates' bytes say nothing to a reader; how many there are does.
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

/// A header value: written in the file, or read from the environment (`env:NAME`).
#[derive(Clone, PartialEq)]
pub enum HeaderValue {
    /// A value written in the config file.
    Plain(String),
    /// A value read from the named environment variable.
    Env { variable: String, value: Secret },
}

impl HeaderValue {
    /// The value to send.
    pub fn expose(&self) -> &str {
        match self {
            HeaderValue::Plain(value) => value,
            HeaderValue::Env { value, .. } => value.expose(),
        }
    }
}

impl std::fmt::Debug for HeaderValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderValue::Plain(value) => write!(f, "{value:?}"),
            HeaderValue::Env { variable, .. } => write!(f, "env:{variable}"),
        }
    }
}

/// `degraded = { latency_p95 = "500ms", error_rate = 0.1, window = "10m" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct DegradedLimits {
    /// Degraded when the p95 latency over the window exceeds this.
    pub latency_p95: Option<Duration>,
    /// Degraded when the share of failed checks over the window exceeds this (0..1).
    pub error_rate: Option<f64>,
    /// The window both are measured over.
    pub window: Duration,
}

pub(super) const DEFAULTS_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "failure_threshold",
    "success_threshold",
    "max_body_bytes",
    "max_redirects",
];
pub(super) const INTEGRATION_KEYS: &[&str] = &[
    "name",
    "kind",
    "url",
    "method",
    "headers",
    "body",
    "conditions",
    "degraded",
    "tags",
    "depends_on",
    "enabled",
    "interval",
    "timeout",
    "failure_threshold",
    "success_threshold",
    "tls_verify",
    "ca_file",
    "max_redirects",
    "max_body_bytes",
    "allow_private",
    "severity",
    "channel",
    "token",
];
pub(super) const DEGRADED_KEYS: &[&str] = &["latency_p95", "error_rate", "window"];
/// The most redirects a check may follow.
const MAX_REDIRECTS: usize = 20;
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Per-integration defaults from `[defaults]`.
pub(super) struct Defaults {
    interval: Duration,
    timeout: Duration,
    failure_threshold: u32,
    success_threshold: u32,
    max_body_bytes: usize,
    max_redirects: usize,
}

/// Reads `[defaults]`, the settings an integration takes when its table does not set them.
pub(super) fn read_defaults(root: &Table<'_, '_>, d: &mut Diagnostics) -> Defaults {
    let mut defaults = Defaults {
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        failure_threshold: 3,
        success_threshold: 2,
        max_body_bytes: 1024 * 1024,
        max_redirects: 5,
    };
    if let Some(table) = root.table(d, "defaults") {
        table.check_keys(d, DEFAULTS_KEYS);
        if let Some((interval, _)) = table.duration(d, "interval") {
            defaults.interval = interval;
        }
        if let Some((timeout, _)) = table.duration(d, "timeout") {
            defaults.timeout = timeout;
        }
        if let Some(threshold) = table.positive(d, "failure_threshold") {
            defaults.failure_threshold = threshold;
        }
        if let Some(threshold) = table.positive(d, "success_threshold") {
            defaults.success_threshold = threshold;
        }
        if let Some(bytes) = table.positive(d, "max_body_bytes") {
            defaults.max_body_bytes = bytes as usize;
        }
        if let Some(redirects) = table.at_most(d, "max_redirects", MAX_REDIRECTS) {
            defaults.max_redirects = redirects;
        }
    }
    defaults
}

/// Reads every `[[integration]]` table, then checks the dependencies between them.
pub(super) fn read_integrations(
    root: &Table<'_, '_>,
    defaults: &Defaults,
    d: &mut Diagnostics,
    env: &Environment,
    base: &Path,
) -> Vec<Integration> {
    let mut integrations = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut dependencies = Vec::new();
    for (mut table, start) in root.tables(d, "integration") {
        let Some(name) = read_name(
            &table,
            d,
            start,
            ("integration", "integration"),
            &mut names,
            INTEGRATION_KEYS,
        ) else {
            continue;
        };
        // From here on errors name the integration rather than its index: users know names.
        table.path = format!("integration.{name}");
        table.check_keys(d, INTEGRATION_KEYS);
        if let Some(integration) = read_integration(&table, name, start, defaults, d, env, base) {
            dependencies.push((
                integration.name.clone(),
                table.get("depends_on").map(|v| v.span().start),
            ));
            integrations.push(integration);
        }
    }
    check_dependencies(&integrations, &dependencies, &names, d);
    integrations
}

/// Reports each `depends_on` entry that names no integration of the file, or the integration
/// itself; `dependencies` holds where each integration's `depends_on` is written.
fn check_dependencies(
    integrations: &[Integration],
    dependencies: &[(String, Option<usize>)],
    names: &HashSet<String>,
    d: &mut Diagnostics,
) {
    // Sorted, so that a tie between two close names is broken the same way on every run.
    let mut candidates: Vec<&str> = names.iter().map(String::as_str).collect();
    candidates.sort_unstable();
    for integration in integrations {
        let at = dependencies
            .iter()
            .find(|(name, _)| name == &integration.name)
            .and_then(|(_, at)| *at);
        for dependency in &integration.depends_on {
            if !names.contains(dependency) {
                let fix = match suggest::closest(dependency, &candidates) {
                    Some(close) => format!("did you mean {close:?}?"),
                    None => "name an integration defined in this file".into(),
                };
                d.error(
                    at,
                    format!("integration.{}.depends_on", integration.name),
                    format!("unknown integration {dependency:?}"),
                    Some(fix),
                );
            } else if dependency == &integration.name {
                d.error(
                    at,
                    format!("integration.{}.depends_on", integration.name),
                    "an integration cannot depend on itself",
                    None,
                );
            }
        }
    }
}

/// Reads one `[[integration]]` table, whose name was read and checked already, into an
/// [`Integration`]: `None` when any of its keys had a problem (each one reported). What is
/// checked depends on the kind: an HTTP request (endpoint, conditions, HTTP options), or
/// Notion's API with a token (the keys of HTTP checks reported, since patchbay knows what to
/// ask Notion); the schedule, the degraded limits and the alerting keys are every kind's.
fn read_integration(
    table: &Table<'_, '_>,
    name: String,
    start: usize,
    defaults: &Defaults,
    d: &mut Diagnostics,
    env: &Environment,
    base: &Path,
) -> Option<Integration> {
    let errors_before = d.errors.len();
    let notion = check_kind(table, d, start);
    let schedule = read_schedule(table, d, defaults);
    let (endpoint, conditions, token) = if notion {
        report_keys_of_http(table, d);
        let what = format!("integration {name:?}");
        (
            None,
            Vec::new(),
            super::sync::read_token(table, d, env, start, &what),
        )
    } else {
        if let Some(token) = table.get("token") {
            d.error(
                Some(token.span().start),
                table.key("token"),
                "token applies only to kind = \"notion\"",
                Some("send a credential with headers = { Authorization = \"env:NAME\" }".into()),
            );
        }
        let endpoint = read_endpoint(table, d, env, start);
        let conditions = read_conditions(table, d, endpoint.url.as_ref());
        (Some(endpoint), conditions, None)
    };
    let degraded = read_degraded(table, d);
    let tags = plain_strings(table, d, "tags");
    let depends_on = plain_strings(table, d, "depends_on");
    let enabled = table.boolean(d, "enabled").unwrap_or(true);
    let severity = alerts::read_severity(table, d, "severity");
    let channel = table.snowflake(d, "channel");
    let options = endpoint
        .is_some()
        .then(|| read_http_options(table, d, defaults, base));

    if d.errors.len() > errors_before {
        return None;
    }
    let check = match (endpoint, options, token) {
        (Some(endpoint), Some(options), _) => CheckSpec::Http(HttpCheck {
            url: endpoint.url?,
            method: endpoint.method?,
            headers: endpoint.headers,
            body: options.body,
            tls_verify: options.tls_verify,
            ca_file: options.ca_file,
            max_redirects: options.max_redirects,
            max_body_bytes: options.max_body_bytes,
            allow_private: endpoint.allow_private,
        }),
        (_, _, Some(token)) => CheckSpec::Notion(NotionCheck { token }),
        _ => return None,
    };
    Some(Integration {
        name,
        check,
        interval: schedule.interval,
        timeout: schedule.timeout,
        failure_threshold: schedule.failure_threshold,
        success_threshold: schedule.success_threshold,
        conditions,
        degraded,
        tags,
        depends_on,
        enabled,
        severity,
        channel,
    })
}

/// Reports each key of HTTP checks on an integration of another kind.
fn report_keys_of_http(table: &Table<'_, '_>, d: &mut Diagnostics) {
    for key in HTTP_ONLY_KEYS {
        if let Some(value) = table.get(key) {
            d.error(
                Some(value.span().start),
                table.key(key),
                format!("{key} does not apply to kind = \"notion\""),
                Some("remove it: a notion check asks Notion's API who the token belongs to".into()),
            );
        }
    }
}

/// Reads `kind` (`http` when absent): true for `notion`; any other kind is reported.
fn check_kind(table: &Table<'_, '_>, d: &mut Diagnostics, start: usize) -> bool {
    let kind = table
        .string(d, "kind")
        .unwrap_or_else(|| ("http".into(), start));
    match kind.0.as_str() {
        "http" => false,
        "notion" => true,
        other => {
            let fix = match suggest::closest(other, &["http", "notion"]) {
                Some(close) => format!("did you mean kind = \"{close}\"?"),
                None => "use kind = \"http\" or kind = \"notion\"".into(),
            };
            d.error(
                Some(kind.1),
                table.key("kind"),
                format!("kind {other:?} is not supported by this release"),
                Some(fix),
            );
            false
        }
    }
}

/// When an integration is checked, and how many results in a row change its state.
struct Schedule {
    interval: Duration,
    timeout: Duration,
    failure_threshold: u32,
    success_threshold: u32,
}

/// Reads `interval`, `timeout` (at most the interval: a default timeout is cut to it, a written
/// one longer than it is an error) and the two thresholds, each falling back on `[defaults]`.
fn read_schedule(table: &Table<'_, '_>, d: &mut Diagnostics, defaults: &Defaults) -> Schedule {
    let interval = table
        .duration(d, "interval")
        .map_or(defaults.interval, |(v, _)| v);
    let timeout = match table.duration(d, "timeout") {
        Some((timeout, at)) => {
            if timeout > interval {
                d.error(
                    Some(at),
                    table.key("timeout"),
                    format!(
                        "timeout {} is longer than the interval {}",
                        duration::compact(timeout),
                        duration::compact(interval)
                    ),
                    Some("make the timeout at most the interval".into()),
                );
            }
            timeout
        }
        None => defaults.timeout.min(interval),
    };
    let failure_threshold = table
        .positive(d, "failure_threshold")
        .unwrap_or(defaults.failure_threshold);
    let success_threshold = table
        .positive(d, "success_threshold")
        .unwrap_or(defaults.success_threshold);
    Schedule {
        interval,
        timeout,
        failure_threshold,
        success_threshold,
    }
}

/// What the HTTP check requests; `None` where the key had a problem, already reported.
struct Endpoint {
    allow_private: bool,
    url: Option<Url>,
    method: Option<reqwest::Method>,
    headers: Vec<(String, HeaderValue)>,
}

/// Reads `allow_private` and, guarded by it, the `url`; then `method` and `headers`.
fn read_endpoint(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    env: &Environment,
    start: usize,
) -> Endpoint {
    let allow_private = table.boolean(d, "allow_private").unwrap_or(false);
    let url = read_url(table, d, start, allow_private);
    let method = read_method(table, d);
    let headers = read_headers(table, d, env);
    Endpoint {
        allow_private,
        url,
        method,
        headers,
    }
}

/// Reads the required `url`: an http or https URL with a host, and not a link-local or cloud
/// metadata address unless `allow_private`.
fn read_url(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    start: usize,
    allow_private: bool,
) -> Option<Url> {
    let Some((text, at)) = table.string(d, "url") else {
        table.require(
            d,
            "url",
            start,
            "add url = \"https://...\" (http checks need a URL)",
        );
        return None;
    };
    match Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            if !allow_private
                && let Some(ip) = literal_ip(&url)
                && ssrf::is_blocked(ip)
            {
                d.error(
                    Some(at),
                    table.key("url"),
                    format!("{ip} is a link-local or cloud metadata address"),
                    Some(
                        "set allow_private = true on this integration if you really mean it".into(),
                    ),
                );
            }
            Some(url)
        }
        Ok(_) => {
            d.error(
                Some(at),
                table.key("url"),
                format!("{text:?} is not an http:// or https:// URL"),
                Some("write the full URL, like \"https://example.com/healthz\"".into()),
            );
            None
        }
        Err(err) => {
            d.error(
                Some(at),
                table.key("url"),
                format!("{text:?} is not a valid URL: {err}"),
                Some("write the full URL, like \"https://example.com/healthz\"".into()),
            );
            None
        }
    }
}

/// Reads `method`, written in any case; GET when absent.
fn read_method(table: &Table<'_, '_>, d: &mut Diagnostics) -> Option<reqwest::Method> {
    let Some((method, at)) = table.string(d, "method") else {
        return Some(reqwest::Method::GET);
    };
    let upper = method.to_ascii_uppercase();
    if METHODS.contains(&upper.as_str()) {
        reqwest::Method::from_bytes(upper.as_bytes()).ok()
    } else {
        d.error(
            Some(at),
            table.key("method"),
            format!("{method:?} is not an HTTP method patchbay sends"),
            Some(format!("use one of {}", METHODS.join(", "))),
        );
        None
    }
}

/// Reads `headers`, taking an `env:NAME` value from the environment as a secret; a header with
/// a problem is reported and left out.
fn read_headers(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    env: &Environment,
) -> Vec<(String, HeaderValue)> {
    let mut headers = Vec::new();
    for (header, value, at) in table.string_map(d, "headers") {
        if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
            d.error(
                Some(at),
                format!("{}.headers.{header}", table.path),
                "is not a valid header name",
                None,
            );
            continue;
        }
        let value = match value.strip_prefix("env:") {
            Some(variable) => {
                if let Some(secret) = env.get(variable) {
                    HeaderValue::Env {
                        variable: variable.to_string(),
                        value: Secret::new(secret),
                    }
                } else {
                    d.error(
                        Some(at),
                        format!("{}.headers.{header}", table.path),
                        format!("environment variable {variable} is not set"),
                        Some(format!("set {variable} in the environment or in .env")),
                    );
                    continue;
                }
            }
            None => HeaderValue::Plain(value),
        };
        if reqwest::header::HeaderValue::from_str(value.expose()).is_err() {
            d.error(
                Some(at),
                format!("{}.headers.{header}", table.path),
                "the value has characters a header cannot carry",
                Some("remove newlines and control characters".into()),
            );
            continue;
        }
        headers.push((header, value));
    }
    headers
}

/// Parses each of `conditions`, reporting a parse error with its column, and a condition on the
/// TLS certificate when `url` is plain http.
fn read_conditions(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    url: Option<&Url>,
) -> Vec<Condition> {
    let mut conditions = Vec::new();
    for (index, (text, at)) in table
        .strings(d, "conditions")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        match Condition::parse(&text) {
            // Over http:// there is no certificate, unless the server happens to redirect to
            // https; a condition on the certificate should name the https:// URL it means.
            Ok(condition)
                if condition.uses_certificate()
                    && url.is_some_and(|url| url.scheme() == "http") =>
            {
                d.error(
                    Some(at),
                    format!("{}.conditions[{index}]", table.path),
                    format!("{text:?} reads the TLS certificate, but the url is http://"),
                    Some("check the https:// URL, or remove this condition".into()),
                );
            }
            Ok(condition) => conditions.push(condition),
            Err(err) => d.error(
                Some(at),
                format!("{}.conditions[{index}]", table.path),
                format!("{text:?} {err}"),
                Some("see the condition syntax in patchbay.example.toml".into()),
            ),
        }
    }
    conditions
}

/// Reads the `degraded` table: a p95 latency limit, an error rate limit or both, over a window
/// (ten minutes when not given).
fn read_degraded(table: &Table<'_, '_>, d: &mut Diagnostics) -> Option<DegradedLimits> {
    let limits = table.table(d, "degraded")?;
    limits.check_keys(d, DEGRADED_KEYS);
    let latency_p95 = limits.duration(d, "latency_p95").map(|(v, _)| v);
    let error_rate = match limits.float(d, "error_rate") {
        Some((rate, at)) if !(rate > 0.0 && rate <= 1.0) => {
            d.error(
                Some(at),
                limits.key("error_rate"),
                format!("{rate} is not a share between 0 and 1"),
                Some("write 0.1 for 10%".into()),
            );
            None
        }
        other => other.map(|(rate, _)| rate),
    };
    let window = limits
        .duration(d, "window")
        .map_or(Duration::from_secs(600), |(v, _)| v);
    if limits.get("latency_p95").is_none() && limits.get("error_rate").is_none() {
        d.error(
            table.get("degraded").map(|v| v.span().start),
            limits.path.clone(),
            "sets neither latency_p95 nor error_rate",
            Some("add latency_p95 = \"500ms\" or error_rate = 0.1".into()),
        );
        return None;
    }
    Some(DegradedLimits {
        latency_p95,
        error_rate,
        window,
    })
}

/// A list of strings whose places no later check needs, such as `tags`.
fn plain_strings(table: &Table<'_, '_>, d: &mut Diagnostics, key: &str) -> Vec<String> {
    table
        .strings(d, key)
        .unwrap_or_default()
        .into_iter()
        .map(|(text, _)| text)
        .collect()
}

/// The HTTP check's options, each with a default.
struct HttpOptions {
    body: Option<String>,
    tls_verify: bool,
    ca_file: Option<CaFile>,
    max_redirects: usize,
    max_body_bytes: usize,
}

/// Reads the request `body`, `tls_verify` and `ca_file`, and the redirect and body-size limits
/// (falling back on `[defaults]`).
fn read_http_options(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    defaults: &Defaults,
    base: &Path,
) -> HttpOptions {
    let body = table.string(d, "body").map(|(body, _)| body);
    let tls_verify = table.boolean(d, "tls_verify").unwrap_or(true);
    let ca_file = read_ca_file(table, d, base, tls_verify);
    let max_redirects = table
        .at_most(d, "max_redirects", MAX_REDIRECTS)
        .unwrap_or(defaults.max_redirects);
    let max_body_bytes = table
        .positive(d, "max_body_bytes")
        .map_or(defaults.max_body_bytes, |v| v as usize);
    HttpOptions {
        body,
        tls_verify,
        ca_file,
        max_redirects,
        max_body_bytes,
    }
}

/// Reads and checks an integration's `ca_file`, resolving a relative path against `base`.
fn read_ca_file(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    base: &Path,
    tls_verify: bool,
) -> Option<CaFile> {
    let (text, at) = table.string(d, "ca_file")?;
    let key = table.key("ca_file");
    if !tls_verify {
        d.error(
            Some(at),
            key,
            "has no effect with tls_verify = false, which trusts any certificate",
            Some("remove tls_verify = false, so certificates are verified against this CA".into()),
        );
        return None;
    }
    let path = base.join(&text);
    let shown = path.display().to_string();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) => {
            d.error(
                Some(at),
                key,
                format!("cannot read {shown:?}: {err}"),
                Some(
                    "point ca_file at a PEM file of CA certificates; a relative path is taken \
                     from the config file's directory"
                        .into(),
                ),
            );
            return None;
        }
    };
    match tls::read_ca_pem(&bytes) {
        Ok(certificates) => Some(CaFile {
            path,
            certificates: certificates.into(),
        }),
        Err(problem) => {
            d.error(
                Some(at),
                key,
                format!("{shown:?} {problem}"),
                Some(
                    "export the CA certificate in PEM form (-----BEGIN CERTIFICATE-----); \
                     a DER file converts with: openssl x509 -inform der -in ca.der -out ca.pem"
                        .into(),
                ),
            );
            None
        }
    }
}

/// The IP address a URL names literally, if it names one rather than a domain.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Conditions compare by their source text: two integrations with the same written conditions
/// check the same thing, which is what a reload needs to know.
impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source() == other.source()
    }
}
