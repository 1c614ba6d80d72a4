//! Actions through the REST API, against the fake Retool and (for approvals) the fake Discord:
//! a run answers 202 and is followed to its outcome; an action with approval waits for a
//! member's Approve in `[bot].approval_channel`; `roles` admits a key only when it lists
//! `apikey:<name>`; parameters are refused naming the field; a run going on is a 409 naming
//! who runs it; and the API's ask is audited like Discord's.

mod common;

use std::time::Duration;

use common::fake_discord::{self, FakeDiscord, FakeMember};
use common::fake_retool::{Answer, FakeRetool};
use common::stack::{self, Patchbay};
use patchbay::audit::AuditQuery;
use patchbay::model::Actor;
use serde_json::{Value, json};

const KEY: &str = "retool_wk_api_key";

async fn bot(retool: &FakeRetool, actions: &str) -> Patchbay {
    let text = format!(
        "[bot]\nguilds = [\"{guild}\"]\ncommand_rate = \"1000/m\"\napproval_channel = \"{approvals}\"\n\
         [[grant]]\nrole = \"{ops}\"\npermissions = [\"action.run\", \"action.approve\"]\n\
         [api]\nrate = \"1000/s\"\n{actions}",
        guild = fake_discord::GUILD_ID,
        approvals = fake_discord::ALERT_CHANNEL_ID,
        ops = fake_discord::OPS_ROLE,
    )
    .replace("RETOOL_BASE", &retool.base_url());
    stack::start_text(
        FakeDiscord::start().await,
        tempfile::tempdir().unwrap(),
        &text,
        true,
        vec![("RETOOL_KEY", KEY.to_string())],
    )
    .await
}

fn action(name: &str, extra: &str) -> String {
    format!(
        "[[action]]\nname = \"{name}\"\nkind = \"retool-workflow\"\ndescription = \"Does {name}\"\n\
         url = \"RETOOL_BASE/v1/workflows/{name}/startTrigger\"\napi_key = \"env:RETOOL_KEY\"\n{extra}\n"
    )
}

async fn key(bot: &Patchbay, name: &str, permissions: &str) -> String {
    bot.plane()
        .create_api_key(name, permissions, &Actor::cli())
        .await
        .unwrap()
        .secret
        .expose()
        .to_string()
}

/// Calls the API: status and JSON body.
async fn call(
    bot: &Patchbay,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{}{path}", bot.running().address()))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        location,
    )
}

