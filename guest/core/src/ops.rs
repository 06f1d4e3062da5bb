//! Map, unmap, convert and query: validate everything first (steps 1–9 of
//! `protocol::semantics`), then change state.
//!
//! Rollback strategy: the memory check (step 9) counts the exact frames a
//! request needs (data frames plus missing tables, the count stopping once
//! it exceeds the free frames), so the change itself cannot run out of
//! memory. Should an allocation fail anyway, the request is undone: tables
//! created so far are pruned (they are empty), pages mapped so far are made
//! unusable again (they were unusable before), and the answer is
//! `OutOfMemory` with the state as it was.

use protocol::{AreaType, Error, PageState, Privilege};
use x86_64::structures::paging::PhysFrame;

use crate::backend::PhysMemory;
use crate::frames::{frame_at, frame_number};
use crate::pte::Pte;
use crate::validate::{self, canonical, Span};
use crate::vmm::Vmm;

impl<M: PhysMemory> Vmm<M> {
    /// Frees what a page holds and answers its unusable state (`None` when
    /// it is unusable already).
    fn release(&mut self, old: Pte) -> Option<Pte> {
        match old {
            Pte::Unusable => None,
            Pte::PresentRam { frame, .. } | Pte::PresentMmap { frame, .. } => {
                let freed = self.frames.free(frame);
                debug_assert!(freed.is_ok(), "data frame {frame:?} was not in use");
                Some(Pte::Unusable)
            }
            // No swap space exists yet (part 2): a slot holds nothing to free.
            Pte::OnSwap { .. } => Some(Pte::Unusable),
            Pte::AllocOnWrite | Pte::NotPresentMmap { .. } | Pte::Corrupt(_) => Some(Pte::Unusable),
        }
    }

    /// Every page of `span` unusable; frees frames, swap slots and tables.
    pub(crate) fn make_unusable(&mut self, span: Span) {
        self.update(span, &mut |v: &mut Self, _, old| v.release(old));
    }

    /// Maps `pages` pages at `addr` present as usable RAM, each backed by a
    /// zeroed frame (one physically contiguous run with `contiguous`).
    /// Every page must be unusable.
    pub fn map(
        &mut self,
        addr: u64,
        pages: u64,
        writable: bool,
        contiguous: bool,
        privilege: Privilege,
    ) -> Result<(), Error> {
        let span = validate::check_pages(addr, pages, None, privilege)?;
        if let Some(bad) = self.find_first(span, &|p| p != Pte::Unusable) {
            return Err(Error::InvalidState {
                addr: canonical(bad),
            });
        }
        let avail = self
            .frames
            .free_frames()
            .checked_sub(pages)
            .ok_or(Error::OutOfMemory)?;
        if self.count_missing_tables(span, avail) > avail {
            return Err(Error::OutOfMemory);
        }
        let run = if contiguous {
            Some(
                self.frames
                    .alloc_contiguous(pages)
                    .ok_or(Error::OutOfMemory)?,
            )
        } else {
            None
        };
        let free_run = |v: &mut Self, from: u64| {
            if let Some(r) = run {
                for n in from..pages {
                    let _ = v.frames.free(frame_at(frame_number(r) + n));
                }
            }
        };
        if self.ensure_tables(span).is_err() {
            self.update(span, &mut |_: &mut Self, _, _| None);
            free_run(self, 0);
            return Err(Error::OutOfMemory);
        }
        let mut next = 0u64;
        let mut failed = false;
        self.update(span, &mut |v: &mut Self, _, _old| {
            if failed {
                return None;
            }
            let frame: PhysFrame = match run {
                Some(r) => frame_at(frame_number(r) + next),
                None => match v.frames.alloc() {
                    Some(f) => f,
                    None => {
                        failed = true;
                        return None;
                    }
                },
            };
            next += 1;
            v.mem.frame_bytes(frame).fill(0);
            Some(Pte::PresentRam { frame, writable })
        });
        if failed {
            self.make_unusable(span);
            free_run(self, next);
            return Err(Error::OutOfMemory);
        }
        Ok(())
    }

