//! Storage of action runs (every request to run an `[[action]]`, from the request to its
//! outcome) and the lease that keeps one run per action at a time (migration
//! `0007_actions.sql`). Every change of state is one conditional UPDATE: two presses of one
//! button, or a press and the expiry, cannot both win.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use tracing::instrument;

use super::{Store, StoreError, from_millis, id, millis, snowflake};
use crate::model::{Actor, Snowflake};

/// Where a request to run an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// Waiting for the requester to confirm.
    Confirming,
    /// Waiting for a second member to approve.
    AwaitingApproval,
    /// Confirmed and approved as needed: about to run.
    Ready,
    /// The workflow was called and has not answered yet.
    Running,
    /// The workflow answered through its Response block with a 2xx-4xx status.
    Succeeded,
    /// Retool started the workflow (no Response block) and answered with its run id.
    Started,
    /// The call failed (the error says how, and whether the workflow may have run).
    Failed,
    /// The requester cancelled.
    Cancelled,
    /// The approver rejected it.
    Rejected,
    /// Nobody confirmed or approved in time.
    Expired,
    /// It could not run: another run of the action held the lease, or the cooldown.
    Refused,
}

impl ActionState {
    /// Every state.
    pub const ALL: [ActionState; 11] = [
        ActionState::Confirming,
        ActionState::AwaitingApproval,
        ActionState::Ready,
        ActionState::Running,
        ActionState::Succeeded,
        ActionState::Started,
        ActionState::Failed,
        ActionState::Cancelled,
        ActionState::Rejected,
        ActionState::Expired,
        ActionState::Refused,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Confirming => "confirming",
            ActionState::AwaitingApproval => "awaiting_approval",
            ActionState::Ready => "ready",
            ActionState::Running => "running",
            ActionState::Succeeded => "succeeded",
            ActionState::Started => "started",
            ActionState::Failed => "failed",
            ActionState::Cancelled => "cancelled",
            ActionState::Rejected => "rejected",
            ActionState::Expired => "expired",
            ActionState::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Result<ActionState, StoreError> {
        ActionState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("action run state {text:?}")))
    }
}

/// One stored request to run an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRun {
    /// Its number.
    pub id: i64,
    /// The id the workflow receives and the audit log names.
    pub request_id: String,
    /// The action.
    pub action: String,
    /// The validated parameters, as sent to the workflow.
    pub params: serde_json::Value,
    /// Who asked.
    pub requested_by: Actor,
    /// The guild it was asked from.
    pub guild: Option<Snowflake>,
    /// The channel it was asked from.
    pub channel: Option<Snowflake>,
    /// Where it stands.
    pub state: ActionState,
    /// Whether a second member must approve it.
    pub needs_approval: bool,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When a confirmation or approval it waits for lapses.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who approved or rejected it.
    pub decided_by: Option<Actor>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// When the workflow was called.
    pub started_at: Option<DateTime<Utc>>,
    /// When the call ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Whether the workflow may have acted on it (the cooldown counts from such runs).
    pub reached_retool: bool,
    /// The Response block's status.
    pub response_status: Option<u16>,
    /// The Response block's body, or what Retool answered with an error.
    pub response: Option<serde_json::Value>,
    /// Retool's run id, for a workflow without a Response block.
    pub retool_run_id: Option<String>,
    /// The error's kind, when it failed or was refused.
    pub error_kind: Option<String>,
    /// The error and what to do.
    pub error: Option<String>,
    /// The approval message in Discord (channel, message).
    #[serde(skip)]
    pub approval_message: Option<(Snowflake, Snowflake)>,
    /// The state the approval message shows.
    #[serde(skip)]
    pub approval_shown: Option<ActionState>,
}

/// A request to record.
#[derive(Debug, Clone)]
pub struct NewActionRun<'a> {
    /// The id the workflow receives.
    pub request_id: &'a str,
    /// The action.
    pub action: &'a str,
    /// The validated parameters.
    pub params: &'a serde_json::Value,
    /// Who asks.
    pub actor: &'a Actor,
    /// From which guild.
    pub guild: Option<Snowflake>,
    /// From which channel.
    pub channel: Option<Snowflake>,
    /// Its first state.
    pub state: ActionState,
    /// Whether a second member must approve it.
    pub needs_approval: bool,
    /// When its first wait lapses.
    pub expires_at: Option<DateTime<Utc>>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionFinish {
    /// `Succeeded`, `Started` or `Failed`.
    pub state: ActionState,
    /// Whether the workflow may have acted.
    pub reached_retool: bool,
    /// The Response block's status, or Retool's error status.
    pub response_status: Option<u16>,
    /// The body answered.
    pub response: Option<serde_json::Value>,
    /// Retool's run id.
    pub retool_run_id: Option<String>,
    /// The error's kind.
    pub error_kind: Option<String>,
    /// The error and what to do.
    pub error: Option<String>,
}

