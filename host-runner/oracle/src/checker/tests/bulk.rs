//! The checker's bulk passes (whole tables, the frame-info table, the swap
//! store's bookkeeping scanned a block at a time, blank stretches skipped)
//! still find one wrong entry anywhere in a long blank stretch: at its
//! first and last word, at a block boundary and between boundaries.

use super::super::entry::W;
use super::super::image::ImageWriter;
use super::super::{CheckReport, Checker};
use super::broken;
use crate::bench::Scenario;

/// A 64 MiB machine with nothing mapped: its heap region is 16 MiB of
/// allocate-on-write entries, 8 whole level-1 tables.
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
