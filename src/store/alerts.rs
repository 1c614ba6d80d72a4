//! Storage of incidents, notices, the alert outbox and silences (migration `0003_alerts.sql`).
//!
//! Changes that must go together (an incident change and the deliveries it causes, and the
//! cursor of the transition that caused them) go through one [`AlertTx`]; the domain logic in
//! `alerts` drives it and commits once.

use tracing::instrument;
use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::{Row, Sqlite};

use super::{Store, StoreError, from_millis, id, millis, snowflake};
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

/// One transaction of alert changes.
pub struct AlertTx {
    tx: sqlx::Transaction<'static, Sqlite>,
}

impl AlertTx {
    /// Commits every change made through this transaction.
    #[instrument(skip_all)]
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// The open incident of `integration`, if any.
    #[instrument(skip_all)]
    pub async fn open_incident(
        &mut self,
        integration: &str,
    ) -> Result<Option<OpenIncident>, StoreError> {
        let row = sqlx::query(OPEN_INCIDENT)
            .bind(integration)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|row| open_incident_of(&row)).transpose()
    }

    /// Opens an incident; returns its id. `notice` is the message that tells about it (None
    /// while it is only recorded, and then `suppressed` says why); `parent` is the incident of
    /// a DOWN dependency that explains it.
    #[instrument(skip_all)]
    pub async fn insert_incident(
        &mut self,
        new: &NewIncident<'_>,
        notice: Option<i64>,
        parent: Option<i64>,
        suppressed: Option<&str>,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (integration, notice_id, severity, state, reason, opened_at_ms, \
             parent_id, suppressed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new.integration)
        .bind(notice)
        .bind(new.severity.as_str())
        .bind(new.state.as_str())
        .bind(new.reason)
        .bind(millis(new.at))
        .bind(parent)
        .bind(suppressed)
        .fetch_one(&mut *self.tx)
        .await?;
        self.event(
            id,
            new.at,
            "opened",
            &format!("{}: {}", new.state, new.reason),
        )
        .await?;
        Ok(id)
    }

    /// Records a change of an open incident's state.
    #[instrument(skip_all)]
    pub async fn update_incident(
        &mut self,
        incident: i64,
        state: State,
        severity: Severity,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET state = $1, severity = $2, reason = $3 WHERE id = $4")
            .bind(state.as_str())
            .bind(severity.as_str())
            .bind(reason)
            .bind(incident)
            .execute(&mut *self.tx)
            .await?;
        self.event(incident, at, "changed", &format!("{state}: {reason}"))
            .await
    }

    /// Resolves an incident.
    #[instrument(skip_all)]
    pub async fn resolve_incident(
        &mut self,
        incident: i64,
        state: State,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE incidents SET state = $1, reason = $2, resolved_at_ms = $3 WHERE id = $4",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(millis(at))
        .bind(incident)
        .execute(&mut *self.tx)
        .await?;
        self.event(incident, at, "resolved", &format!("{state}: {reason}"))
            .await
    }

    /// Appends to an incident's timeline.
    #[instrument(skip_all)]
    pub async fn event(
        &mut self,
        incident: i64,
        at: DateTime<Utc>,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO incident_events (incident_id, at_ms, kind, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(incident)
        .bind(millis(at))
        .bind(kind)
        .bind(detail)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// An unresolved, non-flapping notice on `channel` opened at or after `since` (a burst to
    /// join).
    #[instrument(skip_all)]
    pub async fn joinable_notice(
        &mut self,
        channel: Option<Snowflake>,
        since: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let Some(channel) = channel else {
            return Ok(None);
        };
        Ok(sqlx::query_scalar(
            "SELECT id FROM notices WHERE channel_id = $1 AND resolved_at_ms IS NULL \
             AND opened_at_ms >= $2 AND flapping = FALSE ORDER BY id LIMIT 1",
        )
        .bind(id(channel))
        .bind(millis(since))
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// Creates a notice; returns its id.
    #[instrument(skip_all)]
    pub async fn insert_notice(
        &mut self,
        channel: Option<Snowflake>,
        mention: &[Snowflake],
        at: DateTime<Utc>,
        flapping: bool,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO notices (channel_id, mention, opened_at_ms, reminded_at_ms, flapping) \
             VALUES ($1, $2, $3, $3, $4) RETURNING id",
        )
        .bind(channel.map(id))
        .bind(mention_json(mention))
        .bind(millis(at))
        .bind(flapping)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// How many incidents of `notice` are still open.
    #[instrument(skip_all)]
    pub async fn open_in_notice(&mut self, notice: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM incidents WHERE notice_id = $1 AND resolved_at_ms IS NULL",
        )
        .bind(notice)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Marks a notice resolved (every incident in it is).
    #[instrument(skip_all)]
    pub async fn resolve_notice(
        &mut self,
        notice: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET resolved_at_ms = $1 WHERE id = $2")
            .bind(millis(at))
            .bind(notice)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// When a notice opened.
    #[instrument(skip_all)]
    pub async fn notice_opened_at(&mut self, notice: i64) -> Result<DateTime<Utc>, StoreError> {
        let at: i64 = sqlx::query_scalar("SELECT opened_at_ms FROM notices WHERE id = $1")
            .bind(notice)
            .fetch_one(&mut *self.tx)
            .await?;
        from_millis(at)
    }

    /// The roles a notice mentions.
    #[instrument(skip_all)]
    pub async fn notice_mention(&mut self, notice: i64) -> Result<Vec<Snowflake>, StoreError> {
        let text: String = sqlx::query_scalar("SELECT mention FROM notices WHERE id = $1")
            .bind(notice)
            .fetch_one(&mut *self.tx)
            .await?;
        mention_of(&text)
    }

    /// Records who acknowledged a notice; false when it was already acknowledged or resolved.
    #[instrument(skip_all)]
    pub async fn acknowledge(
        &mut self,
        notice: i64,
        by: &Actor,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (kind, actor_id, name) = by.parts();
        let changed = sqlx::query(
            "UPDATE notices SET acked_by = $1, acked_kind = $2, acked_id = $3, acked_name = $4, \
             acked_at_ms = $5 WHERE id = $6 AND acked_by IS NULL AND resolved_at_ms IS NULL",
        )
        .bind(discord_id(by))
        .bind(kind)
        .bind(&actor_id)
        .bind(&name)
        .bind(millis(at))
        .bind(notice)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if changed > 0 {
            for incident in self.incidents_of(notice).await? {
                self.event(
                    incident,
                    at,
                    "acknowledged",
                    &format!("by {name} ({kind} {actor_id})"),
                )
                .await?;
            }
        }
        Ok(changed > 0)
    }

    /// Sets until when a notice is silenced.
    #[instrument(skip_all)]
    pub async fn silence_notice(
        &mut self,
        notice: i64,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
        why: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET silenced_until_ms = $1 WHERE id = $2")
            .bind(millis(until))
            .bind(notice)
            .execute(&mut *self.tx)
            .await?;
        for incident in self.incidents_of(notice).await? {
            self.event(incident, at, "silenced", why).await?;
        }
        Ok(())
    }

    /// Records that a reminder went out.
    #[instrument(skip_all)]
    pub async fn reminded(&mut self, notice: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET reminded_at_ms = $1 WHERE id = $2")
            .bind(millis(at))
            .bind(notice)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn incidents_of(&mut self, notice: i64) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM incidents WHERE notice_id = $1 ORDER BY id")
                .bind(notice)
                .fetch_all(&mut *self.tx)
                .await?,
        )
    }

    /// Queues a delivery, due at once (`at` is when the change happened).
    #[instrument(skip_all)]
    pub async fn enqueue(
        &mut self,
        notice: i64,
        kind: DeliveryKind,
        reply: Option<ReplyKind>,
        mention: &[Snowflake],
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO outbox (notice_id, kind, reply, mention, created_at_ms, not_before_ms, attempts) \
             VALUES ($1, $2, $3, $4, $5, 0, 0) RETURNING id",
        )
        .bind(notice)
        .bind(kind.as_str())
        .bind(reply.map(ReplyKind::as_str))
        .bind(mention_json(mention))
        .bind(millis(at))
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Moves the alert cursor to `transition`.
    #[instrument(skip_all)]
    pub async fn set_cursor(&mut self, transition: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_cursor (id, transition_id) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET transition_id = excluded.transition_id",
        )
        .bind(transition)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Adds a silence; returns its id.
    #[instrument(skip_all)]
    pub async fn insert_silence(
        &mut self,
        target: &str,
        until: DateTime<Utc>,
        reason: &str,
        by: &Actor,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (kind, actor_id, name) = by.parts();
        Ok(sqlx::query_scalar(
            "INSERT INTO silences (target, until_ms, reason, created_by, created_kind, created_id, \
             created_name, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(target)
        .bind(millis(until))
        .bind(reason)
        .bind(discord_id(by))
        .bind(kind)
        .bind(actor_id)
        .bind(name)
        .bind(millis(at))
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Ends a silence now; false when there is no active silence with that id.
    #[instrument(skip_all)]
    pub async fn remove_silence(
        &mut self,
        silence: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE silences SET removed_at_ms = $1 WHERE id = $2 AND removed_at_ms IS NULL AND until_ms > $1",
        )
        .bind(millis(at))
        .bind(silence)
        .execute(&mut *self.tx)
        .await?
        .rows_affected()
            > 0)
    }

    /// Puts a recorded incident under a notice (a dependent that needs its own message now).
    #[instrument(skip_all)]
    pub async fn attach(&mut self, incident: i64, notice: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET notice_id = $1, suppressed = NULL WHERE id = $2")
            .bind(notice)
            .bind(incident)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The open incidents recorded under `parent` (dependents) without a notice of their own.
    #[instrument(skip_all)]
    pub async fn orphaned_children(
        &mut self,
        parent: i64,
    ) -> Result<Vec<OpenIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, integration, notice_id, state, severity, opened_at_ms, suppressed FROM incidents              WHERE parent_id = $1 AND resolved_at_ms IS NULL AND notice_id IS NULL ORDER BY id",
        )
        .bind(parent)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(open_incident_of).collect()
    }

    /// Whether `notice` is a flapping notice (quiet until its integration is stable).
    #[instrument(skip_all)]
    pub async fn is_flapping(&mut self, notice: i64) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar::<_, bool>("SELECT flapping FROM notices WHERE id = $1")
                .bind(notice)
                .fetch_optional(&mut *self.tx)
                .await?
                .unwrap_or(false),
        )
    }

    /// The silences in force at `now` (as [`Store::active_silences`], inside this transaction).
    #[instrument(skip_all)]
    pub async fn active_silences(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Silence>, StoreError> {
        let rows = sqlx::query(ACTIVE_SILENCES)
            .bind(millis(now))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(silence_of).collect()
    }

    /// How many transitions `integration` had since `since`.
    #[instrument(skip_all)]
    pub async fn transitions_since(
        &mut self,
        integration: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM transitions WHERE integration = $1 AND at_ms >= $2",
        )
        .bind(integration)
        .bind(millis(since))
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// The open flapping notice that already covers `integration`, if any.
    #[instrument(skip_all)]
    pub async fn flapping_notice_of(
        &mut self,
        integration: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT n.id FROM notices n WHERE n.flapping = TRUE AND n.resolved_at_ms IS NULL              AND EXISTS (SELECT 1 FROM incidents i WHERE i.notice_id = n.id AND i.integration = $1)              ORDER BY n.id LIMIT 1",
        )
        .bind(integration)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// A flapping notice's integration is stable again: it becomes an ordinary notice.
    #[instrument(skip_all)]
    pub async fn end_flapping(&mut self, notice: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET flapping = FALSE WHERE id = $1")
            .bind(notice)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The open notices whose incidents are on one of `integrations`.
    #[instrument(skip_all)]
    pub async fn open_notices_of(
        &mut self,
        integrations: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        let mut out = Vec::new();
        for name in integrations {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT DISTINCT notice_id FROM incidents WHERE integration = $1 \
                 AND resolved_at_ms IS NULL AND notice_id IS NOT NULL",
            )
            .bind(name)
            .fetch_all(&mut *self.tx)
            .await?;
            out.extend(ids);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
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

impl Store {
    /// Starts a transaction of alert changes.
    #[instrument(skip_all)]
    pub async fn alert_tx(&self) -> Result<AlertTx, StoreError> {
        // IMMEDIATE takes the write lock at BEGIN, waiting up to the busy timeout. A deferred
        // transaction reads first and fails at once with SQLITE_BUSY when it then writes while
        // the batching writer holds the lock (measured: hundreds of such failures in a burst of
        // 1,000 transitions with `benches/alerts.rs`). PostgreSQL will lock rows instead.
        Ok(AlertTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
        })
    }

    /// The last transition turned into incidents (0 before the first).
    #[instrument(skip_all)]
    pub async fn alert_cursor(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT transition_id FROM alert_cursor WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    /// Transitions after `after`, oldest first, at most `limit`.
    #[instrument(skip_all)]
    pub async fn transitions_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Transition)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, integration, from_state, to_state, reason, at_ms FROM transitions \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    row.try_get("id")?,
                    Transition {
                        integration: row.try_get("integration")?,
                        from: state_of(&row.try_get::<String, _>("from_state")?)?,
                        to: state_of(&row.try_get::<String, _>("to_state")?)?,
                        reason: row.try_get("reason")?,
                        at: from_millis(row.try_get("at_ms")?)?,
                    },
                ))
            })
            .collect()
    }

    /// How many transitions `integration` had since `since`.
    #[instrument(skip_all)]
    pub async fn transitions_since(
        &self,
        integration: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM transitions WHERE integration = $1 AND at_ms >= $2",
        )
        .bind(integration)
        .bind(millis(since))
        .fetch_one(&self.pool)
        .await?)
    }

    /// The deliveries that may go now: the oldest pending row of each notice, when due, oldest
    /// first, leaving out what the dispatcher cannot start yet (see [`DueFilter`]).
    #[instrument(skip_all)]
    pub async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        skip: &DueFilter,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        // The lists are integers formatted into the statement (no text from outside), so the
        // statement stays portable without array parameters.
        let list = |ids: &[i64]| {
            ids.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sql = String::from(
            "SELECT o.id, o.notice_id, o.kind, o.reply, o.mention, o.attempts, o.created_at_ms, \
             n.channel_id FROM outbox o LEFT JOIN notices n ON n.id = o.notice_id \
             WHERE o.done_at_ms IS NULL AND o.not_before_ms <= $1 \
             AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.notice_id = o.notice_id AND p.done_at_ms IS NULL)",
        );
        if !skip.notices.is_empty() {
            sql.push_str(&format!(
                " AND o.notice_id NOT IN ({})",
                list(&skip.notices)
            ));
        }
        if !skip.channels.is_empty() {
            sql.push_str(&format!(
                " AND COALESCE(n.channel_id, 0) NOT IN ({})",
                list(&skip.channels)
            ));
        }
        if !skip.edits_in.is_empty() {
            sql.push_str(&format!(
                " AND NOT (o.kind = 'edit' AND COALESCE(n.channel_id, 0) IN ({}))",
                list(&skip.edits_in)
            ));
        }
        sql.push_str(" ORDER BY o.id LIMIT $2");
        // Safe: only integers are formatted into it.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(millis(now))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(OutboxRow {
                    id: row.try_get("id")?,
                    notice: row.try_get("notice_id")?,
                    kind: DeliveryKind::parse(&row.try_get::<String, _>("kind")?)?,
                    reply: row
                        .try_get::<Option<String>, _>("reply")?
                        .map(|reply| reply.parse().map_err(StoreError::Corrupt))
                        .transpose()?,
                    mention: mention_of(&row.try_get::<String, _>("mention")?)?,
                    attempts: row.try_get("attempts")?,
                    created_at: from_millis(row.try_get("created_at_ms")?)?,
                    channel: row.try_get::<Option<i64>, _>("channel_id")?.map(snowflake),
                })
            })
            .collect()
    }

    /// When the next pending delivery that is not due yet becomes due (None when there is
    /// none). Deliveries due now are the caller's to start or to wait for.
    #[instrument(skip_all)]
    pub async fn next_delivery_after(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(not_before_ms) FROM outbox WHERE done_at_ms IS NULL AND not_before_ms > $1",
        )
        .bind(millis(now))
        .fetch_one(&self.pool)
        .await?;
        at.map(from_millis).transpose()
    }

    /// Queues an edit of `notice`, due at once: its message shows something older than the
    /// notice (see [`crate::alerts::notice::Posted::shows_view`]).
    #[instrument(skip_all)]
    pub async fn queue_edit(&self, notice: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(QUEUE_EDIT)
            .bind(notice)
            .bind(millis(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many deliveries are pending.
    #[instrument(skip_all)]
    pub async fn pending_deliveries(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE done_at_ms IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// What a delivery of `notice` shows, read in one snapshot with the newest outbox row of
    /// the notice written before it: every pending edit up to that row is shown by this view,
    /// so it can be completed with the delivery (see [`Store::delivery_done`]).
    #[instrument(skip_all)]
    pub async fn delivery_snapshot(
        &self,
        notice: i64,
    ) -> Result<Option<(NoticeView, i64)>, StoreError> {
        // One read transaction: in WAL mode it reads one snapshot, so no row counted here can
        // be missing from the view.
        let mut tx = self.pool.begin().await?;
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM outbox WHERE notice_id = $1")
                .bind(notice)
                .fetch_one(&mut *tx)
                .await?;
        let view = notice_view_in(&mut tx, notice).await?;
        tx.commit().await?;
        Ok(view.map(|view| (view, newest.unwrap_or(0))))
    }

    /// Marks a delivery done. A post records the message it created; a post or an edit also
    /// completes the notice's other pending edits up to `shown` (the newest row the delivered
    /// view included; see [`Store::delivery_snapshot`]). When the message may show less than
    /// the view (a post answered with the message an earlier attempt created), pass `shown` =
    /// the row's own id, so no edit is taken as delivered, and `edit_again`, which queues an
    /// edit that brings the message up to date.
    #[instrument(skip_all)]
    pub async fn delivery_done(
        &self,
        row: &OutboxRow,
        message: Option<MessageRef>,
        now: DateTime<Utc>,
        shown: i64,
        edit_again: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE outbox SET done_at_ms = $1, attempts = attempts + 1 WHERE id = $2")
            .bind(millis(now))
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        if let Some(message) = message {
            sqlx::query("UPDATE notices SET message_channel = $1, message_id = $2 WHERE id = $3")
                .bind(id(message.channel))
                .bind(id(message.message))
                .bind(row.notice)
                .execute(&mut *tx)
                .await?;
        }
        if row.kind == DeliveryKind::Edit || row.kind == DeliveryKind::Post {
            sqlx::query(
                "UPDATE outbox SET done_at_ms = $1 WHERE notice_id = $2 AND kind = 'edit' \
                 AND done_at_ms IS NULL AND id <= $3",
            )
            .bind(millis(now))
            .bind(row.notice)
            .bind(shown)
            .execute(&mut *tx)
            .await?;
        }
        if edit_again {
            sqlx::query(QUEUE_EDIT)
                .bind(row.notice)
                .bind(millis(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// This installation's random token (migration `0004_installation.sql`), which makes
    /// delivery keys unique across databases.
    #[instrument(skip_all)]
    pub async fn installation_token(&self) -> Result<String, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT token FROM installation WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Open incidents recorded without a notice because of a silence or a maintenance window
    /// (`suppressed` starts with `silence:` or `maintenance:`): what a silence's or a window's
    /// end releases.
    #[instrument(skip_all)]
    pub async fn held_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, integration, notice_id, state, severity, opened_at_ms, suppressed FROM incidents \
             WHERE resolved_at_ms IS NULL AND notice_id IS NULL \
             AND (suppressed LIKE 'silence:%' OR suppressed LIKE 'maintenance:%') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(open_incident_of).collect()
    }

    /// When `integration` last changed state, if it ever did.
    #[instrument(skip_all)]
    pub async fn last_transition_at(
        &self,
        integration: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT MAX(at_ms) FROM transitions WHERE integration = $1")
                .bind(integration)
                .fetch_one(&self.pool)
                .await?;
        at.map(from_millis).transpose()
    }

    /// Moves a delivery to `not_before` without counting an attempt (it was not tried).
    #[instrument(skip_all)]
    pub async fn postpone(
        &self,
        row: &OutboxRow,
        not_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET not_before_ms = $1 WHERE id = $2")
            .bind(millis(not_before))
            .bind(row.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    #[instrument(skip_all)]
    pub async fn delivery_failed(
        &self,
        row: &OutboxRow,
        not_before: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, not_before_ms = $1, last_error = $2 WHERE id = $3",
        )
        .bind(millis(not_before))
        .bind(error)
        .bind(row.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where a notice goes and its message, if posted.
    #[instrument(skip_all)]
    pub async fn notice_target(&self, notice: i64) -> Result<Option<NoticeTarget>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT channel_id, mention, message_channel, message_id FROM notices WHERE id = $1",
        )
        .bind(notice)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let message = match (
            row.try_get::<Option<i64>, _>("message_channel")?,
            row.try_get::<Option<i64>, _>("message_id")?,
        ) {
            (Some(channel), Some(message)) => Some(MessageRef {
                channel: snowflake(channel),
                message: snowflake(message),
            }),
            _ => None,
        };
        Ok(Some(NoticeTarget {
            channel: row.try_get::<Option<i64>, _>("channel_id")?.map(snowflake),
            message,
            mention: mention_of(&row.try_get::<String, _>("mention")?)?,
        }))
    }

    /// Records the message a notice was posted as.
    #[instrument(skip_all)]
    pub async fn set_message(&self, notice: i64, message: MessageRef) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET message_channel = $1, message_id = $2 WHERE id = $3")
            .bind(id(message.channel))
            .bind(id(message.message))
            .bind(notice)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets a notice's message (deleted in Discord), so the next delivery posts anew.
    #[instrument(skip_all)]
    pub async fn forget_message(&self, notice: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET message_channel = NULL, message_id = NULL WHERE id = $1")
            .bind(notice)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What a notice's message shows now.
    #[instrument(skip_all)]
    pub async fn notice_view(&self, notice: i64) -> Result<Option<NoticeView>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let view = notice_view_in(&mut tx, notice).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The open notices (for reminders and `/alerts list`), oldest first.
    #[instrument(skip_all)]
    pub async fn open_notices(&self) -> Result<Vec<OpenNotice>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, reminded_at_ms, acked_by, silenced_until_ms, mention, flapping \
             FROM notices WHERE resolved_at_ms IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(OpenNotice {
                    id: row.try_get("id")?,
                    reminded_at: from_millis(row.try_get("reminded_at_ms")?)?,
                    acknowledged: row.try_get::<Option<i64>, _>("acked_by")?.is_some(),
                    silenced_until: row
                        .try_get::<Option<i64>, _>("silenced_until_ms")?
                        .map(from_millis)
                        .transpose()?,
                    mention: mention_of(&row.try_get::<String, _>("mention")?)?,
                    flapping: row.try_get("flapping")?,
                })
            })
            .collect()
    }

    /// The open incident of `integration`, if any.
    #[instrument(skip_all)]
    pub async fn open_incident_of(
        &self,
        integration: &str,
    ) -> Result<Option<OpenIncident>, StoreError> {
        let row = sqlx::query(OPEN_INCIDENT)
            .bind(integration)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| open_incident_of(&row)).transpose()
    }

    /// Every open incident, oldest first.
    #[instrument(skip_all)]
    pub async fn open_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, integration, notice_id, state, severity, opened_at_ms, suppressed FROM incidents \
             WHERE resolved_at_ms IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(open_incident_of).collect()
    }

    /// The silences in force at `now`.
    #[instrument(skip_all)]
    pub async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
        let rows = sqlx::query(ACTIVE_SILENCES)
            .bind(millis(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(silence_of).collect()
    }

    /// Deletes delivered outbox rows older than `delivered_before`, and resolved notices with
    /// their incidents and timelines older than `resolved_before`. Returns the rows deleted.
    #[instrument(skip_all)]
    pub async fn prune_alerts(
        &self,
        delivered_before: DateTime<Utc>,
        resolved_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut deleted =
            sqlx::query("DELETE FROM outbox WHERE done_at_ms IS NOT NULL AND done_at_ms < $1")
                .bind(millis(delivered_before))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let before = millis(resolved_before);
        deleted += sqlx::query(
            "DELETE FROM incident_events WHERE incident_id IN \
             (SELECT id FROM incidents WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        deleted += sqlx::query(
            "DELETE FROM incidents WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < $1",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // A resolved notice goes once nothing refers to it any more.
        deleted += sqlx::query(
            "DELETE FROM notices WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.notice_id = notices.id) \
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.notice_id = notices.id AND o.done_at_ms IS NULL)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    /// An incident's timeline: (time, kind, detail), oldest first.
    #[instrument(skip_all)]
    pub async fn incident_events(
        &self,
        incident: i64,
    ) -> Result<Vec<(DateTime<Utc>, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, kind, detail FROM incident_events WHERE incident_id = $1 ORDER BY id",
        )
        .bind(incident)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    from_millis(row.try_get("at_ms")?)?,
                    row.try_get("kind")?,
                    row.try_get("detail")?,
                ))
            })
            .collect()
    }
}

/// What a notice's message shows, read within `tx`.
async fn notice_view_in(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    notice: i64,
) -> Result<Option<NoticeView>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT id, opened_at_ms, resolved_at_ms, acked_by, acked_kind, acked_id, acked_name, acked_at_ms, \
         silenced_until_ms, flapping FROM notices WHERE id = $1",
    )
    .bind(notice)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let incidents = sqlx::query(
        "SELECT i.id, i.integration, i.severity, i.state, i.reason, i.opened_at_ms, \
         i.resolved_at_ms, s.last_message, s.last_latency_ms, s.last_success \
         FROM incidents i LEFT JOIN integration_states s ON s.integration = i.integration \
         WHERE i.notice_id = $1 ORDER BY i.id",
    )
    .bind(notice)
    .fetch_all(&mut **tx)
    .await?;
    let ids: Vec<i64> = incidents
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut dependents: HashMap<i64, Vec<String>> = HashMap::new();
    for parent in &ids {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT integration FROM incidents WHERE parent_id = $1 AND resolved_at_ms IS NULL \
             ORDER BY integration",
        )
        .bind(parent)
        .fetch_all(&mut **tx)
        .await?;
        if !names.is_empty() {
            dependents.insert(*parent, names);
        }
    }
    let mut lines = Vec::new();
    for row in &incidents {
        let incident: i64 = row.try_get("id")?;
        let resolved_at = row
            .try_get::<Option<i64>, _>("resolved_at_ms")?
            .map(from_millis)
            .transpose()?;
        let failing = row.try_get::<Option<bool>, _>("last_success")? == Some(false);
        lines.push(IncidentLine {
            incident,
            integration: row.try_get("integration")?,
            severity: severity_of(&row.try_get::<String, _>("severity")?)?,
            state: state_of(&row.try_get::<String, _>("state")?)?,
            reason: row.try_get("reason")?,
            since: from_millis(row.try_get("opened_at_ms")?)?,
            last_error: if failing {
                row.try_get("last_message")?
            } else {
                None
            },
            latency_ms: row.try_get("last_latency_ms")?,
            resolved_at,
            dependents: dependents.remove(&incident).unwrap_or_default(),
        });
    }
    let opened_at = from_millis(row.try_get("opened_at_ms")?)?;
    let resolved_at = row
        .try_get::<Option<i64>, _>("resolved_at_ms")?
        .map(from_millis)
        .transpose()?;
    let acknowledged = match row.try_get::<Option<i64>, _>("acked_by")? {
        Some(_) => Some(Acknowledgement {
            by: actor_of(
                &row.try_get::<Option<String>, _>("acked_kind")?
                    .unwrap_or_else(|| "discord".into()),
                row.try_get::<Option<String>, _>("acked_id")?,
                &row.try_get::<Option<String>, _>("acked_name")?
                    .unwrap_or_default(),
            )?,
            at: from_millis(row.try_get::<Option<i64>, _>("acked_at_ms")?.unwrap_or(0))?,
        }),
        None => None,
    };
    let severity = lines
        .iter()
        .filter(|l| l.resolved_at.is_none())
        .map(|l| l.severity)
        .min()
        .or_else(|| lines.iter().map(|l| l.severity).min())
        .unwrap_or(Severity::Warning);
    Ok(Some(NoticeView {
        notice,
        severity,
        status: match (resolved_at, &acknowledged) {
            (Some(_), _) => NoticeStatus::Resolved,
            (None, Some(_)) => NoticeStatus::Acknowledged,
            (None, None) => NoticeStatus::Open,
        },
        incidents: lines,
        opened_at,
        resolved_after: resolved_at.map(|at| (at - opened_at).to_std().unwrap_or_default()),
        acknowledged,
        silenced_until: row
            .try_get::<Option<i64>, _>("silenced_until_ms")?
            .map(from_millis)
            .transpose()?,
        flapping: row.try_get("flapping")?,
    }))
}
