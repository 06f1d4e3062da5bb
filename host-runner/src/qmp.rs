//! QMP, QEMU's control protocol, through the `qapi` crate: stop and resume
//! the guest, save its memory, ask the human monitor, quit.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use qapi::futures::{QapiService, QmpStreamTokio};
use qapi::qmp;
use tokio::io::WriteHalf;
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

use crate::exit_code::{Classify, ExitClass};

pub use qapi::qmp::{RunState, StatusInfo};

/// QMP `command` failed: `message` (what QEMU answered, or why there was
/// no answer).
#[derive(Debug, thiserror::Error)]
#[error("QMP {command} failed: {message}")]
pub struct QmpError {
    pub command: &'static str,
    pub message: String,
}

/// QMP failing is the environment's (exit 3): nothing is known about the
/// VMM.
impl Classify for QmpError {
    fn exit_class(&self) -> ExitClass {
        ExitClass::Environment
    }
}

type Service = QapiService<QmpStreamTokio<WriteHalf<UnixStream>>>;

/// A negotiated QMP connection. Every command has a timeout.
pub struct Qmp {
    service: Service,
    events: JoinHandle<()>,
    timeout: Duration,
}

impl fmt::Debug for Qmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qmp")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.events.abort();
    }
}

/// `path` as the string a QMP command `command` takes it as.
fn utf8_path<'a>(command: &'static str, path: &'a Path) -> Result<&'a str, QmpError> {
    path.to_str().ok_or_else(|| QmpError {
        command,
        message: format!("path {} is not UTF-8", path.display()),
    })
}

impl Qmp {
    /// Connects to QEMU's QMP socket at `path` and negotiates capabilities.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let connect = async {
            let negotiation = QmpStreamTokio::open_uds(path).await?;
            tracing::debug!(
                "QMP greeting: QEMU {}.{}.{}",
                negotiation.capabilities.QMP.version.qemu.major,
                negotiation.capabilities.QMP.version.qemu.minor,
                negotiation.capabilities.QMP.version.qemu.micro
            );
            negotiation.negotiate().await
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| QmpError {
                command: "qmp_capabilities",
                message: format!("no greeting within {timeout:?}"),
            })?
            .map_err(|e| QmpError {
                command: "qmp_capabilities",
                message: format!("connecting to {}: {e}", path.display()),
            })?;
        let (service, events) = stream.spawn_tokio();
        Ok(Qmp {
            service,
            events,
            timeout,
        })
    }

    async fn run<T>(
        &self,
        command: &'static str,
        fut: impl Future<Output = qapi::ExecuteResult<T>>,
    ) -> Result<T::Ok, QmpError>
    where
        T: qapi::Command,
    {
        tracing::trace!("QMP {command}");
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(ok)) => Ok(ok),
            Ok(Err(e)) => Err(QmpError {
                command,
                message: e.to_string(),
            }),
            Err(_) => Err(QmpError {
                command,
                message: format!("no answer within {:?}", self.timeout),
            }),
        }
    }

    /// Whether the guest runs, and QEMU's run state.
    pub async fn query_status(&self) -> Result<StatusInfo, QmpError> {
        self.run::<qmp::query_status>("query-status", self.service.execute(qmp::query_status {}))
            .await
    }

    /// Pauses the guest's CPUs.
    pub async fn stop(&self) -> Result<(), QmpError> {
        self.run::<qmp::stop>("stop", self.service.execute(qmp::stop {}))
            .await
            .map(drop)
    }

    /// Resumes the guest's CPUs.
    pub async fn cont(&self) -> Result<(), QmpError> {
        self.run::<qmp::cont>("cont", self.service.execute(qmp::cont {}))
            .await
            .map(drop)
    }

    /// Saves `size` bytes of guest physical memory from `addr` to `path`
    /// (absolute; QEMU writes it).
    pub async fn pmemsave(&self, addr: u64, size: u64, path: &Path) -> Result<(), QmpError> {
        let filename = utf8_path("pmemsave", path)?;
        let cmd = qmp::pmemsave {
            val: addr,
            size,
            filename: filename.to_owned(),
        };
        self.run::<qmp::pmemsave>("pmemsave", self.service.execute(cmd))
            .await
            .map(drop)
    }

    /// Writes an ELF core of the guest (all its memory, the CPUs' state)
    /// to `path` (absolute; QEMU writes it), waiting until it is written.
    /// The path travels as a QMP string, spaces and all.
    pub async fn dump_guest_memory(&self, path: &Path) -> Result<(), QmpError> {
        let file = utf8_path("dump-guest-memory", path)?;
        let cmd = qmp::dump_guest_memory {
            paging: false,
            protocol: format!("file:{file}"),
            detach: Some(false),
            format: Some(qmp::DumpGuestMemoryFormat::elf),
            begin: None,
            length: None,
        };
        self.run::<qmp::dump_guest_memory>("dump-guest-memory", self.service.execute(cmd))
            .await
            .map(drop)
    }

    /// Runs a human-monitor command (`info registers`, `info tlb`,
    /// `gva2gpa ADDR`, …) and returns its output.
    pub async fn hmp(&self, command_line: &str) -> Result<String, QmpError> {
        let cmd = qmp::human_monitor_command {
            command_line: command_line.to_owned(),
            cpu_index: None,
        };
        self.run::<qmp::human_monitor_command>("human-monitor-command", self.service.execute(cmd))
            .await
    }

    /// Asks QEMU to quit (it exits with status 0). QEMU may close the socket
    /// before it answers; that counts as done.
    pub async fn quit(&self) -> Result<(), QmpError> {
        match self
            .run::<qmp::quit>("quit", self.service.execute(qmp::quit {}))
            .await
        {
            Ok(_) => Ok(()),
            Err(QmpError { message, .. })
                if message.contains("EOF") || message.contains("disconnected") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
