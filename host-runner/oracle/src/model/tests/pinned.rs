//! Pinned (never-swap) RAM: the model's convert rows, and no reclaim event
//! (an `Evict`'s own or one under pressure) may name a pinned page.

use protocol::{AreaType, Reclaim, Request, Response};

use super::files::write;
use super::requests::{map, U};
use super::{convert, diverges, model_files, reclaimed, run};
use crate::model::{ModelState, Prediction};

fn evict(addr: u64, pages: u64) -> Request {
    Request::Evict {
        addr,
        pages,
        privilege: U,
    }
}

/// `inner` after one `Swapped` event of the page at `addr` to `slot`.
fn one_swapped(addr: u64, slot: u64, inner: Response) -> Response {
    reclaimed(vec![Reclaim::Swapped { addr, slot }], inner)
}

const EVICTED_ONE: Response = Response::Evicted {
    swapped: 1,
    dropped: 0,
};

#[test]
fn pinned_pages_are_left_by_evict_and_refused_as_reclaim_events() {
    let mut m = model_files();
    run(
        &mut m,
        &[
            (map(0x1000, 2, U), Response::Done),
            (write(0x1000, 8192, 5), Response::Done),
            (convert(0x2000, 2, AreaType::PinnedRam), Response::Done),
        ],
    );
    assert_eq!(
        m.state(0x2000),
        Some(ModelState::PinnedRam { writable: true })
    );
    assert_eq!(m.state(0x3000), Some(ModelState::PinnedAllocOnWrite));
    let s = m.stats();
    assert_eq!((s.present_pages, s.alloc_on_write_pages), (2, 1));
    assert_eq!(
        m.predict(&evict(0x1000, 3)),
        Prediction::Evict { swap: 1, drop: 0 }
    );
    // Evict's own event of the pinned page, and one under pressure.
    let d = diverges(
        &mut m,
        evict(0x2000, 1),
        one_swapped(0x2000, 0, EVICTED_ONE),
    );
    assert!(d.to_string().contains("PinnedRam"), "{d}");
    let pressure = one_swapped(0x2000, 0, Response::Done);
    let d = diverges(&mut m, map(0x9000, 1, U), pressure);
    assert!(d.to_string().contains("PinnedRam"), "{d}");
}

#[test]
fn a_convert_to_pinned_needs_a_frame_per_swapped_page_and_unpins_back() {
    let mut m = model_files();
    let swapped = one_swapped(0x1000, 3, EVICTED_ONE);
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (write(0x1000, 100, 5), Response::Done),
            (evict(0x1000, 1), swapped),
            (convert(0x1000, 2, AreaType::PinnedRam), Response::Done),
        ],
    );
    let s = m.stats();
    assert_eq!((s.swap_slots_used, s.present_pages), (0, 1));
    assert_eq!(
        m.state(0x1000),
        Some(ModelState::PinnedRam { writable: true })
    );
    run(
        &mut m,
        &[(convert(0x1000, 2, AreaType::UsableRam), Response::Done)],
    );
    assert_eq!(
        m.state(0x1000),
        Some(ModelState::PresentRam {
            writable: true,
            executable: false
        })
    );
    assert_eq!(m.state(0x2000), Some(ModelState::AllocOnWrite));
}
