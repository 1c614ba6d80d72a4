//! Configuration: defaults, then the TOML file, then the environment, validated into typed
//! settings. Loading never stops at the first problem: every error is collected with its file,
//! line, key and fix (see [`ConfigErrors`]). Secrets come only from the environment and are held
//! as [`Secret`], which never prints.
//!
//! The file format is a user-facing contract documented in `patchbay.example.toml`.

mod alerts;
mod error;
mod raw;

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::check::condition::Condition;
use crate::check::{ssrf, tls};
use crate::duration;
use crate::model::{Severity, Snowflake};
use crate::secret::Secret;
use crate::suggest;
pub use alerts::{
    AlertRoute, AlertsConfig, DEFAULT_WEBHOOK_ENV, MaintenanceTarget, MaintenanceWindow,
    RouteTarget,
};
use error::Diagnostics;
pub use error::{ConfigError, ConfigErrors};
use raw::Table;

/// The default config path, used when neither `--config` nor `PATCHBAY_CONFIG` is given.
pub const DEFAULT_PATH: &str = "patchbay.toml";

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from, if any.
    pub source: Option<PathBuf>,
    /// Discord front settings.
    pub bot: BotConfig,
    /// The HTTP server (health, metrics).
    pub http: HttpConfig,
    /// The database.
    pub storage: StorageConfig,
    /// The check scheduler.
    pub scheduler: SchedulerConfig,
    /// Logging.
    pub log: LogConfig,
    /// The configured integrations, in file order.
    pub integrations: Vec<Integration>,
    /// Grants from `[[grant]]` tables: one per (role, permission), in every guild.
    pub grants: Vec<crate::access::Grant>,
    /// `[alerts]` and its routes (defaults when the table is absent).
    pub alerts: AlertsConfig,
    /// `[[maintenance]]` windows, in file order.
    pub maintenance: Vec<MaintenanceWindow>,
}

/// `[bot]`: the Discord front.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Guilds to register slash commands in; empty means global registration.
    pub guilds: Vec<Snowflake>,
    /// Channel to mirror the audit log into.
    pub audit_channel: Option<Snowflake>,
    /// `DISCORD_TOKEN`; without it the bot runs headless.
    pub token: Option<Secret>,
    /// `DISCORD_API_BASE`: where serenity sends REST calls (a proxy or a fake in tests).
    pub api_base: Url,
    /// Whether every member holds `status.view` (on by default).
    pub public_status: bool,
    /// The per-member command rate limit.
    pub command_rate: CommandRate,
}

/// A per-member command rate limit, written `"10/m"`: a burst of 10 that refills evenly, one
/// every 6 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRate {
    /// Commands allowed at once.
    pub burst: u32,
    /// The period in which `burst` commands refill.
    pub per: Duration,
}

impl CommandRate {
    /// Parses `N/s`, `N/m` or `N/h`.
    pub fn parse(text: &str) -> Result<CommandRate, String> {
        let (count, unit) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a rate; write it like \"10/m\""))?;
        let burst: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{text:?}: {count:?} is not a whole number of at least 1"))?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => return Err(format!("{text:?}: unknown period {other:?}; use s, m or h")),
        };
        Ok(CommandRate { burst, per })
    }

    /// The time one command takes to refill (`per / burst`).
    pub fn refill_every(&self) -> Duration {
        self.per / self.burst
    }
}

/// `[http]`: the health and metrics server.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to bind; loopback by default.
    pub listen: SocketAddr,
}

/// `[storage]`: the database and how long data is kept.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// `sqlite://path` (PostgreSQL arrives in a later release).
    pub url: String,
    /// How long raw check results are kept.
    pub retention: Duration,
    /// How long one-minute and one-hour rollups are kept, and resolved incidents with them.
    pub rollup_retention: Duration,
    /// How long audit log entries are kept.
    pub audit_retention: Duration,
    /// Most check results written in one transaction.
    pub batch_size: usize,
    /// Longest a check result waits before its batch is written.
    pub flush_interval: Duration,
}

/// `[scheduler]`: how checks are run.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Most checks in flight at once.
    pub concurrency: usize,
    /// How long shutdown waits for in-flight checks.
    pub shutdown_timeout: Duration,
}

/// How log lines are written (`PATCHBAY_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines with `key=value` fields.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Logging settings from the environment.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The line format.
    pub format: LogFormat,
}

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
}

impl CheckSpec {
    /// The `kind` as written in the config.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Http(_) => "http",
        }
    }
}

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

/// The environment as seen by the loader; a snapshot so tests can pass their own.
#[derive(Debug, Clone, Default)]
pub struct Environment(BTreeMap<String, String>);

