//! Each request class against hand-computed answers: validation order,
//! state rules, out of memory, touches, frames, virtual space, batches.

use protocol::pattern::{checksum, fill};
use protocol::{AreaType, Error, FaultReason, FrameRun, PageState, Privilege, Request, Response};

use super::{diverges, hello, run, BOOT_FREE, HEAP, KSPACE, VALLOC};
use crate::model::{Model, ModelState, Prediction};

const K: Privilege = Privilege::Kernel;
const U: Privilege = Privilege::User;

fn map(addr: u64, pages: u64, privilege: Privilege) -> Request {
    Request::Map {
        addr,
        pages,
        writable: true,
        contiguous: false,
        privilege,
    }
}

fn err(e: Error) -> Prediction {
    Prediction::Exact(Response::Error(e))
}

#[test]
fn validation_answers_the_first_rule_that_applies() {
    let m = Model::new(&hello());
    let cases = [
        (map(0x1001, 0, U), Error::ZeroCount),
        (map(0x1001, 1, U), Error::Misaligned),
        (map(0x0000_8000_0000_1000, 1, U), Error::NonCanonical),
        (map(0x0000_8000_0000_1001, 1, U), Error::Misaligned),
        (map(0xffff_ffff_ffff_f000, 1, K), Error::Overflow),
        (map(0x1000, 1 << 63, U), Error::Overflow),
        (map(0x7fff_ffff_f000, 2, K), Error::CrossesCanonicalHole),
        (map(0x7fff_ffff_f000, 2, U), Error::CrossesCanonicalHole),
        (map(KSPACE, 1, U), Error::PermissionDenied),
        (map(0xffff_8000_0000_0000, 1, K), Error::Reserved),
        (map(HEAP, 1, K), Error::Reserved),
        (map(HEAP - 4096, 2, K), Error::Reserved),
        (map(0xffff_ff80_0000_0000, 1, K), Error::Reserved),
        (
            Request::Query {
                addr: 0,
                pages: protocol::MAX_QUERY_PAGES + 1,
                privilege: U,
            },
            Error::TooLarge,
        ),
        (
            Request::Write {
                addr: 0x1000,
                len: protocol::MAX_TOUCH_LEN + 1,
                seed: 1,
                privilege: U,
            },
            Error::TooLarge,
        ),
        (
            Request::Read {
                addr: 0xffff_ffff_ffff_fff0,
                len: 0x20,
                privilege: K,
            },
            Error::Overflow,
        ),
        (
            Request::Read {
                addr: 0x7fff_ffff_fff0,
                len: 0x20,
                privilege: K,
            },
            Error::CrossesCanonicalHole,
        ),
        (
            Request::AllocFrames {
                count: 0,
                contiguous: false,
                privilege: U,
            },
            Error::PermissionDenied,
        ),
        (Request::Reset { privilege: U }, Error::PermissionDenied),
    ];
    for (req, e) in cases {
        assert_eq!(m.predict(&req), err(e), "{req:?}");
    }
    // Valid ranges at the edges of the managed space.
    assert_eq!(
        m.predict(&map(0x7fff_ffff_f000, 1, U)),
        Prediction::Exact(Response::Done)
    );
    assert_eq!(
        m.predict(&map(HEAP - 4096, 1, K)),
        Prediction::Exact(Response::Done)
    );
    assert_eq!(
        m.predict(&map(HEAP + (32 << 20), 1, K)),
        Prediction::Exact(Response::Done)
    );
    // A zero-length touch needs no valid address.
    let empty = Request::Read {
        addr: 0x0000_8000_0000_0000,
        len: 0,
        privilege: U,
    };
    assert_eq!(
        m.predict(&empty),
        Prediction::Exact(Response::Checksum { checksum: 0 })
    );
}

#[test]
fn state_rules_name_the_lowest_offending_page() {
    let mut m = Model::new(&hello());
    run(&mut m, &[(map(0x5000, 2, U), Response::Done)]);
    assert_eq!(
        m.predict(&map(0x3000, 4, U)),
        err(Error::InvalidState { addr: 0x5000 })
    );
    let unmap = Request::Unmap {
        addr: 0x5000,
        pages: 4,
        privilege: U,
    };
    assert_eq!(m.predict(&unmap), err(Error::InvalidState { addr: 0x7000 }));
    // The error comes before out of memory, and changes nothing.
    let huge = map(0x3000, 1 << 30, U);
    assert_eq!(m.predict(&huge), err(Error::InvalidState { addr: 0x5000 }));
    let d = diverges(&mut m, unmap, Response::Done);
    assert_eq!(d.expected, "Error(InvalidState { addr: 0x7000 })");
    assert_eq!(
        d.to_string(),
        "operation 7: Unmap { addr: 0x5000, pages: 4, privilege: User }: \
         expected Error(InvalidState { addr: 0x7000 }), got Done: different answer"
    );
    assert_eq!(
        m.state(0x5000),
        Some(ModelState::PresentRam { writable: true })
    );
}

