//! Random request sequences judged by the oracle (`host-runner/oracle`, a
//! dev-dependency: the host's model of the VMM, written from
//! `protocol::semantics` alone and sharing no code with this crate), as the
//! runner judges the real guest: after every request the model judges the
//! answer and a `Stats` answer (every counter), the oracle's memory checker
//! reads the simulated RAM and the frame bitmap and checks its invariants
//! against the model's expectations, every present page whose translation
//! changed was flushed, and [`check`] (the core's own bookkeeping: bitmap,
//! counters, kernel slots, swap store) holds. A reset check ends each
//! sequence.

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

/// One step of a sequence: a request, or a free of what the host holds
/// (picked when the step runs, among what the guest handed out).
#[derive(Clone, Debug)]
enum Op {
    Send(Request),
    Free { pick: usize, count: u64 },
    Vfree { pick: usize, pages: u64 },
}

/// Addresses around table boundaries, the top of user space, the edges of
/// the kernel request space, and a few that are refused.
fn addr() -> impl Strategy<Value = (u64, Privilege)> {
    near(vec![
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
    ])
}

/// Any step: requests of every kind (an address from [`addr`]) and frees,
/// weighted toward the ones that change state.
fn op() -> impl Strategy<Value = Op> {
    let area = |k: u8| match k {
        0 => AreaType::UsableRam,
        1 => AreaType::Unusable,
        _ => AreaType::PinnedRam,
    };
    let wipe_user = Request::Convert {
        addr: 0,
        pages: 1 << 35,
        to: AreaType::Unusable,
        privilege: U,
    };
    let requests = prop_oneof![
        4 => (addr(), 1u64..12, any::<bool>(), proptest::bool::weighted(0.2), proptest::bool::weighted(0.3))
            .prop_map(|((addr, privilege), pages, writable, contiguous, executable)| Request::Map { addr, pages, writable, contiguous, privilege, executable }),
        2 => (addr(), 1u64..12).prop_map(|((addr, privilege), pages)| Request::Unmap { addr, pages, privilege }),
        4 => (addr(), 1u64..40, 0u8..3)
            .prop_map(move |((addr, privilege), pages, k)| Request::Convert { addr, pages, to: area(k), privilege }),
        1 => Just(wipe_user),
        4 => (addr(), 0u64..4096, 0u64..(3 * 4096), any::<u64>())
            .prop_map(|((base, privilege), off, len, seed)| Request::Write { addr: base.wrapping_add(off), len, seed, privilege }),
        3 => (addr(), 0u64..4096, 0u64..(3 * 4096))
            .prop_map(|((base, privilege), off, len)| Request::Read { addr: base.wrapping_add(off), len, privilege }),
        2 => (addr(), 1u64..20).prop_map(|((addr, privilege), pages)| Request::Query { addr, pages, privilege }),
        2 => (1u64..8, proptest::bool::weighted(0.3))
            .prop_map(|(count, contiguous)| Request::AllocFrames { count, contiguous, privilege: K }),
        1 => (1u64..6).prop_map(|pages| Request::Valloc { pages, privilege: K }),
        1 => Just(Request::Reset { privilege: K }),
    ]
    .prop_map(Op::Send);
    let frees = prop_oneof![
        2 => (any::<usize>(), 1u64..4).prop_map(|(pick, count)| Op::Free { pick, count }),
        1 => (any::<usize>(), 1u64..4).prop_map(|(pick, pages)| Op::Vfree { pick, pages }),
    ];
    // The weights of the requests above and of the frees, as one list.
    prop_oneof![24 => requests, 3 => frees]
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
        let pick = |held: Vec<u64>, pick: usize, none: u64| {
            if held.is_empty() {
                none
            } else {
                held[pick % held.len()]
            }
        };
        match *op {
            Op::Send(ref r) => r.clone(),
            Op::Free { pick: p, count } => Request::FreeFrames {
                frame: pick(self.model.view().host_frames().collect(), p, 0x1000),
                count,
                privilege: K,
            },
            Op::Vfree { pick: p, pages } => Request::Vfree {
                addr: pick(
                    self.valloc.iter().copied().collect(),
                    p,
                    self.hello.valloc.start,
                ),
                pages,
                privilege: K,
            },
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
        let full = self.m.vmm.mem().full_flushes;
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
        check(&mut self.m);
        let fl: HashSet<u64> = self.m.vmm.mem().flushed[flushed..]
            .iter()
            .map(|p| p.start_address().as_u64())
            .collect();
        let after = translations(&report);
        // A full flush covers every page.
        let all_flushed = self.m.vmm.mem().full_flushes > full;
        for (page, t) in before {
            if after.get(page) != Some(t) {
                prop_assert!(
                    fl.contains(page) || all_flushed,
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
