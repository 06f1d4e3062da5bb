//! What a guest boots with, and where its sockets live.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::qemu::Accel;
use crate::qemu::LaunchError;

/// Everything needed to boot a guest.
#[derive(Clone, Debug)]
pub struct VmConfig {
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub accel: Accel,
    /// Guest RAM in MiB.
    pub ram_mib: u32,
    /// From QEMU's start to the guest's `Ready`.
    pub boot_timeout: Duration,
    /// For every request (a batch gets more, see [`crate::Vm::batch`]).
    pub request_timeout: Duration,
    /// A gdb stub listening on this unix socket (`replay --gdb`), if any.
    pub gdb_socket: Option<PathBuf>,
    /// A human monitor (HMP) listening on this unix socket (`profile`'s
    /// sampler), if any. Every guest booted with this configuration opens
    /// it there, one after the other.
    pub monitor_socket: Option<PathBuf>,
    /// Back guest RAM with a file the host maps ([`crate::ram`]), so that
    /// [`crate::Vm::shared_ram`] reads guest memory without `pmemsave`.
    pub shared_ram: bool,
    /// File images for memory-mapped files, passed as one `-initrd` blob
    /// ([`crate::files`]); none when empty.
    pub files: Vec<crate::files::FileSpec>,
    /// How requests and answers travel after the handshake.
    pub transport: Transport,
    /// Who counts the guest's edges, as asked (`--edge-counts`);
    /// [`crate::edge_counts::settle`] turns it into the kernel and
    /// [`VmConfig::block_counter`] once the accelerator is known.
    pub edge_counts: crate::edge_counts::EdgeCounts,
    /// A QEMU plugin counts the guest's blocks (a kernel without
    /// SanitizerCoverage, under TCG: [`crate::coverage::plugin`]), if so.
    pub block_counter: Option<crate::coverage::BlockCounter>,
}

/// How requests and answers travel between host and guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// The shared-memory ring in guest RAM with a one-byte doorbell each
    /// way (`protocol::ring`): needs shared RAM; the serial line is used
    /// when the guest was booted without it.
    #[default]
    Ring,
    /// Every frame through the 16550, byte by byte.
    Serial,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Ring => "ring",
            Transport::Serial => "serial",
        })
    }
}

impl VmConfig {
    /// A configuration with the default sizes and timeouts (128 MiB, 30 s
    /// boot, 10 s per request).
    pub fn new(qemu: PathBuf, kernel: PathBuf, accel: Accel) -> Self {
        VmConfig {
            qemu,
            kernel,
            accel,
            ram_mib: DEFAULT_RAM_MIB,
            boot_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            gdb_socket: None,
            monitor_socket: None,
            shared_ram: false,
            files: Vec::new(),
            transport: Transport::default(),
            edge_counts: Default::default(),
            block_counter: None,
        }
    }

    /// Guest RAM in bytes.
    pub fn ram_bytes(&self) -> u64 {
        u64::from(self.ram_mib) << 20
    }

    /// Whether a guest of this configuration can boot (see
    /// [`check_guest`]); [`crate::Vm::boot`] refuses one that cannot.
    pub fn check(&self) -> Result<()> {
        check_guest(self.ram_mib, &self.files)
    }
}

/// Guest RAM, in MiB, unless told otherwise (`--ram`).
pub const DEFAULT_RAM_MIB: u32 = 128;

/// Refuses a guest of `ram_mib` MiB booting with `files` that could not
/// boot, or whose guarantees would not hold: RAM or files out of the
/// ranges of `trace::limits` (the same as a trace header's).
pub fn check_guest(ram_mib: u32, files: &[crate::files::FileSpec]) -> Result<()> {
    use trace::limits;
    limits::check_ram(ram_mib).map_err(Error::Config)?;
    let in_files = |e: trace::FieldError| {
        Error::Config(format!(
            "the guest's files: {e} (with a guest of {ram_mib} MiB)"
        ))
    };
    limits::check_files(files).map_err(in_files)?;
    limits::check_ram_with_files(ram_mib, files).map_err(in_files)
}

/// The file in a private directory that names its owner's process id.
const OWNER: &str = "owner.pid";

/// Makes the private directory for the sockets and dumps (mode 0700), after
/// removing those that runners killed outright left behind.
pub fn private_dir() -> Result<tempfile::TempDir, LaunchError> {
    owned_dir("vmmfuzz-")
}

/// A private directory (mode 0700) in the temp directory named `prefix…`
/// (which starts `vmmfuzz-`), holding its owner's process id so that
/// [`sweep_stale_dirs`] removes it once that process is gone; made after
/// such a sweep. `replay --gdb`'s socket lives in one too.
pub fn owned_dir(prefix: &str) -> Result<tempfile::TempDir, LaunchError> {
    debug_assert!(prefix.starts_with("vmmfuzz-"), "swept by its prefix");
    sweep_stale_dirs(&std::env::temp_dir());
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(LaunchError::TempDir)?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(LaunchError::TempDir)?;
    std::fs::write(dir.path().join(OWNER), std::process::id().to_string())
        .map_err(LaunchError::TempDir)?;
    Ok(dir)
}

/// Removes the private directories in `tmp` whose owner process is gone
/// (a runner killed by `SIGKILL` runs no destructor); returns how many.
pub fn sweep_stale_dirs(tmp: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("vmmfuzz-") {
            continue;
        }
        let path = entry.path();
        let Some(pid) = std::fs::read_to_string(path.join(OWNER))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            tracing::debug!(
                "removed {} (its runner, pid {pid}, is gone)",
                path.display()
            );
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gdb_dir_names_its_owner() {
        let dir = owned_dir("vmmfuzz-gdb-").unwrap();
        let name = dir.path().file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("vmmfuzz-gdb-"), "{name}");
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let owner = std::fs::read_to_string(dir.path().join(OWNER)).unwrap();
        assert_eq!(owner, std::process::id().to_string());
    }

    #[test]
    fn private_dir_is_0700() {
        let dir = private_dir().unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let name = dir.path().file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("vmmfuzz-"));
        let owner = std::fs::read_to_string(dir.path().join(OWNER)).unwrap();
        assert_eq!(owner, std::process::id().to_string());
    }

    #[test]
    fn stale_dirs_of_dead_runners_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let mk = |name: &str, owner: Option<u32>| {
            let d = tmp.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("serial.sock"), "").unwrap();
            if let Some(pid) = owner {
                std::fs::write(d.join(OWNER), pid.to_string()).unwrap();
            }
            d
        };
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = mk("vmmfuzz-dead", Some(dead));
        let live = mk("vmmfuzz-live", Some(std::process::id()));
        let unowned = mk("vmmfuzz-unowned", None);
        let other = mk("other-dead", Some(dead));
        // `replay --gdb`'s socket directory, left by a runner killed with
        // SIGKILL while QEMU waited for gdb; one of a live runner.
        let gdb_dead = mk("vmmfuzz-gdb-dead", Some(dead));
        let gdb_live = mk("vmmfuzz-gdb-live", Some(std::process::id()));
        assert_eq!(sweep_stale_dirs(tmp.path()), 2);
        assert!(!stale.exists() && !gdb_dead.exists());
        assert!(live.exists() && gdb_live.exists() && unowned.exists() && other.exists());
    }
}
