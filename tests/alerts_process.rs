//! Alerts through the real `patchbay` binary: a process killed (`kill -9`) while an alert is
//! on its way to Discord delivers it after the restart, once; and without a token or a webhook
//! every notification is a structured log line.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::fake_discord::{self, FakeDiscord, Fault};
use common::upstream::Upstream;

const BIN: &str = env!("CARGO_BIN_EXE_patchbay");
const WAIT: Duration = Duration::from_secs(30);
const ALERTS: u64 = fake_discord::ALERT_CHANNEL_ID;

fn write_config(dir: &Path, upstream: &Upstream) -> std::path::PathBuf {
    let path = dir.join("patchbay.toml");
    std::fs::write(
        &path,
        format!(
            "[bot]\nguilds = [\"{}\"]\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [storage]\nurl = \"sqlite://{}\"\nflush_interval = \"20ms\"\n\
             [alerts]\nchannel = \"{ALERTS}\"\n\
             [[integration]]\nname = \"payments-api\"\nurl = \"{}\"\ninterval = \"100ms\"\n\
             timeout = \"100ms\"\nfailure_threshold = 1\nsuccess_threshold = 1\n",
            fake_discord::GUILD_ID,
            dir.join("patchbay.db").display(),
            upstream.url()
        ),
    )
    .unwrap();
    path
}

/// The binary, its log lines collected as they arrive.
struct Process {
    /// Taken when the test waits for the exit itself.
    child: Option<Child>,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Process {
    fn start(dir: &Path, config: &Path, env: &[(&str, String)]) -> Process {
        let mut command = Command::new(BIN);
        command
            .current_dir(dir)
            .arg("--config")
            .arg(config)
            .env_remove("DISCORD_TOKEN")
            .env_remove("DISCORD_ALERT_WEBHOOK")
            .env_remove("PATCHBAY_CONFIG")
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let lines: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let sink = lines.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let (lock, ready) = &*sink;
                lock.lock().unwrap().push(line);
                ready.notify_all();
            }
        });
        Process {
            child: Some(child),
            lines,
        }
    }

    /// Waits (on a blocking thread) until a log line contains every one of `parts`.
    async fn wait_for(&self, parts: &'static [&'static str]) -> String {
        let lines = self.lines.clone();
        tokio::task::spawn_blocking(move || {
            let (lock, ready) = &*lines;
            let deadline = Instant::now() + WAIT;
            let mut seen = lock.lock().unwrap();
            loop {
                if let Some(line) = seen.iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                    return line.clone();
                }
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "no log line with {parts:?}; log:\n{}",
                    seen.join("\n")
                );
                seen = ready.wait_timeout(seen, left).unwrap().0;
            }
        })
        .await
        .unwrap()
    }

    fn kill_9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    async fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0);
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap()
    }
}

impl Drop for Process {
    /// A failed test must not leave a bot running.
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_in_flight_when_the_process_is_killed_is_delivered_after_restart_once() {
    let fake = FakeDiscord::start().await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &upstream);
    let env = [
        ("DISCORD_TOKEN", "fake-token".to_string()),
        ("DISCORD_API_BASE", fake.api_base()),
    ];
    let route = format!("/channels/{ALERTS}/messages");
    // The first post never gets an answer: the process dies with it in flight.
    fake.inject(Fault::Hang, "POST", &route, 1);
    upstream.break_it();
    let first = Process::start(dir.path(), &config, &env);
    fake.wait_for_attempts("POST", &route, 1).await;
    first.kill_9();
    assert!(fake.channel_messages(ALERTS).is_empty());

    // After the restart the outbox row goes out, and the incident is not opened again.
    let second = Process::start(dir.path(), &config, &env);
    let posted = fake.wait_for_messages(ALERTS, 1).await;
    let title = posted[0]["embeds"][0]["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(title.contains("payments-api is DOWN"), "{title}");
    let lines = second.lines.clone();
    assert!(second.terminate().await.success());
    // Every part stopped on its own (none was left behind after 10 s).
    let log = lines.0.lock().unwrap().join("\n");
    assert!(!log.contains("did not stop"), "{log}");
    assert_eq!(fake.channel_messages(ALERTS).len(), 1);
    assert_eq!(
        fake.attempts("POST", &route).len(),
        2,
        "the hung post and one more"
    );
    let store = patchbay::store::Store::open(&format!(
        "sqlite://{}",
        dir.path().join("patchbay.db").display()
    ))
    .await
    .unwrap();
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
    assert_eq!(store.open_incidents().await.unwrap().len(), 1);
    let violations = fake.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_alerts_are_structured_log_lines() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &upstream);
    let process = Process::start(dir.path(), &config, &[]);
    process.wait_for(&["running headless"]).await;
    upstream.break_it();
    let line = process
        .wait_for(&[
            "patchbay::alert",
            "alert notification",
            "notification=\"post\"",
        ])
        .await;
    assert!(
        line.contains("integrations=\"payments-api=DOWN\""),
        "{line}"
    );
    assert!(line.contains("status=\"open\""), "{line}");
    assert!(line.contains("severity=\"critical\""), "{line}");
    upstream.heal();
    process
        .wait_for(&[
            "alert notification",
            "notification=\"reply\"",
            "Resolved after",
        ])
        .await;
    assert!(process.terminate().await.success());
}
