//! The 24-hour figures of every integration, kept by the plane for the full list
//! (`ControlPlane::status_list`, the REST API's `GET /integrations`), so a dashboard polling it
//! pays for its rows and not for a day of rollups of every integration (250,000 rows at 10,000
//! integrations: with that in every call the list took seconds under load, measured with
//! `benches/api.rs`).
//!
//! Freshness: the figures are at most [`DAY_FIGURES_MAX_AGE`] old, plus the time one refresh
//! takes while it runs; states, last checks and incidents are read live on every call.
//!
//! A refresh reads only the last two hours' rollups (20,000 rows at 10,000 integrations) and
//! adds them to the hours before, which are read once per hour: a whole day was measured as
//! the slow tail of the overview when it was read every 10 s. The hour before the current one
//! is read again each time because a check that began in it can still be written into it.
//! Refreshes happen on demand: the caller that finds the figures too old refreshes them while
//! callers meanwhile are answered from the figures it replaces, and nothing runs when no one
//! asks.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::store::rollup::{Aggregate, HOUR, bucket_of};
use crate::store::{Store, StoreError, WindowStats};

/// How old the kept 24-hour figures may be before a call refreshes them.
pub const DAY_FIGURES_MAX_AGE: Duration = Duration::from_secs(10);

/// A day, in seconds.
const DAY: i64 = 86_400;

/// Every integration's 24-hour figures (see the module docs), shared by every call.
#[derive(Default)]
pub(super) struct DayFigures {
    kept: RwLock<Option<Kept>>,
    /// Held by the one refresh running, so callers never refresh at the same time.
    refreshing: tokio::sync::Mutex<()>,
}

/// The figures as last read.
#[derive(Clone)]
struct Kept {
    /// When they were read.
    at: Instant,
    /// The hour (its bucket) they were read in: `settled` holds the hours of the day before
    /// the one before it.
    hour: i64,
    /// The day's hours that no check writes into any more, merged per integration.
    settled: Arc<HashMap<String, Aggregate>>,
    /// `settled` with the last two hours added: what callers get.
    figures: Arc<HashMap<String, WindowStats>>,
}

