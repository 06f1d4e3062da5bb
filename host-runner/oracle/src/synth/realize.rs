//! Keeping a synthetic image in step with the model: the answers a correct
//! guest gives, and each changed page stored as the formats say.

use protocol::{FrameRun, PageState, Reclaim, Request, Response, RECLAIM_RING};

use super::{Image, ADDR, AOW, NX, P, U, W};
use crate::model::keys::{is_user, tag, untag};
use crate::model::{evicted, Changes, Expected, Model, ModelState, Prediction};

/// A frame-info record's valid bit.
const VALID: u64 = 1 << 63;
/// Units of a raw (uncompressed) slot.
const RAW_UNITS: u64 = 32;

/// The canonical address (or key, for a page of a space other than 0:
/// `crate::model::keys`) of page number `vpn`.
pub(super) fn virt_of(vpn: u64) -> u64 {
    let a = vpn << 12;
    if a & (1 << 47) != 0 {
        a | 0xffff_0000_0000_0000
    } else {
        a
    }
}

impl Image {
    /// Whether page number `vpn` is in the heap region (the guest's own).
    fn in_heap(&self, vpn: u64) -> bool {
        self.hello.heap.contains(virt_of(vpn))
    }

    /// Page numbers (keys) in `first..end` whose level-1 entry is not
    /// zero, in every space.
    pub(super) fn existing_leaves(&self, first: u64, end: u64, out: &mut Vec<u64>) {
        let root = self.hello.page_table_root;
        self.leaves_under(root, 4, 0, first, end, out);
        for (&s, &r) in &self.roots {
            self.leaves_under(r, 4, tag(s, 0) >> 12, first, end, out);
        }
        out.sort_unstable();
    }

    /// The leaves under the level-`level` table at `table`, whose first
    /// page number is `base` (a tag alone at level 4: a space other than
    /// 0's PML4 is walked in its user half, the kernel half is space 0's).
    fn leaves_under(
        &self,
        table: u64,
        level: u32,
        base: u64,
        first: u64,
        end: u64,
        out: &mut Vec<u64>,
    ) {
        let span = 1u64 << (9 * (level - 1));
        for i in 0..512u64 {
            let start = match level {
                4 if i >= 256 && base != 0 => continue,
                4 if i >= 256 => 0x000f_fff0_0000_0000 | i << 27,
                _ => base + i * span,
            };
            if start >= end || start + span <= first {
                continue;
            }
            if level == 4 && self.hello.reserved_pml4_slots.contains(&(i as u16)) {
                continue;
            }
            let e = self.read_u64(table + i * 8);
            if level == 1 {
                if e != 0 {
                    out.push(start);
                }
            } else if e & P != 0 {
                self.leaves_under(e & ADDR, level - 1, start, first, end, out);
            }
        }
    }

    /// Brings the pages `changes` names (every page when it says
    /// everything) and the host frames it names in line with `expect`.
    pub fn realize(&mut self, expect: &Expected, changes: &Changes) {
        self.realize_spaces(expect);
        let all = [(0, u64::MAX >> 12)];
        let ranges = if changes.is_everything() {
            &all[..]
        } else {
            changes.pages()
        };
        for &(s, e) in ranges {
            let mut vpns = Vec::new();
            self.existing_leaves(s, e, &mut vpns);
            for (rs, re, _) in expect.runs_in(s, e) {
                vpns.extend(rs..re);
            }
            vpns.sort_unstable();
            vpns.dedup();
            vpns.retain(|&v| !self.in_heap(v));
            for vpn in vpns {
                self.realize_page(expect, vpn);
            }
        }
        for &f in changes.host_frames() {
            self.set_used(f, expect.host_holds(f << 12));
        }
    }

    fn free_slot(&mut self, slot: u64) {
        let s = self.swap;
        let at = self.hello.swap.start;
        self.write(at + s.lengths + slot * 2, &[0, 0]);
        for u in slot..slot + RAW_UNITS {
            let b = (at + s.used + u / 8) as usize;
            self.mem.bytes[b] &= !(1 << (u % 8));
        }
    }

