//! What [`crate::dispatch`] needs from the machine: the VMM behind its lock,
//! touches of memory from the CPU, the handshake, panic and shutdown.

use protocol::{FaultReason, Hello};

use crate::backend::PhysMemory;
use crate::frame_alloc::FrameAllocator;
use crate::touched::Touched;
use crate::vmm::Vmm;

/// The machine the dispatcher runs on: the kernel, or the `sim` module's
/// simulated machine.
pub trait Machine {
    /// The VMM's memory backend.
    type Mem: PhysMemory;
    /// The VMM's frame allocator.
    type Frames: FrameAllocator;

    /// The layout report of the handshake.
    fn hello(&mut self) -> Hello;

    /// Runs `f` with the VMM (in the kernel: under its lock). Never touch
    /// memory inside `f`: a touch may fault into the VMM.
    fn with_vmm<R>(&mut self, f: impl FnOnce(&mut Vmm<Self::Mem, Self::Frames>) -> R) -> R;

    /// Stores the pattern of `seed` at `addr..addr + len` from the CPU, in
    /// ascending order; page faults go to [`Vmm::handle_fault`]. `Err` holds
    /// the first byte not stored and why.
    fn touch_write(&mut self, addr: u64, len: u64, seed: u64) -> Result<(), (u64, FaultReason)>;

    /// Loads `addr..addr + len` from the CPU and answers the checksum of the
    /// bytes; faults as in [`Machine::touch_write`].
    fn touch_read(&mut self, addr: u64, len: u64) -> Result<u32, (u64, FaultReason)>;

    /// Loads one byte at `addr` from the CPU without resolving a fault:
    /// whether the load succeeded (the page is present, or a stale TLB
    /// entry still translates it). A fault here never reaches the VMM.
    fn probe(&mut self, addr: u64) -> bool;

    /// The pages the CPU may hold translations for (see
    /// [`crate::touched`]), kept across requests.
    fn touched(&mut self) -> &mut Touched;

    /// Panics with the message `"panic requested by host"`.
    fn panic_now(&mut self) -> !;

    /// Exits through `isa-debug-exit` with `protocol::EXIT_SUCCESS`.
    fn shutdown(&mut self) -> !;
}
