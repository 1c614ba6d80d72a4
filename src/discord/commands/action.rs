//! `/action run|list`, the confirm / cancel / approve / reject buttons, the parameters modal, and
//! the approval messages. Everything a request needs lives in the database and in the
//! `custom_id`s (`pb:act:confirm:<request>`), so buttons keep working after a restart; the
//! approval messages are reconciled from the database ([`run_approvals`]), so a decision or an
//! expiry that happened while Discord was away is still shown.

use std::sync::Arc;

use poise::serenity_prelude as serenity;
use tokio_util::sync::CancellationToken;

use crate::access::{Caller, Permission};
use crate::actions::ParamInput;
use crate::audit::{InvocationOption, OptionValue};
use crate::discord::commands::Gate;
use crate::discord::custom_id::Press;
use crate::discord::render::actions::MODAL_PARAMS;
use crate::discord::render::{self, Reply};
use crate::discord::{Context, invocation, member_of, respond, snowflake};
use crate::model::Actor;
use crate::service::{ActionRequest, CommandError, ControlPlane, Invocation};
use crate::store::actions::{ActionRun, ActionState};
use serenity::Builder as _;

/// Autocompletes the names of the actions this member may run, with their descriptions.
async fn action_names(ctx: Context<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    let plane = &ctx.data().plane;
    let invocation = invocation(ctx);
    let found = plane.suggest_actions(&invocation.caller, &invocation.actor, partial, 25);
    render::action_choices(found)
}

