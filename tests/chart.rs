//! Status charts: the PNG the renderer draws (a real PNG of the standard size that decodes, the
//! same bytes for the same data, "no data" written on an empty history) and the chart the
//! control plane makes from a real SQLite store (points from minute rollups for 24 hours and
//! hourly ones for 7 days, DOWN and DEGRADED spans from the transitions, unknown names refused
//! with suggestions).

use chrono::{DateTime, Duration, Utc};
use patchbay::chart::{
    ChartData, ChartError, ChartPeriod, ChartPoint, ChartSize, IncidentSpan, render_png,
};
use patchbay::config::{self, Environment};
use patchbay::model::{CheckResult, State, Transition};
use patchbay::service::{CommandError, ControlPlane, Invalid, chart_data};
use patchbay::store::{Batch, Store};

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T12:30:00Z")
        .unwrap()
        .to_utc()
}

/// A PNG's width and height, read from its IHDR chunk by hand, and its pixels as the `png`
/// crate decodes them (RGB).
fn decode(png: &[u8]) -> ((u32, u32), Vec<u8>) {
    assert_eq!(&png[..8], PNG_MAGIC, "not a PNG");
    assert_eq!(&png[12..16], b"IHDR", "the first chunk is not IHDR");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    let (width, height) = (be(16), be(20));
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), (width, height));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    ((width, height), pixels)
}

/// A day of minute points with a wave in the latencies, a gap, and an hour DOWN.
fn sample(period: ChartPeriod) -> ChartData {
    let end = now();
    let step = period.resolution_secs();
    let count = period.length().as_secs() as i64 / step;
    let points = (0..count)
        .filter(|i| !(300..330).contains(i))
        .map(|i| ChartPoint {
            at: end - Duration::seconds((count - i) * step),
            p50_ms: 80.0 + (i as f64 / 37.0).sin() * 20.0,
            p95_ms: 180.0 + (i as f64 / 23.0).cos() * 60.0,
            uptime_pct: if i % 97 == 0 { 0.0 } else { 100.0 },
        })
        .collect();
    ChartData {
        integration: "payments-api".into(),
        period,
        end,
        points,
        incidents: vec![IncidentSpan {
            from: end - Duration::hours(5),
            until: end - Duration::hours(4),
            state: State::Down,
        }],
        uptime_pct: Some(99.25),
    }
}

#[test]
fn a_chart_is_a_png_of_the_standard_size_and_the_same_data_gives_the_same_bytes() {
    for period in ChartPeriod::ALL {
        let data = sample(period);
        let png = render_png(&data, ChartSize::STANDARD).unwrap();
        let ((width, height), pixels) = decode(&png);
        assert_eq!(
            (width, height),
            (ChartSize::STANDARD.width, ChartSize::STANDARD.height)
        );
        assert_eq!(pixels.len(), width as usize * height as usize * 3);
        // Something is drawn in the line colours, not only the background.
        let coloured = pixels
            .chunks(3)
            .filter(|p| p[0].abs_diff(p[1]) > 60 || p[1].abs_diff(p[2]) > 60)
            .count();
        assert!(coloured > 1000, "{period}: {coloured} coloured pixels");
        assert_eq!(
            render_png(&data.clone(), ChartSize::STANDARD).unwrap(),
            png,
            "{period}: drawn twice, different bytes"
        );
    }
    let small = render_png(&sample(ChartPeriod::Day), ChartSize::MIN).unwrap();
    assert_eq!(
        decode(&small).0,
        (ChartSize::MIN.width, ChartSize::MIN.height)
    );
}

#[test]
fn sizes_outside_the_bounds_are_refused() {
    let tiny = ChartSize {
        width: 10,
        height: 10,
    };
    assert_eq!(
        render_png(&sample(ChartPeriod::Day), tiny),
        Err(ChartError::Size {
            width: 10,
            height: 10
        })
    );
}

/// Pixels darker than the grid lines within `rows` x `columns` of an RGB image `width` wide.
fn dark_pixels(
    pixels: &[u8],
    width: u32,
    rows: std::ops::Range<u32>,
    columns: std::ops::Range<u32>,
) -> usize {
    rows.flat_map(|y| columns.clone().map(move |x| (x, y)))
        .filter(|(x, y)| {
            let at = (*y as usize * width as usize + *x as usize) * 3;
            pixels[at..at + 3].iter().all(|c| *c < 180)
        })
        .count()
}

