//! What the VMM needs from the machine it runs on: page-table memory, data
//! frames and TLB invalidation.
//!
//! # Invariants
//! - The VMM reaches physical memory only through [`PhysMemory`], and an
//!   implementation hands out a view of a frame only if the frame is the
//!   VMM's to use (the trait's safety contract): a VMM that names any other
//!   frame (a corrupted entry, a wrong frame number) is refused before
//!   anything is read or written.
//! - A refusal is a bug of the VMM, never of a request: [`FrameAccess`]
//!   turns it into a panic with the frame in its message, which the kernel
//!   reports to the host (`GuestMessage::Panic`, a `GuestPanic` failure)
//!   instead of writing over its own image, tables or ring.

use core::fmt;

use x86_64::structures::paging::{Page, PageTable, PhysFrame};

/// A frame the backend would not hand out: not RAM the VMM may use (for
/// `write`, or at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRefused {
    /// The frame the VMM named.
    pub frame: PhysFrame,
    /// Whether it was wanted writable (a read-only frame, such as a file
    /// image's, is refused only for writing).
    pub write: bool,
}

impl fmt::Display for FrameRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VMM bug: frame {:#x} refused for {}: not RAM the VMM may use",
            self.frame.start_address().as_u64(),
            if self.write { "writing" } else { "reading" }
        )
    }
}

/// Physical memory as the VMM sees it. In the kernel: the frames through the
/// direct map and `invlpg`; on the host: a simulated memory (`sim`, feature
/// `sim`).
///
/// # Safety
/// The VMM under test may be wrong, so the implementation, not the VMM,
/// guarantees that every view it hands out is sound:
/// - [`PhysMemory::try_table`] and [`PhysMemory::try_frame_bytes`] answer
///   `Ok` only for a frame that the VMM may write: RAM the frame allocator
///   manages (never the kernel's image, its own tables, the ring or any
///   other boot reservation, never beyond RAM), or the PML4 it gave the VMM;
///   [`PhysMemory::try_frame`] also for frames it may only read (the file
///   images). Every other frame is refused (`Err`).
/// - The view covers exactly the frame's 4096 bytes, and nothing else
///   refers to them while it lives (the borrow of `self`).
#[allow(unsafe_code)] // the contract is declared here; no unsafe code runs
pub unsafe trait PhysMemory {
    /// The frame `frame`, viewed as a page table.
    fn try_table(&mut self, frame: PhysFrame) -> Result<&mut PageTable, FrameRefused>;
    /// The frame `frame`, viewed as bytes to write.
    fn try_frame_bytes(&mut self, frame: PhysFrame) -> Result<&mut [u8; 4096], FrameRefused>;
    /// The frame `frame`, viewed as bytes to read.
    fn try_frame(&mut self, frame: PhysFrame) -> Result<&[u8; 4096], FrameRefused>;
    /// Invalidates the TLB entry of `page` (and the paging-structure caches).
    fn flush(&mut self, page: Page);
    /// Invalidates every TLB entry of the managed space and the
    /// paging-structure caches (the managed space has no global page, so a
    /// CR3 reload does it).
    fn flush_all(&mut self);
    /// Makes `root` the PML4 the CPU walks (a CR3 write: no PCID, so every
    /// translation of the managed space and every paging-structure cache
    /// entry is dropped with it). `root` is the PML4 of a live address
    /// space: the one given to the VMM, or a frame of the allocator whose
    /// kernel half the VMM copied from it. An implementation refuses (with
    /// a panic naming the frame, as [`FrameAccess`] does) a root that is
    /// not a frame the VMM may write, or whose entries for the kernel's own
    /// mappings differ from the boot PML4's: it would unmap the running
    /// kernel.
    fn load_root(&mut self, root: PhysFrame);
}

/// The VMM's frame access: [`PhysMemory`]'s views, with a refusal reported
/// as the VMM bug it is.
pub trait FrameAccess: PhysMemory {
    /// The frame `frame`, viewed as a page table.
    ///
    /// # Panics
    /// If the backend refuses the frame: the VMM named a frame that is not
    /// its own (see the module's invariants).
    fn table(&mut self, frame: PhysFrame) -> &mut PageTable {
        self.try_table(frame).unwrap_or_else(|e| refused(e))
    }

    /// The frame `frame`, viewed as bytes to write.
    ///
    /// # Panics
    /// As [`FrameAccess::table`].
    fn frame_bytes(&mut self, frame: PhysFrame) -> &mut [u8; 4096] {
        self.try_frame_bytes(frame).unwrap_or_else(|e| refused(e))
    }

    /// The frame `frame`, viewed as bytes to read.
    ///
    /// # Panics
    /// As [`FrameAccess::table`].
    fn frame(&mut self, frame: PhysFrame) -> &[u8; 4096] {
        self.try_frame(frame).unwrap_or_else(|e| refused(e))
    }
}

impl<M: PhysMemory + ?Sized> FrameAccess for M {}

/// Stops on a refused frame: the VMM's state is wrong, and the only sound
/// move left is to report it (the kernel's panic handler sends the message
/// to the host and exits) before anything is written.
#[cold]
#[inline(never)]
fn refused(e: FrameRefused) -> ! {
    panic!("{e}")
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

/// The TLB invalidations of one walk that may change many present pages:
/// each page's at once up to [`Flushes::LIMIT`], past it one full flush
/// when the walk ends ([`Flushes::finish`]), which then covers them all.
///
/// An `invlpg` costs the same for every page; a full flush costs one CR3
/// reload plus the refill of the kernel's own TLB entries, so it pays only
/// for many pages. Deferring is sound in a walk that, until `finish`,
/// neither touches the pages it changed nor takes a frame (a freed frame
/// or table could otherwise be reused while a stale translation to it
/// lives): a walk that only releases, or one whose changes leave each
/// translation as it was (the clock's clearing of accessed bits).
#[must_use = "a walk's deferred flushes must be finished"]
#[derive(Debug, Default)]
pub(crate) struct Flushes {
    count: u64,
}

impl Flushes {
    /// Pages flushed one by one before the rest wait for one full flush.
    pub const LIMIT: u64 = 128;

    /// Flushes `page` now, or leaves it to [`Flushes::finish`].
    pub fn add<M: PhysMemory + ?Sized>(&mut self, page: Flush, mem: &mut M) {
        self.count += 1;
        if self.count <= Self::LIMIT {
            page.flush(mem);
        }
    }

    /// The full flush ([`flush_all`]), if any page was left to it.
    pub fn finish<M: PhysMemory + ?Sized>(self, mem: &mut M) {
        if self.count > Self::LIMIT {
            flush_all(mem);
        }
    }
}

/// Invalidates every TLB entry of the VMM's pages (one CR3 reload). Every
/// full flush of the VMM goes through here; the feature
/// `inject-skip-flush` skips it, as [`Flush::flush`].
pub(crate) fn flush_all<M: PhysMemory + ?Sized>(mem: &mut M) {
    #[cfg(not(feature = "inject-skip-flush"))]
    mem.flush_all();
    #[cfg(feature = "inject-skip-flush")]
    let _ = mem;
}
