//! The Discord front: a poise/serenity bot over the control plane. The only module that
//! imports serenity or poise. Commands are thin: they turn the interaction into an
//! [`Invocation`], run it through [`ControlPlane::invoke`] (rate limit, permission, audit), and
//! render the answer; every error is one [`CommandError`] rendered as an ephemeral reply.

pub mod commands;
mod components;
pub mod courier;
mod custom_id;
pub mod doctor;
mod render;

use std::sync::Arc;
use std::time::Instant;

use poise::serenity_prelude as serenity;
use tokio_util::sync::CancellationToken;

use crate::access::{Caller, Member};
use crate::audit::{InvocationOption, OptionValue};
use crate::config::Config;
use crate::model::{Actor, ECHO_LIMIT, Snowflake, shorten};
use crate::service::{CommandError, ControlPlane, Invalid, Invocation};
use commands::Gate;
use render::Reply;

/// What every command can reach: the control plane, which answers every front alike.
pub struct Data {
    /// The one path for permission checks, audit entries and answers.
    pub plane: Arc<ControlPlane>,
}

/// The poise context of our commands.
pub type Context<'a> = poise::Context<'a, Data, CommandError>;

impl From<serenity::Error> for CommandError {
    fn from(err: serenity::Error) -> Self {
        CommandError::internal("discord", &err)
    }
}

fn snowflake(id: impl Into<u64>) -> Snowflake {
    Snowflake(id.into())
}

/// The facts that decide a member's permissions, from an interaction's parts.
fn member_of(
    cache: &serenity::Cache,
    guild: Option<serenity::GuildId>,
    user: &serenity::User,
    member: Option<&serenity::Member>,
) -> Member {
    let (roles, is_administrator) = match member {
        Some(member) => (
            member.roles.iter().map(|r| snowflake(*r)).collect(),
            member
                .permissions
                .is_some_and(serenity::Permissions::administrator),
        ),
        None => (Vec::new(), false),
    };
    let is_owner = guild
        .and_then(|guild| cache.guild(guild).map(|guild| guild.owner_id == user.id))
        .unwrap_or(false);
    Member {
        user: snowflake(user.id),
        guild: guild.map(snowflake),
        roles,
        is_owner,
        is_administrator,
    }
}

/// The invocation of a slash command, as the control plane sees it: named by poise's qualified
/// name, gated by the command's [`Gate`], with its options typed (a subcommand's own options,
/// not the subcommand wrapped around them) and its secret ones marked.
pub(crate) fn invocation(ctx: Context<'_>) -> Invocation {
    let started = Instant::now();
    let user = ctx.author();
    let gate = Gate::of(ctx.command());
    let (member, options) = match ctx {
        poise::Context::Application(app) => {
            let mut options = Vec::new();
            typed_options(&app.interaction.data.options(), gate.secret, &mut options);
            (app.interaction.member.as_deref(), options)
        }
        poise::Context::Prefix(_) => (None, Vec::new()),
    };
    Invocation {
        actor: Actor::Discord {
            user: snowflake(user.id),
            name: user.name.clone(),
        },
        caller: Caller::Member(member_of(ctx.cache(), ctx.guild_id(), user, member)),
        channel: Some(snowflake(ctx.channel_id())),
        command: ctx.command().qualified_name.to_string(),
        permission: gate.permission,
        options,
        received: started,
    }
}

