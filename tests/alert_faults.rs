//! Alert delivery under faults, end to end: the real wiring (`app::start`), the real dispatcher
//! and courier, the fake Discord answering as Discord does (`enforce_nonce`, 429s with buckets)
//! and failing on purpose: answers lost after Discord did the work, answers cut mid-body,
//! requests that hang, rate limits on one route, a database started afresh. Each test is the
//! regression test of one way an alert message could end up stale, late, parked or said twice.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::fake_discord::{self, Fault};
use common::stack::*;
use common::upstream::Upstream;
use patchbay::model::State;
use patchbay::model::{Actor, Snowflake};
use serde_json::Value;

fn messages_path(channel: u64) -> String {
    format!("/channels/{channel}/messages")
}

/// The whole `/metrics` exposition.
async fn scrape(bot: &Patchbay) -> String {
    reqwest::get(format!("http://{}/metrics", bot.running().address()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Reads one sample of `/metrics` (the value of the series whose line starts with `series`).
async fn metric(bot: &Patchbay, series: &str) -> f64 {
    let text = scrape(bot).await;
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits for the engine to announce `integration` going to `to`.
async fn transition_to(
    transitions: &mut tokio::sync::broadcast::Receiver<patchbay::model::Transition>,
    integration: &str,
    to: State,
) {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let t = transitions.recv().await.unwrap();
            if t.integration == integration && t.to == to {
                return;
            }
        }
    })
    .await
    .expect("the transition within 20 s");
}

/// Bug: a post whose answer was lost is retried with the same nonce; Discord answers with the
/// message the first attempt created, still showing DOWN; the incident resolved meanwhile, and
/// the dispatcher took that answer as showing the current view and completed the pending edit
/// unsent. The message kept "is DOWN" and its buttons forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_answered_with_an_older_rendering_is_edited_to_the_current_state() {
    let upstream = Upstream::start().await;
    let bot = start("", &integration("payments-api", &upstream, "")).await;
    let fake = &bot.fake;
    let mut transitions = bot.running().engine().subscribe();
    upstream.wait_hits(2).await;
    // Discord creates the message, but its answer never arrives.
    fake.inject(Fault::Lost, "POST", &messages_path(ALERTS), 1);
    upstream.break_it();
    fake.wait_for_attempts("POST", &messages_path(ALERTS), 1)
        .await;
    // The incident resolves before the post's retry.
    upstream.heal();
    transition_to(&mut transitions, "payments-api", State::Up).await;
    drained(&bot).await;
    let posts = fake.attempts("POST", &messages_path(ALERTS));
    // The retry carried the same nonce and met the first message.
    assert_eq!(
        posts[0].body.as_ref().unwrap()["nonce"],
        posts[1].body.as_ref().unwrap()["nonce"]
    );
    let messages = alert_messages(fake, ALERTS);
    let alert = messages
        .iter()
        .find(|m| m["message_reference"].is_null())
        .expect("the alert message");
    assert!(
        title(alert).contains("resolved"),
        "the message shows the incident as it is now: {alert}"
    );
    assert!(
        common::custom_ids(alert).is_empty(),
        "a resolved alert keeps no buttons: {alert}"
    );
    // One message and one "Resolved after" reply: nothing said twice.
    assert_eq!(messages.len(), 2, "{messages:#?}");
    bot.stop().await;
}

/// Bug: an answer cut mid-body was classified as a bad response, which the dispatcher took for a
/// refusal: the notice was parked for 10 minutes, its resolution behind it, and the log blamed
/// the channel's permissions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_cut_mid_body_are_retried_at_once_not_parked() {
    let upstream = Upstream::start().await;
    let bot = start("", &integration("payments-api", &upstream, "")).await;
    let fake = &bot.fake;
    upstream.wait_hits(2).await;
    fake.inject(Fault::Cut, "POST", &messages_path(ALERTS), 1);
    fake.inject(Fault::Cut, "PATCH", &messages_path(ALERTS), 1);
    upstream.break_it();
    let posts = fake
        .wait_for_attempts("POST", &messages_path(ALERTS), 2)
        .await;
    assert!(
        posts[1].at - posts[0].at < Duration::from_secs(5),
        "the cut post is retried like a dropped connection, not after 10 minutes"
    );
    let id = fake_discord::snowflake(&alert_messages(fake, ALERTS)[0]["id"]).unwrap();
    upstream.heal();
    let edits = fake
        .wait_for_attempts("PATCH", &format!("{}/{id}", messages_path(ALERTS)), 2)
        .await;
    assert!(edits[1].at - edits[0].at < Duration::from_secs(5));
    drained(&bot).await;
    let messages = alert_messages(fake, ALERTS);
    assert_eq!(messages.len(), 2, "one alert and its reply: {messages:#?}");
    assert!(title(&fake.message(id).unwrap()).contains("resolved"));
    assert_eq!(
        metric(&bot, "patchbay_alert_deliveries_total{outcome=\"refused\"}").await,
        0.0,
        "a cut answer is no refusal"
    );
    bot.stop().await;
}

