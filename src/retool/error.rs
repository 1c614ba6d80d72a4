//! What can go wrong starting a workflow, each case saying what to do.

use std::time::Duration;

/// Why a workflow could not be started, or whether it may have run anyway.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetoolError {
    /// Retool refused the workflow API key (401 or 403).
    #[error(
        "Retool refused the workflow API key (HTTP {status}): check {variable} holds the key of this workflow's webhook trigger"
    )]
    Auth {
        /// The HTTP status.
        status: u16,
        /// The environment variable the key is read from (the key is never shown).
        variable: String,
    },
    /// Retool knows no workflow at this URL (404).
    #[error(
        "Retool knows no workflow at {url} (HTTP 404): check the action's url against the workflow's webhook trigger, and that the workflow is deployed"
    )]
    NotFound {
        /// The URL, without its query.
        url: String,
    },
    /// Retool asked to slow down longer than the action's timeout allows; nothing ran.
    #[error("Retool is rate limiting this workflow{}; nothing ran, try again later", retry_hint(.retry_after.as_ref()))]
    RateLimited {
        /// How long Retool asked to wait.
        retry_after: Option<Duration>,
    },
    /// Retool (or the workflow's Response block) answered with a 5xx.
    #[error(
        "Retool answered HTTP {status}: the workflow may have run part-way; check its run log in Retool before running it again"
    )]
    Server {
        /// The HTTP status.
        status: u16,
        /// What it answered.
        body: serde_json::Value,
    },
    /// No answer within the action's timeout.
    #[error(
        "Retool did not answer within {}{}(request id {request_id})",
        crate::duration::compact(*.after),
        if *.may_have_run { "; the workflow may still be running " } else { "; nothing was sent " }
    )]
    Timeout {
        /// The action's timeout.
        after: Duration,
        /// patchbay's id of the request, sent in its body.
        request_id: String,
        /// Whether the request may have reached Retool.
        may_have_run: bool,
    },
    /// Retool could not be reached (DNS, connection, TLS) or broke off the answer.
    #[error("could not reach Retool: {message}{}", if *.may_have_run { " (the workflow may have run)" } else { " (nothing was sent)" })]
    Unreachable {
        /// The transport's explanation.
        message: String,
        /// Whether the request may have reached Retool.
        may_have_run: bool,
    },
    /// Recent calls to this workflow failed; patchbay waits before trying again.
    #[error("calls to this workflow keep failing; patchbay tries again in {}s", .retry_in.as_secs().max(1))]
    CircuitOpen {
        /// When the next attempt is allowed.
        retry_in: Duration,
    },
}

impl RetoolError {
    /// A stable label for the audit log and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RetoolError::Auth { .. } => "auth",
            RetoolError::NotFound { .. } => "not_found",
            RetoolError::RateLimited { .. } => "rate_limited",
            RetoolError::Server { .. } => "server",
            RetoolError::Timeout { .. } => "timeout",
            RetoolError::Unreachable { .. } => "connect",
            RetoolError::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// Whether the workflow may have run (so the cooldown applies and nobody should simply
    /// run it again).
    pub fn may_have_run(&self) -> bool {
        match self {
            RetoolError::Server { .. } => true,
            RetoolError::Timeout { may_have_run, .. }
            | RetoolError::Unreachable { may_have_run, .. } => *may_have_run,
            RetoolError::Auth { .. }
            | RetoolError::NotFound { .. }
            | RetoolError::RateLimited { .. }
            | RetoolError::CircuitOpen { .. } => false,
        }
    }
}

fn retry_hint(wait: Option<&Duration>) -> String {
    wait.map_or_else(String::new, |wait| {
        format!(" (it asked to wait {})", crate::duration::compact(*wait))
    })
}
