//! The memory checker: reads guest memory through [`GuestMemory`], walks the
//! page tables and the frame bitmap itself, and reports every broken
//! invariant against the model's [`Expectations`].

mod bitmap;
mod decode;
mod entry;
mod memory;
mod mmap;
mod state;
mod swap;
mod violation;
mod walk;

#[cfg(test)]
mod image;
#[cfg(test)]
mod tests;

use protocol::Hello;

use crate::model::Expectations;

pub use decode::decode_walk;
pub use entry::{Leaf, PresentKind};
pub use memory::{GuestMemory, ImageMemory, MemoryError};
pub use violation::{Path, Step, Violation};
pub use walk::{TableRef, Translation, Walk};

/// The checker's findings: every violation, and the walk (its translations
/// are what `info tlb` / `gva2gpa` are compared with).
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub violations: Vec<Violation>,
    pub walk: Walk,
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

/// Checks invariants 1–6 of guest memory against the model's expectations.
pub fn check(mem: &dyn GuestMemory, hello: &Hello, expect: &Expectations) -> CheckReport {
    let mut violations = Vec::new();
    let mut states = state::StateCheck::new(hello, expect);
    let walk = {
        let mut visit = |base: u64, steps: &[Step], table: u64, entries: &[u64; 512]| {
            states.table(base, steps, table, entries);
        };
        walk::walk(mem, hello, &mut violations, &mut visit)
    };
    violations.extend(states.finish());
    if let Some(bitmap) = bitmap::Bitmap::read(mem, hello, &mut violations) {
        let mut owners = bitmap::Owners::new(hello, expect, &bitmap);
        for t in &walk.tables {
            let owner = bitmap::Owner::Table {
                level: t.level,
                virt: t.path.virt,
            };
            let span = 1u64 << (12 + 9 * u32::from(t.level));
            let boot_ok = heap_overlaps(hello, t.path.virt, span);
            let (f, p) = (t.frame, || t.path.clone());
            owners.claim(f, "page-table", (owner, boot_ok), p, &mut violations);
        }
        for t in &walk.translations {
            let owner = bitmap::Owner::Page { virt: t.virt };
            let boot_ok = heap_overlaps(hello, t.virt, 4096);
            owners.claim(
                t.frame,
                "data page",
                (owner, boot_ok),
                || t.path(),
                &mut violations,
            );
        }
        owners.leaks(&mut violations);
    }
    state::check_data(mem, hello, expect, &walk, &mut violations);
    mmap::check_frame_info(mem, hello, expect, &walk, &mut violations);
    mmap::check_images(mem, hello, expect, &mut violations);
    mmap::check_reservations(hello, &mut violations);
    swap::check_swap(mem, hello, expect, &mut violations);
    CheckReport { violations, walk }
}
