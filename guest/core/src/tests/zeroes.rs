//! The frames known to hold only zeros (`crate::zeroes`): a page `Map`
//! made and nobody wrote leaves its frame known to be zero, so the next
//! `Map` that gets the frame does not zero it again; a page written
//! through its entry (D set) leaves it unknown, on every path that lets go
//! of the entry. [`check`], which most tests of the crate run after each
//! step, asserts the record: each frame in it is free and zero, or a
//! page's frame that is zero unless written through an entry with D set.
//! The simulated CPU sets D as the real one does (the last tests here).

use protocol::{AreaType, Response};
use x86_64::structures::paging::PhysFrame;

use super::spaces::{create, read, switch, write, A};
use super::whole_table::{level_entry, TABLE};
use super::{check, convert, frame, map, map_contiguous, req, reset_and_check, unmap, K, U};
use crate::backend::FrameAccess;
use crate::frame_alloc::FrameAllocator;
use crate::sim::SimMachine;

/// The frame of the present page at `addr`.
fn frame_of(m: &mut SimMachine, addr: u64) -> PhysFrame {
    m.vmm.translate(addr).expect("a present page").0
}

/// Whether the allocator knows `f` to hold only zeros.
fn known_zero(m: &SimMachine, f: PhysFrame) -> bool {
    m.vmm.frames().is_zero(f)
}

/// `pages` writable pages mapped at `addr` with `p`; answers their frames.
fn mapped(m: &mut SimMachine, addr: u64, pages: u64, p: protocol::Privilege) -> Vec<PhysFrame> {
    assert_eq!(req(m, map(addr, pages, true, false, p)), Response::Done);
    (0..pages).map(|i| frame_of(m, addr + i * 4096)).collect()
}

/// Unmaps `pages` pages at `addr` with `p`.
fn unmapped(m: &mut SimMachine, addr: u64, pages: u64, p: protocol::Privilege) {
    assert_eq!(req(m, unmap(addr, pages, p)), Response::Done);
}

/// The answer a read of `pages` zero pages gets.
fn zeros(pages: u64) -> Response {
    let checksum = protocol::pattern::checksum(&vec![0u8; crate::conv::usize_of(4096 * pages)]);
    Response::Checksum { checksum }
}

#[test]
fn an_unmapped_clean_page_leaves_its_frame_known_zero_and_a_written_one_does_not() {
    let mut m = SimMachine::new(256);
    let frames = mapped(&mut m, A, 8, U);
    assert!(frames.iter().all(|&f| known_zero(&m, f)), "zeroed by Map");
    write(&mut m, A + 3 * 4096 + 100, 8, 1, U);
    check(&mut m);
    unmapped(&mut m, A, 8, U);
    check(&mut m);
    for (i, &f) in frames.iter().enumerate() {
        assert_eq!(known_zero(&m, f), i != 3, "page {i}'s frame");
    }
    // After a reset the same frames come back in the same order: the
    // written one is zeroed again, the rest are zero already.
    reset_and_check(&mut m);
    assert_eq!(mapped(&mut m, A, 8, U), frames);
    assert_eq!(read(&mut m, A, 8 * 4096, U), zeros(8));
    check(&mut m);
}

#[test]
fn a_written_page_changed_in_place_is_forgotten_before_its_dirty_bit_goes() {
    let mut m = SimMachine::new(256);
    let frames = mapped(&mut m, A, 4, U);
    write(&mut m, A + 4096, 16, 2, U);
    // The convert rewrites every entry, without D, over the same frames.
    convert(&mut m, A, 4, AreaType::PinnedRam);
    assert_eq!(frame_of(&mut m, A + 4096), frames[1]);
    assert!(!known_zero(&m, frames[1]), "written before the rewrite");
    assert!(known_zero(&m, frames[0]));
    check(&mut m);
    unmapped(&mut m, A, 4, K);
    assert!(!known_zero(&m, frames[1]));
    reset_and_check(&mut m);
    assert_eq!(mapped(&mut m, A, 4, U), frames);
    assert_eq!(read(&mut m, A, 4 * 4096, U), zeros(4));
}

