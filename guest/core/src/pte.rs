//! Page states in the available bits of a level-1 entry: the one
//! encode/decode pair of the format in `protocol::formats`.
//!
//! | entry | state |
//! | --- | --- |
//! | `0` | unusable |
//! | `P=1`, bits 9–11 = `0b001` | present usable RAM |
//! | `P=1`, bits 9–11 = `0b010` / `0b011` | present mmap, clean / private |
//! | `P=0`, bits 1–3 = 1, rest 0 | allocate on write |
//! | `P=0`, bits 1–3 = 2, bits 12–51 = slot | on swap |
//! | `P=0`, bits 1–3 = 3, bits 4–11 = file, bits 12–51 = page | not-present mmap |
//! | `P=1`, bits 9–11 = `0b100` | present pinned RAM |
//! | `P=0`, bits 1–3 = 4, rest 0 | pinned allocate on write |
//! | `P=1`, bits 9–11 = `0b101`, lower half only | present shared RAM |
//!
//! Present entries also carry W (writability), U (set exactly in the lower
//! half), the frame, and NX (bit 63), set in every present entry except
//! usable RAM mapped executable, which is never writable (W^X); A and D are
//! the CPU's and are ignored by [`Pte::decode`]. A shared entry in the
//! upper half is corrupt (shared memory is user memory). Anything else is
//! [`Pte::Corrupt`]. A shared frame's mapping count is not in the entry:
//! it is the frame-info table's (`frameinfo`).

use protocol::PageState;
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{PageTableFlags, PhysFrame};
use x86_64::PhysAddr;

/// Bits 12–51: a frame's address, a swap slot or a file page.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Largest swap slot or file page an entry can hold (40 bits).
pub const MAX_INDEX: u64 = (1 << 40) - 1;

const P: u64 = 1;
const W: u64 = 1 << 1;
const U: u64 = 1 << 2;
const A: u64 = 1 << 5;
/// The accessed bit, which the CPU sets on an access through an entry.
pub const ACCESSED: u64 = A;
const D: u64 = 1 << 6;
/// The dirty bit, which the CPU sets on the first write through an entry.
pub const DIRTY: u64 = D;
const NX: u64 = 1 << 63;
const SW_SHIFT: u32 = 9;
const SW_RAM: u64 = 0b001;
const SW_MMAP_CLEAN: u64 = 0b010;
const SW_MMAP_PRIVATE: u64 = 0b011;
const SW_PINNED: u64 = 0b100;
const SW_SHARED: u64 = 0b101;
const KIND_SHIFT: u32 = 1;
const KIND_AOW: u64 = 1;
const KIND_SWAP: u64 = 2;
const KIND_MMAP: u64 = 3;
const KIND_PINNED_AOW: u64 = 4;
const FILE_SHIFT: u32 = 4;

/// The state of one page, decoded from its level-1 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pte {
    /// The zero entry.
    Unusable,
    /// Usable RAM, present.
    PresentRam {
        /// Backing frame.
        frame: PhysFrame,
        /// W bit.
        writable: bool,
        /// NX clear (only ever with `writable` false).
        executable: bool,
    },
    /// Usable RAM, not present: a zeroed frame is allocated on first touch.
    AllocOnWrite,
    /// Usable RAM, not present: the data is in swap slot `slot` (< 2^40).
    OnSwap {
        /// Swap slot.
        slot: u64,
    },
    /// Memory-mapped file, present.
    PresentMmap {
        /// Backing frame.
        frame: PhysFrame,
        /// W bit.
        writable: bool,
        /// Written since loaded (copy on write done).
        private: bool,
    },
    /// Memory-mapped file, not present: page `page` (< 2^40) of `file`.
    NotPresentMmap {
        /// File number.
        file: u8,
        /// Page of the file.
        page: u64,
    },
    /// Bits that decode to no state.
    Corrupt(u64),
    /// Pinned (never-swap) usable RAM, present: never evicted.
    PinnedRam {
        /// Backing frame.
        frame: PhysFrame,
        /// W bit.
        writable: bool,
    },
    /// Pinned usable RAM, not present: a zeroed frame is allocated on
    /// first touch (the page becomes [`Pte::PinnedRam`]).
    PinnedAllocOnWrite,
    /// Shared RAM, present (lower half only): the frame may be mapped by
    /// other shared pages too, every one with the same writability; never
    /// executable, never sent out.
    Shared {
        /// Backing frame.
        frame: PhysFrame,
        /// W bit.
        writable: bool,
    },
}

