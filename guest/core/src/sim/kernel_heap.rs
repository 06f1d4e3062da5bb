//! The simulated machine's kernel heap: the blocks the real kernel's
//! `#[global_allocator]` takes from the VMM's heap, which the dispatch here
//! (allocating from the host's allocator) does not.

use alloc::vec::Vec;
use protocol::budget::{answer_memory, MAX_ANSWER_SLOTS, REQUEST_BYTES, RESPONSE_BYTES};
use protocol::{Request, Response};

use super::machine::SimMachine;

/// The kernel's heap, as the real kernel uses it: what
/// [`SimMachine::answer_as_kernel`] could not get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOutOfMemory {
    /// The block asked for, in bytes (the real kernel panics with
    /// "memory allocation of N bytes failed").
    pub bytes: u64,
}

impl SimMachine {
    /// A block of the kernel's own heap, committed, as the kernel's
    /// `#[global_allocator]` gets it ([`crate::Vmm::kernel_alloc`]).
    pub fn kernel_alloc(&mut self, bytes: u64) -> Result<u64, KernelOutOfMemory> {
        let bytes = bytes.max(1);
        self.vmm
            .kernel_alloc(bytes, 16)
            .ok_or(KernelOutOfMemory { bytes })
    }

    /// Answers `req` as the real kernel does, with its heap: the dispatch
    /// here allocates from the host's allocator, so the blocks the kernel
    /// would take come from the VMM's heap beside it: a `Batch`'s decoded
    /// requests and its answer vector while the request runs, then what
    /// the answer owns ([`protocol::budget::answer_memory`]). All are
    /// freed once the answer is built, as after the kernel sent it. `Err`
    /// when the heap could not give a block: the real kernel would have
    /// panicked.
    pub fn answer_as_kernel(&mut self, req: Request) -> Result<Response, KernelOutOfMemory> {
        let mut held = Vec::new();
        let mut result = Ok(());
        if let Request::Batch(v) = &req {
            let sizes = [
                v.len() * REQUEST_BYTES,
                v.len().min(MAX_ANSWER_SLOTS) * RESPONSE_BYTES,
            ];
            for bytes in sizes {
                match self.kernel_alloc(bytes as u64) {
                    Ok(a) => held.push(a),
                    Err(e) => result = result.and(Err(e)),
                }
            }
        }
        let answer = crate::dispatch::handle(self, req);
        if result.is_ok() {
            let owned = match &answer {
                Response::Batch(v) => v.iter().map(answer_memory).sum::<usize>(),
                a => answer_memory(a) - RESPONSE_BYTES,
            };
            match self.kernel_alloc(owned as u64) {
                Ok(a) => held.push(a),
                Err(e) => result = Err(e),
            }
        }
        for a in held {
            let freed = self.vmm.kernel_free(a);
            debug_assert_eq!(freed, Ok(()), "kernel block {a:#x} was not live");
        }
        result.map(|()| answer)
    }
}
