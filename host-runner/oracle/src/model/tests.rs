//! The model against hand-computed sequences.

mod coverage;
mod evict;
mod files;
mod fuzz;
mod fuzz_v2;
mod heap;
mod host;
mod pagemap;
mod pinned;
mod reclaim;
mod requests;
mod scenarios;
mod shared;
mod shared_free;
mod shared_rows;
mod spaces;
mod spaces_free;
mod table;
mod touches;

use protocol::{AreaType, FileInfo, Hello, PhysRange, Privilege, Request, Response, VirtRange};

use super::{Divergence, FileSpec, Model};

/// Frames of the test machine: 128 MiB; the first 2 MiB are boot reserved.
pub const TOTAL: u64 = 32768;
pub const BOOT_FREE: u64 = TOTAL - 512;
pub const KSPACE: u64 = 0xffff_c080_0000_0000;
pub const VALLOC: u64 = 0xffff_c0c0_0000_0000;
pub const HEAP: u64 = 0xffff_c0a0_0000_0000;

/// A layout like the guest's: direct map in slot 256, kernel image in 511.
/// `h` with a frame-info table, one record per frame, as every real guest
/// has: `Share` counts mappings there (without one it answers
/// `OutOfMemory`).
pub fn with_frame_info(h: Hello) -> Hello {
    Hello {
        frame_info: PhysRange {
            start: 0x18_0000,
            end: 0x18_0000 + h.total_frames * 8,
        },
        ..h
    }
}

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
        ..Hello::default()
    }
}

/// A user's `Convert` of `pages` pages at `addr` to `to`.
pub fn convert(addr: u64, pages: u64, to: AreaType) -> Request {
    Request::Convert {
        addr,
        pages,
        to,
        privilege: Privilege::User,
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

/// Two files: file 0 of 8 pages (seed 11), file 1 of 4 pages (seed 22).
pub const FILES: [FileSpec; 2] = [
    FileSpec { pages: 8, seed: 11 },
    FileSpec { pages: 4, seed: 22 },
];

/// The layout of [`hello`] with the two [`FILES`] (no heap: the free
/// frames are known exactly).
pub fn hello_files() -> Hello {
    let mut h = hello();
    h.files = vec![
        FileInfo {
            pages: 8,
            image: PhysRange {
                start: 0x10_0000,
                end: 0x10_8000,
            },
        },
        FileInfo {
            pages: 4,
            image: PhysRange {
                start: 0x10_8000,
                end: 0x10_c000,
            },
        },
    ];
    h
}

/// A model of [`hello_files`] that knows the files' contents.
pub fn model_files() -> Model {
    Model::with_files(&hello_files(), &FILES).expect("specs match")
}

/// `inner` with reclaim `events`.
pub fn reclaimed(events: Vec<protocol::Reclaim>, inner: Response) -> Response {
    Response::Reclaimed {
        events,
        response: Box::new(inner),
    }
}
