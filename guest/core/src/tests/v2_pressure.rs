//! Swap round trips, the heap (kmalloc/kfree/scavenge never freeing a live
//! block), and memory pressure on a machine with few frames.

use crate::conv::usize_of;
use crate::frame_alloc::FrameAllocator as _;
use std::collections::BTreeMap;

use proptest::prelude::*;
use protocol::pattern::{checksum, fill};
use protocol::{AreaType, Reclaim};

use super::v2_table::ok;
use super::*;

const HEAP: u64 = crate::layout::HEAP_START;

fn read_sum(m: &mut SimMachine, addr: u64, len: u64, privilege: Privilege) -> Response {
    req(
        m,
        Request::Read {
            addr,
            len,
            privilege,
        },
    )
    .split_reclaimed()
    .1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Pages of random contents (some compressible, some not) go to swap
    /// and come back byte for byte; slots are freed once read back.
    #[test]
    fn swap_round_trips_random_contents(
        pages in proptest::collection::vec((any::<u64>(), 0u64..4097, any::<u8>()), 1..12)
    ) {
        let mut m = SimMachine::new(256);
        let base = 0x40_0000u64;
        let n = pages.len() as u64;
        ok(&mut m, Request::map_writable(base, n, U));
        let mut want = vec![0u8; usize_of(n * 4096)];
        for (i, &(seed, len, fill_byte)) in pages.iter().enumerate() {
            let a = base + i as u64 * 4096;
            // A run of one byte then `len` pattern bytes: from all-same to random.
            let page = &mut want[i * 4096..(i + 1) * 4096];
            page.fill(fill_byte);
            fill(seed, a, &mut page[..usize_of(len)]);
            // Written as the CPU writes: the bytes, and the entry's D bit.
            let mv = m.vmm.translate(a).unwrap().0;
            m.vmm.mem().cpu_bytes(mv).copy_from_slice(page);
            m.vmm.mem().cpu_set_dirty(a);
        }
        let (events, _) = req(&mut m, Request::Evict { addr: base, pages: n, privilege: U }).split_reclaimed();
        prop_assert!(!events.is_empty());
        check(&mut m);
        prop_assert_eq!(read_sum(&mut m, base, n * 4096, U), Response::Checksum { checksum: checksum(&want) });
        check(&mut m);
        prop_assert_eq!(m.vmm.stats().swap_slots_used, 0);
    }

    /// Random kmalloc / kfree / scavenge / touch: blocks never overlap, a
    /// block's data survives every scavenge, and the heap's frames are all
    /// accounted for.
    #[test]
    fn heap_scavenger_never_frees_a_live_block(
        ops in proptest::collection::vec((0u8..4, 1u64..9000, 0u32..8, any::<u64>()), 1..60)
    ) {
        let mut m = SimMachine::new(512);
        let mut live: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for (op, size, align_log, seed) in ops {
            match op {
                0 | 1 => {
                    let align = 1u64 << (align_log + 2);
                    let r = req(&mut m, Request::Kmalloc { size, align, privilege: K }).split_reclaimed().1;
                    if let Response::Kmalloc { addr } = r {
                        prop_assert_eq!(addr % align.max(16), 0);
                        for (&a, &(s, _)) in &live {
                            prop_assert!(addr + size <= a || a + s <= addr, "overlap {addr:#x}+{size} {a:#x}+{s}");
                        }
                        ok(&mut m, Request::Write { addr, len: size, seed, privilege: K });
                        live.insert(addr, (size, seed));
                    } else {
                        prop_assert_eq!(r, Response::Error(protocol::Error::OutOfMemory));
                    }
                }
                2 => {
                    if let Some((&a, _)) = live.iter().nth(usize_of(seed) % live.len().max(1)) {
                        live.remove(&a);
                        prop_assert_eq!(req(&mut m, Request::Kfree { addr: a, privilege: K }), Response::Done);
                        // Freed memory may no longer be touched.
                        prop_assert_eq!(
                            req(&mut m, Request::Read { addr: a, len: 1, privilege: K }),
                            Response::Error(protocol::Error::Reserved)
                        );
                    }
                }
                _ => {
                    let (events, r) = req(&mut m, Request::HeapScavenge { privilege: K }).split_reclaimed();
                    prop_assert_eq!(r, Response::Scavenged { pages: events.len() as u64 });
                    for e in events {
                        let Reclaim::Scavenged { addr } = e else { panic!("{e:?}") };
                        for (&a, &(s, _)) in &live {
                            prop_assert!(addr + 4096 <= a || a + s <= addr, "scavenged a live block's page");
                        }
                    }
                }
            }
            for (&a, &(s, seed)) in &live {
                let mut want = vec![0u8; usize_of(s)];
                fill(seed, a, &mut want);
                prop_assert_eq!(read_sum(&mut m, a, s, K), Response::Checksum { checksum: checksum(&want) });
            }
            check(&mut m);
        }
        let s = m.vmm.stats();
        prop_assert_eq!(s.heap_bytes_live, live.values().map(|&(s, _)| s.div_ceil(16) * 16).sum::<u64>());
        reset_and_check(&mut m);
        prop_assert_eq!(m.vmm.stats().heap_bytes_live, 0);
    }

    /// A machine of few frames: random writes over far more memory than it
    /// has (anonymous and file-backed), with the heap in use; every read
    /// gives back what was written, and every frame and slot is accounted
    /// for at the end.
    #[test]
    fn pressure_keeps_all_data(
        ops in proptest::collection::vec((0u64..64, 1u64..3, any::<u64>(), 0u8..6), 40..120)
    ) {
        // As few frames as the workload can run in, plus those kept for the
        // heap (a heap of a quarter of the frames).
        let total = (116u64..)
            .find(|&t| t >= 116 + protocol::heap_reserve_frames(t / 4 * 4096))
            .unwrap_or(116);
        let mut m = SimMachine::with_files(total, &[(8, 0x5eed)]);
        let anon = 0x100_0000u64;
        let file = 0x200_0000u64;
        ok(&mut m, Request::Convert { addr: anon, pages: 64, to: AreaType::UsableRam, privilege: U });
        ok(&mut m, Request::MapFile { addr: file, pages: 8, file: 0, file_page: 0, privilege: U });
        let block = match ok(&mut m, Request::Kmalloc { size: 20_000, align: 64, privilege: K }) {
            Response::Kmalloc { addr } => addr,
            r => panic!("{r:?}"),
        };
        assert!(block >= HEAP);
        ok(&mut m, Request::Write { addr: block, len: 20_000, seed: 1, privilege: K });
        // Expected memory, page by page: anonymous pages start zero, file
        // pages start as the file; each page holds mostly zeros and a
        // pattern run, so that some compress and some do not.
        let mut mem: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for p in 0..64 {
            mem.insert(anon + p * 4096, vec![0; 4096]);
        }
        for p in 0..8 {
            let mut b = vec![0; 4096];
            fill(0x5eed, p * 4096, &mut b);
            mem.insert(file + p * 4096, b);
        }
        let mut evicted = 0;
        for (page, npages, seed, kind) in ops {
            // Kinds: anonymous small writes (0, 2, 5), file small writes
            // (1, 3), anonymous whole pages (4).
            let to_file = kind == 1 || kind == 3;
            let base = if to_file { file + (page % 8) * 4096 } else { anon + page * 4096 };
            let len = if kind == 4 { npages * 4096 } else { 100 + seed % 900 };
            let end = (base + len).min(if to_file { file + 8 * 4096 } else { anon + 64 * 4096 });
            let len = end - base;
            let (events, r) = req(&mut m, Request::Write { addr: base, len, seed, privilege: U }).split_reclaimed();
            prop_assert_eq!(r, Response::Done);
            evicted += events.len();
            for a in (base..end).step_by(4096) {
                let b = mem.get_mut(&(a & !0xfff)).unwrap();
                let n = (end - a).min(4096) as usize;
                fill(seed, a, &mut b[..n]);
            }
            let probe = (seed % 72) * 4096;
            let probe = if probe < 64 * 4096 { anon + probe } else { file + probe - 64 * 4096 };
            let want = mem[&probe].clone();
            prop_assert_eq!(read_sum(&mut m, probe, 4096, U), Response::Checksum { checksum: checksum(&want) });
        }
        check(&mut m);
        for (&a, want) in &mem {
            let got = read_sum(&mut m, a, 4096, U);
            let st = m.vmm.stats();
            prop_assert_eq!(got, Response::Checksum { checksum: checksum(want) }, "{:#x} {:?}", a, st);
        }
        let _ = evicted;
        let s = m.vmm.stats();
        prop_assert!(s.pages_evicted + s.pages_dropped > 0, "{s:?}");
        check(&mut m);
        let mut want = vec![0u8; 20_000];
        fill(1, block, &mut want);
        prop_assert_eq!(read_sum(&mut m, block, 20_000, K), Response::Checksum { checksum: checksum(&want) });
        prop_assert_eq!(req(&mut m, Request::Kfree { addr: block, privilege: K }), Response::Done);
        reset_and_check(&mut m);
    }
}

