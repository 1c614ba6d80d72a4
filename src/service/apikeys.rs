//! `patchbay apikey create|list|revoke` and the REST API's authentication: issuing keys (shown
//! once, kept hashed), listing and revoking them, and finding the key a request carries.
//! Answers are values ([`CreatedApiKey`], [`ApiKeyRevoked`], [`ApiKey`]); the fronts draw them.

use serde::Serialize;

use super::{CommandError, ControlPlane, Invalid};
use crate::apikey::{self, ApiKey};
use crate::model::Actor;
use crate::secret::Secret;

/// How often a key's "last used" is written: a dashboard polling every second must not cost a
/// database write per request.
const LAST_USED_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// A key just made: the record, and the key itself, which is shown once and never again.
#[derive(Debug)]
pub struct CreatedApiKey {
    /// What is kept.
    pub key: ApiKey,
    /// `pb_...`.
    pub secret: Secret,
}

/// A key revoked: requests carrying it are refused from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRevoked {
    /// Its name.
    pub name: String,
}

impl ControlPlane {
    /// `patchbay apikey create`: a new key named `name` holding the comma-separated
    /// `permissions`, recorded as made `by`.
    pub async fn create_api_key(
        &self,
        name: &str,
        permissions: &str,
        by: &Actor,
    ) -> Result<CreatedApiKey, CommandError> {
        apikey::check_name(name).map_err(|problem| Invalid::KeyName {
            name: name.to_string(),
            problem,
        })?;
        let permissions = apikey::parse_permissions(permissions)
            .map_err(|problem| Invalid::Permissions { problem })?;
        let issued = apikey::issue();
        let key = ApiKey {
            name: name.to_string(),
            permissions,
            created_at: crate::model::now(),
            created_by: by.clone(),
            last_used: None,
        };
        if !self.store.insert_api_key(&key, &issued.hash).await? {
            return Err(Invalid::DuplicateKey {
                name: name.to_string(),
            }
            .into());
        }
        Ok(CreatedApiKey {
            key,
            secret: issued.key,
        })
    }

    /// `patchbay apikey list`: the keys that are not revoked, by name.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, CommandError> {
        Ok(self.store.api_keys().await?)
    }

    /// `patchbay apikey revoke`: the key `name` stops working at once (every process reads
    /// keys from the database on each request).
    pub async fn revoke_api_key(&self, name: &str) -> Result<ApiKeyRevoked, CommandError> {
        if self.store.revoke_api_key(name, crate::model::now()).await? {
            Ok(ApiKeyRevoked {
                name: name.to_string(),
            })
        } else {
            Err(Invalid::UnknownKey {
                name: name.to_string(),
            }
            .into())
        }
    }

    /// The key (not revoked) that `presented` is, if any, with its last use recorded at most
    /// once a minute. A value that does not have a key's shape is not looked up.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<ApiKey>, CommandError> {
        if !apikey::well_formed(presented) {
            return Ok(None);
        }
        let Some(mut key) = self.store.api_key_by_hash(&apikey::hash(presented)).await? else {
            return Ok(None);
        };
        let now = crate::model::now();
        if key.last_used.is_none_or(|at| now - at >= LAST_USED_EVERY) {
            self.store.touch_api_key(&key.name, now).await?;
            key.last_used = Some(now);
        }
        Ok(Some(key))
    }
}
