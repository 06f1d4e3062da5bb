//! `PageTables::leaf`, the descent that finds one page's entry (for
//! `lookup`, `leaf_slot` and through them the stale-translation probe),
//! held to the walk it replaced (`leaf_by_walk`): the same entry, table,
//! level, slot and raw bits, or nothing, at every address, over tables
//! made by random requests (whole allocate-on-write tables, split ones,
//! freed ones, present and on-swap pages, the kernel's half).

use proptest::prelude::*;
use protocol::{AreaType, Request};

use super::{req, K};
use crate::layout::{KERNEL_SPACE_END, KERNEL_SPACE_START, USER_END, USER_START};
use crate::sim::SimMachine;
use crate::walk::Entry;

/// A 1 GiB-aligned user address: the requests work around it, across
/// page-table and PD boundaries.
const BASE: u64 = 0x80_0000_0000;

/// An address near [`BASE`] or in the kernel's managed half, by a drawn
/// offset.
fn at(kernel: bool, off: u64) -> u64 {
    let base = if kernel {
        KERNEL_SPACE_START + (1 << 30)
    } else {
        BASE
    };
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
        (addr.clone(), 1u64..40).prop_map(|(addr, pages)| Request::Map {
            addr,
            pages,
            writable: true,
            executable: false,
            contiguous: false,
            privilege: K,
        }),
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
        (addr, 1u64..20).prop_map(|(addr, pages)| Request::Unmap {
            addr,
            pages,
            privilege: K,
        }),
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
        // Every page of two tables around BASE, probes near it and in the
        // kernel's half (unaligned), and addresses anywhere.
        let near = (0..1024u64).map(|p| BASE - (1 << 21) + p * 4096);
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
