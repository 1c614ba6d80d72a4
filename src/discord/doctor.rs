//! What patchbay needs from Discord, and whether it has it: the permissions the invite asks for
//! (`patchbay invite`), and the checks of `patchbay check --online`, which `patchbay run` also
//! makes at start and logs as warnings: the token is valid, the bot is in each configured
//! guild, each configured channel exists and the bot may post embeds there, each configured
//! role exists.
//!
//! Everything here is read with REST calls (no gateway), so it works from the CLI.

use std::collections::{BTreeSet, HashMap};

use poise::serenity_prelude as serenity;
use serenity::{Permissions, StatusCode};

use crate::config::ActionRole;
use crate::config::Config;
use crate::model::{Problem, Snowflake};

/// The permissions patchbay's features use, each with what it is for: the invite asks for
/// exactly these, and commands.md explains them from this list.
pub const PERMISSIONS: [(Permissions, &str, &str); 5] = [
    (
        Permissions::VIEW_CHANNEL,
        "View Channel",
        "see the channels it posts alerts, approval requests and audit lines in",
    ),
    (
        Permissions::SEND_MESSAGES,
        "Send Messages",
        "post alerts, approval requests and audit lines",
    ),
    (
        Permissions::EMBED_LINKS,
        "Embed Links",
        "alerts and /status answers are embeds",
    ),
    (
        Permissions::ATTACH_FILES,
        "Attach Files",
        "status charts and long action results are attached as files",
    ),
    (
        Permissions::READ_MESSAGE_HISTORY,
        "Read Message History",
        "read back its own alert messages to edit them after a restart",
    ),
];

/// What the bot must hold in every channel it posts in (the first three of [`PERMISSIONS`]).
const TO_POST: [Permissions; 3] = [
    Permissions::VIEW_CHANNEL,
    Permissions::SEND_MESSAGES,
    Permissions::EMBED_LINKS,
];

/// The permission bits of the invite: every one of [`PERMISSIONS`].
pub fn invite_permissions() -> Permissions {
    PERMISSIONS
        .iter()
        .fold(Permissions::empty(), |all, (bit, _, _)| all | *bit)
}

/// The OAuth2 URL that adds the application's bot to a server with the scopes `bot` and
/// `applications.commands` and exactly [`invite_permissions`].
pub fn invite_url(application: u64) -> String {
    format!(
        "https://discord.com/oauth2/authorize?client_id={application}&scope=bot+applications.commands&permissions={}",
        invite_permissions().bits()
    )
}

/// The application id of `config`'s token (asked of Discord), for the invite.
pub async fn application_id(config: &Config) -> anyhow::Result<u64> {
    let token = config.bot.token.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "DISCORD_TOKEN is not set: set it in the environment or .env, or pass --client-id \
             (the application id on the Developer Portal's General Information page)"
        )
    })?;
    let http = super::http(config, token.expose());
    let application = http
        .get_current_application_info()
        .await
        .map_err(|err| anyhow::anyhow!("could not read the application from Discord: {err}"))?;
    Ok(application.id.get())
}

/// `patchbay check --online`'s Discord part: every problem found, one per key and id. Without
/// `DISCORD_TOKEN` there is nothing to check (the bot runs headless) and nothing is returned.
pub async fn check(config: &Config) -> Vec<Problem> {
    let Some(token) = config.bot.token.as_ref() else {
        return Vec::new();
    };
    check_with(&super::http(config, token.expose()), config).await
}

