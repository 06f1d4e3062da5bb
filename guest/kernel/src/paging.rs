//! The kernel's own mappings and physical memory access.
//!
//! After boot the PML4 holds exactly two kinds of kernel entries:
//! - slot 256: the direct map of all RAM at `DIRECT_MAP_OFFSET + phys`
//!   (a 1 GiB page for each GiB that is RAM throughout, when the CPU has
//!   them; 2 MiB pages for the rest; tables are statics of the image), and
//!   of the I/O and local APICs' registers (uncached 2 MiB pages, `irq`);
//! - slot 511: the kernel image at `KERNEL_BASE + phys` (4 KiB pages with
//!   per-section permissions: `image_map`).
//!
//! The lower half (slots 0–255) is empty and belongs to the VMM, as does the
//! kernel space between the two. The VMM's other address spaces copy the
//! boot PML4's kernel half (these two slots included) into PML4s of their
//! own, so the kernel runs unchanged in any space
//! ([`DirectMap`]'s `load_root` checks the two slots before a switch).

use alloc::vec::Vec;
use core::ops::Range;

use protocol::PhysRange;
use x86_64::instructions::tlb;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{Page, PageTable, PageTableFlags as F, PhysFrame};
use x86_64::PhysAddr;

use vmm_core::conv::usize_of;
use vmm_core::layout::{
    direct_map_gib_page, DIRECT_MAP_OFFSET, DIRECT_MAP_PML4_SLOT, GIB, HEAP_START, KERNEL_BASE,
    KERNEL_PML4_SLOT,
};
use vmm_core::pte::ACCESSED;
use vmm_core::FrameRefused;

use crate::memory::PhysLayout;
use crate::{boot, image_map};

const HUGE: u64 = 2 << 20;

/// GiB of physical address space the direct map can cover.
pub const DIRECT_MAP_GIB: usize = 64;

#[repr(C, align(4096))]
struct DirectTables {
    pdpt: PageTable,
    pds: [PageTable; DIRECT_MAP_GIB],
}

static mut DIRECT: DirectTables = DirectTables {
    pdpt: PageTable::new(),
    pds: [const { PageTable::new() }; DIRECT_MAP_GIB],
};

/// The APICs' registers (`irq`), which the direct map maps uncached.
const MMIO_PAGES: [u64; 2] = [crate::irq::IOAPIC_PHYS, crate::irq::LAPIC_PHYS];

/// Whether the CPU maps 1 GiB pages (CPUID 8000_0001h, EDX bit 26,
/// `pdpe1gb`; the runner asks QEMU for it).
fn cpu_has_gib_pages() -> bool {
    use core::arch::x86_64::__cpuid;
    // The extended leaves the CPU has: 8000_0001h must be among them.
    __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).edx & (1 << 26) != 0
}

/// Physical address of a static of the kernel image.
fn image_phys<T>(p: *const T) -> u64 {
    p as u64 - KERNEL_BASE
}

/// The table at physical `phys` inside the kernel image, through the kernel
/// image map.
///
/// # Safety
/// `phys` must be a page table of the kernel image (boot tables), and no
/// other reference to it may be live.
unsafe fn image_table(phys: u64) -> &'static mut PageTable {
    // SAFETY: the kernel image map covers the image at KERNEL_BASE + phys;
    // exclusivity is the caller's promise.
    unsafe { &mut *(boot::kernel_virt(phys) as *mut PageTable) }
}

/// Virtual address of physical `phys` in the direct map.
pub fn phys_to_virt(phys: u64) -> u64 {
    DIRECT_MAP_OFFSET + phys
}

