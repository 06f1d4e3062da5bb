//! Random operation sequences against a simple reference model: a map of
//! page → state written from `protocol::semantics` alone (it shares no code
//! with the VMM: its own validation, its own table count), compared after
//! every request on the answer and on every counter, with the leak check
//! after every request and a reset check at the end.

use crate::conv::usize_of;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use protocol::{AreaType, Error, FaultReason, PageState, Stats};

use super::*;

const TOTAL_FRAMES: u64 = 96;
const VALLOC_BASE: u64 = 0xffff_c100_0000_0000;
const VALLOC_PAGES: u64 = 1 << 18;

#[derive(Clone, Debug, PartialEq)]
enum MPage {
    Aow,
    Present { writable: bool, data: Vec<u8> },
}

#[derive(Debug, Default)]
struct Model {
    pages: BTreeMap<u64, MPage>,
    host: BTreeSet<u64>,
    valloc: BTreeSet<u64>,
    boot_free: u64,
    faults: u64,
}

/// The model's own range checks (steps 1–7 of the specification).
fn model_check(
    addr: u64,
    len: u64,
    pages: Option<u64>,
    limit: Option<u64>,
    pr: Privilege,
) -> Result<(), Error> {
    if let Some(p) = pages {
        if p == 0 {
            return Err(Error::ZeroCount);
        }
        if limit.is_some_and(|l| p > l) {
            return Err(Error::TooLarge);
        }
        if addr % 4096 != 0 {
            return Err(Error::Misaligned);
        }
    }
    let top = addr >> 47;
    if top != 0 && top != 0x1ffff {
        return Err(Error::NonCanonical);
    }
    let Some(end) = addr.checked_add(len) else {
        return Err(Error::Overflow);
    };
    if top == 0 && end > 1 << 47 {
        return Err(Error::CrossesCanonicalHole);
    }
    if top != 0 && pr == Privilege::User {
        return Err(Error::PermissionDenied);
    }
    if top != 0 && (addr < 0xffff_c080_0000_0000 || end > 0xffff_ff80_0000_0000) {
        return Err(Error::Reserved);
    }
    Ok(())
}

impl Model {
    fn tables_of<'a>(pages: impl Iterator<Item = &'a u64>) -> u64 {
        let mut set = BTreeSet::new();
        for p in pages {
            let lin = p & ((1 << 48) - 1);
            set.insert((1u8, lin >> 21));
            set.insert((2, lin >> 30));
            set.insert((3, lin >> 39));
        }
        set.len() as u64
    }
    fn tables(&self) -> u64 {
        Self::tables_of(self.pages.keys())
    }
    fn present(&self) -> u64 {
        self.pages
            .values()
            .filter(|p| matches!(p, MPage::Present { .. }))
            .count() as u64
    }
    fn free(&self) -> u64 {
        self.boot_free - self.tables() - self.present() - self.host.len() as u64
    }
    /// Tables a set of new pages would add.
    fn new_tables(&self, new: &[u64]) -> u64 {
        Self::tables_of(self.pages.keys().chain(new.iter())) - self.tables()
    }
    fn stats(&self) -> Stats {
        Stats {
            total_frames: TOTAL_FRAMES,
            free_frames: self.free(),
            boot_free_frames: self.boot_free,
            page_table_frames: self.tables(),
            present_pages: self.present(),
            alloc_on_write_pages: self.pages.len() as u64 - self.present(),
            host_frames: self.host.len() as u64,
            valloc_pages: self.valloc.len() as u64,
            faults_resolved: self.faults,
            ..Stats::default()
        }
    }

    /// A touch of `addr..addr + len`, page by page; `data` gets (for a
    /// write) or gives (for a read) the bytes.
    fn touch(
        &mut self,
        addr: u64,
        len: u64,
        write: Option<u64>,
    ) -> Result<Vec<u8>, (u64, FaultReason)> {
        let mut out = Vec::new();
        let mut at = addr;
        let end = addr + len;
        while at < end {
            let page = at & !0xfff;
            let n = usize_of((page + 4096).min(end) - at);
            let free = self.free();
            match self.pages.get_mut(&page) {
                None => return Err((at, FaultReason::Unusable)),
                Some(MPage::Present {
                    writable: false, ..
                }) if write.is_some() => return Err((at, FaultReason::ReadOnly)),
                Some(p @ MPage::Aow) => {
                    if free == 0 {
                        return Err((at, FaultReason::OutOfMemory));
                    }
                    *p = MPage::Present {
                        writable: true,
                        data: vec![0; 4096],
                    };
                    self.faults += 1;
                }
                _ => {}
            }
            let Some(MPage::Present { data, .. }) = self.pages.get_mut(&page) else {
                unreachable!()
            };
            let off = usize_of(at - page);
            match write {
                Some(seed) => protocol::pattern::fill(seed, at, &mut data[off..off + n]),
                None => out.extend_from_slice(&data[off..off + n]),
            }
            at += n as u64;
        }
        Ok(out)
    }
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

