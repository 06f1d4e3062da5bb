//! Leaving QEMU through `isa-debug-exit` (port 0xf4): QEMU exits with status
//! `(value << 1) | 1`.

use x86_64::instructions::port::Port;

/// The `isa-debug-exit` port (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Asks QEMU to exit with `value` (one of `protocol::EXIT_*`) and halts. The
/// exit is asynchronous under TCG, so the CPU halts until it happens.
pub fn exit(value: u8) -> ! {
    // SAFETY: writing the debug-exit port only ends the VM; it touches no
    // memory.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(u32::from(value)) };
    halt_forever()
}

/// Halts the CPU for good (interrupts stay off, so only an NMI wakes it, and
/// it halts again).
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
