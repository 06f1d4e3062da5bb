//! Address spaces (`protocol::semantics`, **Address spaces**;
//! `protocol::formats`, *Address spaces*): the PML4 of every live space,
//! which one is current, and the one kernel half they all share.
//!
//! [`PageTables`] walks from one root, its walk root, which is the current
//! space's PML4: a walk at a user address finds the current space's page,
//! one at a kernel address the one kernel page (its PML4 entry is the same
//! in every root). So every request, fault and clock sweep acts on the
//! current space without knowing spaces exist.
//!
//! # Invariants
//! - Space 0 is always live; its root is the boot PML4, a boot reservation
//!   (never counted, never freed). The root of every other live space is a
//!   frame of the allocator, counted in `page_table_frames` from
//!   [`PageTables::add_space`] until [`PageTables::drop_space`] frees it
//!   (or `Reset` gives it back with every frame taken since boot).
//! - `current` is live, and CR3 holds its root: [`PageTables::enter`]
//!   loads it through [`PhysMemory::load_root`] whenever it changes.
//! - The walk root is the current space's root, except inside
//!   [`PageTables::drop_space`], which walks the destroyed space from its
//!   own root, and [`PageTables::in_space`] (`Share`'s target space), each
//!   restoring the current one before it returns; `last_pd` is cleared at
//!   every change of the walk root (a hint into another space's tables is
//!   never used).
//! - Kernel half in step: entries 256–511 of every live root are equal
//!   (the CPU's accessed bits aside). A new root copies them from space
//!   0's; after that a kernel PML4 entry changes only when a PDPT is made
//!   or freed below it, and [`PageTables::link`] writes it into every live
//!   root. (The heap's PDPT is made at boot, before any other space.)
//! - User halves are apart: a table or page of a space's user half is
//!   reachable from its root only, so freeing what one root's user half
//!   holds frees exactly that space's pages, slots and tables.

use x86_64::structures::paging::PhysFrame;

use super::PageTables;
use crate::backend::{FrameAccess, PhysMemory};
use crate::errors::{DestroySpaceError, NoSuchSpace};
use crate::frame_alloc::FrameAllocator;
use crate::holders::Holders;
use crate::layout::MAX_SPACES;
use crate::linear::{user, USER_SPAN};
use crate::pte;
use crate::walk::Entry;

/// Space numbers `0..SPACES`.
const SPACES: usize = MAX_SPACES as usize;
/// The first PML4 slot of the kernel half.
const KERNEL_HALF: usize = 256;

/// The live spaces' roots and the current space (see the module's
/// invariants).
#[derive(Debug)]
pub(crate) struct Spaces {
    /// `roots[n]`: the PML4 of space `n` while it is live; `roots[0]` is
    /// always `Some(boot)`.
    roots: [Option<PhysFrame>; SPACES],
    /// The boot PML4, space 0's.
    boot: PhysFrame,
    /// The current space.
    current: u16,
}

impl Spaces {
    /// Space 0 alone, rooted at `boot`, current.
    pub fn new(boot: PhysFrame) -> Spaces {
        let mut roots = [None; SPACES];
        roots[0] = Some(boot);
        Spaces {
            roots,
            boot,
            current: 0,
        }
    }

    /// The root of `space`, if it is live (any number: none past the last).
    pub fn root(&self, space: u16) -> Option<PhysFrame> {
        self.roots.get(usize::from(space)).copied().flatten()
    }

    /// Space 0's root, the boot PML4.
    pub fn boot(&self) -> PhysFrame {
        self.boot
    }

    /// The current space.
    pub fn current(&self) -> u16 {
        self.current
    }

    /// The current space's root.
    fn current_root(&self) -> PhysFrame {
        self.root(self.current).unwrap_or(self.boot)
    }

    /// The lowest number of `1..MAX_SPACES` no live space has.
    pub fn free_number(&self) -> Option<u16> {
        (1..MAX_SPACES).find(|&n| self.root(n).is_none())
    }
}

impl<M: PhysMemory, A: FrameAllocator> PageTables<M, A> {
    /// Writes `raw` into the upper-level entry `at` (one that names a table
    /// or is zero). A kernel PML4 entry is written into every live root, so
    /// the kernel half stays one; `inject-kernel-half-unsynced` (a
    /// deliberate bug, for the tests that must catch it) writes a new
    /// kernel PDPT's entry into the walk root only.
    pub(super) fn link(&mut self, at: Entry, raw: u64) {
        let shared = at.level == 4 && !user(at.slot.base);
        let unsynced = cfg!(feature = "inject-kernel-half-unsynced") && raw != 0;
        if !shared || unsynced {
            self.write_entry(at.table, at.slot.index, raw);
            return;
        }
        let roots = self.spaces.roots;
        for root in roots.into_iter().flatten() {
            self.write_entry(root, at.slot.index, raw);
        }
    }

