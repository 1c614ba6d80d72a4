//! The vocabulary shared by the engine, the store and the fronts: integration states, check
//! results and state transitions. These types know nothing of HTTP, Discord or SQL, so every
//! other module can speak about an integration's health in the same words. It also says how an
//! answer quotes what a user typed ([`echo`], [`shorten`]), so every layer that answers people
//! cuts their input the same way.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub mod notice;
mod notion_id;
mod problem;

pub use notion_id::NotionId;
pub use problem::Problem;

/// The current time at the precision the store keeps (milliseconds), so a value read back from
/// the database equals the one that was written.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// A Discord ID (guild, channel, role, user): our own type, so domain modules never need
/// serenity's. The config accepts it as a string or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Snowflake(pub u64);

/// How bad an alert is. By default DOWN is critical and DEGRADED a warning; an integration's
/// `severity` overrides both (see `config::Integration::alert_severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The integration is down (by default), or was declared critical.
    Critical,
    /// The integration is degraded (by default), or was declared a warning.
    Warning,
}

impl Severity {
    /// Every severity, worst first.
    pub const ALL: [Severity; 2] = [Severity::Critical, Severity::Warning];

    /// The lower-case name used in the config, logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }

    /// The default severity of an alert about `state`: critical for DOWN, warning for DEGRADED,
    /// none for states that raise no alert (UP, UNKNOWN, PAUSED).
    pub fn of_state(state: State) -> Option<Severity> {
        match state {
            State::Down => Some(Severity::Critical),
            State::Degraded => Some(Severity::Warning),
            State::Up | State::Unknown | State::Paused => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == s)
            .ok_or_else(|| format!("unknown severity {s:?}"))
    }
}

/// Who acted: the audit log names them, and the alert pipeline records who acknowledged or
/// silenced what. Every path that takes an actor handles every kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A Discord user.
    Discord {
        /// The user id.
        user: Snowflake,
        /// The name shown in Discord at the time.
        name: String,
    },
    /// A caller of the REST API, by its key's name (never the key itself).
    ApiKey {
        /// The key's name.
        key: String,
    },
    /// The scheduler, running a job on its own.
    Scheduler {
        /// The job.
        job: String,
    },
    /// Someone at the command line.
    Cli {
        /// The operating-system user.
        user: String,
    },
}

impl Actor {
    /// The stable name of the actor's kind: `discord`, `api_key`, `scheduler`, `cli`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Discord { .. } => "discord",
            Actor::ApiKey { .. } => "api_key",
            Actor::Scheduler { .. } => "scheduler",
            Actor::Cli { .. } => "cli",
        }
    }

    /// `(kind, id, name)` as the database stores them: the id is what filters match (a Discord
    /// user id, a key's, job's or user's name) and the name what people read.
    pub fn parts(&self) -> (&'static str, String, String) {
        match self {
            Actor::Discord { user, name } => ("discord", user.0.to_string(), name.clone()),
            Actor::ApiKey { key } => ("api_key", key.clone(), key.clone()),
            Actor::Scheduler { job } => ("scheduler", job.clone(), job.clone()),
            Actor::Cli { user } => ("cli", user.clone(), user.clone()),
        }
    }

    /// Reads [`Actor::parts`] back.
    pub fn from_parts(kind: &str, id: &str, name: &str) -> Result<Actor, String> {
        Ok(match kind {
            "discord" => Actor::Discord {
                user: Snowflake(
                    id.parse()
                        .map_err(|_| format!("discord actor id {id:?} is not a number"))?,
                ),
                name: name.to_string(),
            },
            "api_key" => Actor::ApiKey {
                key: id.to_string(),
            },
            "scheduler" => Actor::Scheduler {
                job: id.to_string(),
            },
            "cli" => Actor::Cli {
                user: id.to_string(),
            },
            other => return Err(format!("unknown actor kind {other:?}")),
        })
    }

    /// The person or process at the command line: the operating-system user (`USER`, else
    /// `LOGNAME`), or `cli` when neither is set.
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "cli".to_string());
        Actor::Cli { user }
    }

    /// The actor as one stable text: `discord:<user id>`, `apikey:<key name>`,
    /// `scheduler:<job>`, `cli:<user>` (what the REST API shows, and what an action's `roles`
    /// names a key by).
    pub fn reference(&self) -> String {
        match self {
            Actor::Discord { user, .. } => format!("discord:{}", user.0),
            Actor::ApiKey { key } => format!("apikey:{key}"),
            Actor::Scheduler { job } => format!("scheduler:{job}"),
            Actor::Cli { user } => format!("cli:{user}"),
        }
    }

    /// The name people read.
    pub fn name(&self) -> &str {
        match self {
            Actor::Discord { name, .. } => name,
            Actor::ApiKey { key } => key,
            Actor::Scheduler { job } => job,
            Actor::Cli { user } => user,
        }
    }
}

impl fmt::Display for Actor {
    /// `ana (discord)`, `retool-dashboard (api key)`, `status-board (scheduler)`, `ops (cli)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Actor::Discord { .. } => "discord",
            Actor::ApiKey { .. } => "api key",
            Actor::Scheduler { .. } => "scheduler",
            Actor::Cli { .. } => "cli",
        };
        write!(f, "{} ({kind})", self.name())
    }
}

/// How many characters of a user's input an answer quotes back: enough to recognise it, and few
/// enough that no echo can push an answer past a chat platform's limits (a Discord reply holds
/// 2,000 characters, and a client that ignores an option's limit can send 6,000).
pub const ECHO_LIMIT: usize = 100;

