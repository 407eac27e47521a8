//! `orchestra report` and `GET /report`: one self-contained HTML page (inline CSS and SVG,
//! no scripts, nothing fetched) with plots of the finished matches — human detection
//! accuracy over time and per template, how often each robot personality fooled a human,
//! the distribution of round durations, robot latency and cost per model, and matches
//! completed per hour — each with the figures it plots in a table beside it.
//!
//! * [`figures`] — the figures, computed from `match-history` documents.
//! * [`charts`] — the SVG charts (plotters).
//!
//! ```
//! use orchestra::export::Documents;
//! let html = orchestra::report::render_html(&Documents::default(), &Default::default());
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! assert!(html.contains("<span id=\"matches\">0</span> matches"));
//! ```

pub mod charts;
pub mod figures;

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use figures::{Figures, ModelFigures, Ratio};

use crate::export::Documents;
use crate::views::format_ts;

/// The report of `docs` (`prices`: USD per 1,000 tokens per model, for the cost plot).
pub fn render_html(docs: &Documents, prices: &BTreeMap<String, f64>) -> String {
    let f = Figures::compute(&docs.histories, prices);
    let mut body = String::new();
    let range = match (
        docs.histories.first().and_then(|h| h.completed_at),
        docs.histories.last().and_then(|h| h.completed_at),
    ) {
        (Some(a), Some(b)) => format!(" completed from {} to {}", format_ts(a), format_ts(b)),
        _ => String::new(),
    };
    let _ = write!(
        body,
        "<p class=\"lead\"><span id=\"matches\">{}</span> matches{range}; human detection accuracy \
         <b id=\"accuracy\">{}</b> ({} of {} human votes named a human).{}</p>",
        f.matches,
        pct(f.accuracy.rate()),
        f.accuracy.hits,
        f.accuracy.total,
        if docs.skipped > 0 {
            format!(" {} undecodable documents were skipped.", docs.skipped)
        } else {
            String::new()
        }
    );

    let over_time: Vec<(i64, f64)> = f
        .accuracy_over_time
        .iter()
        .filter_map(|(t, r)| r.rate().map(|v| (*t, v)))
        .collect();
    section(
        &mut body,
        "accuracy-over-time",
        "Human detection accuracy over time",
        &charts::line_over_time(
            &format!(
                "Share of human votes naming a human, per {}",
                span_name(f.bucket_ms)
            ),
            "accuracy",
            &over_time,
            1.0,
        ),
        &ratio_rows(
            "from",
            f.accuracy_over_time
                .iter()
                .map(|(t, r)| (format_ts(*t), *r)),
        ),
    );
    let (labels, values) = rates(&f.accuracy_per_template);
    section(
        &mut body,
        "accuracy-per-template",
        "Human detection accuracy per template",
        &charts::bars(
            "Share of human votes naming a human",
            "accuracy",
            &labels,
            &values,
            Some(1.0),
        ),
        &ratio_rows(
            "template",
            f.accuracy_per_template.iter().map(|(k, r)| (k.clone(), *r)),
        ),
    );
    let (labels, values) = rates(&f.fooled_per_personality);
    section(
        &mut body,
        "fooled-per-personality",
        "How often each robot personality fooled a human",
        &charts::bars(
            "Human votes naming its seat / human votes in its rounds",
            "fooled rate",
            &labels,
            &values,
            Some(1.0),
        ),
        &ratio_rows(
            "personality",
            f.fooled_per_personality
                .iter()
                .map(|(k, r)| (k.clone(), *r)),
        ),
    );
    let (labels, counts, width) = duration_bins(&f.round_durations_ms);
    let mut table =
        String::from("<tr><th>rounds</th><th>mean</th><th>median</th><th>p95</th></tr>");
    let d = &f.round_durations_ms;
    let _ = write!(
        table,
        "<tr><td>{}</td><td id=\"mean-round\">{}</td><td>{}</td><td>{}</td></tr>",
        d.len(),
        secs(if d.is_empty() {
            0.0
        } else {
            d.iter().sum::<u64>() as f64 / d.len() as f64
        }),
        secs(quantile(d, 0.5) as f64),
        secs(quantile(d, 0.95) as f64)
    );
    section(
        &mut body,
        "round-durations",
        "Round durations",
        &charts::bars(
            &format!("Rounds per {} bin of duration", secs(width as f64)),
            "rounds",
            &labels,
            &counts,
            None,
        ),
        &table,
    );
    let models: Vec<String> = f.per_model.keys().cloned().collect();
    let latency: Vec<f64> = f
        .per_model
        .values()
        .map(ModelFigures::mean_latency_ms)
        .collect();
    let cost: Vec<f64> = f.per_model.values().map(|m| m.cost_usd).collect();
    let mut table = String::from(
        "<tr><th>model</th><th>answers</th><th>mean latency</th><th>p95 latency</th><th>tokens</th><th>cost (USD)</th></tr>",
    );
    for (name, m) in &f.per_model {
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{:.0} ms</td><td>{} ms</td><td>{}</td><td>{:.4}</td></tr>",
            escape(name),
            m.answers,
            m.mean_latency_ms(),
            m.latency_quantile_ms(0.95),
            m.tokens,
            m.cost_usd
        );
    }
    let priced = if prices.is_empty() {
        " (no prices given: `--price MODEL=USD_PER_1K`)"
    } else {
        ""
    };
    section(
        &mut body,
        "robots-per-model",
        "Robot latency and cost per model",
        &format!(
            "{}{}",
            charts::bars("Mean robot answer latency", "ms", &models, &latency, None),
            charts::bars(&format!("Cost{priced}"), "USD", &models, &cost, None)
        ),
        &table,
    );
    let hours: Vec<(i64, f64)> = f
        .matches_per_hour
        .iter()
        .map(|(h, n)| (*h, *n as f64))
        .collect();
    let labels: Vec<String> = hours
        .iter()
        .map(|(h, _)| format_ts(*h)[5..13].replace('T', " ") + "h")
        .collect();
    let counts: Vec<f64> = hours.iter().map(|(_, n)| *n).collect();
    let mut table = String::from("<tr><th>hour (UTC)</th><th>matches</th></tr>");
    for (h, n) in &f.matches_per_hour {
        let _ = write!(table, "<tr><td>{}</td><td>{n}</td></tr>", format_ts(*h));
    }
    section(
        &mut body,
        "matches-per-hour",
        "Match volume per hour",
        &charts::bars(
            "Matches completed per hour (UTC)",
            "matches",
            &labels,
            &counts,
            None,
        ),
        &table,
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>RobotOrchestra report</title><style>{CSS}</style></head>\
         <body><h1>RobotOrchestra — match report</h1>{body}\
         <footer>orchestra report · generated {}</footer></body></html>\n",
        format_ts(crate::time_range::now_ms())
    )
}