impl Environment {
    /// The process environment (after dotenvy has read `.env`).
    pub fn from_process() -> Self {
        Environment(std::env::vars().collect())
    }

    /// An environment made of the given pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A variable's value, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Every environment variable patchbay reads, with its meaning; `.env.example` documents each and
/// a test keeps the two in step.
pub const ENV_VARS: &[&str] = &[
    "DISCORD_TOKEN",
    "DISCORD_API_BASE",
    "DATABASE_URL",
    "PATCHBAY_CONFIG",
    "PATCHBAY_HTTP_LISTEN",
    "NOTION_TOKEN",
    "NOTION_API_BASE",
    "RUST_LOG",
    "PATCHBAY_LOG_FORMAT",
    "DISCORD_ALERT_WEBHOOK",
];

/// Where the config file comes from: `--config`, else `PATCHBAY_CONFIG`, else `patchbay.toml`
/// if it exists. `required` is true when the user named the file, so a missing one is an error.
pub fn resolve_path(flag: Option<&Path>, env: &Environment) -> (PathBuf, bool) {
    match (flag, env.get("PATCHBAY_CONFIG")) {
        (Some(path), _) => (path.to_path_buf(), true),
        (None, Some(path)) => (PathBuf::from(path), true),
        (None, None) => (PathBuf::from(DEFAULT_PATH), false),
    }
}

/// Loads the config from `path` (a missing file is fine unless `required`) and `env`.
pub fn load(path: &Path, required: bool, env: &Environment) -> Result<Config, ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &path.display().to_string(), Some(path), env),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
            parse("", "defaults", None, env)
        }
        Err(err) => Err(ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: None,
            key: "(file)".into(),
            message: format!("cannot read the config file: {err}"),
            fix: Some(
                "pass an existing file with --config or PATCHBAY_CONFIG, e.g. patchbay.example.toml"
                    .into(),
            ),
        }])),
    }
}

const TOP_KEYS: &[&str] = &[
    "bot",
    "grant",
    "http",
    "storage",
    "scheduler",
    "defaults",
    "integration",
    "alerts",
    "maintenance",
];
const BOT_KEYS: &[&str] = &["guilds", "audit_channel", "public_status", "command_rate"];
const GRANT_KEYS: &[&str] = &["role", "permissions"];
const HTTP_KEYS: &[&str] = &["listen"];
const STORAGE_KEYS: &[&str] = &[
    "url",
    "retention",
    "rollup_retention",
    "audit_retention",
    "batch_size",
    "flush_interval",
];
const SCHEDULER_KEYS: &[&str] = &["concurrency", "shutdown_timeout"];
const DEFAULTS_KEYS: &[&str] = &[
    "interval",
    "timeout",
    "failure_threshold",
    "success_threshold",
    "max_body_bytes",
    "max_redirects",
];
const INTEGRATION_KEYS: &[&str] = &[
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
];
const DEGRADED_KEYS: &[&str] = &["latency_p95", "error_rate", "window"];
/// The most redirects a check may follow.
const MAX_REDIRECTS: usize = 20;

