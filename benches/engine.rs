//! End-to-end benchmark of patchbay's monitoring engine: the real scheduler, the real HTTP
//! checker (reqwest, pooled keep-alive), the real batching writer and the real SQLite store,
//! with integrations built from generated TOML through the real config loader.
//!
//! # What it measures
//!
//! | scenario | setup | figures |
//! | --- | --- | --- |
//! | `flat` | 512 integrations, interval 10ms, timeout 10ms, 64 checks in flight, 2 s warm-up, 10 s window | checks/s sustained, CPU-s per 1,000 checks, peak RSS |
//! | `1k`  | 1,000 integrations, interval 10s, 10 s warm-up (the first interval), 30 s window | lateness p50/p99, CPU-s per 1,000 checks, peak RSS |
//! | `10k` | 10,000 integrations, interval 10s, same timing | lateness p50/p99, CPU-s per 1,000 checks, peak RSS |
//! | `sqlite` | `Store::write` of 1,000-result batches (10,000 integrations' worth of names) for 5 s | result rows/s |
//!
//! Besides, `wrk -t1 -c64 -d5s` is run against the same target (when `wrk` is installed), as
//! the ceiling one keep-alive client can reach there.
//!
//! - Checks are counted from `patchbay_checks_total` in `Metrics::render()`.
//! - CPU is `getrusage(RUSAGE_SELF)` user+sys over the measurement window; the per-thread split
//!   (tokio workers, tokio's blocking pool where `store::offload` runs storage calls, sqlx's
//!   SQLite worker) comes from `/proc/self/task/*/stat`. The CPU the rest of the machine used in
//!   the window (the target, and anything else running) is printed too: on a shared machine it
//!   says how far to trust the run.
//! - Flat out keeps 64 checks in flight (`[scheduler] concurrency`), as many connections as the
//!   `wrk` reference uses, so checks stay well inside their 10 ms timeout; its throughput only
//!   counts as PASS with under 1% of checks failed.
//! - Peak RSS is `VmHWM` from `/proc/self/status` (with SQLite's own share from
//!   `sqlite3_memory_used`/`_highwater`). Because it is per process, every scenario runs
//!   in a fresh child process: the binary re-executes itself (`current_exe()`) with
//!   `BENCH_SCENARIO=<name>`, the child prints `RESULT key=value` lines, and the parent prints
//!   the table.
//! - Scheduler lateness p50/p99 are *bucket estimates* from the engine's coarse Prometheus
//!   histogram `patchbay_scheduler_lateness_seconds` (linear interpolation inside a bucket, as
//!   PromQL's `histogram_quantile` does), over the window after the first interval.
//!
//! # How to run
//!
//! ```text
//! cargo bench --bench engine                           # starts its own in-process axum target
//! BENCH_TARGET=127.0.0.1:18080 cargo bench --bench engine   # against e.g. a local nginx
//! ```
//!
//! The target must answer `GET /health` with 200 over keep-alive and be on 127.0.0.1 (the bench
//! refuses any other address). Without `BENCH_TARGET` the parent process serves an axum target on
//! 127.0.0.1:0 from its own single-threaded runtime thread, so the children's CPU figures never
//! include the target. The run takes about two minutes. `cargo bench` builds with the release
//! profile; leave `RUST_LOG` unset (the bench installs no logging subscriber, so `tracing` calls
//! cost what they cost in a quiet production process).
//!
//! Optional knobs, for experiments (the defaults are the benchmark; figures taken with a knob
//! set are not comparable with the goals):
//!
//! - `BENCH_ONLY=flat,1k,10k,sqlite`: run a subset.
//! - `BENCH_FLAT_INTEGRATIONS`, `BENCH_FLAT_CONCURRENCY`, `BENCH_FLAT_INTERVAL_MS` (also the
//!   timeout); `BENCH_SLOW_MEASURE_S` (the window of `1k`/`10k`).
//! - `BENCH_PROBE=null`: checks succeed at once without HTTP, isolating the engine's own cost
//!   (scheduler, state machine, metrics, writer, SQLite) from the HTTP client's.
//! - `BENCH_WORKERS=N`: tokio worker threads in the child (default: one per core, as the
//!   binary).
//! - `BENCH_CLUSTER_MS=N`: integration names chosen so first-check offsets fall on N ms slots,
//!   i.e. about N times fewer timer wake-ups for the same checks.
//! - `BENCH_TRIM=1`: `malloc_trim(0)` before reading RSS (not VmHWM), to tell live memory from
//!   memory malloc keeps.
//! - `BENCH_SQLITE_VARY=1`: `sqlite` batches of 1..=1,000 results instead of exactly 1,000;
//!   `BENCH_SQLITE_SHAPE=one|nostates`: every result and state for one integration, or no
//!   states.
//!
//! # Goals
//!
//! - at most 0.1 CPU-s per 1,000 checks (every engine scenario);
//! - at least 25,000 checks/s flat out against a keep-alive target;
//! - 1,000 integrations at 10 s under 32 MiB peak RSS;
//! - 10,000 integrations at 10 s with p99 lateness under 100 ms and peak RSS under 64 MiB;
//! - at least 5,000 result rows/s into SQLite.
//!
//! Each figure is printed with PASS or MISS against its goal.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use patchbay::config::Integration;
use patchbay::config::{self, Environment};
use patchbay::metrics::Metrics;
use patchbay::model::{CheckResult, IntegrationState, LastCheck, State};
use patchbay::monitor::{Engine, EngineParts, Probe};
use patchbay::store::{Batch, Store};