/// Whether a run got its action's lease.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionLease {
    /// It did, and is now running.
    Acquired(Box<ActionRun>),
    /// Another run holds it.
    Held(Box<ActionRun>),
    /// The run is no longer ready (cancelled, expired, or run already).
    NotReady(Box<ActionRun>),
    /// The action's latest run that reached the workflow ended less than its cooldown ago.
    CoolingDown {
        /// When the cooldown ends.
        until: DateTime<Utc>,
    },
}

const COLUMNS: &str = "id, request_id, action, params, actor_kind, actor_id, actor_name, \
     guild_id, channel_id, state, needs_approval, created_at_ms, expires_at_ms, approver_kind, \
     approver_id, approver_name, decided_at_ms, started_at_ms, finished_at_ms, reached_retool, \
     response_status, response, retool_run_id, error_kind, error, approval_channel_id, \
     approval_message_id, approval_shown";

fn optional_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(from_millis).transpose()
}

fn json_of(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|err| StoreError::Corrupt(format!("action run JSON: {err}")))
}

fn run_of(row: &sqlx::sqlite::SqliteRow) -> Result<ActionRun, StoreError> {
    let actor = Actor::from_parts(
        &row.try_get::<String, _>("actor_kind")?,
        &row.try_get::<String, _>("actor_id")?,
        &row.try_get::<String, _>("actor_name")?,
    )
    .map_err(StoreError::Corrupt)?;
    let decided_by = match (
        row.try_get::<Option<String>, _>("approver_kind")?,
        row.try_get::<Option<String>, _>("approver_id")?,
        row.try_get::<Option<String>, _>("approver_name")?,
    ) {
        (Some(kind), Some(id), Some(name)) => {
            Some(Actor::from_parts(&kind, &id, &name).map_err(StoreError::Corrupt)?)
        }
        _ => None,
    };
    let approval_message = match (
        row.try_get::<Option<i64>, _>("approval_channel_id")?,
        row.try_get::<Option<i64>, _>("approval_message_id")?,
    ) {
        (Some(channel), Some(message)) => Some((snowflake(channel), snowflake(message))),
        _ => None,
    };
    Ok(ActionRun {
        id: row.try_get("id")?,
        request_id: row.try_get("request_id")?,
        action: row.try_get("action")?,
        params: json_of(&row.try_get::<String, _>("params")?)?,
        requested_by: actor,
        guild: row.try_get::<Option<i64>, _>("guild_id")?.map(snowflake),
        channel: row.try_get::<Option<i64>, _>("channel_id")?.map(snowflake),
        state: ActionState::parse(&row.try_get::<String, _>("state")?)?,
        needs_approval: row.try_get::<i64, _>("needs_approval")? != 0,
        created_at: from_millis(row.try_get("created_at_ms")?)?,
        expires_at: optional_time(row.try_get("expires_at_ms")?)?,
        decided_by,
        decided_at: optional_time(row.try_get("decided_at_ms")?)?,
        started_at: optional_time(row.try_get("started_at_ms")?)?,
        finished_at: optional_time(row.try_get("finished_at_ms")?)?,
        reached_retool: row.try_get::<i64, _>("reached_retool")? != 0,
        response_status: row
            .try_get::<Option<i64>, _>("response_status")?
            .map(|s| s as u16),
        response: row
            .try_get::<Option<String>, _>("response")?
            .map(|text| json_of(&text))
            .transpose()?,
        retool_run_id: row.try_get("retool_run_id")?,
        error_kind: row.try_get("error_kind")?,
        error: row.try_get("error")?,
        approval_message,
        approval_shown: row
            .try_get::<Option<String>, _>("approval_shown")?
            .map(|text| ActionState::parse(&text))
            .transpose()?,
    })
}

