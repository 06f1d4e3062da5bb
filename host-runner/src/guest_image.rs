//! Where the guest kernel ELF is.
//!
//! The build script builds `guest/kernel` and records the ELF's path in
//! `VMMFUZZ_GUEST_KERNEL` at compile time. At run time `--kernel PATH` wins,
//! then `VMMFUZZ_GUEST_KERNEL` from the environment, then the built one.
//!
//! [`build_guest`] builds the kernel with cargo features of its own (the
//! `inject-*` bugs the runner's tests inject on purpose) into a target
//! directory of its own, so that an injected build never replaces the one
//! everything else boots.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::qemu::LaunchError;

/// Environment variable naming the guest kernel ELF.
pub const KERNEL_ENV: &str = "VMMFUZZ_GUEST_KERNEL";

/// The kernel the build script built, if it did.
pub fn built_kernel() -> Option<&'static Path> {
    option_env!("VMMFUZZ_GUEST_KERNEL").map(Path::new)
}

/// The kernel to boot: `explicit`, else `$VMMFUZZ_GUEST_KERNEL`, else the
/// built one. It must exist.
pub fn resolve(explicit: Option<&Path>) -> Result<PathBuf, LaunchError> {
    let runtime = std::env::var_os(KERNEL_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let path = explicit
        .map(Path::to_owned)
        .or(runtime)
        .or_else(|| built_kernel().map(Path::to_owned))
        .ok_or_else(|| LaunchError::KernelMissing {
            path: PathBuf::from("(none: the build script did not build guest/kernel)"),
        })?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(LaunchError::KernelMissing { path })
    }
}

/// The guest kernel's sources (`guest/kernel`), from where this crate was
/// built.
pub fn kernel_source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/kernel")
}

/// The directory an injected build of `features` goes to: beside the
/// default build (`<target>/guest`) as `<target>/guest-<features>`.
pub fn feature_target_dir(features: &[&str]) -> PathBuf {
    let base = built_kernel()
        .and_then(|k| k.ancestors().nth(4).map(Path::to_owned))
        .unwrap_or_else(|| std::env::temp_dir().join("vmmfuzz-guest-builds"));
    let mut names: Vec<&str> = features.to_vec();
    names.sort_unstable();
    base.join(format!("guest-{}", names.join("-")))
}

/// Builds the guest kernel with `features` (e.g. `["inject-skip-flush"]`)
/// into [`feature_target_dir`] and returns the ELF's path. Cargo's own
/// up-to-date check makes a second call cheap. For tests that inject bugs:
/// nothing else boots these builds.
pub fn build_guest(features: &[&str]) -> Result<PathBuf> {
    let dir = kernel_source_dir();
    let target = feature_target_dir(features);
    let mut cmd = crate::guest_build::command(&dir, &target, features);
    let out = cmd
        .output()
        .map_err(|e| Error::io("running cargo to build the guest", e))?;
    let elf = crate::guest_build::elf_path(&target);
    if !out.status.success() || !elf.is_file() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::io(
            format!(
                "building the guest kernel with features [{}] in {} ({})",
                features.join(","),
                dir.display(),
                out.status
            ),
            std::io::Error::other(stderr.trim().to_string()),
        ));
    }
    Ok(elf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_must_exist() {
        let err = resolve(Some(Path::new("/nonexistent/kernel"))).unwrap_err();
        assert!(matches!(err, LaunchError::KernelMissing { .. }));
        assert!(err.to_string().contains("--kernel"));
        let file = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(resolve(Some(file.path())).unwrap(), file.path());
    }
}
