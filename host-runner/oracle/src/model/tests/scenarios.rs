//! The seed thread's two scenarios, at full size.

use protocol::pattern::{checksum, fill};
use protocol::{AreaType, FaultReason, Privilege, Request, Response};

use super::{diverges, hello, run, BOOT_FREE};
use crate::model::{Model, Prediction};

const BASE: u64 = 0x1234_5000;
const LEN: u64 = 33 << 20;
const PAGES: u64 = LEN / 4096;

fn convert(addr: u64, bytes: u64, to: AreaType) -> Request {
    Request::Convert {
        addr,
        pages: bytes / 4096,
        to,
        privilege: Privilege::User,
    }
}

fn read(addr: u64, len: u64) -> Request {
    Request::Read {
        addr,
        len,
        privilege: Privilege::User,
    }
}

#[test]
fn convert_33_mib_to_usable_ram_then_512_mib_to_unusable() {
    let mut m = Model::new(&hello());
    // 33 MiB at 0x12345000: 8448 pages in PTs 145..=162 of one PD and PDPT.
    run(
        &mut m,
        &[(convert(BASE, LEN, AreaType::UsableRam), Response::Done)],
    );
    let s = m.stats();
    assert_eq!(
        (s.alloc_on_write_pages, s.page_table_frames, s.present_pages),
        (PAGES, 20, 0)
    );
    assert_eq!(s.free_frames, BOOT_FREE - 20);
    // Untouched usable RAM reads as zeros, and is allocated by the read.
    let zeros = vec![0u8; 8192];
    run(
        &mut m,
        &[(
            read(BASE + 0x7000, 8192),
            Response::Checksum {
                checksum: checksum(&zeros),
            },
        )],
    );
    assert_eq!(m.stats().faults_resolved, 2);
    // Write across it all, read it back.
    let write = Request::Write {
        addr: BASE,
        len: LEN,
        seed: 0x5eed,
        privilege: Privilege::User,
    };
    let mut bytes = vec![0u8; LEN as usize];
    fill(0x5eed, BASE, &mut bytes);
    run(
        &mut m,
        &[
            (write, Response::Done),
            (
                read(BASE, LEN),
                Response::Checksum {
                    checksum: checksum(&bytes),
                },
            ),
        ],
    );
    let s = m.stats();
    assert_eq!(
        (s.present_pages, s.alloc_on_write_pages, s.faults_resolved),
        (PAGES, 0, PAGES)
    );
    assert_eq!(s.free_frames, BOOT_FREE - 20 - PAGES);
    // A read across a PT boundary (0x12400000) of bytes not all written the same.
    let off = (0x1240_0000 - BASE - 10) as usize;
    let across = Response::Checksum {
        checksum: checksum(&bytes[off..off + 20]),
    };
    run(&mut m, &[(read(0x1240_0000 - 10, 20), across)]);
    diverges(
        &mut m,
        read(0x1240_0000 - 10, 20),
        Response::Checksum {
            checksum: checksum(&[0; 20]),
        },
    );

    // 512 MiB at 0x12300000 to unusable: every frame and table returned.
    run(
        &mut m,
        &[(
            convert(0x1230_0000, 512 << 20, AreaType::Unusable),
            Response::Done,
        )],
    );
    let s = m.stats();
    assert_eq!(
        (s.free_frames, s.present_pages, s.page_table_frames),
        (BOOT_FREE, 0, 0)
    );
    assert_eq!(s.faults_resolved, PAGES);
    // Reads (and writes) now fault at their first byte.
    let fault = |addr, write| Response::Fault {
        addr,
        write,
        reason: FaultReason::Unusable,
    };
    let write = Request::Write {
        addr: BASE + 5,
        len: 10,
        seed: 1,
        privilege: Privilege::User,
    };
    run(
        &mut m,
        &[
            (read(BASE, LEN), fault(BASE, false)),
            (read(0x1230_0000, 1), fault(0x1230_0000, false)),
            (write, fault(BASE + 5, true)),
        ],
    );
    assert!(m.expectations().runs().next().is_none());
}

#[test]
fn a_256_mib_write_and_read_stay_fast() {
    let mut h = hello();
    h.total_frames = 1 << 18;
    h.boot_free_frames = (1 << 18) - 512;
    let mut m = Model::new(&h);
    let len = protocol::MAX_TOUCH_LEN;
    let map = Request::map_writable(0x4000_0000, len / 4096, Privilege::User);
    let write = Request::Write {
        addr: 0x4000_0000,
        len,
        seed: 77,
        privilege: Privilege::User,
    };
    let start = std::time::Instant::now();
    run(&mut m, &[(map, Response::Done), (write, Response::Done)]);
    let wrote = start.elapsed();
    let Prediction::Exact(Response::Checksum { .. }) = m.predict(&read(0x4000_0000, len)) else {
        panic!("a read of mapped memory answers a checksum");
    };
    let took = start.elapsed();
    eprintln!("256 MiB: write {wrote:?}, write + read {took:?}");
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
}
