//! Synthetic version-2 images: file pages and their frame-info records,
//! the file image, the swap store and the heap region, each broken on
//! purpose, and a clean one.

use protocol::pattern::fill;
use protocol::{FileInfo, PhysRange};

use super::super::entry::{U, W};
use super::super::image::{Image, RAM};
use super::super::Checker;
use super::{assert_broken_among, assert_says, broken, check, CheckReport, Violation};
use crate::model::{file_page, Expectations, FileSpec, ModelState};

const IMAGE: u64 = 900 << 12;
const INFO: u64 = 903 << 12;
const SWAP: u64 = 906 << 12;
/// Units of the store's data area (8 KiB).
const UNITS: u64 = 64;
const CLEAN: u64 = 0x10_0000;
const PRIVATE: u64 = 0x10_1000;
const NOT_PRESENT: u64 = 0x10_2000;
const RAW_SLOT: u64 = 0x10_3000;
const LZ4_SLOT: u64 = 0x10_4000;
const SEED: u64 = 11;
const MMAP_CLEAN: u64 = 1 | 2 << 9 | 1 << 63;
const MMAP_PRIVATE: u64 = 1 | 3 << 9 | 1 << 63;

struct V2 {
    img: Image,
    expect: Expectations,
    clean_frame: u64,
    private_bytes: [u8; 4096],
}

/// The store's part `part` (1 used bitmap, 2 pending, 3 lengths, 4 data).
fn store_part(part: u64) -> u64 {
    SWAP + part * 4096
}

/// A file of 2 pages; page 1 mapped clean at `CLEAN`, page 0 private at
/// `PRIVATE`, page 1 not present at `NOT_PRESENT`; a raw slot 0 and an LZ4
/// slot 40 in the swap store.
fn v2() -> V2 {
    let mut img = Image::small();
    for f in 900..912 {
        img.set_used(f, true);
    }
    let h = &mut img.hello;
    h.boot_reserved.push(PhysRange {
        start: IMAGE,
        end: 912 << 12,
    });
    h.files = vec![FileInfo {
        pages: 2,
        image: PhysRange {
            start: IMAGE,
            end: IMAGE + 0x2000,
        },
    }];
    h.frame_info = PhysRange {
        start: INFO,
        end: INFO + 0x3000,
    };
    h.swap = PhysRange {
        start: SWAP,
        end: SWAP + 0x6000,
    };
    img.write(IMAGE, &file_page(SEED, 0));
    img.write(IMAGE + 0x1000, &file_page(SEED, 1));
    let mut expect = Expectations::default();
    expect.set_files(&[FileSpec {
        pages: 2,
        seed: SEED,
    }]);
    // The clean page: the file's bytes, W=0, its record.
    let clean_frame = img.alloc();
    img.write(clean_frame, &file_page(SEED, 1));
    img.set_leaf(CLEAN, clean_frame | MMAP_CLEAN | U);
    img.write_u64(INFO + (clean_frame >> 12) * 8, 1 << 63 | 1);
    let state = |page, private| {
        Some(ModelState::PresentMmap {
            file: 0,
            page,
            private,
        })
    };
    expect.set_state(CLEAN, 1, state(1, false));
    // The private page: written bytes, W=1.
    let frame = img.alloc();
    let mut private_bytes = file_page(SEED, 0);
    fill(5, PRIVATE, &mut private_bytes[..64]);
    img.write(frame, &private_bytes);
    img.set_leaf(PRIVATE, frame | MMAP_PRIVATE | W | U);
    img.write_u64(INFO + (frame >> 12) * 8, 1 << 63);
    expect.set_state(PRIVATE, 1, state(0, true));
    expect.set_bytes(PRIVATE, private_bytes);
    img.set_leaf(NOT_PRESENT, 3 << 1 | 1 << 12);
    expect.set_state(
        NOT_PRESENT,
        1,
        Some(ModelState::NotPresentMmap { file: 0, page: 1 }),
    );
    // The swap store: header, used bitmap, pending bitmap, lengths, data.
    let mut header = Vec::new();
    header.extend(b"VMMSWAP1");
    header.extend(128u32.to_le_bytes());
    header.extend((UNITS as u32).to_le_bytes());
    for part in 1..5u64 {
        header.extend((part * 4096).to_le_bytes());
    }
    img.write(SWAP, &header);
    let mut raw = [0u8; 4096];
    fill(6, RAW_SLOT, &mut raw);
    let mut sparse = [0u8; 4096];
    fill(7, LZ4_SLOT, &mut sparse[..16]);
    let mut packed = vec![0u8; 8192];
    let n = lz4_flex::block::compress_into(&sparse, &mut packed).expect("fits");
    packed.truncate(n);
    assert!(packed.len() <= 128, "one unit");
    let data = store_part(4);
    img.write(data, &raw);
    img.write(data + 40 * 128, &packed);
    let lengths = store_part(3);
    img.write(lengths, &4096u16.to_le_bytes());
    img.write(lengths + 80, &(packed.len() as u16).to_le_bytes());
    let used = store_part(1);
    img.write(used, &[0xff, 0xff, 0xff, 0xff, 0, 1]);
    img.set_leaf(RAW_SLOT, 2 << 1);
    img.set_leaf(LZ4_SLOT, 2 << 1 | 40 << 12);
    expect.set_state(RAW_SLOT, 1, Some(ModelState::OnSwap { slot: 0 }));
    expect.set_state(LZ4_SLOT, 1, Some(ModelState::OnSwap { slot: 40 }));
    expect.set_bytes(RAW_SLOT, raw);
    expect.set_bytes(LZ4_SLOT, sparse);
    V2 {
        img,
        expect,
        clean_frame,
        private_bytes,
    }
}

