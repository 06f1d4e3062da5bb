//! Shared memory in guest memory (formats.rs, "The sharing rule"): a clean
//! image of frames shared across spaces and within one passes full and
//! incremental checks; each way to break the rule is reported, naming the
//! frame, the entries and the record, by full and incremental checks alike.

use protocol::{Privilege, Request};

use super::super::{CheckReport, Checker, Scope};
use super::{assert_broken, assert_broken_among};
use crate::bench::Scenario;
use crate::model::keys::tag;
use crate::synth::KSPACE;

pub(super) const U: Privilege = Privilege::User;
pub(super) const K: Privilege = Privilege::Kernel;
pub(super) const ADDR: u64 = 0x000f_ffff_ffff_f000;

pub(super) fn switch(space: u16) -> Request {
    Request::SwitchSpace {
        space,
        privilege: K,
    }
}

pub(super) fn share(addr: u64, pages: u64, space: u16, to: u64) -> Request {
    Request::Share {
        addr,
        pages,
        space,
        to,
        privilege: K,
    }
}

pub(super) fn unmap(addr: u64, pages: u64) -> Request {
    Request::Unmap {
        addr,
        pages,
        privilege: U,
    }
}

/// Space 0's 0x1000 (written) shared with 0x5000 of spaces 1 and 2 and
/// with its own 0x9000 (count 4); 0x2000 shared with space 1's 0x6000
/// (count 2); a private page at 0x3000; a read-only page at 0x8000 shared
/// with space 1's 0x8000; a kernel page.
pub(super) fn shared() -> Scenario {
    let mut s = Scenario::empty(16, 4);
    for req in [
        Request::CreateSpace { privilege: K },
        Request::CreateSpace { privilege: K },
        Request::map_writable(0x1000, 3, U),
        Request::Write {
            addr: 0x1000,
            len: 8192,
            seed: 1,
            privilege: U,
        },
        Request::Map {
            addr: 0x8000,
            pages: 1,
            writable: false,
            executable: false,
            contiguous: false,
            privilege: U,
        },
        Request::map_writable(KSPACE, 1, K),
        share(0x1000, 2, 1, 0x5000),
        share(0x1000, 1, 2, 0x5000),
        share(0x1000, 1, 0, 0x9000),
        share(0x8000, 1, 1, 0x8000),
    ] {
        s.apply(req);
    }
    s
}

pub(super) fn full(s: &Scenario) -> CheckReport {
    Checker::new().full(&s.img.mem, &s.img.hello, &s.model.view(), None)
}

pub(super) fn recorded(s: &mut Scenario) -> Checker {
    let mut checker = Checker::new();
    let changes = s.take_changes();
    let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), Some(&changes));
    assert!(r.is_clean(), "{r}");
    checker
}

pub(super) fn incremental(s: &mut Scenario, checker: &mut Checker) -> CheckReport {
    let changes = s.take_changes();
    let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
    assert!(matches!(r.scope, Scope::Incremental { .. }), "{r}");
    r
}

pub(super) fn texts(r: &CheckReport) -> Vec<String> {
    let mut v: Vec<String> = r.violations.iter().map(|v| v.to_string()).collect();
    v.sort();
    v
}

/// The frame the page of key `virt` maps, and its leaf's address.
pub(super) fn frame_of(s: &Scenario, virt: u64) -> (u64, u64) {
    let at = s.img.leaf_addr(virt).expect("a mapped page");
    (s.img.read_u64(at) & ADDR, at)
}

/// The frame-info record's address of the frame at `frame`.
pub(super) fn record_at(s: &Scenario, frame: u64) -> u64 {
    s.img.hello.frame_info.start + (frame >> 12) * 8
}

/// The full check's violations, which the incremental one must repeat.
pub(super) fn both(s: &mut Scenario, checker: &mut Checker) -> CheckReport {
    let r = full(s);
    assert_eq!(texts(&incremental(s, checker)), texts(&r));
    r
}

#[test]
fn shared_frames_across_spaces_and_within_one_pass() {
    let mut s = shared();
    let r = full(&s);
    assert!(r.is_clean(), "{r}");
    let (f, _) = frame_of(&s, 0x1000);
    for key in [tag(1, 0x5000), tag(2, 0x5000), 0x9000] {
        assert_eq!(frame_of(&s, key).0, f);
    }
    assert_eq!(s.img.read_u64(record_at(&s, f)), 1 << 62 | 4);
    let mut checker = recorded(&mut s);
    for req in [
        switch(1),
        // Through a mapping of another space: every mapping's bytes.
        Request::Write {
            addr: 0x5800,
            len: 100,
            seed: 9,
            privilege: U,
        },
        // A count changed from space 1 constrains spaces 0 and 2.
        unmap(0x5000, 1),
        share(0x6000, 1, 1, 0x20_0000),
        switch(0),
        Request::DestroySpace {
            space: 2,
            privilege: K,
        },
        unmap(0x1000, 2),
        Request::Convert {
            addr: 0x9000,
            pages: 1,
            to: protocol::AreaType::Unusable,
            privilege: U,
        },
    ] {
        s.apply(req.clone());
        let r = incremental(&mut s, &mut checker);
        assert!(r.is_clean(), "after {req:?}: {r}\nfull: {}", full(&s));
    }
    // The frame of 0x1000 went with its last mapping.
    assert_eq!(s.img.read_u64(record_at(&s, f)), 0);
}

