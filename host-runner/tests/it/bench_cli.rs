//! `host-runner bench --quick --json` as CI runs it, on TCG: the JSON on
//! stdout parses into the report, carries every section of the quick plan
//! with positive values and units, and the table goes to stderr. No
//! wall-clock thresholds: the figures are whatever this machine gives.
//! Needs `qemu-system-x86_64` and the built guest.

use std::process::Command;

use host_runner::bench::{Link, Report, Section};

#[test]
fn quick_bench_json_has_every_section_with_positive_figures() {
    let run = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg", "bench", "--quick", "--json"])
        .output()
        .expect("host-runner runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let report: Report = serde_json::from_str(&stdout).expect("stdout is the JSON report");
    assert_eq!(report.format, "vmmfuzz-bench");
    assert_eq!(report.version, 1);
    assert!(report.machine.cores >= 1);
    assert!(report.plan.minimize_kernel.is_none());
    let expected: Vec<Section> = Section::ALL
        .into_iter()
        .filter(|s| *s != Section::Minimize)
        .collect();
    assert_eq!(report.sections(), expected, "{stdout}");
    for f in &report.figures {
        // A count of the mix's operations that reclaimed is what the mix
        // holds: the short mix from a fresh guest may hold none (the
        // pressure section's mix is the one made to reclaim, and its count
        // is positive).
        let count_of_mix = f.section == Section::InGuestVsInProcess
            && f.name == "operations that reclaimed memory first";
        assert!(
            f.value.is_finite()
                && (f.value > 0.0 || count_of_mix && f.value == 0.0)
                && f.samples > 0,
            "{f:?}"
        );
        assert_eq!(f.accel, host_runner::Accel::Tcg);
    }
    for link in [Link::Ring, Link::Serial] {
        for section in [Section::Boot, Section::RoundTrip, Section::Batched] {
            assert!(
                report
                    .figures
                    .iter()
                    .any(|f| f.section == section && f.transport == Some(link)),
                "no {section:?} figure on {link:?}"
            );
        }
        // The round trip back to back, and after the guest fell asleep.
        let round_trip = |name: &dyn Fn(&str) -> bool| {
            report.figures.iter().any(|f| {
                f.section == Section::RoundTrip && f.transport == Some(link) && name(&f.name)
            })
        };
        assert!(
            round_trip(&|n| n == "ping"),
            "no back-to-back ping on {link:?}"
        );
        assert!(
            round_trip(&|n| n.starts_with("ping after") && n.ends_with("idle")),
            "no ping after idle on {link:?}"
        );
    }
    assert!(
        report
            .figures
            .iter()
            .any(|f| f.transport == Some(Link::InProcess)),
        "the in-process side is measured"
    );
    for check in ["full check", "incremental check"] {
        assert!(
            report
                .figures
                .iter()
                .any(|f| f.section == Section::Checks && f.name.contains(check)),
            "no {check} figure in the checks section"
        );
    }
    // Each full check comes with its parts, each at most the whole (in
    // every sample, so in the medians).
    let checks: Vec<_> = report
        .figures
        .iter()
        .filter(|f| f.section == Section::Checks)
        .collect();
    let fulls: Vec<_> = checks
        .iter()
        .filter(|f| f.name.ends_with(": full check"))
        .collect();
    assert!(!fulls.is_empty());
    for full in fulls {
        for part in ["the oracle", "QEMU's view after the oracle"] {
            let name = format!("{}: {part}", full.name);
            let Some(p) = checks.iter().find(|f| f.name == name) else {
                panic!("no {name:?} figure")
            };
            assert!(
                p.value <= full.value,
                "{name}: {} > {}",
                p.value,
                full.value
            );
        }
    }
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("minimization: not measured")),
        "{:?}",
        report.notes
    );
    for title in ["boot → ready", "checks", "notes:"] {
        assert!(stderr.contains(title), "the table on stderr:\n{stderr}");
    }
}

/// `bench --only minimize` with an injected-leak guest: the long trace it
/// builds fails on that guest and is minimized to a handful of operations
/// (the section broke once unnoticed, when the fuzzer's mix began to draw
/// `Reset`s that freed the leaked frame before the trace's last check).
#[test]
fn the_minimization_bench_minimizes_a_long_trace_that_fails() {
    let kernel = host_runner::guest_image::build_guest(&["inject-leak"]).expect("the guest");
    let run = minimization_bench(&kernel, 2000);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    let report: Report = serde_json::from_str(&stdout).expect("stdout is the JSON report");
    assert_eq!(report.sections(), vec![Section::Minimize], "{stdout}");
    let value = |name: &str| {
        report
            .figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no {name:?} figure: {stdout}"))
            .value
    };
    assert_eq!(value("failing trace given"), 2000.0);
    let minimized = value("minimized trace");
    assert!((1.0..=8.0).contains(&minimized), "{stdout}");
}

/// `bench --only minimize` given a guest without an injected bug: the long
/// trace passes, so nothing was measured, and the bench says so and exits
/// 2 (a usage error), not 0 as the minimizer's "nothing to minimize" does.
#[test]
fn the_minimization_bench_refuses_a_guest_without_a_bug() {
    let kernel = host_runner::guest_image::resolve(None).expect("the built guest");
    let run = minimization_bench(&kernel, 300);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("passes on the guest") && stderr.contains("injected bug"),
        "{stderr}"
    );
}

/// `bench --only minimize --json` on a long trace of `ops` operations,
/// minimized on the guest `kernel`.
fn minimization_bench(kernel: &std::path::Path, ops: usize) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg", "bench", "--only", "minimize", "--json"])
        .arg("--minimize-kernel")
        .arg(kernel)
        .args(["--minimize-ops", &ops.to_string()])
        .output()
        .expect("host-runner runs")
}
