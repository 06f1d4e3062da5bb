//! Shared frames in a synthetic image (formats.rs, the `0b101` entry and
//! the frame-info table's shared record): a page the model shares maps its
//! group's frame, and the record counts the mappings, down to the last,
//! which frees the frame.

use super::realize::virt_of;
use super::{Image, ADDR, NX, P, U, W};
use crate::model::{Expected, ModelState};

/// A frame-info record's shared bit (its mapping count in bits 0–39).
const SHARED: u64 = 1 << 62;
/// The software bits 9–11 of a present shared entry.
const SHARED_KIND: u64 = 0b101 << 9;

impl Image {
    /// The frame another page of shared group `group` maps already (the
    /// source page of a `Share` before or after it is stored), if one does.
    pub(super) fn group_frame(&self, expect: &Expected, vpn: u64, group: u64) -> Option<u64> {
        expect.runs().find_map(|(s, e, st)| match st {
            ModelState::Shared { group: g, .. } if (g..g + (e - s)).contains(&group) => {
                let p = s + (group - g);
                let leaf = self.leaf(virt_of(p));
                (p != vpn && leaf & P != 0).then_some(leaf & ADDR)
            }
            _ => None,
        })
    }

    /// One more shared mapping of frame `f`: its record counts it.
    fn share_more(&mut self, f: u64) {
        let at = self.hello.frame_info.start + (f >> 12) * 8;
        let old = self.read_u64(at);
        let n = if old & SHARED != 0 {
            old & 0xff_ffff_ffff
        } else {
            0
        };
        self.write_u64(at, SHARED | (n + 1));
    }

    /// One shared mapping of frame `f` less: answers whether it was the
    /// last (the record is then cleared).
    fn share_less(&mut self, f: u64) -> bool {
        let at = self.hello.frame_info.start + (f >> 12) * 8;
        let n = self.read_u64(at) & 0xff_ffff_ffff;
        let left = n.saturating_sub(1);
        self.write_u64(at, if left == 0 { 0 } else { SHARED | left });
        left == 0
    }

    /// Stores the page of key `virt`, whose entry is `old`, when it is or
    /// was shared (answers whether it did): in state `want` with the bytes
    /// `bytes` gives; `peer`: the frame another page of its group maps.
    pub(super) fn store_shared(
        &mut self,
        virt: u64,
        old: u64,
        want: Option<ModelState>,
        bytes: &dyn Fn() -> [u8; 4096],
        peer: Option<u64>,
    ) -> bool {
        let old_frame = (old & P != 0).then_some(old & ADDR);
        let was_shared = old & P != 0 && old & (7 << 9) == SHARED_KIND;
        if let Some(ModelState::Shared { writable, .. }) = want {
            let f = match old_frame {
                Some(f) if was_shared => f,
                _ => {
                    let f = peer.or(old_frame).unwrap_or_else(|| self.alloc());
                    // The source page keeps its frame (a RAM page's has
                    // no record; a mapping stored before may have counted
                    // it already); any other frame is freed.
                    if let Some(o) = old_frame.filter(|&o| o != f) {
                        self.set_record(o, 0);
                        self.set_used(o >> 12, false);
                    }
                    self.share_more(f);
                    f
                }
            };
            self.write(f, &bytes()[..]);
            let w = if writable { W } else { 0 };
            self.set_leaf(virt, f | P | SHARED_KIND | w | U | NX);
            return true;
        }
        if let (Some(f), true) = (old_frame, was_shared) {
            // This mapping goes; the frame with the last one.
            if self.share_less(f) {
                self.set_used(f >> 12, false);
            }
            if want.is_none() {
                self.clear_leaf(virt);
            }
            // A shared page only ever becomes unusable.
            return true;
        }
        false
    }
}
