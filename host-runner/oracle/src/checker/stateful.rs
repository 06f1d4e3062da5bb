//! [`Checker`]: the memory checker of one booted guest. A full check
//! verifies everything and records what it read (the page tables, the
//! frame bitmap, the frame owners, the frame-info table, the swap store's
//! bookkeeping); an incremental check re-verifies only what the model's
//! changes and the differences from that record say may have changed
//! (see [`super::incremental`]).

use std::ops::Range;

use protocol::Hello;

use super::bitmap::Bitmap;
use super::claims::{Claim, Ctx, Owner, Owners};
use super::copies::Mirror;
use super::data_thread::beside_data;
use super::diff::Diff;
use super::memory::GuestMemory;
use super::sharing::{self, SharedIndex};
use super::spaces::decide_leaks;
use super::swap::{check_store, model_slots, read_store, Store};
use super::walk::{walk, Entries, Translation, Tree, Walk};
use super::{file_images, leaf, mmap, slots, CheckReport, Scope, Violation};
use crate::model::{Changes, Expected, Model};

/// What a clean check read, for the next incremental check to compare.
#[derive(Debug)]
pub(super) struct Record {
    pub hello: Hello,
    /// The model's changes taken when it was made: (epoch, seq).
    pub since: (u64, u64),
    pub tree: Tree,
    pub bitmap: Vec<u64>,
    pub info: Option<Mirror>,
    pub swap: Option<Store>,
}

/// The memory checker of one guest, with its record of the last check.
/// Keep one per booted guest: [`Checker::check_model`] runs a full check
/// when asked, and otherwise an incremental one when the record and the
/// model's changes allow (else a full one).
#[derive(Debug, Default)]
pub struct Checker {
    pub(super) record: Option<Record>,
    pub(super) owners: Owners,
    /// Spare table buffers.
    pub(super) pool: Vec<Entries>,
    /// A reused buffer: the swap units owned.
    pub(super) units: Vec<u64>,
    /// The incremental check's comparison, for its buffers.
    pub(super) diff: Diff,
    /// From how many pages a check compares bytes on a thread of its own
    /// ([`Checker::set_data_thread`]).
    pub(super) data_thread: Option<usize>,
}

impl Checker {
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Lets a check compare bytes on a second thread, beside the rest of
    /// the check (the incremental check's changed pages; the full check's
    /// every present page and the second half of the file images' pages),
    /// when those pages number at least `min_pages` (`None`: never, the
    /// default) and the memory allows it ([`GuestMemory::as_sync`]).
    /// Worth it when a core is free while the check runs (a guest waits
    /// for its check), from [`DATA_THREAD_PAGES`](super::DATA_THREAD_PAGES)
    /// pages. The report is the same either way, in the same order.
    pub fn set_data_thread(&mut self, min_pages: Option<usize>) {
        self.data_thread = min_pages;
    }

    /// Whether the next incremental check can compare with a record.
    pub fn has_record(&self) -> bool {
        self.record.is_some()
    }

    /// Forgets the record: the next check is a full one.
    pub fn forget(&mut self) {
        if let Some(r) = self.record.take() {
            r.tree.recycle(&mut self.pool);
        }
    }

    /// Takes `model`'s changes and checks: in full when `full` says so or
    /// when no usable record exists, else incrementally.
    pub fn check_model(
        &mut self,
        mem: &dyn GuestMemory,
        hello: &Hello,
        model: &mut Model,
        full: bool,
    ) -> CheckReport {
        let changes = model.take_changes();
        let expect = model.view();
        if full {
            self.full(mem, hello, &expect, Some(&changes))
        } else {
            self.incremental(mem, hello, &expect, &changes)
        }
    }

