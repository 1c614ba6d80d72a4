//! The fake Discord (`tests/common/fake_discord/`) against a real serenity client: the
//! handshake, the cache filled from GUILD_CREATE, interactions answered through REST, a gateway
//! drop followed by a RESUME, and every payload the fake sends parsed with serenity's own types
//! (a payload serenity cannot parse would otherwise be dropped silently as `Event::Unknown`).
//!
//! Then, through plain reqwest as the alert dispatcher will call Discord: the guild's channels,
//! replies and `allowed_mentions`, the per-channel and per-message views, incoming webhooks, and
//! injected faults (429s with Discord's headers, 5xx answers, hung requests, and the violation
//! recorded when a client does not wait out `retry_after`).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::fake_discord::{
    self, ADMIN_ROLE, ADMIN_USER_ID, ALERT_CHANNEL_ID, APP_ID, BOT_USER_ID, CHANNEL_ID,
    FakeDiscord, FakeMember, Fault, GUILD_ID, NOBODY_USER_ID, OPS_ROLE, OPS_USER_ID, OWNER_ID,
    Place, ROUTE_CHANNEL_ID, payload,
};
use serde_json::{Value, json};
use serenity::all::{
    ActionRowComponent, ButtonKind, Command, CommandOptionType, ComponentInteractionDataKind,
    Context, CreateActionRow, CreateAutocompleteResponse, CreateButton, CreateCommand,
    CreateCommandOption, CreateEmbed, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateInteractionResponseMessage, EditInteractionResponse, EventHandler, GatewayIntents,
    GuildId, HttpBuilder, Interaction, InteractionContext, Permissions, Ready, ResolvedValue,
    RoleId, UserId,
};
use serenity::model::event::{Event, GatewayEvent, GuildCreateEvent, ReadyEvent};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug)]
enum Seen {
    Ready {
        user: u64,
        guilds: usize,
    },
    Registered(Result<Vec<String>, String>),
    Rest(Vec<Result<String, String>>),
    GuildCreate {
        owner: u64,
        admin_role_is_admin: bool,
        ops_role: bool,
        members: usize,
        channels: usize,
    },
    Resumed,
    ChannelCreated {
        id: u64,
        cached_channels: usize,
    },
    Edited(Result<serenity::all::Message, String>),
    FollowedUp(Result<serenity::all::Message, String>),
    Failed(String),
}

struct Handler {
    seen: mpsc::UnboundedSender<Seen>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        let _ = self.seen.send(Seen::Ready {
            user: ready.user.id.get(),
            guilds: ready.guilds.len(),
        });
        let commands = vec![
            CreateCommand::new("ping")
                .description("Replies pong")
                .add_option(
                    CreateCommandOption::new(CommandOptionType::String, "target", "Who")
                        .set_autocomplete(true),
                ),
            CreateCommand::new("panel")
                .description("A panel with a button")
                .default_member_permissions(Permissions::ADMINISTRATOR),
        ];
        let registered = Command::set_global_commands(&ctx.http, commands)
            .await
            .map(|list| {
                list.iter()
                    .map(|c| format!("{} v{}", c.name, c.version))
                    .collect()
            })
            .map_err(|e| e.to_string());
        let _ = self.seen.send(Seen::Registered(registered));

        let http = &ctx.http;
        let guild = GuildId::new(GUILD_ID);
        let rest = vec![
            http.get_current_user()
                .await
                .map(|u| u.name.clone())
                .map_err(|e| e.to_string()),
            http.get_current_application_info()
                .await
                .map(|a| format!("owner {:?}", a.owner.map(|o| o.id)))
                .map_err(|e| e.to_string()),
            http.get_bot_gateway()
                .await
                .map(|g| g.url)
                .map_err(|e| e.to_string()),
            http.get_guild(guild)
                .await
                .map(|g| g.name)
                .map_err(|e| e.to_string()),
            http.get_guild_roles(guild)
                .await
                .map(|r| format!("{} roles", r.len()))
                .map_err(|e| e.to_string()),
            http.get_member(guild, UserId::new(OPS_USER_ID))
                .await
                .map(|m| format!("{:?}", m.roles))
                .map_err(|e| e.to_string()),
            http.get_channel(CHANNEL_ID.into())
                .await
                .map(|c| c.id().to_string())
                .map_err(|e| e.to_string()),
        ];
        let _ = self.seen.send(Seen::Rest(rest));
    }

    async fn guild_create(&self, ctx: Context, guild: serenity::all::Guild, _is_new: Option<bool>) {
        // Read from the cache, which is what the bot's permission checks will see.
        let Some(cached) = ctx.cache.guild(guild.id).map(|g| g.clone()) else {
            let _ = self.seen.send(Seen::Failed("guild not in cache".into()));
            return;
        };
        let _ = self.seen.send(Seen::GuildCreate {
            owner: cached.owner_id.get(),
            admin_role_is_admin: cached
                .roles
                .get(&RoleId::new(ADMIN_ROLE))
                .is_some_and(|r| r.permissions.administrator()),
            ops_role: cached.roles.contains_key(&RoleId::new(OPS_ROLE)),
            members: cached.members.len(),
            channels: cached.channels.len(),
        });
    }

    async fn channel_create(&self, ctx: Context, channel: serenity::all::GuildChannel) {
        let cached_channels = ctx
            .cache
            .guild(channel.guild_id)
            .map_or(0, |g| g.channels.len());
        let _ = self.seen.send(Seen::ChannelCreated {
            id: channel.id.get(),
            cached_channels,
        });
    }

    async fn resume(&self, _ctx: Context, _event: serenity::all::ResumedEvent) {
        let _ = self.seen.send(Seen::Resumed);
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let result = match interaction {
            Interaction::Command(cmd) => match cmd.data.name.as_str() {
                "ping" => {
                    let content = if cmd.guild_id.is_some() {
                        "pong"
                    } else {
                        "dm pong"
                    };
                    let message = CreateInteractionResponseMessage::new()
                        .content(content)
                        .ephemeral(true);
                    cmd.create_response(&ctx.http, CreateInteractionResponse::Message(message))
                        .await
                }
                "panel" => {
                    let defer = CreateInteractionResponse::Defer(
                        CreateInteractionResponseMessage::new().ephemeral(true),
                    );
                    if let Err(e) = cmd.create_response(&ctx.http, defer).await {
                        Err(e)
                    } else {
                        let edit = EditInteractionResponse::new()
                            .content("panel")
                            .embed(CreateEmbed::new().title("Status").field("api", "up", true))
                            .components(vec![CreateActionRow::Buttons(vec![
                                CreateButton::new("panel:refresh").label("Refresh"),
                            ])]);
                        let edited = cmd
                            .edit_response(&ctx.http, edit)
                            .await
                            .map_err(|e| e.to_string());
                        let _ = self.seen.send(Seen::Edited(edited));
                        let followup = CreateInteractionResponseFollowup::new()
                            .content("follow-up")
                            .ephemeral(true);
                        let sent = cmd
                            .create_followup(&ctx.http, followup)
                            .await
                            .map_err(|e| e.to_string());
                        let _ = self.seen.send(Seen::FollowedUp(sent));
                        Ok(())
                    }
                }
                // "quiet" is never answered (the validation test answers it by hand).
                _ => Ok(()),
            },
            Interaction::Component(click) if click.data.custom_id == "panel:refresh" => {
                let update = CreateInteractionResponseMessage::new().content("refreshed");
                click
                    .create_response(&ctx.http, CreateInteractionResponse::UpdateMessage(update))
                    .await
            }
            Interaction::Autocomplete(ac) => {
                let typed = ac
                    .data
                    .autocomplete()
                    .map(|o| o.value.to_string())
                    .unwrap_or_default();
                let choices = CreateAutocompleteResponse::new()
                    .add_string_choice(format!("{typed}pha"), "alpha");
                ac.create_response(&ctx.http, CreateInteractionResponse::Autocomplete(choices))
                    .await
            }
            other => {
                let _ = self
                    .seen
                    .send(Seen::Failed(format!("unexpected interaction {other:?}")));
                Ok(())
            }
        };
        if let Err(e) = result {
            let _ = self.seen.send(Seen::Failed(e.to_string()));
        }
    }
}

