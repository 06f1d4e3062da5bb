//! What QEMU's exit status says.

use std::fmt;
use std::process::ExitStatus;

/// How QEMU ended, read from its exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QemuExit {
    /// Status 33: the guest wrote `EXIT_SUCCESS` to `isa-debug-exit` after
    /// `Shutdown`. The only success the guest can report.
    Shutdown,
    /// Status 65: the guest panicked.
    Panic,
    /// Status 67: the guest took an unexpected exception.
    Exception,
    /// Status 0 after the host sent QMP `quit`.
    Quit,
    /// Status 0 without a `quit`: with `-no-reboot`, a triple fault.
    TripleFault,
    /// Any other status: QEMU itself failed (bad option, missing file, …).
    Failed(i32),
    /// Killed by a signal (the runner's own kill is `SIGKILL`, 9).
    Signal(i32),
    /// QEMU had not ended when we stopped waiting.
    Running,
}

impl QemuExit {
    /// Reads an exit status; `quit_sent` says whether the host sent QMP
    /// `quit` (the only way status 0 is a success).
    pub fn from_status(status: ExitStatus, quit_sent: bool) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::from_code(code, quit_sent),
            (None, Some(sig)) => QemuExit::Signal(sig),
            (None, None) => QemuExit::Failed(-1),
        }
    }

    /// Reads an exit code.
    pub fn from_code(code: i32, quit_sent: bool) -> Self {
        match code {
            c if c == protocol::qemu_exit_status(protocol::EXIT_SUCCESS) => QemuExit::Shutdown,
            c if c == protocol::qemu_exit_status(protocol::EXIT_PANIC) => QemuExit::Panic,
            c if c == protocol::qemu_exit_status(protocol::EXIT_EXCEPTION) => QemuExit::Exception,
            0 if quit_sent => QemuExit::Quit,
            0 => QemuExit::TripleFault,
            c => QemuExit::Failed(c),
        }
    }

    /// The process exit code, when there is one.
    pub fn code(self) -> Option<i32> {
        match self {
            QemuExit::Shutdown => Some(protocol::qemu_exit_status(protocol::EXIT_SUCCESS)),
            QemuExit::Panic => Some(protocol::qemu_exit_status(protocol::EXIT_PANIC)),
            QemuExit::Exception => Some(protocol::qemu_exit_status(protocol::EXIT_EXCEPTION)),
            QemuExit::Quit | QemuExit::TripleFault => Some(0),
            QemuExit::Failed(c) => Some(c),
            QemuExit::Signal(_) | QemuExit::Running => None,
        }
    }

    /// Whether this is an orderly end: a guest shutdown or a host quit.
    pub fn is_success(self) -> bool {
        matches!(self, QemuExit::Shutdown | QemuExit::Quit)
    }
}

impl fmt::Display for QemuExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QemuExit::Shutdown => write!(f, "exit status 33: clean guest shutdown"),
            QemuExit::Panic => write!(f, "exit status 65: guest panic"),
            QemuExit::Exception => write!(f, "exit status 67: guest exception"),
            QemuExit::Quit => write!(f, "exit status 0: QMP quit"),
            QemuExit::TripleFault => {
                write!(f, "exit status 0 without a quit: triple fault")
            }
            QemuExit::Failed(c) => write!(f, "exit status {c}: QEMU failed"),
            QemuExit::Signal(s) => write!(f, "killed by signal {s}"),
            QemuExit::Running => write!(f, "still running"),
        }
    }
}
