//! The transition table's rows not covered elsewhere: on-swap pages under
//! `Convert → Unusable`, `Unmap`, `MapFile` and `Evict`; and a property:
//! data survives any eviction and swap-in.

use proptest::prelude::*;

use protocol::{AreaType, Error, Reclaim, Request, Response};

use super::files::{map_file, read, write};
use super::requests::{err, map, U};
use super::{convert, model_files, reclaimed, run};
use crate::model::{Model, ModelState, Prediction};

fn evict(addr: u64, pages: u64) -> Request {
    Request::Evict {
        addr,
        pages,
        privilege: U,
    }
}

/// Swaps out pages `first..first + n` (all present writable) to slots from `slot`.
fn swap_out(m: &mut Model, addr: u64, n: u64, slot: u64) {
    let events = (0..n)
        .map(|i| Reclaim::Swapped {
            addr: addr + i * 4096,
            slot: slot + i,
        })
        .collect();
    let answer = reclaimed(
        events,
        Response::Evicted {
            swapped: n,
            dropped: 0,
        },
    );
    run(m, &[(evict(addr, n), answer)]);
}

#[test]
fn on_swap_pages_under_every_request() {
    let mut m = model_files();
    run(&mut m, &[(map(0x1000, 4, U), Response::Done)]);
    swap_out(&mut m, 0x1000, 4, 10);
    // MapFile: InvalidState; Evict: left; Convert → usable: left.
    assert_eq!(
        m.predict(&map_file(0x1000, 1, 0, 0)),
        err(Error::InvalidState { addr: 0x1000 })
    );
    run(
        &mut m,
        &[(
            evict(0x1000, 4),
            Response::Evicted {
                swapped: 0,
                dropped: 0,
            },
        )],
    );
    let conv = |addr, to| convert(addr, 1, to);
    run(
        &mut m,
        &[(conv(0x1000, AreaType::UsableRam), Response::Done)],
    );
    assert_eq!(m.state(0x1000), Some(ModelState::OnSwap { slot: 10 }));
    // Convert → unusable and Unmap free the slots.
    run(
        &mut m,
        &[(conv(0x1000, AreaType::Unusable), Response::Done)],
    );
    assert_eq!(m.stats().swap_slots_used, 3);
    let unmap = Request::Unmap {
        addr: 0x2000,
        pages: 2,
        privilege: U,
    };
    run(&mut m, &[(unmap, Response::Done)]);
    assert_eq!(m.stats().swap_slots_used, 1);
    // Slot 10 is free again; slot 13 is not.
    run(&mut m, &[(map(0x1000, 1, U), Response::Done)]);
    swap_out(&mut m, 0x1000, 1, 10);
    run(&mut m, &[(map(0x2000, 1, U), Response::Done)]);
    let again = reclaimed(
        vec![Reclaim::Swapped {
            addr: 0x2000,
            slot: 13,
        }],
        Response::Evicted {
            swapped: 1,
            dropped: 0,
        },
    );
    assert!(m.apply(0, &evict(0x2000, 1), &again).is_err());
    // A swap-in frees the slot; the page is RAM again.
    run(&mut m, &[(write(0x4000, 1, 1), Response::Done)]);
    assert_eq!(
        m.state(0x4000),
        Some(ModelState::PresentRam {
            writable: true,
            executable: false
        })
    );
    assert_eq!(m.stats().swap_slots_used, 1);
}

#[test]
fn evict_leaves_pages_without_frames_alone() {
    let mut m = model_files();
    let aow = convert(0x1000, 2, AreaType::UsableRam);
    run(
        &mut m,
        &[
            (aow, Response::Done),
            (map_file(0x3000, 2, 1, 0), Response::Done),
        ],
    );
    assert_eq!(
        m.predict(&evict(0x1000, 4)),
        Prediction::Evict { swap: 0, drop: 0 }
    );
    let d = super::diverges(
        &mut m,
        evict(0x1000, 4),
        reclaimed(
            vec![Reclaim::Dropped { addr: 0x3000 }],
            Response::Evicted {
                swapped: 0,
                dropped: 1,
            },
        ),
    );
    assert!(d.reason.contains("NotPresentMmap"), "{d}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever was written, the bytes read after an eviction and swap-in
    /// are the bytes read before.
    #[test]
    fn data_survives_eviction_and_swap_in(
        writes in prop::collection::vec((0u64..16 * 4096, 1u64..9000, any::<u64>()), 1..8),
        evicted in 1u64..17,
    ) {
        let mut m = model_files();
        run(&mut m, &[(map(0x10_0000, 16, U), Response::Done)]);
        for (off, len, seed) in writes {
            let len = len.min(16 * 4096 - off);
            run(&mut m, &[(write(0x10_0000 + off, len, seed), Response::Done)]);
        }
        let all = read(0x10_0000, 16 * 4096);
        let Prediction::Exact(before) = m.predict(&all) else {
            return Err(TestCaseError::fail("a read of present pages is exact"));
        };
        swap_out(&mut m, 0x10_0000, evicted, 100);
        prop_assert_eq!(m.stats().swap_slots_used, evicted);
        prop_assert_eq!(m.predict(&all), Prediction::Exact(before.clone()));
        run(&mut m, &[(all.clone(), before.clone())]);
        prop_assert_eq!(m.stats().swap_slots_used, 0);
        prop_assert_eq!(m.predict(&all), Prediction::Exact(before));
    }
}
