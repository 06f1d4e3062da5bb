//! The page-state counters, kept as the state changes (never recomputed by
//! a walk), and changed only through the methods here, each named after
//! the change it records. They live in [`crate::paging::PageTables`], which
//! alone holds them mutably: only the writers of page-table entries change
//! them.
//!
//! # Invariants
//! - The page-state counts (`present_pages`, `alloc_on_write_pages`,
//!   `heap_pages`, `clean_mmap`) change only in [`Counters::page_changed`]
//!   and [`Counters::pages_changed`], which `PageTables`' writers of
//!   level-1 entries call for every entry they write (`set_leaf`, one at a
//!   time; `paging::fill`, a chunk of a page table's run at once;
//!   `paging::whole` and `paging::pinned`, a whole table at once) or
//!   a freed table takes with it, or all at once when `Reset` drops the
//!   managed space ([`Counters::managed_dropped`]); `page_table_frames`
//!   only when `PageTables` makes or frees a table (or drops them all). So
//!   each count equals what a walk of the tables would find (`tests::check`
//!   walks and compares).
//! - `shared_frames` counts the frames present shared pages map (each
//!   once, however many pages map it): it changes only when a frame
//!   becomes shared ([`Counters::shared_frame`], by `Share`) or its last
//!   shared mapping goes (by the release of that page), and a shared
//!   page's own state change counts nothing. `present_pages` as reported
//!   is the present non-shared pages plus `shared_frames`
//!   (`protocol::Stats::present_pages` counts by frame).
//! - `heap_table_frames` counts the heap region's tables, made once at
//!   boot and never freed; they are not in `page_table_frames`.
//! - The host's frames, the `Valloc` pages and the event counts are kept by
//!   their own parts (`hostframes`, `kvalloc`, `events`).

use protocol::Stats;

use crate::layout::HEAP_START;
use crate::pte::Pte;
use crate::validate::LINEAR_MASK;

/// Counters kept as the state changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    present_pages: u64,
    alloc_on_write_pages: u64,
    page_table_frames: u64,
    heap_pages: u64,
    heap_table_frames: u64,
    clean_mmap: u64,
    shared_frames: u64,
}

/// Adds one to (`add`) or takes one from `field`.
fn step(field: &mut u64, add: bool) {
    step_by(field, add, 1);
}

/// Adds `n` to (`add`) or takes `n` from `field`.
fn step_by(field: &mut u64, add: bool, n: u64) {
    if add {
        *field += n;
    } else {
        *field -= n;
    }
}

impl Counters {
    /// The page at `linear` went from state `old` to `new` (heap pages
    /// count apart).
    pub fn page_changed(&mut self, linear: u64, old: Pte, new: Pte) {
        self.pages_changed(linear, old, new, 1);
    }

    /// `n` pages of the page table of `linear` (so all in the heap's PML4
    /// slot or none) went from state `old` to `new`.
    pub fn pages_changed(&mut self, linear: u64, old: Pte, new: Pte, n: u64) {
        self.count(linear, old, false, n);
        self.count(linear, new, true, n);
    }

    fn count(&mut self, linear: u64, p: Pte, add: bool, n: u64) {
        let heap = (linear >> 39) == (HEAP_START & LINEAR_MASK) >> 39;
        let field = match p {
            Pte::PresentRam { .. } if heap => &mut self.heap_pages,
            Pte::PresentMmap { private: false, .. } => {
                step_by(&mut self.clean_mmap, add, n);
                &mut self.present_pages
            }
            // Pinned RAM is usable RAM: counted with it (never in the heap).
            Pte::PresentRam { .. } | Pte::PresentMmap { .. } | Pte::PinnedRam { .. } => {
                &mut self.present_pages
            }
            Pte::AllocOnWrite if !heap => &mut self.alloc_on_write_pages,
            Pte::PinnedAllocOnWrite => &mut self.alloc_on_write_pages,
            // A shared page counts by its frame (`shared_frames`).
            _ => return,
        };
        step_by(field, add, n);
    }

    /// A frame became shared (`true`: a present page's, now mapped by
    /// shared pages), or its last shared mapping went and it was freed.
    pub fn shared_frame(&mut self, made: bool) {
        step(&mut self.shared_frames, made);
    }

    /// A page table was made (`true`) or freed.
    pub fn table(&mut self, made: bool) {
        step(&mut self.page_table_frames, made);
    }

    /// Every table of the managed space was dropped with its pages (a
    /// `Reset`): only the heap's pages and tables are left.
    pub fn managed_dropped(&mut self) {
        *self = Counters {
            heap_pages: self.heap_pages,
            heap_table_frames: self.heap_table_frames,
            ..Counters::default()
        };
    }

    /// Present heap pages.
    pub fn heap_pages(&self) -> u64 {
        self.heap_pages
    }

    /// Page tables counted so far.
    pub fn page_table_frames(&self) -> u64 {
        self.page_table_frames
    }

    /// The tables made since the count was `before` are the heap's (made at
    /// boot, counted apart).
    pub fn tables_are_the_heaps(&mut self, before: u64) {
        self.heap_table_frames = self.page_table_frames - before;
        self.page_table_frames = before;
    }

    /// Present data frames, as `Stats::present_pages` counts them: a
    /// shared frame once.
    pub fn present_frames(&self) -> u64 {
        self.present_pages + self.shared_frames
    }

    /// The bound of the pressure path's fail-at-once test
    /// (`protocol::semantics`, *Memory pressure*): every present data
    /// frame's and every heap page's (some of which, pinned or shared,
    /// it never frees).
    pub fn reclaimable(&self) -> u64 {
        self.present_frames() + self.heap_pages
    }

    /// Present clean file pages (which the pressure path may drop).
    pub fn clean_mmap(&self) -> u64 {
        self.clean_mmap
    }

    /// Fills the VMM's fields of `s`.
    pub fn fill(&self, s: &mut Stats) {
        s.page_table_frames = self.page_table_frames;
        s.present_pages = self.present_frames();
        s.alloc_on_write_pages = self.alloc_on_write_pages;
        s.heap_pages = self.heap_pages;
        s.heap_table_frames = self.heap_table_frames;
    }
}
