//! Random request sequences judged by the oracle (`host-runner/oracle`, a
//! dev-dependency: the host's model of the VMM, written from
//! `protocol::semantics` alone and sharing no code with this crate), as the
//! runner judges the real guest: after every request the model judges the
//! answer and a `Stats` answer (every counter), the oracle's memory checker
//! reads the simulated RAM and the frame bitmap and checks its invariants
//! against the model's expectations, and every present page whose
//! translation changed was flushed. A reset check ends each sequence.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use oracle::{CheckReport, Model};
use proptest::prelude::*;
use protocol::{AreaType, Hello};

use super::ram::{checked_hello, SimRam};
use super::*;

const TOTAL_FRAMES: u64 = 96;

/// Every present page the checker's walk found: page address → (frame,
/// writable).
fn translations(report: &CheckReport) -> BTreeMap<u64, (u64, bool)> {
    let ts = report.walk.translations.iter();
    ts.map(|t| (t.virt, (t.frame, t.writable))).collect()
}

#[derive(Clone, Debug)]
enum Op {
    Map {
        at: (u64, Privilege),
        pages: u64,
        writable: bool,
        contiguous: bool,
    },
    Unmap {
        at: (u64, Privilege),
        pages: u64,
    },
    Convert {
        at: (u64, Privilege),
        pages: u64,
        usable: bool,
    },
    WipeUser,
    Write {
        at: (u64, Privilege),
        off: u64,
        len: u64,
        seed: u64,
    },
    Read {
        at: (u64, Privilege),
        off: u64,
        len: u64,
    },
    Query {
        at: (u64, Privilege),
        pages: u64,
    },
    Alloc {
        count: u64,
        contiguous: bool,
    },
    Free {
        pick: usize,
        count: u64,
    },
    Valloc {
        pages: u64,
    },
    Vfree {
        pick: usize,
        pages: u64,
    },
    Reset,
}

/// Addresses around table boundaries, the top of user space, the edges of
/// the kernel request space, and a few that are refused.
fn addr() -> impl Strategy<Value = (u64, Privilege)> {
    let bases = vec![
        (0x20_0000u64, U),
        (0x4000_0000, U),
        (0x80_0000_0000, U),
        (0x1234_5000, U),
        (0x7fff_ffff_8000, U),
        (0x7fff_c000_0000, K),
        (0xffff_c080_0000_0000, K),
        (0xffff_c100_0000_0000, K),
        (0xffff_ff7f_ffff_8000, K),
        (0xffff_c100_0000_0000, U),
    ];
    (proptest::sample::select(bases), 0u64..16)
        .prop_map(|((b, p), k)| (b.wrapping_add(k * 4096).wrapping_sub(8 * 4096), p))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (addr(), 1u64..12, any::<bool>(), proptest::bool::weighted(0.2))
            .prop_map(|(at, pages, writable, contiguous)| Op::Map { at, pages, writable, contiguous }),
        2 => (addr(), 1u64..12).prop_map(|(at, pages)| Op::Unmap { at, pages }),
        4 => (addr(), 1u64..40, any::<bool>()).prop_map(|(at, pages, usable)| Op::Convert { at, pages, usable }),
        1 => Just(Op::WipeUser),
        4 => (addr(), 0u64..4096, 0u64..(3 * 4096), any::<u64>())
            .prop_map(|(at, off, len, seed)| Op::Write { at, off, len, seed }),
        3 => (addr(), 0u64..4096, 0u64..(3 * 4096)).prop_map(|(at, off, len)| Op::Read { at, off, len }),
        2 => (addr(), 1u64..20).prop_map(|(at, pages)| Op::Query { at, pages }),
        2 => (1u64..8, proptest::bool::weighted(0.3)).prop_map(|(count, contiguous)| Op::Alloc { count, contiguous }),
        2 => (any::<usize>(), 1u64..4).prop_map(|(pick, count)| Op::Free { pick, count }),
        1 => (1u64..6).prop_map(|pages| Op::Valloc { pages }),
        1 => (any::<usize>(), 1u64..4).prop_map(|(pick, pages)| Op::Vfree { pick, pages }),
        1 => Just(Op::Reset),
    ]
}

/// One sequence: the machine, the oracle's model of it, and what the
/// requests may name (valloc pages the guest handed out, by address).
struct Run {
    m: SimMachine,
    model: Model,
    /// The `Hello` the checker reads the simulated RAM with.
    hello: Hello,
    valloc: BTreeSet<u64>,
    index: u64,
}

impl Run {
    fn new(mut m: SimMachine) -> Run {
        let Response::Hello(hello) = req(&mut m, Request::Hello) else {
            panic!("Hello answered otherwise")
        };
        let checked = checked_hello(&mut m);
        Run {
            m,
            model: Model::new(&hello),
            hello: checked,
            valloc: BTreeSet::new(),
            index: 0,
        }
    }

    /// Sends `r` and has the model judge the answer.
    fn judged(&mut self, r: &Request) -> Result<Response, TestCaseError> {
        let got = req(&mut self.m, r.clone());
        let index = self.index;
        self.index += 1;
        if let Err(d) = self.model.apply(index, r, &got) {
            return Err(TestCaseError::fail(format!("the oracle: {d}")));
        }
        Ok(got)
    }

