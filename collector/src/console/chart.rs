//! Inline SVG charts rendered on the server (no script needed): the stacked bar chart
//! of alerts by severity over time and the ingest sparkline.

use std::fmt::Write;

use super::html::esc;
use super::i18n::{self, Lang};
use super::overview::{Bucket, LEVELS};

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

/// Fill colour of a level.
pub fn level_colour(level: &str) -> &'static str {
    match level {
        "critical" => "#7b1fa2",
        "high" => "#d32f2f",
        "medium" => "#f57c00",
        "low" => "#1976d2",
        _ => "#78909c",
    }
}

/// Stacked bars, one per bucket, with a y axis, time labels and a legend.
pub fn severity_bars(buckets: &[Bucket], lang: Lang, tz_offset_minutes: i32) -> String {
    let max = buckets
        .iter()
        .map(|b| b.counts.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(4)
        .div_ceil(4)
        * 4; // four whole-number grid steps
    let plot_h = HEIGHT - BOTTOM - TOP;
    let slot = (WIDTH - LEFT) / buckets.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = format!(
        r#"<svg class="chart" id="severity-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        lang.pick("告警级别随时间分布", "alerts by severity over time")
    );
    for step in 0..=4 {
        let value = max as f64 * f64::from(step) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(step) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{WIDTH}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#555">{}</text>"##,
            LEFT - 4.0,
            y + 3.0,
            value.round()
        );
    }
    for (i, bucket) in buckets.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let mut y = TOP + plot_h;
        for level in LEVELS.iter().rev() {
            let count = bucket.counts.get(*level).copied().unwrap_or(0);
            if count == 0 {
                continue;
            }
            let h = plot_h * count as f64 / max as f64;
            y -= h;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{}" data-level="{level}"><title>{} {} · {}</title></rect>"#,
                level_colour(level),
                esc(&i18n::format_time(bucket.start_ns, tz_offset_minutes)),
                esc(&lang.level(level)),
                count
            );
        }
        if i % 4 == 0 {
            let label = i18n::format_time(bucket.start_ns, tz_offset_minutes);
            let short = label.get(5..16).unwrap_or(&label);
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#555">{}</text>"##,
                x,
                HEIGHT - 8.0,
                esc(short)
            );
        }
    }
    svg.push_str("</svg>");
    let mut legend = String::from(r#"<div class="legend">"#);
    for level in LEVELS {
        let _ = write!(
            legend,
            r#"<span><svg width="10" height="10" xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10" fill="{}"/></svg> {}</span>"#,
            level_colour(level),
            esc(&lang.level(level))
        );
    }
    legend.push_str("</div>");
    svg + &legend
}

/// A small line of recent values.
pub fn sparkline(values: &[f64]) -> String {
    let (w, h) = (200.0, 40.0);
    if values.len() < 2 {
        return format!(
            r#"<svg class="spark" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"></svg>"#
        );
    }
    let max = values.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let step = w / (values.len() - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                h - 2.0 - (h - 4.0) * v / max
            )
        })
        .collect();
    format!(
        r##"<svg class="spark" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg"><polyline fill="none" stroke="#1976d2" stroke-width="2" points="{}"/></svg>"##,
        points.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn bars_are_stacked_per_level_and_scaled_to_the_max() {
        let buckets = vec![
            Bucket {
                start_ns: 0,
                counts: BTreeMap::from([("high".to_owned(), 2), ("low".to_owned(), 2)]),
            },
            Bucket {
                start_ns: 3_600_000_000_000,
                counts: BTreeMap::new(),
            },
        ];
        let svg = severity_bars(&buckets, Lang::En, 0);
        assert_eq!(svg.matches("<rect x=").count(), 2);
        assert!(svg.contains(r#"data-level="high""#) && svg.contains(r#"data-level="low""#));
        // Tallest bucket (4) fills the plot height: two halves of 93 px.
        assert!(svg.contains(r#"height="93.0""#), "{svg}");
        assert!(sparkline(&[1.0, 2.0, 3.0]).contains("polyline"));
    }
}
