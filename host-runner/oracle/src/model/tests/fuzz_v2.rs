//! Version-2 sequences with arbitrary arguments (address spaces made,
//! switched and destroyed, and shares, among them): the model never
//! panics, accepts the answers it predicts (with the events a guest would
//! report for `Evict`), and its counters keep the `Stats` identity.

use proptest::prelude::*;
use protocol::{AreaType, Privilege, Reclaim, Request, Response};

use super::files::map_file;
use super::BOOT_FREE;
use crate::model::keys::untag;
use crate::model::{evicted, Model, ModelState, Prediction};

fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![8 => (0u64..32).prop_map(|p| p * 4096), 1 => any::<u64>()]
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![12 => 1u64..12, 1 => Just(0), 1 => any::<u64>()]
}

const U: Privilege = Privilege::User;
const K: Privilege = Privilege::Kernel;

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (addr(), count()).prop_map(|(addr, pages)| Request::map_writable(addr, pages, U)),
        (addr(), count(), 0u8..3, 0u64..10)
            .prop_map(|(addr, pages, file, file_page)| map_file(addr, pages, file, file_page)),
        (addr(), count()).prop_map(|(addr, pages)| Request::Evict {
            addr,
            pages,
            privilege: U
        }),
        (addr(), count(), any::<bool>()).prop_map(|(addr, pages, u)| Request::Convert {
            addr,
            pages,
            to: if u {
                AreaType::UsableRam
            } else {
                AreaType::Unusable
            },
            privilege: U
        }),
        (addr(), count()).prop_map(|(addr, pages)| Request::Unmap {
            addr,
            pages,
            privilege: U
        }),
        (addr(), 0u64..20_000, any::<u64>()).prop_map(|(addr, len, seed)| Request::Write {
            addr,
            len,
            seed,
            privilege: U
        }),
        (addr(), 0u64..20_000).prop_map(|(addr, len)| Request::Read {
            addr,
            len,
            privilege: U
        }),
        Just(Request::CreateSpace { privilege: K }),
        space().prop_map(|space| Request::SwitchSpace {
            space,
            privilege: K
        }),
        space().prop_map(|space| Request::DestroySpace {
            space,
            privilege: K
        }),
        (addr(), count(), space(), addr()).prop_map(|(addr, pages, space, to)| Request::Share {
            addr,
            pages,
            space,
            to,
            privilege: K
        }),
    ]
}

/// A space number: mostly one that may live (of 4), now and then any.
fn space() -> impl Strategy<Value = u16> {
    prop_oneof![8 => 0u16..4, 1 => any::<u16>()]
}

/// What a guest answers: the prediction, and for `Evict` every page it
/// may send out, to fresh slots.
fn answer(m: &Model, req: &Request, slot: &mut u64) -> Option<Response> {
    match (m.predict(req), req) {
        (Prediction::Exact(r), _) => Some(r),
        (Prediction::DoneOrOutOfMemory, _) => Some(Response::Done),
        (Prediction::Touch(t), _) => t.assumed(),
        (Prediction::Space { space, .. }, _) => Some(Response::Space {
            space,
            // Frames no page, host frame or live root holds (the fuzz
            // makes no Query): a fresh one for each space made.
            root: 0x700_0000 + (*slot + 1) * 4096 + u64::from(space) * 0x10_0000,
        }),
        (Prediction::Evict { .. }, Request::Evict { addr, pages, .. }) => {
            let first = m.key(*addr) >> 12;
            let end = first + pages;
            let mut events = Vec::new();
            for (s, e, st) in m.pages.runs_in(first, end) {
                for p in s..e {
                    events.push(match st {
                        ModelState::PresentRam { writable: true, .. }
                        | ModelState::PresentMmap { private: true, .. } => {
                            *slot += 1;
                            Reclaim::Swapped {
                                addr: untag(p << 12).1,
                                slot: *slot,
                            }
                        }
                        ModelState::PresentMmap { .. } => Reclaim::Dropped {
                            addr: untag(p << 12).1,
                        },
                        _ => continue,
                    });
                }
            }
            Some(Response::Reclaimed {
                response: Box::new(evicted(&events)),
                events,
            })
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_model_accepts_its_own_v2_answers(reqs in prop::collection::vec(request(), 1..40)) {
        let mut m = Model::with_files(
            &protocol::Hello { max_spaces: 4, ..super::hello_files() },
            &super::FILES,
        )
        .expect("specs match");
        let mut slot = 0;
        for (i, req) in reqs.iter().enumerate() {
            let Some(a) = answer(&m, req, &mut slot) else { continue };
            if let Err(d) = m.apply(i as u64, req, &a) {
                return Err(TestCaseError::fail(d.to_string()));
            }
            let s = m.stats();
            let used = s.page_table_frames + s.present_pages + s.host_frames + s.heap_pages;
            prop_assert_eq!(s.free_frames + used, BOOT_FREE);
        }
        let reset = Request::Reset { privilege: Privilege::Kernel };
        prop_assert!(m.apply(99, &reset, &Response::Done).is_ok());
        prop_assert_eq!(m.stats().free_frames, BOOT_FREE);
        prop_assert_eq!(m.stats().swap_slots_used, 0);
        prop_assert_eq!(m.current_space(), 0);
    }
}
