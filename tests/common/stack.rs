//! A patchbay started through `app::start` (the wiring of `patchbay run`: store, writer, engine,
//! HTTP server, alert pipeline, dispatcher, Discord front) against the fake Discord, with a
//! fresh SQLite file: the one stack the Discord front's tests, the alert tests and the Discord
//! bench drive, and the helpers they read the fake's messages with.
//!
//! The stack writes `[http]` (port 0) and `[storage]` (its own SQLite file, flushed every
//! 20 ms) into the config; a caller writes the rest: [`start_bot`] takes `[bot]` lines and
//! tables, [`start`] and its kin the alert tests' `[alerts]` lines and tables, and
//! [`start_text`] a whole config.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use patchbay::app::{self, Running};
use patchbay::config::{self, Environment};
use patchbay::monitor::Engine;
use patchbay::service::ControlPlane;
use patchbay::store::Store;
use serde_json::Value;

use super::fake_discord::{self, FakeDiscord};
use super::upstream::Upstream;

pub const ALERTS: u64 = fake_discord::ALERT_CHANNEL_ID;
pub const ROUTED: u64 = fake_discord::ROUTE_CHANNEL_ID;

/// A running patchbay (the production wiring, `app::start`) with its fake Discord and the
/// folder of its SQLite file.
pub struct Patchbay {
    pub running: Option<Running>,
    pub fake: FakeDiscord,
    pub dir: tempfile::TempDir,
}

impl Patchbay {
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }

    pub fn store(&self) -> &Store {
        self.running().store()
    }

    pub fn engine(&self) -> &Engine {
        self.running().engine()
    }

    pub fn plane(&self) -> &Arc<ControlPlane> {
        self.running().plane()
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        db_path(self.dir.path())
    }

    /// Shuts patchbay down and checks that the fake saw nothing Discord would refuse. With a
    /// bot token, the Discord front must still be connected when the test ends (a front that
    /// stopped on an error of its own would have dropped its session) and gone after the
    /// shutdown.
    pub async fn stop(mut self) {
        let running = self.running.take().expect("running");
        let bot = running.plane().config().bot.token.is_some();
        if bot {
            self.fake
                .wait_gateway("the Discord front still connected at the end", |g| {
                    g.connected
                })
                .await;
        }
        running.shutdown().await;
        if bot {
            self.fake
                .wait_gateway("the gateway connection closed by the shutdown", |g| {
                    !g.connected
                })
                .await;
        }
        let violations = self.fake.violations();
        assert!(violations.is_empty(), "{violations:#?}");
    }
}

/// Where the stack keeps the SQLite file in `dir`.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("patchbay.db")
}

/// `text` with the stack's `[http]` (port 0) and `[storage]` (the file in `dir`) after it.
pub fn config_text(dir: &Path, text: &str) -> String {
    format!(
        "{text}\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [storage]\nurl = \"sqlite://{db}\"\nflush_interval = \"20ms\"\n",
        db = db_path(dir).display(),
    )
}

/// Starts patchbay through `app::start` on `text` (see [`config_text`]) in `dir`, against
/// `fake`: `DISCORD_API_BASE` points at the fake, `DISCORD_TOKEN` is set when `token`, and
/// `env` adds more variables. With a token, waits until the bot's gateway session is READY.
pub async fn start_text(
    fake: FakeDiscord,
    dir: tempfile::TempDir,
    text: &str,
    token: bool,
    env: Vec<(&str, String)>,
) -> Patchbay {
    let text = config_text(dir.path(), text);
    let mut pairs = vec![("DISCORD_API_BASE", fake.api_base())];
    if token {
        pairs.push(("DISCORD_TOKEN", "fake-token".to_string()));
    }
    pairs.extend(env);
    let config = config::parse(&text, "test.toml", None, &Environment::from_pairs(pairs)).unwrap();
    let running = app::start(config).await.unwrap();
    if token {
        fake.wait_ready().await;
    }
    Patchbay {
        running: Some(running),
        fake,
        dir,
    }
}

/// Starts a bot against a new fake Discord, with a fresh database, on `text`: its `[bot]`
/// table (with the fake's guild) and any other tables; what the Discord front's tests drive.
pub async fn start_bot(text: &str) -> Patchbay {
    let dir = tempfile::tempdir().unwrap();
    start_text(FakeDiscord::start().await, dir, text, true, Vec::new()).await
}

