//! A smaller guest: the trace header's `ram_mib` is something the
//! minimizer shrinks too. A failure that drains the allocator needs fewer
//! and smaller draining operations on a smaller guest, and every later run
//! is quicker there (boot, reset and the memory check grow with RAM).

use super::Search;
use crate::executor::Executor;
use crate::limits;

/// Longest trace [`Search::shrink_ram`] tries on a smaller guest: a long
/// trace made for a larger one runs there under constant memory pressure
/// (reclaim, swap), each run slower and seldom failing the same way
/// (measured: the bench's 10,000-operation leak trace stayed at 3,071
/// operations in 120 s with the pass first, against 3 without it).
const SMALL_GUEST_MAX_OPS: usize = 256;

impl<E: Executor> Search<'_, E> {
    /// Gives the guest less RAM (a trace of at most
    /// [`SMALL_GUEST_MAX_OPS`] operations): the smallest guest first, then
    /// doubling up to the trace's own. A failure that needs the allocator drained
    /// needs fewer and smaller draining operations on a smaller guest, and
    /// every later run of a smaller guest is quicker (boot, reset and the
    /// memory check grow with RAM). Only a trace that names its RAM size;
    /// sizes its files do not fit are skipped.
    pub(super) async fn shrink_ram(&mut self) -> Option<bool> {
        let Some(mib) = self.best.header.ram_mib else {
            return Some(false);
        };
        if self.best.len() > SMALL_GUEST_MAX_OPS {
            return Some(false);
        }
        let mut smaller = limits::MIN_RAM_MIB;
        while smaller < mib {
            if self.try_ram(mib, smaller).await? {
                return Some(true);
            }
            smaller = smaller.saturating_mul(2);
        }
        Some(false)
    }

    /// Tries the trace on a guest of `smaller` MiB instead of its `mib`,
    /// unless its files do not fit there.
    async fn try_ram(&mut self, mib: u32, smaller: u32) -> Option<bool> {
        if limits::check_ram_with_files(smaller, &self.best.header.files).is_err() {
            return Some(false);
        }
        let mut candidate = self.best.clone();
        candidate.header.ram_mib = Some(smaller);
        let what = || format!("guest RAM: {mib} MiB → {smaller} MiB");
        self.try_candidate(candidate, what).await
    }

    /// One try, on a trace of any length: the guest with an eighth of its
    /// RAM (at least the smallest guest). A failure that drains the
    /// allocator runs there in a fraction of the time (measured: a
    /// 3,697-operation trace of `inject-zero-need-oom`, 20 s per run at
    /// 128 MiB, 0.75 s at 16 MiB), and one run is all it costs when it
    /// does not fail the same way; the whole ladder waits for a short
    /// trace ([`Search::shrink_ram`]).
    pub(super) async fn eighth_of_the_ram(&mut self) -> Option<bool> {
        let Some(mib) = self.best.header.ram_mib else {
            return Some(false);
        };
        let smaller = (mib / 8).max(limits::MIN_RAM_MIB);
        if smaller >= mib {
            return Some(false);
        }
        self.try_ram(mib, smaller).await
    }
}