const CSS: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1100px;color:#222}\
h1{font-size:24px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}\
.row{display:flex;gap:24px;align-items:flex-start;flex-wrap:wrap}\
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}\
th{background:#f3f3f3}.note{color:#777}.lead{font-size:16px}footer{margin-top:32px;color:#888;font-size:12px}";

fn section(out: &mut String, id: &str, title: &str, charts: &str, table: &str) {
    let _ = write!(
        out,
        "<section id=\"{id}\"><h2>{}</h2><div class=\"row\"><div>{charts}</div>\
         <table>{table}</table></div></section>",
        escape(title)
    );
}

fn ratio_rows(head: &str, rows: impl Iterator<Item = (String, Ratio)>) -> String {
    let mut t = format!("<tr><th>{head}</th><th>hits</th><th>of</th><th>rate</th></tr>");
    for (k, r) in rows {
        let _ = write!(
            t,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&k),
            r.hits,
            r.total,
            pct(r.rate())
        );
    }
    t
}

fn rates(m: &BTreeMap<String, Ratio>) -> (Vec<String>, Vec<f64>) {
    m.iter()
        .map(|(k, r)| (k.clone(), r.rate().unwrap_or(0.0)))
        .unzip()
}

/// Bins of a "nice" width (1, 2 or 5 × 10ⁿ ms) giving at most 20 bins: labels, counts, width.
fn duration_bins(sorted: &[u64]) -> (Vec<String>, Vec<f64>, u64) {
    let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) else {
        return (Vec::new(), Vec::new(), 1000);
    };
    let mut width = 1u64;
    'outer: for exp in 0..12 {
        for m in [1, 2, 5] {
            width = m * 10u64.pow(exp);
            if (hi / width - lo / width) < 20 {
                break 'outer;
            }
        }
    }
    let first = lo / width;
    let n = (hi / width - first + 1) as usize;
    let mut counts = vec![0.0; n];
    for d in sorted {
        counts[(d / width - first) as usize] += 1.0;
    }
    let labels = (0..n)
        .map(|i| secs(((first + i as u64) * width) as f64))
        .collect();
    (labels, counts, width)
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn secs(ms: f64) -> String {
    format!("{:.1}s", ms / 1000.0)
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn span_name(ms: i64) -> String {
    match ms {
        m if m % 86_400_000 == 0 => format!("{} d", m / 86_400_000),
        m if m % 3_600_000 == 0 => format!("{} h", m / 3_600_000),
        m => format!("{} min", m / 60_000),
    }
}

/// HTML-escapes text.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
