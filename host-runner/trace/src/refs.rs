//! Symbolic references: an operation whose address is named by an earlier
//! answer instead of by its literal alone.
//!
//! A line may carry `"ref":{"op":12,"run":1,"plus":16}`: its address field
//! (`addr`, or `frame` for `free_frames`) is what operation 12 (0-based,
//! operations only) answered, plus `plus` bytes. The answers that name
//! something are `kmalloc`'s block, `valloc`'s range and `alloc_frames`'
//! runs (`run` picks one, default 0). The line keeps its literal: the value
//! the reference had when the trace was recorded, sent whenever the
//! reference does not resolve (operation 12 failed, or answered fewer runs).
//!
//! Why: a trace whose `kfree` or `free_frames` names a literal address only
//! reproduces while every earlier operation steers the allocator to hand
//! out that same address, so the minimizer must keep them all. With a
//! reference, the `kfree` frees whatever block operation 12 got, and the
//! operations that only steered the allocator can go.
//!
//! The fuzzer records references by [`Answers::infer`]: an operation aimed
//! at (or just beside) a block, range or frame run an earlier answer handed
//! out is recorded relative to that answer. Replay resolves them
//! ([`Answers::resolve`]) from the answers of the run in progress.

use protocol::{Response, PAGE_SIZE};
use serde::{Deserialize, Serialize};
use serde_with::serde_as;

use crate::numbers::Count;
use crate::op::{Op, OpKind};

/// A reference from an operation's address field to an earlier answer.
#[serde_as]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ref {
    /// The index of the operation whose answer is named.
    #[serde_as(as = "Count")]
    pub op: usize,
    /// Which frame run of an `alloc_frames` answer.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[serde_as(as = "Count")]
    pub run: u32,
    /// Bytes added to the answered address (negative: before it).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub plus: i64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

/// Whether `kind`'s answer names something a reference can point at.
pub fn answers_a_value(kind: OpKind) -> bool {
    matches!(kind, OpKind::Kmalloc | OpKind::Valloc | OpKind::AllocFrames)
}

/// The address field of `op` a reference sets, if it has one.
pub fn target_mut(op: &mut Op) -> Option<&mut u64> {
    match op {
        Op::Map { addr, .. }
        | Op::Unmap { addr, .. }
        | Op::Convert { addr, .. }
        | Op::Write { addr, .. }
        | Op::Read { addr, .. }
        | Op::Query { addr, .. }
        | Op::Vfree { addr, .. }
        | Op::MapFile { addr, .. }
        | Op::Evict { addr, .. }
        | Op::Kfree { addr, .. }
        | Op::Share { addr, .. } => Some(addr),
        Op::FreeFrames { frame, .. } => Some(frame),
        Op::Hello
        | Op::Ping { .. }
        | Op::Panic { .. }
        | Op::AllocFrames { .. }
        | Op::Valloc { .. }
        | Op::Stats
        | Op::Reset { .. }
        | Op::Kmalloc { .. }
        | Op::HeapScavenge { .. }
        | Op::CreateSpace { .. }
        | Op::SwitchSpace { .. }
        | Op::DestroySpace { .. } => None,
    }
}

/// The address field of `op`, if it has one.
pub fn target(op: &Op) -> Option<u64> {
    target_mut(&mut op.clone()).map(|a| *a)
}

/// Why a line's reference cannot stand (`index`: the line's operation;
/// `kind_of(i)`: the kind of operation `i`, one before it).
pub fn check(
    index: usize,
    op: &Op,
    r: &Ref,
    kind_of: impl FnOnce(usize) -> OpKind,
) -> Result<(), String> {
    if target(op).is_none() {
        return Err(format!(
            "{} has no address for a reference to set",
            op.kind().name()
        ));
    }
    if r.op >= index {
        return Err(format!(
            "refers to operation {}, which is not before this one (operation {index})",
            r.op
        ));
    }
    let named = kind_of(r.op);
    if !answers_a_value(named) {
        return Err(format!(
            "refers to operation {} ({}), whose answer names no address (kmalloc, valloc or alloc_frames do)",
            r.op,
            named.name()
        ));
    }
    if r.run > 0 && named != OpKind::AllocFrames {
        return Err(format!(
            "\"run\" {} names a frame run, but operation {} is {}",
            r.run,
            r.op,
            named.name()
        ));
    }
    Ok(())
}

