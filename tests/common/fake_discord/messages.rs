//! Channel messages as Discord keeps them: created (plain or as a reply, with `enforce_nonce`),
//! edited (every version kept), deleted by a person; the guild's channels and DM channels;
//! incoming webhooks (execute, and get, edit or delete what they sent); and the mentions
//! Discord would parse from content under `allowed_mentions`.

use std::time::Instant;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::checks::{
    check_message, check_reference, check_webhook_identity, is_snowflake, query_flag, query_param,
    serenity_parses,
};
use super::rest::{RestReply, error_json, invalid_form, not_found, ok, unserved};
use super::*;

impl FakeDiscord {
    /// A message as the fake stores it (after every edit).
    pub fn message(&self, id: u64) -> Option<Value> {
        self.inner.lock().messages.get(&id).cloned()
    }

    /// Denies the bot's role the permission `bits` in `channel` (a channel permission
    /// overwrite, as Edit Channel, Permissions makes): `GET /channels/{id}` shows it, and a
    /// message the bot then posts there without SEND_MESSAGES is refused with 403 50013.
    pub fn deny_bot(&self, channel: u64, bits: u64) {
        self.inner
            .lock()
            .overwrites
            .entry(channel)
            .or_default()
            .push(json!({
                "id": BOT_ROLE.to_string(),
                "type": 0,
                "allow": "0",
                "deny": bits.to_string(),
            }));
    }

    /// The bot's token is reset on the Developer Portal: every call that needs it is answered
    /// 401 from now on.
    pub fn reset_token(&self) {
        self.inner.lock().token_reset = true;
    }

    /// Adds a text channel to [`GUILD_ID`], for tests that need more than the three the fake
    /// starts with. Like Discord, the fake dispatches CHANNEL_CREATE when a gateway session is
    /// open (so serenity's cache learns the channel) and lists it in later GUILD_CREATEs.
    pub fn add_channel(&self, id: u64) {
        let mut st = self.inner.lock();
        if st.guild_channels.contains(&id) || st.dm_channels.values().any(|c| *c == id) {
            return;
        }
        st.guild_channels.push(id);
        let channel = payload::text_channel(id);
        if let Err(why) = serenity_parses("CHANNEL_CREATE", &channel) {
            st.violation(format!(
                "fake Discord bug: serenity cannot parse its CHANNEL_CREATE: {why}"
            ));
        }
        st.dispatch("CHANNEL_CREATE", channel, OutKind::Plain);
        drop(st);
        self.inner.bump();
    }

    /// Creates an incoming webhook in `channel` and returns its URL,
    /// `http://127.0.0.1:PORT/api/v10/webhooks/{id}/{token}`, as a user would copy it from
    /// Discord. The URL is the credential: its routes take no Authorization header. Messages it
    /// sends are authored by the webhook, not the bot, and carry its `webhook_id`.
    pub fn create_webhook(&self, channel: u64) -> String {
        let mut st = self.inner.lock();
        assert!(
            known_channel(&st, &channel.to_string()).is_some(),
            "create_webhook: channel {channel} is unknown; call add_channel first"
        );
        let id = st.snowflake();
        let token = format!("wtoken-{id}-{}", st.snowflake());
        st.webhooks.insert(
            id,
            Webhook {
                token: token.clone(),
                channel_id: channel,
                messages: Vec::new(),
            },
        );
        format!("{}/api/v10/webhooks/{id}/{token}", self.api_base())
    }

    /// The messages in `channel` that still exist, oldest first (message ids grow with time, as
    /// Discord's snowflakes do).
    pub fn channel_messages(&self, channel: u64) -> Vec<Value> {
        channel_messages(&self.inner.lock(), channel)
    }

