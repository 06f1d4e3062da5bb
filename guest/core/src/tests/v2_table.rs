//! Every row and column of the version-2 transition table
//! (`protocol::semantics`, "Convert, and every other transition"), each
//! state made by real requests, with the data checked after the change.

use crate::conv::usize_of;
use protocol::pattern::{checksum, fill};
use protocol::{AreaType, Error, PageState, Reclaim};

use super::*;

const ADDR: u64 = 0x1234_5000;
const FILE_SEED: u64 = 0xf11e;
const FILE_PAGE: u64 = 2;
const SEED: u64 = 7;

fn file_page_bytes() -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    fill(FILE_SEED, FILE_PAGE * 4096, &mut b);
    b
}

fn pattern_page() -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    fill(SEED, ADDR, &mut b);
    b
}

pub(crate) fn files_machine() -> SimMachine {
    SimMachine::with_files(256, &[(16, FILE_SEED), (1, 9)])
}

/// Sends `r`, dropping reclaim events; panics on an error.
pub(crate) fn ok(m: &mut SimMachine, r: Request) -> Response {
    let (_, a) = req(m, r.clone()).split_reclaimed();
    assert!(!matches!(a, Response::Error(_)), "{r:?} answered {a:?}");
    a
}

fn map(writable: bool) -> Request {
    Request::Map {
        addr: ADDR,
        pages: 1,
        writable,
        executable: false,
        contiguous: false,
        privilege: U,
    }
}

fn map_file() -> Request {
    Request::MapFile {
        addr: ADDR,
        pages: 1,
        file: 0,
        file_page: FILE_PAGE,
        privilege: U,
    }
}

fn write() -> Request {
    Request::Write {
        addr: ADDR,
        len: 4096,
        seed: SEED,
        privilege: U,
    }
}

fn read(m: &mut SimMachine) -> Response {
    let r = Request::Read {
        addr: ADDR,
        len: 4096,
        privilege: U,
    };
    req(m, r).split_reclaimed().1
}

fn evict() -> Request {
    Request::Evict {
        addr: ADDR,
        pages: 1,
        privilege: U,
    }
}

fn convert(to: AreaType) -> Request {
    Request::Convert {
        addr: ADDR,
        pages: 1,
        to,
        privilege: U,
    }
}

/// The eight states, made by requests, with the data a read must give.
fn make(m: &mut SimMachine, state: &str) -> Option<Vec<u8>> {
    let zero = vec![0u8; 4096];
    match state {
        "unusable" => None,
        "ram_w" => {
            ok(m, map(true));
            ok(m, write());
            Some(pattern_page())
        }
        "ram_ro" => {
            ok(m, map(false));
            Some(zero)
        }
        "aow" => {
            ok(m, convert(AreaType::UsableRam));
            Some(zero)
        }
        "swap" => {
            ok(m, map(true));
            ok(m, write());
            ok(m, evict());
            Some(pattern_page())
        }
        "mmap_clean" => {
            ok(m, map_file());
            assert_eq!(
                read(m),
                Response::Checksum {
                    checksum: checksum(&file_page_bytes())
                }
            );
            Some(file_page_bytes())
        }
        "mmap_private" => {
            ok(m, map_file());
            ok(m, write());
            Some(pattern_page())
        }
        "mmap_np" => {
            ok(m, map_file());
            Some(file_page_bytes())
        }
        _ => unreachable!(),
    }
}

/// A short name of a state.
fn name(p: Pte) -> &'static str {
    match p {
        Pte::Unusable => "unusable",
        Pte::PresentRam { writable: true, .. } => "ram_w",
        Pte::PresentRam {
            writable: false, ..
        } => "ram_ro",
        Pte::AllocOnWrite => "aow",
        Pte::OnSwap { .. } => "swap",
        Pte::PresentMmap {
            private: false,
            writable: false,
            ..
        } => "mmap_clean",
        Pte::PresentMmap {
            private: true,
            writable: true,
            ..
        } => "mmap_private",
        Pte::NotPresentMmap { .. } => "mmap_np",
        _ => "corrupt",
    }
}

const STATES: [&str; 8] = [
    "unusable",
    "ram_w",
    "ram_ro",
    "aow",
    "swap",
    "mmap_clean",
    "mmap_private",
    "mmap_np",
];

#[test]
fn every_state_is_made_by_requests() {
    for s in STATES {
        let mut m = files_machine();
        make(&mut m, s);
        assert_eq!(name(m.vmm.page_state(ADDR)), s);
        check(&mut m);
        reset_and_check(&mut m);
    }
}

/// `(state, column) -> state after`, the table of `protocol::semantics`.
fn table(state: &str, column: &str) -> &'static str {
    match (column, state) {
        ("to_usable", "unusable" | "aow" | "mmap_np") => "aow",
        ("to_usable", "mmap_clean" | "mmap_private" | "ram_w") => "ram_w",
        ("to_usable", "ram_ro") => "ram_ro",
        ("to_usable", "swap") => "swap",
        ("to_unusable", _) => "unusable",
        ("map_file", "unusable") => "mmap_np",
        ("evict", "ram_w" | "mmap_private" | "swap") => "swap",
        ("evict", "mmap_clean" | "mmap_np") => "mmap_np",
        ("read", "unusable") => "unusable",
        ("read", "aow" | "swap" | "ram_w") => "ram_w",
        ("read", "mmap_np" | "mmap_clean") => "mmap_clean",
        ("write", "unusable") => "unusable",
        ("write", "aow" | "swap" | "ram_w") => "ram_w",
        ("write", "mmap_np" | "mmap_clean" | "mmap_private") => "mmap_private",
        (_, s) => STATES.into_iter().find(|&x| x == s).unwrap_or("?"),
    }
}

