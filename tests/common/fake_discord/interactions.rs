//! Interactions: what a test sends (slash commands, autocomplete, button clicks) as
//! INTERACTION_CREATE, the callbacks the bot answers with (which type fits which interaction,
//! acknowledged once), and the interaction webhook: follow-ups and `@original`.

use std::sync::MutexGuard;
use std::time::Instant;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::checks::{check_choices, check_flags, check_message, check_modal, serenity_parses};
use super::messages::{Origin, edit_message, new_message, store_message};
use super::rest::{RestReply, error_json, invalid_form, not_found, ok, unserved};
use super::*;

impl FakeDiscord {
    /// Sends INTERACTION_CREATE for a slash command in [`CHANNEL_ID`]; returns the interaction
    /// id. `options` is Discord's `data.options` array; user, role, channel and mentionable
    /// options get their `data.resolved` entries.
    pub async fn command(&self, name: &str, options: Value, member: FakeMember) -> u64 {
        self.send_command(Kind::Command, name, options, Place::Guild(member))
    }

    /// The same in the bot's DM with `user_id`: no guild, no member, a `user`, context 1.
    pub async fn command_in_dm(&self, name: &str, options: Value, user_id: u64) -> u64 {
        self.send_command(Kind::Command, name, options, Place::Dm(user_id))
    }

    /// An autocomplete interaction (type 4). If no option has `focused: true`, the last leaf
    /// option is marked focused.
    pub async fn autocomplete(&self, name: &str, options: Value, member: FakeMember) -> u64 {
        let mut options = options;
        if !has_focused(&options) {
            mark_last_focused(&mut options);
        }
        self.send_command(Kind::Autocomplete, name, options, Place::Guild(member))
    }

    /// A button click (MESSAGE_COMPONENT, component_type 2) with `custom_id` on `message` (a
    /// message object as the fake's REST returned it, or [`FakeDiscord::original_message`]).
    /// Panics if the message has no component with that custom_id.
    pub async fn button(&self, custom_id: &str, message: Value, member: FakeMember) -> u64 {
        assert!(
            find_custom_id(&message["components"], custom_id),
            "message has no component with custom_id {custom_id:?}: {message}"
        );
        let message_id = snowflake(&message["id"]).expect("the message has an id");
        let channel_id = snowflake(&message["channel_id"]).expect("the message has a channel_id");
        let mut st = self.inner.lock();
        if !st.messages.contains_key(&message_id) {
            store_message(&mut st, message.clone());
        }
        let (id, token) = st.new_interaction(Kind::Component, channel_id, true);
        let payload =
            payload::component_interaction(id, &token, channel_id, custom_id, message, member);
        if let Some(rec) = st.interactions.get_mut(&id) {
            rec.original = Some(message_id);
        }
        self.dispatch_interaction(st, id, payload)
    }

    /// A modal submission (MODAL_SUBMIT, type 5) of the modal `custom_id` in [`CHANNEL_ID`], with
    /// one text input per `(custom_id, value)` field, as Discord sends it.
    pub async fn modal_submit(
        &self,
        custom_id: &str,
        fields: &[(&str, &str)],
        member: FakeMember,
    ) -> u64 {
        let mut st = self.inner.lock();
        let (id, token) = st.new_interaction(Kind::ModalSubmit, CHANNEL_ID, true);
        let payload = payload::modal_interaction(id, &token, CHANNEL_ID, custom_id, fields, member);
        self.dispatch_interaction(st, id, payload)
    }

    /// The first callback the bot POSTed for interaction `id` (waits for it).
    pub async fn callback_for(&self, id: u64) -> Value {
        self.wait(&format!("the callback for interaction {id}"), |st| {
            st.interactions
                .get(&id)
                .and_then(|i| i.callbacks.first())
                .map(|(body, _)| body.clone())
        })
        .await
    }

    /// The message `@original` of interaction `id` refers to, once there is one (the response
    /// message for type 4/5 callbacks, the clicked message for components).
    pub async fn original_message(&self, id: u64) -> Value {
        self.wait(
            &format!("the original response of interaction {id}"),
            |st| {
                let original = st.interactions.get(&id)?.original?;
                st.messages.get(&original).cloned()
            },
        )
        .await
    }

    /// The token Discord gave interaction `id` (to call the webhook routes by hand).
    pub fn interaction_token(&self, id: u64) -> Option<String> {
        self.inner
            .lock()
            .interactions
            .get(&id)
            .map(|i| i.token.clone())
    }

    /// The first follow-up message of interaction `id` (waits for it).
    pub async fn first_followup(&self, id: u64) -> Value {
        self.wait(&format!("a follow-up of interaction {id}"), |st| {
            let first = *st.interactions.get(&id)?.followups.first()?;
            st.messages.get(&first).cloned()
        })
        .await
    }

