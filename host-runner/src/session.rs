//! A running guest: QEMU, its private socket directory, the serial RPC
//! client and the QMP connection, owned together. Dropping a [`Vm`] kills
//! QEMU and removes the directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use protocol::{Hello, Request, Response, PROTOCOL_VERSION};
use tokio::net::UnixListener;
use tokio::time::Instant;

use crate::coverage::BlockCounts;
use crate::error::{Error, Result};
use crate::qemu::{LaunchError, Qemu, QemuArgs, QemuExit};
use crate::qmp::{Qmp, QmpError, StatusInfo};
use crate::ram::{RamBacking, SharedRam};
use crate::ring::RingPort;
use crate::rpc::{label, LineError, RpcClient, RpcError};

mod batch;
mod config;
mod failure;
pub use config::{check_guest, owned_dir, private_dir, Transport, VmConfig, DEFAULT_RAM_MIB};
use failure::{guest_error, report_error, unexpected};

/// How long to wait for QEMU to end after the guest said it would.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// A booted guest that has said `Ready`.
#[derive(Debug)]
pub struct Vm {
    // Field order is drop order: QEMU is killed first, the directory goes last.
    qemu: Qemu,
    rpc: RpcClient,
    qmp: Qmp,
    ram: Option<SharedRam>,
    /// QEMU's plugin's counts of the guest's blocks, if it counts them.
    blocks: Option<Arc<BlockCounts>>,
    config: VmConfig,
    boot_time: Duration,
    hello: Option<Hello>,
    dir: tempfile::TempDir,
}

impl Vm {
    /// Starts QEMU and waits for the guest's `Ready`.
    pub async fn boot(config: &VmConfig) -> Result<Vm> {
        config.check()?;
        if !config.kernel.is_file() {
            return Err(LaunchError::KernelMissing {
                path: config.kernel.clone(),
            }
            .into());
        }
        let dir = private_dir()?;
        let serial_socket = dir.path().join("serial.sock");
        let qmp_socket = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&serial_socket).map_err(LaunchError::TempDir)?;
        let backing = if config.shared_ram {
            Some(RamBacking::create(config.ram_bytes(), dir.path())?)
        } else {
            None
        };
        let initrd = if config.files.is_empty() {
            None
        } else {
            let blob = dir.path().join("files.img");
            std::fs::write(&blob, crate::files::build_blob(&config.files))
                .map_err(LaunchError::TempDir)?;
            Some(blob)
        };
        let plugin = config
            .block_counter
            .as_ref()
            .map(|c| c.prepare(dir.path()))
            .transpose()
            .map_err(crate::edge_counts::runner_error)?;
        let args = QemuArgs {
            kernel: config.kernel.clone(),
            ram_mib: config.ram_mib,
            accel: config.accel,
            serial_socket,
            qmp_socket: qmp_socket.clone(),
            ram_file: backing.as_ref().map(RamBacking::qemu_file),
            initrd,
            gdb_socket: config.gdb_socket.clone(),
            monitor_socket: config.monitor_socket.clone(),
            plugin: plugin.clone(),
        };
        let started = Instant::now();
        let deadline = started + config.boot_timeout;
        let mut qemu = Qemu::spawn(&config.qemu, &args)?;
        tracing::debug!("QEMU pid {:?} in {}", qemu.pid(), dir.path().display());

