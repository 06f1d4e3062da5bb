//! Host tests of the core over the simulated machine.
//!
//! `check` is the leak and consistency check every test runs: the page
//! tables as the oracle's walker reads them from the simulated RAM (written
//! from `protocol::formats`, not the VMM's walk), compared with the frame
//! bitmap and the counters. Present shared entries are read here by the
//! format's own words (`shared_leaf`) until the oracle's walker knows them,
//! with the sharing rule of `protocol::formats` checked over every space.

mod bad_input;
mod basics;
mod clock_barren;
mod clock_cost;
mod clock_laps;
mod clock_mark;
mod fault_around;
mod frame_guard;
mod kernel_reserve;
mod leaf_lookup;
mod map_fill;
mod model;
mod nx;
mod oom;
mod pinned;
mod pinned_whole;
mod pte_codec;
mod ram;
mod reserve_bugs;
mod reset_bulk;
mod seed;
mod shared;
mod shared_pressure;
mod shared_rows;
mod shared_stale;
mod sharing_rule;
mod space_halves;
mod space_memory;
mod space_sequences;
mod spaces;
mod stale;
mod transitions;
mod v2_pressure;
mod v2_table;
mod whole_table;
mod zeroes;

use crate::frame_alloc::FrameAllocator as _;
use std::collections::{BTreeMap, HashSet};

use oracle::checker::{decode_leaf, read_tables, Leaf, PresentKind, TableEntries};
use proptest::strategy::Strategy;
use protocol::{AreaType, Hello, Privilege, Request, Response, Stats};
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use crate::backend::FrameAccess;
use crate::dispatch;
use crate::pte::{self, Pte};
use crate::sim::{SimMachine, SIM_BOOT_FRAMES, SIM_KERNEL_SLOTS};
use ram::{checked_hello, SimRam};
pub(crate) use sharing_rule::frame_record;
use sharing_rule::{check_shared, shared_leaf};

pub(crate) const K: Privilege = Privilege::Kernel;
pub(crate) const U: Privilege = Privilege::User;

pub(crate) fn frame(n: u64) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(n * 4096))
}

/// Sends one request.
pub(crate) fn req(m: &mut SimMachine, r: Request) -> Response {
    dispatch::handle(m, r)
}

/// Reads `len` bytes at `addr` as the user and checks that they are the
/// pattern `Write { seed }` put there (`protocol::pattern`).
pub(crate) fn assert_reads_pattern(m: &mut SimMachine, seed: u64, addr: u64, len: u64) {
    let mut buf = vec![0u8; crate::conv::usize_of(len)];
    protocol::pattern::fill(seed, addr, &mut buf);
    let read = Request::Read {
        addr,
        len,
        privilege: U,
    };
    let checksum = protocol::pattern::checksum(&buf);
    assert_eq!(req(m, read), Response::Checksum { checksum });
}

/// Converts `pages` pages at `addr` to `to` as the kernel; the answer must
/// be `Done` (not `Stale`: every present page made unusable was flushed).
pub(crate) fn convert(m: &mut SimMachine, addr: u64, pages: u64, to: AreaType) {
    let r = Request::Convert {
        addr,
        pages,
        to,
        privilege: K,
    };
    assert_eq!(
        req(m, r),
        Response::Done,
        "convert {pages} at {addr:#x} to {to:?}"
    );
}

/// An address near one of `bases` (from eight pages below to seven above,
/// so that ranges from it cross the boundary the base is at), with the
/// base's privilege.
pub(crate) fn near(bases: Vec<(u64, Privilege)>) -> impl Strategy<Value = (u64, Privilege)> {
    (proptest::sample::select(bases), 0u64..16)
        .prop_map(|((b, p), k)| (b.wrapping_add(k * 4096).wrapping_sub(8 * 4096), p))
}

/// A `Map` of `pages` pages at `addr`, not contiguous.
pub(crate) fn map(
    addr: u64,
    pages: u64,
    writable: bool,
    executable: bool,
    privilege: Privilege,
) -> Request {
    Request::Map {
        addr,
        pages,
        writable,
        executable,
        contiguous: false,
        privilege,
    }
}

/// A `Map` of `pages` writable pages at `addr` in one physically
/// contiguous run.
pub(crate) fn map_contiguous(addr: u64, pages: u64, privilege: Privilege) -> Request {
    Request::Map {
        addr,
        pages,
        writable: true,
        executable: false,
        contiguous: true,
        privilege,
    }
}

/// An `Unmap` of `pages` pages at `addr`.
pub(crate) fn unmap(addr: u64, pages: u64, privilege: Privilege) -> Request {
    Request::Unmap {
        addr,
        pages,
        privilege,
    }
}

pub(crate) fn stats(m: &mut SimMachine) -> Stats {
    match req(m, Request::Stats) {
        Response::Stats(s) => s,
        other => panic!("stats answered {other:?}"),
    }
}

