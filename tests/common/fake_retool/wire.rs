//! The handler and Retool's wire format. Every request to a workflow's trigger path is recorded
//! under the workflow's id before anything is checked, then checked in the order an Express
//! server checks it (the route, the JSON body, the workflow, the key, a `Retry-After` still
//! running) and answered with the workflow's script, after whatever that script waits for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Answer, Inner, RUN_ID_FIELD, RetoolRequest, St, Workflow, new_run_id};

/// The header Retool reads a workflow's API key from.
const KEY_HEADER: &str = "x-workflow-api-key";
/// The query parameter Retool also takes the key from.
const KEY_PARAM: &str = "workflowApiKey";

/// One answer: status, JSON body, `Retry-After`, and the run id of an asynchronous run.
struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    run_id: Option<String>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            retry_after: None,
            run_id: None,
        }
    }

    /// Retool's error body (the shape of its REST API; see the module docs).
    fn error(status: u16, message: &str) -> Reply {
        Reply::json(status, json!({ "success": false, "message": message }))
    }

    fn limited(retry_after: u64) -> Reply {
        Reply {
            retry_after: Some(retry_after),
            ..Reply::error(
                429,
                "Rate limit exceeded for this workflow. Retry after the time in the Retry-After \
                 header.",
            )
        }
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body.to_string()));
        *response.status_mut() = StatusCode::from_u16(self.status).expect("a valid status");
        let headers = response.headers_mut();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert("retry-after", HeaderValue::from(seconds));
        }
        response
    }
}

/// What a workflow's script waits for before its answer goes out.
enum Wait {
    /// A [`super::FakeRetool::release`] after this many of them.
    Release(u64),
    For(Duration),
}

pub(super) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(handle).with_state(inner)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Instant::now();
    let Some(id) = workflow_id(uri.path()) else {
        inner.lock().violations.push(format!(
            "{method} {}: not a workflow trigger (POST /v1/workflows/{{id}}/startTrigger)",
            uri.path()
        ));
        inner.bump();
        return Reply::error(404, "Not found").into_response();
    };
    let (index, waits, reply) = {
        let mut st = inner.lock();
        let requests = st.requests.entry(id.clone()).or_default();
        requests.push(RetoolRequest {
            method: method.to_string(),
            headers: headers.clone(),
            body: Value::Null,
            raw: String::from_utf8_lossy(&body).into_owned(),
            received: now,
            status: None,
            answered: None,
            run_id: None,
        });
        let index = requests.len() - 1;
        let arrival = Arrival {
            method: &method,
            uri: &uri,
            headers: &headers,
            body: &body,
            now,
        };
        let (waits, reply) = match admit(&mut st, &id, index, &arrival) {
            Ok(workflow) => play_script(workflow, now),
            Err(refusal) => (Vec::new(), refusal),
        };
        (index, waits, reply)
    };
    inner.bump();
    let mut reply = reply;
    for wait in waits {
        match wait {
            Wait::For(delay) => tokio::time::sleep(delay).await,
            Wait::Release(after) => {
                if !released(&inner, &id, after).await {
                    reply = Reply::error(503, "The fake Retool was dropped.");
                    break;
                }
            }
        }
    }
    {
        let mut st = inner.lock();
        if let Some(request) = st.requests.get_mut(&id).and_then(|r| r.get_mut(index)) {
            request.status = Some(reply.status);
            request.answered = Some(Instant::now());
            request.run_id.clone_from(&reply.run_id);
        }
    }
    inner.bump();
    reply.into_response()
}

/// The workflow id of a trigger path, `/v1/workflows/{id}/startTrigger`.
fn workflow_id(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/workflows/")?;
    let id = rest.strip_suffix("/startTrigger")?;
    (!id.is_empty() && !id.contains('/')).then(|| id.to_string())
}

/// A request as it arrived, for the checks.
struct Arrival<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
    now: Instant,
}

/// Everything checked before the workflow runs, in Express's order; records what the workflow
/// receives as request `index`'s body and every violation seen. `Err` is the refusal.
fn admit<'s>(
    st: &'s mut St,
    id: &str,
    index: usize,
    arrival: &Arrival,
) -> Result<&'s mut Workflow, Reply> {
    let mut violations = Vec::new();
    let outcome = check(st, id, index, arrival, &mut violations);
    st.violations.append(&mut violations);
    outcome?;
    Ok(st.workflows.get_mut(id).expect("checked to exist"))
}

