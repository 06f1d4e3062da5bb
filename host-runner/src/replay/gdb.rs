//! `replay --gdb`: a second run of the trace on a guest with QEMU's gdb
//! stub on a unix socket (no network port), paused before the failing
//! operation, with the exact gdb command line to attach.

use trace::{Outcome, Trace};

use super::{config_for, ReplayOptions};
use crate::error::{Error, Result};
use crate::judge::JudgedVm;
use crate::qemu::shell_words;
use crate::session::VmConfig;

/// The gdb command line that attaches to the stub at `socket`, with the
/// kernel's symbols.
pub fn gdb_command(kernel: &std::path::Path, socket: &std::path::Path) -> String {
    shell_words(&[
        "gdb".into(),
        kernel.as_os_str().to_owned(),
        "-ex".into(),
        format!("target remote {}", socket.display()).into(),
    ])
}

/// Boots a guest with a gdb stub, runs the trace's operations before
/// `stop_before` (judged), pauses the guest, prints how to attach, and
/// waits for Ctrl-C (which ends QEMU).
pub async fn pause_for_gdb(
    config: &VmConfig,
    trace: &Trace,
    opts: &ReplayOptions,
    stop_before: usize,
    print: impl Fn(&str),
) -> Result<()> {
    // Named for its owner: a runner killed outright (SIGKILL) leaves it,
    // and the next runner's sweep removes it.
    let dir = crate::session::owned_dir("vmmfuzz-gdb-")?;
    let socket = dir.path().join("gdb.sock");
    let mut config = config_for(config, trace);
    config.gdb_socket = Some(socket.clone());
    let mut prefix = trace.clone();
    prefix.remove_ops(stop_before.min(trace.len())..trace.len());
    let mut vm = JudgedVm::start(&config, opts.judge_options())
        .await
        .map_err(|f| Error::MemoryCheck(format!("booting for gdb: {f}")))?;
    let run = trace::RunOptions {
        check_every: opts.check_every,
        final_check: false,
        predict: false,
    };
    let report = trace::run(&prefix, &mut vm, run, &mut |_| {}).await;
    if let Outcome::Failed(f) = &report.outcome {
        print(&format!("(the gdb run failed earlier, at: {f})\n"));
    }
    vm.vm().stop().await?;
    let next = trace
        .entries
        .get(stop_before)
        .map(|e| trace::format::write_entry(&trace::Entry::from(e.op.clone())))
        .unwrap_or_else(|| "(end of trace)".into());
    print(&format!(
        "\nQEMU is paused before operation {stop_before}: {next}\n\
         attach with:\n  {}\n\
         (`continue` in gdb runs the guest; the runner waits: Ctrl-C ends QEMU)\n",
        gdb_command(&config.kernel, &socket)
    ));
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Error::io("waiting for Ctrl-C", e))?;
    drop(vm);
    drop(dir);
    Ok(())
}