/// Everything observable of the state: counters, bitmap, every non-zero
/// entry of the managed tables outside the heap (by level and address; a
/// PD or PDPT entry without its no-evictable mark), the metadata frames.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    stats: Stats,
    bitmap: Vec<u8>,
    entries: BTreeMap<(u8, u64), u64>,
    meta: Vec<u8>,
}

pub(crate) fn snapshot(m: &mut SimMachine) -> Snapshot {
    let stats = m.vmm.stats();
    let bitmap = m.vmm.frames().bitmap().to_vec();
    let (hello, tables) = tables(m);
    let mut entries = BTreeMap::new();
    for t in tables.iter().filter(|t| !in_heap(&hello, t)) {
        if let (3, Some(pml4e)) = (t.table.level, t.table.path.steps.first()) {
            entries.insert((4, t.table.path.virt), pml4e.raw);
        }
        // A PD or PDPT entry's no-evictable mark is left out: it records
        // what a sweep of the clock read, and a sweep runs in requests that
        // then fail (`OutOfMemory`) and change no state.
        let level = t.table.level;
        let unmarked = move |raw| match level {
            2 | 3 => pte::with_no_evictable(raw, false),
            _ => raw,
        };
        entries.extend(entries_of(t).map(|(virt, raw)| ((level, virt), unmarked(raw))));
    }
    let r = m.vmm.metadata_range();
    let mut meta = Vec::new();
    for n in r.start / 4096..r.end / 4096 {
        meta.extend_from_slice(m.vmm.mem().frame_bytes(frame(n)));
    }
    Snapshot {
        stats,
        bitmap,
        entries,
        meta,
    }
}

/// The managed tables, the heap's included, as the oracle's walker reads
/// them from the simulated RAM, which must find nothing wrong with them: no
/// unreadable or empty table, no upper-level entry outside the format.
fn tables(m: &mut SimMachine) -> (Hello, Vec<TableEntries>) {
    let hello = checked_hello(m);
    let (tables, found) = read_tables(&SimRam::of(m), &hello);
    let found: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(found.is_empty(), "the oracle's walk: {}", found.join("; "));
    (hello, tables)
}

/// The other live spaces (not 0): the frame number of each one's PML4, and
/// the tables of their user halves as the oracle's walker reads them from
/// its root, which must find nothing wrong with them. Asserts that every
/// live PML4's kernel half (entries 256–511) is space 0's.
fn other_spaces(m: &mut SimMachine, hello: &Hello) -> (Vec<u64>, Vec<TableEntries>) {
    let kernel_half = |m: &mut SimMachine, root: PhysFrame| -> Vec<u64> {
        let t = m.vmm.mem().table(root);
        (256..512).map(|i| pte::raw(&t[i])).collect()
    };
    let boot = m.vmm.pml4();
    let kernel = kernel_half(m, boot);
    let (mut roots, mut user) = (Vec::new(), Vec::new());
    for n in 1..crate::layout::MAX_SPACES {
        let Some(root) = m.vmm.space_root(n) else {
            continue;
        };
        assert_ne!(root, boot, "space {n} has space 0's PML4");
        assert_eq!(
            kernel_half(m, root),
            kernel,
            "space {n}'s kernel half differs from space 0's"
        );
        roots.push(root.start_address().as_u64() / 4096);
        let h = Hello {
            page_table_root: root.start_address().as_u64(),
            ..hello.clone()
        };
        let (tables, found) = read_tables(&SimRam::of(m), &h);
        let found: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(
            found.is_empty(),
            "the oracle's walk of space {n}: {}",
            found.join("; ")
        );
        user.extend(tables.into_iter().filter(|t| t.table.path.virt < 1 << 47));
    }
    (roots, user)
}

/// Whether `t` is one of the heap's tables.
fn in_heap(hello: &Hello, t: &TableEntries) -> bool {
    hello.heap.contains(t.table.path.virt)
}

/// `(address, raw)` of every non-zero entry of `t`.
fn entries_of(t: &TableEntries) -> impl Iterator<Item = (u64, u64)> + '_ {
    let shift = 12 + 9 * (u32::from(t.table.level) - 1);
    let virt = t.table.path.virt;
    let nonzero = t.entries.iter().zip(0u64..).filter(|(raw, _)| **raw != 0);
    nonzero.map(move |(&raw, i)| (virt + (i << shift), raw))
}

