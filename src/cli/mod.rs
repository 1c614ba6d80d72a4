//! The command line. `patchbay` with no subcommand runs the bot. `--config` is global, so it
//! goes before or after the subcommand. `status`, `migrate` and `backup` work on the database
//! directly, with or without a running bot; `restore` replaces it, only without one;
//! `healthcheck` asks the running bot.

mod apikey;
mod sync;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::config::{self, Config, ConfigErrors, Environment};
use crate::store::Store;

/// patchbay: a self-hosted Discord chat-ops control plane for your integrations.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// The config file [env: PATCHBAY_CONFIG] [default: ./patchbay.toml if it exists]
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot: monitor integrations, serve health and metrics (the default).
    Run,
    /// Validate the config and the environment; list every problem and exit 1 if any.
    Check {
        /// Also ask Discord, Notion and Retool: the token is valid, the bot is in each guild
        /// and may post embeds in each configured channel, each configured role exists, each
        /// sync job's database is shared with its integration, each workflow URL answers.
        #[arg(long)]
        online: bool,
    },
    /// Print the URL that adds the bot to a server, with exactly the permissions it uses.
    Invite {
        /// The application id (Developer Portal, General Information); asked of Discord with
        /// DISCORD_TOKEN when not given.
        #[arg(long, value_name = "ID")]
        client_id: Option<u64>,
    },
    /// Print every integration's state, since, latency p95 and 24h uptime from the database.
    Status {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a consistent copy of the SQLite database to FILE, even while the bot runs.
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
    },
    /// Replace the database with a backup: checked (integrity, schema version), migrated, the
    /// replaced database kept beside it. Refused while a patchbay runs on the database.
    Restore {
        /// The backup to restore (a file `patchbay backup` wrote).
        file: PathBuf,
    },
    /// GET /healthz on the running bot ([http].listen); exit 0 if healthy, 1 if not.
    Healthcheck,
    /// Register or list the slash commands with Discord (needs DISCORD_TOKEN).
    Commands {
        /// What to do with them.
        #[command(subcommand)]
        action: CommandsAction,
    },
    /// Run or list the Notion sync jobs ([[sync]] in the config).
    Sync {
        /// What to do.
        #[command(subcommand)]
        action: SyncAction,
    },
    /// Create, list or revoke the REST API's keys.
    Apikey {
        /// What to do.
        #[command(subcommand)]
        action: ApikeyAction,
    },
}

