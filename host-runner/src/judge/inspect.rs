//! The memory check of a live guest (issue 4): read its RAM (a `pmemsave`
//! of all RAM, or the shared RAM mapping), run the oracle's checker against
//! the model, and at full checks compare CR3 and QEMU's own MMU
//! (`info tlb`) with the walk.
//!
//! The guest is not paused: a check runs only between requests, when the
//! guest has sent its last answer and writes no memory a check reads until
//! the next request comes (`protocol::ring`, rule 5: only its stack and the
//! ring's `waiting`; the serial line's answer is likewise the last thing a
//! request does). Pausing through QMP (`stop`, `cont`) cost 8 ms a check
//! and bought nothing. Through a check with QEMU's view the guest does not
//! spin for its next request but sleeps (`inspect_by`).

use std::fmt;
use std::time::{Duration, Instant};

use oracle::{CheckReport, Expectations, GuestMemory, ImageMemory};
use protocol::Hello;

use super::qemu_view::{check_cr3, compare_tlb, parse_tlb, QemuMismatch};
use crate::error::{Error, Result};
use crate::session::Vm;

/// Where the checker reads guest RAM from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MemorySource {
    /// QMP `pmemsave` of all RAM into the private directory, then read
    /// back. Works with any QEMU setup.
    Pmemsave,
    /// Guest RAM backed by a shared file the host maps ([`crate::ram`]):
    /// no copy. The default: measured faster (see the judge's docs).
    #[default]
    SharedRam,
}

impl fmt::Display for MemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemorySource::Pmemsave => "pmemsave",
            MemorySource::SharedRam => "shared-ram",
        })
    }
}

/// Most QEMU mismatches listed in one check.
const MISMATCH_LIMIT: usize = 32;

/// Everything one memory check found, with its timing.
#[derive(Clone, Debug)]
pub struct MemoryCheck {
    /// Invariants 1–6, and the walk.
    pub report: CheckReport,
    /// CR3 and, when asked for, invariant 7 (`info tlb` against the walk).
    pub qemu: Vec<QemuMismatch>,
    /// Whether CR3 and `info tlb` were compared (full checks only).
    pub tlb_checked: bool,
    /// Mappings `info tlb` listed (all of them, managed or not).
    pub tlb_entries: usize,
    pub source: MemorySource,
    /// Reading RAM (the `pmemsave` and read back, or nothing).
    pub read_time: Duration,
    /// The oracle's checker.
    pub check_time: Duration,
    /// What QEMU's view (`info tlb` and `info registers`, asked for
    /// before the oracle's check and answered while it runs) took after
    /// the oracle's check: the wait for the rest, parsing and comparison.
    pub qemu_time: Duration,
}

impl MemoryCheck {
    /// Whether every invariant holds.
    pub fn is_clean(&self) -> bool {
        self.report.is_clean() && self.qemu.is_empty()
    }

    /// Every violation, one per line.
    pub fn violations_text(&self) -> String {
        let mut lines: Vec<String> = self
            .report
            .violations
            .iter()
            .map(ToString::to_string)
            .collect();
        lines.extend(self.qemu.iter().map(ToString::to_string));
        lines.join("\n")
    }

    /// The whole check's time.
    pub fn total_time(&self) -> Duration {
        self.read_time + self.check_time + self.qemu_time
    }
}

/// Guest RAM as the checker reads it.
pub(crate) enum Ram<'a> {
    Image(ImageMemory),
    Shared(&'a crate::ram::SharedRam),
}

impl Ram<'_> {
    pub(crate) fn memory(&self) -> &dyn GuestMemory {
        match self {
            Ram::Image(m) => m,
            Ram::Shared(m) => *m,
        }
    }
}

/// Reads guest RAM (the guest must be stopped). Falls back to `pmemsave`
/// when the guest was booted without shared RAM.
pub(crate) async fn read_ram(vm: &Vm, source: MemorySource) -> Result<Ram<'_>> {
    match (source, vm.shared_ram()) {
        (MemorySource::SharedRam, Some(ram)) => Ok(Ram::Shared(ram)),
        _ => Ok(Ram::Image(ImageMemory {
            base: 0,
            bytes: vm.dump_ram().await?,
        })),
    }
}

/// Runs `f` on the paused guest's RAM and resumes it, even when `f` fails.
pub(crate) async fn with_paused_ram<T>(
    vm: &Vm,
    source: MemorySource,
    f: impl FnOnce(&dyn GuestMemory) -> T,
) -> Result<T> {
    vm.stop().await?;
    let result = match read_ram(vm, source).await {
        Ok(ram) => Ok(f(ram.memory())),
        Err(e) => Err(e),
    };
    vm.cont().await?;
    result
}

/// Checks the guest's memory against `expect` (between requests: see the
/// module docs) and, with `qemu`, compares CR3 and QEMU's mappings with
/// the walk.
pub async fn inspect(
    vm: &Vm,
    hello: &Hello,
    expect: &Expectations,
    source: MemorySource,
    qemu: bool,
) -> Result<MemoryCheck> {
    let check = |mem: &dyn GuestMemory| oracle::check(mem, hello, expect);
    let space = expect.current_space();
    let root = expect
        .space_root(hello, space)
        .unwrap_or(hello.page_table_root);
    inspect_by(vm, hello, (space, root), source, (qemu, qemu), check).await
}