/// Events from the handler. `expect` takes the first event `pick` accepts, keeping the others
/// for later calls (the handlers run concurrently, so their order is not fixed).
struct Events {
    rx: mpsc::UnboundedReceiver<Seen>,
    held: Vec<Seen>,
}

impl Events {
    async fn expect<T>(&mut self, what: &str, pick: impl Fn(&Seen) -> Option<T>) -> T {
        if let Some(pos) = self.held.iter().position(|s| pick(s).is_some()) {
            return pick(&self.held.remove(pos)).expect("checked");
        }
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Seen::Failed(why))) => {
                    panic!("the handler failed while waiting for {what}: {why}")
                }
                Ok(Some(seen)) => match pick(&seen) {
                    Some(v) => return v,
                    None => self.held.push(seen),
                },
                Ok(None) => panic!("the client stopped while waiting for {what}"),
                Err(tokio::time::error::Elapsed { .. }) => panic!(
                    "timed out waiting for {what}; other events: {:?}",
                    self.held
                ),
            }
        }
    }
}

struct Bot {
    seen: Events,
    shards: std::sync::Arc<serenity::gateway::ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

impl Bot {
    async fn stop(self) {
        self.shards.shutdown_all().await;
        let _ = tokio::time::timeout(DEADLINE, self.task).await;
    }
}

async fn start_bot(fake: &FakeDiscord) -> Bot {
    let (tx, seen) = mpsc::unbounded_channel();
    let http = HttpBuilder::new("fake-token")
        .proxy(fake.api_base())
        .ratelimiter_disabled(true)
        .build();
    let mut client = serenity::client::ClientBuilder::new_with_http(http, GatewayIntents::GUILDS)
        .event_handler(Handler { seen: tx })
        .await
        .expect("the client builds");
    let shards = client.shard_manager.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = client.start().await {
            panic!("the client stopped: {e}");
        }
    });
    Bot {
        seen: Events {
            rx: seen,
            held: Vec::new(),
        },
        shards,
        task,
    }
}

