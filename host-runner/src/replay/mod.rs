//! `host-runner replay TRACE`: runs a trace on a fresh guest, judged by the
//! model, with a memory check every `--check-every` operations and at the
//! end; prints the step table; at the first failure prints the decoded page
//! walk around the failing address and the model's view of it. `--dump`
//! writes an ELF core of the guest at the failure; `--gdb` replays again up
//! to the operation before the failing one and leaves QEMU paused for gdb.

mod explain;
mod gdb;
pub mod results;

use std::path::{Path, PathBuf};

use trace::replay::{format_step_in, CurrentSpace, ReplayReport};
use trace::RunOptions;
use trace::{Failure, Outcome, Reproduction, Trace};

use crate::error::{Error, Result};
use crate::exit_code::ExitClass;
use crate::judge::{JudgeOptions, JudgedVm, MemorySource};
use crate::report::{gather, FailureReport, Snapshot};
use crate::session::VmConfig;

pub use explain::{failing_address, first_virt, neighbourhood};

/// What the command line asks of a replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The memory check cadence: `None` replays the trace's own (its
    /// `check_every`), `Some(0)` checks only at the end, `Some(n)` after
    /// each batch that brings the operations since the last check to `n`.
    pub check_every: Option<usize>,
    pub memory: MemorySource,
    /// Compare `info tlb` with the walk in every check.
    pub tlb_check: bool,
    /// Leave QEMU paused under gdb before the failing operation.
    pub gdb: bool,
    /// Write an ELF core of the guest at the failure here.
    pub dump: Option<PathBuf>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            check_every: None,
            memory: MemorySource::default(),
            tlb_check: true,
            gdb: false,
            dump: None,
        }
    }
}

impl ReplayOptions {
    pub(crate) fn judge_options(&self) -> JudgeOptions {
        JudgeOptions {
            check_after_reset: false,
            memory: self.memory,
            tlb_check: self.tlb_check,
            // A replay diagnoses: every check at its cadence is a full one.
            incremental: false,
            data_thread: false,
            spin: None,
        }
    }
}

/// Reads a trace file; errors name the line and the field.
pub fn read_trace(path: &Path) -> Result<Trace> {
    let err = |source| Error::Trace {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|e| err(trace::TraceError::Io(e)))?;
    trace::parse(std::io::BufReader::new(file)).map_err(err)
}

/// The configuration for a trace: its `ram_mib` wins.
pub fn config_for(config: &VmConfig, trace: &Trace) -> VmConfig {
    let mut c = config.clone();
    if let Some(mib) = trace.header.ram_mib {
        c.ram_mib = mib;
    }
    c.files.clone_from(&trace.header.files);
    c
}

/// A replay's outcome and everything printed about it.
#[derive(Debug)]
pub struct ReplayRun {
    pub report: ReplayReport,
    /// The table, the failure and the decoded walks, as printed.
    pub text: String,
    /// For a trace saved for a failure: whether it reproduced (its line
    /// ends the text).
    pub reproduction: Option<Reproduction>,
    /// At a failure: the address space around the failing address, its
    /// walk and the frame map, for the HTML report.
    pub snapshot: Option<crate::report::Snapshot>,
}

impl ReplayRun {
    pub fn passed(&self) -> bool {
        self.report.outcome == Outcome::Passed
    }

    /// What the replay exits with: 0 when the trace passed (the saved
    /// failure did not occur), 1 when the VMM failed in any way (the saved
    /// failure, earlier, or another), 3 when the environment failed.
    pub fn exit_class(&self) -> ExitClass {
        match &self.report.outcome {
            Outcome::Passed => ExitClass::Passed,
            Outcome::Failed(f) => ExitClass::of_failure(f),
        }
    }

    /// The HTML report of this replay of the trace at `path`; `replay` is
    /// the command before the path (`host-runner … replay`).
    pub fn failure_report(&self, path: &Path, replay: &str) -> FailureReport {
        let failure = self.report.outcome.failure().cloned();
        let mut verdict = match (&self.report.outcome, &failure) {
            (Outcome::Failed(_), Some(f)) => {
                let first = f.to_string();
                format!("FAILED: {}", first.lines().next().unwrap_or(""))
            }
            _ => format!(
                "passed: {} ops, memory check clean",
                self.report.steps.len()
            ),
        };
        if let Some(r) = &self.reproduction {
            verdict.push_str(&format!(" — {r}"));
        }
        FailureReport {
            trace: path.display().to_string(),
            verdict,
            command: format!("{replay} {}", path.display()),
            failure,
            steps: self.report.steps.clone(),
            snapshot: self.snapshot.clone().unwrap_or_default(),
        }
    }
}

