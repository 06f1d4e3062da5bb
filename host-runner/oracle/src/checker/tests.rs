//! Synthetic images that break each invariant on purpose, and a clean one.

mod bulk;
mod data_thread;
mod incremental;
mod more;
mod mutations;
mod no_evictable;
mod no_evictable_pdpt;
mod shared;
mod shared_counts;
mod shared_random;
mod spaces;
mod v2;

use protocol::pattern::fill;

use super::entry::{U, W};
use super::image::{Image, KSPACE, RAM, TOTAL};
use super::{check, CheckReport, Violation};
use crate::model::{Expectations, ModelState};

/// Pages of the clean image.
const DATA: u64 = 0x1000;
const RO: u64 = 0x2000;
const AOW: u64 = 0x3000;
const SWAP: u64 = 0x4000;
const KPAGE: u64 = KSPACE + 0x5000;

struct Clean {
    img: Image,
    expect: Expectations,
    /// Frame of `DATA`.
    data: u64,
    bytes: [u8; 4096],
}

/// Two present pages (one written), an allocate-on-write page, a page on
/// swap slot 5, a kernel page; expectations that match.
fn clean() -> Clean {
    let mut img = Image::small();
    let mut expect = Expectations::default();
    let data = img.map(DATA, true);
    img.map(RO, false);
    img.set_leaf(AOW, 1 << 1);
    img.set_leaf(SWAP, 5 << 12 | 2 << 1);
    img.map(KPAGE, true);
    let mut bytes = [0u8; 4096];
    fill(3, DATA, &mut bytes);
    img.write(data, &bytes);
    expect.set_state(
        DATA,
        1,
        Some(ModelState::PresentRam {
            writable: true,
            executable: false,
        }),
    );
    expect.set_state(
        RO,
        1,
        Some(ModelState::PresentRam {
            writable: false,
            executable: false,
        }),
    );
    expect.set_state(AOW, 1, Some(ModelState::AllocOnWrite));
    expect.set_state(SWAP, 1, Some(ModelState::OnSwap { slot: 5 }));
    expect.set_state(
        KPAGE,
        1,
        Some(ModelState::PresentRam {
            writable: true,
            executable: false,
        }),
    );
    expect.set_bytes(DATA, bytes);
    Clean {
        img,
        expect,
        data,
        bytes,
    }
}

fn run(c: &Clean) -> CheckReport {
    check(&c.img.mem, &c.img.hello, &c.expect)
}

/// The invariants broken, in order, and every message.
fn broken(r: &CheckReport) -> (Vec<u8>, String) {
    let mut n: Vec<u8> = r.violations.iter().map(Violation::invariant).collect();
    n.sort_unstable();
    n.dedup();
    let text: Vec<String> = r.violations.iter().map(|v| v.to_string()).collect();
    (n, text.join("\n"))
}

/// Asserts that the check broke exactly `invariants` and that its
/// violations say `says`.
#[track_caller]
fn assert_broken(r: &CheckReport, invariants: &[u8], says: &str) {
    let (n, text) = broken(r);
    assert_eq!(n, invariants, "{text}");
    assert!(text.contains(says), "{text}");
}

/// Asserts that the check's violations say `says`.
#[track_caller]
fn assert_says(r: &CheckReport, says: &str) {
    let text = broken(r).1;
    assert!(text.contains(says), "{text}");
}

/// Asserts that the check broke `invariant` (among others, maybe) and that
/// its violations say `says`.
#[track_caller]
fn assert_broken_among(r: &CheckReport, invariant: u8, says: &str) {
    let (n, text) = broken(r);
    assert!(n.contains(&invariant), "{text}");
    assert!(text.contains(says), "{text}");
}

#[test]
fn a_clean_image_passes() {
    let c = clean();
    let r = run(&c);
    assert!(r.is_clean(), "{:#?}", r.violations);
    let virts: Vec<u64> = r.walk.translations.iter().map(|t| t.virt).collect();
    assert_eq!(virts, [DATA, RO, KPAGE]);
    assert_eq!(r.walk.translations[0].frame, c.data);
    assert!(!r.walk.translations[1].writable);
    assert_eq!(
        r.to_string(),
        "memory check passed: 3 translations, 6 tables"
    );
    let levels: Vec<u8> = r.walk.tables.iter().map(|t| t.level).collect();
    assert_eq!(levels, [3, 2, 1, 3, 2, 1]);
}

