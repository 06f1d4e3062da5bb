//! The simulated machine: the VMM over [`SimMemory`], touches that emulate
//! the CPU (with its TLB, walking the tables from its CR3), and the
//! handshake a kernel would report.

use crate::conv::usize_of;
use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use protocol::{FaultReason, Hello, PhysRange, VirtRange};
use x86_64::structures::paging::PhysFrame;

use crate::backend::FrameAccess;
use crate::frames::{frame_at, BitmapFrameAllocator};
use crate::layout;
use crate::machine::Machine;
use crate::pte;
use crate::sim::Cached;
use crate::vmm::Vmm;

use super::memory::SimMemory;

/// Frames reserved at boot in the simulated machine: frame 0, the PML4
/// (frame 1) and two stand-ins for the kernel's own tables (frames 2, 3)
/// that PML4 slots 256 and 511 point at.
pub const SIM_BOOT_FRAMES: u64 = 4;
/// The raw PML4 entries of the kernel's slots 256 and 511 in the simulation.
pub const SIM_KERNEL_SLOTS: [(usize, u64); 2] = [(256, 0x2003), (511, 0x3003)];

/// A simulated machine: the VMM over [`SimMemory`], touches emulating the
/// CPU.
#[derive(Debug)]
pub struct SimMachine {
    /// The VMM.
    pub vmm: Vmm<SimMemory>,
    hello: Hello,
    touched: crate::touched::Touched,
}

impl SimMachine {
    /// A machine with `total_frames` frames of RAM (at least 16).
    pub fn new(total_frames: u64) -> Self {
        Self::with_files(total_frames, &[])
    }

    /// A machine with `total_frames` frames of RAM (at least 16) and the
    /// files `(pages, seed)` (byte `o` of a file is
    /// `protocol::pattern::pattern_byte(seed, o)`), their images in the
    /// frames right after the boot frames (boot reservations).
    pub fn with_files(total_frames: u64, files: &[(u64, u64)]) -> Self {
        Self::build(total_frames, files, true)
    }

    /// A machine as in protocol version 1: no swap store and no heap, so
    /// nothing can be reclaimed and out of memory comes exactly when the
    /// free frames do not suffice.
    pub fn without_reclaim(total_frames: u64) -> Self {
        Self::build(total_frames, &[], false)
    }

    fn build(total_frames: u64, files: &[(u64, u64)], reclaim: bool) -> Self {
        let image_frames: u64 = files.iter().map(|f| f.0).sum();
        let total = total_frames
            .max(16)
            .max(SIM_BOOT_FRAMES + image_frames + 16);
        let mut mem = SimMemory::new(total);
        let mut images = Vec::new();
        let mut next = SIM_BOOT_FRAMES;
        for &(pages, seed) in files {
            for p in 0..pages {
                let bytes = mem.frame_bytes(frame_at(next + p));
                protocol::pattern::fill(seed, p * 4096, bytes);
            }
            images.push(crate::config::FileImage {
                pages,
                start: next * 4096,
            });
            next += pages;
        }
        let images: &'static [crate::config::FileImage] = Box::leak(images.into_boxed_slice());
        let pml4 = frame_at(1);
        for (slot, raw) in SIM_KERNEL_SLOTS {
            pte::set_raw(&mut mem.table(pml4)[slot], raw);
        }
        mem.start_at(pml4);
        let bitmap: &'static mut [u8] =
            Box::leak(vec![0u8; usize_of(total.div_ceil(8))].into_boxed_slice());
        let reserved = [PhysRange {
            start: 0,
            end: next * 4096,
        }];
        let ram = [PhysRange {
            start: 0,
            end: total * 4096,
        }];
        let boot: &'static mut [u8] =
            Box::leak(vec![0u8; usize_of(total.div_ceil(8))].into_boxed_slice());
        let zero: &'static mut [u8] =
            Box::leak(vec![0u8; usize_of(total.div_ceil(8))].into_boxed_slice());
        let frames =
            BitmapFrameAllocator::new(bitmap, boot, total, &ram, &reserved).with_zero_record(zero);
        let mut config = crate::config::Config {
            files: images,
            ..crate::config::Config::for_frames(total)
        };
        if !reclaim {
            config.swap_frames = 0;
            config.heap_max_bytes = 0;
        }
        // As the kernel: the VMM writes free RAM and its PML4, reads the
        // file images, and is refused frame 0 and the kernel's tables.
        let file_frames = SIM_BOOT_FRAMES..next;
        mem.restrict(&[1..2, next..total], core::slice::from_ref(&file_frames));
        let vmm = Vmm::with_config(mem, frames, pml4, config);
        let meta = vmm.metadata_range();
        let hello = Hello {
            protocol_version: protocol::PROTOCOL_VERSION,
            ram_bytes: total * 4096,
            total_frames: total,
            boot_free_frames: vmm.stats().boot_free_frames,
            page_table_root: pml4.start_address().as_u64(),
            max_spaces: layout::MAX_SPACES,
            direct_map_offset: layout::DIRECT_MAP_OFFSET,
            frame_bitmap: PhysRange { start: 0, end: 0 },
            boot_reserved: vec![reserved[0], meta],
            kernel_image: PhysRange { start: 0, end: 0 },
            user_space: VirtRange {
                start: layout::USER_START,
                end: layout::USER_END,
            },
            kernel_space: VirtRange {
                start: layout::KERNEL_SPACE_START,
                end: layout::KERNEL_SPACE_END,
            },
            heap: VirtRange {
                start: layout::HEAP_START,
                end: layout::HEAP_END,
            },
            valloc: VirtRange {
                start: layout::VALLOC_START,
                end: layout::VALLOC_START + layout::VALLOC_PAGES * 4096,
            },
            reserved_pml4_slots: vec![layout::DIRECT_MAP_PML4_SLOT, layout::KERNEL_PML4_SLOT],
            files: images
                .iter()
                .map(|f| protocol::FileInfo {
                    pages: f.pages,
                    image: PhysRange {
                        start: f.start,
                        end: f.start + f.pages * 4096,
                    },
                })
                .collect(),
            swap: vmm.swap_range(),
            frame_info: vmm.frame_info_range(),
            heap_max_bytes: vmm.heap_max_bytes(),
            ring: PhysRange { start: 0, end: 0 },
            coverage: None,
        };
        SimMachine {
            vmm,
            hello,
            touched: Default::default(),
        }
    }

