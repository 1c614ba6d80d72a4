//! Alert delivery to Discord: the one REST client that posts, edits and answers alert messages,
//! as the bot (`POST /channels/{id}/messages`) or through an incoming webhook.
//!
//! [`DiscordCourier`] implements [`Courier`]: every call is at most one HTTP attempt, because
//! the durable outbox owns retries, order and pacing. What the courier owns is turning Discord's
//! answer into a [`DeliveryError`] the dispatcher can act on:
//!
//! - **Refusals are Discord's own.** Only a 4xx carrying Discord's JSON error (a code and a
//!   message: 403 Missing Access, 404 Unknown Channel, 400 Invalid Form Body with its reasons)
//!   is [`DeliveryError::Permanent`]. A 5xx, a timeout, a dropped connection, an answer cut
//!   mid-body, a garbled 2xx or a 4xx without Discord's body (a proxy answering) is worth
//!   another try: posts carry a nonce and edits show the current state, so retrying is safe.
//! - **Rate limits per bucket.** A 429 holds back its own bucket (Discord's
//!   `X-RateLimit-Bucket`, learned per route, and the channel) for the precise `retry_after`
//!   of its body, or every route when it is global; a call on a held bucket returns
//!   [`DeliveryError::Held`] without sending anything. Other channels go on.
//! - **An older rendering is noticed.** A post retried with the nonce of an attempt whose
//!   answer was lost gets the message that attempt created; [`Posted::shows_view`] says
//!   whether it shows what was just sent, so the dispatcher can edit it to the current state.
//! - **Ambiguity is said.** A webhook takes no nonce, so a webhook post whose answer was lost
//!   (a timeout or a connection that broke after the request left) is
//!   [`DeliveryError::Retry`] with `ambiguous`: retrying may post it twice.
//! - **Gone messages.** Code 10008 Unknown Message on an edit is
//!   [`DeliveryError::MessageGone`]: the dispatcher posts a fresh message.
//!
//! [`render_notice`] builds the message body (one embed, and the buttons) from a [`NoticeView`],
//! always within Discord's limits, and is testable on its own.
//!
//! # On the resilience layer
//!
//! Every call goes through the `discord` [`Upstream`] with [`Upstream::exchange`], shaped by
//! [`upstream_config`]: one attempt per call (the outbox retries), a 10 s timeout covering the
//! answer and its body, a breaker told every outcome, the holds 429s announced, and the error
//! taxonomy. `exchange` returns Discord's answer whatever its status, body included, because
//! what Discord says about an error decides what the dispatcher does: the precise
//! `retry_after` (the `Retry-After` header is whole seconds), `global`, the bucket a route
//! belongs to (`X-RateLimit-Bucket`, often first heard on the 429 itself), and the JSON error
//! code that tells "Unknown Message" (10008: post a fresh message) from "Unknown Channel"
//! (10003: a human must fix the route). So the upstream leaves holds to the courier
//! ([`Holding::Caller`]): the courier reads a 429 and holds the route's bucket, or every route
//! when it is global, with [`Upstream::hold`]. A call on a held bucket or through an open
//! breaker comes back unsent, as [`DeliveryError::Held`]. A webhook post is the one
//! [`Idempotency::NonIdempotent`] call (posts as the bot carry a nonce; edits and reads show
//! the current state), and [`Unanswered::never_sent`] says whether its lost answer is
//! ambiguous. The upstream is registered with the metrics at start-up, so its breaker shows
//! as `patchbay_circuit_state{upstream="discord"}`.
//!
//! # Secrets
//!
//! The bot token and the webhook URL (whose last segment is the webhook's token) are held as
//! [`Secret`]s. `Debug` shows neither, and no error message is built from a URL; as a last
//! defence every message is scrubbed of both before it leaves this module.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::custom_id::Press;
use super::render::{marker, shorten};
use crate::alerts::notice::{Courier, DeliveryError, Posted, ReplyNote};
use crate::config::Config;
use crate::duration;
use crate::model::State;
use crate::model::notice::{IncidentLine, MessageRef, NoticeStatus, NoticeView, ReplyKind};
use crate::model::{Severity, Snowflake};
use crate::resilience::{
    BreakerConfig, Call, CircuitState, DEFAULT_HOLD, Exchange, Holding, Idempotency,
    MAX_RETRY_AFTER, RetryPolicy, Unanswered, Upstream, UpstreamConfig, UpstreamError,
    parse_retry_after,
};
use crate::secret::Secret;

/// The upstream's name in logs and errors.
pub const UPSTREAM: &str = "discord";

/// The `User-Agent` Discord asks bots to send.
const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/patchbay, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Discord's limits, in characters.
const CONTENT_LIMIT: usize = 2000;
const TITLE_LIMIT: usize = 256;
const DESCRIPTION_LIMIT: usize = 4096;
const FIELD_VALUE_LIMIT: usize = 1024;
const EMBED_TOTAL_LIMIT: usize = 6000;
/// `allowed_mentions.roles` holds at most 100 ids.
const ROLE_MENTION_LIMIT: usize = 100;
/// A message `nonce` is at most 25 characters.
const NONCE_LIMIT: usize = 25;

/// The largest response body read: a message object is a few kilobytes.
const BODY_LIMIT: usize = 1 << 20;
/// The longest Discord error text kept in a [`DeliveryError`] message.
const ERROR_TEXT_LIMIT: usize = 300;

/// Embed colours: critical, warning, resolved.
const RED: u32 = 0xe7_4c_3c;
const ORANGE: u32 = 0xe6_7e_22;
const GREEN: u32 = 0x2e_cc_71;

/// Discord's JSON error codes the courier tells apart.
const UNKNOWN_MESSAGE: u64 = 10008;
const INVALID_FORM_BODY: u64 = 50035;

/// The `discord` upstream: a 10 s attempt, exactly one attempt per call (the outbox retries),
/// and a breaker that opens only after ten upstream faults in a row (429s, 5xx, timeouts,
/// connection failures), for 30 s. No client-side rate limit: Discord's 429s carry the wait,
/// which the courier reads from their bodies and holds itself ([`Holding::Caller`]).
pub fn upstream_config() -> UpstreamConfig {
    UpstreamConfig {
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        breaker: BreakerConfig {
            failure_threshold: 10,
            open_duration: Duration::from_secs(30),
        },
        rate_limit: None,
        body_limit: BODY_LIMIT,
        holding: Holding::Caller,
    }
}

/// Delivers alert notices to Discord, as the bot or through an incoming webhook.
pub struct DiscordCourier {
    target: Target,
    client: reqwest::Client,
    /// The `discord` upstream: breaker, holds (the waits Discord's 429s announced, per bucket
    /// and channel, or for every route), timeout and taxonomy.
    upstream: Upstream,
    /// The bucket Discord named for each route (`X-RateLimit-Bucket`): routes sharing a bucket
    /// share a hold.
    buckets: Mutex<HashMap<&'static str, String>>,
}

/// A Discord route as its rate limits see it: the method and path template, and the major
/// parameter (the channel, or 0 for the one webhook) that splits each bucket per resource.
#[derive(Clone, Copy)]
struct Route {
    name: &'static str,
    major: u64,
}

