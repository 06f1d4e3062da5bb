//! The page-fault handler: what the VMM does when the CPU faults on a
//! managed page (the kernel calls [`Vmm::handle_fault`] from its handler;
//! the simulation from its touches).
//!
//! # Invariants
//! - A fault changes at most the faulting page's entry (and, through the
//!   pressure path, the entries it reclaims); a fault it cannot resolve
//!   changes nothing and answers the reason the touch reports.

use protocol::FaultReason;
use x86_64::structures::paging::PhysFrame;

use super::files::NoFilePage;
use super::Vmm;
use crate::backend::{FrameAccess, PhysMemory};
use crate::frame_alloc::FrameAllocator;
use crate::layout::HEAP_START;
use crate::linear::user;
use crate::pte::Pte;
use crate::swap::LoadError;
use crate::validate::{is_canonical, LINEAR_MASK};

/// Why a not-present page's contents could not be brought in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unloadable {
    /// The swap store refused the slot.
    Swap(LoadError),
    /// An `OnSwap` entry, and no swap store.
    NoStore,
    /// The entry names a file page the kernel was not given.
    File,
}

impl From<Unloadable> for FaultReason {
    /// Each is an entry the page cannot come back from: the touch reports
    /// the page unusable.
    fn from(_: Unloadable) -> FaultReason {
        FaultReason::Unusable
    }
}

/// The most pages one fault resolves after its own in
/// [`Vmm::fault_around`] (a page table's worth: the fault handler's time
/// stays bounded). The kernel and the simulation both use it.
pub const FAULT_AROUND_PAGES: u64 = 512;

