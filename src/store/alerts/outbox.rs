//! The outbox as the dispatcher sees it: which deliveries are due, what a delivery shows, and
//! how each attempt ended. A row is done only once the receiver confirmed it.

use super::read::notice_view_in;
use super::*;

impl Store {
    /// The deliveries that may go now: the oldest pending row of each notice, when due, oldest
    /// first, leaving out what the dispatcher cannot start yet (see [`DueFilter`]).
    #[instrument(skip_all)]
    pub async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        skip: &DueFilter,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        // The lists are integers formatted into the statement (no text from outside), so the
        // statement stays portable without array parameters.
        let list = |ids: &[i64]| {
            ids.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sql = String::from(
            "SELECT o.id, o.notice_id, o.kind, o.reply, o.mention, o.attempts, o.created_at_ms, \
             n.channel_id FROM outbox o LEFT JOIN notices n ON n.id = o.notice_id \
             WHERE o.done_at_ms IS NULL AND o.not_before_ms <= $1 \
             AND o.id = (SELECT MIN(p.id) FROM outbox p WHERE p.notice_id = o.notice_id AND p.done_at_ms IS NULL)",
        );
        if !skip.notices.is_empty() {
            sql.push_str(&format!(
                " AND o.notice_id NOT IN ({})",
                list(&skip.notices)
            ));
        }
        if !skip.channels.is_empty() {
            sql.push_str(&format!(
                " AND COALESCE(n.channel_id, 0) NOT IN ({})",
                list(&skip.channels)
            ));
        }
        if !skip.edits_in.is_empty() {
            sql.push_str(&format!(
                " AND NOT (o.kind = 'edit' AND COALESCE(n.channel_id, 0) IN ({}))",
                list(&skip.edits_in)
            ));
        }
        sql.push_str(" ORDER BY o.id LIMIT $2");
        // Safe: only integers are formatted into it.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .bind(millis(now))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(OutboxRow {
                    id: row.try_get("id")?,
                    notice: row.try_get("notice_id")?,
                    kind: DeliveryKind::parse(&row.try_get::<String, _>("kind")?)?,
                    reply: row
                        .try_get::<Option<String>, _>("reply")?
                        .map(|reply| reply.parse().map_err(StoreError::Corrupt))
                        .transpose()?,
                    mention: mention_of(&row.try_get::<String, _>("mention")?)?,
                    attempts: row.try_get("attempts")?,
                    created_at: from_millis(row.try_get("created_at_ms")?)?,
                    channel: row.try_get::<Option<i64>, _>("channel_id")?.map(snowflake),
                })
            })
            .collect()
    }

    /// When the next pending delivery that is not due yet becomes due (None when there is
    /// none). Deliveries due now are the caller's to start or to wait for.
    #[instrument(skip_all)]
    pub async fn next_delivery_after(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(not_before_ms) FROM outbox WHERE done_at_ms IS NULL AND not_before_ms > $1",
        )
        .bind(millis(now))
        .fetch_one(&self.pool)
        .await?;
        at.map(from_millis).transpose()
    }

    /// Queues an edit of `notice`, due at once: its message shows something older than the
    /// notice (see [`crate::alerts::notice::Posted::shows_view`]).
    #[instrument(skip_all)]
    pub async fn queue_edit(&self, notice: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(QUEUE_EDIT)
            .bind(notice)
            .bind(millis(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many deliveries are pending.
    #[instrument(skip_all)]
    pub async fn pending_deliveries(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE done_at_ms IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// What a delivery of `notice` shows, read in one snapshot with the newest outbox row of
    /// the notice written before it: every pending edit up to that row is shown by this view,
    /// so it can be completed with the delivery (see [`Store::delivery_done`]).
    #[instrument(skip_all)]
    pub async fn delivery_snapshot(
        &self,
        notice: i64,
    ) -> Result<Option<(NoticeView, i64)>, StoreError> {
        // One read transaction: in WAL mode it reads one snapshot, so no row counted here can
        // be missing from the view.
        let mut tx = self.pool.begin().await?;
        let newest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM outbox WHERE notice_id = $1")
                .bind(notice)
                .fetch_one(&mut *tx)
                .await?;
        let view = notice_view_in(&mut tx, notice).await?;
        tx.commit().await?;
        Ok(view.map(|view| (view, newest.unwrap_or(0))))
    }

    /// Marks a delivery done. A post records the message it created; a post or an edit also
    /// completes the notice's other pending edits up to `shown` (the newest row the delivered
    /// view included; see [`Store::delivery_snapshot`]). When the message may show less than
    /// the view (a post answered with the message an earlier attempt created), pass `shown` =
    /// the row's own id, so no edit is taken as delivered, and `edit_again`, which queues an
    /// edit that brings the message up to date.
    #[instrument(skip_all)]
    pub async fn delivery_done(
        &self,
        row: &OutboxRow,
        message: Option<MessageRef>,
        now: DateTime<Utc>,
        shown: i64,
        edit_again: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE outbox SET done_at_ms = $1, attempts = attempts + 1 WHERE id = $2")
            .bind(millis(now))
            .bind(row.id)
            .execute(&mut *tx)
            .await?;
        if let Some(message) = message {
            sqlx::query("UPDATE notices SET message_channel = $1, message_id = $2 WHERE id = $3")
                .bind(id(message.channel))
                .bind(id(message.message))
                .bind(row.notice)
                .execute(&mut *tx)
                .await?;
        }
        if row.kind == DeliveryKind::Edit || row.kind == DeliveryKind::Post {
            sqlx::query(
                "UPDATE outbox SET done_at_ms = $1 WHERE notice_id = $2 AND kind = 'edit' \
                 AND done_at_ms IS NULL AND id <= $3",
            )
            .bind(millis(now))
            .bind(row.notice)
            .bind(shown)
            .execute(&mut *tx)
            .await?;
        }
        if edit_again {
            sqlx::query(QUEUE_EDIT)
                .bind(row.notice)
                .bind(millis(now))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// This installation's random token (migration `0004_installation.sql`), which makes
    /// delivery keys unique across databases.
    #[instrument(skip_all)]
    pub async fn installation_token(&self) -> Result<String, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT token FROM installation WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Moves a delivery to `not_before` without counting an attempt (it was not tried).
    #[instrument(skip_all)]
    pub async fn postpone(
        &self,
        row: &OutboxRow,
        not_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET not_before_ms = $1 WHERE id = $2")
            .bind(millis(not_before))
            .bind(row.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    #[instrument(skip_all)]
    pub async fn delivery_failed(
        &self,
        row: &OutboxRow,
        not_before: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, not_before_ms = $1, last_error = $2 WHERE id = $3",
        )
        .bind(millis(not_before))
        .bind(error)
        .bind(row.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where a notice goes and its message, if posted.
    #[instrument(skip_all)]
    pub async fn notice_target(&self, notice: i64) -> Result<Option<NoticeTarget>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT channel_id, mention, message_channel, message_id FROM notices WHERE id = $1",
        )
        .bind(notice)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let message = match (
            row.try_get::<Option<i64>, _>("message_channel")?,
            row.try_get::<Option<i64>, _>("message_id")?,
        ) {
            (Some(channel), Some(message)) => Some(MessageRef {
                channel: snowflake(channel),
                message: snowflake(message),
            }),
            _ => None,
        };
        Ok(Some(NoticeTarget {
            channel: row.try_get::<Option<i64>, _>("channel_id")?.map(snowflake),
            message,
            mention: mention_of(&row.try_get::<String, _>("mention")?)?,
        }))
    }

    /// Records the message a notice was posted as.
    #[instrument(skip_all)]
    pub async fn set_message(&self, notice: i64, message: MessageRef) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET message_channel = $1, message_id = $2 WHERE id = $3")
            .bind(id(message.channel))
            .bind(id(message.message))
            .bind(notice)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets a notice's message (deleted in Discord), so the next delivery posts anew.
    #[instrument(skip_all)]
    pub async fn forget_message(&self, notice: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE notices SET message_channel = NULL, message_id = NULL WHERE id = $1")
            .bind(notice)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
