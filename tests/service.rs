//! The control plane's invocation path with a real SQLite store: the rate limit, the
//! permission decision, the action, and exactly one audit entry per invocation whatever the
//! outcome, saying which permission it needed and what allowed it; every kind of actor; secret
//! options redacted in the database file itself; typed answers.

use std::time::{Duration, Instant};

use patchbay::access::{Allowed, Caller, Denied, GrantSource, Member, Permission};
use patchbay::audit::{AuditQuery, InvocationOption, OptionValue, Outcome};
use patchbay::config::{self, Environment};
use patchbay::model::{Actor, Snowflake};
use patchbay::service::{
    CommandError, ControlPlane, GrantChange, GrantChanged, Invalid, Invocation,
};
use patchbay::store::Store;

const GUILD: Snowflake = Snowflake(1);
const OPS: Snowflake = Snowflake(10);

async fn plane(config_text: &str) -> (ControlPlane, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .unwrap();
    let config = config::parse(config_text, "test.toml", None, &Environment::default()).unwrap();
    (
        ControlPlane::new(&config, store.clone(), None)
            .await
            .unwrap(),
        store,
        dir,
    )
}

fn member(user: u64, roles: &[Snowflake]) -> Member {
    Member {
        user: Snowflake(user),
        guild: Some(GUILD),
        roles: roles.to_vec(),
        is_owner: false,
        is_administrator: false,
    }
}

/// A Discord member's invocation of `command`, which needs `permission`, with a plain option and
/// a secret one.
fn invocation(user: u64, roles: &[Snowflake], command: &str, permission: Permission) -> Invocation {
    Invocation {
        actor: Actor::Discord {
            user: Snowflake(user),
            name: format!("user{user}"),
        },
        caller: Caller::Member(member(user, roles)),
        channel: Some(Snowflake(5)),
        command: command.into(),
        permission: Some(permission),
        options: vec![
            InvocationOption::new("integration", OptionValue::Text("payments-api".into())),
            InvocationOption {
                name: "token".into(),
                value: OptionValue::Text("hunter2-very-secret".into()),
                secret: true,
            },
            InvocationOption::new("count", OptionValue::Integer(3)),
        ],
        received: Instant::now(),
    }
}

async fn audit(store: &Store) -> Vec<patchbay::audit::AuditEntry> {
    store
        .audit_entries(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn allowed_denied_invalid_and_failed_are_each_audited_once() {
    let (plane, store, _dir) = plane("[[grant]]\nrole = 10\npermissions = [\"sync.run\"]\n").await;

    let sync = |user, roles: &[Snowflake]| invocation(user, roles, "sync", Permission::SyncRun);
    let ok = plane
        .invoke(&sync(7, &[OPS]), || async {
            Ok::<_, CommandError>("synced")
        })
        .await;
    assert_eq!(ok, Ok("synced"));

    let mut ran = false;
    let denied = plane
        .invoke(&sync(8, &[]), || {
            ran = true;
            async { Ok::<_, CommandError>("synced") }
        })
        .await;
    assert_eq!(
        denied,
        Err(CommandError::Denied(Denied::Missing(Permission::SyncRun)))
    );
    assert!(!ran, "a denied action never runs");
    // The service's words carry no front's command syntax; each front adds its own hint.
    assert_eq!(
        denied.unwrap_err().to_string(),
        "you need the sync.run permission"
    );

    let invalid: Result<(), _> = plane
        .invoke(&sync(7, &[OPS]), || async {
            Err(Invalid::UnknownTag {
                tag: "paymnts".into(),
            }
            .into())
        })
        .await;
    assert!(invalid.is_err());

    let failed: Result<(), _> = plane
        .invoke(&sync(7, &[OPS]), || async {
            Err(CommandError::internal("timeout", &"upstream took too long"))
        })
        .await;
    let message = failed.unwrap_err().to_string();
    assert!(
        message.starts_with("something went wrong (ref "),
        "{message}"
    );

    let entries = audit(&store).await;
    let outcomes: Vec<Outcome> = entries.iter().rev().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Ok,
            Outcome::Denied,
            Outcome::Invalid,
            Outcome::Failed
        ]
    );
    let failed = &entries[0];
    assert_eq!(failed.error_kind.as_deref(), Some("timeout"));
    assert_eq!(failed.options["token"], "[redacted]");
    assert_eq!(failed.options["integration"], "payments-api");
    assert_eq!(failed.options["count"], 3, "options keep their types");
    assert_eq!(failed.guild, Some(GUILD));
    assert!(entries.iter().all(|e| e.latency_ms >= 0.0));
    // Each entry says which permission it needed and, when allowed, what allowed it.
    assert!(
        entries
            .iter()
            .all(|e| e.permission == Some(Permission::SyncRun))
    );
    let granted_by_config = Some(Allowed::Role {
        role: OPS,
        source: GrantSource::Config,
    });
    let allowed: Vec<Option<Allowed>> = entries.iter().rev().map(|e| e.allowed.clone()).collect();
    assert_eq!(
        allowed,
        [
            granted_by_config.clone(),
            None,
            granted_by_config.clone(),
            granted_by_config
        ]
    );
}