/// What a present entry's available bits name, read without the checks
/// of [`Pte::decode`]: a filter for scans over many entries, whose hits
/// are decoded before anything is done with them. An entry that decodes to
/// `PresentRam` or `PresentMmap` has the kind of the same name, with the
/// same `writable` or `private`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresentKind {
    /// Software bits `0b001`.
    Ram {
        /// W bit.
        writable: bool,
    },
    /// Software bits `0b010` (clean) or `0b011` (private).
    Mmap {
        /// Written since loaded.
        private: bool,
    },
}

/// The [`PresentKind`] of a raw level-1 entry: `None` when P is clear or
/// the software bits name no present state of these kinds (pinned and
/// shared RAM have none: nothing that asks for a kind may send them out).
pub fn present_kind(raw: u64) -> Option<PresentKind> {
    if raw & P == 0 {
        return None;
    }
    match (raw >> SW_SHIFT) & 0b111 {
        SW_RAM => Some(PresentKind::Ram {
            writable: raw & W != 0,
        }),
        SW_MMAP_CLEAN => Some(PresentKind::Mmap { private: false }),
        SW_MMAP_PRIVATE => Some(PresentKind::Mmap { private: true }),
        _ => None,
    }
}

/// Whether a raw level-1 entry is a present clean file page (as
/// [`present_kind`] says `Mmap { private: false }`), by one test of its
/// bits, without a branch: the reclaim clock's scan runs it on every entry
/// it passes.
pub fn is_clean_file(raw: u64) -> bool {
    raw & (P | (0b111 << SW_SHIFT)) == P | (SW_MMAP_CLEAN << SW_SHIFT)
}

/// Whether a raw level-1 entry is a present page the pressure path may
/// send out (as [`present_kind`] says `Mmap { .. }` or `Ram { writable:
/// true }`), without a branch, as [`is_clean_file`].
pub fn is_evictable(raw: u64) -> bool {
    let sw = (raw >> SW_SHIFT) & 0b111;
    let mmap = sw & 0b110 == SW_MMAP_CLEAN;
    let ram = (sw == SW_RAM) & (raw & W != 0);
    (raw & P != 0) & (mmap | ram)
}

impl Pte {
    /// Decodes a level-1 entry of a page in the lower half (`user`) or the
    /// upper half.
    pub fn decode(raw: u64, user: bool) -> Pte {
        if raw == 0 {
            return Pte::Unusable;
        }
        if raw & P != 0 {
            let forbidden = (1 << 3) | (1 << 4) | (1 << 7) | (1 << 8) | !(ADDR_MASK | 0xfff | NX);
            if raw & forbidden != 0 || (raw & U != 0) != user {
                return Pte::Corrupt(raw);
            }
            let frame = frame_of(raw);
            let writable = raw & W != 0;
            let executable = raw & NX == 0;
            return match (raw >> SW_SHIFT) & 0b111 {
                // W^X: a writable executable entry is no state.
                SW_RAM if !(writable && executable) => Pte::PresentRam {
                    frame,
                    writable,
                    executable,
                },
                _ if executable => Pte::Corrupt(raw),
                SW_MMAP_CLEAN => Pte::PresentMmap {
                    frame,
                    writable,
                    private: false,
                },
                SW_MMAP_PRIVATE => Pte::PresentMmap {
                    frame,
                    writable,
                    private: true,
                },
                SW_PINNED => Pte::PinnedRam { frame, writable },
                SW_SHARED if user => Pte::Shared { frame, writable },
                _ => Pte::Corrupt(raw),
            };
        }
        let index = (raw & ADDR_MASK) >> 12;
        match (raw >> KIND_SHIFT) & 0b111 {
            KIND_AOW if raw == KIND_AOW << KIND_SHIFT => Pte::AllocOnWrite,
            KIND_PINNED_AOW if raw == KIND_PINNED_AOW << KIND_SHIFT => Pte::PinnedAllocOnWrite,
            KIND_SWAP if raw & !(ADDR_MASK | 0b1110) == 0 => Pte::OnSwap { slot: index },
            KIND_MMAP if raw & !(ADDR_MASK | 0xff0 | 0b1110) == 0 => Pte::NotPresentMmap {
                file: ((raw >> FILE_SHIFT) & 0xff) as u8,
                page: index,
            },
            _ => Pte::Corrupt(raw),
        }
    }

