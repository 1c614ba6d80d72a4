//! Configuration: defaults, then the TOML file, then the environment, validated into typed
//! settings. Loading never stops at the first problem: every error is collected with its file,
//! line, key and fix (see [`ConfigErrors`]). Secrets come only from the environment and are held
//! as [`Secret`], which never prints.
//!
//! The file format is a user-facing contract documented in `patchbay.example.toml`.
//!
//! This file holds [`Config`] and the small tables (`[bot]`, `[[grant]]`, `[http]`, `[storage]`,
//! `[scheduler]`), loading, and the environment. `raw.rs` reads the spanned TOML tree with typed
//! getters; `integration.rs` reads `[[integration]]` and `[defaults]`; `alerts.rs` reads
//! `[alerts]`, its routes and `[[maintenance]]`; `error.rs` collects the errors.

mod actions;
mod alerts;
mod error;
mod integration;
mod raw;
mod sync;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use crate::model::Snowflake;
use crate::secret::Secret;
use crate::suggest;
pub use actions::{
    Action, ActionKind, ActionParam, ActionRole, DEFAULT_ACTION_TIMEOUT, DEFAULT_MAX_LEN,
    MAX_PARAMS, ParamKind,
};
pub use alerts::{
    AlertRoute, AlertsConfig, DEFAULT_WEBHOOK_ENV, MaintenanceTarget, MaintenanceWindow,
    RouteTarget,
};
use error::Diagnostics;
pub use error::{ConfigError, ConfigErrors};
pub use integration::{
    CaFile, CheckSpec, DegradedLimits, HeaderValue, HttpCheck, Integration, NotionCheck,
};
use raw::Table;
pub use sync::{
    DEFAULT_NOTION_API, DEFAULT_NOTION_TOKEN, EnvSecret, NotionToken, SyncJob, SyncKind,
};

/// The default config path, used when neither `--config` nor `PATCHBAY_CONFIG` is given.
pub const DEFAULT_PATH: &str = "patchbay.toml";

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from, if any.
    pub source: Option<PathBuf>,
    /// Discord front settings.
    pub bot: BotConfig,
    /// The HTTP server (health, metrics, the REST API).
    pub http: HttpConfig,
    /// The REST API: its per-key rate limit and request body limit.
    pub api: ApiConfig,
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
    /// `[[sync]]` jobs, in file order.
    pub sync: Vec<SyncJob>,
    /// The `[[action]]`s (Retool workflows), in file order.
    pub actions: Vec<Action>,
    /// `NOTION_API_BASE`: where Notion calls go (Notion itself unless set).
    pub notion_api_base: Url,
}

impl Config {
    /// The sync job named `name`.
    pub fn sync_job(&self, name: &str) -> Option<&SyncJob> {
        self.sync.iter().find(|job| job.name == name)
    }

    /// The action named `name`.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|action| action.name == name)
    }
}

/// `[bot]`: the Discord front.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Guilds to register slash commands in; empty means global registration.
    pub guilds: Vec<Snowflake>,
    /// Channel to mirror the audit log into.
    pub audit_channel: Option<Snowflake>,
    /// Where approval requests of actions started from the REST API are posted.
    pub approval_channel: Option<Snowflake>,
    /// How long a member has to confirm an action they asked for.
    pub action_confirm_timeout: Duration,
    /// How long an action request waits for an approval.
    pub action_approval_timeout: Duration,
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

    /// The same refill speed with a burst of `burst`: `"20/s"` with a burst of 40 refills one
    /// call every 50 ms and allows 40 at once.
    pub fn with_burst(self, burst: u32) -> CommandRate {
        CommandRate {
            burst,
            per: self.refill_every() * burst,
        }
    }
}