/// Replays `trace` on a fresh guest. `print` gets each piece of output as
/// it comes (the table row by row). With a final memory check; after a
/// failure, the walks (when the guest still runs) and the `--dump`.
pub async fn run(
    config: &VmConfig,
    trace: &Trace,
    opts: &ReplayOptions,
    print: impl Fn(&str) + Send + Sync + Clone + 'static,
) -> ReplayRun {
    let config = config_for(config, trace);
    let mut text = String::new();
    let emit = |s: &str, text: &mut String| {
        print(s);
        text.push_str(s);
    };
    let mut vm = match JudgedVm::start(&config, opts.judge_options()).await {
        Ok(vm) => vm,
        Err(f) => {
            emit(&format!("FAILED at boot: {f}\n"), &mut text);
            if let Some(path) = &opts.dump {
                emit(&no_dump(path, "the guest did not boot"), &mut text);
            }
            let report = ReplayReport {
                steps: vec![],
                outcome: Outcome::Failed(f),
            };
            let reproduction = verdict(trace, &report, &mut text, &print);
            return ReplayRun {
                report,
                text,
                reproduction,
                snapshot: None,
            };
        }
    };
    let run = RunOptions {
        check_every: opts.check_every,
        final_check: true,
        predict: true,
    };
    let mut current = CurrentSpace::default();
    let mut report = trace::run(trace, &mut vm, run, &mut |step| {
        let row = format!("{}\n", format_step_in(step, current.step(step)));
        print(&row);
        text.push_str(&row);
    })
    .await;
    let mut snapshot = None;
    match report.outcome.clone() {
        Outcome::Passed => {
            emit(
                &format!("passed: {} ops, memory check clean\n", report.steps.len()),
                &mut text,
            );
            let why = match vm.finish().await {
                Err(f) => {
                    report.outcome = Outcome::Failed(f.clone());
                    emit(&format!("FAILED: {f}\n"), &mut text);
                    "the guest failed as it was shut down, after the last check"
                }
                Ok(()) => "the trace passed (a core is written at a failure)",
            };
            if let Some(path) = &opts.dump {
                emit(&no_dump(path, why), &mut text);
            }
        }
        Outcome::Failed(f) => {
            emit(&format!("FAILED: {f}\n"), &mut text);
            let (more, snap) = after_failure(&mut vm, &report, &f, opts).await;
            emit(&more, &mut text);
            snapshot = snap;
        }
    }
    let reproduction = verdict(trace, &report, &mut text, &print);
    ReplayRun {
        report,
        text,
        reproduction,
        snapshot,
    }
}

/// For a trace saved for a failure, the verdict line (printed last).
fn verdict(
    trace: &Trace,
    report: &ReplayReport,
    text: &mut String,
    print: &impl Fn(&str),
) -> Option<Reproduction> {
    let saved = trace.header.failure.as_ref()?;
    let r = Reproduction::judge(saved, &report.outcome);
    let line = format!("{r}\n");
    print(&line);
    text.push_str(&line);
    Some(r)
}

/// The walks around the failing address, the model's view, and the core
/// dump, as far as the guest still lets us look; and the report's
/// snapshot of the same (read in the same pause).
async fn after_failure(
    vm: &mut JudgedVm,
    report: &ReplayReport,
    f: &Failure,
    opts: &ReplayOptions,
) -> (String, Option<Snapshot>) {
    let step = report.steps.last();
    let mut out = String::new();
    let running = vm.vm().qemu_pid().is_some()
        && vm.vm().wait_exit(std::time::Duration::ZERO).await == crate::QemuExit::Running;
    // A failure without an address (a stats identity off, a hang) still
    // gets the frame map: a leaked frame shows there, owned by nothing.
    let addr = explain::failing_key(f, step, vm.model());
    let pages = addr.map(neighbourhood).unwrap_or_default();
    let class = f.class.as_deref();
    let mut snap = gather::model_side(vm.model(), addr, class);
    if !running {
        if addr.is_some() {
            out.push_str("(the guest is gone: no page walk to show)\n");
        }
        snap.notes
            .push("The guest is gone (QEMU exited at the failure): only the model's view.".into());
    } else {
        let expect = vm.model().expectations();
        let model = vm.model().clone();
        let named = gather::named_frames(class);
        let read = vm
            .with_ram(|mem, hello| {
                gather::guest_side(&mut snap, mem, hello, &expect, &named);
                if pages.is_empty() {
                    String::new()
                } else {
                    explain::walks(mem, hello, &model, &pages)
                }
            })
            .await;
        match read {
            Ok(w) => out.push_str(&w),
            Err(e) => {
                out.push_str(&format!("(could not read guest memory: {e})\n"));
                snap.notes.push(format!("Could not read guest memory: {e}"));
            }
        }
    }
    if !pages.is_empty() {
        out.push_str(&explain::model_view(vm.model(), &pages));
    }
    let snapshot = Some(snap);
    if let Some(path) = &opts.dump {
        let line = if running {
            dump(vm, path).await
        } else {
            no_dump(path, "the guest is gone (QEMU exited at the failure)")
        };
        out.push_str(&line);
    }
    (out, snapshot)
}

/// The line of a `--dump` that wrote nothing, and why.
pub fn no_dump(path: &Path, why: &str) -> String {
    format!("no guest core written to {}: {why}\n", path.display())
}

/// `dump-guest-memory` (an ELF core, for gdb or crash) to `path`: the
/// line saying it was written (and its size), or why not.
async fn dump(vm: &mut JudgedVm, path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    match vm.vm().dump_guest_memory(&abs).await {
        Ok(()) => match std::fs::metadata(&abs) {
            Ok(m) => format!(
                "guest core written to {} ({} bytes, ELF; gdb or crash read it)\n",
                abs.display(),
                m.len()
            ),
            Err(e) => no_dump(&abs, &format!("QEMU said it wrote it, but {e}")),
        },
        Err(e) => no_dump(&abs, &format!("dump-guest-memory failed: {e}")),
    }
}

pub use gdb::pause_for_gdb;
