//! Merging shards written from real data structures (a campaign's
//! summary, saved traces, coverage, corpus traces) as `fuzz --results`
//! lays them out: one failure per signature with the shortest reproducer,
//! distinct failures kept, corpora and coverage a union; and each kind of
//! bad shard refused with what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::Privilege;
use trace::{Failure, FailureKind, Minimized as Shrunk, Op, Trace, TraceHeader};

use super::*;
use crate::fuzz::results::{document, tests::summary};
use crate::fuzz::results_dir::{self, CORPUS, COVERAGE, FAILURES, SUMMARY};
use crate::fuzz::FoundFailure;
use crate::minimize::MinimizeReport;
use crate::report::campaign::tests::reached;

/// No kernel: the report says guest lines are not shown, quickly.
const NO_KERNEL: &str = "/nonexistent/kernel";

fn ops(n: usize, page: u64) -> Vec<Op> {
    (0..n as u64)
        .map(|i| Op::Query {
            addr: (page + i) * 4096,
            pages: 1,
            privilege: Privilege::User,
        })
        .collect()
}

/// A failure saved in `dir/failures` as `name.jsonl` with `n` ops, and
/// its minimized form of `min` ops when given.
fn failure(dir: &Path, name: &str, message: &str, n: usize, min: Option<usize>) -> FoundFailure {
    let failure = Failure::new(FailureKind::Invariant, message, Some(n - 1));
    let header = TraceHeader {
        failure: Some(failure.clone()),
        ..TraceHeader::default()
    };
    let path = dir.join(FAILURES).join(format!("{name}.jsonl"));
    trace::save_atomically(&path, &Trace::from_ops(header.clone(), ops(n, 0))).unwrap();
    std::fs::write(crate::report::path_beside(&path), format!("<p>{name}</p>")).unwrap();
    let minimized = min.map(|m| {
        let t = Trace::from_ops(header.clone(), ops(m, 0));
        let p = dir.join(FAILURES).join(format!("{name}-min.jsonl"));
        trace::save_atomically(&p, &t).unwrap();
        Ok(MinimizeReport {
            reproduced: failure.clone(),
            original_ops: n,
            result: Shrunk {
                trace: t,
                attempts: 3,
                steps: Vec::new(),
                timed_out: false,
            },
            path: p,
            elapsed: Duration::from_secs(1),
            rate: None,
        })
    });
    FoundFailure {
        failure,
        path,
        ops: n,
        minimized,
    }
}

