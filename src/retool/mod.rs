//! The Retool client: starts a workflow through its webhook trigger (`POST …/startTrigger` with
//! `X-Workflow-Api-Key`), on the shared resilience layer.
//!
//! - One [`Upstream`] per action (`retool:<action>`): its own breaker in `/metrics`, so one
//!   broken workflow does not stop the others.
//! - A workflow is not idempotent: a request that may have reached Retool is never sent again.
//!   Only a request that provably never left, or that Retool refused with a 429 (it did not run
//!   the workflow), is retried, the latter after its `Retry-After`, all within the action's
//!   timeout.
//! - Every attempt is counted in `patchbay_retool_requests_total{action, outcome}`.
//! - What Retool says is read into [`WorkflowAnswer`]: a workflow with a Response block answers
//!   with that block's status and JSON body when it reaches the block (synchronously, within
//!   120 s); one without answers at once that the run started, with its run id.
//! - Errors are [`RetoolError`]s that say what to do, naming the API key by its variable and
//!   never showing it.

mod error;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

pub use error::RetoolError;

use crate::config::Action;
use crate::metrics::Metrics;
use crate::resilience::{
    BreakerConfig, Call, RetryPolicy, Upstream, UpstreamConfig, UpstreamError,
};

/// The most of an answer's body kept: far more than a Response block's JSON usually is.
const BODY_LIMIT: usize = 1 << 20;

/// What the workflow's trigger answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkflowAnswer {
    /// A workflow with a Response block ran to it: the status and body that block set.
    Responded {
        /// The HTTP status the Response block chose.
        status: u16,
        /// Its body (JSON, or the text as a JSON string when it is not JSON).
        body: serde_json::Value,
    },
    /// A workflow without a Response block: Retool started it and answered at once.
    Started {
        /// The run's id in Retool, when the answer carried one.
        run_id: Option<String>,
    },
}

/// The Retool clients of one process: one upstream per action.
pub struct Retool {
    http: reqwest::Client,
    metrics: Option<Arc<Metrics>>,
    upstreams: Mutex<HashMap<String, Upstream>>,
}

impl std::fmt::Debug for Retool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retool").finish_non_exhaustive()
    }
}

/// How calls to one workflow behave: one attempt per `timeout` (Retool's synchronous limit is
/// 120 s), 429s waited out within it, never a retry of a request that may have run.
fn upstream_config(timeout: Duration) -> UpstreamConfig {
    UpstreamConfig {
        timeout,
        retry: RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: timeout,
        },
        breaker: BreakerConfig {
            failure_threshold: 5,
            open_duration: Duration::from_secs(30),
        },
        body_limit: BODY_LIMIT,
        ..UpstreamConfig::default()
    }
}

