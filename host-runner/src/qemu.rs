//! Finding, starting and ending QEMU, and reading its exit status.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

pub(crate) mod command;
mod exit;
pub mod launch_error;
pub use command::{Accel, QemuArgs, RamFile};
pub use exit::QemuExit;
pub use launch_error::LaunchError;

/// Name of the QEMU binary searched in `PATH`.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// Environment variable naming the QEMU binary to use.
pub const QEMU_ENV: &str = "VMMFUZZ_QEMU";

/// Most bytes of QEMU's output kept for error messages.
const OUTPUT_CAP: usize = 64 * 1024;

/// Finds the QEMU binary: `explicit` if given, else `$VMMFUZZ_QEMU`, else
/// `qemu-system-x86_64` in `PATH`.
pub fn find_qemu(explicit: Option<&Path>) -> Result<PathBuf, LaunchError> {
    if let Some(path) = explicit {
        return usable(path, &format!("--qemu {}", path.display()));
    }
    if let Some(path) = std::env::var_os(QEMU_ENV) {
        let path = PathBuf::from(path);
        return usable(&path, &format!("{QEMU_ENV}={}", path.display()));
    }
    search_path(QEMU_BINARY, std::env::var_os("PATH").as_deref()).ok_or_else(|| {
        LaunchError::QemuNotFound {
            searched: format!("no {QEMU_BINARY} in PATH"),
        }
    })
}

/// `path` if it is an executable file; else what it is, said as `named`.
fn usable(path: &Path, named: &str) -> Result<PathBuf, LaunchError> {
    use std::os::unix::fs::PermissionsExt;
    let why = match path.metadata() {
        Ok(m) if m.is_dir() => "is a directory, not the QEMU binary",
        Ok(m) if !m.is_file() => "is not a regular file",
        Ok(m) if m.permissions().mode() & 0o111 == 0 => "is not executable",
        Ok(_) => return Ok(path.to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
        Err(e) => {
            return Err(LaunchError::QemuNotFound {
                searched: format!("{named}: {e}"),
            })
        }
    };
    Err(LaunchError::QemuNotFound {
        searched: format!("{named} {why}"),
    })
}

/// Looks for an executable `name` in the directories of `path`.
pub fn search_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path?)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// QEMU's version line (`QEMU emulator version 7.2.22 (…)`).
pub async fn qemu_version(binary: &Path) -> Result<String, LaunchError> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| LaunchError::QemuSpawn {
            binary: binary.to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("unknown").trim().to_owned())
}

/// A running QEMU. Dropping it kills QEMU (`SIGKILL`).
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    exit: Option<QemuExit>,
    quit_sent: bool,
}

impl Qemu {
    /// Starts `binary` with `args`; its stdout and stderr are collected (and
    /// logged at debug level under the target `qemu`).
    pub fn spawn(binary: &Path, args: &QemuArgs) -> Result<Qemu, LaunchError> {
        let argv = args.argv();
        tracing::debug!(target: "qemu", "{} {}", binary.display(), shell_words(&argv));
        let mut cmd = Command::new(binary);
        cmd.args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| LaunchError::QemuSpawn {
            binary: binary.to_owned(),
            source,
        })?;
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(collect(out, output.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(collect(err, output.clone())));
        }
        Ok(Qemu {
            child,
            output,
            readers,
            exit: None,
            quit_sent: false,
        })
    }

    /// QEMU's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Records that QMP `quit` was sent, so that status 0 reads as success.
    pub fn mark_quit_sent(&mut self) {
        self.quit_sent = true;
    }

    /// How QEMU ended, if it has.
    pub fn try_exit(&mut self) -> Option<QemuExit> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(QemuExit::from_status(status, self.quit_sent));
            }
        }
        self.exit
    }

    /// Waits up to `timeout` for QEMU to end; [`QemuExit::Running`] if it
    /// has not.
    pub async fn wait_exit(&mut self, timeout: Duration) -> QemuExit {
        if let Some(exit) = self.exit {
            return exit;
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                let exit = QemuExit::from_status(status, self.quit_sent);
                self.exit = Some(exit);
                exit
            }
            Ok(Err(e)) => {
                tracing::warn!("waiting for QEMU: {e}");
                QemuExit::Running
            }
            Err(_) => QemuExit::Running,
        }
    }

    /// Kills QEMU if it still runs and returns how it ended.
    pub async fn kill(&mut self) -> QemuExit {
        if let Some(exit) = self.try_exit() {
            return exit;
        }
        let _ = self.child.start_kill();
        self.wait_exit(Duration::from_secs(5)).await
    }

    /// QEMU's output so far (stdout and stderr interleaved, capped).
    pub fn output(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// QEMU's output once it has ended: waits (briefly) for the pipes to
    /// drain first.
    pub async fn final_output(&mut self) -> String {
        for reader in &mut self.readers {
            let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
        }
        self.readers.clear();
        self.output()
    }
}

/// Makes the kernel kill QEMU when the runner dies without running its
/// destructors (`SIGKILL`, an abort): `kill_on_drop` covers every other
/// way out. The signal is tied to the thread that spawns QEMU (a runtime
/// thread, or a fuzz job's own thread), so a `Vm` must not outlive the
/// thread that booted it: a fuzz job's guests live and die inside the job,
/// which ends before its thread does.
fn die_with_parent(cmd: &mut Command) {
    use rustix::process::{getpid, getppid, set_parent_process_death_signal, Signal};
    let parent = getpid();
    // SAFETY: the closure runs between fork and exec and calls only
    // async-signal-safe system calls (prctl, getppid), allocating nothing:
    // its errors are raw errno values.
    unsafe {
        cmd.pre_exec(move || {
            set_parent_process_death_signal(Some(Signal::KILL))?;
            // The runner died before prctl took effect: fail the exec (the
            // child then exits at once; nobody waits for it).
            if getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
}

async fn collect(pipe: impl AsyncRead + Unpin, into: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "qemu", "{line}");
        if let Ok(mut s) = into.lock() {
            if s.len() + line.len() < OUTPUT_CAP {
                s.push_str(&line);
                s.push('\n');
            }
        }
    }
}

/// The command line as a shell would show it (for logs).
pub fn shell_words(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=,./:".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
