//! The tables a walk read, kept between checks: each table's entries
//! (shared by the trees of two checks when the table did not change), the
//! entries leading to it, and what it holds.

use std::sync::Arc;

use super::claims::{Claim, Owner};
use super::violation::{Path, Step};

/// A page table of the managed space the walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRef {
    /// Physical address of the table.
    pub frame: u64,
    /// 4 = the PML4 of a space other than 0, 3 = PDPT, 2 = PD, 1 = PT.
    pub level: u8,
    /// The entries leading to it; `path.virt` is the first address it
    /// covers, a key (`crate::model::keys`) for a table of a space other
    /// than 0.
    pub path: Path,
}

/// The entries of one table, shared by the trees of two checks when the
/// table did not change between them.
pub(crate) type Entries = Arc<[u64; 512]>;

/// One table as read.
#[derive(Debug)]
pub(crate) struct Table {
    pub frame: u64,
    pub level: u8,
    /// The first address it covers.
    pub virt: u64,
    /// The entries leading to it (PML4 entry first): the first `depth`
    /// (kept in place, not allocated per table).
    pub chain: [Step; 3],
    pub depth: u8,
    pub entries: Entries,
    /// Only zero entries (reported; its pages count as uncovered).
    pub empty: bool,
    /// How many entries are present.
    pub present: u64,
    /// In a page table, how many entries are pages the pressure path may
    /// send out ([`super::entry::evictable`]), counted once when the table
    /// is read: a no-evictable mark above it is checked against the count,
    /// whether the table was read again or not.
    pub evictable_pages: u64,
}

impl Table {
    /// Its frame's claim: the table for its address at its level.
    pub fn claim(&self) -> Claim {
        Claim {
            frame: self.frame,
            owner: Owner::Table {
                level: self.level,
                virt: self.virt,
            },
        }
    }

    /// Its place in walk order: by address (a key: see
    /// `crate::model::keys`), a table before the tables below it.
    pub fn key(&self) -> (u64, u8) {
        (self.virt, 4 - self.level)
    }

    /// Its public description.
    pub fn table_ref(&self) -> TableRef {
        TableRef {
            frame: self.frame,
            level: self.level,
            path: self.path(),
        }
    }

    pub fn path(&self) -> Path {
        Path {
            virt: self.virt,
            steps: self.steps().to_vec(),
        }
    }

    /// The entries leading to it (PML4 entry first).
    pub fn steps(&self) -> &[Step] {
        &self.chain[..usize::from(self.depth)]
    }

    /// The first page number a level-1 table covers.
    pub fn first_page(&self) -> u64 {
        self.virt >> 12
    }
}

/// Every table the walk read, in walk order (parents before children,
/// by address).
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub tables: Vec<Table>,
}

impl Tree {
    /// The table of `level` whose first address is `virt`.
    pub fn find(&self, virt: u64, level: u8) -> Option<&Table> {
        let key = (virt, 4 - level);
        let i = self.tables.partition_point(|t| t.key() < key);
        self.tables.get(i).filter(|t| t.key() == key)
    }

    /// The non-empty level-1 tables.
    pub fn leaf_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|t| t.level == 1 && !t.empty)
    }

    /// The public list of tables.
    pub fn table_refs(&self) -> Vec<TableRef> {
        self.tables.iter().map(Table::table_ref).collect()
    }

    /// Gives the tables' entry buffers back to `pool` (those no other
    /// tree shares).
    pub fn recycle(self, pool: &mut Vec<Entries>) {
        let unshared = self.tables.into_iter().map(|t| t.entries);
        pool.extend(unshared.filter(|e| Arc::strong_count(e) == 1));
    }
}
