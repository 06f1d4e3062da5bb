//! Memory-mapped files: `MapFile`'s validation, loads with the file's bytes,
//! copy on write that leaves the image alone, and the transition table's
//! file rows.

use protocol::pattern::checksum;
use protocol::{AreaType, Error, FaultReason, PageState, Request, Response};

use super::requests::{err, map, U};
use super::{convert, hello_files, model_files, run, BOOT_FREE, FILES};
use crate::model::files::file_page;
use crate::model::{FileSpec, FilesError, Model, ModelState, Prediction};

pub(super) fn map_file(addr: u64, pages: u64, file: u8, file_page: u64) -> Request {
    Request::MapFile {
        addr,
        pages,
        file,
        file_page,
        privilege: U,
    }
}

pub(super) fn read(addr: u64, len: u64) -> Request {
    Request::Read {
        addr,
        len,
        privilege: U,
    }
}

pub(super) fn write(addr: u64, len: u64, seed: u64) -> Request {
    Request::Write {
        addr,
        len,
        seed,
        privilege: U,
    }
}

/// The checksum of pages `first..first + n` of file `f`.
pub(super) fn file_sum(f: usize, first: u64, n: u64) -> Response {
    let bytes: Vec<u8> = (first..first + n)
        .flat_map(|p| file_page(FILES[f].seed, p))
        .collect();
    Response::Checksum {
        checksum: checksum(&bytes),
    }
}

#[test]
fn file_specs_must_match_the_guest_s_files() {
    let h = hello_files();
    assert_eq!(
        Model::with_files(&h, &FILES[..1]).unwrap_err(),
        FilesError::Count {
            given: 1,
            reported: 2
        }
    );
    let wrong = [FILES[0], FileSpec { pages: 5, seed: 1 }];
    assert_eq!(
        Model::with_files(&h, &wrong).unwrap_err().to_string(),
        "file 1: the spec says 5 pages, the guest reports 4"
    );
}

#[test]
fn map_file_validation_in_its_order() {
    let mut m = model_files();
    let refused = [
        (map_file(0x1001, 1, 0, 0), Error::Misaligned),
        (map_file(0x1000, 1, 2, 0), Error::NoSuchFile),
        (map_file(0x1000, 9, 0, 0), Error::BeyondFile),
        (map_file(0x1000, 2, 1, 3), Error::BeyondFile),
        (map_file(0x1000, 1, 1, u64::MAX), Error::BeyondFile),
        // Range validation comes before the file checks.
        (map_file(0x1000, 0, 9, 0), Error::ZeroCount),
    ];
    for (req, e) in refused {
        assert_eq!(m.predict(&req), err(e), "{req:?}");
    }
    run(&mut m, &[(map(0x3000, 1, U), Response::Done)]);
    assert_eq!(
        m.predict(&map_file(0x1000, 4, 0, 0)),
        err(Error::InvalidState { addr: 0x3000 })
    );
    // Tables only: a new PT beside 0x3000's, no data frame.
    run(&mut m, &[(map_file(0x20_0000, 4, 0, 2), Response::Done)]);
    let s = m.stats();
    assert_eq!(s.page_table_frames, 3 + 1);
    assert_eq!(s.present_pages, 1);
    let q = Request::Query {
        addr: 0x20_0000,
        pages: 4,
        privilege: U,
    };
    let states = (2..6)
        .map(|page| PageState::NotPresentMmap { file: 0, page })
        .collect();
    run(&mut m, &[(q, Response::Pages(states))]);
    // Out of memory: the tables do not fit.
    let mut tight = model_files();
    // 32190 pages at 1 GiB: 63 PTs, a PD, a PDPT; one frame stays free.
    run(&mut tight, &[(map(0x4000_0000, 32190, U), Response::Done)]);
    assert_eq!(tight.stats().free_frames, BOOT_FREE - 32190 - 65);
    assert_eq!(
        tight.predict(&map_file(0x1000, 1, 0, 0)),
        err(Error::OutOfMemory)
    );
}

