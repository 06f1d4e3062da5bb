use super::*;
use crate::*;
use alloc::borrow::Cow;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

fn every_request() -> Vec<Request> {
    let p = Privilege::User;
    vec![
        Request::Hello,
        Request::Ping { nonce: u64::MAX },
        Request::Batch(vec![Request::Ping { nonce: 1 }, Request::Stats]),
        Request::Panic {
            privilege: Privilege::Kernel,
        },
        Request::Shutdown,
        Request::Map {
            addr: 0x1234_5000,
            pages: 8448,
            writable: true,
            executable: false,
            contiguous: false,
            privilege: p,
        },
        Request::Unmap {
            addr: 0x1000,
            pages: 1,
            privilege: p,
        },
        Request::Convert {
            addr: 0x1230_0000,
            pages: 131_072,
            to: AreaType::Unusable,
            privilege: p,
        },
        Request::Convert {
            addr: 0,
            pages: 1,
            to: AreaType::UsableRam,
            privilege: Privilege::Kernel,
        },
        Request::Write {
            addr: 0x1234_5001,
            len: 77,
            seed: 9,
            privilege: p,
        },
        Request::Read {
            addr: 0x1234_5001,
            len: 77,
            privilege: p,
        },
        Request::Query {
            addr: 0x2000,
            pages: 3,
            privilege: p,
        },
        Request::AllocFrames {
            count: 5,
            contiguous: true,
            privilege: Privilege::Kernel,
        },
        Request::FreeFrames {
            frame: 0x20_0000,
            count: 5,
            privilege: Privilege::Kernel,
        },
        Request::Valloc {
            pages: 4,
            privilege: Privilege::Kernel,
        },
        Request::Vfree {
            addr: 0xffff_c080_0000_0000,
            pages: 4,
            privilege: Privilege::Kernel,
        },
        Request::Stats,
        Request::Reset {
            privilege: Privilege::Kernel,
        },
        Request::MapFile {
            addr: 0x1234_5000,
            pages: 16,
            file: 2,
            file_page: 3,
            privilege: p,
        },
        Request::Evict {
            addr: 0x1234_5000,
            pages: 16,
            privilege: p,
        },
        Request::Kmalloc {
            size: 100,
            align: 64,
            privilege: Privilege::Kernel,
        },
        Request::Kfree {
            addr: 0xffff_c000_0000_0040,
            privilege: Privilege::Kernel,
        },
        Request::HeapScavenge {
            privilege: Privilege::Kernel,
        },
        Request::CreateSpace {
            privilege: Privilege::Kernel,
        },
        Request::SwitchSpace {
            space: 3,
            privilege: Privilege::User,
        },
        Request::DestroySpace {
            space: u16::MAX,
            privilege: Privilege::Kernel,
        },
        Request::Share {
            addr: 0x7fff_ffff_f000,
            pages: 512,
            space: 15,
            to: 0x1000,
            privilege: Privilege::Kernel,
        },
    ]
}

