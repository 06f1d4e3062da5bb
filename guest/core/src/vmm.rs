//! The VMM: page tables of the managed space, the frame allocator, the
//! host's frames and the kernel virtual allocator, with their counters.
//!
//! Operations live in `ops` (map, unmap, convert, query), `hostframes`
//! (AllocFrames/FreeFrames) and [`crate::kvalloc`] (valloc/vfree); this
//! module holds the state, the page-fault handler and reset.

use protocol::{FaultReason, PhysRange, Stats};
use x86_64::structures::paging::PhysFrame;

use crate::backend::{FrameAccess, PhysMemory};
use crate::files::FileImage;
use crate::frames::{frame_at, frame_number, FrameAllocator};
use crate::kheap::{KHeap, GRANULE};
use crate::kvalloc::VALLOC_BITMAP_FRAMES;
use crate::layout::HEAP_START;
use crate::paging::user;
use crate::pte::Pte;
use crate::reclaim::Ring;
use crate::swap::SwapStore;
use crate::validate::{is_canonical, Span, KERNEL_REQUEST_END, KERNEL_REQUEST_START, LINEAR_MASK};

/// Counters kept as the state changes (never recomputed by a walk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub present_pages: u64,
    pub alloc_on_write_pages: u64,
    pub page_table_frames: u64,
    pub host_frames: u64,
    pub valloc_pages: u64,
    pub faults_resolved: u64,
    pub heap_pages: u64,
    pub heap_table_frames: u64,
    pub clean_mmap: u64,
    pub pages_scavenged: u64,
    pub pages_evicted: u64,
    pub pages_dropped: u64,
}

/// What the kernel decides at boot besides the frames: the file images, the
/// swap store's size and the heap's maximum.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The files the host supplied (their frames are boot reservations).
    pub files: &'static [FileImage],
    /// Frames of the swap store (0: no swap).
    pub swap_frames: u64,
    /// The heap's maximum size in bytes (a multiple of 4096; 0: no heap).
    pub heap_max_bytes: u64,
}

impl Config {
    /// The defaults for a machine of `total_frames` frames: no files, a
    /// swap store of RAM / 8, a heap of RAM / 4.
    pub fn for_frames(total_frames: u64) -> Config {
        Config {
            files: &[],
            swap_frames: total_frames / 8,
            heap_max_bytes: total_frames / 4 * 4096,
        }
    }
}

/// The VMM's own metadata in guest RAM, one contiguous run of frames taken
/// at construction: the host-frame ownership bitmap (bit `n` = the host holds
/// frame `n`), the `Valloc` bitmap (bit `n` = page `n` of the region is
/// handed out), the heap's three bitmaps, the frame-info table, then the
/// swap store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    pub base: PhysFrame,
    pub host_frames: u64,
    pub frames: u64,
}

impl Meta {
    pub fn valloc_base(&self) -> u64 {
        frame_number(self.base) + self.host_frames
    }
}

/// The virtual memory manager over a [`PhysMemory`].
#[derive(Debug)]
pub struct Vmm<M> {
    pub(crate) mem: M,
    pub(crate) frames: FrameAllocator,
    pub(crate) pml4: PhysFrame,
    pub(crate) counters: Counters,
    pub(crate) meta: Option<Meta>,
    pub(crate) files: &'static [FileImage],
    pub(crate) finfo: Option<PhysFrame>,
    pub(crate) swap: Option<SwapStore>,
    pub(crate) heap: Option<KHeap>,
    pub(crate) heap_max: u64,
    pub(crate) ring: Ring,
    /// The range of the request being answered: the clock skips it.
    pub(crate) pin: Option<Span>,
    /// The clock's hand (a linear address).
    pub(crate) hand: u64,
    /// The pin under which the clock last found no clean file page to
    /// drop, in the request being answered (cleared when it ends): none
    /// can appear outside the pin before then (a request loads file pages
    /// only in its own range), so the pressure path skips that sweep of the
    /// whole managed space until the request ends or the pin changes.
    pub(crate) no_clean_file: Option<Option<Span>>,
}

/// The user space, as a span.
pub(crate) const USER_SPAN: Span = Span {
    start: 0,
    end: 1 << 47,
};
/// The kernel request space, as a span.
pub(crate) const KERNEL_SPAN: Span = Span {
    start: KERNEL_REQUEST_START & LINEAR_MASK,
    end: KERNEL_REQUEST_END & LINEAR_MASK,
};