#[test]
fn a_whole_table_made_unusable_at_once_forgets_its_written_frames() {
    let mut m = SimMachine::new(1024);
    let frames = mapped(&mut m, TABLE, 512, U);
    write(&mut m, TABLE + 7 * 4096, 1, 3, U);
    // The whole table's path: the table unlinked, its entries read once
    // and never rewritten.
    convert(&mut m, TABLE, 512, AreaType::Unusable);
    check(&mut m);
    for (i, &f) in frames.iter().enumerate() {
        assert_eq!(known_zero(&m, f), i != 7, "page {i}'s frame");
    }
}

#[test]
fn reset_forgets_the_written_frames_of_every_space_and_keeps_the_rest() {
    let mut m = SimMachine::new(512);
    let (space, _) = create(&mut m);
    switch(&mut m, space);
    let theirs = mapped(&mut m, A, 4, U);
    write(&mut m, A + 2 * 4096, 4, 4, U);
    switch(&mut m, 0);
    let ours = mapped(&mut m, A, 4, U);
    write(&mut m, A, 4, 5, U);
    // Reset drops both spaces' tables; it reads the dirty bits first.
    reset_and_check(&mut m);
    for (i, &f) in theirs.iter().enumerate() {
        assert_eq!(known_zero(&m, f), i != 2, "space {space}'s page {i}");
    }
    for (i, &f) in ours.iter().enumerate() {
        assert_eq!(known_zero(&m, f), i != 0, "space 0's page {i}");
    }
}

#[test]
fn a_page_table_freed_empty_is_known_zero_until_it_is_a_table_again() {
    let mut m = SimMachine::new(256);
    let tables = m.vmm.stats().page_table_frames;
    mapped(&mut m, A, 1, U);
    // The PDPT, the PD and the page table the map made.
    assert_eq!(m.vmm.stats().page_table_frames, tables + 3);
    let taken: Vec<u64> = (0..256).filter(|&n| m.vmm.frames().is_used(n)).collect();
    unmapped(&mut m, A, 1, U);
    let freed: Vec<u64> = taken
        .into_iter()
        .filter(|&n| !m.vmm.frames().is_used(n))
        .collect();
    assert_eq!(freed.len(), 4, "three tables and the page's frame");
    assert!(freed.iter().all(|&n| known_zero(&m, frame(n))));
    // Taken again (after a reset, in the same order), three as tables: no
    // longer known to be zero, since they hold entries.
    reset_and_check(&mut m);
    let page = mapped(&mut m, A, 1, U)[0];
    let taken: Vec<u64> = freed.into_iter().filter(|&n| frame(n) != page).collect();
    assert_eq!(taken.len(), 3);
    assert!(taken.iter().all(|&n| m.vmm.frames().is_used(n)));
    assert!(taken.iter().all(|&n| !known_zero(&m, frame(n))));
    check(&mut m);
}

#[test]
fn a_contiguous_map_gets_known_zero_frames_and_keeps_them_known() {
    let mut m = SimMachine::new(256);
    assert_eq!(req(&mut m, map_contiguous(A, 6, U)), Response::Done);
    let frames: Vec<PhysFrame> = (0..6).map(|i| frame_of(&mut m, A + i * 4096)).collect();
    write(&mut m, A + 5 * 4096, 8, 6, U);
    unmapped(&mut m, A, 6, U);
    reset_and_check(&mut m);
    assert_eq!(req(&mut m, map_contiguous(A, 6, U)), Response::Done);
    assert_eq!(frame_of(&mut m, A), frames[0], "the same run");
    assert!(frames.iter().all(|&f| known_zero(&m, f)));
    assert_eq!(read(&mut m, A, 6 * 4096, U), zeros(6));
    check(&mut m);
}

