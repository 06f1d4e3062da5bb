//! What an address space holds, and when it is let go: `DestroySpace` frees
//! exactly the space's frames, tables, swap slots and frame-info records;
//! `CreateSpace` takes its frame through the pressure path or answers
//! `OutOfMemory`; `Reset` ends every space; pressure in one space never
//! reclaims a page of another.
//!
//! The injected bug these catch: `inject-destroy-leak` fails
//! `destroy_gives_back_exactly_what_the_space_held` (a frame in use that no
//! one owns, and the free count short by one).

use protocol::{Error, FaultReason, PageState, Reclaim};

use super::spaces::{create, destroy, pattern_sum, query, read, switch, write, A, KADDR};
use super::*;

/// A user address in PML4 slot 200, which only the destroyed space uses.
const FAR: u64 = 200 << 39;

/// Stats that the spaces' pages, tables and slots make up.
fn held(s: &Stats) -> [u64; 6] {
    [
        s.free_frames,
        s.page_table_frames,
        s.present_pages,
        s.alloc_on_write_pages,
        s.swap_slots_used,
        s.swap_bytes_used,
    ]
}

/// Fills space `space` (made current) with pages of every kind in two user
/// PML4 slots: present RAM, on swap, allocate-on-write (a whole entry and
/// a page table), clean and private file pages (frame-info records),
/// pinned RAM.
fn fill(m: &mut SimMachine) {
    assert_eq!(req(m, Request::map_writable(A, 10, U)), Response::Done);
    write(m, A, 10 * 4096, 11, U);
    assert_eq!(req(m, Request::map_writable(FAR, 4, U)), Response::Done);
    write(m, FAR, 4 * 4096, 12, U);
    convert(m, 0x4000_0000, 1024, AreaType::UsableRam);
    write(m, 0x4000_0000, 3 * 4096, 13, U);
    let file = Request::MapFile {
        addr: 0x2000_0000,
        pages: 8,
        file: 0,
        file_page: 0,
        privilege: U,
    };
    assert_eq!(req(m, file), Response::Done);
    assert!(matches!(
        read(m, 0x2000_0000, 4 * 4096, U),
        Response::Checksum { .. }
    ));
    write(m, 0x2000_0000, 8, 14, U);
    let evict = Request::Evict {
        addr: A,
        pages: 5,
        privilege: U,
    };
    let (events, answer) = req(m, evict).split_reclaimed();
    assert_eq!(
        answer,
        Response::Evicted {
            swapped: 5,
            dropped: 0
        }
    );
    assert_eq!(events.len(), 5);
    convert(m, 0x3000_0000, 16, AreaType::PinnedRam);
    write(m, 0x3000_0000, 2 * 4096, 15, U);
}

/// Catches `inject-destroy-leak`.
#[test]
fn destroy_gives_back_exactly_what_the_space_held() {
    let mut m = SimMachine::with_files(1024, &[(8, 0xf11e)]);
    // Space 0's own page at the same address stays as it is.
    assert_eq!(req(&mut m, Request::map_writable(A, 1, U)), Response::Done);
    write(&mut m, A, 4096, 10, U);
    let before = stats(&mut m);
    let bitmap = m.vmm.frames().bitmap().to_vec();
    let (one, _) = create(&mut m);
    switch(&mut m, one);
    fill(&mut m);
    check(&mut m);
    switch(&mut m, 0);
    let mid = stats(&mut m);
    // 5 of A's 10 pages on swap; present: A's other 5, FAR's 4, 3 written
    // of the usable range, 4 file pages, 2 pinned.
    assert_eq!(mid.swap_slots_used, 5);
    assert_eq!(mid.present_pages, before.present_pages + 18);
    // No reclaim event, nothing stale: a plain `Done`.
    assert_eq!(destroy(&mut m, one), Response::Done);
    check(&mut m);
    assert_eq!(
        held(&stats(&mut m)),
        held(&before),
        "counters after destroy"
    );
    assert!(
        m.vmm.frames().bitmap() == &bitmap[..],
        "frame bitmap after destroy"
    );
    let info = m.vmm.frame_info_range();
    for f in info.start / 4096..info.end.div_ceil(4096) {
        let bytes = m.vmm.mem().frame_bytes(crate::frames::frame_at(f));
        assert!(
            bytes.iter().all(|&b| b == 0),
            "a frame-info record left in frame {f}"
        );
    }
    assert_reads_pattern(&mut m, 10, A, 4096);
    assert_eq!(query(&mut m, FAR, U), PageState::Unusable);
}

#[test]
fn create_without_a_frame_is_out_of_memory() {
    let mut m = SimMachine::without_reclaim(64);
    let free = stats(&mut m).free_frames;
    let take = Request::AllocFrames {
        count: free,
        contiguous: false,
        privilege: K,
    };
    let Response::Frames(runs) = req(&mut m, take) else {
        panic!("the host could not take every frame");
    };
    let before = snapshot(&mut m);
    let create_req = Request::CreateSpace { privilege: K };
    assert_eq!(
        req(&mut m, create_req.clone()),
        Response::Error(Error::OutOfMemory)
    );
    assert_eq!(
        snapshot(&mut m),
        before,
        "a refused create changed the state"
    );
    let give = Request::FreeFrames {
        frame: runs[0].start,
        count: 1,
        privilege: K,
    };
    assert_eq!(req(&mut m, give), Response::Done);
    assert_eq!(create(&mut m).0, 1);
    assert_eq!(stats(&mut m).free_frames, 0);
    check(&mut m);
}

