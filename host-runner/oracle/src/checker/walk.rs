//! The page walk: every table of the managed PML4 slots, read from the root
//! in `Hello`, with the structural checks of invariant 4 above level 1.
//! The tables are kept ([`Tree`]): the leaf checks read their entries, and
//! the stateful checker compares them with the last check's.

use protocol::Hello;

use super::entry::{decode_upper, present_count, PresentKind, P};
use super::memory::GuestMemory;
use super::violation::{Path, Step, Violation};

/// A page table of the managed space the walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRef {
    /// Physical address of the table.
    pub frame: u64,
    /// 3 = PDPT, 2 = PD, 1 = PT.
    pub level: u8,
    /// The entries leading to it; `path.virt` is the first address it covers.
    pub path: Path,
}

/// A present page the walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    pub virt: u64,
    pub frame: u64,
    pub writable: bool,
    pub kind: PresentKind,
    /// PML4, PDPT, PD and PT entries.
    pub steps: [Step; 4],
}

impl Translation {
    pub fn path(&self) -> Path {
        Path {
            virt: self.virt,
            steps: self.steps.to_vec(),
        }
    }
}

/// What the walk found: every translation and every table, in address
/// order (empty after an incremental check, which re-verifies only what
/// changed: see [`super::CheckReport::scope`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    pub translations: Vec<Translation>,
    pub tables: Vec<TableRef>,
}

/// The entries of one table.
pub(crate) type Entries = Box<[u64; 512]>;

/// One table as read.
#[derive(Debug)]
pub(crate) struct Table {
    pub frame: u64,
    pub level: u8,
    /// The first address it covers.
    pub virt: u64,
    /// The entries leading to it (PML4 entry first).
    pub steps: Vec<Step>,
    pub entries: Entries,
    /// Only zero entries (reported; its pages count as uncovered).
    pub empty: bool,
}

impl Table {
    /// Its place in walk order: by address, a table before the tables
    /// below it.
    pub fn key(&self) -> (u64, u8) {
        (self.virt, 3 - self.level)
    }

    pub fn path(&self) -> Path {
        Path {
            virt: self.virt,
            steps: self.steps.clone(),
        }
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
        let key = (virt, 3 - level);
        let i = self.tables.partition_point(|t| t.key() < key);
        self.tables.get(i).filter(|t| t.key() == key)
    }

    /// The non-empty level-1 tables.
    pub fn leaf_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|t| t.level == 1 && !t.empty)
    }

    /// The public list of tables.
    pub fn table_refs(&self) -> Vec<TableRef> {
        let refs = self.tables.iter().map(|t| TableRef {
            frame: t.frame,
            level: t.level,
            path: t.path(),
        });
        refs.collect()
    }

    /// Gives the tables' entry buffers back to `pool`.
    pub fn recycle(self, pool: &mut Vec<Entries>) {
        pool.extend(self.tables.into_iter().map(|t| t.entries));
    }
}

/// A table of the managed space as read, with its 512 raw entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableEntries {
    pub table: TableRef,
    pub entries: Box<[u64; 512]>,
}

/// Every table of the managed PML4 slots under `hello.page_table_root`, in
/// walk order (parents before children, by address), and what the walk
/// found wrong: unreadable tables, bad upper-level entries (invariant 4's
/// format), empty tables. For judging a VMM's tables without a model (the
/// guest core's tests over simulated memory).
pub fn read_tables(mem: &dyn GuestMemory, hello: &Hello) -> (Vec<TableEntries>, Vec<Violation>) {
    let mut out = Vec::new();
    let tree = walk(mem, hello, &mut Vec::new(), &mut out);
    let tables = tree.tables.into_iter().map(|t| TableEntries {
        table: TableRef {
            frame: t.frame,
            level: t.level,
            path: Path {
                virt: t.virt,
                steps: t.steps,
            },
        },
        entries: t.entries,
    });
    (tables.collect(), out)
}

/// The virtual address of PML4 slot `slot` plus `offset` (sign-extended).
pub fn slot_addr(slot: u64, offset: u64) -> u64 {
    let a = (slot << 39) | offset;
    if slot >= 256 {
        a | 0xffff_0000_0000_0000
    } else {
        a
    }
}