/// [`check`] with a REST client already built (the running bot's, at start).
pub async fn check_with(http: &serenity::Http, config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let me = match http.get_current_user().await {
        Ok(me) => me,
        Err(err) => {
            problems.push(match status(&err) {
                Some((StatusCode::UNAUTHORIZED, _)) => Problem::new(
                    "DISCORD_TOKEN",
                    "Discord refused the token (401 Unauthorized)",
                    "copy the bot's token again (Developer Portal, your application, Bot, Reset \
                     Token) into DISCORD_TOKEN in .env",
                ),
                _ => Problem::new(
                    "DISCORD_TOKEN",
                    format!(
                        "could not ask Discord who the bot is at {}: {err}",
                        config.bot.api_base
                    ),
                    "check the network and DISCORD_API_BASE, then run this again",
                ),
            });
            return problems;
        }
    };
    let mut guilds = Guilds {
        http,
        bot: me.id,
        seen: HashMap::new(),
    };
    for guild in &config.bot.guilds {
        if let Err(why) = guilds.get(*guild).await {
            problems.push(Problem::new(
                "bot.guilds",
                format!("the bot is not in guild {} ({why})", guild.0),
                "invite it with the URL `patchbay invite` prints, or remove the id",
            ));
        }
    }
    for (key, channel) in channels(config) {
        if let Some(problem) = check_channel(http, &mut guilds, &key, channel).await {
            problems.push(problem);
        }
    }
    // Roles are looked for in the configured guilds, or, without any, in every guild the bot
    // is in (commands are then registered globally).
    let mut places: Vec<Snowflake> = config.bot.guilds.clone();
    if places.is_empty() {
        match http.get_guilds(None, None).await {
            Ok(all) => places.extend(all.iter().map(|g| Snowflake(g.id.get()))),
            Err(err) => problems.push(Problem::new(
                "bot.guilds",
                format!("could not list the guilds the bot is in: {err}"),
                "set bot.guilds to the servers patchbay serves",
            )),
        }
    }
    let mut known = Vec::new();
    for guild in places {
        if let Ok(found) = guilds.get(guild).await {
            known.extend(found.guild.roles.keys().map(|r| r.get()));
        }
    }
    for (key, role) in roles(config) {
        if !known.contains(&role.0) {
            problems.push(Problem::new(
                key,
                format!(
                    "role {} is not a role of {}",
                    role.0,
                    if config.bot.guilds.is_empty() {
                        "any guild the bot is in"
                    } else {
                        "the configured guilds (bot.guilds)"
                    }
                ),
                "copy the role's id again (Developer Mode on, Server Settings, Roles, the role's \
                 menu, Copy Role ID)",
            ));
        }
    }
    problems
}

/// Whether the bot may post embeds in `channel`, or the problem.
async fn check_channel(
    http: &serenity::Http,
    guilds: &mut Guilds<'_>,
    key: &str,
    channel: Snowflake,
) -> Option<Problem> {
    let fix_missing = "copy the channel's id again (Developer Mode on, the channel's menu, Copy \
                       Channel ID), and make sure the bot can see the channel";
    let found = match http.get_channel(serenity::ChannelId::new(channel.0)).await {
        Ok(serenity::Channel::Guild(found)) => found,
        Ok(_) => {
            return Some(Problem::new(
                key,
                format!("channel {} is not a server channel", channel.0),
                "use a text channel of a server the bot is in",
            ));
        }
        Err(err) => {
            return Some(Problem::new(
                key,
                format!(
                    "channel {} does not exist or the bot cannot see it ({})",
                    channel.0,
                    answer(&err)
                ),
                fix_missing,
            ));
        }
    };
    let guild = match guilds.get(Snowflake(found.guild_id.get())).await {
        Ok(guild) => guild,
        Err(why) => {
            return Some(Problem::new(
                key,
                format!(
                    "channel {} (#{}) is in guild {}, which the bot could not read ({why})",
                    channel.0, found.name, found.guild_id
                ),
                "invite the bot to that server with `patchbay invite`",
            ));
        }
    };
    let held = guild.guild.user_permissions_in(&found, &guild.bot);
    let missing: Vec<&str> = PERMISSIONS
        .iter()
        .filter(|(bit, _, _)| TO_POST.contains(bit) && !held.contains(*bit))
        .map(|(_, name, _)| *name)
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(Problem::new(
        key,
        format!(
            "the bot may not post embeds in #{} ({}): it lacks {}",
            found.name,
            channel.0,
            missing.join(", ")
        ),
        format!(
            "allow {} for the bot's role in that channel (Edit Channel, Permissions)",
            missing.join(", ")
        ),
    ))
}

