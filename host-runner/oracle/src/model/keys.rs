//! How the model names a page of an address space (semantics, **Address
//! spaces**): every space has a user half of its own and all share one
//! kernel half, so a user address names a page only together with its
//! space.
//!
//! # Keys
//! The model keeps the pages of every space in one page map, one data map
//! and one frame map, each keyed by the page's *key*:
//! - a kernel-half address (at or above `0xffff_8000_0000_0000`) is its
//!   own key, whatever space is current;
//! - a user address of space 0 is its own key too, so a model in which no
//!   other space was ever made keys every page as it always did;
//! - a user address `a` of space `s ≥ 1` has the key `a | s << 48`
//!   ([`tag`]): the space number in bits 48–63, where no canonical user
//!   address has a bit set.
//!
//! Tagged keys lie above the lower half and below the upper half (they are
//! not canonical), so no key of one space is another space's or a kernel
//! page's. A key's bits 39–47 are still its PML4 slot, so the page-table
//! regions of two spaces never meet: the tables a space needs are counted
//! apart from every other space's without more bookkeeping. Page numbers
//! (`key >> 12`) carry the tag in bits 36–51.
//!
//! The checker names the pages it finds by the same keys (a leaf found
//! under space `s`'s PML4 is tagged with `s`), and every address in a
//! violation or a divergence that is a key is shown with [`SpaceAddr`].

use std::fmt;

/// The bit where a user key's space number starts.
pub const TAG_SHIFT: u32 = 48;

/// The end of the lower (user) half: user addresses are `0..LOWER_END`.
const LOWER_END: u64 = 0x0000_8000_0000_0000;

/// The first address of the upper (kernel) half.
const UPPER_START: u64 = 0xffff_8000_0000_0000;

/// The page number of the first kernel-half page: every key page number
/// below it is a user page of some space.
pub const KERNEL_FIRST_PAGE: u64 = UPPER_START >> 12;

/// The key of address `addr` in space `space`: a user address with the
/// space in bits 48–63, a kernel address (or a user address of space 0)
/// as it is. An address that is neither canonical half is returned as it
/// is (the model validates before it keys).
pub fn tag(space: u16, addr: u64) -> u64 {
    if addr < LOWER_END {
        addr | u64::from(space) << TAG_SHIFT
    } else {
        addr
    }
}

/// The space and address a key names: a user key's space and its plain
/// address, or `(0, key)` for a kernel address (the kernel half is every
/// space's; 0 is the kernel's own space).
pub fn untag(key: u64) -> (u16, u64) {
    if key >= UPPER_START {
        (0, key)
    } else {
        ((key >> TAG_SHIFT) as u16, key & ((1 << TAG_SHIFT) - 1))
    }
}

/// Whether a key (or a plain address) is a user page's: below the upper
/// half.
pub fn is_user(key: u64) -> bool {
    key < UPPER_START
}

/// Whether a plain address is in the lower (user) half.
pub fn in_lower_half(addr: u64) -> bool {
    addr < LOWER_END
}

/// The page numbers of space `space`'s whole user half, as keys:
/// `first..end`.
pub fn user_pages(space: u16) -> (u64, u64) {
    let first = tag(space, 0) >> 12;
    (first, first + (LOWER_END >> 12))
}

/// A key shown as its address, with its space when it is not 0: `0x1000`,
/// `0x1000 in space 2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceAddr(pub u64);

impl fmt::Display for SpaceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match untag(self.0) {
            (0, addr) => write!(f, "{addr:#x}"),
            (space, addr) => write!(f, "{addr:#x} in space {space}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_spaces_never_meet_and_untag_back() {
        let kernel = 0xffff_c080_0000_1000;
        assert_eq!(tag(0, 0x1000), 0x1000);
        assert_eq!(tag(3, 0x1000), 0x0003_0000_0000_1000);
        assert_eq!(tag(7, kernel), kernel);
        assert_eq!(untag(tag(3, 0x7fff_ffff_f000)), (3, 0x7fff_ffff_f000));
        assert_eq!(untag(tag(u16::MAX, 0x7fff_ffff_f000)).0, u16::MAX);
        assert_eq!(untag(kernel), (0, kernel));
        // The highest key of the highest space is below the kernel half.
        assert!(is_user(tag(u16::MAX, LOWER_END - 1)) && !is_user(kernel));
        let (a, b) = user_pages(1);
        let (c, _) = user_pages(2);
        assert!(user_pages(0).1 <= a && b <= c);
        assert_eq!(b - a, 1 << 35);
        assert_eq!(SpaceAddr(tag(2, 0x1000)).to_string(), "0x1000 in space 2");
        assert_eq!(SpaceAddr(0x1000).to_string(), "0x1000");
    }
}