/// `[api]`: the REST API, served on the `[http]` server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiConfig {
    /// The per-key rate limit: `rate` refills, `burst` at once (default `"20/s"`, burst 40).
    pub rate: CommandRate,
    /// The largest request body accepted, in bytes (default 64 KiB).
    pub body_limit: usize,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            rate: CommandRate {
                burst: 20,
                per: Duration::from_secs(1),
            }
            .with_burst(40),
            body_limit: 64 * 1024,
        }
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
    /// How long one-hour rollups are kept, and transitions and resolved incidents with them.
    pub rollup_retention: Duration,
    /// How long one-minute rollups are kept: a day at least (the 24-hour chart and `/status`'s
    /// last hour read them), at most `rollup_retention`.
    pub minute_rollup_retention: Duration,
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
    "sync",
    "action",
    "api",
];
const BOT_KEYS: &[&str] = &[
    "guilds",
    "audit_channel",
    "approval_channel",
    "action_confirm_timeout",
    "action_approval_timeout",
    "public_status",
    "command_rate",
];
const GRANT_KEYS: &[&str] = &["role", "permissions"];
const HTTP_KEYS: &[&str] = &["listen"];
const API_KEYS: &[&str] = &["rate", "burst", "body_limit"];
const STORAGE_KEYS: &[&str] = &[
    "url",
    "retention",
    "rollup_retention",
    "minute_rollup_retention",
    "audit_retention",
    "batch_size",
    "flush_interval",
];
const SCHEDULER_KEYS: &[&str] = &["concurrency", "shutdown_timeout"];

