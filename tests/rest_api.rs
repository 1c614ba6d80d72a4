//! The REST API end to end: patchbay started through `app::start` (the wiring of `patchbay
//! run`) on a fresh SQLite file, called with reqwest on its real port. Every route; missing,
//! malformed, unknown and revoked keys; permission scopes; pages that never overlap or skip
//! while rows arrive; the per-key rate limit; the body limit, malformed JSON and validation;
//! the OpenAPI document against the router; the same command from the API and from Discord
//! leaving the same audit entry; a sync run started in the background and followed; and the
//! `patchbay apikey` command line through the real binary.

mod common;

use std::time::Duration;

use common::fake_discord::{FakeDiscord, FakeMember};
use common::fake_notion::{FakeNotion, Fault};
use common::process;
use common::stack::{self, Patchbay};
use common::upstream::Upstream;
use patchbay::audit::{AuditQuery, Outcome};
use patchbay::model::Actor;
use reqwest::Method;
use serde_json::{Value, json};

/// A client of one running patchbay's API.
struct Api {
    base: String,
    client: reqwest::Client,
}

/// An answer: status, headers, JSON body (`Null` when the body is not JSON).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api {
    fn of(bot: &Patchbay) -> Api {
        Api {
            base: format!("http://{}", bot.running().address()),
            client: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        self.send(Method::GET, path, Some(key), None).await
    }

    async fn post(&self, path: &str, key: &str, body: Option<Value>) -> Answer {
        self.send(Method::POST, path, Some(key), body).await
    }
}

/// Makes a key through the control plane (as `patchbay apikey create` does).
async fn key(bot: &Patchbay, name: &str, permissions: &str) -> String {
    bot.plane()
        .create_api_key(name, permissions, &Actor::cli())
        .await
        .unwrap()
        .secret
        .expose()
        .to_string()
}

/// Starts patchbay without a bot token on `text` (plus the stack's `[http]` and `[storage]`).
async fn start(text: &str) -> Patchbay {
    stack::start_text(
        FakeDiscord::start().await,
        tempfile::tempdir().unwrap(),
        text,
        false,
        Vec::new(),
    )
    .await
}

/// A route's path with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{name}", "x")
        .replace("{number}", "1")
        .replace("{id}", "1")
}

/// One integration checked hourly against a closed port.
const ONE_INTEGRATION: &str =
    "[[integration]]\nname = \"api\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1h\"\n";

const ALL: &str = "status.view,status.recheck,alerts.manage,sync.run,audit.view";

