//! `bench`: what the fuzzer's parts cost, as one table of figures (each
//! the median of several runs, with its unit) and the same figures as
//! JSON ([`Report`]).
//!
//! Sections ([`Section`]): boot to ready; one round trip on each
//! transport, back to back and after 3 ms idle; batched throughput at 1,
//! 16 and 256 requests, pings and the fuzzer's operation mix ([`mix::Mix`]); fresh-state cost (the judged
//! reset a campaign makes, and a judged start beside it); the same mix in
//! the guest and in-process in `vmm-core`, with their ratio; end-to-end
//! checked operations and pages touched per second from short campaigns
//! per `--jobs`; the memory check by RAM size and pages mapped
//! ([`checks::check_rows`]); minimizing a long failing trace when an
//! injected-bug guest is given. Every part runs the code the fuzzer runs.
//! `--op-costs` ([`op_costs`]) is the guest's cost per kind of operation.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::accel::Accel;
use crate::session::{Transport, VmConfig};

pub mod checks;
pub mod cli;
mod converts;
mod end_to_end;
mod fresh;
mod minimize;
pub mod mix;
mod ops;
pub mod report;
mod searches;
pub mod table;
#[cfg(test)]
mod tests;
mod touches;
mod transport;

pub use ops::op_costs;
pub use report::{median, Figure, Link, Report, Section, Unit};

