//! The process's exit codes, the same for every subcommand:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | passed: the VMM did everything asked of it right |
//! | 1 | the VMM failed: a bug found (a divergence, a broken invariant, a panic, a hang, a guest death) |
//! | 2 | usage error: a bad option, a trace that cannot be read |
//! | 3 | environment or tool error: QEMU missing or killed from outside, a full disk, a host socket failing |
//! | 129, 130, 143 | interrupted by SIGHUP, SIGINT or SIGTERM (a campaign writes its summary first) |
//!
//! Errors are classified by their type, never by their text: each error
//! type says its class ([`Classify`], implemented next to the type, or next
//! to the rules that decide it), and the binary's edge asks the first error
//! of a chain whose type it knows ([`crate::error_class::classify`]). This
//! module depends on none of the commands whose errors it classifies.

use std::fmt;

use trace::{Failure, TraceError};

/// What a run ended with, as the process's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitClass {
    /// 0: passed.
    Passed,
    /// 3: the environment or the tool failed; nothing is known about the
    /// VMM.
    Environment,
    /// 1: the VMM failed.
    VmmFailed,
    /// 2: the command line or its input is wrong.
    Usage,
    /// 128 + the signal's number: interrupted (what was found so far is
    /// reported, but the run did not finish).
    Interrupted(crate::interrupt::Signal),
}

impl ExitClass {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::Passed => 0,
            ExitClass::VmmFailed => 1,
            ExitClass::Usage => 2,
            ExitClass::Environment => 3,
            ExitClass::Interrupted(s) => s.exit_code(),
        }
    }

    /// Of two results of one job, the one the job exits with: an
    /// interruption, else a usage error, else a VMM failure (a bug found stays found even if the
    /// environment also failed), else an environment error, else passed.
    pub fn worst(self, other: ExitClass) -> ExitClass {
        self.max(other)
    }

    /// The class of a failure: the environment's, or the VMM's.
    pub fn of_failure(f: &Failure) -> ExitClass {
        if f.is_environment() {
            ExitClass::Environment
        } else {
            ExitClass::VmmFailed
        }
    }
}

impl fmt::Display for ExitClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitClass::Passed => "passed",
            ExitClass::VmmFailed => "the VMM failed",
            ExitClass::Usage => "usage error",
            ExitClass::Environment => "environment or tool error",
            ExitClass::Interrupted(s) => return write!(f, "interrupted by {s}"),
        })
    }
}

/// The exit codes as `--help` and the README give them.
pub const EXIT_CODES_HELP: &str = "\
Exit status (every subcommand, and the CI job):
  0  passed
  1  the VMM failed: a bug found (divergence, invariant, panic, hang, guest death)
  2  usage error: a bad option, a trace file that cannot be read
  3  environment or tool error: QEMU missing, failing to start or killed from
     outside (the OOM killer), a full disk, a host socket failing
  129, 130, 143  interrupted by SIGHUP, SIGINT, SIGTERM (QEMU killed; a fuzz
     campaign first prints its summary and the traces in flight)";

/// A command-line or input mistake (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The VMM failed (exit 1): the message says how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VmmFailed(pub String);

/// An environment fault (exit 3) met outside the runner's own error types.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvironmentError(pub String);

/// An error type's exit class: decided by its type (and variant), never
/// by its text.
pub trait Classify {
    /// The exit class a run ending with this error exits with.
    fn exit_class(&self) -> ExitClass;
}

impl Classify for UsageError {
    fn exit_class(&self) -> ExitClass {
        ExitClass::Usage
    }
}

impl Classify for VmmFailed {
    fn exit_class(&self) -> ExitClass {
        ExitClass::VmmFailed
    }
}

impl Classify for EnvironmentError {
    fn exit_class(&self) -> ExitClass {
        ExitClass::Environment
    }
}

/// A trace that cannot be read is the input's fault (exit 2).
impl Classify for TraceError {
    fn exit_class(&self) -> ExitClass {
        ExitClass::Usage
    }
}

/// An error as the binary prints it: its message, then each cause in its
/// chain that the text so far does not already say. (A `thiserror` message
/// that shows its source, as `"{context}: {source}"`, and the source itself
/// are not repeated, as `{:#}` would: `File exists (os error 17): File
/// exists (os error 17)`.)
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::FuzzError;

    #[test]
    fn codes() {
        assert_eq!(ExitClass::Passed.code(), 0);
        assert_eq!(ExitClass::VmmFailed.code(), 1);
        assert_eq!(ExitClass::Usage.code(), 2);
        assert_eq!(ExitClass::Environment.code(), 3);
        assert_eq!(
            ExitClass::Environment.worst(ExitClass::VmmFailed),
            ExitClass::VmmFailed
        );
        assert_eq!(
            ExitClass::Passed.worst(ExitClass::Environment),
            ExitClass::Environment
        );
    }

    #[test]
    fn an_error_and_its_causes_are_said_once() {
        let io = || std::io::Error::from_raw_os_error(rustix::io::Errno::EXIST.raw_os_error());
        let e = anyhow::Error::new(FuzzError::Io {
            path: "failures".into(),
            source: io(),
        });
        assert_eq!(
            format!("{e:#}"),
            "writing failures: File exists (os error 17): File exists (os error 17)",
            "what the binary printed before"
        );
        assert_eq!(
            error_text(&e),
            "writing failures: File exists (os error 17)"
        );
        // A context that does not repeat its cause keeps it.
        let e = anyhow::Error::new(io()).context("smoke");
        assert_eq!(error_text(&e), "smoke: File exists (os error 17)");
        let trace = crate::Error::Trace {
            path: "t.jsonl".into(),
            source: trace::TraceError::Io(std::io::Error::from_raw_os_error(
                rustix::io::Errno::ISDIR.raw_os_error(),
            )),
        };
        assert_eq!(
            error_text(&anyhow::Error::new(trace)),
            "trace t.jsonl: reading the trace: Is a directory (os error 21)"
        );
    }
}
