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

    /// Records an upstream's circuit breaker state (`closed`, `open`, `half_open`).
    pub fn set_circuit(&self, upstream: &str, state: &str) {
        for other in ["closed", "open", "half_open"] {
            self.circuit_state
                .with_label_values(&[upstream, other])
                .set(i64::from(other == state));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("exposition is UTF-8")
    }
}
