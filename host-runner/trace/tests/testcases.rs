//! Every trace in `testcases/` and every example in its README parses, and
//! writes back to the same trace.

use std::path::PathBuf;

use trace::parse_str;

fn testcases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testcases")
}

fn check(name: &str, text: &str) {
    let t = parse_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(parse_str(&t.to_text()).unwrap(), t, "{name}");
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
fn every_testcase_parses() {
    for entry in std::fs::read_dir(testcases()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            check(
                &path.display().to_string(),
                &std::fs::read_to_string(&path).unwrap(),
            );
        }
    }
}
