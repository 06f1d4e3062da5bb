use protocol::{FrameRun, Privilege, Response};

use super::*;
use crate::format::{parse_str, Trace, TraceHeader};

const K: Privilege = Privilege::Kernel;

fn kmalloc(size: u64) -> Op {
    Op::Kmalloc {
        size,
        align: 16,
        privilege: K,
    }
}

fn kfree(addr: u64) -> Op {
    Op::Kfree { addr, privilege: K }
}

const HEADER: &str = r#"{"format":"vmmfuzz-trace","version":5}"#;

fn lines(ops: &[&str]) -> String {
    std::iter::once(HEADER)
        .chain(ops.iter().copied())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_reference_reads_and_writes_byte_for_byte() {
    let text = lines(&[
        r#"{"op":"kmalloc","size":32,"align":16,"as":"kernel"}"#,
        r#"{"op":"alloc_frames","count":4,"contiguous":false,"as":"kernel"}"#,
        r#"{"op":"kfree","addr":"0xffffc00001000000","as":"kernel","ref":{"op":0},"expect":"done"}"#,
        r#"{"op":"write","addr":"0xffffc0000100000f","len":2,"seed":"0x0","as":"kernel","ref":{"op":0,"plus":15}}"#,
        r#"{"op":"read","addr":"0xffffc00000ffffff","len":2,"as":"kernel","ref":{"op":0,"plus":-1}}"#,
        r#"{"op":"free_frames","frame":"0x5000","count":1,"as":"kernel","ref":{"op":1,"run":1,"plus":4096}}"#,
    ]);
    let t = parse_str(&text).expect("reads");
    let r: Vec<Option<Ref>> = t.entries.iter().map(|e| e.reference).collect();
    assert_eq!(r[0], None);
    assert_eq!(
        r[2],
        Some(Ref {
            op: 0,
            run: 0,
            plus: 0
        })
    );
    assert_eq!(r[4].map(|r| r.plus), Some(-1));
    assert_eq!(
        r[5],
        Some(Ref {
            op: 1,
            run: 1,
            plus: 4096
        })
    );
    let written = t.to_text();
    let expected = text + "\n";
    assert_eq!(written, expected);
}

#[test]
fn a_reference_that_cannot_stand_names_its_line_and_why() {
    let bad = |op: &str, why: &str| {
        let text = lines(&[
            r#"{"op":"kmalloc","size":32,"align":16,"as":"kernel"}"#,
            r#"{"op":"stats"}"#,
            op,
        ]);
        let e = parse_str(&text).expect_err(op).to_string();
        assert!(
            e.starts_with("line 4: field \"ref") && e.contains(why),
            "{op}: {e}"
        );
    };
    bad(r#"{"op":"stats","ref":{"op":0}}"#, "stats has no address");
    bad(
        r#"{"op":"kfree","addr":"0x0","as":"kernel","ref":{"op":2}}"#,
        "not before this one",
    );
    bad(
        r#"{"op":"kfree","addr":"0x0","as":"kernel","ref":{"op":1}}"#,
        "whose answer names no address",
    );
    bad(
        r#"{"op":"kfree","addr":"0x0","as":"kernel","ref":{"op":0,"run":1}}"#,
        "names a frame run",
    );
    bad(
        r#"{"op":"kfree","addr":"0x0","as":"kernel","ref":{"op":0,"by":1}}"#,
        "unknown field",
    );
    bad(
        r#"{"op":"kfree","addr":"0x0","as":"kernel","ref":12}"#,
        "ref",
    );
}

#[test]
fn removing_operations_moves_references_and_drops_those_to_removed_ones() {
    let mut t = Trace::from_ops(
        TraceHeader::default(),
        [kmalloc(8), kmalloc(8), Op::Stats, kfree(1), kfree(2)],
    );
    t.entries[3].reference = Some(Ref {
        op: 0,
        run: 0,
        plus: 0,
    });
    t.entries[4].reference = Some(Ref {
        op: 1,
        run: 0,
        plus: 0,
    });
    let mut cut = t.clone();
    cut.remove_ops(2..3);
    assert_eq!(cut.entries[2].reference.map(|r| r.op), Some(0));
    assert_eq!(cut.entries[3].reference.map(|r| r.op), Some(1));
    cut.remove_ops(0..1);
    assert_eq!(cut.entries[1].reference, None, "its answer is gone");
    assert_eq!(cut.entries[2].reference.map(|r| r.op), Some(0));
    assert_eq!(cut.entries[1].op, kfree(1), "the literal stays");
    // Written and read again, the moved references still stand.
    assert_eq!(parse_str(&cut.to_text()).expect("reads"), cut);
    // Appending moves the appended references with their operations.
    let mut two = cut.clone();
    two.append(&cut);
    assert_eq!(two.entries[5].reference.map(|r| r.op), Some(3));
}

#[test]
fn an_operation_aimed_at_what_an_answer_handed_out_refers_to_it() {
    let mut a = Answers::new();
    let block = 0xffff_c000_0100_0000;
    a.record(0, &kmalloc(64), &Response::Kmalloc { addr: block });
    a.record(
        1,
        &Op::AllocFrames {
            count: 3,
            contiguous: false,
            privilege: K,
        },
        &Response::Reclaimed {
            events: vec![],
            response: Box::new(Response::Frames(vec![
                FrameRun {
                    start: 0x10_0000,
                    count: 1,
                },
                FrameRun {
                    start: 0x20_0000,
                    count: 2,
                },
            ])),
        },
    );
    a.record(
        2,
        &Op::Valloc {
            pages: 2,
            privilege: K,
        },
        &Response::Valloc {
            addr: 0xffff_d000_0000_0000,
        },
    );
    let r = |op, run, plus| Some(Ref { op, run, plus });
    assert_eq!(a.infer(&kfree(block)), r(0, 0, 0));
    let write = |addr| Op::Write {
        addr,
        len: 8,
        seed: 1,
        privilege: K,
    };
    assert_eq!(a.infer(&write(block + 16)), r(0, 0, 16));
    assert_eq!(a.infer(&write(block + 64)), r(0, 0, 64), "its end");
    assert_eq!(a.infer(&write(block - 1)), r(0, 0, -1), "a byte before");
    assert_eq!(a.infer(&write(block + 65)), None);
    let free = |frame| Op::FreeFrames {
        frame,
        count: 1,
        privilege: K,
    };
    assert_eq!(a.infer(&free(0x20_1000)), r(1, 1, 0x1000));
    assert_eq!(
        a.infer(&Op::Vfree {
            addr: 0xffff_d000_0000_1000,
            pages: 1,
            privilege: K
        }),
        r(2, 0, 0x1000)
    );
    assert_eq!(
        a.infer(&Op::Map {
            addr: block,
            pages: 1,
            writable: true,
            contiguous: false,
            privilege: K
        }),
        None,
        "a map is not aimed at heap blocks"
    );
    // Resolving sets the address from this run's answers.
    assert_eq!(a.resolve(&kfree(0), r(0, 0, 8).as_ref()), kfree(block + 8));
    assert_eq!(
        a.resolve(&free(0), r(1, 2, 0).as_ref()),
        free(0),
        "no third run: the literal"
    );
    // After a reset nothing handed out before is aimed at, but references
    // still resolve.
    a.record(3, &Op::Reset { privilege: K }, &Response::Done);
    assert_eq!(a.infer(&kfree(block)), None);
    assert_eq!(
        a.value(&Ref {
            op: 0,
            run: 0,
            plus: 0
        }),
        Some(block)
    );
}

#[test]
fn removing_where_is_removing_one_by_one() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..200 {
        let n = rng.random_range(1..40);
        let ops: Vec<Op> = (0..n)
            .map(|i| match rng.random_range(0..3) {
                0 => kmalloc(i),
                1 => kfree(i),
                _ => Op::Stats,
            })
            .collect();
        let mut t = Trace::from_ops(TraceHeader::default(), ops);
        for i in 1..t.len() {
            if matches!(t.entries[i].op, Op::Kfree { .. }) && rng.random_bool(0.7) {
                t.entries[i].reference = Some(Ref {
                    op: rng.random_range(0..i),
                    run: 0,
                    plus: 0,
                });
            }
        }
        let mut at = 0;
        while at < t.len() {
            let b = rng.random_range(1..=(t.len() - at).min(5));
            t.header.batches.push(b as u32);
            at += b;
        }
        let drop_kind = if rng.random_bool(0.5) {
            OpKind::Stats
        } else {
            OpKind::Kmalloc
        };
        let mut one_by_one = t.clone();
        for i in (0..t.len()).rev() {
            if t.entries[i].op.kind() == drop_kind {
                one_by_one.remove_ops(i..i + 1);
            }
        }
        let mut at_once = t.clone();
        let n = at_once.remove_where(|op| op.kind() == drop_kind);
        assert_eq!(at_once, one_by_one);
        assert_eq!(n, t.len() - at_once.len());
    }
}
