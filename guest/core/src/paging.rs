//! The page tables of the managed space as one part, [`PageTables`]: the
//! memory they live in, the frame allocator their frames (and every other
//! frame of the VMM) come from, the PML4 of every address space
//! (`spaces`), and the page-state counters.
//! Tables are created on demand and freed as soon as every entry in them is
//! zero. Every walk visits only the tables that exist, so a huge range costs
//! what its tables cost, not its pages; the walk itself is
//! [`crate::walk`], each walker here (and in `find`, `whole`, `pinned`) a
//! [`Visit`].
//!
//! Addresses are linear (48-bit, see [`crate::validate::Span`]); level 4 is
//! the PML4, level 1 the page table.
//!
//! # Invariants
//! - [`PageTables`] is the only writer of page-table entries: level-1
//!   entries change only through [`PageTables::set_leaf`] (one at a time),
//!   `Map`'s fill of zero entries (`fill`, a page table's run at once)
//!   and the whole-table paths of `whole` and `pinned` (a table at once),
//!   upper-level entries only when a table is made or freed here, a whole
//!   allocate-on-write PD entry is made or made a table again (`whole`,
//!   `pinned`), or a PD entry's present count or a PD or PDPT entry's
//!   no-evictable mark kept (`upper`: [`pte::present_count`],
//!   [`pte::marks_no_evictable`]). So the page-state
//!   [`Counters`], which only those writers change, equal what a walk of
//!   the tables finds, and each PD entry's present count is the number of
//!   present entries of its page table.
//! - A PD or PDPT entry carries the no-evictable mark only while no
//!   level-1 entry under it passes [`pte::is_evictable`]: the reclaim
//!   clock sets it after a scan of the whole table it names found none
//!   (`upper`), and the only writers of such
//!   entries, `set_leaf` and `Map`'s fill, clear it in both the PD and the
//!   PDPT entry above the page (`upper`); a table is made
//!   without it (its entry linked unmarked, with nothing under it yet), and
//!   a PML4 entry or whole allocate-on-write PD entry never has it.
//! - Every table frame comes from the allocator and goes back to it when
//!   the table is freed (counted in `page_table_frames` both ways; the
//!   heap's, made once at boot and never freed, apart).
//! - `last_pd` names a live PD entry under the walk root or nothing: it is
//!   cleared whenever a table is unlinked and whenever the walk root
//!   changes (`spaces`).
//! - Every walk starts from the walk root, the current address space's
//!   PML4 (but for the teardown of another space and `Share`'s writes in
//!   its target space: `spaces`, whose module holds the invariants of the
//!   spaces and their shared kernel half).
//! - [`PageTables::mem`] and [`PageTables::frames_mut`] lend the memory and
//!   the allocator to the other parts (data frames, swap, bitmaps); those
//!   never write a page table through them.
//! - The dirty bit of every present level-1 entry is read before the
//!   entry is rewritten or dropped, and before what it maps is let go of
//!   ([`PageTables::set_leaf`], the walkers that release pages, `Reset`'s
//!   look in `written`): the frame of a page written through it is then
//!   no longer known to hold only zeros (`crate::zeroes`).

use core::convert::Infallible;
use core::ops::ControlFlow;

use x86_64::structures::paging::PhysFrame;

use crate::backend::{Flush, FrameAccess, PhysMemory};
use crate::counters::Counters;
use crate::frame_alloc::{FrameAllocator, NoFrame};
use crate::holders::Holders;
use crate::linear::{page_of, user};
use crate::pte::{self, Pte};
use crate::validate::{canonical, Span};
use crate::walk::{first_present, walk, Descend, Entry, Tables, Visit};

mod fill;
mod find;
mod pinned;
mod spaces;
mod upper;
mod whole;
mod written;

pub(crate) use spaces::Spaces;

/// The page tables, the memory and the frame allocator (see the module
/// docs for the invariants).
#[derive(Debug)]
pub(crate) struct PageTables<M, A> {
    mem: M,
    frames: A,
    /// The address spaces: every live space's PML4 and the current one.
    spaces: Spaces,
    /// The PML4 every walk starts from: the current space's (see
    /// `spaces` for the one exception).
    root: PhysFrame,
    counters: Counters,
    /// Where the PD entry last found by [`PageTables::pd_of`] is
    /// (the PD and the index), cleared whenever a table is freed, so it
    /// always names a live PD: used when that entry still names the page
    /// table being counted (a page table has one PD entry).
    last_pd: Option<(PhysFrame, usize)>,
    /// How many level-1 entries [`PageTables::set_leaf`] and `Map`'s fill
    /// (`fill`) wrote that the reclaim clock's sweep for an evictable page
    /// keeps ([`pte::is_evictable`]), in any space or half. Those two are
    /// the only writers of such entries (the whole-table paths of `whole` and
    /// `pinned` write unusable, allocate-on-write or pinned allocate-on-write
    /// entries, `clear_accessed` only clears a bit, and the rest write
    /// upper-level entries), so while this stays, no page has become one
    /// the sweep would look at (`clock::Barren`).
    evictable_made: u64,
}

