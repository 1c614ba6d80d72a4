//! Alerts end to end: the real wiring of `patchbay run` (`app::start`: engine, alert pipeline,
//! outbox dispatcher, Discord front) against real HTTP upstreams that the tests flip between
//! healthy and failing, a fake Discord on 127.0.0.1 (REST and gateway), and a real SQLite file.
//! Time-driven behaviour (reminders) is driven through `Alerts::tick` with a given clock.

mod common;

use common::custom_ids;

use std::time::Duration;

use common::fake_discord::{self, FakeMember, Fault};
use common::upstream::Upstream;
use serde_json::{Value, json};

use common::stack::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_one_message_edited_in_place_then_one_reply_on_recovery() {
    let upstream = Upstream::start().await;
    let bot = start(
        "",
        &integration("payments-api", &upstream, "tags = [\"payments\"]"),
    )
    .await;
    let fake = &bot.fake;
    // Healthy first: no alert for UNKNOWN → UP.
    upstream.wait_hits(2).await;
    upstream.break_it();
    let posted = fake.wait_for_messages(ALERTS, 1).await;
    let alert = &posted[0];
    assert!(title(alert).contains("payments-api is DOWN"), "{alert}");
    assert_eq!(
        custom_ids(alert),
        ["pb:alert:ack:1", "pb:alert:silence:1", "pb:alert:recheck:1"]
    );
    let id = message_id(alert);
    upstream.heal();
    let resolved = wait_message(fake, id, "the message edited to resolved", |body| {
        body["embeds"][0]["title"]
            .as_str()
            .unwrap_or("")
            .contains("resolved")
    })
    .await;
    assert!(custom_ids(&resolved).is_empty(), "buttons go: {resolved}");
    fake.wait_for_messages(ALERTS, 2).await;
    let replies = replies_to(fake, ALERTS, id);
    assert_eq!(replies.len(), 1);
    assert!(
        replies[0]["content"]
            .as_str()
            .unwrap()
            .contains("Resolved after"),
        "{}",
        replies[0]
    );
    // Exactly one alert message and one reply: nothing said twice.
    drained(&bot).await;
    assert_eq!(alert_messages(fake, ALERTS).len(), 2);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_one_route_is_one_message_and_routes_pick_the_channel() {
    let (a, b, c, d) = (
        Upstream::start().await,
        Upstream::start().await,
        Upstream::start().await,
        Upstream::start().await,
    );
    for upstream in [&a, &b, &c, &d] {
        upstream.break_it();
    }
    let routes = format!(
        "[[alerts.route]]\nmatch = {{ tags = [\"payments\"] }}\nchannel = \"{ROUTED}\"\nmention = [\"{}\"]\n",
        fake_discord::OPS_ROLE
    );
    let tables = format!(
        "{}{}{}{}",
        integration("search", &a, ""),
        integration("ledger", &b, ""),
        integration("mailer", &c, ""),
        integration("payments-api", &d, "tags = [\"payments\"]"),
    );
    let bot = start(&format!("group_wait = \"10s\"\n{routes}"), &tables).await;
    let fake = &bot.fake;
    // The three unrouted integrations share one message in the default channel...
    fake.wait_for_request("the grouped message", |r| {
        r.path.contains(&format!("/channels/{ALERTS}/messages"))
            && r.body.as_ref().is_some_and(|b| {
                b["embeds"][0]["title"]
                    .as_str()
                    .unwrap_or("")
                    .contains("3 integrations down")
            })
    })
    .await;
    assert_eq!(alert_messages(fake, ALERTS).len(), 1);
    // Edits in one channel are spaced (Discord allows 5 per 5 s): the pending ones coalesce.
    let edits = fake.attempts("PATCH", &format!("/channels/{ALERTS}/messages"));
    for pair in edits.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(1200), "edits {gap:?} apart");
    }
    // ...and the payments one goes to its route, mentioning the route's role.
    let routed = fake.wait_for_messages(ROUTED, 1).await;
    assert!(title(&routed[0]).contains("payments-api"), "{}", routed[0]);
    let posts = fake.attempts("POST", &format!("/channels/{ROUTED}/messages"));
    let body = posts[0].body.clone().unwrap();
    assert!(
        body["content"]
            .as_str()
            .unwrap()
            .contains(&format!("<@&{}>", fake_discord::OPS_ROLE)),
        "{body}"
    );
    assert_eq!(
        body["allowed_mentions"]["roles"],
        json!([fake_discord::OPS_ROLE.to_string()])
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_mention_the_route_until_acknowledged() {
    let upstream = Upstream::start().await;
    upstream.break_it();
    let routes = format!(
        "[[alerts.route]]\nchannel = \"{ALERTS}\"\nmention = [\"{}\"]\n",
        fake_discord::OPS_ROLE
    );
    let bot = start(
        &format!("repeat = \"1h\"\n{routes}"),
        &integration("payments-api", &upstream, ""),
    )
    .await;
    let fake = &bot.fake;
    let alert = fake.wait_for_messages(ALERTS, 1).await.remove(0);
    let id = message_id(&alert);
    let alerts = bot.running().alerts();
    // Not yet: an hour has not passed.
    alerts.tick(patchbay::model::now()).await.unwrap();
    let later = patchbay::model::now() + chrono::Duration::minutes(61);
    alerts.tick(later).await.unwrap();
    fake.wait_for_messages(ALERTS, 2).await;
    let reminders = replies_to(fake, ALERTS, id);
    assert_eq!(reminders.len(), 1);
    let text = reminders[0]["content"].as_str().unwrap();
    assert!(text.contains("Still down after 1h"), "{text}");
    assert!(
        text.contains(&format!("<@&{}>", fake_discord::OPS_ROLE)),
        "{text}"
    );
    // The same tick again sends nothing more: the reminder is recorded.
    alerts.tick(later).await.unwrap();
    // Acknowledged: no reminder even hours later.
    let press = fake
        .button("pb:alert:ack:1", alert.clone(), FakeMember::OPS)
        .await;
    let reply = fake.callback_for(press).await;
    assert_eq!(reply["data"]["flags"], 64, "{reply}");
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap()
            .contains("acknowledged"),
        "{reply}"
    );
    wait_message(fake, id, "the acknowledgement on the message", |body| {
        body.to_string()
            .contains(&fake_discord::OPS_USER_ID.to_string())
    })
    .await;
    // The incident's timeline records it.
    let timeline = bot.running().store().incident_events(1).await.unwrap();
    let kinds: Vec<&str> = timeline.iter().map(|(_, kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["opened", "acknowledged"], "{timeline:?}");
    assert!(
        timeline[1]
            .2
            .contains(&fake_discord::OPS_USER_ID.to_string())
    );
    alerts
        .tick(later + chrono::Duration::hours(5))
        .await
        .unwrap();
    // Whatever the tick queued has gone out by now, and it was no reminder.
    drained(&bot).await;
    assert_eq!(replies_to(fake, ALERTS, id).len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_check_permissions_and_are_audited() {
    let upstream = Upstream::start().await;
    upstream.break_it();
    let bot = start("", &integration("payments-api", &upstream, "")).await;
    let fake = &bot.fake;
    let alert = fake.wait_for_messages(ALERTS, 1).await.remove(0);
    for (custom_id, permission) in [
        ("pb:alert:ack:1", "alerts.manage"),
        ("pb:alert:silence:1", "alerts.manage"),
        ("pb:alert:recheck:1", "status.recheck"),
    ] {
        let press = fake
            .button(custom_id, alert.clone(), FakeMember::NOBODY)
            .await;
        let reply = fake.callback_for(press).await;
        assert_eq!(reply["data"]["flags"], 64, "{reply}");
        let content = reply["data"]["content"].as_str().unwrap();
        assert!(
            content.starts_with("⛔") && content.contains(permission),
            "{content}"
        );
    }
    // Re-check now: a live check, answered privately.
    let hits = upstream.hits();
    let press = fake
        .button("pb:alert:recheck:1", alert.clone(), FakeMember::OPS)
        .await;
    let reply = fake.callback_for(press).await;
    assert!(upstream.hits() > hits);
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap()
            .contains("payments-api: DOWN"),
        "{reply}"
    );
    // Silence 1h: the message says until when.
    let press = fake
        .button("pb:alert:silence:1", alert.clone(), FakeMember::OPS)
        .await;
    let reply = fake.callback_for(press).await;
    assert!(
        reply["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Silenced payments-api for 1h"),
        "{reply}"
    );
    wait_message(
        fake,
        message_id(&alert),
        "the silence on the message",
        |body| body.to_string().contains("Silenced until"),
    )
    .await;
    let audit = bot
        .running()
        .store()
        .audit_entries(&patchbay::audit::AuditQuery {
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap();
    let recorded: Vec<(String, String)> = audit
        .iter()
        .rev()
        .map(|e| (e.command.clone(), e.outcome.to_string()))
        .collect();
    assert_eq!(
        recorded,
        [
            ("alerts ack".into(), "denied".into()),
            ("alerts silence".into(), "denied".into()),
            ("alerts recheck".into(), "denied".into()),
            ("alerts recheck".into(), "ok".into()),
            ("alerts silence".into(), "ok".into()),
        ]
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silenced_and_maintenance_incidents_are_recorded_not_posted() {
    let (a, b) = (Upstream::start().await, Upstream::start().await);
    let tables = format!(
        "{}{}[[maintenance]]\nname = \"always\"\ntargets = [\"tag:batch\"]\nstart = \"00:00\"\nduration = \"7d\"\n",
        integration("payments-api", &a, ""),
        integration("nightly", &b, "tags = [\"batch\"]"),
    );
    let bot = start("", &tables).await;
    let fake = &bot.fake;
    let plane = bot.running().plane();
    let ops = patchbay::model::Actor::Discord {
        user: patchbay::model::Snowflake(fake_discord::OPS_USER_ID),
        name: "ops".into(),
    };
    plane
        .silence("payments-api", "2h", "deploy", &ops)
        .await
        .unwrap();
    a.wait_hits(1).await;
    a.break_it();
    b.break_it();
    // Both incidents are recorded...
    let store = bot.running().store().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let open = store.open_incidents().await.unwrap();
        if open.len() == 2 {
            assert!(open.iter().all(|i| i.notice.is_none()), "{open:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "incidents: {open:?}"
        );
        // The incidents are written by the pipeline as checks fail; wait for the next one.
        a.wait_hits(a.hits() + 1).await;
    }
    // ...and /alerts list and /status show them, but nothing was posted.
    let overview = plane.alerts_overview().await.unwrap();
    assert_eq!(overview.recorded.len(), 2);
    assert_eq!(overview.silences.len(), 1);
    let detail = plane
        .detail("payments-api", patchbay::model::now())
        .await
        .unwrap();
    let incident = detail.incident.expect("the open incident is shown");
    assert_eq!(incident.suppressed.as_deref(), Some("silence:1"));
    let detail = plane
        .detail("nightly", patchbay::model::now())
        .await
        .unwrap();
    assert_eq!(
        detail.incident.unwrap().suppressed.as_deref(),
        Some("maintenance:always")
    );
    assert!(alert_messages(fake, ALERTS).is_empty());
    // Ending the silence while payments-api is still down notifies it at once; the maintenance
    // window still holds the other.
    let ended = plane.unsilence(1).await.unwrap();
    assert_eq!(ended, patchbay::service::Unsilenced { silence: 1 });
    let posted = fake.wait_for_messages(ALERTS, 1).await;
    assert!(
        title(&posted[0]).contains("payments-api is DOWN"),
        "{}",
        posted[0]
    );
    drained(&bot).await;
    assert_eq!(alert_messages(fake, ALERTS).len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_a_down_integration_are_listed_on_its_message() {
    let (db, api) = (Upstream::start().await, Upstream::start().await);
    let tables = format!(
        "{}{}",
        integration("database", &db, ""),
        integration("payments-api", &api, "depends_on = [\"database\"]"),
    );
    let bot = start("", &tables).await;
    let fake = &bot.fake;
    db.break_it();
    let alert = fake.wait_for_messages(ALERTS, 1).await.remove(0);
    assert!(title(&alert).contains("database is DOWN"), "{alert}");
    api.break_it();
    let listed = wait_message(
        fake,
        message_id(&alert),
        "the dependent on the parent's message",
        |body| body.to_string().contains("payments-api"),
    )
    .await;
    assert!(title(&listed).contains("database"), "{listed}");
    assert_eq!(alert_messages(fake, ALERTS).len(), 1, "no separate message");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_delay_delivery_but_never_duplicate_it() {
    let upstream = Upstream::start().await;
    let bot = start("", &integration("payments-api", &upstream, "")).await;
    let fake = &bot.fake;
    let route = format!("/channels/{ALERTS}/messages");
    fake.inject(
        Fault::RateLimited {
            retry_after: 0.3,
            global: false,
        },
        "POST",
        &route,
        1,
    );
    fake.inject(Fault::Server(500), "POST", &route, 2);
    upstream.break_it();
    let posted = fake.wait_for_messages(ALERTS, 1).await;
    let attempts = fake.attempts("POST", &route);
    let statuses: Vec<Option<u16>> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(429), Some(500), Some(500), Some(200)]);
    // The retry after the 429 waited at least retry_after.
    assert!(attempts[1].at.duration_since(attempts[0].at) >= Duration::from_millis(300));
    assert_eq!(posted.len(), 1);
    assert_eq!(alert_messages(fake, ALERTS).len(), 1);
    // The metrics say so.
    drained(&bot).await;
    let address = bot.running().address();
    let metrics = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "patchbay_alert_deliveries_total{outcome=\"retry\"} 3",
        "patchbay_alert_deliveries_total{outcome=\"delivered\"} 1",
        "patchbay_alert_outbox_pending ",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_drop_during_an_outage_loses_nothing() {
    let upstream = Upstream::start().await;
    let bot = start("", &integration("payments-api", &upstream, "")).await;
    let fake = &bot.fake;
    fake.drop_gateway().await;
    upstream.break_it();
    let alert = fake.wait_for_messages(ALERTS, 1).await.remove(0);
    fake.wait_resumed(1).await;
    // Buttons work after the resume.
    let press = fake.button("pb:alert:ack:1", alert, FakeMember::OPS).await;
    assert!(
        fake.callback_for(press).await["data"]["content"]
            .as_str()
            .unwrap()
            .contains("acknowledged")
    );
    assert_eq!(alert_messages(fake, ALERTS).len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_alert_message_is_posted_again_on_the_next_change() {
    let upstream = Upstream::start().await;
    let bot = start("", &integration("payments-api", &upstream, "")).await;
    let fake = &bot.fake;
    upstream.break_it();
    let alert = fake.wait_for_messages(ALERTS, 1).await.remove(0);
    fake.delete_message(message_id(&alert));
    upstream.heal();
    // The edit finds the message gone: a fresh message shows the resolution, and the
    // "resolved after" reply threads under it.
    let messages = fake.wait_for_messages(ALERTS, 2).await;
    let fresh = &messages[0];
    assert_ne!(message_id(fresh), message_id(&alert));
    assert!(title(fresh).contains("resolved"), "{fresh}");
    assert_eq!(replies_to(fake, ALERTS, message_id(fresh)).len(), 1);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivery_posts_and_edits_without_a_bot() {
    let upstream = Upstream::start().await;
    let bot = start_with(
        "webhook_env = \"TEST_ALERT_WEBHOOK\"",
        &integration("payments-api", &upstream, ""),
        false,
    )
    .await;
    let fake = &bot.fake;
    upstream.break_it();
    let alert = fake.wait_for_messages(ALERTS, 1).await.remove(0);
    assert!(title(&alert).contains("payments-api is DOWN"), "{alert}");
    assert!(alert["webhook_id"].is_string(), "{alert}");
    let posts = fake.attempts("POST", "/webhooks/");
    assert_eq!(posts[0].query.as_deref(), Some("wait=true"));
    upstream.heal();
    wait_message(
        fake,
        message_id(&alert),
        "the webhook message edited to resolved",
        |body| {
            body["embeds"][0]["title"]
                .as_str()
                .unwrap_or("")
                .contains("resolved")
        },
    )
    .await;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_or_webhook_alerts_are_log_lines() {
    let upstream = Upstream::start().await;
    let bot = start_with("", &integration("payments-api", &upstream, ""), false).await;
    let store = bot.running().store().clone();
    let mut delivered = bot.running().alerts().delivered();
    upstream.break_it();
    // Delivered (to the log): the outbox empties once the post is done.
    tokio::time::timeout(Duration::from_secs(20), delivered.changed())
        .await
        .expect("a delivery within 20 s")
        .unwrap();
    drained(&bot).await;
    let open = store.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1);
    assert!(open[0].notice.is_some());
    assert!(bot.fake.requests().is_empty(), "nothing goes to Discord");
    let _ = &bot.dir;
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_integration_is_said_once_then_quiet_until_stable() {
    let upstream = Upstream::start().await;
    let bot = start(
        "flap_threshold = 2\nflap_window = \"1m\"",
        &integration("payments-api", &upstream, ""),
    )
    .await;
    let fake = &bot.fake;
    let mut transitions = bot.running().engine().subscribe();
    upstream.wait_hits(1).await;
    // UNKNOWN → UP, then six changes.
    let mut wanted = vec!["UP"];
    for _ in 0..3 {
        wanted.extend(["DOWN", "UP"]);
    }
    for (index, state) in wanted.iter().enumerate() {
        if index > 0 {
            if *state == "DOWN" {
                upstream.break_it();
            } else {
                upstream.heal();
            }
        }
        loop {
            let t = transitions.recv().await.unwrap();
            if t.to.to_string() == *state {
                break;
            }
        }
    }
    // Wait until the pipeline has caught up with the last transition.
    let alerts = bot.running().alerts();
    alerts.catch_up().await.unwrap();
    drained(&bot).await;
    // The first outage (message and reply), then one flapping notice, then nothing.
    let messages = fake.channel_messages(ALERTS);
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(
        messages[2].to_string().contains("lapping"),
        "{}",
        messages[2]
    );
    // Stable for the window: the notice closes with one reply.
    alerts
        .tick(patchbay::model::now() + chrono::Duration::seconds(61))
        .await
        .unwrap();
    let messages = fake.wait_for_messages(ALERTS, 4).await;
    assert!(
        messages[3]["content"]
            .as_str()
            .unwrap()
            .contains("Stable again"),
        "{}",
        messages[3]
    );
    bot.stop().await;
}

fn sub(name: &str, options: Value) -> Value {
    json!([{ "name": name, "type": 1, "options": options }])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_command_lists_acknowledges_and_silences() {
    let upstream = Upstream::start().await;
    upstream.break_it();
    let bot = start(
        "",
        &integration("payments-api", &upstream, "tags = [\"payments\"]"),
    )
    .await;
    let fake = &bot.fake;
    let alert = fake.wait_for_messages(ALERTS, 1).await.remove(0);
    // Everyone may list; only alerts.manage may change anything.
    let id = fake
        .command("alerts", sub("list", json!([])), FakeMember::NOBODY)
        .await;
    let list = fake.callback_for(id).await;
    let description = list["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        description.contains("**#1**") && description.contains("payments-api"),
        "{list}"
    );
    let ack = sub(
        "ack",
        json!([{ "name": "incident", "type": 4, "value": 1 }]),
    );
    let id = fake
        .command("alerts", ack.clone(), FakeMember::NOBODY)
        .await;
    let denied = fake.callback_for(id).await;
    assert!(
        denied["data"]["content"]
            .as_str()
            .unwrap()
            .contains("`alerts.manage`"),
        "{denied}"
    );
    let id = fake.command("alerts", ack.clone(), FakeMember::OPS).await;
    let done = fake.callback_for(id).await;
    assert!(
        done["data"]["content"]
            .as_str()
            .unwrap()
            .contains("acknowledged"),
        "{done}"
    );
    wait_message(fake, message_id(&alert), "the acknowledgement", |body| {
        body.to_string().contains("Acknowledged")
    })
    .await;
    // Twice: an explanation, not an error.
    let id = fake.command("alerts", ack, FakeMember::OPS).await;
    let again = fake.callback_for(id).await;
    assert!(
        again["data"]["content"]
            .as_str()
            .unwrap()
            .contains("already acknowledged"),
        "{again}"
    );
    // Silence a tag, with a bad duration first.
    let silence = |duration: &str| {
        sub(
            "silence",
            json!([
                { "name": "target", "type": 3, "value": "tag:payments" },
                { "name": "duration", "type": 3, "value": duration },
                { "name": "reason", "type": 3, "value": "provider maintenance" },
            ]),
        )
    };
    let id = fake
        .command("alerts", silence("soon"), FakeMember::OPS)
        .await;
    let invalid = fake.callback_for(id).await;
    assert_eq!(invalid["data"]["flags"], 64, "{invalid}");
    assert!(
        invalid["data"]["content"]
            .as_str()
            .unwrap()
            .contains("duration"),
        "{invalid}"
    );
    let id = fake.command("alerts", silence("2h"), FakeMember::OPS).await;
    let silenced = fake.callback_for(id).await;
    assert!(
        silenced["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Silence #1: tag:payments"),
        "{silenced}"
    );
    let id = fake
        .command("alerts", sub("list", json!([])), FakeMember::NOBODY)
        .await;
    let list = fake.callback_for(id).await;
    assert!(list.to_string().contains("provider maintenance"), "{list}");
    let unsilence = sub(
        "unsilence",
        json!([{ "name": "silence", "type": 4, "value": 1 }]),
    );
    let id = fake
        .command("alerts", unsilence.clone(), FakeMember::OPS)
        .await;
    assert!(
        fake.callback_for(id)
            .await
            .to_string()
            .contains("Silence #1 ended")
    );
    let id = fake.command("alerts", unsilence, FakeMember::OPS).await;
    assert!(
        fake.callback_for(id)
            .await
            .to_string()
            .contains("no active silence #1")
    );
    let audit = bot
        .running()
        .store()
        .audit_entries(&patchbay::audit::AuditQuery {
            limit: 20,
            ..Default::default()
        })
        .await
        .unwrap();
    let commands: Vec<String> = audit
        .iter()
        .rev()
        .map(|e| format!("{} {}", e.command, e.outcome))
        .collect();
    assert_eq!(
        commands,
        [
            "alerts list ok",
            "alerts ack denied",
            "alerts ack ok",
            "alerts ack invalid",
            "alerts silence invalid",
            "alerts silence ok",
            "alerts list ok",
            "alerts unsilence ok",
            "alerts unsilence invalid",
        ]
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_reason_longer_than_its_limit_is_kept_cut() {
    let upstream = Upstream::start().await;
    let bot = start("", &integration("payments-api", &upstream, "")).await;
    let fake = &bot.fake;
    // A client that ignores the option's 200-character limit.
    let reason = "because ".repeat(500);
    let id = fake
        .command(
            "alerts",
            sub(
                "silence",
                json!([
                    { "name": "target", "type": 3, "value": "payments-api" },
                    { "name": "duration", "type": 3, "value": "1h" },
                    { "name": "reason", "type": 3, "value": reason },
                ]),
            ),
            FakeMember::OPS,
        )
        .await;
    let silenced = fake.callback_for(id).await;
    let content = silenced["data"]["content"].as_str().unwrap();
    assert!(content.contains("Silence #1: payments-api"), "{silenced}");
    let silences = bot
        .running()
        .plane()
        .alerts_overview()
        .await
        .unwrap()
        .silences;
    let kept = &silences[0].reason;
    assert!(kept.chars().count() <= 200, "{} characters", kept.len());
    assert!(
        kept.starts_with("because because") && kept.ends_with('…'),
        "{kept}"
    );
    let id = fake
        .command("alerts", sub("list", json!([])), FakeMember::OPS)
        .await;
    let list = fake.callback_for(id).await;
    let description = list["data"]["embeds"][0]["description"].as_str().unwrap();
    assert!(description.contains("because because"), "{list}");
    assert!(description.chars().count() < 500, "{description}");
    bot.stop().await;
}
