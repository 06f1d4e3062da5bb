//! The clock's state: where the pressure path's clock (`reclaim`) sweeps
//! from, and what the request being answered told it. Its invariants are
//! [`Clock`]'s.

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
#[derive(Debug, Default)]
pub(crate) struct Clock {
    hand: u64,
    pin: Option<Span>,
    no_clean_file: Option<Option<Span>>,
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
