//! The stale-translation probe (`protocol::semantics`, **Stale
//! translations**): after a request that can make present pages not
//! present, read one byte of each page the CPU may still hold a translation
//! for and the page tables now say is not present; a read that does not
//! fault is a TLB entry the VMM failed to invalidate.
//!
//! Which pages: every page the answer's reclaim events name (heap pages the
//! kernel itself used included), then those of [`Touched`] (what
//! `Write`/`Read` touched) inside the request's range (everything for
//! `Reset`, the whole user half for `SwitchSpace`, where a page of the
//! previous space that the new one does not have must not read, and for
//! `DestroySpace`, which must leave the current space's pages alone), from
//! the highest
//! down: a touch runs upwards, so the last pages it reached are the ones a
//! TLB most likely still holds. The touched set is one for all spaces (by
//! address): a page found not present in the space current then leaves
//! it, which is sound since no translation of another space survives a
//! switch.
//!
//! Before such a request runs, the guest primes the TLB ([`prime`]): it
//! loads one byte of each present page it will probe afterwards, so a
//! translation the CPU dropped since the page was touched (QEMU's TLB holds
//! 256 entries) is back when the VMM changes the entry; and the first and
//! last page of the request's range join the set when present.
//!
//! The cost is one page walk per page looked at and one faulting load per
//! page found not present, bounded per answer by [`EXAMINE_CAP`] walks and
//! [`PROBE_CAP`] loads (a 64 MiB write then a `Reset` would otherwise cost
//! 16,384 of each); a probed page that is not present leaves the set, so
//! it is not probed again until touched again, and `Reset` empties it.

use alloc::boxed::Box;
use protocol::{Reclaim, Request, Response};

use crate::layout::{KERNEL_SPACE_END, KERNEL_SPACE_START, USER_END, USER_START};
use crate::machine::Machine;
use crate::touched::{Touched, CAPACITY};
use crate::validate::canonical;

/// Most pages whose entry one answer's probe looks at.
pub const EXAMINE_CAP: usize = 1024;
/// Most faulting loads one answer's probe makes.
pub const PROBE_CAP: usize = 128;

/// The pages a request's probe looks at, as page numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Nothing beyond the reclaim events.
    Events,
    /// Pages `lo..hi` of the touched set, and the events.
    Range(u64, u64),
    /// Every page of the touched set in the user half, and the events
    /// (`SwitchSpace`: the previous space's translations must be gone).
    Switch,
    /// Every page of the touched set, and the events; then the set is
    /// emptied (`Reset`: no managed page is present after it).
    All,
}

impl Scope {
    /// The scope of `req` (looked at before it runs).
    pub fn of(req: &Request) -> Scope {
        let range = |addr: u64, pages: u64| {
            let lo = canonical(addr) >> 12;
            Scope::Range(lo, lo.saturating_add(pages))
        };
        match *req {
            Request::Unmap { addr, pages, .. }
            | Request::Convert { addr, pages, .. }
            | Request::Evict { addr, pages, .. } => range(addr, pages),
            Request::Reset { .. } => Scope::All,
            Request::SwitchSpace { .. } | Request::DestroySpace { .. } => Scope::Switch,
            _ => Scope::Events,
        }
    }

    /// The pages of the touched set the scope looks at (`None`: none).
    fn pages(self) -> Option<(u64, u64)> {
        match self {
            Scope::Events => None,
            Scope::Range(lo, hi) => Some((lo, hi)),
            Scope::Switch => Some((USER_START >> 12, USER_END >> 12)),
            Scope::All => Some((0, u64::MAX)),
        }
    }
}

/// What an answer's probe may still spend.
struct Budget {
    examine: usize,
    probe: usize,
}

/// The page an event names.
fn event_page(e: &Reclaim) -> u64 {
    match *e {
        Reclaim::Swapped { addr, .. } | Reclaim::Dropped { addr } | Reclaim::Scavenged { addr } => {
            canonical(addr) >> 12
        }
    }
}

/// Probes page `p` if its entry is not present: `Some(addr)` when the load
/// went through a stale translation. Answers too whether it is present
/// (`None` when the budget is spent: the page was not looked at).
fn probe_page<M: Machine>(m: &mut M, p: u64, b: &mut Budget) -> Option<(bool, Option<u64>)> {
    if b.examine == 0 || b.probe == 0 {
        return None;
    }
    b.examine -= 1;
    let addr = p << 12;
    if m.with_vmm(|v| v.translate(addr).is_some()) {
        return Some((true, None));
    }
    b.probe -= 1;
    Some((false, m.probe(addr).then_some(addr)))
}

/// A copy of the touched set's ranges (so that the set may change while
/// they are walked), and how many there are.
fn touched_runs<M: Machine>(m: &mut M) -> ([(u64, u64); CAPACITY], usize) {
    let mut runs = [(0u64, 0u64); CAPACITY];
    let t: &Touched = m.touched();
    let n = t.runs().len();
    runs[..n].copy_from_slice(t.runs());
    (runs, n)
}

/// Whether page `p` (a page number of a canonical address) lies in space
/// the VMM manages: only there does a page walk find the VMM's own tables.
fn managed(p: u64) -> bool {
    // A page number past the address space (a range running off its
    // top) is no page at all, not a low one.
    let Some(addr) = p.checked_mul(4096) else {
        return false;
    };
    (USER_START..USER_END).contains(&addr) || (KERNEL_SPACE_START..KERNEL_SPACE_END).contains(&addr)
}

