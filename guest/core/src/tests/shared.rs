//! Shared memory (`protocol::semantics`, **Shared memory**): `Share`'s
//! answers, the mapping count through `Query` and the frame-info record,
//! data seen through every mapping, and what unmap, destroy and reset do
//! to the count and the frame. The refusals in the specification's order
//! and the transition tables are in `shared_rows`; pressure, `Evict` and
//! out of memory in `shared_pressure`. Every [`check`] checks the sharing
//! rule and the stats identity.
//!
//! The injected bugs these catch: `inject-shared-unmap-frees` fails
//! `unmap_in_one_space_keeps_the_frame` (frames in use differ from frames
//! owned: a shared entry names a free frame); `inject-share-no-count` fails
//! `sharing_a_shared_page_counts_every_mapping` (the count `Query` reads is
//! one short).

use protocol::PageState;

use super::spaces::{create, destroy, pattern_sum, read, switch, write, A};
use super::*;

/// A target address in PML4 slot 100 (tables to make there).
pub(super) const B: u64 = 100 << 39;
/// Another user address, in slot 0.
pub(super) const C: u64 = 0x3000_0000;

/// `Share` as the kernel.
pub(super) fn share(m: &mut SimMachine, addr: u64, pages: u64, space: u16, to: u64) -> Response {
    let r = Request::Share {
        addr,
        pages,
        space,
        to,
        privilege: K,
    };
    req(m, r)
}

/// `Share` that must answer `Done`, then the check.
pub(super) fn share_ok(m: &mut SimMachine, addr: u64, pages: u64, space: u16, to: u64) {
    assert_eq!(share(m, addr, pages, space, to), Response::Done);
    check(m);
}

/// The states of `pages` pages at `addr` in the current space.
pub(super) fn states(m: &mut SimMachine, addr: u64, pages: u64) -> Vec<PageState> {
    let q = Request::Query {
        addr,
        pages,
        privilege: K,
    };
    match req(m, q) {
        Response::Pages(p) => p,
        r => panic!("query answered {r:?}"),
    }
}

/// The page at `addr` is shared RAM with `writable`, mapped `mappings`
/// times: its frame.
pub(super) fn shared_at(m: &mut SimMachine, addr: u64, writable: bool, mappings: u64) -> u64 {
    match states(m, addr, 1)[0] {
        PageState::Shared {
            writable: w,
            mappings: n,
            frame,
        } if (w, n) == (writable, mappings) => frame,
        s => panic!("{addr:#x}: {s:?}, not shared {writable} x{mappings}"),
    }
}

/// Space 0 with `pages` writable pages at `A` holding the pattern of seed
/// 1, and a second space.
pub(super) fn two_spaces(pages: u64) -> (SimMachine, u16) {
    let mut m = SimMachine::new(1024);
    assert_eq!(
        req(&mut m, Request::map_writable(A, pages, U)),
        Response::Done
    );
    write(&mut m, A, pages * 4096, 1, U);
    let (one, _) = create(&mut m);
    check(&mut m);
    (m, one)
}

#[test]
fn data_written_in_one_space_reads_in_the_other() {
    let (mut m, one) = two_spaces(4);
    let before = stats(&mut m);
    share_ok(&mut m, A, 4, one, B);
    let after = stats(&mut m);
    assert_eq!(after.present_pages, before.present_pages, "by frame");
    assert_eq!(after.free_frames + 3, before.free_frames, "B's 3 tables");
    let frames: Vec<u64> = (0..4)
        .map(|i| shared_at(&mut m, A + i * 4096, true, 2))
        .collect();
    switch(&mut m, one);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(shared_at(&mut m, B + i as u64 * 4096, true, 2), *f);
    }
    // Space 0's data, written at A, read through B.
    assert_eq!(read(&mut m, B, 4 * 4096, U), pattern_sum(1, A, 4 * 4096));
    write(&mut m, B + 100, 5000, 2, U);
    check(&mut m);
    switch(&mut m, 0);
    assert_eq!(
        read(&mut m, A + 100, 5000, U),
        pattern_sum(2, B + 100, 5000)
    );
    assert_eq!(stats(&mut m).present_pages, before.present_pages);
    reset_and_check(&mut m);
}

#[test]
fn two_ranges_of_one_space_share() {
    let (mut m, _) = two_spaces(2);
    share_ok(&mut m, A, 2, 0, C);
    assert_eq!(shared_at(&mut m, A, true, 2), shared_at(&mut m, C, true, 2));
    write(&mut m, C, 8192, 3, U);
    assert_eq!(read(&mut m, A, 8192, U), pattern_sum(3, C, 8192));
    // Unmapping both mappings frees the frames, the last one each.
    let free = stats(&mut m).free_frames;
    let unmap = |addr| Request::Unmap {
        addr,
        pages: 2,
        privilege: U,
    };
    assert_eq!(req(&mut m, unmap(A)), Response::Done);
    check(&mut m);
    assert_eq!(stats(&mut m).free_frames, free + 1, "A's table only");
    shared_at(&mut m, C, true, 1);
    shared_at(&mut m, C + 4096, true, 1);
    assert_eq!(req(&mut m, unmap(C)), Response::Done);
    check(&mut m);
    // The two frames, C's table, then the PD and PDPT of slot 0.
    assert_eq!(stats(&mut m).free_frames, free + 1 + 2 + 3);
}