/// Every frame the fake wrote parses as serenity's `GatewayEvent`, and no dispatch falls back
/// to `Event::Unknown`.
fn assert_frames_parse(fake: &FakeDiscord) -> usize {
    let frames = fake.sent_frames();
    for frame in &frames {
        let event: GatewayEvent = serde_json::from_value(frame.clone())
            .unwrap_or_else(|e| panic!("serenity cannot parse {frame}: {e}"));
        if let GatewayEvent::Dispatch(_, Event::Unknown(unknown)) = event {
            panic!(
                "serenity parsed {} as Event::Unknown: {frame}",
                unknown.kind
            );
        }
    }
    frames.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_serenity_client_connects_answers_and_resumes() {
    let started = std::time::Instant::now();
    let fake = FakeDiscord::start().await;
    let mut bot = start_bot(&fake).await;

    fake.wait_ready().await;
    // serenity sends its HTTP token, "Bot "-prefixed, in IDENTIFY too.
    assert_eq!(fake.identify_tokens(), vec!["Bot fake-token".to_string()]);
    assert_eq!(fake.rest_tokens(), vec!["Bot fake-token".to_string()]);
    let (user, guilds) = bot
        .seen
        .expect("ready", |s| match s {
            Seen::Ready { user, guilds } => Some((*user, *guilds)),
            _ => None,
        })
        .await;
    assert_eq!((user, guilds), (BOT_USER_ID, 1));
    let cached = bot
        .seen
        .expect("guild_create", |s| match s {
            Seen::GuildCreate {
                owner,
                admin_role_is_admin,
                ops_role,
                members,
                channels,
            } => Some((*owner, *admin_role_is_admin, *ops_role, *members, *channels)),
            _ => None,
        })
        .await;
    assert_eq!(cached, (OWNER_ID, true, true, 5, 3));
    let registered = bot
        .seen
        .expect("command registration", |s| match s {
            Seen::Registered(r) => Some(r.clone()),
            _ => None,
        })
        .await
        .expect("serenity parses the registered commands");
    assert_eq!(registered.len(), 2, "{registered:?}");
    let stored = fake.registered_commands(None);
    assert_eq!(stored[1]["name"], "panel");
    assert_eq!(stored[1]["default_member_permissions"], "8");
    let rest = bot
        .seen
        .expect("REST calls", |s| match s {
            Seen::Rest(r) => Some(r.clone()),
            _ => None,
        })
        .await;
    let rest: Vec<String> = rest
        .into_iter()
        .map(|r| r.expect("every REST call succeeds and parses"))
        .collect();
    assert_eq!(rest[0], "patchbay");
    assert_eq!(rest[1], format!("owner Some(UserId({OWNER_ID}))"));
    assert_eq!(rest[2], fake.gateway_url());
    assert_eq!(rest[4], "4 roles");
    assert_eq!(rest[5], format!("[RoleId({OPS_ROLE})]"));

    // A slash command answered with an ephemeral message.
    let ping = fake.command("ping", json!([]), FakeMember::OPS).await;
    let callback = fake.callback_for(ping).await;
    assert_eq!(callback["type"], 4, "{callback}");
    assert_eq!(callback["data"]["content"], "pong", "{callback}");
    assert_eq!(callback["data"]["flags"], 64, "{callback}");
    let latency = fake
        .callback_latency(ping)
        .expect("a latency once answered");
    assert!(latency < DEADLINE, "{latency:?}");
    let original = fake.original_message(ping).await;
    assert_eq!(original["content"], "pong");

    // Deferred, edited (serenity parses the returned message), followed up, then a button.
    let panel = fake.command("panel", json!([]), FakeMember::ADMIN).await;
    let deferred = fake.callback_for(panel).await;
    assert_eq!(deferred["type"], 5, "{deferred}");
    assert_eq!(deferred["data"]["flags"], 64, "{deferred}");
    let edited = bot
        .seen
        .expect("edit_response", |s| match s {
            Seen::Edited(r) => Some(r.clone()),
            _ => None,
        })
        .await
        .expect("serenity parses the edited message");
    assert_eq!(edited.content, "panel");
    assert_eq!(edited.embeds[0].fields[0].value, "up");
    let ActionRowComponent::Button(button) = &edited.components[0].components[0] else {
        panic!("not a button: {:?}", edited.components);
    };
    assert!(
        matches!(&button.data, ButtonKind::NonLink { custom_id, .. } if custom_id == "panel:refresh")
    );
    let followed = bot
        .seen
        .expect("create_followup", |s| match s {
            Seen::FollowedUp(r) => Some(r.clone()),
            _ => None,
        })
        .await
        .expect("serenity parses the follow-up");
    assert_eq!(followed.content, "follow-up");
    assert_eq!(fake.followups(panel).len(), 1);

    let message = fake.original_message(panel).await;
    let click = fake
        .button("panel:refresh", message.clone(), FakeMember::ADMIN)
        .await;
    let update = fake.callback_for(click).await;
    assert_eq!(update["type"], 7, "{update}");
    let message_id = fake_discord::snowflake(&message["id"]).unwrap();
    assert_eq!(fake.message(message_id).unwrap()["content"], "refreshed");

    // Autocomplete and a DM.
    let ac = fake
        .autocomplete(
            "ping",
            json!([{"name": "target", "type": 3, "value": "al"}]),
            FakeMember::OWNER,
        )
        .await;
    let choices = fake.callback_for(ac).await;
    assert_eq!(
        choices,
        json!({"type": 8, "data": {"choices": [{"name": "alpha", "value": "alpha"}]}})
    );
    let dm = fake.command_in_dm("ping", json!([]), NOBODY_USER_ID).await;
    assert_eq!(fake.callback_for(dm).await["data"]["content"], "dm pong");

    // A channel added while connected reaches serenity's cache through CHANNEL_CREATE.
    let added = 400_000_000_000_000_009;
    fake.add_channel(added);
    let created = bot
        .seen
        .expect("channel_create", |s| match s {
            Seen::ChannelCreated {
                id,
                cached_channels,
            } => Some((*id, *cached_channels)),
            _ => None,
        })
        .await;
    assert_eq!(created, (added, 4));

    assert_eq!(fake.violations(), Vec::<String>::new());
    let before_drop = assert_frames_parse(&fake);

    // A network drop: serenity 0.12.5 reconnects and RESUMEs the session (no new IDENTIFY).
    fake.drop_gateway().await;
    fake.wait_resumed(1).await;
    bot.seen
        .expect("the resume event", |s| {
            matches!(s, Seen::Resumed).then_some(())
        })
        .await;
    assert_eq!(fake.resume_count(), 1);
    assert_eq!(fake.identify_count(), 1);
    let resume = fake
        .gateway_ops()
        .into_iter()
        .find(|op| op["op"] == 6)
        .expect("a RESUME frame");
    assert_eq!(resume["d"]["session_id"], "fake-session-1");
    assert_eq!(resume["d"]["token"], "***");

    let again = fake.command("ping", json!([]), FakeMember::NOBODY).await;
    assert_eq!(fake.callback_for(again).await["data"]["content"], "pong");
    assert_eq!(fake.violations(), Vec::<String>::new());
    assert!(assert_frames_parse(&fake) > before_drop);

    // A command sent right after a drop is held in the session and delivered once: live if
    // serenity already resumed, replayed after the RESUME otherwise.
    fake.drop_gateway().await;
    let queued = fake.command("ping", json!([]), FakeMember::OPS).await;
    assert_eq!(fake.callback_for(queued).await["data"]["content"], "pong");
    fake.wait_resumed(2).await;
    assert_eq!((fake.identify_count(), fake.resume_count()), (1, 2));
    assert_eq!(fake.violations(), Vec::<String>::new());

    bot.stop().await;
    eprintln!("self-test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_catch_what_discord_would_reject() {
    let fake = FakeDiscord::start().await;
    let mut bot = start_bot(&fake).await;
    fake.wait_ready().await;
    bot.seen
        .expect("ready", |s| matches!(s, Seen::Ready { .. }).then_some(()))
        .await;
    let client = reqwest::Client::new();
    let base = format!("{}/api/v10", fake.api_base());

    let quiet = fake.command("quiet", json!([]), FakeMember::OPS).await;
    let token = fake.interaction_token(quiet).unwrap();
    let callback_url = format!("{base}/interactions/{quiet}/{token}/callback");
    let post = |url: String, body: Value| {
        let client = client.clone();
        async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };

    // Editing before acknowledging, then a callback type that does not answer a command.
    let patch = client
        .patch(format!(
            "{base}/webhooks/{APP_ID}/{token}/messages/@original"
        ))
        .json(&json!({"content": "too early"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status().as_u16(), 404);
    let (status, body) = post(
        callback_url.clone(),
        json!({"type": 7, "data": {"content": "x"}}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(50035)));
    let (status, _) = post(callback_url.clone(), json!({"type": 3})).await;
    assert_eq!(status, 400);

    // Embed and component limits.
    let long = "x".repeat(257);
    let fields: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("f{i}"), "value": "v"}))
        .collect();
    let buttons: Vec<Value> = (0..6)
        .map(|i| json!({"type": 2, "style": 1, "label": "b", "custom_id": format!("b{i}")}))
        .collect();
    let (status, _) = post(
        callback_url.clone(),
        json!({"type": 4, "data": {
            "embeds": [{"title": long, "fields": fields, "description": "d".repeat(4097)}],
            "components": [{"type": 1, "components": buttons}],
        }}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post(
        callback_url.clone(),
        json!({"type": 4, "data": {"content": ""}}),
    )
    .await;
    assert_eq!(status, 400);

    // A valid answer is accepted once; the second one is "already acknowledged".
    let (status, _) = post(
        callback_url.clone(),
        json!({"type": 4, "data": {"content": "ok", "flags": 64}}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = post(
        callback_url.clone(),
        json!({"type": 4, "data": {"content": "again"}}),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(40060)));
    // The first callback POSTed is what callback_for reports, even a rejected one.
    assert_eq!(fake.callback_for(quiet).await["type"], 7);

    // Channel messages: ephemeral is interaction-only; unknown routes are flagged.
    let ch = client
        .post(format!("{base}/channels/{CHANNEL_ID}/messages"))
        .header("authorization", "Bot fake-token")
        .json(&json!({"content": "hi", "flags": 64}))
        .send()
        .await
        .unwrap();
    assert_eq!(ch.status().as_u16(), 400);
    let unknown = client
        .get(format!("{base}/voice/regions"))
        .header("authorization", "Bot fake-token")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let error: Value = unknown.json().await.unwrap();
    assert_eq!(error, json!({"message": "404: Not Found", "code": 0}));
    let unauthorized = client
        .get(format!("{base}/users/@me"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);

    let violations = fake.violations().join("\n");
    for expected in [
        "not acknowledged yet",
        "callback type 7 does not answer a Command interaction",
        "callback type Some(3) is not one of",
        "title is 257 characters (max 256)",
        "description is 4097 characters (max 4096)",
        "26 fields (max 25)",
        "action row 0 has 6 components (1-5)",
        "Cannot send an empty message",
        "acknowledged twice",
        "flags 64 has bits Discord does not accept here",
        "unserved route: GET /api/v10/voice/regions",
        "missing or malformed Authorization header",
    ] {
        assert!(
            violations.contains(expected),
            "no violation {expected:?} in:\n{violations}"
        );
    }
    let recorded = fake
        .wait_for_request("the unknown route", |r| r.path == "/api/v10/voice/regions")
        .await;
    assert_eq!(recorded.method, "GET");
    bot.stop().await;
}

/// Payload variants the live test does not send, parsed with serenity's types.
#[tokio::test]
async fn payloads_deserialize_with_serenity_types() {
    // A command with every snowflake option kind, nested in a subcommand, from a guild admin.
    let options = json!([{"name": "grant", "type": 1, "options": [
        {"name": "user", "type": 6, "value": OWNER_ID},
        {"name": "role", "type": 8, "value": OPS_ROLE.to_string()},
        {"name": "channel", "type": 7, "value": CHANNEL_ID.to_string()},
        {"name": "who", "type": 9, "value": ADMIN_USER_ID.to_string()},
        {"name": "reason", "type": 3, "value": "because"},
        {"name": "hours", "type": 4, "value": 2},
    ]}]);
    let spec = payload::CommandSpec {
        id: 1,
        token: "t",
        kind: 2,
        name: "perms",
        command_id: 5,
        command_guild: Some(GUILD_ID),
        options: options.clone(),
        place: Place::Guild(FakeMember::ADMIN),
        channel_id: CHANNEL_ID,
    };
    let value = payload::command_interaction(&spec);
    let Interaction::Command(cmd) = serde_json::from_value::<Interaction>(value.clone()).unwrap()
    else {
        panic!("not a command: {value}");
    };
    assert_eq!(cmd.guild_id, Some(GuildId::new(GUILD_ID)));
    assert_eq!(cmd.user.id.get(), ADMIN_USER_ID);
    assert_eq!(cmd.context, Some(InteractionContext::Guild));
    let member = cmd.member.as_ref().unwrap();
    assert_eq!(member.permissions, Some(Permissions::ADMINISTRATOR));
    assert_eq!(member.roles, vec![RoleId::new(ADMIN_ROLE)]);
    let resolved = cmd.data.options();
    let ResolvedValue::SubCommand(sub) = &resolved[0].value else {
        panic!("{resolved:?}");
    };
    assert!(matches!(sub[0].value, ResolvedValue::User(u, Some(_)) if u.id.get() == OWNER_ID));
    assert!(matches!(sub[1].value, ResolvedValue::Role(r) if r.id.get() == OPS_ROLE));
    assert!(matches!(sub[2].value, ResolvedValue::Channel(c) if c.id.get() == CHANNEL_ID));
    assert!(matches!(sub[3].value, ResolvedValue::User(u, _) if u.id.get() == ADMIN_USER_ID));
    assert!(matches!(sub[4].value, ResolvedValue::String("because")));
    assert!(matches!(sub[5].value, ResolvedValue::Integer(2)));

    // The owner's permissions, an autocomplete, and a DM.
    let owner = payload::command_interaction(&payload::CommandSpec {
        kind: 4,
        options: json!([{"name": "target", "type": 3, "value": "a", "focused": true}]),
        place: Place::Guild(FakeMember::OWNER),
        ..spec
    });
    let Interaction::Autocomplete(ac) = serde_json::from_value::<Interaction>(owner).unwrap()
    else {
        panic!("not an autocomplete");
    };
    assert_eq!(ac.data.autocomplete().unwrap().name, "target");
    let owner_permissions = ac.member.unwrap().permissions.unwrap();
    assert!(owner_permissions.contains(Permissions::ADMINISTRATOR | Permissions::MANAGE_GUILD));
    let dm = payload::command_interaction(&payload::CommandSpec {
        id: 2,
        token: "t",
        kind: 2,
        name: "ping",
        command_id: 5,
        command_guild: None,
        options: json!([]),
        place: Place::Dm(NOBODY_USER_ID),
        channel_id: 410_000_000_000_000_001,
    });
    let Interaction::Command(dm) = serde_json::from_value::<Interaction>(dm).unwrap() else {
        panic!("not a command");
    };
    assert!(dm.guild_id.is_none() && dm.member.is_none());
    assert_eq!(dm.user.id.get(), NOBODY_USER_ID);
    assert_eq!(dm.context, Some(InteractionContext::BotDm));

    // READY and GUILD_CREATE as typed events.
    let ready: ReadyEvent = serde_json::from_value(payload::ready(
        "s",
        "ws://127.0.0.1:1/gateway",
        json!([0, 1]),
    ))
    .unwrap();
    assert_eq!(ready.ready.application.id.get(), APP_ID);
    assert_eq!(ready.ready.session_id, "s");
    let guild: GuildCreateEvent = serde_json::from_value(payload::guild()).unwrap();
    assert_eq!(guild.guild.owner_id.get(), OWNER_ID);
    // @everyone, admin, ops and the bot's own managed role.
    assert_eq!(guild.guild.roles.len(), 4);
    assert_eq!(guild.guild.members.len(), 5);

    // REST responses, fetched over HTTP from a running fake.
    let fake = FakeDiscord::start().await;
    let client = reqwest::Client::new();
    let base = format!("{}/api/v10", fake.api_base());
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("authorization", "Bot fake-token");
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.json::<Value>().await.unwrap()
        }
    };
    let message = send(
        reqwest::Method::POST,
        &format!("/channels/{CHANNEL_ID}/messages"),
        Some(json!({
            "content": "alert",
            "embeds": [{"title": "down", "color": 15_158_332, "fields": [{"name": "a", "value": "b", "inline": true}], "footer": {"text": "f"}}],
            "components": [{"type": 1, "components": [
                {"type": 2, "style": 4, "label": "Ack", "custom_id": "ack:1"},
                {"type": 2, "style": 5, "label": "Open", "url": "https://example.invalid/"},
            ]}],
            "attachments": [{"id": 0, "filename": "report.txt"}],
        })),
    )
    .await;
    let parsed: serenity::all::Message = serde_json::from_value(message.clone()).unwrap();
    assert_eq!(parsed.author.id.get(), BOT_USER_ID);
    assert_eq!(parsed.embeds[0].kind.as_deref(), Some("rich"));
    assert_eq!(parsed.attachments[0].filename, "report.txt");
    let component =
        payload::component_interaction(3, "t", CHANNEL_ID, "ack:1", message, FakeMember::OPS);
    let Interaction::Component(click) = serde_json::from_value::<Interaction>(component).unwrap()
    else {
        panic!("not a component interaction");
    };
    assert!(matches!(
        click.data.kind,
        ComponentInteractionDataKind::Button
    ));
    assert_eq!(click.message.id, parsed.id);

    // A multipart body (a message with files): the payload_json part is the body, and each
    // file part is kept byte for byte, binary ones included (a line break and invalid UTF-8
    // inside must survive).
    let boundary = "fakeboundary";
    let binary: &[u8] = b"\x89PNG\r\n\x1a\n\xff\x00\r\n--not-the-boundary";
    let mut multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"files[1]\"; filename=\"b.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    multipart.extend_from_slice(binary);
    multipart.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n\
             {{\"content\":\"with file\",\"attachments\":[{{\"id\":0,\"filename\":\"a.txt\"}},\
             {{\"id\":1,\"filename\":\"b.png\"}}]}}\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    let response = client
        .post(format!("{base}/channels/{CHANNEL_ID}/messages"))
        .header("authorization", "Bot fake-token")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let with_file: serenity::all::Message = response.json().await.unwrap();
    assert_eq!(with_file.content, "with file");
    assert_eq!(with_file.attachments[0].filename, "a.txt");
    let recorded = fake.requests().last().cloned().unwrap();
    assert_eq!(recorded.body.unwrap()["content"], "with file");
    let files: Vec<(&str, &str, Option<&str>, &[u8])> = recorded
        .files
        .iter()
        .map(|f| {
            (
                f.field.as_str(),
                f.filename.as_str(),
                f.content_type.as_deref(),
                f.bytes.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("files[0]", "a.txt", Some("text/plain"), b"hello".as_slice()),
            ("files[1]", "b.png", Some("image/png"), binary),
        ]
    );

    let commands = send(
        reqwest::Method::PUT,
        &format!("/applications/{APP_ID}/guilds/{GUILD_ID}/commands"),
        Some(
            serde_json::to_value(vec![
                CreateCommand::new("status").description("Show status"),
            ])
            .unwrap(),
        ),
    )
    .await;
    let commands: Vec<Command> = serde_json::from_value(commands).unwrap();
    assert_eq!(commands[0].guild_id, Some(GuildId::new(GUILD_ID)));
    let info: serenity::all::CurrentApplicationInfo =
        serde_json::from_value(send(reqwest::Method::GET, "/oauth2/applications/@me", None).await)
            .unwrap();
    assert_eq!(info.owner.unwrap().id.get(), OWNER_ID);
    let dm: serenity::all::PrivateChannel = serde_json::from_value(
        send(
            reqwest::Method::POST,
            "/users/@me/channels",
            Some(json!({"recipient_id": OPS_USER_ID})),
        )
        .await,
    )
    .unwrap();
    assert_eq!(dm.recipient.id.get(), OPS_USER_ID);
    let channel: serenity::all::Channel = serde_json::from_value(
        send(
            reqwest::Method::GET,
            &format!("/channels/{CHANNEL_ID}"),
            None,
        )
        .await,
    )
    .unwrap();
    assert!(channel.guild().is_some());
    let gateway: serenity::all::BotGateway =
        serde_json::from_value(send(reqwest::Method::GET, "/gateway/bot", None).await).unwrap();
    assert_eq!(gateway.url, fake.gateway_url());
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// An interaction serenity could not parse would be dropped silently; the fake refuses to send it.
#[tokio::test]
#[should_panic(expected = "serenity could not parse this INTERACTION_CREATE")]
async fn an_interaction_serenity_cannot_parse_fails_loudly() {
    let fake = FakeDiscord::start().await;
    // An INTEGER option whose value is not a number.
    let options = json!([{"name": "hours", "type": 4, "value": "two"}]);
    fake.command("ping", options, FakeMember::OPS).await;
}

// ---------------------------------------------------------------------------------------------
// The REST API the alert dispatcher uses, through plain reqwest
// ---------------------------------------------------------------------------------------------

/// What the fake answered: status, headers, and the JSON body (`Null` when there is none).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A reqwest client calling the fake the way the alert dispatcher will call Discord: bot routes
/// under `/api/v10` with `Authorization: Bot <token>`, webhook URLs with no Authorization.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(fake: &FakeDiscord) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: format!("{}/api/v10", fake.api_base()),
        }
    }

    /// A bot route, `path` relative to `/api/v10`.
    async fn bot(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("authorization", "Bot fake-token");
        send(request, body).await
    }

    /// A webhook URL, as given, without Authorization.
    async fn webhook(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> Answer {
        send(self.client.request(method, url), body).await
    }

    /// `POST /channels/{channel}/messages` with `body`.
    async fn create(&self, channel: u64, body: Value) -> Answer {
        self.bot(reqwest::Method::POST, &messages_path(channel), Some(body))
            .await
    }

    /// Posts `content` in `channel` and returns the created message's id.
    async fn post(&self, channel: u64, content: &str) -> u64 {
        let answer = self.create(channel, json!({"content": content})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        fake_discord::snowflake(&answer.body["id"]).expect("the message has an id")
    }
}

async fn send(request: reqwest::RequestBuilder, body: Option<Value>) -> Answer {
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// Asserts that each expected text is in one violation and that there are no others.
fn assert_violations(fake: &FakeDiscord, expected: &[&str]) {
    let violations = fake.violations();
    for text in expected {
        assert!(
            violations.iter().any(|v| v.contains(text)),
            "no violation {text:?} in:\n{violations:#?}"
        );
    }
    assert_eq!(
        violations.len(),
        expected.len(),
        "other violations than {expected:?}:\n{violations:#?}"
    );
}

fn messages_path(channel: u64) -> String {
    format!("/channels/{channel}/messages")
}

#[tokio::test]
async fn the_guild_has_three_text_channels_and_more_can_be_added() {
    use reqwest::Method;
    let fake = FakeDiscord::start().await;
    let api = Api::new(&fake);

    let listed = api
        .bot(Method::GET, &format!("/guilds/{GUILD_ID}/channels"), None)
        .await;
    let listed: Vec<serenity::all::GuildChannel> = serde_json::from_value(listed.body).unwrap();
    let ids: Vec<u64> = listed.iter().map(|c| c.id.get()).collect();
    assert_eq!(ids, vec![CHANNEL_ID, ALERT_CHANNEL_ID, ROUTE_CHANNEL_ID]);
    let alerts = api
        .bot(Method::GET, &format!("/channels/{ALERT_CHANNEL_ID}"), None)
        .await;
    let alerts: serenity::all::Channel = serde_json::from_value(alerts.body).unwrap();
    let alerts = alerts.guild().expect("a guild channel");
    assert_eq!(
        (alerts.name.as_str(), alerts.guild_id.get()),
        ("alerts", GUILD_ID)
    );

    // An unknown channel is 404 10003 on every channel route.
    let unknown = 400_000_000_000_000_099u64;
    let unknown_channel = json!({"code": 10003, "message": "Unknown Channel"});
    for (method, path, body) in [
        (Method::GET, format!("/channels/{unknown}"), None),
        (
            Method::POST,
            messages_path(unknown),
            Some(json!({"content": "x"})),
        ),
        (
            Method::PATCH,
            format!("{}/1", messages_path(unknown)),
            Some(json!({"content": "x"})),
        ),
    ] {
        let answer = api.bot(method.clone(), &path, body).await;
        assert_eq!(
            (answer.status, &answer.body),
            (404, &unknown_channel),
            "{method} {path}"
        );
    }

    // Until it is added.
    fake.add_channel(unknown);
    let channel = api
        .bot(Method::GET, &format!("/channels/{unknown}"), None)
        .await;
    assert_eq!(channel.status, 200);
    assert_eq!(channel.body["name"], format!("channel-{unknown}"));
    let listed = api
        .bot(Method::GET, &format!("/guilds/{GUILD_ID}/channels"), None)
        .await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(4));
    let id = api.post(unknown, "hello").await;
    let messages = fake.wait_for_messages(unknown, 1).await;
    assert_eq!(messages[0]["id"], id.to_string());
    assert_eq!(messages[0]["guild_id"], GUILD_ID.to_string());
    assert_violations(&fake, &[]);
}

#[tokio::test]
async fn replies_reference_their_message_and_allowed_mentions_are_checked() {
    let fake = FakeDiscord::start().await;
    let api = Api::new(&fake);
    let path = messages_path(ALERT_CHANNEL_ID);
    let post = |body: Value| api.bot(reqwest::Method::POST, &path, Some(body));

    // Only the listed role is mentioned: not the unknown role, not @everyone.
    let alert = post(json!({
        "content": format!("<@&{OPS_ROLE}> <@&{ADMIN_ROLE}> <@&123456> api is down @everyone"),
        "allowed_mentions": {"parse": [], "roles": [OPS_ROLE.to_string()]},
    }))
    .await;
    assert_eq!(alert.status, 200, "{}", alert.body);
    assert_eq!(alert.body["mention_roles"], json!([OPS_ROLE.to_string()]));
    assert_eq!(alert.body["mention_everyone"], false);
    assert_eq!(alert.body["type"], 0);
    let alert_id = alert.body["id"].as_str().unwrap().to_string();
    // Without allowed_mentions, every mention in the content counts (unknown roles aside).
    let open = post(json!({
        "content": format!("<@&{ADMIN_ROLE}> <@&123456> <@!{OPS_USER_ID}> @here"),
    }))
    .await;
    assert_eq!(open.body["mention_roles"], json!([ADMIN_ROLE.to_string()]));
    assert_eq!(open.body["mentions"][0]["id"], OPS_USER_ID.to_string());
    assert_eq!(open.body["mention_everyone"], true);

    // A reply: type 19, the reference filled in, and the message replied to.
    let reply = post(json!({
        "content": "recovered",
        "message_reference": {"message_id": alert_id},
        "allowed_mentions": {"parse": [], "replied_user": false},
    }))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["type"], 19);
    assert_eq!(
        reply.body["message_reference"],
        json!({
            "type": 0,
            "channel_id": ALERT_CHANNEL_ID.to_string(),
            "message_id": alert_id,
            "guild_id": GUILD_ID.to_string(),
        })
    );
    let parsed: serenity::all::Message = serde_json::from_value(reply.body.clone()).unwrap();
    assert_eq!(parsed.kind, serenity::all::MessageType::InlineReply);
    let replied_to = parsed.referenced_message.expect("the referenced message");
    assert_eq!(replied_to.id.to_string(), alert_id);
    assert_eq!(
        replied_to.content,
        format!("<@&{OPS_ROLE}> <@&{ADMIN_ROLE}> <@&123456> api is down @everyone")
    );

    // A reply to a message that does not exist: Discord's form error, which is no violation
    // (a person may delete the message first); or a plain message when told not to fail.
    let missing =
        post(json!({"content": "x", "message_reference": {"message_id": "123456"}})).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.body,
        json!({"message": "Invalid Form Body", "code": 50035, "errors": {"message_reference": {
            "_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}],
        }}})
    );
    let plain = post(json!({
        "content": "x",
        "message_reference": {"message_id": "123456", "fail_if_not_exists": false},
    }))
    .await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body["type"], 0);
    assert!(
        plain.body.get("message_reference").is_none(),
        "{}",
        plain.body
    );
    assert_violations(&fake, &[]);

    // What Discord would reject.
    let too_many: Vec<String> = (0..101).map(|i| (200_000 + i).to_string()).collect();
    for body in [
        json!({"content": "x", "message_reference": {"message_id": alert_id, "channel_id": CHANNEL_ID.to_string()}}),
        json!({"content": "x", "message_reference": {"message_id": 5}}),
        json!({"content": "x", "message_reference": {"fail_if_not_exists": true}}),
        json!({"content": "x", "allowed_mentions": {"parse": ["roles"], "roles": [OPS_ROLE.to_string()]}}),
        json!({"content": "x", "allowed_mentions": {"parse": ["admins"]}}),
        json!({"content": "x", "allowed_mentions": {"roles": [OPS_ROLE]}}),
        json!({"content": "x", "allowed_mentions": {"users": too_many}}),
    ] {
        let answer = post(body.clone()).await;
        assert_eq!(
            (answer.status, &answer.body["code"]),
            (400, &json!(50035)),
            "{body}"
        );
    }
    assert_violations(
        &fake,
        &[
            "a reply stays in its channel",
            "message_reference.message_id: 5 is not a snowflake string",
            "message_reference.message_id is required",
            "parse has \"roles\" and roles lists ids",
            "allowed_mentions.parse: \"admins\" is not one of",
            &format!("allowed_mentions.roles: {OPS_ROLE} is not a snowflake string"),
            "allowed_mentions.users has 101 ids (max 100)",
        ],
    );
    // Rejected requests created nothing.
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_views_follow_creation_edits_and_deletion() {
    let fake = FakeDiscord::start().await;
    let api = std::sync::Arc::new(Api::new(&fake));

    // The bot posts and edits in the background; the test waits on the fake.
    let poster = std::sync::Arc::clone(&api);
    let posting = tokio::spawn(async move {
        let first = poster.post(ROUTE_CHANNEL_ID, "first").await;
        poster.post(ALERT_CHANNEL_ID, "elsewhere").await;
        poster.post(ROUTE_CHANNEL_ID, "second").await;
        for content in ["first, edited", "first, edited again"] {
            let answer = poster
                .bot(
                    reqwest::Method::PATCH,
                    &format!("{}/{first}", messages_path(ROUTE_CHANNEL_ID)),
                    Some(json!({"content": content})),
                )
                .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
        first
    });
    let messages = fake.wait_for_messages(ROUTE_CHANNEL_ID, 2).await;
    let first = fake_discord::snowflake(&messages[0]["id"]).unwrap();
    let history = fake.wait_for_edits(first, 2).await;
    assert_eq!(posting.await.unwrap(), first);
    let contents: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["first", "first, edited", "first, edited again"]);
    assert!(history[0]["edited_timestamp"].is_null());
    assert!(history[2]["edited_timestamp"].is_string());
    let route: Vec<Value> = fake.channel_messages(ROUTE_CHANNEL_ID);
    let contents: Vec<&str> = route
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["first, edited again", "second"]);

    // A message reached through another channel's route is unknown.
    let wrong = api
        .bot(
            reqwest::Method::GET,
            &format!("{}/{first}", messages_path(ALERT_CHANNEL_ID)),
            None,
        )
        .await;
    assert_eq!(wrong.status, 404);

    // A person deletes the alert: editing it or replying to it fails as on Discord.
    fake.delete_message(first);
    let unknown_message = json!({"code": 10008, "message": "Unknown Message"});
    let edit = api
        .bot(
            reqwest::Method::PATCH,
            &format!("{}/{first}", messages_path(ROUTE_CHANNEL_ID)),
            Some(json!({"content": "recovered"})),
        )
        .await;
    assert_eq!((edit.status, &edit.body), (404, &unknown_message));
    let reply = api
        .bot(
            reqwest::Method::POST,
            &messages_path(ROUTE_CHANNEL_ID),
            Some(json!({"content": "recovered", "message_reference": {"message_id": first.to_string()}})),
        )
        .await;
    assert_eq!((reply.status, &reply.body["code"]), (400, &json!(50035)));
    let contents: Vec<Value> = fake
        .channel_messages(ROUTE_CHANNEL_ID)
        .iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(contents, vec![json!("second")]);
    // The history outlives the message; the failed PATCH added nothing to it.
    assert_eq!(fake.message_history(first).len(), 3);
    assert!(fake.message(first).is_none());
    assert_violations(&fake, &[]);
}

#[tokio::test]
async fn incoming_webhooks_execute_with_and_without_wait_and_edit_their_messages() {
    use reqwest::Method;
    let fake = FakeDiscord::start().await;
    let api = Api::new(&fake);
    let url = fake.create_webhook(ALERT_CHANNEL_ID);
    let prefix = format!("{}/api/v10/webhooks/", fake.api_base());
    let webhook_id: u64 = url
        .strip_prefix(&prefix)
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{url} is not a webhook URL under {prefix}"));

    // Without wait: 204 and no body, and the message exists, authored by the webhook.
    let executed = api
        .webhook(
            Method::POST,
            &url,
            Some(json!({"content": "api is down", "username": "patchbay"})),
        )
        .await;
    assert_eq!((executed.status, &executed.body), (204, &Value::Null));
    let first = fake.wait_for_messages(ALERT_CHANNEL_ID, 1).await.remove(0);
    assert_eq!(first["webhook_id"], webhook_id.to_string());
    assert_eq!(first["author"]["id"], webhook_id.to_string());
    assert_eq!(first["author"]["username"], "patchbay");
    assert!(first.get("application_id").is_none(), "{first}");
    let recorded = fake.attempts("POST", &url);
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].status, recorded[0].query.as_deref()),
        (Some(204), None)
    );

    // With wait=true: the message, which serenity parses.
    let waited = api
        .webhook(
            Method::POST,
            &format!("{url}?wait=true"),
            Some(json!({"content": "api is up", "embeds": [{"title": "api", "color": 3_066_993}]})),
        )
        .await;
    assert_eq!(waited.status, 200, "{}", waited.body);
    let message: serenity::all::Message = serde_json::from_value(waited.body.clone()).unwrap();
    assert_eq!(
        message.webhook_id.map(serenity::all::WebhookId::get),
        Some(webhook_id)
    );
    assert_eq!(message.author.name, "Captain Hook");
    let message_url = format!("{url}/messages/{}", message.id);

    // Edit it, read it back, and see both versions.
    let edited = api
        .webhook(
            Method::PATCH,
            &message_url,
            Some(json!({"content": "api is up (after 3 min)"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["content"], "api is up (after 3 min)");
    assert_eq!(edited.body["embeds"][0]["title"], "api");
    let fetched = api.webhook(Method::GET, &message_url, None).await;
    assert_eq!(fetched.body["content"], "api is up (after 3 min)");
    let versions: Vec<Value> = fake
        .message_history(message.id.get())
        .iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(
        versions,
        vec![json!("api is up"), json!("api is up (after 3 min)")]
    );

    // Only the webhook's own messages are reachable through it.
    let unknown_message = json!({"code": 10008, "message": "Unknown Message"});
    let bots = api.post(ALERT_CHANNEL_ID, "from the bot").await;
    for method in [Method::GET, Method::PATCH] {
        let answer = api
            .webhook(
                method,
                &format!("{url}/messages/{bots}"),
                Some(json!({"content": "x"})),
            )
            .await;
        assert_eq!((answer.status, &answer.body), (404, &unknown_message));
    }
    // And the bot cannot edit the webhook's message through the channel route.
    let foreign = api
        .bot(
            Method::PATCH,
            &format!("{}/{}", messages_path(ALERT_CHANNEL_ID), message.id),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(
        (foreign.status, &foreign.body["code"]),
        (403, &json!(50005))
    );

    // Components: a plain webhook keeps link buttons only, and only with with_components=true.
    let link = json!([{"type": 1, "components": [
        {"type": 2, "style": 5, "label": "Open", "url": "https://example.invalid/"},
    ]}]);
    let button = json!([{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Ack", "custom_id": "ack:1"},
    ]}]);
    for (query, components, kept) in [
        ("wait=true&with_components=true", &link, 1),
        ("wait=true", &link, 0),
        ("wait=true&with_components=true", &button, 0),
    ] {
        let answer = api
            .webhook(
                Method::POST,
                &format!("{url}?{query}"),
                Some(json!({"content": "c", "components": components})),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.body["components"].as_array().map(Vec::len),
            Some(kept),
            "{query} {components}"
        );
    }

    // Rejected: a wrong token, a name Discord refuses, too long a content, a bad wait value.
    let wrong_token = url.replace("/wtoken-", "/wrong-");
    let answer = api
        .webhook(Method::POST, &wrong_token, Some(json!({"content": "x"})))
        .await;
    assert_eq!(
        (answer.status, &answer.body),
        (
            401,
            &json!({"code": 50027, "message": "Invalid Webhook Token"})
        )
    );
    for (query, body) in [
        ("", json!({"content": "x", "username": "Discord alerts"})),
        ("", json!({"content": "x".repeat(2001)})),
        ("?wait=maybe", json!({"content": "x"})),
    ] {
        let answer = api
            .webhook(Method::POST, &format!("{url}{query}"), Some(body))
            .await;
        assert_eq!((answer.status, &answer.body["code"]), (400, &json!(50035)));
    }

    // Deleted through the webhook, the message is gone.
    let deleted = api.webhook(Method::DELETE, &message_url, None).await;
    assert_eq!(deleted.status, 204);
    let gone = api.webhook(Method::GET, &message_url, None).await;
    assert_eq!((gone.status, &gone.body), (404, &unknown_message));

    // Interaction webhooks are still told apart: an unknown interaction token is 10015.
    let interaction = api
        .webhook(
            Method::POST,
            &format!(
                "{}/api/v10/webhooks/{APP_ID}/no-such-token",
                fake.api_base()
            ),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(
        (interaction.status, &interaction.body["code"]),
        (404, &json!(10015))
    );

    assert_violations(
        &fake,
        &[
            "the bot cannot edit a message someone else (a webhook) sent",
            "components on a webhook message are dropped unless the URL has ?with_components=true",
            "cannot send interactive components",
            "wrong webhook token",
            "contains \"discord\" or \"clyde\"",
            "content is 2001 characters (max 2000)",
            "query wait=\"maybe\" is not a boolean",
            "unknown webhook (application id or interaction token)",
        ],
    );
}

#[tokio::test]
async fn an_injected_429_answers_like_discord_and_a_patient_client_gets_through() {
    let fake = FakeDiscord::start().await;
    let api = Api::new(&fake);
    let path = messages_path(ALERT_CHANNEL_ID);
    fake.inject(
        Fault::RateLimited {
            retry_after: 0.2,
            global: false,
        },
        "POST",
        &path,
        2,
    );
    let post = |channel: u64| api.create(channel, json!({"content": "api is down"}));

    let unix_now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let before = unix_now();
    let limited = post(ALERT_CHANNEL_ID).await;
    let after = unix_now();
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.body,
        json!({"message": "You are being rate limited.", "retry_after": 0.2, "global": false})
    );
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(limited.header("x-ratelimit-reset-after"), Some("0.200"));
    assert_eq!(limited.header("x-ratelimit-scope"), Some("user"));
    assert_eq!(limited.header("x-ratelimit-global"), None);
    let bucket = limited.header("x-ratelimit-bucket").unwrap().to_string();
    assert!(!bucket.is_empty());
    // The reset is a Unix time 0.2 s after the answer (to the millisecond).
    let reset: f64 = limited
        .header("x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reset >= before + 0.199 && reset <= after + 0.201,
        "reset {reset}, asked at {before}, answered by {after}"
    );

    // The limit is per route: another channel answers at once.
    assert_eq!(post(ROUTE_CHANNEL_ID).await.status, 200);

    // A client that waits out retry_after (the wait is the behaviour under test, not
    // synchronisation) meets the second 429, then gets through.
    let mut statuses = vec![limited.status];
    let mut wait = limited.body["retry_after"].as_f64().unwrap();
    loop {
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        let answer = post(ALERT_CHANNEL_ID).await;
        statuses.push(answer.status);
        if answer.status != 429 {
            break;
        }
        assert_eq!(answer.header("x-ratelimit-bucket"), Some(bucket.as_str()));
        wait = answer.body["retry_after"].as_f64().unwrap();
    }
    assert_eq!(statuses, [429, 429, 200]);

    let attempts = fake.attempts("POST", &path);
    let answered: Vec<Option<u16>> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(answered, [Some(429), Some(429), Some(200)]);
    for pair in attempts.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(200), "retried after {gap:?}");
    }
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 1);
    assert_violations(&fake, &[]);
}