impl<M: PhysMemory, A: FrameAllocator> Tables for PageTables<M, A> {
    #[inline]
    fn root(&self) -> PhysFrame {
        self.root
    }

    #[inline]
    fn entry(&mut self, table: PhysFrame, i: usize) -> u64 {
        self.read_entry(table, i)
    }

    #[inline]
    fn next_present(
        &mut self,
        table: PhysFrame,
        from: usize,
        to: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Option<(usize, u64)> {
        // One view of the table for the whole scan: one frame check, then
        // a plain loop over the entries.
        let entries = self.mem.table(table);
        first_present(from, to, |i| pte::raw(&entries[i]), keep)
    }
}

impl<M: PhysMemory, A: FrameAllocator> PageTables<M, A> {
    /// The tables rooted at `pml4` (whose managed slots must be empty) in
    /// `mem`, taking frames from `frames`; `pml4` is space 0's, the only
    /// space, current; nothing counted yet.
    pub fn new(mem: M, frames: A, pml4: PhysFrame) -> Self {
        PageTables {
            mem,
            frames,
            spaces: Spaces::new(pml4),
            root: pml4,
            counters: Counters::default(),
            last_pd: None,
            evictable_made: 0,
        }
    }

    /// The memory, for everything but page tables.
    #[inline]
    pub fn mem(&mut self) -> &mut M {
        &mut self.mem
    }

    /// The frame allocator.
    #[inline]
    pub fn frames(&self) -> &A {
        &self.frames
    }

    /// The frame allocator, to take or free frames that are not tables.
    #[inline]
    pub fn frames_mut(&mut self) -> &mut A {
        &mut self.frames
    }

    /// The memory and the frame allocator together.
    #[inline]
    pub fn parts(&mut self) -> (&mut M, &mut A) {
        (&mut self.mem, &mut self.frames)
    }

    /// Space 0's PML4 (the boot PML4).
    pub fn pml4(&self) -> PhysFrame {
        self.spaces.boot()
    }

    /// The address spaces.
    pub fn spaces(&self) -> &Spaces {
        &self.spaces
    }

    /// The page-state counts.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// How many entries the clock's sweep for an evictable page would keep
    /// were written so far (see the field's doc): unchanged since a sweep
    /// found none in a space, that space still has none.
    pub fn evictable_made(&self) -> u64 {
        self.evictable_made
    }

    /// A frame became shared (`true`) or went with its last shared mapping
    /// (the one count that no entry's state holds: `counters`).
    pub fn shared_frame(&mut self, made: bool) {
        self.counters.shared_frame(made);
    }

    /// Makes every table of the heap region `span` and makes its pages
    /// allocate-on-write, its tables counted apart (made at boot, never
    /// freed). With too few frames for them, none is left.
    ///
    /// Each page table the span covers whole is a whole allocate-on-write
    /// PD entry over its frame (`protocol::formats`), as the convert to
    /// usable RAM leaves one: the heap (RAM / 4) has no level-1 entries
    /// until its pages are used, so a walk of the tables (QEMU's `info
    /// tlb`, the host's checks) reads one entry, not 512, per 2 MiB of heap
    /// never used. (Boot still zeroes each table's frame as it makes it,
    /// and the convert reads it back once.) A page's first use fills its
    /// table ([`PageTables::leaf_slot`]); the frames are the same either
    /// way.
    pub fn make_heap_tables(&mut self, span: Span) -> Result<(), NoFrame> {
        let before = self.counters.page_table_frames();
        if let Err(e) = self.ensure_tables(span) {
            self.update(span, &mut |_: &mut Self, _, _| None);
            return Err(e);
        }
        let none = Holders {
            finfo: None,
            swap: None,
        };
        self.make_usable(span, none);
        self.counters.tables_are_the_heaps(before);
        Ok(())
    }

    /// Frees the table `child` under the upper-level entry `at` when it
    /// holds only zero entries (what every walker that empties tables does
    /// on its way back). Its bytes are all zero then, and known to be.
    fn free_if_empty(&mut self, at: Entry, child: PhysFrame) {
        if self.mem.table(child).is_empty() {
            self.unlink_table(at);
            self.drop_table(child, true);
        }
    }