/// Follows a run until its state is `state` (or fails after 20 s).
async fn follow(bot: &Patchbay, location: &str, key: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body, _) = call(bot, reqwest::Method::GET, location, key, None).await;
        assert_eq!(status, 200, "{body}");
        if body["state"] == state {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {state}: {body}"
        );
        // Polling the API under test: what it answers is the condition awaited.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_the_api_answers_202_and_is_followed_to_its_outcome() {
    let retool = FakeRetool::start().await;
    retool.add_workflow(
        "restart",
        KEY,
        Answer::Sync {
            status: 200,
            body: json!({"ok": true}),
        },
    );
    let params = r#"params = [{ name = "service", type = "choice", choices = ["api", "worker"], required = true }, { name = "count", type = "integer", min = 1, max = 3 }]"#;
    let bot = bot(&retool, &action("restart", params)).await;
    let dash = key(&bot, "dash", "status.view,action.run").await;
    let viewer = key(&bot, "viewer", "status.view").await;

    let (status, body, location) = call(
        &bot,
        reqwest::Method::POST,
        "/api/v1/actions/restart/runs",
        &dash,
        Some(json!({"params": {"service": "api", "count": 2}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let location = location.expect("a Location");
    assert_eq!(
        location,
        format!(
            "/api/v1/actions/runs/{}",
            body["request_id"].as_str().unwrap()
        )
    );
    let done = follow(&bot, &location, &viewer, "succeeded").await;
    assert_eq!(done["response"], json!({"ok": true}));
    assert_eq!(done["requested_by"], "apikey:dash");
    let sent = retool.requests("restart");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body["params"],
        json!({"service": "api", "count": 2})
    );
    assert_eq!(
        sent[0].body["requested_by"],
        json!({"id": "apikey:dash", "name": "dash"})
    );
    assert_eq!(sent[0].body["channel_id"], Value::Null);

    // Refusals name what is wrong.
    let post = |body: Value| {
        call(
            &bot,
            reqwest::Method::POST,
            "/api/v1/actions/restart/runs",
            &dash,
            Some(body),
        )
    };
    let (status, body, _) = post(json!({"params": {"service": "db"}})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("service")),
        "{body}"
    );
    let (status, body, _) = post(json!({"params": {"sevrice": "api"}})).await;
    assert_eq!(status, 422);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("did you mean service?"),
        "{body}"
    );
    let (status, body, _) = post(json!({"params": ["api"]})).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("params")));
    let (status, body, _) = call(
        &bot,
        reqwest::Method::POST,
        "/api/v1/actions/nope/runs",
        &dash,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body, _) = call(
        &bot,
        reqwest::Method::POST,
        "/api/v1/actions/restart/runs",
        &viewer,
        Some(json!({"params": {"service": "api"}})),
    )
    .await;
    assert_eq!(
        (status, body["permission"].as_str()),
        (403, Some("action.run"))
    );
    let (status, list, _) =
        call(&bot, reqwest::Method::GET, "/api/v1/actions", &viewer, None).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["name"], "restart");
    assert_eq!(list[0]["may_run"], false, "the viewer key lacks action.run");
    assert_eq!(list[0]["last_run"]["state"], "succeeded");

    // The API's ask is audited as Discord's is: the same command and permission, by the key.
    let entries = bot
        .store()
        .audit_page(&AuditQuery {
            command: Some("action run".into()),
            limit: 50,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .entries;
    let asked = entries
        .iter()
        .find(|e| e.outcome == patchbay::audit::Outcome::Ok)
        .unwrap();
    assert_eq!(asked.actor, Actor::ApiKey { key: "dash".into() });
    assert_eq!(
        asked.permission,
        Some(patchbay::access::Permission::ActionRun)
    );
    assert_eq!(asked.options["request"], done["request_id"]);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_run_needing_approval_waits_for_a_member_in_the_approval_channel() {
    let retool = FakeRetool::start().await;
    retool.add_workflow("refund", KEY, Answer::Async);
    let bot = bot(&retool, &action("refund", "approval = true")).await;
    let dash = key(&bot, "dash", "status.view,action.run").await;
    let (status, body, location) = call(
        &bot,
        reqwest::Method::POST,
        "/api/v1/actions/refund/runs",
        &dash,
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["state"], "awaiting_approval",
        "no confirmation through the API"
    );
    let fake = &bot.fake;
    let path = format!(
        "/api/v10/channels/{}/messages",
        fake_discord::ALERT_CHANNEL_ID
    );
    fake.wait_for_attempts("POST", &path, 1).await;
    let posted = fake
        .channel_messages(fake_discord::ALERT_CHANNEL_ID)
        .pop()
        .unwrap();
    let approve = stack::button_id(&posted, 0);
    let pressed = fake.button(&approve, posted, FakeMember::OPS).await;
    fake.callback_for(pressed).await;
    let done = follow(&bot, &location.unwrap(), &dash, "started").await;
    assert_eq!(
        done["approved_by"],
        format!("discord:{}", fake_discord::OPS_USER_ID)
    );
    assert!(done["retool_run_id"].is_string());
    assert_eq!(retool.requests("refund").len(), 1);
    bot.stop().await;
}

/// Without `[bot].approval_channel`, an API request for an action that needs an approval
/// would wait unseen until it expired: it is refused with what to set, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_run_needing_approval_without_an_approval_channel_is_refused_with_the_fix() {
    let retool = FakeRetool::start().await;
    retool.add_workflow("refund", KEY, Answer::Async);
    let bot = stack::start_text(
        FakeDiscord::start().await,
        tempfile::tempdir().unwrap(),
        &format!(
            "[api]\nrate = \"1000/s\"\n{}",
            action("refund", "approval = true").replace("RETOOL_BASE", &retool.base_url())
        ),
        false,
        vec![("RETOOL_KEY", KEY.to_string())],
    )
    .await;
    let dash = key(&bot, "dash", "status.view,action.run").await;
    let (status, body, location) = call(
        &bot,
        reqwest::Method::POST,
        "/api/v1/actions/refund/runs",
        &dash,
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("set [bot].approval_channel"),
        "{body}"
    );
    assert!(location.is_none());
    let (_, listed, _) = call(&bot, reqwest::Method::GET, "/api/v1/actions", &dash, None).await;
    let refund = listed
        .as_array()
        .and_then(|all| all.iter().find(|a| a["name"] == "refund"))
        .unwrap_or_else(|| panic!("refund listed: {listed}"));
    assert!(refund["last_run"].is_null(), "nothing was stored: {refund}");
    assert!(retool.requests("refund").is_empty());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_admit_a_key_only_by_name_and_a_run_going_on_is_a_409() {
    let retool = FakeRetool::start().await;
    retool.add_workflow(
        "deploy",
        KEY,
        Answer::Hold {
            then: Box::new(Answer::Async),
        },
    );
    let roles = format!(
        "roles = [\"{}\", \"apikey:deployer\"]",
        fake_discord::OPS_ROLE
    );
    let bot = bot(&retool, &action("deploy", &roles)).await;
    let other = key(&bot, "other", "action.run").await;
    let deployer = key(&bot, "deployer", "action.run").await;
    let (status, body, _) = call(
        &bot,
        reqwest::Method::POST,
        "/api/v1/actions/deploy/runs",
        &other,
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("apikey:other"),
        "{body}"
    );
    let (status, _, _) = call(
        &bot,
        reqwest::Method::POST,
        "/api/v1/actions/deploy/runs",
        &deployer,
        None,
    )
    .await;
    assert_eq!(status, 202);
    retool.wait_for_requests("deploy", 1).await;
    let (status, body, _) = call(
        &bot,
        reqwest::Method::POST,
        "/api/v1/actions/deploy/runs",
        &deployer,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("already_running")),
        "{body}"
    );
    assert_eq!(body["started_by"], "apikey:deployer");
    retool.release("deploy");
    bot.stop().await;
}
