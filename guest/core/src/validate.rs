//! Request input checks, in the order of `protocol::semantics` (steps 1–7;
//! the state and memory steps 8–9 belong to each operation).
//!
//! Validated ranges are [`Span`]s in *linear* form: the 48 address bits, so
//! that a range of either canonical half is a plain interval
//! `start..end` with `end <= 2^48`.

use protocol::Privilege;

use crate::layout::{KERNEL_SPACE_END, USER_END};

/// Start of the kernel space requests may name (the heap region below it is
/// reserved to the heap).
pub const KERNEL_REQUEST_START: u64 = crate::layout::HEAP_END;
/// End (exclusive) of the kernel space requests may name.
pub const KERNEL_REQUEST_END: u64 = KERNEL_SPACE_END;

/// The 48 address bits.
pub const LINEAR_MASK: u64 = (1 << 48) - 1;

/// Why a request's input is refused: a check of steps 1–7 of
/// `protocol::semantics` (or a count check of a kernel-only request), made
/// before any state is read. Each is the protocol error of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// A count of zero.
    ZeroCount,
    /// A count or length over the request's limit.
    TooLarge,
    /// An address or alignment that is not what the request needs.
    Misaligned,
    /// A non-canonical address.
    NonCanonical,
    /// The range's end overflows.
    Overflow,
    /// The range crosses from the lower half into the hole.
    CrossesCanonicalHole,
    /// A user request names the upper half.
    PermissionDenied,
    /// The range leaves the kernel space requests may name.
    Reserved,
}

/// A validated range, linear (48-bit) addresses `start..end`, `end <= 2^48`,
/// never crossing the canonical hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First linear address.
    pub start: u64,
    /// End (exclusive) linear address.
    pub end: u64,
}

impl Span {
    /// A span from a canonical start address and a length (no checks).
    pub(crate) fn from_canonical(addr: u64, len: u64) -> Span {
        let start = addr & LINEAR_MASK;
        Span {
            start,
            end: start.saturating_add(len),
        }
    }

    /// The canonical address of the span's start.
    pub fn canonical_start(&self) -> u64 {
        canonical(self.start)
    }

    /// Pages in the span (rounded up).
    pub fn pages(&self) -> u64 {
        (self.end - self.start).div_ceil(4096)
    }
}

/// The canonical (sign-extended) form of a linear address.
pub fn canonical(linear: u64) -> u64 {
    let linear = linear & LINEAR_MASK;
    if linear & (1 << 47) != 0 {
        linear | !LINEAR_MASK
    } else {
        linear
    }
}

/// Whether `addr` is canonical.
pub fn is_canonical(addr: u64) -> bool {
    canonical(addr) == addr
}

/// Whether a canonical address lies in the lower half.
pub fn is_lower(addr: u64) -> bool {
    addr < USER_END
}

/// Steps 3–7 over the bytes `addr..addr + len` (`len > 0`).
pub fn check_bytes(addr: u64, len: u64, privilege: Privilege) -> Result<Span, Invalid> {
    if !is_canonical(addr) {
        return Err(Invalid::NonCanonical);
    }
    let end = addr.checked_add(len).ok_or(Invalid::Overflow)?;
    if is_lower(addr) {
        if end > USER_END {
            return Err(Invalid::CrossesCanonicalHole);
        }
    } else {
        if privilege == Privilege::User {
            return Err(Invalid::PermissionDenied);
        }
        if addr < KERNEL_REQUEST_START || end > KERNEL_REQUEST_END {
            return Err(Invalid::Reserved);
        }
    }
    Ok(Span::from_canonical(addr, len))
}

/// Steps 1–4 of a page range: count, alignment, canonical start, overflow.
/// Answers the byte length.
pub fn check_pages_basic(addr: u64, pages: u64, limit: Option<u64>) -> Result<u64, Invalid> {
    if pages == 0 {
        return Err(Invalid::ZeroCount);
    }
    if limit.is_some_and(|l| pages > l) {
        return Err(Invalid::TooLarge);
    }
    if addr % 4096 != 0 {
        return Err(Invalid::Misaligned);
    }
    if !is_canonical(addr) {
        return Err(Invalid::NonCanonical);
    }
    let len = pages.checked_mul(4096).ok_or(Invalid::Overflow)?;
    addr.checked_add(len).ok_or(Invalid::Overflow)?;
    Ok(len)
}

/// Steps 1–7 of a page range (`Map`, `Unmap`, `Convert`, `Query`).
pub fn check_pages(
    addr: u64,
    pages: u64,
    limit: Option<u64>,
    privilege: Privilege,
) -> Result<Span, Invalid> {
    let len = check_pages_basic(addr, pages, limit)?;
    check_bytes(addr, len, privilege)
}

/// Steps 1–5 of a page range with no count limit (`Share`'s ranges, one
/// after the other): the byte length. Unlike [`check_pages`] it stops
/// before the privilege and reserved-space steps, which `Share` replaces
/// with its own (both ranges in the user half).
pub fn check_pages_to_hole(addr: u64, pages: u64) -> Result<u64, Invalid> {
    let len = check_pages_basic(addr, pages, None)?;
    if is_lower(addr) && addr + len > USER_END {
        return Err(Invalid::CrossesCanonicalHole);
    }
    Ok(len)
}

/// The checks of `Write`/`Read` before touching: `TooLarge`, then (for a
/// non-zero length) steps 3–7. `Ok(None)` for a zero length.
pub fn check_touch(addr: u64, len: u64, privilege: Privilege) -> Result<Option<Span>, Invalid> {
    if len > protocol::MAX_TOUCH_LEN {
        return Err(Invalid::TooLarge);
    }
    if len == 0 {
        return Ok(None);
    }
    check_bytes(addr, len, privilege).map(Some)
}
