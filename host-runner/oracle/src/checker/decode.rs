//! A page walk decoded level by level, for the replay command to print at
//! a divergence and for its HTML report to draw; and the level-1 entries
//! of a 2 MiB region, decoded.

use std::fmt::Write;

use protocol::Hello;

use super::address::address_path;
use super::entry::{decode_leaf, decode_upper, Flags, Leaf, Upper, ADDR, P, PS};
use super::memory::{GuestMemory, MemoryError};

const NAMES: [&str; 4] = ["PML4", "PDPT", "PD", "PT"];

/// One level of a decoded walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkLevel {
    /// `PML4`, `PDPT`, `PD` or `PT`.
    pub name: &'static str,
    /// The entry's index in its table.
    pub index: u64,
    /// The table's physical address.
    pub table: u64,
    /// The entry's raw value, or why it could not be read.
    pub raw: Result<u64, String>,
    /// Its hardware flags and software bits, as text.
    pub flags: String,
    /// The level-1 entry's decoded state.
    pub leaf: Option<Leaf>,
    /// Where a present entry leads: `table` or `frame`, the address, and
    /// the allocator's bit for it (`used`, `FREE`, …).
    pub next: Option<(&'static str, u64, String)>,
}

/// The allocator's bit for the frame at `frame`, as text.
fn allocator_bit(mem: &dyn GuestMemory, hello: &Hello, frame: u64) -> String {
    let n = frame >> 12;
    if n >= hello.total_frames {
        return "beyond the bitmap".into();
    }
    let mut b = [0u8];
    match mem.read(hello.frame_bitmap.start + n / 8, &mut b) {
        Ok(()) if b[0] >> (n % 8) & 1 == 1 => "used".into(),
        Ok(()) => "FREE".into(),
        Err(e) => format!("unreadable ({e})"),
    }
}

/// Every level of the walk of `virt` from `hello.page_table_root`, down to
/// the first entry that is not present, unreadable, or leads to a frame.
pub fn walk_levels(mem: &dyn GuestMemory, hello: &Hello, virt: u64) -> Vec<WalkLevel> {
    walk_levels_from(mem, hello, hello.page_table_root, virt)
}

/// [`walk_levels`] from the PML4 at `root` (a space's: for a page of a
/// space other than 0, its root and the plain address, as
/// `crate::model::keys::untag` gives it).
pub fn walk_levels_from(
    mem: &dyn GuestMemory,
    hello: &Hello,
    root: u64,
    virt: u64,
) -> Vec<WalkLevel> {
    let mut out = Vec::new();
    for e in address_path(mem, root, virt) {
        let mut row = WalkLevel {
            name: NAMES[e.level],
            index: e.index,
            table: e.table,
            raw: Err(String::new()),
            flags: String::new(),
            leaf: None,
            next: None,
        };
        let raw = match &e.raw {
            Ok(raw) => *raw,
            Err(err) => {
                row.raw = Err(err.to_string());
                out.push(row);
                break;
            }
        };
        row.raw = Ok(raw);
        row.flags = Flags(raw).to_string();
        if e.level == 3 {
            row.leaf = Some(decode_leaf(raw, virt < 0x0000_8000_0000_0000));
        }
        let Some(next) = e.leads_to() else {
            out.push(row);
            break;
        };
        let what = if e.level == 3 || raw & PS != 0 {
            "frame"
        } else {
            "table"
        };
        row.next = Some((what, next, allocator_bit(mem, hello, next)));
        out.push(row);
        if what == "frame" {
            break;
        }
    }
    out
}

/// Every level of the walk of `virt` from `hello.page_table_root`: the
/// entry's raw value, flags and software bits, the next table or frame and
/// its allocator bit, and the decoded level-1 state.
pub fn decode_walk(mem: &dyn GuestMemory, hello: &Hello, virt: u64) -> String {
    decode_walk_from(mem, hello, hello.page_table_root, virt)
}

/// [`decode_walk`] from the PML4 at `root` (see [`walk_levels_from`]).
pub fn decode_walk_from(mem: &dyn GuestMemory, hello: &Hello, root: u64, virt: u64) -> String {
    let mut out = format!("walk of {virt:#x} from root {root:#x}\n");
    for l in walk_levels_from(mem, hello, root, virt) {
        let (name, index, table) = (l.name, l.index, l.table);
        let raw = match l.raw {
            Ok(raw) => raw,
            Err(e) => {
                let _ = writeln!(out, "  {name}[{index}] @ {table:#x}: unreadable ({e})");
                return out;
            }
        };
        let _ = write!(
            out,
            "  {name}[{index}] @ {table:#x} = {raw:#018x} {}",
            l.flags
        );
        if let Some(leaf) = l.leaf {
            let _ = write!(out, " -> {leaf:?}");
        }
        match l.next {
            None if l.leaf.is_some() => out.push('\n'),
            None if l.name == NAMES[2] && is_whole_aow(raw) => {
                let _ = writeln!(
                    out,
                    " -> whole allocate-on-write 2 MiB, frame {:#x} kept for its table",
                    raw & ADDR
                );
            }
            None => out.push_str(" (not present)\n"),
            Some((what, next, bit)) => {
                let _ = writeln!(out, " -> {what} {next:#x} ({bit})");
            }
        }
    }
    out
}

/// The 512 level-1 entries of the 2 MiB region holding `virt`, decoded
/// (all [`Leaf::Unusable`] when its page table is absent, all
/// [`Leaf::AllocOnWrite`] under a whole allocate-on-write entry; all
/// [`Leaf::Corrupt`] under a huge page).
pub fn region_leaves(
    mem: &dyn GuestMemory,
    hello: &Hello,
    virt: u64,
) -> Result<Vec<Leaf>, MemoryError> {
    region_leaves_from(mem, hello.page_table_root, virt)
}

/// [`region_leaves`] from the PML4 at `root` (a space's: for a page of a
/// space other than 0, its root and the plain address).
pub fn region_leaves_from(
    mem: &dyn GuestMemory,
    root: u64,
    virt: u64,
) -> Result<Vec<Leaf>, MemoryError> {
    let lower = virt < 0x0000_8000_0000_0000;
    let mut table = root;
    for e in address_path(mem, root, virt).take(3) {
        let raw = e.raw?;
        if e.level == 2 && is_whole_aow(raw) {
            return Ok(vec![Leaf::AllocOnWrite; 512]);
        }
        if raw & P == 0 {
            return Ok(vec![Leaf::Unusable; 512]);
        }
        if raw & PS != 0 {
            return Ok(vec![Leaf::Corrupt("under a huge page"); 512]);
        }
        table = raw & ADDR;
    }
    let mut bytes = vec![0u8; 4096];
    mem.read(table, &mut bytes)?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| decode_leaf(u64::from_le_bytes(c.try_into().expect("8 bytes")), lower))
        .collect())
}

/// Whether a PD entry is a whole allocate-on-write entry.
fn is_whole_aow(raw: u64) -> bool {
    matches!(decode_upper(raw, false, 1), Ok(Upper::WholeAow(_)))
}
