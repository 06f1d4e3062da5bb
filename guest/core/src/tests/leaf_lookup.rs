//! `PageTables::leaf`, the descent that finds one page's entry (for
//! `lookup`, `leaf_slot` and through them the stale-translation probe),
//! held to the walk it replaced (`leaf_by_walk`): the same entry, table,
//! level, slot and raw bits, or nothing, at every address, over tables
//! made by random requests (whole allocate-on-write tables, split ones,
//! freed ones, present and on-swap pages, the kernel's half).

use proptest::prelude::*;
use protocol::{AreaType, Request};

use super::{convert, map, req, unmap, K};
use crate::layout::{KERNEL_SPACE_END, KERNEL_SPACE_START, USER_END, USER_START};
use crate::sim::SimMachine;
use crate::validate::KERNEL_REQUEST_START;
use crate::walk::Entry;

/// A user address on a PML4 entry's boundary: the requests work around
/// it, across page-table, PD, PDPT and PML4 boundaries.
const BASE: u64 = 0x80_0000_0000;

/// The same in the kernel's half, where requests may map (past the heap).
const KERNEL_BASE: u64 = KERNEL_REQUEST_START + (1 << 39);

/// An address near [`BASE`] or [`KERNEL_BASE`], by a drawn offset.
fn at(kernel: bool, off: u64) -> u64 {
    let base = if kernel { KERNEL_BASE } else { BASE };
    base + (off % (6 << 21)) - (2 << 21)
}

fn request() -> impl Strategy<Value = Request> {
    let addr = (any::<bool>(), any::<u64>()).prop_map(|(k, o)| at(k, o) & !0xfff);
    let pages = prop_oneof![1u64..20, Just(512u64), 500u64..1100];
    prop_oneof![
        (addr.clone(), pages.clone(), any::<bool>()).prop_map(|(addr, pages, u)| {
            Request::Convert {
                addr,
                pages,
                to: if u {
                    AreaType::UsableRam
                } else {
                    AreaType::Unusable
                },
                privilege: K,
            }
        }),
        (addr.clone(), 1u64..40).prop_map(|(addr, pages)| map(addr, pages, true, false, K)),
        (addr.clone(), 1u64..0x30000, any::<u64>()).prop_map(|(addr, len, seed)| {
            Request::Write {
                addr,
                len,
                seed,
                privilege: K,
            }
        }),
        (addr.clone(), 1u64..20).prop_map(|(addr, pages)| Request::Evict {
            addr,
            pages,
            privilege: K,
        }),
        (addr, 1u64..20).prop_map(|(addr, pages)| unmap(addr, pages, K)),
    ]
}

/// What an entry found says, as comparable parts.
fn parts(e: Option<Entry>) -> Option<(u64, u8, usize, u64, u64, u64, u64)> {
    e.map(|e| {
        let s = e.slot;
        let table = e.table.start_address().as_u64();
        (table, e.level, s.index, s.base, s.start, s.end, e.raw)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_descent_finds_what_the_walk_finds(
        requests in prop::collection::vec(request(), 1..24),
        probes in prop::collection::vec((any::<bool>(), any::<u64>()), 64),
    ) {
        let mut m = SimMachine::with_files(4096, &[]);
        for r in requests {
            req(&mut m, r);
        }
        let pt = m.vmm.tables_for_test();
        // Every page of the two tables below each base and the first two
        // above it, drawn addresses near them (unaligned), and addresses
        // anywhere.
        let near = (0..2048u64).flat_map(|p| [BASE, KERNEL_BASE].map(|b| b - (1 << 21) + p * 4096));
        let drawn = probes.iter().map(|&(k, o)| at(k, o) + (o & 0xfff));
        // Anywhere in the spaces the VMM manages (whose tables it owns).
        let anywhere = probes.iter().map(|&(k, o)| match k {
            false => USER_START + o % (USER_END - USER_START),
            true => KERNEL_SPACE_START + o % (KERNEL_SPACE_END - KERNEL_SPACE_START),
        });
        for a in near.chain(drawn).chain(anywhere) {
            prop_assert_eq!(parts(pt.leaf(a)), parts(pt.leaf_by_walk(a)), "at {:#x}", a);
        }
    }
}

/// The kinds of answer `leaf` gives, each met on a machine built for it,
/// in both halves: a level-1 entry, a whole allocate-on-write entry, and
/// nothing where the PML4, a PDPT or a PD has no entry for the page; each
/// the walk's answer too.
#[test]
fn the_descent_meets_every_kind_of_entry_the_walk_meets() {
    let mut m = SimMachine::with_files(4096, &[]);
    for base in [BASE, KERNEL_BASE] {
        let answer = req(&mut m, map(base, 4, true, false, K));
        assert_eq!(answer.split_reclaimed().1, protocol::Response::Done);
        convert(&mut m, base + (1 << 21), 512, AreaType::UsableRam);
    }
    let pt = m.vmm.tables_for_test();
    for base in [BASE, KERNEL_BASE] {
        let cases = [
            (base + 4096, Some(1)),          // a mapped page
            (base + (1 << 21) + 8, Some(2)), // a whole allocate-on-write entry
            (base + (4 << 21), None),        // no page table: the PD's entry
            (base + (1 << 30), None),        // no PD: the PDPT's entry
            (base + (1 << 39), None),        // no PDPT: the PML4's entry
        ];
        for (a, level) in cases {
            let found = pt.leaf(a);
            assert_eq!(found.map(|e| e.level), level, "at {a:#x}");
            assert_eq!(parts(found), parts(pt.leaf_by_walk(a)), "at {a:#x}");
        }
    }
}
