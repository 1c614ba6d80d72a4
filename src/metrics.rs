//! Prometheus metrics: one registry for the process, owned here so the engine and the store can
//! count without knowing who serves the numbers (the HTTP front renders them at `/metrics`).
//!
//! Every metric name starts with `patchbay_`. Per-integration series are kept to what an
//! operator needs: checks by result and the current state (only the current state's series
//! exists, so 10,000 integrations cost 10,000 state series, not 50,000).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::model::State;
use crate::resilience::Upstream;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// `patchbay_check_duration_seconds`: check latency.
    pub check_duration: Histogram,
    /// `patchbay_checks_total{integration,result}` and `patchbay_integration_state{integration,
    /// state}`, kept outside the registry: see [`PerIntegration`].
    per_integration: PerIntegration,
    /// `patchbay_circuit_state{upstream,state}`: 1 for each upstream's current breaker state.
    circuit_state: IntGaugeVec,
    /// `patchbay_transitions_total{to}`: state transitions, by target state.
    pub transitions_total: IntCounterVec,
    /// `patchbay_scheduler_lateness_seconds`: how late checks start compared to their schedule.
    pub scheduler_lateness: Histogram,
    /// `patchbay_checks_in_flight`: checks running now.
    pub checks_in_flight: IntGauge,
    /// `patchbay_write_queue_depth`: results waiting for the storage writer.
    pub write_queue_depth: IntGauge,
    /// `patchbay_storage_write_batches_total`: transactions written by the storage writer.
    pub storage_batches: IntCounter,
    /// `patchbay_storage_rows_written_total`: check results written.
    pub storage_rows: IntCounter,
    /// `patchbay_storage_write_errors_total`: batches that failed to write.
    pub storage_errors: IntCounter,
    /// `patchbay_alert_deliveries_total{outcome}`: alert outbox deliveries, by outcome
    /// (`delivered`, `retry`, `refused`).
    pub alert_deliveries: IntCounterVec,
    /// `patchbay_alert_outbox_pending`: alert deliveries not yet confirmed by Discord.
    pub alert_outbox_pending: IntGauge,
    /// `patchbay_notion_requests_total{token,outcome}`: requests sent to Notion (retries
    /// included), by token variable and outcome (`ok`, `rate_limited`, `server`, ...).
    pub notion_requests: IntCounterVec,
    /// `patchbay_retool_requests_total{action,outcome}`: requests sent to Retool workflows
    /// (each attempt), by outcome (`ok` or the error kind).
    pub retool_requests: IntCounterVec,
    /// `patchbay_sync_runs_total{job,outcome}`: sync runs finished, by outcome (`ok`,
    /// `failed`).
    pub sync_runs: IntCounterVec,
    /// API upstreams whose circuit breaker state is read at every scrape.
    upstreams: Mutex<Vec<Upstream>>,
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid histogram")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let latency_buckets = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let metrics = Metrics {
            check_duration: histogram(
                "patchbay_check_duration_seconds",
                "Check latency, from sending the request to reading the whole body.",
                latency_buckets.clone(),
            ),
            per_integration: PerIntegration::default(),
            circuit_state: IntGaugeVec::new(
                Opts::new(
                    "patchbay_circuit_state",
                    "1 for the current circuit breaker state of each upstream.",
                ),
                &["upstream", "state"],
            )
            .expect("valid metric"),
            transitions_total: IntCounterVec::new(
                Opts::new(
                    "patchbay_transitions_total",
                    "State transitions, by target state.",
                ),
                &["to"],
            )
            .expect("valid metric"),
            scheduler_lateness: histogram(
                "patchbay_scheduler_lateness_seconds",
                "How late checks start compared to their schedule.",
                vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0],
            ),
            checks_in_flight: IntGauge::new("patchbay_checks_in_flight", "Checks running now.")
                .expect("valid metric"),
            write_queue_depth: IntGauge::new(
                "patchbay_write_queue_depth",
                "Check results waiting for the storage writer.",
            )
            .expect("valid metric"),
            storage_batches: IntCounter::new(
                "patchbay_storage_write_batches_total",
                "Transactions written by the storage writer.",
            )
            .expect("valid metric"),
            storage_rows: IntCounter::new(
                "patchbay_storage_rows_written_total",
                "Check results written to storage.",
            )
            .expect("valid metric"),
            storage_errors: IntCounter::new(
                "patchbay_storage_write_errors_total",
                "Storage batches that failed to write.",
            )
            .expect("valid metric"),
            alert_deliveries: IntCounterVec::new(
                Opts::new(
                    "patchbay_alert_deliveries_total",
                    "Alert outbox deliveries, by outcome (delivered, retry, refused).",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            alert_outbox_pending: IntGauge::new(
                "patchbay_alert_outbox_pending",
                "Alert deliveries written to the outbox and not yet confirmed by Discord.",
            )
            .expect("valid metric"),
            notion_requests: IntCounterVec::new(
                Opts::new(
                    "patchbay_notion_requests_total",
                    "Requests sent to Notion, retries included, by token variable and outcome \
                     (ok, rate_limited, server, timeout, ...).",
                ),
                &["token", "outcome"],
            )
            .expect("valid metric"),
            retool_requests: IntCounterVec::new(
                Opts::new(
                    "patchbay_retool_requests_total",
                    "Requests sent to Retool workflows, retries included, by action and outcome \
                     (ok, rate_limited, server, timeout, ...).",
                ),
                &["action", "outcome"],
            )
            .expect("valid metric"),
            sync_runs: IntCounterVec::new(
                Opts::new(
                    "patchbay_sync_runs_total",
                    "Sync runs finished, by job and outcome (ok, failed).",
                ),
                &["job", "outcome"],
            )
            .expect("valid metric"),
            upstreams: Mutex::new(Vec::new()),
            registry,
        };
        let build_info = IntGaugeVec::new(
            Opts::new(
                "patchbay_build_info",
                "Always 1; the version is in the label.",
            ),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.check_duration.clone()),
            Box::new(metrics.circuit_state.clone()),
            Box::new(metrics.transitions_total.clone()),
            Box::new(metrics.scheduler_lateness.clone()),
            Box::new(metrics.checks_in_flight.clone()),
            Box::new(metrics.write_queue_depth.clone()),
            Box::new(metrics.storage_batches.clone()),
            Box::new(metrics.storage_rows.clone()),
            Box::new(metrics.storage_errors.clone()),
            Box::new(metrics.alert_deliveries.clone()),
            Box::new(metrics.alert_outbox_pending.clone()),
            Box::new(metrics.notion_requests.clone()),
            Box::new(metrics.retool_requests.clone()),
            Box::new(metrics.sync_runs.clone()),
            Box::new(build_info),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }

    /// Counts one request sent to Notion with the token in `variable`.
    pub fn notion_request(&self, variable: &str, outcome: &str) {
        self.notion_requests
            .with_label_values(&[variable, outcome])
            .inc();
    }

    /// Counts one request sent to the workflow of `action`.
    pub fn retool_request(&self, action: &str, outcome: &str) {
        self.retool_requests
            .with_label_values(&[action, outcome])
            .inc();
    }

    /// Counts one check of `integration`.
    pub fn record_check(&self, integration: &str, success: bool) {
        let counter = self.per_integration.entry(integration);
        let slot = if success {
            &counter.success
        } else {
            &counter.failure
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    /// Records an integration's current state (only the current state's series exists).
    pub fn set_state(&self, integration: &str, state: State) {
        let index = State::ALL.iter().position(|s| *s == state).unwrap_or(0);
        self.per_integration
            .entry(integration)
            .state
            .store(index as u8, Ordering::Relaxed);
    }

    /// Forgets an integration that was removed from the config.
    pub fn remove_integration(&self, integration: &str) {
        self.per_integration
            .entries
            .write()
            .expect("metrics lock")
            .remove(integration);
    }

    /// Reports `upstream`'s circuit breaker state in `patchbay_circuit_state` from now on.
    /// Every API client registers its upstream here when it is built.
    pub fn watch_upstream(&self, upstream: Upstream) {
        self.upstreams.lock().expect("metrics lock").push(upstream);
    }

    /// Records an upstream's circuit breaker state (`closed`, `open`, `half_open`).
    fn set_circuit(&self, upstream: &str, state: &str) {
        for other in ["closed", "open", "half_open"] {
            self.circuit_state
                .with_label_values(&[upstream, other])
                .set(i64::from(other == state));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        // Breaker states change on their own clock (an open breaker half-opens after a
        // while), so they are read at scrape time rather than pushed.
        for upstream in self.upstreams.lock().expect("metrics lock").iter() {
            self.set_circuit(upstream.name(), upstream.circuit_state().as_str());
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        let mut text = String::from_utf8(out).expect("exposition is UTF-8");
        self.per_integration.render(&mut text);
        text
    }
}

/// Per-integration series, kept in one map of atomics and written straight into the
/// exposition.
///
/// With 10,000 integrations these are 30,000 series. The prometheus crate copies every series
/// into a protobuf structure on each scrape before encoding it, which cost more than 10 MiB per
/// scrape at that size (measured with `benches/engine.rs`); this costs the text alone. A check
/// updates them with one map lookup under a read lock and one atomic increment.
#[derive(Default)]
struct PerIntegration {
    entries: RwLock<HashMap<String, Arc<IntegrationSeries>>>,
}

#[derive(Default)]
struct IntegrationSeries {
    success: AtomicU64,
    failure: AtomicU64,
    /// Index into [`State::ALL`].
    state: AtomicU8,
}

impl PerIntegration {
    fn entry(&self, integration: &str) -> Arc<IntegrationSeries> {
        if let Some(series) = self.entries.read().expect("metrics lock").get(integration) {
            return series.clone();
        }
        let unknown = State::ALL
            .iter()
            .position(|s| *s == State::Unknown)
            .unwrap_or(0);
        self.entries
            .write()
            .expect("metrics lock")
            .entry(integration.to_string())
            .or_insert_with(|| {
                Arc::new(IntegrationSeries {
                    state: AtomicU8::new(unknown as u8),
                    ..IntegrationSeries::default()
                })
            })
            .clone()
    }

    /// Appends both families in the Prometheus text format, integrations sorted by name.
    fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let entries = self.entries.read().expect("metrics lock");
        let mut names: Vec<&String> = entries.keys().collect();
        names.sort_unstable();
        out.reserve(names.len() * 160);
        out.push_str("# HELP patchbay_checks_total Checks run, by integration and result.\n");
        out.push_str("# TYPE patchbay_checks_total counter\n");
        for name in &names {
            let series = &entries[*name];
            let name = escape_label(name);
            for (result, count) in [("failure", &series.failure), ("success", &series.success)] {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "patchbay_checks_total{{integration=\"{name}\",result=\"{result}\"}} {count}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP patchbay_integration_state 1 for the current state of each integration.\n",
        );
        out.push_str("# TYPE patchbay_integration_state gauge\n");
        for name in &names {
            let state = State::ALL[usize::from(entries[*name].state.load(Ordering::Relaxed))];
            let _ = writeln!(
                out,
                "patchbay_integration_state{{integration=\"{}\",state=\"{state}\"}} 1",
                escape_label(name)
            );
        }
    }
}

/// Escapes a label value as the text format requires (backslash, quote, newline).
fn escape_label(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::{BreakerConfig, UpstreamConfig};

    #[test]
    fn state_series_follow_the_current_state_only() {
        let metrics = Metrics::new();
        metrics.set_state("api", State::Up);
        metrics.set_state("api", State::Down);
        let text = metrics.render();
        assert!(text.contains("patchbay_integration_state{integration=\"api\",state=\"DOWN\"} 1"));
        assert!(!text.contains("state=\"UP\""), "{text}");
        metrics.remove_integration("api");
        assert!(!metrics.render().contains("integration=\"api\""));
    }

    #[tokio::test]
    async fn watched_upstreams_show_their_circuit_state() {
        let metrics = Metrics::new();
        let notion = Upstream::new(
            "notion",
            UpstreamConfig {
                breaker: BreakerConfig {
                    failure_threshold: 1,
                    open_duration: std::time::Duration::from_secs(60),
                },
                ..UpstreamConfig::default()
            },
        );
        metrics.watch_upstream(notion.clone());
        let text = metrics.render();
        assert!(
            text.contains("patchbay_circuit_state{state=\"closed\",upstream=\"notion\"} 1"),
            "{text}"
        );
        assert!(text.contains("patchbay_circuit_state{state=\"open\",upstream=\"notion\"} 0"));

        // One refused connection opens a breaker with a threshold of one.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        let client = reqwest::Client::new();
        let outcome = notion
            .send(crate::resilience::Idempotency::NonIdempotent, || {
                client.post(&url)
            })
            .await;
        assert_eq!(outcome.unwrap_err().kind(), "connect");
        let text = metrics.render();
        assert!(
            text.contains("patchbay_circuit_state{state=\"open\",upstream=\"notion\"} 1"),
            "{text}"
        );
        assert!(text.contains("patchbay_circuit_state{state=\"closed\",upstream=\"notion\"} 0"));
    }
}