/// The leak and consistency check: no managed table holds only zero
/// entries; upper entries have the format's bits; no leaf is corrupt;
/// every frame in use is owned by exactly one of boot, metadata, a table
/// (of any space, another space's PML4 included), a present page, the
/// heap, the host; the counters agree with the walk; the kernel's PML4
/// slots are untouched; every space's kernel half is space 0's; the heap
/// is as [`walk_heap`] checks.
pub(crate) fn check(m: &mut SimMachine) {
    let (hello, all) = tables(m);
    let (heap, mut tables): (Vec<_>, Vec<_>) = all.into_iter().partition(|t| in_heap(&hello, t));
    let (roots, user) = other_spaces(m, &hello);
    tables.extend(user);
    let pml4 = m.vmm.pml4();
    let mut owners: BTreeMap<u64, &'static str> = BTreeMap::new();
    let own = |n: u64, who: &'static str, owners: &mut BTreeMap<u64, &'static str>| {
        if let Some(prev) = owners.insert(n, who) {
            panic!("frame {n} owned twice: {prev} and {who}");
        }
    };
    for n in 0..SIM_BOOT_FRAMES {
        own(n, "boot", &mut owners);
    }
    for f in m.vmm.files() {
        for n in f.start / 4096..f.start / 4096 + f.pages {
            own(n, "file image", &mut owners);
        }
    }
    let r = m.vmm.metadata_range();
    for n in r.start / 4096..r.end / 4096 {
        own(n, "meta", &mut owners);
    }
    let (heap_tables, heap_pages) = heap_frames(&hello, &heap, m.vmm.heap_max_bytes());
    for t in &heap_tables {
        own(*t, "heap table", &mut owners);
    }
    for r in &roots {
        own(*r, "space root", &mut owners);
    }
    let mut reported = Vec::new();
    m.vmm
        .heap_tables(|f| reported.push(f.start_address().as_u64() / 4096));
    reported.sort_unstable();
    let mut walked = heap_tables.clone();
    walked.sort_unstable();
    assert_eq!(reported, walked, "the heap's tables the VMM reports");
    for p in &heap_pages {
        own(*p, "heap page", &mut owners);
    }
    let (mut present, mut aow, mut slots) = (0u64, 0u64, Vec::new());
    // Frames of present pages written through their entries (D set).
    let mut written = HashSet::new();
    // Shared frame number -> (entries naming it, their W bits).
    let mut shared: BTreeMap<u64, (u64, HashSet<bool>)> = BTreeMap::new();
    for t in &tables {
        own(t.table.frame / 4096, "table", &mut owners);
        if t.table.level > 1 {
            continue;
        }
        for (virt, raw) in entries_of(t) {
            written.extend(pte::written_frame(raw).map(|f| f.start_address().as_u64() / 4096));
            if let Some((f, w)) = shared_leaf(raw, virt < 1 << 47) {
                let e = shared.entry(f).or_default();
                e.0 += 1;
                e.1.insert(w);
                continue;
            }
            match decode_leaf(raw, virt < 1 << 47) {
                Leaf::Present { frame, .. } => {
                    own(frame / 4096, "page", &mut owners);
                    present += 1;
                }
                Leaf::AllocOnWrite | Leaf::PinnedAllocOnWrite => aow += 1,
                Leaf::OnSwap { slot } => slots.push(slot),
                Leaf::Corrupt(why) => panic!("corrupt entry {raw:#x} at {virt:#x}: {why}"),
                Leaf::Unusable | Leaf::NotPresentMmap { .. } => {}
            }
        }
    }
    check_shared(m, &shared);
    for &f in shared.keys() {
        own(f, "shared page", &mut owners);
        present += 1;
    }
    let total = m.vmm.frames().total_frames();
    let mut host = 0;
    for n in 0..total {
        if m.vmm.host_holds(n) {
            own(n, "host", &mut owners);
            host += 1;
        }
    }
    let used: HashSet<u64> = (0..total).filter(|&n| m.vmm.frames().is_used(n)).collect();
    let owned: HashSet<u64> = owners.keys().copied().collect();
    assert_eq!(used, owned, "frames in use differ from frames owned");
    // Bits past the last frame are 1.
    let bm = m.vmm.frames().bitmap();
    for n in total..(total.div_ceil(8) * 8) {
        assert!(
            bm[(n / 8) as usize] & (1 << (n % 8)) != 0,
            "bit {n} past the end is 0"
        );
    }
    let s = m.vmm.stats();
    assert_eq!(
        s.page_table_frames,
        (tables.len() + roots.len()) as u64,
        "page_table_frames"
    );
    assert_eq!(s.present_pages, present, "present_pages");
    assert_eq!(s.alloc_on_write_pages, aow, "alloc_on_write_pages");
    assert_eq!(s.host_frames, host, "host_frames");
    assert_eq!(s.free_frames, total - used.len() as u64, "free_frames");
    for (slot, raw) in SIM_KERNEL_SLOTS {
        assert_eq!(
            pte::raw(&m.vmm.mem().table(pml4)[slot]),
            raw,
            "kernel slot {slot}"
        );
    }
    assert_eq!(
        s.heap_table_frames,
        heap_tables.len() as u64,
        "heap_table_frames"
    );
    assert_eq!(s.heap_pages, heap_pages.len() as u64, "heap_pages");
    assert_eq!(
        s.free_frames + s.page_table_frames + s.present_pages + s.host_frames + s.heap_pages,
        s.boot_free_frames,
        "frame identity"
    );
    check_swap(m, slots);
    check_zeroes(m, &owners, &written);
}

