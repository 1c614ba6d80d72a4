//! Every slash command, one file per group; [`all`] is the list poise registers. Every string
//! option is registered with a `max_length` and every integer option with its range, so
//! Discord's client refuses what does not fit; [`check_options`] checks integer options again
//! when they arrive, for the clients that do not.

pub(crate) mod action;
mod alerts;
mod audit;
mod help;
mod perms;
mod status;
mod sync;

use std::sync::LazyLock;

use poise::serenity_prelude as serenity;
use serde_json::Value;

use super::{CommandError, Context, Data};
use crate::access::Permission;
use crate::model::echo;
use crate::service::Invalid;

/// What a command needs, declared once on the command itself (poise's `custom_data`) and read
/// wherever it matters: the invocation asks for its permission, `/help` lists the command to
/// members who hold it, buttons that repeat the command ask for the same, and the audit log
/// names it by poise's qualified name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The permission it needs; `None` for what every member may run.
    pub permission: Option<Permission>,
    /// Its options whose values are secret: the audit log, the audit channel and the log
    /// never see them.
    pub secret: &'static [&'static str],
}

impl Gate {
    /// A command that needs `permission`.
    pub const fn needs(permission: Permission) -> Gate {
        Gate {
            permission: Some(permission),
            secret: &[],
        }
    }

    /// A command every member may run in a server.
    pub const OPEN: Gate = Gate {
        permission: None,
        secret: &[],
    };

    /// The gate a command declared. A command without one is a mistake (a unit test catches
    /// it); until caught it needs `perms.manage`, so a forgotten gate closes, not opens.
    pub fn of(command: &poise::Command<Data, CommandError>) -> Gate {
        command
            .custom_data
            .downcast_ref::<Gate>()
            .copied()
            .unwrap_or_else(|| {
                tracing::error!(command = %command.qualified_name, "command declares no gate");
                Gate::needs(Permission::PermsManage)
            })
    }

    /// The gate of the command called `qualified_name` (`alerts silence`); a name no command
    /// has needs `perms.manage`, like a command without a gate.
    pub fn named(qualified_name: &str) -> Gate {
        static GATES: LazyLock<Vec<(String, Gate)>> = LazyLock::new(|| {
            leaves(&all())
                .into_iter()
                .map(|(name, command)| (name, Gate::of(command)))
                .collect()
        });
        GATES
            .iter()
            .find(|(name, _)| name == qualified_name)
            .map_or(Gate::needs(Permission::PermsManage), |(_, gate)| *gate)
    }
}

/// Whether the member behind `ctx` holds `permission`: autocomplete suggests names only to
/// members who may see them.
fn holds(ctx: Context<'_>, permission: Permission) -> bool {
    ctx.data()
        .plane
        .policy()
        .admit(&super::invocation(ctx).caller, permission)
        .is_ok()
}

/// The commands that run (not the groups that only hold subcommands), in registration order,
/// each with its qualified name (`alerts silence`). poise sets `qualified_name` only once the
/// framework is built, so the names are composed here from the tree.
pub fn leaves(
    commands: &[poise::Command<Data, CommandError>],
) -> Vec<(String, &poise::Command<Data, CommandError>)> {
    fn walk<'a>(
        prefix: &str,
        commands: &'a [poise::Command<Data, CommandError>],
        out: &mut Vec<(String, &'a poise::Command<Data, CommandError>)>,
    ) {
        for command in commands {
            let name = if prefix.is_empty() {
                command.name.to_string()
            } else {
                format!("{prefix} {}", command.name)
            };
            if command.subcommands.is_empty() {
                out.push((name, command));
            } else {
                walk(&name, &command.subcommands, out);
            }
        }
    }
    let mut out = Vec::new();
    walk("", commands, &mut out);
    out
}

/// Every command patchbay registers.
pub fn all() -> Vec<poise::Command<Data, CommandError>> {
    vec![
        status::status(),
        alerts::alerts(),
        perms::perms(),
        audit::audit(),
        sync::sync(),
        action::action(),
        help::help(),
    ]
}

/// The framework's check before a command runs: each integer option (ranges and fixed choices)
/// must be what the command registered. Discord enforces `min_value`, `max_value` and choices
/// only in its own client, and poise, given `/audit limit:-5` for an unsigned parameter, fails
/// with an error that names neither the option nor the range. The registered option is the
/// one source of the rule, so the check cannot drift from what Discord shows.
pub(super) async fn check_options(ctx: Context<'_>) -> Result<bool, CommandError> {
    let poise::Context::Application(app) = ctx else {
        return Ok(true);
    };
    if matches!(
        app.interaction_type,
        poise::CommandInteractionType::Autocomplete
    ) {
        // Autocomplete sees options half typed; only the finished command is checked.
        return Ok(true);
    }
    for option in app.args {
        let registered = app
            .command()
            .parameters
            .iter()
            .find(|parameter| parameter.name == option.name)
            .and_then(poise::CommandParameter::create_as_slash_command_option)
            .and_then(|builder| serde_json::to_value(builder).ok());
        if let Some(problem) = registered.and_then(|r| integer_problem(&r, &option.value)) {
            return Err(Invalid::Option { problem }.into());
        }
    }
    Ok(true)
}

