//! The report's content against the data it was made from: named cells'
//! states, the highlighted step, the folded steps, the outlined frames.

use std::collections::BTreeSet;

use oracle::checker::{Leaf, PresentKind, Step, TableRef, Translation};
use oracle::{ModelState, Walk, WalkLevel};
use protocol::{Hello, PhysRange, Privilege, Response, VirtRange};
use trace::replay::{StepRecord, Verdict};
use trace::{Entry, Failure, FailureKind, Op};

use super::frames::{self, FrameKind};
use super::page_map::{Cell, CellState, Region, PAGES};
use super::{render, FailureReport, Snapshot};

const BASE: u64 = 0x4000_0000;

/// A 1024-frame machine: the shared fixture's layout with small regions
/// and a swap area.
fn hello() -> Hello {
    Hello {
        protocol_version: protocol::PROTOCOL_VERSION,
        ram_bytes: 1024 * 4096,
        total_frames: 1024,
        boot_free_frames: 1008,
        frame_bitmap: PhysRange {
            start: 0x2000,
            end: 0x2080,
        },
        boot_reserved: vec![PhysRange {
            start: 0,
            end: 0x10000,
        }],
        kernel_image: PhysRange {
            start: 0x8000,
            end: 0x10000,
        },
        heap: VirtRange {
            start: 0xffff_c0a0_0000_0000,
            end: 0xffff_c0a0_0200_0000,
        },
        valloc: VirtRange {
            start: 0xffff_c0c0_0000_0000,
            end: 0xffff_c0c0_0010_0000,
        },
        swap: PhysRange {
            start: 0x20_0000,
            end: 0x20_4000,
        },
        heap_max_bytes: 0x1000,
        ..crate::test_fixtures::hello()
    }
}

fn step(index: usize, verdict: Verdict) -> StepRecord {
    let op = Op::Read {
        addr: BASE + 0x1000,
        len: 8,
        privilege: Privilege::User,
    };
    StepRecord {
        index,
        entry: Entry::from(op),
        answer: Some(Response::Checksum { checksum: 7 }),
        predicted: Some(Response::Checksum { checksum: 9 }),
        verdict,
    }
}

fn region() -> Region {
    let mut model: Vec<Cell> = (0..PAGES).map(|_| Cell::of_model(None)).collect();
    let mut guest: Vec<Cell> = (0..PAGES)
        .map(|_| Cell::of_guest(&Leaf::Unusable))
        .collect();
    // Page 1: the model expects allocate-on-write, the guest maps RAM.
    model[1] = Cell::of_model(Some(ModelState::AllocOnWrite));
    guest[1] = Cell::of_guest(&Leaf::Present {
        kind: PresentKind::Ram,
        writable: true,
        executable: false,
        frame: 0x14000,
    });
    // Page 2: both on swap slot 3 (no difference).
    model[2] = Cell::of_model(Some(ModelState::OnSwap { slot: 3 }));
    guest[2] = Cell::of_guest(&Leaf::OnSwap { slot: 3 });
    // Page 3: on swap, but in different slots.
    model[3] = Cell::of_model(Some(ModelState::OnSwap { slot: 4 }));
    guest[3] = Cell::of_guest(&Leaf::OnSwap { slot: 5 });
    Region {
        base: BASE,
        model,
        guest: Some(guest),
    }
}

fn report(steps: usize) -> FailureReport {
    let mut records: Vec<StepRecord> = (0..steps - 1).map(|i| step(i, Verdict::Ok)).collect();
    records.push(step(steps - 1, Verdict::Failed));
    let walk = Walk {
        tables: vec![TableRef {
            frame: 0x11000,
            level: 1,
            path: oracle::checker::Path {
                virt: BASE,
                steps: vec![],
            },
        }],
        translations: vec![Translation {
            virt: BASE + 0x1000,
            frame: 0x14000,
            writable: true,
            executable: false,
            kind: PresentKind::Ram,
            steps: [Step {
                table: 0,
                index: 0,
                raw: 0,
            }; 4],
        }],
    };
    let mut bitmap = vec![0u8; 128];
    bitmap[0] = 0xff; // frames 0..8
    bitmap[1] = 0xff; // frames 8..16
    bitmap[2] = 0b0011_0010; // 0x11 (the table) and 0x14, 0x15 (no owner) used
    let map = frames::build(
        &hello(),
        &bitmap,
        &walk,
        &BTreeSet::from([0x30_0000]),
        &[0x14000, 0x30_0000],
    );
    FailureReport {
        trace: "out/divergence-1.jsonl".into(),
        verdict: "FAILED: operation 3: read answered checksum 7, the model expects 9".into(),
        command: "host-runner replay out/divergence-1.jsonl".into(),
        failure: Some(Failure::new(
            FailureKind::Divergence,
            "operation 3: read …",
            Some(steps - 1),
        )),
        steps: records,
        snapshot: Snapshot {
            address: Some(BASE + 0x1008),
            regions: vec![region()],
            walk: vec![WalkLevel {
                name: "PML4",
                index: 1,
                table: 0x1000,
                raw: Ok(0x2027),
                flags: "[P W U A] sw=0b000".into(),
                leaf: None,
                next: Some(("table", 0x2000, "used".into())),
            }],
            frames: Some(map),
            notes: vec![],
        },
    }
}

