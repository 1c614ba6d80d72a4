//! `patchbay apikey create|list|revoke`: the REST API's keys, from the command line only (a key
//! is a credential: it is made where the config file is, by whoever runs patchbay). Each goes
//! through the control plane as the OS user (`Actor::Cli`) with patchbay's own authority, so
//! it is audited like a command. `create` prints the key once, alone on the last line of
//! standard output, so a script can take it with `tail -n 1`.

use std::process::ExitCode;

use serde::Serialize;

use crate::access::{Caller, Permission};
use crate::apikey::ApiKey;
use crate::audit::{InvocationOption, OptionValue};
use crate::config::Config;
use crate::model::Actor;
use crate::service::{CommandError, ControlPlane, Invalid, Invocation};
use crate::store::Store;

fn invocation(command: &str, options: Vec<InvocationOption>) -> Invocation {
    Invocation {
        actor: Actor::cli(),
        caller: Caller::Local,
        channel: None,
        command: command.into(),
        // Handing out access is managing permissions.
        permission: Some(Permission::PermsManage),
        options,
        received: std::time::Instant::now(),
    }
}

fn text(name: &str, value: &str) -> InvocationOption {
    InvocationOption::new(name, OptionValue::Text(value.to_string()))
}

/// Runs `action` on a control plane over the configured database, then closes it.
async fn with_plane<T>(
    config: &Config,
    invocation: &Invocation,
    action: impl AsyncFnOnce(&ControlPlane) -> Result<T, CommandError>,
) -> anyhow::Result<Result<T, CommandError>> {
    let store = Store::open(&config.storage.url).await?;
    let plane = ControlPlane::new(config, store.clone(), None).await?;
    let answer = plane.invoke(invocation, || action(&plane)).await;
    store.close().await;
    Ok(answer)
}

/// What to do about a refused command, after the error itself.
fn refused(err: &CommandError) -> ExitCode {
    let hint = match err {
        CommandError::Invalid(Invalid::DuplicateKey { .. }) => {
            " (pick another name, e.g. retool-2 to rotate without a gap, or revoke the old key first)"
        }
        CommandError::Invalid(Invalid::UnknownKey { .. }) => {
            " (patchbay apikey list shows the keys)"
        }
        _ => "",
    };
    eprintln!("error: {err}{hint}");
    ExitCode::FAILURE
}

/// `patchbay apikey create --name NAME --permissions a,b`.
pub async fn create(config: &Config, name: &str, permissions: &str) -> anyhow::Result<ExitCode> {
    let invocation = invocation(
        "apikey create",
        vec![text("name", name), text("permissions", permissions)],
    );
    let actor = invocation.actor.clone();
    let answer = with_plane(config, &invocation, async |plane| {
        plane.create_api_key(name, permissions, &actor).await
    })
    .await?;
    match answer {
        Ok(created) => {
            println!(
                "Created API key {} with {}.",
                created.key.name,
                permission_list(&created.key.permissions)
            );
            println!(
                "Copy it now: it is shown once and cannot be read again. Send it as \
                 `Authorization: Bearer <key>`."
            );
            // The key, alone on the last line.
            println!("{}", created.secret.expose());
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Ok(refused(&err)),
    }
}

/// One key as `patchbay apikey list --json` prints it.
#[derive(Serialize)]
struct KeyRow<'a> {
    name: &'a str,
    permissions: &'a [Permission],
    created_at: String,
    created_by: String,
    last_used: Option<String>,
}

/// `patchbay apikey list [--json]`.
pub async fn list(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let invocation = invocation("apikey list", Vec::new());
    let keys = match with_plane(config, &invocation, async |plane| plane.api_keys().await).await? {
        Ok(keys) => keys,
        Err(err) => return Ok(refused(&err)),
    };
    if json {
        let rows: Vec<KeyRow<'_>> = keys.iter().map(key_row).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if keys.is_empty() {
        println!(
            "No API keys: make one with patchbay apikey create --name NAME --permissions status.view"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let width = keys.iter().map(|k| k.name.len()).max().unwrap_or(4).max(4);
    let perms_width = keys
        .iter()
        .map(|k| permission_list(&k.permissions).len())
        .max()
        .unwrap_or(11)
        .max(11);
    println!(
        "{:<width$}  {:<perms_width$}  {:<20}  LAST USED",
        "NAME", "PERMISSIONS", "CREATED"
    );
    for key in &keys {
        println!(
            "{:<width$}  {:<perms_width$}  {:<20}  {}",
            key.name,
            permission_list(&key.permissions),
            key.created_at.format("%Y-%m-%d %H:%M:%S"),
            key.last_used.map_or_else(
                || "never".to_string(),
                |at| at.format("%Y-%m-%d %H:%M").to_string()
            ),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `patchbay apikey revoke NAME`.
pub async fn revoke(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let invocation = invocation("apikey revoke", vec![text("name", name)]);
    match with_plane(config, &invocation, async |plane| {
        plane.revoke_api_key(name).await
    })
    .await?
    {
        Ok(revoked) => {
            println!(
                "Revoked API key {}: requests carrying it are refused from now on.",
                revoked.name
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Ok(refused(&err)),
    }
}

fn key_row(key: &ApiKey) -> KeyRow<'_> {
    KeyRow {
        name: &key.name,
        permissions: &key.permissions,
        created_at: key
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        created_by: key.created_by.reference(),
        last_used: key
            .last_used
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }
}

fn permission_list(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
