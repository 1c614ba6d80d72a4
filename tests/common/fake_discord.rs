//! A fake Discord for end-to-end tests: the REST API under `/api/v10` and the gateway websocket
//! at `/gateway`, on one 127.0.0.1 port.
//!
//! It speaks to a real serenity (0.12) client: point `HttpBuilder::proxy` at [`FakeDiscord::api_base`]
//! (serenity rewrites `https://discord.com` to the proxy, so requests arrive as
//! `/api/v10/...`); `GET /api/v10/gateway` hands out `ws://127.0.0.1:PORT/gateway`.
//!
//! Everything the bot sends is recorded ([`FakeDiscord::requests`], with the status answered and
//! when) and the parts Discord would reject (callback types that do not fit the interaction,
//! embed and component limits, editing a response that was never acknowledged, routes the fake
//! does not serve...) are listed by [`FakeDiscord::violations`]. Every payload the fake sends is
//! built to deserialize with serenity's own model types: a payload serenity cannot parse would be
//! dropped silently as `Event::Unknown`, so the self-test (`tests/fake_discord_selftest.rs`)
//! parses each of them.
//!
//! Alert delivery does not go through serenity: the dispatcher calls the REST API with reqwest,
//! so the fake also serves what it needs, checked against Discord's OpenAPI spec
//! (`discord-api-spec/openapi.json`): guild channels besides [`CHANNEL_ID`]
//! ([`ALERT_CHANNEL_ID`], [`ROUTE_CHANNEL_ID`], [`FakeDiscord::add_channel`]), replies
//! (`message_reference`), `allowed_mentions`, incoming webhooks
//! ([`FakeDiscord::create_webhook`]), `enforce_nonce` on created messages (the same nonce from the
//! same author within a window returns the first message; [`FakeDiscord::expire_nonces`]), a
//! per-channel view of the messages and of every version of each
//! ([`FakeDiscord::channel_messages`], [`FakeDiscord::message_history`]), and faults
//! ([`FakeDiscord::inject`]): 429s with Discord's headers, 5xx answers and requests that never
//! get an answer. A request sent while an injected 429's `retry_after` has not run out is a
//! violation, which is how a test proves the bot honours 429s.
//!
//! Waiting is done on a `watch` channel bumped on every change, with a 20 s deadline; nothing
//! polls or sleeps.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

pub const APP_ID: u64 = 900_000_000_000_000_001;
pub const BOT_USER_ID: u64 = 900_000_000_000_000_001;
pub const GUILD_ID: u64 = 100_000_000_000_000_001;
pub const OWNER_ID: u64 = 200_000_000_000_000_001;
/// A member holding [`ADMIN_ROLE`].
pub const ADMIN_USER_ID: u64 = 200_000_000_000_000_002;
/// A member holding [`OPS_ROLE`].
pub const OPS_USER_ID: u64 = 200_000_000_000_000_003;
/// A member with no roles.
pub const NOBODY_USER_ID: u64 = 200_000_000_000_000_004;
/// Has ADMINISTRATOR (8).
pub const ADMIN_ROLE: u64 = 300_000_000_000_000_001;
/// No Discord permissions.
pub const OPS_ROLE: u64 = 300_000_000_000_000_002;
pub const CHANNEL_ID: u64 = 400_000_000_000_000_001;
/// A second text channel in [`GUILD_ID`], where alert notifications go by default.
pub const ALERT_CHANNEL_ID: u64 = 400_000_000_000_000_002;
/// A third text channel in [`GUILD_ID`], for tests that route some alerts elsewhere.
pub const ROUTE_CHANNEL_ID: u64 = 400_000_000_000_000_003;
/// The guild's text channels when the fake starts ([`FakeDiscord::add_channel`] adds more).
pub const GUILD_CHANNELS: [u64; 3] = [CHANNEL_ID, ALERT_CHANNEL_ID, ROUTE_CHANNEL_ID];

/// Every permission bit Discord defines (what the owner gets).
pub const ALL_PERMISSIONS: u64 = 2_199_023_255_551;
/// The bot's permissions in the channel: view, send, embed links, read history, use commands.
pub const BOT_PERMISSIONS: u64 = 1024 | 2048 | 16384 | 65536 | 2_147_483_648;
/// Discord's attachment size limit for interactions (25 MiB).
pub const ATTACHMENT_SIZE_LIMIT: u64 = 26_214_400;
pub const HEARTBEAT_INTERVAL_MS: u64 = 41_250;

const DEADLINE: Duration = Duration::from_secs(20);
const JOINED_AT: &str = "2024-01-01T00:00:00.000000+00:00";
const EPHEMERAL: u64 = 1 << 6;
const LOADING: u64 = 1 << 7;
const SUPPRESS_EMBEDS: u64 = 1 << 2;
const SUPPRESS_NOTIFICATIONS: u64 = 1 << 12;
const COMPONENTS_V2: u64 = 1 << 15;
/// Message type REPLY: what Discord gives a message sent with a `message_reference`.
const REPLY: u64 = 19;
/// The name Discord gives a webhook made in its UI (`username` in an execute body overrides it).
const WEBHOOK_NAME: &str = "Captain Hook";
/// How long Discord remembers a message's `nonce` for `enforce_nonce`. Discord says only "the
/// past few minutes"; the fake keeps the nonce for two, and a test can end the window at once
/// with [`FakeDiscord::expire_nonces`].
const NONCE_WINDOW: Duration = Duration::from_secs(120);
/// What the fake puts in `X-RateLimit-Limit`: Discord's limit for creating messages in a channel
/// (5 per 5 s). Only a client that keeps its own buckets reads it.
const RATE_LIMIT: u32 = 5;

/// One REST request as the bot sent it, and how the fake answered it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The URL path (`/api/v10/...`), without the query.
    pub path: String,
    /// The query string without its `?` (`wait=true`), when the URL had one.
    pub query: Option<String>,
    /// The JSON body (for multipart requests, the `payload_json` part).
    pub body: Option<Value>,
    /// When the request arrived, so that a test can check how far apart retries were.
    pub at: Instant,
    /// The status the fake answered. `None` for a request held by [`Fault::Hang`], which is never
    /// answered.
    pub status: Option<u16>,
}

/// A failure [`FakeDiscord::inject`] answers with instead of serving a request, so that tests can
/// show how the bot copes when Discord slows it down or fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// HTTP 429 as Discord sends it: the spec's `RatelimitedResponse` body
    /// (`{"message", "retry_after", "global"}`) and the `Retry-After` and `X-RateLimit-*`
    /// headers. Until `retry_after` seconds have passed, every further request with the same
    /// method and path (any request at all when `global`) is answered 429 again, with the time
    /// left, and recorded as a violation: the bot did not wait as it was told.
    RateLimited { retry_after: f64, global: bool },
    /// That 5xx status, with Discord's JSON error body (`{"message": "500: Internal Server
    /// Error", "code": 0}`). A server error is not the bot's fault, so it is no violation.
    Server(u16),
    /// No answer at all, until the client gives up or the fake is dropped: a request lost in a
    /// stalled connection, which only a client timeout gets the bot out of.
    Hang,
    /// The request is served (a message is created or edited, its nonce remembered), but the
    /// answer never reaches the client: Discord did the work and the connection stalled on the
    /// way back. Only a client timeout gets the bot out of it, and a retry meets the result.
    Lost,
    /// The request is served, and the answer's status and headers go out with the first half
    /// of its body; then the connection closes: an answer cut mid-body.
    Cut,
}

/// Who invokes an interaction: the user, their roles, and whether their roles grant
/// ADMINISTRATOR.
#[derive(Debug, Clone, Copy)]
pub struct FakeMember {
    pub user_id: u64,
    pub roles: &'static [u64],
    pub administrator: bool,
}

impl FakeMember {
    /// The guild owner (every permission).
    pub const OWNER: FakeMember = FakeMember {
        user_id: OWNER_ID,
        roles: &[],
        administrator: true,
    };
    /// Holds [`ADMIN_ROLE`] (ADMINISTRATOR).
    pub const ADMIN: FakeMember = FakeMember {
        user_id: ADMIN_USER_ID,
        roles: &[ADMIN_ROLE],
        administrator: true,
    };
    /// Holds [`OPS_ROLE`] (no Discord permissions).
    pub const OPS: FakeMember = FakeMember {
        user_id: OPS_USER_ID,
        roles: &[OPS_ROLE],
        administrator: false,
    };
    /// No roles.
    pub const NOBODY: FakeMember = FakeMember {
        user_id: NOBODY_USER_ID,
        roles: &[],
        administrator: false,
    };

    /// The `permissions` string Discord puts on the interaction's member.
    pub fn permissions(&self) -> u64 {
        if self.user_id == OWNER_ID {
            return ALL_PERMISSIONS;
        }
        let roles = self
            .roles
            .iter()
            .fold(role_permissions(GUILD_ID), |acc, role| {
                acc | role_permissions(*role)
            });
        if self.administrator { roles | 8 } else { roles }
    }
}

/// A snapshot of the gateway side, for [`FakeDiscord::wait_gateway`].
#[derive(Debug, Clone, Default)]
pub struct GatewayStatus {
    /// A websocket is open and bound to the session (identified or resumed).
    pub connected: bool,
    pub identify_count: usize,
    pub resume_count: usize,
    /// READY and GUILD_CREATE of the current session have been written to the socket.
    pub ready_written: bool,
    /// How many RESUMED dispatches have been written to a socket.
    pub resumed_written: usize,
    pub session_id: Option<String>,
}

