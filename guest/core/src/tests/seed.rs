//! The seed thread's scenarios at small scale.

use protocol::{AreaType, PageState, Request, Response};

use super::*;

#[test]
fn seed_33mib_usable_then_512mib_unusable() {
    let mut m = SimMachine::new(4096);
    let addr = 0x1234_5000u64;
    let pages = (33 << 20) / 4096;
    let r = req(
        &mut m,
        Request::Convert {
            addr,
            pages,
            to: AreaType::UsableRam,
            privilege: U,
        },
    );
    assert_eq!(r, Response::Done);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.alloc_on_write_pages, pages);
    assert_eq!(s.present_pages, 0);
    // Write and read across it: one page in each 2 MiB.
    for off in (0..33u64 << 20).step_by(2 << 20) {
        let a = addr + off + 100;
        assert_eq!(
            req(
                &mut m,
                Request::Write {
                    addr: a,
                    len: 5000,
                    seed: off,
                    privilege: U
                }
            ),
            Response::Done
        );
        assert_reads_pattern(&mut m, off, a, 5000);
    }
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.present_pages, 17 * 2);
    assert_eq!(s.faults_resolved, 34);
    let r = req(
        &mut m,
        Request::Convert {
            addr: 0x1230_0000,
            pages: (512 << 20) / 4096,
            to: AreaType::Unusable,
            privilege: U,
        },
    );
    assert_eq!(r, Response::Done);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.free_frames, s.boot_free_frames, "all frames back");
    assert_eq!(s.page_table_frames, 0);
    assert_eq!(
        req(
            &mut m,
            Request::Query {
                addr,
                pages: 1,
                privilege: U
            }
        ),
        Response::Pages(vec![PageState::Unusable])
    );
}

#[test]
fn convert_of_the_whole_lower_half_walks_tables_only() {
    let mut m = SimMachine::new(256);
    req(&mut m, Request::map_writable(0x7fff_ffff_f000, 1, U));
    req(&mut m, Request::map_writable(0, 1, U));
    let r = req(
        &mut m,
        Request::Convert {
            addr: 0,
            pages: 1 << 35,
            to: AreaType::Unusable,
            privilege: U,
        },
    );
    assert_eq!(r, Response::Done);
    reset_and_check(&mut m);
    // To usable RAM: far more tables than frames: out of memory, at once.
    let r = req(
        &mut m,
        Request::Convert {
            addr: 0,
            pages: 1 << 35,
            to: AreaType::UsableRam,
            privilege: U,
        },
    );
    assert_eq!(r, Response::Error(protocol::Error::OutOfMemory));
    check(&mut m);
}
