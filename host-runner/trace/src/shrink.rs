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

/// The virtual address an operation names, if it names one.
pub fn addr_of(op: &Op) -> Option<u64> {
    match *op {
        Op::Map { addr, .. }
        | Op::Unmap { addr, .. }
        | Op::Convert { addr, .. }
        | Op::Write { addr, .. }
        | Op::Read { addr, .. }
        | Op::Query { addr, .. }
        | Op::Vfree { addr, .. } => Some(addr),
        _ => None,
    }
}

/// `op` with its virtual address replaced by `new` (unchanged if it names
/// none).
pub fn with_addr(op: &Op, new: u64) -> Op {
    let mut op = op.clone();
    match &mut op {
        Op::Map { addr, .. }
        | Op::Unmap { addr, .. }
        | Op::Convert { addr, .. }
        | Op::Write { addr, .. }
        | Op::Read { addr, .. }
        | Op::Query { addr, .. }
        | Op::Vfree { addr, .. } => *addr = new,
        _ => {}
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

/// Every simpler variant of `op`, simplest first.
pub fn candidates(op: &Op) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut push = |op: Op, what: String| out.push(Candidate { op, what });
    let mut variant = |field: &str, values: Vec<u64>, make: &dyn Fn(u64) -> Op| {
        for v in values {
            let what = match field {
                _ if field.contains('→') => field.to_string(),
                "addr" => format!("addr → {v:#x}"),
                _ => format!("{field} → {v}"),
            };
            push(make(v), what);
        }
    };
    match op.clone() {
        Op::Map {
            addr,
            pages,
            writable,
            contiguous,
            privilege,
        } => {
            let m = |addr, pages, writable, contiguous, privilege| Op::Map {
                addr,
                pages,
                writable,
                contiguous,
                privilege,
            };
            variant("pages", smaller_counts(pages, 1), &|p| {
                m(addr, p, writable, contiguous, privilege)
            });
            if contiguous {
                variant("contiguous → false", vec![0], &|_| {
                    m(addr, pages, writable, false, privilege)
                });
            }
            if writable {
                variant("writable → false", vec![0], &|_| {
                    m(addr, pages, false, contiguous, privilege)
                });
            }
            if privilege == Privilege::User {
                variant("as → kernel", vec![0], &|_| {
                    m(addr, pages, writable, contiguous, Privilege::Kernel)
                });
            }
            variant("addr", smaller_addrs(addr), &|a| {
                m(a, pages, writable, contiguous, privilege)
            });
        }
        Op::Unmap {
            addr,
            pages,
            privilege,
        }
        | Op::Query {
            addr,
            pages,
            privilege,
        }
        | Op::Vfree {
            addr,
            pages,
            privilege,
        } => {
            let orig = op.clone();
            let m = move |addr, pages, privilege| match orig {
                Op::Unmap { .. } => Op::Unmap {
                    addr,
                    pages,
                    privilege,
                },
                Op::Query { .. } => Op::Query {
                    addr,
                    pages,
                    privilege,
                },
                _ => Op::Vfree {
                    addr,
                    pages,
                    privilege,
                },
            };
            variant("pages", smaller_counts(pages, 1), &|p| {
                m(addr, p, privilege)
            });
            if privilege == Privilege::User {
                variant("as → kernel", vec![0], &|_| {
                    m(addr, pages, Privilege::Kernel)
                });
            }
            variant("addr", smaller_addrs(addr), &|a| m(a, pages, privilege));
        }
        Op::Convert {
            addr,
            pages,
            to,
            privilege,
        } => {
            let m = |addr, pages, privilege| Op::Convert {
                addr,
                pages,
                to,
                privilege,
            };
            variant("pages", smaller_counts(pages, 1), &|p| {
                m(addr, p, privilege)
            });
            if privilege == Privilege::User {
                variant("as → kernel", vec![0], &|_| {
                    m(addr, pages, Privilege::Kernel)
                });
            }
            variant("addr", smaller_addrs(addr), &|a| m(a, pages, privilege));
        }
        Op::Write {
            addr,
            len,
            seed,
            privilege,
        } => {
            let m = |addr, len, seed, privilege| Op::Write {
                addr,
                len,
                seed,
                privilege,
            };
            variant("len", smaller_counts(len, 1), &|l| {
                m(addr, l, seed, privilege)
            });
            variant(
                "seed",
                smaller_counts(seed, 0).into_iter().take(1).collect(),
                &|s| m(addr, len, s, privilege),
            );
            if privilege == Privilege::User {
                variant("as → kernel", vec![0], &|_| {
                    m(addr, len, seed, Privilege::Kernel)
                });
            }
            variant("addr", smaller_addrs(addr), &|a| m(a, len, seed, privilege));
        }
        Op::Read {
            addr,
            len,
            privilege,
        } => {
            let m = |addr, len, privilege| Op::Read {
                addr,
                len,
                privilege,
            };
            variant("len", smaller_counts(len, 1), &|l| m(addr, l, privilege));
            if privilege == Privilege::User {
                variant("as → kernel", vec![0], &|_| {
                    m(addr, len, Privilege::Kernel)
                });
            }
            variant("addr", smaller_addrs(addr), &|a| m(a, len, privilege));
        }
        Op::AllocFrames {
            count,
            contiguous,
            privilege,
        } => {
            let m = |count, contiguous| Op::AllocFrames {
                count,
                contiguous,
                privilege,
            };
            variant("count", smaller_counts(count, 1), &|c| m(c, contiguous));
            if contiguous {
                variant("contiguous → false", vec![0], &|_| m(count, false));
            }
        }
        Op::FreeFrames {
            frame,
            count,
            privilege,
        } => {
            variant("count", smaller_counts(count, 1), &|c| Op::FreeFrames {
                frame,
                count: c,
                privilege,
            });
        }
        Op::Valloc { pages, privilege } => {
            variant("pages", smaller_counts(pages, 1), &|p| Op::Valloc {
                pages: p,
                privilege,
            });
        }
        Op::Ping { nonce } => variant(
            "nonce",
            smaller_counts(nonce, 0).into_iter().take(1).collect(),
            &|n| Op::Ping { nonce: n },
        ),
        Op::Hello | Op::Stats | Op::Panic { .. } | Op::Reset { .. } => {}
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