fn strip(s: PageState) -> PageState {
    match s {
        PageState::PresentRam { writable, .. } => PageState::PresentRam { writable, frame: 0 },
        o => o,
    }
}

fn err(e: Error) -> Response {
    Response::Error(e)
}

/// Runs one op on the machine and the model; panics on any divergence.
fn step(m: &mut SimMachine, md: &mut Model, op: &Op) {
    match *op {
        Op::Map {
            at: (addr, pr),
            pages,
            writable,
            contiguous,
        } => {
            let got = req(
                m,
                Request::Map {
                    addr,
                    pages,
                    writable,
                    contiguous,
                    privilege: pr,
                },
            );
            let range: Vec<u64> = (0..pages).map(|i| addr.wrapping_add(i * 4096)).collect();
            let want = model_check(addr, pages * 4096, Some(pages), None, pr).and_then(|()| {
                if let Some(p) = range.iter().find(|p| md.pages.contains_key(p)) {
                    return Err(Error::InvalidState { addr: *p });
                }
                if md.free() < pages + md.new_tables(&range) {
                    return Err(Error::OutOfMemory);
                }
                Ok(())
            });
            match want {
                Err(e) => assert_eq!(got, err(e)),
                // The host accepts out of memory for a contiguous map.
                Ok(()) if contiguous && got == err(Error::OutOfMemory) => {}
                Ok(()) => {
                    assert_eq!(got, Response::Done);
                    for p in range {
                        md.pages.insert(
                            p,
                            MPage::Present {
                                writable,
                                data: vec![0; 4096],
                            },
                        );
                    }
                }
            }
        }
        Op::Unmap {
            at: (addr, pr),
            pages,
        } => {
            let got = req(
                m,
                Request::Unmap {
                    addr,
                    pages,
                    privilege: pr,
                },
            );
            let range: Vec<u64> = (0..pages).map(|i| addr.wrapping_add(i * 4096)).collect();
            let want = model_check(addr, pages * 4096, Some(pages), None, pr).and_then(|()| {
                match range.iter().find(|p| !md.pages.contains_key(p)) {
                    Some(p) => Err(Error::InvalidState { addr: *p }),
                    None => Ok(()),
                }
            });
            match want {
                Err(e) => assert_eq!(got, err(e)),
                Ok(()) => {
                    assert_eq!(got, Response::Done);
                    for p in range {
                        md.pages.remove(&p);
                    }
                }
            }
        }
        Op::Convert {
            at: (addr, pr),
            pages,
            usable,
        } => {
            let to = if usable {
                AreaType::UsableRam
            } else {
                AreaType::Unusable
            };
            let got = req(
                m,
                Request::Convert {
                    addr,
                    pages,
                    to,
                    privilege: pr,
                },
            );
            let range: Vec<u64> = (0..pages).map(|i| addr.wrapping_add(i * 4096)).collect();
            let want = model_check(addr, pages * 4096, Some(pages), None, pr).and_then(|()| {
                if usable && md.free() < md.new_tables(&range) {
                    return Err(Error::OutOfMemory);
                }
                Ok(())
            });
            match want {
                Err(e) => assert_eq!(got, err(e)),
                Ok(()) => {
                    assert_eq!(got, Response::Done);
                    for p in range {
                        if usable {
                            md.pages.entry(p).or_insert(MPage::Aow);
                        } else {
                            md.pages.remove(&p);
                        }
                    }
                }
            }
        }
        Op::WipeUser => {
            let got = req(
                m,
                Request::Convert {
                    addr: 0,
                    pages: 1 << 35,
                    to: AreaType::Unusable,
                    privilege: U,
                },
            );
            assert_eq!(got, Response::Done);
            md.pages.retain(|p, _| *p >= 1 << 47);
        }
        Op::Write {
            at: (base, pr),
            off,
            len,
            seed,
        } => {
            let addr = base.wrapping_add(off);
            let got = req(
                m,
                Request::Write {
                    addr,
                    len,
                    seed,
                    privilege: pr,
                },
            );
            let want = if len == 0 {
                Response::Done
            } else {
                match model_check(addr, len, None, None, pr) {
                    Err(e) => err(e),
                    Ok(()) => match md.touch(addr, len, Some(seed)) {
                        Ok(_) => Response::Done,
                        Err((addr, reason)) => Response::Fault {
                            addr,
                            write: true,
                            reason,
                        },
                    },
                }
            };
            assert_eq!(got, want);
        }
        Op::Read {
            at: (base, pr),
            off,
            len,
        } => {
            let addr = base.wrapping_add(off);
            let got = req(
                m,
                Request::Read {
                    addr,
                    len,
                    privilege: pr,
                },
            );
            let want = if len == 0 {
                Response::Checksum {
                    checksum: protocol::pattern::checksum(&[]),
                }
            } else {
                match model_check(addr, len, None, None, pr) {
                    Err(e) => err(e),
                    Ok(()) => match md.touch(addr, len, None) {
                        Ok(bytes) => Response::Checksum {
                            checksum: protocol::pattern::checksum(&bytes),
                        },
                        Err((addr, reason)) => Response::Fault {
                            addr,
                            write: false,
                            reason,
                        },
                    },
                }
            };
            assert_eq!(got, want);
        }
        Op::Query {
            at: (addr, pr),
            pages,
        } => {
            let got = req(
                m,
                Request::Query {
                    addr,
                    pages,
                    privilege: pr,
                },
            );
            let want = match model_check(addr, pages * 4096, Some(pages), Some(4096), pr) {
                Err(e) => err(e),
                Ok(()) => Response::Pages(
                    (0..pages)
                        .map(|i| match md.pages.get(&(addr + i * 4096)) {
                            None => PageState::Unusable,
                            Some(MPage::Aow) => PageState::AllocOnWrite,
                            Some(MPage::Present { writable, .. }) => PageState::PresentRam {
                                writable: *writable,
                                frame: 0,
                            },
                        })
                        .collect(),
                ),
            };
            let got = match got {
                Response::Pages(p) => Response::Pages(p.into_iter().map(strip).collect()),
                o => o,
            };
            assert_eq!(got, want);
        }
        Op::Alloc { count, contiguous } => {
            let got = req(
                m,
                Request::AllocFrames {
                    count,
                    contiguous,
                    privilege: K,
                },
            );
            if md.free() < count {
                assert_eq!(got, err(Error::OutOfMemory));
            } else if contiguous && got == err(Error::OutOfMemory) {
            } else {
                let Response::Frames(runs) = got else {
                    panic!("alloc answered {got:?}")
                };
                if contiguous {
                    assert_eq!(runs.len(), 1);
                }
                let mut n = 0;
                for r in runs {
                    for i in 0..r.count {
                        assert!(md.host.insert(r.start + i * 4096), "frame given twice");
                        n += 1;
                    }
                }
                assert_eq!(n, count);
            }
        }
        Op::Free { pick, count } => {
            let held: Vec<u64> = md.host.iter().copied().collect();
            let frame = if held.is_empty() {
                0x1000
            } else {
                held[pick % held.len()]
            };
            let got = req(
                m,
                Request::FreeFrames {
                    frame,
                    count,
                    privilege: K,
                },
            );
            let want = if frame + count * 4096 > TOTAL_FRAMES * 4096 {
                Err(Error::OutOfRange)
            } else {
                match (0..count)
                    .map(|i| frame + i * 4096)
                    .find(|f| !md.host.contains(f))
                {
                    Some(f) => Err(Error::NotOwned { frame: f }),
                    None => Ok(()),
                }
            };
            match want {
                Err(e) => assert_eq!(got, err(e)),
                Ok(()) => {
                    assert_eq!(got, Response::Done);
                    for i in 0..count {
                        md.host.remove(&(frame + i * 4096));
                    }
                }
            }
        }
        Op::Valloc { pages } => {
            let got = req(
                m,
                Request::Valloc {
                    pages,
                    privilege: K,
                },
            );
            let Response::Valloc { addr } = got else {
                panic!("valloc answered {got:?}")
            };
            assert!(addr >= VALLOC_BASE && addr % 4096 == 0);
            let first = (addr - VALLOC_BASE) / 4096;
            assert!(first + pages <= VALLOC_PAGES);
            for p in first..first + pages {
                assert!(md.valloc.insert(p), "valloc page {p} handed out twice");
            }
        }
        Op::Vfree { pick, pages } => {
            let held: Vec<u64> = md.valloc.iter().copied().collect();
            let first = if held.is_empty() {
                0
            } else {
                held[pick % held.len()]
            };
            let addr = VALLOC_BASE + first * 4096;
            let got = req(
                m,
                Request::Vfree {
                    addr,
                    pages,
                    privilege: K,
                },
            );
            match (first..first + pages).find(|p| !md.valloc.contains(p)) {
                Some(p) => assert_eq!(
                    got,
                    err(Error::InvalidState {
                        addr: VALLOC_BASE + p * 4096
                    })
                ),
                None => {
                    assert_eq!(got, Response::Done);
                    for p in first..first + pages {
                        md.valloc.remove(&p);
                    }
                }
            }
        }
        Op::Reset => {
            assert_eq!(req(m, Request::Reset { privilege: K }), Response::Done);
            md.pages.clear();
            md.host.clear();
            md.valloc.clear();
            md.faults = 0;
        }
    }
}