/// `text` cut to at most `max` characters, marked `…` when cut. Characters, not bytes, because
/// that is what chat platforms count. The cut falls at a word boundary when one lies in the
/// second half, so a sentence is not cut mid-word without need.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let cut: String = text.chars().take(max - 1).collect();
    let at_word = match cut.rfind(char::is_whitespace) {
        Some(space) if space > cut.len() / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", at_word.trim_end())
}

/// User input as an answer quotes it: in double quotes, escaped as Rust's `{:?}` escapes (so a
/// quote or a line break in the input cannot break the sentence around it), with at most
/// [`ECHO_LIMIT`] characters of the input.
pub fn echo(input: &str) -> String {
    format!("{:?}", shorten(input, ECHO_LIMIT))
}

/// The health state of one integration, as decided by the state machine in
/// [`crate::monitor::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    /// No check has decided anything yet (new integration, or first checks still running).
    Unknown,
    /// Checks pass and the degraded limits are not exceeded.
    Up,
    /// Checks pass, but latency p95 or the error rate over the window passes the limits.
    Degraded,
    /// `failure_threshold` checks in a row failed.
    Down,
    /// The integration is disabled; nothing is checked.
    Paused,
}

impl State {
    /// Every state, in the order a summary lists them (worst first).
    pub const ALL: [State; 5] = [
        State::Down,
        State::Degraded,
        State::Unknown,
        State::Paused,
        State::Up,
    ];

    /// The stable upper-case name used in logs, JSON, metrics and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "UNKNOWN",
            State::Up => "UP",
            State::Degraded => "DEGRADED",
            State::Down => "DOWN",
            State::Paused => "PAUSED",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown state {s:?}"))
    }
}

/// The outcome of one check of one integration.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The integration's configured name.
    pub integration: String,
    /// When the check started.
    pub at: DateTime<Utc>,
    /// Whether every condition held.
    pub success: bool,
    /// Time from sending the request to reading the whole body, in milliseconds.
    pub latency_ms: f64,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// For failures: the error class (`timeout`, `connect`, `conditions`, ...).
    pub error_kind: Option<String>,
    /// For failures: what went wrong, one line per failed condition or the transport error.
    pub message: Option<String>,
}

/// The persisted state of one integration: everything needed to continue after a restart
/// without starting from scratch.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationState {
    /// The integration's configured name.
    pub integration: String,
    /// The current state.
    pub state: State,
    /// When the current state began.
    pub since: DateTime<Utc>,
    /// Failures in a row, counting the last check.
    pub consecutive_failures: u32,
    /// Successes in a row, counting the last check.
    pub consecutive_successes: u32,
    /// The last check, if any.
    pub last_check: Option<LastCheck>,
}

/// A summary of the most recent check, kept with the state.
#[derive(Debug, Clone, PartialEq)]
pub struct LastCheck {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Whether it passed.
    pub success: bool,
    /// Its latency in milliseconds.
    pub latency_ms: f64,
    /// What failed, when it failed.
    pub message: Option<String>,
}

impl IntegrationState {
    /// The state of an integration that has never been checked.
    pub fn new(integration: impl Into<String>, now: DateTime<Utc>) -> Self {
        IntegrationState {
            integration: integration.into(),
            state: State::Unknown,
            since: now,
            consecutive_failures: 0,
            consecutive_successes: 0,
            last_check: None,
        }
    }
}

/// A change of state, with the reason the state machine gives for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The integration's configured name.
    pub integration: String,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why, in one human sentence (failed conditions, thresholds, degraded limits).
    pub reason: String,
    /// When the deciding check ran.
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_round_trip_through_their_parts() {
        for actor in [
            Actor::Discord {
                user: Snowflake(42),
                name: "ana".into(),
            },
            Actor::ApiKey {
                key: "retool".into(),
            },
            Actor::Scheduler {
                job: "status-board".into(),
            },
            Actor::Cli { user: "ops".into() },
        ] {
            let (kind, id, name) = actor.parts();
            assert_eq!(kind, actor.kind());
            assert_eq!(Actor::from_parts(kind, &id, &name), Ok(actor));
        }
        assert!(Actor::from_parts("discord", "x", "ana").is_err());
        assert_eq!(
            Actor::ApiKey {
                key: "retool".into()
            }
            .reference(),
            "apikey:retool"
        );
        assert!(Actor::from_parts("robot", "x", "x").is_err());
    }

    #[test]
    fn shortening_cuts_at_a_word_and_marks_it() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("status 500 from the upstream", 15), "status 500…");
        assert!(shorten(&"x".repeat(50), 10).chars().count() <= 10);
        assert!(shorten(&"x".repeat(50), 10).ends_with('…'));
        assert_eq!(shorten("anything", 0), "");
    }

    #[test]
    fn shortening_counts_characters_not_bytes() {
        // 100 two-byte characters fit in 100 characters, though they take 200 bytes.
        let accents = "é".repeat(100);
        assert_eq!(shorten(&accents, 100), accents);
        let cut = shorten(&"🟢".repeat(300), 100);
        assert_eq!(cut.chars().count(), 100);
    }

    #[test]
    fn echoes_quote_at_most_the_echo_limit() {
        assert_eq!(echo("payments-api"), "\"payments-api\"");
        let long = echo(&"x".repeat(2000));
        assert_eq!(long.chars().count(), ECHO_LIMIT + 2, "{long}");
        assert!(long.ends_with("x…\""), "{long}");
        // A quote in the input stays inside the quotes.
        assert_eq!(echo("a\"b"), "\"a\\\"b\"");
    }
}