/// Builds the direct map, drops the identity map and narrows the kernel
/// image map to the image (`image_map`).
///
/// # Safety
/// Call once at boot, after `gdt::init` and `interrupts::init` (nothing may
/// use an identity-mapped address afterwards) and after the start info was
/// read.
pub unsafe fn init(layout: &PhysLayout) {
    let top = layout.total_frames * 4096;
    assert!(
        top <= DIRECT_MAP_GIB as u64 * GIB,
        "RAM up to {top:#x} is beyond the {DIRECT_MAP_GIB} GiB the direct map covers"
    );
    // SAFETY: kmain calls this once, before anything else refers to DIRECT.
    let direct = unsafe { &mut *core::ptr::addr_of_mut!(DIRECT) };
    let table = F::PRESENT | F::WRITABLE;
    let huge = F::PRESENT | F::WRITABLE | F::HUGE_PAGE | F::NO_EXECUTE;
    // A GiB that is RAM throughout is one 1 GiB page, so the direct map
    // has a handful of entries whatever the RAM size (QEMU's `info tlb`,
    // which every full check reads, lists one line per entry). A GiB
    // with a hole, or the APICs' registers, keeps 2 MiB pages over its
    // RAM, as before (so a 1 GiB page never maps a hole write-back).
    let gib_pages = cpu_has_gib_pages();
    let whole_gib = |gib: u64| direct_map_gib_page(&layout.ram, &MMIO_PAGES, gib_pages, gib);
    for r in &layout.ram {
        let mut chunk = r.start / HUGE * HUGE;
        while chunk < r.end {
            let gib = chunk / GIB;
            let slot = usize_of(gib);
            if whole_gib(gib) {
                direct.pdpt[slot].set_addr(PhysAddr::new(gib * GIB), huge);
                chunk = (gib + 1) * GIB;
                continue;
            }
            let pd_phys = image_phys(&direct.pds[slot]);
            direct.pdpt[slot].set_addr(PhysAddr::new(pd_phys), table);
            direct.pds[slot][usize_of((chunk % GIB) / HUGE)].set_addr(PhysAddr::new(chunk), huge);
            chunk += HUGE;
        }
    }
    // The APICs' registers, uncached, for `irq` (outside RAM: the
    // allocator never hands these frames out).
    let mmio =
        F::PRESENT | F::WRITABLE | F::HUGE_PAGE | F::NO_EXECUTE | F::NO_CACHE | F::WRITE_THROUGH;
    for phys in MMIO_PAGES {
        let page = phys / HUGE * HUGE;
        let gib = usize_of(page / GIB);
        direct.pdpt[gib].set_addr(PhysAddr::new(image_phys(&direct.pds[gib])), table);
        direct.pds[gib][usize_of((page % GIB) / HUGE)].set_addr(PhysAddr::new(page), mmio);
    }
    let pdpt_phys = image_phys(&direct.pdpt);
    // SAFETY: the boot PML4 and PD are image tables; nothing else holds a
    // reference to them (the CPU uses them, which is what we change).
    let (pml4, pd) = unsafe { (image_table(boot::pml4_phys()), image_table(boot::pd_phys())) };
    pml4[usize::from(DIRECT_MAP_PML4_SLOT)].set_addr(PhysAddr::new(pdpt_phys), table);
    // The stack and every address in use from here on are in the higher
    // half: drop the identity map.
    pml4[0].set_unused();
    let image = (layout.kernel_image.start, layout.kernel_image.end);
    // SAFETY: once at boot; `pd` is the kernel map's directory and `image`
    // the image's range.
    unsafe { image_map::remap(pd, image) };
    tlb::flush_all();
}

/// Physical memory through the direct map (the VMM's `PhysMemory`), for
/// the frames the VMM may use only.
///
/// Each frame the VMM names is checked against the RAM the frame allocator
/// manages (RAM less the boot reservations: the first MiB, the kernel image
/// with its tables, stacks, ring and early heap, the frame bitmap with its
/// boot copy and zero record, the file blob) and the PML4 the VMM was
/// given; the file images are readable only. Anything else (a wrong VMM's
/// corrupted entry, say) is refused, so the VMM's bug is reported instead
/// of written over the kernel.
///
/// Each invalidation is one `invlpg`, at once. (Queueing them and turning
/// more than 32 into one CR3 reload, as Linux does, was measured slower
/// under TCG: a full flush empties QEMU's TLB of the kernel's own code and
/// data too.)
///
/// A switch of address space is a CR3 write of the new space's PML4, once
/// it is checked to be a frame the VMM may write that maps the kernel's
/// own slots (direct map, image) as the boot PML4 does.
#[derive(Debug)]
pub struct DirectMap {
    /// Frame-number ranges the VMM may write, sorted.
    write: Vec<Range<u64>>,
    /// Frame-number ranges the VMM may only read (the file images).
    read: Vec<Range<u64>>,
    /// The range of `write` the last frame found there was in (empty: none
    /// yet). The ranges never change and nearly every frame is in the largest, so a
    /// frame in it needs no search: two compares instead of a scan of the
    /// ranges below it. Measured with QEMU's block counts (`host-runner
    /// coverage --seed 7 --sequences 120 --mutate 0`): the scan made
    /// 6.5 % of the guest's memory accesses, each a software TLB lookup
    /// under TCG; with `hot`, `frame_ptr` makes 37 % of what it made.
    /// (Keeping the boot PML4's one-frame range out of `hot`, which a root
    /// load alternates with the big one, changed the compiler's inlining
    /// and cost 0.6 % more accesses in all.)
    hot: Range<u64>,
    /// The boot PML4 (address space 0's), whose entries for the kernel's
    /// own slots every root loaded into CR3 must hold.
    boot_root: PhysFrame,
}