/// The parts of pages `s..e` in space the VMM manages, highest last: the
/// user half, then the kernel's space. The touched set may hold pages
/// outside it (a run merged across a gap, a touch recorded up to its
/// end); walking those would read the kernel's own tables, which are not
/// the VMM's to read (found by a 10-minute campaign: the guest's frame
/// guard refused the kernel image's page directory).
fn managed_parts(s: u64, e: u64) -> [(u64, u64); 2] {
    let part = |from: u64, to: u64| (s.max(from >> 12), e.min(to >> 12));
    [
        part(USER_START, USER_END),
        part(KERNEL_SPACE_START, KERNEL_SPACE_END),
    ]
}

/// Primes the TLB before the request of `scope` runs: loads one byte of
/// each present page the probe will look at after it (and, before a
/// `Reset`, which drops every translation at once, probes the pages that
/// are not present: a translation an earlier request failed to invalidate
/// is found now or never; answered as the lowest such address), so that a missing
/// invalidation leaves a translation the probe can find however long ago
/// the page was touched (the CPU may have dropped that translation since;
/// QEMU's TLB holds 256 entries). The first and last page of a range join
/// the touched set when present, so that a range never touched is probed
/// too. Bounded as the probe is: [`EXAMINE_CAP`] walks and [`PROBE_CAP`]
/// loads, the highest pages first, as the probe looks at them. The loads
/// change nothing but accessed bits: a fault on them never reaches the
/// VMM.
pub(crate) fn prime<M: Machine>(m: &mut M, scope: Scope) -> Option<u64> {
    let (lo, hi) = scope.pages()?;
    if let Scope::Range(lo, hi) = scope {
        for p in [lo, hi.wrapping_sub(1)] {
            if lo < hi && managed(p) && m.with_vmm(|v| v.translate(p << 12).is_some()) {
                m.touched().add(p, p + 1);
            }
        }
    }
    let mut budget = Budget {
        examine: EXAMINE_CAP,
        probe: PROBE_CAP,
    };
    let mut stale: Option<u64> = None;
    let (runs, n) = touched_runs(m);
    for &(s, e) in runs[..n].iter().rev() {
        for (s, e) in managed_parts(s.max(lo), e.min(hi)).into_iter().rev() {
            for p in (s..e).rev() {
                if budget.examine == 0 || budget.probe == 0 {
                    return stale;
                }
                budget.examine -= 1;
                let present = m.with_vmm(|v| v.translate(p << 12).is_some());
                if present || scope == Scope::All {
                    budget.probe -= 1;
                    let through = m.probe(p << 12);
                    if through && !present {
                        stale = Some(lowest(stale, p << 12));
                    }
                }
            }
        }
    }
    stale
}

/// The lower of the stale address found so far (if any) and `a`.
fn lowest(found: Option<u64>, a: u64) -> u64 {
    found.map_or(a, |s| s.min(a))
}

/// Runs the probe of `scope` after `answer` was built; wraps the answer as
/// `Stale` when a page read through a stale translation, here or in the
/// priming before the request (`before`).
pub(crate) fn check<M: Machine>(
    m: &mut M,
    scope: Scope,
    answer: Response,
    before: Option<u64>,
) -> Response {
    let mut stale: Option<u64> = before;
    let mut found = |a: Option<u64>| {
        if let Some(a) = a {
            stale = Some(lowest(stale, a));
        }
    };
    let mut budget = Budget {
        examine: EXAMINE_CAP,
        probe: PROBE_CAP,
    };
    if let Response::Reclaimed { events, .. } = &answer {
        for e in events {
            let p = event_page(e);
            let Some((present, hit)) = probe_page(m, p, &mut budget) else {
                break;
            };
            found(hit);
            if !present {
                m.touched().remove(p, p + 1);
            }
        }
    }
    if let Some((lo, hi)) = scope.pages() {
        // A copy of the ranges, so that the set can shrink as pages are
        // found not present.
        let (runs, n) = touched_runs(m);
        'runs: for &(s, e) in runs[..n].iter().rev() {
            for (s, e) in managed_parts(s.max(lo), e.min(hi)).into_iter().rev() {
                // Consecutive pages found not present leave the set together.
                let mut gone: Option<(u64, u64)> = None;
                for p in (s..e).rev() {
                    let Some((present, hit)) = probe_page(m, p, &mut budget) else {
                        if let Some((a, b)) = gone {
                            m.touched().remove(a, b);
                        }
                        break 'runs;
                    };
                    found(hit);
                    gone = match (present, gone) {
                        (false, Some((a, b))) if a == p + 1 => Some((p, b)),
                        (false, g) => {
                            if let Some((a, b)) = g {
                                m.touched().remove(a, b);
                            }
                            Some((p, p + 1))
                        }
                        (true, g) => {
                            if let Some((a, b)) = g {
                                m.touched().remove(a, b);
                            }
                            None
                        }
                    };
                }
                if let Some((a, b)) = gone {
                    m.touched().remove(a, b);
                }
            }
        }
    }
    if scope == Scope::All {
        m.touched().clear();
    }
    match stale {
        Some(addr) => Response::Stale {
            addr: canonical(addr),
            response: Box::new(answer),
        },
        None => answer,
    }
}