/// The linear address of `addr` when a fault there may be the VMM's to
/// resolve: canonical, and outside the PML4 slots of the direct map and the
/// kernel image (whose faults are the kernel's bugs, never the VMM's).
fn faultable(addr: u64) -> Option<u64> {
    let linear = addr & LINEAR_MASK;
    let slot = linear >> 39;
    let kernel_own = slot == u64::from(crate::layout::DIRECT_MAP_PML4_SLOT)
        || slot == u64::from(crate::layout::KERNEL_PML4_SLOT);
    (is_canonical(addr) && !kernel_own).then_some(linear)
}

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// Fault-around, after the fault at `addr` resolved: the pages from the
    /// next one up to `end` (exclusive: where the touch that faulted ends),
    /// at most `max` of them, each resolved as its own fault would resolve
    /// it ([`Vmm::handle_fault`] with the same `write`), in address order,
    /// so that the touch does not fault on each. It stops at the first page
    /// whose fault would not simply resolve: one present (the touch may not
    /// fault on it at all), one whose fault would fail, and any page once
    /// no frame is free beyond the heap's reserve (its fault might
    /// reclaim). So it never reclaims, and everything it does (frames taken
    /// in the same order, the same states, data and counts) the touch's own
    /// faults would have done, before the touch reaches the next page: the
    /// touch's answer and the state after it are the same either way.
    /// Answers how many pages it resolved. (A page whose load fails takes
    /// and frees a frame here and again in its own fault: the allocator's
    /// search hint may then differ, which changes which free frames later
    /// pages get, never how many or anything the protocol reports.)
    ///
    /// The next page's entry is the next one of the same page table, found
    /// without a walk; a walk only where a page table ends. Nothing here
    /// frees a table (no reclaim, and a fault only fills entries), so the
    /// table stays the one under those pages.
    pub fn fault_around(&mut self, addr: u64, end: u64, write: bool, max: u64) -> u64 {
        let mut page = (addr & !0xfff).wrapping_add(4096);
        let mut done = 0;
        let mut at: Option<(PhysFrame, usize)> = None;
        while done < max && page < end && page > addr {
            if self.pt.frames().free_frames() <= self.heap_reserve() {
                break;
            }
            let Some(linear) = faultable(page) else {
                break;
            };
            at = match at {
                Some((table, i)) if i < 511 => Some((table, i + 1)),
                _ => self.pt.leaf_slot(linear),
            };
            let Some((table, i)) = at else {
                break;
            };
            let resolvable = matches!(
                Pte::decode(self.pt.read_entry(table, i), user(linear)),
                Pte::AllocOnWrite
                    | Pte::PinnedAllocOnWrite
                    | Pte::OnSwap { .. }
                    | Pte::NotPresentMmap { .. }
            );
            if !resolvable || self.resolve(page, linear, table, i, write).is_err() {
                break;
            }
            done += 1;
            page = page.wrapping_add(4096);
        }
        done
    }

    /// The page-fault handler's decision for a fault at `addr` (a `write`
    /// or a read): allocate-on-write pages get a zeroed frame, swapped pages
    /// come back, file pages are loaded (private on a write), a clean file
    /// page written becomes private; frames come through the pressure path.
    /// `Err` is the fault a touch reports back.
    pub fn handle_fault(&mut self, addr: u64, write: bool) -> Result<(), FaultReason> {
        let Some(linear) = faultable(addr) else {
            return Err(FaultReason::Unusable);
        };
        let Some((table, i)) = self.pt.leaf_slot(linear) else {
            return Err(FaultReason::Unusable);
        };
        self.resolve(addr, linear, table, i, write)
    }

    /// [`Vmm::handle_fault`] once the page's level-1 entry is known: entry
    /// `i` of `table`, for `addr` (canonical) and its `linear` address.
    fn resolve(
        &mut self,
        addr: u64,
        linear: u64,
        table: PhysFrame,
        i: usize,
        write: bool,
    ) -> Result<(), FaultReason> {
        let slot = linear >> 39;
        let page = linear & !0xfff;
        let old = Pte::decode(self.pt.read_entry(table, i), user(linear));
        let new = match old {
            Pte::AllocOnWrite
            | Pte::PinnedAllocOnWrite
            | Pte::OnSwap { .. }
            | Pte::NotPresentMmap { .. } => {
                // A heap page faults only under a host block's touch (the
                // kernel's blocks are committed): a request's frame, which
                // leaves the kernel's reserve alone.
                let heap = (crate::layout::HEAP_START..crate::layout::HEAP_END).contains(&addr);
                let zeroed = !heap && matches!(old, Pte::AllocOnWrite | Pte::PinnedAllocOnWrite);
                let frame = if heap {
                    self.alloc_heap_frame(false)
                } else if zeroed {
                    self.alloc_zeroed_frame()
                } else {
                    self.alloc_frame()
                }
                .ok_or(FaultReason::OutOfMemory)?;
                let loaded = match old {
                    Pte::OnSwap { slot } => match self.swap.as_mut() {
                        Some(s) => s.load(self.pt.mem(), slot, frame).map_err(Unloadable::Swap),
                        None => Err(Unloadable::NoStore),
                    },
                    Pte::NotPresentMmap { file, page } => self
                        .load_file_page(file, page, frame)
                        .map_err(|_: NoFilePage| Unloadable::File),
                    _ if zeroed => Ok(()),
                    _ => {
                        self.pt.mem().frame_bytes(frame).fill(0);
                        Ok(())
                    }
                };
                if let Err(e) = loaded {
                    let _ = self.pt.frames_mut().free(frame);
                    return Err(e.into());
                }
                // The managed space's faults only: the kernel's own heap
                // faults are not the host's to predict.
                if slot != (HEAP_START & LINEAR_MASK) >> 39 {
                    self.events.fault_resolved();
                }
                match old {
                    Pte::NotPresentMmap { file, page } => {
                        self.set_frame_info(frame, Some((file, page)));
                        Pte::PresentMmap {
                            frame,
                            writable: write,
                            private: write,
                        }
                    }
                    Pte::PinnedAllocOnWrite => Pte::PinnedRam {
                        frame,
                        writable: true,
                    },
                    #[cfg(not(feature = "inject-exec-data"))]
                    _ => Pte::data(frame),
                    #[cfg(feature = "inject-exec-data")]
                    _ => Pte::PresentRam {
                        frame,
                        writable: true,
                        executable: true,
                    },
                }
            }
            Pte::PresentMmap {
                frame,
                private: false,
                ..
            } if write => Pte::PresentMmap {
                frame,
                writable: true,
                private: true,
            },
            Pte::PresentRam { writable, .. }
            | Pte::PresentMmap { writable, .. }
            | Pte::PinnedRam { writable, .. }
            | Pte::Shared { writable, .. } => {
                if write && !writable {
                    return Err(FaultReason::ReadOnly);
                }
                // A stale TLB entry: the entry allows the access now.
                crate::backend::Flush::new(crate::linear::page_of(linear)).flush(self.pt.mem());
                return Ok(());
            }
            _ => return Err(FaultReason::Unusable),
        };
        // The entry may have changed while reclaiming (never for the page
        // being faulted: it was not present), so write over what it holds.
        let cur = Pte::decode(self.pt.read_entry(table, i), user(linear));
        self.pt.set_leaf_flushed(table, i, page, cur, new);
        Ok(())
    }
}
