//! Integer conversions between the VMM's `u64` (addresses, frame and page
//! numbers, counts: the protocol's width) and `usize` (indices and lengths
//! in memory).
//!
//! The core and the kernel run only where `usize` is 64 bits (x86_64, and
//! the 64-bit hosts of the tests): asserted below at compile time, so a
//! `u64` never truncates to `usize`. `clippy::cast_possible_truncation`
//! cannot know that and flags every `as usize` of a `u64`; the one cast is
//! here, and every other narrowing cast of the crate is checked or
//! reduced to the target's width where it is made.

const _: () = assert!(usize::BITS == u64::BITS, "vmm-core needs 64-bit usize");

/// `n` as a `usize` (lossless: `usize` is 64 bits).
#[inline(always)]
#[allow(clippy::cast_possible_truncation)] // usize is 64 bits (asserted above)
pub const fn usize_of(n: u64) -> usize {
    n as usize
}
