//! The walk of one address: the entries on the way from a root table to
//! an address's level-1 entry, read one level at a time (the layout of
//! `protocol::formats`: four levels of 512 eight-byte entries). Each
//! reader of one address's path (the decoded walk, a 2 MiB region's
//! leaves, a violation's path, the runner's smoke test) takes it from
//! here and decides itself what a huge page or an odd entry means.

use super::entry::{ADDR, P};
use super::memory::{GuestMemory, MemoryError};

/// One entry on the way to an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathEntry {
    /// 0 for the PML4, 1 the PDPT, 2 the PD, 3 the page table.
    pub level: usize,
    /// The physical address of the table the entry is in.
    pub table: u64,
    /// The entry's index in its table.
    pub index: u64,
    /// The entry's value, or why it could not be read.
    pub raw: Result<u64, MemoryError>,
}

impl PathEntry {
    /// Where a present entry leads (the next table, or a huge page's or
    /// a level-1 entry's frame); `None` when it is not present or could
    /// not be read.
    pub fn leads_to(&self) -> Option<u64> {
        match self.raw {
            Ok(raw) if raw & P != 0 => Some(raw & ADDR),
            _ => None,
        }
    }
}

/// The entries on the way from the table at `root` to `virt`'s level-1
/// entry, PML4 first, read as they are asked for. The walk ends after an
/// entry that cannot be read or is not present, and after the level-1
/// entry; a present entry leads to the next level whatever its other bits
/// (a huge page's frame is read as a table: stop at `PS` where it
/// matters).
pub fn address_path<M: GuestMemory + ?Sized>(mem: &M, root: u64, virt: u64) -> AddressPath<'_, M> {
    AddressPath {
        mem,
        virt,
        next: Some((0, root)),
    }
}

/// The iterator of [`address_path`].
pub struct AddressPath<'m, M: ?Sized> {
    mem: &'m M,
    virt: u64,
    /// The level and table of the next entry to read.
    next: Option<(usize, u64)>,
}

impl<M: ?Sized> std::fmt::Debug for AddressPath<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressPath")
            .field("virt", &self.virt)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<M: GuestMemory + ?Sized> Iterator for AddressPath<'_, M> {
    type Item = PathEntry;

    fn next(&mut self) -> Option<PathEntry> {
        let (level, table) = self.next.take()?;
        let index = (self.virt >> (39 - 9 * level)) & 511;
        let mut b = [0u8; 8];
        let raw = self
            .mem
            .read(table + index * 8, &mut b)
            .map(|()| u64::from_le_bytes(b));
        let entry = PathEntry {
            level,
            table,
            index,
            raw,
        };
        if level < 3 {
            self.next = entry.leads_to().map(|t| (level + 1, t));
        }
        Some(entry)
    }
}
