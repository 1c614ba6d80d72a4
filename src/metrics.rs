//! Prometheus metrics: one registry for the process, owned here so the engine and the store can
//! count without knowing who serves the numbers (the HTTP front renders them at `/metrics`).
//!
//! Every metric name starts with `patchbay_`. Per-integration series are kept to what an
//! operator needs: checks by result and the current state (only the current state's series
//! exists, so 10,000 integrations cost 10,000 state series, not 50,000).

use std::sync::Mutex;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::model::State;
use crate::resilience::Upstream;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// `patchbay_checks_total{integration,result}`: checks run, by result (`success`/`failure`).
    pub checks_total: IntCounterVec,
    /// `patchbay_check_duration_seconds`: check latency.
    pub check_duration: Histogram,
    /// `patchbay_integration_state{integration,state}`: 1 for each integration's current state.
    integration_state: IntGaugeVec,
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
    /// The state series currently set, so a change can remove the old one.
    current_states: Mutex<std::collections::HashMap<String, State>>,
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
            checks_total: IntCounterVec::new(
                Opts::new(
                    "patchbay_checks_total",
                    "Checks run, by integration and result.",
                ),
                &["integration", "result"],
            )
            .expect("valid metric"),
            check_duration: histogram(
                "patchbay_check_duration_seconds",
                "Check latency, from sending the request to reading the whole body.",
                latency_buckets.clone(),
            ),
            integration_state: IntGaugeVec::new(
                Opts::new(
                    "patchbay_integration_state",
                    "1 for the current state of each integration.",
                ),
                &["integration", "state"],
            )
            .expect("valid metric"),
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
            current_states: Mutex::new(std::collections::HashMap::new()),
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
            Box::new(metrics.checks_total.clone()),
            Box::new(metrics.check_duration.clone()),
            Box::new(metrics.integration_state.clone()),
            Box::new(metrics.circuit_state.clone()),
            Box::new(metrics.transitions_total.clone()),
            Box::new(metrics.scheduler_lateness.clone()),
            Box::new(metrics.checks_in_flight.clone()),
            Box::new(metrics.write_queue_depth.clone()),
            Box::new(metrics.storage_batches.clone()),
            Box::new(metrics.storage_rows.clone()),
            Box::new(metrics.storage_errors.clone()),
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

    /// Records an integration's current state, removing the series of its previous state.
    pub fn set_state(&self, integration: &str, state: State) {
        let mut current = self.current_states.lock().expect("metrics lock");
        if let Some(previous) = current.insert(integration.to_string(), state)
            && previous != state
        {
            let _ = self
                .integration_state
                .remove_label_values(&[integration, previous.as_str()]);
        }
        self.integration_state
            .with_label_values(&[integration, state.as_str()])
            .set(1);
    }

    /// Forgets an integration that was removed from the config.
    pub fn remove_integration(&self, integration: &str) {
        let mut current = self.current_states.lock().expect("metrics lock");
        if let Some(previous) = current.remove(integration) {
            let _ = self
                .integration_state
                .remove_label_values(&[integration, previous.as_str()]);
        }
        for result in ["success", "failure"] {
            let _ = self
                .checks_total
                .remove_label_values(&[integration, result]);
        }
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
        String::from_utf8(out).expect("exposition is UTF-8")
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