#[tokio::test]
async fn secret_options_never_reach_the_database_file() {
    let (plane, store, dir) = plane("[[grant]]\nrole = 10\npermissions = [\"sync.run\"]\n").await;
    for roles in [&[OPS][..], &[]] {
        let _ = plane
            .invoke(
                &invocation(7, roles, "sync", Permission::SyncRun),
                || async { Ok::<_, CommandError>(()) },
            )
            .await;
    }
    assert_eq!(audit(&store).await.len(), 2);
    store.close().await;
    // Every byte SQLite wrote: the database, and its write-ahead log if one is left.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("payments-api"), "the plain option is stored");
    assert!(text.contains("[redacted]"));
    assert!(!text.contains("hunter2"), "the secret option is not");
}

#[tokio::test]
async fn every_kind_of_actor_is_admitted_by_its_own_rule_and_audited_as_itself() {
    // API keys have their own rate ([api].rate), apart from members' command rate.
    let (plane, store, _dir) =
        plane("[bot]\ncommand_rate = \"1/m\"\n[api]\nrate = \"1/m\"\nburst = 1\n").await;
    let run = |actor: Actor, caller: Caller| Invocation {
        actor,
        caller,
        channel: None,
        command: "sync run".into(),
        permission: Some(Permission::SyncRun),
        options: Vec::new(),
        received: Instant::now(),
    };
    let key = |scopes: Vec<Permission>| {
        run(
            Actor::ApiKey {
                key: "retool-dashboard".into(),
            },
            Caller::ApiKey { scopes },
        )
    };
    let ok = |(): ()| Ok::<_, CommandError>(());
    assert_eq!(
        plane
            .invoke(&key(vec![Permission::SyncRun]), || async { ok(()) })
            .await,
        Ok(())
    );
    let scheduler = run(
        Actor::Scheduler {
            job: "status-board".into(),
        },
        Caller::Local,
    );
    let cli = run(Actor::Cli { user: "ops".into() }, Caller::Local);
    // The scheduler and the command line are patchbay's own process: never rate limited.
    for _ in 0..3 {
        assert_eq!(plane.invoke(&scheduler, || async { ok(()) }).await, Ok(()));
        assert_eq!(plane.invoke(&cli, || async { ok(()) }).await, Ok(()));
    }
    // The key's one call a minute is spent: refused before its scopes are read.
    let limited = plane
        .invoke(&key(vec![Permission::StatusView]), || async { ok(()) })
        .await;
    assert!(
        matches!(limited, Err(CommandError::RateLimited { .. })),
        "{limited:?}"
    );
    let entries = audit(&store).await;
    let actors: Vec<(&str, String)> = entries
        .iter()
        .rev()
        .map(|e| (e.actor.kind(), e.actor.to_string()))
        .collect();
    assert_eq!(actors[0], ("api_key", "retool-dashboard (api key)".into()));
    assert!(actors.contains(&("scheduler", "status-board (scheduler)".into())));
    assert!(actors.contains(&("cli", "ops (cli)".into())));
    let allowed: Vec<Option<Allowed>> = entries.iter().rev().map(|e| e.allowed.clone()).collect();
    assert_eq!(allowed[0], Some(Allowed::Scope));
    assert_eq!(allowed[1], Some(Allowed::Local));
}

#[tokio::test]
async fn the_rate_limit_is_a_burst_then_one_per_refill() {
    // 3 a minute: a burst of 3, then one every 20 s.
    let (plane, store, _dir) = plane("[bot]\ncommand_rate = \"3/m\"\n").await;
    let status = |user| invocation(user, &[], "status", Permission::StatusView);
    for _ in 0..3 {
        let ok = plane
            .invoke(&status(7), || async { Ok::<_, CommandError>(()) })
            .await;
        assert_eq!(ok, Ok(()));
    }
    let limited = plane
        .invoke(&status(7), || async { Ok::<_, CommandError>(()) })
        .await;
    let Err(CommandError::RateLimited { retry_in }) = limited else {
        panic!("expected a rate limit, got {limited:?}");
    };
    assert!(
        retry_in > Duration::from_secs(15) && retry_in <= Duration::from_secs(20),
        "{retry_in:?}"
    );
    assert!(
        limited
            .unwrap_err()
            .to_string()
            .starts_with("too many commands: try again in")
    );
    // The limit is per member: someone else is not affected.
    let other = plane
        .invoke(&status(8), || async { Ok::<_, CommandError>(()) })
        .await;
    assert_eq!(other, Ok(()));
    assert_eq!(audit(&store).await[1].outcome, Outcome::RateLimited);
}

