//! Synthetic images that break each invariant on purpose, and a clean one.

use protocol::pattern::fill;
use protocol::{Privilege, Request, Response};

use super::entry::{G, P, PS, U, W};
use super::image::{Image, KSPACE, RAM, TOTAL};
use super::{check, decode_walk, CheckReport, Violation};
use crate::model::{Expectations, Model, ModelState};

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
    let mut img = Image::new();
    let mut expect = Expectations::default();
    let data = img.map(DATA, true);
    img.map(RO, false);
    img.set_leaf(AOW, 1 << 1);
    img.set_leaf(SWAP, 5 << 12 | 2 << 1);
    img.map(KPAGE, true);
    let mut bytes = [0u8; 4096];
    fill(3, DATA, &mut bytes);
    img.write(data, &bytes);
    expect.set_state(DATA, 1, Some(ModelState::PresentRam { writable: true }));
    expect.set_state(RO, 1, Some(ModelState::PresentRam { writable: false }));
    expect.set_state(AOW, 1, Some(ModelState::AllocOnWrite));
    expect.set_state(SWAP, 1, Some(ModelState::OnSwap { slot: 5 }));
    expect.set_state(KPAGE, 1, Some(ModelState::PresentRam { writable: true }));
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

#[test]
fn a_clean_image_passes() {
    let c = clean();
    let r = run(&c);
    assert!(r.is_clean(), "{:#?}", r.violations);
    let virts: Vec<u64> = r.walk.translations.iter().map(|t| t.virt).collect();
    assert_eq!(virts, [DATA, RO, KPAGE]);
    assert_eq!(r.walk.translations[0].frame, c.data);
    assert!(!r.walk.translations[1].writable);
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
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [1], "{text}");
    assert!(
        text.contains(&format!("page-table frame {pt:#x} is free")),
        "{text}"
    );

    let mut c = clean();
    let beyond = (TOTAL + 1) << 12;
    c.img.set_leaf(0x6000, beyond | RAM | U);
    c.expect
        .set_state(0x6000, 1, Some(ModelState::PresentRam { writable: false }));
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [1], "{text}");
    assert!(text.contains("beyond the bitmap"), "{text}");
}

#[test]
fn invariant_2_one_owner_per_frame() {
    let mut c = clean();
    c.img.set_leaf(0x6000, c.data | RAM | W | U);
    c.expect
        .set_state(0x6000, 1, Some(ModelState::PresentRam { writable: true }));
    c.expect.set_bytes(0x6000, c.bytes);
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [2], "{text}");
    assert!(
        text.contains("is also mapped at 0x1000; virt 0x6000"),
        "{text}"
    );

    let mut c = clean();
    let pt = c.img.entry_addr(DATA, 1) & !0xfff;
    c.img.set_leaf(0x6000, pt | RAM | U);
    c.expect
        .set_state(0x6000, 1, Some(ModelState::PresentRam { writable: false }));
    let (n, text) = broken(&run(&c));
    assert!(n.contains(&2), "{text}");
    assert!(text.contains("is also the level-1 table for 0x0"), "{text}");

    let mut c = clean();
    c.img.set_leaf(0x6000, 0x5000 | RAM | U);
    c.expect
        .set_state(0x6000, 1, Some(ModelState::PresentRam { writable: false }));
    let (n, text) = broken(&run(&c));
    assert!(n.contains(&2), "{text}");
    assert!(
        text.contains("frame 0x5000 is also a boot reservation"),
        "{text}"
    );

    // The heap's pages and tables may be boot reservations (set up at
    // boot); its state is the heap's business, not the model's.
    let mut c = clean();
    let heap = c.img.hello.heap.start;
    c.img.set_leaf(heap, 0x6000 | RAM | W);
    let r = run(&c);
    assert!(r.is_clean(), "{:#?}", r.violations);
    // Not so outside the heap.
    c.img.set_leaf(heap - 0x1000, 0x7000 | RAM | W);
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [2, 5], "{text}");
    assert!(
        text.contains("frame 0x7000 is also a boot reservation"),
        "{text}"
    );
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
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [3], "{text}");
    assert!(
        text.contains("1 boot/host frames marked free [0x320000]"),
        "{text}"
    );
    c.img.set_used(800, true);
    assert!(run(&c).is_clean());

    let mut c = clean();
    c.img.set_used(TOTAL + 2, false);
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [3], "{text}");
    assert!(text.contains("bit 1022 past the last frame is 0"), "{text}");
}