    fn store_slot(&mut self, slot: u64, bytes: &[u8; 4096]) {
        let s = self.swap;
        let at = self.hello.swap.start;
        self.write(at + s.lengths + slot * 2, &4096u16.to_le_bytes());
        for u in slot..slot + RAW_UNITS {
            let b = (at + s.used + u / 8) as usize;
            self.mem.bytes[b] |= 1 << (u % 8);
        }
        self.write(at + s.data + slot * 128, bytes);
    }

    /// A free raw slot (32 free units), not marked yet.
    pub fn free_slot_number(&self, after: u64) -> Option<u64> {
        let s = self.swap;
        let used = |u: u64| {
            let b = self.mem.bytes[(self.hello.swap.start + s.used + u / 8) as usize];
            b >> (u % 8) & 1 == 1
        };
        (after.div_ceil(RAW_UNITS)..s.units / RAW_UNITS)
            .map(|k| k * RAW_UNITS)
            .find(|&slot| (slot..slot + RAW_UNITS).all(|u| !used(u)))
    }

    pub(super) fn set_record(&mut self, frame: u64, record: u64) {
        let at = self.hello.frame_info.start + (frame >> 12) * 8;
        self.write_u64(at, record);
    }

    /// Stores page `vpn` as `expect` has it.
    fn realize_page(&mut self, expect: &Expected, vpn: u64) {
        let virt = virt_of(vpn);
        let bytes = || {
            expect
                .expected_bytes(virt)
                .expect("the model knows its bytes")
                .into_owned()
        };
        let want = expect.state_of(vpn);
        let peer = match want {
            Some(ModelState::Shared { group, .. }) => self.group_frame(expect, vpn, group),
            _ => None,
        };
        self.store_page(virt, want, &bytes, peer);
    }

    /// Stores the page of key `virt` in state `want` with the bytes
    /// `bytes` gives (asked for only when the page holds data); `peer`:
    /// the frame another page of its shared group maps already.
    pub(super) fn store_page(
        &mut self,
        virt: u64,
        want: Option<ModelState>,
        bytes: &dyn Fn() -> [u8; 4096],
        peer: Option<u64>,
    ) {
        let old = self.leaf(virt);
        let old_frame = (old & P != 0).then_some(old & ADDR);
        if self.store_shared(virt, old, want, bytes, peer) {
            return;
        }
        let old_slot = (old & P == 0 && (old >> 1) & 7 == 2).then_some(old >> 12);
        let user = if is_user(virt) { U } else { 0 };
        let mut new_frame = None;
        let mut new_slot = None;
        let raw = match want {
            // Stored above.
            Some(ModelState::Shared { .. }) => return,
            None => 0,
            Some(ModelState::AllocOnWrite) => AOW,
            Some(ModelState::PinnedAllocOnWrite) => 4 << 1,
            Some(ModelState::NotPresentMmap { file, page }) => {
                3 << 1 | u64::from(file) << 4 | page << 12
            }
            Some(ModelState::OnSwap { slot }) => {
                if old_slot != Some(slot) {
                    self.store_slot(slot, &bytes());
                }
                new_slot = Some(slot);
                2 << 1 | slot << 12
            }
            Some(
                st @ (ModelState::PresentRam { writable, .. } | ModelState::PinnedRam { writable }),
            ) => {
                let f = old_frame.unwrap_or_else(|| self.alloc());
                new_frame = Some(f);
                self.set_record(f, 0);
                let (kind, executable) = match st {
                    ModelState::PresentRam { executable, .. } => (0b001, executable),
                    _ => (0b100, false),
                };
                f | P
                    | kind << 9
                    | if writable { W } else { 0 }
                    | user
                    | if executable { 0 } else { NX }
            }
            Some(ModelState::PresentMmap {
                file,
                page,
                private,
            }) => {
                let f = old_frame.unwrap_or_else(|| self.alloc());
                new_frame = Some(f);
                self.set_record(f, VALID | u64::from(file) << 40 | page);
                let kind = if private { 3 } else { 2 };
                f | P | kind << 9 | if private { W } else { 0 } | user | NX
            }
        };
        if let Some(f) = new_frame {
            self.write(f, &bytes()[..]);
        }
        if let Some(f) = old_frame.filter(|&f| Some(f) != new_frame) {
            self.set_record(f, 0);
            self.set_used(f >> 12, false);
        }
        if let Some(s) = old_slot.filter(|&s| Some(s) != new_slot) {
            self.free_slot(s);
        }
        if raw == 0 {
            self.clear_leaf(virt);
        } else {
            self.set_leaf(virt, raw);
        }
    }