    /// Checks invariants 1–6 everywhere and, when clean, records what it
    /// read. `since`: the model's changes taken just before (so that the
    /// next incremental check can take the ones after them); without them
    /// the next check is a full one too.
    pub fn full(
        &mut self,
        mem: &dyn GuestMemory,
        hello: &Hello,
        expect: &Expected,
        since: Option<&Changes>,
    ) -> CheckReport {
        let (spare_bitmap, spare_info, spare_swap) = match self.record.take() {
            Some(r) => {
                r.tree.recycle(&mut self.pool);
                (
                    r.bitmap,
                    r.info.unwrap_or_default(),
                    r.swap.unwrap_or_default(),
                )
            }
            None => Default::default(),
        };
        let mut out = Vec::new();
        let tree = walk(
            mem,
            hello,
            expect.space_roots(),
            None,
            &mut self.pool,
            &mut out,
        );
        let mut translations = Vec::new();
        for t in tree.leaf_tables() {
            leaf::check_table(hello, expect, t, &mut translations, &mut out);
        }
        let covered: Vec<u64> = tree.leaf_tables().map(|t| t.first_page() >> 9).collect();
        leaf::missing_tables(expect.runs(), &covered, &mut out);
        // The present pages' bytes and the file images' second half beside
        // the rest (`beside_data`); the report keeps the order of a check
        // on one thread: the claims', the data's, the frame-info table's,
        // the images' and what follows.
        let images = file_images::image_pages(hello);
        let half = images / 2;
        let (mut tail, mut after) = (Vec::new(), Vec::new());
        let work = (&translations[..], half..images);
        let ((bitmap, info, swap), data, image) =
            beside_data(mem, hello, expect, work, self.data_thread, || {
                let bitmap = self.claims(
                    mem,
                    hello,
                    expect,
                    (&tree, &translations),
                    spare_bitmap,
                    &mut out,
                );
                let spare = (spare_info, spare_swap);
                let read = (&tree, &translations[..], bitmap.as_ref());
                let into = (0..half, &mut tail, &mut after);
                let (info, swap) = self.beyond_frames(mem, hello, expect, read, spare, into);
                (bitmap, info, swap)
            });
        out.extend(data);
        out.append(&mut tail);
        out.extend(image);
        out.append(&mut after);
        let walk = Walk {
            translations,
            tables: tree.table_refs(),
        };
        match bitmap.filter(|_| out.is_empty()) {
            Some(bitmap) => {
                self.record = Some(Record {
                    hello: hello.clone(),
                    since: since.map_or((0, 0), |c| (c.epoch(), c.seq())),
                    tree,
                    bitmap: bitmap.words,
                    info,
                    swap,
                });
            }
            None => tree.recycle(&mut self.pool),
        }
        CheckReport {
            violations: out,
            walk,
            scope: Scope::Full,
        }
    }
}

impl Checker {
    /// The full check's frames: the bitmap read, and every table's and
    /// present page's claim on its frame decided (invariants 1–3) with the
    /// leaks. Answers the bitmap (`None`: unreadable, reported).
    fn claims(
        &mut self,
        mem: &dyn GuestMemory,
        hello: &Hello,
        expect: &Expected,
        (tree, translations): (&Tree, &[Translation]),
        spare: Vec<u64>,
        out: &mut Vec<Violation>,
    ) -> Option<Bitmap> {
        let bitmap = Bitmap::read(mem, hello, spare, out)?;
        self.owners.reset(hello.total_frames);
        let ctx = Ctx {
            hello,
            expect,
            bitmap: &bitmap,
        };
        for t in &tree.tables {
            self.owners.claim(&ctx, t.claim(), || t.path(), out);
        }
        for t in translations {
            let owner = Owner::of_page(t.virt, t.kind);
            let c = Claim {
                frame: t.frame,
                owner,
            };
            self.owners.claim(&ctx, c, || t.path(), out);
        }
        decide_leaks(mem, &ctx, &mut self.owners, None, out);
        Some(bitmap)
    }

    /// The full check's parts after the frames: the frame-info table, the
    /// sharing rule and the file images' pages `images`, their violations
    /// into `out`; the reservations and the swap store, theirs into
    /// `after` (`spare`: the buffers of the last record's table and
    /// store). Answers the table and the store as read.
    fn beyond_frames(
        &mut self,
        mem: &dyn GuestMemory,
        hello: &Hello,
        expect: &Expected,
        (tree, translations, bitmap): (&Tree, &[Translation], Option<&Bitmap>),
        (spare_info, spare_swap): (Mirror, Store),
        (images, out, after): (Range<u64>, &mut Vec<Violation>, &mut Vec<Violation>),
    ) -> (Option<Mirror>, Option<Store>) {
        let info = mmap::read_info(mem, hello, spare_info, out);
        if let Some(info) = &info {
            mmap::check_all(expect, info, translations, out);
        }
        let shared = SharedIndex::read(tree);
        sharing::check(&shared, info.as_ref(), bitmap, expect, out);
        file_images::check_images(mem, hello, expect, images, out);
        mmap::check_reservations(hello, after);
        let swap = swap_store(mem, hello, spare_swap, after);
        if let Some(store) = &swap {
            let found = check_store(store, &model_slots(expect), &mut self.units, after);
            slots::check_slots(mem, hello, store, expect, found.into_iter(), after);
        }
        (info, swap)
    }
}

/// The swap store as read, its unusable layout reported.
pub(super) fn swap_store(
    mem: &dyn GuestMemory,
    hello: &Hello,
    reuse: Store,
    out: &mut Vec<Violation>,
) -> Option<Store> {
    match read_store(mem, hello, reuse) {
        Ok(store) => store,
        Err(why) => {
            out.push(Violation::SwapStore { why });
            None
        }
    }
}
