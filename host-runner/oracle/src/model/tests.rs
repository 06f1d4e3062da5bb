//! The model against hand-computed sequences.

mod fuzz;
mod host;
mod pagemap;
mod requests;
mod scenarios;
mod touches;

use protocol::{Hello, PhysRange, Request, Response, VirtRange};

use super::{Divergence, Model};

/// Frames of the test machine: 128 MiB; the first 2 MiB are boot reserved.
pub const TOTAL: u64 = 32768;
pub const BOOT_FREE: u64 = TOTAL - 512;
pub const KSPACE: u64 = 0xffff_c080_0000_0000;
pub const VALLOC: u64 = 0xffff_c0c0_0000_0000;
pub const HEAP: u64 = 0xffff_c0a0_0000_0000;

/// A layout like the guest's: direct map in slot 256, kernel image in 511.
pub fn hello() -> Hello {
    Hello {
        protocol_version: protocol::PROTOCOL_VERSION,
        ram_bytes: TOTAL * 4096,
        total_frames: TOTAL,
        boot_free_frames: BOOT_FREE,
        page_table_root: 0x1000,
        direct_map_offset: 0xffff_8000_0000_0000,
        frame_bitmap: PhysRange {
            start: 0x2000,
            end: 0x3000,
        },
        boot_reserved: vec![PhysRange {
            start: 0,
            end: 0x20_0000,
        }],
        kernel_image: PhysRange {
            start: 0x10_0000,
            end: 0x18_0000,
        },
        user_space: VirtRange {
            start: 0,
            end: 0x0000_8000_0000_0000,
        },
        kernel_space: VirtRange {
            start: KSPACE,
            end: 0xffff_ff80_0000_0000,
        },
        heap: VirtRange {
            start: HEAP,
            end: HEAP + (32 << 20),
        },
        valloc: VirtRange {
            start: VALLOC,
            end: VALLOC + 256 * 4096,
        },
        reserved_pml4_slots: vec![256, 511],
        files: vec![],
        swap: PhysRange { start: 0, end: 0 },
        frame_info: PhysRange { start: 0, end: 0 },
        heap_max_bytes: 0,
    }
}

/// Applies every step; panics with the divergence's message on the first.
pub fn run(m: &mut Model, steps: &[(Request, Response)]) {
    for (i, (req, resp)) in steps.iter().enumerate() {
        if let Err(d) = m.apply(i as u64, req, resp) {
            panic!("{d}");
        }
    }
}

/// Applies one step that must diverge; answers the divergence.
pub fn diverges(m: &mut Model, req: Request, resp: Response) -> Divergence {
    match m.apply(7, &req, &resp) {
        Err(d) => d,
        Ok(()) => panic!("{req:?} answered {resp:?} was accepted"),
    }
}