const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    match std::env::var("BENCH_SCENARIO") {
        Ok(name) => child(&name),
        Err(_) => parent(),
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// An engine scenario: how many integrations, how often, and how long to watch.
#[derive(Debug, Clone)]
struct EngineScenario {
    integrations: usize,
    interval_ms: u64,
    timeout_ms: u64,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn engine_scenario(name: &str) -> Option<EngineScenario> {
    let slow_window = Duration::from_secs(env_number("BENCH_SLOW_MEASURE_S", 30));
    match name {
        "flat" => {
            let interval_ms = env_number("BENCH_FLAT_INTERVAL_MS", 10);
            Some(EngineScenario {
                integrations: env_number("BENCH_FLAT_INTEGRATIONS", 512),
                interval_ms,
                timeout_ms: interval_ms,
                concurrency: env_number("BENCH_FLAT_CONCURRENCY", 64),
                warmup: Duration::from_secs(2),
                window: Duration::from_secs(10),
            })
        }
        "1k" | "10k" => Some(EngineScenario {
            integrations: if name == "1k" { 1_000 } else { 10_000 },
            interval_ms: 10_000,
            timeout_ms: 5_000,
            concurrency: 512,
            // The first interval is start-up (every integration's first check, UNKNOWN -> UP
            // transitions committed one by one); the window starts after it.
            warmup: Duration::from_secs(10),
            window: slow_window,
        }),
        _ => None,
    }
}

const ALL_SCENARIOS: [&str; 4] = ["flat", "1k", "10k", "sqlite"];

// ---------------------------------------------------------------------------------------------
// Parent: target, wrk, children, table
// ---------------------------------------------------------------------------------------------

fn parent() {
    let started = Instant::now();
    let (target, target_kind) = if let Ok(text) = std::env::var("BENCH_TARGET") {
        let addr: SocketAddr = text
            .parse()
            .unwrap_or_else(|_| panic!("BENCH_TARGET={text:?} is not an IP:PORT address"));
        assert!(
            addr.ip().is_loopback(),
            "BENCH_TARGET must be a loopback address (127.0.0.1:PORT); got {addr}"
        );
        (
            addr,
            format!("external keep-alive target from BENCH_TARGET ({addr})"),
        )
    } else {
        let addr = start_local_target();
        (
            addr,
            format!(
                "in-process axum target on {addr} (parent process, one runtime thread; \
                 set BENCH_TARGET=127.0.0.1:PORT to use e.g. nginx)"
            ),
        )
    };
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("patchbay engine bench");
    println!("  target: {target_kind}");
    println!("  cores:  {cores}");
    println!("  load:   {} (1/5/15 min, at start)", loadavg());
    probe_target(target);

    let only: Vec<String> = std::env::var("BENCH_ONLY").map_or_else(
        |_| {
            ALL_SCENARIOS
                .iter()
                .map(std::string::ToString::to_string)
                .collect()
        },
        |v| v.split(',').map(|s| s.trim().to_string()).collect(),
    );

    let wrk = if only.iter().any(|s| s == "flat") {
        eprintln!("[bench] wrk -t1 -c64 -d5s against the target ...");
        run_wrk(target)
    } else {
        Err("not run".into())
    };

    let mut results: BTreeMap<&str, HashMap<String, String>> = BTreeMap::new();
    for name in ALL_SCENARIOS {
        if !only.iter().any(|s| s == name) {
            continue;
        }
        eprintln!("[bench] scenario {name} (fresh child process) ...");
        results.insert(name, run_child(name, target));
    }
    print_table(&target_kind, &wrk, &results);
    println!("load average at the end: {}", loadavg());
    println!(
        "\n(total bench time {:.0} s)",
        started.elapsed().as_secs_f64()
    );
}

/// Serves `GET /health` -> 200 "ok" on 127.0.0.1:0 from a dedicated single-threaded runtime.
fn start_local_target() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-target".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("target runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the target");
                tx.send(listener.local_addr().expect("local addr"))
                    .expect("parent waits");
                let app =
                    axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
                axum::serve(listener, app).await.expect("target serves");
            });
        })
        .expect("spawn the target thread");
    rx.recv().expect("the target reports its address")
}

