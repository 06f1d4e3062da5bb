//! `host-runner fuzz --wire` on the real guest (TCG): a short seeded
//! campaign passes, says what it sent and how the guest answered (on the
//! serial line and in the ring's slots, or the line alone), and
//! leaves nothing behind; a failure (here QEMU killed from outside, the one
//! fault a test can cause on demand in the normal guest) names its burst
//! and saves that burst's bytes, which are the seed's burst exactly. Needs
//! `qemu-system-x86_64` and the built guest. No wall-clock assertions.

use crate::common::qemu_children;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn wire(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args(["--accel", "tcg", "fuzz", "--wire", "--out"])
        .arg(out)
        .args(extra);
    cmd
}

fn text(o: &Output) -> String {
    crate::common::output_text(o)
}

#[test]
fn a_short_wire_campaign_passes_on_the_real_guest() {
    let out = tempfile::tempdir().unwrap();
    let run = wire(out.path(), &["--seed", "0x77", "--sequences", "12"])
        .output()
        .unwrap();
    let t = text(&run);
    assert_eq!(run.status.code(), Some(0), "{t}");
    assert!(
        t.contains("wire: seed 0x77, 12 burst(s)") && t.contains("0 failure(s)"),
        "{t}"
    );
    assert!(t.contains("the guest's replies: BadFrame("), "{t}");
    assert!(t.contains("the memory check clean, Stats as before"), "{t}");
    // The ring (the default transport) got every burst too, under lying
    // headers among them, each refused.
    assert!(
        t.contains(" slot(s); the guest's answers: BadFrame("),
        "no ring slots: {t}"
    );
    assert!(
        t.contains("every ring slot answered (each lying header with BadFrame)"),
        "{t}"
    );
    crate::common::assert_left_nothing(out.path());
}

#[test]
fn on_the_serial_transport_the_bursts_stay_on_the_line() {
    let out = tempfile::tempdir().unwrap();
    let run = wire(out.path(), &["--seed", "0x78", "--sequences", "3"])
        .args(["--transport", "serial"])
        .output()
        .unwrap();
    let t = text(&run);
    assert_eq!(run.status.code(), Some(0), "{t}");
    assert!(t.contains("wire: seed 0x78, 3 burst(s)"), "{t}");
    assert!(!t.contains("in the ring:"), "{t}");
}

#[test]
fn a_failure_names_its_burst_and_saves_its_bytes() {
    let out = tempfile::tempdir().unwrap();
    let mut child = wire(out.path(), &["--seed", "0x78", "--sequences", "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The campaign has started its bursts once it says so on stderr.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("wire: seed 0x78") {
        line.clear();
    }
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let mut killed = false;
    while !killed && started.elapsed() < Duration::from_secs(60) {
        for q in qemu_children(child.id()) {
            // The runner's QEMU child, just read.
            let pid = rustix::process::Pid::from_raw(q as i32).expect("a pid");
            killed |= rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let run = child.wait_with_output().unwrap();
    let t = format!("{}\n{rest}", String::from_utf8_lossy(&run.stdout));
    assert!(killed, "no QEMU to kill: {t}");
    // QEMU killed from outside: the machine's fault, not the VMM's.
    assert_eq!(run.status.code(), Some(3), "{t}");
    let at = t.find("FAILED at burst ").unwrap_or_else(|| panic!("{t}"));
    let k: u64 = t[at + 16..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let path = out.path().join(format!("wire-0x78-{k}.bin"));
    assert!(
        t.contains(&format!("the burst's bytes: {}", path.display())),
        "{t}"
    );
    let saved = std::fs::read(&path).expect("the burst's bytes are saved");
    assert_eq!(saved, host_runner::wire::burst::burst(0x78, k).bytes);
    assert!(
        t.contains("again: host-runner fuzz --wire --seed 0x78"),
        "{t}"
    );
}
