//! How the guest kernel is built, in one place: the build script
//! (`build.rs`, which includes this file by `#[path]`) builds the default
//! kernel, and [`crate::guest_image::build_guest`] builds kernels with
//! injected bugs, both with this command and this environment.
//!
//! The guest (`guest/kernel`, a cargo workspace of its own for
//! `x86_64-unknown-none`) takes its flags from its own
//! `.cargo/config.toml`: whatever a surrounding cargo, build script or
//! test run set for the host build (RUSTFLAGS, clippy's or a coverage
//! tool's wrapper, a `--target`, profile and build-script variables,
//! coverage output) is kept away from it. Plain std only: the build script
//! compiles it too.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest's target triple.
pub const GUEST_TARGET: &str = "x86_64-unknown-none";

/// The kernel's binary name.
pub const KERNEL_BIN: &str = "vmmfuzz-kernel";

/// Variables of a surrounding cargo (or test run) that must not reach the
/// guest's build.
const CLEARED: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "TARGET",
    "HOST",
    "OUT_DIR",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "LLVM_PROFILE_FILE",
];

/// Prefixes of such variables (a build script's cfg and feature values,
/// the package's metadata, cargo's internals).
const CLEARED_PREFIXES: &[&str] = &["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "__CARGO"];

/// Whether the variable `key` must not reach the guest's build.
pub fn cleared(key: &OsStr) -> bool {
    let k = key.to_string_lossy();
    CLEARED.contains(&k.as_ref()) || CLEARED_PREFIXES.iter().any(|p| k.starts_with(p))
}

/// The cargo command that builds the kernel in `kernel_dir` with
/// `features` (none: the default kernel) into `target_dir`, with the
/// environment cleared of what [`cleared`] names.
pub fn command(kernel_dir: &Path, target_dir: &Path, features: &[&str]) -> Command {
    let mut cmd = cargo_build(kernel_dir, target_dir);
    cmd.args(["--bin", KERNEL_BIN]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd
}

/// `cargo build --release` in `dir` into `target_dir`, with the
/// environment cleared of what [`cleared`] names.
fn cargo_build(dir: &Path, target_dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir).args(["build", "--release"]);
    for (key, _) in std::env::vars_os() {
        if cleared(&key) {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    cmd
}

/// The rust flags of the kernel's own `.cargo/config.toml` without
/// SanitizerCoverage's: what a kernel whose coverage QEMU counts
/// (`host-runner/qemu-plugin`) is built with.
pub const PLAIN_FLAGS: &[&str] = &[
    "-C",
    "relocation-model=static",
    "-C",
    "code-model=kernel",
    "-C",
    "link-arg=-Tlinker.ld",
];

/// SanitizerCoverage's flags in the kernel's `.cargo/config.toml`, after
/// [`PLAIN_FLAGS`] (a test holds the file to the two).
pub const SANCOV_FLAGS: &[&str] = &[
    "-C",
    "passes=sancov-module",
    "-C",
    "llvm-args=-sanitizer-coverage-level=3",
    "-C",
    "llvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-C",
    "llvm-args=-sanitizer-coverage-pc-table",
];

/// Builds without SanitizerCoverage: [`PLAIN_FLAGS`] replace the config
/// file's flags (cargo takes `CARGO_ENCODED_RUSTFLAGS` instead of
/// `build.rustflags`).
pub fn without_sancov(cmd: &mut Command) {
    cmd.env("CARGO_ENCODED_RUSTFLAGS", PLAIN_FLAGS.join("\x1f"));
}

/// The flags a profiling build adds (`host-runner profile`): every
/// function keeps its frame pointer, so a stack is the chain of saved RBPs.
pub const FRAME_POINTER_FLAGS: &[&str] = &["-C", "force-frame-pointers=yes"];

/// Adds `flags` to the rust flags of the kernel's own `.cargo/config.toml`
/// (through `--config build.rustflags`: cargo joins the arrays of every
/// config source; RUSTFLAGS would replace them, linker script and coverage
/// flags included).
pub fn add_rustflags(cmd: &mut Command, flags: &[&str]) {
    if flags.is_empty() {
        return;
    }
    let quoted: Vec<String> = flags.iter().map(|f| format!("{f:?}")).collect();
    cmd.arg("--config")
        .arg(format!("build.rustflags=[{}]", quoted.join(",")));
}

/// The cargo command that builds the QEMU plugin that counts a plain
/// kernel's blocks (`plugin_dir`, a cargo workspace of its own) into
/// `target_dir`, with the environment cleared as for the kernel.
pub fn plugin_command(plugin_dir: &Path, target_dir: &Path) -> Command {
    cargo_build(plugin_dir, target_dir)
}

/// Where the plugin built into `target_dir` is.
pub fn plugin_path(target_dir: &Path) -> PathBuf {
    target_dir.join("release").join("libvmmfuzz_qemu_plugin.so")
}

/// Where the kernel built into `target_dir` is.
pub fn elf_path(target_dir: &Path) -> PathBuf {
    target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join(KERNEL_BIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_builds_flags_are_cleared_and_the_rest_kept() {
        for k in [
            "RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_TARGET_DIR",
            "OUT_DIR",
            "LLVM_PROFILE_FILE",
            "CARGO_CFG_TARGET_OS",
            "CARGO_FEATURE_SIM",
            "CARGO_PKG_NAME",
            "__CARGO_FIX_PLZ",
        ] {
            assert!(cleared(OsStr::new(k)), "{k}");
        }
        for k in ["PATH", "HOME", "CARGO", "CARGO_HOME", "RUSTUP_TOOLCHAIN"] {
            assert!(!cleared(OsStr::new(k)), "{k}");
        }
    }

    #[test]
    fn the_command_builds_the_kernel_with_its_features_into_its_dir() {
        let cmd = command(Path::new("/src/k"), Path::new("/t/g"), &["a", "b"]);
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(
            args,
            [
                "build",
                "--release",
                "--bin",
                KERNEL_BIN,
                "--features",
                "a,b"
            ]
        );
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/src/k")));
        let target = cmd.get_envs().find(|(k, _)| *k == "CARGO_TARGET_DIR");
        assert_eq!(
            target,
            Some((OsStr::new("CARGO_TARGET_DIR"), Some(OsStr::new("/t/g"))))
        );
        assert_eq!(
            elf_path(Path::new("/t/g")),
            Path::new("/t/g/x86_64-unknown-none/release/vmmfuzz-kernel")
        );
    }

    /// The quoted strings of the `rustflags` array of the kernel's
    /// `.cargo/config.toml`, comments left out.
    fn config_flags() -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest/kernel/.cargo/config.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let array = text.split("rustflags = [").nth(1).unwrap();
        let array = array.split("\n]").next().unwrap();
        array
            .lines()
            .map(|l| l.split('#').next().unwrap())
            .flat_map(|l| {
                l.split('"')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn the_config_files_flags_are_the_plain_ones_then_sancovs() {
        let both: Vec<&str> = PLAIN_FLAGS.iter().chain(SANCOV_FLAGS).copied().collect();
        assert_eq!(config_flags(), both);
        let mut cmd = command(Path::new("/src/k"), Path::new("/t/g"), &[]);
        without_sancov(&mut cmd);
        let flags = cmd
            .get_envs()
            .find(|(k, _)| *k == "CARGO_ENCODED_RUSTFLAGS");
        let flags = flags.and_then(|(_, v)| v).unwrap().to_str().unwrap();
        assert_eq!(flags.split('\x1f').collect::<Vec<_>>(), PLAIN_FLAGS);
    }

    #[test]
    fn added_flags_go_through_cargo_config_and_none_add_nothing() {
        let mut cmd = command(Path::new("/src/k"), Path::new("/t/g"), &[]);
        add_rustflags(&mut cmd, &[]);
        assert_eq!(cmd.get_args().count(), 4);
        add_rustflags(&mut cmd, FRAME_POINTER_FLAGS);
        let args: Vec<_> = cmd.get_args().skip(4).collect();
        assert_eq!(
            args,
            [
                "--config",
                r#"build.rustflags=["-C","force-frame-pointers=yes"]"#
            ]
        );
    }
}
