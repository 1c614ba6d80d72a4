//! How answers look in Discord, and the one fitter that keeps every answer within Discord's
//! limits. Commands and buttons compose a [`Reply`] (text, [`Embed`]s, buttons); it becomes a
//! serenity or poise builder only through its `into_*` methods, each of which fits it first:
//! content 2,000 characters, embed title 256, description 4,096, field value 1,024, footer
//! 2,048, 6,000 across a message's embeds, 25 fields, 10 embeds. Discord counts characters, not
//! bytes, and so does everything here. A list that does not fit ends in "… and N more"; one
//! long text is cut at a word and marked `…`. (Alert messages have their own fitter in
//! `courier.rs`, which renders JSON for the outbox's REST client.)

use poise::serenity_prelude as serenity;

use super::custom_id::{CUSTOM_ID_LIMIT, PageButton, Press};
use crate::access::{Allowed, Denied, GrantSource};
use crate::audit::{AuditPage, AuditQuery};
use crate::chart::ChartPeriod;
use crate::duration;
use crate::model::{Actor, State, echo};
use crate::service::{
    Chart, CommandError, GrantChange, GrantChanged, IncidentAcked, Invalid, NoticeSilenced,
    OverviewPage, Silenced, StatusDetail, Unsilenced,
};

/// The one cutting helper, the domain's: answers everywhere cut text the same way.
pub use crate::model::shorten;

pub mod actions;
mod sync;
pub use actions::{
    action_list, approval_message, confirm_prompt, outcome as action_outcome,
    outcome_text as action_outcome_text, params_modal, sent_for_approval,
};
pub use sync::{sync_history, sync_list, sync_progress, sync_report};

/// Discord's limit on a message's content, in characters.
const CONTENT_LIMIT: usize = 2000;
/// Discord's limit on an embed title.
const TITLE_LIMIT: usize = 256;
/// Discord's limit on an embed description.
pub(super) const DESCRIPTION_LIMIT: usize = 4096;
/// Discord's limit on an embed field's name.
const FIELD_NAME_LIMIT: usize = 256;
/// Discord's limit on an embed field's value.
const FIELD_VALUE_LIMIT: usize = 1024;
/// Discord's limit on an embed footer.
const FOOTER_LIMIT: usize = 2048;
/// Discord's limit on the characters of all of a message's embeds together.
pub(super) const EMBEDS_TOTAL_LIMIT: usize = 6000;
/// Discord's limit on fields per embed.
const FIELDS_LIMIT: usize = 25;
/// Discord's limit on embeds per message.
const EMBEDS_LIMIT: usize = 10;
/// Discord's limit on autocomplete choices in one answer.
const CHOICES_LIMIT: usize = 25;
/// Discord's limit on an autocomplete choice's name and value, in characters.
const CHOICE_LIMIT: usize = 100;

/// The length of `text` as Discord counts it: in characters.
fn chars(text: &str) -> usize {
    text.chars().count()
}

/// An embed as patchbay composes it. It is fitted to Discord's limits when its [`Reply`] is
/// turned into a builder, so composing code never counts characters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embed {
    /// The title (none when empty).
    title: String,
    /// The description (none when empty).
    description: String,
    /// The colour of the bar on the left.
    colour: Option<u32>,
    /// Fields: name, value, and whether it sits beside its neighbours.
    fields: Vec<(String, String, bool)>,
    /// The footer (none when empty).
    footer: String,
    /// The time shown beside the footer.
    timestamp: Option<chrono::DateTime<chrono::Utc>>,
    /// The file name of an attachment of the same reply shown as the embed's image.
    image: Option<String>,
}

impl Embed {
    /// An embed with this title.
    pub fn new(title: impl Into<String>) -> Embed {
        Embed {
            title: title.into(),
            ..Embed::default()
        }
    }

    /// Sets the description (a list is best given one item per line: it is fitted by lines).
    pub fn description(mut self, text: impl Into<String>) -> Embed {
        self.description = text.into();
        self
    }

    /// Sets the colour of the bar on the left.
    pub fn colour(mut self, colour: u32) -> Embed {
        self.colour = Some(colour);
        self
    }

    /// Adds a field.
    pub fn field(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        inline: bool,
    ) -> Embed {
        self.fields.push((name.into(), value.into(), inline));
        self
    }

    /// Sets the footer.
    pub fn footer(mut self, text: impl Into<String>) -> Embed {
        self.footer = text.into();
        self
    }

    /// Sets the time shown beside the footer (Discord shows it in each reader's time zone).
    pub fn timestamp(mut self, at: chrono::DateTime<chrono::Utc>) -> Embed {
        self.timestamp = Some(at);
        self
    }

    /// Shows the reply's attachment named `filename` as the embed's image (`attachment://`).
    pub fn image_attachment(mut self, filename: impl Into<String>) -> Embed {
        self.image = Some(filename.into());
        self
    }

