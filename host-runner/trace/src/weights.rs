//! What the generator is asked for: how many operations, for how much guest
//! RAM, and how often each kind.

use crate::format::FileSpec;
use crate::op::OpKind;

/// Relative weight of each operation kind (index: [`OpKind`] as `usize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights(pub [u32; 20]);

impl Weights {
    pub fn get(&self, k: OpKind) -> u32 {
        self.0[k as usize]
    }

    pub fn set(mut self, k: OpKind, w: u32) -> Self {
        self.0[k as usize] = w;
        self
    }

    /// Every kind equally likely (`panic` included).
    pub fn uniform() -> Self {
        Weights([1; 20])
    }
}

impl Default for Weights {
    /// Mostly memory operations; no `panic` (it would end every run).
    fn default() -> Self {
        // hello ping panic map unmap convert write read query alloc free valloc vfree stats reset
        // map_file evict kmalloc kfree heap_scavenge
        Weights([
            1, 1, 0, 20, 12, 14, 14, 10, 6, 5, 5, 3, 3, 3, 1, 8, 4, 5, 4, 2,
        ])
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// Operations of a whole trace ([`crate::generate()`]).
    pub ops: usize,
    /// Guest RAM in MiB: sizes are drawn to press on it.
    pub ram_mib: u32,
    pub weights: Weights,
    /// The files the guest boots with, which `map_file` aims at (the trace
    /// header records them, so a replay boots with the same).
    pub files: Vec<FileSpec>,
}

/// Page counts of the files a campaign boots with unless told otherwise:
/// one small file, and one that crosses a 2 MiB table (512 pages).
pub const DEFAULT_FILE_PAGES: [u64; 2] = [24, 600];

/// The files of these page counts: file `i`'s contents come from seed
/// `0xf11e_0000 + i`, so a page count list names the files completely.
pub fn files_of_pages(pages: &[u64]) -> Vec<FileSpec> {
    pages
        .iter()
        .zip(0xf11e_0000u64..)
        .map(|(&pages, seed)| FileSpec { pages, seed })
        .collect()
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            ops: 200,
            ram_mib: 128,
            weights: Weights::default(),
            files: files_of_pages(&DEFAULT_FILE_PAGES),
        }
    }
}
