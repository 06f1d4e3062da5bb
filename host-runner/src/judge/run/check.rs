//! A [`JudgedVm`]'s memory checks: full or incremental, with QEMU's
//! view or without, and the paused RAM handed to a caller.

use oracle::{CheckReport, GuestMemory};
use protocol::Hello;
use std::time::Instant;
use trace::{Failure, FailureKind};

use super::JudgedVm;
use crate::judge::inspect::{inspect_by, with_paused_ram, MemoryCheck};

impl JudgedVm {
    /// The full memory check now: the full result, clean or not (a failure
    /// only when it could not be made).
    pub async fn inspect(&mut self) -> Result<MemoryCheck, Failure> {
        self.settle()?;
        self.inspect_with(true, self.opts.tlb_check).await
    }

    /// The memory check: the checker's full check when `full` (or when the
    /// options ask for no incremental ones), else an incremental one when
    /// it has a record of the last clean check (`oracle::Checker`); with
    /// QEMU's view (CR3, `info tlb`) compared when `qemu` (full checks
    /// only). A check that is not clean, or could not be made, leaves no
    /// record: the next one is full.
    async fn inspect_with(&mut self, full: bool, qemu: bool) -> Result<MemoryCheck, Failure> {
        let t = Instant::now();
        let full = full || qemu || !self.opts.incremental;
        let memory = self.opts.memory;
        let at = self.index.checked_sub(1);
        let (checker, model, hello) = (&mut self.checker, &mut self.model, &self.hello);
        let space = model.current_space();
        let current = (
            space,
            model.space_root(space).unwrap_or(hello.page_table_root),
        );
        let check = |mem: &dyn GuestMemory| checker.check_model(mem, hello, model, full);
        let sleeps = sleeps_through(full, qemu, self.opts.data_thread);
        let r = inspect_by(&self.vm, hello, current, memory, (qemu, sleeps), check).await;
        let spent = t.elapsed();
        self.timings.checks += spent;
        self.timings.check_count += 1;
        if full {
            self.timings.full_checks += spent;
            self.timings.full_count += 1;
        }
        if let Ok(c) = &r {
            self.timings.qemu_view += c.qemu_time;
        }
        if !r.as_ref().is_ok_and(MemoryCheck::is_clean) {
            self.checker.forget();
        }
        match r {
            Ok(c) => Ok(c),
            Err(e) => Err(self.fail(e, at).await),
        }
    }

    /// The memory check after operation `at`, full (with QEMU's view) or
    /// the one between batches (incremental: what changed since the last
    /// clean check): the report, or an `Invariant` failure listing every
    /// violation.
    pub async fn check_at(
        &mut self,
        at: Option<usize>,
        full: bool,
    ) -> Result<CheckReport, Failure> {
        self.check_with(at, full, full && self.opts.tlb_check).await
    }

    /// [`JudgedVm::check_at`] with the oracle's depth and QEMU's view
    /// chosen apart.
    pub(super) async fn check_with(
        &mut self,
        at: Option<usize>,
        full: bool,
        qemu: bool,
    ) -> Result<CheckReport, Failure> {
        self.judged_inspect(at, full, qemu)
            .await
            .map(|check| check.report)
    }

    /// [`JudgedVm::check_with`], answering the whole check (its parts'
    /// times included) when it is clean.
    async fn judged_inspect(
        &mut self,
        at: Option<usize>,
        full: bool,
        qemu: bool,
    ) -> Result<MemoryCheck, Failure> {
        // The model must stand where the guest's memory stands.
        self.settle()?;
        self.coverage.poll(&self.vm);
        let check = self.inspect_with(full, qemu).await?;
        if check.is_clean() {
            return Ok(check);
        }
        let after = at.map_or("at boot".to_string(), |i| format!("after operation {i}"));
        let message = format!(
            "memory check {after}: {} violation(s)\n{}",
            check.report.violations.len() + check.qemu.len(),
            check.violations_text()
        );
        Err(Failure::new(FailureKind::Invariant, message, at)
            .with_class(crate::judge::classes::invariant_class(&check)))
    }

    /// The full memory check now: the report when every invariant holds,
    /// else an `Invariant` failure listing every violation.
    pub async fn check(&mut self) -> Result<CheckReport, Failure> {
        self.check_timed().await.map(|check| check.report)
    }

    /// [`JudgedVm::check`], answering the whole check: what its parts
    /// took (the oracle's check, QEMU's view after it) with the report.
    pub async fn check_timed(&mut self) -> Result<MemoryCheck, Failure> {
        // Judged first, so that the check's index is the last operation's.
        self.settle()?;
        let qemu = self.opts.tlb_check;
        self.judged_inspect(self.index.checked_sub(1), true, qemu)
            .await
    }

    /// Runs `f` on the paused guest's RAM (for decoding walks at a failure).
    pub async fn with_ram<T>(
        &mut self,
        f: impl FnOnce(&dyn GuestMemory, &Hello) -> T,
    ) -> Result<T, Failure> {
        self.settle()?;
        let hello = self.hello.clone();
        let at = self.index.checked_sub(1);
        match with_paused_ram(&self.vm, self.opts.memory, |m| f(m, &hello)).await {
            Ok(t) => Ok(t),
            Err(e) => Err(self.fail(e, at).await),
        }
    }
}

/// Whether the guest sleeps through a check (`inspect_by`'s `sleeps`): a
/// full check that has both cores' work (QEMU's view, or the data thread),
/// not the rest. Sleeping through the incremental ones too measured no
/// better (30-s campaigns at --jobs 1, alternated) and wakes the guest
/// after ten times as many checks. A judge without incremental checks
/// asks for full ones only, and so sleeps through every one.
fn sleeps_through(full: bool, qemu: bool, data_thread: bool) -> bool {
    qemu || (full && data_thread)
}

#[cfg(test)]
mod tests {
    use super::sleeps_through;

    /// QEMU's view always; a full check with the data thread; never an
    /// incremental one, nor a full one without the thread.
    #[test]
    fn the_guest_sleeps_through_full_checks_with_work_for_both_cores() {
        for (full, qemu, thread, want) in [
            (true, true, false, true),
            (true, true, true, true),
            (true, false, true, true),
            (true, false, false, false),
            (false, false, true, false),
            (false, false, false, false),
        ] {
            assert_eq!(
                sleeps_through(full, qemu, thread),
                want,
                "full {full}, QEMU's view {qemu}, data thread {thread}"
            );
        }
    }
}
