//! Images of several address spaces, kept in step with the model: a clean
//! one passes full and incremental checks; a kernel half that is not
//! space 0's, a destroyed space left in memory, a PML4 marked free and a
//! frame two spaces map are each reported, naming the space, by full and
//! incremental checks alike.

use protocol::{Privilege, Request};

use super::super::{CheckReport, Checker, Scope, Violation};
use super::{assert_broken, assert_broken_among};
use crate::bench::Scenario;
use crate::model::keys::tag;
use crate::synth::KSPACE;

const U: Privilege = Privilege::User;
const K: Privilege = Privilege::Kernel;

fn switch(space: u16) -> Request {
    Request::SwitchSpace {
        space,
        privilege: K,
    }
}

fn write(addr: u64, seed: u64, privilege: Privilege) -> Request {
    Request::Write {
        addr,
        len: 4096,
        seed,
        privilege,
    }
}

/// Spaces 1 and 2, each with written pages at 0x1000 (and 1 a file page
/// and a page on swap), a written kernel page, space 0 current.
fn spaces() -> Scenario {
    let mut s = Scenario::empty(16, 4);
    for req in [
        Request::CreateSpace { privilege: K },
        Request::CreateSpace { privilege: K },
        switch(1),
        Request::map_writable(0x1000, 3, U),
        write(0x1000, 1, U),
        write(0x3000, 3, U),
        Request::MapFile {
            addr: 0x10_0000,
            pages: 2,
            file: 0,
            file_page: 1,
            privilege: U,
        },
        write(0x10_0000, 4, U),
        Request::Evict {
            addr: 0x3000,
            pages: 1,
            privilege: U,
        },
        Request::map_writable(KSPACE, 1, K),
        write(KSPACE, 5, K),
        switch(2),
        Request::map_writable(0x1000, 1, U),
        write(0x1000, 2, U),
        switch(0),
    ] {
        s.apply(req);
    }
    assert_eq!(s.model.space_roots().len(), 2);
    s
}

fn full(s: &Scenario) -> CheckReport {
    Checker::new().full(&s.img.mem, &s.img.hello, &s.model.view(), None)
}

/// A checker with the record of a clean full check of `s`.
fn recorded(s: &mut Scenario) -> Checker {
    let mut checker = Checker::new();
    let changes = s.take_changes();
    let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), Some(&changes));
    assert!(r.is_clean(), "{r}");
    checker
}

fn incremental(s: &mut Scenario, checker: &mut Checker) -> CheckReport {
    let changes = s.take_changes();
    let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
    assert!(matches!(r.scope, Scope::Incremental { .. }), "{r}");
    r
}

/// The violations' texts, sorted.
fn texts(r: &CheckReport) -> Vec<String> {
    let mut v: Vec<String> = r.violations.iter().map(|v| v.to_string()).collect();
    v.sort();
    v
}

#[test]
fn a_clean_image_of_three_spaces_passes() {
    let mut s = spaces();
    let r = full(&s);
    assert!(r.is_clean(), "{r}");
    // Each space's page is its own, named by its key; the kernel page is
    // one, shared.
    let user: Vec<u64> = r
        .walk
        .translations
        .iter()
        .map(|t| t.virt)
        .filter(|&v| crate::model::keys::is_user(v))
        .collect();
    assert_eq!(
        user,
        [
            tag(1, 0x1000),
            tag(1, 0x2000),
            tag(1, 0x10_0000),
            tag(2, 0x1000)
        ]
    );
    let pml4s = r.walk.tables.iter().filter(|t| t.level == 4).count();
    assert_eq!(pml4s, 2);
    // What the CPU translates with space 2 current: its page and the
    // kernel's, at plain addresses.
    let of_2: Vec<u64> = r
        .walk
        .of_space(2)
        .map(|t| t.virt)
        .filter(|&v| crate::model::keys::is_user(v) || v == KSPACE)
        .collect();
    assert_eq!(of_2, [0x1000, KSPACE]);
    // Incremental checks across switches, a destroy and a new space.
    let mut checker = recorded(&mut s);
    for req in [
        switch(1),
        write(0x2000, 7, U),
        switch(2),
        Request::DestroySpace {
            space: 1,
            privilege: K,
        },
        Request::CreateSpace { privilege: K },
        switch(1),
        Request::map_writable(0x1000, 2, U),
        // A new kernel PML4 entry, which every space's PML4 shares.
        Request::map_writable(0xffff_c100_0000_0000, 1, K),
        switch(0),
    ] {
        s.apply(req.clone());
        let r = incremental(&mut s, &mut checker);
        assert!(r.is_clean(), "after {req:?}: {r}\nfull: {}", full(&s));
    }
    s.apply(Request::Reset { privilege: K });
    let changes = s.take_changes();
    let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
    assert!(r.is_clean() && r.scope == Scope::Full, "{r}");
}

