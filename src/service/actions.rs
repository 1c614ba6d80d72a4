//! `/action run|list`, the approval buttons, and the REST API's actions: a request's life from
//! the ask to the outcome. Each step a person takes goes through [`ControlPlane::invoke`] in the
//! front (`action run`, `action confirm`, `action cancel`, `action approve`, `action reject`);
//! the steps nobody takes are audited here (`action execute` for the call and its outcome,
//! `action expire` for a confirmation or approval that lapsed). Every entry carries the
//! request id, so `/audit command:action` shows a request's chain.
//!
//! A request moves confirming → awaiting approval → ready → running → succeeded, started or
//! failed, or ends cancelled, rejected, expired or refused (busy, cooling down); the store makes
//! every move a conditional update, so a press and the expiry cannot both win. Changes are
//! announced on [`ControlPlane::action_changes`], which the Discord front follows to post and
//! edit approval messages; the deadlines are kept by [`ControlPlane::run_action_timers`].

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{CommandError, ControlPlane, Invalid, Invocation};
use crate::access::{Caller, Denied, Permission};
use crate::actions::{Actions, Execution, ParamInput};
use crate::audit::{InvocationOption, OptionValue};
use crate::config::{Action, ActionParam, ActionRole};
use crate::model::Actor;
use crate::store::actions::{ActionRun, ActionState, NewActionRun};

/// One action as `/action list` and `GET /actions` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionInfo {
    /// The action.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its parameters.
    pub params: Vec<ActionParam>,
    /// Whether the invoker confirms first (in Discord).
    pub confirm: bool,
    /// Whether a second member approves first.
    pub approval: bool,
    /// Its cooldown, in seconds.
    pub cooldown_secs: Option<u64>,
    /// How long it still cools down, in seconds.
    pub cooldown_left_secs: Option<u64>,
    /// Whether this caller may run it (`action.run` and the action's roles).
    pub may_run: bool,
    /// The run going on now.
    pub running: Option<ActionRun>,
    /// Its latest run that called the workflow.
    pub last_run: Option<ActionRun>,
}

/// A request to run an action, as a front received it.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// The request id (from [`ControlPlane::new_request_id`], so the front's audit entry of
    /// the ask names it too).
    pub request_id: String,
    /// The action asked for.
    pub action: String,
    /// Its parameters as given.
    pub input: ParamInput,
    /// Whether this front asks the invoker to confirm (when the action wants it): Discord does,
    /// the REST API does not (the call is the confirmation).
    pub confirmable: bool,
}

/// The options an action step is audited with: the request and the action.
pub fn step_options(request_id: &str, action: &str) -> Vec<InvocationOption> {
    vec![
        InvocationOption::new("request", OptionValue::Text(request_id.to_string())),
        InvocationOption::new("action", OptionValue::Text(action.to_string())),
    ]
}

/// Whether two actors are the same person or key.
fn same_actor(a: &Actor, b: &Actor) -> bool {
    let (kind_a, id_a, _) = a.parts();
    let (kind_b, id_b, _) = b.parts();
    kind_a == kind_b && id_a == id_b
}

/// Whether `caller` (as `actor`) passes `action`'s `roles`, on top of `action.run`.
fn check_roles(action: &Action, caller: &Caller, actor: &Actor) -> Result<(), Denied> {
    if action.roles.is_empty() {
        return Ok(());
    }
    match caller {
        Caller::Local => Ok(()),
        Caller::ApiKey { .. } => {
            let key = actor.parts().1;
            if action
                .roles
                .iter()
                .any(|role| matches!(role, ActionRole::ApiKey(name) if *name == key))
            {
                Ok(())
            } else {
                Err(Denied::ActionKey {
                    action: action.name.clone(),
                    key,
                })
            }
        }
        Caller::Member(member) => {
            let roles: Vec<_> = action
                .roles
                .iter()
                .filter_map(|role| match role {
                    ActionRole::Role(id) => Some(*id),
                    ActionRole::ApiKey(_) => None,
                })
                .collect();
            if roles.iter().any(|role| member.roles.contains(role)) {
                Ok(())
            } else {
                Err(Denied::ActionRoles {
                    action: action.name.clone(),
                    roles,
                })
            }
        }
    }
}

/// A state in words, for "already …" refusals.
fn state_words(state: ActionState) -> &'static str {
    match state {
        ActionState::Confirming => "waiting for its confirmation",
        ActionState::AwaitingApproval => "waiting for an approval",
        ActionState::Ready => "confirmed",
        ActionState::Running => "running",
        ActionState::Succeeded => "done",
        ActionState::Started => "started",
        ActionState::Failed => "failed",
        ActionState::Cancelled => "cancelled",
        ActionState::Rejected => "rejected",
        ActionState::Expired => "expired",
        ActionState::Refused => "refused",
    }
}