/// Waits until `done` holds for what `read` answers, or fails after 20 s.
async fn until<F, Fut>(what: &str, mut read: F, done: impl Fn(&Answer) -> bool) -> Answer
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = read().await;
        if done(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within 20 s; last answer {} {}",
            answer.status,
            answer.body
        );
        // Polling the API under test: what it answers is the condition awaited.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_through_the_control_plane() {
    let upstream = Upstream::start().await;
    upstream.break_it();
    let bot = start(&format!(
        "{}{}",
        stack::integration("payments-api", &upstream, "tags = [\"payments\"]"),
        "[[integration]]\nname = \"search\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1h\"\nenabled = false\n"
    ))
    .await;
    let api = Api::of(&bot);
    let key = key(&bot, "retool", ALL).await;

    // The failing integration opens an incident; the list shows it, worst state first.
    let rows = until(
        "payments-api DOWN with an open incident",
        || api.get("/api/v1/integrations", &key),
        |a| a.body[0]["state"] == "DOWN" && a.body[0]["open_incident"].is_i64(),
    )
    .await;
    assert_eq!(rows.status, 200);
    let row = &rows.body[0];
    assert_eq!(row["name"], "payments-api");
    assert_eq!(row["kind"], "http");
    assert_eq!(row["tags"], json!(["payments"]));
    assert!(row["since"].as_str().unwrap().ends_with('Z'), "{row}");
    assert!(row["last_checked"].is_string(), "{row}");
    for field in ["latency_p95_ms", "uptime_24h", "open_incident_since"] {
        assert!(row.get(field).is_some(), "{field} missing: {row}");
    }
    assert_eq!(rows.body[1]["state"], "PAUSED");
    let number = row["open_incident"].as_i64().unwrap();

    // The detail: 24 hours for charts (the current one last), the latest checks.
    let detail = api.get("/api/v1/integrations/payments-api", &key).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body["hourly"].as_array().unwrap().len(), 24);
    let checks = detail.body["recent_checks"].as_array().unwrap();
    assert!(
        !checks.is_empty() && checks[0]["success"] == false,
        "{checks:?}"
    );
    let missing = api.get("/api/v1/integrations/payments-ap", &key).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["suggestions"], json!(["payments-api"]));

    // A recheck answers the row after a live check; a disabled integration is a conflict.
    let rechecked = api
        .post("/api/v1/integrations/payments-api/recheck", &key, None)
        .await;
    assert_eq!(rechecked.status, 200, "{}", rechecked.body);
    assert_eq!(rechecked.body["state"], "DOWN");
    let paused = api
        .post("/api/v1/integrations/search/recheck", &key, None)
        .await;
    assert_eq!(paused.status, 409, "{}", paused.body);

    // Incidents: open by default; acknowledge once, then a conflict.
    let incidents = api.get("/api/v1/incidents", &key).await;
    assert_eq!(incidents.status, 200);
    assert_eq!(incidents.body["next_cursor"], Value::Null);
    let incident = &incidents.body["incidents"][0];
    assert_eq!(incident["number"], number);
    assert_eq!(incident["integration"], "payments-api");
    assert_eq!(incident["severity"], "critical");
    let ack = api
        .post(&format!("/api/v1/incidents/{number}/ack"), &key, None)
        .await;
    assert_eq!(ack.status, 200, "{}", ack.body);
    assert_eq!(ack.body["acknowledged_by"], "apikey:retool");
    let again = api
        .post(&format!("/api/v1/incidents/{number}/ack"), &key, None)
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"], "conflict");
    let acked = api.get("/api/v1/incidents?state=all", &key).await;
    assert_eq!(
        acked.body["incidents"][0]["acknowledged_by"], "apikey:retool",
        "{}",
        acked.body
    );
    let unknown = api.post("/api/v1/incidents/999/ack", &key, None).await;
    assert_eq!(unknown.status, 404);
    let bad_state = api.get("/api/v1/incidents?state=closed", &key).await;
    assert_eq!(bad_state.status, 422);
    assert_eq!(bad_state.body["field"], "state");

    // Silences: make one, list it, end it, end it again.
    let made = api
        .post(
            "/api/v1/silences",
            &key,
            Some(json!({"target": "tag:payments", "duration": "2h", "reason": "provider maintenance"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["id"].as_i64().unwrap();
    assert_eq!(made.body["created_by"], "apikey:retool");
    let listed = api.get("/api/v1/silences", &key).await;
    assert_eq!(listed.body[0]["id"], id);
    assert_eq!(listed.body[0]["reason"], "provider maintenance");
    let ended = api
        .send(
            Method::DELETE,
            &format!("/api/v1/silences/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(
        (ended.status, ended.body["ended"].clone()),
        (200, json!(true))
    );
    let gone = api
        .send(
            Method::DELETE,
            &format!("/api/v1/silences/{id}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(api.get("/api/v1/silences", &key).await.body, json!([]));

    // Sync: no jobs here, so an unknown job and an unknown run.
    assert_eq!(api.get("/api/v1/sync/jobs", &key).await.body, json!([]));
    let no_job = api.post("/api/v1/sync/jobs/board/runs", &key, None).await;
    assert_eq!(no_job.status, 404, "{}", no_job.body);
    assert_eq!(api.get("/api/v1/sync/runs/7", &key).await.status, 404);

    // The audit log names the key as apikey:retool, with the permission and the scope.
    let audit = api.get("/api/v1/audit?limit=5", &key).await;
    assert_eq!(audit.status, 200);
    let entry = &audit.body["entries"][0];
    assert_eq!(entry["actor"], "apikey:retool", "{}", audit.body);
    assert_eq!(entry["command"], "sync history");
    assert_eq!(entry["permission"], "status.view");
    assert_eq!(entry["allowed_by"], "scope");
    assert_eq!(entry["outcome"], "invalid");
    assert_eq!(entry["options"], json!({"run": 7}));
    assert!(audit.body["next_cursor"].is_string());
    let made_entry = bot
        .store()
        .audit_entries(&AuditQuery {
            command: Some("alerts silence".into()),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(made_entry.outcome, Outcome::Ok);
    assert_eq!(made_entry.allowed.unwrap().code(), "scope");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_malformed_unknown_and_revoked_keys_are_refused() {
    let bot = start("").await;
    let api = Api::of(&bot);
    let key = key(&bot, "retool", "status.view").await;
    assert_eq!(api.get("/api/v1/integrations", &key).await.status, 200);
    // Every route but the document refuses a call without a key, before anything else.
    for (method, path) in patchbay::http::api::routes() {
        let path = concrete(path);
        let answer = api.send(method.clone(), &path, None, None).await;
        if path.ends_with("openapi.json") {
            assert_eq!(answer.status, 200);
            continue;
        }
        assert_eq!(answer.status, 401, "{method} {path}");
        assert_eq!(answer.body["error"], "unauthorized");
        assert_eq!(
            answer.headers["www-authenticate"], "Bearer realm=\"patchbay\"",
            "{method} {path}"
        );
    }
    let unknown = format!("pb_{}", "A".repeat(43));
    for header in [
        "Basic cmV0b29sOng=".to_string(),
        "Bearer".to_string(),
        "Bearer pb_short".to_string(),
        format!("Bearer {unknown}"),
        format!("Bearer {key}x"),
    ] {
        let answer = api
            .client
            .get(format!("{}/api/v1/integrations", api.base))
            .header("authorization", &header)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{header}");
        assert!(
            answer.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{header}"
        );
        let body: Value = answer.json().await.unwrap();
        let presented = header.split(' ').nth(1).unwrap_or("pb_...");
        assert!(
            presented == "pb_..." || !body.to_string().contains(presented),
            "the key is not echoed: {body}"
        );
    }
    // Rotation without a gap: a second key works beside the first; then the first is revoked.
    let second = self::key(&bot, "retool-2", "status.view").await;
    assert_eq!(api.get("/api/v1/integrations", &second).await.status, 200);
    bot.plane().revoke_api_key("retool").await.unwrap();
    let revoked = api.get("/api/v1/integrations", &key).await;
    assert_eq!(revoked.status, 401);
    assert!(
        revoked.body["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(api.get("/api/v1/integrations", &second).await.status, 200);
    // Last used is kept, once a minute at most.
    let keys = bot.plane().api_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].last_used.is_some());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_holds_only_its_permissions() {
    let bot = start(ONE_INTEGRATION).await;
    let api = Api::of(&bot);
    let viewer = key(&bot, "viewer", "status.view").await;
    let silence = json!({"target": "api", "duration": "1h", "reason": "deploy"});
    for (method, path, body, permission) in [
        (
            Method::POST,
            "/api/v1/silences",
            Some(silence.clone()),
            "alerts.manage",
        ),
        (Method::DELETE, "/api/v1/silences/1", None, "alerts.manage"),
        (
            Method::POST,
            "/api/v1/incidents/1/ack",
            None,
            "alerts.manage",
        ),
        (
            Method::POST,
            "/api/v1/integrations/api/recheck",
            None,
            "status.recheck",
        ),
        (
            Method::POST,
            "/api/v1/sync/jobs/board/runs",
            None,
            "sync.run",
        ),
        (Method::GET, "/api/v1/audit", None, "audit.view"),
    ] {
        let answer = api.send(method.clone(), path, Some(&viewer), body).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
        assert_eq!(answer.body["permission"], permission);
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .contains(permission),
            "{}",
            answer.body
        );
    }
    // A key without status.view cannot read.
    let auditor = key(&bot, "auditor", "audit.view").await;
    let denied = api.get("/api/v1/integrations", &auditor).await;
    assert_eq!(
        (denied.status, denied.body["permission"].clone()),
        (403, json!("status.view"))
    );
    // The denials are audited as the key's, denied, with the permission asked for.
    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            actor_id: Some("viewer".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 6);
    assert!(entries.iter().all(|e| e.outcome == Outcome::Denied));
    assert!(entries.iter().all(|e| e.actor
        == Actor::ApiKey {
            key: "viewer".into()
        }));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_never_overlap_or_skip_while_rows_arrive() {
    let bot = start("").await;
    let api = Api::of(&bot);
    let key = key(&bot, "retool", "status.view,audit.view").await;
    // Audit pages: ten probes, read three at a time, with new entries between the reads.
    for i in 0..10 {
        api.get(&format!("/api/v1/integrations/probe-{i}"), &key)
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for round in 0.. {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?limit=3&cursor={c}"),
            None => "/api/v1/audit?limit=3".to_string(),
        };
        let page = api.get(&path, &key).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for entry in page.body["entries"].as_array().unwrap() {
            if entry["command"] == "status" {
                seen.push(
                    entry["options"]["integration"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
        // New entries arrive between the pages.
        api.get(&format!("/api/v1/integrations/late-{round}"), &key)
            .await;
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..10).rev().map(|i| format!("probe-{i}")).collect();
    assert_eq!(seen, expected);

    // Incident pages: five incidents in the store, two per page, three more opened meanwhile.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", bot.db_path().display()))
        .await
        .unwrap();
    let insert = async |name: &str| {
        sqlx::query(
            "INSERT INTO incidents (integration, severity, state, reason, opened_at_ms) \
             VALUES ($1, 'critical', 'DOWN', 'test', 0)",
        )
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    };
    for i in 0..5 {
        insert(&format!("old-{i}")).await;
    }
    let mut names = Vec::new();
    let mut path = "/api/v1/incidents?state=all&limit=2".to_string();
    for round in 0.. {
        let page = api.get(&path, &key).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for incident in page.body["incidents"].as_array().unwrap() {
            names.push(incident["integration"].as_str().unwrap().to_string());
        }
        if round < 3 {
            insert(&format!("new-{round}")).await;
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => path = format!("/api/v1/incidents?state=all&limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(names, ["old-4", "old-3", "old-2", "old-1", "old-0"]);
    pool.close().await;
    let bad = api.get("/api/v1/audit?cursor=zz", &key).await;
    assert_eq!(
        (bad.status, bad.body["field"].clone()),
        (422, json!("cursor"))
    );
    let bad = api.get("/api/v1/audit?limit=0", &key).await;
    assert_eq!(
        (bad.status, bad.body["field"].clone()),
        (422, json!("limit"))
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_is_rate_limited_with_retry_after() {
    let bot = start("[api]\nrate = \"1/m\"\nburst = 2\n").await;
    let api = Api::of(&bot);
    let first = key(&bot, "first", "status.view").await;
    let second = key(&bot, "second", "status.view").await;
    for _ in 0..2 {
        assert_eq!(api.get("/api/v1/integrations", &first).await.status, 200);
    }
    let limited = api.get("/api/v1/integrations", &first).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.body["error"], "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(limited.body["retry_after_seconds"], retry);
    // Another key has its own budget.
    assert_eq!(api.get("/api/v1/integrations", &second).await.status, 200);
    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            actor_id: Some("first".into()),
            limit: 5,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries[0].outcome, Outcome::RateLimited);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_limited_parsed_and_validated_naming_the_field() {
    let bot = start(&format!("[api]\nbody_limit = 1024\n{ONE_INTEGRATION}")).await;
    let api = Api::of(&bot);
    let key = key(&bot, "retool", "alerts.manage,sync.run").await;
    let raw = |body: String| {
        api.client
            .post(format!("{}/api/v1/silences", api.base))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let big =
        raw(json!({"target": "api", "duration": "1h", "reason": "x".repeat(2000)}).to_string())
            .await
            .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.json::<Value>().await.unwrap()["error"],
        "payload_too_large"
    );
    let malformed = raw("{\"target\": \"api\",".into()).await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.json::<Value>().await.unwrap()["error"],
        "bad_request"
    );
    let form = api
        .client
        .post(format!("{}/api/v1/silences", api.base))
        .bearer_auth(&key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("target=api")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    for (body, field) in [
        (json!({"target": "api", "duration": "1h"}), "reason"),
        (
            json!({"target": "api", "duration": "soon", "reason": "x"}),
            "duration",
        ),
        (
            json!({"target": "api", "duration": "90d", "reason": "x"}),
            "duration",
        ),
        (
            json!({"target": "apj", "duration": "1h", "reason": "x"}),
            "target",
        ),
        (
            json!({"target": "tag:nope", "duration": "1h", "reason": "x"}),
            "target",
        ),
        (
            json!({"target": 5, "duration": "1h", "reason": "x"}),
            "target",
        ),
        (
            json!({"target": "api", "duration": "1h", "reason": "x", "reasn": "y"}),
            "reasn",
        ),
        (json!(["api"]), "body"),
    ] {
        let answer = api.post("/api/v1/silences", &key, Some(body.clone())).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.body);
        assert_eq!(answer.body["field"], field, "{body}: {}", answer.body);
        assert_eq!(answer.body["error"], "invalid");
    }
    let suggestion = api
        .post(
            "/api/v1/silences",
            &key,
            Some(json!({"target": "apj", "duration": "1h", "reason": "x"})),
        )
        .await;
    assert_eq!(suggestion.body["suggestions"], json!(["api"]));
    let flag = api
        .post(
            "/api/v1/sync/jobs/board/runs",
            &key,
            Some(json!({"dry_run": "yes"})),
        )
        .await;
    assert_eq!(
        (flag.status, flag.body["field"].clone()),
        (422, json!("dry_run"))
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_only_those() {
    let bot = start("").await;
    let api = Api::of(&bot);
    let document = api
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(document.status, 200);
    let document = document.body;
    assert_eq!(document, patchbay::http::api::openapi_document());
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearerAuth"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "pb_ key",
               "description": document["components"]["securitySchemes"]["bearerAuth"]["description"]})
    );
    assert_eq!(document["security"], json!([{"bearerAuth": []}]));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.push((method.to_uppercase(), path.clone()));
            if !path.ends_with("openapi.json") {
                assert!(
                    operation["x-permission"]
                        .as_str()
                        .is_some_and(|p| p.contains('.')),
                    "{method} {path} names no permission"
                );
                assert!(operation["responses"]["401"].is_object());
            }
            // Every $ref points at a schema the document has.
            for reference in operation.to_string().split("\"$ref\":\"").skip(1) {
                let name = reference
                    .split('"')
                    .next()
                    .unwrap()
                    .trim_start_matches("#/components/schemas/");
                assert!(
                    document["components"]["schemas"][name].is_object(),
                    "{method} {path}: no schema {name}"
                );
            }
        }
    }
    let mut routed: Vec<(String, String)> = patchbay::http::api::routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    // Each documented operation is served (a key is asked for; an unrouted one would be a
    // 404 or 405), and what is not routed is a JSON 404 or 405.
    for (method, path) in &documented {
        let path = concrete(path);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let answer = api.send(method.clone(), &path, None, None).await;
        assert!(
            [200, 401].contains(&answer.status),
            "{method} {path}: {}",
            answer.status
        );
    }
    let nowhere = api.send(Method::GET, "/api/v1/nowhere", None, None).await;
    assert_eq!(
        (nowhere.status, nowhere.body["error"].clone()),
        (404, json!("not_found"))
    );
    let wrong = api.send(Method::PUT, "/api/v1/silences", None, None).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.body["error"], "method_not_allowed");
    assert_eq!(wrong.headers["allow"], "GET,HEAD,POST");
    bot.stop().await;
}

fn sub(name: &str, options: Value) -> Value {
    json!([{ "name": name, "type": 1, "options": options }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_discord_leave_the_same_audit_entry() {
    let upstream = Upstream::start().await;
    let bot = stack::start(
        "",
        &stack::integration("payments-api", &upstream, "tags = [\"payments\"]"),
    )
    .await;
    let api = Api::of(&bot);
    let key = key(&bot, "retool", "alerts.manage").await;
    let options = [
        ("target", "tag:payments"),
        ("duration", "2h"),
        ("reason", "provider maintenance"),
    ];
    let id = bot
        .fake
        .command(
            "alerts",
            sub(
                "silence",
                Value::Array(
                    options
                        .iter()
                        .map(|(name, value)| json!({"name": name, "type": 3, "value": value}))
                        .collect(),
                ),
            ),
            FakeMember::OPS,
        )
        .await;
    bot.fake.callback_for(id).await;
    let made = api
        .post(
            "/api/v1/silences",
            &key,
            Some(Value::Object(
                options
                    .iter()
                    .map(|(name, value)| ((*name).to_string(), json!(value)))
                    .collect(),
            )),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            command: Some("alerts silence".into()),
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let (from_api, from_discord) = (&entries[0], &entries[1]);
    assert_eq!(from_api.actor.reference(), "apikey:retool");
    assert!(matches!(from_discord.actor, Actor::Discord { .. }));
    assert_eq!(from_api.command, from_discord.command);
    assert_eq!(from_api.options, from_discord.options);
    assert_eq!(from_api.permission, from_discord.permission);
    assert_eq!(
        (from_api.outcome, from_discord.outcome),
        (Outcome::Ok, Outcome::Ok)
    );
    assert_eq!(from_api.allowed.as_ref().unwrap().code(), "scope");
    assert!(
        from_discord
            .allowed
            .as_ref()
            .unwrap()
            .code()
            .starts_with("role:")
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_run_starts_in_the_background_and_a_second_is_refused() {
    const TOKEN: &str = "secret_api_token";
    let notion = FakeNotion::start(TOKEN).await;
    let (database, data_source) = notion.add_database_with_title_property("Board", "Name");
    let text = format!(
        "[[integration]]\nname = \"svc\"\nurl = \"http://127.0.0.1:9/\"\nenabled = false\n\
         [[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{database}\"\n"
    );
    let bot = stack::start_text(
        FakeDiscord::start().await,
        tempfile::tempdir().unwrap(),
        &text,
        false,
        vec![
            ("NOTION_TOKEN", TOKEN.to_string()),
            ("NOTION_API_BASE", notion.api_base()),
        ],
    )
    .await;
    let api = Api::of(&bot);
    let key = key(&bot, "retool", "status.view,sync.run").await;
    // The run waits on Notion long enough for a second one to be asked for.
    notion.inject("/v1/databases/", Fault::Delay(Duration::from_secs(2)), 1);
    let started = api
        .post(
            "/api/v1/sync/jobs/board/runs",
            &key,
            Some(json!({"dry_run": false})),
        )
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(started.body["outcome"], "running");
    assert_eq!(started.body["started_by"], "apikey:retool");
    let location = started.headers["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/api/v1/sync/runs/{}", started.body["id"])
    );
    let second = api.post("/api/v1/sync/jobs/board/runs", &key, None).await;
    assert_eq!(second.status, 409, "{}", second.body);
    assert_eq!(second.body["error"], "already_running");
    assert_eq!(second.body["started_by"], "apikey:retool");
    assert!(second.body["message"].as_str().unwrap().contains("retool"));
    // The run goes on after the answer; its page follows it to the end.
    let done = until(
        "the run finished",
        || api.get(&location, &key),
        |a| a.body["outcome"] != "running",
    )
    .await;
    assert_eq!(done.body["outcome"], "ok", "{}", done.body);
    assert_eq!(done.body["counts"]["created"], 1);
    assert_eq!(notion.pages(&data_source).len(), 1);
    let jobs = api.get("/api/v1/sync/jobs", &key).await;
    assert_eq!(jobs.body[0]["last_run"]["id"], started.body["id"]);
    // One audit entry for the run (ok, written when it ended) and one for the refusal.
    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            command: Some("sync run".into()),
            limit: 5,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let outcomes: Vec<Outcome> = entries.iter().map(|e| e.outcome).collect();
    assert_eq!(outcomes, [Outcome::Ok, Outcome::Failed]);
    assert_eq!(
        entries[0].options,
        json!({"job": "board", "dry_run": false})
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apikey_command_line_creates_lists_and_revokes() {
    let bot = start("").await;
    let api = Api::of(&bot);
    // The command line works on the running patchbay's database.
    let config = bot.dir.path().join("cli.toml");
    std::fs::write(&config, stack::config_text(bot.dir.path(), "")).unwrap();
    let run = |args: &[&str]| {
        let output = process::command(bot.dir.path(), &config)
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, out, err) = run(&[
        "apikey",
        "create",
        "--name",
        "retool",
        "--permissions",
        "status.view,sync.run",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let key = out.lines().last().unwrap().to_string();
    assert!(key.starts_with("pb_") && key.len() >= 35, "{out}");
    assert!(!key.contains(' '), "the key is alone on its line: {out}");
    assert_eq!(api.get("/api/v1/integrations", &key).await.status, 200);

    // Refused: a name in use, a name off the pattern, an unknown permission.
    for (name, permissions, said) in [
        ("retool", "status.view", "exists already"),
        ("Retool", "status.view", "not valid"),
        ("x", "status.vew", "known: status.view, status.recheck"),
    ] {
        let (code, _, err) = run(&[
            "apikey",
            "create",
            "--name",
            name,
            "--permissions",
            permissions,
        ]);
        assert_eq!(code, Some(1), "{name} {permissions}");
        assert!(err.contains(said), "{err}");
    }

    let (code, out, _) = run(&["apikey", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("retool") && out.contains("status.view,sync.run"),
        "{out}"
    );
    assert!(!out.contains(&key[3..]), "list never shows the key: {out}");
    let (_, json_out, _) = run(&["apikey", "list", "--json"]);
    let listed: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(listed[0]["name"], "retool");
    assert_eq!(listed[0]["permissions"], json!(["status.view", "sync.run"]));
    assert!(listed[0]["last_used"].is_string(), "{listed}");
    assert!(!json_out.contains(&key[3..]));

    let (code, out, _) = run(&["apikey", "revoke", "retool"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Revoked"), "{out}");
    assert_eq!(api.get("/api/v1/integrations", &key).await.status, 401);
    let (code, _, err) = run(&["apikey", "revoke", "retool"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no API key named"), "{err}");
    // Each was audited as the OS user at the command line.
    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            command: Some("apikey create".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries.iter().all(|e| e.actor.kind() == "cli"));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_is_served_as_a_png_for_retools_image_component() {
    let bot = start(ONE_INTEGRATION).await;
    let api = Api::of(&bot);
    let viewer = key(&bot, "viewer", "status.view").await;
    let response = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/integrations/api/chart.png?period=7d",
            bot.running().address()
        ))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let png = response.bytes().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // 960 x 480, from the IHDR chunk.
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 960);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 480);
    let wrong = api
        .get("/api/v1/integrations/api/chart.png?period=1y", &viewer)
        .await;
    assert_eq!(
        (wrong.status, wrong.body["field"].as_str()),
        (422, Some("period")),
        "{}",
        wrong.body
    );
    let unknown = api
        .get("/api/v1/integrations/nope/chart.png", &viewer)
        .await;
    assert_eq!(unknown.status, 404);
    bot.stop().await;
}

/// The full list's body is shared by callers for up to a second, but a state change or a new
/// incident shows in the very next answer: the shared body is rendered again when either
/// changed since it was rendered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_list_never_hides_a_state_change() {
    let upstream = Upstream::start().await;
    let bot = start(&format!(
        "[[integration]]\nname = \"billing\"\nurl = \"{}\"\ninterval = \"1h\"\ntimeout = \"1s\"\n\
         failure_threshold = 1\nsuccess_threshold = 1\n",
        upstream.url("/health")
    ))
    .await;
    let api = Api::of(&bot);
    let key = key(&bot, "retool", "status.view,status.recheck").await;
    // Checked hourly: the first check is a re-check, so nothing else changes the state.
    let first = api
        .post("/api/v1/integrations/billing/recheck", &key, None)
        .await;
    assert_eq!(first.body["state"], "UP", "{}", first.body);

    for (state, set) in [
        ("DOWN", Upstream::break_it as fn(&Upstream)),
        ("UP", Upstream::heal),
    ] {
        // Read the list, so a body rendered before the change is the one kept.
        let before = api.get("/api/v1/integrations", &key).await;
        assert_ne!(before.body[0]["state"], state, "{}", before.body);
        set(&upstream);
        let rechecked = api
            .post("/api/v1/integrations/billing/recheck", &key, None)
            .await;
        assert_eq!(rechecked.body["state"], state, "{}", rechecked.body);
        // No waiting: the next answer already shows it.
        let after = api.get("/api/v1/integrations", &key).await;
        assert_eq!(after.status, 200);
        assert_eq!(after.body[0]["state"], state, "{}", after.body);
        assert_ne!(
            after.body[0]["since"], before.body[0]["since"],
            "{}",
            after.body
        );
        if state == "DOWN" {
            // The incident opens after the transition; once it is open, the list shows it.
            let opened = until(
                "the incident in the list",
                || api.get("/api/v1/integrations", &key),
                |a| a.body[0]["open_incident_since"].is_string(),
            )
            .await;
            assert_eq!(opened.body[0]["state"], "DOWN");
        }
    }
    bot.stop().await;
}
