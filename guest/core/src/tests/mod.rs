//! Host tests of the core over the simulated machine.
//!
//! `check` is the leak and consistency check every test runs: an
//! independent walk of the page tables (not the VMM's walker) compared with
//! the frame bitmap and the counters.

mod bad_input;
mod basics;
mod clock_cost;
mod frame_guard;
mod kernel_reserve;
mod model;
mod oom;
mod pte_codec;
mod reserve_bugs;
mod seed;
mod stale;
mod transitions;
mod v2_pressure;
mod v2_table;

use crate::conv::usize_of;
use crate::frame_alloc::FrameAllocator as _;
use std::collections::{BTreeMap, HashSet};

use protocol::{Privilege, Request, Response, Stats};
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use crate::backend::FrameAccess;
use crate::dispatch;
use crate::pte::{self, Pte};
use crate::sim::{SimMachine, SIM_BOOT_FRAMES, SIM_KERNEL_SLOTS};

pub(crate) const K: Privilege = Privilege::Kernel;
pub(crate) const U: Privilege = Privilege::User;

pub(crate) fn frame(n: u64) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(n * 4096))
}

/// Sends one request.
pub(crate) fn req(m: &mut SimMachine, r: Request) -> Response {
    dispatch::handle(m, r)
}

pub(crate) fn stats(m: &mut SimMachine) -> Stats {
    match req(m, Request::Stats) {
        Response::Stats(s) => s,
        other => panic!("stats answered {other:?}"),
    }
}

/// Everything observable of the state: counters, bitmap, every non-zero
/// entry of the managed tables (by level and linear address), the
/// metadata frames.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    stats: Stats,
    bitmap: Vec<u8>,
    pub(crate) entries: BTreeMap<(u8, u64), u64>,
    meta: Vec<u8>,
}

