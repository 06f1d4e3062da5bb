//! The kernel virtual allocator: the seed's "get me n free virtual pages",
//! over the `Valloc` region (`layout::VALLOC_START`, 1 GiB).
//!
//! # Why a bitmap (and not bump pointers)
//! The thread offers two designs: a bitmap of the region, or bump pointers
//! from the bottom and the top with returned space "handed back" to the
//! caller's own allocator. The protocol needs what only the bitmap gives:
//! `Vfree` may return any part of one or several runs and must refuse
//! (`InvalidState` with the lowest page) a page that is not handed out, and
//! freed space must be found again by later `Valloc`s (`NoVirtualSpace` only
//! when no free run of that length exists). Bump pointers forget returned
//! middle space and cannot tell a handed-out page from a returned one. The
//! cost the thread names (extra RAM, 4 MiB for a 4 GiB space) is small
//! here: the region is 2^18 pages, a 32 KiB bitmap (8 frames of the VMM's
//! metadata), searched first fit a 64-bit word at a time (`bits`).

use crate::backend::PhysMemory;
use crate::bits::Bits;
use crate::errors::{Invalid, VallocError, VfreeError};
use crate::frame_alloc::FrameAllocator;
use crate::layout::{VALLOC_PAGES, VALLOC_START};
use crate::validate;
use crate::vmm::Vmm;

pub use crate::layout::VALLOC_BITMAP_FRAMES;

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    fn valloc_bits(&self) -> Option<Bits> {
        self.meta.map(|m| Bits {
            base: m.valloc_base(),
            len: VALLOC_PAGES,
        })
    }

    /// Finds `pages` free pages of the `Valloc` region and reserves them
    /// until [`Vmm::vfree`]; maps nothing. The kernel-only check is the
    /// caller's.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn valloc(&mut self, pages: u64) -> Result<u64, VallocError> {
        if pages == 0 {
            return Err(Invalid::ZeroCount.into());
        }
        if pages > VALLOC_PAGES {
            return Err(Invalid::TooLarge.into());
        }
        let bits = self.valloc_bits().ok_or(VallocError::NoVirtualSpace)?;
        let start = bits
            .find_clear_run(&mut self.mem, pages, 1, 0)
            .ok_or(VallocError::NoVirtualSpace)?;
        bits.set_range(&mut self.mem, start, start + pages, true);
        self.counters.valloc_taken(pages);
        Ok(VALLOC_START + start * 4096)
    }

    /// Gives back `pages` pages at `addr`, every one handed out by
    /// [`Vmm::valloc`] (any part of one or several runs). The kernel-only
    /// check is the caller's.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn vfree(&mut self, addr: u64, pages: u64) -> Result<(), VfreeError> {
        let len = validate::check_pages_basic(addr, pages, None)?;
        let end = addr + len;
        let region_end = VALLOC_START + VALLOC_PAGES * 4096;
        if addr < VALLOC_START || addr >= region_end {
            return Err(VfreeError::NotHandedOut { addr });
        }
        let Some(bits) = self.valloc_bits() else {
            return Err(VfreeError::NotHandedOut { addr });
        };
        let first = (addr - VALLOC_START) / 4096;
        let last = (end.min(region_end) - VALLOC_START) / 4096;
        if let Some(n) = bits.find(&mut self.mem, first, last, false) {
            return Err(VfreeError::NotHandedOut {
                addr: VALLOC_START + n * 4096,
            });
        }
        if end > region_end {
            return Err(VfreeError::NotHandedOut { addr: region_end });
        }
        bits.set_range(&mut self.mem, first, last, false);
        self.counters.valloc_freed(pages);
        Ok(())
    }

    /// Frees every `Valloc` run.
    pub(crate) fn clear_valloc(&mut self) {
        if let Some(bits) = self
            .valloc_bits()
            .filter(|_| self.counters.valloc_pages() > 0)
        {
            bits.clear_all(&mut self.mem);
        }
        self.counters.valloc_cleared();
    }
}
