//! PVH entry: from QEMU's 32-bit protected-mode hand-off to `kmain` in long
//! mode, and the `hvm_start_info` it hands over.
//!
//! QEMU finds the entry in the ELF note `Xen`/18 (XEN_ELFNOTE_PHYS32_ENTRY),
//! loads the image at its physical addresses and jumps there with paging off
//! and `ebx` = physical address of `hvm_start_info`. The entry code (linked
//! at 1 MiB, VMA = LMA) builds the boot page tables — identity map of the
//! first GiB and the same GiB at `KERNEL_BASE` (2 MiB pages, one shared page
//! directory) — enables PAE, EFER.LME/NXE, paging and CR0.WP, far-jumps to
//! 64-bit code, switches to the higher-half boot stack and calls `kmain` with
//! the start-info address. `paging::init` later drops the identity map.

use core::arch::global_asm;

use vmm_core::layout::KERNEL_BASE;

/// `hvm_start_info.magic`.
pub const HVM_START_MAGIC: u32 = 0x336e_c578;

/// Bytes of the boot stack (`kmain` and everything it calls run on it).
pub const BOOT_STACK_SIZE: usize = 256 * 1024;

global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_start32
    .p2align 2

    .section .boot.text, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %edi
    cmpl ${magic}, (%ebx)
    jne 9f

    /* PML4[0] -> low PDPT, PML4[511] -> high PDPT */
    mov $boot_pdpt_low, %eax
    or $0x3, %eax
    mov %eax, boot_pml4
    mov $boot_pdpt_high, %eax
    or $0x3, %eax
    mov %eax, boot_pml4 + 511 * 8
    /* low PDPT[0] and high PDPT[510] -> the shared PD */
    mov $boot_pd, %eax
    or $0x3, %eax
    mov %eax, boot_pdpt_low
    mov %eax, boot_pdpt_high + 510 * 8
    /* PD: 512 present writable 2 MiB pages, physical 0..1 GiB */
    xor %ecx, %ecx
1:
    mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, boot_pd(, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jne 1b

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax          /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx   /* EFER */
    rdmsr
    or $0x900, %eax         /* LME | NXE */
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax    /* PG | WP | PE */
    mov %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $pvh_start64

9:  /* not a PVH start: exit as a panic */
    mov $0xf4, %dx
    mov ${exit_panic}, %eax
    out %eax, %dx
8:
    hlt
    jmp 8b

    .code64
pvh_start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    movabs $boot_stack_top, %rsp
    xor %ebp, %ebp
    mov %edi, %edi          /* zero-extend the start-info address */
    movabs $kmain, %rax
    call *%rax
    ud2

    .section .boot.data, "aw"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .boot.bss, "aw", @nobits
    .p2align 12
    .global boot_pml4, boot_pdpt_low, boot_pdpt_high, boot_pd
boot_pml4:
    .skip 4096
boot_pdpt_low:
    .skip 4096
boot_pdpt_high:
    .skip 4096
boot_pd:
    .skip 4096

    .section .bss.boot_stack, "aw", @nobits
    .p2align 12
    .global boot_stack_guard
boot_stack_guard:           /* left unmapped: an overflow faults */
    .skip 4096
boot_stack_bottom:
    .skip {stack_size}
boot_stack_top:

    .text
    "#,
    magic = const HVM_START_MAGIC,
    exit_panic = const protocol::EXIT_PANIC,
    stack_size = const BOOT_STACK_SIZE,
    options(att_syntax)
);

unsafe extern "C" {
    static boot_pml4: u8;
    static boot_pd: u8;
    static __kernel_start_phys: u8;
    static __kernel_end_phys: u8;
}

/// Physical address of the boot PML4 (the PML4 for good: CR3).
pub fn pml4_phys() -> u64 {
    // The symbol is linked at its physical address (boot section, VMA = LMA).
    core::ptr::addr_of!(boot_pml4) as u64
}

/// Physical address of the boot page directory shared by the identity map
/// and the kernel image map.
pub fn pd_phys() -> u64 {
    core::ptr::addr_of!(boot_pd) as u64
}

/// The kernel image in physical memory, `start..end` (end page aligned):
/// boot code, text, data, bss, stacks, boot page tables, the early heap.
pub fn kernel_image() -> (u64, u64) {
    // Linker-script symbols: only their values (addresses) mean something.
    (
        core::ptr::addr_of!(__kernel_start_phys) as u64,
        core::ptr::addr_of!(__kernel_end_phys) as u64,
    )
}