pub struct FakeDiscord {
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

struct Inner {
    port: u16,
    state: Mutex<St>,
    changed: watch::Sender<u64>,
    /// Set when the [`FakeDiscord`] is dropped. Aborting the server task does not end the
    /// connection tasks axum spawned, so requests held by [`Fault::Hang`] wait for this instead.
    closed: watch::Sender<bool>,
}

#[derive(Default)]
struct St {
    requests: Vec<Recorded>,
    violations: Vec<String>,
    identify_tokens: Vec<String>,
    rest_tokens: Vec<String>,
    // gateway
    identify_count: usize,
    resume_count: usize,
    next_session: u64,
    session: Option<Session>,
    conn: Option<Conn>,
    next_conn: u64,
    ready_written: bool,
    resumed_written: usize,
    sent_frames: Vec<Value>,
    gateway_ops: Vec<Value>,
    // interactions and messages
    next_interaction: u64,
    interactions: HashMap<u64, Interaction>,
    next_message: u64,
    messages: HashMap<u64, Value>,
    next_snowflake: u64,
    commands: HashMap<Option<u64>, Vec<Value>>,
    synthetic_command_ids: HashMap<String, u64>,
    dm_channels: HashMap<u64, u64>,
    /// The guild's text channels, in the order GUILD_CREATE lists them.
    guild_channels: Vec<u64>,
    /// Every version of every message (as created, then after each edit), kept after deletion.
    history: HashMap<u64, Vec<Value>>,
    webhooks: HashMap<u64, Webhook>,
    /// Injected faults not used up yet, the first match is answered first.
    faults: Vec<Injected>,
    /// The `retry_after` windows of the 429s answered so far.
    windows: Vec<Window>,
    /// The nonce of every message created with one, by author: the message and when, for
    /// `enforce_nonce`.
    nonces: HashMap<(u64, String), (u64, Instant)>,
}

/// An incoming webhook made by [`FakeDiscord::create_webhook`].
struct Webhook {
    token: String,
    channel_id: u64,
    /// The messages it sent: only these can be fetched, edited or deleted through it.
    messages: Vec<u64>,
}

struct Injected {
    fault: Fault,
    method: String,
    /// A route prefix under `/api/v10` (see [`route_matches`]).
    path: String,
    remaining: usize,
}

/// A 429's `retry_after` window: until `until`, the same request (any request when `global`)
/// must not be sent again.
struct Window {
    method: String,
    path: String,
    global: bool,
    retry_after: f64,
    answered_at: Instant,
    until: Instant,
}

/// What a 429 tells the client: how long to wait, whether the limit is global, and the bucket.
struct Limited {
    retry_after: f64,
    global: bool,
    bucket: String,
}

struct Session {
    id: String,
    seq: u64,
    log: Vec<(u64, Out)>,
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Out>,
    kill: Option<oneshot::Sender<()>>,
    bound: bool,
}

#[derive(Clone)]
struct Out {
    text: String,
    kind: OutKind,
}

#[derive(Clone, Copy, PartialEq)]
enum OutKind {
    Plain,
    GuildCreate,
    Resumed,
    Interaction(u64),
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Command,
    Component,
    Autocomplete,
}

struct Interaction {
    kind: Kind,
    token: String,
    channel_id: u64,
    in_guild: bool,
    sent_at: Option<Instant>,
    /// Every callback POSTed, accepted or not, with when it arrived.
    callbacks: Vec<(Value, Instant)>,
    acknowledged: bool,
    /// The message `@original` refers to (the response, or the clicked message).
    original: Option<u64>,
    followups: Vec<u64>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, St> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/gateway", self.port)
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
        self.inner.closed.send_replace(true);
        if let Some(conn) = self.inner.lock().conn.as_mut()
            && let Some(kill) = conn.kill.take()
        {
            let _ = kill.send(());
        }
    }
}

