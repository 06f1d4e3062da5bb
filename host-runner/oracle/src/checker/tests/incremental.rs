//! Incremental checks against full ones: random operations (address
//! spaces made, switched and destroyed among them) run through the model
//! and a synthetic image kept in step with it; a clean image
//! passes incremental checks, and a broken one (at a page, frame, slot or
//! record the changes or the record's differences cover) gets the same
//! violations from an incremental check as from a full one.

use proptest::prelude::*;
use protocol::{AreaType, Privilege, Request};

use super::super::{CheckReport, Checker, Scope};
use super::mutations::mutate;
use crate::bench::Scenario;

/// The pages the operations use: 600 pages across a table boundary.
const BASE: u64 = 0x1f_f000 - 100 * 4096;
const U: Privilege = Privilege::User;

fn addr(p: u64) -> u64 {
    BASE + (p % 600) * 4096
}

pub(super) fn op() -> impl Strategy<Value = Option<Request>> {
    let p = 0u64..600;
    let n = 1u64..12;
    prop_oneof![
        4 => (p.clone(), n.clone(), any::<bool>()).prop_map(|(p, n, w)| Some(Request::Map {
            executable: false,
            addr: addr(p), pages: n, writable: w, contiguous: false, privilege: U
        })),
        2 => (p.clone(), n.clone()).prop_map(|(p, n)| Some(Request::Unmap {
            addr: addr(p), pages: n, privilege: U
        })),
        2 => (p.clone(), n.clone(), any::<bool>()).prop_map(|(p, n, u)| Some(Request::Convert {
            addr: addr(p), pages: n,
            to: if u { AreaType::UsableRam } else { AreaType::Unusable }, privilege: U
        })),
        4 => (p.clone(), 0u64..4096, 1u64..9000, any::<u64>()).prop_map(|(p, o, len, seed)| {
            Some(Request::Write { addr: addr(p) + o, len, seed, privilege: U })
        }),
        2 => (p.clone(), 1u64..9000).prop_map(|(p, len)| Some(Request::Read {
            addr: addr(p), len, privilege: U
        })),
        2 => (p.clone(), 1u64..4, 0u64..4).prop_map(|(p, n, fp)| Some(Request::MapFile {
            addr: addr(p), pages: n, file: 0, file_page: fp.min(4 - n), privilege: U
        })),
        4 => (p.clone(), 1u64..6).prop_map(|(p, n)| Some(Request::Evict {
            addr: addr(p), pages: n, privilege: U
        })),
        1 => (p, 1u64..6).prop_map(|(p, n)| Some(Request::Query {
            addr: addr(p), pages: n, privilege: U
        })),
        1 => (1u64..4).prop_map(|count| Some(Request::AllocFrames {
            count, contiguous: false, privilege: Privilege::Kernel
        })),
        1 => Just(Some(Request::CreateSpace { privilege: Privilege::Kernel })),
        2 => (0u16..4).prop_map(|space| Some(Request::SwitchSpace {
            space, privilege: Privilege::Kernel
        })),
        1 => (1u16..4).prop_map(|space| Some(Request::DestroySpace {
            space, privilege: Privilege::Kernel
        })),
        2 => Just(None),
    ]
}

/// A `FreeFrames` of the first frame the host holds, if any.
fn free_host(s: &Scenario) -> Option<Request> {
    let f = s.model.view().host_frames().next()?;
    Some(Request::FreeFrames {
        frame: f << 12,
        count: 1,
        privilege: Privilege::Kernel,
    })
}

/// Every violation's text, sorted.
fn texts(r: &CheckReport) -> Vec<String> {
    let mut v: Vec<String> = r.violations.iter().map(|v| v.to_string()).collect();
    v.sort();
    v
}

/// A fresh full check of `s`.
fn full(s: &Scenario) -> CheckReport {
    Checker::new().full(&s.img.mem, &s.img.hello, &s.model.view(), None)
}

