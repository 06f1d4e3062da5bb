//! Swarm testing and targeted patterns: each sequence draws its own
//! weights and depth from its seed alone, the header records the weights,
//! and unmaps, converts and touches aim at what the sequence mapped.

use std::collections::BTreeSet;

use trace::{generate, parse_str, GenConfig, Op, OpKind, Weights};

fn swarm() -> GenConfig {
    GenConfig {
        swarm: true,
        ..GenConfig::default()
    }
}

#[test]
fn a_sequence_config_depends_on_its_seed_alone() {
    let base = swarm();
    for seed in 0..50 {
        assert_eq!(base.for_sequence(seed), base.for_sequence(seed));
    }
    let distinct: BTreeSet<[u32; OpKind::COUNT]> =
        (0..50).map(|s| base.for_sequence(s).weights.0).collect();
    assert!(distinct.len() > 40, "only {} weight sets", distinct.len());
    // Without swarm, the configuration is the campaign's.
    let plain = GenConfig::default();
    assert_eq!(plain.for_sequence(7), plain);
}

#[test]
fn swarm_turns_kinds_off_and_up_but_never_on() {
    let base = swarm();
    let default = Weights::default();
    let (mut off, mut boosted) = (0, 0);
    for seed in 0..200 {
        let w = base.for_sequence(seed).weights;
        assert!(
            w.get(OpKind::Map) > 0 && w.get(OpKind::Write) > 0,
            "seed {seed}"
        );
        assert_eq!(w.get(OpKind::Panic), 0, "a kind at weight 0 stays off");
        for k in OpKind::ALL {
            if default.get(k) > 0 && w.get(k) == 0 {
                off += 1;
            }
            if w.get(k) > default.get(k) {
                boosted += 1;
            }
        }
    }
    assert!(off > 200 && boosted >= 200, "off {off}, boosted {boosted}");
}

#[test]
fn some_sequences_run_deep_and_deep_ones_never_reset() {
    let base = swarm();
    let lens: Vec<(usize, u32)> = (0..300)
        .map(|s| {
            let c = base.for_sequence(s);
            (c.ops, c.weights.get(OpKind::Reset))
        })
        .collect();
    let deep = lens.iter().filter(|l| l.0 > base.ops).count();
    assert!((30..=150).contains(&deep), "{deep} deep sequences of 300");
    assert!(lens.iter().any(|l| l.0 == base.ops * 25));
    assert!(lens.iter().filter(|l| l.0 > base.ops).all(|l| l.1 == 0));
}

#[test]
fn the_header_records_the_weights_and_reads_them_back() {
    let c = swarm().for_sequence(3);
    let t = generate(3, &c);
    assert_eq!(t.header.weights, Some(c.weights));
    let text = t.to_text();
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("\"weights\":{") && header.contains("\"map\":"),
        "{header}"
    );
    assert!(
        !header.contains("\"panic\""),
        "kinds at 0 are left out: {header}"
    );
    assert_eq!(parse_str(&text).unwrap(), t);
    let bad = header.replace("\"weights\":{", "\"weights\":{\"mapp\":3,");
    let err = parse_str(&bad).unwrap_err().to_string();
    assert!(err.contains("unknown operation `mapp`"), "{err}");
}

#[test]
fn unmaps_hit_what_was_mapped() {
    let (mut unmaps, mut exact) = (0, 0);
    for seed in 1..=8 {
        let t = generate(
            seed,
            &GenConfig {
                ops: 4000,
                ..GenConfig::default()
            },
        );
        let mut mapped = BTreeSet::new();
        for e in &t.entries {
            match e.op {
                Op::Map { addr, pages, .. } => {
                    mapped.insert((addr, pages));
                }
                Op::Unmap { addr, pages, .. } => {
                    unmaps += 1;
                    exact += usize::from(mapped.contains(&(addr, pages)));
                }
                _ => {}
            }
        }
    }
    // Half the unmaps are aimed, 40 % of those at a whole range where
    // data lives (a map's, or a convert's or a file map's): about one in
    // seven hits a mapped range exactly (by chance, almost none would).
    // Over several seeds, so that one seed's draw does not decide.
    assert!(exact * 10 > unmaps, "{exact} of {unmaps} unmaps were exact");
}

#[test]
fn some_sequences_drain_the_frame_allocator_part_way() {
    let base = swarm();
    let drains: Vec<(usize, usize)> = (0..500)
        .filter_map(|s| {
            let c = base.for_sequence(s);
            c.drain_from.map(|d| (d, c.ops))
        })
        .collect();
    assert!(
        (60..=140).contains(&drains.len()),
        "{} of 500 drain",
        drains.len()
    );
    assert!(drains.iter().all(|&(d, ops)| d <= ops / 2));
    assert_eq!(GenConfig::default().drain_from, None, "not without swarm");
}

#[test]
fn a_draining_generator_takes_every_frame_it_hears_of() {
    use protocol::{Response, Stats, MAX_ALLOC_FRAMES};
    let config = GenConfig {
        drain_from: Some(5),
        ..GenConfig::default()
    };
    let mut g = trace::Generator::new(3, config);
    assert!(g.header().note.is_some_and(|n| n.contains("from op 5")));
    let mut answer = None;
    let mut asked = Vec::new();
    let mut free = 10_000u64;
    for i in 0..400 {
        let op = g.next_op(answer.as_ref());
        answer = match op {
            Op::Stats => Some(Response::Stats(Stats {
                free_frames: free,
                ..Stats::default()
            })),
            Op::AllocFrames { count, .. } if i >= 5 => {
                asked.push((count, free));
                let taken = count.min(free);
                free -= taken;
                Some(Response::Frames(vec![protocol::FrameRun {
                    start: 0x1000,
                    count: taken,
                }]))
            }
            _ => Some(Response::Done),
        };
    }
    // The first requests take all there is, at most the most one request
    // may take; random ones (a few frames) may come between.
    let drained = asked.iter().position(|&(_, f)| f == 0);
    assert!(drained.is_some_and(|d| d <= 5), "{asked:?}");
    // While frames are left (random requests for more after that ask for
    // nothing the drain heard of).
    let big: Vec<u64> = asked
        .iter()
        .filter(|&&(c, free)| c > 64 && free > 0)
        .map(|a| a.0)
        .collect();
    assert_eq!(big, [MAX_ALLOC_FRAMES, MAX_ALLOC_FRAMES, 1808], "{asked:?}");
    assert_eq!(free, 0);
}