#[test]
fn an_empty_history_still_draws_a_chart_that_says_no_data() {
    let size = ChartSize::STANDARD;
    let empty = ChartData {
        points: Vec::new(),
        incidents: Vec::new(),
        uptime_pct: None,
        ..sample(ChartPeriod::Day)
    };
    let ((width, height), pixels) = decode(&render_png(&empty, size).unwrap());
    assert_eq!((width, height), (size.width, size.height));
    // "no data in the last 24h" is written across the middle of the latency pane, where a chart
    // with data has only lines and a chart without the message would be blank.
    let text = size.height / 32;
    let body = size.height - text * 3;
    let middle = text * 3 + body * 3 / 10;
    let band = middle - text..middle + text;
    let columns = width / 2 - 120..width / 2 + 120;
    let written = dark_pixels(&pixels, width, band.clone(), columns.clone());
    assert!(
        written > 200,
        "only {written} dark pixels where the message goes"
    );
    let with_data = sample(ChartPeriod::Day);
    let (_, drawn) = decode(&render_png(&with_data, size).unwrap());
    assert!(
        dark_pixels(&drawn, width, band, columns) < written / 4,
        "a chart with data has the message too"
    );
}

const CONFIG: &str = "[[integration]]\nname = \"payments-api\"\nurl = \"http://127.0.0.1:9/\"\n\
     [[integration]]\nname = \"payments-db\"\nurl = \"http://127.0.0.1:9/\"\n";

/// Whether the sample history's check at `at` failed: the hour from 3 to 2 hours ago (DOWN) and
/// the hour from 30 to 29 hours ago (DEGRADED: slow, not failing).
fn failing(at: DateTime<Utc>) -> bool {
    at >= now() - Duration::hours(3) && at < now() - Duration::hours(2)
}

fn slow(at: DateTime<Utc>) -> bool {
    at >= now() - Duration::hours(30) && at < now() - Duration::hours(29)
}

/// A week and a day of `payments-api` checks every 10 minutes, and the transitions that go
/// with them; `payments-db` has no history.
async fn store_with_history() -> (Store, tempfile::TempDir, Vec<CheckResult>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .unwrap();
    let results: Vec<CheckResult> = (0..=8 * 144)
        .map(|k| {
            let at = now() - Duration::minutes(10 * k);
            CheckResult {
                integration: "payments-api".into(),
                at,
                success: !failing(at),
                latency_ms: if slow(at) { 2000.0 } else { 40.0 },
                status: Some(if failing(at) { 503 } else { 200 }),
                error_kind: None,
                message: None,
            }
        })
        .collect();
    let transition = |hours_ago: i64, from: State, to: State| Transition {
        integration: "payments-api".into(),
        from,
        to,
        reason: String::new(),
        at: now() - Duration::hours(hours_ago),
    };
    store
        .write(&Batch {
            results: results.clone(),
            states: Vec::new(),
            transitions: vec![
                transition(9 * 24, State::Unknown, State::Up),
                transition(30, State::Up, State::Degraded),
                transition(29, State::Degraded, State::Up),
                transition(3, State::Up, State::Down),
                transition(2, State::Down, State::Up),
            ],
        })
        .await
        .unwrap();
    (store, dir, results)
}