    /// Every version of message `id`: the message as created, then as it was after each edit,
    /// so that a test can assert the sequence of edits. It outlives the message's deletion.
    pub fn message_history(&self, id: u64) -> Vec<Value> {
        self.inner
            .lock()
            .history
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// Deletes message `id` as a person in Discord would: afterwards every route that touches it
    /// answers 404 with code 10008, "Unknown Message". No MESSAGE_DELETE is dispatched, since
    /// the bot asks only for the GUILDS intent and Discord would not send it one. Panics if the
    /// message does not exist, which would be a mistake in the test.
    pub fn delete_message(&self, id: u64) {
        let removed = self.inner.lock().messages.remove(&id);
        assert!(removed.is_some(), "delete_message: no message {id}");
        self.inner.bump();
    }

    /// Ends the `enforce_nonce` window of every nonce seen so far, as if Discord's few minutes
    /// had passed: a message created again with the same nonce is a new message.
    pub fn expire_nonces(&self) {
        self.inner.lock().nonces.clear();
    }

    /// Awaits at least `n` messages in `channel` (see [`FakeDiscord::channel_messages`]) and
    /// returns them all.
    pub async fn wait_for_messages(&self, channel: u64, n: usize) -> Vec<Value> {
        self.wait(&format!("{n} messages in channel {channel}"), |st| {
            let messages = channel_messages(st, channel);
            (messages.len() >= n).then_some(messages)
        })
        .await
    }

    /// Awaits a version of message `id` that `pred` accepts (see
    /// [`FakeDiscord::message_history`]) and returns the history up to now.
    pub async fn wait_for_version(
        &self,
        id: u64,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        self.wait(what, |st| {
            let history = st.history.get(&id)?;
            history.iter().any(&pred).then(|| history.clone())
        })
        .await
    }

    /// Awaits at least `edits` edits of message `id` and returns its history (the created
    /// version, then one per edit; see [`FakeDiscord::message_history`]).
    pub async fn wait_for_edits(&self, id: u64, edits: usize) -> Vec<Value> {
        self.wait(&format!("{edits} edits of message {id}"), |st| {
            let history = st.history.get(&id)?;
            (history.len() > edits).then(|| history.clone())
        })
        .await
    }
}

impl St {
    pub(super) fn dm_channel(&mut self, user: u64) -> u64 {
        let next = 410_000_000_000_000_001 + self.dm_channels.len() as u64;
        *self.dm_channels.entry(user).or_insert(next)
    }
}

fn channel_messages(st: &St, channel: u64) -> Vec<Value> {
    let mut found: Vec<(u64, Value)> = st
        .messages
        .iter()
        .filter(|(_, m)| snowflake(&m["channel_id"]) == Some(channel))
        .map(|(id, m)| (*id, m.clone()))
        .collect();
    found.sort_by_key(|(id, _)| *id);
    found.into_iter().map(|(_, m)| m).collect()
}

pub(super) fn known_channel(st: &St, channel: &str) -> Option<u64> {
    let id = channel.parse::<u64>().ok()?;
    (st.guild_channels.contains(&id) || st.dm_channels.values().any(|c| *c == id)).then_some(id)
}

/// `POST /channels/{id}/messages`: a plain message, or a reply when the body has a
/// `message_reference`.
pub(super) fn create_channel_message(
    st: &mut St,
    what: &str,
    channel: u64,
    body: &Value,
) -> RestReply {
    let mut problems = check_message(body, false, true);
    let reference = check_reference(&body["message_reference"], channel, &mut problems);
    let (nonce, enforce) = check_nonce(body, &mut problems);
    if let Some(reply) = invalid_form(st, what, problems) {
        return reply;
    }
    // enforce_nonce: the same author sending the same nonce within the window gets the first
    // message back (200) and nothing new is created. A message deleted since then is no longer
    // returned; the fake then creates a new one.
    let now = Instant::now();
    let key = nonce.clone().map(|n| (BOT_USER_ID, n));
    if enforce
        && let Some(key) = &key
        && let Some((first, at)) = st.nonces.get(key)
        && now.saturating_duration_since(*at) < NONCE_WINDOW
        && let Some(message) = st.messages.get(first)
    {
        return ok(message.clone());
    }
    let reply = create_checked_message(st, channel, body, reference, nonce.as_deref());
    if let (Some(key), Some(id)) = (key, reply.1.as_ref().and_then(|m| snowflake(&m["id"]))) {
        st.nonces.insert(key, (id, now));
    }
    reply
}

/// The spec's `nonce` (an integer, or a string of at most 25 characters) and `enforce_nonce`
/// (a boolean): the nonce as a string, and whether it is to be enforced.
fn check_nonce(body: &Value, problems: &mut Vec<String>) -> (Option<String>, bool) {
    let nonce = match body.get("nonce").unwrap_or(&Value::Null) {
        Value::Null => None,
        Value::String(s) if s.chars().count() <= 25 => Some(s.clone()),
        Value::Number(n) if n.is_i64() => Some(n.to_string()),
        other => {
            problems.push(format!(
                "nonce must be an integer or a string of at most 25 characters, got {other}"
            ));
            None
        }
    };
    let enforce = match body.get("enforce_nonce").unwrap_or(&Value::Null) {
        Value::Null => false,
        Value::Bool(b) => *b,
        other => {
            problems.push(format!("enforce_nonce must be a boolean, got {other}"));
            false
        }
    };
    (nonce, enforce)
}

/// Creates a message (a reply when `reference` says so) from a body already checked.
fn create_checked_message(
    st: &mut St,
    channel: u64,
    body: &Value,
    reference: Option<(u64, bool)>,
    nonce: Option<&str>,
) -> RestReply {
    let referenced = match reference {
        None => None,
        Some((message_id, fail_if_not_exists)) => {
            let found = st
                .messages
                .get(&message_id)
                .filter(|m| snowflake(&m["channel_id"]) == Some(channel))
                .cloned();
            match found {
                Some(found) => Some(found),
                // The message replied to is gone, which a person can cause at any time, so
                // this is no violation: Discord answers with a form error, or sends a plain
                // message when told not to fail.
                None if fail_if_not_exists => return unknown_reference(),
                None => None,
            }
        }
    };
    let Some(mut referenced) = referenced else {
        let mut message = compose_message(st, channel, body, 0, Origin::Bot);
        if let Some(nonce) = nonce {
            message["nonce"] = json!(nonce);
        }
        return ok(store_message(st, message));
    };
    let mut message = compose_message(st, channel, body, REPLY, Origin::Bot);
    if let Some(nonce) = nonce {
        message["nonce"] = json!(nonce);
    }
    let mut reference = json!({
        "type": 0,
        "channel_id": channel.to_string(),
        "message_id": referenced["id"].clone(),
    });
    if let Some(guild) = message.get("guild_id") {
        reference["guild_id"] = guild.clone();
    }
    message["message_reference"] = reference;
    // Discord nests one level only: the message replied to comes without its own reply.
    if let Some(obj) = referenced.as_object_mut() {
        obj.remove("referenced_message");
    }
    message["referenced_message"] = referenced;
    ok(store_message(st, message))
}

/// Discord's answer to a reply whose message does not exist (and `fail_if_not_exists` is not
/// false).
fn unknown_reference() -> RestReply {
    (
        StatusCode::BAD_REQUEST,
        Some(json!({
            "message": "Invalid Form Body",
            "code": 50035,
            "errors": {"message_reference": {"_errors": [
                {"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"},
            ]}},
        })),
    )
}

/// An incoming webhook (one made by [`FakeDiscord::create_webhook`]): execute it, and get, edit
/// or delete the messages it sent. The token in the URL is the credential; an Authorization
/// header is neither needed nor checked.
// The parts `route` split the request into; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub(super) fn incoming_webhook_route(
    st: &mut St,
    m: &str,
    path: &str,
    id: u64,
    token: &str,
    rest: &[&str],
    query: Option<&str>,
    body: Value,
) -> RestReply {
    let what = format!("{m} {path}");
    let (expected, channel_id) = {
        let hook = &st.webhooks[&id];
        (hook.token.clone(), hook.channel_id)
    };
    if token != expected {
        st.violation(format!("{what}: wrong webhook token"));
        return (
            StatusCode::UNAUTHORIZED,
            Some(error_json(50027, "Invalid Webhook Token")),
        );
    }
    if query_param(query, "thread_id").is_some() {
        st.violation(format!(
            "{what}: thread_id, but the fake's channels have no threads"
        ));
        return not_found(10003, "Unknown Channel");
    }
    let mut problems = Vec::new();
    let with_components = query_flag(query, "with_components", &mut problems);
    match (m, rest) {
        ("POST", []) => {
            let wait = query_flag(query, "wait", &mut problems);
            problems.extend(check_message(&body, false, true));
            check_webhook_identity(&body, &mut problems);
            if let Some(reply) = invalid_form(st, &what, problems) {
                return reply;
            }
            if body.get("message_reference").is_some_and(|r| !r.is_null()) {
                st.violation(format!(
                    "{what}: a webhook cannot reply; Discord ignores message_reference and sends \
                     a plain message"
                ));
            }
            if ["nonce", "enforce_nonce"]
                .iter()
                .any(|k| body.get(*k).is_some_and(|v| !v.is_null()))
            {
                st.violation(format!(
                    "{what}: executing a webhook takes no nonce; Discord ignores it, so a retry \
                     posts twice"
                ));
            }
            let data = webhook_components(st, &what, &body, with_components);
            let username = body["username"]
                .as_str()
                .unwrap_or(WEBHOOK_NAME)
                .to_string();
            let origin = Origin::Webhook {
                id,
                username: &username,
            };
            let message = new_message(st, channel_id, &data, 0, origin);
            if let Some(mid) = snowflake(&message["id"])
                && let Some(hook) = st.webhooks.get_mut(&id)
            {
                hook.messages.push(mid);
            }
            // Without `?wait=true` Discord answers before the message exists, with no body.
            if wait {
                ok(message)
            } else {
                (StatusCode::NO_CONTENT, None)
            }
        }
        (_, ["messages", which]) => {
            let Some(target) = which.parse::<u64>().ok().filter(|mid| {
                st.webhooks[&id].messages.contains(mid) && st.messages.contains_key(mid)
            }) else {
                return not_found(10008, "Unknown Message");
            };
            match m {
                "GET" => ok(st.messages[&target].clone()),
                "PATCH" => {
                    problems.extend(check_message(&body, false, false));
                    if let Some(reply) = invalid_form(st, &what, problems) {
                        return reply;
                    }
                    let data = webhook_components(st, &what, &body, with_components);
                    ok(edit_message(st, target, &data))
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

/// The body with the components Discord would keep from a webhook that no application owns.
/// Discord accepts the request either way and drops what it will not show, without an error
/// (discord-api-docs#5744): interactive components (buttons of style 1-4, select menus) always,
/// since nobody would receive their clicks, and every component unless the URL has
/// `?with_components=true`. Each drop is recorded as a violation, since the bot would believe
/// the components are shown.
fn webhook_components(st: &mut St, what: &str, body: &Value, with_components: bool) -> Value {
    let has_components = body["components"].as_array().is_some_and(|c| !c.is_empty());
    if !has_components {
        return body.clone();
    }
    let why = if has_interactive(&body["components"]) {
        "a webhook no application owns cannot send interactive components (buttons of style \
         1-4, select menus); Discord drops them"
    } else if !with_components {
        "components on a webhook message are dropped unless the URL has ?with_components=true"
    } else {
        return body.clone();
    };
    st.violation(format!("{what}: {why}"));
    let mut data = body.clone();
    if let Some(obj) = data.as_object_mut() {
        obj.remove("components");
    }
    data
}

/// Whether a component tree holds anything that is clicked or picked: a button of style 1-4
/// (with a custom_id) or a select menu.
fn has_interactive(components: &Value) -> bool {
    match components {
        Value::Array(items) => items.iter().any(has_interactive),
        Value::Object(obj) => {
            let kind = obj.get("type").and_then(Value::as_u64);
            let style = obj.get("style").and_then(Value::as_u64);
            matches!((kind, style), (Some(2), Some(1..=4)))
                || matches!(kind, Some(3 | 5 | 6 | 7 | 8))
                || obj.get("components").is_some_and(has_interactive)
                || obj.get("accessory").is_some_and(has_interactive)
        }
        _ => false,
    }
}

/// Who a new message comes from, which decides its author and `webhook_id`.
#[derive(Clone, Copy)]
pub(super) enum Origin<'a> {
    /// The bot, through `POST /channels/{id}/messages`.
    Bot,
    /// An interaction response or follow-up: the bot, through the application's webhook.
    Interaction,
    /// An incoming webhook, under the name it posts with.
    Webhook { id: u64, username: &'a str },
}

pub(super) fn new_message(
    st: &mut St,
    channel_id: u64,
    data: &Value,
    kind: u64,
    origin: Origin,
) -> Value {
    let message = compose_message(st, channel_id, data, kind, origin);
    store_message(st, message)
}

/// A new message as Discord would return it, with a fresh id, not stored yet.
fn compose_message(st: &mut St, channel_id: u64, data: &Value, kind: u64, origin: Origin) -> Value {
    let id = st.next_message;
    st.next_message += 1;
    let in_guild = st.guild_channels.contains(&channel_id);
    let author = match origin {
        Origin::Bot | Origin::Interaction => payload::bot_user(),
        Origin::Webhook { id, username } => payload::webhook_author(id, username),
    };
    let mut message = json!({
        "id": id.to_string(),
        "channel_id": channel_id.to_string(),
        "author": author,
        "content": data["content"].as_str().unwrap_or_default(),
        "timestamp": now_timestamp(),
        "edited_timestamp": null,
        "tts": data["tts"].as_bool().unwrap_or(false),
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "mention_channels": [],
        "attachments": [],
        "embeds": [],
        "reactions": [],
        "pinned": false,
        "type": kind,
        "flags": data["flags"].as_u64().unwrap_or(0),
        "components": [],
    });
    if in_guild {
        message["guild_id"] = json!(GUILD_ID.to_string());
    }
    match origin {
        Origin::Bot => {}
        Origin::Interaction => {
            message["webhook_id"] = json!(APP_ID.to_string());
            message["application_id"] = json!(APP_ID.to_string());
        }
        Origin::Webhook { id, .. } => message["webhook_id"] = json!(id.to_string()),
    }
    apply_edit(st, &mut message, data);
    message
}

/// Stores a new or edited message and appends it to the message's history.
pub(super) fn store_message(st: &mut St, message: Value) -> Value {
    let id = snowflake(&message["id"]).expect("a message has an id");
    st.messages.insert(id, message.clone());
    st.history.entry(id).or_default().push(message.clone());
    message
}

pub(super) fn edit_message(st: &mut St, id: u64, data: &Value) -> Value {
    let Some(mut message) = st.messages.get(&id).cloned() else {
        return Value::Null;
    };
    apply_edit(st, &mut message, data);
    message["edited_timestamp"] = json!(now_timestamp());
    let flags = message["flags"].as_u64().unwrap_or(0) & !LOADING;
    message["flags"] = json!(flags);
    store_message(st, message)
}

/// Applies the fields of a create/edit body to a stored message, as Discord echoes them.
fn apply_edit(st: &mut St, message: &mut Value, data: &Value) {
    if let Some(content) = data.get("content") {
        let content = content.as_str().unwrap_or_default();
        message["content"] = json!(content);
        let mentioned = mentions(content, &data["allowed_mentions"]);
        message["mentions"] =
            Value::Array(mentioned.users.into_iter().map(payload::user).collect());
        message["mention_roles"] = json!(
            mentioned
                .roles
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
        );
        message["mention_everyone"] = json!(mentioned.everyone);
    }
    if let Some(embeds) = data.get("embeds") {
        let embeds: Vec<Value> = embeds
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut e| {
                if let Some(obj) = e.as_object_mut() {
                    obj.retain(|_, v| !v.is_null());
                    obj.entry("type").or_insert(json!("rich"));
                }
                e
            })
            .collect();
        message["embeds"] = Value::Array(embeds);
    }
    if let Some(components) = data.get("components") {
        message["components"] = if components.is_null() {
            json!([])
        } else {
            components.clone()
        };
    }
    if let Some(attachments) = data.get("attachments") {
        let list: Vec<Value> = attachments
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let filename = a["filename"].as_str().unwrap_or("file").to_string();
                let id = snowflake(&a["id"])
                    .filter(|id| *id > 1_000_000)
                    .unwrap_or_else(|| st.snowflake());
                json!({
                    "id": id.to_string(),
                    "filename": filename,
                    "size": 0,
                    "url": format!("https://cdn.invalid/attachments/{id}/{filename}"),
                    "proxy_url": format!("https://media.invalid/attachments/{id}/{filename}"),
                })
            })
            .collect();
        message["attachments"] = Value::Array(list);
    }
}

fn now_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// Who a message's content mentions, once `allowed_mentions` has had its say.
struct Mentioned {
    users: Vec<u64>,
    /// Only the guild's roles: Discord leaves a mention of an unknown role out.
    roles: Vec<u64>,
    everyone: bool,
}

/// The mentions in `content` (`<@id>`, `<@!id>`, `<@&id>`, `@everyone`, `@here`) that
/// `allowed` lets through. Without `allowed_mentions` Discord parses every mention in the
/// content; with it, a type counts when `parse` names it or, for users and roles, when the id
/// is listed.
fn mentions(content: &str, allowed: &Value) -> Mentioned {
    let lets = |kind: &str, id: Option<u64>| {
        if allowed.is_null() {
            return true;
        }
        let parsed = allowed["parse"]
            .as_array()
            .is_some_and(|p| p.iter().any(|t| t == kind));
        let listed = id.is_some_and(|id| {
            allowed[kind]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|x| x == &json!(id.to_string())))
        });
        parsed || listed
    };
    let guild_roles: Vec<u64> = payload::roles()
        .iter()
        .filter_map(|r| snowflake(&r["id"]))
        .filter(|id| *id != GUILD_ID)
        .collect();
    let mut found = Mentioned {
        users: Vec::new(),
        roles: Vec::new(),
        everyone: (content.contains("@everyone") || content.contains("@here"))
            && lets("everyone", None),
    };
    for piece in content.split("<@").skip(1) {
        let (is_role, rest) = match piece.as_bytes().first() {
            Some(b'&') => (true, &piece[1..]),
            Some(b'!') => (false, &piece[1..]),
            _ => (false, piece),
        };
        let Some((digits, _)) = rest.split_once('>') else {
            continue;
        };
        let Some(id) = digits.parse::<u64>().ok().filter(|_| is_snowflake(digits)) else {
            continue;
        };
        if is_role {
            if guild_roles.contains(&id) && lets("roles", Some(id)) && !found.roles.contains(&id) {
                found.roles.push(id);
            }
        } else if lets("users", Some(id)) && !found.users.contains(&id) {
            found.users.push(id);
        }
    }
    found
}