/// Retool workflow actions: run one, list yours.
#[poise::command(slash_command, subcommands("run", "list"), subcommand_required)]
pub async fn action(_ctx: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// Run an action: parameters from `args` (name=value …) or from a form.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::ActionRun))]
pub async fn run(
    ctx: Context<'_>,
    #[description = "The action"]
    #[autocomplete = "action_names"]
    #[max_length = 64]
    name: String,
    #[description = "Parameters as name=value, quoting values with spaces: reason=\"deploy stuck\""]
    #[max_length = 1000]
    args: Option<String>,
) -> Result<(), CommandError> {
    let poise::Context::Application(app) = ctx else {
        return Ok(());
    };
    let plane = ctx.data().plane.clone();
    let mut invocation = invocation(ctx);
    // Without args, an action with parameters asks for them in a form; its submission is the
    // request (audited then). Refusals (no permission, unknown action) are answered now.
    if args.is_none() {
        let form = plane
            .invoke(&invocation, || async {
                plane.action_for(&name, &invocation.caller, &invocation.actor)
            })
            .await;
        match form {
            Ok(action) if !action.params.is_empty() && action.params.len() <= MODAL_PARAMS => {
                let modal =
                    serenity::CreateInteractionResponse::Modal(render::params_modal(&action));
                app.interaction.create_response(ctx.http(), modal).await?;
                return Ok(());
            }
            Ok(_) => {}
            Err(err) => return respond(ctx, Err(err)).await,
        }
    }
    let request_id = ControlPlane::new_request_id();
    invocation.options.push(request_option(&request_id));
    let request = ActionRequest {
        request_id,
        action: name.clone(),
        input: ParamInput::Args(args.unwrap_or_default()),
        confirmable: true,
    };
    let asked = plane
        .invoke(&invocation, || plane.request_action(&invocation, request))
        .await;
    let http = ctx.serenity_context().http.clone();
    follow_up(&http, &plane, asked, Answer::Command(app.interaction)).await;
    Ok(())
}

/// The actions you may run, with their parameters, cooldowns and last runs.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::ActionRun))]
pub async fn list(ctx: Context<'_>) -> Result<(), CommandError> {
    let plane = &ctx.data().plane;
    let invocation = invocation(ctx);
    let answer = plane
        .invoke(&invocation, || async {
            Ok(render::action_list(
                &plane
                    .list_actions(&invocation.caller, &invocation.actor, true)
                    .await?,
            ))
        })
        .await;
    respond(ctx, answer).await
}

/// The audit option naming a request.
fn request_option(request_id: &str) -> InvocationOption {
    InvocationOption::new("request", OptionValue::Text(request_id.to_string()))
}

/// The interaction a request step answers: the command, the submitted form, or a button.
#[derive(Clone, Copy)]
pub(crate) enum Answer<'a> {
    /// `/action run`.
    Command(&'a serenity::CommandInteraction),
    /// The parameters form.
    Modal(&'a serenity::ModalInteraction),
    /// A confirm button (the answer replaces the pressed message).
    Press(&'a serenity::ComponentInteraction),
}

impl Answer<'_> {
    async fn create(
        self,
        http: &serenity::Http,
        response: serenity::CreateInteractionResponse,
    ) -> serenity::Result<()> {
        match self {
            Answer::Command(i) => i.create_response(http, response).await,
            Answer::Modal(i) => i.create_response(http, response).await,
            Answer::Press(i) => i.create_response(http, response).await,
        }
    }

    fn token(self) -> String {
        match self {
            Answer::Command(i) => i.token.clone(),
            Answer::Modal(i) => i.token.clone(),
            Answer::Press(i) => i.token.clone(),
        }
    }

    /// A message answer, or (for a button) the pressed message replaced.
    fn message(self, reply: Reply) -> serenity::CreateInteractionResponse {
        match self {
            Answer::Press(_) => serenity::CreateInteractionResponse::UpdateMessage(
                reply.components(Vec::new()).into_response(),
            ),
            _ => serenity::CreateInteractionResponse::Message(reply.into_response()),
        }
    }

    /// A deferral: "thinking" for a command or form, a loading state for a button.
    fn defer(self) -> serenity::CreateInteractionResponse {
        match self {
            Answer::Press(_) => serenity::CreateInteractionResponse::Acknowledge,
            _ => serenity::CreateInteractionResponse::Defer(
                serenity::CreateInteractionResponseMessage::new(),
            ),
        }
    }
}

/// Answers a request as it stands: the confirmation (with its expiry), "sent for approval", or
/// (ready) the run itself, deferred and then edited with its outcome. Errors are answered
/// ephemerally.
pub(crate) async fn follow_up(
    http: &Arc<serenity::Http>,
    plane: &Arc<ControlPlane>,
    asked: Result<ActionRun, CommandError>,
    answer: Answer<'_>,
) {
    let sent = match asked {
        Err(err) => {
            let reply = Reply::error(&err);
            let response = match answer {
                Answer::Press(_) => {
                    serenity::CreateInteractionResponse::Message(reply.into_response())
                }
                _ => answer.message(reply),
            };
            answer.create(http, response).await
        }
        Ok(run) if run.state == ActionState::Confirming => {
            let sent = answer
                .create(http, answer.message(render::confirm_prompt(&run)))
                .await;
            tokio::spawn(expire_confirmation(
                http.clone(),
                plane.clone(),
                answer.token(),
                run,
            ));
            sent
        }
        Ok(run) if run.state == ActionState::AwaitingApproval => {
            answer
                .create(http, answer.message(render::sent_for_approval(&run)))
                .await
        }
        Ok(run) if run.state == ActionState::Ready => {
            if let Err(err) = answer.create(http, answer.defer()).await {
                tracing::warn!(error = %err, "could not defer an action's answer");
            }
            let reply = match plane.execute_action(&run.request_id).await {
                Ok(done) => render::action_outcome(&done),
                Err(CommandError::ActionFailed(done)) => render::action_outcome(&done),
                Err(err) => Reply::error(&err).components(Vec::new()),
            };
            reply
                .into_edit()
                .execute(http, &answer.token())
                .await
                .map(|_| ())
        }
        Ok(run) => {
            answer
                .create(
                    http,
                    answer.message(Reply::text(render::action_outcome_text(&run)).ephemeral(true)),
                )
                .await
        }
    };
    if let Err(err) = sent {
        tracing::warn!(error = %err, "could not answer an action request");
    }
}

/// When the confirmation lapses unanswered, expires the request and says so in its message.
async fn expire_confirmation(
    http: Arc<serenity::Http>,
    plane: Arc<ControlPlane>,
    token: String,
    run: ActionRun,
) {
    let Some(deadline) = run.expires_at else {
        return;
    };
    let wait = (deadline - crate::model::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    // The plane's own timer may have expired it a moment earlier: either way, a request that
    // ended expired says so in its message.
    let expired = match plane.expire_action(&run.request_id).await {
        Ok(Some(expired)) => expired,
        Ok(None) => match plane.action_request(&run.request_id).await {
            Ok(now) if now.state == ActionState::Expired => now,
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(error = %err, "could not read an expiring confirmation");
                return;
            }
        },
        Err(err) => {
            tracing::warn!(error = %err, "could not expire a confirmation");
            return;
        }
    };
    let reply = Reply::text(render::action_outcome_text(&expired)).components(Vec::new());
    if let Err(err) = reply.into_edit().execute(&http, &token).await {
        tracing::warn!(error = %err, "could not mark a confirmation expired");
    }
}

/// A press of Confirm, Cancel, Approve or Reject, already checked by the invocation's
/// permission (`action.run` to confirm or cancel, `action.approve` to decide).
pub(crate) async fn on_press(
    http: &Arc<serenity::Http>,
    plane: &Arc<ControlPlane>,
    press: &serenity::ComponentInteraction,
    what: Press,
    invocation: &Invocation,
) {
    match &what {
        Press::ActionConfirm(request) | Press::ActionCancel(request) => {
            let confirm = matches!(what, Press::ActionConfirm(_));
            let asked = plane
                .invoke(invocation, || {
                    plane.confirm_action(invocation, request, confirm)
                })
                .await;
            follow_up(http, plane, asked, Answer::Press(press)).await;
        }
        Press::ActionApprove(request) | Press::ActionReject(request) => {
            let approve = matches!(what, Press::ActionApprove(_));
            let decided = plane
                .invoke(invocation, || {
                    plane.decide_action(invocation, request, approve)
                })
                .await;
            let reply = match &decided {
                Ok(run) if approve => Reply::text(format!(
                    "✅ You approved `{}` (request `{}`): it runs now, and its outcome shows on the request.",
                    run.action, run.request_id
                )),
                Ok(run) => Reply::text(format!(
                    "🚫 You rejected `{}` (request `{}`): nothing runs.",
                    run.action, run.request_id
                )),
                Err(err) => Reply::error(err),
            };
            let response =
                serenity::CreateInteractionResponse::Message(reply.ephemeral(true).into_response());
            if let Err(err) = press.create_response(http, response).await {
                tracing::warn!(error = %err, "could not answer an approval");
            }
            if let (Ok(run), true) = (decided, approve) {
                let plane = plane.clone();
                tokio::spawn(async move {
                    // The outcome reaches the approval message through the reconciler.
                    if let Err(err) = plane.execute_action(&run.request_id).await {
                        tracing::info!(error = %err, request = %run.request_id, "an approved action did not succeed");
                    }
                });
            }
        }
        _ => {}
    }
}

/// The parameters form of an action was submitted: the request, as `/action run` with `args`.
pub(crate) async fn on_form(
    http: &Arc<serenity::Http>,
    plane: &Arc<ControlPlane>,
    form: &serenity::ModalInteraction,
    action: String,
    mut invocation: Invocation,
) {
    let fields: Vec<(String, String)> = form
        .data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .filter_map(|component| match component {
            serenity::ActionRowComponent::InputText(input) => Some((
                input.custom_id.clone(),
                input.value.clone().unwrap_or_default(),
            )),
            _ => None,
        })
        .collect();
    let request_id = ControlPlane::new_request_id();
    invocation.options.push(request_option(&request_id));
    for (name, value) in &fields {
        invocation.options.push(InvocationOption::new(
            name.clone(),
            OptionValue::Text(value.clone()),
        ));
    }
    let request = ActionRequest {
        request_id,
        action,
        input: ParamInput::Fields(fields),
        confirmable: true,
    };
    let asked = plane
        .invoke(&invocation, || plane.request_action(&invocation, request))
        .await;
    follow_up(http, plane, asked, Answer::Modal(form)).await;
}

/// Posts and edits the approval messages until `stop`: a request waiting for an approval gets
/// its message (in the channel it was asked from, or `[bot].approval_channel` for the REST
/// API), and a message whose request moved on (decided, expired, run) is edited to say so.
/// Driven by the plane's changes, and every 30 s from the database, so nothing is missed while
/// Discord was away.
pub(crate) async fn run_approvals(
    http: Arc<serenity::Http>,
    plane: Arc<ControlPlane>,
    stop: CancellationToken,
) {
    let mut changes = plane.action_changes();
    loop {
        match plane.approval_messages_due().await {
            Ok(due) => {
                for run in due {
                    show_approval(&http, &plane, &run).await;
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not read the approval messages due"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            _ = changes.recv() => {}
            () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
        }
    }
}

async fn show_approval(http: &serenity::Http, plane: &ControlPlane, run: &ActionRun) {
    let reply = render::approval_message(run);
    let placed = if let Some((channel, message)) = run.approval_message {
        serenity::ChannelId::new(channel.0)
            .edit_message(
                http,
                serenity::MessageId::new(message.0),
                reply.into_message_edit(),
            )
            .await
            .map(|_| (channel, message))
    } else {
        let Some(channel) = run.channel.or(plane.config().bot.approval_channel) else {
            tracing::warn!(
                request = %run.request_id,
                "an action request needs an approval but has no channel: set [bot].approval_channel"
            );
            return;
        };
        serenity::ChannelId::new(channel.0)
            .send_message(http, reply.into_channel_message())
            .await
            .map(|message| (channel, snowflake(message.id)))
    };
    match placed {
        Ok(place) => {
            if let Err(err) = plane.approval_message_shown(run, place, run.state).await {
                tracing::warn!(error = %err, "could not record an approval message");
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, request = %run.request_id, "could not post or edit an approval message");
        }
    }
}

/// The caller of a modal submission, as the control plane sees it.
pub(crate) fn form_invocation(
    cache: &serenity::Cache,
    form: &serenity::ModalInteraction,
    action: &str,
) -> Invocation {
    let options = vec![InvocationOption::new(
        "name",
        OptionValue::Text(action.to_string()),
    )];
    Invocation {
        actor: Actor::Discord {
            user: snowflake(form.user.id),
            name: form.user.name.clone(),
        },
        caller: Caller::Member(member_of(
            cache,
            form.guild_id,
            &form.user,
            form.member.as_ref(),
        )),
        channel: Some(snowflake(form.channel_id)),
        command: "action run".into(),
        permission: Gate::named("action run").permission,
        options,
        received: std::time::Instant::now(),
    }
}
