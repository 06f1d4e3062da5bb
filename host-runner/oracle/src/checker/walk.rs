//! The page walk: every table and level-1 entry of the managed PML4 slots,
//! read from the root in `Hello`, with the structural checks of invariant 4.

use protocol::Hello;

use super::entry::{decode_leaf, decode_upper, Leaf, PresentKind};
use super::memory::{read_table, GuestMemory};
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

/// What the walk found: every translation and every table, in address order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    pub translations: Vec<Translation>,
    pub tables: Vec<TableRef>,
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

/// Called for every level-1 table: first page number, entries leading to
/// it, its address, its entries.
pub type PtVisitor<'a> = dyn FnMut(u64, &[Step], u64, &[u64; 512]) + 'a;

struct Walker<'a> {
    mem: &'a dyn GuestMemory,
    walk: Walk,
    violations: &'a mut Vec<Violation>,
    visit: &'a mut PtVisitor<'a>,
}

/// Walks the managed slots of the tables at `hello.page_table_root`.
pub fn walk<'a>(
    mem: &'a dyn GuestMemory,
    hello: &Hello,
    violations: &'a mut Vec<Violation>,
    visit: &'a mut PtVisitor<'a>,
) -> Walk {
    let root = hello.page_table_root;
    let pml4 = match read_table(mem, root) {
        Ok(t) => t,
        Err(error) => {
            let what = format!("the PML4 at {root:#x}");
            violations.push(Violation::Unreadable { what, error });
            return Walk::default();
        }
    };
    let mut w = Walker {
        mem,
        walk: Walk::default(),
        violations,
        visit,
    };
    let mut steps = Vec::with_capacity(4);
    for slot in managed_slots(hello) {
        w.entry(
            3,
            root,
            slot,
            pml4[slot as usize],
            slot_addr(slot, 0),
            &mut steps,
            slot < 256,
        );
    }
    w.walk
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
        match decode_upper(raw, lower) {
            Ok(next) => self.table(level, next, virt, steps, lower),
            Err(why) => self.violations.push(Violation::BadEntry {
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
        let path = Path {
            virt,
            steps: steps.clone(),
        };
        let entries = match read_table(self.mem, phys) {
            Ok(t) => t,
            Err(error) => {
                let what = format!("the level-{level} table at {phys:#x} ({path})");
                self.violations.push(Violation::Unreadable { what, error });
                return;
            }
        };
        self.walk.tables.push(TableRef {
            frame: phys,
            level,
            path: path.clone(),
        });
        if entries.iter().all(|&e| e == 0) {
            self.violations
                .push(Violation::EmptyTable { path, table: phys });
            return;
        }
        if level > 1 {
            let shift = 12 + 9 * u32::from(level - 1);
            for (i, &raw) in entries.iter().enumerate() {
                let v = virt | ((i as u64) << shift);
                self.entry(level - 1, phys, i as u64, raw, v, steps, lower);
            }
            return;
        }
        (self.visit)(virt >> 12, steps, phys, &entries);
        for (i, &raw) in entries.iter().enumerate() {
            let v = virt | ((i as u64) << 12);
            let step = Step {
                table: phys,
                index: i as u16,
                raw,
            };
            match decode_leaf(raw, lower) {
                Leaf::Present {
                    kind,
                    writable,
                    frame,
                } => self.walk.translations.push(Translation {
                    virt: v,
                    frame,
                    writable,
                    kind,
                    steps: [steps[0], steps[1], steps[2], step],
                }),
                Leaf::Corrupt(why) => {
                    let mut s = steps.clone();
                    s.push(step);
                    let path = Path { virt: v, steps: s };
                    self.violations.push(Violation::BadEntry { path, why });
                }
                _ => {}
            }
        }
    }
}
