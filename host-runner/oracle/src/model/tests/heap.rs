//! The kernel heap: `Kmalloc`, `Kfree`, touches of host blocks,
//! `HeapScavenge`, and the `Stats` counters the guest owns.

use protocol::pattern::{checksum, fill};
use protocol::{Error, Reclaim, Request, Response, Stats};

use super::requests::{err, K, U};
use super::{diverges, hello, reclaimed, run, BOOT_FREE, HEAP};
use crate::model::{Model, Prediction};

/// Where the host's blocks lie in [`model`]'s heap: its upper half.
const HOST: u64 = HEAP + (1 << 19);

/// A heap of 1 MiB (256 pages).
fn model() -> Model {
    let mut h = hello();
    h.heap_max_bytes = 1 << 20;
    Model::new(&h)
}

fn kmalloc(size: u64, align: u64) -> Request {
    Request::Kmalloc {
        size,
        align,
        privilege: K,
    }
}

/// `Kmalloc`'s answer: a block at `addr`.
fn at(addr: u64) -> Response {
    Response::Kmalloc { addr }
}

fn kfree(addr: u64) -> Request {
    Request::Kfree { addr, privilege: K }
}

fn touch(addr: u64, len: u64, seed: Option<u64>) -> Request {
    match seed {
        Some(seed) => Request::Write {
            addr,
            len,
            seed,
            privilege: K,
        },
        None => Request::Read {
            addr,
            len,
            privilege: K,
        },
    }
}

#[test]
fn kmalloc_validation_and_placement() {
    let mut m = model();
    let user = Request::Kmalloc {
        size: 1,
        align: 1,
        privilege: U,
    };
    assert_eq!(m.predict(&user), err(Error::PermissionDenied));
    assert_eq!(m.predict(&kmalloc(0, 0)), err(Error::ZeroCount));
    assert_eq!(m.predict(&kmalloc(8, 0)), err(Error::Misaligned));
    assert_eq!(m.predict(&kmalloc(8, 24)), err(Error::Misaligned));
    assert_eq!(m.predict(&kmalloc(8, 8192)), err(Error::TooLarge));
    // The host's part is the upper half: a block of the whole heap, or
    // of more than half of it, is refused at once.
    assert_eq!(m.predict(&kmalloc(1 << 20, 8)), err(Error::OutOfMemory));
    assert_eq!(
        m.predict(&kmalloc((1 << 19) + 1, 8)),
        err(Error::OutOfMemory)
    );
    assert!(matches!(
        m.predict(&kmalloc(1 << 19, 8)),
        Prediction::Kmalloc { .. }
    ));
    // 16-byte alignment at least; inside the host's part of the heap (not
    // the kernel's lower half).
    diverges(&mut m, kmalloc(100, 1), at(HOST + 8));
    diverges(&mut m, kmalloc(100, 64), at(HOST + 32));
    let d = diverges(&mut m, kmalloc(100, 16), at(HOST - 16));
    assert!(d.reason.contains("host's part of the heap"), "{d}");
    let d = diverges(&mut m, kmalloc(16, 16), at(HEAP + 0x1000));
    assert!(d.reason.contains("host's part of the heap"), "{d}");
    let d = diverges(&mut m, kmalloc(100, 16), at(HEAP + (1 << 20) - 96));
    assert!(d.reason.contains("host's part of the heap"), "{d}");
    // Out of memory is allowed (the kernel's own blocks are unknown).
    run(
        &mut m,
        &[(kmalloc(100, 16), Response::Error(Error::OutOfMemory))],
    );
    run(&mut m, &[(kmalloc(100, 64), at(HOST + 0x1000))]);
    // No overlap with a live block.
    let d = diverges(&mut m, kmalloc(16, 16), at(HOST + 0x1060));
    assert!(d.reason.contains("overlaps the live block"), "{d}");
    run(&mut m, &[(kmalloc(16, 16), at(HOST + 0x1070))]);
    // A block uses no frame.
    assert_eq!(m.stats().free_frames, BOOT_FREE);
    // Whole granules: 100 bytes take 112.
    assert_eq!(m.stats().heap_bytes_live, 128);
    // Kfree: only live host blocks, once.
    assert_eq!(
        m.predict(&kfree(HOST + 0x1001)),
        err(Error::InvalidState {
            addr: HOST + 0x1001
        })
    );
    run(&mut m, &[(kfree(HOST + 0x1000), Response::Done)]);
    assert_eq!(
        m.predict(&kfree(HOST + 0x1000)),
        err(Error::InvalidState {
            addr: HOST + 0x1000
        })
    );
    // Its room can be handed out again.
    run(&mut m, &[(kmalloc(0x60, 16), at(HOST + 0x1000))]);
}

