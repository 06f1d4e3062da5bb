//! Simpler variants of one operation's arguments, simplest first: the
//! candidates the minimizer tries once it cannot remove more operations.

use protocol::{Privilege, PAGE_SIZE};

use crate::op::Op;

/// A variant of an operation and what was simplified, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub op: Op,
    pub what: String,
}

/// Smaller values of a count, toward `min`: `min` itself, then values
/// approaching `cur` by halving steps (a binary search over repeated calls).
fn smaller_counts(cur: u64, min: u64) -> Vec<u64> {
    let mut out = Vec::new();
    if cur <= min {
        return out;
    }
    out.push(min);
    let mut delta = (cur - min) / 2;
    while delta > 0 {
        out.push(cur - delta);
        delta /= 2;
    }
    out.dedup();
    out
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
        | Op::Vfree { pages, .. } => Some(("pages", pages)),
        Op::Write { len, .. } | Op::Read { len, .. } => Some(("len", len)),
        Op::AllocFrames { count, .. } | Op::FreeFrames { count, .. } => Some(("count", count)),
        _ => None,
    }
}

/// The operation's flags, by name.
fn flags_mut(op: &mut Op) -> Vec<(&'static str, &mut bool)> {
    match op {
        Op::Map {
            writable,
            contiguous,
            ..
        } => vec![("contiguous", contiguous), ("writable", writable)],
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

/// Every simpler variant of `op`, simplest first: smaller counts, flags
/// off, kernel instead of user, a zero seed or nonce, lower addresses.
pub fn candidates(op: &Op) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut variant = |what: String, change: &dyn Fn(&mut Op)| {
        let mut c = op.clone();
        change(&mut c);
        out.push(Candidate { op: c, what });
    };
    if let Some((name, &mut cur)) = count_mut(&mut op.clone()) {
        for v in smaller_counts(cur, 1) {
            variant(format!("{name} → {v}"), &|o| {
                *count_mut(o).expect("a count").1 = v
            });
        }
    }
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
        _ => {}
    }
    if let Some(addr) = addr_of(op) {
        for a in smaller_addrs(addr) {
            variant(format!("addr → {a:#x}"), &|o| *o = with_addr(o, a));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_addresses_only_get_smaller() {
        assert_eq!(smaller_counts(8, 1), vec![1, 5, 7]);
        assert_eq!(smaller_counts(1, 1), Vec::<u64>::new());
        assert_eq!(
            smaller_addrs(0x4020_3000),
            vec![0, 0x4000_0000, 0x4020_0000]
        );
        assert_eq!(
            smaller_addrs(0xffff_c080_0000_1234),
            vec![
                0xffff_8000_0000_0000,
                0xffff_c080_0000_0000,
                0xffff_c080_0000_1000
            ]
        );
        let map = Op::Map {
            addr: 0x20_1000,
            pages: 3,
            writable: true,
            contiguous: true,
            privilege: Privilege::User,
        };
        let whats: Vec<String> = candidates(&map).into_iter().map(|c| c.what).collect();
        assert_eq!(
            whats,
            [
                "pages → 1",
                "pages → 2",
                "contiguous → false",
                "writable → false",
                "as → kernel",
                "addr → 0x0",
                "addr → 0x200000"
            ]
        );
    }
}
