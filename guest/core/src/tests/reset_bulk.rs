//! `Reset` against a fresh boot (written by the review of the bulk reset):
//! after any sequence, a reset (again while the last filled the event
//! ring, as the runner's fresh state does) leaves the machine as a fresh
//! boot leaves it (bitmap, counters, the metadata outside the swap store's
//! data area, the PML4), and the same follow-up sequence gets the same
//! answers on both. The sequences create, switch and destroy address spaces too, so
//! the reset may start in any space with others live.

use proptest::prelude::*;
use protocol::{AreaType, Request, Response};

use super::*;
use crate::conv::usize_of;

const FILES: &[(u64, u64)] = &[(24, 5)];

/// One step; the `usize`s pick among what the host holds.
#[derive(Clone, Debug)]
enum Op {
    Send(Request),
    Free(usize, u64),
    Vfree(usize, u64),
    Kfree(usize),
    /// A write into a host heap block (faults heap pages in).
    HeapWrite(usize, u64),
}

fn addr() -> impl Strategy<Value = (u64, Privilege)> {
    near(vec![
        (0x20_0000u64, U),
        (0x4000_0000, U),
        (0x7fff_ffff_8000, U),
        (0xffff_c080_0000_0000, K),
        (0xffff_c100_0000_0000, K),
        (0xffff_ff7f_ffff_8000, K),
    ])
}

fn op() -> impl Strategy<Value = Op> {
    let requests = prop_oneof![
        4 => (addr(), 1u64..64, any::<bool>(), proptest::bool::weighted(0.2), proptest::bool::weighted(0.3))
            .prop_map(|((addr, privilege), pages, writable, contiguous, executable)| Request::Map { addr, pages, writable, contiguous, privilege, executable }),
        2 => (addr(), 1u64..12).prop_map(|((addr, privilege), pages)| Request::Unmap { addr, pages, privilege }),
        3 => (addr(), 1u64..200, any::<bool>())
            .prop_map(|((addr, privilege), pages, usable)| Request::Convert { addr, pages, to: if usable { AreaType::UsableRam } else { AreaType::Unusable }, privilege }),
        5 => (addr(), 0u64..4096, 0u64..(64 * 4096), any::<u64>())
            .prop_map(|((base, privilege), off, len, seed)| Request::Write { addr: base.wrapping_add(off), len, seed, privilege }),
        2 => (addr(), 0u64..4096, 0u64..(16 * 4096))
            .prop_map(|((base, privilege), off, len)| Request::Read { addr: base.wrapping_add(off), len, privilege }),
        2 => (addr(), 1u64..24, 0u64..24)
            .prop_map(|((addr, privilege), pages, file_page)| Request::MapFile { addr, pages, file: 0, file_page, privilege }),
        3 => (addr(), 1u64..64).prop_map(|((addr, privilege), pages)| Request::Evict { addr, pages, privilege }),
        2 => (1u64..40, proptest::bool::weighted(0.3))
            .prop_map(|(count, contiguous)| Request::AllocFrames { count, contiguous, privilege: K }),
        1 => (1u64..6).prop_map(|pages| Request::Valloc { pages, privilege: K }),
        3 => (1u64..(64 * 1024)).prop_map(|size| Request::Kmalloc { size, align: 16, privilege: K }),
        2 => (1u64..(2 << 20)).prop_map(|size| Request::Kmalloc { size, align: 4096, privilege: K }),
        1 => Just(Request::HeapScavenge { privilege: K }),
        1 => Just(Request::Reset { privilege: K }),
        // Spaces: a reset from any space, others live, is a fresh boot too.
        2 => Just(Request::CreateSpace { privilege: K }),
        3 => (0u16..4).prop_map(|space| Request::SwitchSpace { space, privilege: K }),
        1 => (0u16..4).prop_map(|space| Request::DestroySpace { space, privilege: K }),
    ]
    .prop_map(Op::Send);
    prop_oneof![
        30 => requests,
        2 => (any::<usize>(), 1u64..8).prop_map(|(p, c)| Op::Free(p, c)),
        1 => (any::<usize>(), 1u64..4).prop_map(|(p, c)| Op::Vfree(p, c)),
        2 => any::<usize>().prop_map(Op::Kfree),
        3 => (any::<usize>(), any::<u64>()).prop_map(|(p, s)| Op::HeapWrite(p, s)),
    ]
}

/// What the host holds, to name in frees.
#[derive(Default)]
struct Held {
    frames: Vec<u64>,
    valloc: Vec<u64>,
    blocks: Vec<(u64, u64)>,
}

fn pick<T: Copy>(v: &[T], p: usize) -> Option<T> {
    (!v.is_empty()).then(|| v[p % v.len()])
}

