//! How `/action` shows a request: the confirmation with its buttons, the approval message, the
//! outcome (the workflow's answer, compact, with the whole body attached when it does not fit),
//! the modal asking for parameters, and `/action list`.

use poise::serenity_prelude as serenity;

use super::{Embed, Reply, actor};
use crate::config::{Action, ActionParam, ParamKind};
use crate::discord::custom_id::Press;
use crate::model::echo;
use crate::service::ActionInfo;
use crate::store::actions::{ActionRun, ActionState};

/// The most of a workflow's answer shown inline; a longer one is attached as a file.
const INLINE_ANSWER: usize = 900;

/// How many parameters a modal asks for (Discord's limit of rows).
pub const MODAL_PARAMS: usize = 5;

const GREEN: u32 = 0x2e_cc71;
const RED: u32 = 0xe7_4c3c;
const GREY: u32 = 0x95_a5a6;
const BLUE: u32 = 0x34_98db;

/// The parameters as `name=value` lines.
fn params_lines(run: &ActionRun) -> String {
    match run.params.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    serde_json::Value::String(text) => echo(text),
                    other => other.to_string(),
                };
                format!("`{name}` = {value}")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => "(none)".into(),
    }
}

/// "Already running" in Discord's words.
pub fn busy_text(run: &ActionRun) -> String {
    format!(
        "⏳ `{}` is already running: {} started it{} (request `{}`); try again when it ends",
        run.action,
        actor(&run.requested_by),
        run.started_at
            .map(|at| format!(" <t:{}:R>", at.timestamp()))
            .unwrap_or_default(),
        run.request_id
    )
}

/// One line saying how a run ended.
pub fn outcome_text(run: &ActionRun) -> String {
    match run.state {
        ActionState::Succeeded => format!(
            "✅ `{}` ran: the workflow answered HTTP {}",
            run.action,
            run.response_status.unwrap_or(200)
        ),
        ActionState::Started => format!(
            "🚀 `{}` started in Retool{}",
            run.action,
            run.retool_run_id
                .as_ref()
                .map(|id| format!(" (run `{id}`)"))
                .unwrap_or_default()
        ),
        ActionState::Failed => format!(
            "❌ `{}` failed: {} (request `{}`)",
            run.action,
            run.error.as_deref().unwrap_or("unknown error"),
            run.request_id
        ),
        ActionState::Refused => format!(
            "⛔ `{}` did not run: {}",
            run.action,
            run.error.as_deref().unwrap_or("refused")
        ),
        ActionState::Cancelled => format!("🚫 `{}` was cancelled; nothing ran", run.action),
        ActionState::Rejected => format!(
            "🚫 `{}` was rejected by {}; nothing ran",
            run.action,
            run.decided_by.as_ref().map_or("someone".into(), actor)
        ),
        ActionState::Expired => format!("⌛ `{}` expired unanswered; nothing ran", run.action),
        ActionState::Running => format!("🔄 `{}` is running…", run.action),
        ActionState::Ready => format!("🔄 `{}` is about to run…", run.action),
        ActionState::Confirming => format!("❔ `{}` waits for your confirmation", run.action),
        ActionState::AwaitingApproval => format!("📨 `{}` waits for an approval", run.action),
    }
}

/// A run's outcome as a reply: the line, the parameters, and the workflow's answer (compact
/// JSON, attached whole as `<request>.json` when longer than fits).
pub fn outcome(run: &ActionRun) -> Reply {
    let colour = match run.state {
        ActionState::Succeeded | ActionState::Started => GREEN,
        ActionState::Failed | ActionState::Refused => RED,
        _ => GREY,
    };
    let mut embed = Embed::new(format!("Action {}", run.action))
        .description(outcome_text(run))
        .colour(colour)
        .field("Parameters", params_lines(run), false)
        .footer(format!("request {}", run.request_id));
    let mut file = None;
    if let Some(body) = &run.response {
        let compact = serde_json::to_string(body).unwrap_or_default();
        if compact.chars().count() <= INLINE_ANSWER {
            embed = embed.field("Answer", format!("```json\n{compact}\n```"), false);
        } else {
            let cut: String = compact.chars().take(INLINE_ANSWER - 100).collect();
            embed = embed.field(
                "Answer",
                format!("```json\n{cut}…\n```(whole answer attached)"),
                false,
            );
            file = Some((
                format!("{}.json", run.request_id),
                serde_json::to_vec_pretty(body).unwrap_or_default(),
            ));
        }
    }
    if let Some(by) = &run.decided_by {
        embed = embed.field("Approved by", actor(by), true);
    }
    let mut reply = Reply::embed(embed).components(Vec::new());
    if let Some((name, bytes)) = file {
        reply = reply.attach(name, bytes);
    }
    reply
}