impl Retool {
    /// Clients that report to `metrics`.
    pub fn new(metrics: Option<Arc<Metrics>>) -> Retool {
        Retool {
            http: reqwest::Client::builder()
                .user_agent(concat!("patchbay/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the TLS backend initialises"),
            metrics,
            upstreams: Mutex::new(HashMap::new()),
        }
    }

    fn upstream(&self, action: &Action) -> Upstream {
        let mut upstreams = self.upstreams.lock().expect("retool upstreams lock");
        if let Some(upstream) = upstreams.get(&action.name)
            && upstream.config().timeout == action.timeout
        {
            return upstream.clone();
        }
        let metrics = self.metrics.clone();
        let name = action.name.clone();
        let observer: crate::resilience::AttemptObserver = Arc::new(move |outcome| {
            if let Some(metrics) = &metrics {
                let label = match outcome {
                    Ok(_) => "ok",
                    Err(error) => error.kind(),
                };
                metrics.retool_request(&name, label);
            }
        });
        let upstream = Upstream::observed(
            format!("retool:{}", action.name),
            upstream_config(action.timeout),
            observer,
        );
        if let Some(metrics) = &self.metrics {
            metrics.watch_upstream(upstream.clone());
        }
        upstreams.insert(action.name.clone(), upstream.clone());
        upstream
    }

    /// Whether `action`'s workflow URL answers, without starting the workflow: one `HEAD`
    /// request (a safe method: Retool starts a workflow only on `POST`), without the API key,
    /// within 10 s. Any HTTP answer counts (Retool answers 404 or 405 to a `HEAD`); what it
    /// proves is that the name resolves, the port is open and TLS is accepted. `patchbay check
    /// --online` uses it.
    pub async fn reachable(&self, action: &Action) -> Result<u16, String> {
        let answer = self
            .http
            .head(action.url.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|err| {
                let what = if err.is_timeout() {
                    "no answer within 10 s".to_string()
                } else if err.is_connect() {
                    "could not connect (DNS, port or TLS)".to_string()
                } else {
                    "the request failed".to_string()
                };
                // reqwest's error names the URL; the URL carries no key (a key in the query is
                // refused by the config), so its source is safe to show.
                let mut cause = String::new();
                let mut source = std::error::Error::source(&err);
                while let Some(inner) = source {
                    cause = inner.to_string();
                    source = inner.source();
                }
                if cause.is_empty() {
                    what
                } else {
                    format!("{what}: {cause}")
                }
            })?;
        Ok(answer.status().as_u16())
    }

    /// Starts `action`'s workflow with `body`. `request_id` is patchbay's id of the request,
    /// named in a timeout's message so the run can be found in Retool's logs.
    pub async fn start(
        &self,
        action: &Action,
        body: &serde_json::Value,
        request_id: &str,
    ) -> Result<WorkflowAnswer, RetoolError> {
        let upstream = self.upstream(action);
        let payload = serde_json::to_vec(body).expect("a JSON value serialises");
        let build = || {
            self.http
                .post(action.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Workflow-Api-Key", action.api_key.value.expose())
                .body(payload.clone())
        };
        // The whole call, 429 waits included, stays within the action's timeout.
        let exchange = tokio::time::timeout(
            action.timeout,
            upstream.exchange(Call::non_idempotent(), build),
        )
        .await;
        let timeout = |may_have_run| RetoolError::Timeout {
            after: action.timeout,
            request_id: request_id.to_string(),
            may_have_run,
        };
        let answer = match exchange {
            Err(_) => return Err(timeout(true)),
            Ok(Err(unanswered)) => {
                return Err(match unanswered.error {
                    UpstreamError::Timeout => timeout(!unanswered.never_sent),
                    UpstreamError::RateLimited { retry_after } => {
                        RetoolError::RateLimited { retry_after }
                    }
                    UpstreamError::CircuitOpen { retry_in, .. } => {
                        RetoolError::CircuitOpen { retry_in }
                    }
                    other => RetoolError::Unreachable {
                        message: other.to_string(),
                        may_have_run: !unanswered.never_sent,
                    },
                });
            }
            Ok(Ok(answer)) => answer,
        };
        let status = answer.status.as_u16();
        let body = read_body(&answer.body, answer.truncated);
        match status {
            401 | 403 => Err(RetoolError::Auth {
                status,
                variable: action.api_key.variable.clone(),
            }),
            404 => Err(RetoolError::NotFound {
                url: redacted_url(&action.url),
            }),
            429 => Err(RetoolError::RateLimited {
                retry_after: answer.error().and_then(|e| e.retry_after()),
            }),
            // Retool's own failures and a Response block's 5xx look alike; either way the
            // workflow may have run part-way, and it is reported, never repeated.
            500..=599 => Err(RetoolError::Server { status, body }),
            _ => Ok(read_answer(status, body)),
        }
    }
}

/// The body as JSON, or as a JSON string when it is not JSON (an HTML error page, text).
fn read_body(bytes: &[u8], truncated: bool) -> serde_json::Value {
    if !truncated && let Ok(value) = serde_json::from_slice(bytes) {
        return value;
    }
    let text = String::from_utf8_lossy(bytes);
    serde_json::Value::String(if truncated {
        format!("{text}…")
    } else {
        text.into_owned()
    })
}

/// The field names Retool's immediate answer to a workflow without a Response block carries
/// its run id in.
const RUN_ID_FIELDS: [&str; 3] = ["workflow_run_id", "workflowRunId", "run_id"];

/// Reads a 2xx-4xx answer: Retool's "started" answer when it has that shape, else what the
/// Response block returned.
fn read_answer(status: u16, body: serde_json::Value) -> WorkflowAnswer {
    if let serde_json::Value::Object(map) = &body
        && let Some(run_id) = RUN_ID_FIELDS
            .iter()
            .find_map(|field| map.get(*field).and_then(|v| v.as_str()))
    {
        return WorkflowAnswer::Started {
            run_id: Some(run_id.to_string()),
        };
    }
    WorkflowAnswer::Responded { status, body }
}

/// The URL without its query (where a key may sit) for messages.
fn redacted_url(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_a_run_id_is_a_started_run() {
        let started = read_answer(200, serde_json::json!({"workflow_run_id": "abc"}));
        assert_eq!(
            started,
            WorkflowAnswer::Started {
                run_id: Some("abc".into())
            }
        );
        let responded = read_answer(201, serde_json::json!({"restarted": true}));
        assert_eq!(
            responded,
            WorkflowAnswer::Responded {
                status: 201,
                body: serde_json::json!({"restarted": true})
            }
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_kept_as_text() {
        assert_eq!(read_body(b"<html>", false), serde_json::json!("<html>"));
        assert_eq!(read_body(b"{\"a\":", true), serde_json::json!("{\"a\":…"));
    }
}
