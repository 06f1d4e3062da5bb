//! `host-runner check`: boots, runs a trace (`--trace FILE`) or a small
//! built-in workload, judged by the model, then checks guest memory and
//! prints every invariant with its verdict, the counts and the timings —
//! through both memory sources, so their cost is on screen.

use std::fmt::Write;
use std::time::Duration;

use protocol::{AreaType, Privilege, Request};
use trace::Trace;

use crate::judge::{JudgeOptions, JudgedVm, MemoryCheck, MemorySource};
use crate::session::VmConfig;

/// The invariants, numbered as the checker numbers them.
pub const INVARIANTS: [(u8, &str); 8] = [
    (1, "every present page's and table's frame is marked used"),
    (2, "no frame has two owners"),
    (
        3,
        "no used frame that nothing owns (leak), bitmap well formed",
    ),
    (
        4,
        "tables: no empty table, no entry with reserved bits or no state",
    ),
    (5, "state bits agree with the model"),
    (6, "written data is intact"),
    (7, "CR3 and QEMU's MMU (info tlb) agree with the walk"),
    (8, "no stale TLB entry (judged by the model at every touch)"),
];

/// The built-in workload: a map written and read, the seed's 33 MiB
/// conversion touched across page-table boundaries, host frames, valloc.
pub fn builtin_workload() -> Vec<Request> {
    let user = Privilege::User;
    let kernel = Privilege::Kernel;
    vec![
        Request::map_writable(0x4000_0000, 16, user),
        Request::Write {
            addr: 0x4000_0800,
            len: 8 * 4096,
            seed: 1,
            privilege: user,
        },
        Request::Convert {
            addr: 0x1234_5000,
            pages: 8448,
            to: AreaType::UsableRam,
            privilege: user,
        },
        Request::Write {
            addr: 0x1234_5000,
            len: 4 << 20,
            seed: 2,
            privilege: user,
        },
        Request::Read {
            addr: 0x4000_0000,
            len: 16 * 4096,
            privilege: user,
        },
        Request::AllocFrames {
            count: 5,
            contiguous: true,
            privilege: kernel,
        },
        Request::Valloc {
            pages: 4,
            privilege: kernel,
        },
        Request::Stats,
    ]
}

/// What `check` found.
#[derive(Debug)]
pub struct CheckRun {
    /// The workload's failure (model divergence, panic…), if any.
    pub workload: Option<trace::Failure>,
    pub ops: usize,
    /// The check through each source (the first is the `--memory` one).
    pub checks: Vec<MemoryCheck>,
}

impl CheckRun {
    /// Whether the workload passed and every invariant held.
    pub fn passed(&self) -> bool {
        self.workload.is_none() && self.checks.iter().all(MemoryCheck::is_clean)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// How an invariant fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// Invariant 7 with `--no-tlb`: CR3 compared, QEMU's mappings not.
    CrOnly,
    /// Invariant 8 is judged at every touch: a failed workload says.
    SeeWorkload,
    Violated,
}

/// One invariant's line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InvariantVerdict {
    pub number: u8,
    pub name: &'static str,
    pub verdict: Verdict,
    /// Its violations found.
    pub count: usize,
}

/// Every invariant's verdict in `check` (the first source's).
pub fn verdicts(run: &CheckRun, check: &MemoryCheck) -> Vec<InvariantVerdict> {
    INVARIANTS
        .iter()
        .map(|&(number, name)| {
            let count = match number {
                7 => check.qemu.len(),
                8 => 0,
                n => check
                    .report
                    .violations
                    .iter()
                    .filter(|v| v.invariant() == n)
                    .count(),
            };
            let verdict = match (number, count) {
                (7, 0) if !check.tlb_checked => Verdict::CrOnly,
                (8, _) if run.workload.is_none() => Verdict::Ok,
                (8, _) => Verdict::SeeWorkload,
                (_, 0) => Verdict::Ok,
                _ => Verdict::Violated,
            };
            InvariantVerdict {
                number,
                name,
                verdict,
                count,
            }
        })
        .collect()
}

/// The `"format"` of `check --json`.
pub const JSON_FORMAT: &str = "vmmfuzz-check";

