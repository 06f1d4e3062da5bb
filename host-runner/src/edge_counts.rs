//! Who counts the guest's edges: the kernel's own SanitizerCoverage
//! counters, or, under TCG, QEMU (a plugin counting the block leaders of
//! the same kernel built without them: [`crate::coverage::plugin`]).
//!
//! Both give hits per code site of one kernel build, so the corpus, the
//! coverage report and the campaign report work alike; they are not mixed
//! (the two builds are different kernels: `KernelId`). The VMM's code is
//! the same in both, so a trace replays alike on either.

use std::path::Path;

use crate::coverage::BlockCounter;
use crate::error::{Error, Result};
use crate::guest_image;
use crate::qemu::Accel;
use crate::session::VmConfig;

/// `--edge-counts`: who counts the guest's edges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum EdgeCounts {
    /// QEMU under TCG when it can (the default kernel, or a `--kernel`
    /// built without SanitizerCoverage), the kernel's counters otherwise.
    #[default]
    Auto,
    /// QEMU's plugin: TCG only, a kernel without counters of its own.
    Qemu,
    /// The kernel's SanitizerCoverage counters (the default kernel's
    /// build that has them), under any accelerator.
    Sancov,
}

impl std::fmt::Display for EdgeCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EdgeCounts::Auto => "auto",
            EdgeCounts::Qemu => "qemu",
            EdgeCounts::Sancov => "sancov",
        })
    }
}

/// The kernel and counter `config` boots with for its
/// [`VmConfig::edge_counts`], now that its accelerator is chosen. `config.kernel` is the kernel asked for: the
/// default build (with counters) unless `--kernel` named another; the
/// default build gives way to its plain twin when QEMU counts.
pub async fn settle(config: &mut VmConfig) -> Result<()> {
    let choice = config.edge_counts;
    config.block_counter = None;
    let qemu_counts =
        match (choice, config.accel) {
            (EdgeCounts::Sancov, _) | (EdgeCounts::Auto, Accel::Kvm) => return Ok(()),
            (EdgeCounts::Qemu, Accel::Kvm) => return Err(Error::Config(
                "--edge-counts qemu: QEMU counts the guest's blocks under TCG only (--accel tcg)"
                    .into(),
            )),
            (_, Accel::Tcg) => choice,
        };
    let refuse = |why: String| match qemu_counts {
        EdgeCounts::Qemu => Err(Error::Config(format!("--edge-counts qemu: {why}"))),
        _ => Ok(()),
    };
    let Some(plugin) = guest_image::built_plugin() else {
        return refuse("the build made no QEMU plugin (VMMFUZZ_SKIP_GUEST_BUILD?)".into());
    };
    if let Err(why) = loads_plugin(&config.qemu, plugin).await {
        tracing::warn!(
            "edge counts: QEMU cannot load the block-counting plugin, which saves the guest \
             a fifth of its time under TCG ({why})"
        );
        return refuse(format!(
            "{} cannot load the block-counting plugin: {why}",
            config.qemu.display()
        ));
    }
    let default = guest_image::built_kernel();
    let kernel = match guest_image::built_plain_kernel() {
        Some(plain) if default.is_some_and(|d| same_file(&config.kernel, d)) => plain.to_owned(),
        _ => config.kernel.clone(),
    };
    // Read once: whether it counts its own edges, and its block table.
    let elf = std::fs::read(&kernel)
        .map_err(|e| Error::io(format!("reading {}", kernel.display()), e))?;
    if crate::coverage::symbols::has_sancov(&elf) {
        return refuse(format!(
            "{} counts its own edges (SanitizerCoverage); pass a kernel built without it, \
             or --edge-counts sancov",
            kernel.display()
        ));
    }
    let counter = BlockCounter::new(plugin, &kernel, &elf).map_err(runner_error)?;
    tracing::debug!(
        "edge counts: QEMU's plugin, {} leaders of {}",
        counter.leaders(),
        kernel.display()
    );
    config.kernel = kernel;
    config.block_counter = Some(counter);
    Ok(())
}