fn check(
    st: &mut St,
    id: &str,
    index: usize,
    arrival: &Arrival,
    violations: &mut Vec<String>,
) -> Result<(), Reply> {
    let (method, path) = (arrival.method, arrival.uri.path());
    if !arrival.headers.contains_key("user-agent") {
        violations.push(format!(
            "{method} {path}: no User-Agent (api.retool.com sits behind Cloudflare, which \
             refuses bot-like clients)"
        ));
    }
    if method != Method::POST {
        violations.push(format!("{method} {path}: the trigger takes POST only"));
        return Err(Reply::error(404, &format!("Cannot {method} {path}")));
    }
    let received = received_json(arrival.headers, arrival.body, violations, path)?;
    st.requests.get_mut(id).expect("recorded on arrival")[index].body = received;
    let Some(workflow) = st.workflows.get_mut(id) else {
        return Err(Reply::error(404, &format!("Workflow {id} not found.")));
    };
    let query = arrival.uri.query().unwrap_or_default();
    let query_key = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == KEY_PARAM)
        .map(|(_, value)| value.into_owned());
    if query_key.is_some() {
        violations.push(format!(
            "POST {path}: the API key was sent in the URL's query string, where it gets \
             logged; send it in the X-Workflow-Api-Key header"
        ));
    }
    let key = match arrival.headers.get(KEY_HEADER) {
        Some(value) => Some(value.to_str().unwrap_or_default().to_string()),
        None => query_key,
    };
    let Some(key) = key else {
        violations.push(format!("POST {path}: no X-Workflow-Api-Key header"));
        return Err(Reply::error(
            401,
            "Missing workflow API key. Send it in the X-Workflow-Api-Key header.",
        ));
    };
    if key != workflow.api_key {
        return Err(Reply::error(403, "Invalid workflow API key."));
    }
    if let Some((until, said)) = workflow.retry_after
        && arrival.now < until
    {
        let early = until - arrival.now;
        violations.push(format!(
            "POST {path}: sent {:.3} s before the Retry-After of {said} s had passed",
            early.as_secs_f64()
        ));
        return Err(Reply::limited((early.as_secs_f64().ceil() as u64).max(1)));
    }
    Ok(())
}

/// The JSON the workflow receives: the parsed body under a JSON content type, `null` without a
/// body or under another content type (Express's parser passes over it). A body Express's
/// strict parser refuses (not JSON, or JSON that is neither an object nor an array) is 400.
fn received_json(
    headers: &HeaderMap,
    body: &[u8],
    violations: &mut Vec<String>,
    path: &str,
) -> Result<Value, Reply> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        violations.push(format!(
            "POST {path}: Content-Type {content_type:?}, not application/json: Retool runs \
             the workflow without the payload"
        ));
        return Ok(Value::Null);
    }
    if body.is_empty() {
        return Ok(Value::Null);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => Ok(value),
        Ok(other) => {
            violations.push(format!(
                "POST {path}: the body is JSON but neither an object nor an array: {other}"
            ));
            Err(Reply::error(
                400,
                "Request body must be a JSON object or array.",
            ))
        }
        Err(e) => {
            violations.push(format!("POST {path}: the body is not JSON: {e}"));
            Err(Reply::error(
                400,
                &format!("Invalid JSON in request body: {e}"),
            ))
        }
    }
}

/// Runs the workflow's script for one request: what it waits for, and its answer. Counts down
/// [`Answer::RateLimited`]'s `times`, and counts a held request in [`Workflow::held`].
fn play_script(workflow: &mut Workflow, now: Instant) -> (Vec<Wait>, Reply) {
    let mut waits = Vec::new();
    let Workflow {
        answer,
        retry_after,
        releases,
        held,
        ..
    } = workflow;
    let mut answer = answer;
    loop {
        match answer {
            Answer::Sync { status, body } => return (waits, Reply::json(*status, body.clone())),
            Answer::Async => {
                let run_id = new_run_id();
                let reply = Reply {
                    run_id: Some(run_id.clone()),
                    ..Reply::json(200, json!({ RUN_ID_FIELD: run_id }))
                };
                return (waits, reply);
            }
            Answer::Slow(delay) => {
                waits.push(Wait::For(*delay));
                return (waits, Reply::json(200, json!({ "ok": true })));
            }
            Answer::Hold { then } => {
                if !waits.iter().any(|w| matches!(w, Wait::Release(_))) {
                    waits.push(Wait::Release(*releases));
                    *held += 1;
                }
                answer = then;
            }
            Answer::RateLimited {
                retry_after_secs,
                times,
                then,
            } => {
                if *times == 0 {
                    answer = then;
                    continue;
                }
                *times -= 1;
                if *retry_after_secs > 0 {
                    *retry_after = Some((
                        now + Duration::from_secs(*retry_after_secs),
                        *retry_after_secs,
                    ));
                }
                return (waits, Reply::limited(*retry_after_secs));
            }
            Answer::ServerError => {
                return (waits, Reply::error(500, "Internal server error."));
            }
        }
    }
}

/// Awaits a release of workflow `id` beyond the first `after`; `false` when the fake was
/// dropped first. Either way the request stops counting as held.
async fn released(inner: &Inner, id: &str, after: u64) -> bool {
    let mut changed = inner.changed.subscribe();
    let released = loop {
        changed.borrow_and_update();
        {
            let st = inner.lock();
            if st.closed {
                break false;
            }
            if st.workflows.get(id).is_none_or(|w| w.releases > after) {
                break true;
            }
        }
        if changed.changed().await.is_err() {
            break false;
        }
    };
    if let Some(workflow) = inner.lock().workflows.get_mut(id) {
        workflow.held = workflow.held.saturating_sub(1);
    }
    inner.bump();
    released
}