/// Every table of the file and its keys, so tests can check the example documents each one.
pub const KEYS: &[(&str, &[&str])] = &[
    ("", TOP_KEYS),
    ("bot", BOT_KEYS),
    ("grant", GRANT_KEYS),
    ("http", HTTP_KEYS),
    ("storage", STORAGE_KEYS),
    ("scheduler", SCHEDULER_KEYS),
    ("defaults", DEFAULTS_KEYS),
    ("integration", INTEGRATION_KEYS),
    ("integration.degraded", DEGRADED_KEYS),
    ("alerts", alerts::ALERTS_KEYS),
    ("alerts.route", alerts::ROUTE_KEYS),
    ("alerts.route.match", alerts::MATCH_KEYS),
    ("maintenance", alerts::MAINTENANCE_KEYS),
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Per-integration defaults from `[defaults]`.
struct Defaults {
    interval: Duration,
    timeout: Duration,
    failure_threshold: u32,
    success_threshold: u32,
    max_body_bytes: usize,
    max_redirects: usize,
}

/// Parses and validates config text. `file` names it in errors.
pub fn parse(
    text: &str,
    file: &str,
    source: Option<&Path>,
    env: &Environment,
) -> Result<Config, ConfigErrors> {
    let mut d = Diagnostics::new(file, text);
    let document = match toml::de::DeTable::parse(text) {
        Ok(document) => document,
        Err(err) => {
            d.error(
                err.span().map(|span| span.start),
                "(syntax)",
                err.message().trim().to_string(),
                Some("fix the TOML syntax at that line".into()),
            );
            return Err(ConfigErrors(d.errors));
        }
    };
    let root = Table::root(document.get_ref());
    root.check_keys(&mut d, TOP_KEYS);

    let bot = read_bot(&root, &mut d);
    let http = read_http(&root, &mut d);
    let storage = read_storage(&root, &mut d);
    let scheduler = read_scheduler(&root, &mut d);
    let defaults = read_defaults(&root, &mut d);
    // A relative `ca_file` is taken from the config file's directory, so the config and its
    // certificates can move together; without a file, from the working directory.
    let base = source.and_then(Path::parent).unwrap_or(Path::new(""));
    let integrations = read_integrations(&root, &defaults, &mut d, env, base);
    let grants = read_grants(&root, &mut d);
    let known = alerts::KnownTargets::of(&root);
    let alerts = alerts::read_alerts(&root, &mut d, env, &known);
    let maintenance = alerts::read_maintenance(&root, &mut d, &known);

    let mut config = Config {
        source: source.map(Path::to_path_buf),
        bot,
        http,
        storage,
        scheduler,
        log: LogConfig {
            format: LogFormat::Pretty,
        },
        integrations,
        grants,
        alerts,
        maintenance,
    };
    apply_environment(&mut config, env, &mut d.errors);
    // File order reads best; environment problems (no line) come last.
    d.errors
        .sort_by_key(|error| error.line.unwrap_or(usize::MAX));
    if d.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(d.errors))
    }
}

fn read_bot(root: &Table<'_, '_>, d: &mut Diagnostics) -> BotConfig {
    let mut bot = BotConfig {
        guilds: Vec::new(),
        audit_channel: None,
        token: None,
        api_base: Url::parse("https://discord.com").expect("static URL"),
        public_status: true,
        command_rate: CommandRate {
            burst: 10,
            per: Duration::from_secs(60),
        },
    };
    if let Some(table) = root.table(d, "bot") {
        table.check_keys(d, BOT_KEYS);
        bot.guilds = table.snowflakes(d, "guilds").unwrap_or_default();
        bot.audit_channel = table.snowflake(d, "audit_channel");
        if let Some(public) = table.boolean(d, "public_status") {
            bot.public_status = public;
        }
        if let Some((rate, at)) = table.string(d, "command_rate") {
            match CommandRate::parse(&rate) {
                Ok(rate) => bot.command_rate = rate,
                Err(message) => d.error(
                    Some(at),
                    table.key("command_rate"),
                    message,
                    Some("write it like \"10/m\" (a burst of 10, refilled over a minute)".into()),
                ),
            }
        }
    }
    bot
}

fn read_grants(root: &Table<'_, '_>, d: &mut Diagnostics) -> Vec<crate::access::Grant> {
    use crate::access::{Grant, GrantSource, Permission};
    let names: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    let mut grants = Vec::new();
    for (table, start) in root.tables(d, "grant") {
        table.check_keys(d, GRANT_KEYS);
        let role = table.snowflake(d, "role");
        table.require(
            d,
            "role",
            start,
            "add role = \"<role id>\" to this [[grant]]",
        );
        let permissions = table.strings(d, "permissions").unwrap_or_default();
        table.require(
            d,
            "permissions",
            start,
            "add permissions = [\"status.view\", ...] to this [[grant]]",
        );
        for (index, (name, at)) in permissions.into_iter().enumerate() {
            match name.parse::<Permission>() {
                Ok(permission) => {
                    if let Some(role) = role {
                        grants.push(Grant {
                            role,
                            permission,
                            source: GrantSource::Config,
                        });
                    }
                }
                Err(_) => {
                    let fix = match suggest::closest(&name, &names) {
                        Some(close) => format!("did you mean \"{close}\"?"),
                        None => format!("use one of {}", names.join(", ")),
                    };
                    d.error(
                        Some(at),
                        format!("{}.permissions[{index}]", table.path),
                        format!("unknown permission {name:?}"),
                        Some(fix),
                    );
                }
            }
        }
    }
    grants
}

fn read_http(root: &Table<'_, '_>, d: &mut Diagnostics) -> HttpConfig {
    let mut http = HttpConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    if let Some(table) = root.table(d, "http") {
        table.check_keys(d, HTTP_KEYS);
        if let Some((listen, at)) = table.string(d, "listen") {
            match listen.parse() {
                Ok(addr) => http.listen = addr,
                Err(_) => d.error(
                    Some(at),
                    table.key("listen"),
                    format!("{listen:?} is not an address with a port"),
                    Some("write it like \"127.0.0.1:8080\" or \"0.0.0.0:8080\"".into()),
                ),
            }
        }
    }
    http
}

