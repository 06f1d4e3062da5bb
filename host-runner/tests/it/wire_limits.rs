//! The frame limits on the real guest: a legal frame of 130,000 one-byte
//! requests is refused undecoded on a small guest, the largest legal frame
//! is answered and one byte more is refused, trailing bytes after a request
//! are refused — and after each the guest answers a valid request. Needs
//! `qemu-system-x86_64`. No wall-clock assertions: timeouts bound hangs.

use std::time::Duration;

use host_runner::{RunnerOptions, Transport, Vm, VmConfig};
use protocol::frame::{self, FrameError, MAX_FRAME};
use protocol::{Error, Request, Response, MAX_BATCH};

/// A guest of `ram_mib` talking over the serial line (raw frames travel
/// there), with time for a 128 KiB frame through the emulated UART.
fn config(ram_mib: u32) -> VmConfig {
    let mut c = host_runner::base_config(&RunnerOptions {
        transport: Transport::Serial,
        ..RunnerOptions::default()
    })
    .expect("QEMU and the built guest kernel");
    c.ram_mib = ram_mib;
    c.request_timeout = Duration::from_secs(300);
    c
}

async fn answers_a_ping(vm: &mut Vm, nonce: u64) {
    assert_eq!(
        vm.call(Request::Ping { nonce }).await.unwrap(),
        Response::Pong { nonce }
    );
}

/// A varint of `width` bytes (2 to 10), none zero.
fn varint(width: usize) -> Vec<u8> {
    let mut v = vec![0xff; width - 1];
    v.push(0x01);
    v
}

/// `Write` by a user of `u64::MAX` bytes (refused `TooLarge` at once), its
/// address a varint of `addr_width` bytes, its seed's first byte `salt`:
/// `22 + addr_width` bytes, none zero.
fn refused_write(addr_width: usize, salt: u8) -> Vec<u8> {
    let mut w = vec![8]; // Request::Write
    w.extend(varint(addr_width));
    w.extend(varint(10)); // len
    let mut seed = varint(10);
    seed[0] = salt | 0x80;
    w.extend(seed);
    w.push(1); // Privilege::User
    w
}

/// A `Batch` of `MAX_BATCH` refused writes whose body is `len` bytes, none
/// zero, its checksum none zero either (so its encoding is the longest).
fn batch_body(len: usize) -> Vec<u8> {
    for salt in 0..=255u8 {
        let mut body = vec![2, 0x80, 0x20]; // Request::Batch, 4096 elements
        assert_eq!(MAX_BATCH, 4096);
        for _ in 0..MAX_BATCH - 1 {
            body.extend(refused_write(10, 0));
        }
        let last = len - body.len() - 22;
        body.extend(refused_write(last, salt));
        assert_eq!(body.len(), len);
        let plain_crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&body);
        if !plain_crc.to_le_bytes().contains(&0) {
            return body;
        }
    }
    unreachable!("some salt gives a checksum without zeros")
}

/// `body` and its checksum framed by hand, whatever its length.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut plain = body.to_vec();
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(body);
    plain.extend_from_slice(&crc.to_le_bytes());
    let mut out = cobs::encode_vec(&plain);
    out.push(0);
    out
}

#[tokio::test]
async fn a_frame_of_130000_one_byte_requests_is_refused_on_an_8_mib_guest() {
    let mut vm = Vm::boot(&config(8)).await.expect("boot");
    let mut body = vec![2]; // Request::Batch
    body.extend([0xd0, 0xf7, 0x07]); // 130,000 elements
    body.resize(body.len() + 130_000, 15); // Request::Stats, one byte each
    let frame = frame::encode_body(&body).expect("a legal frame");
    assert_eq!(
        vm.call_raw(&frame).await.unwrap(),
        Response::Error(Error::TooLarge)
    );
    answers_a_ping(&mut vm, 1).await;
    // A valid batch is still answered in full.
    let answers = vm.batch(vec![Request::Stats; 64]).await.unwrap();
    assert_eq!(answers.len(), 64);
    vm.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_largest_legal_frame_is_answered_and_one_byte_more_is_refused() {
    let mut vm = Vm::boot(&config(128)).await.expect("boot");
    let largest = batch_body(MAX_FRAME - 4);
    let frame = frame::encode_body(&largest).expect("the largest legal frame");
    assert_eq!(frame.len(), frame::MAX_ENCODED_FRAME, "zero free: longest");
    match vm.call_raw(&frame).await.unwrap() {
        Response::Batch(answers) => {
            assert!(!answers.is_empty());
            assert_eq!(answers[0], Response::Error(Error::TooLarge));
        }
        other => panic!("the largest legal frame answered {other:?}"),
    }
    answers_a_ping(&mut vm, 2).await;
    let over = batch_body(MAX_FRAME - 3);
    assert_eq!(frame::encode_body(&over), Err(FrameError::Encode));
    assert_eq!(
        vm.call_raw(&framed(&over)).await.unwrap(),
        Response::BadFrame(FrameError::TooLong)
    );
    answers_a_ping(&mut vm, 3).await;
    vm.shutdown().await.unwrap();
}

#[tokio::test]
async fn bytes_after_a_valid_request_are_refused() {
    let mut vm = Vm::boot(&config(128)).await.expect("boot");
    // Ping { nonce: 9 }, then a Stats tag that belongs to no request.
    let body = [1, 9, 15];
    assert_eq!(
        vm.call_raw(&frame::encode_body(&body).unwrap())
            .await
            .unwrap(),
        Response::BadFrame(FrameError::Decode)
    );
    answers_a_ping(&mut vm, 4).await;
    vm.shutdown().await.unwrap();
}