fn run(c: &V2) -> CheckReport {
    check(&c.img.mem, &c.img.hello, &c.expect)
}

/// The one invariant `c` breaks and the report's text, which must say `want`.
fn breaks(c: &V2, invariant: u8, want: &str) {
    let (n, text) = broken(&run(c));
    assert_eq!(n, [invariant], "{text}");
    assert!(text.contains(want), "{want}: {text}");
}

#[test]
fn a_clean_v2_image_passes() {
    let r = run(&v2());
    assert!(r.is_clean(), "{r}");
    assert_eq!(r.walk.translations.len(), 2);
}

#[test]
fn frame_info_records_name_file_and_page() {
    let mut c = v2();
    let at = INFO + (c.clean_frame >> 12) * 8;
    c.img.write_u64(at, 1 << 63);
    let want = format!(
        "frame-info record of frame {:#x} is 0x8000000000000000, model expects 0x8000000000000001 (file 0, page 0x1); virt 0x100000 PML4[0]",
        c.clean_frame
    );
    breaks(&c, 5, &want);
    c.img.write_u64(at, 0);
    breaks(&c, 5, "is 0x0, model expects 0x8000000000000001");
    // A record on a frame no file page maps.
    let mut c = v2();
    c.img.write_u64(INFO + 500 * 8, 1 << 63 | 3);
    breaks(&c, 5, "frame-info table at frame 0x1f4000: record 0x8000000000000003 but no present file page maps the frame");
    c.img.write_u64(INFO + 500 * 8, 1 << 50);
    breaks(&c, 5, "corrupt record 0x4000000000000");
}

#[test]
fn clean_file_pages_are_read_only_and_private_ones_writable() {
    let mut c = v2();
    c.img.set_leaf(CLEAN, c.clean_frame | MMAP_CLEAN | W | U);
    breaks(
        &c,
        5,
        "state W=1, model expects W=0 for a clean file page; virt 0x100000",
    );
}

#[test]
fn file_pages_and_images_hold_the_file_s_bytes() {
    let mut c = v2();
    c.img.write(c.clean_frame + 9, &[0xaa]);
    breaks(&c, 6, "byte at 0x100009");
    let mut c = v2();
    let mut b = c.private_bytes;
    b[100] ^= 1;
    c.expect.set_bytes(PRIVATE, b);
    breaks(&c, 6, "byte at 0x101064");
    let mut c = v2();
    c.img.write(IMAGE + 0x1003, &[!file_page(SEED, 1)[3]]);
    breaks(&c, 6, "file 0 page 0x1 (phys 0x385000) byte 0x3");
}

/// Without a file's spec, a clean page of it must hold what the file's
/// image in guest memory holds there (the checker reads the image into its
/// scratch page; a spec'd file's page is made from the seed instead).
#[test]
fn a_file_without_a_spec_is_checked_against_its_image() {
    let mut c = v2();
    c.expect.files = vec![None];
    assert!(run(&c).is_clean(), "{}", run(&c));
    // The clean page and the image agree on a changed byte: still clean,
    // for the image is the reference (a spec'd file would see it).
    c.img.write(c.clean_frame + 9, &[0xaa]);
    c.img.write(IMAGE + 0x1009, &[0xaa]);
    assert!(run(&c).is_clean(), "{}", run(&c));
    // The page alone changed: its bytes differ from the image's.
    c.img.write(c.clean_frame + 10, &[!file_page(SEED, 1)[10]]);
    breaks(&c, 6, "byte at 0x10000a");
}

