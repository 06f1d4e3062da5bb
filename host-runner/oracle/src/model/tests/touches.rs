//! `Write` and `Read`: faults, allocation on touch, bytes and checksums.

use protocol::pattern::{checksum, fill};
use protocol::{AreaType, FaultReason, Request, Response};

use super::files::{read, write};
use super::requests::{map, map_ro, U};
use super::{convert, diverges, hello, run};
use crate::model::Model;

#[test]
fn a_fault_mid_write_leaves_the_bytes_before_it_written() {
    let mut m = Model::new(&hello());
    let write = Request::Write {
        addr: 0x1ff0,
        len: 0x30,
        seed: 5,
        privilege: U,
    };
    // 0x1000 mapped, 0x2000 unusable: the fault is at 0x2000.
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (
                write.clone(),
                Response::Fault {
                    addr: 0x2000,
                    write: true,
                    reason: FaultReason::Unusable,
                },
            ),
        ],
    );
    let mut want = [0u8; 0x20];
    fill(5, 0x1ff0, &mut want[..0x10]);
    let read = Request::Read {
        addr: 0x1ff0,
        len: 0x10,
        privilege: U,
    };
    run(
        &mut m,
        &[(
            read.clone(),
            Response::Checksum {
                checksum: checksum(&want[..0x10]),
            },
        )],
    );
    diverges(
        &mut m,
        read,
        Response::Checksum {
            checksum: checksum(&[0; 0x10]),
        },
    );
    // A read-only page: the fault is at the write's start when it is the first page.
    let ro = map_ro(0x3000, 1);
    let w2 = Request::Write {
        addr: 0x3008,
        len: 8,
        seed: 1,
        privilege: U,
    };
    let fault = Response::Fault {
        addr: 0x3008,
        write: true,
        reason: FaultReason::ReadOnly,
    };
    run(&mut m, &[(ro, Response::Done), (w2, fault)]);
    let r2 = Request::Read {
        addr: 0x3000,
        len: 4096,
        privilege: U,
    };
    run(
        &mut m,
        &[(
            r2,
            Response::Checksum {
                checksum: checksum(&[0; 4096]),
            },
        )],
    );
}

#[test]
fn allocate_on_write_faults_until_frames_run_out() {
    let mut h = hello();
    h.boot_free_frames = 5;
    let mut m = Model::new(&h);
    let conv = convert(0x10_0000, 4, AreaType::UsableRam);
    // 3 tables leave 2 frames: the third page faults out of memory.
    let write = Request::Write {
        addr: 0x10_0800,
        len: 3 * 4096,
        seed: 9,
        privilege: U,
    };
    let oom = Response::Fault {
        addr: 0x10_2000,
        write: true,
        reason: FaultReason::OutOfMemory,
    };
    run(&mut m, &[(conv, Response::Done), (write, oom)]);
    let s = m.stats();
    assert_eq!(
        (
            s.free_frames,
            s.faults_resolved,
            s.present_pages,
            s.alloc_on_write_pages
        ),
        (0, 2, 2, 2)
    );
    let read = Request::Read {
        addr: 0x10_3000,
        len: 1,
        privilege: U,
    };
    let oom = Response::Fault {
        addr: 0x10_3000,
        write: false,
        reason: FaultReason::OutOfMemory,
    };
    run(&mut m, &[(read, oom)]);
}

/// The pages a touch leaves among the changes the checker re-verifies
/// (`Model::take_changes`), as page numbers.
fn changed(m: &mut Model) -> Vec<(u64, u64)> {
    m.take_changes().pages().to_vec()
}

#[test]
fn a_touch_changes_only_the_pages_it_wrote_or_made_present() {
    let mut m = Model::new(&hello());
    let write = |addr, len| write(addr, len, 9);
    let unusable = |addr, write| Response::Fault {
        addr,
        write,
        reason: FaultReason::Unusable,
    };
    // Four present pages, the first two written; two allocate-on-write
    // pages after them.
    run(
        &mut m,
        &[
            (map(0x10000, 4, U), Response::Done),
            (write(0x10000, 0x2000), Response::Done),
            (convert(0x14000, 2, AreaType::UsableRam), Response::Done),
        ],
    );
    changed(&mut m);
    let mut bytes = vec![0u8; 0x6000];
    fill(9, 0x10000, &mut bytes[..0x2000]);

    // A read of present pages changes none of them.
    let sum = checksum(&bytes[..0x4000]);
    run(
        &mut m,
        &[(read(0x10000, 0x4000), Response::Checksum { checksum: sum })],
    );
    assert_eq!(changed(&mut m), vec![]);

    // A read across them into the allocate-on-write pages changes only
    // those, which it made present.
    let sum = checksum(&bytes[0x3000..0x6000]);
    run(
        &mut m,
        &[(read(0x13000, 0x3000), Response::Checksum { checksum: sum })],
    );
    assert_eq!(changed(&mut m), vec![(0x14, 0x16)]);

    // A write changes every page it wrote a byte to, partial ones too.
    run(&mut m, &[(write(0x10ff8, 0x1010), Response::Done)]);
    assert_eq!(changed(&mut m), vec![(0x10, 0x13)]);

    // A write that faults changes the pages before the fault, not those
    // past it; one that faults at its first byte changes nothing.
    run(&mut m, &[(write(0x15800, 0x2000), unusable(0x16000, true))]);
    assert_eq!(changed(&mut m), vec![(0x15, 0x16)]);
    run(&mut m, &[(write(0x16000, 0x10), unusable(0x16000, true))]);
    assert_eq!(changed(&mut m), vec![]);
    // A read that faults past pages already present changes nothing.
    run(&mut m, &[(read(0x15000, 0x2000), unusable(0x16000, false))]);
    assert_eq!(changed(&mut m), vec![]);
}