/// Writes a shard's result directory at `dir` as `fuzz --results` does.
fn shard(dir: &Path, label: &str, found: Vec<FoundFailure>, hits: Vec<u64>, corpus: &[u64]) {
    let mut s = summary(found);
    s.shard = label.parse().unwrap();
    for &page in corpus {
        let t = Trace::from_ops(TraceHeader::default(), ops(3, page));
        let key = crate::fuzz::corpus::key(&t);
        trace::save_atomically(
            dir.join(CORPUS).join(format!("corpus-{key:016x}.jsonl")),
            &t,
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.join(CORPUS)).unwrap();
    let doc = document(&s);
    results_dir::write(dir, &doc, &reached(hits), Some(Path::new(NO_KERNEL))).unwrap();
}

/// Two shards: the same leak in both (40 ops minimized to 9 in the
/// first, 6 ops unminimized in the second), a distinct failure in the
/// first; corpora sharing one trace; edges 0 and 1 hit.
fn two_shards(root: &Path) -> (PathBuf, PathBuf) {
    let (a, b) = (root.join("run-a"), root.join("b"));
    let fa = vec![
        failure(
            &a,
            "leak-a",
            "invariant 3: frame 0x1000 leaked",
            40,
            Some(9),
        ),
        failure(
            &a,
            "tlb-a",
            "invariant 7: stale TLB entry at 0x4000",
            12,
            None,
        ),
    ];
    shard(&a, "1/2", fa, vec![1, 0, 0], &[10, 20]);
    let fb = vec![failure(
        &b,
        "leak-b",
        "invariant 3: frame 0x2000 leaked",
        6,
        None,
    )];
    shard(&b, "2/2", fb, vec![0, 2, 0], &[20, 30]);
    // A shard's directory moved (a CI artifact downloaded elsewhere): its
    // summary's paths are stale, its files found by name.
    let moved = root.join("a");
    std::fs::rename(&a, &moved).unwrap();
    (moved, b)
}

#[test]
fn the_same_failure_once_with_its_shortest_reproducer_and_the_rest_a_union() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(root.path());
    let out = root.path().join("merged");
    let m = run(&[a, b], &out, Some(Path::new(NO_KERNEL))).unwrap();

    let sigs: Vec<&str> = m
        .doc
        .failures
        .iter()
        .map(|f| f.signature.as_str())
        .collect();
    assert_eq!(sigs.len(), 2, "{sigs:?}");
    let f = &m.doc.failures[0];
    assert_eq!(f.occurrences, 2);
    assert_eq!(f.reproducer_ops(), 6, "the second shard's 6 ops beat 9");
    assert!(f.minimized.is_none());
    assert_eq!(Path::new(&f.trace), out.join(FAILURES).join("leak-b.jsonl"));
    assert_eq!(
        f.report.as_deref().map(Path::new),
        Some(out.join(FAILURES).join("leak-b.html").as_path())
    );
    assert_eq!(m.doc.failures[1].occurrences, 1);
    assert!(m.doc.failures[1].message.contains("stale TLB"));
    assert!(
        !out.join(FAILURES).join("leak-a.jsonl").exists(),
        "the longer reproducer is not copied"
    );
    assert!(
        m.to_string().contains("2 signature(s) kept of 3 found"),
        "{m}"
    );

    // Figures summed, coverage a union, the timelines summed.
    assert_eq!((m.doc.sequences, m.doc.ops), (10, 1600));
    assert_eq!(m.doc.merged_from, ["1/2", "2/2"]);
    assert_eq!(m.doc.shard, "1/2,2/2");
    assert_eq!(m.coverage.edges.as_ref().unwrap().all_hits(), &[1, 2, 0]);
    assert_eq!(m.doc.reached.guest_edges, 2);
    assert_eq!(m.doc.timeline.last().unwrap().ops, 1600);
    assert_eq!(
        m.doc.fresh_state[0],
        "shard 1/2: boot not measured, reset not measured"
    );
    assert_eq!(
        m.doc.environment_faults,
        [
            "shard 1/2: QEMU killed by signal 9; retried",
            "shard 2/2: QEMU killed by signal 9; retried"
        ]
    );
    assert_eq!(
        m.coverage.model.transitions().map(|(_, n)| n).sum::<u64>(),
        2
    );
    // Corpora: three distinct traces of four.
    assert_eq!((m.corpus.kept, m.corpus.duplicates), (3, 1));
    assert_eq!(std::fs::read_dir(out.join(CORPUS)).unwrap().count(), 3);

    // The merged directory is a shard directory too: it reads back, and
    // its report links the kept failure's report.
    let back = Shard::open(&out).unwrap();
    assert_eq!(back.doc, m.doc);
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        page.contains(r#"<a href="failures/leak-b.html">HTML report</a>"#),
        "{page}"
    );
    assert!(page.contains("merged from 2 shards"), "{page}");
}

fn error(dirs: &[&Path], out: &Path) -> (MergeError, String) {
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    let e = run(&dirs, out, Some(Path::new(NO_KERNEL))).unwrap_err();
    let text = e.to_string();
    (e, text)
}

#[test]
fn bad_shards_are_refused_saying_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(root.path());
    let out = root.path().join("merged");

    let (e, text) = error(&[&a, &root.path().join("nope")], &out);
    assert!(
        matches!(e, MergeError::Missing { .. }) && e.is_input(),
        "{text}"
    );
    assert!(text.contains("fuzz --results DIR"), "{text}");
    assert!(!out.exists(), "nothing written before every shard is read");

    let (e, text) = error(&[&a, &b], &a);
    assert!(matches!(e, MergeError::OutIsShard(_)), "{text}");

    std::fs::remove_file(b.join(FAILURES).join("leak-b.jsonl")).unwrap();
    let (e, text) = error(&[&a, &b], &out);
    assert!(matches!(e, MergeError::Missing { .. }), "{text}");
    assert!(text.contains("failures/leak-b.jsonl"), "{text}");

    std::fs::write(
        b.join(SUMMARY),
        "{\"format\":\"vmmfuzz-fuzz\",\"version\":1,",
    )
    .unwrap();
    let (e, text) = error(&[&a, &b], &out);
    assert!(matches!(e, MergeError::Malformed { .. }), "{text}");

    std::fs::write(b.join(SUMMARY), r#"{"format":"vmmfuzz-fuzz","version":9}"#).unwrap();
    let (e, text) = error(&[&a, &b], &out);
    assert!(
        matches!(e, MergeError::Version { version: 9, .. }),
        "{text}"
    );

    // Coverage of another kernel build (4 edges, not 3).
    let c = root.path().join("c");
    shard(&c, "1/1", Vec::new(), vec![1, 1, 1, 1], &[]);
    let (e, text) = error(&[&a, &c], &out);
    assert!(matches!(e, MergeError::Coverage { .. }), "{text}");
    assert!(text.contains("same guest kernel"), "{text}");

    std::fs::remove_file(c.join(COVERAGE)).unwrap();
    let (_, text) = error(&[&c], &out);
    assert!(text.contains("coverage.json is missing"), "{text}");
}