#[test]
fn the_swap_store_holds_exactly_the_on_swap_pages() {
    let lengths = SWAP + 3 * 4096;
    let used = SWAP + 4096;
    let mut c = v2();
    c.img.write(lengths + 80, &[0, 0]);
    assert_broken_among(&run(&c), 3, "slot 40 of the page at 0x104000 holds no data");
    let mut c = v2();
    c.img.write(lengths + 20, &[10, 0]);
    c.img.write(used + 1, &[0xff]);
    breaks(&c, 3, "slot 10 holds 10 bytes but no page is on it");
    let mut c = v2();
    c.img.write(used + 3, &[0x7f]);
    breaks(&c, 3, "unit 31 of slot 0 is not marked used");
    let mut c = v2();
    c.img.write(used + 6, &[1]);
    breaks(&c, 3, "unit 48 is marked used but no slot owns it (a leak)");
    let mut c = v2();
    c.img.write(SWAP + 2 * 4096 + 5, &[4]);
    breaks(&c, 3, "pending bit of unit 42 set between requests");
    let mut c = v2();
    c.img.write(SWAP, b"VMMSWAP2");
    breaks(&c, 3, "header: bad magic");
    // Slot 0's units overlap a slot starting inside them.
    let mut c = v2();
    c.img.write(lengths + 2, &[1, 0]);
    c.expect
        .set_state(0x10_5000, 1, Some(ModelState::OnSwap { slot: 1 }));
    c.img.set_leaf(0x10_5000, 2 << 1 | 1 << 12);
    assert_says(&run(&c), "unit 1 belongs to slots 0 and 1");
}

#[test]
fn swapped_data_survives_in_the_store() {
    let mut c = v2();
    c.img.write(SWAP + 4 * 4096 + 77, &[0]);
    let mut b = [0u8; 4096];
    fill(6, RAW_SLOT, &mut b);
    let want = format!("swap slot 0 byte 0x4d (page byte 0x10304d) is 0x00, model expects {:#04x}; virt 0x103000 PML4[0]", b[77]);
    if b[77] != 0 {
        breaks(&c, 6, &want);
    }
    let mut c = v2();
    let mut sparse = [0u8; 4096];
    fill(7, LZ4_SLOT, &mut sparse[..16]);
    sparse[4000] = 1;
    c.expect.set_bytes(LZ4_SLOT, sparse);
    breaks(&c, 6, "swap slot 40 byte 0xfa0");
    let mut c = v2();
    c.img.write(SWAP + 4 * 4096 + 40 * 128, &[0xff; 8]);
    breaks(&c, 3, "slot 40 of 0x104000 is no LZ4 block");
}

#[test]
fn the_heap_region_holds_only_heap_entries() {
    let mut c = v2();
    let heap = c.img.hello.heap.start;
    c.img.set_leaf(heap, 0x6000 | RAM);
    breaks(
        &c,
        4,
        "heap region: a present heap page not writable data (NX) kernel RAM",
    );
    c.img.set_leaf(heap, 1 << 1);
    assert!(run(&c).is_clean());
    c.img.set_leaf(heap + 0x1000, 1 << 1);
    breaks(&c, 4, "heap region: an entry past heap_max_bytes");
}

#[test]
fn boot_structures_are_boot_reservations() {
    let mut c = v2();
    c.img.hello.boot_reserved.pop();
    c.img.hello.boot_reserved.push(PhysRange {
        start: IMAGE,
        end: SWAP + 0x1000,
    });
    breaks(
        &c,
        3,
        "frame 0x38b000 of the swap store is not a boot reservation",
    );
    let (_, text) = broken(&run(&c));
    assert!(!text.contains("file 0"), "{text}");
}

/// A full check with the data thread compares the file images' second
/// half there: the same report as on one thread, in its order (the
/// frame-info table's, the images' pages in order, then the swap store's).
/// Dropping the thread's images, or putting them after the swap store,
/// fails it.
#[test]
fn a_data_thread_checks_the_images_second_half_in_order() {
    let mut c = v2();
    c.img.write(IMAGE + 3, &[!file_page(SEED, 0)[3]]);
    c.img.write(IMAGE + 0x1005, &[!file_page(SEED, 1)[5]]);
    c.img.write_u64(INFO + 5 * 8, 1 << 63 | 1);
    c.img.write(store_part(2), &[1]);
    let view = c.expect.view();
    let mut threaded = Checker::new();
    threaded.set_data_thread(Some(0));
    let two = threaded.full(&c.img.mem, &c.img.hello, &view, None);
    let one = Checker::new().full(&c.img.mem, &c.img.hello, &view, None);
    assert_eq!(format!("{one:?}"), format!("{two:?}"));
    let ranks: Vec<u8> = two
        .violations
        .iter()
        .filter_map(|v| match v {
            Violation::FrameInfo { .. } | Violation::FrameInfoMismatch { .. } => Some(0),
            Violation::FileImage { page, .. } => Some(1 + (*page as u8)),
            Violation::SwapStore { .. } => Some(3),
            _ => None,
        })
        .collect();
    for k in 0..4 {
        assert!(ranks.contains(&k), "no violation of rank {k}: {two}");
    }
    assert!(ranks.is_sorted(), "out of order {ranks:?}: {two}");
}