#[test]
fn out_of_memory_counts_data_frames_and_needed_tables() {
    let mut m = Model::new(&hello());
    // One page at 0 needs a PT, a PD and a PDPT: BOOT_FREE - 3 data pages fit.
    assert_eq!(
        m.predict(&map(0, BOOT_FREE - 3 + 1, U)),
        err(Error::OutOfMemory)
    );
    // BOOT_FREE - 65 = 32191 pages need 63 PTs + a PD + a PDPT: exactly BOOT_FREE.
    assert_eq!(
        m.predict(&map(0, BOOT_FREE - 65, U)),
        Prediction::Exact(Response::Done)
    );
    assert_eq!(
        m.predict(&map(0, BOOT_FREE - 64, U)),
        err(Error::OutOfMemory)
    );
    // Converting the whole lower half needs 2^26 + 2^17 + 2^8 tables.
    let all = Request::Convert {
        addr: 0,
        pages: 1 << 35,
        to: AreaType::UsableRam,
        privilege: U,
    };
    assert_eq!(m.predict(&all), err(Error::OutOfMemory));
    // ... and making it unusable needs nothing.
    let none = Request::Convert {
        addr: 0,
        pages: 1 << 35,
        to: AreaType::Unusable,
        privilege: U,
    };
    run(&mut m, &[(none, Response::Done)]);
    // A contiguous map may fail when frames suffice; a plain one may not.
    let contiguous = Request::Map {
        addr: 0x1000,
        pages: 16,
        writable: false,
        contiguous: true,
        privilege: U,
    };
    assert_eq!(m.predict(&contiguous), Prediction::DoneOrOutOfMemory);
    run(&mut m, &[(contiguous, Response::Error(Error::OutOfMemory))]);
    diverges(
        &mut m,
        map(0x1000, 16, U),
        Response::Error(Error::OutOfMemory),
    );
}

#[test]
fn convert_transitions() {
    let mut m = Model::new(&hello());
    m.force_state(
        0x1000,
        1,
        ModelState::PresentMmap {
            file: 2,
            page: 7,
            private: true,
        },
    );
    m.force_state(0x2000, 2, ModelState::NotPresentMmap { file: 2, page: 8 });
    m.force_state(0x4000, 1, ModelState::OnSwap { slot: 9 });
    m.force_state(0x5000, 1, ModelState::AllocOnWrite);
    m.force_state(0x6000, 1, ModelState::PresentRam { writable: false });
    let to = |to| Request::Convert {
        addr: 0,
        pages: 8,
        to,
        privilege: U,
    };
    run(&mut m, &[(to(AreaType::UsableRam), Response::Done)]);
    let ram = |w| Some(ModelState::PresentRam { writable: w });
    let aow = Some(ModelState::AllocOnWrite);
    let want = [
        aow,
        ram(true),
        aow,
        aow,
        Some(ModelState::OnSwap { slot: 9 }),
        aow,
        ram(false),
        aow,
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(m.state(i as u64 * 4096), *w, "page {i}");
    }
    // Present pages 1 and 6: 2 frames, 1 PT + 1 PD + 1 PDPT.
    let s = m.stats();
    assert_eq!(
        (s.present_pages, s.alloc_on_write_pages, s.page_table_frames),
        (2, 5, 3)
    );
    assert_eq!(s.free_frames, BOOT_FREE - 5);
    run(&mut m, &[(to(AreaType::Unusable), Response::Done)]);
    assert_eq!(m.stats().free_frames, BOOT_FREE);
    assert_eq!(m.stats().page_table_frames, 0);
}

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
    let ro = Request::Map {
        addr: 0x3000,
        pages: 1,
        writable: false,
        contiguous: false,
        privilege: U,
    };
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
    let conv = Request::Convert {
        addr: 0x10_0000,
        pages: 4,
        to: AreaType::UsableRam,
        privilege: U,
    };
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