/// The ephemeral summary the requester confirms or cancels.
pub fn confirm_prompt(run: &ActionRun) -> Reply {
    let deadline = run
        .expires_at
        .map(|at| format!("This expires <t:{}:R>.", at.timestamp()))
        .unwrap_or_default();
    let approval = if run.needs_approval {
        " Once confirmed, a member holding `action.approve` must approve it."
    } else {
        ""
    };
    let embed = Embed::new(format!("Run {}?", run.action))
        .description(format!("{deadline}{approval}"))
        .colour(BLUE)
        .field("Parameters", params_lines(run), false)
        .footer(format!("request {}", run.request_id));
    let buttons = serenity::CreateActionRow::Buttons(vec![
        serenity::CreateButton::new(Press::ActionConfirm(run.request_id.clone()).encode())
            .label("Confirm")
            .style(serenity::ButtonStyle::Danger),
        serenity::CreateButton::new(Press::ActionCancel(run.request_id.clone()).encode())
            .label("Cancel")
            .style(serenity::ButtonStyle::Secondary),
    ]);
    Reply::embed(embed)
        .components(vec![buttons])
        .ephemeral(true)
}

/// What the requester is told once their request waits for an approval.
pub fn sent_for_approval(run: &ActionRun) -> Reply {
    Reply::text(format!(
        "📨 `{}` waits for an approval by a member holding `action.approve` (request `{}`); the request is posted in the channel and expires <t:{}:R>",
        run.action,
        run.request_id,
        run.expires_at.map_or(0, |at| at.timestamp())
    ))
    .components(Vec::new())
    .ephemeral(true)
}

/// The approval message: who asks for what, with Approve / Reject while it waits; afterwards
/// who decided, or that it expired, and the outcome.
pub fn approval_message(run: &ActionRun) -> Reply {
    let mut embed = Embed::new(format!("Approval needed: {}", run.action))
        .field("Requested by", actor(&run.requested_by), true)
        .field("Parameters", params_lines(run), false)
        .footer(format!("request {}", run.request_id));
    let waiting = run.state == ActionState::AwaitingApproval;
    embed = if waiting {
        embed
            .description(format!(
                "A member holding `action.approve`, other than the requester, may approve or reject it. It expires <t:{}:R>.",
                run.expires_at.map_or(0, |at| at.timestamp())
            ))
            .colour(BLUE)
    } else {
        let decided = match (&run.decided_by, run.state) {
            (_, ActionState::Expired) => "⌛ Expired: nobody approved it in time.".to_string(),
            (Some(by), ActionState::Rejected) => format!("🚫 Rejected by {}.", actor(by)),
            (Some(by), _) => format!("✅ Approved by {}.\n{}", actor(by), outcome_text(run)),
            (None, _) => outcome_text(run),
        };
        embed.description(decided).colour(match run.state {
            ActionState::Succeeded | ActionState::Started => GREEN,
            ActionState::Failed | ActionState::Refused | ActionState::Rejected => RED,
            _ => GREY,
        })
    };
    let rows = if waiting {
        vec![serenity::CreateActionRow::Buttons(vec![
            serenity::CreateButton::new(Press::ActionApprove(run.request_id.clone()).encode())
                .label("Approve")
                .style(serenity::ButtonStyle::Success),
            serenity::CreateButton::new(Press::ActionReject(run.request_id.clone()).encode())
                .label("Reject")
                .style(serenity::ButtonStyle::Danger),
        ])]
    } else {
        Vec::new()
    };
    Reply::embed(embed).components(rows)
}

