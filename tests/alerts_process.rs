//! Alerts through the real `patchbay` binary: a process killed (`kill -9`) while an alert is
//! on its way to Discord delivers it after the restart, once; and without a token or a webhook
//! every notification is a structured log line.

mod common;

use std::path::Path;

use common::fake_discord::{self, FakeDiscord, Fault};
use common::process::Process;
use common::upstream::Upstream;

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
            upstream.url("/health")
        ),
    )
    .unwrap();
    path
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
    let mut second = Process::start(dir.path(), &config, &env);
    let posted = fake.wait_for_messages(ALERTS, 1).await;
    let title = posted[0]["embeds"][0]["title"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(title.contains("payments-api is DOWN"), "{title}");
    assert!(second.terminate().await.success());
    // Every part stopped on its own (none was left behind after 10 s).
    let log = second.log();
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
    let mut process = Process::start(dir.path(), &config, &[]);
    process.logged(&["running headless"]).await;
    upstream.break_it();
    let line = process
        .logged(&[
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
        .logged(&[
            "alert notification",
            "notification=\"reply\"",
            "Resolved after",
        ])
        .await;
    assert!(process.terminate().await.success());
}
