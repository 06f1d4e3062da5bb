//! The clock's state: where the pressure path's clock (`reclaim`) sweeps
//! from, and what the request being answered told it. Its invariants are
//! [`Clock`]'s.

use x86_64::structures::paging::PhysFrame;

use crate::validate::Span;

/// The clock's state across requests, and the range of the request
/// being answered.
///
/// # Invariants
/// - `hand` is where the next sweep starts (a linear address of the
///   managed space), moved only by the sweep, back to 0 only at `Reset`
///   ([`Clock::rewind`]).
/// - No page in `pin` (the range of the request being answered) is sent
///   out by the clock while that request is answered.
/// - `no_clean_file` is `Some(pin)` only while no clean file page lies
///   outside `pin` in the request being answered (none can appear before
///   it ends: a request loads file pages only in its own range), so the
///   pressure path skips that sweep of the whole managed space until the
///   request ends ([`Clock::request_ended`]) or the pin changes.
/// - `barren` is `Some` only while the space whose PML4 is its `root` has
///   no page in its user half or the kernel span that a sweep for an
///   evictable page keeps, pinned or not ([`Barren`] says why that holds).
///   While it does, a sweep would visit no page, age none, send none and
///   leave the hand where it is: the pressure path fails at once instead
///   ([`Clock::is_barren`]). Cleared at `Reset`.
/// - `sent` counts the pages the sweeps sent out since boot.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    hand: u64,
    pin: Option<Span>,
    no_clean_file: Option<Option<Span>>,
    barren: Option<Barren>,
    sent: u64,
}

/// A sweep for an evictable page of the space whose PML4 is `root` visited
/// no page at all, when `PageTables::evictable_made` was `made` and the
/// sweeps had sent `sent` pages out.
///
/// Every entry that makes a page one such a sweep keeps counts in
/// `evictable_made` (`PageTables::set_leaf`), in any space. So the space
/// has none still while every such entry written since was followed by
/// the clock's sending that page out: each page a sweep of the space sends
/// was kept by it, and so made so after the record (a sweep of another
/// space drops the record: [`Clock::sent_out`]), and a page it sent is
/// kept again only through another such entry. The count of entries made and
/// the count of pages sent grow by the same then, and otherwise the first
/// grows more (an entry in another space, or a page made so and left, or
/// taken by something else than the clock): a sweep runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Barren {
    root: PhysFrame,
    made: u64,
    sent: u64,
}

impl Clock {
    /// Sets the range of the request being answered (`None`: none).
    pub fn pin(&mut self, span: Option<Span>) {
        self.pin = span;
    }

    /// The request's answer is built: what its pressure path learnt goes.
    pub fn request_ended(&mut self) {
        self.no_clean_file = None;
    }

    /// `Reset`: the hand back where boot left it.
    pub fn rewind(&mut self) {
        self.hand = 0;
        self.barren = None;
    }

    /// A sweep for an evictable page of the space whose PML4 is `root`
    /// visited no page at all, with `made` evictable entries written so
    /// far (see [`Barren`]).
    pub fn found_barren(&mut self, root: PhysFrame, made: u64) {
        self.barren = Some(Barren {
            root,
            made,
            sent: self.sent,
        });
    }

    /// A sweep of the space whose PML4 is `root` sent a page out. A record
    /// of another space goes: that page was not made evictable after it
    /// (see [`Barren`]).
    pub fn sent_out(&mut self, root: PhysFrame) {
        self.sent += 1;
        if self.barren.is_some_and(|b| b.root != root) {
            self.barren = None;
        }
    }

    /// Whether a sweep for an evictable page of the space whose PML4 is
    /// `root`, with `made` evictable entries written so far, is known to
    /// visit no page (see [`Barren`]).
    pub fn is_barren(&self, root: PhysFrame, made: u64) -> bool {
        self.barren.is_some_and(|b| {
            b.root == root && made.wrapping_sub(b.made) == self.sent.wrapping_sub(b.sent)
        })
    }

    /// Where the next sweep starts.
    pub fn hand(&self) -> u64 {
        self.hand
    }

    /// The sweep passed the page at `linear`: the hand moves past it.
    pub fn passed(&mut self, linear: u64) {
        self.hand = linear + 4096;
    }

    /// Whether the page at `linear` is in the pin.
    pub fn pinned(&self, linear: u64) -> bool {
        self.pin
            .is_some_and(|p| p.start <= linear && linear < p.end)
    }

    /// Whether a sweep for a clean file page is known to find none (every
    /// one is in the pin, which has not changed since).
    pub fn no_clean_file_outside_pin(&self) -> bool {
        self.no_clean_file == Some(self.pin)
    }

    /// A sweep for a clean file page found none outside the pin.
    pub fn found_no_clean_file(&mut self) {
        self.no_clean_file = Some(self.pin);
    }
}
