//! The operations of protocol version 2 that need more than a page range:
//! `map_file` aimed at the files the guest booted with, `evict` aimed at
//! where data lives, and the kernel heap
//! (`kmalloc`, `kfree`, touches of host blocks) aimed at the blocks the
//! guest handed out.

use protocol::{Privilege, MAX_KMALLOC_ALIGN, PAGE_SIZE};
use rand::seq::IndexedRandom;
use rand::Rng;

use super::{remember, Generator};
use crate::op::Op;

impl Generator {
    /// `map_file`: mostly a window that fits one of the guest's files, on a
    /// range used before or a fresh one; sometimes a window past the
    /// file's end, a file the guest does not have, or an empty window.
    pub(super) fn map_file(&mut self) -> Op {
        let files = &self.config.files;
        let (file, file_pages) = match files.len() {
            0 => (self.rng.random_range(0..2), 0),
            n if self.rng.random_bool(0.93) => {
                let i = self.rng.random_range(0..n);
                (i as u8, files[i].pages)
            }
            // Just past the last file, or anywhere.
            n if self.rng.random_bool(0.5) => (u8::try_from(n).unwrap_or(u8::MAX), 0),
            _ => (self.rng.random(), 0),
        };
        let (mut addr, mut pages, privilege) = self.range();
        let file_page;
        if file_pages > 0 && self.rng.random_bool(0.85) {
            // A window inside the file: its start and length drawn so that
            // small windows, the whole file and the file's last page all
            // come up.
            let start = match self.rng.random_range(0..4) {
                0 => 0,
                1 => file_pages - 1,
                _ => self.rng.random_range(0..file_pages),
            };
            let room = file_pages - start;
            pages = match self.rng.random_range(0..4) {
                0 => room,
                1 => 1,
                _ => self.rng.random_range(1..=room.min(64)),
            };
            file_page = start;
            // Often where nothing lives yet (`map_file` needs unusable
            // pages): a range just past one used before.
            if let Some(&(a, p)) = self.ranges.choose(&mut self.rng) {
                if self.rng.random_bool(0.4) && p < 1 << 20 {
                    addr = a.wrapping_add(p * PAGE_SIZE) & !(PAGE_SIZE - 1);
                }
            }
            remember(&mut self.ranges, (addr, pages));
            self.backs(addr, pages);
        } else {
            // Past the end: the file's page count (or beyond), or a window
            // whose `file_page + pages` overflows.
            file_page = match self.rng.random_range(0..3) {
                0 => file_pages,
                1 => file_pages.saturating_sub(pages.min(file_pages)) + 1,
                _ => u64::MAX - self.rng.random_range(0..4),
            };
        }
        Op::MapFile {
            addr,
            pages,
            file,
            file_page,
            privilege,
        }
    }

    /// `evict`: mostly a range where data lives (a map, a convert to
    /// usable RAM, a map_file: whole, or a part of it), else any range.
    pub(super) fn evict(&mut self) -> Op {
        let (addr, pages, privilege) = match self.backed.choose(&mut self.rng).copied() {
            Some((a, p)) if self.rng.random_bool(0.7) => {
                let skip = self.rng.random_range(0..p.max(1));
                let (addr, pages) = if self.rng.random_bool(0.5) {
                    (a, p)
                } else {
                    (
                        a.wrapping_add(skip * PAGE_SIZE),
                        self.rng.random_range(1..=p - skip),
                    )
                };
                (addr, pages, self.privilege_for(addr))
            }
            _ => self.range(),
        };
        Op::Evict {
            addr,
            pages,
            privilege,
        }
    }

    /// `kmalloc`: small and page-sized blocks, alignments from 1 to past
    /// the largest allowed, sometimes zero bytes, sizes at the heap's
    /// limits (all of it, half of it and a page more or less: the host's
    /// blocks may only take the upper half) or more than the heap.
    pub(super) fn kmalloc(&mut self) -> Op {
        let heap = self.targets.heap_bytes;
        let size = match self.rng.random_range(0..22) {
            0..10 => self.rng.random_range(1..=256),
            10..16 => self.rng.random_range(257..=3 * PAGE_SIZE),
            16..18 => PAGE_SIZE * self.rng.random_range(1..=64),
            18 => 0,
            19 => *[u64::MAX, 1 << 40, self.targets.ram_pages * PAGE_SIZE]
                .choose(&mut self.rng)
                .unwrap_or(&u64::MAX),
            _ => *[
                heap,
                heap - PAGE_SIZE,
                heap / 2,
                heap / 2 + PAGE_SIZE,
                heap / 2 - 16,
            ]
            .choose(&mut self.rng)
            .unwrap_or(&heap),
        };
        let align = match self.rng.random_range(0..20) {
            0..16 => {
                1 << self
                    .rng
                    .random_range(0..=MAX_KMALLOC_ALIGN.trailing_zeros())
            }
            16 => MAX_KMALLOC_ALIGN * 2,
            17 => 0,
            _ => self.rng.random_range(3..=MAX_KMALLOC_ALIGN) | 1,
        };
        Op::Kmalloc {
            size,
            align,
            privilege: self.kernel_only(),
        }
    }

    /// `kfree`: mostly a live block (forgotten at once: whether the guest
    /// accepts it is the judge's business), sometimes one freed before, a
    /// block's inside, or any address.
    pub(super) fn kfree(&mut self) -> Op {
        let privilege = self.kernel_only();
        let roll = self.rng.random_range(0..10);
        let addr = if roll < 7 && !self.blocks.is_empty() {
            let i = self.rng.random_range(0..self.blocks.len());
            let (addr, _) = if privilege == Privilege::Kernel {
                self.blocks.remove(i)
            } else {
                self.blocks[i]
            };
            if privilege == Privilege::Kernel {
                remember(&mut self.freed_blocks, addr);
            }
            addr
        } else if roll < 8 && !self.freed_blocks.is_empty() {
            *self.freed_blocks.choose(&mut self.rng).unwrap_or(&0)
        } else if roll < 9 && !self.blocks.is_empty() {
            let &(addr, size) = self.blocks.choose(&mut self.rng).unwrap_or(&(0, 0));
            addr.wrapping_add(self.rng.random_range(1..=size.clamp(1, 64)))
        } else {
            self.range().0
        };
        Op::Kfree { addr, privilege }
    }

    /// A byte range for a touch of a live heap block: inside it, the whole
    /// block, or running a little past its end (which must be refused).
    /// Blocks are what the guest answered, so the arithmetic wraps: a
    /// buggy answer must not crash the generator.
    pub(super) fn block_bytes(&mut self) -> (u64, u64) {
        let &(addr, size) = self.blocks.choose(&mut self.rng).unwrap_or(&(0, 1));
        let size = size.max(1);
        match self.rng.random_range(0..10) {
            0..4 => (addr, size),
            4..8 => {
                let off = self.rng.random_range(0..size);
                (
                    addr.wrapping_add(off),
                    self.rng.random_range(1..=size - off),
                )
            }
            8 => (
                addr,
                size.saturating_add(self.rng.random_range(1..=PAGE_SIZE)),
            ),
            _ => (addr.wrapping_sub(1), 2),
        }
    }
}