/// One plain HTTP/1.1 request, so a wrong target fails loudly before any scenario runs.
fn probe_target(target: SocketAddr) {
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))
        .unwrap_or_else(|err| panic!("cannot connect to the target {target}: {err}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    write!(
        stream,
        "GET /health?i=probe HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the probe");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.lines().next().unwrap_or("");
    assert!(
        status.contains(" 200"),
        "the target {target} answered {status:?} to GET /health; it must answer 200"
    );
    println!("  probe:  GET /health -> {status}");
}

fn run_wrk(target: SocketAddr) -> Result<f64, String> {
    let url = format!("http://{target}/health?i=wrk");
    let output = match Command::new("wrk")
        .args(["-t1", "-c64", "-d5s", &url])
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err("wrk not installed".into());
        }
        Err(err) => return Err(format!("wrk failed to start: {err}")),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("wrk printed no Requests/sec: {text}"))
}

fn run_child(name: &str, target: SocketAddr) -> HashMap<String, String> {
    let exe = std::env::current_exe().expect("current_exe");
    let started = Instant::now();
    let output = Command::new(exe)
        .env("BENCH_SCENARIO", name)
        .env("BENCH_TARGET", target.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn the scenario child");
    let mut values: HashMap<String, String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("RESULT "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    values.insert(
        "child_wall_s".into(),
        format!("{:.1}", started.elapsed().as_secs_f64()),
    );
    if !output.status.success() {
        values.insert(
            "error".into(),
            format!("child exited with {}", output.status),
        );
    }
    values
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn num(values: &HashMap<String, String>, key: &str) -> Option<f64> {
    values.get(key).and_then(|v| v.parse().ok())
}

fn fmt_seconds(seconds: f64) -> String {
    if seconds.is_infinite() {
        ">5 s (top bucket)".into()
    } else if seconds < 1.0 {
        format!("{:.2} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.2} s")
    }
}

fn print_table(
    target_kind: &str,
    wrk: &Result<f64, String>,
    results: &BTreeMap<&str, HashMap<String, String>>,
) {
    // (scenario, figure, value, goal, verdict)
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut row = |scenario: &str, figure: &str, value: String, goal: &str, verdict: &str| {
        rows.push([
            scenario.into(),
            figure.into(),
            value,
            goal.into(),
            verdict.into(),
        ]);
    };
    let mut details = String::new();

    for name in ALL_SCENARIOS {
        let Some(v) = results.get(name) else {
            continue;
        };
        if let Some(error) = v.get("error") {
            row(name, "ERROR", error.clone(), "", "MISS");
            continue;
        }
        let label = match name {
            "flat" => format!(
                "flat out: {} integ @ {} ms, {} in flight",
                v.get("integrations").map_or("?", String::as_str),
                v.get("interval_ms").map_or("?", String::as_str),
                v.get("concurrency").map_or("?", String::as_str),
            ),
            "1k" => "1,000 integ @ 10 s".into(),
            "10k" => "10,000 integ @ 10 s".into(),
            _ => "SQLite Store::write".into(),
        };
        if name == "sqlite" {
            let rows_per_s = num(v, "rows_per_s").unwrap_or(0.0);
            row(
                &label,
                "result rows/s (1,000/batch)",
                format!("{rows_per_s:.0}"),
                ">= 5,000",
                verdict(rows_per_s >= 5_000.0),
            );
            let _ = writeln!(
                details,
                "  sqlite: {} batches of {} results + as many states in {:.2} s of Store::write; \
                 {:.1} ms/batch mean, {:.1} ms max; peak RSS {:.1} MiB, of which SQLite's own \
                 allocations peaked at {:.1} MiB",
                v.get("batches").map_or("?", String::as_str),
                if v.get("vary").is_some_and(|x| x == "true") {
                    "1..=1,000"
                } else {
                    "1,000"
                },
                num(v, "write_s").unwrap_or(0.0),
                num(v, "batch_ms_mean").unwrap_or(0.0),
                num(v, "batch_ms_max").unwrap_or(0.0),
                num(v, "rss_hwm_kib").unwrap_or(0.0) / 1024.0,
                num(v, "sqlite_mem_peak_kib").unwrap_or(0.0) / 1024.0,
            );
            continue;
        }
        let cpu_per_1k = num(v, "cpu_per_1k").unwrap_or(f64::INFINITY);
        let hwm = num(v, "rss_hwm_kib").unwrap_or(0.0) * 1024.0 / MIB;
        let checks_done = num(v, "checks_total").unwrap_or(0.0);
        let ok = num(v, "window_ok").unwrap_or(0.0);
        let fail = num(v, "window_fail").unwrap_or(0.0);
        let failures = if ok + fail > 0.0 {
            100.0 * fail / (ok + fail)
        } else {
            0.0
        };
        if name == "flat" {
            let rate = num(v, "checks_per_s").unwrap_or(0.0);
            row(
                &label,
                "checks/s sustained",
                format!("{rate:.0} ({failures:.1}% failed)"),
                ">= 25,000",
                verdict(rate >= 25_000.0 && failures < 1.0),
            );
            match wrk {
                Ok(rps) => row(
                    &label,
                    "  wrk -t1 -c64 req/s (ceiling)",
                    format!("{rps:.0}"),
                    "(reference)",
                    "",
                ),
                Err(why) => row(&label, "  wrk -t1 -c64 req/s", why.clone(), "", ""),
            }
        } else {
            let p50 = num(v, "lateness_p50_s").unwrap_or(f64::NAN);
            let p99 = num(v, "lateness_p99_s").unwrap_or(f64::NAN);
            row(
                &label,
                "lateness p50 (bucket est.)",
                fmt_seconds(p50),
                "(info)",
                "",
            );
            if name == "10k" {
                row(
                    &label,
                    "lateness p99 (bucket est.)",
                    fmt_seconds(p99),
                    "< 100 ms",
                    verdict(p99 < 0.1),
                );
            } else {
                row(
                    &label,
                    "lateness p99 (bucket est.)",
                    fmt_seconds(p99),
                    "(info)",
                    "",
                );
            }
            let expected = num(v, "window_expected").unwrap_or(0.0);
            row(
                &label,
                "checks in window / expected",
                format!("{:.0} / {expected:.0} ({failures:.1}% failed)", ok + fail),
                "(info)",
                "",
            );
        }
        row(
            &label,
            "CPU-s per 1,000 checks",
            format!("{cpu_per_1k:.4}"),
            "<= 0.1",
            verdict(cpu_per_1k <= 0.1),
        );
        let (rss_goal, rss_verdict) = match name {
            "1k" => ("< 32 MiB", verdict(hwm < 32.0)),
            "10k" => ("< 64 MiB", verdict(hwm < 64.0)),
            _ => ("(info)", ""),
        };
        row(
            &label,
            "peak RSS (VmHWM)",
            format!("{hwm:.1} MiB"),
            rss_goal,
            rss_verdict,
        );
        row(
            &label,
            "checks completed (whole run)",
            format!("{checks_done:.0}"),
            "(info)",
            "",
        );
        let _ = writeln!(
            details,
            "  {name}: window {:.1} s; CPU user {:.2} s + sys {:.2} s; other processes kept {:.2} \
             cores busy (target included); mean check latency {:.2} ms; \
             RSS after config parse {:.1} MiB, after Engine::start {:.1} MiB, at end {:.1} MiB \
             (SQLite's own allocations {:.1} MiB at end, {:.1} MiB at most); \
             Engine::start {:.2} s; lateness over the whole run p50 {} / p99 {}; \
             rows written {}, write errors {}, transitions {}; in the window {} rows in {} \
             batches, writer queue depth at its end {} (of 4,000)",
            num(v, "window_s").unwrap_or(0.0),
            num(v, "cpu_user_s").unwrap_or(0.0),
            num(v, "cpu_sys_s").unwrap_or(0.0),
            num(v, "other_cores").unwrap_or(0.0),
            num(v, "check_latency_ms").unwrap_or(0.0),
            num(v, "rss_after_parse_kib").unwrap_or(0.0) / 1024.0,
            num(v, "rss_after_start_kib").unwrap_or(0.0) / 1024.0,
            num(v, "rss_end_kib").unwrap_or(0.0) / 1024.0,
            num(v, "sqlite_mem_kib").unwrap_or(0.0) / 1024.0,
            num(v, "sqlite_mem_peak_kib").unwrap_or(0.0) / 1024.0,
            num(v, "start_s").unwrap_or(0.0),
            fmt_seconds(num(v, "lateness_all_p50_s").unwrap_or(f64::NAN)),
            fmt_seconds(num(v, "lateness_all_p99_s").unwrap_or(f64::NAN)),
            v.get("rows_written").map_or("?", String::as_str),
            v.get("write_errors").map_or("?", String::as_str),
            v.get("transitions").map_or("?", String::as_str),
            v.get("window_rows").map_or("?", String::as_str),
            v.get("window_batches").map_or("?", String::as_str),
            v.get("queue_depth_end").map_or("?", String::as_str),
        );
        let _ = writeln!(
            details,
            "      CPU by thread in the window (s): {}",
            v.get("threads").map_or("?", String::as_str)
        );
    }

    let headers = ["scenario", "figure", "value", "goal", "verdict"];
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut out = String::from("|");
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(out, " {cell:<w$} |");
        }
        out
    };
    println!("\n== patchbay engine bench: results ==");
    println!("target: {target_kind}\n");
    println!("{}", line(headers));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!(
        "{}",
        line([&rule[0], &rule[1], &rule[2], &rule[3], &rule[4]])
    );
    let mut previous = String::new();
    for r in &rows {
        let scenario = if r[0] == previous { "" } else { r[0].as_str() };
        println!("{}", line([scenario, &r[1], &r[2], &r[3], &r[4]]));
        previous.clone_from(&r[0]);
    }
    println!("\ndetails:\n{details}");
    println!(
        "lateness figures are estimates from the coarse buckets of \
         patchbay_scheduler_lateness_seconds (1, 5, 10, 25, 50, 100, 250, 500 ms, 1, 5 s), \
         linearly interpolated, over the window after the first interval."
    );
}

// ---------------------------------------------------------------------------------------------
// Child: one scenario in a fresh process
// ---------------------------------------------------------------------------------------------

fn child(name: &str) {
    let target: SocketAddr = std::env::var("BENCH_TARGET")
        .expect("the parent sets BENCH_TARGET")
        .parse()
        .expect("BENCH_TARGET is IP:PORT");
    assert!(target.ip().is_loopback(), "the target must be loopback");
    // Like the patchbay binary: a multi-threaded runtime with one worker per core
    // (`BENCH_WORKERS` overrides the count, for experiments).
    let workers = env_number(
        "BENCH_WORKERS",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    );
    // Tokio names worker and blocking-pool threads alike; the workers are the first threads it
    // starts, so number them apart for the per-thread CPU split (the blocking pool runs the
    // engine's storage calls, `store::offload`).
    let started = std::sync::atomic::AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name_fn(move || {
            let n = started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n < workers {
                format!("rt-worker-{n}")
            } else {
                format!("rt-blocking-{n}")
            }
        })
        .enable_all()
        .build()
        .expect("runtime");
    let report = if let Some(scenario) = engine_scenario(name) {
        runtime.block_on(run_engine(name, &scenario, target))
    } else if name == "sqlite" {
        runtime.block_on(run_sqlite())
    } else {
        panic!("unknown BENCH_SCENARIO {name:?}");
    };
    let mut stdout = std::io::stdout().lock();
    for (key, value) in report {
        let _ = writeln!(stdout, "RESULT {key}={value}");
    }
    let _ = stdout.flush();
    // Do not wait for the runtime's tasks and the SQLite worker threads to wind down.
    std::process::exit(0);
}

fn config_text(s: &EngineScenario, target: SocketAddr) -> String {
    let mut text = String::with_capacity(s.integrations * 160);
    let _ = writeln!(text, "[scheduler]\nconcurrency = {}\n", s.concurrency);
    for (i, name) in integration_names(s).iter().enumerate() {
        let _ = writeln!(
            text,
            "[[integration]]\nname = \"{name}\"\nurl = \"http://{target}/health?i={i}\"\n\
             interval = \"{}ms\"\ntimeout = \"{}ms\"\nconditions = [\"status == 200\"]\n",
            s.interval_ms, s.timeout_ms
        );
    }
    text
}

/// `bench-00000`, `bench-00001`, ... or, with `BENCH_CLUSTER_MS=N` (an experiment), names whose
/// first-check offset (`patchbay::monitor::spread`) falls in the first millisecond of an N ms
/// slot, in offset order: then about N times fewer timer wake-ups serve the same checks.
fn integration_names(s: &EngineScenario) -> Vec<String> {
    let cluster_ms: u128 = env_number("BENCH_CLUSTER_MS", 0);
    if cluster_ms <= 1 {
        return (0..s.integrations)
            .map(|i| format!("bench-{i:05}"))
            .collect();
    }
    let interval = Duration::from_millis(s.interval_ms);
    let mut picked: Vec<(Duration, String)> = (0..)
        .map(|j| format!("bench-{j:07}"))
        .map(|name| (patchbay::monitor::spread(&name, interval), name))
        .filter(|(offset, _)| offset.as_millis() % cluster_ms == 0)
        .take(s.integrations)
        .collect();
    picked.sort();
    picked.into_iter().map(|(_, name)| name).collect()
}

/// With `BENCH_TRIM=1` (an experiment), hands freed heap back to the kernel before reading RSS,
/// to tell memory still held from memory malloc merely keeps.
fn trim_if_asked() {
    if std::env::var("BENCH_TRIM").is_ok_and(|v| v == "1") {
        // SAFETY: malloc_trim has no preconditions.
        unsafe { libc::malloc_trim(0) };
    }
}

async fn run_engine(name: &str, s: &EngineScenario, target: SocketAddr) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}/bench.db", dir.path().display()))
        .await
        .expect("open the store");
    let config = {
        let text = config_text(s, target);
        config::parse(&text, "bench.toml", None, &Environment::default())
            .unwrap_or_else(|errors| panic!("the generated config is invalid:\n{errors}"))
    };
    assert_eq!(config.integrations.len(), s.integrations);
    trim_if_asked();
    let rss_after_parse = proc_status_kib("VmRSS");
    eprintln!(
        "[bench:{name}] {} integrations, interval {} ms, timeout {} ms, concurrency {}; \
         warm-up {} s, window {} s",
        s.integrations,
        s.interval_ms,
        s.timeout_ms,
        config.scheduler.concurrency,
        s.warmup.as_secs(),
        s.window.as_secs()
    );

    // The parts `patchbay run` uses: the writer is `[storage]`'s default (batches of 1,000,
    // flushed every 500 ms) and the probe the real HTTP checker, unless asked otherwise.
    let (mut parts, _writer_task) = EngineParts::from_config(store, &config);
    if std::env::var("BENCH_PROBE").is_ok_and(|p| p == "null") {
        eprintln!("[bench:{name}] BENCH_PROBE=null: checks succeed at once, no HTTP is sent");
        parts.probe = Arc::new(NullProbe);
    }
    parts.integrations = config.integrations;
    let metrics = parts.metrics.clone();
    let start = Instant::now();
    let engine = Engine::start(parts).await.expect("start the engine");
    let start_s = start.elapsed().as_secs_f64();
    trim_if_asked();
    let rss_after_start = proc_status_kib("VmRSS");

    tokio::time::sleep(s.warmup.saturating_sub(start.elapsed())).await;
    let before = Snapshot::take(&metrics);
    let threads_before = thread_cpu();
    let cpu_before = rusage_self();
    let machine_before = machine_busy_s();
    let window_start = Instant::now();
    tokio::time::sleep(s.window).await;
    let cpu_after = rusage_self();
    let machine_after = machine_busy_s();
    let window_s = window_start.elapsed().as_secs_f64();
    let threads_after = thread_cpu();
    let after = Snapshot::take(&metrics);

    let abandoned = engine.shutdown(Duration::from_secs(2)).await;
    let done = Snapshot::take(&metrics);

    let ok = after.checks_ok - before.checks_ok;
    let fail = after.checks_fail - before.checks_fail;
    let checks = ok + fail;
    let user = cpu_after.0 - cpu_before.0;
    let sys = cpu_after.1 - cpu_before.1;
    let lateness = after.lateness_since(&before);
    let duration_count = after.duration_count - before.duration_count;
    let check_latency_ms = if duration_count > 0.0 {
        1000.0 * (after.duration_sum - before.duration_sum) / duration_count
    } else {
        0.0
    };
    let expected = s.integrations as f64 * window_s / (s.interval_ms as f64 / 1000.0);
    eprintln!(
        "[bench:{name}] {checks:.0} checks in {window_s:.1} s ({:.0}/s), {fail:.0} failed, \
         CPU {:.2} s",
        checks / window_s,
        user + sys
    );

    let mut report: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| report.push((k.to_string(), v));
    put("integrations", s.integrations.to_string());
    put("interval_ms", s.interval_ms.to_string());
    put("concurrency", s.concurrency.to_string());
    put("window_s", format!("{window_s:.3}"));
    put("window_ok", format!("{ok}"));
    put("window_fail", format!("{fail}"));
    put("window_expected", format!("{expected:.0}"));
    put("checks_per_s", format!("{:.1}", checks / window_s));
    put(
        "checks_total",
        format!("{}", done.checks_ok + done.checks_fail),
    );
    put("cpu_user_s", format!("{user:.3}"));
    put("cpu_sys_s", format!("{sys:.3}"));
    put(
        "cpu_per_1k",
        format!("{:.5}", (user + sys) / (checks / 1000.0).max(1e-9)),
    );
    put("check_latency_ms", format!("{check_latency_ms:.3}"));
    // Cores kept busy outside this process during the window: the target, and anything else
    // running on the machine (which makes every figure noisier).
    put(
        "other_cores",
        format!(
            "{:.2}",
            ((machine_after - machine_before) - (user + sys)).max(0.0) / window_s
        ),
    );
    put("lateness_p50_s", format!("{}", quantile(&lateness, 0.5)));
    put("lateness_p99_s", format!("{}", quantile(&lateness, 0.99)));
    put(
        "lateness_all_p50_s",
        format!("{}", quantile(&after.lateness, 0.5)),
    );
    put(
        "lateness_all_p99_s",
        format!("{}", quantile(&after.lateness, 0.99)),
    );
    put("rss_after_parse_kib", rss_after_parse.to_string());
    put("rss_after_start_kib", rss_after_start.to_string());
    let rss_hwm = proc_status_kib("VmHWM");
    trim_if_asked();
    put("rss_end_kib", proc_status_kib("VmRSS").to_string());
    put("rss_hwm_kib", rss_hwm.to_string());
    let (sqlite_now, sqlite_peak) = sqlite_memory_kib();
    put("sqlite_mem_kib", sqlite_now.to_string());
    put("sqlite_mem_peak_kib", sqlite_peak.to_string());
    put("start_s", format!("{start_s:.3}"));
    put("rows_written", format!("{}", done.rows_written));
    put(
        "window_batches",
        format!("{}", after.batches - before.batches),
    );
    put(
        "window_rows",
        format!("{}", after.rows_written - before.rows_written),
    );
    put("queue_depth_end", format!("{}", after.queue_depth));
    put("write_errors", format!("{}", done.write_errors));
    put("transitions", format!("{}", done.transitions));
    put("abandoned", abandoned.to_string());
    put("threads", thread_split(&threads_before, &threads_after));
    drop(dir);
    report
}