/// Every present level-1 entry, by canonical page address.
fn present_leaves(m: &mut SimMachine) -> BTreeMap<u64, u64> {
    snapshot(m)
        .entries
        .into_iter()
        .filter(|((lvl, _), raw)| *lvl == 1 && raw & 1 != 0)
        .map(|((_, lin), raw)| (crate::validate::canonical(lin), raw))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_agree_with_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut m = SimMachine::without_reclaim(TOTAL_FRAMES);
        let mut md = Model { boot_free: stats(&mut m).boot_free_frames, ..Model::default() };
        for (i, op) in ops.iter().enumerate() {
            let before = present_leaves(&mut m);
            let flushed = m.vmm.mem().flushed.len();
            step(&mut m, &mut md, op);
            let after = present_leaves(&mut m);
            let fl: std::collections::HashSet<u64> = m.vmm.mem().flushed[flushed..]
                .iter()
                .map(|p| p.start_address().as_u64())
                .collect();
            for (page, raw) in before {
                if after.get(&page) != Some(&raw) {
                    prop_assert!(fl.contains(&page), "present page {:#x} changed without a flush in op {} {:?}", page, i, op);
                }
            }
            let s = stats(&mut m);
            prop_assert_eq!(s, md.stats(), "counters after op {} {:?}", i, op);
            check(&mut m);
        }
        reset_and_check(&mut m);
    }
}
