//! The real guest under QEMU: handshake, batches, damaged frames, panics,
//! QMP, and the runner binary. Needs `qemu-system-x86_64` (CI installs it).
//! No wall-clock assertions: timeouts only bound hangs.

use crate::common::{alive, qemu_children};
use std::time::Duration;

use host_runner::accel::{self, Accel};
use host_runner::qemu::LaunchError;
use host_runner::rpc::RpcError;
use host_runner::{smoke, AccelChoice, Error, QemuExit, RunnerOptions, Vm, VmConfig};
use protocol::frame::{self, FrameError};
use protocol::{Privilege, Request, Response, PROTOCOL_VERSION};

fn config(accel: Accel) -> VmConfig {
    let mut c = host_runner::base_config(&RunnerOptions::default())
        .expect("QEMU and the built guest kernel");
    c.accel = accel;
    c
}

async fn boot() -> Vm {
    Vm::boot(&config(Accel::Tcg)).await.expect("boot")
}

#[tokio::test]
async fn handshake_and_batch() {
    let mut vm = boot().await;
    let hello = vm.hello().await.unwrap();
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    let ram = vm.config().ram_bytes();
    assert!(hello.ram_bytes > 0 && hello.ram_bytes <= ram, "{hello:?}");
    assert!(hello.page_table_root < ram && hello.page_table_root % 4096 == 0);
    assert!(hello.total_frames > 0 && hello.boot_free_frames <= hello.total_frames);

    assert_eq!(
        vm.call(Request::Ping { nonce: 77 }).await.unwrap(),
        Response::Pong { nonce: 77 }
    );
    let mut requests: Vec<Request> = (0..100).map(|nonce| Request::Ping { nonce }).collect();
    requests.push(Request::Batch(vec![]));
    requests.push(Request::Stats);
    let answers = vm.batch(requests).await.unwrap();
    assert_eq!(answers.len(), 102);
    for (nonce, a) in answers.iter().take(100).enumerate() {
        assert_eq!(
            *a,
            Response::Pong {
                nonce: nonce as u64
            }
        );
    }
    assert_eq!(answers[100], Response::Error(protocol::Error::NestedBatch));
    match &answers[101] {
        Response::Stats(s) => assert_eq!(s.total_frames, hello.total_frames),
        other => panic!("{other:?}"),
    }
    // A user may not ask for a panic; the guest refuses and goes on.
    assert_eq!(
        vm.call(Request::Panic {
            privilege: Privilege::User
        })
        .await
        .unwrap(),
        Response::Error(protocol::Error::PermissionDenied)
    );
    assert_eq!(vm.shutdown().await.unwrap(), QemuExit::Shutdown);
}

/// The ring's `spin` is the host's to set (`protocol::ring`, rule 4):
/// told to spin without end, the guest stays awake between requests (its
/// default spin would have put it to sleep within a millisecond); told 0,
/// it ends the look under way and sleeps; a request then still wakes it.
#[tokio::test]
async fn the_guest_spins_for_as_long_as_the_host_says() {
    let mut c = config(Accel::Tcg);
    c.shared_ram = true;
    let mut vm = Vm::boot(&c).await.expect("boot");
    vm.hello().await.unwrap();
    assert!(vm.uses_ring(), "shared RAM and the default transport");
    let ping = |nonce| Request::Ping { nonce };
    assert!(vm.set_guest_spin(u64::MAX));
    assert_eq!(vm.call(ping(1)).await.unwrap(), Response::Pong { nonce: 1 });
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            vm.guest_sleeps(),
            Some(false),
            "asleep with no end to its spin"
        );
    }
    assert!(vm.set_guest_spin(0));
    let asleep = async {
        while vm.guest_sleeps() != Some(true) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), asleep)
        .await
        .expect("a spin of 0 ends the guest's look: it sleeps");
    assert_eq!(vm.call(ping(2)).await.unwrap(), Response::Pong { nonce: 2 });
    assert_eq!(vm.shutdown().await.unwrap(), QemuExit::Shutdown);
}

#[tokio::test]
async fn damaged_frame_is_answered_and_the_guest_goes_on() {
    let mut vm = boot().await;
    let mut bytes = frame::encode(&Request::Ping {
        nonce: 0x0102_0304_0506,
    })
    .unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    assert_ne!(bytes[mid], 0, "the damage must keep the frame in one piece");
    match vm.call_raw(&bytes).await.unwrap() {
        Response::BadFrame(FrameError::Checksum { .. } | FrameError::Cobs) => {}
        other => panic!("damaged frame answered with {other:?}"),
    }
    // Garbage that is not even COBS, and a frame too short for its checksum.
    match vm.call_raw(&[0x05, 0xff, 0x00]).await.unwrap() {
        Response::BadFrame(_) => {}
        other => panic!("{other:?}"),
    }
    match vm.call_raw(&[0x02, 0x01, 0x00]).await.unwrap() {
        Response::BadFrame(FrameError::TooShort { .. } | FrameError::Cobs) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        vm.call(Request::Ping { nonce: 5 }).await.unwrap(),
        Response::Pong { nonce: 5 }
    );
    vm.shutdown().await.unwrap();
}

