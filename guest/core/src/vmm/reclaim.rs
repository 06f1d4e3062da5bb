//! Memory pressure: the one path every frame of the VMM comes from, the
//! reclaim-event ring, and the clock that picks pages to drop or evict.
//!
//! Order when the allocator is empty (`protocol::semantics`, "Memory
//! pressure"): heap scavenge → drop one clean file page → evict one RAM or
//! private file page to swap → out of memory.
//!
//! # Why a clock
//! True LRU needs the time of every access, which only a fault on every
//! access could give. The clock (second chance) approximates it with what
//! the CPU keeps for free: the accessed bit of each entry. One hand sweeps
//! the managed space in address order across requests; a present page with
//! A set gets its bit cleared (and its TLB entry flushed, so the CPU sets it
//! again on the next access) and is passed over once; one with A clear is
//! the victim. It needs no memory of its own (the state is in the entries),
//! costs O(1) amortized per victim, and never picks a page touched since the
//! hand last passed while an untouched one exists.
//!
//! A sweep reads only the tables that may hold a page it keeps: a page
//! table whose PD entry counts no present page, or whose PD or PDPT entry
//! has the no-evictable mark, is passed unread. The sweep marks each whole
//! page table and page directory in which it kept no page
//! (`pte::marks_no_evictable`), and a page the pressure path may send out
//! made under a mark takes it away (`paging`), so the next sweeps pass the
//! tables of pinned, shared and read-only pages without reading them,
//! visiting the same pages in the same order. A sweep that visits no page
//! at all still reads the PML4, the PDPTs and the unmarked entries: with
//! RAM full of pages it never sends out, every request for a frame would
//! pay that before its `OutOfMemory`. So such a sweep leaves a record
//! (`clock::Barren`), and while the record holds the pressure path fails
//! at once, with the same outcome and the hand where it was.

use core::ops::ControlFlow;

use protocol::Reclaim;
use x86_64::structures::paging::PhysFrame;

use super::Vmm;
use crate::backend::{Flushes, PhysMemory};
use crate::clock::Clock;
use crate::events::Events;
use crate::frame_alloc::{FrameAllocator, NoFrame};
use crate::holders::{Holders, NotSent};
use crate::linear::{user, KERNEL_SPAN, USER_SPAN};
use crate::paging::PageTables;
use crate::pte::{self, Pte};
use crate::walk::{walk, Entry, Tables, Visit};

/// Wholly free heap pages the pressure path leaves committed, for the
/// kernel's own allocations while it builds an answer with no frame left.
const HEAP_CUSHION: u64 = 8;

/// Nothing could be reclaimed: no page outside the request's range to
/// drop or evict (or none that fits the swap store), or the event ring is
/// full. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NothingToReclaim;

