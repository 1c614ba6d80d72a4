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
//!
//! The files, each owning one part (the state they share is defined here, so that each of
//! them reads and writes it under the one lock):
//!
//! - `mod.rs`: the ids of the guild, its members, roles and channels; the public types
//!   ([`FakeDiscord`], [`Recorded`], [`Fault`], [`FakeMember`], [`GatewayStatus`], [`Place`]);
//!   the fake's state; starting it, the request log and violations, and waiting.
//! - `gateway.rs`: the websocket: HELLO, IDENTIFY and READY, RESUME and its replay, heartbeats,
//!   a dropped connection.
//! - `rest.rs`: the REST handler (JSON and multipart bodies, file parts kept), the routing
//!   table, and the route prefixes that
//!   [`FakeDiscord::inject`] and [`FakeDiscord::attempts`] take.
//! - `commands.rs`: application command registration.
//! - `interactions.rs`: slash commands, autocomplete and button clicks sent to the bot, their
//!   callbacks, follow-ups and `@original`.
//! - `messages.rs`: channel messages, replies, nonces, edits and their history, channels,
//!   incoming webhooks, mentions.
//! - `faults.rs`: injected faults and the 429 windows.
//! - `checks.rs`: the spec checks of what the bot sends, and whether serenity parses what the
//!   fake sends.
//! - `payload.rs`: the serenity-shaped JSON the fake builds.

mod checks;
mod commands;
mod faults;
mod gateway;
mod interactions;
mod messages;
pub mod payload;
mod rest;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::any;
use gateway::{status, ws_handler};
use rest::rest_handler;
use serde_json::Value;
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
/// The bot's own role, which Discord makes when the bot is invited with permissions (managed:
/// no one else can hold it); it grants [`BOT_PERMISSIONS`].
pub const BOT_ROLE: u64 = 300_000_000_000_000_003;
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
    /// The file parts of a multipart request (`files[n]`), in order.
    pub files: Vec<FilePart>,
    /// When the request arrived, so that a test can check how far apart retries were.
    pub at: Instant,
    /// The status the fake answered. `None` for a request held by [`Fault::Hang`], which is never
    /// answered.
    pub status: Option<u16>,
}

/// One file part of a multipart request, as the bot uploaded it.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePart {
    /// The form field (`files[0]`).
    pub field: String,
    /// The `filename` of its `Content-Disposition`.
    pub filename: String,
    /// Its `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Vec<u8>,
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
    /// Permission overwrites by channel ([`FakeDiscord::deny_bot`]).
    overwrites: HashMap<u64, Vec<Value>>,
    /// Whether the bot's token was reset ([`FakeDiscord::reset_token`]): every call that needs
    /// it is then answered 401.
    token_reset: bool,
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
    ModalSubmit,
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
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Where an interaction happens.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    Guild(FakeMember),
    Dm(u64),
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
                overwrites: HashMap::new(),
                token_reset: false,
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

    /// Every REST request, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().requests.clone()
    }

    /// What Discord would have rejected, or the fake could not serve.
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().violations.clone()
    }

    /// The distinct `Authorization` headers REST requests carried.
    pub fn rest_tokens(&self) -> Vec<String> {
        self.inner.lock().rest_tokens.clone()
    }

    /// Awaits the first request (from the start of the log) matching `pred`.
    pub async fn wait_for_request(&self, what: &str, pred: impl Fn(&Recorded) -> bool) -> Recorded {
        self.wait(what, |st| st.requests.iter().find(|r| pred(r)).cloned())
            .await
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
                        format!(
                            "  {status} {} {} {}",
                            r.method,
                            r.path,
                            brief(r.body.as_ref())
                        )
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

impl St {
    fn snowflake(&mut self) -> u64 {
        self.next_snowflake += 1;
        self.next_snowflake
    }

    fn violation(&mut self, text: String) {
        self.violations.push(text);
    }
}

fn brief(body: Option<&Value>) -> String {
    let text = body.map(Value::to_string).unwrap_or_default();
    if text.chars().count() > 300 {
        format!("{}...", text.chars().take(300).collect::<String>())
    } else {
        text
    }
}

/// Reads a snowflake given as a string or a number.
pub fn snowflake(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn role_permissions(role: u64) -> u64 {
    match role {
        ADMIN_ROLE => 8,
        _ => 0,
    }
}