#[test]
fn named_cells_hold_each_side_s_state_and_differences_are_marked() {
    let html = render(&report(4));
    assert!(
        html.contains(
            r#"<rect id="g-40001000" class="st-ram diff failing" data-state="present RAM""#
        ),
        "{html}"
    );
    assert!(html.contains(
        r#"<rect id="m-40001000" class="st-aow diff failing" data-state="allocate-on-write""#
    ));
    assert!(html.contains(r#"<rect id="g-40002000" class="st-swap" data-state="on swap""#));
    assert!(html.contains(r#"<rect id="m-40003000" class="st-swap diff""#));
    assert!(html.contains(r#"<rect id="g-40000000" class="st-unusable""#));
    assert!(html.contains("2 page(s) differ"));
    assert!(html.contains("guest 0x40001000: present RAM, writable frame 0x14000"));
}

#[test]
fn the_failing_step_is_highlighted_and_early_steps_fold() {
    let html = render(&report(4));
    assert!(
        html.contains(r#"<tr id="step-3" class="failing">"#),
        "{html}"
    );
    assert!(html.contains(r#"<tr id="step-2">"#));
    assert!(!html.contains("<details"), "4 steps fold nothing");
    let html = render(&report(40));
    assert!(
        html.contains("<details class=\"early\"><summary>27 earlier step(s)</summary>"),
        "{html}"
    );
    assert!(html.contains(r#"<tr id="step-39" class="failing">"#));
    // A memory check that failed after an operation whose answer was
    // right: that operation is the failing step.
    let mut r = report(4);
    r.steps[3].verdict = Verdict::Ok;
    r.failure = Some(Failure::new(
        FailureKind::Invariant,
        "memory check after operation 2",
        Some(2),
    ));
    let html = render(&r);
    assert!(
        html.contains(r#"<tr id="step-2" class="failing">"#),
        "{html}"
    );
    assert!(html.contains(r#"<tr id="step-3">"#));
}

#[test]
fn frames_are_coloured_by_owner_and_the_named_ones_outlined() {
    let r = report(2);
    let map = r.snapshot.frames.as_ref().unwrap();
    assert_eq!(map.kinds[0x1], FrameKind::PageTable, "the root");
    assert_eq!(map.kinds[0x11], FrameKind::PageTable);
    assert_eq!(map.kinds[0x14], FrameKind::Data);
    assert_eq!(map.kinds[0x15], FrameKind::UsedUnowned);
    assert_eq!(map.kinds[0x12], FrameKind::Free);
    assert_eq!(map.kinds[0x8], FrameKind::Kernel);
    assert_eq!(
        map.kinds[0x200],
        FrameKind::FreeButOwned,
        "the swap store, bit free"
    );
    assert_eq!(
        map.kinds[0x300],
        FrameKind::FreeButOwned,
        "a host frame, bit free"
    );
    let html = render(&r);
    assert!(
        html.contains(r#"<rect id="f-14" class="named" data-kind="data page""#),
        "{html}"
    );
    assert!(html.contains(r#"<rect id="f-300" class="named""#));
    assert!(html.contains(r#"class="fr-leak" data-first="21" data-count="1""#));
}

#[test]
fn the_page_is_self_contained() {
    let html = render(&report(3));
    assert!(html.starts_with("<!DOCTYPE html>"));
    for fetch in ["src=", "href=", "@import", "url(", "<script"] {
        assert!(!html.contains(fetch), "{fetch} in the page");
    }
    assert!(html.contains(r#"<p id="verdict" class="verdict failed">FAILED: operation 3"#));
    assert!(html.contains(r#"<code id="command">host-runner replay out/divergence-1.jsonl</code>"#));
    assert!(html.contains(r#"<li class="level present" id="walk-PML4">"#));
}

#[test]
fn model_and_guest_cells_agree_on_the_same_state() {
    let pairs = [
        (
            Some(ModelState::PresentRam {
                writable: false,
                executable: false,
            }),
            Leaf::Present {
                kind: PresentKind::Ram,
                writable: false,
                executable: false,
                frame: 0x5000,
            },
        ),
        (
            Some(ModelState::NotPresentMmap { file: 1, page: 2 }),
            Leaf::NotPresentMmap { file: 1, page: 2 },
        ),
        (
            Some(ModelState::PresentMmap {
                file: 1,
                page: 2,
                private: true,
            }),
            Leaf::Present {
                kind: PresentKind::MmapPrivate,
                writable: true,
                executable: false,
                frame: 0x6000,
            },
        ),
        (None, Leaf::Unusable),
    ];
    for (m, g) in pairs {
        let (m, g) = (Cell::of_model(m), Cell::of_guest(&g));
        assert_eq!((m.state, &m.key), (g.state, &g.key));
    }
    assert_eq!(
        Cell::of_guest(&Leaf::Corrupt("x")).state,
        CellState::Corrupt
    );
}

#[test]
fn a_report_is_written_whole_and_an_unwritable_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.html");
    super::write(&path, &report(2)).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), render(&report(2)));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary left"
    );
    assert!(super::write(&dir.path().join("missing/r.html"), &report(2)).is_err());
    assert_eq!(
        super::path_beside(std::path::Path::new("out/a-1.jsonl")),
        std::path::Path::new("out/a-1.html")
    );
}