fn request(held: &Held, op: &Op) -> Request {
    match *op {
        Op::Send(ref r) => r.clone(),
        Op::Free(p, count) => Request::FreeFrames {
            frame: pick(&held.frames, p).unwrap_or(0x1000),
            count,
            privilege: K,
        },
        Op::Vfree(p, pages) => Request::Vfree {
            addr: pick(&held.valloc, p).unwrap_or(crate::layout::VALLOC_START),
            pages,
            privilege: K,
        },
        Op::Kfree(p) => Request::Kfree {
            addr: pick(&held.blocks, p).map_or(crate::layout::HEAP_START, |b| b.0),
            privilege: K,
        },
        Op::HeapWrite(p, seed) => {
            let (addr, len) = pick(&held.blocks, p).unwrap_or((crate::layout::HEAP_START, 1));
            Request::Write {
                addr,
                len,
                seed,
                privilege: K,
            }
        }
    }
}

fn note(held: &mut Held, r: &Request, got: &Response) {
    let (_, got) = got.clone().split_reclaimed();
    match (r, &got) {
        (Request::AllocFrames { .. }, Response::Frames(runs)) => {
            for run in runs {
                held.frames
                    .extend((0..run.count).map(|i| run.start + i * 4096));
            }
        }
        (Request::Valloc { pages, .. }, Response::Valloc { addr }) => {
            held.valloc.extend((0..*pages).map(|i| addr + i * 4096));
        }
        (Request::Kmalloc { size, .. }, Response::Kmalloc { addr }) => {
            held.blocks.push((*addr, *size))
        }
        (Request::Kfree { addr, .. }, Response::Done) => held.blocks.retain(|b| b.0 != *addr),
        (Request::Reset { .. }, Response::Done) => *held = Held::default(),
        _ => {}
    }
}

/// Runs `ops` on `m`; answers the answers.
fn run(m: &mut SimMachine, held: &mut Held, ops: &[Op]) -> Vec<Response> {
    let mut out = Vec::new();
    for op in ops {
        let r = request(held, op);
        let got = req(m, r.clone());
        note(held, &r, &got);
        out.push(got);
    }
    out
}

/// The counters, the frame bitmap, the metadata and the PML4's entries.
type State = (Stats, Vec<u8>, Vec<u8>, Vec<(u64, u64)>);

/// The metadata frames but the swap store's (whose data area keeps the
/// bytes of freed slots), the frame bitmap and the counters.
fn state(m: &mut SimMachine) -> State {
    let stats = m.vmm.stats();
    let bitmap = m.vmm.frames().bitmap().to_vec();
    let meta = m.vmm.metadata_range();
    let swap = m.vmm.swap_range();
    let mut bytes = Vec::new();
    for n in meta.start / 4096..meta.end / 4096 {
        if (swap.start / 4096..swap.end / 4096).contains(&n) {
            continue;
        }
        bytes.extend_from_slice(m.vmm.mem().frame_bytes(frame(n)));
    }
    // The PML4's managed slots.
    let pml4 = m.vmm.pml4();
    let slots = (0..512u64)
        .map(|i| (i, pte::raw(&m.vmm.mem().table(pml4)[usize_of(i)])))
        .filter(|&(_, raw)| raw != 0)
        .collect();
    (stats, bitmap, bytes, slots)
}

fn differential(total: u64, first: &[Op], then: &[Op]) -> Result<(), TestCaseError> {
    let mut a = SimMachine::with_files(total, FILES);
    let mut b = SimMachine::with_files(total, FILES);
    // The kernel's own blocks, as the real kernel has them from boot on
    // (the heap keeps their pages across a reset).
    for m in [&mut a, &mut b] {
        for size in [100u64, 3 * 4096, 40_000] {
            m.kernel_alloc(size).expect("a kernel block");
        }
    }
    let mut held_a = Held::default();
    run(&mut a, &mut held_a, first);
    // The runner's fresh state: `Reset`, again while its heap scavenge
    // filled the event ring (a reset gives back at most a ring of heap
    // pages; the next gives back more, and zeroes the counters again).
    for round in 0.. {
        prop_assert!(
            round < 32,
            "a reset gives back a ring of the heap's few rings"
        );
        let (events, answer) = req(&mut a, Request::Reset { privilege: K }).split_reclaimed();
        prop_assert_eq!(answer, Response::Done);
        check(&mut a);
        if events.len() < protocol::RECLAIM_RING {
            break;
        }
    }
    let (sa, ba, ma, pa) = state(&mut a);
    let (sb, bb, mb, pb) = state(&mut b);
    prop_assert_eq!(sa, sb, "stats after reset vs fresh");
    prop_assert!(ba == bb, "frame bitmap after reset vs fresh");
    prop_assert_eq!(pa, pb, "PML4 after reset vs fresh");
    if ma != mb {
        let at = ma.iter().zip(&mb).position(|(x, y)| x != y);
        prop_assert!(
            false,
            "metadata after reset vs fresh: first differing byte {at:?}"
        );
    }
    let mut held_b = Held::default();
    let mut held_a = Held::default();
    let ra = run(&mut a, &mut held_a, then);
    let rb = run(&mut b, &mut held_b, then);
    for (i, (x, y)) in ra.iter().zip(&rb).enumerate() {
        prop_assert_eq!(x, y, "answer {} of the follow-up: {:?}", i, then[i]);
    }
    check(&mut a);
    check(&mut b);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// Small RAM: pressure, swap, a one-table heap.
    #[test]
    fn reset_is_a_fresh_boot_small(
        first in proptest::collection::vec(op(), 1..60),
        then in proptest::collection::vec(op(), 1..30),
    ) {
        differential(400, &first, &then)?;
    }

    /// A heap of several tables (RAM / 4 > 512 pages).
    #[test]
    fn reset_is_a_fresh_boot_big_heap(
        first in proptest::collection::vec(op(), 1..60),
        then in proptest::collection::vec(op(), 1..30),
    ) {
        differential(4200, &first, &then)?;
    }
}

