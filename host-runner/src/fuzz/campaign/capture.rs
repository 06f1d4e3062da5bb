//! A failure's capture: its trace saved before anything else, reported
//! (with an HTML report beside it), minimized when its signature is new.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use trace::recorder::failure_path;
use trace::Trace;

use super::shared::Shared;
use crate::fuzz::error::FuzzError;
use crate::fuzz::history::since_boot_path;
use crate::fuzz::summary::FoundFailure;
use crate::judge::target::Reuse;
use crate::minimize::{minimize_trace, step_line, MinimizeError, MinimizeOptions, MinimizeReport};
use crate::replay::ReplayOptions;
use crate::report;

impl Shared {
    /// Saves the failing trace (atomically: before anything else), and
    /// beside it `since_boot` (the same failure after everything the guest
    /// received since it booted) when the sequence ran after a reset;
    /// reports it, and minimizes it if its signature is new: the sequence
    /// alone, or the history when the sequence alone passes on a fresh
    /// guest (the reset left some state behind).
    pub async fn capture(&self, trace: Trace, since_boot: Option<Trace>) -> Result<(), FuzzError> {
        let started = Instant::now();
        let r = self.capture_timed(trace, since_boot).await;
        *self.progress.capturing.lock().expect("not poisoned") += started.elapsed();
        r
    }

    async fn capture_timed(
        &self,
        trace: Trace,
        since_boot: Option<Trace>,
    ) -> Result<(), FuzzError> {
        let failure = trace.header.failure.clone().expect("a failing trace");
        let path = failure_path(&self.args.out, &failure, &trace);
        trace::save_atomically(&path, &trace).map_err(self.io(path.clone()))?;
        let history = match since_boot {
            Some(t) => {
                let p = since_boot_path(&path);
                trace::save_atomically(&p, &t).map_err(self.io(p.clone()))?;
                Some((p, t))
            }
            None => None,
        };
        let n = self.progress.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if self.args.max_failures > 0 && n >= self.args.max_failures {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.progress.println(format!(
            "FAILED: {failure}\n  saved: {}\n  reproduce: {} {}",
            path.display(),
            self.replay,
            path.display()
        ));
        if let Some((p, t)) = &history {
            self.progress.println(format!(
                "  the sequence ran after a reset; with everything before it since boot \
                 ({} ops): {}",
                t.len(),
                p.display()
            ));
        }
        // In the summary at once: a campaign interrupted while minimizing
        // still names the saved trace.
        let index = {
            let mut found = self.found.lock().expect("not poisoned");
            found.push(FoundFailure {
                failure: failure.clone(),
                path: path.clone(),
                ops: trace.len(),
                minimized: None,
            });
            found.len() - 1
        };
        let new = self
            .minimized
            .lock()
            .expect("not poisoned")
            .insert(failure.signature());
        let minimized = if new && !self.args.no_minimize {
            let mut r = self.minimize(trace.clone(), &path).await;
            if let (Err(MinimizeError::Passes { .. }), Some((p, t))) = (&r, history) {
                self.progress.println(format!(
                    "  the sequence alone passes on a fresh guest: minimizing {} instead",
                    p.display()
                ));
                r = self.minimize(t, &p).await;
            }
            match &r {
                Ok(m) => self.progress.println(format!(
                    "  {m}\n  reproduce: {} {}",
                    self.replay,
                    m.path.display()
                )),
                Err(e) => self.progress.println(format!("  not minimized: {e}")),
            }
            Some(r)
        } else {
            None
        };
        // The report replays the minimized trace when there is one (a few
        // operations, and the ones the failure needs), else the saved one;
        // after the summary knows of the failure, so an interrupt while it
        // is made loses nothing.
        match minimized.as_ref().and_then(|r| r.as_ref().ok()) {
            Some(m) => self.write_report(&path, &m.path, &m.result.trace).await,
            None => self.write_report(&path, &path, &trace).await,
        }
        let minimized = minimized.map(|r| r.map_err(|e| e.to_string()));
        self.found.lock().expect("not poisoned")[index].minimized = minimized;
        Ok(())
    }
}

impl Shared {
    /// The HTML report beside the saved trace `saved` (`<trace>.html`),
    /// from a replay of `trace` (saved at `path`: the saved trace or its
    /// minimized form) on a fresh guest. A report that cannot be made is a
    /// warning: the trace is saved already and the verdict stands.
    async fn write_report(&self, saved: &Path, path: &Path, trace: &Trace) {
        let judge = self.judge();
        let opts = ReplayOptions {
            memory: judge.memory,
            tlb_check: judge.tlb_check,
            ..ReplayOptions::default()
        };
        let run = crate::replay::run(&self.config, trace, &opts, |_| {}).await;
        let html = report::path_beside(saved);
        let line = match report::write(&html, &run.failure_report(path, &self.replay)) {
            Ok(()) if path == saved => format!("  report: {}", html.display()),
            Ok(()) => format!("  report: {} (of the minimized trace)", html.display()),
            Err(e) => format!("  warning: no report written to {}: {e}", html.display()),
        };
        self.progress.println(line);
    }

    async fn minimize(&self, trace: Trace, path: &Path) -> Result<MinimizeReport, MinimizeError> {
        let opts = MinimizeOptions {
            judge: self.judge(),
            reuse: Reuse::ResetBetween,
            duration: self.args.minimize_duration,
            check_every: None,
            reruns: self.args.reruns,
        };
        let out = self.progress.printer();
        let log = move |s: &trace::minimize::Step| out.println(step_line(s));
        minimize_trace(&self.config, trace, path, &opts, log).await
    }
}
