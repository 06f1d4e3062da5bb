//! Failures across shards: one per signature, the one with the shortest
//! reproducer (the minimized trace's length, else the saved trace's; the
//! first shard's on a tie), how often it was found summed; its files
//! (trace, minimized trace, HTML report, the trace since boot) copied
//! into the merged `failures/`, the summary's paths pointing there.

use std::path::{Path, PathBuf};

use super::{write_error, MergeError, Shard};
use crate::fuzz::results::FailureEntry;

/// The file beside `trace` of the same stem with `suffix` (`-since-boot.jsonl`).
fn sibling(trace: &Path, suffix: &str) -> PathBuf {
    let stem = trace.file_stem().unwrap_or_default().to_string_lossy();
    trace.with_file_name(format!("{stem}{suffix}"))
}

/// Copies `from` (when it is a file) into `dir`, answering its new path.
fn copy_into(from: &Path, dir: &Path) -> Result<Option<String>, MergeError> {
    if !from.is_file() {
        return Ok(None);
    }
    let to = dir.join(from.file_name().unwrap_or_default());
    std::fs::copy(from, &to).map_err(write_error(&to))?;
    Ok(Some(to.display().to_string()))
}

/// The shards' failures, one per signature in the order first found,
/// their files copied into `dir`.
pub fn merge(shards: &[Shard], dir: &Path) -> Result<Vec<FailureEntry>, MergeError> {
    let mut kept: Vec<(&Shard, FailureEntry)> = Vec::new();
    for shard in shards {
        for f in &shard.doc.failures {
            match kept.iter_mut().find(|(_, k)| k.signature == f.signature) {
                Some((s, k)) => {
                    let occurrences = k.occurrences + f.occurrences;
                    if f.reproducer_ops() < k.reproducer_ops() {
                        (*s, *k) = (shard, f.clone());
                    }
                    k.occurrences = occurrences;
                }
                None => kept.push((shard, f.clone())),
            }
        }
    }
    if !kept.is_empty() {
        std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    }
    kept.into_iter()
        .map(|(shard, mut f)| {
            let trace = shard.local(&f.trace);
            copy_into(&sibling(&trace, "-since-boot.jsonl"), dir)?;
            f.report = copy_into(&crate::report::path_beside(&trace), dir)?;
            if let Some(m) = &mut f.minimized {
                m.trace =
                    copy_into(&shard.local(&m.trace), dir)?.unwrap_or_else(|| m.trace.clone());
            }
            f.trace = copy_into(&trace, dir)?.expect("the shard was checked to hold it");
            Ok(f)
        })
        .collect()
}
