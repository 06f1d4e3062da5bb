//! `host-runner fuzz`: a seeded, reproducible campaign. Sequences of
//! generated operations run on judged guests (every answer through the
//! model, the memory check every `--check-every` operations and at each
//! sequence's end), `--jobs` guests at once, each sequence from a fresh
//! state (a verified `Reset`, or a fresh boot: measured, the faster used).
//! A failure's trace is saved atomically before anything else, then
//! minimized (see [`crate::minimize`]).
//!
//! - [`plan`]: seeds, shards, where batches end, `--duration`.
//! - [`sequence`]: one sequence on a [`sequence::Target`].
//! - [`campaign`]: the jobs and failure capture; `fresh`: a fresh state
//!   per sequence (reset or boot, measured and checked equivalent);
//!   `history`: a failure's trace since boot.
//! - [`progress`]: counters, the progress bar; [`coverage`]: how the guest
//!   answered each kind of operation.
//! - [`pages`]: the pages each operation's range names (the work done).
//! - [`summary`]: the options and the end-of-campaign report;
//!   [`results`]: it as JSON; [`timeline`]: its counters over time.
//! - [`results_dir`]: a campaign's result directory (`fuzz --results`),
//!   the unit `host-runner merge` merges.

pub mod campaign;
pub mod corpus;
pub mod coverage;
mod error;
mod fresh;
mod history;
pub mod pages;
pub mod plan;
pub mod progress;
pub mod results;
pub mod results_dir;
pub mod sequence;
pub mod summary;
pub mod timeline;

pub use crate::args::fuzz::{FreshState, FuzzArgs};

pub use campaign::run;
pub use error::FuzzError;
pub use summary::{FoundFailure, Summary};

use crate::RunnerOptions;

/// The command that replays a trace with the guest of `options`
/// (`host-runner replay`, plus `--kernel`, `--accel` and `--edge-counts`
/// when they were given; the trace's header holds its RAM size).
pub fn replay_command(options: &RunnerOptions) -> String {
    let mut cmd = String::from("host-runner");
    if let Some(k) = &options.kernel {
        cmd.push_str(&format!(" --kernel {}", k.display()));
    }
    if options.accel != crate::AccelChoice::Auto {
        cmd.push_str(&format!(
            " --accel {}",
            format!("{:?}", options.accel).to_lowercase()
        ));
    }
    // The kernel the campaign booted: its edge counts pick the build.
    if options.edge_counts != crate::edge_counts::EdgeCounts::Auto {
        cmd.push_str(&format!(" --edge-counts {}", options.edge_counts));
    }
    cmd.push_str(" replay");
    cmd
}

#[cfg(test)]
mod replay_command_tests {
    use super::*;

    #[test]
    fn the_replay_command_names_what_picked_the_campaigns_guest() {
        let mut options = RunnerOptions::default();
        assert_eq!(replay_command(&options), "host-runner replay");
        options.accel = crate::AccelChoice::Tcg;
        options.edge_counts = crate::edge_counts::EdgeCounts::Sancov;
        assert_eq!(
            replay_command(&options),
            "host-runner --accel tcg --edge-counts sancov replay"
        );
    }
}
