//! Storage of incidents, notices, the alert outbox and silences (migrations `0003_alerts.sql`,
//! `0004_installation.sql`, `0005_typed_plane.sql`): the types the alert pipeline reads and
//! writes, here; the changes that must go together ([`AlertTx`]: an incident change, the
//! deliveries it causes and the cursor of the transition that caused them, in one transaction),
//! in `tx.rs`; what the dispatcher reads and records about deliveries, in `outbox.rs`; and what
//! the fronts and the timers read, in `read.rs`.

mod outbox;
mod read;
mod tx;

pub use tx::AlertTx;

use std::collections::HashMap;
use std::str::FromStr;
use tracing::instrument;

use chrono::{DateTime, Utc};
use sqlx::{Row, Sqlite};

use super::{Store, StoreError, from_millis, id, millis, snowflake, transition_of};
use crate::model::notice::{
    Acknowledgement, IncidentLine, MessageRef, NoticeStatus, NoticeView, ReplyKind,
};
use crate::model::{Actor, Severity, Snowflake};
use crate::model::{State, Transition};

/// What an outbox row asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    /// The notice's first message.
    Post,
    /// Show the notice's current state in its message.
    Edit,
    /// A reply under the message (reminder, resolution).
    Reply,
}

impl DeliveryKind {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Post => "post",
            DeliveryKind::Edit => "edit",
            DeliveryKind::Reply => "reply",
        }
    }

    fn parse(text: &str) -> Result<DeliveryKind, StoreError> {
        match text {
            "post" => Ok(DeliveryKind::Post),
            "edit" => Ok(DeliveryKind::Edit),
            "reply" => Ok(DeliveryKind::Reply),
            other => Err(StoreError::Corrupt(format!("outbox kind {other:?}"))),
        }
    }
}

/// One pending delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The row (its id is the delivery's idempotency key).
    pub id: i64,
    /// The notice it is about.
    pub notice: i64,
    /// What to do.
    pub kind: DeliveryKind,
    /// What a reply says (replies only).
    pub reply: Option<ReplyKind>,
    /// Roles to mention (post and reply).
    pub mention: Vec<Snowflake>,
    /// Attempts so far.
    pub attempts: i64,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
    /// The notice's channel (None: none configured), for pacing deliveries per channel.
    pub channel: Option<Snowflake>,
}

/// What [`Store::due_deliveries`] leaves out: rows of notices already being delivered, rows of
/// channels with as many deliveries in flight as allowed, and edits in channels whose last edit
/// was too recent. Channels are ids, 0 for notices without a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueFilter {
    /// Notices with a delivery in flight.
    pub notices: Vec<i64>,
    /// Channels at their limit of deliveries in flight.
    pub channels: Vec<i64>,
    /// Channels whose edits must wait.
    pub edits_in: Vec<i64>,
}

/// A notice's delivery facts.
#[derive(Debug, Clone, PartialEq)]
pub struct NoticeTarget {
    /// Where it goes (None: no channel configured).
    pub channel: Option<Snowflake>,
    /// Its message, once posted.
    pub message: Option<MessageRef>,
    /// Roles mentioned on open and reminders.
    pub mention: Vec<Snowflake>,
}

/// An incident that is still open.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenIncident {
    /// The incident.
    pub id: i64,
    /// The integration.
    pub integration: String,
    /// Its notice, when it is notified.
    pub notice: Option<i64>,
    /// Its state.
    pub state: State,
    /// Its severity.
    pub severity: Severity,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// Why it is recorded without a notice (`silence:3`, `maintenance:nightly`,
    /// `dependency:database`), when it is.
    pub suppressed: Option<String>,
}

/// One incident as the incident list shows it (`GET /api/v1/incidents`): open or resolved,
/// notified or only recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRecord {
    /// The incident's own id (the list's order and cursor).
    pub id: i64,
    /// The number people know it by: its alert message's (notice's) number, which `/alerts
    /// ack` and the API's acknowledge take; `None` while it is recorded without a message.
    /// Incidents grouped into one message share it.
    pub number: Option<i64>,
    /// The integration.
    pub integration: String,
    /// Its severity.
    pub severity: Severity,
    /// The state it went to.
    pub state: State,
    /// Why (the transition's reason).
    pub reason: String,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it resolved, once it has.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who acknowledged its message, when someone did.
    pub acknowledged: Option<Acknowledgement>,
    /// Why it is recorded without a message (`silence:3`, `maintenance:nightly`), when it is.
    pub suppressed: Option<String>,
}

