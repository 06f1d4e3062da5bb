//! The checker's bulk passes (whole tables, the frame-info table, the swap
//! store's bookkeeping scanned a block at a time, blank stretches skipped)
//! still find one wrong entry anywhere in a long blank stretch: at its
//! first and last word, at a block boundary and between boundaries.

use super::super::entry::W;
use super::super::{CheckReport, Checker};
use super::{assert_broken, assert_says, broken};
use crate::bench::Scenario;

/// A 64 MiB machine with nothing mapped: its heap region is 16 MiB of
/// allocate-on-write pages, 8 whole allocate-on-write PD entries (as the
/// guest boots); a test that sets a heap page fills that region's table
/// first (`Image::table_at`), so its entries are then scanned.
fn machine() -> Scenario {
    Scenario::empty(64, 16)
}

fn run(s: &Scenario) -> CheckReport {
    Checker::new().full(&s.img.mem, &s.img.hello, &s.model.view(), None)
}

/// Entry indexes that probe a table: both ends, block boundaries and
/// places between them.
const PROBES: [u64; 7] = [0, 1, 63, 64, 300, 510, 511];

#[test]
fn the_blank_machine_is_clean() {
    let s = machine();
    let r = run(&s);
    assert!(r.is_clean(), "{r}");
    assert_eq!(s.img.hello.heap_max_bytes, 16 << 20);
}

#[test]
fn one_zero_entry_in_a_table_of_heap_entries_is_found() {
    for table in [0, 7] {
        for i in PROBES {
            let mut s = machine();
            let virt = s.img.hello.heap.start + (table << 21) + (i << 12);
            s.img.set_leaf(virt, 0);
            let (n, text) = broken(&run(&s));
            assert_eq!(n, [4], "{text}");
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(
                text.contains("heap region: a heap page with a zero entry;")
                    && text.contains(&format!("virt {virt:#x}")),
                "{text}"
            );
        }
    }
}

#[test]
fn one_entry_past_the_heap_or_outside_it_is_found() {
    for i in PROBES {
        // The first table past heap_max_bytes, blank but for one entry.
        let mut s = machine();
        let virt = s.img.hello.heap.start + (8 << 21) + (i << 12);
        s.img.set_leaf(virt, W);
        let (n, text) = broken(&run(&s));
        assert_eq!(n, [4], "{text}");
        assert!(
            text.contains("heap region: an entry past heap_max_bytes;")
                && text.contains(&format!("virt {virt:#x}")),
            "{text}"
        );
        // A user table the model expects nothing of.
        let mut s = machine();
        let virt = 0x4000_0000 + (i << 12);
        s.img.set_leaf(virt, W);
        let (n, text) = broken(&run(&s));
        assert_eq!(n, [5], "{text}");
        assert!(
            text.contains("model expects Unusable") && text.contains(&format!("virt {virt:#x}")),
            "{text}"
        );
    }
}

/// Word indexes that probe a table of `words` words scanned a 64-byte
/// block (8 words) at a time: both ends, block boundaries, between them.
fn word_probes(words: u64) -> Vec<u64> {
    let mut w = vec![0, 1, 7, 8, 63, 64, words / 2 + 3, words - 8, words - 1];
    w.retain(|&i| i < words);
    w
}

#[test]
fn one_record_anywhere_in_the_frame_info_table_is_found() {
    let total = machine().img.hello.total_frames;
    for n in word_probes(total) {
        for checker in [Checker::new(), warm()] {
            let mut checker = checker;
            let mut s = machine();
            let at = s.img.hello.frame_info.start + n * 8;
            s.img.write_u64(at, crate::checker::mmap::record(0, 1));
            let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), None);
            let says = format!(
                "frame {:#x}: record 0x8000000000000001 but no present file page maps the frame",
                n << 12
            );
            assert_broken(&r, &[5], &says);
        }
    }
}

/// A checker whose record of a clean machine holds mirrors to bring up
/// to date (the stateful path).
fn warm() -> Checker {
    let s = machine();
    let mut c = Checker::new();
    assert!(c
        .full(&s.img.mem, &s.img.hello, &s.model.view(), None)
        .is_clean());
    c
}

#[test]
fn one_stray_length_or_bit_anywhere_in_the_swap_store_is_found() {
    let s = machine();
    let (parts, at) = (s.img.swap_parts(), s.img.hello.swap.start);
    // Lengths: 4 to a word; bitmaps: 64 units to a word.
    for w in word_probes(parts.units / 4) {
        let slot = w * 4 + 3;
        let mut s = machine();
        s.img.write(at + parts.lengths + slot * 2, &[0x10, 0]);
        assert_says(
            &run(&s),
            &format!("slot {slot} holds 16 bytes but no page is on it"),
        );
    }
    for w in word_probes(parts.units / 64) {
        let unit = w * 64 + 17;
        let (byte, bit) = (unit / 8, 1u8 << (unit % 8));
        let mut s = machine();
        s.img.write(at + parts.pending + byte, &[bit]);
        assert_says(
            &run(&s),
            &format!("pending bit of unit {unit} set between requests"),
        );
        let mut s = machine();
        s.img.write(at + parts.used + byte, &[bit]);
        assert_says(
            &run(&s),
            &format!("unit {unit} is marked used but no slot owns it"),
        );
    }
}

#[test]
fn one_used_frame_nothing_owns_anywhere_is_found() {
    let total = machine().img.hello.total_frames;
    // Free frames only: the machine's boot structures take the first ones.
    let first_free = (0..total).find(|&f| !machine().img.used(f)).unwrap();
    for w in word_probes(total / 64) {
        for bit in [0, 31, 63] {
            let f = (w * 64 + bit).max(first_free);
            let mut checker = warm();
            let mut s = machine();
            s.img.set_used(f, true);
            let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), None);
            assert_broken(
                &r,
                &[3],
                &format!("1 frames used but owned by nothing [{:#x}]", f << 12),
            );
        }
    }
}

#[test]
fn swap_units_owned_at_one_check_are_not_owned_at_the_next() {
    // Pages on swap: their slots own units, marked used.
    let s = Scenario::new(64, 16);
    let mut checker = Checker::new();
    let view = s.model.view();
    assert!(checker
        .full(&s.img.mem, &s.img.hello, &view, None)
        .is_clean());
    let (parts, at) = (s.img.swap_parts(), s.img.hello.swap.start);
    let used = (at + parts.used) as usize;
    let bits = &s.img.mem.bytes[used..used + (parts.units / 8) as usize];
    let byte = bits.iter().position(|&b| b != 0).expect("a used unit");
    let unit = byte as u64 * 8 + u64::from(bits[byte].trailing_zeros());
    // The same unit marked used where no page is on swap.
    let mut m = machine();
    m.img.write(at + parts.used + byte as u64, &[bits[byte]]);
    let r = checker.full(&m.img.mem, &m.img.hello, &m.model.view(), None);
    assert_says(
        &r,
        &format!("unit {unit} is marked used but no slot owns it"),
    );
}