/// Bug: the dispatcher delivered one row at a time, so one request hanging until the timeout
/// held every other channel's alerts behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_channel_does_not_hold_back_alerts_to_other_channels() {
    let (stuck, other) = (Upstream::start().await, Upstream::start().await);
    let routes = format!(
        "[[alerts.route]]\nmatch = {{ integrations = [\"ledger\"] }}\nchannel = \"{ROUTED}\"\n"
    );
    let tables = format!(
        "{routes}{}{}",
        integration("ledger", &stuck, ""),
        integration("search", &other, ""),
    );
    let bot = start("", &tables).await;
    let fake = &bot.fake;
    stuck.wait_hits(2).await;
    other.wait_hits(2).await;
    fake.inject(Fault::Hang, "POST", &messages_path(ROUTED), 1000);
    stuck.break_it();
    let hung = fake
        .wait_for_attempts("POST", &messages_path(ROUTED), 1)
        .await;
    other.break_it();
    let posted = fake
        .wait_for_attempts("POST", &messages_path(ALERTS), 1)
        .await;
    assert!(
        posted[0].at - hung[0].at < Duration::from_secs(5),
        "the other channel's alert went out while the first request hung (10 s timeout): {:?}",
        posted[0].at - hung[0].at
    );
    bot.stop().await;
}

/// A 429 on one route pauses that route's bucket only; a global 429 pauses everything (the fake
/// records a violation for any request inside a window it announced, checked by `stop`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_on_one_channel_pauses_only_that_channel() {
    let (limited, other) = (Upstream::start().await, Upstream::start().await);
    let routes = format!(
        "[[alerts.route]]\nmatch = {{ integrations = [\"ledger\"] }}\nchannel = \"{ROUTED}\"\n"
    );
    let tables = format!(
        "{routes}{}{}",
        integration("ledger", &limited, ""),
        integration("search", &other, ""),
    );
    let bot = start("", &tables).await;
    let fake = &bot.fake;
    limited.wait_hits(2).await;
    other.wait_hits(2).await;
    fake.inject(
        Fault::RateLimited {
            retry_after: 4.0,
            global: false,
        },
        "POST",
        &messages_path(ROUTED),
        1,
    );
    limited.break_it();
    let refused = fake
        .wait_for_attempts("POST", &messages_path(ROUTED), 1)
        .await;
    other.break_it();
    let posted = fake
        .wait_for_attempts("POST", &messages_path(ALERTS), 1)
        .await;
    assert!(
        posted[0].at - refused[0].at < Duration::from_secs(4),
        "the other channel did not wait out the routed channel's 429"
    );
    // The routed channel's alert follows once its window ends, and only then.
    let routed = fake
        .wait_for_attempts("POST", &messages_path(ROUTED), 2)
        .await;
    assert!(routed[1].at - routed[0].at >= Duration::from_secs(4));
    assert_eq!(routed[1].status, Some(200));

    // A global 429 holds every channel until it ends.
    fake.inject(
        Fault::RateLimited {
            retry_after: 2.0,
            global: true,
        },
        "PATCH",
        &messages_path(ROUTED),
        1,
    );
    limited.heal();
    let global = fake
        .wait_for_request("the global 429", |r| {
            r.status == Some(429) && r.method == "PATCH"
        })
        .await;
    other.heal();
    let after = fake
        .wait_for_request("a request after the global 429", |r| r.at > global.at)
        .await;
    assert!(after.at - global.at >= Duration::from_secs(2));
    drained(&bot).await;
    bot.stop().await;
}

/// Webhooks take no nonce and cannot list their channel, so a webhook post whose answer is lost
/// may be posted twice when retried: counted as ambiguous, never silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_post_with_a_lost_answer_is_counted_ambiguous() {
    let upstream = Upstream::start().await;
    let bot = start_with(
        "webhook_env = \"TEST_ALERT_WEBHOOK\"",
        &integration("payments-api", &upstream, ""),
        false,
    )
    .await;
    let fake = &bot.fake;
    upstream.wait_hits(2).await;
    fake.inject(Fault::Cut, "POST", "/webhooks", 1);
    upstream.break_it();
    fake.wait_for_attempts("POST", "/webhooks", 2).await;
    drained(&bot).await;
    // At least once: the first attempt's message exists, and so does the retry's.
    assert_eq!(alert_messages(fake, ALERTS).len(), 2);
    assert_eq!(
        metric(
            &bot,
            "patchbay_alert_deliveries_total{outcome=\"ambiguous\"}"
        )
        .await,
        1.0
    );
    // The webhook courier's breaker shows as well: the same `discord` upstream.
    assert_eq!(metric(&bot, DISCORD_CLOSED).await, 1.0);
    bot.stop().await;
}