#[tokio::test]
async fn guest_panic_is_reported_with_location_and_exit_status() {
    let mut vm = boot().await;
    let err = vm
        .call(Request::Panic {
            privilege: Privilege::Kernel,
        })
        .await
        .unwrap_err();
    let text = err.to_string();
    eprintln!("{text}");
    match err {
        RpcError::GuestPanic { report, exit } => {
            assert!(
                report.message.contains("panic requested by host"),
                "{report:?}"
            );
            assert!(!report.file.is_empty() && report.line > 0, "{report:?}");
            assert_eq!(exit, QemuExit::Panic);
            assert_eq!(exit.code(), Some(65));
            let location = format!("{}:{}:{}", report.file, report.line, report.column);
            assert!(text.contains(&location) && text.contains("65"), "{text}");
        }
        other => panic!("expected a guest panic, got {other}"),
    }
    // The line is closed now; further calls say the guest died of its panic.
    match vm.call(Request::Ping { nonce: 1 }).await.unwrap_err() {
        RpcError::GuestPanic { exit, .. } => assert_eq!(exit, QemuExit::Panic),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn qmp_stop_dump_cont_quit() {
    let mut vm = boot().await;
    let hello = vm.hello().await.unwrap();
    assert!(vm.query_status().await.unwrap().running);
    vm.stop().await.unwrap();
    assert!(!vm.query_status().await.unwrap().running);
    let regs = vm.hmp("info registers").await.unwrap();
    let cr3 = regs
        .split_whitespace()
        .find_map(|w| w.strip_prefix("CR3="))
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .unwrap_or_else(|| panic!("no CR3 in {regs}"));
    assert_eq!(cr3 & !0xfff, hello.page_table_root);
    let ram = oracle::ImageMemory {
        base: 0,
        bytes: vm.dump_ram().await.unwrap(),
    };
    assert_eq!(ram.bytes.len() as u64, vm.config().ram_bytes());
    let entry = smoke::check_direct_map_entry(&ram, hello.page_table_root, hello.direct_map_offset)
        .unwrap();
    assert!(hello.reserved_pml4_slots.contains(&(entry.slot as u16)));
    vm.cont().await.unwrap();
    assert_eq!(
        vm.call(Request::Ping { nonce: 2 }).await.unwrap(),
        Response::Pong { nonce: 2 }
    );
    assert_eq!(vm.quit().await.unwrap(), QemuExit::Quit);
}

#[tokio::test]
async fn smoke_passes() {
    let report = smoke::run(&config(Accel::Tcg)).await.unwrap();
    assert_eq!(report.protocol_version, PROTOCOL_VERSION);
    assert!(report.to_string().starts_with("smoke: ok"));
}

#[tokio::test]
async fn kvm_boots_when_usable() {
    if let Err(why) = accel::kvm_usable() {
        eprintln!("skipped: KVM not usable here ({why})");
        return;
    }
    let mut c = config(Accel::Kvm);
    // The first request waits for the end of boot, which under a
    // software-nested KVM (shadow paging: every page-table write of the
    // heap's set-up traps) took 8 s on a loaded machine: this test asks
    // whether KVM works, not how fast.
    c.request_timeout = std::time::Duration::from_secs(120);
    let mut vm = Vm::boot(&c).await.unwrap();
    assert_eq!(
        vm.call(Request::Ping { nonce: 3 }).await.unwrap(),
        Response::Pong { nonce: 3 }
    );
    vm.shutdown().await.unwrap();
}

#[tokio::test]
async fn dropping_the_vm_kills_qemu() {
    let vm = boot().await;
    let dir = vm.dir().to_owned();
    let pid = vm.qemu_pid().expect("QEMU runs");
    assert!(alive(pid));
    drop(vm);
    assert!(dies(pid), "QEMU {pid} survived its Vm");
    assert!(!dir.exists(), "the private directory was not removed");
}

/// Whether `pid` stops running within five seconds.
fn dies(pid: u32) -> bool {
    for _ in 0..100 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn runner_binary_runs_smoke_by_default() {
    // The default is the CI job: smoke first, then the corpus (no fuzzing
    // here, to keep the test short).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg", "--fuzz-secs", "0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("smoke: ok"),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ctrl_c_kills_qemu() {
    let (mut runner, qemu) = long_bench();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &runner.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = runner.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    for p in qemu {
        assert!(dies(p), "QEMU {p} survived the runner's Ctrl-C");
    }
}

#[tokio::test]
async fn auto_accel_measures_once_then_uses_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("accel.json");
    let base = config(Accel::Tcg);
    let first = accel::resolve(AccelChoice::Auto, &base, "test-qemu", Some(&cache), false)
        .await
        .unwrap();
    if accel::kvm_usable().is_err() {
        assert_eq!(first.accel, Accel::Tcg);
        assert!(first.reason.contains("KVM not usable"), "{}", first.reason);
        return;
    }
    // Both were measured, and the figures say why.
    let r = &first.reason;
    assert!(r.contains("tcg: boot"), "{r}");
    assert!(
        r.contains("kvm: boot") || r.contains("kvm did not finish") || r.contains("KVM failed"),
        "{r}"
    );
    let again = accel::resolve(AccelChoice::Auto, &base, "test-qemu", Some(&cache), false)
        .await
        .unwrap();
    assert_eq!(again.accel, first.accel);
    assert!(again.reason.contains("cached"), "{}", again.reason);
    assert!(std::fs::read_to_string(&cache)
        .unwrap()
        .contains("test-qemu"));
}

#[tokio::test]
async fn explicit_accels_need_no_measurement() {
    let base = config(Accel::Tcg);
    let v = accel::resolve(AccelChoice::Tcg, &base, "q", None, false)
        .await
        .unwrap();
    assert_eq!(v.accel, Accel::Tcg);
    match accel::resolve(AccelChoice::Kvm, &base, "q", None, false).await {
        Ok(v) => assert_eq!(v.accel, Accel::Kvm),
        Err(e) => assert!(
            matches!(e, Error::Launch(LaunchError::AccelUnavailable { .. })),
            "{e}"
        ),
    }
}

#[tokio::test]
async fn qemu_failing_to_start_the_kernel_is_reported_with_its_stderr() {
    let bogus = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bogus.path(), b"not an ELF").unwrap();
    let mut c = config(Accel::Tcg);
    c.kernel = bogus.path().to_owned();
    match Vm::boot(&c).await.unwrap_err() {
        Error::Launch(LaunchError::ExitedBeforeReady { exit, stderr }) => {
            assert!(matches!(exit, QemuExit::Failed(_)), "{exit}");
            assert!(!stderr.trim().is_empty(), "QEMU's complaint is kept");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn runner_names_the_package_when_qemu_is_missing() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--qemu", "/nonexistent/qemu-system-x86_64", "smoke"])
        .output()
        .unwrap();
    // 3: an environment or tool error, not a VMM failure.
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("apt-get install qemu-system-x86"),
        "{stderr}"
    );
}

#[test]
fn killing_the_runner_outright_kills_qemu() {
    let (mut runner, qemu) = long_bench();
    runner.kill().unwrap(); // SIGKILL: no destructor runs
    runner.wait().unwrap();
    for p in qemu {
        assert!(dies(p), "QEMU {p} outlived a killed runner");
    }
}

/// A runner busy with a long benchmark, and its QEMU processes once they run.
fn long_bench() -> (std::process::Child, Vec<u32>) {
    let runner = std::process::Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args([
            "bench",
            "--accel",
            "tcg",
            "--runs",
            "1000",
            "--round-trips",
            "100000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let qemu = wait_for_qemu(runner.id());
    (runner, qemu)
}

fn wait_for_qemu(runner: u32) -> Vec<u32> {
    for _ in 0..200 {
        let qemu = qemu_children(runner);
        if !qemu.is_empty() {
            return qemu;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the runner started no QEMU");
}

#[tokio::test]
async fn shared_ram_agrees_with_pmemsave() {
    let mut c = config(Accel::Tcg);
    c.shared_ram = true;
    let mut vm = Vm::boot(&c).await.unwrap();
    let hello = vm.hello().await.unwrap();
    // Give the guest something to hold: a mapped, written page.
    let addr = 0x4000_0000;
    let answers = vm
        .batch(vec![
            Request::map_writable(addr, 4, Privilege::User),
            Request::Write {
                addr,
                len: 4 * 4096,
                seed: 11,
                privilege: Privilege::User,
            },
        ])
        .await
        .unwrap();
    assert_eq!(answers, vec![Response::Done, Response::Done]);
    vm.stop().await.unwrap();
    let ram = vm.shared_ram().expect("booted with shared RAM");
    assert_eq!(ram.len(), c.ram_bytes());
    let dump = vm.dump_ram().await.unwrap();
    // Compare the low 16 MiB (kernel, tables, bitmap, first data frames).
    let n = 16 << 20;
    let mut shared = vec![0u8; n];
    ram.read_into(0, &mut shared).unwrap();
    // They agree everywhere but the firmware's ROM alias below 1 MiB, where
    // the guest (and pmemsave) see the ROM and the file holds the RAM
    // underneath.
    let differ: Vec<usize> = (0..n).filter(|&i| shared[i] != dump[i]).collect();
    assert!(
        differ.iter().all(|i| (0xe0000..0x100000).contains(i)),
        "shared RAM and pmemsave differ outside the ROM alias, first at {:#x}",
        differ
            .iter()
            .find(|i| !(0xe0000..0x100000).contains(*i))
            .unwrap()
    );
    // The oracle reads it through its GuestMemory trait.
    let mem: &dyn oracle::GuestMemory = ram;
    let slot = (hello.direct_map_offset >> 39) & 511;
    let mut entry = [0u8; 8];
    mem.read(hello.page_table_root + slot * 8, &mut entry)
        .unwrap();
    assert_eq!(
        u64::from_le_bytes(entry) & 1,
        1,
        "direct-map PML4 entry present"
    );
    vm.cont().await.unwrap();
    vm.shutdown().await.unwrap();
}
