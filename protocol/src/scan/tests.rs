use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::{AreaType, Privilege};

fn samples() -> Vec<Request> {
    let k = Privilege::Kernel;
    let big = u64::MAX;
    vec![
        Request::Hello,
        Request::Ping { nonce: big },
        Request::Batch(vec![Request::Stats, Request::Batch(vec![])]),
        Request::Panic { privilege: k },
        Request::Shutdown,
        Request::Map {
            addr: big,
            pages: big,
            writable: true,
            executable: false,
            contiguous: true,
            privilege: k,
        },
        Request::Unmap {
            addr: big,
            pages: big,
            privilege: k,
        },
        Request::Convert {
            addr: big,
            pages: big,
            to: AreaType::Unusable,
            privilege: k,
        },
        Request::Write {
            addr: big,
            len: big,
            seed: big,
            privilege: k,
        },
        Request::Read {
            addr: big,
            len: big,
            privilege: k,
        },
        Request::Query {
            addr: big,
            pages: big,
            privilege: k,
        },
        Request::AllocFrames {
            count: big,
            contiguous: true,
            privilege: k,
        },
        Request::FreeFrames {
            frame: big,
            count: big,
            privilege: k,
        },
        Request::Valloc {
            pages: big,
            privilege: Privilege::User,
        },
        Request::Vfree {
            addr: big,
            pages: big,
            privilege: k,
        },
        Request::Stats,
        Request::Reset { privilege: k },
        Request::MapFile {
            addr: big,
            pages: big,
            file: u8::MAX,
            file_page: big,
            privilege: k,
        },
        Request::Evict {
            addr: big,
            pages: big,
            privilege: k,
        },
        Request::Kmalloc {
            size: big,
            align: big,
            privilege: k,
        },
        Request::Kfree {
            addr: big,
            privilege: k,
        },
        Request::HeapScavenge { privilege: k },
        Request::CreateSpace { privilege: k },
        Request::SwitchSpace {
            space: u16::MAX,
            privilege: k,
        },
        Request::DestroySpace {
            space: u16::MAX,
            privilege: k,
        },
        Request::Share {
            addr: u64::MAX,
            pages: u64::MAX,
            space: u16::MAX,
            to: u64::MAX,
            privilege: k,
        },
    ]
}

#[test]
fn the_scan_agrees_with_postcard_on_every_variant() {
    for (i, sample) in samples().iter().enumerate() {
        // Exhaustive on purpose: a new variant must be added to the samples.
        let index = match sample {
            Request::Hello => 0,
            Request::Ping { .. } => 1,
            Request::Batch(_) => 2,
            Request::Panic { .. } => 3,
            Request::Shutdown => 4,
            Request::Map { .. } => 5,
            Request::Unmap { .. } => 6,
            Request::Convert { .. } => 7,
            Request::Write { .. } => 8,
            Request::Read { .. } => 9,
            Request::Query { .. } => 10,
            Request::AllocFrames { .. } => 11,
            Request::FreeFrames { .. } => 12,
            Request::Valloc { .. } => 13,
            Request::Vfree { .. } => 14,
            Request::Stats => 15,
            Request::Reset { .. } => 16,
            Request::MapFile { .. } => 17,
            Request::Evict { .. } => 18,
            Request::Kmalloc { .. } => 19,
            Request::Kfree { .. } => 20,
            Request::HeapScavenge { .. } => 21,
            Request::CreateSpace { .. } => 22,
            Request::SwitchSpace { .. } => 23,
            Request::DestroySpace { .. } => 24,
            Request::Share { .. } => 25,
        };
        assert_eq!(index, i, "request samples out of order");
        let bytes = postcard::to_allocvec(sample).unwrap();
        assert_eq!(scan(&bytes), Scan::Fits(bytes.len()), "{sample:?}");
        let mut frame = frame::encode(sample).unwrap();
        frame.pop();
        assert_eq!(decode_request(&mut frame), Ok(sample.clone()));
    }
}

/// `Batch(vec![Batch(vec![… Hello])])` nested `n` deep.
fn nested(n: usize) -> Vec<u8> {
    let mut body: Vec<u8> = [BATCH as u8, 1].repeat(n);
    body.push(0);
    body
}

#[test]
fn nesting_is_limited_before_decoding() {
    let ok = nested(MAX_BATCH_DEPTH);
    assert_eq!(scan(&ok), Scan::Fits(ok.len()));
    assert_eq!(scan(&nested(MAX_BATCH_DEPTH + 1)), Scan::TooDeep);
    assert_eq!(scan(&nested(60_000)), Scan::TooDeep);
}

/// The body of a `Batch` of `n` one-byte `Stats` requests.
fn stats_batch(n: usize) -> Vec<u8> {
    let mut body = postcard::to_allocvec(&Request::Batch(vec![])).unwrap();
    body.truncate(1);
    let mut count = [0u8; 10];
    body.extend_from_slice(postcard::to_slice(&(n as u64), &mut count).unwrap());
    body.resize(body.len() + n, 15);
    body
}

#[test]
fn a_batch_of_130000_one_byte_requests_is_refused_undecoded() {
    let body = stats_batch(130_000);
    assert!(body.len() + 4 <= frame::MAX_FRAME, "it is a legal frame");
    assert_eq!(scan(&body), Scan::TooMany);
    let mut frame = frame::encode_body(&body).unwrap();
    frame.pop();
    assert_eq!(decode_request(&mut frame), Err(Refusal::TooLarge));
    assert_eq!(Refusal::TooLarge.answer(), Response::Error(Error::TooLarge));
    // Refused on the count alone, before any element is read.
    assert_eq!(scan(&stats_batch(MAX_BATCH + 1)[..4]), Scan::TooMany);
}

#[test]
fn max_batch_requests_decode_and_one_more_does_not() {
    let full = stats_batch(MAX_BATCH);
    assert_eq!(scan(&full), Scan::Fits(full.len()));
    assert_eq!(
        postcard::from_bytes::<Request>(&full).unwrap(),
        Request::Batch(vec![Request::Stats; MAX_BATCH])
    );
    assert_eq!(scan(&stats_batch(MAX_BATCH + 1)), Scan::TooMany);
}

#[test]
fn nested_batches_count_toward_the_limit() {
    let half = Request::Batch(vec![Request::Stats; MAX_BATCH / 2]);
    // The top batch's 2 elements and the nested ones' 4096: one too many.
    let over = Request::Batch(vec![half.clone(), half.clone()]);
    assert_eq!(batch_elements(&over), MAX_BATCH + 2);
    let body = postcard::to_allocvec(&over).unwrap();
    assert_eq!(scan(&body), Scan::TooMany);
    let under = Request::Batch(vec![half, Request::Stats]);
    assert_eq!(batch_elements(&under), MAX_BATCH / 2 + 2);
    let body = postcard::to_allocvec(&under).unwrap();
    assert_eq!(scan(&body), Scan::Fits(body.len()));
    assert_eq!(batch_elements(&Request::Stats), 0);
}

#[test]
fn trailing_bytes_after_a_request_are_refused() {
    let mut body = postcard::to_allocvec(&Request::Ping { nonce: 7 }).unwrap();
    body.push(15);
    assert_eq!(scan(&body), Scan::Fits(body.len() - 1));
    let mut frame = frame::encode_body(&body).unwrap();
    frame.pop();
    assert_eq!(
        decode_request(&mut frame),
        Err(Refusal::Frame(FrameError::Decode))
    );
}
