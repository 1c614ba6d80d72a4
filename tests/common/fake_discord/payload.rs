//! The JSON the fake sends, built to deserialize with serenity's model types.

use serde_json::{Value, json};

use super::*;

/// The guild's members: user id and roles (the bot is a member too).
pub const MEMBERS: [(u64, &[u64]); 5] = [
    (OWNER_ID, &[]),
    (ADMIN_USER_ID, &[ADMIN_ROLE]),
    (OPS_USER_ID, &[OPS_ROLE]),
    (NOBODY_USER_ID, &[]),
    (BOT_USER_ID, &[BOT_ROLE]),
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
        "roles": roles.iter().map(std::string::ToString::to_string).collect::<Vec<_>>(),
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
        managed_role(BOT_ROLE, "patchbay", BOT_PERMISSIONS, 3),
    ]
}

/// A role Discord manages (a bot's own role).
fn managed_role(id: u64, name: &str, permissions: u64, position: u64) -> Value {
    let mut r = role(id, name, permissions, position);
    r["managed"] = json!(true);
    r["tags"] = json!({"bot_id": BOT_USER_ID.to_string()});
    r
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
        "max_members": 500_000,
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

pub fn modal_interaction(
    id: u64,
    token: &str,
    channel_id: u64,
    custom_id: &str,
    fields: &[(&str, &str)],
    member_of: FakeMember,
) -> Value {
    let mut i = base(id, token, 5, channel_id, Place::Guild(member_of));
    let rows: Vec<Value> = fields
        .iter()
        .map(|(field, value)| {
            json!({"type": 1, "components": [
                {"type": 4, "custom_id": field, "value": value}
            ]})
        })
        .collect();
    i["data"] = json!({"custom_id": custom_id, "components": rows});
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