/// What the placeholder of a parameter's field says: its description and what it takes.
fn placeholder(param: &ActionParam) -> String {
    let takes = match &param.kind {
        ParamKind::String { max_len } => format!("text, up to {max_len} characters"),
        ParamKind::Integer { min, max } => match (min, max) {
            (Some(min), Some(max)) => format!("a whole number from {min} to {max}"),
            (Some(min), None) => format!("a whole number, at least {min}"),
            (None, Some(max)) => format!("a whole number, at most {max}"),
            (None, None) => "a whole number".into(),
        },
        ParamKind::Boolean => "true or false".into(),
        ParamKind::Choice { choices } => format!("one of: {}", choices.join(", ")),
    };
    let text = match &param.description {
        Some(description) => format!("{description} ({takes})"),
        None => takes,
    };
    crate::model::shorten(&text, 100)
}

/// The modal asking for `action`'s parameters (at most [`MODAL_PARAMS`]).
pub fn params_modal(action: &Action) -> serenity::CreateModal {
    let rows = action
        .params
        .iter()
        .take(MODAL_PARAMS)
        .map(|param| {
            let (style, max) = match &param.kind {
                ParamKind::String { max_len } if *max_len > 100 => {
                    (serenity::InputTextStyle::Paragraph, (*max_len).min(4000))
                }
                ParamKind::String { max_len } => (serenity::InputTextStyle::Short, *max_len),
                _ => (serenity::InputTextStyle::Short, 100),
            };
            let label = crate::model::shorten(&param.name, 45);
            serenity::CreateActionRow::InputText(
                serenity::CreateInputText::new(style, label, &param.name)
                    .placeholder(placeholder(param))
                    .required(param.required)
                    .max_length(max as u16),
            )
        })
        .collect();
    let title = crate::model::shorten(&format!("Run {}", action.name), 45);
    serenity::CreateModal::new(Press::ActionForm(action.name.clone()).encode(), title)
        .components(rows)
}

/// `/action list`: each action this member may run.
pub fn action_list(actions: &[ActionInfo]) -> Reply {
    if actions.is_empty() {
        return Reply::text(
            "There is no action you may run: actions are [[action]] tables in the config, run by members holding `action.run` (and one of the action's roles, if it names some).",
        )
        .ephemeral(true);
    }
    let mut embed = Embed::new("Actions you may run").colour(BLUE);
    for info in actions.iter().take(25) {
        let mut lines = vec![info.description.clone()];
        if !info.params.is_empty() {
            let params: Vec<String> = info
                .params
                .iter()
                .map(|p| {
                    format!(
                        "`{}`{} ({})",
                        p.name,
                        if p.required { "*" } else { "" },
                        p.kind.name()
                    )
                })
                .collect();
            lines.push(format!("Parameters: {}", params.join(", ")));
        }
        let mut guard = Vec::new();
        if info.confirm {
            guard.push("confirm".to_string());
        }
        if info.approval {
            guard.push("approval".to_string());
        }
        if let Some(cooldown) = info.cooldown_secs {
            guard.push(format!(
                "cooldown {}",
                crate::duration::compact(std::time::Duration::from_secs(cooldown))
            ));
        }
        if !guard.is_empty() {
            lines.push(format!("Needs: {}", guard.join(", ")));
        }
        if let Some(left) = info.cooldown_left_secs {
            lines.push(format!(
                "⏳ cooling down, free <t:{}:R>",
                crate::model::now().timestamp() + left as i64
            ));
        }
        if let Some(run) = &info.running {
            lines.push(format!("🔄 running now, by {}", actor(&run.requested_by)));
        }
        if let Some(run) = &info.last_run {
            let when = run
                .finished_at
                .or(run.started_at)
                .map(|at| format!("<t:{}:R>", at.timestamp()))
                .unwrap_or_default();
            let result = match run.state {
                ActionState::Succeeded => "✅ ok",
                ActionState::Started => "🚀 started",
                ActionState::Failed => "❌ failed",
                _ => "…",
            };
            lines.push(format!(
                "Last run {when} by {}: {result}",
                actor(&run.requested_by)
            ));
        }
        embed = embed.field(info.name.clone(), lines.join("\n"), false);
    }
    Reply::embed(embed).ephemeral(true)
}
