//! The shards' summaries as one document: counts summed, the rates
//! summed (shards run side by side), the longest time, the coverage
//! figures of the merged coverage (a union, not a sum), the timelines
//! summed, the failures as [`super::failures`] kept them.

use std::collections::BTreeMap;

use super::Shard;
use crate::coverage::Coverage;
use crate::fuzz::results::{Document, FailureEntry, Reached, FORMAT, VERSION};
use crate::fuzz::timeline;

/// The distinct values of `f` over the shards, in order, joined by `, `.
fn distinct(shards: &[Shard], f: impl Fn(&Document) -> &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in shards {
        let v = f(&s.doc);
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(", ")
}

/// Every shard's lines of a field, each labelled with its shard (a merged
/// shard's are labelled already).
fn labelled_lines(docs: &[&Document], f: impl Fn(&Document) -> &Vec<String>) -> Vec<String> {
    docs.iter()
        .flat_map(|d| {
            f(d).iter().map(|l| match d.merged_from.is_empty() {
                true => format!("shard {}: {l}", d.shard),
                false => l.clone(),
            })
        })
        .collect()
}

/// The merged document of `shards`, with `failures` and the merged
/// `coverage`.
pub fn merge(shards: &[Shard], failures: Vec<FailureEntry>, coverage: &Coverage) -> Document {
    let docs: Vec<&Document> = shards.iter().map(|s| &s.doc).collect();
    let sum = |f: fn(&Document) -> u64| docs.iter().map(|d| f(d)).sum::<u64>();
    let sum_f = |f: fn(&Document) -> f64| docs.iter().map(|d| f(d)).sum::<f64>();
    let max_f = |f: fn(&Document) -> f64| docs.iter().map(|d| f(d)).fold(0.0, f64::max);
    let mut answers: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for d in &docs {
        for (kind, classes) in &d.answers {
            let mine = answers.entry(kind.clone()).or_default();
            for (class, n) in classes {
                *mine.entry(class.clone()).or_default() += n;
            }
        }
    }
    // A merged shard brings the shards it was merged from.
    let merged_from: Vec<String> = docs
        .iter()
        .flat_map(|d| {
            if d.merged_from.is_empty() {
                vec![d.shard.clone()]
            } else {
                d.merged_from.clone()
            }
        })
        .collect();
    let labelled = |d: &Document, x: &str| format!("shard {}: {x}", d.shard);
    let interrupted: Vec<String> = docs
        .iter()
        .filter_map(|d| d.interrupted.as_ref().map(|i| labelled(d, i)))
        .collect();
    let (edges, edges_total) = coverage.edges_reached();
    let timelines: Vec<&[timeline::Sample]> = docs.iter().map(|d| &d.timeline[..]).collect();
    Document {
        format: FORMAT.into(),
        version: VERSION,
        seed: distinct(shards, |d| &d.seed),
        shard: merged_from.join(","),
        jobs: docs.iter().map(|d| d.jobs).sum(),
        seconds: max_f(|d| d.seconds),
        fuzzing_seconds: max_f(|d| d.fuzzing_seconds),
        sequences: sum(|d| d.sequences),
        ops: sum(|d| d.ops),
        batches: sum(|d| d.batches),
        pages_touched: sum(|d| d.pages_touched),
        ops_per_second: sum_f(|d| d.ops_per_second),
        pages_touched_per_second: sum_f(|d| d.pages_touched_per_second),
        reached: Reached {
            guest_edges: edges,
            guest_edges_total: edges_total,
            model_transitions: coverage.model.transitions_reached(),
            model_events: coverage.model.events_reached(),
            model_events_total: oracle::coverage::Event::ALL.len(),
        },
        answers,
        environment_faults: labelled_lines(&docs, |d| &d.environment_faults),
        interrupted: (!interrupted.is_empty()).then(|| interrupted.join("; ")),
        in_flight: docs.iter().flat_map(|d| d.in_flight.clone()).collect(),
        failures,
        replay: docs.first().map(|d| d.replay.clone()).unwrap_or_default(),
        fresh_state: labelled_lines(&docs, |d| &d.fresh_state),
        time_split: labelled_lines(&docs, |d| &d.time_split),
        corpus: labelled_lines(&docs, |d| &d.corpus),
        timeline: timeline::sum(&timelines),
        merged_from,
    }
}
