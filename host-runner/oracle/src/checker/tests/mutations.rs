//! The ways the incremental property test breaks an image: each at
//! something the model's changes or the record's differences cover, so
//! that an incremental check must find what a full one finds.

use super::super::entry::{evictable, NO_EVICTABLE};
use super::super::{CheckReport, Checker};
use crate::bench::Scenario;
use crate::model::{Changes, ModelState};

/// A fresh full check of `s`.
fn full(s: &Scenario) -> CheckReport {
    Checker::new().full(&s.img.mem, &s.img.hello, &s.model.view(), None)
}

/// Pages of `changes` with a level-1 entry: (address, entry address).
fn changed_entries(s: &Scenario, changes: &Changes) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(a, b) in changes.pages() {
        for vpn in a..b.min(a + 64) {
            if let Some(at) = s.img.leaf_addr(vpn << 12) {
                out.push((vpn << 12, at));
            }
        }
    }
    out
}

/// The entry addresses of every present page outside the heap.
fn full_present(s: &Scenario) -> Vec<u64> {
    let f = full(s);
    let user = f.walk.translations.iter().filter(|t| t.virt < 1 << 47);
    user.filter_map(|t| s.img.leaf_addr(t.virt)).collect()
}

fn pick<T: Copy>(v: &[T], sel: u64) -> Option<T> {
    (!v.is_empty()).then(|| v[(sel % v.len() as u64) as usize])
}

/// The page tables of the full walk `f` that hold a page the pressure path
/// may send out, read from `s`'s image (not those under a whole
/// allocate-on-write PD entry: the bytes of the frame it keeps mean
/// nothing).
fn tables_holding_evictable<'f>(
    f: &'f CheckReport,
    s: &'f Scenario,
) -> impl Iterator<Item = &'f crate::checker::TableRef> {
    f.walk
        .tables
        .iter()
        .filter(|t| t.level == 1)
        .filter(|t| t.path.steps.last().is_some_and(|pde| pde.raw & 1 == 1))
        .filter(|t| (0..512).any(|k| evictable(s.img.read_u64(t.frame + k * 8))))
}

