//! Whether a saved failure reproduced: the one verdict line `replay` ends
//! with for a trace saved for a failure, and the reproduction rate the
//! fuzzer records in a reproducer's header after running it again.

use std::fmt;

use crate::executor::{Executor, Outcome};
use crate::failure::{Failure, FailureKind};
pub use crate::format::Rate;
use crate::format::Trace;

/// What a run of a trace saved for `saved` showed, against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reproduction {
    /// The same signature.
    Reproduced { saved: Failure, got: Failure },
    /// A memory check caught a broken invariant at or before the saved
    /// failure's operation: the same fault seen earlier, by a check that
    /// did not run there when the trace was saved (another cadence).
    ReproducedEarlier { saved: Failure, got: Failure },
    /// Another failure of the VMM.
    Different { saved: Failure, got: Failure },
    /// The saved failure did not occur: the run passed.
    Passed { saved: Failure },
    /// The machine or the tool failed: nothing is known.
    Environment { saved: Failure, got: Failure },
}

impl Reproduction {
    /// Judges `outcome` against the failure the trace was saved for.
    pub fn judge(saved: &Failure, outcome: &Outcome) -> Reproduction {
        let saved = saved.clone();
        let got = match outcome {
            Outcome::Passed => return Reproduction::Passed { saved },
            Outcome::Failed(f) => f.clone(),
        };
        if got.is_environment() {
            Reproduction::Environment { saved, got }
        } else if got.signature() == saved.signature() {
            Reproduction::Reproduced { saved, got }
        } else if got.kind == FailureKind::Invariant
            && saved.kind != FailureKind::Invariant
            && matches!((got.op_index, saved.op_index), (Some(g), Some(s)) if g <= s)
        {
            Reproduction::ReproducedEarlier { saved, got }
        } else {
            Reproduction::Different { saved, got }
        }
    }

    /// Whether the VMM failed in any way (the replay exits 1).
    pub fn vmm_failed(&self) -> bool {
        !matches!(
            self,
            Reproduction::Passed { .. } | Reproduction::Environment { .. }
        )
    }

    /// Whether the saved failure showed (at its place or earlier).
    pub fn reproduced(&self) -> bool {
        matches!(
            self,
            Reproduction::Reproduced { .. } | Reproduction::ReproducedEarlier { .. }
        )
    }
}

/// A failure on one line: its kind, operation and signature class (the
/// message, for people, is printed above the verdict).
fn one_line(f: &Failure) -> String {
    let class = f.signature().class;
    let class = class.lines().next().unwrap_or_default();
    match f.op_index {
        Some(i) => format!("{} at op {i} ({class})", f.kind),
        None => format!("{} ({class})", f.kind),
    }
}

impl fmt::Display for Reproduction {
    /// The verdict line: one line, whatever the messages hold.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reproduction::Reproduced { got, .. } => write!(f, "reproduced: {}", one_line(got)),
            Reproduction::ReproducedEarlier { saved, got } => write!(
                f,
                "reproduced earlier: {} — caught by a memory check before the saved failure, {}, \
                 showed",
                one_line(got),
                one_line(saved)
            ),
            Reproduction::Different { saved, got } => write!(
                f,
                "different failure: {} — saved for: {}",
                one_line(got),
                one_line(saved)
            ),
            Reproduction::Passed { saved } => write!(
                f,
                "passed: the saved failure did not occur ({})",
                one_line(saved)
            ),
            Reproduction::Environment { saved, got } => write!(
                f,
                "environment error: could not tell whether it reproduces ({}); saved for: {}",
                one_line(got),
                one_line(saved)
            ),
        }
    }
}

/// Runs `trace` `runs` times (each from a fresh state) and counts the runs
/// whose failure has `saved`'s signature. A run that met an environment
/// fault is run once more in its place (twice in a row: it counts as not
/// reproduced).
pub async fn rerun(trace: &Trace, saved: &Failure, exec: &mut impl Executor, runs: u32) -> Rate {
    let target = saved.signature();
    let mut reproduced = 0;
    for _ in 0..runs {
        let mut outcome = exec.run(trace).await;
        if outcome.failure().is_some_and(Failure::is_environment) {
            outcome = exec.run(trace).await;
        }
        if outcome.failure().is_some_and(|f| f.signature() == target) {
            reproduced += 1;
        }
    }
    Rate { reproduced, runs }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: FailureKind, message: &str, op: usize) -> Failure {
        Failure::new(kind, message, Some(op))
    }

    #[test]
    fn verdicts() {
        let saved = f(
            FailureKind::Divergence,
            "op 3: stats: expected 5 free, got 4",
            3,
        );
        let same = Outcome::Failed(f(
            FailureKind::Divergence,
            "op 3: stats: expected 9 free, got 8",
            3,
        ));
        let r = Reproduction::judge(&saved, &same);
        assert!(matches!(r, Reproduction::Reproduced { .. }), "{r}");
        assert!(r.to_string().starts_with("reproduced: divergence at op 3"));
        let multi = Outcome::Failed(f(
            FailureKind::Divergence,
            "op 3: stats: expected 1 free, got 0\nmore",
            3,
        ));
        assert_eq!(
            Reproduction::judge(&saved, &multi)
                .to_string()
                .lines()
                .count(),
            1
        );
        let early = Outcome::Failed(f(FailureKind::Invariant, "invariant 3: frame leaked", 2));
        let r = Reproduction::judge(&saved, &early);
        assert!(matches!(r, Reproduction::ReproducedEarlier { .. }), "{r}");
        assert!(
            r.to_string().contains("invariant at op 2")
                && r.to_string().contains("divergence at op 3")
        );
        let late = Outcome::Failed(f(FailureKind::Invariant, "invariant 3: frame leaked", 7));
        assert!(matches!(
            Reproduction::judge(&saved, &late),
            Reproduction::Different { .. }
        ));
        let panic = Outcome::Failed(f(FailureKind::GuestPanic, "panicked at x.rs:1:1", 1));
        let r = Reproduction::judge(&saved, &panic);
        assert!(
            r.to_string()
                .starts_with("different failure: guest_panic at op 1"),
            "{r}"
        );
        assert!(r.vmm_failed());
        let r = Reproduction::judge(&saved, &Outcome::Passed);
        assert!(!r.vmm_failed() && !r.reproduced());
        assert!(r
            .to_string()
            .starts_with("passed: the saved failure did not occur"));
        let env = Outcome::Failed(Failure::new(FailureKind::Environment, "QEMU killed", None));
        assert!(!Reproduction::judge(&saved, &env).vmm_failed());
    }

    #[test]
    fn rates_read_and_write() {
        let r: Rate = "2/3".parse().unwrap();
        assert_eq!(
            r,
            Rate {
                reproduced: 2,
                runs: 3
            }
        );
        assert!(r.is_flaky());
        assert_eq!(r.to_string(), "2/3");
        assert!(!"3/3".parse::<Rate>().unwrap().is_flaky());
        assert!("4/3".parse::<Rate>().is_err());
        assert!("3".parse::<Rate>().is_err());
        assert!("0/0".parse::<Rate>().is_err());
    }
}
