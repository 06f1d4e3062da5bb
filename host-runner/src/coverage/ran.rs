//! What the guest ran, from QEMU's exact block counts: each block's count
//! times its cost ([`BlockCost`]), by function and line
//! ([`GuestReport`](super::report::GuestReport)), and the report's table
//! of the busiest, by memory accesses.
//!
//! Accesses first because under TCG each guest load or store is a lookup
//! in QEMU's software TLB, far dearer than an arithmetic instruction:
//! measured, a data pattern three times cheaper to compute (a third of the
//! guest's instructions went to the old one's arithmetic) made a 16 MiB
//! `Write` 13 % faster and a campaign no faster.

use std::fmt::Write as _;
use std::ops::AddAssign;

use serde::Serialize;

use super::blocks::BlockCost;
use super::report::{percent as share, FunctionCoverage, GuestReport, LineCoverage};

/// Instructions run and the memory accesses they made.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ran {
    pub instructions: u64,
    /// As [`BlockCost::accesses`] counts them.
    pub accesses: u64,
}

impl Ran {
    /// `hits` runs of a block of cost `c`.
    pub(super) fn of(hits: u64, c: BlockCost) -> Ran {
        Ran {
            instructions: hits.saturating_mul(u64::from(c.instructions)),
            accesses: hits.saturating_mul(u64::from(c.accesses)),
        }
    }
}

impl AddAssign for Ran {
    fn add_assign(&mut self, r: Ran) {
        self.instructions = self.instructions.saturating_add(r.instructions);
        self.accesses = self.accesses.saturating_add(r.accesses);
    }
}

/// The busiest functions shown.
const TOP_FUNCTIONS: usize = 30;
/// The busiest lines shown.
const TOP_LINES: usize = 20;

/// The table of what the guest ran, when `g.ran` is known (nothing
/// else): the totals, then the busiest functions and lines by accesses,
/// each with its share of the accesses, the running share, and its
/// instructions and their share. Code outside `guest/` (`memset`, `memcpy`, dependencies) is
/// shown too: it is the guest's time as much as the VMM's own.
pub(super) fn render(out: &mut String, g: &GuestReport) {
    let Some(total) = g.ran else {
        return;
    };
    let _ = writeln!(
        out,
        "\nguest code run (QEMU's block counts times the blocks' contents): {} memory \
         accesses in {} instructions; the transport's waits, which follow the host's \
         timing, ran {} more in {} and are left out",
        total.accesses, total.instructions, g.waits.accesses, g.waits.instructions
    );
    let _ = writeln!(
        out,
        "  busiest by memory accesses (under TCG each is a software TLB lookup, far dearer \
         than an arithmetic instruction); a block counts where its first instruction is: \
         in the innermost function of the guest's own code there (an inlined guest \
         function apart from its caller; core, alloc and protocol code inlined into \
         guest code counts as its caller's)"
    );
    let header = |out: &mut String, what: &str| {
        let _ = writeln!(
            out,
            "  {:>6} {:>6} {:>14} {:>6} {:>14}  {what}",
            "acc %", "cumul", "accesses", "insn %", "instructions"
        );
    };
    let row = |out: &mut String, r: Ran, cumul: u64, what: String| {
        let _ = writeln!(
            out,
            "  {:>6.1} {:>6.1} {:>14} {:>6.1} {:>14}  {what}",
            share(r.accesses, total.accesses),
            share(cumul, total.accesses),
            r.accesses,
            share(r.instructions, total.instructions),
            r.instructions,
        );
    };
    header(out, "function (file:line)");
    let mut functions: Vec<&FunctionCoverage> = g
        .functions
        .iter()
        .filter(|f| f.ran.instructions > 0)
        .collect();
    functions.sort_by_key(|f| std::cmp::Reverse((f.ran.accesses, f.ran.instructions)));
    let mut cumul = 0;
    for f in functions.iter().take(TOP_FUNCTIONS) {
        cumul += f.ran.accesses;
        row(
            out,
            f.ran,
            cumul,
            format!("{} ({}:{})", f.function, f.file, f.line),
        );
    }
    // Line 0 is no line: the code of a file without line numbers (assembly,
    // `memset`) or the compiler's own, which the functions above place.
    header(out, "line (of a known number)");
    let mut lines: Vec<&LineCoverage> = g
        .lines
        .iter()
        .filter(|l| l.line > 0 && l.ran.instructions > 0)
        .collect();
    lines.sort_by_key(|l| std::cmp::Reverse((l.ran.accesses, l.ran.instructions)));
    let mut cumul = 0;
    for l in lines.iter().take(TOP_LINES) {
        cumul += l.ran.accesses;
        row(out, l.ran, cumul, format!("{}:{}", l.file, l.line));
    }
}
