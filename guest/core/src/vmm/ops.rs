//! Map, unmap, convert, query and evict: validate everything first (steps 1–9 of
//! `protocol::semantics`), then change state.
//!
//! Rollback strategy: the memory check (step 9) counts the exact frames a
//! request needs (data frames plus missing tables, the count stopping once
//! it exceeds the free frames), so the change itself cannot run out of
//! memory. Should an allocation fail anyway, the request is undone: tables
//! created so far are pruned (they are empty), pages mapped so far are made
//! unusable again (they were unusable before), and the answer is
//! `OutOfMemory` with the state as it was.

use protocol::{AreaType, PageState, Privilege};

use super::Vmm;
use crate::backend::PhysMemory;
use crate::errors::{ConvertError, MapError, NotUnusable, UnmapError};
use crate::frame_alloc::FrameAllocator;
use crate::frames::{frame_at, frame_number};
use crate::holders::Holders;
use crate::paging::PageTables;
use crate::pte::Pte;
use crate::validate::{self, canonical, Invalid, Span};

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// The page tables, and what pages hold outside them (the frame-info
    /// table, the swap store) lent beside them: for the walkers and the
    /// pressure path, which let pages go.
    pub(super) fn holders(&mut self) -> (&mut PageTables<M, A>, Holders<'_>) {
        let holders = Holders {
            finfo: self.finfo,
            swap: self.swap.as_mut(),
        };
        (&mut self.pt, holders)
    }

    /// Every page of `span` unusable; frees frames, swap slots and tables.
    pub(super) fn make_unusable(&mut self, span: Span) {
        let (pt, holders) = self.holders();
        pt.clear(span, holders);
    }

    /// Checks that every page of `span` is unusable, for a request that
    /// fills unusable pages (`Map`, `MapFile`), then pins the span (the
    /// pressure path leaves it alone).
    pub(super) fn claim_unusable(&mut self, span: Span) -> Result<(), NotUnusable> {
        if let Some(bad) = self.pt.find_first(span, &|p| p != Pte::Unusable) {
            return Err(NotUnusable {
                addr: canonical(bad),
            });
        }
        self.clock.pin(Some(span));
        Ok(())
    }

    /// Maps `pages` pages at `addr` present as usable RAM, each backed by a
    /// zeroed frame (one physically contiguous run with `contiguous`),
    /// writable or executable (never both: W^X) as asked. Every page must
    /// be unusable.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn map(
        &mut self,
        addr: u64,
        pages: u64,
        writable: bool,
        executable: bool,
        contiguous: bool,
        privilege: Privilege,
    ) -> Result<(), MapError> {
        if writable && executable {
            return Err(MapError::WriteAndExecute);
        }
        let span = validate::check_pages(addr, pages, None, privilege)?;
        self.claim_unusable(span)?;
        let limit = self.pt.frames().total_frames();
        let need = pages.saturating_add(self.pt.count_missing_tables(span, limit));
        if need > limit {
            return Err(MapError::OutOfMemory);
        }
        self.reserve(need)?;
        let run = if contiguous {
            Some(self.pt.zeroed_run(pages).ok_or(MapError::OutOfMemory)?)
        } else {
            None
        };
        let free_run = |frames: &mut A, from: u64| {
            if let Some(r) = run {
                for n in from..pages {
                    let _ = frames.free(frame_at(frame_number(r) + n));
                }
            }
        };
        if self.pt.ensure_tables(span).is_err() {
            self.pt.update(span, &mut |_, _, _| None);
            free_run(self.pt.frames_mut(), 0);
            return Err(MapError::OutOfMemory);
        }
        let mut next = 0u64;
        let mut take = |pt: &mut PageTables<M, A>| {
            let frame = match run {
                Some(r) => Some(frame_at(frame_number(r) + next)),
                None => pt.zeroed_frame(),
            };
            next += u64::from(frame.is_some());
            frame
        };
        let failed = self
            .pt
            .fill_unusable(span, writable, executable, &mut take)
            .is_err();
        if failed {
            self.make_unusable(span);
            free_run(self.pt.frames_mut(), next);
            return Err(MapError::OutOfMemory);
        }
        Ok(())
    }

    /// Makes every page unusable, freeing frames, swap slots and emptied
    /// tables. No page may be unusable.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn unmap(&mut self, addr: u64, pages: u64, privilege: Privilege) -> Result<(), UnmapError> {
        let span = validate::check_pages(addr, pages, None, privilege)?;
        if let Some(bad) = self
            .pt
            .find_first(span, &|p| matches!(p, Pte::Unusable | Pte::Corrupt(_)))
        {
            return Err(UnmapError::NotMapped {
                addr: canonical(bad),
            });
        }
        if cfg!(feature = "inject-leak") {
            // A deliberate bug, only for host-runner's test that the fuzzer
            // catches bugs (host-runner/tests/it/inject_leak.rs): the frame of the last
            // page is not freed.
            let last = (span.end - 4096) & 0xffff_ffff_f000;
            let (pt, mut holders) = self.holders();
            pt.update(span, &mut |v, page, old| match old {
                Pte::PresentRam { .. } if page & 0xffff_ffff_f000 == last => Some(Pte::Unusable),
                _ => holders.release(v, old),
            });
        } else {
            // `inject-unmap-skip-flush`: a deliberate bug, only for
            // host-runner's test that the judge probes what an unmap made
            // unreachable: the leaves change without a TLB flush.
            #[cfg(feature = "inject-unmap-skip-flush")]
            {
                let (pt, mut holders) = self.holders();
                pt.update_unflushed(span, &mut |v, _, old| holders.release(v, old));
            }
            #[cfg(not(feature = "inject-unmap-skip-flush"))]
            self.make_unusable(span);
        }
        Ok(())
    }

    /// Converts every page to the area type `to` (the seed's two
    /// `VMM_convertPageAreaTypeTo…` functions).
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn convert(
        &mut self,
        addr: u64,
        pages: u64,
        to: AreaType,
        privilege: Privilege,
    ) -> Result<(), ConvertError> {
        let span = validate::check_pages(addr, pages, None, privilege)?;
        if to == AreaType::Unusable {
            self.make_unusable(span);
            return Ok(());
        }
        self.clock.pin(Some(span));
        let limit = self.pt.frames().total_frames();
        let mut need = self.pt.count_missing_tables(span, limit);
        if to == AreaType::PinnedRam {
            // Each swapped page comes back into a frame of its own now.
            need = need.saturating_add(self.pt.count_swapped(span, limit));
        }
        if need > limit {
            return Err(ConvertError::OutOfMemory);
        }
        self.reserve(need)?;
        if self.pt.ensure_tables(span).is_err() {
            self.pt.update(span, &mut |_, _, _| None);
            return Err(ConvertError::OutOfMemory);
        }
        let (pt, holders) = self.holders();
        if to == AreaType::PinnedRam {
            pt.make_pinned(span, holders);
        } else {
            pt.make_usable(span, holders);
        }
        Ok(())
    }

    /// Sends the range's present pages out in ascending order (RAM and
    /// private file pages to swap, clean file pages dropped), stopping at
    /// the first that does not fit or when the event ring is full. Answers
    /// `(swapped, dropped)`; the events name every page.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn evict(
        &mut self,
        addr: u64,
        pages: u64,
        privilege: Privilege,
    ) -> Result<(u64, u64), Invalid> {
        let span = validate::check_pages(addr, pages, None, privilege)?;
        self.clock.pin(Some(span));
        let (mut swapped, mut dropped) = (0, 0);
        let mut from = span.start;
        while let Some((lin, table, i, p)) = self.next_evictable(from, span.end) {
            from = lin + 4096;
            if self.events.full() {
                break;
            }
            let clean = matches!(p, Pte::PresentMmap { private: false, .. });
            if self.send_out(table, i, lin, p).is_err() {
                break;
            }
            if clean {
                dropped += 1;
            } else {
                swapped += 1;
            }
        }
        Ok((swapped, dropped))
    }

    /// Each page's state, in address order, through `out`.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn query(
        &mut self,
        addr: u64,
        pages: u64,
        privilege: Privilege,
        mut out: impl FnMut(PageState),
    ) -> Result<(), Invalid> {
        let span = validate::check_pages(addr, pages, Some(protocol::MAX_QUERY_PAGES), privilege)?;
        let mut page = span.start;
        while page < span.end {
            let state = match self.pt.lookup(page) {
                Pte::PresentMmap { frame, private, .. } => {
                    let (file, fpage) = self.frame_info(frame).unwrap_or((0, 0));
                    PageState::PresentMmap {
                        file,
                        page: fpage,
                        private,
                        frame: frame.start_address().as_u64(),
                    }
                }
                Pte::Shared { frame, writable } => PageState::Shared {
                    writable,
                    mappings: self.shared_count(frame),
                    frame: frame.start_address().as_u64(),
                },
                p => p.to_protocol(),
            };
            out(state);
            page += 4096;
        }
        Ok(())
    }

    /// Checks a `Write`/`Read` before touching: `Ok(None)` for a zero
    /// length (nothing to touch), else the byte span.
    pub fn check_touch(
        &mut self,
        addr: u64,
        len: u64,
        privilege: Privilege,
    ) -> Result<Option<Span>, Invalid> {
        match validate::check_touch(addr, len, privilege) {
            Err(Invalid::Reserved)
                if privilege == Privilege::Kernel
                    && (crate::layout::HEAP_START..crate::layout::HEAP_END).contains(&addr)
                    && self.heap_host_range(addr, len) =>
            {
                Ok(Some(validate::Span::from_canonical(addr, len)))
            }
            r => r,
        }
        .inspect(|span| {
            self.clock.pin(span.map(|s| Span {
                start: s.start & !0xfff,
                end: s.end.div_ceil(4096) * 4096,
            }));
        })
    }
}