/// The options of an interaction as typed values, descending into subcommands.
fn typed_options(
    options: &[serenity::ResolvedOption<'_>],
    secret: &[&str],
    out: &mut Vec<InvocationOption>,
) {
    for option in options {
        let value = match &option.value {
            serenity::ResolvedValue::SubCommand(inner)
            | serenity::ResolvedValue::SubCommandGroup(inner) => {
                typed_options(inner, secret, out);
                continue;
            }
            serenity::ResolvedValue::String(text) => OptionValue::Text((*text).to_string()),
            serenity::ResolvedValue::Integer(n) => OptionValue::Integer(*n),
            serenity::ResolvedValue::Number(n) => OptionValue::Number(*n),
            serenity::ResolvedValue::Boolean(b) => OptionValue::Boolean(*b),
            serenity::ResolvedValue::User(user, _) => OptionValue::Id(snowflake(user.id)),
            serenity::ResolvedValue::Role(role) => OptionValue::Id(snowflake(role.id)),
            serenity::ResolvedValue::Channel(channel) => OptionValue::Id(snowflake(channel.id)),
            serenity::ResolvedValue::Attachment(file) => OptionValue::Text(file.filename.clone()),
            serenity::ResolvedValue::Autocomplete { value, .. } => {
                OptionValue::Text((*value).to_string())
            }
            // A value serenity could not resolve: its kind, never a guess at its content.
            _ => OptionValue::Text("unresolved".into()),
        };
        out.push(InvocationOption {
            name: option.name.to_string(),
            value,
            secret: secret.contains(&option.name),
        });
    }
}

/// How long an answer may take before the interaction is deferred: Discord wants the first
/// callback within 3 s, and a deferral buys 15 minutes.
const DEFER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends the answer: the reply itself, or the error as an ephemeral message.
pub(crate) async fn respond(
    ctx: Context<'_>,
    answer: Result<Reply, CommandError>,
) -> Result<(), CommandError> {
    let reply = match answer {
        Ok(reply) => reply,
        Err(err) => Reply::error(&err),
    };
    ctx.send(reply.into_poise()).await?;
    Ok(())
}

/// Waits for `answer` and sends it, deferring the interaction first if the answer takes more
/// than [`DEFER_AFTER`] (a busy database, a slow check), so the 3-second deadline is never
/// missed. `ephemeral` says how the deferred reply will show; an error after a public deferral
/// replaces the "thinking" message with an ephemeral one, so errors stay private.
pub(crate) async fn respond_in_time(
    ctx: Context<'_>,
    ephemeral: bool,
    answer: impl std::future::Future<Output = Result<Reply, CommandError>>,
) -> Result<(), CommandError> {
    let mut answer = std::pin::pin!(answer);
    let result = tokio::select! {
        result = &mut answer => return respond(ctx, result).await,
        () = tokio::time::sleep(DEFER_AFTER) => {
            if ephemeral { ctx.defer_ephemeral().await?; } else { ctx.defer().await?; }
            answer.await
        }
    };
    match (result, ctx) {
        (Err(err), poise::Context::Application(app)) if !ephemeral => {
            app.interaction.delete_response(ctx.http()).await?;
            let message = Reply::error(&err).into_followup();
            app.interaction.create_followup(ctx.http(), message).await?;
            Ok(())
        }
        (result, _) => respond(ctx, result).await,
    }
}

async fn on_error(error: poise::FrameworkError<'_, Data, CommandError>) {
    // Errors a command returned have been answered already (a `Command` error here is one its
    // answer failed with); what is left is the framework's own. Options that fail our check or
    // poise's parsing are the member's mistake: they are answered as invalid input and audited
    // like any command.
    let Some(ctx) = error.ctx() else {
        tracing::warn!(error = %error, "the Discord framework failed outside a command");
        return;
    };
    if let poise::Context::Application(app) = ctx
        && matches!(
            app.interaction_type,
            poise::CommandInteractionType::Autocomplete
        )
    {
        // An autocomplete interaction takes only suggestions; there is nobody to tell.
        tracing::warn!(error = %error, "an autocomplete request failed");
        return;
    }
    let invalid = match &error {
        poise::FrameworkError::CommandCheckFailed {
            error: Some(err), ..
        } => Some(err.clone()),
        poise::FrameworkError::ArgumentParse { error, .. } => Some(
            Invalid::Option {
                // poise's text may quote the input.
                problem: shorten(&error.to_string(), ECHO_LIMIT),
            }
            .into(),
        ),
        poise::FrameworkError::CommandStructureMismatch { description, .. } => Some(
            Invalid::Option {
                problem: description.to_string(),
            }
            .into(),
        ),
        _ => None,
    };
    let err = match (invalid, &error) {
        (Some(err), _) => {
            let plane = &ctx.data().plane;
            // Audited as the command it was meant to be, with the permission it needs: a
            // member without it is told that first.
            let invocation = invocation(ctx);
            match plane
                .invoke(&invocation, move || async move { Err::<(), _>(err) })
                .await
            {
                Err(err) => err,
                Ok(()) => return,
            }
        }
        (None, poise::FrameworkError::Command { error, .. }) => error.clone(),
        (None, other) => CommandError::internal("discord", &format!("{other}")),
    };
    if let Err(err) = ctx.send(Reply::error(&err).into_poise()).await {
        tracing::warn!(error = %err, "could not answer a failed command");
    }
}

/// Builds the REST client: `DISCORD_API_BASE` replaces Discord's host (a rate-limit proxy in
/// production, a fake in tests). serenity honours the proxy only with its own rate limiter off,
/// which is what such a proxy is for.
fn http(config: &Config, token: &str) -> serenity::Http {
    let base = config.bot.api_base.as_str().trim_end_matches('/');
    let builder = serenity::HttpBuilder::new(token);
    if base == "https://discord.com" {
        builder.build()
    } else {
        builder.proxy(base).ratelimiter_disabled(true).build()
    }
}

/// Connects to Discord, registers the commands (per guild in `[bot].guilds`, else globally),
/// and runs until `stop` is cancelled.
pub async fn run(plane: Arc<ControlPlane>, stop: CancellationToken) -> anyhow::Result<()> {
    // Connection settings are read once: changing them needs a restart (the reload says so).
    let config = plane.config();
    let token = config
        .bot
        .token
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("DISCORD_TOKEN is not set"))?
        .expose()
        .to_string();
    let guilds: Vec<serenity::GuildId> = config
        .bot
        .guilds
        .iter()
        .map(|g| serenity::GuildId::new(g.0))
        .collect();
    let data_plane = plane.clone();
    let data = Data { plane };
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: commands::all(),
            command_check: Some(|ctx| Box::pin(commands::check_options(ctx))),
            on_error: |error| Box::pin(on_error(error)),
            event_handler: |framework, event| {
                Box::pin(components::on_event(
                    framework.serenity_context,
                    event,
                    framework.user_data,
                ))
            },
            ..Default::default()
        })
        .initialize_owners(false)
        .setup(move |ctx, ready, framework| {
            Box::pin(async move {
                let commands = &framework.options().commands;
                if guilds.is_empty() {
                    poise::builtins::register_globally(ctx, commands).await?;
                } else {
                    for guild in &guilds {
                        poise::builtins::register_in_guild(ctx, commands, *guild).await?;
                    }
                }
                tracing::info!(
                    user = %ready.user.name,
                    guilds = guilds.len(),
                    "connected to Discord; slash commands registered"
                );
                Ok(data)
            })
        })
        .build();
    let intents = serenity::GatewayIntents::GUILDS;
    let mut client = serenity::ClientBuilder::new_with_http(http(&config, &token), intents)
        .framework(framework)
        .await?;
    if let Some(channel) = config.bot.audit_channel {
        let (sink, entries) = tokio::sync::mpsc::unbounded_channel();
        data_plane.mirror_audit(sink);
        tokio::spawn(mirror_audit(
            client.http.clone(),
            serenity::ChannelId::new(channel.0),
            entries,
        ));
    }
    // What `patchbay check --online` asks of Discord, asked at every start too: a channel the
    // bot cannot post in is then a warning in the log now, not a failed alert later.
    let (doctor_http, doctor_config) = (client.http.clone(), config.clone());
    tokio::spawn(async move {
        let problems = doctor::check_with(&doctor_http, &doctor_config).await;
        for problem in &problems {
            tracing::warn!(key = %problem.key, fix = %problem.fix, "Discord setup: {}", problem.message);
        }
        if problems.is_empty() {
            tracing::info!(
                "Discord setup checked: the token, guilds, channels and roles are as configured"
            );
        }
    });
    tokio::spawn(commands::action::run_approvals(
        client.http.clone(),
        data_plane.clone(),
        stop.clone(),
    ));
    let shards = client.shard_manager.clone();
    // A stop that comes before the shards are up must still end `start`: a shutdown sent to a
    // shard manager that has not launched its shards yet is lost, and `start` then runs on
    // (measured: one SIGTERM in three right after start-up hung the front until the process
    // was killed). So the stop also drops `start` and shuts down whatever it launched.
    tokio::select! {
        result = client.start() => result?,
        () = stop.cancelled() => shards.shutdown_all().await,
    }
    Ok(())
}