#[test]
fn invariant_4_no_empty_table_no_reserved_bits() {
    let mut c = clean();
    c.img.set_leaf(0x4000_0000, 1 << 1);
    c.img.set_leaf(0x4000_0000, 0);
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [4], "{text}");
    assert!(
        text.contains("holds only zero entries; virt 0x40000000 PML4[0]"),
        "{text}"
    );

    type Corrupt = fn(u64) -> u64;
    let cases: [(u64, Corrupt, &str); 4] = [
        (DATA, |e| e | G, "reserved bits"),
        (AOW, |e| e | 1 << 5, "stray bits"),
        (KPAGE, |e| e | U, "U bit"),
        (SWAP, |e| (e & !0xe) | 5 << 1, "no known kind"),
    ];
    for (virt, corrupt, why) in cases {
        let mut c = clean();
        let at = c.img.entry_addr(virt, 1);
        let e = c.img.read_u64(at);
        c.img.write_u64(at, corrupt(e));
        let (n, text) = broken(&run(&c));
        assert!(n.contains(&4), "{text}");
        assert!(
            text.contains(why) && text.contains(&format!("virt {virt:#x}")),
            "{text}"
        );
    }

    // A huge page in the managed space.
    let mut c = clean();
    let at = c.img.entry_addr(DATA, 2);
    let e = c.img.read_u64(at);
    c.img.write_u64(at, e | PS);
    let (n, text) = broken(&run(&c));
    assert!(n.contains(&4), "{text}");
    assert!(text.contains("huge page in the managed space"), "{text}");
}

#[test]
fn invariant_5_states_agree_with_the_model() {
    let mut c = clean();
    c.expect
        .set_state(AOW, 1, Some(ModelState::PresentRam { writable: true }));
    c.expect
        .set_state(SWAP, 1, Some(ModelState::OnSwap { slot: 6 }));
    c.expect
        .set_state(0x7000, 1, Some(ModelState::AllocOnWrite));
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [5], "{text}");
    assert!(
        text.contains(
            "state AllocOnWrite, model expects PresentRam { writable: true }; virt 0x3000"
        ),
        "{text}"
    );
    assert!(
        text.contains("state OnSwap { slot: 5 }, model expects OnSwap { slot: 6 }; virt 0x4000"),
        "{text}"
    );
    assert!(
        text.contains("state Unusable, model expects AllocOnWrite; virt 0x7000"),
        "{text}"
    );

    // Pages where no table exists: reported once per run, with the count.
    let mut c = clean();
    c.expect
        .set_state(0x1ff000, 3, Some(ModelState::AllocOnWrite));
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [5], "{text}");
    assert!(
        text.contains("virt 0x200000 (+2 pages) has no page table"),
        "{text}"
    );

    // The frame Query reported must be the one mapped.
    let mut c = clean();
    c.expect.known_frames.insert(DATA, c.data + 0x1000);
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [5], "{text}");
}

#[test]
fn invariant_6_bytes_agree_with_the_model() {
    let mut c = clean();
    c.img.mem.bytes[c.data as usize + 100] ^= 0xff;
    let r = run(&c);
    assert_eq!(r.violations.len(), 1, "{:#?}", r.violations);
    let want = Violation::DataMismatch {
        path: r.walk.translations[0].path(),
        frame: c.data,
        offset: 100,
        expected: c.bytes[100],
        got: c.bytes[100] ^ 0xff,
    };
    assert_eq!(r.violations[0], want);
    assert!(want.to_string().contains("byte at 0x1064"));
    // A page never written must hold zeros.
    let mut c = clean();
    let ro = c.img.entry_addr(RO, 1);
    let frame = c.img.read_u64(ro) & !0xfff;
    c.img.write(frame + 4095, &[1]);
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [6], "{text}");
    assert!(text.contains("byte at 0x2fff"), "{text}");
}

