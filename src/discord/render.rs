//! How answers look in Discord: embeds within Discord's limits, and errors as one line.

use poise::serenity_prelude as serenity;

use crate::config::duration;
use crate::model::State;
use crate::service::{CommandError, StatusDetail, StatusRow, sparkline};

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

fn marker(state: State) -> &'static str {
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
        let tail = format!("\n… and {left} more: use /status <integration>");
        if out.len() + line.len() + 1 + tail.len() > limit {
            out.push_str(tail.trim_start());
            return out;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The `/status` overview: counts per state, then the integrations worst first.
pub fn overview(rows: &[StatusRow]) -> serenity::CreateEmbed {
    let counts: Vec<String> = State::ALL
        .iter()
        .map(|state| {
            let count = rows.iter().filter(|r| r.state == *state).count();
            format!("{} {state} {count}", marker(*state))
        })
        .collect();
    let lines: Vec<String> = rows
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
                let short: String = error.chars().take(120).collect();
                line.push_str(&format!(" — {short}"));
            }
            line
        })
        .collect();
    let worst = rows.first().map_or(State::Up, |r| r.state);
    let head = counts.join(" · ");
    let body = format!(
        "{head}\n\n{}",
        fit_lines(&lines, DESCRIPTION_LIMIT - head.len() - 2)
    );
    serenity::CreateEmbed::new()
        .title(format!("{} integrations", rows.len()))
        .description(body)
        .colour(colour(worst))
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
        let short: String = error.chars().take(1000).collect();
        embed = embed.field("Failed conditions", short, false);
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
    if !row.tags.is_empty() {
        embed = embed.field("Tags", row.tags.join(", "), false);
    }
    embed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_end_with_a_marker_not_a_cut_line() {
        let lines: Vec<String> = (0..500)
            .map(|i| format!("line number {i} of many"))
            .collect();
        let text = fit_lines(&lines, 1000);
        assert!(text.len() <= 1000, "{}", text.len());
        assert!(text.ends_with("more: use /status <integration>"), "{text}");
        assert!(
            text.lines()
                .rev()
                .nth(1)
                .unwrap()
                .starts_with("line number")
        );
    }
}
