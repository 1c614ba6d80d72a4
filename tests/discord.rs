//! The Discord front end to end: the real serenity/poise client, connected through
//! `DISCORD_API_BASE` to a fake Discord on 127.0.0.1 (REST and gateway), over the real wiring
//! of `patchbay run` (`app::start`, through `common::stack`) and a SQLite file.

mod common;

use common::custom_ids;

use std::time::Duration;

use common::fake_discord::{self, FakeDiscord, FakeMember, FilePart};
use common::stack::{self, Patchbay};
use patchbay::audit::{AuditQuery, Outcome};
use patchbay::chart::ChartSize;
use patchbay::config::{self, Environment};
use serde_json::{Value, json};

async fn start_bot() -> Patchbay {
    start_bot_with("", "").await
}

/// Two integrations checked hourly against a closed port: they stay UNKNOWN unless asked.
const TWO_INTEGRATIONS: &str = "[[integration]]\nname = \"payments-api\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1h\"\ntags = [\"payments\"]\n\
     [[integration]]\nname = \"search\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1h\"\n";

/// Starts the bot with extra `[bot]` lines and extra tables (`[[grant]]`) in its config.
async fn start_bot_with(bot_extra: &str, tables: &str) -> Patchbay {
    start_bot_config(bot_extra, tables, TWO_INTEGRATIONS).await
}

/// The config text the bot starts with (the stack adds `[http]` and `[storage]`).
fn config_text(bot_extra: &str, tables: &str, integrations: &str) -> String {
    format!(
        "[bot]\nguilds = [\"{}\"]\n{bot_extra}\n{tables}\n{integrations}",
        fake_discord::GUILD_ID
    )
}

/// Parses a config for the bot under test, pointed at `fake`.
fn test_config(fake: &FakeDiscord, text: &str) -> config::Config {
    let env = Environment::from_pairs([
        ("DISCORD_TOKEN", "fake-token"),
        ("DISCORD_API_BASE", fake.api_base().as_str()),
    ]);
    config::parse(text, "test.toml", None, &env).unwrap()
}

/// Starts the bot with its whole config given: `[bot]` lines, tables, and integrations.
async fn start_bot_config(bot_extra: &str, tables: &str, integrations: &str) -> Patchbay {
    stack::start_bot(&config_text(bot_extra, tables, integrations)).await
}

/// The commands the bot registered in the guild (waits for the registration).
async fn registered_commands(fake: &FakeDiscord) -> Value {
    fake.wait_for_request("guild command registration", |r| {
        r.method == "PUT"
            && r.path
                .ends_with(&format!("/guilds/{}/commands", fake_discord::GUILD_ID))
    })
    .await
    .body
    .unwrap()
}

fn option(name: &str, value: &str) -> Value {
    json!([{ "name": name, "type": 3, "value": value }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_answers_checks_permissions_and_survives_a_gateway_drop() {
    let bot = start_bot().await;
    let fake = &bot.fake;

    // Registration: every command, per guild, with Discord's defaults for the admin ones.
    let commands = registered_commands(fake).await;
    let by_name = |name: &str| {
        commands
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("/{name} not registered: {commands}"))
            .clone()
    };
    let status = by_name("status");
    assert_eq!(status["options"][0]["name"], "integration");
    assert_eq!(status["options"][0]["autocomplete"], true);
    assert_eq!(by_name("perms")["default_member_permissions"], "32");
    assert_eq!(by_name("audit")["default_member_permissions"], "32");
    let perms_subcommands: Vec<String> = by_name("perms")["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(perms_subcommands, ["grant", "revoke", "list", "check"]);
    by_name("help");

    // /status for anyone (status is public by default).
    let id = fake.command("status", json!([]), FakeMember::NOBODY).await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["type"], 4, "{reply}");
    assert_eq!(
        reply["data"]["embeds"][0]["title"], "2 integrations",
        "{reply}"
    );

    // /status <integration>.
    let id = fake
        .command(
            "status",
            option("integration", "payments-api"),
            FakeMember::NOBODY,
        )
        .await;
    let reply = fake.callback_for(id).await;
    let title = reply["data"]["embeds"][0]["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(title.contains("payments-api"), "{reply}");
    let fields = reply["data"]["embeds"][0]["fields"].to_string();
    assert!(
        fields.contains("Last 24 hours") && fields.contains("payments"),
        "{fields}"
    );

    // An unknown name gets an ephemeral did-you-mean.
    let id = fake
        .command(
            "status",
            option("integration", "paymnts-api"),
            FakeMember::NOBODY,
        )
        .await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["data"]["flags"], 64, "{reply}");
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap()
            .contains("did you mean payments-api")
    );

    // Autocomplete, fuzzy.
    let id = fake
        .autocomplete(
            "status",
            json!([{ "name": "integration", "type": 3, "value": "pay", "focused": true }]),
            FakeMember::NOBODY,
        )
        .await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["type"], 8, "{reply}");
    assert_eq!(reply["data"]["choices"][0]["name"], "payments-api");

    // /audit without audit.view is denied, ephemerally, naming the permission.
    let id = fake.command("audit", json!([]), FakeMember::NOBODY).await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["data"]["flags"], 64);
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap()
            .contains("`audit.view`"),
        "{reply}"
    );
    // The owner may.
    let id = fake.command("audit", json!([]), FakeMember::OWNER).await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["data"]["embeds"][0]["title"], "Audit log", "{reply}");

    // Commands in DMs are refused with an explanation.
    let id = fake.command_in_dm("status", json!([]), 555).await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["data"]["flags"], 64);
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not in direct messages"),
        "{reply}"
    );

    // The gateway drops; serenity reconnects and the bot still answers.
    fake.drop_gateway().await;
    let id = fake.command("status", json!([]), FakeMember::NOBODY).await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["type"], 4);
    assert!(fake.resume_count() + fake.identify_count() >= 2);

    assert!(fake.violations().is_empty(), "{:?}", fake.violations());

    // Every command left one audit entry (autocomplete none).
    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            limit: 50,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let outcomes: Vec<(String, Outcome)> = entries
        .iter()
        .rev()
        .map(|e| (e.command.clone(), e.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("status".to_string(), Outcome::Ok),
            ("status".to_string(), Outcome::Ok),
            ("status".to_string(), Outcome::Invalid),
            ("audit".to_string(), Outcome::Denied),
            ("audit".to_string(), Outcome::Ok),
            ("status".to_string(), Outcome::Denied),
            ("status".to_string(), Outcome::Ok),
        ]
    );

    bot.stop().await;
}

