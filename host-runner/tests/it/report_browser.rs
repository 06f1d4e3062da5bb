//! The HTML failure report of a real failure, opened in a real browser: a
//! guest built with `inject-leak` (unmap does not free the last page's
//! frame) replays a short trace with `host-runner replay --report`; the
//! report must name the leaked frame and draw the address space, and
//! headless Chromium must render it without console errors and take a
//! screenshot (kept under `target/report-test/`). A campaign report made
//! from a fuzz summary with a failure is opened the same way (no guest
//! needed).
//!
//! Needs `qemu-system-x86_64` and the guest's toolchain; the browser part
//! needs Debian's `chromium` (ci/run installs it) and says so when it
//! skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use host_runner::guest_image::build_guest;

/// Eight pages mapped (present RAM), four written, then pages 1 and 2
/// unmapped: the injected bug keeps page 2's frame used with no owner,
/// which the final memory check finds (invariant 3).
const TRACE: &str = r#"{"format":"vmmfuzz-trace","version":2,"ram_mib":128,"note":"inject-leak: unmap keeps the last page's frame"}
{"op":"map","addr":"0x40000000","pages":8,"writable":true,"contiguous":false,"as":"user","expect":"done"}
{"op":"write","addr":"0x40000000","len":16384,"seed":"0x5","as":"user","expect":"done"}
{"op":"unmap","addr":"0x40001000","pages":2,"as":"user","expect":"done"}
"#;

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/report-test");
    std::fs::create_dir_all(&dir).expect("target/report-test");
    dir.canonicalize().expect("an absolute path")
}

/// Replays the trace on the injected guest with `--report`; the report's
/// text.
fn failing_report(dir: &Path) -> (PathBuf, String) {
    let kernel = build_guest(&["inject-leak"]).expect("the injected guest builds");
    let trace = dir.join("leak.jsonl");
    std::fs::write(&trace, TRACE).expect("the trace is written");
    let html = dir.join("leak.html");
    let _ = std::fs::remove_file(&html);
    let out = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg", "--kernel"])
        .arg(&kernel)
        .arg("replay")
        .arg(&trace)
        .arg("--report")
        .arg(&html)
        .output()
        .expect("host-runner runs");
    let text = crate::common::output_text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the leak fails the replay:\n{text}"
    );
    assert!(text.contains("report written to"), "{text}");
    let report = std::fs::read_to_string(&html).expect("the report is written");
    (html, report)
}

/// `chromium` in PATH; without it, says that the browser part of the test
/// of `report` is skipped.
fn chromium_or_skip(report: &Path) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        println!(
            "SKIPPED the browser part: no `chromium` in PATH (ci/run installs Debian's chromium); \
             the report is at {}",
            report.display()
        );
    }
    found
}

/// The DOM of `html` as `chromium` renders it, asserting that it renders
/// with no console error and no failed fetch.
fn rendered_dom(chromium: &Path, html: &Path) -> String {
    let (ok, dom, stderr) = browser(
        chromium,
        html,
        &["--dump-dom", "--enable-logging=stderr", "--v=0"],
    );
    assert!(ok, "chromium dumped no DOM:\n{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains("Uncaught") || l.contains("CONSOLE") || l.contains("ERR_FILE_NOT_FOUND")
        })
        .collect();
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));
    dom
}