#[tokio::test]
async fn the_plane_charts_24_hours_from_minute_rollups_and_7_days_from_hourly_ones() {
    let (store, _dir, results) = store_with_history().await;
    let config = config::parse(CONFIG, "test.toml", None, &Environment::default()).unwrap();
    let plane = ControlPlane::new(&config, store.clone(), None)
        .await
        .unwrap();

    for (period, bucket) in [(ChartPeriod::Day, 60), (ChartPeriod::Week, 3600)] {
        let data = chart_data(&config, &store, "payments-api", period, now())
            .await
            .unwrap();
        let start = data.start();
        assert_eq!(start, now() - Duration::from_std(period.length()).unwrap());
        // One point per rollup bucket starting in the period that holds a check.
        let mut expected: Vec<i64> = results
            .iter()
            .map(|r| r.at.timestamp().div_euclid(bucket) * bucket)
            .filter(|b| *b >= start.timestamp())
            .collect();
        expected.sort_unstable();
        expected.dedup();
        let got: Vec<i64> = data.points.iter().map(|p| p.at.timestamp()).collect();
        assert_eq!(got, expected, "{period}");
        // The uptime counts every check of those buckets.
        let counted: Vec<&CheckResult> = results
            .iter()
            .filter(|r| r.at.timestamp().div_euclid(bucket) * bucket >= start.timestamp())
            .collect();
        let passed = counted.iter().filter(|r| r.success).count();
        let uptime = data.uptime_pct.unwrap();
        assert!(
            (uptime - 100.0 * passed as f64 / counted.len() as f64).abs() < 1e-9,
            "{period}: {uptime}"
        );
        // Each point's uptime is its own bucket's, and the DOWN hour shows.
        for point in &data.points {
            let within: Vec<&&CheckResult> = counted
                .iter()
                .filter(|r| r.at.timestamp().div_euclid(bucket) * bucket == point.at.timestamp())
                .collect();
            let passed = within.iter().filter(|r| r.success).count();
            assert_eq!(
                point.uptime_pct,
                100.0 * passed as f64 / within.len() as f64,
                "{period}: {point:?}"
            );
        }
        assert!(data.points.iter().any(|p| p.uptime_pct < 100.0));
        // DOWN from 3 to 2 hours ago; the DEGRADED hour 30 hours ago only on the week.
        let mut spans = vec![IncidentSpan {
            from: now() - Duration::hours(3),
            until: now() - Duration::hours(2),
            state: State::Down,
        }];
        if period == ChartPeriod::Week {
            spans.insert(
                0,
                IncidentSpan {
                    from: now() - Duration::hours(30),
                    until: now() - Duration::hours(29),
                    state: State::Degraded,
                },
            );
            let slow_hour = data.points.iter().find(|p| slow(p.at)).unwrap();
            assert!(slow_hour.p95_ms > 1000.0, "{slow_hour:?}");
        }
        assert_eq!(data.incidents, spans, "{period}");
    }

    let day = plane
        .status_chart_at("payments-api", ChartPeriod::Day, now())
        .await
        .unwrap();
    let week = plane
        .status_chart_at("payments-api", ChartPeriod::Week, now())
        .await
        .unwrap();
    assert_eq!(day.filename(), "payments-api-24h.png");
    assert_eq!(week.filename(), "payments-api-7d.png");
    for chart in [&day, &week] {
        let (size, _) = decode(&chart.png);
        assert_eq!(
            size,
            (ChartSize::STANDARD.width, ChartSize::STANDARD.height)
        );
    }
    assert_ne!(day.png, week.png, "24h and 7d draw the same picture");
    let again = plane
        .status_chart_at("payments-api", ChartPeriod::Day, now())
        .await
        .unwrap();
    assert_eq!(again, day, "the same history drawn twice differs");
    // The current chart (ending now, long after the sample) reads and draws too.
    let current = plane
        .status_chart("payments-api", ChartPeriod::Day)
        .await
        .unwrap();
    decode(&current.png);
}

#[tokio::test]
async fn an_integration_without_history_gets_an_empty_chart_and_an_unknown_one_an_error() {
    let (store, _dir, _) = store_with_history().await;
    let config = config::parse(CONFIG, "test.toml", None, &Environment::default()).unwrap();
    let plane = ControlPlane::new(&config, store.clone(), None)
        .await
        .unwrap();

    let data = chart_data(&config, &store, "payments-db", ChartPeriod::Week, now())
        .await
        .unwrap();
    assert!(data.points.is_empty() && data.incidents.is_empty());
    assert_eq!(data.uptime_pct, None);
    let chart = plane
        .status_chart_at("payments-db", ChartPeriod::Week, now())
        .await
        .unwrap();
    decode(&chart.png);

    let unknown = plane
        .status_chart_at("payments-apj", ChartPeriod::Day, now())
        .await
        .unwrap_err();
    assert_eq!(
        unknown,
        CommandError::Invalid(Invalid::UnknownIntegration {
            name: "payments-apj".into(),
            suggestions: vec!["payments-api".into(), "payments-db".into()],
        })
    );
}