/// Discord's largest integer (2^53 - 1): poise registers it as the bound of a type without a
/// narrower one, so it means "no bound" when an error names the range.
const LARGEST_INTEGER: f64 = 9_007_199_254_740_991.0;

/// What is wrong with `value` for an integer option registered as `registered` (its JSON:
/// `type`, `name`, `min_value`, `max_value`, `choices`), naming the option and what it takes;
/// `None` when nothing is, or when the option is not an integer.
fn integer_problem(registered: &Value, value: &serenity::ResolvedValue<'_>) -> Option<String> {
    if registered["type"] != serde_json::json!(u8::from(serenity::CommandOptionType::Integer)) {
        return None;
    }
    let name = registered["name"].as_str().unwrap_or("this option");
    let got = match value {
        serenity::ResolvedValue::Integer(number) => Some(*number),
        _ => None,
    };
    let shown = match value {
        serenity::ResolvedValue::Integer(number) => number.to_string(),
        serenity::ResolvedValue::Number(number) => number.to_string(),
        serenity::ResolvedValue::String(text) => echo(text),
        _ => "a value of another type".to_string(),
    };
    let choices: Vec<(&str, Option<i64>)> = registered["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|choice| {
            (
                choice["name"].as_str().unwrap_or("?"),
                choice["value"].as_i64(),
            )
        })
        .collect();
    if !choices.is_empty() {
        if got.is_some_and(|got| choices.iter().any(|(_, value)| *value == Some(got))) {
            return None;
        }
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        return Some(format!(
            "{name} must be one of {}; got {shown}",
            names.join(", ")
        ));
    }
    let min = registered["min_value"]
        .as_f64()
        .filter(|min| *min > -LARGEST_INTEGER);
    let max = registered["max_value"]
        .as_f64()
        .filter(|max| *max < LARGEST_INTEGER);
    let within = |got: i64| {
        min.is_none_or(|min| got as f64 >= min) && max.is_none_or(|max| got as f64 <= max)
    };
    if got.is_some_and(within) {
        return None;
    }
    let range = match (min.map(|m| m as i64), max.map(|m| m as i64)) {
        (Some(min), Some(max)) => format!(" from {min} to {max}"),
        (Some(min), None) => format!(" of at least {min}"),
        (None, Some(max)) => format!(" of at most {max}"),
        (None, None) => String::new(),
    };
    Some(format!("{name} must be a whole number{range}; got {shown}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registered JSON of `/command`'s (or `/command sub`'s) option `name`.
    fn registered(command: &str, sub: Option<&str>, name: &str) -> Value {
        let commands = all();
        let command = commands.iter().find(|c| c.name == command).unwrap();
        let command = match sub {
            Some(sub) => command.subcommands.iter().find(|c| c.name == sub).unwrap(),
            None => command,
        };
        let parameter = command.parameters.iter().find(|p| p.name == name).unwrap();
        serde_json::to_value(parameter.create_as_slash_command_option().unwrap()).unwrap()
    }

    #[test]
    fn every_command_declares_its_gate() {
        let commands = all();
        let leaves = leaves(&commands);
        assert_eq!(
            leaves.len(),
            16,
            "{:?}",
            leaves.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        for (name, command) in leaves {
            assert!(
                command.custom_data.downcast_ref::<Gate>().is_some(),
                "/{name} declares no Gate in custom_data"
            );
            assert!(
                command.description.is_some(),
                "/{name} has no /// doc, which /help shows"
            );
        }
        assert_eq!(
            Gate::named("alerts silence").permission,
            Some(Permission::AlertsManage)
        );
        assert_eq!(
            Gate::named("sync run").permission,
            Some(Permission::SyncRun)
        );
        assert_eq!(
            Gate::named("sync history").permission,
            Some(Permission::StatusView)
        );
        assert_eq!(Gate::named("help"), Gate::OPEN);
    }

    #[test]
    fn integers_are_checked_against_their_registered_range_and_choices() {
        use poise::serenity_prelude::ResolvedValue::{Integer, Number, String};
        let limit = registered("audit", None, "limit");
        assert_eq!(integer_problem(&limit, &Integer(25)), None);
        assert_eq!(integer_problem(&limit, &Integer(1)), None);
        assert_eq!(
            integer_problem(&limit, &Integer(-5)).as_deref(),
            Some("limit must be a whole number from 1 to 25; got -5")
        );
        assert!(integer_problem(&limit, &Integer(26)).is_some());
        assert_eq!(
            integer_problem(&limit, &String("ten")).as_deref(),
            Some("limit must be a whole number from 1 to 25; got \"ten\"")
        );
        assert!(integer_problem(&limit, &Number(2.5)).is_some());
        let incident = registered("alerts", Some("ack"), "incident");
        assert_eq!(
            integer_problem(&incident, &Integer(0)).as_deref(),
            Some("incident must be a whole number of at least 1; got 0")
        );
        assert_eq!(integer_problem(&incident, &Integer(i64::MAX)), None);
        let outcome = registered("audit", None, "outcome");
        assert_eq!(integer_problem(&outcome, &Integer(4)), None);
        assert_eq!(
            integer_problem(&outcome, &Integer(5)).as_deref(),
            Some("outcome must be one of ok, denied, invalid, failed, rate_limited; got 5")
        );
        // Other types are not this check's business.
        let command = registered("audit", None, "command");
        assert_eq!(integer_problem(&command, &String("x")), None);
    }
}