    /// Makes `frame` (just taken from the allocator for it) the root of
    /// the new space `space` (a number [`Spaces::free_number`] answered):
    /// an empty user half, space 0's kernel half, counted as a table. The
    /// current space stays.
    pub fn add_space(&mut self, space: u16, frame: PhysFrame) {
        let Some(slot) = self.spaces.roots.get_mut(usize::from(space)) else {
            debug_assert!(false, "space {space} past the last");
            return;
        };
        debug_assert!(slot.is_none() && space != 0, "space {space} is live");
        *slot = Some(frame);
        let mut kernel = [0u64; 512 - KERNEL_HALF];
        let boot = self.spaces.boot;
        for (i, e) in kernel.iter_mut().enumerate() {
            *e = self.read_entry(boot, KERNEL_HALF + i);
        }
        let table = self.mem.table(frame);
        table.zero();
        for (i, &raw) in kernel.iter().enumerate() {
            pte::set_raw(&mut table[KERNEL_HALF + i], raw);
        }
        self.counters.table(true);
    }

    /// Runs `f` with the walk root at `space`'s root (a live space, the
    /// current one included), then makes the current space's root the walk
    /// root again: every walk, table made and leaf written inside `f` is
    /// that space's (its upper-level entries through [`PageTables::link`]
    /// as any). No CPU walks another space's root, so the flushes `f` makes
    /// there are only harmless extras of the current space's addresses.
    pub fn in_space<R>(
        &mut self,
        space: u16,
        f: impl FnOnce(&mut Self) -> R,
    ) -> Result<R, NoSuchSpace> {
        let root = self.spaces.root(space).ok_or(NoSuchSpace)?;
        self.root = root;
        self.last_pd = None;
        let r = f(self);
        self.root = self.spaces.current_root();
        self.last_pd = None;
        Ok(r)
    }

    /// Makes `space` current: the walk root becomes its root, loaded into
    /// CR3 when `load` (always, but for the `inject-switch-no-cr3` bug).
    /// Switching to the current space changes nothing.
    pub fn enter(&mut self, space: u16, load: bool) -> Result<(), NoSuchSpace> {
        let root = self.spaces.root(space).ok_or(NoSuchSpace)?;
        if space == self.spaces.current {
            return Ok(());
        }
        self.spaces.current = space;
        self.root = root;
        self.last_pd = None;
        if load {
            self.mem.load_root(root);
        }
        Ok(())
    }

    /// Destroys `space`: every page of its user half becomes unusable as
    /// `Unmap` makes it (frames, swap slots and frame-info records let go
    /// through `holders`), its tables are freed, then its PML4. The walk
    /// goes from the space's own root, which no CPU walks (it is not in
    /// CR3), so its flushes are only harmless extras; the current root is
    /// the walk root again before this returns.
    pub fn drop_space(
        &mut self,
        space: u16,
        holders: Holders<'_>,
    ) -> Result<(), DestroySpaceError> {
        let root = self
            .spaces
            .root(space)
            .ok_or(DestroySpaceError::NoSuchSpace)?;
        if space == 0 || space == self.spaces.current {
            return Err(DestroySpaceError::SpaceInUse);
        }
        self.root = root;
        self.last_pd = None;
        self.clear(USER_SPAN, holders);
        self.root = self.spaces.current_root();
        self.last_pd = None;
        debug_assert!(
            (0..KERNEL_HALF).all(|i| self.read_entry(root, i) == 0),
            "space {space}'s user half left tables"
        );
        if let Some(slot) = self.spaces.roots.get_mut(usize::from(space)) {
            *slot = None;
        }
        // `inject-destroy-leak`: a deliberate bug, for the tests that must
        // catch it: the PML4 stays in use in the bitmap, counted nowhere.
        if !cfg!(feature = "inject-destroy-leak") {
            let freed = self.frames.free(root);
            debug_assert!(freed.is_ok(), "space {space}'s PML4 was not in use");
        }
        self.counters.table(false);
        Ok(())
    }

    /// `Reset`'s end of every space but 0, the current one (the caller
    /// entered it): their roots are forgotten (their present pages' dirty
    /// bits read first, `drop_managed`), their frames given back with every
    /// frame taken since boot.
    pub(super) fn forget_spaces(&mut self) {
        debug_assert_eq!(self.spaces.current, 0, "reset outside space 0");
        self.spaces = Spaces::new(self.spaces.boot);
        self.root = self.spaces.boot;
        self.last_pd = None;
    }
}