/// A guild the bot is in, with the bot's member there.
struct Guild {
    guild: serenity::PartialGuild,
    bot: serenity::Member,
}

/// The guilds read so far (a failure is kept too, so it is asked once).
struct Guilds<'h> {
    http: &'h serenity::Http,
    bot: serenity::UserId,
    seen: HashMap<u64, Result<Guild, String>>,
}

impl Guilds<'_> {
    async fn get(&mut self, id: Snowflake) -> Result<&Guild, String> {
        if !self.seen.contains_key(&id.0) {
            let read = self.read(serenity::GuildId::new(id.0)).await;
            self.seen.insert(id.0, read);
        }
        self.seen[&id.0].as_ref().map_err(Clone::clone)
    }

    async fn read(&self, id: serenity::GuildId) -> Result<Guild, String> {
        let guild = self.http.get_guild(id).await.map_err(|err| answer(&err))?;
        let bot = self
            .http
            .get_member(id, self.bot)
            .await
            .map_err(|err| answer(&err))?;
        Ok(Guild { guild, bot })
    }
}

/// Every configured channel, with its key.
fn channels(config: &Config) -> Vec<(String, Snowflake)> {
    let mut out = Vec::new();
    if let Some(channel) = config.bot.audit_channel {
        out.push(("bot.audit_channel".to_string(), channel));
    }
    if let Some(channel) = config.bot.approval_channel {
        out.push(("bot.approval_channel".to_string(), channel));
    }
    if let Some(channel) = config.alerts.channel {
        out.push(("alerts.channel".to_string(), channel));
    }
    for (index, route) in config.alerts.routes.iter().enumerate() {
        out.push((format!("alerts.route[{index}].channel"), route.channel));
    }
    for (index, integration) in config.integrations.iter().enumerate() {
        if let Some(channel) = integration.channel {
            out.push((format!("integration[{index}].channel"), channel));
        }
    }
    out
}

/// Every configured role, once per key, in config order.
fn roles(config: &Config) -> Vec<(String, Snowflake)> {
    let mut out: Vec<(String, Snowflake)> = Vec::new();
    // Config grants are kept one per permission: a role is named once.
    let granted: BTreeSet<u64> = config
        .grants
        .iter()
        .filter(|g| g.source == crate::access::GrantSource::Config)
        .map(|g| g.role.0)
        .collect();
    out.extend(
        granted
            .into_iter()
            .map(|r| ("grant.role".to_string(), Snowflake(r))),
    );
    for (index, route) in config.alerts.routes.iter().enumerate() {
        for role in &route.mention {
            out.push((format!("alerts.route[{index}].mention"), *role));
        }
    }
    for (index, action) in config.actions.iter().enumerate() {
        for role in &action.roles {
            if let ActionRole::Role(role) = role {
                out.push((format!("action[{index}].roles"), *role));
            }
        }
    }
    out
}

/// The status and Discord's error of a refused call.
fn status(err: &serenity::Error) -> Option<(StatusCode, String)> {
    match err {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(response)) => Some((
            response.status_code,
            format!("{} {}", response.error.code, response.error.message),
        )),
        _ => None,
    }
}

/// What Discord answered, for a message: `404: 10003 Unknown Channel`, or the error.
fn answer(err: &serenity::Error) -> String {
    match status(err) {
        Some((code, error)) => format!("Discord answered {}: {error}", code.as_u16()),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invite_asks_for_exactly_the_listed_permissions() {
        // View Channel 1024, Send Messages 2048, Embed Links 16384, Attach Files 32768,
        // Read Message History 65536.
        assert_eq!(invite_permissions().bits(), 117_760);
        assert_eq!(
            invite_url(42),
            "https://discord.com/oauth2/authorize?client_id=42&scope=bot+applications.commands&permissions=117760"
        );
    }
}
