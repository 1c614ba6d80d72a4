//! The fake Retool (`tests/common/fake_retool/`) exercised with plain reqwest, as patchbay's
//! client will call it: each scripted answer (synchronous, asynchronous with its run id, slow,
//! held until released, rate limited then served, failed), the API key checks, the 404 of a
//! workflow that does not exist, the violations a client can commit, and the request log a
//! test reads.

mod common;

use std::time::{Duration, Instant};

use common::fake_retool::{Answer, FakeRetool, RUN_ID_FIELD};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const WORKFLOW: &str = "43ab5ef0-7da9-4c1e-9d3a-2f6b0c8e1a77";
const KEY: &str = "retool_wk_selftest";
const USER_AGENT: &str = "patchbay-selftest";

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    /// The `Retry-After` header in whole seconds; panics without one.
    fn retry_after(&self) -> u64 {
        let value = self
            .headers
            .get("retry-after")
            .expect("a Retry-After header");
        value.to_str().unwrap().parse().unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

/// Triggers `workflow` as patchbay will: JSON body, the key in `X-Workflow-Api-Key` (when
/// `key` is `Some`), a `User-Agent`.
async fn trigger(fake: &FakeRetool, workflow: &str, key: Option<&str>, body: &Value) -> Reply {
    let mut request = client().post(fake.workflow_url(workflow)).json(body);
    if let Some(key) = key {
        request = request.header("X-Workflow-Api-Key", key);
    }
    send(request).await
}

/// A trigger with the key and a `User-Agent`, but this content type and body as they are.
fn post_raw(fake: &FakeRetool, content_type: &str, body: &'static str) -> reqwest::RequestBuilder {
    client()
        .post(fake.workflow_url(WORKFLOW))
        .header("X-Workflow-Api-Key", KEY)
        .header("Content-Type", content_type)
        .body(body)
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    Reply {
        status,
        headers,
        body,
    }
}

fn is_uuid_v4(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_uppercase())
        })
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

#[tokio::test]
async fn a_response_block_answers_its_status_and_body_and_the_request_is_recorded() {
    let fake = FakeRetool::start().await;
    let body = json!({ "restarted": ["api", "worker"], "by": "ana" });
    fake.add_workflow(
        WORKFLOW,
        KEY,
        Answer::Sync {
            status: 201,
            body: body.clone(),
        },
    );
    let sent = json!({ "action": "restart", "args": { "service": "api" } });

    let reply = trigger(&fake, WORKFLOW, Some(KEY), &sent).await;

    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, body);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        reply.headers
    );
    let requests = fake.requests(WORKFLOW);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].body, sent);
    assert_eq!(requests[0].header("x-workflow-api-key"), Some(KEY));
    assert_eq!(requests[0].status, Some(201));
    assert_eq!(requests[0].run_id, None);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());

    // A new answer takes over from the next request.
    fake.set_answer(
        WORKFLOW,
        Answer::Sync {
            status: 422,
            body: json!({ "error": "no such service" }),
        },
    );
    let reply = trigger(&fake, WORKFLOW, Some(KEY), &sent).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["error"], "no such service");
}

#[tokio::test]
async fn without_a_response_block_each_run_gets_a_fresh_uuid() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::Async);

    let first = trigger(&fake, WORKFLOW, Some(KEY), &json!({ "n": 1 })).await;
    let second = trigger(&fake, WORKFLOW, Some(KEY), &json!({ "n": 2 })).await;

    assert_eq!((first.status, second.status), (200, 200));
    let ids: Vec<String> = [&first, &second]
        .iter()
        .map(|r| r.body[RUN_ID_FIELD].as_str().expect("a run id").to_string())
        .collect();
    assert!(ids.iter().all(|id| is_uuid_v4(id)), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
    let recorded: Vec<Option<String>> = fake
        .requests(WORKFLOW)
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(
        recorded,
        vec![Some(ids[0].clone()), Some(ids[1].clone())],
        "each request keeps the run id it was answered"
    );
}

#[tokio::test]
async fn a_slow_workflow_answers_only_after_its_delay() {
    let fake = FakeRetool::start().await;
    let delay = Duration::from_millis(400);
    fake.add_workflow(WORKFLOW, KEY, Answer::Slow(delay));

    let started = Instant::now();
    let reply = trigger(&fake, WORKFLOW, Some(KEY), &json!({})).await;

    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({ "ok": true }));
}