/// Where the host's blocks land depends on the host's requests alone: the
/// kernel's own blocks (which come and go with how requests are batched)
/// do not move them, and `Reset` puts placement back to the boot state. So
/// a trace with `kmalloc` replays with the same addresses however it is
/// sent.
#[test]
fn host_blocks_land_where_the_hosts_requests_alone_say() {
    let host_run = |m: &mut SimMachine| -> Vec<u64> {
        [100u64, 4096, 17, 3000]
            .iter()
            .map(|&size| {
                match req(
                    m,
                    Request::Kmalloc {
                        size,
                        align: 64,
                        privilege: K,
                    },
                )
                .split_reclaimed()
                .1
                {
                    Response::Kmalloc { addr } => addr,
                    r => panic!("{r:?}"),
                }
            })
            .collect()
    };
    let mut quiet = SimMachine::new(512);
    let want = host_run(&mut quiet);
    // The same requests with kernel blocks of various sizes live around them.
    let mut busy = SimMachine::new(512);
    let mut kernel_blocks = Vec::new();
    let mut got = Vec::new();
    for (i, &size) in [100u64, 4096, 17, 3000].iter().enumerate() {
        for k in 0..=i as u64 {
            kernel_blocks.push(busy.vmm.heap_alloc(48 + 1000 * k, 16, false).unwrap());
        }
        match req(
            &mut busy,
            Request::Kmalloc {
                size,
                align: 64,
                privilege: K,
            },
        )
        .split_reclaimed()
        .1
        {
            Response::Kmalloc { addr } => got.push(addr),
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(got, want, "the kernel's blocks moved the host's");
    for b in kernel_blocks {
        busy.vmm.heap_free(b, false).unwrap();
    }
    reset_and_check(&mut busy);
    assert_eq!(host_run(&mut busy), want, "a reset puts placement back");
    // The block is whole granules: the rest of the last one is its own.
    let a = want[2]; // 17 bytes: granules up to a + 32
    assert!(matches!(
        read_sum(&mut quiet, a + 17, 15, K),
        Response::Checksum { .. }
    ));
    assert_eq!(
        read_sum(&mut quiet, a + 17, 16, K),
        Response::Error(protocol::Error::Reserved)
    );
}

/// A reset gives back the heap pages the heap grew into (the kernel's live
/// blocks keep theirs), and the heap takes its frames from the top of
/// memory, out of the way of the host's: after a reset the host gets the
/// frames it got after boot.
#[test]
fn frames_after_a_reset_are_the_boots_though_the_heap_grew() {
    let frames = |m: &mut SimMachine| match req(
        m,
        Request::AllocFrames {
            count: 8,
            contiguous: false,
            privilege: K,
        },
    )
    .split_reclaimed()
    .1
    {
        Response::Frames(runs) => runs,
        r => panic!("{r:?}"),
    };
    let mut m = SimMachine::new(512);
    let boot_heap_pages = m.vmm.stats().heap_pages;
    let at_boot = frames(&mut m);
    // The heap grows: a host block written over 16 pages, and kernel
    // blocks the reset leaves alive.
    let addr = match req(
        &mut m,
        Request::Kmalloc {
            size: 16 * 4096,
            align: 4096,
            privilege: K,
        },
    )
    .split_reclaimed()
    .1
    {
        Response::Kmalloc { addr } => addr,
        r => panic!("{r:?}"),
    };
    ok(
        &mut m,
        Request::Write {
            addr,
            len: 16 * 4096,
            seed: 1,
            privilege: K,
        },
    );
    // Kernel blocks, freed before the reset: their pages go back too.
    let kernel_blocks: Vec<u64> = (0..4)
        .map(|_| {
            let b = m.vmm.heap_alloc(4000, 16, false).unwrap();
            assert_eq!(m.vmm.heap_commit(b, 4000), Ok(()));
            b
        })
        .collect();
    assert!(m.vmm.stats().heap_pages > boot_heap_pages + 16);
    for b in kernel_blocks {
        m.vmm.heap_free(b, false).unwrap();
    }
    reset_and_check(&mut m);
    assert_eq!(
        m.vmm.stats().heap_pages,
        boot_heap_pages,
        "the heap as at boot"
    );
    assert_eq!(frames(&mut m), at_boot);
    // The heap's frames are the highest ones.
    let total = m.vmm.frames().total_frames();
    let (_, heap_pages) = walk_heap(&mut m);
    assert!(
        heap_pages.iter().all(|&n| n >= total - 64),
        "{heap_pages:?}"
    );
}
