//! The spec checks: what Discord would refuse in what the bot sends (commands and their options,
//! message bodies, embeds, components, allowed mentions, replies, webhook identities, flags,
//! autocomplete choices, modals), each problem becoming a violation; and whether serenity parses
//! the dispatches the fake sends.

use serde_json::{Value, json};

use super::*;

pub(super) fn check_command(c: &Value, problems: &mut Vec<String>) {
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

/// Discord's limits for a message body (create or edit). `create` requires some content.
pub(super) fn check_message(data: &Value, interaction: bool, create: bool) -> Vec<String> {
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
                        problems.push(format!("allowed_mentions.parse lists {t:?} twice"));
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
                    problems.push(format!("allowed_mentions.{key} lists {s} twice"));
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
pub(super) fn check_reference(
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
pub(super) fn check_webhook_identity(body: &Value, problems: &mut Vec<String>) {
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
pub(super) fn is_snowflake(s: &str) -> bool {
    s == "0"
        || (!s.is_empty()
            && !s.starts_with('0')
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u64>().is_ok())
}

/// A query parameter's value, decoded.
pub(super) fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A boolean query parameter (`wait`, `with_components`), false when absent. Discord reads
/// `true`/`false` (and `1`/`0`, in any case); anything else is a form error.
pub(super) fn query_flag(query: Option<&str>, key: &str, problems: &mut Vec<String>) -> bool {
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

pub(super) fn check_flags(data: &Value, interaction: bool, problems: &mut Vec<String>) {
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
                            problems.push(format!("{at}: button style {style} needs a custom_id"));
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

pub(super) fn check_choices(data: &Value, problems: &mut Vec<String>) {
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
                problems.push(format!("choice {i}: string value over 100 characters"));
            }
            Value::String(_) | Value::Number(_) => {}
            other => problems.push(format!(
                "choice {i}: value must be a string or number, got {other}"
            )),
        }
    }
}

pub(super) fn check_modal(data: &Value, problems: &mut Vec<String>) {
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

/// Whether serenity parses a dispatch into its typed event (not `Event::Unknown`).
pub(super) fn serenity_parses(t: &str, d: &Value) -> Result<(), String> {
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
