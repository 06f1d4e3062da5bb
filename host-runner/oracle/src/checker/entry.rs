//! Page-table entries decoded from protocol::formats (written from its text,
//! not from the guest's encoder).

use std::fmt;

pub const P: u64 = 1 << 0;
pub const W: u64 = 1 << 1;
pub const U: u64 = 1 << 2;
pub const PWT: u64 = 1 << 3;
pub const PCD: u64 = 1 << 4;
pub const A: u64 = 1 << 5;
pub const D: u64 = 1 << 6;
pub const PS: u64 = 1 << 7;
pub const G: u64 = 1 << 8;
/// No-execute: set in every present entry of the managed space but
/// executable RAM.
pub const NX: u64 = 1 << 63;
/// Bits 12–51: a frame address, a swap slot or a file page.
pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
/// Bits 52–61 of a PD entry (one naming a page table): how many entries of
/// that table are present.
pub const PRESENT_COUNT: u64 = 0x3ff << 52;
/// Bit 62 of a PD entry naming a page table, or of a PDPT entry: the
/// no-evictable mark, set only while no entry of that page table (of any
/// page table under that page directory) is a page the pressure path may
/// send out ([`evictable`]). Optional (an entry without it is always
/// valid, and a PD entry under a marked PDPT entry need not carry it); the
/// CPU ignores it. Reserved (zero) in a PML4 entry and in a whole
/// allocate-on-write PD entry.
pub const NO_EVICTABLE: u64 = 1 << 62;
/// Bits 1–3 of a not-present level-1 entry: its kind.
const KIND: u64 = 0b1110;
/// Bits 4–11 of a not-present file entry: the file.
const FILE: u64 = 0xff0;

/// What a present level-1 entry maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresentKind {
    Ram,
    MmapClean,
    MmapPrivate,
    /// Pinned (never-swap) RAM.
    PinnedRam,
    /// Shared RAM (sw bits `0b101`): its frame may be other entries' too,
    /// under the sharing rule (`super::sharing`).
    Shared,
}

impl PresentKind {
    /// Whether the page maps a file (clean or private), whose frame holds
    /// a frame-info record.
    pub fn is_file(self) -> bool {
        matches!(self, PresentKind::MmapClean | PresentKind::MmapPrivate)
    }
}

/// A decoded level-1 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    Unusable,
    Present {
        kind: PresentKind,
        writable: bool,
        /// NX clear.
        executable: bool,
        frame: u64,
    },
    AllocOnWrite,
    OnSwap {
        slot: u64,
    },
    NotPresentMmap {
        file: u8,
        page: u64,
    },
    /// Bits that decode to no state, and why.
    Corrupt(&'static str),
    /// Pinned RAM, allocate on write.
    PinnedAllocOnWrite,
}

/// Decodes a level-1 entry of the lower (`lower`) or upper half.
pub fn decode_leaf(raw: u64, lower: bool) -> Leaf {
    if raw == 0 {
        return Leaf::Unusable;
    }
    if raw & P == 0 {
        return match (raw & KIND) >> 1 {
            1 if raw == 1 << 1 => Leaf::AllocOnWrite,
            4 if raw == 4 << 1 => Leaf::PinnedAllocOnWrite,
            2 if raw & !(ADDR | KIND) == 0 => Leaf::OnSwap {
                slot: (raw & ADDR) >> 12,
            },
            3 if raw & !(ADDR | KIND | FILE) == 0 => Leaf::NotPresentMmap {
                file: ((raw & FILE) >> 4) as u8,
                page: (raw & ADDR) >> 12,
            },
            1..=4 => Leaf::Corrupt("not-present entry with stray bits"),
            _ => Leaf::Corrupt("not-present entry of no known kind"),
        };
    }
    let kind = match (raw >> 9) & 7 {
        1 => PresentKind::Ram,
        2 => PresentKind::MmapClean,
        3 => PresentKind::MmapPrivate,
        4 => PresentKind::PinnedRam,
        5 => PresentKind::Shared,
        _ => return Leaf::Corrupt("present entry with unknown software bits 9-11"),
    };
    if raw & (PWT | PCD | PS | G) != 0 || (raw & !NX) >> 52 != 0 {
        return Leaf::Corrupt("present entry with reserved bits (PWT, PCD, PAT, G or 52-62)");
    }
    if (raw & U != 0) != lower {
        return Leaf::Corrupt("U bit not set exactly in the lower half");
    }
    let (writable, executable) = (raw & W != 0, raw & NX == 0);
    if writable && executable {
        return Leaf::Corrupt("present entry writable and executable (W^X)");
    }
    if executable && kind != PresentKind::Ram {
        return Leaf::Corrupt(
            "executable entry that is not usable RAM (NX clear on a file, pinned or shared page)",
        );
    }
    Leaf::Present {
        kind,
        writable,
        executable,
        frame: raw & ADDR,
    }
}

