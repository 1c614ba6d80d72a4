//! Drawing a [`ChartData`] and encoding it: a title row with the legend, the latency pane (p50
//! and p95) above the uptime pane, both on one time axis, with DOWN and DEGRADED spans shaded
//! across both.

use std::ops::Range;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Utc};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ChartData, ChartError, ChartPoint, ChartSize};
use crate::model::State;

/// The embedded font, registered with plotters once under [`FAMILY`].
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family name every text of a chart asks for.
const FAMILY: &str = "sans-serif";

const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
const INK: RGBColor = RGBColor(40, 44, 52);
const MUTED: RGBColor = RGBColor(110, 116, 128);
const GRID: RGBColor = RGBColor(226, 229, 234);
const P50: RGBColor = RGBColor(52, 120, 200);
const P95: RGBColor = RGBColor(230, 126, 34);
const UPTIME: RGBColor = RGBColor(46, 160, 67);
const DOWN: RGBColor = RGBColor(220, 50, 47);
const DEGRADED: RGBColor = RGBColor(240, 173, 0);

/// Draws `data` at `size` and returns the PNG. Deterministic: the same data and size give the
/// same bytes.
pub fn render_png(data: &ChartData, size: ChartSize) -> Result<Vec<u8>, ChartError> {
    let fits = |value: u32, min: u32, max: u32| (min..=max).contains(&value);
    if !fits(size.width, ChartSize::MIN.width, ChartSize::MAX.width)
        || !fits(size.height, ChartSize::MIN.height, ChartSize::MAX.height)
    {
        return Err(ChartError::Size {
            width: size.width,
            height: size.height,
        });
    }
    register_font()?;
    let mut pixels = vec![0u8; size.width as usize * size.height as usize * 3];
    draw(data, &mut pixels, size)?;
    encode(&pixels, size)
}

/// Registers the embedded font with plotters, once per process.
fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(ChartError::Font) }
}

fn draw_error(err: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(err.to_string())
}

/// Where a time falls on the x axis: hours since the Unix epoch for a day (so ticks land on
/// whole hours), days for a week (ticks at midnight UTC).
struct TimeAxis {
    unit_secs: f64,
    range: Range<f64>,
}

impl TimeAxis {
    fn of(data: &ChartData) -> TimeAxis {
        let unit_secs = match data.period {
            super::ChartPeriod::Day => 3600.0,
            super::ChartPeriod::Week => 86_400.0,
        };
        let x = |at: DateTime<Utc>| at.timestamp() as f64 / unit_secs;
        TimeAxis {
            unit_secs,
            range: x(data.start())..x(data.end),
        }
    }

    fn x(&self, at: DateTime<Utc>) -> f64 {
        (at.timestamp() as f64 / self.unit_secs).clamp(self.range.start, self.range.end)
    }

    /// A tick's label: `14:00` on a day's axis, `Tue 14` on a week's (UTC).
    fn label(&self, x: f64) -> String {
        let at =
            DateTime::from_timestamp((x * self.unit_secs).round() as i64, 0).unwrap_or_default();
        if self.unit_secs < 86_400.0 {
            at.format("%H:%M").to_string()
        } else {
            format!("{} {}", at.format("%a"), at.day())
        }
    }
}