    /// Encodes the state for a page in the lower half (`user`) or the upper
    /// half. Slots and file pages are truncated to 40 bits; `Corrupt` encodes
    /// its raw bits unchanged.
    pub fn encode(self, user: bool) -> u64 {
        let u = if user { U } else { 0 };
        let present = |frame: PhysFrame, writable: bool, executable: bool, sw: u64| {
            P | if writable { W } else { 0 }
                | u
                | (sw << SW_SHIFT)
                | (frame.start_address().as_u64() & ADDR_MASK)
                | if executable { 0 } else { NX }
        };
        match self {
            Pte::Unusable => 0,
            Pte::PresentRam {
                frame,
                writable,
                executable,
            } => present(frame, writable, executable, SW_RAM),
            Pte::PresentMmap {
                frame,
                writable,
                private,
            } => present(
                frame,
                writable,
                false,
                if private {
                    SW_MMAP_PRIVATE
                } else {
                    SW_MMAP_CLEAN
                },
            ),
            Pte::AllocOnWrite => KIND_AOW << KIND_SHIFT,
            Pte::OnSwap { slot } => (KIND_SWAP << KIND_SHIFT) | ((slot & MAX_INDEX) << 12),
            Pte::NotPresentMmap { file, page } => {
                (KIND_MMAP << KIND_SHIFT)
                    | (u64::from(file) << FILE_SHIFT)
                    | ((page & MAX_INDEX) << 12)
            }
            Pte::Corrupt(raw) => raw,
            Pte::PinnedRam { frame, writable } => present(frame, writable, false, SW_PINNED),
            Pte::PinnedAllocOnWrite => KIND_PINNED_AOW << KIND_SHIFT,
            Pte::Shared { frame, writable } => present(frame, writable, false, SW_SHARED),
        }
    }

    /// A present, writable, not executable page of usable RAM: what a
    /// touch, a swap-in or a convert makes (data, never code).
    pub fn data(frame: PhysFrame) -> Pte {
        Pte::PresentRam {
            frame,
            writable: true,
            executable: false,
        }
    }

    /// Whether the entry is present (a frame is mapped).
    pub fn is_present(self) -> bool {
        matches!(
            self,
            Pte::PresentRam { .. }
                | Pte::PresentMmap { .. }
                | Pte::PinnedRam { .. }
                | Pte::Shared { .. }
        )
    }

    /// The mapped frame of a present page.
    pub fn frame(self) -> Option<PhysFrame> {
        match self {
            Pte::PresentRam { frame, .. }
            | Pte::PresentMmap { frame, .. }
            | Pte::PinnedRam { frame, .. }
            | Pte::Shared { frame, .. } => Some(frame),
            _ => None,
        }
    }

    /// Whether the page is of the pinned RAM area type.
    pub fn is_pinned(self) -> bool {
        matches!(self, Pte::PinnedRam { .. } | Pte::PinnedAllocOnWrite)
    }

    /// Whether the page is of the usable RAM area type.
    pub fn is_usable_ram(self) -> bool {
        matches!(
            self,
            Pte::PresentRam { .. } | Pte::AllocOnWrite | Pte::OnSwap { .. }
        )
    }

    /// Whether the page is present shared RAM.
    pub fn is_shared(self) -> bool {
        matches!(self, Pte::Shared { .. })
    }

    /// The state as the protocol reports it. A present mmap entry does not
    /// hold its file and page (bits 12–51 are the frame), so they read 0;
    /// nor does a shared entry hold its frame's mapping count, which reads
    /// 0 (`Query` fills both in from the frame-info table).
    pub fn to_protocol(self) -> PageState {
        match self {
            Pte::Unusable => PageState::Unusable,
            Pte::PresentRam {
                frame,
                writable,
                executable,
            } => PageState::PresentRam {
                writable,
                executable,
                frame: frame.start_address().as_u64(),
            },
            Pte::AllocOnWrite => PageState::AllocOnWrite,
            Pte::OnSwap { slot } => PageState::OnSwap { slot },
            Pte::PresentMmap { frame, private, .. } => PageState::PresentMmap {
                file: 0,
                page: 0,
                private,
                frame: frame.start_address().as_u64(),
            },
            Pte::NotPresentMmap { file, page } => PageState::NotPresentMmap { file, page },
            Pte::Corrupt(raw) => PageState::Corrupt { raw },
            Pte::PinnedRam { frame, writable } => PageState::PinnedRam {
                writable,
                frame: frame.start_address().as_u64(),
            },
            Pte::PinnedAllocOnWrite => PageState::PinnedAllocOnWrite,
            Pte::Shared { frame, writable } => PageState::Shared {
                writable,
                mappings: 0,
                frame: frame.start_address().as_u64(),
            },
        }
    }
}

