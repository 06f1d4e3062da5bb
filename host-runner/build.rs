//! Builds the guest kernel (`guest/kernel`, a cargo workspace of its own for
//! `x86_64-unknown-none`) so that `cargo run -p host-runner` on a fresh clone
//! just works, and tells the runner where the ELF is through the
//! compile-time variable `VMMFUZZ_GUEST_KERNEL`.
//!
//! The kernel is built into `<target dir>/guest` with the flags of its own
//! `.cargo/config.toml`, by the command `src/guest_build.rs` makes (the one
//! the runner's injected builds use too).
//! Set `VMMFUZZ_SKIP_GUEST_BUILD=1` to skip it (then pass `--kernel PATH` or
//! `VMMFUZZ_GUEST_KERNEL` at run time).

use std::env;
use std::path::{Path, PathBuf};

// The build script builds the default kernel only: the variants' parts
// (added rust flags) are the runner's.
#[allow(dead_code)]
#[path = "src/guest_build.rs"]
mod guest_build;

use guest_build::GUEST_TARGET;

fn main() {
    println!("cargo:rerun-if-env-changed=VMMFUZZ_SKIP_GUEST_BUILD");
    if env::var_os("VMMFUZZ_SKIP_GUEST_BUILD").is_some_and(|v| !v.is_empty() && v != "0") {
        println!(
            "cargo:warning=VMMFUZZ_SKIP_GUEST_BUILD is set: the guest kernel is not built; pass --kernel PATH at run time"
        );
        return;
    }
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host-runner sits in the workspace root");
    let kernel_dir = root.join("guest/kernel");
    if !kernel_dir.join("Cargo.toml").is_file() {
        panic!(
            "\n\nThe guest kernel's sources are missing: no {}.\n\
             host-runner's build script builds it; restore guest/kernel from git, or set \
             VMMFUZZ_SKIP_GUEST_BUILD=1 and pass --kernel PATH at run time.\n",
            kernel_dir.join("Cargo.toml").display()
        );
    }
    for dir in ["guest/kernel", "guest/core", "protocol"] {
        watch(&root.join(dir));
    }

    let target_dir = outer_target_dir().join("guest");
    let mut cmd = guest_build::command(&kernel_dir, &target_dir, &[]);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo to build the guest kernel: {e}"));
    if !out.status.success() {
        panic!(
            "\n\nbuilding the guest kernel failed ({}), in {}:\n{}\n{}\n\
             (the guest needs the {GUEST_TARGET} target: `rustup target add {GUEST_TARGET}`)\n",
            out.status,
            kernel_dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let elf = guest_build::elf_path(&target_dir);
    if !elf.is_file() {
        panic!(
            "the guest kernel build succeeded but {} is missing:\n{}\n{}",
            elf.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!("cargo:rustc-env=VMMFUZZ_GUEST_KERNEL={}", elf.display());
}

/// Asks cargo to rerun this script when anything in `dir` changes (every
/// entry but a `target` directory, so a build inside it does not count).
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        println!("cargo:rerun-if-changed={}", dir.display());
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name() != "target" {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
    // New entries in the directory itself.
    println!("cargo:rerun-if-changed={}", dir.display());
}

/// The outer build's target directory: the ancestor of OUT_DIR that holds
/// cargo's `CACHEDIR.TAG` (works for `CARGO_TARGET_DIR`, `build.target-dir`
/// and `--target` builds alike).
fn outer_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    out_dir
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").is_file())
        .map(Path::to_owned)
        .unwrap_or_else(|| out_dir.join("guest-target"))
}
