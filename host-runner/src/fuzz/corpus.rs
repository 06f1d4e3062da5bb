//! The corpus: sequences that reached guest edges or model transitions no
//! earlier sequence of the campaign had, kept (in memory, and on disk with
//! `--corpus DIR`) and mutated into new sequences ([`trace::mutate`]).
//! Seeded from the traces of `--corpus` and `--corpus-from` directories
//! that boot the campaign's guest (same RAM size and files).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use trace::{FileSpec, GenConfig, Generator, Mutation, Trace};

use crate::coverage::Novelty;

/// A kept sequence.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its operations and their references (expectations dropped).
    pub ops: Arc<[trace::Entry]>,
    /// Where it came from: a file, or the campaign's sequence number.
    pub origin: String,
}

/// A mutated sequence to run.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// Its operations, references included: they resolve from the
    /// answers of the run ([`trace::Answers`]).
    pub ops: Arc<[trace::Entry]>,
    /// For the trace's note: the parents and the mutations.
    pub note: String,
}

/// The kept sequences of a campaign.
#[derive(Debug, Default)]
pub struct Corpus {
    entries: Vec<Entry>,
    hashes: HashSet<u64>,
    /// Where new entries are written (`--corpus DIR`).
    dir: Option<PathBuf>,
    /// Entries read from disk at the start.
    pub loaded: usize,
    /// Traces on disk skipped: unreadable, or for another guest.
    pub skipped: usize,
    /// Entries the campaign added.
    pub added: usize,
}

fn hash(ops: &[trace::Entry]) -> u64 {
    let mut h = DefaultHasher::new();
    format!("{ops:?}").hash(&mut h);
    h.finish()
}