/// An integration checked every 100 ms that changes state on the first failing or passing
/// check.
pub fn integration(name: &str, upstream: &Upstream, extra: &str) -> String {
    format!(
        "[[integration]]\nname = \"{name}\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\n\
         failure_threshold = 1\nsuccess_threshold = 1\n{extra}\n",
        upstream.url("/health")
    )
}

/// The config of the alert tests' bot: `[alerts]` posting to [`ALERTS`] with the `alerts`
/// lines, a grant of `alerts.manage` and `status.recheck` to the ops role, and the given
/// tables (integrations, routes, grants).
pub fn alerts_config(alerts: &str, tables: &str) -> String {
    format!(
        "[bot]\nguilds = [\"{guild}\"]\ncommand_rate = \"1000/m\"\n\
         [alerts]\nchannel = \"{ALERTS}\"\n{alerts}\n\
         [[grant]]\nrole = \"{ops}\"\npermissions = [\"alerts.manage\", \"status.recheck\"]\n\
         {tables}",
        guild = fake_discord::GUILD_ID,
        ops = fake_discord::OPS_ROLE,
    )
}

pub async fn start(alerts: &str, tables: &str) -> Patchbay {
    start_with(alerts, tables, true).await
}

/// Starts patchbay; `bot` says whether it has a token (else alerts go through a webhook when
/// one is configured in `alerts`, or the log).
pub async fn start_with(alerts: &str, tables: &str, bot: bool) -> Patchbay {
    start_on(FakeDiscord::start().await, alerts, tables, bot).await
}

/// Starts patchbay, with a fresh database, against a fake Discord that may have served another
/// patchbay before.
pub async fn start_on(fake: FakeDiscord, alerts: &str, tables: &str, bot: bool) -> Patchbay {
    let dir = tempfile::tempdir().unwrap();
    let webhook = fake.create_webhook(ALERTS);
    let mut env = Vec::new();
    if alerts.contains("webhook_env") {
        env.push(("TEST_ALERT_WEBHOOK", webhook));
    }
    start_text(fake, dir, &alerts_config(alerts, tables), bot, env).await
}

/// The messages in `channel` other than interaction responses (button replies are ephemeral
/// messages in the same channel).
pub fn alert_messages(fake: &FakeDiscord, channel: u64) -> Vec<Value> {
    fake.channel_messages(channel)
        .into_iter()
        .filter(|m| {
            m["flags"].as_u64().unwrap_or(0) & 64 == 0 && m["interaction_metadata"].is_null()
        })
        .collect()
}

/// Waits until the outbox is empty (every delivery confirmed).
pub async fn drained(bot: &Patchbay) {
    let mut delivered = bot.running().alerts().delivered();
    let store = bot.running().store();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            delivered.borrow_and_update();
            if store.pending_deliveries().await.unwrap() == 0 {
                return;
            }
            delivered.changed().await.unwrap();
        }
    })
    .await
    .expect("the outbox drains within 20 s");
}

pub fn title(message: &Value) -> String {
    message["embeds"][0]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until the message `id`'s current version satisfies `pred`.
pub async fn wait_message(
    fake: &FakeDiscord,
    id: u64,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/messages/{id}");
    fake.wait_for_request(what, |r| {
        r.path.ends_with(&path) && r.method == "PATCH" && r.body.as_ref().is_some_and(&pred)
    })
    .await;
    fake.message(id).expect("the message exists")
}

pub fn message_id(message: &Value) -> u64 {
    fake_discord::snowflake(&message["id"]).unwrap()
}

/// Replies (type 19) in `channel` that reference `message`.
pub fn replies_to(fake: &FakeDiscord, channel: u64, message: u64) -> Vec<Value> {
    fake.channel_messages(channel)
        .into_iter()
        .filter(|m| fake_discord::snowflake(&m["message_reference"]["message_id"]) == Some(message))
        .collect()
}

/// Waits until the engine shows `integration` in `state` (it may be there already).
pub async fn wait_state(running: &Running, integration: &str, state: patchbay::model::State) {
    let engine = running.engine();
    let mut transitions = engine.subscribe();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let now = engine
                .snapshot()
                .into_iter()
                .find(|s| s.integration == integration)
                .map(|s| s.state);
            if now == Some(state) {
                return;
            }
            // Lagging loses nothing here: the snapshot is read again.
            let _ = transitions.recv().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{integration} is {state} within 20 s"));
}

/// The `custom_id` of button `index` in the first row of `message`.
pub fn button_id(message: &Value, index: usize) -> String {
    message["components"][0]["components"][index]["custom_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no button {index} in the first row: {message}"))
        .to_string()
}