/// Where messages go, and the credential that takes them there.
enum Target {
    /// The bot's REST API: `{base}/api/v10/channels/...` with `Authorization: Bot <token>`.
    Bot {
        /// `{api_base}/api/v10`, without a trailing slash.
        api: String,
        /// `Bot <token>`, marked sensitive; `None` when the token cannot be a header value.
        authorization: Option<HeaderValue>,
        token: Secret,
    },
    /// An incoming webhook: the URL is the credential.
    Webhook {
        /// The parsed URL; `None` when it is not a usable http(s) URL.
        url: Option<Url>,
        secret: Secret,
    },
}

impl fmt::Debug for DiscordCourier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.target {
            Target::Bot { .. } => "bot",
            Target::Webhook { .. } => "webhook",
        };
        f.debug_struct("DiscordCourier")
            .field("mode", &mode)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

/// What a request is for, which decides what a 404 "Unknown Message" means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Creating a message: nothing can be gone.
    Create,
    /// Editing or fetching an existing message: 10008 is [`DeliveryError::MessageGone`].
    Existing,
}

impl DiscordCourier {
    /// The courier `patchbay run` delivers alerts with: through the configured webhook, else as
    /// the bot when a token is set; `None` when neither is (the log takes the alerts).
    pub fn for_config(config: &Config) -> Option<Self> {
        if let Some(webhook) = &config.alerts.webhook {
            return Some(Self::webhook(webhook));
        }
        let token = config.bot.token.as_ref()?;
        Some(Self::bot(&config.bot.api_base, token))
    }

    /// Posts as the bot through Discord's REST API at `api_base` (`https://discord.com`, or
    /// `DISCORD_API_BASE`). A token that cannot be sent in a header makes every delivery fail
    /// with [`DeliveryError::Permanent`] (kind `auth`).
    pub fn bot(api_base: &Url, token: &Secret) -> Self {
        let authorization = HeaderValue::from_str(&format!("Bot {}", token.expose()))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        Self::new(Target::Bot {
            api: format!("{}/api/v10", api_base.as_str().trim_end_matches('/')),
            authorization,
            token: token.clone(),
        })
    }

    /// Posts through the incoming webhook at `url` (`https://discord.com/api/webhooks/ID/TOKEN`,
    /// validated by the config). The webhook posts into its own channel, so the channel a
    /// caller names is ignored. A plain webhook cannot carry buttons (nobody would receive their
    /// clicks) nor reply to a message, so notices have no buttons and replies are follow-up
    /// messages that quote the original (see the `reply` of its [`Courier`] impl). A URL that is not
    /// http(s) makes every delivery fail with [`DeliveryError::Permanent`] (kind `client`).
    pub fn webhook(url: &Secret) -> Self {
        let parsed = Url::parse(url.expose())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        Self::new(Target::Webhook {
            url: parsed,
            secret: url.clone(),
        })
    }

    fn new(target: Target) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            // Discord's API never redirects, and following one could send an alert somewhere
            // else, so a 3xx is answered as a bad response.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest's rustls client builds");
        DiscordCourier {
            target,
            client,
            upstream: Upstream::new(UPSTREAM, upstream_config()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The same courier with a different per-attempt timeout (tests use a short one). Its
    /// upstream is a new one, with a closed breaker and no holds.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        let config = UpstreamConfig {
            timeout,
            ..*self.upstream.config()
        };
        self.upstream = Upstream::new(UPSTREAM, config);
        self
    }

    /// Whether this courier posts through a webhook (no buttons, no real replies).
    pub fn is_webhook(&self) -> bool {
        matches!(self.target, Target::Webhook { .. })
    }

    /// The upstream configuration in use (name [`UPSTREAM`]).
    pub fn config(&self) -> &UpstreamConfig {
        self.upstream.config()
    }

    /// The circuit breaker's state.
    pub fn circuit_state(&self) -> CircuitState {
        self.upstream.circuit_state()
    }

    /// The `discord` upstream every call goes through; a clone shares its breaker, which is how
    /// the metrics endpoint shows it (`Metrics::watch_upstream`).
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The URL that creates a message: the channel's messages as the bot, the webhook with
    /// `?wait=true` (so Discord answers with the message and its id) otherwise.
    fn create_url(&self, channel: Snowflake) -> Result<Url, DeliveryError> {
        match &self.target {
            Target::Bot { api, .. } => parse_api(&format!("{api}/channels/{}/messages", channel.0)),
            Target::Webhook { .. } => {
                let mut url = self.webhook_url()?;
                url.query_pairs_mut().append_pair("wait", "true");
                Ok(url)
            }
        }
    }

    /// The URL of an existing message.
    fn message_url(&self, message: MessageRef) -> Result<Url, DeliveryError> {
        match &self.target {
            Target::Bot { api, .. } => parse_api(&format!(
                "{api}/channels/{}/messages/{}",
                message.channel.0, message.message.0
            )),
            Target::Webhook { .. } => {
                let mut url = self.webhook_url()?;
                url.path_segments_mut()
                    .map_err(|()| invalid_webhook())?
                    .pop_if_empty()
                    .push("messages")
                    .push(&message.message.0.to_string());
                Ok(url)
            }
        }
    }

    fn webhook_url(&self) -> Result<Url, DeliveryError> {
        match &self.target {
            Target::Webhook { url: Some(url), .. } => Ok(url.clone()),
            _ => Err(invalid_webhook()),
        }
    }

