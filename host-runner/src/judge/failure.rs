//! The runner's errors as trace failures: what the guest did wrong (panic,
//! death, hang, a bad answer), or an environment fault that says nothing
//! about the guest ([`FailureKind::Environment`]: QEMU killed from outside,
//! QEMU failing to start, host sockets or files failing), which a runner
//! retries or reports and never saves as a bug.

use trace::{Failure, FailureKind};

use crate::error::Error;
use crate::exit_code::{Classify, ExitClass};
use crate::qemu::{LaunchError, QemuExit};
use crate::rpc::RpcError;

/// The signals that only come from outside QEMU: nothing a guest does makes
/// QEMU receive them (the OOM killer's and `kill`'s SIGKILL, a terminal's
/// or a CI timeout's SIGTERM/SIGINT/SIGHUP/SIGQUIT, a CPU-time limit's
/// SIGXCPU). A QEMU that dies of SIGSEGV, SIGABRT, SIGBUS… crashed, which
/// the guest may have caused: that stays `guest_died`.
pub fn external_signal(signal: i32) -> bool {
    use rustix::process::Signal;
    [
        Signal::KILL,
        Signal::TERM,
        Signal::INT,
        Signal::HUP,
        Signal::QUIT,
        Signal::XCPU,
    ]
    .iter()
    .any(|s| s.as_raw() == signal)
}

/// The signal's name (`SIGKILL`), or its number.
pub fn signal_name(signal: i32) -> String {
    use rustix::process::Signal;
    const NAMED: [(Signal, &str); 9] = [
        (Signal::KILL, "SIGKILL"),
        (Signal::TERM, "SIGTERM"),
        (Signal::INT, "SIGINT"),
        (Signal::HUP, "SIGHUP"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::XCPU, "SIGXCPU"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::BUS, "SIGBUS"),
    ];
    match NAMED.iter().find(|(s, _)| s.as_raw() == signal) {
        Some((_, name)) => format!("{name} ({signal})"),
        None => format!("signal {signal}"),
    }
}

/// Whether the error is the environment's, not the guest's: every variant
/// is decided here, by its type (and for a dead QEMU, by the signal).
pub fn is_environment_error(err: &Error) -> bool {
    match err {
        Error::Launch(e) => is_environment_launch(e),
        Error::Rpc(e) => is_environment_rpc(e),
        Error::Qmp(_)
        | Error::MemoryCheck(_)
        | Error::Trace { .. }
        | Error::Config(_)
        | Error::Io { .. }
        | Error::Ram(_) => true,
    }
}

/// Whether a launch error is the environment's: all are but a guest that
/// hangs before `Ready` or ends QEMU itself.
pub fn is_environment_launch(err: &LaunchError) -> bool {
    match err {
        LaunchError::ReadyTimeout { .. } => false,
        LaunchError::ExitedBeforeReady { exit, .. } => is_environment_exit(*exit),
        LaunchError::QemuNotFound { .. }
        | LaunchError::QemuSpawn { .. }
        | LaunchError::KernelMissing { .. }
        | LaunchError::TempDir(_)
        | LaunchError::SerialConnectTimeout { .. }
        | LaunchError::AccelUnavailable { .. } => true,
    }
}

/// Whether a guest's error is the environment's: only QEMU killed from
/// outside or failing by itself, a version mismatch and an unencodable
/// request are.
pub fn is_environment_rpc(err: &RpcError) -> bool {
    match err {
        RpcError::GuestPanic { .. }
        | RpcError::GuestException { .. }
        | RpcError::Timeout { .. }
        | RpcError::UnexpectedResponse { .. }
        | RpcError::GuestFrame(_)
        | RpcError::Ring(_) => false,
        RpcError::GuestDied { exit, .. } | RpcError::UnexpectedExit { exit, .. } => {
            is_environment_exit(*exit)
        }
        RpcError::VersionMismatch { .. } | RpcError::Encode(_) => true,
    }
}

/// The class of a runner error: the input's fault (a trace that cannot be
/// read, a guest that cannot boot) is a usage error; else the guest's doing
/// is the VMM failing.
impl Classify for Error {
    fn exit_class(&self) -> ExitClass {
        match self {
            Error::Trace { .. } | Error::Config(_) => ExitClass::Usage,
            e if is_environment_error(e) => ExitClass::Environment,
            _ => ExitClass::VmmFailed,
        }
    }
}

/// The class of a launch error: the guest's doing (a hang before `Ready`,
/// QEMU ended by the guest) is the VMM failing.
impl Classify for LaunchError {
    fn exit_class(&self) -> ExitClass {
        environment_or_vmm(is_environment_launch(self))
    }
}

/// The class of a guest's error: the guest's doing is the VMM failing.
impl Classify for RpcError {
    fn exit_class(&self) -> ExitClass {
        environment_or_vmm(is_environment_rpc(self))
    }
}

/// An error that is not the environment's is the VMM failing.
fn environment_or_vmm(environment: bool) -> ExitClass {
    if environment {
        ExitClass::Environment
    } else {
        ExitClass::VmmFailed
    }
}

/// Whether QEMU's end is the environment's doing: killed from outside, or
/// failing by its own exit status.
fn is_environment_exit(exit: QemuExit) -> bool {
    matches!(exit, QemuExit::Signal(s) if external_signal(s)) || matches!(exit, QemuExit::Failed(_))
}