/// Catches `inject-share-no-count`.
#[test]
fn sharing_a_shared_page_counts_every_mapping() {
    let (mut m, one) = two_spaces(2);
    let (two, _) = create(&mut m);
    share_ok(&mut m, A, 2, one, B);
    shared_at(&mut m, A, true, 2);
    // Again from space 0's shared pages, into space 2.
    share_ok(&mut m, A, 2, two, C);
    shared_at(&mut m, A + 4096, true, 3);
    // From space 1's mapping back into space 0: four mappings.
    switch(&mut m, one);
    share_ok(&mut m, B, 2, 0, C);
    for addr in [B, B + 4096] {
        shared_at(&mut m, addr, true, 4);
    }
    switch(&mut m, two);
    shared_at(&mut m, C, true, 4);
    switch(&mut m, 0);
    let f = shared_at(&mut m, C + 4096, true, 4);
    assert_eq!(frame_record(&mut m, f / 4096), 1 << 62 | 4, "the record");
    reset_and_check(&mut m);
}

/// Catches `inject-shared-unmap-frees`.
#[test]
fn unmap_in_one_space_keeps_the_frame() {
    let (mut m, one) = two_spaces(3);
    share_ok(&mut m, A, 3, one, B);
    let before = stats(&mut m);
    let unmap = |addr, pages| Request::Unmap {
        addr,
        pages,
        privilege: U,
    };
    assert_eq!(req(&mut m, unmap(A + 4096, 1)), Response::Done);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.free_frames, before.free_frames, "the frame is kept");
    assert_eq!(s.present_pages, before.present_pages);
    assert_eq!(states(&mut m, A + 4096, 1), vec![PageState::Unusable]);
    switch(&mut m, one);
    // The other mapping keeps the data, and stays shared with a count of 1.
    let f = shared_at(&mut m, B + 4096, true, 1);
    assert_eq!(frame_record(&mut m, f / 4096), 1 << 62 | 1);
    assert_eq!(
        read(&mut m, B + 4096, 4096, U),
        pattern_sum(1, A + 4096, 4096)
    );
    // The last mapping goes: the frame and its record with it.
    assert_eq!(req(&mut m, unmap(B + 4096, 1)), Response::Done);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.free_frames, before.free_frames + 1);
    assert_eq!(s.present_pages, before.present_pages - 1);
    assert_eq!(frame_record(&mut m, f / 4096), 0);
    shared_at(&mut m, B, true, 2);
    reset_and_check(&mut m);
}

#[test]
fn destroying_a_space_drops_its_mappings() {
    let (mut m, one) = two_spaces(4);
    let (two, _) = create(&mut m);
    share_ok(&mut m, A, 4, one, B);
    share_ok(&mut m, A, 2, two, B);
    // Space 2 also shares two ranges of its own: B's first page at C.
    switch(&mut m, two);
    share_ok(&mut m, B, 1, two, C);
    switch(&mut m, 0);
    shared_at(&mut m, A, true, 4);
    let before = stats(&mut m);
    // Not the current space: the counts of the frames space 0 maps drop.
    assert_eq!(destroy(&mut m, two), Response::Done);
    check(&mut m);
    shared_at(&mut m, A, true, 2);
    shared_at(&mut m, A + 4096, true, 2);
    shared_at(&mut m, A + 3 * 4096, true, 2);
    let s = stats(&mut m);
    assert_eq!(s.present_pages, before.present_pages);
    // Space 2's tables (slots 0 and 100: 3 each) and its PML4.
    assert_eq!(s.free_frames, before.free_frames + 7);
    // Space 0 lets go of A: space 1 holds the last mappings.
    let unmap = Request::Unmap {
        addr: A,
        pages: 4,
        privilege: U,
    };
    assert_eq!(req(&mut m, unmap), Response::Done);
    check(&mut m);
    let mid = stats(&mut m);
    assert_eq!(mid.present_pages, s.present_pages);
    assert_eq!(destroy(&mut m, one), Response::Done);
    check(&mut m);
    let end = stats(&mut m);
    assert_eq!(
        end.present_pages,
        mid.present_pages - 4,
        "the last mappings"
    );
    assert_eq!(end.free_frames, mid.free_frames + 4 + 3 + 1);
    reset_and_check(&mut m);
}

#[test]
fn reset_drops_every_mapping_in_every_space() {
    let (mut m, one) = two_spaces(3);
    share_ok(&mut m, A, 3, one, B);
    share_ok(&mut m, A, 1, 0, C);
    switch(&mut m, one);
    write(&mut m, B, 3 * 4096, 9, U);
    // Reset from another space than 0: every record cleared, every frame
    // back (checked by `reset_and_check`).
    reset_and_check(&mut m);
    assert_eq!(states(&mut m, A, 1), vec![PageState::Unusable]);
}