#[test]
fn a_kernel_half_that_is_not_space_0s_is_reported() {
    let mut s = spaces();
    let mut checker = recorded(&mut s);
    let root = s.model.space_root(2).expect("space 2 lives");
    let slot = (KSPACE >> 39) & 511;
    let at = root + slot * 8;
    let e = s.img.read_u64(at);
    s.img.write_u64(at, 0);
    let says = format!("the kernel half of space 2's PML4 at {root:#x} is not space 0's");
    let r = full(&s);
    assert_broken(&r, &[4], &says);
    assert!(r.violations.iter().any(|v| matches!(
        v,
        Violation::KernelHalf { space: 2, index, expected, got: 0, differing: 1, .. }
            if u64::from(*index) == slot && *expected == e
    )));
    assert_eq!(texts(&incremental(&mut s, &mut checker)), texts(&r));
}

#[test]
fn a_destroyed_space_left_in_memory_is_named() {
    let mut s = spaces();
    let mut checker = recorded(&mut s);
    let root = s.model.space_root(2).expect("space 2 lives");
    // Its PML4 and tables as they are, to put back after the destroy: a
    // guest that forgot to free them.
    let (tables, _) = crate::checker::read_space_tables(
        &s.img.mem,
        &s.img.hello,
        &std::iter::once((2, root)).collect(),
    );
    let kept: Vec<(u64, Vec<u8>)> = tables
        .iter()
        .filter(|t| t.table.level < 4 && crate::model::keys::untag(t.table.path.virt).0 == 2)
        .map(|t| t.table.frame)
        .chain([root])
        .map(|f| (f, s.img.mem.bytes[f as usize..f as usize + 4096].to_vec()))
        .collect();
    assert_eq!(kept.len(), 4, "its PML4, PDPT, PD and PT");
    s.apply(Request::DestroySpace {
        space: 2,
        privilege: K,
    });
    for (f, bytes) in &kept {
        s.img.write(*f, bytes);
        s.img.set_used(f >> 12, true);
    }
    let r = incremental(&mut s, &mut checker);
    assert_broken(
        &r,
        &[3],
        "4 frames of destroyed space 2 (its PML4, tables or pages) still used but owned by nothing",
    );
    assert_eq!(texts(&r), texts(&full(&s)));
    assert_eq!(r.violations.len(), 1, "no frame leaked anonymously: {r}");
}

#[test]
fn a_pml4_marked_free_is_reported_with_its_space() {
    let mut s = spaces();
    let mut checker = recorded(&mut s);
    // After switches (which change no page), incrementally.
    s.apply(switch(1));
    s.apply(switch(2));
    assert!(incremental(&mut s, &mut checker).is_clean());
    let root = s.model.space_root(1).expect("space 1 lives");
    s.img.set_used(root >> 12, false);
    let r = full(&s);
    assert_broken(
        &r,
        &[1],
        &format!("PML4 frame {root:#x} is free in the frame bitmap; virt 0x0 in space 1"),
    );
    assert_eq!(texts(&incremental(&mut s, &mut checker)), texts(&r));
}

#[test]
fn a_frame_two_spaces_map_is_reported_with_both() {
    let mut s = spaces();
    let mut checker = recorded(&mut s);
    let one = s.img.leaf_addr(tag(1, 0x1000)).expect("space 1's page");
    let two = s.img.leaf_addr(tag(2, 0x1000)).expect("space 2's page");
    let frame = s.img.read_u64(one) & 0x000f_ffff_ffff_f000;
    let own = s.img.read_u64(two);
    s.img.write_u64(two, (own & !0x000f_ffff_ffff_f000) | frame);
    s.img.set_used((own & 0x000f_ffff_ffff_f000) >> 12, false);
    let r = full(&s);
    assert_broken_among(
        &r,
        2,
        &format!(
            "data page frame {frame:#x} is also mapped at 0x1000 in space 1; virt 0x1000 in space 2"
        ),
    );
    assert_eq!(texts(&incremental(&mut s, &mut checker)), texts(&r));
}

#[test]
fn a_table_two_spaces_share_is_reported() {
    let mut s = spaces();
    let mut checker = recorded(&mut s);
    // Space 2's PML4 entry 0 made space 1's: its PDPT is space 1's too.
    let r1 = s.model.space_root(1).expect("space 1");
    let r2 = s.model.space_root(2).expect("space 2");
    let theirs = s.img.read_u64(r1);
    s.img.write_u64(r2, theirs);
    let r = full(&s);
    assert_broken_among(
        &r,
        2,
        "is also the level-3 table for 0x0 in space 1; virt 0x0 in space 2",
    );
    assert_eq!(texts(&incremental(&mut s, &mut checker)), texts(&r));
}