fn every_response() -> Vec<Response> {
    vec![
        Response::Hello(alloc::boxed::Box::new(Hello {
            protocol_version: PROTOCOL_VERSION,
            ram_bytes: 128 << 20,
            total_frames: 32768,
            boot_free_frames: 30000,
            page_table_root: 0x10_1000,
            max_spaces: 16,
            direct_map_offset: 0xffff_8000_0000_0000,
            frame_bitmap: PhysRange {
                start: 0x20_0000,
                end: 0x20_1000,
            },
            boot_reserved: vec![PhysRange {
                start: 0,
                end: 0x40_0000,
            }],
            kernel_image: PhysRange {
                start: 0x10_0000,
                end: 0x20_0000,
            },
            user_space: VirtRange {
                start: 0,
                end: 0x0000_8000_0000_0000,
            },
            kernel_space: VirtRange {
                start: 0xffff_c000_0000_0000,
                end: 0xffff_ff80_0000_0000,
            },
            heap: VirtRange {
                start: 0xffff_c000_0000_0000,
                end: 0xffff_c000_0200_0000,
            },
            valloc: VirtRange {
                start: 0xffff_c080_0000_0000,
                end: 0xffff_c080_4000_0000,
            },
            reserved_pml4_slots: vec![256, 511],
            files: vec![FileInfo {
                pages: 16,
                image: PhysRange {
                    start: 0x700_0000,
                    end: 0x701_0000,
                },
            }],
            swap: PhysRange {
                start: 0x40_0000,
                end: 0x140_0000,
            },
            frame_info: PhysRange {
                start: 0x30_0000,
                end: 0x34_0000,
            },
            heap_max_bytes: 32 << 20,
            ring: PhysRange {
                start: 0x20_0000,
                end: 0x24_2000,
            },
            coverage: Some(CoverageInfo {
                counters: PhysRange {
                    start: 0x13_0000,
                    end: 0x13_4000,
                },
                pcs: PhysRange {
                    start: 0x12_0000,
                    end: 0x16_0000,
                },
            }),
        })),
        Response::Pong { nonce: 3 },
        Response::Batch(vec![Response::Done, Response::Error(Error::NestedBatch)]),
        Response::Done,
        Response::Checksum {
            checksum: 0xdead_beef,
        },
        Response::Fault {
            addr: 0x1000,
            write: true,
            reason: FaultReason::ReadOnly,
        },
        Response::Fault {
            addr: 0x1000,
            write: false,
            reason: FaultReason::Unusable,
        },
        Response::Fault {
            addr: 0x1000,
            write: true,
            reason: FaultReason::OutOfMemory,
        },
        Response::Pages(vec![
            PageState::Unusable,
            PageState::PresentRam {
                writable: true,
                executable: false,
                frame: 0x30_0000,
            },
            PageState::AllocOnWrite,
            PageState::OnSwap { slot: 7 },
            PageState::PresentMmap {
                file: 1,
                page: 2,
                private: true,
                frame: 0x1000,
            },
            PageState::NotPresentMmap { file: 1, page: 3 },
            PageState::Corrupt { raw: 0xff },
            PageState::PinnedRam {
                writable: false,
                frame: 0x2000,
            },
            PageState::PinnedAllocOnWrite,
            PageState::Shared {
                writable: true,
                mappings: 16,
                frame: 0x3000,
            },
        ]),
        Response::Frames(vec![FrameRun {
            start: 0x40_0000,
            count: 3,
        }]),
        Response::Valloc {
            addr: 0xffff_c080_0000_0000,
        },
        Response::Stats(Stats {
            total_frames: 10,
            free_frames: 5,
            swap_slots_used: 7,
            pages_dropped: u64::MAX,
            ..Stats::default()
        }),
        Response::Error(Error::InvalidState { addr: 0x5000 }),
        Response::Error(Error::NoSuchFile),
        Response::Error(Error::BeyondFile),
        Response::Evicted {
            swapped: 3,
            dropped: 1,
        },
        Response::Kmalloc {
            addr: 0xffff_c000_0000_1000,
        },
        Response::Scavenged { pages: 2 },
        Response::Space {
            space: 15,
            root: 0x7fff_f000,
        },
        Response::Reclaimed {
            events: vec![
                Reclaim::Swapped {
                    addr: 0x1000,
                    slot: 1 << 39,
                },
                Reclaim::Dropped { addr: 0x2000 },
                Reclaim::Scavenged {
                    addr: 0xffff_c000_0000_0000,
                },
            ],
            response: alloc::boxed::Box::new(Response::Batch(vec![Response::Done])),
        },
        Response::Error(Error::NotOwned { frame: 0x5000 }),
        Response::BadFrame(FrameError::Checksum {
            expected: 1,
            computed: 2,
        }),
    ]
}

fn every_message() -> Vec<GuestMessage<'static>> {
    let mut v = vec![
        GuestMessage::Ready {
            protocol_version: PROTOCOL_VERSION,
        },
        GuestMessage::Log(Cow::Borrowed("hello")),
        GuestMessage::Panic(PanicReport {
            message: Cow::Borrowed("boom"),
            file: Cow::Borrowed("src/main.rs"),
            line: 12,
            column: 5,
        }),
        GuestMessage::Exception(ExceptionReport {
            vector: 14,
            error_code: 2,
            rip: 1,
            cr2: 2,
            rsp: 3,
        }),
    ];
    v.extend(every_response().into_iter().map(GuestMessage::Reply));
    v
}

/// Strips the delimiter a sender appends.
fn body(mut frame: Vec<u8>) -> Vec<u8> {
    assert_eq!(frame.pop(), Some(0));
    assert!(!frame.contains(&0), "COBS body holds no zero");
    frame
}