#[test]
fn an_allocate_on_write_page_gets_a_known_zero_frame_that_its_write_makes_unknown() {
    let mut m = SimMachine::new(256);
    convert(&mut m, A, 4, AreaType::UsableRam);
    // A read touch: the frames stay zero and known to be.
    assert_eq!(read(&mut m, A, 4096, U), zeros(1));
    let read_frame = frame_of(&mut m, A);
    assert!(known_zero(&m, read_frame));
    write(&mut m, A + 2 * 4096, 8, 7, U);
    let written = frame_of(&mut m, A + 2 * 4096);
    check(&mut m);
    convert(&mut m, A, 4, AreaType::Unusable);
    assert!(known_zero(&m, read_frame));
    assert!(!known_zero(&m, written));
    check(&mut m);
}

/// The dirty bit of the level-1 entry of `addr`.
fn dirty(m: &mut SimMachine, addr: u64) -> bool {
    level_entry(m, addr, 1) & crate::pte::DIRTY != 0
}

#[test]
fn the_simulated_cpu_sets_the_dirty_bit_on_the_first_write_through_each_translation() {
    let mut m = SimMachine::new(256);
    mapped(&mut m, A, 2, U);
    // A read fills the TLB entry without D; the write through it sets D.
    assert_eq!(read(&mut m, A, 4096, U), zeros(1));
    assert!(!dirty(&mut m, A));
    write(&mut m, A + 8, 8, 8, U);
    assert!(dirty(&mut m, A));
    assert!(!dirty(&mut m, A + 4096), "the other page was not written");
    // The entry rewritten without D and flushed: the next write sets it
    // again through the new translation.
    convert(&mut m, A, 2, AreaType::PinnedRam);
    assert!(!dirty(&mut m, A));
    write(&mut m, A + 8, 8, 9, U);
    assert!(dirty(&mut m, A));
}

/// A byte planted in frame `f` behind the VMM's back (no CPU write, so no
/// dirty bit): the record's rule broken on purpose, to see whether the
/// next taker zeroes the frame. No [`check`] after it: the record is wrong
/// by construction.
fn plant(m: &mut SimMachine, f: PhysFrame) {
    m.vmm.mem().frame_bytes(f)[100] = 0x5a;
}

#[test]
fn a_known_zero_frame_is_mapped_again_without_being_written() {
    let mut m = SimMachine::new(256);
    let frames = mapped(&mut m, A, 2, U);
    unmapped(&mut m, A, 2, U);
    reset_and_check(&mut m);
    assert!(known_zero(&m, frames[1]));
    plant(&mut m, frames[1]);
    // The same frames again: the planted byte is still there, so `Map`
    // did not write the frame known to be zero.
    assert_eq!(mapped(&mut m, A, 2, U), frames);
    assert_eq!(m.vmm.mem().frame_bytes(frames[1])[100], 0x5a);
}

#[test]
fn a_frame_known_zero_becomes_a_table_without_being_written() {
    let mut m = SimMachine::new(256);
    let before: Vec<u64> = (0..256).filter(|&n| m.vmm.frames().is_used(n)).collect();
    mapped(&mut m, A, 1, U);
    let tables: Vec<u64> = (0..256)
        .filter(|&n| m.vmm.frames().is_used(n) && !before.contains(&n))
        .collect();
    unmapped(&mut m, A, 1, U);
    reset_and_check(&mut m);
    // The first frame the map took, a table, planted in the entry the
    // page's walk does not use.
    let first = frame(tables[0]);
    assert!(known_zero(&m, first));
    plant(&mut m, first);
    mapped(&mut m, A, 1, U);
    assert!(m.vmm.frames().is_used(tables[0]));
    assert_eq!(m.vmm.mem().frame_bytes(first)[100], 0x5a, "not zeroed");
}

