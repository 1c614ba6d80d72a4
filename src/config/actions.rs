//! `[[action]]` tables: the Retool workflows members may run from Discord and API keys from the
//! REST API, with their parameters and guardrails (confirmation, approval, cooldown, roles).

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Url;

use super::Environment;
use super::error::Diagnostics;
use super::raw::{Table, read_name, read_word};
use super::sync::{EnvSecret, read_env_secret};
use crate::model::Snowflake;

pub(super) const ACTION_KEYS: &[&str] = &[
    "name",
    "kind",
    "description",
    "url",
    "api_key",
    "params",
    "confirm",
    "approval",
    "cooldown",
    "timeout",
    "roles",
];

pub(super) const PARAM_KEYS: &[&str] = &[
    "name",
    "type",
    "description",
    "required",
    "max_len",
    "min",
    "max",
    "choices",
];

/// How long a workflow may take to answer unless `timeout` says otherwise: Retool's limit for a
/// synchronous (Response block) answer.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest `timeout` accepted: a deferred Discord reply can be edited for 15 minutes.
const MAX_ACTION_TIMEOUT: Duration = Duration::from_secs(14 * 60);

/// The most parameters an action may have (what a front can ask for at once is its own limit).
pub const MAX_PARAMS: usize = 10;

/// The longest text a `string` parameter takes unless `max_len` says otherwise.
pub const DEFAULT_MAX_LEN: usize = 1000;

/// The longest `max_len`: a Discord text input holds 4,000 characters.
const MAX_MAX_LEN: usize = 4000;

/// What an action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// A Retool workflow started by its webhook trigger (`retool-workflow`).
    RetoolWorkflow,
}

impl ActionKind {
    /// Every kind, as written in the config.
    pub const ALL: [ActionKind; 1] = [ActionKind::RetoolWorkflow];

    /// The kind as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::RetoolWorkflow => "retool-workflow",
        }
    }
}

/// The type of a parameter and its limits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamKind {
    /// Text of at most `max_len` characters.
    String {
        /// The most characters accepted.
        max_len: usize,
    },
    /// A whole number within the bounds.
    Integer {
        /// The least value accepted.
        min: Option<i64>,
        /// The greatest value accepted.
        max: Option<i64>,
    },
    /// `true` or `false`.
    Boolean,
    /// One of a fixed list.
    Choice {
        /// The values accepted, in the config's order.
        choices: Vec<String>,
    },
}

impl ParamKind {
    /// The type's name as written in the config.
    pub fn name(&self) -> &'static str {
        match self {
            ParamKind::String { .. } => "string",
            ParamKind::Integer { .. } => "integer",
            ParamKind::Boolean => "boolean",
            ParamKind::Choice { .. } => "choice",
        }
    }
}

/// One parameter of an action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActionParam {
    /// Its name, `[a-z0-9_]`, as `args` and the workflow's `params` spell it.
    pub name: String,
    /// Its type and limits.
    #[serde(flatten)]
    pub kind: ParamKind,
    /// What it is, shown as the modal's placeholder and in `/action list`.
    pub description: Option<String>,
    /// Whether it must be given.
    pub required: bool,
}

/// Who may run an action on top of `action.run`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionRole {
    /// Members with this Discord role.
    Role(Snowflake),
    /// The REST API key of this name (`apikey:<name>`).
    ApiKey(String),
}

/// One `[[action]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Unique name, `[a-z0-9-_]`.
    pub name: String,
    /// What it runs.
    pub kind: ActionKind,
    /// What it does, for `/action list` and the autocomplete.
    pub description: String,
    /// The workflow's webhook trigger URL.
    pub url: Url,
    /// The workflow API key, sent as `X-Workflow-Api-Key`.
    pub api_key: EnvSecret,
    /// Its parameters, in the config's order.
    pub params: Vec<ActionParam>,
    /// Whether the invoker confirms with a button first (Discord only).
    pub confirm: bool,
    /// Whether a second member holding `action.approve` must approve it first.
    pub approval: bool,
    /// How long after a run that reached Retool the action refuses another.
    pub cooldown: Option<Duration>,
    /// How long the workflow has to answer.
    pub timeout: Duration,
    /// When not empty: only these roles or API keys may run it.
    pub roles: Vec<ActionRole>,
}

