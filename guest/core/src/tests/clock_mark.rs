//! The no-evictable mark of a PD or PDPT entry
//! (`pte::marks_no_evictable`): a sweep of the clock that went through a
//! whole page table or page directory and found no page it may send out
//! marks it, later sweeps pass it unread, and a page the pressure path may
//! send out made under it takes the marks above it away again.
//!
//! In a fuzz campaign's operation mix run in-process, sweeps read the
//! tables of pinned, read-only and shared pages at every pass: a third of
//! the clock's entry reads were sweeps that found nothing, and most of the
//! rest passed such tables on the way to a victim.

use proptest::prelude::*;
use protocol::{AreaType, Request, Response};

use super::clock_barren::{one_evictable_page, swapped_in};
use super::clock_laps::{one_more_frame, take_every_spare_frame};
use super::whole_table::{level_entry, pd_entry};
use super::{check, convert, map, req, stats, K, U};
use crate::pte;
use crate::sim::SimMachine;

/// Where the read-only RAM that fills memory lies.
const FILL: u64 = 0x1000_0000;
/// One page table's span.
const TABLE: u64 = 512 * 4096;

/// A machine of 4096 frames whose spare frames are all present read-only
/// RAM from [`FILL`] but for one writable page, at `writable(pages)`, then
/// taken by the host: every frame from now on is reclaimed. Answers how
/// many pages the fill has, the writable one included.
fn full_of_read_only_but_one(writable: impl Fn(u64) -> u64) -> (SimMachine, u64) {
    let mut m = SimMachine::new(4096);
    let reserve = protocol::heap_reserve_frames(stats(&mut m).heap_max_bytes);
    let pages = stats(&mut m).free_frames - reserve - 16;
    assert_eq!(
        req(&mut m, map(FILL, pages - 1, false, false, K)),
        Response::Done
    );
    let one = Request::map_writable(writable(pages), 1, K);
    assert_eq!(req(&mut m, one), Response::Done);
    take_every_spare_frame(&mut m);
    (m, pages)
}

/// [`full_of_read_only_but_one`] with the writable page last of the fill.
fn full_of_read_only_but_the_last() -> (SimMachine, u64) {
    full_of_read_only_but_one(|pages| FILL + (pages - 1) * 4096)
}

/// Asks for one frame, which the clock must take from `victim`: the page
/// table reads it took.
fn one_frame_from(m: &mut SimMachine, victim: u64) -> u64 {
    let before = m.vmm.mem().table_reads;
    let events = one_more_frame(m);
    assert_eq!(swapped_in(&events), [victim], "{events:?}");
    m.vmm.mem().table_reads - before
}

/// Whether the PD entry of the page table holding `addr` has the mark.
fn marked(m: &mut SimMachine, addr: u64) -> bool {
    pte::marks_no_evictable(pd_entry(m, addr))
}

/// Whether the PDPT entry of the page directory holding `addr` has it.
fn directory_marked(m: &mut SimMachine, addr: u64) -> bool {
    pte::marks_no_evictable(level_entry(m, addr, 3))
}

#[test]
fn a_sweep_marks_the_tables_it_found_nothing_in_and_later_sweeps_pass_them() {
    let (mut m, pages) = full_of_read_only_but_the_last();
    let last = FILL + (pages - 1) * 4096;
    let tables = pages.div_ceil(512);
    assert!(tables >= 6, "{pages} pages");
    let first = one_frame_from(&mut m, last);
    // Every whole table of read-only pages is marked; the one the victim
    // was in is not (the sweep visited a page there).
    for t in 0..tables - 1 {
        assert!(marked(&mut m, FILL + t * TABLE), "table {t}");
    }
    assert!(!marked(&mut m, last));
    check(&mut m);

    // A page made writable in the last table is found without reading the
    // marked ones: the sweep wraps round the whole managed space to it.
    one_evictable_page(&mut m, last - 4096);
    let then = one_frame_from(&mut m, last - 4096);
    assert!(
        then + tables - 2 <= first,
        "{then} table reads after the marks, {first} before"
    );
    check(&mut m);
}

#[test]
fn a_page_the_clock_may_send_out_takes_its_tables_mark_away() {
    let (mut m, pages) = full_of_read_only_but_the_last();
    one_frame_from(&mut m, FILL + (pages - 1) * 4096);
    assert!(marked(&mut m, FILL) && marked(&mut m, FILL + TABLE));

    // `Map`'s fill makes the first table's page writable again.
    one_evictable_page(&mut m, FILL);
    assert!(!marked(&mut m, FILL), "Map's fill clears the mark");
    check(&mut m);
    one_frame_from(&mut m, FILL);

    // A write fault on allocate-on-write RAM (`set_leaf`) in the second
    // table, with the frame its read-only page gave back.
    let page = FILL + TABLE;
    assert_eq!(req(&mut m, super::unmap(page, 1, K)), Response::Done);
    convert(&mut m, page, 1, AreaType::UsableRam);
    assert!(marked(&mut m, page), "no page it may send out yet");
    let write = Request::Write {
        addr: page,
        len: 8,
        seed: 3,
        privilege: K,
    };
    assert_eq!(req(&mut m, write), Response::Done);
    assert!(!marked(&mut m, page), "set_leaf clears the mark");
    check(&mut m);
    one_frame_from(&mut m, page);
}