    /// The characters Discord counts toward the 6,000 of a message's embeds.
    pub(super) fn size(&self) -> usize {
        chars(&self.title)
            + chars(&self.description)
            + chars(&self.footer)
            + self
                .fields
                .iter()
                .map(|(name, value, _)| chars(name) + chars(value))
                .sum::<usize>()
    }

    /// Each part within its own limit. Discord refuses an empty field name or value, so an
    /// empty one shows a dash.
    fn fit(self) -> Embed {
        let not_empty = |text: String| {
            if text.is_empty() {
                "—".to_string()
            } else {
                text
            }
        };
        Embed {
            title: shorten(&self.title, TITLE_LIMIT),
            description: fit_text(&self.description, DESCRIPTION_LIMIT),
            colour: self.colour,
            fields: self
                .fields
                .into_iter()
                .take(FIELDS_LIMIT)
                .map(|(name, value, inline)| {
                    (
                        shorten(&not_empty(name), FIELD_NAME_LIMIT),
                        fit_text(&not_empty(value), FIELD_VALUE_LIMIT),
                        inline,
                    )
                })
                .collect(),
            footer: shorten(&self.footer, FOOTER_LIMIT),
            timestamp: self.timestamp,
            image: self.image,
        }
    }

    /// serenity's embed, from one already fitted (empty parts are left out).
    fn build(self) -> serenity::CreateEmbed {
        let mut embed = serenity::CreateEmbed::new();
        if !self.title.is_empty() {
            embed = embed.title(self.title);
        }
        if !self.description.is_empty() {
            embed = embed.description(self.description);
        }
        if let Some(colour) = self.colour {
            embed = embed.colour(colour);
        }
        for (name, value, inline) in self.fields {
            embed = embed.field(name, value, inline);
        }
        if !self.footer.is_empty() {
            embed = embed.footer(serenity::CreateEmbedFooter::new(self.footer));
        }
        if let Some(at) = self.timestamp {
            embed = embed.timestamp(at);
        }
        if let Some(filename) = self.image {
            embed = embed.attachment(filename);
        }
        embed
    }
}

/// An embed as the JSON Discord's REST API takes, fitted like every other: what the alert
/// courier sends, which speaks to Discord without serenity's builders.
pub(super) fn embed_json(embed: Embed) -> serde_json::Value {
    let fitted = fit_embeds(vec![embed]).remove(0).build();
    serde_json::to_value(fitted).expect("an embed serializes")
}

/// Every embed within its limits, and all of them within the 6,000 characters of a message.
/// Fields go first (from the last embed), but only while the parts other than descriptions pass
/// the total on their own; then descriptions give way (from the last embed; a list then ends in
/// "… and N more"), which always suffices.
fn fit_embeds(embeds: Vec<Embed>) -> Vec<Embed> {
    let mut embeds: Vec<Embed> = embeds
        .into_iter()
        .take(EMBEDS_LIMIT)
        .map(Embed::fit)
        .collect();
    let total = |embeds: &[Embed]| embeds.iter().map(Embed::size).sum::<usize>();
    let described = |embeds: &[Embed]| embeds.iter().map(|e| chars(&e.description)).sum::<usize>();
    while total(&embeds) - described(&embeds) > EMBEDS_TOTAL_LIMIT {
        match embeds.iter_mut().rev().find(|e| !e.fields.is_empty()) {
            Some(embed) => {
                embed.fields.pop();
            }
            None => {
                embeds.pop();
            }
        }
    }
    for index in (0..embeds.len()).rev() {
        let over = total(&embeds).saturating_sub(EMBEDS_TOTAL_LIMIT);
        if over == 0 {
            break;
        }
        let description = &mut embeds[index].description;
        *description = fit_text(description, chars(description).saturating_sub(over));
    }
    embeds
}

/// `text` within `limit` characters: as it is when it fits; otherwise by lines (see
/// [`fit_lines`]), so a list loses whole items and says how many.
fn fit_text(text: &str, limit: usize) -> String {
    if chars(text) <= limit {
        return text.to_string();
    }
    let lines: Vec<&str> = text.lines().collect();
    fit_lines(&lines, limit)
}

/// What stands for lines left out.
fn more(lines: usize) -> String {
    format!("… and {lines} more")
}

/// Lines joined within `limit` characters: whole lines while they fit, then "… and N more" for
/// the rest, never a line cut in the middle, except a first line too long on its own, which is
/// cut at a word so the answer still says something.
pub(super) fn fit_lines<S: AsRef<str>>(lines: &[S], limit: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for (index, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        let newline = usize::from(index > 0);
        let after = lines.len() - index - 1;
        // Room is kept for the marker of the lines after this one, so it always fits.
        let marker_room = if after > 0 {
            1 + chars(&more(after))
        } else {
            0
        };
        if used + newline + chars(line) + marker_room <= limit {
            if index > 0 {
                out.push('\n');
            }
            out.push_str(line);
            used += newline + chars(line);
            continue;
        }
        let left = lines.len() - index;
        if index > 0 {
            out.push('\n');
            out.push_str(&more(left));
            return out;
        }
        let tail = if after > 0 {
            format!("\n{}", more(after))
        } else {
            String::new()
        };
        let cut = shorten(line, limit.saturating_sub(chars(&tail)));
        return if cut.is_empty() {
            shorten(&more(left), limit)
        } else {
            cut + &tail
        };
    }
    out
}

