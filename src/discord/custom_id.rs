//! Button ids: the one encoder and the one parser of the `custom_id`s patchbay puts on buttons
//! (`pb:...`). A button carries everything its press needs, so it keeps working after a
//! restart and no state is held per message. Discord allows 100 characters.

use crate::audit::{AuditQuery, Outcome};
use crate::chart::ChartPeriod;

/// Discord's limit on a `custom_id`.
pub const CUSTOM_ID_LIMIT: usize = 100;

/// Which of the overview's page buttons: they lead to pages that may be the same, and Discord
/// wants the ids in one message distinct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageButton {
    /// ◀ Previous.
    Previous,
    /// Next ▶.
    Next,
    /// Refresh.
    Refresh,
}

impl PageButton {
    fn as_str(self) -> &'static str {
        match self {
            PageButton::Previous => "prev",
            PageButton::Next => "next",
            PageButton::Refresh => "refresh",
        }
    }
}

/// What a button asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Press {
    /// A page of the `/status` overview (0-based).
    StatusPage(usize, PageButton),
    /// A check of this integration now, and its chart over the period the message shows
    /// again (written only when it is not the default 24 hours, so ids made before periods
    /// existed still read).
    Recheck(String, ChartPeriod),
    /// An older page of `/audit`.
    AuditPage(AuditQuery),
    /// Acknowledge an alert (its notice id).
    AlertAck(i64),
    /// Silence an alert's integrations for an hour.
    AlertSilence(i64),
    /// Check an alert's integrations now.
    AlertRecheck(i64),
    /// The requester confirms an action request (its request id).
    ActionConfirm(String),
    /// The requester cancels an action request.
    ActionCancel(String),
    /// A second member approves an action request.
    ActionApprove(String),
    /// A second member rejects an action request.
    ActionReject(String),
    /// The modal of an action's parameters was submitted (the action's name).
    ActionForm(String),
}

impl Press {
    /// The button's `custom_id`. An audit page's command filter is at most 32 characters (the
    /// option's `max_length`), which keeps the widest id at 98; a caller should still check
    /// [`CUSTOM_ID_LIMIT`] for ids built from longer input.
    pub fn encode(&self) -> String {
        match self {
            Press::StatusPage(page, button) => format!("pb:status:page:{page}:{}", button.as_str()),
            Press::Recheck(name, ChartPeriod::Day) => format!("pb:status:recheck:{name}"),
            Press::Recheck(name, period) => format!("pb:status:recheck:{name}:{period}"),
            Press::AlertAck(notice) => format!("pb:alert:ack:{notice}"),
            Press::AlertSilence(notice) => format!("pb:alert:silence:{notice}"),
            Press::AlertRecheck(notice) => format!("pb:alert:recheck:{notice}"),
            Press::ActionConfirm(request) => format!("pb:act:confirm:{request}"),
            Press::ActionCancel(request) => format!("pb:act:cancel:{request}"),
            Press::ActionApprove(request) => format!("pb:act:approve:{request}"),
            Press::ActionReject(request) => format!("pb:act:reject:{request}"),
            Press::ActionForm(action) => format!("pb:act:form:{action}"),
            Press::AuditPage(query) => format!(
                "pb:audit:{}:{}:{}:{}:{}",
                query.before.unwrap_or(0),
                query.limit,
                query.outcome.map_or("-", Outcome::as_str),
                query.actor_id.as_deref().unwrap_or("-"),
                query.command.as_deref().unwrap_or_default(),
            ),
        }
    }