/// The frame a present entry `raw` names if the CPU wrote through it
/// (its dirty bit is set); `None` for any other entry.
#[inline]
pub fn written_frame(raw: u64) -> Option<PhysFrame> {
    (raw & (P | D) == P | D).then(|| frame_of(raw))
}

/// The bits of an entry that the CPU may set on its own (accessed, dirty).
pub const CPU_BITS: u64 = A | D;

/// The frame in bits 12–51 of `raw`.
pub fn frame_of(raw: u64) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(raw & ADDR_MASK))
}

/// The raw 64 bits of an entry.
pub fn raw(entry: &PageTableEntry) -> u64 {
    entry.addr().as_u64() | entry.flags().bits()
}

/// Sets the raw 64 bits of an entry.
pub fn set_raw(entry: &mut PageTableEntry, raw: u64) {
    entry.set_addr(
        PhysAddr::new(raw & ADDR_MASK),
        PageTableFlags::from_bits_retain(raw & !ADDR_MASK),
    );
}

/// Shift of the present count in a PD entry (`protocol::formats`: bits
/// 52–61 of an entry naming a page table count the table's present
/// entries; the CPU ignores them).
const COUNT_SHIFT: u32 = 52;
/// The present count's bits.
const COUNT_MASK: u64 = 0x3ff << COUNT_SHIFT;

/// The present count a PD entry holds: how many entries of the page table
/// it names are present.
pub fn present_count(raw: u64) -> u64 {
    (raw & COUNT_MASK) >> COUNT_SHIFT
}

/// The PD entry `raw` with its present count set to `n` (at most 512),
/// its no-evictable mark as it was.
pub fn with_present_count(raw: u64, n: u64) -> u64 {
    (raw & !COUNT_MASK) | (n.min(512) << COUNT_SHIFT)
}

/// The no-evictable mark of a PD or PDPT entry (`protocol::formats`: bit
/// 62 of an entry naming a page table or a page directory, which the CPU
/// ignores): set only while no page under it is one the pressure path may
/// send out ([`is_evictable`]). The reclaim clock sets it when its scan of
/// the whole table found none, so that its later sweeps pass the table
/// unread; [`crate::paging::PageTables`] clears the marks above every such
/// page it writes.
const NO_EVICTABLE: u64 = 1 << 62;

/// Whether the PD or PDPT entry `raw` carries the no-evictable mark: no
/// level-1 entry under it passes [`is_evictable`].
#[inline]
pub fn marks_no_evictable(raw: u64) -> bool {
    raw & NO_EVICTABLE != 0
}

/// The PD or PDPT entry `raw` with its no-evictable mark set (`true`) or
/// cleared; its present count and every other bit as they were.
#[inline]
pub fn with_no_evictable(raw: u64, mark: bool) -> u64 {
    if mark {
        raw | NO_EVICTABLE
    } else {
        raw & !NO_EVICTABLE
    }
}

/// An upper-level entry (PML4, PDPT, PD) pointing at the table in `frame`
/// (for a PD entry, its present count is 0 and it has no no-evictable
/// mark: the table is new).
pub fn table_entry(frame: PhysFrame, user: bool) -> u64 {
    P | W | if user { U } else { 0 } | (frame.start_address().as_u64() & ADDR_MASK)
}

/// The whole allocate-on-write PD entry (`protocol::formats`): every page
/// of its 2 MiB allocate on write, no page table yet, `frame` kept for
/// that table (its bytes mean nothing until [`crate::paging`] fills it).
pub fn whole_aow_entry(frame: PhysFrame) -> u64 {
    (KIND_AOW << KIND_SHIFT) | (frame.start_address().as_u64() & ADDR_MASK)
}

/// Whether the raw PD entry is a whole allocate-on-write entry (P clear,
/// bits 1–3 = 1, nothing but a frame besides).
pub fn is_whole_aow(raw: u64) -> bool {
    raw & !ADDR_MASK == KIND_AOW << KIND_SHIFT
}
