//! The page walk: every table of the managed PML4 slots, read from the root
//! in `Hello` and from every other live space's root (its user half: see
//! [`super::spaces`]), with the structural checks of invariant 4 above
//! level 1.
//! The tables are kept ([`Tree`]): the leaf checks read their entries, and
//! the stateful checker compares them with the last check's. Given that
//! last check's tree, the walk compares each table in place with its copy
//! there and, when the bytes are the same, shares the copy and its
//! analysis instead of reading and analysing the table again.

use std::collections::BTreeMap;
use std::sync::Arc;

use protocol::Hello;

use super::entry::{
    decode_upper, evictable, marks_no_evictable, present_count, PresentKind, Upper, P,
};
use super::memory::GuestMemory;
pub(crate) use super::tree::{Entries, Table, TableRef, Tree};
use super::violation::{MarkedEntry, Path, Step, Violation};

/// A present page the walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    pub virt: u64,
    pub frame: u64,
    pub writable: bool,
    /// NX clear.
    pub executable: bool,
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

/// A level-1 allocate-on-write entry (`protocol::formats`).
const AOW_LEAF: u64 = 1 << 1;

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
    read_space_tables(mem, hello, &BTreeMap::new())
}

/// [`read_tables`] of every space: space 0's from `hello.page_table_root`,
/// then, for each of `spaces` (number → root, spaces other than 0), its
/// PML4 (a level-4 table) and the tables of its user half, whose
/// addresses are keys tagged with the space (`crate::model::keys`); a
/// PML4 whose kernel half is not space 0's is reported.
pub fn read_space_tables(
    mem: &dyn GuestMemory,
    hello: &Hello,
    spaces: &BTreeMap<u16, u64>,
) -> (Vec<TableEntries>, Vec<Violation>) {
    let mut out = Vec::new();
    let tree = walk(mem, hello, spaces, None, &mut Vec::new(), &mut out);
    let tables = tree.tables.into_iter().map(|t| TableEntries {
        table: t.table_ref(),
        entries: Box::new(*t.entries),
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

/// The first three of `steps` (the entries leading to a table, kept in
/// place in [`Table`]) and how many there are.
pub(super) fn chain_of(steps: &[Step]) -> ([Step; 3], u8) {
    let mut chain = [Step {
        table: 0,
        index: 0,
        raw: 0,
    }; 3];
    let depth = steps.len().min(3);
    chain[..depth].copy_from_slice(&steps[..depth]);
    (chain, depth as u8)
}

/// Reads the table at `phys` into `buf`.
fn read_into(
    mem: &dyn GuestMemory,
    phys: u64,
    buf: &mut [u64; 512],
) -> Result<(), super::MemoryError> {
    mem.read_words(phys, buf)
}

pub(super) struct Walker<'a> {
    mem: &'a dyn GuestMemory,
    /// The last check's tables.
    prev: Option<&'a Tree>,
    pub(super) tree: Tree,
    pool: &'a mut Vec<Entries>,
    pub(super) out: &'a mut Vec<Violation>,
    /// 512 allocate-on-write entries: the table of every whole
    /// allocate-on-write entry.
    aow: Entries,
}

/// Walks the managed slots of the tables at `hello.page_table_root` and
/// the user half of every space of `spaces` (number → root), reporting
/// unreadable tables, bad upper-level entries, empty tables and kernel
/// halves that are not space 0's; a table whose bytes are those of its
/// copy in `prev` (same place, same frame) shares that copy, and other
/// entry buffers come from `pool` when it has some. The tables come in
/// key order: space 0's user half, each other space's PML4 and user half
/// in turn, the kernel half.
pub(crate) fn walk(
    mem: &dyn GuestMemory,
    hello: &Hello,
    spaces: &BTreeMap<u16, u64>,
    prev: Option<&Tree>,
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
    let tables = Vec::with_capacity(prev.map_or(0, |p| p.tables.len()));
    let mut w = Walker {
        mem,
        prev,
        tree: Tree { tables },
        pool,
        out,
        aow: Arc::new([AOW_LEAF; 512]),
    };
    let mut steps = Vec::with_capacity(4);
    let (user, kernel): (Vec<u64>, Vec<u64>) =
        managed_slots(hello).into_iter().partition(|&s| s < 256);
    w.slots(root, &pml4, &user, 0, &mut steps);
    for (&space, &space_root) in spaces {
        w.space(space, space_root, &pml4, &user, &mut steps);
    }
    w.slots(root, &pml4, &kernel, 0, &mut steps);
    w.tree
}

impl<'a> Walker<'a> {
    /// The entries `slots` of the PML4 `pml4` at `root`, for addresses
    /// tagged with `tag` (the key bits of a space other than 0).
    pub(super) fn slots(
        &mut self,
        root: u64,
        pml4: &[u64; 512],
        slots: &[u64],
        tag: u64,
        steps: &mut Vec<Step>,
    ) {
        for &slot in slots {
            let raw = pml4[slot as usize];
            let virt = tag | slot_addr(slot, 0);
            self.entry(3, root, slot, raw, virt, steps, slot < 256);
        }
    }

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
        match decode_upper(raw, lower, level) {
            Ok(Upper::Table(next)) => self.table(level, next, virt, steps, lower),
            Ok(Upper::WholeAow(frame)) => self.whole_aow(frame, virt, steps),
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

    /// The copy in `prev` of the level-`level` table for `virt` at `phys`,
    /// when memory holds its bytes still.
    pub(super) fn unchanged(&self, level: u8, phys: u64, virt: u64) -> Option<&'a Table> {
        let old = self.prev?.find(virt, level).filter(|o| o.frame == phys)?;
        // In place: the guest's bytes are little-endian words.
        let same = cfg!(target_endian = "little")
            && self
                .mem
                .holds(phys, zerocopy::IntoBytes::as_bytes(&*old.entries))
                == Ok(true);
        same.then_some(old)
    }

    /// A fresh copy of the table at `phys` and what it holds (empty, how
    /// many entries present, and in a page table how many are pages the
    /// pressure path may send out); `None` when it is unreadable
    /// (reported).
    pub(super) fn read(
        &mut self,
        level: u8,
        phys: u64,
        path: impl Fn() -> Path,
    ) -> Option<(Entries, bool, u64, u64)> {
        let mut entries = self.pool.pop().unwrap_or_else(|| Arc::new([0; 512]));
        let words = Arc::make_mut(&mut entries);
        if let Err(error) = read_into(self.mem, phys, words) {
            let what = format!("the level-{level} table at {phys:#x} ({})", path());
            self.out.push(Violation::Unreadable { what, error });
            self.pool.push(entries);
            return None;
        }
        let empty = words.iter().all(|&e| e == 0);
        let present = words.iter().map(|&e| e & P).sum();
        let sendable = match level {
            1 => words.iter().filter(|&&e| evictable(e)).count() as u64,
            _ => 0,
        };
        Some((entries, empty, present, sendable))
    }

    /// The page table a whole allocate-on-write PD entry stands for: its
    /// frame's, with 512 allocate-on-write entries (not read: the frame's
    /// bytes mean nothing), kept like any page table the walk read.
    fn whole_aow(&mut self, frame: u64, virt: u64, steps: &[Step]) {
        let (chain, depth) = chain_of(steps);
        let entries = Arc::clone(&self.aow);
        self.tree.tables.push(Table {
            frame,
            level: 1,
            virt,
            chain,
            depth,
            entries,
            empty: false,
            present: 0,
            evictable_pages: 0,
        });
    }

    /// The page table at `phys` (for `virt`, under `steps`: its PML4,
    /// PDPT and PD entries), which holds `sendable` pages the pressure
    /// path may send out: when its PD entry or the PDPT entry above
    /// carries the no-evictable mark, reports its first such entry, once
    /// for each marked entry (the PDPT entry's first). Neither mark is
    /// assumed of the other: a PD entry under a marked PDPT entry may be
    /// unmarked.
    fn no_evictable(
        &mut self,
        phys: u64,
        entries: &[u64; 512],
        sendable: u64,
        virt: u64,
        steps: &[Step],
    ) {
        let [.., pdpte, pde] = steps else {
            return;
        };
        // (which entry, the entry, the table it names)
        let marks = [
            (MarkedEntry::Pdpt, pdpte, pde.table),
            (MarkedEntry::Pd, pde, phys),
        ];
        if !marks.iter().any(|(_, e, _)| marks_no_evictable(e.raw)) {
            return;
        }
        let Some(index) = entries.iter().position(|&e| evictable(e)) else {
            return;
        };
        let raw = entries[index];
        let mut path = steps.to_vec();
        path.push(Step {
            table: phys,
            index: index as u16,
            raw,
        });
        let path = Path {
            virt: virt | (index as u64) << 12,
            steps: path,
        };
        for (marked, _, names) in marks.iter().filter(|(_, e, _)| marks_no_evictable(e.raw)) {
            self.out.push(Violation::NoEvictableMark {
                path: path.clone(),
                marked: *marked,
                names: *names,
                table: phys,
                index: index as u16,
                raw,
                evictable: sendable,
            });
        }
    }

    fn table(&mut self, level: u8, phys: u64, virt: u64, steps: &mut Vec<Step>, lower: bool) {
        let path = || Path {
            virt,
            steps: steps.clone(),
        };
        let old = self.unchanged(level, phys, virt);
        let known = old.map(|o| {
            (
                Arc::clone(&o.entries),
                o.empty,
                o.present,
                o.evictable_pages,
            )
        });
        let Some((entries, empty, present, sendable)) =
            known.or_else(|| self.read(level, phys, path))
        else {
            return;
        };
        if empty {
            self.out.push(Violation::EmptyTable {
                path: path(),
                table: phys,
            });
        }
        if level == 1 {
            let pde = steps.last().map_or(0, |s| s.raw);
            let recorded = present_count(pde);
            if present != recorded {
                self.out.push(Violation::PresentCount {
                    path: path(),
                    table: phys,
                    recorded,
                    present,
                });
            }
            // A table holding pages the clock may send out (counted when it
            // was read) must have no mark above it: the mark is optional,
            // and an unmarked table may hold anything. (Also a copy shared
            // with the last check: a mark set since covers tables whose
            // bytes did not change.)
            if sendable > 0 {
                self.no_evictable(phys, &entries, sendable, virt, steps);
            }
        }
        let descend = level > 1 && !empty;
        let at = self.tree.tables.len();
        let (chain, depth) = chain_of(steps);
        self.tree.tables.push(Table {
            frame: phys,
            level,
            virt,
            chain,
            depth,
            entries,
            empty,
            present,
            evictable_pages: sendable,
        });
        if descend {
            let shift = 12 + 9 * u32::from(level - 1);
            // A handle of its own on the entries (the tree's vector grows
            // under the calls below): the loop passes the zero entries,
            // most of an upper-level table's, without indexing the tree
            // or calling `entry` for each.
            let entries = Arc::clone(&self.tree.tables[at].entries);
            for (i, &raw) in entries.iter().enumerate().filter(|&(_, &raw)| raw != 0) {
                let v = virt | ((i as u64) << shift);
                self.entry(level - 1, phys, i as u64, raw, v, steps, lower);
            }
        }
    }
}
