//! What can go wrong with an invocation, as values: every front renders [`CommandError`] its own
//! way (an ephemeral Discord reply with a hint of what to run next, a JSON error with a status
//! code), from the same facts. No text here names a front's commands or carries markup.

use serde::Serialize;

use crate::access::{Denied, Permission};
use crate::audit::Outcome;
use crate::model::{Snowflake, echo};
use crate::store::StoreError;

/// What went wrong with an invocation, as the caller will be told.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The caller may not do this.
    #[error("{0}")]
    Denied(Denied),
    /// The caller is over the command rate limit.
    #[error("too many commands: try again in {}s", retry_in.as_secs().max(1))]
    RateLimited {
        /// When the next command is allowed.
        retry_in: std::time::Duration,
    },
    /// The input is wrong; the variant says how.
    #[error("{0}")]
    Invalid(Invalid),
    /// Another run of the sync job holds its lease.
    #[error("sync job {} is already running (run {}, started by {})", .0.job, .0.id, .0.actor.parts().2)]
    Busy(Box<crate::store::sync::SyncRun>),
    /// The sync ran and failed; the report says how far it got, why, and what to do.
    #[error("sync job {} failed: {}", .0.job, .0.failure.as_ref().map_or("", |f| f.message.as_str()))]
    SyncFailed(Box<crate::sync::SyncReport>),
    /// Another run of the action holds its lease.
    #[error("{} is already running (request {}, started by {})", .0.action, .0.request_id, .0.requested_by.parts().2)]
    ActionBusy(Box<crate::store::actions::ActionRun>),
    /// The action ran recently and cools down.
    #[error("{action} is cooling down: try again in {}", crate::duration::human(*.left))]
    CoolingDown {
        /// The action.
        action: String,
        /// How long until it may run again.
        left: std::time::Duration,
    },
    /// The action's workflow was called and the call failed; the run says how.
    #[error("{} failed: {}", .0.action, .0.error.as_deref().unwrap_or("unknown error"))]
    ActionFailed(Box<crate::store::actions::ActionRun>),
    /// Something failed on our side; details are logged under the reference.
    #[error("something went wrong (ref {reference})")]
    Internal {
        /// A short reference that appears in the log line with the details.
        reference: String,
        /// The error class, for the audit log.
        kind: &'static str,
    },
}