#[test]
fn a_count_that_is_not_the_number_of_shared_entries_is_reported() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (f, _) = frame_of(&s, 0x1000);
    s.img.write_u64(record_at(&s, f), 1 << 62 | 3);
    let r = both(&mut s, &mut checker);
    let says = format!(
        "shared frame {f:#x}: its frame-info record counts 3 mappings, but 4 present shared \
         entries name it: 0x1000, 0x9000, 0x5000 in space 1, 0x5000 in space 2"
    );
    assert_broken(&r, &[5], &says);
}

#[test]
fn a_shared_frame_also_mapped_privately_is_reported() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (f, _) = frame_of(&s, 0x1000);
    let (own, at) = frame_of(&s, 0x3000);
    let e = s.img.read_u64(at);
    s.img.write_u64(at, (e & !ADDR) | f);
    s.img.set_used(own >> 12, false);
    s.img.write_u64(record_at(&s, own), 0);
    let r = both(&mut s, &mut checker);
    assert_broken_among(
        &r,
        2,
        &format!(
            "frame {f:#x} is mapped shared at 0x1000 and is also mapped at 0x3000 (data page)"
        ),
    );
}

#[test]
fn shared_entries_of_one_frame_with_different_w_are_reported() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (f, at) = frame_of(&s, tag(2, 0x5000));
    let e = s.img.read_u64(at);
    s.img.write_u64(at, e & !(1 << 1));
    let r = both(&mut s, &mut checker);
    assert_broken_among(
        &r,
        4,
        &format!(
            "shared frame {f:#x} is writable at 0x1000, 0x9000, 0x5000 in space 1 but read-only \
             at 0x5000 in space 2"
        ),
    );
}

#[test]
fn shared_records_without_entries_and_entries_without_records_are_reported() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (own, _) = frame_of(&s, 0x3000);
    s.img.write_u64(record_at(&s, own), 1 << 62 | 1);
    let (f, _) = frame_of(&s, 0x8000);
    s.img.write_u64(record_at(&s, f), 0);
    let r = both(&mut s, &mut checker);
    assert_broken(
        &r,
        &[3, 5],
        &format!(
            "frame {own:#x}'s frame-info record is 0x4000000000000001 (shared, count 1), but no \
             present shared entry names the frame"
        ),
    );
    assert_broken(
        &r,
        &[3, 5],
        &format!(
            "frame {f:#x} is mapped shared at 0x8000, 0x8000 in space 1, but its frame-info \
             record is no record (0), not 0x4000000000000002 (shared, count 2)"
        ),
    );
}

#[test]
fn an_unmap_that_frees_a_frame_still_mapped_is_named_with_its_page_and_space() {
    // What inject-shared-unmap-frees does: the unmap of one mapping frees
    // the frame (and its record) while others still map it.
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (f, _) = frame_of(&s, 0x2000);
    s.apply(unmap(0x2000, 1));
    s.img.set_used(f >> 12, false);
    s.img.write_u64(record_at(&s, f), 0);
    let r = both(&mut s, &mut checker);
    assert_broken(
        &r,
        &[1, 5],
        &format!(
            "shared frame {f:#x} is free in the frame bitmap, but is still mapped at 0x6000 in \
             space 1 (record no record (0)): a mapping that went (unmap, convert, destroy, \
             reset) freed the frame while another remained"
        ),
    );
}

#[test]
fn a_shared_entry_in_the_kernel_half_is_reported() {
    let mut s = shared();
    let mut checker = recorded(&mut s);
    let (f, at) = frame_of(&s, KSPACE);
    let e = s.img.read_u64(at);
    s.img.write_u64(at, (e & !(7 << 9)) | 0b101 << 9);
    s.img.write_u64(record_at(&s, f), 1 << 62 | 1);
    let r = both(&mut s, &mut checker);
    assert_broken_among(
        &r,
        4,
        &format!("present shared entry in the kernel half (shared memory is user memory only); virt {KSPACE:#x}"),
    );
}