/// The file images' pages split anywhere, across files and around a file
/// without a spec: the two parts' violations, one after the other, are
/// the whole check's.
#[test]
fn the_file_images_split_anywhere_report_what_the_whole_does() {
    use super::super::file_images::{check_images, image_pages};
    let mut img = Image::small();
    let sizes = [3u64, 2, 4];
    let mut at = IMAGE;
    for &pages in &sizes {
        img.hello.files.push(FileInfo {
            pages,
            image: PhysRange {
                start: at,
                end: at + pages * 4096,
            },
        });
        at += pages * 4096;
    }
    let specs = [
        Some(FileSpec { pages: 3, seed: 3 }),
        None,
        Some(FileSpec { pages: 4, seed: 4 }),
    ];
    let mut expect = Expectations::default();
    expect.files = specs.to_vec();
    for (info, spec) in img.hello.files.clone().iter().zip(specs) {
        let Some(spec) = spec else { continue };
        for page in 0..info.pages {
            img.write(info.image.start + page * 4096, &file_page(spec.seed, page));
        }
    }
    // Broken: file 0 page 1, file 2 pages 0 and 3 (pages 1, 5 and 8).
    for page in [1u64, 5, 8] {
        img.write(IMAGE + page * 4096 + 7, &[0x5a]);
    }
    let view = expect.view();
    let total = image_pages(&img.hello);
    assert_eq!(total, 9);
    let mut whole = Vec::new();
    check_images(&img.mem, &img.hello, &view, 0..total, &mut whole);
    assert_eq!(whole.len(), 3, "{whole:?}");
    for k in 0..=total {
        let mut split = Vec::new();
        check_images(&img.mem, &img.hello, &view, 0..k, &mut split);
        check_images(&img.mem, &img.hello, &view, k..total, &mut split);
        assert_eq!(format!("{split:?}"), format!("{whole:?}"), "split at {k}");
    }
    // Each part reports its own pages: file 0's, then file 2's two (the
    // file without a spec numbered, not checked).
    let files_of = |range| {
        let mut out = Vec::new();
        check_images(&img.mem, &img.hello, &view, range, &mut out);
        out.iter()
            .map(|v| match v {
                Violation::FileImage { file, page, .. } => (*file, *page),
                other => panic!("{other}"),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(files_of(0..5), [(0, 1)]);
    assert_eq!(files_of(5..9), [(2, 0), (2, 3)]);
}

/// An image that runs past RAM: the whole check names its first
/// unreadable page, and a split inside the file names it in each part
/// that reaches past the end (as `check_images` says).
#[test]
fn an_unreadable_image_is_named_once_in_each_part_of_a_split() {
    use super::super::file_images::check_images;
    let mut img = Image::small();
    let end = img.mem.bytes.len() as u64;
    img.hello.files.push(FileInfo {
        pages: 6,
        image: PhysRange {
            start: end - 2 * 4096,
            end: end + 4 * 4096,
        },
    });
    let mut expect = Expectations::default();
    expect.files = vec![Some(FileSpec { pages: 6, seed: 5 })];
    for page in 0..2 {
        img.write(end - (2 - page) * 4096, &file_page(5, page));
    }
    let view = expect.view();
    let unreadable = |parts: &[(u64, u64)]| {
        let mut out = Vec::new();
        for &(lo, hi) in parts {
            check_images(&img.mem, &img.hello, &view, lo..hi, &mut out);
        }
        out.iter()
            .map(|v| match v {
                Violation::Unreadable { what, .. } => what.clone(),
                other => panic!("{other}"),
            })
            .collect::<Vec<_>>()
    };
    let page = |p: u64| format!("page {p:#x} of file 0 at {:#x}", end + (p - 2) * 4096);
    assert_eq!(unreadable(&[(0, 6)]), [page(2)]);
    assert_eq!(unreadable(&[(0, 2), (2, 6)]), [page(2)]);
    assert_eq!(unreadable(&[(0, 4), (4, 6)]), [page(2), page(4)]);
}
