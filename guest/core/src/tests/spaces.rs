//! Address spaces (`protocol::semantics`, **Address spaces**): the answers
//! and refusals of `CreateSpace`, `SwitchSpace` and `DestroySpace`, and the
//! helpers of the other space tests: `space_halves` (user halves apart,
//! one kernel half, the probe after a switch) and `space_memory` (what a
//! space holds when it goes: destroy, reset, pressure).
//!
//! Every [`check`] also walks every other space's user half from its root
//! and asserts that every live root's kernel half is space 0's.
//!
//! The injected bugs these catch: `inject-switch-no-cr3` fails
//! `create_switch_and_destroy_answer_as_specified` (CR3 is not the new
//! space's root), `inject-destroy-leak` fails it too (the stats after the
//! destroys are not back where they were).

use protocol::{Error, PageState};

use super::*;
use crate::layout::MAX_SPACES;

/// A user address in PML4 slot 0.
pub(super) const A: u64 = 0x1000_0000;
/// A kernel address of the managed space in a PML4 slot of its own (400),
/// whose PDPT no other test request makes.
pub(super) const KADDR: u64 = 0xffff_c800_0000_0000;

/// Creates a space; answers its number and root.
pub(super) fn create(m: &mut SimMachine) -> (u16, u64) {
    match req(m, Request::CreateSpace { privilege: K }) {
        Response::Space { space, root } => (space, root),
        r => panic!("create answered {r:?}"),
    }
}

/// Switches to `space`, which must answer `Done` (no stale translation).
pub(super) fn switch(m: &mut SimMachine, space: u16) {
    let r = req(
        m,
        Request::SwitchSpace {
            space,
            privilege: K,
        },
    );
    assert_eq!(r, Response::Done, "switch to {space}");
    assert_eq!(m.vmm.current_space(), space);
}

/// CR3 holds `space`'s root.
fn assert_cr3(m: &mut SimMachine, space: u16) {
    let root = m.vmm.space_root(space);
    assert_eq!(m.vmm.mem().cr3, root, "CR3 in space {space}");
}

/// Destroys `space`, answering what the guest answers.
pub(super) fn destroy(m: &mut SimMachine, space: u16) -> Response {
    req(
        m,
        Request::DestroySpace {
            space,
            privilege: K,
        },
    )
}

/// Writes the pattern of `seed` over `len` bytes at `addr` with `p`.
pub(super) fn write(m: &mut SimMachine, addr: u64, len: u64, seed: u64, p: Privilege) {
    let w = Request::Write {
        addr,
        len,
        seed,
        privilege: p,
    };
    assert_eq!(req(m, w), Response::Done, "write at {addr:#x}");
}

/// The answer a read of `len` bytes at `addr` gets when they hold the
/// pattern of `seed`.
pub(super) fn pattern_sum(seed: u64, addr: u64, len: u64) -> Response {
    let mut buf = vec![0u8; crate::conv::usize_of(len)];
    protocol::pattern::fill(seed, addr, &mut buf);
    let checksum = protocol::pattern::checksum(&buf);
    Response::Checksum { checksum }
}

/// Reads `len` bytes at `addr` with `p`.
pub(super) fn read(m: &mut SimMachine, addr: u64, len: u64, p: Privilege) -> Response {
    req(
        m,
        Request::Read {
            addr,
            len,
            privilege: p,
        },
    )
}

/// The state of the page at `addr`, queried with `p`.
pub(super) fn query(m: &mut SimMachine, addr: u64, p: Privilege) -> PageState {
    let q = Request::Query {
        addr,
        pages: 1,
        privilege: p,
    };
    match req(m, q) {
        Response::Pages(states) if states.len() == 1 => states[0],
        r => panic!("query answered {r:?}"),
    }
}

#[test]
fn create_switch_and_destroy_answer_as_specified() {
    let mut m = SimMachine::new(256);
    let boot = stats(&mut m);
    let (one, root1) = create(&mut m);
    assert_eq!(one, 1);
    assert_ne!(root1, m.vmm.pml4().start_address().as_u64());
    let s = stats(&mut m);
    assert_eq!(s.free_frames, boot.free_frames - 1, "the PML4's frame");
    assert_eq!(s.page_table_frames, boot.page_table_frames + 1);
    assert_eq!(m.vmm.current_space(), 0, "create does not switch");
    assert_eq!(create(&mut m).0, 2);
    check(&mut m);
    let loads = m.vmm.mem().root_loads;
    switch(&mut m, 1);
    assert_cr3(&mut m, 1);
    assert_eq!(m.vmm.mem().root_loads, loads + 1);
    switch(&mut m, 1);
    assert_eq!(
        m.vmm.mem().root_loads,
        loads + 1,
        "a switch to the current space changes nothing"
    );
    assert_eq!(destroy(&mut m, 1), Response::Error(Error::SpaceInUse));
    switch(&mut m, 0);
    assert_cr3(&mut m, 0);
    assert_eq!(destroy(&mut m, 1), Response::Done);
    assert_eq!(destroy(&mut m, 1), Response::Error(Error::NoSuchSpace));
    let gone = Request::SwitchSpace {
        space: 1,
        privilege: K,
    };
    assert_eq!(req(&mut m, gone), Response::Error(Error::NoSuchSpace));
    check(&mut m);
    // The lowest unused number again (the frame may differ).
    assert_eq!(create(&mut m).0, 1);
    assert_eq!(destroy(&mut m, 2), Response::Done);
    assert_eq!(destroy(&mut m, 1), Response::Done);
    check(&mut m);
    assert_eq!(stats(&mut m), boot, "everything back after the destroys");
}

#[test]
fn refusals_come_in_order_and_change_nothing() {
    let mut m = SimMachine::new(256);
    let (one, _) = create(&mut m);
    switch(&mut m, one);
    let before = snapshot(&mut m);
    let switch_to = |space, privilege| Request::SwitchSpace { space, privilege };
    let destroy_req = |space, privilege| Request::DestroySpace { space, privilege };
    // The kernel-only check first, whatever the number.
    let mut refused = vec![(
        Request::CreateSpace { privilege: U },
        Error::PermissionDenied,
    )];
    for space in [0, one, 2, 99, u16::MAX] {
        refused.push((switch_to(space, U), Error::PermissionDenied));
        refused.push((destroy_req(space, U), Error::PermissionDenied));
    }
    // Numbers no live space has, past the last ones included.
    for space in [2, MAX_SPACES - 1, MAX_SPACES, MAX_SPACES + 1, u16::MAX] {
        refused.push((switch_to(space, K), Error::NoSuchSpace));
        refused.push((destroy_req(space, K), Error::NoSuchSpace));
    }
    refused.push((destroy_req(0, K), Error::SpaceInUse));
    refused.push((destroy_req(one, K), Error::SpaceInUse));
    for (r, e) in refused {
        assert_eq!(req(&mut m, r.clone()), Response::Error(e), "{r:?}");
        assert_eq!(m.vmm.current_space(), one, "{r:?}");
    }
    assert_eq!(
        snapshot(&mut m),
        before,
        "a refused request changed the state"
    );
    let numbers: Vec<u16> = (2..MAX_SPACES).map(|_| create(&mut m).0).collect();
    assert_eq!(numbers, (2..MAX_SPACES).collect::<Vec<_>>());
    let full = snapshot(&mut m);
    let more = req(&mut m, Request::CreateSpace { privilege: K });
    assert_eq!(more, Response::Error(Error::TooManySpaces));
    assert_eq!(snapshot(&mut m), full, "TooManySpaces changed the state");
    check(&mut m);
}