#[test]
fn a_block_is_its_size_rounded_up_to_whole_granules() {
    let mut m = model();
    let block = HOST + 0x3000;
    run(&mut m, &[(kmalloc(100, 16), at(block))]);
    // Bytes 100..112 are the block's (the granule's rest); 112 is not.
    assert!(
        !matches!(
            m.predict(&touch(block + 100, 12, Some(5))),
            Prediction::Exact(Response::Error(_))
        ),
        "the rest of the last granule is touchable"
    );
    assert_eq!(
        m.predict(&touch(block + 100, 13, Some(5))),
        err(Error::Reserved)
    );
    // The next block may start right after the granules, not before.
    let d = diverges(&mut m, kmalloc(16, 16), at(block + 96));
    assert!(d.reason.contains("overlaps the live block"), "{d}");
    run(&mut m, &[(kmalloc(16, 16), at(block + 112))]);
}

#[test]
fn host_blocks_hold_what_the_host_wrote() {
    let mut m = model();
    let block = HOST + 0x2000;
    run(&mut m, &[(kmalloc(0x2000, 4096), at(block))]);
    // Outside the block (or spanning its end): Reserved; as User: denied.
    assert_eq!(
        m.predict(&touch(block - 1, 2, Some(1))),
        err(Error::Reserved)
    );
    assert_eq!(
        m.predict(&touch(block + 0x1fff, 2, None)),
        err(Error::Reserved)
    );
    let user = Request::Read {
        addr: block,
        len: 1,
        privilege: U,
    };
    assert_eq!(m.predict(&user), err(Error::PermissionDenied));
    // Bytes never written: any checksum.
    run(
        &mut m,
        &[(touch(block, 16, None), Response::Checksum { checksum: 7 })],
    );
    run(
        &mut m,
        &[(touch(block + 0x10, 0x1ff0, Some(3)), Response::Done)],
    );
    let mut want = vec![0u8; 0x100];
    fill(3, block + 0x100, &mut want);
    let sum = Response::Checksum {
        checksum: checksum(&want),
    };
    assert_eq!(
        m.predict(&touch(block + 0x100, 0x100, None)),
        Prediction::Exact(sum.clone())
    );
    diverges(
        &mut m.clone(),
        touch(block + 0x100, 0x100, None),
        Response::Checksum { checksum: 0 },
    );
    run(&mut m, &[(touch(block + 0x100, 0x100, None), sum)]);
    // Heap faults are not counted; the pages are heap pages, not present pages.
    let s = m.stats();
    assert_eq!((s.faults_resolved, s.present_pages), (0, 0));
    assert_eq!(s.heap_pages, 2);
    assert_eq!(s.free_frames, BOOT_FREE - 2);
    // Freed: the bytes are no longer the host's.
    run(&mut m, &[(kfree(block), Response::Done)]);
    assert_eq!(m.predict(&touch(block, 1, None)), err(Error::Reserved));
}