    /// The follow-up messages of interaction `id`, in order.
    pub fn followups(&self, id: u64) -> Vec<Value> {
        let st = self.inner.lock();
        st.interactions
            .get(&id)
            .map(|i| {
                i.followups
                    .iter()
                    .filter_map(|m| st.messages.get(m).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Time between writing INTERACTION_CREATE to the socket and receiving its first callback.
    pub fn callback_latency(&self, id: u64) -> Option<Duration> {
        let st = self.inner.lock();
        let rec = st.interactions.get(&id)?;
        let (_, at) = rec.callbacks.first()?;
        Some(at.saturating_duration_since(rec.sent_at?))
    }

    /// When INTERACTION_CREATE of interaction `id` was written to the socket (what
    /// [`FakeDiscord::callback_latency`] counts from), for latencies that end elsewhere.
    pub fn interaction_sent_at(&self, id: u64) -> Option<Instant> {
        self.inner.lock().interactions.get(&id)?.sent_at
    }

    fn send_command(&self, kind: Kind, name: &str, options: Value, place: Place) -> u64 {
        let mut st = self.inner.lock();
        let (channel_id, in_guild) = match place {
            Place::Guild(_) => (CHANNEL_ID, true),
            Place::Dm(user) => (st.dm_channel(user), false),
        };
        let (command_id, command_guild) = st.command_id(name);
        let (id, token) = st.new_interaction(kind, channel_id, in_guild);
        let payload = payload::command_interaction(&payload::CommandSpec {
            id,
            token: &token,
            kind: if kind == Kind::Autocomplete { 4 } else { 2 },
            name,
            command_id,
            command_guild,
            options,
            place,
            channel_id,
        });
        self.dispatch_interaction(st, id, payload)
    }

    fn dispatch_interaction(&self, mut st: MutexGuard<'_, St>, id: u64, payload: Value) -> u64 {
        // Serenity would drop an INTERACTION_CREATE it cannot parse without a word (it becomes
        // `Event::Unknown`), so a malformed one (say, an option value of the wrong type) fails
        // here instead.
        if let Err(why) = serenity_parses("INTERACTION_CREATE", &payload) {
            drop(st);
            panic!(
                "fake Discord: serenity could not parse this INTERACTION_CREATE ({why}): {payload}"
            );
        }
        let sent = st.dispatch("INTERACTION_CREATE", payload, OutKind::Interaction(id));
        drop(st);
        assert!(
            sent,
            "no gateway session: call wait_ready() before sending interactions"
        );
        self.inner.bump();
        id
    }
}

impl St {
    fn new_interaction(&mut self, kind: Kind, channel_id: u64, in_guild: bool) -> (u64, String) {
        let id = self.next_interaction;
        self.next_interaction += 1;
        let token = format!("itoken-{id}-{}", self.snowflake());
        self.interactions.insert(
            id,
            Interaction {
                kind,
                token: token.clone(),
                channel_id,
                in_guild,
                sent_at: None,
                callbacks: Vec::new(),
                acknowledged: false,
                original: None,
                followups: Vec::new(),
            },
        );
        (id, token)
    }

    fn interaction_by_token(&self, token: &str) -> Option<u64> {
        self.interactions
            .iter()
            .find(|(_, i)| i.token == token)
            .map(|(id, _)| *id)
    }
}

pub(super) fn callback(st: &mut St, path: &str, id: &str, token: &str, body: Value) -> RestReply {
    let what = format!("POST {path}");
    let Some(id) = id
        .parse::<u64>()
        .ok()
        .filter(|id| st.interactions.contains_key(id))
    else {
        st.violation(format!("{what}: unknown interaction"));
        return not_found(10062, "Unknown interaction");
    };
    let now = Instant::now();
    let rec = st.interactions.get_mut(&id).expect("checked");
    rec.callbacks.push((body.clone(), now));
    if rec.token != token {
        st.violation(format!("{what}: wrong interaction token"));
        return not_found(10062, "Unknown interaction");
    }
    if rec.acknowledged {
        st.violation(format!("{what}: interaction {id} acknowledged twice"));
        return (
            StatusCode::BAD_REQUEST,
            Some(error_json(
                40060,
                "Interaction has already been acknowledged.",
            )),
        );
    }
    let kind = rec.kind;
    let (channel_id, original) = (rec.channel_id, rec.original);
    let ty = body["type"].as_u64();
    let data = &body["data"];
    let mut problems = Vec::new();
    let allowed: &[u64] = match kind {
        Kind::Command => &[4, 5, 9],
        Kind::Component => &[4, 5, 6, 7, 9],
        Kind::Autocomplete => &[8],
        // A modal submit may not answer with another modal.
        Kind::ModalSubmit => &[4, 5, 6, 7],
    };
    match ty {
        Some(t @ (1 | 4 | 5 | 6 | 7 | 8 | 9)) if !allowed.contains(&t) => problems.push(format!(
            "callback type {t} does not answer a {kind:?} interaction"
        )),
        Some(1 | 4 | 5 | 6 | 7 | 8 | 9) => {}
        other => problems.push(format!(
            "callback type {other:?} is not one of 1,4,5,6,7,8,9"
        )),
    }
    match ty {
        Some(1 | 6) if !data.is_null() => {
            problems.push(format!("callback type {} takes no data", ty.unwrap_or(0)));
        }
        Some(4) => problems.extend(check_message(data, true, true)),
        Some(7) => problems.extend(check_message(data, true, false)),
        // Discord reads only `flags` from a deferred response (serenity also sends
        // `attachments: []`).
        Some(5) => check_flags(data, true, &mut problems),
        Some(8) => check_choices(data, &mut problems),
        Some(9) => check_modal(data, &mut problems),
        _ => {}
    }
    if let Some(reply) = invalid_form(st, &what, problems) {
        return reply;
    }
    st.interactions.get_mut(&id).expect("checked").acknowledged = true;
    match ty {
        Some(4) => {
            let message = new_message(st, channel_id, data, 20, Origin::Interaction);
            let message_id = snowflake(&message["id"]);
            st.interactions.get_mut(&id).expect("checked").original = message_id;
        }
        Some(5) => {
            let flags = data["flags"].as_u64().unwrap_or(0) | LOADING;
            let message = new_message(
                st,
                channel_id,
                &json!({"content": "", "flags": flags}),
                20,
                Origin::Interaction,
            );
            let message_id = snowflake(&message["id"]);
            st.interactions.get_mut(&id).expect("checked").original = message_id;
        }
        Some(7) => {
            if let Some(original) = original {
                edit_message(st, original, data);
            }
        }
        _ => {}
    }
    (StatusCode::NO_CONTENT, None)
}

pub(super) fn webhook_route(
    st: &mut St,
    m: &str,
    path: &str,
    app: &str,
    token: &str,
    rest: &[&str],
    body: Value,
) -> RestReply {
    let what = format!("{m} {path}");
    let interaction = st.interaction_by_token(token);
    let Some(id) = interaction.filter(|_| app.parse::<u64>() == Ok(APP_ID)) else {
        st.violation(format!(
            "{what}: unknown webhook (application id or interaction token)"
        ));
        return not_found(10015, "Unknown Webhook");
    };
    let (acknowledged, original, channel_id) = {
        let rec = &st.interactions[&id];
        (rec.acknowledged, rec.original, rec.channel_id)
    };
    match (m, rest) {
        ("POST", []) => {
            if !acknowledged {
                st.violation(format!(
                    "{what}: follow-up before the interaction was acknowledged"
                ));
                return not_found(10015, "Unknown Webhook");
            }
            let problems = check_message(&body, true, true);
            if let Some(reply) = invalid_form(st, &what, problems) {
                return reply;
            }
            let message = new_message(st, channel_id, &body, 20, Origin::Interaction);
            if let Some(mid) = snowflake(&message["id"]) {
                st.interactions
                    .get_mut(&id)
                    .expect("exists")
                    .followups
                    .push(mid);
            }
            ok(message)
        }
        (_, ["messages", which]) => {
            if !acknowledged {
                st.violation(format!("{what}: the interaction was not acknowledged yet"));
                return not_found(10008, "Unknown Message");
            }
            let target = if *which == "@original" {
                original
            } else {
                which.parse::<u64>().ok().filter(|mid| {
                    st.interactions[&id].followups.contains(mid) || Some(*mid) == original
                })
            };
            let Some(target) = target.filter(|t| st.messages.contains_key(t)) else {
                return not_found(10008, "Unknown Message");
            };
            match m {
                "GET" => ok(st.messages[&target].clone()),
                "PATCH" => {
                    let problems = check_message(&body, true, false);
                    if let Some(reply) = invalid_form(st, &what, problems) {
                        return reply;
                    }
                    ok(edit_message(st, target, &body))
                }
                "DELETE" => {
                    st.messages.remove(&target);
                    (StatusCode::NO_CONTENT, None)
                }
                _ => unserved(st, m, path),
            }
        }
        _ => unserved(st, m, path),
    }
}

fn find_custom_id(components: &Value, custom_id: &str) -> bool {
    match components {
        Value::Array(items) => items.iter().any(|c| find_custom_id(c, custom_id)),
        Value::Object(obj) => {
            obj.get("custom_id").and_then(Value::as_str) == Some(custom_id)
                || obj
                    .get("components")
                    .is_some_and(|c| find_custom_id(c, custom_id))
                || obj
                    .get("component")
                    .is_some_and(|c| find_custom_id(c, custom_id))
        }
        _ => false,
    }
}

fn has_focused(options: &Value) -> bool {
    options.as_array().is_some_and(|opts| {
        opts.iter()
            .any(|o| o["focused"] == json!(true) || has_focused(&o["options"]))
    })
}

fn mark_last_focused(options: &mut Value) {
    let Some(last) = options.as_array_mut().and_then(|a| a.last_mut()) else {
        return;
    };
    if last["options"].as_array().is_some_and(|o| !o.is_empty()) {
        mark_last_focused(&mut last["options"]);
    } else if let Some(obj) = last.as_object_mut() {
        obj.insert("focused".into(), json!(true));
    }
}