impl FakeDiscord {
    /// Binds 127.0.0.1:0 and serves REST and the gateway on that port.
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inner = Arc::new(Inner {
            port,
            state: Mutex::new(St {
                next_interaction: 700_000_000_000_000_001,
                next_message: 600_000_000_000_000_001,
                next_snowflake: 800_000_000_000_000_001,
                guild_channels: GUILD_CHANNELS.to_vec(),
                ..St::default()
            }),
            changed: watch::channel(0).0,
            closed: watch::channel(false).0,
        });
        let app = Router::new()
            .route("/gateway", any(ws_handler))
            .fallback(rest_handler)
            .with_state(Arc::clone(&inner));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeDiscord { inner, server }
    }

    /// What `DISCORD_API_BASE` is set to: `http://127.0.0.1:PORT`.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.port)
    }

    /// The gateway URL handed out by `GET /api/v10/gateway`.
    pub fn gateway_url(&self) -> String {
        self.inner.ws_url()
    }

    /// Every REST request, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().requests.clone()
    }

    /// What Discord would have rejected, or the fake could not serve.
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().violations.clone()
    }

    /// The tokens sent in IDENTIFY, in order.
    pub fn identify_tokens(&self) -> Vec<String> {
        self.inner.lock().identify_tokens.clone()
    }

    /// The distinct `Authorization` headers REST requests carried.
    pub fn rest_tokens(&self) -> Vec<String> {
        self.inner.lock().rest_tokens.clone()
    }

    /// Every gateway frame the fake wrote (HELLO, ACKs, dispatches), in order.
    pub fn sent_frames(&self) -> Vec<Value> {
        self.inner.lock().sent_frames.clone()
    }

    /// Every frame the bot sent on the gateway (tokens replaced by `***`).
    pub fn gateway_ops(&self) -> Vec<Value> {
        self.inner.lock().gateway_ops.clone()
    }

    /// The commands registered with `PUT`/`POST`: `None` for global ones, `Some(guild)` per guild.
    pub fn registered_commands(&self, guild: Option<u64>) -> Vec<Value> {
        self.inner
            .lock()
            .commands
            .get(&guild)
            .cloned()
            .unwrap_or_default()
    }

    /// A message as the fake stores it (after every edit).
    pub fn message(&self, id: u64) -> Option<Value> {
        self.inner.lock().messages.get(&id).cloned()
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

    /// Answers the next `times` requests with `method` and a path under `path` with `fault`
    /// instead of serving them. `path` is a route prefix as in [`FakeDiscord::attempts`], for
    /// example `format!("/channels/{ALERT_CHANNEL_ID}/messages")` or a webhook URL. Faults are
    /// used in the order they were injected; the requests stay in [`FakeDiscord::requests`]
    /// with the status answered.
    pub fn inject(&self, fault: Fault, method: &str, path: &str, times: usize) {
        match fault {
            Fault::RateLimited { retry_after, .. } => assert!(
                retry_after.is_finite() && retry_after >= 0.0,
                "inject: retry_after must be a number of seconds, got {retry_after}"
            ),
            Fault::Server(status) => assert!(
                (500..=599).contains(&status),
                "inject: Fault::Server takes a 5xx status, got {status}"
            ),
            Fault::Hang | Fault::Lost | Fault::Cut => {}
        }
        self.inner.lock().faults.push(Injected {
            fault,
            method: method.to_ascii_uppercase(),
            path: route_prefix(path),
            remaining: times,
        });
    }

    /// The requests with `method` whose path is `path` or lies under it, in order, each with
    /// when it arrived and the status answered: what a test counts retries and their spacing
    /// with. `path` is relative to `/api/v10` (`/channels/{id}/messages`); a full URL or a path
    /// starting with `/api/v10` is accepted too, and a query string is ignored.
    pub fn attempts(&self, method: &str, path: &str) -> Vec<Recorded> {
        attempts(&self.inner.lock(), method, &route_prefix(path))
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

    /// Awaits at least `edits` edits of message `id` and returns its history (the created
    /// version, then one per edit; see [`FakeDiscord::message_history`]).
    pub async fn wait_for_edits(&self, id: u64, edits: usize) -> Vec<Value> {
        self.wait(&format!("{edits} edits of message {id}"), |st| {
            let history = st.history.get(&id)?;
            (history.len() > edits).then(|| history.clone())
        })
        .await
    }

    /// Awaits at least `n` requests matching `method` and `path` (as in
    /// [`FakeDiscord::attempts`]) and returns them all. A matching request is recorded with its
    /// status in the same step, so each one returned has been answered, unless it hangs.
    pub async fn wait_for_attempts(&self, method: &str, path: &str, n: usize) -> Vec<Recorded> {
        let prefix = route_prefix(path);
        self.wait(&format!("{n} attempts of {method} {prefix}"), |st| {
            let found = attempts(st, method, &prefix);
            (found.len() >= n).then_some(found)
        })
        .await
    }

    pub fn identify_count(&self) -> usize {
        self.inner.lock().identify_count
    }

    pub fn resume_count(&self) -> usize {
        self.inner.lock().resume_count
    }

    pub fn gateway_status(&self) -> GatewayStatus {
        status(&self.inner.lock())
    }

    /// Awaits the first request (from the start of the log) matching `pred`.
    pub async fn wait_for_request(&self, what: &str, pred: impl Fn(&Recorded) -> bool) -> Recorded {
        self.wait(what, |st| st.requests.iter().find(|r| pred(r)).cloned())
            .await
    }

    /// Awaits a gateway state matching `pred`.
    pub async fn wait_gateway(&self, what: &str, pred: impl Fn(&GatewayStatus) -> bool) {
        self.wait(what, |st| pred(&status(st)).then_some(())).await
    }

    /// Until a session is identified and READY + GUILD_CREATE were written to the socket.
    pub async fn wait_ready(&self) {
        self.wait_gateway("the gateway session to be READY", |s| {
            s.identify_count >= 1 && s.ready_written && s.connected
        })
        .await
    }

    /// Until `n` IDENTIFYs happened and the last one's READY + GUILD_CREATE were written.
    pub async fn wait_identified(&self, n: usize) {
        self.wait_gateway(&format!("IDENTIFY #{n} and its READY"), |s| {
            s.identify_count >= n && s.ready_written && s.connected
        })
        .await
    }

    /// Until `n` RESUMEs happened and their RESUMED dispatches were written.
    pub async fn wait_resumed(&self, n: usize) {
        self.wait_gateway(&format!("RESUME #{n} and its RESUMED"), |s| {
            s.resume_count >= n && s.resumed_written >= n && s.connected
        })
        .await
    }

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

    /// Closes the gateway websocket abruptly (no close frame, like a network drop) and waits until
    /// the connection is gone. Serenity then reconnects and RESUMEs.
    pub async fn drop_gateway(&self) {
        let conn_id = {
            let mut st = self.inner.lock();
            let conn = st.conn.as_mut().expect("no gateway connection to drop");
            if let Some(kill) = conn.kill.take() {
                let _ = kill.send(());
            }
            conn.id
        };
        self.wait(&format!("gateway connection {conn_id} to close"), |st| {
            (st.conn.as_ref().map(|c| c.id) != Some(conn_id)).then_some(())
        })
        .await
    }

    /// Time between writing INTERACTION_CREATE to the socket and receiving its first callback.
    pub fn callback_latency(&self, id: u64) -> Option<Duration> {
        let st = self.inner.lock();
        let rec = st.interactions.get(&id)?;
        let (_, at) = rec.callbacks.first()?;
        Some(at.saturating_duration_since(rec.sent_at?))
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

    async fn wait<T>(&self, what: &str, mut f: impl FnMut(&St) -> Option<T>) -> T {
        let mut rx = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            rx.borrow_and_update();
            if let Some(v) = f(&self.inner.lock()) {
                return v;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                let st = self.inner.lock();
                let log: Vec<String> = st
                    .requests
                    .iter()
                    .map(|r| {
                        let status = r.status.map_or("-".into(), |s| s.to_string());
                        format!("  {status} {} {} {}", r.method, r.path, brief(&r.body))
                    })
                    .collect();
                panic!(
                    "fake Discord: timed out after {DEADLINE:?} waiting for {what}\n\
                     gateway: {:?}\nviolations: {:#?}\nrequests:\n{}",
                    status(&st),
                    st.violations,
                    log.join("\n")
                );
            }
        }
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

fn attempts(st: &St, method: &str, prefix: &str) -> Vec<Recorded> {
    st.requests
        .iter()
        .filter(|r| {
            r.method.eq_ignore_ascii_case(method) && route_matches(prefix, api_route(&r.path))
        })
        .cloned()
        .collect()
}

/// A path as `inject` and `attempts` take it, reduced to the route under `/api/v10`: the scheme,
/// host and `/api/v10` of a full URL go, and so do a query string and a trailing slash.
fn route_prefix(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let path = match path.find("/api/v10") {
        Some(at) => &path[at..],
        None => path,
    };
    api_route(path).trim_end_matches('/').to_string()
}

/// The part of a request path after `/api/v10`.
fn api_route(path: &str) -> &str {
    path.strip_prefix("/api/v10").unwrap_or(path)
}

/// Whether `route` is `prefix` or lies under it, segment by segment: `/channels/1/messages`
/// covers `/channels/1/messages/2` but not `/channels/12/messages`.
fn route_matches(prefix: &str, route: &str) -> bool {
    route == prefix
        || route
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn brief(body: &Option<Value>) -> String {
    let text = body.as_ref().map(Value::to_string).unwrap_or_default();
    if text.chars().count() > 300 {
        format!("{}...", text.chars().take(300).collect::<String>())
    } else {
        text
    }
}

fn status(st: &St) -> GatewayStatus {
    GatewayStatus {
        connected: st.conn.as_ref().is_some_and(|c| c.bound),
        identify_count: st.identify_count,
        resume_count: st.resume_count,
        ready_written: st.ready_written,
        resumed_written: st.resumed_written,
        session_id: st.session.as_ref().map(|s| s.id.clone()),
    }
}

/// Where an interaction happens.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    Guild(FakeMember),
    Dm(u64),
}

impl St {
    fn snowflake(&mut self) -> u64 {
        self.next_snowflake += 1;
        self.next_snowflake
    }

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

    fn dm_channel(&mut self, user: u64) -> u64 {
        let next = 410_000_000_000_000_001 + self.dm_channels.len() as u64;
        *self.dm_channels.entry(user).or_insert(next)
    }

    /// The registered command's id (and guild, for a guild command), or a stable synthetic id.
    fn command_id(&mut self, name: &str) -> (u64, Option<u64>) {
        for (guild, commands) in &self.commands {
            if let Some(c) = commands.iter().find(|c| c["name"] == name)
                && let Some(id) = snowflake(&c["id"])
            {
                return (id, *guild);
            }
        }
        if let Some(id) = self.synthetic_command_ids.get(name) {
            return (*id, None);
        }
        let id = self.snowflake();
        self.synthetic_command_ids.insert(name.to_string(), id);
        (id, None)
    }

    fn interaction_by_token(&self, token: &str) -> Option<u64> {
        self.interactions
            .iter()
            .find(|(_, i)| i.token == token)
            .map(|(id, _)| *id)
    }

    /// Appends a dispatch to the session and writes it to the bound connection, if any. Returns
    /// false when there is no session.
    fn dispatch(&mut self, t: &str, d: Value, kind: OutKind) -> bool {
        let Some(session) = self.session.as_mut() else {
            return false;
        };
        session.seq += 1;
        let seq = session.seq;
        let out = Out {
            text: json!({"op": 0, "t": t, "s": seq, "d": d}).to_string(),
            kind,
        };
        session.log.push((seq, out.clone()));
        if let Some(conn) = self.conn.as_ref().filter(|c| c.bound) {
            let _ = conn.tx.send(out);
        }
        true
    }

    fn violation(&mut self, text: String) {
        self.violations.push(text);
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

async fn ws_handler(State(inner): State<Arc<Inner>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| run_connection(inner, socket))
}

enum Reply {
    Nothing,
    Send(Value),
    Close(u16, &'static str),
}

async fn run_connection(inner: Arc<Inner>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let (kill_tx, mut kill_rx) = oneshot::channel::<()>();
    let conn_id = {
        let mut st = inner.lock();
        st.next_conn += 1;
        let id = st.next_conn;
        // A new connection replaces the old one (dropping its sender ends its task).
        st.conn = Some(Conn {
            id,
            tx,
            kill: Some(kill_tx),
            bound: false,
        });
        id
    };
    inner.bump();

    let hello =
        json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}});
    let mut open = write_frame(&inner, &mut socket, &hello.to_string()).await;
    while open {
        tokio::select! {
            _ = &mut kill_rx => break,
            out = rx.recv() => {
                let Some(out) = out else { break };
                let stamped = stamp_interaction(&inner, out.kind);
                open = write_frame(&inner, &mut socket, &out.text).await;
                if open {
                    mark_written(&inner, conn_id, out.kind);
                } else if stamped {
                    unstamp_interaction(&inner, out.kind);
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(WsMessage::Text(text))) => text.as_str().to_string(),
                    Some(Ok(WsMessage::Binary(_))) => {
                        inner.lock().violation("gateway: the client sent a binary frame".into());
                        continue;
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        // Answer the closing handshake, as Discord does.
                        let _ = socket.send(WsMessage::Close(frame)).await;
                        break;
                    }
                    None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let reply = handle_op(&inner, conn_id, &text);
                inner.bump();
                match reply {
                    Reply::Nothing => {}
                    Reply::Send(frame) => {
                        open = write_frame(&inner, &mut socket, &frame.to_string()).await;
                    }
                    Reply::Close(code, reason) => {
                        let _ = socket
                            .send(WsMessage::Close(Some(CloseFrame { code, reason: reason.into() })))
                            .await;
                        break;
                    }
                }
            }
        }
    }
    // Dropping the socket closes the TCP connection without a close frame.
    drop(socket);
    {
        let mut st = inner.lock();
        if st.conn.as_ref().map(|c| c.id) == Some(conn_id) {
            st.conn = None;
        }
    }
    inner.bump();
}

async fn write_frame(inner: &Inner, socket: &mut WebSocket, text: &str) -> bool {
    let ok = socket
        .send(WsMessage::Text(text.to_string().into()))
        .await
        .is_ok();
    if ok && let Ok(value) = serde_json::from_str::<Value>(text) {
        inner.lock().sent_frames.push(value);
    }
    ok
}

/// Stamps an interaction's `sent_at` just before its frame is written, if it has none yet, and
/// says whether it did. Stamping after the write would race the bot: it can read the frame and
/// POST its callback before the stamp, leaving `callback_latency` without a start.
fn stamp_interaction(inner: &Inner, kind: OutKind) -> bool {
    let OutKind::Interaction(id) = kind else {
        return false;
    };
    let mut st = inner.lock();
    match st.interactions.get_mut(&id) {
        Some(rec) if rec.sent_at.is_none() => {
            rec.sent_at = Some(Instant::now());
            true
        }
        _ => false,
    }
}

/// Takes back a stamp whose write failed: the frame will be sent again after a RESUME, and the
/// latency counts from that write.
fn unstamp_interaction(inner: &Inner, kind: OutKind) {
    if let OutKind::Interaction(id) = kind
        && let Some(rec) = inner.lock().interactions.get_mut(&id)
    {
        rec.sent_at = None;
    }
}

fn mark_written(inner: &Inner, conn_id: u64, kind: OutKind) {
    let mut st = inner.lock();
    if st.conn.as_ref().map(|c| c.id) != Some(conn_id) {
        return;
    }
    match kind {
        OutKind::Plain | OutKind::Interaction(_) => {}
        OutKind::GuildCreate => st.ready_written = true,
        OutKind::Resumed => st.resumed_written += 1,
    }
    drop(st);
    inner.bump();
}

fn handle_op(inner: &Inner, conn_id: u64, text: &str) -> Reply {
    let mut st = inner.lock();
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        st.violation(format!("gateway: frame is not JSON: {text}"));
        return Reply::Close(4002, "Error while decoding payload.");
    };
    let mut logged = frame.clone();
    if logged["d"]["token"].is_string() {
        logged["d"]["token"] = json!("***");
    }
    st.gateway_ops.push(logged);
    let current = st.conn.as_ref().map(|c| c.id) == Some(conn_id);
    let bound = current && st.conn.as_ref().is_some_and(|c| c.bound);
    match frame["op"].as_u64() {
        Some(1) => Reply::Send(json!({"op": 11, "s": null, "t": null, "d": null})),
        Some(2) => {
            if !current {
                return Reply::Close(4000, "Unknown error.");
            }
            if bound {
                st.violation("gateway: IDENTIFY on an identified connection".into());
                return Reply::Close(4005, "Already authenticated.");
            }
            let token = frame["d"]["token"].as_str().unwrap_or_default().to_string();
            if token.is_empty() {
                st.violation("gateway: IDENTIFY without a token".into());
                return Reply::Close(4004, "Authentication failed.");
            }
            st.identify_tokens.push(token);
            st.identify_count += 1;
            st.next_session += 1;
            let session_id = format!("fake-session-{}", st.next_session);
            st.session = Some(Session {
                id: session_id.clone(),
                seq: 0,
                log: Vec::new(),
            });
            st.ready_written = false;
            if let Some(conn) = st.conn.as_mut() {
                conn.bound = true;
            }
            let shard = match &frame["d"]["shard"] {
                Value::Array(a) if a.len() == 2 => Value::Array(a.clone()),
                _ => json!([0, 1]),
            };
            let ready = payload::ready(&session_id, &inner.ws_url(), shard);
            let guild = payload::guild_with_channels(&st.guild_channels);
            for (t, d) in [("READY", &ready), ("GUILD_CREATE", &guild)] {
                if let Err(why) = serenity_parses(t, d) {
                    st.violation(format!(
                        "fake Discord bug: serenity cannot parse its {t}: {why}"
                    ));
                }
            }
            st.dispatch("READY", ready, OutKind::Plain);
            st.dispatch("GUILD_CREATE", guild, OutKind::GuildCreate);
            Reply::Nothing
        }
        Some(6) => {
            if !current {
                return Reply::Close(4000, "Unknown error.");
            }
            let d = &frame["d"];
            let asked = d["session_id"].as_str().unwrap_or_default();
            let seq = d["seq"].as_u64().unwrap_or(0);
            let matches = st.session.as_ref().is_some_and(|s| s.id == asked);
            if !matches || d["token"].as_str().unwrap_or_default().is_empty() {
                return Reply::Send(json!({"op": 9, "s": null, "t": null, "d": false}));
            }
            st.resume_count += 1;
            let replay: Vec<Out> = st
                .session
                .as_ref()
                .map(|s| {
                    s.log
                        .iter()
                        .filter(|(s, _)| *s > seq)
                        .map(|(_, o)| o.clone())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(conn) = st.conn.as_mut() {
                conn.bound = true;
                for out in replay {
                    let _ = conn.tx.send(out);
                }
            }
            st.dispatch("RESUMED", json!({}), OutKind::Resumed);
            Reply::Nothing
        }
        // Presence update, voice state, request guild members, soundboard: accepted, ignored.
        Some(3 | 4 | 8 | 31) => Reply::Nothing,
        _ => {
            st.violation(format!("gateway: unknown opcode in {text}"));
            Reply::Close(4001, "Unknown opcode.")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// REST
// ---------------------------------------------------------------------------------------------

async fn rest_handler(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let parsed = parse_body(&content_type, &body);
    let path = uri.path().to_string();
    let query = uri.query().map(str::to_string);
    let now = Instant::now();
    let answer = {
        let mut st = inner.lock();
        let index = st.requests.len();
        st.requests.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            body: parsed.clone().ok().flatten(),
            at: now,
            status: None,
        });
        if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok())
            && !st.rest_tokens.iter().any(|t| t == auth)
        {
            st.rest_tokens.push(auth.to_string());
        }
        // Discord's rate limiter stands in front of everything else, so a request inside a
        // 429's window, or one an injected fault is waiting for, is never routed.
        let answer = if let Some(limited) = st.early_retry(method.as_str(), &path, now) {
            Answer::RateLimited(limited)
        } else if let Some(fault) = st.take_fault(method.as_str(), &path) {
            match fault {
                Fault::RateLimited {
                    retry_after,
                    global,
                } => Answer::RateLimited(st.open_window(
                    method.as_str(),
                    &path,
                    retry_after,
                    global,
                    now,
                )),
                Fault::Server(status) => Answer::Rest(server_error(status)),
                Fault::Hang => Answer::Hang,
                Fault::Lost | Fault::Cut => {
                    let served = serve(
                        &mut st,
                        &inner,
                        &method,
                        &path,
                        query.as_deref(),
                        &headers,
                        parsed,
                    );
                    if fault == Fault::Lost {
                        Answer::Lost
                    } else {
                        Answer::Cut(served)
                    }
                }
            }
        } else {
            Answer::Rest(serve(
                &mut st,
                &inner,
                &method,
                &path,
                query.as_deref(),
                &headers,
                parsed,
            ))
        };
        st.requests[index].status = match &answer {
            Answer::Rest((status, _)) | Answer::Cut((status, _)) => Some(status.as_u16()),
            Answer::RateLimited(_) => Some(429),
            Answer::Hang | Answer::Lost => None,
        };
        answer
    };
    inner.bump();
    match answer {
        Answer::Rest((status, Some(value))) => (status, axum::Json(value)).into_response(),
        Answer::Rest((status, None)) => status.into_response(),
        Answer::RateLimited(limited) => rate_limited(&limited),
        Answer::Hang | Answer::Lost => {
            let mut closed = inner.closed.subscribe();
            // Errors only if the sender is gone, which means the fake is gone too.
            let _ = closed.wait_for(|closed| *closed).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Answer::Cut((status, value)) => cut_response(status, value),
    }
}

/// Serves one request that passed the rate limiter and the injected faults: a body that is not
/// JSON is a violation, anything else goes to its route.
fn serve(
    st: &mut St,
    inner: &Inner,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    parsed: Result<Option<Value>, String>,
) -> RestReply {
    match parsed {
        Err(e) => {
            st.violation(format!("{method} {path}: body is not JSON: {e}"));
            (
                StatusCode::BAD_REQUEST,
                Some(error_json(50109, "The request body contains invalid JSON.")),
            )
        }
        Ok(body) => route(st, inner, method, path, query, headers, body),
    }
}

/// The answer of [`Fault::Cut`]: the status, a `Content-Length` promising the whole JSON body,
/// half of it, then an error that makes the server close the connection.
fn cut_response(status: StatusCode, value: Option<Value>) -> Response {
    let body = value
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_default();
    let half = Bytes::from(body[..body.len() / 2].to_vec());
    // The error comes a moment after the first half, so that the server has flushed the status,
    // the headers and that half: an error in the same poll would close the connection before
    // anything went out, which is a dropped connection, not a cut answer.
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(half)]).chain(
        futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "answer cut by Fault::Cut",
            ))
        }),
    );
    let mut response = Response::new(axum::body::Body::from_stream(chunks));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from(body.len()));
    response
}