#[test]
fn scavenge_returns_free_heap_pages_only() {
    let mut m = model();
    let block = HOST + 0x3000;
    run(
        &mut m,
        &[
            (kmalloc(0x1000, 4096), at(block)),
            (touch(block, 0x1000, Some(1)), Response::Done),
            (kmalloc(0x1000, 4096), at(block + 0x1000)),
            (touch(block + 0x1000, 1, Some(1)), Response::Done),
            (kfree(block + 0x1000), Response::Done),
        ],
    );
    let scav = Request::HeapScavenge { privilege: K };
    let page = |addr| Reclaim::Scavenged { addr };
    // A live block's page may not be scavenged.
    let d = diverges(
        &mut m.clone(),
        scav.clone(),
        reclaimed(vec![page(block)], Response::Scavenged { pages: 1 }),
    );
    assert!(d.reason.contains("holds the live block"), "{d}");
    // More pages than events.
    let d = diverges(
        &mut m.clone(),
        scav.clone(),
        reclaimed(vec![page(block + 0x1000)], Response::Scavenged { pages: 2 }),
    );
    assert!(d.reason.contains("2 pages scavenged but 1"), "{d}");
    // Nothing freed is a plain answer.
    run(
        &mut m.clone(),
        &[(scav.clone(), Response::Scavenged { pages: 0 })],
    );
    assert_eq!(m.stats().heap_pages, 2);
    run(
        &mut m,
        &[(
            scav.clone(),
            reclaimed(vec![page(block + 0x1000)], Response::Scavenged { pages: 1 }),
        )],
    );
    let s = m.stats();
    assert_eq!((s.heap_pages, s.pages_scavenged), (1, 1));
    assert_eq!(s.free_frames, BOOT_FREE - 1);
    // Outside the heap's pages: not a heap page.
    let d = diverges(
        &mut m,
        scav,
        reclaimed(
            vec![page(HEAP + (1 << 20))],
            Response::Scavenged { pages: 1 },
        ),
    );
    assert!(d.reason.contains("not a page of the heap"), "{d}");
}

#[test]
fn stats_bound_the_guest_s_own_counters() {
    let mut m = model();
    let good = Stats {
        free_frames: BOOT_FREE - 5,
        heap_pages: 5,
        swap_bytes_total: 1 << 20,
        heap_table_frames: 3,
        heap_bytes_live: 300,
        bytes_freed_since_check: 40,
        ..m.stats()
    };
    let bad = |f: fn(&mut Stats), want: &str| {
        let mut s = good;
        f(&mut s);
        let d = diverges(&mut m.clone(), Request::Stats, Response::Stats(s));
        assert!(d.reason.contains(want), "{want}: {d}");
    };
    bad(|s| s.free_frames += 1, "not boot_free_frames");
    bad(|s| s.heap_pages = 257, "heap_pages 257 outside 0..=256");
    bad(|s| s.present_pages = 1, "present_pages is 1, expected 0");
    bad(|s| s.swap_bytes_used = 1, "swap_bytes_used 1 for 0 slots");
    bad(|s| s.heap_bytes_live = (1 << 20) + 1, "heap_bytes_live");
    run(&mut m, &[(Request::Stats, Response::Stats(good))]);
    // Learned: the heap holds at least 5 pages; the fixed numbers stay.
    assert_eq!(m.stats().heap_pages, 5);
    let mut fewer = good;
    fewer.heap_pages = 4;
    fewer.free_frames += 1;
    let d = diverges(&mut m.clone(), Request::Stats, Response::Stats(fewer));
    assert!(d.reason.contains("heap_pages 4 outside 5..=256"), "{d}");
    let mut moved = good;
    moved.heap_table_frames = 4;
    let d = diverges(&mut m.clone(), Request::Stats, Response::Stats(moved));
    assert!(d.reason.contains("changed since boot"), "{d}");
    // A scavenge event lowers the bound.
    let scav = reclaimed(
        vec![Reclaim::Scavenged {
            addr: HEAP + 0x9000,
        }],
        Response::Scavenged { pages: 1 },
    );
    run(&mut m, &[(Request::HeapScavenge { privilege: K }, scav)]);
    run(
        &mut m,
        &[(
            Request::Stats,
            Response::Stats(Stats {
                pages_scavenged: 1,
                ..fewer
            }),
        )],
    );
}

#[test]
fn reset_frees_the_host_s_blocks() {
    let mut m = model();
    run(
        &mut m,
        &[
            (kmalloc(64, 16), at(HOST)),
            (touch(HOST, 64, Some(2)), Response::Done),
            (Request::Reset { privilege: K }, Response::Done),
        ],
    );
    assert_eq!(
        m.predict(&kfree(HOST)),
        err(Error::InvalidState { addr: HOST })
    );
    // The heap page stays present (the kernel's blocks live on).
    assert_eq!(m.stats().heap_pages, 1);
}

