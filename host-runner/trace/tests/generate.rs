//! Seeded generation: determinism, coverage of every op kind and of the
//! addresses that break VMMs, stepping with answers, shards.

use std::collections::BTreeSet;

use protocol::{FrameRun, Privilege, Response, MAX_TOUCH_LEN};
use trace::{generate, parse_str, GenConfig, Generator, Op, OpKind, Shard, Weights};

const USER_END: u64 = 0x0000_8000_0000_0000;
const HIGH_HALF: u64 = 0xffff_8000_0000_0000;

fn config(ops: usize) -> GenConfig {
    GenConfig {
        ops,
        ram_mib: 128,
        weights: Weights::uniform(),
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
    // Generated traces survive the file format.
    assert_eq!(parse_str(&a.to_text()).unwrap(), a);
}

#[test]
fn every_kind_appears_and_default_weights_never_panic() {
    let t = generate(1, &config(2000));
    let kinds: BTreeSet<OpKind> = t.entries.iter().map(|e| e.op.kind()).collect();
    assert_eq!(kinds.len(), OpKind::ALL.len(), "{kinds:?}");
    let t = generate(
        1,
        &GenConfig {
            ops: 2000,
            ..GenConfig::default()
        },
    );
    assert!(t.entries.iter().all(|e| e.op.kind() != OpKind::Panic));
    let only_maps = Weights([0; 20]).set(OpKind::Map, 1);
    let t = generate(
        1,
        &GenConfig {
            ops: 50,
            ram_mib: 64,
            weights: only_maps,
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
    let only = Weights([0; 20])
        .set(OpKind::AllocFrames, 1)
        .set(OpKind::FreeFrames, 3)
        .set(OpKind::Valloc, 1)
        .set(OpKind::Vfree, 3);
    let mut g = Generator::new(
        5,
        GenConfig {
            ops: 0,
            ram_mib: 128,
            weights: only,
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