/// What the clock looks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Victim {
    CleanFile,
    Evictable,
}

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// Moves up to `out.len()` events out of the ring, oldest first.
    pub fn drain_events(&mut self, out: &mut [Reclaim]) -> usize {
        self.events.drain(out)
    }

    /// Frames only the kernel's own heap blocks may take
    /// ([`protocol::heap_reserve_frames`]; none without a heap): requests
    /// fail with `OutOfMemory` while the kernel can still build their
    /// answers.
    pub(crate) fn heap_reserve(&self) -> u64 {
        protocol::heap_reserve_frames(self.heap_max_bytes())
    }

    /// One frame for a request (data, swap-in, file load), reclaiming if
    /// only the heap's reserve is left.
    pub(super) fn alloc_frame(&mut self) -> Option<PhysFrame> {
        self.alloc_frame_by(|pt| pt.frames_mut().alloc())
    }

    /// [`Vmm::alloc_frame`], zeroed for a page to read zeros from
    /// ([`PageTables::zeroed_frame`]).
    pub(super) fn alloc_zeroed_frame(&mut self) -> Option<PhysFrame> {
        self.alloc_frame_by(PageTables::zeroed_frame)
    }

    /// One frame taken by `take` above the heap's reserve, reclaiming one
    /// page at a time while there is none.
    fn alloc_frame_by(
        &mut self,
        take: impl Fn(&mut PageTables<M, A>) -> Option<PhysFrame>,
    ) -> Option<PhysFrame> {
        loop {
            if self.pt.frames().free_frames() > self.heap_reserve() {
                if let Some(f) = take(&mut self.pt) {
                    return Some(f);
                }
            }
            self.reclaim_one().ok()?;
        }
    }

    /// One frame for a heap page, from the top of memory (see
    /// [`crate::frame_alloc::FrameAllocator::alloc_high`]): for the kernel's own
    /// blocks (`kernel`) the reserve first, then reclaim; for a host
    /// block's page as for a request (the reserve is not the host's).
    pub(super) fn alloc_heap_frame(&mut self, kernel: bool) -> Option<PhysFrame> {
        loop {
            if kernel || self.pt.frames().free_frames() > self.heap_reserve() {
                if let Some(f) = self.pt.frames_mut().alloc_high() {
                    return Some(f);
                }
            }
            self.reclaim_one().ok()?;
        }
    }

    /// Reclaims until `n` frames are free beyond the heap's reserve; `Err`
    /// if it cannot. A request that could not get them even if every
    /// present page (managed and heap) were reclaimed fails at once,
    /// reclaiming nothing; one that needs none (`n == 0`) always gets them,
    /// whatever the kernel's heap took of the reserve.
    pub(super) fn reserve(&mut self, n: u64) -> Result<(), NoFrame> {
        // `inject-zero-need-oom` reinstates a fixed bug, only for
        // host-runner's test that its reproducer catches it
        // (host-runner/tests/it/inject_bugs.rs): a request needing no frame failed with
        // `OutOfMemory` once the kernel's heap had dipped into the reserve.
        if n == 0 && !cfg!(feature = "inject-zero-need-oom") {
            return Ok(());
        }
        let n = n.saturating_add(self.heap_reserve());
        let bound = self.pt.frames().free_frames() + self.pt.counters().reclaimable();
        if bound < n {
            return Err(NoFrame);
        }
        while self.pt.frames().free_frames() < n {
            self.reclaim_one().map_err(|NothingToReclaim| NoFrame)?;
        }
        Ok(())
    }

    /// Frees at least one frame by the pressure order.
    fn reclaim_one(&mut self) -> Result<(), NothingToReclaim> {
        if self.events.full() {
            return Err(NothingToReclaim);
        }
        if self.heap_wants_scan() && self.heap_scavenge_keeping(HEAP_CUSHION) > 0 {
            return Ok(());
        }
        if self.pt.counters().clean_mmap() > 0 && !self.clock.no_clean_file_outside_pin() {
            if self.clock(Victim::CleanFile).is_ok() {
                return Ok(());
            }
            // Every clean file page is in the pin: each later frame of
            // this request would sweep the whole space again for nothing
            // (a read of 408 file pages with most of RAM present took 55 s
            // under TCG, 9 s in-process).
            self.clock.found_no_clean_file();
        }
        // A space with no evictable page fails here at once: the sweep it
        // saves reads every table with a present page, twice, and finds
        // nothing (in a campaign's in-process mix, nine tenths of the
        // clock's entry reads were such sweeps, one per `OutOfMemory`
        // with RAM full of pinned, shared and read-only pages).
        if self
            .clock
            .is_barren(self.pt.root(), self.pt.evictable_made())
        {
            return Err(NothingToReclaim);
        }
        self.clock(Victim::Evictable)
    }

    /// Sends the present page at `linear` (entry `table[i]`, state `old`)
    /// out ([`Holders::send_out`]) and records its event.
    pub(super) fn send_out(
        &mut self,
        table: PhysFrame,
        i: usize,
        linear: u64,
        old: Pte,
    ) -> Result<(), NotSent> {
        let (pt, mut holders) = self.holders();
        let event = holders.send_out(pt, table, i, linear, old)?;
        self.events.record(event);
        Ok(())
    }

    /// One sweep step of the clock for `want`, until a page went out.
    fn clock(&mut self, want: Victim) -> Result<(), NothingToReclaim> {
        // Two laps from the hand, the first of which may only clear
        // accessed bits: the rest of the hand's span, then the two spans
        // in turn, each whole twice (so the pages before the hand in its
        // own span get their second look too, whichever span it is in).
        let spans = [USER_SPAN, KERNEL_SPAN];
        let start = spans
            .iter()
            .position(|s| s.start <= self.clock.hand() && self.clock.hand() < s.end)
            .unwrap_or(0);
        let (root, made) = (self.pt.root(), self.pt.evictable_made());
        let mut sweep = Sweep {
            want,
            root,
            visited: false,
            failures: 0,
            clock: &mut self.clock,
            holders: Holders {
                finfo: self.finfo,
                swap: self.swap.as_mut(),
            },
            events: &mut self.events,
            aged: Flushes::default(),
        };
        let mut outcome = Err(NothingToReclaim);
        for k in 0..5 {
            let span = spans[(start + k) % spans.len()];
            let from = if k == 0 {
                sweep.clock.hand()
            } else {
                span.start
            };
            if let ControlFlow::Break(o) = walk(&mut self.pt, from, span.end, &mut sweep) {
                outcome = o;
                break;
            }
        }
        let barren = want == Victim::Evictable && !sweep.visited;
        sweep.aged.finish(self.pt.mem());
        if barren {
            self.clock.found_barren(root, made);
        }
        outcome
    }

    /// The first page at or after `from` below `end` that `Evict` sends
    /// out: `(linear, table, index, state)`.
    pub(super) fn next_evictable(
        &mut self,
        mut from: u64,
        end: u64,
    ) -> Option<(u64, PhysFrame, usize, Pte)> {
        while let Some((lin, table, i, raw)) = self.next_present(from, end) {
            let p = Pte::decode(raw, user(lin));
            match p {
                Pte::PresentMmap { .. } | Pte::PresentRam { writable: true, .. } => {
                    return Some((lin, table, i, p))
                }
                // `inject-evict-pinned`: a deliberate bug (see
                // `Holders::send_out`), `Evict` sends pinned RAM out too.
                Pte::PinnedRam { writable: true, .. } if cfg!(feature = "inject-evict-pinned") => {
                    return Some((lin, table, i, p))
                }
                _ => from = lin + 4096,
            }
        }
        None
    }

    /// The first present level-1 entry at or after `from` below `end`:
    /// `(linear, table, index, raw)`.
    fn next_present(&mut self, from: u64, end: u64) -> Option<(u64, PhysFrame, usize, u64)> {
        walk(&mut self.pt, from, end, &mut NextPresent).break_value()
    }
}

