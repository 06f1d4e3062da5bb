//! Every trace in `testcases/` and every example in its README parses, and
//! writes back to the same trace; the traces written by the runner (every
//! `testcases/*.jsonl`, and the shared traces when they are there) write
//! back byte for byte, less their comment lines and with an older
//! header's version written as the current one (a trace is always written
//! in the current version).

use std::path::{Path, PathBuf};

use trace::format::{FORMAT_VERSION, READ_VERSIONS};
use trace::parse_str;

fn testcases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testcases")
}

fn check(name: &str, text: &str) {
    let t = parse_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(parse_str(&t.to_text()).unwrap(), t, "{name}");
}

/// What writing `text` back gives: its lines less comments and blank
/// lines, older versions written as the current one.
fn written_back(text: &str) -> String {
    let out: String = text
        .lines()
        .filter(|l| {
            let t = l.trim();
            !(t.is_empty() || t.starts_with('#') || t.starts_with("//"))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    for old in READ_VERSIONS.iter().filter(|&&v| v != FORMAT_VERSION) {
        let prefix = format!("{{\"format\":\"vmmfuzz-trace\",\"version\":{old}");
        if let Some(rest) = out.strip_prefix(&prefix) {
            return format!("{{\"format\":\"vmmfuzz-trace\",\"version\":{FORMAT_VERSION}{rest}");
        }
    }
    out
}

/// Every `.jsonl` file in `dir` parses and writes back byte for byte;
/// answers how many.
fn round_trip_dir(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            let t = parse_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let back = t.to_text();
            let want = written_back(&text);
            if back != want {
                let line = back.lines().zip(want.lines()).position(|(a, b)| a != b);
                panic!(
                    "{}: written back differently (first differing line {line:?}):\n{}",
                    path.display(),
                    line.map_or("", |i| back.lines().nth(i).unwrap_or(""))
                );
            }
            n += 1;
        }
    }
    n
}

#[test]
fn readme_examples_parse() {
    let readme = std::fs::read_to_string(testcases().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```jsonl\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or(""))
        .collect();
    assert!(blocks.len() >= 2);
    for (i, block) in blocks.iter().enumerate() {
        check(&format!("README block {i}"), block);
    }
}

#[test]
fn every_testcase_writes_back_byte_for_byte() {
    let n = round_trip_dir(&testcases());
    assert!(n >= 29, "only {n} testcases");
}

#[test]
fn shared_traces_write_back_byte_for_byte() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces");
    if !dir.is_dir() {
        println!("SKIPPED: no shared traces at {}", dir.display());
        return;
    }
    let n = round_trip_dir(&dir);
    println!("{n} shared traces written back byte for byte");
}
