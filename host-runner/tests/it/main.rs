//! The runner's integration tests, as one test binary: each module was a
//! binary of its own, and every one linked (and, at the package's
//! opt-level 2, optimized) its own copy of the runner's generic async code,
//! which made building them most of a clean `ci/run`. Run one module with
//! `cargo test -p host-runner --test it -- MODULE::`.

mod common;

mod bad_input_cli;
mod bench_cli;
mod boundaries;
mod ci_results;
mod corpus;
mod coverage;
mod exit_codes;
mod fuzz_cli;
mod fuzz_determinism;
mod guest;
mod inject_bugs;
mod inject_leak;
mod interrupted;
mod judge;
mod kernel_reserve;
mod log_colour;
mod merge_cli;
mod pressure;
mod profile_cli;
mod replay_cli;
mod report_browser;
mod stale_tlb;
mod wild_frame;
mod wire_fuzz;
mod wire_limits;