/// Whether a level-1 entry is a page the pressure path may send out, by its
/// raw bits (`protocol::formats`, level-1 entries): present (P) and either
/// a memory-mapped file page, clean or private (bits 9–11 `0b010` or
/// `0b011`), or usable RAM (`0b001`) with W set. Read-only usable RAM,
/// pinned and shared RAM and every not-present entry are not. The other
/// bits are not looked at: [`decode_leaf`] judges them.
pub fn evictable(raw: u64) -> bool {
    if raw & P == 0 {
        return false;
    }
    match (raw >> 9) & 7 {
        0b010 | 0b011 => true,
        0b001 => raw & W != 0,
        _ => false,
    }
}

/// Whether a PD or PDPT entry carries the no-evictable mark
/// ([`NO_EVICTABLE`]): it says that no entry of the page table it names
/// (of any page table under the page directory it names) is [`evictable`].
pub fn marks_no_evictable(raw: u64) -> bool {
    raw & NO_EVICTABLE != 0
}

/// The present count of a PD entry (bits 52–61).
pub fn present_count(raw: u64) -> u64 {
    (raw & PRESENT_COUNT) >> 52
}

/// What a valid non-zero upper-level entry stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upper {
    /// The next table, at this physical address.
    Table(u64),
    /// A whole allocate-on-write PD entry: 512 allocate-on-write pages,
    /// and the frame at this physical address kept for their page table
    /// (its bytes mean nothing).
    WholeAow(u64),
}

/// The bits of a whole allocate-on-write PD entry besides its frame.
const WHOLE_AOW: u64 = 1 << 1;

/// Checks a non-zero upper-level entry of the managed space that names a
/// table of level `names` (3: a PML4 entry naming a PDPT; 2: a PDPT entry
/// naming a PD, which may hold the no-evictable mark; 1: a PD entry, which
/// may hold a present count and the no-evictable mark, or be a whole
/// allocate-on-write entry, which holds neither); answers what it stands
/// for.
pub fn decode_upper(raw: u64, lower: bool, names: u8) -> Result<Upper, &'static str> {
    if raw & P == 0 {
        if names == 1 && raw & !ADDR == WHOLE_AOW {
            return Ok(Upper::WholeAow(raw & ADDR));
        }
        return Err(
            "non-zero upper-level entry not present (nor a whole allocate-on-write PD entry)",
        );
    }
    if raw & PS != 0 {
        return Err("huge page in the managed space");
    }
    if raw & W == 0 {
        return Err("upper-level entry not writable");
    }
    if (raw & U != 0) != lower {
        return Err("U bit not set exactly in the lower half");
    }
    let software = match names {
        1 => PRESENT_COUNT | NO_EVICTABLE,
        2 => NO_EVICTABLE,
        _ => 0,
    };
    if raw & !(P | W | U | A | ADDR | software) != 0 {
        return Err("upper-level entry with reserved bits set");
    }
    if present_count(raw) > 512 {
        return Err("PD entry's present count above 512");
    }
    Ok(Upper::Table(raw & ADDR))
}

/// The hardware flags of an entry, for reading.
pub struct Flags(pub u64);

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (P, "P"),
            (W, "W"),
            (U, "U"),
            (PWT, "PWT"),
            (PCD, "PCD"),
            (A, "A"),
            (D, "D"),
            (PS, "PS"),
            (G, "G"),
            (1 << 63, "NX"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(b, _)| self.0 & b != 0)
            .map(|(_, n)| *n)
            .collect();
        write!(f, "[{}] sw={:#05b}", set.join(" "), (self.0 >> 9) & 7)
    }
}
