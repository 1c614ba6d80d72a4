//! [`NotionError`]: what went wrong with a Notion call, in the shared taxonomy
//! ([`UpstreamError`]) and in Notion's own words (its error `code`, `message` and `request_id`),
//! and [`NotionError::what_to_do`]: the action a person can take, written for any front.

use crate::resilience::UpstreamError;

/// Why a Notion call or job failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotionError {
    /// Notion answered with an error object.
    #[error("Notion answered HTTP {status} {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Notion's error code (`object_not_found`, `validation_error`, ...).
        code: String,
        /// Notion's message (it names the property or object at fault).
        message: String,
        /// Notion's request id, for its support.
        request_id: Option<String>,
        /// The answer in the shared taxonomy.
        error: UpstreamError,
    },
    /// No usable answer: a timeout, a dropped connection, the breaker open, a body that is not
    /// what Notion sends.
    #[error("{0}")]
    Unanswered(UpstreamError),
    /// The database cannot be used as configured (several data sources and none named, a
    /// property of the wrong type); the message says which and why.
    #[error("{0}")]
    Setup(String),
}

impl NotionError {
    /// A stable label: the taxonomy's kind (`auth`, `rate_limited`, `timeout`, `connect`,
    /// `server`, `bad_response`, `client`, `circuit_open`), or `setup`.
    pub fn kind(&self) -> &'static str {
        match self {
            NotionError::Api { error, .. } | NotionError::Unanswered(error) => error.kind(),
            NotionError::Setup(_) => "setup",
        }
    }

    /// Notion's error code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            NotionError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Notion's request id, when it answered with one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            NotionError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// What a person can do about it. `token_variable` names the environment variable that
    /// holds the token (never its value).
    pub fn what_to_do(&self, token_variable: &str) -> String {
        match self {
            NotionError::Api { code, message, .. } => match code.as_str() {
                "object_not_found" => "share the database with the integration: open it in \
                    Notion, then ••• → Connections → add the integration whose token patchbay \
                    uses"
                    .into(),
                "unauthorized" => format!(
                    "check {token_variable}: Notion does not accept that token (copy the \
                     integration's internal secret again from notion.so/my-integrations)"
                ),
                "restricted_resource" => format!(
                    "the integration lacks a capability for this ({message}); give it Read, \
                     Update and Insert content under notion.so/my-integrations → Capabilities"
                ),
                "validation_error" => format!("Notion refused the data: {message}"),
                "conflict_error" => {
                    "the page changed while patchbay wrote it; run the sync again".into()
                }
                "rate_limited" => format!(
                    "Notion is rate limiting {token_variable}; patchbay waited and retried. \
                     Try again in a minute, or sync less often"
                ),
                _ if self.kind() == "server" || code == "service_overload" => {
                    "Notion is having trouble; patchbay retried. Try again later \
                     (status.notion.so)"
                        .into()
                }
                _ => format!("Notion refused the request: {message}"),
            },
            NotionError::Unanswered(error) => match error {
                UpstreamError::Timeout => "Notion did not answer in time; try again".into(),
                UpstreamError::Connect(_) => "patchbay could not reach Notion; check the network \
                    (and NOTION_API_BASE if set)"
                    .into(),
                UpstreamError::CircuitOpen { retry_in, .. } => format!(
                    "Notion failed several times in a row, so patchbay pauses calls; it tries \
                     again in {}",
                    crate::duration::human(*retry_in)
                ),
                UpstreamError::RateLimited { .. } => {
                    format!("Notion is rate limiting {token_variable}; try again in a minute")
                }
                _ => "Notion sent an answer patchbay cannot read; try again".into(),
            },
            NotionError::Setup(message) => message.clone(),
        }
    }
}

impl From<UpstreamError> for NotionError {
    fn from(error: UpstreamError) -> Self {
        NotionError::Unanswered(error)
    }
}
