//! The real `patchbay` binary, started with the committed example config pointed at local
//! upstreams: state changes appear as log lines in the documented shape, `/readyz` and
//! `/metrics` answer, SIGHUP reloads (and refuses a broken config), `kill -9` and a restart
//! neither lose nor re-announce a transition, the CLI reads the database of a running bot, and
//! SIGTERM exits 0.

mod common;

use std::net::TcpListener as StdListener;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{BIN, Process, WAIT};
use common::upstream::{Reply, Upstream};

/// What the payments upstream answers while healthy: the example config checks
/// `body.status == "ok"` too.
fn healthy() -> Reply {
    Reply::status(200).body(r#"{"status":"ok"}"#)
}

/// What it answers while down.
fn down() -> Reply {
    Reply::status(503).body(r#"{"status":"down"}"#)
}

/// A local upstream whose health the test flips (served from its own runtime: these tests
/// have none).
fn start_upstream() -> Upstream {
    let upstream = Upstream::start_sync();
    upstream.set_reply(healthy());
    upstream
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example config with short intervals, the self-check on `port`, and payments-api enabled
/// and pointed at `upstream`.
fn example_config(port: u16, upstream: &str) -> String {
    let example = std::fs::read_to_string("patchbay.example.toml").unwrap();
    let replaced = example
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("https://payments.example.com/healthz", upstream)
        .replace("enabled = false", "enabled = true")
        .replace("interval = \"30s\"", "interval = \"200ms\"")
        .replace("interval = \"10s\"", "interval = \"200ms\"")
        .replace("timeout = \"10s\"", "timeout = \"200ms\"")
        .replace("timeout = \"2s\"", "timeout = \"200ms\"")
        .replace("flush_interval = \"500ms\"", "flush_interval = \"50ms\"")
        // The error-rate rule would make a recovery go through DEGRADED depending on how many
        // checks passed before the outage; the latency rule alone keeps the story exact.
        .replace("error_rate = 0.1, ", "");
    assert_ne!(replaced, example);
    replaced
}

/// A running bot (see `common::process`) and the port of its HTTP server.
struct Bot {
    process: Process,
    port: u16,
}

impl Deref for Bot {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Bot {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

impl Bot {
    fn start(dir: &Path, config: &Path, port: u16, format: &str) -> Bot {
        let env = [
            ("PATCHBAY_LOG_FORMAT", format.to_string()),
            ("DATABASE_URL", database_url(dir)),
        ];
        let bot = Bot {
            process: Process::start(dir, config, &env),
            port,
        };
        bot.wait_for("HTTP server listening");
        bot
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path)
    }

    /// Reads a counter from /metrics, waiting until it reaches `at_least`.
    fn wait_metric(&self, series: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, body) = self.get("/metrics");
            let value = body
                .lines()
                .find(|l| l.starts_with(series))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            if value >= at_least {
                return value;
            }
            assert!(Instant::now() < deadline, "{series} stayed at {value}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("patchbay.db").display())
}

/// The binary with a subcommand's config, reading the bot's database.
fn command(dir: &Path, config: &Path) -> Command {
    let mut command = common::process::command(dir, config);
    command.env("DATABASE_URL", database_url(dir));
    command
}

/// A minimal HTTP/1.1 GET, so the test needs no client beyond std.
fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn setup() -> (tempfile::TempDir, PathBuf, u16, Upstream) {
    let dir = tempfile::tempdir().unwrap();
    let upstream = start_upstream();
    let port = free_port();
    let config = dir.path().join("patchbay.toml");
    std::fs::write(&config, example_config(port, &upstream.url("/healthz"))).unwrap();
    (dir, config, port, upstream)
}

/// Checks the exposition format line by line: `# HELP`/`# TYPE` comments, and samples of the
/// form `name{labels} value` whose family was declared.
fn assert_valid_exposition(body: &str) {
    let mut declared = std::collections::HashSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(declared.insert(name.to_string()), "declared twice: {name}");
        } else if !line.starts_with("# HELP ") && !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap();
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            let name = series.split('{').next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| declared.contains(*base))
                .unwrap_or(name);
            assert!(declared.contains(family), "undeclared sample: {line}");
            assert!(name.starts_with("patchbay_"), "{line}");
            if let Some(labels) = series.strip_prefix(name) {
                assert!(
                    labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                    "{line}"
                );
            }
        }
    }
    for required in [
        "patchbay_checks_total",
        "patchbay_check_duration_seconds",
        "patchbay_integration_state",
        "patchbay_scheduler_lateness_seconds",
        "patchbay_build_info",
        "patchbay_write_queue_depth",
        "patchbay_storage_write_batches_total",
    ] {
        assert!(
            declared.contains(required),
            "{required} missing from /metrics"
        );
    }
}

#[test]
fn runs_headless_logs_transitions_and_shuts_down_cleanly() {
    let (dir, config, port, upstream) = setup();
    let mut bot = Bot::start(dir.path(), &config, port, "pretty");
    bot.wait_for("running headless");

    // Both integrations come up: patchbay watching itself and the local payments upstream.
    bot.wait_for_all(&["integration=patchbay-self", "from=UNKNOWN", "to=UP"]);
    bot.wait_for_all(&[
        "integration=payments-api",
        "from=UNKNOWN",
        "to=UP",
        "reason=\"first check passed\"",
    ]);

    let (status, body) = bot.get("/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"ready","storage":"ok","scheduler":"ok"}"#
    );
    assert_eq!(bot.get("/healthz").0, 200);

    // The upstream fails: three failures in a row make it DOWN, in the documented line shape.
    upstream.set_reply(down());
    let down = bot.wait_for_all(&["integration=payments-api", "from=UP", "to=DOWN"]);
    assert!(
        down.contains("reason=\"3 failures in a row: status == 200 failed: got 503; body.status == \\\"ok\\\" failed: got \\\"down\\\"\""),
        "{down}"
    );
    assert!(down.contains("WARN"), "{down}");

    let (status, metrics) = bot.get("/metrics");
    assert_eq!(status, 200);
    assert_valid_exposition(&metrics);
    assert!(
        metrics
            .contains("patchbay_integration_state{integration=\"payments-api\",state=\"DOWN\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("patchbay_integration_state{integration=\"payments-api\",state=\"UP\"}")
    );
    assert!(metrics.contains(&format!(
        "patchbay_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));

    // The CLI reads the running bot's database.
    let output = command(dir.path(), &config)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let payments = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "payments-api")
        .unwrap();
    assert_eq!(payments["state"], "DOWN");
    assert_eq!(payments["kind"], "http");
    assert_eq!(payments["tags"], serde_json::json!(["payments", "prod"]));
    assert!(payments["last_check"].is_string());
    assert!(payments["uptime_24h"].as_f64().unwrap() < 100.0);
    assert!(chrono::DateTime::parse_from_rfc3339(payments["since"].as_str().unwrap()).is_ok());
    let table = command(dir.path(), &config).arg("status").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.starts_with("NAME"), "{table}");
    let first_row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        first_row[..2],
        ["payments-api", "DOWN"],
        "worst first:\n{table}"
    );

    let health = command(dir.path(), &config)
        .env("PATCHBAY_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .arg("healthcheck")
        .output()
        .unwrap();
    assert!(health.status.success());

    let backup = dir.path().join("copy.db");
    let output = command(dir.path(), &config)
        .arg("backup")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(std::fs::metadata(&backup).unwrap().len() > 0);

    // Recovery: two successes in a row.
    upstream.set_reply(healthy());
    bot.wait_for_all(&[
        "integration=payments-api",
        "from=DOWN",
        "to=UP",
        "reason=\"2 successes in a row\"",
    ]);

    bot.signal(libc::SIGTERM);
    let status = bot.wait_exit();
    assert_eq!(status.code(), Some(0));
    bot.wait_for("patchbay stopped");

    // Stopped: the health check now fails.
    let health = command(dir.path(), &config)
        .env("PATCHBAY_HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .arg("healthcheck")
        .output()
        .unwrap();
    assert_eq!(health.status.code(), Some(1));
}

#[test]
fn kill_9_and_restart_neither_lose_nor_reannounce() {
    let (dir, config, port, upstream) = setup();
    upstream.set_reply(down());
    let mut first = Bot::start(dir.path(), &config, port, "json");
    let down = first.wait_for_all(&["\"integration\":\"payments-api\"", "\"to\":\"DOWN\""]);
    // JSON lines carry the contract's fields as plain JSON strings.
    let line: serde_json::Value = serde_json::from_str(&down).unwrap();
    assert_eq!(line["from"], "UNKNOWN");
    assert_eq!(line["to"], "DOWN");
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .starts_with("3 failures in a row: status == 200 failed: got 503")
    );
    first.signal(libc::SIGKILL);
    first.wait_exit();

    let second = Bot::start(dir.path(), &config, port, "json");
    // Let the restarted bot run several failing checks of payments-api.
    second.wait_metric(
        "patchbay_checks_total{integration=\"payments-api\",result=\"failure\"}",
        5.0,
    );
    assert_eq!(
        second.count(&["\"integration\":\"payments-api\"", "\"to\":\"DOWN\""]),
        0,
        "DOWN was already announced before the kill"
    );
    let (_, metrics) = second.get("/metrics");
    assert!(
        metrics
            .contains("patchbay_integration_state{integration=\"payments-api\",state=\"DOWN\"} 1")
    );
    upstream.set_reply(healthy());
    let up = second.wait_for_all(&["\"integration\":\"payments-api\"", "\"to\":\"UP\""]);
    let line: serde_json::Value = serde_json::from_str(&up).unwrap();
    assert_eq!(line["from"], "DOWN", "the state before the kill was kept");
}

#[test]
fn sighup_reloads_and_refuses_a_broken_config() {
    let (dir, config, port, upstream) = setup();
    let bot = Bot::start(dir.path(), &config, port, "pretty");
    bot.wait_for_all(&["integration=payments-api", "to=UP"]);

    // A broken config is refused and the running one kept.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace("interval = \"200ms\"", "interval = \"soon\""),
    )
    .unwrap();
    bot.signal(libc::SIGHUP);
    bot.wait_for_all(&["config reload refused", "defaults.interval"]);
    bot.wait_for("keeping the running one");
    assert_eq!(bot.get("/readyz").0, 200);

    // A valid change adds an integration without touching the others.
    let added = format!(
        "{good}\n[[integration]]\nname = \"added-later\"\nurl = \"{}\"\ninterval = \"200ms\"\ntimeout = \"200ms\"\n",
        upstream.url("/healthz")
    );
    std::fs::write(&config, added).unwrap();
    bot.signal(libc::SIGHUP);
    bot.wait_for_all(&["config reloaded", "integrations=3"]);
    bot.wait_for_all(&["integration=added-later", "from=UNKNOWN", "to=UP"]);
    assert_eq!(
        bot.count(&["integration=payments-api", "to=UP"]),
        1,
        "unchanged integrations keep their state"
    );
}

#[test]
fn check_lists_every_problem_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[defaults]\ninterval = \"30x\"\n[[integration]]\nname = \"a\"\nurl = \"nope\"\n",
    )
    .unwrap();
    let output = command(dir.path(), &config).arg("check").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("2 configuration problems"), "{stderr}");
    assert!(stderr.contains("bad.toml:2: defaults.interval"), "{stderr}");
    assert!(stderr.contains("bad.toml:5: integration.a.url"), "{stderr}");

    // The config flag is global: it works after the subcommand too.
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .arg("check")
        .arg("--config")
        .arg(std::fs::canonicalize("patchbay.example.toml").unwrap())
        .env_remove("PATCHBAY_CONFIG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Every subcommand has --help.
    for sub in [
        "run",
        "check",
        "status",
        "migrate",
        "backup",
        "restore",
        "healthcheck",
    ] {
        let help = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        assert!(help.status.success(), "{sub} --help");
        assert!(
            String::from_utf8(help.stdout).unwrap().contains("Usage"),
            "{sub}"
        );
    }

    let output = command(dir.path(), Path::new("/nonexistent.toml"))
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("none.toml");
    std::fs::write(&config, "").unwrap();
    let output = command(dir.path(), &config)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let migrations = std::fs::read_dir("migrations/sqlite").unwrap().count();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains(&format!("applied {migrations} migrations")),
        "{stdout}"
    );
    let again = command(dir.path(), &config)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        String::from_utf8(again.stdout)
            .unwrap()
            .contains("applied 0 migrations")
    );
    assert!(dir.path().join("patchbay.db").exists());
}