fn draw(data: &ChartData, pixels: &mut [u8], size: ChartSize) -> Result<(), ChartError> {
    let root = BitMapBackend::with_buffer(pixels, (size.width, size.height)).into_drawing_area();
    root.fill(&BACKGROUND).map_err(draw_error)?;
    let text = (size.height / 32).max(11);
    let (title, body) = root.split_vertically(text * 3);
    draw_title(data, &title, text)?;
    let body_height = size.height - text * 3;
    let (upper, lower) = body.split_vertically(body_height * 3 / 5);
    let axis = TimeAxis::of(data);
    let label_width = text * 6;
    let max_latency = data
        .points
        .iter()
        .map(|p| p.p95_ms.max(p.p50_ms))
        .fold(0.0f64, f64::max);
    // Headroom above the slowest point; an empty chart still gets a readable scale.
    let top = if max_latency > 0.0 {
        max_latency * 1.15
    } else {
        100.0
    };
    let latency_label = |ms: &f64| {
        crate::duration::compact(std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    };
    let time_label = |x: &f64| axis.label(*x);
    let font = (FAMILY, f64::from(text) * 0.95).into_font().color(&MUTED);

    let mut latency = ChartBuilder::on(&upper)
        .margin_right(text * 2)
        .margin_top(text / 2)
        .y_label_area_size(label_width)
        .x_label_area_size(0)
        .build_cartesian_2d(axis.range.clone(), 0.0..top)
        .map_err(draw_error)?;
    latency
        .configure_mesh()
        .x_labels(x_ticks(data))
        .y_labels(5)
        .y_label_formatter(&latency_label)
        .label_style(font.clone())
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .draw()
        .map_err(draw_error)?;
    shade(&mut latency, data, &axis, 0.0..top)?;
    let segments = segments(data);
    for (colour, value) in [
        (P95, (|p: &ChartPoint| p.p95_ms) as fn(&ChartPoint) -> f64),
        (P50, |p: &ChartPoint| p.p50_ms),
    ] {
        plot_line(&mut latency, &segments, &axis, colour, value)?;
    }

    let mut uptime = ChartBuilder::on(&lower)
        .margin_right(text * 2)
        .margin_top(text)
        .margin_bottom(text / 2)
        .y_label_area_size(label_width)
        .x_label_area_size(text * 2)
        .build_cartesian_2d(axis.range.clone(), 0.0..101.0)
        .map_err(draw_error)?;
    uptime
        .configure_mesh()
        .x_labels(x_ticks(data))
        .x_label_formatter(&time_label)
        .y_labels(3)
        .y_label_formatter(&|pct: &f64| format!("{pct:.0}%"))
        .label_style(font)
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .draw()
        .map_err(draw_error)?;
    shade(&mut uptime, data, &axis, 0.0..101.0)?;
    plot_area(&mut uptime, &segments, &axis, UPTIME, |p| p.uptime_pct)?;
    plot_line(&mut uptime, &segments, &axis, UPTIME, |p| p.uptime_pct)?;

    if data.points.is_empty() {
        let style = (FAMILY, f64::from(text) * 1.6)
            .into_font()
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let (width, height) = body.dim_in_pixel();
        let message = format!("no data in the last {}", data.period.label());
        body.draw_text(
            &message,
            &style,
            ((width / 2) as i32, (height * 3 / 10) as i32),
        )
        .map_err(draw_error)?;
    }
    root.present().map_err(draw_error)
}

/// How many time labels fit: a label every two hours of a day, one per day of a week.
fn x_ticks(data: &ChartData) -> usize {
    match data.period {
        super::ChartPeriod::Day => 12,
        super::ChartPeriod::Week => 8,
    }
}

/// The title (integration, period, uptime over the period) and the legend.
fn draw_title(
    data: &ChartData,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    text: u32,
) -> Result<(), ChartError> {
    let size = f64::from(text);
    let middle = (text * 3 / 2) as i32;
    let left = Pos::new(HPos::Left, VPos::Center);
    let title = (FAMILY, size * 1.4).into_font().color(&INK).pos(left);
    let mut heading = format!("{} · last {}", data.integration, data.period.label());
    if let Some(uptime) = data.uptime_pct {
        heading.push_str(&format!(" · uptime {uptime:.2}%"));
    }
    area.draw_text(&heading, &title, (text as i32, middle))
        .map_err(draw_error)?;
    let label = (FAMILY, size).into_font().color(&MUTED).pos(left);
    let mut entries: Vec<(&str, ShapeStyle, bool)> = vec![
        ("p50", P50.stroke_width(2), false),
        ("p95", P95.stroke_width(2), false),
        ("uptime", UPTIME.stroke_width(2), false),
    ];
    if data.incidents.iter().any(|s| s.state == State::Down) {
        entries.push(("down", shade_colour(State::Down), true));
    }
    if data.incidents.iter().any(|s| s.state == State::Degraded) {
        entries.push(("degraded", shade_colour(State::Degraded), true));
    }
    let swatch = text as i32 * 3 / 2;
    let gap = text as i32;
    let widths: Vec<i32> = entries
        .iter()
        .map(|(name, _, _)| {
            let (w, _) = area.estimate_text_size(name, &label).unwrap_or((0, 0));
            swatch + gap / 2 + w as i32 + gap
        })
        .collect();
    let (width, _) = area.dim_in_pixel();
    let mut x = width as i32 - widths.iter().sum::<i32>();
    for ((name, style, filled), w) in entries.into_iter().zip(widths) {
        if filled {
            area.draw(&Rectangle::new(
                [
                    (x, middle - text as i32 / 2),
                    (x + swatch, middle + text as i32 / 2),
                ],
                style,
            ))
            .map_err(draw_error)?;
        } else {
            area.draw(&PathElement::new(
                vec![(x, middle), (x + swatch, middle)],
                style,
            ))
            .map_err(draw_error)?;
        }
        area.draw_text(name, &label, (x + swatch + gap / 2, middle))
            .map_err(draw_error)?;
        x += w;
    }
    Ok(())
}

fn shade_colour(state: State) -> ShapeStyle {
    match state {
        State::Down => DOWN.mix(0.22).filled(),
        _ => DEGRADED.mix(0.28).filled(),
    }
}

type Pane<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The DOWN and DEGRADED spans, as bands the height of the pane.
fn shade(
    pane: &mut Pane<'_, '_>,
    data: &ChartData,
    axis: &TimeAxis,
    height: Range<f64>,
) -> Result<(), ChartError> {
    pane.draw_series(data.incidents.iter().map(|span| {
        Rectangle::new(
            [
                (axis.x(span.from), height.start),
                (axis.x(span.until), height.end),
            ],
            shade_colour(span.state),
        )
    }))
    .map_err(draw_error)?;
    Ok(())
}

/// The points in runs without gaps: a bucket without checks breaks the line rather than
/// drawing a slope across it.
fn segments(data: &ChartData) -> Vec<&[ChartPoint]> {
    let step = data.period.resolution_secs();
    let mut out = Vec::new();
    let mut begin = 0;
    for index in 1..=data.points.len() {
        let broken = index == data.points.len()
            || (data.points[index].at - data.points[index - 1].at).num_seconds() > step;
        if broken {
            out.push(&data.points[begin..index]);
            begin = index;
        }
    }
    out
}

/// The pixels (within the pane's plotting area) of one figure of a run of points.
fn pixels(
    pane: &Pane<'_, '_>,
    run: &[ChartPoint],
    axis: &TimeAxis,
    value: fn(&ChartPoint) -> f64,
) -> Vec<(i32, i32)> {
    let area = pane.plotting_area();
    let (left, top) = area.get_base_pixel();
    run.iter()
        .map(|p| {
            let (x, y) = area.map_coordinate(&(axis.x(p.at), value(p)));
            (x - left, y - top)
        })
        .collect()
}

/// One figure of every point, as lines through each run, and a dot for a run of one point.
/// A line is three one-pixel paths, a pixel apart (right and down), for a two-pixel stroke:
/// plotters mitres a wider path's sharp turns (a minute at 0% between two at 100%) into
/// spikes far outside the pane, and drawing it a segment at a time instead made a day's chart
/// (1,440 points) take 19 ms to draw rather than 9.
fn plot_line(
    pane: &mut Pane<'_, '_>,
    segments: &[&[ChartPoint]],
    axis: &TimeAxis,
    colour: RGBColor,
    value: fn(&ChartPoint) -> f64,
) -> Result<(), ChartError> {
    let area = pane.plotting_area().strip_coord_spec();
    for run in segments {
        let line = pixels(pane, run, axis, value);
        if let [(x, y)] = line[..] {
            area.draw(&Circle::new((x, y), 2, colour.filled()))
                .map_err(draw_error)?;
            continue;
        }
        for (dx, dy) in [(0, 0), (0, 1), (1, 0)] {
            let path: Vec<(i32, i32)> = line.iter().map(|&(x, y)| (x + dx, y + dy)).collect();
            area.draw(&PathElement::new(path, colour))
                .map_err(draw_error)?;
        }
    }
    Ok(())
}

/// The area under a figure, run by run: uptime reads as a green band with notches where checks
/// failed. Points that fall in one pixel column keep the lowest: a failing minute must show
/// however many passing ones share its column.
fn plot_area(
    pane: &mut Pane<'_, '_>,
    segments: &[&[ChartPoint]],
    axis: &TimeAxis,
    colour: RGBColor,
    value: fn(&ChartPoint) -> f64,
) -> Result<(), ChartError> {
    let area = pane.plotting_area().strip_coord_spec();
    let (_, bottom) = area.dim_in_pixel();
    let bottom = bottom as i32;
    for run in segments.iter().filter(|run| run.len() > 1) {
        let mut outline: Vec<(i32, i32)> = Vec::with_capacity(run.len() + 2);
        for (x, y) in pixels(pane, run, axis, value) {
            match outline.last_mut() {
                // Pixel rows grow downwards: the lowest value has the largest y.
                Some(last) if last.0 == x => last.1 = last.1.max(y),
                _ => outline.push((x, y)),
            }
        }
        let (first, last) = (outline[0].0, outline[outline.len() - 1].0);
        outline.insert(0, (first, bottom));
        outline.push((last, bottom));
        area.draw(&Polygon::new(outline, colour.mix(0.25).filled()))
            .map_err(draw_error)?;
    }
    Ok(())
}

/// The RGB pixels as a PNG. Fast compression: a chart is mostly flat colour, which it packs
/// well, and it keeps encoding to a few milliseconds.
fn encode(pixels: &[u8], size: ChartSize) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::with_capacity(pixels.len() / 16);
    let mut encoder = png::Encoder::new(&mut out, size.width, size.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder
        .write_header()
        .map_err(|err| ChartError::Encode(err.to_string()))?;
    writer
        .write_image_data(pixels)
        .map_err(|err| ChartError::Encode(err.to_string()))?;
    writer
        .finish()
        .map_err(|err| ChartError::Encode(err.to_string()))?;
    Ok(out)
}