/// Why the bench stopped (a guest bug it ran into is one: the bench runs
/// judged guests).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Runner(#[from] crate::Error),
    #[error("bench, {stage}: {failure}")]
    Failed {
        stage: String,
        failure: trace::Failure,
    },
    #[error("bench, end to end: {0}")]
    Fuzz(#[from] crate::fuzz::FuzzError),
    #[error("bench: {0}")]
    Setup(String),
    #[error("bench, minimization: {0}")]
    Minimize(#[from] crate::minimize::MinimizeError),
    /// The long trace passes on the guest given to `--minimize-kernel`
    /// (a usage error, exit 2: the minimizer's own "nothing to minimize"
    /// is a pass, which a bench that measured nothing is not).
    #[error("bench, minimization: {0}")]
    NothingFails(#[source] crate::exit_code::UsageError),
}

/// A guest's error stops the bench as any runner error does.
impl From<crate::rpc::RpcError> for BenchError {
    fn from(e: crate::rpc::RpcError) -> Self {
        BenchError::Runner(e.into())
    }
}

/// How much to measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchPlan {
    /// Runs (each on fresh guests) whose medians the figures are.
    pub runs: usize,
    /// Single pings per run, back to back (and a tenth as many, at least
    /// 5, each after 3 ms idle: `transport::IDLE`).
    pub round_trips: usize,
    /// Transports of the boot, round-trip and batched sections.
    pub transports: Vec<Link>,
    /// Batch sizes of the batched section.
    pub batch_sizes: Vec<usize>,
    /// Requests per batch size per run (whole batches, at least one).
    pub batched_requests: usize,
    /// Operations of the mix (in-guest vs in-process, batched).
    pub mix_ops: usize,
    /// Batch size of the in-guest side of in-guest vs in-process.
    pub mix_batch: usize,
    /// Operations of the campaign's sequences run under memory pressure
    /// (in-guest vs in-process).
    #[serde(default)]
    pub pressure_ops: usize,
    /// Seed of the mix, the fresh-state sequences and the campaigns.
    pub seed: u64,
    /// Seconds of each end-to-end campaign.
    pub fuzz_secs: f64,
    /// `--jobs` of the end-to-end campaigns.
    pub fuzz_jobs: Vec<usize>,
    /// Campaigns per `--jobs` value.
    pub campaign_runs: usize,
    /// Guest RAM sizes of the checks section.
    pub check_ram_mib: Vec<u32>,
    /// Pages mapped for the checks: few, many.
    pub check_pages: [u64; 2],
    /// A guest built with an injected bug (`inject-leak`): minimization is
    /// measured only with one.
    pub minimize_kernel: Option<PathBuf>,
    /// Operations of the trace to minimize.
    pub minimize_ops: usize,
    /// Seconds the minimization may take.
    pub minimize_secs: f64,
    /// The sections to measure; empty: all of them.
    #[serde(default)]
    pub only: Vec<Section>,
}

impl BenchPlan {
    /// Whether the plan measures `section`.
    pub fn wants(&self, section: Section) -> bool {
        self.only.is_empty() || self.only.contains(&section)
    }
}

impl Default for BenchPlan {
    fn default() -> Self {
        BenchPlan {
            runs: 5,
            round_trips: 200,
            transports: vec![Link::Ring, Link::Serial],
            batch_sizes: vec![1, 16, 256],
            batched_requests: 1024,
            mix_ops: 2000,
            mix_batch: 256,
            pressure_ops: 8000,
            seed: 0xbe7c_0001,
            fuzz_secs: 10.0,
            fuzz_jobs: vec![1, 2],
            campaign_runs: 3,
            check_ram_mib: vec![64, 512, 2048],
            check_pages: [16, 4096],
            minimize_kernel: None,
            minimize_ops: 10_000,
            minimize_secs: 120.0,
            only: Vec::new(),
        }
    }
}

impl BenchPlan {
    /// The short plan CI runs (well under a minute on TCG): every section
    /// but minimization, two runs, small counts, 3 s campaigns, checks at
    /// 64 MiB only.
    pub fn quick() -> Self {
        BenchPlan {
            runs: 2,
            round_trips: 20,
            batched_requests: 256,
            mix_ops: 256,
            pressure_ops: 2000,
            fuzz_secs: 3.0,
            campaign_runs: 1,
            check_ram_mib: vec![64],
            check_pages: [16, 1024],
            ..BenchPlan::default()
        }
    }
}

/// The least request timeout of the bench's guests.
const BENCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The transport a [`Link`] of the plan names.
fn transport_of(link: Link) -> Option<Transport> {
    match link {
        Link::Ring => Some(Transport::Ring),
        Link::Serial => Some(Transport::Serial),
        Link::InProcess => None,
    }
}

/// Runs `plan` under each of `accels` with guests like `base` (its
/// transport for the sections that are not per transport), booted with
/// the fuzzer's default files. `progress` hears each section start.
pub async fn run(
    base: &VmConfig,
    accels: &[Accel],
    plan: &BenchPlan,
    progress: impl Fn(&str),
) -> Result<Report, BenchError> {
    let mut report = Report::new(plan.clone());
    let notes = &mut report.notes;
    for &accel in accels {
        let mut config = VmConfig {
            accel,
            files: crate::fuzz::FuzzArgs::default().files.0,
            // Measuring, not hunting hangs: a batch of 256 of the mix's
            // large operations over the serial line on a loaded machine
            // outlasts the default 10 s.
            request_timeout: base.request_timeout.max(BENCH_TIMEOUT),
            ..base.clone()
        };
        // The kernel and edge counter the fuzzer uses under this accelerator.
        crate::edge_counts::settle(&mut config).await?;
        let per_transport = [Section::Boot, Section::RoundTrip, Section::Batched];
        let transports = per_transport.iter().any(|&s| plan.wants(s));
        let mix = (transports || plan.wants(Section::InGuestVsInProcess))
            .then(|| mix::Mix::record(&config, plan.mix_ops, plan.seed));
        let links = if transports {
            &plan.transports[..]
        } else {
            &[]
        };
        for (t, mix) in links
            .iter()
            .filter_map(|&l| transport_of(l).zip(mix.as_ref()))
        {
            progress(&format!("{accel}, {t}: boot, round trip, batches"));
            let config = VmConfig {
                transport: t,
                shared_ram: config.shared_ram || t == Transport::Ring,
                ..config.clone()
            };
            report
                .figures
                .extend(transport::figures(&config, plan, mix).await?);
        }
        if plan.wants(Section::FreshState) {
            progress(&format!("{accel}: fresh state"));
            report.figures.extend(fresh::figures(&config, plan).await?);
        }
        if let Some(mix) = mix
            .as_ref()
            .filter(|_| plan.wants(Section::InGuestVsInProcess))
        {
            progress(&format!("{accel}: in guest and in process"));
            report
                .figures
                .extend(mix::figures(&config, plan, mix, Section::InGuestVsInProcess).await?);
        }
        if plan.pressure_ops > 0 && plan.wants(Section::UnderPressure) {
            progress(&format!("{accel}: under memory pressure"));
            let pressure = mix::Mix::record_campaign(&config, plan.pressure_ops, plan.seed);
            report
                .figures
                .extend(mix::figures(&config, plan, &pressure, Section::UnderPressure).await?);
        }
        if plan.wants(Section::Searches) {
            progress(&format!("{accel}: allocator searches"));
            report
                .figures
                .extend(searches::figures(&config, plan).await?);
        }
        if plan.wants(Section::Converts) {
            progress(&format!("{accel}: converts of untouched space"));
            report
                .figures
                .extend(converts::figures(&config, plan).await?);
        }
        if plan.wants(Section::Touches) {
            progress(&format!("{accel}: touches of 16 MiB"));
            report
                .figures
                .extend(touches::figures(&config, plan).await?);
        }
        if plan.wants(Section::EndToEnd) {
            progress(&format!("{accel}: fuzz campaigns"));
            report
                .figures
                .extend(end_to_end::figures(&config, plan, notes).await?);
        }
        if plan.wants(Section::Checks) {
            progress(&format!("{accel}: checks"));
            report
                .figures
                .extend(checks::check_rows(&config, plan).await?);
        }
        if let Some(kernel) = plan
            .minimize_kernel
            .as_ref()
            .filter(|_| plan.wants(Section::Minimize))
        {
            progress(&format!("{accel}: minimization"));
            report
                .figures
                .extend(minimize::figures(&config, kernel, plan, notes).await?);
        }
    }
    notes.extend(standing_notes(plan));
    Ok(report)
}

/// What the figures include, and what the plan left out.
fn standing_notes(plan: &BenchPlan) -> Vec<String> {
    let mut notes = vec![
        format!(
            "the VMM mix: {} operations of the fuzzer's generator (seed {:#x}, default weights \
             and files), each generated from the answer to the one before, the answers from \
             vmm-core in-process; the guest gets the same requests",
            plan.mix_ops, plan.seed
        ),
        format!(
            "round trip: back to back the guest finds each ring ping while it spins for the \
             next request; after {} ms idle it sleeps in hlt and the ping pays its wake-up (the \
             doorbell byte through QEMU's main loop and serial device, the interrupt, the \
             vCPU's wake-up), as a campaign's batch does after a full memory check, and after \
             any answer when its guests have no core to spare (they do not spin then). On the \
             serial line the guest sleeps between any two requests",
            transport::IDLE.as_millis()
        ),
        format!(
            "in guest vs in process: the guest's time includes the transport (batches of {}); \
             'answers equal' counts the guest's answers equal to vmm-core's (frame addresses \
             differ between the two machines)",
            plan.mix_batch
        ),
        format!(
            "under memory pressure: {} operations of a fuzz campaign of seed {:#x} (its \
             sequences in order, each with the weights, length and pressure pattern its seed \
             draws, the campaign's reset between two: Reset, again while the last gave back \
             many heap pages), generated from vmm-core's answers in-process; the \
             last row counts the operations that reclaimed (drop, swap, scavenge) first",
            plan.pressure_ops, plan.seed
        ),
        "pages touched: each operation's range in pages (map, unmap, convert, query, \
         map_file, evict, vfree; the pages a write's or read's bytes overlap), none for a \
         refused one (an Error answer); in guest vs in process, by vmm-core's answers"
            .to_string(),
        "checks: the judge's checks on a live guest without files: full (JudgedVm::check: \
         model expectations against shared guest RAM, and QEMU's info tlb), and incremental \
         (what the operations since the last clean check could have changed: here a write of \
         a few pages); the oracle's part alone: cargo bench -p oracle --bench checks"
            .to_string(),
    ];
    if plan.minimize_kernel.is_none() {
        notes.push(
            "minimization: not measured. Injected bugs are cargo features of the guest \
             build; pass --minimize-kernel PATH (a guest built with inject-leak) to measure \
             minimizing a long failing trace"
                .to_string(),
        );
    }
    notes
}