fn read_storage(root: &Table<'_, '_>, d: &mut Diagnostics) -> StorageConfig {
    let mut storage = StorageConfig {
        url: "sqlite://patchbay.db".into(),
        retention: Duration::from_secs(30 * 86_400),
        rollup_retention: Duration::from_secs(365 * 86_400),
        audit_retention: Duration::from_secs(365 * 86_400),
        batch_size: 1000,
        flush_interval: Duration::from_millis(500),
    };
    if let Some(table) = root.table(d, "storage") {
        table.check_keys(d, STORAGE_KEYS);
        if let Some((url, at)) = table.string(d, "url") {
            if let Err(message) = check_storage_url(&url) {
                d.error(Some(at), table.key("url"), message.0, Some(message.1));
            } else {
                storage.url = url;
            }
        }
        if let Some((retention, _)) = table.duration(d, "retention") {
            storage.retention = retention;
        }
        if let Some((retention, _)) = table.duration(d, "rollup_retention") {
            storage.rollup_retention = retention;
        }
        if let Some((retention, _)) = table.duration(d, "audit_retention") {
            storage.audit_retention = retention;
        }
        if let Some(size) = table.positive(d, "batch_size") {
            storage.batch_size = size as usize;
        }
        if let Some((interval, _)) = table.duration(d, "flush_interval") {
            storage.flush_interval = interval;
        }
    }
    storage
}

/// Checks a database URL's scheme; the error is (message, fix).
fn check_storage_url(url: &str) -> Result<(), (String, String)> {
    if url.starts_with("sqlite:") {
        Ok(())
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Err((
            "PostgreSQL is not supported by this release yet".into(),
            "use a sqlite:// URL such as \"sqlite://patchbay.db\"".into(),
        ))
    } else {
        Err((
            format!("{url:?} is not a database URL patchbay knows"),
            "use a sqlite:// URL such as \"sqlite://patchbay.db\"".into(),
        ))
    }
}

fn read_scheduler(root: &Table<'_, '_>, d: &mut Diagnostics) -> SchedulerConfig {
    let mut scheduler = SchedulerConfig {
        concurrency: 512,
        shutdown_timeout: Duration::from_secs(10),
    };
    if let Some(table) = root.table(d, "scheduler") {
        table.check_keys(d, SCHEDULER_KEYS);
        if let Some(concurrency) = table.positive(d, "concurrency") {
            scheduler.concurrency = concurrency as usize;
        }
        if let Some((timeout, _)) = table.duration(d, "shutdown_timeout") {
            scheduler.shutdown_timeout = timeout;
        }
    }
    scheduler
}