fn browser(chromium: &Path, html: &Path, extra: &[&str]) -> (bool, String, String) {
    let profile = tempfile::tempdir().expect("a profile directory");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_leak_s_report_names_its_frame_and_renders_in_a_browser() {
    let dir = out_dir();
    let (html, report) = failing_report(&dir);

    // The content, against the failure: the verdict, invariant 3, the
    // leaked frame outlined as used with no owner, the unmapped pages
    // unusable on both sides, the others present, the pages past the
    // mapping unusable, the failing step highlighted.
    assert!(
        report.contains(r#"<p id="verdict" class="verdict failed">FAILED"#),
        "{report}"
    );
    assert!(report.contains("invariant 3"), "{report}");
    let leaked = report
        .find(r#"class="named" data-kind="used, no owner""#)
        .unwrap_or_else(|| panic!("no leaked frame outlined:\n{report}"));
    let id = &report[..leaked];
    let id = &id[id.rfind("id=\"f-").expect("the frame's id") + 4..];
    println!("leaked frame outlined: {}", id.trim_end_matches(['"', ' ']));
    for (page, state) in [
        ("40000000", "st-ram"),
        ("40001000", "st-unusable"),
        ("40002000", "st-unusable"),
        ("40003000", "st-ram"),
        ("40007000", "st-ram"),
        ("40008000", "st-unusable"),
    ] {
        for side in ["g", "m"] {
            assert!(
                report.contains(&format!(r#"<rect id="{side}-{page}" class="{state}"#)),
                "{side}-{page} is not {state}"
            );
        }
    }
    assert!(report.contains("0 page(s) differ"), "the page states agree");
    assert!(
        report.contains(r#"<tr id="step-2" class="failing">"#),
        "{report}"
    );

    let Some(chromium) = chromium_or_skip(&html) else {
        return;
    };
    let shot = dir.join("leak.png");
    let _ = std::fs::remove_file(&shot);
    let (ok, _, stderr) = browser(
        &chromium,
        &html,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
            "--hide-scrollbars",
        ],
    );
    assert!(ok, "chromium took no screenshot:\n{stderr}");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "a screenshot of {size} bytes:\n{stderr}");
    println!("screenshot: {} ({size} bytes)", shot.display());

    // The DOM as rendered, and the console: no errors, no failed fetch.
    let dom = rendered_dom(&chromium, &html);
    assert!(
        dom.contains(r#"id="g-40001000""#),
        "the rendered DOM lacks the cells:\n{dom}"
    );
    assert!(
        dom.contains(r#"id="step-2""#),
        "the rendered DOM lacks the steps"
    );
}

/// A campaign's summary with one failure (its trace and report files
/// beside it), as `fuzz --json` writes it.
fn campaign_summary(failures: &Path) -> String {
    let trace = failures.join("invariant-42-0123abcd.jsonl");
    std::fs::write(&trace, TRACE).expect("the trace is written");
    std::fs::write(trace.with_extension("html"), "<!DOCTYPE html><p>report</p>")
        .expect("the report is written");
    serde_json::json!({
        "format": "vmmfuzz-fuzz", "version": 1, "seed": "0x2a", "shard": "1/1", "jobs": 1,
        "seconds": 12.0, "fuzzing_seconds": 11.0, "sequences": 9, "ops": 1800, "batches": 60,
        "pages_touched": 9000, "ops_per_second": 163.6, "pages_touched_per_second": 818.1,
        "reached": {"guest_edges": 0, "guest_edges_total": 0, "model_transitions": 0,
                    "model_events": 0, "model_events_total": 16},
        "answers": {"map": {"done": 700, "overflow": 3}, "unmap": {"done": 90}},
        "environment_faults": [], "interrupted": null, "in_flight": [],
        "failures": [{"kind": "invariant", "signature": "invariant: invariant # leak",
                      "message": "invariant 3: frame 0x1234 leaked", "op": 2,
                      "trace": trace.display().to_string(), "ops": 3}],
        "replay": "host-runner replay",
        "timeline": [{"seconds": 0.0, "sequences": 0, "ops": 0, "failures": 0},
                     {"seconds": 6.0, "sequences": 4, "ops": 900, "failures": 1},
                     {"seconds": 12.0, "sequences": 9, "ops": 1800, "failures": 1}]
    })
    .to_string()
}

#[test]
fn a_campaign_report_renders_in_a_browser() {
    let dir = out_dir().join("campaign");
    let _ = std::fs::remove_dir_all(&dir);
    let failures = dir.join("failures");
    std::fs::create_dir_all(&failures).expect("the failures directory");
    let doc: host_runner::fuzz::results::Document =
        serde_json::from_str(&campaign_summary(&failures)).expect("a fuzz summary");
    let reached = host_runner::coverage::Coverage::default();
    let page = host_runner::report::campaign::write(&dir, &doc, &reached, None)
        .expect("the campaign report is written");
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(
        html.contains(r#"<a href="failures/invariant-42-0123abcd.html">HTML report</a>"#),
        "{html}"
    );
    assert!(html.contains(r#"<svg id="ops-chart""#), "{html}");

    let Some(chromium) = chromium_or_skip(&page) else {
        return;
    };
    let shot = dir.join("campaign.png");
    let (ok, _, stderr) = browser(
        &chromium,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1200",
            "--hide-scrollbars",
        ],
    );
    assert!(
        ok && shot.is_file(),
        "chromium took no screenshot:\n{stderr}"
    );
    println!("screenshot: {}", shot.display());
    let dom = rendered_dom(&chromium, &page);
    assert!(dom.contains(r#"id="ops-chart""#) && dom.contains(r#"id="failure-0""#));
}