impl Action {
    /// The parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&ActionParam> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Reads every `[[action]]` table.
pub(super) fn read_actions(
    root: &Table<'_, '_>,
    d: &mut Diagnostics,
    env: &Environment,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut names = HashSet::new();
    for (mut table, start) in root.tables(d, "action") {
        let Some(name) = read_name(
            &table,
            d,
            start,
            ("action", "action"),
            &mut names,
            ACTION_KEYS,
        ) else {
            continue;
        };
        table.path = format!("action.{name}");
        table.check_keys(d, ACTION_KEYS);
        let errors_before = d.errors.len();
        let kind = read_kind(&table, d, start);
        let description = table.string(d, "description").map_or_else(
            || {
                table.require(
                    d,
                    "description",
                    start,
                    "add description = \"what it does\" (shown in /action list)",
                );
                String::new()
            },
            |(text, _)| text.trim().to_string(),
        );
        let url = read_url(&table, d, start);
        let api_key = read_env_secret(
            &table,
            d,
            env,
            ("api_key", None),
            start,
            &format!("action {name:?} needs its workflow API key"),
            &|variable| {
                format!(
                    "copy the API key from the workflow's webhook trigger in Retool into {variable} (in the environment or .env)"
                )
            },
        );
        let params = read_params(&table, d);
        let confirm = table.boolean(d, "confirm").unwrap_or(true);
        let approval = table.boolean(d, "approval").unwrap_or(false);
        let cooldown = table.duration(d, "cooldown").map(|(every, _)| every);
        let timeout = match table.duration(d, "timeout") {
            Some((timeout, at)) if timeout.is_zero() || timeout > MAX_ACTION_TIMEOUT => {
                d.error(
                    Some(at),
                    table.key("timeout"),
                    format!(
                        "timeout {} is out of range",
                        crate::duration::compact(timeout)
                    ),
                    Some("use 1s to 14m; Retool answers a synchronous trigger within 120s".into()),
                );
                DEFAULT_ACTION_TIMEOUT
            }
            Some((timeout, _)) => timeout,
            None => DEFAULT_ACTION_TIMEOUT,
        };
        let roles = read_roles(&table, d);
        if d.errors.len() > errors_before {
            continue;
        }
        if let (Some(kind), Some(url), Some(api_key)) = (kind, url, api_key) {
            actions.push(Action {
                name,
                kind,
                description,
                url,
                api_key,
                params,
                confirm,
                approval,
                cooldown,
                timeout,
                roles,
            });
        }
    }
    actions
}

fn read_kind(table: &Table<'_, '_>, d: &mut Diagnostics, start: usize) -> Option<ActionKind> {
    read_word(
        table,
        d,
        ("kind", start),
        (&ActionKind::ALL, ActionKind::as_str),
        ("action kind", "add kind = \"retool-workflow\""),
    )
}

fn read_url(table: &Table<'_, '_>, d: &mut Diagnostics, start: usize) -> Option<Url> {
    let Some((text, at)) = table.string(d, "url") else {
        table.require(
            d,
            "url",
            start,
            "add url = \"https://api.retool.com/v1/workflows/<id>/startTrigger\" (the workflow's webhook URL)",
        );
        return None;
    };
    match Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            if url.query().is_some_and(|q| q.contains("workflowApiKey")) {
                d.error(
                    Some(at),
                    table.key("url"),
                    "the URL carries the workflow API key",
                    Some(
                        "remove ?workflowApiKey=... from the URL and set api_key = \"env:VAR\" instead"
                            .into(),
                    ),
                );
                return None;
            }
            Some(url)
        }
        _ => {
            d.error(
                Some(at),
                table.key("url"),
                format!("{} is not an http(s) URL", crate::model::echo(&text)),
                Some(
                    "copy the webhook URL from the workflow's startTrigger block in Retool".into(),
                ),
            );
            None
        }
    }
}

fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn read_params(table: &Table<'_, '_>, d: &mut Diagnostics) -> Vec<ActionParam> {
    let mut params = Vec::new();
    let mut names = HashSet::new();
    let tables = table.tables(d, "params");
    if tables.len() > MAX_PARAMS {
        d.error(
            table.get("params").map(|v| v.span().start),
            table.key("params"),
            format!(
                "{} parameters; an action takes at most {MAX_PARAMS}",
                tables.len()
            ),
            Some("pass related values in one string parameter".into()),
        );
    }
    for (param, start) in tables {
        param.check_keys(d, PARAM_KEYS);
        let Some((name, at)) = param.string(d, "name") else {
            param.require(d, "name", start, "add name = \"...\" to this parameter");
            continue;
        };
        if !valid_param_name(&name) {
            d.error(
                Some(at),
                param.key("name"),
                format!("{name:?} is not a valid parameter name"),
                Some("use 1 to 32 characters from a-z, 0-9 and _".into()),
            );
            continue;
        }
        if !names.insert(name.clone()) {
            d.error(
                Some(at),
                param.key("name"),
                format!("duplicate parameter {name:?}"),
                Some("give each parameter a unique name".into()),
            );
            continue;
        }
        if let Some(kind) = read_param_kind(&param, d, start) {
            params.push(ActionParam {
                name,
                kind,
                description: param
                    .string(d, "description")
                    .map(|(text, _)| text.trim().to_string()),
                required: param.boolean(d, "required").unwrap_or(false),
            });
        }
    }
    params
}

