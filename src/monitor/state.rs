//! The per-integration state machine: UNKNOWN, UP, DEGRADED, DOWN, PAUSED.
//!
//! - DOWN after `failure_threshold` failures in a row.
//! - UP again after `success_threshold` successes in a row; from UNKNOWN the first passing check
//!   is enough, because there is no outage to confirm the end of.
//! - DEGRADED while checks pass (or fail fewer times in a row than the threshold) but the latency
//!   p95 or the error rate over the `degraded.window` exceeds its limit. The window needs
//!   [`MIN_SAMPLES`] results before it can move an integration in or out of DEGRADED, so one slow
//!   check right after start does not decide anything.
//! - PAUSED is set by the scheduler for disabled integrations; checks never move out of it.
//!
//! The machine is pure: it takes a result and the current state and returns the transition, if
//! any. Time comes from the results, so tests need no clock.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::config::{DegradedLimits, Integration};
use crate::duration;
use crate::model::{CheckResult, IntegrationState, LastCheck, State, Transition};

/// Results needed in the window before DEGRADED is decided either way.
pub const MIN_SAMPLES: usize = 5;
/// The most results kept in a window, whatever its length, to bound memory.
const MAX_WINDOW: usize = 4096;

/// One integration's thresholds and its sliding window of recent results.
#[derive(Debug, Clone)]
pub struct Machine {
    failure_threshold: u32,
    success_threshold: u32,
    degraded: Option<DegradedLimits>,
    window: VecDeque<Sample>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: DateTime<Utc>,
    latency_ms: f64,
    success: bool,
}

/// What the degraded window says.
enum Verdict {
    NotEnoughData,
    Within(String),
    Exceeded(String),
}

impl Machine {
    /// A machine with the integration's thresholds and an empty window.
    pub fn new(integration: &Integration) -> Self {
        Machine {
            failure_threshold: integration.failure_threshold,
            success_threshold: integration.success_threshold,
            degraded: integration.degraded.clone(),
            window: VecDeque::new(),
        }
    }

    /// Whether the degraded limits need past results (so the engine should seed the window).
    pub fn wants_history(&self) -> Option<std::time::Duration> {
        self.degraded.as_ref().map(|limits| limits.window)
    }

    /// Fills the window with results from before a restart, oldest first.
    pub fn seed(&mut self, results: &[CheckResult]) {
        for result in results {
            self.push(result);
        }
    }

    fn push(&mut self, result: &CheckResult) {
        let Some(limits) = &self.degraded else {
            return;
        };
        self.window.push_back(Sample {
            at: result.at,
            latency_ms: result.latency_ms,
            success: result.success,
        });
        let horizon =
            result.at - chrono::Duration::from_std(limits.window).unwrap_or(chrono::Duration::MAX);
        while self
            .window
            .front()
            .is_some_and(|sample| sample.at < horizon)
            || self.window.len() > MAX_WINDOW
        {
            self.window.pop_front();
        }
    }

