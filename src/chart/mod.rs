//! Status charts: one integration's latency (p50 and p95) and uptime over the last 24 hours or
//! 7 days, with the spans it was DOWN or DEGRADED shaded, drawn as a PNG.
//!
//! The chart knows nothing of where its figures come from: the service reads the rollups and
//! the transitions and hands over a [`ChartData`] (points already reduced to p50, p95 and
//! uptime, spans already cut to the period), so this module names only the ground floor. It
//! draws with plotters on its in-memory bitmap backend and encodes with the `png` crate: no
//! browser, no network, no system fonts (the one font, DejaVu Sans, is compiled in; see
//! `assets/fonts/LICENSE-DejaVu.txt`). The same data always gives the same bytes.
//!
//! Rendering is CPU work of a few milliseconds: callers on an async runtime run it on the
//! blocking pool.

mod draw;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{State, Transition, echo};

pub use draw::render_png;

/// The span a chart covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ChartPeriod {
    /// The last 24 hours, one point per minute.
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days, one point per hour.
    #[serde(rename = "7d")]
    Week,
}

impl ChartPeriod {
    /// Every period, shortest first.
    pub const ALL: [ChartPeriod; 2] = [ChartPeriod::Day, ChartPeriod::Week];

    /// How it is written in options and URLs: `24h`, `7d`.
    pub fn label(self) -> &'static str {
        match self {
            ChartPeriod::Day => "24h",
            ChartPeriod::Week => "7d",
        }
    }

    /// The span covered.
    pub fn length(self) -> Duration {
        Duration::from_secs(match self {
            ChartPeriod::Day => 86_400,
            ChartPeriod::Week => 7 * 86_400,
        })
    }

    /// Seconds per point: the rollup resolution the chart is drawn from (one-minute rollups
    /// for a day, one-hour rollups for a week), so a point is one stored rollup row.
    pub fn resolution_secs(self) -> i64 {
        match self {
            ChartPeriod::Day => 60,
            ChartPeriod::Week => 3600,
        }
    }
}

impl fmt::Display for ChartPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A period that is not `24h` or `7d`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no chart period {}: use 24h or 7d", echo(.0))]
pub struct UnknownPeriod(pub String);

impl FromStr for ChartPeriod {
    type Err = UnknownPeriod;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ChartPeriod::ALL
            .into_iter()
            .find(|period| period.label() == text.trim())
            .ok_or_else(|| UnknownPeriod(text.to_string()))
    }
}

/// One rollup bucket's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartPoint {
    /// The start of the bucket.
    pub at: DateTime<Utc>,
    /// Estimated median latency (ms).
    pub p50_ms: f64,
    /// Estimated 95th percentile latency (ms).
    pub p95_ms: f64,
    /// Percent of the bucket's checks that passed.
    pub uptime_pct: f64,
}

/// A span the integration was DOWN or DEGRADED, cut to the chart's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentSpan {
    /// When it began (or the period's start).
    pub from: DateTime<Utc>,
    /// When it ended (or the period's end, while it lasts).
    pub until: DateTime<Utc>,
    /// DOWN or DEGRADED.
    pub state: State,
}

impl IncidentSpan {
    /// The DOWN and DEGRADED spans within `start..end`, from the state the integration was in
    /// at `start` (`None`: no transition before it) and its transitions in the period, oldest
    /// first.
    pub fn from_transitions(
        before: Option<State>,
        transitions: &[Transition],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Vec<IncidentSpan> {
        let bad = |state: State| matches!(state, State::Down | State::Degraded);
        let mut spans = Vec::new();
        // Without a transition before the period, the state at its start is the one the first
        // transition in it left.
        let mut state = before.or_else(|| transitions.first().map(|t| t.from));
        let mut since = start;
        for transition in transitions {
            let at = transition.at.clamp(start, end);
            if let Some(current) = state
                && bad(current)
                && at > since
            {
                spans.push(IncidentSpan {
                    from: since,
                    until: at,
                    state: current,
                });
            }
            state = Some(transition.to);
            since = at;
        }
        if let Some(current) = state
            && bad(current)
            && end > since
        {
            spans.push(IncidentSpan {
                from: since,
                until: end,
                state: current,
            });
        }
        spans
    }
}

/// Everything a chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    /// The integration's name (the chart's title).
    pub integration: String,
    /// The period covered, ending at `end`.
    pub period: ChartPeriod,
    /// The end of the period.
    pub end: DateTime<Utc>,
    /// One point per rollup bucket with checks, oldest first; buckets without checks are gaps.
    pub points: Vec<ChartPoint>,
    /// The DOWN and DEGRADED spans, oldest first.
    pub incidents: Vec<IncidentSpan>,
    /// Percent of all the period's checks that passed (`None` without checks).
    pub uptime_pct: Option<f64>,
}

