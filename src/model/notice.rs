//! What an alert message shows: a notice (one message about one incident, or a burst of them)
//! as the store reads it and every front renders it. The alert pipeline decides what a notice
//! holds; the store builds these views; the Discord courier and the log render them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Actor, Severity, Snowflake, State};

/// Where a delivered message is, so later changes edit it and replies thread under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageRef {
    /// The channel it is in.
    pub channel: Snowflake,
    /// The message.
    pub message: Snowflake,
}

/// Whether a notice still needs someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeStatus {
    /// At least one incident is open and nobody acknowledged it.
    Open,
    /// Open, and someone acknowledged it (reminders stop).
    Acknowledged,
    /// Every incident in it is resolved.
    Resolved,
}

impl NoticeStatus {
    /// The lower-case name used in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Open => "open",
            NoticeStatus::Acknowledged => "acknowledged",
            NoticeStatus::Resolved => "resolved",
        }
    }
}

/// Who acknowledged a notice, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// Who.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// What a reply under an alert message says. The outbox stores the kind; the front that
/// delivers the reply renders it from the notice's view, as it renders posts and edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// Every incident of the notice resolved ("resolved after 12m").
    Resolved,
    /// The notice is still open and nobody acknowledged it.
    Reminder,
    /// A flapping notice's integrations have been stable for the flapping window.
    StableAgain,
}

impl ReplyKind {
    /// The stable name the outbox stores: `resolved`, `reminder`, `stable`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Resolved => "resolved",
            ReplyKind::Reminder => "reminder",
            ReplyKind::StableAgain => "stable",
        }
    }
}

impl std::str::FromStr for ReplyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ReplyKind::Resolved,
            ReplyKind::Reminder,
            ReplyKind::StableAgain,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == s)
        .ok_or_else(|| format!("unknown reply kind {s:?}"))
    }
}

/// One incident's line in a notice.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentLine {
    /// The incident.
    pub incident: i64,
    /// The integration.
    pub integration: String,
    /// Its severity.
    pub severity: Severity,
    /// The integration's current state as far as the incident knows (UP once resolved).
    pub state: State,
    /// Why it changed (failed conditions, "3 failures in a row: ...").
    pub reason: String,
    /// When the incident opened.
    pub since: DateTime<Utc>,
    /// The last check's error, if it failed.
    pub last_error: Option<String>,
    /// The last check's latency.
    pub latency_ms: Option<f64>,
    /// When it resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Integrations depending on this one that are down with it: recorded, not notified
    /// separately.
    pub dependents: Vec<String>,
}

/// Everything one alert message shows.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeView {
    /// The notice (its buttons carry this id).
    pub notice: i64,
    /// The worst severity among its incidents.
    pub severity: Severity,
    /// Open, acknowledged or resolved.
    pub status: NoticeStatus,
    /// Its incidents, in the order they opened (one for a single incident).
    pub incidents: Vec<IncidentLine>,
    /// When the first incident opened.
    pub opened_at: DateTime<Utc>,
    /// How long it lasted, once every incident resolved.
    pub resolved_after: Option<Duration>,
    /// Who acknowledged it.
    pub acknowledged: Option<Acknowledgement>,
    /// Until when notifications about it are silenced.
    pub silenced_until: Option<DateTime<Utc>>,
    /// Whether one of its integrations is flapping (changing state too often to notify each
    /// change).
    pub flapping: bool,
}