#[test]
fn unreadable_tables_are_reported() {
    let mut c = clean();
    c.img.write_u64(0x1000 + 8, 0x4000_0000 | P | W | U);
    let (n, text) = broken(&run(&c));
    assert!(n.contains(&0), "{text}");
    assert!(
        text.contains("cannot read the level-3 table at 0x40000000"),
        "{text}"
    );
}

#[test]
fn decode_walk_renders_every_level() {
    let mut c = clean();
    let text = decode_walk(&c.img.mem, &c.img.hello, DATA + 0x10);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains("PML4[0] @ 0x1000"), "{text}");
    assert!(
        text.contains(&format!(
            "PT[1] @ {:#x}",
            c.img.entry_addr(DATA, 1) & !0xfff
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Present {{ kind: Ram, writable: true, frame: {} }}",
            c.data
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("frame {:#x} (used)", c.data)),
        "{text}"
    );
    c.img.set_used(c.data >> 12, false);
    let text = decode_walk(&c.img.mem, &c.img.hello, DATA);
    assert!(text.contains("(FREE)"), "{text}");
    let text = decode_walk(&c.img.mem, &c.img.hello, 0x7000_0000_0000);
    assert!(text.contains("(not present)"), "{text}");
}

#[test]
fn the_model_s_expectations_check_a_matching_image() {
    let mut img = Image::new();
    let mut m = Model::new(&img.hello);
    let u = Privilege::User;
    let steps = [
        (
            Request::Map {
                addr: DATA,
                pages: 2,
                writable: true,
                contiguous: false,
                privilege: u,
            },
            Response::Done,
        ),
        (
            Request::Write {
                addr: DATA + 0xff0,
                len: 0x20,
                seed: 8,
                privilege: u,
            },
            Response::Done,
        ),
    ];
    for (i, (req, resp)) in steps.iter().enumerate() {
        m.apply(i as u64, req, resp)
            .expect("the model accepts the answers");
    }
    let a = img.map(DATA, true);
    let b = img.map(DATA + 0x1000, true);
    let mut bytes = [0u8; 0x20];
    fill(8, DATA + 0xff0, &mut bytes);
    img.write(a + 0xff0, &bytes[..0x10]);
    let r = check(&img.mem, &img.hello, &m.expectations());
    let (n, text) = broken(&r);
    assert_eq!(n, [6], "{text}");
    assert!(text.contains("byte at 0x2000"), "{text}");
    img.write(b, &bytes[0x10..]);
    let r = check(&img.mem, &img.hello, &m.expectations());
    assert!(r.is_clean(), "{:#?}", r.violations);
}

#[test]
fn a_128_mib_image_with_thousands_of_pages_is_checked_quickly() {
    let mut img = Image::sized(32764, 32768);
    let mut expect = Expectations::default();
    // 4000 pages spread over 8 GiB (many tables), every tenth written.
    for i in 0..4000u64 {
        let virt = i * 0x20_1000;
        let frame = img.map(virt, true);
        expect.set_state(virt, 1, Some(ModelState::PresentRam { writable: true }));
        if i % 10 == 0 {
            let mut bytes = [0u8; 4096];
            fill(i, virt, &mut bytes);
            img.write(frame, &bytes);
            expect.set_bytes(virt, bytes);
        }
    }
    let start = std::time::Instant::now();
    let r = check(&img.mem, &img.hello, &expect);
    let took = start.elapsed();
    assert!(r.is_clean(), "{:?}", r.violations.first());
    assert_eq!(r.walk.translations.len(), 4000);
    // A generous bound for unoptimized builds on a busy machine (release: ~20 ms);
    // a walk quadratic in pages or tables would take minutes.
    assert!(
        took < std::time::Duration::from_secs(10),
        "check took {took:?}"
    );
    eprintln!(
        "check of 4000 pages, {} tables: {took:?}",
        r.walk.tables.len()
    );
}
