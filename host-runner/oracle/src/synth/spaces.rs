//! Address spaces of a synthetic image (formats.rs, "Address spaces"):
//! each space other than 0 has a PML4 of its own whose kernel half is
//! space 0's, kept so as the kernel half's PDPTs come and go. The image's
//! functions take keys (`crate::model::keys`): a user address tagged with
//! a space is that space's page.

use std::collections::BTreeMap;

use super::Image;
use crate::model::keys::{is_user, untag, user_pages};
use crate::model::Expected;

impl Image {
    /// The live spaces other than 0 and their roots.
    pub fn space_roots(&self) -> &BTreeMap<u16, u64> {
        &self.roots
    }

    /// The root of the space of key `virt` (space 0's for the kernel
    /// half), if that space lives.
    pub fn root_of(&self, virt: u64) -> Option<u64> {
        match untag(virt) {
            (0, _) => Some(self.hello.page_table_root),
            (s, _) => self.roots.get(&s).copied(),
        }
    }

    /// Makes space `space` with its PML4 at `root` (a free frame, now
    /// used): an empty user half, the kernel half copied from space 0's.
    pub fn add_space(&mut self, space: u16, root: u64) {
        self.set_used(root >> 12, true);
        self.write(root, &[0; 4096]);
        let kernel = self.hello.page_table_root;
        for i in 256..512 {
            let e = self.read_u64(kernel + i * 8);
            self.write_u64(root + i * 8, e);
        }
        self.roots.insert(space, root);
    }

    /// Makes a new space `space` on a frame of its own (destroying the
    /// image's space of that number first, if it has one); answers its
    /// root.
    pub fn create_space(&mut self, space: u16) -> u64 {
        self.drop_space(space);
        let root = self.alloc();
        self.add_space(space, root);
        root
    }

    /// Destroys space `space`: every page of its user half unusable (its
    /// frames, slots and tables freed), then its PML4 freed.
    pub fn drop_space(&mut self, space: u16) {
        let Some(&root) = self.roots.get(&space) else {
            return;
        };
        let (first, end) = user_pages(space);
        let mut vpns = Vec::new();
        self.existing_leaves(first, end, &mut vpns);
        for vpn in vpns {
            self.store_page(vpn << 12, None, &|| [0; 4096], None);
        }
        self.roots.remove(&space);
        self.set_used(root >> 12, false);
    }

    /// Writes kernel PML4 entry `at` (an address in space 0's PML4) into
    /// every other space's PML4 too.
    pub(super) fn share_kernel_entry(&mut self, at: u64, virt: u64) {
        let root = self.hello.page_table_root;
        if is_user(virt) || at & !0xfff != root {
            return;
        }
        let e = self.read_u64(at);
        let roots: Vec<u64> = self.roots.values().copied().collect();
        for r in roots {
            self.write_u64(r + (at - root), e);
        }
    }

    /// Brings the image's spaces in line with `expect`'s: the spaces it
    /// has and `expect` has not (or at another root) destroyed, those
    /// `expect` has and it has not made at their roots.
    pub(super) fn realize_spaces(&mut self, expect: &Expected) {
        let live = expect.space_roots();
        let dead: Vec<u16> = self
            .roots
            .iter()
            .filter(|(s, r)| live.get(s) != Some(r))
            .map(|(&s, _)| s)
            .collect();
        for s in dead {
            self.drop_space(s);
        }
        for (&s, &root) in live {
            if !self.roots.contains_key(&s) {
                self.add_space(s, root);
            }
        }
    }
}