#[tokio::test]
async fn a_missing_key_is_401_and_a_violation_a_wrong_key_is_403() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::Async);

    let missing = trigger(&fake, WORKFLOW, None, &json!({})).await;
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert_eq!(missing.body["success"], false);
    assert!(
        missing.message().contains("X-Workflow-Api-Key"),
        "{}",
        missing.body
    );
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("no X-Workflow-Api-Key"),
        "{violations:?}"
    );

    let wrong = trigger(&fake, WORKFLOW, Some("retool_wk_other"), &json!({})).await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert_eq!(wrong.body["success"], false);
    assert!(wrong.message().contains("Invalid"), "{}", wrong.body);
    assert_eq!(
        fake.violations().len(),
        1,
        "a wrong key is a setup error, not a protocol one"
    );

    let statuses: Vec<Option<u16>> = fake
        .requests(WORKFLOW)
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [Some(401), Some(403)],
        "both refusals are recorded"
    );
    assert!(fake.requests(WORKFLOW).iter().all(|r| r.run_id.is_none()));
}

#[tokio::test]
async fn a_key_in_the_query_string_is_taken_but_is_a_violation() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::Async);

    let url = format!("{}?workflowApiKey={KEY}", fake.workflow_url(WORKFLOW));
    let reply = send(client().post(url).json(&json!({}))).await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("query string"), "{violations:?}");
}

#[tokio::test]
async fn an_unknown_workflow_is_404_and_recorded_under_its_id() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::Async);
    let unknown = "0b7c2a55-1d1e-4f0a-8c39-5e0c6a7d9b10";

    let reply = trigger(&fake, unknown, Some(KEY), &json!({ "x": 1 })).await;

    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.body["success"], false);
    assert!(reply.message().contains(unknown), "{}", reply.body);
    let requests = fake.requests(unknown);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, Some(404));
    assert_eq!(requests[0].body, json!({ "x": 1 }));
    assert!(fake.requests(WORKFLOW).is_empty());
}

#[tokio::test]
async fn another_content_type_runs_the_workflow_without_its_payload_and_is_a_violation() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::Async);
    let payload = r#"{"action":"restart"}"#;

    let reply = send(post_raw(&fake, "text/plain", payload)).await;

    assert_eq!(reply.status, 200, "Retool still runs the workflow");
    let requests = fake.requests(WORKFLOW);
    assert_eq!(requests[0].body, Value::Null, "the run got no payload");
    assert_eq!(requests[0].raw, payload);
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("text/plain"), "{violations:?}");

    // A charset parameter is still JSON.
    let reply = send(post_raw(&fake, "application/json; charset=utf-8", payload)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(fake.requests(WORKFLOW)[1].body["action"], "restart");
    assert_eq!(fake.violations().len(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_and_a_violation() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::Async);
    let post = |body| post_raw(&fake, "application/json", body);

    let broken = send(post("{\"action\": ")).await;
    assert_eq!(broken.status, 400, "{}", broken.body);
    assert_eq!(broken.body["success"], false);
    let scalar = send(post("\"restart\"")).await;
    assert_eq!(scalar.status, 400, "{}", scalar.body);

    let violations = fake.violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].contains("not JSON"), "{violations:?}");
    assert!(
        violations[1].contains("neither an object nor an array"),
        "{violations:?}"
    );
    // An empty body is allowed: "a JSON payload is optional".
    let empty = send(post("")).await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    assert_eq!(fake.violations().len(), 2);
}

#[tokio::test]
async fn a_request_without_a_user_agent_or_not_a_post_is_a_violation() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::Async);

    let bare = reqwest::Client::new()
        .post(fake.workflow_url(WORKFLOW))
        .header("X-Workflow-Api-Key", KEY)
        .json(&json!({}));
    assert_eq!(send(bare).await.status, 200);
    let get = client()
        .get(fake.workflow_url(WORKFLOW))
        .header("X-Workflow-Api-Key", KEY);
    assert_eq!(send(get).await.status, 404);
    let elsewhere = client().post(format!("{}/v1/workflows", fake.base_url()));
    assert_eq!(send(elsewhere).await.status, 404);

    let violations = fake.violations();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations[0].contains("User-Agent"), "{violations:?}");
    assert!(violations[1].contains("POST only"), "{violations:?}");
    assert!(
        violations[2].contains("not a workflow trigger"),
        "{violations:?}"
    );
    assert_eq!(fake.requests(WORKFLOW).len(), 2);
}

#[tokio::test]
async fn wait_for_requests_returns_once_the_requests_have_arrived_in_order() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::Async);

    let sender = {
        let fake = fake.clone();
        tokio::spawn(async move {
            for n in 0..3 {
                trigger(&fake, WORKFLOW, Some(KEY), &json!({ "n": n })).await;
            }
        })
    };
    let requests = fake.wait_for_requests(WORKFLOW, 3).await;

    let order: Vec<&Value> = requests.iter().map(|r| &r.body["n"]).collect();
    assert_eq!(order, [&json!(0), &json!(1), &json!(2)]);
    assert!(requests.windows(2).all(|w| w[0].received <= w[1].received));
    sender.await.unwrap();
    let answered = fake.wait_for_answered(WORKFLOW, 3).await;
    assert!(answered.iter().all(|r| r.status == Some(200)));
}

