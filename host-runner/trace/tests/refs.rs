//! References to earlier answers: how a line writes and reads them, how
//! the fuzzer infers them and edits keep them right; and, run against a
//! fake heap, that replay sends what a reference resolves to and the
//! minimizer drops the operations that only steered the allocator.

use futures::executor::block_on;
use protocol::{Error, FrameRun, Privilege, Request, Response};
use trace::minimize::Step;
use trace::replay::{BatchRun, Depth};
use trace::{
    parse_str, Answers, Budget, Executor, Failure, FailureKind, Op, OpKind, Outcome, Ref,
    RunOptions, Target, Trace, TraceHeader,
};

const K: Privilege = Privilege::Kernel;

/// A heap that hands out block `n` (0-based, counting every `kmalloc`) at
/// `0x1000 * (n + 1)`, and a bug: freeing a 7-byte block fails.
#[derive(Default)]
struct FakeHeap {
    handed: u64,
    live: Vec<(u64, u64)>,
    sent: Vec<Vec<Request>>,
}

impl Target for FakeHeap {
    async fn batch(&mut self, first: usize, requests: &[Request], _: bool) -> BatchRun {
        self.sent.push(requests.to_vec());
        let mut out = BatchRun::default();
        for (i, r) in requests.iter().enumerate() {
            let answer = match *r {
                Request::Kmalloc { size, .. } => {
                    self.handed += 1;
                    let addr = 0x1000 * self.handed;
                    self.live.push((addr, size));
                    Response::Kmalloc { addr }
                }
                Request::Kfree { addr, .. } => match self.live.iter().position(|b| b.0 == addr) {
                    Some(b) if self.live[b].1 == 7 => {
                        out.failure = Some(Failure::new(
                            FailureKind::Invariant,
                            "freeing a 7-byte block corrupted the heap",
                            Some(first + i),
                        ));
                        out.answers.push(Response::Done);
                        return out;
                    }
                    Some(b) => {
                        self.live.remove(b);
                        Response::Done
                    }
                    None => Response::Error(Error::InvalidState { addr }),
                },
                _ => Response::Done,
            };
            out.answers.push(answer);
        }
        out
    }

    async fn check(&mut self, _: Option<usize>, _: Depth) -> Result<(), Failure> {
        Ok(())
    }
}

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

/// Runs each trace on a fresh [`FakeHeap`], references resolved by replay.
struct HeapRuns;

impl Executor for HeapRuns {
    async fn run(&mut self, t: &Trace) -> Outcome {
        trace::run_outcome(t, &mut FakeHeap::default(), RunOptions::default()).await
    }
}

fn run(t: &Trace) -> (Outcome, Vec<Vec<Request>>) {
    let mut heap = FakeHeap::default();
    let outcome = block_on(trace::run_outcome(t, &mut heap, RunOptions::default()));
    (outcome, heap.sent)
}

#[test]
fn replay_sends_what_a_reference_resolves_to() {
    // Recorded when the block was at 0xdead000; this heap hands out 0x1000.
    let mut t = Trace::from_ops(TraceHeader::default(), [kmalloc(16), kfree(0xdead_0000)]);
    t.entries[1].reference = Some(Ref {
        op: 0,
        run: 0,
        plus: 0,
    });
    // Both in one batch: the kfree must wait for the kmalloc's answer.
    t.header.batches = vec![2];
    let (outcome, sent) = run(&t);
    assert_eq!(outcome, Outcome::Passed);
    assert_eq!(sent.len(), 2, "the batch is cut before the reference");
    assert_eq!(sent[1], [kfree(0x1000).to_request()]);
    // Without the reference the literal goes, and misses.
    t.entries[1].reference = None;
    let mut heap = FakeHeap::default();
    let report = block_on(trace::run(
        &t,
        &mut heap,
        RunOptions::default(),
        &mut |_| {},
    ));
    assert_eq!(heap.sent.len(), 1);
    assert_eq!(
        report.steps[1].answer,
        Some(Response::Error(Error::InvalidState { addr: 0xdead_0000 }))
    );
}

/// Five blocks that only move the sixth, a 7-byte block, to 0x6000, then
/// its `kfree`: with the literal, every steering `kmalloc` must stay; with
/// a reference the trace minimizes to the two operations the bug needs.
#[test]
fn the_minimizer_drops_operations_that_only_steered_the_allocator() {
    let mut ops: Vec<Op> = (0..5).map(|_| kmalloc(16)).collect();
    ops.extend([kmalloc(7), kfree(0x6000)]);
    let literal = Trace::from_ops(TraceHeader::default(), ops);
    let mut referenced = literal.clone();
    referenced.entries[6].reference = Some(Ref {
        op: 5,
        run: 0,
        plus: 0,
    });
    let minimized = |t: &Trace| {
        let Outcome::Failed(f) = run(t).0 else {
            panic!("the trace fails")
        };
        let target = f.signature();
        let mut exec = HeapRuns;
        let m = block_on(trace::minimize(
            t,
            &target,
            &mut exec,
            Budget::default().with_max_attempts(500),
            &mut |_: &Step| {},
        ));
        assert_eq!(
            run(&m.trace).0.failure().map(Failure::signature),
            Some(target.clone())
        );
        m.trace
    };
    assert_eq!(minimized(&literal).len(), 7, "the literal needs them all");
    let m = minimized(&referenced);
    assert_eq!(
        m.ops().cloned().collect::<Vec<_>>(),
        [kmalloc(7), kfree(0x6000)]
    );
    assert_eq!(
        m.entries[1].reference.map(|r| r.op),
        Some(0),
        "moved with its operation"
    );
}

/// In a long trace, whole kinds that play no part go in one run each.
#[test]
fn a_long_trace_loses_whole_kinds_first() {
    let mut ops = Vec::new();
    for i in 0..60 {
        ops.push(Op::Stats);
        ops.push(Op::Ping { nonce: i });
        if i % 10 == 0 {
            ops.push(kmalloc(16));
        }
    }
    let blocks = ops
        .iter()
        .filter(|o| matches!(o, Op::Kmalloc { .. }))
        .count();
    ops.extend([kmalloc(7), kfree(0x1000 * (blocks as u64 + 1))]);
    let mut t = Trace::from_ops(TraceHeader::default(), ops);
    let last = t.len() - 1;
    t.entries[last].reference = Some(Ref {
        op: last - 1,
        run: 0,
        plus: 0,
    });
    let Outcome::Failed(f) = run(&t).0 else {
        panic!("fails")
    };
    let mut steps = Vec::new();
    let m = block_on(trace::minimize(
        &t,
        &f.signature(),
        &mut HeapRuns,
        Budget::default(),
        &mut |s: &Step| steps.push(s.what.clone()),
    ));
    assert_eq!(m.trace.len(), 2, "{steps:?}");
    assert_eq!(
        steps[..2],
        ["removed all 60 ping ops", "removed all 60 stats ops"],
        "{steps:?}"
    );
}

/// A header of the version this build writes, so that a trace reads and
/// writes back byte for byte.
fn header() -> String {
    format!(
        r#"{{"format":"vmmfuzz-trace","version":{}}}"#,
        trace::format::FORMAT_VERSION
    )
}

fn lines(ops: &[&str]) -> String {
    std::iter::once(header())
        .chain(ops.iter().map(|s| s.to_string()))
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
            executable: false,
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