/// An answer as patchbay composes it: text, embeds, buttons, files, and whether only the member
/// sees it. Every way to send it (`into_*`) fits it to Discord's limits first, which is why the
/// builders are made here and nowhere else.
#[derive(Default)]
pub struct Reply {
    /// The text.
    content: Option<String>,
    /// The embeds, in order.
    embeds: Vec<Embed>,
    /// Rows of buttons; `None` leaves a message's buttons as they are on an edit.
    components: Option<Vec<serenity::CreateActionRow>>,
    /// Files sent with it (a chart), as (file name, bytes).
    files: Vec<(String, Vec<u8>)>,
    /// Whether only the member sees it.
    ephemeral: bool,
}

impl Reply {
    /// A text answer.
    pub fn text(content: impl Into<String>) -> Reply {
        Reply {
            content: Some(content.into()),
            ..Reply::default()
        }
    }

    /// An answer with one embed.
    pub fn embed(embed: Embed) -> Reply {
        Reply {
            embeds: vec![embed],
            ..Reply::default()
        }
    }

    /// An error, as one ephemeral line.
    pub fn error(err: &CommandError) -> Reply {
        Reply::text(error_text(err)).ephemeral(true)
    }

    /// Sets the rows of buttons (an update with none removes the message's buttons).
    pub fn components(mut self, rows: Vec<serenity::CreateActionRow>) -> Reply {
        self.components = Some(rows);
        self
    }

    /// Sends a file with the answer; an embed shows it with [`Embed::image_attachment`].
    pub fn attach(mut self, filename: impl Into<String>, bytes: Vec<u8>) -> Reply {
        self.files.push((filename.into(), bytes));
        self
    }

    /// Whether only the member sees the answer (where Discord allows the choice).
    pub fn ephemeral(mut self, ephemeral: bool) -> Reply {
        self.ephemeral = ephemeral;
        self
    }

    /// The reply within Discord's limits: the text by lines, then each embed and their total.
    fn fit(self) -> Reply {
        Reply {
            content: self.content.map(|text| fit_text(&text, CONTENT_LIMIT)),
            embeds: fit_embeds(self.embeds),
            components: self.components,
            files: self.files,
            ephemeral: self.ephemeral,
        }
    }

    /// serenity's embeds, from embeds already fitted.
    fn built_embeds(embeds: Vec<Embed>) -> Vec<serenity::CreateEmbed> {
        embeds.into_iter().map(Embed::build).collect()
    }

    /// serenity's attachments, from the files.
    fn built_files(files: Vec<(String, Vec<u8>)>) -> Vec<serenity::CreateAttachment> {
        files
            .into_iter()
            .map(|(filename, bytes)| serenity::CreateAttachment::bytes(bytes, filename))
            .collect()
    }

    /// A command's reply (first answer, follow-up or edit: poise decides).
    pub fn into_poise(self) -> poise::CreateReply {
        let Reply {
            content,
            embeds,
            components,
            files,
            ephemeral,
        } = self.fit();
        let mut reply = poise::CreateReply::default()
            .ephemeral(ephemeral)
            .allowed_mentions(no_pings());
        for embed in Reply::built_embeds(embeds) {
            reply = reply.embed(embed);
        }
        for file in Reply::built_files(files) {
            reply = reply.attachment(file);
        }
        if let Some(content) = content {
            reply = reply.content(content);
        }
        if let Some(rows) = components {
            reply = reply.components(rows);
        }
        reply
    }

    /// The first answer to a button press, or the pressed message's update.
    pub fn into_response(self) -> serenity::CreateInteractionResponseMessage {
        let Reply {
            content,
            embeds,
            components,
            files,
            ephemeral,
        } = self.fit();
        let mut message = serenity::CreateInteractionResponseMessage::new()
            .ephemeral(ephemeral)
            .allowed_mentions(no_pings())
            .add_files(Reply::built_files(files));
        if !embeds.is_empty() {
            message = message.embeds(Reply::built_embeds(embeds));
        }
        if let Some(content) = content {
            message = message.content(content);
        }
        if let Some(rows) = components {
            message = message.components(rows);
        }
        message
    }

    /// An edit of a deferred answer.
    pub fn into_edit(self) -> serenity::EditInteractionResponse {
        let Reply {
            content,
            embeds,
            components,
            files,
            ..
        } = self.fit();
        let mut edit = serenity::EditInteractionResponse::new().allowed_mentions(no_pings());
        for file in Reply::built_files(files) {
            edit = edit.new_attachment(file);
        }
        if !embeds.is_empty() {
            edit = edit.embeds(Reply::built_embeds(embeds));
        }
        if let Some(content) = content {
            edit = edit.content(content);
        }
        if let Some(rows) = components {
            edit = edit.components(rows);
        }
        edit
    }