#[tokio::test]
async fn a_request_inside_the_retry_after_window_is_a_violation() {
    let fake = FakeDiscord::start().await;
    let api = Api::new(&fake);
    let post = |channel: u64| api.create(channel, json!({"content": "api is down"}));
    fake.inject(
        Fault::RateLimited {
            retry_after: 30.0,
            global: false,
        },
        "POST",
        &messages_path(ALERT_CHANNEL_ID),
        1,
    );
    assert_eq!(post(ALERT_CHANNEL_ID).await.status, 429);
    assert_violations(&fake, &[]);

    // Retrying at once: 429 again, with what is left of the wait, and a violation.
    let again = post(ALERT_CHANNEL_ID).await;
    assert_eq!(again.status, 429);
    // What is left of the wait, rounded up to the millisecond (never less than required).
    let left = again.body["retry_after"].as_f64().unwrap();
    assert!(left > 25.0 && left <= 30.0, "{left}");
    assert_eq!(again.header("retry-after"), Some("30"));
    assert_violations(&fake, &["(retry_after ignored)"]);
    // Another route is not limited.
    assert_eq!(post(ROUTE_CHANNEL_ID).await.status, 200);

    // A global 429 limits every route.
    fake.inject(
        Fault::RateLimited {
            retry_after: 30.0,
            global: true,
        },
        "GET",
        "/users/@me",
        1,
    );
    let global = api.bot(reqwest::Method::GET, "/users/@me", None).await;
    assert_eq!(global.status, 429);
    assert_eq!(global.body["global"], true);
    assert_eq!(global.header("x-ratelimit-global"), Some("true"));
    assert_eq!(global.header("x-ratelimit-scope"), Some("global"));
    let elsewhere = post(ROUTE_CHANNEL_ID).await;
    assert_eq!(
        (elsewhere.status, &elsewhere.body["global"]),
        (429, &json!(true))
    );
    let violations = fake.violations();
    assert_eq!(violations.len(), 2, "{violations:#?}");
    assert!(
        violations[1].contains(&format!(
            "POST /api/v10/channels/{ROUTE_CHANNEL_ID}/messages"
        )) && violations[1].contains("a global 429"),
        "{violations:#?}"
    );
    let statuses: Vec<Option<u16>> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(429), Some(429), Some(200), Some(429), Some(429)]
    );
}

