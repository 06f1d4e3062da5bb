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
//! Errors are classified by their type ([`classify`]), never by their text.

use std::fmt;

use trace::{Failure, TraceError};

use crate::coverage::cli::CommandError;
use crate::fuzz::FuzzError;
use crate::judge::{is_environment_error, is_environment_launch, is_environment_rpc};
use crate::minimize::MinimizeError;
use crate::qemu::LaunchError;
use crate::qmp::QmpError;
use crate::rpc::RpcError;

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

/// The class of an error at the binary's edge: the first error in its
/// chain whose type says (anything unknown is a tool error, 3).
pub fn classify(err: &anyhow::Error) -> ExitClass {
    err.chain()
        .find_map(class_of)
        .unwrap_or(ExitClass::Environment)
}

fn class_of(e: &(dyn std::error::Error + 'static)) -> Option<ExitClass> {
    if e.is::<UsageError>() || e.is::<TraceError>() {
        return Some(ExitClass::Usage);
    }
    if e.is::<VmmFailed>() {
        return Some(ExitClass::VmmFailed);
    }
    if e.is::<EnvironmentError>() {
        return Some(ExitClass::Environment);
    }
    if let Some(e) = e.downcast_ref::<crate::Error>() {
        return Some(of_runner_error(e));
    }
    if let Some(e) = e.downcast_ref::<LaunchError>() {
        return Some(of_launch_error(e));
    }
    if let Some(e) = e.downcast_ref::<RpcError>() {
        return Some(of_rpc_error(e));
    }
    if e.is::<QmpError>() {
        return Some(ExitClass::Environment);
    }
    if let Some(e) = e.downcast_ref::<FuzzError>() {
        return Some(of_fuzz_error(e));
    }
    if let Some(e) = e.downcast_ref::<MinimizeError>() {
        return Some(match e {
            MinimizeError::Read { .. } => ExitClass::Usage,
            MinimizeError::Passes { .. } => ExitClass::Passed,
            MinimizeError::Runner { .. } | MinimizeError::Write { .. } => ExitClass::Environment,
        });
    }
    if let Some(e) = e.downcast_ref::<crate::merge::MergeError>() {
        return Some(if e.is_input() {
            ExitClass::Usage
        } else {
            ExitClass::Environment
        });
    }
    if let Some(e) = e.downcast_ref::<CommandError>() {
        return Some(match e {
            CommandError::Coverage(_) => ExitClass::Usage,
            CommandError::Fuzz(e) => of_fuzz_error(e),
            CommandError::Runner(e) => of_runner_error(e),
        });
    }
    None
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

/// The class of a runner error: the guest's doing is the VMM failing.
pub fn of_runner_error(e: &crate::Error) -> ExitClass {
    match e {
        crate::Error::Trace { .. } | crate::Error::Config(_) => ExitClass::Usage,
        e if is_environment_error(e) => ExitClass::Environment,
        _ => ExitClass::VmmFailed,
    }
}

/// The class of a launch error: the guest's doing (a hang before `Ready`,
/// QEMU ended by the guest) is the VMM failing.
pub fn of_launch_error(e: &LaunchError) -> ExitClass {
    if is_environment_launch(e) {
        ExitClass::Environment
    } else {
        ExitClass::VmmFailed
    }
}

/// The class of a guest's error: the guest's doing is the VMM failing.
pub fn of_rpc_error(e: &RpcError) -> ExitClass {
    if is_environment_rpc(e) {
        ExitClass::Environment
    } else {
        ExitClass::VmmFailed
    }
}

/// The class of a campaign's error.
pub fn of_fuzz_error(e: &FuzzError) -> ExitClass {
    match e {
        FuzzError::Io { .. } | FuzzError::Runner { .. } => ExitClass::Environment,
        FuzzError::Boot(f) => ExitClass::of_failure(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::QemuExit;

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

    #[test]
    fn errors_classify_by_type_through_context() {
        let missing = anyhow::Error::new(crate::Error::from(LaunchError::QemuNotFound {
            searched: "no qemu".into(),
        }))
        .context("starting");
        assert_eq!(classify(&missing), ExitClass::Environment);
        let killed = anyhow::Error::new(crate::Error::from(RpcError::GuestDied {
            exit: QemuExit::Signal(rustix::process::Signal::KILL.as_raw()),
            stderr: String::new(),
        }));
        assert_eq!(classify(&killed), ExitClass::Environment);
        let triple = anyhow::Error::new(crate::Error::from(RpcError::GuestDied {
            exit: QemuExit::TripleFault,
            stderr: String::new(),
        }));
        assert_eq!(classify(&triple), ExitClass::VmmFailed);
        let full = anyhow::Error::new(FuzzError::Io {
            path: "failures/x.jsonl".into(),
            source: std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()),
        });
        assert_eq!(classify(&full), ExitClass::Environment);
        let usage = anyhow::Error::new(UsageError("bad".into()));
        assert_eq!(classify(&usage), ExitClass::Usage);
        assert_eq!(
            classify(&anyhow::anyhow!("who knows")),
            ExitClass::Environment
        );
    }

    #[test]
    fn a_module_error_classifies_alone_as_in_the_runner_error() {
        use std::time::Duration;
        let hang = || LaunchError::ReadyTimeout {
            timeout: Duration::from_secs(1),
        };
        let killed = || LaunchError::ExitedBeforeReady {
            exit: QemuExit::Signal(rustix::process::Signal::KILL.as_raw()),
            stderr: String::new(),
        };
        let failed = || LaunchError::ExitedBeforeReady {
            exit: QemuExit::Failed(1),
            stderr: String::new(),
        };
        let triple = || LaunchError::ExitedBeforeReady {
            exit: QemuExit::TripleFault,
            stderr: String::new(),
        };
        let temp = || LaunchError::TempDir(std::io::Error::from(std::io::ErrorKind::NotFound));
        for (launch, class) in [
            (hang(), ExitClass::VmmFailed),
            (killed(), ExitClass::Environment),
            (failed(), ExitClass::Environment),
            (triple(), ExitClass::VmmFailed),
            (temp(), ExitClass::Environment),
        ] {
            let text = launch.to_string();
            let alone = anyhow::Error::new(launch).context("booting");
            assert_eq!(classify(&alone), class, "{text}");
        }
        for (launch, class) in [
            (hang(), ExitClass::VmmFailed),
            (killed(), ExitClass::Environment),
            (triple(), ExitClass::VmmFailed),
            (temp(), ExitClass::Environment),
        ] {
            let text = launch.to_string();
            let wrapped = anyhow::Error::new(crate::Error::from(launch));
            assert_eq!(classify(&wrapped), class, "{text}");
            assert_eq!(wrapped.to_string(), text, "the sum says its part's message");
        }
        let qmp = || QmpError {
            command: "stop",
            message: "gone".into(),
        };
        assert_eq!(classify(&anyhow::Error::new(qmp())), ExitClass::Environment);
        assert_eq!(
            classify(&anyhow::Error::new(crate::Error::from(qmp()))),
            ExitClass::Environment
        );
        let rpc = || {
            [
                (
                    RpcError::Timeout {
                        request: "Stats".into(),
                        timeout: Duration::from_secs(1),
                    },
                    ExitClass::VmmFailed,
                ),
                (
                    RpcError::GuestDied {
                        exit: QemuExit::Signal(rustix::process::Signal::TERM.as_raw()),
                        stderr: String::new(),
                    },
                    ExitClass::Environment,
                ),
                (
                    RpcError::UnexpectedExit {
                        exit: QemuExit::TripleFault,
                        expected: "status 33",
                        stderr: String::new(),
                    },
                    ExitClass::VmmFailed,
                ),
                (
                    RpcError::VersionMismatch { guest: 1, host: 2 },
                    ExitClass::Environment,
                ),
            ]
        };
        for (e, class) in rpc() {
            let text = e.to_string();
            assert_eq!(classify(&anyhow::Error::new(e)), class, "{text}");
        }
        for (e, class) in rpc() {
            let text = e.to_string();
            let wrapped = anyhow::Error::new(crate::Error::from(e));
            assert_eq!(classify(&wrapped), class, "{text}");
        }
        let config = anyhow::Error::new(crate::Error::Config("too much RAM".into()));
        assert_eq!(classify(&config), ExitClass::Usage);
        let trace = anyhow::Error::new(crate::Error::Trace {
            path: "t.jsonl".into(),
            source: trace::TraceError::Io(std::io::Error::from(std::io::ErrorKind::NotFound)),
        });
        assert_eq!(classify(&trace), ExitClass::Usage);
        let io = anyhow::Error::new(crate::Error::io(
            "accepting QEMU's serial connection",
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        ));
        assert_eq!(classify(&io), ExitClass::Environment);
        let memory = anyhow::Error::new(crate::Error::MemoryCheck("no direct map".into()));
        assert_eq!(classify(&memory), ExitClass::Environment);
    }
}
