//! A patchbay started through `app::start` (the wiring of `patchbay run`) against the fake
//! Discord, with a fresh SQLite file: what the alert tests drive, and the helpers they read the
//! fake's messages with.

use std::time::Duration;

use patchbay::app::{self, Running};
use patchbay::config::{self, Environment};
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

    /// Shuts patchbay down and checks that the fake saw nothing Discord would refuse.
    pub async fn stop(mut self) {
        let running = self.running.take().expect("running");
        running.shutdown().await;
        let violations = self.fake.violations();
        assert!(violations.is_empty(), "{violations:#?}");
    }
}

/// An integration checked every 100 ms that changes state on the first failing or passing
/// check.
pub fn integration(name: &str, upstream: &Upstream, extra: &str) -> String {
    format!(
        "[[integration]]\nname = \"{name}\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\n\
         failure_threshold = 1\nsuccess_threshold = 1\n{extra}\n",
        upstream.url()
    )
}

/// The config of a bot talking to `fake`, with `alerts` lines under `[alerts]` and the given
/// tables (integrations, routes, grants).
pub fn config_text(dir: &std::path::Path, alerts: &str, tables: &str) -> String {
    format!(
        "[bot]\nguilds = [\"{guild}\"]\ncommand_rate = \"1000/m\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\
         [storage]\nurl = \"sqlite://{db}\"\nflush_interval = \"20ms\"\n\
         [alerts]\nchannel = \"{ALERTS}\"\n{alerts}\n\
         [[grant]]\nrole = \"{ops}\"\npermissions = [\"alerts.manage\", \"status.recheck\"]\n\
         {tables}",
        guild = fake_discord::GUILD_ID,
        db = dir.join("patchbay.db").display(),
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
    let text = config_text(dir.path(), alerts, tables);
    let mut env = vec![("DISCORD_API_BASE", fake.api_base())];
    if bot {
        env.push(("DISCORD_TOKEN", "fake-token".to_string()));
    }
    if alerts.contains("webhook_env") {
        env.push(("TEST_ALERT_WEBHOOK", webhook));
    }
    let config = config::parse(&text, "alerts.toml", None, &Environment::from_pairs(env)).unwrap();
    let running = app::start(config).await.unwrap();
    if bot {
        fake.wait_ready().await;
    }
    Patchbay {
        running: Some(running),
        fake,
        dir,
    }
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
