//! Every request kind at every boundary of its arguments, from both
//! privileges, on the real guest: each answer is judged by the model (no
//! crash, no divergence), the memory check passes at the end, and a user
//! request never changes an entry of the kernel half (outside the kernel's
//! own heap, which grows while the kernel builds its answers).
//! Needs `qemu-system-x86_64` and the built guest.

use host_runner::judge::{JudgeOptions, JudgedVm};
use host_runner::{Accel, RunnerOptions, VmConfig};
use oracle::checker::GuestMemory;
use protocol::{AreaType, Hello, Privilege, Request, PAGE_SIZE};

const USER: Privilege = Privilege::User;
const KERNEL: Privilege = Privilege::Kernel;

fn config() -> VmConfig {
    let mut c = host_runner::base_config(&RunnerOptions::default())
        .expect("QEMU and the built guest kernel");
    c.accel = Accel::Tcg;
    c
}

/// Addresses at the edges of each space: user space's first and last pages,
/// both sides of the canonical hole, the kernel half's first page, the
/// heap's and the valloc region's, the top, and misaligned and wrapping
/// ones.
fn addresses(h: &Hello) -> Vec<u64> {
    let mut a = vec![
        0,
        PAGE_SIZE,
        PAGE_SIZE + 1,
        h.user_space.end - PAGE_SIZE,
        h.user_space.end,
        0x0000_8000_0000_0000,
        0xffff_7fff_ffff_f000,
        0xffff_8000_0000_0000,
        h.heap.start,
        h.heap.end - PAGE_SIZE,
        h.valloc.start,
        0xffff_ffff_ffff_f000,
        u64::MAX,
    ];
    a.sort_unstable();
    a.dedup();
    a
}

/// Page, frame and byte counts: none, one, a table's worth and one past
/// it, each limit and one past it, and the largest.
const COUNTS: [u64; 9] = [
    0,
    1,
    2,
    512,
    513,
    protocol::MAX_QUERY_PAGES,
    protocol::MAX_QUERY_PAGES + 1,
    1 << 52,
    u64::MAX,
];

/// Every request kind with these arguments, as `privilege`.
fn requests(addr: u64, n: u64, p: Privilege) -> Vec<Request> {
    vec![
        Request::Map {
            addr,
            pages: n,
            writable: true,
            executable: false,
            contiguous: n % 2 == 0,
            privilege: p,
        },
        Request::Write {
            addr,
            len: n,
            seed: 1,
            privilege: p,
        },
        Request::Read {
            addr,
            len: n,
            privilege: p,
        },
        Request::Query {
            addr,
            pages: n,
            privilege: p,
        },
        Request::Evict {
            addr,
            pages: n,
            privilege: p,
        },
        Request::Convert {
            addr,
            pages: n,
            to: AreaType::UsableRam,
            privilege: p,
        },
        Request::Convert {
            addr,
            pages: n,
            to: AreaType::Unusable,
            privilege: p,
        },
        Request::Unmap {
            addr,
            pages: n,
            privilege: p,
        },
        Request::MapFile {
            addr,
            pages: n,
            file: 0,
            file_page: n.wrapping_sub(1),
            privilege: p,
        },
        Request::Vfree {
            addr,
            pages: n,
            privilege: p,
        },
        Request::Kfree { addr, privilege: p },
        Request::FreeFrames {
            frame: addr & 0x000f_ffff_ffff_ffff,
            count: n,
            privilege: p,
        },
        Request::AllocFrames {
            count: n,
            contiguous: n % 2 == 1,
            privilege: p,
        },
        Request::Valloc {
            pages: n,
            privilege: p,
        },
        Request::Kmalloc {
            size: n,
            align: addr & 0x1fff,
            privilege: p,
        },
        Request::HeapScavenge { privilege: p },
        // Space numbers from the argument: mostly none that exists. A
        // kernel create makes one, and the switch then moves the kernel's
        // pass to a fresh user half (its spaces fill up to too_many_spaces;
        // the destroys hit space 0, the current one and absent ones).
        Request::CreateSpace { privilege: p },
        Request::SwitchSpace {
            space: (n as u16).max(1),
            privilege: p,
        },
        Request::DestroySpace {
            space: n as u16,
            privilege: p,
        },
        // A share of the range with the same range of space 0 or a space
        // that does not exist: refused (its pages are not unusable there,
        // or the range is not user memory, or there is no such space).
        Request::Share {
            addr,
            pages: n,
            space: (n as u16) & 1,
            to: addr,
            privilege: p,
        },
        // A kernel reset would undo the pass; a user one must be refused.
        Request::Reset { privilege: USER },
        Request::Stats,
    ]
}

