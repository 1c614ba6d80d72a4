//! The Discord courier (`src/discord/courier.rs`) against the fake Discord on 127.0.0.1: posts,
//! edits and replies as the bot and through an incoming webhook, `enforce_nonce`, and every
//! failure Discord can answer with, mapped to the `DeliveryError` the dispatcher acts on. No
//! secret (the bot token, the webhook's token) may appear in an error or a `Debug`.

mod common;

use common::custom_ids;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::fake_discord::{
    ALERT_CHANNEL_ID, CHANNEL_ID, FakeDiscord, Fault, OPS_ROLE, ROUTE_CHANNEL_ID, snowflake,
};
use patchbay::alerts::notice::{Courier, DeliveryError, ReplyNote};
use patchbay::discord::courier::DiscordCourier;
use patchbay::model::State;
use patchbay::model::notice::{IncidentLine, MessageRef, NoticeStatus, NoticeView, ReplyKind};
use patchbay::model::{Severity, Snowflake};
use patchbay::secret::Secret;
use serde_json::{Value, json};
use url::Url;

const TOKEN: &str = "bot-token-Zx9-s3cret";

fn line(name: &str, state: State) -> IncidentLine {
    IncidentLine {
        incident: 1,
        integration: name.to_string(),
        severity: Severity::Critical,
        state,
        reason: "status == 200 (got 503)".into(),
        since: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        last_error: Some("HTTP 503".into()),
        latency_ms: Some(120.0),
        resolved_at: None,
        dependents: vec!["checkout".into()],
    }
}

fn open_view() -> NoticeView {
    NoticeView {
        notice: 7,
        severity: Severity::Critical,
        status: NoticeStatus::Open,
        incidents: vec![line("payments-api", State::Down)],
        opened_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        resolved_after: None,
        acknowledged: None,
        silenced_until: None,
        flapping: false,
    }
}

fn resolved_view() -> NoticeView {
    let mut view = open_view();
    view.status = NoticeStatus::Resolved;
    view.incidents[0].state = State::Up;
    view.incidents[0].resolved_at = Some(Utc.timestamp_opt(1_700_000_720, 0).unwrap());
    view.resolved_after = Some(Duration::from_secs(720));
    view
}

/// The reply a resolved notice gets.
fn resolved_note(view: &NoticeView) -> ReplyNote<'_> {
    ReplyNote {
        kind: ReplyKind::Resolved,
        view,
        queued_at: view.opened_at,
    }
}

/// A reminder queued an hour after the notice opened.
fn reminder_note(view: &NoticeView) -> ReplyNote<'_> {
    ReplyNote {
        kind: ReplyKind::Reminder,
        view,
        queued_at: view.opened_at + chrono::Duration::hours(1),
    }
}

/// How [`reminder_note`] of [`open_view`] reads in Discord.
const REMINDER: &str = "⏰ Still down after 1h: payments-api. Acknowledge to stop reminders.";

fn bot(fake: &FakeDiscord) -> DiscordCourier {
    DiscordCourier::bot(&Url::parse(&fake.api_base()).unwrap(), &Secret::new(TOKEN))
}

fn roles() -> [Snowflake; 1] {
    [Snowflake(OPS_ROLE)]
}

