//! Invariants 4–6, unreadable memory, the decoded walk, the model's own
//! expectations, and speed.

use protocol::pattern::fill;
use protocol::{Privilege, Request, Response};

use super::super::entry::{Leaf, PresentKind};
use super::super::entry::{G, P, PS, U, W};
use super::super::image::Image;
use super::super::{address_path, check, decode_walk, region_leaves, MemoryError, Violation};
use super::{
    assert_broken, assert_broken_among, assert_says, broken, clean, run, Clean, AOW, DATA, KPAGE,
    RO, SWAP,
};
use crate::model::{Expectations, Model, ModelState};

#[test]
fn invariant_4_no_empty_table_no_reserved_bits() {
    let mut c = clean();
    c.img.set_leaf(0x4000_0000, 1 << 1);
    c.img.set_leaf(0x4000_0000, 0);
    assert_broken(
        &run(&c),
        &[4],
        "holds only zero entries; virt 0x40000000 PML4[0]",
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
    assert_broken_among(&run(&c), 4, "huge page in the managed space");
}

#[test]
fn invariant_4_a_pd_entry_counts_the_present_entries_of_its_page_table() {
    let mut c = clean();
    let at = c.img.entry_addr(DATA, 2);
    let e = c.img.read_u64(at);
    // DATA's page table holds two present pages (DATA and RO), counted.
    assert_eq!(e >> 52, 2, "{e:#x}");
    assert!(run(&c).is_clean());

    for (count, why) in [
        (1, "counts 1 present entries in the page table at"),
        (3, "counts 3 present entries in the page table at"),
        (0, "counts 0 present entries in the page table at"),
    ] {
        let mut c = clean();
        c.img.write_u64(at, (e & !(0x3ff << 52)) | count << 52);
        let (n, text) = broken(&run(&c));
        assert_eq!(n, [4], "{text}");
        assert!(
            text.contains(why) && text.contains("which holds 2"),
            "{text}"
        );
    }

    // Above 512, or in a PDPT entry, the bits are reserved.
    let mut c = clean();
    c.img.write_u64(at, (e & !(0x3ff << 52)) | 513 << 52);
    assert_says(&run(&c), "present count above 512");
    let mut c = clean();
    let pdpte = c.img.entry_addr(DATA, 3);
    let e3 = c.img.read_u64(pdpte);
    c.img.write_u64(pdpte, e3 | 1 << 52);
    assert_says(&run(&c), "upper-level entry with reserved bits set");
}

#[test]
fn invariant_5_states_agree_with_the_model() {
    let mut c = clean();
    c.expect.set_state(
        AOW,
        1,
        Some(ModelState::PresentRam {
            writable: true,
            executable: false,
        }),
    );
    c.expect
        .set_state(SWAP, 1, Some(ModelState::OnSwap { slot: 6 }));
    c.expect
        .set_state(0x7000, 1, Some(ModelState::AllocOnWrite));
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [5], "{text}");
    assert!(
        text.contains(
            "state AllocOnWrite, model expects PresentRam { writable: true, executable: false }; virt 0x3000"
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
    assert_broken(&run(&c), &[5], "virt 0x200000 (+2 pages) has no page table");

    // The frame Query reported must be the one mapped.
    let mut c = clean();
    c.expect.known_frames.insert(DATA, c.data + 0x1000);
    let (n, text) = broken(&run(&c));
    assert_eq!(n, [5], "{text}");
}

#[test]
fn nx_is_set_on_data_and_clear_only_on_code_w_xor_x() {
    const NX: u64 = 1 << 63;
    // A writable data page with NX clear: writable and executable.
    let mut c = clean();
    let at = c.img.entry_addr(DATA, 1);
    c.img.write_u64(at, c.img.read_u64(at) & !NX);
    // (its frame is then owned by nothing: invariant 3 too)
    assert_broken_among(&run(&c), 4, "present entry writable and executable (W^X)");
    // A read-only data page with NX clear: code where the model has data.
    let mut c = clean();
    let at = c.img.entry_addr(RO, 1);
    c.img.write_u64(at, c.img.read_u64(at) & !NX);
    assert_broken(
        &run(&c),
        &[5],
        "model expects PresentRam { writable: false, executable: false }",
    );
    // ... and the other way round: code the guest left NX.
    let mut c = clean();
    c.expect.set_state(
        RO,
        1,
        Some(ModelState::PresentRam {
            writable: false,
            executable: true,
        }),
    );
    assert_broken(
        &run(&c),
        &[5],
        "model expects PresentRam { writable: false, executable: true }",
    );
    let at = c.img.entry_addr(RO, 1);
    c.img.write_u64(at, c.img.read_u64(at) & !NX);
    assert!(run(&c).is_clean(), "code, NX clear, read-only");
    // A file page (software bits 0b010) is never executable.
    let mut c = clean();
    let at = c.img.entry_addr(RO, 1);
    c.img
        .write_u64(at, (c.img.read_u64(at) & !NX & !(7 << 9)) | 2 << 9);
    assert_broken_among(&run(&c), 4, "executable entry that is not usable RAM");
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
    let frame = c.img.read_u64(ro) & 0x000f_ffff_ffff_f000;
    c.img.write(frame + 4095, &[1]);
    assert_broken(&run(&c), &[6], "byte at 0x2fff");
}

#[test]
fn unreadable_tables_are_reported() {
    let mut c = clean();
    c.img.write_u64(0x1000 + 8, 0x4000_0000 | P | W | U);
    assert_broken_among(&run(&c), 0, "cannot read the level-3 table at 0x40000000");
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
            "Present {{ kind: Ram, writable: true, executable: false, frame: {} }}",
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
fn region_leaves_decode_every_page_of_a_2mib_region() {
    let c = clean();
    let leaves = region_leaves(&c.img.mem, &c.img.hello, DATA + 0x10).unwrap();
    assert_eq!(leaves.len(), 512);
    assert_eq!(leaves[0], Leaf::Unusable);
    assert_eq!(
        leaves[1],
        Leaf::Present {
            kind: PresentKind::Ram,
            writable: true,
            executable: false,
            frame: c.data
        }
    );
    assert_eq!(leaves[3], Leaf::AllocOnWrite);
    assert!(matches!(leaves[4], Leaf::OnSwap { .. }), "{:?}", leaves[4]);
    // No page table below: every page is unusable.
    let far = region_leaves(&c.img.mem, &c.img.hello, 0x7000_0000_0000).unwrap();
    assert!(far.iter().all(|l| *l == Leaf::Unusable));
}

#[test]
fn address_path_reads_each_level_and_ends_where_the_path_does() {
    let mut c = clean();
    let root = c.img.hello.page_table_root;
    let path: Vec<_> = address_path(&c.img.mem, root, DATA).collect();
    assert_eq!(
        path.iter().map(|e| e.level).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(path[0].table, root);
    for pair in path.windows(2) {
        assert_eq!(pair[0].leads_to(), Some(pair[1].table));
    }
    let leaf = c.img.entry_addr(DATA, 1);
    assert_eq!(path[3].table + path[3].index * 8, leaf);
    assert_eq!(path[3].raw, Ok(c.img.read_u64(leaf)));
    assert_eq!(path[3].leads_to(), Some(c.data));

    // A path that is not present ends at the first absent entry.
    let far: Vec<_> = address_path(&c.img.mem, root, 0x7000_0000_0000).collect();
    assert_eq!(far.last().map(|e| e.leads_to()), Some(None));
    assert!(far.len() < 4, "{far:?}");

    // A huge page's frame is read as a table: the reader decides.
    let huge = 0x4000_0000;
    let pd = c.img.entry_addr(huge, 2);
    c.img.write_u64(pd, 0x20_0000 | P | W | U | PS);
    let levels: Vec<_> = address_path(&c.img.mem, root, huge)
        .map(|e| e.level)
        .collect();
    assert_eq!(levels, [0, 1, 2, 3]);

    // An unreadable table ends the path with its error.
    c.img.write_u64(pd, 0x4000_0000_0000 | P | W | U);
    let last = address_path(&c.img.mem, root, huge).last().unwrap();
    assert_eq!(last.level, 3);
    assert!(
        matches!(last.raw, Err(MemoryError::OutOfBounds { .. })),
        "{last:?}"
    );
    assert_eq!(last.leads_to(), None);
}

#[test]
fn the_model_s_expectations_check_a_matching_image() {
    let mut img = Image::small();
    let mut m = Model::new(&img.hello);
    let u = Privilege::User;
    let steps = [
        (
            Request::Map {
                addr: DATA,
                pages: 2,
                writable: true,
                executable: false,
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
    assert_broken(&r, &[6], "byte at 0x2000");
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
        expect.set_state(
            virt,
            1,
            Some(ModelState::PresentRam {
                writable: true,
                executable: false,
            }),
        );
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

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Entries of any value, at any level, never make the checker panic, and
    /// a random value where the model expects another is always reported.
    #[test]
    fn arbitrary_entries_are_judged_without_panic(
        pokes in proptest::collection::vec((0u64..8, 1u32..=4, proptest::prelude::any::<u64>()), 1..8)
    ) {
        let mut c = clean();
        // Every entry's place first: a poked upper entry may point anywhere.
        let places: Vec<(u64, u64)> = pokes
            .iter()
            .map(|&(page, level, raw)| (c.img.entry_addr(page * 0x20_0000 + DATA, level), raw))
            .collect();
        let mut changed = false;
        for (at, raw) in places {
            changed |= c.img.read_u64(at) != raw;
            c.img.write_u64(at, raw);
        }
        let r = run(&c);
        proptest::prop_assert_eq!(r.is_clean(), !changed, "{}", r);
        let _ = decode_walk(&c.img.mem, &c.img.hello, DATA);
    }
}

/// A 2 MiB region of the clean image held by one whole allocate-on-write
/// PD entry: the table for its pages made (all allocate on write), the PD
/// entry rewritten to the whole form over the same frame, and the frame's
/// bytes made garbage. Answers the PD entry's address and its frame.
fn whole_aow_region(c: &mut Clean, region: u64) -> (u64, u64) {
    c.img.set_leaf(region, 1 << 1);
    let at = c.img.entry_addr(region, 2);
    let frame = c.img.read_u64(at) & 0x000f_ffff_ffff_f000;
    c.img.write(frame, &[0xa5; 4096]);
    c.img.write_u64(at, frame | 1 << 1);
    c.expect
        .set_state(region, 512, Some(ModelState::AllocOnWrite));
    (at, frame)
}

#[test]
fn invariant_4_a_whole_allocate_on_write_pd_entry_stands_for_512_pages() {
    const REGION: u64 = 0x4000_0000;
    let mut c = clean();
    let (at, frame) = whole_aow_region(&mut c, REGION);
    // Its pages are allocate on write, its frame a table: the bytes there
    // are not read.
    let r = run(&c);
    assert!(r.is_clean(), "{:#?}", r.violations);
    assert!(r
        .walk
        .tables
        .iter()
        .any(|t| t.frame == frame && t.level == 1));
    let leaves = region_leaves(&c.img.mem, &c.img.hello, REGION + 0x1000).unwrap();
    assert!(leaves.iter().all(|l| *l == Leaf::AllocOnWrite));
    let text = decode_walk(&c.img.mem, &c.img.hello, REGION + 0x1000);
    assert!(text.contains("whole allocate-on-write 2 MiB"), "{text}");

    // Its pages are what the model says, one by one.
    let mut wrong = c.expect.clone();
    wrong.set_state(REGION + 7 * 4096, 1, None);
    let r = check(&c.img.mem, &c.img.hello, &wrong);
    let (n, text) = broken(&r);
    assert_eq!(n, [5], "{text}");

    // Its frame is in use.
    let mut c2 = clean();
    let (_, frame) = whole_aow_region(&mut c2, REGION);
    c2.img.set_used(frame >> 12, false);
    let (n, text) = broken(&run(&c2));
    assert!(n.contains(&1), "{text}");

    // Any other bit makes it no entry of the format.
    for stray in [1 << 5, 1 << 52, 1 << 63, 3 << 1] {
        let mut c = clean();
        let (at, frame) = whole_aow_region(&mut c, REGION);
        c.img.write_u64(at, frame | 1 << 1 ^ stray);
        let (n, text) = broken(&run(&c));
        assert!(n.contains(&4), "{stray:#x}: {text}");
        assert!(text.contains("not present"), "{stray:#x}: {text}");
    }
    let _ = at;

    // In the heap region too (where the heap's untouched tables stand
    // from boot): its frame is one of the heap's tables, a boot
    // reservation, and its pages are allocate on write.
    let mut c = clean();
    c.img.hello.heap_max_bytes = 0x20_0000;
    let heap = c.img.hello.heap.start;
    let (_, frame) = whole_aow_region(&mut c, heap);
    // As the guest lists it: made at boot, a boot reservation.
    c.img.hello.boot_reserved.push(protocol::PhysRange {
        start: frame,
        end: frame + 4096,
    });
    let r = run(&c);
    assert!(r.is_clean(), "{:#?}", r.violations);
    // But not past `heap_max_bytes`, where every entry is zero: it
    // stands for 512 allocate-on-write pages, some of them past the end.
    c.img.hello.heap_max_bytes = 0x1f_f000;
    assert_broken_among(&run(&c), 4, "past heap_max_bytes");

    // Only in a PD entry: in a PDPT entry it means nothing.
    let mut c = clean();
    let pdpte = c.img.entry_addr(DATA, 3);
    let e = c.img.read_u64(pdpte);
    c.img.write_u64(pdpte, (e & 0x000f_ffff_ffff_f000) | 1 << 1);
    let (n, text) = broken(&run(&c));
    assert!(n.contains(&4), "{text}");
}