#[test]
fn create_reclaims_when_only_the_reserve_is_free() {
    let mut m = SimMachine::new(256);
    assert_eq!(req(&mut m, Request::map_writable(A, 4, U)), Response::Done);
    let s = stats(&mut m);
    let reserve = protocol::heap_reserve_frames(s.heap_max_bytes);
    let take = Request::AllocFrames {
        count: s.free_frames - reserve,
        contiguous: false,
        privilege: K,
    };
    assert!(matches!(req(&mut m, take), Response::Frames(_)));
    let (events, answer) = req(&mut m, Request::CreateSpace { privilege: K }).split_reclaimed();
    assert!(
        matches!(answer, Response::Space { space: 1, .. }),
        "{answer:?}"
    );
    assert!(
        matches!(events[..], [Reclaim::Swapped { addr, .. }] if (A..A + 4 * 4096).contains(&addr)),
        "{events:?}"
    );
    check(&mut m);
}

#[test]
fn reset_ends_every_space_and_frees_what_they_held() {
    let mut m = SimMachine::with_files(1024, &[(8, 0xf11e)]);
    let mut fresh = SimMachine::with_files(1024, &[(8, 0xf11e)]);
    let (one, _) = create(&mut m);
    let (two, _) = create(&mut m);
    let (three, _) = create(&mut m);
    switch(&mut m, two);
    fill(&mut m);
    switch(&mut m, one);
    assert_eq!(
        req(&mut m, Request::map_writable(KADDR, 3, K)),
        Response::Done
    );
    write(&mut m, KADDR, 3 * 4096, 21, K);
    assert_eq!(req(&mut m, Request::map_writable(A, 3, U)), Response::Done);
    write(&mut m, A, 3 * 4096, 22, U);
    assert_eq!(destroy(&mut m, three), Response::Done);
    check(&mut m);
    // From space 1, not 0: the reset switches first.
    reset_and_check(&mut m);
    assert_eq!(m.vmm.current_space(), 0);
    let boot = m.vmm.pml4();
    assert_eq!(m.vmm.mem().cr3, Some(boot), "CR3 after reset");
    assert!((1..crate::layout::MAX_SPACES).all(|n| m.vmm.space_root(n).is_none()));
    let fault = Response::Fault {
        addr: A,
        write: false,
        reason: FaultReason::Unusable,
    };
    assert_eq!(read(&mut m, A, 8, U), fault);
    // A create after the reset gets what it gets after a fresh boot.
    assert_eq!(create(&mut m), create(&mut fresh));
    check(&mut m);
}

#[test]
fn pressure_in_one_space_never_reclaims_another_spaces_page() {
    let mut m = SimMachine::new(1024);
    let (one, _) = create(&mut m);
    let (two, _) = create(&mut m);
    switch(&mut m, one);
    assert_eq!(
        req(&mut m, Request::map_writable(A, 100, U)),
        Response::Done
    );
    write(&mut m, A, 100 * 4096, 31, U);
    switch(&mut m, two);
    assert_eq!(
        req(&mut m, Request::map_writable(A, 100, U)),
        Response::Done
    );
    write(&mut m, A, 100 * 4096, 32, U);
    // More than the free frames and all of space 2's pages together.
    let big = 0x4000_0000;
    let pages = stats(&mut m).free_frames + 150;
    convert(&mut m, big, pages, AreaType::UsableRam);
    let w = Request::Write {
        addr: big,
        len: pages * 4096,
        seed: 33,
        privilege: U,
    };
    let (events, answer) = req(&mut m, w).split_reclaimed();
    assert!(
        matches!(
            answer,
            Response::Fault {
                reason: FaultReason::OutOfMemory,
                ..
            }
        ),
        "{answer:?}"
    );
    let swapped: Vec<u64> = events
        .iter()
        .filter_map(|e| match *e {
            Reclaim::Swapped { addr, .. } => Some(addr),
            _ => None,
        })
        .collect();
    assert_eq!(
        swapped.len(),
        100,
        "every page of space 2 went, nothing else"
    );
    assert!(swapped.iter().all(|a| (A..A + 100 * 4096).contains(a)));
    check(&mut m);
    switch(&mut m, one);
    for p in 0..100 {
        let state = query(&mut m, A + p * 4096, U);
        assert!(
            matches!(state, PageState::PresentRam { .. }),
            "space 1's page {p}: {state:?}"
        );
    }
    assert_eq!(
        read(&mut m, A, 100 * 4096, U),
        pattern_sum(31, A, 100 * 4096)
    );
    check(&mut m);
}
