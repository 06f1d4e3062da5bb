//! Seeded generation: determinism, coverage of every op kind and of the
//! addresses that break VMMs, stepping with answers, shards.

use std::collections::BTreeSet;

use protocol::{FrameRun, Privilege, Reclaim, Response, MAX_TOUCH_LEN};
use trace::{
    files_of_pages, generate, parse_str, FileSpec, GenConfig, Generator, Op, OpKind, Shard, Weights,
};

const USER_END: u64 = 0x0000_8000_0000_0000;
const HIGH_HALF: u64 = 0xffff_8000_0000_0000;

fn config(ops: usize) -> GenConfig {
    GenConfig {
        ops,
        weights: Weights::uniform(),
        ..GenConfig::default()
    }
}

fn page_range(op: &Op) -> Option<(u64, u64)> {
    match *op {
        Op::Map { addr, pages, .. }
        | Op::Unmap { addr, pages, .. }
        | Op::Convert { addr, pages, .. }
        | Op::Query { addr, pages, .. } => Some((addr, pages)),
        _ => None,
    }
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let a = generate(1234, &GenConfig::default());
    assert_eq!(a, generate(1234, &GenConfig::default()));
    assert_ne!(a, generate(1235, &GenConfig::default()));
    assert_eq!(a.len(), 200);
    assert_eq!(a.header.seed, Some(1234));
    assert_eq!(a.header.ram_mib, Some(128));
    assert_eq!(
        a.header.files,
        files_of_pages(&[24, 600]),
        "the header names the files the campaign boots with"
    );
    // Generated traces survive the file format.
    assert_eq!(parse_str(&a.to_text()).unwrap(), a);
}

