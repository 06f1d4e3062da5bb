//! The kernel's reserve on the real guest (`protocol::semantics`, "The
//! kernel's reserve"; issue 12 item 1): every allocating request is driven
//! to exhaustion (host heap blocks and their pages, `Valloc`, file pages,
//! RAM until the swap store is full, allocate-on-write pages touched, host
//! frames, read-only RAM), then every request kind but `Panic` and
//! `Shutdown` (which end the guest by design) is sent, the largest batches
//! included. The model judges every answer; the guest must stay alive,
//! its own heap bytes must be back where they were after every request
//! (no leak), and the memory check must be clean at the end. Needs
//! `qemu-system-x86_64`.

use host_runner::judge::{JudgeOptions, JudgedVm};
use host_runner::{Accel, RunnerOptions};
use protocol::{AreaType, Error, FaultReason, Privilege, Request, Response, MAX_BATCH};

const U: Privilege = Privilege::User;
const K: Privilege = Privilege::Kernel;
const FILE: u64 = 0x4000_0000;
const ANON: u64 = 0x1_0000_0000;
const CONVERTED: u64 = 0x2_0000_0000;
const READ_ONLY: u64 = 0x3_0000_0000;

/// A judged guest, and the kernel's own live heap bytes when first seen.
struct Run {
    vm: JudgedVm,
    kernel_live: Option<u64>,
}

impl Run {
    async fn start() -> Run {
        let mut c = host_runner::base_config(&RunnerOptions::default())
            .expect("QEMU and the built guest kernel");
        c.accel = Accel::Tcg;
        c.ram_mib = 32;
        c.files = vec![host_runner::files::FileSpec {
            pages: 64,
            seed: 0xf11e,
        }];
        let vm = JudgedVm::start(&c, JudgeOptions::default())
            .await
            .unwrap_or_else(|f| panic!("boot: {f}"));
        Run {
            vm,
            kernel_live: None,
        }
    }

    /// Sends `r`, judged by the model; its plain answer. Panics on any
    /// failure: a guest panic (the kernel out of heap), a divergence.
    async fn send(&mut self, r: Request) -> Response {
        match self.vm.step(r.clone()).await {
            Ok(a) => a.split_reclaimed().1,
            Err(f) => panic!("{r:?}: {f}"),
        }
    }

    /// `Stats` alone: the kernel's own live heap bytes (`heap_bytes_live`
    /// less the host's blocks) are what they were the first time.
    async fn no_leak(&mut self, after: &str) {
        let host = self.vm.model().stats().heap_bytes_live;
        let Response::Stats(s) = self.send(Request::Stats).await else {
            panic!("Stats not answered with stats")
        };
        let own = s.heap_bytes_live - host;
        let first = *self.kernel_live.get_or_insert(own);
        assert_eq!(
            own, first,
            "after {after}: the kernel holds {own} heap bytes, {first} before"
        );
    }

    /// Sends `r`, then checks for a leak.
    async fn kind(&mut self, r: Request) -> Response {
        let what = format!("{r:?}");
        let a = self.send(r).await;
        self.no_leak(&what[..what.len().min(120)]).await;
        a
    }

    /// Maps (and for writable pages, fills) runs of `chunk` pages from
    /// `*at` until a map is refused.
    async fn map_until_refused(&mut self, at: &mut u64, chunk: u64, writable: bool) {
        loop {
            let map = Request::Map {
                addr: *at,
                pages: chunk,
                writable,
                executable: false,
                contiguous: false,
                privilege: U,
            };
            if self.send(map).await != Response::Done {
                return;
            }
            if writable {
                self.send(write(*at, chunk * 4096, *at, U)).await;
            }
            *at += chunk * 4096;
        }
    }

    /// `AllocFrames` until a single frame is refused, halving the count at
    /// each refusal.
    async fn take_all_frames(&mut self) {
        let mut count = protocol::MAX_ALLOC_FRAMES;
        while count > 0 {
            let r = Request::AllocFrames {
                count,
                contiguous: false,
                privilege: K,
            };
            if !matches!(self.send(r).await, Response::Frames(_)) {
                count /= 2;
            }
        }
    }
}