#[test]
fn invariant_1_frames_in_use() {
    let mut c = clean();
    c.img.set_used(c.data >> 12, false);
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [1], "{text}");
    let pt = c.img.entry_addr(DATA, 1) & !0xfff;
    let pml4e = c.img.read_u64(0x1000);
    assert!(
        text.contains(&format!("data page frame {:#x} is free", c.data)),
        "{text}"
    );
    assert!(
        text.contains(&format!("virt 0x1000 PML4[0]@0x1000={pml4e:#x}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("PT[1]@{pt:#x}={:#x}", c.data | RAM | W | U)),
        "{text}"
    );

    let mut c = clean();
    c.img.set_used(pt >> 12, false);
    assert_broken(&run(&c), &[1], &format!("page-table frame {pt:#x} is free"));

    let mut c = clean();
    let beyond = (TOTAL + 1) << 12;
    c.img.set_leaf(0x6000, beyond | RAM | U);
    c.expect.set_state(
        0x6000,
        1,
        Some(ModelState::PresentRam {
            writable: false,
            executable: false,
        }),
    );
    assert_broken(&run(&c), &[1], "beyond the bitmap");
}

#[test]
fn invariant_2_one_owner_per_frame() {
    let mut c = clean();
    c.img.set_leaf(0x6000, c.data | RAM | W | U);
    c.expect.set_state(
        0x6000,
        1,
        Some(ModelState::PresentRam {
            writable: true,
            executable: false,
        }),
    );
    c.expect.set_bytes(0x6000, c.bytes);
    assert_broken(&run(&c), &[2], "is also mapped at 0x1000; virt 0x6000");

    let mut c = clean();
    let pt = c.img.entry_addr(DATA, 1) & !0xfff;
    c.img.set_leaf(0x6000, pt | RAM | U);
    c.expect.set_state(
        0x6000,
        1,
        Some(ModelState::PresentRam {
            writable: false,
            executable: false,
        }),
    );
    assert_broken_among(&run(&c), 2, "is also the level-1 table for 0x0");

    let mut c = clean();
    c.img.set_leaf(0x6000, 0x5000 | RAM | U);
    c.expect.set_state(
        0x6000,
        1,
        Some(ModelState::PresentRam {
            writable: false,
            executable: false,
        }),
    );
    assert_broken_among(&run(&c), 2, "frame 0x5000 is also a boot reservation");

    // The heap's pages and tables may be boot reservations (set up at
    // boot); its state is the heap's business, not the model's.
    let mut c = clean();
    let heap = c.img.hello.heap.start;
    c.img.set_leaf(heap, 0x6000 | RAM | W);
    let r = run(&c);
    assert!(r.is_clean(), "{:#?}", r.violations);
    // Not so outside the heap.
    c.img.set_leaf(heap - 0x1000, 0x7000 | RAM | W);
    assert_broken(&run(&c), &[2, 5], "frame 0x7000 is also a boot reservation");
}

#[test]
fn invariant_3_no_leak() {
    let mut c = clean();
    c.img.set_used(900, true);
    let r = run(&c);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    assert!(
        matches!(&r.violations[0], Violation::Leak { leaked: 1, leaked_sample, lost: 0, .. } if leaked_sample == &[900 << 12])
    );
    assert!(r.violations[0]
        .to_string()
        .contains("1 frames used but owned by nothing [0x384000]"));

    // A host frame must be used; then it is owned.
    let mut c = clean();
    c.expect.host_frames.insert(800 << 12);
    assert_broken(&run(&c), &[3], "1 boot/host frames marked free [0x320000]");
    c.img.set_used(800, true);
    assert!(run(&c).is_clean());

    let mut c = clean();
    c.img.set_used(TOTAL + 2, false);
    assert_broken(&run(&c), &[3], "bit 1022 past the last frame is 0");
}
