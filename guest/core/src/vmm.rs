//! The VMM: its parts, each with its own invariants at the top of its
//! module, and the requests that need more than one of them.
//!
//! - `paging::PageTables`: the memory, the frame allocator, the
//!   page tables of every address space and the page-state counters (the
//!   only writer of entries);
//! - `HostFrames` (`hostframes`) and `Valloc` ([`crate::kvalloc`]), each a
//!   bitmap of the metadata with its count;
//! - the heap (`heapmap`, `kheap`), the swap store ([`crate::swap`]), the
//!   frame-info table (`frameinfo`), the events (`events`).
//!
//! [`Vmm`]'s fields are private: only this module and its children reach
//! the parts. The children are the requests, each an `impl Vmm` block that
//! uses several parts: `ops` (map, unmap, convert, query, evict), `fault`,
//! `kheap`, `files` and `reclaim` (the pressure path every frame comes
//! through), `spaces` (create, switch, destroy an address space) and
//! `share` (`Share`, and the mapping count of a shared frame). A
//! part that is not a request (`holders`, `hostframes`,
//! `kvalloc`) gets what it needs passed in. This module builds the parts,
//! hands the host-frame and `Valloc` requests the parts they need, and
//! resets them.

use protocol::{FrameRun, PhysRange, Stats};
use x86_64::structures::paging::PhysFrame;

use crate::backend::{FrameAccess, PhysMemory};
use crate::clock::Clock;
use crate::config::{Config, FileImage};
use crate::errors::{AllocFramesError, FreeFramesError, VallocError, VfreeError};
use crate::events::Events;
use crate::extent::Extent;
use crate::frame_alloc::{FrameAllocator, NoFrame};
use crate::frameinfo::FrameInfo;
use crate::frames::{frame_at, frame_number, BitmapFrameAllocator};
use crate::heapmap::KHeap;
use crate::hostframes::{self, HostFrames};
use crate::kvalloc::{self, Valloc};
use crate::layout::{HEAP_END, HEAP_START, VALLOC_BITMAP_FRAMES};
use crate::paging::PageTables;
use crate::pte::Pte;
use crate::swap::SwapStore;
use crate::validate::{is_canonical, Span, LINEAR_MASK};

pub(crate) mod fault;
mod files;
mod kheap;
mod ops;
mod reclaim;
mod share;
mod spaces;
#[cfg(test)]
mod test_support;

/// The VMM's own metadata in guest RAM, one contiguous run of frames taken
/// at construction: the host-frame ownership bitmap (bit `n` = the host holds
/// frame `n`), the `Valloc` bitmap (bit `n` = page `n` of the region is
/// handed out), the heap's three bitmaps, the frame-info table, then the
/// swap store.
#[derive(Clone, Copy, Debug)]
struct Meta {
    base: PhysFrame,
    frames: u64,
}

/// The empty range: what a range getter answers for a part the VMM lacks.
const NO_RANGE: PhysRange = PhysRange { start: 0, end: 0 };

/// The physical range of `bytes` bytes from the start of `base`.
fn bytes_from(base: PhysFrame, bytes: u64) -> PhysRange {
    let start = base.start_address().as_u64();
    PhysRange {
        start,
        end: start + bytes,
    }
}

