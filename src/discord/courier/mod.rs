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
//! The courier is three files: this one holds the courier and how each notification becomes a
//! request (`post`, `edit`, `reply`); `transport.rs` makes the one attempt of a request and
//! reads Discord's answer; `message.rs` renders a notice into an embed and buttons
//! ([`render_notice`]) and a reply into its text ([`reply_text`]), within Discord's limits,
//! testable on their own.
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

mod message;
mod transport;

pub use message::{render_notice, reply_text};

/// The upstream's name in logs and errors.
pub const UPSTREAM: &str = "discord";

/// The `User-Agent` Discord asks bots to send.
const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/patchbay, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

/// Discord's limit on a message's content, in characters.
const CONTENT_LIMIT: usize = 2000;
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
        wait_out_holds: false,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
