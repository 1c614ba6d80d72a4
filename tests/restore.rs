//! `patchbay restore` through the real binary, on real SQLite files: a backup taken while the
//! bot writes is restored over the database it came from, and a bot started on the result goes
//! on from the backup's state, history, grants, incidents, API keys and audit log; the replaced
//! database is kept whole beside it, WAL included. Refusals (a patchbay holding the database,
//! named; a backup from a newer patchbay, with a changed or failed migration, damaged, not
//! SQLite, not patchbay's, missing, or the database itself) change nothing. An older backup is
//! migrated; holders that died or lapsed do not block; a bot does not start while a restore
//! holds the database.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::Utc;
use common::process::{Process, command};
use common::upstream::Upstream;
use patchbay::access::Permission;
use patchbay::model::Snowflake;
use patchbay::store::Store;
use patchbay::store::lease;
use patchbay::store::process_leases::{HoldOutcome, ProcessRole};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

/// Integrations the bot checks ten times a second each: the write load.
const INTEGRATIONS: usize = 30;

fn db(dir: &Path) -> PathBuf {
    dir.join("patchbay.db")
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// `path` with `suffix` appended to its name (`patchbay.db` and `-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// This build's schema version: its newest migration's number.
fn latest_version() -> i64 {
    std::fs::read_dir("migrations/sqlite")
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.split('_').next()?.parse().ok()
        })
        .max()
        .unwrap()
}

/// How many migrations this build has.
fn migration_count() -> usize {
    std::fs::read_dir("migrations/sqlite").unwrap().count()
}

/// This host's name, as a holder names it.
fn host() -> String {
    let ours = lease::holder_id();
    lease::host_and_pid(&ours).unwrap().0.to_string()
}

/// A config with only the database: `dir/patchbay.db`.
fn storage_config(dir: &Path) -> PathBuf {
    let path = dir.join("patchbay.toml");
    std::fs::write(&path, format!("[storage]\nurl = \"{}\"\n", url(&db(dir)))).unwrap();
    path
}

