//! Frame access stays sound when the VMM is wrong: a frame outside the RAM
//! the allocator manages (beyond RAM, a boot reservation such as the
//! kernel's tables) is refused by the memory before anything is written,
//! and the refusal stops the VMM with a report naming the frame.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;
use crate::backend::{FrameRefused, PhysMemory};
use crate::sim::SimMemory;
use crate::walk::Entry;

/// The linear address the tests map: PML4 slot 0, PDPT slot 0, PD slot
/// 128, PT slot 0.
const ADDR: u64 = 0x1000_0000;

/// A machine with one present page at [`ADDR`], and the PD entry naming
/// its page table (found by the core's walk while it is sound).
fn mapped() -> (SimMachine, Entry) {
    let mut m = SimMachine::new(64);
    let map = Request::Map {
        addr: ADDR,
        pages: 1,
        writable: true,
        executable: false,
        contiguous: false,
        privilege: U,
    };
    assert_eq!(req(&mut m, map), Response::Done);
    let pd_entry = m
        .vmm
        .tables_for_test()
        .pd_entry(ADDR)
        .expect("ADDR is mapped");
    (m, pd_entry)
}

/// Points the PD entry `at` (of [`ADDR`]) at frame `n`, as a corrupted
/// entry of a wrong VMM would.
fn corrupt_pd_entry(m: &mut SimMachine, at: Entry, n: u64) {
    let entry = &mut m.vmm.mem().table(at.table)[at.slot.index];
    pte::set_raw(entry, (at.raw & 0xfff) | (n << 12));
}

/// The unmap of [`ADDR`]'s page, which walks to the PD entry.
const UNMAP: Request = Request::Unmap {
    addr: ADDR,
    pages: 1,
    privilege: U,
};

/// Runs `r` and answers the message it panicked with.
fn refusal(m: &mut SimMachine, r: Request) -> String {
    let err = catch_unwind(AssertUnwindSafe(|| req(m, r)))
        .expect_err("the VMM went on past a frame that is not its own");
    match err.downcast::<String>() {
        Ok(s) => *s,
        Err(e) => panic!("a panic without a message: {e:?}"),
    }
}

#[test]
fn a_table_entry_beyond_ram_is_refused_not_followed() {
    let (mut m, pd_entry) = mapped();
    corrupt_pd_entry(&mut m, pd_entry, 1000);
    let msg = refusal(&mut m, UNMAP);
    assert_eq!(
        msg,
        "VMM bug: frame 0x3e8000 refused for writing: not RAM the VMM may use"
    );
}

#[test]
fn a_table_entry_naming_the_kernels_tables_is_refused_before_any_write() {
    let (mut m, pd_entry) = mapped();
    // Frame 2 stands in for a table of the kernel's (PML4 slot 256).
    let kernel_table = frame(2);
    m.vmm.mem().cpu_bytes(kernel_table).fill(0xab);
    corrupt_pd_entry(&mut m, pd_entry, 2);
    let msg = refusal(&mut m, UNMAP);
    assert!(msg.contains("frame 0x2000 refused"), "{msg}");
    assert!(
        m.vmm
            .mem()
            .cpu_bytes(kernel_table)
            .iter()
            .all(|&b| b == 0xab),
        "the kernel's table was written"
    );
    // Frame 0 (firmware's, reserved) is refused as well.
    corrupt_pd_entry(&mut m, pd_entry, 0);
    let query = Request::Query {
        addr: ADDR,
        pages: 1,
        privilege: U,
    };
    assert!(refusal(&mut m, query).contains("frame 0x0 refused"));
}

#[test]
fn file_images_are_readable_only_and_free_ram_writable() {
    let mut mem = SimMemory::new(16);
    mem.restrict(&[1..2, 8..16], std::slice::from_ref(&(4..8)));
    let refused = |n, write| {
        Err(FrameRefused {
            frame: frame(n),
            write,
        })
    };
    assert_eq!(mem.try_frame_bytes(frame(5)).map(|_| ()), refused(5, true));
    assert_eq!(mem.try_table(frame(5)).map(|_| ()), refused(5, true));
    assert!(mem.try_frame(frame(5)).is_ok());
    assert!(mem.try_frame_bytes(frame(8)).is_ok());
    assert!(mem.try_table(frame(1)).is_ok());
    assert_eq!(mem.try_frame(frame(0)).map(|_| ()), refused(0, false));
    assert_eq!(mem.try_frame(frame(3)).map(|_| ()), refused(3, false));
    assert_eq!(mem.try_frame(frame(16)).map(|_| ()), refused(16, false));
}

#[test]
fn a_correct_vmm_never_needs_a_refused_frame() {
    // The machine's file images, PML4 and metadata are all within what
    // the memory allows: a map, a file load and a reset run as always.
    let mut m = SimMachine::with_files(128, &[(2, 7)]);
    let map_file = Request::MapFile {
        addr: ADDR,
        pages: 2,
        file: 0,
        file_page: 0,
        privilege: U,
    };
    assert_eq!(req(&mut m, map_file), Response::Done);
    let read = Request::Read {
        addr: ADDR,
        len: 8192,
        privilege: U,
    };
    assert!(matches!(req(&mut m, read), Response::Checksum { .. }));
    let write = Request::Write {
        addr: ADDR,
        len: 8192,
        seed: 3,
        privilege: U,
    };
    assert_eq!(req(&mut m, write), Response::Done);
    check(&mut m);
    reset_and_check(&mut m);
}