/// Posts one line per audit entry into `[bot].audit_channel`, without pinging anyone.
async fn mirror_audit(
    http: Arc<serenity::Http>,
    channel: serenity::ChannelId,
    mut entries: tokio::sync::mpsc::UnboundedReceiver<crate::audit::AuditEntry>,
) {
    while let Some(entry) = entries.recv().await {
        let place = entry
            .channel
            .map(|c| format!(" in <#{}>", c.0))
            .unwrap_or_default();
        let line = format!(
            "`/{}` by {}{place}: {} ({:.0} ms){}",
            entry.command,
            render::actor(&entry.actor),
            entry.outcome,
            entry.latency_ms,
            entry
                .error_kind
                .as_deref()
                .map(|kind| format!(", {kind}"))
                .unwrap_or_default()
        );
        // Like every answer, it names people without pinging them.
        let message = Reply::text(line).into_channel_message();
        if let Err(err) = channel.send_message(&http, message).await {
            tracing::warn!(error = %err, "could not mirror an audit entry into the audit channel");
        }
    }
}

/// Where commands are registered: each guild of `[bot].guilds`, or globally.
fn scopes(config: &Config) -> Vec<Option<serenity::GuildId>> {
    if config.bot.guilds.is_empty() {
        vec![None]
    } else {
        config
            .bot
            .guilds
            .iter()
            .map(|g| Some(serenity::GuildId::new(g.0)))
            .collect()
    }
}