/// A config with the database in `dir`, [`INTEGRATIONS`] integrations checked every 100 ms
/// against `healthy`, and `payments-api` against `failing`, DOWN at its first failure.
fn bot_config(dir: &Path, healthy: &Upstream, failing: &Upstream) -> PathBuf {
    let mut text = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"{}\"\nflush_interval = \"20ms\"\n",
        url(&db(dir))
    );
    for i in 0..INTEGRATIONS {
        text.push_str(&format!(
            "[[integration]]\nname = \"svc-{i:02}\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\n",
            healthy.url("/health")
        ));
    }
    text.push_str(&format!(
        "[[integration]]\nname = \"payments-api\"\nurl = \"{}\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\nfailure_threshold = 1\n",
        failing.url("/health")
    ));
    let path = dir.join("patchbay.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `patchbay <args>` with `config` in `dir` to its end (on a blocking thread).
async fn patchbay(dir: &Path, config: &Path, args: &[&str]) -> Output {
    let mut command = command(dir, config);
    command.args(args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `patchbay restore <file>`, which must succeed; returns its standard output.
async fn restore_ok(dir: &Path, config: &Path, file: &Path) -> String {
    let output = patchbay(dir, config, &["restore", file.to_str().unwrap()]).await;
    assert!(
        output.status.success(),
        "restore failed: {}{}",
        text(&output.stderr),
        text(&output.stdout)
    );
    text(&output.stdout)
}

/// `/perms grant` of `status.view` to role `role`, as the store keeps it.
async fn grant(store: &Store, role: u64) {
    store
        .add_grant(
            Snowflake(10),
            Snowflake(role),
            Permission::StatusView,
            Snowflake(20),
            Utc::now(),
        )
        .await
        .unwrap();
}

/// Runs one statement on the SQLite file at `path` (created if missing).
async fn sql(path: &Path, statement: &'static str) {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::query(statement).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// What a database holds, as comparable text: counts of the history, and the rows that say
/// what state, incidents, grants, API keys and audit entries it has.
async fn facts(path: &Path) -> BTreeMap<&'static str, String> {
    // Read-write (a read-only connection leaves a WAL database's `-wal` and `-shm` behind), but
    // only read.
    let options = SqliteConnectOptions::new().filename(path);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    let mut facts = BTreeMap::new();
    for (name, query) in [
        (
            "results",
            "SELECT CAST(COUNT(*) AS TEXT) FROM check_results",
        ),
        (
            "minute rollups",
            "SELECT COUNT(*) || ' rows of ' || COALESCE(SUM(count), 0) || ' checks' FROM rollups WHERE resolution = 60",
        ),
        (
            "hourly rollups",
            "SELECT COUNT(*) || ' rows of ' || COALESCE(SUM(count), 0) || ' checks' FROM rollups WHERE resolution = 3600",
        ),
        (
            "states",
            "SELECT group_concat(integration || ' ' || state || ' since ' || since_ms, '; ') \
             FROM (SELECT * FROM integration_states ORDER BY integration)",
        ),
        (
            "transitions",
            "SELECT CAST(COUNT(*) AS TEXT) FROM transitions",
        ),
        (
            "incidents",
            "SELECT group_concat(id || ' ' || integration || ' ' || state || ' ' || opened_at_ms, '; ') \
             FROM (SELECT * FROM incidents ORDER BY id)",
        ),
        (
            "grants",
            "SELECT group_concat(role_id || ' ' || permission, '; ') \
             FROM (SELECT * FROM grants ORDER BY role_id, permission)",
        ),
        (
            "api keys",
            "SELECT group_concat(name, '; ') FROM (SELECT name FROM api_keys ORDER BY name)",
        ),
        (
            "audit",
            "SELECT group_concat(command || ' ' || outcome || ' ' || options, '; ') \
             FROM (SELECT * FROM audit_log ORDER BY id)",
        ),
        ("installation", "SELECT token FROM installation"),
    ] {
        let value: Option<String> = sqlx::query_scalar(query)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        facts.insert(name, value.unwrap_or_default());
    }
    conn.close().await.unwrap();
    facts
}

/// A count the database at `path` answers.
async fn count(path: &Path, query: &'static str) -> i64 {
    let options = SqliteConnectOptions::new().filename(path);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    let count = sqlx::query_scalar(query)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    count
}

/// The number a fact starts with.
fn number(fact: &str) -> u64 {
    fact.split(' ').next().unwrap().parse().unwrap()
}

/// The file a line of restore's output names after `marker`.
fn named_after(stdout: &str, marker: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{stdout}"));
    PathBuf::from(line.split(marker).nth(1).unwrap().trim())
}

/// Names of the files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_state_history_grants_incidents_and_audit() {
    let (healthy, failing) = (Upstream::start().await, Upstream::start().await);
    failing.break_it();
    let dir = tempfile::tempdir().unwrap();
    let config = bot_config(dir.path(), &healthy, &failing);
    let database = db(dir.path());
    let mut bot = Process::start(dir.path(), &config, &[]);
    bot.logged(&["patchbay started"]).await;
    // Every integration checked a few times: each is UP (payments-api DOWN) before the backup.
    healthy.wait_hits(5 * INTEGRATIONS).await;
    // payments-api is DOWN, and its incident is open and announced.
    bot.logged(&[
        "alert notification",
        "notification=\"post\"",
        "payments-api=DOWN",
    ])
    .await;

    // Before the backup: a /perms grant, and an API key (audited as `apikey create`).
    let live = Store::open(&url(&database)).await.unwrap();
    grant(&live, 1).await;
    let created = patchbay(
        dir.path(),
        &config,
        &[
            "apikey",
            "create",
            "--name",
            "before",
            "--permissions",
            "status.view",
        ],
    )
    .await;
    assert!(created.status.success(), "{}", text(&created.stderr));

    // The backup, while 31 integrations are checked ten times a second each.
    let hits = healthy.hits();
    let backup = dir.path().join("backup.db");
    let made = patchbay(dir.path(), &config, &["backup", backup.to_str().unwrap()]).await;
    assert!(made.status.success(), "{}", text(&made.stderr));
    healthy.wait_hits(hits + 10 * INTEGRATIONS).await;
    let saved = facts(&backup).await;
    assert!(number(&saved["results"]) > 0, "{saved:#?}");
    // One snapshot between two batches: every result is counted in its minute rollup (each
    // batch writes both in one transaction).
    assert_eq!(
        saved["minute rollups"]
            .split(" rows of ")
            .nth(1)
            .unwrap()
            .trim_end_matches(" checks"),
        saved["results"],
        "{saved:#?}"
    );
    assert!(saved["states"].contains("payments-api DOWN"), "{saved:#?}");
    assert!(saved["incidents"].contains("payments-api"), "{saved:#?}");
    assert!(saved["audit"].contains("apikey create ok"), "{saved:#?}");

    // After the backup: gone once it is restored.
    grant(&live, 2).await;
    let created = patchbay(
        dir.path(),
        &config,
        &[
            "apikey",
            "create",
            "--name",
            "after",
            "--permissions",
            "status.view",
        ],
    )
    .await;
    assert!(created.status.success(), "{}", text(&created.stderr));
    live.close().await;

    // Refused while the bot runs, naming it.
    let refused = patchbay(dir.path(), &config, &["restore", backup.to_str().unwrap()]).await;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is in use by patchbay run (pid {} on {}, since ",
            database.display(),
            bot.pid(),
            host()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("stop it first, then restore"), "{stderr}");

    assert!(bot.terminate().await.success());
    let replaced = facts(&database).await;
    assert!(replaced["api keys"].contains("after"), "{replaced:#?}");

    let stdout = restore_ok(dir.path(), &config, &backup).await;
    assert!(
        stdout.starts_with(&format!(
            "restored {} from {}\n",
            database.display(),
            backup.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "schema version {}: no migration needed",
            latest_version()
        )),
        "{stdout}"
    );
    let kept = named_after(&stdout, "the replaced database is kept as ");
    assert!(
        kept.to_str()
            .unwrap()
            .starts_with(&format!("{}.replaced-", database.display())),
        "{stdout}"
    );
    // Nothing of the old database is left where the restored one is read.
    assert!(!with_suffix(&database, "-wal").exists());
    assert!(!with_suffix(&database, "-shm").exists());
    assert_eq!(facts(&database).await, saved, "the backup, restored");
    // The bot that held the backup's source does not hold the restored database.
    let holders = "SELECT COUNT(*) FROM process_leases";
    assert_eq!(count(&backup, holders).await, 1);
    assert_eq!(count(&database, holders).await, 0);
    assert_eq!(facts(&kept).await, replaced, "the replaced database, kept");

    // A bot started on it goes on from the backup's state: nothing is announced again.
    let mut bot = Process::start(dir.path(), &config, &[]);
    bot.logged(&["patchbay started"]).await;
    let hits = healthy.hits();
    healthy.wait_hits(hits + 5 * INTEGRATIONS).await;
    let keys = patchbay(dir.path(), &config, &["apikey", "list", "--json"]).await;
    let keys = text(&keys.stdout);
    assert!(
        keys.contains("\"before\"") && !keys.contains("\"after\""),
        "{keys}"
    );
    assert!(bot.terminate().await.success());
    assert_eq!(
        bot.count(&["alert notification", "notification=\"post\""]),
        0,
        "the restored incident was not opened or announced again:\n{}",
        bot.log()
    );
    let now = facts(&database).await;
    for fact in [
        "states",
        "transitions",
        "incidents",
        "grants",
        "api keys",
        "installation",
    ] {
        assert_eq!(now[fact], saved[fact], "{fact}");
    }
    assert!(
        now["audit"].starts_with(&saved["audit"]),
        "the audit log goes on from the backup's:\n{}\n{}",
        saved["audit"],
        now["audit"]
    );
    assert!(
        number(&now["results"]) > number(&saved["results"]),
        "the restored database takes the new results"
    );
}

/// A database made by this patchbay in `dir`, with a grant, and a backup of it taken before a
/// second grant: the two differ.
async fn database_and_backup(dir: &Path) -> PathBuf {
    let store = Store::open(&url(&db(dir))).await.unwrap();
    grant(&store, 1).await;
    let backup = dir.join("backup.db");
    store.backup(&backup).await.unwrap();
    grant(&store, 2).await;
    store.close().await;
    backup
}

#[tokio::test]
async fn refusals_say_what_is_wrong_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = storage_config(dir.path());
    let backup = database_and_backup(dir.path()).await;
    let database = db(dir.path());
    let before = facts(&database).await;
    let spare = dir.path().join("spare");
    std::fs::create_dir(&spare).unwrap();
    let copy = |name: &str| {
        let path = spare.join(name);
        std::fs::copy(&backup, &path).unwrap();
        path
    };

    let newer = copy("newer.db");
    sql(
        &newer,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, x'00', 0)",
    )
    .await;
    let changed = copy("changed.db");
    sql(
        &changed,
        "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1",
    )
    .await;
    let dirty = copy("dirty.db");
    sql(
        &dirty,
        "UPDATE _sqlx_migrations SET success = FALSE \
         WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    // Pages 4 to 6 overwritten: b-tree pages of the schema's first tables and indexes.
    let damaged = copy("damaged.db");
    let mut bytes = std::fs::read(&damaged).unwrap();
    assert!(bytes.len() > 7 * 4096, "{} bytes", bytes.len());
    bytes[3 * 4096..6 * 4096].fill(0xa5);
    std::fs::write(&damaged, bytes).unwrap();
    let notes = spare.join("notes.txt");
    std::fs::write(&notes, "not a database\n".repeat(300)).unwrap();
    let other = spare.join("other.db");
    sql(&other, "CREATE TABLE notes (body TEXT)").await;
    let missing = spare.join("missing.db");

    let cases: [(&Path, String); 8] = [
        (
            newer.as_path(),
            format!(
                "{}: made by a newer patchbay (its migration 9999 \"from the future\" is unknown to this one): upgrade patchbay first, then restore",
                newer.display()
            ),
        ),
        (
            changed.as_path(),
            format!(
                "{}: its migration 1 \"init\" differs from this patchbay's (checksum mismatch)",
                changed.display()
            ),
        ),
        (
            dirty.as_path(),
            "failed partway, so its schema is incomplete".into(),
        ),
        (
            damaged.as_path(),
            format!(
                "{}: damaged; SQLite's integrity check says: ",
                damaged.display()
            ),
        ),
        (
            notes.as_path(),
            format!(
                "{}: not a SQLite database (file is not a database)",
                notes.display()
            ),
        ),
        (
            other.as_path(),
            format!(
                "{}: a SQLite database, but not patchbay's: it has no migration history",
                other.display()
            ),
        ),
        (
            missing.as_path(),
            format!("{}: no such file", missing.display()),
        ),
        (
            database.as_path(),
            format!(
                "{} is the database itself: name a backup to restore from",
                database.display()
            ),
        ),
    ];
    for (file, expected) in cases {
        let output = patchbay(dir.path(), &config, &["restore", file.to_str().unwrap()]).await;
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {stderr}",
            file.display()
        );
        assert!(stderr.contains(&expected), "{}: {stderr}", file.display());
        assert_eq!(
            facts(&database).await,
            before,
            "{} changed the database",
            file.display()
        );
        let left: Vec<String> = files(dir.path())
            .into_iter()
            .filter(|name| name.contains(".restoring") || name.contains(".replaced-"))
            .collect();
        assert!(left.is_empty(), "{}: left {left:?}", file.display());
    }
}

