//! The sampler against a fake monitor: a stack of three frames in fake
//! guest memory, every `stop` followed by a `cont`, a new connection when
//! a guest ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use super::*;

const RIP: u64 = 0xffff_ffff_8010_0010;
const FRAME0: u64 = 0xffff_ffff_8019_7c00;
const FRAME1: u64 = 0xffff_ffff_8019_7c40;
const RET0: u64 = 0xffff_ffff_8010_2222;
const RET1: u64 = 0xffff_ffff_8010_3333;

/// What the fake guest's memory holds at each frame: the saved RBP (0
/// ends the chain) and the return address.
fn memory() -> HashMap<u64, (u64, u64)> {
    HashMap::from([(FRAME0, (FRAME1, RET0)), (FRAME1, (0x10, RET1))])
}

/// The fake's answer to `command`, echo included, with the prompt.
fn answer(command: &str, halted: bool, paused: bool) -> String {
    let mem = memory();
    let body = match command {
        "info status" if paused => "VM status: paused\r\n".to_string(),
        "info status" => "VM status: running\r\n".to_string(),
        "info registers" => format!(
            "\r\nCPU#0\r\nRAX=0 RBP={FRAME0:016x} RSP={:016x}\r\n\
             RIP={RIP:016x} RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT={}\r\n",
            FRAME0 - 0x40,
            u8::from(halted)
        ),
        x if x.starts_with("x /2gx ") => {
            let addr = u64::from_str_radix(x.trim_start_matches("x /2gx 0x"), 16).unwrap();
            match mem.get(&addr) {
                Some((next, ret)) => format!("{addr:016x}: 0x{next:016x} 0x{ret:016x}\r\n"),
                None => format!("{addr:016x}: Cannot access memory\r\n"),
            }
        }
        _ => String::new(),
    };
    format!("{command}\x1b[K\r\n{body}(qemu) ")
}

/// A fake monitor at `path` that serves `guests` connections one after
/// the other, each for `commands` commands; logs what it was sent.
fn fake_monitor(
    path: &std::path::Path,
    guests: usize,
    commands: usize,
    halted: bool,
    paused: bool,
) -> Arc<Mutex<Vec<String>>> {
    let listener = UnixListener::bind(path).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    tokio::spawn(async move {
        for _ in 0..guests {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            write.write_all(b"QEMU monitor\r\n(qemu) ").await.unwrap();
            let mut lines = BufReader::new(read).lines();
            for _ in 0..commands {
                let Ok(Some(line)) = lines.next_line().await else {
                    break;
                };
                let reply = answer(&line, halted, paused);
                seen.lock().unwrap().push(line);
                if write.write_all(reply.as_bytes()).await.is_err() {
                    break;
                }
            }
        }
    });
    log
}

async fn sample_for(path: PathBuf, ms: u64) -> Samples {
    let sampler = Sampler::start(path, 1000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    sampler.finish().await
}

#[tokio::test]
async fn stacks_follow_the_frame_chain_and_every_stop_is_followed_by_cont() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.sock");
    let log = fake_monitor(&path, 1, usize::MAX, false, false);
    let samples = sample_for(path, 150).await;
    assert!(samples.total() > 0, "{samples:?}");
    assert_eq!(samples.stacks.len(), 1, "{samples:?}");
    assert_eq!(
        samples.stacks.keys().next().unwrap(),
        &vec![RIP, RET0, RET1]
    );
    assert_eq!(samples.connections, 1);
    let log = log.lock().unwrap();
    let stops = log.iter().filter(|c| *c == "stop").count();
    let conts = log.iter().filter(|c| *c == "cont").count();
    assert!(stops > 0);
    assert_eq!(stops, conts, "{log:?}");
    // The chain ended at a saved RBP outside the kernel half: no read there.
    assert!(!log.iter().any(|c| c == "x /2gx 0x10"));
}

#[tokio::test]
async fn halted_and_paused_guests_are_counted_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.sock");
    fake_monitor(&path, 1, usize::MAX, true, false);
    let samples = sample_for(path, 100).await;
    assert!(
        samples.halted > 0 && samples.stacks.is_empty(),
        "{samples:?}"
    );

    let path = dir.path().join("p.sock");
    let log = fake_monitor(&path, 1, usize::MAX, false, true);
    let samples = sample_for(path, 100).await;
    assert!(
        samples.paused > 0 && samples.stacks.is_empty(),
        "{samples:?}"
    );
    // A guest someone else paused is never resumed by the sampler.
    assert!(!log.lock().unwrap().iter().any(|c| c == "cont"));
}

#[tokio::test]
async fn a_guest_that_ends_is_counted_and_the_next_one_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sock");
    // Each guest answers two whole samples and part of a third.
    fake_monitor(&path, 2, 2 * 6 + 3, false, false);
    let samples = sample_for(path, 300).await;
    assert_eq!(samples.connections, 2, "{samples:?}");
    assert_eq!(samples.guests_ended, 2, "{samples:?}");
    assert_eq!(samples.stacks.values().sum::<u64>(), 4, "{samples:?}");
    assert!(samples.errors.is_empty(), "{samples:?}");
}

#[tokio::test]
async fn no_monitor_no_samples() {
    let dir = tempfile::tempdir().unwrap();
    let samples = sample_for(dir.path().join("none.sock"), 50).await;
    assert_eq!((samples.total(), samples.connections), (0, 0));
}
