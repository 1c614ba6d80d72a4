//! Storage of `/perms` grants and the audit log.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row, Sqlite};
use tracing::instrument;

use super::{Store, StoreError, from_millis, millis};
use super::{id, snowflake};
use crate::access::Allowed;
use crate::access::{Grant, GrantSource, Permission};
use crate::audit::{AuditEntry, AuditPage, AuditQuery, Outcome};
use crate::model::Actor;
use crate::model::Snowflake;

impl Store {
    /// Grants `permission` to `role` in `guild`; false when it was already granted there.
    #[instrument(skip_all)]
    pub async fn add_grant(
        &self,
        guild: Snowflake,
        role: Snowflake,
        permission: Permission,
        by: Snowflake,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO grants (guild_id, role_id, permission, granted_by, granted_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (guild_id, role_id, permission) DO NOTHING",
        )
        .bind(id(guild))
        .bind(id(role))
        .bind(permission.as_str())
        .bind(id(by))
        .bind(millis(at))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Revokes a grant made with `/perms grant`; false when there was none.
    #[instrument(skip_all)]
    pub async fn remove_grant(
        &self,
        guild: Snowflake,
        role: Snowflake,
        permission: Permission,
    ) -> Result<bool, StoreError> {
        let removed = sqlx::query(
            "DELETE FROM grants WHERE guild_id = $1 AND role_id = $2 AND permission = $3",
        )
        .bind(id(guild))
        .bind(id(role))
        .bind(permission.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(removed == 1)
    }

    /// Every grant made with `/perms grant`, in every guild.
    #[instrument(skip_all)]
    pub async fn command_grants(&self) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(
            "SELECT guild_id, role_id, permission, granted_by FROM grants \
             ORDER BY guild_id, role_id, permission",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let permission: String = row.try_get("permission")?;
                Ok(Grant {
                    role: snowflake(row.try_get("role_id")?),
                    permission: permission.parse().map_err(StoreError::Corrupt)?,
                    source: GrantSource::Command {
                        guild: snowflake(row.try_get("guild_id")?),
                        by: snowflake(row.try_get("granted_by")?),
                    },
                })
            })
            .collect()
    }

    /// Appends an entry to the audit log.
    #[instrument(skip_all, fields(command = %entry.command, outcome = %entry.outcome))]
    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let (kind, actor_id, name) = entry.actor.parts();
        sqlx::query(
            "INSERT INTO audit_log (at_ms, guild_id, channel_id, actor_kind, actor_id, actor_name, \
             command, options, permission, allowed_by, outcome, latency_ms, error_kind) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(millis(entry.at))
        .bind(entry.guild.map(id))
        .bind(entry.channel.map(id))
        .bind(kind)
        .bind(actor_id)
        .bind(name)
        .bind(&entry.command)
        .bind(entry.options.to_string())
        .bind(
            entry
                .permission
                .map(super::super::access::Permission::as_str),
        )
        .bind(entry.allowed.as_ref().map(Allowed::code))
        .bind(entry.outcome.as_str())
        .bind(entry.latency_ms)
        .bind(&entry.error_kind)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest entries matching `query`, newest first.
    #[instrument(skip_all)]
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self.audit_page(query).await?.entries)
    }

    /// A page of entries matching `query`, newest first (by insertion order, which is time
    /// order), and the cursor of the next page. The cursor is a row position, not an offset, so
    /// entries written between two pages do not shift them.
    #[instrument(skip_all)]
    pub async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage, StoreError> {
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT id, at_ms, guild_id, channel_id, actor_kind, actor_id, actor_name, command, \
             options, permission, allowed_by, outcome, latency_ms, error_kind FROM audit_log \
             WHERE 1 = 1",
        );
        if let Some(actor) = &query.actor_id {
            sql.push(" AND actor_id = ").push_bind(actor.clone());
        }
        if let Some(command) = &query.command {
            // A group names its commands too: `action` finds `action run`, `action approve`...
            let escaped = command
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            sql.push(" AND (command = ")
                .push_bind(command.clone())
                .push(" OR command LIKE ")
                .push_bind(format!("{escaped} %"))
                .push(" ESCAPE '\\')");
        }
        if let Some(outcome) = query.outcome {
            sql.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(before) = query.before {
            sql.push(" AND id < ").push_bind(before);
        }
        // One more than asked, to know whether an older page exists.
        let limit = query.limit.max(1);
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit) + 1);
        let mut rows = sql.build().fetch_all(&self.pool).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let older = match rows.last() {
            Some(last) if more => Some(last.try_get::<i64, _>("id")?),
            _ => None,
        };
        let entries = rows
            .into_iter()
            .map(|row| {
                let actor = Actor::from_parts(
                    &row.try_get::<String, _>("actor_kind")?,
                    &row.try_get::<String, _>("actor_id")?,
                    &row.try_get::<String, _>("actor_name")?,
                )
                .map_err(StoreError::Corrupt)?;
                let permission = row
                    .try_get::<Option<String>, _>("permission")?
                    .map(|p| p.parse().map_err(StoreError::Corrupt))
                    .transpose()?;
                let allowed = row
                    .try_get::<Option<String>, _>("allowed_by")?
                    .map(|code| {
                        Allowed::from_code(&code)
                            .ok_or_else(|| StoreError::Corrupt(format!("allowed_by {code:?}")))
                    })
                    .transpose()?;
                let options: String = row.try_get("options")?;
                let outcome: String = row.try_get("outcome")?;
                Ok(AuditEntry {
                    at: from_millis(row.try_get("at_ms")?)?,
                    guild: row.try_get::<Option<i64>, _>("guild_id")?.map(snowflake),
                    channel: row.try_get::<Option<i64>, _>("channel_id")?.map(snowflake),
                    actor,
                    command: row.try_get("command")?,
                    options: serde_json::from_str(&options)
                        .map_err(|err| StoreError::Corrupt(format!("audit options: {err}")))?,
                    permission,
                    allowed,
                    outcome: outcome.parse::<Outcome>().map_err(StoreError::Corrupt)?,
                    latency_ms: row.try_get("latency_ms")?,
                    error_kind: row.try_get("error_kind")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(AuditPage { entries, older })
    }

    /// Deletes audit entries older than `retention`; returns how many.
    #[instrument(skip_all)]
    pub async fn prune_audit(
        &self,
        now: DateTime<Utc>,
        retention: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let before = millis(now) - retention.as_millis() as i64;
        Ok(sqlx::query("DELETE FROM audit_log WHERE at_ms < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
