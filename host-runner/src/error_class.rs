//! The exit class of the error a command ends with, at the binary's edge:
//! the first error in its chain whose type is one of the runner's (each
//! says its own class, [`Classify`]); anything unknown is a tool error
//! (exit 3). This is the one place that names every error type, so it sits
//! above the commands and nothing but the binary uses it.

use std::error::Error as StdError;

use trace::TraceError;

use crate::coverage::cli::CommandError;
use crate::exit_code::{Classify, EnvironmentError, ExitClass, UsageError, VmmFailed};
use crate::fuzz::FuzzError;
use crate::merge::MergeError;
use crate::minimize::MinimizeError;
use crate::profile::ProfileError;
use crate::qemu::LaunchError;
use crate::qmp::QmpError;
use crate::rpc::RpcError;

/// The class of an error at the binary's edge: the first error in its
/// chain whose type says (anything unknown is a tool error, 3).
pub fn classify(err: &anyhow::Error) -> ExitClass {
    err.chain()
        .find_map(class_of)
        .unwrap_or(ExitClass::Environment)
}

/// The class of `e` when its type is one of the runner's.
fn class_of(e: &(dyn StdError + 'static)) -> Option<ExitClass> {
    fn of<T: Classify + StdError + 'static>(e: &(dyn StdError + 'static)) -> Option<ExitClass> {
        e.downcast_ref::<T>().map(Classify::exit_class)
    }
    of::<UsageError>(e)
        .or_else(|| of::<TraceError>(e))
        .or_else(|| of::<VmmFailed>(e))
        .or_else(|| of::<EnvironmentError>(e))
        .or_else(|| of::<crate::Error>(e))
        .or_else(|| of::<LaunchError>(e))
        .or_else(|| of::<RpcError>(e))
        .or_else(|| of::<QmpError>(e))
        .or_else(|| of::<FuzzError>(e))
        .or_else(|| of::<MinimizeError>(e))
        .or_else(|| of::<MergeError>(e))
        .or_else(|| of::<CommandError>(e))
        .or_else(|| of::<ProfileError>(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::QemuExit;

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
        let ram = crate::Error::from(crate::ram::RamError::Map(
            std::io::Error::from_raw_os_error(rustix::io::Errno::NOMEM.raw_os_error()),
        ));
        assert_eq!(
            ram.to_string(),
            "mapping guest RAM: Cannot allocate memory (os error 12)",
            "the text it had as an I/O error"
        );
        assert_eq!(classify(&anyhow::Error::new(ram)), ExitClass::Environment);
        let memory = anyhow::Error::new(crate::Error::MemoryCheck("no direct map".into()));
        assert_eq!(classify(&memory), ExitClass::Environment);
    }

    #[test]
    fn the_command_errors_keep_their_classes() {
        use trace::{Failure, FailureKind};
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let hang = || Failure::new(FailureKind::Hang, "no answer", None);
        let env = || Failure::new(FailureKind::Environment, "QEMU killed", None);
        let not_json = || serde_json::from_str::<u8>("x").unwrap_err();
        let cases: Vec<(anyhow::Error, ExitClass)> = vec![
            (VmmFailed("diverged".into()).into(), ExitClass::VmmFailed),
            (
                EnvironmentError("no gdb".into()).into(),
                ExitClass::Environment,
            ),
            (TraceError::Io(io()).into(), ExitClass::Usage),
            (FuzzError::Boot(hang()).into(), ExitClass::VmmFailed),
            (FuzzError::Boot(env()).into(), ExitClass::Environment),
            (
                FuzzError::Runner {
                    k: 3,
                    failure: env(),
                }
                .into(),
                ExitClass::Environment,
            ),
            (
                FuzzError::Thread {
                    index: 1,
                    source: std::io::Error::from(std::io::ErrorKind::WouldBlock),
                }
                .into(),
                ExitClass::Environment,
            ),
            (
                MinimizeError::Read {
                    path: "t.jsonl".into(),
                    source: TraceError::Io(io()),
                }
                .into(),
                ExitClass::Usage,
            ),
            (
                MinimizeError::Passes {
                    path: "t.jsonl".into(),
                    recorded: Some(hang()),
                }
                .into(),
                ExitClass::Passed,
            ),
            (
                MinimizeError::Runner {
                    path: "t.jsonl".into(),
                    failure: env(),
                }
                .into(),
                ExitClass::Environment,
            ),
            (
                MinimizeError::Write {
                    path: "t.min.jsonl".into(),
                    source: io(),
                }
                .into(),
                ExitClass::Environment,
            ),
            (
                MergeError::Missing {
                    dir: "a".into(),
                    what: "summary.json".into(),
                }
                .into(),
                ExitClass::Usage,
            ),
            (
                MergeError::Malformed {
                    path: "a/summary.json".into(),
                    source: not_json(),
                }
                .into(),
                ExitClass::Usage,
            ),
            (MergeError::OutIsShard("a".into()).into(), ExitClass::Usage),
            (
                MergeError::Write {
                    path: "out/summary.json".into(),
                    source: io(),
                }
                .into(),
                ExitClass::Environment,
            ),
            (
                CommandError::Coverage(crate::coverage::CoverageError::Format {
                    path: "c.json".into(),
                    source: not_json(),
                })
                .into(),
                ExitClass::Usage,
            ),
            (
                CommandError::Fuzz(FuzzError::Boot(hang())).into(),
                ExitClass::VmmFailed,
            ),
            (
                CommandError::Fuzz(FuzzError::Io {
                    path: "failures".into(),
                    source: io(),
                })
                .into(),
                ExitClass::Environment,
            ),
            (
                CommandError::Runner(crate::Error::Config("too much RAM".into())).into(),
                ExitClass::Usage,
            ),
            (
                CommandError::Runner(crate::Error::from(RpcError::Timeout {
                    request: "Stats".into(),
                    timeout: std::time::Duration::from_secs(1),
                }))
                .into(),
                ExitClass::VmmFailed,
            ),
        ];
        for (e, class) in cases {
            let text = e.to_string();
            assert_eq!(classify(&e.context("running")), class, "{text}");
        }
    }
}
