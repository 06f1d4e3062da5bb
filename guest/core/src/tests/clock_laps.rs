//! The clock gives every page a second look, wherever its hand is.
//!
//! A 10-minute campaign at defaults (seed 0x18ed7952ef4dc836) found a
//! guest answering `OutOfMemory` while a clean file page was left to drop:
//! with the hand in the kernel's span, that span was swept whole only once
//! after the hand, so a clean file page before the hand whose accessed bit
//! was set lost the bit and was never taken; the request then gave up on
//! clean file pages and, the swap store being full, failed
//! (`testcases/clock-second-look-kernel-span.jsonl`, 1,358 operations).

use protocol::{Reclaim, Request, Response};

use super::{req, stats, K};
use crate::backend::FrameAccess;
use crate::sim::SimMachine;
use crate::validate::LINEAR_MASK;

/// In the kernel's request space: the file's page, then RAM after it.
const FILE_AT: u64 = 0xffff_c080_1000_0000;
const RAM_AT: u64 = 0xffff_c080_2000_0000;

/// Sets the accessed bit of the present page at `addr`, as the CPU does
/// on a walk (the simulated CPU never sets it).
fn access(m: &mut SimMachine, addr: u64) {
    let (table, i) = m
        .vmm
        .tables_for_test()
        .leaf_slot(addr & LINEAR_MASK)
        .expect("mapped");
    let raw = m.vmm.tables_for_test().read_entry(table, i);
    assert_eq!(raw & 1, 1, "present");
    let entry = &mut m.vmm.mem().table(table)[i];
    crate::pte::set_raw(entry, raw | crate::pte::ACCESSED);
}

/// The host takes every frame left beyond the heap's reserve: each frame
/// from now on is reclaimed.
pub(super) fn take_every_spare_frame(m: &mut SimMachine) {
    let reserve = protocol::heap_reserve_frames(stats(m).heap_max_bytes);
    let spare = stats(m).free_frames - reserve;
    let take = Request::AllocFrames {
        count: spare,
        contiguous: false,
        privilege: K,
    };
    assert!(matches!(req(m, take), Response::Frames(_)));
}

pub(super) fn one_more_frame(m: &mut SimMachine) -> Vec<Reclaim> {
    let alloc = Request::AllocFrames {
        count: 1,
        contiguous: false,
        privilege: K,
    };
    let (events, answer) = req(m, alloc).split_reclaimed();
    assert!(matches!(answer, Response::Frames(_)), "{answer:?}");
    events
}

#[test]
fn a_clean_file_page_before_the_hand_in_the_kernel_span_gets_its_second_look() {
    let mut m = SimMachine::with_files(1024, &[(1, 0xf11e)]);
    // Present kernel RAM after the file's place, then every spare frame
    // taken: each frame from now on is reclaimed.
    let map = Request::map_writable(RAM_AT, stats(&mut m).free_frames - 200, K);
    assert_eq!(req(&mut m, map), Response::Done);
    take_every_spare_frame(&mut m);
    // No clean file page yet: the first RAM page goes to swap, and the
    // hand rests after it, in the kernel's span, past the file's place.
    assert_eq!(
        one_more_frame(&mut m),
        [Reclaim::Swapped {
            addr: RAM_AT,
            slot: 0
        }]
    );
    let file = Request::MapFile {
        addr: FILE_AT,
        pages: 1,
        file: 0,
        file_page: 0,
        privilege: K,
    };
    // Its page table takes a frame too: a RAM page swapped.
    assert_eq!(req(&mut m, file).split_reclaimed().1, Response::Done);
    let read = Request::Read {
        addr: FILE_AT,
        len: 1,
        privilege: K,
    };
    let (events, answer) = req(&mut m, read).split_reclaimed();
    assert!(matches!(answer, Response::Checksum { .. }), "{answer:?}");
    assert!(
        matches!(events[..], [Reclaim::Swapped { .. }]),
        "{events:?}"
    );
    access(&mut m, FILE_AT);
    // The clean file page goes before any RAM page: its first look
    // clears the accessed bit, the second takes it.
    assert_eq!(one_more_frame(&mut m), [Reclaim::Dropped { addr: FILE_AT }]);
}

#[test]
fn a_lap_over_many_accessed_pages_ends_in_one_full_flush() {
    let mut m = SimMachine::new(1024);
    let pages = 300;
    let map = Request::map_writable(RAM_AT, pages, K);
    assert_eq!(req(&mut m, map), Response::Done);
    for p in 0..pages {
        access(&mut m, RAM_AT + p * 4096);
    }
    take_every_spare_frame(&mut m);
    let (flushed, full) = (m.vmm.mem().flushed.len(), m.vmm.mem().full_flushes);
    // Every page has its accessed bit: the first lap clears them all, the
    // second look takes the first page.
    assert_eq!(
        one_more_frame(&mut m),
        [Reclaim::Swapped {
            addr: RAM_AT,
            slot: 0
        }]
    );
    let mem = m.vmm.mem();
    assert_eq!(mem.full_flushes, full + 1, "one full flush for the lap");
    // The first second chances one by one, then the page sent out.
    assert_eq!(
        (mem.flushed.len() - flushed) as u64,
        crate::backend::Flushes::LIMIT + 1
    );
    for p in 1..pages {
        let (table, i) = m
            .vmm
            .tables_for_test()
            .leaf_slot((RAM_AT + p * 4096) & LINEAR_MASK)
            .unwrap();
        assert_eq!(
            m.vmm.tables_for_test().read_entry(table, i) & (1 << 5),
            0,
            "page {p} aged"
        );
    }
}