/// `patchbay apikey ...`.
#[derive(Debug, Subcommand)]
pub enum ApikeyAction {
    /// Make a key; it is printed once, alone on the last line, and only its hash is kept.
    Create {
        /// Its name: lower-case letters, digits, - and _ (at most 32; the audit log shows
        /// `apikey:<name>`).
        #[arg(long)]
        name: String,
        /// What it may do, comma-separated, e.g. status.view,sync.run.
        #[arg(long, value_name = "LIST")]
        permissions: String,
    },
    /// List the keys (never the keys themselves): name, permissions, created, last used.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: requests carrying it are refused at once.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// `patchbay sync ...`.
#[derive(Debug, Subcommand)]
pub enum SyncAction {
    /// List the sync jobs with their schedule and last run.
    List,
    /// Run a sync job now, with a progress line; exit 0 on success, 1 on failure.
    Run {
        /// The job's name.
        job: String,
        /// Show what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `patchbay commands ...`.
#[derive(Debug, Subcommand)]
pub enum CommandsAction {
    /// Register every slash command in [bot].guilds (instantly), or globally when empty.
    Register,
    /// List the slash commands Discord has registered for patchbay.
    List,
}

/// Parses the arguments, loads `.env`, and runs the chosen command.
pub fn main() -> ExitCode {
    // `.env` is optional; a malformed one is worth saying so, since it may hold the token.
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("warning: could not read .env: {err}");
    }
    let cli = Cli::parse();
    let env = Environment::from_process();
    let (path, required) = config::resolve_path(cli.config.as_deref(), &env);
    let loaded = config::load(&path, required, &env);
    let command = cli.command.unwrap_or(Command::Run);

    if let Command::Check { online } = command {
        return check(&path, loaded, online);
    }
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            eprint!("{errors}");
            eprintln!("Run `patchbay check` after fixing to validate.");
            return ExitCode::from(2);
        }
    };
    if matches!(command, Command::Run) {
        crate::logging::init(config.log.format);
    }
    if matches!(command, Command::Sync { .. }) {
        // Warnings (Notion's refusals with their request ids) on standard error; the progress
        // line and the summary say the rest.
        crate::logging::init_quiet(config.log.format);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let outcome = runtime.block_on(async move {
        match command {
            Command::Run => crate::app::run(config, path, required).await,
            Command::Status { json } => status(&config, json).await,
            Command::Migrate => migrate(&config).await,
            Command::Backup { file } => backup(&config, &file).await,
            Command::Restore { file } => restore(&config, &file).await,
            Command::Healthcheck => return healthcheck(&config).await,
            Command::Commands { action } => slash_commands(&config, action).await,
            Command::Sync { action } => {
                return match action {
                    SyncAction::List => sync::list(&config).await,
                    SyncAction::Run { job, dry_run } => sync::run(&config, &job, dry_run).await,
                };
            }
            Command::Apikey { action } => {
                return match action {
                    ApikeyAction::Create { name, permissions } => {
                        apikey::create(&config, &name, &permissions).await
                    }
                    ApikeyAction::List { json } => apikey::list(&config, json).await,
                    ApikeyAction::Revoke { name } => apikey::revoke(&config, &name).await,
                };
            }
            Command::Invite { client_id } => invite(&config, client_id).await,
            Command::Check { .. } => unreachable!("handled above"),
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path, loaded: Result<Config, ConfigErrors>, online: bool) -> ExitCode {
    match loaded {
        Ok(config) => {
            let source = config.source.as_ref().map_or_else(
                || "defaults (no config file)".to_string(),
                |p| p.display().to_string(),
            );
            println!(
                "{source}: ok ({} integrations, database {}, HTTP on {})",
                config.integrations.len(),
                config.storage.url,
                config.http.listen
            );
            if config.bot.token.is_none() {
                println!("note: DISCORD_TOKEN is not set, so the bot will run headless");
            }
            if online {
                return check_online(&config);
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{}: invalid", path.display());
            eprint!("{errors}");
            ExitCode::FAILURE
        }
    }
}

/// `patchbay check --online`: Discord, then Notion, then Retool; one line per problem, exit 1
/// if any.
fn check_online(config: &Config) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    let problems = runtime.block_on(async {
        let mut problems = crate::discord::doctor::check(config).await;
        let notion = crate::notion::Notion::new(config.notion_api_base.clone(), None);
        problems.extend(crate::doctor::check_notion(config, &notion).await);
        let retool = crate::retool::Retool::new(None);
        problems.extend(crate::doctor::check_retool(config, &retool).await);
        problems
    });
    let source = config
        .source
        .as_ref()
        .map_or_else(|| "defaults".to_string(), |p| p.display().to_string());
    let checked = format!(
        "{} (Discord{}, {} sync jobs, {} actions)",
        source,
        if config.bot.token.is_some() {
            ""
        } else {
            ": skipped, no DISCORD_TOKEN"
        },
        config.sync.len(),
        config.actions.len()
    );
    if problems.is_empty() {
        println!("online: ok, checked {checked}");
        return ExitCode::SUCCESS;
    }
    let count = problems.len();
    eprintln!(
        "online: {count} problem{} found, checked {checked}:",
        if count == 1 { "" } else { "s" }
    );
    for problem in &problems {
        eprintln!("  {source}: {problem}");
    }
    ExitCode::FAILURE
}

/// `patchbay invite`: what the bot asks for, on standard error, and the URL alone on standard
/// output.
async fn invite(config: &Config, client_id: Option<u64>) -> anyhow::Result<()> {
    let application = match client_id {
        Some(id) => id,
        None => crate::discord::doctor::application_id(config).await?,
    };
    eprintln!(
        "Open this URL as a member allowed to manage the server, pick the server and authorize."
    );
    eprintln!("patchbay asks for the scopes bot and applications.commands, and these permissions:");
    for (_, name, why) in crate::discord::doctor::PERMISSIONS {
        eprintln!("  {name}: {why}");
    }
    println!("{}", crate::discord::doctor::invite_url(application));
    Ok(())
}

async fn status(config: &Config, json: bool) -> anyhow::Result<()> {
    let store = Store::open(&config.storage.url).await?;
    let rows = crate::service::status_overview(config, &store, None, Utc::now()).await?;
    store.close().await;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let name_width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<name_width$}  {:<8}  {:<20}  {:>9}  {:>10}",
        "NAME", "STATE", "SINCE", "P95", "UPTIME 24H"
    );
    for row in rows {
        let p95 = row
            .latency_p95_ms
            .map_or_else(|| "-".to_string(), |ms| format!("{ms:.0}ms"));
        let uptime = row
            .uptime_24h
            .map_or_else(|| "-".to_string(), |pct| format!("{pct:.2}%"));
        println!(
            "{:<name_width$}  {:<8}  {:<20}  {:>9}  {:>10}",
            row.name,
            row.state.as_str(),
            row.since.format("%Y-%m-%d %H:%M:%S"),
            p95,
            uptime
        );
    }
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.storage.url).await?;
    let applied = store.migrate().await?;
    store.close().await;
    println!(
        "{}: applied {applied} migration{}; the schema is up to date",
        config.storage.url,
        if applied == 1 { "" } else { "s" }
    );
    Ok(())
}

async fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let store = Store::open(&config.storage.url).await?;
    store.backup(file).await?;
    store.close().await;
    println!("backed up {} to {}", config.storage.url, file.display());
    Ok(())
}