    /// The oracle's memory check of the simulated RAM.
    fn memory_check(&mut self) -> Result<CheckReport, TestCaseError> {
        let expect = self.model.expectations();
        let report = oracle::check(&SimRam::of(&mut self.m), &self.hello, &expect);
        if !report.is_clean() {
            return Err(TestCaseError::fail(format!(
                "memory check after request {}:\n{report}",
                self.index
            )));
        }
        Ok(report)
    }

    /// The request `op` stands for, picking among the frames the host
    /// holds and the valloc pages it reserved.
    fn request(&self, op: &Op) -> Request {
        match *op {
            Op::Map {
                at: (addr, privilege),
                pages,
                writable,
                contiguous,
            } => Request::Map {
                addr,
                pages,
                writable,
                contiguous,
                privilege,
            },
            Op::Unmap {
                at: (addr, privilege),
                pages,
            } => Request::Unmap {
                addr,
                pages,
                privilege,
            },
            Op::Convert {
                at: (addr, privilege),
                pages,
                usable,
            } => Request::Convert {
                addr,
                pages,
                to: if usable {
                    AreaType::UsableRam
                } else {
                    AreaType::Unusable
                },
                privilege,
            },
            Op::WipeUser => Request::Convert {
                addr: 0,
                pages: 1 << 35,
                to: AreaType::Unusable,
                privilege: U,
            },
            Op::Write {
                at: (base, privilege),
                off,
                len,
                seed,
            } => Request::Write {
                addr: base.wrapping_add(off),
                len,
                seed,
                privilege,
            },
            Op::Read {
                at: (base, privilege),
                off,
                len,
            } => Request::Read {
                addr: base.wrapping_add(off),
                len,
                privilege,
            },
            Op::Query {
                at: (addr, privilege),
                pages,
            } => Request::Query {
                addr,
                pages,
                privilege,
            },
            Op::Alloc { count, contiguous } => Request::AllocFrames {
                count,
                contiguous,
                privilege: K,
            },
            Op::Free { pick, count } => {
                let held: Vec<u64> = self.model.view().host_frames().collect();
                let frame = if held.is_empty() {
                    0x1000
                } else {
                    held[pick % held.len()]
                };
                Request::FreeFrames {
                    frame,
                    count,
                    privilege: K,
                }
            }
            Op::Valloc { pages } => Request::Valloc {
                pages,
                privilege: K,
            },
            Op::Vfree { pick, pages } => {
                let held: Vec<u64> = self.valloc.iter().copied().collect();
                let addr = if held.is_empty() {
                    self.hello.valloc.start
                } else {
                    held[pick % held.len()]
                };
                Request::Vfree {
                    addr,
                    pages,
                    privilege: K,
                }
            }
            Op::Reset => Request::Reset { privilege: K },
        }
    }

    /// Runs `op` and judges it: the answer and the counters by the model,
    /// the memory by the checker, the flushes by the translations the
    /// checker walked before and after.
    fn step(
        &mut self,
        op: &Op,
        before: &BTreeMap<u64, (u64, bool)>,
    ) -> Result<CheckReport, TestCaseError> {
        let r = self.request(op);
        let flushed = self.m.vmm.mem().flushed.len();
        let got = self.judged(&r)?;
        match (&r, &got) {
            (Request::Valloc { pages, .. }, Response::Valloc { addr }) => {
                self.valloc.extend((0..*pages).map(|i| addr + i * 4096));
            }
            (Request::Vfree { addr, pages, .. }, Response::Done) => {
                for i in 0..*pages {
                    self.valloc.remove(&(addr + i * 4096));
                }
            }
            (Request::Reset { .. }, Response::Done) => self.valloc.clear(),
            _ => {}
        }
        self.judged(&Request::Stats)?;
        let report = self.memory_check()?;
        let fl: HashSet<u64> = self.m.vmm.mem().flushed[flushed..]
            .iter()
            .map(|p| p.start_address().as_u64())
            .collect();
        let after = translations(&report);
        for (page, t) in before {
            if after.get(page) != Some(t) {
                prop_assert!(
                    fl.contains(page),
                    "present page {:#x} changed without a flush in request {:?}",
                    page,
                    r
                );
            }
        }
        Ok(report)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_agree_with_the_oracle(ops in proptest::collection::vec(op(), 1..60)) {
        run_sequence(SimMachine::without_reclaim(TOTAL_FRAMES), &ops)?;
    }

    #[test]
    fn random_sequences_with_reclaim_agree_with_the_oracle(ops in proptest::collection::vec(op(), 1..60)) {
        run_sequence(SimMachine::new(TOTAL_FRAMES), &ops)?;
    }
}

/// Runs `ops` on `m`, judging each (see [`Run::step`]), then resets and
/// checks that everything is back.
fn run_sequence(m: SimMachine, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut run = Run::new(m);
    run.judged(&Request::Stats)?;
    let mut before = translations(&run.memory_check()?);
    for op in ops {
        before = translations(&run.step(op, &before)?);
    }
    reset_and_check(&mut run.m);
    Ok(())
}