/// Why the input of an invocation is wrong. Each variant's words quote user input through
/// [`echo`] (cut to 100 characters), and say nothing of how a front spells its commands: a front
/// adds that ("/alerts list shows the open ones").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "invalid", rename_all = "snake_case")]
pub enum Invalid {
    /// No integration has this name.
    #[error("there is no integration named {}", echo(.name))]
    UnknownIntegration {
        /// The name asked for.
        name: String,
        /// The nearest configured names, best first.
        suggestions: Vec<String>,
    },
    /// No integration has this tag.
    #[error("no integration has the tag {}", echo(.tag))]
    UnknownTag {
        /// The tag asked for.
        tag: String,
    },
    /// No incident has this number.
    #[error("there is no incident #{notice}")]
    UnknownIncident {
        /// The incident (notice) number.
        notice: i64,
    },
    /// The incident was acknowledged already.
    #[error("incident #{notice} is already acknowledged")]
    AlreadyAcknowledged {
        /// The incident (notice) number.
        notice: i64,
    },
    /// The incident is resolved: nothing is left to act on.
    #[error("incident #{notice} is resolved")]
    IncidentResolved {
        /// The incident (notice) number.
        notice: i64,
    },
    /// No active silence has this number.
    #[error("there is no active silence #{silence}")]
    UnknownSilence {
        /// The silence number.
        silence: i64,
    },
    /// A duration that does not parse.
    #[error("duration: {error}")]
    Duration {
        /// The parser's explanation (it quotes the input cut).
        error: String,
    },
    /// A silence too short or too long.
    #[error("a silence lasts between 1s and 30d")]
    SilenceLength,
    /// The integration is disabled in the config.
    #[error("{name} is disabled in the config (PAUSED): enable it to check it")]
    Paused {
        /// The integration.
        name: String,
    },
    /// The integration went away during the call.
    #[error("{name} was removed or patchbay is shutting down; nothing was checked")]
    Stopped {
        /// The integration.
        name: String,
    },
    /// Live checks need the engine, which runs in the bot's process only.
    #[error("checks run in the patchbay process; this front has no engine")]
    NoEngine,
    /// Alerts need the alert pipeline, which runs in the bot's process only.
    #[error("alerts run in the patchbay process; this front has none")]
    NoAlerts,
    /// A grant from the config file cannot be revoked by a command.
    #[error(
        "role {} holds {permission} from the config file ([[grant]]): remove it there and reload{}",
        role.0,
        if *.removed_command_grant { " (the command grant on top of it was removed)" } else { "" }
    )]
    ConfigGrant {
        /// The role.
        role: Snowflake,
        /// The permission.
        permission: Permission,
        /// Whether a command grant of the same permission was removed anyway.
        removed_command_grant: bool,
    },
    /// The role does not hold the permission (by command) here.
    #[error("role {} does not hold {permission} here", role.0)]
    NotGranted {
        /// The role.
        role: Snowflake,
        /// The permission.
        permission: Permission,
    },
    /// An option that does not fit what the command takes.
    #[error("that option is not valid: {problem}")]
    Option {
        /// What is wrong, naming the option and what it takes.
        problem: String,
    },
    /// The page asked for is gone (the entries were pruned).
    #[error("there are no older entries any more")]
    NoOlderEntries,
    /// No sync job has this name.
    #[error("there is no sync job named {}", echo(.name))]
    UnknownJob {
        /// The name asked for.
        name: String,
        /// The nearest configured name, if one is close.
        suggestions: Vec<String>,
        /// Every configured job.
        known: Vec<String>,
    },
    /// Sync jobs need the Notion clients, which this front was built without.
    #[error("sync jobs run in the patchbay process; this front has none")]
    NoSyncs,
    /// No action has this name (or none this caller may run).
    #[error("there is no action named {}", echo(.name))]
    UnknownAction {
        /// The name asked for.
        name: String,
        /// The nearest names this caller may run.
        suggestions: Vec<String>,
    },
    /// The action's parameters were refused.
    #[error("{0}")]
    Param(crate::actions::ParamError),
    /// No action request has this id.
    #[error("there is no action request {}", echo(.request))]
    UnknownRequest {
        /// The request id asked for.
        request: String,
    },
    /// The request is past the step asked for (confirmed, decided, expired, run).
    #[error("request {request} is {state} already")]
    RequestSettled {
        /// The request id.
        request: String,
        /// Where it stands, in words.
        state: String,
    },
    /// An action that needs an approval was asked from outside Discord (the REST API), which
    /// has no channel to ask in, and `[bot].approval_channel` is not set.
    #[error(
        "action {action} needs an approval, and a request from the API has no channel to ask \
         for it in: set [bot].approval_channel in patchbay's config"
    )]
    NoApprovalChannel {
        /// The action asked for.
        action: String,
    },
    /// Actions need the Retool client, which this front was built without.
    #[error("actions run in the patchbay process; this front has none")]
    NoActions,
    /// No sync run has this id.
    #[error("there is no sync run {run}")]
    UnknownRun {
        /// The run asked for.
        run: i64,
    },
    /// An API key name that does not follow the pattern.
    #[error("the key name {} is not valid: {problem}", echo(.name))]
    KeyName {
        /// The name asked for.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An API key (not revoked) has this name already.
    #[error("an API key named {} exists already", echo(.name))]
    DuplicateKey {
        /// The name asked for.
        name: String,
    },
    /// No API key (not revoked) has this name.
    #[error("there is no API key named {}", echo(.name))]
    UnknownKey {
        /// The name asked for.
        name: String,
    },
    /// A permission list that names an unknown permission, or none.
    #[error("{problem}")]
    Permissions {
        /// What is wrong, with the known permission names.
        problem: String,
    },
}

impl From<Invalid> for CommandError {
    fn from(invalid: Invalid) -> Self {
        CommandError::Invalid(invalid)
    }
}

impl CommandError {
    /// Logs `error` under a fresh reference and returns the user-facing error.
    pub fn internal(kind: &'static str, error: &dyn std::fmt::Display) -> CommandError {
        let reference = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        tracing::error!(reference, kind, error = %error, "command failed");
        CommandError::Internal { reference, kind }
    }

    /// The audit outcome this error records.
    pub fn outcome(&self) -> Outcome {
        match self {
            CommandError::Denied(_) => Outcome::Denied,
            CommandError::RateLimited { .. } => Outcome::RateLimited,
            CommandError::Invalid(_) => Outcome::Invalid,
            CommandError::Internal { .. }
            | CommandError::Busy(_)
            | CommandError::SyncFailed(_)
            | CommandError::ActionBusy(_)
            | CommandError::CoolingDown { .. }
            | CommandError::ActionFailed(_) => Outcome::Failed,
        }
    }

    /// The error class the audit log records for failures.
    pub(super) fn error_kind(&self) -> Option<String> {
        match self {
            CommandError::Internal { kind, .. } => Some((*kind).to_string()),
            CommandError::Busy(_) | CommandError::ActionBusy(_) => Some("busy".into()),
            CommandError::CoolingDown { .. } => Some("cooldown".into()),
            CommandError::ActionFailed(run) => {
                run.error_kind.as_ref().map(|kind| format!("retool_{kind}"))
            }
            CommandError::SyncFailed(report) => report
                .failure
                .as_ref()
                .map(|failure| format!("notion_{}", failure.kind)),
            _ => None,
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(err: StoreError) -> Self {
        CommandError::internal("storage", &err)
    }
}