/// A coverage error as the runner's: reading or writing a file is the
/// environment's fault, anything else (a kernel ELF without code) the
/// input's.
pub(crate) fn runner_error(e: crate::coverage::CoverageError) -> Error {
    match e {
        crate::coverage::CoverageError::Io { what, source } => Error::io(what, source),
        e => Error::Config(format!("QEMU's block counts: {e}")),
    }
}

/// How long the plugin's probe may take (it ends at once unless QEMU hangs).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether `qemu` loads `plugin`: started with it and no arguments, QEMU
/// ends at once, after the plugin refused to install for want of them
/// (its message on stderr proves QEMU loaded it, resolved the plugin API
/// and accepted its version). A QEMU built without plugins, or one that
/// refuses this plugin's API version, ends with a message of its own: the
/// error.
pub async fn loads_plugin(qemu: &Path, plugin: &Path) -> std::result::Result<(), String> {
    use std::process::Stdio;
    let child = tokio::process::Command::new(qemu)
        .args([
            "-M",
            "none",
            "-display",
            "none",
            "-nodefaults",
            "-no-user-config",
        ])
        .arg("-plugin")
        .arg(crate::qemu::command::with_path("file=", plugin, ""))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", qemu.display()))?;
    let out = tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("QEMU did not end within {PROBE_TIMEOUT:?}"))?
        .map_err(|e| format!("waiting for {}: {e}", qemu.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The plugin's message for want of arguments (its `ArgError::Missing`).
    if stderr.contains("vmmfuzz-qemu-plugin: missing argument") {
        Ok(())
    } else {
        Err(stderr
            .trim()
            .lines()
            .next()
            .unwrap_or("no message")
            .to_string())
    }
}

/// Whether `a` and `b` name the same file (a relative and an absolute
/// path alike).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The kernel whose counters `kernel_id` names, to symbolize them with:
/// `explicit` (or the default, [`guest_image::resolve`]), or its twin when
/// it is one of the two builds and the counters are the other's.
pub fn kernel_of(
    explicit: Option<&Path>,
    kernel_id: Option<crate::coverage::KernelId>,
) -> Result<std::path::PathBuf> {
    let asked = guest_image::resolve(explicit)?;
    let built = [
        guest_image::built_kernel(),
        guest_image::built_plain_kernel(),
    ];
    let built: Vec<&Path> = built.into_iter().flatten().collect();
    if built.iter().any(|k| same_file(&asked, k)) {
        for k in built {
            let id = std::fs::read(k)
                .ok()
                .and_then(|d| crate::coverage::symbols::pc_table(&d).ok())
                .map(|t| crate::coverage::KernelId::of_pc_table(&t));
            if id.is_some() && id == kernel_id {
                return Ok(k.to_owned());
            }
        }
    }
    Ok(asked)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn tcg_config() -> Option<VmConfig> {
        let kernel = guest_image::built_kernel()?;
        guest_image::built_plain_kernel()?;
        guest_image::built_plugin()?;
        let qemu = crate::qemu::find_qemu(None).ok()?;
        Some(VmConfig::new(qemu, kernel.to_owned(), Accel::Tcg))
    }

    const SKIPPED: &str =
        "skipped: no QEMU, or the build script built no kernels (VMMFUZZ_SKIP_GUEST_BUILD)";

    /// `config` settled for `choice`.
    async fn settled(config: &mut VmConfig, choice: EdgeCounts) -> Result<()> {
        config.edge_counts = choice;
        settle(config).await
    }

    #[tokio::test]
    async fn under_tcg_the_default_kernel_gives_way_to_its_plain_twin_counted_by_qemu() {
        let Some(mut config) = tcg_config() else {
            eprintln!("{SKIPPED}");
            return;
        };
        let default = config.kernel.clone();
        settled(&mut config, EdgeCounts::Auto).await.unwrap();
        let plain = guest_image::built_plain_kernel().unwrap();
        assert_eq!(config.kernel, plain);
        let counter = config.block_counter.clone().expect("QEMU counts");
        assert!(counter.leaders() > 1000);
        // Settled again it stays (the plain kernel has no counters).
        settled(&mut config, EdgeCounts::Qemu).await.unwrap();
        assert_eq!(config.kernel, plain);
        // Under KVM the kernel asked for counts, or qemu refuses.
        config.kernel = default.clone();
        config.accel = Accel::Kvm;
        settled(&mut config, EdgeCounts::Auto).await.unwrap();
        assert_eq!(
            (&config.kernel, config.block_counter.is_none()),
            (&default, true)
        );
        assert!(settled(&mut config, EdgeCounts::Qemu).await.is_err());
    }

    #[tokio::test]
    async fn sancov_keeps_the_kernels_counters_and_qemu_refuses_a_kernel_that_has_them() {
        let Some(mut config) = tcg_config() else {
            eprintln!("{SKIPPED}");
            return;
        };
        let default = config.kernel.clone();
        settled(&mut config, EdgeCounts::Sancov).await.unwrap();
        assert_eq!(
            (&config.kernel, config.block_counter.is_none()),
            (&default, true)
        );
        // A --kernel with counters of its own (a copy of the default).
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("k");
        std::fs::copy(&default, &copy).unwrap();
        config.kernel = copy.clone();
        settled(&mut config, EdgeCounts::Auto).await.unwrap();
        assert_eq!(
            (&config.kernel, config.block_counter.is_none()),
            (&copy, true)
        );
        let err = settled(&mut config, EdgeCounts::Qemu).await.unwrap_err();
        assert!(err.to_string().contains("counts its own edges"), "{err}");
    }

    #[tokio::test]
    async fn a_qemu_that_cannot_load_the_plugin_leaves_the_kernels_counters() {
        let Some(mut config) = tcg_config() else {
            eprintln!("{SKIPPED}");
            return;
        };
        let plugin = guest_image::built_plugin().unwrap();
        loads_plugin(&config.qemu, plugin)
            .await
            .expect("this QEMU loads it");
        // Not a plugin: QEMU's own message, not the plugin's.
        let why = loads_plugin(&config.qemu, &config.kernel)
            .await
            .unwrap_err();
        assert!(!why.is_empty());
        assert!(loads_plugin(Path::new("/nonexistent/qemu"), plugin)
            .await
            .is_err());
        // A "QEMU" that loads nothing (it ends at once, without a word):
        // auto keeps the kernel's counters, qemu refuses.
        config.qemu = PathBuf::from("/bin/false");
        let default = config.kernel.clone();
        settled(&mut config, EdgeCounts::Auto).await.unwrap();
        assert_eq!(
            (&config.kernel, config.block_counter.is_none()),
            (&default, true)
        );
        let err = settled(&mut config, EdgeCounts::Qemu).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot load the block-counting plugin"),
            "{err}"
        );
    }

    #[test]
    fn saved_coverage_finds_the_build_it_was_read_from() {
        let (Some(default), Some(plain)) = (
            guest_image::built_kernel(),
            guest_image::built_plain_kernel(),
        ) else {
            eprintln!("{SKIPPED}");
            return;
        };
        let id = |k: &Path| {
            let t = crate::coverage::symbols::pc_table(&std::fs::read(k).unwrap()).unwrap();
            crate::coverage::KernelId::of_pc_table(&t)
        };
        assert_ne!(id(plain), id(default));
        for asked in [None, Some(default), Some(plain)] {
            assert_eq!(kernel_of(asked, Some(id(plain))).unwrap(), plain);
            assert_eq!(kernel_of(asked, Some(id(default))).unwrap(), default);
        }
        // Another kernel is symbolized with itself.
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("k");
        std::fs::copy(default, &other).unwrap();
        assert_eq!(kernel_of(Some(&other), Some(id(plain))).unwrap(), other);
    }
}
