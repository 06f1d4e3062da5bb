//! Shared memory (`protocol::semantics`, **Shared memory**): `Share`, which
//! makes pages of a space (the target, any live one) map the frames of the
//! current space's present pages, and the mapping count of a shared frame
//! in its frame-info record (`frameinfo`, `1 << 62 | count`). What every
//! other request does to a shared page is where that request lives: the
//! release of a mapping in `holders` (count − 1, the frame freed at 0),
//! touches in `fault`, `Query` in `ops`, the clock and `Evict` passing it
//! (`pte::is_evictable`, `reclaim`), `present_pages` by frame in
//! `counters`.
//!
//! # Invariants
//! - A frame's shared record is set exactly while present shared entries
//!   (of any live space) name it, to their number; all of them have the
//!   same W bit (the sharing rule of `protocol::formats`). Every frame
//!   number that ever got a shared record is in the VMM's `file_frames`
//!   extent, so `Reset` clears it with the file records.
//! - A `Share` that fails changes nothing but what its reclaim did: every
//!   check (in the specification's order) and the reserve of the target's
//!   tables come before the first change, and the reclaim never takes a
//!   page of the source range (it is the clock's pin).
//! - The target space's tables are made and its leaves written with the
//!   walk root at its root (`PageTables::in_space`), through the one
//!   writer of upper-level entries (`link`) and of leaves (`set_leaf`);
//!   the walk root is the current space's again before `Share` returns.

use x86_64::structures::paging::PhysFrame;

use super::Vmm;
use crate::backend::PhysMemory;
use crate::errors::{NoSuchSpace, ShareError};
use crate::frame_alloc::FrameAllocator;
use crate::frameinfo::MAX_SHARED_COUNT;
use crate::frames::frame_number;
use crate::pte::Pte;
use crate::validate::{self, canonical, is_lower, Invalid, Span};

/// Whether a source page may be shared: present RAM that is not code, or
/// present shared RAM already.
fn shareable(p: Pte) -> bool {
    matches!(
        p,
        Pte::PresentRam {
            executable: false,
            ..
        } | Pte::Shared { .. }
    )
}

impl From<NoSuchSpace> for ShareError {
    fn from(NoSuchSpace: NoSuchSpace) -> Self {
        ShareError::NoSuchSpace
    }
}

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// The mapping count recorded for the shared frame `frame` (0 without
    /// a record or a frame-info table).
    pub(super) fn shared_count(&mut self, frame: PhysFrame) -> u64 {
        self.finfo
            .map_or(0, |t| t.shared_count(self.pt.mem(), frame))
    }

    /// `Share`: the `pages` unusable pages at `to` in space `space` map the
    /// frames of the current space's present pages at `addr`, page for
    /// page, with the same writability; both become present shared RAM,
    /// each frame's count one more than its shared mappings before (2 for
    /// a page shared the first time). Checked in the specification's order
    /// (the kernel-only check is the dispatcher's); no frame is taken but
    /// the target's tables. Without a frame-info table (no metadata) there
    /// is nowhere to keep a count: `OutOfMemory`.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn share(&mut self, addr: u64, pages: u64, space: u16, to: u64) -> Result<(), ShareError> {
        let len = validate::check_pages_to_hole(addr, pages)?;
        validate::check_pages_to_hole(to, pages)?;
        if !is_lower(addr) || !is_lower(to) {
            return Err(Invalid::Reserved.into());
        }
        let source = Span::from_canonical(addr, len);
        let target = Span::from_canonical(to, len);
        self.pt
            .spaces()
            .root(space)
            .ok_or(ShareError::NoSuchSpace)?;
        if let Some(bad) = self.pt.find_first(source, &|p| !shareable(p)) {
            return Err(ShareError::NotShareable {
                addr: canonical(bad),
            });
        }
        let taken = self
            .pt
            .in_space(space, |pt| pt.find_first(target, &|p| p != Pte::Unusable))?;
        if let Some(bad) = taken {
            return Err(ShareError::NotUnusable {
                addr: canonical(bad),
            });
        }
        // Step 9: the target's missing tables, reclaiming (never a page of
        // the source range: the clock's pin) as any multi-frame request.
        let finfo = self.finfo.ok_or(ShareError::OutOfMemory)?;
        self.clock.pin(Some(source));
        let limit = self.pt.frames().total_frames();
        let need = self
            .pt
            .in_space(space, |pt| pt.count_missing_tables(target, limit))?;
        if need > limit {
            return Err(ShareError::OutOfMemory);
        }
        self.reserve(need).map_err(|_| ShareError::OutOfMemory)?;
        let made = self.pt.in_space(space, |pt| {
            let made = pt.ensure_tables(target);
            if made.is_err() {
                // Prune the empty tables made so far.
                pt.update(target, &mut |_, _, _| None);
            }
            made
        })?;
        made.map_err(|_| ShareError::OutOfMemory)?;
        for i in 0..pages {
            let from = source.start + i * 4096;
            let Some((frame, writable)) = self.share_source(from, finfo) else {
                debug_assert!(false, "source page {from:#x} changed after its check");
                continue;
            };
            let at = target.start + i * 4096;
            self.pt.in_space(space, |pt| {
                let Some((table, j)) = pt.leaf_slot(at) else {
                    debug_assert!(false, "target page {at:#x} has no table");
                    return;
                };
                let old = Pte::decode(pt.read_entry(table, j), true);
                debug_assert_eq!(old, Pte::Unusable, "target page {at:#x}");
                // Not present before: nothing for the TLB to drop.
                let _ = pt.set_leaf(table, j, at, old, Pte::Shared { frame, writable });
            })?;
        }
        Ok(())
    }

    /// Makes the current space's page at `linear` (checked shareable)
    /// shared RAM if it is not yet, and counts the mapping about to be
    /// added: its frame's count becomes one more than its shared mappings
    /// (2 for a page shared the first time). Answers its frame and
    /// writability (`None` if it is not shareable after all).
    ///
    /// `inject-share-no-count`: a deliberate bug, for the tests that must
    /// catch it: a frame already shared keeps its count, one short.
    fn share_source(
        &mut self,
        linear: u64,
        finfo: crate::frameinfo::FrameInfo,
    ) -> Option<(PhysFrame, bool)> {
        let (table, i) = self.pt.leaf_slot(linear)?;
        let old = Pte::decode(self.pt.read_entry(table, i), true);
        let (frame, writable, count) = match old {
            Pte::PresentRam {
                frame,
                writable,
                executable: false,
            } => {
                // Same frame and rights: the flush `set_leaf` answers is
                // an extra only (the translation does not change).
                let shared = Pte::Shared { frame, writable };
                self.pt.set_leaf_flushed(table, i, linear, old, shared);
                self.pt.shared_frame(true);
                let n = frame_number(frame);
                self.file_frames.add(n, n + 1);
                (frame, writable, 2)
            }
            Pte::Shared { frame, writable } => {
                let before = finfo.shared_count(self.pt.mem(), frame);
                let count = if cfg!(feature = "inject-share-no-count") {
                    before
                } else {
                    before.saturating_add(1)
                };
                (frame, writable, count)
            }
            _ => return None,
        };
        finfo.set_shared(self.pt.mem(), frame, count.min(MAX_SHARED_COUNT));
        Some((frame, writable))
    }
}
