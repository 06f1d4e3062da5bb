//! Broken invariants, each with what the OS developer needs to find it: the
//! virtual address, the entry at each level, the frame.

use std::fmt;

use super::entry::Flags;
use super::memory::MemoryError;
use crate::model::keys::{untag, SpaceAddr};

/// The level names, PML4 first.
const LEVELS: [&str; 4] = ["PML4", "PDPT", "PD", "PT"];

/// One step of a page walk: the table, the index in it and the entry there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub table: u64,
    pub index: u16,
    pub raw: u64,
}

/// Where a violation is: a virtual address and the entries leading to it
/// (PML4 entry first; fewer than four for a table). The address is a key
/// (`crate::model::keys`): a page or table of a space other than 0 has the
/// space in bits 48–63 ([`Path::space_addr`]), and the PML4 entry is in
/// that space's PML4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub virt: u64,
    pub steps: Vec<Step>,
}

impl Path {
    /// The space of the page or table (0 for space 0 and the kernel half)
    /// and its plain address: `virt` is a key (`crate::model::keys`).
    pub fn space_addr(&self) -> (u16, u64) {
        untag(self.virt)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virt {}", SpaceAddr(self.virt))?;
        for (name, s) in LEVELS.iter().zip(&self.steps) {
            write!(f, " {name}[{}]@{:#x}={:#x}", s.index, s.table, s.raw)?;
        }
        Ok(())
    }
}