/// Every entry of the kernel half's page tables, as (virtual address the
/// entry maps, level, entry without its accessed and dirty bits), except
/// those of the heap's span.
fn kernel_half(mem: &dyn GuestMemory, h: &Hello) -> Vec<(u64, u8, u64)> {
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    const AD: u64 = (1 << 5) | (1 << 6);
    fn table(mem: &dyn GuestMemory, phys: u64) -> Vec<u64> {
        let mut buf = [0u8; 4096];
        mem.read(phys, &mut buf).expect("a table in RAM");
        buf.chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    }
    fn walk(
        mem: &dyn GuestMemory,
        h: &Hello,
        phys: u64,
        level: u8,
        base: u64,
        out: &mut Vec<(u64, u8, u64)>,
    ) {
        let span = 1u64 << (12 + 9 * u32::from(level - 1));
        let entries = table(mem, phys);
        let range = if level == 4 { 256..512 } else { 0..512 };
        for i in range {
            let e = entries[i];
            let mut va = base + i as u64 * span;
            if level == 4 {
                va |= 0xffff_0000_0000_0000;
            }
            let in_heap = va >= h.heap.start && va + (span - 1) < h.heap.end;
            if e == 0 || in_heap {
                continue;
            }
            out.push((va, level, e & !AD));
            let leaf = level == 1 || (e & (1 << 7)) != 0;
            if e & 1 != 0 && !leaf {
                walk(mem, h, e & ADDR, level - 1, va, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(mem, h, h.page_table_root, 4, 0, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_at_every_boundary_from_both_privileges() {
    let mut vm = JudgedVm::start(&config(), JudgeOptions::default())
        .await
        .expect("boot");
    let hello = vm.hello().clone();
    let mut sent = 0;
    for p in [USER, KERNEL] {
        for addr in addresses(&hello) {
            for n in COUNTS {
                let before = vm
                    .with_ram(|m, h| kernel_half(m, h))
                    .await
                    .expect("read RAM");
                let reqs = requests(addr, n, p);
                sent += reqs.len();
                let run = vm.run_batch(&reqs, false).await;
                if let Some(f) = run.failure {
                    panic!("{p:?} at {addr:#x}, count {n}: {f}");
                }
                assert_eq!(run.answers.len(), reqs.len());
                if p == USER {
                    let after = vm
                        .with_ram(|m, h| kernel_half(m, h))
                        .await
                        .expect("read RAM");
                    if before != after {
                        let changed: Vec<_> = after
                            .iter()
                            .filter(|e| !before.contains(e))
                            .chain(before.iter().filter(|e| !after.contains(e)))
                            .take(4)
                            .map(|(va, l, e)| format!("{va:#x} L{l} {e:#x}"))
                            .collect();
                        panic!("user requests at {addr:#x}, count {n} changed the kernel half: {changed:?}");
                    }
                }
            }
        }
        // What the kernel's requests built stays consistent too.
        vm.check().await.expect("memory check");
    }
    // The comparison sees a change when there is one: a kernel map in
    // the valloc region adds kernel-half entries. A kernel reset first:
    // the pass switched to new spaces and filled their user halves, and
    // the clock may not take another space's pages for the map.
    let run = vm
        .run_batch(&[Request::Reset { privilege: KERNEL }], false)
        .await;
    assert!(run.failure.is_none(), "{:?}", run.failure);
    let before = vm
        .with_ram(|m, h| kernel_half(m, h))
        .await
        .expect("read RAM");
    let map = Request::map_writable(hello.valloc.start + (1 << 30), 1, KERNEL);
    let write = Request::Write {
        addr: hello.valloc.start + (1 << 30),
        len: 8,
        seed: 1,
        privilege: KERNEL,
    };
    let run = vm.run_batch(&[map, write], false).await;
    assert!(run.failure.is_none(), "{:?}", run.failure);
    assert_eq!(
        run.answers.first().cloned().map(|r| r.split_reclaimed().1),
        Some(protocol::Response::Done),
        "the kernel map is made"
    );
    let after = vm
        .with_ram(|m, h| kernel_half(m, h))
        .await
        .expect("read RAM");
    assert_ne!(before, after, "a kernel map changes the kernel half");
    eprintln!(
        "{sent} requests at the boundaries, all judged; {} kernel-half entries compared",
        before.len()
    );
    vm.finish().await.expect("clean shutdown");
}
