//! `/action` through the running bot, against the fake Discord and the fake Retool: the run
//! with args and with the parameters form, exact validation errors, confirm / cancel / expiry,
//! two-person approval (approve, self-approval refused, reject, expiry), the cooldown, single
//! flight, denial without `action.run` or the action's roles, a large answer attached as a
//! file, Retool's errors in words, and an audit entry per step carrying the request id.

mod common;

use common::fake_discord::{self, FakeDiscord, FakeMember};
use common::fake_retool::{Answer, FakeRetool};
use common::stack::{self, Patchbay};
use patchbay::audit::{AuditEntry, AuditQuery, Outcome};
use serde_json::{Value, json};

const KEY: &str = "retool_wk_test_key";

/// The bot with `[[action]]` tables `actions` (their `url`s point at `retool`), `action.run`
/// granted to the ops role, and short confirmation and approval windows.
async fn bot(retool: &FakeRetool, actions: &str) -> Patchbay {
    let text = format!(
        "[bot]\nguilds = [\"{guild}\"]\ncommand_rate = \"1000/m\"\n\
         action_confirm_timeout = \"2s\"\naction_approval_timeout = \"3s\"\n\
         [[grant]]\nrole = \"{ops}\"\npermissions = [\"action.run\", \"action.approve\"]\n\
         {actions}",
        guild = fake_discord::GUILD_ID,
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

/// An `[[action]]` named `name` on workflow `name`, with `extra` lines.
fn action(name: &str, extra: &str) -> String {
    format!(
        "[[action]]\nname = \"{name}\"\nkind = \"retool-workflow\"\ndescription = \"Does {name}\"\n\
         url = \"RETOOL_BASE/v1/workflows/{name}/startTrigger\"\napi_key = \"env:RETOOL_KEY\"\n{extra}\n"
    )
}

const PARAMS: &str = r#"params = [
  { name = "service", type = "choice", choices = ["api", "worker"], required = true },
  { name = "reason", type = "string", max_len = 20 },
  { name = "count", type = "integer", min = 1, max = 10 },
]"#;

fn run_options(name: &str, args: Option<&str>) -> Value {
    let mut options = vec![json!({ "type": 3, "name": "name", "value": name })];
    if let Some(args) = args {
        options.push(json!({ "type": 3, "name": "args", "value": args }));
    }
    json!([{ "type": 1, "name": "run", "options": options }])
}

/// The text of a message: its content and its embeds' descriptions and fields.
fn text_of(message: &Value) -> String {
    let mut text = message["content"].as_str().unwrap_or_default().to_string();
    for embed in message["embeds"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(embed["title"].as_str().unwrap_or_default());
        text.push('\n');
        text.push_str(embed["description"].as_str().unwrap_or_default());
        for field in embed["fields"].as_array().into_iter().flatten() {
            text.push_str(&format!(
                "\n{}: {}",
                field["name"].as_str().unwrap_or_default(),
                field["value"].as_str().unwrap_or_default()
            ));
        }
    }
    text
}

/// The callback's message data (type 4 or 7).
fn callback_text(callback: &Value) -> String {
    text_of(&callback["data"])
}

async fn audit(bot: &Patchbay, command: &str) -> Vec<AuditEntry> {
    bot.store()
        .audit_page(&AuditQuery {
            command: Some(command.into()),
            limit: 50,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .entries
}

fn option<'a>(entry: &'a AuditEntry, name: &str) -> Option<&'a str> {
    entry.options.get(name).and_then(Value::as_str)
}

/// Waits for the `n`th approval message posted in the channel and returns it.
async fn approval_post(fake: &FakeDiscord, n: usize) -> Value {
    let path = format!("/api/v10/channels/{}/messages", fake_discord::CHANNEL_ID);
    fake.wait_for_attempts("POST", &path, n).await;
    fake.channel_messages(fake_discord::CHANNEL_ID)
        .into_iter()
        .filter(|m| text_of(m).contains("Approval needed"))
        .nth(n - 1)
        .expect("the approval message was posted")
}

/// Waits until the original response of interaction `id` satisfies `done`.
async fn wait_original(
    fake: &FakeDiscord,
    id: u64,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Value {
    let original = fake.original_message(id).await;
    let message = original["id"].as_str().unwrap().parse::<u64>().unwrap();
    let history = fake
        .wait_for_version(message, what, |m| done(&text_of(m)))
        .await;
    history.last().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_args_posts_to_the_workflow_and_shows_its_answer() {
    let retool = FakeRetool::start().await;
    retool.add_workflow(
        "restart",
        KEY,
        Answer::Sync {
            status: 200,
            body: json!({"restarted": "api", "took_ms": 812}),
        },
    );
    let bot = bot(
        &retool,
        &action("restart", &format!("confirm = false\n{PARAMS}")),
    )
    .await;
    let fake = &bot.fake;
    let id = fake
        .command(
            "action",
            run_options(
                "restart",
                Some(r#"service=api reason="deploy stuck" count=2"#),
            ),
            FakeMember::OPS,
        )
        .await;
    assert_eq!(fake.callback_for(id).await["type"], 5, "deferred first");
    let shown = wait_original(fake, id, "the outcome", |t| t.contains("✅")).await;
    let text = text_of(&shown);
    assert!(text.contains("the workflow answered HTTP 200"), "{text}");
    assert!(
        text.contains(r#"{"restarted":"api","took_ms":812}"#),
        "{text}"
    );

    let requests = retool.requests("restart");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.header("x-workflow-api-key"), Some(KEY));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.body["params"],
        json!({"service": "api", "reason": "deploy stuck", "count": 2})
    );
    assert_eq!(
        request.body["requested_by"]["id"],
        json!(fake_discord::OPS_USER_ID.to_string())
    );
    assert_eq!(request.body["approved_by"], Value::Null);
    assert_eq!(
        request.body["guild_id"],
        json!(fake_discord::GUILD_ID.to_string())
    );
    assert_eq!(
        request.body["channel_id"],
        json!(fake_discord::CHANNEL_ID.to_string())
    );
    let request_id = request.body["request_id"].as_str().unwrap().to_string();
    assert!(request_id.starts_with("act-"), "{request_id}");
    assert!(retool.violations().is_empty(), "{:?}", retool.violations());

    // The chain in the audit log: the ask, then the call, both naming the request.
    let asked = audit(&bot, "action run").await;
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].outcome, Outcome::Ok);
    assert_eq!(option(&asked[0], "request"), Some(request_id.as_str()));
    let executed = audit(&bot, "action execute").await;
    assert_eq!(executed.len(), 1);
    assert_eq!(executed[0].outcome, Outcome::Ok);
    assert_eq!(option(&executed[0], "request"), Some(request_id.as_str()));
    // `/audit command:action` finds both.
    assert_eq!(audit(&bot, "action").await.len(), 2);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_args_the_parameters_come_from_a_form() {
    let retool = FakeRetool::start().await;
    retool.add_workflow("restart", KEY, Answer::Async);
    let bot = bot(
        &retool,
        &action("restart", &format!("confirm = false\n{PARAMS}")),
    )
    .await;
    let fake = &bot.fake;
    let id = fake
        .command("action", run_options("restart", None), FakeMember::OPS)
        .await;
    let modal = fake.callback_for(id).await;
    assert_eq!(modal["type"], 9, "a modal: {modal}");
    let rows = modal["data"]["components"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["components"][0]["custom_id"], "service");
    assert_eq!(rows[0]["components"][0]["required"], true);
    assert!(
        rows[0]["components"][0]["placeholder"]
            .as_str()
            .unwrap()
            .contains("one of: api, worker")
    );
    let custom_id = modal["data"]["custom_id"].as_str().unwrap();
    let submitted = fake
        .modal_submit(
            custom_id,
            &[("service", "worker"), ("reason", ""), ("count", "3")],
            FakeMember::OPS,
        )
        .await;
    let shown = wait_original(fake, submitted, "the outcome", |t| t.contains("🚀")).await;
    let text = text_of(&shown);
    let requests = retool.requests("restart");
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body["params"],
        json!({"service": "worker", "count": 3}),
        "an empty field is a parameter not given"
    );
    let run_id = requests[0]
        .run_id
        .clone()
        .expect("the fake answered a run id");
    assert!(text.contains(&run_id), "the run id is shown: {text}");
    // A form with a wrong value is refused like args.
    let id = fake
        .command("action", run_options("restart", None), FakeMember::OPS)
        .await;
    fake.callback_for(id).await;
    let submitted = fake
        .modal_submit(
            custom_id,
            &[("service", "db"), ("count", "3")],
            FakeMember::OPS,
        )
        .await;
    let refused = fake.callback_for(submitted).await;
    assert_eq!(refused["data"]["flags"], 64, "ephemeral");
    assert!(
        callback_text(&refused).contains("service must be one of api, worker; got \"db\""),
        "{refused}"
    );
    assert_eq!(retool.requests("restart").len(), 1);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_args_are_refused_exactly_and_nothing_runs() {
    let retool = FakeRetool::start().await;
    retool.add_workflow("restart", KEY, Answer::Async);
    let bot = bot(
        &retool,
        &action("restart", &format!("confirm = false\n{PARAMS}")),
    )
    .await;
    let fake = &bot.fake;
    for (args, expected) in [
        (
            "service=api sevrice=x",
            "restart has no parameter \"sevrice\" (did you mean service?)",
        ),
        ("reason=x", "service is required"),
        (
            "service=db",
            "service must be one of api, worker; got \"db\"",
        ),
        (
            "service=api count=two",
            "count must be a whole number; got \"two\"",
        ),
        ("service=api count=11", "count must be from 1 to 10; got 11"),
        (
            "service=api reason=\"this reason is far too long\"",
            "reason is 27 characters long; at most 20 are allowed",
        ),
        (
            "service=api reason=\"open",
            "the quote after reason= is never closed",
        ),
        ("service=api service=worker", "service is given twice"),
    ] {
        let id = fake
            .command(
                "action",
                run_options("restart", Some(args)),
                FakeMember::OPS,
            )
            .await;
        let callback = fake.callback_for(id).await;
        assert_eq!(callback["type"], 4, "{args}: {callback}");
        assert_eq!(callback["data"]["flags"], 64, "{args}: ephemeral");
        let text = callback_text(&callback);
        assert!(text.contains(expected), "{args}: {text}");
    }
    assert!(retool.requests("restart").is_empty());
    let asked = audit(&bot, "action run").await;
    assert_eq!(asked.len(), 8);
    assert!(asked.iter().all(|e| e.outcome == Outcome::Invalid));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_runs_cancel_stops_and_an_unanswered_confirmation_expires() {
    let retool = FakeRetool::start().await;
    retool.add_workflow(
        "rotate",
        KEY,
        Answer::Sync {
            status: 200,
            body: json!({"rotated": true}),
        },
    );
    let bot = bot(&retool, &action("rotate", "")).await;
    let fake = &bot.fake;

    // Confirm: only the invoker may press it; then it runs.
    let id = fake
        .command("action", run_options("rotate", None), FakeMember::OPS)
        .await;
    let prompt = fake.callback_for(id).await;
    assert_eq!(prompt["type"], 4);
    assert_eq!(prompt["data"]["flags"], 64, "the confirmation is ephemeral");
    assert!(callback_text(&prompt).contains("Run rotate?"), "{prompt}");
    let original = fake.original_message(id).await;
    let confirm = stack::button_id(&original, 0);
    let other = fake
        .button(&confirm, original.clone(), FakeMember::ADMIN)
        .await;
    let refused = fake.callback_for(other).await;
    assert!(
        callback_text(&refused).contains("only the member who asked"),
        "{refused}"
    );
    let pressed = fake
        .button(&confirm, original.clone(), FakeMember::OPS)
        .await;
    assert_eq!(
        fake.callback_for(pressed).await["type"],
        6,
        "a deferred update"
    );
    let done = wait_original(fake, id, "the outcome", |t| t.contains("✅")).await;
    assert!(text_of(&done).contains(r#"{"rotated":true}"#));
    assert_eq!(done["components"], json!([]), "the buttons are gone");
    assert_eq!(retool.requests("rotate").len(), 1);

    // Cancel: nothing runs.
    let id = fake
        .command("action", run_options("rotate", None), FakeMember::OPS)
        .await;
    fake.callback_for(id).await;
    let original = fake.original_message(id).await;
    let cancel_id = stack::button_id(&original, 1);
    let pressed = fake.button(&cancel_id, original, FakeMember::OPS).await;
    let cancelled = fake.callback_for(pressed).await;
    assert_eq!(cancelled["type"], 7, "{cancelled}");
    assert!(callback_text(&cancelled).contains("was cancelled; nothing ran"));

    // Expiry: after 2 s unanswered, the message says so and a late press is refused.
    let id = fake
        .command("action", run_options("rotate", None), FakeMember::OPS)
        .await;
    fake.callback_for(id).await;
    let original = fake.original_message(id).await;
    wait_original(fake, id, "the expiry", |t| t.contains("expired unanswered")).await;
    let confirm_late = stack::button_id(&original, 0);
    let late = fake.button(&confirm_late, original, FakeMember::OPS).await;
    assert!(callback_text(&fake.callback_for(late).await).contains("is expired already"));
    assert_eq!(
        retool.requests("rotate").len(),
        1,
        "neither cancel nor expiry ran it"
    );

    for (command, outcome) in [
        ("action confirm", Outcome::Ok),
        ("action cancel", Outcome::Ok),
        ("action expire", Outcome::Ok),
    ] {
        let entries = audit(&bot, command).await;
        assert!(
            entries
                .iter()
                .any(|e| e.outcome == outcome && option(e, "request").is_some()),
            "{command}: {entries:?}"
        );
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_by_another_member_runs_it_and_self_approval_is_refused() {
    let retool = FakeRetool::start().await;
    retool.add_workflow("refund", KEY, Answer::Async);
    let bot = bot(
        &retool,
        &action(
            "refund",
            "confirm = false\napproval = true\nparams = [{ name = \"order\", type = \"string\", required = true }]",
        ),
    )
    .await;
    let fake = &bot.fake;
    let id = fake
        .command(
            "action",
            run_options("refund", Some("order=A-17")),
            FakeMember::OPS,
        )
        .await;
    let told = fake.callback_for(id).await;
    assert!(
        callback_text(&told).contains("waits for an approval"),
        "{told}"
    );
    let posted = approval_post(fake, 1).await;
    let text = text_of(&posted);
    assert!(text.contains("Approval needed: refund"), "{text}");
    assert!(
        text.contains(&format!("<@{}>", fake_discord::OPS_USER_ID)),
        "{text}"
    );
    assert!(text.contains("`order` = \"A-17\""), "{text}");
    let approve = stack::button_id(&posted, 0);

    // The requester may not approve their own request.
    let own = fake.button(&approve, posted.clone(), FakeMember::OPS).await;
    assert!(callback_text(&fake.callback_for(own).await).contains("another member"));
    assert!(retool.requests("refund").is_empty());
    let refused = audit(&bot, "action approve").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].outcome, Outcome::Denied);

    // Another member approves: it runs, and the request shows who approved and the outcome.
    let approved = fake
        .button(&approve, posted.clone(), FakeMember::ADMIN)
        .await;
    assert!(callback_text(&fake.callback_for(approved).await).contains("You approved"));
    let message = stack::message_id(&posted);
    let edited = fake
        .wait_for_version(message, "the outcome on the request", |m| {
            text_of(m).contains("started in Retool")
        })
        .await;
    let last = edited.last().unwrap();
    assert!(text_of(last).contains(&format!("Approved by <@{}>", fake_discord::ADMIN_USER_ID)));
    assert_eq!(last["components"], json!([]));
    let requests = retool.requests("refund");
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].body["approved_by"]["id"],
        json!(fake_discord::ADMIN_USER_ID.to_string())
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_or_expired_approval_runs_nothing_and_says_so() {
    let retool = FakeRetool::start().await;
    retool.add_workflow("refund", KEY, Answer::Async);
    let bot = bot(
        &retool,
        &action("refund", "confirm = false\napproval = true"),
    )
    .await;
    let fake = &bot.fake;
    let id = fake
        .command("action", run_options("refund", None), FakeMember::OPS)
        .await;
    fake.callback_for(id).await;
    let posted = approval_post(fake, 1).await;
    let reject = stack::button_id(&posted, 1);
    let rejected = fake
        .button(&reject, posted.clone(), FakeMember::ADMIN)
        .await;
    assert!(callback_text(&fake.callback_for(rejected).await).contains("You rejected"));
    fake.wait_for_version(stack::message_id(&posted), "the rejection", |m| {
        text_of(m).contains("Rejected by")
    })
    .await;

    let id = fake
        .command("action", run_options("refund", None), FakeMember::OPS)
        .await;
    fake.callback_for(id).await;
    let second = approval_post(fake, 2).await;
    fake.wait_for_version(stack::message_id(&second), "the expiry", |m| {
        text_of(m).contains("Expired: nobody approved it in time")
    })
    .await;
    assert!(retool.requests("refund").is_empty());
    assert_eq!(audit(&bot, "action reject").await.len(), 1);
    assert_eq!(audit(&bot, "action expire").await.len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_and_cooldown_refuse_with_who_and_how_long() {
    let retool = FakeRetool::start().await;
    retool.add_workflow(
        "deploy",
        KEY,
        Answer::Hold {
            then: Box::new(Answer::Sync {
                status: 200,
                body: json!({"ok": true}),
            }),
        },
    );
    let bot = bot(
        &retool,
        &action("deploy", "confirm = false\ncooldown = \"1h\""),
    )
    .await;
    let fake = &bot.fake;
    let first = fake
        .command("action", run_options("deploy", None), FakeMember::OPS)
        .await;
    retool.wait_for_requests("deploy", 1).await;
    let second = fake
        .command("action", run_options("deploy", None), FakeMember::ADMIN)
        .await;
    let busy = callback_text(&fake.callback_for(second).await);
    assert!(busy.contains("`deploy` is already running"), "{busy}");
    assert!(
        busy.contains(&format!("<@{}>", fake_discord::OPS_USER_ID)),
        "{busy}"
    );
    retool.release("deploy");
    wait_original(fake, first, "the outcome", |t| t.contains("✅")).await;
    let third = fake
        .command("action", run_options("deploy", None), FakeMember::ADMIN)
        .await;
    let cooling = callback_text(&fake.callback_for(third).await);
    assert!(cooling.contains("`deploy` is cooling down"), "{cooling}");
    assert_eq!(retool.requests("deploy").len(), 1);
    let refused = audit(&bot, "action run").await;
    assert!(
        refused
            .iter()
            .any(|e| e.error_kind.as_deref() == Some("busy"))
    );
    assert!(
        refused
            .iter()
            .any(|e| e.error_kind.as_deref() == Some("cooldown"))
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_action_run_or_the_actions_roles_it_is_denied() {
    let retool = FakeRetool::start().await;
    retool.add_workflow("open", KEY, Answer::Async);
    retool.add_workflow("ops-only", KEY, Answer::Async);
    let roles = format!("confirm = false\nroles = [\"{}\"]", fake_discord::OPS_ROLE);
    let bot = bot(
        &retool,
        &format!(
            "{}{}",
            action("open", "confirm = false"),
            action("ops-only", &roles)
        ),
    )
    .await;
    let fake = &bot.fake;
    let id = fake
        .command("action", run_options("open", None), FakeMember::NOBODY)
        .await;
    assert!(callback_text(&fake.callback_for(id).await).contains("action.run"));
    // The administrator holds action.run, but not the role the action is limited to.
    let id = fake
        .command("action", run_options("ops-only", None), FakeMember::ADMIN)
        .await;
    let denied = callback_text(&fake.callback_for(id).await);
    assert!(
        denied.contains("ops-only is limited to members with one of the roles"),
        "{denied}"
    );
    // Autocomplete offers only what the member may run.
    let id = fake
        .autocomplete("action", run_options("", None), FakeMember::ADMIN)
        .await;
    let choices = fake.callback_for(id).await["data"]["choices"].clone();
    let values: Vec<&str> = choices
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["value"].as_str())
        .collect();
    assert_eq!(values, vec!["open"]);
    assert!(retool.requests("ops-only").is_empty());
    let denied = audit(&bot, "action run").await;
    assert_eq!(denied.len(), 2);
    assert!(denied.iter().all(|e| e.outcome == Outcome::Denied));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_answer_is_attached_and_errors_say_what_to_do() {
    let retool = FakeRetool::start().await;
    let rows: Vec<Value> = (0..200)
        .map(|i| json!({"order": format!("A-{i}"), "refunded": true}))
        .collect();
    retool.add_workflow(
        "report",
        KEY,
        Answer::Sync {
            status: 200,
            body: json!({ "rows": rows }),
        },
    );
    retool.add_workflow("broken", "another-key", Answer::Async);
    retool.add_workflow("flaky", KEY, Answer::ServerError);
    let bot = bot(
        &retool,
        &format!(
            "{}{}{}",
            action("report", "confirm = false"),
            action("broken", "confirm = false"),
            action("flaky", "confirm = false"),
        ),
    )
    .await;
    let fake = &bot.fake;
    let id = fake
        .command("action", run_options("report", None), FakeMember::OPS)
        .await;
    let shown = wait_original(fake, id, "the outcome", |t| t.contains("✅")).await;
    assert!(text_of(&shown).contains("whole answer attached"));
    let attachments = shown["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{shown}");
    let request = retool.requests("report")[0].body["request_id"].clone();
    assert_eq!(
        attachments[0]["filename"].as_str(),
        Some(format!("{}.json", request.as_str().unwrap()).as_str())
    );

    let id = fake
        .command("action", run_options("broken", None), FakeMember::OPS)
        .await;
    let failed = wait_original(fake, id, "the failure", |t| t.contains("❌")).await;
    let text = text_of(&failed);
    assert!(text.contains("check RETOOL_KEY holds the key"), "{text}");
    assert!(!text.contains(KEY), "the key is never shown");

    let id = fake
        .command("action", run_options("flaky", None), FakeMember::OPS)
        .await;
    let failed = wait_original(fake, id, "the failure", |t| t.contains("❌")).await;
    assert!(text_of(&failed).contains("may have run part-way"));
    assert_eq!(retool.requests("flaky").len(), 1, "a 5xx is never retried");
    let executed = audit(&bot, "action execute").await;
    assert!(
        executed
            .iter()
            .any(|e| e.error_kind.as_deref() == Some("retool_auth"))
    );
    assert!(
        executed
            .iter()
            .any(|e| e.error_kind.as_deref() == Some("retool_server"))
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_within_the_timeout_and_a_silent_workflow_times_out() {
    let retool = FakeRetool::start().await;
    retool.add_workflow(
        "limited",
        KEY,
        Answer::RateLimited {
            retry_after_secs: 1,
            times: 1,
            then: Box::new(Answer::Sync {
                status: 200,
                body: json!({"ok": true}),
            }),
        },
    );
    retool.add_workflow(
        "silent",
        KEY,
        Answer::Hold {
            then: Box::new(Answer::Async),
        },
    );
    let bot = bot(
        &retool,
        &format!(
            "{}{}",
            action("limited", "confirm = false"),
            action(
                "silent",
                "confirm = false\ntimeout = \"1s\"\ncooldown = \"1h\""
            ),
        ),
    )
    .await;
    let fake = &bot.fake;
    let id = fake
        .command("action", run_options("limited", None), FakeMember::OPS)
        .await;
    wait_original(fake, id, "the outcome", |t| t.contains("✅")).await;
    let attempts = retool.requests("limited");
    assert_eq!(attempts.len(), 2, "refused once, then sent again");
    let gap = attempts[1].received.duration_since(attempts[0].received);
    assert!(gap >= std::time::Duration::from_secs(1), "waited {gap:?}");
    assert!(retool.violations().is_empty(), "{:?}", retool.violations());

    let id = fake
        .command("action", run_options("silent", None), FakeMember::OPS)
        .await;
    let failed = wait_original(fake, id, "the timeout", |t| t.contains("❌")).await;
    let text = text_of(&failed);
    let request = retool.requests("silent")[0].body["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!(
            "Retool did not answer within 1s; the workflow may still be running (request id {request})"
        )),
        "{text}"
    );
    // It may have run: the cooldown starts.
    let again = fake
        .command("action", run_options("silent", None), FakeMember::OPS)
        .await;
    assert!(callback_text(&fake.callback_for(again).await).contains("cooling down"));
    retool.release("silent");
    bot.stop().await;
}