#[tokio::test]
async fn an_older_backup_is_migrated_into_a_fresh_location() {
    let dir = tempfile::tempdir().unwrap();
    // A database as the first four migrations left it, with a grant and an integration's
    // state.
    let old = dir.path().join("old.db");
    let pool = sqlx::SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&old)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    let migrator = sqlx::migrate::Migrator::new(Path::new("migrations/sqlite"))
        .await
        .unwrap();
    migrator.run_to(4, &pool).await.unwrap();
    for statement in [
        "INSERT INTO grants (guild_id, role_id, permission, granted_by, granted_at_ms) \
         VALUES (10, 7, 'alerts.manage', 20, 1700000000000)",
        "INSERT INTO integration_states (integration, state, since_ms, consecutive_failures, \
         consecutive_successes) VALUES ('payments-api', 'DOWN', 1700000000000, 3, 0)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let config = storage_config(&fresh);
    let stdout = restore_ok(&fresh, &config, &old).await;
    let applied = migration_count() - 4;
    for expected in [
        "its schema version is 4\n".to_string(),
        format!(
            "migrated to schema version {} ({applied} migrations applied)\n",
            latest_version()
        ),
        format!("there was no database at {} before\n", db(&fresh).display()),
    ] {
        assert!(stdout.contains(&expected), "{expected:?} in:\n{stdout}");
    }
    assert_eq!(files(&fresh), ["patchbay.db", "patchbay.toml"]);

    let store = Store::open(&url(&db(&fresh))).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0, "fully migrated");
    store.integrity_check().await.unwrap();
    let grants = store.command_grants().await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].role, Snowflake(7));
    let states = store.load_states().await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].integration, "payments-api");
    assert_eq!(states[0].state.as_str(), "DOWN");
    store.close().await;
}

