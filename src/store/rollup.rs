//! Rollup arithmetic, free of SQL: which bucket a result falls in, the latency histogram the
//! rollup rows carry, and the percentile estimate read back from a sum of them.

use std::collections::HashMap;

use crate::model::CheckResult;

/// Upper bounds (ms) of the histogram buckets h0..h12; h13 holds everything slower.
pub const BOUNDS_MS: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];
/// Number of histogram columns.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;
/// One-minute rollups.
pub const MINUTE: i64 = 60;
/// One-hour rollups.
pub const HOUR: i64 = 3600;

/// Counts and a latency histogram for some set of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// Results counted.
    pub count: i64,
    /// Of which failed.
    pub failures: i64,
    /// Sum of latencies (ms), for the mean.
    pub latency_sum: f64,
    /// Fastest latency (ms).
    pub latency_min: f64,
    /// Slowest latency (ms).
    pub latency_max: f64,
    /// Latency histogram, see [`BOUNDS_MS`].
    pub histogram: [i64; BUCKETS],
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            count: 0,
            failures: 0,
            latency_sum: 0.0,
            latency_min: f64::INFINITY,
            latency_max: 0.0,
            histogram: [0; BUCKETS],
        }
    }
}

impl Aggregate {
    /// Adds one result.
    pub fn add(&mut self, success: bool, latency_ms: f64) {
        self.count += 1;
        self.failures += i64::from(!success);
        self.latency_sum += latency_ms;
        self.latency_min = self.latency_min.min(latency_ms);
        self.latency_max = self.latency_max.max(latency_ms);
        let bucket = BOUNDS_MS.partition_point(|&bound| bound < latency_ms);
        self.histogram[bucket] += 1;
    }

    /// Adds another aggregate (rollups merge by addition).
    pub fn merge(&mut self, other: &Aggregate) {
        self.count += other.count;
        self.failures += other.failures;
        self.latency_sum += other.latency_sum;
        self.latency_min = self.latency_min.min(other.latency_min);
        self.latency_max = self.latency_max.max(other.latency_max);
        for (mine, theirs) in self.histogram.iter_mut().zip(other.histogram) {
            *mine += theirs;
        }
    }

    /// Share of successful checks in percent, or `None` with no checks.
    pub fn uptime_pct(&self) -> Option<f64> {
        (self.count > 0).then(|| 100.0 * (self.count - self.failures) as f64 / self.count as f64)
    }

    /// Estimates the `q` latency quantile (ms): find the bucket holding the rank, interpolate
    /// linearly inside it, and clamp to the observed min and max. Exact when all latencies fall
    /// in one bucket's edges; otherwise within that bucket's width.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil().max(1.0);
        let mut seen = 0.0;
        for (index, &count) in self.histogram.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let count = count as f64;
            if seen + count >= rank {
                let lower = if index == 0 {
                    0.0
                } else {
                    BOUNDS_MS[index - 1]
                };
                let upper = BOUNDS_MS.get(index).copied().unwrap_or(self.latency_max);
                let lower = lower.max(self.latency_min);
                let upper = upper.min(self.latency_max).max(lower);
                let within = (rank - seen) / count;
                return Some(lower + (upper - lower) * within);
            }
            seen += count;
        }
        Some(self.latency_max)
    }
}

/// The start (Unix seconds) of the bucket of `resolution` seconds holding `at_ms`.
pub fn bucket_of(at_ms: i64, resolution: i64) -> i64 {
    at_ms.div_euclid(1000).div_euclid(resolution) * resolution
}

/// Groups results into (integration, resolution, bucket) aggregates for both resolutions.
pub fn aggregate(results: &[CheckResult]) -> HashMap<(String, i64, i64), Aggregate> {
    let mut out: HashMap<(String, i64, i64), Aggregate> = HashMap::new();
    for result in results {
        let at_ms = result.at.timestamp_millis();
        for resolution in [MINUTE, HOUR] {
            out.entry((
                result.integration.clone(),
                resolution,
                bucket_of(at_ms, resolution),
            ))
            .or_default()
            .add(result.success, result.latency_ms);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align_to_resolution() {
        assert_eq!(bucket_of(119_999, MINUTE), 60);
        assert_eq!(bucket_of(120_000, MINUTE), 120);
        assert_eq!(bucket_of(7_199_000, HOUR), 3600);
        assert_eq!(bucket_of(-1, MINUTE), -60);
    }

    #[test]
    fn histogram_places_latencies_by_upper_bound() {
        let mut aggregate = Aggregate::default();
        for latency in [0.5, 1.0, 1.5, 10_000.0, 20_000.0] {
            aggregate.add(true, latency);
        }
        assert_eq!(aggregate.histogram[0], 2);
        assert_eq!(aggregate.histogram[1], 1);
        assert_eq!(aggregate.histogram[12], 1);
        assert_eq!(aggregate.histogram[13], 1);
    }

    #[test]
    fn quantiles_stay_within_the_holding_bucket() {
        let mut aggregate = Aggregate::default();
        // 90 fast checks around 20 ms and 10 slow ones around 700 ms: p50 must land in the
        // 10-25 ms bucket and p95 in the 500-1000 ms bucket.
        for i in 0..90 {
            aggregate.add(true, 15.0 + f64::from(i % 10));
        }
        for i in 0..10 {
            aggregate.add(i % 2 == 0, 600.0 + f64::from(i) * 20.0);
        }
        let p50 = aggregate.quantile(0.5).unwrap();
        let p95 = aggregate.quantile(0.95).unwrap();
        assert!((10.0..=25.0).contains(&p50), "p50 {p50}");
        assert!((500.0..=780.0).contains(&p95), "p95 {p95}");
        assert_eq!(aggregate.uptime_pct(), Some(95.0));
    }

    #[test]
    fn merging_equals_adding_everything() {
        let mut left = Aggregate::default();
        let mut right = Aggregate::default();
        let mut all = Aggregate::default();
        for (i, latency) in [3.0, 40.0, 900.0, 12.0, 7.0].into_iter().enumerate() {
            let target = if i % 2 == 0 { &mut left } else { &mut right };
            target.add(i != 3, latency);
            all.add(i != 3, latency);
        }
        left.merge(&right);
        assert_eq!(left, all);
        assert_eq!(Aggregate::default().quantile(0.5), None);
    }
}
