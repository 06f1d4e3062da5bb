//! The frames known to hold only zeros (`crate::zeroes`): a page `Map`
//! made and nobody wrote leaves its frame known to be zero, so the next
//! `Map` that gets the frame does not zero it again; a page written
//! through its entry (D set) leaves it unknown, on every path that lets go
//! of the entry. [`check`], which most tests of the crate run after each
//! step, asserts the record: each frame in it is free and zero, or a
//! page's frame that is zero unless written through an entry with D set.
//! The simulated CPU sets D as the real one does (the last tests here).

use protocol::{AreaType, Request, Response};
use x86_64::structures::paging::PhysFrame;

use oracle::checker::walk_levels;

use super::ram::{checked_hello, SimRam};
use super::spaces::{create, read, switch, write, A};
use super::whole_table::TABLE;
use super::{check, convert, frame, map, req, reset_and_check, K, U};
use crate::frame_alloc::FrameAllocator;
use crate::frames::BitmapFrameAllocator;
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

fn unmap(m: &mut SimMachine, addr: u64, pages: u64, privilege: protocol::Privilege) {
    let r = Request::Unmap {
        addr,
        pages,
        privilege,
    };
    assert_eq!(req(m, r), Response::Done);
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
    unmap(&mut m, A, 8, U);
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
    unmap(&mut m, A, 4, K);
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
    // Reset drops both spaces' tables unread.
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
    unmap(&mut m, A, 1, U);
    let freed: Vec<u64> = taken
        .into_iter()
        .filter(|&n| !m.vmm.frames().is_used(n))
        .collect();
    assert_eq!(freed.len(), 4, "three tables and the page's frame");
    assert!(freed.iter().all(|&n| known_zero(&m, frame(n))));
    // Taken again as tables (after a reset, in the same order): no longer
    // known to be zero, since they hold entries ([`check`] would say so).
    reset_and_check(&mut m);
    mapped(&mut m, A, 1, U);
    check(&mut m);
}

#[test]
fn a_contiguous_map_gets_known_zero_frames_and_keeps_them_known() {
    let mut m = SimMachine::new(256);
    let contiguous = |pages| Request::Map {
        addr: A,
        pages,
        writable: true,
        executable: false,
        contiguous: true,
        privilege: U,
    };
    assert_eq!(req(&mut m, contiguous(6)), Response::Done);
    let frames: Vec<PhysFrame> = (0..6).map(|i| frame_of(&mut m, A + i * 4096)).collect();
    write(&mut m, A + 5 * 4096, 8, 6, U);
    unmap(&mut m, A, 6, U);
    reset_and_check(&mut m);
    assert_eq!(req(&mut m, contiguous(6)), Response::Done);
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

#[test]
fn a_frame_used_at_the_boot_point_is_never_known_zero_after_a_return_to_it() {
    let ram = [protocol::PhysRange {
        start: 0,
        end: 64 * 4096,
    }];
    let leak = |n: usize| -> &'static mut [u8] { Box::leak(vec![0u8; n].into_boxed_slice()) };
    let mut fa =
        BitmapFrameAllocator::new(leak(8), leak(8), 64, &ram, &[]).with_zero_record(leak(8));
    let owned = fa.alloc().unwrap();
    fa.set_boot_point();
    // A page holds another frame and leaves it clean; the owner lets go
    // of its frame, and a page holds that one too and leaves it clean.
    let (page, _) = fa.alloc_zeroable().unwrap();
    fa.set_zero(page, true);
    fa.free(page).unwrap();
    fa.free(owned).unwrap();
    let (again, _) = fa.alloc_zeroable().unwrap();
    assert_eq!(again, owned);
    fa.set_zero(owned, true);
    fa.free(owned).unwrap();
    fa.back_to_boot_point();
    assert!(fa.is_used(0), "its boot-time owner's again");
    assert!(!fa.is_zero(owned), "which may write it");
    assert!(fa.is_zero(page), "a free frame stays known");
}

/// The dirty bit of the level-1 entry of `addr`, as the oracle's walk
/// reads it from the simulated RAM.
fn dirty(m: &mut SimMachine, addr: u64) -> bool {
    let hello = checked_hello(m);
    match walk_levels(&SimRam::of(m), &hello, addr)
        .get(3)
        .map(|l| l.raw.clone())
    {
        Some(Ok(raw)) => raw & crate::pte::DIRTY != 0,
        other => panic!("no level-1 entry at {addr:#x}: {other:?}"),
    }
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