#[tokio::test]
async fn perms_grant_and_revoke_change_the_policy_but_not_config_grants() {
    let (plane, _store, _dir) =
        plane("[[grant]]\nrole = 10\npermissions = [\"alerts.manage\"]\n").await;
    let dev = Snowflake(11);
    let dev_member = member(9, &[dev]);
    assert!(
        plane
            .policy()
            .decide(&dev_member, Permission::SyncRun)
            .is_err()
    );

    let changed = |change| GrantChanged {
        role: dev,
        permission: Permission::SyncRun,
        change,
    };
    let said = plane
        .grant(GUILD, dev, Permission::SyncRun, Snowflake(1))
        .await
        .unwrap();
    assert_eq!(said, changed(GrantChange::Added));
    assert!(
        plane
            .policy()
            .decide(&dev_member, Permission::SyncRun)
            .is_ok()
    );
    let again = plane
        .grant(GUILD, dev, Permission::SyncRun, Snowflake(1))
        .await
        .unwrap();
    assert_eq!(again, changed(GrantChange::AlreadyHeld));

    let revoked = plane.revoke(GUILD, dev, Permission::SyncRun).await.unwrap();
    assert_eq!(revoked, changed(GrantChange::Removed));
    assert!(
        plane
            .policy()
            .decide(&dev_member, Permission::SyncRun)
            .is_err()
    );
    let missing = plane
        .revoke(GUILD, dev, Permission::SyncRun)
        .await
        .unwrap_err();
    assert_eq!(
        missing,
        CommandError::Invalid(Invalid::NotGranted {
            role: dev,
            permission: Permission::SyncRun
        })
    );

    let config_grant = plane
        .revoke(GUILD, OPS, Permission::AlertsManage)
        .await
        .unwrap_err();
    assert_eq!(
        config_grant,
        CommandError::Invalid(Invalid::ConfigGrant {
            role: OPS,
            permission: Permission::AlertsManage,
            removed_command_grant: false
        })
    );
    let ops = member(9, &[OPS]);
    assert!(
        plane
            .policy()
            .decide(&ops, Permission::AlertsManage)
            .is_ok()
    );
}

#[tokio::test]
async fn status_detail_reads_windows_and_a_24_hour_sparkline_from_rollups() {
    use patchbay::model::{CheckResult, IntegrationState, State};
    use patchbay::service::status_detail;
    use patchbay::store::{Batch, StatsWindow};
    let (_plane, store, _dir) = plane("").await;
    let config = config::parse(
        "[[integration]]\nname = \"payments-api\"\nurl = \"http://127.0.0.1:9/\"\ntags = [\"prod\"]\n",
        "test.toml",
        None,
        &Environment::default(),
    )
    .unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T12:30:00Z")
        .unwrap()
        .to_utc();
    // One check a minute over the last two hours; the earlier hour fails half its checks.
    let results: Vec<CheckResult> = (0..120)
        .map(|minute| {
            let success = minute < 60 || minute % 2 == 0;
            CheckResult {
                integration: "payments-api".into(),
                at: now - chrono::Duration::minutes(minute),
                success,
                latency_ms: 40.0,
                status: Some(if success { 200 } else { 503 }),
                error_kind: None,
                message: None,
            }
        })
        .collect();
    let mut state = IntegrationState::new("payments-api", now);
    state.state = State::Up;
    store
        .write(&Batch {
            results,
            states: vec![state],
            transitions: vec![],
        })
        .await
        .unwrap();

    let detail = status_detail(&config, &store, None, "payments-api", now)
        .await
        .unwrap();
    assert_eq!(detail.row.state, State::Up);
    assert_eq!(detail.row.tags, ["prod"]);
    assert_eq!(detail.windows.len(), 3);
    let (window, day) = &detail.windows[0];
    assert_eq!(*window, StatsWindow::Day);
    let day = day.as_ref().unwrap();
    assert_eq!(day.checks, 120);
    assert_eq!(day.uptime_pct, 75.0);
    assert!(
        (25.0..=50.0).contains(&day.latency_p95_ms),
        "{}",
        day.latency_p95_ms
    );
    // The checks run from 10:31 to 12:30: 10:00 passes 14 of 29 (48%), 11:00 45 of 60 (75%),
    // 12:00 all 31; the 21 hours before have no checks.
    assert_eq!(detail.hourly_uptime.len(), 24);
    assert!(detail.hourly_uptime[..21].iter().all(Option::is_none));
    let rounded: Vec<Option<f64>> = detail.hourly_uptime[21..]
        .iter()
        .map(|pct| pct.map(f64::round))
        .collect();
    assert_eq!(rounded, [Some(48.0), Some(75.0), Some(100.0)]);

    let unknown = status_detail(&config, &store, None, "payments-apj", now)
        .await
        .unwrap_err();
    assert_eq!(
        unknown,
        CommandError::Invalid(Invalid::UnknownIntegration {
            name: "payments-apj".into(),
            suggestions: vec!["payments-api".into()],
        })
    );
    assert_eq!(
        unknown.to_string(),
        "there is no integration named \"payments-apj\""
    );
}