impl ChartData {
    /// The start of the period.
    pub fn start(&self) -> DateTime<Utc> {
        self.end - chrono::Duration::from_std(self.period.length()).expect("a period fits")
    }
}

/// The pixel size of a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl ChartSize {
    /// The size patchbay serves: wide enough for a point per 1.5 minutes of a day, and shown
    /// sharp at the width of a Discord embed on a high-density screen.
    pub const STANDARD: ChartSize = ChartSize {
        width: 960,
        height: 480,
    };
    /// The smallest size that leaves room for the labels.
    pub const MIN: ChartSize = ChartSize {
        width: 480,
        height: 240,
    };
    /// The largest size drawn (a bigger one would only cost memory).
    pub const MAX: ChartSize = ChartSize {
        width: 4096,
        height: 4096,
    };
}

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    /// The size asked for is outside [`ChartSize::MIN`]..=[`ChartSize::MAX`].
    #[error(
        "a chart is between {}x{} and {}x{} pixels, not {width}x{height}",
        ChartSize::MIN.width, ChartSize::MIN.height, ChartSize::MAX.width, ChartSize::MAX.height
    )]
    Size {
        /// The width asked for.
        width: u32,
        /// The height asked for.
        height: u32,
    },
    /// The embedded font could not be loaded (a broken build).
    #[error("the chart font could not be loaded")]
    Font,
    /// Drawing failed.
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    /// Encoding the PNG failed.
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap()
    }

    fn transition(minute: i64, from: State, to: State) -> Transition {
        Transition {
            integration: "api".into(),
            from,
            to,
            reason: String::new(),
            at: at(minute),
        }
    }

    #[test]
    fn periods_parse_their_labels_only() {
        for period in ChartPeriod::ALL {
            assert_eq!(period.label().parse::<ChartPeriod>(), Ok(period));
        }
        assert_eq!(" 7d ".parse::<ChartPeriod>(), Ok(ChartPeriod::Week));
        let err = "1w".parse::<ChartPeriod>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "there is no chart period \"1w\": use 24h or 7d"
        );
        assert_eq!(ChartPeriod::Week.length().as_secs(), 604_800);
    }

    #[test]
    fn spans_follow_transitions_and_are_cut_to_the_period() {
        let (start, end) = (at(0), at(100));
        let transitions = [
            transition(10, State::Down, State::Up),
            transition(30, State::Up, State::Degraded),
            transition(40, State::Degraded, State::Down),
            transition(50, State::Down, State::Up),
            transition(90, State::Up, State::Down),
        ];
        let spans = IncidentSpan::from_transitions(Some(State::Down), &transitions, start, end);
        let shape: Vec<(i64, i64, State)> = spans
            .iter()
            .map(|s| {
                (
                    (s.from - start).num_minutes(),
                    (s.until - start).num_minutes(),
                    s.state,
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (0, 10, State::Down),
                (30, 40, State::Degraded),
                (40, 50, State::Down),
                (90, 100, State::Down),
            ]
        );
    }

    #[test]
    fn without_an_earlier_transition_the_first_one_says_where_it_started() {
        let transitions = [transition(20, State::Degraded, State::Up)];
        let spans = IncidentSpan::from_transitions(None, &transitions, at(0), at(60));
        assert_eq!(
            spans,
            [IncidentSpan {
                from: at(0),
                until: at(20),
                state: State::Degraded
            }]
        );
        assert!(IncidentSpan::from_transitions(Some(State::Up), &[], at(0), at(60)).is_empty());
        assert!(IncidentSpan::from_transitions(None, &[], at(0), at(60)).is_empty());
    }
}