fn write(addr: u64, len: u64, seed: u64, privilege: Privilege) -> Request {
    Request::Write {
        addr,
        len,
        seed,
        privilege,
    }
}

fn kmalloc(size: u64) -> Request {
    Request::Kmalloc {
        size,
        align: 16,
        privilege: K,
    }
}

/// Every allocating request, to exhaustion. Answers the host's heap block.
async fn exhaust(run: &mut Run) -> u64 {
    let hello = run.vm.hello().clone();
    let max = hello.heap_max_bytes;
    let half = max - protocol::host_heap_offset(max);
    assert_eq!(
        run.send(kmalloc(max)).await,
        Response::Error(Error::OutOfMemory)
    );
    let Response::Kmalloc { addr: block } = run.send(kmalloc(half)).await else {
        panic!("the host's half of the heap is free at boot")
    };
    assert_eq!(
        run.send(kmalloc(16)).await,
        Response::Error(Error::OutOfMemory)
    );
    assert_eq!(run.send(write(block, half, 3, K)).await, Response::Done);
    let pages = (hello.valloc.end - hello.valloc.start) / 4096;
    let valloc = Request::Valloc {
        pages,
        privilege: K,
    };
    assert!(matches!(run.send(valloc).await, Response::Valloc { .. }));
    let mf = Request::MapFile {
        addr: FILE,
        pages: 64,
        file: 0,
        file_page: 0,
        privilege: U,
    };
    assert_eq!(run.send(mf).await, Response::Done);
    let read = Request::Read {
        addr: FILE,
        len: 64 * 4096,
        privilege: U,
    };
    assert!(matches!(run.send(read).await, Response::Checksum { .. }));
    let some = Request::AllocFrames {
        count: 256,
        contiguous: true,
        privilege: K,
    };
    assert!(matches!(run.send(some).await, Response::Frames(_)));
    let ro = Request::Map {
        addr: READ_ONLY,
        pages: 16,
        writable: false,
        executable: false,
        contiguous: false,
        privilege: U,
    };
    assert_eq!(run.send(ro).await, Response::Done);
    let conv = Request::Convert {
        addr: CONVERTED,
        pages: 1 << 16,
        to: AreaType::UsableRam,
        privilege: U,
    };
    assert_eq!(run.send(conv).await, Response::Done);
    // RAM and swap: map and fill (pattern data does not compress), evict,
    // until nothing more is mapped and nothing more goes to swap.
    let mut at = ANON;
    loop {
        let from = at;
        run.map_until_refused(&mut at, 256, true).await;
        run.map_until_refused(&mut at, 1, true).await;
        let ev = Request::Evict {
            addr: ANON,
            pages: (at - ANON) / 4096,
            privilege: U,
        };
        match run.send(ev).await {
            Response::Evicted { swapped: 0, .. } if at == from => break,
            Response::Evicted { .. } => {}
            a => panic!("{a:?}"),
        }
    }
    let touched = run.send(write(CONVERTED, 1 << 28, 5, U)).await;
    assert!(
        matches!(
            touched,
            Response::Fault {
                reason: FaultReason::OutOfMemory,
                ..
            }
        ),
        "{touched:?}"
    );
    run.take_all_frames().await;
    let mut ro = READ_ONLY + 16 * 4096;
    run.map_until_refused(&mut ro, 1, false).await;
    block
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_every_allocating_request_is_exhausted_every_request_is_answered() {
    let mut run = Run::start().await;
    run.no_leak("boot").await;
    let block = exhaust(&mut run).await;
    run.no_leak("exhaustion").await;
    let Response::Stats(s) = run.send(Request::Stats).await else {
        panic!("stats")
    };
    let reserve = protocol::heap_reserve_frames(s.heap_max_bytes);
    eprintln!("exhausted: {s:?}");
    assert!(
        s.free_frames <= reserve + 16 && s.swap_slots_used > 0,
        "not exhausted: {s:?}"
    );

    let oom = Response::Error(Error::OutOfMemory);
    assert!(matches!(run.kind(Request::Hello).await, Response::Hello(_)));
    assert_eq!(
        run.kind(Request::Ping { nonce: 9 }).await,
        Response::Pong { nonce: 9 }
    );
    let q = Request::Query {
        addr: ANON,
        pages: protocol::MAX_QUERY_PAGES,
        privilege: U,
    };
    assert!(matches!(run.kind(q).await, Response::Pages(_)));
    let map = Request::map_writable(0x7000_0000, 1, U);
    assert_eq!(run.kind(map).await, oom);
    let again = Request::Convert {
        addr: CONVERTED,
        pages: 16,
        to: AreaType::UsableRam,
        privilege: U,
    };
    assert_eq!(run.kind(again.clone()).await, Response::Done);
    // And while the kernel holds a big answer of the same batch (its heap
    // deep in the reserve): the convert needs no frame, so it is done.
    let big = Request::Query {
        addr: CONVERTED,
        pages: protocol::MAX_QUERY_PAGES,
        privilege: U,
    };
    match run.vm.steps(vec![big, again]).await {
        Ok(a) => assert_eq!(a[1].clone().split_reclaimed().1, Response::Done),
        Err(f) => panic!("a query and a convert needing no frame: {f}"),
    }
    let hole = CONVERTED + 100 * 4096;
    let un = Request::Convert {
        addr: hole,
        pages: 1,
        to: AreaType::Unusable,
        privilege: U,
    };
    assert_eq!(run.kind(un).await, Response::Done);
    let mf = Request::MapFile {
        addr: hole,
        pages: 1,
        file: 0,
        file_page: 0,
        privilege: U,
    };
    assert_eq!(run.kind(mf).await, Response::Done);
    let last = CONVERTED + ((1 << 16) - 1) * 4096;
    assert!(matches!(
        run.kind(write(last, 1, 1, U)).await,
        Response::Fault {
            reason: FaultReason::OutOfMemory,
            ..
        }
    ));
    let ro = Request::Read {
        addr: READ_ONLY,
        len: 4096,
        privilege: U,
    };
    assert!(matches!(run.kind(ro).await, Response::Checksum { .. }));
    assert_eq!(run.kind(write(block, 16, 8, K)).await, Response::Done);
    let frames = Request::AllocFrames {
        count: 1,
        contiguous: true,
        privilege: K,
    };
    assert_eq!(run.kind(frames).await, oom);
    let v = Request::Valloc {
        pages: 1,
        privilege: K,
    };
    assert_eq!(run.kind(v).await, Response::Error(Error::NoVirtualSpace));
    assert_eq!(run.kind(kmalloc(16)).await, oom);
    let ev = Request::Evict {
        addr: ANON,
        pages: 64,
        privilege: U,
    };
    assert!(matches!(run.kind(ev).await, Response::Evicted { .. }));
    let scav = Request::HeapScavenge { privilege: K };
    assert!(matches!(run.kind(scav).await, Response::Scavenged { .. }));
    // The largest batches: pings (the answer vector) and queries of
    // unusable pages (answers far bigger in memory than on the wire); the
    // runner sends what a memory cut left again.
    for r in [
        Request::Ping { nonce: 1 },
        Request::Query {
            addr: 0x7000_0000,
            pages: 64,
            privilege: U,
        },
    ] {
        let answers = match run.vm.steps(vec![r.clone(); MAX_BATCH]).await {
            Ok(a) => a,
            Err(f) => panic!("a batch of {r:?}: {f}"),
        };
        assert_eq!(answers.len(), MAX_BATCH);
        run.no_leak("a full batch").await;
    }
    // What frees, each answered.
    let kfree = Request::Kfree {
        addr: block,
        privilege: K,
    };
    assert_eq!(run.kind(kfree).await, Response::Done);
    let vfree = Request::Vfree {
        addr: run.vm.hello().valloc.start,
        pages: 1,
        privilege: K,
    };
    assert_eq!(run.kind(vfree).await, Response::Done);
    let unmap = Request::Unmap {
        addr: ANON,
        pages: 1,
        privilege: U,
    };
    assert_eq!(run.kind(unmap).await, Response::Done);
    run.vm
        .check()
        .await
        .unwrap_or_else(|f| panic!("memory check: {f}"));
    run.vm
        .reset()
        .await
        .unwrap_or_else(|f| panic!("reset: {f}"));
    run.no_leak("reset").await;
    run.vm
        .finish()
        .await
        .unwrap_or_else(|f| panic!("shutdown: {f}"));
}
