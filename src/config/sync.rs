//! `[[sync]]` jobs (what patchbay keeps up to date in Notion) and the Notion token an
//! integration of kind `notion` or a job uses.

use std::collections::HashSet;
use std::time::Duration;

use super::Environment;
use super::error::Diagnostics;
use super::raw::{Table, read_name, read_word};
use crate::model::NotionId;
use crate::secret::Secret;

/// Notion's API, unless `NOTION_API_BASE` says otherwise.
pub const DEFAULT_NOTION_API: &str = "https://api.notion.com";

/// The variable a Notion token is read from unless `token = "env:NAME"` says otherwise.
pub const DEFAULT_NOTION_TOKEN: &str = "NOTION_TOKEN";

/// The shortest schedule a job may have: Notion's quota is shared by every job of a token.
const MIN_EVERY: Duration = Duration::from_secs(60);

pub(super) const SYNC_KEYS: &[&str] = &[
    "name",
    "kind",
    "database_id",
    "data_source",
    "every",
    "token",
];

/// A secret read from the environment (`token = "env:NAME"`): the variable it is read from
/// (named in messages) and its value (never printed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSecret {
    /// The environment variable, e.g. `NOTION_TOKEN`.
    pub variable: String,
    /// Its value.
    pub value: Secret,
}

/// A Notion integration token.
pub type NotionToken = EnvSecret;

/// What a sync job keeps in Notion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncKind {
    /// One row per integration, kept up to date (`notion-status-board`).
    NotionStatusBoard,
    /// One page per incident with its timeline (`notion-incident-log`).
    NotionIncidentLog,
}

impl SyncKind {
    /// Every kind, as written in the config.
    pub const ALL: [SyncKind; 2] = [SyncKind::NotionStatusBoard, SyncKind::NotionIncidentLog];

    /// The kind as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::NotionStatusBoard => "notion-status-board",
            SyncKind::NotionIncidentLog => "notion-incident-log",
        }
    }
}

/// One `[[sync]]` job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncJob {
    /// Unique name, `[a-z0-9-_]`.
    pub name: String,
    /// What it keeps.
    pub kind: SyncKind,
    /// The database, as pasted (a link or an id), normalised.
    pub database_id: NotionId,
    /// Which of the database's data sources (by name or id), when it has several.
    pub data_source: Option<String>,
    /// How often it runs on its own; `None`: on demand only.
    pub every: Option<Duration>,
    /// The token it writes with.
    pub token: NotionToken,
}

/// Reads `token = "env:NAME"` (default [`DEFAULT_NOTION_TOKEN`]) from the environment; a
/// variable that is not set is an error naming it and what needs it.
pub(super) fn read_token(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    env: &Environment,
    start: usize,
    what: &str,
) -> Option<NotionToken> {
    read_env_secret(
        table,
        d,
        env,
        ("token", Some(DEFAULT_NOTION_TOKEN)),
        start,
        &format!("{what} needs a Notion token"),
        &|variable| {
            format!(
                "create an internal integration at notion.so/my-integrations and set {variable} to its secret (in the environment or .env)"
            )
        },
    )
}

/// Reads `key = "env:NAME"` from the environment (`NAME` is `default` when the key is absent;
/// without a default the key is required). A secret written in the file itself, or a variable
/// that is not set, is an error naming the key, the variable and `what` needs it; `how` says
/// how to fix that, given the variable.
pub(super) fn read_env_secret(
    table: &Table<'_, '_>,
    d: &mut Diagnostics,
    env: &Environment,
    (key, default): (&str, Option<&str>),
    start: usize,
    what: &str,
    how: &dyn Fn(&str) -> String,
) -> Option<EnvSecret> {
    let example = default.unwrap_or("MY_SECRET");
    let (variable, at) = if let Some((text, at)) = table.string(d, key) {
        match text.strip_prefix("env:") {
            Some(variable) if !variable.is_empty() => (variable.to_string(), at),
            _ => {
                d.error(
                    Some(at),
                    table.key(key),
                    format!(
                        "{} {key} is never written in the config file",
                        if key.starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        }
                    ),
                    Some(format!(
                        "name the environment variable that holds it: {key} = \"env:{example}\""
                    )),
                );
                return None;
            }
        }
    } else {
        let Some(variable) = default else {
            table.require(
                d,
                key,
                start,
                &format!("add {key} = \"env:{example}\" naming the variable that holds it"),
            );
            return None;
        };
        (variable.to_string(), start)
    };
    if let Some(value) = env.get(&variable) {
        Some(EnvSecret {
            variable,
            value: Secret::new(value),
        })
    } else {
        d.error(
            Some(at),
            table.key(key),
            format!("environment variable {variable} is not set; {what}"),
            Some(how(&variable)),
        );
        None
    }
}

/// Reads every `[[sync]]` table.
pub(super) fn read_jobs(
    root: &Table<'_, '_>,
    d: &mut Diagnostics,
    env: &Environment,
) -> Vec<SyncJob> {
    let mut jobs = Vec::new();
    let mut names = HashSet::new();
    for (mut table, start) in root.tables(d, "sync") {
        let Some(name) = read_name(
            &table,
            d,
            start,
            ("sync", "sync job"),
            &mut names,
            SYNC_KEYS,
        ) else {
            continue;
        };
        table.path = format!("sync.{name}");
        table.check_keys(d, SYNC_KEYS);
        let errors_before = d.errors.len();
        let kind = read_kind(&table, d, start);
        let database_id = if let Some((text, at)) = table.string(d, "database_id") {
            match NotionId::parse(&text) {
                Ok(id) => Some(id),
                Err(message) => {
                    d.error(
                        Some(at),
                        table.key("database_id"),
                        message,
                        Some(
                            "paste the database's link (••• → Copy link) or its 32-character id"
                                .into(),
                        ),
                    );
                    None
                }
            }
        } else {
            table.require(
                d,
                "database_id",
                start,
                "add database_id = \"<the database's link or id>\" to this [[sync]]",
            );
            None
        };
        let data_source = table
            .string(d, "data_source")
            .map(|(text, _)| text.trim().to_string());
        let every = match table.duration(d, "every") {
            Some((every, at)) if every < MIN_EVERY => {
                d.error(
                    Some(at),
                    table.key("every"),
                    format!(
                        "every {} is too often: Notion's quota is shared by every job",
                        crate::duration::compact(every)
                    ),
                    Some("sync at most once a minute, e.g. every = \"15m\"".into()),
                );
                None
            }
            Some((every, at)) if kind == Some(SyncKind::NotionIncidentLog) => {
                let _ = every;
                d.error(
                    Some(at),
                    table.key("every"),
                    "an incident log is written as incidents change, not on a schedule",
                    Some("remove every from this job".into()),
                );
                None
            }
            other => other.map(|(every, _)| every),
        };
        let token = read_token(&table, d, env, start, &format!("sync job {name:?}"));
        if d.errors.len() > errors_before {
            continue;
        }
        if let (Some(kind), Some(database_id), Some(token)) = (kind, database_id, token) {
            jobs.push(SyncJob {
                name,
                kind,
                database_id,
                data_source,
                every,
                token,
            });
        }
    }
    jobs
}

fn read_kind(table: &Table<'_, '_>, d: &mut Diagnostics, start: usize) -> Option<SyncKind> {
    read_word(
        table,
        d,
        ("kind", start),
        (&SyncKind::ALL, SyncKind::as_str),
        (
            "sync kind",
            "add kind = \"notion-status-board\" or kind = \"notion-incident-log\"",
        ),
    )
}
