//! Invariant 3: the frames marked used are exactly the owned and the
//! reserved ones (boot reservations, the host's frames). A frame used but
//! owned by nothing is leaked, and named as a destroyed space's when it
//! was one's ([`super::spaces`]); a reserved frame marked free is lost.

use super::bitmap::{boot_covers, boot_words, frame_mask};
use super::claims::{Ctx, Owners};
use super::spaces::space_leaks;
use super::violation::Violation;

/// How many frames a leak report lists.
const SAMPLE: usize = 8;

impl Owners {
    /// Invariant 3 for frame numbers `frames`, as [`Owners::leaks`]
    /// decides it for all.
    pub fn leaks_of(
        &self,
        ctx: &Ctx,
        frames: &[u64],
        excused: &[(u64, u16)],
        out: &mut Vec<Violation>,
    ) {
        let (mut leaked, mut lost, mut of_spaces) = (Vec::new(), Vec::new(), Vec::new());
        for &n in frames.iter().filter(|&&n| n < ctx.bitmap.total) {
            let used = ctx.bitmap.used(n);
            if used && self.owner[n as usize] == 0 && !self.is_reserved(ctx, n) {
                match destroyed_space(excused, n) {
                    Some(space) => of_spaces.push((space, n)),
                    None => leaked.push(n << 12),
                }
            } else if !used && self.is_reserved(ctx, n) {
                lost.push(n << 12);
            }
        }
        leak(leaked.len() as u64, leaked, lost.len() as u64, lost, out);
        space_leaks(of_spaces, out);
    }

    /// Whether frame number `n` is reserved: at boot or by the host.
    fn is_reserved(&self, ctx: &Ctx, n: u64) -> bool {
        boot_covers(ctx.hello, n) || ctx.expect.host_holds(n << 12)
    }

    /// Whether frame number `n` is marked used, owned by nothing and not
    /// reserved: leaked.
    pub fn leaked(&self, ctx: &Ctx, n: u64) -> bool {
        ctx.bitmap.used(n) && self.owner_of(n).is_none() && !self.is_reserved(ctx, n)
    }

    /// Invariant 3 over all frames: the used frames are exactly the owned
    /// and reserved ones, word by word; the leaked frames of `excused`
    /// (frame number, space: sorted by frame) are named as their
    /// destroyed space's.
    pub fn leaks(&mut self, ctx: &Ctx, excused: &[(u64, u16)], out: &mut Vec<Violation>) {
        let total = ctx.bitmap.total;
        let mut reserved = std::mem::take(&mut self.reserved);
        boot_words(ctx.hello, &mut reserved);
        for f in ctx.expect.host_frames().filter(|&f| f < total) {
            reserved[(f / 64) as usize] |= 1 << (f % 64);
        }
        let (mut leaked, mut lost, mut of_spaces) = (Vec::new(), Vec::new(), Vec::new());
        let (mut n_leaked, mut n_lost) = (0, 0);
        // Runs of 8 whole words (every bit a frame) with nothing leaked or
        // lost, in one test; the words of the others one by one below.
        let whole = (total / 64) as usize;
        let used = &ctx.bitmap.words;
        let mut bad_runs = Vec::new();
        for k in 0..whole / 8 {
            let at = k * 8;
            let bad = (at..at + 8).fold(0, |a, w| {
                let (u, r) = (used[w], reserved[w]);
                a | (u & !self.owned[w] & !r) | (!u & r)
            });
            if bad != 0 {
                bad_runs.push(at);
            }
        }
        let rest = whole / 8 * 8..reserved.len();
        let words = bad_runs.into_iter().flat_map(|at| at..at + 8).chain(rest);
        for w in words {
            let r = reserved[w];
            let mask = frame_mask(w, total);
            let used = ctx.bitmap.words[w] & mask;
            let mut bad_used = used & !self.owned[w] & !r;
            let bad_free = !used & r & mask;
            if bad_used | bad_free == 0 {
                continue;
            }
            let mut b = if excused.is_empty() { 0 } else { bad_used };
            while b != 0 {
                let bit = b & b.wrapping_neg();
                let n = w as u64 * 64 + u64::from(bit.trailing_zeros());
                if let Some(space) = destroyed_space(excused, n) {
                    of_spaces.push((space, n));
                    bad_used &= !bit;
                }
                b &= b - 1;
            }
            n_leaked += u64::from(bad_used.count_ones());
            n_lost += u64::from(bad_free.count_ones());
            for (bits, list) in [(bad_used, &mut leaked), (bad_free, &mut lost)] {
                let mut b = bits;
                while b != 0 && list.len() < SAMPLE {
                    list.push((w as u64 * 64 + u64::from(b.trailing_zeros())) << 12);
                    b &= b - 1;
                }
            }
        }
        self.reserved = reserved;
        leak(n_leaked, leaked, n_lost, lost, out);
        space_leaks(of_spaces, out);
    }
}

/// The destroyed space frame number `n` belongs to, if `excused` names it.
fn destroyed_space(excused: &[(u64, u16)], n: u64) -> Option<u16> {
    let i = excused.binary_search_by_key(&n, |e| e.0).ok()?;
    Some(excused[i].1)
}

/// The leak violation, if any frame is leaked or lost.
fn leak(leaked: u64, mut ls: Vec<u64>, lost: u64, mut lo: Vec<u64>, out: &mut Vec<Violation>) {
    if leaked == 0 && lost == 0 {
        return;
    }
    ls.truncate(SAMPLE);
    lo.truncate(SAMPLE);
    out.push(Violation::Leak {
        leaked,
        leaked_sample: ls,
        lost,
        lost_sample: lo,
    });
}
