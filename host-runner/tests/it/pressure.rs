//! Issue 5's integration test: a 32 MiB guest maps and writes more than its
//! RAM, reads everything back, and after `Reset` every frame and swap slot
//! is accounted for (`host_runner::pressure`). Needs QEMU.

use host_runner::{pressure, RunnerOptions, Vm};

#[tokio::test]
async fn more_than_ram_is_written_and_read_back_on_32_mib() {
    let base = host_runner::base_config(&RunnerOptions::default())
        .expect("QEMU and the built guest kernel");
    let mut config = pressure::config(&base);
    config.request_timeout = std::time::Duration::from_secs(60);
    let mut vm = Vm::boot(&config).await.expect("boot");
    let report = pressure::scenario(&mut vm).await.expect("scenario");
    eprintln!("{report:?}");
    pressure::judge(&report).expect("pressure handled");
    vm.shutdown().await.unwrap();
}