/// The clock's hand over the present pages of one walk: each is passed
/// (in the pin, or not a `want`), given its second chance (accessed bit
/// cleared and flushed), or sent out. Stops when a page went out, or after
/// 16 pages that could not be sent (no swap room). It moves the clock's
/// hand, and sends pages out through the holders, recording the events.
///
/// The flushes of the second chances wait for the sweep's end ([`Flushes`]:
/// past its limit, one full flush): clearing the accessed bit leaves the
/// translation as it was, so a TLB entry kept a little longer only delays
/// the CPU's setting of the bit again, and nothing touches a page during
/// the sweep. A page sent out is flushed at once.
struct Sweep<'a> {
    want: Victim,
    /// The PML4 the sweep's walks start from (the current space's).
    root: PhysFrame,
    /// Whether any page was visited (the clock's `barren` record).
    visited: bool,
    failures: u32,
    clock: &'a mut Clock,
    holders: Holders<'a>,
    events: &'a mut Events,
    aged: Flushes,
}

impl<M: PhysMemory, A: FrameAllocator> Visit<PageTables<M, A>> for Sweep<'_> {
    type Stop = Result<(), NothingToReclaim>;
    const PAGES: bool = true;
    const PRESENT_ONLY: bool = true;

    /// Only the pages `want` names: a sweep for a clean file page passes
    /// the RAM pages, which fill most of memory, inside the table scan
    /// (eight at a time, by a branch-free test of their bits).
    fn keep(&self, raw: u64) -> bool {
        match self.want {
            Victim::CleanFile => pte::is_clean_file(raw),
            Victim::Evictable => pte::is_evictable(raw),
        }
    }

    /// Under a PD or PDPT entry with the no-evictable mark lies no page
    /// either `want` keeps (a clean file page is one the pressure path may
    /// send out): the sweep passes the table it names unread, as it would
    /// pass each entry.
    fn keep_table(&self, raw: u64) -> bool {
        !(pte::marks_no_evictable(raw) && self.clock.uses_marks())
    }

    /// A whole page table or page directory with no page a sweep for an
    /// evictable page keeps gets the no-evictable mark in its PD or PDPT
    /// entry: the next sweeps pass it unread until a page the pressure
    /// path may send out is made under it. (The walk asks about no PML4
    /// entry: the kernel half's are copied into every space's PML4, which
    /// would then differ, while its PDPTs and PDs are shared, their marks
    /// with them.)
    fn none_kept(&mut self, pt: &mut PageTables<M, A>, at: Entry) {
        if self.want == Victim::Evictable && self.clock.uses_marks() {
            pt.mark_no_evictable(at.table, at.slot.index);
        }
    }

    fn page(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> ControlFlow<Self::Stop> {
        let (lin, table, i, raw) = (at.slot.base, at.table, at.slot.index, at.raw);
        self.clock.passed(lin);
        self.visited = true;
        if self.clock.pinned(lin) {
            return ControlFlow::Continue(());
        }
        // `keep` chose the page by its raw bits; decoding adds only the
        // checks of a well-formed entry (a corrupt one is passed over).
        let p = Pte::decode(raw, user(lin));
        if matches!(p, Pte::Corrupt(_)) {
            return ControlFlow::Continue(());
        }
        if raw & pte::ACCESSED != 0 {
            let flush = pt.clear_accessed(table, i, lin, raw);
            self.aged.add(flush, pt.mem());
            return ControlFlow::Continue(());
        }
        if let Ok(event) = self.holders.send_out(pt, table, i, lin, p) {
            self.clock.sent_out(self.root);
            self.events.record(event);
            return ControlFlow::Break(Ok(()));
        }
        self.failures += 1;
        if self.failures >= 16 {
            return ControlFlow::Break(Err(NothingToReclaim));
        }
        ControlFlow::Continue(())
    }
}

/// [`Vmm::next_present`]: stops at the first present page.
struct NextPresent;

impl<T> Visit<T> for NextPresent {
    type Stop = (u64, PhysFrame, usize, u64);
    const PAGES: bool = true;
    const PRESENT_ONLY: bool = true;

    fn page(&mut self, _: &mut T, at: Entry) -> ControlFlow<Self::Stop> {
        if at.raw & 1 == 0 {
            return ControlFlow::Continue(());
        }
        ControlFlow::Break((at.slot.base, at.table, at.slot.index, at.raw))
    }
}