/// Virtual address of physical `phys` in the kernel image map, which covers
/// the first GiB during boot and the image afterwards.
pub fn kernel_virt(phys: u64) -> u64 {
    KERNEL_BASE + phys
}

/// Physical address of a static of the kernel image (virtual `virt` in the
/// kernel image map).
pub fn kernel_phys(virt: u64) -> u64 {
    virt - KERNEL_BASE
}

/// One entry of the `hvm_start_info` memory map (E820 types).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct MemmapEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
    pub reserved: u32,
}

/// E820 type of usable RAM.
pub const E820_RAM: u32 = 1;

/// Most memory-map entries kept.
pub const MAX_MEMMAP: usize = 128;

/// The memory map QEMU handed over, copied out of firmware memory.
#[derive(Debug)]
pub struct BootInfo {
    pub memmap: [MemmapEntry; MAX_MEMMAP],
    pub entries: usize,
    /// The first boot module (QEMU's `-initrd`): the host's file blob.
    pub module: Option<protocol::PhysRange>,
}

impl BootInfo {
    /// The entries QEMU gave.
    pub fn memmap(&self) -> &[MemmapEntry] {
        &self.memmap[..self.entries]
    }
}

/// Reads `hvm_start_info` at physical `start_info` (and the memory map it
/// points to) through the boot identity map.
///
/// # Safety
/// The identity map of the first GiB must still be in place, and
/// `start_info` must be the address QEMU passed in `ebx` (its magic was
/// checked by the entry code).
pub unsafe fn read_start_info(start_info: u64) -> BootInfo {
    const LOW_LIMIT: u64 = 1 << 30;
    assert!(
        start_info + 56 <= LOW_LIMIT,
        "hvm_start_info at {start_info:#x} is above the boot identity map"
    );
    let p = start_info as *const u8;
    // SAFETY: the caller guarantees the structure is there and identity
    // mapped (checked above to lie in the mapped GiB); fields are read
    // unaligned because QEMU promises nothing about alignment.
    let (version, memmap_paddr, memmap_entries) = unsafe {
        (
            core::ptr::read_unaligned(p.add(4) as *const u32),
            core::ptr::read_unaligned(p.add(40) as *const u64),
            core::ptr::read_unaligned(p.add(48) as *const u32),
        )
    };
    assert!(
        version >= 1,
        "hvm_start_info version {version} has no memory map"
    );
    let n = memmap_entries as usize;
    assert!(
        (1..=MAX_MEMMAP).contains(&n),
        "hvm_start_info has {n} memory-map entries"
    );
    let size = (n * core::mem::size_of::<MemmapEntry>()) as u64;
    assert!(
        memmap_paddr + size <= LOW_LIMIT,
        "memory map at {memmap_paddr:#x} is above the boot identity map"
    );
    // SAFETY: as above (the structure is identity mapped); `nr_modules` at
    // 12, `modlist_paddr` at 16.
    let (nr_modules, modlist) = unsafe {
        (
            core::ptr::read_unaligned(p.add(12) as *const u32),
            core::ptr::read_unaligned(p.add(16) as *const u64),
        )
    };
    let module = (nr_modules > 0 && modlist != 0 && modlist + 16 <= LOW_LIMIT).then(|| {
        let m = modlist as *const u64;
        // SAFETY: the first `hvm_modlist_entry` (paddr, size, ...) lies in
        // the identity-mapped GiB (checked just above).
        let (paddr, size) = unsafe {
            (
                core::ptr::read_unaligned(m),
                core::ptr::read_unaligned(m.add(1)),
            )
        };
        protocol::PhysRange {
            start: paddr,
            end: paddr.saturating_add(size),
        }
    });
    let mut info = BootInfo {
        memmap: [MemmapEntry::default(); MAX_MEMMAP],
        entries: n,
        module,
    };
    let src = memmap_paddr as *const MemmapEntry;
    for (i, slot) in info.memmap[..n].iter_mut().enumerate() {
        // SAFETY: entry `i < n` of the map lies in identity-mapped memory
        // (checked above); read unaligned for the same reason.
        *slot = unsafe { core::ptr::read_unaligned(src.add(i)) };
    }
    info
}