    /// Makes the one attempt of a call through the `discord` upstream: a route whose bucket a
    /// 429 holds, or an open breaker, keeps it from being sent; otherwise Discord's answer,
    /// whatever its status, is read here. The bucket Discord names is learned, and anything
    /// but a 2xx becomes a [`DeliveryError`]. Returns the body of a 2xx answer.
    async fn call(
        &self,
        purpose: Purpose,
        route: Route,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, DeliveryError> {
        let authorization = match &self.target {
            Target::Bot {
                authorization: None,
                ..
            } => {
                return Err(DeliveryError::Permanent {
                    kind: "auth",
                    message: "the bot token cannot be sent in an HTTP header".into(),
                });
            }
            Target::Bot { authorization, .. } => authorization.clone(),
            Target::Webhook { .. } => None,
        };
        // A webhook post takes no nonce: when its answer goes missing, the message may exist,
        // and a retry may post it again. A post as the bot carries a nonce Discord deduplicates,
        // and an edit or a read shows the current state, so repeating those is harmless.
        let idempotency = if purpose == Purpose::Create && self.is_webhook() {
            Idempotency::NonIdempotent
        } else {
            Idempotency::Idempotent
        };
        let bucket = self.bucket_of(route);
        let call = Call {
            idempotency,
            bucket: Some(&bucket),
        };
        let build = || {
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(authorization) = &authorization {
                request = request.header(AUTHORIZATION, authorization.clone());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            request
        };
        let answer = match self.upstream.exchange(call, build).await {
            Ok(answer) => answer,
            Err(unanswered) => return Err(self.unanswered(unanswered, idempotency)),
        };
        if let Some(learned) = answer
            .headers
            .get("x-ratelimit-bucket")
            .and_then(|v| v.to_str().ok())
        {
            self.learn_bucket(route, learned);
        }
        match answer.error() {
            None if answer.status.is_success() => Ok(answer.body),
            // Discord never redirects; a 1xx or 3xx here comes from something in between.
            None => Err(DeliveryError::Retry {
                after: None,
                kind: "bad_response",
                message: format!("unexpected HTTP {}", answer.status.as_u16()),
                ambiguous: false,
            }),
            Some(upstream_error) => Err(self.rejection(purpose, route, &answer, &upstream_error)),
        }
    }

    /// The key of `route`'s rate limit: the bucket Discord named for the route (learned from
    /// its `X-RateLimit-Bucket` answers; the route itself until then) and the route's major
    /// parameter, since Discord limits each channel's (or webhook's) bucket on its own.
    fn bucket_of(&self, route: Route) -> String {
        let learned = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = learned.get(route.name).map_or(route.name, String::as_str);
        format!("{bucket}:{}", route.major)
    }

    fn learn_bucket(&self, route: Route, bucket: &str) {
        let mut learned = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if learned.get(route.name).is_none_or(|known| known != bucket) {
            learned.insert(route.name, bucket.to_string());
        }
    }

    /// A call that got no answer as a delivery error. One the upstream kept back (a 429's hold,
    /// the open breaker) was not sent and is [`DeliveryError::Held`]; a timeout, a connection
    /// failure or an answer cut short is worth another try, ambiguous when a non-idempotent
    /// request may have taken effect (see [`DeliveryError::Retry`]); a request that could not
    /// be built would fail the same way again.
    fn unanswered(&self, unanswered: Unanswered, idempotency: Idempotency) -> DeliveryError {
        let Unanswered { error, never_sent } = unanswered;
        let ambiguous = idempotency == Idempotency::NonIdempotent && !never_sent;
        match error {
            UpstreamError::RateLimited { retry_after } => DeliveryError::Held {
                after: retry_after.unwrap_or(DEFAULT_HOLD),
                kind: error.kind(),
            },
            UpstreamError::CircuitOpen { retry_in, .. } => DeliveryError::Held {
                after: retry_in,
                kind: error.kind(),
            },
            UpstreamError::Timeout => DeliveryError::Retry {
                after: None,
                kind: error.kind(),
                message: format!(
                    "Discord did not answer within {}",
                    duration::compact(self.config().timeout)
                ),
                ambiguous,
            },
            _ if error.is_retryable() => DeliveryError::Retry {
                after: None,
                kind: error.kind(),
                message: self.scrub(&error.to_string()),
                ambiguous,
            },
            _ => DeliveryError::Permanent {
                kind: error.kind(),
                message: self.scrub(&error.to_string()),
            },
        }
    }

    /// Discord's answer with a status of 400 or above as a delivery error. Only Discord's own
    /// refusals (a 4xx with its JSON error: a code and a message, such as 403 Missing Access,
    /// 404 Unknown Channel or 400 Invalid Form Body with its reasons) need a human; a 429 holds
    /// the route (every route when global) for the wait it gives; 5xx, and a 4xx without
    /// Discord's error body (a proxy or a load balancer answering), are worth another try.
    fn rejection(
        &self,
        purpose: Purpose,
        route: Route,
        answer: &Exchange,
        upstream_error: &UpstreamError,
    ) -> DeliveryError {
        let status = answer.status;
        let json: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let code = json["code"].as_u64();
        if purpose == Purpose::Existing
            && status == StatusCode::NOT_FOUND
            && code == Some(UNKNOWN_MESSAGE)
        {
            return DeliveryError::MessageGone;
        }
        let message = self.scrub(&describe(status, &json));
        if let UpstreamError::RateLimited { .. } = upstream_error {
            let (after, global) = rate_limit_wait(&json, &answer.headers);
            let after = after.unwrap_or(DEFAULT_HOLD);
            // The bucket as just learned from this answer: routes sharing it share the hold.
            let bucket = (!global).then(|| self.bucket_of(route));
            self.upstream.hold(bucket.as_deref(), after);
            return DeliveryError::Retry {
                after: Some(after),
                kind: upstream_error.kind(),
                message,
                ambiguous: false,
            };
        }
        let discord_refusal =
            status.is_client_error() && code.is_some() && json["message"].is_string();
        if discord_refusal {
            DeliveryError::Permanent {
                kind: upstream_error.kind(),
                message,
            }
        } else {
            DeliveryError::Retry {
                after: None,
                kind: upstream_error.kind(),
                message,
                ambiguous: false,
            }
        }
    }

    /// Replaces anything secret in `text` with `***`.
    fn scrub(&self, text: &str) -> String {
        let secrets: Vec<&str> = match &self.target {
            Target::Bot { token, .. } => vec![token.expose()],
            Target::Webhook { url, secret } => {
                let mut secrets = vec![secret.expose()];
                // The token is the URL's last path segment.
                if let Some(token) = url
                    .as_ref()
                    .and_then(|u| u.path_segments())
                    .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
                {
                    secrets.push(token);
                }
                secrets
            }
        };
        let mut text = text.to_string();
        for secret in secrets.into_iter().filter(|s| s.len() >= 4) {
            text = text.replace(secret, "***");
        }
        text
    }

    /// The route a request with `method` takes: creating a message in `channel` (`POST`), or
    /// reading or editing one of its messages.
    fn route(&self, method: &Method, channel: Snowflake) -> Route {
        let bot = !self.is_webhook();
        let name = match (bot, method.as_str()) {
            (true, "POST") => "POST /channels/{channel_id}/messages",
            (true, "PATCH") => "PATCH /channels/{channel_id}/messages/{message_id}",
            (true, _) => "GET /channels/{channel_id}/messages/{message_id}",
            (false, "POST") => "POST /webhooks/{webhook_id}/{webhook_token}",
            (false, "PATCH") => {
                "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"
            }
            (false, _) => "GET /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        };
        // A webhook posts into its one channel: its routes are limited per webhook.
        let major = if bot { channel.0 } else { 0 };
        Route { name, major }
    }

    /// Sends a new message in `channel`; returns where it is and Discord's answer (the message
    /// as it is: with `enforce_nonce`, the one an earlier attempt created).
    async fn create(
        &self,
        channel: Snowflake,
        body: &Value,
    ) -> Result<(MessageRef, Value), DeliveryError> {
        let url = self.create_url(channel)?;
        let route = self.route(&Method::POST, channel);
        let answer = self
            .call(Purpose::Create, route, Method::POST, url, Some(body))
            .await?;
        let json: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        match message_ref(&json) {
            Some(message) => Ok((message, json)),
            // The message may exist: a retry is safe with the nonce, and counted ambiguous
            // through a webhook, which has none.
            None => Err(DeliveryError::Retry {
                after: None,
                kind: "bad_response",
                message: "Discord's answer has no message id and channel id".into(),
                ambiguous: self.is_webhook(),
            }),
        }
    }

    /// A webhook's stand-in for a reply: the original's title (and a link to it, when Discord
    /// says which guild it is in) as a small line under the text. `None` when the original is
    /// gone.
    async fn quote_original(&self, to: MessageRef) -> Result<Option<String>, DeliveryError> {
        let url = self.message_url(to)?;
        let route = self.route(&Method::GET, to.channel);
        let original = match self
            .call(Purpose::Existing, route, Method::GET, url, None)
            .await
        {
            Ok(body) => serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            Err(DeliveryError::MessageGone) => return Ok(None),
            Err(err) => return Err(err),
        };
        let title = original["embeds"][0]["title"]
            .as_str()
            .or_else(|| original["content"].as_str().and_then(|c| c.lines().next()))
            .filter(|t| !t.trim().is_empty())
            .unwrap_or("an earlier alert");
        // Square brackets would end the link text early.
        let title = shorten(&title.replace(['[', ']'], ""), 100);
        let guild = original["guild_id"].as_str();
        Ok(Some(match guild {
            Some(guild) => format!(
                "-# ↪ re: [{title}](https://discord.com/channels/{guild}/{}/{})",
                to.channel.0, to.message.0
            ),
            None => format!("-# ↪ re: {title}"),
        }))
    }
}

impl Courier for DiscordCourier {
    /// Bot: `POST /channels/{channel}/messages` with the notice, its buttons, the role mentions,
    /// and `nonce` = `key` with `enforce_nonce`, so a retry within Discord's nonce window (a few
    /// minutes) returns the first message instead of posting a second. Webhook: execute with
    /// `?wait=true`, no buttons, and no nonce (webhooks do not take one, so a retry after a lost
    /// answer can post twice); `channel` is ignored. [`Posted::shows_view`] compares the
    /// message Discord answered with against the body sent (see [`same_rendering`]).
    fn post<'a>(
        &'a self,
        channel: Snowflake,
        view: &'a NoticeView,
        mention: &'a [Snowflake],
        key: &'a str,
    ) -> BoxFuture<'a, Result<Posted, DeliveryError>> {
        Box::pin(async move {
            let mut body = render_notice(view, !self.is_webhook());
            let (content, roles) = mentions(mention, CONTENT_LIMIT);
            if !content.is_empty() {
                body["content"] = json!(content);
            }
            body["allowed_mentions"] = allowed_mentions(&roles);
            if self.is_webhook() {
                if let Some(obj) = body.as_object_mut() {
                    obj.remove("components");
                }
            } else {
                set_nonce(&mut body, key)?;
            }
            let (message, answer) = self.create(channel, &body).await?;
            Ok(Posted {
                message,
                shows_view: same_rendering(&body, &answer),
            })
        })
    }

    /// `PATCH` the message with the current embed and buttons (none once resolved, which
    /// removes them). The content (the mentions) is left alone and `allowed_mentions` is empty,
    /// so nobody is pinged again.
    fn edit<'a>(
        &'a self,
        message: MessageRef,
        view: &'a NoticeView,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let url = self.message_url(message)?;
            let mut body = render_notice(view, !self.is_webhook());
            body["allowed_mentions"] = json!({"parse": []});
            if self.is_webhook()
                && let Some(obj) = body.as_object_mut()
            {
                obj.remove("components");
            }
            let route = self.route(&Method::PATCH, message.channel);
            self.call(Purpose::Existing, route, Method::PATCH, url, Some(&body))
                .await
                .map(drop)
        })
    }

    /// Bot: a real reply (`message_reference` with `fail_if_not_exists: false`, so a deleted
    /// original gives a plain message), with `nonce` = `key` as for `post`. Webhook: webhooks
    /// cannot reply, so the courier fetches the original through the webhook and posts a plain
    /// follow-up whose last line quotes the original's title and links to it (when Discord
    /// names its guild); if the original is gone, the follow-up goes without that line.
    fn reply<'a>(
        &'a self,
        to: MessageRef,
        note: ReplyNote<'a>,
        mention: &'a [Snowflake],
        key: &'a str,
    ) -> BoxFuture<'a, Result<MessageRef, DeliveryError>> {
        Box::pin(async move {
            let text = reply_text(&note);
            let quote = if self.is_webhook() {
                self.quote_original(to).await?
            } else {
                None
            };
            let quote_len = quote.as_ref().map_or(0, |q| q.chars().count() + 1);
            // Mentions take at most half the message; the text gets the rest.
            let (tags, roles) = mentions(mention, CONTENT_LIMIT / 2);
            let text = shorten(&text, CONTENT_LIMIT - quote_len - tags.chars().count() - 1);
            let mut content = if tags.is_empty() {
                text
            } else {
                format!("{tags} {text}")
            };
            if let Some(quote) = quote {
                content.push('\n');
                content.push_str(&quote);
            }
            let mut body = json!({
                "content": content,
                "allowed_mentions": allowed_mentions(&roles),
            });
            if !self.is_webhook() {
                body["message_reference"] = json!({
                    "message_id": to.message.0.to_string(),
                    "channel_id": to.channel.0.to_string(),
                    "fail_if_not_exists": false,
                });
                set_nonce(&mut body, key)?;
            }
            self.create(to.channel, &body)
                .await
                .map(|(message, _)| message)
        })
    }
}