    /// A follow-up message of an interaction.
    pub fn into_followup(self) -> serenity::CreateInteractionResponseFollowup {
        let Reply {
            content,
            embeds,
            components,
            files,
            ephemeral,
        } = self.fit();
        let mut followup = serenity::CreateInteractionResponseFollowup::new()
            .ephemeral(ephemeral)
            .allowed_mentions(no_pings())
            .add_files(Reply::built_files(files));
        if !embeds.is_empty() {
            followup = followup.embeds(Reply::built_embeds(embeds));
        }
        if let Some(content) = content {
            followup = followup.content(content);
        }
        if let Some(rows) = components {
            followup = followup.components(rows);
        }
        followup
    }

    /// An edit of a message patchbay posted (an approval message).
    pub fn into_message_edit(self) -> serenity::EditMessage {
        let Reply {
            content,
            embeds,
            components,
            ..
        } = self.fit();
        let mut edit = serenity::EditMessage::new()
            .allowed_mentions(no_pings())
            .embeds(Reply::built_embeds(embeds));
        if let Some(content) = content {
            edit = edit.content(content);
        }
        if let Some(rows) = components {
            edit = edit.components(rows);
        }
        edit
    }

    /// A message posted in a channel (the audit mirror).
    pub fn into_channel_message(self) -> serenity::CreateMessage {
        let Reply {
            content,
            embeds,
            components,
            files,
            ..
        } = self.fit();
        let mut message = serenity::CreateMessage::new()
            .allowed_mentions(no_pings())
            .add_files(Reply::built_files(files));
        if !embeds.is_empty() {
            message = message.embeds(Reply::built_embeds(embeds));
        }
        if let Some(content) = content {
            message = message.content(content);
        }
        if let Some(rows) = components {
            message = message.components(rows);
        }
        message
    }
}

/// Answers name people and roles (`<@&ops> now holds sync.run`) without pinging them: a
/// command's answer is for whoever asked, and only alert messages mention on purpose (the
/// courier sets their `allowed_mentions` itself).
fn no_pings() -> serenity::CreateAllowedMentions {
    serenity::CreateAllowedMentions::new()
}

/// Autocomplete suggestions of actions: the name as the value, shown with its description.
pub fn action_choices(found: Vec<(String, String)>) -> serenity::CreateAutocompleteResponse {
    serenity::CreateAutocompleteResponse::new().set_choices(
        found
            .into_iter()
            .filter(|(name, _)| (1..=CHOICE_LIMIT).contains(&chars(name)))
            .take(CHOICES_LIMIT)
            .map(|(name, description)| {
                let shown = if description.is_empty() {
                    name.clone()
                } else {
                    shorten(&format!("{name} — {description}"), CHOICE_LIMIT)
                };
                serenity::AutocompleteChoice::new(shown, name)
            })
            .collect(),
    )
}

/// Autocomplete suggestions as Discord takes them: at most 25, each at most 100 characters. A
/// longer one is left out rather than cut, since a cut value would name nothing.
pub fn choices(names: Vec<String>) -> serenity::CreateAutocompleteResponse {
    serenity::CreateAutocompleteResponse::new().set_choices(
        names
            .into_iter()
            .filter(|name| (1..=CHOICE_LIMIT).contains(&chars(name)))
            .take(CHOICES_LIMIT)
            .map(serenity::AutocompleteChoice::from)
            .collect(),
    )
}

/// The text of an error reply: the service's words, with what to run next in Discord's terms.
fn error_text(err: &CommandError) -> String {
    match err {
        CommandError::Denied(Denied::Missing(permission)) => format!(
            "⛔ you need the `{permission}` permission: ask someone with `perms.manage` to run `/perms grant permission:{permission}` for one of your roles"
        ),
        CommandError::Denied(Denied::DirectMessage) => format!(
            "⛔ {}: run it in a channel of your server",
            Denied::DirectMessage
        ),
        CommandError::RateLimited { retry_in } => format!(
            "⏳ you are sending commands too fast: try again in {}s",
            retry_in.as_secs().max(1)
        ),
        CommandError::Invalid(invalid) => format!("⚠️ {}", invalid_text(invalid)),
        CommandError::Busy(run) => sync::busy_text(run),
        CommandError::ActionBusy(run) => actions::busy_text(run),
        CommandError::CoolingDown { action, left } => format!(
            "⏳ `{action}` is cooling down: it may run again <t:{}:R>",
            (crate::model::now() + chrono::Duration::from_std(*left).unwrap_or_default())
                .timestamp()
        ),
        CommandError::ActionFailed(run) => actions::outcome_text(run),
        CommandError::Denied(denied) => format!("⛔ {denied}"),
        CommandError::SyncFailed(report) => sync_report(report).content.unwrap_or_default(),
        CommandError::Internal { .. } => format!("💥 {err}"),
    }
}

