//! The campaign's progress over time: its counters sampled while it runs
//! (for the campaign report's operations-over-time chart), at most
//! [`MAX_SAMPLES`] of them however long it runs, and the sum of several
//! shards' timelines (shards run side by side).

use serde::{Deserialize, Serialize};

/// Most samples kept: past it every other one is dropped and the period
/// doubles.
pub const MAX_SAMPLES: usize = 256;
/// The first sampling period, in seconds.
pub const FIRST_PERIOD: f64 = 1.0;

/// The counters at one moment of the campaign.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Since the campaign started.
    pub seconds: f64,
    pub sequences: u64,
    pub ops: u64,
    pub failures: u64,
}

/// Samples taken every `period` seconds (doubling as they pile up).
#[derive(Clone, Debug)]
pub struct Timeline {
    samples: Vec<Sample>,
    period: f64,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            samples: Vec::new(),
            period: FIRST_PERIOD,
        }
    }
}

impl Timeline {
    /// Whether a sample at `seconds` is due: the first one, or a period
    /// after the last.
    pub fn due(&self, seconds: f64) -> bool {
        self.samples
            .last()
            .is_none_or(|l| seconds >= l.seconds + self.period)
    }

    /// Keeps `s` (times must not go back; an earlier one is ignored);
    /// past [`MAX_SAMPLES`], thins to every other sample (the first and
    /// the newest kept) and doubles the period.
    pub fn record(&mut self, s: Sample) {
        if self.samples.last().is_some_and(|l| s.seconds < l.seconds) {
            return;
        }
        self.samples.push(s);
        if self.samples.len() > MAX_SAMPLES {
            let last = self.samples.len() - 1;
            let mut i = 0;
            self.samples.retain(|_| {
                let keep = i % 2 == 0 || i == last;
                i += 1;
                keep
            });
            self.period *= 2.0;
        }
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

/// The counters at `t` of a timeline: its last sample at or before `t`
/// (zero before its first; its last after its end).
fn at(samples: &[Sample], t: f64) -> Sample {
    samples
        .iter()
        .take_while(|s| s.seconds <= t)
        .last()
        .copied()
        .unwrap_or_default()
}

/// Several shards' timelines as one, each started at time 0: at every
/// time any shard sampled, the sum of every shard's counters then.
pub fn sum(shards: &[&[Sample]]) -> Vec<Sample> {
    let mut times: Vec<f64> = shards
        .iter()
        .flat_map(|s| s.iter().map(|x| x.seconds))
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    times
        .into_iter()
        .map(|t| {
            shards
                .iter()
                .map(|s| at(s, t))
                .fold(Sample::default(), |a, b| Sample {
                    seconds: t,
                    sequences: a.sequences + b.sequences,
                    ops: a.ops + b.ops,
                    failures: a.failures + b.failures,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(seconds: f64, ops: u64) -> Sample {
        Sample {
            seconds,
            sequences: ops / 10,
            ops,
            failures: 0,
        }
    }

    #[test]
    fn samples_are_due_a_period_apart_and_thinned_past_the_cap() {
        let mut t = Timeline::default();
        assert!(t.due(0.0));
        t.record(s(0.0, 0));
        assert!(!t.due(0.5) && t.due(1.0));
        for i in 1..=MAX_SAMPLES as u64 {
            t.record(s(i as f64, i * 100));
        }
        // 257 samples made 129: the even ones and the newest.
        assert_eq!(t.samples().len(), MAX_SAMPLES / 2 + 1);
        assert_eq!(t.samples()[1].seconds, 2.0);
        assert_eq!(t.samples().last().unwrap().ops, MAX_SAMPLES as u64 * 100);
        assert!(!t.due(MAX_SAMPLES as f64 + 1.0) && t.due(MAX_SAMPLES as f64 + 2.0));
        // Time does not go back.
        t.record(s(3.0, 1));
        assert_eq!(t.samples().last().unwrap().ops, MAX_SAMPLES as u64 * 100);
    }

    #[test]
    fn shards_sum_as_step_functions() {
        let a = [s(0.0, 0), s(1.0, 100), s(2.0, 250)];
        let b = [s(0.0, 0), s(1.5, 40)];
        let all = sum(&[&a, &b]);
        let ops: Vec<(f64, u64)> = all.iter().map(|x| (x.seconds, x.ops)).collect();
        // b holds its last count after its end.
        assert_eq!(
            ops,
            [(0.0, 0), (1.0, 100), (1.5, 140), (2.0, 290)],
            "{all:?}"
        );
        assert_eq!(all[3].sequences, 25 + 4);
        assert!(sum(&[]).is_empty());
    }
}
