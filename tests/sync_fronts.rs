//! The sync jobs through their fronts and the running bot, against the fake Notion and the
//! fake Discord: `/sync run` (deferral, progress edits at most once a second, the summary),
//! denied without `sync.run` (audited), a concurrent trigger refused with who runs it,
//! `/sync list` and `/sync history`; `patchbay sync run|list` as a process, its exit codes,
//! and a `kill -9` mid-run followed by a rerun that duplicates nothing; the incident log
//! written through the alert pipeline across a Notion outage and a restart.

mod common;

use std::time::Duration;

use common::fake_discord::{self, FakeDiscord, FakeMember};
use common::fake_notion::{FakeNotion, Fault};
use common::process;
use common::stack::{self, Patchbay};
use common::upstream::Upstream;
use patchbay::audit::{AuditQuery, Outcome};
use serde_json::{Value, json};

const TOKEN: &str = "secret_fronts_token";

fn integrations(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[integration]]\nname = \"svc-{i:02}\"\nurl = \"http://127.0.0.1:9/\"\nenabled = false\n"
            )
        })
        .collect()
}

fn notion_env(fake: &FakeNotion) -> Vec<(&'static str, String)> {
    vec![
        ("NOTION_TOKEN", TOKEN.to_string()),
        ("NOTION_API_BASE", fake.api_base()),
    ]
}

/// The bot with `n` integrations, a status board on a fresh database, and `sync.run` granted
/// to the ops role.
async fn bot_with_board(n: usize) -> (Patchbay, FakeNotion, String) {
    let notion = FakeNotion::start(TOKEN).await;
    let (database, data_source) = notion.add_database_with_title_property("Board", "Name");
    let text = format!(
        "[bot]\nguilds = [\"{guild}\"]\ncommand_rate = \"1000/m\"\n\
         [[grant]]\nrole = \"{ops}\"\npermissions = [\"sync.run\"]\n\
         {integrations}\
         [[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{database}\"\n",
        guild = fake_discord::GUILD_ID,
        ops = fake_discord::OPS_ROLE,
        integrations = integrations(n),
    );
    let bot = stack::start_text(
        FakeDiscord::start().await,
        tempfile::tempdir().unwrap(),
        &text,
        true,
        notion_env(&notion),
    )
    .await;
    (bot, notion, data_source)
}