/// The trace failure of a runner error:
///
/// | error | kind |
/// | --- | --- |
/// | `GuestPanic` (message, file:line:col, QEMU status 65) | `GuestPanic` |
/// | `GuestException`, `GuestDied` (a triple fault: with `-no-reboot` QEMU exits 0 without a quit), `UnexpectedExit`, `ExitedBeforeReady`, QEMU crashed (SIGSEGV, SIGABRT…) | `GuestDied` |
/// | `Timeout`, `ReadyTimeout` | `Hang` |
/// | `UnexpectedResponse`, `GuestFrame`, `Ring` (the guest broke the protocol) | `Divergence` |
/// | QEMU killed by a signal from outside ([`external_signal`]), QEMU failing (its own exit status: a bad option, a missing file), QEMU not found or not starting, QMP, I/O, … | `Environment` |
///
/// The operation index is left unset: the caller knows it.
pub fn failure_from(err: impl Into<Error>) -> Failure {
    let err = err.into();
    let class = super::classes::of_error(&err);
    if is_environment_error(&err) {
        return Failure::new(FailureKind::Environment, environment_message(&err), None)
            .with_class(class);
    }
    let kind = match &err {
        Error::Rpc(RpcError::GuestPanic { .. }) => FailureKind::GuestPanic,
        Error::Rpc(RpcError::Timeout { .. }) | Error::Launch(LaunchError::ReadyTimeout { .. }) => {
            FailureKind::Hang
        }
        Error::Rpc(
            RpcError::UnexpectedResponse { .. } | RpcError::GuestFrame(_) | RpcError::Ring(_),
        ) => FailureKind::Divergence,
        _ => FailureKind::GuestDied,
    };
    let message = match &err {
        Error::Rpc(RpcError::GuestDied {
            exit: QemuExit::TripleFault,
            ..
        }) => format!("triple fault: {err}"),
        _ => err.to_string(),
    };
    Failure::new(kind, message, None).with_class(class)
}

/// What an environment fault's failure says: what happened, and that the
/// guest is not to blame.
fn environment_message(err: &Error) -> String {
    let exit = match err {
        Error::Rpc(RpcError::GuestDied { exit, .. } | RpcError::UnexpectedExit { exit, .. }) => {
            Some(*exit)
        }
        Error::Launch(e) => e.exit(),
        _ => None,
    };
    match exit {
        Some(QemuExit::Signal(s)) => format!(
            "QEMU was killed by {} from outside the runner (the OOM killer, a user, a time \
             limit?): nothing the guest did; {err}",
            signal_name(s)
        ),
        _ => format!("environment (host side, not a guest bug): {err}"),
    }
}

/// Whether a failure is the environment's rather than something the guest
/// did (see [`failure_from`]).
pub fn is_runner_failure(failure: &Failure) -> bool {
    failure.is_environment()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kinds() {
        let hang = failure_from(Error::Rpc(RpcError::Timeout {
            request: "Stats".into(),
            timeout: Duration::from_secs(1),
        }));
        assert_eq!(hang.kind, FailureKind::Hang);
        assert!(hang.message.contains("Stats"), "{}", hang.message);
        let died = failure_from(Error::Rpc(RpcError::GuestDied {
            exit: QemuExit::TripleFault,
            stderr: String::new(),
        }));
        assert_eq!(died.kind, FailureKind::GuestDied);
        assert!(died.message.starts_with("triple fault"), "{}", died.message);
        assert_eq!(died.signature().class, "triple fault");
        assert!(!is_runner_failure(&died));
        let panic = failure_from(Error::Rpc(RpcError::GuestPanic {
            report: protocol::PanicReport {
                message: "oops".into(),
                file: "src/paging.rs".into(),
                line: 88,
                column: 9,
            },
            exit: QemuExit::Panic,
        }));
        assert_eq!(panic.kind, FailureKind::GuestPanic);
        assert!(
            panic.message.contains("src/paging.rs:88:9: oops"),
            "{}",
            panic.message
        );
        // The signature comes from the class: rewording the message
        // changes nothing.
        let mut reworded = panic.clone();
        reworded.message = "something else entirely 42".into();
        assert_eq!(reworded.signature(), panic.signature());
        assert_eq!(panic.signature().class, "panic at src/paging.rs:88:9");
        let host = failure_from(Error::Qmp(crate::qmp::QmpError {
            command: "stop",
            message: "gone".into(),
        }));
        assert!(is_runner_failure(&host), "{}", host.message);
        assert_eq!(host.kind, FailureKind::Environment);
    }

    #[test]
    fn a_qemu_killed_from_outside_is_the_environment() {
        let killed = failure_from(Error::Rpc(RpcError::GuestDied {
            exit: QemuExit::Signal(rustix::process::Signal::KILL.as_raw()),
            stderr: String::new(),
        }));
        assert_eq!(killed.kind, FailureKind::Environment);
        assert!(killed.message.contains("SIGKILL (9)"), "{}", killed.message);
        let at_boot = failure_from(Error::Launch(LaunchError::ExitedBeforeReady {
            exit: QemuExit::Signal(rustix::process::Signal::TERM.as_raw()),
            stderr: String::new(),
        }));
        assert!(is_runner_failure(&at_boot), "{}", at_boot.message);
        // A crash may be the guest's doing (a QEMU bug it triggered).
        let crashed = failure_from(Error::Rpc(RpcError::GuestDied {
            exit: QemuExit::Signal(rustix::process::Signal::SEGV.as_raw()),
            stderr: String::new(),
        }));
        assert_eq!(crashed.kind, FailureKind::GuestDied);
        let spawn = failure_from(Error::Launch(LaunchError::QemuSpawn {
            binary: "/nonexistent/qemu".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }));
        assert_eq!(spawn.kind, FailureKind::Environment);
    }
}