/// A broken invariant. The number in each variant's doc is the invariant's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Guest memory the checker needed could not be read.
    Unreadable { what: String, error: MemoryError },
    /// 1: a page's or table's frame is free in the frame bitmap.
    FrameFree {
        path: Path,
        frame: u64,
        what: &'static str,
    },
    /// 1: a page's or table's frame is past the last frame of the bitmap.
    FrameBeyondRam {
        path: Path,
        frame: u64,
        what: &'static str,
    },
    /// 2: a frame has two owners (two pages, a table and a page, a page
    /// and a boot reservation or host frame, ...).
    FrameShared {
        path: Path,
        frame: u64,
        what: &'static str,
        other: String,
    },
    /// 3: the bitmap's used frames are not exactly the owned frames.
    Leak {
        /// Frames marked used that nothing owns.
        leaked: u64,
        leaked_sample: Vec<u64>,
        /// Boot or host frames marked free.
        lost: u64,
        lost_sample: Vec<u64>,
    },
    /// 3: the bitmap itself is malformed (too short, tail bits not 1).
    BadBitmap { why: String },
    /// 3: frames of a destroyed space (its PML4, its tables, its pages'
    /// frames) still marked used, owned by nothing: `DestroySpace` or
    /// `Reset` did not free them.
    SpaceLeak {
        space: u16,
        frames: u64,
        sample: Vec<u64>,
    },
    /// 4: a live space's PML4 whose kernel half (entries 256–511) is not
    /// space 0's: `differing` entries differ, the first at `index`.
    KernelHalf {
        space: u16,
        root: u64,
        index: u16,
        expected: u64,
        got: u64,
        differing: u16,
    },
    /// 4: a table of the managed space holds only zero entries.
    EmptyTable { path: Path, table: u64 },
    /// 4: an entry with reserved bits or an encoding of no state.
    BadEntry { path: Path, why: &'static str },
    /// 4: a PD entry's present count is not the number of present entries
    /// in the page table it names.
    PresentCount {
        path: Path,
        table: u64,
        recorded: u64,
        present: u64,
    },
    /// 4: a PD entry (`marked` 2), or the PDPT entry above it (`marked`
    /// 3), carries the no-evictable mark (bit 62), but the page table
    /// `table` holds a page the pressure path may send out (present
    /// writable usable RAM, or a present mmap page): the mark was left set
    /// when such an entry was written. `names` is the table the marked
    /// entry names (`table` itself, or the page directory holding its PD
    /// entry). `path` leads to the first such entry (`index`, `raw`) of the
    /// table; `evictable` counts them all. A table under two marks is
    /// reported once for each.
    NoEvictableMark {
        path: Path,
        /// The marked entry: the PD entry, or the PDPT entry above it.
        marked: MarkedEntry,
        names: u64,
        table: u64,
        index: u16,
        raw: u64,
        evictable: u64,
    },
    /// 5: a page's decoded state differs from the model's.
    StateMismatch {
        path: Path,
        expected: String,
        got: String,
    },
    /// 5: the model expects non-unusable pages where no table exists
    /// (`virt` is a key, as a [`Path`]'s).
    MissingTable {
        virt: u64,
        pages: u64,
        expected: String,
    },
    /// 4: a heap-region entry that is neither allocate-on-write nor
    /// present writable kernel RAM (or any entry past `heap_max_bytes`).
    HeapEntry { path: Path, why: &'static str },
    /// 5: a present file page's frame-info record is not its file and page.
    FrameInfoMismatch {
        path: Path,
        frame: u64,
        expected: String,
        got: u64,
    },
    /// 5: the frame-info table is malformed, or holds a record on a frame
    /// no present file page maps.
    FrameInfo { frame: u64, why: String },
    /// 3 / 5: the swap store disagrees with the model's on-swap pages (a
    /// slot missing, a stray slot, used units that no slot owns, ...).
    SwapStore { why: String },
    /// 3: a boot structure (a file image, the swap store, the frame-info
    /// table) has frames outside `boot_reserved` or free in the bitmap.
    NotReserved { what: String, frame: u64 },
    /// 6: a file image's byte differs from its spec's.
    FileImage {
        file: u8,
        page: u64,
        phys: u64,
        offset: u64,
        expected: u8,
        got: u8,
    },
    /// 6: an on-swap page's stored data differs from the model's bytes.
    SwapData {
        path: Path,
        slot: u64,
        offset: u64,
        expected: u8,
        got: u8,
    },
    /// 6: a present page's bytes differ from the model's.
    DataMismatch {
        path: Path,
        frame: u64,
        offset: u64,
        expected: u8,
        got: u8,
    },
    /// 5: the mapping count of a shared frame's frame-info record is not
    /// the number of present shared entries naming the frame (`entries`:
    /// their keys).
    SharedCount {
        frame: u64,
        count: u64,
        entries: Vec<u64>,
    },
    /// 2: a frame named by a present shared entry (at key `shared_at`) is
    /// also a non-shared page's or a table's (`other`, in words).
    SharedMixed {
        path: Path,
        frame: u64,
        shared_at: u64,
        other: String,
    },
    /// 4: the shared entries naming one frame do not all have the same W
    /// bit (keys of each side).
    SharedWritability {
        frame: u64,
        writable: Vec<u64>,
        read_only: Vec<u64>,
    },
    /// 3 / 5: a shared frame-info record (`1 << 62 | count`) on a frame no
    /// present shared entry names: a leaked record (and frame).
    SharedRecordLeak { frame: u64, record: u64 },
    /// 5: a frame named by present shared entries whose frame-info record
    /// is not a shared record (`record`: what it holds).
    SharedRecordMissing {
        frame: u64,
        record: u64,
        entries: Vec<u64>,
    },
    /// 1: a frame still named by present shared entries (`entries`: their
    /// keys) is free in the frame bitmap: a mapping's going freed it while
    /// others still map it.
    SharedFrameFree {
        frame: u64,
        entries: Vec<u64>,
        record: u64,
    },
    /// 4: a present shared entry in the kernel half (shared memory is user
    /// memory only).
    SharedInKernelHalf { path: Path },
    /// 5: the frames memory shares are not the model's: pages the model
    /// keeps on one shared frame map several, or pages it keeps on
    /// different frames map one.
    SharedModel { frame: u64, why: String },
}

impl Violation {
    /// The invariant's number (0 for unreadable memory).
    pub fn invariant(&self) -> u8 {
        match self {
            Violation::Unreadable { .. } => 0,
            Violation::FrameFree { .. } | Violation::FrameBeyondRam { .. } => 1,
            Violation::FrameShared { .. } => 2,
            Violation::Leak { .. } | Violation::BadBitmap { .. } | Violation::SpaceLeak { .. } => 3,
            Violation::KernelHalf { .. }
            | Violation::EmptyTable { .. }
            | Violation::BadEntry { .. }
            | Violation::PresentCount { .. }
            | Violation::NoEvictableMark { .. }
            | Violation::HeapEntry { .. } => 4,
            Violation::StateMismatch { .. }
            | Violation::MissingTable { .. }
            | Violation::FrameInfoMismatch { .. }
            | Violation::FrameInfo { .. } => 5,
            Violation::SwapStore { .. } | Violation::NotReserved { .. } => 3,
            Violation::DataMismatch { .. }
            | Violation::FileImage { .. }
            | Violation::SwapData { .. } => 6,
            Violation::SharedFrameFree { .. } => 1,
            Violation::SharedMixed { .. } => 2,
            Violation::SharedRecordLeak { .. } => 3,
            Violation::SharedWritability { .. } | Violation::SharedInKernelHalf { .. } => 4,
            Violation::SharedCount { .. }
            | Violation::SharedRecordMissing { .. }
            | Violation::SharedModel { .. } => 5,
        }
    }
}

/// Which entry carries a no-evictable mark that a page under it breaks
/// ([`Violation::NoEvictableMark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkedEntry {
    /// The PD entry naming the page table.
    Pd,
    /// The PDPT entry naming the page directory above it.
    Pdpt,
}

