//! The fake Discord (`tests/common/fake_discord.rs`) against a real serenity client: the
//! handshake, the cache filled from GUILD_CREATE, interactions answered through REST, a gateway
//! drop followed by a RESUME, and every payload the fake sends parsed with serenity's own types
//! (a payload serenity cannot parse would otherwise be dropped silently as `Event::Unknown`).

mod common;

use std::time::Duration;

use common::fake_discord::{
    self, ADMIN_ROLE, ADMIN_USER_ID, APP_ID, BOT_USER_ID, CHANNEL_ID, FakeDiscord, FakeMember,
    GUILD_ID, NOBODY_USER_ID, OPS_ROLE, OPS_USER_ID, OWNER_ID, Place, payload,
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
                Err(_) => panic!(
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
    assert_eq!(cached, (OWNER_ID, true, true, 5, 1));
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
    assert_eq!(rest[4], "3 roles");
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
    assert_eq!(guild.guild.roles.len(), 3);
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
            "embeds": [{"title": "down", "color": 15158332, "fields": [{"name": "a", "value": "b", "inline": true}], "footer": {"text": "f"}}],
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

    // A multipart body (a message with a file): the payload_json part is what counts.
    let boundary = "fakeboundary";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"payload_json\"\r\n\r\n\
         {{\"content\":\"with file\",\"attachments\":[{{\"id\":0,\"filename\":\"a.txt\"}}]}}\r\n--{boundary}--\r\n"
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
