//! The memory checker: reads guest memory through [`GuestMemory`], walks the
//! page tables and the frame bitmap itself, and reports every broken
//! invariant against the model's [`Expectations`].

mod address;
mod bitmap;
mod claims;
mod copies;
mod data;
mod data_thread;
mod decode;
mod diff;
mod entry;
mod file_images;
mod incremental;
mod leaf;
mod leaks;
mod memory;
mod mmap;
mod sharing;
mod slots;
mod spaces;
mod stateful;
pub(crate) mod swap;
mod tree;
mod violation;
mod violation_shared;
mod walk;

#[cfg(test)]
mod image;
#[cfg(test)]
mod tests;

use protocol::Hello;

use crate::model::Expectations;

pub use address::{address_path, AddressPath, PathEntry};
pub use data_thread::DATA_THREAD_PAGES;
pub use decode::{
    decode_walk, decode_walk_from, region_leaves, region_leaves_from, walk_levels,
    walk_levels_from, WalkLevel,
};
pub use entry::{decode_leaf, Leaf, PresentKind};
pub use memory::{nonzero_words, GuestMemory, ImageMemory, MemoryError};
pub use stateful::Checker;
pub use tree::TableRef;
pub use violation::{MarkedEntry, Path, Step, Violation};
pub use walk::{read_space_tables, read_tables, TableEntries, Translation, Walk};

/// The checker's findings: every violation, and the walk (its translations
/// are what `info tlb` / `gva2gpa` are compared with; a full check's only).
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub violations: Vec<Violation>,
    pub walk: Walk,
    pub scope: Scope,
}

/// What a check covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything; the walk lists every table and translation.
    Full,
    /// What changed since the last check ([`Checker::incremental`]): pages
    /// and frames verified again, tables read and compared. The walk is
    /// empty.
    Incremental {
        pages: u64,
        frames: u64,
        tables: usize,
    },
}

impl CheckReport {
    /// Whether no invariant is broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// One violation per line; "memory check passed" when there is none.
impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (
            true,
            Scope::Incremental {
                pages,
                frames,
                tables,
            },
        ) = (self.violations.is_empty(), self.scope)
        {
            return write!(
                f,
                "incremental memory check passed: {pages} pages and {frames} frames verified again, {tables} tables compared"
            );
        }
        if self.violations.is_empty() {
            return write!(
                f,
                "memory check passed: {} translations, {} tables",
                self.walk.translations.len(),
                self.walk.tables.len()
            );
        }
        for (i, v) in self.violations.iter().enumerate() {
            let sep = if i == 0 { "" } else { "\n" };
            write!(f, "{sep}{v}")?;
        }
        Ok(())
    }
}

/// Whether `start..start + len` overlaps the heap region (empty when its
/// start equals its end).
fn heap_overlaps(hello: &Hello, start: u64, len: u64) -> bool {
    let heap = hello.heap;
    let heap_end = if heap.end == 0 {
        u128::MAX
    } else {
        u128::from(heap.end)
    };
    heap.start != heap.end
        && u128::from(start) < heap_end
        && u128::from(heap.start) < u128::from(start) + u128::from(len)
}

/// Checks invariants 1–6 of guest memory against the model's expectations
/// (a full check by a checker that keeps no record: see [`Checker`]).
pub fn check(mem: &dyn GuestMemory, hello: &Hello, expect: &Expectations) -> CheckReport {
    Checker::new().full(mem, hello, &expect.view(), None)
}