/// Breaks the image in one of several ways at something `changes` or the
/// record's differences cover; `false` when there was nothing to break.
pub(super) fn mutate(s: &mut Scenario, changes: &Changes, kind: u8, sel: u64) -> bool {
    let entries = changed_entries(s, changes);
    let present: Vec<(u64, u64)> = entries
        .iter()
        .copied()
        .filter(|&(_, at)| s.img.read_u64(at) & 1 == 1)
        .collect();
    let img = &mut s.img;
    let swap = img.hello.swap.start;
    let parts = img.swap_parts();
    match kind {
        // A byte of a changed present page.
        0 => pick(&present, sel).is_some_and(|(_, at)| {
            let f = img.read_u64(at) & 0x000f_ffff_ffff_f000;
            img.mem.bytes[(f + sel % 4096) as usize] ^= 0x5a;
            true
        }),
        // A changed present page's frame marked free.
        1 => pick(&present, sel).is_some_and(|(_, at)| {
            img.set_used(img.read_u64(at) >> 12 & 0xff_ffff_ffff, false);
            true
        }),
        // A free frame marked used (a leak).
        2 => {
            let total = img.hello.total_frames;
            let free: Vec<u64> = (0..total).filter(|&f| !img.used(f)).collect();
            pick(&free, sel).is_some_and(|f| {
                img.set_used(f, true);
                true
            })
        }
        // A changed entry with a reserved bit, or another state.
        3 | 4 => pick(&entries, sel).is_some_and(|(_, at)| {
            let e = img.read_u64(at);
            let bad = match (kind, e & 1) {
                (3, 1) => e | 1 << 8,
                (3, _) => e | 1 << 5 | 1 << 1,
                // W on odd selections, NX (executable) on even ones.
                (_, 1) if sel % 2 == 1 => e ^ 1 << 1,
                (_, 1) => e ^ 1 << 63,
                _ => e ^ 1 << 12,
            };
            img.write_u64(at, bad);
            true
        }),
        // A changed present page on another page's frame.
        5 => {
            let (Some((_, a)), Some((_, b))) = (pick(&present, sel), pick(&present, sel / 7 + 1))
            else {
                return false;
            };
            let (ea, eb) = (img.read_u64(a), img.read_u64(b));
            let other = eb & 0x000f_ffff_ffff_f000;
            img.write_u64(a, (ea & !0x000f_ffff_ffff_f000) | other);
            ea != (ea & !0x000f_ffff_ffff_f000) | other
        }
        // A stray frame-info record, or a changed file page's record.
        6 => {
            let n = sel % img.hello.total_frames;
            let at = img.hello.frame_info.start + n * 8;
            let r = img.read_u64(at);
            img.write_u64(at, r ^ (1 << 63 | 1 << 40 | 3));
            true
        }
        // Swap: a pending bit, a stray length, a used unit, slot data.
        7 => {
            let unit = sel % parts.units;
            match sel % 4 {
                0 => img.mem.bytes[(swap + parts.pending + unit / 8) as usize] |= 1 << (unit % 8),
                1 => img.mem.bytes[(swap + parts.lengths + unit * 2) as usize] ^= 0x40,
                2 => img.mem.bytes[(swap + parts.used + unit / 8) as usize] ^= 1 << (unit % 8),
                _ => {
                    let slots: Vec<u64> = changes
                        .pages()
                        .iter()
                        .flat_map(|&(a, b)| a..b.min(a + 64))
                        .filter_map(|vpn| match s.model.view().state_of(vpn) {
                            Some(ModelState::OnSwap { slot }) => Some(slot),
                            _ => None,
                        })
                        .collect();
                    let Some(slot) = pick(&slots, sel) else {
                        return false;
                    };
                    let img = &mut s.img;
                    img.mem.bytes[(swap + parts.data + slot * 128 + sel % 4096) as usize] ^= 0x81;
                }
            }
            true
        }
        // Any present page made read-only or writable: the table's
        // difference from the record covers it, changed page or not.
        9 => {
            let all = full_present(s);
            let img = &mut s.img;
            pick(&all, sel).is_some_and(|at| {
                let e = img.read_u64(at);
                img.write_u64(at, e ^ 1 << 1);
                true
            })
        }
        // Any level-1 entry of a page the changes do not name, rewritten
        // as a guest's stray write would: a zero entry made
        // allocate-on-write, a present one moved to a free frame, a
        // not-present one given another slot or file page. The model
        // expected none of them to change; the record's copy of the
        // table shows that they did. (Not under a whole allocate-on-write
        // PD entry: the bytes of the frame it keeps mean nothing.)
        10 => {
            let f = full(s);
            let leaves: Vec<(u64, u64)> = f
                .walk
                .tables
                .iter()
                .filter(|t| t.level == 1)
                .filter(|t| t.path.steps.last().is_some_and(|pde| pde.raw & 1 == 1))
                .flat_map(|t| (0..512u64).map(move |k| (t.path.virt + k * 4096, t.frame + k * 8)))
                .filter(|&(virt, _)| !changes.has_page(virt >> 12))
                .collect();
            let img = &mut s.img;
            let total = img.hello.total_frames;
            let free = (0..total).rev().find(|&f| !img.used(f));
            pick(&leaves, sel).is_some_and(|(_, at)| {
                let e = img.read_u64(at);
                let bad = match e {
                    0 => 1 << 1,
                    e if e & 1 == 1 => match free {
                        Some(f) => (e & !0x000f_ffff_ffff_f000) | f << 12,
                        None => return false,
                    },
                    e => e ^ 1 << 12,
                };
                img.write_u64(at, bad);
                true
            })
        }
        // A level-2 entry's present count off by one, its table's bytes
        // left as they were: the walk shares the record's copy of that
        // table and its count of present entries, and must still compare
        // that count with the entry as it is now.
        12 => {
            let f = full(s);
            let pds: Vec<(u64, u64)> = f
                .walk
                .tables
                .iter()
                .filter(|t| t.level == 1)
                .filter_map(|t| t.path.steps.last())
                .map(|st| (st.table + u64::from(st.index) * 8, st.raw))
                .collect();
            let img = &mut s.img;
            pick(&pds, sel).is_some_and(|(at, raw)| {
                let count = (raw >> 52) & 0x3ff;
                let other = if count == 0 { 1 } else { count - 1 };
                img.write_u64(at, (raw & !(0x3ff << 52)) | other << 52);
                true
            })
        }
        // A level-2 entry (13) or level-3 entry (14) given the
        // no-evictable mark (bit 62) over a page table holding a page the
        // pressure path may send out, the entries and tables below left as
        // they were (marked or not): the walk shares the record's copies
        // of them and must still look into every page table under the
        // marked entry.
        13 | 14 => {
            let f = full(s);
            let marked = |steps: &[super::super::Step]| match kind {
                13 => steps.last().copied(),
                _ => steps.get(1).copied(),
            };
            let entries: Vec<(u64, u64)> = tables_holding_evictable(&f, s)
                .filter_map(|t| marked(&t.path.steps))
                .map(|st| (st.table + u64::from(st.index) * 8, st.raw))
                .collect();
            let img = &mut s.img;
            pick(&entries, sel).is_some_and(|(at, raw)| {
                img.write_u64(at, raw | NO_EVICTABLE);
                true
            })
        }
        // A level-2 entry gone: its table and everything under it.
        _ => {
            let Some((virt, _)) = pick(&entries, sel) else {
                return false;
            };
            let addr = |e: u64| e & 0x000f_ffff_ffff_f000;
            let Some(root) = img.root_of(virt) else {
                return false;
            };
            let pml4e = img.read_u64(root + ((virt >> 39) & 511) * 8);
            let pdpte = img.read_u64(addr(pml4e) + ((virt >> 30) & 511) * 8);
            img.write_u64(addr(pdpte) + ((virt >> 21) & 511) * 8, 0);
            true
        }
    }
}
