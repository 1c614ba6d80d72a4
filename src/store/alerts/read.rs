//! What the fronts, the alert timers and retention read: notices as their messages show them,
//! open incidents and silences, transitions, incident timelines, and pruning.

use super::*;

impl Store {
    /// The last transition turned into incidents (0 before the first).
    #[instrument(skip_all)]
    pub async fn alert_cursor(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT transition_id FROM alert_cursor WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0),
        )
    }

    /// Transitions after `after`, oldest first, at most `limit`.
    #[instrument(skip_all)]
    pub async fn transitions_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Transition)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, integration, from_state, to_state, reason, at_ms FROM transitions \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, transition_of(row)?)))
            .collect()
    }

    /// How many transitions `integration` had since `since`.
    #[instrument(skip_all)]
    pub async fn transitions_since(
        &self,
        integration: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(TRANSITIONS_SINCE)
            .bind(integration)
            .bind(millis(since))
            .fetch_one(&self.pool)
            .await?)
    }

    /// Open incidents recorded without a notice because of a silence or a maintenance window
    /// (`suppressed` starts with `silence:` or `maintenance:`): what a silence's or a window's
    /// end releases.
    #[instrument(skip_all)]
    pub async fn held_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, integration, notice_id, state, severity, opened_at_ms, suppressed FROM incidents \
             WHERE resolved_at_ms IS NULL AND notice_id IS NULL \
             AND (suppressed LIKE 'silence:%' OR suppressed LIKE 'maintenance:%') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(open_incident_of).collect()
    }

    /// When `integration` last changed state, if it ever did.
    #[instrument(skip_all)]
    pub async fn last_transition_at(
        &self,
        integration: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT MAX(at_ms) FROM transitions WHERE integration = $1")
                .bind(integration)
                .fetch_one(&self.pool)
                .await?;
        at.map(from_millis).transpose()
    }

    /// What a notice's message shows now.
    #[instrument(skip_all)]
    pub async fn notice_view(&self, notice: i64) -> Result<Option<NoticeView>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let view = notice_view_in(&mut tx, notice).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The open notices (for reminders and `/alerts list`), oldest first.
    #[instrument(skip_all)]
    pub async fn open_notices(&self) -> Result<Vec<OpenNotice>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, reminded_at_ms, acked_by, silenced_until_ms, mention, flapping \
             FROM notices WHERE resolved_at_ms IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(OpenNotice {
                    id: row.try_get("id")?,
                    reminded_at: from_millis(row.try_get("reminded_at_ms")?)?,
                    acknowledged: row.try_get::<Option<i64>, _>("acked_by")?.is_some(),
                    silenced_until: row
                        .try_get::<Option<i64>, _>("silenced_until_ms")?
                        .map(from_millis)
                        .transpose()?,
                    mention: mention_of(&row.try_get::<String, _>("mention")?)?,
                    flapping: row.try_get("flapping")?,
                })
            })
            .collect()
    }

    /// The open incident of `integration`, if any.
    #[instrument(skip_all)]
    pub async fn open_incident_of(
        &self,
        integration: &str,
    ) -> Result<Option<OpenIncident>, StoreError> {
        let row = sqlx::query(OPEN_INCIDENT)
            .bind(integration)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| open_incident_of(&row)).transpose()
    }

    /// Every open incident, oldest first.
    #[instrument(skip_all)]
    pub async fn open_incidents(&self) -> Result<Vec<OpenIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, integration, notice_id, state, severity, opened_at_ms, suppressed FROM incidents \
             WHERE resolved_at_ms IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(open_incident_of).collect()
    }

    /// The open incidents' ids and notices, oldest first: [`Self::open_incidents`] reduced to
    /// what tells whether they changed.
    #[instrument(skip_all)]
    pub async fn open_incident_ids(&self) -> Result<Vec<(i64, Option<i64>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, notice_id FROM incidents WHERE resolved_at_ms IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// A page of incidents, newest first: at most `limit`, only open ones when `open_only`,
    /// only those older than the incident `before` (the previous page's last). Paging by id,
    /// not by offset, so incidents opened between two pages neither shift nor repeat them.
    /// Returns the page and the `before` of the next one (`None` on the last page).
    #[instrument(skip_all)]
    pub async fn incidents_page(
        &self,
        open_only: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<IncidentRecord>, Option<i64>), StoreError> {
        let mut sql: sqlx::QueryBuilder<Sqlite> = sqlx::QueryBuilder::new(
            "SELECT i.id, i.notice_id, i.integration, i.severity, i.state, i.reason, \
             i.opened_at_ms, i.resolved_at_ms, i.suppressed, n.acked_by, n.acked_kind, \
             n.acked_id, n.acked_name, n.acked_at_ms \
             FROM incidents i LEFT JOIN notices n ON n.id = i.notice_id WHERE 1 = 1",
        );
        if open_only {
            sql.push(" AND i.resolved_at_ms IS NULL");
        }
        if let Some(before) = before {
            sql.push(" AND i.id < ").push_bind(before);
        }
        let limit = limit.max(1);
        // One more than asked, to know whether an older page exists.
        sql.push(" ORDER BY i.id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let mut rows = sql.build().fetch_all(&self.pool).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let records = rows
            .iter()
            .map(|row| {
                let acknowledged = acknowledgement_of(row)?;
                Ok(IncidentRecord {
                    id: row.try_get("id")?,
                    number: row.try_get("notice_id")?,
                    integration: row.try_get("integration")?,
                    severity: severity_of(&row.try_get::<String, _>("severity")?)?,
                    state: state_of(&row.try_get::<String, _>("state")?)?,
                    reason: row.try_get("reason")?,
                    opened_at: from_millis(row.try_get("opened_at_ms")?)?,
                    resolved_at: row
                        .try_get::<Option<i64>, _>("resolved_at_ms")?
                        .map(from_millis)
                        .transpose()?,
                    acknowledged,
                    suppressed: row.try_get("suppressed")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = if more {
            records.last().map(|r| r.id)
        } else {
            None
        };
        Ok((records, next))
    }

    /// The silences in force at `now`.
    #[instrument(skip_all)]
    pub async fn active_silences(&self, now: DateTime<Utc>) -> Result<Vec<Silence>, StoreError> {
        let rows = sqlx::query(ACTIVE_SILENCES)
            .bind(millis(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(silence_of).collect()
    }

    /// Deletes delivered outbox rows older than `delivered_before`, and resolved notices with
    /// their incidents and timelines older than `resolved_before`. Returns the rows deleted.
    #[instrument(skip_all)]
    pub async fn prune_alerts(
        &self,
        delivered_before: DateTime<Utc>,
        resolved_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut deleted =
            sqlx::query("DELETE FROM outbox WHERE done_at_ms IS NOT NULL AND done_at_ms < $1")
                .bind(millis(delivered_before))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let before = millis(resolved_before);
        deleted += sqlx::query(
            "DELETE FROM incident_events WHERE incident_id IN \
             (SELECT id FROM incidents WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < $1)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        deleted += sqlx::query(
            "DELETE FROM incidents WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < $1",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // A resolved notice goes once nothing refers to it any more.
        deleted += sqlx::query(
            "DELETE FROM notices WHERE resolved_at_ms IS NOT NULL AND resolved_at_ms < $1 \
             AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.notice_id = notices.id) \
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.notice_id = notices.id AND o.done_at_ms IS NULL)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    /// An incident's timeline: (time, kind, detail), oldest first.
    #[instrument(skip_all)]
    pub async fn incident_events(
        &self,
        incident: i64,
    ) -> Result<Vec<(DateTime<Utc>, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, kind, detail FROM incident_events WHERE incident_id = $1 ORDER BY id",
        )
        .bind(incident)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    from_millis(row.try_get("at_ms")?)?,
                    row.try_get("kind")?,
                    row.try_get("detail")?,
                ))
            })
            .collect()
    }
}

/// What a notice's message shows, read within `tx`.
pub(super) async fn notice_view_in(
    tx: &mut sqlx::Transaction<'static, Sqlite>,
    notice: i64,
) -> Result<Option<NoticeView>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT id, opened_at_ms, resolved_at_ms, acked_by, acked_kind, acked_id, acked_name, acked_at_ms, \
         silenced_until_ms, flapping FROM notices WHERE id = $1",
    )
    .bind(notice)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let incidents = sqlx::query(
        "SELECT i.id, i.integration, i.severity, i.state, i.reason, i.opened_at_ms, \
         i.resolved_at_ms, s.last_message, s.last_latency_ms, s.last_success \
         FROM incidents i LEFT JOIN integration_states s ON s.integration = i.integration \
         WHERE i.notice_id = $1 ORDER BY i.id",
    )
    .bind(notice)
    .fetch_all(&mut **tx)
    .await?;
    let ids: Vec<i64> = incidents
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut dependents: HashMap<i64, Vec<String>> = HashMap::new();
    for parent in &ids {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT integration FROM incidents WHERE parent_id = $1 AND resolved_at_ms IS NULL \
             ORDER BY integration",
        )
        .bind(parent)
        .fetch_all(&mut **tx)
        .await?;
        if !names.is_empty() {
            dependents.insert(*parent, names);
        }
    }
    let mut lines = Vec::new();
    for row in &incidents {
        let incident: i64 = row.try_get("id")?;
        let resolved_at = row
            .try_get::<Option<i64>, _>("resolved_at_ms")?
            .map(from_millis)
            .transpose()?;
        let failing = row.try_get::<Option<bool>, _>("last_success")? == Some(false);
        lines.push(IncidentLine {
            incident,
            integration: row.try_get("integration")?,
            severity: severity_of(&row.try_get::<String, _>("severity")?)?,
            state: state_of(&row.try_get::<String, _>("state")?)?,
            reason: row.try_get("reason")?,
            since: from_millis(row.try_get("opened_at_ms")?)?,
            last_error: if failing {
                row.try_get("last_message")?
            } else {
                None
            },
            latency_ms: row.try_get("last_latency_ms")?,
            resolved_at,
            dependents: dependents.remove(&incident).unwrap_or_default(),
        });
    }
    let opened_at = from_millis(row.try_get("opened_at_ms")?)?;
    let resolved_at = row
        .try_get::<Option<i64>, _>("resolved_at_ms")?
        .map(from_millis)
        .transpose()?;
    let acknowledged = acknowledgement_of(&row)?;
    let severity = lines
        .iter()
        .filter(|l| l.resolved_at.is_none())
        .map(|l| l.severity)
        .min()
        .or_else(|| lines.iter().map(|l| l.severity).min())
        .unwrap_or(Severity::Warning);
    Ok(Some(NoticeView {
        notice,
        severity,
        status: match (resolved_at, &acknowledged) {
            (Some(_), _) => NoticeStatus::Resolved,
            (None, Some(_)) => NoticeStatus::Acknowledged,
            (None, None) => NoticeStatus::Open,
        },
        incidents: lines,
        opened_at,
        resolved_after: resolved_at.map(|at| (at - opened_at).to_std().unwrap_or_default()),
        acknowledged,
        silenced_until: row
            .try_get::<Option<i64>, _>("silenced_until_ms")?
            .map(from_millis)
            .transpose()?,
        flapping: row.try_get("flapping")?,
    }))
}

/// Who acknowledged a notice and when, from its `acked_*` columns (`None` when nobody has).
fn acknowledgement_of(
    row: &sqlx::sqlite::SqliteRow,
) -> Result<Option<Acknowledgement>, StoreError> {
    if row.try_get::<Option<i64>, _>("acked_by")?.is_none() {
        return Ok(None);
    }
    Ok(Some(Acknowledgement {
        by: actor_of(
            &row.try_get::<Option<String>, _>("acked_kind")?
                .unwrap_or_else(|| "discord".into()),
            row.try_get::<Option<String>, _>("acked_id")?,
            &row.try_get::<Option<String>, _>("acked_name")?
                .unwrap_or_default(),
        )?,
        at: from_millis(row.try_get::<Option<i64>, _>("acked_at_ms")?.unwrap_or(0))?,
    }))
}