impl DayFigures {
    /// The 24-hour figures of every integration as of `now` (within [`DAY_FIGURES_MAX_AGE`]).
    pub(super) async fn get(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<Arc<HashMap<String, WindowStats>>, StoreError> {
        let kept = self.kept.read().expect("figures lock").clone();
        if let Some(kept) = &kept
            && kept.at.elapsed() < DAY_FIGURES_MAX_AGE
        {
            return Ok(kept.figures.clone());
        }
        let _refreshing = match (self.refreshing.try_lock(), kept) {
            (Ok(guard), _) => guard,
            // Another call refreshes them: the ones it replaces are at most one refresh older.
            (Err(_), Some(kept)) => return Ok(kept.figures.clone()),
            // None yet: wait for the first, then read what it kept.
            (Err(_), None) => self.refreshing.lock().await,
        };
        let kept = self.kept.read().expect("figures lock").clone();
        if let Some(kept) = &kept
            && kept.at.elapsed() < DAY_FIGURES_MAX_AGE
        {
            return Ok(kept.figures.clone());
        }
        let fresh = refresh(store, kept, now).await?;
        let figures = fresh.figures.clone();
        *self.kept.write().expect("figures lock") = Some(fresh);
        Ok(figures)
    }
}

/// Reads the last two hours, and the settled hours too when the hour changed since `kept`.
async fn refresh(
    store: &Store,
    kept: Option<Kept>,
    now: DateTime<Utc>,
) -> Result<Kept, StoreError> {
    let at = Instant::now();
    let hour = bucket_of(now.timestamp_millis(), HOUR);
    // The same window as `Store::window_stats` for a day: from the hour holding `now - 24h`.
    let (from, recent) = (hour - DAY, hour - HOUR);
    let settled = match kept {
        Some(kept) if kept.hour == hour => kept.settled,
        _ => Arc::new(store.hourly_sums(from..recent).await?),
    };
    let mut figures: HashMap<String, WindowStats> = settled
        .iter()
        .map(|(name, aggregate)| {
            let stats = WindowStats {
                aggregate: aggregate.clone(),
            };
            (name.clone(), stats)
        })
        .collect();
    for (name, aggregate) in store.hourly_sums(recent..i64::MAX).await? {
        match figures.get_mut(&name) {
            Some(stats) => stats.aggregate.merge(&aggregate),
            None => {
                figures.insert(name, WindowStats { aggregate });
            }
        }
    }
    Ok(Kept {
        at,
        hour,
        settled,
        figures: Arc::new(figures),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CheckResult;
    use crate::store::{Batch, StatsWindow};

    /// A store with 30 hours of results for three integrations, one every 20 minutes, latency
    /// and failures varying by integration and hour.
    async fn store_with_history(dir: &std::path::Path, now: DateTime<Utc>) -> Store {
        let store = Store::open(&format!("sqlite://{}", dir.join("f.db").display()))
            .await
            .unwrap();
        let results = (0..90)
            .flat_map(|step: i64| {
                (0..3).map(move |i: i64| CheckResult {
                    integration: format!("svc-{i}"),
                    at: now - chrono::Duration::minutes(20 * step),
                    success: (step + i) % 7 != 0,
                    latency_ms: (5 + 40 * i + step) as f64,
                    status: Some(200),
                    error_kind: None,
                    message: None,
                })
            })
            .collect();
        store
            .write(&Batch {
                results,
                states: Vec::new(),
                transitions: Vec::new(),
            })
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn kept_figures_equal_a_whole_day_read_at_once_across_hours() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::model::now();
        let store = store_with_history(dir.path(), now).await;
        let whole = |at| {
            let store = store.clone();
            async move {
                store
                    .window_stats(None, StatsWindow::Day, at)
                    .await
                    .unwrap()
            }
        };

        let first = refresh(&store, None, now).await.unwrap();
        assert_eq!(*first.figures, whole(now).await);
        assert_eq!(first.figures.len(), 3);

        // A result in the current hour: the next refresh in the same hour reuses the settled
        // hours and still matches a whole read.
        store
            .write(&Batch {
                results: vec![CheckResult {
                    integration: "svc-1".into(),
                    at: now,
                    success: false,
                    latency_ms: 4_000.0,
                    status: None,
                    error_kind: None,
                    message: None,
                }],
                states: Vec::new(),
                transitions: Vec::new(),
            })
            .await
            .unwrap();
        let again = refresh(&store, Some(first.clone()), now).await.unwrap();
        assert!(
            Arc::ptr_eq(&again.settled, &first.settled),
            "settled hours kept"
        );
        assert_eq!(*again.figures, whole(now).await);
        assert_ne!(again.figures, first.figures, "the new result counts");

        // Two hours on, the window has moved: the settled hours are read again.
        let later = now + chrono::Duration::hours(2);
        let moved = refresh(&store, Some(again.clone()), later).await.unwrap();
        assert!(!Arc::ptr_eq(&moved.settled, &again.settled));
        assert_eq!(*moved.figures, whole(later).await);
    }

    #[tokio::test]
    async fn figures_are_kept_until_they_are_too_old() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::model::now();
        let store = store_with_history(dir.path(), now).await;
        let day = DayFigures::default();
        let first = day.get(&store, now).await.unwrap();
        assert!(Arc::ptr_eq(&first, &day.get(&store, now).await.unwrap()));

        // Kept figures past their age are read again.
        if let Some(kept) = day.kept.write().unwrap().as_mut() {
            kept.at -= DAY_FIGURES_MAX_AGE;
        }
        let second = day.get(&store, now).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(*second, *first);
    }
}