        let stream = tokio::select! {
            accepted = tokio::time::timeout_at(deadline, listener.accept()) => match accepted {
                Ok(Ok((stream, _))) => stream,
                Ok(Err(e)) => return Err(Error::io("accepting QEMU's serial connection", e)),
                Err(_) => {
                    qemu.kill().await;
                    return Err(LaunchError::SerialConnectTimeout {
                        timeout: config.boot_timeout,
                        stderr: qemu.final_output().await,
                    }
                    .into());
                }
            },
            // Longer than the accept's deadline: this branch is for QEMU
            // ending early, not for the timeout.
            exit = qemu.wait_exit(config.boot_timeout + EXIT_WAIT) => {
                return Err(LaunchError::ExitedBeforeReady { exit, stderr: qemu.final_output().await }.into());
            }
        };
        drop(listener);
        let mut rpc = RpcClient::new(stream, config.request_timeout);
        let ready = rpc
            .wait_ready(deadline.saturating_duration_since(Instant::now()))
            .await;
        let boot_time = started.elapsed();
        let version = match ready {
            Ok(v) => v,
            Err(LineError::Timeout { .. }) => {
                return Err(LaunchError::ReadyTimeout {
                    timeout: config.boot_timeout,
                }
                .into())
            }
            Err(LineError::Closed {
                last_report: None, ..
            }) => {
                return Err(LaunchError::ExitedBeforeReady {
                    exit: qemu.wait_exit(EXIT_WAIT).await,
                    stderr: qemu.final_output().await,
                }
                .into())
            }
            Err(e) => return Err(guest_error(&mut qemu, e).await.into()),
        };
        if version != PROTOCOL_VERSION {
            return Err(RpcError::VersionMismatch {
                guest: version,
                host: PROTOCOL_VERSION,
            }
            .into());
        }
        let qmp = Qmp::connect(&qmp_socket, config.request_timeout).await?;
        let ram = backing.map(RamBacking::map).transpose()?;
        let blocks = match (&plugin, &config.block_counter) {
            (Some(files), Some(counter)) => Some(Arc::new(
                BlockCounts::map(files, counter.leaders())
                    .map_err(crate::edge_counts::runner_error)?,
            )),
            _ => None,
        };
        tracing::debug!("guest ready after {boot_time:?} ({})", config.accel);
        Ok(Vm {
            qemu,
            rpc,
            qmp,
            ram,
            blocks,
            config: config.clone(),
            boot_time,
            hello: None,
            dir,
        })
    }

    /// QEMU's counts of the guest's blocks and the kernel's block table,
    /// if a plugin counts them ([`VmConfig::block_counter`]).
    pub fn block_counts(&self) -> Option<(Arc<BlockCounts>, &[u8])> {
        let counter = self.config.block_counter.as_ref()?;
        Some((self.blocks.clone()?, &counter.table[..]))
    }

    /// From QEMU's start to the guest's `Ready`.
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }

    /// QEMU's process id, while it runs.
    pub fn qemu_pid(&self) -> Option<u32> {
        self.qemu.pid()
    }

    /// The configuration this guest was booted with.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// The private directory (sockets, memory dumps).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether requests travel through the shared-memory ring (after the
    /// handshake, with shared RAM and [`Transport::Ring`]).
    pub fn uses_ring(&self) -> bool {
        self.rpc.uses_ring()
    }

    /// Sets how long the guest looks for its next request before it
    /// sleeps, in ticks of its time-stamp counter (the ring's `spin`,
    /// `protocol::ring` rule 4): false, and nothing set, without a ring
    /// (on the serial line the guest sleeps between any two requests).
    /// While it looks it does not read the serial line: a request sent
    /// there waits for the spin to end (a request without an answer,
    /// `Shutdown` or `Panic`, ends it first: `RpcClient::send`).
    pub fn set_guest_spin(&self, ticks: u64) -> bool {
        self.swap_guest_spin(ticks).is_some()
    }

    /// [`Vm::set_guest_spin`], answering the spin it replaces (`None`, and
    /// nothing set, without a ring).
    pub fn swap_guest_spin(&self, ticks: u64) -> Option<u64> {
        self.rpc.ring().map(|r| r.swap_spin(ticks))
    }

    /// Doorbells rung again so far for a guest asleep with a request
    /// posted (`protocol::ring` rule 6; 0 without a ring).
    pub fn ring_nudges(&self) -> u64 {
        self.rpc.ring().map_or(0, crate::ring::RingPort::nudges)
    }

    /// The guest's spin as last set (`None` without a ring).
    pub fn guest_spin(&self) -> Option<u64> {
        self.rpc.ring().map(crate::ring::RingPort::spin)
    }

    /// Whether the guest says it sleeps until a doorbell (the ring's
    /// `waiting`), or `None` without a ring.
    pub fn guest_sleeps(&self) -> Option<bool> {
        self.rpc.ring().map(crate::ring::RingPort::guest_sleeps)
    }

    /// The handshake: the guest's layout (asked once, then remembered).
    /// With [`Transport::Ring`] and shared RAM, later requests go through
    /// the ring it reports.
    pub async fn hello(&mut self) -> Result<Hello, RpcError> {
        if let Some(h) = &self.hello {
            return Ok(h.clone());
        }
        match self.call(Request::Hello).await? {
            Response::Hello(h) if h.protocol_version != PROTOCOL_VERSION => {
                Err(RpcError::VersionMismatch {
                    guest: h.protocol_version,
                    host: PROTOCOL_VERSION,
                })
            }
            Response::Hello(h) => {
                if let (Transport::Ring, Some(ram)) = (self.config.transport, &self.ram) {
                    let port = RingPort::open(ram, h.ring).map_err(RpcError::Ring)?;
                    self.rpc.attach_ring(port);
                }
                self.hello = Some((*h).clone());
                Ok(*h)
            }
            other => Err(unexpected(&Request::Hello, other)),
        }
    }

    /// Sends one request and waits for its answer (the default timeout).
    pub async fn call(&mut self, request: Request) -> Result<Response, RpcError> {
        let timeout = self.rpc.timeout();
        self.call_timeout(request, timeout).await
    }

    /// Sends one request and waits up to `timeout` for its answer.
    pub async fn call_timeout(
        &mut self,
        request: Request,
        timeout: Duration,
    ) -> Result<Response, RpcError> {
        match self.rpc.call_timeout(&request, timeout).await {
            Ok(r) => Ok(r),
            Err(e) => Err(guest_error(&mut self.qemu, e).await),
        }
    }

    /// Sends raw bytes (a damaged frame, say) and waits for the one answer.
    pub async fn call_raw(&mut self, bytes: &[u8]) -> Result<Response, RpcError> {
        let timeout = self.rpc.timeout();
        match self.rpc.call_raw(bytes, timeout).await {
            Ok(r) => Ok(r),
            Err(e) => Err(guest_error(&mut self.qemu, e).await),
        }
    }

    /// Writes `bytes` raw on the serial line (a wire fuzzer's burst),
    /// then a frame delimiter and `Ping { nonce }`: every reply before the
    /// `Pong` ([`crate::rpc::RpcClient::burst_then_ping`]).
    pub async fn burst_then_ping(
        &mut self,
        bytes: &[u8],
        nonce: u64,
        timeout: Duration,
    ) -> Result<crate::rpc::BurstReplies, RpcError> {
        match self.rpc.burst_then_ping(bytes, nonce, timeout).await {
            Ok(r) => Ok(r),
            Err(e) => Err(guest_error(&mut self.qemu, e).await),
        }
    }

    /// Posts `slots` in the ring, one at a time, each under its header
    /// ([`crate::rpc::RpcClient::ring_burst`]): every answer.
    pub async fn ring_burst(
        &mut self,
        slots: &[(Vec<u8>, crate::ring::SlotHeader)],
        timeout: Duration,
    ) -> Result<Vec<std::result::Result<Response, protocol::frame::FrameError>>, RpcError> {
        match self.rpc.ring_burst(slots, timeout).await {
            Ok(r) => Ok(r),
            Err(e) => Err(guest_error(&mut self.qemu, e).await),
        }
    }

    /// Sends a request that gets no answer (`Panic`, `Shutdown`), then waits
    /// for QEMU to end and returns the error that describes the guest's
    /// end (`GuestPanic`, …), or `Ok` with the exit when the guest had
    /// nothing to report.
    pub async fn send_and_wait_exit(&mut self, request: Request) -> Result<QemuExit, RpcError> {
        if let Err(e) = self.rpc.send(&request).await {
            return Err(guest_error(&mut self.qemu, e).await);
        }
        match self.rpc.wait_closed(EXIT_WAIT).await {
            Ok(None) => Ok(self.qemu.wait_exit(EXIT_WAIT).await),
            Ok(Some(report)) => Err(report_error(&mut self.qemu, report).await),
            Err(e) => Err(guest_error(&mut self.qemu, e).await),
        }
    }

    /// Asks the guest to shut down and checks that QEMU exits with 33.
    pub async fn shutdown(mut self) -> Result<QemuExit, RpcError> {
        let label = label(&Request::Shutdown);
        let exit = self.send_and_wait_exit(Request::Shutdown).await?;
        if exit == QemuExit::Shutdown {
            Ok(exit)
        } else {
            tracing::debug!("{label}: {exit}");
            Err(RpcError::UnexpectedExit {
                exit,
                expected: "status 33 (clean guest shutdown)",
                stderr: self.qemu.final_output().await,
            })
        }
    }

    /// Ends QEMU through QMP `quit` and checks that it exits with 0.
    pub async fn quit(mut self) -> Result<QemuExit> {
        self.qemu.mark_quit_sent();
        self.qmp.quit().await?;
        match self.qemu.wait_exit(EXIT_WAIT).await {
            QemuExit::Quit => Ok(QemuExit::Quit),
            exit => Err(RpcError::UnexpectedExit {
                exit,
                expected: "status 0 after QMP quit",
                stderr: self.qemu.final_output().await,
            }
            .into()),
        }
    }

    /// Kills QEMU and returns how it ended.
    pub async fn kill(mut self) -> QemuExit {
        self.qemu.kill().await
    }

    /// Kills QEMU (`SIGKILL`) if it still runs and waits (up to 5 s) for
    /// its end; the `Vm` stays, with QEMU's output and the directory.
    pub async fn kill_qemu(&mut self) -> QemuExit {
        self.qemu.kill().await
    }

    /// Waits up to `timeout` for QEMU to end on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> QemuExit {
        self.qemu.wait_exit(timeout).await
    }

    /// QEMU's output so far.
    pub fn qemu_output(&self) -> String {
        self.qemu.output()
    }

    /// The QMP connection, for commands this type does not wrap.
    pub fn qmp(&self) -> &Qmp {
        &self.qmp
    }

    /// QMP `query-status`.
    pub async fn query_status(&self) -> Result<StatusInfo, QmpError> {
        self.qmp.query_status().await
    }

    /// Pauses the guest (QMP `stop`).
    pub async fn stop(&self) -> Result<(), QmpError> {
        self.qmp.stop().await
    }

    /// Resumes the guest (QMP `cont`).
    pub async fn cont(&self) -> Result<(), QmpError> {
        self.qmp.cont().await
    }

    /// Saves guest physical memory `addr..addr + size` to `name` in the
    /// private directory and returns the file's path.
    pub async fn pmemsave(&self, addr: u64, size: u64, name: &str) -> Result<PathBuf, QmpError> {
        let path = self.dir.path().join(name);
        self.qmp.pmemsave(addr, size, &path).await?;
        Ok(path)
    }

    /// Guest RAM mapped from QEMU's RAM file, when booted with
    /// [`VmConfig::shared_ram`]. Stop the guest before reading for a
    /// consistent picture.
    pub fn shared_ram(&self) -> Option<&SharedRam> {
        self.ram.as_ref()
    }

    /// All guest RAM, read through `pmemsave` (stop the guest first for a
    /// consistent picture).
    pub async fn dump_ram(&self) -> Result<Vec<u8>> {
        let path = self.pmemsave(0, self.config.ram_bytes(), "mem.bin").await?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let _ = tokio::fs::remove_file(&path).await;
        Ok(bytes)
    }

    /// Writes an ELF core of the guest to `path` (see
    /// [`Qmp::dump_guest_memory`]).
    pub async fn dump_guest_memory(&self, path: &Path) -> Result<(), QmpError> {
        self.qmp.dump_guest_memory(path).await
    }

    /// A human-monitor command's output (`info registers`, `info tlb`, …).
    pub async fn hmp(&self, command_line: &str) -> Result<String, QmpError> {
        self.qmp.hmp(command_line).await
    }
}