/// Runs `ops` (`None`: an incremental check, which must pass); answers
/// the checker, its record made.
fn run(s: &mut Scenario, ops: &[Option<Request>]) -> Result<Checker, TestCaseError> {
    let mut checker = Checker::new();
    let changes = s.take_changes();
    let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), Some(&changes));
    prop_assert!(r.is_clean(), "{}", r);
    for (i, op) in ops.iter().enumerate() {
        let req = match op {
            Some(r) => Some(r.clone()),
            None if i % 3 == 0 => free_host(s),
            None => None,
        };
        match req {
            Some(req) => s.apply(req),
            None => {
                let changes = s.take_changes();
                let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
                prop_assert!(r.is_clean(), "after op {i}: {r}\nfull: {}", full(s));
                prop_assert!(matches!(r.scope, Scope::Incremental { .. }), "{r}");
            }
        }
    }
    Ok(checker)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn incremental_checks_of_a_clean_image_pass(ops in prop::collection::vec(op(), 1..60)) {
        let mut s = Scenario::empty(16, 4);
        let mut checker = run(&mut s, &ops)?;
        let changes = s.take_changes();
        let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
        prop_assert!(r.is_clean(), "{r}");
        // Nothing changed: nothing to verify again.
        let changes = s.take_changes();
        let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
        prop_assert!(r.is_clean(), "{r}");
        prop_assert!(matches!(r.scope, Scope::Incremental { pages: 0, .. }), "{r:?}");
        let f = full(&s);
        prop_assert!(f.is_clean(), "{f}");
    }

    #[test]
    fn incremental_checks_find_what_full_checks_find(
        ops in prop::collection::vec(op(), 1..50),
        last in prop::collection::vec(op(), 1..8),
        kind in 0u8..15,
        sel in any::<u64>(),
    ) {
        let mut s = Scenario::empty(16, 4);
        let mut checker = run(&mut s, &ops)?;
        for req in last.into_iter().flatten() {
            s.apply(req);
        }
        let changes = s.take_changes();
        if !mutate(&mut s, &changes, kind, sel) {
            return Ok(());
        }
        let inc = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
        let f = full(&s);
        prop_assert!(matches!(inc.scope, Scope::Incremental { .. }), "{inc:?}");
        prop_assert!(!f.is_clean(), "mutation {kind} broke nothing");
        prop_assert_eq!(texts(&inc), texts(&f), "mutation {}", kind);
    }
}

/// A PD entry going between a page table and a whole allocate-on-write
/// entry over the same frame (whose bytes then mean nothing), and a whole
/// entry moved onto a frame another table holds: incremental checks judge
/// each as full ones do.
#[test]
fn whole_allocate_on_write_entries_are_judged_alike_by_incremental_checks() {
    const R: u64 = 0x4000_0000;
    let mut s = Scenario::empty(64, 4);
    s.apply(Request::Convert {
        addr: R,
        pages: 512,
        to: AreaType::UsableRam,
        privilege: U,
    });
    let mut checker = Checker::new();
    let changes = s.take_changes();
    let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), Some(&changes));
    assert!(r.is_clean(), "{r}");
    let inc = |s: &mut Scenario, checker: &mut Checker| {
        let ch = s.take_changes();
        checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &ch)
    };
    let at = s.img.entry_addr(R, 2);
    let table_raw = s.img.read_u64(at);
    let frame = table_raw & 0x000f_ffff_ffff_f000;
    // Table -> whole entry over the same frame, its bytes garbage.
    s.img.write(frame, &[0xa5; 4096]);
    s.img.write_u64(at, frame | 2);
    let r = inc(&mut s, &mut checker);
    assert!(r.is_clean(), "to whole: {r}");
    assert!(matches!(r.scope, Scope::Incremental { .. }), "{r}");
    // Back to a table of 512 allocate-on-write entries, same frame.
    for k in 0..512 {
        s.img.write_u64(frame + k * 8, 2);
    }
    s.img.write_u64(at, table_raw);
    let r = inc(&mut s, &mut checker);
    assert!(r.is_clean(), "to table: {r}");
    // Whole again, then over the PD's own frame (its old frame freed):
    // shared with the PD, as the full check says.
    s.img.write_u64(at, frame | 2);
    let r = inc(&mut s, &mut checker);
    assert!(r.is_clean(), "whole again: {r}");
    let pd = at & !0xfff;
    s.img.write_u64(at, pd | 2);
    s.img.set_used(frame >> 12, false);
    let r = inc(&mut s, &mut checker);
    let f = full(&s);
    assert!(!f.is_clean());
    assert_eq!(texts(&r), texts(&f), "incremental {r}\nfull {f}");
}

