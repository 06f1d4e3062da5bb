//! Out of memory: refused before any change, rolled back when an
//! allocation fails in the middle of a range, and reported as a fault by
//! touches of allocate-on-write pages.

use protocol::{AreaType, Error, FaultReason};

use super::*;

/// Runs `r` on a fresh small machine with every allocation after the
/// `k`-th failing, for every `k` until it succeeds; each failure must be
/// `OutOfMemory` with the state unchanged.
fn fails_cleanly_at_every_allocation(r: Request) {
    for k in 0.. {
        let mut m = SimMachine::without_reclaim(256);
        req(&mut m, Request::map_writable(0x20_0000, 1, U));
        let before = snapshot(&mut m);
        m.vmm.tables_for_test().frames_mut().fail_after = Some(k);
        let got = req(&mut m, r.clone());
        m.vmm.tables_for_test().frames_mut().fail_after = None;
        if got == Response::Done {
            assert!(k > 0, "{r:?} allocated nothing");
            check(&mut m);
            return;
        }
        assert_eq!(got, Response::Error(Error::OutOfMemory), "{r:?} k={k}");
        assert_eq!(
            snapshot(&mut m),
            before,
            "{r:?}: state changed after failing at allocation {k}"
        );
        check(&mut m);
    }
}

#[test]
fn map_rolls_back_at_every_failing_allocation() {
    // Across a 2 MiB and a 1 GiB boundary, next to an existing table.
    for contiguous in [false, true] {
        fails_cleanly_at_every_allocation(Request::Map {
            addr: 0x4000_0000 - 0x3000,
            pages: 6,
            writable: true,
            executable: false,
            contiguous,
            privilege: U,
        });
        // More pages in one table than `paging::fill` takes frames for at
        // once (64), then the next table.
        fails_cleanly_at_every_allocation(Request::Map {
            addr: 0x4000_0000 - 72 * 0x1000,
            pages: 80,
            writable: true,
            executable: false,
            contiguous,
            privilege: U,
        });
        fails_cleanly_at_every_allocation(Request::Map {
            addr: 0x20_0000 - 0x1000,
            pages: 1,
            writable: true,
            executable: false,
            contiguous,
            privilege: U,
        });
    }
}

#[test]
fn convert_rolls_back_at_every_failing_allocation() {
    fails_cleanly_at_every_allocation(Request::Convert {
        addr: (512 << 30) - 0x40_0000,
        pages: 0x800,
        to: AreaType::UsableRam,
        privilege: U,
    });
    fails_cleanly_at_every_allocation(Request::Convert {
        addr: 0xffff_c0ff_ffe0_0000,
        pages: 0x400,
        to: AreaType::UsableRam,
        privilege: K,
    });
}

#[test]
fn exact_memory_boundary() {
    let mut m = SimMachine::without_reclaim(64);
    let free = stats(&mut m).free_frames;
    // One PDPT, one PD, one PT are needed.
    let r = req(&mut m, Request::map_writable(0x1000, free - 2, U));
    assert_eq!(r, Response::Error(Error::OutOfMemory));
    check(&mut m);
    let r = req(&mut m, Request::map_writable(0x1000, free - 3, U));
    assert_eq!(r, Response::Done);
    check(&mut m);
    assert_eq!(stats(&mut m).free_frames, 0);
    reset_and_check(&mut m);
}

#[test]
fn touch_reports_out_of_memory_at_the_first_byte_not_stored() {
    let mut m = SimMachine::without_reclaim(64);
    let free = stats(&mut m).free_frames;
    let pages = free + 4;
    // Allocate-on-write over more pages than there are frames (tables: 3).
    let r = req(
        &mut m,
        Request::Convert {
            addr: 0x10_0000,
            pages,
            to: AreaType::UsableRam,
            privilege: U,
        },
    );
    assert_eq!(r, Response::Done);
    let len = pages * 4096 - 100;
    let r = req(
        &mut m,
        Request::Write {
            addr: 0x10_0000 + 50,
            len,
            seed: 3,
            privilege: U,
        },
    );
    let fault_at = 0x10_0000 + (free - 3) * 4096;
    assert_eq!(
        r,
        Response::Fault {
            addr: fault_at,
            write: true,
            reason: FaultReason::OutOfMemory
        }
    );
    check(&mut m);
    assert_eq!(stats(&mut m).faults_resolved, free - 3);
    // Every byte before the fault was written.
    assert_reads_pattern(&mut m, 3, 0x10_0000 + 50, fault_at - 0x10_0000 - 50);
    // Reads fault the same way.
    let r = req(
        &mut m,
        Request::Read {
            addr: fault_at + 8,
            len: 8,
            privilege: U,
        },
    );
    assert_eq!(
        r,
        Response::Fault {
            addr: fault_at + 8,
            write: false,
            reason: FaultReason::OutOfMemory
        }
    );
    reset_and_check(&mut m);
}
