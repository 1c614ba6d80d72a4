//! REST API keys: what a key looks like, how it is made, how it is kept, and the rules for its
//! name and permissions. Pure: the store keeps [`ApiKey`] records and hashes, the service issues
//! and checks keys, the HTTP front reads them from `Authorization: Bearer`.
//!
//! A key is `pb_` followed by 43 characters of the URL-safe base64 alphabet (258 random bits
//! from the operating system's generator, through `rand`'s thread generator). Only its SHA-256
//! is stored: the key is high-entropy, so a fast hash is enough (nobody can guess a preimage,
//! and there is no password to stretch), and a lookup by hash needs no constant-time compare (an
//! attacker timing the lookup learns about hashes of their own guesses, not about the key). The
//! key is shown once, when it is made, and never logged: it is held as a [`Secret`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::access::Permission;
use crate::model::Actor;
use crate::secret::Secret;

/// What every key starts with, so a leaked one is recognisable (secret scanners, logs).
pub const PREFIX: &str = "pb_";

/// Random characters after the prefix: 43 of 64 symbols carry 258 bits.
pub const RANDOM_CHARS: usize = 43;

/// The URL-safe base64 alphabet: 64 symbols, so one random byte's low six bits pick one
/// without bias.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The longest key name.
pub const NAME_MAX: usize = 32;

/// A key as the store keeps it: never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    /// The name it was created with (`retool`); the audit log names its calls `apikey:<name>`.
    pub name: String,
    /// What it may do.
    pub permissions: Vec<Permission>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: Actor,
    /// When it was last used, to the minute (updated at most once a minute).
    pub last_used: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// The actor its calls are recorded as.
    pub fn actor(&self) -> Actor {
        Actor::ApiKey {
            key: self.name.clone(),
        }
    }
}

/// A key just made: the key itself (shown once) and the hash that is stored.
#[derive(Debug)]
pub struct IssuedKey {
    /// `pb_...`, to hand to the caller once.
    pub key: Secret,
    /// Its SHA-256, in lower-case hex, as the store keeps it.
    pub hash: String,
}

/// Makes a new random key.
pub fn issue() -> IssuedKey {
    let mut key = String::with_capacity(PREFIX.len() + RANDOM_CHARS);
    key.push_str(PREFIX);
    for _ in 0..RANDOM_CHARS {
        key.push(char::from(ALPHABET[usize::from(rand::random::<u8>() & 63)]));
    }
    let hash = hash(&key);
    IssuedKey {
        key: Secret::new(key),
        hash,
    }
}

/// The SHA-256 of `key`, in lower-case hex: what the store looks keys up by.
pub fn hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `text` has the shape of a key (prefix, length, alphabet), so a malformed one is
/// refused without a database lookup.
pub fn well_formed(text: &str) -> bool {
    text.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == RANDOM_CHARS && rest.bytes().all(|b| ALPHABET.contains(&b))
    })
}

/// Checks a key name: `[a-z0-9][a-z0-9_-]{0,31}`; the error says what is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("a key name cannot be empty".into());
    };
    if name.chars().count() > NAME_MAX {
        return Err(format!("a key name has at most {NAME_MAX} characters"));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err("a key name starts with a lower-case letter or a digit".into());
    }
    if let Some(bad) =
        chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{bad:?} is not allowed in a key name: use lower-case letters, digits, - and _"
        ));
    }
    Ok(())
}

/// Reads a comma-separated permission list (`status.view,sync.run`), in the order given,
/// without repeats; an unknown name is an error naming the known ones.
pub fn parse_permissions(text: &str) -> Result<Vec<Permission>, String> {
    let mut permissions = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let permission: Permission = name.parse()?;
        if !permissions.contains(&permission) {
            permissions.push(permission);
        }
    }
    if permissions.is_empty() {
        let known: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        return Err(format!(
            "a key needs at least one permission; known: {}",
            known.join(", ")
        ));
    }
    Ok(permissions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let one = issue();
        let two = issue();
        assert!(well_formed(one.key.expose()), "{}", one.key.expose());
        assert_eq!(one.key.expose().len(), PREFIX.len() + RANDOM_CHARS);
        assert_ne!(one.key.expose(), two.key.expose());
        assert_eq!(one.hash, hash(one.key.expose()));
        assert_eq!(one.hash.len(), 64);
        assert!(!format!("{one:?}").contains(one.key.expose()));
        // The known SHA-256 of "abc".
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_keys_are_recognised() {
        assert!(!well_formed("pb_short"));
        assert!(!well_formed(&format!("xx_{}", "a".repeat(RANDOM_CHARS))));
        assert!(!well_formed(&format!("pb_{}", "!".repeat(RANDOM_CHARS))));
        assert!(well_formed(&format!("pb_{}", "a".repeat(RANDOM_CHARS))));
    }

    #[test]
    fn names_follow_the_pattern() {
        for good in ["retool", "retool-2", "a", "0_x", &"a".repeat(32)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "Retool", "-x", "_x", "a b", "é", &"a".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions_parse_with_the_known_list_on_error() {
        assert_eq!(
            parse_permissions("status.view, sync.run,status.view"),
            Ok(vec![Permission::StatusView, Permission::SyncRun])
        );
        let error = parse_permissions("status.view,sync.go").unwrap_err();
        assert!(
            error.contains("\"sync.go\"") && error.contains("audit.view"),
            "{error}"
        );
        assert!(parse_permissions(" , ").unwrap_err().contains("known:"));
    }
}
