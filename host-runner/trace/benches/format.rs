//! Parse and write times of a large trace, printed (no assertion):
//! `cargo bench -p trace --bench format [-- FILE]`.
//!
//! Without a file it measures the 6,255-op `deep-oom-divergence.jsonl` of
//! the project's shared traces (when it is there: it has no expectations)
//! and a generated trace of 6,255 operations with an exact expectation on
//! every line.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use protocol::{FaultReason, PageState, Response, Stats};
use trace::{generate, parse_str, Expect, GenConfig};

const ROUNDS: usize = 30;

fn inputs() -> Vec<(String, String)> {
    if let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        let text = std::fs::read_to_string(&path).expect("reading the trace");
        return vec![(path, text)];
    }
    let mut out = Vec::new();
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces/deep-oom-divergence.jsonl");
    match std::fs::read_to_string(&shared) {
        Ok(text) => out.push(("deep-oom-divergence.jsonl".to_string(), text)),
        Err(e) => println!("skipping {}: {e}", shared.display()),
    }
    out.push(("generated, with expects".to_string(), generated()));
    out
}

/// 6,255 generated operations, each with an exact expectation of one of a
/// few kinds of answer.
fn generated() -> String {
    let config = GenConfig {
        ops: 6255,
        ..GenConfig::default()
    };
    let answers = [
        Response::Done,
        Response::Error(protocol::Error::InvalidState { addr: 0x1234_5000 }),
        Response::Fault {
            addr: 0x1000,
            write: true,
            reason: FaultReason::ReadOnly,
        },
        Response::Checksum {
            checksum: 0xdead_beef,
        },
        Response::Pages(vec![
            PageState::Unusable,
            PageState::AllocOnWrite,
            PageState::AllocOnWrite,
        ]),
        Response::Stats(Stats::default()),
    ];
    let mut t = generate(7, &config);
    for (e, a) in t.entries.iter_mut().zip(answers.iter().cycle()) {
        e.expect = Some(Expect::exact(a));
    }
    t.to_text()
}

/// The median of `ROUNDS` runs of `f`.
fn median(mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[ROUNDS / 2]
}

fn main() {
    for (name, text) in inputs() {
        measure(&name, &text);
    }
}

fn measure(name: &str, text: &str) {
    let trace = parse_str(text).expect("the trace parses");
    let parse = median(|| {
        black_box(parse_str(black_box(text)).unwrap());
    });
    let write = median(|| {
        black_box(black_box(&trace).to_text());
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: {} ops, {} bytes; median of {ROUNDS}: parse {:.2} ms, write {:.2} ms",
        trace.len(),
        text.len(),
        ms(parse),
        ms(write)
    );
}