/// The run as one JSON document (`check --json FILE`): whether it passed,
/// the workload, every invariant's verdict, the violations, the counts and
/// the timings per memory source.
pub fn json(run: &CheckRun) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let first = run.checks.first();
    let doc = serde_json::json!({
        "format": JSON_FORMAT,
        "version": 1,
        "passed": run.passed(),
        "workload": {
            "ops": run.ops,
            "failure": run.workload.as_ref().map(ToString::to_string),
        },
        "invariants": first.map(|c| verdicts(run, c)),
        "violations": first.map(|c| c.violations_text().lines().map(String::from).collect::<Vec<_>>()),
        "counts": first.map(|c| serde_json::json!({
            "present_pages": c.report.walk.translations.len(),
            "page_tables": c.report.walk.tables.len(),
            "info_tlb_mappings": c.tlb_entries,
        })),
        "timings": run.checks.iter().map(|c| serde_json::json!({
            "source": c.source.to_string(),
            "read_ms": ms(c.read_time),
            "checker_ms": ms(c.check_time),
            "qemu_ms": ms(c.qemu_time),
            "total_ms": ms(c.total_time()),
        })).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).expect("plain data always serializes")
}

/// The report: the workload, every invariant's verdict, counts, timings.
pub fn format_report(run: &CheckRun) -> String {
    let mut out = String::new();
    match &run.workload {
        None => {
            let _ = writeln!(
                out,
                "workload: {} ops, every answer as the model predicted",
                run.ops
            );
        }
        Some(f) => {
            let _ = writeln!(out, "workload FAILED: {f}");
        }
    }
    let Some(first) = run.checks.first() else {
        return out;
    };
    for v in verdicts(run, first) {
        let verdict = match v.verdict {
            Verdict::Ok => "ok".to_string(),
            Verdict::CrOnly => "ok (CR3 only: --no-tlb)".to_string(),
            Verdict::SeeWorkload => "see the workload".to_string(),
            Verdict::Violated => format!("VIOLATED ({})", v.count),
        };
        let _ = writeln!(out, "  {}. {}: {verdict}", v.number, v.name);
    }
    let unreadable = first
        .report
        .violations
        .iter()
        .filter(|v| v.invariant() == 0)
        .count();
    if unreadable > 0 {
        let _ = writeln!(out, "  unreadable memory: {unreadable}");
    }
    if !first.is_clean() {
        let _ = writeln!(out, "{}", first.violations_text());
    }
    let w = &first.report.walk;
    let _ = writeln!(
        out,
        "counts: {} present pages, {} page tables walked, {} info-tlb mappings",
        w.translations.len(),
        w.tables.len(),
        first.tlb_entries
    );
    for c in &run.checks {
        let _ = writeln!(
            out,
            "timing ({}): read {}, checker {}, CR3 + info tlb after the checker {}, total {}",
            c.source,
            ms(c.read_time),
            ms(c.check_time),
            ms(c.qemu_time),
            ms(c.total_time())
        );
    }
    out
}

/// Boots, runs `trace` (or the built-in workload), and checks memory
/// through `memory` and then through the other source.
pub async fn run(
    config: &VmConfig,
    trace: Option<&Trace>,
    memory: MemorySource,
    tlb: bool,
) -> Result<CheckRun, trace::Failure> {
    let config = match trace {
        Some(t) => crate::replay::config_for(config, t),
        None => config.clone(),
    };
    // Shared RAM is booted either way, so that both sources can be timed.
    let opts = JudgeOptions {
        check_after_reset: false,
        memory: MemorySource::SharedRam,
        tlb_check: tlb,
        // Checks on the way are full ones, as the command times them.
        incremental: false,
        data_thread: false,
        spin: None,
    };
    let vm = JudgedVm::start(&config, opts).await?;
    let (mut vm, workload, ops) = match trace {
        Some(t) => {
            let mut vm = vm;
            let opts = trace::RunOptions {
                final_check: false,
                ..trace::RunOptions::default()
            };
            let report = trace::run(t, &mut vm, opts, &mut |_| {}).await;
            let ops = report.steps.len();
            (vm, report.outcome.failure().cloned(), ops)
        }
        None => {
            let mut vm = vm;
            let reqs = builtin_workload();
            let n = reqs.len();
            let failure = vm.steps(reqs).await.err();
            (vm, failure, n)
        }
    };
    let other = match memory {
        MemorySource::Pmemsave => MemorySource::SharedRam,
        MemorySource::SharedRam => MemorySource::Pmemsave,
    };
    let mut checks = Vec::new();
    for source in [memory, other] {
        let expect = vm.model().expectations();
        let hello = vm.hello().clone();
        let c = crate::judge::inspect(vm.vm(), &hello, &expect, source, tlb)
            .await
            .map_err(crate::judge::failure_from)?;
        checks.push(c);
    }
    let run = CheckRun {
        workload,
        ops,
        checks,
    };
    if run.passed() {
        vm.finish().await?;
    }
    Ok(run)
}
