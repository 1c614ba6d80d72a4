//! What an alert message and its replies look like in Discord: one embed (title, the incidents
//! one per entry, who acknowledged it, until when it is silenced, how long it lasted) and the
//! Acknowledge, Silence 1h and Re-check now buttons, rendered from a [`NoticeView`] at delivery
//! time and fitted by the Discord front's one fitter ([`super::super::render`]).

use super::*;
use crate::discord::render::{DESCRIPTION_LIMIT, EMBEDS_TOTAL_LIMIT, Embed, embed_json, fit_lines};

/// What a reply under an alert message says: "✅ Resolved after 12m.", "⏰ Still down after 1h:
/// payments-api. Acknowledge to stop reminders.", "✅ Stable again.".
pub fn reply_text(note: &ReplyNote<'_>) -> String {
    match note.kind {
        ReplyKind::Resolved => {
            format!("✅ Resolved after {}.", duration::human(note.lasted()))
        }
        ReplyKind::Reminder => format!(
            "⏰ Still {} after {}: {}. Acknowledge to stop reminders.",
            if note.view.severity == Severity::Critical {
                "down"
            } else {
                "degraded"
            },
            duration::human(note.lasted()),
            name_list(
                &note
                    .open()
                    .into_iter()
                    .map(str::to_string)
                    .collect::<Vec<_>>(),
                1500
            )
        ),
        ReplyKind::StableAgain => "✅ Stable again.".into(),
    }
}

/// The body of an alert message: `embeds` (one) and `components` (the Acknowledge, Silence 1h
/// and Re-check now buttons when `buttons` and the notice is not resolved; an empty list
/// otherwise, which removes buttons on an edit). Always within Discord's embed limits: a
/// description too long for every incident ends with "… and N more".
pub fn render_notice(view: &NoticeView, buttons: bool) -> Value {
    let components = if buttons && view.status != NoticeStatus::Resolved {
        vec![action_row(view)]
    } else {
        Vec::new()
    };
    json!({"embeds": [notice_embed(view)], "components": components})
}

fn notice_embed(view: &NoticeView) -> Value {
    let mut embed = Embed::new(title(view))
        .colour(colour(view))
        .footer(format!("incident #{}", view.notice))
        .timestamp(view.opened_at);
    for (name, value) in fields(view) {
        embed = embed.field(name, value, true);
    }
    // The incidents go whole, each with its dependents: as many as fit in what the title, the
    // fields and the footer leave of Discord's limits, then "… and N more".
    let entries: Vec<String> = view.incidents.iter().map(incident_entry).collect();
    let budget = DESCRIPTION_LIMIT.min(EMBEDS_TOTAL_LIMIT.saturating_sub(embed.size()));
    embed_json(embed.description(fit_lines(&entries, budget)))
}

fn colour(view: &NoticeView) -> u32 {
    match (view.status, view.severity) {
        (NoticeStatus::Resolved, _) => GREEN,
        (_, Severity::Critical) => RED,
        (_, Severity::Warning) => ORANGE,
    }
}

/// "🔴 payments-api is DOWN", "🔴 5 integrations down", "✅ payments-api resolved".
fn title(view: &NoticeView) -> String {
    let open: Vec<&IncidentLine> = view
        .incidents
        .iter()
        .filter(|i| i.resolved_at.is_none())
        .collect();
    let resolved = view.status == NoticeStatus::Resolved || open.is_empty();
    match view.incidents.as_slice() {
        [] => format!("Alert #{}", view.notice),
        [one] if resolved => format!("✅ {} resolved", shorten(&one.integration, 200)),
        [one] => format!(
            "{} {} is {}",
            marker(one.state),
            shorten(&one.integration, 200),
            one.state
        ),
        all if resolved => format!("✅ {} integrations resolved", all.len()),
        all => {
            let worst = [State::Down, State::Degraded]
                .into_iter()
                .find(|s| open.iter().any(|i| i.state == *s))
                .unwrap_or(open[0].state);
            let word = if open.iter().all(|i| i.state == State::Down) {
                "down".to_string()
            } else if open.iter().all(|i| i.state == State::Degraded) {
                "degraded".to_string()
            } else if open
                .iter()
                .all(|i| matches!(i.state, State::Down | State::Degraded))
            {
                "down or degraded".to_string()
            } else {
                "not up".to_string()
            };
            if open.len() < all.len() {
                format!(
                    "{} {} of {} integrations {word}",
                    marker(worst),
                    open.len(),
                    all.len()
                )
            } else {
                format!("{} {} integrations {word}", marker(worst), open.len())
            }
        }
    }
}