#[test]
fn reads_load_the_file_s_bytes_and_writes_make_private_copies() {
    let mut m = model_files();
    run(
        &mut m,
        &[
            (map_file(0x40_0000, 3, 0, 5), Response::Done),
            (map_file(0x50_0000, 3, 0, 5), Response::Done),
            (read(0x40_0000, 3 * 4096), file_sum(0, 5, 3)),
        ],
    );
    let clean = |page| {
        Some(ModelState::PresentMmap {
            file: 0,
            page,
            private: false,
        })
    };
    assert_eq!(m.state(0x40_1000), clean(6));
    assert_eq!(m.stats().faults_resolved, 3);
    assert_eq!(m.stats().present_pages, 3);
    // A write on a clean page: private in place, no frame, no fault.
    let free = m.stats().free_frames;
    run(&mut m, &[(write(0x40_1010, 16, 9), Response::Done)]);
    assert_eq!(m.stats().faults_resolved, 3);
    assert_eq!(m.stats().free_frames, free);
    assert_eq!(
        m.state(0x40_1000),
        Some(ModelState::PresentMmap {
            file: 0,
            page: 6,
            private: true
        })
    );
    let mut want = file_page(11, 6);
    protocol::pattern::fill(9, 0x40_1010, &mut want[0x10..0x20]);
    run(
        &mut m,
        &[(
            read(0x40_1000, 4096),
            Response::Checksum {
                checksum: checksum(&want),
            },
        )],
    );
    // The image never changes: the other mapping of page 6 reads the file.
    run(&mut m, &[(read(0x50_1000, 4096), file_sum(0, 6, 1))]);
    // A write to a not-present page: copied, private, one fault.
    run(&mut m, &[(write(0x50_2000, 8, 4), Response::Done)]);
    assert_eq!(m.stats().faults_resolved, 5);
    let mut want = file_page(11, 7);
    protocol::pattern::fill(4, 0x50_2000, &mut want[..8]);
    let sum = Response::Checksum {
        checksum: checksum(&want),
    };
    run(&mut m, &[(read(0x50_2000, 4096), sum.clone())]);
    // Reading the wrong bytes diverges.
    let mut m2 = m.clone();
    let d = super::diverges(&mut m2, read(0x40_0000, 4096), file_sum(1, 0, 1));
    assert!(d.reason.contains("different answer"), "{d}");
}

#[test]
fn the_transition_table_s_file_rows() {
    let mut m = model_files();
    // Pages: 0 not-present, 1 clean, 2 private.
    run(
        &mut m,
        &[
            (map_file(0x60_0000, 3, 1, 1), Response::Done),
            (read(0x60_1000, 4096), file_sum(1, 2, 1)),
            (write(0x60_2000, 4096, 3), Response::Done),
        ],
    );
    // MapFile on a file page: InvalidState.
    assert_eq!(
        m.predict(&map_file(0x60_0000, 1, 0, 0)),
        err(Error::InvalidState { addr: 0x60_0000 })
    );
    let mut unusable = m.clone();
    let conv = |to| convert(0x60_0000, 3, to);
    run(&mut m, &[(conv(AreaType::UsableRam), Response::Done)]);
    assert_eq!(m.state(0x60_0000), Some(ModelState::AllocOnWrite));
    let ram = Some(ModelState::PresentRam {
        writable: true,
        executable: false,
    });
    assert_eq!((m.state(0x60_1000), m.state(0x60_2000)), (ram, ram));
    // Same frame and data: the clean page keeps the file's bytes as RAM,
    // the not-present page reads zeros (the file is not loaded).
    let mut written = [0u8; 4096];
    protocol::pattern::fill(3, 0x60_2000, &mut written);
    let mut all = vec![0u8; 4096];
    all.extend(file_page(22, 2));
    all.extend(written);
    let sum = Response::Checksum {
        checksum: checksum(&all),
    };
    run(&mut m, &[(read(0x60_0000, 3 * 4096), sum)]);
    // To unusable: frames freed.
    let free = unusable.stats().free_frames;
    run(&mut unusable, &[(conv(AreaType::Unusable), Response::Done)]);
    assert_eq!(unusable.stats().free_frames, free + 2 + 3);
    assert_eq!(unusable.stats().present_pages, 0);
}

#[test]
fn a_model_without_specs_does_not_guess_file_bytes() {
    let mut m = Model::new(&hello_files());
    run(&mut m, &[(map_file(0x1000, 1, 0, 0), Response::Done)]);
    assert!(matches!(
        m.predict(&read(0x1000, 1)),
        Prediction::Unspecified(ref w) if w.contains("file 0")
    ));
    // Unusable pages still fault exactly.
    assert_eq!(
        m.predict(&read(0x9000, 1)),
        Prediction::Exact(Response::Fault {
            addr: 0x9000,
            write: false,
            reason: FaultReason::Unusable
        })
    );
}