#[test]
fn every_request_round_trips() {
    for req in every_request() {
        let mut f = body(encode(&req).unwrap());
        assert_eq!(decode::<Request>(&mut f).unwrap(), req);
    }
}

#[test]
fn every_guest_message_round_trips() {
    for msg in every_message() {
        let mut f = body(encode(&msg).unwrap());
        let got: GuestMessage<'_> = decode(&mut f).unwrap();
        assert_eq!(got.into_owned(), msg);
    }
}

#[test]
fn encode_into_matches_encode() {
    let mut scratch = [0u8; 512];
    let mut out = [0u8; 600];
    for msg in every_message() {
        let a = encode_into(&msg, &mut scratch, &mut out).unwrap().to_vec();
        assert_eq!(a, encode(&msg).unwrap());
    }
}

#[test]
fn encode_into_small_buffer_is_an_error() {
    let mut scratch = [0u8; 8];
    let mut out = [0u8; 64];
    let msg = GuestMessage::Log(Cow::Borrowed("a message far longer than eight bytes"));
    assert_eq!(
        encode_into(&msg, &mut scratch, &mut out),
        Err(FrameError::Encode)
    );
    let mut scratch = [0u8; 128];
    let mut out = [0u8; 8];
    assert_eq!(
        encode_into(&msg, &mut scratch, &mut out),
        Err(FrameError::Encode)
    );
}

#[test]
fn corrupted_byte_is_a_checksum_or_cobs_error() {
    let frame = body(encode(&Request::Ping { nonce: 0x0102_0304 }).unwrap());
    for i in 0..frame.len() {
        for flip in [1u8, 0x80, 0xff] {
            let mut f = frame.clone();
            f[i] ^= flip;
            if f[i] == 0 {
                continue; // a zero would split the frame: covered below
            }
            let err = decode::<Request>(&mut f).unwrap_err();
            assert!(
                matches!(
                    err,
                    FrameError::Checksum { .. } | FrameError::Cobs | FrameError::TooShort { .. }
                ),
                "byte {i} flip {flip:#x}: {err:?}"
            );
        }
    }
}

#[test]
fn truncated_frames_are_errors() {
    let frame = body(
        encode(&Request::Map {
            addr: 0x1234_5000,
            pages: 8,
            writable: true,
            executable: false,
            contiguous: false,
            privilege: Privilege::User,
        })
        .unwrap(),
    );
    for cut in 1..frame.len() {
        let mut f = frame[..cut].to_vec();
        assert!(decode::<Request>(&mut f).is_err(), "cut at {cut}");
    }
}

#[test]
fn short_frame_is_too_short() {
    let mut f = cobs::encode_vec(&[1, 2]);
    assert_eq!(
        decode::<Request>(&mut f),
        Err(FrameError::TooShort { len: 2 })
    );
}

#[test]
fn valid_checksum_over_garbage_is_a_decode_error() {
    let garbage = [0xffu8; 9];
    let mut plain = garbage.to_vec();
    plain.extend_from_slice(&CRC32C.checksum(&garbage).to_le_bytes());
    let mut f = cobs::encode_vec(&plain);
    assert_eq!(decode::<Request>(&mut f), Err(FrameError::Decode));
}

#[test]
fn oversized_message_is_refused_by_the_sender() {
    let big = Request::Batch(vec![Request::Ping { nonce: u64::MAX }; MAX_FRAME / 4]);
    assert_eq!(encode(&big), Err(FrameError::Encode));
}

#[test]
fn accumulator_resynchronizes_after_garbage_and_overflow() {
    let good = encode(&Request::Ping { nonce: 5 }).unwrap();
    let mut stream = vec![0x41, 0x42, 0x43, 0]; // garbage frame
    stream.push(0); // empty frame: reported, nothing to decode
    stream.extend(core::iter::repeat_n(7u8, 100)); // longer than the buffer
    stream.push(0);
    stream.extend_from_slice(&good);
    let mut acc = FrameAccumulator::new([0u8; 64]);
    let mut frames = Vec::new();
    let mut too_long = 0;
    let mut empty = 0;
    for b in stream {
        match acc.push(b) {
            Feed::Pending => {}
            Feed::Empty => empty += 1,
            Feed::TooLong => too_long += 1,
            Feed::Frame(n) => frames.push(decode::<Request>(acc.frame(n))),
        }
    }
    assert_eq!(too_long, 1);
    assert_eq!(empty, 1);
    assert_eq!(frames.len(), 2);
    assert!(frames[0].is_err());
    assert_eq!(frames[1], Ok(Request::Ping { nonce: 5 }));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut acc = FrameAccumulator::new([0u8; 256]);
        for b in bytes {
            if let Feed::Frame(n) = acc.push(b) {
                let _ = decode::<Request>(acc.frame(n));
            }
        }
    }

    #[test]
    fn random_damage_never_decodes_to_a_different_request(
        nonce in any::<u64>(), pos in any::<usize>(), val in 1u8..=255,
    ) {
        let req = Request::Ping { nonce };
        let mut f = body(encode(&req).unwrap());
        let i = pos % f.len();
        prop_assume!(f[i] != val);
        f[i] = val;
        if let Ok(got) = decode::<Request>(&mut f) {
            prop_assert_eq!(got, req);
        }
    }
}