/// For `BENCH_PROBE=null`: every check succeeds at once without sending anything, to separate the
/// engine's own cost (scheduler, state machine, metrics, writer, SQLite) from the HTTP client's.
struct NullProbe;

impl Probe for NullProbe {
    fn check<'a>(&'a self, integration: &'a Integration) -> BoxFuture<'a, CheckResult> {
        Box::pin(async move {
            CheckResult {
                integration: integration.name.clone(),
                at: Utc::now(),
                success: true,
                latency_ms: 0.2,
                status: Some(200),
                error_kind: None,
                message: None,
            }
        })
    }
}

async fn run_sqlite() -> Vec<(String, String)> {
    const BATCH: usize = 1000;
    const NAMES: usize = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}/bench.db", dir.path().display()))
        .await
        .expect("open the store");
    let names: Vec<String> = (0..NAMES).map(|i| format!("bench-{i:05}")).collect();
    let t0 = Utc::now();
    let budget = Duration::from_secs(5);
    let mut spent = Duration::ZERO;
    let mut batches = 0usize;
    let mut max = Duration::ZERO;
    let mut rows = 0usize;
    // BENCH_SQLITE_VARY=1: batches of 1..=1000 results, as the writer makes when it flushes on its
    // 500 ms deadline rather than on a full batch.
    let vary = std::env::var("BENCH_SQLITE_VARY").is_ok_and(|v| v == "1");
    // BENCH_SQLITE_SHAPE (an experiment): `one` gives every result the same integration, so the
    // rollup upsert has 2 rows instead of 2,000; `nostates` leaves the states out.
    let shape = std::env::var("BENCH_SQLITE_SHAPE").unwrap_or_default();
    eprintln!(
        "[bench:sqlite] Store::write of {} batches for ~5 s ...",
        if vary {
            "1..=1000-result"
        } else {
            "1000-result"
        }
    );
    while spent < budget {
        let size = if vary {
            1 + (batches * 7919) % BATCH
        } else {
            BATCH
        };
        // As the writer sees 10,000 integrations at 10 s: 1,000 results a second, each batch the
        // next tenth of the integrations, one simulated second later than the previous batch.
        let at = t0 + chrono::Duration::seconds(batches as i64);
        let results: Vec<CheckResult> = (0..size)
            .map(|i| {
                let name = if shape == "one" {
                    &names[0]
                } else {
                    &names[(rows + i) % NAMES]
                };
                CheckResult {
                    integration: name.clone(),
                    at: at + chrono::Duration::milliseconds(i as i64),
                    success: true,
                    latency_ms: 0.3 + (i % 7) as f64 * 0.1,
                    status: Some(200),
                    error_kind: None,
                    message: None,
                }
            })
            .collect();
        let states: Vec<IntegrationState> = results
            .iter()
            .map(|r| IntegrationState {
                integration: r.integration.clone(),
                state: State::Up,
                since: t0,
                consecutive_failures: 0,
                consecutive_successes: 1 + batches as u32 / 10,
                last_check: Some(LastCheck {
                    at: r.at,
                    success: true,
                    latency_ms: r.latency_ms,
                    message: None,
                }),
            })
            .collect();
        let batch = Batch {
            results,
            states: if shape == "nostates" { vec![] } else { states },
            transitions: vec![],
        };
        let started = Instant::now();
        store.write(&batch).await.expect("Store::write");
        let took = started.elapsed();
        spent += took;
        max = max.max(took);
        batches += 1;
        rows += size;
    }
    let write_s = spent.as_secs_f64();
    vec![
        ("batches".into(), batches.to_string()),
        ("rows".into(), rows.to_string()),
        ("write_s".into(), format!("{write_s:.3}")),
        ("rows_per_s".into(), format!("{:.1}", rows as f64 / write_s)),
        (
            "batch_ms_mean".into(),
            format!("{:.3}", 1000.0 * write_s / batches as f64),
        ),
        (
            "batch_ms_max".into(),
            format!("{:.3}", max.as_secs_f64() * 1000.0),
        ),
        ("vary".into(), vary.to_string()),
        ("rss_hwm_kib".into(), proc_status_kib("VmHWM").to_string()),
        (
            "sqlite_mem_peak_kib".into(),
            sqlite_memory_kib().1.to_string(),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Measurements: metrics, rusage, /proc
// ---------------------------------------------------------------------------------------------

/// The figures the bench reads from `Metrics::render()`.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    checks_ok: f64,
    checks_fail: f64,
    /// `(le, cumulative count)` of `patchbay_scheduler_lateness_seconds`, +Inf last.
    lateness: Vec<(f64, f64)>,
    duration_sum: f64,
    duration_count: f64,
    rows_written: f64,
    batches: f64,
    queue_depth: f64,
    write_errors: f64,
    transitions: f64,
}

impl Snapshot {
    fn take(metrics: &Metrics) -> Snapshot {
        let text = metrics.render();
        let mut snap = Snapshot::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let metric = series.split('{').next().unwrap_or(series);
            match metric {
                "patchbay_checks_total" if series.contains("result=\"success\"") => {
                    snap.checks_ok += value;
                }
                "patchbay_checks_total" => snap.checks_fail += value,
                "patchbay_scheduler_lateness_seconds_bucket" => {
                    let le = series
                        .split("le=\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .unwrap_or("+Inf");
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::INFINITY)
                    };
                    snap.lateness.push((le, value));
                }
                "patchbay_check_duration_seconds_sum" => snap.duration_sum = value,
                "patchbay_check_duration_seconds_count" => snap.duration_count = value,
                "patchbay_storage_rows_written_total" => snap.rows_written = value,
                "patchbay_storage_write_batches_total" => snap.batches = value,
                "patchbay_write_queue_depth" => snap.queue_depth = value,
                "patchbay_storage_write_errors_total" => snap.write_errors = value,
                "patchbay_transitions_total" => snap.transitions += value,
                _ => {}
            }
        }
        snap.lateness.sort_by(|a, b| a.0.total_cmp(&b.0));
        snap
    }

    /// The lateness buckets counted after `earlier`.
    fn lateness_since(&self, earlier: &Snapshot) -> Vec<(f64, f64)> {
        self.lateness
            .iter()
            .map(|&(le, count)| {
                let before = earlier
                    .lateness
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0.0, |(_, c)| *c);
                (le, count - before)
            })
            .collect()
    }
}