#[test]
fn a_sweep_marks_a_page_directory_it_found_nothing_in_and_a_page_made_under_it_unmarks_it() {
    // The writable page lies in another gigabyte: the fill's page
    // directory holds no page the clock may send out.
    const FAR: u64 = 0x8000_0000;
    let (mut m, pages) = full_of_read_only_but_one(|_| FAR);
    assert!(FILL + pages * 4096 < 0x4000_0000, "one page directory");
    one_frame_from(&mut m, FAR);
    assert!(directory_marked(&mut m, FILL), "the fill's directory");
    assert!(marked(&mut m, FILL), "its page tables");
    assert!(!directory_marked(&mut m, FAR), "the victim's");
    check(&mut m);

    // A page the clock may send out, mapped in the fill's last table:
    // the marks of its PD entry and of the PDPT entry go, the other
    // tables keep theirs.
    let page = FILL + (pages - 2) * 4096;
    one_evictable_page(&mut m, page);
    assert!(!marked(&mut m, page) && !directory_marked(&mut m, page));
    assert!(marked(&mut m, FILL));
    check(&mut m);
    one_frame_from(&mut m, page);
    check(&mut m);
}

#[test]
fn a_page_table_made_under_a_marked_directory_takes_the_directorys_mark_away() {
    const FAR: u64 = 0x8000_0000;
    let (mut m, pages) = full_of_read_only_but_one(|_| FAR);
    one_frame_from(&mut m, FAR);
    assert!(directory_marked(&mut m, FILL));
    // A new page table, past the fill's last, in the same directory: its
    // PD entry is new (unmarked), the PDPT entry above it is marked.
    let fresh = (FILL + pages * 4096).next_multiple_of(TABLE);
    assert!(fresh < 0x4000_0000);
    // Frames for it and its table: four read-only pages unmapped.
    assert_eq!(req(&mut m, super::unmap(FILL, 4, K)), Response::Done);
    assert_eq!(
        req(&mut m, Request::map_writable(fresh, 1, K)),
        Response::Done
    );
    assert!(
        !directory_marked(&mut m, fresh),
        "the PDPT entry's mark goes"
    );
    assert!(marked(&mut m, FILL + TABLE), "the other tables keep theirs");
    check(&mut m);
}

/// Where the differential test's requests land: in one page table, the
/// next one, another page directory, another PML4 entry.
const PLACES: [u64; 4] = [0x1000_0000, 0x1020_0000, 0x4000_0000, 200 << 39];

#[derive(Clone, Debug)]
enum Op {
    Map(usize, u64, bool),
    Unmap(usize, u64),
    Write(usize, u64),
    Read(usize, u64),
    Convert(usize, u64, AreaType),
    MapFile(usize, u64),
    Take(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let place = 0..PLACES.len();
    let pages = 1u64..700;
    let to = prop_oneof![
        Just(AreaType::UsableRam),
        Just(AreaType::PinnedRam),
        Just(AreaType::Unusable)
    ];
    prop_oneof![
        4 => (place.clone(), pages.clone(), any::<bool>()).prop_map(|(p, n, w)| Op::Map(p, n, w)),
        2 => (place.clone(), pages.clone()).prop_map(|(p, n)| Op::Unmap(p, n)),
        3 => (place.clone(), pages.clone()).prop_map(|(p, n)| Op::Write(p, n)),
        2 => (place.clone(), pages.clone()).prop_map(|(p, n)| Op::Read(p, n)),
        2 => (place.clone(), pages.clone(), to).prop_map(|(p, n, t)| Op::Convert(p, n, t)),
        1 => (place, 1u64..64).prop_map(|(p, n)| Op::MapFile(p, n)),
        1 => (1u64..200).prop_map(Op::Take),
    ]
}

fn request(op: &Op) -> Request {
    let at = |p: usize| PLACES[p];
    match *op {
        Op::Map(p, n, w) => map(at(p), n, w, false, U),
        Op::Unmap(p, n) => super::unmap(at(p), n, U),
        Op::Write(p, n) => Request::Write {
            addr: at(p),
            len: n * 4096,
            seed: n,
            privilege: U,
        },
        Op::Read(p, n) => Request::Read {
            addr: at(p),
            len: n * 4096,
            privilege: U,
        },
        Op::Convert(p, n, to) => Request::Convert {
            addr: at(p),
            pages: n,
            to,
            privilege: U,
        },
        Op::MapFile(p, n) => Request::MapFile {
            addr: at(p),
            pages: n,
            file: 0,
            file_page: 0,
            privilege: U,
        },
        Op::Take(n) => Request::AllocFrames {
            count: n,
            contiguous: false,
            privilege: K,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The marks change what sweeps read, never what they do: a machine
    /// whose sweeps neither read nor set them answers every request the
    /// same (reclaim events, so the clock's victims, included) and ends
    /// with its hand in the same place.
    #[test]
    fn sweeps_with_marks_answer_as_sweeps_without(ops in proptest::collection::vec(op(), 1..60)) {
        let machine = || SimMachine::with_files(512, &[(64, 0xf11e)]);
        let (mut marked, mut plain) = (machine(), machine());
        plain.vmm.clock_for_test().marks_off = true;
        for op in &ops {
            let r = request(op);
            let a = req(&mut marked, r.clone());
            prop_assert_eq!(&a, &req(&mut plain, r), "{:?}", op);
        }
        prop_assert_eq!(marked.vmm.clock_for_test().hand(), plain.vmm.clock_for_test().hand());
        check(&mut marked);
    }
}
