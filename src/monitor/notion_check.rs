//! The check of an integration of kind `notion`: `GET /v1/users/me` with its token, through the
//! Notion client (so it spends the token's shared quota and shows in its request counts) as a
//! probe: one attempt, outside the circuit breaker, like every health check.

use std::time::Duration;

use crate::config::{Integration, NotionCheck};
use crate::model::CheckResult;
use crate::notion::{Notion, NotionError};

/// Runs one Notion check within the integration's timeout.
pub async fn check(notion: &Notion, integration: &Integration, spec: &NotionCheck) -> CheckResult {
    let client = notion.client(&spec.token);
    let at = crate::model::now();
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(integration.timeout, client.me()).await;
    let latency = started.elapsed();
    let failure = |status: Option<u16>, kind: &str, message: String| CheckResult {
        integration: integration.name.clone(),
        at,
        success: false,
        latency_ms: ms(latency),
        status,
        error_kind: Some(kind.to_string()),
        message: Some(message),
    };
    match outcome {
        Ok(Ok(_)) => CheckResult {
            integration: integration.name.clone(),
            at,
            success: true,
            latency_ms: ms(latency),
            status: Some(200),
            error_kind: None,
            message: None,
        },
        Ok(Err(error)) => {
            let status = match &error {
                NotionError::Api { status, .. } => Some(*status),
                _ => None,
            };
            let advice = error.what_to_do(client.token_variable());
            failure(status, error.kind(), format!("{error}; {advice}"))
        }
        Err(_) => failure(
            None,
            "timeout",
            format!(
                "Notion did not answer within {}",
                crate::duration::compact(integration.timeout)
            ),
        ),
    }
}

fn ms(latency: Duration) -> f64 {
    latency.as_secs_f64() * 1000.0
}
