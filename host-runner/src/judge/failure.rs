//! The runner's errors as trace failures: what the guest did wrong (panic,
//! death, hang, a bad answer), or a host-side error that says nothing about
//! the guest (marked so that a fuzzer does not save it as a bug).

use trace::{Failure, FailureKind};

use crate::error::Error;
use crate::qemu::QemuExit;

/// The start of the message of every failure that is the host's, not the
/// guest's (QEMU missing, QMP or socket trouble): see [`is_runner_failure`].
pub const RUNNER_PREFIX: &str = "runner error (host side, not a guest bug): ";

/// The trace failure of a runner error:
///
/// | error | kind |
/// | --- | --- |
/// | `GuestPanic` (message, file:line:col, QEMU status 65) | `GuestPanic` |
/// | `GuestException`, `GuestDied` (a triple fault: with `-no-reboot` QEMU exits 0 without a quit), `UnexpectedExit`, `ExitedBeforeReady` | `GuestDied` |
/// | `Timeout`, `ReadyTimeout` | `Hang` |
/// | `UnexpectedResponse`, `GuestFrame`, `Ring` (the guest broke the protocol) | `Divergence` |
/// | anything else (QEMU not found, QMP, I/O, …) | `GuestDied`, message starting with [`RUNNER_PREFIX`] |
///
/// The operation index is left unset: the caller knows it.
pub fn failure_from(err: Error) -> Failure {
    let kind = match &err {
        Error::GuestPanic { .. } => FailureKind::GuestPanic,
        Error::GuestException { .. }
        | Error::GuestDied { .. }
        | Error::UnexpectedExit { .. }
        | Error::ExitedBeforeReady { .. } => FailureKind::GuestDied,
        Error::Timeout { .. } | Error::ReadyTimeout { .. } => FailureKind::Hang,
        Error::UnexpectedResponse { .. } | Error::GuestFrame(_) | Error::Ring(_) => {
            FailureKind::Divergence
        }
        _ => {
            return Failure::new(
                FailureKind::GuestDied,
                format!("{RUNNER_PREFIX}{err}"),
                None,
            )
        }
    };
    let message = match &err {
        Error::GuestDied {
            exit: QemuExit::TripleFault,
            ..
        } => format!("triple fault: {err}"),
        _ => err.to_string(),
    };
    Failure::new(kind, message, None)
}

/// Whether a failure is a host-side error rather than something the guest
/// did (see [`failure_from`]).
pub fn is_runner_failure(failure: &Failure) -> bool {
    failure.message.starts_with(RUNNER_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn kinds() {
        let hang = failure_from(Error::Timeout {
            request: "Stats".into(),
            timeout: Duration::from_secs(1),
        });
        assert_eq!(hang.kind, FailureKind::Hang);
        assert!(hang.message.contains("Stats"), "{}", hang.message);
        let died = failure_from(Error::GuestDied {
            exit: QemuExit::TripleFault,
            stderr: String::new(),
        });
        assert_eq!(died.kind, FailureKind::GuestDied);
        assert!(died.message.starts_with("triple fault"), "{}", died.message);
        assert!(!is_runner_failure(&died));
        let panic = failure_from(Error::GuestPanic {
            report: protocol::PanicReport {
                message: "oops".into(),
                file: "src/paging.rs".into(),
                line: 88,
                column: 9,
            },
            exit: QemuExit::Panic,
        });
        assert_eq!(panic.kind, FailureKind::GuestPanic);
        assert!(
            panic.message.contains("src/paging.rs:88:9: oops"),
            "{}",
            panic.message
        );
        let host = failure_from(Error::Qmp {
            command: "stop",
            message: "gone".into(),
        });
        assert!(is_runner_failure(&host), "{}", host.message);
    }
}