    /// The frame of the present level-1 entry `raw` is no longer known to
    /// be zero if the CPU wrote through the entry (`crate::zeroes`): what
    /// every change or drop of a present entry does before the entry, and
    /// its dirty bit, go.
    #[inline]
    fn forget_written(&mut self, raw: u64) {
        if let Some(frame) = pte::written_frame(raw) {
            self.frames.set_zero(frame, false);
        }
    }

    /// A free frame, zeroed, for a page to read zeros from (as `Map` makes
    /// its pages): written only if it is not known to be zero already, and
    /// known to be zero from then on (`crate::zeroes`), so the caller names
    /// it in a new entry, which has no dirty bit.
    pub fn zeroed_frame(&mut self) -> Option<PhysFrame> {
        let mem = &mut self.mem;
        self.frames.alloc_zeroed(|f| mem.frame_bytes(f).fill(0))
    }

    /// `count` physically contiguous free frames as [`PageTables::zeroed_frame`]'s.
    pub fn zeroed_run(&mut self, count: u64) -> Option<PhysFrame> {
        let mem = &mut self.mem;
        self.frames
            .alloc_contiguous_zeroed(count, |f| mem.frame_bytes(f).fill(0))
    }

    /// Zeroes the upper-level entry `at` that names a table (a kernel PML4
    /// entry in every space), and flushes: the CPU can no longer reach the
    /// table or anything below it (the pages it maps may still be in a
    /// TLB: they need their own flush).
    fn unlink_table(&mut self, at: Entry) {
        self.link(at, 0);
        Flush::new(page_of(at.slot.base)).flush(&mut self.mem);
        // The hint may name this table (or the PD holding its entry):
        // freed tables leave no hint behind.
        self.last_pd = None;
    }

    /// Frees the frame of the unlinked table `child`; `empty`: it holds
    /// only zero entries, so its bytes are all zero, and known to be from
    /// now on (`crate::zeroes`). Every path that frees a table says which.
    fn drop_table(&mut self, child: PhysFrame, empty: bool) {
        let freed = self.frames.free(child);
        debug_assert!(freed.is_ok(), "table frame {child:?} was not in use");
        self.counters.table(false);
        if empty {
            self.frames.set_zero(child, true);
        }
    }

    /// The raw entry `i` (taken mod 512) of `table`.
    #[inline]
    pub fn read_entry(&mut self, table: PhysFrame, i: usize) -> u64 {
        pte::raw(&self.mem.table(table)[i & 511])
    }

    #[inline]
    fn write_entry(&mut self, table: PhysFrame, i: usize, raw: u64) {
        pte::set_raw(&mut self.mem.table(table)[i & 511], raw);
    }

    /// Clears the accessed bit of the present level-1 entry `table[i]`
    /// (raw bits `raw`, of the page at `linear`); answers its flush, after
    /// which the CPU sets the bit again on the next access (the clock's
    /// second chance). Its state, and so every count, stays as it was.
    #[must_use = "the CPU sets the accessed bit again only once the page is flushed"]
    pub fn clear_accessed(&mut self, table: PhysFrame, i: usize, linear: u64, raw: u64) -> Flush {
        self.write_entry(table, i, raw & !pte::ACCESSED);
        Flush::new(page_of(linear))
    }

    /// Writes a level-1 entry, keeping the counters; answers the flush a
    /// changed present entry needs (`#[must_use]`, like the token itself,
    /// since `Option` does not carry the token's `must_use`). The entry's
    /// dirty bit is read first (`crate::zeroes`), whatever `old` decoded
    /// to: a corrupt entry may be present too.
    #[must_use = "a changed present entry must be flushed from the TLB"]
    #[inline]
    pub fn set_leaf(
        &mut self,
        table: PhysFrame,
        i: usize,
        linear: u64,
        old: Pte,
        new: Pte,
    ) -> Option<Flush> {
        let was = self.read_entry(table, i);
        self.forget_written(was);
        let raw = new.encode(user(linear));
        self.write_entry(table, i, raw);
        let evictable = pte::is_evictable(raw);
        self.evictable_made = self.evictable_made.wrapping_add(u64::from(evictable));
        self.counters.page_changed(linear, old, new);
        let present = match (old.is_present(), new.is_present()) {
            (false, true) => upper::Moved::More(1),
            (true, false) => upper::Moved::OneFewer,
            _ => upper::Moved::Not,
        };
        if present != upper::Moved::Not || evictable {
            self.leaf_changed(table, linear, present, evictable);
        }
        old.is_present().then(|| Flush::new(page_of(linear)))
    }