#[tokio::test]
async fn a_held_request_answers_only_after_release() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(
        WORKFLOW,
        KEY,
        Answer::Hold {
            then: Box::new(Answer::Sync {
                status: 200,
                body: json!({ "done": true }),
            }),
        },
    );
    let spawn_trigger = |n: u32| {
        let fake = fake.clone();
        tokio::spawn(async move { trigger(&fake, WORKFLOW, Some(KEY), &json!({ "n": n })).await })
    };

    let first = spawn_trigger(1);
    fake.wait_for("one held request", |f| {
        (f.held(WORKFLOW) == 1).then_some(())
    })
    .await;
    let requests = fake.requests(WORKFLOW);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, None, "not answered while held");
    assert!(!first.is_finished());

    fake.release(WORKFLOW);
    let reply = first.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({ "done": true }));
    assert_eq!(fake.held(WORKFLOW), 0);

    // The release was used up: the next request is held again until the next one.
    let second = spawn_trigger(2);
    fake.wait_for("the second request held", |f| {
        (f.held(WORKFLOW) == 1).then_some(())
    })
    .await;
    assert!(!second.is_finished());
    fake.release(WORKFLOW);
    assert_eq!(second.await.unwrap().status, 200);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn dropping_the_fake_ends_a_held_request() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(
        WORKFLOW,
        KEY,
        Answer::Hold {
            then: Box::new(Answer::Async),
        },
    );
    // The task holds only the URL, so dropping `fake` drops the last handle.
    let request = client()
        .post(fake.workflow_url(WORKFLOW))
        .header("X-Workflow-Api-Key", KEY)
        .json(&json!({}));
    let held = tokio::spawn(send(request));
    fake.wait_for("a held request", |f| (f.held(WORKFLOW) == 1).then_some(()))
        .await;

    drop(fake);

    let reply = held.await.unwrap();
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.message().contains("dropped"), "{}", reply.body);
}

#[tokio::test]
async fn rate_limited_requests_get_429_with_retry_after_then_the_answer() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(
        WORKFLOW,
        KEY,
        Answer::RateLimited {
            retry_after_secs: 1,
            times: 2,
            then: Box::new(Answer::Async),
        },
    );

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = trigger(&fake, WORKFLOW, Some(KEY), &json!({})).await;
        statuses.push(reply.status);
        if reply.status == 429 {
            assert_eq!(reply.body["success"], false);
            let wait = reply.retry_after();
            assert_eq!(wait, 1);
            // Honouring Retry-After is the client's side of the protocol under test.
            tokio::time::sleep(Duration::from_secs(wait)).await;
        } else {
            assert!(reply.body[RUN_ID_FIELD].is_string(), "{}", reply.body);
        }
    }

    assert_eq!(statuses, [429, 429, 200]);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[tokio::test]
async fn a_retry_inside_retry_after_is_429_again_and_a_violation() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(
        WORKFLOW,
        KEY,
        Answer::RateLimited {
            retry_after_secs: 2,
            times: 1,
            then: Box::new(Answer::Async),
        },
    );

    let first = trigger(&fake, WORKFLOW, Some(KEY), &json!({})).await;
    let early = trigger(&fake, WORKFLOW, Some(KEY), &json!({})).await;

    assert_eq!((first.status, early.status), (429, 429));
    let left = early.retry_after();
    assert!((1..=2).contains(&left), "{left}");
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].contains("Retry-After of 2 s"),
        "{violations:?}"
    );

    // The early request did not use up the script: once the wait is over, the answer comes.
    tokio::time::sleep(Duration::from_secs(left)).await;
    let served = trigger(&fake, WORKFLOW, Some(KEY), &json!({})).await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(fake.violations().len(), 1);
}

#[tokio::test]
async fn a_server_error_is_500_with_retools_error_body() {
    let fake = FakeRetool::start().await;
    fake.add_workflow(WORKFLOW, KEY, Answer::ServerError);

    let reply = trigger(&fake, WORKFLOW, Some(KEY), &json!({})).await;

    assert_eq!(reply.status, 500);
    assert_eq!(reply.body["success"], false);
    assert!(!reply.message().is_empty(), "{}", reply.body);
    assert_eq!(fake.requests(WORKFLOW)[0].status, Some(500));
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}