    /// `count` free frames, marked used: an `AllocFrames` answer.
    pub fn alloc_frames(&mut self, count: u64) -> Vec<FrameRun> {
        let mut runs: Vec<FrameRun> = Vec::new();
        for _ in 0..count {
            let f = self.alloc();
            match runs.last_mut() {
                Some(r) if r.start + r.count * 4096 == f => r.count += 1,
                _ => runs.push(FrameRun { start: f, count: 1 }),
            }
        }
        runs
    }

    /// The answer a correct guest holding this image gives to `req` in
    /// the model's state (`None`: a request these images do not serve).
    /// Frames and swap slots it hands out are taken here.
    pub fn answer(&mut self, model: &Model, req: &Request) -> Option<Response> {
        match (model.predict(req), req) {
            (Prediction::Exact(r), _) => Some(r),
            (Prediction::DoneOrOutOfMemory, _) => Some(Response::Done),
            (Prediction::Touch(t), _) => t.assumed(),
            (Prediction::Frames { count, .. }, _) => {
                Some(Response::Frames(self.alloc_frames(count)))
            }
            (Prediction::Pages(states), Request::Query { addr, .. }) => Some(Response::Pages(
                states
                    .iter()
                    .enumerate()
                    .map(|(k, &(st, n))| self.page_state(model.key(addr + k as u64 * 4096), st, n))
                    .collect(),
            )),
            (Prediction::Evict { .. }, &Request::Evict { addr, pages, .. }) => {
                let first = model.key(addr) >> 12;
                Some(self.evict(&model.view(), first, first + pages))
            }
            (Prediction::Space { space, .. }, _) => Some(Response::Space {
                space,
                root: self.create_space(space),
            }),
            _ => None,
        }
    }

    fn page_state(&self, virt: u64, st: Option<ModelState>, mappings: u64) -> PageState {
        ModelState::answer(st, self.leaf(virt) & ADDR, mappings)
    }

    /// `Evict` of pages `first..end`: every page it may send out, in order,
    /// dirty ones to fresh raw slots.
    fn evict(&mut self, expect: &Expected, first: u64, end: u64) -> Response {
        let mut events = Vec::new();
        let mut slot = 0;
        'runs: for (s, e, st) in expect.runs_in(first, end) {
            for p in s..e {
                if events.len() == RECLAIM_RING {
                    break 'runs;
                }
                events.push(match st {
                    ModelState::PresentRam { writable: true, .. }
                    | ModelState::PresentMmap { private: true, .. } => {
                        let Some(s) = self.free_slot_number(slot) else {
                            break 'runs;
                        };
                        slot = s + RAW_UNITS;
                        Reclaim::Swapped {
                            addr: untag(virt_of(p)).1,
                            slot: s,
                        }
                    }
                    ModelState::PresentMmap { .. } => Reclaim::Dropped {
                        addr: untag(virt_of(p)).1,
                    },
                    _ => continue,
                });
            }
        }
        Response::Reclaimed {
            response: Box::new(evicted(&events)),
            events,
        }
    }
}