/// How the fake answers one REST request.
enum Answer {
    /// What the route (or a [`Fault::Server`]) answered.
    Rest(RestReply),
    RateLimited(Limited),
    Hang,
    /// Served, never answered ([`Fault::Lost`]).
    Lost,
    /// Served, answered with half a body ([`Fault::Cut`]).
    Cut(RestReply),
}

impl St {
    /// The 429 for a request sent while an earlier 429's `retry_after` has not run out (for the
    /// same method and path, or for anything when that 429 was global), recorded as a violation.
    /// The check assumes the bot sends one request at a time to a route, as a client that waits
    /// out its bucket does: a request already on its way when the 429 was answered is counted
    /// too.
    fn early_retry(&mut self, method: &str, path: &str, now: Instant) -> Option<Limited> {
        let route = api_route(path);
        let window = self
            .windows
            .iter()
            .find(|w| now < w.until && (w.global || (w.method == method && w.path == route)))?;
        let (retry_after, global) = (window.retry_after, window.global);
        let waited = now.saturating_duration_since(window.answered_at);
        let left = window.until.saturating_duration_since(now).as_secs_f64();
        let limited = Limited {
            retry_after: (left * 1000.0).ceil() / 1000.0,
            global,
            bucket: bucket(&window.method, &window.path),
        };
        let scope = if global { "a global" } else { "its" };
        self.violation(format!(
            "{method} {path}: sent {:.3} s after {scope} 429 that said to retry after \
             {retry_after} s (retry_after ignored)",
            waited.as_secs_f64()
        ));
        Some(limited)
    }

    /// Uses up one injected fault matching the request, if any.
    fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let route = api_route(path);
        let at = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && f.method == method && route_matches(&f.path, route))?;
        let injected = &mut self.faults[at];
        injected.remaining -= 1;
        let fault = injected.fault;
        if injected.remaining == 0 {
            self.faults.remove(at);
        }
        Some(fault)
    }

    /// Starts the `retry_after` window of a 429 answered now.
    fn open_window(
        &mut self,
        method: &str,
        path: &str,
        retry_after: f64,
        global: bool,
        now: Instant,
    ) -> Limited {
        let route = api_route(path).to_string();
        let limited = Limited {
            retry_after,
            global,
            bucket: bucket(method, &route),
        };
        self.windows.push(Window {
            method: method.to_string(),
            path: route,
            global,
            retry_after,
            answered_at: now,
            until: now + Duration::from_secs_f64(retry_after),
        });
        limited
    }
}

