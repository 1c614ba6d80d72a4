//! The audit log's vocabulary: who did what, where, with which options, which permission it
//! needed and what allowed it, and how it ended. Every front records through the control-plane
//! service, so a Discord command, a REST call, a scheduled job and the command line leave the
//! same kind of entry. Options keep their types; values marked secret are redacted before an
//! entry exists, so no later step (the database, the audit channel, a log line) can leak them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::access::{Allowed, Permission};
use crate::model::{Actor, Snowflake};

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It did what was asked.
    Ok,
    /// The member lacked the permission (or used it in a DM).
    Denied,
    /// The input was wrong (unknown integration, bad duration, ...).
    Invalid,
    /// Something failed on our side or upstream; `error_kind` says what.
    Failed,
    /// The member was over the command rate limit.
    RateLimited,
}

impl Outcome {
    /// Every outcome, for `/audit outcome:` choices.
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Denied,
        Outcome::Invalid,
        Outcome::Failed,
        Outcome::RateLimited,
    ];

    /// The stable name stored and shown: `ok`, `denied`, `invalid`, `failed`, `rate_limited`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown outcome {s:?}"))
    }
}

/// One option of an invocation, as the user gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationOption {
    /// The option's name.
    pub name: String,
    /// Its value, with its type.
    pub value: OptionValue,
    /// Whether the option holds a secret (its value is never stored, mirrored or logged).
    pub secret: bool,
}

impl InvocationOption {
    /// An option that holds no secret.
    pub fn new(name: impl Into<String>, value: OptionValue) -> InvocationOption {
        InvocationOption {
            name: name.into(),
            value,
            secret: false,
        }
    }
}

/// An option's value, as typed as the front received it. Ids (users, roles, channels) are
/// written as strings, as Discord writes them, so JSON readers with 53-bit numbers keep them.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// Text.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Number(f64),
    /// True or false.
    Boolean(bool),
    /// A Discord user, role or channel.
    Id(Snowflake),
}

impl Serialize for OptionValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            OptionValue::Text(text) => serializer.serialize_str(text),
            OptionValue::Integer(n) => serializer.serialize_i64(*n),
            OptionValue::Number(n) => serializer.serialize_f64(*n),
            OptionValue::Boolean(b) => serializer.serialize_bool(*b),
            OptionValue::Id(id) => serializer.collect_str(&id.0),
        }
    }
}

/// The text stored in place of a secret option's value.
pub const REDACTED: &str = "[redacted]";

/// One audit log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When the invocation arrived.
    pub at: DateTime<Utc>,
    /// The guild, if any (`None` in DMs).
    pub guild: Option<Snowflake>,
    /// The channel, if any.
    pub channel: Option<Snowflake>,
    /// Who acted.
    pub actor: Actor,
    /// The command path, e.g. `perms grant`, or a button id like `status.page`.
    pub command: String,
    /// The options as a JSON object of typed values, secrets already redacted.
    pub options: serde_json::Value,
    /// The permission the call needed (`None` for what everyone may run, like `/help`).
    pub permission: Option<Permission>,
    /// What allowed it, when it was allowed (the owner, a role's grant, an API key's scope...).
    pub allowed: Option<Allowed>,
    /// How it ended.
    pub outcome: Outcome,
    /// Time from arrival to the answer, in milliseconds.
    pub latency_ms: f64,
    /// For failures: the error class (`timeout`, `storage`, ...).
    pub error_kind: Option<String>,
}

/// Turns options into the stored JSON object of typed values, replacing secret values with
/// [`REDACTED`].
pub fn redact(options: &[InvocationOption]) -> serde_json::Value {
    serde_json::Value::Object(
        options
            .iter()
            .map(|option| {
                let value = if option.secret {
                    serde_json::Value::String(REDACTED.to_string())
                } else {
                    serde_json::to_value(&option.value).unwrap_or(serde_json::Value::Null)
                };
                (option.name.clone(), value)
            })
            .collect(),
    )
}

/// What `/audit` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Only this actor id.
    pub actor_id: Option<String>,
    /// Only this command (its path: `alerts silence`), or the commands of this group
    /// (`alerts`).
    pub command: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// At most this many, newest first.
    pub limit: u32,
    /// Only entries older than this position (a cursor from [`AuditPage::older`]), for the
    /// next page.
    pub before: Option<i64>,
}

/// One page of audit entries, newest first, with the cursor of the next (older) page.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as [`AuditQuery::before`] for the next page; `None` when this is the last one.
    pub older: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_others_kept() {
        let options = [
            InvocationOption::new("workflow", OptionValue::Text("refund".into())),
            InvocationOption {
                name: "api_key".into(),
                value: OptionValue::Text("sk-live-123".into()),
                secret: true,
            },
            InvocationOption::new("count", OptionValue::Integer(3)),
            InvocationOption::new("dry_run", OptionValue::Boolean(true)),
            InvocationOption::new("role", OptionValue::Id(Snowflake(u64::MAX))),
        ];
        let stored = redact(&options);
        assert_eq!(
            stored,
            serde_json::json!({
                "workflow": "refund",
                "api_key": "[redacted]",
                "count": 3,
                "dry_run": true,
                "role": u64::MAX.to_string(),
            })
        );
        assert!(!stored.to_string().contains("sk-live"));
    }

    #[test]
    fn outcome_names_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
        assert_eq!(Outcome::RateLimited.to_string(), "rate_limited");
    }
}
