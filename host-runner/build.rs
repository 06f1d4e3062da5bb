//! Builds the guest kernel (`guest/kernel`, a cargo workspace of its own for
//! `x86_64-unknown-none`) so that `cargo run -p host-runner` on a fresh clone
//! just works, and tells the runner where the ELF is through the
//! compile-time variable `VMMFUZZ_GUEST_KERNEL`. It builds the same kernel
//! without SanitizerCoverage (`VMMFUZZ_GUEST_KERNEL_PLAIN`) and the QEMU
//! plugin that counts that one's blocks under TCG (`VMMFUZZ_QEMU_PLUGIN`).
//!
//! The kernel is built into `<target dir>/guest` with the flags of its own
//! `.cargo/config.toml`, by the command `src/guest_build.rs` makes (the one
//! the runner's injected builds use too).
//! Set `VMMFUZZ_SKIP_GUEST_BUILD=1` to skip it (then pass `--kernel PATH` or
//! `VMMFUZZ_GUEST_KERNEL` at run time).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    for dir in [
        "guest/kernel",
        "guest/core",
        "protocol",
        "host-runner/qemu-plugin",
    ] {
        watch(&root.join(dir));
    }
    let target = outer_target_dir();

    // The default kernel, with SanitizerCoverage's counters.
    let guest = target.join("guest");
    let cmd = guest_build::command(&kernel_dir, &guest, &[]);
    let elf = build(
        "the guest kernel",
        cmd,
        &kernel_dir,
        guest_build::elf_path(&guest),
    );
    println!("cargo:rustc-env=VMMFUZZ_GUEST_KERNEL={}", elf.display());

    // The same kernel without them, and the QEMU plugin that counts its
    // blocks instead under TCG (`src/coverage/blocks.rs`).
    let plain = target.join("guest-plain");
    let mut cmd = guest_build::command(&kernel_dir, &plain, &[]);
    guest_build::without_sancov(&mut cmd);
    let elf = build(
        "the plain guest kernel",
        cmd,
        &kernel_dir,
        guest_build::elf_path(&plain),
    );
    println!(
        "cargo:rustc-env=VMMFUZZ_GUEST_KERNEL_PLAIN={}",
        elf.display()
    );

    // Without the plugin the runner still works: the kernel counts its
    // own edges (edge_counts::settle), so a failed build is a warning.
    let plugin_dir = root.join("host-runner/qemu-plugin");
    let plugin_target = target.join("qemu-plugin");
    let out = guest_build::plugin_command(&plugin_dir, &plugin_target).output();
    let lib = guest_build::plugin_path(&plugin_target);
    match out {
        Ok(out) if out.status.success() && lib.is_file() => {
            println!("cargo:rustc-env=VMMFUZZ_QEMU_PLUGIN={}", lib.display());
        }
        Ok(out) => println!(
            "cargo:warning=building the QEMU plugin in {} failed ({}): the kernel will count \
             its own edges under TCG too (slower); {}",
            plugin_dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(e) => println!("cargo:warning=could not run cargo to build the QEMU plugin: {e}"),
    }
}

/// Runs `cmd`, which builds `what` in `dir` to `product`, and answers
/// `product`; panics with cargo's output when it fails.
fn build(what: &str, mut cmd: Command, dir: &Path, product: PathBuf) -> PathBuf {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo to build {what}: {e}"));
    if !out.status.success() {
        panic!(
            "\n\nbuilding {what} failed ({}), in {}:\n{}\n{}\n\
             (the guest needs the {GUEST_TARGET} target: `rustup target add {GUEST_TARGET}`)\n",
            out.status,
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !product.is_file() {
        panic!(
            "building {what} succeeded but {} is missing:\n{}\n{}",
            product.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    product
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
