//! Requests with arbitrary arguments never make the model panic, and the
//! model accepts the answers it predicts.

use proptest::prelude::*;
use protocol::{AreaType, FrameRun, Privilege, Request, Response};

use super::{hello, BOOT_FREE, HEAP, KSPACE, VALLOC};
use crate::model::{Model, ModelState, Prediction};

fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (0u64..64).prop_map(|p| p * 4096),
        4 => (0u64..64).prop_map(|p| KSPACE + p * 4096),
        2 => (0u64..8).prop_map(|p| VALLOC + p * 4096),
        1 => Just(HEAP),
        1 => Just(0x0000_7fff_ffff_f000),
        1 => Just(0x0000_8000_0000_0000),
        1 => Just(0xffff_ffff_ffff_f000),
        1 => any::<u64>(),
    ]
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![12 => 1u64..24, 1 => Just(0), 1 => Just(1 << 35), 1 => any::<u64>()]
}

fn privilege() -> impl Strategy<Value = Privilege> {
    prop_oneof![
        Just(Privilege::User),
        Just(Privilege::Kernel),
        Just(Privilege::Kernel)
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (
            addr(),
            count(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            privilege()
        )
            .prop_map(
                |(addr, pages, writable, executable, contiguous, privilege)| Request::Map {
                    addr,
                    pages,
                    writable,
                    executable,
                    contiguous,
                    privilege
                }
            ),
        (addr(), count(), privilege()).prop_map(|(addr, pages, privilege)| Request::Unmap {
            addr,
            pages,
            privilege
        }),
        (addr(), count(), any::<bool>(), privilege()).prop_map(|(addr, pages, u, privilege)| {
            let to = if u {
                AreaType::UsableRam
            } else {
                AreaType::Unusable
            };
            Request::Convert {
                addr,
                pages,
                to,
                privilege,
            }
        }),
        (
            addr(),
            prop_oneof![6 => 0u64..20_000, 1 => any::<u64>()],
            any::<u64>(),
            privilege()
        )
            .prop_map(|(addr, len, seed, privilege)| Request::Write {
                addr: addr.wrapping_add(seed % 4096),
                len,
                seed,
                privilege
            }),
        (
            addr(),
            prop_oneof![6 => 0u64..20_000, 1 => any::<u64>()],
            privilege()
        )
            .prop_map(|(addr, len, privilege)| Request::Read {
                addr,
                len,
                privilege
            }),
        (addr(), count(), privilege()).prop_map(|(addr, pages, privilege)| Request::Query {
            addr,
            pages,
            privilege
        }),
        (count(), any::<bool>(), privilege()).prop_map(|(count, contiguous, privilege)| {
            Request::AllocFrames {
                count,
                contiguous,
                privilege,
            }
        }),
        (addr(), count(), privilege()).prop_map(|(frame, count, privilege)| {
            Request::FreeFrames {
                frame: frame & 0xfff_ffff,
                count,
                privilege,
            }
        }),
        (count(), privilege()).prop_map(|(pages, privilege)| Request::Valloc { pages, privilege }),
        (addr(), count(), privilege()).prop_map(|(addr, pages, privilege)| Request::Vfree {
            addr,
            pages,
            privilege
        }),
        Just(Request::Stats),
    ]
}

/// A guest that answers what the model predicts, with frames of its own.
struct Guest {
    next_frame: u64,
}

impl Guest {
    fn frame(&mut self) -> u64 {
        self.next_frame += 1;
        self.next_frame << 12
    }

    fn answer(&mut self, m: &Model, req: &Request, p: Prediction) -> Option<Response> {
        Some(match p {
            Prediction::Exact(r) => r,
            Prediction::DoneOrOutOfMemory => Response::Done,
            Prediction::Frames { count, .. } => Response::Frames(vec![FrameRun {
                start: (self.next_frame + 1) << 12,
                count: (0..count).map(|_| self.frame()).count() as u64,
            }]),
            Prediction::Valloc { pages, .. } => Response::Valloc {
                addr: m.valloc_fit(pages)? << 12,
            },
            Prediction::Pages(states) => {
                let Request::Query { addr, .. } = *req else {
                    return None;
                };
                let pages = states.iter().zip((addr >> 12)..).map(|(s, vpn)| match s.0 {
                    st
                    @ (None | Some(ModelState::PresentRam { .. } | ModelState::AllocOnWrite)) => {
                        let frame = match st {
                            Some(ModelState::PresentRam { .. }) => m
                                .page_frames
                                .get(&vpn)
                                .map_or_else(|| self.frame(), |f| f << 12),
                            _ => 0,
                        };
                        ModelState::answer(st, frame, 0)
                    }
                    Some(other) => panic!("no request makes {other:?}"),
                });
                Response::Pages(pages.collect())
            }
            _ => return None,
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_model_accepts_its_own_answers(reqs in prop::collection::vec(request(), 1..40)) {
        let mut m = Model::new(&hello());
        let mut guest = Guest { next_frame: 4096 };
        for (i, req) in reqs.iter().enumerate() {
            let p = m.predict(req);
            let Some(answer) = guest.answer(&m, req, p) else { continue };
            if let Err(d) = m.apply(i as u64, req, &answer) {
                return Err(TestCaseError::fail(d.to_string()));
            }
            let s = m.stats();
            let used = s.page_table_frames + s.present_pages + s.host_frames;
            prop_assert_eq!(s.free_frames + used, BOOT_FREE);
        }
        let reset = Request::Reset { privilege: Privilege::Kernel };
        prop_assert!(m.apply(99, &reset, &Response::Done).is_ok());
        prop_assert_eq!(m.stats().free_frames, BOOT_FREE);
    }
}

/// What the checker's incremental check may rely on of the model: its
/// state, expected frame and bytes of every page, by runs.
struct Seen {
    runs: Vec<(u64, u64, ModelState)>,
    frames: std::collections::BTreeMap<u64, u64>,
    bytes: std::collections::BTreeMap<u64, [u8; 4096]>,
}

impl Seen {
    fn of(m: &Model) -> Seen {
        Seen {
            runs: m.pages.runs().collect(),
            frames: m.page_frames.clone(),
            bytes: m.data.iter().map(|(&k, v)| (k, **v)).collect(),
        }
    }

    /// The state of page `vpn`.
    fn state(&self, vpn: u64) -> Option<ModelState> {
        let i = self.runs.partition_point(|&(_, e, _)| e <= vpn);
        self.runs
            .get(i)
            .filter(|&&(s, _, _)| s <= vpn)
            .map(|&(_, _, st)| st)
    }

    /// The page ranges where `self` and `other` differ.
    fn differ(&self, other: &Seen) -> Vec<(u64, u64)> {
        let mut cuts: Vec<u64> = self
            .runs
            .iter()
            .chain(&other.runs)
            .flat_map(|r| [r.0, r.1])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out: Vec<(u64, u64)> = cuts
            .windows(2)
            .filter(|w| self.state(w[0]) != other.state(w[0]))
            .map(|w| (w[0], w[1]))
            .collect();
        let keys = |a: &Seen, b: &Seen| -> Vec<u64> {
            let f = a
                .frames
                .iter()
                .filter(|(k, v)| b.frames.get(k) != Some(v))
                .map(|(k, _)| *k);
            let d = a
                .bytes
                .iter()
                .filter(|(k, v)| b.bytes.get(k) != Some(v))
                .map(|(k, _)| *k);
            f.chain(d).collect()
        };
        out.extend(
            keys(self, other)
                .into_iter()
                .chain(keys(other, self))
                .map(|k| (k, k + 1)),
        );
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every page whose state, expected frame or bytes an answered request
    /// changed is among the changes the model hands the checker
    /// (`Model::take_changes`): the incremental check re-verifies exactly
    /// those pages.
    #[test]
    fn every_page_a_request_changes_is_among_the_changes(
        reqs in prop::collection::vec(request(), 1..40),
    ) {
        let mut m = Model::new(&hello());
        let mut guest = Guest { next_frame: 4096 };
        m.take_changes();
        for (i, req) in reqs.iter().enumerate() {
            let before = Seen::of(&m);
            let p = m.predict(req);
            let Some(answer) = guest.answer(&m, req, p) else { continue };
            if let Err(d) = m.apply(i as u64, req, &answer) {
                return Err(TestCaseError::fail(d.to_string()));
            }
            let changes = m.take_changes();
            if changes.is_everything() {
                continue;
            }
            for (s, e) in before.differ(&Seen::of(&m)) {
                let covered: u64 = changes.pages_in(s, e).map(|(a, b)| b - a).sum();
                prop_assert_eq!(covered, e - s, "{:?} changed pages {:#x}..{:#x}", req, s, e);
            }
        }
    }
}
