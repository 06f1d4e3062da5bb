//! The campaign report's content against the data it was made from: the
//! failure rows and their links, the guest's source files, the chart.

use std::collections::BTreeMap;
use std::path::Path;

use oracle::coverage::{
    AnswerClass, Caller, Event, Observation, RequestKind, StateKind, Transition,
};
use trace::{Failure, FailureKind};

use super::*;
use crate::coverage::report::{FunctionCoverage, LineCoverage, Ran, Tally};
use crate::coverage::symbols::Origin;
use crate::coverage::{EdgeHits, KernelId};
use crate::fuzz::results::{document, tests::summary};
use crate::fuzz::FoundFailure;

/// A coverage with guest edges of a made-up kernel and one model
/// transition and event.
pub(crate) fn reached(hits: Vec<u64>) -> Coverage {
    let kernel = KernelId {
        edges: hits.len() as u64,
        pc_table_crc: 0x5eed,
    };
    let mut c = Coverage {
        edges: Some(EdgeHits::from_hits(kernel, hits)),
        ..Coverage::default()
    };
    c.model.add(&Observation {
        transitions: vec![Transition {
            request: RequestKind::Map,
            caller: Caller::User,
            from: Some(StateKind::Unusable),
            answer: AnswerClass::Ok,
            reclaimed: false,
        }],
        events: vec![Event::RangeCrossesTable],
    });
    c
}

/// A failure saved at `path` (its trace of `ops` operations).
pub(crate) fn found(message: &str, path: &Path, ops: usize) -> FoundFailure {
    FoundFailure {
        failure: Failure::new(FailureKind::Invariant, message, Some(ops - 1)),
        path: path.to_path_buf(),
        ops,
        minimized: None,
    }
}

fn guest() -> GuestReport {
    let core = "guest/core/src/vmm/map.rs";
    GuestReport {
        kernel: KernelId {
            edges: 2,
            pc_table_crc: 0x5eed,
        },
        by_origin: BTreeMap::from([(Origin::Core, Tally::default())]),
        functions: vec![FunctionCoverage {
            origin: Origin::Core,
            file: core.into(),
            function: "vmm_core::vmm::map::map".into(),
            line: 40,
            edges: 2,
            edges_hit: 1,
            hits: 7,
            ran: Ran::default(),
        }],
        lines: [(40, 7), (41, 0)]
            .map(|(line, hits)| LineCoverage {
                origin: Origin::Core,
                file: core.into(),
                line,
                edges: 1,
                hits,
                ran: Ran::default(),
            })
            .to_vec(),
        ran: None,
        waits: Ran::default(),
    }
}

#[test]
fn failures_link_their_reports_and_the_guest_s_files_and_chart_are_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("failures");
    std::fs::create_dir_all(&saved).unwrap();
    let (a, b) = (saved.join("a.jsonl"), saved.join("b.jsonl"));
    for p in [&a, &b] {
        std::fs::write(p, "{}\n").unwrap();
    }
    std::fs::write(crate::report::path_beside(&a), "<html></html>").unwrap();
    // Two failures of one signature (the numbers differ), the second
    // shorter; no report beside it.
    let s = summary(vec![
        found("invariant 3: frame 0x1000 leaked", &a, 40),
        found("invariant 3: frame 0x2000 leaked", &b, 9),
    ]);
    let doc = document(&s);
    assert_eq!(doc.failures[0].signature, doc.failures[1].signature);
    let page = write(dir.path(), &doc, &reached(vec![3, 0]), None).unwrap();
    assert_eq!(page, dir.path().join("index.html"));
    let html = std::fs::read_to_string(&page).unwrap();
    // One row for the signature, found twice, the 9-op trace kept.
    assert_eq!(html.matches(r#"<tr id="failure-"#).count(), 1, "{html}");
    assert!(html.contains("2×"), "{html}");
    assert!(
        html.contains(r#"<a href="failures/b.jsonl">9 ops</a>"#),
        "{html}"
    );
    assert!(html.contains("(HTML report not found)"), "{html}");
    assert!(html.contains("9 ops</a> (not minimized)"), "{html}");
    assert!(html.contains("<th>fresh state</th>"), "{html}");
    assert!(html.contains("FAILED: 2 failure(s), 1 signature(s)"));
    assert!(html.contains(r#"<svg id="ops-chart""#), "{html}");
    assert!(html.contains(r#"id="transitions""#) && html.contains("range crosses a page table"));
    // The made-up kernel is not the built one: the page says so.
    assert!(html.contains(r#"id="no-guest-coverage""#), "{html}");

    // The first failure's report, linked from a page elsewhere: copied.
    let elsewhere = tempfile::tempdir().unwrap();
    let s = summary(vec![found("invariant 3: frame 0x1000 leaked", &a, 40)]);
    let html = render(&Campaign {
        doc: &document(&s),
        reached: &reached(vec![3, 0]),
        guest: Ok(guest()),
        links: links(elsewhere.path(), &document(&s)).unwrap(),
    });
    assert!(
        html.contains(r#"<a href="failures/a.html">HTML report</a>"#),
        "{html}"
    );
    assert!(elsewhere.path().join("failures/a.html").is_file());
    assert!(elsewhere.path().join("failures/a.jsonl").is_file());
    // The coverage section lists the guest/core file and its lines.
    assert!(
        html.contains(r#"data-file="guest/core/src/vmm/map.rs""#),
        "{html}"
    );
    assert!(html.contains("vmm_core::vmm::map::map"), "{html}");
    assert!(
        html.contains(r#"<tr class="cold"><td class="num">41</td>"#),
        "{html}"
    );
}

#[test]
fn without_counters_or_failures_the_page_says_so() {
    let doc = document(&summary(Vec::new()));
    let none = Coverage::default();
    let html = render(&Campaign {
        doc: &doc,
        reached: &none,
        guest: guest_report(&none, None),
        links: Vec::new(),
    });
    assert!(html.contains(r#"id="no-failures""#), "{html}");
    assert!(html.contains("no guest counters were read"), "{html}");
    assert!(html.contains(r#"class="verdict passed""#), "{html}");
    assert_eq!(
        href(Path::new("failures/a b.jsonl")),
        "failures/a%20b.jsonl"
    );
}