/// What is wrong with the input, and what to do in Discord.
fn invalid_text(invalid: &Invalid) -> String {
    match invalid {
        Invalid::UnknownIntegration { suggestions, .. } if suggestions.is_empty() => {
            format!("{invalid}; /status lists them all")
        }
        Invalid::UnknownIntegration { suggestions, .. } => {
            format!("{invalid}; did you mean {}?", suggestions.join(" or "))
        }
        Invalid::UnknownTag { .. } => {
            format!("{invalid}; write tag:NAME with a configured tag")
        }
        Invalid::UnknownIncident { .. } => format!("{invalid}; /alerts list shows the open ones"),
        Invalid::IncidentResolved { .. } => format!("{invalid}; there is nothing left to do"),
        Invalid::UnknownSilence { .. } => format!("{invalid}; /alerts list shows them"),
        Invalid::Duration { .. } => format!("{invalid}; write it like 30m, 1h or 2d"),
        Invalid::ConfigGrant {
            role,
            permission,
            removed_command_grant,
        } => format!(
            "<@&{}> holds `{permission}` from the config file ([[grant]]), which Discord cannot change: remove it from the config and reload{}",
            role.0,
            if *removed_command_grant {
                " (the /perms grant on top of it was removed)"
            } else {
                ""
            }
        ),
        Invalid::NotGranted { role, permission } => format!(
            "<@&{}> does not hold `{permission}` here; /perms list shows every grant",
            role.0
        ),
        Invalid::Option { problem } => format!("That option is not valid: {problem}"),
        Invalid::NoOlderEntries => format!("{invalid}: run the command again"),
        Invalid::UnknownJob {
            suggestions, known, ..
        } => match (suggestions.first(), known.is_empty()) {
            (Some(close), _) => format!("{invalid}; did you mean {close}? /sync list shows them"),
            (None, true) => format!("{invalid}: no [[sync]] job is configured"),
            (None, false) => format!("{invalid}; the jobs are {}", known.join(", ")),
        },
        Invalid::UnknownAction { suggestions, .. } => match suggestions.first() {
            Some(close) => format!("{invalid}; did you mean {close}? /action list shows yours"),
            None => format!("{invalid}; /action list shows the actions you may run"),
        },
        Invalid::Param(_) => format!("{invalid}; /action list shows each parameter"),
        Invalid::AlreadyAcknowledged { .. }
        | Invalid::UnknownRequest { .. }
        | Invalid::RequestSettled { .. }
        | Invalid::NoActions
        | Invalid::NoApprovalChannel { .. }
        | Invalid::SilenceLength
        | Invalid::Paused { .. }
        | Invalid::Stopped { .. }
        | Invalid::NoEngine
        | Invalid::NoAlerts
        | Invalid::NoSyncs
        | Invalid::UnknownRun { .. }
        | Invalid::KeyName { .. }
        | Invalid::DuplicateKey { .. }
        | Invalid::UnknownKey { .. }
        | Invalid::Permissions { .. } => invalid.to_string(),
    }
}

/// Who acted, as Discord shows them: a mention for a Discord user, the name and kind otherwise.
pub fn actor(actor: &Actor) -> String {
    match actor {
        Actor::Discord { user, .. } => format!("<@{}>", user.0),
        Actor::ApiKey { key } => format!("API key {}", echo(key)),
        Actor::Scheduler { job } => format!("the schedule of {}", echo(job)),
        Actor::Cli { user } => format!("{} at the command line", echo(user)),
    }
}

/// What allowed a call, as Discord shows it.
pub fn allowed(allowed: &Allowed) -> String {
    match allowed {
        Allowed::Owner => "server owner".into(),
        Allowed::Administrator => "Administrator".into(),
        Allowed::Public => "public (public_status)".into(),
        Allowed::Role {
            role,
            source: GrantSource::Config,
        } => format!("<@&{}> (config)", role.0),
        Allowed::Role { role, .. } => format!("<@&{}> (/perms grant)", role.0),
        Allowed::Scope => "the API key's scope".into(),
        Allowed::Local => "patchbay itself".into(),
    }
}

/// Draws uptime percentages as a one-line sparkline: `█` for 100%, lower blocks for less,
/// `·` for hours without checks.
pub fn sparkline(values: &[Option<f64>]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|value| match value {
            None => '·',
            Some(pct) => {
                let index = ((pct.clamp(0.0, 100.0) / 100.0) * 7.0).round() as usize;
                BLOCKS[index]
            }
        })
        .collect()
}

/// `/alerts ack` and the Acknowledge button.
pub fn acked(acked: IncidentAcked) -> Reply {
    Reply::text(format!(
        "✅ Incident #{} acknowledged: reminders stop, and its message says you have it.",
        acked.notice
    ))
}

