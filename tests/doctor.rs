//! A first run that explains itself: `patchbay invite` prints the URL that adds the bot with
//! exactly the permissions it uses, `patchbay check --online` asks Discord, Notion and Retool
//! whether the config fits what they hold (a missing channel, a channel without send
//! permission, an unknown role, a guild the bot is not in, a database not shared, a workflow
//! that does not answer, a reset token), and `patchbay run` logs the same Discord problems as
//! warnings at start. Against the fake Discord and the fake Notion on 127.0.0.1, with the real
//! binary.

mod common;

use std::path::Path;
use std::process::Output;

use common::fake_discord::{self, FakeDiscord};
use common::fake_notion::FakeNotion;
use common::process::{self, Process};

const NOTION_TOKEN: &str = "secret_doctor_token";
/// A channel of the guild whose overwrite denies the bot Send Messages.
const MUTED_CHANNEL: u64 = 400_000_000_000_000_009;
/// Ids that exist nowhere.
const MISSING_CHANNEL: u64 = 400_000_000_000_000_404;
const MISSING_ROLE: u64 = 300_000_000_000_000_404;
const OTHER_GUILD: u64 = 100_000_000_000_000_404;

/// Runs the binary in `dir` with `args` (after `--config`) against the fakes.
async fn patchbay(
    dir: &Path,
    config: &str,
    args: &[&str],
    fake: &FakeDiscord,
    notion: Option<&FakeNotion>,
    token: bool,
) -> Output {
    let file = dir.join("patchbay.toml");
    std::fs::write(&file, config).unwrap();
    let mut command = process::command(dir, &file);
    command
        .args(args)
        .env("DISCORD_API_BASE", fake.api_base())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("patchbay.db").display()),
        )
        .env_remove("NOTION_TOKEN");
    if token {
        command.env("DISCORD_TOKEN", "fake-token");
    }
    if let Some(notion) = notion {
        command
            .env("NOTION_API_BASE", notion.api_base())
            .env("NOTION_TOKEN", NOTION_TOKEN);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config where everything Discord, Notion and Retool are asked about exists.
fn sound_config(database: &str) -> String {
    format!(
        "[bot]\nguilds = [\"{guild}\"]\napproval_channel = \"{channel}\"\n\
         [alerts]\nchannel = \"{alerts}\"\n\
         [[alerts.route]]\nchannel = \"{routed}\"\nmention = [\"{ops}\"]\n\
         [[grant]]\nrole = \"{ops}\"\npermissions = [\"status.view\", \"action.run\"]\n\
         [[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{database}\"\n",
        guild = fake_discord::GUILD_ID,
        channel = fake_discord::CHANNEL_ID,
        alerts = fake_discord::ALERT_CHANNEL_ID,
        routed = fake_discord::ROUTE_CHANNEL_ID,
        ops = fake_discord::OPS_ROLE,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_passes_a_sound_setup_and_names_every_problem_with_its_fix() {
    let fake = FakeDiscord::start().await;
    let notion = FakeNotion::start(NOTION_TOKEN).await;
    let (database, _) = notion.add_database("Status board");
    let dir = tempfile::tempdir().unwrap();

    let sound = patchbay(
        dir.path(),
        &sound_config(&database),
        &["check", "--online"],
        &fake,
        Some(&notion),
        true,
    )
    .await;
    assert!(
        sound.status.success(),
        "stdout: {}\nstderr: {}",
        text(&sound.stdout),
        text(&sound.stderr)
    );
    assert!(
        text(&sound.stdout).contains("online: ok, checked"),
        "{}",
        text(&sound.stdout)
    );
    // It read what it checks: the bot, the guild, its member, each channel, the database.
    let asked: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    for path in [
        "/api/v10/users/@me".to_string(),
        format!("/api/v10/guilds/{}", fake_discord::GUILD_ID),
        format!(
            "/api/v10/guilds/{}/members/{}",
            fake_discord::GUILD_ID,
            fake_discord::BOT_USER_ID
        ),
        format!("/api/v10/channels/{}", fake_discord::ROUTE_CHANNEL_ID),
    ] {
        assert!(asked.contains(&path), "{path} not asked: {asked:?}");
    }
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());

    // Now break one thing of each kind.
    fake.add_channel(MUTED_CHANNEL);
    fake.deny_bot(MUTED_CHANNEL, 2048);
    let unshared = notion.add_unshared_database();
    let broken = format!(
        "[bot]\nguilds = [\"{guild}\", \"{OTHER_GUILD}\"]\napproval_channel = \"{MUTED_CHANNEL}\"\n\
         [alerts]\nchannel = \"{MISSING_CHANNEL}\"\n\
         [[alerts.route]]\nchannel = \"{routed}\"\nmention = [\"{MISSING_ROLE}\"]\n\
         [[grant]]\nrole = \"{ops}\"\npermissions = [\"status.view\"]\n\
         [[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{unshared}\"\n\
         [[action]]\nname = \"restart\"\nkind = \"retool-workflow\"\ndescription = \"Restart\"\n\
         url = \"http://127.0.0.1:9/v1/workflows/1/startTrigger\"\napi_key = \"env:RETOOL_KEY\"\n",
        guild = fake_discord::GUILD_ID,
        routed = fake_discord::ROUTE_CHANNEL_ID,
        ops = fake_discord::OPS_ROLE,
    );
    let output = {
        let file = dir.path().join("broken.toml");
        std::fs::write(&file, &broken).unwrap();
        let mut command = process::command(dir.path(), &file);
        command
            .args(["check", "--online"])
            .env("DISCORD_TOKEN", "fake-token")
            .env("DISCORD_API_BASE", fake.api_base())
            .env("NOTION_API_BASE", notion.api_base())
            .env("NOTION_TOKEN", NOTION_TOKEN)
            .env("RETOOL_KEY", "retool_key_never_sent");
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    };
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let said = text(&output.stderr);
    assert!(said.contains("online: 6 problems found"), "{said}");
    let expected: [(&str, &[&str]); 6] = [
        (
            "bot.guilds",
            &[
                "the bot is not in guild 100000000000000404",
                "patchbay invite",
            ],
        ),
        (
            "bot.approval_channel",
            &[
                "the bot may not post embeds in #channel-400000000000000009",
                "it lacks Send Messages",
                "allow Send Messages for the bot's role",
            ],
        ),
        (
            "alerts.channel",
            &[
                "channel 400000000000000404 does not exist or the bot cannot see it",
                "10003 Unknown Channel",
                "Copy Channel ID",
            ],
        ),
        (
            "alerts.route[0].mention",
            &[
                "role 300000000000000404 is not a role of the configured guilds",
                "Copy Role ID",
            ],
        ),
        (
            "sync[0].database",
            &[
                "sync job \"board\" cannot read Notion database",
                "share the database with the integration",
            ],
        ),
        (
            "action[0].url",
            &[
                "the workflow of action \"restart\" does not answer at http://127.0.0.1:9",
                "could not connect",
            ],
        ),
    ];
    for (key, parts) in expected {
        let line = said
            .lines()
            .find(|line| line.contains(&format!("broken.toml: {key}: ")))
            .unwrap_or_else(|| panic!("no line for {key}: {said}"));
        for part in parts {
            assert!(line.contains(part), "{key}: {part:?} missing from {line}");
        }
        assert!(line.contains("(fix: "), "{line}");
    }
    // The role that exists and the channels the bot may post in are not named.
    assert!(!said.contains("grant.role"), "{said}");
    assert!(!said.contains("alerts.route[0].channel"), "{said}");
    // Neither the workflow's key nor the tokens are shown.
    for secret in ["retool_key_never_sent", NOTION_TOKEN, "fake-token"] {
        assert!(!said.contains(secret), "{secret} shown: {said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_online_says_a_reset_token_is_refused_and_stops_there() {
    let fake = FakeDiscord::start().await;
    fake.reset_token();
    let dir = tempfile::tempdir().unwrap();
    let output = patchbay(
        dir.path(),
        &format!(
            "[bot]\nguilds = [\"{}\"]\n[alerts]\nchannel = \"{MISSING_CHANNEL}\"\n",
            fake_discord::GUILD_ID
        ),
        &["check", "--online"],
        &fake,
        None,
        true,
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let said = text(&output.stderr);
    assert!(said.contains("online: 1 problem found"), "{said}");
    assert!(
        said.contains("DISCORD_TOKEN: Discord refused the token (401 Unauthorized) (fix: copy the bot's token again"),
        "{said}"
    );
    // One call, then nothing more asked with a token Discord refuses.
    assert_eq!(fake.requests().len(), 1, "{:?}", fake.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_prints_the_url_with_exactly_the_permissions_used() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let output = patchbay(dir.path(), "", &["invite"], &fake, None, true).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    // The application id asked of Discord; the permissions are View Channel, Send Messages,
    // Embed Links, Attach Files and Read Message History.
    assert_eq!(
        text(&output.stdout),
        format!(
            "https://discord.com/oauth2/authorize?client_id={}&scope=bot+applications.commands&permissions=117760\n",
            fake_discord::APP_ID
        )
    );
    let said = text(&output.stderr);
    for name in [
        "View Channel",
        "Send Messages",
        "Embed Links",
        "Attach Files",
        "Read Message History",
    ] {
        assert!(said.contains(&format!("  {name}: ")), "{name}: {said}");
    }

    // With the id given, no token is needed and Discord is not asked.
    let before = fake.requests().len();
    let given = patchbay(
        dir.path(),
        "",
        &["invite", "--client-id", "42"],
        &fake,
        None,
        false,
    )
    .await;
    assert!(given.status.success(), "{}", text(&given.stderr));
    assert!(text(&given.stdout).starts_with("https://discord.com/oauth2/authorize?client_id=42&"));
    assert_eq!(fake.requests().len(), before);

    // Without either, it says what to do.
    let neither = patchbay(dir.path(), "", &["invite"], &fake, None, false).await;
    assert_eq!(neither.status.code(), Some(1));
    assert!(
        text(&neither.stderr).contains("DISCORD_TOKEN is not set")
            && text(&neither.stderr).contains("--client-id"),
        "{}",
        text(&neither.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_warns_at_start_about_what_check_online_would_name() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("patchbay.toml");
    std::fs::write(
        &config,
        format!(
            "[bot]\nguilds = [\"{guild}\"]\n[alerts]\nchannel = \"{MISSING_CHANNEL}\"\n\
             [[grant]]\nrole = \"{MISSING_ROLE}\"\npermissions = [\"status.view\"]\n\
             [http]\nlisten = \"127.0.0.1:0\"\n",
            guild = fake_discord::GUILD_ID
        ),
    )
    .unwrap();
    let mut bot = Process::start(
        dir.path(),
        &config,
        &[
            ("DISCORD_TOKEN", "fake-token".to_string()),
            ("DISCORD_API_BASE", fake.api_base()),
            (
                "DATABASE_URL",
                format!("sqlite://{}", dir.path().join("patchbay.db").display()),
            ),
        ],
    );
    let channel = bot
        .logged(&[
            "Discord setup: channel 400000000000000404 does not exist",
            "alerts.channel",
        ])
        .await;
    assert!(channel.contains("Copy Channel ID"), "{channel}");
    let role = bot
        .logged(&[
            "Discord setup: role 300000000000000404 is not a role",
            "grant.role",
        ])
        .await;
    assert!(role.contains("WARN"), "{role}");
    let status = bot.terminate().await;
    assert!(status.success(), "{status:?}");
}