/// [`inspect`] with the oracle's part run by `check` on guest memory (a
/// stateful [`oracle::Checker`]'s full or incremental check); with `qemu`
/// its report must be a full one, whose walk QEMU's view is compared with.
/// With `sleeps` the guest does not spin through the check but sleeps
/// (`protocol::ring`, rule 4): for a check that has work for both cores
/// (QEMU's view, or the oracle's data thread), which a spinning guest
/// would hold one of. Its next request then pays the wake-up.
pub(crate) async fn inspect_by(
    vm: &Vm,
    hello: &Hello,
    at: (u16, u64),
    source: MemorySource,
    (qemu, sleeps): (bool, bool),
    check: impl FnOnce(&dyn GuestMemory) -> CheckReport,
) -> Result<MemoryCheck> {
    // Such a check has work for both cores (QEMU printing `info tlb`
    // beside the oracle; the oracle's two threads): the guest sleeps at
    // once, its core the check's, and gets its spin back after.
    let spin = if sleeps { vm.swap_guest_spin(0) } else { None };
    let r = inspect_now(vm, hello, at, source, qemu, check).await;
    if let Some(ticks) = spin {
        vm.set_guest_spin(ticks);
    }
    r
}

/// [`inspect_by`] with the guest's spin as it is.
async fn inspect_now(
    vm: &Vm,
    hello: &Hello,
    (space, root): (u16, u64),
    source: MemorySource,
    qemu: bool,
    check: impl FnOnce(&dyn GuestMemory) -> CheckReport,
) -> Result<MemoryCheck> {
    let t = Instant::now();
    let ram = read_ram(vm, source).await?;
    let source = match ram {
        Ram::Image(_) => MemorySource::Pmemsave,
        Ram::Shared(_) => MemorySource::SharedRam,
    };
    let read_time = t.elapsed();
    // QEMU's view is asked for first, and formatted in QEMU's process
    // while the oracle checks here: `info tlb` lists every mapping, and
    // at a few thousand pages its text takes as long as the check. Both
    // commands go at once when the QMP client numbers them (qapi does when
    // QEMU offers out-of-band commands, as 7.2 does; else one follows the
    // other, the same answers), so the registers cost no round trip of
    // their own after the table. Both answers are awaited even when one
    // fails: dropping a command in flight would leave its answer without a
    // taker, which ends qapi's connection for every later command.
    let view = async {
        if !qemu {
            return Ok(None);
        }
        let (tlb, registers) = tokio::join!(vm.hmp("info tlb"), vm.hmp("info registers"));
        Ok::<_, crate::qmp::QmpError>(Some((tlb?, registers?)))
    };
    let oracle = async {
        let t = Instant::now();
        let report = check(ram.memory());
        (report, t.elapsed(), Instant::now())
    };
    let (view, (report, check_time, checked)) = tokio::join!(view, oracle);
    let view = view?;
    debug_assert!(
        !qemu || report.scope == oracle::Scope::Full,
        "QEMU's view is compared with a full walk only"
    );
    drop(ram);

    let mut mismatches = Vec::new();
    let mut tlb_entries = 0;
    if let Some((text, registers)) = view {
        mismatches.extend(check_cr3(&registers, space, root));
        if text.contains("PG disabled") {
            return Err(Error::MemoryCheck(format!(
                "`info tlb` says paging is off: {}",
                text.trim()
            )));
        }
        let entries = parse_tlb(&text);
        tlb_entries = entries.len();
        let current: Vec<_> = report.walk.of_space(space).collect();
        mismatches.extend(compare_tlb(&entries, &current, hello, MISMATCH_LIMIT));
    }
    Ok(MemoryCheck {
        report,
        qemu: mismatches,
        tlb_checked: qemu,
        tlb_entries,
        source,
        read_time,
        check_time,
        qemu_time: checked.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use oracle::{CheckReport, GuestMemory, Scope, Walk};
    use protocol::Request;

    use super::{inspect_by, MemorySource};
    use crate::session::Vm;
    use crate::{Accel, RunnerOptions};

    /// A guest told to spin without end, then checked: with `sleeps` it
    /// goes to sleep while the check runs (the check waits for it, so no
    /// scheduling can hide it), without it goes on spinning; either way
    /// its spin is back after, and it still shuts down.
    #[tokio::test]
    async fn the_guest_sleeps_through_a_check_that_says_so_and_spins_through_the_rest() {
        let Ok(mut config) = crate::base_config(&RunnerOptions::default()) else {
            eprintln!("skipped: no QEMU, or the build script built no kernel");
            return;
        };
        config.accel = Accel::Tcg;
        let mut vm = Vm::boot(&config).await.expect("boot");
        let hello = vm.hello().await.expect("hello");
        assert!(vm.uses_ring(), "shared RAM and the default transport");
        for (nonce, sleeps) in [(1, true), (2, false)] {
            assert!(vm.set_guest_spin(u64::MAX));
            let pong = vm.call(Request::Ping { nonce }).await.expect("pong");
            assert_eq!(pong, protocol::Response::Pong { nonce });
            let seen = Cell::new(None::<bool>);
            let check = |_: &dyn GuestMemory| {
                // Long enough for a guest told to sleep; a glance at one
                // that was not.
                let wait = if sleeps { 30_000 } else { 50 };
                let end = Instant::now() + Duration::from_millis(wait);
                while vm.guest_sleeps() != Some(true) && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(1));
                }
                seen.set(vm.guest_sleeps());
                CheckReport {
                    violations: Vec::new(),
                    walk: Walk::default(),
                    scope: Scope::Full,
                }
            };
            let at = (0, hello.page_table_root);
            let memory = MemorySource::SharedRam;
            inspect_by(&vm, &hello, at, memory, (false, sleeps), check)
                .await
                .expect("the check");
            assert_eq!(seen.get(), Some(sleeps), "asleep in the check: {sleeps}");
            assert_eq!(vm.guest_spin(), Some(u64::MAX), "its spin back");
        }
        vm.shutdown()
            .await
            .expect("a spinning guest still shuts down");
    }
}