/// Bug: the nonce was `pb-<row id>`, so a fresh database's first alert reused `pb-1`, and within
/// Discord's nonce window came back as the old installation's message instead of being posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_database_never_reuses_an_earlier_nonce() {
    let upstream = Upstream::start().await;
    let first = start("", &integration("payments-api", &upstream, "")).await;
    upstream.wait_hits(2).await;
    upstream.break_it();
    first.fake.wait_for_messages(ALERTS, 1).await;
    let Patchbay {
        running,
        fake,
        dir: _dir,
    } = first;
    running.unwrap().shutdown().await;
    upstream.heal();
    let second = start_on(fake, "", &integration("ledger", &upstream, ""), true).await;
    wait_state(second.running(), "ledger", State::Up).await;
    upstream.break_it();
    let messages = second.fake.wait_for_messages(ALERTS, 2).await;
    assert!(
        messages.iter().any(|m| title(m).contains("ledger is DOWN")),
        "the second installation's alert is a message of its own: {messages:#?}"
    );
    let nonces: Vec<Value> = second
        .fake
        .attempts("POST", &messages_path(ALERTS))
        .iter()
        .map(|r| r.body.as_ref().unwrap()["nonce"].clone())
        .collect();
    assert_ne!(nonces[0], nonces[nonces.len() - 1]);
    second.stop().await;
}

/// Bug: silence expiries were looked at every 15 s, so an incident held back by a silence could
/// be posted up to 15 s after the silence ended. It is now posted when the silence ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_held_by_a_silence_is_posted_when_the_silence_ends() {
    let upstream = Upstream::start().await;
    let bot = start("", &integration("payments-api", &upstream, "")).await;
    let fake = &bot.fake;
    upstream.wait_hits(2).await;
    let mut transitions = bot.running().engine().subscribe();
    let length = Duration::from_secs(3);
    let silenced_at = Instant::now();
    bot.running()
        .alerts()
        .silence(
            "payments-api",
            length,
            "deploy",
            &Actor::Discord {
                user: Snowflake(fake_discord::OPS_USER_ID),
                name: "ops".into(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    upstream.break_it();
    transition_to(&mut transitions, "payments-api", State::Down).await;
    let posted = fake
        .wait_for_attempts("POST", &messages_path(ALERTS), 1)
        .await;
    let late = posted[0].at.saturating_duration_since(silenced_at + length);
    assert!(
        posted[0].at
            >= (silenced_at + length)
                .checked_sub(Duration::from_millis(50))
                .unwrap(),
        "nothing is posted while the silence holds"
    );
    assert!(
        late < Duration::from_secs(2),
        "posted {late:?} after the silence ended"
    );
    bot.stop().await;
}

const DISCORD_CLOSED: &str = "patchbay_circuit_state{state=\"closed\",upstream=\"discord\"}";
const DISCORD_OPEN: &str = "patchbay_circuit_state{state=\"open\",upstream=\"discord\"}";

/// Bug: the courier's circuit breaker was never registered with the metrics, so
/// `patchbay_circuit_state` was empty in production. The `discord` upstream shows from
/// start-up, closed; when Discord answers every post with a 503, ten faults in a row open it,
/// and the next scrape says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discord_breaker_shows_in_metrics_and_opens_when_discord_fails() {
    let upstream = Upstream::start().await;
    // One notice per incident (no grouping), so a dozen posts fail side by side instead of one
    // row backing off for minutes.
    let names: Vec<String> = (0..12).map(|i| format!("svc-{i}")).collect();
    let tables: String = names
        .iter()
        .map(|name| integration(name, &upstream, ""))
        .collect();
    let bot = start("group_wait = \"0\"", &tables).await;
    let text = scrape(&bot).await;
    assert!(text.contains(&format!("{DISCORD_CLOSED} 1")), "{text}");
    assert!(text.contains(&format!("{DISCORD_OPEN} 0")), "{text}");

    for name in &names {
        wait_state(bot.running(), name, State::Up).await;
    }
    let fake = &bot.fake;
    fake.inject(Fault::Server(503), "POST", &messages_path(ALERTS), 1000);
    upstream.break_it();
    fake.wait_for_attempts("POST", &messages_path(ALERTS), 10)
        .await;
    // The tenth answer reaches the breaker just after the fake records it; the metric is read
    // at scrape time, so scrape until it shows.
    tokio::time::timeout(Duration::from_secs(20), async {
        while metric(&bot, DISCORD_OPEN).await != 1.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the discord breaker opens within 20 s");
    assert_eq!(metric(&bot, DISCORD_CLOSED).await, 0.0);
    // Every failed post was a 503, retried: none was taken for a refusal.
    assert_eq!(
        metric(&bot, "patchbay_alert_deliveries_total{outcome=\"refused\"}").await,
        0.0
    );
    bot.stop().await;
}
