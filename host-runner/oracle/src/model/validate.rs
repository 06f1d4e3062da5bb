//! Input validation of semantics.rs, steps 1–7, in its order.

use protocol::{Error, Hello, Privilege, VirtRange, MAX_TOUCH_LEN, PAGE_SIZE};

/// The first address of the upper canonical half's complement: the lower
/// half is `0..LOWER_END`.
pub const LOWER_END: u64 = 0x0000_8000_0000_0000;

/// Whether `addr` is canonical (bits 63..47 all equal).
pub fn canonical(addr: u64) -> bool {
    let top = addr >> 47;
    top == 0 || top == (1 << 17) - 1
}

/// The exclusive end of a range as u128 (`end == 0` is the top).
fn end_of(r: VirtRange) -> u128 {
    if r.end == 0 {
        1 << 64
    } else {
        u128::from(r.end)
    }
}

/// Whether `start..end` lies wholly inside `r`.
fn inside(r: VirtRange, start: u64, end: u64) -> bool {
    r.start <= start && u128::from(end) <= end_of(r)
}

/// Whether `start..end` overlaps `r` (a range with `start == end` is empty).
fn overlaps(r: VirtRange, start: u64, end: u64) -> bool {
    r.start != r.end && u128::from(start) < end_of(r) && r.start < end
}

/// The managed space of a layout: user space and kernel space less the heap.
#[derive(Clone, Debug)]
pub struct Managed {
    user: VirtRange,
    kernel: VirtRange,
    heap: VirtRange,
}

impl Managed {
    pub fn new(hello: &Hello) -> Self {
        Managed {
            user: hello.user_space,
            kernel: hello.kernel_space,
            heap: hello.heap,
        }
    }

    /// Whether every byte of `start..end` (non-empty) is managed.
    pub fn managed(&self, start: u64, end: u64) -> bool {
        inside(self.user, start, end)
            || (inside(self.kernel, start, end) && !overlaps(self.heap, start, end))
    }

    /// Steps 5–7 over the byte range `start..end` (its end fits in 64 bits).
    pub fn check_span(&self, start: u64, end: u64, privilege: Privilege) -> Result<(), Error> {
        if start < LOWER_END && end > LOWER_END {
            return Err(Error::CrossesCanonicalHole);
        }
        if privilege == Privilege::User && end > LOWER_END {
            return Err(Error::PermissionDenied);
        }
        if !self.managed(start, end) {
            return Err(Error::Reserved);
        }
        Ok(())
    }

    /// Steps 1–7 of a page range; answers its page numbers `first..end`.
    pub fn check_pages(
        &self,
        addr: u64,
        pages: u64,
        limit: u64,
        privilege: Privilege,
    ) -> Result<(u64, u64), Error> {
        let end = page_range(addr, pages, limit)?;
        self.check_span(addr, end, privilege)?;
        Ok((addr >> 12, (addr >> 12) + pages))
    }

    /// `Write`/`Read` validation; `Ok(None)` for the empty touch.
    pub fn check_touch(
        &self,
        addr: u64,
        len: u64,
        privilege: Privilege,
    ) -> Result<Option<u64>, Error> {
        if len > MAX_TOUCH_LEN {
            return Err(Error::TooLarge);
        }
        if len == 0 {
            return Ok(None);
        }
        if !canonical(addr) {
            return Err(Error::NonCanonical);
        }
        let end = addr.checked_add(len).ok_or(Error::Overflow)?;
        self.check_span(addr, end, privilege)?;
        Ok(Some(end))
    }
}

/// The first steps of a page or frame range: `count` in `1..=limit`,
/// `addr` page aligned.
pub fn count_and_alignment(addr: u64, count: u64, limit: u64) -> Result<(), Error> {
    if count == 0 {
        return Err(Error::ZeroCount);
    }
    if count > limit {
        return Err(Error::TooLarge);
    }
    if addr % PAGE_SIZE != 0 {
        return Err(Error::Misaligned);
    }
    Ok(())
}

/// Steps 1–4 of a page range; answers the end address.
pub fn page_range(addr: u64, pages: u64, limit: u64) -> Result<u64, Error> {
    count_and_alignment(addr, pages, limit)?;
    if !canonical(addr) {
        return Err(Error::NonCanonical);
    }
    pages
        .checked_mul(PAGE_SIZE)
        .and_then(|len| addr.checked_add(len))
        .ok_or(Error::Overflow)
}