/// One answer that handed something out: its operation, start and extent
/// in bytes (a frame run is one per run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Handed {
    op: usize,
    run: u32,
    kind: OpKind,
    start: u64,
    bytes: u64,
}

/// The answers of a run so far that named something, to resolve and to
/// infer references with.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// Every naming answer, in operation order.
    handed: Vec<Handed>,
    /// `handed[live..]` came after the last reset: what an operation can
    /// still be aimed at.
    live: usize,
}

impl Answers {
    pub fn new() -> Self {
        Answers::default()
    }

    /// Learns operation `index`'s answer.
    pub fn record(&mut self, index: usize, op: &Op, answer: &Response) {
        let answer = match answer {
            Response::Reclaimed { response, .. } => response,
            a => a,
        };
        let mut hand = |run: u32, kind, start, bytes| {
            self.handed.push(Handed {
                op: index,
                run,
                kind,
                start,
                bytes,
            })
        };
        match (op, answer) {
            (Op::Kmalloc { size, .. }, Response::Kmalloc { addr }) => {
                hand(0, OpKind::Kmalloc, *addr, *size)
            }
            (Op::Valloc { pages, .. }, Response::Valloc { addr }) => {
                hand(0, OpKind::Valloc, *addr, pages.saturating_mul(PAGE_SIZE))
            }
            (Op::AllocFrames { .. }, Response::Frames(runs)) => {
                for (i, run) in runs.iter().enumerate() {
                    let Ok(i) = u32::try_from(i) else { break };
                    hand(
                        i,
                        OpKind::AllocFrames,
                        run.start,
                        run.count.saturating_mul(PAGE_SIZE),
                    );
                }
            }
            (Op::Reset { .. }, Response::Done) => self.live = self.handed.len(),
            _ => {}
        }
    }

    /// The address `r` names in this run, if its operation answered one.
    pub fn value(&self, r: &Ref) -> Option<u64> {
        let i = self.handed.partition_point(|h| h.op < r.op);
        self.handed[i..]
            .iter()
            .take_while(|h| h.op == r.op)
            .find(|h| h.run == r.run)
            .map(|h| h.start.wrapping_add_signed(r.plus))
    }

    /// `op` with its address set from `r` when `r` resolves in this run;
    /// as written otherwise.
    pub fn resolve(&self, op: &Op, r: Option<&Ref>) -> Op {
        let mut op = op.clone();
        if let Some(v) = r.and_then(|r| self.value(r)) {
            if let Some(a) = target_mut(&mut op) {
                *a = v;
            }
        }
        op
    }

    /// The reference an operation aimed at something handed out since the
    /// last reset would be recorded with: the latest block, range or frame
    /// run of the kind the operation acts on that holds its address, or
    /// that it touches from one byte before or at the end.
    /// `kfree`, `write` and `read` are aimed at heap blocks, `vfree` at
    /// `valloc` ranges, `free_frames` at frame runs; other operations get
    /// no reference.
    pub fn infer(&self, op: &Op) -> Option<Ref> {
        let kind = match op {
            Op::Kfree { .. } | Op::Write { .. } | Op::Read { .. } => OpKind::Kmalloc,
            Op::Vfree { .. } => OpKind::Valloc,
            Op::FreeFrames { .. } => OpKind::AllocFrames,
            _ => return None,
        };
        let a = target(op)?;
        self.handed[self.live..]
            .iter()
            .rev()
            .filter(|h| h.kind == kind)
            .find_map(|h| {
                let off = a.wrapping_sub(h.start);
                let plus = if off == u64::MAX {
                    -1
                } else if a >= h.start && off <= h.bytes {
                    i64::try_from(off).ok()?
                } else {
                    return None;
                };
                Some(Ref {
                    op: h.op,
                    run: h.run,
                    plus,
                })
            })
    }
}
