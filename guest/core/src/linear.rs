//! Linear addresses (48-bit, see [`crate::validate::Span`]): which half an
//! address is in, its page, and the two managed spans.
//!
//! # Invariants
//! - A linear address is below `1 << 48`; the lower half (below `1 << 47`)
//!   is the user's, its entries carry U.

use x86_64::structures::paging::Page;
use x86_64::VirtAddr;

use crate::validate::{canonical, Span, KERNEL_REQUEST_END, KERNEL_REQUEST_START, LINEAR_MASK};

/// Whether a linear address is in the lower half (its entries carry U).
pub(crate) fn user(linear: u64) -> bool {
    linear < (1 << 47)
}

/// The page at a linear address.
pub(crate) fn page_of(linear: u64) -> Page {
    Page::containing_address(VirtAddr::new_truncate(canonical(linear)))
}

/// The user space, as a span.
pub(crate) const USER_SPAN: Span = Span {
    start: 0,
    end: 1 << 47,
};

/// The kernel request space, as a span.
pub(crate) const KERNEL_SPAN: Span = Span {
    start: KERNEL_REQUEST_START & LINEAR_MASK,
    end: KERNEL_REQUEST_END & LINEAR_MASK,
};
