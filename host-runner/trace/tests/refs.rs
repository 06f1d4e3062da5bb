//! References to earlier answers, run against a fake heap: replay sends
//! what the reference resolves to, and the minimizer drops the operations
//! that only steered the allocator.

use futures::executor::block_on;
use protocol::{Error, Privilege, Request, Response};
use trace::minimize::Step;
use trace::replay::{BatchRun, Depth};
use trace::{
    Budget, Executor, Failure, FailureKind, Op, Outcome, Ref, RunOptions, Target, Trace,
    TraceHeader,
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