impl<M: PhysMemory> Vmm<M> {
    /// The VMM over `mem`, allocating from `frames`, with the page tables
    /// rooted at `pml4` (whose managed slots must be empty), with the
    /// defaults of [`Config::for_frames`].
    pub fn new(mem: M, frames: FrameAllocator, pml4: PhysFrame) -> Self {
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
    pub fn with_config(
        mem: M,
        mut frames: FrameAllocator,
        pml4: PhysFrame,
        config: Config,
    ) -> Self {
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
                host_frames,
                frames: fixed + swap,
            });
        let mut vmm = Vmm {
            mem,
            frames,
            pml4,
            counters: Counters::default(),
            meta,
            files: config.files,
            finfo: None,
            swap: None,
            heap: None,
            heap_max: 0,
            ring: Ring::default(),
            pin: None,
            hand: 0,
            no_clean_file: None,
        };
        if let Some(m) = meta {
            let first = frame_number(m.base);
            for n in 0..fixed {
                vmm.mem.frame_bytes(frame_at(first + n)).fill(0);
            }
            let heap_base = first + host_frames + VALLOC_BITMAP_FRAMES;
            vmm.finfo = Some(frame_at(heap_base + 3 * heap_maps));
            vmm.swap = SwapStore::layout(frame_at(first + fixed), m.frames - fixed);
            vmm.swap_format();
            if heap_max > 0 && vmm.init_heap(heap_max) {
                vmm.heap = Some(KHeap {
                    base: heap_base,
                    map_frames: heap_maps,
                    granules: heap_max / GRANULE,
                    hint: KHeap::host_start(heap_max / GRANULE),
                    live: 0,
                    freed: 0,
                    incomplete: false,
                    host_blocks: 0,
                    host_lo: 0,
                    host_hi: 0,
                });
                vmm.heap_max = heap_max;
            }
        }
        vmm.frames.set_boot_point();
        vmm
    }

    /// Makes the heap's pages allocate-on-write (creating its tables).
    fn init_heap(&mut self, max: u64) -> bool {
        let start = HEAP_START & LINEAR_MASK;
        let span = Span {
            start,
            end: start + max,
        };
        let before = self.counters.page_table_frames;
        if self.ensure_tables(span).is_err() {
            self.update(span, &mut |_: &mut Self, _, _| None);
            return false;
        }
        self.update(span, &mut |_: &mut Self, _, _| Some(Pte::AllocOnWrite));
        self.counters.heap_table_frames = self.counters.page_table_frames - before;
        self.counters.page_table_frames = before;
        true
    }

    /// Calls `out` with every page-table frame of the heap region (made at
    /// boot, never freed: boot reservations).
    pub fn heap_tables(&mut self, mut out: impl FnMut(PhysFrame)) {
        let slot = ((HEAP_START & LINEAR_MASK) >> 39) as usize;
        let root = self.read_entry(self.pml4, slot);
        if root & 1 == 0 {
            return;
        }
        let pdpt = crate::pte::frame_of(root);
        out(pdpt);
        for i in 0..512 {
            let pd = self.read_entry(pdpt, i);
            if pd & 1 == 0 {
                continue;
            }
            out(crate::pte::frame_of(pd));
            for j in 0..512 {
                let pt = self.read_entry(crate::pte::frame_of(pd), j);
                if pt & 1 != 0 {
                    out(crate::pte::frame_of(pt));
                }
            }
        }
    }

    /// The file images.
    pub fn files(&self) -> &'static [FileImage] {
        self.files
    }

    /// The swap store's physical range (empty if none).
    pub fn swap_range(&self) -> PhysRange {
        self.swap
            .map_or(PhysRange { start: 0, end: 0 }, |s| s.range())
    }

    /// The frame-info table's physical range (empty if none).
    pub fn frame_info_range(&self) -> PhysRange {
        match self.finfo {
            Some(f) => {
                let start = f.start_address().as_u64();
                PhysRange {
                    start,
                    end: start + self.frames.total_frames() * 8,
                }
            }
            None => PhysRange { start: 0, end: 0 },
        }
    }

    /// The heap's maximum size (0 if there is no heap).
    pub fn heap_max_bytes(&self) -> u64 {
        self.heap_max
    }

    /// Called once a request's answer is built: frees its pending swap
    /// slots and forgets what its pressure path learnt.
    pub fn end_request(&mut self) {
        self.no_clean_file = None;
        self.swap_end_request();
    }

    /// Sets the range of the request being answered (the clock skips it).
    pub fn set_pin(&mut self, span: Option<Span>) {
        self.pin = span;
    }

    /// Events waiting in the ring.
    pub fn pending_events(&self) -> usize {
        self.ring.len()
    }

    /// The physical range of the VMM's metadata frames (empty if none), a
    /// boot reservation.
    pub fn metadata_range(&self) -> PhysRange {
        match self.meta {
            Some(m) => {
                let start = m.base.start_address().as_u64();
                PhysRange {
                    start,
                    end: start + m.frames * 4096,
                }
            }
            None => PhysRange { start: 0, end: 0 },
        }
    }

    /// The physical memory backend.
    pub fn mem(&mut self) -> &mut M {
        &mut self.mem
    }

    /// The frame allocator.
    pub fn frames(&self) -> &FrameAllocator {
        &self.frames
    }

    /// The PML4 frame.
    pub fn pml4(&self) -> PhysFrame {
        self.pml4
    }

    /// The counters of the VMM and the frame allocator.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            total_frames: self.frames.total_frames(),
            free_frames: self.frames.free_frames(),
            boot_free_frames: self.frames.boot_free_frames(),
            page_table_frames: c.page_table_frames,
            present_pages: c.present_pages,
            alloc_on_write_pages: c.alloc_on_write_pages,
            host_frames: c.host_frames,
            valloc_pages: c.valloc_pages,
            faults_resolved: c.faults_resolved,
            swap_slots_used: self.swap.map_or(0, |s| s.slots),
            swap_bytes_used: self.swap.map_or(0, |s| s.bytes),
            swap_bytes_total: self.swap.map_or(0, |s| s.capacity()),
            heap_max_bytes: self.heap_max,
            heap_pages: c.heap_pages,
            heap_table_frames: c.heap_table_frames,
            heap_bytes_live: self.heap.map_or(0, |h| h.live),
            bytes_freed_since_check: self.heap.map_or(0, |h| h.freed),
            pages_scavenged: c.pages_scavenged,
            pages_evicted: c.pages_evicted,
            pages_dropped: c.pages_dropped,
        }
    }

    /// Adds (`add`) or removes a page of state `p` at `linear` to the
    /// counters (heap pages count apart).
    pub(crate) fn count(&mut self, linear: u64, p: Pte, add: bool) {
        let heap = (linear >> 39) == (HEAP_START & LINEAR_MASK) >> 39;
        let c = &mut self.counters;
        let field = match p {
            Pte::PresentRam { .. } if heap => &mut c.heap_pages,
            Pte::PresentMmap { private: false, .. } => {
                if add {
                    c.clean_mmap += 1;
                } else {
                    c.clean_mmap -= 1;
                }
                &mut c.present_pages
            }
            Pte::PresentRam { .. } | Pte::PresentMmap { .. } => &mut c.present_pages,
            Pte::AllocOnWrite if !heap => &mut c.alloc_on_write_pages,
            _ => return,
        };
        if add {
            *field += 1;
        } else {
            *field -= 1;
        }
    }

    /// The state of the page holding `addr` (any canonical address; a
    /// non-canonical one reads unusable).
    pub fn page_state(&mut self, addr: u64) -> Pte {
        if !is_canonical(addr) {
            return Pte::Unusable;
        }
        self.lookup(addr & LINEAR_MASK)
    }

    /// Where a touch of `addr` goes, as the CPU would find it: the frame and
    /// writability of a present page, `None` for a not-present one.
    pub fn translate(&mut self, addr: u64) -> Option<(PhysFrame, bool)> {
        match self.page_state(addr) {
            Pte::PresentRam { frame, writable }
            | Pte::PresentMmap {
                frame, writable, ..
            } => Some((frame, writable)),
            _ => None,
        }
    }

    /// The page-fault handler's decision for a fault at `addr` (a `write`
    /// or a read): allocate-on-write pages get a zeroed frame, swapped pages
    /// come back, file pages are loaded (private on a write), a clean file
    /// page written becomes private; frames come through the pressure path.
    /// `Err` is the fault a touch reports back.
    pub fn handle_fault(&mut self, addr: u64, write: bool) -> Result<(), FaultReason> {
        if !is_canonical(addr) {
            return Err(FaultReason::Unusable);
        }
        let linear = addr & LINEAR_MASK;
        let slot = linear >> 39;
        if slot == u64::from(crate::layout::DIRECT_MAP_PML4_SLOT)
            || slot == u64::from(crate::layout::KERNEL_PML4_SLOT)
        {
            return Err(FaultReason::Unusable);
        }
        let Some((table, i)) = self.leaf_slot(linear) else {
            return Err(FaultReason::Unusable);
        };
        let page = linear & !0xfff;
        let old = Pte::decode(self.read_entry(table, i), user(linear));
        let new = match old {
            Pte::AllocOnWrite | Pte::OnSwap { .. } | Pte::NotPresentMmap { .. } => {
                // A heap page faults only under a host block's touch (the
                // kernel's blocks are committed): a request's frame, which
                // leaves the kernel's reserve alone.
                let frame = if (crate::layout::HEAP_START..crate::layout::HEAP_END).contains(&addr)
                {
                    self.alloc_heap_frame(false)
                } else {
                    self.alloc_frame()
                }
                .ok_or(FaultReason::OutOfMemory)?;
                let loaded = match old {
                    Pte::OnSwap { slot } => self.swap_in(slot, frame),
                    Pte::NotPresentMmap { file, page } => self.load_file_page(file, page, frame),
                    _ => {
                        self.mem.frame_bytes(frame).fill(0);
                        true
                    }
                };
                if !loaded {
                    let _ = self.frames.free(frame);
                    return Err(FaultReason::Unusable);
                }
                // The managed space's faults only: the kernel's own heap
                // faults are not the host's to predict.
                if slot != (HEAP_START & LINEAR_MASK) >> 39 {
                    self.counters.faults_resolved += 1;
                }
                match old {
                    Pte::NotPresentMmap { file, page } => {
                        self.set_frame_info(frame, Some((file, page)));
                        Pte::PresentMmap {
                            frame,
                            writable: write,
                            private: write,
                        }
                    }
                    _ => Pte::PresentRam {
                        frame,
                        writable: true,
                    },
                }
            }
            Pte::PresentMmap {
                frame,
                private: false,
                ..
            } if write => Pte::PresentMmap {
                frame,
                writable: true,
                private: true,
            },
            Pte::PresentRam { writable, .. } | Pte::PresentMmap { writable, .. } => {
                if write && !writable {
                    return Err(FaultReason::ReadOnly);
                }
                // A stale TLB entry: the entry allows the access now.
                crate::backend::Flush::new(crate::paging::page_of(linear)).flush(&mut self.mem);
                return Ok(());
            }
            _ => return Err(FaultReason::Unusable),
        };
        // The entry may have changed while reclaiming (never for the page
        // being faulted: it was not present), so write over what it holds.
        let cur = Pte::decode(self.read_entry(table, i), user(linear));
        if let Some(f) = self.set_leaf(table, i, page, cur, new) {
            f.flush(&mut self.mem);
        }
        Ok(())
    }

    /// Back to the boot state: every managed page unusable and every table
    /// of the managed space freed, every host frame freed, every `Valloc`
    /// run freed, every host heap block freed and the heap scavenged (its
    /// pages back to those of the kernel's live blocks), the counters zero,
    /// and every placement choice (the frame allocator's next-fit hint, the
    /// clock's hand, the heap's hint for host blocks) where boot left it, so
    /// that a sequence run after a reset gets the answers it gets after a
    /// fresh boot.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn reset(&mut self) {
        self.make_unusable(USER_SPAN);
        self.make_unusable(KERNEL_SPAN);
        self.free_all_host_frames();
        self.clear_valloc();
        self.heap_free_host_blocks();
        // The heap back to the pages of the kernel's live blocks, as after
        // boot: the pages it grew into would otherwise hold frames a fresh
        // boot hands to the host (one `Scavenged` event each).
        self.heap_scavenge();
        self.end_request();
        self.frames.rewind();
        self.hand = 0;
        if let Some(h) = self.heap.as_mut() {
            h.hint = KHeap::host_start(h.granules);
        }
        self.counters.faults_resolved = 0;
        self.counters.pages_scavenged = 0;
        self.counters.pages_evicted = 0;
        self.counters.pages_dropped = 0;
    }
}
