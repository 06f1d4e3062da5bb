//! Corpora across shards: every trace of every shard's `corpus/`, each
//! distinct sequence once (the corpus's own identity: its operations
//! without expectations, [`crate::fuzz::corpus::key`]), named as the
//! corpus names it so a later campaign's `--corpus` or `--corpus-from`
//! reads it.

use std::fmt;
use std::path::Path;

use super::{write_error, MergeError, Shard};
use crate::fuzz::results_dir::CORPUS;

/// What merging the corpora did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorpusMerge {
    pub kept: usize,
    /// Traces another shard (or the same one) held already.
    pub duplicates: usize,
    /// Files that are not traces, left out.
    pub unreadable: usize,
}

impl fmt::Display for CorpusMerge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corpus: {} trace(s) kept, {} duplicate(s) dropped, {} unreadable file(s) left out",
            self.kept, self.duplicates, self.unreadable
        )
    }
}

/// Merges the shards' corpora into `dir` (created).
pub fn merge(shards: &[Shard], dir: &Path) -> Result<CorpusMerge, MergeError> {
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    let mut seen = std::collections::HashSet::new();
    let mut m = CorpusMerge::default();
    for shard in shards {
        let from = shard.dir.join(CORPUS);
        let paths = trace::trace_files(&from).map_err(|_| super::MergeError::Missing {
            dir: shard.dir.clone(),
            what: format!("a readable {CORPUS}/"),
        })?;
        for p in paths {
            let Some((text, t)) = std::fs::read_to_string(&p)
                .ok()
                .and_then(|text| trace::parse_str(&text).ok().map(|t| (text, t)))
            else {
                m.unreadable += 1;
                continue;
            };
            let key = crate::fuzz::corpus::key(&t);
            if !seen.insert(key) {
                m.duplicates += 1;
                continue;
            }
            let to = dir.join(format!("corpus-{key:016x}.jsonl"));
            std::fs::write(&to, text).map_err(write_error(&to))?;
            m.kept += 1;
        }
    }
    Ok(m)
}