#[test]
fn every_kind_appears_and_default_weights_never_panic() {
    let t = generate(1, &config(2000));
    let kinds: BTreeSet<OpKind> = t.entries.iter().map(|e| e.op.kind()).collect();
    assert_eq!(kinds.len(), OpKind::ALL.len(), "{kinds:?}");
    // Every target of a convert, pinned (never-swap) RAM included.
    let targets: BTreeSet<String> = t
        .entries
        .iter()
        .filter_map(|e| match e.op {
            trace::Op::Convert { to, .. } => Some(format!("{to:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(targets.len(), 3, "{targets:?}");
    let t = generate(
        1,
        &GenConfig {
            ops: 2000,
            ..GenConfig::default()
        },
    );
    assert!(t.entries.iter().all(|e| e.op.kind() != OpKind::Panic));
    let only_maps = Weights([0; OpKind::COUNT]).set(OpKind::Map, 1);
    let t = generate(
        1,
        &GenConfig {
            ops: 50,
            ram_mib: 64,
            weights: only_maps,
            ..GenConfig::default()
        },
    );
    assert!(t.entries.iter().all(|e| e.op.kind() == OpKind::Map));
}

#[test]
fn addresses_hit_what_breaks_vmms() {
    let t = generate(
        99,
        &GenConfig {
            ops: 5000,
            ..GenConfig::default()
        },
    );
    let ranges: Vec<(u64, u64)> = t.entries.iter().filter_map(|e| page_range(&e.op)).collect();
    let crosses = |size: u64| {
        ranges.iter().any(|&(a, p)| {
            let end = a.saturating_add(p.saturating_mul(4096));
            a % 4096 == 0 && p < 1 << 20 && a / size != (end - 1) / size && a % size != 0
        })
    };
    for size in [1 << 21, 1 << 30, 1 << 39] {
        assert!(crosses(size), "a range across a {size:#x} boundary");
        assert!(
            ranges.iter().any(|&(a, _)| a % size == 0 && a != 0),
            "a range starting at a {size:#x} boundary"
        );
    }
    let has = |what: &str, f: &dyn Fn(u64, u64) -> bool| {
        assert!(ranges.iter().any(|&(a, p)| f(a, p)), "{what}")
    };
    has("the canonical hole", &|a, _| {
        (USER_END..HIGH_HALF).contains(&a)
    });
    has("across the user/kernel boundary", &|a, p| {
        a < USER_END && a.saturating_add(p.saturating_mul(4096)) > USER_END
    });
    has("kernel request space", &|a, _| {
        (0xffff_c080_0000_0000..0xffff_ff80_0000_0000).contains(&a)
    });
    has("zero pages", &|_, p| p == 0);
    has("huge counts", &|_, p| p > 1 << 40);
    has("misaligned", &|a, _| a % 4096 != 0);
    has("memory pressure (over half of RAM)", &|_, p| {
        (128 * 256 / 2..1 << 20).contains(&p)
    });
    // Ranges are reused: exactly, and overlapping partially.
    let exact = ranges.windows(40).any(|w| w[1..].contains(&w[0]));
    let partial = ranges.iter().enumerate().any(|(i, &(a, p))| {
        ranges[i + 1..]
            .iter()
            .take(20)
            .any(|&(b, q)| b != a && b < a + p.min(1 << 20) * 4096 && a < b + q.min(1 << 20) * 4096)
    });
    assert!(exact && partial);
    // Both privileges, writes read back, lengths over the limit.
    let privs: BTreeSet<_> = t
        .entries
        .iter()
        .filter_map(|e| e.op.privilege())
        .map(|p| p == Privilege::User)
        .collect();
    assert_eq!(privs.len(), 2);
    let writes: Vec<(u64, u64)> = t
        .entries
        .iter()
        .filter_map(|e| {
            if let Op::Write { addr, len, .. } = e.op {
                Some((addr, len))
            } else {
                None
            }
        })
        .collect();
    let read_back = t
        .entries
        .iter()
        .filter(|e| matches!(e.op, Op::Read { addr, len, .. } if writes.contains(&(addr, len))))
        .count();
    assert!(read_back > 50, "{read_back}");
    assert!(writes.iter().any(|&(_, l)| l > MAX_TOUCH_LEN));
}

#[test]
fn stepping_uses_the_answers() {
    let only = Weights([0; OpKind::COUNT])
        .set(OpKind::AllocFrames, 1)
        .set(OpKind::FreeFrames, 3)
        .set(OpKind::Valloc, 1)
        .set(OpKind::Vfree, 3);
    let mut g = Generator::new(
        5,
        GenConfig {
            ops: 0,
            weights: only,
            ..GenConfig::default()
        },
    );
    let mut answer: Option<Response> = None;
    let (mut freed_known, mut vfreed_known) = (0, 0);
    for _ in 0..400 {
        let op = g.next_op(answer.as_ref());
        answer = Some(match op {
            Op::AllocFrames { .. } => Response::Frames(vec![FrameRun {
                start: 0x77_0000,
                count: 4,
            }]),
            Op::Valloc { .. } => Response::Valloc {
                addr: 0xffff_d000_0000_0000,
            },
            Op::FreeFrames { frame, .. } => {
                freed_known += usize::from((0x77_0000..0x77_4000).contains(&frame));
                Response::Error(protocol::Error::NotOwned { frame })
            }
            Op::Vfree { addr, .. } => {
                vfreed_known +=
                    usize::from((0xffff_d000_0000_0000..0xffff_d000_0000_2000).contains(&addr));
                Response::Done
            }
            _ => Response::Done,
        });
    }
    assert!(
        freed_known > 50 && vfreed_known > 20,
        "{freed_known} {vfreed_known}"
    );
    // Same seed, same answers: same operations.
    let run = |seed| {
        let mut g = Generator::new(seed, GenConfig::default());
        (0..100)
            .map(|_| g.next_op(Some(&Response::Done)))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
}

#[test]
fn shards_split_seeds_without_overlap() {
    let shards: Vec<Shard> = (1..=4).map(|i| format!("{i}/4").parse().unwrap()).collect();
    for seed in 0..1000u64 {
        assert_eq!(shards.iter().filter(|s| s.contains(seed)).count(), 1);
    }
    assert_eq!(
        shards[1].seeds(10).take(3).collect::<Vec<_>>(),
        vec![13, 17, 21]
    );
    assert!(Shard::ALL.contains(12345));
    for bad in ["0/4", "5/4", "1/0", "2", "a/b"] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
    assert_eq!(shards[2].to_string(), "3/4");
}

#[test]
fn default_weights_fuzz_every_version_2_operation() {
    let t = generate(
        8,
        &GenConfig {
            ops: 3000,
            ..GenConfig::default()
        },
    );
    let count = |k: OpKind| t.entries.iter().filter(|e| e.op.kind() == k).count();
    for k in [
        OpKind::MapFile,
        OpKind::Evict,
        OpKind::Kmalloc,
        OpKind::Kfree,
        OpKind::HeapScavenge,
    ] {
        assert!(count(k) > 30, "{k:?}: {}", count(k));
    }
}

#[test]
fn map_file_aims_at_the_guests_files_and_past_them() {
    let files = vec![
        FileSpec { pages: 5, seed: 1 },
        FileSpec {
            pages: 700,
            seed: 2,
        },
    ];
    let only = Weights([0; OpKind::COUNT]).set(OpKind::MapFile, 1);
    let t = generate(
        11,
        &GenConfig {
            ops: 1000,
            weights: only,
            files: files.clone(),
            ..GenConfig::default()
        },
    );
    assert_eq!(t.header.files, files);
    let windows: Vec<(u8, u64, u64)> = t
        .entries
        .iter()
        .map(|e| match e.op {
            Op::MapFile {
                file,
                file_page,
                pages,
                ..
            } => (file, file_page, pages),
            ref op => panic!("{op:?}"),
        })
        .collect();
    let fits = |&(f, start, pages): &(u8, u64, u64)| {
        files.get(usize::from(f)).is_some_and(|spec| {
            pages > 0
                && start
                    .checked_add(pages)
                    .is_some_and(|end| end <= spec.pages)
        })
    };
    let fitting = windows.iter().filter(|w| fits(w)).count();
    assert!(fitting > 600, "most windows fit a file: {fitting}");
    for f in [0u8, 1] {
        assert!(windows.iter().any(|w| w.0 == f && fits(w)), "file {f}");
        let last = files[usize::from(f)].pages - 1;
        assert!(
            windows.iter().any(|w| w.0 == f && w.1 == last && w.2 == 1),
            "the last page of file {f}"
        );
    }
    assert!(
        windows.iter().any(|w| w.0 == 1 && w.1 == 0 && w.2 == 700),
        "a whole file"
    );
    assert!(windows.iter().any(|w| w.0 == 2), "a file the guest lacks");
    assert!(
        windows.iter().any(|w| usize::from(w.0) < 2 && !fits(w)),
        "a window past a file's end"
    );
}

#[test]
fn the_heap_operations_use_the_blocks_the_guest_handed_out() {
    let only = Weights([0; OpKind::COUNT])
        .set(OpKind::Kmalloc, 2)
        .set(OpKind::Kfree, 2)
        .set(OpKind::Write, 2)
        .set(OpKind::Read, 1);
    let mut g = Generator::new(
        21,
        GenConfig {
            ops: 0,
            weights: only,
            ..GenConfig::default()
        },
    );
    let heap = 0xffff_c000_0000_0000u64;
    let mut next = heap;
    let mut live: Vec<u64> = Vec::new();
    let mut freed: Vec<u64> = Vec::new();
    let (mut frees_of_live, mut double_frees, mut touches_in_blocks) = (0, 0, 0);
    let mut answer: Option<Response> = None;
    for i in 0..2000 {
        let op = g.next_op(answer.as_ref());
        let plain = match op {
            Op::Kmalloc { size, .. } if (1..=1 << 20).contains(&size) => {
                let addr = next;
                next += size.next_multiple_of(16);
                live.push(addr);
                Response::Kmalloc { addr }
            }
            Op::Kfree { addr, privilege } => {
                if live.contains(&addr) && privilege == Privilege::Kernel {
                    frees_of_live += 1;
                    live.retain(|&a| a != addr);
                    freed.push(addr);
                } else if freed.contains(&addr) {
                    double_frees += 1;
                }
                Response::Done
            }
            Op::Write { addr, .. } | Op::Read { addr, .. } => {
                touches_in_blocks += usize::from((heap..next).contains(&addr));
                Response::Done
            }
            _ => Response::Done,
        };
        // Answers inside `Reclaimed` teach the generator the same.
        answer = Some(if i % 3 == 0 {
            Response::Reclaimed {
                events: vec![Reclaim::Dropped { addr: 0x1000 }],
                response: Box::new(plain),
            }
        } else {
            plain
        });
    }
    assert!(
        frees_of_live > 200 && double_frees > 10 && touches_in_blocks > 50,
        "{frees_of_live} {double_frees} {touches_in_blocks}"
    );
}

#[test]
fn absurd_answers_do_not_crash_the_generator() {
    // A buggy guest may answer anything: blocks at the top of the address
    // space or of absurd sizes, frames past the end, valloc at u64::MAX.
    let mut g = Generator::new(
        41,
        GenConfig {
            ops: 0,
            ..GenConfig::default()
        },
    );
    let r = protocol::PhysRange {
        start: u64::MAX - 4095,
        end: u64::MAX,
    };
    let v = protocol::VirtRange {
        start: u64::MAX - 4095,
        end: u64::MAX,
    };
    let hello = protocol::Hello {
        protocol_version: 2,
        ram_bytes: u64::MAX,
        total_frames: u64::MAX,
        boot_free_frames: u64::MAX,
        page_table_root: 0,
        max_spaces: u16::MAX,
        direct_map_offset: u64::MAX,
        frame_bitmap: r,
        boot_reserved: vec![r],
        kernel_image: r,
        user_space: v,
        kernel_space: v,
        heap: v,
        valloc: v,
        reserved_pml4_slots: vec![],
        files: vec![],
        swap: r,
        frame_info: r,
        heap_max_bytes: u64::MAX,
        ring: protocol::PhysRange { start: 0, end: 0 },
        coverage: None,
    };
    let mut answer: Option<Response> = None;
    for i in 0..3000u64 {
        let op = g.next_op(answer.as_ref());
        answer = Some(match op {
            Op::Hello => Response::Hello(Box::new(hello.clone())),
            Op::Kmalloc { .. } => Response::Kmalloc {
                addr: u64::MAX - (i % 7) * 16,
            },
            Op::AllocFrames { .. } => Response::Frames(vec![FrameRun {
                start: u64::MAX - 4095,
                count: u64::MAX,
            }]),
            Op::Valloc { .. } => Response::Valloc { addr: u64::MAX },
            _ => Response::Done,
        });
    }
}

/// Told by `stats` how many frames are free, the generator drains the
/// allocator to its last frame within a few dozen `alloc_frames` (each may
/// take at most `MAX_ALLOC_FRAMES`), counting what each answer took.
#[test]
fn the_allocator_is_drained_to_its_last_frame() {
    let only = Weights([0; OpKind::COUNT])
        .set(OpKind::AllocFrames, 4)
        .set(OpKind::Stats, 1);
    for seed in 0..5 {
        let mut g = Generator::new(
            seed,
            GenConfig {
                ops: 0,
                weights: only,
                ..GenConfig::default()
            },
        );
        let mut free = 30_000u64;
        let mut answer: Option<Response> = None;
        let mut ops = 0;
        while free > 0 {
            ops += 1;
            assert!(ops < 400, "seed {seed}: {free} frames still free");
            let op = g.next_op(answer.as_ref());
            answer = Some(match op {
                Op::AllocFrames { count, .. }
                    if (1..=protocol::MAX_ALLOC_FRAMES).contains(&count) && count <= free =>
                {
                    free -= count;
                    Response::Frames(vec![FrameRun {
                        start: 0x100_0000,
                        count,
                    }])
                }
                Op::AllocFrames { .. } => Response::Error(protocol::Error::OutOfMemory),
                Op::Stats => Response::Stats(protocol::Stats {
                    free_frames: free,
                    ..protocol::Stats::default()
                }),
                _ => Response::Done,
            });
        }
    }
}

/// Address spaces: the generator creates, switches and destroys spaces it
/// believes exist (numbers handed out lowest first, as the guest does),
/// mostly aims switches and destroys at live spaces (some at space 0, the
/// current one or one that cannot exist, to reach every refusal), and
/// often touches what it wrote before right after a switch, through the
/// new space.
#[test]
fn spaces_are_created_switched_destroyed_and_touched_across() {
    let only = Weights([0; OpKind::COUNT])
        .set(OpKind::Map, 2)
        .set(OpKind::Write, 3)
        .set(OpKind::CreateSpace, 2)
        .set(OpKind::SwitchSpace, 3)
        .set(OpKind::DestroySpace, 1);
    let ops = generate(
        11,
        &GenConfig {
            ops: 3000,
            weights: only,
            ..GenConfig::default()
        },
    )
    .ops()
    .cloned()
    .collect::<Vec<_>>();
    // Replay the generator's beliefs as the spec says they go.
    let mut live: BTreeSet<u16> = BTreeSet::new();
    let mut current = 0u16;
    let (mut switches_live, mut switches, mut destroys_live, mut destroys) = (0, 0, 0, 0);
    let (mut refused_destroys, mut touched_after_switch) = (0, 0);
    let mut written: BTreeSet<u64> = BTreeSet::new();
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::CreateSpace {
                privilege: Privilege::Kernel,
            } => {
                if let Some(n) = (1..16).find(|n| !live.contains(n)) {
                    live.insert(n);
                }
            }
            Op::SwitchSpace { space, privilege } => {
                switches += 1;
                if privilege == Privilege::Kernel && (space == 0 || live.contains(&space)) {
                    switches_live += 1;
                    current = space;
                    if let Some(Op::Read { addr, .. } | Op::Write { addr, .. }) = ops.get(i + 1) {
                        touched_after_switch += usize::from(written.contains(addr));
                    }
                }
            }
            Op::DestroySpace { space, privilege } => {
                destroys += 1;
                let ok = privilege == Privilege::Kernel
                    && space != 0
                    && space != current
                    && live.contains(&space);
                if ok {
                    destroys_live += 1;
                    live.remove(&space);
                } else {
                    refused_destroys += 1;
                }
            }
            Op::Write { addr, .. } => {
                written.insert(addr);
            }
            _ => {}
        }
    }
    assert!(switches > 100 && destroys > 30, "{switches} {destroys}");
    assert!(
        switches_live * 10 >= switches * 7,
        "most switches aim at a live space: {switches_live}/{switches}"
    );
    assert!(
        destroys_live * 2 >= destroys,
        "most destroys end a live space: {destroys_live}/{destroys}"
    );
    assert!(refused_destroys > 0, "some destroys are refused");
    assert!(
        touched_after_switch * 5 >= switches_live,
        "a switch is often followed by a touch of what was written: {touched_after_switch}/{switches_live}"
    );
}

/// The generator takes the number of spaces from the guest's `hello`:
/// with four, it aims no switch or destroy past space 5 (one past the
/// last number, to be refused).
#[test]
fn the_number_of_spaces_comes_from_hello() {
    let only = Weights([0; OpKind::COUNT])
        .set(OpKind::CreateSpace, 2)
        .set(OpKind::SwitchSpace, 3)
        .set(OpKind::DestroySpace, 1);
    let mut g = Generator::new(
        3,
        GenConfig {
            ops: 0,
            weights: only,
            ..GenConfig::default()
        },
    );
    let hello = protocol::Hello {
        max_spaces: 4,
        ..Default::default()
    };
    g.next_op(None);
    let mut highest = 0;
    let mut answer = Some(Response::Hello(Box::new(hello)));
    for _ in 0..2000 {
        match g.next_op(answer.take().as_ref()) {
            Op::SwitchSpace { space, .. } | Op::DestroySpace { space, .. } => {
                highest = highest.max(space)
            }
            _ => {}
        }
    }
    assert_eq!(highest, 5, "numbers 0..4 exist, 5 is one past them");
}

/// Shared memory: most shares name pages written before in the current
/// space as their source and a live space as their target (the same
/// address in another space, or a fresh range), a few a space that cannot
/// exist; and about half the shares that can succeed are followed by the
/// touches across spaces: a read of the target, a write there, and a read
/// of the source back home.
#[test]
fn shares_aim_at_written_pages_and_are_touched_across_spaces() {
    let only = Weights([0; OpKind::COUNT])
        .set(OpKind::Map, 2)
        .set(OpKind::Write, 3)
        .set(OpKind::CreateSpace, 1)
        .set(OpKind::SwitchSpace, 1)
        .set(OpKind::Share, 3);
    let ops = generate(
        5,
        &GenConfig {
            ops: 3000,
            weights: only,
            ..GenConfig::default()
        },
    )
    .ops()
    .cloned()
    .collect::<Vec<_>>();
    let mut written_pages: BTreeSet<u64> = BTreeSet::new();
    let (mut shares, mut from_written, mut to_other, mut same_addr, mut across) = (0, 0, 0, 0, 0);
    let mut live: BTreeSet<u16> = BTreeSet::new();
    let mut current = 0u16;
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::CreateSpace {
                privilege: Privilege::Kernel,
            } => {
                if let Some(n) = (1..16).find(|n| !live.contains(n)) {
                    live.insert(n);
                }
            }
            Op::SwitchSpace {
                space,
                privilege: Privilege::Kernel,
            } if space == 0 || live.contains(&space) => current = space,
            Op::Write { addr, .. } => {
                written_pages.insert(addr & !0xfff);
            }
            Op::Share {
                addr, space, to, ..
            } => {
                shares += 1;
                from_written += usize::from(written_pages.contains(&addr));
                to_other += usize::from(space != current && (space == 0 || live.contains(&space)));
                same_addr += usize::from(space != current && to == addr);
                // The pattern: [switch], read of the target, write of it.
                let rest = &ops[i + 1..ops.len().min(i + 4)];
                let read_then_write = rest.windows(2).any(|w| {
                    matches!(w, [Op::Read { addr: r, .. }, Op::Write { addr: w, .. }] if r == w && *r >> 12 >= to >> 12)
                });
                across += usize::from(read_then_write);
            }
            _ => {}
        }
    }
    assert!(shares > 200, "{shares}");
    assert!(
        from_written * 2 >= shares,
        "most shares name written pages: {from_written}/{shares}"
    );
    assert!(
        to_other * 4 >= shares,
        "many aim at another live space: {to_other}/{shares}"
    );
    assert!(
        same_addr * 10 >= shares,
        "some at the same address: {same_addr}/{shares}"
    );
    assert!(across * 5 >= shares, "touched across: {across}/{shares}");
}
