//! SanitizerCoverage: where the edge counters and the PC table are, for the
//! host to read (`protocol::formats`, "Coverage counters").
//!
//! The kernel is compiled with `-Cpasses=sancov-module`, inline 8-bit
//! counters and a PC table (`.cargo/config.toml`, which says why every
//! crate of the build is): LLVM puts a counter increment on every edge, the counters in section `__sancov_cntrs` and one `(pc,
//! flags)` pair per counter in `__sancov_pcs`. The linker script brackets
//! both with symbols; their physical addresses go into `Hello`. The kernel
//! itself never reads the counters: only the host does, from guest RAM.
//!
//! LLVM also emits, per module, a constructor for `.init_array` that hands
//! the same two ranges to [`__sanitizer_cov_8bit_counters_init`] and
//! [`__sanitizer_cov_pcs_init`] (how libFuzzer learns them at run time).
//! This kernel runs no constructors (the linker script discards
//! `.init_array`), but the constructors reference the hooks, so they must
//! exist for the link; there is nothing for them to do, since the ranges
//! are known from the linker script.

use protocol::{CoverageInfo, PhysRange};

use crate::boot;

unsafe extern "C" {
    static __cov_counters_start: u8;
    static __cov_counters_end: u8;
    static __cov_pcs_start: u8;
    static __cov_pcs_end: u8;
}

/// Physical range of the image between two linker-script symbols (virtual
/// addresses in the higher half).
fn phys_range(start: *const u8, end: *const u8) -> PhysRange {
    let (start, end) = (start as u64, end as u64);
    let base = boot::kernel_virt(0);
    PhysRange {
        start: start - base,
        end: end - base,
    }
}

/// Where the counters and the PC table are; `None` when this build has no
/// counters (not instrumented).
pub fn info() -> Option<CoverageInfo> {
    // Linker-script symbols: only their addresses mean something.
    let counters = phys_range(
        core::ptr::addr_of!(__cov_counters_start),
        core::ptr::addr_of!(__cov_counters_end),
    );
    let pcs = phys_range(
        core::ptr::addr_of!(__cov_pcs_start),
        core::ptr::addr_of!(__cov_pcs_end),
    );
    (counters.end > counters.start).then_some(CoverageInfo { counters, pcs })
}

/// Called by LLVM's module constructors with the counters' range; this
/// kernel runs no constructors (see the module docs), and the range is the
/// linker script's.
#[unsafe(no_mangle)]
pub extern "C" fn __sanitizer_cov_8bit_counters_init(_start: *mut u8, _stop: *mut u8) {}

/// Called by LLVM's module constructors with the PC table's range; as
/// [`__sanitizer_cov_8bit_counters_init`].
#[unsafe(no_mangle)]
pub extern "C" fn __sanitizer_cov_pcs_init(_start: *const u64, _stop: *const u64) {}