/// `/alerts silence`.
pub fn silenced(silenced: &Silenced) -> Reply {
    Reply::text(format!(
        "🔕 Silence #{id}: {} until <t:{}:f>. Incidents are still recorded and shown by /status; `/alerts unsilence silence:{id}` ends it early.",
        shorten(&silenced.target, 100),
        silenced.until.timestamp(),
        id = silenced.id,
    ))
}

/// The Silence button.
pub fn notice_silenced(silenced: &NoticeSilenced) -> Reply {
    let names: Vec<&str> = silenced.silences.iter().map(|(n, _)| n.as_str()).collect();
    let ids: Vec<String> = silenced
        .silences
        .iter()
        .map(|(_, id)| format!("#{id}"))
        .collect();
    Reply::text(format!(
        "🔕 Silenced {} for 1h (silence {}).",
        names.join(", "),
        ids.join(", ")
    ))
}

/// `/alerts unsilence`.
pub fn unsilenced(unsilenced: Unsilenced) -> Reply {
    Reply::text(format!("🔔 Silence #{} ended.", unsilenced.silence))
}

/// `/perms grant` and `/perms revoke`.
pub fn grant_changed(changed: &GrantChanged) -> Reply {
    let (role, permission) = (changed.role.0, changed.permission);
    Reply::text(match changed.change {
        GrantChange::Added => format!("<@&{role}> now holds `{permission}`."),
        GrantChange::AlreadyHeld => format!("<@&{role}> already held `{permission}`."),
        GrantChange::Removed => format!("<@&{role}> no longer holds `{permission}`."),
    })
}

/// The state's coloured marker, in every message patchbay writes.
pub(super) fn marker(state: State) -> &'static str {
    match state {
        State::Up => "🟢",
        State::Degraded => "🟠",
        State::Down => "🔴",
        State::Unknown => "⚪",
        State::Paused => "⏸️",
    }
}

fn colour(state: State) -> u32 {
    match state {
        State::Up => 0x2e_cc_71,
        State::Degraded => 0xe6_7e_22,
        State::Down => 0xe7_4c_3c,
        State::Unknown | State::Paused => 0x95_a5_a6,
    }
}

/// Integrations per page of the overview: 20 lines of at most about 200 characters stay well
/// inside the 4096-character description.
pub const ROWS_PER_PAGE: usize = 20;

/// One page of the `/status` overview: counts per state, then the page's integrations worst
/// first, with Previous/Next/Refresh buttons when there is more than one page.
pub fn overview(view: &OverviewPage) -> Reply {
    let (page, pages) = (view.page, view.pages);
    let counts: Vec<String> = view
        .counts
        .iter()
        .map(|(state, count)| format!("{} {state} {count}", marker(*state)))
        .collect();
    let lines: Vec<String> = view
        .rows
        .iter()
        .map(|row| {
            let mut line = format!(
                "{} **{}** {} since <t:{}:R>",
                marker(row.state),
                row.name,
                row.state,
                row.since.timestamp()
            );
            if row.state != State::Up
                && let Some(error) = &row.last_error
            {
                line.push_str(&format!(" — {}", shorten(error, 100)));
            }
            line
        })
        .collect();
    let head = counts.join(" · ");
    // The counts always show; the fitter would cut the description by lines from the end, so
    // the rows are fitted here, into what the counts leave.
    let body = format!(
        "{head}\n\n{}",
        fit_lines(&lines, DESCRIPTION_LIMIT - chars(&head) - 2)
    );
    let mut embed = Embed::new(format!("{} integrations", view.total))
        .description(body)
        .colour(colour(view.worst));
    let mut components = Vec::new();
    if pages > 1 {
        embed = embed.footer(format!("Page {} of {pages}", page + 1));
        components.push(serenity::CreateActionRow::Buttons(vec![
            serenity::CreateButton::new(
                Press::StatusPage(page.saturating_sub(1), PageButton::Previous).encode(),
            )
            .label("◀ Previous")
            .style(serenity::ButtonStyle::Secondary)
            .disabled(page == 0),
            serenity::CreateButton::new(Press::StatusPage(page + 1, PageButton::Next).encode())
                .label("Next ▶")
                .style(serenity::ButtonStyle::Secondary)
                .disabled(page + 1 >= pages),
            serenity::CreateButton::new(Press::StatusPage(page, PageButton::Refresh).encode())
                .label("Refresh")
                .style(serenity::ButtonStyle::Secondary),
        ]));
    }
    Reply::embed(embed).components(components)
}

/// The button under a detail that runs a check now.
pub fn recheck_button(name: &str, period: ChartPeriod) -> serenity::CreateActionRow {
    serenity::CreateActionRow::Buttons(vec![
        serenity::CreateButton::new(Press::Recheck(name.to_string(), period).encode())
            .label("Re-check now")
            .style(serenity::ButtonStyle::Primary),
    ])
}