async fn restore(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let url = &config.storage.url;
    let restored = crate::store::restore::restore(file, url, Utc::now()).await?;
    println!(
        "restored {} from {}",
        restored.database.display(),
        restored.from.display()
    );
    println!(
        "  the backup passed SQLite's integrity check; its schema version is {}",
        restored.backup_version
    );
    if restored.applied == 0 {
        println!("  schema version {}: no migration needed", restored.version);
    } else {
        println!(
            "  migrated to schema version {} ({} migration{} applied)",
            restored.version,
            restored.applied,
            if restored.applied == 1 { "" } else { "s" }
        );
    }
    if let Some(kept) = &restored.kept {
        println!("  the replaced database is kept as {}", kept.display());
    } else {
        println!(
            "  there was no database at {} before",
            restored.database.display()
        );
    }
    if let Some(why) = &restored.unchecked {
        println!("  note: about the replaced database: {why}");
    }
    Ok(())
}

async fn healthcheck(config: &Config) -> anyhow::Result<ExitCode> {
    let mut address = config.http.listen;
    if address.ip().is_unspecified() {
        // A wildcard bind is reachable on loopback, which is where a container HEALTHCHECK runs.
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{address}/healthz");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => {
            println!("healthy: {url}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(response) => {
            eprintln!("unhealthy: {url} answered {}", response.status());
            Ok(ExitCode::FAILURE)
        }
        Err(err) => {
            eprintln!("unhealthy: {url}: {}", err.without_url());
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn slash_commands(config: &Config, action: CommandsAction) -> anyhow::Result<()> {
    let lines = match action {
        CommandsAction::Register => crate::discord::register_commands(config).await?,
        CommandsAction::List => crate::discord::list_commands(config).await?,
    };
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
