//! The campaign report's operations-over-time chart: one inline SVG line
//! of the operations run against seconds, the moments failures were found
//! marked.

use maud::{html, Markup};

use crate::fuzz::timeline::Sample;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
/// Room for the axis labels.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 12.0;

/// `n` with a thousands separator every three digits (`12 345`).
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

/// The chart of `samples` (in time order), or a note when there are fewer
/// than two.
pub fn markup(samples: &[Sample]) -> Markup {
    if samples.len() < 2 {
        return html! {
            p class="note" id="ops-chart-none" { "Too few samples for a chart (the campaign was shorter than a second, or its document predates the timeline)." }
        };
    }
    let max_t = samples
        .iter()
        .map(|s| s.seconds)
        .fold(0.0, f64::max)
        .max(1e-3);
    let max_ops = samples.iter().map(|s| s.ops).max().unwrap_or(0).max(1);
    let w = WIDTH - LEFT - RIGHT;
    let h = HEIGHT - TOP - BOTTOM;
    let x = |t: f64| LEFT + w * t / max_t;
    let y = |ops: u64| TOP + h * (1.0 - ops as f64 / max_ops as f64);
    let points: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.1},{:.1}", x(s.seconds), y(s.ops)))
        .collect();
    // A failure found between two samples is marked at the later one.
    let found: Vec<&Sample> = samples
        .windows(2)
        .filter(|p| p[1].failures > p[0].failures)
        .map(|p| &p[1])
        .chain(samples.first().filter(|s| s.failures > 0))
        .collect();
    let view = format!("0 0 {WIDTH} {HEIGHT}");
    html! {
        svg id="ops-chart" class="chart" viewBox=(view) width=(WIDTH) height=(HEIGHT)
            role="img" aria-label="operations over time" {
            line class="axis" x1=(LEFT) y1=(TOP + h) x2=(LEFT + w) y2=(TOP + h) {}
            line class="axis" x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + h) {}
            text class="label" x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" { (grouped(max_ops)) }
            text class="label" x=(LEFT - 4.0) y=(TOP + h) text-anchor="end" { "0" }
            text class="label" x=(LEFT) y=(HEIGHT - 6.0) { "0 s" }
            text class="label" x=(LEFT + w) y=(HEIGHT - 6.0) text-anchor="end" { (format!("{max_t:.0} s")) }
            text class="label" x=(LEFT + w / 2.0) y=(HEIGHT - 6.0) text-anchor="middle" { "operations run, by seconds since the start" }
            polyline class="ops" points=(points.join(" ")) {}
            @for s in found {
                circle class="found" cx=(format!("{:.1}", x(s.seconds))) cy=(format!("{:.1}", y(s.ops))) r="4" {
                    title { (format!("failure {} found by {:.0} s", s.failures, s.seconds)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(seconds: f64, ops: u64, failures: u64) -> Sample {
        Sample {
            seconds,
            sequences: 0,
            ops,
            failures,
        }
    }

    #[test]
    fn the_line_spans_the_samples_and_failures_are_marked() {
        let svg = markup(&[s(0.0, 0, 0), s(5.0, 1000, 0), s(10.0, 2500, 1)]).into_string();
        assert!(svg.starts_with("<svg id=\"ops-chart\""), "{svg}");
        // From the origin to the top right corner.
        assert!(svg.contains("points=\"64.0,196.0 "), "{svg}");
        assert!(svg.contains(" 628.0,10.0\""), "{svg}");
        assert!(svg.contains(">2\u{2009}500<"), "{svg}");
        assert_eq!(svg.matches("<circle class=\"found\"").count(), 1, "{svg}");
        assert!(svg.contains("failure 1 found by 10 s"), "{svg}");
        assert!(markup(&[s(0.0, 0, 0)])
            .into_string()
            .contains("ops-chart-none"));
        assert_eq!(grouped(1234567), "1\u{2009}234\u{2009}567");
    }
}