/// The answer to interaction `id` and the files it carried: the data of a type 4 callback or,
/// when the answer was deferred, the message sent after the deferral.
async fn answer_with_files(fake: &FakeDiscord, id: u64) -> (Value, Vec<FilePart>) {
    let first = fake.callback_for(id).await;
    let token = fake.interaction_token(id).unwrap();
    // Deferred (a message, or a button's update): the answer is the edit that follows.
    if first["type"] == 5 || first["type"] == 6 {
        let message = fake
            .wait_for_request("the answer after the deferral", |r| {
                r.path.contains(&token) && !r.path.ends_with("/callback") && r.method != "DELETE"
            })
            .await;
        return (message.body.unwrap(), message.files);
    }
    let callback = fake
        .wait_for_request("the callback", |r| {
            r.path.contains(&token) && r.path.ends_with("/callback")
        })
        .await;
    (callback.body.unwrap()["data"].clone(), callback.files)
}

/// `message` (a callback's data or an edit) shows the chart `filename` it carries.
fn assert_chart(message: &Value, files: &[FilePart], filename: &str) {
    let embed = &message["embeds"][0];
    assert!(
        embed["title"].as_str().unwrap().contains("payments-api"),
        "{message}"
    );
    // The embed shows the attachment, which the payload lists and the request carries.
    assert_eq!(
        embed["image"]["url"],
        format!("attachment://{filename}"),
        "{message}"
    );
    assert_eq!(message["attachments"][0]["filename"], filename, "{message}");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].filename, filename);
    let png = &files[0].bytes;
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let size = ChartSize::STANDARD;
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!(png[16..20], size.width.to_be_bytes());
    assert_eq!(png[20..24], size.height.to_be_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_an_integration_attaches_its_chart_for_the_period_asked() {
    let bot = start_bot().await;
    let fake = &bot.fake;
    let commands = registered_commands(fake).await;
    let status = commands
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "status")
        .unwrap()
        .clone();
    let period = &status["options"][1];
    assert_eq!(period["name"], "period", "{status}");
    assert_eq!(period["required"], false, "{status}");
    let choice = |name: &str| {
        period["choices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no choice {name}: {period}"))["value"]
            .clone()
    };

    let mut charts = Vec::new();
    let mut week = Value::Null;
    for (options, filename, recheck) in [
        (
            option("integration", "payments-api"),
            "payments-api-24h.png",
            "pb:status:recheck:payments-api",
        ),
        (
            json!([
                { "name": "integration", "type": 3, "value": "payments-api" },
                { "name": "period", "type": 4, "value": choice("7d") },
            ]),
            "payments-api-7d.png",
            "pb:status:recheck:payments-api:7d",
        ),
        (
            json!([
                { "name": "integration", "type": 3, "value": "payments-api" },
                { "name": "period", "type": 4, "value": choice("24h") },
            ]),
            "payments-api-24h.png",
            "pb:status:recheck:payments-api",
        ),
    ] {
        let id = fake.command("status", options, FakeMember::NOBODY).await;
        let (message, files) = answer_with_files(fake, id).await;
        assert_chart(&message, &files, filename);
        // The re-check button stays, with the period the message shows.
        assert_eq!(custom_ids(&message), [recheck]);
        if filename.ends_with("7d.png") {
            week = fake.original_message(id).await;
        }
        charts.push(files[0].bytes.clone());
    }
    assert_ne!(charts[0], charts[1], "24h and 7d sent the same chart");

    // Re-checking the week's detail draws the week's chart again into the message.
    let press = fake
        .button("pb:status:recheck:payments-api:7d", week, FakeMember::OWNER)
        .await;
    let (update, files) = answer_with_files(fake, press).await;
    assert_chart(&update, &files, "payments-api-7d.png");
    assert_eq!(custom_ids(&update), ["pb:status:recheck:payments-api:7d"]);
    let callback = fake.callback_for(press).await;
    assert!(
        [6, 7].contains(&callback["type"].as_i64().unwrap()),
        "the press updates the message: {callback}"
    );

    // An overview has no chart, with or without a period.
    let id = fake
        .command(
            "status",
            json!([{ "name": "period", "type": 4, "value": choice("7d") }]),
            FakeMember::NOBODY,
        )
        .await;
    let (message, files) = answer_with_files(fake, id).await;
    assert_eq!(message["embeds"][0]["title"], "2 integrations", "{message}");
    assert!(files.is_empty() && message["embeds"][0]["image"].is_null());

    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix_holds_and_every_cell_is_audited() {
    // The ops role is granted audit.view, perms.manage and status.recheck by the config.
    let grant = format!(
        "[[grant]]\nrole = \"{}\"\npermissions = [\"audit.view\", \"perms.manage\", \"status.recheck\"]\n",
        fake_discord::OPS_ROLE
    );
    let bot = start_bot_with("command_rate = \"100/m\"", &grant).await;
    let fake = &bot.fake;
    let list = json!([{ "name": "list", "type": 1, "options": [] }]);
    // (command, options, who) -> allowed? "DM" rows use command_in_dm.
    let members = [
        ("nobody", Some(FakeMember::NOBODY)),
        ("granted role", Some(FakeMember::OPS)),
        ("administrator", Some(FakeMember::ADMIN)),
        ("owner", Some(FakeMember::OWNER)),
        ("DM", None),
    ];
    let commands = [
        (
            "status",
            "status",
            json!([]),
            [true, true, true, true, false],
        ),
        (
            "audit",
            "audit",
            json!([]),
            [false, true, true, true, false],
        ),
        (
            "perms",
            "perms list",
            list,
            [false, true, true, true, false],
        ),
        ("help", "help", json!([]), [true, true, true, true, false]),
    ];
    let mut expected_audit = Vec::new();
    for (name, path, options, allowed) in &commands {
        for ((who, member), allowed) in members.iter().zip(allowed) {
            let id = match member {
                Some(member) => fake.command(name, options.clone(), *member).await,
                None => fake.command_in_dm(name, options.clone(), 555).await,
            };
            let reply = fake.callback_for(id).await;
            let content = reply["data"]["content"].as_str().unwrap_or("");
            let denied = content.starts_with("⛔");
            assert_eq!(!denied, *allowed, "/{path} by {who}: {reply}");
            if denied {
                assert_eq!(reply["data"]["flags"], 64, "denials are ephemeral: {reply}");
            }
            expected_audit.push((
                path.to_string(),
                if *allowed {
                    Outcome::Ok
                } else {
                    Outcome::Denied
                },
            ));
        }
    }
    // The Re-check now button, pressed by each member in the guild.
    let id = fake
        .command(
            "status",
            option("integration", "payments-api"),
            FakeMember::OWNER,
        )
        .await;
    let detail = fake.original_message(id).await;
    expected_audit.push(("status".into(), Outcome::Ok));
    for ((who, member), allowed) in members.iter().zip([false, true, true, true]) {
        let press = fake
            .button(
                "pb:status:recheck:payments-api",
                detail.clone(),
                member.unwrap(),
            )
            .await;
        let reply = fake.callback_for(press).await;
        if allowed {
            assert_eq!(reply["type"], 7, "re-check by {who}: {reply}");
        } else {
            assert_eq!(reply["type"], 4, "re-check by {who}: {reply}");
            assert_eq!(reply["data"]["flags"], 64);
            assert!(reply["data"]["content"].as_str().unwrap().starts_with("⛔"));
        }
        expected_audit.push((
            "status recheck".into(),
            if allowed {
                Outcome::Ok
            } else {
                Outcome::Denied
            },
        ));
    }
    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let recorded: Vec<(String, Outcome)> = entries
        .iter()
        .rev()
        .map(|e| (e.command.clone(), e.outcome))
        .collect();
    assert_eq!(recorded, expected_audit);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_over_the_rate_limit_are_told_when_to_try_again() {
    let bot = start_bot_with("command_rate = \"2/m\"", "").await;
    let fake = &bot.fake;
    for _ in 0..2 {
        let id = fake.command("status", json!([]), FakeMember::NOBODY).await;
        assert_eq!(fake.callback_for(id).await["type"], 4);
    }
    let id = fake.command("status", json!([]), FakeMember::NOBODY).await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["data"]["flags"], 64, "{reply}");
    let content = reply["data"]["content"].as_str().unwrap();
    assert!(
        content.contains("you are sending commands too fast: try again in "),
        "{content}"
    );
    // Another member is not affected.
    let id = fake.command("status", json!([]), FakeMember::OPS).await;
    assert!(fake.callback_for(id).await["data"]["embeds"].is_array());
    let limited = bot
        .store()
        .audit_entries(&AuditQuery {
            outcome: Some(Outcome::RateLimited),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_are_mirrored_into_the_audit_channel() {
    let channel = fake_discord::CHANNEL_ID;
    let bot = start_bot_with(&format!("audit_channel = \"{channel}\""), "").await;
    let fake = &bot.fake;
    let id = fake.command("audit", json!([]), FakeMember::NOBODY).await;
    fake.callback_for(id).await;
    let posted = fake
        .wait_for_request("the audit line in the audit channel", |r| {
            r.method == "POST" && r.path.ends_with(&format!("/channels/{channel}/messages"))
        })
        .await;
    let body = posted.body.unwrap();
    let content = body["content"].as_str().unwrap();
    assert!(
        content.starts_with(&format!("`/audit` by <@{}>", fake_discord::NOBODY_USER_ID)),
        "{content}"
    );
    assert!(content.contains(": denied ("), "{content}");
    // Mirrored lines mention people without pinging them.
    assert_eq!(body["allowed_mentions"]["parse"], json!([]), "{body}");
    bot.stop().await;
}

/// A public answer that names a role (`/perms grant`) must not ping it: everyone holding the
/// role would be notified of someone else's command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_name_roles_without_pinging_them() {
    let bot = start_bot().await;
    let fake = &bot.fake;
    let id = fake
        .command(
            "perms",
            json!([{
                "name": "grant",
                "type": 1,
                "options": [
                    { "name": "role", "type": 8, "value": fake_discord::OPS_ROLE.to_string() },
                    { "name": "permission", "type": 4, "value": 2 },
                ],
            }]),
            FakeMember::OWNER,
        )
        .await;
    let callback = fake.callback_for(id).await;
    assert_eq!(
        callback["data"]["content"],
        format!("<@&{}> now holds `sync.run`.", fake_discord::OPS_ROLE),
        "{callback}"
    );
    assert_eq!(
        callback["data"]["allowed_mentions"]["parse"],
        json!([]),
        "{callback}"
    );
    assert!(
        callback["data"]["allowed_mentions"]["roles"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{callback}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_registers_and_lists_commands_over_rest() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patchbay.toml");
    std::fs::write(
        &config,
        format!("[bot]\nguilds = [\"{}\"]\n", fake_discord::GUILD_ID),
    )
    .unwrap();
    let run = |action: &'static str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
            .args(["commands", action, "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .env("DISCORD_TOKEN", "fake-token")
            .env("DISCORD_API_BASE", fake.api_base())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("db").display()),
            )
            .output()
    };
    let registered = run("register").await.unwrap();
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    assert_eq!(
        String::from_utf8(registered.stdout).unwrap(),
        format!(
            "registered 7 commands in guild {}\n",
            fake_discord::GUILD_ID
        )
    );
    let put = fake
        .wait_for_request("the registration", |r| r.method == "PUT")
        .await;
    assert_eq!(put.body.unwrap().as_array().unwrap().len(), 7);

    let listed = run("list").await.unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = String::from_utf8(listed.stdout).unwrap();
    for name in ["status", "alerts", "perms", "audit", "help"] {
        assert!(
            listed.contains(&format!("guild {}: /{name} ", fake_discord::GUILD_ID)),
            "{listed}"
        );
    }

    // Without a token it says what to do, and sends nothing.
    let before = fake.requests().len();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .args(["commands", "list", "--config"])
        .arg(&config)
        .env_remove("DISCORD_TOKEN")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("db").display()),
        )
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("DISCORD_TOKEN is not set"));
    assert_eq!(fake.requests().len(), before);
}

