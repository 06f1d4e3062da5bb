//! Simpler variants of one operation's arguments, simplest first: the
//! candidates the minimizer tries once it cannot remove more operations.

use protocol::{Privilege, MAX_ALLOC_FRAMES, MAX_QUERY_PAGES, MAX_TOUCH_LEN, PAGE_SIZE};

use crate::op::Op;

/// A variant of an operation and what was simplified, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub op: Op,
    pub what: String,
}

/// Lower, rounder addresses in the same canonical half: the half's start,
/// then `addr` rounded down to 512 GiB, 1 GiB, 2 MiB and a page. An address
/// that crosses a boundary keeps doing so only if the failure needs it: the
/// predicate decides.
pub fn smaller_addrs(addr: u64) -> Vec<u64> {
    let half_start = if addr >= 0xffff_8000_0000_0000 {
        0xffff_8000_0000_0000
    } else {
        0
    };
    let mut out = vec![half_start];
    for align in [1u64 << 39, 1 << 30, 1 << 21, PAGE_SIZE] {
        out.push(addr & !(align - 1));
    }
    out.retain(|&a| a < addr);
    out.sort_unstable();
    out.dedup();
    out
}

/// The operation's count field (`pages`, `len` or `count`), by name.
pub(crate) fn count_mut(op: &mut Op) -> Option<(&'static str, &mut u64)> {
    match op {
        Op::Map { pages, .. }
        | Op::Unmap { pages, .. }
        | Op::Convert { pages, .. }
        | Op::Query { pages, .. }
        | Op::Valloc { pages, .. }
        | Op::Vfree { pages, .. }
        | Op::Share { pages, .. } => Some(("pages", pages)),
        Op::Write { len, .. } | Op::Read { len, .. } => Some(("len", len)),
        Op::AllocFrames { count, .. } | Op::FreeFrames { count, .. } => Some(("count", count)),
        _ => None,
    }
}

/// The operation's count and its name, if it has one.
pub fn count_of(op: &Op) -> Option<(&'static str, u64)> {
    count_mut(&mut op.clone()).map(|(name, c)| (name, *c))
}

/// `op` with its count set to `n` (unchanged if it has none).
pub fn with_count(op: &Op, n: u64) -> Op {
    let mut op = op.clone();
    if let Some((_, c)) = count_mut(&mut op) {
        *c = n;
    }
    op
}

/// The largest count the protocol lets the operation name: above it the
/// guest refuses the request as `TooLarge`, whatever the count, so a
/// failure that needs the refusal needs no count above `limit + 1`.
pub fn count_limit(op: &Op) -> Option<u64> {
    match op {
        Op::AllocFrames { .. } | Op::FreeFrames { .. } => Some(MAX_ALLOC_FRAMES),
        Op::Query { .. } => Some(MAX_QUERY_PAGES),
        Op::Write { .. } | Op::Read { .. } => Some(MAX_TOUCH_LEN),
        _ => None,
    }
}

/// The first counts to try for an operation whose count is `cur`: the
/// least (1), then, above the protocol's limit, the limit + 1. The rest is
/// bisection ([`bisect`]).
pub fn first_counts(op: &Op, cur: u64) -> Vec<u64> {
    let mut out = vec![1];
    if let Some(limit) = count_limit(op) {
        out.push(limit + 1);
    }
    out.retain(|&c| c < cur);
    out
}

/// The next count to try between `passes` (a count known not to fail the
/// same way, or 0) and `fails` (one known to), or `None` when they are
/// neighbours: the least failing count, if the failure is monotonic in
/// the count, is found in log2(fails - passes) runs.
pub fn bisect(passes: u64, fails: u64) -> Option<u64> {
    (fails > passes + 1).then(|| passes + (fails - passes) / 2)
}

/// The operation's flags, by name.
fn flags_mut(op: &mut Op) -> Vec<(&'static str, &mut bool)> {
    match op {
        Op::Map {
            writable,
            executable,
            contiguous,
            ..
        } => vec![
            ("contiguous", contiguous),
            ("executable", executable),
            ("writable", writable),
        ],
        Op::AllocFrames { contiguous, .. } => vec![("contiguous", contiguous)],
        _ => Vec::new(),
    }
}

/// The operation's virtual address field, among the address fields a
/// reference may set ([`crate::refs::target_mut`]): not a file mapping's or
/// an eviction's (their place is the file's or the data's), a heap block's
/// or a physical frame.
pub(crate) fn addr_mut(op: &mut Op) -> Option<&mut u64> {
    match op {
        Op::MapFile { .. } | Op::Evict { .. } | Op::Kfree { .. } | Op::FreeFrames { .. } => None,
        op => crate::refs::target_mut(op),
    }
}

/// The privilege of a memory operation, which may be either (kernel-only
/// operations keep theirs: a user one is there to be refused).
fn privilege_mut(op: &mut Op) -> Option<&mut Privilege> {
    match op {
        Op::Map { privilege, .. }
        | Op::Unmap { privilege, .. }
        | Op::Convert { privilege, .. }
        | Op::Write { privilege, .. }
        | Op::Read { privilege, .. }
        | Op::Query { privilege, .. } => Some(privilege),
        _ => None,
    }
}