    /// Makes every page unusable, freeing frames, swap slots and emptied
    /// tables. No page may be unusable.
    pub fn unmap(&mut self, addr: u64, pages: u64, privilege: Privilege) -> Result<(), Error> {
        let span = validate::check_pages(addr, pages, None, privilege)?;
        if let Some(bad) = self.find_first(span, &|p| matches!(p, Pte::Unusable | Pte::Corrupt(_)))
        {
            return Err(Error::InvalidState {
                addr: canonical(bad),
            });
        }
        if cfg!(feature = "inject-leak") {
            // A deliberate bug, only for host-runner's test that the fuzzer
            // catches bugs (tests/inject_leak.rs): the frame of the last
            // page is not freed.
            let last = (span.end - 4096) & 0xffff_ffff_f000;
            self.update(span, &mut |v: &mut Self, page, old| match old {
                Pte::PresentRam { .. } if page & 0xffff_ffff_f000 == last => Some(Pte::Unusable),
                _ => v.release(old),
            });
        } else {
            self.make_unusable(span);
        }
        Ok(())
    }

    /// Converts every page to the area type `to` (the seed's two
    /// `VMM_convertPageAreaTypeTo…` functions).
    pub fn convert(
        &mut self,
        addr: u64,
        pages: u64,
        to: AreaType,
        privilege: Privilege,
    ) -> Result<(), Error> {
        let span = validate::check_pages(addr, pages, None, privilege)?;
        match to {
            AreaType::Unusable => self.make_unusable(span),
            AreaType::UsableRam => {
                let avail = self.frames.free_frames();
                if self.count_missing_tables(span, avail) > avail {
                    return Err(Error::OutOfMemory);
                }
                if self.ensure_tables(span).is_err() {
                    self.update(span, &mut |_: &mut Self, _, _| None);
                    return Err(Error::OutOfMemory);
                }
                self.update(span, &mut |_: &mut Self, _, old| to_usable(old));
            }
        }
        Ok(())
    }

    /// Each page's state, in address order, through `out`.
    pub fn query(
        &mut self,
        addr: u64,
        pages: u64,
        privilege: Privilege,
        mut out: impl FnMut(PageState),
    ) -> Result<(), Error> {
        let span = validate::check_pages(addr, pages, Some(protocol::MAX_QUERY_PAGES), privilege)?;
        let mut page = span.start;
        while page < span.end {
            out(self.lookup(page).to_protocol());
            page += 4096;
        }
        Ok(())
    }

    /// Checks a `Write`/`Read` before touching: `Ok(None)` for a zero
    /// length (nothing to touch), else the byte span.
    pub fn check_touch(
        &self,
        addr: u64,
        len: u64,
        privilege: Privilege,
    ) -> Result<Option<Span>, Error> {
        validate::check_touch(addr, len, privilege)
    }
}

/// The seed's `VMM_convertPageAreaTypeToUsableRAM` for one page: the new
/// state, or `None` to leave it.
pub fn to_usable(old: Pte) -> Option<Pte> {
    match old {
        Pte::Unusable | Pte::NotPresentMmap { .. } => Some(Pte::AllocOnWrite),
        Pte::PresentMmap { frame, .. } => Some(Pte::PresentRam {
            frame,
            writable: true,
        }),
        Pte::PresentRam { .. } | Pte::AllocOnWrite | Pte::OnSwap { .. } | Pte::Corrupt(_) => None,
    }
}

#[cfg(any(test, feature = "sim"))]
impl<M: PhysMemory> Vmm<M> {
    /// Test support: puts the page at canonical `addr` in `state` whatever it
    /// was (its old frame freed; a present state gets a fresh frame filled
    /// with `fill`, its `frame` field ignored). The mmap and swap states
    /// have no request that makes them in part 1.
    pub fn set_state_for_test(&mut self, addr: u64, state: Pte, fill: u8) -> Result<(), Error> {
        let span = validate::check_pages(addr, 1, None, Privilege::Kernel)?;
        self.make_unusable(span);
        if state == Pte::Unusable {
            return Ok(());
        }
        self.ensure_tables(span).map_err(|()| Error::OutOfMemory)?;
        let state = match state {
            Pte::PresentRam { writable, .. } => {
                let frame = self.frames.alloc().ok_or(Error::OutOfMemory)?;
                self.mem.frame_bytes(frame).fill(fill);
                Pte::PresentRam { frame, writable }
            }
            Pte::PresentMmap {
                writable, private, ..
            } => {
                let frame = self.frames.alloc().ok_or(Error::OutOfMemory)?;
                self.mem.frame_bytes(frame).fill(fill);
                Pte::PresentMmap {
                    frame,
                    writable,
                    private,
                }
            }
            s => s,
        };
        self.update(span, &mut |_: &mut Self, _, _| Some(state));
        Ok(())
    }
}
