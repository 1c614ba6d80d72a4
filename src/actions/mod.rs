//! Actions: running an `[[action]]`'s Retool workflow once a request is confirmed and approved
//! as the action needs. The request's life (confirm, approve, expire) is the control plane's;
//! this module owns the run itself: the action's lease (one run at a time across processes),
//! the cooldown, the call, and recording what Retool answered.
//!
//! - [`params`] turns what people typed (or a JSON object) into the workflow's `params`.
//! - [`Actions::execute`] takes the lease and the cooldown check in one transaction, posts
//!   [`payload`] to the workflow, records the outcome and releases the lease in another. A run
//!   whose process died is marked failed by the next run that takes the lease over.

pub mod params;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

pub use params::{ParamError, ParamInput, parse_args, validate};

use crate::config::Action;
use crate::model::Actor;
use crate::retool::{Retool, WorkflowAnswer};
use crate::store::actions::{ActionFinish, ActionLease, ActionRun, ActionState};
use crate::store::{Store, StoreError};

/// How long a run's lease outlives the action's timeout: the time to record the outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// What became of a request to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Execution {
    /// The workflow was called; the run says how it ended.
    Ran(Box<ActionRun>),
    /// Another run of the action holds its lease; this one was refused.
    Busy {
        /// This run, refused.
        refused: Box<ActionRun>,
        /// The run holding the lease.
        holder: Box<ActionRun>,
    },
    /// The action is cooling down; this run was refused.
    CoolingDown {
        /// This run, refused.
        refused: Box<ActionRun>,
        /// When the cooldown ends.
        until: DateTime<Utc>,
    },
    /// The run was not ready to run (cancelled, expired, or run already).
    NotReady(Box<ActionRun>),
}

/// What the workflow receives: the parameters, who asked and who approved, where from, and
/// patchbay's request id.
pub fn payload(run: &ActionRun) -> Value {
    let person = |actor: &Actor| {
        let (kind, id, name) = actor.parts();
        let id = match kind {
            "discord" => id,
            "api_key" => format!("apikey:{id}"),
            other => format!("{other}:{id}"),
        };
        json!({ "id": id, "name": name })
    };
    json!({
        "params": run.params,
        "requested_by": person(&run.requested_by),
        "approved_by": run.decided_by.as_ref().map(person),
        "guild_id": run.guild.map(|g| g.0.to_string()),
        "channel_id": run.channel.map(|c| c.0.to_string()),
        "request_id": run.request_id,
    })
}

/// Runs actions' workflows: the store (runs and leases) and the Retool client.
pub struct Actions {
    store: Store,
    retool: Arc<Retool>,
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actions").finish_non_exhaustive()
    }
}

impl Actions {
    /// Runs through `retool`, recording in `store`.
    pub fn new(store: Store, retool: Arc<Retool>) -> Actions {
        Actions { store, retool }
    }

    /// Runs run `run` (ready) of `action`: refused when another run holds the action's lease
    /// or the action cools down, else the workflow is called and its answer recorded.
    pub async fn execute(&self, action: &Action, run: i64) -> Result<Execution, StoreError> {
        let lease = self
            .store
            .begin_action_run(
                run,
                (
                    &crate::store::lease::holder_id(),
                    action.timeout + LEASE_MARGIN,
                ),
                action.cooldown,
                crate::model::now(),
                crate::store::lease::holder_is_dead,
            )
            .await?;
        let running = match lease {
            ActionLease::Acquired(running) => running,
            ActionLease::NotReady(run) => return Ok(Execution::NotReady(run)),
            ActionLease::Held(holder) => {
                let message = format!(
                    "{} is already running (request {}, by {})",
                    action.name,
                    holder.request_id,
                    holder.requested_by.parts().2
                );
                let refused = self.refuse(run, ("busy", &message)).await?;
                return Ok(Execution::Busy { refused, holder });
            }
            ActionLease::CoolingDown { until } => {
                let left = (until - crate::model::now()).to_std().unwrap_or_default();
                let message = format!(
                    "{} is cooling down for another {}",
                    action.name,
                    crate::duration::human(left.max(Duration::from_secs(1)))
                );
                let refused = self.refuse(run, ("cooldown", &message)).await?;
                return Ok(Execution::CoolingDown { refused, until });
            }
        };
        let answer = self
            .retool
            .start(action, &payload(&running), &running.request_id)
            .await;
        let finish = match answer {
            Ok(WorkflowAnswer::Responded { status, body }) if status < 400 => ActionFinish {
                state: ActionState::Succeeded,
                reached_retool: true,
                response_status: Some(status),
                response: Some(body),
                retool_run_id: None,
                error_kind: None,
                error: None,
            },
            Ok(WorkflowAnswer::Responded { status, body }) => ActionFinish {
                state: ActionState::Failed,
                reached_retool: true,
                response_status: Some(status),
                response: Some(body),
                retool_run_id: None,
                error_kind: Some("workflow".into()),
                error: Some(format!(
                    "the workflow answered HTTP {status}: see its answer, and its run log in Retool"
                )),
            },
            Ok(WorkflowAnswer::Started { run_id }) => ActionFinish {
                state: ActionState::Started,
                reached_retool: true,
                response_status: None,
                response: None,
                retool_run_id: run_id,
                error_kind: None,
                error: None,
            },
            Err(error) => ActionFinish {
                state: ActionState::Failed,
                reached_retool: error.may_have_run(),
                response_status: match &error {
                    crate::retool::RetoolError::Server { status, .. }
                    | crate::retool::RetoolError::Auth { status, .. } => Some(*status),
                    _ => None,
                },
                response: match &error {
                    crate::retool::RetoolError::Server { body, .. } => Some(body.clone()),
                    _ => None,
                },
                retool_run_id: None,
                error_kind: Some(error.kind().into()),
                error: Some(error.to_string()),
            },
        };
        self.store
            .finish_action_run(run, &finish, crate::model::now())
            .await?;
        let done = self.store.action_run(run).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("action run {run} vanished while it ran"))
        })?;
        Ok(Execution::Ran(Box::new(done)))
    }

    async fn refuse(&self, run: i64, why: (&str, &str)) -> Result<Box<ActionRun>, StoreError> {
        self.store
            .refuse_action_run(run, &[ActionState::Ready], why, crate::model::now())
            .await?;
        self.store
            .action_run(run)
            .await?
            .map(Box::new)
            .ok_or_else(|| StoreError::Corrupt(format!("action run {run} vanished")))
    }
}
