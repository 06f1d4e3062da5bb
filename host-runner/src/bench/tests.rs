//! The report's shape: medians, the JSON round trip and its fields, the
//! table's layout, the plans and the command line.

use clap::Parser as _;

use super::report::{median, Figure, Link, Report, Section, Tag, Unit, FORMAT, FORMAT_VERSION};
use super::table::{format_value, render};
use super::BenchPlan;
use crate::accel::Accel;

fn sample_report() -> Report {
    let mut r = Report::new(BenchPlan::quick());
    let ring = Tag {
        section: Section::Boot,
        accel: Accel::Tcg,
        transport: Some(Link::Ring),
    };
    r.figures
        .extend(ring.median("boot → ready", Unit::Millis, &[410.0, 380.0, 395.0]));
    let rt = Tag {
        section: Section::RoundTrip,
        ..ring
    };
    r.figures
        .extend(rt.median("ping", Unit::Micros, &[60.0, 80.0]));
    r.figures.extend(
        rt.with(Some(Link::Serial))
            .median("ping", Unit::Micros, &[900.0]),
    );
    let checks = Tag {
        section: Section::Checks,
        accel: Accel::Tcg,
        transport: None,
    };
    r.figures.push(checks.value(
        "64 MiB RAM, 16 pages mapped: full check",
        Unit::Millis,
        1.4,
        2,
    ));
    r.notes.push("a note".into());
    r
}

#[test]
fn medians_of_odd_even_and_no_samples() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[5.0]), Some(5.0));
    assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
    assert_eq!(median(&[4.0, 1.0, 2.0, 100.0]), Some(3.0));
    let tag = Tag {
        section: Section::Boot,
        accel: Accel::Tcg,
        transport: None,
    };
    assert!(tag.median("x", Unit::Millis, &[]).is_none());
    let f = tag.median("x", Unit::Millis, &[3.0, 1.0, 2.0]).unwrap();
    assert_eq!((f.value, f.samples), (2.0, 3));
}

#[test]
fn json_round_trips_and_names_format_build_machine_plan_and_units() {
    let r = sample_report();
    let text = r.to_json();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], FORMAT);
    assert_eq!(v["version"], FORMAT_VERSION);
    assert_eq!(v["build"]["crate_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(v["plan"]["runs"], 2);
    let figures = v["figures"].as_array().unwrap();
    assert_eq!(figures.len(), 4);
    for f in figures {
        for key in [
            "section",
            "name",
            "accel",
            "transport",
            "value",
            "unit",
            "samples",
        ] {
            assert!(f.get(key).is_some(), "{key} missing in {f}");
        }
        assert!(!f["unit"].as_str().unwrap().is_empty(), "{f}");
    }
    assert_eq!(figures[0]["section"], "boot");
    assert_eq!(figures[0]["unit"], "ms");
    assert_eq!(figures[1]["unit"], "us");
    assert_eq!(figures[2]["transport"], "serial");
    assert_eq!(figures[3]["transport"], serde_json::Value::Null);
    assert_eq!(figures[0]["accel"], "tcg");
}

#[test]
fn every_unit_serializes_to_a_name() {
    use Unit::*;
    for u in [
        Millis,
        Micros,
        Seconds,
        RequestsPerSec,
        OpsPerSec,
        PagesPerSec,
        Ratio,
        Percent,
        Ops,
    ] {
        let s = serde_json::to_value(u).unwrap();
        assert!(s.as_str().is_some_and(|s| !s.is_empty()), "{u:?}");
        assert_eq!(serde_json::from_value::<Unit>(s).unwrap(), u);
        assert!(!u.label().is_empty());
    }
}

#[test]
fn the_table_groups_by_section_in_order_and_aligns_columns() {
    let r = sample_report();
    let text = render(&r);
    let lines: Vec<&str> = text.lines().collect();
    let at = |s: &str| {
        lines
            .iter()
            .position(|l| *l == s)
            .unwrap_or_else(|| panic!("{s}:\n{text}"))
    };
    assert!(at("boot → ready") < at("round trip (one ping)"));
    assert!(at("round trip (one ping)") < at(Section::Checks.title()));
    assert!(
        !text.contains(Section::Minimize.title()),
        "no figures, no heading"
    );
    let rows: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("  1."))
        .collect();
    assert_eq!(rows.len(), 5, "a header and four figures:\n{text}");
    let widths: Vec<usize> = rows.iter().map(|l| l.chars().count()).collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "aligned:\n{text}");
    assert!(text.contains("395.0 ms"), "{text}");
    assert!(
        text.contains("70.0 µs"),
        "the median of two is their mean:\n{text}"
    );
    assert!(text.contains("notes:\n  1. a note"), "{text}");
}

#[test]
fn values_are_formatted_by_size_and_unit() {
    assert_eq!(format_value(12345.6, Unit::OpsPerSec), "12346");
    assert_eq!(format_value(45.67, Unit::Millis), "45.7");
    assert_eq!(format_value(1.234, Unit::Millis), "1.23");
    assert_eq!(format_value(0.3333, Unit::Ratio), "0.33");
    assert_eq!(format_value(7.0, Unit::Ops), "7");
}

#[test]
fn the_quick_plan_is_smaller_and_keeps_every_default_section_but_minimization() {
    let (q, d) = (BenchPlan::quick(), BenchPlan::default());
    assert!(q.runs < d.runs && q.fuzz_secs < d.fuzz_secs);
    assert_eq!(q.batch_sizes, vec![1, 16, 256]);
    assert_eq!(q.fuzz_jobs, vec![1, 2]);
    assert_eq!(q.transports, vec![Link::Ring, Link::Serial]);
    assert_eq!(d.check_ram_mib, vec![64, 512, 2048]);
    assert!(q.minimize_kernel.is_none() && d.minimize_kernel.is_none());
}

#[derive(clap::Parser)]
struct Cmd {
    #[command(flatten)]
    args: super::cli::BenchArgs,
}

#[test]
fn the_command_line_makes_the_plan() {
    let plan = |a: &[&str]| {
        let mut v = vec!["bench"];
        v.extend_from_slice(a);
        Cmd::parse_from(v).args
    };
    assert_eq!(plan(&[]).plan(), BenchPlan::default());
    assert_eq!(plan(&["--quick"]).plan(), BenchPlan::quick());
    let p = plan(&[
        "--quick",
        "--runs",
        "3",
        "--check-ram",
        "64,128",
        "--fuzz-secs",
        "1.5",
        "--seed",
        "0x18ed7952ef4dc836",
        "--pressure-ops",
        "500",
    ])
    .plan();
    assert_eq!((p.runs, p.fuzz_secs), (3, 1.5));
    assert_eq!((p.seed, p.pressure_ops), (0x18ed_7952_ef4d_c836, 500));
    assert_eq!(p.check_ram_mib, vec![64, 128]);
    assert_eq!(
        plan(&["--json"]).json.as_deref(),
        Some(std::path::Path::new("-"))
    );
    assert_eq!(
        plan(&["--json", "out.json"]).json.as_deref(),
        Some(std::path::Path::new("out.json"))
    );
    assert_eq!(plan(&[]).json, None);
    let f: Figure = serde_json::from_str(
        r#"{"section":"end_to_end","name":"x","accel":"kvm","transport":"in-process",
            "value":1.0,"unit":"pages/s","samples":1}"#,
    )
    .unwrap();
    assert_eq!(
        (f.section, f.transport, f.unit),
        (Section::EndToEnd, Some(Link::InProcess), Unit::PagesPerSec)
    );
}