impl DirectMap {
    /// The direct-map accessor, for the frames of `free` (physical ranges
    /// the frame allocator manages, page aligned, inside the direct map)
    /// and `pml4`, and for reading the frames of `read_only`.
    ///
    /// # Safety
    /// Call once, after [`init`]: whoever holds it may view those frames as
    /// tables or bytes, so it must be the only such accessor (the VMM's),
    /// and nothing else may refer to the frames of `free` but through the
    /// VMM (the allocator hands them out only to it).
    pub unsafe fn new(free: &[PhysRange], pml4: PhysFrame, read_only: &[PhysRange]) -> DirectMap {
        // Whole frames inside each range only, as the allocator counts them.
        let frames = |r: &PhysRange| r.start.div_ceil(4096)..r.end / 4096;
        let pml4_frame = pml4;
        let pml4 = pml4.start_address().as_u64() / 4096;
        let mut write: Vec<Range<u64>> = free.iter().map(frames).collect();
        write.push(pml4..pml4 + 1);
        write.sort_by_key(|r| r.start);
        DirectMap {
            write,
            read: read_only.iter().map(frames).collect(),
            hot: 0..0,
            boot_root: pml4_frame,
        }
    }

    /// The frame's address in the direct map, if the VMM may use it (for
    /// writing if `write`).
    fn frame_ptr(&mut self, frame: PhysFrame, write: bool) -> Result<*mut u8, FrameRefused> {
        let n = frame.start_address().as_u64() / 4096;
        let writable = self.hot.contains(&n)
            || match self.write.iter().find(|r| r.contains(&n)) {
                Some(r) => {
                    self.hot = r.clone();
                    true
                }
                None => false,
            };
        if writable || (!write && self.read.iter().any(|r| r.contains(&n))) {
            Ok(phys_to_virt(frame.start_address().as_u64()) as *mut u8)
        } else {
            Err(FrameRefused { frame, write })
        }
    }
}

// SAFETY: `frame_ptr` answers only frames of the ranges `new` was given
// (`hot` only ever holds a range of `write`):
// RAM the allocator manages (or the VMM's PML4), all inside the direct map
// (`init` maps every RAM range) and referred to by nothing but the VMM, or
// file frames for reading only; each view is one whole frame, borrowed from
// the only `DirectMap`, so one view lives at a time.
unsafe impl vmm_core::PhysMemory for DirectMap {
    fn try_table(&mut self, frame: PhysFrame) -> Result<&mut PageTable, FrameRefused> {
        let p = self.frame_ptr(frame, true)?;
        // SAFETY: a frame the VMM may write (checked above), mapped and
        // aligned (a frame start), unaliased for the borrow of `self`.
        Ok(unsafe { &mut *(p as *mut PageTable) })
    }

    fn try_frame_bytes(&mut self, frame: PhysFrame) -> Result<&mut [u8; 4096], FrameRefused> {
        let p = self.frame_ptr(frame, true)?;
        // SAFETY: as in `try_table`.
        Ok(unsafe { &mut *(p as *mut [u8; 4096]) })
    }

    fn try_frame(&mut self, frame: PhysFrame) -> Result<&[u8; 4096], FrameRefused> {
        let p = self.frame_ptr(frame, false)?;
        // SAFETY: a frame the VMM may read (checked above), mapped; the
        // file images are written by nothing after boot.
        Ok(unsafe { &*(p as *const [u8; 4096]) })
    }

    fn flush(&mut self, page: Page) {
        tlb::flush(page.start_address());
    }

    fn flush_all(&mut self) {
        tlb::flush_all();
    }

    fn load_root(&mut self, root: PhysFrame) {
        let at = root.start_address().as_u64();
        if let Err(e) = self.try_table(root) {
            panic!("{e} (as the root of an address space)");
        }
        // The accessed bit is the CPU's, set in each PML4 on its own.
        let entry = |t: &mut PageTable, slot: usize| vmm_core::pte::raw(&t[slot]) & !ACCESSED;
        // The heap's slot too: the kernel's global allocator lives there,
        // and its PDPT is made at boot and never changes.
        let heap_slot = ((HEAP_START >> 39) & 511) as usize;
        for slot in [
            usize::from(DIRECT_MAP_PML4_SLOT),
            usize::from(KERNEL_PML4_SLOT),
            heap_slot,
        ] {
            let boot = self.boot_root;
            let want = self.try_table(boot).map(|t| entry(t, slot));
            let got = self.try_table(root).map(|t| entry(t, slot));
            assert!(
                want.is_ok() && got == want,
                "VMM bug: root {at:#x} loaded without the kernel's PML4 entry {slot}"
            );
        }
        let (_, flags) = Cr3::read();
        // SAFETY: `root` is a frame the VMM may write (checked above: RAM
        // the allocator manages, or the boot PML4), so no other structure
        // of the kernel lives in it, and its entries for the kernel's own
        // slots (the direct map, the image with every instruction, stack
        // and static the kernel runs on, and the heap its allocator hands
        // out) are the boot PML4's (checked above): every address the
        // kernel uses after the write translates as before it. The rest of
        // its kernel half (the managed kernel space, which the kernel
        // itself never touches) the VMM keeps equal in every root. The
        // flags are CR3's own. The write drops every non-global
        // translation, which is what a switch of space wants.
        unsafe { Cr3::write(root, flags) };
    }
}
