//! `/alerts` and the alert buttons, and their REST twins: what is open and silenced, and
//! acknowledging, silencing and unsilencing. Answers are values ([`IncidentAcked`],
//! [`Silenced`], [`NoticeSilenced`], [`Unsilenced`], [`AlertsOverview`]); the fronts draw them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::status::unknown_integration;
use super::{CommandError, ControlPlane, Invalid};
use crate::model::notice::NoticeView;
use crate::model::{Actor, shorten};
use crate::store::alerts::{IncidentRecord, OpenIncident, Silence};

/// The longest silence reason kept, in characters: the limit `/alerts silence` registers for its
/// `reason` option, which Discord enforces only in its own client.
pub const REASON_LIMIT: usize = 200;

/// The longest silence.
const MAX_SILENCE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// How long the Silence button silences.
pub const BUTTON_SILENCE: std::time::Duration = std::time::Duration::from_secs(3600);

/// What `/alerts list` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsOverview {
    /// Open notices, oldest first.
    pub open: Vec<NoticeView>,
    /// Open incidents recorded but not notified (silenced, in maintenance, or under a DOWN
    /// dependency).
    pub recorded: Vec<OpenIncident>,
    /// Silences in force.
    pub silences: Vec<Silence>,
}

/// An incident acknowledged: reminders stop, and its message says who has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IncidentAcked {
    /// The incident (notice) number.
    pub notice: i64,
}

/// A silence made: incidents of `target` are recorded, not notified, until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Silenced {
    /// The silence's number.
    pub id: i64,
    /// An integration name or `tag:NAME`.
    pub target: String,
    /// When it ends.
    pub until: DateTime<Utc>,
}

/// The Silence button: every open integration of an incident silenced for an hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeSilenced {
    /// The incident (notice) number.
    pub notice: i64,
    /// The integrations silenced, with the silence made for each.
    pub silences: Vec<(String, i64)>,
    /// When they end.
    pub until: DateTime<Utc>,
}

/// A silence ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Unsilenced {
    /// The silence's number.
    pub silence: i64,
}

/// A page of the incident list, newest first, and where the next (older) page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentPage {
    /// The incidents of this page.
    pub incidents: Vec<IncidentRecord>,
    /// Pass as `before` for the next page; `None` on the last one.
    pub next: Option<i64>,
}

impl ControlPlane {
    fn alerts(&self) -> Result<&crate::alerts::Alerts, CommandError> {
        self.alerts
            .as_deref()
            .ok_or_else(|| Invalid::NoAlerts.into())
    }

    /// Open incidents (as their notices show them) and active silences.
    pub async fn alerts_overview(&self) -> Result<AlertsOverview, CommandError> {
        self.alerts()?;
        let now = crate::model::now();
        let mut open = Vec::new();
        for notice in self.store.open_notices().await? {
            if let Some(view) = self.store.notice_view(notice.id).await? {
                open.push(view);
            }
        }
        let recorded = self
            .store
            .open_incidents()
            .await?
            .into_iter()
            .filter(|i| i.notice.is_none())
            .collect();
        Ok(AlertsOverview {
            open,
            recorded,
            silences: self.store.active_silences(now).await?,
        })
    }

    /// A page of incidents, newest first: only open ones when `open_only`, only those
    /// older than `before` (the previous page's `next`), at most `limit`. Pages never overlap
    /// or skip, even while incidents open.
    pub async fn incidents(
        &self,
        open_only: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<IncidentPage, CommandError> {
        let (incidents, next) = self.store.incidents_page(open_only, before, limit).await?;
        Ok(IncidentPage { incidents, next })
    }

    /// The silences in force, oldest first.
    pub async fn silences(&self) -> Result<Vec<Silence>, CommandError> {
        Ok(self.store.active_silences(crate::model::now()).await?)
    }

    /// `/alerts ack` and the Acknowledge button.
    pub async fn acknowledge(
        &self,
        notice: i64,
        by: &Actor,
    ) -> Result<IncidentAcked, CommandError> {
        match self
            .alerts()?
            .acknowledge(notice, by, crate::model::now())
            .await?
        {
            crate::alerts::Acked::Now => Ok(IncidentAcked { notice }),
            crate::alerts::Acked::Already => Err(Invalid::AlreadyAcknowledged { notice }.into()),
            crate::alerts::Acked::Resolved => Err(Invalid::IncidentResolved { notice }.into()),
            crate::alerts::Acked::Unknown => Err(Invalid::UnknownIncident { notice }.into()),
        }
    }

    /// `/alerts silence`: `target` is an integration name or `tag:NAME`; `length` is a
    /// duration as the config writes them (`30m`, `2d`).
    pub async fn silence(
        &self,
        target: &str,
        length: &str,
        reason: &str,
        by: &Actor,
    ) -> Result<Silenced, CommandError> {
        let config = self.config();
        let valid = match target.strip_prefix("tag:") {
            Some(tag) => config
                .integrations
                .iter()
                .any(|i| i.tags.iter().any(|t| t == tag)),
            None => config.integrations.iter().any(|i| i.name == target),
        };
        if !valid {
            return Err(match target.strip_prefix("tag:") {
                Some(tag) => Invalid::UnknownTag {
                    tag: tag.to_string(),
                }
                .into(),
                None => unknown_integration(&config, target),
            });
        }
        let length = crate::duration::parse(length)
            .map_err(|err| Invalid::Duration { error: err.clone() })?;
        if length.is_zero() || length > MAX_SILENCE {
            return Err(Invalid::SilenceLength.into());
        }
        let now = crate::model::now();
        // A client that ignores the option's limit can send a reason of thousands of
        // characters; it is kept cut, as every later view of it would show it cut anyway.
        let reason = shorten(reason, REASON_LIMIT);
        let id = self
            .alerts()?
            .silence(target, length, &reason, by, now)
            .await?;
        Ok(Silenced {
            id,
            target: target.to_string(),
            until: now + chrono::Duration::from_std(length).unwrap_or_default(),
        })
    }

    /// The Silence button: silences every open integration of `notice` for
    /// [`BUTTON_SILENCE`].
    pub async fn silence_notice(
        &self,
        notice: i64,
        by: &Actor,
    ) -> Result<NoticeSilenced, CommandError> {
        let names = self.notice_integrations(notice).await?;
        let now = crate::model::now();
        let mut silences = Vec::new();
        for integration in names {
            let id = self
                .alerts()?
                .silence(
                    &integration,
                    BUTTON_SILENCE,
                    &format!("Silence 1h on incident #{notice}"),
                    by,
                    now,
                )
                .await?;
            silences.push((integration, id));
        }
        Ok(NoticeSilenced {
            notice,
            silences,
            until: now + chrono::Duration::from_std(BUTTON_SILENCE).unwrap_or_default(),
        })
    }

    /// The open integrations of `notice` (what its buttons act on).
    pub async fn notice_integrations(&self, notice: i64) -> Result<Vec<String>, CommandError> {
        match self.alerts()?.notice_integrations(notice).await? {
            None => Err(Invalid::UnknownIncident { notice }.into()),
            Some(names) if names.is_empty() => Err(Invalid::IncidentResolved { notice }.into()),
            Some(names) => Ok(names),
        }
    }

    /// `/alerts unsilence`.
    pub async fn unsilence(&self, silence: i64) -> Result<Unsilenced, CommandError> {
        if self
            .alerts()?
            .unsilence(silence, crate::model::now())
            .await?
        {
            Ok(Unsilenced { silence })
        } else {
            Err(Invalid::UnknownSilence { silence }.into())
        }
    }
}
