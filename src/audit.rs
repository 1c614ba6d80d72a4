//! The audit log's vocabulary: who did what, where, with which options, and how it ended.
//! Every front records through the control-plane service, so a Discord command and (later) a
//! REST call leave the same kind of entry. Option values marked secret are redacted before an
//! entry exists, so no later step can leak them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::Snowflake;

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

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A Discord user.
    Discord {
        /// The user id.
        user: Snowflake,
        /// The name shown in Discord at the time.
        name: String,
    },
}

impl Actor {
    /// `(kind, id, name)` as stored.
    pub fn parts(&self) -> (&'static str, String, &str) {
        match self {
            Actor::Discord { user, name } => ("discord", user.0.to_string(), name),
        }
    }
}

/// One option of an invocation, as the user gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationOption {
    /// The option's name.
    pub name: String,
    /// Its value, as text.
    pub value: String,
    /// Whether the option holds a secret (its value is never stored).
    pub secret: bool,
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
    /// The options as a JSON object, secrets already redacted.
    pub options: serde_json::Value,
    /// How it ended.
    pub outcome: Outcome,
    /// Time from arrival to the answer, in milliseconds.
    pub latency_ms: f64,
    /// For failures: the error class (`timeout`, `storage`, ...).
    pub error_kind: Option<String>,
}

/// Turns options into the stored JSON object, replacing secret values with [`REDACTED`].
pub fn redact(options: &[InvocationOption]) -> serde_json::Value {
    serde_json::Value::Object(
        options
            .iter()
            .map(|option| {
                let value = if option.secret {
                    REDACTED.to_string()
                } else {
                    option.value.clone()
                };
                (option.name.clone(), serde_json::Value::String(value))
            })
            .collect(),
    )
}

/// What `/audit` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Only this actor id.
    pub actor_id: Option<String>,
    /// Only this command (exact path).
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
            InvocationOption {
                name: "workflow".into(),
                value: "refund".into(),
                secret: false,
            },
            InvocationOption {
                name: "api_key".into(),
                value: "sk-live-123".into(),
                secret: true,
            },
        ];
        let stored = redact(&options);
        assert_eq!(
            stored,
            serde_json::json!({"workflow": "refund", "api_key": "[redacted]"})
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