#[test]
fn host_frames_are_checked_and_counted() {
    let mut m = Model::new(&hello());
    let alloc = Request::AllocFrames {
        count: 3,
        contiguous: false,
        privilege: K,
    };
    let runs = |v: &[(u64, u64)]| {
        Response::Frames(
            v.iter()
                .map(|&(start, count)| FrameRun { start, count })
                .collect(),
        )
    };
    // Boot frames, frames past RAM, duplicates and wrong counts are refused.
    diverges(&mut m, alloc.clone(), runs(&[(0x1000, 3)]));
    diverges(&mut m, alloc.clone(), runs(&[(0x800_0000 - 0x1000, 3)]));
    diverges(
        &mut m,
        alloc.clone(),
        runs(&[(0x30_0000, 2), (0x30_1000, 1)]),
    );
    diverges(&mut m, alloc.clone(), runs(&[(0x30_0000, 2)]));
    run(
        &mut m,
        &[(alloc.clone(), runs(&[(0x30_0000, 2), (0x40_0000, 1)]))],
    );
    assert_eq!(m.stats().host_frames, 3);
    diverges(&mut m, alloc, runs(&[(0x40_0000, 3)]));
    let free = |frame, count| Request::FreeFrames {
        frame,
        count,
        privilege: K,
    };
    assert_eq!(
        m.predict(&free(0x30_0000, 3)),
        err(Error::NotOwned { frame: 0x30_2000 })
    );
    assert_eq!(m.predict(&free(0x30_0001, 1)), err(Error::Misaligned));
    assert_eq!(
        m.predict(&free(0xffff_ffff_ffff_f000, 2)),
        err(Error::Overflow)
    );
    assert_eq!(m.predict(&free(0x800_0000, 1)), err(Error::OutOfRange));
    assert_eq!(m.predict(&free(0x30_0000, 0)), err(Error::ZeroCount));
    run(&mut m, &[(free(0x30_1000, 1), Response::Done)]);
    assert_eq!(m.stats().host_frames, 2);
    assert_eq!(m.stats().free_frames, BOOT_FREE - 2);
    // A page may not be reported on a host frame.
    run(&mut m, &[(map(0x1000, 1, U), Response::Done)]);
    let q = Request::Query {
        addr: 0x1000,
        pages: 1,
        privilege: U,
    };
    let on = |frame| {
        Response::Pages(vec![PageState::PresentRam {
            writable: true,
            frame,
        }])
    };
    diverges(&mut m, q.clone(), on(0x30_0000));
    run(&mut m, &[(q, on(0x50_0000))]);
    // Nor two pages on one frame.
    let q2 = Request::Query {
        addr: 0x2000,
        pages: 1,
        privilege: U,
    };
    run(&mut m, &[(map(0x2000, 1, U), Response::Done)]);
    diverges(&mut m, q2, on(0x50_0000));
}

#[test]
fn valloc_hands_out_disjoint_runs_of_its_region() {
    let mut m = Model::new(&hello());
    let valloc = |pages| Request::Valloc {
        pages,
        privilege: K,
    };
    assert_eq!(m.predict(&valloc(257)), err(Error::TooLarge));
    assert_eq!(m.predict(&valloc(0)), err(Error::ZeroCount));
    diverges(
        &mut m,
        valloc(4),
        Response::Valloc {
            addr: VALLOC - 4096,
        },
    );
    diverges(
        &mut m,
        valloc(4),
        Response::Valloc {
            addr: VALLOC + 253 * 4096,
        },
    );
    run(
        &mut m,
        &[(
            valloc(4),
            Response::Valloc {
                addr: VALLOC + 0x10000,
            },
        )],
    );
    diverges(
        &mut m,
        valloc(4),
        Response::Valloc {
            addr: VALLOC + 0xd000,
        },
    );
    run(&mut m, &[(valloc(16), Response::Valloc { addr: VALLOC })]);
    // Pages 0..20 are reserved: 236 remain.
    assert_eq!(m.predict(&valloc(237)), err(Error::NoVirtualSpace));
    let vfree = |addr, pages| Request::Vfree {
        addr,
        pages,
        privilege: K,
    };
    assert_eq!(
        m.predict(&vfree(VALLOC + 0xf000, 6)),
        err(Error::InvalidState {
            addr: VALLOC + 0x14000
        })
    );
    run(&mut m, &[(vfree(VALLOC + 0xf000, 2), Response::Done)]);
    assert_eq!(m.stats().valloc_pages, 18);
    assert_eq!(
        m.predict(&vfree(VALLOC + 0xf001, 1)),
        err(Error::Misaligned)
    );
}

