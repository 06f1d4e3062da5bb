//! The counter reader over a memory image (wrap-around, `take` draining),
//! and merging and novelty of whole coverages.

use oracle::ImageMemory;
use protocol::{CoverageInfo, PhysRange};

use super::blocks::BlockCost;
use super::edges::{bucket, KernelId};
use super::report::{render, GuestReport, Ran, RenderOptions};
use super::symbols::{KernelSymbols, Origin, Site};
use super::*;

const COUNTERS: u64 = 0x1000;
const PCS: u64 = 0x2000;

/// A 4-edge guest: counters at 0x1000, PC table at 0x2000.
fn guest() -> (CoverageInfo, ImageMemory) {
    let info = CoverageInfo {
        counters: PhysRange {
            start: COUNTERS,
            end: COUNTERS + 4,
        },
        pcs: PhysRange {
            start: PCS,
            end: PCS + 64,
        },
    };
    let mut bytes = vec![0u8; 0x3000];
    for i in 0..4u64 {
        let at = (PCS + 16 * i) as usize;
        bytes[at..at + 8].copy_from_slice(&(0xffff_ffff_8010_0000 + 0x10 * i).to_le_bytes());
    }
    (info, ImageMemory { base: 0, bytes })
}

fn set(mem: &mut ImageMemory, counters: [u8; 4]) {
    mem.bytes[COUNTERS as usize..COUNTERS as usize + 4].copy_from_slice(&counters);
}

#[test]
fn reads_count_changes_modulo_256_and_take_drains() {
    let (info, mut mem) = guest();
    let mut r = CounterReader::new(info, &mem).unwrap();
    assert_eq!(r.kernel().edges, 4);
    set(&mut mem, [3, 0, 250, 0]);
    r.poll(&mem).unwrap();
    // Counter 2 wraps past 255 between reads: 250 -> 4 is 10 more.
    set(&mut mem, [3, 1, 4, 0]);
    let hits = r.take(&mem).unwrap();
    assert_eq!(hits.all_hits(), &[3, 1, 260, 0]);
    assert_eq!(hits.reached(), 3);
    // Nothing ran since: the next take is empty, and a Reset (which leaves
    // the counters alone) needs nothing.
    assert_eq!(r.take(&mem).unwrap().reached(), 0);
    set(&mut mem, [3, 1, 5, 7]);
    assert_eq!(r.take(&mem).unwrap().all_hits(), &[0, 0, 1, 7]);
}

#[test]
fn a_pc_table_of_the_wrong_size_is_refused() {
    let (mut info, mem) = guest();
    info.pcs.end -= 16;
    assert!(CounterReader::new(info, &mem).is_err());
}

fn hits(kernel: KernelId, h: [u64; 4]) -> Coverage {
    Coverage {
        edges: Some(EdgeHits::from_hits(kernel, h.to_vec())),
        model: ModelCoverage::default(),
    }
}

#[test]
fn novelty_counts_new_edges_and_new_buckets() {
    let k = KernelId::of_pc_table(&[0; 64]);
    let mut campaign = Coverage::default();
    let first = hits(k, [1, 0, 0, 5]);
    assert_eq!(first.novelty(&campaign, None).edges, 2);
    campaign.merge(&first).unwrap();
    assert!(!first.novelty(&campaign, None).any());
    // Edge 3 ran 200 times in one sequence: no new edge, a new bucket.
    let second = hits(k, [1, 0, 0, 200]);
    let n = second.novelty(&campaign, None);
    assert_eq!((n.edges, n.buckets), (0, 1));
    campaign.merge(&second).unwrap();
    assert_eq!(campaign.edges.as_ref().unwrap().all_hits(), &[2, 0, 0, 205]);
    assert_eq!(campaign.edges_reached(), (2, 4));
    assert_eq!((bucket(1), bucket(3), bucket(4), bucket(128)), (0, 2, 3, 7));
}

/// Edges whose counts follow the host's timing guide nothing: a sequence
/// that only ran them more (or for the first time) is not new; for
/// another kernel's edges the mask does not apply.
#[test]
fn novelty_leaves_out_the_edges_the_guidance_ignores() {
    let k = KernelId::of_pc_table(&[0; 64]);
    let other = KernelId::of_pc_table(&[1; 64]);
    let g = Guidance {
        kernel: k,
        ignored: vec![false, true, false, false],
    };
    let mut campaign = Coverage::default();
    campaign.merge(&hits(k, [1, 3, 0, 0])).unwrap();
    let timing = hits(k, [1, 200, 0, 0]);
    assert!(
        timing.novelty(&campaign, None).any(),
        "a new bucket of edge 1"
    );
    assert!(!timing.novelty(&campaign, Some(&g)).any());
    let n = hits(k, [1, 200, 7, 0]).novelty(&campaign, Some(&g));
    assert_eq!((n.edges, n.buckets), (1, 1), "edge 2 counts");
    let fresh = hits(k, [0, 5, 0, 0]).novelty(&Coverage::default(), Some(&g));
    assert!(!fresh.any(), "only an ignored edge, on an empty campaign");
    let theirs = hits(other, [0, 5, 0, 0]).novelty(&Coverage::default(), Some(&g));
    assert_eq!(theirs.edges, 1, "another kernel's edges all count");
}

#[test]
fn merge_is_associative_and_refuses_another_kernel() {
    let k = KernelId::of_pc_table(&[0; 64]);
    let (a, b, c) = (
        hits(k, [1, 2, 0, 0]),
        hits(k, [0, 9, 0, 300]),
        hits(k, [4, 0, 1, 0]),
    );
    let merged = |x: &Coverage, y: &Coverage| {
        let mut m = x.clone();
        m.merge(y).unwrap();
        m
    };
    assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
    assert_eq!(merged(&a, &b), merged(&b, &a));
    assert_eq!(merged(&Coverage::default(), &a), a);
    let other = hits(KernelId::of_pc_table(&[1; 64]), [1, 1, 1, 1]);
    let mut m = a.clone();
    assert!(matches!(
        m.merge(&other),
        Err(CoverageError::OtherKernel { .. })
    ));
}