/// A stable, opaque bucket id per route, as Discord's `X-RateLimit-Bucket` is.
fn bucket(method: &str, route: &str) -> String {
    let mut hasher = DefaultHasher::new();
    (method, route).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Discord's 429: the body the spec calls `RatelimitedResponse` (without `code`, which real
/// 429s carry only for a few special limits) and the headers of Discord's rate limit docs.
/// `Retry-After` is whole seconds, rounded up; the body's `retry_after` and
/// `X-RateLimit-Reset-After` keep the fraction.
fn rate_limited(limited: &Limited) -> Response {
    let body = json!({
        "message": "You are being rate limited.",
        "retry_after": limited.retry_after,
        "global": limited.global,
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        + limited.retry_after;
    let mut headers = vec![
        ("retry-after", format!("{}", limited.retry_after.ceil())),
        ("x-ratelimit-limit", RATE_LIMIT.to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset", format!("{reset:.3}")),
        (
            "x-ratelimit-reset-after",
            format!("{:.3}", limited.retry_after),
        ),
        ("x-ratelimit-bucket", limited.bucket.clone()),
        (
            "x-ratelimit-scope",
            if limited.global { "global" } else { "user" }.to_string(),
        ),
    ];
    if limited.global {
        headers.push(("x-ratelimit-global", "true".to_string()));
    }
    for (name, value) in headers {
        let value = HeaderValue::from_str(&value).expect("header values are ASCII");
        response.headers_mut().insert(name, value);
    }
    response
}

/// A 5xx as Discord's API answers it (`{"message": "500: Internal Server Error", "code": 0}`).
/// Cloudflare, in front of Discord, may answer a 502 or 503 with an HTML page instead, so the bot
/// must not rely on this body being there.
fn server_error(status: u16) -> RestReply {
    let status = StatusCode::from_u16(status).expect("checked to be 5xx by inject");
    let reason = status.canonical_reason().unwrap_or("Server Error");
    (
        status,
        Some(error_json(0, &format!("{}: {reason}", status.as_u16()))),
    )
}

type RestReply = (StatusCode, Option<Value>);

fn ok(value: Value) -> RestReply {
    (StatusCode::OK, Some(value))
}

fn error_json(code: u64, message: &str) -> Value {
    json!({"message": message, "code": code})
}

fn not_found(code: u64, message: &str) -> RestReply {
    (StatusCode::NOT_FOUND, Some(error_json(code, message)))
}

fn invalid_form(st: &mut St, what: &str, problems: Vec<String>) -> Option<RestReply> {
    if problems.is_empty() {
        return None;
    }
    for p in &problems {
        st.violation(format!("{what}: {p}"));
    }
    Some((
        StatusCode::BAD_REQUEST,
        Some(
            json!({"message": "Invalid Form Body", "code": 50035, "errors": {"_errors": problems.iter().map(|p| json!({"code": "FAKE_INVALID", "message": p})).collect::<Vec<_>>()}}),
        ),
    ))
}

fn route(
    st: &mut St,
    inner: &Inner,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Option<Value>,
) -> RestReply {
    let segments: Vec<&str> = path
        .strip_prefix("/api/v10/")
        .map(|p| p.trim_end_matches('/').split('/').collect())
        .unwrap_or_default();
    let m = method.as_str();
    let body = body.unwrap_or(Value::Null);

    // Interaction callbacks and webhook routes need no bot token; everything else does.
    let tokenless = matches!(segments.first(), Some(&"interactions") | Some(&"webhooks"));
    if !tokenless && !segments.is_empty() {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !auth.starts_with("Bot ") || auth.len() <= 4 {
            st.violation(format!(
                "{m} {path}: missing or malformed Authorization header"
            ));
            return (
                StatusCode::UNAUTHORIZED,
                Some(error_json(0, "401: Unauthorized")),
            );
        }
    }

    match (m, segments.as_slice()) {
        ("GET", ["gateway"]) => ok(json!({"url": inner.ws_url()})),
        ("GET", ["gateway", "bot"]) => ok(json!({
            "url": inner.ws_url(),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        })),
        ("GET", ["users", "@me"]) => ok(payload::bot_user()),
        ("GET", ["users", user]) => match user.parse::<u64>() {
            Ok(id) => ok(payload::user(id)),
            Err(_) => not_found(10013, "Unknown User"),
        },
        ("POST", ["users", "@me", "channels"]) => {
            let Some(user) = snowflake(&body["recipient_id"]) else {
                return invalid_form(
                    st,
                    "POST /users/@me/channels",
                    vec!["recipient_id is required".into()],
                )
                .unwrap_or((StatusCode::BAD_REQUEST, None));
            };
            let channel = st.dm_channel(user);
            ok(payload::dm_channel(channel, user))
        }
        ("GET", ["oauth2", "applications", "@me"]) | ("GET", ["applications", "@me"]) => {
            ok(payload::application_info())
        }
        (_, ["applications", app, "commands", rest @ ..]) => {
            commands_route(st, m, path, app, None, rest, body)
        }
        (_, ["applications", app, "guilds", guild, "commands", rest @ ..]) => {
            let Ok(guild) = guild.parse::<u64>() else {
                return not_found(10004, "Unknown Guild");
            };
            commands_route(st, m, path, app, Some(guild), rest, body)
        }
        ("POST", ["interactions", id, token, "callback"]) => callback(st, path, id, token, body),
        // An incoming webhook's id is one the fake handed out; anything else is the
        // application id of an interaction webhook.
        (_, ["webhooks", id, token, rest @ ..])
            if id
                .parse::<u64>()
                .is_ok_and(|id| st.webhooks.contains_key(&id)) =>
        {
            let id = id.parse::<u64>().expect("checked");
            incoming_webhook_route(st, m, path, id, token, rest, query, body)
        }
        (_, ["webhooks", app, token, rest @ ..]) => {
            webhook_route(st, m, path, app, token, rest, body)
        }
        ("POST", ["channels", channel, "messages"]) => {
            let Some(channel) = known_channel(st, channel) else {
                return not_found(10003, "Unknown Channel");
            };
            create_channel_message(st, &format!("{m} {path}"), channel, &body)
        }
        (_, ["channels", channel, "messages", message]) => {
            let Some(channel) = known_channel(st, channel) else {
                return not_found(10003, "Unknown Channel");
            };
            let Some(id) = message.parse::<u64>().ok().filter(|id| {
                st.messages
                    .get(id)
                    .is_some_and(|msg| snowflake(&msg["channel_id"]) == Some(channel))
            }) else {
                return not_found(10008, "Unknown Message");
            };
            let by_bot = st.messages[&id]["author"]["id"] == json!(BOT_USER_ID.to_string());
            match m {
                "GET" => ok(st.messages[&id].clone()),
                "PATCH" if !by_bot => {
                    st.violation(format!(
                        "{m} {path}: the bot cannot edit a message someone else (a webhook) sent"
                    ));
                    (
                        StatusCode::FORBIDDEN,
                        Some(error_json(
                            50005,
                            "Cannot edit a message authored by another user",
                        )),
                    )
                }
                "PATCH" => {
                    let problems = check_message(&body, false, false);
                    if let Some(reply) = invalid_form(st, &format!("{m} {path}"), problems) {
                        return reply;
                    }
                    ok(edit_message(st, id, &body))
                }
                // Deleting another author's message takes MANAGE_MESSAGES, which the bot lacks.
                "DELETE" if !by_bot => {
                    st.violation(format!(
                        "{m} {path}: deleting a message someone else sent needs MANAGE_MESSAGES, \
                         which the bot does not have"
                    ));
                    (
                        StatusCode::FORBIDDEN,
                        Some(error_json(50013, "Missing Permissions")),
                    )
                }
                "DELETE" => {
                    st.messages.remove(&id);
                    (StatusCode::NO_CONTENT, None)
                }
                _ => unserved(st, m, path),
            }
        }
        ("GET", ["channels", channel]) => match channel.parse::<u64>() {
            Ok(id) if st.guild_channels.contains(&id) => ok(payload::text_channel(id)),
            Ok(id) => match st.dm_channels.iter().find(|(_, c)| **c == id) {
                Some((user, _)) => ok(payload::dm_channel(id, *user)),
                None => not_found(10003, "Unknown Channel"),
            },
            Err(_) => not_found(10003, "Unknown Channel"),
        },
        ("GET", ["guilds", guild, rest @ ..]) => {
            if guild.parse::<u64>() != Ok(GUILD_ID) {
                return not_found(10004, "Unknown Guild");
            }
            match rest {
                [] => ok(payload::guild_rest()),
                ["roles"] => ok(Value::Array(payload::roles())),
                ["channels"] => ok(Value::Array(
                    st.guild_channels
                        .iter()
                        .map(|c| payload::text_channel(*c))
                        .collect(),
                )),
                ["members"] => ok(Value::Array(
                    payload::MEMBERS
                        .iter()
                        .map(|(id, roles)| payload::member(*id, roles, true, None))
                        .collect(),
                )),
                ["members", user] => match user.parse::<u64>().ok().and_then(payload::member_roles)
                {
                    Some((id, roles)) => ok(payload::member(id, roles, true, None)),
                    None => not_found(10007, "Unknown Member"),
                },
                _ => unserved(st, m, path),
            }
        }
        _ => unserved(st, m, path),
    }
}

fn unserved(st: &mut St, method: &str, path: &str) -> RestReply {
    st.violation(format!("unserved route: {method} {path}"));
    not_found(0, "404: Not Found")
}

fn known_channel(st: &St, channel: &str) -> Option<u64> {
    let id = channel.parse::<u64>().ok()?;
    (st.guild_channels.contains(&id) || st.dm_channels.values().any(|c| *c == id)).then_some(id)
}

fn commands_route(
    st: &mut St,
    m: &str,
    path: &str,
    app: &str,
    guild: Option<u64>,
    rest: &[&str],
    body: Value,
) -> RestReply {
    if app.parse::<u64>() != Ok(APP_ID) {
        st.violation(format!("{m} {path}: application id is not APP_ID"));
        return not_found(10002, "Unknown Application");
    }
    if let Some(g) = guild
        && g != GUILD_ID
    {
        return not_found(10004, "Unknown Guild");
    }
    match (m, rest) {
        ("GET", []) => ok(Value::Array(
            st.commands.get(&guild).cloned().unwrap_or_default(),
        )),
        ("PUT", []) => {
            let Value::Array(list) = body else {
                return invalid_form(
                    st,
                    &format!("{m} {path}"),
                    vec!["body must be an array".into()],
                )
                .unwrap_or((StatusCode::BAD_REQUEST, None));
            };
            let mut problems = Vec::new();
            for c in &list {
                check_command(c, &mut problems);
            }
            if let Some(reply) = invalid_form(st, &format!("{m} {path}"), problems) {
                return reply;
            }
            let old = st.commands.get(&guild).cloned().unwrap_or_default();
            let stored: Vec<Value> = list
                .iter()
                .map(|c| {
                    let id = old
                        .iter()
                        .find(|o| {
                            o["name"] == c["name"]
                                && o["type"] == c.get("type").cloned().unwrap_or(json!(1))
                        })
                        .and_then(|o| snowflake(&o["id"]))
                        .unwrap_or_else(|| st.snowflake());
                    let version = st.snowflake();
                    stored_command(c, id, version, guild)
                })
                .collect();
            st.commands.insert(guild, stored.clone());
            ok(Value::Array(stored))
        }
        ("POST", []) => {
            let mut problems = Vec::new();
            check_command(&body, &mut problems);
            if let Some(reply) = invalid_form(st, &format!("{m} {path}"), problems) {
                return reply;
            }
            let id = st.snowflake();
            let version = st.snowflake();
            let stored = stored_command(&body, id, version, guild);
            let list = st.commands.entry(guild).or_default();
            list.retain(|c| c["name"] != body["name"]);
            list.push(stored.clone());
            (StatusCode::CREATED, Some(stored))
        }
        (_, [command]) => {
            let list = st.commands.entry(guild).or_default();
            let Some(pos) = list.iter().position(|c| c["id"] == json!(command)) else {
                return not_found(10063, "Unknown application command");
            };
            match m {
                "GET" => ok(list[pos].clone()),
                "DELETE" => {
                    list.remove(pos);
                    (StatusCode::NO_CONTENT, None)
                }
                "PATCH" => {
                    if let (Value::Object(stored), Value::Object(patch)) = (&mut list[pos], body) {
                        for (k, v) in patch {
                            stored.insert(k, v);
                        }
                    }
                    ok(list[pos].clone())
                }
                _ => unserved(st, m, path),
            }
        }
        _ => unserved(st, m, path),
    }
}

/// A command as Discord stores it: what was sent, plus ids, type and version.
fn stored_command(sent: &Value, id: u64, version: u64, guild: Option<u64>) -> Value {
    let mut c = sent.clone();
    let obj = c.as_object_mut().expect("checked to be an object");
    obj.insert("id".into(), json!(id.to_string()));
    obj.insert("application_id".into(), json!(APP_ID.to_string()));
    obj.insert("version".into(), json!(version.to_string()));
    obj.entry("type").or_insert(json!(1));
    obj.entry("description").or_insert(json!(""));
    obj.entry("default_member_permissions")
        .or_insert(Value::Null);
    obj.entry("nsfw").or_insert(json!(false));
    if let Some(g) = guild {
        obj.insert("guild_id".into(), json!(g.to_string()));
    }
    c
}

fn check_command(c: &Value, problems: &mut Vec<String>) {
    let name = c["name"].as_str().unwrap_or_default();
    let kind = c["type"].as_u64().unwrap_or(1);
    if name.is_empty() || name.chars().count() > 32 {
        problems.push(format!("command name {name:?} must be 1-32 characters"));
    }
    if kind == 1 {
        if name
            .chars()
            .any(|ch| ch.is_uppercase() || ch.is_whitespace())
        {
            problems.push(format!(
                "slash command name {name:?} must be lowercase without spaces"
            ));
        }
        let description = c["description"].as_str().unwrap_or_default();
        if description.is_empty() || description.chars().count() > 100 {
            problems.push(format!(
                "command {name:?}: description must be 1-100 characters"
            ));
        }
    }
    if let Some(p) = c.get("default_member_permissions")
        && !p.is_null()
        && p.as_str().is_none_or(|s| s.parse::<u64>().is_err())
    {
        problems.push(format!(
            "command {name:?}: default_member_permissions must be a string of digits or null, got {p}"
        ));
    }
    if let Some(options) = c["options"].as_array() {
        if options.len() > 25 {
            problems.push(format!("command {name:?}: more than 25 options"));
        }
        for o in options {
            check_command_option(name, o, problems);
        }
    }
}

fn check_command_option(command: &str, o: &Value, problems: &mut Vec<String>) {
    let name = o["name"].as_str().unwrap_or_default();
    if name.is_empty() || name.chars().count() > 32 {
        problems.push(format!(
            "command {command:?}: option name {name:?} must be 1-32 characters"
        ));
    }
    let description = o["description"].as_str().unwrap_or_default();
    if description.is_empty() || description.chars().count() > 100 {
        problems.push(format!(
            "command {command:?}: option {name:?} description must be 1-100 characters"
        ));
    }
    if o["choices"].as_array().is_some_and(|c| c.len() > 25) {
        problems.push(format!(
            "command {command:?}: option {name:?} has more than 25 choices"
        ));
    }
    if o["autocomplete"] == json!(true) && o["choices"].as_array().is_some_and(|c| !c.is_empty()) {
        problems.push(format!(
            "command {command:?}: option {name:?} has both autocomplete and choices"
        ));
    }
    check_option_bounds(command, name, o, problems);
    for sub in o["options"].as_array().into_iter().flatten() {
        check_command_option(command, sub, problems);
    }
}

/// An option's bounds as the spec types them: `min_value`/`max_value` an Int53 on INTEGER (4)
/// and a number on NUMBER (10); `min_length` (0-6000) and `max_length` (1-6000) integers on
/// STRING (3); none of them on other types; the lower bound not above the upper. The spec is
/// OpenAPI 3.1, where an integer may be written `1.0` (poise writes integer bounds so).
fn check_option_bounds(command: &str, name: &str, o: &Value, problems: &mut Vec<String>) {
    const INT53: f64 = 9_007_199_254_740_991.0;
    let kind = o["type"].as_u64().unwrap_or(0);
    let at = format!("command {command:?}: option {name:?}");
    for key in ["min_value", "max_value"] {
        let v = &o[key];
        match kind {
            _ if v.is_null() => {}
            4 if v
                .as_f64()
                .is_some_and(|x| x.fract() == 0.0 && x.abs() <= INT53) => {}
            10 if v.is_number() => {}
            4 | 10 => problems.push(format!(
                "{at}: {key} {v} is not a valid bound for type {kind}"
            )),
            _ => problems.push(format!("{at}: type {kind} takes no {key}")),
        }
    }
    for (key, lowest) in [("min_length", 0), ("max_length", 1)] {
        let v = &o[key];
        match (kind, v.as_u64()) {
            _ if v.is_null() => {}
            (3, Some(n)) if (lowest..=6000).contains(&n) => {}
            (3, _) => problems.push(format!("{at}: {key} must be {lowest}-6000, got {v}")),
            _ => problems.push(format!("{at}: type {kind} takes no {key}")),
        }
    }
    for (low, high) in [("min_value", "max_value"), ("min_length", "max_length")] {
        if let (Some(l), Some(h)) = (o[low].as_f64(), o[high].as_f64())
            && l > h
        {
            problems.push(format!("{at}: {low} {l} is above {high} {h}"));
        }
    }
}

fn callback(st: &mut St, path: &str, id: &str, token: &str, body: Value) -> RestReply {
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
            problems.push(format!("callback type {} takes no data", ty.unwrap_or(0)))
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

fn webhook_route(
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

/// `POST /channels/{id}/messages`: a plain message, or a reply when the body has a
/// `message_reference`.
fn create_channel_message(st: &mut St, what: &str, channel: u64, body: &Value) -> RestReply {
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
fn incoming_webhook_route(
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
enum Origin<'a> {
    /// The bot, through `POST /channels/{id}/messages`.
    Bot,
    /// An interaction response or follow-up: the bot, through the application's webhook.
    Interaction,
    /// An incoming webhook, under the name it posts with.
    Webhook { id: u64, username: &'a str },
}

fn new_message(st: &mut St, channel_id: u64, data: &Value, kind: u64, origin: Origin) -> Value {
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
fn store_message(st: &mut St, message: Value) -> Value {
    let id = snowflake(&message["id"]).expect("a message has an id");
    st.messages.insert(id, message.clone());
    st.history.entry(id).or_default().push(message.clone());
    message
}

fn edit_message(st: &mut St, id: u64, data: &Value) -> Value {
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

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Discord's limits for a message body (create or edit). `create` requires some content.
fn check_message(data: &Value, interaction: bool, create: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if !data.is_object() {
        if create || !data.is_null() {
            problems.push(format!("message data must be an object, got {data}"));
        }
        return problems;
    }
    if let Some(content) = data["content"].as_str()
        && content.chars().count() > 2000
    {
        problems.push(format!(
            "content is {} characters (max 2000)",
            content.chars().count()
        ));
    }
    check_embeds(&data["embeds"], &mut problems);
    check_allowed_mentions(&data["allowed_mentions"], &mut problems);
    check_flags(data, interaction, &mut problems);
    let v2 = data["flags"].as_u64().unwrap_or(0) & COMPONENTS_V2 != 0;
    if !v2 {
        check_components(&data["components"], &mut problems);
    }
    if create {
        let has = |k: &str| match &data[k] {
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Null => false,
            _ => true,
        };
        if ![
            "content",
            "embeds",
            "components",
            "attachments",
            "sticker_ids",
            "poll",
        ]
        .iter()
        .any(|k| has(k))
        {
            problems.push(
                "Cannot send an empty message (no content, embeds, components or files)".into(),
            );
        }
    }
    problems
}

/// The spec's `MessageAllowedMentionsRequest`: `parse` lists some of "users", "roles" and
/// "everyone" (each once); `users` and `roles` hold at most 100 distinct snowflake strings; and,
/// as Discord's docs add, a type in `parse` cannot also come with a non-empty list of ids
/// (serenity always sends the lists, empty, so only a non-empty one is flagged).
fn check_allowed_mentions(allowed: &Value, problems: &mut Vec<String>) {
    if allowed.is_null() {
        return;
    }
    let Some(obj) = allowed.as_object() else {
        problems.push(format!("allowed_mentions must be an object, got {allowed}"));
        return;
    };
    let mut parse: Vec<&str> = Vec::new();
    match obj.get("parse").unwrap_or(&Value::Null) {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                match item.as_str() {
                    Some(t @ ("users" | "roles" | "everyone")) if parse.contains(&t) => {
                        problems.push(format!("allowed_mentions.parse lists {t:?} twice"))
                    }
                    Some(t @ ("users" | "roles" | "everyone")) => parse.push(t),
                    _ => problems.push(format!(
                        "allowed_mentions.parse: {item} is not one of \"users\", \"roles\", \
                         \"everyone\""
                    )),
                }
            }
        }
        other => problems.push(format!(
            "allowed_mentions.parse must be an array, got {other}"
        )),
    }
    for (key, kind) in [("users", "users"), ("roles", "roles")] {
        let ids = match obj.get(key).unwrap_or(&Value::Null) {
            Value::Null => continue,
            Value::Array(ids) => ids,
            other => {
                problems.push(format!(
                    "allowed_mentions.{key} must be an array, got {other}"
                ));
                continue;
            }
        };
        if ids.len() > 100 {
            problems.push(format!(
                "allowed_mentions.{key} has {} ids (max 100)",
                ids.len()
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for id in ids {
            match id.as_str().filter(|s| is_snowflake(s)) {
                Some(s) if seen.contains(&s) => {
                    problems.push(format!("allowed_mentions.{key} lists {s} twice"))
                }
                Some(s) => seen.push(s),
                None => problems.push(format!(
                    "allowed_mentions.{key}: {id} is not a snowflake string"
                )),
            }
        }
        if !ids.is_empty() && parse.contains(&kind) {
            problems.push(format!(
                "allowed_mentions: parse has {kind:?} and {key} lists ids; Discord takes one or \
                 the other"
            ));
        }
    }
    if let Some(replied) = obj.get("replied_user")
        && !replied.is_null()
        && !replied.is_boolean()
    {
        problems.push(format!(
            "allowed_mentions.replied_user must be a boolean, got {replied}"
        ));
    }
}

/// The spec's `MessageReferenceRequest` for a reply: `message_id` is required and, like
/// `channel_id` and `guild_id`, a snowflake string; a reply stays in its channel (and guild);
/// `fail_if_not_exists` is a boolean, true by default; only `type` 0 (DEFAULT, a reply) is
/// served. Returns the message id and `fail_if_not_exists` when the reference is well formed.
fn check_reference(
    reference: &Value,
    channel: u64,
    problems: &mut Vec<String>,
) -> Option<(u64, bool)> {
    if reference.is_null() {
        return None;
    }
    let Some(obj) = reference.as_object() else {
        problems.push(format!(
            "message_reference must be an object, got {reference}"
        ));
        return None;
    };
    let before = problems.len();
    let id = |key: &str, problems: &mut Vec<String>| -> Option<u64> {
        let value = obj.get(key).filter(|v| !v.is_null())?;
        let id = value
            .as_str()
            .filter(|s| is_snowflake(s))
            .and_then(|s| s.parse().ok());
        if id.is_none() {
            problems.push(format!(
                "message_reference.{key}: {value} is not a snowflake string"
            ));
        }
        id
    };
    let message_id = id("message_id", problems);
    if obj.get("message_id").is_none_or(Value::is_null) {
        problems.push("message_reference.message_id is required".into());
    }
    if let Some(other) = id("channel_id", problems)
        && other != channel
    {
        problems.push(format!(
            "message_reference.channel_id {other} is not the channel posted to ({channel}); a \
             reply stays in its channel"
        ));
    }
    if let Some(guild) = id("guild_id", problems)
        && guild != GUILD_ID
    {
        problems.push(format!(
            "message_reference.guild_id {guild} is not the channel's guild"
        ));
    }
    match obj.get("type").unwrap_or(&Value::Null) {
        Value::Null => {}
        t if t == &json!(0) => {}
        other => problems.push(format!(
            "message_reference.type {other}: the fake serves replies (type 0) only"
        )),
    }
    let fail_if_not_exists = match obj.get("fail_if_not_exists").unwrap_or(&Value::Null) {
        Value::Null => true,
        Value::Bool(b) => *b,
        other => {
            problems.push(format!(
                "message_reference.fail_if_not_exists must be a boolean, got {other}"
            ));
            true
        }
    };
    if problems.len() > before {
        return None;
    }
    message_id.map(|id| (id, fail_if_not_exists))
}

/// The spec's `IncomingWebhookRequestPartial` identity fields: `username` 1-80 characters
/// (Discord also refuses names containing "discord" or "clyde"), `avatar_url` a http(s) URL of
/// at most 2048 characters.
fn check_webhook_identity(body: &Value, problems: &mut Vec<String>) {
    match body.get("username").unwrap_or(&Value::Null) {
        Value::Null => {}
        Value::String(name) => {
            let n = name.chars().count();
            if !(1..=80).contains(&n) {
                problems.push(format!("username is {n} characters (1-80)"));
            }
            let lower = name.to_lowercase();
            if lower.contains("discord") || lower.contains("clyde") {
                problems.push(format!(
                    "username {name:?} contains \"discord\" or \"clyde\", which Discord refuses"
                ));
            }
        }
        other => problems.push(format!("username must be a string, got {other}")),
    }
    match body.get("avatar_url").unwrap_or(&Value::Null) {
        Value::Null => {}
        Value::String(url)
            if url.len() <= 2048 && (url.starts_with("https://") || url.starts_with("http://")) => {
        }
        other => problems.push(format!(
            "avatar_url must be a http(s) URL of at most 2048 characters, got {other}"
        )),
    }
}

/// Whether `s` is a snowflake as the spec's `SnowflakeType` pattern has it: `0` or digits
/// without a leading zero.
fn is_snowflake(s: &str) -> bool {
    s == "0"
        || (!s.is_empty()
            && !s.starts_with('0')
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u64>().is_ok())
}

/// A query parameter's value, decoded.
fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A boolean query parameter (`wait`, `with_components`), false when absent. Discord reads
/// `true`/`false` (and `1`/`0`, in any case); anything else is a form error.
fn query_flag(query: Option<&str>, key: &str, problems: &mut Vec<String>) -> bool {
    let Some(value) = query_param(query, key) else {
        return false;
    };
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => true,
        "false" | "0" => false,
        _ => {
            problems.push(format!("query {key}={value:?} is not a boolean"));
            false
        }
    }
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

fn check_flags(data: &Value, interaction: bool, problems: &mut Vec<String>) {
    let Some(flags) = data.get("flags").filter(|f| !f.is_null()) else {
        return;
    };
    let Some(flags) = flags.as_u64() else {
        problems.push(format!("flags must be an integer, got {flags}"));
        return;
    };
    let mut allowed = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | COMPONENTS_V2;
    if interaction {
        allowed |= EPHEMERAL;
    }
    if flags & !allowed != 0 {
        problems.push(format!(
            "flags {flags} has bits Discord does not accept here ({})",
            flags & !allowed
        ));
    }
}

fn check_embeds(embeds: &Value, problems: &mut Vec<String>) {
    let Some(embeds) = embeds.as_array() else {
        if !embeds.is_null() {
            problems.push("embeds must be an array".into());
        }
        return;
    };
    if embeds.len() > 10 {
        problems.push(format!("{} embeds (max 10)", embeds.len()));
    }
    let mut total = 0;
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let mut limit = |i: usize, what: &str, v: &Value, max: usize, problems: &mut Vec<String>| {
        let n = len(v);
        total += n;
        if n > max {
            problems.push(format!("embed {i}: {what} is {n} characters (max {max})"));
        }
    };
    for (i, e) in embeds.iter().enumerate() {
        limit(i, "title", &e["title"], 256, problems);
        limit(i, "description", &e["description"], 4096, problems);
        limit(i, "footer.text", &e["footer"]["text"], 2048, problems);
        limit(i, "author.name", &e["author"]["name"], 256, problems);
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 {
            problems.push(format!("embed {i}: {} fields (max 25)", fields.len()));
        }
        for (j, f) in fields.iter().enumerate() {
            limit(i, &format!("field {j} name"), &f["name"], 256, problems);
            limit(i, &format!("field {j} value"), &f["value"], 1024, problems);
            if len(&f["name"]) == 0 || len(&f["value"]) == 0 {
                problems.push(format!("embed {i}: field {j} has an empty name or value"));
            }
        }
        if let Some(color) = e["color"].as_u64()
            && color > 0xFF_FFFF
        {
            problems.push(format!("embed {i}: color {color} is above 0xFFFFFF"));
        }
    }
    if total > 6000 {
        problems.push(format!("embeds total {total} characters (max 6000)"));
    }
}

fn check_components(components: &Value, problems: &mut Vec<String>) {
    let Some(rows) = components.as_array() else {
        if !components.is_null() {
            problems.push("components must be an array".into());
        }
        return;
    };
    if rows.len() > 5 {
        problems.push(format!("{} action rows (max 5)", rows.len()));
    }
    let mut ids: Vec<String> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if row["type"] != json!(1) {
            problems.push(format!(
                "component {i} is not an action row (type 1): {row}"
            ));
            continue;
        }
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if items.is_empty() || items.len() > 5 {
            problems.push(format!(
                "action row {i} has {} components (1-5)",
                items.len()
            ));
        }
        let selects = items
            .iter()
            .filter(|c| matches!(c["type"].as_u64(), Some(3 | 5 | 6 | 7 | 8)))
            .count();
        if selects > 0 && items.len() > 1 {
            problems.push(format!(
                "action row {i}: a select menu must be alone in its row"
            ));
        }
        for (j, c) in items.iter().enumerate() {
            let at = format!("row {i} component {j}");
            let custom_id = c["custom_id"].as_str();
            if let Some(id) = custom_id {
                if id.is_empty() || id.chars().count() > 100 {
                    problems.push(format!("{at}: custom_id must be 1-100 characters ({id:?})"));
                }
                if ids.iter().any(|x| x == id) {
                    problems.push(format!("{at}: duplicate custom_id {id:?}"));
                }
                ids.push(id.to_string());
            }
            match c["type"].as_u64() {
                Some(2) => {
                    let style = c["style"].as_u64().unwrap_or(0);
                    match style {
                        1..=4 if custom_id.is_none() => {
                            problems.push(format!("{at}: button style {style} needs a custom_id"))
                        }
                        5 if c["url"].as_str().is_none() || custom_id.is_some() => problems
                            .push(format!("{at}: a link button needs a url and no custom_id")),
                        1..=6 => {}
                        _ => problems.push(format!("{at}: button style {style} is not 1-6")),
                    }
                    if c["label"].as_str().is_some_and(|l| l.chars().count() > 80) {
                        problems.push(format!("{at}: button label over 80 characters"));
                    }
                }
                Some(3 | 5 | 6 | 7 | 8) => {
                    if custom_id.is_none() {
                        problems.push(format!("{at}: select menu needs a custom_id"));
                    }
                    if c["options"].as_array().is_some_and(|o| o.len() > 25) {
                        problems.push(format!("{at}: select menu has more than 25 options"));
                    }
                    if c["placeholder"]
                        .as_str()
                        .is_some_and(|p| p.chars().count() > 150)
                    {
                        problems.push(format!("{at}: placeholder over 150 characters"));
                    }
                }
                other => problems.push(format!(
                    "{at}: component type {other:?} is not allowed in a message row"
                )),
            }
        }
    }
}

fn check_choices(data: &Value, problems: &mut Vec<String>) {
    let Some(choices) = data["choices"].as_array() else {
        problems.push("an autocomplete result (type 8) needs data.choices".into());
        return;
    };
    if choices.len() > 25 {
        problems.push(format!("{} autocomplete choices (max 25)", choices.len()));
    }
    for (i, c) in choices.iter().enumerate() {
        let name = c["name"].as_str().map_or(0, |s| s.chars().count());
        if !(1..=100).contains(&name) {
            problems.push(format!("choice {i}: name must be 1-100 characters"));
        }
        match &c["value"] {
            Value::String(s) if s.chars().count() > 100 => {
                problems.push(format!("choice {i}: string value over 100 characters"))
            }
            Value::String(_) | Value::Number(_) => {}
            other => problems.push(format!(
                "choice {i}: value must be a string or number, got {other}"
            )),
        }
    }
}

fn check_modal(data: &Value, problems: &mut Vec<String>) {
    let custom_id = data["custom_id"].as_str().map_or(0, |s| s.chars().count());
    if !(1..=100).contains(&custom_id) {
        problems.push("modal custom_id must be 1-100 characters".into());
    }
    let title = data["title"].as_str().map_or(0, |s| s.chars().count());
    if !(1..=45).contains(&title) {
        problems.push("modal title must be 1-45 characters".into());
    }
    let rows = data["components"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() || rows.len() > 5 {
        problems.push(format!("modal has {} rows (1-5)", rows.len()));
    }
    for (i, row) in rows.iter().enumerate() {
        let inputs = row["components"].as_array().cloned().unwrap_or_default();
        let text_inputs = inputs.iter().all(|c| c["type"] == json!(4));
        if row["type"] == json!(1) && (inputs.len() != 1 || !text_inputs) {
            problems.push(format!("modal row {i} must hold exactly one text input"));
        }
        for c in &inputs {
            if c["label"].as_str().is_some_and(|l| l.chars().count() > 45) {
                problems.push(format!(
                    "modal row {i}: text input label over 45 characters"
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Whether serenity parses a dispatch into its typed event (not `Event::Unknown`).
fn serenity_parses(t: &str, d: &Value) -> Result<(), String> {
    use serenity::model::event::{Event, GatewayEvent};
    let frame = json!({"op": 0, "t": t, "s": 1, "d": d});
    match serde_json::from_value::<GatewayEvent>(frame) {
        Ok(GatewayEvent::Dispatch(_, Event::Unknown(_))) => Err(format!(
            "it falls back to Event::Unknown; parse error: {}",
            typed_error(t, d)
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Why the typed payload behind `t` does not parse.
fn typed_error(t: &str, d: &Value) -> String {
    use serenity::model::event::{
        ChannelCreateEvent, GuildCreateEvent, InteractionCreateEvent, ReadyEvent,
    };
    let result = match t {
        "READY" => serde_json::from_value::<ReadyEvent>(d.clone()).map(drop),
        "GUILD_CREATE" => serde_json::from_value::<GuildCreateEvent>(d.clone()).map(drop),
        "CHANNEL_CREATE" => serde_json::from_value::<ChannelCreateEvent>(d.clone()).map(drop),
        "INTERACTION_CREATE" => {
            serde_json::from_value::<InteractionCreateEvent>(d.clone()).map(drop)
        }
        _ => return "unknown event name".into(),
    };
    result
        .err()
        .map_or_else(|| "none".into(), |e| e.to_string())
}

/// Reads a snowflake given as a string or a number.
pub fn snowflake(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
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

fn role_permissions(role: u64) -> u64 {
    match role {
        ADMIN_ROLE => 8,
        _ => 0,
    }
}

/// Parses a JSON body, or the `payload_json` part of a multipart body.
fn parse_body(content_type: &str, body: &[u8]) -> Result<Option<Value>, String> {
    if body.is_empty() {
        return Ok(None);
    }
    if let Some(boundary) = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
    {
        let boundary = format!("--{}", boundary.trim_matches('"'));
        let text = String::from_utf8_lossy(body);
        for part in text.split(boundary.as_str()) {
            let Some((head, content)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            if head.contains("name=\"payload_json\"") {
                let content = content.strip_suffix("\r\n").unwrap_or(content);
                return serde_json::from_str(content)
                    .map(Some)
                    .map_err(|e| e.to_string());
            }
        }
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------------

/// The JSON the fake sends, built to deserialize with serenity's model types.
pub mod payload {
    use serde_json::{Value, json};

    use super::*;

    /// The guild's members: user id and roles (the bot is a member too).
    pub const MEMBERS: [(u64, &[u64]); 5] = [
        (OWNER_ID, &[]),
        (ADMIN_USER_ID, &[ADMIN_ROLE]),
        (OPS_USER_ID, &[OPS_ROLE]),
        (NOBODY_USER_ID, &[]),
        (BOT_USER_ID, &[]),
    ];

    pub fn member_roles(user: u64) -> Option<(u64, &'static [u64])> {
        MEMBERS.iter().find(|(id, _)| *id == user).copied()
    }

    fn username(id: u64) -> String {
        match id {
            OWNER_ID => "owner".into(),
            ADMIN_USER_ID => "admin".into(),
            OPS_USER_ID => "ops".into(),
            NOBODY_USER_ID => "nobody".into(),
            BOT_USER_ID => "patchbay".into(),
            other => format!("user{other}"),
        }
    }

    pub fn user(id: u64) -> Value {
        json!({
            "id": id.to_string(),
            "username": username(id),
            "discriminator": "0",
            "global_name": username(id),
            "avatar": null,
            "bot": id == BOT_USER_ID,
            "system": false,
            "public_flags": 0,
            "flags": 0,
            "banner": null,
            "accent_color": null,
            "avatar_decoration_data": null,
        })
    }

    pub fn bot_user() -> Value {
        let mut u = user(BOT_USER_ID);
        u["verified"] = json!(true);
        u["mfa_enabled"] = json!(false);
        u["email"] = Value::Null;
        u["locale"] = json!("en-US");
        u
    }

    /// A guild member; `permissions` is added for interaction members.
    pub fn member(id: u64, roles: &[u64], with_user: bool, permissions: Option<u64>) -> Value {
        let mut m = json!({
            "nick": null,
            "avatar": null,
            "banner": null,
            "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "joined_at": JOINED_AT,
            "premium_since": null,
            "deaf": false,
            "mute": false,
            "flags": 0,
            "pending": false,
            "communication_disabled_until": null,
            "unusual_dm_activity_until": null,
        });
        if with_user {
            m["user"] = user(id);
        }
        if let Some(p) = permissions {
            m["permissions"] = json!(p.to_string());
        }
        m
    }

    pub fn role(id: u64, name: &str, permissions: u64, position: u64) -> Value {
        json!({
            "id": id.to_string(),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
            "hoist": false,
            "icon": null,
            "unicode_emoji": null,
            "position": position,
            "permissions": permissions.to_string(),
            "managed": false,
            "mentionable": false,
            "flags": 0,
        })
    }

    pub fn roles() -> Vec<Value> {
        vec![
            role(GUILD_ID, "@everyone", 0, 0),
            role(ADMIN_ROLE, "admin", 8, 2),
            role(OPS_ROLE, "ops", 0, 1),
        ]
    }

    /// [`CHANNEL_ID`], where interactions happen.
    pub fn guild_channel() -> Value {
        text_channel(CHANNEL_ID)
    }

    /// A text channel of [`GUILD_ID`]: `general`, `alerts` and `routed` for the three the fake
    /// starts with, `channel-{id}` for any other.
    pub fn text_channel(id: u64) -> Value {
        let name = match id {
            CHANNEL_ID => "general".to_string(),
            ALERT_CHANNEL_ID => "alerts".to_string(),
            ROUTE_CHANNEL_ID => "routed".to_string(),
            other => format!("channel-{other}"),
        };
        let position = GUILD_CHANNELS.iter().position(|c| *c == id).unwrap_or(3);
        json!({
            "id": id.to_string(),
            "type": 0,
            "guild_id": GUILD_ID.to_string(),
            "name": name,
            "position": position,
            "permission_overwrites": [],
            "nsfw": false,
            "topic": null,
            "last_message_id": null,
            "parent_id": null,
            "rate_limit_per_user": 0,
            "flags": 0,
        })
    }

    /// The author Discord gives a message sent through an incoming webhook: a bot user whose
    /// id is the webhook's and whose name is the webhook's (or the execute body's `username`).
    pub fn webhook_author(webhook_id: u64, username: &str) -> Value {
        let mut u = user(webhook_id);
        u["username"] = json!(username);
        u["global_name"] = Value::Null;
        u["discriminator"] = json!("0000");
        u["bot"] = json!(true);
        u
    }

    pub fn dm_channel(id: u64, recipient: u64) -> Value {
        json!({
            "id": id.to_string(),
            "type": 1,
            "last_message_id": null,
            "recipients": [user(recipient)],
            "flags": 0,
        })
    }

    /// The guild object as `GET /guilds/{id}` returns it.
    pub fn guild_rest() -> Value {
        json!({
            "id": GUILD_ID.to_string(),
            "name": "Fake Guild",
            "icon": null,
            "icon_hash": null,
            "splash": null,
            "discovery_splash": null,
            "owner_id": OWNER_ID.to_string(),
            "afk_channel_id": null,
            "afk_timeout": 300,
            "widget_enabled": false,
            "widget_channel_id": null,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": roles(),
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": null,
            "system_channel_id": CHANNEL_ID.to_string(),
            "system_channel_flags": 0,
            "rules_channel_id": null,
            "max_presences": null,
            "max_members": 500000,
            "vanity_url_code": null,
            "description": null,
            "banner": null,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": null,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": false,
            "safety_alerts_channel_id": null,
        })
    }

    /// The GUILD_CREATE dispatch data with the channels the fake starts with.
    pub fn guild() -> Value {
        guild_with_channels(&GUILD_CHANNELS)
    }

    /// The GUILD_CREATE dispatch data: the REST guild plus the gateway-only fields, with
    /// `channels` as text channels.
    pub fn guild_with_channels(channels: &[u64]) -> Value {
        let mut g = guild_rest();
        let extra = json!({
            "joined_at": JOINED_AT,
            "large": false,
            "unavailable": false,
            "member_count": MEMBERS.len(),
            "voice_states": [],
            "members": MEMBERS.iter().map(|(id, roles)| member(*id, roles, true, None)).collect::<Vec<_>>(),
            "channels": channels.iter().map(|c| text_channel(*c)).collect::<Vec<_>>(),
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        });
        if let (Value::Object(g), Value::Object(extra)) = (&mut g, extra) {
            g.extend(extra);
        }
        g
    }

    pub fn ready(session_id: &str, ws_url: &str, shard: Value) -> Value {
        json!({
            "v": 10,
            "user": bot_user(),
            "guilds": [{"id": GUILD_ID.to_string(), "unavailable": true}],
            "session_id": session_id,
            "resume_gateway_url": ws_url,
            "shard": shard,
            "application": {"id": APP_ID.to_string(), "flags": 0},
            "user_settings": {},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
        })
    }

    pub fn application_info() -> Value {
        json!({
            "id": APP_ID.to_string(),
            "name": "patchbay",
            "icon": null,
            "description": "",
            "rpc_origins": [],
            "bot_public": false,
            "bot_require_code_grant": false,
            "owner": user(OWNER_ID),
            "verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
            "team": null,
            "flags": 0,
            "bot": user(BOT_USER_ID),
            "role_connections_verification_url": null,
            "approximate_guild_count": 1,
            "redirect_uris": [],
            "interactions_endpoint_url": null,
            "integration_types_config": {"0": {}},
        })
    }

    pub struct CommandSpec<'a> {
        pub id: u64,
        pub token: &'a str,
        /// 2 (APPLICATION_COMMAND) or 4 (AUTOCOMPLETE).
        pub kind: u64,
        pub name: &'a str,
        pub command_id: u64,
        pub command_guild: Option<u64>,
        pub options: Value,
        pub place: Place,
        pub channel_id: u64,
    }

    fn base(id: u64, token: &str, kind: u64, channel_id: u64, place: Place) -> Value {
        let mut i = json!({
            "id": id.to_string(),
            "application_id": APP_ID.to_string(),
            "type": kind,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": BOT_PERMISSIONS.to_string(),
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "channel_id": channel_id.to_string(),
        });
        match place {
            Place::Guild(member_of) => {
                let permissions = member_of.permissions();
                i["guild_id"] = json!(GUILD_ID.to_string());
                i["guild_locale"] = json!("en-US");
                i["guild"] = json!({"id": GUILD_ID.to_string(), "locale": "en-US", "features": []});
                i["member"] = member(member_of.user_id, member_of.roles, true, Some(permissions));
                let mut channel = guild_channel();
                channel["permissions"] = json!(permissions.to_string());
                i["channel"] = channel;
                i["authorizing_integration_owners"] = json!({"0": GUILD_ID.to_string()});
                i["context"] = json!(0);
            }
            Place::Dm(user_id) => {
                i["user"] = user(user_id);
                let mut channel = dm_channel(channel_id, user_id);
                channel["permissions"] = json!("0");
                i["channel"] = channel;
                i["authorizing_integration_owners"] = json!({"0": "0"});
                i["context"] = json!(1);
            }
        }
        i
    }

    pub fn command_interaction(spec: &CommandSpec<'_>) -> Value {
        let mut options = spec.options.clone();
        let mut resolved = json!({});
        resolve_options(
            &mut options,
            &mut resolved,
            matches!(spec.place, Place::Guild(_)),
        );
        let mut data = json!({
            "id": spec.command_id.to_string(),
            "name": spec.name,
            "type": 1,
            "options": options,
        });
        if let Some(g) = spec.command_guild {
            data["guild_id"] = json!(g.to_string());
        }
        if resolved.as_object().is_some_and(|r| !r.is_empty()) {
            data["resolved"] = resolved;
        }
        let mut i = base(spec.id, spec.token, spec.kind, spec.channel_id, spec.place);
        i["data"] = data;
        i
    }

    pub fn component_interaction(
        id: u64,
        token: &str,
        channel_id: u64,
        custom_id: &str,
        message: Value,
        member_of: FakeMember,
    ) -> Value {
        let mut i = base(id, token, 3, channel_id, Place::Guild(member_of));
        i["data"] = json!({"custom_id": custom_id, "component_type": 2});
        i["message"] = message;
        i
    }

    /// Snowflake option values become strings and get their `resolved` entries, as Discord does.
    fn resolve_options(options: &mut Value, resolved: &mut Value, in_guild: bool) {
        let Some(list) = options.as_array_mut() else {
            return;
        };
        for o in list {
            if o["options"].is_array() {
                resolve_options(&mut o["options"], resolved, in_guild);
            }
            let kind = o["type"].as_u64();
            if o["focused"] == json!(true) || !matches!(kind, Some(6..=9)) {
                continue;
            }
            let Some(id) = snowflake(&o["value"]) else {
                continue;
            };
            o["value"] = json!(id.to_string());
            let is_role = id == GUILD_ID || role_permissions(id) != 0 || id == OPS_ROLE;
            match kind {
                Some(6) => add_user(resolved, id, in_guild),
                Some(9) if !is_role => add_user(resolved, id, in_guild),
                Some(8 | 9) => {
                    if let Some(r) = roles()
                        .into_iter()
                        .find(|r| r["id"] == json!(id.to_string()))
                    {
                        resolved["roles"][id.to_string()] = r;
                    }
                }
                Some(7) => {
                    let mut c = if GUILD_CHANNELS.contains(&id) {
                        text_channel(id)
                    } else {
                        json!({"id": id.to_string(), "type": 0, "name": format!("channel{id}")})
                    };
                    c["permissions"] = json!(ALL_PERMISSIONS.to_string());
                    resolved["channels"][id.to_string()] = c;
                }
                _ => {}
            }
        }
    }

    fn add_user(resolved: &mut Value, id: u64, in_guild: bool) {
        resolved["users"][id.to_string()] = user(id);
        if in_guild && let Some((_, roles)) = member_roles(id) {
            let permissions = FakeMember {
                user_id: id,
                roles,
                administrator: false,
            }
            .permissions();
            resolved["members"][id.to_string()] = member(id, roles, false, Some(permissions));
        }
    }
}
