//! [`AlertTx`]: one transaction of alert changes. The alert pipeline opens one per transition
//! (or per button, or per timer), makes every change it causes through it, and commits once, so
//! an incident change, the outbox rows it causes and the cursor move together or not at all.

use super::*;

/// One transaction of alert changes.
pub struct AlertTx {
    tx: sqlx::Transaction<'static, Sqlite>,
}

impl AlertTx {
    /// Commits every change made through this transaction.
    #[instrument(skip_all)]
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// The open incident of `integration`, if any.
    #[instrument(skip_all)]
    pub async fn open_incident(
        &mut self,
        integration: &str,
    ) -> Result<Option<OpenIncident>, StoreError> {
        let row = sqlx::query(OPEN_INCIDENT)
            .bind(integration)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|row| open_incident_of(&row)).transpose()
    }

    /// Opens an incident; returns its id. `notice` is the message that tells about it (None
    /// while it is only recorded, and then `suppressed` says why); `parent` is the incident of
    /// a DOWN dependency that explains it.
    #[instrument(skip_all)]
    pub async fn insert_incident(
        &mut self,
        new: &NewIncident<'_>,
        notice: Option<i64>,
        parent: Option<i64>,
        suppressed: Option<&str>,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (integration, notice_id, severity, state, reason, opened_at_ms, \
             parent_id, suppressed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new.integration)
        .bind(notice)
        .bind(new.severity.as_str())
        .bind(new.state.as_str())
        .bind(new.reason)
        .bind(millis(new.at))
        .bind(parent)
        .bind(suppressed)
        .fetch_one(&mut *self.tx)
        .await?;
        self.event(
            id,
            new.at,
            "opened",
            &format!("{}: {}", new.state, new.reason),
        )
        .await?;
        Ok(id)
    }

    /// Records a change of an open incident's state.
    #[instrument(skip_all)]
    pub async fn update_incident(
        &mut self,
        incident: i64,
        state: State,
        severity: Severity,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET state = $1, severity = $2, reason = $3 WHERE id = $4")
            .bind(state.as_str())
            .bind(severity.as_str())
            .bind(reason)
            .bind(incident)
            .execute(&mut *self.tx)
            .await?;
        self.event(incident, at, "changed", &format!("{state}: {reason}"))
            .await
    }

    /// Resolves an incident.
    #[instrument(skip_all)]
    pub async fn resolve_incident(
        &mut self,
        incident: i64,
        state: State,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE incidents SET state = $1, reason = $2, resolved_at_ms = $3 WHERE id = $4",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(millis(at))
        .bind(incident)
        .execute(&mut *self.tx)
        .await?;
        self.event(incident, at, "resolved", &format!("{state}: {reason}"))
            .await
    }

    /// Appends to an incident's timeline.
    #[instrument(skip_all)]
    pub async fn event(
        &mut self,
        incident: i64,
        at: DateTime<Utc>,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO incident_events (incident_id, at_ms, kind, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(incident)
        .bind(millis(at))
        .bind(kind)
        .bind(detail)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// An unresolved, non-flapping notice on `channel` opened at or after `since` (a burst to
    /// join).
    #[instrument(skip_all)]
    pub async fn joinable_notice(
        &mut self,
        channel: Option<Snowflake>,
        since: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let Some(channel) = channel else {
            return Ok(None);
        };
        Ok(sqlx::query_scalar(
            "SELECT id FROM notices WHERE channel_id = $1 AND resolved_at_ms IS NULL \
             AND opened_at_ms >= $2 AND flapping = FALSE ORDER BY id LIMIT 1",
        )
        .bind(id(channel))
        .bind(millis(since))
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// Creates a notice; returns its id.
    #[instrument(skip_all)]
    pub async fn insert_notice(
        &mut self,
        channel: Option<Snowflake>,
        mention: &[Snowflake],
        at: DateTime<Utc>,
        flapping: bool,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO notices (channel_id, mention, opened_at_ms, reminded_at_ms, flapping) \
             VALUES ($1, $2, $3, $3, $4) RETURNING id",
        )
        .bind(channel.map(id))
        .bind(mention_json(mention))
        .bind(millis(at))
        .bind(flapping)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// How many incidents of `notice` are still open.
    #[instrument(skip_all)]
    pub async fn open_in_notice(&mut self, notice: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM incidents WHERE notice_id = $1 AND resolved_at_ms IS NULL",
        )
        .bind(notice)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Marks a notice resolved (every incident in it is).
    #[instrument(skip_all)]
    pub async fn resolve_notice(
        &mut self,
        notice: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET resolved_at_ms = $1 WHERE id = $2")
            .bind(millis(at))
            .bind(notice)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// When a notice opened.
    #[instrument(skip_all)]
    pub async fn notice_opened_at(&mut self, notice: i64) -> Result<DateTime<Utc>, StoreError> {
        let at: i64 = sqlx::query_scalar("SELECT opened_at_ms FROM notices WHERE id = $1")
            .bind(notice)
            .fetch_one(&mut *self.tx)
            .await?;
        from_millis(at)
    }

    /// The roles a notice mentions.
    #[instrument(skip_all)]
    pub async fn notice_mention(&mut self, notice: i64) -> Result<Vec<Snowflake>, StoreError> {
        let text: String = sqlx::query_scalar("SELECT mention FROM notices WHERE id = $1")
            .bind(notice)
            .fetch_one(&mut *self.tx)
            .await?;
        mention_of(&text)
    }

    /// Records who acknowledged a notice; false when it was already acknowledged or resolved.
    #[instrument(skip_all)]
    pub async fn acknowledge(
        &mut self,
        notice: i64,
        by: &Actor,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (kind, actor_id, name) = by.parts();
        let changed = sqlx::query(
            "UPDATE notices SET acked_by = $1, acked_kind = $2, acked_id = $3, acked_name = $4, \
             acked_at_ms = $5 WHERE id = $6 AND acked_by IS NULL AND resolved_at_ms IS NULL",
        )
        .bind(discord_id(by))
        .bind(kind)
        .bind(&actor_id)
        .bind(&name)
        .bind(millis(at))
        .bind(notice)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if changed > 0 {
            for incident in self.incidents_of(notice).await? {
                self.event(
                    incident,
                    at,
                    "acknowledged",
                    &format!("by {name} ({kind} {actor_id})"),
                )
                .await?;
            }
        }
        Ok(changed > 0)
    }

    /// Sets until when a notice is silenced.
    #[instrument(skip_all)]
    pub async fn silence_notice(
        &mut self,
        notice: i64,
        until: DateTime<Utc>,
        at: DateTime<Utc>,
        why: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET silenced_until_ms = $1 WHERE id = $2")
            .bind(millis(until))
            .bind(notice)
            .execute(&mut *self.tx)
            .await?;
        for incident in self.incidents_of(notice).await? {
            self.event(incident, at, "silenced", why).await?;
        }
        Ok(())
    }

    /// Records that a reminder went out.
    #[instrument(skip_all)]
    pub async fn reminded(&mut self, notice: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET reminded_at_ms = $1 WHERE id = $2")
            .bind(millis(at))
            .bind(notice)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn incidents_of(&mut self, notice: i64) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM incidents WHERE notice_id = $1 ORDER BY id")
                .bind(notice)
                .fetch_all(&mut *self.tx)
                .await?,
        )
    }

    /// Queues a delivery, due at once (`at` is when the change happened).
    #[instrument(skip_all)]
    pub async fn enqueue(
        &mut self,
        notice: i64,
        kind: DeliveryKind,
        reply: Option<ReplyKind>,
        mention: &[Snowflake],
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO outbox (notice_id, kind, reply, mention, created_at_ms, not_before_ms, attempts) \
             VALUES ($1, $2, $3, $4, $5, 0, 0) RETURNING id",
        )
        .bind(notice)
        .bind(kind.as_str())
        .bind(reply.map(ReplyKind::as_str))
        .bind(mention_json(mention))
        .bind(millis(at))
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Moves the alert cursor to `transition`.
    #[instrument(skip_all)]
    pub async fn set_cursor(&mut self, transition: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO alert_cursor (id, transition_id) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET transition_id = excluded.transition_id",
        )
        .bind(transition)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Adds a silence; returns its id.
    #[instrument(skip_all)]
    pub async fn insert_silence(
        &mut self,
        target: &str,
        until: DateTime<Utc>,
        reason: &str,
        by: &Actor,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let (kind, actor_id, name) = by.parts();
        Ok(sqlx::query_scalar(
            "INSERT INTO silences (target, until_ms, reason, created_by, created_kind, created_id, \
             created_name, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(target)
        .bind(millis(until))
        .bind(reason)
        .bind(discord_id(by))
        .bind(kind)
        .bind(actor_id)
        .bind(name)
        .bind(millis(at))
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Ends a silence now; false when there is no active silence with that id.
    #[instrument(skip_all)]
    pub async fn remove_silence(
        &mut self,
        silence: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "UPDATE silences SET removed_at_ms = $1 WHERE id = $2 AND removed_at_ms IS NULL AND until_ms > $1",
        )
        .bind(millis(at))
        .bind(silence)
        .execute(&mut *self.tx)
        .await?
        .rows_affected()
            > 0)
    }

    /// Puts a recorded incident under a notice (a dependent that needs its own message now).
    #[instrument(skip_all)]
    pub async fn attach(&mut self, incident: i64, notice: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET notice_id = $1, suppressed = NULL WHERE id = $2")
            .bind(notice)
            .bind(incident)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The open incidents recorded under `parent` (dependents) without a notice of their own.
    #[instrument(skip_all)]
    pub async fn orphaned_children(
        &mut self,
        parent: i64,
    ) -> Result<Vec<OpenIncident>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, integration, notice_id, state, severity, opened_at_ms, suppressed FROM incidents              WHERE parent_id = $1 AND resolved_at_ms IS NULL AND notice_id IS NULL ORDER BY id",
        )
        .bind(parent)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(open_incident_of).collect()
    }

    /// Whether `notice` is a flapping notice (quiet until its integration is stable).
    #[instrument(skip_all)]
    pub async fn is_flapping(&mut self, notice: i64) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar::<_, bool>("SELECT flapping FROM notices WHERE id = $1")
                .bind(notice)
                .fetch_optional(&mut *self.tx)
                .await?
                .unwrap_or(false),
        )
    }

    /// The silences in force at `now` (as [`Store::active_silences`], inside this transaction).
    #[instrument(skip_all)]
    pub async fn active_silences(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Vec<Silence>, StoreError> {
        let rows = sqlx::query(ACTIVE_SILENCES)
            .bind(millis(now))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(silence_of).collect()
    }

    /// How many transitions `integration` had since `since`.
    #[instrument(skip_all)]
    pub async fn transitions_since(
        &mut self,
        integration: &str,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(TRANSITIONS_SINCE)
            .bind(integration)
            .bind(millis(since))
            .fetch_one(&mut *self.tx)
            .await?)
    }

    /// The open flapping notice that already covers `integration`, if any.
    #[instrument(skip_all)]
    pub async fn flapping_notice_of(
        &mut self,
        integration: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT n.id FROM notices n WHERE n.flapping = TRUE AND n.resolved_at_ms IS NULL              AND EXISTS (SELECT 1 FROM incidents i WHERE i.notice_id = n.id AND i.integration = $1)              ORDER BY n.id LIMIT 1",
        )
        .bind(integration)
        .fetch_optional(&mut *self.tx)
        .await?)
    }

    /// A flapping notice's integration is stable again: it becomes an ordinary notice.
    #[instrument(skip_all)]
    pub async fn end_flapping(&mut self, notice: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET flapping = FALSE WHERE id = $1")
            .bind(notice)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The open notices whose incidents are on one of `integrations`.
    #[instrument(skip_all)]
    pub async fn open_notices_of(
        &mut self,
        integrations: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        let mut out = Vec::new();
        for name in integrations {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT DISTINCT notice_id FROM incidents WHERE integration = $1 \
                 AND resolved_at_ms IS NULL AND notice_id IS NOT NULL",
            )
            .bind(name)
            .fetch_all(&mut *self.tx)
            .await?;
            out.extend(ids);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl Store {
    /// Starts a transaction of alert changes.
    #[instrument(skip_all)]
    pub async fn alert_tx(&self) -> Result<AlertTx, StoreError> {
        // IMMEDIATE takes the write lock at BEGIN, waiting up to the busy timeout. A deferred
        // transaction reads first and fails at once with SQLITE_BUSY when it then writes while
        // the batching writer holds the lock (measured: hundreds of such failures in a burst of
        // 1,000 transitions with `benches/alerts.rs`). PostgreSQL will lock rows instead.
        Ok(AlertTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
        })
    }
}
