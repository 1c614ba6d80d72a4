//! The one attempt of a request to Discord and what its answer means: the URLs and routes of
//! each call, the call through the `discord` upstream, the buckets Discord names, and Discord's
//! answer turned into a [`DeliveryError`] the dispatcher can act on.

use super::*;

impl DiscordCourier {
    /// The URL that creates a message: the channel's messages as the bot, the webhook with
    /// `?wait=true` (so Discord answers with the message and its id) otherwise.
    pub(super) fn create_url(&self, channel: Snowflake) -> Result<Url, DeliveryError> {
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
    pub(super) fn message_url(&self, message: MessageRef) -> Result<Url, DeliveryError> {
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

    pub(super) fn webhook_url(&self) -> Result<Url, DeliveryError> {
        match &self.target {
            Target::Webhook { url: Some(url), .. } => Ok(url.clone()),
            _ => Err(invalid_webhook()),
        }
    }

    /// Makes the one attempt of a call through the `discord` upstream: a route whose bucket a
    /// 429 holds, or an open breaker, keeps it from being sent; otherwise Discord's answer,
    /// whatever its status, is read here. The bucket Discord names is learned, and anything
    /// but a 2xx becomes a [`DeliveryError`]. Returns the body of a 2xx answer.
    pub(super) async fn call(
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
            probe: false,
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
    pub(super) fn bucket_of(&self, route: Route) -> String {
        let learned = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = learned.get(route.name).map_or(route.name, String::as_str);
        format!("{bucket}:{}", route.major)
    }

    pub(super) fn learn_bucket(&self, route: Route, bucket: &str) {
        let mut learned = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if learned.get(route.name).is_none_or(|known| known != bucket) {
            learned.insert(route.name, bucket.to_string());
        }
    }

    /// A call that got no answer as a delivery error. One the upstream kept back (a 429's hold,
    /// the open breaker) was not sent and is [`DeliveryError::Held`]; a timeout, a connection
    /// failure or an answer cut short is worth another try, ambiguous when a non-idempotent
    /// request may have taken effect (see [`DeliveryError::Retry`]); a request that could not
    /// be built would fail the same way again.
    pub(super) fn unanswered(
        &self,
        unanswered: Unanswered,
        idempotency: Idempotency,
    ) -> DeliveryError {
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
    pub(super) fn rejection(
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
    pub(super) fn scrub(&self, text: &str) -> String {
        let secrets: Vec<&str> = match &self.target {
            Target::Bot { token, .. } => vec![token.expose()],
            Target::Webhook { url, secret } => {
                let mut secrets = vec![secret.expose()];
                // The token is the URL's last path segment.
                if let Some(token) = url
                    .as_ref()
                    .and_then(reqwest::Url::path_segments)
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
    pub(super) fn route(&self, method: &Method, channel: Snowflake) -> Route {
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
    pub(super) async fn create(
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
    pub(super) async fn quote_original(
        &self,
        to: MessageRef,
    ) -> Result<Option<String>, DeliveryError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