fn states_sql(states: &[ActionState]) -> String {
    states
        .iter()
        .map(|state| format!("'{}'", state.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Records a new request and returns it.
    #[instrument(skip_all)]
    pub async fn insert_action_run(&self, new: NewActionRun<'_>) -> Result<ActionRun, StoreError> {
        let (kind, actor_id, name) = new.actor.parts();
        let run_id: i64 = sqlx::query(
            "INSERT INTO action_runs (request_id, action, params, actor_kind, actor_id, \
             actor_name, guild_id, channel_id, state, needs_approval, created_at_ms, \
             expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             RETURNING id",
        )
        .bind(new.request_id)
        .bind(new.action)
        .bind(new.params.to_string())
        .bind(kind)
        .bind(actor_id)
        .bind(name)
        .bind(new.guild.map(id))
        .bind(new.channel.map(id))
        .bind(new.state.as_str())
        .bind(i64::from(new.needs_approval))
        .bind(millis(new.now))
        .bind(new.expires_at.map(millis))
        .fetch_one(&self.pool)
        .await?
        .try_get("id")?;
        self.action_run(run_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("an inserted action run vanished".into()))
    }

    /// Run number `run`.
    #[instrument(skip_all)]
    pub async fn action_run(&self, run: i64) -> Result<Option<ActionRun>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM action_runs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_of).transpose()
    }

    /// The run whose request id is `request_id`.
    #[instrument(skip_all)]
    pub async fn action_run_by_request(
        &self,
        request_id: &str,
    ) -> Result<Option<ActionRun>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM action_runs WHERE request_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_of).transpose()
    }

    /// Moves run `run` from one of `from` to `to`, with `expires_at` as its new deadline; false
    /// (and nothing changed) when it is in another state.
    #[instrument(skip_all)]
    pub async fn move_action_run(
        &self,
        run: i64,
        from: &[ActionState],
        to: ActionState,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE action_runs SET state = $1, expires_at_ms = $2 WHERE id = $3 AND state IN ({})",
            states_sql(from)
        );
        let moved = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to.as_str())
            .bind(expires_at.map(millis))
            .bind(run)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(moved == 1)
    }

    /// Records `approver`'s decision on run `run` (waiting for approval): `Ready` when
    /// approved, `Rejected` when not. False when it no longer waits.
    #[instrument(skip_all)]
    pub async fn decide_action_run(
        &self,
        run: i64,
        approver: &Actor,
        approve: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (kind, approver_id, name) = approver.parts();
        let to = if approve {
            ActionState::Ready
        } else {
            ActionState::Rejected
        };
        let moved = sqlx::query(
            "UPDATE action_runs SET state = $1, expires_at_ms = NULL, approver_kind = $2, \
             approver_id = $3, approver_name = $4, decided_at_ms = $5 \
             WHERE id = $6 AND state = 'awaiting_approval'",
        )
        .bind(to.as_str())
        .bind(kind)
        .bind(approver_id)
        .bind(name)
        .bind(millis(now))
        .bind(run)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(moved == 1)
    }

    /// Ends run `run` without calling the workflow (refused: busy or cooling down), when it is
    /// in one of `from`. False when it is not.
    #[instrument(skip_all)]
    pub async fn refuse_action_run(
        &self,
        run: i64,
        from: &[ActionState],
        (error_kind, error): (&str, &str),
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE action_runs SET state = 'refused', expires_at_ms = NULL, error_kind = $1, \
             error = $2, finished_at_ms = $3 WHERE id = $4 AND state IN ({})",
            states_sql(from)
        );
        let moved = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(error_kind)
            .bind(error)
            .bind(millis(now))
            .bind(run)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(moved == 1)
    }

    /// Takes the lease of run `run`'s action and marks the run running, in one transaction,
    /// when the run is ready, the action is not cooling down (its latest run that reached the
    /// workflow ended at least `cooldown` ago) and no live run holds the lease (a lease that
    /// lapsed, or whose process `is_dead` says died, is taken over and its run marked failed).
    #[instrument(skip_all)]
    pub async fn begin_action_run(
        &self,
        run: i64,
        (holder, ttl): (&str, std::time::Duration),
        cooldown: Option<std::time::Duration>,
        now: DateTime<Utc>,
        is_dead: impl Fn(&str) -> bool + Send,
    ) -> Result<ActionLease, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now_ms = millis(now);
        let select = format!("SELECT {COLUMNS} FROM action_runs WHERE id = $1");
        let this = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
            .bind(run)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no action run {run}")))?;
        let this = run_of(&this)?;
        if this.state != ActionState::Ready {
            return Ok(ActionLease::NotReady(Box::new(this)));
        }
        let lease = sqlx::query(
            "SELECT run_id, holder, expires_at_ms FROM action_leases WHERE action = $1",
        )
        .bind(&this.action)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(lease) = lease {
            let holding: i64 = lease.try_get("run_id")?;
            let other: String = lease.try_get("holder")?;
            let expires: i64 = lease.try_get("expires_at_ms")?;
            if expires > now_ms && !is_dead(&other) {
                let row = sqlx::query(sqlx::AssertSqlSafe(select))
                    .bind(holding)
                    .fetch_one(&mut *tx)
                    .await?;
                return Ok(ActionLease::Held(Box::new(run_of(&row)?)));
            }
            sqlx::query(
                "UPDATE action_runs SET state = 'failed', finished_at_ms = $1, \
                 reached_retool = 1, error_kind = 'abandoned', \
                 error = 'patchbay stopped while the workflow ran; it may have run' \
                 WHERE id = $2 AND state = 'running'",
            )
            .bind(now_ms)
            .bind(holding)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(cooldown) = cooldown {
            let ended: Option<i64> = sqlx::query(
                "SELECT MAX(finished_at_ms) AS ended FROM action_runs \
                 WHERE action = $1 AND reached_retool = 1",
            )
            .bind(&this.action)
            .fetch_one(&mut *tx)
            .await?
            .try_get("ended")?;
            if let Some(ended) = ended
                && ended + cooldown.as_millis() as i64 > now_ms
            {
                return Ok(ActionLease::CoolingDown {
                    until: from_millis(ended + cooldown.as_millis() as i64)?,
                });
            }
        }
        sqlx::query("UPDATE action_runs SET state = 'running', started_at_ms = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(run)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO action_leases (action, run_id, holder, expires_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (action) DO UPDATE SET \
             run_id = excluded.run_id, holder = excluded.holder, \
             expires_at_ms = excluded.expires_at_ms",
        )
        .bind(&this.action)
        .bind(run)
        .bind(holder)
        .bind(now_ms + ttl.as_millis() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ActionLease::Acquired(Box::new(ActionRun {
            state: ActionState::Running,
            started_at: Some(from_millis(now_ms)?),
            ..this
        })))
    }

    /// Records how run `run`'s call ended and releases its action's lease, in one transaction.
    #[instrument(skip_all)]
    pub async fn finish_action_run(
        &self,
        run: i64,
        finish: &ActionFinish,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "UPDATE action_runs SET state = $1, finished_at_ms = $2, reached_retool = $3, \
             response_status = $4, response = $5, retool_run_id = $6, error_kind = $7, \
             error = $8 WHERE id = $9 AND state = 'running'",
        )
        .bind(finish.state.as_str())
        .bind(millis(now))
        .bind(i64::from(finish.reached_retool))
        .bind(finish.response_status.map(i64::from))
        .bind(finish.response.as_ref().map(ToString::to_string))
        .bind(finish.retool_run_id.as_deref())
        .bind(finish.error_kind.as_deref())
        .bind(finish.error.as_deref())
        .bind(run)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM action_leases WHERE run_id = $1")
            .bind(run)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The run holding `action`'s lease, if its lease is live.
    #[instrument(skip_all)]
    pub async fn running_action_run(
        &self,
        action: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ActionRun>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM action_runs WHERE id = \
             (SELECT run_id FROM action_leases WHERE action = $1 AND expires_at_ms > $2) \
             AND state = 'running'"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(action)
            .bind(millis(now))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_of).transpose()
    }

    /// When `action`'s latest run that may have reached the workflow ended.
    #[instrument(skip_all)]
    pub async fn last_reaching_run_end(
        &self,
        action: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(finished_at_ms) AS ended FROM action_runs \
             WHERE action = $1 AND reached_retool = 1",
        )
        .bind(action)
        .fetch_one(&self.pool)
        .await?;
        optional_time(row.try_get("ended")?)
    }

    /// The latest run of each action that got as far as a call, by action name.
    #[instrument(skip_all)]
    pub async fn last_action_runs(&self) -> Result<HashMap<String, ActionRun>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM action_runs WHERE id IN \
             (SELECT MAX(id) FROM action_runs WHERE started_at_ms IS NOT NULL GROUP BY action)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| run_of(row).map(|run| (run.action.clone(), run)))
            .collect()
    }

    /// Runs waiting for a confirmation or approval whose deadline is at or before `now`.
    #[instrument(skip_all)]
    pub async fn lapsed_action_runs(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<ActionRun>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM action_runs WHERE state IN ('confirming', \
             'awaiting_approval') AND expires_at_ms <= $1 ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(millis(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_of).collect()
    }

    /// The next deadline of a run waiting for a confirmation or approval.
    #[instrument(skip_all)]
    pub async fn next_action_deadline(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(expires_at_ms) AS next FROM action_runs \
             WHERE state IN ('confirming', 'awaiting_approval')",
        )
        .fetch_one(&self.pool)
        .await?;
        optional_time(row.try_get("next")?)
    }

    /// Runs whose approval message is missing or shows an older state than the run's.
    #[instrument(skip_all)]
    pub async fn approval_messages_due(&self) -> Result<Vec<ActionRun>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM action_runs WHERE needs_approval = 1 AND \
             ((approval_message_id IS NULL AND state = 'awaiting_approval') OR \
              (approval_message_id IS NOT NULL AND \
               (approval_shown IS NULL OR approval_shown <> state))) ORDER BY id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_of).collect()
    }

    /// Records that run `run`'s approval message is `message` in `channel`, showing `shown`.
    #[instrument(skip_all)]
    pub async fn set_approval_message(
        &self,
        run: i64,
        (channel, message): (Snowflake, Snowflake),
        shown: ActionState,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE action_runs SET approval_channel_id = $1, approval_message_id = $2, \
             approval_shown = $3 WHERE id = $4",
        )
        .bind(id(channel))
        .bind(id(message))
        .bind(shown.as_str())
        .bind(run)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
