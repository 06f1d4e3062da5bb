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
//!
//! # Invariants
//! - Bit `n` of the region's bitmap is set exactly while page `n` of the
//!   region is handed out; `Valloc::pages` is the number of set bits.
//! - `Valloc` is the only writer of its bitmap and its count; its
//!   operations get the memory passed in and change nothing else. The
//!   request functions (`valloc`, `vfree`) validate first, so a refused
//!   request changes nothing.

use crate::backend::PhysMemory;
use crate::bits::Bits;
use crate::errors::{Invalid, VallocError, VfreeError};
use crate::extent::Extent;
use crate::layout::{VALLOC_PAGES, VALLOC_START};
use crate::validate;

pub use crate::layout::VALLOC_BITMAP_FRAMES;

/// End (exclusive) of the `Valloc` region.
const REGION_END: u64 = VALLOC_START + VALLOC_PAGES * 4096;

/// The `Valloc` region's bitmap (bit `n`: page `n` is handed out), in the
/// VMM's metadata from frame number `base` on, and how many bits are set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Valloc {
    bits: Bits,
    pages: u64,
    /// The bits set since the last [`Valloc::clear`].
    set: Extent,
}

/// `Valloc` of `pages` pages over `space` (`None`: the VMM has no metadata,
/// so there is no space): the address of the first page of the first free
/// run, reserved until [`vfree`]; maps nothing. The kernel-only check is
/// the caller's.
pub(crate) fn valloc<M: PhysMemory>(
    space: Option<&mut Valloc>,
    mem: &mut M,
    pages: u64,
) -> Result<u64, VallocError> {
    if pages == 0 {
        return Err(Invalid::ZeroCount.into());
    }
    if pages > VALLOC_PAGES {
        return Err(Invalid::TooLarge.into());
    }
    let space = space.ok_or(VallocError::NoVirtualSpace)?;
    space.alloc(mem, pages)
}

/// `Vfree` of `pages` pages at `addr` over `space`, every one handed out by
/// [`valloc`] (any part of one or several runs). The kernel-only check is
/// the caller's.
pub(crate) fn vfree<M: PhysMemory>(
    space: Option<&mut Valloc>,
    mem: &mut M,
    addr: u64,
    pages: u64,
) -> Result<(), VfreeError> {
    let len = validate::check_pages_basic(addr, pages, None)?;
    if !(VALLOC_START..REGION_END).contains(&addr) {
        return Err(VfreeError::NotHandedOut { addr });
    }
    let Some(space) = space else {
        return Err(VfreeError::NotHandedOut { addr });
    };
    space.free(mem, addr, addr + len)
}

impl Valloc {
    /// The bitmap at frame number `base`, with no page handed out (the
    /// caller zeroed it).
    pub(crate) fn at(base: u64) -> Self {
        Valloc {
            bits: Bits {
                base,
                len: VALLOC_PAGES,
            },
            pages: 0,
            set: Extent::default(),
        }
    }

    /// Pages handed out.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    /// Hands out the first free run of `pages` (`1..=VALLOC_PAGES`) pages:
    /// the address of its first page.
    fn alloc<M: PhysMemory>(&mut self, mem: &mut M, pages: u64) -> Result<u64, VallocError> {
        let start = self
            .bits
            .find_clear_run(mem, pages, 1, 0)
            .ok_or(VallocError::NoVirtualSpace)?;
        self.bits.set_range(mem, start, start + pages, true);
        self.set.add(start, start + pages);
        self.pages += pages;
        Ok(VALLOC_START + start * 4096)
    }

    /// Takes back `addr..end` (`addr` a page of the region, `end` past it):
    /// every page must be handed out, the lowest that is not is the error.
    fn free<M: PhysMemory>(&mut self, mem: &mut M, addr: u64, end: u64) -> Result<(), VfreeError> {
        let first = (addr - VALLOC_START) / 4096;
        let last = (end.min(REGION_END) - VALLOC_START) / 4096;
        if let Some(n) = self.bits.find(mem, first, last, false) {
            return Err(VfreeError::NotHandedOut {
                addr: VALLOC_START + n * 4096,
            });
        }
        if end > REGION_END {
            return Err(VfreeError::NotHandedOut { addr: REGION_END });
        }
        self.bits.set_range(mem, first, last, false);
        self.pages -= last - first;
        Ok(())
    }

    /// Takes back every page (`Reset`): clears the bits set since the last
    /// time (nothing when none is out).
    pub(crate) fn clear<M: PhysMemory>(&mut self, mem: &mut M) {
        let set = self.set.take();
        if self.pages > 0 {
            self.bits.set_range(mem, set.start, set.end, false);
        }
        self.pages = 0;
    }
}