#[test]
fn saves_and_loads() {
    let k = KernelId::of_pc_table(&[7; 32]);
    let c = hits(k, [1, 2, 3, 4]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cov.json");
    c.save(&path).unwrap();
    assert_eq!(Coverage::load(&path).unwrap(), c);
    std::fs::write(&path, "{}").unwrap();
    assert!(matches!(
        Coverage::load(&path),
        Err(CoverageError::Format { .. })
    ));
}

/// Three sites in two functions, `f` inlined twice, and a transport wait;
/// `costs` as QEMU's.
fn symbols(costs: Option<Vec<BlockCost>>) -> KernelSymbols {
    let site = |pc, function: &str, file: &str, line| Site {
        pc,
        entry: false,
        iterates: false,
        function: function.into(),
        file: file.into(),
        line,
        origin: Origin::Core,
    };
    let a = "guest/core/src/a.rs";
    KernelSymbols {
        kernel: KernelId {
            edges: 4,
            pc_table_crc: 9,
        },
        sites: vec![
            site(0x10, "f", a, 4),
            site(0x20, "g", a, 9),
            site(0x30, "f", a, 5),
            site(
                0x40,
                "vmmfuzz_kernel::rpc::spin",
                "guest/kernel/src/rpc.rs",
                7,
            ),
        ],
        costs,
    }
}

#[test]
fn what_ran_is_hits_times_block_costs_by_function_and_line_without_the_waits() {
    let kernel = symbols(None).kernel;
    let hits = EdgeHits::from_hits(kernel, vec![10, 1, 3, 1000]);
    let cost = |instructions, accesses| BlockCost {
        instructions,
        accesses,
    };
    let costs = vec![cost(4, 1), cost(100, 5), cost(2, 2), cost(3, 1)];
    let r = GuestReport::build(&hits, &symbols(Some(costs))).unwrap();
    let ran = |instructions, accesses| Ran {
        instructions,
        accesses,
    };
    assert_eq!(r.ran, Some(ran(40 + 100 + 6, 10 + 5 + 6)));
    assert_eq!(r.waits, ran(3000, 1000));
    assert_eq!(r.function("f").unwrap().ran, ran(46, 16));
    assert_eq!(r.function("g").unwrap().ran, ran(100, 5));
    assert_eq!(r.function("rpc::spin").unwrap().ran, ran(0, 0));
    let line5 = r.lines.iter().find(|l| l.line == 5).unwrap();
    assert_eq!(line5.ran, ran(6, 6));
    let text = render(Some(&r), &Coverage::default(), RenderOptions::default());
    assert!(
        text.contains(
            "21 memory accesses in 146 instructions; the transport's waits, which \
             follow the host's timing, ran 1000 more in 3000 and are left out"
        ),
        "{text}"
    );
    // By accesses: f (16 of 21) before g, though g ran more instructions;
    // the wait is in no row.
    let row = |acc: f64, cumul: f64, n: u64, insn: f64, i: u64, what: &str| {
        format!("  {acc:>6.1} {cumul:>6.1} {n:>14} {insn:>6.1} {i:>14}  {what}\n")
    };
    let f = row(76.2, 76.2, 16, 31.5, 46, "f (guest/core/src/a.rs:4)");
    let g = row(23.8, 100.0, 5, 68.5, 100, "g (guest/core/src/a.rs:9)");
    let (at_f, at_g) = (text.find(&f), text.find(&g));
    assert!(at_f.is_some() && at_g.is_some() && at_f < at_g, "{text}");
    let lines = &text[text.find("line (of a known number)").expect("the lines")..];
    assert!(
        lines.starts_with(&format!(
            "line (of a known number)\n{}",
            row(47.6, 47.6, 10, 27.4, 40, "guest/core/src/a.rs:4")
        )),
        "{text}"
    );
    let table = &text[..text.find("functions by file").expect("the functions")];
    assert!(!table.contains("rpc"), "{text}");
    // SanitizerCoverage's edges are no blocks: nothing ran is known.
    let r = GuestReport::build(&hits, &symbols(None)).unwrap();
    assert_eq!(r.ran, None);
    let text = render(Some(&r), &Coverage::default(), RenderOptions::default());
    assert!(!text.contains("memory accesses"), "{text}");
}

/// A `rep`'s leader counts iterations: the corpus's guidance leaves it
/// out, as it leaves out the transport's waits, and so do the report's
/// runs; what it ran still counts.
#[test]
fn a_leader_that_counts_iterations_guides_nothing_and_is_no_run() {
    let mut s = symbols(Some(vec![BlockCost::default(); 4]));
    s.sites[1].iterates = true;
    assert_eq!(s.guidance().ignored, [false, true, false, true]);
    let hits = EdgeHits::from_hits(s.kernel, vec![10, 4096, 3, 1]);
    s.costs = Some(vec![
        BlockCost::default(),
        BlockCost {
            instructions: 1,
            accesses: 2,
        },
        BlockCost::default(),
        BlockCost::default(),
    ]);
    let r = GuestReport::build(&hits, &s).unwrap();
    let g = r.function("g").unwrap();
    assert_eq!((g.hits, g.edges_hit), (0, 1));
    assert_eq!(g.ran.accesses, 8192);
    assert_eq!(r.function("f").unwrap().hits, 10);
}