/// Two pages whose frames `Query` reported, their entries swapped (same
/// bytes, so only the frames are wrong), in a table the last check saw
/// (`new_table` false) or one made since: the incremental check names both
/// frames against what `Query` reported, as the full check does; the
/// reported frames are read alongside each table's entries, so every
/// page of the table must still find its own.
fn queried_frames_that_moved(new_table: bool) {
    let mut s = Scenario::empty(16, 4);
    let at = 0x4000_0000;
    let checker = new_table.then(|| run(&mut s, &[None]).expect("a clean image passes"));
    s.apply(Request::Map {
        executable: false,
        addr: at,
        pages: 8,
        writable: true,
        contiguous: false,
        privilege: U,
    });
    s.apply(Request::Query {
        addr: at,
        pages: 8,
        privilege: U,
    });
    let mut checker =
        checker.unwrap_or_else(|| run(&mut s, &[None]).expect("a clean image passes"));
    let (a, b) = (at + 2 * 4096, at + 5 * 4096);
    let (ea, eb) = (
        s.img.leaf_addr(a).expect("mapped"),
        s.img.leaf_addr(b).expect("mapped"),
    );
    let (ra, rb) = (s.img.read_u64(ea), s.img.read_u64(eb));
    s.img.write_u64(ea, rb);
    s.img.write_u64(eb, ra);
    let changes = s.take_changes();
    let inc = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
    let f = full(&s);
    assert!(matches!(inc.scope, Scope::Incremental { .. }), "{inc:?}");
    let found = texts(&inc);
    assert_eq!(found, texts(&f));
    let reported: Vec<&String> = found
        .iter()
        .filter(|t| t.contains("as Query reported"))
        .collect();
    assert_eq!(reported.len(), 2, "{found:#?}");
    for virt in [a, b] {
        assert!(
            reported.iter().any(|t| t.contains(&format!("{virt:#x}"))),
            "{virt:#x} not named: {found:#?}"
        );
    }
}

#[test]
fn queried_frames_that_moved_are_found_by_incremental_checks() {
    queried_frames_that_moved(false);
    queried_frames_that_moved(true);
}

/// Allocate-on-write pages that a convert just made, one entry zeroed and
/// one given a stray bit: both checks, which pass over an allocate-on-write
/// entry where the model expects one by its raw bits, still name both (and
/// pass the rest).
#[test]
fn changed_allocate_on_write_entries_that_are_wrong_are_found() {
    let mut s = Scenario::empty(16, 4);
    let at = 0x4000_0000;
    let mut checker = run(&mut s, &[None]).expect("a clean image passes");
    s.apply(Request::Convert {
        addr: at,
        pages: 64,
        to: AreaType::UsableRam,
        privilege: U,
    });
    let changes = s.take_changes();
    let (zeroed, stray) = (at + 3 * 4096, at + 40 * 4096);
    for (virt, bits) in [(zeroed, 0), (stray, 2 | 1 << 9)] {
        let e = s.img.leaf_addr(virt).expect("the convert made the table");
        assert_eq!(s.img.read_u64(e), 2, "an allocate-on-write entry");
        s.img.write_u64(e, bits);
    }
    let inc = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
    let f = full(&s);
    assert!(matches!(inc.scope, Scope::Incremental { .. }), "{inc:?}");
    let found = texts(&inc);
    assert_eq!(found, texts(&f));
    for virt in [zeroed, stray] {
        assert!(
            found.iter().any(|t| t.contains(&format!("{virt:#x}"))),
            "{virt:#x} not named: {found:#?}"
        );
    }
}
