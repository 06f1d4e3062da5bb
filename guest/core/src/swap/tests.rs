//! The word-at-a-time searches of the store's bitmaps against the plain
//! unit-by-unit ones they replaced; the zero page's block against the
//! compressor's.

use super::*;
use crate::sim::SimMemory;
use proptest::prelude::*;
use x86_64::PhysAddr;

/// A store of `frames` frames at frame 0 of a memory of its own, with
/// one frame after it (for pages).
fn store(frames: u64) -> (SimMemory, SwapStore) {
    let base = PhysFrame::containing_address(PhysAddr::new(0));
    let s = SwapStore::layout(base, frames).expect("room for a page");
    let mut mem = SimMemory::new(frames + 1);
    s.format(&mut mem);
    (mem, s)
}

/// The first run of `n` free units at or after the hint, else from 0,
/// one unit at a time.
fn reference(mem: &mut SimMemory, s: &SwapStore, n: u64) -> Option<u64> {
    for from in [s.hint.min(s.units), 0] {
        let (mut run, mut start) = (0, from);
        for u in from..s.units {
            if s.used().get(mem, u) {
                run = 0;
                continue;
            }
            if run == 0 {
                start = u;
            }
            run += 1;
            if run == n {
                return Some(start);
            }
        }
    }
    None
}

/// Marks the units `used` says (one flag per unit, cycled) used.
fn mark(mem: &mut SimMemory, s: &mut SwapStore, used: &[bool]) {
    for (u, &is_used) in (0..s.units).zip(used.iter().cycle()) {
        if is_used {
            s.used().set(mem, u, true);
            s.used_units += 1;
        }
    }
}

proptest! {
    #[test]
    fn find_units_answers_what_the_unit_by_unit_search_did(
        frames in 5u64..12,
        runs in proptest::collection::vec((any::<bool>(), 1usize..140), 1..12),
        hint in 0u64..400,
        n in 1u64..=32,
    ) {
        // Runs of used and free units, long enough to fill and empty
        // whole words.
        let used: Vec<bool> = runs
            .iter()
            .flat_map(|&(u, n)| std::iter::repeat_n(u, n))
            .collect();
        let (mut mem, mut s) = store(frames);
        mark(&mut mem, &mut s, &used);
        s.hint = hint;
        prop_assert_eq!(s.find_units(&mut mem, n), reference(&mut mem, &s, n));
    }
}

#[test]
fn a_store_with_no_unit_to_spare_finds_none_and_the_units_past_its_end_are_never_used() {
    let (mut mem, mut s) = store(5);
    assert_ne!(s.units % 64, 0, "the last word is partly past the end");
    mark(&mut mem, &mut s, &[true]);
    assert_eq!(s.find_units(&mut mem, 1), None);
    // Free the last unit only: a run of one, and none of two (the bits
    // past the end do not count as free).
    let last = s.units - 1;
    s.used().set(&mut mem, last, false);
    s.used_units -= 1;
    assert_eq!(s.find_units(&mut mem, 1), Some(last));
    assert_eq!(s.find_units(&mut mem, 2), None);
}

#[test]
fn end_request_frees_exactly_the_pending_slots() {
    let (mut mem, mut s) = store(8);
    let page = PhysFrame::containing_address(PhysAddr::new(8 * 4096));
    mem.frame_bytes(page).fill(0x5a);
    let slots: Vec<u64> = (0..100)
        .map(|_| s.store(&mut mem, page).expect("room"))
        .collect();
    for &slot in slots.iter().step_by(7) {
        s.load(&mut mem, slot, page).expect("stored");
    }
    s.end_request(&mut mem);
    assert_eq!(
        s.check(&mut mem),
        Ok(100 - slots.iter().step_by(7).count() as u64)
    );
    assert_eq!(s.pending, 0);
}

