//! Host frames, virtual space, batches, reset and queries.

use protocol::{AreaType, Error, FrameRun, PageState, Request, Response};

use super::requests::{err, map, K, U};
use super::{convert, diverges, hello, run, BOOT_FREE, KSPACE, VALLOC};
use crate::model::{Model, Prediction};

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
            executable: false,
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
    // Nested batches' elements count too: 2 + 4096 is over the limit.
    let half = Request::Batch(vec![Request::Stats; protocol::MAX_BATCH / 2]);
    let nested = Request::Batch(vec![half.clone(), half]);
    assert_eq!(
        m.predict(&nested),
        Prediction::Exact(Response::Error(Error::TooLarge))
    );
    run(&mut m, &[(nested, Response::Error(Error::TooLarge))]);
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
    let conv = convert(0x1000, 1, AreaType::UsableRam);
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
        executable: false,
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
            PageState::PresentRam {
                writable,
                frame,
                executable: false,
            },
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
