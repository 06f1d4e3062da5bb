//! Executable memory (W^X): a `Map` with `executable` is the only way a
//! page becomes executable, never writable too; every page a fault, a
//! swap-in, a file load or a convert makes present is data, NX set. Read
//! from the entries themselves with the oracle's decoder, which is written
//! from `protocol::formats` and not from this crate's codec.

use protocol::{Error, PageState};

use super::*;

/// The level-1 entry of `addr`, decoded by the oracle.
fn leaf(m: &mut SimMachine, addr: u64) -> Leaf {
    let raw = snapshot(m).entries.get(&(1, addr)).copied().unwrap_or(0);
    decode_leaf(raw, addr < 1 << 47)
}

/// Whether the entry of `addr` is present RAM with `writable` and
/// `executable`.
fn present_ram(m: &mut SimMachine, addr: u64, writable: bool, executable: bool) -> bool {
    matches!(
        leaf(m, addr),
        Leaf::Present { kind: PresentKind::Ram, writable: w, executable: x, .. } if (w, x) == (writable, executable)
    )
}

#[test]
fn writable_and_executable_is_refused_before_any_other_check() {
    let mut m = SimMachine::new(128);
    let before = snapshot(&mut m);
    for (addr, pages, who) in [
        (0x40_0000, 1, U),
        (0xffff_c080_0000_0000, 4, K),
        (0x40_0001, 0, U),             // misaligned, zero pages
        (0xffff_8000_0000_0000, 1, U), // the direct map, as a user
        (!0xfff, u64::MAX, K),         // overflowing
    ] {
        assert_eq!(
            req(&mut m, map(addr, pages, true, true, who)),
            Response::Error(Error::WriteAndExecute),
            "{addr:#x} {pages} {who:?}"
        );
    }
    assert_eq!(snapshot(&mut m), before, "nothing changed");
}

#[test]
fn only_an_executable_map_makes_code_and_code_stays_read_only() {
    let mut m = SimMachine::new(128);
    for (addr, who) in [(0x40_0000, U), (0xffff_c080_0000_0000, K)] {
        assert_eq!(req(&mut m, map(addr, 2, false, true, who)), Response::Done);
        assert!(
            present_ram(&mut m, addr, false, true),
            "{:?}",
            leaf(&mut m, addr)
        );
        let q = Request::Query {
            addr,
            pages: 1,
            privilege: who,
        };
        assert!(matches!(
            req(&mut m, q),
            Response::Pages(p) if matches!(p[..], [PageState::PresentRam { writable: false, executable: true, .. }])
        ));
        // A write faults; eviction and convert to usable RAM leave it.
        let w = Request::Write {
            addr,
            len: 1,
            seed: 1,
            privilege: who,
        };
        assert!(matches!(req(&mut m, w), Response::Fault { .. }));
        let e = Request::Evict {
            addr,
            pages: 2,
            privilege: who,
        };
        assert!(matches!(
            req(&mut m, e),
            Response::Evicted {
                swapped: 0,
                dropped: 0
            }
        ));
        convert(&mut m, addr, 2, AreaType::UsableRam);
        assert!(present_ram(&mut m, addr + 0x1000, false, true));
    }
    check(&mut m);
}

#[test]
fn every_page_a_fault_or_a_convert_fills_is_data() {
    let mut m = SimMachine::with_files(256, &[(4, 7)]);
    let (aow, file) = (0x40_0000u64, 0x80_0000u64);
    convert(&mut m, aow, 2, AreaType::UsableRam);
    let w = Request::Write {
        addr: aow,
        len: 8192,
        seed: 3,
        privilege: U,
    };
    assert_eq!(req(&mut m, w), Response::Done);
    assert!(present_ram(&mut m, aow, true, false), "allocate on write");
    // Swapped out and back in.
    let e = Request::Evict {
        addr: aow,
        pages: 2,
        privilege: U,
    };
    assert!(matches!(
        req(&mut m, e),
        Response::Reclaimed { .. } | Response::Evicted { .. }
    ));
    assert_reads_pattern(&mut m, 3, aow, 8192);
    assert!(present_ram(&mut m, aow + 0x1000, true, false), "swapped in");
    // A file page loaded, then converted to usable RAM.
    let mf = Request::MapFile {
        addr: file,
        pages: 2,
        file: 0,
        file_page: 0,
        privilege: U,
    };
    assert_eq!(req(&mut m, mf), Response::Done);
    let r = Request::Read {
        addr: file,
        len: 1,
        privilege: U,
    };
    assert!(matches!(req(&mut m, r), Response::Checksum { .. }));
    assert!(matches!(
        leaf(&mut m, file),
        Leaf::Present {
            kind: PresentKind::MmapClean,
            executable: false,
            ..
        }
    ));
    convert(&mut m, file, 1, AreaType::UsableRam);
    assert!(
        present_ram(&mut m, file, true, false),
        "converted file page"
    );
    check(&mut m);
}
