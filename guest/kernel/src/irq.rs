//! The interrupt controllers. One line is used: the serial port's (ISA IRQ
//! 4), to wake the CPU from `hlt` when the host sends a byte.
//!
//! The I/O APIC delivers it to the local APIC as vector [`SERIAL_VECTOR`];
//! the 8259 pair is remapped clear of the exceptions and masked for good.
//! This works alike under TCG and under KVM, where microvm's local APIC is
//! the kernel's (`kernel-irqchip=split`) and the 8259's virtual wire does
//! not reach a halted CPU. Interrupts are enabled only while the CPU halts
//! for input (`serial::wait`), so no handler ever runs inside the VMM.

use x86_64::instructions::port::Port;

/// Physical address of the local APIC's registers (xAPIC mode).
pub const LAPIC_PHYS: u64 = 0xfee0_0000;
/// Physical address of the I/O APIC's registers.
pub const IOAPIC_PHYS: u64 = 0xfec0_0000;
/// The serial port's line, as an ISA IRQ and an I/O APIC pin.
const SERIAL_IRQ: u32 = 4;
/// The vector the serial port's interrupt arrives at.
pub const SERIAL_VECTOR: u8 = 36;
/// The local APIC's spurious vector (its low four bits must be set).
pub const SPURIOUS_VECTOR: u8 = 47;
/// The 8259s' vectors, should one fire despite its masks.
const PIC_BASE: u8 = 32;

const LAPIC_ID: u64 = 0x20;
const LAPIC_EOI: u64 = 0xb0;
const LAPIC_SVR: u64 = 0xf0;
/// SVR: the APIC software enable bit.
const SVR_ENABLE: u32 = 1 << 8;

fn outb(port: u16, value: u8) {
    // SAFETY: only the 8259s' command and data ports, which this module
    // owns; writing them touches no memory.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// A 32-bit register of an APIC, through its uncached direct-map page.
fn reg(phys: u64) -> *mut u32 {
    crate::paging::phys_to_virt(phys) as *mut u32
}

fn lapic_read(offset: u64) -> u32 {
    // SAFETY: a local APIC register, mapped uncached by `paging::init`;
    // an aligned 32-bit load, as the APIC requires; it changes nothing.
    unsafe { reg(LAPIC_PHYS + offset).read_volatile() }
}

fn lapic_write(offset: u64, value: u32) {
    // SAFETY: a local APIC register, mapped uncached by `paging::init`; an
    // aligned 32-bit store. The registers written here (SVR, EOI) change
    // interrupt delivery only, and interrupts are off outside `wait`.
    unsafe { reg(LAPIC_PHYS + offset).write_volatile(value) }
}

fn ioapic_write(index: u32, value: u32) {
    // SAFETY: the I/O APIC's select and window registers, mapped uncached
    // by `paging::init`; aligned 32-bit stores that program one redirection
    // entry (interrupt routing only).
    unsafe {
        reg(IOAPIC_PHYS).write_volatile(index);
        reg(IOAPIC_PHYS + 0x10).write_volatile(value);
    }
}

/// Masks the 8259s, enables the local APIC and routes the serial port's
/// line to [`SERIAL_VECTOR`] on this CPU. Call once, with interrupts
/// disabled, after the IDT is loaded and `paging::init` mapped the APICs.
pub fn init() {
    // The 8259s: remapped (ICW1–4), then every line masked.
    for (cmd, data, base, cascade) in [
        (0x20, 0x21, PIC_BASE, 1 << 2),
        (0xa0, 0xa1, PIC_BASE + 8, 2),
    ] {
        outb(cmd, 0x11);
        outb(data, base);
        outb(data, cascade);
        outb(data, 0x01);
        outb(data, 0xff);
    }
    lapic_write(LAPIC_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
    let me = lapic_read(LAPIC_ID) >> 24;
    // Redirection entry: fixed delivery, physical destination, active
    // high, edge triggered, not masked.
    ioapic_write(0x11 + 2 * SERIAL_IRQ, me << 24);
    ioapic_write(0x10 + 2 * SERIAL_IRQ, u32::from(SERIAL_VECTOR));
}

/// Ends the interrupt being handled (the local APIC's EOI).
pub fn end_of_interrupt() {
    lapic_write(LAPIC_EOI, 0);
}
