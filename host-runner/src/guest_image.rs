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

/// The same kernel built without SanitizerCoverage, if the build script
/// built it: under TCG a QEMU plugin counts its blocks instead
/// ([`built_plugin`]).
pub fn built_plain_kernel() -> Option<&'static Path> {
    option_env!("VMMFUZZ_GUEST_KERNEL_PLAIN").map(Path::new)
}

/// The QEMU plugin that counts a plain kernel's blocks
/// (`host-runner/qemu-plugin`), if the build script built it.
pub fn built_plugin() -> Option<&'static Path> {
    option_env!("VMMFUZZ_QEMU_PLUGIN").map(Path::new)
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
    let mut names: Vec<&str> = features.to_vec();
    names.sort_unstable();
    variant_target_dir(&names.join("-"))
}

/// The directory of the build named `name`, beside the default build:
/// `<target>/guest-<name>`.
fn variant_target_dir(name: &str) -> PathBuf {
    let base = built_kernel()
        .and_then(|k| k.ancestors().nth(4).map(Path::to_owned))
        .unwrap_or_else(|| std::env::temp_dir().join("vmmfuzz-guest-builds"));
    base.join(format!("guest-{name}"))
}

/// Where [`build_frame_pointer_guest`] builds: `<target>/guest-frame-pointers`.
pub fn frame_pointer_target_dir() -> PathBuf {
    variant_target_dir("frame-pointers")
}

/// Builds the default kernel with frame pointers
/// ([`crate::guest_build::FRAME_POINTER_FLAGS`]) into
/// [`frame_pointer_target_dir`], for `host-runner profile`, and returns
/// the ELF's path. The same code otherwise: the same features, flags and
/// coverage counters.
pub fn build_frame_pointer_guest() -> Result<PathBuf> {
    let flags = crate::guest_build::FRAME_POINTER_FLAGS;
    build_into(&[], flags, &frame_pointer_target_dir())
}

/// Builds the guest kernel with `features` (e.g. `["inject-skip-flush"]`)
/// into [`feature_target_dir`] and returns the ELF's path. Cargo's own
/// up-to-date check makes a second call cheap. For tests that inject bugs:
/// nothing else boots these builds.
pub fn build_guest(features: &[&str]) -> Result<PathBuf> {
    build_into(features, &[], &feature_target_dir(features))
}

/// Builds the kernel with `features` and the added rust `flags` into
/// `target`; the ELF's path.
fn build_into(features: &[&str], flags: &[&str], target: &Path) -> Result<PathBuf> {
    let dir = kernel_source_dir();
    let mut cmd = crate::guest_build::command(&dir, target, features);
    crate::guest_build::add_rustflags(&mut cmd, flags);
    let out = cmd
        .output()
        .map_err(|e| Error::io("running cargo to build the guest", e))?;
    let elf = crate::guest_build::elf_path(target);
    if !out.status.success() || !elf.is_file() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::io(
            format!(
                "building the guest kernel with features [{}] and flags [{}] in {} ({})",
                features.join(","),
                flags.join(" "),
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