/// An incident about to open: which integration, how bad, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewIncident<'a> {
    /// The integration.
    pub integration: &'a str,
    /// Its severity.
    pub severity: Severity,
    /// The state it went to.
    pub state: State,
    /// Why (the transition's reason).
    pub reason: &'a str,
    /// When.
    pub at: DateTime<Utc>,
}

/// An active silence.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    /// Its id (for `/alerts unsilence`).
    pub id: i64,
    /// An integration name or `tag:NAME`.
    pub target: String,
    /// When it ends.
    pub until: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who.
    pub created_by: Actor,
}

/// An open notice due for a reminder check.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenNotice {
    /// The notice.
    pub id: i64,
    /// When the last reminder went out (or when it opened).
    pub reminded_at: DateTime<Utc>,
    /// Whether someone acknowledged it.
    pub acknowledged: bool,
    /// Until when it is silenced.
    pub silenced_until: Option<DateTime<Utc>>,
    /// Roles to mention.
    pub mention: Vec<Snowflake>,
    /// Whether it is a flapping notice (quiet until its integration is stable).
    pub flapping: bool,
}

/// An edit of notice `$1`, due at once, written at `$2`.
const QUEUE_EDIT: &str = "INSERT INTO outbox (notice_id, kind, reply, mention, created_at_ms, \
     not_before_ms, attempts) VALUES ($1, 'edit', NULL, '[]', $2, 0, 0)";

/// How many transitions integration `$1` had at or after `$2` (flapping and its settling).
const TRANSITIONS_SINCE: &str =
    "SELECT COUNT(*) FROM transitions WHERE integration = $1 AND at_ms >= $2";

/// The silences in force at `$1`.
const ACTIVE_SILENCES: &str = "SELECT id, target, until_ms, reason, created_kind, created_id, created_name \
     FROM silences WHERE removed_at_ms IS NULL AND until_ms > $1 ORDER BY id";

/// The open incident of integration `$1` (the newest, should there be two).
const OPEN_INCIDENT: &str = "SELECT id, integration, notice_id, state, severity, opened_at_ms, \
     suppressed FROM incidents WHERE integration = $1 AND resolved_at_ms IS NULL \
     ORDER BY id DESC LIMIT 1";

fn mention_json(mention: &[Snowflake]) -> String {
    serde_json::to_string(&mention.iter().map(|m| m.0.to_string()).collect::<Vec<_>>())
        .expect("strings serialize")
}

fn mention_of(text: &str) -> Result<Vec<Snowflake>, StoreError> {
    let ids: Vec<String> = serde_json::from_str(text)
        .map_err(|err| StoreError::Corrupt(format!("mention list: {err}")))?;
    ids.iter()
        .map(|s| {
            s.parse()
                .map(Snowflake)
                .map_err(|_| StoreError::Corrupt(format!("mention id {s:?}")))
        })
        .collect()
}

/// The Discord user id columns kept beside the actor columns (`acked_by`, `created_by`): the
/// user's id, or 0 for actors that are not Discord users.
fn discord_id(actor: &Actor) -> i64 {
    match actor {
        Actor::Discord { user, .. } => id(*user),
        _ => 0,
    }
}

/// An actor from its stored kind, id and name.
fn actor_of(kind: &str, actor_id: Option<String>, name: &str) -> Result<Actor, StoreError> {
    Actor::from_parts(kind, actor_id.as_deref().unwrap_or_default(), name)
        .map_err(StoreError::Corrupt)
}

fn severity_of(text: &str) -> Result<Severity, StoreError> {
    Severity::from_str(text).map_err(StoreError::Corrupt)
}

fn state_of(text: &str) -> Result<State, StoreError> {
    State::from_str(text).map_err(StoreError::Corrupt)
}

fn silence_of(row: &sqlx::sqlite::SqliteRow) -> Result<Silence, StoreError> {
    Ok(Silence {
        id: row.try_get("id")?,
        target: row.try_get("target")?,
        until: from_millis(row.try_get("until_ms")?)?,
        reason: row.try_get("reason")?,
        created_by: actor_of(
            &row.try_get::<String, _>("created_kind")?,
            row.try_get::<Option<String>, _>("created_id")?,
            &row.try_get::<String, _>("created_name")?,
        )?,
    })
}

fn open_incident_of(row: &sqlx::sqlite::SqliteRow) -> Result<OpenIncident, StoreError> {
    Ok(OpenIncident {
        id: row.try_get("id")?,
        integration: row.try_get("integration")?,
        notice: row.try_get("notice_id")?,
        state: state_of(&row.try_get::<String, _>("state")?)?,
        severity: severity_of(&row.try_get::<String, _>("severity")?)?,
        opened_at: from_millis(row.try_get("opened_at_ms")?)?,
        suppressed: row.try_get("suppressed")?,
    })
}
