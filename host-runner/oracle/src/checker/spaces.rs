//! Address spaces in guest memory (formats.rs, "Address spaces"): every
//! live space's PML4 is a table of the managed space (claimed, so it must
//! be in use and owned once), its kernel half is space 0's, and its user
//! half is walked from it, each page and table named by a key tagged with
//! the space (`crate::model::keys`). The frames a destroyed space left
//! behind are named as that space's.

use std::sync::Arc;

use protocol::Hello;

use super::claims::{Ctx, Owners};
use super::entry::{ADDR, P, PS};
use super::memory::GuestMemory;
use super::violation::{Path, Step, Violation};
use super::walk::{chain_of, Table, Translation, Walk, Walker};
use crate::model::keys::{tag, untag};

/// How many frames a space leak report lists.
const SAMPLE: usize = 8;

/// The accessed bit of an entry.
const ACCESSED: u64 = 1 << 5;

impl Walker<'_> {
    /// Space `space`'s PML4 at `root`: kept as a level-4 table, its kernel
    /// half compared with space 0's (`kernel`), its user `slots` walked
    /// with keys tagged with the space.
    pub(super) fn space(
        &mut self,
        space: u16,
        root: u64,
        kernel: &[u64; 512],
        slots: &[u64],
        steps: &mut Vec<Step>,
    ) {
        let virt = tag(space, 0);
        let path = || Path {
            virt,
            steps: Vec::new(),
        };
        let old = self.unchanged(4, root, virt);
        let known = old.map(|o| (Arc::clone(&o.entries), o.present));
        let read = || self.read(4, root, path).map(|(e, _, p, _)| (e, p));
        let Some((entries, present)) = known.or_else(read) else {
            return;
        };
        // Bit 5 (accessed) aside: the CPU sets it in the PML4 it walks,
        // each space's on its own (formats.rs, "Address spaces").
        let differ: Vec<usize> = (256..512)
            .filter(|&i| (entries[i] ^ kernel[i]) & !ACCESSED != 0)
            .collect();
        if let Some(&index) = differ.first() {
            self.out.push(Violation::KernelHalf {
                space,
                root,
                index: index as u16,
                expected: kernel[index],
                got: entries[index],
                differing: differ.len() as u16,
            });
        }
        let (chain, depth) = chain_of(&[]);
        let pml4 = Arc::clone(&entries);
        self.tree.tables.push(Table {
            frame: root,
            level: 4,
            virt,
            chain,
            depth,
            entries,
            empty: false,
            present,
            evictable_pages: 0,
        });
        self.slots(root, &pml4, slots, virt, steps);
    }
}

impl Walk {
    /// The translations the CPU has while space `space` is current: the
    /// kernel half's and that space's user half's, with plain addresses
    /// (what `info tlb` lists with that space's root in CR3).
    pub fn of_space(&self, space: u16) -> impl Iterator<Item = Translation> + '_ {
        self.translations.iter().filter_map(move |t| {
            let (s, virt) = untag(t.virt);
            let kernel = !crate::model::keys::is_user(t.virt);
            (kernel || s == space).then(|| Translation { virt, ..t.clone() })
        })
    }
}

/// One [`Violation::SpaceLeak`] per space of `frames` ((space, frame
/// number) of destroyed spaces, leaked).
pub(super) fn space_leaks(mut frames: Vec<(u16, u64)>, out: &mut Vec<Violation>) {
    frames.sort_unstable();
    for group in frames.chunk_by(|a, b| a.0 == b.0) {
        out.push(Violation::SpaceLeak {
            space: group[0].0,
            frames: group.len() as u64,
            sample: group.iter().take(SAMPLE).map(|&(_, n)| n << 12).collect(),
        });
    }
}

/// Invariant 3 (`Owners::leaks`, or `Owners::leaks_of` the frame numbers
/// `frames`), the leaked frames of destroyed spaces named as theirs
/// ([`destroyed_frames`], looked for only when something leaked).
pub(super) fn decide_leaks(
    mem: &dyn GuestMemory,
    ctx: &Ctx,
    owners: &mut Owners,
    frames: Option<&[u64]>,
    out: &mut Vec<Violation>,
) {
    let decide =
        |owners: &mut Owners, excused: &[(u64, u16)], out: &mut Vec<Violation>| match frames {
            Some(frames) => owners.leaks_of(ctx, frames, excused, out),
            None => owners.leaks(ctx, excused, out),
        };
    let mark = out.len();
    decide(owners, &[], out);
    if out.len() > mark && ctx.expect.retired().next().is_some() {
        out.truncate(mark);
        let excused = destroyed_frames(mem, ctx, owners);
        decide(owners, &excused, out);
    }
}

/// The frames of destroyed spaces that are leaked now (marked used, owned
/// by nothing, not reserved), with their space, sorted by frame number:
/// for each remembered root of a destroyed space (`Expected::retired`)
/// that no live space or page owns, the root itself if it leaked, and
/// every table and page frame that its user half (as memory holds it
/// now) leads to and that leaked. Full and incremental checks name the
/// same frames so: both ask this of the frames they decide.
fn destroyed_frames(mem: &dyn GuestMemory, ctx: &Ctx, owners: &Owners) -> Vec<(u64, u16)> {
    let mut out = Vec::new();
    let total = ctx.bitmap.total;
    for (root, space) in ctx.expect.retired() {
        let n = root >> 12;
        if n >= total || owners.owner_of(n).is_some() {
            continue;
        }
        if owners.leaked(ctx, n) {
            out.push((n, space));
        }
        under_root(mem, ctx.hello, root, &mut |f| {
            if f < total && owners.leaked(ctx, f) {
                out.push((f, space));
            }
        });
    }
    out.sort_unstable();
    out.dedup_by_key(|e| e.0);
    out
}

/// Calls `found` with the frame number of every table and present page
/// under the user half of the PML4 at `root`, as memory holds it now
/// (what a destroyed space left), reading at most a few thousand tables.
fn under_root(mem: &dyn GuestMemory, hello: &Hello, root: u64, found: &mut dyn FnMut(u64)) {
    let mut budget = 4096;
    let mut stack = vec![(root, 4u8)];
    let mut entries = [0u64; 512];
    while let Some((table, level)) = stack.pop() {
        if budget == 0 || table >> 12 >= hello.total_frames {
            continue;
        }
        budget -= 1;
        if mem.read_words(table, &mut entries).is_err() {
            continue;
        }
        let span = if level == 4 { 256 } else { 512 };
        for &e in &entries[..span] {
            if e & P == 0 || (level < 4 && level > 1 && e & PS != 0) {
                continue;
            }
            found((e & ADDR) >> 12);
            if level > 1 {
                stack.push((e & ADDR, level - 1));
            }
        }
    }
}