#[test]
fn split_reclaimed_unwraps_once() {
    let inner = Response::Evicted {
        swapped: 1,
        dropped: 0,
    };
    let ev = vec![Reclaim::Swapped { addr: 0, slot: 0 }];
    let wrapped = Response::Reclaimed {
        events: ev.clone(),
        response: alloc::boxed::Box::new(inner.clone()),
    };
    assert_eq!(wrapped.split_reclaimed(), (ev, inner.clone()));
    assert_eq!(inner.clone().split_reclaimed(), (Vec::new(), inner));
}

/// A body of `n` bytes with no zero in it or in its checksum (COBS's worst
/// case), as body and checksum together: `n - 4` bytes, then the CRC.
fn zero_free_plain(n: usize) -> Vec<u8> {
    for fill in 1u8..=255 {
        let mut plain = vec![fill; n - CHECKSUM_LEN];
        let crc = CRC32C.checksum(&plain).to_le_bytes();
        if !crc.contains(&0) {
            plain.extend_from_slice(&crc);
            return plain;
        }
    }
    unreachable!("some fill byte gives a checksum without zeros")
}

/// Feeds `frame` (delimiter included) through an accumulator whose buffer
/// is sized as both sides size theirs, and unframes what arrives.
fn receive(frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut acc = FrameAccumulator::new(vec![0u8; MAX_ENCODED_FRAME]);
    let mut got = None;
    for &b in frame {
        match acc.push(b) {
            Feed::Pending | Feed::Empty => {}
            Feed::TooLong => got = Some(Err(FrameError::TooLong)),
            Feed::Frame(n) => got = Some(unframe(acc.frame(n)).map(<[u8]>::to_vec)),
        }
    }
    got.expect("the frame ended")
}

#[test]
fn the_largest_legal_frame_is_received_and_one_byte_more_is_refused() {
    // MAX_FRAME bytes of body and checksum, none zero: the longest encoding.
    let plain = zero_free_plain(MAX_FRAME);
    let mut frame = cobs::encode_vec(&plain);
    frame.push(0);
    assert_eq!(
        frame.len(),
        MAX_ENCODED_FRAME,
        "the worst case is the limit"
    );
    assert_eq!(
        receive(&frame).as_deref(),
        Ok(&plain[..plain.len() - CHECKSUM_LEN])
    );
    assert_eq!(
        encode_body(&plain[..plain.len() - CHECKSUM_LEN]).unwrap(),
        frame,
        "the sender frames it too"
    );
    // One byte more: refused by the receiver, and by the sender.
    let over = zero_free_plain(MAX_FRAME + 1);
    let mut frame = cobs::encode_vec(&over);
    frame.push(0);
    assert_eq!(receive(&frame), Err(FrameError::TooLong));
    assert_eq!(
        encode_body(&over[..over.len() - CHECKSUM_LEN]),
        Err(FrameError::Encode)
    );
    // A body over the limit whose zeros keep its encoding short is
    // refused once decoded.
    let mut zeros = vec![0u8; MAX_FRAME + 1 - CHECKSUM_LEN];
    let crc = CRC32C.checksum(&zeros).to_le_bytes();
    zeros.extend_from_slice(&crc);
    let mut frame = cobs::encode_vec(&zeros);
    assert!(frame.len() < MAX_ENCODED_FRAME - 1);
    frame.push(0);
    assert_eq!(receive(&frame), Err(FrameError::TooLong));
    let message = FrameError::TooLong.to_string();
    assert!(message.contains("131072 bytes of body"), "{message}");
}
