//! Mutations of a kept sequence (a corpus entry) into a new one, AFL and
//! syzkaller style: splice two, insert fresh operations, delete a chunk,
//! repeat a subsequence, change one operation's arguments. Pure functions
//! of a random stream: the runner decides what to keep.

use protocol::PAGE_SIZE;
use rand::Rng;

use std::collections::HashMap;

use crate::format::Entry;
use crate::op::Op;
use crate::refs::Ref;
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

/// Where an entry of a mutant came from: which parent (`a`, `b`, or a
/// fresh operation) and its index there.
type Origin = (u8, usize);

/// A new sequence from `a` (and `b`, for a splice), at most `max` long and
/// never empty. `fresh` gives new operations for an insertion (the
/// runner's generator). One to three mutations are stacked; their names
/// come back in order.
///
/// References ([`crate::refs`]) follow their operations: each points at
/// the nearest earlier copy of the operation it pointed at in its parent
/// (in a repeated chunk, the copy in the same repetition), and goes when
/// no copy of it is left before it.
pub fn mutate(
    rng: &mut impl Rng,
    a: &[Entry],
    b: &[Entry],
    max: usize,
    mut fresh: impl FnMut() -> Op,
) -> (Vec<Entry>, Vec<Mutation>) {
    let mut out: Vec<(Entry, Origin)> = a
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, e)| (e, (0, i)))
        .collect();
    let mut fresh_made = 0;
    let mut fresh = || {
        fresh_made += 1;
        (Entry::from(fresh()), (2, fresh_made))
    };
    let mut done = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let m = match rng.random_range(0..10) {
            0..2 if !b.is_empty() => Mutation::Splice,
            0..4 => Mutation::Insert,
            4..6 if out.len() > 1 => Mutation::Delete,
            4..7 if !out.is_empty() => Mutation::Repeat,
            _ if !out.is_empty() => Mutation::Arguments,
            _ => Mutation::Insert,
        };
        apply(rng, m, &mut out, b, &mut fresh);
        done.push(m);
    }
    out.truncate(max.max(1));
    if out.is_empty() {
        out.push(fresh());
    }
    (relink(out), done)
}

/// The entries with their references moved to the nearest earlier copy
/// of the operation each named in its parent.
fn relink(out: Vec<(Entry, Origin)>) -> Vec<Entry> {
    let mut last: HashMap<Origin, usize> = HashMap::new();
    out.into_iter()
        .enumerate()
        .map(|(p, (mut e, (src, i)))| {
            e.reference = e.reference.and_then(|r| {
                let op = *last.get(&(src, r.op))?;
                Some(Ref { op, ..r })
            });
            last.insert((src, i), p);
            e
        })
        .collect()
}

fn apply(
    rng: &mut impl Rng,
    m: Mutation,
    ops: &mut Vec<(Entry, Origin)>,
    b: &[Entry],
    fresh: &mut impl FnMut() -> (Entry, Origin),
) {
    let len = ops.len();
    match m {
        Mutation::Splice => {
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..b.len());
            ops.truncate(cut);
            ops.extend(
                b.iter()
                    .cloned()
                    .enumerate()
                    .skip(from)
                    .map(|(i, e)| (e, (1, i))),
            );
        }
        Mutation::Insert => {
            let at = rng.random_range(0..=len);
            let n = rng.random_range(1..=16);
            let new: Vec<_> = (0..n).map(|_| fresh()).collect();
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
            let copy: Vec<_> = ops[start..start + n].to_vec();
            let times = rng.random_range(1..=4);
            for _ in 0..times {
                ops.splice(start + n..start + n, copy.iter().cloned());
            }
        }
        Mutation::Arguments => {
            let i = rng.random_range(0..len);
            let e = &mut ops[i].0;
            if rng.random_bool(0.5) {
                if let Some((_, c)) = count_mut(&mut e.op) {
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
            if let Some(a) = addr_mut(&mut e.op) {
                let old = *a;
                *a = match rng.random_range(0..4) {
                    0 => a.wrapping_add(PAGE_SIZE),
                    1 => a.wrapping_sub(PAGE_SIZE),
                    2 => *a & !((2 << 20) - 1),
                    _ => a.wrapping_add((2 << 20) - PAGE_SIZE),
                };
                // A referenced address moves relative to what it names.
                let delta = a.wrapping_sub(old) as i64;
                if let Some(r) = e.reference.as_mut() {
                    r.plus = r.plus.wrapping_add(delta);
                }
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
            executable: false,
            contiguous: false,
            privilege: Privilege::User,
        }
    }

    #[test]
    fn mutants_are_bounded_never_empty_and_differ() {
        let a: Vec<Entry> = (0..20).map(|i| map(i << 12, 1).into()).collect();
        let b: Vec<Entry> = (0..5)
            .map(|i| map(0x4000_0000 + (i << 12), 2).into())
            .collect();
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

    fn kmalloc() -> Op {
        Op::Kmalloc {
            size: 16,
            align: 16,
            privilege: Privilege::Kernel,
        }
    }

    fn kfree(of: usize) -> Entry {
        Entry {
            reference: Some(Ref {
                op: of,
                run: 0,
                plus: 0,
            }),
            ..Op::Kfree {
                addr: 0x1000,
                privilege: Privilege::Kernel,
            }
            .into()
        }
    }

    #[test]
    fn references_follow_their_operations_through_every_mutation() {
        let a: Vec<Entry> = vec![kmalloc().into(), kfree(0), kmalloc().into(), kfree(2)];
        let b: Vec<Entry> = vec![Op::Stats.into(), kmalloc().into(), kfree(1)];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut kept = 0;
        for _ in 0..500 {
            let (m, _) = mutate(&mut rng, &a, &b, 40, || Op::Stats);
            for (i, e) in m.iter().enumerate() {
                if let Some(r) = e.reference {
                    kept += 1;
                    assert!(r.op < i && m[r.op].op == kmalloc(), "{i}: {m:?}");
                }
            }
        }
        assert!(kept > 500, "references were dropped: {kept} kept");
        // A repeated chunk's references point into their own repetition; a
        // reference whose operation is gone goes.
        let twice = relink(vec![
            (kmalloc().into(), (0, 0)),
            (kfree(0), (0, 1)),
            (kmalloc().into(), (0, 0)),
            (kfree(0), (0, 1)),
            (kfree(0), (1, 5)),
        ]);
        let refs: Vec<Option<usize>> = twice.iter().map(|e| e.reference.map(|r| r.op)).collect();
        assert_eq!(refs, [None, Some(0), None, Some(2), None]);
    }

    #[test]
    fn the_same_stream_gives_the_same_mutant() {
        let a: Vec<Entry> = (0..8).map(|i| map(i << 21, 3).into()).collect();
        let run = |seed| {
            mutate(&mut ChaCha8Rng::seed_from_u64(seed), &a, &a, 100, || {
                Op::Stats
            })
        };
        assert_eq!(run(9), run(9));
    }
}
