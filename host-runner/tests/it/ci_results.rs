//! The CI job's `--junit` and `--json` files, from the real binary on the
//! real guest: a trace that passes, one whose answer diverges from its
//! `expect` (a VMM failure), each through the ring and on the serial line,
//! and the rows around them.

use std::process::Command;

const FAILING: &str = r#"{"format":"vmmfuzz-trace","version":5,"ram_mib":128,"note":"a map that is done, expected refused: a divergence"}
{"op":"map","addr":"0x40000000","pages":1,"as":"user","expect":{"error":"reserved"}}
"#;

#[test]
fn the_ci_job_writes_junit_and_json_beside_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    let passing = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testcases/refs-heap-and-frames.jsonl"
    );
    std::fs::copy(passing, cases.join("a-passes.jsonl")).unwrap();
    std::fs::write(cases.join("b-diverges.jsonl"), FAILING).unwrap();
    let (xml, json) = (dir.path().join("ci.xml"), dir.path().join("ci.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg", "ci", "--fuzz-secs", "0", "--testcases"])
        .arg(&cases)
        .arg("--junit")
        .arg(&xml)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "the VMM failed:\n{stdout}");
    let xml = std::fs::read_to_string(&xml).unwrap();
    assert!(
        xml.contains(r#"tests="6" skipped="0" failures="2" errors="0""#),
        "smoke, two traces through the ring and on the serial line, pressure:\n{xml}"
    );
    assert!(xml.contains(r#"<testcase name="a-passes.jsonl" classname="vmmfuzz.ci""#));
    assert!(
        xml.contains(r#"<failure message="divergence at op 0"#),
        "{xml}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        (v["verdict"].as_str(), v["exit_code"].as_u64()),
        (Some("vmm_failed"), Some(1))
    );
    let rows: Vec<(&str, &str)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [
            ("smoke", "passed"),
            ("a-passes.jsonl", "passed"),
            ("b-diverges.jsonl", "vmm_failed"),
            ("serial: a-passes.jsonl", "passed"),
            ("serial: b-diverges.jsonl", "vmm_failed"),
            ("pressure (32 MiB)", "passed"),
        ]
    );
}

/// `--report DIR`: the CI job's fuzz campaign (two seconds of it here)
/// leaves its campaign report there.
#[test]
fn the_ci_job_writes_its_campaign_report() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    let report = dir.path().join("fuzz-report");
    let out = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .current_dir(dir.path())
        .args(["--accel", "tcg", "ci", "--fuzz-secs", "2", "--testcases"])
        .arg(&cases)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let text = crate::common::output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let page = std::fs::read_to_string(report.join("index.html"))
        .unwrap_or_else(|e| panic!("no campaign report: {e}\n{text}"));
    assert!(page.contains("vmmfuzz campaign report"), "{page}");
    assert!(page.contains(r#"id="no-failures""#), "{page}");
    assert!(page.contains(r#"data-file="guest/core/"#), "no guest lines");
}