/// The keys each parameter type takes beyond name, type, description and required.
fn type_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "string" => &["max_len"],
        "integer" => &["min", "max"],
        "choice" => &["choices"],
        _ => &[],
    }
}

fn read_param_kind(param: &Table<'_, '_>, d: &mut Diagnostics, start: usize) -> Option<ParamKind> {
    const TYPES: [&str; 4] = ["string", "integer", "boolean", "choice"];
    let kind = read_word(
        param,
        d,
        ("type", start),
        (&TYPES, |word| word),
        (
            "parameter type",
            "add type = \"string\", \"integer\", \"boolean\" or \"choice\"",
        ),
    )?;
    // A limit that belongs to another type is a mistake worth naming.
    for key in ["max_len", "min", "max", "choices"] {
        if let Some(value) = param.get(key)
            && !type_keys(kind).contains(&key)
        {
            d.error(
                Some(value.span().start),
                param.key(key),
                format!("a {kind} parameter has no {key}"),
                Some(format!("remove {key}, or change the type")),
            );
        }
    }
    match kind {
        "string" => {
            let max_len = match param.integer(d, "max_len") {
                Some((len, at)) if len < 1 || len as usize > MAX_MAX_LEN => {
                    d.error(
                        Some(at),
                        param.key("max_len"),
                        format!("max_len {len} is out of range"),
                        Some(format!("use 1 to {MAX_MAX_LEN}")),
                    );
                    return None;
                }
                Some((len, _)) => len as usize,
                None => DEFAULT_MAX_LEN,
            };
            Some(ParamKind::String { max_len })
        }
        "integer" => {
            let min = param.integer(d, "min").map(|(v, _)| v);
            let max = param.integer(d, "max");
            if let (Some(min), Some((max, at))) = (min, max)
                && min > max
            {
                d.error(
                    Some(at),
                    param.key("max"),
                    format!("max {max} is below min {min}"),
                    Some("swap them".into()),
                );
                return None;
            }
            Some(ParamKind::Integer {
                min,
                max: max.map(|(v, _)| v),
            })
        }
        "boolean" => Some(ParamKind::Boolean),
        _ => {
            let Some(choices) = param.strings(d, "choices") else {
                param.require(
                    d,
                    "choices",
                    start,
                    "add choices = [\"a\", \"b\"] to this choice parameter",
                );
                return None;
            };
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for (choice, at) in choices {
                if choice.is_empty() || choice.chars().count() > 100 || !seen.insert(choice.clone())
                {
                    d.error(
                        Some(at),
                        param.key("choices"),
                        format!("choice {choice:?} is empty, too long or repeated"),
                        Some("give 1 to 25 distinct choices of 1 to 100 characters".into()),
                    );
                    return None;
                }
                out.push(choice);
            }
            if out.is_empty() || out.len() > 25 {
                d.error(
                    param.get("choices").map(|v| v.span().start),
                    param.key("choices"),
                    format!("{} choices", out.len()),
                    Some("give 1 to 25 choices".into()),
                );
                return None;
            }
            Some(ParamKind::Choice { choices: out })
        }
    }
}

fn read_roles(table: &Table<'_, '_>, d: &mut Diagnostics) -> Vec<ActionRole> {
    let Some(items) = table.strings(d, "roles") else {
        return Vec::new();
    };
    let mut roles = Vec::new();
    for (index, (text, at)) in items.into_iter().enumerate() {
        let text = text.trim();
        if let Some(key) = text.strip_prefix("apikey:") {
            if key.is_empty() {
                d.error(
                    Some(at),
                    format!("{}[{index}]", table.key("roles")),
                    "apikey: names no key",
                    Some(
                        "write \"apikey:<name>\" with the name given to patchbay apikey create"
                            .into(),
                    ),
                );
            } else {
                roles.push(ActionRole::ApiKey(key.to_string()));
            }
        } else if let Ok(id) = text.parse::<u64>()
            && id > 0
        {
            roles.push(ActionRole::Role(Snowflake(id)));
        } else {
            d.error(
                Some(at),
                format!("{}[{index}]", table.key("roles")),
                format!(
                    "{} is neither a role ID nor apikey:<name>",
                    crate::model::echo(text)
                ),
                Some(
                    "copy the role's ID with Discord's developer mode, or write \"apikey:<name>\""
                        .into(),
                ),
            );
        }
    }
    roles
}
