//! `Authorization: Bearer pb_…`: the [`Key`] extractor every API handler takes first, so no
//! route answers before the key is checked. A missing, malformed, unknown or revoked key is a
//! 401 with `WWW-Authenticate: Bearer`; the key itself is never logged or echoed.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::access::{Caller, Permission};
use crate::apikey::ApiKey;
use crate::audit::InvocationOption;
use crate::http::AppState;
use crate::service::Invocation;

/// The key a request carries, checked.
#[derive(Debug, Clone)]
pub struct Key(pub ApiKey);

impl FromRequestParts<AppState> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Key, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "send an API key as `Authorization: Bearer pb_...`; `patchbay apikey create` makes one",
                false,
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token else {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer pb_...`",
                true,
            ));
        };
        match state.plane.authenticate(token).await {
            Ok(Some(key)) => Ok(Key(key)),
            Ok(None) => Err(ApiError::unauthorized(
                "the API key is not valid: it is unknown or was revoked (`patchbay apikey list` shows the keys)",
                true,
            )),
            Err(err) => Err(ApiError::command(err, super::error::Named::Path)),
        }
    }
}

impl Key {
    /// The invocation of `command` (the Discord command's name, so both fronts' audit entries
    /// read alike) needing `permission`, by this key.
    pub fn invocation(
        &self,
        command: &str,
        permission: Permission,
        options: Vec<InvocationOption>,
    ) -> Invocation {
        Invocation {
            actor: self.0.actor(),
            caller: Caller::ApiKey {
                scopes: self.0.permissions.clone(),
            },
            channel: None,
            command: command.to_string(),
            permission: Some(permission),
            options,
            received: std::time::Instant::now(),
        }
    }
}