#[tokio::test]
async fn the_wal_a_crash_left_stays_with_the_replaced_database() {
    let dir = tempfile::tempdir().unwrap();
    let backup = database_and_backup(dir.path()).await;
    // What a bot killed mid-run leaves: its last commits only in the WAL. Taken while a store
    // holds the database open (so nothing is checkpointed), then copied into place.
    let store = Store::open(&url(&db(dir.path()))).await.unwrap();
    grant(&store, 3).await;
    let crashed = dir.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    for suffix in ["", "-wal"] {
        std::fs::copy(
            with_suffix(&db(dir.path()), suffix),
            with_suffix(&db(&crashed), suffix),
        )
        .unwrap();
    }
    store.close().await;
    assert!(
        std::fs::metadata(with_suffix(&db(&crashed), "-wal"))
            .unwrap()
            .len()
            > 0,
        "the WAL holds the last commits"
    );

    let config = storage_config(&crashed);
    let stdout = restore_ok(&crashed, &config, &backup).await;
    let kept = named_after(&stdout, "the replaced database is kept as ");
    assert!(!with_suffix(&db(&crashed), "-wal").exists());
    assert_eq!(facts(&db(&crashed)).await, facts(&backup).await);
    let kept_grants = facts(&kept).await["grants"].clone();
    assert_eq!(
        kept_grants, "1 status.view; 2 status.view; 3 status.view",
        "the kept database has the commits its WAL held"
    );
}