fn hex_list(frames: &[u64]) -> String {
    let v: Vec<String> = frames.iter().map(|f| format!("{f:#x}")).collect();
    v.join(", ")
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {}: ", self.invariant())?;
        match self {
            Violation::Unreadable { what, error } => write!(f, "cannot read {what}: {error}"),
            Violation::FrameFree { path, frame, what } => {
                write!(f, "{what} frame {frame:#x} is free in the frame bitmap; {path}")
            }
            Violation::FrameBeyondRam { path, frame, what } => {
                write!(f, "{what} frame {frame:#x} is beyond the bitmap's frames; {path}")
            }
            Violation::FrameShared {
                path,
                frame,
                what,
                other,
            } => write!(f, "{what} frame {frame:#x} is also {other}; {path}"),
            Violation::Leak {
                leaked,
                leaked_sample,
                lost,
                lost_sample,
            } => write!(
                f,
                "frame accounting off: {leaked} frames used but owned by nothing [{}]; \
                 {lost} boot/host frames marked free [{}]",
                hex_list(leaked_sample),
                hex_list(lost_sample)
            ),
            Violation::BadBitmap { why } => write!(f, "frame bitmap: {why}"),
            Violation::SpaceLeak {
                space,
                frames,
                sample,
            } => write!(
                f,
                "{frames} frames of destroyed space {space} (its PML4, tables or pages) \
                 still used but owned by nothing [{}]",
                hex_list(sample)
            ),
            Violation::KernelHalf {
                space,
                root,
                index,
                expected,
                got,
                differing,
            } => write!(
                f,
                "the kernel half of space {space}'s PML4 at {root:#x} is not space 0's: \
                 {differing} of entries 256-511 differ, entry {index} is {got:#x}, \
                 space 0's is {expected:#x}"
            ),
            Violation::EmptyTable { path, table } => {
                write!(f, "table at {table:#x} holds only zero entries; {path}")
            }
            Violation::BadEntry { path, why } => write!(f, "{why}; {path}"),
            Violation::PresentCount {
                path,
                table,
                recorded,
                present,
            } => write!(
                f,
                "the PD entry counts {recorded} present entries in the page table at \
                 {table:#x}, which holds {present}; {path}"
            ),
            Violation::NoEvictableMark {
                path,
                marked: MarkedEntry::Pd,
                table,
                index,
                raw,
                evictable,
                ..
            } => write!(
                f,
                "the PD entry marks the page table at {table:#x} as holding no page the \
                 reclaim clock may send out (bit 62), but entry {index} ({raw:#x} {}) is one \
                 (such entries in the table: {evictable}); {path}",
                Flags(*raw)
            ),
            Violation::NoEvictableMark {
                path,
                marked: MarkedEntry::Pdpt,
                names,
                table,
                index,
                raw,
                evictable,
                ..
            } => write!(
                f,
                "the PDPT entry marks the page directory at {names:#x} as holding no page \
                 the reclaim clock may send out (bit 62), but the page table at {table:#x} \
                 holds one: entry {index} ({raw:#x} {}) (such entries in the table: \
                 {evictable}); {path}",
                Flags(*raw)
            ),
            Violation::StateMismatch {
                path,
                expected,
                got,
            } => write!(f, "state {got}, model expects {expected}; {path}"),
            Violation::MissingTable {
                virt,
                pages,
                expected,
            } => write!(
                f,
                "virt {} (+{pages} pages) has no page table, model expects {expected}",
                SpaceAddr(*virt)
            ),
            Violation::HeapEntry { path, why } => write!(f, "heap region: {why}; {path}"),
            Violation::FrameInfoMismatch {
                path,
                frame,
                expected,
                got,
            } => write!(
                f,
                "frame-info record of frame {frame:#x} is {got:#x}, model expects {expected}; {path}"
            ),
            Violation::FrameInfo { frame, why } => {
                write!(f, "frame-info table at frame {frame:#x}: {why}")
            }
            Violation::SwapStore { why } => write!(f, "swap store: {why}"),
            Violation::NotReserved { what, frame } => {
                write!(f, "frame {frame:#x} of {what} is not a boot reservation")
            }
            Violation::FileImage {
                file,
                page,
                phys,
                offset,
                expected,
                got,
            } => write!(
                f,
                "file {file} page {page:#x} (phys {phys:#x}) byte {offset:#x} is {got:#04x}, its spec gives {expected:#04x}"
            ),
            Violation::SwapData {
                path,
                slot,
                offset,
                expected,
                got,
            } => write!(
                f,
                "swap slot {slot} byte {offset:#x} (page byte {}) is {got:#04x}, model expects {expected:#04x}; {path}",
                SpaceAddr(path.virt + offset)
            ),
            Violation::DataMismatch {
                path,
                frame,
                offset,
                expected,
                got,
            } => write!(
                f,
                "byte at {} (frame {frame:#x} + {offset:#x}) is {got:#04x}, model expects {expected:#04x}; {path}",
                SpaceAddr(path.virt + offset)
            ),
            Violation::SharedCount { .. }
            | Violation::SharedMixed { .. }
            | Violation::SharedWritability { .. }
            | Violation::SharedRecordLeak { .. }
            | Violation::SharedRecordMissing { .. }
            | Violation::SharedFrameFree { .. }
            | Violation::SharedInKernelHalf { .. }
            | Violation::SharedModel { .. } => super::violation_shared::write(self, f),
        }
    }
}
