//! A test builder of synthetic guest memory: page tables, frame bitmap and
//! data laid out by hand in a byte vector.

use protocol::{Hello, PhysRange, VirtRange};

use super::entry::{P, U, W};
use super::memory::ImageMemory;

/// Frames of the image's RAM (the bitmap's last 4 bits are past it).
pub const TOTAL: u64 = 1020;
/// Frames 0..16 are boot reserved (the PML4 at 0x1000, the bitmap at 0x2000).
pub const BOOT: u64 = 16;
pub const KSPACE: u64 = 0xffff_c080_0000_0000;

/// Present usable RAM, software bits 9–11 = 0b001.
pub const RAM: u64 = P | 1 << 9;

pub struct Image {
    pub mem: ImageMemory,
    pub hello: Hello,
    next: u64,
}

impl Image {
    /// 4 MiB of memory, boot frames and the bitmap's tail marked used.
    pub fn new() -> Self {
        Image::sized(TOTAL, 1024)
    }

    /// `frames` frames of memory of which `total` are RAM.
    pub fn sized(total: u64, frames: u64) -> Self {
        let hello = Hello {
            protocol_version: protocol::PROTOCOL_VERSION,
            ram_bytes: total * 4096,
            total_frames: total,
            boot_free_frames: total - BOOT,
            page_table_root: 0x1000,
            direct_map_offset: 0xffff_8000_0000_0000,
            frame_bitmap: PhysRange {
                start: 0x2000,
                end: 0x2000 + frames / 8,
            },
            boot_reserved: vec![PhysRange {
                start: 0,
                end: BOOT * 4096,
            }],
            kernel_image: PhysRange {
                start: 0x8000,
                end: 0x10000,
            },
            user_space: VirtRange {
                start: 0,
                end: 0x0000_8000_0000_0000,
            },
            kernel_space: VirtRange {
                start: KSPACE,
                end: 0xffff_ff80_0000_0000,
            },
            heap: VirtRange {
                start: 0xffff_c0a0_0000_0000,
                end: 0xffff_c0a0_0200_0000,
            },
            valloc: VirtRange {
                start: 0xffff_c0c0_0000_0000,
                end: 0xffff_c0c0_0010_0000,
            },
            reserved_pml4_slots: vec![256, 511],
            files: vec![],
            swap: PhysRange { start: 0, end: 0 },
            frame_info: PhysRange { start: 0, end: 0 },
            heap_max_bytes: 0x1000,
            ring: PhysRange { start: 0, end: 0 },
            coverage: None,
        };
        let mut image = Image {
            mem: ImageMemory {
                base: 0,
                bytes: vec![0; (frames * 4096) as usize],
            },
            hello,
            next: BOOT,
        };
        for f in (0..BOOT).chain(total..frames) {
            image.set_used(f, true);
        }
        // The kernel's own slot 511 holds a huge page: never walked.
        image.write_u64(0x1000 + 511 * 8, 0x20_0000 | P | W | 1 << 7);
        image
    }

    pub fn set_used(&mut self, frame: u64, used: bool) {
        let byte = &mut self.mem.bytes[0x2000 + (frame / 8) as usize];
        let bit = 1u8 << (frame % 8);
        if used {
            *byte |= bit;
        } else {
            *byte &= !bit;
        }
    }

    /// The next free frame's address, marked used.
    pub fn alloc(&mut self) -> u64 {
        let f = self.next;
        self.next += 1;
        self.set_used(f, true);
        f << 12
    }

    pub fn read_u64(&self, phys: u64) -> u64 {
        let p = phys as usize;
        u64::from_le_bytes(self.mem.bytes[p..p + 8].try_into().expect("8 bytes"))
    }

    pub fn write_u64(&mut self, phys: u64, v: u64) {
        let p = phys as usize;
        self.mem.bytes[p..p + 8].copy_from_slice(&v.to_le_bytes());
    }

    pub fn write(&mut self, phys: u64, bytes: &[u8]) {
        let p = phys as usize;
        self.mem.bytes[p..p + bytes.len()].copy_from_slice(bytes);
    }

    /// The physical address of `virt`'s entry at `level` (4 = PML4 … 1 =
    /// PT), creating the tables above it.
    pub fn entry_addr(&mut self, virt: u64, level: u32) -> u64 {
        let user = if virt < 0x0000_8000_0000_0000 { U } else { 0 };
        let mut table = self.hello.page_table_root;
        for l in (level + 1..=4).rev() {
            let at = table + ((virt >> (12 + 9 * (l - 1))) & 511) * 8;
            let mut e = self.read_u64(at);
            if e == 0 {
                e = self.alloc() | P | W | user;
                self.write_u64(at, e);
            }
            table = e & 0x000f_ffff_ffff_f000;
        }
        table + ((virt >> (12 + 9 * (level - 1))) & 511) * 8
    }

    /// Sets `virt`'s level-1 entry, keeping the present count of the PD
    /// entry above it (`protocol::formats`).
    pub fn set_leaf(&mut self, virt: u64, raw: u64) {
        let at = self.entry_addr(virt, 1);
        let old = self.read_u64(at);
        self.write_u64(at, raw);
        let pd = self.entry_addr(virt, 2);
        let e = self.read_u64(pd);
        let count = (e >> 52) & 0x3ff;
        let count = count + (raw & P) - (old & P);
        self.write_u64(pd, (e & !(0x3ff << 52)) | count << 52);
    }

    /// Maps `virt` as present RAM on a new frame; answers the frame.
    pub fn map(&mut self, virt: u64, writable: bool) -> u64 {
        let frame = self.alloc();
        let user = if virt < 0x0000_8000_0000_0000 { U } else { 0 };
        let w = if writable { W } else { 0 };
        self.set_leaf(virt, frame | RAM | w | user);
        frame
    }
}