/// `histogram_quantile`: linear interpolation inside the bucket holding the rank; infinity when
/// the rank falls in the +Inf bucket, NaN without observations.
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |(_, c)| *c);
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, cumulative) in buckets {
        if cumulative >= rank {
            if le.is_infinite() {
                return f64::INFINITY;
            }
            let inside = cumulative - below;
            let fraction = if inside > 0.0 {
                (rank - below) / inside
            } else {
                1.0
            };
            return lower + (le - lower) * fraction;
        }
        lower = le;
        below = cumulative;
    }
    f64::INFINITY
}

/// User and system CPU seconds of the whole process.
fn rusage_self() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given; all-zero is a valid `rusage`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a valid pointer to a live struct.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime), seconds(usage.ru_stime))
}

// SQLite's own allocation counters, from the SQLite that sqlx links in (libsqlite3-sys, bundled).
unsafe extern "C" {
    fn sqlite3_memory_used() -> i64;
    fn sqlite3_memory_highwater(reset: std::ffi::c_int) -> i64;
}

/// Bytes SQLite has allocated now and at most (page caches, prepared statements, ...), in KiB.
fn sqlite_memory_kib() -> (i64, i64) {
    // SAFETY: both are thread-safe reads of SQLite's global memory statistics.
    unsafe {
        (
            sqlite3_memory_used() / 1024,
            sqlite3_memory_highwater(0) / 1024,
        )
    }
}