/// The PML4 slots the VMM manages: the lower half and the kernel space's
/// slots less the reserved ones.
pub fn managed_slots(hello: &Hello) -> Vec<u64> {
    let k = hello.kernel_space;
    let (first, last) = if k.end > k.start || k.end == 0 {
        let end = if k.end == 0 { u64::MAX } else { k.end - 1 };
        ((k.start >> 39) & 511, (end >> 39) & 511)
    } else {
        (1, 0)
    };
    (0..256)
        .chain(first.max(256)..=last)
        .filter(|s| !hello.reserved_pml4_slots.contains(&(*s as u16)))
        .collect()
}

/// Reads the table at `phys` into `buf`.
fn read_into(
    mem: &dyn GuestMemory,
    phys: u64,
    buf: &mut [u64; 512],
) -> Result<(), super::MemoryError> {
    mem.read_words(phys, buf)
}

struct Walker<'a> {
    mem: &'a dyn GuestMemory,
    tree: Tree,
    pool: &'a mut Vec<Entries>,
    out: &'a mut Vec<Violation>,
}

/// Walks the managed slots of the tables at `hello.page_table_root`,
/// reporting unreadable tables, bad upper-level entries and empty tables;
/// entry buffers come from `pool` when it has some.
pub(crate) fn walk(
    mem: &dyn GuestMemory,
    hello: &Hello,
    pool: &mut Vec<Entries>,
    out: &mut Vec<Violation>,
) -> Tree {
    let root = hello.page_table_root;
    let mut pml4 = [0u64; 512];
    if let Err(error) = read_into(mem, root, &mut pml4) {
        let what = format!("the PML4 at {root:#x}");
        out.push(Violation::Unreadable { what, error });
        return Tree::default();
    }
    let mut w = Walker {
        mem,
        tree: Tree::default(),
        pool,
        out,
    };
    let mut steps = Vec::with_capacity(4);
    for slot in managed_slots(hello) {
        let raw = pml4[slot as usize];
        w.entry(
            3,
            root,
            slot,
            raw,
            slot_addr(slot, 0),
            &mut steps,
            slot < 256,
        );
    }
    w.tree
}

impl Walker<'_> {
    /// A non-leaf entry at `index` of `table` pointing to a table of `level`.
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        level: u8,
        table: u64,
        index: u64,
        raw: u64,
        virt: u64,
        steps: &mut Vec<Step>,
        lower: bool,
    ) {
        if raw == 0 {
            return;
        }
        steps.push(Step {
            table,
            index: index as u16,
            raw,
        });
        match decode_upper(raw, lower, level == 1) {
            Ok(next) => self.table(level, next, virt, steps, lower),
            Err(why) => self.out.push(Violation::BadEntry {
                path: Path {
                    virt,
                    steps: steps.clone(),
                },
                why,
            }),
        }
        steps.pop();
    }

    fn table(&mut self, level: u8, phys: u64, virt: u64, steps: &mut Vec<Step>, lower: bool) {
        let mut entries = self.pool.pop().unwrap_or_else(|| Box::new([0; 512]));
        if let Err(error) = read_into(self.mem, phys, &mut entries) {
            let path = Path {
                virt,
                steps: steps.clone(),
            };
            let what = format!("the level-{level} table at {phys:#x} ({path})");
            self.out.push(Violation::Unreadable { what, error });
            self.pool.push(entries);
            return;
        }
        let empty = entries.iter().all(|&e| e == 0);
        if empty {
            let path = Path {
                virt,
                steps: steps.clone(),
            };
            self.out.push(Violation::EmptyTable { path, table: phys });
        }
        if level == 1 {
            let present = entries.iter().filter(|&&e| e & P != 0).count() as u64;
            let recorded = steps.last().map_or(0, |s| present_count(s.raw));
            if present != recorded {
                let path = Path {
                    virt,
                    steps: steps.clone(),
                };
                self.out.push(Violation::PresentCount {
                    path,
                    table: phys,
                    recorded,
                    present,
                });
            }
        }
        let descend = level > 1 && !empty;
        let at = self.tree.tables.len();
        self.tree.tables.push(Table {
            frame: phys,
            level,
            virt,
            steps: steps.clone(),
            entries,
            empty,
        });
        if descend {
            let shift = 12 + 9 * u32::from(level - 1);
            for i in 0..512 {
                let raw = self.tree.tables[at].entries[i];
                let v = virt | ((i as u64) << shift);
                self.entry(level - 1, phys, i as u64, raw, v, steps, lower);
            }
        }
    }
}