/// The swap store's search hint is a placement choice: `Reset` puts it
/// back where boot left it, so the same sequence gets the same slot
/// numbers in its `Swapped` events after a reset as after a fresh boot
/// (it did not before: found by the review of the bulk reset).
#[test]
fn swap_slots_after_a_reset_are_those_of_a_fresh_boot() {
    let seq = |m: &mut SimMachine| {
        assert_eq!(
            req(m, Request::map_writable(0x4000_0000, 4, U)),
            Response::Done
        );
        let evict = Request::Evict {
            addr: 0x4000_0000,
            pages: 1,
            privilege: U,
        };
        req(m, evict)
    };
    let mut a = SimMachine::new(400);
    let mut b = SimMachine::new(400);
    seq(&mut a);
    reset_and_check(&mut a);
    assert_eq!(seq(&mut a), seq(&mut b));
}

/// What the runner's fresh state relies on: a `Reset` gives back at most a
/// ring of free heap pages (its answer's events), so a host block of more,
/// written and then freed by the reset, leaves the rest present, which a
/// fresh boot has not; another `Reset` gives back the rest and zeroes the
/// counters again, and after it the machine is a fresh boot's. The
/// runner's probe found a campaign (`fuzz --seed 49`) whose first sequence
/// ran differently after one reset than after a boot (every job of it then
/// booted a guest per sequence); the runner now resets again while a reset
/// gave back many pages (`host-runner`'s `judge::another_reset`, shown on
/// the guest by its test `judged_reset_past_the_reclaim_ring_is_the_boot_state`).
#[test]
fn a_reset_that_fills_the_event_ring_leaves_heap_pages_for_the_next() {
    let pages = protocol::RECLAIM_RING as u64 + 488;
    let first = [
        Op::Send(Request::Kmalloc {
            size: pages * 4096,
            align: 4096,
            privilege: K,
        }),
        Op::HeapWrite(0, 7),
    ];
    let mut m = SimMachine::with_files(8192, FILES);
    let mut held = Held::default();
    let got = run(&mut m, &mut held, &first);
    assert!(
        matches!(got[0], Response::Kmalloc { .. }) && got[1] == Response::Done,
        "{got:?}"
    );
    let reset = || Request::Reset { privilege: K };
    let (events, answer) = req(&mut m, reset()).split_reclaimed();
    assert_eq!(answer, Response::Done);
    assert_eq!(events.len(), protocol::RECLAIM_RING, "the ring filled");
    let s = m.vmm.stats();
    assert_eq!(s.heap_pages, 488, "the block's pages past the ring stay");
    assert_eq!(s.free_frames + s.heap_pages, s.boot_free_frames);
    let (events, answer) = req(&mut m, reset()).split_reclaimed();
    assert_eq!(answer, Response::Done);
    assert_eq!(events.len(), 488, "the next reset gives back the rest");
    assert_eq!(m.vmm.stats().heap_pages, 0);
    // And the same follow-up as after a boot (`differential` resets again
    // as the runner does, and compares the state and the answers).
    let then = [
        Op::Send(Request::Stats),
        Op::Send(Request::AllocFrames {
            count: 3,
            contiguous: false,
            privilege: K,
        }),
        Op::Send(Request::Kmalloc {
            size: 3 * 4096,
            align: 4096,
            privilege: K,
        }),
        Op::HeapWrite(0, 9),
        Op::Send(Request::Stats),
    ];
    differential(8192, &first, &then).expect("reset again is a fresh boot");
}
