//! Folders of traces (`testcases/`, a corpus, a shard's corpus).

use std::path::{Path, PathBuf};

/// Every `*.jsonl` file in `dir` (not in its subfolders), sorted by path,
/// so that a folder of traces is read in the same order everywhere.
pub fn trace_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trace_files_in_path_order() {
        let d = tempfile::tempdir().unwrap();
        for name in ["b.jsonl", "a.jsonl", "c.txt", "d.jsonl.bak"] {
            std::fs::write(d.path().join(name), "").unwrap();
        }
        std::fs::create_dir(d.path().join("e.jsonl")).unwrap();
        let names: Vec<_> = trace_files(d.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.jsonl", "b.jsonl"]);
        assert!(trace_files(&d.path().join("missing")).is_err());
    }
}
