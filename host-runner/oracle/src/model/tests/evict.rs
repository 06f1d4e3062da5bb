//! `Evict`: which pages go to swap, which drop, in address order; partial
//! walks when the swap store fills; data intact across swap-out and in.

use protocol::pattern::{checksum, fill};
use protocol::{Reclaim, Request, Response, RECLAIM_RING};

use super::files::{file_sum, map_file, read, write};
use super::requests::{map, map_ro, U};
use super::{convert, diverges, model_files, reclaimed, run};
use crate::model::{Model, ModelState, Prediction};

fn evict(addr: u64, pages: u64) -> Request {
    Request::Evict {
        addr,
        pages,
        privilege: U,
    }
}

fn evicted(swapped: u64, dropped: u64) -> Response {
    Response::Evicted { swapped, dropped }
}

fn swapped(addr: u64, slot: u64) -> Reclaim {
    Reclaim::Swapped { addr, slot }
}

/// 0x1000 RAM written (seed 5), 0x2000 read-only RAM, 0x3000 allocate-on-write,
/// 0x4000 clean file page (file 0 page 0), 0x5000 private file page (file 0
/// page 1, written with seed 6), 0x6000 not-present file page.
fn setup() -> Model {
    let mut m = model_files();
    let ro = map_ro(0x2000, 1);
    let aow = convert(0x3000, 1, protocol::AreaType::UsableRam);
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (write(0x1000, 4096, 5), Response::Done),
            (ro, Response::Done),
            (aow, Response::Done),
            (map_file(0x4000, 3, 0, 0), Response::Done),
            (read(0x4000, 4096), file_sum(0, 0, 1)),
            (write(0x5000, 4096, 6), Response::Done),
        ],
    );
    m
}

#[test]
fn evict_swaps_ram_and_private_pages_and_drops_clean_ones() {
    let mut m = setup();
    assert_eq!(
        m.predict(&evict(0x1000, 6)),
        Prediction::Evict { swap: 2, drop: 1 }
    );
    let events = vec![
        swapped(0x1000, 0),
        Reclaim::Dropped { addr: 0x4000 },
        swapped(0x5000, 40),
    ];
    run(
        &mut m,
        &[(evict(0x1000, 6), reclaimed(events, evicted(2, 1)))],
    );
    assert_eq!(m.state(0x1000), Some(ModelState::OnSwap { slot: 0 }));
    assert_eq!(
        m.state(0x2000),
        Some(ModelState::PresentRam {
            writable: false,
            executable: false
        })
    );
    assert_eq!(
        m.state(0x4000),
        Some(ModelState::NotPresentMmap { file: 0, page: 0 })
    );
    // The private file page is anonymous memory on swap now.
    assert_eq!(m.state(0x5000), Some(ModelState::OnSwap { slot: 40 }));
    let s = m.stats();
    assert_eq!(
        (s.swap_slots_used, s.pages_evicted, s.pages_dropped),
        (2, 2, 1)
    );
    assert_eq!(s.present_pages, 1);
    // Swap-in: the data comes back; the page is present RAM again.
    let faults = s.faults_resolved;
    let mut want = [0u8; 8192];
    fill(5, 0x1000, &mut want[..4096]);
    fill(6, 0x5000, &mut want[4096..]);
    run(
        &mut m,
        &[
            (
                read(0x1000, 4096),
                Response::Checksum {
                    checksum: checksum(&want[..4096]),
                },
            ),
            (
                read(0x5000, 4096),
                Response::Checksum {
                    checksum: checksum(&want[4096..]),
                },
            ),
        ],
    );
    assert_eq!(m.stats().faults_resolved, faults + 2);
    assert_eq!(m.stats().swap_slots_used, 0);
    assert_eq!(
        m.state(0x5000),
        Some(ModelState::PresentRam {
            writable: true,
            executable: false
        })
    );
    // Slot 0 is free again: a new swap may take it.
    run(
        &mut m,
        &[(
            evict(0x1000, 1),
            reclaimed(vec![swapped(0x1000, 0)], evicted(1, 0)),
        )],
    );
}

#[test]
fn a_full_store_stops_the_walk_at_a_page_to_swap() {
    let m = setup();
    // Stopped before the first page: nothing fits.
    m.clone()
        .apply(0, &evict(0x1000, 6), &evicted(0, 0))
        .unwrap();
    // Stopped at 0x5000 after dropping 0x4000.
    let events = vec![swapped(0x1000, 0), Reclaim::Dropped { addr: 0x4000 }];
    m.clone()
        .apply(0, &evict(0x1000, 6), &reclaimed(events, evicted(1, 1)))
        .unwrap();
    // Stopping at the clean page is wrong: it needs no swap space.
    let d = diverges(
        &mut m.clone(),
        evict(0x1000, 6),
        reclaimed(vec![swapped(0x1000, 0)], evicted(1, 0)),
    );
    assert!(d.reason.contains("clean file page 0x4000"), "{d}");
}

#[test]
fn evict_events_out_of_order_or_miscounted_diverge() {
    let m = setup();
    let out_of_order = vec![Reclaim::Dropped { addr: 0x4000 }, swapped(0x1000, 0)];
    let d = diverges(
        &mut m.clone(),
        evict(0x1000, 6),
        reclaimed(out_of_order, evicted(1, 1)),
    );
    assert!(d.reason.contains("not the next page"), "{d}");
    let skipped = vec![swapped(0x1000, 0), swapped(0x5000, 1)];
    let d = diverges(
        &mut m.clone(),
        evict(0x1000, 6),
        reclaimed(skipped, evicted(2, 0)),
    );
    assert!(d.reason.contains("Swapped { addr: 0x5000"), "{d}");
    let events = vec![swapped(0x1000, 0)];
    let d = diverges(
        &mut m.clone(),
        evict(0x1000, 1),
        reclaimed(events, evicted(0, 1)),
    );
    assert!(d.reason.contains("counts"), "{d}");
    // Read-only RAM is never evicted.
    let d = diverges(
        &mut m.clone(),
        evict(0x2000, 1),
        reclaimed(vec![swapped(0x2000, 0)], evicted(1, 0)),
    );
    assert!(d.reason.contains("writable"), "{d}");
}

#[test]
fn a_full_ring_stops_the_walk() {
    let mut m = model_files();
    let n = RECLAIM_RING as u64 + 10;
    run(
        &mut m,
        &[
            (map(0x10_0000, n, U), Response::Done),
            (write(0x10_0000, n * 4096, 1), Response::Done),
        ],
    );
    let events: Vec<Reclaim> = (0..RECLAIM_RING as u64)
        .map(|i| swapped(0x10_0000 + i * 4096, i))
        .collect();
    let k = events.len() as u64;
    run(
        &mut m,
        &[(evict(0x10_0000, n), reclaimed(events, evicted(k, 0)))],
    );
    assert_eq!(m.stats().swap_slots_used, k);
    // One more event than the ring holds is illegal.
    let mut m = model_files();
    run(&mut m, &[(map(0x10_0000, n, U), Response::Done)]);
    let events: Vec<Reclaim> = (0..=RECLAIM_RING as u64)
        .map(|i| swapped(0x10_0000 + i * 4096, i))
        .collect();
    let d = diverges(
        &mut m,
        evict(0x10_0000, n),
        reclaimed(events, evicted(k + 1, 0)),
    );
    assert!(d.reason.contains("more than the ring"), "{d}");
}