/// The virtual address an operation names, if it names one.
pub fn addr_of(op: &Op) -> Option<u64> {
    addr_mut(&mut op.clone()).copied()
}

/// `op` with its virtual address replaced by `new` (unchanged if it names
/// none).
pub fn with_addr(op: &Op, new: u64) -> Op {
    let mut op = op.clone();
    if let Some(a) = addr_mut(&mut op) {
        *a = new;
    }
    op
}

/// Every operation's address in `from`'s canonical half moved down by
/// `from - to`, where that keeps it in the half: the same layout, lower.
/// `None` when that moves no other operation than the one at `from`.
pub fn shift_all(ops: &[Op], from: u64, to: u64) -> Option<Vec<Op>> {
    let delta = from.checked_sub(to)?;
    let half = |a: u64| {
        if a >= 0xffff_8000_0000_0000 {
            0xffff_8000_0000_0000
        } else {
            0
        }
    };
    let mut moved = 0;
    let out = ops
        .iter()
        .map(|op| match addr_of(op) {
            Some(a) if half(a) == half(from) && a - half(a) >= delta => {
                moved += 1;
                with_addr(op, a - delta)
            }
            _ => op.clone(),
        })
        .collect();
    (moved > 1).then_some(out)
}

/// The address space `op` names (`switch_space`, `destroy_space`,
/// `share`'s target), if it names one.
pub fn space_mut(op: &mut Op) -> Option<&mut u16> {
    match op {
        Op::SwitchSpace { space, .. }
        | Op::DestroySpace { space, .. }
        | Op::Share { space, .. } => Some(space),
        _ => None,
    }
}

/// Every operation naming space `from` made to name `to` instead: a
/// failure in space 3 whose space is named by several operations (made,
/// shared into, destroyed) moves to space 1 as a whole, where lowering one
/// operation's number alone would aim it at another space. `None` when
/// that changes no more than one operation (the per-operation candidates
/// cover that).
pub fn renumber_space(ops: &[Op], from: u16, to: u16) -> Option<Vec<Op>> {
    let mut moved = 0;
    let out = ops
        .iter()
        .map(|op| {
            let mut op = op.clone();
            if let Some(s) = space_mut(&mut op).filter(|s| **s == from) {
                *s = to;
                moved += 1;
            }
            op
        })
        .collect();
    (moved > 1).then_some(out)
}

/// Every simpler variant of `op` but a smaller count (the minimizer
/// bisects counts: [`first_counts`], [`bisect`]), simplest first: flags
/// off, kernel instead of user, a zero seed or nonce, a lower space
/// number, lower addresses.
pub fn candidates(op: &Op) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut variant = |what: String, change: &dyn Fn(&mut Op)| {
        let mut c = op.clone();
        change(&mut c);
        out.push(Candidate { op: c, what });
    };
    for (i, (name, on)) in flags_mut(&mut op.clone()).into_iter().enumerate() {
        if *on {
            variant(format!("{name} → false"), &|o| {
                *flags_mut(o).swap_remove(i).1 = false
            });
        }
    }
    if op.privilege() == Some(Privilege::User) && privilege_mut(&mut op.clone()).is_some() {
        variant("as → kernel".into(), &|o| {
            *privilege_mut(o).expect("a privilege") = Privilege::Kernel
        });
    }
    match *op {
        Op::Write { seed, .. } if seed != 0 => variant("seed → 0".into(), &|o| {
            if let Op::Write { seed, .. } = o {
                *seed = 0;
            }
        }),
        Op::Ping { nonce } if nonce != 0 => {
            variant("nonce → 0".into(), &|o| *o = Op::Ping { nonce: 0 })
        }
        // A lower space number: the first space made, then the one below.
        // Numbers are handed out lowest first, so a failure in space 1
        // needs one `create_space` where one in space 7 needed seven.
        Op::SwitchSpace { space, .. }
        | Op::DestroySpace { space, .. }
        | Op::Share { space, .. }
            if space > 1 =>
        {
            for lower in [1, space - 1]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
            {
                variant(format!("space → {lower}"), &|o| {
                    if let Op::SwitchSpace { space, .. }
                    | Op::DestroySpace { space, .. }
                    | Op::Share { space, .. } = o
                    {
                        *space = lower;
                    }
                })
            }
        }
        _ => {}
    }
    // A share's target lower too (its source is the address below).
    if let Op::Share { to, .. } = *op {
        for a in smaller_addrs(to) {
            variant(format!("to → {a:#x}"), &|o| {
                if let Op::Share { to, .. } = o {
                    *to = a;
                }
            });
        }
    }
    if let Some(addr) = addr_of(op) {
        for a in smaller_addrs(addr) {
            variant(format!("addr → {a:#x}"), &|o| *o = with_addr(o, a));
        }
    }
    out
}

#[cfg(test)]
mod tests;
