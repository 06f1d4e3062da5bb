//! The report as one aligned table: a heading per section, one line per
//! figure (name, accelerator, transport, value, unit, samples), the notes
//! as footnotes.

use std::fmt::Write as _;

use super::report::{Figure, Report, Unit};

/// A value with the precision its size and unit deserve.
pub fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Ratio => format!("{value:.2}"),
        Unit::Ops | Unit::Runs => format!("{value:.0}"),
        _ if value.abs() >= 1000.0 => format!("{value:.0}"),
        _ if value.abs() >= 10.0 => format!("{value:.1}"),
        _ => format!("{value:.2}"),
    }
}

/// The whole report as text.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let load = report
        .machine
        .load_average
        .map_or("unknown".to_string(), |l| {
            format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2])
        });
    let _ = writeln!(
        s,
        "host-runner {} ({} build), {} cores, load average {load} at the start; \
         figures are medians (n: samples)",
        report.build.crate_version, report.build.profile, report.machine.cores
    );
    let name_width = report
        .figures
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let values: Vec<String> = report
        .figures
        .iter()
        .map(|f| format_value(f.value, f.unit))
        .collect();
    let value_width = values.iter().map(String::len).max().unwrap_or(0).max(5);
    let _ = writeln!(
        s,
        "  {:<name_width$}  {:<5} {:<10} {:>value_width$} {:<10} {:>4}",
        "figure", "accel", "transport", "value", "unit", "n"
    );
    for section in report.sections() {
        let _ = writeln!(s, "{}", section.title());
        for (f, v) in report.figures.iter().zip(&values) {
            if f.section == section {
                line(&mut s, f, v, name_width, value_width);
            }
        }
    }
    if !report.notes.is_empty() {
        let _ = writeln!(s, "notes:");
        for (i, n) in report.notes.iter().enumerate() {
            let _ = writeln!(s, "  {}. {n}", i + 1);
        }
    }
    s
}

fn line(s: &mut String, f: &Figure, value: &str, name_width: usize, value_width: usize) {
    let _ = writeln!(
        s,
        "  {:<name_width$}  {:<5} {:<10} {:>value_width$} {:<10} {:>4}",
        f.name,
        f.accel.to_string(),
        f.transport.map_or("-", |t| t.label()),
        value,
        f.unit.label(),
        f.samples
    );
}
