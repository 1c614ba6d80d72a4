//! Storage of REST API keys (migration `0008_api_keys.sql`): their hashes, names, permissions
//! and when they were made, last used and revoked. The key itself is never stored.

use chrono::{DateTime, Utc};
use sqlx::Row;
use tracing::instrument;

use super::{Store, StoreError, from_millis, millis};
use crate::access::Permission;
use crate::apikey::ApiKey;
use crate::model::Actor;

/// The keys that are not revoked, by name.
const ACTIVE: &str = "SELECT name, permissions, created_at_ms, created_kind, created_id, \
     created_name, last_used_ms FROM api_keys WHERE revoked_at_ms IS NULL ORDER BY name";

/// The key (not revoked) whose hash is `$1`.
const BY_HASH: &str = "SELECT name, permissions, created_at_ms, created_kind, created_id, \
     created_name, last_used_ms FROM api_keys WHERE key_hash = $1 AND revoked_at_ms IS NULL";

impl Store {
    /// Keeps a new key under `name`; false when a key that is not revoked has that name.
    #[instrument(skip_all)]
    pub async fn insert_api_key(&self, key: &ApiKey, hash: &str) -> Result<bool, StoreError> {
        let (kind, id, name) = key.created_by.parts();
        let permissions: Vec<&str> = key.permissions.iter().map(|p| p.as_str()).collect();
        let inserted = sqlx::query(
            "INSERT INTO api_keys (name, key_hash, permissions, created_at_ms, created_kind, \
             created_id, created_name) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&key.name)
        .bind(hash)
        .bind(permissions.join(","))
        .bind(millis(key.created_at))
        .bind(kind)
        .bind(id)
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// The keys that are not revoked, by name.
    #[instrument(skip_all)]
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(ACTIVE).fetch_all(&self.pool).await?;
        rows.iter().map(api_key_of).collect()
    }

    /// The key that is not revoked whose hash is `hash`.
    #[instrument(skip_all)]
    pub async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(BY_HASH)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(api_key_of).transpose()
    }

    /// Records that the key `name` (not revoked) was used at `at`.
    #[instrument(skip_all)]
    pub async fn touch_api_key(&self, name: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_ms = $1 WHERE name = $2 AND revoked_at_ms IS NULL",
        )
        .bind(millis(at))
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes the key `name`; false when no key that is not revoked has that name.
    #[instrument(skip_all)]
    pub async fn revoke_api_key(&self, name: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at_ms = $1 WHERE name = $2 AND revoked_at_ms IS NULL",
        )
        .bind(millis(at))
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(revoked > 0)
    }
}

fn api_key_of(row: &sqlx::sqlite::SqliteRow) -> Result<ApiKey, StoreError> {
    let permissions: String = row.try_get("permissions")?;
    Ok(ApiKey {
        name: row.try_get("name")?,
        permissions: permissions
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<Permission>().map_err(StoreError::Corrupt))
            .collect::<Result<_, _>>()?,
        created_at: from_millis(row.try_get("created_at_ms")?)?,
        created_by: Actor::from_parts(
            &row.try_get::<String, _>("created_kind")?,
            &row.try_get::<String, _>("created_id")?,
            &row.try_get::<String, _>("created_name")?,
        )
        .map_err(StoreError::Corrupt)?,
        last_used: row
            .try_get::<Option<i64>, _>("last_used_ms")?
            .map(from_millis)
            .transpose()?,
    })
}
