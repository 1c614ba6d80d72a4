//! How answers look in Discord: embeds within Discord's limits, and errors as one line.

use poise::serenity_prelude as serenity;

use crate::audit::{Actor, AuditPage, AuditQuery};
use crate::config::duration;
use crate::model::State;
use crate::service::{CommandError, OverviewPage, StatusDetail, sparkline};

/// Discord's limit on an embed description.
pub const DESCRIPTION_LIMIT: usize = 4096;

/// The text of an error reply.
pub fn error_text(err: &CommandError) -> String {
    match err {
        CommandError::Denied(_) => format!("⛔ {err}"),
        CommandError::RateLimited { .. } => format!("⏳ {err}"),
        CommandError::Invalid(_) => format!("⚠️ {err}"),
        CommandError::Internal { .. } => format!("💥 {err}"),
    }
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

/// Appends lines to a description until the next one would pass the limit, then says how
/// many were left out; never cuts a line in the middle.
fn fit_lines(lines: &[String], limit: usize) -> String {
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        let left = lines.len() - index;
        let tail = format!("\n… and {left} more");
        if out.len() + line.len() + 1 + tail.len() > limit {
            out.push_str(tail.trim_start());
            return out;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Integrations per page of the overview: 20 lines of at most about 200 characters stay well
/// inside the 4096-character description.
pub const ROWS_PER_PAGE: usize = 20;

/// One page of the `/status` overview: counts per state, then the page's integrations worst
/// first, with Previous/Next/Refresh buttons when there is more than one page.
pub fn overview(view: &OverviewPage) -> (serenity::CreateEmbed, Vec<serenity::CreateActionRow>) {
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
    let body = format!(
        "{head}\n\n{}",
        fit_lines(&lines, DESCRIPTION_LIMIT - head.len() - 2)
    );
    let mut embed = serenity::CreateEmbed::new()
        .title(format!("{} integrations", view.total))
        .description(body)
        .colour(colour(view.worst));
    let mut components = Vec::new();
    if pages > 1 {
        embed = embed.footer(serenity::CreateEmbedFooter::new(format!(
            "Page {} of {pages}",
            page + 1
        )));
        components.push(serenity::CreateActionRow::Buttons(vec![
            serenity::CreateButton::new(format!("pb:status:page:{}:prev", page.saturating_sub(1)))
                .label("◀ Previous")
                .style(serenity::ButtonStyle::Secondary)
                .disabled(page == 0),
            serenity::CreateButton::new(format!("pb:status:page:{}:next", page + 1))
                .label("Next ▶")
                .style(serenity::ButtonStyle::Secondary)
                .disabled(page + 1 >= pages),
            serenity::CreateButton::new(format!("pb:status:page:{page}:refresh"))
                .label("Refresh")
                .style(serenity::ButtonStyle::Secondary),
        ]));
    }
    (embed, components)
}

/// `text` cut to at most `max` characters, at a word boundary, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    let at_word = match cut.rfind(char::is_whitespace) {
        Some(space) if space > cut.len() / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", at_word.trim_end())
}

/// The button under a detail that runs a check now.
pub fn recheck_button(name: &str) -> serenity::CreateActionRow {
    serenity::CreateActionRow::Buttons(vec![
        serenity::CreateButton::new(format!("pb:status:recheck:{name}"))
            .label("Re-check now")
            .style(serenity::ButtonStyle::Primary),
    ])
}

/// A page of the audit log, with an "Older" button when there are older entries; `None` when
/// nothing matches.
pub fn audit_page(
    query: &AuditQuery,
    page: &AuditPage,
) -> Option<(serenity::CreateEmbed, Vec<serenity::CreateActionRow>)> {
    if page.entries.is_empty() {
        return None;
    }
    let lines: Vec<String> = page
        .entries
        .iter()
        .map(|entry| {
            let Actor::Discord { user, .. } = &entry.actor;
            format!(
                "<t:{}:f> <@{}> `/{}` {} ({:.0} ms){}",
                entry.at.timestamp(),
                user.0,
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
    let embed = serenity::CreateEmbed::new()
        .title("Audit log")
        .description(fit_lines(&lines, DESCRIPTION_LIMIT));
    let components = match page.older {
        Some(before) => vec![serenity::CreateActionRow::Buttons(vec![
            serenity::CreateButton::new(super::components::audit_page_id(&AuditQuery {
                before: Some(before),
                ..query.clone()
            }))
            .label("Older ▶")
            .style(serenity::ButtonStyle::Secondary),
        ])],
        None => Vec::new(),
    };
    Some((embed, components))
}

/// `/alerts list`: open incidents, recorded-only incidents, and silences.
pub fn alerts_overview(overview: &crate::service::AlertsOverview) -> serenity::CreateEmbed {
    let mut lines = Vec::new();
    for view in &overview.open {
        let open: Vec<String> = view
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_none())
            .map(|i| format!("{} {}", marker(i.state), i.integration))
            .collect();
        let status = match (&view.acknowledged, view.silenced_until) {
            (Some(ack), _) => format!(" · acknowledged by <@{}>", ack.user.0),
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
                "🔕 **#{}** {} until <t:{}:f> by <@{}>: {}",
                silence.id,
                silence.target,
                silence.until.timestamp(),
                silence.created_by.0,
                shorten(&silence.reason, 200)
            ));
        }
    }
    if lines.is_empty() {
        lines.push("No open incidents and no silences. 🎉".into());
    }
    serenity::CreateEmbed::new()
        .title(format!("{} open incidents", overview.open.len()))
        .description(fit_lines(&lines, DESCRIPTION_LIMIT))
}

/// The `/status <integration>` detail.
pub fn detail(detail: &StatusDetail) -> serenity::CreateEmbed {
    let row = &detail.row;
    let mut embed = serenity::CreateEmbed::new()
        .title(format!("{} {}: {}", marker(row.state), row.name, row.state))
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
        embed = embed.field("Failed conditions", shorten(error, 1000), false);
    }
    for (window, figures) in &detail.windows {
        let value = match figures {
            Some(f) => format!(
                "uptime {:.2}%\np50 {} · p95 {}",
                f.uptime_pct,
                duration::format(std::time::Duration::from_secs_f64(
                    f.latency_p50_ms / 1000.0
                )),
                duration::format(std::time::Duration::from_secs_f64(
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
    fn shortening_cuts_at_a_word_and_marks_it() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("status 500 from the upstream", 15), "status 500…");
        assert!(shorten(&"x".repeat(50), 10).chars().count() <= 10);
        assert!(shorten(&"x".repeat(50), 10).ends_with('…'));
    }

    #[test]
    fn long_lists_end_with_a_marker_not_a_cut_line() {
        let lines: Vec<String> = (0..500)
            .map(|i| format!("line number {i} of many"))
            .collect();
        let text = fit_lines(&lines, 1000);
        assert!(text.len() <= 1000, "{}", text.len());
        assert!(text.ends_with(" more"), "{text}");
        assert!(
            text.lines()
                .rev()
                .nth(1)
                .unwrap()
                .starts_with("line number")
        );
    }
}
