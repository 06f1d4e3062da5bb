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
/// - [`Clock::is_barren`] answers true only while the current space has
///   no page in its user half or the kernel span that a sweep for an
///   evictable page keeps, in the request's pin or not ([`Barren`] says
///   why). A sweep would then visit no page, age none, send none and
///   leave the hand where it is: the pressure path fails at once instead.
///   The record itself may outlive that (it is then never true again): it
///   goes at `Reset`, when a space is made, and when a sweep of another
///   space sends a page out.
/// - `sent` counts the pages the sweeps sent out since boot.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    hand: u64,
    pin: Option<Span>,
    no_clean_file: Option<Option<Span>>,
    barren: Option<Barren>,
    sent: u64,
    /// Tests only: sweeps neither read nor set no-evictable marks, so a
    /// test can hold a machine with marks to one without.
    #[cfg(test)]
    pub(crate) marks_off: bool,
}

/// A sweep for an evictable page of the space whose PML4 is `root` visited
/// no page at all, when `PageTables::evictable_made` was `made` and the
/// sweeps had sent `sent` pages out.
///
/// The rule: while that space is current, it still has no such page as
/// long as `evictable_made - made == sent_now - sent`, that is, every
/// evictable entry written since was matched by a page the clock sent out
/// of this space. Why that holds:
///
/// Every level-1 entry that makes a page one such a sweep keeps counts in
/// `evictable_made` (`PageTables::set_leaf` and `Map`'s fill,
/// `PageTables::fill_unusable`, in any space), and a page becomes visible
/// to the space's sweeps in no other way, because:
/// - those two are the only writers of such entries (the others write
///   entries that are not present or not evictable, or upper-level ones);
/// - a table holds only zero entries when it is linked (zeroed, or known
///   to hold only zeros: `crate::zeroes`), so linking one shows no page;
/// - the kernel half is the same in every space (`paging::spaces`), so a
///   kernel table linked in another space is linked in this one too;
/// - a PD entry's present count is exact, and the no-evictable mark of a
///   PD or PDPT entry is set only while no kept page lies under it, so the
///   sweep's walk, which skips page tables that count none and tables
///   under a mark, skips no kept page.
///
/// So the space has none still while every such entry written since was
/// followed by the clock's sending that page out. Each page a sweep of
/// this space sends was kept by it, so some such entry made it so after
/// the record (a sweep of another space drops the record instead:
/// [`Clock::sent_out`]); and a page sent out is kept again only through
/// another such entry. The count of entries made and the count of pages
/// sent then grow by the same; otherwise the first grows more (an entry
/// in another space, a page made so and left, or one taken by something
/// other than the clock) and a sweep runs. A space made later may reuse a
/// destroyed space's PML4 frame: making a space drops the record
/// ([`Clock::space_made`]).
#[derive(Clone, Copy, Debug)]
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

    /// `Reset`: the hand back where boot left it, and no record of a
    /// barren space.
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

    /// A space was made (its PML4 may be a destroyed space's): no record of
    /// a barren space holds for it.
    pub fn space_made(&mut self) {
        self.barren = None;
    }

    /// A sweep of the space whose PML4 is `root` sent a page out. A record
    /// of another space goes: that page was not made evictable after it
    /// (see [`Barren`]).
    pub fn sent_out(&mut self, root: PhysFrame) {
        self.sent = self.sent.wrapping_add(1);
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

    /// Whether sweeps read and set no-evictable marks (always, but in a
    /// test that turns them off).
    pub fn uses_marks(&self) -> bool {
        #[cfg(test)]
        if self.marks_off {
            return false;
        }
        true
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