/// Neither the error's text nor its `Debug` carries any of `secrets`.
fn assert_no_secret(err: &DeliveryError, secrets: &[&str]) {
    let shown = format!("{err} {err:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
}

fn id_of(message: &Value) -> u64 {
    snowflake(&message["id"]).expect("a message id")
}

/// The fake's own `enforce_nonce`, through plain reqwest: the same nonce from the same author
/// returns the first message; without `enforce_nonce`, or once the window ended, a second
/// message is created; a nonce too long is a form error; a webhook takes no nonce.
#[tokio::test]
async fn the_fake_enforces_nonces_like_discord() {
    let fake = FakeDiscord::start().await;
    let client = reqwest::Client::new();
    let url = format!(
        "{}/api/v10/channels/{ALERT_CHANNEL_ID}/messages",
        fake.api_base()
    );
    let post = |body: Value| {
        client
            .post(&url)
            .header("authorization", "Bot t")
            .json(&body)
            .send()
    };
    let send = |body: Value| async {
        let response = post(body).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };

    let (status, first) =
        send(json!({"content": "one", "nonce": "k1", "enforce_nonce": true})).await;
    assert_eq!(status, 200);
    assert_eq!(first["nonce"], "k1");
    let (status, again) =
        send(json!({"content": "two", "nonce": "k1", "enforce_nonce": true})).await;
    assert_eq!(status, 200);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        again["content"], "one",
        "the first message comes back unchanged"
    );
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 1);

    // Without enforce_nonce the nonce is only echoed.
    let (_, plain) = send(json!({"content": "three", "nonce": "k1"})).await;
    assert_ne!(plain["id"], first["id"]);
    // An integer nonce is a nonce too.
    let (_, numeric) = send(json!({"content": "n", "nonce": 12345, "enforce_nonce": true})).await;
    let (_, numeric_again) =
        send(json!({"content": "n", "nonce": 12345, "enforce_nonce": true})).await;
    assert_eq!(numeric["id"], numeric_again["id"]);
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 3);

    // Once Discord's window has passed, the same nonce makes a new message.
    fake.expire_nonces();
    let (_, later) = send(json!({"content": "four", "nonce": "k2", "enforce_nonce": true})).await;
    let (_, later_again) =
        send(json!({"content": "five", "nonce": "k2", "enforce_nonce": true})).await;
    assert_eq!(later["id"], later_again["id"]);
    fake.expire_nonces();
    let (_, after_window) =
        send(json!({"content": "six", "nonce": "k2", "enforce_nonce": true})).await;
    assert_ne!(after_window["id"], later["id"]);

    // A deleted first message is not returned: a new one is made.
    fake.delete_message(id_of(&after_window));
    let (_, replaced) =
        send(json!({"content": "seven", "nonce": "k2", "enforce_nonce": true})).await;
    assert_ne!(replaced["id"], after_window["id"]);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());

    // Broken on purpose: a 26-character nonce, and a nonce on a webhook execute.
    let (status, error) =
        send(json!({"content": "x", "nonce": "n".repeat(26), "enforce_nonce": true})).await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], 50035);
    let hook = fake.create_webhook(ALERT_CHANNEL_ID);
    let answer = client
        .post(format!("{hook}?wait=true"))
        .json(&json!({"content": "x", "nonce": "k3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let violations = fake.violations();
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(violations[0].contains("nonce must be"), "{violations:#?}");
    assert!(violations[1].contains("takes no nonce"), "{violations:#?}");
}

#[tokio::test]
async fn the_bot_posts_edits_and_replies() {
    let fake = FakeDiscord::start().await;
    let courier = bot(&fake);

    let posted = courier
        .post(
            Snowflake(ALERT_CHANNEL_ID),
            &open_view(),
            &roles(),
            "outbox-1",
        )
        .await
        .unwrap();
    assert!(posted.shows_view);
    let posted = posted.message;
    assert_eq!(posted.channel, Snowflake(ALERT_CHANNEL_ID));
    let messages = fake.channel_messages(ALERT_CHANNEL_ID);
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(id_of(message), posted.message.0);
    assert_eq!(message["content"], format!("<@&{OPS_ROLE}>"));
    assert_eq!(message["mention_roles"], json!([OPS_ROLE.to_string()]));
    assert_eq!(message["embeds"][0]["title"], "🔴 payments-api is DOWN");
    assert_eq!(message["embeds"][0]["color"], 0xe7_4c_3c);
    assert_eq!(
        custom_ids(message),
        ["pb:alert:ack:7", "pb:alert:silence:7", "pb:alert:recheck:7"]
    );
    assert_eq!(fake.rest_tokens(), [format!("Bot {TOKEN}")]);
    let sent = fake.attempts("POST", &format!("/channels/{ALERT_CHANNEL_ID}/messages"));
    let body = sent[0].body.clone().unwrap();
    assert_eq!(body["nonce"], "outbox-1");
    assert_eq!(body["enforce_nonce"], true);
    assert_eq!(
        body["allowed_mentions"],
        json!({"parse": [], "roles": [OPS_ROLE.to_string()]})
    );

    // The same key again (a retry after a lost answer): the first message, not a second.
    let again = courier
        .post(
            Snowflake(ALERT_CHANNEL_ID),
            &open_view(),
            &roles(),
            "outbox-1",
        )
        .await
        .unwrap();
    assert_eq!(again.message, posted);
    assert!(again.shows_view, "the first message shows the same view");
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 1);
    // The same key with a newer view (the notice changed while the answer was lost): the first
    // message, which shows the older view, and the courier says so.
    let stale = courier
        .post(
            Snowflake(ALERT_CHANNEL_ID),
            &resolved_view(),
            &roles(),
            "outbox-1",
        )
        .await
        .unwrap();
    assert_eq!(stale.message, posted);
    assert!(
        !stale.shows_view,
        "the first message shows DOWN, not resolved"
    );
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 1);

    // An edit replaces the embed, removes the buttons once resolved, and pings nobody.
    courier.edit(posted, &resolved_view()).await.unwrap();
    let history = fake.message_history(posted.message.0);
    assert_eq!(history.len(), 2, "created, then edited once");
    assert_eq!(history[0]["embeds"][0]["title"], "🔴 payments-api is DOWN");
    assert_eq!(history[1]["embeds"][0]["title"], "✅ payments-api resolved");
    assert_eq!(history[1]["embeds"][0]["color"], 0x2e_cc_71);
    assert_eq!(history[1]["components"], json!([]));
    assert_eq!(
        history[1]["content"],
        format!("<@&{OPS_ROLE}>"),
        "content untouched"
    );
    let patch = fake.attempts(
        "PATCH",
        &format!("/channels/{ALERT_CHANNEL_ID}/messages/{}", posted.message.0),
    );
    let patch_body = patch[0].body.clone().unwrap();
    assert_eq!(patch_body["allowed_mentions"], json!({"parse": []}));
    assert!(patch_body.get("content").is_none());

    let (resolved, open) = (resolved_view(), open_view());
    // A reply threads under the alert.
    let reply = courier
        .reply(posted, resolved_note(&resolved), &roles(), "outbox-2")
        .await
        .unwrap();
    assert_eq!(reply.channel, Snowflake(ALERT_CHANNEL_ID));
    assert_ne!(reply.message, posted.message);
    let replied = fake.message(reply.message.0).unwrap();
    assert_eq!(replied["type"], 19);
    assert_eq!(
        replied["message_reference"]["message_id"],
        posted.message.0.to_string()
    );
    assert_eq!(
        replied["content"],
        format!("<@&{OPS_ROLE}> ✅ Resolved after 12m.")
    );
    assert_eq!(replied["mention_roles"], json!([OPS_ROLE.to_string()]));
    // Its retry is deduplicated too.
    let reply_again = courier
        .reply(posted, resolved_note(&resolved), &roles(), "outbox-2")
        .await
        .unwrap();
    assert_eq!(reply_again, reply);
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 2);

    // Someone deletes the alert: an edit says it is gone, a reply goes out without a reference.
    fake.delete_message(posted.message.0);
    let gone = courier.edit(posted, &open_view()).await.unwrap_err();
    assert_eq!(gone, DeliveryError::MessageGone);
    let orphan = courier
        .reply(posted, reminder_note(&open), &[], "outbox-3")
        .await
        .unwrap();
    let orphan = fake.message(orphan.message.0).unwrap();
    assert_eq!(orphan["type"], 0);
    assert_eq!(orphan["content"], REMINDER);
    assert_eq!(orphan["mention_roles"], json!([]));

    assert!(!format!("{courier:?}").contains(TOKEN));
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn discord_failures_become_delivery_errors() {
    let fake = FakeDiscord::start().await;
    let courier = bot(&fake);
    let alerts = format!("/channels/{ALERT_CHANNEL_ID}/messages");
    let view = open_view();
    let post = |channel: u64| courier.post(Snowflake(channel), &view, &[], "k");

    // A 5xx is worth another try.
    fake.inject(Fault::Server(500), "POST", &alerts, 1);
    let err = post(ALERT_CHANNEL_ID).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Retry {
            after: None,
            kind: "server",
            message: "HTTP 500: Internal Server Error".into(),
            ambiguous: false,
        }
    );
    assert_no_secret(&err, &[TOKEN]);

    // An unknown channel needs a human: Discord's code and message, never the URL.
    let err = post(999_999_999_999_999_999).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Permanent {
            kind: "client",
            message: "HTTP 404: Unknown Channel (10003)".into(),
        }
    );
    assert!(!err.to_string().contains("127.0.0.1"), "{err}");
    assert_no_secret(&err, &[TOKEN]);

    // A request that never gets an answer ends at the courier's timeout; with the nonce, the
    // retry is harmless, so it is not ambiguous.
    let impatient = bot(&fake).with_timeout(Duration::from_millis(300));
    fake.inject(Fault::Hang, "POST", &alerts, 1);
    let err = impatient
        .post(Snowflake(ALERT_CHANNEL_ID), &open_view(), &[], "k")
        .await
        .unwrap_err();
    let DeliveryError::Retry {
        kind,
        after,
        ambiguous,
        ..
    } = &err
    else {
        panic!("a hung request is worth another try: {err:?}");
    };
    assert_eq!((*kind, *after, *ambiguous), ("timeout", None, false));
    assert_eq!(fake.attempts("POST", &alerts).last().unwrap().status, None);
    assert_no_secret(&err, &[TOKEN]);

    // An answer cut mid-body is transport trouble, worth another try at once: never a refusal.
    fake.inject(Fault::Cut, "POST", &alerts, 1);
    let err = post(ALERT_CHANNEL_ID).await.unwrap_err();
    let DeliveryError::Retry { kind, message, .. } = &err else {
        panic!("a cut answer is worth another try: {err:?}");
    };
    assert_eq!(*kind, "connect", "{message}");
    assert!(
        message.contains("before the whole answer arrived"),
        "{message}"
    );
    assert_no_secret(&err, &[TOKEN]);

    // A 429 carries Discord's precise wait (the body's retry_after, not the whole-second
    // Retry-After header), and holds back its own route in its own channel, with nothing sent;
    // another channel goes on.
    fake.inject(
        Fault::RateLimited {
            retry_after: 1.25,
            global: false,
        },
        "POST",
        &alerts,
        1,
    );
    let err = post(ALERT_CHANNEL_ID).await.unwrap_err();
    let DeliveryError::Retry {
        after,
        kind,
        message,
        ..
    } = &err
    else {
        panic!("a 429 is worth another try: {err:?}");
    };
    assert_eq!(*after, Some(Duration::from_millis(1250)));
    assert_eq!(*kind, "rate_limited");
    assert_eq!(message, "HTTP 429: You are being rate limited.");
    assert_no_secret(&err, &[TOKEN]);
    let sent = fake.attempts("POST", &alerts).len();
    let held = post(ALERT_CHANNEL_ID).await.unwrap_err();
    let DeliveryError::Held { after, kind } = held else {
        panic!("the route is held: {held:?}");
    };
    assert!(after <= Duration::from_millis(1250) && after > Duration::ZERO);
    assert_eq!(kind, "rate_limited");
    assert_eq!(
        fake.attempts("POST", &alerts).len(),
        sent,
        "nothing was sent"
    );
    post(ROUTE_CHANNEL_ID)
        .await
        .expect("another channel goes on");

    // A global 429 holds every route.
    let routed = format!("/channels/{ROUTE_CHANNEL_ID}/messages");
    fake.inject(
        Fault::RateLimited {
            retry_after: 0.5,
            global: true,
        },
        "POST",
        &routed,
        1,
    );
    let err = post(ROUTE_CHANNEL_ID).await.unwrap_err();
    let DeliveryError::Retry { after, kind, .. } = &err else {
        panic!("a global 429 is worth another try: {err:?}");
    };
    assert_eq!(
        (*after, *kind),
        (Some(Duration::from_millis(500)), "rate_limited")
    );
    let held = courier
        .edit(
            MessageRef {
                channel: Snowflake(CHANNEL_ID),
                message: Snowflake(1),
            },
            &view,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(held, DeliveryError::Held { .. }),
        "every route waits out a global 429: {held:?}"
    );

    // Nothing was sent inside a 429's window, nothing was malformed.
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_failing_discord_opens_the_breaker_and_calls_fail_fast() {
    let fake = FakeDiscord::start().await;
    let courier = bot(&fake);
    let alerts = format!("/channels/{ALERT_CHANNEL_ID}/messages");
    let threshold = courier.config().breaker.failure_threshold as usize;
    assert!(threshold >= 5, "the breaker must not open too eagerly");
    assert_eq!(courier.config().retry.max_attempts, 1);
    fake.inject(Fault::Server(502), "POST", &alerts, threshold);
    for _ in 0..threshold {
        let err = courier
            .post(Snowflake(ALERT_CHANNEL_ID), &open_view(), &[], "k")
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Retry { kind: "server", .. }),
            "{err:?}"
        );
    }
    let err = courier
        .post(Snowflake(ALERT_CHANNEL_ID), &open_view(), &[], "k")
        .await
        .unwrap_err();
    let DeliveryError::Held { kind, after } = &err else {
        panic!("an open breaker holds every call back: {err:?}");
    };
    assert_eq!(*kind, "circuit_open");
    assert!(*after > Duration::ZERO);
    // One attempt per call, and none once the breaker is open.
    assert_eq!(fake.attempts("POST", &alerts).len(), threshold);
    assert_eq!(courier.circuit_state().as_str(), "open");
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn a_webhook_posts_edits_and_follows_up() {
    let fake = FakeDiscord::start().await;
    let url = fake.create_webhook(ALERT_CHANNEL_ID);
    let webhook_token = url.rsplit('/').next().unwrap().to_string();
    let courier = DiscordCourier::webhook(&Secret::new(url.clone()));
    let debug = format!("{courier:?}");
    assert!(
        !debug.contains(&webhook_token) && !debug.contains(&url),
        "{debug}"
    );

    // The channel named is ignored: the webhook posts into its own.
    let posted = courier
        .post(
            Snowflake(ROUTE_CHANNEL_ID),
            &open_view(),
            &roles(),
            "outbox-1",
        )
        .await
        .unwrap();
    assert!(posted.shows_view);
    let posted = posted.message;
    assert_eq!(posted.channel, Snowflake(ALERT_CHANNEL_ID));
    let execute = fake.attempts("POST", &url);
    assert_eq!(execute.len(), 1);
    assert_eq!(execute[0].query.as_deref(), Some("wait=true"));
    let body = execute[0].body.clone().unwrap();
    assert!(
        body.get("components").is_none(),
        "no buttons on a webhook: {body}"
    );
    assert!(
        body.get("nonce").is_none(),
        "webhooks take no nonce: {body}"
    );
    let message = fake.message(posted.message.0).unwrap();
    assert!(message["webhook_id"].is_string());
    assert_eq!(message["embeds"][0]["title"], "🔴 payments-api is DOWN");
    assert_eq!(message["mention_roles"], json!([OPS_ROLE.to_string()]));
    assert!(custom_ids(&message).is_empty());

    courier.edit(posted, &resolved_view()).await.unwrap();
    let history = fake.message_history(posted.message.0);
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["embeds"][0]["title"], "✅ payments-api resolved");
    assert_eq!(
        fake.attempts("PATCH", &format!("{url}/messages/{}", posted.message.0))
            .len(),
        1
    );

    let (resolved, open) = (resolved_view(), open_view());
    // A webhook cannot reply: a follow-up quotes the alert and links to it.
    let follow_up = courier
        .reply(posted, resolved_note(&resolved), &roles(), "outbox-2")
        .await
        .unwrap();
    let sent = fake.message(follow_up.message.0).unwrap();
    assert_eq!(sent["type"], 0);
    assert!(sent.get("message_reference").is_none_or(Value::is_null));
    let content = sent["content"].as_str().unwrap();
    let guild = message["guild_id"].as_str().unwrap();
    assert_eq!(
        content,
        format!(
            "<@&{OPS_ROLE}> ✅ Resolved after 12m.\n-# ↪ re: [✅ payments-api resolved]\
             (https://discord.com/channels/{guild}/{ALERT_CHANNEL_ID}/{})",
            posted.message.0
        )
    );
    assert_eq!(sent["mention_roles"], json!([OPS_ROLE.to_string()]));

    // Deleted in Discord: the edit says so, the follow-up goes out without the quote.
    fake.delete_message(posted.message.0);
    let err = courier.edit(posted, &open_view()).await.unwrap_err();
    assert_eq!(err, DeliveryError::MessageGone);
    let orphan = courier
        .reply(posted, reminder_note(&open), &[], "outbox-3")
        .await
        .unwrap();
    assert_eq!(fake.message(orphan.message.0).unwrap()["content"], REMINDER);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());

    // A webhook whose token was revoked: a permanent auth error that names no secret.
    let wrong = url.replace(&webhook_token, "revoked-token");
    let revoked = DiscordCourier::webhook(&Secret::new(wrong.clone()));
    let err = revoked
        .post(Snowflake(ALERT_CHANNEL_ID), &open_view(), &[], "k")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Permanent {
            kind: "auth",
            message: "HTTP 401: Invalid Webhook Token (50027)".into(),
        }
    );
    assert_no_secret(&err, &[&webhook_token, "revoked-token", &wrong, &url]);
    // That one was provoked: the fake notes the wrong token.
    let violations = fake.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].contains("wrong webhook token"),
        "{violations:#?}"
    );
}

/// A reference to a message that never existed still replies without failing, and a key too
/// long for a nonce is refused before anything is sent.
#[tokio::test]
async fn replies_and_keys_at_the_edges() {
    let fake = FakeDiscord::start().await;
    let courier = bot(&fake);
    let nowhere = MessageRef {
        channel: Snowflake(ALERT_CHANNEL_ID),
        message: Snowflake(123_456_789_012_345_678),
    };
    let stable = open_view();
    let note = ReplyNote {
        kind: ReplyKind::StableAgain,
        view: &stable,
        queued_at: stable.opened_at,
    };
    let sent = courier.reply(nowhere, note, &[], "k1").await.unwrap();
    assert_eq!(
        fake.message(sent.message.0).unwrap()["content"],
        "✅ Stable again."
    );
    assert_eq!(fake.message(sent.message.0).unwrap()["type"], 0);

    let err = courier
        .post(
            Snowflake(ALERT_CHANNEL_ID),
            &open_view(),
            &[],
            &"k".repeat(26),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Permanent { kind: "client", .. }),
        "{err:?}"
    );
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 1);
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}