fn settled(run: &ActionRun) -> CommandError {
    Invalid::RequestSettled {
        request: run.request_id.clone(),
        state: state_words(run.state).to_string(),
    }
    .into()
}

impl ControlPlane {
    /// Adds the actions' runner, for `/action` and the REST API.
    pub fn with_actions(mut self, actions: Arc<Actions>) -> ControlPlane {
        self.actions = Some(actions);
        self
    }

    fn runner(&self) -> Result<&Actions, CommandError> {
        self.actions
            .as_deref()
            .ok_or(CommandError::Invalid(Invalid::NoActions))
    }

    /// Announcements of changed action requests (their request ids): the Discord front posts
    /// and edits approval messages from them.
    pub fn action_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.action_changes.subscribe()
    }

    fn action_changed(&self, request_id: &str) {
        let _ = self.action_changes.send(request_id.to_string());
        self.action_deadlines.notify_one();
    }

    /// A fresh request id (`act-` and 12 hex digits).
    pub fn new_request_id() -> String {
        format!("act-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
    }

    /// The actions `caller` may run: it holds `action.run` and passes each action's `roles`.
    pub fn runnable_actions(&self, caller: &Caller, actor: &Actor) -> Vec<Action> {
        if self.policy().admit(caller, Permission::ActionRun).is_err() {
            return Vec::new();
        }
        self.config()
            .actions
            .iter()
            .filter(|action| check_roles(action, caller, actor).is_ok())
            .cloned()
            .collect()
    }

    /// The names (and descriptions) of the actions `caller` may run that start with or contain
    /// `partial`, for autocomplete.
    pub fn suggest_actions(
        &self,
        caller: &Caller,
        actor: &Actor,
        partial: &str,
        limit: usize,
    ) -> Vec<(String, String)> {
        let partial = partial.trim().to_ascii_lowercase();
        let mut found: Vec<(u8, String, String)> = self
            .runnable_actions(caller, actor)
            .into_iter()
            .filter_map(|action| {
                let rank = if action.name.starts_with(&partial) {
                    0
                } else if action.name.contains(&partial) {
                    1
                } else {
                    return None;
                };
                Some((rank, action.name, action.description))
            })
            .collect();
        found.sort();
        found
            .into_iter()
            .take(limit)
            .map(|(_, name, description)| (name, description))
            .collect()
    }

    /// The action `name` if `caller` may run it: for a front that asks for the parameters
    /// (a modal) before the request.
    pub fn action_for(
        &self,
        name: &str,
        caller: &Caller,
        actor: &Actor,
    ) -> Result<Action, CommandError> {
        let config = self.config();
        let Some(action) = config.action(name.trim()) else {
            let runnable: Vec<String> = self
                .runnable_actions(caller, actor)
                .into_iter()
                .map(|a| a.name)
                .collect();
            let names: Vec<&str> = runnable.iter().map(String::as_str).collect();
            return Err(Invalid::UnknownAction {
                name: name.to_string(),
                suggestions: crate::suggest::closest(name, &names)
                    .map(str::to_string)
                    .into_iter()
                    .collect(),
            }
            .into());
        };
        check_roles(action, caller, actor).map_err(CommandError::Denied)?;
        Ok(action.clone())
    }

    /// `/action list` (`only_runnable`: the actions `caller` may run) and `GET /actions` (every
    /// action, each saying whether `caller` may run it), with their cooldown, the run going on
    /// and the latest run.
    pub async fn list_actions(
        &self,
        caller: &Caller,
        actor: &Actor,
        only_runnable: bool,
    ) -> Result<Vec<ActionInfo>, CommandError> {
        let now = crate::model::now();
        let mut last = self.store.last_action_runs().await?;
        let runnable: Vec<String> = self
            .runnable_actions(caller, actor)
            .into_iter()
            .map(|a| a.name)
            .collect();
        let mut out = Vec::new();
        for action in self.config().actions.iter().cloned() {
            let may_run = runnable.contains(&action.name);
            if only_runnable && !may_run {
                continue;
            }
            let running = self.store.running_action_run(&action.name, now).await?;
            let cooldown_left = self.cooldown_left(&action).await?;
            out.push(ActionInfo {
                description: action.description.clone(),
                params: action.params.clone(),
                confirm: action.confirm,
                approval: action.approval,
                cooldown_secs: action.cooldown.map(|c| c.as_secs()),
                cooldown_left_secs: cooldown_left.map(|left| left.as_secs().max(1)),
                may_run,
                running,
                last_run: last.remove(&action.name),
                name: action.name,
            });
        }
        Ok(out)
    }

    async fn cooldown_left(&self, action: &Action) -> Result<Option<Duration>, CommandError> {
        let Some(cooldown) = action.cooldown else {
            return Ok(None);
        };
        let Some(ended) = self.store.last_reaching_run_end(&action.name).await? else {
            return Ok(None);
        };
        let until = ended + chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::MAX);
        Ok((until - crate::model::now())
            .to_std()
            .ok()
            .filter(|left| !left.is_zero()))
    }

    /// Asks for a run of an action, for `invocation`'s caller (who holds `action.run`: the
    /// front's invocation checked it). Checks the action's roles, the parameters, whether a
    /// run is going on and the cooldown, then records the request: waiting for the
    /// requester's confirmation, for an approval, or ready to run
    /// ([`ControlPlane::execute_action`]).
    pub async fn request_action(
        &self,
        invocation: &Invocation,
        request: ActionRequest,
    ) -> Result<ActionRun, CommandError> {
        self.runner()?;
        let action = self.action_for(&request.action, &invocation.caller, &invocation.actor)?;
        let params = crate::actions::validate(&action, request.input)
            .map_err(|error| CommandError::Invalid(Invalid::Param(error)))?;
        let now = crate::model::now();
        if let Some(running) = self.store.running_action_run(&action.name, now).await? {
            return Err(CommandError::ActionBusy(Box::new(running)));
        }
        if let Some(left) = self.cooldown_left(&action).await? {
            return Err(CommandError::CoolingDown {
                action: action.name.clone(),
                left,
            });
        }
        let bot = &self.config().bot;
        // Refused before anything is stored: nobody would ever see the request.
        if action.approval && invocation.channel.is_none() && bot.approval_channel.is_none() {
            return Err(Invalid::NoApprovalChannel {
                action: action.name.clone(),
            }
            .into());
        }
        let (state, window) = if request.confirmable && action.confirm {
            (ActionState::Confirming, Some(bot.action_confirm_timeout))
        } else if action.approval {
            (
                ActionState::AwaitingApproval,
                Some(bot.action_approval_timeout),
            )
        } else {
            (ActionState::Ready, None)
        };
        let params = serde_json::Value::Object(params);
        let run = self
            .store
            .insert_action_run(NewActionRun {
                request_id: &request.request_id,
                action: &action.name,
                params: &params,
                actor: &invocation.actor,
                guild: invocation.caller.guild(),
                channel: invocation.channel,
                state,
                needs_approval: action.approval,
                expires_at: window.map(|w| now + chrono::Duration::from_std(w).unwrap_or_default()),
                now,
            })
            .await?;
        self.action_changed(&run.request_id);
        Ok(run)
    }

    async fn request(&self, request_id: &str) -> Result<ActionRun, CommandError> {
        self.store
            .action_run_by_request(request_id)
            .await?
            .ok_or_else(|| {
                Invalid::UnknownRequest {
                    request: request_id.to_string(),
                }
                .into()
            })
    }

    /// The request `request_id` as it stands (`GET /actions/runs/{id}`).
    pub async fn action_request(&self, request_id: &str) -> Result<ActionRun, CommandError> {
        self.request(request_id).await
    }

    /// The requester confirms (`confirm`) or cancels request `request_id`. Confirmed, it waits
    /// for an approval when the action needs one, else it is ready to run.
    pub async fn confirm_action(
        &self,
        invocation: &Invocation,
        request_id: &str,
        confirm: bool,
    ) -> Result<ActionRun, CommandError> {
        let run = self.request(request_id).await?;
        if !same_actor(&run.requested_by, &invocation.actor) {
            return Err(CommandError::Denied(Denied::NotRequester));
        }
        let (to, window) = if !confirm {
            (ActionState::Cancelled, None)
        } else if run.needs_approval {
            (
                ActionState::AwaitingApproval,
                Some(self.config().bot.action_approval_timeout),
            )
        } else {
            (ActionState::Ready, None)
        };
        let expires =
            window.map(|w| crate::model::now() + chrono::Duration::from_std(w).unwrap_or_default());
        if !self
            .store
            .move_action_run(run.id, &[ActionState::Confirming], to, expires)
            .await?
        {
            return Err(settled(&self.request(request_id).await?));
        }
        self.action_changed(request_id);
        self.request(request_id).await
    }

    /// A member holding `action.approve` (the invocation checked it) approves or rejects
    /// request `request_id`; the requester may not decide their own.
    pub async fn decide_action(
        &self,
        invocation: &Invocation,
        request_id: &str,
        approve: bool,
    ) -> Result<ActionRun, CommandError> {
        let run = self.request(request_id).await?;
        if same_actor(&run.requested_by, &invocation.actor) {
            return Err(CommandError::Denied(Denied::OwnRequest));
        }
        if !self
            .store
            .decide_action_run(run.id, &invocation.actor, approve, crate::model::now())
            .await?
        {
            return Err(settled(&self.request(request_id).await?));
        }
        self.action_changed(request_id);
        self.request(request_id).await
    }

    /// Runs request `request_id` (ready) and returns it as it ended: the workflow's answer, or
    /// the error ([`CommandError::ActionFailed`]), or a refusal when another run holds the
    /// action or the action cools down. The run is audited as `action execute`.
    pub async fn execute_action(&self, request_id: &str) -> Result<ActionRun, CommandError> {
        let received = std::time::Instant::now();
        let run = self.request(request_id).await?;
        let config = self.config();
        let result = match config.action(&run.action) {
            None => {
                // The action left the config after the request: nothing runs.
                let why = format!("{} is no longer in the config", run.action);
                self.store
                    .refuse_action_run(
                        run.id,
                        &[ActionState::Ready],
                        ("removed", &why),
                        crate::model::now(),
                    )
                    .await?;
                Err(CommandError::Invalid(Invalid::UnknownAction {
                    name: run.action.clone(),
                    suggestions: Vec::new(),
                }))
            }
            Some(action) => match self.runner()?.execute(action, run.id).await? {
                Execution::Ran(done) if done.state == ActionState::Failed => {
                    Err(CommandError::ActionFailed(done))
                }
                Execution::Ran(done) => Ok(*done),
                Execution::Busy { holder, .. } => Err(CommandError::ActionBusy(holder)),
                Execution::CoolingDown { until, .. } => Err(CommandError::CoolingDown {
                    action: run.action.clone(),
                    left: (until - crate::model::now()).to_std().unwrap_or_default(),
                }),
                Execution::NotReady(run) => Err(settled(&run)),
            },
        };
        let step = Invocation {
            actor: run.requested_by.clone(),
            caller: Caller::Local,
            channel: run.channel,
            command: "action execute".into(),
            permission: None,
            options: step_options(&run.request_id, &run.action),
            received,
        };
        self.audit(&step, None, result.as_ref().err()).await;
        self.action_changed(request_id);
        result
    }

    /// Expires request `request_id` if it still waits for a confirmation or an approval whose
    /// deadline passed; the expired request, or `None` when it had moved on (or is not due).
    pub async fn expire_action(&self, request_id: &str) -> Result<Option<ActionRun>, CommandError> {
        let run = self.request(request_id).await?;
        let due = run
            .expires_at
            .is_some_and(|deadline| deadline <= crate::model::now());
        if !due
            || !self
                .store
                .move_action_run(
                    run.id,
                    &[ActionState::Confirming, ActionState::AwaitingApproval],
                    ActionState::Expired,
                    None,
                )
                .await?
        {
            return Ok(None);
        }
        let step = Invocation {
            actor: Actor::Scheduler {
                job: "action expiry".into(),
            },
            caller: Caller::Local,
            channel: run.channel,
            command: "action expire".into(),
            permission: None,
            options: step_options(&run.request_id, &run.action),
            received: std::time::Instant::now(),
        };
        self.audit(&step, None, None).await;
        self.action_changed(request_id);
        self.request(request_id).await.map(Some)
    }

    /// Expires requests whose confirmation or approval deadline passed, as they fall due,
    /// until `stop`. Woken early by every change, so a new deadline is never missed.
    pub async fn run_action_timers(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let now = crate::model::now();
            match self.store.lapsed_action_runs(now).await {
                Ok(lapsed) => {
                    for run in lapsed {
                        if let Err(err) = self.expire_action(&run.request_id).await {
                            tracing::warn!(error = %err, request = %run.request_id, "could not expire an action request");
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not read the action deadlines"),
            }
            let next = match self.store.next_action_deadline().await {
                Ok(Some(deadline)) => (deadline - crate::model::now())
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_millis(50)),
                Ok(None) | Err(_) => Duration::from_secs(60),
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.action_deadlines.notified() => {}
                () = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Requests whose approval message must be posted or edited (the Discord front's work).
    pub async fn approval_messages_due(&self) -> Result<Vec<ActionRun>, CommandError> {
        Ok(self.store.approval_messages_due().await?)
    }

    /// Records that request `run`'s approval message is `message` in `channel`, showing
    /// `shown`.
    pub async fn approval_message_shown(
        &self,
        run: &ActionRun,
        place: (crate::model::Snowflake, crate::model::Snowflake),
        shown: ActionState,
    ) -> Result<(), CommandError> {
        Ok(self
            .store
            .set_approval_message(run.id, place, shown)
            .await?)
    }
}
