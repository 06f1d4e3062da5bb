//! A guest under judgement: every answer judged by the model, the memory
//! checked through QMP when asked, every failure a [`trace::Failure`].
//!
//! This is the API the fuzzer, `replay`, `check` and CI build on:
//!
//! ```no_run
//! use host_runner::judge::{JudgeOptions, JudgedVm};
//! use protocol::{Privilege, Request};
//!
//! # async fn demo(config: &host_runner::VmConfig) -> Result<(), trace::Failure> {
//! let mut vm = JudgedVm::start(config, JudgeOptions::default()).await?; // boot, Hello, Model::new
//! vm.step(Request::map_writable(0x1000, 1, Privilege::User)).await?; // judged: Err(Divergence) if wrong
//! vm.steps(vec![Request::Stats, Request::Ping { nonce: 1 }]).await?; // one Batch frame, judged element-wise
//! let report = vm.check().await?;  // Err(Invariant) lists every violation
//! vm.reset().await?;               // Reset + Stats (free == boot_free), again after many pages; op index 0
//! let reached = vm.take_coverage(); // guest edges and model transitions since boot
//! vm.finish().await?;              // Shutdown, QEMU must exit 33
//! # Ok(()) }
//! ```
//!
//! Every method returns `Err(trace::Failure)` for anything that went wrong;
//! its `op_index` is the operation's index (counted from the start or the
//! last [`JudgedVm::reset`]). Environment faults that say nothing about
//! the guest (QEMU killed from outside, QMP or socket trouble) are failures
//! of kind [`trace::FailureKind::Environment`] ([`is_runner_failure`]): do
//! not save those as guest bugs. After a `Hang`
//! QEMU has been killed; after any failure, drop the `JudgedVm` and start a
//! new one.
//!
//! A `JudgedVm` is a [`trace::Target`], and [`target::JudgedExecutor`] a
//! [`trace::Executor`]: `trace::run` and `trace::minimize` drive it.

mod classes;
mod coverage;
mod failure;
mod inspect;
pub mod qemu_view;
mod run;
pub mod target;
pub mod timings;

pub use classes::{invariant_class, request_kind};
pub use failure::{
    external_signal, failure_from, is_environment_error, is_environment_launch, is_environment_rpc,
    is_runner_failure, signal_name,
};
pub use inspect::{inspect, MemoryCheck, MemorySource};
pub use run::{another_reset, JudgedVm, ResetError, ResetParts};
pub use timings::Timings;

/// How a [`JudgedVm`] judges.
#[derive(Clone, Debug)]
pub struct JudgeOptions {
    /// Check memory after every judged `Reset` (the fresh state a fuzz job
    /// makes between sequences). Checks between operations are the
    /// caller's (`trace::Cadence`, [`JudgedVm::check_at`]).
    pub check_after_reset: bool,
    /// Where the memory check reads guest RAM from.
    pub memory: MemorySource,
    /// Compare QEMU's own mappings (`info tlb`) with the walk in every
    /// memory check (invariant 7).
    pub tlb_check: bool,
    /// Checks between batches (`check_at(_, false)`) are the checker's
    /// incremental ones: what the operations since the last clean check
    /// could have changed. `false`: every check is a full one.
    pub incremental: bool,
    /// Checks compare the present pages' bytes (the incremental check's
    /// changed ones, the full check's all, and its file images' second
    /// half) on a thread of their own, beside the rest of the check, and
    /// the guest sleeps through full checks instead of spinning
    /// ([`oracle::Checker::set_data_thread`]): for guests that have a core
    /// to spare while they wait for their check ([`spare_core`]).
    pub data_thread: bool,
    /// How long the guest looks for its next request before it sleeps, in
    /// ticks of its time-stamp counter (the ring's `spin`,
    /// `protocol::ring` rule 4); `None` leaves the guest's default
    /// ([`protocol::ring::SPIN_TICKS`]). Whatever it is, the guest does
    /// not spin through a full check with QEMU's view (the check at a
    /// sequence's end, [`JudgedVm::check`]) or any full check while
    /// `data_thread` is on (in a campaign, the fresh state's): it sleeps,
    /// its core the check's, and gets this spin back after.
    pub spin: Option<u64>,
}

/// The guest's spin for a campaign of `guests` guests at once: the
/// guest's default when a core is free for each guest ([`spare_core`]),
/// else none: a guest spinning for its next request then holds a core
/// another guest or the runner could use.
pub fn campaign_spin(guests: usize) -> Option<u64> {
    (!spare_core(guests)).then_some(0)
}

/// Whether `guests` guests at once (at least one) leave a core free while
/// one of them is checked: its guest then waits (spinning for its next
/// request for up to a few hundred microseconds, then asleep:
/// `protocol::ring`), and its runner's thread checks.
/// `available_parallelism` counts the cores this process may use (its
/// affinity and cgroup quota), not other tenants' load.
pub fn spare_core(guests: usize) -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > guests.max(1))
}

impl JudgeOptions {
    /// A fuzz campaign's judge, of `jobs` guests at once: a memory check
    /// after every reset (the fresh state between sequences), the pages'
    /// bytes compared on a thread of their own when a core is free, and
    /// guests that spin for their next request only then
    /// ([`campaign_spin`]).
    pub fn campaign(jobs: usize) -> Self {
        JudgeOptions {
            check_after_reset: true,
            data_thread: spare_core(jobs),
            spin: campaign_spin(jobs),
            ..JudgeOptions::default()
        }
    }
}

impl Default for JudgeOptions {
    /// Memory checks only when asked, shared RAM, `info tlb` compared at
    /// full checks, incremental checks between batches, each on one thread.
    fn default() -> Self {
        JudgeOptions {
            check_after_reset: false,
            memory: MemorySource::default(),
            tlb_check: true,
            incremental: true,
            data_thread: false,
            spin: None,
        }
    }
}
