//! The vmmfuzz host runner: boots the guest kernel under QEMU and drives its
//! VMM over a serial RPC, with QMP for memory dumps.
//!
//! The guest is reached only through interfaces: the serial line
//! ([`rpc`]), QMP ([`qmp`]), optionally its RAM mapped from QEMU's backing
//! file ([`ram`]), and QEMU's exit status ([`qemu::QemuExit`]).
//! [`session::Vm`] owns one running guest with all of them; [`judge`]
//! wraps it with the model and the memory checker ([`judge::JudgedVm`]);
//! the subcommands build on them: [`smoke`], [`bench`](mod@bench),
//! [`replay`](mod@replay), [`check`](mod@check), [`fuzz`],
//! [`minimize`](mod@minimize), [`profile`](mod@profile) and the CI job
//! ([`ci_job`]). The session
//! alone:
//!
//! ```no_run
//! use host_runner::{RunnerOptions, Vm};
//! use protocol::{Privilege, Request, Response};
//!
//! # async fn demo() -> host_runner::Result<()> {
//! // Finds QEMU and the built kernel, picks the accelerator (logged).
//! let config = host_runner::config(&RunnerOptions::default()).await?;
//! let mut vm = Vm::boot(&config).await?; // the guest has said Ready
//! let hello = vm.hello().await?; // its layout
//! let answers = vm
//!     .batch(vec![Request::Ping { nonce: 1 }, Request::Stats])
//!     .await?;
//! assert_eq!(answers[0], Response::Pong { nonce: 1 });
//! vm.stop().await?; // QMP
//! let ram = vm.dump_ram().await?; // pmemsave of all RAM
//! let regs = vm.hmp("info registers").await?;
//! vm.cont().await?;
//! // A guest panic is an `Error::GuestPanic` with the report and QEMU's status.
//! let err = vm.call(Request::Panic { privilege: Privilege::Kernel }).await;
//! # Ok(()) }
//! ```
//!
//! Dropping a [`Vm`] kills QEMU; so does the runner's death by any signal.

pub mod accel;
pub mod args;
pub mod bench;
pub mod check;
pub mod ci_job;
pub mod ci_results;
pub mod ci_row;
pub mod coverage;
pub mod edge_counts;
pub mod error;
pub mod error_class;
pub mod exit_code;
pub mod files;
pub mod fuzz;
pub mod guest_build;
pub mod guest_image;
pub mod interrupt;
pub mod judge;
pub mod merge;
pub mod minimize;
pub mod pressure;
pub mod profile;
pub mod qemu;
pub mod qmp;
pub mod ram;
pub mod replay;
pub mod report;
pub mod ring;
pub mod rpc;
pub mod session;
pub mod smoke;
#[cfg(test)]
mod test_fixtures;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

pub use accel::{Accel, AccelChoice};
pub use error::{Error, Result};
pub use qemu::QemuExit;
pub use session::{Transport, Vm, VmConfig};

/// What the command line says about the guest to run.
#[derive(Clone, Debug, Default)]
pub struct RunnerOptions {
    /// `--qemu PATH`.
    pub qemu: Option<PathBuf>,
    /// `--kernel PATH`.
    pub kernel: Option<PathBuf>,
    pub accel: AccelChoice,
    /// Guest RAM in MiB (default 128).
    pub ram_mib: Option<u32>,
    /// Per-request timeout (default 10 s, more on an accelerator measured
    /// slow: [`accel::Verdict::request_timeout`]).
    pub request_timeout: Option<Duration>,
    /// Measure the accelerators again instead of using the cached verdict.
    pub remeasure_accel: bool,
    /// How requests travel after the handshake.
    pub transport: Transport,
    /// Who counts the guest's edges (`--edge-counts`).
    pub edge_counts: edge_counts::EdgeCounts,
}

/// A [`VmConfig`] for the options, with QEMU and the kernel found but the
/// accelerator not chosen yet (TCG until [`choose_accel`]).
pub fn base_config(options: &RunnerOptions) -> Result<VmConfig> {
    check_input(options, None)?;
    let qemu = qemu::find_qemu(options.qemu.as_deref())?;
    let kernel = guest_image::resolve(options.kernel.as_deref())?;
    let mut config = VmConfig::new(qemu, kernel, Accel::Tcg);
    if let Some(ram) = options.ram_mib {
        config.ram_mib = ram;
    }
    if let Some(t) = options.request_timeout {
        config.request_timeout = t;
    }
    config.transport = options.transport;
    config.edge_counts = options.edge_counts;
    // The ring lives in guest RAM the host maps.
    config.shared_ram |= options.transport == Transport::Ring;
    Ok(config)
}

/// Refuses, before anything starts, the guest these options (and the
/// trace to run, whose `ram_mib` wins) describe when it could not boot:
/// RAM or files out of range ([`session::check_guest`], exit 2).
pub fn check_input(options: &RunnerOptions, trace: Option<&trace::Trace>) -> Result<()> {
    let ram = trace
        .and_then(|t| t.header.ram_mib)
        .or(options.ram_mib)
        .unwrap_or(session::DEFAULT_RAM_MIB);
    let files = trace.map_or(&[][..], |t| &t.header.files[..]);
    session::check_guest(ram, files).map_err(|e| match (trace, options.ram_mib) {
        (Some(t), _) if t.header.ram_mib.is_some() => e,
        (_, Some(_)) => Error::Config(format!("--ram {ram}: {e}")),
        _ => e,
    })
}

/// Resolves `--accel` (measuring if needed) into `config`, logging the
/// choice and why, and then who counts the guest's edges
/// ([`edge_counts::settle`]: the kernel may give way to its plain twin).
pub async fn choose_accel(config: &mut VmConfig, options: &RunnerOptions) -> Result<()> {
    let version = qemu::qemu_version(&config.qemu).await?;
    let cache = accel::cache_file();
    let verdict = accel::resolve(
        options.accel,
        config,
        &version,
        cache.as_deref(),
        options.remeasure_accel,
    )
    .await?;
    tracing::info!("accel: {} — {}", verdict.accel, verdict.reason);
    config.accel = verdict.accel;
    if options.request_timeout.is_none() {
        let t = verdict.request_timeout(config.request_timeout);
        if t != config.request_timeout {
            tracing::info!(
                "request timeout {t:?}: {} measured slow here ({}× its probe)",
                verdict.accel,
                accel::TIMEOUT_PER_PROBE
            );
        }
        config.request_timeout = t;
    }
    edge_counts::settle(config).await
}

/// A ready-to-boot configuration for the options.
pub async fn config(options: &RunnerOptions) -> Result<VmConfig> {
    let mut config = base_config(options)?;
    choose_accel(&mut config, options).await?;
    Ok(config)
}