fn read_defaults(root: &Table<'_, '_>, d: &mut Diagnostics) -> Defaults {
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

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn read_integrations(
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
        let name = match table.string(d, "name") {
            Some((name, at)) if valid_name(&name) => {
                if !names.insert(name.clone()) {
                    d.error(
                        Some(at),
                        table.key("name"),
                        format!("duplicate integration name {name:?}"),
                        Some("give each [[integration]] a unique name".into()),
                    );
                }
                name
            }
            Some((name, at)) => {
                d.error(
                    Some(at),
                    table.key("name"),
                    format!("{name:?} is not a valid name"),
                    Some("use 1 to 64 characters from a-z, 0-9, - and _".into()),
                );
                table.check_keys(d, INTEGRATION_KEYS);
                continue;
            }
            None => {
                table.require(
                    d,
                    "name",
                    start,
                    "add name = \"...\" to this [[integration]]",
                );
                table.check_keys(d, INTEGRATION_KEYS);
                continue;
            }
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
    for integration in &integrations {
        let at = dependencies
            .iter()
            .find(|(name, _)| name == &integration.name)
            .and_then(|(_, at)| *at);
        for dependency in &integration.depends_on {
            if !names.contains(dependency) {
                let fix = match suggest::closest(
                    dependency,
                    &names.iter().map(String::as_str).collect::<Vec<_>>(),
                ) {
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
    integrations
}

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
    let kind = table
        .string(d, "kind")
        .unwrap_or_else(|| ("http".into(), start));
    if kind.0 != "http" {
        d.error(
            Some(kind.1),
            table.key("kind"),
            format!("kind {:?} is not supported by this release", kind.0),
            Some("use kind = \"http\"".into()),
        );
    }
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
    let allow_private = table.boolean(d, "allow_private").unwrap_or(false);
    let url = match table.string(d, "url") {
        Some((text, at)) => {
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
                        Some("set allow_private = true on this integration if you really mean it".into()),
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
        None => {
            table.require(
                d,
                "url",
                start,
                "add url = \"https://...\" (http checks need a URL)",
            );
            None
        }
    };
    let method = match table.string(d, "method") {
        Some((method, at)) => {
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
        None => Some(reqwest::Method::GET),
    };
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
            Some(variable) => match env.get(variable) {
                Some(secret) => HeaderValue::Env {
                    variable: variable.to_string(),
                    value: Secret::new(secret),
                },
                None => {
                    d.error(
                        Some(at),
                        format!("{}.headers.{header}", table.path),
                        format!("environment variable {variable} is not set"),
                        Some(format!("set {variable} in the environment or in .env")),
                    );
                    continue;
                }
            },
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
                    && url.as_ref().is_some_and(|url| url.scheme() == "http") =>
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
    let degraded = table.table(d, "degraded").and_then(|limits| {
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
    });
    let tags = table
        .strings(d, "tags")
        .unwrap_or_default()
        .into_iter()
        .map(|(tag, _)| tag)
        .collect();
    let depends_on = table
        .strings(d, "depends_on")
        .unwrap_or_default()
        .into_iter()
        .map(|(dep, _)| dep)
        .collect();
    let enabled = table.boolean(d, "enabled").unwrap_or(true);
    let severity = alerts::read_severity(table, d, "severity");
    let channel = table.snowflake(d, "channel");
    let body = table.string(d, "body").map(|(body, _)| body);
    let tls_verify = table.boolean(d, "tls_verify").unwrap_or(true);
    let ca_file = read_ca_file(table, d, base, tls_verify);
    let max_redirects = table
        .at_most(d, "max_redirects", MAX_REDIRECTS)
        .unwrap_or(defaults.max_redirects);
    let max_body_bytes = table
        .positive(d, "max_body_bytes")
        .map_or(defaults.max_body_bytes, |v| v as usize);

    if d.errors.len() > errors_before {
        return None;
    }
    Some(Integration {
        name,
        check: CheckSpec::Http(HttpCheck {
            url: url?,
            method: method?,
            headers,
            body,
            tls_verify,
            ca_file,
            max_redirects,
            max_body_bytes,
            allow_private,
        }),
        interval,
        timeout,
        failure_threshold,
        success_threshold,
        conditions,
        degraded,
        tags,
        depends_on,
        enabled,
        severity,
        channel,
    })
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

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn apply_environment(config: &mut Config, env: &Environment, errors: &mut Vec<ConfigError>) {
    let mut env_error = |key: &str, message: String, fix: &str| {
        errors.push(ConfigError {
            file: "environment".into(),
            line: None,
            key: key.into(),
            message,
            fix: Some(fix.into()),
        });
    };
    if let Some(url) = env.get("DATABASE_URL") {
        match check_storage_url(url) {
            Ok(()) => config.storage.url = url.to_string(),
            Err((message, fix)) => env_error("DATABASE_URL", message, &fix),
        }
    }
    if let Some(listen) = env.get("PATCHBAY_HTTP_LISTEN") {
        match listen.parse() {
            Ok(addr) => config.http.listen = addr,
            Err(_) => env_error(
                "PATCHBAY_HTTP_LISTEN",
                format!("{listen:?} is not an address with a port"),
                "write it like 127.0.0.1:8080",
            ),
        }
    }
    config.bot.token = env.get("DISCORD_TOKEN").map(Secret::new);
    if let Some(base) = env.get("DISCORD_API_BASE") {
        match Url::parse(base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => config.bot.api_base = url,
            _ => env_error(
                "DISCORD_API_BASE",
                format!("{base:?} is not an http(s) URL"),
                "write it like https://discord.com",
            ),
        }
    }
    if let Some(base) = env.get("NOTION_API_BASE")
        && Url::parse(base).is_err()
    {
        env_error(
            "NOTION_API_BASE",
            format!("{base:?} is not a URL"),
            "write it like https://api.notion.com",
        );
    }
    match env.get("PATCHBAY_LOG_FORMAT") {
        None | Some("pretty") => config.log.format = LogFormat::Pretty,
        Some("json") => config.log.format = LogFormat::Json,
        Some(other) => env_error(
            "PATCHBAY_LOG_FORMAT",
            format!("{other:?} is not a log format"),
            "use pretty or json",
        ),
    }
}

/// Conditions compare by their source text: two integrations with the same written conditions
/// check the same thing, which is what a reload needs to know.
impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source() == other.source()
    }
}
