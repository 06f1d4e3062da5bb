//! What the VMM needs from the machine it runs on: page-table memory, data
//! frames and TLB invalidation.

use x86_64::structures::paging::{Page, PageTable, PhysFrame};

/// Physical memory as the VMM sees it. In the kernel: the frames through the
/// direct map and `invlpg`; on the host: a simulated memory (`sim`, feature `sim`).
pub trait PhysMemory {
    /// The frame `frame`, viewed as a page table.
    fn table(&mut self, frame: PhysFrame) -> &mut PageTable;
    /// The frame `frame`, viewed as bytes.
    fn frame_bytes(&mut self, frame: PhysFrame) -> &mut [u8; 4096];
    /// Invalidates the TLB entry of `page` (and the paging-structure caches).
    fn flush(&mut self, page: Page);
}

/// A changed present entry whose TLB entry must be invalidated. It cannot be
/// dropped silently (`#[must_use]`): call [`Flush::flush`].
#[must_use = "a changed present entry must be flushed from the TLB"]
#[derive(Debug)]
pub struct Flush(Page);

impl Flush {
    /// A flush of `page`.
    pub(crate) fn new(page: Page) -> Self {
        Flush(page)
    }

    /// The page to flush.
    pub fn page(&self) -> Page {
        self.0
    }

    /// Invalidates the page's TLB entry.
    ///
    /// Every TLB invalidation of the VMM goes through here. The feature
    /// `inject-skip-flush` skips it, to prove that the host catches a stale
    /// TLB entry (a bug injected on purpose, for the runner's tests only).
    pub fn flush<M: PhysMemory + ?Sized>(self, mem: &mut M) {
        #[cfg(not(feature = "inject-skip-flush"))]
        mem.flush(self.0);
        #[cfg(feature = "inject-skip-flush")]
        let _ = mem;
    }
}
