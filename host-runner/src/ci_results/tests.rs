use std::time::Duration;

use super::*;
use crate::interrupt::Signal;

fn row(name: &str, failure: Option<&str>, class: ExitClass) -> CiRow {
    CiRow {
        name: name.into(),
        ops: 12,
        failure: failure.map(Into::into),
        class,
        time: Duration::from_millis(1500),
    }
}

fn rows() -> Vec<CiRow> {
    vec![
        row("smoke", None, ExitClass::Passed),
        row(
            "bug-x.jsonl",
            Some("    0 ✗ {\"op\":\"map\"}\nFAILED: divergence at op 3: expected done\nwalk of 0x1000"),
            ExitClass::VmmFailed,
        ),
        row(
            "pressure",
            Some("QEMU was killed by signal 9"),
            ExitClass::Environment,
        ),
        row(
            "fuzz (120s)",
            Some("interrupted"),
            ExitClass::Interrupted(Signal::Interrupt),
        ),
    ]
}

#[test]
fn junit_tells_vmm_failures_from_faults_of_the_machine() {
    let xml = junit(&rows(), Duration::from_secs(9)).unwrap();
    assert!(
        xml.contains(r#"tests="4" skipped="0" failures="1" errors="2""#),
        "{xml}"
    );
    assert!(xml.contains(r#"<testcase name="smoke" classname="vmmfuzz.ci""#));
    assert!(
        xml.contains(r#"<failure message="divergence at op 3: expected done" type="vmm_failed">"#),
        "{xml}"
    );
    assert!(xml.contains("walk of 0x1000"), "the whole failure: {xml}");
    assert!(
        xml.contains(r#"<error message="QEMU was killed by signal 9" type="environment""#),
        "{xml}"
    );
    assert!(xml.contains(r#"type="interrupted""#), "{xml}");
}

#[test]
fn json_has_the_job_verdict_and_every_row() {
    let v: serde_json::Value =
        serde_json::from_str(&json(&rows(), Duration::from_secs(9))).unwrap();
    assert_eq!(v["format"], JSON_FORMAT);
    assert_eq!(v["version"], JSON_VERSION);
    // The worst row decides: an interrupted job exits 130.
    assert_eq!(v["verdict"], "interrupted");
    assert_eq!(v["exit_code"], 130);
    let names: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["passed", "vmm_failed", "environment", "interrupted"]
    );
    assert!(v["rows"][0].get("failure").is_none());
    assert_eq!(v["rows"][1]["ops"], 12);
    assert_eq!(v["rows"][1]["message"], "divergence at op 3: expected done");
    assert_eq!(v["rows"][1]["seconds"], 1.5);
    let passed: serde_json::Value =
        serde_json::from_str(&json(&rows()[..1], Duration::ZERO)).unwrap();
    assert_eq!(
        (&passed["verdict"], &passed["exit_code"]),
        (&"passed".into(), &0.into())
    );
}

#[test]
fn results_are_written_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ci.xml");
    write_atomically(&path, "<a/>").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "<a/>");
    let e = write_atomically(&dir.path().join("no/such/dir/ci.json"), "{}").unwrap_err();
    assert!(e.to_string().contains("no/such/dir/ci.json"), "{e}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary left"
    );
}