/// Sends `pages` pages at `addr` out; answers how many went to swap.
fn evicted(m: &mut SimMachine, addr: u64, pages: u64) -> u64 {
    let evict = protocol::Request::Evict {
        addr,
        pages,
        privilege: K,
    };
    match req(m, evict).split_reclaimed().1 {
        Response::Evicted { swapped, .. } => swapped,
        other => panic!("evict answered {other:?}"),
    }
}

/// A page goes out to swap as a page of zeros only when it holds zeros.
/// `Holders::send_out` stores one without a look at its bytes when its
/// frame is known to hold only zeros and its entry has no dirty bit (speed
/// only: the slot holds what the look would store, as here). A page
/// written through its entry (D set, its frame still known zero from its
/// `Map`) and one brought back from swap (its frame not known zero, its
/// entry without D) are looked at: their bytes come back intact, each
/// time they go out and in again.
#[test]
fn a_page_goes_out_as_zeros_only_when_it_holds_zeros() {
    let mut m = SimMachine::with_files(2048, &[]);
    let zero = TABLE;
    let data = TABLE + 4 * 4096;
    mapped(&mut m, zero, 4, K);
    let frames = mapped(&mut m, data, 4, K);
    write(&mut m, data, 4 * 4096, 11, K);
    // The write leaves the frames known zero: D in the entries says more.
    assert!(frames.iter().all(|&f| known_zero(&m, f)));
    assert_eq!(evicted(&mut m, zero, 4), 4);
    let s = super::stats(&mut m);
    assert_eq!(s.swap_slots_used, 4);
    let zero_page_bytes = s.swap_bytes_used / 4;
    assert!(zero_page_bytes > 0 && zero_page_bytes < 64, "{s:?}");
    assert_eq!(evicted(&mut m, data, 4), 4);
    let s = super::stats(&mut m);
    assert!(s.swap_bytes_used > 4 * zero_page_bytes + 4 * 64, "{s:?}");
    check(&mut m);
    for round in 0..2 {
        // Swapped in by a read (entries without D, frames not known
        // zero), then out again.
        let zeros = protocol::pattern::checksum(&[0; 4 * 4096]);
        let sum = read(&mut m, zero, 4 * 4096, K);
        assert_eq!(
            sum.split_reclaimed().1,
            Response::Checksum { checksum: zeros }
        );
        super::assert_reads_pattern(&mut m, 11, data, 4 * 4096);
        assert_eq!(evicted(&mut m, zero, 4), 4, "round {round}");
        assert_eq!(evicted(&mut m, data, 4), 4, "round {round}");
        check(&mut m);
    }
    super::assert_reads_pattern(&mut m, 11, data, 4 * 4096);
}

/// The shortcut of [`a_page_goes_out_as_zeros_only_when_it_holds_zeros`]
/// runs, and trusts the record: a page holding data, its entry without D
/// (brought back from swap by a read), whose frame a planted wrong bit
/// calls zero, goes out as zeros in a release build and comes back as
/// zeros; a debug build looks at the bytes and stops at the broken
/// premise.
#[test]
#[cfg_attr(
    debug_assertions,
    should_panic(expected = "is known to hold only zeros, its entry has no D")
)]
fn a_wrong_zero_bit_sends_a_page_out_as_zeros() {
    let mut m = SimMachine::with_files(2048, &[]);
    mapped(&mut m, TABLE, 1, K);
    write(&mut m, TABLE, 4096, 12, K);
    assert_eq!(evicted(&mut m, TABLE, 1), 1);
    super::assert_reads_pattern(&mut m, 12, TABLE, 4096);
    let f = frame_of(&mut m, TABLE);
    assert!(!known_zero(&m, f), "a frame swapped in is not known zero");
    m.vmm.tables_for_test().frames_mut().set_zero(f, true);
    assert_eq!(evicted(&mut m, TABLE, 1), 1);
    let zeros = protocol::pattern::checksum(&[0; 4096]);
    let sum = read(&mut m, TABLE, 4096, K).split_reclaimed().1;
    assert_eq!(sum, Response::Checksum { checksum: zeros });
}
