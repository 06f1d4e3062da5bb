//! Random sequences of space requests mixed with maps, writes, reads,
//! unmaps, evictions and resets, against a small model of their own: which
//! spaces are live and current (so every answer of `CreateSpace`,
//! `SwitchSpace` and `DestroySpace` is predicted, refusals and any space
//! number included), and what each space's user pages and the one kernel
//! half hold (so a read sees its own space's data and no other's). After
//! every request [`check`] walks every space (frames owned once, counters,
//! every kernel half space 0's).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use protocol::{Error, FaultReason};

use super::spaces::{pattern_sum, KADDR};
use super::*;
use crate::layout::MAX_SPACES;

/// The model's key of the kernel half (user pages are keyed by space).
const KERNEL: u16 = u16::MAX;
/// Where pages are mapped: an address, its pages and privilege.
const PLACES: [(u64, u64, Privilege); 3] = [(0x1000_0000, 3, U), (200 << 39, 2, U), (KADDR, 2, K)];

#[derive(Clone, Debug)]
enum Op {
    Create,
    Switch(u16),
    Destroy(u16),
    /// Map a place and write the pattern of a seed over it.
    MapWrite(usize, u64),
    Unmap(usize),
    Evict(usize),
    Read(usize),
    Reset,
}

/// Space numbers: mostly ones that may exist, some past the last.
fn space() -> impl Strategy<Value = u16> {
    prop_oneof![8 => 0u16..5, 1 => MAX_SPACES..=u16::MAX]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Create),
        4 => space().prop_map(Op::Switch),
        2 => space().prop_map(Op::Destroy),
        4 => (0..PLACES.len(), any::<u64>()).prop_map(|(p, s)| Op::MapWrite(p, s)),
        2 => (0..PLACES.len()).prop_map(Op::Unmap),
        1 => (0..PLACES.len()).prop_map(Op::Evict),
        3 => (0..PLACES.len()).prop_map(Op::Read),
        1 => Just(Op::Reset),
    ]
}

/// The model: live spaces, the current one, and the seed written over
/// each mapped place, by space (or [`KERNEL`]) and place.
struct Model {
    live: BTreeSet<u16>,
    current: u16,
    data: BTreeMap<(u16, usize), u64>,
}

impl Model {
    /// A fresh boot's: space 0 alone, nothing mapped.
    fn new() -> Model {
        Model {
            live: BTreeSet::from([0]),
            current: 0,
            data: BTreeMap::new(),
        }
    }

    /// Whose pages place `p` names now.
    fn key(&self, p: usize) -> u16 {
        if PLACES[p].2 == K {
            KERNEL
        } else {
            self.current
        }
    }
}

/// Runs `op` on `m`, checking its answer against the model and updating
/// it.
fn step(m: &mut SimMachine, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let done = Response::Done;
    match *op {
        Op::Create => {
            let got = req(m, Request::CreateSpace { privilege: K });
            match (1..MAX_SPACES).find(|n| !model.live.contains(n)) {
                None => prop_assert_eq!(got, Response::Error(Error::TooManySpaces)),
                Some(n) => {
                    let Response::Space { space, .. } = got else {
                        return Err(TestCaseError::fail(format!("create: {got:?}")));
                    };
                    prop_assert_eq!(space, n);
                    model.live.insert(n);
                }
            }
        }
        Op::Switch(space) => {
            let got = req(
                m,
                Request::SwitchSpace {
                    space,
                    privilege: K,
                },
            );
            if model.live.contains(&space) {
                prop_assert_eq!(got, done);
                model.current = space;
            } else {
                prop_assert_eq!(got, Response::Error(Error::NoSuchSpace));
            }
        }
        Op::Destroy(space) => {
            let got = req(
                m,
                Request::DestroySpace {
                    space,
                    privilege: K,
                },
            );
            if !model.live.contains(&space) {
                prop_assert_eq!(got, Response::Error(Error::NoSuchSpace));
            } else if space == 0 || space == model.current {
                prop_assert_eq!(got, Response::Error(Error::SpaceInUse));
            } else {
                prop_assert_eq!(got, done);
                model.live.remove(&space);
                model.data.retain(|&(k, _), _| k != space);
            }
        }
        Op::MapWrite(p, seed) => {
            let (addr, pages, privilege) = PLACES[p];
            let got = req(m, Request::map_writable(addr, pages, privilege));
            match model.data.entry((model.key(p), p)) {
                Entry::Occupied(_) => {
                    prop_assert_eq!(got, Response::Error(Error::InvalidState { addr }));
                }
                Entry::Vacant(v) => {
                    prop_assert_eq!(got.split_reclaimed().1, done.clone());
                    let len = pages * 4096;
                    let w = Request::Write {
                        addr,
                        len,
                        seed,
                        privilege,
                    };
                    prop_assert_eq!(req(m, w).split_reclaimed().1, done);
                    v.insert(seed);
                }
            }
        }
        Op::Unmap(p) => {
            let (addr, pages, privilege) = PLACES[p];
            let got = req(
                m,
                Request::Unmap {
                    addr,
                    pages,
                    privilege,
                },
            );
            if model.data.remove(&(model.key(p), p)).is_some() {
                prop_assert_eq!(got, done);
            } else {
                prop_assert_eq!(got, Response::Error(Error::InvalidState { addr }));
            }
        }
        Op::Evict(p) => {
            let (addr, pages, privilege) = PLACES[p];
            let got = req(
                m,
                Request::Evict {
                    addr,
                    pages,
                    privilege,
                },
            );
            let evicted = matches!(got.split_reclaimed().1, Response::Evicted { .. });
            prop_assert!(evicted, "evict of place {}", p);
        }
        Op::Read(p) => {
            let (addr, pages, privilege) = PLACES[p];
            let len = pages * 4096;
            let got = req(
                m,
                Request::Read {
                    addr,
                    len,
                    privilege,
                },
            )
            .split_reclaimed()
            .1;
            let want = match model.data.get(&(model.key(p), p)) {
                Some(&seed) => pattern_sum(seed, addr, len),
                None => Response::Fault {
                    addr,
                    write: false,
                    reason: FaultReason::Unusable,
                },
            };
            prop_assert_eq!(got, want, "read of place {} in space {}", p, model.current);
        }
        Op::Reset => {
            let got = req(m, Request::Reset { privilege: K }).split_reclaimed().1;
            prop_assert_eq!(got, done);
            *model = Model::new();
        }
    }
    prop_assert_eq!(m.vmm.current_space(), model.current);
    check(m);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_space_sequences_keep_spaces_apart_and_the_kernel_half_one(
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut m = SimMachine::new(1024);
        let mut model = Model::new();
        for op in &ops {
            step(&mut m, &mut model, op)?;
        }
        reset_and_check(&mut m);
    }
}
