//! Invariant 8: a page unmapped must fault on the next touch. The normal
//! guest faults; a guest built with `inject-skip-flush` (every TLB
//! invalidation skipped) still reads the unmapped page through QEMU's stale
//! TLB entry: the guest's stale-translation probe (`protocol::semantics`,
//! **Stale translations**) finds it right after the `Unmap`, before any
//! later touch, and the judge reports invariant 8 at that operation.
//! Needs `qemu-system-x86_64` and the guest's toolchain (the injected build
//! is made here, into its own target directory).

use host_runner::guest_image::{self, build_guest};
use host_runner::judge::{JudgeOptions, JudgedVm};
use host_runner::{Accel, RunnerOptions, Transport, VmConfig};
use protocol::{FaultReason, Privilege, Request, Response};
use trace::FailureKind;

const PAGE: u64 = 0x5000_0000;
const USER: Privilege = Privilege::User;

fn config(kernel: Option<std::path::PathBuf>) -> VmConfig {
    let mut c = host_runner::base_config(&RunnerOptions {
        kernel,
        ..RunnerOptions::default()
    })
    .expect("QEMU and the built guest kernel");
    c.accel = Accel::Tcg;
    c
}

fn read() -> Request {
    Request::Read {
        addr: PAGE,
        len: 64,
        privilege: USER,
    }
}

/// Map, write and read (the TLB now holds the page), unmap: the ops before
/// the read that must fault.
fn prologue() -> Vec<Request> {
    vec![
        Request::map_writable(PAGE, 1, USER),
        Request::Write {
            addr: PAGE,
            len: 64,
            seed: 3,
            privilege: USER,
        },
        read(),
        Request::Unmap {
            addr: PAGE,
            pages: 1,
            privilege: USER,
        },
    ]
}

#[tokio::test]
async fn normal_guest_faults_after_unmap() {
    let mut vm = JudgedVm::start(&config(None), JudgeOptions::default())
        .await
        .expect("boot");
    for req in prologue() {
        vm.step(req).await.expect("judged");
    }
    let got = vm
        .step(read())
        .await
        .expect("the fault is what the model expects");
    assert_eq!(
        got,
        Response::Fault {
            addr: PAGE,
            write: false,
            reason: FaultReason::Unusable
        }
    );
    vm.check().await.expect("clean");
    vm.finish().await.expect("exit 33");
}

#[tokio::test]
async fn skipped_flush_is_caught_by_the_probe_at_the_unmap() {
    let kernel = build_guest(&["inject-skip-flush"]).expect("the injected guest builds");
    assert_ne!(
        Some(kernel.as_path()),
        guest_image::built_kernel(),
        "the injected build has a directory of its own"
    );
    assert!(kernel.to_string_lossy().contains("guest-inject-skip-flush"));
    // Through the ring (the default) and on the serial line alike.
    for transport in [Transport::Ring, Transport::Serial] {
        let mut c = config(Some(kernel.clone()));
        c.transport = transport;
        let mut vm = JudgedVm::start(&c, JudgeOptions::default())
            .await
            .expect("boot the injected guest");
        let mut ops = prologue();
        let unmap = ops.pop().expect("the unmap");
        for req in ops {
            vm.step(req)
                .await
                .expect("judged: the bug does not show yet");
        }
        let f = vm.step(unmap).await.unwrap_err();
        assert_eq!(f.kind, FailureKind::Invariant, "{transport:?}: {f}");
        assert_eq!(f.op_index, Some(3));
        assert!(
            f.message.contains("invariant 8") && f.message.contains(&format!("{PAGE:#x}")),
            "{transport:?}: {}",
            f.message
        );
    }
}
