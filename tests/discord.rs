//! The Discord front end to end: the real serenity/poise client, connected through
//! `DISCORD_API_BASE` to a fake Discord on 127.0.0.1 (REST and gateway), over a real engine
//! and SQLite store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake_discord::{self, FakeDiscord, FakeMember};
use patchbay::audit::{AuditQuery, Outcome};
use patchbay::config::{self, Environment};
use patchbay::metrics::Metrics;
use patchbay::monitor::Engine;
use patchbay::monitor::http_check::HttpChecker;
use patchbay::service::ControlPlane;
use patchbay::store::{Store, writer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Bot {
    fake: FakeDiscord,
    store: Store,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start_bot() -> Bot {
    start_bot_with("", "").await
}

/// Starts the bot with extra `[bot]` lines and extra tables (`[[grant]]`) in its config.
async fn start_bot_with(bot_extra: &str, tables: &str) -> Bot {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[bot]\nguilds = [\"{}\"]\n{bot_extra}\n{tables}\n\
         [[integration]]\nname = \"payments-api\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1h\"\ntags = [\"payments\"]\n\
         [[integration]]\nname = \"search\"\nurl = \"http://127.0.0.1:9/\"\ninterval = \"1h\"\n",
        fake_discord::GUILD_ID
    );
    let env = Environment::from_pairs([
        ("DISCORD_TOKEN", "fake-token"),
        ("DISCORD_API_BASE", fake.api_base().as_str()),
    ]);
    let config = config::parse(&text, "test.toml", None, &env).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::new());
    let (writer, _) = writer::spawn(
        store.clone(),
        100,
        Duration::from_millis(20),
        metrics.clone(),
    );
    let engine = Engine::start(
        store.clone(),
        writer,
        metrics,
        Arc::new(HttpChecker::new()),
        8,
        config.integrations.clone(),
    )
    .await
    .unwrap();
    let plane = Arc::new(ControlPlane::new(&config, store.clone()).await.unwrap());
    let stop = CancellationToken::new();
    let task = tokio::spawn(patchbay::discord::run(
        Arc::new(config),
        plane,
        store.clone(),
        engine,
        stop.clone(),
    ));
    let task = tokio::spawn(async move {
        task.await.unwrap().unwrap();
    });
    fake.wait_ready().await;
    Bot {
        fake,
        store,
        stop,
        task,
        _dir: dir,
    }
}

fn option(name: &str, value: &str) -> Value {
    json!([{ "name": name, "type": 3, "value": value }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_answers_checks_permissions_and_survives_a_gateway_drop() {
    let bot = start_bot().await;
    let fake = &bot.fake;

    // Registration: every command, per guild, with Discord's defaults for the admin ones.
    let registration = fake
        .wait_for_request("guild command registration", |r| {
            r.method == "PUT"
                && r.path
                    .ends_with(&format!("/guilds/{}/commands", fake_discord::GUILD_ID))
        })
        .await;
    let commands = registration.body.unwrap();
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
        .store
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

    bot.stop.cancel();
    bot.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix_holds_and_every_cell_is_audited() {
    // The ops role is granted audit.view and perms.manage by the config.
    let grant = format!(
        "[[grant]]\nrole = \"{}\"\npermissions = [\"audit.view\", \"perms.manage\"]\n",
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
    let entries = bot
        .store
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
    bot.stop.cancel();
    bot.task.await.unwrap();
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
        .store
        .audit_entries(&AuditQuery {
            outcome: Some(Outcome::RateLimited),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    bot.stop.cancel();
    bot.task.await.unwrap();
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
    bot.stop.cancel();
    bot.task.await.unwrap();
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
            "registered 4 commands in guild {}\n",
            fake_discord::GUILD_ID
        )
    );
    let put = fake
        .wait_for_request("the registration", |r| r.method == "PUT")
        .await;
    assert_eq!(put.body.unwrap().as_array().unwrap().len(), 4);

    let listed = run("list").await.unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = String::from_utf8(listed.stdout).unwrap();
    for name in ["status", "perms", "audit", "help"] {
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