    /// Reads a `custom_id` back; `None` when it is not patchbay's or from a release that made
    /// ids this one no longer reads.
    pub fn parse(custom_id: &str) -> Option<Press> {
        let rest = custom_id.strip_prefix("pb:")?;
        if let Some(page) = rest.strip_prefix("status:page:") {
            let (page, button) = page.split_once(':').unwrap_or((page, "refresh"));
            let button = match button {
                "prev" => PageButton::Previous,
                "next" => PageButton::Next,
                _ => PageButton::Refresh,
            };
            return Some(Press::StatusPage(page.parse().ok()?, button));
        }
        if let Some(target) = rest.strip_prefix("status:recheck:") {
            // An integration's name has no `:`, so a second part is the period.
            return Some(match target.split_once(':') {
                Some((name, period)) => Press::Recheck(name.to_string(), period.parse().ok()?),
                None => Press::Recheck(target.to_string(), ChartPeriod::Day),
            });
        }
        if let Some(alert) = rest.strip_prefix("alert:") {
            let (action, notice) = alert.split_once(':')?;
            let notice: i64 = notice.parse().ok()?;
            return match action {
                "ack" => Some(Press::AlertAck(notice)),
                "silence" => Some(Press::AlertSilence(notice)),
                "recheck" => Some(Press::AlertRecheck(notice)),
                _ => None,
            };
        }
        if let Some(step) = rest.strip_prefix("act:") {
            let (step, id) = step.split_once(':')?;
            let id = id.to_string();
            return match step {
                "confirm" => Some(Press::ActionConfirm(id)),
                "cancel" => Some(Press::ActionCancel(id)),
                "approve" => Some(Press::ActionApprove(id)),
                "reject" => Some(Press::ActionReject(id)),
                "form" => Some(Press::ActionForm(id)),
                _ => None,
            };
        }
        if let Some(query) = rest.strip_prefix("audit:") {
            let mut parts = query.splitn(5, ':');
            let before: i64 = parts.next()?.parse().ok()?;
            let limit: u32 = parts.next()?.parse().ok()?;
            let outcome = match parts.next()? {
                "-" => None,
                outcome => Some(outcome.parse().ok()?),
            };
            let actor_id = match parts.next()? {
                "-" => None,
                actor => Some(actor.to_string()),
            };
            let command = Some(parts.next()?.to_string()).filter(|c| !c.is_empty());
            return Some(Press::AuditPage(AuditQuery {
                actor_id,
                command,
                outcome,
                limit: limit.clamp(1, 25),
                before: Some(before),
            }));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip_within_discords_limit() {
        for press in [
            Press::StatusPage(3, PageButton::Next),
            Press::StatusPage(0, PageButton::Previous),
            Press::StatusPage(7, PageButton::Refresh),
            Press::Recheck("payments-api".into(), ChartPeriod::Day),
            Press::Recheck("payments-api".into(), ChartPeriod::Week),
            Press::AlertAck(12),
            Press::AlertSilence(3),
            Press::AlertRecheck(4),
            Press::ActionConfirm("act-0123456789ab".into()),
            Press::ActionCancel("act-0123456789ab".into()),
            Press::ActionApprove("act-0123456789ab".into()),
            Press::ActionReject("act-0123456789ab".into()),
            Press::ActionForm("x".repeat(64)),
        ] {
            assert_eq!(Press::parse(&press.encode()), Some(press));
        }
        let widest = AuditQuery {
            actor_id: Some(u64::MAX.to_string()),
            command: Some("c".repeat(32)),
            outcome: Some(Outcome::RateLimited),
            limit: 25,
            before: Some(i64::MAX),
        };
        let id = Press::AuditPage(widest.clone()).encode();
        assert!(id.len() <= CUSTOM_ID_LIMIT, "{} characters: {id}", id.len());
        let longest = Press::Recheck("x".repeat(64), ChartPeriod::Week).encode();
        assert!(longest.len() <= CUSTOM_ID_LIMIT, "{longest}");
        // A 7d re-check says so; an id without a period (and every id made before periods)
        // reads as 24 hours; an unknown period is not patchbay's.
        assert_eq!(
            Press::Recheck("api".into(), ChartPeriod::Week).encode(),
            "pb:status:recheck:api:7d"
        );
        assert_eq!(
            Press::parse("pb:status:recheck:api"),
            Some(Press::Recheck("api".into(), ChartPeriod::Day))
        );
        assert_eq!(Press::parse("pb:status:recheck:api:3w"), None);
        assert_eq!(Press::parse(&id), Some(Press::AuditPage(widest)));
        let plain = AuditQuery {
            limit: 10,
            before: Some(42),
            ..AuditQuery::default()
        };
        assert_eq!(
            Press::parse(&Press::AuditPage(plain.clone()).encode()),
            Some(Press::AuditPage(plain))
        );
        assert_eq!(
            Press::parse("pb:status:page:3:next")
                .map(|p| p.encode())
                .as_deref(),
            Some("pb:status:page:3:next")
        );
        assert_eq!(Press::parse("pb:alert:nuke:4"), None);
        assert_eq!(Press::parse("pb:status:page:x"), None);
        assert_eq!(Press::parse("other:thing"), None);
    }
}