fn parse_api(url: &str) -> Result<Url, DeliveryError> {
    Url::parse(url).map_err(|_| DeliveryError::Permanent {
        kind: "client",
        message: "DISCORD_API_BASE does not make a valid URL".into(),
    })
}

fn invalid_webhook() -> DeliveryError {
    DeliveryError::Permanent {
        kind: "client",
        message: "the webhook URL is not an http(s) URL".into(),
    }
}

/// Adds Discord's idempotency fields: `nonce` (at most 25 characters) and `enforce_nonce`.
fn set_nonce(body: &mut Value, key: &str) -> Result<(), DeliveryError> {
    if key.is_empty() || key.chars().count() > NONCE_LIMIT {
        return Err(DeliveryError::Permanent {
            kind: "client",
            message: format!(
                "delivery key {key:?} is not 1-{NONCE_LIMIT} characters, as a nonce must be"
            ),
        });
    }
    body["nonce"] = json!(key);
    body["enforce_nonce"] = json!(true);
    Ok(())
}

/// Where the message in a 2xx answer is.
fn message_ref(json: &Value) -> Option<MessageRef> {
    let id = |key: &str| json[key].as_str().and_then(|s| s.parse::<u64>().ok());
    Some(MessageRef {
        channel: Snowflake(id("channel_id")?),
        message: Snowflake(id("id")?),
    })
}