impl Corpus {
    /// A corpus writing to `dir` (created if missing) and seeded from the
    /// traces in it and in `from`, keeping those for a guest of `ram_mib`
    /// with `files`.
    pub fn open(
        dir: Option<&Path>,
        from: &[PathBuf],
        ram_mib: u32,
        files: &[FileSpec],
    ) -> std::io::Result<Corpus> {
        let mut c = Corpus {
            dir: dir.map(Path::to_path_buf),
            ..Corpus::default()
        };
        if let Some(d) = dir {
            std::fs::create_dir_all(d)?;
        }
        for d in dir.into_iter().chain(from.iter().map(PathBuf::as_path)) {
            for p in trace::trace_files(d)? {
                match std::fs::read_to_string(&p)
                    .ok()
                    .and_then(|t| trace::parse_str(&t).ok())
                {
                    Some(t) if fits(&t, ram_mib, files) => {
                        if c.keep(&t, p.display().to_string()) {
                            c.loaded += 1;
                        }
                    }
                    _ => c.skipped += 1,
                }
            }
        }
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn keep(&mut self, t: &Trace, origin: String) -> bool {
        let ops = operations(t);
        if ops.is_empty() || !self.hashes.insert(hash(&ops)) {
            return false;
        }
        self.entries.push(Entry {
            ops: ops.into(),
            origin,
        });
        true
    }

    /// Keeps `trace` when it reached something new; with a directory, also
    /// writes it there (`corpus-<hash>.jsonl`). Whether it was kept.
    pub fn offer(
        &mut self,
        trace: &Trace,
        novelty: Novelty,
        origin: String,
    ) -> std::io::Result<bool> {
        if !novelty.any() {
            return Ok(false);
        }
        let h = hash(&operations(trace));
        if !self.keep(trace, origin) {
            return Ok(false);
        }
        self.added += 1;
        if let Some(d) = &self.dir {
            let mut t = trace.clone();
            t.header.note = Some(format!(
                "corpus: reached {} new guest edge(s), {} edge bucket(s), {} model transition(s), \
                 {} event(s)",
                novelty.edges, novelty.buckets, novelty.transitions, novelty.events
            ));
            trace::save_atomically(d.join(format!("corpus-{h:016x}.jsonl")), &t)?;
        }
        Ok(true)
    }

    /// A mutant drawn from `seed` alone and the corpus as it is: one entry
    /// (and a second for a splice) changed by one to three mutations, at
    /// most `gen.ops * 4` long; fresh operations come from a generator of
    /// `gen` seeded the same. `None` for an empty corpus.
    pub fn mutant(&self, seed: u64, gen: &GenConfig) -> Option<Mutant> {
        if self.entries.is_empty() {
            return None;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc0_4905);
        let a = &self.entries[rng.random_range(0..self.entries.len())];
        let b = &self.entries[rng.random_range(0..self.entries.len())];
        let mut g = Generator::new(seed, gen.clone());
        let (ops, how) = trace::mutate(&mut rng, &a.ops, &b.ops, gen.ops.max(1) * 4, || {
            g.next_op(None)
        });
        let names: Vec<&str> = how.iter().map(|m: &Mutation| m.name()).collect();
        let note = if how.contains(&Mutation::Splice) {
            format!(
                "mutant of {} and {} ({})",
                a.origin,
                b.origin,
                names.join(", ")
            )
        } else {
            format!("mutant of {} ({})", a.origin, names.join(", "))
        };
        Some(Mutant {
            ops: ops.into(),
            note,
        })
    }
}

/// A trace's identity in a corpus (the hash its file is named by): its
/// operations with their references, expectations left out.
pub fn key(t: &Trace) -> u64 {
    hash(&operations(t))
}

/// A trace's operations with their references, without expectations (a
/// mutant is judged by the model alone).
fn operations(t: &Trace) -> Vec<trace::Entry> {
    t.entries
        .iter()
        .map(|e| trace::Entry {
            expect: None,
            ..e.clone()
        })
        .collect()
}

/// Whether trace `t` boots the campaign's guest.
fn fits(t: &Trace, ram_mib: u32, files: &[FileSpec]) -> bool {
    t.header.ram_mib.is_none_or(|r| r == ram_mib) && t.header.files == files
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Privilege;
    use trace::{Op, TraceHeader};

    fn trace(n: u64) -> Trace {
        Trace::from_ops(
            TraceHeader {
                ram_mib: Some(128),
                ..TraceHeader::default()
            },
            (0..n).map(|i| Op::Map {
                addr: i << 12,
                pages: 1,
                writable: true,
                executable: false,
                contiguous: false,
                privilege: Privilege::User,
            }),
        )
    }

    fn new() -> Novelty {
        Novelty {
            transitions: 1,
            ..Novelty::default()
        }
    }

    #[test]
    fn keeps_only_what_is_new_once_and_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Corpus::open(Some(dir.path()), &[], 128, &[]).unwrap();
        assert!(c.is_empty() && c.mutant(1, &GenConfig::default()).is_none());
        assert!(!c.offer(&trace(3), Novelty::default(), "s0".into()).unwrap());
        assert!(c.offer(&trace(3), new(), "s1".into()).unwrap());
        assert!(
            !c.offer(&trace(3), new(), "s2".into()).unwrap(),
            "a duplicate"
        );
        assert!(c.offer(&trace(4), new(), "s3".into()).unwrap());
        assert_eq!((c.len(), c.added), (2, 2));
        // A new campaign reads them back; one for another guest is skipped.
        let other = tempfile::tempdir().unwrap();
        let mut t = trace(2);
        t.header.ram_mib = Some(64);
        trace::save_atomically(other.path().join("x.jsonl"), &t).unwrap();
        std::fs::write(other.path().join("bad.jsonl"), "not a trace").unwrap();
        let c = Corpus::open(Some(dir.path()), &[other.path().into()], 128, &[]).unwrap();
        assert_eq!((c.loaded, c.skipped), (2, 2));
        // A header out of range (the file that overflowed the blob's
        // size) is skipped like any unreadable trace, never booted.
        let text = trace(2).to_text().replacen(
            "\"ram_mib\":128",
            "\"ram_mib\":128,\"files\":[{\"pages\":\"0x4000000000000000\"}]",
            1,
        );
        assert!(trace::parse_str(&text).is_err());
        std::fs::write(other.path().join("huge-file.jsonl"), text).unwrap();
        let c = Corpus::open(None, &[other.path().into()], 128, &[]).unwrap();
        assert_eq!((c.loaded, c.skipped), (0, 3));
    }

    #[test]
    fn a_mutant_depends_on_its_seed_and_the_corpus() {
        let mut c = Corpus::default();
        c.offer(&trace(10), new(), "a".into()).unwrap();
        c.offer(&trace(20), new(), "b".into()).unwrap();
        let gen = GenConfig::default();
        let m = c.mutant(5, &gen).unwrap();
        assert_eq!(m.ops, c.mutant(5, &gen).unwrap().ops);
        assert!(!m.ops.is_empty() && m.ops.len() <= gen.ops * 4);
        assert!(m.note.starts_with("mutant of "), "{}", m.note);
    }
}
