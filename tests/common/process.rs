//! The real `patchbay` binary as a child process: started in a folder with a config file and
//! environment variables, its log lines (stderr) collected as they arrive, awaited, signalled
//! (SIGHUP, SIGTERM), stopped with a bounded wait or killed with `kill -9`. A test that fails
//! does not leave the process running.
//!
//! The process tests run without a runtime, so waits block the calling thread; an async test
//! awaits a line with [`Process::logged`] and the exit with [`Process::terminate`], which wait
//! on a blocking thread. Each wait ends as soon as what it waits for happens, and fails after
//! [`WAIT`] with the log so far.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_patchbay");
/// Generous: CI machines are slow, and waits end as soon as the awaited line appears.
pub const WAIT: Duration = Duration::from_secs(30);

/// The log lines so far, and a condition variable notified on each new one.
type Lines = Arc<(Mutex<Vec<String>>, Condvar)>;

/// The binary, run in `dir` with `--config config`, without the variables a developer's shell
/// may have set that would change what it does (`DISCORD_TOKEN`, `DISCORD_ALERT_WEBHOOK`,
/// `PATCHBAY_CONFIG`, `PATCHBAY_HTTP_LISTEN`, `DATABASE_URL`). For a subcommand, add its
/// arguments.
pub fn command(dir: &Path, config: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .arg("--config")
        .arg(config)
        .env_remove("DISCORD_TOKEN")
        .env_remove("DISCORD_ALERT_WEBHOOK")
        .env_remove("PATCHBAY_CONFIG")
        .env_remove("PATCHBAY_HTTP_LISTEN")
        .env_remove("DATABASE_URL");
    command
}

/// A running `patchbay run` whose log lines are collected as they arrive.
pub struct Process {
    /// Taken when the process is waited for on another thread, or killed.
    child: Option<Child>,
    lines: Lines,
}

impl Process {
    /// Starts the bot (see [`command`]) with `env` set and `RUST_LOG=info`, collecting stderr.
    pub fn start(dir: &Path, config: &Path, env: &[(&str, String)]) -> Process {
        let mut command = command(dir, config);
        command
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let lines: Lines = Arc::default();
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

    /// Waits until a log line containing every one of `parts` appears; returns it.
    pub fn wait_for_all(&self, parts: &[&str]) -> String {
        wait_line(&self.lines, parts)
    }

    /// Waits until a log line containing `part` appears; returns it.
    pub fn wait_for(&self, part: &str) -> String {
        self.wait_for_all(&[part])
    }

    /// [`Process::wait_for_all`] for async code: waits on a blocking thread.
    pub async fn logged(&self, parts: &[&str]) -> String {
        let lines = self.lines.clone();
        let parts: Vec<String> = parts.iter().map(std::string::ToString::to_string).collect();
        tokio::task::spawn_blocking(move || {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            wait_line(&lines, &parts)
        })
        .await
        .unwrap()
    }

    /// How many log lines so far contain every one of `parts`.
    pub fn count(&self, parts: &[&str]) -> usize {
        let lines = self.lines.0.lock().unwrap();
        lines
            .iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .count()
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        self.lines.0.lock().unwrap().join("\n")
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (a `libc::SIG*`).
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(child.id() as i32, signal) };
        assert_eq!(rc, 0);
    }

    /// Waits for the process to exit, at most [`WAIT`] (then kills it and fails).
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_bounded(self.child.as_mut().expect("running"))
    }

    /// SIGTERM, then waits (on a blocking thread) for the exit, at most [`WAIT`]. The log stays
    /// readable.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().expect("running");
        tokio::task::spawn_blocking(move || wait_bounded(&mut child))
            .await
            .unwrap()
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill_9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
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

fn wait_line(lines: &Lines, parts: &[&str]) -> String {
    let (lock, ready) = &**lines;
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
}

fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the bot did not exit within {WAIT:?}");
        }
        // std has no exit to await with a deadline; polling every 20 ms keeps it cheap.
        std::thread::sleep(Duration::from_millis(20));
    }
}