/// A REST client with the application id set, for the CLI (no gateway connection).
async fn rest_client(config: &Config) -> anyhow::Result<serenity::Http> {
    let token = config.bot.token.as_ref().ok_or_else(|| {
        anyhow::anyhow!("DISCORD_TOKEN is not set; set it in the environment or .env")
    })?;
    let http = http(config, token.expose());
    let application = http.get_current_application_info().await?;
    http.set_application_id(application.id);
    Ok(http)
}

/// `patchbay commands register`: registers every command where `run` would, and returns one
/// line per scope.
pub async fn register_commands(config: &Config) -> anyhow::Result<Vec<String>> {
    let http = rest_client(config).await?;
    let commands = poise::builtins::create_application_commands(&commands::all());
    let mut lines = Vec::new();
    for scope in scopes(config) {
        let registered = match scope {
            Some(guild) => guild.set_commands(&http, commands.clone()).await?,
            None => serenity::Command::set_global_commands(&http, commands.clone()).await?,
        };
        lines.push(format!(
            "registered {} commands {}",
            registered.len(),
            scope.map_or_else(|| "globally".to_string(), |g| format!("in guild {g}"))
        ));
    }
    Ok(lines)
}

/// `patchbay commands list`: the commands Discord has registered, one line each.
pub async fn list_commands(config: &Config) -> anyhow::Result<Vec<String>> {
    let http = rest_client(config).await?;
    let mut lines = Vec::new();
    for scope in scopes(config) {
        let registered = match scope {
            Some(guild) => guild.get_commands(&http).await?,
            None => serenity::Command::get_global_commands(&http).await?,
        };
        let place = scope.map_or_else(|| "global".to_string(), |g| format!("guild {g}"));
        for command in registered {
            lines.push(format!(
                "{place}: /{} {}",
                command.name, command.description
            ));
        }
    }
    Ok(lines)
}
