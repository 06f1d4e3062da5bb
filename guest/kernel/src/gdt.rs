//! The long-mode GDT and TSS, with interrupt stacks (IST) for the
//! exceptions that must not run on a possibly broken stack.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// IST slot (0-based, as the `x86_64` crate counts) of the double fault.
pub const DOUBLE_FAULT_IST: u16 = 0;
/// IST slot of the NMI.
pub const NMI_IST: u16 = 1;
/// IST slot of the machine check.
pub const MACHINE_CHECK_IST: u16 = 2;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; IST_STACK_SIZE]);

static mut IST_STACKS: [Stack; 3] = [const { Stack([0; IST_STACK_SIZE]) }; 3];

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

struct Selectors {
    code: SegmentSelector,
    data: SegmentSelector,
    tss: SegmentSelector,
}

/// Top (one past the end) of IST stack `i`.
fn stack_top(i: usize) -> VirtAddr {
    // SAFETY: only the address is taken; the stacks are used by the CPU
    // alone, through the TSS.
    let base = unsafe { core::ptr::addr_of!(IST_STACKS[i]) } as u64;
    VirtAddr::new(base + IST_STACK_SIZE as u64)
}

/// Loads the GDT and the TSS and reloads every segment register. Call once,
/// early (the boot GDT sits in the identity map, which goes away).
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.interrupt_stack_table[DOUBLE_FAULT_IST as usize] = stack_top(0);
        tss.interrupt_stack_table[NMI_IST as usize] = stack_top(1);
        tss.interrupt_stack_table[MACHINE_CHECK_IST as usize] = stack_top(2);
        tss
    });
    let (gdt, sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (gdt, Selectors { code, data, tss })
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors are
    // a valid 64-bit code segment, a data segment and the TSS (which lives
    // in a static for good).
    unsafe {
        CS::set_reg(sel.code);
        DS::set_reg(sel.data);
        ES::set_reg(sel.data);
        SS::set_reg(sel.data);
        load_tss(sel.tss);
    }
}