fn sync_run(job: &str, dry_run: bool) -> Value {
    let mut options = vec![json!({ "type": 3, "name": "job", "value": job })];
    if dry_run {
        options.push(json!({ "type": 5, "name": "dry_run", "value": true }));
    }
    json!([{ "type": 1, "name": "run", "options": options }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_run_defers_shows_progress_and_ends_with_the_summary() {
    let (bot, notion, data_source) = bot_with_board(6).await;
    let fake = &bot.fake;
    let id = fake
        .command("sync", sync_run("board", false), FakeMember::OPS)
        .await;
    assert_eq!(fake.callback_for(id).await["type"], 5, "deferred first");
    let original = fake.original_message(id).await;
    let message = original["id"].as_str().unwrap().parse::<u64>().unwrap();
    let history = fake
        .wait_for_version(message, "the summary", |m| {
            m["content"]
                .as_str()
                .unwrap_or_default()
                .contains("✅ **board** synced")
        })
        .await;
    let contents: Vec<&str> = history
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(
        contents
            .iter()
            .any(|c| c.contains("🔄 Syncing **board**") && c.contains("rows")),
        "{contents:#?}"
    );
    let summary = contents.last().unwrap();
    assert!(summary.contains("6 rows · 6 created"), "{summary}");
    assert!(summary.contains("Notion requests"), "{summary}");
    assert!(summary.contains("Added properties: Status"), "{summary}");
    assert_eq!(notion.pages(&data_source).len(), 6);
    // Progress edits come at most once a second (the summary may follow the last at once).
    let edits: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/messages/@original"))
        .collect();
    for pair in edits[..edits.len() - 1].windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(950),
            "progress edits {gap:?} apart"
        );
    }
    // Audited as sync run, ok, with the permission it needed.
    let page = bot
        .store()
        .audit_page(&AuditQuery {
            actor_id: None,
            command: Some("sync run".into()),
            outcome: None,
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].outcome, Outcome::Ok);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_run_without_the_permission_is_denied_privately_and_audited() {
    let (bot, notion, data_source) = bot_with_board(2).await;
    let fake = &bot.fake;
    let id = fake
        .command("sync", sync_run("board", false), FakeMember::NOBODY)
        .await;
    let followup = fake.first_followup(id).await;
    assert_eq!(followup["flags"], 64, "ephemeral");
    assert!(
        followup["content"]
            .as_str()
            .unwrap()
            .contains("you need the `sync.run` permission"),
        "{followup}"
    );
    assert!(notion.pages(&data_source).is_empty());
    assert!(notion.requests().is_empty(), "nothing reached Notion");
    let page = bot
        .store()
        .audit_page(&AuditQuery {
            actor_id: None,
            command: Some("sync run".into()),
            outcome: Some(Outcome::Denied),
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(
        page.entries[0].permission,
        Some(patchbay::access::Permission::SyncRun)
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_trigger_is_told_who_runs_the_job_and_where_to_watch() {
    let (bot, notion, _) = bot_with_board(2).await;
    let fake = &bot.fake;
    // The first run waits on Notion long enough for a second trigger to arrive.
    notion.inject("/v1/databases/", Fault::Delay(Duration::from_secs(3)), 1);
    let first = fake
        .command("sync", sync_run("board", false), FakeMember::OPS)
        .await;
    fake.original_message(first).await;
    // The run takes its lease before it calls Notion.
    notion.wait_requests(1).await;
    let second = fake
        .command("sync", sync_run("board", false), FakeMember::OWNER)
        .await;
    let refusal = fake.first_followup(second).await;
    let text = refusal["content"].as_str().unwrap();
    assert!(
        text.contains("**board** is already running, started by <@"),
        "{text}"
    );
    assert!(
        text.contains("watch it at https://discord.com/channels/"),
        "{text}"
    );
    assert_eq!(refusal["flags"], 64);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_list_and_history_show_the_runs() {
    let (bot, _notion, _) = bot_with_board(2).await;
    let fake = &bot.fake;
    let id = fake
        .command("sync", sync_run("board", true), FakeMember::OPS)
        .await;
    let original = fake.original_message(id).await;
    let message = original["id"].as_str().unwrap().parse::<u64>().unwrap();
    fake.wait_for_version(message, "the dry run's summary", |m| {
        m["content"]
            .as_str()
            .unwrap_or_default()
            .contains("🧪 Dry run of **board**")
    })
    .await;
    let id = fake
        .command(
            "sync",
            json!([{ "type": 1, "name": "list", "options": [] }]),
            FakeMember::NOBODY,
        )
        .await;
    let list = fake.callback_for(id).await;
    let field = &list["data"]["embeds"][0]["fields"][0];
    assert_eq!(field["name"], "board · notion-status-board · on demand");
    assert!(
        field["value"].as_str().unwrap().contains("🧪 dry run"),
        "{field}"
    );
    let id = fake
        .command(
            "sync",
            json!([{ "type": 1, "name": "history", "options": [{ "type": 3, "name": "job", "value": "board" }] }]),
            FakeMember::NOBODY,
        )
        .await;
    let history = fake.callback_for(id).await;
    let embed = &history["data"]["embeds"][0];
    assert_eq!(embed["title"], "Runs of board");
    assert!(
        embed["footer"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Page 1 of 1 · 1 runs")
    );
    // An unknown job gets the names there are.
    let id = fake
        .command(
            "sync",
            json!([{ "type": 1, "name": "history", "options": [{ "type": 3, "name": "job", "value": "bord" }] }]),
            FakeMember::NOBODY,
        )
        .await;
    let reply = fake.callback_for(id).await;
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap()
            .contains("there is no sync job named \"bord\"; did you mean board?"),
        "{reply}"
    );
    bot.stop().await;
}

/// A config file in `dir` with `n` disabled integrations and a status board on `database`.
fn config_file(dir: &std::path::Path, n: usize, database: &str) -> std::path::PathBuf {
    let path = dir.join("patchbay.toml");
    std::fs::write(
        &path,
        format!(
            "{}[[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{database}\"\n\
             [storage]\nurl = \"sqlite://{}\"\n",
            integrations(n),
            dir.join("patchbay.db").display()
        ),
    )
    .unwrap();
    path
}

fn cli(
    dir: &std::path::Path,
    config: &std::path::Path,
    notion: &FakeNotion,
) -> std::process::Command {
    let mut command = process::command(dir, config);
    for (key, value) in notion_env(notion) {
        command.env(key, value);
    }
    command
}

/// Runs `patchbay <args>` to the end (off the runtime's threads) and returns its output.
async fn cli_output(
    dir: &std::path::Path,
    config: &std::path::Path,
    notion: &FakeNotion,
    args: &[&str],
) -> std::process::Output {
    let mut command = cli(dir, config, notion);
    command.args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_a_job_with_a_summary_and_exit_codes() {
    let notion = FakeNotion::start(TOKEN).await;
    let (database, data_source) = notion.add_database_with_title_property("Board", "Name");
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), 3, &database);
    let output = cli_output(dir.path(), &config, &notion, &["sync", "run", "board"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("board synced in"), "{stdout}");
    assert!(stdout.contains("3 rows · 3 created"), "{stdout}");
    assert!(stderr.contains("syncing board: 100%"), "{stderr}");
    assert_eq!(notion.pages(&data_source).len(), 3);

    let output = cli_output(dir.path(), &config, &notion, &["sync", "list"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("board  notion-status-board  on demand"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(command line): ok · 3 rows · 3 created"),
        "{stdout}"
    );

    // A failing run exits 1 and says what to do: the job pointed at a database whose Tags
    // property is a number.
    let (other, other_source) = notion.add_database_with_title_property("Other", "Name");
    notion.set_property(&other_source, "Tags", json!({ "number": {} }));
    let config = config_file(dir.path(), 3, &other);
    let output = cli_output(dir.path(), &config, &notion, &["sync", "run", "board"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("\"Tags\" is a number property"), "{stdout}");
    assert!(stdout.contains("what to do: "), "{stdout}");
    assert!(notion.pages(&other_source).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_is_finished_by_the_next_without_duplicates() {
    let notion = FakeNotion::start(TOKEN).await;
    let (database, data_source) = notion.add_database_with_title_property("Board", "Name");
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), 30, &database);
    let mut child = cli(dir.path(), &config, &notion)
        .args(["sync", "run", "board"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    notion.wait_pages(&data_source, 8).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let created_before = notion.pages(&data_source).len();
    assert!(
        created_before < 30,
        "killed mid-way ({created_before} pages)"
    );
    // The lease of the dead process is taken over at once; the rerun finishes the board.
    let output = cli_output(dir.path(), &config, &notion, &["sync", "run", "board"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut titles: Vec<String> = notion
        .pages(&data_source)
        .iter()
        .map(common::fake_notion::FakePage::title)
        .collect();
    titles.sort();
    let before = titles.len();
    titles.dedup();
    assert_eq!(before, 30, "one page per integration");
    assert_eq!(titles.len(), 30, "no duplicate titles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_log_follows_incidents_through_an_outage_and_a_restart() {
    let notion = FakeNotion::start(TOKEN).await;
    let (database, data_source) = notion.add_database_with_title_property("Incidents", "Title");
    let api = Upstream::start().await;
    let other = Upstream::start().await;
    let text = format!(
        "[alerts]\nchannel = \"{channel}\"\n{}{}[[sync]]\nname = \"incidents\"\nkind = \"notion-incident-log\"\ndatabase_id = \"{database}\"\n",
        stack::integration("api", &api, ""),
        stack::integration("other", &other, ""),
        channel = stack::ALERTS,
    );
    let dir = tempfile::tempdir().unwrap();
    let bot = stack::start_text(
        FakeDiscord::start().await,
        dir,
        &text,
        false,
        notion_env(&notion),
    )
    .await;

    let mut changes = bot.running().alerts().changes();
    api.break_it();
    let pages = notion.wait_pages(&data_source, 1).await;
    let page = &pages[0];
    assert!(
        page.title().starts_with("[DOWN] api — "),
        "{}",
        page.title()
    );
    assert_eq!(page.prop_text("Status").as_deref(), Some("Open"));
    assert_eq!(page.prop_text("Integration").as_deref(), Some("api"));
    let blocks = notion.children(&page.id);
    assert_eq!(blocks[0]["type"], "callout");
    let opened = timeline(&notion, &page.id);
    assert_eq!(opened.len(), 1);
    assert!(opened[0].contains("Opened: DOWN"), "{opened:?}");

    // Acknowledged: an entry, and the status follows.
    let notice = bot.store().open_incidents().await.unwrap()[0]
        .notice
        .unwrap();
    bot.plane()
        .acknowledge(
            notice,
            &patchbay::model::Actor::Cli {
                user: "alice".into(),
            },
        )
        .await
        .unwrap();
    notion
        .wait_page(&page.id, "the page acknowledged", |p| {
            p.prop_text("Status").as_deref() == Some("Acknowledged")
        })
        .await;

    // Notion goes down; the incident resolves meanwhile; nothing is lost.
    notion.set_outage(true);
    api.heal();
    while !bot.store().open_incidents().await.unwrap().is_empty() {
        changes.changed().await.unwrap();
    }
    // The log tried to write the resolution and met the outage.
    notion
        .wait_request("an append refused by the outage", |r| r.status == 503)
        .await;
    notion.set_outage(false);
    notion.wait_children(&page.id, 5).await; // callout, heading, opened, acknowledged, resolved
    let entries = timeline(&notion, &page.id);
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(entries[1].contains("Acknowledged by alice"), "{entries:?}");
    assert!(entries[2].contains("Resolved after"), "{entries:?}");
    let page = notion
        .wait_page(&page.id, "the page marked resolved", |p| {
            p.prop_text("Status").as_deref() == Some("Resolved")
        })
        .await;
    assert!(page.prop_text("Resolved").is_some());
    assert!(page.prop_text("Duration").is_some());

    // A restart neither repeats nor skips: the next incident's page comes, the first page is
    // as it was.
    let Patchbay { running, fake, dir } = bot;
    running.unwrap().shutdown().await;
    let bot = stack::start_text(fake, dir, &text, false, notion_env(&notion)).await;
    other.break_it();
    notion.wait_pages(&data_source, 2).await;
    assert_eq!(timeline(&notion, &page.id), entries);
    assert_eq!(notion.pages(&data_source).len(), 2);
    assert!(notion.violations().is_empty(), "{:#?}", notion.violations());
    bot.stop().await;
}

/// The bulleted entries of a page's timeline, in order.
fn timeline(notion: &FakeNotion, page: &str) -> Vec<String> {
    notion
        .children(page)
        .iter()
        .filter(|b| b["type"] == "bulleted_list_item")
        .map(|b| {
            b["bulleted_list_item"]["rich_text"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    t["plain_text"]
                        .as_str()
                        .or(t["text"]["content"].as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
        })
        .collect()
}

/// Awaits `name` in state `to` (already, or by a transition on `events`, subscribed before
/// looking) and returns its state.
async fn state_of(
    bot: &Patchbay,
    events: &mut tokio::sync::broadcast::Receiver<patchbay::model::Transition>,
    name: &str,
    to: patchbay::model::State,
) -> patchbay::model::IntegrationState {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(state) = bot.engine().state(name)
                && state.state == to
            {
                return state;
            }
            events.recv().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never became {to:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notion_integration_checks_the_token_and_shows_what_it_spent_in_metrics() {
    use patchbay::model::State;
    let notion = FakeNotion::start(TOKEN).await;
    let text = "[[integration]]\nname = \"notion\"\nkind = \"notion\"\ninterval = \"200ms\"\n\
                timeout = \"200ms\"\nfailure_threshold = 1\nsuccess_threshold = 1\n\
                [[integration]]\nname = \"notion-other\"\nkind = \"notion\"\ntoken = \"env:OTHER_NOTION_TOKEN\"\n\
                interval = \"200ms\"\ntimeout = \"200ms\"\nfailure_threshold = 1\nsuccess_threshold = 1\n";
    let mut env = notion_env(&notion);
    env.push(("OTHER_NOTION_TOKEN", "secret_revoked".to_string()));
    let dir = tempfile::tempdir().unwrap();
    let bot = stack::start_text(FakeDiscord::start().await, dir, text, false, env).await;
    let mut events = bot.engine().subscribe();
    state_of(&bot, &mut events, "notion", State::Up).await;
    let down = state_of(&bot, &mut events, "notion-other", State::Down).await;
    let message = down.last_check.unwrap().message.unwrap_or_default();
    assert!(message.contains("check OTHER_NOTION_TOKEN"), "{message}");
    assert!(!message.contains("secret_revoked"), "{message}");
    // A rate-limited check counts in the metrics like any request.
    notion.inject(
        "/v1/users/me",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        1,
    );
    // The 429 fails one check (the threshold is one), and the check's result comes after the
    // client counted its request.
    state_of(&bot, &mut events, "notion", State::Down).await;
    let metrics = reqwest::get(format!("http://{}/metrics", bot.running().address()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        count("patchbay_notion_requests_total{outcome=\"ok\",token=\"NOTION_TOKEN\"}") >= 1.0,
        "{metrics}"
    );
    assert!(
        count("patchbay_notion_requests_total{outcome=\"auth\",token=\"OTHER_NOTION_TOKEN\"}")
            >= 1.0,
        "{metrics}"
    );
    assert!(
        count("patchbay_notion_requests_total{outcome=\"rate_limited\",token=\"NOTION_TOKEN\"}")
            >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("patchbay_circuit_state{state=\"closed\",upstream=\"notion\"} 1"),
        "{metrics}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_runs_on_its_own_as_the_scheduler_and_is_audited() {
    let notion = FakeNotion::start(TOKEN).await;
    let (database, data_source) = notion.add_database_with_title_property("Board", "Name");
    let text = format!(
        "{}[[sync]]\nname = \"board\"\nkind = \"notion-status-board\"\ndatabase_id = \"{database}\"\nevery = \"1h\"\n",
        integrations(2)
    );
    let dir = tempfile::tempdir().unwrap();
    let bot = stack::start_text(
        FakeDiscord::start().await,
        dir,
        &text,
        false,
        notion_env(&notion),
    )
    .await;
    // It never ran, so it is due at start; its audit entry comes when it ends.
    let (sink, mut audited) = tokio::sync::mpsc::unbounded_channel();
    bot.plane().mirror_audit(sink);
    let entry = tokio::time::timeout(Duration::from_secs(20), audited.recv())
        .await
        .expect("the scheduled run is audited")
        .unwrap();
    assert_eq!(entry.command, "sync run");
    assert_eq!(entry.outcome, Outcome::Ok);
    assert_eq!(
        entry.actor,
        patchbay::model::Actor::Scheduler {
            job: "board".into()
        }
    );
    assert_eq!(notion.pages(&data_source).len(), 2);
    let (runs, total) = bot.store().sync_runs("board", 0, 10).await.unwrap();
    assert_eq!(total, 1, "one run, not one per wake-up: {runs:?}");
    assert_eq!(runs[0].actor, entry.actor);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grouped_alert_is_still_one_page_per_incident() {
    let notion = FakeNotion::start(TOKEN).await;
    let (database, data_source) = notion.add_database_with_title_property("Incidents", "Title");
    let shared = Upstream::start().await;
    let text = format!(
        "[alerts]\nchannel = \"{channel}\"\ngroup_wait = \"5s\"\n{}{}\
         [[sync]]\nname = \"incidents\"\nkind = \"notion-incident-log\"\ndatabase_id = \"{database}\"\n",
        stack::integration("db-primary", &shared, ""),
        stack::integration("db-replica", &shared, ""),
        channel = stack::ALERTS,
    );
    let dir = tempfile::tempdir().unwrap();
    let bot = stack::start_text(
        FakeDiscord::start().await,
        dir,
        &text,
        false,
        notion_env(&notion),
    )
    .await;
    shared.break_it();
    let pages = notion.wait_pages(&data_source, 2).await;
    let mut titles: Vec<String> = pages
        .iter()
        .map(common::fake_notion::FakePage::title)
        .collect();
    titles.sort();
    assert!(titles[0].starts_with("[DOWN] db-primary — "), "{titles:?}");
    assert!(titles[1].starts_with("[DOWN] db-replica — "), "{titles:?}");
    // Both incidents are on one notice (one Discord message).
    let open = bot.store().open_incidents().await.unwrap();
    assert_eq!(open.len(), 2);
    assert!(open[0].notice.is_some());
    assert_eq!(open[0].notice, open[1].notice, "grouped into one alert");
    bot.stop().await;
}
