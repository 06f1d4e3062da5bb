//! Synthetic guest images for tests and benchmarks: a machine of any RAM
//! size laid out like the guest's (page tables, frame bitmap, frame-info
//! table, swap store, a file image, the heap region's entries), written
//! from `protocol::formats` alone, and kept in step with a [`crate::Model`]
//! by [`Image::realize`] — a small VMM of its own that stores each changed
//! page's state, frame, bytes, swap slot and frame-info record the way the
//! formats say, so that the checker finds the image clean.

mod realize;
mod shared;
mod spaces;
mod writer;

use std::collections::BTreeMap;

use protocol::{FileInfo, Hello, PhysRange, VirtRange};

use crate::checker::{address_path, ImageMemory};
use crate::model::FileSpec;

/// Present, writable, user.
const P: u64 = 1;
const W: u64 = 1 << 1;
const U: u64 = 1 << 2;
const ADDR: u64 = 0x000f_ffff_ffff_f000;
/// No-execute: every present leaf of the managed space but executable RAM.
const NX: u64 = 1 << 63;
/// Allocate on write.
pub(crate) const AOW: u64 = 1 << 1;

/// The frame a whole allocate-on-write PD entry keeps for its page table
/// (`protocol::formats`: P clear, the allocate-on-write bits, a frame), or
/// `None` for any other entry.
fn whole_aow_frame(raw: u64) -> Option<u64> {
    (raw & P == 0 && raw & !ADDR == AOW).then_some(raw & ADDR)
}
/// The kernel space and the heap region (PML4 slots 385 and 384 less one).
pub const KSPACE: u64 = 0xffff_c080_0000_0000;
pub const HEAP: u64 = 0xffff_c000_0000_0000;
pub const VALLOC: u64 = 0xffff_c0c0_0000_0000;
/// The seed of the image's one file.
pub const FILE_SEED: u64 = 0x5eed;

/// A synthetic machine: its memory, its `Hello`, and a frame allocator.
#[derive(Debug)]
pub struct Image {
    pub mem: ImageMemory,
    pub hello: Hello,
    /// The next frame number to look at for a free one.
    next: u64,
    /// The swap store's parts (offsets from its start) and units.
    swap: SwapParts,
    /// The live spaces other than 0 and their roots.
    roots: BTreeMap<u16, u64>,
}

/// The swap store's parts: units, and offsets from its start.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwapParts {
    pub units: u64,
    pub used: u64,
    pub pending: u64,
    pub lengths: u64,
    pub data: u64,
}

/// Whole pages holding `bytes` bytes.
fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(4096)
}

impl Image {
    /// A machine of `ram_mib` MiB with one file of `file_pages` pages: boot
    /// structures at the bottom, the heap region's entries allocate on
    /// write (RAM / 4 of them, as the guest has), nothing else mapped.
    pub fn new(ram_mib: u64, file_pages: u64) -> Image {
        let total = ram_mib << 8;
        let bitmap = 0x2000;
        let info = (2 + pages(total.div_ceil(8))) << 12;
        let swap_at = info + (pages(total * 8) << 12);
        let units = total * 4096 / 8 / 128;
        let mut parts = SwapParts {
            units,
            used: 4096,
            pending: 0,
            lengths: 0,
            data: 0,
        };
        parts.pending = parts.used + (pages(units.div_ceil(8)) << 12);
        parts.lengths = parts.pending + (pages(units.div_ceil(8)) << 12);
        parts.data = parts.lengths + (pages(units * 2) << 12);
        let swap_end = swap_at + parts.data + units * 128;
        let file_at = swap_end;
        let boot_end = file_at + file_pages * 4096;
        let heap_max = total / 4 * 4096;
        let hello = Hello {
            protocol_version: protocol::PROTOCOL_VERSION,
            ram_bytes: total * 4096,
            total_frames: total,
            boot_free_frames: total - (boot_end >> 12),
            page_table_root: 0x1000,
            direct_map_offset: 0xffff_8000_0000_0000,
            frame_bitmap: PhysRange {
                start: bitmap,
                end: bitmap + total.div_ceil(8),
            },
            boot_reserved: vec![PhysRange {
                start: 0,
                end: boot_end,
            }],
            kernel_image: PhysRange {
                start: 0,
                end: 0x1000,
            },
            user_space: VirtRange {
                start: 0,
                end: 0x0000_8000_0000_0000,
            },
            kernel_space: VirtRange {
                start: HEAP,
                end: 0xffff_ff80_0000_0000,
            },
            heap: VirtRange {
                start: HEAP,
                end: HEAP + (1 << 39) - (1 << 30),
            },
            valloc: VirtRange {
                start: VALLOC,
                end: VALLOC + (1 << 30),
            },
            reserved_pml4_slots: vec![256, 511],
            files: vec![FileInfo {
                pages: file_pages,
                image: PhysRange {
                    start: file_at,
                    end: boot_end,
                },
            }],
            swap: PhysRange {
                start: swap_at,
                end: swap_end,
            },
            frame_info: PhysRange {
                start: info,
                end: info + total * 8,
            },
            heap_max_bytes: heap_max,
            ring: PhysRange { start: 0, end: 0 },
            coverage: None,
            max_spaces: 16,
        };
        let mut img = Image::blank(hello, total);
        img.next = boot_end >> 12;
        img.swap = parts;
        for f in 0..boot_end >> 12 {
            img.set_used(f, true);
        }
        let tail = (total.div_ceil(8) * 8).saturating_sub(total);
        for f in total..total + tail {
            img.set_used(f, true);
        }
        let header = crate::checker::swap::RawHeader {
            magic: crate::checker::swap::MAGIC,
            unit: (crate::checker::swap::UNIT as u32).into(),
            units: (units as u32).into(),
            used: parts.used.into(),
            pending: parts.pending.into(),
            lengths: parts.lengths.into(),
            data: parts.data.into(),
        };
        img.write(swap_at, zerocopy::IntoBytes::as_bytes(&header));
        for p in 0..file_pages {
            img.write(file_at + p * 4096, &crate::model::file_page(FILE_SEED, p));
        }
        // The heap as the guest makes it at boot: each whole 2 MiB a
        // whole allocate-on-write PD entry over the frame kept for its
        // table (`protocol::formats`), the pages of a last partial 2 MiB
        // allocate on write in a filled table.
        let whole = heap_max >> 21;
        for region in 0..whole {
            let virt = HEAP + (region << 21);
            let at = img.entry_addr(virt, 2);
            let table = img.table_at(at, virt);
            img.write_u64(at, table | AOW);
        }
        for p in whole << 9..heap_max >> 12 {
            img.set_leaf(HEAP + (p << 12), AOW);
        }
        img.hello.boot_free_frames = total - img.used_frames();
        img
    }