    /// Runs the CPU's access to the bytes `addr..addr + len`, page by page:
    /// `access(vmm, frame, offset, chunk_addr, chunk_len)` for every chunk.
    fn touch(
        &mut self,
        addr: u64,
        len: u64,
        write: bool,
        mut access: impl FnMut(&mut Vmm<SimMemory>, PhysFrame, usize, u64, usize),
    ) -> Result<(), (u64, FaultReason)> {
        let end = addr.checked_add(len).ok_or((addr, FaultReason::Unusable))?;
        let mut at = addr;
        while at < end {
            let page_end = (at | 0xfff).saturating_add(1).min(end);
            let chunk = usize_of(page_end - at);
            let mut tries = 0;
            let page = at & !0xfff;
            let frame = loop {
                // The TLB first, as the CPU does; a miss walks the tables
                // from CR3.
                match self.vmm.mem().tlb.get(&page) {
                    Some(c) if c.writable || !write => break c.frame,
                    _ => {}
                }
                match self.vmm.mem().cpu_translate(at) {
                    Some((frame, writable)) if writable || !write => {
                        let cached = Cached::new(frame, writable);
                        self.vmm.mem().tlb.insert(page, cached);
                        break frame;
                    }
                    _ => {}
                }
                // A page fault: the kernel's handler runs.
                tries += 1;
                if tries > 2 {
                    panic!("fault at {at:#x} resolved but the page is still not accessible");
                }
                self.vmm.handle_fault(at, write).map_err(|r| (at, r))?;
                // As the kernel's handler: the touch's next pages too.
                self.vmm
                    .fault_around(at, end, write, crate::FAULT_AROUND_PAGES);
            };
            // The first write through a TLB entry sets the dirty bit.
            let mem = self.vmm.mem();
            let first_write = |c: &mut Cached| !core::mem::replace(&mut c.dirty, true);
            if write && mem.tlb.get_mut(&page).is_some_and(first_write) {
                mem.cpu_set_dirty(at);
            }
            access(&mut self.vmm, frame, (at & 0xfff) as usize, at, chunk);
            at = page_end;
        }
        Ok(())
    }
}

impl Machine for SimMachine {
    type Mem = SimMemory;
    type Frames = BitmapFrameAllocator;

    fn hello(&mut self) -> Hello {
        self.hello.clone()
    }

    fn with_vmm<R>(&mut self, f: impl FnOnce(&mut Vmm<SimMemory>) -> R) -> R {
        f(&mut self.vmm)
    }

    fn touch_write(&mut self, addr: u64, len: u64, seed: u64) -> Result<(), (u64, FaultReason)> {
        self.touch(addr, len, true, |vmm, frame, off, at, n| {
            let bytes = vmm.mem().cpu_bytes(frame);
            protocol::pattern::fill(seed, at, &mut bytes[off..off + n]);
        })
    }

    fn touch_read(&mut self, addr: u64, len: u64) -> Result<u32, (u64, FaultReason)> {
        let mut sum = protocol::pattern::Checksum::new();
        self.touch(addr, len, false, |vmm, frame, off, _, n| {
            sum.update(&vmm.mem().cpu_bytes(frame)[off..off + n]);
        })?;
        Ok(sum.finish())
    }

    fn probe(&mut self, addr: u64) -> bool {
        let page = addr & !0xfff;
        if self.vmm.mem().tlb.contains_key(&page) {
            return true;
        }
        match self.vmm.mem().cpu_translate(addr) {
            Some((frame, writable)) => {
                self.vmm
                    .mem()
                    .tlb
                    .insert(page, Cached::new(frame, writable));
                true
            }
            None => false,
        }
    }

    fn touched(&mut self) -> &mut crate::touched::Touched {
        &mut self.touched
    }

    fn panic_now(&mut self) -> ! {
        panic!("panic requested by host")
    }

    fn shutdown(&mut self) -> ! {
        panic!("shutdown requested by host")
    }
}
