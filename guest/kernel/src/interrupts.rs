//! The IDT: the 32 CPU exceptions and vectors 32–47 for the interrupt
//! controllers (`irq`).
//!
//! Each vector has a `global_asm!` stub that pushes a zero error code when
//! the CPU pushes none, then the vector number, saves every general register
//! and calls [`exception_entry`] with a pointer to the saved [`TrapFrame`];
//! on return it restores the registers (the handler may have changed `rip`
//! for an exception-table fixup), drops vector and error code and `iretq`s.
//! Interrupts are enabled only while the CPU halts waiting for input
//! (`serial::wait`): the serial line's interrupt wakes it, and nothing else
//! is unmasked.

use core::arch::global_asm;

use protocol::{ExceptionReport, GuestMessage};
use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS};
use x86_64::instructions::tables::lidt;
use x86_64::registers::control::Cr2;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use crate::{exit, gdt, irq, serial, touch};

/// Vector of the page fault.
pub const PAGE_FAULT: u64 = 14;

/// The registers the stubs save, lowest address first, then what the CPU
/// pushed.
#[derive(Debug)]
#[repr(C)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

global_asm!(
    r#"
    .macro isr_noerr n
isr_stub_\n:
    push 0
    push \n
    jmp isr_common
    .endm

    .macro isr_err n
isr_stub_\n:
    push \n
    jmp isr_common
    .endm

    .text
    isr_noerr 0
    isr_noerr 1
    isr_noerr 2
    isr_noerr 3
    isr_noerr 4
    isr_noerr 5
    isr_noerr 6
    isr_noerr 7
    isr_err   8
    isr_noerr 9
    isr_err   10
    isr_err   11
    isr_err   12
    isr_err   13
    isr_err   14
    isr_noerr 15
    isr_noerr 16
    isr_err   17
    isr_noerr 18
    isr_noerr 19
    isr_noerr 20
    isr_err   21
    isr_noerr 22
    isr_noerr 23
    isr_noerr 24
    isr_noerr 25
    isr_noerr 26
    isr_noerr 27
    isr_noerr 28
    isr_err   29
    isr_err   30
    isr_noerr 31
    .irp n, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    isr_noerr \n
    .endr

isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    cld
    mov rdi, rsp
    call {entry}
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    .section .rodata.isr_stub_table, "a"
    .p2align 3
    .global isr_stub_table
isr_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .quad isr_stub_\n
    .endr
    .text
    "#,
    entry = sym exception_entry,
);

/// Vectors in the IDT: the exceptions, then the 8259s' lines.
const VECTORS: usize = 48;

unsafe extern "C" {
    static isr_stub_table: [u64; VECTORS];
}

/// One 64-bit interrupt gate.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    /// A present ring-0 interrupt gate (interrupts stay disabled) to
    /// `handler`, on IST slot `ist` (0-based) if any.
    fn new(handler: u64, selector: u16, ist: Option<u16>) -> Gate {
        let b = handler.to_le_bytes();
        Gate {
            offset_low: u16::from_le_bytes([b[0], b[1]]),
            selector,
            // The gate's IST field is 3 bits (slots 1-7; 0 = none).
            ist: ist.map_or(0, |i| (i & 7) as u8 + 1),
            attr: 0x8e,
            offset_mid: u16::from_le_bytes([b[2], b[3]]),
            offset_high: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            reserved: 0,
        }
    }
}

static IDT: Once<[Gate; VECTORS]> = Once::new();

/// The IDT's limit (its size minus one), a u16 field.
#[allow(clippy::cast_possible_truncation)] // checked by the assertion
const IDT_LIMIT: u16 = {
    let limit = core::mem::size_of::<[Gate; VECTORS]>() - 1;
    assert!(limit <= 0xffff, "the IDT limit is a u16 field");
    limit as u16
};

/// Builds and loads the IDT. Call after `gdt::init`.
pub fn init() {
    let selector = CS::get_reg().0;
    let idt = IDT.call_once(|| {
        // SAFETY: a table of VECTORS addresses the linker filled in; never
        // written.
        let stubs = unsafe { &*core::ptr::addr_of!(isr_stub_table) };
        let mut idt = [Gate::default(); VECTORS];
        for (v, gate) in idt.iter_mut().enumerate() {
            let ist = match v {
                2 => Some(gdt::NMI_IST),
                8 => Some(gdt::DOUBLE_FAULT_IST),
                18 => Some(gdt::MACHINE_CHECK_IST),
                _ => None,
            };
            *gate = Gate::new(stubs[v], selector, ist);
        }
        idt
    });
    let ptr = DescriptorTablePointer {
        limit: IDT_LIMIT,
        base: VirtAddr::new(idt.as_ptr() as u64),
    };
    // SAFETY: the table lives in a static for good and each gate points to
    // a stub above, which follows the interrupt calling convention.
    unsafe { lidt(&ptr) };
}

/// Called by every stub with the saved registers.
extern "C" fn exception_entry(frame: &mut TrapFrame) {
    if frame.vector >= 32 {
        // The stubs push the vector number, 0-255.
        interrupt((frame.vector & 0xff) as u8);
        return;
    }
    let cr2 = Cr2::read_raw();
    if frame.vector == PAGE_FAULT && touch::page_fault(frame, cr2) {
        return;
    }
    report(frame, cr2)
}

/// An interrupt. Only the serial port's is routed: it quiets the UART's
/// interrupt (the waiting loop reads the byte) and ends the interrupt. The
/// local APIC's spurious vector and the masked 8259s' spurious lines get no
/// end of interrupt.
fn interrupt(vector: u8) {
    if vector == irq::SERIAL_VECTOR {
        serial::quiet();
        irq::end_of_interrupt();
    }
}

/// Reports an exception the kernel did not expect and exits.
pub fn report(frame: &TrapFrame, cr2: u64) -> ! {
    let report = ExceptionReport {
        vector: (frame.vector & 0xff) as u8,
        error_code: frame.error_code,
        rip: frame.rip,
        cr2,
        rsp: frame.rsp,
    };
    serial::send_emergency(&GuestMessage::Exception(report));
    exit::exit(protocol::EXIT_EXCEPTION)
}