/// `count` integrations named `svc-000`.. against `url`, checked hourly.
fn many_integrations(count: usize, url: &str) -> String {
    (0..count)
        .map(|i| {
            format!("[[integration]]\nname = \"svc-{i:03}\"\nurl = \"{url}\"\ninterval = \"1h\"\n")
        })
        .collect()
}

fn description(message: &Value) -> String {
    message["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_overview_is_paginated_with_buttons_that_check_permissions() {
    let bot = start_bot_config(
        "public_status = false\ncommand_rate = \"100/m\"",
        &format!(
            "[[grant]]\nrole = \"{}\"\npermissions = [\"status.view\"]\n",
            fake_discord::OPS_ROLE
        ),
        &many_integrations(45, "http://127.0.0.1:9/"),
    )
    .await;
    let fake = &bot.fake;
    let id = fake.command("status", json!([]), FakeMember::OPS).await;
    let first = fake.original_message(id).await;
    assert_eq!(first["embeds"][0]["title"], "45 integrations", "{first}");
    assert_eq!(first["embeds"][0]["footer"]["text"], "Page 1 of 3");
    let page_one = description(&first);
    assert!(page_one.contains("**svc-000**") && page_one.contains("**svc-019**"));
    assert!(!page_one.contains("**svc-020**"), "{page_one}");
    assert_eq!(
        custom_ids(&first),
        [
            "pb:status:page:0:prev",
            "pb:status:page:1:next",
            "pb:status:page:0:refresh"
        ]
    );
    assert_eq!(first["components"][0]["components"][0]["disabled"], true);

    // Next: the same message, updated in place (callback type 7) to page 2.
    let press = fake
        .button("pb:status:page:1:next", first.clone(), FakeMember::OPS)
        .await;
    let update = fake.callback_for(press).await;
    assert_eq!(update["type"], 7, "{update}");
    let second = fake.original_message(press).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["embeds"][0]["footer"]["text"], "Page 2 of 3");
    let page_two = description(&second);
    assert!(page_two.contains("**svc-020**") && page_two.contains("**svc-039**"));
    assert!(!page_two.contains("**svc-019**"), "{page_two}");

    // A member without status.view may not page: an ephemeral denial, the message untouched.
    let press = fake
        .button("pb:status:page:2:next", second.clone(), FakeMember::NOBODY)
        .await;
    let denial = fake.callback_for(press).await;
    assert_eq!(denial["type"], 4, "{denial}");
    assert_eq!(denial["data"]["flags"], 64);
    assert!(
        denial["data"]["content"]
            .as_str()
            .unwrap()
            .contains("`status.view`"),
        "{denial}"
    );
    assert_eq!(
        fake.message(fake_discord::snowflake(&second["id"]).unwrap())
            .unwrap()["embeds"][0]["footer"]["text"],
        "Page 2 of 3"
    );

    // The last page: 5 integrations, Next disabled.
    let press = fake
        .button("pb:status:page:2:next", second.clone(), FakeMember::ADMIN)
        .await;
    fake.callback_for(press).await;
    let third = fake.original_message(press).await;
    assert_eq!(third["embeds"][0]["footer"]["text"], "Page 3 of 3");
    assert!(description(&third).contains("**svc-044**"));
    assert_eq!(third["components"][0]["components"][1]["disabled"], true);

    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let recorded: Vec<(String, Outcome, String)> = entries
        .iter()
        .rev()
        .map(|e| (e.command.clone(), e.outcome, e.options.to_string()))
        .collect();
    assert_eq!(
        recorded
            .iter()
            .map(|(c, o, _)| (c.as_str(), *o))
            .collect::<Vec<_>>(),
        [
            ("status", Outcome::Ok),
            ("status page", Outcome::Ok),
            ("status page", Outcome::Denied),
            ("status page", Outcome::Ok),
        ]
    );
    assert!(recorded[1].2.contains("\"page\":2"), "{:?}", recorded[1]);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_check_now_runs_a_live_check_for_those_allowed_and_defers_when_slow() {
    let upstream = common::upstream::Upstream::start().await;
    let bot = start_bot_config(
        "command_rate = \"100/m\"",
        &format!(
            "[[grant]]\nrole = \"{}\"\npermissions = [\"status.recheck\"]\n",
            fake_discord::OPS_ROLE
        ),
        &format!(
            "[[integration]]\nname = \"payments-api\"\nurl = \"{}\"\ninterval = \"1h\"\n",
            upstream.url("/health")
        ),
    )
    .await;
    let fake = &bot.fake;
    let id = fake
        .command(
            "status",
            option("integration", "payments-api"),
            FakeMember::NOBODY,
        )
        .await;
    let detail = fake.original_message(id).await;
    assert_eq!(custom_ids(&detail), ["pb:status:recheck:payments-api"]);

    // Without status.recheck: denied, ephemeral, and nothing is checked.
    let hits = upstream.hits();
    let press = fake
        .button(
            "pb:status:recheck:payments-api",
            detail.clone(),
            FakeMember::NOBODY,
        )
        .await;
    let denial = fake.callback_for(press).await;
    assert_eq!(denial["type"], 4);
    assert_eq!(denial["data"]["flags"], 64);
    assert!(
        denial["data"]["content"]
            .as_str()
            .unwrap()
            .contains("`status.recheck`"),
        "{denial}"
    );

    // With it: the upstream is asked, and the message shows the fresh result.
    let press = fake
        .button(
            "pb:status:recheck:payments-api",
            detail.clone(),
            FakeMember::OPS,
        )
        .await;
    let update = fake.callback_for(press).await;
    assert_eq!(update["type"], 7, "{update}");
    assert!(upstream.hits() > hits, "the re-check reached the upstream");
    let title = update["data"]["embeds"][0]["title"].as_str().unwrap();
    assert!(title.ends_with("payments-api: UP"), "{title}");
    assert_eq!(
        bot.engine()
            .state("payments-api")
            .unwrap()
            .state
            .to_string(),
        "UP"
    );

    // A slow check: the press is deferred (type 6) within the deadline, then the message is
    // edited when the check answers.
    upstream.hold();
    upstream.break_it();
    let before = upstream.hits();
    let press = fake
        .button(
            "pb:status:recheck:payments-api",
            detail.clone(),
            FakeMember::OWNER,
        )
        .await;
    let deferred = fake.callback_for(press).await;
    assert_eq!(deferred["type"], 6, "{deferred}");
    assert!(fake.callback_latency(press).unwrap() < Duration::from_secs(3));
    upstream.wait_hits(before + 1).await;
    upstream.release();
    let edit = fake
        .wait_for_request("the edit after the deferred re-check", |r| {
            r.method == "PATCH" && r.path.ends_with("/messages/@original")
        })
        .await;
    let fields = edit.body.unwrap()["embeds"][0]["fields"].clone();
    assert!(
        fields.to_string().contains("status 500"),
        "the failed check is shown: {fields}"
    );

    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            command: Some("status recheck".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let outcomes: Vec<Outcome> = entries.iter().rev().map(|e| e.outcome).collect();
    assert_eq!(outcomes, [Outcome::Denied, Outcome::Ok, Outcome::Ok]);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_are_deferred_and_late_errors_stay_private() {
    use sqlx::Connection;
    let bot = start_bot().await;
    let fake = &bot.fake;
    // Another writer holds the database: the audit entry waits for it, and so does the reply.
    let path = bot.db_path();
    let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let ok = fake.command("status", json!([]), FakeMember::NOBODY).await;
    let bad = fake
        .command("status", option("integration", "nope"), FakeMember::OPS)
        .await;
    // Deferred (type 5) in time, while the database is still held.
    for id in [ok, bad] {
        let first = fake.callback_for(id).await;
        assert_eq!(first["type"], 5, "{first}");
        assert!(fake.callback_latency(id).unwrap() < Duration::from_secs(3));
    }
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    // The overview arrives as the follow-up; the error replaces the public "thinking" message
    // with an ephemeral one.
    let ok_token = fake.interaction_token(ok).unwrap();
    let followup = fake
        .wait_for_request("the overview after the deferral", |r| {
            r.method == "POST" && r.path.contains(&ok_token) && !r.path.ends_with("/callback")
        })
        .await;
    assert!(
        followup.body.unwrap()["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("integrations")
    );
    let token = fake.interaction_token(bad).unwrap();
    fake.wait_for_request("the deleted thinking message", |r| {
        r.method == "DELETE" && r.path.contains(&token) && r.path.ends_with("/@original")
    })
    .await;
    let error = fake
        .wait_for_request("the ephemeral error", |r| {
            r.method == "POST" && r.path.contains(&token) && !r.path.ends_with("/callback")
        })
        .await;
    let body = error.body.unwrap();
    assert_eq!(body["flags"], 64, "{body}");
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .contains("there is no integration named \"nope\""),
        "{body}"
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_config_is_what_status_and_autocomplete_show() {
    let bot = start_bot().await;
    let fake = &bot.fake;
    let text = config_text(
        "",
        "",
        &format!(
            "{TWO_INTEGRATIONS}[[integration]]\nname = \"ledger\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1h\"\n"
        ),
    );
    let reloaded = test_config(fake, &text);
    // What SIGHUP does in `patchbay run`.
    bot.engine().apply(reloaded.integrations.clone()).await;
    bot.plane().reload(&reloaded);
    let id = fake.command("status", json!([]), FakeMember::NOBODY).await;
    let overview = fake.original_message(id).await;
    assert_eq!(overview["embeds"][0]["title"], "3 integrations");
    assert!(description(&overview).contains("**ledger**"));
    let id = fake
        .autocomplete(
            "status",
            json!([{"name": "integration", "type": 3, "value": "led", "focused": true}]),
            FakeMember::NOBODY,
        )
        .await;
    let choices = fake.callback_for(id).await["data"]["choices"].clone();
    assert_eq!(choices, json!([{"name": "ledger", "value": "ledger"}]));
    let id = fake
        .command(
            "status",
            option("integration", "ledger"),
            FakeMember::NOBODY,
        )
        .await;
    let detail = fake.callback_for(id).await;
    assert!(
        detail["data"]["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("ledger"),
        "{detail}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_pages_back_with_an_older_button() {
    let bot = start_bot_with("command_rate = \"100/m\"", "").await;
    let fake = &bot.fake;
    // Five commands by four members, so each page's lines can be told apart.
    let members = [
        FakeMember::NOBODY,
        FakeMember::OPS,
        FakeMember::ADMIN,
        FakeMember::OWNER,
        FakeMember::NOBODY,
    ];
    for member in members {
        let id = fake.command("status", json!([]), member).await;
        fake.callback_for(id).await;
    }
    let id = fake
        .command(
            "audit",
            json!([{"name": "limit", "type": 4, "value": 2}]),
            FakeMember::OWNER,
        )
        .await;
    let first = fake.original_message(id).await;
    assert_eq!(
        first["flags"].as_u64().unwrap() & 64,
        64,
        "ephemeral: {first}"
    );
    let older = custom_ids(&first);
    assert_eq!(older.len(), 1, "{first}");
    assert!(older[0].starts_with("pb:audit:"), "{older:?}");
    let lines = |m: &Value| description(m).lines().count();
    assert_eq!(lines(&first), 2);
    let press = fake
        .button(&older[0], first.clone(), FakeMember::OWNER)
        .await;
    assert_eq!(fake.callback_for(press).await["type"], 7);
    let second = fake.original_message(press).await;
    assert_eq!(lines(&second), 2);
    // Newest first, and the pages follow each other without overlap.
    let who = |m: &Value| -> Vec<u64> {
        description(m)
            .lines()
            .map(|line| {
                let start = line.find("<@").unwrap() + 2;
                let end = start + line[start..].find('>').unwrap();
                line[start..end].parse().unwrap()
            })
            .collect()
    };
    assert_eq!(
        who(&first),
        [fake_discord::NOBODY_USER_ID, fake_discord::OWNER_ID]
    );
    assert_eq!(
        who(&second),
        [fake_discord::ADMIN_USER_ID, fake_discord::OPS_USER_ID]
    );
    // A member without audit.view cannot page someone else's view.
    let press = fake
        .button(&custom_ids(&second)[0], second.clone(), FakeMember::NOBODY)
        .await;
    assert_eq!(fake.callback_for(press).await["data"]["flags"], 64);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

/// The text of an ephemeral reply: asserts the flag, Discord's 2,000-character limit, and that
/// the reply is the member's answer (a callback of type 4) rather than a failure.
fn ephemeral_text(reply: &Value) -> String {
    assert_eq!(reply["type"], 4, "{reply}");
    assert_eq!(reply["data"]["flags"], 64, "ephemeral: {reply}");
    let content = reply["data"]["content"].as_str().unwrap_or_default();
    assert!(
        content.chars().count() <= 2000,
        "{} characters",
        content.chars().count()
    );
    content.to_string()
}

/// The quoted input after `prefix` in `text` (`prefix"...."`), without its quotes.
fn quoted_after(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} is not in {text:?}"))
        + prefix.len();
    let rest = text[start..].strip_prefix('"').expect("a quoted input");
    rest[..rest.find('"').expect("the closing quote")].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_unknown_integration_is_quoted_cut_not_a_broken_reply() {
    let bot = start_bot().await;
    let fake = &bot.fake;
    let long = "x".repeat(2000);
    let id = fake
        .command("status", option("integration", &long), FakeMember::NOBODY)
        .await;
    let content = ephemeral_text(&fake.callback_for(id).await);
    assert!(
        content.starts_with("⚠️ there is no integration named \"")
            && content.ends_with("; /status lists them all"),
        "{content}"
    );
    let quoted = quoted_after(&content, "named ");
    assert!(quoted.chars().count() <= 100, "{quoted}");
    assert!(
        quoted.starts_with("xxxx") && quoted.ends_with('…'),
        "{quoted}"
    );

    // A long name that starts like a configured one still gets its did-you-mean.
    let near = format!("payments-api{}", "x".repeat(1988));
    let id = fake
        .command("status", option("integration", &near), FakeMember::NOBODY)
        .await;
    let content = ephemeral_text(&fake.callback_for(id).await);
    assert!(
        quoted_after(&content, "named ").chars().count() <= 100,
        "{content}"
    );
    assert!(
        content.ends_with("; did you mean payments-api?"),
        "{content}"
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

/// Every leaf option of the registered commands, as `("/command sub", option)`.
fn registered_options(commands: &Value) -> Vec<(String, Value)> {
    fn walk(path: &str, options: &Value, out: &mut Vec<(String, Value)>) {
        for option in options.as_array().into_iter().flatten() {
            let name = option["name"].as_str().unwrap();
            match option["type"].as_u64() {
                Some(1 | 2) => walk(&format!("{path} {name}"), &option["options"], out),
                _ => out.push((path.to_string(), option.clone())),
            }
        }
    }
    let mut out = Vec::new();
    for command in commands.as_array().unwrap() {
        let path = format!("/{}", command["name"].as_str().unwrap());
        walk(&path, &command["options"], &mut out);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_text_option_has_a_length_and_every_number_a_range() {
    let bot = start_bot().await;
    let fake = &bot.fake;
    let registration = fake
        .wait_for_request("guild command registration", |r| r.method == "PUT")
        .await;
    let options = registered_options(&registration.body.unwrap());
    let mut strings = Vec::new();
    for (path, option) in &options {
        let name = option["name"].as_str().unwrap();
        match option["type"].as_u64().unwrap() {
            3 => {
                let max = option["max_length"].as_u64();
                assert!(max.is_some(), "{path} {name} has no max_length: {option}");
                strings.push(format!("{path} {name} {}", max.unwrap()));
            }
            4 if option["choices"].as_array().is_none_or(Vec::is_empty) => {
                assert!(
                    option["min_value"].is_number() && option["max_value"].is_number(),
                    "{path} {name} has no range: {option}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(
        strings,
        [
            "/status integration 64",
            "/alerts silence target 70",
            "/alerts silence duration 16",
            "/alerts silence reason 200",
            "/audit command 32",
            "/sync run job 64",
            "/sync history job 64",
            "/action run name 64",
            "/action run args 1000",
        ]
    );
    let limit = &options
        .iter()
        .find(|(path, o)| path == "/audit" && o["name"] == "limit")
        .unwrap()
        .1;
    assert_eq!(
        (limit["min_value"].as_f64(), limit["max_value"].as_f64()),
        (Some(1.0), Some(25.0))
    );
    // The fake checked each option's bounds against Discord's spec.
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_integers_are_explained_and_audited_as_invalid() {
    let bot = start_bot_with("command_rate = \"100/m\"", "").await;
    let fake = &bot.fake;
    let sub = |name: &str, options: Value| json!([{ "name": name, "type": 1, "options": options }]);
    let cases = [
        (
            "audit",
            json!([{ "name": "limit", "type": 4, "value": -5 }]),
            "audit",
            "limit must be a whole number from 1 to 25; got -5",
        ),
        (
            "audit",
            json!([{ "name": "limit", "type": 4, "value": 26 }]),
            "audit",
            "limit must be a whole number from 1 to 25; got 26",
        ),
        // A client with an old registration sends the number as text.
        (
            "audit",
            json!([{ "name": "limit", "type": 3, "value": "ten" }]),
            "audit",
            "limit must be a whole number from 1 to 25; got \"ten\"",
        ),
        (
            "audit",
            json!([{ "name": "outcome", "type": 4, "value": 99 }]),
            "audit",
            "outcome must be one of ok, denied, invalid, failed, rate_limited; got 99",
        ),
        (
            "alerts",
            sub(
                "ack",
                json!([{ "name": "incident", "type": 4, "value": 0 }]),
            ),
            "alerts ack",
            "incident must be a whole number of at least 1; got 0",
        ),
        (
            "perms",
            sub(
                "grant",
                json!([
                    { "name": "role", "type": 8, "value": fake_discord::OPS_ROLE.to_string() },
                    { "name": "permission", "type": 4, "value": -1 },
                ]),
            ),
            "perms grant",
            "permission must be one of status.view, status.recheck, sync.run, action.run, \
             action.approve, alerts.manage, audit.view, perms.manage; got -1",
        ),
    ];
    for (command, options, _, expected) in &cases {
        let id = fake
            .command(command, options.clone(), FakeMember::OWNER)
            .await;
        let content = ephemeral_text(&fake.callback_for(id).await);
        assert_eq!(
            content,
            format!("⚠️ That option is not valid: {expected}"),
            "/{command} {options}"
        );
    }
    // A valid value still works.
    let id = fake
        .command(
            "audit",
            json!([{ "name": "limit", "type": 4, "value": 25 }]),
            FakeMember::OWNER,
        )
        .await;
    assert_eq!(
        fake.callback_for(id).await["data"]["embeds"][0]["title"],
        "Audit log"
    );
    // Each was audited like any command, as invalid input.
    let entries = bot
        .store()
        .audit_entries(&AuditQuery {
            limit: 50,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let recorded: Vec<(String, Outcome)> = entries
        .iter()
        .rev()
        .map(|e| (e.command.clone(), e.outcome))
        .collect();
    let mut expected: Vec<(String, Outcome)> = cases
        .iter()
        .map(|(_, _, path, _)| (path.to_string(), Outcome::Invalid))
        .collect();
    expected.push(("audit".into(), Outcome::Ok));
    assert_eq!(recorded, expected);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_that_echoes_input_fits() {
    let long_tag = "t".repeat(150);
    // Enough config grants that /perms list cannot show them all in 2,000 characters.
    let grants: String = (0..60)
        .map(|i| {
            format!(
                "[[grant]]\nrole = \"{}\"\npermissions = [\"audit.view\"]\n",
                300_000_000_000_001_000u64 + i
            )
        })
        .collect();
    let bot = start_bot_config(
        "command_rate = \"100/m\"",
        &grants,
        &format!(
            "{TWO_INTEGRATIONS}[[integration]]\nname = \"ledger\"\nurl = \"http://127.0.0.1:9/\"\n\
             interval = \"1h\"\ntags = [\"{long_tag}\", \"books\"]\n"
        ),
    )
    .await;
    let fake = &bot.fake;
    let long = "x".repeat(2000);
    let silence = |target: &str, duration: &str| {
        json!([{ "name": "silence", "type": 1, "options": [
            { "name": "target", "type": 3, "value": target },
            { "name": "duration", "type": 3, "value": duration },
            { "name": "reason", "type": 3, "value": long },
        ]}])
    };
    // Silence targets and durations: each error quotes at most 100 characters of the input.
    for (options, said) in [
        (silence(&long, "1h"), "there is no integration named "),
        (
            silence(&format!("tag:{long}"), "1h"),
            "no integration has the tag ",
        ),
        (silence("payments-api", &long), "duration: "),
    ] {
        let id = fake.command("alerts", options, FakeMember::OWNER).await;
        let content = ephemeral_text(&fake.callback_for(id).await);
        let quoted = quoted_after(&content, said);
        assert!(
            quoted.chars().count() <= 100 && quoted.ends_with('…'),
            "{content}"
        );
    }

    // An /audit filter no command can match: an answer, not an error.
    let id = fake
        .command(
            "audit",
            json!([{ "name": "command", "type": 3, "value": long }]),
            FakeMember::OWNER,
        )
        .await;
    assert_eq!(
        ephemeral_text(&fake.callback_for(id).await),
        "No audit entries match."
    );

    // Autocomplete with a huge partial input still answers, and a suggestion longer than
    // Discord's 100 characters is left out rather than sent.
    let id = fake
        .autocomplete(
            "status",
            json!([{ "name": "integration", "type": 3, "value": long, "focused": true }]),
            FakeMember::NOBODY,
        )
        .await;
    let reply = fake.callback_for(id).await;
    assert_eq!(reply["type"], 8, "{reply}");
    assert!(reply["data"]["choices"].is_array(), "{reply}");
    let id = fake
        .autocomplete(
            "alerts",
            json!([{ "name": "silence", "type": 1, "options": [
                { "name": "target", "type": 3, "value": "tag:", "focused": true },
            ]}]),
            FakeMember::OWNER,
        )
        .await;
    let reply = fake.callback_for(id).await;
    assert_eq!(
        reply["data"]["choices"],
        json!([
            { "name": "tag:books", "value": "tag:books" },
            { "name": "tag:payments", "value": "tag:payments" },
        ]),
        "{reply}"
    );

    // A reply longer than 2,000 characters keeps whole lines and says how many it left out.
    let id = fake
        .command(
            "perms",
            json!([{ "name": "list", "type": 1, "options": [] }]),
            FakeMember::OWNER,
        )
        .await;
    let content = ephemeral_text(&fake.callback_for(id).await);
    let last = content.lines().last().unwrap();
    assert!(
        last.starts_with("… and ") && last.ends_with(" more"),
        "{content}"
    );
    let shown = content.lines().count() - 1;
    // 60 grants, the public status line and the closing line.
    assert_eq!(last, format!("… and {} more", 62 - shown), "{content}");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    bot.stop().await;
}
