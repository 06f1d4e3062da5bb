//! A campaign in two real shards (`fuzz --shard 1/2` and `2/2`, each
//! leaving a result directory with `--results`), merged with
//! `host-runner merge`: the merged summary adds the shards' figures, its
//! coverage holds every edge either reached, its corpus every distinct
//! trace, and its report draws operations over time and lists guest/core
//! source lines. Needs `qemu-system-x86_64` and the built guest.

use std::path::Path;
use std::process::Command;

fn host_runner(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg"])
        .args(args)
        .output()
        .expect("host-runner runs");
    let text = crate::common::output_text(&out);
    (out.status.success(), text)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("written")).expect("JSON")
}

fn corpus_len(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("corpus"))
        .expect("a corpus directory")
        .count()
}

#[test]
fn two_real_shards_merge_into_one_result_directory() {
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| root.path().join(name);
    for shard in ["1/2", "2/2"] {
        let out = dir(&shard.replace('/', "-of-"));
        let (ok, text) = host_runner(&[
            "fuzz",
            "--seed",
            "0x2a",
            "--shard",
            shard,
            "--sequences",
            "2",
            "--ops",
            "40",
            "--fresh",
            "reset",
            "--results",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "shard {shard}:\n{text}");
        assert!(text.contains("campaign report: "), "{text}");
        for file in ["summary.json", "coverage.json", "index.html"] {
            assert!(out.join(file).is_file(), "shard {shard}: no {file}");
        }
        assert_eq!(json(&out.join("summary.json"))["shard"], shard);
    }
    let (a, b, merged) = (dir("1-of-2"), dir("2-of-2"), dir("merged"));
    let (ok, text) = host_runner(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("merged 2 shard(s) (1/2, 2/2)"), "{text}");

    let (sa, sb, m) = (
        json(&a.join("summary.json")),
        json(&b.join("summary.json")),
        json(&merged.join("summary.json")),
    );
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(n(&m, "sequences"), 4);
    assert_eq!(n(&m, "ops"), n(&sa, "ops") + n(&sb, "ops"));
    let edges = |v: &serde_json::Value| v["reached"]["guest_edges"].as_u64().unwrap();
    assert!(
        edges(&m) >= edges(&sa).max(edges(&sb)) && edges(&m) <= edges(&sa) + edges(&sb),
        "the merged edges are the union: {} of {} and {}",
        edges(&m),
        edges(&sa),
        edges(&sb)
    );
    assert_eq!(m["merged_from"], serde_json::json!(["1/2", "2/2"]));
    assert_eq!(m["failures"], serde_json::json!([]));
    let kept = corpus_len(&merged);
    assert!(
        kept >= corpus_len(&a).max(corpus_len(&b)) && kept <= corpus_len(&a) + corpus_len(&b),
        "{text}"
    );

    let page = std::fs::read_to_string(merged.join("index.html")).unwrap();
    assert!(page.contains(r#"<svg id="ops-chart""#), "no chart");
    assert!(
        page.contains(r#"data-file="guest/core/"#),
        "no guest/core file in the coverage section"
    );
    assert!(page.contains(r#"id="no-failures""#));
}