pub(crate) fn snapshot(m: &mut SimMachine) -> Snapshot {
    let stats = m.vmm.stats();
    let bitmap = m.vmm.frames().bitmap().to_vec();
    let mut entries = BTreeMap::new();
    let pml4 = m.vmm.pml4();
    walk(m, pml4, 4, 0, &mut |lvl, lin, raw| {
        entries.insert((lvl, lin), raw);
    });
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

/// The managed PML4 slots.
fn managed_slot(i: u64) -> bool {
    i < 256 || (385..511).contains(&i)
}

/// Calls `f(level, linear, raw)` for every non-zero entry below `table`
/// (managed slots only at the PML4).
fn walk(
    m: &mut SimMachine,
    table: PhysFrame,
    level: u8,
    base: u64,
    f: &mut impl FnMut(u8, u64, u64),
) {
    let shift = 12 + 9 * (u32::from(level) - 1);
    for i in 0..512u64 {
        if level == 4 && !managed_slot(i) {
            continue;
        }
        let raw = pte::raw(&m.vmm.mem().table(table)[usize_of(i)]);
        if raw == 0 {
            continue;
        }
        let lin = base + (i << shift);
        f(level, lin, raw);
        if level > 1 {
            walk(m, pte::frame_of(raw), level - 1, lin, f);
        }
    }
}

/// The leak and consistency check: no managed table holds only zero
/// entries; upper entries have the format's bits; every frame in use is
/// owned by exactly one of boot, metadata, a table, a present page, the
/// host; the counters agree with the walk; the kernel's PML4 slots are
/// untouched and the heap slot is empty.
pub(crate) fn check(m: &mut SimMachine) {
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
    let mut tables = Vec::new();
    let mut present = Vec::new();
    let mut aow = 0u64;
    let mut upper_ok = true;
    let (heap_tables, heap_pages) = walk_heap(m);
    for t in &heap_tables {
        own(*t, "heap table", &mut owners);
    }
    for p in &heap_pages {
        own(*p, "heap page", &mut owners);
    }
    walk(m, pml4, 4, 0, &mut |lvl, lin, raw| {
        let user = lin < (1 << 47);
        if lvl > 1 {
            let want = pte::table_entry(pte::frame_of(raw), user);
            upper_ok &= raw & !(1 << 5) == want;
            tables.push(pte::frame_of(raw));
        } else {
            match Pte::decode(raw, user) {
                Pte::PresentRam { frame, .. } | Pte::PresentMmap { frame, .. } => {
                    present.push(frame)
                }
                Pte::AllocOnWrite => aow += 1,
                Pte::Corrupt(raw) => panic!("corrupt entry {raw:#x} at {lin:#x}"),
                _ => {}
            }
        }
    });
    assert!(upper_ok, "an upper-level entry has bits outside the format");
    for &t in &tables {
        let empty = m.vmm.mem().table(t).is_empty();
        assert!(!empty, "table {t:?} holds only zero entries");
        own(t.start_address().as_u64() / 4096, "table", &mut owners);
    }
    for &p in &present {
        own(p.start_address().as_u64() / 4096, "page", &mut owners);
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
        tables.len() as u64,
        "page_table_frames"
    );
    assert_eq!(s.present_pages, present.len() as u64, "present_pages");
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
    check_swap(m);
}

/// The heap slot: tables (frame numbers) and present pages' frames; every
/// heap page is allocate-on-write or present RAM, writable, kernel; every
/// entry past the heap's maximum is zero.
fn walk_heap(m: &mut SimMachine) -> (Vec<u64>, Vec<u64>) {
    let pml4 = m.vmm.pml4();
    let max = m.vmm.heap_max_bytes();
    let heap_lin = crate::layout::HEAP_START & crate::validate::LINEAR_MASK;
    let (mut tables, mut pages) = (Vec::new(), Vec::new());
    let root = pte::raw(&m.vmm.mem().table(pml4)[384]);
    if root == 0 {
        assert_eq!(max, 0, "heap of {max} bytes without tables");
        return (tables, pages);
    }
    tables.push(pte::frame_of(root).start_address().as_u64() / 4096);
    let mut leaves = 0u64;
    walk(m, pte::frame_of(root), 3, heap_lin, &mut |lvl, lin, raw| {
        if lvl > 1 {
            tables.push(pte::frame_of(raw).start_address().as_u64() / 4096);
            return;
        }
        assert!(
            lin - heap_lin < max,
            "heap entry past the maximum at {lin:#x}"
        );
        leaves += 1;
        match Pte::decode(raw, false) {
            Pte::AllocOnWrite => {}
            Pte::PresentRam {
                frame,
                writable: true,
            } => pages.push(frame.start_address().as_u64() / 4096),
            p => panic!("heap page {lin:#x} in state {p:?}"),
        }
    });
    assert_eq!(leaves, max / 4096, "every heap page has an entry");
    (tables, pages)
}

/// The swap store agrees with the on-swap entries: every slot is named by
/// exactly one entry, counts agree, nothing is pending between requests.
fn check_swap(m: &mut SimMachine) {
    let pml4 = m.vmm.pml4();
    let mut slots = Vec::new();
    walk(m, pml4, 4, 0, &mut |lvl, lin, raw| {
        if lvl == 1 {
            if let Pte::OnSwap { slot } = Pte::decode(raw, lin < (1 << 47)) {
                slots.push(slot);
            }
        }
    });
    let mut sorted = slots.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), slots.len(), "a swap slot named twice");
    let s = m.vmm.stats();
    assert_eq!(s.swap_slots_used, slots.len() as u64, "swap_slots_used");
    let store = match m.vmm.swap {
        Some(s) => s.check(m.vmm.mem()),
        None => Ok(0),
    };
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
    assert_eq!(s.page_table_frames, 0);
    assert_eq!(
        s.present_pages + s.alloc_on_write_pages + s.host_frames + s.valloc_pages,
        0
    );
}