/// A page of the audit log, with an "Older" button when there are older entries; `None` when
/// nothing matches.
pub fn audit_page(query: &AuditQuery, page: &AuditPage) -> Option<Reply> {
    if page.entries.is_empty() {
        return None;
    }
    let lines: Vec<String> = page
        .entries
        .iter()
        .map(|entry| {
            let why = match (&entry.permission, &entry.allowed) {
                (Some(permission), Some(by)) => format!(" · `{permission}` by {}", allowed(by)),
                (Some(permission), None) => format!(" · needs `{permission}`"),
                (None, _) => String::new(),
            };
            format!(
                "<t:{}:f> {} `/{}` {} ({:.0} ms){}{why}",
                entry.at.timestamp(),
                actor(&entry.actor),
                shorten(&entry.command, 64),
                entry.outcome,
                entry.latency_ms,
                entry
                    .error_kind
                    .as_deref()
                    .map(|kind| format!(" {kind}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let embed = Embed::new("Audit log").description(lines.join("\n"));
    let older = page.older.map(|before| {
        Press::AuditPage(AuditQuery {
            before: Some(before),
            ..query.clone()
        })
        .encode()
    });
    // The id carries the command filter, which the option limits to 32 characters; a longer
    // one (from a client that ignores the limit) matches no command, so it never has an older
    // page, but a button Discord would refuse is never offered either way.
    let components = match older {
        Some(id) if chars(&id) <= CUSTOM_ID_LIMIT => {
            vec![serenity::CreateActionRow::Buttons(vec![
                serenity::CreateButton::new(id)
                    .label("Older ▶")
                    .style(serenity::ButtonStyle::Secondary),
            ])]
        }
        _ => Vec::new(),
    };
    Some(Reply::embed(embed).components(components))
}

/// `/alerts list`: open incidents, recorded-only incidents, and silences.
pub fn alerts_overview(overview: &crate::service::AlertsOverview) -> Embed {
    let mut lines = Vec::new();
    for view in &overview.open {
        let open: Vec<String> = view
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_none())
            .map(|i| format!("{} {}", marker(i.state), i.integration))
            .collect();
        let status = match (&view.acknowledged, view.silenced_until) {
            (Some(ack), _) => format!(" · acknowledged by {}", actor(&ack.by)),
            (None, Some(until)) => format!(" · silenced until <t:{}:f>", until.timestamp()),
            (None, None) => String::new(),
        };
        lines.push(format!(
            "**#{}** {} since <t:{}:R>{status}",
            view.notice,
            shorten(&open.join(", "), 300),
            view.opened_at.timestamp()
        ));
    }
    if !overview.recorded.is_empty() {
        lines.push(String::new());
        lines.push("Recorded, not notified (silenced, maintenance or dependency):".into());
        for incident in &overview.recorded {
            lines.push(format!(
                "{} {} since <t:{}:R>",
                marker(incident.state),
                incident.integration,
                incident.opened_at.timestamp()
            ));
        }
    }
    if !overview.silences.is_empty() {
        lines.push(String::new());
        lines.push("Silences:".into());
        for silence in &overview.silences {
            lines.push(format!(
                "🔕 **#{}** {} until <t:{}:f> by {}: {}",
                silence.id,
                silence.target,
                silence.until.timestamp(),
                actor(&silence.created_by),
                shorten(&silence.reason, 200)
            ));
        }
    }
    if lines.is_empty() {
        lines.push("No open incidents and no silences. 🎉".into());
    }
    Embed::new(format!("{} open incidents", overview.open.len())).description(lines.join("\n"))
}

/// The `/status <integration>` answer: the detail with its chart as the embed's image, and the
/// re-check button. A chart that could not be drawn leaves the detail whole and says why in the
/// footer.
pub fn detail_with_chart(
    detail: &StatusDetail,
    period: ChartPeriod,
    chart: Result<Chart, CommandError>,
) -> Reply {
    let embed = self::detail(detail);
    let reply = match chart {
        Ok(chart) => {
            let filename = chart.filename();
            Reply::embed(embed.image_attachment(filename.clone())).attach(filename, chart.png)
        }
        Err(err) => Reply::embed(embed.footer(format!("No chart: {err}"))),
    };
    reply.components(vec![recheck_button(&detail.row.name, period)])
}

/// The `/status <integration>` detail.
pub fn detail(detail: &StatusDetail) -> Embed {
    let row = &detail.row;
    let mut embed = Embed::new(format!("{} {}: {}", marker(row.state), row.name, row.state))
        .colour(colour(row.state))
        .field("Since", format!("<t:{}:R>", row.since.timestamp()), true);
    embed = embed.field(
        "Last check",
        row.last_check.map_or_else(
            || "not yet".to_string(),
            |at| format!("<t:{}:R>", at.timestamp()),
        ),
        true,
    );
    if let Some(error) = &row.last_error {
        embed = embed.field("Failed conditions", error, false);
    }
    for (window, figures) in &detail.windows {
        let value = match figures {
            Some(f) => format!(
                "uptime {:.2}%\np50 {} · p95 {}",
                f.uptime_pct,
                duration::compact(std::time::Duration::from_secs_f64(
                    f.latency_p50_ms / 1000.0
                )),
                duration::compact(std::time::Duration::from_secs_f64(
                    f.latency_p95_ms / 1000.0
                )),
            ),
            None => "no checks".to_string(),
        };
        embed = embed.field(window.label(), value, true);
    }
    embed = embed.field(
        "Last 24 hours",
        format!("`{}`", sparkline(&detail.hourly_uptime)),
        false,
    );
    if let Some(incident) = &detail.incident {
        let since = format!("since <t:{}:R>", incident.opened_at.timestamp());
        let value = match (incident.notice, &incident.suppressed) {
            (Some(notice), _) => format!("#{notice} ({}) {since}", incident.severity),
            (None, Some(why)) => format!(
                "recorded, not notified ({}) {since}",
                why.replace(':', ": ")
            ),
            (None, None) => format!("recorded {since}"),
        };
        embed = embed.field("Open incident", value, false);
    }
    if !row.tags.is_empty() {
        embed = embed.field("Tags", row.tags.join(", "), false);
    }
    embed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_uptime_to_blocks() {
        assert_eq!(
            sparkline(&[Some(100.0), Some(0.0), None, Some(50.0), Some(99.0)]),
            "█▁·▅█"
        );
    }

    #[test]
    fn long_lists_end_with_a_marker_not_a_cut_line() {
        let lines: Vec<String> = (0..500)
            .map(|i| format!("line number {i} of many"))
            .collect();
        let text = fit_lines(&lines, 1000);
        assert!(chars(&text) <= 1000, "{}", chars(&text));
        assert!(text.ends_with(" more"), "{text}");
        assert!(
            text.lines()
                .rev()
                .nth(1)
                .unwrap()
                .starts_with("line number")
        );
        // Every line shown is whole, and the marker counts the rest.
        let shown = text.lines().count() - 1;
        assert!(
            text.ends_with(&format!("… and {} more", 500 - shown)),
            "{text}"
        );
    }

    #[test]
    fn lines_are_counted_in_characters_not_bytes() {
        // Each line is 10 characters but 37 bytes: counted in bytes, a 4096 limit would show
        // about a quarter of what fits.
        let lines: Vec<String> = (0..1000).map(|_| "🟢🔴🟠⚪ abcde".to_string()).collect();
        let text = fit_lines(&lines, DESCRIPTION_LIMIT);
        assert!(chars(&text) <= DESCRIPTION_LIMIT, "{}", chars(&text));
        assert!(chars(&text) > DESCRIPTION_LIMIT - 30, "{}", chars(&text));
        assert!(text.len() > DESCRIPTION_LIMIT, "{}", text.len());
    }

    #[test]
    fn one_long_line_is_cut_and_a_tiny_limit_still_holds() {
        let text = fit_text(&"word ".repeat(1000), 2000);
        assert!(chars(&text) <= 2000 && text.ends_with('…'), "{text}");
        let lines = ["x".repeat(3000), "second".to_string()];
        let text = fit_lines(&lines, 2000);
        assert!(chars(&text) <= 2000, "{}", chars(&text));
        assert!(text.ends_with("…\n… and 1 more"), "{text}");
        for limit in 0..20 {
            assert!(chars(&fit_lines(&lines, limit)) <= limit, "{limit}");
        }
    }

    #[test]
    fn embeds_fit_each_limit_and_the_total() {
        let huge = "y".repeat(10_000);
        let mut embed = Embed::new(&huge).description(
            (0..2000)
                .map(|i| format!("row {i}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
        for _ in 0..30 {
            embed = embed.field(&huge, &huge, false);
        }
        let fitted = fit_embeds(vec![embed.clone(), embed.footer(&huge)]);
        let total: usize = fitted.iter().map(Embed::size).sum();
        assert!(total <= EMBEDS_TOTAL_LIMIT, "{total}");
        for embed in &fitted {
            assert!(chars(&embed.title) <= TITLE_LIMIT);
            assert!(chars(&embed.description) <= DESCRIPTION_LIMIT);
            assert!(chars(&embed.footer) <= FOOTER_LIMIT);
            assert!(embed.fields.len() <= FIELDS_LIMIT);
            for (name, value, _) in &embed.fields {
                assert!(chars(name) <= FIELD_NAME_LIMIT && chars(value) <= FIELD_VALUE_LIMIT);
            }
        }
        // Fields went only as far as the rest could not hold them; the description took the
        // room left, and says how much it left out.
        assert_eq!(fitted[0].fields.len(), 2, "{:?}", fitted[0]);
        assert!(fitted[1].fields.is_empty(), "{:?}", fitted[1]);
        assert!(fitted[0].description.contains(" more"), "{:?}", fitted[0]);
        // A small embed is left as it was.
        let small = Embed::new("t").description("d").field("n", "v", true);
        assert_eq!(fit_embeds(vec![small.clone()]), vec![small]);
        assert_eq!(Embed::new("t").field("", "", false).fit().fields[0].1, "—");
    }
}