/// One incident's part of the description: one line, plus one for its dependents.
fn incident_entry(incident: &IncidentLine) -> String {
    let name = shorten(&one_line(&incident.integration), 100);
    let mut entry = if let Some(resolved_at) = incident.resolved_at {
        let lasted = (resolved_at - incident.since).to_std().unwrap_or_default();
        format!(
            "✅ **{name}** resolved <t:{}:R> after {}",
            resolved_at.timestamp(),
            duration::human(lasted)
        )
    } else {
        let mut line = format!("{} **{name}** {}", marker(incident.state), incident.state);
        let reason = one_line(&incident.reason);
        if !reason.is_empty() {
            line.push_str(&format!(": {}", shorten(&reason, 300)));
        }
        line.push_str(&format!(" · since <t:{}:R>", incident.since.timestamp()));
        if let Some(error) = incident.last_error.as_deref().map(one_line)
            && !error.is_empty()
        {
            line.push_str(&format!(" · last error: {}", shorten(&error, 200)));
        }
        if let Some(ms) = incident
            .latency_ms
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
        {
            line.push_str(&format!(
                " · {}",
                duration::compact(Duration::from_secs_f64(ms / 1000.0))
            ));
        }
        line
    };
    if !incident.dependents.is_empty() {
        entry.push_str(&format!(
            "\n↳ Also down (depends on {name}): {}",
            name_list(&incident.dependents, 400)
        ));
    }
    entry
}

/// Newlines and tabs as spaces, so that one incident stays on its line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `a, b, c and 12 more`, within `budget` characters.
fn name_list(names: &[String], budget: usize) -> String {
    let mut out = String::new();
    for (index, name) in names.iter().enumerate() {
        let name = shorten(&one_line(name), 100);
        let left = names.len() - index;
        let separator = if out.is_empty() { "" } else { ", " };
        let rest_tail = if left > 1 {
            format!(" and {} more", left - 1)
        } else {
            String::new()
        };
        if out.chars().count() + separator.len() + name.chars().count() + rest_tail.len() > budget {
            return format!("{out} and {left} more");
        }
        out.push_str(separator);
        out.push_str(&name);
    }
    out
}

/// The embed's fields: who acknowledged, until when it is silenced, how long it lasted, and a
/// note when flapping. Each value is far below Discord's 1024 characters.
fn fields(view: &NoticeView) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if let Some(ack) = &view.acknowledged {
        fields.push((
            "Acknowledged by".to_string(),
            format!(
                "{} <t:{}:R>",
                crate::discord::render::actor(&ack.by),
                ack.at.timestamp()
            ),
        ));
    }
    if let Some(until) = view.silenced_until {
        fields.push((
            "Silenced until".to_string(),
            format!("<t:{}:f>", until.timestamp()),
        ));
    }
    if view.status == NoticeStatus::Resolved
        && let Some(after) = view.resolved_after
    {
        fields.push(("Resolved after".to_string(), duration::human(after)));
    }
    if view.flapping {
        fields.push((
            "Flapping".to_string(),
            "Changing state too often: each change is not notified until it settles.".to_string(),
        ));
    }
    debug_assert!(fields.iter().all(|(_, v)| v.chars().count() <= 1024));
    fields
}

