//! What a guest boots with, and where its sockets live.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::accel::Accel;
use crate::error::{Error, Result};

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
    /// Extra QEMU arguments (e.g. `-s -S` for gdb).
    pub extra_args: Vec<OsString>,
    /// Back guest RAM with a file the host maps ([`crate::ram`]), so that
    /// [`crate::Vm::shared_ram`] reads guest memory without `pmemsave`.
    pub shared_ram: bool,
}

impl VmConfig {
    /// A configuration with the default sizes and timeouts (128 MiB, 30 s
    /// boot, 10 s per request).
    pub fn new(qemu: PathBuf, kernel: PathBuf, accel: Accel) -> Self {
        VmConfig {
            qemu,
            kernel,
            accel,
            ram_mib: 128,
            boot_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            extra_args: Vec::new(),
            shared_ram: false,
        }
    }

    /// Guest RAM in bytes.
    pub fn ram_bytes(&self) -> u64 {
        u64::from(self.ram_mib) << 20
    }
}

/// Makes the private directory for the sockets and dumps (mode 0700).
pub fn private_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("vmmfuzz-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .map_err(Error::TempDir)?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .map_err(Error::TempDir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_is_0700() {
        let dir = private_dir().unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let name = dir.path().file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("vmmfuzz-"));
    }
}