/// Busy CPU seconds of the whole machine (all cores) since boot, from `/proc/stat`.
fn machine_busy_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    let busy: f64 = fields
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    busy / ticks
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// CPU seconds (user + sys) of every live thread, by thread id, with the thread's name.
fn thread_cpu() -> HashMap<u32, (String, f64)> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        // After the comm: state is field 3, utime field 14, stime field 15.
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(utime), Some(stime)) = (field(11), field(12)) {
            out.insert(tid, (comm, (utime + stime) / ticks));
        }
    }
    out
}

/// Per-thread-name CPU over the window, e.g. `tokio-runtime-w:3.10,sqlx-sqlite-wor:0.42`.
fn thread_split(
    before: &HashMap<u32, (String, f64)>,
    after: &HashMap<u32, (String, f64)>,
) -> String {
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    for (tid, (comm, cpu)) in after {
        let start = before.get(tid).map_or(0.0, |(_, c)| *c);
        let name = comm
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
            .to_string();
        *by_name.entry(name).or_default() += cpu - start;
    }
    let mut parts: Vec<(String, f64)> = by_name.into_iter().collect();
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    parts
        .iter()
        .filter(|(_, cpu)| *cpu >= 0.005)
        .map(|(name, cpu)| format!("{name}:{cpu:.2}"))
        .collect::<Vec<_>>()
        .join(",")
}