/// Acknowledge (disabled once acknowledged), Silence 1h, Re-check now.
fn action_row(view: &NoticeView) -> Value {
    let notice = view.notice;
    json!({
        "type": 1,
        "components": [
            {
                "type": 2,
                "style": 3,
                "label": "Acknowledge",
                "custom_id": Press::AlertAck(notice).encode(),
                "disabled": view.status == NoticeStatus::Acknowledged,
            },
            {
                "type": 2,
                "style": 2,
                "label": "Silence 1h",
                "custom_id": Press::AlertSilence(notice).encode(),
            },
            {
                "type": 2,
                "style": 1,
                "label": "Re-check now",
                "custom_id": Press::AlertRecheck(notice).encode(),
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::model::notice::Acknowledgement;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn incident(n: i64, name: &str, state: State) -> IncidentLine {
        IncidentLine {
            incident: n,
            integration: name.to_string(),
            severity: Severity::Critical,
            state,
            reason: "status == 200 (got 503)".into(),
            since: at(0),
            last_error: Some("connection refused".into()),
            latency_ms: Some(240.0),
            resolved_at: None,
            dependents: Vec::new(),
        }
    }

    fn view(incidents: Vec<IncidentLine>) -> NoticeView {
        NoticeView {
            notice: 42,
            severity: Severity::Critical,
            status: NoticeStatus::Open,
            incidents,
            opened_at: at(0),
            resolved_after: None,
            acknowledged: None,
            silenced_until: None,
            flapping: false,
        }
    }

    fn embed(body: &Value) -> &Value {
        let embeds = body["embeds"].as_array().expect("embeds");
        assert_eq!(embeds.len(), 1);
        &embeds[0]
    }

    fn chars(v: &Value) -> usize {
        v.as_str().map_or(0, |s| s.chars().count())
    }

    /// Every limit Discord puts on an embed and a button row.
    fn assert_within_limits(body: &Value) {
        let e = embed(body);
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        assert!(chars(&e["title"]) <= 256, "title {}", chars(&e["title"]));
        assert!(
            chars(&e["description"]) <= 4096,
            "{}",
            chars(&e["description"])
        );
        assert!(chars(&e["footer"]["text"]) <= 2048);
        assert!(fields.len() <= 25);
        let mut total = chars(&e["title"]) + chars(&e["description"]) + chars(&e["footer"]["text"]);
        for f in &fields {
            assert!(chars(&f["name"]) <= 256 && chars(&f["name"]) > 0);
            assert!(chars(&f["value"]) <= 1024 && chars(&f["value"]) > 0);
            total += chars(&f["name"]) + chars(&f["value"]);
        }
        assert!(total <= 6000, "total {total}");
        for row in body["components"].as_array().unwrap() {
            for button in row["components"].as_array().unwrap() {
                assert!(chars(&button["custom_id"]) <= 100);
                assert!(chars(&button["label"]) <= 80);
            }
        }
    }

    #[test]
    fn single_incident_shows_its_line_colour_and_buttons() {
        let body = render_notice(&view(vec![incident(1, "payments-api", State::Down)]), true);
        let e = embed(&body);
        assert_eq!(e["title"], "🔴 payments-api is DOWN");
        assert_eq!(e["color"], RED);
        assert_eq!(e["footer"]["text"], "incident #42");
        assert_eq!(
            e["description"],
            "🔴 **payments-api** DOWN: status == 200 (got 503) · since <t:1700000000:R> · \
             last error: connection refused · 240ms"
        );
        assert!(e.get("fields").is_none());
        let buttons = body["components"][0]["components"].as_array().unwrap();
        let ids: Vec<&str> = buttons
            .iter()
            .map(|b| b["custom_id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "pb:alert:ack:42",
                "pb:alert:silence:42",
                "pb:alert:recheck:42"
            ]
        );
        let styles: Vec<u64> = buttons
            .iter()
            .map(|b| b["style"].as_u64().unwrap())
            .collect();
        assert_eq!(styles, [3, 2, 1]);
        assert_eq!(buttons[0]["disabled"], false);
        assert_within_limits(&body);
    }

    #[test]
    fn colours_follow_severity_and_status() {
        let mut v = view(vec![incident(1, "a", State::Degraded)]);
        v.severity = Severity::Warning;
        assert_eq!(embed(&render_notice(&v, true))["color"], ORANGE);
        assert_eq!(embed(&render_notice(&v, true))["title"], "🟠 a is DEGRADED");
        v.status = NoticeStatus::Acknowledged;
        assert_eq!(embed(&render_notice(&v, true))["color"], ORANGE);
        v.severity = Severity::Critical;
        assert_eq!(embed(&render_notice(&v, true))["color"], RED);
        v.status = NoticeStatus::Resolved;
        assert_eq!(embed(&render_notice(&v, true))["color"], GREEN);
    }

    #[test]
    fn acknowledged_disables_the_button_and_says_who() {
        let mut v = view(vec![incident(1, "a", State::Down)]);
        v.status = NoticeStatus::Acknowledged;
        v.acknowledged = Some(Acknowledgement {
            by: crate::model::Actor::Discord {
                user: Snowflake(7),
                name: "ops".into(),
            },
            at: at(60),
        });
        v.silenced_until = Some(at(3600));
        v.flapping = true;
        let body = render_notice(&v, true);
        assert_eq!(body["components"][0]["components"][0]["disabled"], true);
        let fields = embed(&body)["fields"].as_array().unwrap().clone();
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|f| (f["name"].as_str().unwrap(), f["value"].as_str().unwrap()))
            .collect();
        assert_eq!(pairs[0], ("Acknowledged by", "<@7> <t:1700000060:R>"));
        assert_eq!(pairs[1], ("Silenced until", "<t:1700003600:f>"));
        assert_eq!(pairs[2].0, "Flapping");
        assert_eq!(pairs.len(), 3);
    }

    #[test]
    fn resolved_notices_have_no_buttons_and_say_how_long() {
        let mut one = incident(1, "payments-api", State::Up);
        one.resolved_at = Some(at(65 * 60));
        let mut v = view(vec![one]);
        v.status = NoticeStatus::Resolved;
        v.resolved_after = Some(Duration::from_secs(65 * 60 + 7));
        let body = render_notice(&v, true);
        assert_eq!(body["components"], json!([]));
        let e = embed(&body);
        assert_eq!(e["title"], "✅ payments-api resolved");
        assert_eq!(e["fields"][0]["name"], "Resolved after");
        assert_eq!(e["fields"][0]["value"], "1h 5m");
        assert_eq!(
            e["description"],
            "✅ **payments-api** resolved <t:1700003900:R> after 1h 5m"
        );
        // Buttons are never rendered when the caller cannot send them.
        let open = view(vec![incident(1, "a", State::Down)]);
        assert_eq!(render_notice(&open, false)["components"], json!([]));
    }

    #[test]
    fn groups_count_what_is_still_open() {
        let mut incidents: Vec<IncidentLine> = (0..5)
            .map(|i| incident(i, &format!("svc-{i}"), State::Down))
            .collect();
        assert_eq!(
            embed(&render_notice(&view(incidents.clone()), true))["title"],
            "🔴 5 integrations down"
        );
        incidents[0].resolved_at = Some(at(60));
        incidents[1].state = State::Degraded;
        assert_eq!(
            embed(&render_notice(&view(incidents.clone()), true))["title"],
            "🔴 4 of 5 integrations down or degraded"
        );
        let mut v = view(incidents);
        v.status = NoticeStatus::Resolved;
        assert_eq!(
            embed(&render_notice(&v, true))["title"],
            "✅ 5 integrations resolved"
        );
    }

    #[test]
    fn dependents_are_listed_under_their_incident() {
        let mut one = incident(1, "db", State::Down);
        one.dependents = vec!["api".into(), "web".into()];
        let body = render_notice(&view(vec![one]), true);
        let description = embed(&body)["description"].as_str().unwrap().to_string();
        assert!(
            description.ends_with("\n↳ Also down (depends on db): api, web"),
            "{description}"
        );
        let many: Vec<String> = (0..500).map(|i| format!("dependent-{i}")).collect();
        let listed = name_list(&many, 100);
        assert!(listed.chars().count() <= 100, "{listed}");
        assert!(listed.ends_with(" more"), "{listed}");
    }

    #[test]
    fn a_thousand_incidents_with_long_text_stay_within_every_limit() {
        let long = "condition failed because the upstream said something very long ".repeat(40);
        let incidents: Vec<IncidentLine> = (0..1000)
            .map(|i| {
                let mut line = incident(
                    i,
                    &format!("integration-{i}-{}", "x".repeat(300)),
                    State::Down,
                );
                line.reason = long.clone();
                line.last_error = Some(long.clone());
                line.dependents = (0..50)
                    .map(|d| format!("dep-{d}-{}", "y".repeat(80)))
                    .collect();
                line
            })
            .collect();
        let mut v = view(incidents);
        v.status = NoticeStatus::Acknowledged;
        v.acknowledged = Some(Acknowledgement {
            by: crate::model::Actor::Discord {
                user: Snowflake(u64::MAX),
                name: "n".repeat(5000),
            },
            at: at(1),
        });
        v.silenced_until = Some(at(2));
        v.flapping = true;
        let body = render_notice(&v, true);
        assert_within_limits(&body);
        let description = embed(&body)["description"].as_str().unwrap();
        let last = description.lines().last().unwrap();
        let left: usize = last
            .strip_prefix("… and ")
            .and_then(|l| l.strip_suffix(" more"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no marker: {last:?}"));
        let shown = description.lines().filter(|l| l.starts_with("🔴")).count();
        assert!(shown >= 1, "{description}");
        assert_eq!(shown + left, 1000);
        // Every line shown is whole: long texts were shortened at a word, with "…".
        assert!(description.contains("…"));

        // One incident with a very long name and reason keeps the title and line in bounds.
        let mut single = incident(1, &"n".repeat(1000), State::Down);
        single.reason = "r".repeat(10_000);
        let body = render_notice(&view(vec![single]), true);
        assert_within_limits(&body);
        assert!(embed(&body)["title"].as_str().unwrap().ends_with("is DOWN"));
    }
}