#[test]
fn a_reset_gives_back_heap_pages_after_it() {
    let mut m = model();
    let block = HOST + 0x4000;
    run(
        &mut m,
        &[
            (kmalloc(0x2000, 4096), at(block)),
            (touch(block, 0x2000, Some(1)), Response::Done),
        ],
    );
    let reset = Request::Reset { privilege: K };
    let scavenged = |addr| Reclaim::Scavenged { addr };
    // Only heap pages, and only scavenged.
    let d = diverges(
        &mut m,
        reset.clone(),
        reclaimed(
            vec![Reclaim::Swapped {
                addr: 0x40_0000,
                slot: 0,
            }],
            Response::Done,
        ),
    );
    assert!(d.reason.contains("heap pages only"), "{d}");
    let d = diverges(
        &mut m,
        reset.clone(),
        reclaimed(vec![scavenged(0x40_0000)], Response::Done),
    );
    assert!(d.reason.contains("not a page of the heap"), "{d}");
    // The block's pages held a live block before the reset, not after it:
    // the reset's events are applied after the reset.
    run(
        &mut m,
        &[(
            reset,
            reclaimed(
                vec![scavenged(block), scavenged(block + 0x1000)],
                Response::Done,
            ),
        )],
    );
    // The counters a reset zeroes stay zero after its own scavenge.
    let Prediction::Stats(b) = m.predict(&Request::Stats) else {
        panic!("a Stats prediction")
    };
    assert_eq!(b.exact.pages_scavenged, 0);
    // Another request's events come first: the same events before a
    // request that needs the block are refused.
    run(
        &mut m,
        &[
            (kmalloc(0x1000, 4096), at(block)),
            (touch(block, 0x1000, Some(2)), Response::Done),
        ],
    );
    let d = diverges(
        &mut m,
        Request::Stats,
        reclaimed(vec![scavenged(block)], Response::Stats(Stats::default())),
    );
    assert!(d.reason.contains("live block"), "{d}");
}

/// Found by the CI job's campaign (`testcases/fuzz-heap-read-with-no-frame-free.jsonl`): with no frame
/// left that a request may take (the bounds exact at 0) and a clean file
/// page to drop, a read of a host block's bytes not all written, its page
/// present, was predicted to need reclaim first; it takes no frame, and
/// any checksum is right.
#[test]
fn a_read_of_a_present_block_needs_no_frame_when_none_is_free() {
    let mut h = super::hello_files();
    h.heap_max_bytes = 1 << 20;
    let mut m = Model::with_files(&h, &super::FILES).expect("specs match");
    let block = HOST + 0x2000;
    run(
        &mut m,
        &[
            (kmalloc(64, 16), at(block)),
            (touch(block, 8, Some(1)), Response::Done),
            (super::files::map_file(0x40_0000, 1, 0, 0), Response::Done),
        ],
    );
    let file_read = super::files::read(0x40_0000, 8);
    let Prediction::Exact(sum) = m.predict(&file_read) else {
        panic!("a file page's bytes are known")
    };
    run(&mut m, &[(file_read, sum)]);
    // The host takes every frame a request may take.
    let mut start = 0x20_0000;
    loop {
        let (_, most) = m.request_free_bounds();
        if most == 0 {
            break;
        }
        let count = most.min(protocol::MAX_ALLOC_FRAMES);
        let alloc = Request::AllocFrames {
            count,
            contiguous: false,
            privilege: K,
        };
        let frames = Response::Frames(vec![protocol::FrameRun { start, count }]);
        run(&mut m, &[(alloc, frames)]);
        start += count * 4096;
    }
    assert_eq!(m.request_free_bounds(), (0, 0));
    let read = touch(block + 8, 6, None);
    let p = m.predict(&read);
    assert!(!matches!(p, Prediction::Reclaim(_)), "{p:?}");
    run(&mut m, &[(read, Response::Checksum { checksum: 7 })]);
}