#[test]
fn a_search_that_found_no_run_answers_larger_ones_until_a_unit_is_freed() {
    let (mut mem, mut s) = store(8);
    let page = PhysFrame::containing_address(PhysAddr::new(8 * 4096));
    mem.frame_bytes(page).fill(0x5a);
    let mut slots = alloc::vec::Vec::new();
    while let Ok(slot) = s.store(&mut mem, page) {
        slots.push(slot);
    }
    // Free every other slot: holes of one slot's units, no run of two.
    let one = slots[1] - slots[0];
    for &slot in slots.iter().step_by(2) {
        s.free(&mut mem, slot);
    }
    assert_eq!(s.find_units(&mut mem, 2 * one), None);
    assert_eq!(s.no_run_of, Some(2 * one));
    assert_eq!(s.find_units(&mut mem, 3 * one), None, "larger: none either");
    assert_eq!(
        s.find_units(&mut mem, one),
        Some(slots[0]),
        "smaller: searched"
    );
    s.free(&mut mem, slots[1]);
    assert_eq!(s.no_run_of, None, "a free may join holes");
    assert_eq!(s.find_units(&mut mem, 2 * one), Some(slots[0]));
}

/// `free_all` leaves the store empty (every bit and length zero, the
/// counts zero), with few slots far apart or many; a pending slot goes
/// too.
#[test]
fn free_all_empties_the_store() {
    for (frames, pages) in [(300u64, 2u64), (200, 60)] {
        let (mut mem, mut s) = store(frames);
        let page = frame_at(frames);
        let mut slots = Vec::new();
        for i in 0..pages {
            // Incompressible bytes, so each slot takes whole runs of units.
            protocol::pattern::fill(i + 1, 0, mem.frame_bytes(page));
            slots.push(s.store(&mut mem, page).expect("room"));
            // Far apart: the next slot goes past a stretch of free units.
            s.hint += 2000;
        }
        s.load(&mut mem, slots[0], page).expect("a page");
        s.free_all(&mut mem);
        assert_eq!(s.check(&mut mem), Ok(0));
        assert_eq!((s.slots, s.bytes, s.used_units, s.pending), (0, 0, 0, 0));
        assert_eq!(s.used().find(&mut mem, 0, s.units, true), None);
        assert_eq!(s.pending().find(&mut mem, 0, s.units, true), None);
        for u in 0..s.units {
            assert_eq!(s.raw().slot_len(&mut mem, u), 0, "unit {u}");
        }
        // And the store takes pages again.
        assert!(s.store(&mut mem, page).is_ok());
    }
}

#[test]
fn the_zero_page_block_is_what_the_compressor_makes_of_zeros() {
    let zeros = [0u8; 4096];
    let mut out = [0u8; COMPRESS_BUF];
    let n = lz4_flex::block::compress_into(&zeros, &mut out).expect("room");
    assert_eq!(&out[..n], ZERO_PAGE);
    let mut back = [1u8; 4096];
    assert_eq!(
        lz4_flex::block::decompress_into(ZERO_PAGE, &mut back).ok(),
        Some(4096)
    );
    assert_eq!(back, zeros);
}

#[test]
fn a_page_of_zeros_goes_out_as_the_zero_block_and_any_other_byte_through_the_compressor() {
    let (mut mem, mut s) = store(300);
    let page = frame_at(300);
    let mut stored = |mem: &mut SimMemory, at: Option<usize>| {
        mem.frame_bytes(page).fill(0);
        if let Some(at) = at {
            mem.frame_bytes(page)[at] = 0x80;
        }
        let want = *mem.frame_bytes(page);
        let slot = s.store(mem, page).expect("room");
        let len = usize_of(s.raw().slot_len(mem, slot));
        let mut bytes = vec![0u8; len];
        s.raw().read(mem, s.data_off + slot * UNIT, &mut bytes);
        mem.frame_bytes(page).fill(0x55);
        s.load(mem, slot, page).expect("a page");
        assert_eq!(*mem.frame_bytes(page), want, "round trip, byte {at:?}");
        bytes
    };
    assert_eq!(stored(&mut mem, None), ZERO_PAGE);
    for at in [0, 7, 8, 63, 64, 2048, 4095] {
        let bytes = stored(&mut mem, Some(at));
        let mut out = [0u8; COMPRESS_BUF];
        let mut page_bytes = [0u8; 4096];
        page_bytes[at] = 0x80;
        let n = lz4_flex::block::compress_into(&page_bytes, &mut out).expect("room");
        assert_eq!(bytes, &out[..n], "byte {at}");
    }
}

#[test]
fn only_a_page_of_zeros_is_all_zero() {
    let mut page = [0u8; 4096];
    assert!(all_zero(&page));
    for at in [0, 1, 7, 8, 63, 64, 65, 1000, 4032, 4095] {
        page[at] = 1;
        assert!(!all_zero(&page), "byte {at}");
        page[at] = 0;
    }
}