/// The record of frames known to hold only zeros (`crate::zeroes`): each
/// is free and zero, or a page's frame that is zero unless written through
/// an entry with D set; no frame of any other owner is in it.
fn check_zeroes(m: &mut SimMachine, owners: &BTreeMap<u64, &'static str>, written: &HashSet<u64>) {
    for n in 0..m.vmm.frames().total_frames() {
        if !m.vmm.frames().is_zero(frame(n)) {
            continue;
        }
        let owner = owners.get(&n).copied();
        assert!(
            matches!(owner, None | Some("page" | "shared page")),
            "frame {n}, known to be zero, is owned by {owner:?}"
        );
        if written.contains(&n) {
            continue;
        }
        assert!(
            m.vmm.mem().holds_only_zeros(frame(n)),
            "frame {n} ({owner:?}), known to be zero, holds a non-zero byte"
        );
    }
}

/// The heap slot: tables (frame numbers) and present pages' frames, read
/// as [`check`] reads them.
pub(crate) fn walk_heap(m: &mut SimMachine) -> (Vec<u64>, Vec<u64>) {
    let (hello, mut tables) = tables(m);
    tables.retain(|t| in_heap(&hello, t));
    heap_frames(&hello, &tables, m.vmm.heap_max_bytes())
}

/// The heap's tables (frame numbers) and present pages' frames, from its
/// tables `heap`: every heap page of the heap's `max` bytes is
/// allocate-on-write or present RAM, writable, kernel; every entry past the
/// maximum is zero.
fn heap_frames(hello: &Hello, heap: &[TableEntries], max: u64) -> (Vec<u64>, Vec<u64>) {
    if heap.is_empty() {
        assert_eq!(max, 0, "heap of {max} bytes without tables");
    }
    let (mut tables, mut pages) = (Vec::new(), Vec::new());
    let mut leaves = 0u64;
    for t in heap {
        tables.push(t.table.frame / 4096);
        if t.table.level > 1 {
            continue;
        }
        for (virt, raw) in entries_of(t) {
            let off = virt - hello.heap.start;
            assert!(off < max, "heap entry past the maximum at {virt:#x}");
            leaves += 1;
            match decode_leaf(raw, false) {
                Leaf::AllocOnWrite => {}
                Leaf::Present {
                    kind: PresentKind::Ram,
                    writable: true,
                    frame,
                    ..
                } => pages.push(frame / 4096),
                p => panic!("heap page {virt:#x} in state {p:?}"),
            }
        }
    }
    assert_eq!(leaves, max / 4096, "every heap page has an entry");
    (tables, pages)
}

/// The swap store agrees with the on-swap entries (their `slots`): every
/// slot is named by exactly one entry, counts agree, nothing is pending
/// between requests.
fn check_swap(m: &mut SimMachine, slots: Vec<u64>) {
    let mut sorted = slots.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), slots.len(), "a swap slot named twice");
    let s = m.vmm.stats();
    assert_eq!(s.swap_slots_used, slots.len() as u64, "swap_slots_used");
    let store = m.vmm.check_swap_for_test();
    assert_eq!(store, Ok(slots.len() as u64), "swap store");
}

/// Reset, then everything is back: free frames at the boot count, no table.
/// The answer is `Done`, with a `Scavenged` event for each heap page the
/// reset gave back.
pub(crate) fn reset_and_check(m: &mut SimMachine) {
    let (events, answer) = req(m, Request::Reset { privilege: K }).split_reclaimed();
    assert_eq!(answer, Response::Done);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, protocol::Reclaim::Scavenged { .. })),
        "a reset reclaims nothing but heap pages: {events:?}"
    );
    check(m);
    let s = m.vmm.stats();
    assert_eq!(
        s.free_frames + s.heap_pages,
        s.boot_free_frames,
        "free frames after reset"
    );
    assert_eq!(s.swap_slots_used, 0, "swap slots after reset");
    let info = m.vmm.frame_info_range();
    for f in info.start / 4096..info.end.div_ceil(4096) {
        let bytes = m.vmm.mem().frame_bytes(crate::frames::frame_at(f));
        assert!(
            bytes.iter().all(|&b| b == 0),
            "a frame-info record left after reset in frame {f}"
        );
    }
    assert_eq!(s.page_table_frames, 0);
    assert_eq!(
        s.present_pages + s.alloc_on_write_pages + s.host_frames + s.valloc_pages,
        0
    );
}