#[tokio::test]
async fn injected_server_errors_are_answered_then_the_route_recovers() {
    let fake = FakeDiscord::start().await;
    let api = Api::new(&fake);
    let path = messages_path(ALERT_CHANNEL_ID);
    fake.inject(Fault::Server(500), "POST", &path, 3);
    let url = fake.create_webhook(ALERT_CHANNEL_ID);
    fake.inject(Fault::Server(503), "POST", &url, 1);

    let mut statuses = Vec::new();
    for _ in 0..4 {
        let answer = api
            .bot(
                reqwest::Method::POST,
                &path,
                Some(json!({"content": "api is down"})),
            )
            .await;
        if answer.status == 500 {
            assert_eq!(
                answer.body,
                json!({"message": "500: Internal Server Error", "code": 0})
            );
        }
        statuses.push(answer.status);
    }
    assert_eq!(statuses, [500, 500, 500, 200]);
    let hooked = api
        .webhook(reqwest::Method::POST, &url, Some(json!({"content": "x"})))
        .await;
    assert_eq!(
        (hooked.status, &hooked.body),
        (
            503,
            &json!({"message": "503: Service Unavailable", "code": 0})
        )
    );
    let attempts: Vec<Option<u16>> = fake
        .wait_for_attempts("POST", &path, 4)
        .await
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(attempts, [Some(500), Some(500), Some(500), Some(200)]);
    // Faulted requests created nothing, and a server error is not the bot's fault.
    assert_eq!(fake.channel_messages(ALERT_CHANNEL_ID).len(), 1);
    assert_violations(&fake, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_request_waits_for_the_client_to_give_up_or_the_fake_to_go() {
    let fake = FakeDiscord::start().await;
    let path = messages_path(ALERT_CHANNEL_ID);
    let url = format!("{}/api/v10{path}", fake.api_base());
    fake.inject(Fault::Hang, "POST", &path, 2);
    let request = |client: &reqwest::Client| {
        client
            .post(url.clone())
            .header("authorization", "Bot fake-token")
            .json(&json!({"content": "api is down"}))
            .send()
    };

    // A client with a timeout gives up.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = request(&impatient).await.expect_err("no answer comes");
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A client without one waits until the fake is dropped.
    let patient = reqwest::Client::new();
    let waiting = tokio::spawn(request(&patient));
    let hung = fake.wait_for_attempts("POST", &path, 2).await;
    assert_eq!(
        hung.iter().map(|a| a.status).collect::<Vec<_>>(),
        [None, None]
    );
    // The faults are used up, so the route answers again.
    let answered = request(&impatient).await.unwrap();
    assert_eq!(answered.status().as_u16(), 200);
    assert!(!waiting.is_finished());
    assert_violations(&fake, &[]);
    drop(fake);
    let ended = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("dropping the fake ends the hung request")
        .unwrap();
    // The fake answers 503 as it goes, or the connection closes first.
    if let Ok(response) = ended {
        assert_eq!(response.status().as_u16(), 503);
    }
}

#[tokio::test]
async fn command_option_bounds_are_checked_against_the_spec() {
    let fake = FakeDiscord::start().await;
    let api = Api::new(&fake);
    let path = format!("/applications/{APP_ID}/guilds/{GUILD_ID}/commands");
    let command =
        |options: Value| json!([{ "name": "audit", "description": "Audit", "options": options }]);
    // What poise sends: integer bounds written as 1.0, a string's max_length.
    let good = command(json!([
        { "type": 4, "name": "limit", "description": "How many", "min_value": 1.0, "max_value": 25.0 },
        { "type": 4, "name": "incident", "description": "Which", "min_value": 1, "max_value": 9_007_199_254_740_991.0_f64 },
        { "type": 10, "name": "ratio", "description": "How much", "min_value": 0.5 },
        { "type": 3, "name": "command", "description": "Which", "min_length": 0, "max_length": 32 },
    ]));
    let answer = api.bot(reqwest::Method::PUT, &path, Some(good)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_violations(&fake, &[]);

    let bad = command(json!([
        { "type": 4, "name": "a", "description": "x", "min_value": 1.5 },
        { "type": 4, "name": "b", "description": "x", "max_value": "25" },
        { "type": 4, "name": "c", "description": "x", "min_value": 5, "max_value": 1 },
        { "type": 3, "name": "d", "description": "x", "max_length": 0 },
        { "type": 3, "name": "e", "description": "x", "max_length": 6001 },
        { "type": 3, "name": "f", "description": "x", "min_length": 10, "max_length": 5 },
        { "type": 3, "name": "g", "description": "x", "min_value": 1 },
        { "type": 4, "name": "h", "description": "x", "max_length": 10 },
    ]));
    let answer = api.bot(reqwest::Method::PUT, &path, Some(bad)).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["code"], 50035);
    assert_violations(
        &fake,
        &[
            "option \"a\": min_value 1.5 is not a valid bound for type 4",
            "option \"b\": max_value \"25\" is not a valid bound for type 4",
            "option \"c\": min_value 5 is above max_value 1",
            "option \"d\": max_length must be 1-6000, got 0",
            "option \"e\": max_length must be 1-6000, got 6001",
            "option \"f\": min_length 10 is above max_length 5",
            "option \"g\": type 3 takes no min_value",
            "option \"h\": type 4 takes no max_length",
        ],
    );
}

/// The bot holds its own managed role in the guild; a channel overwrite that denies it Send
/// Messages shows in `GET /channels/{id}`, serenity computes the permission from it as Discord
/// would, and a post there is refused as Discord refuses it. A reset token makes every call 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_overwrites_and_a_reset_token_answer_like_discord() {
    let fake = FakeDiscord::start().await;
    let http = HttpBuilder::new("fake-token")
        .proxy(fake.api_base())
        .ratelimiter_disabled(true)
        .build();
    let guild = http.get_guild(GuildId::new(GUILD_ID)).await.unwrap();
    let bot = http
        .get_member(GuildId::new(GUILD_ID), UserId::new(BOT_USER_ID))
        .await
        .unwrap();
    assert_eq!(bot.roles, vec![RoleId::new(fake_discord::BOT_ROLE)]);
    assert!(guild.roles[&RoleId::new(fake_discord::BOT_ROLE)].managed);
    let channel = |id| {
        let http = &http;
        async move {
            http.get_channel(serenity::all::ChannelId::new(id))
                .await
                .unwrap()
                .guild()
                .unwrap()
        }
    };
    let open = guild.user_permissions_in(&channel(ALERT_CHANNEL_ID).await, &bot);
    assert!(open.contains(Permissions::SEND_MESSAGES | Permissions::EMBED_LINKS));

    fake.deny_bot(ALERT_CHANNEL_ID, Permissions::SEND_MESSAGES.bits());
    let muted = channel(ALERT_CHANNEL_ID).await;
    assert_eq!(muted.permission_overwrites.len(), 1);
    let held = guild.user_permissions_in(&muted, &bot);
    assert!(!held.contains(Permissions::SEND_MESSAGES), "{held:?}");
    assert!(held.contains(Permissions::EMBED_LINKS), "{held:?}");
    let refused = serenity::all::ChannelId::new(ALERT_CHANNEL_ID)
        .say(&http, "hello")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("Missing Permissions"),
        "{refused}"
    );
    // Other channels are untouched.
    serenity::all::ChannelId::new(CHANNEL_ID)
        .say(&http, "hello")
        .await
        .unwrap();

    fake.reset_token();
    let unauthorized = http.get_current_user().await.unwrap_err();
    assert!(unauthorized.to_string().contains("401"), "{unauthorized}");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}
