//! `Write` and `Read`: faults, allocation on touch, bytes and checksums.

use protocol::pattern::{checksum, fill};
use protocol::{AreaType, FaultReason, Request, Response};

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