/// The virtual memory manager over a [`PhysMemory`], taking its frames from
/// a [`FrameAllocator`] (the bitmap of [`crate::frames`] unless told).
#[derive(Debug)]
pub struct Vmm<M, A = BitmapFrameAllocator> {
    // The parts the requests (this module's children `ops`, `fault`,
    // `reclaim`, `kheap`, `files`) use: each changes only through its own
    // methods.
    /// The page tables, with the memory and the frame allocator.
    pt: PageTables<M, A>,
    /// The frame-info table (none without the metadata).
    finfo: Option<FrameInfo>,
    /// The swap store (none without the metadata or with no room for it).
    swap: Option<SwapStore>,
    /// The kernel heap's allocator (none without a heap).
    heap: Option<KHeap>,
    /// The reclaim-event ring and the event counts.
    events: Events,
    /// The clock's hand and the request's pin.
    clock: Clock,
    // This module's own.
    /// Where the metadata frames are (none if there was no room).
    meta: Option<Meta>,
    /// The host's frames (none without the metadata).
    host: Option<HostFrames>,
    /// The `Valloc` region (none without the metadata).
    valloc: Option<Valloc>,
    /// The file images.
    files: &'static [FileImage],
    /// The heap's maximum size (0 without a heap).
    heap_max: u64,
    /// Frame numbers holding every frame-info record set since boot or the
    /// last `Reset`: what a reset clears.
    file_frames: Extent,
}

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// The VMM over `mem`, allocating from `frames`, with the page tables
    /// rooted at `pml4` (whose managed slots must be empty), with the
    /// defaults of [`Config::for_frames`].
    pub fn new(mem: M, frames: A, pml4: PhysFrame) -> Self {
        let config = Config::for_frames(frames.total_frames());
        Self::with_config(mem, frames, pml4, config)
    }

    /// The VMM, as [`Vmm::new`], with `config`.
    ///
    /// Takes one contiguous run of frames for its metadata (host-frame and
    /// `Valloc` bitmaps, heap bitmaps, frame-info table, swap store; see
    /// [`Vmm::metadata_range`]) and the heap's page tables, then records the
    /// boot free count: the kernel lists the metadata range in
    /// `Hello::boot_reserved` and reports `boot_free_frames` from
    /// [`Vmm::stats`]. With too little RAM for the metadata, `AllocFrames`,
    /// `Valloc`, the heap, files and swap are all unavailable.
    pub fn with_config(mem: M, mut frames: A, pml4: PhysFrame, config: Config) -> Self {
        let total = frames.total_frames();
        let host_frames = total.div_ceil(4096 * 8).max(1);
        let heap_max = config.heap_max_bytes / 4096 * 4096;
        let heap_maps = KHeap::map_frames(heap_max);
        let finfo_frames = total.div_ceil(512);
        let fixed = host_frames + VALLOC_BITMAP_FRAMES + 3 * heap_maps + finfo_frames;
        let meta = frames
            .alloc_contiguous(fixed + config.swap_frames)
            .map(|base| (base, config.swap_frames))
            .or_else(|| frames.alloc_contiguous(fixed).map(|base| (base, 0)))
            .map(|(base, swap)| Meta {
                base,
                frames: fixed + swap,
            });
        let mut vmm = Vmm {
            pt: PageTables::new(mem, frames, pml4),
            meta,
            host: None,
            valloc: None,
            files: config.files,
            finfo: None,
            swap: None,
            heap: None,
            heap_max: 0,
            file_frames: Extent::default(),
            events: Events::default(),
            clock: Clock::default(),
        };
        if let Some(m) = meta {
            let first = frame_number(m.base);
            for n in 0..fixed {
                vmm.pt.mem().frame_bytes(frame_at(first + n)).fill(0);
            }
            vmm.host = Some(HostFrames::at(first, total));
            vmm.valloc = Some(Valloc::at(first + host_frames));
            let heap_base = first + host_frames + VALLOC_BITMAP_FRAMES;
            vmm.finfo = Some(FrameInfo {
                base: frame_at(heap_base + 3 * heap_maps),
                frames: total,
            });
            vmm.swap = SwapStore::layout(frame_at(first + fixed), m.frames - fixed);
            if let Some(s) = vmm.swap {
                s.format(vmm.pt.mem());
            }
            if heap_max > 0 && vmm.init_heap(heap_max).is_ok() {
                vmm.heap = Some(KHeap::new(heap_base, heap_max));
                vmm.heap_max = heap_max;
            }
        }
        vmm.pt.frames_mut().set_boot_point();
        vmm
    }

    /// Makes the heap's pages allocate-on-write (creating its tables; with
    /// too few frames for them, none is left).
    fn init_heap(&mut self, max: u64) -> Result<(), NoFrame> {
        let start = HEAP_START & LINEAR_MASK;
        let span = Span {
            start,
            end: start + max,
        };
        self.pt.make_heap_tables(span)
    }

    /// Calls `out` with every page-table frame of the heap region (made at
    /// boot, never freed: boot reservations), each after the tables below
    /// it.
    pub fn heap_tables(&mut self, out: impl FnMut(PhysFrame)) {
        let start = HEAP_START & LINEAR_MASK;
        let end = start + (HEAP_END - HEAP_START);
        self.pt.each_table(Span { start, end }, out);
    }

    /// The file images.
    pub fn files(&self) -> &'static [FileImage] {
        self.files
    }

    /// The swap store's physical range (empty if none).
    pub fn swap_range(&self) -> PhysRange {
        self.swap.map_or(NO_RANGE, |s| s.range())
    }

    /// The frame-info table's physical range (empty if none).
    pub fn frame_info_range(&self) -> PhysRange {
        self.finfo
            .map_or(NO_RANGE, |t| bytes_from(t.base, t.frames * 8))
    }

    /// The heap's maximum size (0 if there is no heap).
    pub fn heap_max_bytes(&self) -> u64 {
        self.heap_max
    }

    /// Called once a request's answer is built: frees its pending swap
    /// slots and forgets what its pressure path learnt.
    pub fn end_request(&mut self) {
        self.clock.request_ended();
        if let Some(s) = self.swap.as_mut() {
            s.end_request(self.pt.mem());
        }
    }

    /// Sets the range of the request being answered (the clock skips it).
    pub fn set_pin(&mut self, span: Option<Span>) {
        self.clock.pin(span);
    }

    /// Events waiting in the ring.
    pub fn pending_events(&self) -> usize {
        self.events.pending()
    }

    /// The physical range of the VMM's metadata frames (empty if none), a
    /// boot reservation.
    pub fn metadata_range(&self) -> PhysRange {
        self.meta
            .map_or(NO_RANGE, |m| bytes_from(m.base, m.frames * 4096))
    }

    /// The physical memory backend.
    pub fn mem(&mut self) -> &mut M {
        self.pt.mem()
    }

    /// The frame allocator.
    pub fn frames(&self) -> &A {
        self.pt.frames()
    }

    /// Space 0's PML4 (the boot PML4, `Hello::page_table_root`); see
    /// [`Vmm::space_root`] for the others.
    pub fn pml4(&self) -> PhysFrame {
        self.pt.pml4()
    }

    /// The counters of the VMM and the frame allocator.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            total_frames: self.pt.frames().total_frames(),
            free_frames: self.pt.frames().free_frames(),
            boot_free_frames: self.pt.frames().boot_free_frames(),
            swap_slots_used: self.swap.map_or(0, |s| s.slots),
            swap_bytes_used: self.swap.map_or(0, |s| s.bytes),
            swap_bytes_total: self.swap.map_or(0, |s| s.capacity()),
            heap_max_bytes: self.heap_max,
            heap_bytes_live: self.heap.map_or(0, |h| h.live()),
            bytes_freed_since_check: self.heap.map_or(0, |h| h.freed()),
            host_frames: self.host.map_or(0, |h| h.count()),
            valloc_pages: self.valloc.map_or(0, |v| v.pages()),
            ..Stats::default()
        };
        self.pt.counters().fill(&mut s);
        self.events.fill(&mut s);
        s
    }

    /// The state of the page holding `addr` (any canonical address; a
    /// non-canonical one reads unusable).
    pub fn page_state(&mut self, addr: u64) -> Pte {
        if !is_canonical(addr) {
            return Pte::Unusable;
        }
        self.pt.lookup(addr & LINEAR_MASK)
    }

    /// Where a touch of `addr` goes, as the CPU would find it: the frame and
    /// writability of a present page, `None` for a not-present one.
    pub fn translate(&mut self, addr: u64) -> Option<(PhysFrame, bool)> {
        match self.page_state(addr) {
            Pte::PresentRam {
                frame, writable, ..
            }
            | Pte::PinnedRam { frame, writable }
            | Pte::Shared { frame, writable }
            | Pte::PresentMmap {
                frame, writable, ..
            } => Some((frame, writable)),
            _ => None,
        }
    }

    /// Whether the host holds frame number `n`.
    pub fn host_holds(&mut self, n: u64) -> bool {
        self.host.is_some_and(|h| h.holds(self.pt.mem(), n))
    }

    /// Allocates `count` frames for the host (one run with `contiguous`),
    /// answered through `out` as runs in allocation order
    /// (`HostFrames::alloc`, after the pressure path made them free). The
    /// kernel-only check is the caller's.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn alloc_frames(
        &mut self,
        count: u64,
        contiguous: bool,
        out: impl FnMut(FrameRun),
    ) -> Result<(), AllocFramesError> {
        hostframes::check_alloc(count, self.host.is_some())?;
        self.reserve(count)?;
        let Some(host) = self.host.as_mut() else {
            return Err(AllocFramesError::OutOfMemory);
        };
        let (mem, frames) = self.pt.parts();
        host.alloc(mem, frames, count, contiguous, out)
    }

    /// Frees `count` frames from physical address `frame`; the host must
    /// hold every one (`hostframes::free_frames`). The kernel-only check
    /// is the caller's.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn free_frames(&mut self, frame: u64, count: u64) -> Result<(), FreeFramesError> {
        let host = self.host.as_mut();
        let (mem, frames) = self.pt.parts();
        hostframes::free_frames(host, mem, frames, frame, count)
    }

    /// Finds `pages` free pages of the `Valloc` region and reserves them
    /// until [`Vmm::vfree`] (`kvalloc::valloc`).
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn valloc(&mut self, pages: u64) -> Result<u64, VallocError> {
        kvalloc::valloc(self.valloc.as_mut(), self.pt.mem(), pages)
    }

    /// Gives back `pages` pages at `addr`, every one handed out by
    /// [`Vmm::valloc`] (`kvalloc::vfree`).
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn vfree(&mut self, addr: u64, pages: u64) -> Result<(), VfreeError> {
        kvalloc::vfree(self.valloc.as_mut(), self.pt.mem(), addr, pages)
    }

    /// Back to the boot state: space 0 current and every other space
    /// destroyed, every managed page unusable and every table
    /// of the managed space freed, every host frame freed, every `Valloc`
    /// run freed, every host heap block freed and the heap scavenged (its
    /// pages back to those of the kernel's live blocks, at most a ring of
    /// events' worth per reset: `protocol::semantics`, **Reset**), the
    /// counters zero, and every placement choice (the frame allocator's
    /// next-fit hint, the clock's hand, the heap's hint for host blocks,
    /// the swap store's search hint) where boot left it, so that a
    /// sequence run after a reset that gave back few heap pages gets the
    /// answers it gets after a fresh boot (after one that gave back many,
    /// another reset gives back the rest, and the pages its answer took).
    ///
    /// It costs what is in use, not the span: the managed space is dropped
    /// at space 0's PML4 entries (the other spaces' PML4s with everything
    /// below them forgotten), each space's page tables that hold a present
    /// page read once for their dirty bits (`crate::zeroes`), and every
    /// frame taken since the boot point goes back at once (the allocator
    /// copies back the bytes of its bitmap that changed); the heap then
    /// claims back its pages' frames, and the frame-info records and swap
    /// slots are cleared in bulk.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn reset(&mut self) {
        // Space 0 current (CR3 loaded) before anything else: the other
        // spaces go with the managed space below.
        let entered = self.pt.enter(0, true);
        debug_assert!(entered.is_ok(), "space 0 is always live");
        if let Some(h) = self.host.as_mut() {
            h.forget_all(self.pt.mem());
        }
        if let Some(v) = self.valloc.as_mut() {
            v.clear(self.pt.mem());
        }
        self.heap_free_host_blocks();
        // The heap back to the pages of the kernel's live blocks, as after
        // boot: the pages it grew into would otherwise hold frames a fresh
        // boot hands to the host (one `Scavenged` event each).
        self.heap_scavenge();
        if let Some(s) = self.swap.as_mut() {
            s.free_all(self.pt.mem());
        }
        let files = self.file_frames.take();
        if let Some(t) = self.finfo {
            t.clear(self.pt.mem(), files);
        }
        self.pt.drop_managed();
        self.pt.frames_mut().back_to_boot_point();
        self.heap_claim_frames();
        self.end_request();
        self.clock.rewind();
        if let Some(h) = self.heap.as_mut() {
            h.rewind_hint();
        }
        self.events.counts_cleared();
    }
}