    /// [`PageTables::set_leaf`], then the flush it answers.
    #[inline]
    pub fn set_leaf_flushed(
        &mut self,
        table: PhysFrame,
        i: usize,
        linear: u64,
        old: Pte,
        new: Pte,
    ) {
        if let Some(f) = self.set_leaf(table, i, linear, old, new) {
            f.flush(&mut self.mem);
        }
    }

    /// Creates every missing table of `span`. On `Err` (no free frame) some
    /// tables may be left empty: the caller prunes them with
    /// [`PageTables::update`] (which frees empty tables).
    pub fn ensure_tables(&mut self, span: Span) -> Result<(), NoFrame> {
        match walk(self, span.start, span.end, &mut Ensure) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(e) => Err(e),
        }
    }

    /// Calls `f` on every page of `span` whose tables exist, in address
    /// order, with its canonical address and state; writes the state `f`
    /// answers (flushing changed present entries), then frees every table
    /// of the span left with only zero entries.
    pub fn update<F>(&mut self, span: Span, f: &mut F)
    where
        F: FnMut(&mut Self, u64, Pte) -> Option<Pte>,
    {
        let _ = walk(self, span.start, span.end, &mut Update { f, flush: true });
    }

    /// [`PageTables::update`] without the flush of changed leaf entries:
    /// the bug the `inject-unmap-skip-flush` build puts in `unmap`, for the
    /// runner's tests that the judge's stale-translation probe finds it.
    #[cfg(feature = "inject-unmap-skip-flush")]
    pub fn update_unflushed<F>(&mut self, span: Span, f: &mut F)
    where
        F: FnMut(&mut Self, u64, Pte) -> Option<Pte>,
    {
        let _ = walk(self, span.start, span.end, &mut Update { f, flush: false });
    }
}

/// [`PageTables::ensure_tables`]: makes each missing table (all zero,
/// counted) and goes on into it; stops when no frame is free.
struct Ensure;

impl<M: PhysMemory, A: FrameAllocator> Visit<PageTables<M, A>> for Ensure {
    type Stop = NoFrame;
    const PAGES: bool = false;

    fn missing(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> Descend<NoFrame> {
        let mem = &mut pt.mem;
        let Some(taken) = pt.frames.alloc_zeroed(|f| mem.table(f).zero()) else {
            return ControlFlow::Break(NoFrame);
        };
        // A table is written through the direct map: no longer known to
        // hold only zeros (`crate::zeroes`).
        pt.frames.set_zero(taken, false);
        // `inject-wild-frame`: a deliberate bug, a new table of the user
        // half gets the frame after the PML4 (in the kernel: the kernel
        // image's; in the simulation: a stand-in for the kernel's tables)
        // instead of the frame just allocated, which leaks. The backend
        // refuses it.
        #[cfg(feature = "inject-wild-frame")]
        let f = if user(at.slot.base) {
            let wild = crate::frames::frame_at(crate::frames::frame_number(pt.pml4()) + 1);
            pt.mem.table(wild).zero();
            wild
        } else {
            taken
        };
        #[cfg(not(feature = "inject-wild-frame"))]
        let f = taken;
        let raw = pte::table_entry(f, user(at.slot.base));
        pt.link(at, raw);
        pt.counters.table(true);
        ControlFlow::Continue(Some(f))
    }
}

/// [`PageTables::update`]: writes the state `f` answers for each page
/// (flushing each changed present entry, unless `flush` is off: an
/// injected bug only), and frees each table the walk leaves empty.
struct Update<'a, F> {
    f: &'a mut F,
    flush: bool,
}

impl<M, A, F> Visit<PageTables<M, A>> for Update<'_, F>
where
    M: PhysMemory,
    A: FrameAllocator,
    F: FnMut(&mut PageTables<M, A>, u64, Pte) -> Option<Pte>,
{
    type Stop = Infallible;
    const PAGES: bool = true;

    fn page(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> ControlFlow<Infallible> {
        let lo = at.slot.base;
        let old = Pte::decode(at.raw, user(lo));
        // Before `f` lets go of what the page holds.
        pt.forget_written(at.raw);
        if let Some(new) = (self.f)(pt, canonical(lo), old) {
            if new != old {
                if let Some(flush) = pt.set_leaf(at.table, at.slot.index, lo, old, new) {
                    if self.flush {
                        flush.flush(&mut pt.mem);
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn whole_aow(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> Descend<Infallible> {
        ControlFlow::Continue(Some(pt.split(at)))
    }

    fn left(&mut self, pt: &mut PageTables<M, A>, at: Entry, child: PhysFrame) {
        pt.free_if_empty(at, child);
    }
}
