//! The REST side: one handler records every request, lets the rate limiter and injected faults
//! (`faults.rs`) answer first, and routes the rest under `/api/v10`; the request log and the
//! route prefixes [`FakeDiscord::inject`] and [`FakeDiscord::attempts`] take.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::checks::check_message;
use super::commands::commands_route;
use super::faults::{cut_response, rate_limited, server_error};
use super::interactions::{callback, webhook_route};
use super::messages::{
    create_channel_message, edit_message, incoming_webhook_route, known_channel,
};
use super::*;

impl FakeDiscord {
    /// The requests with `method` whose path is `path` or lies under it, in order, each with
    /// when it arrived and the status answered: what a test counts retries and their spacing
    /// with. `path` is relative to `/api/v10` (`/channels/{id}/messages`); a full URL or a path
    /// starting with `/api/v10` is accepted too, and a query string is ignored.
    pub fn attempts(&self, method: &str, path: &str) -> Vec<Recorded> {
        attempts(&self.inner.lock(), method, &route_prefix(path))
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
}

pub(super) async fn rest_handler(
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
    let files = file_parts(&content_type, &body);
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
            files,
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

pub(super) type RestReply = (StatusCode, Option<Value>);

pub(super) fn ok(value: Value) -> RestReply {
    (StatusCode::OK, Some(value))
}

pub(super) fn error_json(code: u64, message: &str) -> Value {
    json!({"message": message, "code": code})
}

pub(super) fn not_found(code: u64, message: &str) -> RestReply {
    (StatusCode::NOT_FOUND, Some(error_json(code, message)))
}

pub(super) fn invalid_form(st: &mut St, what: &str, problems: Vec<String>) -> Option<RestReply> {
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
    let tokenless = matches!(segments.first(), Some(&"interactions" | &"webhooks"));
    if !tokenless && !segments.is_empty() {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if st.token_reset {
            return (
                StatusCode::UNAUTHORIZED,
                Some(error_json(0, "401: Unauthorized")),
            );
        }
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
        ("GET", ["users", "@me", "guilds"]) => ok(json!([{
            "id": GUILD_ID.to_string(),
            "name": "Fake Guild",
            "icon": null,
            "banner": null,
            "owner": false,
            "permissions": BOT_PERMISSIONS.to_string(),
            "features": [],
        }])),
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
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
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
            if st.bot_denied(channel, 2048) {
                return (
                    StatusCode::FORBIDDEN,
                    Some(error_json(50013, "Missing Permissions")),
                );
            }
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
            Ok(id) if st.guild_channels.contains(&id) => {
                let mut channel = payload::text_channel(id);
                if let Some(overwrites) = st.overwrites.get(&id) {
                    channel["permission_overwrites"] = json!(overwrites);
                }
                ok(channel)
            }
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

impl St {
    /// Whether an overwrite in `channel` denies the bot's role any of `bits`.
    pub(super) fn bot_denied(&self, channel: u64, bits: u64) -> bool {
        self.overwrites.get(&channel).is_some_and(|all| {
            all.iter().any(|o| {
                snowflake(&o["id"]) == Some(BOT_ROLE)
                    && o["deny"]
                        .as_str()
                        .and_then(|d| d.parse::<u64>().ok())
                        .is_some_and(|d| d & bits != 0)
            })
        })
    }
}

pub(super) fn unserved(st: &mut St, method: &str, path: &str) -> RestReply {
    st.violation(format!("unserved route: {method} {path}"));
    not_found(0, "404: Not Found")
}

pub(super) fn attempts(st: &St, method: &str, prefix: &str) -> Vec<Recorded> {
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
pub(super) fn route_prefix(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let path = match path.find("/api/v10") {
        Some(at) => &path[at..],
        None => path,
    };
    api_route(path).trim_end_matches('/').to_string()
}

/// The part of a request path after `/api/v10`.
pub(super) fn api_route(path: &str) -> &str {
    path.strip_prefix("/api/v10").unwrap_or(path)
}

/// Whether `route` is `prefix` or lies under it, segment by segment: `/channels/1/messages`
/// covers `/channels/1/messages/2` but not `/channels/12/messages`.
pub(super) fn route_matches(prefix: &str, route: &str) -> bool {
    route == prefix
        || route
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The boundary delimiter (`--` and the boundary) of a multipart content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| format!("--{}", b.trim_matches('"')))
}

/// The parts of a multipart body: each part's head (as text) and content (as bytes, without
/// the line break before the next delimiter).
fn parts<'a>(delimiter: &str, body: &'a [u8]) -> Vec<(String, &'a [u8])> {
    let delimiter = delimiter.as_bytes();
    let mut starts = Vec::new();
    let mut at = 0;
    while let Some(found) = body[at..]
        .windows(delimiter.len())
        .position(|w| w == delimiter)
    {
        starts.push(at + found);
        at += found + delimiter.len();
    }
    starts
        .windows(2)
        .filter_map(|pair| {
            let part = &body[pair[0] + delimiter.len()..pair[1]];
            let split = part.windows(4).position(|w| w == b"\r\n\r\n")?;
            let content = &part[split + 4..];
            let content = content.strip_suffix(b"\r\n").unwrap_or(content);
            Some((
                String::from_utf8_lossy(&part[..split]).into_owned(),
                content,
            ))
        })
        .collect()
}

/// The value of `key="..."` in a part's head.
fn disposition<'a>(head: &'a str, key: &str) -> Option<&'a str> {
    let start = head.find(&format!("{key}=\""))? + key.len() + 2;
    let len = head[start..].find('"')?;
    Some(&head[start..start + len])
}

/// The file parts (those with a `filename`) of a multipart body; none for a JSON body.
fn file_parts(content_type: &str, body: &[u8]) -> Vec<FilePart> {
    let Some(delimiter) = boundary(content_type) else {
        return Vec::new();
    };
    parts(&delimiter, body)
        .into_iter()
        .filter_map(|(head, content)| {
            Some(FilePart {
                field: disposition(&head, "name")?.to_string(),
                filename: disposition(&head, "filename")?.to_string(),
                content_type: head.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case("content-type")
                        .then(|| value.trim().to_string())
                }),
                bytes: content.to_vec(),
            })
        })
        .collect()
}

/// Parses a JSON body, or the `payload_json` part of a multipart body.
fn parse_body(content_type: &str, body: &[u8]) -> Result<Option<Value>, String> {
    if body.is_empty() {
        return Ok(None);
    }
    if let Some(delimiter) = boundary(content_type) {
        return parts(&delimiter, body)
            .into_iter()
            .find(|(head, _)| disposition(head, "name") == Some("payload_json"))
            .map(|(_, content)| serde_json::from_slice(content).map_err(|e| e.to_string()))
            .transpose();
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| e.to_string())
}