    /// `frames` frames of zeroed memory laid out by `hello`, every frame
    /// free (the caller marks what its layout reserves), no swap store.
    pub(crate) fn blank(hello: Hello, frames: u64) -> Image {
        Image {
            mem: ImageMemory {
                base: 0,
                bytes: vec![0; (frames * 4096) as usize],
            },
            hello,
            next: 0,
            swap: SwapParts::default(),
            roots: BTreeMap::new(),
        }
    }

    /// The spec of the image's file, for [`crate::Model::with_files`].
    pub fn file_specs(&self) -> Vec<FileSpec> {
        self.hello
            .files
            .iter()
            .map(|f| FileSpec {
                pages: f.pages,
                seed: FILE_SEED,
            })
            .collect()
    }

    /// The swap store's parts (offsets from `hello.swap.start`).
    pub fn swap_parts(&self) -> SwapParts {
        self.swap
    }

    fn used_frames(&self) -> u64 {
        (0..self.hello.total_frames)
            .filter(|&f| self.used(f))
            .count() as u64
    }

    /// The physical address of `virt`'s level-1 entry (a key: see
    /// `crate::model::keys`), if its space and tables exist (none under a
    /// whole allocate-on-write PD entry, whose table is not filled).
    pub fn leaf_addr(&self, virt: u64) -> Option<u64> {
        let pd = address_path(&self.mem, self.root_of(virt)?, virt).nth(2)?;
        Some(pd.leads_to()? + ((virt >> 12) & 511) * 8)
    }

    /// The level-1 entry of `virt`: 0 where no table exists, and the
    /// allocate-on-write entry under a whole allocate-on-write PD entry
    /// (what its 512 pages are).
    pub fn leaf(&self, virt: u64) -> u64 {
        if let Some(a) = self.leaf_addr(virt) {
            return self.read_u64(a);
        }
        let whole = self
            .root_of(virt)
            .and_then(|root| address_path(&self.mem, root, virt).nth(2))
            .is_some_and(|pd| pd.raw.is_ok_and(|raw| whole_aow_frame(raw).is_some()));
        if whole {
            AOW
        } else {
            0
        }
    }

    /// Clears `virt`'s level-1 entry and frees the tables it leaves empty
    /// (a kernel PDPT's PML4 entry cleared in every space's PML4). Under a
    /// whole allocate-on-write PD entry it does nothing: set the page
    /// first ([`Image::set_leaf`] fills the table).
    pub fn clear_leaf(&mut self, virt: u64) {
        let Some(root) = self.root_of(virt) else {
            return;
        };
        let path: Vec<u64> = address_path(&self.mem, root, virt)
            .map(|e| e.table + e.index * 8)
            .collect();
        if path.len() < 4 {
            return;
        }
        for (i, &at) in path.iter().enumerate().rev() {
            self.write_u64(at, 0);
            let table = at & !0xfff;
            if i == 0 || (0..512).any(|k| self.read_u64(table + k * 8) != 0) {
                if i == 3 {
                    self.recount(path[2]);
                }
                if i == 0 {
                    self.share_kernel_entry(at, virt);
                }
                break;
            }
            self.set_used(table >> 12, false);
        }
    }

    /// A free frame's address, marked used: the first free one from
    /// where the last was found (panics when RAM is full).
    pub fn alloc(&mut self) -> u64 {
        let total = self.hello.total_frames;
        for k in 0..total {
            let f = (self.next + k) % total;
            if !self.used(f) {
                self.next = f + 1;
                self.set_used(f, true);
                return f << 12;
            }
        }
        panic!("the synthetic machine is out of frames");
    }
}
