//! Mutations of a kept sequence (a corpus entry) into a new one, AFL and
//! syzkaller style: splice two, insert fresh operations, delete a chunk,
//! repeat a subsequence, change one operation's arguments. Pure functions
//! of a random stream: the runner decides what to keep.

use protocol::PAGE_SIZE;
use rand::Rng;

use crate::op::Op;
use crate::shrink::{addr_mut, count_mut};

/// The ways a sequence is changed, named in the trace's note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// `a`'s head, then `b`'s tail.
    Splice,
    /// Fresh operations inserted at one place.
    Insert,
    /// A chunk removed.
    Delete,
    /// A subsequence run again right after itself.
    Repeat,
    /// One operation's count or address changed.
    Arguments,
}

impl Mutation {
    pub fn name(self) -> &'static str {
        match self {
            Mutation::Splice => "splice",
            Mutation::Insert => "insert",
            Mutation::Delete => "delete",
            Mutation::Repeat => "repeat",
            Mutation::Arguments => "arguments",
        }
    }
}

/// A new sequence from `a` (and `b`, for a splice), at most `max` long and
/// never empty. `fresh` gives new operations for an insertion (the
/// runner's generator). One to three mutations are stacked; their names
/// come back in order.
pub fn mutate(
    rng: &mut impl Rng,
    a: &[Op],
    b: &[Op],
    max: usize,
    mut fresh: impl FnMut() -> Op,
) -> (Vec<Op>, Vec<Mutation>) {
    let mut ops = a.to_vec();
    let mut done = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let m = match rng.random_range(0..10) {
            0..2 if !b.is_empty() => Mutation::Splice,
            0..4 => Mutation::Insert,
            4..6 if ops.len() > 1 => Mutation::Delete,
            4..7 if !ops.is_empty() => Mutation::Repeat,
            _ if !ops.is_empty() => Mutation::Arguments,
            _ => Mutation::Insert,
        };
        apply(rng, m, &mut ops, b, &mut fresh);
        done.push(m);
    }
    ops.truncate(max.max(1));
    if ops.is_empty() {
        ops.push(fresh());
    }
    (ops, done)
}

fn apply(
    rng: &mut impl Rng,
    m: Mutation,
    ops: &mut Vec<Op>,
    b: &[Op],
    fresh: &mut impl FnMut() -> Op,
) {
    let len = ops.len();
    match m {
        Mutation::Splice => {
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..b.len());
            ops.truncate(cut);
            ops.extend_from_slice(&b[from..]);
        }
        Mutation::Insert => {
            let at = rng.random_range(0..=len);
            let n = rng.random_range(1..=16);
            let new: Vec<Op> = (0..n).map(|_| fresh()).collect();
            ops.splice(at..at, new);
        }
        Mutation::Delete => {
            let start = rng.random_range(0..len);
            let n = rng.random_range(1..=(len - start).min(len / 2 + 1));
            ops.drain(start..start + n);
        }
        Mutation::Repeat => {
            let start = rng.random_range(0..len);
            let n = rng.random_range(1..=(len - start).min(32));
            let copy: Vec<Op> = ops[start..start + n].to_vec();
            let times = rng.random_range(1..=4);
            for _ in 0..times {
                ops.splice(start + n..start + n, copy.iter().cloned());
            }
        }
        Mutation::Arguments => {
            let i = rng.random_range(0..len);
            let op = &mut ops[i];
            if rng.random_bool(0.5) {
                if let Some((_, c)) = count_mut(op) {
                    *c = match rng.random_range(0..6) {
                        0 => c.saturating_add(1),
                        1 => c.saturating_sub(1),
                        2 => *c / 2,
                        3 => c.saturating_mul(2),
                        4 => 512,
                        _ => 1,
                    };
                    return;
                }
            }
            if let Some(a) = addr_mut(op) {
                *a = match rng.random_range(0..4) {
                    0 => a.wrapping_add(PAGE_SIZE),
                    1 => a.wrapping_sub(PAGE_SIZE),
                    2 => *a & !((2 << 20) - 1),
                    _ => a.wrapping_add((2 << 20) - PAGE_SIZE),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Privilege;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn map(addr: u64, pages: u64) -> Op {
        Op::Map {
            addr,
            pages,
            writable: true,
            contiguous: false,
            privilege: Privilege::User,
        }
    }

    #[test]
    fn mutants_are_bounded_never_empty_and_differ() {
        let a: Vec<Op> = (0..20).map(|i| map(i << 12, 1)).collect();
        let b: Vec<Op> = (0..5).map(|i| map(0x4000_0000 + (i << 12), 2)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen = std::collections::BTreeSet::new();
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let (m, how) = mutate(&mut rng, &a, &b, 40, || Op::Stats);
            assert!(!m.is_empty() && m.len() <= 40);
            assert!((1..=3).contains(&how.len()));
            kinds.extend(how.iter().map(|h| h.name()));
            seen.insert(format!("{m:?}"));
        }
        assert_eq!(kinds.len(), 5, "{kinds:?}");
        assert!(seen.len() > 400, "{} distinct mutants", seen.len());
        // An empty corpus entry still gives something to run.
        let (m, _) = mutate(&mut rng, &[], &[], 10, || Op::Stats);
        assert!(!m.is_empty());
    }

    #[test]
    fn the_same_stream_gives_the_same_mutant() {
        let a: Vec<Op> = (0..8).map(|i| map(i << 21, 3)).collect();
        let run = |seed| {
            mutate(&mut ChaCha8Rng::seed_from_u64(seed), &a, &a, 100, || {
                Op::Stats
            })
        };
        assert_eq!(run(9), run(9));
    }
}