/// Every table of the file and its keys, so tests can check the example documents each one.
pub const KEYS: &[(&str, &[&str])] = &[
    ("", TOP_KEYS),
    ("bot", BOT_KEYS),
    ("grant", GRANT_KEYS),
    ("http", HTTP_KEYS),
    ("api", API_KEYS),
    ("storage", STORAGE_KEYS),
    ("scheduler", SCHEDULER_KEYS),
    ("defaults", integration::DEFAULTS_KEYS),
    ("integration", integration::INTEGRATION_KEYS),
    ("integration.degraded", integration::DEGRADED_KEYS),
    ("alerts", alerts::ALERTS_KEYS),
    ("alerts.route", alerts::ROUTE_KEYS),
    ("alerts.route.match", alerts::MATCH_KEYS),
    ("maintenance", alerts::MAINTENANCE_KEYS),
    ("sync", sync::SYNC_KEYS),
    ("action", actions::ACTION_KEYS),
    ("action.params", actions::PARAM_KEYS),
];

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
    let api = read_api(&root, &mut d);
    let storage = read_storage(&root, &mut d);
    let scheduler = read_scheduler(&root, &mut d);
    let defaults = integration::read_defaults(&root, &mut d);
    // A relative `ca_file` is taken from the config file's directory, so the config and its
    // certificates can move together; without a file, from the working directory.
    let base = source.and_then(Path::parent).unwrap_or(Path::new(""));
    let integrations = integration::read_integrations(&root, &defaults, &mut d, env, base);
    let grants = read_grants(&root, &mut d);
    let known = alerts::KnownTargets::of(&root);
    let alerts = alerts::read_alerts(&root, &mut d, env, &known);
    let maintenance = alerts::read_maintenance(&root, &mut d, &known);
    let sync = sync::read_jobs(&root, &mut d, env);
    let actions = actions::read_actions(&root, &mut d, env);

    let mut config = Config {
        source: source.map(Path::to_path_buf),
        bot,
        http,
        api,
        storage,
        scheduler,
        log: LogConfig {
            format: LogFormat::Pretty,
        },
        integrations,
        grants,
        alerts,
        maintenance,
        sync,
        actions,
        notion_api_base: Url::parse(sync::DEFAULT_NOTION_API).expect("static URL"),
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
        approval_channel: None,
        action_confirm_timeout: Duration::from_secs(60),
        action_approval_timeout: Duration::from_secs(15 * 60),
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
        bot.approval_channel = table.snowflake(d, "approval_channel");
        // A confirmation is edited through its interaction, which Discord keeps 15 minutes; an
        // approval message is the bot's own and may wait a day.
        for (key, slot, max, why) in [
            (
                "action_confirm_timeout",
                &mut bot.action_confirm_timeout,
                Duration::from_secs(14 * 60),
                "use 1s to 14m: Discord lets a command's reply be edited for 15 minutes",
            ),
            (
                "action_approval_timeout",
                &mut bot.action_approval_timeout,
                Duration::from_secs(24 * 3600),
                "use 1s to 24h",
            ),
        ] {
            match table.duration(d, key) {
                Some((wait, at)) if wait.is_zero() || wait > max => {
                    d.error(
                        Some(at),
                        table.key(key),
                        format!("{} is out of range", crate::duration::compact(wait)),
                        Some(why.into()),
                    );
                }
                Some((wait, _)) => *slot = wait,
                None => {}
            }
        }
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
            if let Ok(permission) = name.parse::<Permission>() {
                if let Some(role) = role {
                    grants.push(Grant {
                        role,
                        permission,
                        source: GrantSource::Config,
                    });
                }
            } else {
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

/// The largest `[api].body_limit`: 16 MiB (the API's bodies are a few hundred bytes).
const MAX_BODY_LIMIT: u32 = 16 * 1024 * 1024;

fn read_api(root: &Table<'_, '_>, d: &mut Diagnostics) -> ApiConfig {
    let mut api = ApiConfig::default();
    let Some(table) = root.table(d, "api") else {
        return api;
    };
    table.check_keys(d, API_KEYS);
    let rate = match table.string(d, "rate") {
        Some((text, at)) => match CommandRate::parse(&text) {
            Ok(rate) => Some(rate),
            Err(message) => {
                d.error(
                    Some(at),
                    table.key("rate"),
                    message,
                    Some("write it like \"20/s\" (20 calls a second per key)".into()),
                );
                None
            }
        },
        None => None,
    };
    // Without a burst, a key may spend two periods' worth at once.
    let burst = table.positive(d, "burst");
    match (rate, burst) {
        (Some(rate), burst) => {
            api.rate = rate.with_burst(burst.unwrap_or(rate.burst.saturating_mul(2)));
        }
        (None, Some(burst)) => api.rate = api.rate.with_burst(burst),
        (None, None) => {}
    }
    if let Some(limit) = table.at_least(d, "body_limit", 1024) {
        if limit > MAX_BODY_LIMIT {
            d.error(
                table.get("body_limit").map(|v| v.span().start),
                table.key("body_limit"),
                format!("{limit} bytes is more than the API needs"),
                Some(format!(
                    "use at most {MAX_BODY_LIMIT} (16 MiB); the default is 65536"
                )),
            );
        } else {
            api.body_limit = limit as usize;
        }
    }
    api
}

fn read_storage(root: &Table<'_, '_>, d: &mut Diagnostics) -> StorageConfig {
    let mut storage = StorageConfig {
        url: "sqlite://patchbay.db".into(),
        retention: Duration::from_secs(30 * 86_400),
        rollup_retention: Duration::from_secs(365 * 86_400),
        minute_rollup_retention: DEFAULT_MINUTE_ROLLUP_RETENTION,
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
        read_minute_rollup_retention(&table, d, &mut storage);
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

/// How long one-minute rollups are kept unless `[storage].minute_rollup_retention` says.
pub const DEFAULT_MINUTE_ROLLUP_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// The shortest `minute_rollup_retention`: the 24-hour chart draws a day of one-minute rollups
/// (and `/status` reads the last hour of them). Retention deletes buckets that started before
/// `now - retention`, and the chart reads those that start at or after `now - 24h`, so a day is
/// enough.
const MIN_MINUTE_ROLLUP_RETENTION: Duration = Duration::from_secs(86_400);

/// Reads `minute_rollup_retention` (a day to `rollup_retention`). Unset, it is 7 days, or
/// `rollup_retention` when that is shorter, so a config that kept every rollup less than a week
/// keeps loading as it did.
fn read_minute_rollup_retention(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    storage: &mut StorageConfig,
) {
    const KEY: &str = "minute_rollup_retention";
    let Some((retention, at)) = table.duration(d, KEY) else {
        storage.minute_rollup_retention =
            DEFAULT_MINUTE_ROLLUP_RETENTION.min(storage.rollup_retention);
        return;
    };
    let show = crate::duration::compact;
    if retention < MIN_MINUTE_ROLLUP_RETENTION {
        d.error(
            Some(at),
            table.key(KEY),
            format!(
                "{} is too short: the 24-hour chart and /status read a day of one-minute rollups",
                show(retention)
            ),
            Some("use at least 1d; the default is 7d".into()),
        );
    } else if retention > storage.rollup_retention {
        d.error(
            Some(at),
            table.key(KEY),
            format!(
                "{} is longer than rollup_retention ({}), which keeps the one-hour rollups",
                show(retention),
                show(storage.rollup_retention)
            ),
            Some(format!(
                "use at most {}, or raise rollup_retention",
                show(storage.rollup_retention)
            )),
        );
    } else {
        storage.minute_rollup_retention = retention;
    }
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
    if let Some(base) = env.get("NOTION_API_BASE") {
        match Url::parse(base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => config.notion_api_base = url,
            _ => env_error(
                "NOTION_API_BASE",
                format!("{base:?} is not an http(s) URL"),
                "write it like https://api.notion.com",
            ),
        }
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
