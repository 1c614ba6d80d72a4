//! The control plane's invocation path with a real SQLite store: the rate limit, the
//! permission decision, the action, and exactly one audit entry per invocation whatever the
//! outcome.

use std::time::{Duration, Instant};

use patchbay::access::{Denied, Member, Permission};
use patchbay::audit::{Actor, AuditQuery, InvocationOption, Outcome};
use patchbay::config::{self, Environment};
use patchbay::model::Snowflake;
use patchbay::service::{CommandError, ControlPlane, Invocation};
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

fn invocation(user: u64, roles: &[Snowflake], command: &str) -> Invocation {
    Invocation {
        member: Member {
            user: Snowflake(user),
            guild: Some(GUILD),
            roles: roles.to_vec(),
            is_owner: false,
            is_administrator: false,
        },
        actor: Actor::Discord {
            user: Snowflake(user),
            name: format!("user{user}"),
        },
        channel: Some(Snowflake(5)),
        command: command.into(),
        options: vec![
            InvocationOption {
                name: "integration".into(),
                value: "payments-api".into(),
                secret: false,
            },
            InvocationOption {
                name: "token".into(),
                value: "hunter2".into(),
                secret: true,
            },
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

    let ok = plane
        .invoke(
            &invocation(7, &[OPS], "sync"),
            Permission::SyncRun,
            || async { Ok::<_, CommandError>("synced") },
        )
        .await;
    assert_eq!(ok, Ok("synced"));

    let mut ran = false;
    let denied = plane
        .invoke(&invocation(8, &[], "sync"), Permission::SyncRun, || {
            ran = true;
            async { Ok::<_, CommandError>("synced") }
        })
        .await;
    assert_eq!(
        denied,
        Err(CommandError::Denied(Denied::Missing(Permission::SyncRun)))
    );
    assert!(!ran, "a denied action never runs");
    assert!(
        denied
            .unwrap_err()
            .to_string()
            .contains("/perms grant permission:sync.run")
    );

    let invalid: Result<(), _> = plane
        .invoke(
            &invocation(7, &[OPS], "sync"),
            Permission::SyncRun,
            || async {
                Err(CommandError::Invalid(
                    "no integration named \"paymnts\"".into(),
                ))
            },
        )
        .await;
    assert!(invalid.is_err());

    let failed: Result<(), _> = plane
        .invoke(
            &invocation(7, &[OPS], "sync"),
            Permission::SyncRun,
            || async { Err(CommandError::internal("timeout", &"upstream took too long")) },
        )
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
    assert_eq!(failed.guild, Some(GUILD));
    assert!(entries.iter().all(|e| e.latency_ms >= 0.0));
}

#[tokio::test]
async fn the_rate_limit_is_a_burst_then_one_per_refill() {
    // 3 a minute: a burst of 3, then one every 20 s.
    let (plane, store, _dir) = plane("[bot]\ncommand_rate = \"3/m\"\n").await;
    for _ in 0..3 {
        let ok = plane
            .invoke(
                &invocation(7, &[], "status"),
                Permission::StatusView,
                || async { Ok::<_, CommandError>(()) },
            )
            .await;
        assert_eq!(ok, Ok(()));
    }
    let limited = plane
        .invoke(
            &invocation(7, &[], "status"),
            Permission::StatusView,
            || async { Ok::<_, CommandError>(()) },
        )
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
            .starts_with("you are sending commands too fast: try again in")
    );
    // The limit is per member: someone else is not affected.
    let other = plane
        .invoke(
            &invocation(8, &[], "status"),
            Permission::StatusView,
            || async { Ok::<_, CommandError>(()) },
        )
        .await;
    assert_eq!(other, Ok(()));
    assert_eq!(audit(&store).await[1].outcome, Outcome::RateLimited);
}

#[tokio::test]
async fn perms_grant_and_revoke_change_the_policy_but_not_config_grants() {
    let (plane, _store, _dir) =
        plane("[[grant]]\nrole = 10\npermissions = [\"alerts.manage\"]\n").await;
    let dev = Snowflake(11);
    let member = invocation(9, &[dev], "sync").member;
    assert!(plane.policy().decide(&member, Permission::SyncRun).is_err());

    let said = plane
        .grant(GUILD, dev, Permission::SyncRun, Snowflake(1))
        .await
        .unwrap();
    assert_eq!(said, "<@&11> now holds `sync.run`.");
    assert!(plane.policy().decide(&member, Permission::SyncRun).is_ok());
    let again = plane
        .grant(GUILD, dev, Permission::SyncRun, Snowflake(1))
        .await
        .unwrap();
    assert_eq!(again, "<@&11> already held `sync.run`.");

    let revoked = plane.revoke(GUILD, dev, Permission::SyncRun).await.unwrap();
    assert_eq!(revoked, "<@&11> no longer holds `sync.run`.");
    assert!(plane.policy().decide(&member, Permission::SyncRun).is_err());
    let missing = plane
        .revoke(GUILD, dev, Permission::SyncRun)
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("does not hold `sync.run`"),
        "{missing}"
    );

    let config_grant = plane
        .revoke(GUILD, OPS, Permission::AlertsManage)
        .await
        .unwrap_err();
    assert!(
        config_grant
            .to_string()
            .contains("from the config file ([[grant]]), which Discord cannot change"),
        "{config_grant}"
    );
    let ops = invocation(9, &[OPS], "alerts").member;
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
    use patchbay::service::{sparkline, status_detail};
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
    assert_eq!(sparkline(&detail.hourly_uptime), "·····················▄▆█");
    assert_eq!(detail.hourly_uptime[23], Some(100.0));

    let unknown = status_detail(&config, &store, None, "payments-apj", now)
        .await
        .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "there is no integration named \"payments-apj\"; did you mean payments-api?"
    );
}