#[test]
fn every_transition_of_the_table() {
    let columns = [
        "to_usable",
        "to_unusable",
        "map_file",
        "evict",
        "read",
        "write",
    ];
    for s in STATES {
        for c in columns {
            let mut m = files_machine();
            let data = make(&mut m, s);
            let before = m.vmm.page_state(ADDR);
            let answer = match c {
                "to_usable" => req(&mut m, convert(AreaType::UsableRam)),
                "to_unusable" => req(&mut m, convert(AreaType::Unusable)),
                "map_file" => req(&mut m, map_file()),
                "evict" => req(&mut m, evict()),
                "read" => req(
                    &mut m,
                    Request::Read {
                        addr: ADDR,
                        len: 1,
                        privilege: U,
                    },
                ),
                _ => req(
                    &mut m,
                    Request::Write {
                        addr: ADDR,
                        len: 1,
                        seed: SEED,
                        privilege: U,
                    },
                ),
            };
            let (_, answer) = answer.split_reclaimed();
            let after = m.vmm.page_state(ADDR);
            assert_eq!(name(after), table(s, c), "{s} {c}: {answer:?}");
            if c == "map_file" && s != "unusable" {
                assert_eq!(answer, Response::Error(Error::InvalidState { addr: ADDR }));
            }
            // Data survives every change that keeps the page usable, except
            // the 1-byte write, which changes byte 0 only.
            if let Some(mut d) = data {
                if name(after) != "unusable" && !(c == "to_usable" && s == "mmap_np") {
                    if c == "write" && s != "ram_ro" {
                        d[0] = protocol::pattern::pattern_byte(SEED, ADDR);
                    }
                    assert_eq!(
                        read(&mut m),
                        Response::Checksum {
                            checksum: checksum(&d)
                        },
                        "{s} {c}"
                    );
                }
            }
            // The frame of a present page that stays present is kept.
            if c == "to_usable" && before.is_present() {
                assert_eq!(after.frame(), before.frame(), "{s} {c} same frame");
            }
            check(&mut m);
            reset_and_check(&mut m);
        }
    }
}

#[test]
fn query_names_the_file_page_of_present_mmap_pages() {
    let mut m = files_machine();
    ok(&mut m, map_file());
    ok(&mut m, write());
    let r = req(
        &mut m,
        Request::Query {
            addr: ADDR,
            pages: 1,
            privilege: U,
        },
    );
    match r {
        Response::Pages(p) => assert!(matches!(
            p[0],
            PageState::PresentMmap {
                file: 0,
                page: FILE_PAGE,
                private: true,
                ..
            }
        )),
        other => panic!("{other:?}"),
    }
}

#[test]
fn map_file_refuses_unknown_files_and_pages_beyond() {
    let mut m = files_machine();
    let mf = |file, file_page, pages| Request::MapFile {
        addr: ADDR,
        pages,
        file,
        file_page,
        privilege: U,
    };
    assert_eq!(req(&mut m, mf(2, 0, 1)), Response::Error(Error::NoSuchFile));
    assert_eq!(
        req(&mut m, mf(0, 15, 2)),
        Response::Error(Error::BeyondFile)
    );
    assert_eq!(
        req(&mut m, mf(0, u64::MAX, 2)),
        Response::Error(Error::BeyondFile)
    );
    assert_eq!(req(&mut m, mf(1, 0, 1)), Response::Done);
    check(&mut m);
}

#[test]
fn evict_reports_each_page_in_order_and_stops_when_the_store_is_full() {
    let mut m = files_machine();
    let pages = 40;
    ok(&mut m, Request::map_writable(ADDR, pages, U));
    ok(
        &mut m,
        Request::Write {
            addr: ADDR,
            len: pages * 4096,
            seed: 3,
            privilege: U,
        },
    );
    let r = req(
        &mut m,
        Request::Evict {
            addr: ADDR,
            pages,
            privilege: U,
        },
    );
    let (events, answer) = r.split_reclaimed();
    let Response::Evicted {
        swapped,
        dropped: 0,
    } = answer
    else {
        panic!("{answer:?}")
    };
    // Random data does not compress: the store of 256 / 8 frames (less its
    // tables) holds fewer than 40 pages.
    assert!(swapped > 0 && swapped < pages, "{swapped}");
    assert_eq!(events.len() as u64, swapped);
    for (i, e) in events.iter().enumerate() {
        assert!(matches!(e, Reclaim::Swapped { addr, .. } if *addr == ADDR + i as u64 * 4096));
    }
    check(&mut m);
    let mut want = vec![0u8; usize_of(pages * 4096)];
    fill(3, ADDR, &mut want);
    let r = req(
        &mut m,
        Request::Read {
            addr: ADDR,
            len: pages * 4096,
            privilege: U,
        },
    );
    assert_eq!(
        r.split_reclaimed().1,
        Response::Checksum {
            checksum: checksum(&want)
        }
    );
    check(&mut m);
    reset_and_check(&mut m);
}

#[test]
fn a_page_of_zeros_compresses_and_random_data_is_stored_raw() {
    assert!(lz4_flex::block::get_maximum_output_size(4096) <= 4608);
    let mut m = files_machine();
    ok(&mut m, map(true));
    ok(&mut m, evict());
    let s = m.vmm.stats();
    assert!(s.swap_slots_used == 1 && s.swap_bytes_used < 64, "{s:?}");
    ok(&mut m, write());
    ok(&mut m, evict());
    assert_eq!(m.vmm.stats().swap_bytes_used, 4096);
    check(&mut m);
}