#[test]
fn batches_apply_element_by_element() {
    let mut m = Model::new(&hello());
    let batch = Request::Batch(vec![
        map(0x1000, 1, U),
        Request::Batch(vec![]),
        Request::Stats,
        map(0x1000, 1, U),
    ]);
    let mut stats = m.stats();
    stats.free_frames -= 4;
    stats.present_pages = 1;
    stats.page_table_frames = 3;
    let good = Response::Batch(vec![
        Response::Done,
        Response::Error(Error::NestedBatch),
        Response::Stats(stats),
        Response::Error(Error::InvalidState { addr: 0x1000 }),
    ]);
    assert!(matches!(m.predict(&batch), Prediction::Batch(ref v) if v.len() == 4));
    let mut wrong = good.clone();
    if let Response::Batch(v) = &mut wrong {
        v[3] = Response::Done;
    }
    let d = diverges(&mut m.clone(), batch.clone(), wrong);
    assert_eq!(d.element, Some(3));
    run(&mut m, &[(batch, good)]);
    let too_many = Request::Batch(vec![Request::Stats; protocol::MAX_BATCH + 1]);
    run(&mut m, &[(too_many, Response::Error(Error::TooLarge))]);
}

#[test]
fn reset_returns_to_boot() {
    let mut m = Model::new(&hello());
    let w = Request::Write {
        addr: 0x1000,
        len: 1,
        seed: 0,
        privilege: U,
    };
    let conv = Request::Convert {
        addr: 0x1000,
        pages: 1,
        to: AreaType::UsableRam,
        privilege: U,
    };
    run(&mut m, &[(conv, Response::Done), (w, Response::Done)]);
    assert_eq!(m.stats().faults_resolved, 1);
    run(&mut m, &[(Request::Reset { privilege: K }, Response::Done)]);
    let s = m.stats();
    assert_eq!(
        (s.free_frames, s.faults_resolved, s.page_table_frames),
        (BOOT_FREE, 0, 0)
    );
    assert_eq!(m.state(0x1000), None);
}

#[test]
fn query_answers_states_and_ignores_frame_values() {
    let mut m = Model::new(&hello());
    let ro = Request::Map {
        addr: KSPACE,
        pages: 1,
        writable: false,
        contiguous: true,
        privilege: K,
    };
    let conv = Request::Convert {
        addr: KSPACE + 0x1000,
        pages: 1,
        to: AreaType::UsableRam,
        privilege: K,
    };
    run(&mut m, &[(ro, Response::Done), (conv, Response::Done)]);
    // One kernel page table each: PDPT, PD, PT of slot 385.
    assert_eq!(m.stats().page_table_frames, 3);
    let q = Request::Query {
        addr: KSPACE,
        pages: 3,
        privilege: K,
    };
    let answer = |writable, frame| {
        Response::Pages(vec![
            PageState::PresentRam { writable, frame },
            PageState::AllocOnWrite,
            PageState::Unusable,
        ])
    };
    run(&mut m, &[(q.clone(), answer(false, 0x70_0000))]);
    let d = diverges(&mut m, q.clone(), answer(true, 0x70_0000));
    assert!(d.reason.starts_with("page 0: expected PresentRam"), "{d}");
    let corrupt = Response::Pages(vec![PageState::Corrupt { raw: 3 }; 3]);
    diverges(&mut m, q.clone(), corrupt);
    // A frame already seen for this page is fine; an unaligned one is not.
    run(&mut m, &[(q.clone(), answer(false, 0x70_0000))]);
    diverges(&mut m, q, answer(false, 0x70_0010));
    assert_eq!(m.expectations().known_frames.get(&KSPACE), Some(&0x70_0000));
    // The guest neither answers a shutdown nor a kernel panic.
    assert_eq!(m.predict(&Request::Shutdown), Prediction::NoAnswer);
    assert_eq!(
        m.predict(&Request::Panic { privilege: K }),
        Prediction::NoAnswer
    );
    assert_eq!(
        m.predict(&Request::Panic { privilege: U }),
        err(Error::PermissionDenied)
    );
}
