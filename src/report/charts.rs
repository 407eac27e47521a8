//! SVG charts (plotters' SVG backend): bars over named categories and a line over time.
//! A chart that cannot be drawn becomes a short note in the report, never a panic.
//!
//! ```
//! let svg = orchestra::report::charts::bars("Answers", "count", &["a".into(), "b".into()], &[1.0, 3.0], None);
//! assert!(svg.starts_with("<svg"));
//! ```

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::views::format_ts;

/// Width and height of every chart, px.
pub const SIZE: (u32, u32) = (640, 300);
const BAR: RGBColor = RGBColor(0x3b, 0x6e, 0xa8);
const LINE: RGBColor = RGBColor(0xc0, 0x4b, 0x2c);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn render(draw: impl FnOnce(&Area) -> Result<(), String>) -> String {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"note\">chart not drawn: {}</p>",
            super::escape(&e)
        ),
    }
}

/// A bar per label; `y_max` fixes the axis (e.g. 1.0 for rates), else the largest value.
pub fn bars(
    title: &str,
    y_desc: &str,
    labels: &[String],
    values: &[f64],
    y_max: Option<f64>,
) -> String {
    if labels.is_empty() {
        return empty(title);
    }
    let top = y_max.unwrap_or_else(|| values.iter().copied().fold(0.0, f64::max) * 1.1);
    let top = if top > 0.0 { top } else { 1.0 };
    // A segmented `0..k` axis has the k + 1 segments 0..=k: one per label.
    let n = labels.len();
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    labels.get(*i).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .y_desc(y_desc)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(BAR.filled())
                    .margin(8)
                    .data(values.iter().enumerate().map(|(i, v)| (i, *v))),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A line with points over time (x: epoch ms), y from 0 to `y_max`.
pub fn line_over_time(title: &str, y_desc: &str, points: &[(i64, f64)], y_max: f64) -> String {
    if points.is_empty() {
        return empty(title);
    }
    let x0 = points.iter().map(|p| p.0).min().unwrap_or(0);
    let x1 = points.iter().map(|p| p.0).max().unwrap_or(0);
    // A single point still needs a non-empty axis.
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 60_000, x1 + 60_000)
    };
    let pad = (x1 - x0) / 20;
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x0 - pad..x1 + pad, 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(5)
            .x_label_formatter(&|x| short_time(*x))
            .y_desc(y_desc)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                LINE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, LINE.filled())))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// `MM-DD HH:MM:SS` (UTC).
fn short_time(ms: i64) -> String {
    let t = format_ts(ms);
    t.get(5..19).map(|s| s.replace('T', " ")).unwrap_or(t)
}

fn empty(title: &str) -> String {
    format!(
        "<p class=\"note\">{}: no data in this range.</p>",
        super::escape(title)
    )
}