#[tokio::test]
async fn a_database_that_cannot_be_read_is_replaced_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = storage_config(dir.path());
    let backup = database_and_backup(dir.path()).await;
    // What a restore is often for: the database itself is lost.
    let database = db(dir.path());
    std::fs::write(&database, "overwritten by mistake\n".repeat(500)).unwrap();
    let stdout = restore_ok(dir.path(), &config, &backup).await;
    assert!(
        stdout.contains("note: about the replaced database: it could not be read ("),
        "{stdout}"
    );
    let kept = named_after(&stdout, "the replaced database is kept as ");
    assert!(
        std::fs::read_to_string(&kept)
            .unwrap()
            .starts_with("overwritten by mistake")
    );
    assert_eq!(facts(&database).await, facts(&backup).await);
}

/// Holds the database at `path` as `holder`, at `at`, and leaves the row there as a process that
/// stopped without releasing it would (no row is cleaned up on the way).
async fn leave_hold(path: &Path, role: ProcessRole, holder: &str, at: chrono::DateTime<Utc>) {
    let store = Store::open(&url(path)).await.unwrap();
    match store
        .hold_database(role, holder, at, |_| false)
        .await
        .unwrap()
    {
        HoldOutcome::Held { hold, .. } => drop(hold),
        HoldOutcome::Refused(holders) => panic!("refused: {holders:?}"),
    }
    store.close().await;
}

#[tokio::test]
async fn holders_that_died_or_lapsed_do_not_block_and_live_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = storage_config(dir.path());
    let backup = database_and_backup(dir.path()).await;
    let database = db(dir.path());
    let ours = lease::holder_id();
    let (this_host_and_boot, _) = ours.rsplit_once('/').unwrap();
    // A bot on another host, alive; one on this host whose process is gone; one on another
    // host whose hold lapsed an hour ago. (Lapsed last: each hold clears lapsed rows.)
    let now = Utc::now();
    leave_hold(&database, ProcessRole::Run, "web-2/boot/4242", now).await;
    leave_hold(
        &database,
        ProcessRole::Run,
        &format!("{this_host_and_boot}/4000000000"),
        now,
    )
    .await;
    leave_hold(
        &database,
        ProcessRole::Run,
        "elsewhere/boot/77",
        now - chrono::Duration::hours(1),
    )
    .await;

    let refused = patchbay(dir.path(), &config, &["restore", backup.to_str().unwrap()]).await;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is in use by patchbay run (pid 4242 on web-2, since {}): stop it first",
            database.display(),
            now.format("%Y-%m-%d %H:%M:%S UTC")
        )),
        "only the live holder is named: {stderr}"
    );
    assert!(
        !stderr.contains("4000000000") && !stderr.contains("pid 77"),
        "{stderr}"
    );

    // Once it stopped (its row lapsed or was released), the restore goes ahead.
    sql(
        &database,
        "DELETE FROM process_leases WHERE holder = 'web-2/boot/4242'",
    )
    .await;
    let stdout = restore_ok(dir.path(), &config, &backup).await;
    assert!(stdout.contains("kept as"), "{stdout}");
    assert_eq!(facts(&database).await["grants"], "1 status.view");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_does_not_start_while_a_restore_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = storage_config(dir.path());
    let now = Utc::now();
    leave_hold(
        &db(dir.path()),
        ProcessRole::Restore,
        "elsewhere/boot/99",
        now,
    )
    .await;
    let mut bot = Process::start(dir.path(), &config, &[]);
    let status = tokio::task::block_in_place(|| bot.wait_exit());
    assert_eq!(status.code(), Some(1), "{}", bot.log());
    let log = bot.log();
    assert!(
        log.contains(&format!(
            "patchbay restore (pid 99 on elsewhere, since {}) is replacing the database {}: start patchbay once it has finished",
            now.format("%Y-%m-%d %H:%M:%S UTC"),
            url(&db(dir.path()))
        )),
        "{log}"
    );
}
