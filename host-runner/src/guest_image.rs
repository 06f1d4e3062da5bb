//! Where the guest kernel ELF is.
//!
//! The build script builds `guest/kernel` and records the ELF's path in
//! `VMMFUZZ_GUEST_KERNEL` at compile time. At run time `--kernel PATH` wins,
//! then `VMMFUZZ_GUEST_KERNEL` from the environment, then the built one.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variable naming the guest kernel ELF.
pub const KERNEL_ENV: &str = "VMMFUZZ_GUEST_KERNEL";

/// The kernel the build script built, if it did.
pub fn built_kernel() -> Option<&'static Path> {
    option_env!("VMMFUZZ_GUEST_KERNEL").map(Path::new)
}

/// The kernel to boot: `explicit`, else `$VMMFUZZ_GUEST_KERNEL`, else the
/// built one. It must exist.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf> {
    let runtime = std::env::var_os(KERNEL_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let path = explicit
        .map(Path::to_owned)
        .or(runtime)
        .or_else(|| built_kernel().map(Path::to_owned))
        .ok_or_else(|| Error::KernelMissing {
            path: PathBuf::from("(none: the build script did not build guest/kernel)"),
        })?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::KernelMissing { path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_must_exist() {
        let err = resolve(Some(Path::new("/nonexistent/kernel"))).unwrap_err();
        assert!(matches!(err, Error::KernelMissing { .. }));
        assert!(err.to_string().contains("--kernel"));
        let file = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(resolve(Some(file.path())).unwrap(), file.path());
    }
}