    fn verdict(&self) -> Verdict {
        let Some(limits) = &self.degraded else {
            return Verdict::NotEnoughData;
        };
        if self.window.len() < MIN_SAMPLES {
            return Verdict::NotEnoughData;
        }
        let window = duration::compact(limits.window);
        let total = self.window.len() as f64;
        let failures = self.window.iter().filter(|s| !s.success).count() as f64;
        let rate = failures / total;
        let mut latencies: Vec<f64> = self.window.iter().map(|s| s.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        let p95 = percentile(&latencies, 0.95);
        if let Some(limit) = limits.latency_p95
            && p95 > limit.as_secs_f64() * 1000.0
        {
            return Verdict::Exceeded(format!(
                "latency p95 {} over {window} exceeds {}",
                format_ms(p95),
                duration::compact(limit)
            ));
        }
        if let Some(limit) = limits.error_rate
            && rate > limit
        {
            return Verdict::Exceeded(format!(
                "error rate {:.0}% over {window} exceeds {:.0}%",
                rate * 100.0,
                limit * 100.0
            ));
        }
        Verdict::Within(format!(
            "latency p95 {} and error rate {:.0}% over {window} are within limits",
            format_ms(p95),
            rate * 100.0
        ))
    }

    /// Applies one result to `state` and returns the transition it causes, if any.
    pub fn apply(
        &mut self,
        state: &mut IntegrationState,
        result: &CheckResult,
    ) -> Option<Transition> {
        if result.success {
            state.consecutive_successes = state.consecutive_successes.saturating_add(1);
            state.consecutive_failures = 0;
        } else {
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            state.consecutive_successes = 0;
        }
        state.last_check = Some(LastCheck {
            at: result.at,
            success: result.success,
            latency_ms: result.latency_ms,
            message: result.message.clone(),
        });
        self.push(result);

        let failure = || {
            format!(
                "{} failures in a row: {}",
                state.consecutive_failures,
                result.message.as_deref().unwrap_or("check failed")
            )
        };
        let (to, reason) = match state.state {
            State::Paused => return None,
            _ if !result.success && state.consecutive_failures >= self.failure_threshold => {
                (State::Down, failure())
            }
            State::Unknown | State::Down if !result.success => return None,
            State::Down if state.consecutive_successes < self.success_threshold => return None,
            from => match (from, self.verdict()) {
                (_, Verdict::Exceeded(reason)) => (State::Degraded, reason),
                (State::Degraded, Verdict::Within(reason)) => (State::Up, reason),
                (State::Degraded | State::Up, _) => return None,
                (State::Down, _) => (
                    State::Up,
                    format!("{} successes in a row", state.consecutive_successes),
                ),
                (_, _) => (State::Up, "first check passed".to_string()),
            },
        };
        if to == state.state {
            return None;
        }
        let transition = Transition {
            integration: state.integration.clone(),
            from: state.state,
            to,
            reason,
            at: result.at,
        };
        state.state = to;
        state.since = result.at;
        Some(transition)
    }
}

/// The `q` quantile of sorted values by the nearest-rank method.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn format_ms(ms: f64) -> String {
    duration::compact(std::time::Duration::from_secs_f64(ms / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Environment, parse};

    fn integration(extra: &str) -> Integration {
        let text = format!(
            "[[integration]]\nname = \"api\"\nurl = \"http://127.0.0.1:1/\"\nfailure_threshold = 3\nsuccess_threshold = 2\n{extra}"
        );
        parse(&text, "test.toml", None, &Environment::default())
            .unwrap()
            .integrations
            .remove(0)
    }

    fn result(second: i64, success: bool, latency_ms: f64) -> CheckResult {
        CheckResult {
            integration: "api".into(),
            at: DateTime::from_timestamp(1_700_000_000 + second, 0).unwrap(),
            success,
            latency_ms,
            status: Some(if success { 200 } else { 503 }),
            error_kind: (!success).then(|| "conditions".into()),
            message: (!success).then(|| "status == 200 failed: got 503".into()),
        }
    }

    /// Feeds `outcomes` (true = pass) ten seconds apart and returns the state after each.
    fn run(machine: &mut Machine, outcomes: &[(bool, f64)]) -> Vec<State> {
        let mut state = IntegrationState::new("api", DateTime::from_timestamp(0, 0).unwrap());
        outcomes
            .iter()
            .enumerate()
            .map(|(i, (ok, latency))| {
                machine.apply(&mut state, &result(i as i64 * 10, *ok, *latency));
                state.state
            })
            .collect()
    }

    use State::{Degraded as G, Down as D, Unknown as U, Up as P};

    #[test]
    fn thresholds_decide_down_and_up() {
        let mut machine = Machine::new(&integration(""));
        let f = (false, 10.0);
        let s = (true, 10.0);
        assert_eq!(
            run(&mut machine, &[f, f, s, f, f, f, f, s, f, s, s, s]),
            [U, U, P, P, P, D, D, D, D, D, P, P]
        );
    }

    #[test]
    fn transitions_carry_reasons() {
        let mut machine = Machine::new(&integration(""));
        let mut state = IntegrationState::new("api", DateTime::from_timestamp(0, 0).unwrap());
        let first = machine.apply(&mut state, &result(0, true, 5.0)).unwrap();
        assert_eq!((first.from, first.to), (U, P));
        assert_eq!(first.reason, "first check passed");
        assert!(machine.apply(&mut state, &result(10, false, 5.0)).is_none());
        assert!(machine.apply(&mut state, &result(20, false, 5.0)).is_none());
        let down = machine.apply(&mut state, &result(30, false, 5.0)).unwrap();
        assert_eq!(
            down.reason,
            "3 failures in a row: status == 200 failed: got 503"
        );
        assert_eq!(state.since, down.at);
        machine.apply(&mut state, &result(40, true, 5.0));
        let up = machine.apply(&mut state, &result(50, true, 5.0)).unwrap();
        assert_eq!(
            (up.from, up.to, up.reason.as_str()),
            (D, P, "2 successes in a row")
        );
    }

    #[test]
    fn slow_latency_degrades_and_recovers() {
        let mut machine = Machine::new(&integration(
            "degraded = { latency_p95 = \"500ms\", window = \"1m\" }",
        ));
        let fast = (true, 100.0);
        let slow = (true, 900.0);
        // Five samples are needed before DEGRADED is decided; a 60 s window holds seven results
        // ten seconds apart, so the last slow one (at 50 s) ages out at 120 s.
        let states = run(
            &mut machine,
            &[
                fast, fast, fast, fast, slow, slow, fast, fast, fast, fast, fast, fast, fast,
            ],
        );
        assert_eq!(states, [P, P, P, P, G, G, G, G, G, G, G, G, P]);
    }

    #[test]
    fn error_rate_degrades_while_checks_still_pass() {
        let mut machine = Machine::new(&integration(
            "degraded = { error_rate = 0.2, window = \"10m\" }",
        ));
        let s = (true, 10.0);
        let f = (false, 10.0);
        // 1 failure in 5 is 20%, not above the limit; the second makes it 2 in 6.
        let states = run(&mut machine, &[s, s, s, s, f, f, s]);
        assert_eq!(states, [P, P, P, P, P, G, G]);
    }

    #[test]
    fn degraded_still_goes_down_on_threshold() {
        let mut machine = Machine::new(&integration(
            "degraded = { latency_p95 = \"50ms\", window = \"10m\" }",
        ));
        let slow = (true, 100.0);
        let f = (false, 100.0);
        let states = run(&mut machine, &[slow, slow, slow, slow, slow, f, f, f]);
        assert_eq!(states, [P, P, P, P, G, G, G, D]);
    }

    #[test]
    fn paused_is_never_left_by_checks() {
        let mut machine = Machine::new(&integration(""));
        let mut state = IntegrationState::new("api", DateTime::from_timestamp(0, 0).unwrap());
        state.state = State::Paused;
        assert!(machine.apply(&mut state, &result(0, true, 1.0)).is_none());
        assert_eq!(state.state, State::Paused);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.95), 95.0);
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&[7.0], 0.95), 7.0);
        assert_eq!(percentile(&[], 0.95), 0.0);
    }
}