/// Whether the message Discord answered a post with shows what the post sent: the same embeds
/// (title, description, colour, fields, footer) and the same buttons (custom ids, disabled).
/// A post retried with the nonce of an attempt whose answer was lost gets the message that
/// attempt created, which may show an older state of the notice. Discord echoes these fields
/// as sent and adds others (embed `type`, component ids), so only these are compared.
fn same_rendering(sent: &Value, answered: &Value) -> bool {
    fn embeds(message: &Value) -> Vec<Value> {
        message["embeds"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let fields: Vec<Value> = e["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| json!([f["name"], f["value"]]))
                    .collect();
                json!([
                    e["title"],
                    e["description"],
                    e["color"],
                    fields,
                    e["footer"]["text"]
                ])
            })
            .collect()
    }
    fn buttons(message: &Value) -> Vec<(Value, bool)> {
        message["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .map(|c| {
                (
                    c["custom_id"].clone(),
                    c["disabled"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }
    embeds(sent) == embeds(answered) && buttons(sent) == buttons(answered)
}

/// The role mention tokens (`<@&id> <@&id>`) that fit in `budget` characters, each role once
/// and at most [`ROLE_MENTION_LIMIT`], and the roles they name.
fn mentions(roles: &[Snowflake], budget: usize) -> (String, Vec<Snowflake>) {
    let mut content = String::new();
    let mut named = Vec::new();
    for role in roles {
        if named.contains(role) {
            continue;
        }
        let token = format!("<@&{}>", role.0);
        let needed = token.len() + usize::from(!content.is_empty());
        if named.len() == ROLE_MENTION_LIMIT || content.len() + needed > budget {
            break;
        }
        if !content.is_empty() {
            content.push(' ');
        }
        content.push_str(&token);
        named.push(*role);
    }
    (content, named)
}

/// Pings exactly the roles named, nobody else (no `@everyone` hidden in a reason).
fn allowed_mentions(roles: &[Snowflake]) -> Value {
    let roles: Vec<String> = roles.iter().map(|r| r.0.to_string()).collect();
    json!({"parse": [], "roles": roles})
}

/// "HTTP 403: Missing Access (50001)", with the fields an invalid form names; never the URL.
fn describe(status: StatusCode, json: &Value) -> String {
    let code = status.as_u16();
    let text = match (json["message"].as_str(), json["code"].as_u64()) {
        (Some(message), Some(discord_code)) if discord_code != 0 => {
            let mut text = format!("{message} ({discord_code})");
            if discord_code == INVALID_FORM_BODY {
                let mut problems = Vec::new();
                form_errors(&json["errors"], "", &mut problems);
                if !problems.is_empty() {
                    text.push_str(": ");
                    text.push_str(&problems.into_iter().take(3).collect::<Vec<_>>().join("; "));
                }
            }
            text
        }
        // Discord's generic errors repeat the status: "500: Internal Server Error".
        (Some(message), _) => message
            .strip_prefix(&format!("{code}: "))
            .unwrap_or(message)
            .to_string(),
        (None, _) => status.canonical_reason().unwrap_or("error").to_string(),
    };
    format!(
        "HTTP {code}: {}",
        shorten(&text.replace('\n', " "), ERROR_TEXT_LIMIT)
    )
}

/// Flattens Discord's nested form errors into "path: message" lines.
fn form_errors(errors: &Value, path: &str, out: &mut Vec<String>) {
    let Some(obj) = errors.as_object() else {
        return;
    };
    for (key, value) in obj {
        if key == "_errors" {
            for error in value.as_array().into_iter().flatten() {
                let message = error["message"].as_str().unwrap_or("invalid");
                let at = if path.is_empty() { "body" } else { path };
                out.push(format!("{at}: {message}"));
            }
        } else {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            form_errors(value, &path, out);
        }
    }
}

/// How long a 429 (or a 503 with `Retry-After`) says to wait, and whether the limit is global.
/// The body's `retry_after` is fractional seconds; without a JSON body (Cloudflare answers some
/// 429s itself) the wait comes from `X-RateLimit-Reset-After` (fractional), then `Retry-After`
/// (whole seconds, rounded up). Capped at [`MAX_RETRY_AFTER`], like every wait patchbay honours.
fn rate_limit_wait(body: &Value, headers: &HeaderMap) -> (Option<Duration>, bool) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let seconds = |s: f64| {
        if s.is_nan() || s < 0.0 {
            // Negative or NaN: not a wait.
            None
        } else if s >= MAX_RETRY_AFTER.as_secs_f64() {
            Some(MAX_RETRY_AFTER)
        } else {
            Duration::try_from_secs_f64(s).ok()
        }
    };
    let after = body["retry_after"]
        .as_f64()
        .and_then(seconds)
        .or_else(|| {
            header("x-ratelimit-reset-after")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(seconds)
        })
        .or_else(|| {
            headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()))
        });
    let global = body["global"].as_bool() == Some(true)
        || header("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || header("x-ratelimit-scope").is_some_and(|v| v.eq_ignore_ascii_case("global"));
    (after, global)
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// What a reply under an alert message says: "✅ Resolved after 12m.", "⏰ Still down after 1h:
/// payments-api. Acknowledge to stop reminders.", "✅ Stable again.".
pub fn reply_text(note: &ReplyNote<'_>) -> String {
    match note.kind {
        ReplyKind::Resolved => {
            format!("✅ Resolved after {}.", duration::human(note.lasted()))
        }
        ReplyKind::Reminder => format!(
            "⏰ Still {} after {}: {}. Acknowledge to stop reminders.",
            if note.view.severity == Severity::Critical {
                "down"
            } else {
                "degraded"
            },
            duration::human(note.lasted()),
            name_list(
                &note
                    .open()
                    .into_iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>(),
                1500
            )
        ),
        ReplyKind::StableAgain => "✅ Stable again.".into(),
    }
}

/// The body of an alert message: `embeds` (one) and `components` (the Acknowledge, Silence 1h
/// and Re-check now buttons when `buttons` and the notice is not resolved; an empty list
/// otherwise, which removes buttons on an edit). Always within Discord's embed limits: a
/// description too long for every incident ends with "… and N more".
pub fn render_notice(view: &NoticeView, buttons: bool) -> Value {
    let components = if buttons && view.status != NoticeStatus::Resolved {
        vec![action_row(view)]
    } else {
        Vec::new()
    };
    json!({"embeds": [notice_embed(view)], "components": components})
}

fn notice_embed(view: &NoticeView) -> Value {
    let title = shorten(&title(view), TITLE_LIMIT);
    let fields = fields(view);
    let footer = format!("incident #{}", view.notice);
    let used = title.chars().count()
        + footer.chars().count()
        + fields
            .iter()
            .map(|(name, value)| name.chars().count() + value.chars().count())
            .sum::<usize>();
    let budget = DESCRIPTION_LIMIT.min(EMBED_TOTAL_LIMIT.saturating_sub(used));
    let entries: Vec<String> = view.incidents.iter().map(incident_entry).collect();
    let mut embed = json!({
        "title": title,
        "description": fit_entries(&entries, budget),
        "color": colour(view),
        "footer": {"text": footer},
        "timestamp": view.opened_at.to_rfc3339(),
    });
    if !fields.is_empty() {
        embed["fields"] = Value::Array(
            fields
                .into_iter()
                .map(|(name, value)| json!({"name": name, "value": value, "inline": true}))
                .collect(),
        );
    }
    embed
}

fn colour(view: &NoticeView) -> u32 {
    match (view.status, view.severity) {
        (NoticeStatus::Resolved, _) => GREEN,
        (_, Severity::Critical) => RED,
        (_, Severity::Warning) => ORANGE,
    }
}

/// "🔴 payments-api is DOWN", "🔴 5 integrations down", "✅ payments-api resolved".
fn title(view: &NoticeView) -> String {
    let open: Vec<&IncidentLine> = view
        .incidents
        .iter()
        .filter(|i| i.resolved_at.is_none())
        .collect();
    let resolved = view.status == NoticeStatus::Resolved || open.is_empty();
    match view.incidents.as_slice() {
        [] => format!("Alert #{}", view.notice),
        [one] if resolved => format!("✅ {} resolved", shorten(&one.integration, 200)),
        [one] => format!(
            "{} {} is {}",
            marker(one.state),
            shorten(&one.integration, 200),
            one.state
        ),
        all if resolved => format!("✅ {} integrations resolved", all.len()),
        all => {
            let worst = [State::Down, State::Degraded]
                .into_iter()
                .find(|s| open.iter().any(|i| i.state == *s))
                .unwrap_or(open[0].state);
            let word = if open.iter().all(|i| i.state == State::Down) {
                "down".to_string()
            } else if open.iter().all(|i| i.state == State::Degraded) {
                "degraded".to_string()
            } else if open
                .iter()
                .all(|i| matches!(i.state, State::Down | State::Degraded))
            {
                "down or degraded".to_string()
            } else {
                "not up".to_string()
            };
            if open.len() < all.len() {
                format!(
                    "{} {} of {} integrations {word}",
                    marker(worst),
                    open.len(),
                    all.len()
                )
            } else {
                format!("{} {} integrations {word}", marker(worst), open.len())
            }
        }
    }
}

/// One incident's part of the description: one line, plus one for its dependents.
fn incident_entry(incident: &IncidentLine) -> String {
    let name = shorten(&one_line(&incident.integration), 100);
    let mut entry = if let Some(resolved_at) = incident.resolved_at {
        let lasted = (resolved_at - incident.since).to_std().unwrap_or_default();
        format!(
            "✅ **{name}** resolved <t:{}:R> after {}",
            resolved_at.timestamp(),
            duration::human(lasted)
        )
    } else {
        let mut line = format!("{} **{name}** {}", marker(incident.state), incident.state);
        let reason = one_line(&incident.reason);
        if !reason.is_empty() {
            line.push_str(&format!(": {}", shorten(&reason, 300)));
        }
        line.push_str(&format!(" · since <t:{}:R>", incident.since.timestamp()));
        if let Some(error) = incident.last_error.as_deref().map(one_line)
            && !error.is_empty()
        {
            line.push_str(&format!(" · last error: {}", shorten(&error, 200)));
        }
        if let Some(ms) = incident
            .latency_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
        {
            line.push_str(&format!(
                " · {}",
                duration::compact(Duration::from_secs_f64(ms / 1000.0))
            ));
        }
        line
    };
    if !incident.dependents.is_empty() {
        entry.push_str(&format!(
            "\n↳ Also down (depends on {name}): {}",
            name_list(&incident.dependents, 400)
        ));
    }
    entry
}

/// Newlines and tabs as spaces, so that one incident stays on its line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `a, b, c and 12 more`, within `budget` characters.
fn name_list(names: &[String], budget: usize) -> String {
    let mut out = String::new();
    for (index, name) in names.iter().enumerate() {
        let name = shorten(&one_line(name), 100);
        let left = names.len() - index;
        let separator = if out.is_empty() { "" } else { ", " };
        let rest_tail = if left > 1 {
            format!(" and {} more", left - 1)
        } else {
            String::new()
        };
        if out.chars().count() + separator.len() + name.chars().count() + rest_tail.len() > budget {
            return format!("{out} and {left} more");
        }
        out.push_str(separator);
        out.push_str(&name);
    }
    out
}

/// The entries, one per line, cut after a whole entry so that they fit in `limit` characters
/// with "… and N more" saying how many were left out.
fn fit_entries(entries: &[String], limit: usize) -> String {
    let len = |s: &str| s.chars().count();
    let all = entries.join("\n");
    if len(&all) <= limit {
        return all;
    }
    let mut out = String::new();
    let mut shown = 0;
    for (index, entry) in entries.iter().enumerate() {
        let separator = usize::from(index > 0);
        // Room must stay for the marker of everything after this entry.
        let tail = format!("… and {} more", entries.len() - index - 1);
        if len(&out) + separator + len(entry) + 1 + len(&tail) > limit {
            break;
        }
        if index > 0 {
            out.push('\n');
        }
        out.push_str(entry);
        shown += 1;
    }
    let tail = format!("… and {} more", entries.len() - shown);
    if out.is_empty() {
        shorten(&tail, limit)
    } else {
        format!("{out}\n{tail}")
    }
}

/// The embed's fields: who acknowledged, until when it is silenced, how long it lasted, and a
/// note when flapping. Each value is far below Discord's 1024 characters.
fn fields(view: &NoticeView) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if let Some(ack) = &view.acknowledged {
        fields.push((
            "Acknowledged by".to_string(),
            format!(
                "{} <t:{}:R>",
                super::render::actor(&ack.by),
                ack.at.timestamp()
            ),
        ));
    }
    if let Some(until) = view.silenced_until {
        fields.push((
            "Silenced until".to_string(),
            format!("<t:{}:f>", until.timestamp()),
        ));
    }
    if view.status == NoticeStatus::Resolved
        && let Some(after) = view.resolved_after
    {
        fields.push(("Resolved after".to_string(), duration::human(after)));
    }
    if view.flapping {
        fields.push((
            "Flapping".to_string(),
            "Changing state too often: each change is not notified until it settles.".to_string(),
        ));
    }
    debug_assert!(
        fields
            .iter()
            .all(|(_, v)| v.chars().count() <= FIELD_VALUE_LIMIT)
    );
    fields
}

/// Acknowledge (disabled once acknowledged), Silence 1h, Re-check now.
fn action_row(view: &NoticeView) -> Value {
    let notice = view.notice;
    json!({
        "type": 1,
        "components": [
            {
                "type": 2,
                "style": 3,
                "label": "Acknowledge",
                "custom_id": Press::AlertAck(notice).encode(),
                "disabled": view.status == NoticeStatus::Acknowledged,
            },
            {
                "type": 2,
                "style": 2,
                "label": "Silence 1h",
                "custom_id": Press::AlertSilence(notice).encode(),
            },
            {
                "type": 2,
                "style": 1,
                "label": "Re-check now",
                "custom_id": Press::AlertRecheck(notice).encode(),
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::model::notice::Acknowledgement;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn incident(n: i64, name: &str, state: State) -> IncidentLine {
        IncidentLine {
            incident: n,
            integration: name.to_string(),
            severity: Severity::Critical,
            state,
            reason: "status == 200 (got 503)".into(),
            since: at(0),
            last_error: Some("connection refused".into()),
            latency_ms: Some(240.0),
            resolved_at: None,
            dependents: Vec::new(),
        }
    }

    fn view(incidents: Vec<IncidentLine>) -> NoticeView {
        NoticeView {
            notice: 42,
            severity: Severity::Critical,
            status: NoticeStatus::Open,
            incidents,
            opened_at: at(0),
            resolved_after: None,
            acknowledged: None,
            silenced_until: None,
            flapping: false,
        }
    }

    fn embed(body: &Value) -> &Value {
        let embeds = body["embeds"].as_array().expect("embeds");
        assert_eq!(embeds.len(), 1);
        &embeds[0]
    }

    fn chars(v: &Value) -> usize {
        v.as_str().map_or(0, |s| s.chars().count())
    }

    /// Every limit Discord puts on an embed and a button row.
    fn assert_within_limits(body: &Value) {
        let e = embed(body);
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        assert!(chars(&e["title"]) <= 256, "title {}", chars(&e["title"]));
        assert!(
            chars(&e["description"]) <= 4096,
            "{}",
            chars(&e["description"])
        );
        assert!(chars(&e["footer"]["text"]) <= 2048);
        assert!(fields.len() <= 25);
        let mut total = chars(&e["title"]) + chars(&e["description"]) + chars(&e["footer"]["text"]);
        for f in &fields {
            assert!(chars(&f["name"]) <= 256 && chars(&f["name"]) > 0);
            assert!(chars(&f["value"]) <= 1024 && chars(&f["value"]) > 0);
            total += chars(&f["name"]) + chars(&f["value"]);
        }
        assert!(total <= 6000, "total {total}");
        for row in body["components"].as_array().unwrap() {
            for button in row["components"].as_array().unwrap() {
                assert!(chars(&button["custom_id"]) <= 100);
                assert!(chars(&button["label"]) <= 80);
            }
        }
    }

    #[test]
    fn single_incident_shows_its_line_colour_and_buttons() {
        let body = render_notice(&view(vec![incident(1, "payments-api", State::Down)]), true);
        let e = embed(&body);
        assert_eq!(e["title"], "🔴 payments-api is DOWN");
        assert_eq!(e["color"], RED);
        assert_eq!(e["footer"]["text"], "incident #42");
        assert_eq!(
            e["description"],
            "🔴 **payments-api** DOWN: status == 200 (got 503) · since <t:1700000000:R> · \
             last error: connection refused · 240ms"
        );
        assert!(e.get("fields").is_none());
        let buttons = body["components"][0]["components"].as_array().unwrap();
        let ids: Vec<&str> = buttons
            .iter()
            .map(|b| b["custom_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "pb:alert:ack:42",
                "pb:alert:silence:42",
                "pb:alert:recheck:42"
            ]
        );
        let styles: Vec<u64> = buttons
            .iter()
            .map(|b| b["style"].as_u64().unwrap())
            .collect();
        assert_eq!(styles, [3, 2, 1]);
        assert_eq!(buttons[0]["disabled"], false);
        assert_within_limits(&body);
    }

    #[test]
    fn colours_follow_severity_and_status() {
        let mut v = view(vec![incident(1, "a", State::Degraded)]);
        v.severity = Severity::Warning;
        assert_eq!(embed(&render_notice(&v, true))["color"], ORANGE);
        assert_eq!(embed(&render_notice(&v, true))["title"], "🟠 a is DEGRADED");
        v.status = NoticeStatus::Acknowledged;
        assert_eq!(embed(&render_notice(&v, true))["color"], ORANGE);
        v.severity = Severity::Critical;
        assert_eq!(embed(&render_notice(&v, true))["color"], RED);
        v.status = NoticeStatus::Resolved;
        assert_eq!(embed(&render_notice(&v, true))["color"], GREEN);
    }

    #[test]
    fn acknowledged_disables_the_button_and_says_who() {
        let mut v = view(vec![incident(1, "a", State::Down)]);
        v.status = NoticeStatus::Acknowledged;
        v.acknowledged = Some(Acknowledgement {
            by: crate::model::Actor::Discord {
                user: Snowflake(7),
                name: "ops".into(),
            },
            at: at(60),
        });
        v.silenced_until = Some(at(3600));
        v.flapping = true;
        let body = render_notice(&v, true);
        assert_eq!(body["components"][0]["components"][0]["disabled"], true);
        let fields = embed(&body)["fields"].as_array().unwrap().clone();
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
            .collect();
        assert_eq!(pairs[0], ("Acknowledged by", "<@7> <t:1700000060:R>"));
        assert_eq!(pairs[1], ("Silenced until", "<t:1700003600:f>"));
        assert_eq!(pairs[2].0, "Flapping");
        assert_eq!(pairs.len(), 3);
    }

    #[test]
    fn resolved_notices_have_no_buttons_and_say_how_long() {
        let mut one = incident(1, "payments-api", State::Up);
        one.resolved_at = Some(at(65 * 60));
        let mut v = view(vec![one]);
        v.status = NoticeStatus::Resolved;
        v.resolved_after = Some(Duration::from_secs(65 * 60 + 7));
        let body = render_notice(&v, true);
        assert_eq!(body["components"], json!([]));
        let e = embed(&body);
        assert_eq!(e["title"], "✅ payments-api resolved");
        assert_eq!(e["fields"][0]["name"], "Resolved after");
        assert_eq!(e["fields"][0]["value"], "1h 5m");
        assert_eq!(
            e["description"],
            "✅ **payments-api** resolved <t:1700003900:R> after 1h 5m"
        );
        // Buttons are never rendered when the caller cannot send them.
        let open = view(vec![incident(1, "a", State::Down)]);
        assert_eq!(render_notice(&open, false)["components"], json!([]));
    }

    #[test]
    fn groups_count_what_is_still_open() {
        let mut incidents: Vec<IncidentLine> = (0..5)
            .map(|i| incident(i, &format!("svc-{i}"), State::Down))
            .collect();
        assert_eq!(
            embed(&render_notice(&view(incidents.clone()), true))["title"],
            "🔴 5 integrations down"
        );
        incidents[0].resolved_at = Some(at(60));
        incidents[1].state = State::Degraded;
        assert_eq!(
            embed(&render_notice(&view(incidents.clone()), true))["title"],
            "🔴 4 of 5 integrations down or degraded"
        );
        let mut v = view(incidents);
        v.status = NoticeStatus::Resolved;
        assert_eq!(
            embed(&render_notice(&v, true))["title"],
            "✅ 5 integrations resolved"
        );
    }

    #[test]
    fn dependents_are_listed_under_their_incident() {
        let mut one = incident(1, "db", State::Down);
        one.dependents = vec!["api".into(), "web".into()];
        let body = render_notice(&view(vec![one]), true);
        let description = embed(&body)["description"].as_str().unwrap().to_string();
        assert!(
            description.ends_with("\n↳ Also down (depends on db): api, web"),
            "{description}"
        );
        let many: Vec<String> = (0..500).map(|i| format!("dependent-{i}")).collect();
        let listed = name_list(&many, 100);
        assert!(listed.chars().count() <= 100, "{listed}");
        assert!(listed.ends_with(" more"), "{listed}");
    }

    #[test]
    fn a_thousand_incidents_with_long_text_stay_within_every_limit() {
        let long = "condition failed because the upstream said something very long ".repeat(40);
        let incidents: Vec<IncidentLine> = (0..1000)
            .map(|i| {
                let mut line = incident(
                    i,
                    &format!("integration-{i}-{}", "x".repeat(300)),
                    State::Down,
                );
                line.reason = long.clone();
                line.last_error = Some(long.clone());
                line.dependents = (0..50)
                    .map(|d| format!("dep-{d}-{}", "y".repeat(80)))
                    .collect();
                line
            })
            .collect();
        let mut v = view(incidents);
        v.status = NoticeStatus::Acknowledged;
        v.acknowledged = Some(Acknowledgement {
            by: crate::model::Actor::Discord {
                user: Snowflake(u64::MAX),
                name: "n".repeat(5000),
            },
            at: at(1),
        });
        v.silenced_until = Some(at(2));
        v.flapping = true;
        let body = render_notice(&v, true);
        assert_within_limits(&body);
        let description = embed(&body)["description"].as_str().unwrap();
        let last = description.lines().last().unwrap();
        let left: usize = last
            .strip_prefix("… and ")
            .and_then(|l| l.strip_suffix(" more"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no marker: {last:?}"));
        let shown = description.lines().filter(|l| l.starts_with("🔴")).count();
        assert!(shown >= 1, "{description}");
        assert_eq!(shown + left, 1000);
        // Every line shown is whole: long texts were shortened at a word, with "…".
        assert!(description.contains("…"));

        // One incident with a very long name and reason keeps the title and line in bounds.
        let mut single = incident(1, &"n".repeat(1000), State::Down);
        single.reason = "r".repeat(10_000);
        let body = render_notice(&view(vec![single]), true);
        assert_within_limits(&body);
        assert!(embed(&body)["title"].as_str().unwrap().ends_with("is DOWN"));
    }

    #[test]
    fn fitting_cuts_whole_entries_and_counts_the_rest() {
        let entries: Vec<String> = (0..10)
            .map(|i| format!("entry {i} {}", "z".repeat(40)))
            .collect();
        let fitted = fit_entries(&entries, 200);
        assert!(fitted.chars().count() <= 200, "{fitted}");
        let lines: Vec<&str> = fitted.lines().collect();
        assert_eq!(
            lines.last().unwrap(),
            &format!("… and {} more", 10 - (lines.len() - 1))
        );
        assert!(
            lines[..lines.len() - 1]
                .iter()
                .all(|l| l.starts_with("entry "))
        );
        assert_eq!(fit_entries(&entries[..2], 4096), entries[..2].join("\n"));
    }

    #[test]
    fn mentions_fit_dedupe_and_cap() {
        let roles: Vec<Snowflake> = (0..300)
            .map(|i| Snowflake(300_000_000_000_000_000 + i))
            .collect();
        let (content, named) = mentions(&roles, CONTENT_LIMIT);
        assert!(content.chars().count() <= CONTENT_LIMIT);
        assert!(named.len() <= ROLE_MENTION_LIMIT);
        assert_eq!(content.matches("<@&").count(), named.len());
        let (content, named) = mentions(&[Snowflake(5), Snowflake(5), Snowflake(6)], 100);
        assert_eq!(content, "<@&5> <@&6>");
        assert_eq!(named, [Snowflake(5), Snowflake(6)]);
        assert_eq!(
            allowed_mentions(&named),
            json!({"parse": [], "roles": ["5", "6"]})
        );
    }

    #[test]
    fn rate_limits_are_read_from_the_body_then_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        headers.insert("x-ratelimit-reset-after", HeaderValue::from_static("1.337"));
        let body =
            json!({"message": "You are being rate limited.", "retry_after": 0.25, "global": false});
        assert_eq!(
            rate_limit_wait(&body, &headers),
            (Some(Duration::from_millis(250)), false)
        );
        // No JSON body (Cloudflare): the precise header, then the whole seconds.
        assert_eq!(
            rate_limit_wait(&Value::Null, &headers),
            (Some(Duration::from_millis(1337)), false)
        );
        headers.remove("x-ratelimit-reset-after");
        headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
        assert_eq!(
            rate_limit_wait(&Value::Null, &headers),
            (Some(Duration::from_secs(2)), true)
        );
        // Absurd values are capped, nonsense is ignored.
        let huge = json!({"retry_after": 1e300, "global": true});
        assert_eq!(
            rate_limit_wait(&huge, &HeaderMap::new()),
            (Some(MAX_RETRY_AFTER), true)
        );
        let negative = json!({"retry_after": -1.0});
        assert_eq!(rate_limit_wait(&negative, &HeaderMap::new()), (None, false));
        let text = json!({"retry_after": "soon"});
        assert_eq!(rate_limit_wait(&text, &HeaderMap::new()), (None, false));
    }

    #[test]
    fn discord_errors_are_described_with_code_and_fields() {
        let forbidden = json!({"message": "Missing Access", "code": 50001});
        assert_eq!(
            describe(StatusCode::FORBIDDEN, &forbidden),
            "HTTP 403: Missing Access (50001)"
        );
        let server = json!({"message": "500: Internal Server Error", "code": 0});
        assert_eq!(
            describe(StatusCode::INTERNAL_SERVER_ERROR, &server),
            "HTTP 500: Internal Server Error"
        );
        assert_eq!(
            describe(StatusCode::BAD_GATEWAY, &Value::Null),
            "HTTP 502: Bad Gateway"
        );
        let form = json!({"message": "Invalid Form Body", "code": 50035, "errors": {
            "embeds": {"0": {"description": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."}
            ]}}}
        }});
        assert_eq!(
            describe(StatusCode::BAD_REQUEST, &form),
            "HTTP 400: Invalid Form Body (50035): embeds.0.description: Must be 4096 or fewer in \
             length."
        );
    }

    #[test]
    fn debug_and_scrubbing_hide_the_secrets() {
        let base = Url::parse("https://discord.com").unwrap();
        let bot = DiscordCourier::bot(&base, &Secret::new("bot-token-s3cret"));
        assert!(!format!("{bot:?}").contains("s3cret"));
        assert_eq!(bot.scrub("saw bot-token-s3cret here"), "saw *** here");
        let hook = DiscordCourier::webhook(&Secret::new(
            "https://discord.com/api/webhooks/123/hook-s3cret",
        ));
        let debug = format!("{hook:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("webhooks"),
            "{debug}"
        );
        assert_eq!(
            hook.scrub("at /webhooks/123/hook-s3cret/messages"),
            "at /webhooks/123/***/messages"
        );
        assert!(hook.is_webhook() && !bot.is_webhook());
    }

    #[test]
    fn webhook_urls_are_built_without_losing_the_token_path() {
        let hook =
            DiscordCourier::webhook(&Secret::new("https://discord.com/api/webhooks/123/tok"));
        let created = hook.create_url(Snowflake(1)).unwrap();
        assert_eq!(
            created.as_str(),
            "https://discord.com/api/webhooks/123/tok?wait=true"
        );
        let message = hook
            .message_url(MessageRef {
                channel: Snowflake(1),
                message: Snowflake(9),
            })
            .unwrap();
        assert_eq!(
            message.as_str(),
            "https://discord.com/api/webhooks/123/tok/messages/9"
        );
        let bad = DiscordCourier::webhook(&Secret::new("not a url"));
        assert_eq!(bad.create_url(Snowflake(1)).unwrap_err(), invalid_webhook());
        let bot = DiscordCourier::bot(
            &Url::parse("http://127.0.0.1:9/").unwrap(),
            &Secret::new("t"),
        );
        assert_eq!(
            bot.create_url(Snowflake(5)).unwrap().as_str(),
            "http://127.0.0.1:9/api/v10/channels/5/messages"
        );
    }
}
